//! The results folder of `d11sim run`: every file of INTERFACE.md with its header and metrics, a
//! manifest that names the scenario's bytes, refusal to overwrite without `--force`, and old
//! folders that survive an interrupted run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::cli::{run_tiny, snapshot};
use crate::common;

/// How long a test waits for a run to reach its pause before the final rename.
const WAIT_FOR_SIBLING: Duration = Duration::from_secs(60);
/// Pause before the rename in interrupted runs: long enough to be killed inside it.
const PAUSE_MS: &str = "3000";
/// Polling interval while waiting for the temporary sibling.
const POLL: Duration = Duration::from_millis(20);

/// Metric names INTERFACE.md requires in summary.csv, for tiny.toml's funders and programs.
const METRICS: [&str; 34] = [
    "impressions",
    "boosted_impressions",
    "impressions_offered",
    "clicks",
    "sessions",
    "jump_failures",
    "landed",
    "live_room_sessions",
    "live_room_overflow",
    "live_room_closed",
    "leaked_to_competitor",
    "order_attempts",
    "payment_failures",
    "alipay_setups",
    "orders",
    "gmv",
    "discount",
    "traffic_spend",
    "subsidy_spend",
    "spend.alibaba",
    "spend.tencent",
    "program_spend.threshold_coupon",
    "program_spend.channels_boost",
    "exhausted_hour.threshold_coupon",
    "exhausted_hour.channels_boost",
    "exhausted_share.threshold_coupon",
    "exhausted_share.channels_boost",
    "baseline_gmv",
    "baseline_orders",
    "incremental_gmv",
    "incremental_orders",
    "iroi",
    "return.alibaba",
    "return.tencent",
];

/// The header line of each CSV file (INTERFACE.md, *Results folder*).
const HEADERS: [(&str, &str); 4] = [
    (
        "summary.csv",
        "metric,mean,std,ci95_low,ci95_high,p05,p50,p95,replications",
    ),
    (
        "timeseries.csv",
        "tick,time,metric,mean,ci95_low,ci95_high,band_low,band_high",
    ),
    (
        "funnel.csv",
        "placement,destination,segment,stage,mean,ci95_low,ci95_high",
    ),
    (
        "budgets.csv",
        "tick,time,program,remaining_mean,band_low,band_high",
    ),
];

fn first_line(path: &Path) -> String {
    common::read(path).lines().next().unwrap_or("").to_string()
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r
        .headers()
        .expect("a header")
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|x| x.expect("a record").iter().map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn the_results_folder_has_every_file_header_and_metric() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let out = tmp.path().join("tiny");
    run_tiny(&out, &[]);
    for (name, header) in HEADERS {
        assert_eq!(first_line(&out.join(name)), header, "{name}");
    }
    assert!(first_line(&out.join("replications.csv")).starts_with("replication,seed,"));
    assert!(out.join("raw").is_dir(), "raw/ exists");
    assert!(
        std::fs::read_dir(out.join("raw")).expect("raw/").count() > 0,
        "raw/ holds files"
    );
    let (_, summary) = read_csv(&out.join("summary.csv"));
    let names: Vec<&str> = summary.iter().map(|r| r[0].as_str()).collect();
    for metric in METRICS {
        assert!(
            names.contains(&metric),
            "summary.csv lacks {metric}: {names:?}"
        );
    }
    check_manifest(&out);
    check_replications(&out);
}

fn check_manifest(out: &Path) {
    let text = common::read(&out.join("manifest.json"));
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest.json parses");
    let bytes = std::fs::read(common::data("tiny.toml")).expect("tiny.toml");
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(manifest["scenario_sha256"], serde_json::Value::from(sha));
    assert_eq!(manifest["seed"], serde_json::Value::from(7));
    assert_eq!(manifest["replications"], serde_json::Value::from(10));
    assert!(manifest.get("engine").is_some_and(|e| e.is_string()));
}

/// One row per replication, and incremental_gmv = gmv − baseline_gmv in each (float rounding).
fn check_replications(out: &Path) {
    let (header, rows) = read_csv(&out.join("replications.csv"));
    assert_eq!(rows.len(), 10, "tiny.toml has 10 replications");
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("replications.csv lacks {name}"))
    };
    let (gmv, base, inc) = (col("gmv"), col("baseline_gmv"), col("incremental_gmv"));
    let num = |s: &str| s.parse::<f64>().unwrap_or_else(|e| panic!("`{s}`: {e}"));
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], (i + 1).to_string(), "replications in order");
        assert_eq!(row[1], "7", "the seed column");
        let (g, b, d) = (num(&row[gmv]), num(&row[base]), num(&row[inc]));
        assert!(
            (d - (g - b)).abs() <= 1e-6 * g.abs().max(b.abs()).max(1.0),
            "replication {}: incremental_gmv {d} ≠ gmv {g} − baseline_gmv {b}",
            i + 1
        );
    }
}

#[test]
fn a_second_run_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let out = tmp.path().join("tiny");
    run_tiny(&out, &["--seed", "1"]);
    let before = snapshot(&out);
    let a = common::d11sim()
        .arg("run")
        .arg(common::data("tiny.toml"))
        .args(["--quiet", "--seed", "2", "--out"])
        .arg(&out)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(
        snapshot(&out) == before,
        "the refused run left the folder as it was"
    );
    run_tiny(&out, &["--seed", "2", "--force"]);
    let after = snapshot(&out);
    let summary = |s: &[(PathBuf, Vec<u8>)]| {
        s.iter()
            .find(|(p, _)| p == Path::new("summary.csv"))
            .map(|(_, b)| b.clone())
            .expect("summary.csv")
    };
    assert!(
        summary(&after) != summary(&before),
        "--force replaced the results"
    );
    assert_eq!(siblings(tmp.path(), "tiny"), Vec::<PathBuf>::new());
}

/// Temporary siblings `.<name>.d11sim-tmp-<pid>` of a target in `parent`.
fn siblings(parent: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!(".{name}.d11sim-tmp-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .expect("the parent folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    found.sort();
    found
}

/// Starts `run --force` with the pause before the rename, and waits until its temporary sibling
/// is complete (manifest.json is written last).
fn start_paused_run(out: &Path) -> (Child, PathBuf) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_d11sim"));
    // A shell without job control starts background commands with SIGINT ignored, and children
    // inherit that: give the run the default disposition so that the test means the same anywhere.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command
        .arg("run")
        .arg(common::data("tiny.toml"))
        .args(["--quiet", "--force", "--seed", "3", "--out"])
        .arg(out)
        .env("D11SIM_TEST_PAUSE_BEFORE_RENAME_MS", PAUSE_MS)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("d11sim starts");
    let name = out.file_name().expect("a name").to_string_lossy();
    let sibling = out
        .parent()
        .expect("a parent")
        .join(format!(".{name}.d11sim-tmp-{}", child.id()));
    let started = Instant::now();
    while !sibling.join("manifest.json").exists() {
        if let Some(status) = child.try_wait().expect("the child's status") {
            panic!("the run ended ({status}) before its sibling was complete");
        }
        assert!(
            started.elapsed() < WAIT_FOR_SIBLING,
            "no sibling after {WAIT_FOR_SIBLING:?}"
        );
        std::thread::sleep(POLL);
    }
    (child, sibling)
}

fn interrupted_run_leaves_the_old_folder(signal: libc::c_int) {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let out = tmp.path().join("tiny");
    run_tiny(&out, &["--seed", "1"]);
    let before = snapshot(&out);
    let (mut child, sibling) = start_paused_run(&out);
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: sends a signal to our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal sent");
    let status = child.wait().expect("the child ends");
    assert!(!status.success(), "the interrupted run did not succeed");
    assert!(snapshot(&out) == before, "the old folder is byte-identical");
    if signal == libc::SIGKILL {
        assert!(sibling.exists(), "a killed run leaves its sibling");
    }
    run_tiny(&out, &["--seed", "4", "--force"]);
    assert_eq!(
        siblings(tmp.path(), "tiny"),
        Vec::<PathBuf>::new(),
        "the next run removed the leftover sibling"
    );
    assert!(snapshot(&out) != before, "the next run replaced the folder");
}

#[test]
fn a_killed_run_leaves_the_old_folder_intact() {
    interrupted_run_leaves_the_old_folder(libc::SIGKILL);
}

#[test]
fn an_interrupted_run_leaves_the_old_folder_intact() {
    interrupted_run_leaves_the_old_folder(libc::SIGINT);
}
