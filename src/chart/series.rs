//! Per-tick charts from timeseries.csv: gmv_per_hour.png (GMV with its band against the
//! no-program baseline) and orders_by_destination.png (paid orders by destination, and the
//! live-room overflow sent to the shop).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{self, TickChart, TimeAxis};
use super::data::{Point, bad};
use super::style::{self, BAND_ALPHA, LABEL_SIZE, MARGIN, Mark};
use super::{DrawResult, Figure, RunData};
use crate::error::Result;
use crate::results::files::TIMESERIES;

/// Room above the highest value, as a share of it.
const HEADROOM: f64 = 0.12;
/// Dash and gap of the baseline line, pixels.
const DASH: (u32, u32) = (12, 8);
/// Height of the x label area (two label lines and the axis description), pixels.
const TIME_LABEL_AREA: u32 = 96;
/// Pixels per y axis label (fewer labels on short panels).
const Y_LABEL_PX: u32 = 70;
/// Width of the y label area, pixels.
const Y_LABEL_AREA: u32 = 100;
/// Share of the orders figure's height given to the orders panel (the rest shows overflow).
const ORDERS_PANEL_SHARE: f64 = 0.62;

/// "hour" or "30-minute tick": what one tick is called in titles and axis labels.
pub fn tick_word(axis: &TimeAxis) -> String {
    const HOUR: i64 = 60;
    if axis.tick_minutes == HOUR {
        "hour".to_string()
    } else {
        format!("{}-minute tick", axis.tick_minutes)
    }
}

fn series<'a>(data: &'a RunData, metric: &str) -> Result<&'a [Point]> {
    let file = data.dir.join(TIMESERIES).display().to_string();
    data.series
        .get(metric)
        .ok_or_else(|| bad(&file, 1, "metric", format!("no rows for metric `{metric}`")))
}

/// The highest band edge or mean over several series (at least 1, so the axis is never empty).
fn top(all: &[&[Point]]) -> f64 {
    let max = all
        .iter()
        .flat_map(|s| s.iter())
        .map(|p| p.band.1.max(p.mean))
        .fold(0.0, f64::max);
    if max > 0.0 {
        max * (1.0 + HEADROOM)
    } else {
        1.0
    }
}

/// A tick chart over the whole festival with a y axis from 0 to `y_max`.
fn tick_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    axis: &TimeAxis,
    y_max: f64,
    y_desc: &str,
    x_area: u32,
    money: bool,
) -> std::result::Result<TickChart<'a, DB>, String> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(MARGIN as u32)
        .margin_right(2 * MARGIN as u32)
        .margin_top(8)
        .x_label_area_size(x_area)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(0.0..axis.ticks as f64, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    let format = move |v: &f64| {
        if money {
            style::yuan(*v)
        } else {
            style::si(*v)
        }
    };
    style::draw_value_mesh(
        &mut chart,
        y_desc,
        Some((area.dim_in_pixel().1 / Y_LABEL_PX).clamp(3, 8) as usize),
        &format,
    )?;
    axis::time_grid(&mut chart, axis, (0.0, y_max))?;
    Ok(chart)
}

/// Mean line (at tick centres) with its shaded band.
fn band_line<DB: DrawingBackend>(
    chart: &mut TickChart<'_, DB>,
    points: &[Point],
    c: RGBColor,
) -> DrawResult {
    let x = |t: usize| t as f64 + 0.5;
    let mut outline: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(t, p)| (x(t), p.band.1))
        .collect();
    outline.extend(
        points
            .iter()
            .enumerate()
            .rev()
            .map(|(t, p)| (x(t), p.band.0)),
    );
    let band = Polygon::new(outline, c.mix(BAND_ALPHA).filled());
    chart
        .draw_series(std::iter::once(band))
        .map_err(|e| e.to_string())?;
    let line = points.iter().enumerate().map(|(t, p)| (x(t), p.mean));
    chart
        .draw_series(LineSeries::new(
            line,
            c.stroke_width(style::line_width(points.len())),
        ))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// "¥975 (95% CI ¥574 to ¥1.38K)" of a summary metric.
fn headline(data: &RunData, metric: &str) -> String {
    let Some(s) = data.summary.get(metric) else {
        return "n/a".to_string();
    };
    let mean = s.mean.map_or("n/a".to_string(), style::yuan);
    match s.ci {
        Some((lo, hi)) => format!("{mean} (95% CI {} to {})", style::yuan(lo), style::yuan(hi)),
        None => mean,
    }
}

pub struct GmvChart {
    title: String,
    subtitle: String,
    word: String,
    axis: TimeAxis,
    gmv: Vec<Point>,
    baseline: Vec<Point>,
}

impl GmvChart {
    pub fn new(data: &RunData) -> Result<GmvChart> {
        let word = tick_word(&data.axis);
        Ok(GmvChart {
            title: format!(
                "GMV per {word}: total {}, no-program baseline {}",
                data.summary
                    .mean("gmv")
                    .map_or("n/a".to_string(), style::yuan),
                data.summary
                    .mean("baseline_gmv")
                    .map_or("n/a".to_string(), style::yuan)
            ),
            subtitle: format!("{} · total GMV {}", data.subtitle(), headline(data, "gmv")),
            word,
            axis: data.axis,
            gmv: series(data, "gmv")?.to_vec(),
            baseline: series(data, "baseline_gmv")?.to_vec(),
        })
    }
}

impl Figure for GmvChart {
    fn name(&self) -> String {
        "gmv_per_hour".to_string()
    }

    fn title(&self) -> String {
        self.title.clone()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (gmv, base) = (style::color(0), style::color(1));
        let legend = [
            (
                Mark::Band(gmv),
                "GMV with the programs: mean and 95% band of replications".to_string(),
            ),
            (
                Mark::Dashed(base),
                "No-program baseline GMV: mean".to_string(),
            ),
        ];
        let body = style::title_block(root, &self.title, &self.subtitle, &legend)?;
        let y_max = top(&[&self.gmv, &self.baseline]);
        let desc = format!("GMV per {} (yuan)", self.word);
        let mut chart = tick_chart(&body, &self.axis, y_max, &desc, TIME_LABEL_AREA, true)?;
        band_line(&mut chart, &self.gmv, gmv)?;
        let line = self
            .baseline
            .iter()
            .enumerate()
            .map(|(t, p)| (t as f64 + 0.5, p.mean));
        let dashed = DashedLineSeries::new(
            line,
            DASH.0,
            DASH.1,
            base.stroke_width(style::line_width(self.baseline.len())),
        );
        chart.draw_series(dashed).map_err(|e| e.to_string())?;
        axis::time_labels(root, &chart, &self.axis, 0.0)
    }
}

pub struct DestinationChart {
    subtitle: String,
    word: String,
    axis: TimeAxis,
    shop: Vec<Point>,
    live: Vec<Point>,
    overflow: Vec<Point>,
    overflow_total: Option<f64>,
}

impl DestinationChart {
    pub fn new(data: &RunData) -> Result<DestinationChart> {
        Ok(DestinationChart {
            subtitle: data.subtitle(),
            word: tick_word(&data.axis),
            axis: data.axis,
            shop: series(data, "orders_shop")?.to_vec(),
            live: series(data, "orders_live_room")?.to_vec(),
            overflow: series(data, "live_room_overflow")?.to_vec(),
            overflow_total: data.summary.mean("live_room_overflow"),
        })
    }
}

impl Figure for DestinationChart {
    fn name(&self) -> String {
        "orders_by_destination".to_string()
    }

    fn title(&self) -> String {
        format!(
            "Paid orders per {} by destination, and live-room overflow",
            self.word
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (shop, live, overflow) = (style::color(0), style::color(2), style::color(3));
        let total = self
            .overflow_total
            .map_or(String::new(), |v| format!(", {} in all", style::si(v)));
        let legend = [
            (Mark::Band(shop), "Orders in the shop".to_string()),
            (Mark::Band(live), "Orders in the live room".to_string()),
            (
                Mark::Box(overflow),
                format!("Live-room overflow: sessions sent to the shop, room full (mean{total})"),
            ),
        ];
        let body = style::title_block(root, &self.title(), &self.subtitle, &legend)?;
        let split = (f64::from(body.dim_in_pixel().1) * ORDERS_PANEL_SHARE) as u32;
        let (upper, lower) = body.split_vertically(split);
        let y_max = top(&[&self.shop, &self.live]);
        let desc = format!("Paid orders per {}", self.word);
        let mut chart = tick_chart(&upper, &self.axis, y_max, &desc, 4, false)?;
        band_line(&mut chart, &self.shop, shop)?;
        band_line(&mut chart, &self.live, live)?;
        let y_max = top(&[&self.overflow]);
        let desc = format!("Overflow per {}", self.word);
        let mut chart = tick_chart(&lower, &self.axis, y_max, &desc, TIME_LABEL_AREA, false)?;
        let bars = self.overflow.iter().enumerate().map(|(t, p)| {
            Rectangle::new(
                [(t as f64 + 0.1, 0.0), (t as f64 + 0.9, p.mean)],
                overflow.filled(),
            )
        });
        chart.draw_series(bars).map_err(|e| e.to_string())?;
        if self.overflow_total == Some(0.0) {
            let (px, py) = chart.backend_coord(&(self.axis.ticks as f64 / 2.0, y_max / 2.0));
            let note = "No live-room overflow in any replication";
            let centre = Pos::new(HPos::Center, VPos::Center);
            root.draw(&Text::new(
                note,
                (px, py),
                style::text_in(LABEL_SIZE, style::NOTE).pos(centre),
            ))
            .map_err(|e| e.to_string())?;
        }
        axis::time_labels(root, &chart, &self.axis, 0.0)
    }
}
