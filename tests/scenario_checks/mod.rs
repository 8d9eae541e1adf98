//! The scenario layer: every validation rule, the `validate` and `scenario` commands, and bad input
//! that must never panic.
//!
//! Each rule's case is `tests/data/tiny.toml` with one line edited in the test, so the expected
//! line number is computed from the text rather than written down.

mod cli;
mod fuzz;
mod rules;

use d11sim::error::Problem;
use d11sim::{Error, scenario};

/// The valid scenario every case starts from.
const TINY: &str = include_str!("../data/tiny.toml");
/// How cases name their text in problems (a file name, as `validate` would print it).
const ORIGIN: &str = "tiny.toml";

/// A scenario text with one edit, and the 1-based line of the edit.
#[derive(Debug)]
struct Case {
    text: String,
    line: usize,
}

/// Index of the first line of `lines` equal to `old` (trimmed) from index `from` on; with
/// `unique`, it must be the only one.
fn find_line(lines: &[&str], from: usize, old: &str, unique: bool) -> usize {
    let found: Vec<usize> = (from..lines.len())
        .filter(|&i| lines[i].trim() == old)
        .collect();
    match found.as_slice() {
        [i] => *i,
        [i, ..] if !unique => *i,
        _ => panic!(
            "expected {} line `{old}` in tiny.toml from line {}, found {}",
            if unique { "exactly one" } else { "a" },
            from + 1,
            found.len()
        ),
    }
}

fn splice(lines: &[&str], at: usize, remove: usize, new: &str) -> String {
    let mut out: Vec<&str> = lines[..at].to_vec();
    if !new.is_empty() {
        out.extend(new.split('\n'));
    }
    out.extend(&lines[at + remove..]);
    out.join("\n") + "\n"
}

/// Tiny with the line `old` (which must be unique) replaced by `new` (one or more lines).
fn replace(old: &str, new: &str) -> Case {
    replace_after("", old, new)
}

/// Tiny with the first line `old` after the line `anchor` replaced by `new` (`anchor` empty: the
/// whole file, where `old` must be unique).
fn replace_after(anchor: &str, old: &str, new: &str) -> Case {
    let lines: Vec<&str> = TINY.lines().collect();
    let from = if anchor.is_empty() {
        0
    } else {
        find_line(&lines, 0, anchor, false) + 1
    };
    let at = find_line(&lines, from, old, anchor.is_empty());
    Case {
        text: splice(&lines, at, 1, new),
        line: at + 1,
    }
}

/// Tiny with the first `key = …` line after the line `anchor` set to `key = value`.
fn set(anchor: &str, key: &str, value: &str) -> Case {
    let lines: Vec<&str> = TINY.lines().collect();
    let from = find_line(&lines, 0, anchor, false);
    let prefix = format!("{key} = ");
    let at = (from..lines.len())
        .find(|&i| lines[i].starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{key} = …` after `{anchor}` in tiny.toml"));
    Case {
        text: splice(&lines, at, 1, &format!("{key} = {value}")),
        line: at + 1,
    }
}

/// Tiny with `new` inserted just after the line `anchor`; `line` is the first inserted line.
fn insert_after(anchor: &str, new: &str) -> Case {
    let lines: Vec<&str> = TINY.lines().collect();
    let at = find_line(&lines, 0, anchor, false) + 1;
    Case {
        text: splice(&lines, at, 0, new),
        line: at + 1,
    }
}

/// Tiny without the first line `old` after the line `anchor`; `line` is that of the section header
/// above it, where a missing key is reported (lines before the deleted one keep their numbers).
fn delete_after(anchor: &str, old: &str) -> Case {
    let lines: Vec<&str> = TINY.lines().collect();
    let at = find_line(&lines, find_line(&lines, 0, anchor, false), old, false);
    let header = (0..at)
        .rev()
        .find(|&i| lines[i].starts_with('['))
        .expect("a section header above");
    Case {
        text: splice(&lines, at, 1, ""),
        line: header + 1,
    }
}

/// Tiny without the lines from `header` up to (not including) the next blank line.
fn delete_section(header: &str) -> String {
    let lines: Vec<&str> = TINY.lines().collect();
    let at = find_line(&lines, 0, header, true);
    let len = lines[at..]
        .iter()
        .position(|l| l.trim().is_empty())
        .unwrap_or(lines.len() - at);
    splice(&lines, at, len, "")
}

/// The problems of a text, or why it is not `Error::Invalid` with at least one problem.
fn try_problems(text: &str) -> Result<Vec<Problem>, String> {
    match scenario::load_str(text, ORIGIN) {
        Ok(_) => Err("expected problems, but the scenario is valid".to_string()),
        Err(Error::Invalid(found)) if found.is_empty() => {
            Err("Error::Invalid with no problem".to_string())
        }
        Err(Error::Invalid(found)) => Ok(found),
        Err(other) => Err(format!("expected Error::Invalid, got {other:?}")),
    }
}

/// The problems of a text that must be invalid.
fn problems(text: &str) -> Vec<Problem> {
    try_problems(text).unwrap_or_else(|why| panic!("{why}:\n{text}"))
}

fn listing(found: &[Problem]) -> String {
    found.iter().map(|p| format!("  {p}\n")).collect()
}

/// Checks that the text has a problem at `line` under `key` whose message contains `fragment`,
/// displayed as `tiny.toml:LINE: key: … (…)`; returns every problem of the text.
fn check_at(text: &str, line: usize, key: &str, fragment: &str) -> Result<Vec<Problem>, String> {
    let found = try_problems(text).map_err(|why| format!("`{key}` at line {line}: {why}"))?;
    let hit = found
        .iter()
        .find(|p| p.line == line && p.key == key && p.message.contains(fragment));
    let Some(p) = hit else {
        return Err(format!(
            "no problem `{ORIGIN}:{line}: {key}: …{fragment}…`; found:\n{}",
            listing(&found)
        ));
    };
    let shown = p.to_string();
    if p.file != ORIGIN || !shown.starts_with(&format!("{ORIGIN}:{line}: {key}: ")) {
        return Err(format!("badly located: {shown}"));
    }
    if !(p.message.contains(" (") && p.message.ends_with(')')) {
        return Err(format!("message lacks `(what is expected)`: {shown}"));
    }
    Ok(found)
}

/// [`check_at`], panicking on failure.
fn expect_at(text: &str, line: usize, key: &str, fragment: &str) -> Vec<Problem> {
    check_at(text, line, key, fragment).unwrap_or_else(|why| panic!("{why}"))
}

/// [`expect_at`] on an edited case, at the edited line.
fn expect(case: &Case, key: &str, fragment: &str) -> Vec<Problem> {
    expect_at(&case.text, case.line, key, fragment)
}

/// [`expect`], and that this is the only problem of the case (no cascade of follow-up errors).
fn expect_only(case: &Case, key: &str, fragment: &str) {
    let found = expect(case, key, fragment);
    assert_eq!(
        found.len(),
        1,
        "expected one problem, found:\n{}",
        listing(&found)
    );
}

/// Checks every `(case, key, fragment)` and reports all the failures together.
fn expect_each<K: AsRef<str>>(cases: &[(Case, K, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(case, key, fragment)| {
            check_at(&case.text, case.line, key.as_ref(), fragment).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Asserts that a text is a valid scenario.
fn valid(text: &str) -> scenario::Scenario {
    match scenario::load_str(text, ORIGIN) {
        Ok(s) => s,
        Err(Error::Invalid(found)) => {
            panic!("expected a valid scenario, found:\n{}", listing(&found))
        }
        Err(other) => panic!("expected a valid scenario, got {other:?}"),
    }
}
