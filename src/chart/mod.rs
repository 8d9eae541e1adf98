//! Charts and the HTML report of a results folder, drawn from its files alone (CSVs and
//! manifest.json, read by `data`), never from the engine: `d11sim chart DIR` redraws byte for
//! byte what `run` drew. The README's charts section describes each chart.
//!
//! Each chart is a `Figure`, drawn once to an in-memory SVG (for report.html, and for the `.svg`
//! file) and, for PNG output, once more to a bitmap. Text uses only the embedded Noto Sans.

pub mod axis;
mod budget;
pub mod compare;
pub mod data;
mod funnel;
mod glyphs;
mod incremental;
pub mod report;
mod series;
mod spend;
pub mod style;

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use axis::TimeAxis;
use data::{FunnelRow, Manifest, RawFunnel, Series, Summary};

/// The folder of a results folder that holds the charts.
pub const CHARTS: &str = "charts";

/// Which image files to write (report.html always inlines SVG).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChartFormat {
    #[default]
    Png,
    Svg,
    Both,
}

impl ChartFormat {
    fn png(self) -> bool {
        matches!(self, ChartFormat::Png | ChartFormat::Both)
    }

    fn svg(self) -> bool {
        matches!(self, ChartFormat::Svg | ChartFormat::Both)
    }
}

/// What drawing returns: plotters' errors as text (they are generic over the backend).
pub type DrawResult = std::result::Result<(), String>;

/// One chart: its file stem, its title, and how to draw it on any backend.
pub trait Figure {
    /// File stem in `charts/`, e.g. `funnel`.
    fn name(&self) -> String;
    /// The title drawn on the chart and used as its heading in report.html.
    fn title(&self) -> String;
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// A drawn chart: its name, title and SVG text (for report.html).
pub struct Drawn {
    pub name: String,
    pub title: String,
    pub svg: String,
}

fn draw_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Run(format!("{}: cannot draw the chart: {e}", path.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Draws `fig` into `charts/` in the requested formats and returns its SVG text.
pub fn emit<F: Figure>(charts: &Path, format: ChartFormat, fig: &F) -> Result<Drawn> {
    let name = fig.name();
    let svg_path = charts.join(format!("{name}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, style::SIZE).into_drawing_area();
        fig.draw(&root).map_err(|e| draw_error(&svg_path, e))?;
        root.present().map_err(|e| draw_error(&svg_path, e))?;
    }
    if format.svg() {
        write_file(&svg_path, svg.as_bytes())?;
    }
    if format.png() {
        let png_path = charts.join(format!("{name}.png"));
        let root = glyphs::GlyphFix(BitMapBackend::new(&png_path, style::SIZE)).into_drawing_area();
        fig.draw(&root).map_err(|e| draw_error(&png_path, e))?;
        root.present().map_err(|e| draw_error(&png_path, e))?;
    }
    Ok(Drawn {
        name,
        title: fig.title(),
        svg,
    })
}

/// Creates `dir/charts/`.
pub fn charts_dir(dir: &Path) -> Result<std::path::PathBuf> {
    let charts = dir.join(CHARTS);
    std::fs::create_dir_all(&charts).map_err(|source| Error::Write {
        path: charts.clone(),
        source,
    })?;
    Ok(charts)
}

/// Everything the charts of a `run` folder read.
pub struct RunData {
    pub manifest: Manifest,
    pub summary: Summary,
    pub series: Series,
    pub budgets: Series,
    pub funnel: Vec<FunnelRow>,
    pub raw_funnel: RawFunnel,
    pub axis: TimeAxis,
    /// Programs' shares and budgets, from the scenario text in manifest.json (may be empty).
    pub programs: data::Programs,
    /// The folder, as given (for messages).
    pub dir: std::path::PathBuf,
}

impl RunData {
    /// Reads and checks every file first, so a bad file stops before anything is drawn.
    pub fn read(dir: &Path) -> Result<RunData> {
        let manifest = data::read_manifest(dir)?;
        let series = data::read_timeseries(dir)?;
        let funnel = data::read_funnel(dir)?;
        let raw_funnel = data::read_raw_funnel(dir, funnel.len())?;
        let file = dir
            .join(crate::results::files::TIMESERIES)
            .display()
            .to_string();
        let axis = TimeAxis::of(&series.times, &file)?;
        Ok(RunData {
            programs: data::programs(&manifest.scenario_text),
            dir: dir.to_path_buf(),
            summary: data::read_summary(dir)?,
            budgets: data::read_budgets(dir)?,
            manifest,
            series,
            funnel,
            raw_funnel,
            axis,
        })
    }

    /// "Scenario NAME · N replications · START – END (UTC+8)".
    pub fn subtitle(&self) -> String {
        format!(
            "{} · {}",
            style::run_label(&self.manifest.scenario_name, self.manifest.replications),
            self.axis.span()
        )
    }

    /// Placements in funnel.csv order.
    pub fn placements(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for row in &self.funnel {
            if !out.contains(&row.placement) {
                out.push(row.placement.clone());
            }
        }
        out
    }
}

/// Draws every chart of a `run` results folder into `dir/charts/` and writes `dir/report.html`.
pub fn draw_all(dir: &Path, format: ChartFormat) -> Result<()> {
    style::register()?;
    let data = RunData::read(dir)?;
    let charts = charts_dir(dir)?;
    let drawn = vec![
        emit(&charts, format, &funnel::FunnelChart::new(&data))?,
        emit(&charts, format, &series::GmvChart::new(&data)?)?,
        emit(&charts, format, &budget::BudgetChart::new(&data))?,
        emit(&charts, format, &spend::SpendChart::new(&data))?,
        emit(&charts, format, &incremental::IncrementalChart::new(&data))?,
        emit(&charts, format, &series::DestinationChart::new(&data)?)?,
    ];
    report::write_run(dir, &data, &drawn)
}

/// Draws the charts of a `compare` folder (from compare.csv) and writes its report.html.
pub fn draw_compare(dir: &Path, format: ChartFormat) -> Result<()> {
    compare::draw(dir, format)
}
