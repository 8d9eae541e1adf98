//! `d11sim run`: replications of a scenario into a results folder.

use crate::cli::RunArgs;

pub fn run(_args: &RunArgs) -> crate::Result<()> {
    Err(crate::Error::Run("the engine is not built yet".into()))
}
