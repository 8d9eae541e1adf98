//! The arrival order of an epoch's single sessions, seen on counts of kinds through the *gaps*
//! of the tick (the stretches of single sessions between two several-session users' sessions).
//!
//! The sessions are in a uniformly random order; what outcomes depend on is how many of each
//! kind arrive in each gap, so the order is drawn on ranges of gaps: a range's kinds are split
//! between its two halves by a multivariate hypergeometric draw (the first half holds a uniformly
//! random subset of the range's sessions, of the size its gaps add up to), each range from a
//! stream keyed by the epoch and the range alone. The kinds of any run of gaps are therefore the
//! same whether they are drawn gap by gap or as one stretch, so how far arrivals could be left
//! undrawn (nothing could change) decides nothing; and paired runs whose counts differ a little
//! (a split against the reference) meet the same draws range by range.

use super::samplers::multivariate_hypergeometric;
use super::{Step, keyed};
use crate::engine::rng::{Stream, mix64};

/// The undrawn part of an epoch's arrival order.
pub(super) struct Order {
    seed: u64,
    rep: u64,
    t: usize,
    key: u64,
    /// How many kinds there are.
    width: usize,
    /// `cum[i]`: sessions in gaps `0 .. i`.
    cum: Vec<u64>,
    /// Ranges `[a, b)` of gaps not drawn yet, with their sessions' kinds: disjoint, in order,
    /// the next on top.
    ranges: Vec<(usize, usize, Vec<u64>)>,
}

impl Order {
    /// The order of sessions with `kinds` (counts by kind) over `gaps` (sessions per gap not
    /// arrived yet, summing to the kinds' total), keyed by `key`. The ranges are those of all the
    /// tick's gaps, whichever have arrived already (their draws are of nothing), so that two
    /// runs whose epochs start a gap apart still meet the same draws.
    pub fn new((seed, rep, t): (u64, u64, usize), key: u64, gaps: &[u64], kinds: Vec<u64>) -> Self {
        let mut cum = Vec::with_capacity(gaps.len() + 1);
        cum.push(0);
        for &g in gaps {
            cum.push(cum.last().expect("starts with 0") + g);
        }
        debug_assert_eq!(cum.last().copied(), Some(kinds.iter().sum::<u64>()));
        Order {
            seed,
            rep,
            t,
            key,
            width: kinds.len(),
            cum,
            ranges: vec![(0, gaps.len(), kinds)],
        }
    }

    /// The first gap whose sessions are not drawn yet (one past the last when all are).
    pub fn next_gap(&self) -> usize {
        self.ranges.last().map_or(self.cum.len() - 1, |r| r.0)
    }

    /// The kinds of the sessions of the gaps from [`Order::next_gap`] to `to` (exclusive), into
    /// `out`.
    pub fn take(&mut self, to: usize, out: &mut Vec<u64>) {
        out.clear();
        out.resize(self.width, 0);
        while let Some((a, b, kinds)) = self.ranges.pop() {
            if a >= to {
                self.ranges.push((a, b, kinds));
                break;
            }
            if b <= to {
                for (o, k) in out.iter_mut().zip(&kinds) {
                    *o += k;
                }
                continue;
            }
            // a < to < b: split the range in halves.
            let mid = (a + b) / 2;
            let size = self.cum[mid] - self.cum[a];
            let mut low = Vec::with_capacity(kinds.len());
            let node = mix64(self.key ^ mix64((a as u64) << 32 | b as u64));
            let mut r = keyed(self.seed, self.rep, self.t, node, Step::Arrivals, 1);
            multivariate_hypergeometric(&kinds, size, &mut r, &mut low);
            let high = kinds.iter().zip(&low).map(|(k, l)| k - l).collect();
            self.ranges.push((mid, b, high));
            self.ranges.push((a, mid, low));
        }
    }

    /// A stream for the draws inside gap `gap` of this epoch.
    pub fn inside(&self, gap: usize) -> Stream {
        let unit = mix64(self.key ^ mix64(gap as u64 + 1));
        keyed(self.seed, self.rep, self.t, unit, Step::Arrivals, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(gaps: &[u64], kinds: Vec<u64>) -> Order {
        Order::new((7, 1, 3), 11, gaps, kinds)
    }

    #[test]
    fn a_run_of_gaps_has_the_same_kinds_however_it_is_taken() {
        let gaps = [3, 0, 5, 2, 7, 1, 4];
        let kinds = vec![10, 5, 7];
        let mut one = order(&gaps, kinds.clone());
        let mut by_gap = order(&gaps, kinds.clone());
        let mut whole = Vec::new();
        one.take(5, &mut whole);
        let mut sum = vec![0; 3];
        let mut part = Vec::new();
        for (g, &size) in gaps.iter().enumerate().take(5) {
            by_gap.take(g + 1, &mut part);
            assert_eq!(part.iter().sum::<u64>(), size);
            for (s, p) in sum.iter_mut().zip(&part) {
                *s += p;
            }
        }
        assert_eq!(whole, sum);
        let mut rest = Vec::new();
        one.take(7, &mut rest);
        assert_eq!(rest.iter().sum::<u64>(), 5);
        let total: Vec<u64> = whole.iter().zip(&rest).map(|(a, b)| a + b).collect();
        assert_eq!(total, kinds);
        assert_eq!(one.next_gap(), 7);
    }

    #[test]
    fn a_gap_holds_a_uniformly_random_subset() {
        // Gap 1 (3 of 10 sessions, 4 of kind 0): its count of kind 0 is Hypergeometric(10, 4, 3),
        // P(k) = C(4, k) C(6, 3 − k) / C(10, 3) = 20, 60, 36, 4 over 120.
        let expected = [20.0 / 120.0, 60.0 / 120.0, 36.0 / 120.0, 4.0 / 120.0];
        let n = 40_000;
        let mut seen = [0.0; 4];
        let mut part = Vec::new();
        for key in 0..n {
            let mut o = Order::new((7, 1, 3), key, &[2, 3, 5], vec![4, 6]);
            o.take(1, &mut part);
            o.take(2, &mut part);
            seen[part[0] as usize] += 1.0;
        }
        for (s, p) in seen.iter().zip(expected) {
            // Each share within 5 standard errors of its probability.
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((s / n as f64 - p).abs() < 5.0 * se, "{seen:?}");
        }
    }
}
