//! Steps 3–4 and 7–9 of a session: the jump, the live room, the competitor, the decision and the
//! payment. The base scenario lands ~600 sessions per replication (1000 users × 2 impressions per
//! hour × CTR 0.1 × 3 hours).

use d11sim::engine::{Count, Outcome};

use super::{assert_mean, base_with, count, excess, simulate_many, tick_count};

/// A coupon every session gets: B = 100 exactly (basket_sigma = 0) reaches T = 50, so d = 20 / 100
/// = 0.2 for every session; the budget and the per-user limit never bind.
const FIXED_COUPON: &str = r#"
[[program]]
name = "coupon"
kind = "coupon"
budget = 10000000.0
funded_by = { alibaba = 1.0 }
threshold = 50.0
discount = 20.0
per_user_limit = 100000
"#;
/// The effective discount of `FIXED_COUPON`.
const FIXED_D: f64 = 20.0 / 100.0;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(q: f64) -> f64 {
    (q / (1.0 - q)).ln()
}

/// P(landed) = app × jump_with_app + (1 − app) × jump_h5 = 0.7 × 0.9 + 0.3 × 0.4 = 0.75; the app
/// flag is drawn independently of how many sessions a user has.
#[test]
fn jump_success_mixes_app_and_h5() {
    let s = base_with(
        &[
            ("taobao_app = 1.0", "taobao_app = 0.7"),
            ("jump_with_app = 1.0", "jump_with_app = 0.9"),
            ("jump_h5 = 1.0", "jump_h5 = 0.4"),
        ],
        "",
    );
    let outs = simulate_many(&s, 300);
    for o in &outs {
        assert_eq!(
            o.count(Count::Landed) + o.count(Count::JumpFailures),
            o.count(Count::Sessions)
        );
    }
    let values = excess(&outs, Count::Landed, 0.7 * 0.9 + 0.3 * 0.4, Count::Sessions);
    assert_mean("landed − 0.75 × sessions", &values, 0.0);
}

fn live_room(to_live_room: f64, live_room_section: &str, users: u64, end: &str) -> Vec<Outcome> {
    let s = base_with(
        &[
            (
                "cpm = 10.0",
                &format!("cpm = 10.0\nto_live_room = {to_live_room}"),
            ),
            ("users = 1000", &format!("users = {users}")),
            ("end = \"2023-11-10 23:00\"", &format!("end = \"{end}\"")),
        ],
        &format!("\n[destination.live_room]\n{live_room_section}\n"),
    );
    simulate_many(&s, 100)
}

/// A schedule that never covers the festival (20:00–23:00) sends every live-bound session to the
/// shop: with to_live_room = 1 all landed sessions are `live_room_closed`; with 0.3, 30% of them.
#[test]
fn closed_live_room_sends_live_bound_sessions_to_the_shop() {
    const CLOSED: &str = "schedule = [\"01:00-02:00\"]";
    for o in live_room(1.0, CLOSED, 1000, "2023-11-10 23:00") {
        assert_eq!(o.count(Count::LiveRoomClosed), o.count(Count::Landed));
        assert_eq!(o.count(Count::LiveRoomSessions), 0);
        assert_eq!(o.count(Count::LiveRoomOverflow), 0);
        assert_eq!(o.count(Count::OrdersLiveRoom), 0);
    }
    let outs = live_room(0.3, CLOSED, 1000, "2023-11-10 23:00");
    let values = excess(&outs, Count::LiveRoomClosed, 0.3, Count::Landed);
    assert_mean("live_room_closed − 0.3 × landed", &values, 0.0);
}

/// Schedules by tick start (20:00 to 04:00, eight hourly ticks): "22:00-02:00" wraps past
/// midnight and opens ticks 2–5; "21:00-24:00" opens ticks 1–3.
#[test]
fn live_room_schedule_wraps_past_midnight_and_ends_at_24() {
    for (schedule, open) in [
        ("schedule = [\"22:00-02:00\"]", 2..=5),
        ("schedule = [\"21:00-24:00\"]", 1..=3),
    ] {
        for o in live_room(1.0, schedule, 200, "2023-11-11 04:00") {
            for t in 0..8 {
                let (landed, admitted, closed) = (
                    tick_count(&o, t, Count::Landed),
                    tick_count(&o, t, Count::LiveRoomSessions),
                    tick_count(&o, t, Count::LiveRoomClosed),
                );
                let want = if open.contains(&t) {
                    (landed, 0)
                } else {
                    (0, landed)
                };
                assert_eq!((admitted, closed), want, "{schedule}, tick {t}");
            }
        }
    }
}

/// capacity_per_tick = 0 admits nobody: every live-bound session overflows to the shop.
#[test]
fn zero_capacity_overflows_every_live_bound_session() {
    for o in live_room(1.0, "capacity_per_tick = 0", 1000, "2023-11-10 23:00") {
        assert_eq!(o.count(Count::LiveRoomOverflow), o.count(Count::Landed));
        assert_eq!(o.count(Count::LiveRoomSessions), 0);
        assert!(o.count(Count::Landed) > 0);
    }
}

/// A binding capacity admits min(capacity, live-bound landed) per tick, exactly; with 40 users
/// (~8 landed per tick) both sides of the min occur.
#[test]
fn live_room_capacity_admits_min_of_capacity_and_live_bound() {
    const CAPACITY: u64 = 5;
    let section = format!("capacity_per_tick = {CAPACITY}");
    let (mut below, mut above) = (0, 0);
    for o in live_room(1.0, &section, 40, "2023-11-10 23:00") {
        for t in 0..3 {
            let landed = tick_count(&o, t, Count::Landed);
            assert_eq!(
                tick_count(&o, t, Count::LiveRoomSessions),
                landed.min(CAPACITY)
            );
            assert_eq!(
                tick_count(&o, t, Count::LiveRoomOverflow),
                landed - landed.min(CAPACITY)
            );
            if landed < CAPACITY {
                below += 1;
            } else {
                above += 1;
            }
        }
    }
    assert!(below > 0 && above > 0, "the scenario binds both ways");
    // Half the landed sessions are live-bound; the admitted ones are min(capacity, live-bound).
    let outs = live_room(0.5, &section, 40, "2023-11-10 23:00");
    for o in &outs {
        for t in 0..3 {
            let admitted = tick_count(o, t, Count::LiveRoomSessions);
            let bound = admitted + tick_count(o, t, Count::LiveRoomOverflow);
            assert_eq!(admitted, bound.min(CAPACITY), "tick {t}");
        }
    }
    let bound: Vec<f64> = outs
        .iter()
        .map(|o| {
            count(o, Count::LiveRoomSessions) + count(o, Count::LiveRoomOverflow)
                - 0.5 * count(o, Count::Landed)
        })
        .collect();
    assert_mean("live-bound − 0.5 × landed", &bound, 0.0);
}

/// P(leak) = min(1, leakage × pressure × exp(−retention × d)): 0.3 × 1.5 = 0.45 without a coupon;
/// 0.45 × exp(−3 × 0.2) with the fixed coupon; and 1 when leakage × pressure × … exceeds 1.
#[test]
fn competitor_leakage_with_coupon_retention() {
    let leak = |leakage: f64, pressure: f64, retention: f64, coupon: bool| {
        let competitor =
            format!("\n[competitor]\npressure = {pressure}\ncoupon_retention = {retention}\n");
        let s = base_with(
            &[
                ("basket_sigma = 0.5", "basket_sigma = 0.0"),
                (
                    "price_sensitivity = 0.0",
                    &format!("price_sensitivity = 0.0\ncompetitor_leakage = {leakage}"),
                ),
            ],
            &(competitor + if coupon { FIXED_COUPON } else { "" }),
        );
        simulate_many(&s, 200)
    };
    let outs = leak(0.3, 1.5, 3.0, false);
    let values = excess(&outs, Count::LeakedToCompetitor, 0.45, Count::Landed);
    assert_mean("leaked − 0.45 × landed, no coupon", &values, 0.0);
    let outs = leak(0.3, 1.5, 3.0, true);
    let p = 0.45 * (-3.0 * FIXED_D).exp();
    assert!(outs.iter().all(|o| o.count(Count::CouponOrders) > 0));
    let values = excess(&outs, Count::LeakedToCompetitor, p, Count::Landed);
    assert_mean("leaked − 0.45 e^(−0.6) × landed", &values, 0.0);
    // 1.0 × 2 × e^(−0.2) = 1.64 > 1: every landed session leaks, none decides.
    for o in leak(1.0, 2.0, 1.0, true) {
        assert_eq!(o.count(Count::LeakedToCompetitor), o.count(Count::Landed));
        assert_eq!(o.count(Count::OrderAttempts), 0);
    }
}

/// Landed sessions that did not leak.
fn deciding(o: &Outcome) -> f64 {
    count(o, Count::Landed) - count(o, Count::LeakedToCompetitor)
}

/// Without a coupon, attempts / (landed − leaked) = q = base × destination × (h5) × confidence,
/// clamped to [0, 1]: 0.2 × 1.5 × 0.8 = 0.24 with the app; × h5_conversion 0.5 = 0.12 without;
/// 0.8 × 2 = 1.6 clamps to 1.
#[test]
fn decision_without_coupon_is_q() {
    for (app, base, shop, expected) in [
        (1.0, 0.2, 1.5, 0.24),
        (0.0, 0.2, 1.5, 0.12),
        (1.0, 0.8, 2.0, 1.0),
    ] {
        let s = base_with(
            &[
                ("taobao_app = 1.0", &format!("taobao_app = {app}")),
                (
                    "base_conversion = 0.5",
                    &format!("base_conversion = {base}"),
                ),
                (
                    "price_sensitivity = 0.0",
                    "price_sensitivity = 3.0\ncompetitor_leakage = 0.2",
                ),
                ("jump_h5 = 1.0", "jump_h5 = 1.0\nh5_conversion = 0.5"),
            ],
            &format!(
                "\n[destination.shop]\nconversion_multiplier = {shop}\n\n[macro]\nconsumer_confidence = {}\n",
                if expected == 1.0 { 1.0 } else { 0.8 }
            ),
        );
        let outs = simulate_many(&s, 200);
        let values: Vec<f64> = outs
            .iter()
            .map(|o| count(o, Count::OrderAttempts) - expected * deciding(o))
            .collect();
        assert_mean(
            &format!("attempts − {expected} × (landed − leaked)"),
            &values,
            0.0,
        );
        if expected == 1.0 {
            assert!(
                values.iter().all(|&v| v == 0.0),
                "q clamped to 1 always attempts"
            );
        }
    }
}

/// q per destination and tick: shop 0.4; live room 0.4 × 1.5 = 0.6, and 0.6 × 2 = 1.2 → 1 in tick
/// 1, where an event doubles live-room conversion. Half the sessions are live-bound (no capacity).
#[test]
fn decision_by_destination_and_event() {
    let s = base_with(
        &[
            ("cpm = 10.0", "cpm = 10.0\nto_live_room = 0.5"),
            ("base_conversion = 0.5", "base_conversion = 0.4"),
        ],
        r#"
[destination.live_room]
conversion_multiplier = 1.5

[[event]]
name = "final"
start = "2023-11-10 21:00"
end = "2023-11-10 22:00"
destinations = ["live_room"]
conversion = 2.0
"#,
    );
    let outs = simulate_many(&s, 200);
    for (t, q_live) in [(0, 0.6), (1, 1.0), (2, 0.6)] {
        let live: Vec<f64> = outs
            .iter()
            .map(|o| {
                tick_count(o, t, Count::OrdersLiveRoom) as f64
                    - q_live * tick_count(o, t, Count::LiveRoomSessions) as f64
            })
            .collect();
        assert_mean(&format!("live-room orders in tick {t}"), &live, 0.0);
        let shop: Vec<f64> = outs
            .iter()
            .map(|o| {
                let shop_sessions =
                    tick_count(o, t, Count::Landed) - tick_count(o, t, Count::LiveRoomSessions);
                tick_count(o, t, Count::OrdersShop) as f64 - 0.4 * shop_sessions as f64
            })
            .collect();
        assert_mean(&format!("shop orders in tick {t}"), &shop, 0.0);
    }
}

/// With the fixed coupon (d = 0.2) and slope price_sensitivity × sensitivity_multiplier = 5 × 2,
/// P(attempt) = sigmoid(logit(0.2) + 10 × 0.2) = sigmoid(0.6137) = 0.6488.
#[test]
fn decision_with_coupon_shifts_the_logit() {
    let s = base_with(
        &[
            ("basket_sigma = 0.5", "basket_sigma = 0.0"),
            ("base_conversion = 0.5", "base_conversion = 0.2"),
            ("price_sensitivity = 0.0", "price_sensitivity = 5.0"),
        ],
        &format!("\n[macro]\nsensitivity_multiplier = 2.0\n{FIXED_COUPON}"),
    );
    let p = sigmoid(logit(0.2) + 5.0 * 2.0 * FIXED_D);
    assert!((p - 0.6488).abs() < 1e-4, "hand value {p}");
    let outs = simulate_many(&s, 200);
    for o in &outs {
        assert_eq!(o.count(Count::CouponOrders), o.count(Count::Orders));
    }
    let values = excess(&outs, Count::OrderAttempts, p, Count::Landed);
    assert_mean("attempts − sigmoid(…) × landed", &values, 0.0);
}

/// Cap 1 with ≥ 1 offered in a one-tick festival: each user has at most one session, so every
/// attempt is a first attempt. It fails with P = (1 − alipay) × (1 − alipay_setup), independently
/// from user to user.
#[test]
fn alipay_setup_on_first_attempts() {
    for alipay in [0.0, 0.5] {
        let s = base_with(
            &[
                ("end = \"2023-11-10 23:00\"", "end = \"2023-11-10 21:00\""),
                ("users = 1000", "users = 2000"),
                ("cap = 1000000", "cap = 1"),
                ("ctr = 0.1", "ctr = 0.5"),
                (
                    "impressions_per_user_day = 48.0",
                    "impressions_per_user_day = 4800.0",
                ),
                ("alipay = 1.0", &format!("alipay = {alipay}")),
                ("alipay_setup = 1.0", "alipay_setup = 0.3"),
            ],
            "",
        );
        let outs = simulate_many(&s, 100);
        for o in &outs {
            assert!(
                o.count(Count::Sessions) <= 2000,
                "one session per user at most"
            );
            let (attempts, failures) = (
                o.count(Count::OrderAttempts),
                o.count(Count::PaymentFailures),
            );
            assert_eq!(o.count(Count::Orders), attempts - failures);
            if alipay == 0.0 {
                assert_eq!(o.count(Count::AlipaySetups) + failures, attempts);
            }
        }
        let p_fail = (1.0 - alipay) * (1.0 - 0.3);
        let values = excess(&outs, Count::PaymentFailures, p_fail, Count::OrderAttempts);
        assert_mean(
            &format!("payment_failures − {p_fail} × attempts (alipay {alipay})"),
            &values,
            0.0,
        );
        // Users draw Alipay independently and attempt at most once, so given the attempts the
        // failures are Binomial(attempts, p): the excess has variance E[attempts] × p (1 − p).
        let attempts: Vec<f64> = outs
            .iter()
            .map(|o| count(o, Count::OrderAttempts))
            .collect();
        let mean_attempts = attempts.iter().sum::<f64>() / attempts.len() as f64;
        super::assert_variance(
            &format!("payment_failures − {p_fail} × attempts (alipay {alipay})"),
            &values,
            mean_attempts * p_fail * (1.0 - p_fail),
        );
        let values = excess(
            &outs,
            Count::AlipaySetups,
            (1.0 - alipay) * 0.3,
            Count::OrderAttempts,
        );
        assert_mean(
            "alipay_setups − (1 − alipay) × 0.3 × attempts",
            &values,
            0.0,
        );
    }
}

/// One user without Alipay with ~150 attempts per replication: failures until the first set-up
/// are Geometric with mean (1 − s) / s = 0.7 / 0.3; after it every attempt pays, this tick's too
/// (P(no set-up in the first 50 attempts) = 0.7^50 ≈ 2e-8).
#[test]
fn alipay_set_up_lasts_for_every_later_session() {
    let s = base_with(
        &[
            ("users = 1000", "users = 1"),
            ("ctr = 0.1", "ctr = 1.0"),
            (
                "impressions_per_user_day = 48.0",
                "impressions_per_user_day = 2400.0",
            ),
            ("alipay = 1.0", "alipay = 0.0"),
            ("alipay_setup = 1.0", "alipay_setup = 0.3"),
        ],
        "",
    );
    let outs = simulate_many(&s, 2000);
    for o in &outs {
        assert!(o.count(Count::OrderAttempts) >= 50);
        assert_eq!(o.count(Count::AlipaySetups), 1);
        assert_eq!(
            o.count(Count::Orders),
            o.count(Count::OrderAttempts) - o.count(Count::PaymentFailures)
        );
    }
    let failures: Vec<f64> = outs
        .iter()
        .map(|o| count(o, Count::PaymentFailures))
        .collect();
    assert_mean("payment failures before the set-up", &failures, 0.7 / 0.3);
}

/// Many sessions per user: each attempt of a user still without Alipay fails with P = 1 − s
/// whatever came before, so failures − (1 − s) × (set-ups + failures) has mean 0 (a martingale).
#[test]
fn alipay_failures_among_repeat_attempts() {
    let s = base_with(
        &[
            ("ctr = 0.1", "ctr = 0.5"),
            ("alipay = 1.0", "alipay = 0.0"),
            ("alipay_setup = 1.0", "alipay_setup = 0.3"),
        ],
        "",
    );
    let outs = simulate_many(&s, 200);
    for o in &outs {
        assert!(
            o.count(Count::AlipaySetups) <= 1000,
            "at most one set-up per user"
        );
    }
    let values: Vec<f64> = outs
        .iter()
        .map(|o| {
            let failures = count(o, Count::PaymentFailures);
            failures - 0.7 * (failures + count(o, Count::AlipaySetups))
        })
        .collect();
    assert_mean("failures − 0.7 × attempts without Alipay", &values, 0.0);
}

/// payment_interop = true: no user needs Alipay, so nothing fails and nobody sets it up.
#[test]
fn payment_interop_pays_every_attempt() {
    let s = base_with(
        &[
            ("alipay = 1.0", "alipay = 0.0"),
            (
                "alipay_setup = 1.0",
                "alipay_setup = 0.3\npayment_interop = true",
            ),
        ],
        "",
    );
    for o in simulate_many(&s, 50) {
        assert_eq!(o.count(Count::PaymentFailures), 0);
        assert_eq!(o.count(Count::AlipaySetups), 0);
        assert_eq!(o.count(Count::Orders), o.count(Count::OrderAttempts));
        assert!(o.count(Count::Orders) > 0);
    }
}
