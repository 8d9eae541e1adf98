//! The splits file of `d11sim compare SCENARIO --splits FILE`: named splits, each setting any
//! programs' budgets and any programs' funding shares, read with the scenario's located reader so
//! that every problem is reported at once as `FILE:LINE: key.path: what is wrong (expected)`.
//!
//! ```toml
//! [[split]]
//! name = "more_traffic"                       # required, unique, not "reference"
//! description = "a third of the coupon money moves to Channels"   # optional
//! budget = { threshold_coupon = 200.0, channels_boost = 120.0 }   # yuan, ≥ 0
//! funded_by.threshold_coupon = { alibaba = 0.6, tencent = 0.4 }   # replaces the whole table
//! ```
//!
//! A `funded_by.<program>` table replaces that program's `funded_by` (funders in the order written),
//! so its shares must sum to 1 within 1e-9, as in a scenario. What a split does not set is the
//! scenario's.

use std::path::Path;

use toml::de::DeTable;

use super::{REFERENCE, SHARE_TOLERANCE, Split};
use crate::error::{Error, Result};
use crate::scenario::parse::{Doc, Range, Section};
use crate::scenario::{Scenario, yuan_to_units};

const TOP_KEYS: &[&str] = &["split"];
const SPLIT_KEYS: &[&str] = &["name", "description", "budget", "funded_by"];

/// Reads and checks a splits file against the scenario; returns the splits and the file's text.
pub fn load_file(path: &Path, scenario: &Scenario) -> Result<(Vec<Split>, String)> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let splits = load_str(&text, &path.display().to_string(), scenario)?;
    Ok((splits, text))
}

/// Checks a splits text; `origin` names it in problems. `Error::Invalid` lists every problem.
pub fn load_str(text: &str, origin: &str, scenario: &Scenario) -> Result<Vec<Split>> {
    let doc = Doc::new(text, origin);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    for e in &syntax_errors {
        let offset = e.span().map_or(0, |s| s.start);
        doc.report(
            offset,
            "(syntax)",
            format!("{} (valid TOML)", e.message().trim()),
        );
    }
    if !syntax_errors.is_empty() {
        return Err(Error::Invalid(doc.into_problems()));
    }
    let top = Section::root(&doc, &root);
    top.finish(TOP_KEYS);
    let items = top.tables("split");
    if items.is_empty() && !top.has("split") {
        top.report(
            "split",
            top.offset,
            "no [[split]] defined (at least one [[split]] with a name)",
        );
    }
    check_names(&items);
    let splits: Vec<Split> = items.iter().map(|s| read_split(s, scenario)).collect();
    if doc.problem_count() == 0 {
        Ok(splits)
    } else {
        Err(Error::Invalid(doc.into_problems()))
    }
}

/// Names are required, unique, and not the reserved [`REFERENCE`].
fn check_names(items: &[Section]) {
    let mut seen: Vec<String> = Vec::new();
    for s in items {
        let name = s.text("name", None);
        if !s.has("name") {
            continue;
        }
        let offset = s.offset_of("name");
        if name.trim().is_empty() {
            s.report("name", offset, "is empty (a name for the split)");
        } else if name == REFERENCE {
            s.report(
                "name",
                offset,
                "\"reference\" is reserved for the scenario's own split (another name)",
            );
        } else if seen.contains(&name) {
            s.report(
                "name",
                offset,
                format!("duplicate split name \"{name}\" (names are unique)"),
            );
        }
        seen.push(name);
    }
}

/// Index of a named program or funder, reporting an unknown name at its key.
fn lookup(table: &Section, key: &str, offset: usize, names: &[&str], what: &str) -> Option<usize> {
    let found = names.iter().position(|n| *n == key);
    if found.is_none() {
        let list = if names.is_empty() {
            "none defined".to_string()
        } else {
            names.join(", ")
        };
        table.report(
            key,
            offset,
            format!("unknown {what} \"{key}\" (one of: {list})"),
        );
    }
    found
}

fn read_split(s: &Section, scenario: &Scenario) -> Split {
    s.finish(SPLIT_KEYS);
    s.text("description", Some(""));
    let programs: Vec<&str> = scenario.programs.iter().map(|p| p.name.as_str()).collect();
    let funders: Vec<&str> = scenario.funders.iter().map(|f| f.name.as_str()).collect();
    let mut budgets = Vec::new();
    if let Some(table) = s.table("budget") {
        for (key, offset) in table.keys() {
            let yuan = table.number(&key, Range::Money, Some(0.0));
            if let Some(p) = lookup(&table, &key, offset, &programs, "program") {
                budgets.push((p, yuan_to_units(yuan)));
            }
        }
    }
    let mut funded_by = Vec::new();
    if let Some(table) = s.table("funded_by") {
        for (key, offset) in table.keys() {
            let program = lookup(&table, &key, offset, &programs, "program");
            let Some(shares_table) = table.table(&key) else {
                continue;
            };
            let shares = read_shares(&table, &key, &shares_table, &funders);
            if let Some(p) = program {
                funded_by.push((p, shares));
            }
        }
    }
    Split {
        name: s.text("name", None),
        budgets,
        funded_by,
    }
}

/// One `funded_by.<program>` table: funder → share, summing to 1.
fn read_shares(
    parent: &Section,
    key: &str,
    table: &Section,
    funders: &[&str],
) -> Vec<(usize, f64)> {
    let mut shares = Vec::new();
    let mut total = 0.0;
    for (funder, offset) in table.keys() {
        let share = table.number(&funder, Range::Probability, Some(0.0));
        total += share;
        if let Some(f) = lookup(table, &funder, offset, funders, "funder") {
            shares.push((f, share));
        }
    }
    let offset = parent.offset_of(key);
    if table.keys().is_empty() {
        parent.report(key, offset, "is empty (at least one funder with a share)");
    } else if (total - 1.0).abs() > SHARE_TOLERANCE {
        parent.report(
            key,
            offset,
            format!("funding shares sum to {total} (they must sum to 1 within 1e-9)"),
        );
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Scenario {
        crate::scenario::load_str(include_str!("../../tests/data/tiny.toml"), "tiny.toml")
            .expect("tiny.toml is valid")
    }

    fn problems(text: &str) -> Vec<String> {
        match load_str(text, "s.toml", &tiny()) {
            Err(Error::Invalid(p)) => p.iter().map(ToString::to_string).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn reads_budgets_and_shares() {
        let text = "[[split]]\nname = \"a\"\nbudget = { channels_boost = 3e1 }\n\
                    funded_by.threshold_coupon = { tencent = 0.4, alibaba = 0.6 }\n";
        let splits = load_str(text, "s.toml", &tiny()).unwrap();
        assert_eq!(splits[0].budgets, vec![(1, 3_000_000)]);
        assert_eq!(splits[0].funded_by, vec![(0, vec![(1, 0.4), (0, 0.6)])]);
    }

    #[test]
    fn reports_every_problem_with_its_line() {
        let text = "[[split]]\nname = \"a\"\nbudget = { nope = 1.0, channels_boost = -5 }\n\
                    funded_by.threshold_coupon = { alibaba = 0.6, tencent = 0.3 }\n\
                    colour = 1\n\n[[split]]\nname = \"a\"\n\
                    funded_by.channels_boost = { alibaba = 0.5, jd = 0.5 }\n";
        let found = problems(text);
        let expected = [
            "s.toml:3: split.a.budget.nope: unknown program \"nope\" (one of: threshold_coupon, channels_boost)",
            "s.toml:3: split.a.budget.channels_boost: -5 is out of range (a finite number ≥ 0, in yuan, at most 10^13)",
            "s.toml:4: split.a.funded_by.threshold_coupon: funding shares sum to 0.8999999999999999 (they must sum to 1 within 1e-9)",
            "s.toml:5: split.a.colour: unknown key (expected one of: name, description, budget, funded_by)",
            "s.toml:8: split.a.name: duplicate split name \"a\" (names are unique)",
            "s.toml:9: split.a.funded_by.channels_boost.jd: unknown funder \"jd\" (one of: alibaba, tencent)",
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn reference_is_reserved_and_a_file_needs_a_split() {
        let found = problems("[[split]]\nname = \"reference\"\n");
        assert!(found[0].starts_with("s.toml:2: split.reference.name: \"reference\" is reserved"));
        let found = problems("# nothing\n");
        assert!(found[0].starts_with("s.toml:1: split: no [[split]] defined"));
        let found = problems("[[split]]\nname = \"x\"\nbudget = {\n");
        assert!(found[0].contains("(syntax)"), "{found:?}");
    }
}
