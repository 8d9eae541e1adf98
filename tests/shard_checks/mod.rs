//! Sharding: `run --shard`, `merge`, the scheduler recipes of the README's sharding section, and the results
//! folder under interruption and disk errors.
//!
//! Every merge is checked against an unsharded run of `tests/data/tiny.toml`, byte for byte, on
//! every CSV file (the manifests differ: wall time, shard, provenance).

mod cli;
mod deploy;
mod hardening;
mod merge;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common;

/// Replications of the sharded runs: N = 3 gives shards of unequal sizes (4, 5, 5), N = 7 of 2.
const REPLICATIONS: &str = "14";

/// `d11sim run tiny.toml --replications 14 --engine agents --quiet --no-charts --out OUT` plus
/// `extra`;
/// without scheduler variables in its environment.
fn run_tiny(out: &Path, extra: &[&str]) -> std::process::Output {
    run_tiny_on("agents", out, extra)
}

/// As [`run_tiny`], on the engine named.
fn run_tiny_on(engine: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    common::d11sim()
        .arg("run")
        .arg(common::data("tiny.toml"))
        .args([
            "--replications",
            REPLICATIONS,
            "--engine",
            engine,
            "--quiet",
            "--no-charts",
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .expect("d11sim runs")
}

/// `d11sim merge DIRS --out OUT --quiet --no-charts` plus `extra`.
fn merge(dirs: &[PathBuf], out: &Path, extra: &[&str]) -> std::process::Output {
    common::d11sim()
        .arg("merge")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .args(["--quiet", "--no-charts"])
        .args(extra)
        .output()
        .expect("d11sim runs")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a command exited with `code`, showing its stderr otherwise.
fn expect_code(o: &std::process::Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: stderr:\n{}",
        stderr(o)
    );
}

/// Every CSV file under `dir` (relative path → bytes).
fn csvs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    collect(dir, dir, &mut out);
    out
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|x| x == "csv") {
            let rel = path.strip_prefix(root).expect("under root");
            let bytes = std::fs::read(&path).expect("readable");
            out.insert(rel.display().to_string(), bytes);
        }
    }
}

/// The CSV files every results folder holds (top level and raw/).
const EXPECTED_CSVS: [&str; 9] = [
    "budgets.csv",
    "funnel.csv",
    "raw/budgets.csv",
    "raw/funnel.csv",
    "raw/replications.csv",
    "raw/timeseries.csv",
    "replications.csv",
    "summary.csv",
    "timeseries.csv",
];

/// Asserts two results folders hold the same CSV files, byte for byte.
fn assert_same_csvs(a: &Path, b: &Path) {
    let (x, y) = (csvs(a), csvs(b));
    let names: Vec<&str> = x.keys().map(String::as_str).collect();
    assert_eq!(names, EXPECTED_CSVS, "{}", a.display());
    for (name, bytes) in &x {
        assert!(
            y.get(name) == Some(bytes),
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    assert_eq!(x.len(), y.len());
}

/// The manifest of a results folder, parsed.
fn manifest(dir: &Path) -> serde_json::Value {
    let text = common::read(&dir.join("manifest.json"));
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

/// Names in a folder, sorted (to check that a failed command left nothing behind).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
