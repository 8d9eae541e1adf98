//! `compare --force` killed at pseudo-random moments while it replaces an existing compare folder
//! (SIGINT and SIGKILL alternately): the folder is always byte-identical to the old one or to a
//! complete new one (every file but manifest.json, which records wall time), with at most one
//! temporary sibling, which the next run removes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// Kills: at least 20, half SIGINT, half SIGKILL.
const KILLS: u64 = 24;
/// Seed of the kill delays, so that every run of the test kills at the same moments.
const DELAY_SEED: u64 = 0xc0_3a_d1_1e;
/// Pause (ms) the test hook inserts between the complete temporary folder and its move into
/// place, so that some kills land in the write phase itself.
const PAUSE_MS: &str = "40";
/// Kill delays are drawn uniformly over this share (%) of an uninterrupted run's duration, so
/// that a few kills come too late and the run completes.
const SPAN_PERCENT: u64 = 130;
/// The only file allowed to differ between two complete runs of the same command.
const MANIFEST: &str = "manifest.json";
/// Seed of the old folder (the new one uses tiny.toml's own seed), so the two differ.
const OLD_SEED: &str = "1";

/// splitmix64: a portable, fixed sequence of pseudo-random numbers for the delays.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `d11sim compare tests/data/tiny.toml --split-programs threshold_coupon,channels_boost --steps
/// 3 --replications 20 --force --out OUT --no-charts --quiet` plus `extra`.
fn compare(out: &Path, extra: &[&str]) -> Command {
    let mut c = d11sim_command();
    c.arg("compare")
        .arg(common::data("tiny.toml"))
        .args(["--split-programs", "threshold_coupon,channels_boost"])
        .args(["--steps", "3", "--replications", "20", "--force", "--out"])
        .arg(out)
        .args(["--no-charts", "--quiet"])
        .args(extra)
        .env(d11sim::results::atomic::PAUSE_ENV, PAUSE_MS)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Every file of a folder but the manifest; the manifest must exist.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = files(dir);
    assert!(
        all.remove(MANIFEST).is_some(),
        "{}: no manifest",
        dir.display()
    );
    all
}

#[test]
fn a_killed_compare_leaves_the_old_folder_or_the_complete_new_one() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (old, new) = (tmp.path().join("ref-old"), tmp.path().join("ref-new"));
    let ok = |c: &mut Command| c.env_remove(d11sim::results::atomic::PAUSE_ENV).status();
    assert!(
        ok(&mut compare(&old, &["--seed", OLD_SEED]))
            .expect("runs")
            .success()
    );
    assert!(ok(&mut compare(&new, &[])).expect("runs").success());
    let (old_files, new_files) = (contents(&old), contents(&new));
    assert!(
        old_files.contains_key("compare.csv"),
        "{:?}",
        old_files.keys()
    );
    assert_ne!(old_files, new_files, "the old and new folders must differ");
    let arena = tmp.path().join("arena");
    std::fs::create_dir(&arena).expect("mkdir");
    let target = arena.join("out");
    // Delays span an uninterrupted replacing run, timed here (the machine may be busy).
    common::copy_dir(&old, &target);
    let started = Instant::now();
    assert!(compare(&target, &[]).status().expect("runs").success());
    assert_eq!(contents(&target), new_files, "an uninterrupted run differs");
    let span_ms = (started.elapsed().as_millis() as u64 * SPAN_PERCENT / 100).max(1);
    let mut state = DELAY_SEED;
    let (mut kept_old, mut got_new, mut leftovers) = (0, 0, 0);
    for i in 0..KILLS {
        let _ = std::fs::remove_dir_all(&target);
        common::copy_dir(&old, &target);
        let delay = splitmix(&mut state) % span_ms;
        let signal = if i % 2 == 0 {
            libc::SIGINT
        } else {
            libc::SIGKILL
        };
        let mut child = compare(&target, &[]).spawn().expect("spawns");
        std::thread::sleep(Duration::from_millis(delay));
        let pid = i32::try_from(child.id()).expect("pid fits");
        // SAFETY: kill(2) of our own child, which has not been waited for yet.
        unsafe { libc::kill(pid, signal) };
        let _ = child.wait();
        let found = contents(&target);
        if found == old_files {
            kept_old += 1;
        } else if found == new_files {
            got_new += 1;
        } else {
            panic!("kill {i} (signal {signal}) after {delay} ms left a folder neither old nor new");
        }
        let siblings = listing(&arena).len() - 1;
        assert!(siblings <= 1, "kill {i}: {siblings} temporary siblings");
        leftovers += siblings;
    }
    // The next run removes any leftover sibling.
    assert!(compare(&target, &[]).status().expect("runs").success());
    assert_eq!(listing(&arena), ["out"]);
    assert_eq!(contents(&target), new_files);
    eprintln!(
        "compare interruption: {KILLS} kills at 0–{span_ms} ms: {kept_old} old, {got_new} new, \
         {leftovers} temporary siblings, removed by the next run"
    );
}
