//! Results: per-replication records, their statistics, and the atomic results folder.

pub mod aggregate;
pub mod atomic;
pub mod files;
pub mod metrics;
pub mod raw;

pub use metrics::{Layout, Record};
