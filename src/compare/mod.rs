//! Comparing splits of a scenario's budgets and funding shares on common random numbers (MODEL.md,
//! *The counterfactual and what a split returns*).
//!
//! A [`Split`] replaces some programs' `budget` and `funded_by`; everything else is the scenario's.
//! Splits come from a sweep of two programs' summed budget (`--split-programs`), a sweep of two
//! funders' shares in every program they co-fund (`--split-funders`), or a splits file ([`file`](mod@file)).
//! Every split runs with the same seed and replication numbers, so the engine's keyed streams couple
//! them, and one baseline per replication serves them all: the baseline has no programs, so it does
//! not depend on budgets or shares. [`stats`] turns the per-replication records into paired
//! differences against the reference (the scenario's own split) and the bootstrap `p_best`;
//! [`table`] lays out `compare.csv`.

pub mod file;
pub mod stats;
pub mod table;

use crate::engine::{Engine, Paired, Plan};
use crate::error::{Error, Result};
use crate::results::Record;
use crate::scenario::parse::MAX_MONEY_YUAN;
use crate::scenario::{Scenario, Units, units_to_yuan};

/// Shares must sum to 1 within this tolerance (INTERFACE.md, as in scenario files).
pub const SHARE_TOLERANCE: f64 = 1e-9;
/// The name of the scenario's own split, against which every difference is taken.
pub const REFERENCE: &str = "reference";
/// Splits in a sweep when `--steps` is absent (INTERFACE.md).
pub const DEFAULT_STEPS: u32 = 11;
/// A sweep needs both ends.
pub const MIN_STEPS: u32 = 2;

/// A split: the scenario with some programs' budgets and funding shares replaced.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub name: String,
    /// (program index, budget in units).
    pub budgets: Vec<(usize, Units)>,
    /// (program index, its new `funded_by`: (funder index, share) in the order given).
    pub funded_by: Vec<(usize, Vec<(usize, f64)>)>,
}

impl Split {
    /// The scenario's own split: it replaces nothing.
    pub fn reference() -> Split {
        Split {
            name: REFERENCE.to_string(),
            budgets: Vec::new(),
            funded_by: Vec::new(),
        }
    }

    /// The scenario with this split's budgets and shares.
    pub fn apply(&self, s: &Scenario) -> Scenario {
        let mut out = s.clone();
        for &(p, budget) in &self.budgets {
            out.programs[p].budget = budget;
        }
        for (p, shares) in &self.funded_by {
            out.programs[*p].funded_by = shares.clone();
        }
        out
    }

    /// Whether this split leaves every budget and share of `s` exactly as it is.
    pub fn is_reference_of(&self, s: &Scenario) -> bool {
        self.budgets.iter().all(|&(p, b)| s.programs[p].budget == b)
            && self
                .funded_by
                .iter()
                .all(|(p, shares)| &s.programs[*p].funded_by == shares)
    }
}

/// A column of `compare.csv` that says where a split stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// A program's budget, in yuan: `budget.<program>`.
    Budget(usize),
    /// A funder's share in one program: `funded_by.<program>.<funder>`.
    Share { program: usize, funder: usize },
    /// A funder's part of its pair's combined share in the programs the pair co-funds: `share.<funder>`
    /// (see [`pair_share`]).
    PairShare { funder: usize, other: usize },
}

impl Column {
    pub fn name(&self, s: &Scenario) -> String {
        match *self {
            Column::Budget(p) => format!("budget.{}", s.programs[p].name),
            Column::Share { program, funder } => format!(
                "funded_by.{}.{}",
                s.programs[program].name, s.funders[funder].name
            ),
            Column::PairShare { funder, .. } => format!("share.{}", s.funders[funder].name),
        }
    }

    /// The column's value in a scenario (one with a split applied).
    pub fn value(&self, s: &Scenario) -> f64 {
        match *self {
            Column::Budget(p) => units_to_yuan(u128::from(s.programs[p].budget)),
            Column::Share { program, funder } => share_of(s, program, funder),
            Column::PairShare { funder, other } => pair_share(s, funder, other),
        }
    }
}

/// A funder's share of a program (0 if it does not fund it).
fn share_of(s: &Scenario, program: usize, funder: usize) -> f64 {
    s.programs[program]
        .funded_by
        .iter()
        .find(|(f, _)| *f == funder)
        .map_or(0.0, |&(_, share)| share)
}

/// The programs whose `funded_by` names both funders.
pub fn co_funded(s: &Scenario, f: usize, g: usize) -> Vec<usize> {
    let funds = |p: usize, x: usize| s.programs[p].funded_by.iter().any(|(i, _)| *i == x);
    (0..s.programs.len())
        .filter(|&p| funds(p, f) && funds(p, g))
        .collect()
}

/// `funder`'s part of the pair's combined share over the programs the pair co-funds, weighted by
/// budget: Σ budget × share_F / Σ budget × (share_F + share_G). In a funder sweep it is the same in
/// every program (the sweep's fraction); for the reference it summarises shares that may differ by
/// program. With no co-funded budget it is the unweighted mean over the programs.
pub fn pair_share(s: &Scenario, funder: usize, other: usize) -> f64 {
    let programs = co_funded(s, funder, other);
    let fraction = |weight: &dyn Fn(usize) -> f64| {
        let (mut num, mut den) = (0.0, 0.0);
        for &p in &programs {
            let (a, b) = (share_of(s, p, funder), share_of(s, p, other));
            num += weight(p) * a;
            den += weight(p) * (a + b);
        }
        (den > 0.0).then(|| num / den)
    };
    fraction(&|p| units_to_yuan(u128::from(s.programs[p].budget)))
        .or_else(|| fraction(&|_| 1.0))
        .unwrap_or(0.0)
}

/// Where the splits come from.
#[derive(Clone, Debug)]
pub enum SplitSpec {
    /// `--split-programs A,B --steps N`.
    Programs { a: String, b: String, steps: u32 },
    /// `--split-funders F,G --steps N`.
    Funders { f: String, g: String, steps: u32 },
    /// `--splits FILE`: named splits, already read and checked by [`file`](mod@file).
    Named(Vec<Split>),
}

/// The splits to run, with the columns that say where each stands.
#[derive(Clone, Debug)]
pub struct SplitSet {
    pub columns: Vec<Column>,
    pub splits: Vec<Split>,
    /// `values[split][column]`.
    pub values: Vec<Vec<f64>>,
    /// Index of the split named [`REFERENCE`].
    pub reference: usize,
}

impl SplitSet {
    /// The scenario of each split.
    pub fn scenarios(&self, s: &Scenario) -> Vec<Scenario> {
        self.splits.iter().map(|x| x.apply(s)).collect()
    }

    pub fn column_names(&self, s: &Scenario) -> Vec<String> {
        self.columns.iter().map(|c| c.name(s)).collect()
    }
}

fn usage(flag: &str, message: String) -> Error {
    Error::Usage(format!("{flag}: {message}"))
}

fn known(names: impl Iterator<Item = String>) -> String {
    let list: Vec<String> = names.collect();
    if list.is_empty() {
        "none defined".to_string()
    } else {
        list.join(", ")
    }
}

fn program_of(s: &Scenario, flag: &str, name: &str) -> Result<usize> {
    s.program_index(name).ok_or_else(|| {
        let list = known(s.programs.iter().map(|p| p.name.clone()));
        usage(flag, format!("unknown program \"{name}\" (one of: {list})"))
    })
}

fn funder_of(s: &Scenario, flag: &str, name: &str) -> Result<usize> {
    s.funder_index(name).ok_or_else(|| {
        let list = known(s.funders.iter().map(|f| f.name.clone()));
        usage(flag, format!("unknown funder \"{name}\" (one of: {list})"))
    })
}

fn check_steps(flag: &str, steps: u32) -> Result<()> {
    if steps < MIN_STEPS {
        return Err(usage(
            flag,
            format!("--steps {steps} is too few (at least {MIN_STEPS}: both ends of the sweep)"),
        ));
    }
    Ok(())
}

/// Builds the splits of a spec, checking every name; the reference is added (or named) here.
pub fn split_set(s: &Scenario, spec: &SplitSpec) -> Result<SplitSet> {
    match spec {
        SplitSpec::Programs { a, b, steps } => program_sweep(s, a, b, *steps),
        SplitSpec::Funders { f, g, steps } => funder_sweep(s, f, g, *steps),
        SplitSpec::Named(splits) => Ok(named(s, splits)),
    }
}

/// Name of sweep point `k` of `steps`, zero-padded so that names sort in sweep order.
fn step_name(k: u32, steps: u32) -> String {
    let width = (steps - 1).to_string().len();
    format!("step_{k:0width$}")
}

/// Puts the reference into a sweep: the sweep point equal to it is renamed [`REFERENCE`]; if none
/// is, the reference is added as the first split.
fn with_reference(s: &Scenario, mut set: SplitSet) -> SplitSet {
    if let Some(i) = set.splits.iter().position(|x| x.is_reference_of(s)) {
        set.splits[i].name = REFERENCE.to_string();
        set.reference = i;
        return set;
    }
    let values = set.columns.iter().map(|c| c.value(s)).collect();
    set.splits.insert(0, Split::reference());
    set.values.insert(0, values);
    set.reference = 0;
    set
}

fn program_sweep(s: &Scenario, a: &str, b: &str, steps: u32) -> Result<SplitSet> {
    const FLAG: &str = "--split-programs";
    let (ia, ib) = (program_of(s, FLAG, a)?, program_of(s, FLAG, b)?);
    if ia == ib {
        return Err(usage(
            FLAG,
            format!("A and B are both \"{a}\" (two different programs)"),
        ));
    }
    check_steps(FLAG, steps)?;
    let total = u128::from(s.programs[ia].budget) + u128::from(s.programs[ib].budget);
    if total == 0 {
        return Err(usage(
            FLAG,
            format!("\"{a}\" and \"{b}\" have no budget between them: every split is the same"),
        ));
    }
    // A sweep end puts the whole sum in one program: it must be a budget a scenario could write.
    if units_to_yuan(total) > MAX_MONEY_YUAN {
        return Err(usage(
            FLAG,
            format!(
                "\"{a}\" and \"{b}\" have {} yuan between them, more than one budget may hold \
                 (at most 10^13 yuan)",
                units_to_yuan(total)
            ),
        ));
    }
    let last = u128::from(steps - 1);
    let mut splits = Vec::new();
    let mut values = Vec::new();
    for k in 0..steps {
        // A's part rounded to the nearest unit; B gets the rest, so the sum is kept exactly.
        let part_a = (total * (last - u128::from(k)) + last / 2) / last;
        let (Ok(ua), Ok(ub)) = (Units::try_from(part_a), Units::try_from(total - part_a)) else {
            return Err(usage(FLAG, "the summed budget is too large".to_string()));
        };
        splits.push(Split {
            name: step_name(k, steps),
            budgets: vec![(ia, ua), (ib, ub)],
            funded_by: Vec::new(),
        });
        values.push(vec![
            units_to_yuan(u128::from(ua)),
            units_to_yuan(u128::from(ub)),
        ]);
    }
    let set = SplitSet {
        columns: vec![Column::Budget(ia), Column::Budget(ib)],
        splits,
        values,
        reference: 0,
    };
    Ok(with_reference(s, set))
}

fn funder_sweep(s: &Scenario, f: &str, g: &str, steps: u32) -> Result<SplitSet> {
    const FLAG: &str = "--split-funders";
    let (i_f, i_g) = (funder_of(s, FLAG, f)?, funder_of(s, FLAG, g)?);
    if i_f == i_g {
        return Err(usage(
            FLAG,
            format!("F and G are both \"{f}\" (two different funders)"),
        ));
    }
    let programs = co_funded(s, i_f, i_g);
    if programs.is_empty() {
        return Err(usage(
            FLAG,
            format!(
                "\"{f}\" and \"{g}\" co-fund no program (a program whose funded_by names both)"
            ),
        ));
    }
    check_steps(FLAG, steps)?;
    let last = steps - 1;
    let mut splits = Vec::new();
    let mut values = Vec::new();
    for k in 0..steps {
        let w = f64::from(last - k) / f64::from(last);
        let funded_by = programs
            .iter()
            .map(|&p| (p, reshare(&s.programs[p].funded_by, i_f, i_g, w)))
            .collect();
        splits.push(Split {
            name: step_name(k, steps),
            budgets: Vec::new(),
            funded_by,
        });
        values.push(vec![w, f64::from(k) / f64::from(last)]);
    }
    let set = SplitSet {
        columns: vec![
            Column::PairShare {
                funder: i_f,
                other: i_g,
            },
            Column::PairShare {
                funder: i_g,
                other: i_f,
            },
        ],
        splits,
        values,
        reference: 0,
    };
    Ok(with_reference(s, set))
}

/// `funded_by` with F's and G's combined share c split as (c·w, c − c·w), the order kept.
fn reshare(shares: &[(usize, f64)], f: usize, g: usize, w: f64) -> Vec<(usize, f64)> {
    let c: f64 = shares
        .iter()
        .filter(|(i, _)| *i == f || *i == g)
        .map(|(_, x)| x)
        .sum();
    let part_f = c * w;
    shares
        .iter()
        .map(|&(i, x)| match i {
            _ if i == f => (i, part_f),
            _ if i == g => (i, c - part_f),
            _ => (i, x),
        })
        .collect()
}

/// Named splits (from a file): columns for every budget and share any of them sets; the reference
/// is always added first (a named split equal to it keeps its own name and row).
fn named(s: &Scenario, splits: &[Split]) -> SplitSet {
    let mut columns: Vec<Column> = Vec::new();
    let mut add = |c: Column| {
        if !columns.contains(&c) {
            columns.push(c);
        }
    };
    for split in splits {
        for &(p, _) in &split.budgets {
            add(Column::Budget(p));
        }
        for (p, shares) in &split.funded_by {
            let own = s.programs[*p].funded_by.iter().map(|(f, _)| *f);
            for funder in own.chain(shares.iter().map(|(f, _)| *f)) {
                add(Column::Share {
                    program: *p,
                    funder,
                });
            }
        }
    }
    let mut all = vec![Split::reference()];
    all.extend(splits.iter().cloned());
    let values = all
        .iter()
        .map(|x| {
            let applied = x.apply(s);
            columns.iter().map(|c| c.value(&applied)).collect()
        })
        .collect();
    SplitSet {
        columns,
        splits: all,
        values,
        reference: 0,
    }
}

/// Runs every split and one shared baseline for each replication, on common random numbers, in
/// parallel on the current rayon pool. Returns `records[split][replication]` in replication order
/// (metrics only: series, funnel and burn-down are dropped). `done` is called after each
/// simulation (the baseline, then each split).
pub fn simulate(
    engine: Engine,
    scenario: &Scenario,
    splits: &[Scenario],
    seed: u64,
    replications: &[u64],
    done: &(dyn Fn() + Sync),
) -> Vec<Vec<Record>> {
    use rayon::prelude::*;
    let baseline = scenario.baseline();
    let baseline_plan = Plan::new(&baseline);
    let plans: Vec<Plan> = splits.iter().map(Plan::new).collect();
    let by_replication: Vec<Vec<Record>> = replications
        .par_iter()
        .map(|&r| {
            let base = engine.simulate(&baseline_plan, seed, r);
            done();
            plans
                .par_iter()
                .zip(splits)
                .map(|(plan, split)| {
                    let paired = Paired {
                        replication: r,
                        scenario: engine.simulate(plan, seed, r),
                        baseline: base.clone(),
                    };
                    done();
                    metrics_only(Record::of(split, &paired))
                })
                .collect()
        })
        .collect();
    transpose(by_replication, splits.len())
}

fn metrics_only(r: Record) -> Record {
    Record {
        series: Vec::new(),
        funnel: Vec::new(),
        remaining: Vec::new(),
        ..r
    }
}

/// `[replication][split]` to `[split][replication]`.
fn transpose(by_replication: Vec<Vec<Record>>, splits: usize) -> Vec<Vec<Record>> {
    let mut out: Vec<Vec<Record>> = (0..splits)
        .map(|_| Vec::with_capacity(by_replication.len()))
        .collect();
    for row in by_replication {
        for (i, record) in row.into_iter().enumerate() {
            out[i].push(record);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Scenario {
        crate::scenario::load_str(include_str!("../../tests/data/tiny.toml"), "tiny.toml")
            .expect("tiny.toml is valid")
    }

    #[test]
    fn program_sweep_keeps_the_sum_and_adds_the_reference() {
        let s = tiny();
        let spec = SplitSpec::Programs {
            a: "threshold_coupon".into(),
            b: "channels_boost".into(),
            steps: 11,
        };
        let set = split_set(&s, &spec).unwrap();
        assert_eq!(set.splits.len(), 12);
        assert_eq!(set.splits[set.reference].name, REFERENCE);
        assert_eq!(set.values[1], vec![320.0, 0.0]);
        assert_eq!(set.values[11], vec![0.0, 320.0]);
        for split in &set.splits[1..] {
            let sum: Units = split.budgets.iter().map(|(_, b)| b).sum();
            assert_eq!(sum, 32_000_000);
        }
    }

    #[test]
    fn a_sweep_point_equal_to_the_reference_is_renamed() {
        let s = tiny();
        // 0.7/0.3 and 0.5/0.5: a 3-step sweep of alibaba/tencent hits 0.5/0.5 only in one program.
        let spec = SplitSpec::Funders {
            f: "alibaba".into(),
            g: "tencent".into(),
            steps: 3,
        };
        let set = split_set(&s, &spec).unwrap();
        assert_eq!(set.splits.len(), 4);
        assert_eq!(set.reference, 0);
        assert!((set.values[0][0] - 220.0 / 320.0).abs() < 1e-12);
        let mut even = s.clone();
        even.programs[0].funded_by = vec![(0, 0.5), (1, 0.5)];
        let set = split_set(&even, &spec).unwrap();
        assert_eq!(set.splits.len(), 3);
        assert_eq!(set.reference, 1);
        assert_eq!(set.splits[1].name, REFERENCE);
    }

    #[test]
    fn bad_sweeps_are_usage_errors() {
        let s = tiny();
        let programs = |a: &str, b: &str, steps| SplitSpec::Programs {
            a: a.into(),
            b: b.into(),
            steps,
        };
        for spec in [
            programs("nope", "channels_boost", 3),
            programs("channels_boost", "channels_boost", 3),
            programs("threshold_coupon", "channels_boost", 1),
        ] {
            assert!(matches!(split_set(&s, &spec), Err(Error::Usage(_))));
        }
    }
}
