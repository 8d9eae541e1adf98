//! Closed forms of the per-user story's steps (MODEL.md steps 6–8), shared by both engines.

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use super::rng::Stream;
use super::{Count, Funnel, Outcome, Plan, ledger::Ledger};
use crate::scenario::{Scenario, yuan_to_units};

/// P(lost to the competitor) at effective discount `d` (step 7).
pub fn leak_probability(scenario: &Scenario, segment: usize, d: f64) -> f64 {
    let c = &scenario.competitor;
    (scenario.segments[segment].competitor_leakage * c.pressure * (-c.coupon_retention * d).exp())
        .min(1.0)
}

/// q of step 8, clamped to [0, 1]: the order probability before the discount's effect.
pub fn base_order_probability(
    plan: &Plan,
    t: usize,
    segment: usize,
    placement: usize,
    h5: bool,
    live: bool,
) -> f64 {
    let s = plan.scenario;
    let destination = if live {
        crate::scenario::DestinationKind::LiveRoom
    } else {
        crate::scenario::DestinationKind::Shop
    };
    let h5_factor = if h5 { s.friction.h5_conversion } else { 1.0 };
    let q = s.segments[segment].base_conversion
        * plan.destination_multiplier(t, placement, destination)
        * h5_factor
        * s.macro_.consumer_confidence;
    q.clamp(0.0, 1.0)
}

/// P(order attempt) of step 8: sigmoid(logit(q) + sensitivity × d), with q = 0 and q = 1 fixed.
pub fn attempt_probability(scenario: &Scenario, segment: usize, q: f64, d: f64) -> f64 {
    if q <= 0.0 || q >= 1.0 || d == 0.0 {
        return q;
    }
    let slope =
        scenario.segments[segment].price_sensitivity * scenario.macro_.sensitivity_multiplier;
    let x = (q / (1.0 - q)).ln() + slope * d;
    1.0 / (1.0 + (-x).exp())
}

/// The coupon situation of a session with basket `b` (yuan) among the eligible programs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Offer {
    /// No eligible program's threshold or top-up band reaches the basket.
    None,
    /// Program `j`'s threshold is reached: d = D / B.
    Reached(usize),
    /// Program `j` is offered as a top-up: with P(topup) B becomes T and d = D / T.
    TopUp(usize),
}

/// Step 6: the best offer among `eligible` programs (in listed order) for basket `b`.
pub fn best_offer(scenario: &Scenario, eligible: &[usize], b: f64) -> Offer {
    let mut reached: Option<(usize, u64)> = None;
    let mut band: Option<(usize, u64)> = None;
    for &j in eligible {
        let c = scenario.programs[j]
            .coupon()
            .expect("eligible programs are coupons");
        let slot = if b >= c.threshold_yuan {
            &mut reached
        } else if b >= c.topup_from * c.threshold_yuan {
            &mut band
        } else {
            continue;
        };
        if slot.is_none_or(|(_, d)| c.discount > d) {
            *slot = Some((j, c.discount));
        }
    }
    match (reached, band) {
        (Some((j, _)), _) => Offer::Reached(j),
        (None, Some((j, _))) => Offer::TopUp(j),
        (None, None) => Offer::None,
    }
}

/// Coupon programs a session of (segment, placement) may be offered in tick `t`, given budgets and
/// the user's redemptions so far (`redeemed[k]` for the k-th coupon program), in listed order.
pub fn eligible_coupons(
    plan: &Plan,
    ledger: &Ledger,
    t: usize,
    segment: usize,
    placement: usize,
    redeemed: &[u32],
    out: &mut Vec<usize>,
) {
    out.clear();
    let mut k = 0;
    for (j, p) in plan.scenario.programs.iter().enumerate() {
        let Some(c) = p.coupon() else { continue };
        let ok = p.segments[segment]
            && c.placements[placement]
            && redeemed[k] < c.per_user_limit
            && ledger.can_charge(plan, j, t);
        if ok {
            out.push(j);
        }
        k += 1;
    }
}

/// The seven numbers every session draws, in this order, whatever its path: so that coupled runs
/// (scenario and baseline, or two splits) compare like with like.
#[derive(Clone, Copy, Debug)]
pub struct SessionDraws {
    pub u_jump: f64,
    pub u_live: f64,
    /// Standard normal behind the LogNormal basket.
    pub z: f64,
    pub u_topup: f64,
    pub u_leak: f64,
    pub u_decide: f64,
    pub u_setup: f64,
}

impl SessionDraws {
    pub fn draw(r: &mut Stream) -> Self {
        let (u_jump, u_live) = (r.random(), r.random());
        let z = StandardNormal.sample(r);
        SessionDraws {
            u_jump,
            u_live,
            z,
            u_topup: r.random(),
            u_leak: r.random(),
            u_decide: r.random(),
            u_setup: r.random(),
        }
    }
}

/// The user behind a session: what steps 3–10 read and change.
pub struct Shopper<'a> {
    pub segment: usize,
    pub app: bool,
    pub alipay: &'a mut bool,
    /// Redemptions so far of each coupon program (k-th coupon program in listed order).
    pub redeemed: &'a mut [u32],
}

/// What the sessions of one tick share: admissions to the live room, a scratch list.
#[derive(Default)]
pub struct TickSessions {
    pub admitted: u64,
    eligible: Vec<usize>,
}

/// Where a session's counts go: the outcome and its funnel cell.
pub struct Tally<'o> {
    pub out: &'o mut Outcome,
    pub funnel: Funnel,
    pub t: usize,
    pub placement: usize,
    pub segment: usize,
}

impl Tally<'_> {
    /// Counts one event in tick `t`, in the totals and in the funnel column `destination`.
    pub fn add(&mut self, count: Count, destination: usize) {
        self.add_many(count, destination, 1);
    }

    /// Counts `n` events like [`Tally::add`].
    pub fn add_many(&mut self, count: Count, destination: usize, n: u64) {
        self.out.add(self.t, count, n);
        self.out.funnel[self
            .funnel
            .index(self.placement, self.segment, destination, count)] += n;
    }
}

/// Steps 3–10 of MODEL.md for one session, in the tick's arrival order.
pub fn resolve_session(
    plan: &Plan,
    ledger: &mut Ledger,
    shopper: Shopper,
    x: SessionDraws,
    tick: &mut TickSessions,
    tally: &mut Tally,
) {
    let s = plan.scenario;
    let (t, p, g) = (tally.t, tally.placement, shopper.segment);
    // Step 3: jump.
    if x.u_jump
        >= if shopper.app {
            s.friction.jump_with_app
        } else {
            s.friction.jump_h5
        }
    {
        tally.add(Count::JumpFailures, 0);
        return;
    }
    tally.add(Count::Landed, 0);
    // Step 4: landing.
    let mut live = false;
    if x.u_live < s.placements[p].to_live_room {
        if !plan.live_open[t] {
            tally.add(Count::LiveRoomClosed, 1);
        } else if s
            .live_room
            .capacity_per_tick
            .is_none_or(|c| tick.admitted < c)
        {
            tick.admitted += 1;
            live = true;
            tally.add(Count::LiveRoomSessions, 2);
        } else {
            tally.add(Count::LiveRoomOverflow, 1);
        }
    }
    let column = if live { 2 } else { 1 };
    // Step 5: basket (yuan).
    let seg = &s.segments[g];
    let mut basket = seg.basket_median_yuan * s.macro_.price_index * (seg.basket_sigma * x.z).exp();
    // Step 6: coupon.
    eligible_coupons(plan, ledger, t, g, p, shopper.redeemed, &mut tick.eligible);
    let (mut coupon, mut d) = (None, 0.0);
    match best_offer(s, &tick.eligible, basket) {
        Offer::Reached(j) => {
            coupon = Some(j);
            d = s.programs[j].coupon().expect("coupon").discount_yuan() / basket;
        }
        Offer::TopUp(j) => {
            let c = s.programs[j].coupon().expect("coupon");
            if x.u_topup < c.topup {
                basket = c.threshold_yuan;
                coupon = Some(j);
                d = c.discount_yuan() / c.threshold_yuan;
            }
        }
        Offer::None => {}
    }
    // Step 7: competitor.
    if x.u_leak < leak_probability(s, g, d) {
        tally.add(Count::LeakedToCompetitor, column);
        return;
    }
    // Step 8: decision.
    let q = base_order_probability(plan, t, g, p, !shopper.app, live);
    if x.u_decide >= attempt_probability(s, g, q, d) {
        return;
    }
    tally.add(Count::OrderAttempts, column);
    // Step 9: payment.
    if !(*shopper.alipay || s.friction.payment_interop) {
        if x.u_setup < s.friction.alipay_setup {
            *shopper.alipay = true;
            tally.add(Count::AlipaySetups, column);
        } else {
            tally.add(Count::PaymentFailures, column);
            return;
        }
    }
    // Step 10: order.
    book_order(
        plan,
        ledger,
        shopper.redeemed,
        tally,
        column,
        basket,
        coupon,
    );
}

fn book_order(
    plan: &Plan,
    ledger: &mut Ledger,
    redeemed: &mut [u32],
    tally: &mut Tally,
    column: usize,
    basket: f64,
    coupon: Option<usize>,
) {
    tally.add(Count::Orders, column);
    tally.add(
        if column == 2 {
            Count::OrdersLiveRoom
        } else {
            Count::OrdersShop
        },
        column,
    );
    let value = u128::from(yuan_to_units(basket));
    let cell = tally
        .funnel
        .gmv_index(tally.placement, tally.segment, column);
    let t = tally.t;
    tally.out.add_gmv(t, cell, value);
    if let Some(j) = coupon {
        tally.add(Count::CouponOrders, column);
        ledger.charge(plan, j, 1);
        let d = u128::from(plan.charge[j]);
        tally.out.per_tick[t].discount += d;
        tally.out.totals.discount += d;
        redeemed[plan.coupon_slot[j].expect("a coupon program has a slot")] += 1;
    }
}

/// A served boosted impression of program `j`: it pays its cost out of its reservation.
pub fn pay_boosted(plan: &Plan, ledger: &mut Ledger, j: usize, tally: &mut Tally) {
    pay_boosted_many(plan, ledger, j, 1, tally);
}

/// `n` served boosted impressions of program `j` on `tally`'s placement, paid at once: the same
/// integer sums as `n` calls of [`pay_boosted`] (their reservation covers them all).
pub fn pay_boosted_many(plan: &Plan, ledger: &mut Ledger, j: usize, n: u64, tally: &mut Tally) {
    if n == 0 {
        return;
    }
    let cost = u128::from(plan.charge[j]) * u128::from(n);
    tally.add_many(Count::BoostedImpressions, 0, n);
    ledger.reserve(plan, j, n, false);
    ledger.charge(plan, j, n);
    let t = tally.t;
    tally.out.per_tick[t].traffic_spend += cost;
    tally.out.totals.traffic_spend += cost;
    let owner = plan.scenario.placements[tally.placement].owner;
    tally.out.owned_traffic_value[owner] += cost;
}

/// An offered impression: its placement and, for a boosted one, its traffic program.
#[derive(Clone, Copy, Debug)]
pub struct Label {
    pub placement: usize,
    pub program: Option<usize>,
}

/// Step 2's click probability of an impression with day index `k` (impressions already served
/// today): min(1, ctr × segment multiplier × event multipliers × fatigue^k).
pub fn click_probability(plan: &Plan, t: usize, segment: usize, placement: usize, k: u32) -> f64 {
    let s = plan.scenario;
    let ctr = s.placements[placement].ctr
        * s.segments[segment].ctr_multiplier
        * plan.ctr_multiplier[t][placement]
        * s.frequency.fatigue.powi(k as i32);
    ctr.min(1.0)
}

/// Steps 1–2 for one user, literally: the offered `labels` in one uniformly random order (partial
/// Fisher–Yates), the first min(offered, cap − served today) served (boosted ones paid from their
/// program's reservation, counted in `paid`), each clicked with its fatigued CTR. Returns the
/// placements of the clicks, in served order; counts go to `out` through `tally`'s cell.
pub fn serve_and_click(
    plan: &Plan,
    ledger: &mut Ledger,
    tally: &mut Tally,
    served_today: &mut u32,
    labels: &mut [Label],
    paid: &mut [u64],
    r: &mut Stream,
) -> Vec<usize> {
    for l in labels.iter() {
        tally.placement = l.placement;
        tally.add(Count::ImpressionsOffered, 0);
    }
    let room = plan.scenario.frequency.cap.saturating_sub(*served_today) as usize;
    let served = labels.len().min(room);
    for i in 0..served {
        let pick = r.random_range(i..labels.len());
        labels.swap(i, pick);
    }
    let mut clicks = Vec::new();
    for label in labels.iter().take(served) {
        let k = *served_today;
        *served_today += 1;
        tally.placement = label.placement;
        tally.add(Count::Impressions, 0);
        if let Some(j) = label.program {
            pay_boosted(plan, ledger, j, tally);
            paid[j] += 1;
        }
        if r.random::<f64>() < click_probability(plan, tally.t, tally.segment, label.placement, k) {
            tally.add(Count::Clicks, 0);
            tally.add(Count::Sessions, 0);
            clicks.push(label.placement);
        }
    }
    clicks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_shift_matches_closed_form() {
        // Slope 2.0 × 1.1 = 2.2 times d = 0.5 / 2.2 adds 0.5 to logit(0.1) = −2.19722:
        // sigmoid(−1.69722) = 1 / (1 + e^1.69722) = 0.15483 (hand computation).
        let s = crate::scenario::load_str(include_str!("../../tests/data/tiny.toml"), "tiny.toml")
            .unwrap();
        let p = attempt_probability(&s, 0, 0.1, 0.5 / (2.0 * 1.1));
        assert!((p - 0.154_83).abs() < 1e-4, "{p}");
        assert_eq!(attempt_probability(&s, 0, 1.0, 0.3), 1.0);
        assert_eq!(attempt_probability(&s, 0, 0.0, 0.3), 0.0);
    }
}
