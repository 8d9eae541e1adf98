//! Steps 5, 6 and 10: the basket, threshold coupons, top-ups, per-user limits and what an order
//! adds to GMV and spend. Price sensitivity and coupon retention are 0 here, so a coupon changes no
//! decision and orders are a fair sample of baskets.

use d11sim::engine::Count;
use d11sim::scenario::{UNITS_PER_YUAN, yuan_to_units};
use statrs::distribution::{ContinuousCDF, Normal};

use super::{assert_mean, base_with, count, excess, simulate_many};

/// Basket: median 100 × price_index, log-sd 0.5 (`eng_base.toml`).
const MEDIAN: f64 = 100.0;
const SIGMA: f64 = 0.5;

fn phi(x: f64) -> f64 {
    Normal::standard().cdf(x)
}

/// A coupon program with a budget that never binds, funded 60/40.
fn coupon(threshold: f64, discount: f64, limit: u32, topup_from: f64, topup: f64) -> String {
    format!(
        r#"
[[program]]
name = "coupon"
kind = "coupon"
budget = 10000000.0
funded_by = {{ alibaba = 0.6, tencent = 0.4 }}
threshold = {threshold}
discount = {discount}
per_user_limit = {limit}
topup_from = {topup_from}
topup = {topup}
"#
    )
}

fn gmv_yuan(o: &d11sim::engine::Outcome) -> f64 {
    o.totals.gmv as f64 / UNITS_PER_YUAN as f64
}

/// GMV per order = E[LogNormal] = median × price_index × exp(σ² / 2) = 90 × e^0.125 = 101.98.
#[test]
fn basket_mean_is_the_lognormal_mean() {
    let s = base_with(&[], "\n[macro]\nprice_index = 0.9\n");
    let mean = MEDIAN * 0.9 * (SIGMA * SIGMA / 2.0).exp();
    let outs = simulate_many(&s, 300);
    let values: Vec<f64> = outs
        .iter()
        .map(|o| gmv_yuan(o) - mean * count(o, Count::Orders))
        .collect();
    assert_mean("gmv − 101.98 × orders", &values, 0.0);
    // The median: half the baskets lie below 90 (checked with a coupon at T = 90 below).
    let s = base_with(
        &[],
        &(String::from("\n[macro]\nprice_index = 0.9\n") + &coupon(90.0, 10.0, 100_000, 1.0, 0.0)),
    );
    let outs = simulate_many(&s, 300);
    let values = excess(&outs, Count::CouponOrders, 0.5, Count::Orders);
    assert_mean("orders with B ≥ median", &values, 0.0);
}

/// "Spend 150 save 20" with a budget that never binds: P(B ≥ 150) = 1 − Φ(ln(1.5) / 0.5) = 0.2087
/// of orders redeem it; each costs exactly 20 yuan, split 12 / 8 between the funders.
#[test]
fn threshold_coupon_goes_to_baskets_above_threshold() {
    let s = base_with(&[], &coupon(150.0, 20.0, 100_000, 1.0, 0.0));
    let p = 1.0 - phi((150.0_f64 / MEDIAN).ln() / SIGMA);
    assert!((p - 0.2087).abs() < 1e-4, "hand value {p}");
    let outs = simulate_many(&s, 300);
    let d = u128::from(yuan_to_units(20.0));
    for o in &outs {
        let redeemed = u128::from(o.count(Count::CouponOrders));
        assert!(redeemed > 0);
        assert_eq!(
            o.totals.discount,
            d * redeemed,
            "discount = D × coupon_orders"
        );
        assert_eq!(o.program_spend, vec![d * redeemed]);
        assert_eq!(
            o.funder_spend,
            vec![d * redeemed * 6 / 10, d * redeemed * 4 / 10]
        );
        assert_eq!(o.totals.traffic_spend, 0);
    }
    let values = excess(&outs, Count::CouponOrders, p, Count::Orders);
    assert_mean("coupon_orders − P(B ≥ 150) × orders", &values, 0.0);
}

/// topup = 1 and topup_from = 0: every basket below T = 150 becomes T, so every order redeems and
/// each adds max(B, T): E = T Φ(z) + m e^(σ²/2) Φ(σ − z) with z = (ln T − ln m) / σ.
#[test]
fn full_topup_lifts_every_basket_to_the_threshold() {
    const T: f64 = 150.0;
    let s = base_with(&[], &coupon(T, 20.0, 100_000, 0.0, 1.0));
    let z = (T / MEDIAN).ln() / SIGMA;
    let mean = T * phi(z) + MEDIAN * (SIGMA * SIGMA / 2.0).exp() * phi(SIGMA - z);
    let outs = simulate_many(&s, 300);
    let t_units = u128::from(yuan_to_units(T));
    for o in &outs {
        let orders = o.count(Count::Orders);
        assert!(orders > 0);
        assert_eq!(o.count(Count::CouponOrders), orders, "every order redeems");
        assert!(
            o.totals.gmv >= t_units * u128::from(orders),
            "gmv {} below T × orders {}",
            o.totals.gmv,
            t_units * u128::from(orders)
        );
    }
    let values: Vec<f64> = outs
        .iter()
        .map(|o| gmv_yuan(o) - mean * count(o, Count::Orders))
        .collect();
    assert_mean("gmv − E[max(B, T)] × orders", &values, 0.0);
}

/// A partial band: P(coupon) = P(B ≥ T) + topup × P(0.8 T ≤ B < T), T = 150, topup = 0.4.
#[test]
fn partial_topup_band() {
    let s = base_with(&[], &coupon(150.0, 20.0, 100_000, 0.8, 0.4));
    let (hi, lo) = (
        (150.0_f64 / MEDIAN).ln() / SIGMA,
        (120.0_f64 / MEDIAN).ln() / SIGMA,
    );
    let p = 1.0 - phi(hi) + 0.4 * (phi(hi) - phi(lo));
    let outs = simulate_many(&s, 300);
    let values = excess(&outs, Count::CouponOrders, p, Count::Orders);
    assert_mean("coupon_orders − P(coupon) × orders", &values, 0.0);
}

/// One user with ~150 orders per replication and a coupon every basket gets (full top-up band):
/// per_user_limit redemptions exactly, then no more.
#[test]
fn per_user_limit_caps_redemptions() {
    for limit in [1u32, 3] {
        let s = base_with(
            &[
                ("users = 1000", "users = 1"),
                ("ctr = 0.1", "ctr = 1.0"),
                (
                    "impressions_per_user_day = 48.0",
                    "impressions_per_user_day = 2400.0",
                ),
            ],
            &coupon(150.0, 20.0, limit, 0.0, 1.0),
        );
        for o in simulate_many(&s, 50) {
            assert!(o.count(Count::Orders) > u64::from(limit));
            assert_eq!(
                o.count(Count::CouponOrders),
                u64::from(limit),
                "limit {limit}"
            );
            assert_eq!(
                o.totals.discount,
                u128::from(limit) * u128::from(yuan_to_units(20.0))
            );
        }
    }
    // 300 users with a limit of 1: never more redemptions than users.
    let s = base_with(
        &[("users = 1000", "users = 300"), ("ctr = 0.1", "ctr = 0.8")],
        &coupon(150.0, 20.0, 1, 0.0, 1.0),
    );
    for o in simulate_many(&s, 50) {
        assert!(o.count(Count::Orders) > 300, "users shop many times");
        assert!(o.count(Count::CouponOrders) <= 300);
    }
}
