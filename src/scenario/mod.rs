//! The scenario: what a user writes in a TOML file, checked and resolved into typed values.
//!
//! `parse` reads the TOML into spanned values; `validate` walks them, reporting every problem with
//! its line and key path, and builds a [`Scenario`] whose names are resolved to indices.
//! `default` holds the built-in national scenario.

pub mod default;
pub(crate) mod parse;
mod validate;

pub use validate::{MAX_IMPRESSIONS_PER_TICK, MAX_USERS, load_file, load_str};

use crate::time::Minutes;

/// Money is kept in integer units of 1/1000 fen (MODEL.md, *Money*).
pub type Units = u64;
/// Units in one yuan: 100 fen × 1000.
pub const UNITS_PER_YUAN: u64 = 100_000;
/// Units charged per impression for each yuan of CPM: cpm yuan / 1000 impressions × 100,000.
pub const UNITS_PER_IMPRESSION_PER_CPM_YUAN: u64 = 100;

/// `scenarios/quick.toml`, for unit tests.
#[cfg(test)]
pub(crate) fn quick_fixture() -> Scenario {
    load_str(include_str!("../../scenarios/quick.toml"), "quick.toml").expect("valid")
}

/// A scenario of the exactness suite (`tests/data/exact/NAME.toml`), for unit tests.
#[cfg(test)]
pub(crate) fn exact_fixture(name: &str) -> Scenario {
    load_str(&exact_fixture_text(name), &format!("{name}.toml")).expect("valid")
}

/// The text of [`exact_fixture`]'s file, for unit tests that change it.
#[cfg(test)]
pub(crate) fn exact_fixture_text(name: &str) -> String {
    let path = format!(
        "{}/tests/data/exact/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).expect("a scenario of the exactness suite")
}

/// Converts yuan to units, rounding to the nearest unit, halves away from zero (the scenario
/// loader's only rounding, and every basket's); negative or NaN amounts give 0, amounts past
/// `Units::MAX` give `Units::MAX`, exactly as `round() as Units`.
///
/// It runs once per order, so it avoids `f64::round` (the x86-64 baseline has no instruction for
/// it) and any branch on the fraction (taken half the time at random): below 2^63 the truncating
/// conversion is one instruction and `x − trunc(x)` is exact in f64.
pub fn yuan_to_units(yuan: f64) -> Units {
    const SIGNED_LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    let x = yuan * UNITS_PER_YUAN as f64;
    if !(0.0..SIGNED_LIMIT).contains(&x) {
        return x.round() as Units;
    }
    let whole = x as i64;
    whole as Units + Units::from(x - whole as f64 >= 0.5)
}

/// Converts units to yuan for reports.
pub fn units_to_yuan(units: u128) -> f64 {
    units as f64 / UNITS_PER_YUAN as f64
}

/// A fully checked scenario. Indices refer to the vectors of this struct.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub replications: u32,
    /// Replications of a `compare` (each split's), when the command line does not say.
    pub compare_replications: Option<u32>,
    pub start: Minutes,
    pub end: Minutes,
    pub tick_minutes: u32,
    pub users: u64,
    pub segments: Vec<Segment>,
    pub placements: Vec<Placement>,
    pub frequency: Frequency,
    pub shop: Destination,
    pub live_room: LiveRoom,
    pub friction: Friction,
    pub funders: Vec<Funder>,
    pub programs: Vec<Program>,
    pub calendar: Calendar,
    pub events: Vec<Event>,
    pub macro_: Macro,
    pub competitor: Competitor,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub name: String,
    pub share: f64,
    pub taobao_app: f64,
    pub alipay: f64,
    pub base_conversion: f64,
    pub price_sensitivity: f64,
    pub basket_median_yuan: f64,
    pub basket_sigma: f64,
    pub ctr_multiplier: f64,
    pub competitor_leakage: f64,
    /// Multiplier of the impression mean, one per placement (index of `Scenario::placements`).
    pub reach: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct Placement {
    pub name: String,
    pub impressions_per_user_day: f64,
    pub ctr: f64,
    pub cpm_yuan: f64,
    pub to_live_room: f64,
    /// Index of the owning funder.
    pub owner: usize,
}

impl Placement {
    /// Cost of one impression in units (`cpm × 100`, MODEL.md *Money*).
    pub fn impression_cost(&self) -> Units {
        (self.cpm_yuan * UNITS_PER_IMPRESSION_PER_CPM_YUAN as f64).round() as Units
    }
}

#[derive(Debug, Clone)]
pub struct Frequency {
    pub cap: u32,
    pub fatigue: f64,
}

/// Where a session lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DestinationKind {
    Shop,
    LiveRoom,
}

impl DestinationKind {
    pub const ALL: [DestinationKind; 2] = [DestinationKind::Shop, DestinationKind::LiveRoom];

    pub fn name(self) -> &'static str {
        match self {
            DestinationKind::Shop => "shop",
            DestinationKind::LiveRoom => "live_room",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Destination {
    pub conversion_multiplier: f64,
}

#[derive(Debug, Clone)]
pub struct LiveRoom {
    pub conversion_multiplier: f64,
    /// Open intervals as minutes after midnight `[from, to)`; `to` may be ≤ `from` (wraps past
    /// midnight). Empty: always open.
    pub schedule: Vec<(i64, i64)>,
    /// Sessions admitted per tick; `None`: unlimited.
    pub capacity_per_tick: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Friction {
    pub jump_with_app: f64,
    pub jump_h5: f64,
    pub h5_conversion: f64,
    pub alipay_setup: f64,
    pub payment_interop: bool,
}

#[derive(Debug, Clone)]
pub struct Funder {
    pub name: String,
    pub take_rate: f64,
    pub cap: Option<Units>,
    pub traffic_cost_ratio: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    Asap,
    Even,
    Traffic,
}

impl Pacing {
    pub fn name(self) -> &'static str {
        match self {
            Pacing::Asap => "asap",
            Pacing::Even => "even",
            Pacing::Traffic => "traffic",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Coupon {
    /// "Spend T": in yuan (a real number compared with the basket; rounded to a unit on load).
    pub threshold_yuan: f64,
    /// "Save D": charged in units when an order redeems it.
    pub discount: Units,
    pub per_user_limit: u32,
    pub topup_from: f64,
    pub topup: f64,
    /// Eligible placements (all `true` if the file lists none).
    pub placements: Vec<bool>,
}

impl Coupon {
    pub fn discount_yuan(&self) -> f64 {
        units_to_yuan(u128::from(self.discount))
    }
}

#[derive(Debug, Clone)]
pub struct TrafficBuy {
    pub placement: usize,
    pub max_boost: f64,
}

#[derive(Debug, Clone)]
pub enum ProgramKind {
    Coupon(Coupon),
    Traffic(TrafficBuy),
}

#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    pub kind: ProgramKind,
    pub budget: Units,
    /// (funder index, share) in `funded_by` order; shares sum to 1.
    pub funded_by: Vec<(usize, f64)>,
    pub pacing: Pacing,
    pub start: Minutes,
    pub end: Minutes,
    /// Targeted segments (all `true` if the file lists none).
    pub segments: Vec<bool>,
}

impl Program {
    pub fn coupon(&self) -> Option<&Coupon> {
        match &self.kind {
            ProgramKind::Coupon(c) => Some(c),
            ProgramKind::Traffic(_) => None,
        }
    }

    pub fn traffic(&self) -> Option<&TrafficBuy> {
        match &self.kind {
            ProgramKind::Traffic(t) => Some(t),
            ProgramKind::Coupon(_) => None,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ProgramKind::Coupon(_) => "coupon",
            ProgramKind::Traffic(_) => "traffic",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CalendarWindow {
    pub name: String,
    pub start: Minutes,
    pub end: Minutes,
    pub traffic: f64,
}

#[derive(Debug, Clone)]
pub struct Calendar {
    /// 24 hourly weights (hour 0 first), as written.
    pub intraday: Vec<f64>,
    pub windows: Vec<CalendarWindow>,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub start: Minutes,
    pub end: Minutes,
    /// Placements it acts on (index of `Scenario::placements`).
    pub placements: Vec<bool>,
    /// Destinations whose conversion it multiplies: [shop, live_room].
    pub destinations: [bool; 2],
    pub impressions: f64,
    pub ctr: f64,
    pub conversion: f64,
}

#[derive(Debug, Clone)]
pub struct Macro {
    pub consumer_confidence: f64,
    pub sensitivity_multiplier: f64,
    pub price_index: f64,
}

#[derive(Debug, Clone)]
pub struct Competitor {
    pub name: String,
    pub pressure: f64,
    pub coupon_retention: f64,
}

impl Scenario {
    /// Number of ticks from `start` to `end`.
    pub fn ticks(&self) -> usize {
        ((self.end - self.start) / i64::from(self.tick_minutes)) as usize
    }

    /// Start of tick `t` (local minutes).
    pub fn tick_start(&self, t: usize) -> Minutes {
        self.start + t as i64 * i64::from(self.tick_minutes)
    }

    pub fn funder_index(&self, name: &str) -> Option<usize> {
        self.funders.iter().position(|f| f.name == name)
    }

    pub fn program_index(&self, name: &str) -> Option<usize> {
        self.programs.iter().position(|p| p.name == name)
    }

    /// The same scenario with every program removed: the counterfactual baseline (MODEL.md).
    pub fn baseline(&self) -> Scenario {
        Scenario {
            programs: Vec::new(),
            ..self.clone()
        }
    }

    /// The same scenario for `users` users, with budgets, funder caps and the live room's
    /// capacity scaled in proportion (rounded down), so that the same share of users meets a
    /// coupon or a boost. For benchmarks and quick trials; everything else is unchanged.
    pub fn scaled_to(&self, users: u64) -> Scenario {
        let factor = users as f64 / self.users as f64;
        let scale = |x: u64| (x as f64 * factor).floor() as u64;
        let mut s = self.clone();
        s.users = users;
        for p in &mut s.programs {
            p.budget = scale(p.budget);
        }
        for f in &mut s.funders {
            f.cap = f.cap.map(scale);
        }
        s.live_room.capacity_per_tick = s.live_room.capacity_per_tick.map(scale);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_to_units_rounds_like_f64_round() {
        // Halves, values a hair on either side of them, large and edge amounts: the fast
        // conversion must equal `round() as Units` (halves away from zero, saturating) everywhere.
        let mut cases = vec![
            0.0,
            0.5e-5,
            1.5e-5,
            2.5e-5,
            0.49999e-5,
            1e13,
            -3.0,
            f64::NAN,
            1e30,
        ];
        let mut x = 0.123_456_789_f64;
        for _ in 0..100_000 {
            x = (x * 1_103.515_245 + 0.123_45) % 250_000.0;
            cases.push(x);
            cases.push((x * 1e5).floor() / 1e5 + 0.5e-5);
        }
        for yuan in cases {
            let expected = (yuan * UNITS_PER_YUAN as f64).round() as Units;
            assert_eq!(yuan_to_units(yuan), expected, "{yuan}");
        }
    }
}
