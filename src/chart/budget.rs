//! budget_burndown.png: each program's remaining budget (budgets.csv, mean and 95% band), one
//! panel per program so that small budgets stay readable, with the mean exhaustion time marked
//! where some replications ran the program dry (summary.csv `exhausted_hour.<program>`).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{self, TimeAxis};
use super::data::Point;
use super::style::{self, BAND_ALPHA, LINE_WIDTH, MARGIN, VALUE_SIZE};
use super::{DrawResult, Figure, RunData};
use crate::time::MINUTES_PER_HOUR;

/// Room above the budget, as a share of it.
const HEADROOM: f64 = 0.1;
/// Panel captions' font size.
const CAPTION_SIZE: f64 = 22.0;
/// Height of a panel's x label area (two label lines and the axis description), pixels.
const TIME_LABEL_AREA: u32 = 92;
/// Dash and gap of the exhaustion marker, pixels.
const DASH: (u32, u32) = (8, 6);

struct Panel {
    program: String,
    budget: Option<f64>,
    points: Vec<Point>,
    /// Mean exhaustion time (ticks from the start) and the share of replications exhausted.
    exhausted: Option<(f64, f64)>,
}

pub struct BudgetChart {
    subtitle: String,
    axis: TimeAxis,
    panels: Vec<Panel>,
}

impl BudgetChart {
    pub fn new(data: &RunData) -> BudgetChart {
        let ticks_per_hour = MINUTES_PER_HOUR as f64 / data.axis.tick_minutes as f64;
        let panels = data
            .budgets
            .order
            .iter()
            .map(|p| {
                let share = data
                    .summary
                    .mean(&format!("exhausted_share.{p}"))
                    .unwrap_or(0.0);
                let hour = data.summary.mean(&format!("exhausted_hour.{p}"));
                Panel {
                    program: p.clone(),
                    budget: data.programs.budget.get(p).copied(),
                    points: data.budgets.get(p).unwrap_or_default().to_vec(),
                    exhausted: hour
                        .filter(|_| share > 0.0)
                        .map(|h| (h * ticks_per_hour, share)),
                }
            })
            .collect();
        BudgetChart {
            subtitle: format!(
                "{} · line: mean remaining; shaded: 95% band of replications",
                data.subtitle()
            ),
            axis: data.axis,
            panels,
        }
    }
}

impl Figure for BudgetChart {
    fn name(&self) -> String {
        "budget_burndown".to_string()
    }

    fn title(&self) -> String {
        "Budget burn-down: remaining budget of each program".to_string()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = style::title_block(root, &self.title(), &self.subtitle, &[])?;
        let n = self.panels.len().max(1);
        let cols = match n {
            1 => 1,
            2..=4 => 2,
            _ => 3,
        };
        let rows = n.div_ceil(cols);
        let areas = body.split_evenly((rows, cols));
        for (j, (panel, area)) in self.panels.iter().zip(&areas).enumerate() {
            self.draw_panel(root, area, panel, style::color(j))?;
        }
        Ok(())
    }
}

impl BudgetChart {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel,
        c: RGBColor,
    ) -> DrawResult {
        let budget = panel.budget.unwrap_or_else(|| {
            panel
                .points
                .iter()
                .map(|p| p.band.1.max(p.mean))
                .fold(0.0, f64::max)
        });
        let y_max = if budget > 0.0 {
            budget * (1.0 + HEADROOM)
        } else {
            1.0
        };
        let status = match panel.exhausted {
            Some((_, share)) => format!("runs out in {} of replications", style::percent(share)),
            None => "never runs out".to_string(),
        };
        let caption = format!(
            "{} · budget {} · {status}",
            panel.program,
            style::yuan(budget)
        );
        let mut chart = ChartBuilder::on(area)
            .caption(caption, style::text(CAPTION_SIZE))
            .margin_left(MARGIN as u32)
            .margin_right(2 * MARGIN as u32)
            .margin_top(6)
            .x_label_area_size(TIME_LABEL_AREA)
            .y_label_area_size(96)
            .build_cartesian_2d(0.0..self.axis.ticks as f64, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        style::draw_value_mesh(&mut chart, "Remaining (yuan)", Some(5), &|v| {
            style::yuan(*v)
        })?;
        axis::time_grid(&mut chart, &self.axis, (0.0, y_max))?;
        // Remaining after tick t is drawn at its end, x = t + 1; the budget at x = 0.
        let start = panel.budget.map(|b| (0.0, b, b));
        let ends = panel
            .points
            .iter()
            .enumerate()
            .map(|(t, p)| ((t + 1) as f64, p.band.0, p.band.1));
        let bands: Vec<(f64, f64, f64)> = start.into_iter().chain(ends).collect();
        let mut outline: Vec<(f64, f64)> = bands.iter().map(|b| (b.0, b.2)).collect();
        outline.extend(bands.iter().rev().map(|b| (b.0, b.1)));
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                c.mix(BAND_ALPHA).filled(),
            )))
            .map_err(|e| e.to_string())?;
        let means = panel.budget.map(|b| (0.0, b)).into_iter().chain(
            panel
                .points
                .iter()
                .enumerate()
                .map(|(t, p)| ((t + 1) as f64, p.mean)),
        );
        chart
            .draw_series(LineSeries::new(
                means,
                c.stroke_width(style::line_width(self.axis.ticks)),
            ))
            .map_err(|e| e.to_string())?;
        if let Some((x, _)) = panel.exhausted {
            self.exhaustion_marker(root, &mut chart, x, y_max)?;
        }
        axis::time_labels(root, &chart, &self.axis, 0.0)
    }

    /// A dashed vertical line at the mean exhaustion time, labelled with that time.
    fn exhaustion_marker<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &mut axis::TickChart<'_, DB>,
        x: f64,
        y_max: f64,
    ) -> DrawResult {
        let c = BLACK;
        let line = vec![(x, 0.0), (x, y_max)];
        chart
            .draw_series(DashedLineSeries::new(
                line,
                DASH.0,
                DASH.1,
                c.stroke_width(LINE_WIDTH),
            ))
            .map_err(|e| e.to_string())?;
        let label = format!("runs out {} (mean)", axis::date_time_label(self.axis.at(x)));
        let right_half = x > self.axis.ticks as f64 / 2.0;
        let (h, dx) = if right_half {
            (HPos::Right, -6)
        } else {
            (HPos::Left, 6)
        };
        let (px, py) = chart.backend_coord(&(x, y_max));
        root.draw(&Text::new(
            label,
            (px + dx, py + 4),
            style::text_in(VALUE_SIZE, c).pos(Pos::new(h, VPos::Top)),
        ))
        .map_err(|e| e.to_string())
    }
}
