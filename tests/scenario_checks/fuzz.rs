//! Bad input never panics: `load_str` returns `Ok` or located problems for any text.
//!
//! Inputs tried per run (all from fixed seeds, so every run tries the same ones):
//! - proptest: 256 random byte strings, 256 arbitrary strings, 256 TOML-like strings, 256 single
//!   mutations of tiny.toml and 256 stacks of 2 to 4 mutations: 1,280 inputs;
//! - sweeps: tiny.toml with each of its 125 lines deleted and each duplicated (250), each of its
//!   118 digit runs (numbers and the parts of dates) replaced by each of the 14 bad tokens
//!   (1,652), and cut at each of its 2,116 byte positions: 4,018 inputs.
//!
//! 5,298 inputs in all, in about 0.2 s at the test profile's opt-level 3.

use std::panic::{AssertUnwindSafe, catch_unwind};

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngSeed};

use super::TINY;
use d11sim::{Error, scenario};

/// Seed of every property here, so that a run is repeatable.
const SEED: u64 = 20231111;
/// Cases per property.
const CASES: u32 = 256;
/// Longest random input, in bytes or characters.
const MAX_LEN: usize = 600;
/// How the fuzzed text is named in problems.
const FUZZ_ORIGIN: &str = "fuzz.toml";

/// Values that break a number: wrong sign, overflow, wrong type, not a number, bad syntax.
const TOKENS: [&str; 14] = [
    "-1",
    "1e400",
    "\"x\"",
    "[]",
    "nan",
    "-inf",
    "0",
    "{}",
    "true",
    "99999999999999999999",
    "-99999999999999999999",
    "\"2023-11-10 20:30\"",
    "1979-05-27T07:32:00Z",
    "",
];

fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(SEED),
        ..Config::default()
    }
}

/// Loads `text`; fails if `load_str` panics, returns another error than `Invalid`, or reports a
/// problem without a line inside the text (1 to lines + 1) or without a key.
fn check(text: &str) -> Result<(), String> {
    let result = catch_unwind(AssertUnwindSafe(|| scenario::load_str(text, FUZZ_ORIGIN)));
    let problems = match result {
        Err(_) => return Err(format!("load_str panicked on:\n{text}")),
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(Error::Invalid(problems))) => problems,
        Ok(Err(other)) => return Err(format!("unexpected error {other:?} on:\n{text}")),
    };
    if problems.is_empty() {
        return Err(format!("Error::Invalid without a problem on:\n{text}"));
    }
    let max_line = text.lines().count() + 1;
    for p in &problems {
        if p.line < 1 || p.line > max_line || p.key.is_empty() || p.file != FUZZ_ORIGIN {
            return Err(format!(
                "bad problem `{p}` (lines 1 to {max_line}) on:\n{text}"
            ));
        }
    }
    Ok(())
}

/// One edit of a text.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    /// Replaces the value of a `key = value` line.
    ReplaceValue(Index, &'static str),
    /// Replaces one number of the text.
    ReplaceNumber(Index, &'static str),
    Truncate(Index),
    SwapLines(Index, Index),
    InsertLine(Index, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = || select(&TOKENS[..]);
    let inserted = select(
        &[
            "[macro]",
            "[[event]]",
            "x = 1",
            "name = \"tiny\"",
            "[scenario.x]",
            "}",
            "\"\" = 1",
            "\"a b\".c = 2",
        ][..],
    );
    prop_oneof![
        any::<Index>().prop_map(Mutation::DeleteLine),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), token()).prop_map(|(i, t)| Mutation::ReplaceValue(i, t)),
        (any::<Index>(), token()).prop_map(|(i, t)| Mutation::ReplaceNumber(i, t)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::SwapLines(i, j)),
        (any::<Index>(), inserted).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
    ]
}

fn join(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// `text` without its line `at` (0-based).
fn delete_line(text: &str, at: usize) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if at < lines.len() {
        lines.remove(at);
    }
    join(&lines)
}

/// `text` with its line `at` (0-based) written twice.
fn duplicate_line(text: &str, at: usize) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(line) = lines.get(at).copied() {
        lines.insert(at, line);
    }
    join(&lines)
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        lines.push("");
    }
    let n = lines.len();
    match m {
        Mutation::DeleteLine(i) => delete_line(text, i.index(n)),
        Mutation::DuplicateLine(i) => duplicate_line(text, i.index(n)),
        Mutation::ReplaceValue(i, token) => {
            let at = i.index(n);
            let replaced = match lines[at].split_once(" = ") {
                Some((key, _)) => format!("{key} = {token}"),
                None => lines[at].to_string(),
            };
            lines[at] = &replaced;
            join(&lines)
        }
        Mutation::ReplaceNumber(i, token) => {
            let spans = crate::common::numbers(text, false);
            if spans.is_empty() {
                return text.to_string();
            }
            let (a, b) = spans[i.index(spans.len())];
            format!("{}{token}{}", &text[..a], &text[b..])
        }
        Mutation::Truncate(i) => {
            let mut at = i.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text[..at].to_string()
        }
        Mutation::SwapLines(i, j) => {
            lines.swap(i.index(n), j.index(n));
            join(&lines)
        }
        Mutation::InsertLine(i, line) => {
            lines.insert(i.index(n + 1), line);
            join(&lines)
        }
    }
}

/// Strings of up to `MAX_LEN` characters, each matching the regex `one`.
fn strings(one: &str) -> impl Strategy<Value = String> + use<> {
    let regex = format!("{one}{{0,{MAX_LEN}}}");
    proptest::string::string_regex(&regex).expect("a valid regex")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..MAX_LEN)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(check(&text).is_ok(), "{}", check(&text).unwrap_err());
    }

    #[test]
    fn arbitrary_strings_never_panic(text in strings("(?s).")) {
        prop_assert!(check(&text).is_ok(), "{}", check(&text).unwrap_err());
    }

    #[test]
    fn toml_like_strings_never_panic(text in strings("[\\[\\]{}a-z_.=\"', 0-9\n#:+-]")) {
        prop_assert!(check(&text).is_ok(), "{}", check(&text).unwrap_err());
    }

    #[test]
    fn one_mutation_of_tiny_never_panics(m in mutation()) {
        let text = apply(TINY, &m);
        prop_assert!(check(&text).is_ok(), "{m:?}: {}", check(&text).unwrap_err());
    }

    #[test]
    fn several_mutations_of_tiny_never_panic(ms in proptest::collection::vec(mutation(), 2..=4)) {
        let text = ms.iter().fold(TINY.to_string(), |t, m| apply(&t, m));
        prop_assert!(check(&text).is_ok(), "{ms:?}: {}", check(&text).unwrap_err());
    }
}

/// Runs `check` on every text and reports the first few failures.
fn check_all(texts: impl Iterator<Item = String>) {
    let mut tried = 0;
    let failures: Vec<String> = texts
        .inspect(|_| tried += 1)
        .filter_map(|t| check(&t).err())
        .take(3)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(tried > 0);
}

#[test]
fn tiny_with_any_line_deleted_or_duplicated_never_panics() {
    let n = TINY.lines().count();
    check_all((0..n).map(|i| delete_line(TINY, i)));
    check_all((0..n).map(|i| duplicate_line(TINY, i)));
}

#[test]
fn tiny_with_any_number_replaced_by_any_bad_token_never_panics() {
    let spans = crate::common::numbers(TINY, false);
    assert!(
        spans.len() > 50,
        "tiny.toml has many numbers, found {}",
        spans.len()
    );
    let texts = spans.into_iter().flat_map(|(a, b)| {
        TOKENS
            .iter()
            .map(move |token| format!("{}{token}{}", &TINY[..a], &TINY[b..]))
    });
    check_all(texts);
}

#[test]
fn tiny_cut_at_any_byte_never_panics() {
    check_all(
        (0..=TINY.len())
            .filter(|&i| TINY.is_char_boundary(i))
            .map(|i| TINY[..i].to_string()),
    );
}

#[test]
fn keys_that_are_not_bare_are_quoted_in_key_paths() {
    let path = crate::common::data("fuzz_odd_keys.toml");
    let problems = match scenario::load_file(&path) {
        Err(Error::Invalid(problems)) => problems,
        other => panic!("expected problems, got {other:?}"),
    };
    let located: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.key.as_str())).collect();
    for expected in [(3, "\"\""), (4, "\"a.b\""), (7, "frequency.\"\"")] {
        assert!(
            located.contains(&expected),
            "no {expected:?} in {located:?}"
        );
    }
    assert!(
        problems
            .iter()
            .all(|p| !p.key.is_empty() && p.file.ends_with("fuzz_odd_keys.toml"))
    );
    check(&crate::common::read(&path)).expect("no panic, located problems");
}
