//! The splits file under fuzzing: `compare::file::load_str` returns `Ok` or `Error::Invalid` with
//! located problems for any text, never panics, and what it accepts is a valid split.
//!
//! Inputs tried per run (fixed seeds, so every run tries the same ones):
//! - proptest: 256 random byte strings (as lossy UTF-8) and 256 stacks of 1 to 4 mutations of a
//!   valid splits file: 512 inputs;
//! - sweep: the valid file cut at each of its byte positions (480 inputs) and with each of its 9
//!   numbers replaced by each of 12 bad tokens (108 inputs): 588 inputs;
//! - the command line: 6 of those files through `d11sim compare --splits` (exit 0 or 2, never a
//!   panic's 101; problems located as FILE:LINE; nothing written when refused).
//!
//! 1,106 inputs in all, in well under a second at the test profile's opt-level 3.

use std::panic::{AssertUnwindSafe, catch_unwind};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use d11sim::Error;
use d11sim::compare::{SHARE_TOLERANCE, Split, file};
use d11sim::scenario::Scenario;

use super::*;

/// Seed of every property here, so that a run is repeatable.
const SEED: u64 = 0x0d11_f022;
/// Cases per property.
const CASES: u32 = 256;
/// Longest random input, in bytes.
const MAX_LEN: usize = 600;
/// How the fuzzed text is named in problems.
const ORIGIN: &str = "fuzz_splits.toml";

/// A valid splits file for tiny.toml (the README's compare section's schema): 479 bytes, 9 numbers.
const VALID: &str = r#"# splits for tiny.toml
[[split]]
name = "more_traffic"
description = "a third of the coupon money goes to Channels"
budget = { threshold_coupon = 200.0, channels_boost = 120.0 }
funded_by.threshold_coupon = { alibaba = 0.6, tencent = 0.4 }

[[split]]
name = "alibaba_pays_traffic"
funded_by.channels_boost = { alibaba = 1.0 }

[[split]]
name = "all_coupon"
budget.threshold_coupon = 320.0
budget.channels_boost = 0
funded_by.threshold_coupon = { tencent = 0.25, alibaba = 0.75 }
"#;

/// Values that break a number or a table: wrong sign, overflow, wrong type, not a number.
const TOKENS: [&str; 12] = [
    "-1",
    "1e400",
    "1e300",
    "\"x\"",
    "[]",
    "nan",
    "-inf",
    "{}",
    "true",
    "99999999999999999999",
    "1979-05-27T07:32:00Z",
    "",
];

/// Fragments a mutation may insert: keys, names, brackets, quotes, newlines.
const FRAGMENTS: [&str; 16] = [
    "[[split]]\n",
    "[split]\n",
    "name = \"reference\"\n",
    "name = \"more_traffic\"\n",
    "budget = { nope = 1.0 }\n",
    "funded_by.channels_boost = { tencent = 0.5 }\n",
    "funded_by.nope = { alibaba = 1.0 }\n",
    "funded_by.threshold_coupon = {}\n",
    "budgets = 3\n",
    "=",
    "\"",
    "{",
    "]",
    "\n",
    ".",
    "é\u{0}",
];

fn tiny() -> Scenario {
    load(&fixture("tiny.toml"))
}

fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(SEED),
        ..Config::default()
    }
}

/// Checks one text: `load_str` must not panic; an error must be `Invalid` with problems each on a
/// line of the text (1 to lines + 1), with a key, naming `ORIGIN`; an `Ok` must be a valid list
/// of splits (names unique, non-empty, not `reference`; program and funder indices in range;
/// shares in [0, 1] summing to 1 within 1e-9, funders unique).
fn check(text: &str, s: &Scenario) -> Result<(), String> {
    let result = catch_unwind(AssertUnwindSafe(|| file::load_str(text, ORIGIN, s)));
    let problems = match result {
        Err(_) => return Err(format!("load_str panicked on:\n{text}")),
        Ok(Ok(splits)) => return valid_splits(&splits, s).map_err(|e| format!("{e} on:\n{text}")),
        Ok(Err(Error::Invalid(problems))) => problems,
        Ok(Err(other)) => return Err(format!("unexpected error {other:?} on:\n{text}")),
    };
    if problems.is_empty() {
        return Err(format!("Error::Invalid without a problem on:\n{text}"));
    }
    let max_line = text.lines().count() + 1;
    for p in &problems {
        if p.line < 1 || p.line > max_line || p.key.is_empty() || p.file != ORIGIN {
            return Err(format!(
                "bad problem `{p}` (lines 1 to {max_line}) on:\n{text}"
            ));
        }
    }
    Ok(())
}

fn valid_splits(splits: &[Split], s: &Scenario) -> Result<(), String> {
    let mut names: Vec<&str> = Vec::new();
    for split in splits {
        let name = split.name.as_str();
        if name.trim().is_empty() || name == "reference" || names.contains(&name) {
            return Err(format!("accepted split name {name:?}"));
        }
        names.push(name);
        for &(p, _) in &split.budgets {
            if p >= s.programs.len() {
                return Err(format!("{name}: program index {p}"));
            }
        }
        for (p, shares) in &split.funded_by {
            let total: f64 = shares.iter().map(|x| x.1).sum();
            let mut funders: Vec<usize> = shares.iter().map(|x| x.0).collect();
            funders.sort_unstable();
            funders.dedup();
            if *p >= s.programs.len()
                || funders.len() != shares.len()
                || funders.iter().any(|&f| f >= s.funders.len())
                || shares.iter().any(|x| !(0.0..=1.0).contains(&x.1))
                || (total - 1.0).abs() > SHARE_TOLERANCE
            {
                return Err(format!("{name}: accepted shares {shares:?} of program {p}"));
            }
        }
    }
    Ok(())
}

/// One mutation of a text: delete, duplicate or replace a line, insert a fragment, or cut.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    Token { at: usize, token: usize },
    Insert { at: usize, fragment: usize },
    Cut(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Token { at, token }),
        (any::<usize>(), 0..FRAGMENTS.len())
            .prop_map(|(at, fragment)| Mutation::Insert { at, fragment }),
        any::<usize>().prop_map(Mutation::Cut),
    ]
}

/// The byte offsets of the char boundaries of `text` (for inserting and cutting).
fn boundary(text: &str, at: usize) -> usize {
    let bounds: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    bounds[at % bounds.len()]
}

/// Every number of `text` as a byte range (digits with an optional sign, dot and exponent).
fn numbers(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && i > 0 && bytes[i - 1] == b' ' {
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
                j += 1;
            }
            out.push((i, j));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let line = |at: usize| at % lines.len().max(1);
    match *m {
        Mutation::DeleteLine(at) if !lines.is_empty() => {
            lines.remove(line(at));
        }
        Mutation::DuplicateLine(at) if !lines.is_empty() => {
            let i = line(at);
            lines.insert(i, lines[i].clone());
        }
        Mutation::Token { at, token } => {
            let found = numbers(text);
            if found.is_empty() {
                return text.to_string();
            }
            let (a, b) = found[at % found.len()];
            return format!("{}{}{}", &text[..a], TOKENS[token], &text[b..]);
        }
        Mutation::Insert { at, fragment } => {
            let i = boundary(text, at);
            return format!("{}{}{}", &text[..i], FRAGMENTS[fragment], &text[i..]);
        }
        Mutation::Cut(at) => return text[..boundary(text, at)].to_string(),
        _ => {}
    }
    lines.join("\n") + "\n"
}

#[test]
fn the_valid_file_is_accepted() {
    let s = tiny();
    let splits = file::load_str(VALID, ORIGIN, &s).expect("VALID is valid");
    assert_eq!(splits.len(), 3);
    assert_eq!(
        numbers(VALID).len(),
        9,
        "the comment above counts 9 numbers"
    );
    assert_eq!(VALID.len(), 479, "the comment above counts 479 bytes");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..MAX_LEN)) {
        let text = String::from_utf8_lossy(&bytes);
        let result = check(&text, &tiny());
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    #[test]
    fn mutated_files_never_panic(ms in proptest::collection::vec(mutation(), 1..=4)) {
        let text = ms.iter().fold(VALID.to_string(), |t, m| apply(&t, m));
        let result = check(&text, &tiny());
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

#[test]
fn every_cut_and_every_bad_number_is_located() {
    let s = tiny();
    let (mut tried, mut accepted) = (0, 0);
    let mut try_one = |text: &str| {
        check(text, &s).unwrap_or_else(|e| panic!("{e}"));
        tried += 1;
        accepted += usize::from(file::load_str(text, ORIGIN, &s).is_ok());
    };
    for i in (0..=VALID.len()).filter(|&i| VALID.is_char_boundary(i)) {
        try_one(&VALID[..i]);
    }
    for (a, b) in numbers(VALID) {
        for token in TOKENS {
            try_one(&format!("{}{token}{}", &VALID[..a], &VALID[b..]));
        }
    }
    assert_eq!(tried, 480 + 108);
    // Both branches of `check` were taken: cuts at the end of a complete split are valid.
    assert!(
        accepted > 0 && accepted < tried,
        "{accepted} of {tried} accepted"
    );
}

/// A budget that does not fit in u64 units (1e300 yuan) must be refused, not silently saturated
/// to u64::MAX units (MODEL.md, *Money*: each money value is rounded to the nearest unit).
#[test]
fn an_unrepresentable_budget_is_refused() {
    let text = "[[split]]\nname = \"huge\"\nbudget = { threshold_coupon = 1e300 }\n";
    match file::load_str(text, ORIGIN, &tiny()) {
        Err(Error::Invalid(problems)) => assert_eq!(problems[0].line, 3, "{problems:?}"),
        other => panic!("a 1e300-yuan budget was not refused: {other:?}"),
    }
}

/// Six files through the command line: exit 0 or 2 (a panic exits 101), problems as
/// `FILE:LINE: key`, and nothing written when refused.
#[test]
fn the_command_line_exits_0_or_2_on_fuzzed_files() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cases = [
        VALID.to_string(),
        apply(VALID, &Mutation::Token { at: 0, token: 0 }),
        apply(
            VALID,
            &Mutation::Insert {
                at: 30,
                fragment: 2,
            },
        ),
        apply(VALID, &Mutation::Cut(120)),
        apply(VALID, &Mutation::DuplicateLine(2)),
        String::from_utf8_lossy(&[0xff, b'[', b'[', 0xfe, b'\n', 0]).into_owned(),
    ];
    for (i, text) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("splits_{i}.toml"));
        std::fs::write(&path, text).expect("write");
        let out = tmp.path().join(format!("out_{i}"));
        let o = common::d11sim()
            .arg("compare")
            .arg(common::data("tiny.toml"))
            .arg("--splits")
            .arg(&path)
            .args(["--replications", "2", "--no-charts", "--quiet", "--out"])
            .arg(&out)
            .output()
            .expect("d11sim runs");
        let code = o.status.code();
        check(text, &tiny()).unwrap_or_else(|e| panic!("{e}"));
        let accepted = file::load_str(text, ORIGIN, &tiny()).is_ok();
        match (code, accepted) {
            (Some(0), true) => assert!(out.join("compare.csv").is_file()),
            (Some(2), false) => {
                let message = stderr(&o);
                let located = format!("{}:", path.display());
                assert!(message.contains(&located), "case {i}: {message}");
                assert!(
                    !out.exists(),
                    "case {i}: a refused compare wrote its folder"
                );
            }
            _ => panic!("case {i}: exit {code:?}, stderr {}\n{text}", stderr(&o)),
        }
    }
}
