//! The agents engine against the spec (issue 4, item 7): each step's probabilities against closed
//! forms, budgets that never overrun, determinism across thread counts, the results folder, its
//! atomic overwrite, and exit codes; and the default engine's pairing of a scenario with its
//! baseline on the national default (`coupling`).
//!
//! Statistical checks run many replications of a scenario simple enough to compute by hand
//! (`tests/data/eng_base.toml` with a few lines edited, one mechanism at a time) and accept a mean
//! within [`K_SE`] standard errors of its closed form, the standard error being computed from the
//! replications themselves. Each check says in a comment where its expected value comes from.

mod budgets;
mod cli;
mod coupling;
mod exposure;
mod folder;
mod money;
mod session;

use d11sim::engine::{Count, Engine, Outcome, Plan};
use d11sim::scenario::{self, Scenario};
use rayon::prelude::*;

/// Tolerance of every statistical check, in standard errors of the mean. With about 60 such
/// checks, the chance that a correct engine fails one is below 60 × 6e-7 (two-sided normal tail).
pub const K_SE: f64 = 5.0;
/// Master seed of the in-process checks (fixed: the tests are reproducible).
pub const SEED: u64 = 20_231_111;
/// The base scenario every statistical check edits.
pub const BASE: &str = include_str!("../data/eng_base.toml");

/// `base` with each `(old, new)` applied: the one line whose trimmed text is `old` becomes `new`
/// (one or more lines). `old` must occur exactly once in `base`, so an edit cannot silently miss;
/// edits are located in `base` before any is applied, so one cannot hit another's new text.
pub fn edit(base: &str, edits: &[(&str, &str)]) -> String {
    let mut lines: Vec<String> = base.lines().map(String::from).collect();
    let at: Vec<usize> = edits
        .iter()
        .map(|(old, _)| {
            let found: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].trim() == *old)
                .collect();
            assert_eq!(found.len(), 1, "`{old}` must be on exactly one line");
            found[0]
        })
        .collect();
    for (i, (_, new)) in at.into_iter().zip(edits) {
        lines[i] = new.to_string();
    }
    lines.join("\n") + "\n"
}

/// Loads a scenario text, panicking with every problem (a test's scenario must be valid).
pub fn load(text: &str) -> Scenario {
    scenario::load_str(text, "engine_checks.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `BASE` edited by `edits`, with `extra` (whole sections) appended, loaded.
pub fn base_with(edits: &[(&str, &str)], extra: &str) -> Scenario {
    load(&(edit(BASE, edits) + extra))
}

/// Replications 1..=n of the scenario alone (no baseline) by the agents engine, in order.
pub fn simulate_many(s: &Scenario, n: u64) -> Vec<Outcome> {
    let plan = Plan::new(s);
    (1..=n)
        .into_par_iter()
        .map(|r| Engine::Agents.simulate(&plan, SEED, r))
        .collect()
}

/// A count of one replication, as a real number for statistics.
pub fn count(o: &Outcome, c: Count) -> f64 {
    o.count(c) as f64
}

/// A count of one tick of one replication.
pub fn tick_count(o: &Outcome, t: usize, c: Count) -> u64 {
    o.per_tick[t].counts[c as usize]
}

/// Mean and standard error of the mean of a sample.
pub fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    assert!(n >= 2.0, "a standard error needs two values");
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Asserts that the mean of `values` lies within `K_SE` standard errors of `expected`. A sample
/// without spread must equal `expected` up to float rounding.
pub fn assert_mean(what: &str, values: &[f64], expected: f64) {
    let (mean, se) = mean_se(values);
    let slack = (K_SE * se).max(1e-9 * expected.abs().max(1.0));
    assert!(
        (mean - expected).abs() <= slack,
        "{what}: mean {mean} over {} replications, expected {expected} (|diff| = {}, {} SE of {se})",
        values.len(),
        (mean - expected).abs(),
        (mean - expected).abs() / se
    );
}

/// Asserts that the sample variance of `values` lies within `K_SE` standard errors of
/// `expected`, the standard error of a sample variance of n normal-like values being
/// σ² × √(2 / (n − 1)).
pub fn assert_variance(what: &str, values: &[f64], expected: f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let se = expected * (2.0 / (n - 1.0)).sqrt();
    assert!(
        (var - expected).abs() <= K_SE * se,
        "{what}: variance {var} over {} replications, expected {expected} (SE {se})",
        values.len()
    );
}

/// Per replication, `count(a) − p × count(b)`: its mean is 0 when each `b` becomes an `a` with
/// probability `p` independently of how many `b` there are.
pub fn excess(outs: &[Outcome], a: Count, p: f64, b: Count) -> Vec<f64> {
    outs.iter().map(|o| count(o, a) - p * count(o, b)).collect()
}
