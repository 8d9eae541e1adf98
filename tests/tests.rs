//! The end-to-end suite, built as one test binary. Each module is one area.

mod chart_checks;
mod common;
mod compare_checks;
mod engine_checks;
mod exactness;
mod hardening_checks;
mod scenario_checks;
mod shard_checks;
