//! How much common random numbers buy when comparing splits (MODEL.md: "Var(paired difference)
//! must be far below Var(scenario) + Var(baseline)").
//!
//! Two splits of a scenario that differ by 10% of a program's budget: the reference, and the same
//! with 10% of program A's budget moved to program B. The difference in `incremental_gmv` is
//! estimated twice over the same number of replications:
//! - paired, as `d11sim compare` does: both splits on the same seed and replication numbers, one
//!   shared baseline; the t interval of the per-replication differences;
//! - unpaired: the second split on an independent seed (its own baseline too), as two separate
//!   `d11sim run`s would; the Welch interval of the difference of two independent means.
//!
//! It prints both 95% CI widths and their ratio (unpaired / paired).
//!
//! Usage: cargo run --release --example paired_vs_unpaired -- [SCENARIO] [REPLICATIONS] [A] [B] [SHARE]
//! (`D11SIM_ENGINE=agents` for the reference engine; the default engine otherwise).
//! (defaults: scenarios/quick.toml, 200, the first coupon program, the first traffic program,
//! 0.1: the share of A's budget moved, which the target is stated for; smaller shares show how
//! the paired interval depends on the size of the change).

use std::path::PathBuf;

use d11sim::compare::{self, Split};
use d11sim::engine::Engine;
use d11sim::results::{Layout, Record, aggregate};
use d11sim::scenario::{self, Scenario};

/// Replications when none is given.
const DEFAULT_REPLICATIONS: u64 = 200;
/// The share of A's budget moved to B when none is given: the two splits differ by 10% of A's
/// budget.
const MOVED_SHARE: f64 = 0.1;
/// The unpaired run's seed is the scenario's plus this (any other seed gives independent streams).
const UNPAIRED_SEED_OFFSET: u64 = 1;
const METRIC: &str = "incremental_gmv";

fn first_of_kind(s: &Scenario, kind: &str) -> String {
    s.programs
        .iter()
        .find(|p| p.kind_name() == kind && p.budget > 0)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| panic!("{}: no {kind} program with a budget", s.name))
}

fn values(records: &[Record], m: usize) -> Vec<f64> {
    records
        .iter()
        .map(|r| r.metrics[m].unwrap_or(0.0))
        .collect()
}

/// Width of the Welch 95% interval of mean(x) − mean(y), x and y independent.
fn welch_width(x: &[f64], y: &[f64]) -> f64 {
    let (n, m) = (x.len() as f64, y.len() as f64);
    let (vx, vy) = (
        aggregate::std_dev(x).powi(2) / n,
        aggregate::std_dev(y).powi(2) / m,
    );
    let dof = (vx + vy).powi(2) / (vx * vx / (n - 1.0) + vy * vy / (m - 1.0));
    // t_quantile(k) uses k − 1 degrees of freedom.
    2.0 * aggregate::t_quantile(dof.floor() as usize + 1) * (vx + vy).sqrt()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = PathBuf::from(args.first().map_or("scenarios/quick.toml", String::as_str));
    let replications: u64 = args
        .get(1)
        .map_or(DEFAULT_REPLICATIONS, |r| r.parse().expect("REPLICATIONS"));
    let (s, _) = scenario::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let a = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| first_of_kind(&s, "coupon"));
    let b = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| first_of_kind(&s, "traffic"));
    let (ia, ib) = (
        s.program_index(&a).expect("program A"),
        s.program_index(&b).expect("program B"),
    );
    let share: f64 = args
        .get(4)
        .map_or(MOVED_SHARE, |x| x.parse().expect("SHARE"));
    assert!(
        (0.0..=1.0).contains(&share),
        "SHARE is a share of A's budget"
    );
    let moved = (s.programs[ia].budget as f64 * share).round() as u64;
    let shifted = Split {
        name: "shifted".into(),
        budgets: vec![
            (ia, s.programs[ia].budget - moved),
            (ib, s.programs[ib].budget + moved),
        ],
        funded_by: Vec::new(),
    };
    let (reference, other) = (s.clone(), shifted.apply(&s));
    let engine = match std::env::var("D11SIM_ENGINE").as_deref() {
        Ok("agents") => Engine::Agents,
        _ => Engine::Cohorts,
    };
    let reps: Vec<u64> = (1..=replications).collect();
    let m = Layout::of(&s).metric_index(METRIC).expect("a metric");
    let paired = compare::simulate(
        engine,
        &s,
        &[reference, other.clone()],
        s.seed,
        &reps,
        &|| {},
    );
    let unpaired_seed = s.seed + UNPAIRED_SEED_OFFSET;
    let independent = compare::simulate(engine, &s, &[other], unpaired_seed, &reps, &|| {});
    let (x_ref, x_paired, x_indep) = (
        values(&paired[0], m),
        values(&paired[1], m),
        values(&independent[0], m),
    );
    let d: Vec<f64> = x_paired.iter().zip(&x_ref).map(|(x, r)| x - r).collect();
    let n = d.len();
    let paired_width = 2.0 * aggregate::t_quantile(n) * aggregate::std_dev(&d) / (n as f64).sqrt();
    let unpaired_width = welch_width(&x_indep, &x_ref);
    println!(
        "{}: {n} replications, seed {} (unpaired: {unpaired_seed}), {} engine",
        s.name,
        s.seed,
        engine.name()
    );
    println!(
        "split: {moved_yuan} yuan ({percent}% of {a}'s budget) moved to {b}",
        moved_yuan = scenario::units_to_yuan(u128::from(moved)),
        percent = share * 100.0
    );
    println!(
        "difference in {METRIC}: paired {:.1} (95% CI width {paired_width:.1}), unpaired {:.1} (width {unpaired_width:.1})",
        aggregate::mean(&d),
        aggregate::mean(&x_indep) - aggregate::mean(&x_ref)
    );
    println!(
        "ratio of CI widths, unpaired / paired: {:.1} (variance ratio {:.0})",
        unpaired_width / paired_width,
        (unpaired_width / paired_width).powi(2)
    );
}
