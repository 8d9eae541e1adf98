//! From per-replication records of every split to `compare.csv` (INTERFACE.md, *Results folder*),
//! and the files that let a comparison be re-read: `summary.csv` of the reference and `raw/`.

use std::path::Path;

use super::SplitSet;
use super::stats::{self, Diff, Objective};
use crate::error::{Error, Result};
use crate::results::files::{self, SummaryRow, cell};
use crate::results::{Layout, Record};

pub const COMPARE: &str = "compare.csv";
/// `raw/replications.csv`: `split,replication,seed,` then every metric, one row per split and
/// replication.
pub const RAW_REPLICATIONS: &str = "replications.csv";
/// `raw/splits.csv`: `split,` then the columns that say where each split stands.
pub const RAW_SPLITS: &str = "splits.csv";
/// The metric whose summary is a ratio of means (MODEL.md), and its two parts.
const RATIO_METRIC: &str = "iroi";
const RATIO_NUMERATOR: &str = "incremental_gmv";
const RATIO_DENOMINATOR: &str = "subsidy_spend";
/// The columns after the split's own columns.
const STAT_COLUMNS: [&str; 8] = [
    "metric",
    "mean",
    "ci95_low",
    "ci95_high",
    "diff_vs_reference",
    "diff_ci95_low",
    "diff_ci95_high",
    "p_best",
];

/// Everything `compare.csv` and the ranking hold.
pub struct Comparison {
    pub names: Vec<String>,
    pub column_names: Vec<String>,
    /// `values[split][column]`.
    pub values: Vec<Vec<f64>>,
    pub reference: usize,
    pub metrics: Vec<String>,
    /// `summaries[split][metric]`: as in `summary.csv` (`iroi` a ratio of means).
    pub summaries: Vec<Vec<SummaryRow>>,
    /// `diffs[split][metric]`: paired differences against the reference.
    pub diffs: Vec<Vec<Diff>>,
    /// Index of the objective in `metrics`.
    pub objective: usize,
    pub minimize: bool,
    /// `p_best[split]`, summing to 1.
    pub p_best: Vec<f64>,
}

/// `values[split][replication]` of one metric.
fn column(records: &[Vec<Record>], m: usize) -> Vec<Vec<Option<f64>>> {
    records
        .iter()
        .map(|split| split.iter().map(|r| r.metrics[m]).collect())
        .collect()
}

/// Like [`column()`], absent values as 0 (the ratio's parts, as `summary.csv` reads them).
fn column_or_zero(records: &[Vec<Record>], layout: &Layout, name: &str) -> Vec<Vec<f64>> {
    let Some(m) = layout.metric_index(name) else {
        return vec![vec![0.0; records.first().map_or(0, Vec::len)]; records.len()];
    };
    column(records, m)
        .into_iter()
        .map(|v| v.into_iter().map(|x| x.unwrap_or(0.0)).collect())
        .collect()
}

impl Comparison {
    /// Computes every statistic; `records[split][replication]`, replications aligned across splits.
    pub fn new(
        set: &SplitSet,
        column_names: Vec<String>,
        layout: &Layout,
        records: &[Vec<Record>],
        objective: usize,
        minimize: bool,
        seed: u64,
    ) -> Comparison {
        let r = set.reference;
        let y = column_or_zero(records, layout, RATIO_NUMERATOR);
        let x = column_or_zero(records, layout, RATIO_DENOMINATOR);
        let mut diffs: Vec<Vec<Diff>> = vec![Vec::new(); records.len()];
        for (m, name) in layout.metrics.iter().enumerate() {
            let v = column(records, m);
            for (s, row) in diffs.iter_mut().enumerate() {
                row.push(match name.as_str() {
                    RATIO_METRIC => stats::paired_ratio_diff(&y[s], &x[s], &y[r], &x[r]),
                    _ => stats::paired_diff(&v[s], &v[r]),
                });
            }
        }
        let values = column(records, objective);
        let scorer = if layout.metrics[objective] == RATIO_METRIC {
            Objective::Ratio { y: &y, x: &x }
        } else {
            Objective::Mean(&values)
        };
        let replications = records.first().map_or(0, Vec::len);
        Comparison {
            names: set.splits.iter().map(|s| s.name.clone()).collect(),
            column_names,
            values: set.values.clone(),
            reference: r,
            metrics: layout.metrics.clone(),
            summaries: records.iter().map(|s| files::summary(layout, s)).collect(),
            diffs,
            objective,
            minimize,
            p_best: stats::p_best(&scorer, replications, minimize, seed),
        }
    }

    /// The header of `compare.csv`.
    pub fn header(&self) -> Vec<String> {
        let mut h = vec!["split".to_string()];
        h.extend(self.column_names.iter().cloned());
        h.extend(STAT_COLUMNS.map(String::from));
        h
    }

    /// The rows of `compare.csv`: split by split (in order), metric by metric (`Layout` order);
    /// `p_best` only on the objective's rows.
    pub fn rows(&self) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        for (s, name) in self.names.iter().enumerate() {
            for (m, metric) in self.metrics.iter().enumerate() {
                let (sum, d) = (&self.summaries[s][m], &self.diffs[s][m]);
                let mut row = vec![name.clone()];
                row.extend(self.values[s].iter().map(|&v| cell(Some(v))));
                row.push(metric.clone());
                row.extend([sum.mean, sum.ci95_low, sum.ci95_high].map(cell));
                row.extend([d.mean, d.ci.map(|c| c.0), d.ci.map(|c| c.1)].map(cell));
                row.push(cell((m == self.objective).then_some(self.p_best[s])));
                rows.push(row);
            }
        }
        rows
    }

    /// The objective's mean of a split.
    pub fn objective_mean(&self, split: usize) -> Option<f64> {
        self.summaries[split][self.objective].mean
    }

    /// Splits from best to worst on the objective's mean (splits without one last; ties keep order).
    pub fn ranking(&self) -> Vec<usize> {
        let key = |s: usize| {
            let m = self.objective_mean(s);
            match (m, self.minimize) {
                (None, _) => f64::INFINITY,
                (Some(v), true) => v,
                (Some(v), false) => -v,
            }
        };
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
        order
    }
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

/// Writes a header and rows to `path`.
fn write_table(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| csv_err(path, e))?;
    w.write_record(header).map_err(|e| csv_err(path, e))?;
    for row in rows {
        w.write_record(row).map_err(|e| csv_err(path, e))?;
    }
    w.flush().map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `compare.csv`, `summary.csv` (of the reference) and `raw/` into `dir`.
pub fn write_all(
    dir: &Path,
    comparison: &Comparison,
    layout: &Layout,
    records: &[Vec<Record>],
    seed: u64,
) -> Result<()> {
    write_table(&dir.join(COMPARE), &comparison.header(), &comparison.rows())?;
    write_summary(
        &dir.join(files::SUMMARY),
        &comparison.summaries[comparison.reference],
    )?;
    let c = comparison;
    write_raw(
        dir,
        &c.names,
        &c.column_names,
        &c.values,
        layout,
        records,
        seed,
    )
}

/// Writes `raw/splits.csv` and `raw/replications.csv` into `dir`: all a shard writes (`--shard`),
/// and all `merge` rebuilds a comparison from. `records[split][replication]`, aligned with `names`
/// and `values[split][column]`.
pub fn write_raw(
    dir: &Path,
    names: &[String],
    column_names: &[String],
    values: &[Vec<f64>],
    layout: &Layout,
    records: &[Vec<Record>],
    seed: u64,
) -> Result<()> {
    let raw = dir.join(files::RAW);
    std::fs::create_dir_all(&raw).map_err(|source| Error::Write {
        path: raw.clone(),
        source,
    })?;
    let mut header = vec!["split".to_string()];
    header.extend(column_names.iter().cloned());
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(values)
        .map(|(name, values)| {
            let mut row = vec![name.clone()];
            row.extend(values.iter().map(|&v| cell(Some(v))));
            row
        })
        .collect();
    write_table(&raw.join(RAW_SPLITS), &header, &rows)?;
    let mut header: Vec<String> = ["split", "replication", "seed"].map(String::from).to_vec();
    header.extend(layout.metrics.iter().cloned());
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(records)
        .flat_map(|(name, split)| {
            split.iter().map(move |r| {
                let mut row = vec![name.clone(), r.replication.to_string(), seed.to_string()];
                row.extend(r.metrics.iter().map(|&v| cell(v)));
                row
            })
        })
        .collect();
    write_table(&raw.join(RAW_REPLICATIONS), &header, &rows)
}

fn write_summary(path: &Path, rows: &[SummaryRow]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| csv_err(path, e))?;
    for row in rows {
        w.serialize(row).map_err(|e| csv_err(path, e))?;
    }
    w.flush().map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}
