//! funnel.png: impressions → clicks → sessions → landed → not leaked → orders (paid), per
//! placement, summed over segments and destinations of funnel.csv, on a log scale.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{self, MARGIN, Mark, VALUE_SIZE};
use super::{DrawResult, Figure, RunData, axis};

/// The funnel's steps as drawn, and the funnel.csv stages each is computed from.
const STEPS: [&str; 6] = [
    "impressions",
    "clicks",
    "sessions",
    "landed",
    "not leaked",
    "orders (paid)",
];
/// Share of a category slot the bars of a group fill.
const GROUP_WIDTH: f64 = 0.84;
/// Headroom above the tallest bar on the log axis, in decades (room for value labels).
const HEADROOM_DECADES: f64 = 0.25;
const TEN: f64 = 10.0;

pub struct FunnelChart {
    subtitle: String,
    placements: Vec<String>,
    /// `[placement][step]`, mean count over the festival.
    values: Vec<[f64; STEPS.len()]>,
}

impl FunnelChart {
    pub fn new(data: &RunData) -> FunnelChart {
        let placements = data.placements();
        let mut sums: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for row in &data.funnel {
            *sums
                .entry((row.placement.as_str(), row.stage.as_str()))
                .or_default() += row.mean;
        }
        let values = placements
            .iter()
            .map(|p| {
                let get = |stage: &str| sums.get(&(p.as_str(), stage)).copied().unwrap_or(0.0);
                let landed = get("landed");
                [
                    get("impressions"),
                    get("clicks"),
                    get("sessions"),
                    landed,
                    landed - get("leaked_to_competitor"),
                    get("orders"),
                ]
            })
            .collect();
        FunnelChart {
            subtitle: data.subtitle(),
            placements,
            values,
        }
    }

    /// The log axis range: whole decades around the positive values.
    fn range(&self) -> (f64, f64) {
        let positive = self.values.iter().flatten().copied().filter(|v| *v > 0.0);
        let (lo, hi) = positive.fold((f64::INFINITY, 0.0_f64), |(a, b), v| (a.min(v), b.max(v)));
        if !lo.is_finite() {
            return (1.0, TEN);
        }
        let lo = TEN.powf(lo.log10().floor());
        let hi = TEN.powf(hi.log10() + HEADROOM_DECADES).max(lo * TEN);
        (lo, hi)
    }
}

impl Figure for FunnelChart {
    fn name(&self) -> String {
        "funnel".to_string()
    }

    fn title(&self) -> String {
        "Conversion funnel by placement: from impressions to paid orders".to_string()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let legend: Vec<(Mark, String)> = (self.placements.iter().enumerate())
            .map(|(j, p)| (Mark::Box(style::color(j)), p.clone()))
            .collect();
        let body = style::title_block(root, &self.title(), &self.subtitle, &legend)?;
        let (lo, hi) = self.range();
        let mut chart = ChartBuilder::on(&body)
            .margin_left(MARGIN as u32)
            .margin_right(2 * MARGIN as u32)
            .margin_top(16)
            .x_label_area_size(84)
            .y_label_area_size(96)
            .build_cartesian_2d(0.0..STEPS.len() as f64, (lo..hi).log_scale())
            .map_err(|e| e.to_string())?;
        style::draw_value_mesh(
            &mut chart,
            "Count over the festival, mean (log scale)",
            None,
            &|v| style::si(*v),
        )?;
        let n = self.placements.len().max(1) as f64;
        let bar = GROUP_WIDTH / n;
        let left = |k: usize, j: usize| k as f64 + (1.0 - GROUP_WIDTH) / 2.0 + j as f64 * bar;
        for j in 0..self.placements.len() {
            let c = style::color(j);
            let bars = self.values[j]
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| {
                    Rectangle::new(
                        [(left(k, j), lo), (left(k, j) + bar * 0.92, *v)],
                        c.filled(),
                    )
                });
            chart.draw_series(bars).map_err(|e| e.to_string())?;
        }
        self.value_labels(root, &chart, bar, lo)?;
        let names: Vec<String> = STEPS.iter().map(|s| s.to_string()).collect();
        axis::category_labels(
            root,
            &chart,
            &names,
            lo,
            "Funnel step (summed over segments and destinations)",
        )
    }
}

impl FunnelChart {
    /// Values above the bars, when every label fits its bar's width.
    fn value_labels<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
        bar: f64,
        lo: f64,
    ) -> DrawResult {
        let font = style::text(VALUE_SIZE);
        let (x0, _) = chart.backend_coord(&(0.0, lo));
        let (x1, _) = chart.backend_coord(&(bar, lo));
        let fits = self.values.iter().flatten().all(|v| {
            root.estimate_text_size(&style::si(*v), &font)
                .is_ok_and(|(w, _)| w as i32 <= x1 - x0)
        });
        if !fits {
            return Ok(());
        }
        let n = self.placements.len().max(1) as f64;
        let anchor = Pos::new(HPos::Center, VPos::Bottom);
        for (j, row) in self.values.iter().enumerate() {
            for (k, v) in row.iter().enumerate().filter(|(_, v)| **v > 0.0) {
                let x = k as f64 + (1.0 - GROUP_WIDTH) / 2.0 + (j as f64 + 0.46) * GROUP_WIDTH / n;
                let (px, py) = chart.backend_coord(&(x, *v));
                root.draw(&Text::new(style::si(*v), (px, py - 4), font.pos(anchor)))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}
