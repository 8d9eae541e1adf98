//! The end-to-end suite, built as one test binary. Each module is one area.

mod common;
mod scenario_checks;
