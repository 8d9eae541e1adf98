//! Exact count samplers the `cohorts` engine needs beyond rand_distr's: a multinomial (successive
//! conditional binomials), the occupancy histogram of balls thrown uniformly into bins, and a
//! Poisson conditioned to exceed a value. Each is tested against its exact law below.

use rand::RngExt;
use rand_distr::{Binomial, Distribution, Poisson};

use crate::engine::rng::Stream;

/// Binomial(n, p) with p clamped to [0, 1] (rounding can push a ratio of sums a hair past 1).
pub fn binomial(n: u64, p: f64, r: &mut Stream) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).expect("p in (0, 1)").sample(r)
}

/// Below this many draws (or marked items) a hypergeometric is drawn literally: rand_distr's
/// constructor can loop over the whole sample when the expected count is small, which costs far
/// more than a few thousand uniform draws.
const LITERAL_HYPERGEOMETRIC_MAX: u64 = 4096;

/// Hypergeometric: successes among `n` drawn without replacement from `total` items of which
/// `marked` are successes. By the symmetry HG(N, K, n) = HG(N, n, K), the smaller of K and n is
/// drawn literally when small, one item at a time; otherwise rand_distr's sampler (and the literal
/// draw where it declines the parameters: its inversion start can underflow).
pub fn hypergeometric(total: u64, marked: u64, n: u64, r: &mut Stream) -> u64 {
    if n == 0 || marked == 0 {
        return 0;
    }
    if marked >= total {
        return n.min(total);
    }
    if n >= total {
        return marked;
    }
    // Keep both the marked items and the draws to at most half the population: the complements
    // have the same law (unmarked drawn; marked left out of the draw), and rand_distr's set-up
    // otherwise loops over the larger side when the expected count is small.
    if marked > total / 2 {
        return n - hypergeometric(total, total - marked, n, r);
    }
    if n > total / 2 {
        return marked - hypergeometric(total, marked, total - n, r);
    }
    let (few, many) = if marked <= n {
        (marked, n)
    } else {
        (n, marked)
    };
    if few > LITERAL_HYPERGEOMETRIC_MAX
        && let Ok(h) = rand_distr::Hypergeometric::new(total, marked, n)
    {
        return h.sample(r);
    }
    // Each of the `few` items, in turn, falls among the `many` with chance (many left)/(total left).
    let (mut left, mut many_left, mut hits) = (total, many, 0);
    for _ in 0..few {
        if r.random_range(0..left) < many_left {
            hits += 1;
            many_left -= 1;
        }
        left -= 1;
    }
    hits
}

/// Poisson(mean) as a count; 0 for a zero mean.
pub fn poisson(mean: f64, r: &mut Stream) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).expect("finite positive mean").sample(r) as u64
}

/// Multinomial(n, weights / Σ weights) into `out` (same length as `weights`), by successive
/// conditional binomials: count_i ~ Binomial(left, w_i / Σ_{k ≥ i} w_k).
pub fn multinomial(n: u64, weights: &[f64], r: &mut Stream, out: &mut Vec<u64>) {
    out.clear();
    out.resize(weights.len(), 0);
    let mut rest: f64 = weights.iter().sum();
    let mut left = n;
    let last_positive = weights.iter().rposition(|&w| w > 0.0);
    for (i, &w) in weights.iter().enumerate() {
        if left == 0 {
            break;
        }
        let k = match last_positive {
            Some(l) if l == i => left,
            _ => binomial(left, w / rest, r),
        };
        out[i] = k;
        left -= k;
        rest -= w;
    }
}

/// P(X = j) / P(X ≥ j) for X ~ Poisson(μ): the chance that a value known to be ≥ j equals j,
/// summed as 1 / (1 + μ/(j+1) + μ²/((j+1)(j+2)) + …) so that it stays accurate in the far tail.
fn poisson_hazard(mu: f64, j: u64) -> f64 {
    const RELATIVE_EPS: f64 = 1e-17;
    const MAX_TERMS: u64 = 100_000;
    let (mut term, mut sum) = (1.0, 1.0);
    for i in 1..MAX_TERMS {
        term *= mu / (j + i) as f64;
        sum += term;
        if term < sum * RELATIVE_EPS {
            break;
        }
    }
    1.0 / sum
}

/// The histogram of `balls` thrown independently and uniformly into `bins` bins:
/// `h[j]` = number of bins holding j balls. Exact: n i.i.d. Poisson(balls / bins) counts,
/// conditioned on their sum, are Multinomial(sum, uniform); so draw them, then add balls to
/// uniformly chosen bins or remove uniformly chosen balls until the sum is `balls`.
pub fn occupancy(bins: u64, balls: u64, r: &mut Stream) -> Vec<u64> {
    if bins == 0 || balls == 0 {
        return vec![bins];
    }
    let mu = balls as f64 / bins as f64;
    let mut h: Vec<u64> = Vec::new();
    let mut left = bins;
    let mut j = 0;
    while left > 0 {
        let k = binomial(left, poisson_hazard(mu, j), r);
        h.push(k);
        left -= k;
        j += 1;
    }
    let mut total: u64 = h.iter().enumerate().map(|(j, &c)| j as u64 * c).sum();
    while total < balls {
        let level = pick_level(&h, |_, c| c, bins, r);
        move_one(&mut h, level, level + 1);
        total += 1;
    }
    while total > balls {
        let level = pick_level(&h, |j, c| j as u64 * c, total, r);
        move_one(&mut h, level, level - 1);
        total -= 1;
    }
    h
}

/// A level chosen with probability weight(level) / total.
fn pick_level(h: &[u64], weight: impl Fn(usize, u64) -> u64, total: u64, r: &mut Stream) -> usize {
    let mut x = r.random_range(0..total);
    for (j, &c) in h.iter().enumerate() {
        let w = weight(j, c);
        if x < w {
            return j;
        }
        x -= w;
    }
    unreachable!("weights sum to total")
}

fn move_one(h: &mut Vec<u64>, from: usize, to: usize) {
    if to >= h.len() {
        h.resize(to + 1, 0);
    }
    h[from] -= 1;
    h[to] += 1;
}

/// X ~ Poisson(μ) conditioned on X > m, by inversion over the tail's hazards.
pub fn poisson_above(mu: f64, m: u64, r: &mut Stream) -> u64 {
    let mut j = m + 1;
    loop {
        if r.random::<f64>() < poisson_hazard(mu, j) {
            return j;
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::{Stage, stream};

    fn rng(i: u64) -> Stream {
        stream(99, i, 0, 0, Stage::Population, 0)
    }

    /// Chi-square statistic of observed counts against expected ones (cells with expectation ≥ 5).
    fn chi_square(observed: &[f64], expected: &[f64]) -> (f64, usize) {
        let cells: Vec<(f64, f64)> = observed
            .iter()
            .zip(expected)
            .filter(|(_, e)| **e >= 5.0)
            .map(|(o, e)| (*o, *e))
            .collect();
        (
            cells.iter().map(|(o, e)| (o - e) * (o - e) / e).sum(),
            cells.len() - 1,
        )
    }

    #[test]
    fn multinomial_matches_its_means_and_keeps_the_total() {
        // Mean of cell i is n p_i; the test allows 5 standard errors over `reps` replications.
        let weights = [0.5, 0.0, 0.25, 0.25];
        let (n, reps) = (40u64, 20_000);
        let mut sums = [0.0; 4];
        let mut out = Vec::new();
        let mut r = rng(1);
        for _ in 0..reps {
            multinomial(n, &weights, &mut r, &mut out);
            assert_eq!(out.iter().sum::<u64>(), n);
            assert_eq!(out[1], 0);
            for i in 0..4 {
                sums[i] += out[i] as f64;
            }
        }
        for (i, &w) in weights.iter().enumerate() {
            let mean = n as f64 * w;
            let se = (n as f64 * w * (1.0 - w) / reps as f64).sqrt();
            assert!(
                (sums[i] / reps as f64 - mean).abs() <= 5.0 * se + 1e-12,
                "cell {i}"
            );
        }
    }

    #[test]
    fn occupancy_has_the_exact_law_of_balls_in_bins() {
        // 3 balls in 4 bins: P(histogram) from the 4^3 = 64 equally likely throws:
        // all in one bin: 4/64; a pair and a single: 36/64; three singles: 24/64.
        let reps = 40_000;
        let mut seen = [0.0; 3];
        let mut r = rng(2);
        for _ in 0..reps {
            let h = occupancy(4, 3, &mut r);
            let total: u64 = h.iter().enumerate().map(|(j, &c)| j as u64 * c).sum();
            assert_eq!(total, 3);
            assert_eq!(h.iter().sum::<u64>(), 4);
            let class = if h.get(3).copied().unwrap_or(0) == 1 {
                0
            } else if h.get(2).copied().unwrap_or(0) == 1 {
                1
            } else {
                2
            };
            seen[class] += 1.0;
        }
        let expected = [4.0, 36.0, 24.0].map(|x| x / 64.0 * reps as f64);
        let (chi, dof) = chi_square(&seen, &expected);
        // The 99.99% point of chi-square with 2 degrees of freedom is 18.4.
        assert_eq!(dof, 2);
        assert!(chi < 18.4, "chi-square {chi}");
    }

    #[test]
    fn poisson_above_is_the_conditional_tail() {
        // Poisson(1.5) given X > 2: P(3) = p3 / P(X > 2) with p3 = e^-1.5 1.5^3/6 = 0.125511
        // and P(X > 2) = 1 − e^-1.5 (1 + 1.5 + 1.125) = 0.191153; so P(3 | X > 2) = 0.656600.
        let reps = 20_000;
        let mut r = rng(3);
        let threes = (0..reps)
            .filter(|_| poisson_above(1.5, 2, &mut r) == 3)
            .count() as f64;
        let p = 0.656_600;
        let se = (p * (1.0 - p) / reps as f64).sqrt();
        assert!((threes / reps as f64 - p).abs() < 5.0 * se);
    }

    #[test]
    fn hypergeometric_matches_its_pmf_on_every_path() {
        // Counts C(K, x) C(12 − K, n − x) out of C(12, 4) = C(12, 8) = 495, by hand:
        // HG(12, 5, 4) and HG(12, 4, 5): 35, 175, 210, 70, 5 for x = 0..4 (the literal path, both
        // argument orders); HG(12, 7, 4): 5, 70, 210, 175, 35 (marked above half: complement);
        // HG(12, 5, 8): 0, 5, 70, 210, 175, 35 for x = 0..5 (draws above half: complement).
        let cases: [(u64, u64, &[f64]); 4] = [
            (5, 4, &[35.0, 175.0, 210.0, 70.0, 5.0]),
            (4, 5, &[35.0, 175.0, 210.0, 70.0, 5.0]),
            (7, 4, &[5.0, 70.0, 210.0, 175.0, 35.0]),
            (5, 8, &[0.0, 5.0, 70.0, 210.0, 175.0, 35.0]),
        ];
        let reps = 40_000;
        for (k, n, counts) in cases {
            let expected: Vec<f64> = counts.iter().map(|c| c / 495.0 * reps as f64).collect();
            let mut seen = vec![0.0; counts.len()];
            let mut r = rng(6 + k * 10 + n);
            for _ in 0..reps {
                seen[hypergeometric(12, k, n, &mut r) as usize] += 1.0;
            }
            let (chi, dof) = chi_square(&seen, &expected);
            // The 99.99% point of chi-square with 4 degrees of freedom is 23.5.
            assert_eq!(dof, 4);
            assert!(chi < 23.5, "chi-square {chi} for K = {k}, n = {n}");
        }
    }

    #[test]
    fn hypergeometric_fallback_has_the_right_mean() {
        // Mean of HG(N, K, n) is n K / N; variance n (K/N)(1 − K/N)(N − n)/(N − 1).
        let (total, marked, n, reps) = (50_000u64, 100u64, 20_000u64, 4_000);
        let mut r = rng(5);
        let sum: f64 = (0..reps)
            .map(|_| hypergeometric(total, marked, n, &mut r) as f64)
            .sum();
        let p = marked as f64 / total as f64;
        let var = n as f64 * p * (1.0 - p) * (total - n) as f64 / (total - 1) as f64;
        let se = (var / reps as f64).sqrt();
        assert!((sum / reps as f64 - n as f64 * p).abs() < 5.0 * se);
    }
}
