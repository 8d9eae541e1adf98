//! Exact count samplers the `cohorts` engine needs beyond rand_distr's: a binomial (inversion,
//! or BTRS) and a hypergeometric drawn from one seed so that paired runs stay close, a
//! multinomial (successive conditional binomials), a multivariate hypergeometric, the occupancy
//! histogram of balls thrown uniformly into bins, and a Poisson conditioned to exceed a value.
//! Each is tested against its exact law below.

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Distribution, Poisson};

use crate::engine::rng::{Stream, mix64};

/// Binomial(n, p) with p clamped to [0, 1] (rounding can push a ratio of sums a hair past 1).
///
/// It takes exactly one number from `r`, whatever n and p, and draws from a generator seeded
/// with it ([`binomial_seeded`]): so a run where a count differs a little from another's (a split
/// against the reference, a scenario against its baseline) still meets the same later draws.
pub fn binomial(n: u64, p: f64, r: &mut Stream) -> u64 {
    binomial_seeded(n, p, r.next_u64())
}

/// Below this mean (of the smaller of successes and failures) a binomial is drawn by inversion.
const BINOMIAL_INVERSION_MEAN_MAX: f64 = 10.0;

/// Binomial(n, p) from one seed, exact, and *monotone in n* for most seeds: by inversion of one
/// uniform when the mean is small, else by Hörmann's transformed rejection with squeeze (BTRS:
/// "The generation of binomial random variates", J. Statist. Comput. Simul. 46, 1993), whose
/// first proposal is accepted without any test ~85% of the time and is then a smooth function
/// of n, p and two uniforms: Binomial(n + 1, p) from the same seed is the same count or one more.
/// That is what keeps paired runs coupled where a count they share differs by a few users.
pub fn binomial_seeded(n: u64, p: f64, seed: u64) -> u64 {
    binomial_with(n, p, None, seed)
}

/// A binomial's chance p with ln(1 − min(p, 1 − p)), which [`binomial_seeded`] needs for an
/// inversion: a multinomial over fixed weights drawn many times ([`ChanceChain`]) computes it
/// once.
#[derive(Clone, Copy, Debug)]
struct Chance {
    p: f64,
    ln_1m_half: f64,
}

impl Chance {
    fn new(p: f64) -> Self {
        let half = if p > 0.5 { 1.0 - p } else { p };
        Chance {
            p,
            ln_1m_half: (-half).ln_1p(),
        }
    }

    /// Binomial(n, p) from `seed`: [`binomial_seeded`]'s count, its logarithm not made again.
    fn binomial(&self, n: u64, seed: u64) -> u64 {
        binomial_with(n, self.p, Some(self.ln_1m_half), seed)
    }
}

/// [`binomial_seeded`], given ln(1 − min(p, 1 − p)) or not.
fn binomial_with(n: u64, p: f64, ln_1m_half: Option<f64>, seed: u64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    // Past ½ the count is n less the failures, drawn with the uniforms mirrored, so that the
    // two sides meet at ½: a chance that crosses ½ between paired runs still moves the count by
    // about the change of its mean.
    if p > 0.5 {
        return n - binomial_half(n, 1.0 - p, ln_1m_half, seed, true);
    }
    binomial_half(n, p, ln_1m_half, seed, false)
}

/// [`binomial_seeded`] for p ≤ ½ (`ln_q`: ln(1 − p), if known), with its uniforms mirrored
/// (u ↦ 1 − u) if `mirror`.
fn binomial_half(n: u64, p: f64, ln_q: Option<f64>, seed: u64, mirror: bool) -> u64 {
    if float(n) * p < BINOMIAL_INVERSION_MEAN_MAX {
        let u = unit_uniform(mix64(seed));
        return binomial_by_inversion(n, p, ln_q, if mirror { 1.0 - u } else { u });
    }
    btrs(n, p, &mut Stream::seed_from_u64(seed), mirror)
}

/// A count as a float, exact: counts lie far below 2^53. Converted through `i64`, one instruction
/// on the baseline x86-64 where a `u64` takes six; the value is the same.
#[inline(always)]
pub(crate) fn float(n: u64) -> f64 {
    debug_assert!(n < 1 << 53, "counts are far below 2^53");
    n as i64 as f64
}

/// ⌊x⌋ as a count, for an x in [0, 2^53): its truncation, through `i64` as [`float`].
#[inline(always)]
fn count(x: f64) -> u64 {
    debug_assert!((0.0..(1u64 << 53) as f64).contains(&x), "{x}");
    x as i64 as u64
}

/// A uniform on [0, 1) from 64 random bits (their top 53).
pub fn unit_uniform(bits: u64) -> f64 {
    float(bits >> 11) * (1.0 / (1u64 << 53) as f64)
}

/// How far below 1 − mean a uniform must lie for [`surely_zero`]: far more than the rounding
/// error of a computed P(0) (10^-11 or less where the mean is below 1: see
/// [`hypergeometric_zero`]).
const SURELY_ZERO_MARGIN: f64 = 1e-6;

/// Whether a search from 0 on the uniform `u` stops at once (u ≤ P(0)) for a count of mean
/// `mean`, known without computing P(0): a count's P(X ≥ 1) is at most its mean (Markov), so
/// P(0) ≥ 1 − mean, and a `u` below that, by a margin over P(0)'s rounding, gives 0. The count
/// is the one the search would give; only its `exp` or Stirling's series is spared (for 39% of
/// the binomial and 47% of the hypergeometric inversions at 10^9 users, about half at 10^6).
fn surely_zero(mean: f64, u: f64) -> bool {
    u <= 1.0 - mean - SURELY_ZERO_MARGIN
}

/// Binomial(n, p), n p < 10, by sequential search from 0: P(0) = (1 − p)^n = exp(n ln(1 − p))
/// (`ln_q`, computed here if not given and wanted), then P(x + 1) / P(x) = (n − x) p / ((x + 1)
/// (1 − p)).
fn binomial_by_inversion(n: u64, p: f64, ln_q: Option<f64>, u: f64) -> u64 {
    if surely_zero(float(n) * p, u) {
        return 0;
    }
    binomial_searched(n, p, ln_q.unwrap_or_else(|| (-p).ln_1p()), u)
}

/// [`binomial_by_inversion`]'s search, P(0) computed whatever `u`.
fn binomial_searched(n: u64, p: f64, ln_q: f64, u: f64) -> u64 {
    let (q, nf) = (1.0 - p, float(n));
    search_from_zero((nf * ln_q).exp(), u, n, |x| (nf - x) * p / ((x + 1.0) * q))
}

/// The search from 0 of both inversions: the count x at which the uniform `u` falls, the least
/// x ≤ `most` with u ≤ P(0) + … + P(x), given P(0) (`p0`) and each P(x + 1) / P(x) (`ratio`, of
/// x as a float).
///
/// The ratios take x and the counts it is subtracted from or added to as floats, kept by adding
/// and subtracting 1: exact for integers below 2^53, so each ratio is the one the integers
/// converted at every step would give, without a conversion of a `u64` (several instructions
/// each on the baseline processor) at every step.
#[inline(always)]
fn search_from_zero(p0: f64, mut u: f64, most: u64, ratio: impl Fn(f64) -> f64) -> u64 {
    let (mut p, mut x, mut xf) = (p0, 0, 0.0);
    while u > p && x < most {
        u -= p;
        p *= ratio(xf);
        x += 1;
        xf += 1.0;
    }
    x
}

/// BTRS for p ≤ ½ and n p ≥ 10: propose k = ⌊(2a/u_s + b) u + c⌋ from two uniforms; accept at
/// once inside the squeeze (u_s ≥ 0.07, v ≤ v_r), else when ln(v α / (a/u_s² + b)) is at most
/// ln f(k)/f(m), f being the pmf and m its mode.
fn btrs(n: u64, p: f64, r: &mut Stream, mirror: bool) -> u64 {
    debug_assert!(n < 1 << 53, "counts are far below 2^53");
    let q = 1.0 - p;
    let nf = float(n);
    let spq = (nf * p * q).sqrt();
    let b = 1.15 + 2.53 * spq;
    let a = -0.0873 + 0.0248 * b + 0.01 * p;
    let c = nf * p + 0.5;
    let v_r = 0.92 - 4.2 / b;
    let alpha = (2.83 + 5.1 / b) * spq;
    // ⌊x⌋ of an x ≥ 0 is its truncation, which the cast makes: the processor's baseline
    // instructions have no floor, so `floor` would be a call into the C library.
    let m = count((nf + 1.0) * p);
    loop {
        let u = if mirror {
            0.5 - r.random::<f64>()
        } else {
            r.random::<f64>() - 0.5
        };
        let v: f64 = r.random();
        let us = 0.5 - u.abs();
        // k = ⌊x⌋ lies in 0..=n exactly when x lies in [0, n + 1) (n + 1 is exact: n < 2^53).
        let x = (2.0 * a / us + b) * u + c;
        if !(0.0..nf + 1.0).contains(&x) {
            continue;
        }
        let k = count(x);
        if us >= 0.07 && v <= v_r {
            return k;
        }
        let log_ratio = ln_factorial_ratio(m, k)
            + ln_factorial_ratio(n - m, n - k)
            + (float(k) - float(m)) * (p / q).ln();
        if (v * alpha / (a / (us * us) + b)).ln() <= log_ratio {
            return k;
        }
    }
}

/// ln(x!) exactly enough for small x (a sum of logarithms, error ~10^-14).
fn ln_factorial_small(x: u64) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = vec![0.0; STIRLING_SERIES_MIN as usize];
        for i in 1..t.len() {
            t[i] = t[i - 1] + (i as f64).ln();
        }
        t
    });
    table[x as usize]
}

/// ln(a!) − ln(b!), arranged for large a and b that differ little: with Stirling's formula the
/// terms of the size of ln(a!) cancel exactly, leaving
/// (a + ½) ln(1 + (a − b)/b) + (a − b)(ln b − 1) + s(a) − s(b), each about |a − b| ln b.
fn ln_factorial_ratio(a: u64, b: u64) -> f64 {
    let limit = STIRLING_SERIES_MIN as u64;
    if a < limit || b < limit {
        let ln_factorial = |x: u64| {
            if x < limit {
                ln_factorial_small(x)
            } else {
                let y = float(x);
                (y + 0.5) * y.ln() - y + 0.5 * (2.0 * std::f64::consts::PI).ln() + stirling_error(y)
            }
        };
        return ln_factorial(a) - ln_factorial(b);
    }
    let (x, y) = (float(a), float(b));
    let d = x - y;
    (x + 0.5) * (d / y).ln_1p() + d * (y.ln() - 1.0) + stirling_error(x) - stirling_error(y)
}

/// Below this many draws (or marked items) a hypergeometric is drawn literally, one item at a
/// time; above it by inversion (small means) or rand_distr's H2PE.
const LITERAL_HYPERGEOMETRIC_MAX: u64 = 64;

/// Hypergeometric: successes among `n` drawn without replacement from `total` items of which
/// `marked` are successes. By the symmetry HG(N, K, n) = HG(N, n, K), the smaller of K and n is
/// drawn literally when small, one item at a time; otherwise rand_distr's sampler (and the literal
/// draw where it declines the parameters: its inversion start can underflow). The engine draws
/// hypergeometrics with [`hypergeometric_keyed`], which falls back on this sampler (uncoupled)
/// only past `RANKS_DEPTH_MAX`; the tests reach its every path through here.
#[cfg(test)]
pub fn hypergeometric(total: u64, marked: u64, n: u64, r: &mut Stream) -> u64 {
    reduced_hypergeometric(total, marked, n, &mut |total, few, many| {
        hypergeometric_reduced(total, few, many, r)
    })
}

/// Hypergeometric(total, marked, n) where it takes no draw: nothing marked or drawn (0), every
/// item marked (all drawn) or drawn (all marked).
fn hypergeometric_certain(total: u64, marked: u64, n: u64) -> Option<u64> {
    if n == 0 || marked == 0 {
        Some(0)
    } else if marked >= total {
        Some(n.min(total))
    } else if n >= total {
        Some(marked)
    } else {
        None
    }
}

/// Hypergeometric(total, marked, n) from `draw(total, few, many)`, which is given few ≤ many ≤
/// total/2 (the trivial cases are answered here). Both the marked items and the draws are kept
/// to at most half the population: the complements have the same law (unmarked drawn; marked
/// left out of the draw), and rand_distr's set-up otherwise loops over the larger side when the
/// expected count is small. By the symmetry HG(N, K, n) = HG(N, n, K), few and many are the
/// smaller and larger of K and n.
fn reduced_hypergeometric(
    total: u64,
    marked: u64,
    n: u64,
    draw: &mut dyn FnMut(u64, u64, u64) -> u64,
) -> u64 {
    if let Some(x) = hypergeometric_certain(total, marked, n) {
        return x;
    }
    if marked > total / 2 {
        return n - reduced_hypergeometric(total, total - marked, n, draw);
    }
    if n > total / 2 {
        return marked - reduced_hypergeometric(total, marked, total - n, draw);
    }
    draw(total, marked.min(n), marked.max(n))
}

/// The tests' `hypergeometric` once reduced: HG(total, few, many) with few ≤ many ≤ total/2.
fn hypergeometric_reduced(total: u64, few: u64, many: u64, r: &mut Stream) -> u64 {
    if few > LITERAL_HYPERGEOMETRIC_MAX {
        // rand_distr's set-up for a small mean (its inversion branch) multiplies over a range as
        // long as the population: invert from 0 ourselves, with P(0) a product over `few` terms.
        if float(few) * float(many) / float(total) < INVERSION_MEAN_MAX {
            return hypergeometric_by_inversion(total, few, many, r);
        }
        if let Ok(h) = rand_distr::Hypergeometric::new(total, few, many) {
            return h.sample(r);
        }
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

/// Below this mean, large hypergeometrics are drawn by inversion from 0.
const INVERSION_MEAN_MAX: f64 = 30.0;

/// Hypergeometric(total, few, many) by sequential search from 0: P(0) = Π_{i<few} (total − many −
/// i) / (total − i), then P(x+1) / P(x) = (few − x)(many − x) / ((x + 1)(total − few − many + x +
/// 1)). Used for small means only, where P(0) does not underflow.
fn hypergeometric_by_inversion(total: u64, few: u64, many: u64, r: &mut Stream) -> u64 {
    hypergeometric_inverted(total, few, many, r.random())
}

/// [`hypergeometric_by_inversion`] of the uniform `u`.
fn hypergeometric_inverted(total: u64, few: u64, many: u64, u: f64) -> u64 {
    if surely_zero(float(few) * float(many) / float(total), u) {
        return 0;
    }
    hypergeometric_searched(total, few, many, u)
}

/// [`hypergeometric_inverted`]'s search, P(0) computed whatever `u`.
fn hypergeometric_searched(total: u64, few: u64, many: u64, u: f64) -> u64 {
    let (few_f, many_f) = (float(few), float(many));
    let rest = float(total - few - many);
    search_from_zero(hypergeometric_zero(total, few, many), u, few, |x| {
        (few_f - x) * (many_f - x) / ((x + 1.0) * (rest + x + 1.0))
    })
}

/// Up to this many factors P(0) of a hypergeometric is their product; beyond, Stirling's series.
const ZERO_PRODUCT_MAX: u64 = 16;

/// Below this, an argument of `stirling_error` is out of its series' reach.
const STIRLING_SERIES_MIN: f64 = 1000.0;

/// P(0) of Hypergeometric(total, few, many) = Γ(N−m+1) Γ(N−k+1) / (Γ(N−m−k+1) Γ(N+1)) with
/// N = total, k = few, m = many. The product of its `few` factors costs O(few) (10^5 at national
/// scale); past `ZERO_PRODUCT_MAX` factors it is taken from Stirling's formula, arranged so that
/// nothing of the size of ln Γ(N) is ever subtracted: the linear terms cancel exactly and
/// ln P(0) = k ln(1 − m/N) − (N−m−k+½) ln(1 − k/(N−m)) + (N−k+½) ln(1 − k/N)
///          + s(N−m) − s(N−m−k) − s(N) + s(N−k),
/// s being Stirling's error. The two middle terms are each about ±k, so the absolute error of
/// ln P(0) is about k × 10^-16 (10^-11 at k = 10^5), below the product's own rounding.
fn hypergeometric_zero(total: u64, few: u64, many: u64) -> f64 {
    let rest = total - few - many;
    if few <= ZERO_PRODUCT_MAX || float(rest) < STIRLING_SERIES_MIN {
        // Each factor's counts as floats, kept by subtracting 1 (exact below 2^53).
        let (mut p0, mut unmarked, mut all) = (1.0, float(total - many), float(total));
        for _ in 0..few {
            p0 *= unmarked / all;
            unmarked -= 1.0;
            all -= 1.0;
        }
        return p0;
    }
    let (n, k, m) = (float(total), float(few), float(many));
    let ln_p0 = k * (-m / n).ln_1p() - ((n - m - k) + 0.5) * (-k / (n - m)).ln_1p()
        + ((n - k) + 0.5) * (-k / n).ln_1p()
        + stirling_error(n - m)
        - stirling_error(n - m - k)
        - stirling_error(n)
        + stirling_error(n - k);
    ln_p0.exp()
}

/// ln Γ(y+1) − ((y+½) ln y − y + ½ ln 2π) for y ≥ `STIRLING_SERIES_MIN`, by its asymptotic series
/// 1/(12y) − 1/(360y³) + 1/(1260y⁵) − 1/(1680y⁷) (the next term is below 10^-24 there).
fn stirling_error(y: f64) -> f64 {
    const C1: f64 = 1.0 / 12.0;
    const C3: f64 = 1.0 / 360.0;
    const C5: f64 = 1.0 / 1260.0;
    const C7: f64 = 1.0 / 1680.0;
    // One division: the series in 1/y.
    let r = 1.0 / y;
    let r2 = r * r;
    (C1 - (C3 - (C5 - C7 * r2) * r2) * r2) * r
}

/// Poisson(mean) as a count; 0 for a zero mean.
pub fn poisson(mean: f64, r: &mut Stream) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).expect("finite positive mean").sample(r) as u64
}

/// Multinomial(n, weights / Σ weights) into `out` (same length as `weights`), by successive
/// conditional binomials: count_i ~ Binomial(left, w_i / Σ_{k ≥ i} w_k), each from the next
/// number of `r` (see [`multinomial_keyed`]).
pub fn multinomial(n: u64, weights: &[f64], r: &mut Stream, out: &mut Vec<u64>) {
    multinomial_keyed(n, weights, |_| r.next_u64(), out);
}

/// Multinomial(n, weights / Σ weights) into `out` by successive conditional binomials, category
/// i's from the seed `seed(i)`, asked for in order and only while items are left (the last
/// category of positive weight takes what is left, with no draw). With seeds of the categories'
/// own (a cohort's state, say), where one paired run has a category the other lacks, the other
/// categories keep their seeds, so their counts stay a few apart.
pub fn multinomial_keyed(
    n: u64,
    weights: &[f64],
    mut seed: impl FnMut(usize) -> u64,
    out: &mut Vec<u64>,
) {
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
            _ => binomial_seeded(left, w / rest, seed(i)),
        };
        out[i] = k;
        left -= k;
        rest -= w;
    }
}

/// The conditional chances of [`multinomial_keyed`] for fixed weights, prepared once for
/// multinomials drawn over them many times: category i's chance w_i / Σ_{k ≥ i} w_k, and the
/// last category of positive weight (which takes what is left).
pub struct ChanceChain {
    chances: Vec<Chance>,
    last_positive: Option<usize>,
}

impl ChanceChain {
    pub fn new(weights: &[f64]) -> Self {
        let mut rest: f64 = weights.iter().sum();
        let chances = weights
            .iter()
            .map(|&w| {
                let chance = Chance::new(w / rest);
                rest -= w;
                chance
            })
            .collect();
        ChanceChain {
            chances,
            last_positive: weights.iter().rposition(|&w| w > 0.0),
        }
    }

    /// [`multinomial`] over the chain's weights: the same counts from the same numbers (tested).
    /// The loop is [`multinomial_keyed`]'s, kept apart: sharing one loop through a closure for
    /// the chances made the national replication slower in two sets of alternated runs (+0.004
    /// and +0.006 s), the walk drawing this multinomial at every standing and position.
    pub fn multinomial(&self, n: u64, r: &mut Stream, out: &mut Vec<u64>) {
        out.clear();
        out.resize(self.chances.len(), 0);
        let mut left = n;
        for (i, chance) in self.chances.iter().enumerate() {
            if left == 0 {
                break;
            }
            let k = match self.last_positive {
                Some(l) if l == i => left,
                _ => chance.binomial(left, r.next_u64()),
            };
            out[i] = k;
            left -= k;
        }
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

/// A multivariate hypergeometric draw: how many of each category are among `n` items drawn
/// without replacement from `counts[i]` items of category i, by successive conditional
/// hypergeometrics (category i among the items left after the categories drawn before it), the
/// largest category last (it takes what is left, with no draw).
///
/// For paired runs it takes exactly one number from `r` per category, and each category's count
/// comes from its own number by [`hypergeometric_keyed`] (inversion of one uniform for small
/// means): a draw a few items larger, from counts a few items different, gives counts a few
/// apart, and the stream stays aligned whatever the counts.
pub fn multivariate_hypergeometric(counts: &[u64], n: u64, r: &mut Stream, out: &mut Vec<u64>) {
    // On the stack for the engine's few kinds (it is drawn for every gap range and halving).
    const ON_STACK: usize = 16;
    let (mut stack, mut heap) = ([0; ON_STACK], Vec::new());
    let seeds: &mut [u64] = if counts.len() <= ON_STACK {
        &mut stack[..counts.len()]
    } else {
        heap.resize(counts.len(), 0);
        &mut heap
    };
    seeds.fill_with(|| r.next_u64());
    multivariate_hypergeometric_keyed(counts, n, |i| seeds[i], out);
}

/// Below this mean a keyed hypergeometric is drawn by inversion of one uniform (whose search
/// costs about the mean in steps); above, by ranks, down to a remainder below it.
const KEYED_INVERSION_MEAN_MAX: f64 = 30.0;

/// Hypergeometric(total, marked, n) from one seed, so that from the same seed a draw with
/// parameters a little different is a count a little different (a monotone coupling, for most
/// seeds): by inversion of one uniform while its mean is below `KEYED_INVERSION_MEAN_MAX`;
/// above, by [`hypergeometric_by_ranks`], whose draws come from seeds derived from this one.
pub fn hypergeometric_keyed(total: u64, marked: u64, n: u64, seed: u64) -> u64 {
    hypergeometric_by_ranks(total, marked, n, seed, 0)
}

/// Past this depth [`hypergeometric_by_ranks`] hands over to the uncoupled sampler (each level
/// takes the count left to draw from m to about √m, so it is never reached in practice).
const RANKS_DEPTH_MAX: u64 = 16;

/// The items drawn are the `n` of smallest rank when every item gets an independent uniform
/// rank in [0, 1). Cut the ranks at q = n / total: the marked and unmarked items below the cut
/// are independent Binomial(·, q) counts, `low` in all, and given them the ranks on either side
/// are again independent uniforms. So if low ≥ n the items drawn are a uniformly random n of the
/// low ones (the marked among the low − n others left out are a smaller hypergeometric), else
/// all the low ones and a uniformly random n − low of the others. Either way what is left has
/// about √n items to draw, and is drawn the same way until its mean is small enough for
/// inversion. Both binomials are smooth in q and their counts for most seeds, and so is the
/// inversion: that keeps the whole draw close to its neighbours'.
fn hypergeometric_by_ranks(total: u64, marked: u64, n: u64, seed: u64, depth: u64) -> u64 {
    if let Some(x) = hypergeometric_certain(total, marked, n) {
        return x;
    }
    let key = mix64(seed ^ mix64(depth));
    let (few, many) = (marked.min(total - marked), n.min(total - n));
    if float(few) * float(many) / float(total) < KEYED_INVERSION_MEAN_MAX {
        // By inversion of the reduced draw; each complement the reduction takes (the unmarked
        // drawn, or the marked left out) turns the count around, so the uniform is mirrored as
        // often: the draw stays the same quantile on either side of a half.
        let mirrored = (marked > total / 2) != (n > total / 2);
        let u = unit_uniform(key);
        let u = if mirrored { 1.0 - u } else { u };
        return reduced_hypergeometric(total, marked, n, &mut |total, few, many| {
            hypergeometric_inverted(total, few, many, u)
        });
    }
    if depth >= RANKS_DEPTH_MAX {
        return reduced_hypergeometric(total, marked, n, &mut |total, few, many| {
            hypergeometric_reduced(total, few, many, &mut Stream::seed_from_u64(key))
        });
    }
    // The `n` items of smallest rank are drawn: cut the ranks at q = n / total. Always the
    // drawn items and the marked ones, never their complements, so that parameters crossing a
    // half between paired runs do not swap what is counted.
    let q = float(n) / float(total);
    let marked_low = binomial_seeded(marked, q, mix64(key ^ 1));
    let other_low = binomial_seeded(total - marked, q, mix64(key ^ 2));
    let low = marked_low + other_low;
    if low >= n {
        marked_low - hypergeometric_by_ranks(low, marked_low, low - n, seed, depth + 1)
    } else {
        marked_low
            + hypergeometric_by_ranks(total - low, marked - marked_low, n - low, seed, depth + 1)
    }
}

/// A multivariate hypergeometric draw (as [`multivariate_hypergeometric`], the largest category
/// last) whose category i is drawn from its own seed, `seed(i)`, by [`hypergeometric_keyed`]:
/// paired runs that deal a few items more or less, among categories a little different, get
/// counts a little different.
pub fn multivariate_hypergeometric_keyed(
    counts: &[u64],
    n: u64,
    seed: impl Fn(usize) -> u64,
    out: &mut Vec<u64>,
) {
    out.clear();
    out.resize(counts.len(), 0);
    let Some(largest) = (0..counts.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))) else {
        return;
    };
    let mut left: u64 = counts.iter().sum();
    let mut wanted = n.min(left);
    for (i, &c) in counts.iter().enumerate().filter(|x| x.0 != largest) {
        let k = hypergeometric_keyed(left, c, wanted, seed(i));
        out[i] = k;
        left -= c;
        wanted -= k;
    }
    out[largest] = wanted;
}

/// A multivariate hypergeometric draw (`n` of the items, `counts[i]` of category i, uniformly
/// without replacement) by ranks, for paired runs whose counts and `n` differ by a fraction of a
/// percent: give every item an independent uniform rank and take the n smallest. Below the cut
/// q = n / total, category i holds an independent `Binomial(counts[i], q)` of them, drawn from its
/// own seed; the L below the cut are then trimmed to n by removing L − n of them uniformly (when
/// L > n), or topped up with n − L of the others uniformly (when L < n), each a multivariate
/// hypergeometric draw of only about √n items ([`multivariate_hypergeometric_keyed`]). A total a
/// little different moves every category's binomial smoothly, instead of passing each
/// category's deviation on to the conditional draws of the categories after it.
pub fn multivariate_hypergeometric_by_ranks(
    counts: &[u64],
    n: u64,
    seed: impl Fn(usize) -> u64,
    out: &mut Vec<u64>,
) {
    let total: u64 = counts.iter().sum();
    let n = n.min(total);
    out.clear();
    if n == total {
        out.extend_from_slice(counts);
        return;
    }
    // Every category's binomial has chance q: its logarithm for the inversions made once.
    let q = Chance::new(float(n) / float(total));
    out.extend((counts.iter().enumerate()).map(|(i, &c)| q.binomial(c, mix64(seed(i) ^ 1))));
    let low: u64 = out.iter().sum();
    let mut change = Vec::new();
    if low > n {
        multivariate_hypergeometric_keyed(out, low - n, |i| mix64(seed(i) ^ 2), &mut change);
        for (x, c) in out.iter_mut().zip(&change) {
            *x -= c;
        }
    } else if low < n {
        let others: Vec<u64> = counts.iter().zip(out.iter()).map(|(c, x)| c - x).collect();
        multivariate_hypergeometric_keyed(&others, n - low, |i| mix64(seed(i) ^ 3), &mut change);
        for (x, c) in out.iter_mut().zip(&change) {
            *x += c;
        }
    }
}

/// How many of `unmarked` items come before the k-th of `marked` marked items when all are in a
/// uniformly random order: the marked items cut the unmarked ones into marked + 1 exchangeable
/// gaps, so the count is Beta-binomial(unmarked; k, marked − k + 1), drawn as a binomial whose
/// probability is a Beta draw.
///
/// The Beta draw is a ratio of two Gamma draws, G_k / (G_k + G_{marked−k+1}) (Marsaglia and
/// Tsang's method, whose accepted proposal is a smooth function of the shape), each from its own
/// number of `r`, and the binomial from a third: exactly three numbers whatever the arguments, so
/// that paired runs whose k or counts differ a little get a count a little different.
pub fn unmarked_before(k: u64, marked: u64, unmarked: u64, r: &mut Stream) -> u64 {
    debug_assert!(1 <= k && k <= marked);
    let seeds = [r.next_u64(), r.next_u64(), r.next_u64()];
    if unmarked == 0 {
        return 0;
    }
    let gamma = |shape: u64, seed: u64| -> f64 {
        rand_distr::Gamma::new(shape as f64, 1.0)
            .expect("shape at least 1")
            .sample(&mut Stream::seed_from_u64(seed))
    };
    let (a, b) = (gamma(k, seeds[0]), gamma(marked - k + 1, seeds[1]));
    binomial_seeded(unmarked, a / (a + b), seeds[2])
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
    fn multivariate_hypergeometric_matches_its_exact_law() {
        // Draw 3 of counts [2, 3, 4]: P(x) = C(2,x0) C(3,x1) C(4,x2) / C(9,3) for every split;
        // chi-square over the 9 splits at 200,000 draws against the 0.999 quantile of χ²(8), 26.12.
        let counts = [2u64, 3, 4];
        let choose = |n: u64, k: u64| -> f64 {
            if k > n {
                return 0.0;
            }
            (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
        };
        let reps = 200_000;
        let mut observed = std::collections::BTreeMap::new();
        let mut out = Vec::new();
        let mut r = rng(11);
        for _ in 0..reps {
            multivariate_hypergeometric(&counts, 3, &mut r, &mut out);
            assert_eq!(out.iter().sum::<u64>(), 3);
            assert!(out.iter().zip(&counts).all(|(x, c)| x <= c));
            *observed.entry(out.clone()).or_insert(0.0) += 1.0;
        }
        let (mut obs, mut exp) = (Vec::new(), Vec::new());
        for x0 in 0..=2u64 {
            for x1 in 0..=3u64.min(3 - x0) {
                let x2 = 3 - x0 - x1;
                let p = choose(2, x0) * choose(3, x1) * choose(4, x2) / choose(9, 3);
                obs.push(*observed.get(&vec![x0, x1, x2]).unwrap_or(&0.0));
                exp.push(p * reps as f64);
            }
        }
        assert_eq!(obs.iter().sum::<f64>(), reps as f64);
        let (chi2, df) = chi_square(&obs, &exp);
        assert_eq!(df, 8);
        assert!(chi2 < 26.12, "chi-square {chi2}");
    }

    /// Chi-square of `draws` binomial draws against the exact pmf (from the mode by the ratio
    /// P(x + 1)/P(x) = (n − x) p / ((x + 1) q), normalised), over cells of mass about 1/12 each.
    fn binomial_chi_square(n: u64, p: f64, draws: usize, seed: u64) -> (f64, usize) {
        let q = 1.0 - p;
        let m = ((n as f64 + 1.0) * p).floor() as u64;
        let mut pmf = std::collections::BTreeMap::new();
        pmf.insert(m, 1.0);
        let (mut x, mut f) = (m, 1.0);
        while x < n && f > 1e-18 {
            f *= (n - x) as f64 * p / ((x + 1) as f64 * q);
            x += 1;
            pmf.insert(x, f);
        }
        let (mut x, mut f) = (m, 1.0);
        while x > 0 && f > 1e-18 {
            f *= x as f64 * q / ((n - x + 1) as f64 * p);
            x -= 1;
            pmf.insert(x, f);
        }
        let total: f64 = pmf.values().sum();
        // Cells: consecutive values until each holds 1/12 of the mass; the first and last take
        // the tails beyond the tabulated values (mass below 10^-16).
        let mut edges = Vec::new();
        let mut mass = Vec::new();
        let mut acc = 0.0;
        for (&x, &f) in &pmf {
            acc += f / total;
            if acc >= 1.0 / 12.0 {
                edges.push(x);
                mass.push(acc);
                acc = 0.0;
            }
        }
        if acc > 0.0 {
            *mass.last_mut().expect("a cell") += acc;
            *edges.last_mut().expect("a cell") = u64::MAX;
        }
        let mut observed = vec![0.0; edges.len()];
        let mut r = rng(seed);
        for _ in 0..draws {
            let k = binomial(n, p, &mut r);
            assert!(k <= n);
            let cell = edges
                .iter()
                .position(|&e| k <= e)
                .expect("within the last cell");
            observed[cell] += 1.0;
        }
        let expected: Vec<f64> = mass.iter().map(|m| m * draws as f64).collect();
        chi_square(&observed, &expected)
    }

    #[test]
    fn binomial_matches_its_exact_law_on_every_path() {
        // Inversion (n p < 10), BTRS at small and national sizes, and p > ½ by symmetry; about
        // 12 cells each, so χ² has ~11 degrees of freedom: its 0.999 quantile is 31.26 at 11 and
        // below 34.53 at up to 13 (rounding can add a cell).
        for (i, &(n, p)) in [
            (40u64, 0.1),
            (1_000, 0.006),
            (30, 0.4),
            (200, 0.3),
            (1_000_000_000, 0.013),
            (5_000_000, 0.5),
            (120, 0.85),
            (3, 0.5),
        ]
        .iter()
        .enumerate()
        {
            let (statistic, dof) = binomial_chi_square(n, p, 200_000, 40 + i as u64);
            assert!(dof <= 13, "n={n} p={p}: {dof} degrees of freedom");
            assert!(
                statistic < 34.53,
                "n={n} p={p}: χ² = {statistic} on {dof} dof"
            );
        }
    }

    #[test]
    fn keyed_multinomial_keeps_its_law_and_its_other_categories() {
        // Law: 40 items over weights [0.5, 0, 0.25, 0.25], each category's mean 40 p_i within 5
        // standard errors over 20,000 draws (seeds keyed per category). Coupling: a category of
        // weight 0.01 inserted first, as a cohort only one paired run has, moves the others by
        // about what it takes (mean 100 of 10,000), not by redrawing them: the last category
        // (the rest) stays within 60 of its former count minus its share of the inserted one for
        // at least 95% of 2,000 seeds; two independent draws (sd ~70 apart) would be that close
        // for about 60%.
        let weights = [0.5, 0.0, 0.25, 0.25];
        let reps = 20_000u64;
        let mut sums = [0.0f64; 4];
        let mut out = Vec::new();
        for s in 0..reps {
            let base = mix64(s);
            multinomial_keyed(40, &weights, |i| mix64(base ^ i as u64), &mut out);
            assert_eq!(out.iter().sum::<u64>(), 40);
            for (x, &c) in sums.iter_mut().zip(&out) {
                *x += c as f64;
            }
        }
        for (i, &p) in weights.iter().enumerate() {
            let mean = sums[i] / reps as f64;
            let se = (40.0 * p * (1.0 - p) / reps as f64).sqrt();
            assert!((mean - 40.0 * p).abs() <= 5.0 * se + 1e-12, "{i}: {mean}");
        }
        let close = (0..2_000u64)
            .filter(|&s| {
                let base = mix64(s ^ 77);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                multinomial_keyed(
                    10_000,
                    &[0.6, 0.4],
                    |i| mix64(base ^ (i as u64 + 1)),
                    &mut a,
                );
                multinomial_keyed(
                    10_000,
                    &[0.01, 0.6, 0.4],
                    |i| mix64(base ^ i as u64),
                    &mut b,
                );
                (b[2] as i64 - (a[1] as f64 - 0.4 * b[0] as f64) as i64).abs() <= 60
            })
            .count();
        assert!(close >= 1_900, "{close} of 2,000 seeds");
    }

    #[test]
    fn counts_stay_close_across_a_half() {
        // Not needed for exactness: what keeps paired runs coupled where a chance or a draw
        // crosses one half between them. Binomial(10^6, 0.4999) and (10^6, 0.5001) from one seed
        // (means 200 apart, sd 500): two uncoupled draws would be within 20 of the mean change
        // for about 2% of seeds, and the mirror images the sampler gave before its two sides
        // were made to meet (n − Binomial(n, 1 − p) with the same uniforms) for 184 of 10,000;
        // the floor is 95% (all 10,000 measured). HG(10^6, 3·10^5, 499,990) and (…, 500,010)
        // (means 6 apart, sd 229): within 10 of it, same floor (all 10,000 measured).
        let seeds = 10_000u64;
        let close = (0..seeds)
            .filter(|&s| {
                let seed = mix64(s);
                let d = binomial_seeded(1_000_000, 0.5001, seed) as i64
                    - binomial_seeded(1_000_000, 0.4999, seed) as i64;
                (d - 200).abs() <= 20
            })
            .count();
        assert!(close >= 9_500, "binomial: {close} of {seeds} seeds");
        let close = (0..seeds)
            .filter(|&s| {
                let seed = mix64(s);
                let d = hypergeometric_keyed(1_000_000, 300_000, 500_010, seed) as i64
                    - hypergeometric_keyed(1_000_000, 300_000, 499_990, seed) as i64;
                (d - 6).abs() <= 10
            })
            .count();
        assert!(close >= 9_500, "hypergeometric: {close} of {seeds} seeds");
    }

    #[test]
    fn multivariate_hypergeometric_by_ranks_matches_its_exact_law() {
        // Draw 3 of counts [2, 3, 4]: P(x) = C(2,x0) C(3,x1) C(4,x2) / C(9,3); chi-square over
        // the 9 splits at 200,000 draws against the 0.999 quantile of χ²(8), 26.12. Then 5,000
        // of [4,000, 3,000, 3,000] (the route by ranks, with a trim or top-up of about √5,000):
        // category 0's mean 2,000 and variance 5,000 × 0.4 × 0.6 × 5,000/9,999 within 5
        // standard errors over 20,000 draws, and the total always 5,000.
        let choose = |n: u64, k: u64| -> f64 {
            if k > n {
                return 0.0;
            }
            (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
        };
        let counts = [2u64, 3, 4];
        let reps = 200_000u64;
        let mut observed = std::collections::BTreeMap::new();
        let mut out = Vec::new();
        for s in 0..reps {
            let base = mix64(s);
            multivariate_hypergeometric_by_ranks(&counts, 3, |i| mix64(base ^ i as u64), &mut out);
            assert_eq!(out.iter().sum::<u64>(), 3);
            *observed.entry(out.clone()).or_insert(0.0) += 1.0;
        }
        let (mut obs, mut exp) = (Vec::new(), Vec::new());
        for x0 in 0..=2u64 {
            for x1 in 0..=3u64.min(3 - x0) {
                let x2 = 3 - x0 - x1;
                let p = choose(2, x0) * choose(3, x1) * choose(4, x2) / choose(9, 3);
                obs.push(*observed.get(&vec![x0, x1, x2]).unwrap_or(&0.0));
                exp.push(p * reps as f64);
            }
        }
        let (chi2, df) = chi_square(&obs, &exp);
        assert_eq!(df, 8);
        assert!(chi2 < 26.12, "chi-square {chi2}");
        let counts = [4_000u64, 3_000, 3_000];
        let reps = 20_000u64;
        let mut xs = Vec::new();
        for s in 0..reps {
            let base = mix64(s ^ 0xABCD);
            multivariate_hypergeometric_by_ranks(
                &counts,
                5_000,
                |i| mix64(base ^ i as u64),
                &mut out,
            );
            assert_eq!(out.iter().sum::<u64>(), 5_000);
            xs.push(out[0] as f64);
        }
        let variance = 5_000.0 * 0.4 * 0.6 * 5_000.0 / 9_999.0;
        assert_moments(&xs, 2_000.0, variance, "category 0");
    }

    #[test]
    fn keyed_hypergeometric_matches_its_pmf_and_stays_close_to_its_neighbour() {
        // HG(12, 5, 4) by the keyed route (inversion): 35, 175, 210, 70, 5 of 495 for x = 0..4,
        // as in `hypergeometric_matches_its_pmf_on_every_path`; chi-square at 100,000 draws
        // against the 0.999 quantile of χ²(4), 18.47. Then HG(10^6, 3·10^5, 2,000) (mean 600,
        // by ranks) against its mean 600 and variance 2,000 × 0.3 × 0.7 × 998,000/999,999
        // within 5 standard errors.
        let expected = [35.0, 175.0, 210.0, 70.0, 5.0];
        let draws = 100_000u64;
        let mut observed = [0.0; 5];
        for s in 0..draws {
            observed[hypergeometric_keyed(12, 5, 4, mix64(s)) as usize] += 1.0;
        }
        let expected: Vec<f64> = expected.iter().map(|e| e / 495.0 * draws as f64).collect();
        let (statistic, _) = chi_square(&observed, &expected);
        assert!(statistic < 18.47, "χ² = {statistic}");
        let reps = 20_000u64;
        let xs: Vec<f64> = (0..reps)
            .map(|s| hypergeometric_keyed(1_000_000, 300_000, 2_000, mix64(s)) as f64)
            .collect();
        let mean = xs.iter().sum::<f64>() / reps as f64;
        let variance = 2_000.0 * 0.3 * 0.7 * 998_000.0 / 999_999.0;
        assert!(
            (mean - 600.0).abs() < 5.0 * (variance / reps as f64).sqrt(),
            "mean {mean}"
        );
        // The route by ranks in full: HG(4,000, 2,000, 2,000) (mean 1,000, sd 15.8), its pmf by
        // the ratio P(x + 1) / P(x) from the mode, normalised (`hypergeometric_pmf`); 20,000
        // draws in 21 cells (the tails pooled beyond ±2.5 sd) against the 0.999 quantile of
        // χ²(20), 45.31.
        let (total, marked, n) = (4_000u64, 2_000u64, 2_000u64);
        let (lo, pmf) = hypergeometric_pmf(total, marked, n);
        let cell = |x: u64| (x.clamp(960, 1_040) as usize - 960) / 4;
        let (mut seen, mut want) = (vec![0.0; 21], vec![0.0; 21]);
        for (i, p) in pmf.iter().enumerate() {
            want[cell(lo + i as u64)] += p * 20_000.0;
        }
        for s in 0..20_000u64 {
            seen[cell(hypergeometric_keyed(total, marked, n, mix64(s)))] += 1.0;
        }
        let (statistic, _) = chi_square(&seen, &want);
        assert!(statistic < 45.31, "χ² = {statistic}");
        // What keeps paired runs coupled (not needed for exactness): with a small mean (20, drawn
        // by inversion), one more draw from the same seed moves the count by at most 1.
        for s in 0..10_000u64 {
            let x = hypergeometric_keyed(100_000, 2_000, 1_000, mix64(s));
            let more = hypergeometric_keyed(100_000, 2_000, 1_001, mix64(s));
            assert!(
                (0..=1).contains(&(more as i64 - x as i64)),
                "seed {s}: {x} then {more}"
            );
        }
        // With a large mean (the route by ranks) most seeds do the same: both binomials move
        // smoothly with q for most seeds, and so does the inversion of what is left. Two
        // uncoupled draws (sd 64 here) would be 0 or 1 apart for about 1% of seeds; the floor,
        // 90%, lies far from that and below the 99.3% measured with this route.
        let close = (0..10_000u64)
            .filter(|&s| {
                let x = hypergeometric_keyed(1_000_000, 300_000, 20_000, mix64(s));
                let more = hypergeometric_keyed(1_000_000, 300_000, 20_001, mix64(s));
                (0..=1).contains(&(more as i64 - x as i64))
            })
            .count();
        assert!(close > 9_000, "{close} of 10,000 seeds");
    }

    #[test]
    fn binomial_rejects_a_wrong_law() {
        // Control: draws of Binomial(200, 0.3) tested against the pmf of Binomial(200, 0.31)
        // (means 60 and 62, sd 6.5): the same statistic must be far beyond its 0.999 quantile.
        let (n, draws) = (200u64, 200_000);
        let mut r = rng(77);
        let mut observed = vec![0.0; 2];
        for _ in 0..draws {
            observed[usize::from(binomial(n, 0.3, &mut r) > 61)] += 1.0;
        }
        // P(Binomial(200, 0.31) > 61) = 1 − F(61), F(61) ≈ 0.45: compute it exactly.
        let p: f64 = 0.31;
        let mut f = (n as f64 * (-p).ln_1p()).exp();
        let mut below = 0.0;
        for x in 0..=61u64 {
            below += f;
            f *= (n - x) as f64 * p / ((x + 1) as f64 * (1.0 - p));
        }
        let expected = [below * draws as f64, (1.0 - below) * draws as f64];
        let (statistic, _) = chi_square(&observed, &expected);
        assert!(statistic > 100.0, "χ² = {statistic}");
    }

    #[test]
    fn binomial_is_monotone_in_n_for_most_seeds() {
        // Not needed for exactness, but what keeps paired runs coupled: Binomial(n) and
        // Binomial(n + 1) from one seed are equal or one apart whenever both take BTRS's first
        // proposal inside the squeeze, which has chance 0.86 v_r (|u| ≤ 0.43, v ≤ v_r, with
        // v_r = 0.92 − 4.2/b as in `btrs`): so at least that share of 10,000 seeds, less 5
        // standard errors (sqrt(0.25 / 10,000) at most). By inversion (n p < 10), always.
        let seeds = 10_000u64;
        for &(n, p) in &[(1_000_000u64, 0.02), (5_000, 0.3), (50, 0.1)] {
            let close = (0..seeds)
                .filter(|&s| {
                    let seed = mix64(s);
                    let d =
                        binomial_seeded(n + 1, p, seed) as i64 - binomial_seeded(n, p, seed) as i64;
                    (0..=1).contains(&d)
                })
                .count() as f64;
            let mean = n as f64 * p;
            let floor = if mean < BINOMIAL_INVERSION_MEAN_MAX {
                seeds as f64
            } else {
                let b = 1.15 + 2.53 * (mean * (1.0 - p)).sqrt();
                let squeeze = 0.86 * (0.92 - 4.2 / b);
                (squeeze - 5.0 * (0.25 / seeds as f64).sqrt()) * seeds as f64
            };
            assert!(
                close >= floor,
                "n={n} p={p}: {close} of {seeds} seeds (floor {floor})"
            );
        }
    }

    #[test]
    fn a_chance_chain_draws_the_multinomial_of_its_weights_from_the_same_numbers() {
        // Weights with zeros, a chance past ½ and a last category of weight zero; counts small
        // (inversion) and large (BTRS): the same counts and the same numbers used as
        // `multinomial`, which prepares nothing.
        let weights = [0.05, 0.0, 0.7, 0.1, 0.15, 0.0];
        let chain = ChanceChain::new(&weights);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (i, n) in [0u64, 1, 3, 17, 250, 10_000, 3_000_000]
            .into_iter()
            .enumerate()
        {
            for rep in 0..50 {
                let seed = 1000 * i as u64 + rep;
                let (mut r1, mut r2) = (rng(seed), rng(seed));
                chain.multinomial(n, &mut r1, &mut a);
                multinomial(n, &weights, &mut r2, &mut b);
                assert_eq!(a, b, "n {n}");
                assert_eq!(r1.next_u64(), r2.next_u64(), "n {n}: the same numbers used");
            }
        }
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
    fn occupancy_keeps_its_law_at_national_sizes() {
        // 3·10^7 balls in 10^8 bins (a traffic program's kept impressions over a cohort, at
        // national size; the Poisson counts then miss the sum by thousands, each a move). The
        // empty bins' mean b q1 and variance b q1 + b (b − 1) q2 − (b q1)^2, with qk = (1 − k/b)^n
        // the chance that k given bins are all empty, within 5 standard errors over 20,000
        // histograms (the variance's standard error about variance × sqrt(2 / reps)); the balls
        // and bins always all there.
        let (bins, balls) = (100_000_000u64, 30_000_000u64);
        let (b, n) = (bins as f64, balls as f64);
        let empty_chance = |k: f64| (n * (-k / b).ln_1p()).exp();
        let want_mean = b * empty_chance(1.0);
        let want_variance = want_mean + b * (b - 1.0) * empty_chance(2.0) - want_mean * want_mean;
        let reps = 20_000u64;
        let mut r = rng(7);
        let empties: Vec<f64> = (0..reps)
            .map(|_| {
                let h = occupancy(bins, balls, &mut r);
                assert_eq!(h.iter().sum::<u64>(), bins);
                let thrown: u64 = h.iter().enumerate().map(|(j, &c)| j as u64 * c).sum();
                assert_eq!(thrown, balls);
                h[0] as f64
            })
            .collect();
        assert_moments(&empties, want_mean, want_variance, "empty bins");
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

    /// The pmf of HG(total, marked, n) over mode ± 12 standard deviations (the mass beyond is
    /// below 10^-30), as (first x, probabilities): from the mode by the ratio P(x + 1) / P(x) =
    /// (K − x)(n − x) / ((x + 1)(N − K − n + x + 1)), then normalised.
    fn hypergeometric_pmf(total: u64, marked: u64, n: u64) -> (u64, Vec<f64>) {
        let (nf, kf, tf) = (n as f64, marked as f64, total as f64);
        let sd = (nf * kf / tf * (1.0 - kf / tf) * (tf - nf) / (tf - 1.0)).sqrt();
        let mode = ((nf + 1.0) * (kf + 1.0) / (tf + 2.0)) as u64;
        let reach = (12.0 * sd) as u64 + 1;
        let lo = mode
            .saturating_sub(reach)
            .max((n + marked).saturating_sub(total));
        let hi = (mode + reach).min(n).min(marked);
        let ratio = |x: u64| {
            (marked - x) as f64 / (x + 1) as f64
                * ((n - x) as f64 / (total - marked - n + x + 1) as f64)
        };
        let mut pmf = vec![0.0; (hi - lo + 1) as usize];
        let at = |x: u64| (x - lo) as usize;
        pmf[at(mode)] = 1.0;
        for x in mode..hi {
            pmf[at(x + 1)] = pmf[at(x)] * ratio(x);
        }
        for x in (lo..mode).rev() {
            pmf[at(x)] = pmf[at(x + 1)] / ratio(x);
        }
        let sum: f64 = pmf.iter().sum();
        pmf.iter_mut().for_each(|p| *p /= sum);
        (lo, pmf)
    }

    /// Asserts that `xs`, draws of one law, have its mean and variance within 5 standard
    /// errors: the mean's sqrt(variance / n), the sample variance's about variance × sqrt(2 / n)
    /// (for draws near normal, as these large counts are).
    fn assert_moments(xs: &[f64], want_mean: f64, want_variance: f64, what: &str) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let variance = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        assert!(
            (mean - want_mean).abs() < 5.0 * (want_variance / n).sqrt(),
            "{what}: mean {mean} against {want_mean}"
        );
        assert!(
            (variance - want_variance).abs() < 5.0 * want_variance * (2.0 / n).sqrt(),
            "{what}: variance {variance} against {want_variance}"
        );
    }

    #[test]
    fn hypergeometric_by_ranks_matches_its_pmf_at_national_sizes() {
        // The national default deals counts of 10^7–10^8 among 10^8–10^9 users, where the route
        // by ranks goes two or three levels deep before its inversion (the small cases of the
        // other tests stop after one). HG(1.2·10^9, 3·10^8, 10^8) (sd 4,146): 100,000 draws in
        // 40 cells of equal probability under the exact pmf, against the 0.999 quantile of
        // χ²(39), 72.05; and the draws' mean and variance within 5 standard errors of the
        // exact ones (`assert_moments`).
        let (total, marked, n) = (1_200_000_000u64, 300_000_000u64, 100_000_000u64);
        let (lo, pmf) = hypergeometric_pmf(total, marked, n);
        let cells = 40;
        // cuts[i]: the least x of cell i + 1 (cumulative probability past (i + 1) / cells).
        let mut cuts = Vec::new();
        let mut cumulative = 0.0;
        for (i, p) in pmf.iter().enumerate() {
            cumulative += p;
            if cuts.len() < cells - 1 && cumulative >= (cuts.len() + 1) as f64 / cells as f64 {
                cuts.push(lo + i as u64 + 1);
            }
        }
        let mut expected = vec![0.0; cells];
        for (i, p) in pmf.iter().enumerate() {
            expected[cuts.partition_point(|&c| c <= lo + i as u64)] += p;
        }
        let draws = 100_000u64;
        let mut observed = vec![0.0; cells];
        let mut xs = Vec::with_capacity(draws as usize);
        for s in 0..draws {
            let x = hypergeometric_keyed(total, marked, n, mix64(s ^ 0x5EED));
            observed[cuts.partition_point(|&c| c <= x)] += 1.0;
            xs.push(x as f64);
        }
        let expected: Vec<f64> = expected.iter().map(|p| p * draws as f64).collect();
        let (statistic, dof) = chi_square(&observed, &expected);
        assert_eq!(dof, cells - 1);
        assert!(statistic < 72.05, "χ² = {statistic}");
        let (nf, kf, tf) = (n as f64, marked as f64, total as f64);
        let variance = nf * kf / tf * (1.0 - kf / tf) * (tf - nf) / (tf - 1.0);
        assert_moments(&xs, nf * kf / tf, variance, "HG");
    }

    #[test]
    fn multivariate_hypergeometric_by_ranks_keeps_its_law_at_national_sizes() {
        // 10^8 of [3·10^8, 2·10^8, 7·10^8] (a kind's arrived sessions dealt to its items, at
        // national size): each category's mean n K/N and variance n (K/N)(1 − K/N)(N − n)/(N − 1)
        // within 5 standard errors over 20,000 draws, the total always n.
        let counts = [300_000_000u64, 200_000_000, 700_000_000];
        let n = 100_000_000u64;
        let total: u64 = counts.iter().sum();
        let reps = 20_000u64;
        let mut columns = vec![Vec::with_capacity(reps as usize); counts.len()];
        let mut out = Vec::new();
        for s in 0..reps {
            let base = mix64(s ^ 0xD1CE);
            multivariate_hypergeometric_by_ranks(&counts, n, |i| mix64(base ^ i as u64), &mut out);
            assert_eq!(out.iter().sum::<u64>(), n);
            for (column, &x) in columns.iter_mut().zip(&out) {
                column.push(x as f64);
            }
        }
        let (nf, tf) = (n as f64, total as f64);
        for (&k, xs) in counts.iter().zip(&columns) {
            let share = k as f64 / tf;
            let (want_mean, want_variance) = (
                nf * share,
                nf * share * (1.0 - share) * (tf - nf) / (tf - 1.0),
            );
            assert_moments(xs, want_mean, want_variance, &format!("K = {k}"));
        }
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
    fn hypergeometric_inversion_matches_its_pmf_and_mean() {
        // The inversion route on HG(12, 4, 5): 35, 175, 210, 70, 5 of 495 (as above), and through
        // `hypergeometric` with few > 64 and a small mean: HG(10^9, 5,000, 10^6) has mean 5 and
        // variance ≈ 5 (1 − 5 × 10^-6)(1 − 10^-3); 5 standard errors.
        let reps = 40_000;
        let mut seen = vec![0.0; 5];
        let mut r = rng(31);
        for _ in 0..reps {
            seen[hypergeometric_by_inversion(12, 4, 5, &mut r) as usize] += 1.0;
        }
        let expected: Vec<f64> = [35.0, 175.0, 210.0, 70.0, 5.0]
            .iter()
            .map(|c| c / 495.0 * reps as f64)
            .collect();
        let (chi, dof) = chi_square(&seen, &expected);
        assert_eq!(dof, 4);
        assert!(chi < 23.5, "chi-square {chi}");
        let (total, marked, n) = (1_000_000_000u64, 5_000u64, 1_000_000u64);
        let sum: f64 = (0..reps)
            .map(|_| hypergeometric(total, marked, n, &mut r) as f64)
            .sum();
        let mean = n as f64 * marked as f64 / total as f64;
        let var =
            mean * (1.0 - marked as f64 / total as f64) * (total - n) as f64 / (total - 1) as f64;
        assert!((sum / reps as f64 - mean).abs() < 5.0 * (var / reps as f64).sqrt());
    }

    #[test]
    fn hypergeometric_zero_by_stirling_matches_the_product() {
        // P(0) from Stirling's formula against the product of its factors, whose own rounding is
        // at most `few` × 2^-53 relative (1.7e-11 at 150,000 factors); both must agree to 1e-9,
        // far below any difference a draw could see.
        for &(total, few, many) in &[
            (10_000u64, 300u64, 400u64),
            (1_000_000, 2_000, 10_000),
            (1_336_000_000, 150_000, 200_000),
            (100_000_000_000, 257, 3_000_000_000),
            (5_000, 17, 2_000),
            (1_000_000, 40, 300_000),
        ] {
            let product: f64 = (0..few)
                .map(|i| (total - many - i) as f64 / (total - i) as f64)
                .product();
            let stirling = hypergeometric_zero(total, few, many);
            assert!(few > ZERO_PRODUCT_MAX);
            assert!(
                (stirling / product - 1.0).abs() < 1e-9,
                "HG({total}, {few}, {many}): {stirling} vs {product}"
            );
        }
    }

    #[test]
    fn surely_zero_gives_what_the_search_gives() {
        // Both searches from 0 skip computing P(0) when `surely_zero` says u ≤ 1 − mean − margin
        // must give 0. Against the searches without the shortcut (P(0) computed whatever u),
        // over random parameters of both inversion ranges, means up to 1.2 and populations up
        // to 10^11 (Stirling's P(0), past 16 factors), with u in a window around 1 − mean,
        // where P(0) ≈ 1 − mean + mean²/2 lies: a bound any looser than P(0) as computed would
        // give 0 where the search gives 1.
        fn near(mean: f64, r: &mut Stream) -> f64 {
            (1.0 - mean + (r.random::<f64>() - 0.5) * mean).clamp(0.0, 0.999)
        }
        let mut r = rng(37);
        let (mut shortcuts, mut cases) = (0, 0);
        for _ in 0..100_000 {
            let mean = r.random::<f64>() * 1.2;
            let digits = r.random_range(1..=10);
            let n = 1 + r.random_range(0..10u64.pow(digits));
            let p = mean / n as f64;
            let u = near(n as f64 * p, &mut r);
            if p < 0.5 {
                let ln_q = (-p).ln_1p();
                let expected = binomial_searched(n, p, ln_q, u);
                let given = r.random::<bool>().then_some(ln_q);
                assert_eq!(
                    binomial_by_inversion(n, p, given, u),
                    expected,
                    "B({n}, {p}), {u}"
                );
                shortcuts += u64::from(surely_zero(n as f64 * p, u));
                cases += 1;
            }
            let digits = r.random_range(2..=11);
            let total = 2 + r.random_range(0..10u64.pow(digits));
            let few = 1 + r.random_range(0..(total / 2).min(10_000_000));
            let many = ((mean * total as f64 / few as f64) as u64).clamp(1, total / 2);
            let (few, many) = (few.min(many), few.max(many));
            let u = near(few as f64 * many as f64 / total as f64, &mut r);
            let expected = hypergeometric_searched(total, few, many, u);
            let drawn = hypergeometric_inverted(total, few, many, u);
            assert_eq!(drawn, expected, "HG({total}, {few}, {many}), {u}");
            shortcuts += u64::from(surely_zero(few as f64 * many as f64 / total as f64, u));
            cases += 1;
        }
        // The window puts about half of the draws below the bound.
        assert!(
            shortcuts > cases / 4,
            "{shortcuts} shortcuts in {cases} draws"
        );
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

    #[test]
    fn unmarked_before_matches_literal_shuffles() {
        // 3 marked and 4 unmarked items shuffled literally: the unmarked ones before the 2nd
        // marked one, against the sampler, by chi-square over the 5 values (0.999 quantile of
        // χ²(4): 18.47), 100,000 draws each.
        use rand::seq::SliceRandom;
        let reps = 100_000;
        let (mut literal, mut drawn) = ([0.0f64; 5], [0.0f64; 5]);
        let mut r = rng(21);
        let mut items = [true, true, true, false, false, false, false];
        for _ in 0..reps {
            items.shuffle(&mut r);
            let second = items.iter().enumerate().filter(|x| *x.1).nth(1).unwrap().0;
            literal[items[..second].iter().filter(|m| !**m).count()] += 1.0;
            drawn[unmarked_before(2, 3, 4, &mut r) as usize] += 1.0;
        }
        // Two samples: compare each to their pooled proportions.
        let pooled: Vec<f64> = literal
            .iter()
            .zip(&drawn)
            .map(|(a, b)| (a + b) / 2.0)
            .collect();
        let (a, _) = chi_square(&literal, &pooled);
        let (b, df) = chi_square(&drawn, &pooled);
        assert_eq!(df, 4);
        assert!(a + b < 18.47, "chi-square {}", a + b);
    }

    #[test]
    fn unmarked_before_keeps_its_law_at_national_sizes() {
        // The unmarked items before the k-th of `marked` marked ones, at national size (a gap's
        // sessions before the coupon that runs a program out): Beta-binomial(u; α = k,
        // β = marked − k + 1), of mean u α / (α + β) and variance
        // u α β (α + β + u) / ((α + β)^2 (α + β + 1)); both within 5 standard errors over
        // 20,000 draws (the variance's about variance × sqrt(2 / reps)).
        let (k, marked, unmarked) = (3_000u64, 40_000u64, 200_000_000u64);
        let (a, b, u) = (k as f64, (marked - k + 1) as f64, unmarked as f64);
        let want_mean = u * a / (a + b);
        let want_variance = u * a * b * (a + b + u) / ((a + b) * (a + b) * (a + b + 1.0));
        let reps = 20_000u64;
        let mut r = rng(23);
        let xs: Vec<f64> = (0..reps)
            .map(|_| unmarked_before(k, marked, unmarked, &mut r) as f64)
            .collect();
        assert_moments(&xs, want_mean, want_variance, "beta-binomial");
    }
}
