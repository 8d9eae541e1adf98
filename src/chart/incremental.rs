//! incremental_gmv_by_placement.png: funnel.csv's `incremental_gmv` stage summed over segments and
//! destinations per placement. The interval of a sum of cells needs each replication's sum, so
//! it comes from raw/funnel.csv (cell i = row i of funnel.csv): a 95% Student t interval of the
//! mean of the per-replication sums.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{self, MARGIN, VALUE_SIZE};
use super::{DrawResult, Figure, RunData, axis};
use crate::results::aggregate;

/// Share of a category slot a bar fills.
const BAR_WIDTH: f64 = 0.56;
/// Room beyond the extreme whisker (for labels), as a share of the axis span.
const HEADROOM: f64 = 0.14;
/// Half-width of a CI whisker's cap, in category units.
const CAP: f64 = 0.05;
/// The funnel stage summed.
const STAGE: &str = "incremental_gmv";

/// Mean and 95% CI of the per-replication sums of the cells of one placement.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacementSum {
    pub placement: String,
    pub mean: f64,
    pub ci: Option<(f64, f64)>,
}

/// Per placement, the sum of `incremental_gmv` cells in each replication, then its statistics.
pub fn placement_sums(data: &RunData) -> Vec<PlacementSum> {
    data.placements()
        .into_iter()
        .map(|p| {
            let cells: Vec<usize> = data
                .funnel
                .iter()
                .enumerate()
                .filter(|(_, r)| r.placement == p && r.stage == STAGE)
                .map(|(i, _)| i)
                .collect();
            let sums: Vec<Option<f64>> = data
                .raw_funnel
                .values
                .iter()
                .map(|rep| Some(cells.iter().map(|&i| rep[i]).sum()))
                .collect();
            let s = aggregate::stats(&sums);
            PlacementSum {
                placement: p,
                mean: s.mean.unwrap_or(0.0),
                ci: s.ci,
            }
        })
        .collect()
}

pub struct IncrementalChart {
    subtitle: String,
    sums: Vec<PlacementSum>,
}

impl IncrementalChart {
    pub fn new(data: &RunData) -> IncrementalChart {
        let n = data.raw_funnel.values.len();
        IncrementalChart {
            subtitle: format!(
                "{} · bars: mean; whiskers: 95% CI (Student t over {n} replications)",
                data.subtitle()
            ),
            sums: placement_sums(data),
        }
    }

    fn range(&self) -> (f64, f64) {
        let (lo, hi) = self.sums.iter().fold((0.0_f64, 0.0_f64), |(a, b), s| {
            let (l, h) = s.ci.unwrap_or((s.mean, s.mean));
            (a.min(l).min(s.mean), b.max(h).max(s.mean))
        });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let lo = if lo < 0.0 { lo - HEADROOM * span } else { 0.0 };
        (lo, hi + HEADROOM * span)
    }
}

impl Figure for IncrementalChart {
    fn name(&self) -> String {
        "incremental_gmv_by_placement".to_string()
    }

    fn title(&self) -> String {
        "Incremental GMV by placement: GMV with the programs minus the no-program baseline"
            .to_string()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = style::title_block(root, &self.title(), &self.subtitle, &[])?;
        let (lo, hi) = self.range();
        let n = self.sums.len().max(1);
        let mut chart = ChartBuilder::on(&body)
            .margin_left(MARGIN as u32)
            .margin_right(2 * MARGIN as u32)
            .margin_top(8)
            .x_label_area_size(84)
            .y_label_area_size(110)
            .build_cartesian_2d(0.0..n as f64, lo..hi)
            .map_err(|e| e.to_string())?;
        style::draw_value_mesh(
            &mut chart,
            "Incremental GMV over the festival (yuan)",
            Some(6),
            &|v| style::yuan(*v),
        )?;
        let x0 = |k: usize| k as f64 + (1.0 - BAR_WIDTH) / 2.0;
        let bars = self.sums.iter().enumerate().map(|(k, s)| {
            Rectangle::new(
                [(x0(k), 0.0), (x0(k) + BAR_WIDTH, s.mean)],
                style::color(k).filled(),
            )
        });
        chart.draw_series(bars).map_err(|e| e.to_string())?;
        let zero = PathElement::new(vec![(0.0, 0.0), (n as f64, 0.0)], BLACK.stroke_width(1));
        chart
            .draw_series(std::iter::once(zero))
            .map_err(|e| e.to_string())?;
        self.whiskers(root, &mut chart)?;
        let names: Vec<String> = self.sums.iter().map(|s| s.placement.clone()).collect();
        axis::category_labels(
            root,
            &chart,
            &names,
            lo,
            "Placement (summed over segments and destinations)",
        )
    }
}

impl IncrementalChart {
    fn whiskers<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &mut axis::TickChart<'_, DB>,
    ) -> DrawResult {
        for (k, s) in self.sums.iter().enumerate() {
            let x = k as f64 + 0.5;
            let (lo, hi) = s.ci.unwrap_or((s.mean, s.mean));
            let paths = [
                vec![(x, lo), (x, hi)],
                vec![(x - CAP, lo), (x + CAP, lo)],
                vec![(x - CAP, hi), (x + CAP, hi)],
            ];
            chart
                .draw_series(
                    paths
                        .into_iter()
                        .map(|p| PathElement::new(p, BLACK.stroke_width(2))),
                )
                .map_err(|e| e.to_string())?;
            let label = match s.ci {
                Some((l, h)) => format!(
                    "{} (CI {} to {})",
                    style::yuan(s.mean),
                    style::yuan(l),
                    style::yuan(h)
                ),
                None => style::yuan(s.mean),
            };
            let (above, y) = if s.mean >= 0.0 {
                (true, hi.max(s.mean))
            } else {
                (false, lo.min(s.mean))
            };
            let (px, py) = chart.backend_coord(&(x, y));
            let (v, dy) = if above {
                (VPos::Bottom, -6)
            } else {
                (VPos::Top, 6)
            };
            root.draw(&Text::new(
                label,
                (px, py + dy),
                style::text(VALUE_SIZE).pos(Pos::new(HPos::Center, v)),
            ))
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
