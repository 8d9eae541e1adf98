//! spend_by_funder.png: each funder's cash spend (summary.csv `spend.<funder>` means), stacked by
//! program. The split by program is the program's spend (`program_spend.<program>`) times the
//! funder's `funded_by` share from the scenario text in manifest.json (MODEL.md: every charge is
//! split by those shares); without that text the bars are not split.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{self, MARGIN, Mark, VALUE_SIZE};
use super::{DrawResult, Figure, RunData, axis};

/// Share of a category slot a bar fills.
const BAR_WIDTH: f64 = 0.56;
/// Room above the tallest bar (for its label), as a share of it.
const HEADROOM: f64 = 0.16;
/// Half-width of a CI whisker's cap, in category units.
const CAP: f64 = 0.05;

pub struct SpendChart {
    subtitle: String,
    funders: Vec<String>,
    /// Mean spend and its 95% CI per funder.
    totals: Vec<(f64, Option<(f64, f64)>)>,
    /// Programs (stack order) and `[program][funder]` spend; one unnamed layer if not split.
    programs: Vec<String>,
    layers: Vec<Vec<f64>>,
}

impl SpendChart {
    pub fn new(data: &RunData) -> SpendChart {
        let funders = data.summary.suffixes("spend.");
        let totals: Vec<(f64, Option<(f64, f64)>)> = funders
            .iter()
            .map(|f| {
                let s = data.summary.get(&format!("spend.{f}"));
                (s.and_then(|s| s.mean).unwrap_or(0.0), s.and_then(|s| s.ci))
            })
            .collect();
        let programs = data.summary.suffixes("program_spend.");
        let split = !programs.is_empty()
            && programs
                .iter()
                .all(|p| data.programs.funded_by.contains_key(p));
        let (programs, layers) = if split {
            let layers = programs
                .iter()
                .map(|p| {
                    let spend = data
                        .summary
                        .mean(&format!("program_spend.{p}"))
                        .unwrap_or(0.0);
                    let shares = &data.programs.funded_by[p];
                    funders
                        .iter()
                        .map(|f| spend * shares.get(f).copied().unwrap_or(0.0))
                        .collect()
                })
                .collect();
            (programs, layers)
        } else {
            (
                vec!["all programs".to_string()],
                vec![totals.iter().map(|t| t.0).collect()],
            )
        };
        let total = data
            .summary
            .mean("subsidy_spend")
            .map_or("n/a".to_string(), style::yuan);
        SpendChart {
            subtitle: format!("{} · total subsidy spend {total}", data.subtitle()),
            funders,
            totals,
            programs,
            layers,
        }
    }
}

impl Figure for SpendChart {
    fn name(&self) -> String {
        "spend_by_funder".to_string()
    }

    fn title(&self) -> String {
        "Who pays: cash spend by funder, split by program".to_string()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let mut legend: Vec<(Mark, String)> = (self.programs.iter().enumerate())
            .map(|(j, p)| (Mark::Box(style::color(j)), p.clone()))
            .collect();
        legend.push((Mark::Whisker, "95% CI of the funder's total".to_string()));
        let body = style::title_block(root, &self.title(), &self.subtitle, &legend)?;
        let high = self
            .totals
            .iter()
            .map(|(m, ci)| ci.map_or(*m, |c| c.1.max(*m)))
            .fold(0.0, f64::max);
        let y_max = if high > 0.0 {
            high * (1.0 + HEADROOM)
        } else {
            1.0
        };
        let n = self.funders.len().max(1);
        let mut chart = ChartBuilder::on(&body)
            .margin_left(MARGIN as u32)
            .margin_right(2 * MARGIN as u32)
            .margin_top(8)
            .x_label_area_size(84)
            .y_label_area_size(110)
            .build_cartesian_2d(0.0..n as f64, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        style::draw_value_mesh(
            &mut chart,
            "Cash spend over the festival, mean (yuan)",
            Some(6),
            &|v| style::yuan(*v),
        )?;
        let x0 = |k: usize| k as f64 + (1.0 - BAR_WIDTH) / 2.0;
        let mut base = vec![0.0; n];
        for (j, layer) in self.layers.iter().enumerate() {
            let c = style::color(j);
            let bars: Vec<_> = layer
                .iter()
                .enumerate()
                .map(|(k, v)| {
                    let r = Rectangle::new(
                        [(x0(k), base[k]), (x0(k) + BAR_WIDTH, base[k] + v)],
                        c.filled(),
                    );
                    base[k] += v;
                    r
                })
                .collect();
            chart.draw_series(bars).map_err(|e| e.to_string())?;
        }
        self.whiskers_and_totals(root, &mut chart)?;
        axis::category_labels(root, &chart, &self.funders, 0.0, "Funder")
    }
}

impl SpendChart {
    fn whiskers_and_totals<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &mut axis::TickChart<'_, DB>,
    ) -> DrawResult {
        let anchor = Pos::new(HPos::Center, VPos::Bottom);
        let all: f64 = self.totals.iter().map(|t| t.0).sum();
        for (k, (mean, ci)) in self.totals.iter().enumerate() {
            let x = k as f64 + 0.5;
            let mut top = *mean;
            if let Some((lo, hi)) = ci {
                let paths = [
                    vec![(x, *lo), (x, *hi)],
                    vec![(x - CAP, *lo), (x + CAP, *lo)],
                    vec![(x - CAP, *hi), (x + CAP, *hi)],
                ];
                chart
                    .draw_series(
                        paths
                            .into_iter()
                            .map(|p| PathElement::new(p, BLACK.stroke_width(2))),
                    )
                    .map_err(|e| e.to_string())?;
                top = top.max(*hi);
            }
            let (px, py) = chart.backend_coord(&(x, top));
            let share = if all > 0.0 {
                format!(" · {} of all", style::percent(mean / all))
            } else {
                String::new()
            };
            root.draw(&Text::new(
                format!("{}{share}", style::yuan(*mean)),
                (px, py - 6),
                style::text(VALUE_SIZE).pos(anchor),
            ))
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
