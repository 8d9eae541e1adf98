//! The files of a results folder (INTERFACE.md, *Results folder*), written from per-replication
//! records, and `raw/` read back, so that `merge` and `chart` rebuild everything from files alone.

use std::path::Path;

use serde::Serialize;

use super::aggregate::{self, BAND, Stats};
use super::metrics::{Layout, Record};
use crate::engine::FUNNEL_DESTINATIONS;
use crate::error::{Error, Result};

pub const SUMMARY: &str = "summary.csv";
pub const REPLICATIONS: &str = "replications.csv";
pub const TIMESERIES: &str = "timeseries.csv";
pub const FUNNEL: &str = "funnel.csv";
pub const BUDGETS: &str = "budgets.csv";
pub const MANIFEST: &str = "manifest.json";
pub const RAW: &str = "raw";

fn csv_err(path: &Path, e: csv::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

/// Writes rows to `dir/name` with a header, through the csv crate.
fn write_rows<R: Serialize>(
    dir: &Path,
    name: &str,
    rows: impl IntoIterator<Item = R>,
) -> Result<()> {
    let path = dir.join(name);
    let mut w = csv::Writer::from_path(&path).map_err(|e| csv_err(&path, e))?;
    for row in rows {
        w.serialize(row).map_err(|e| csv_err(&path, e))?;
    }
    w.flush().map_err(|e| Error::Write {
        path: path.clone(),
        source: e,
    })
}

/// Writes a header and string records (for files whose columns depend on the scenario).
fn write_table(
    dir: &Path,
    name: &str,
    header: &[String],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<()> {
    let path = dir.join(name);
    let mut w = csv::Writer::from_path(&path).map_err(|e| csv_err(&path, e))?;
    w.write_record(header).map_err(|e| csv_err(&path, e))?;
    for row in rows {
        w.write_record(&row).map_err(|e| csv_err(&path, e))?;
    }
    w.flush().map_err(|e| Error::Write {
        path: path.clone(),
        source: e,
    })
}

/// A number as written in every CSV: Rust's shortest round-trip form; empty when absent.
pub fn cell(x: Option<f64>) -> String {
    x.map_or(String::new(), |v| format!("{v}"))
}

#[derive(Serialize)]
pub struct SummaryRow {
    pub metric: String,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub p05: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub replications: usize,
}

/// The summary of every metric; `iroi`'s mean is the ratio of the means, with a delta-method CI.
pub fn summary(layout: &Layout, records: &[Record]) -> Vec<SummaryRow> {
    let column = |i: usize| records.iter().map(|r| r.metrics[i]).collect::<Vec<_>>();
    let present = |name: &str| -> Vec<f64> {
        layout.metric_index(name).map_or(Vec::new(), |i| {
            column(i).into_iter().map(|v| v.unwrap_or(0.0)).collect()
        })
    };
    layout
        .metrics
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let s: Stats = aggregate::stats(&column(i));
            let (mut mean, mut ci) = (s.mean, s.ci);
            if name == "iroi" {
                (mean, ci) = aggregate::ratio_of_means(
                    &present("incremental_gmv"),
                    &present("subsidy_spend"),
                );
            }
            SummaryRow {
                metric: name.clone(),
                mean,
                std: s.std,
                ci95_low: ci.map(|c| c.0),
                ci95_high: ci.map(|c| c.1),
                p05: s.p05,
                p50: s.p50,
                p95: s.p95,
                replications: s.n,
            }
        })
        .collect()
}

/// Mean, CI of the mean and the 2.5–97.5 band of values.
fn mean_ci_band(values: &mut [f64]) -> (f64, Option<(f64, f64)>, (f64, f64)) {
    let m = aggregate::mean(values);
    let ci = aggregate::ci_of_mean(m, aggregate::std_dev(values), values.len());
    values.sort_by(f64::total_cmp);
    let band = (
        aggregate::percentile_sorted(values, BAND.0),
        aggregate::percentile_sorted(values, BAND.1),
    );
    (m, ci, band)
}

#[derive(Serialize)]
struct SeriesRow<'a> {
    tick: usize,
    time: &'a str,
    metric: &'a str,
    mean: f64,
    ci95_low: Option<f64>,
    ci95_high: Option<f64>,
    band_low: f64,
    band_high: f64,
}

#[derive(Serialize)]
struct FunnelRow<'a> {
    placement: &'a str,
    destination: &'a str,
    segment: &'a str,
    stage: &'a str,
    mean: f64,
    ci95_low: Option<f64>,
    ci95_high: Option<f64>,
}

#[derive(Serialize)]
struct BudgetRow<'a> {
    tick: usize,
    time: &'a str,
    program: &'a str,
    remaining_mean: f64,
    band_low: f64,
    band_high: f64,
}

/// Writes every file of a results folder except the manifest and charts.
pub fn write_all(dir: &Path, layout: &Layout, records: &[Record], seed: u64) -> Result<()> {
    write_rows(dir, SUMMARY, summary(layout, records))?;
    write_replications(dir, REPLICATIONS, layout, records, seed)?;
    write_series(dir, layout, records)?;
    write_funnel(dir, layout, records)?;
    write_budgets(dir, layout, records)?;
    write_raw(dir, layout, records, seed)
}

fn write_replications(
    dir: &Path,
    name: &str,
    layout: &Layout,
    records: &[Record],
    seed: u64,
) -> Result<()> {
    let mut header = vec!["replication".to_string(), "seed".to_string()];
    header.extend(layout.metrics.iter().cloned());
    let rows = records.iter().map(|r| {
        let mut row = vec![r.replication.to_string(), seed.to_string()];
        row.extend(r.metrics.iter().map(|&v| cell(v)));
        row
    });
    write_table(dir, name, &header, rows)
}

fn write_series(dir: &Path, layout: &Layout, records: &[Record]) -> Result<()> {
    let mut rows = Vec::new();
    for (t, time) in layout.tick_times.iter().enumerate() {
        for (k, metric) in layout.series.iter().enumerate() {
            let mut values: Vec<f64> = records.iter().map(|r| r.series[t][k]).collect();
            let (mean, ci, band) = mean_ci_band(&mut values);
            rows.push(SeriesRow {
                tick: t,
                time,
                metric,
                mean,
                ci95_low: ci.map(|c| c.0),
                ci95_high: ci.map(|c| c.1),
                band_low: band.0,
                band_high: band.1,
            });
        }
    }
    write_rows(dir, TIMESERIES, rows)
}

fn write_funnel(dir: &Path, layout: &Layout, records: &[Record]) -> Result<()> {
    let rows = layout.funnel.iter().enumerate().map(|(i, c)| {
        let mut values: Vec<f64> = records.iter().map(|r| r.funnel[i]).collect();
        let (mean, ci, _) = mean_ci_band(&mut values);
        FunnelRow {
            placement: &layout.placements[c.placement],
            destination: FUNNEL_DESTINATIONS[c.destination],
            segment: &layout.segments[c.segment],
            stage: &c.stage,
            mean,
            ci95_low: ci.map(|c| c.0),
            ci95_high: ci.map(|c| c.1),
        }
    });
    write_rows(dir, FUNNEL, rows.collect::<Vec<_>>())
}

fn write_budgets(dir: &Path, layout: &Layout, records: &[Record]) -> Result<()> {
    let mut rows = Vec::new();
    for (t, time) in layout.tick_times.iter().enumerate() {
        for (j, program) in layout.programs.iter().enumerate() {
            let mut values: Vec<f64> = records.iter().map(|r| r.remaining[t][j]).collect();
            let (mean, _, band) = mean_ci_band(&mut values);
            rows.push(BudgetRow {
                tick: t,
                time,
                program,
                remaining_mean: mean,
                band_low: band.0,
                band_high: band.1,
            });
        }
    }
    write_rows(dir, BUDGETS, rows)
}

/// `raw/`: every replication's metrics, series, funnel cells and remaining budgets.
fn write_raw(dir: &Path, layout: &Layout, records: &[Record], seed: u64) -> Result<()> {
    let raw = dir.join(RAW);
    std::fs::create_dir_all(&raw).map_err(|e| Error::Write {
        path: raw.clone(),
        source: e,
    })?;
    write_replications(&raw, REPLICATIONS, layout, records, seed)?;
    let mut header = vec!["replication".to_string(), "tick".to_string()];
    header.extend(layout.series.iter().cloned());
    let rows = records.iter().flat_map(|r| {
        r.series.iter().enumerate().map(move |(t, row)| {
            let mut out = vec![r.replication.to_string(), t.to_string()];
            out.extend(row.iter().map(|&v| cell(Some(v))));
            out
        })
    });
    write_table(&raw, TIMESERIES, &header, rows)?;
    let header: Vec<String> = ["replication", "cell", "value"].map(String::from).to_vec();
    let rows = records.iter().flat_map(|r| {
        r.funnel
            .iter()
            .enumerate()
            .map(move |(i, &v)| vec![r.replication.to_string(), i.to_string(), cell(Some(v))])
    });
    write_table(&raw, FUNNEL, &header, rows)?;
    let mut header = vec!["replication".to_string(), "tick".to_string()];
    header.extend(layout.programs.iter().cloned());
    let rows = records.iter().flat_map(|r| {
        r.remaining.iter().enumerate().map(move |(t, row)| {
            let mut out = vec![r.replication.to_string(), t.to_string()];
            out.extend(row.iter().map(|&v| cell(Some(v))));
            out
        })
    });
    write_table(&raw, BUDGETS, &header, rows)
}
