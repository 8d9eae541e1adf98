//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The built-in national default scenario (`scenarios/singles_day_2023.toml`).
pub fn national_default() -> d11sim::scenario::Scenario {
    let (text, origin) = (
        d11sim::scenario::default::DEFAULT_SCENARIO_TOML,
        d11sim::scenario::default::DEFAULT_ORIGIN,
    );
    d11sim::scenario::load_str(text, origin).expect("the default is valid")
}

/// The repository root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `tests/data/`.
pub fn data(name: &str) -> PathBuf {
    root().join("tests").join("data").join(name)
}

/// The `d11sim` binary, ready for arguments.
pub fn d11sim() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("d11sim").expect("the d11sim binary is built")
}

/// Reads a text file, panicking with its path on failure (test-only).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Copies a folder tree (test-only: panics with the path on failure).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).expect("readable").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Byte ranges of the numbers of a TOML text: runs of digits, `.`, `_` and `e` that start with a
/// digit not preceded by a letter or digit. With `outside_strings`, only those outside quoted
/// strings and comments (so not the parts of dates and times written as strings).
pub fn numbers(text: &str, outside_strings: bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let bytes = line.as_bytes();
        let (mut i, mut quoted) = (0, false);
        while i < bytes.len() {
            let b = bytes[i];
            if outside_strings && b == b'#' && !quoted {
                break;
            }
            if outside_strings && b == b'"' {
                quoted = !quoted;
            }
            let starts =
                !quoted && b.is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
            if !starts {
                i += 1;
                continue;
            }
            let end = (i..bytes.len())
                .find(|&j| !(bytes[j].is_ascii_digit() || b"._e".contains(&bytes[j])))
                .unwrap_or(bytes.len());
            out.push((start + i, start + end));
            i = end;
        }
        start += line.len();
    }
    out
}
