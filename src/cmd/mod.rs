//! One module per command, each a thin sequence over the library's layers.

pub mod run;
pub mod validate;
