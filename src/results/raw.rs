//! `raw/` read back into [`Record`]s, so that `merge` (and `chart`) rebuild a results folder (of
//! `run` or of `compare`) from files alone. Numbers are written in Rust's shortest round-trip
//! form, so parsing them gives the very same `f64` and everything recomputed from them is
//! byte-identical.
//!
//! Every problem is reported as `FILE:LINE: column: what is wrong (what is expected)`.

use std::ops::RangeInclusive;
use std::path::Path;

use super::files::{BUDGETS, FUNNEL, RAW, REPLICATIONS, TIMESERIES};
use super::metrics::{Layout, Record};
use crate::error::{Error, Result};

/// The first columns of the per-tick raw files.
const TICK_KEYS: [&str; 2] = ["replication", "tick"];
/// The first columns of a `compare` folder's `raw/replications.csv`.
const COMPARE_KEYS: [&str; 3] = ["split", "replication", "seed"];

/// One raw CSV file being read: its display name and its rows with their 1-based line numbers.
struct Table {
    file: String,
    header: Vec<String>,
    rows: Vec<(usize, csv::StringRecord)>,
}

fn problem(file: &str, line: usize, key: &str, message: impl Into<String>) -> Error {
    Error::invalid(file, line, key, message)
}

fn read_table(path: &Path) -> Result<Table> {
    let file = path.display().to_string();
    let mut reader = csv::Reader::from_path(path).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(source) => Error::Read {
            path: path.to_path_buf(),
            source,
        },
        other => problem(&file, 1, "header", format!("{other:?}")),
    })?;
    let header = reader
        .headers()
        .map_err(|e| problem(&file, 1, "header", e.to_string()))?
        .iter()
        .map(String::from)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            problem(&file, line, "row", format!("{e} (expected a CSV row)"))
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        rows.push((line, record));
    }
    Ok(Table { file, header, rows })
}

impl Table {
    /// Checks the header is `keys` then `columns`.
    fn expect_header(&self, keys: &[&str], columns: &[String]) -> Result<()> {
        let expected: Vec<&str> = keys
            .iter()
            .copied()
            .chain(columns.iter().map(String::as_str))
            .collect();
        if self.header != expected {
            return Err(problem(
                &self.file,
                1,
                "header",
                format!(
                    "`{}` does not match the scenario (expected `{}`)",
                    self.header.join(","),
                    expected.join(",")
                ),
            ));
        }
        Ok(())
    }

    fn cell<'a>(&'a self, line: usize, row: &'a csv::StringRecord, i: usize) -> Result<&'a str> {
        row.get(i).ok_or_else(|| {
            problem(
                &self.file,
                line,
                &self.header[i.min(self.header.len() - 1)],
                "missing (expected one value per column)",
            )
        })
    }

    fn integer(&self, line: usize, row: &csv::StringRecord, i: usize) -> Result<u64> {
        let text = self.cell(line, row, i)?;
        text.parse().map_err(|_| {
            problem(
                &self.file,
                line,
                &self.header[i],
                format!("`{text}` is not a whole number (expected e.g. 3)"),
            )
        })
    }

    /// A number; empty is `None` (a metric absent from that replication).
    fn number(&self, line: usize, row: &csv::StringRecord, i: usize) -> Result<Option<f64>> {
        let text = self.cell(line, row, i)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            problem(
                &self.file,
                line,
                &self.header[i],
                format!("`{text}` is not a number (expected e.g. 12.5)"),
            )
        })
    }

    fn required(&self, line: usize, row: &csv::StringRecord, i: usize) -> Result<f64> {
        self.number(line, row, i)?.ok_or_else(|| {
            problem(
                &self.file,
                line,
                &self.header[i],
                "empty (expected a number)",
            )
        })
    }
}

/// Reads the `raw/` folder of the results folder `dir`, written by a run of the scenario whose
/// layout is `layout` with master seed `seed`; records come back in replication order.
pub fn read(dir: &Path, layout: &Layout, seed: u64) -> Result<Vec<Record>> {
    let raw = dir.join(RAW);
    let mut records = read_replications(&raw.join(REPLICATIONS), layout, seed)?;
    let ticks = layout.tick_times.len();
    let series = read_per_tick(&raw.join(TIMESERIES), &layout.series, ticks, &records)?;
    let remaining = read_per_tick(&raw.join(BUDGETS), &layout.programs, ticks, &records)?;
    let funnel = read_funnel(&raw.join(FUNNEL), layout.funnel.len(), &records)?;
    for (((r, s), b), f) in records.iter_mut().zip(series).zip(remaining).zip(funnel) {
        (r.series, r.remaining, r.funnel) = (s, b, f);
    }
    Ok(records)
}

fn read_replications(path: &Path, layout: &Layout, seed: u64) -> Result<Vec<Record>> {
    let t = read_table(path)?;
    t.expect_header(&["replication", "seed"], &layout.metrics)?;
    let mut records: Vec<Record> = Vec::with_capacity(t.rows.len());
    for (line, row) in &t.rows {
        let replication = t.integer(*line, row, 0)?;
        if let Some(prev) = records.last()
            && replication <= prev.replication
        {
            return Err(problem(
                &t.file,
                *line,
                "replication",
                format!(
                    "{replication} after {} (expected increasing numbers)",
                    prev.replication
                ),
            ));
        }
        records.push(seed_and_metrics(
            &t,
            *line,
            row,
            1,
            layout,
            seed,
            replication,
        )?);
    }
    Ok(records)
}

/// A metrics-only record from a row whose seed is in column `seed_column`, every metric after it.
fn seed_and_metrics(
    t: &Table,
    line: usize,
    row: &csv::StringRecord,
    seed_column: usize,
    layout: &Layout,
    seed: u64,
    replication: u64,
) -> Result<Record> {
    let row_seed = t.integer(line, row, seed_column)?;
    if row_seed != seed {
        return Err(problem(
            &t.file,
            line,
            "seed",
            format!("{row_seed} differs from the manifest's (expected {seed})"),
        ));
    }
    let metrics = (0..layout.metrics.len())
        .map(|m| t.number(line, row, seed_column + 1 + m))
        .collect::<Result<Vec<_>>>()?;
    Ok(Record {
        replication,
        metrics,
        series: Vec::new(),
        funnel: Vec::new(),
        remaining: Vec::new(),
    })
}

/// Reads `raw/replications.csv` of a `compare` folder (`split,replication,seed,` then every
/// metric), written with master seed `seed`: `records[split][replication]` (metrics only). The rows
/// must run split by split in the order of `splits`, each split's rows exactly the replications
/// `expected` in increasing order, so a shard holding other replications than its manifest says
/// is refused with the offending line.
pub fn read_compare(
    dir: &Path,
    layout: &Layout,
    seed: u64,
    splits: &[String],
    expected: RangeInclusive<u64>,
) -> Result<Vec<Vec<Record>>> {
    let t = read_table(&dir.join(RAW).join(REPLICATIONS))?;
    t.expect_header(&COMPARE_KEYS, &layout.metrics)?;
    let per_split = expected.clone().count();
    check_row_count(&t, splits.len() * per_split)?;
    let mut rows = t.rows.iter();
    let mut out = Vec::with_capacity(splits.len());
    for name in splits {
        let mut records = Vec::with_capacity(per_split);
        for replication in expected.clone() {
            let (line, row) = rows.next().expect("row count checked");
            let found = t.cell(*line, row, 0)?;
            if found != name {
                return Err(problem(
                    &t.file,
                    *line,
                    COMPARE_KEYS[0],
                    format!("`{found}` out of order (expected `{name}`)"),
                ));
            }
            expect_key(
                &t,
                *line,
                COMPARE_KEYS[1],
                t.integer(*line, row, 1)?,
                replication,
            )?;
            records.push(seed_and_metrics(
                &t,
                *line,
                row,
                2,
                layout,
                seed,
                replication,
            )?);
        }
        out.push(records);
    }
    Ok(out)
}

/// Checks that row `line` of a per-replication file belongs to `expected` at position `index`.
fn expect_key(t: &Table, line: usize, key: &str, found: u64, expected: u64) -> Result<()> {
    if found != expected {
        return Err(problem(
            &t.file,
            line,
            key,
            format!("{found} out of order (expected {expected})"),
        ));
    }
    Ok(())
}

/// Per-tick rows (`replication,tick,columns…`): `[replication][tick][column]`.
fn read_per_tick(
    path: &Path,
    columns: &[String],
    ticks: usize,
    records: &[Record],
) -> Result<Vec<Vec<Vec<f64>>>> {
    let t = read_table(path)?;
    t.expect_header(&TICK_KEYS, columns)?;
    check_row_count(&t, records.len() * ticks)?;
    let mut rows = t.rows.iter();
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let mut per_tick = Vec::with_capacity(ticks);
        for tick in 0..ticks {
            let (line, row) = rows.next().expect("row count checked");
            expect_key(
                &t,
                *line,
                TICK_KEYS[0],
                t.integer(*line, row, 0)?,
                r.replication,
            )?;
            expect_key(
                &t,
                *line,
                TICK_KEYS[1],
                t.integer(*line, row, 1)?,
                tick as u64,
            )?;
            let values = (0..columns.len())
                .map(|c| t.required(*line, row, TICK_KEYS.len() + c))
                .collect::<Result<Vec<_>>>()?;
            per_tick.push(values);
        }
        out.push(per_tick);
    }
    Ok(out)
}

fn check_row_count(t: &Table, expected: usize) -> Result<()> {
    if t.rows.len() != expected {
        let line = t.rows.last().map_or(1, |(l, _)| *l);
        return Err(problem(
            &t.file,
            line,
            "row",
            format!("{} rows (expected {expected})", t.rows.len()),
        ));
    }
    Ok(())
}

/// `replication,cell,value` rows: `[replication][cell]`.
fn read_funnel(path: &Path, cells: usize, records: &[Record]) -> Result<Vec<Vec<f64>>> {
    let t = read_table(path)?;
    t.expect_header(&["replication", "cell", "value"], &[])?;
    check_row_count(&t, records.len() * cells)?;
    let mut rows = t.rows.iter();
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let mut values = Vec::with_capacity(cells);
        for cell in 0..cells {
            let (line, row) = rows.next().expect("row count checked");
            expect_key(
                &t,
                *line,
                "replication",
                t.integer(*line, row, 0)?,
                r.replication,
            )?;
            expect_key(&t, *line, "cell", t.integer(*line, row, 1)?, cell as u64)?;
            values.push(t.required(*line, row, 2)?);
        }
        out.push(values);
    }
    Ok(out)
}
