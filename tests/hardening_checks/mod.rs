//! Hardening (issue 8, item 4): extremes of scale and of every probability on both engines, the
//! splits file under fuzzing, `compare` killed while it replaces a folder, the exit codes of
//! `compare`, `chart`, `validate`, `scenario` and `merge`, and every accepted extreme value of
//! tiny.toml run on both engines.
//!
//! Scenarios are `tests/data/hard_*.toml` or `tiny.toml`, edited line by line by [`edit`]. Runs
//! that could take unbounded time or memory on a faulty engine (10^11 users) run in a child
//! process with a deadline and an address-space limit ([`bounded`]), so that a regression fails
//! the test instead of hanging the suite or exhausting the machine.

mod exit_codes;
mod extremes;
mod interrupt;
mod splits_fuzz;
mod valid_extremes;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use d11sim::scenario::{self, Scenario};

use crate::common;

/// How often a bounded child is polled while the test waits for it.
const POLL: Duration = Duration::from_millis(20);

/// `base` with each `(old, new)` applied: the one line whose trimmed text is `old` becomes `new`.
/// `old` must occur exactly once, so that an edit cannot silently miss.
pub fn edit(base: &str, edits: &[(&str, &str)]) -> String {
    let mut lines: Vec<String> = base.lines().map(String::from).collect();
    for (old, new) in edits {
        let found: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].trim() == *old)
            .collect();
        assert_eq!(found.len(), 1, "`{old}` must be on exactly one line");
        lines[found[0]] = new.to_string();
    }
    lines.join("\n") + "\n"
}

/// The text of a fixture under `tests/data/`.
pub fn fixture(name: &str) -> String {
    common::read(&common::data(name))
}

/// Loads a scenario text, panicking with every problem (a test's scenario must be valid).
pub fn load(text: &str) -> Scenario {
    scenario::load_str(text, "hardening.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A `d11sim` command (std, not assert_cmd, so that it can be spawned and killed) whose SIGINT
/// has the default disposition: a shell without job control starts background commands with
/// SIGINT ignored, and children inherit that.
pub fn d11sim_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_d11sim"));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    c
}

/// Limits the address space of `command`'s process to `bytes` (setrlimit in the child), so that
/// an engine whose memory grows with users fails fast instead of exhausting the machine.
pub fn limit_memory(command: &mut Command, bytes: u64) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// How a bounded child ended.
pub enum Bounded {
    /// It exited (or was killed by a signal of its own) within the deadline.
    Finished(Output),
    /// It was still running at the deadline and was killed.
    TimedOut,
}

/// Runs `command` with stdout and stderr captured, in a process group of its own, killing that
/// group (SIGKILL: the child and any process it started) if it has not finished after `deadline`.
pub fn bounded(command: &mut Command, deadline: Duration) -> Bounded {
    std::os::unix::process::CommandExt::process_group(command, 0);
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let mut child: Child = command
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("the child starts");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            return Bounded::Finished(Output {
                status,
                stdout: std::fs::read(&out_path).unwrap_or_default(),
                stderr: std::fs::read(&err_path).unwrap_or_default(),
            });
        }
        if started.elapsed() >= deadline {
            let group = i32::try_from(child.id()).expect("pid fits");
            // SAFETY: kill(2) of the process group this function created, led by our child,
            // which has not been waited for yet.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = child.wait();
            return Bounded::TimedOut;
        }
        std::thread::sleep(POLL);
    }
}

/// Runs the ignored test `inner` (its path from the crate root, `hardening_checks::…`) in a
/// child copy of this test binary, killed after `deadline` and limited to `memory` bytes of
/// address space, so that an engine that hangs or grows without bound fails the calling test
/// instead of hanging the suite; panics with `what` if the child times out, fails, or did not
/// run the test.
pub fn run_inner_bounded(inner: &str, deadline: Duration, memory: u64, what: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe);
    child
        .arg(inner)
        .args(["--exact", "--ignored", "--nocapture", "--test-threads", "1"]);
    limit_memory(&mut child, memory);
    match bounded(&mut child, deadline) {
        Bounded::TimedOut => panic!("{what} did not finish within {deadline:?}"),
        Bounded::Finished(o) => {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
            assert!(o.status.success(), "{what}: the check failed:\n{text}");
            assert!(
                text.contains("1 passed"),
                "{what}: the inner test did not run:\n{text}"
            );
        }
    }
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a command exited with `code`, showing its stderr otherwise.
pub fn expect_code(o: &Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: status {:?}, stderr:\n{}",
        o.status,
        stderr(o)
    );
}

/// Every file under `dir` (relative path → bytes), recursively.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let bytes = std::fs::read(&path).expect("readable");
                out.insert(rel.display().to_string(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Names in a folder, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
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

/// Parses a CSV file into its header and rows of fields (test-only: the files have no quoting
/// in the columns read here).
pub fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = ::csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{e}"));
    let header = reader
        .headers()
        .expect("a header")
        .iter()
        .map(String::from)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a record").iter().map(String::from).collect())
        .collect();
    (header, rows)
}
