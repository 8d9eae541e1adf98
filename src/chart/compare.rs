//! Charts of a `compare` folder, from compare.csv alone (`split,<share columns…>,metric,mean,
//! ci95_low,ci95_high,diff_vs_reference,diff_ci95_low,diff_ci95_high,p_best`): each headline
//! metric against the split with its 95% CI band and the reference split marked
//! (`split_<metric>.png`), every funder's `return.<funder>` (`split_returns.png`) and `p_best`
//! per split (`split_p_best.png`), plus report.html.
//!
//! The x axis is the first share column when it is numeric and differs between splits (a sweep),
//! else the splits in file order.

use std::fmt::Write as _;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::data::{self, Table, bad};
use super::style::{self, AXIS_DESC_SIZE, BAND_ALPHA, GRID, LABEL_SIZE, MARGIN, Mark};
use super::{ChartFormat, DrawResult, Drawn, Figure, axis, charts_dir, emit, report};
use crate::error::Result;
use crate::results::files::MANIFEST;

/// The file a compare folder is read from.
pub const COMPARE: &str = "compare.csv";
/// The columns after the share columns.
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
/// The split `compare` names after the scenario's own budgets and shares.
const REFERENCE: &str = "reference";
/// Headline metrics charted against the split, with their units.
const HEADLINES: [(&str, &str); 7] = [
    ("gmv", "yuan"),
    ("incremental_gmv", "yuan"),
    ("orders", "orders"),
    ("incremental_orders", "orders"),
    ("subsidy_spend", "yuan"),
    ("iroi", "yuan per yuan"),
    ("discount", "yuan"),
];
/// Room above and below the data, as a share of its span.
const HEADROOM: f64 = 0.1;
/// Radius of a split's marker, pixels.
const MARKER: u32 = 5;
/// Half-width of a whisker's cap, in category units.
const CAP: f64 = 0.06;

/// One metric at one split.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cell {
    pub mean: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub p_best: Option<f64>,
    /// The paired difference from the reference, and its 95% CI.
    pub diff: Option<f64>,
    pub diff_ci: Option<(f64, f64)>,
}

/// compare.csv, read.
pub struct Compare {
    pub share_columns: Vec<String>,
    /// Splits in file order, with their share-column texts.
    pub splits: Vec<(String, Vec<String>)>,
    /// Metrics in file order.
    pub metrics: Vec<String>,
    /// `cells[metric][split]`.
    pub cells: Vec<Vec<Cell>>,
    pub reference: Option<usize>,
}

/// Reads and checks compare.csv.
pub fn read(dir: &Path) -> Result<Compare> {
    let t = Table::read(&dir.join(COMPARE), &STAT_COLUMNS)?;
    let cols = t.columns();
    let first_stat = cols
        .iter()
        .position(|c| c == "metric")
        .unwrap_or(cols.len());
    if cols.first().map(String::as_str) != Some("split") {
        return Err(bad(&t.file, 1, "split", "the first column must be `split`"));
    }
    let share_columns: Vec<String> = cols[1..first_stat].to_vec();
    let mut c = Compare {
        share_columns,
        splits: Vec::new(),
        metrics: Vec::new(),
        cells: Vec::new(),
        reference: None,
    };
    let mut zero_diff: Vec<bool> = Vec::new();
    for i in 0..t.len() {
        let split = t.text(i, "split").to_string();
        let k = match c.splits.iter().position(|s| s.0 == split) {
            Some(k) => k,
            None => {
                let shares = c
                    .share_columns
                    .iter()
                    .map(|s| t.text(i, s).to_string())
                    .collect();
                c.splits.push((split, shares));
                zero_diff.push(true);
                c.splits.len() - 1
            }
        };
        let metric = t.text(i, "metric").to_string();
        let m = match c.metrics.iter().position(|x| *x == metric) {
            Some(m) => m,
            None => {
                c.metrics.push(metric);
                c.cells.push(Vec::new());
                c.metrics.len() - 1
            }
        };
        let (lo, hi) = (t.opt_num(i, "ci95_low")?, t.opt_num(i, "ci95_high")?);
        let (diff_lo, diff_hi) = (
            t.opt_num(i, "diff_ci95_low")?,
            t.opt_num(i, "diff_ci95_high")?,
        );
        let cell = Cell {
            mean: t.opt_num(i, "mean")?,
            ci: lo.zip(hi),
            p_best: t.opt_num(i, "p_best")?,
            diff: t.opt_num(i, "diff_vs_reference")?,
            diff_ci: diff_lo.zip(diff_hi),
        };
        let row = &mut c.cells[m];
        row.resize(row.len().max(k + 1), Cell::default());
        row[k] = cell;
        let diffs = ["diff_vs_reference", "diff_ci95_low", "diff_ci95_high"];
        for d in diffs {
            zero_diff[k] &= t.opt_num(i, d)?.unwrap_or(0.0) == 0.0;
        }
    }
    for row in &mut c.cells {
        row.resize(c.splits.len(), Cell::default());
    }
    c.reference = c
        .splits
        .iter()
        .position(|s| s.0 == REFERENCE)
        .or_else(|| zero_diff.iter().position(|z| *z));
    Ok(c)
}

impl Compare {
    /// x of each split, and the x axis' name when the first share column is a numeric sweep.
    fn x_positions(&self) -> (Vec<f64>, Option<String>) {
        let categorical = (
            (0..self.splits.len()).map(|k| k as f64 + 0.5).collect(),
            None,
        );
        let Some(name) = self.share_columns.first() else {
            return categorical;
        };
        let xs: Option<Vec<f64>> = self
            .splits
            .iter()
            .map(|s| s.1[0].trim().parse::<f64>().ok())
            .collect();
        match xs {
            Some(xs) if distinct(&xs) => (xs, Some(x_desc(name))),
            _ => categorical,
        }
    }

    fn metric(&self, name: &str) -> Option<&[Cell]> {
        self.metrics
            .iter()
            .position(|m| m == name)
            .map(|m| self.cells[m].as_slice())
    }
}

/// The x axis' description for a share column: budgets in yuan, shares from 0 to 1.
fn x_desc(column: &str) -> String {
    if column.starts_with("budget.") {
        format!("{column} (yuan)")
    } else {
        format!("{column} (share, 0 to 1)")
    }
}

fn distinct(xs: &[f64]) -> bool {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    xs.len() > 1 && sorted.windows(2).all(|w| w[0] < w[1])
}

/// One line (or set of points) of a split chart.
struct Line {
    label: String,
    color: RGBColor,
    cells: Vec<Cell>,
}

/// A chart of values against the split.
struct SplitChart {
    name: String,
    title: String,
    subtitle: String,
    y_desc: String,
    money: bool,
    lines: Vec<Line>,
    xs: Vec<f64>,
    x_name: Option<String>,
    splits: Vec<String>,
    reference: Option<usize>,
    /// Draw bars from 0 instead of lines (for p_best).
    bars: bool,
}

impl SplitChart {
    fn y_range(&self) -> (f64, f64) {
        let values = self
            .lines
            .iter()
            .flat_map(|l| l.cells.iter())
            .flat_map(|c| {
                let (lo, hi) = c.ci.or(c.mean.map(|m| (m, m))).unwrap_or((0.0, 0.0));
                [lo, hi]
            });
        let (lo, hi) = values.fold((0.0_f64, 0.0_f64), |(a, b), v| (a.min(v), b.max(v)));
        let span = if hi > lo { hi - lo } else { 1.0 };
        let lo = if lo < 0.0 { lo - HEADROOM * span } else { 0.0 };
        (lo, hi + HEADROOM * span)
    }

    fn x_range(&self) -> (f64, f64) {
        if self.x_name.is_none() {
            return (0.0, self.xs.len() as f64);
        }
        let (lo, hi) = self
            .xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(*x), b.max(*x))
            });
        let pad = (hi - lo) * HEADROOM / 2.0;
        (lo - pad, hi + pad)
    }

    fn format(&self, v: f64) -> String {
        if self.money {
            style::yuan(v)
        } else {
            style::si(v)
        }
    }
}

impl Figure for SplitChart {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn title(&self) -> String {
        self.title.clone()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let mut legend: Vec<(Mark, String)> = self
            .lines
            .iter()
            .map(|l| {
                (
                    if self.bars {
                        Mark::Box(l.color)
                    } else {
                        Mark::Band(l.color)
                    },
                    l.label.clone(),
                )
            })
            .collect();
        if self.reference.is_some() {
            legend.push((
                Mark::Dashed(RGBColor(0, 0, 0)),
                "reference: the scenario's own split".to_string(),
            ));
        }
        let body = style::title_block(root, &self.title, &self.subtitle, &legend)?;
        let (y0, y1) = self.y_range();
        let (x0, x1) = self.x_range();
        let mut chart = ChartBuilder::on(&body)
            .margin_left(MARGIN as u32)
            .margin_right(2 * MARGIN as u32)
            .margin_top(12)
            .x_label_area_size(84)
            .y_label_area_size(110)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        let numeric = self.x_name.clone();
        let x_desc = numeric.clone().unwrap_or_default();
        let y_fmt = |v: &f64| self.format(*v);
        let x_fmt = |v: &f64| style::si(*v);
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .y_labels(6)
            .y_label_formatter(&y_fmt)
            .x_label_formatter(&x_fmt)
            .y_desc(self.y_desc.as_str())
            .x_desc(x_desc.as_str())
            .axis_desc_style(style::text(AXIS_DESC_SIZE))
            .label_style(style::text(LABEL_SIZE))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT);
        if numeric.is_none() {
            mesh.x_labels(0);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        if y0 < 0.0 {
            let zero = PathElement::new(vec![(x0, 0.0), (x1, 0.0)], BLACK.stroke_width(1));
            chart
                .draw_series(std::iter::once(zero))
                .map_err(|e| e.to_string())?;
        }
        if let Some(r) = self.reference {
            let x = self.xs[r];
            let line = DashedLineSeries::new(vec![(x, y0), (x, y1)], 8, 6, BLACK.stroke_width(2));
            chart.draw_series(line).map_err(|e| e.to_string())?;
        }
        for (j, line) in self.lines.iter().enumerate() {
            if self.bars {
                self.draw_bars(&mut chart, line, j)?;
            } else {
                self.draw_line(&mut chart, line)?;
            }
        }
        if numeric.is_none() {
            axis::category_labels(root, &chart, &self.splits, y0, "Split")?;
        }
        Ok(())
    }
}

impl SplitChart {
    fn draw_line<DB: DrawingBackend>(
        &self,
        chart: &mut axis::TickChart<'_, DB>,
        line: &Line,
    ) -> DrawResult {
        let c = line.color;
        let mut points: Vec<(f64, &Cell)> = self
            .xs
            .iter()
            .copied()
            .zip(&line.cells)
            .filter(|(_, c)| c.mean.is_some())
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mean = |cell: &Cell| cell.mean.unwrap_or(0.0);
        if self.x_name.is_some() {
            let mut outline: Vec<(f64, f64)> = points
                .iter()
                .map(|(x, cell)| (*x, cell.ci.map_or(mean(cell), |ci| ci.1)))
                .collect();
            outline.extend(
                points
                    .iter()
                    .rev()
                    .map(|(x, cell)| (*x, cell.ci.map_or(mean(cell), |ci| ci.0))),
            );
            let band = Polygon::new(outline, c.mix(BAND_ALPHA).filled());
            chart
                .draw_series(std::iter::once(band))
                .map_err(|e| e.to_string())?;
            let path = points.iter().map(|(x, cell)| (*x, mean(cell)));
            chart
                .draw_series(LineSeries::new(path, c.stroke_width(style::LINE_WIDTH)))
                .map_err(|e| e.to_string())?;
        } else {
            for (x, cell) in &points {
                if let Some((lo, hi)) = cell.ci {
                    let whisker = [
                        vec![(*x, lo), (*x, hi)],
                        vec![(x - CAP, lo), (x + CAP, lo)],
                        vec![(x - CAP, hi), (x + CAP, hi)],
                    ];
                    let paths = whisker
                        .into_iter()
                        .map(|p| PathElement::new(p, c.stroke_width(2)));
                    chart.draw_series(paths).map_err(|e| e.to_string())?;
                }
            }
        }
        let dots = points
            .iter()
            .map(|(x, cell)| Circle::new((*x, mean(cell)), MARKER, c.filled()));
        chart.draw_series(dots).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn draw_bars<DB: DrawingBackend>(
        &self,
        chart: &mut axis::TickChart<'_, DB>,
        line: &Line,
        j: usize,
    ) -> DrawResult {
        let n = self.lines.len().max(1) as f64;
        let slot = if self.x_name.is_some() {
            min_gap(&self.xs) * 0.7
        } else {
            0.7
        };
        let w = slot / n;
        let bars = self.xs.iter().zip(&line.cells).filter_map(|(x, cell)| {
            let v = cell.p_best?;
            let left = x - slot / 2.0 + j as f64 * w;
            Some(Rectangle::new(
                [(left, 0.0), (left + w * 0.9, v)],
                line.color.filled(),
            ))
        });
        chart.draw_series(bars).map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn min_gap(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min)
}

/// Scenario name and replications from manifest.json, when the folder has one.
fn run_label(dir: &Path) -> Result<String> {
    if !dir.join(MANIFEST).exists() {
        return Ok(format!("Folder {}", dir.display()));
    }
    let m = data::read_manifest(dir)?;
    Ok(style::run_label(&m.scenario_name, m.replications))
}

/// The charts of a compare folder.
fn figures(c: &Compare, label: &str) -> Vec<SplitChart> {
    let (xs, x_name) = c.x_positions();
    let splits: Vec<String> = c.splits.iter().map(|s| s.0.clone()).collect();
    let base =
        |name: String, title: String, y_desc: String, money: bool, lines: Vec<Line>| SplitChart {
            name,
            title,
            subtitle: format!(
                "{label} · {} splits · means with 95% CI (common random numbers)",
                splits.len()
            ),
            y_desc,
            money,
            lines,
            xs: xs.clone(),
            x_name: x_name.clone(),
            splits: splits.clone(),
            reference: c.reference,
            bars: false,
        };
    let mut out = Vec::new();
    for (metric, unit) in HEADLINES {
        let Some(cells) = c.metric(metric) else {
            continue;
        };
        let line = Line {
            label: format!("{metric}: mean and 95% CI"),
            color: style::color(0),
            cells: cells.to_vec(),
        };
        let title = format!("{metric} against the split");
        out.push(base(
            format!("split_{metric}"),
            title,
            format!("{metric} ({unit})"),
            unit == "yuan",
            vec![line],
        ));
    }
    let returns: Vec<Line> = c
        .metrics
        .iter()
        .zip(&c.cells)
        .filter_map(|(m, cells)| m.strip_prefix("return.").map(|f| (f.to_string(), cells)))
        .enumerate()
        .map(|(j, (f, cells))| Line {
            label: f,
            color: style::color(j),
            cells: cells.clone(),
        })
        .collect();
    if !returns.is_empty() {
        let title = "Each funder's return against the split".to_string();
        out.push(base(
            "split_returns".into(),
            title,
            "Net return (yuan)".into(),
            true,
            returns,
        ));
    }
    // The objective (the metric that carries p_best): its paired difference from the reference,
    // which is what ranks the splits, on an axis of its own.
    let objective = c
        .metrics
        .iter()
        .zip(&c.cells)
        .find(|(_, cells)| cells.iter().any(|x| x.p_best.is_some()));
    if let Some((metric, cells)) = objective
        && cells.iter().any(|x| x.diff.is_some())
    {
        let unit = HEADLINES.iter().find(|h| h.0 == metric).map_or("", |h| h.1);
        let line = Line {
            label: format!("{metric}: paired difference from the reference and its 95% CI"),
            color: style::color(0),
            cells: cells
                .iter()
                .map(|x| Cell {
                    mean: x.diff,
                    ci: x.diff_ci,
                    ..Cell::default()
                })
                .collect(),
        };
        let mut chart = base(
            format!("split_diff_{metric}"),
            format!("{metric}: each split against the reference"),
            if unit.is_empty() {
                format!("difference in {metric}")
            } else {
                format!("difference in {metric} ({unit})")
            },
            unit == "yuan" || metric.starts_with("return."),
            vec![line],
        );
        chart.subtitle = format!(
            "{label} · {} splits · paired differences, replication by replication, with 95% CI",
            splits.len()
        );
        out.push(chart);
    }
    let p_best = p_best_lines(c);
    if !p_best.is_empty() {
        let title = "Probability that each split is best (bootstrap p_best)".to_string();
        let mut chart = base(
            "split_p_best".into(),
            title,
            "p_best (share of resamples)".into(),
            false,
            p_best,
        );
        chart.bars = true;
        chart.subtitle =
            format!("{label} · share of bootstrap resamples in which the split is best");
        out.push(chart);
    }
    out
}

/// p_best per split: one series per metric that carries it, identical series merged.
fn p_best_lines(c: &Compare) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    for (m, cells) in c.metrics.iter().zip(&c.cells) {
        if cells.iter().all(|x| x.p_best.is_none()) {
            continue;
        }
        let values: Vec<Option<f64>> = cells.iter().map(|x| x.p_best).collect();
        if let Some(l) = lines
            .iter_mut()
            .find(|l| l.cells.iter().map(|x| x.p_best).eq(values.iter().copied()))
        {
            let _ = write!(l.label, ", {m}");
            continue;
        }
        let cells = cells
            .iter()
            .map(|x| Cell {
                mean: x.p_best,
                p_best: x.p_best,
                ..Cell::default()
            })
            .collect();
        lines.push(Line {
            label: format!("p_best on {m}"),
            color: style::color(lines.len()),
            cells,
        });
    }
    lines
}

/// Draws the compare folder's charts and writes its report.html.
pub fn draw(dir: &Path, format: ChartFormat) -> Result<()> {
    style::register()?;
    let c = read(dir)?;
    let label = run_label(dir)?;
    let charts = charts_dir(dir)?;
    let drawn: Vec<Drawn> = figures(&c, &label)
        .iter()
        .map(|f| emit(&charts, format, f))
        .collect::<Result<_>>()?;
    write_report(dir, &c, &label, &drawn)
}

fn write_report(dir: &Path, c: &Compare, label: &str, drawn: &[Drawn]) -> Result<()> {
    let title = "d11sim comparison of splits";
    let mut html = report::head(title);
    let _ = write!(
        html,
        "<h1>{title}</h1>\n<p>{}</p>\n<table>\n<tr><th>split</th>",
        report::escape(label)
    );
    for (m, _) in HEADLINES.iter().filter(|(m, _)| c.metric(m).is_some()) {
        let _ = write!(html, "<th>{m} (95% CI)</th>");
    }
    html.push_str("</tr>\n");
    for (k, (split, _)) in c.splits.iter().enumerate() {
        let mark = if Some(k) == c.reference {
            " (reference)"
        } else {
            ""
        };
        let _ = write!(html, "<tr><td>{}{mark}</td>", report::escape(split));
        for (m, _) in HEADLINES {
            let Some(cells) = c.metric(m) else { continue };
            let d = if m == "iroi" { 3 } else { 0 };
            let cell = cells[k];
            let ci = cell.ci.map_or(String::new(), |(l, h)| {
                format!(" ({} to {})", report::grouped(l, d), report::grouped(h, d))
            });
            let mean = cell.mean.map_or("–".to_string(), |v| report::grouped(v, d));
            let _ = write!(html, "<td class=\"num\">{mean}{ci}</td>");
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html.push_str(&report::figures(drawn));
    html.push_str("</body>\n</html>\n");
    report::write_page(dir, &html)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "split,share.alibaba,metric,mean,ci95_low,ci95_high,diff_vs_reference,diff_ci95_low,diff_ci95_high,p_best\n\
a,0,gmv,10,9,11,-1,-2,0,0.2\n\
reference,0.5,gmv,11,10,12,0,0,0,0.5\n\
b,1,gmv,12,11,13,1,0,2,0.3\n";

    #[test]
    fn reads_splits_metrics_and_reference() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(COMPARE), CSV).expect("write");
        let c = read(dir.path()).expect("reads");
        assert_eq!(c.splits.len(), 3);
        assert_eq!(c.reference, Some(1));
        assert_eq!(c.x_positions().0, vec![0.0, 0.5, 1.0]);
        assert_eq!(c.metric("gmv").expect("gmv")[2].p_best, Some(0.3));
        assert_eq!(c.metric("gmv").expect("gmv")[0].diff_ci, Some((-2.0, 0.0)));
    }

    #[test]
    fn the_objective_s_paired_differences_get_a_chart_of_their_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(COMPARE), CSV).expect("write");
        let c = read(dir.path()).expect("reads");
        let charts = figures(&c, "test");
        let diff = charts
            .iter()
            .find(|f| f.name == "split_diff_gmv")
            .expect("a chart of gmv's differences (gmv carries p_best)");
        let cells = &diff.lines[0].cells;
        assert_eq!(cells[2].mean, Some(1.0));
        assert_eq!(cells[2].ci, Some((0.0, 2.0)));
        // Its axis includes the negative difference of split a.
        assert!(diff.y_range().0 < -1.0);
    }
}
