//! Steps 1–2: Poisson exposure with its multipliers, the daily frequency cap and fatigue.

use d11sim::engine::{Count, Funnel};

use super::{assert_mean, base_with, count, simulate_many, tick_count};

/// A second placement, at half the first one's daily rate.
const MOMENTS: &str = r#"
[[placement]]
name = "moments"
impressions_per_user_day = 24.0
ctr = 0.1
cpm = 10.0
owner = "tencent"
"#;

/// 30-minute ticks from 22:00 to 01:00 (six ticks, over midnight), two segments of 500 users, a
/// reach multiplier, an intraday profile, a calendar window and an impressions event.
fn exposure_scenario() -> d11sim::scenario::Scenario {
    let extra = format!(
        r#"{MOMENTS}
[[segment]]
name = "plain"
share = 0.5
taobao_app = 1.0
alipay = 1.0
base_conversion = 0.5
price_sensitivity = 0.0
basket_median = 100.0
basket_sigma = 0.5

[calendar]
intraday = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4]

[[calendar.window]]
start = "2023-11-10 23:00"
end = "2023-11-11 00:30"
traffic = 1.5

[[event]]
name = "final"
start = "2023-11-10 22:30"
end = "2023-11-10 23:30"
placements = ["moments"]
impressions = 3.0
"#
    );
    base_with(
        &[
            (
                "start = \"2023-11-10 20:00\"",
                "start = \"2023-11-10 22:00\"",
            ),
            ("end = \"2023-11-10 23:00\"", "end = \"2023-11-11 01:00\""),
            ("tick_minutes = 60", "tick_minutes = 30"),
            ("share = 1.0", "share = 0.5"),
            (
                "basket_sigma = 0.5",
                "basket_sigma = 0.5\nreach = { moments = 0.5 }",
            ),
        ],
        &extra,
    )
}

/// Expected impressions offered per tick and placement of `exposure_scenario`, by hand:
/// intraday weights average (22 × 1 + 2 + 4) / 24 = 7/6, so traffic is 2/(7/6) = 12/7 at 22:xx,
/// 24/7 at 23:xx and 6/7 at 00:xx, times 1.5 in the window's ticks 23:00, 23:30, 00:00. With
/// 30-minute ticks λ = per_day × reach × traffic × event / 48. Channels: 48/48 × traffic for each of
/// 1000 users. Moments: 24/48 × traffic × event, with reach 0.5 for the 500 users of `all` and 1
/// for the 500 of `plain`: 500 × 0.25 + 500 × 0.5 = 375 × traffic × event (3 at 22:30 and 23:00).
fn expected_offered() -> Vec<[f64; 2]> {
    let traffic = [
        12.0 / 7.0,
        12.0 / 7.0,
        24.0 / 7.0 * 1.5,
        24.0 / 7.0 * 1.5,
        6.0 / 7.0 * 1.5,
        6.0 / 7.0,
    ];
    let event = [1.0, 3.0, 3.0, 1.0, 1.0, 1.0];
    (0..6)
        .map(|t| [1000.0 * traffic[t], 375.0 * traffic[t] * event[t]])
        .collect()
}

#[test]
fn exposure_mean_follows_every_multiplier() {
    let s = exposure_scenario();
    let outs = simulate_many(&s, 400);
    let expected = expected_offered();
    for (t, e) in expected.iter().enumerate() {
        let values: Vec<f64> = outs
            .iter()
            .map(|o| tick_count(o, t, Count::ImpressionsOffered) as f64)
            .collect();
        assert_mean(
            &format!("impressions_offered in tick {t}"),
            &values,
            e[0] + e[1],
        );
    }
    let funnel = Funnel::of(&s);
    for p in 0..2 {
        let values: Vec<f64> = outs
            .iter()
            .map(|o| {
                (0..2)
                    .map(|g| o.funnel[funnel.index(p, g, 0, Count::ImpressionsOffered)] as f64)
                    .sum()
            })
            .collect();
        let total: f64 = expected.iter().map(|e| e[p]).sum();
        assert_mean(
            &format!("impressions_offered on placement {p}"),
            &values,
            total,
        );
    }
    // Reach: on moments, segment `all` (reach 0.5) is offered half of what `plain` is (500 users
    // each), so its share of the moments total is 1/3.
    let moments_total: f64 = expected.iter().map(|e| e[1]).sum();
    let values: Vec<f64> = outs
        .iter()
        .map(|o| o.funnel[funnel.index(1, 0, 0, Count::ImpressionsOffered)] as f64)
        .collect();
    assert_mean(
        "moments offered to segment `all`",
        &values,
        moments_total / 3.0,
    );
}

/// A sum of independent Poisson counts is Poisson: its variance equals its mean. The sample
/// variance of n normal-like values has standard error σ² × √(2 / (n − 1)).
#[test]
fn exposure_counts_are_poisson() {
    let s = exposure_scenario();
    let outs = simulate_many(&s, 400);
    let mean: f64 = expected_offered().iter().map(|e| e[0] + e[1]).sum();
    let values: Vec<f64> = outs
        .iter()
        .map(|o| count(o, Count::ImpressionsOffered))
        .collect();
    super::assert_variance("impressions_offered", &values, mean);
}

/// With 200 offered impressions per placement-hour the cap is always reached in the first tick
/// of a day (P(Poisson(300) < 3) < 1e-120), so exactly `cap` are served per user and local day:
/// the festival 20:00–04:00 spans midnight and serves 2 × cap, in ticks 0 and 4 only. With
/// 20-minute ticks from 23:00 to 01:00, the reset is at tick 3.
#[test]
fn frequency_cap_serves_cap_per_user_day_and_resets_at_midnight() {
    const CAP: u64 = 3;
    const USERS: u64 = 200;
    for (tick_minutes, start, end, reset) in [
        (60, "2023-11-10 20:00", "2023-11-11 04:00", 4),
        (20, "2023-11-10 23:00", "2023-11-11 01:00", 3),
    ] {
        let per_day = 200.0 * 24.0;
        let s = base_with(
            &[
                (
                    "tick_minutes = 60",
                    &format!("tick_minutes = {tick_minutes}"),
                ),
                (
                    "start = \"2023-11-10 20:00\"",
                    &format!("start = \"{start}\""),
                ),
                ("end = \"2023-11-10 23:00\"", &format!("end = \"{end}\"")),
                ("users = 1000", &format!("users = {USERS}")),
                ("cap = 1000000", &format!("cap = {CAP}")),
                (
                    "impressions_per_user_day = 48.0",
                    &format!(
                        "impressions_per_user_day = {}",
                        per_day * 60.0 / f64::from(tick_minutes)
                    ),
                ),
            ],
            &MOMENTS.replace(
                "24.0",
                &format!("{}", per_day / 2.0 * 60.0 / f64::from(tick_minutes)),
            ),
        );
        let outs = simulate_many(&s, 20);
        for o in &outs {
            assert_eq!(
                o.count(Count::Impressions),
                2 * CAP * USERS,
                "two days of cap"
            );
            for t in 0..s.ticks() {
                let want = if t == 0 || t == reset { CAP * USERS } else { 0 };
                assert_eq!(
                    tick_count(o, t, Count::Impressions),
                    want,
                    "impressions served in tick {t} ({tick_minutes}-minute ticks)"
                );
            }
        }
        // Served impressions are the first ones of a uniformly random order of the offered ones,
        // so channels (twice moments' rate) gets 2/3 of them in expectation: conditionally on N
        // offered, the channels count is Binomial(N, 2/3).
        let funnel = Funnel::of(&s);
        let values: Vec<f64> = outs
            .iter()
            .map(|o| o.funnel[funnel.index(0, 0, 0, Count::Impressions)] as f64)
            .collect();
        assert_mean(
            "impressions served on channels",
            &values,
            2.0 / 3.0 * (2 * CAP * USERS) as f64,
        );
    }
}

/// Cap 2 with always ≥ 2 offered in a one-tick festival: each user is served exactly impressions
/// k = 0 and k = 1, clicked with ctr and min(1, ctr × fatigue), so clicks per user-day =
/// ctr × (1 + fatigue) (or ctr + 1 when the fatigued CTR passes 1).
#[test]
fn fatigue_multiplies_the_ctr_of_later_impressions() {
    const USERS: f64 = 2000.0;
    for (ctr, fatigue, per_user) in [(0.1, 0.5, 0.1 * 1.5), (0.6, 2.0, 0.6 + 1.0)] {
        let s = base_with(
            &[
                ("end = \"2023-11-10 23:00\"", "end = \"2023-11-10 21:00\""),
                ("users = 1000", "users = 2000"),
                ("cap = 1000000", "cap = 2"),
                ("fatigue = 1.0", &format!("fatigue = {fatigue}")),
                ("ctr = 0.1", &format!("ctr = {ctr}")),
                (
                    "impressions_per_user_day = 48.0",
                    "impressions_per_user_day = 4800.0",
                ),
            ],
            "",
        );
        let outs = simulate_many(&s, 40);
        for o in &outs {
            assert_eq!(o.count(Count::Impressions), 2 * 2000);
            assert_eq!(o.count(Count::Clicks), o.count(Count::Sessions));
        }
        let clicks: Vec<f64> = outs.iter().map(|o| count(o, Count::Clicks)).collect();
        assert_mean(
            &format!("clicks with ctr {ctr}, fatigue {fatigue}"),
            &clicks,
            USERS * per_user,
        );
    }
}

/// Event and segment CTR multipliers: with `ctr_multiplier = 2` and an event multiplying CTR by
/// 1.5 in the second of three ticks, clicks per impression are 0.1 × 2 = 0.2, and 0.3 in tick 1.
#[test]
fn ctr_multipliers_of_segment_and_event() {
    let s = base_with(
        &[(
            "basket_sigma = 0.5",
            "basket_sigma = 0.5\nctr_multiplier = 2.0",
        )],
        r#"
[[event]]
name = "boost"
start = "2023-11-10 21:00"
end = "2023-11-10 22:00"
ctr = 1.5
"#,
    );
    let outs = simulate_many(&s, 200);
    for (t, p) in [(0, 0.2), (1, 0.3), (2, 0.2)] {
        let values: Vec<f64> = outs
            .iter()
            .map(|o| {
                tick_count(o, t, Count::Clicks) as f64
                    - p * tick_count(o, t, Count::Impressions) as f64
            })
            .collect();
        assert_mean(
            &format!("clicks − {p} × impressions in tick {t}"),
            &values,
            0.0,
        );
    }
}
