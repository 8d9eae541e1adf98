//! Speed of both engines on one replication (scenario and baseline) of fixed scenarios.
//!
//! `cargo bench --bench engines` reports the time per replication; simulated user-ticks per second
//! are users × ticks × 2 (scenario and baseline) over that time. Seeds are fixed.
//! - `quick_one_replication`: both engines on scenarios/quick.toml (50,000 users × 72 ticks);
//! - `national_one_replication`: the cohorts engine on the built-in national default (1.336 ×
//!   10^9 users × 436 ticks), the scenario and its baseline on two threads as `d11sim run` does.
//!   The agents engine cannot run it; `cargo run --release --example scaling` times it once on
//!   the default scaled to 10^6 users, with the population and memory ratios.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use d11sim::engine::{Engine, run_replications};
use d11sim::scenario::{default, load_str};

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

fn bench_national(c: &mut Criterion) {
    d11sim::engine::return_large_blocks();
    let scenario = load_str(default::DEFAULT_SCENARIO_TOML, default::DEFAULT_ORIGIN)
        .expect("the default is valid");
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

criterion_group! {
    name = benches;
    // Criterion's charts need fonts from the system: the figures are the text report.
    config = Criterion::default().without_plots();
    targets = bench_engines, bench_national
}
criterion_main!(benches);
