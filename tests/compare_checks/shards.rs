//! `compare --shard K/N` and `merge` of its folders: the merged compare.csv, summary.csv and raw/
//! are byte-identical to an unsharded compare (p_best included, bootstrapped at merge time), and
//! every incompatible set of folders is refused with exit 2, naming the folder, writing nothing.
//!
//! These cases run `tests/data/tiny.toml` itself (500 users), as the README's sharding section's checks do.

use std::path::{Path, PathBuf};

use super::*;

/// Replications of every compare here: N = 3 gives shards of 4.
const REPLICATIONS: &str = "12";
/// The files of a merged compare folder that must match an unsharded compare byte for byte.
const COMPARE_CSVS: [&str; 4] = [
    "compare.csv",
    "summary.csv",
    "raw/replications.csv",
    "raw/splits.csv",
];

/// Options of every compare here unless `extra` gives the option itself.
const DEFAULTS: [(&str, &str); 2] = [("--steps", "3"), ("--engine", "agents")];

/// `d11sim compare tiny.toml --split-programs threshold_coupon,channels_boost --steps 3 --engine
/// agents --replications 12 --no-charts --quiet --out OUT` plus `extra` (which may replace
/// `--steps` or `--engine`), without scheduler variables unless `env` sets one.
fn compare(out: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = common::d11sim();
    cmd.arg("compare")
        .arg(common::data("tiny.toml"))
        .args(["--split-programs", "threshold_coupon,channels_boost"])
        .args(["--replications", REPLICATIONS, "--no-charts", "--quiet"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX");
    for (option, value) in DEFAULTS {
        if !extra.contains(&option) {
            cmd.args([option, value]);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("d11sim runs")
}

/// `d11sim merge DIRS --out OUT --quiet --no-charts`.
fn merge(dirs: &[PathBuf], out: &Path) -> std::process::Output {
    common::d11sim()
        .arg("merge")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .args(["--quiet", "--no-charts"])
        .output()
        .expect("d11sim runs")
}

fn expect_code(o: &std::process::Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: stderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs a compare into `out`, requiring success.
fn compare_ok(out: &Path, extra: &[&str]) -> PathBuf {
    expect_code(&compare(out, extra, &[]), 0, &format!("compare {extra:?}"));
    out.to_path_buf()
}

/// Shards K/N of the compare (plus `extra`) into `dir/<prefix>N-K`, one thread each.
fn shards(dir: &Path, n: u64, extra: &[&str]) -> Vec<PathBuf> {
    (1..=n)
        .map(|k| {
            let shard = format!("{k}/{n}");
            let mut args = vec!["--shard", &shard, "--threads", "1"];
            args.extend(extra);
            compare_ok(&dir.join(format!("{n}-{k}")), &args)
        })
        .collect()
}

fn manifest(dir: &Path) -> serde_json::Value {
    let text = common::read(&dir.join("manifest.json"));
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

/// Names directly in a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_same_compare_csvs(merged: &Path, whole: &Path) {
    for name in COMPARE_CSVS {
        let (a, b) = (merged.join(name), whole.join(name));
        let x = std::fs::read(&a).unwrap_or_else(|e| panic!("{}: {e}", a.display()));
        let y = std::fs::read(&b).unwrap_or_else(|e| panic!("{}: {e}", b.display()));
        assert!(
            x == y,
            "{name} differs between {} and the unsharded compare",
            a.display()
        );
    }
}

#[test]
fn merged_compare_shards_equal_an_unsharded_compare_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let whole = compare_ok(&tmp.path().join("whole"), &[]);
    for n in [1u64, 3] {
        let mut parts = shards(tmp.path(), n, &[]);
        // A shard holds its slice's raw data and manifest only: no provisional p_best.
        assert_eq!(listing(&parts[0]), ["manifest.json", "raw"]);
        let m = manifest(&parts[n as usize - 1]);
        assert_eq!(m["command"], "compare");
        assert_eq!(m["shard"], format!("{n}/{n}"));
        assert_eq!(m["replication_last"], 12);
        assert_eq!(m["objective"], "incremental_gmv");
        parts.reverse(); // merge takes its folders in any order
        let out = tmp.path().join(format!("merged-{n}"));
        expect_code(&merge(&parts, &out), 0, &format!("merge of {n} shards"));
        assert_same_compare_csvs(&out, &whole);
        let m = manifest(&out);
        assert_eq!(m["command"], "merge");
        assert_eq!(m["merged_from"].as_array().map(Vec::len), Some(n as usize));
        assert_eq!(m["splits"], manifest(&whole)["splits"]);
        assert_eq!(m["replications"], 12);
    }
    // `auto/3` under Slurm's index 1 runs shard 2/3, byte for byte.
    let auto = tmp.path().join("auto");
    let o = compare(
        &auto,
        &["--shard", "auto/3"],
        &[("SLURM_ARRAY_TASK_ID", "1")],
    );
    expect_code(&o, 0, "compare --shard auto/3");
    assert_eq!(manifest(&auto)["shard"], "2/3");
    for name in ["raw/replications.csv", "raw/splits.csv"] {
        let auto_bytes = std::fs::read(auto.join(name)).expect("auto shard's raw");
        let fixed_bytes = std::fs::read(tmp.path().join("3-2").join(name)).expect("shard 2/3");
        assert!(auto_bytes == fixed_bytes, "{name}: auto/3 differs from 2/3");
    }
}

/// Copies a shard folder (manifest.json and raw/), editing its manifest with `edit`.
fn edited_copy(from: &Path, to: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    std::fs::create_dir_all(to.join("raw")).expect("mkdir");
    for name in ["raw/replications.csv", "raw/splits.csv"] {
        std::fs::copy(from.join(name), to.join(name)).expect("copy raw");
    }
    let text = edit(common::read(&from.join("manifest.json")));
    std::fs::write(to.join("manifest.json"), text).expect("write manifest");
    to.to_path_buf()
}

#[test]
fn incompatible_compare_shards_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let base = shards(dir, 3, &[]);
    let (s1, s2, s3) = (base[0].clone(), base[1].clone(), base[2].clone());
    // Shard 3/3 of a compare (or run) that differs in one way each.
    let other = |name: &str, extra: &[&str]| {
        let mut args = vec!["--shard", "3/3"];
        args.extend(extra);
        compare_ok(&dir.join(name), &args)
    };
    let tiny = common::read(&common::data("tiny.toml"));
    let edited = dir.join("edited.toml");
    std::fs::write(&edited, tiny.replacen("users = 500", "users = 400", 1)).expect("write");
    let run3 = dir.join("run3");
    let o = common::d11sim()
        .arg("run")
        .arg(common::data("tiny.toml"))
        .args(["--replications", REPLICATIONS, "--engine", "agents"])
        .args(["--quiet", "--no-charts", "--shard", "3/3", "--out"])
        .arg(&run3)
        .output()
        .expect("d11sim runs");
    expect_code(&o, 0, "run --shard 3/3");
    let version = edited_copy(&s3, &dir.join("version"), |m| {
        m.replacen("\"version\": \"", "\"version\": \"0.0.0-", 1)
    });
    let mut short = common::read(&s3.join("raw/replications.csv"));
    short.truncate(short.trim_end().rfind('\n').expect("rows") + 1);
    let short_dir = edited_copy(&s3, &dir.join("short"), |m| m);
    std::fs::write(short_dir.join("raw/replications.csv"), short).expect("write");
    let scenario = dir.join("scenario");
    expect_code(
        &compare_edited(&edited, &scenario),
        0,
        "compare of edited.toml",
    );
    let two = || vec![s1.clone(), s2.clone()];
    let with = |last: PathBuf| {
        let mut dirs = two();
        dirs.push(last);
        dirs
    };
    let cases: Vec<(Vec<PathBuf>, &str, &str)> = vec![
        (with(run3.clone()), "run3", "shards of run and compare"),
        (
            vec![run3, s1.clone(), s2.clone()],
            "3-1",
            "shards of run and compare",
        ),
        (
            with(other("objective", &["--objective", "gmv"])),
            "objective",
            "objective gmv differs",
        ),
        (
            with(other("minimize", &["--minimize"])),
            "minimize",
            "minimize true differs",
        ),
        (
            with(other("steps", &["--steps", "4"])),
            "steps",
            "steps 4 differs",
        ),
        (
            with(other("seed", &["--seed", "9"])),
            "seed",
            "seed 9 differs",
        ),
        (
            with(other("cohorts", &["--engine", "cohorts"])),
            "cohorts",
            "engine cohorts differs",
        ),
        (with(scenario), "scenario", "scenario (SHA-256)"),
        (with(version), "version", "version: 0.0.0-"),
        (with(short_dir), "short", "rows (expected"),
        (two(), "3-2", "replications 9..=12 of 1..=12 are missing"),
        (
            vec![s1.clone(), s2.clone(), s2.clone(), s3.clone()],
            "3-2",
            "overlaps",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (dirs, folder, fragment)) in cases.iter().enumerate() {
        let out = dir.join(format!("refused-{i}"));
        let o = merge(dirs, &out);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        if o.status.code() != Some(2) || !stderr.contains(fragment) || !stderr.contains(folder) {
            failures.push(format!(
                "case {i} ({fragment}): exit {:?}, stderr: {stderr}",
                o.status.code()
            ));
        }
        if out.exists() {
            failures.push(format!("case {i} ({fragment}): {} written", out.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Shard 3/3 of the compare, of another scenario file.
fn compare_edited(scenario: &Path, out: &Path) -> std::process::Output {
    common::d11sim()
        .arg("compare")
        .arg(scenario)
        .args([
            "--split-programs",
            "threshold_coupon,channels_boost",
            "--steps",
            "3",
        ])
        .args(["--engine", "agents", "--replications", REPLICATIONS])
        .args(["--no-charts", "--quiet", "--shard", "3/3", "--out"])
        .arg(out)
        .output()
        .expect("d11sim runs")
}
