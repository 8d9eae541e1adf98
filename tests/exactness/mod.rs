//! The exactness suite: on small scenarios built so that one mechanism binds hard, the `cohorts`
//! engine must agree in distribution with the `agents` engine (the literal per-user reference) on
//! every reported metric.
//!
//! For each scenario and metric (and count of a tick or funnel cell): the means agree within 5
//! combined standard errors; a metric that is constant on both engines is the same constant on
//! both (one that is constant on one engine only is tested instead: were the other's departures
//! from that value rare enough to be missed by chance, Fisher's exact test); and two two-sample
//! tests pass with
//! a Holm–Bonferroni correction over the scenario's metrics at family level 10^-3: Kolmogorov–
//! Smirnov on the distributions (conservative on discrete counts, so a correct engine fails even
//! more rarely) and Brown–Forsythe on the spreads (KS has little power against a spread that is
//! wrong by 10–20% when the centre is right, as sums of wrongly correlated baskets are). Seeds are
//! fixed; never re-seed to pass.
//!
//! Besides the reported metrics, every count of every tick and funnel cell is compared
//! (`D11SIM_EXACT_DETAIL=0` compares the metrics alone). `D11SIM_EXACT_REPS=N` runs N
//! replications per engine instead of the default 2,000 (a larger version:
//! `D11SIM_EXACT_REPS=20000 cargo test --release --test tests exactness`). Beside the small
//! scenarios, an ignored test compares the engines on the national default itself, scaled to
//! 100,000 users ([`national_default_scaled`]).

mod random;

use d11sim::engine::{Count, Engine, FUNNEL_DESTINATIONS, Funnel, Paired, run_replications};
use d11sim::results::{Layout, Record};
use d11sim::scenario::{Scenario, load_file};

use crate::common;

/// Replications per engine unless `D11SIM_EXACT_REPS` says otherwise: 2,000, where comparing
/// every tick and funnel cell (see [`detail`]) catches a fault that made some several-session
/// users share their draws (variances of a tick's session outcomes 15–22% too large; 1,000 did
/// not, nor did the totals alone at 5,000).
const DEFAULT_REPS: u64 = 2_000;
/// Family-wise error level of the KS tests of one scenario.
const FAMILY_LEVEL: f64 = 1e-3;
/// Means must agree within this many combined standard errors.
const MEAN_TOLERANCE_SE: f64 = 5.0;
/// Seed of the suite (fixed).
const SEED: u64 = 20_231_111;

fn reps() -> u64 {
    env_count("D11SIM_EXACT_REPS", DEFAULT_REPS)
}

/// The count an environment variable gives, or `default` if it is unset or not a count.
fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An exactness scenario of `tests/data/exact/`.
fn exact(file: &str) -> Scenario {
    load_file(&common::data(&format!("exact/{file}")))
        .expect("valid scenario")
        .0
}

/// Per-metric values of every replication: `[metric][replication]` (`None` where absent).
fn metric_columns(
    engine: Engine,
    scenario: &Scenario,
    n: u64,
) -> (Vec<String>, Vec<Vec<Option<f64>>>) {
    let layout = Layout::of(scenario);
    let paired = run_replications(engine, scenario, SEED, 1..=n, &|| {});
    let records: Vec<Record> = paired.iter().map(|p| Record::of(scenario, p)).collect();
    let mut names = layout.metrics.clone();
    let mut columns: Vec<Vec<Option<f64>>> = (0..layout.metrics.len())
        .map(|i| records.iter().map(|r| r.metrics[i]).collect())
        .collect();
    if detail() {
        for (name, column) in detail_columns(scenario, &paired) {
            names.push(name);
            columns.push(column.into_iter().map(Some).collect());
        }
    }
    (names, columns)
}

/// Whether every count of every tick and funnel cell is compared too, as well as the reported
/// metrics (unless `D11SIM_EXACT_DETAIL=0`): a fault that lives in a few ticks, or whose effects
/// cancel over the festival, can hide in the totals. The family grows to a few hundred metrics
/// a scenario, so Holm's thresholds fall by as much; the replications make up for it.
fn detail() -> bool {
    std::env::var_os("D11SIM_EXACT_DETAIL").is_none_or(|v| v != "0")
}

/// The scenario run's counts per tick (`tick3.orders`) and per funnel cell
/// (`funnel.channels.urban.shop.orders`), one column each, in replication order.
fn detail_columns(scenario: &Scenario, paired: &[Paired]) -> Vec<(String, Vec<f64>)> {
    let funnel = Funnel::of(scenario);
    let mut out = Vec::new();
    for t in 0..scenario.ticks() {
        for c in Count::ALL {
            let column = paired
                .iter()
                .map(|p| p.scenario.per_tick[t].counts[c as usize] as f64)
                .collect();
            out.push((format!("tick{t}.{}", c.name()), column));
        }
    }
    for (p, placement) in scenario.placements.iter().enumerate() {
        for (g, segment) in scenario.segments.iter().enumerate() {
            for (d, destination) in FUNNEL_DESTINATIONS.iter().enumerate() {
                for c in Count::ALL {
                    let at = funnel.index(p, g, d, c);
                    let column = paired
                        .iter()
                        .map(|x| x.scenario.funnel[at] as f64)
                        .collect();
                    let name = [&placement.name, &segment.name, *destination, c.name()].join(".");
                    out.push((format!("funnel.{name}"), column));
                }
            }
        }
    }
    out
}

/// Asymptotic p-value of the two-sample KS statistic `d` (Numerical Recipes' `probks` with the
/// Stephens small-sample correction).
fn ks_p_value(d: f64, n: usize, m: usize) -> f64 {
    let ne = (n * m) as f64 / (n + m) as f64;
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let term = 2.0 * (-1f64).powi(k - 1) * (-2.0 * f64::from(k * k) * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
}

/// The two-sample KS statistic: the largest gap between the empirical CDFs.
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Two-sided p-value of the Brown–Forsythe test of equal spread: Student's t test (pooled, n + m −
/// 2 degrees of freedom) on the absolute deviations of each sample from its own median, which is
/// robust to the skewed and discrete laws of counts, unlike the F test of variances.
fn brown_forsythe_p_value(a: &[f64], b: &[f64]) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let deviations = |x: &[f64]| -> Vec<f64> {
        let mut sorted = x.to_vec();
        sorted.sort_by(f64::total_cmp);
        let k = sorted.len();
        let median = if k % 2 == 1 {
            sorted[k / 2]
        } else {
            0.5 * (sorted[k / 2 - 1] + sorted[k / 2])
        };
        x.iter().map(|v| (v - median).abs()).collect()
    };
    let (da, db) = (deviations(a), deviations(b));
    let ((ma, va), (mb, vb)) = (mean_var(&da), mean_var(&db));
    let (n, m) = (da.len() as f64, db.len() as f64);
    let pooled = ((n - 1.0) * va + (m - 1.0) * vb) / (n + m - 2.0);
    if pooled == 0.0 {
        return if ma == mb { 1.0 } else { 0.0 };
    }
    let t = (ma - mb) / (pooled * (1.0 / n + 1.0 / m)).sqrt();
    let law = StudentsT::new(0.0, 1.0, n + m - 2.0).expect("positive degrees of freedom");
    2.0 * law.sf(t.abs())
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1).max(1) as f64;
    (m, v)
}

/// Two-sided p-value of Fisher's exact test that the chance of a value other than `value` is the
/// same in a sample of `n_constant` replications that never gave one and in `other`, which gave
/// K: given K departures in all, the chance that none fell in the first sample is
/// C(n_other, K) / C(n_constant + n_other, K) under the same law.
fn departures_p_value(n_constant: usize, other: &[f64], value: f64) -> f64 {
    let k = other.iter().filter(|&&x| x != value).count();
    let (n, total) = (other.len() as f64, (n_constant + other.len()) as f64);
    let none_in_first: f64 = (0..k)
        .map(|i| (n - i as f64) / (total - i as f64))
        .product();
    (2.0 * none_in_first).min(1.0)
}

/// Whether a metric is a scenario-minus-baseline difference (its spread depends on the coupling).
fn is_paired(metric: &str) -> bool {
    metric.starts_with("incremental_") || metric.starts_with("return.")
}

/// `iroi` per replication is incremental GMV over the scenario's subsidy spend: a ratio whose
/// numerator holds the baseline's GMV and whose denominator the scenario's spend, so even its mean
/// depends on how an engine couples the two runs (E[baseline GMV / spend] involves their joint
/// law), and where the spend can be small it is heavy-tailed. The model fixes only its summary,
/// the ratio of the means, whose two terms (`incremental_gmv`, `subsidy_spend`) are compared.
const COUPLING_DEPENDENT: &str = "iroi";

/// Compares both engines on one scenario (`file` names it in the failures); returns the
/// failures, one line each.
fn compare_engines(file: &str, scenario: &Scenario) -> Vec<String> {
    compare_engines_over(file, scenario, reps())
}

/// [`compare_engines`] over `n` replications per engine.
fn compare_engines_over(file: &str, scenario: &Scenario, n: u64) -> Vec<String> {
    let (names, agents) = metric_columns(Engine::Agents, scenario, n);
    let (_, cohorts) = metric_columns(Engine::Cohorts, scenario, n);
    let mut failures = Vec::new();
    let mut p_values: Vec<(f64, &str, &str)> = Vec::new();
    for (k, name) in names.iter().enumerate() {
        if name == COUPLING_DEPENDENT {
            continue;
        }
        let a: Vec<f64> = agents[k].iter().flatten().copied().collect();
        let c: Vec<f64> = cohorts[k].iter().flatten().copied().collect();
        if a.len() < 2 || c.len() < 2 {
            continue;
        }
        let ((ma, va), (mc, vc)) = (mean_var(&a), mean_var(&c));
        // Constant means every value equal, tested exactly (a mean of equal values can differ
        // from them in its last bit).
        let constant = |x: &[f64]| x.iter().all(|&v| v == x[0]);
        let (a_constant, c_constant) = (constant(&a), constant(&c));
        if a_constant && c_constant {
            if a[0] != c[0] {
                failures.push(format!(
                    "{file}: {name}: constant on both engines, {} (agents) and {} (cohorts)",
                    a[0], c[0]
                ));
            }
            continue;
        }
        if (a_constant || c_constant) && !is_paired(name) {
            // One engine always gave the same value: are the other's departures from it rare
            // enough to have been missed by chance?
            let (constant, other) = if a_constant { (&a, &c) } else { (&c, &a) };
            let p = departures_p_value(constant.len(), other, constant[0]);
            p_values.push((p, name, "departures from a constant"));
            continue;
        }
        let se = (va / a.len() as f64 + vc / c.len() as f64).sqrt();
        if (ma - mc).abs() > MEAN_TOLERANCE_SE * se {
            failures.push(format!(
                "{file}: {name}: means differ by {:.1} SE (agents {ma}, cohorts {mc})",
                (ma - mc).abs() / se
            ));
        }
        if !is_paired(name) {
            let ks = ks_p_value(ks_statistic(&a, &c), a.len(), c.len());
            p_values.push((ks, name, "KS"));
            p_values.push((
                brown_forsythe_p_value(&a, &c),
                name,
                "Brown–Forsythe spread",
            ));
        }
    }
    // Holm–Bonferroni: the i-th smallest p-value is compared with level / (m − i).
    p_values.sort_by(|x, y| x.0.total_cmp(&y.0));
    let m = p_values.len();
    for (i, (p, name, test)) in p_values.iter().enumerate() {
        if *p > FAMILY_LEVEL / (m - i) as f64 {
            break;
        }
        failures.push(format!(
            "{file}: {name}: {test} p = {p:.2e} rejects (Holm step {i} of {m})"
        ));
    }
    failures
}

fn check(file: &str) {
    let failures = compare_engines(file, &exact(file));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random scenarios (`random.rs`), each its own family of tests at level 10^-3.
#[test]
fn random_scenarios() {
    let failures: Vec<String> = random::indices()
        .into_iter()
        .flat_map(|k| compare_engines(&format!("random{k}.toml"), &random::scenario(k)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Users of [`national_default_scaled`] unless `D11SIM_NATIONAL_USERS` says otherwise.
const NATIONAL_USERS: u64 = 100_000;
/// Its replications per engine unless `D11SIM_EXACT_REPS` says otherwise: the `agents` engine
/// takes a few seconds a replication at 100,000 users.
const NATIONAL_REPS: u64 = 200;

/// The built-in national default, every mechanism at once at its own settings (436 ticks, every
/// program, a coupon pool running out inside most ticks, funder caps, the room, several-session
/// users), scaled to 100,000 users with budgets, caps and the room in proportion
/// (`Scenario::scaled_to`): counts of 10^3–10^5 a cohort, where the samplers take their
/// large-count routes that the small scenarios above rarely reach. Not run by default (the
/// `agents` engine takes most of its 8 minutes on two cores):
/// `cargo test --release --test tests exactness::national -- --ignored`, with
/// `D11SIM_NATIONAL_USERS` and `D11SIM_EXACT_REPS` to change its size and replications.
#[test]
#[ignore = "the agents engine at 100,000 users over 436 ticks: about 8 minutes"]
fn national_default_scaled() {
    let users = env_count("D11SIM_NATIONAL_USERS", NATIONAL_USERS);
    let scenario = common::national_default().scaled_to(users);
    let failures = compare_engines_over(
        &format!("the national default at {users} users"),
        &scenario,
        env_count("D11SIM_EXACT_REPS", NATIONAL_REPS),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ks_p_value_matches_known_points() {
    // λ = 1.36 is the classic 5% point of the Kolmogorov distribution; λ = 1.95, the 0.1% point.
    let n = 1_000_000;
    let d = |lambda: f64| lambda / ((n as f64 / 2.0).sqrt() + 0.12);
    assert!((ks_p_value(d(1.358), n, n) - 0.05).abs() < 2e-3);
    assert!((ks_p_value(d(1.949), n, n) - 0.001).abs() < 2e-4);
    assert_eq!(ks_statistic(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
    assert_eq!(ks_statistic(&[1.0, 1.0], &[2.0, 2.0]), 1.0);
}

#[test]
fn frequency_cap_and_daily_reset() {
    check("cap.toml");
}

#[test]
fn budget_runs_out_mid_tick() {
    check("budget.toml");
}

#[test]
fn funder_cap_across_programs() {
    check("funder_cap.toml");
}

#[test]
fn users_with_several_sessions_in_a_tick() {
    check("multi_session.toml");
}

#[test]
fn several_sessions_resolved_as_class_members() {
    check("multi_session_free.toml");
}

#[test]
fn several_sessions_resolved_as_class_members_with_interoperable_payment() {
    check("multi_session_interop.toml");
}

#[test]
fn alipay_setup_persists() {
    check("alipay.toml");
}

#[test]
fn live_room_overflow_and_schedule() {
    check("overflow.toml");
}

#[test]
fn coupons_run_out_while_the_room_fills() {
    check("coupon_overflow.toml");
}

#[test]
fn topup_band() {
    check("topup.toml");
}

#[test]
fn events_and_calendar() {
    check("events.toml");
}

#[test]
fn traffic_programs_thin_over_segments_of_different_reach() {
    check("traffic.toml");
}

#[test]
fn two_coupon_pools_run_out_inside_ticks_while_the_room_fills() {
    check("two_pools.toml");
}

#[test]
fn departures_from_a_constant_are_judged_by_their_count() {
    // 1,000 replications each: one departure in the other sample is as likely in either (p = 1);
    // eleven all in one sample have chance 2 × C(1000, 11) / C(2000, 11) ≈ 9.5e-4 (about 2 × 0.5^11).
    let mut other = vec![0.0; 1000];
    other[7] = 3.0;
    assert_eq!(departures_p_value(1000, &other, 0.0), 1.0);
    other[..11].fill(3.0);
    let p = departures_p_value(1000, &other, 0.0);
    assert!((9.0e-4..1.0e-3).contains(&p), "{p}");
    // A sample that never gives the other's constant value departs in every replication.
    assert!(departures_p_value(1000, &[1.0; 1000], 0.0) < 1e-200);
}

/// The suite must be able to fail: a cohorts run with the wrong seed family is still the same
/// law (passes), but comparing two different scenarios must be caught.
#[test]
fn the_suite_catches_a_wrong_engine() {
    let n = 400;
    let (names, a) = metric_columns(Engine::Agents, &exact("alipay.toml"), n);
    let (_, b) = metric_columns(Engine::Agents, &exact("topup.toml"), n);
    let k = names
        .iter()
        .position(|m| m == "orders")
        .expect("orders metric");
    let x: Vec<f64> = a[k].iter().flatten().copied().collect();
    let y: Vec<f64> = b[k].iter().flatten().copied().collect();
    assert!(ks_p_value(ks_statistic(&x, &y), x.len(), y.len()) < FAMILY_LEVEL);
    // The spread test: the same replications spread 25% wider about their mean are caught (the
    // mean and median are kept, as a wrong correlation between baskets would keep them); merely
    // shifted, they are not.
    let (mean, _) = mean_var(&x);
    let wider: Vec<f64> = x.iter().map(|v| mean + 1.25 * (v - mean)).collect();
    assert!(brown_forsythe_p_value(&x, &wider) < FAMILY_LEVEL);
    let shifted: Vec<f64> = x.iter().map(|v| v + 5.0).collect();
    assert!(brown_forsythe_p_value(&x, &shifted) > 0.5);
}
