//! Valid input at its extremes runs: every number of tiny.toml (outside strings) replaced in turn
//! by each of a few extreme values; every file the checks accept runs two replications on both
//! engines without a panic, within a deadline, and every metric it reports is finite.
//!
//! The loader's fuzzing (`scenario_checks/fuzz.rs`) shows that bad text is refused; this shows
//! that what is accepted can be run. A file that validated once could not be: a mean of more
//! than ~745 organic impressions a user and tick hung the `cohorts` engine and made the
//! `agents` engine panic, and the checks now refuse means past 500.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use d11sim::engine::{self, Engine};
use d11sim::results::Record;

use super::*;

/// The values each number is replaced by: zero and one, the smallest and largest normal-ish
/// floats a user might type, the largest `u32`, a probability just below one, 2^16.
const EXTREMES: [&str; 7] = [
    "0",
    "1",
    "1e-300",
    "1e300",
    "4294967295",
    "0.999999",
    "65536",
];
/// Replications of each accepted file on each engine.
const REPLICATIONS: u64 = 2;
/// Master seed of the runs.
const SEED: u64 = 20_231_111;
/// Files with more users are not run: population extremes have tests of their own
/// (`extremes.rs`, 10^11 users), and tiny.toml's users click so often that many have several
/// sessions that can interact, whom the `cohorts` engine follows one by one (one replication of
/// it at 10^9 users takes 5.3 s and 368 MiB), while `agents` refuses past 5 × 10^7.
const MAX_USERS: u64 = 1_000_000;
/// The whole sweep must finish within this (it takes 1–3 s on the 2-core machine of the
/// README's figures); an engine that hangs on some value fails here instead of hanging the suite.
const DEADLINE: Duration = Duration::from_secs(300);
/// Address space of the child that runs the sweep.
const MEMORY_BYTES: u64 = 3 << 30;

/// Runs [`valid_extremes_inner`] in a bounded child ([`run_inner_bounded`]).
#[test]
fn every_accepted_extreme_of_tiny_runs_on_both_engines() {
    run_inner_bounded(
        "hardening_checks::valid_extremes::valid_extremes_inner",
        DEADLINE,
        MEMORY_BYTES,
        "the sweep of extreme values",
    );
}

#[test]
#[ignore = "run by every_accepted_extreme_of_tiny_runs_on_both_engines in a bounded child"]
fn valid_extremes_inner() {
    let tiny = fixture("tiny.toml");
    let spans = common::numbers(&tiny, true);
    // tiny.toml's numbers: its seed, replications, tick length, users, every rate and weight.
    assert!(spans.len() >= 80, "{} numbers found", spans.len());
    let (mut accepted, mut failures) = (0, Vec::new());
    for &(a, b) in &spans {
        for value in EXTREMES {
            let text = format!("{}{value}{}", &tiny[..a], &tiny[b..]);
            let Ok(s) = d11sim::scenario::load_str(&text, "extreme.toml") else {
                continue;
            };
            if s.users > MAX_USERS {
                continue;
            }
            accepted += 1;
            let line = tiny[..a].lines().count().max(1);
            let what = format!("line {line}: `{}` → {value}", &tiny[a..b]);
            for e in [Engine::Agents, Engine::Cohorts] {
                let runs = catch_unwind(AssertUnwindSafe(|| {
                    engine::run_replications(e, &s, SEED, 1..=REPLICATIONS, &|| {})
                }));
                let Ok(runs) = runs else {
                    failures.push(format!("{what}: {e:?} panicked"));
                    continue;
                };
                let bad = runs
                    .iter()
                    .flat_map(|x| Record::of(&s, x).metrics)
                    .flatten()
                    .any(|v| !v.is_finite());
                if bad {
                    failures.push(format!(
                        "{what}: {e:?} reported a metric that is not finite"
                    ));
                }
            }
        }
    }
    // About two thirds of the edits are refused (a probability of 1e300, a share of 0, …); a
    // sweep that accepted few would test little.
    assert!(
        accepted >= 300,
        "only {accepted} edited files were accepted"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{accepted} edited files run on both engines");
}
