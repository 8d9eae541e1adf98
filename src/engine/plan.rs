//! What both engines precompute from a scenario: per-tick multipliers, organic impression means,
//! live-room opening, day resets, pacing allowances and the funder split of each program's charge.
//! Keeping this in one place means the two engines cannot read the spec differently.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::scenario::{DestinationKind, Pacing, ProgramKind, Scenario, Units};
use crate::time::{self, MINUTES_PER_DAY, MINUTES_PER_HOUR};

/// A scenario prepared for simulation. Indices: `[tick][segment][placement]` and so on.
#[derive(Debug, Clone)]
pub struct Plan<'s> {
    pub scenario: &'s Scenario,
    pub ticks: usize,
    /// traffic(t): the intraday weight over the mean weight, times calendar windows (MODEL.md step 1).
    pub traffic: Vec<f64>,
    /// Product of event `impressions` multipliers per tick and placement.
    pub impressions_multiplier: Vec<Vec<f64>>,
    /// Product of event `ctr` multipliers per tick and placement.
    pub ctr_multiplier: Vec<Vec<f64>>,
    /// Product of event `conversion` multipliers per tick, placement and destination (shop, live).
    pub conversion_multiplier: Vec<Vec<[f64; 2]>>,
    /// Whether the live room is open in the tick.
    pub live_open: Vec<bool>,
    /// Whether `served_today` resets to 0 at the start of the tick (a new local day began).
    pub day_reset: Vec<bool>,
    /// λ: the organic impression mean per tick, segment and placement.
    pub lambda: Vec<Vec<Vec<f64>>>,
    /// Whether each program's window contains the tick: `[program][tick]`.
    pub in_window: Vec<Vec<bool>>,
    /// Cumulative allowance C(t) per program and tick, in units (0 before the window).
    pub allowance: Vec<Vec<Units>>,
    /// One charge of each program: its discount D, or the cost of one impression.
    pub charge: Vec<Units>,
    /// The split of one charge among the program's funders: (funder, units), `funded_by` order.
    pub parts: Vec<Vec<(usize, Units)>>,
    /// For each program, its rank among coupon programs (`None` for traffic programs): the index
    /// of a user's redemption counter.
    pub coupon_slot: Vec<Option<usize>>,
    /// Per coupon slot, its program's per-user limit.
    pub coupon_limits: Vec<u32>,
    /// Whether the `cohorts` engine values the orders' baskets when a tick is over (always, but
    /// in the scaling example's reading of what a replication costs without them). When false,
    /// those baskets are neither drawn nor added to GMV, and nothing else changes: a basket
    /// decides nothing but its value. The baskets of users resolved one by one are drawn with
    /// their sessions (their coupon depends on them), and the `agents` engine draws every
    /// basket so, whatever this says.
    pub value_baskets: bool,
    /// Where the `cohorts` engine counts some of its work ([`WorkMeter`]: the scaling example's
    /// readings of the population ratio); nothing is counted where it is `None`, as always but
    /// there. Counts of work, not results: nothing the engine draws or reports depends on them.
    pub meter: Option<std::sync::Arc<WorkMeter>>,
}

/// Counts of the `cohorts` engine's work in the runs whose plans share it.
#[derive(Debug, Default)]
pub struct WorkMeter {
    /// The latent basket deviates made to put orders in their coupons' cells (one an order
    /// whose law offers a coupon: per-order draws, like the baskets themselves).
    pub latent_draws: AtomicU64,
    /// The single-session classes whose fates were drawn, one count a class and epoch.
    pub class_epochs: AtomicU64,
    /// The outcomes those draws gave at least one session: per class and epoch, each pair of
    /// fates (without any coupon program and under the programs; for an order, also its
    /// coupon's cell) with a count above 0, which the engine then books one by one.
    pub outcomes: AtomicU64,
}

/// What a [`WorkMeter`] counted (its fields' meanings are the meter's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkCounts {
    pub latent_draws: u64,
    pub class_epochs: u64,
    pub outcomes: u64,
}

impl WorkMeter {
    /// Adds `n` to `counter`, one of this meter's (relaxed: only the sums at the end are read).
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// What the meter has counted so far.
    pub fn counts(&self) -> WorkCounts {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WorkCounts {
            latent_draws: read(&self.latent_draws),
            class_epochs: read(&self.class_epochs),
            outcomes: read(&self.outcomes),
        }
    }
}

/// Splits `charge` by `shares` with largest remainders (ties to the earlier funder), so that the
/// parts sum to the charge exactly (MODEL.md, *Money*).
pub fn split_charge(charge: Units, shares: &[(usize, f64)]) -> Vec<(usize, Units)> {
    let raw: Vec<f64> = shares.iter().map(|&(_, s)| charge as f64 * s).collect();
    let mut parts: Vec<Units> = raw.iter().map(|x| x.floor() as Units).collect();
    let assigned: u128 = parts.iter().map(|&p| u128::from(p)).sum();
    // Floors lose less than one unit each, so fewer units than funders are left to hand out.
    let left = u128::from(charge).saturating_sub(assigned) as usize;
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (raw[a] - raw[a].floor(), raw[b] - raw[b].floor());
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order.iter().take(left) {
        parts[i] += 1;
    }
    shares
        .iter()
        .zip(parts)
        .map(|(&(f, _), p)| (f, p))
        .collect()
}

fn in_interval(t: i64, start: i64, end: i64) -> bool {
    start <= t && t < end
}

/// Whether a minute of the day lies in a schedule interval `[from, to)` that may wrap midnight.
fn schedule_open(schedule: &[(i64, i64)], minute: i64) -> bool {
    schedule.is_empty()
        || schedule.iter().any(|&(from, to)| {
            if from < to {
                from <= minute && minute < to
            } else {
                minute >= from || minute < to
            }
        })
}

impl<'s> Plan<'s> {
    pub fn new(scenario: &'s Scenario) -> Self {
        let ticks = scenario.ticks();
        let starts: Vec<i64> = (0..ticks).map(|t| scenario.tick_start(t)).collect();
        let traffic: Vec<f64> = starts.iter().map(|&s| traffic_at(scenario, s)).collect();
        let (impressions_multiplier, ctr_multiplier, conversion_multiplier) =
            event_multipliers(scenario, &starts);
        let tick_share_of_day = f64::from(scenario.tick_minutes) / MINUTES_PER_DAY as f64;
        let lambda = (0..ticks)
            .map(|t| {
                scenario
                    .segments
                    .iter()
                    .map(|seg| {
                        scenario
                            .placements
                            .iter()
                            .enumerate()
                            .map(|(p, pl)| {
                                pl.impressions_per_user_day
                                    * seg.reach[p]
                                    * traffic[t]
                                    * impressions_multiplier[t][p]
                                    * tick_share_of_day
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let in_window: Vec<Vec<bool>> = scenario
            .programs
            .iter()
            .map(|p| {
                starts
                    .iter()
                    .map(|&s| in_interval(s, p.start, p.end))
                    .collect()
            })
            .collect();
        let allowance = scenario
            .programs
            .iter()
            .zip(&in_window)
            .map(|(p, window)| pacing_allowance(p.budget, p.pacing, window, &traffic))
            .collect();
        let charge: Vec<Units> = scenario
            .programs
            .iter()
            .map(|p| match &p.kind {
                ProgramKind::Coupon(c) => c.discount,
                ProgramKind::Traffic(b) => scenario.placements[b.placement].impression_cost(),
            })
            .collect();
        let parts = scenario
            .programs
            .iter()
            .zip(&charge)
            .map(|(p, &c)| split_charge(c, &p.funded_by))
            .collect();
        let mut coupon_limits = Vec::new();
        let coupon_slot = scenario
            .programs
            .iter()
            .map(|p| {
                p.coupon().map(|c| {
                    coupon_limits.push(c.per_user_limit);
                    coupon_limits.len() - 1
                })
            })
            .collect();
        Plan {
            scenario,
            ticks,
            coupon_slot,
            coupon_limits,
            traffic,
            impressions_multiplier,
            ctr_multiplier,
            conversion_multiplier,
            live_open: starts
                .iter()
                .map(|&s| schedule_open(&scenario.live_room.schedule, time::minute_of_day(s)))
                .collect(),
            day_reset: (0..ticks)
                .map(|t| t > 0 && time::day(starts[t]) != time::day(starts[t - 1]))
                .collect(),
            lambda,
            in_window,
            allowance,
            charge,
            parts,
            value_baskets: true,
            meter: None,
        }
    }

    /// Number of coupon programs.
    pub fn coupons(&self) -> usize {
        self.coupon_limits.len()
    }

    /// The conversion multiplier of a destination (scenario and events) in a tick.
    pub fn destination_multiplier(
        &self,
        t: usize,
        placement: usize,
        destination: DestinationKind,
    ) -> f64 {
        let d = &self.scenario;
        let base = match destination {
            DestinationKind::Shop => d.shop.conversion_multiplier,
            DestinationKind::LiveRoom => d.live_room.conversion_multiplier,
        };
        base * self.conversion_multiplier[t][placement][destination as usize]
    }
}

fn traffic_at(scenario: &Scenario, start: i64) -> f64 {
    let weights = &scenario.calendar.intraday;
    let mean = weights.iter().sum::<f64>() / weights.len() as f64;
    let hour = (time::minute_of_day(start) / MINUTES_PER_HOUR) as usize;
    let windows: f64 = scenario
        .calendar
        .windows
        .iter()
        .filter(|w| in_interval(start, w.start, w.end))
        .map(|w| w.traffic)
        .product();
    weights[hour] / mean * windows
}

type Multipliers = (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<[f64; 2]>>);

fn event_multipliers(scenario: &Scenario, starts: &[i64]) -> Multipliers {
    let n_p = scenario.placements.len();
    let mut imp = vec![vec![1.0; n_p]; starts.len()];
    let mut ctr = vec![vec![1.0; n_p]; starts.len()];
    let mut conv = vec![vec![[1.0; 2]; n_p]; starts.len()];
    for (t, &s) in starts.iter().enumerate() {
        for e in scenario
            .events
            .iter()
            .filter(|e| in_interval(s, e.start, e.end))
        {
            for p in (0..n_p).filter(|&p| e.placements[p]) {
                imp[t][p] *= e.impressions;
                ctr[t][p] *= e.ctr;
                for (d, &listed) in e.destinations.iter().enumerate() {
                    if listed {
                        conv[t][p][d] *= e.conversion;
                    }
                }
            }
        }
    }
    (imp, ctr, conv)
}

/// C(t) = floor(budget × F(t)) over the window's ticks (MODEL.md, *Budgets*): 0 before the window,
/// the value of its last tick after it. A `traffic` window whose weights are all 0 paces as `asap`.
fn pacing_allowance(budget: Units, pacing: Pacing, window: &[bool], traffic: &[f64]) -> Vec<Units> {
    let weight = |t: usize| match pacing {
        Pacing::Asap => 0.0,
        Pacing::Even => 1.0,
        Pacing::Traffic => traffic[t],
    };
    let total: f64 = (0..window.len()).filter(|&t| window[t]).map(weight).sum();
    let n_window = window.iter().filter(|&&w| w).count() as u128;
    let (mut seen, mut cumulative, mut value) = (0u128, 0.0, 0);
    let mut out = Vec::with_capacity(window.len());
    for (t, &inside) in window.iter().enumerate() {
        if inside {
            seen += 1;
            cumulative += weight(t);
            value = match pacing {
                _ if seen == n_window => budget,
                Pacing::Even => (u128::from(budget) * seen / n_window) as Units,
                Pacing::Traffic if total > 0.0 => {
                    ((budget as f64 * cumulative / total).floor() as Units).min(budget)
                }
                _ => budget,
            };
        }
        out.push(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sums_exactly_and_breaks_ties_in_order() {
        let parts = split_charge(10, &[(0, 1.0 / 3.0), (1, 1.0 / 3.0), (2, 1.0 / 3.0)]);
        assert_eq!(parts, vec![(0, 4), (1, 3), (2, 3)]);
        let parts = split_charge(5_000_000, &[(1, 0.7), (0, 0.3)]);
        assert_eq!(parts, vec![(1, 3_500_000), (0, 1_500_000)]);
        let parts = split_charge(7, &[(0, 0.15), (1, 0.85)]);
        assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), 7);
    }

    #[test]
    fn even_pacing_reaches_the_budget_on_the_last_window_tick() {
        let window = [false, true, true, true, false];
        let c = pacing_allowance(10, Pacing::Even, &window, &[1.0; 5]);
        assert_eq!(c, vec![0, 3, 6, 10, 10]);
        let c = pacing_allowance(10, Pacing::Asap, &window, &[1.0; 5]);
        assert_eq!(c, vec![0, 10, 10, 10, 10]);
        let c = pacing_allowance(100, Pacing::Traffic, &window, &[9.0, 1.0, 3.0, 0.0, 5.0]);
        assert_eq!(c, vec![0, 25, 100, 100, 100]);
    }

    #[test]
    fn schedules_wrap_past_midnight() {
        let schedule = [(22 * 60, 2 * 60)];
        assert!(schedule_open(&schedule, 23 * 60));
        assert!(schedule_open(&schedule, 60));
        assert!(!schedule_open(&schedule, 2 * 60));
        assert!(schedule_open(&[(19 * 60, 24 * 60)], 23 * 60 + 59));
        assert!(schedule_open(&[], 0));
    }
}
