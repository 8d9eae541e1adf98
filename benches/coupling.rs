//! How tightly the `cohorts` engine pairs a scenario with its baseline on the national default:
//! Var(incremental) / (Var(scenario) + Var(baseline)) over replications, for GMV and orders, with
//! bootstrap 95% intervals (the cohorts issue aims below 0.05 for GMV; 1 would be independent
//! runs).
//!
//! `cargo bench --bench coupling` runs 60 replications of the built-in default with its seed
//! (about two minutes on two cores). `D11SIM_COUPLING_REPLICATIONS=N` changes the count and
//! `D11SIM_COUPLING_USERS=U` runs the default scaled to U users (`Scenario::scaled_to`: budgets,
//! caps and room capacity in proportion).

use std::time::Instant;

use d11sim::compare::stats::coupling;
use d11sim::engine::{Engine, run_replications};
use d11sim::results::{Layout, Record};
use d11sim::scenario::{default, load_str};

/// Replications when none is given: an estimate of the ratio from n replications has a relative
/// standard error of about √(4 / (n − 1)) (its numerator's and its denominator's sample
/// variances, nearly independent, each √(2 / (n − 1))): 26% at 60, 46% at the default run's 20.
const DEFAULT_REPLICATIONS: u64 = 60;
/// The target of the cohorts issue for GMV.
const TARGET: f64 = 0.05;

/// A whole number from the environment variable `name`, if set; exits with status 2 if it is
/// not one.
fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            eprintln!("coupling: {name}={value}: expected a whole number");
            std::process::exit(2);
        }
    }
}

fn main() {
    d11sim::engine::return_large_blocks();
    let mut scenario = load_str(default::DEFAULT_SCENARIO_TOML, default::DEFAULT_ORIGIN)
        .expect("the default is valid");
    if let Some(users) = env_u64("D11SIM_COUPLING_USERS") {
        scenario = scenario.scaled_to(users);
    }
    let replications = env_u64("D11SIM_COUPLING_REPLICATIONS").unwrap_or(DEFAULT_REPLICATIONS);
    let start = Instant::now();
    let runs = run_replications(
        Engine::Cohorts,
        &scenario,
        scenario.seed,
        1..=replications,
        &|| {},
    );
    let records: Vec<Record> = runs.iter().map(|x| Record::of(&scenario, x)).collect();
    let layout = Layout::of(&scenario);
    let column =
        |name: &str| Record::column(&records, &layout, name).expect("a metric of every run");
    println!(
        "coupling: {} users, {replications} replications with their baselines, seed {}, cohorts engine, {:.1} s",
        scenario.users,
        scenario.seed,
        start.elapsed().as_secs_f64()
    );
    println!(
        "metric   Var(incremental) / (Var(scenario) + Var(baseline))   bootstrap 95% interval"
    );
    let mut gmv = None;
    for (metric, baseline) in [("gmv", "baseline_gmv"), ("orders", "baseline_orders")] {
        let measured = coupling(&column(metric), &column(baseline), scenario.seed);
        match measured {
            Some(c) => println!(
                "{metric:<8} {:>10.4} {:>42}",
                c.ratio,
                format!("{:.4}–{:.4}", c.ci.0, c.ci.1)
            ),
            None => println!("{metric:<8} (needs three replications or more, and runs that vary)"),
        }
        if metric == "gmv" {
            gmv = measured;
        }
    }
    if let Some(c) = gmv {
        let verdict = if c.ci.1 < TARGET {
            "met (the whole interval)"
        } else if c.ratio < TARGET {
            "met by the estimate, not by the whole interval"
        } else if c.ci.0 < TARGET {
            "missed by the estimate, not by the whole interval"
        } else {
            "missed (the whole interval)"
        };
        println!("target for GMV: below {TARGET}: {verdict}");
    }
}
