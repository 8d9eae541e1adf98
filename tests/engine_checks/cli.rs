//! `d11sim run` end to end: results that do not depend on the thread count, seeds that matter,
//! and exit codes.

use std::path::{Path, PathBuf};

use crate::common;

/// The files whose bytes must not depend on threads (the manifest records threads and wall time).
pub const DETERMINISTIC: [&str; 9] = [
    "summary.csv",
    "replications.csv",
    "timeseries.csv",
    "funnel.csv",
    "budgets.csv",
    "raw/replications.csv",
    "raw/timeseries.csv",
    "raw/funnel.csv",
    "raw/budgets.csv",
];

/// Runs `d11sim run tiny.toml --quiet --engine agents --out DIR EXTRA…` and asserts success.
pub fn run_tiny(out: &Path, extra: &[&str]) {
    run_tiny_with("agents", out, extra);
}

/// Runs `d11sim run tiny.toml --quiet --engine ENGINE --out DIR EXTRA…` and asserts success.
pub fn run_tiny_with(engine: &str, out: &Path, extra: &[&str]) {
    common::d11sim()
        .arg("run")
        .arg(common::data("tiny.toml"))
        .args(["--quiet", "--engine", engine, "--out"])
        .arg(out)
        .args(extra)
        .assert()
        .success();
}

/// Every file of a folder (recursively), relative path → bytes, sorted by path.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                let bytes = std::fs::read(&path).expect("readable file");
                out.push((rel, bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

fn files_of(dir: &Path) -> Vec<Vec<u8>> {
    DETERMINISTIC
        .iter()
        .map(|name| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

/// The agents engine (this module's subject) and the default one.
#[test]
fn results_are_byte_identical_on_1_2_and_8_threads() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    for engine in ["agents", "cohorts"] {
        let one = tmp.path().join(format!("{engine}1"));
        run_tiny_with(engine, &one, &["--threads", "1"]);
        let reference = files_of(&one);
        for threads in ["2", "8"] {
            let out = tmp.path().join(format!("{engine}{threads}"));
            run_tiny_with(engine, &out, &["--threads", threads]);
            for (name, (a, b)) in DETERMINISTIC
                .iter()
                .zip(reference.iter().zip(files_of(&out)))
            {
                assert!(
                    *a == b,
                    "{engine}: {name} differs between 1 and {threads} threads"
                );
            }
        }
    }
}

#[test]
fn the_seed_decides_the_results() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    run_tiny(&a, &["--seed", "11"]);
    run_tiny(&b, &["--seed", "11"]);
    run_tiny(&c, &["--seed", "12"]);
    assert_eq!(files_of(&a), files_of(&b), "the same seed twice");
    for (name, (x, y)) in DETERMINISTIC
        .iter()
        .zip(files_of(&a).iter().zip(files_of(&c)))
    {
        assert!(*x != y, "{name} is the same under seeds 11 and 12");
    }
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

#[test]
fn a_bad_scenario_exits_2() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let bad = tmp.path().join("bad.toml");
    let text = common::read(&common::data("tiny.toml")).replace("users = 500", "users = 0");
    std::fs::write(&bad, text).expect("write the scenario");
    let out = tmp.path().join("out");
    let a = common::d11sim()
        .arg("run")
        .arg(&bad)
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .code(2);
    assert!(
        stderr_of(&a).contains("population.users"),
        "{}",
        stderr_of(&a)
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn agents_refuses_a_billion_users_and_names_cohorts() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let big = tmp.path().join("big.toml");
    let text =
        common::read(&common::data("tiny.toml")).replace("users = 500", "users = 1000000000");
    std::fs::write(&big, text).expect("write the scenario");
    let out = tmp.path().join("out");
    let a = common::d11sim()
        .arg("run")
        .arg(&big)
        .args(["--quiet", "--engine", "agents", "--out"])
        .arg(&out)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1);
    assert!(
        stderr_of(&a).contains("--engine cohorts"),
        "{}",
        stderr_of(&a)
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn an_unwritable_out_exits_1() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let file = tmp.path().join("a_file");
    std::fs::write(&file, "not a folder").expect("write a file");
    let a = common::d11sim()
        .arg("run")
        .arg(common::data("tiny.toml"))
        .args(["--quiet", "--replications", "1", "--out"])
        .arg(file.join("out"))
        .assert()
        .code(1);
    assert!(stderr_of(&a).contains("a_file"), "{}", stderr_of(&a));
    assert_eq!(common::read(&file), "not a folder");
}
