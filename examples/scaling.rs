//! Speed and memory of the engines at national scale, as the README reports them.
//!
//! Usage: cargo run --release --example scaling [-- --runs N]; one case alone:
//! `target/release/examples/scaling --case ENGINE USERS` (see [`USAGE`]).
//!
//! Each case runs in a child process of its own (so that its peak memory is its own) and does one
//! replication of a scenario with its baseline, on the machine's cores:
//! - `cohorts` on the built-in national default (1.336 × 10^9 users × 436 ticks);
//! - `agents` on the default scaled to 10^6 users (`Scenario::scaled_to`: budgets, caps and the
//!   live room's capacity in proportion), which it can run;
//! - `cohorts` on the default scaled to 10^6 and to 10^9 users;
//! - `unvalued`: `cohorts` at 10^6 and 10^9 users with the orders' baskets not drawn
//!   ([`Plan::value_baskets`]): what a replication costs without them, read directly. Most of
//!   the scenario's baskets are valued by its baseline's run on the other core while the
//!   scenario's own run goes on, so the wall time minus their cost at the floor (the other
//!   reading) takes off time the wall clock mostly did not see. The pass that puts the
//!   scenario's orders in their coupons' cells still makes one latent basket deviate per such
//!   order, on the scenario's own thread: the cases count them ([`Plan::meter`]) and time
//!   one, and the last ratio takes them out of the wall time too, the population ratio less
//!   every per-order draw. The meter also counts the *outcomes* of the single sessions' fates
//!   (per class and epoch, each pair of fates and coupon cell some session got), which it books
//!   one by one: how they grow with the population is most of why its cost does.
//!
//! `--sweep` reads the `unvalued` case at every power of ten from 10^3 to 10^10 users: how the
//! cost grows decade by decade, and the outcomes with it.
//!
//! Per case it prints wall and CPU seconds, simulated user-ticks per second (users × ticks × 2,
//! the scenario and its baseline), orders, the CPU time the orders' basket draws take at the draw
//! floor (orders × the measured cost of one draw) and the peak resident memory; then the ratios
//! the README quotes. The machine is shared and a run of the small case takes a fraction of a
//! second, so each `cohorts` case runs N times (default 5), the five cases taking turns, and the
//! ratios are of the medians, then of the least values (the machine's other work only adds
//! time); `agents` runs once. A basket draw is timed on both cores at once, as a replication
//! makes them (a core's draws are slower while the other works), and since its cost does not
//! depend on the case, every case's draws are costed at the median (then the least) of every
//! `cohorts` run's timing.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use d11sim::engine::{Engine, Plan, WorkCounts, WorkMeter, cohorts};
use d11sim::results::aggregate::percentile_sorted;
use d11sim::scenario::{MAX_USERS, Scenario, default, load_str};

const SEED: u64 = 2023;
/// The `cohorts` case with the batches' baskets not valued ([`Plan::value_baskets`]).
const UNVALUED: &str = "unvalued";
/// The cases `--case` runs.
const ENGINES: [&str; 3] = ["cohorts", UNVALUED, "agents"];
/// Runs of each `cohorts` case without `--runs`.
const DEFAULT_RUNS: usize = 5;
const REPLICATION: u64 = 1;

fn default_scenario() -> Scenario {
    load_str(default::DEFAULT_SCENARIO_TOML, default::DEFAULT_ORIGIN).expect("the default is valid")
}

/// Seconds per draw by `time(draws)`: the median of five timings of 10^6 draws, each made on
/// both cores at once as the replication makes them (on one machine a basket draw took 16 ns
/// with the other core idle and 26 ns with it busy).
fn per_draw(time: impl Fn(u64) -> f64 + Sync) -> f64 {
    let timings = sorted((0..5).map(|_| {
        let (a, b) = rayon::join(|| time(1_000_000), || time(1_000_000));
        (a + b) / 2.0
    }));
    percentile_sorted(&timings, 0.5)
}

/// `values` in increasing order, for [`percentile_sorted`].
fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v
}

/// One case, in this process: prints `wall user_ticks orders basket_seconds peak_kib cpu
/// scenario_basket_seconds seconds_per_basket latent_draws seconds_per_latent class_epochs
/// outcomes`.
fn child(engine: &str, users: u64) {
    // The allocator set as the command line sets it.
    d11sim::engine::return_large_blocks();
    let (engine, value_baskets) = match engine {
        "agents" => (Engine::Agents, true),
        UNVALUED => (Engine::Cohorts, false),
        "cohorts" => (Engine::Cohorts, true),
        _ => unreachable!("the command line takes only the cases of ENGINES"),
    };
    let national = default_scenario();
    let scenario = if users == national.users {
        national
    } else {
        national.scaled_to(users)
    };
    let baseline = scenario.baseline();
    let start = Instant::now();
    let (mut plan, mut base_plan) = (Plan::new(&scenario), Plan::new(&baseline));
    (plan.value_baskets, base_plan.value_baskets) = (value_baskets, value_baskets);
    // Both runs count their work on one meter (the baseline, offered no coupon, makes no
    // latent draws).
    let meter = Arc::new(WorkMeter::default());
    (plan.meter, base_plan.meter) = (Some(Arc::clone(&meter)), Some(Arc::clone(&meter)));
    let (a, b) = engine.simulate_pair(&plan, &base_plan, SEED, REPLICATION, true);
    let wall = start.elapsed().as_secs_f64();
    let scenario_orders = a.count(d11sim::engine::Count::Orders);
    let orders = scenario_orders + b.count(d11sim::engine::Count::Orders);
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    // Unvalued, the orders' baskets are not drawn (but the few of users resolved one by one):
    // none to time or to cost. A latent draw of the cell pass is timed the same way (none to
    // time for `agents`).
    let per_basket = if value_baskets {
        per_draw(|draws| cohorts::seconds_per_basket(&plan, draws))
    } else {
        0.0
    };
    let WorkCounts {
        latent_draws: latents,
        class_epochs,
        outcomes,
    } = meter.counts();
    let per_latent = if engine == Engine::Cohorts {
        per_draw(|draws| cohorts::seconds_per_latent(&plan, draws))
    } else {
        0.0
    };
    let user_ticks = 2 * scenario.users * scenario.ticks() as u64;
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    println!(
        "{wall} {user_ticks} {orders} {} {} {cpu} {} {per_basket} {latents} {per_latent} \
         {class_epochs} {outcomes}",
        orders as f64 * per_basket,
        usage.ru_maxrss,
        scenario_orders as f64 * per_basket
    );
}

#[derive(Clone, Copy)]
struct Case {
    wall: f64,
    /// CPU seconds of the child (both threads) up to the end of its replication.
    cpu: f64,
    user_ticks: f64,
    orders: f64,
    baskets: f64,
    /// The part of `baskets` in the scenario's run, the longer of the two (most of them are
    /// valued by the baseline's run, on the other core, while the scenario's goes on: see the
    /// `unvalued` reading).
    scenario_baskets: f64,
    peak_mib: f64,
    /// The child's timing of one basket draw (seconds; 0 where no basket is drawn, `unvalued`).
    per_basket: f64,
    /// Latent basket deviates the cell pass made (on the scenario's own thread), and the
    /// child's timing of one (seconds; 0 for `agents`).
    latents: f64,
    per_latent: f64,
    /// The single-session classes whose fates were drawn, once a class and epoch, and the
    /// outcomes those draws gave some session (per class and epoch, each pair of fates and
    /// coupon cell with a count above 0: [`WorkMeter`]).
    class_epochs: f64,
    outcomes: f64,
}

impl Case {
    /// The case with its basket draws costed at `per_basket` seconds each.
    fn costed_at(self, per_basket: f64) -> Case {
        let scale = per_basket / self.per_basket;
        Case {
            baskets: self.baskets * scale,
            scenario_baskets: self.scenario_baskets * scale,
            per_basket,
            ..self
        }
    }

    /// The wall time less the cell pass's latent draws at `per_latent` seconds each: they are
    /// per-order draws made on the scenario's own thread, whose chain of ticks the wall clock
    /// follows.
    fn wall_less_latents(&self, per_latent: f64) -> f64 {
        self.wall - self.latents * per_latent
    }
}

fn run(engine: &str, users: u64) -> Case {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .args(["--case", engine, &users.to_string()])
        .output()
        .expect("the case runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().expect("number"))
        .collect();
    let case = Case {
        wall: v[0],
        user_ticks: v[1],
        orders: v[2],
        baskets: v[3],
        peak_mib: v[4] / 1024.0,
        cpu: v[5],
        scenario_baskets: v[6],
        per_basket: v[7],
        latents: v[8],
        per_latent: v[9],
        class_epochs: v[10],
        outcomes: v[11],
    };
    show(engine, users, &case);
    case
}

fn show(engine: &str, users: u64, case: &Case) {
    println!(
        "{engine:>8} {users:>14} users: {:8.2} s wall, {:6.2} s CPU, {:.3e} user-ticks/s, \
         {:.3e} orders, {:.2} s CPU in basket draws, peak {:.1} MiB",
        case.wall,
        case.cpu,
        case.user_ticks / case.wall,
        case.orders,
        case.baskets,
        case.peak_mib
    );
}

/// Each field's quantile `q` over the runs of one case (0.5 the median, 0 the least).
fn quantile(runs: &[Case], q: f64) -> Case {
    let of = |field: fn(&Case) -> f64| percentile_sorted(&sorted(runs.iter().map(field)), q);
    Case {
        wall: of(|c| c.wall),
        cpu: of(|c| c.cpu),
        user_ticks: of(|c| c.user_ticks),
        orders: of(|c| c.orders),
        baskets: of(|c| c.baskets),
        scenario_baskets: of(|c| c.scenario_baskets),
        peak_mib: of(|c| c.peak_mib),
        per_basket: of(|c| c.per_basket),
        latents: of(|c| c.latents),
        per_latent: of(|c| c.per_latent),
        class_epochs: of(|c| c.class_epochs),
        outcomes: of(|c| c.outcomes),
    }
}

/// The populations `--sweep` reads, the default scaled to each power of ten from 10^3 to 10^10.
const SWEEP: [u64; 8] = [
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
];
/// Runs of each population without a count after `--sweep`.
const DEFAULT_SWEEP_RUNS: usize = 3;

/// How the cost of a replication without the orders' baskets grows with the population, decade
/// by decade: per population the medians of `runs` runs (the populations taking turns) of the
/// wall time, of the wall time less the cell pass's latent draws (per-order draws, costed at
/// the median of every run's timing of one), and of the outcomes its fates' draws gave some
/// session; each against the decade before, and the time an outcome.
fn sweep(runs: usize) {
    let mut seen: Vec<Vec<Case>> = vec![Vec::new(); SWEEP.len()];
    for _ in 0..runs {
        for (users, seen) in SWEEP.iter().zip(&mut seen) {
            seen.push(run(UNVALUED, *users));
        }
    }
    let latent_timings = sorted(seen.iter().flatten().map(|c| c.per_latent));
    let per_latent = percentile_sorted(&latent_timings, 0.5);
    println!(
        "medians of {runs} run{} of each population, the orders' baskets not valued, a latent \
         draw at {:.1} ns:",
        if runs == 1 { "" } else { "s" },
        per_latent * 1e9
    );
    println!(
        "{:>14} {:>8} {:>11} {:>6} {:>12} {:>10} {:>6} {:>9} {:>10}",
        "users",
        "wall s",
        "less lat. s",
        "x",
        "class-epochs",
        "outcomes",
        "x",
        "a class",
        "us each"
    );
    // A figure against the decade before's, if there is one.
    let against = |now: f64, then: Option<f64>| {
        then.map_or_else(|| "-".to_string(), |then| format!("{:.2}", now / then))
    };
    let mut before: Option<(f64, f64)> = None;
    for (users, seen) in SWEEP.iter().zip(&seen) {
        let case = quantile(seen, 0.5);
        let less = case.wall_less_latents(per_latent);
        println!(
            "{users:>14} {:>8.3} {:>11.3} {:>6} {:>12} {:>10} {:>6} {:>9.1} {:>10.2}",
            case.wall,
            less,
            against(less, before.map(|b| b.0)),
            case.class_epochs,
            case.outcomes,
            against(case.outcomes, before.map(|b| b.1)),
            case.outcomes / case.class_epochs,
            less / case.outcomes * 1e6
        );
        before = Some((less, case.outcomes));
    }
}

/// What `--help` prints.
const USAGE: &str = "\
Speed and memory of the engines at national scale: each case in a process of its own, then the
ratios the README quotes.

Usage: scaling [--runs N]
       scaling --sweep [N]
       scaling --case ENGINE USERS

Options:
  --runs N               runs of each cohorts case, the cases taking turns (default 5); the
                         ratios are of the medians, then of the least values
  --sweep [N]            the orders' baskets not valued, the default scaled to 10^3, 10^4, ...,
                         10^10 users, N runs of each (default 3): per population the medians of
                         the wall time, of the wall time less the latent draws, and of the
                         outcomes of the fates' draws, each against the decade before
  --case ENGINE USERS    one case alone, in this process, on the default scaled to USERS (1 to
                         10^11; 1336000000 is the national default itself). ENGINE: cohorts,
                         unvalued (cohorts, the orders' baskets not drawn) or agents. Prints
                         `wall user_ticks orders basket_seconds peak_kib cpu
                         scenario_basket_seconds seconds_per_basket latent_draws
                         seconds_per_latent class_epochs outcomes`
  -h, --help             print this";

/// What the command line asks for.
enum Request {
    Help,
    /// The whole measurement, with N runs of each `cohorts` case.
    Measure(usize),
    /// The population sweep, with N runs of each population.
    Sweep(usize),
    Case(&'static str, u64),
}

/// The count of runs after `flag`: a positive integer.
fn runs(flag: &str, n: &str) -> Result<usize, String> {
    (n.parse().ok().filter(|&n| n > 0))
        .ok_or_else(|| format!("{flag} takes a positive count, not `{n}`"))
}

/// Reads the command line by hand, not with clap: the cases' peak memory is part of what the
/// example measures, and a larger binary raised the peaks of both the small and the large case
/// (by 0.15–0.4 MiB with clap linked in), so that their ratio read lower.
fn request(args: &[String]) -> Result<Request, String> {
    match args {
        [] => Ok(Request::Measure(DEFAULT_RUNS)),
        [help] if help == "-h" || help == "--help" => Ok(Request::Help),
        [flag] if flag == "--sweep" => Ok(Request::Sweep(DEFAULT_SWEEP_RUNS)),
        [flag, n] if flag == "--runs" => runs(flag, n).map(Request::Measure),
        [flag, n] if flag == "--sweep" => runs(flag, n).map(Request::Sweep),
        [flag, engine, users] if flag == "--case" => {
            let engine = ENGINES
                .into_iter()
                .find(|e| e == engine)
                .ok_or_else(|| format!("--case: no engine `{engine}` ({})", ENGINES.join(", ")))?;
            let users = users
                .parse()
                .ok()
                .filter(|n| (1..=MAX_USERS).contains(n))
                .ok_or_else(|| format!("--case: USERS must be 1 to {MAX_USERS}, not `{users}`"))?;
            Ok(Request::Case(engine, users))
        }
        _ => Err(format!("unexpected arguments: {}", args.join(" "))),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = match request(&args) {
        Ok(Request::Help) => {
            println!("{USAGE}");
            return;
        }
        Ok(Request::Case(engine, users)) => {
            child(engine, users);
            return;
        }
        Ok(Request::Sweep(runs)) => {
            sweep(runs);
            return;
        }
        Ok(Request::Measure(runs)) => runs,
        Err(e) => {
            eprintln!("scaling: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let national = default_scenario().users;
    let agents_small = run("agents", 1_000_000);
    let cases = [1_000_000, 1_000_000_000, national];
    let mut seen: Vec<Vec<Case>> = vec![Vec::new(); cases.len()];
    // The small and the large case again, their baskets not valued.
    let mut unvalued: [Vec<Case>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (users, seen) in cases.iter().zip(&mut seen) {
            seen.push(run("cohorts", *users));
        }
        for (users, seen) in cases[..2].iter().zip(&mut unvalued) {
            seen.push(run(UNVALUED, *users));
        }
    }
    let timings = sorted(seen.iter().flatten().map(|c| c.per_basket));
    let latent_timings = sorted((seen.iter().chain(&unvalued).flatten()).map(|c| c.per_latent));
    // The medians, and the least values: the machine's other work only ever adds time, so the
    // least of several runs is the steadiest reading of a case alone (on a shared machine the
    // small case's medians moved by half between runs of seven).
    for (q, values, value) in [(0.5, "medians", "median"), (0.0, "least values", "least")] {
        let per_basket = percentile_sorted(&timings, q);
        let [small, large, cohorts_national] =
            [0, 1, 2].map(|i| quantile(&seen[i], q).costed_at(per_basket));
        println!(
            "{values} of {runs} runs of each cohorts case, the basket draws costed at the \
             {value} of the runs' timings ({:.1} ns; {:.1} to {:.1} ns):",
            per_basket * 1e9,
            timings[0] * 1e9,
            timings[timings.len() - 1] * 1e9
        );
        for (users, case) in cases.iter().zip([small, large, cohorts_national]) {
            show("cohorts", *users, &case);
        }
        println!(
            "throughput, cohorts national / agents at 10^6 users: {:.0}x",
            (cohorts_national.user_ticks / cohorts_national.wall)
                / (agents_small.user_ticks / agents_small.wall)
        );
        println!(
            "cohorts 10^9 / 10^6 users: wall {:.2}x, wall minus the scenario's basket draws \
             {:.2}x (most are valued on the other core: read the unvalued ratio instead), CPU \
             {:.2}x, CPU minus basket draws {:.2}x, peak memory {:.2}x",
            large.wall / small.wall,
            (large.wall - large.scenario_baskets) / (small.wall - small.scenario_baskets),
            large.cpu / small.cpu,
            (large.cpu - large.baskets) / (small.cpu - small.baskets),
            large.peak_mib / small.peak_mib
        );
        let [small_unvalued, large_unvalued] = [0, 1].map(|i| quantile(&unvalued[i], q));
        println!(
            "cohorts 10^9 / 10^6 users, the baskets not valued: wall {:.2}x ({:.2} vs {:.2} s), \
             CPU {:.2}x",
            large_unvalued.wall / small_unvalued.wall,
            large_unvalued.wall,
            small_unvalued.wall,
            large_unvalued.cpu / small_unvalued.cpu
        );
        let per_latent = percentile_sorted(&latent_timings, q);
        let [small_less, large_less] =
            [small_unvalued, large_unvalued].map(|c| c.wall_less_latents(per_latent));
        println!(
            "cohorts 10^9 / 10^6 users, the baskets not valued, wall less the cell pass's latent \
             draws ({:.3e} vs {:.3e} x {:.1} ns): {:.2}x ({:.2} vs {:.2} s)",
            large_unvalued.latents,
            small_unvalued.latents,
            per_latent * 1e9,
            large_less / small_less,
            large_less,
            small_less
        );
        println!(
            "outcomes of the single sessions' fates (per class and epoch, each pair of fates and \
             coupon cell some session got), 10^9 / 10^6 users: {:.2}x ({:.3e} vs {:.3e}; {:.1} vs {:.1} \
             a class and epoch); the wall time less the latent draws per outcome: {:.2} vs \
             {:.2} us",
            large_unvalued.outcomes / small_unvalued.outcomes,
            large_unvalued.outcomes,
            small_unvalued.outcomes,
            large_unvalued.outcomes / large_unvalued.class_epochs,
            small_unvalued.outcomes / small_unvalued.class_epochs,
            large_less / large_unvalued.outcomes * 1e6,
            small_less / small_unvalued.outcomes * 1e6
        );
        println!(
            "draw floor, national: {:.3e} orders (scenario + baseline) x {:.1} ns = {:.2} s of \
             {:.2} s CPU",
            cohorts_national.orders,
            cohorts_national.baskets / cohorts_national.orders * 1e9,
            cohorts_national.baskets,
            cohorts_national.cpu
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(line: &str) -> Result<Request, String> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        request(&args)
    }

    #[test]
    fn reads_what_the_readme_runs_and_refuses_the_rest() {
        // The default the usage states.
        assert!(matches!(read(""), Ok(Request::Measure(5))));
        assert!(matches!(read("--runs 7"), Ok(Request::Measure(7))));
        assert!(matches!(read("--sweep"), Ok(Request::Sweep(3))));
        assert!(matches!(read("--sweep 5"), Ok(Request::Sweep(5))));
        assert!(matches!(read("--help"), Ok(Request::Help)));
        assert!(matches!(read("-h"), Ok(Request::Help)));
        assert!(matches!(
            read("--case unvalued 1000000000"),
            Ok(Request::Case(UNVALUED, 1_000_000_000))
        ));
        assert!(matches!(
            read("--case cohorts 100000000000"),
            Ok(Request::Case("cohorts", MAX_USERS))
        ));
        for bad in [
            "--runs 0",
            "--runs",
            "--runs x",
            "--case cohorts",
            "--case bogus 5",
            "--case cohorts 0",
            "--case cohorts 1e9",
            "--case agents 100000000001",
            "--foo",
            "--runs 3 --case cohorts 5",
            "--sweep 0",
            "--sweep x",
            "--sweep 3 --runs 3",
        ] {
            assert!(read(bad).is_err(), "{bad} was accepted");
        }
    }
}
