//! One module per command, each a thin sequence over the library's layers.

pub mod chart;
pub mod compare;
pub mod merge;
pub mod run;
pub mod validate;
