//! Reading a results folder back: every chart is drawn from these files alone (summary.csv,
//! timeseries.csv, funnel.csv, budgets.csv, raw/funnel.csv, manifest.json, compare.csv), never
//! from the engine, so `d11sim chart DIR` redraws exactly what `run` drew.
//!
//! Every problem is an `Error::Invalid` naming the file, the 1-based line and the column.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::results::files::{BUDGETS, FUNNEL, MANIFEST, RAW, SUMMARY, TIMESERIES};

/// The line of a CSV file's header.
const HEADER_LINE: usize = 1;

/// A CSV file read as text, each row with its 1-based line number.
pub struct Table {
    /// The file as shown in messages (the path as given).
    pub file: String,
    columns: Vec<String>,
    rows: Vec<(usize, csv::StringRecord)>,
}

/// A located problem in a results file.
pub fn bad(file: &str, line: usize, key: &str, message: impl Into<String>) -> Error {
    Error::invalid(file, line, key, message)
}

impl Table {
    /// Reads `path`, requiring the named columns and at least one row.
    pub fn read(path: &Path, required: &[&str]) -> Result<Table> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| {
            bad(
                &file,
                HEADER_LINE,
                "file",
                format!("cannot read: {e} (expected a CSV file)"),
            )
        })?;
        Table::parse(&bytes, &file, required)
    }

    /// Parses CSV bytes (kept apart from `read` so tests can feed bytes).
    pub fn parse(bytes: &[u8], file: &str, required: &[&str]) -> Result<Table> {
        let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
        let header = reader.headers().map_err(|e| csv_problem(file, &e))?.clone();
        if header.is_empty() || header.iter().all(str::is_empty) {
            let expected = required.join(",");
            return Err(bad(
                file,
                HEADER_LINE,
                "header",
                format!("empty file (expected the header `{expected}`)"),
            ));
        }
        let columns: Vec<String> = header.iter().map(String::from).collect();
        if let Some(missing) = required.iter().find(|c| !columns.iter().any(|h| h == *c)) {
            return Err(bad(
                file,
                HEADER_LINE,
                missing,
                "column missing from the header",
            ));
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_problem(file, &e))?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            rows.push((line, record));
        }
        if rows.is_empty() {
            return Err(bad(
                file,
                HEADER_LINE + 1,
                "rows",
                "no data rows after the header",
            ));
        }
        Ok(Table {
            file: file.to_string(),
            columns,
            rows,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The 1-based line of row `i`.
    pub fn line(&self, i: usize) -> usize {
        self.rows[i].0
    }

    fn index(&self, column: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c == column)
            .expect("required columns are checked when the file is read")
    }

    /// The text of `column` in row `i`.
    pub fn text(&self, i: usize, column: &str) -> &str {
        self.rows[i].1.get(self.index(column)).unwrap_or("")
    }

    /// A number that may be absent (an empty cell).
    pub fn opt_num(&self, i: usize, column: &str) -> Result<Option<f64>> {
        let text = self.text(i, column).trim();
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(bad(
                &self.file,
                self.line(i),
                column,
                format!("`{text}` is not a finite number"),
            )),
        }
    }

    /// A number that must be present.
    pub fn num(&self, i: usize, column: &str) -> Result<f64> {
        self.opt_num(i, column)?.ok_or_else(|| {
            bad(
                &self.file,
                self.line(i),
                column,
                "empty cell (expected a number)",
            )
        })
    }

    /// A non-negative whole number (an index or a count).
    pub fn index_value(&self, i: usize, column: &str) -> Result<usize> {
        let text = self.text(i, column).trim();
        text.parse::<usize>().map_err(|_| {
            bad(
                &self.file,
                self.line(i),
                column,
                format!("`{text}` is not a non-negative integer"),
            )
        })
    }
}

fn csv_problem(file: &str, e: &csv::Error) -> Error {
    let line = e.position().map_or(HEADER_LINE, |p| p.line() as usize);
    bad(file, line, "csv", format!("malformed CSV: {e}"))
}

/// One row of summary.csv.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stat {
    pub mean: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub replications: usize,
}

/// summary.csv: metric → statistics, with the metrics' order.
pub struct Summary {
    pub order: Vec<String>,
    pub stats: BTreeMap<String, Stat>,
}

impl Summary {
    pub fn get(&self, metric: &str) -> Option<&Stat> {
        self.stats.get(metric)
    }

    pub fn mean(&self, metric: &str) -> Option<f64> {
        self.get(metric).and_then(|s| s.mean)
    }

    /// The names after `prefix` of metrics `prefix<name>`, in file order.
    pub fn suffixes(&self, prefix: &str) -> Vec<String> {
        self.order
            .iter()
            .filter_map(|m| m.strip_prefix(prefix).map(String::from))
            .collect()
    }
}

pub fn read_summary(dir: &Path) -> Result<Summary> {
    let t = Table::read(
        &dir.join(SUMMARY),
        &["metric", "mean", "ci95_low", "ci95_high", "replications"],
    )?;
    let (mut order, mut stats) = (Vec::new(), BTreeMap::new());
    for i in 0..t.len() {
        let metric = t.text(i, "metric").to_string();
        let (lo, hi) = (t.opt_num(i, "ci95_low")?, t.opt_num(i, "ci95_high")?);
        let stat = Stat {
            mean: t.opt_num(i, "mean")?,
            ci: lo.zip(hi),
            replications: t.index_value(i, "replications")?,
        };
        order.push(metric.clone());
        stats.insert(metric, stat);
    }
    Ok(Summary { order, stats })
}

/// One tick of a per-tick series: mean and the 2.5–97.5 percentile band of the replications.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    pub mean: f64,
    pub band: (f64, f64),
}

/// Per-tick series (timeseries.csv or budgets.csv): tick start times and named series.
pub struct Series {
    /// Start of each tick, `YYYY-MM-DD HH:MM` (UTC+8).
    pub times: Vec<String>,
    /// Names in first-seen order.
    pub order: Vec<String>,
    pub values: BTreeMap<String, Vec<Point>>,
}

impl Series {
    pub fn get(&self, name: &str) -> Option<&[Point]> {
        self.values.get(name).map(Vec::as_slice)
    }
}

/// Reads a per-tick file whose rows are (tick, time, name, mean, band_low, band_high).
fn read_series(path: &Path, name_col: &str, mean_col: &str) -> Result<Series> {
    let t = Table::read(
        path,
        &["tick", "time", name_col, mean_col, "band_low", "band_high"],
    )?;
    let mut s = Series {
        times: Vec::new(),
        order: Vec::new(),
        values: BTreeMap::new(),
    };
    for i in 0..t.len() {
        let tick = t.index_value(i, "tick")?;
        let time = t.text(i, "time");
        if tick == s.times.len() {
            s.times.push(time.to_string());
        } else if tick + 1 != s.times.len() {
            let expected = s.times.len().saturating_sub(1);
            return Err(bad(
                &t.file,
                t.line(i),
                "tick",
                format!(
                    "{tick} out of order (expected {expected} or {})",
                    s.times.len()
                ),
            ));
        }
        let name = t.text(i, name_col).to_string();
        let point = Point {
            mean: t.num(i, mean_col)?,
            band: (t.num(i, "band_low")?, t.num(i, "band_high")?),
        };
        let values = s.values.entry(name.clone()).or_insert_with(|| {
            s.order.push(name.clone());
            Vec::new()
        });
        if values.len() != tick {
            return Err(bad(
                &t.file,
                t.line(i),
                name_col,
                format!("`{name}` has no row for tick {}", values.len()),
            ));
        }
        values.push(point);
    }
    Ok(s)
}

pub fn read_timeseries(dir: &Path) -> Result<Series> {
    read_series(&dir.join(TIMESERIES), "metric", "mean")
}

pub fn read_budgets(dir: &Path) -> Result<Series> {
    read_series(&dir.join(BUDGETS), "program", "remaining_mean")
}

/// One row of funnel.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct FunnelRow {
    pub placement: String,
    pub destination: String,
    pub segment: String,
    pub stage: String,
    pub mean: f64,
}

pub fn read_funnel(dir: &Path) -> Result<Vec<FunnelRow>> {
    let t = Table::read(
        &dir.join(FUNNEL),
        &["placement", "destination", "segment", "stage", "mean"],
    )?;
    (0..t.len())
        .map(|i| {
            Ok(FunnelRow {
                placement: t.text(i, "placement").to_string(),
                destination: t.text(i, "destination").to_string(),
                segment: t.text(i, "segment").to_string(),
                stage: t.text(i, "stage").to_string(),
                mean: t.num(i, "mean")?,
            })
        })
        .collect()
}

/// raw/funnel.csv: per replication (in file order), the value of every funnel cell.
pub struct RawFunnel {
    pub replications: Vec<u64>,
    /// `[replication][cell]`.
    pub values: Vec<Vec<f64>>,
}

/// Reads raw/funnel.csv; `cells` is the number of rows of funnel.csv.
pub fn read_raw_funnel(dir: &Path, cells: usize) -> Result<RawFunnel> {
    let t = Table::read(
        &dir.join(RAW).join(FUNNEL),
        &["replication", "cell", "value"],
    )?;
    let mut raw = RawFunnel {
        replications: Vec::new(),
        values: Vec::new(),
    };
    for i in 0..t.len() {
        let rep = t.index_value(i, "replication")? as u64;
        let cell = t.index_value(i, "cell")?;
        if raw.replications.last() != Some(&rep) {
            raw.replications.push(rep);
            raw.values.push(Vec::with_capacity(cells));
        }
        let row = raw.values.last_mut().expect("a row was just pushed");
        if cell != row.len() || cell >= cells {
            let expected = row.len();
            return Err(bad(
                &t.file,
                t.line(i),
                "cell",
                format!("{cell} out of order (expected {expected}; funnel.csv has {cells} rows)"),
            ));
        }
        row.push(t.num(i, "value")?);
    }
    if let Some(k) = raw.values.iter().position(|r| r.len() != cells) {
        let file = &t.file;
        return Err(bad(
            file,
            t.line(t.len() - 1),
            "cell",
            format!(
                "replication {} has {} cells (funnel.csv has {cells} rows)",
                raw.replications[k],
                raw.values[k].len()
            ),
        ));
    }
    Ok(raw)
}

/// What the charts use of manifest.json.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Manifest {
    pub scenario_name: String,
    pub replications: u64,
    #[serde(default)]
    pub engine: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub scenario_text: String,
}

pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let file = path.display().to_string();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad(&file, HEADER_LINE, "file", format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        bad(
            &file,
            e.line().max(HEADER_LINE),
            "json",
            format!("malformed manifest: {e}"),
        )
    })
}

/// What the charts use of the scenario's programs, from the scenario text in manifest.json.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Programs {
    /// Program → funder → share.
    pub funded_by: BTreeMap<String, BTreeMap<String, f64>>,
    /// Program → budget (yuan).
    pub budget: BTreeMap<String, f64>,
}

fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// Reads the programs' shares and budgets; empty when the text is absent or does not parse
/// (spend is then split by funder only, and burn-down panels start at the first tick).
pub fn programs(scenario_text: &str) -> Programs {
    let mut out = Programs::default();
    let Ok(doc) = scenario_text.parse::<toml::Table>() else {
        return out;
    };
    let Some(list) = doc.get("program").and_then(toml::Value::as_array) else {
        return out;
    };
    for p in list {
        let Some(name) = p.get("name").and_then(toml::Value::as_str) else {
            continue;
        };
        if let Some(budget) = p.get("budget").and_then(number) {
            out.budget.insert(name.to_string(), budget);
        }
        if let Some(shares) = p.get("funded_by").and_then(toml::Value::as_table) {
            let shares = shares
                .iter()
                .filter_map(|(f, v)| Some((f.clone(), number(v)?)))
                .collect();
            out.funded_by.insert(name.to_string(), shares);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_located() {
        let e = Table::parse(b"", "x.csv", &["a"]).err().expect("error");
        assert!(e.to_string().starts_with("x.csv:1: header:"), "{e}");
    }

    #[test]
    fn bad_number_names_line_and_column() {
        let e = Table::parse(b"a,b\n1,2\n3,zz\n", "x.csv", &["a", "b"]).expect("parses");
        let err = e.num(1, "b").expect_err("not a number");
        assert_eq!(err.to_string(), "x.csv:3: b: `zz` is not a finite number");
    }

    #[test]
    fn ragged_rows_are_malformed() {
        let e = Table::parse(b"a,b\n1,2\n3\n", "x.csv", &["a"])
            .err()
            .expect("error");
        assert!(e.to_string().starts_with("x.csv:3: csv:"), "{e}");
    }

    #[test]
    fn programs_reads_shares_and_budgets() {
        let text =
            "[[program]]\nname = \"p\"\nbudget = 1_000\nfunded_by = { a = 0.25, b = 0.75 }\n";
        let p = programs(text);
        assert_eq!(p.funded_by["p"]["b"], 0.75);
        assert_eq!(p.budget["p"], 1000.0);
    }
}
