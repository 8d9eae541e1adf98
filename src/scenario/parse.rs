//! A located reader over TOML: spanned values in, typed values and located problems out.
//!
//! serde stops at the first error, but a user fixing a file wants every problem at once. So the
//! document is parsed into toml's spanned `DeTable` and walked key by key: each getter checks one
//! value's type and range and records a [`Problem`] with the value's line and key path, returning a
//! placeholder so that the walk can go on. `Section::finish` reports the keys nobody asked for.

use std::cell::RefCell;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::Problem;
use crate::time::{self, Minutes};

/// Largest edit distance at which an unknown key gets a "did you mean" suggestion.
const MAX_SUGGESTION_DISTANCE: usize = 3;

/// A source text being read, and the problems found in it so far.
pub(crate) struct Doc<'i> {
    pub origin: String,
    src: &'i str,
    problems: RefCell<Vec<Problem>>,
}

impl<'i> Doc<'i> {
    pub fn new(src: &'i str, origin: &str) -> Self {
        Doc {
            origin: origin.to_string(),
            src,
            problems: RefCell::new(Vec::new()),
        }
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub fn report(&self, offset: usize, key: &str, message: impl Into<String>) {
        let problem = Problem {
            file: self.origin.clone(),
            line: self.line(offset),
            key: key.to_string(),
            message: message.into(),
        };
        self.problems.borrow_mut().push(problem);
    }

    pub fn problem_count(&self) -> usize {
        self.problems.borrow().len()
    }

    /// Every problem, ordered by line (stable, so problems of one line keep their order).
    pub fn into_problems(self) -> Vec<Problem> {
        let mut problems = self.problems.into_inner();
        problems.sort_by_key(|p| p.line);
        problems
    }
}

/// The range rule of a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Range {
    /// In [0, 1].
    Probability,
    /// Finite and ≥ 0.
    NonNegative,
    /// Finite and > 0.
    Positive,
    /// An amount of yuan, ≥ 0 and at most [`MAX_MONEY_YUAN`] (so that it fits the integer units).
    Money,
}

/// The largest amount of money a file may write: 10^13 yuan is 10^18 units of 1/1000 fen, below
/// u64's 1.8 × 10^19, so every budget, cap and sum of two of them stays exact.
pub(crate) const MAX_MONEY_YUAN: f64 = 1e13;

impl Range {
    fn check(self, x: f64) -> Option<&'static str> {
        let ok = match self {
            Range::Probability => (0.0..=1.0).contains(&x),
            Range::NonNegative => x.is_finite() && x >= 0.0,
            Range::Positive => x.is_finite() && x > 0.0,
            Range::Money => x.is_finite() && (0.0..=MAX_MONEY_YUAN).contains(&x),
        };
        (!ok).then_some(self.expected())
    }

    fn expected(self) -> &'static str {
        match self {
            Range::Probability => "a probability in [0, 1]",
            Range::NonNegative => "a finite number ≥ 0",
            Range::Positive => "a finite number > 0",
            Range::Money => "a finite number ≥ 0, in yuan, at most 10^13",
        }
    }
}

/// One TOML table being read, with its dotted key path.
pub(crate) struct Section<'a, 'i> {
    pub doc: &'a Doc<'i>,
    table: &'a DeTable<'i>,
    pub path: String,
    /// Where problems about missing keys point: the table's own position.
    pub offset: usize,
}

fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string \"{s}\""),
        DeValue::Integer(i) => format!("the integer {i}"),
        DeValue::Float(f) => format!("the number {f}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the TOML datetime {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

fn as_f64(value: &DeValue<'_>) -> Option<f64> {
    match value {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|v| v as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
        _ => None,
    }
}

impl<'a, 'i> Section<'a, 'i> {
    pub fn root(doc: &'a Doc<'i>, table: &'a Spanned<DeTable<'i>>) -> Self {
        Section {
            doc,
            table: table.get_ref(),
            path: String::new(),
            offset: table.span().start,
        }
    }

    /// The dotted path of a key of this table. A key that is not bare TOML (e.g. `""`, or one
    /// with a dot or a space) is quoted, so the path stays readable and never empty.
    pub fn key_path(&self, key: &str) -> String {
        let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let quoted;
        let key = if !key.is_empty() && key.chars().all(bare) {
            key
        } else {
            quoted = format!("{key:?}");
            quoted.as_str()
        };
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| v)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The keys of this table, in file order, with their offsets.
    pub fn keys(&self) -> Vec<(String, usize)> {
        self.table
            .iter()
            .map(|(k, _)| (k.get_ref().to_string(), k.span().start))
            .collect()
    }

    pub fn report(&self, key: &str, offset: usize, message: impl Into<String>) {
        self.doc.report(offset, &self.key_path(key), message);
    }

    /// How many problems the whole document has so far.
    pub fn problem_count(&self) -> usize {
        self.doc.problem_count()
    }

    fn missing(&self, key: &str, expected: &str) {
        self.doc.report(
            self.offset,
            &self.key_path(key),
            format!("missing ({expected})"),
        );
    }

    fn wrong_type(&self, key: &str, value: &Spanned<DeValue<'_>>, expected: &str) {
        let message = format!(
            "{} is of the wrong type ({expected})",
            describe(value.get_ref())
        );
        self.report(key, value.span().start, message);
    }

    /// Offset of a key's value, or of the table when the key is absent.
    pub fn offset_of(&self, key: &str) -> usize {
        self.get(key).map_or(self.offset, |v| v.span().start)
    }

    /// A number checked against `range`; `default` when absent (a problem if `None`).
    pub fn number(&self, key: &str, range: Range, default: Option<f64>) -> f64 {
        let Some(value) = self.get(key) else {
            if default.is_none() {
                self.missing(key, range.expected());
            }
            return default.unwrap_or(0.0);
        };
        let Some(x) = as_f64(value.get_ref()) else {
            self.wrong_type(key, value, range.expected());
            return default.unwrap_or(0.0);
        };
        if let Some(expected) = range.check(x) {
            self.report(
                key,
                value.span().start,
                format!("{x} is out of range ({expected})"),
            );
            return default.unwrap_or(0.0);
        }
        x
    }

    /// An integer ≥ `min`; `default` when absent (a problem if `None`).
    pub fn integer(&self, key: &str, min: u64, default: Option<u64>) -> u64 {
        let expected = format!("an integer ≥ {min}");
        let Some(value) = self.get(key) else {
            if default.is_none() {
                self.missing(key, &expected);
            }
            return default.unwrap_or(min);
        };
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        let Some(n) = parsed else {
            self.wrong_type(key, value, &expected);
            return default.unwrap_or(min);
        };
        match u64::try_from(n) {
            Ok(n) if n >= min => n,
            _ => {
                self.report(
                    key,
                    value.span().start,
                    format!("{n} is out of range ({expected})"),
                );
                default.unwrap_or(min)
            }
        }
    }

    pub fn boolean(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(value) => match value.get_ref() {
                DeValue::Boolean(b) => *b,
                _ => {
                    self.wrong_type(key, value, "true or false");
                    default
                }
            },
        }
    }

    /// A string; `default` when absent (a problem if `None`).
    pub fn text(&self, key: &str, default: Option<&str>) -> String {
        let Some(value) = self.get(key) else {
            if default.is_none() {
                self.missing(key, "a string");
            }
            return default.unwrap_or_default().to_string();
        };
        match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            _ => {
                self.wrong_type(key, value, "a string");
                default.unwrap_or_default().to_string()
            }
        }
    }

    /// A local time `"YYYY-MM-DD HH:MM"`, or `None` if absent or invalid (reported unless absent
    /// and optional).
    pub fn time(&self, key: &str, required: bool) -> Option<Minutes> {
        const EXPECTED: &str = "a time \"YYYY-MM-DD HH:MM\", local UTC+8";
        let Some(value) = self.get(key) else {
            if required {
                self.missing(key, EXPECTED);
            }
            return None;
        };
        let DeValue::String(s) = value.get_ref() else {
            self.wrong_type(key, value, EXPECTED);
            return None;
        };
        // Only the canonical spelling: `time::parse` reads hours and minutes with `i64::from_str`,
        // which also takes "-1" or "+1" (so "2023-11-10 -1:00" would be the 9th at 23:00).
        let parsed = time::parse(s).filter(|&t| time::format(t) == s.trim());
        if parsed.is_none() {
            self.report(
                key,
                value.span().start,
                format!("\"{s}\" is not a valid time ({EXPECTED})"),
            );
        }
        parsed
    }

    /// A list of strings with their offsets, or `None` when absent.
    pub fn strings(&self, key: &str) -> Option<Vec<(String, usize)>> {
        let value = self.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(key, value, "a list of strings");
            return Some(Vec::new());
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span().start)),
                _ => self.wrong_type(key, item, "a list of strings"),
            }
        }
        Some(out)
    }

    /// A list of numbers with their offsets, or `None` when absent.
    pub fn numbers(&self, key: &str) -> Option<Vec<(f64, usize)>> {
        let value = self.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(key, value, "a list of numbers");
            return Some(Vec::new());
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match as_f64(item.get_ref()) {
                Some(x) => out.push((x, item.span().start)),
                None => self.wrong_type(key, item, "a list of numbers"),
            }
        }
        Some(out)
    }

    /// A sub-table `[path.key]`, or `None` when absent (or not a table, which is reported).
    pub fn table(&self, key: &str) -> Option<Section<'a, 'i>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Table(t) => Some(Section {
                doc: self.doc,
                table: t,
                path: self.key_path(key),
                offset: value.span().start,
            }),
            _ => {
                self.wrong_type(key, value, "a table");
                None
            }
        }
    }

    /// An array of tables `[[path.key]]`; each element's path is `path.key.<name>` when it has a
    /// string `name`, else `path.key[i]`.
    pub fn tables(&self, key: &str) -> Vec<Section<'a, 'i>> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(key, value, "an array of tables [[...]]");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let DeValue::Table(t) = item.get_ref() else {
                self.wrong_type(key, item, "an array of tables [[...]]");
                continue;
            };
            let name = t
                .iter()
                .find(|(k, _)| k.get_ref() == "name")
                .and_then(|(_, v)| match v.get_ref() {
                    DeValue::String(s) if !s.is_empty() => Some(s.to_string()),
                    _ => None,
                });
            let path = match name {
                Some(n) => format!("{}.{n}", self.key_path(key)),
                None => format!("{}[{i}]", self.key_path(key)),
            };
            out.push(Section {
                doc: self.doc,
                table: t,
                path,
                offset: item.span().start,
            });
        }
        out
    }

    /// Reports every key of this table that is not in `allowed`, suggesting the nearest one.
    pub fn finish(&self, allowed: &[&str]) {
        for (key, offset) in self.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let nearest = allowed
                .iter()
                .map(|a| (strsim::levenshtein(a, &key), *a))
                .min()
                .filter(|(d, _)| *d <= MAX_SUGGESTION_DISTANCE);
            let hint = match nearest {
                Some((_, a)) => format!("did you mean `{a}`?"),
                None => format!("expected one of: {}", allowed.join(", ")),
            };
            self.report(&key, offset, format!("unknown key ({hint})"));
        }
    }
}
