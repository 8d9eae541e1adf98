//! Speed of both engines on one replication (scenario and baseline) of fixed scenarios.
//!
//! `cargo bench --bench engines` reports the time per replication; simulated user-ticks per second
//! are users × ticks × 2 (scenario and baseline) over that time. Seeds are fixed.
//! - `quick_one_replication`: both engines on scenarios/quick.toml (50,000 users × 72 ticks);
//! - `national_one_replication`: the cohorts engine on the built-in national default (1.336 ×
//!   10^9 users × 436 ticks), the scenario and its baseline on two threads as `d11sim run` does.
//!   The agents engine cannot run it; `cargo run --release --example scaling` times it once on
//!   the default scaled to 10^6 users, with the population and memory ratios.
//! - `population_one_replication`: the cohorts engine on the national default scaled to 10^6 and
//!   to 10^9 users (`Scenario::scaled_to`), the orders' baskets not drawn
//!   (`Plan::value_baskets`): the population ratio of the time without the per-order draws is
//!   the ratio of the two times. (Peak memory, which criterion does not measure, and the ratio
//!   with the baskets are the scaling example's.)

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use d11sim::engine::{Engine, Plan, run_replications};
use d11sim::scenario::{Scenario, default, load_str};

/// Seed of every benchmark run.
const SEED: u64 = 2023;
/// Criterion samples per benchmark: each one is a whole replication.
const SAMPLES: usize = 10;

fn quick_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quick.toml"))
        .expect("scenarios/quick.toml")
}

fn bench_engines(c: &mut Criterion) {
    d11sim::engine::return_large_blocks();
    let scenario = load_str(&quick_text(), "quick.toml").expect("valid scenario");
    let baseline = scenario.baseline();
    let user_ticks = 2 * scenario.users * scenario.ticks() as u64;
    let mut group = c.benchmark_group("quick_one_replication");
    group.sample_size(SAMPLES);
    group.throughput(Throughput::Elements(user_ticks));
    for engine in [Engine::Agents, Engine::Cohorts] {
        group.bench_function(engine.name(), |b| {
            let mut rep = 0;
            b.iter(|| {
                rep += 1;
                black_box(engine.paired(&scenario, &baseline, SEED, rep))
            })
        });
    }
    group.finish();
}

/// The built-in national default.
fn national() -> Scenario {
    load_str(default::DEFAULT_SCENARIO_TOML, default::DEFAULT_ORIGIN).expect("the default is valid")
}

fn bench_national(c: &mut Criterion) {
    d11sim::engine::return_large_blocks();
    let scenario = national();
    let user_ticks = 2 * scenario.users * scenario.ticks() as u64;
    let mut group = c.benchmark_group("national_one_replication");
    group.sample_size(SAMPLES);
    group.throughput(Throughput::Elements(user_ticks));
    group.bench_function(Engine::Cohorts.name(), |b| {
        let mut rep = 0;
        b.iter(|| {
            rep += 1;
            black_box(run_replications(
                Engine::Cohorts,
                &scenario,
                SEED,
                rep..=rep,
                &|| {},
            ))
        })
    });
    group.finish();
}

/// The populations the default is scaled to for `population_one_replication`.
const POPULATIONS: [u64; 2] = [1_000_000, 1_000_000_000];

fn bench_population(c: &mut Criterion) {
    d11sim::engine::return_large_blocks();
    let national = national();
    let mut group = c.benchmark_group("population_one_replication");
    group.sample_size(SAMPLES);
    for users in POPULATIONS {
        let scenario = national.scaled_to(users);
        let baseline = scenario.baseline();
        let (mut plan, mut base_plan) = (Plan::new(&scenario), Plan::new(&baseline));
        (plan.value_baskets, base_plan.value_baskets) = (false, false);
        group.throughput(Throughput::Elements(2 * users * scenario.ticks() as u64));
        let id = BenchmarkId::new("cohorts_unvalued", users);
        group.bench_function(id, |b| {
            let mut rep = 0;
            b.iter(|| {
                rep += 1;
                black_box(Engine::Cohorts.simulate_pair(&plan, &base_plan, SEED, rep, true))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Criterion's charts need fonts from the system: the figures are the text report.
    config = Criterion::default().without_plots();
    targets = bench_engines, bench_national, bench_population
}
criterion_main!(benches);
