//! d11sim: a Monte Carlo simulator of Singles' Day subsidies and WeChat-to-Taobao traffic.
//!
//! The layers, each depending only on those after it: `compare` and `chart` (what analysts read),
//! `results` (aggregation and the results folder), `engine` (the two engines: `agents`, the literal
//! per-user reference, and `cohorts`, exact counts), `scenario` (files and their checks), `error`.

pub mod chart;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod engine;
pub mod error;
pub mod results;
pub mod scenario;
pub mod shard;
pub mod time;

pub use error::{Error, Result};
