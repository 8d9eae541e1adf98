//! Exit codes of `compare`, `chart`, `validate`, `scenario` and `merge` (INTERFACE.md): 0 on
//! success, 2 on bad usage (an unknown flag, a missing or extra argument) and on bad input, 1 on a
//! results folder that cannot be written (`--out` under a regular file). A refused command writes
//! nothing.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::*;

/// A flag no command has.
const UNKNOWN_FLAG: &str = "--no-such-flag";

fn d11sim(args: &[&str], paths: &[&Path]) -> Output {
    common::d11sim()
        .args(args)
        .args(paths)
        .output()
        .expect("d11sim runs")
}

/// `compare tiny.toml --split-programs threshold_coupon,channels_boost --steps 2
/// --replications 2 --no-charts --quiet --out OUT` plus `extra`.
fn compare(out: &Path, extra: &[&str]) -> Output {
    common::d11sim()
        .arg("compare")
        .arg(common::data("tiny.toml"))
        .args(["--split-programs", "threshold_coupon,channels_boost"])
        .args([
            "--steps",
            "2",
            "--replications",
            "2",
            "--no-charts",
            "--quiet",
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("d11sim runs")
}

/// `run tiny.toml --replications 4 --no-charts --quiet --out OUT` plus `extra`, asserted to
/// succeed.
fn run(out: &Path, extra: &[&str]) {
    let o = common::d11sim()
        .arg("run")
        .arg(common::data("tiny.toml"))
        .args(["--replications", "4", "--no-charts", "--quiet", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("d11sim runs");
    expect_code(&o, 0, "run tiny.toml");
}

/// A regular file and a path under it, which no command can create.
fn under_a_file(tmp: &Path) -> (PathBuf, PathBuf) {
    let file = tmp.join("a-file");
    std::fs::write(&file, "not a folder").expect("write");
    let out = file.join("out");
    (file, out)
}

/// Asserts an unwritable `--out`: exit 1, the path named, the file untouched.
fn unwritable(o: &Output, file: &Path, what: &str) {
    expect_code(o, 1, what);
    let message = stderr(o);
    assert!(
        message.contains(&file.display().to_string()),
        "{what}: {message}"
    );
    assert_eq!(common::read(file), "not a folder");
}

#[test]
fn compare_exits_0_2_and_1() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("cmp");
    expect_code(&compare(&out, &[]), 0, "compare");
    assert!(out.join("compare.csv").is_file());
    let refused = tmp.path().join("refused");
    expect_code(
        &compare(&refused, &[UNKNOWN_FLAG]),
        2,
        "compare with an unknown flag",
    );
    let bad_steps = compare(&refused, &["--steps", "1"]);
    expect_code(&bad_steps, 2, "compare --steps 1");
    let bad_objective = compare(&refused, &["--objective", "no_such_metric"]);
    expect_code(&bad_objective, 2, "compare --objective no_such_metric");
    let splits = tmp.path().join("bad_splits.toml");
    std::fs::write(
        &splits,
        "[[split]]\nname = \"x\"\nbudget = { nope = 1.0 }\n",
    )
    .expect("write");
    let o = common::d11sim()
        .arg("compare")
        .arg(common::data("tiny.toml"))
        .arg("--splits")
        .arg(&splits)
        .args(["--replications", "2", "--no-charts", "--quiet", "--out"])
        .arg(&refused)
        .output()
        .expect("d11sim runs");
    expect_code(&o, 2, "compare with a bad splits file");
    assert!(stderr(&o).contains("bad_splits.toml:3:"), "{}", stderr(&o));
    expect_code(
        &compare(&out, &[]),
        2,
        "compare over a folder without --force",
    );
    assert!(
        !refused.exists(),
        "a refused compare wrote {}",
        refused.display()
    );
    let bad_scenario = common::d11sim()
        .arg("compare")
        .arg(common::data("bad_ten_mistakes.toml"))
        .args(["--split-programs", "a,b", "--out"])
        .arg(tmp.path().join("never"))
        .output()
        .expect("d11sim runs");
    expect_code(&bad_scenario, 2, "compare of an invalid scenario");
    assert!(!tmp.path().join("never").exists());
    let (file, under) = under_a_file(tmp.path());
    unwritable(&compare(&under, &[]), &file, "compare --out under a file");
}

#[test]
fn chart_exits_0_and_2() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("run");
    run(&dir, &[]);
    expect_code(&d11sim(&["chart"], &[&dir]), 0, "chart of a run folder");
    assert!(dir.join("charts").is_dir(), "chart drew nothing");
    let unknown = d11sim(&["chart", UNKNOWN_FLAG], &[&dir]);
    expect_code(&unknown, 2, "chart with an unknown flag");
    expect_code(&d11sim(&["chart"], &[]), 2, "chart without a folder");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    expect_code(
        &d11sim(&["chart"], &[&empty]),
        2,
        "chart of an empty folder",
    );
    let broken = tmp.path().join("broken");
    run(&broken, &[]);
    let summary = broken.join("summary.csv");
    let text = common::read(&summary);
    std::fs::write(&summary, text.replacen(',', ",x", 3)).expect("write");
    expect_code(
        &d11sim(&["chart"], &[&broken]),
        2,
        "chart of a broken folder",
    );
}

#[test]
fn validate_and_scenario_exit_0_and_2() {
    let tiny = common::data("tiny.toml");
    let bad = common::data("bad_ten_mistakes.toml");
    expect_code(&d11sim(&["validate"], &[&tiny]), 0, "validate tiny");
    expect_code(&d11sim(&["validate"], &[&bad]), 2, "validate a bad file");
    expect_code(
        &d11sim(&["validate"], &[&tiny, &bad]),
        2,
        "validate good and bad",
    );
    let missing = Path::new("/nonexistent/d11sim.toml");
    expect_code(
        &d11sim(&["validate"], &[missing]),
        2,
        "validate a missing file",
    );
    expect_code(
        &d11sim(&["validate", UNKNOWN_FLAG], &[&tiny]),
        2,
        "validate --bogus",
    );
    expect_code(&d11sim(&["validate"], &[]), 2, "validate without a file");
    let printed = d11sim(&["scenario"], &[]);
    expect_code(&printed, 0, "scenario");
    assert!(String::from_utf8_lossy(&printed.stdout).contains("[scenario]"));
    expect_code(
        &d11sim(&["scenario", "--default"], &[]),
        0,
        "scenario --default",
    );
    expect_code(
        &d11sim(&["scenario", UNKNOWN_FLAG], &[]),
        2,
        "scenario --bogus",
    );
    expect_code(
        &d11sim(&["scenario", "extra"], &[]),
        2,
        "scenario with an argument",
    );
    expect_code(&d11sim(&["no-such-command"], &[]), 2, "an unknown command");
}

#[test]
fn merge_exits_0_2_and_1() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (one, two) = (tmp.path().join("s1"), tmp.path().join("s2"));
    run(&one, &["--shard", "1/2"]);
    run(&two, &["--shard", "2/2"]);
    let merged = tmp.path().join("merged");
    let merge = |out: &Path, dirs: &[&Path], extra: &[&str]| {
        common::d11sim()
            .arg("merge")
            .args(dirs)
            .arg("--out")
            .arg(out)
            .args(["--quiet", "--no-charts"])
            .args(extra)
            .output()
            .expect("d11sim runs")
    };
    expect_code(&merge(&merged, &[&one, &two], &[]), 0, "merge");
    assert!(merged.join("summary.csv").is_file());
    let refused = tmp.path().join("refused");
    let unknown = merge(&refused, &[&one, &two], &[UNKNOWN_FLAG]);
    expect_code(&unknown, 2, "merge with an unknown flag");
    expect_code(
        &merge(&refused, &[&one], &[]),
        2,
        "merge with a shard missing",
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    expect_code(
        &merge(&refused, &[&one, &empty], &[]),
        2,
        "merge of a non-shard",
    );
    let existing = merge(&merged, &[&one, &two], &[]);
    expect_code(
        &existing,
        2,
        "merge over an existing folder without --force",
    );
    assert!(
        !refused.exists(),
        "a refused merge wrote {}",
        refused.display()
    );
    let (file, under) = under_a_file(tmp.path());
    unwritable(
        &merge(&under, &[&one, &two], &[]),
        &file,
        "merge --out under a file",
    );
}
