//! The arrival order of a tick's single sessions, seen on counts of kinds through the *gaps* of
//! the tick (the stretches of single sessions between two several-session users' sessions).
//!
//! Every session of the tick arrives at an independent uniform time in [0, 2^64): the
//! several-session users' sessions at the times their own streams give (the keys they are sorted
//! by), the single sessions at times never drawn one by one, so the order of all the tick's
//! sessions is uniformly random. What outcomes depend on is how many single sessions of each kind
//! arrive in each gap, so the singles are counted on a [`Timeline`]: a binary tree of intervals
//! of time fixed by the cuts alone (an interval is split at the first of its cuts past the middle
//! of its *address*, the dyadic interval of its place in the tree, or at its last cut, so each
//! cut splits one interval), each interval's sessions split between its two sides by a binomial
//! draw (the share of its length) from a seed of its place in the tree. The
//! kinds, epoch by epoch, are split down the same tree by the [`Order`]: a node's kinds between
//! its children by a multivariate hypergeometric draw (the first child holds a uniformly random
//! subset of the node's sessions, of the size the timeline gives it), from a stream keyed by the
//! epoch and the node alone. The kinds of any run of gaps are therefore the same whether they are
//! drawn gap by gap or as one stretch, so how far arrivals could be left undrawn (nothing could
//! change) decides nothing; and paired runs whose counts differ a little (a split against the
//! reference) meet the same draws node by node: a several-session user only one of them has
//! changes the tree only inside the interval around its time, not the gaps of every other one.

use super::samplers::{binomial_seeded, multivariate_hypergeometric};
use super::{Step, keyed};
use crate::engine::rng::{Stream, mix64};
use rand::Rng;

/// The end of time (exclusive): times are 64-bit.
const END: u128 = 1 << 64;

/// A node of the timeline: an interval of time between two cuts (or an end of the tick), its
/// *address* (the dyadic interval whose middle decides where it is split), its place in the
/// tree (a hash of its path from the root: what its draws are keyed by, the same in paired runs
/// whose cuts differ a little) and its depth, its single sessions, the cuts strictly inside it
/// and its first gap. Nodes are not kept: each is made again from its parent ([`Timeline::halves`]), so the
/// timeline of a tick keeps nothing per cut but its time and its gap's sessions.
#[derive(Clone, Copy)]
struct Span {
    lo: u128,
    hi: u128,
    address: (u128, u128),
    key: u64,
    depth: usize,
    sessions: u64,
    /// The cuts strictly inside: `cuts[inside.0..inside.1]`.
    inside: (usize, usize),
    gap: usize,
}

/// The tick's single sessions over time, cut into gaps by the several-session users' sessions.
pub(super) struct Timeline {
    /// The several-session users' sessions' times, ascending: gap g is `[cuts[g − 1], cuts[g])`.
    cuts: Vec<u64>,
    /// The tick's single sessions.
    singles: u64,
    /// The root's key.
    key: u64,
}

impl Timeline {
    /// `singles` sessions at independent uniform times, cut at `cuts` (ascending), and the
    /// single sessions in each gap; the binomial splits are keyed by the tick and each node's
    /// place in the tree.
    pub fn new(
        (seed, rep, t): (u64, u64, usize),
        singles: u64,
        cuts: Vec<u64>,
    ) -> (Self, Vec<u64>) {
        let line = Timeline {
            cuts,
            singles,
            key: keyed(seed, rep, t, 0, Step::Arrivals, 3).next_u64(),
        };
        let mut gaps = vec![0; line.cuts.len() + 1];
        // A leaf holds a gap's sessions (or none).
        line.walk(|span, halves| {
            if halves.is_none() {
                gaps[span.gap] += span.sessions;
            }
        });
        (line, gaps)
    }

    /// Frees the cuts once the tick's sessions have all arrived.
    pub fn release(&mut self) {
        self.cuts = Vec::new();
    }

    /// `visit(span, its halves)` for each node of the tree, depth first, the first half first
    /// (so the leaves come in time order).
    fn walk(&self, mut visit: impl FnMut(&Span, Option<&(Span, Span)>)) {
        let mut stack = vec![self.root()];
        while let Some(span) = stack.pop() {
            let halves = self.halves(&span);
            visit(&span, halves.as_ref());
            if let Some((first, second)) = halves {
                stack.push(second);
                stack.push(first);
            }
        }
    }

    /// The whole tick.
    fn root(&self) -> Span {
        // Cuts at time 0 start the tick: nothing is before them, none is inside the root.
        let first = self.cuts.partition_point(|&x| x == 0);
        Span {
            lo: 0,
            hi: END,
            address: (0, END),
            key: self.key,
            depth: 0,
            sessions: self.singles,
            inside: (first, self.cuts.len()),
            gap: first,
        }
    }

    /// A node's halves, or `None` for a leaf (no sessions or no cut inside): split at the first
    /// cut past the middle of the node's address (or its last cut), so that each cut splits one
    /// node and the addresses stay the same in a run with a cut more or less; the sessions below
    /// it are a binomial share of the interval's, keyed by the node's place.
    fn halves(&self, span: &Span) -> Option<(Span, Span)> {
        let inside = &self.cuts[span.inside.0..span.inside.1];
        if span.sessions == 0 || inside.is_empty() {
            return None;
        }
        let (a, b) = span.address;
        let middle = a + (b - a) / 2;
        let j = inside
            .partition_point(|&x| u128::from(x) < middle)
            .min(inside.len() - 1);
        let at = u128::from(inside[j]);
        let p = (at - span.lo) as f64 / (span.hi - span.lo) as f64;
        let low = binomial_seeded(span.sessions, p, span.key);
        // The cuts at `at` (several sessions at one time) belong to neither side.
        let below = inside.partition_point(|&x| x < inside[j]);
        let above = inside.partition_point(|&x| x <= inside[j]);
        let (first, second) = half_keys(span.key);
        let depth = span.depth + 1;
        Some((
            Span {
                hi: at,
                address: (a, middle),
                key: first,
                depth,
                sessions: low,
                inside: (span.inside.0, span.inside.0 + below),
                ..*span
            },
            Span {
                lo: at,
                address: (middle, b),
                key: second,
                depth,
                sessions: span.sessions - low,
                inside: (span.inside.0 + above, span.inside.1),
                gap: span.gap + above,
                ..*span
            },
        ))
    }

    /// Where gap `gap` ends (exclusive).
    fn gap_end(&self, gap: usize) -> u128 {
        self.cuts.get(gap).map_or(END, |&x| u128::from(x))
    }

    /// Where gap `gap` starts.
    fn gap_start(&self, gap: usize) -> u128 {
        gap.checked_sub(1).map_or(0, |g| u128::from(self.cuts[g]))
    }

    /// A key for gap `gap` (its start): the same in any run that has the several-session
    /// session it starts at.
    fn gap_key(&self, gap: usize) -> u64 {
        gap.checked_sub(1).map_or(u64::MAX, |g| self.cuts[g])
    }
}

/// The keys of a node's halves, from its own.
fn half_keys(key: u64) -> (u64, u64) {
    (mix64(key ^ 1), mix64(key ^ 2))
}

/// A node of an [`Order`] whose sessions' kinds are drawn but not split between its halves.
struct Undrawn {
    span: Span,
    kinds: Vec<u64>,
}

/// The undrawn part of an epoch's arrival order, on the tick's [`Timeline`].
pub(super) struct Order {
    seed: u64,
    rep: u64,
    t: usize,
    key: u64,
    /// How many kinds there are.
    width: usize,
    /// Where the first gap with sessions not arrived yet starts and ends: the nodes before it
    /// have none left, those after it all theirs.
    first: (u128, u128),
    /// The single sessions not arrived yet of the nodes across that gap (those holding it: no
    /// cut is inside a gap, so one per depth, a path down the tree), by depth.
    across: Vec<u64>,
    /// Nodes not drawn yet, with their sessions' kinds: disjoint, in time order, the next on
    /// top.
    nodes: Vec<Undrawn>,
    /// The first gap whose sessions are not drawn yet.
    next: usize,
}

impl Order {
    /// The order of sessions with `kinds` (counts by kind) over `gaps` (sessions per gap not
    /// arrived yet, summing to the kinds' total: those of a gap that arrived are its first in
    /// time), keyed by `key`. The tree is the whole tick's, whichever gaps have arrived already
    /// (their draws are of nothing), so that two runs whose epochs start a gap apart still meet
    /// the same draws.
    pub fn new(
        (seed, rep, t): (u64, u64, usize),
        key: u64,
        line: &Timeline,
        gaps: &[u64],
        kinds: Vec<u64>,
    ) -> Self {
        // Sessions arrive in time order: the gaps before the first with sessions left have
        // none left (all arrived), those after it all theirs, and that gap its last ones.
        let gap = gaps.iter().position(|&n| n > 0).unwrap_or(gaps.len());
        let first = if gap < gaps.len() {
            (line.gap_start(gap), line.gap_end(gap))
        } else {
            (END, END)
        };
        let mut order = Order {
            seed,
            rep,
            t,
            key,
            width: kinds.len(),
            first,
            across: Vec::new(),
            nodes: Vec::new(),
            next: 0,
        };
        let root = line.root();
        let left = gaps.get(gap).copied().unwrap_or(0);
        let total = order.count(line, &root, left);
        debug_assert_eq!(total, kinds.iter().sum::<u64>());
        // Counted from the leaf up.
        order.across.reverse();
        #[cfg(debug_assertions)]
        order.check(line, gaps);
        order.nodes.push(Undrawn { span: root, kinds });
        order
    }

    /// The single sessions not arrived yet in `span`, the first gap with sessions left having
    /// `left`: the nodes across that gap are counted from their halves, and kept.
    fn count(&mut self, line: &Timeline, span: &Span, left: u64) -> u64 {
        if span.hi <= self.first.0 {
            return 0;
        }
        if span.lo >= self.first.1 {
            return span.sessions;
        }
        let n = match line.halves(span) {
            // A leaf holding sessions lies in one gap: this one, with its last `left` sessions.
            None => span.sessions.min(left),
            Some((a, b)) => self.count(line, &a, left) + self.count(line, &b, left),
        };
        // The one node across the gap at each depth: the deepest is counted first.
        self.across.push(n);
        n
    }

    /// The single sessions not arrived yet in `span`.
    fn sessions(&self, span: &Span) -> u64 {
        if span.hi <= self.first.0 {
            0
        } else if span.lo >= self.first.1 {
            span.sessions
        } else {
            self.across[span.depth]
        }
    }

    /// Checks [`Order::sessions`] against every leaf's sessions not arrived yet, given `gaps`,
    /// and every other node's against its halves'.
    #[cfg(debug_assertions)]
    fn check(&self, line: &Timeline, gaps: &[u64]) {
        let mut leaves = Vec::new();
        line.walk(|span, halves| match halves {
            Some((a, b)) => assert_eq!(self.sessions(span), self.sessions(a) + self.sessions(b)),
            None => leaves.push(*span),
        });
        // Each gap's leaves, later ones first, take what is left of the gap.
        let mut left = gaps.to_vec();
        for span in leaves.iter().rev() {
            let here = span.sessions.min(left[span.gap]);
            left[span.gap] -= here;
            assert_eq!(self.sessions(span), here);
        }
    }

    /// The first gap whose sessions are not drawn yet.
    pub fn next_gap(&self) -> usize {
        self.next
    }

    /// The kinds of the sessions of the gaps from [`Order::next_gap`] to `to` (exclusive), into
    /// `out`.
    pub fn take(&mut self, line: &Timeline, to: usize, out: &mut Vec<u64>) {
        out.clear();
        out.resize(self.width, 0);
        let Some(last) = to.checked_sub(1) else {
            return;
        };
        let end = line.gap_end(last);
        while let Some(undrawn) = self.nodes.pop() {
            let Undrawn {
                ref span,
                ref kinds,
            } = undrawn;
            if span.lo >= end {
                self.nodes.push(undrawn);
                break;
            }
            if span.hi <= end {
                for (o, k) in out.iter_mut().zip(kinds) {
                    *o += k;
                }
                continue;
            }
            if self.sessions(span) == 0 {
                continue;
            }
            // Across the end: split the node's kinds between its halves.
            let (a, b) = line
                .halves(span)
                .expect("a node across a cut with sessions has halves");
            let mut low = Vec::with_capacity(kinds.len());
            let unit = mix64(self.key ^ span.key);
            let mut r = keyed(self.seed, self.rep, self.t, unit, Step::Arrivals, 1);
            multivariate_hypergeometric(kinds, self.sessions(&a), &mut r, &mut low);
            let high = kinds.iter().zip(&low).map(|(k, l)| k - l).collect();
            self.nodes.push(Undrawn {
                span: b,
                kinds: high,
            });
            self.nodes.push(Undrawn {
                span: a,
                kinds: low,
            });
        }
        self.next = self.next.max(to);
    }

    /// A stream for the draws inside gap `gap` of this epoch.
    pub fn inside(&self, line: &Timeline, gap: usize) -> Stream {
        let unit = mix64(self.key ^ mix64(line.gap_key(gap)));
        keyed(self.seed, self.rep, self.t, unit, Step::Arrivals, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: (u64, u64, usize) = (7, 1, 3);

    /// A time at a share `x` of the tick.
    fn at(x: f64) -> u64 {
        (x * 2f64.powi(64)) as u64
    }

    fn order(line: &Timeline, gaps: &[u64], kinds: Vec<u64>) -> Order {
        Order::new(TICK, 11, line, gaps, kinds)
    }

    #[test]
    fn a_run_of_gaps_has_the_same_kinds_however_it_is_taken() {
        let cuts: Vec<u64> = [0.1, 0.15, 0.3, 0.3, 0.55, 0.6, 0.9].map(at).to_vec();
        let kinds = vec![10, 5, 7];
        let (line, gaps) = Timeline::new(TICK, 22, cuts);
        assert_eq!(gaps.len(), 8);
        assert_eq!(
            gaps[3], 0,
            "two sessions at the same time have nothing between them"
        );
        let mut one = order(&line, &gaps, kinds.clone());
        let mut by_gap = order(&line, &gaps, kinds.clone());
        let mut whole = Vec::new();
        one.take(&line, 5, &mut whole);
        let mut sum = vec![0; 3];
        let mut part = Vec::new();
        for (g, &size) in gaps.iter().enumerate().take(5) {
            by_gap.take(&line, g + 1, &mut part);
            assert_eq!(part.iter().sum::<u64>(), size);
            for (s, p) in sum.iter_mut().zip(&part) {
                *s += p;
            }
        }
        assert_eq!(whole, sum);
        let mut rest = Vec::new();
        one.take(&line, 8, &mut rest);
        assert_eq!(rest.iter().sum::<u64>(), gaps[5..].iter().sum::<u64>());
        let total: Vec<u64> = whole.iter().zip(&rest).map(|(a, b)| a + b).collect();
        assert_eq!(total, kinds);
        assert_eq!(one.next_gap(), 8);
    }

    #[test]
    fn an_epoch_that_starts_inside_a_gap_has_its_last_sessions() {
        let (line, mut gaps) = Timeline::new(TICK, 1_000, [0.25, 0.5].map(at).to_vec());
        // Gap 0 arrived, and all but 10 of gap 1: the order of the rest holds exactly those.
        gaps[0] = 0;
        gaps[1] = 10;
        let rest: u64 = gaps.iter().sum();
        let mut o = order(&line, &gaps, vec![rest - 40, 40]);
        let mut part = Vec::new();
        o.take(&line, 1, &mut part);
        assert_eq!(part, [0, 0]);
        o.take(&line, 2, &mut part);
        assert_eq!(part.iter().sum::<u64>(), 10);
        o.take(&line, 3, &mut part);
        assert_eq!(part.iter().sum::<u64>(), gaps[2]);
    }

    #[test]
    fn sessions_arrive_at_independent_uniform_times() {
        // 10 sessions, 4 of kind 0, at independent uniform times, cut at 0.2 and 0.5: gap 1
        // holds Binomial(10, 0.3) sessions, Binomial(4, 0.3) of them of kind 0; gap 2
        // Binomial(10, 0.5). Each frequency within 5 standard errors of its probability.
        let n = 40_000;
        let binomial = |m: u64, p: f64, k: u64| {
            let c = (0..k).fold(1.0, |c, i| c * (m - i) as f64 / (i + 1) as f64);
            c * p.powi(k as i32) * (1.0 - p).powi((m - k) as i32)
        };
        let (mut sizes, mut zeros, mut last) = ([0.0; 11], [0.0; 5], [0.0; 11]);
        let mut part = Vec::new();
        for key in 0..n {
            let (line, gaps) = Timeline::new((key, 1, 3), 10, [0.2, 0.5].map(at).to_vec());
            let mut o = Order::new((key, 1, 3), key, &line, &gaps, vec![4, 6]);
            o.take(&line, 1, &mut part);
            o.take(&line, 2, &mut part);
            sizes[gaps[1] as usize] += 1.0;
            zeros[part[0] as usize] += 1.0;
            last[gaps[2] as usize] += 1.0;
        }
        let check = |seen: &[f64], m: u64, p: f64| {
            for (k, s) in seen.iter().enumerate() {
                let q = binomial(m, p, k as u64);
                let se = (q * (1.0 - q) / n as f64).sqrt();
                assert!(
                    (s / n as f64 - q).abs() < 5.0 * se,
                    "{seen:?} against Bin({m}, {p})"
                );
            }
        };
        check(&sizes, 10, 0.3);
        check(&zeros, 4, 0.3);
        check(&last, 10, 0.5);
    }

    #[test]
    fn one_more_cut_changes_only_the_gaps_near_it() {
        // Paired runs whose several-session users differ by one: with the tree fixed by the
        // cuts, the gaps away from the extra cut keep their sizes (before, keyed by gap index,
        // every gap after it moved: about half of them, 500, on average). Over 200 ticks of
        // 1,000 cuts and 10^6 singles (fixed seeds), 3.21 gaps differ on average (those whose
        // node the extra cut splits, and below it, drawn with shifted shares); the bound is 5.
        let mut differing = 0;
        for key in 0..200u64 {
            let mut r = keyed(key, 0, 0, 0, Step::Arrivals, 9);
            let mut cuts: Vec<u64> = (0..1_000).map(|_| r.next_u64()).collect();
            cuts.sort_unstable();
            let extra = r.next_u64();
            let i = cuts.partition_point(|&x| x < extra);
            let mut with = cuts.clone();
            with.insert(i, extra);
            let (_, mut merged) = Timeline::new((key, 0, 0), 1_000_000, with);
            let (_, without) = Timeline::new((key, 0, 0), 1_000_000, cuts);
            merged[i] += merged.remove(i + 1);
            differing += merged.iter().zip(&without).filter(|(a, b)| a != b).count();
        }
        let mean = differing as f64 / 200.0;
        assert!(mean < 5.0, "{mean} gaps of 1,001 differ on average");
    }
}
