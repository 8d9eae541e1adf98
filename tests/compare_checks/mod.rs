//! `d11sim compare` as a user runs it: sweep ends against `run`, the reference's zero difference,
//! `p_best`, thread-count independence, every bad input (exit 2, nothing written), and `--shard`
//! with `merge` (byte-identity with an unsharded compare, and every refusal).
//!
//! Every case uses `tests/data/tiny.toml` shrunk to 200 users (programs `threshold_coupon`, a
//! coupon, and `channels_boost`, a traffic buy; funders alibaba and tencent co-fund both), written
//! into a temporary folder that is also the working directory, with at most 100 replications.

mod bad_input;
mod results;
mod shards;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common;

/// The scenario every case starts from.
const TINY: &str = include_str!("../data/tiny.toml");
/// Users of the test scenario (tiny's 500 shrunk, to keep the suite fast).
const TEST_USERS: &str = "users = 200";

/// Tiny with 200 users and each `(old line, new line)` replaced (each `old` must occur once).
fn scenario_text(edits: &[(&str, &str)]) -> String {
    let mut text = TINY.replace("users = 500", TEST_USERS);
    for (old, new) in edits {
        assert_eq!(text.matches(old).count(), 1, "`{old}` once in tiny.toml");
        text = text.replace(old, new);
    }
    text
}

/// Writes a file into `dir` and returns its path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// Runs `d11sim ARGS` with `dir` as the working directory.
fn d11sim_in(dir: &Path, args: &[&str]) -> std::process::Output {
    common::d11sim()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("d11sim runs")
}

/// Runs and requires success; returns stdout.
fn ok_in(dir: &Path, args: &[&str]) -> String {
    let out = d11sim_in(dir, args);
    assert!(
        out.status.success(),
        "d11sim {args:?} failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A CSV file as rows of column → value.
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(String::from)
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.expect("a CSV record");
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// A CSV cell as a number; `None` when empty.
fn num(row: &BTreeMap<String, String>, column: &str) -> Option<f64> {
    let text = row
        .get(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    (!text.is_empty()).then(|| {
        text.parse()
            .unwrap_or_else(|e| panic!("{column} = {text}: {e}"))
    })
}

/// The rows of `compare.csv` of one split.
fn split_rows<'a>(
    rows: &'a [BTreeMap<String, String>],
    split: &str,
) -> Vec<&'a BTreeMap<String, String>> {
    rows.iter().filter(|r| r["split"] == split).collect()
}

/// `p_best` of each split on the objective's rows, in file order.
fn p_best(rows: &[BTreeMap<String, String>], objective: &str) -> Vec<(String, f64)> {
    rows.iter()
        .filter(|r| r["metric"] == objective)
        .map(|r| {
            (
                r["split"].clone(),
                num(r, "p_best").expect("p_best on the objective"),
            )
        })
        .collect()
}
