//! `d11sim validate`: every problem of every file, without running.

use std::path::PathBuf;

use crate::error::{Error, Problem};
use crate::scenario;

/// Checks each file; prints `FILE: ok` for valid ones and returns every problem of the others.
pub fn run(files: &[PathBuf]) -> crate::Result<()> {
    let mut problems: Vec<Problem> = Vec::new();
    let mut unreadable = None;
    for path in files {
        match scenario::load_file(path) {
            Ok(_) => println!("{}: ok", path.display()),
            Err(Error::Invalid(mut found)) => problems.append(&mut found),
            Err(e) => {
                if unreadable.is_some() {
                    eprintln!("error: {e}");
                } else {
                    unreadable = Some(e);
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    unreadable.map_or(Ok(()), Err)
}
