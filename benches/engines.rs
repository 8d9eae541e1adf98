//! Speed of both engines on one replication (scenario and baseline) of fixed scenarios.
//!
//! `cargo bench --bench engines` reports the time per replication; simulated user-ticks per second
//! are users × ticks × 2 (scenario and baseline) over that time. Seeds are fixed.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use d11sim::engine::Engine;
use d11sim::scenario::load_str;

/// Seed of every benchmark run.
const SEED: u64 = 2023;
/// Criterion samples per benchmark: each one is a whole replication.
const SAMPLES: usize = 10;

fn quick_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quick.toml"))
        .expect("scenarios/quick.toml")
}

fn bench_engines(c: &mut Criterion) {
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

criterion_group!(benches, bench_engines);
criterion_main!(benches);
