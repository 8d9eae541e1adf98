//! Closed forms of the per-user story's steps (MODEL.md steps 6–8), shared by both engines.

use super::{Plan, ledger::Ledger};
use crate::scenario::Scenario;

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
