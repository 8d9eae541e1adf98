//! The built-in default scenario: the national Singles' Day 2023 run, compiled into the binary.
//! Every figure in it is sourced or marked as an assumption in the file's own comments.

/// The text of `scenarios/singles_day_2023.toml`, verbatim.
pub const DEFAULT_SCENARIO_TOML: &str = include_str!("../../scenarios/singles_day_2023.toml");
/// How the default scenario is named in messages.
pub const DEFAULT_ORIGIN: &str = "<default: singles_day_2023.toml>";
