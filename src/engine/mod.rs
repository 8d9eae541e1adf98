//! The engines. Both compute MODEL.md's per-user story and return the same [`Outcome`]:
//! `agents` literally, user by user; `cohorts` exactly, on counts of exchangeable users.
//! [`Plan`] holds what both precompute from a scenario (multipliers per tick, pacing allowances,
//! funder splits), so that the two read the spec the same way. No I/O here.

pub mod agents;
pub mod cohorts;
mod ledger;
mod plan;
pub mod rng;
pub mod story;

pub use plan::{Plan, WorkCounts, WorkMeter, split_charge};

use crate::scenario::{Scenario, Units};

/// Keeps the C allocator's threshold for giving a block pages of its own at its initial value,
/// 128 KiB, so that every block that large goes back to the system as soon as it is freed. Left
/// to itself, glibc raises the threshold to the largest block freed so far (up to 32 MiB); the
/// engines' large buffers live for a tick or less (the peak tick's several-session users and
/// classes, a few MB at national scale) on two threads, so each thread's arena then keeps the
/// pages of its own largest tick, and the resident memory grows by about the sum of those
/// peaks. The cost is the pages' faults when such blocks are made again (under 1% of the CPU
/// time of a national replication at this threshold; lower thresholds cost more). Results do
/// not depend on it. The command line calls it once at start; on other C libraries it does
/// nothing.
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator, under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// The reported counts, in the order of `summary.csv` (MODEL.md, *What a run reports*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    ImpressionsOffered,
    Impressions,
    BoostedImpressions,
    Clicks,
    Sessions,
    JumpFailures,
    Landed,
    LiveRoomSessions,
    LiveRoomOverflow,
    LiveRoomClosed,
    LeakedToCompetitor,
    OrderAttempts,
    PaymentFailures,
    AlipaySetups,
    Orders,
    /// Paid orders that redeemed a coupon (an addition to INTERFACE.md's list).
    CouponOrders,
    /// Paid orders of sessions that ended in the shop / in a live room (additions).
    OrdersShop,
    OrdersLiveRoom,
}

impl Count {
    pub const ALL: [Count; 18] = [
        Count::ImpressionsOffered,
        Count::Impressions,
        Count::BoostedImpressions,
        Count::Clicks,
        Count::Sessions,
        Count::JumpFailures,
        Count::Landed,
        Count::LiveRoomSessions,
        Count::LiveRoomOverflow,
        Count::LiveRoomClosed,
        Count::LeakedToCompetitor,
        Count::OrderAttempts,
        Count::PaymentFailures,
        Count::AlipaySetups,
        Count::Orders,
        Count::CouponOrders,
        Count::OrdersShop,
        Count::OrdersLiveRoom,
    ];
    pub const N: usize = Count::ALL.len();

    pub fn name(self) -> &'static str {
        match self {
            Count::ImpressionsOffered => "impressions_offered",
            Count::Impressions => "impressions",
            Count::BoostedImpressions => "boosted_impressions",
            Count::Clicks => "clicks",
            Count::Sessions => "sessions",
            Count::JumpFailures => "jump_failures",
            Count::Landed => "landed",
            Count::LiveRoomSessions => "live_room_sessions",
            Count::LiveRoomOverflow => "live_room_overflow",
            Count::LiveRoomClosed => "live_room_closed",
            Count::LeakedToCompetitor => "leaked_to_competitor",
            Count::OrderAttempts => "order_attempts",
            Count::PaymentFailures => "payment_failures",
            Count::AlipaySetups => "alipay_setups",
            Count::Orders => "orders",
            Count::CouponOrders => "coupon_orders",
            Count::OrdersShop => "orders_shop",
            Count::OrdersLiveRoom => "orders_live_room",
        }
    }

    /// The funnel's destination column for this stage: `None` for stages before landing
    /// (destination `all`), else the session's final destination.
    pub fn before_landing(self) -> bool {
        matches!(
            self,
            Count::ImpressionsOffered
                | Count::Impressions
                | Count::BoostedImpressions
                | Count::Clicks
                | Count::Sessions
                | Count::JumpFailures
                | Count::Landed
        )
    }
}

/// Funnel destination columns: `all` (stages before landing), then the final destinations.
pub const FUNNEL_DESTINATIONS: [&str; 3] = ["all", "shop", "live_room"];

/// One tick's totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickTotals {
    pub counts: [u64; Count::N],
    pub gmv: u128,
    pub discount: u128,
    pub traffic_spend: u128,
}

/// Everything one replication of one scenario produced. Money is in units (1/1000 fen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub totals: TickTotals,
    pub per_tick: Vec<TickTotals>,
    /// Cash spent per funder.
    pub funder_spend: Vec<u128>,
    /// Cash spent per program.
    pub program_spend: Vec<u128>,
    /// Value at cpm of boosted impressions served on each funder's placements.
    pub owned_traffic_value: Vec<u128>,
    /// The tick at whose end each program was exhausted.
    pub exhausted_tick: Vec<Option<usize>>,
    /// Remaining budget per tick (outer) and program (inner), at the end of the tick.
    pub remaining: Vec<Vec<Units>>,
    /// Funnel counts, indexed by [`Funnel::index`].
    pub funnel: Vec<u64>,
    /// GMV per placement × segment × final destination (units).
    pub funnel_gmv: Vec<u128>,
}

/// Index arithmetic of the funnel arrays: placement × segment × destination column × stage.
#[derive(Clone, Copy, Debug)]
pub struct Funnel {
    pub placements: usize,
    pub segments: usize,
}

impl Funnel {
    pub fn of(scenario: &Scenario) -> Self {
        Funnel {
            placements: scenario.placements.len(),
            segments: scenario.segments.len(),
        }
    }

    pub fn len(&self) -> usize {
        self.placements * self.segments * FUNNEL_DESTINATIONS.len() * Count::N
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `destination`: 0 = all, 1 = shop, 2 = live room.
    pub fn index(
        &self,
        placement: usize,
        segment: usize,
        destination: usize,
        stage: Count,
    ) -> usize {
        ((placement * self.segments + segment) * FUNNEL_DESTINATIONS.len() + destination) * Count::N
            + stage as usize
    }

    /// The number of GMV cells ([`Funnel::gmv_index`]).
    pub fn gmv_cells(&self) -> usize {
        self.len() / Count::N
    }

    pub fn gmv_index(&self, placement: usize, segment: usize, destination: usize) -> usize {
        (placement * self.segments + segment) * FUNNEL_DESTINATIONS.len() + destination
    }
}

impl Outcome {
    pub fn new(scenario: &Scenario) -> Self {
        let funnel = Funnel::of(scenario);
        let ticks = scenario.ticks();
        Outcome {
            totals: TickTotals::default(),
            per_tick: vec![TickTotals::default(); ticks],
            funder_spend: vec![0; scenario.funders.len()],
            program_spend: vec![0; scenario.programs.len()],
            owned_traffic_value: vec![0; scenario.funders.len()],
            exhausted_tick: vec![None; scenario.programs.len()],
            remaining: Vec::with_capacity(ticks),
            funnel: vec![0; funnel.len()],
            funnel_gmv: vec![0; funnel.gmv_cells()],
        }
    }

    /// Adds `value` (units) to tick `t`'s GMV, the total and GMV cell `cell`
    /// ([`Funnel::gmv_index`]).
    pub fn add_gmv(&mut self, t: usize, cell: usize, value: u128) {
        self.per_tick[t].gmv += value;
        self.totals.gmv += value;
        self.funnel_gmv[cell] += value;
    }

    /// Adds `n` to a count in tick `t` and in the totals.
    pub fn add(&mut self, t: usize, count: Count, n: u64) {
        self.per_tick[t].counts[count as usize] += n;
        self.totals.counts[count as usize] += n;
    }

    pub fn count(&self, count: Count) -> u64 {
        self.totals.counts[count as usize]
    }
}

/// A replication's scenario outcome and its baseline (every program removed), on common numbers.
#[derive(Clone, Debug)]
pub struct Paired {
    pub replication: u64,
    pub scenario: Outcome,
    pub baseline: Outcome,
}

/// Which engine computes the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Exact counts over exchangeable users (the default).
    Cohorts,
    /// The literal per-user reference.
    Agents,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Agents => "agents",
            Engine::Cohorts => "cohorts",
        }
    }

    /// Refuses scenarios the engine cannot finish.
    pub fn check(self, scenario: &Scenario) -> crate::Result<()> {
        match self {
            Engine::Agents => agents::check_size(scenario),
            Engine::Cohorts => Ok(()),
        }
    }

    /// One replication of one scenario (no baseline).
    pub fn simulate(self, plan: &Plan, seed: u64, replication: u64) -> Outcome {
        match self {
            Engine::Agents => agents::simulate(plan, seed, replication),
            Engine::Cohorts => cohorts::simulate(plan, seed, replication),
        }
    }

    /// One replication of two plans (a scenario and its baseline, say), each as [`Engine::simulate`]
    /// gives it, on two threads of the current rayon pool where one is free; the `cohorts`
    /// engine has the second run value the first's money when it has time to spare, and, if
    /// the pair is `alone` (the pool's only work), until the first is done.
    pub fn simulate_pair(
        self,
        lead: &Plan,
        other: &Plan,
        seed: u64,
        replication: u64,
        alone: bool,
    ) -> (Outcome, Outcome) {
        match self {
            Engine::Agents => rayon::join(
                || agents::simulate(lead, seed, replication),
                || agents::simulate(other, seed, replication),
            ),
            Engine::Cohorts => cohorts::simulate_pair(lead, other, seed, replication, alone),
        }
    }

    /// One replication of a scenario and of its baseline, on common random numbers.
    pub fn paired(
        self,
        scenario: &Scenario,
        baseline: &Scenario,
        seed: u64,
        replication: u64,
    ) -> Paired {
        Paired {
            replication,
            scenario: self.simulate(&Plan::new(scenario), seed, replication),
            baseline: self.simulate(&Plan::new(baseline), seed, replication),
        }
    }
}

/// Replications `replications` (1-based numbers) in parallel on the current rayon pool, returned
/// in replication order whatever the thread count; `done` is called after each one.
pub fn run_replications(
    engine: Engine,
    scenario: &Scenario,
    seed: u64,
    replications: std::ops::RangeInclusive<u64>,
    done: &(dyn Fn() + Sync),
) -> Vec<Paired> {
    use rayon::prelude::*;
    let baseline = scenario.baseline();
    // The plans depend on the scenario only: build them once for every replication.
    let (plan, base_plan) = (Plan::new(scenario), Plan::new(&baseline));
    let reps: Vec<u64> = replications.collect();
    // A single replication has the pool to itself.
    let alone = reps.len() == 1;
    reps.par_iter()
        .map(|&r| {
            // The scenario and its baseline are independent computations: on two cores even a
            // single replication uses both.
            let (scenario, baseline) = engine.simulate_pair(&plan, &base_plan, seed, r, alone);
            let out = Paired {
                replication: r,
                scenario,
                baseline,
            };
            done();
            out
        })
        .collect()
}
