//! From engine outcomes to named metrics: the layout of every results file, and one replication's
//! record (what `raw/` stores and every summary is rebuilt from).

use crate::engine::{Count, FUNNEL_DESTINATIONS, Funnel, Paired};
use crate::scenario::{Scenario, units_to_yuan};
use crate::time;

/// Per-tick series beyond the counts (yuan).
const MONEY_SERIES: [&str; 6] = [
    "gmv",
    "discount",
    "traffic_spend",
    "baseline_gmv",
    "baseline_orders",
    "incremental_gmv",
];
/// Funnel stages beyond the counts (yuan): GMV, baseline GMV and their paired difference.
const MONEY_STAGES: [&str; 3] = ["gmv", "baseline_gmv", "incremental_gmv"];

/// One funnel row: placement, destination column (0 all, 1 shop, 2 live room), segment, stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunnelCell {
    pub placement: usize,
    pub destination: usize,
    pub segment: usize,
    pub stage: String,
    /// Index into the engine's count funnel, or into its GMV funnel for money stages.
    source: CellSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum CellSource {
    Count(usize),
    Gmv(usize, u8),
}

/// Names and order of everything a results folder holds for a scenario.
#[derive(Clone, Debug)]
pub struct Layout {
    pub metrics: Vec<String>,
    pub series: Vec<String>,
    pub funnel: Vec<FunnelCell>,
    pub programs: Vec<String>,
    pub placements: Vec<String>,
    pub segments: Vec<String>,
    pub funders: Vec<String>,
    /// Start of each tick, `YYYY-MM-DD HH:MM` (UTC+8).
    pub tick_times: Vec<String>,
    pub tick_minutes: u32,
}

/// Whether a count stage has a row in a funnel destination column.
fn stage_in_column(count: Count, column: usize) -> bool {
    match (count.before_landing(), column) {
        (true, c) => c == 0,
        (false, 0) => false,
        (false, c) => match count {
            Count::LiveRoomSessions | Count::OrdersLiveRoom => c == 2,
            Count::LiveRoomOverflow | Count::LiveRoomClosed | Count::OrdersShop => c == 1,
            _ => true,
        },
    }
}

impl Layout {
    pub fn of(s: &Scenario) -> Layout {
        let mut metrics: Vec<String> = Count::ALL.iter().map(|c| c.name().to_string()).collect();
        metrics.extend(["gmv", "discount", "traffic_spend", "subsidy_spend"].map(String::from));
        metrics.extend(s.funders.iter().map(|f| format!("spend.{}", f.name)));
        metrics.extend(
            s.programs
                .iter()
                .map(|p| format!("program_spend.{}", p.name)),
        );
        metrics.extend(
            s.programs
                .iter()
                .map(|p| format!("exhausted_hour.{}", p.name)),
        );
        metrics.extend(
            s.programs
                .iter()
                .map(|p| format!("exhausted_share.{}", p.name)),
        );
        metrics.extend(
            [
                "baseline_gmv",
                "baseline_orders",
                "incremental_gmv",
                "incremental_orders",
                "iroi",
            ]
            .map(String::from),
        );
        metrics.extend(s.funders.iter().map(|f| format!("return.{}", f.name)));
        let mut series: Vec<String> = Count::ALL.iter().map(|c| c.name().to_string()).collect();
        series.extend(MONEY_SERIES.map(String::from));
        Layout {
            metrics,
            series,
            funnel: funnel_cells(s),
            programs: s.programs.iter().map(|p| p.name.clone()).collect(),
            placements: s.placements.iter().map(|p| p.name.clone()).collect(),
            segments: s.segments.iter().map(|g| g.name.clone()).collect(),
            funders: s.funders.iter().map(|f| f.name.clone()).collect(),
            tick_times: (0..s.ticks())
                .map(|t| time::format(s.tick_start(t)))
                .collect(),
            tick_minutes: s.tick_minutes,
        }
    }

    pub fn metric_index(&self, name: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m == name)
    }
}

fn funnel_cells(s: &Scenario) -> Vec<FunnelCell> {
    let f = Funnel::of(s);
    let mut cells = Vec::new();
    for p in 0..s.placements.len() {
        for d in 0..FUNNEL_DESTINATIONS.len() {
            for g in 0..s.segments.len() {
                for c in Count::ALL.iter().filter(|c| stage_in_column(**c, d)) {
                    let source = CellSource::Count(f.index(p, g, d, *c));
                    cells.push(FunnelCell {
                        placement: p,
                        destination: d,
                        segment: g,
                        stage: c.name().to_string(),
                        source,
                    });
                }
                if d > 0 {
                    for (k, name) in MONEY_STAGES.iter().enumerate() {
                        let source = CellSource::Gmv(f.gmv_index(p, g, d), k as u8);
                        cells.push(FunnelCell {
                            placement: p,
                            destination: d,
                            segment: g,
                            stage: name.to_string(),
                            source,
                        });
                    }
                }
            }
        }
    }
    cells
}

/// One replication, as named numbers (money in yuan). `None`: the metric does not exist in it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub replication: u64,
    pub metrics: Vec<Option<f64>>,
    /// `[tick][series]`.
    pub series: Vec<Vec<f64>>,
    /// Aligned with `Layout::funnel`.
    pub funnel: Vec<f64>,
    /// `[tick][program]`, yuan.
    pub remaining: Vec<Vec<f64>>,
}

fn yuan(units: u128) -> f64 {
    units_to_yuan(units)
}

fn signed_yuan(a: u128, b: u128) -> f64 {
    if a >= b { yuan(a - b) } else { -yuan(b - a) }
}

impl Record {
    /// Metric `name` of each of `records`, in order; `None` if `layout` has no such metric or a
    /// record lacks it.
    pub fn column(records: &[Record], layout: &Layout, name: &str) -> Option<Vec<f64>> {
        let m = layout.metric_index(name)?;
        records.iter().map(|r| r.metrics[m]).collect()
    }

    pub fn of(s: &Scenario, x: &Paired) -> Record {
        let (o, b) = (&x.scenario, &x.baseline);
        let mut m: Vec<Option<f64>> = Count::ALL
            .iter()
            .map(|c| Some(o.count(*c) as f64))
            .collect();
        let subsidy = o.totals.discount + o.totals.traffic_spend;
        m.extend(
            [
                o.totals.gmv,
                o.totals.discount,
                o.totals.traffic_spend,
                subsidy,
            ]
            .map(|v| Some(yuan(v))),
        );
        m.extend(o.funder_spend.iter().map(|&v| Some(yuan(v))));
        m.extend(o.program_spend.iter().map(|&v| Some(yuan(v))));
        let hours =
            |t: usize| (t + 1) as f64 * f64::from(s.tick_minutes) / time::MINUTES_PER_HOUR as f64;
        m.extend(o.exhausted_tick.iter().map(|e| e.map(hours)));
        m.extend(
            o.exhausted_tick
                .iter()
                .map(|e| Some(if e.is_some() { 1.0 } else { 0.0 })),
        );
        let incremental_gmv = signed_yuan(o.totals.gmv, b.totals.gmv);
        let (orders, base_orders) = (o.count(Count::Orders), b.count(Count::Orders));
        m.push(Some(yuan(b.totals.gmv)));
        m.push(Some(base_orders as f64));
        m.push(Some(incremental_gmv));
        m.push(Some(orders as f64 - base_orders as f64));
        m.push((subsidy > 0).then(|| incremental_gmv / yuan(subsidy)));
        for (f, funder) in s.funders.iter().enumerate() {
            let owned = yuan(o.owned_traffic_value[f]);
            let value = funder.take_rate * incremental_gmv - yuan(o.funder_spend[f]) + owned
                - funder.traffic_cost_ratio * owned;
            m.push(Some(value));
        }
        Record {
            replication: x.replication,
            metrics: m,
            series: series_of(x),
            funnel: funnel_of(s, x),
            remaining: o
                .remaining
                .iter()
                .map(|row| row.iter().map(|&v| yuan(u128::from(v))).collect())
                .collect(),
        }
    }
}

fn series_of(x: &Paired) -> Vec<Vec<f64>> {
    let (o, b) = (&x.scenario, &x.baseline);
    o.per_tick
        .iter()
        .zip(&b.per_tick)
        .map(|(t, bt)| {
            let mut row: Vec<f64> = t.counts.iter().map(|&c| c as f64).collect();
            row.push(yuan(t.gmv));
            row.push(yuan(t.discount));
            row.push(yuan(t.traffic_spend));
            row.push(yuan(bt.gmv));
            row.push(bt.counts[Count::Orders as usize] as f64);
            row.push(signed_yuan(t.gmv, bt.gmv));
            row
        })
        .collect()
}

fn funnel_of(s: &Scenario, x: &Paired) -> Vec<f64> {
    funnel_cells(s)
        .iter()
        .map(|cell| match cell.source {
            CellSource::Count(i) => x.scenario.funnel[i] as f64,
            CellSource::Gmv(i, 0) => yuan(x.scenario.funnel_gmv[i]),
            CellSource::Gmv(i, 1) => yuan(x.baseline.funnel_gmv[i]),
            CellSource::Gmv(i, _) => {
                signed_yuan(x.scenario.funnel_gmv[i], x.baseline.funnel_gmv[i])
            }
        })
        .collect()
}
