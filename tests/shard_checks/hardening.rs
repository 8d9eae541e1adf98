//! The results folder under interruption (SIGINT and SIGKILL at pseudo-random moments while `run
//! --force` replaces a folder) and disk errors (exit 1, a message naming the path, nothing else
//! touched). The figures printed here are those of the README's sharding section (`-- --nocapture`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// Kills per test: at least 20 (the README's sharding section), half SIGINT, half SIGKILL.
const KILLS: u64 = 24;
/// Replications of the interrupted runs: about a third of a second of work on one thread.
const KILLED_REPLICATIONS: &str = "200";
/// Seed of the kill delays, so that every run of the test kills at the same moments.
const DELAY_SEED: u64 = 0x05ee_dd11;
/// Pause (ms) the test hook inserts between a complete folder and its move into place, so that
/// some kills land in the write phase itself.
const PAUSE_MS: &str = "40";

/// Kill delays are drawn uniformly over this share (%) of an uninterrupted run's duration, so
/// that a few kills come too late and the run completes.
const SPAN_PERCENT: u64 = 150;

/// splitmix64: a portable, fixed sequence of pseudo-random numbers for the delays.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The interrupted command: tiny with `seed`, replacing `out`.
fn replacing(out: &Path, seed: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_d11sim"));
    // A shell without job control starts background commands with SIGINT ignored, and children
    // inherit that: restore the default so that SIGINT means the same wherever the suite runs.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    c.arg("run")
        .arg(common::data("tiny.toml"))
        .args([
            "--replications",
            KILLED_REPLICATIONS,
            "--threads",
            "1",
            "--quiet",
            "--no-charts",
            "--force",
        ])
        .args(["--seed", seed, "--out"])
        .arg(out)
        .env(d11sim::results::atomic::PAUSE_ENV, PAUSE_MS)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[test]
fn a_killed_run_leaves_the_old_folder_or_the_complete_new_one() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (old, new) = (tmp.path().join("ref-old"), tmp.path().join("ref-new"));
    for (dir, seed) in [(&old, "1"), (&new, "2")] {
        let status = replacing(dir, seed)
            .env_remove(d11sim::results::atomic::PAUSE_ENV)
            .status();
        assert!(status.expect("runs").success());
    }
    let (old_csvs, new_csvs) = (csvs(&old), csvs(&new));
    assert_ne!(old_csvs, new_csvs);
    let arena = tmp.path().join("arena");
    std::fs::create_dir(&arena).expect("mkdir");
    let target = arena.join("out");
    // Delays span an uninterrupted replacing run, timed here (the machine may be busy).
    common::copy_dir(&old, &target);
    let started = Instant::now();
    assert!(replacing(&target, "2").status().expect("runs").success());
    let full_ms = started.elapsed().as_millis() as u64 * SPAN_PERCENT / 100;
    let mut state = DELAY_SEED;
    let (mut kept_old, mut got_new, mut leftovers) = (0, 0, 0);
    for i in 0..KILLS {
        let _ = std::fs::remove_dir_all(&target);
        common::copy_dir(&old, &target);
        let delay = splitmix(&mut state) % full_ms;
        let signal = if i % 2 == 0 {
            libc::SIGINT
        } else {
            libc::SIGKILL
        };
        let mut child = replacing(&target, "2").spawn().expect("spawns");
        std::thread::sleep(Duration::from_millis(delay));
        let pid = i32::try_from(child.id()).expect("pid fits");
        // SAFETY: plain kill(2) of our own child, which has not been waited for yet.
        unsafe { libc::kill(pid, signal) };
        let _ = child.wait();
        let found = csvs(&target);
        if found == old_csvs {
            kept_old += 1;
        } else if found == new_csvs {
            got_new += 1;
        } else {
            panic!(
                "kill {i} after {delay} ms left a folder that is neither the old nor the new one"
            );
        }
        assert!(
            target.join("manifest.json").is_file(),
            "kill {i}: no manifest"
        );
        let siblings = listing(&arena).len() - 1;
        assert!(siblings <= 1, "kill {i}: {siblings} temporary siblings");
        leftovers += siblings;
    }
    // The next run removes any leftover sibling.
    assert!(replacing(&target, "2").status().expect("runs").success());
    assert_eq!(listing(&arena), ["out"]);
    eprintln!(
        "interruption: {KILLS} kills ({} SIGINT, {} SIGKILL) at 0–{full_ms} ms: {kept_old} left \
         the old folder, {got_new} the complete new one, 0 anything else; {leftovers} left a \
         temporary sibling, removed by the next run",
        KILLS / 2,
        KILLS / 2
    );
}

/// A command writing to an unwritable place exits 1, names the path, and writes nothing.
fn fails_to_write(o: &std::process::Output, path: &Path) {
    expect_code(o, 1, "unwritable --out");
    let message = stderr(o);
    assert!(message.contains("cannot write"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn an_unwritable_out_exits_1_and_touches_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let shard = tmp.path().join("shard");
    expect_code(&run_tiny(&shard, &["--shard", "1/1"]), 0, "run");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a folder").expect("write");
    let before = listing(tmp.path());
    // Under a regular file, for `run` and for `merge`.
    let under_file = file.join("out");
    fails_to_write(&run_tiny(&under_file, &[]), &file);
    fails_to_write(
        &merge(std::slice::from_ref(&shard), &under_file, &[]),
        &file,
    );
    assert_eq!(listing(tmp.path()), before);
    assert_eq!(common::read(&file), "not a folder");
    // Inside a folder nobody may write to: /proc (root may write to a chmod 555 folder).
    let proc_out = Path::new("/proc").join("d11sim-test-out");
    fails_to_write(&run_tiny(&proc_out, &[]), Path::new("/proc"));
    fails_to_write(&merge(&[shard], &proc_out, &[]), Path::new("/proc"));
    readonly_folder(tmp.path());
    eprintln!(
        "disk errors: run and merge into an unwritable --out: exit 1, path named, nothing written"
    );
}

/// A chmod 555 folder, where the OS enforces it (not for root).
fn readonly_folder(tmp: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let ro = tmp.join("read-only");
    std::fs::create_dir(&ro).expect("mkdir");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let enforced = std::fs::write(ro.join("probe"), "").is_err();
    if enforced {
        fails_to_write(&run_tiny(&ro.join("out"), &[]), &ro);
        assert_eq!(listing(&ro), Vec::<String>::new());
    } else {
        eprintln!("disk errors: running as root, so chmod 555 is not enforced; /proc stands in");
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
