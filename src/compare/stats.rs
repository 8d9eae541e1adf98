//! Statistics across splits: paired differences against the reference, and `p_best`, the
//! bootstrap probability that a split is best on the objective.
//!
//! Every split ran on the same replications with the same seed, so replication r of one split and
//! replication r of another share their random numbers (and their baseline). Differences are
//! therefore taken replication by replication, and their interval is the t interval of the mean of
//! those differences: far narrower than the intervals of the two means would suggest.

use rand::RngExt;

use crate::engine::rng::{Stage, stream};
use crate::results::aggregate;

/// Bootstrap resamples behind `p_best`: its Monte Carlo error is at most 0.5/√1000 ≈ 0.016.
pub const BOOTSTRAP_RESAMPLES: u64 = 1000;
/// The bootstrap's streams use replication number 0, which no simulation uses (replications are
/// numbered from 1), and this tick key, so they never meet an engine stream.
const BOOTSTRAP_TICK: u64 = u64::MAX;

/// A paired difference against the reference: its mean and 95% t interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Diff {
    pub mean: Option<f64>,
    pub ci: Option<(f64, f64)>,
}

/// The paired difference `x − reference` over the replications where both exist.
pub fn paired_diff(x: &[Option<f64>], reference: &[Option<f64>]) -> Diff {
    let d: Vec<f64> = x
        .iter()
        .zip(reference)
        .filter_map(|(a, b)| Some((*a)? - (*b)?))
        .collect();
    if d.is_empty() {
        return Diff::default();
    }
    let m = aggregate::mean(&d);
    Diff {
        mean: Some(m),
        ci: aggregate::ci_of_mean(m, aggregate::std_dev(&d), d.len()),
    }
}

/// The difference of two ratios of means, ȳ/x̄ of a split minus ȳ/x̄ of the reference (for `iroi`,
/// whose summary is a ratio of means), with a paired delta-method interval: the variance of the
/// per-replication linearised terms (y − R x)/x̄ of the split minus those of the reference.
pub fn paired_ratio_diff(y: &[f64], x: &[f64], y_ref: &[f64], x_ref: &[f64]) -> Diff {
    let n = y.len();
    let (mx, mx_ref) = (aggregate::mean(x), aggregate::mean(x_ref));
    if n == 0 || mx == 0.0 || mx_ref == 0.0 {
        return Diff::default();
    }
    let (r, r_ref) = (aggregate::mean(y) / mx, aggregate::mean(y_ref) / mx_ref);
    let terms: Vec<f64> = (0..n)
        .map(|i| (y[i] - r * x[i]) / mx - (y_ref[i] - r_ref * x_ref[i]) / mx_ref)
        .collect();
    let d = r - r_ref;
    let se = aggregate::std_dev(&terms) / (n as f64).sqrt();
    let ci = (n >= 2).then(|| {
        let half = aggregate::t_quantile(n) * se;
        (d - half, d + half)
    });
    Diff { mean: Some(d), ci }
}

/// How a split scores on the objective for a resample of replication indices.
pub enum Objective<'a> {
    /// The mean of the values present (`values[split][replication]`).
    Mean(&'a [Vec<Option<f64>>]),
    /// A ratio of means ȳ/x̄ (`iroi`: incremental GMV over subsidy spend; absent counts as 0).
    Ratio {
        y: &'a [Vec<f64>],
        x: &'a [Vec<f64>],
    },
}

impl Objective<'_> {
    pub fn splits(&self) -> usize {
        match self {
            Objective::Mean(v) => v.len(),
            Objective::Ratio { y, .. } => y.len(),
        }
    }

    /// The split's score on the replications `idx` (indices into its values); `None` if it has no
    /// value there.
    pub fn score(&self, split: usize, idx: &[usize]) -> Option<f64> {
        match self {
            Objective::Mean(v) => {
                let present: Vec<f64> = idx.iter().filter_map(|&i| v[split][i]).collect();
                (!present.is_empty()).then(|| aggregate::mean(&present))
            }
            Objective::Ratio { y, x } => {
                let sy: f64 = idx.iter().map(|&i| y[split][i]).sum();
                let sx: f64 = idx.iter().map(|&i| x[split][i]).sum();
                (sx != 0.0).then(|| sy / sx)
            }
        }
    }
}

/// Adds one win, shared equally among the splits tied at the best score, to `wins`. Splits without
/// a score cannot win; if none has one, all share it.
fn award(scores: &[Option<f64>], minimize: bool, wins: &mut [f64]) {
    let better = |a: f64, b: f64| if minimize { a < b } else { a > b };
    let best = scores
        .iter()
        .flatten()
        .copied()
        .fold(None, |acc: Option<f64>, s| match acc {
            Some(b) if !better(s, b) => Some(b),
            _ => Some(s),
        });
    let winners: Vec<usize> = match best {
        Some(b) => (0..scores.len())
            .filter(|&i| scores[i] == Some(b))
            .collect(),
        None => (0..scores.len()).collect(),
    };
    for &i in &winners {
        wins[i] += 1.0 / winners.len() as f64;
    }
}

/// `p_best`: the share of `resamples` bootstrap resamples of the replications (indices drawn with
/// replacement, the same indices for every split, so the coupling is kept) in which each split has
/// the best score, ties sharing a win equally. It sums to 1 over the splits. Resample b draws from
/// `rng::stream(seed, 0, u64::MAX, 0, Stage::Population, b)`, so it is the same on any thread count.
pub fn p_best(objective: &Objective, replications: usize, minimize: bool, seed: u64) -> Vec<f64> {
    p_best_with(objective, replications, minimize, seed, BOOTSTRAP_RESAMPLES)
}

/// [`p_best`] with a chosen number of resamples.
pub fn p_best_with(
    objective: &Objective,
    replications: usize,
    minimize: bool,
    seed: u64,
    resamples: u64,
) -> Vec<f64> {
    let splits = objective.splits();
    let mut wins = vec![0.0; splits];
    if replications == 0 || resamples == 0 {
        return vec![1.0 / splits.max(1) as f64; splits];
    }
    let mut idx = vec![0usize; replications];
    for b in 0..resamples {
        let mut rng = stream(seed, 0, BOOTSTRAP_TICK, 0, Stage::Population, b);
        for i in idx.iter_mut() {
            *i = rng.random_range(0..replications);
        }
        let scores: Vec<Option<f64>> = (0..splits).map(|s| objective.score(s, &idx)).collect();
        award(&scores, minimize, &mut wins);
    }
    wins.iter().map(|w| w / resamples as f64).collect()
}

/// How tightly a scenario's runs are paired with its baseline's over replications: the ratio
/// Var(scenario − baseline) / (Var(scenario) + Var(baseline)), 1 for independent runs and 0 for
/// runs that differ by a constant, with a bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coupling {
    pub ratio: f64,
    /// The 2.5 and 97.5 percentiles of the ratio over [`BOOTSTRAP_RESAMPLES`] resamples of the
    /// replications (the same indices for both runs, so the pairing is kept).
    pub ci: (f64, f64),
}

/// Stream key of the coupling's resamples, apart from `p_best`'s (unit 0).
const COUPLING_UNIT: u64 = 1;

/// The ratio of [`Coupling`] over the replications `idx` of `scenario` and `baseline` (a value
/// per replication, in the same order); `None` where neither run varies.
fn coupling_ratio(scenario: &[f64], baseline: &[f64], idx: &[usize]) -> Option<f64> {
    let pick = |xs: &[f64]| -> Vec<f64> { idx.iter().map(|&i| xs[i]).collect() };
    let (s, b) = (pick(scenario), pick(baseline));
    let d: Vec<f64> = s.iter().zip(&b).map(|(x, y)| x - y).collect();
    let var = |xs: &[f64]| aggregate::std_dev(xs).powi(2);
    let runs = var(&s) + var(&b);
    (runs > 0.0).then(|| var(&d) / runs)
}

/// [`Coupling`] of a scenario's values and its baseline's over the same replications (MODEL.md:
/// pairing must make Var(paired difference) far below Var(scenario) + Var(baseline)). `None`
/// with fewer than three replications or where neither run varies. Resample b draws from
/// `rng::stream(seed, 0, u64::MAX, 1, Stage::Population, b)`.
pub fn coupling(scenario: &[f64], baseline: &[f64], seed: u64) -> Option<Coupling> {
    let n = scenario.len();
    assert_eq!(n, baseline.len(), "one baseline value per replication");
    if n < 3 {
        return None;
    }
    let all: Vec<usize> = (0..n).collect();
    let ratio = coupling_ratio(scenario, baseline, &all)?;
    let mut idx = vec![0usize; n];
    let mut resampled: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .filter_map(|b| {
            let mut rng = stream(seed, 0, BOOTSTRAP_TICK, COUPLING_UNIT, Stage::Population, b);
            for i in idx.iter_mut() {
                *i = rng.random_range(0..n);
            }
            coupling_ratio(scenario, baseline, &idx)
        })
        .collect();
    resampled.sort_by(f64::total_cmp);
    let band = |q| aggregate::percentile_sorted(&resampled, q);
    Some(Coupling {
        ratio,
        ci: (band(aggregate::BAND.0), band(aggregate::BAND.1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_values_differ_by_exactly_zero() {
        let x = [Some(3.5), Some(-1.25), None, Some(7.0)];
        let d = paired_diff(&x, &x);
        assert_eq!(d.mean, Some(0.0));
        assert_eq!(d.ci, Some((0.0, 0.0)));
    }

    #[test]
    fn ties_share_and_p_best_sums_to_one() {
        let a = vec![Some(1.0), Some(2.0), Some(3.0)];
        let values = vec![a.clone(), a, vec![Some(0.0), Some(0.5), Some(1.0)]];
        let p = p_best(&Objective::Mean(&values), 3, false, 1);
        assert_eq!(p, vec![0.5, 0.5, 0.0]);
        let p = p_best(&Objective::Mean(&values), 3, true, 1);
        assert_eq!(p, vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn p_best_follows_the_data() {
        // Split 1 is split 0 plus 0.1 with noise of sd ~0.3: best in most resamples.
        let base: Vec<f64> = (0..50).map(|i| f64::from(i % 7)).collect();
        let noise: Vec<f64> = (0..50).map(|i| f64::from(i % 5) * 0.15 - 0.3).collect();
        let values = vec![
            base.iter().map(|&v| Some(v)).collect(),
            base.iter()
                .zip(&noise)
                .map(|(v, e)| Some(v + 0.1 + e))
                .collect(),
        ];
        let p = p_best(&Objective::Mean(&values), 50, false, 9);
        assert!(p[1] > 0.9, "{p:?}");
        assert!((p[0] + p[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ratio_difference_of_identical_splits_is_zero() {
        let y = [1.0, 2.0, 4.0];
        let x = [2.0, 2.0, 3.0];
        let d = paired_ratio_diff(&y, &x, &y, &x);
        assert_eq!(d.mean, Some(0.0));
        assert_eq!(d.ci, Some((0.0, 0.0)));
    }

    #[test]
    fn coupling_is_the_share_of_variance_pairing_leaves() {
        // A baseline that is the scenario less a constant: the difference does not vary.
        let s = [3.0, 7.0, 1.0, 9.0, 4.0];
        let shifted: Vec<f64> = s.iter().map(|x| x - 2.0).collect();
        let c = coupling(&s, &shifted, 1).expect("varies");
        assert_eq!(c.ratio, 0.0);
        assert_eq!(c.ci, (0.0, 0.0));
        // s = (1, 2, 3, 4) and b = (1, 3, 2, 4): Var(s) = Var(b) = 5/3, s − b = (0, −1, 1, 0) with
        // Var 2/3, so the ratio is (2/3) / (10/3) = 0.2.
        let (s, b) = ([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]);
        let c = coupling(&s, &b, 1).expect("varies");
        assert!((c.ratio - 0.2).abs() < 1e-12, "{c:?}");
        assert!(c.ci.0 <= c.ratio && c.ratio <= c.ci.1, "{c:?}");
        // Reversed pairs: s − b = (−3, −1, 1, 3), Var 20/3: the ratio is 2 (anti-correlated).
        let c = coupling(&s, &[4.0, 3.0, 2.0, 1.0], 1).expect("varies");
        assert!((c.ratio - 2.0).abs() < 1e-12, "{c:?}");
        assert_eq!(coupling(&s[..2], &b[..2], 1), None);
        assert_eq!(coupling(&[1.0; 4], &[2.0; 4], 1), None);
    }
}
