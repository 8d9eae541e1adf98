//! Budgets never overrun and the funnel adds up: properties over random valid scenarios built
//! from `tests/data/tiny.toml` (random budgets, including 0 and a few units, pacings, funder caps,
//! discounts, boosts, capacities, populations up to 300 users and up to 12 ticks).

use d11sim::engine::{Count, Engine, FUNNEL_DESTINATIONS, Funnel, Outcome, Plan};
use d11sim::scenario::{ProgramKind, Scenario};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::RngSeed;

use super::{edit, load};

const TINY: &str = include_str!("../data/tiny.toml");
/// Cases per property: each runs two replications of a scenario of ≤ 300 users × ≤ 12 ticks.
const CASES: u32 = 64;
/// Fixed seed of the scenario generator, so that a failure reproduces.
const GENERATOR_SEED: u64 = 1111;

/// A budget or cap in yuan: 0, a few units (1/100,000 yuan each; less than one impression), a
/// few dozen impressions (0–5 yuan), small, or large.
fn money() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        (1u32..1000).prop_map(|units| f64::from(units) / 100_000.0),
        0.0..5.0,
        5.0..100.0,
        100.0..3000.0,
    ]
}

fn pacing() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("asap"), Just("even"), Just("traffic")]
}

/// What varies between cases.
#[derive(Debug, Clone)]
struct Knobs {
    users: u32,
    tick_minutes: u32,
    budgets: [f64; 4],
    pacings: [&'static str; 4],
    caps: [Option<f64>; 2],
    discounts: [f64; 2],
    boosts: [f64; 2],
    /// Tenths of each program's charge paid by alibaba (the rest by tencent).
    alibaba_tenths: [u32; 4],
    capacity: u32,
    frequency_cap: u32,
    ctr_scale: f64,
    conversion_scale: f64,
    seed: u64,
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        (1u32..=300, prop_oneof![Just(30u32), Just(60u32)]),
        [money(), money(), money(), money()],
        [pacing(), pacing(), pacing(), pacing()],
        [proptest::option::of(money()), proptest::option::of(money())],
        (0.01..149.0, 0.01..49.0),
        [0.0..20.0, 0.0..20.0],
        [0u32..=10, 0u32..=10, 0u32..=10, 0u32..=10],
        (0u32..12, 1u32..8, 1.0..10.0, 1.0..8.0, any::<u64>()),
    )
        .prop_map(
            |((users, tick_minutes), budgets, pacings, caps, d, boosts, tenths, rest)| Knobs {
                users,
                tick_minutes,
                budgets,
                pacings,
                caps,
                discounts: [d.0, d.1],
                boosts,
                alibaba_tenths: tenths,
                capacity: rest.0,
                frequency_cap: rest.1,
                ctr_scale: rest.2,
                conversion_scale: rest.3,
                seed: rest.4,
            },
        )
}

fn funded_by(tenths: u32) -> String {
    format!(
        "funded_by = {{ alibaba = {:.1}, tencent = {:.1} }}",
        f64::from(tenths) / 10.0,
        f64::from(10 - tenths) / 10.0
    )
}

fn cap_line(cap: Option<f64>) -> String {
    cap.map_or(String::new(), |c| format!("cap = {c:.5}"))
}

/// tiny.toml with the knobs applied and two more programs: a windowed coupon for one segment and
/// a traffic program on moments.
fn scenario_of(k: &Knobs) -> Scenario {
    let b = |j: usize| format!("budget = {:.5}", k.budgets[j]);
    let p = |j: usize| format!("pacing = \"{}\"", k.pacings[j]);
    let text = edit(
        TINY,
        &[
            ("users = 500", &format!("users = {}", k.users)),
            (
                "tick_minutes = 60",
                &format!("tick_minutes = {}", k.tick_minutes),
            ),
            ("ctr = 0.05", &format!("ctr = {:.5}", 0.05 * k.ctr_scale)),
            ("ctr = 0.03", &format!("ctr = {:.5}", 0.03 * k.ctr_scale)),
            ("cap = 3", &format!("cap = {}", k.frequency_cap)),
            (
                "base_conversion = 0.1",
                &format!("base_conversion = {:.5}", 0.1 * k.conversion_scale),
            ),
            (
                "base_conversion = 0.05",
                &format!("base_conversion = {:.5}", 0.05 * k.conversion_scale),
            ),
            (
                "capacity_per_tick = 5",
                &format!("capacity_per_tick = {}", k.capacity),
            ),
            (
                "take_rate = 0.039",
                &format!("take_rate = 0.039\n{}", cap_line(k.caps[0])),
            ),
            ("cap = 40.0", &cap_line(k.caps[1])),
            ("budget = 300.0", &b(0)),
            ("pacing = \"even\"", &p(0)),
            (
                "discount = 20.0",
                &format!("discount = {:.5}", k.discounts[0]),
            ),
            (
                "funded_by = { alibaba = 0.7, tencent = 0.3 }",
                &funded_by(k.alibaba_tenths[0]),
            ),
            ("budget = 20.0", &format!("{}\n{}", b(1), p(1))),
            (
                "funded_by = { alibaba = 0.5, tencent = 0.5 }",
                &funded_by(k.alibaba_tenths[1]),
            ),
            (
                "max_boost = 1.0",
                &format!("max_boost = {:.5}", k.boosts[0]),
            ),
        ],
    );
    let extra = format!(
        r#"
[[program]]
name = "late_coupon"
kind = "coupon"
{}
{}
{}
start = "2023-11-10 22:00"
end = "2023-11-11 01:00"
threshold = 50.0
discount = {:.5}
per_user_limit = 2
segments = ["urban"]
topup_from = 0.5
topup = 0.5

[[program]]
name = "moments_boost"
kind = "traffic"
{}
{}
{}
placement = "moments"
max_boost = {:.5}
"#,
        b(2),
        funded_by(k.alibaba_tenths[2]),
        p(2),
        k.discounts[1],
        b(3),
        funded_by(k.alibaba_tenths[3]),
        p(3),
        k.boosts[1],
    );
    load(&(text + &extra))
}

/// Budgets, allowances, funder caps, the spend identities and exhaustion, in units.
fn check_budgets(s: &Scenario, plan: &Plan, o: &Outcome) {
    let ticks = s.ticks();
    assert_eq!(o.remaining.len(), ticks);
    for (j, program) in s.programs.iter().enumerate() {
        let budget = program.budget;
        assert!(
            o.program_spend[j] <= u128::from(budget),
            "{}: spent {} of budget {budget}",
            program.name,
            o.program_spend[j]
        );
        for t in 0..ticks {
            let left = o.remaining[t][j];
            assert!(left <= budget);
            assert!(
                budget - left <= plan.allowance[j][t],
                "{}: spent {} by the end of tick {t}, allowance {}",
                program.name,
                budget - left,
                plan.allowance[j][t]
            );
            if t > 0 {
                assert!(left <= o.remaining[t - 1][j], "spend never goes back");
            }
        }
        assert_eq!(
            u128::from(budget - o.remaining[ticks - 1][j]),
            o.program_spend[j]
        );
        check_exhaustion(s, plan, o, j);
    }
    for (f, funder) in s.funders.iter().enumerate() {
        if let Some(cap) = funder.cap {
            assert!(
                o.funder_spend[f] <= u128::from(cap),
                "{}: spent {} over its cap {cap}",
                funder.name,
                o.funder_spend[f]
            );
        }
    }
    let funders: u128 = o.funder_spend.iter().sum();
    let programs: u128 = o.program_spend.iter().sum();
    assert_eq!(funders, programs, "Σ funder spend = Σ program spend");
    assert_eq!(programs, o.totals.discount + o.totals.traffic_spend);
    let of_kind = |coupon: bool| -> u128 {
        (0..s.programs.len())
            .filter(|&j| s.programs[j].coupon().is_some() == coupon)
            .map(|j| o.program_spend[j])
            .sum()
    };
    assert_eq!(
        of_kind(true),
        o.totals.discount,
        "discount = coupon programs' spend"
    );
    assert_eq!(of_kind(false), o.totals.traffic_spend);
    check_spend_per_tick(s, o);
    check_traffic_spend(s, plan, o);
}

/// Each tick's discount + traffic spend is the drop of the programs' remaining budgets.
fn check_spend_per_tick(s: &Scenario, o: &Outcome) {
    for t in 0..s.ticks() {
        let drop: u128 = (0..s.programs.len())
            .map(|j| {
                let before = if t == 0 {
                    s.programs[j].budget
                } else {
                    o.remaining[t - 1][j]
                };
                u128::from(before - o.remaining[t][j])
            })
            .sum();
        let spent = o.per_tick[t].discount + o.per_tick[t].traffic_spend;
        assert_eq!(
            drop, spent,
            "tick {t}: remaining budgets drop by the tick's spend"
        );
    }
}

/// Each traffic program buys one placement here, so its spend is its placement's boosted
/// impressions served × the impression cost.
fn check_traffic_spend(s: &Scenario, plan: &Plan, o: &Outcome) {
    let funnel = Funnel::of(s);
    for (j, program) in s.programs.iter().enumerate() {
        let ProgramKind::Traffic(buy) = &program.kind else {
            continue;
        };
        let served: u64 = (0..s.segments.len())
            .map(|g| o.funnel[funnel.index(buy.placement, g, 0, Count::BoostedImpressions)])
            .sum();
        assert_eq!(
            o.program_spend[j],
            u128::from(served) * u128::from(plan.charge[j]),
            "{}: spend = boosted impressions × cost",
            program.name
        );
    }
}

/// Exhausted at the end of tick t: remaining < one charge from t on, and not before.
fn check_exhaustion(s: &Scenario, plan: &Plan, o: &Outcome, j: usize) {
    let charge = plan.charge[j];
    let first_short = (0..s.ticks()).find(|&t| o.remaining[t][j] < charge);
    assert_eq!(
        o.exhausted_tick[j],
        first_short,
        "{}: exhausted tick vs remaining {:?} (charge {charge})",
        s.programs[j].name,
        o.remaining.iter().map(|r| r[j]).collect::<Vec<_>>()
    );
}

/// The funnel identities of one set of counts (a replication's totals or one tick's).
fn check_identities(c: &[u64; Count::N], what: &str) {
    let n = |x: Count| c[x as usize];
    let ok = [
        (
            "impressions ≤ offered",
            n(Count::Impressions) <= n(Count::ImpressionsOffered),
        ),
        (
            "boosted ≤ impressions",
            n(Count::BoostedImpressions) <= n(Count::Impressions),
        ),
        ("clicks = sessions", n(Count::Clicks) == n(Count::Sessions)),
        (
            "landed + jump_failures = sessions",
            n(Count::Landed) + n(Count::JumpFailures) == n(Count::Sessions),
        ),
        (
            "live room outcomes ≤ landed",
            n(Count::LiveRoomSessions) + n(Count::LiveRoomOverflow) + n(Count::LiveRoomClosed)
                <= n(Count::Landed),
        ),
        (
            "attempts ≤ landed − leaked",
            n(Count::OrderAttempts) + n(Count::LeakedToCompetitor) <= n(Count::Landed),
        ),
        (
            "orders ≤ attempts",
            n(Count::Orders) <= n(Count::OrderAttempts),
        ),
        (
            "attempts = orders + payment_failures",
            n(Count::OrderAttempts) == n(Count::Orders) + n(Count::PaymentFailures),
        ),
        (
            "orders = shop + live room",
            n(Count::Orders) == n(Count::OrdersShop) + n(Count::OrdersLiveRoom),
        ),
        (
            "coupon_orders ≤ orders",
            n(Count::CouponOrders) <= n(Count::Orders),
        ),
        (
            "alipay_setups ≤ orders",
            n(Count::AlipaySetups) <= n(Count::Orders),
        ),
        (
            "live-room orders ≤ live-room sessions",
            n(Count::OrdersLiveRoom) <= n(Count::LiveRoomSessions),
        ),
    ];
    for (name, holds) in ok {
        assert!(holds, "{what}: {name} fails in {c:?}");
    }
}

/// Per tick and in total, the identities; ticks and funnel cells sum to the totals.
fn check_funnel(s: &Scenario, o: &Outcome) {
    check_identities(&o.totals.counts, "totals");
    let mut sum = [0u64; Count::N];
    for (t, tick) in o.per_tick.iter().enumerate() {
        check_identities(&tick.counts, &format!("tick {t}"));
        for (a, b) in sum.iter_mut().zip(&tick.counts) {
            *a += b;
        }
    }
    assert_eq!(sum, o.totals.counts, "ticks sum to the totals");
    let money =
        |f: fn(&d11sim::engine::TickTotals) -> u128| -> u128 { o.per_tick.iter().map(f).sum() };
    assert_eq!(money(|t| t.gmv), o.totals.gmv);
    assert_eq!(money(|t| t.discount), o.totals.discount);
    assert_eq!(money(|t| t.traffic_spend), o.totals.traffic_spend);
    let funnel = Funnel::of(s);
    assert_eq!(o.funnel.len(), funnel.len());
    for c in Count::ALL {
        let mut cells = 0;
        for p in 0..s.placements.len() {
            for g in 0..s.segments.len() {
                for d in 0..FUNNEL_DESTINATIONS.len() {
                    let v = o.funnel[funnel.index(p, g, d, c)];
                    if c.before_landing() != (d == 0) {
                        assert_eq!(v, 0, "{} in destination column {d}", c.name());
                    }
                    cells += v;
                }
            }
        }
        assert_eq!(
            cells,
            o.count(c),
            "funnel cells of {} sum to the total",
            c.name()
        );
    }
    assert_eq!(o.funnel_gmv.iter().sum::<u128>(), o.totals.gmv);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(GENERATOR_SEED),
        ..ProptestConfig::default()
    })]

    #[test]
    fn budgets_never_overrun_and_the_funnel_adds_up(k in knobs()) {
        let s = scenario_of(&k);
        let plan = Plan::new(&s);
        for engine in [Engine::Agents, Engine::Cohorts] {
            for replication in 1..=2 {
                let o = engine.simulate(&plan, k.seed, replication);
                check_budgets(&s, &plan, &o);
                check_funnel(&s, &o);
            }
        }
    }
}

/// The generator reaches the interesting cases: some programs run dry, some spend nothing.
#[test]
fn generated_scenarios_exhaust_budgets_and_bind_caps() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        rng_seed: RngSeed::Fixed(GENERATOR_SEED),
        ..ProptestConfig::default()
    });
    let (mut exhausted_mid_run, mut coupons_spent, mut boosts_spent) = (0, 0, 0);
    for _ in 0..CASES {
        let k = knobs().new_tree(&mut runner).expect("a case").current();
        let s = scenario_of(&k);
        let o = Engine::Agents.simulate(&Plan::new(&s), k.seed, 1);
        exhausted_mid_run += o
            .exhausted_tick
            .iter()
            .filter(|e| e.is_some_and(|t| t > 0))
            .count();
        coupons_spent += usize::from(o.totals.discount > 0);
        boosts_spent += usize::from(o.totals.traffic_spend > 0);
    }
    assert!(
        exhausted_mid_run >= 5 && coupons_spent >= 5 && boosts_spent >= 5,
        "exhausted after tick 0: {exhausted_mid_run}, with discounts: {coupons_spent}, with \
         traffic spend: {boosts_spent} of {CASES} cases"
    );
}

/// A funder cap shared by two traffic programs in one tick: the first reserves what the cap can
/// pay (1 yuan = 100 channels impressions at cpm 10), so the second, listed after it, can reserve
/// nothing (MODEL.md, *Budgets*: "after the reservations of the programs before it"). With no
/// frequency cap every kept impression is served, so tencent spends its cap exactly. Held back
/// only by the cap, neither program is exhausted.
#[test]
fn a_funder_cap_binds_across_traffic_programs_in_one_tick() {
    let s = super::base_with(
        &[
            ("users = 1000", "users = 300"),
            ("name = \"tencent\"", "name = \"tencent\"\ncap = 1.0"),
        ],
        r#"
[[placement]]
name = "moments"
impressions_per_user_day = 48.0
ctr = 0.1
cpm = 20.0
owner = "tencent"

[[program]]
name = "boost_a"
kind = "traffic"
budget = 1000.0
funded_by = { tencent = 1.0 }
placement = "channels"
max_boost = 5.0

[[program]]
name = "boost_b"
kind = "traffic"
budget = 1000.0
funded_by = { tencent = 1.0 }
placement = "moments"
max_boost = 5.0
"#,
    );
    let plan = Plan::new(&s);
    let funnel = Funnel::of(&s);
    for replication in 1..=20 {
        let o = Engine::Agents.simulate(&plan, super::SEED, replication);
        assert_eq!(
            o.funder_spend,
            vec![0, 100_000],
            "tencent spends its cap exactly"
        );
        assert_eq!(
            o.program_spend,
            vec![100_000, 0],
            "boost_b comes second and gets nothing"
        );
        assert_eq!(o.count(Count::BoostedImpressions), 100);
        assert_eq!(
            o.funnel[funnel.index(1, 0, 0, Count::BoostedImpressions)],
            0
        );
        assert_eq!(
            o.exhausted_tick,
            vec![None, None],
            "held back by a cap, not exhausted"
        );
        check_budgets(&s, &plan, &o);
        check_funnel(&s, &o);
    }
}
