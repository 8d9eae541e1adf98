//! Phases 1–2 of a tick on counts: traffic programs' kept boosted impressions, then every user's
//! impressions and clicks. Work grows with the number of user types (cohort × boosted vector ×
//! organic level), not with users; only users with two or more clicks are drawn one by one.

use std::collections::BTreeMap;

use rand::{Rng, RngExt, SeedableRng};
use smallvec::{SmallVec, smallvec};

use super::samplers::{
    ChanceChain, binomial, hypergeometric_keyed, multinomial, multinomial_keyed, occupancy,
    poisson, poisson_above,
};
use super::{Clicked, Individual, Next, Placements, Sim, State, Step, keyed};
use crate::engine::rng::{Stream, mix64};
use crate::engine::story::{self, Tally};
use crate::engine::{Count, Plan};

/// Organic impression levels are enumerated until the chance of more is below this; users beyond
/// (almost never any) are drawn one by one from the exact conditional law, so nothing is cut off.
const LEVEL_TAIL: f64 = 1e-12;

/// Kept boosted impressions of one user per program (indexed by program; 0 for coupon programs;
/// inline for up to four programs, as in the default: vectors are cloned for every group).
type Boosts = SmallVec<[u32; 4]>;

/// This tick's users with kept boosted impressions: per cohort, counts by boosted vector (users
/// without any are not listed).
pub(super) type Boosted = BTreeMap<State, BTreeMap<Boosts, u64>>;

/// A category drawn with probability weight / Σ weights.
fn pick(weights: &[f64], r: &mut Stream) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = r.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights
        .iter()
        .rposition(|&w| w > 0.0)
        .expect("some positive weight")
}

/// What all of a segment's exposure groups in a tick share.
struct SegmentLaws {
    /// The conditional chances of the users' organic impression counts ([`poisson_levels`]).
    levels: ChanceChain,
    /// Their click chances, grown as far as the farthest group reaches.
    table: ClickTable,
}

impl SegmentLaws {
    /// The laws of tick `t` and segment `g`, whose organic impressions have mean `mean`.
    fn new(plan: &Plan, t: usize, g: usize, mean: f64) -> Self {
        SegmentLaws {
            levels: ChanceChain::new(&poisson_levels(mean)),
            table: ClickTable::new(plan, t, g),
        }
    }
}

/// Step 2's chances for the positions of one tick and segment, by row: row d is the position
/// of day index d (impressions served today before it). A walk's positions are the rows from
/// `from` (its users' impressions served today) on, so that one table serves all of a
/// segment's groups in a tick, whatever they were served, growing as far as they reach.
struct ClickTable {
    /// `click[d][p]`: the click chance of row d on placement p.
    click: Vec<Vec<f64>>,
    /// `organic[d]`: the joint law of an organic impression's placement and click at row d:
    /// π_p (1 − c_dp) for p in 0..P, then π_p c_dp; π_p = λ_p / Λ is the organic label law.
    organic: Vec<Vec<f64>>,
    /// `organic[d]`'s conditional chances, for the multinomial of each position's organic
    /// impressions.
    organic_chances: Vec<ChanceChain>,
    /// π, the law of an organic impression's placement.
    label: Vec<f64>,
    /// The tick and segment whose chances the rows are.
    at: (usize, usize),
    /// The row of the walk's first position.
    from: usize,
}

impl ClickTable {
    /// The table of tick `t` and segment `g`, with no rows yet ([`ClickTable::reach`]).
    fn new(plan: &Plan, t: usize, g: usize) -> Self {
        let lambda = &plan.lambda[t][g];
        let total: f64 = lambda.iter().sum();
        let label = lambda
            .iter()
            .map(|&l| if total > 0.0 { l / total } else { 0.0 })
            .collect();
        ClickTable::from_chances((t, g), label, Vec::new())
    }

    /// Adds the table's rows up to `rows` (exclusive).
    fn reach(&mut self, plan: &Plan, rows: usize) {
        let (t, g) = self.at;
        for d in self.click.len()..rows {
            let day_index = u32::try_from(d).expect("fewer than 2^32 impressions a day");
            let row = (0..self.placements())
                .map(|p| story::click_probability(plan, t, g, p, day_index))
                .collect();
            self.push_row(row);
        }
    }

    /// Readies the table for walks of `positions` positions by users served `from` impressions
    /// today.
    fn start_at(&mut self, plan: &Plan, from: usize, positions: usize) {
        self.reach(plan, from + positions);
        self.from = from;
    }

    /// A table of tick and segment `at` with the given label law and click chances by row (its
    /// walks start at row 0).
    fn from_chances(at: (usize, usize), label: Vec<f64>, click: Vec<Vec<f64>>) -> Self {
        let mut table = ClickTable {
            click: Vec::new(),
            organic: Vec::new(),
            organic_chances: Vec::new(),
            label,
            at,
            from: 0,
        };
        for row in click {
            table.push_row(row);
        }
        table
    }

    fn push_row(&mut self, click: Vec<f64>) {
        let quiet = self.label.iter().zip(&click).map(|(pi, c)| pi * (1.0 - c));
        let clicked = self.label.iter().zip(&click).map(|(pi, c)| pi * c);
        let organic: Vec<f64> = quiet.chain(clicked).collect();
        self.organic_chances.push(ChanceChain::new(&organic));
        self.organic.push(organic);
        self.click.push(click);
    }

    /// The click chances of the walk's position `k`, by placement.
    fn click(&self, k: usize) -> &[f64] {
        &self.click[self.from + k]
    }

    /// The joint law of placement and click at the walk's position `k` ([`ClickTable::organic`]).
    fn organic(&self, k: usize) -> &[f64] {
        &self.organic[self.from + k]
    }

    /// [`ClickTable::organic`]'s conditional chances.
    fn organic_chances(&self, k: usize) -> &ChanceChain {
        &self.organic_chances[self.from + k]
    }

    fn placements(&self) -> usize {
        self.label.len()
    }
}

/// A program's kept boosted impressions in a user's offer: (program, its placement, how many).
#[derive(Clone, Copy)]
struct Boost {
    program: usize,
    placement: usize,
    kept: u32,
}

/// What the served positions of a set of users with the same offer gave.
#[derive(Default)]
struct Walk {
    /// Users with no click.
    quiet: u64,
    /// Users with exactly one click, by its placement.
    single: Vec<u64>,
    /// The click placements (in served order) of each user with two clicks or more.
    multi: Vec<Placements>,
    /// Organic impressions served, by placement.
    organic: Vec<u64>,
    /// Boosted impressions served, by program.
    boosted: Vec<u64>,
    /// Clicks, by placement.
    clicks: Vec<u64>,
    /// Organic impressions offered but not served (their placements are still to be drawn).
    organic_unserved: u64,
}

/// Where one of the users being walked stands before a position: offered impressions not yet
/// served (organic, then boosted per entry of the offer), and its click so far, if one.
type Standing = (u64, Unserved, Option<usize>);

/// Boosted impressions offered but not yet served, per entry of the offer (inline for the usual
/// few traffic programs: the walk copies them for every move).
type Unserved = SmallVec<[u32; 4]>;

/// A user with two clicks, walked alone: the position it stands before, its unserved organic and
/// boosted impressions, and its clicks' placements so far. The users who clicked a second time
/// at the same position, from the same standing and on the same placement, share one, with their
/// count: walked one after the other, they are alike until their own draws (a list of them one
/// by one grows with the population: 4,000 users, 260 KB, in one walk at 10^9 users).
type Alone = (usize, u64, Unserved, Placements);

/// The working lists of [`walk`], kept from one walk to the next so that a walk allocates
/// nothing once they have grown.
#[derive(Default)]
pub(super) struct WalkScratch {
    /// The last group's laws (a segment's groups come one after the other).
    segment: Option<SegmentLaws>,
    standings: Vec<(Standing, u64)>,
    next: Vec<(Standing, u64)>,
    alone: Vec<(Alone, u64)>,
    kinds: Vec<f64>,
    split: Vec<u64>,
    outcome: Vec<u64>,
    /// The last walk's result, its lists kept for the next one's (a walk per level and group:
    /// about 10^5 in a national replication, each of which allocated them anew).
    spare: Walk,
    /// Scratch space for the organic impressions offered but not served, by placement.
    unserved: Vec<u64>,
}

/// Room the scratch keeps from one tick to the next in its lists of users with several clicks:
/// 64 entries in each (4.5 KiB for the users walked alone). More were kept (1,024), but at
/// 10^9 users they stayed full through phase 3, where a tick's memory peaks, for nothing: a walk
/// that needs more grows its lists again at little cost.
const SEVERAL_KEPT: usize = 64;

impl WalkScratch {
    /// Frees the lists of users with several clicks (those walked alone, those of the last
    /// walk's result) that a walk of this tick made large: their length grows with the
    /// population, and kept, they would stay resident through phase 3, where the tick's memory
    /// peaks.
    pub(super) fn release_large(&mut self) {
        if self.alone.capacity() > SEVERAL_KEPT {
            self.alone = Vec::new();
        }
        if self.spare.multi.capacity() > SEVERAL_KEPT {
            self.spare.multi = Vec::new();
        }
    }
}

/// Where the users walked through one position go.
struct Moves<'a> {
    /// Standings with their users, in standing order (a handful: a sorted list, which a key
    /// already there is found in without building it).
    to: &'a mut Vec<(Standing, u64)>,
    alone: &'a mut Vec<(Alone, u64)>,
    next_position: usize,
}

impl Moves<'_> {
    /// Adds `users` to the standing (`left`, `first`).
    fn add(&mut self, left: &(u64, Unserved), first: Option<usize>, users: u64) {
        let key = (left.0, left.1.as_slice(), first);
        match self
            .to
            .binary_search_by(|((o, b, f), _)| (*o, b.as_slice(), *f).cmp(&key))
        {
            Ok(i) => self.to[i].1 += users,
            Err(i) => self.to.insert(i, ((left.0, left.1.clone(), first), users)),
        }
    }

    /// `users` with unserved counts `left` and click so far `first` who did not click here.
    fn quiet(&mut self, left: &(u64, Unserved), first: Option<usize>, users: u64) {
        if users > 0 {
            self.add(left, first, users);
        }
    }

    /// `users` who clicked here on `placement`: a first click moves them on together; a second
    /// takes each one out to be walked alone.
    fn clicked(
        &mut self,
        left: &(u64, Unserved),
        first: Option<usize>,
        placement: usize,
        users: u64,
    ) {
        if users == 0 {
            return;
        }
        match first {
            None => self.add(left, Some(placement), users),
            Some(f) => {
                let user = (
                    self.next_position,
                    left.0,
                    left.1.clone(),
                    smallvec![f, placement],
                );
                self.alone.push((user, users));
            }
        }
    }
}

/// Steps 1–2 for `n` users who share a click table and an offer: `organic` organic impressions
/// and `boosts`, of which the first `served` of a uniformly random order are served.
///
/// Exact: the first `served` of a uniform order of the offered impressions are drawn position by
/// position, each time a kind with probability (its unserved count) / (all unserved), which is the
/// law of a uniform order's prefix; an organic impression's placement is π, independent of all
/// else, and each position is clicked independently with its chance. A user's next position
/// depends only on its unserved counts and its click so far, so the users sharing those are
/// exchangeable and move on together by a multinomial. A user's second click ends its exchange:
/// from there it is walked alone by the same law. Unserved organic impressions keep the law π.
#[allow(clippy::too_many_arguments)]
fn walk(
    table: &ClickTable,
    organic: u64,
    boosts: &[Boost],
    served: usize,
    n: u64,
    programs: usize,
    r: &mut Stream,
    scratch: &mut WalkScratch,
) -> Walk {
    let places = table.placements();
    let mut w = std::mem::take(&mut scratch.spare);
    (w.quiet, w.organic_unserved) = (0, 0);
    w.multi.clear();
    for (list, len) in [
        (&mut w.single, places),
        (&mut w.organic, places),
        (&mut w.boosted, programs),
        (&mut w.clicks, places),
    ] {
        list.clear();
        list.resize(len, 0);
    }
    let start: Standing = (organic, boosts.iter().map(|b| b.kept).collect(), None);
    let WalkScratch {
        standings,
        next,
        alone,
        kinds,
        split,
        outcome,
        ..
    } = scratch;
    // Each walk leaves them empty (drained below).
    debug_assert!(standings.is_empty() && next.is_empty() && alone.is_empty());
    standings.push((start, n));
    // Each standing's draws at each position come from a generator of their own, seeded by
    // the walk's first number, the position and the standing: paired runs whose walks hold a
    // few users more or less, or a standing the other lacks, still meet the same draws elsewhere.
    let walk_seed = r.next_u64();
    for k in 0..served {
        let mut moves = Moves {
            to: next,
            alone,
            next_position: k + 1,
        };
        for ((organic_left, boosted_left, first), users) in standings.drain(..) {
            let standing = boosted_left
                .iter()
                .fold(mix64(organic_left ^ mix64(k as u64)), |h, &b| {
                    mix64(h ^ u64::from(b))
                });
            let standing = mix64(standing ^ first.map_or(0, |p| p as u64 + 1));
            let r = &mut Stream::seed_from_u64(mix64(walk_seed ^ standing));
            kinds.clear();
            kinds.push(organic_left as f64);
            kinds.extend(boosted_left.iter().map(|&b| f64::from(b)));
            multinomial(users, kinds, r, split);
            if split[0] > 0 {
                table.organic_chances(k).multinomial(split[0], r, outcome);
                let left = (organic_left - 1, boosted_left.clone());
                moves.quiet(&left, first, outcome[..places].iter().sum());
                for p in 0..places {
                    let (q, c) = (outcome[p], outcome[places + p]);
                    w.organic[p] += q + c;
                    w.clicks[p] += c;
                    moves.clicked(&left, first, p, c);
                }
            }
            for (i, b) in boosts.iter().enumerate() {
                let m = split[1 + i];
                if m == 0 {
                    continue;
                }
                let c = binomial(m, table.click(k)[b.placement], r);
                w.boosted[b.program] += m;
                w.clicks[b.placement] += c;
                let mut left = (organic_left, boosted_left.clone());
                left.1[i] -= 1;
                moves.quiet(&left, first, m - c);
                moves.clicked(&left, first, b.placement, c);
            }
        }
        std::mem::swap(standings, next);
    }
    for ((organic_left, _, first), users) in standings.drain(..) {
        w.organic_unserved += organic_left * users;
        match first {
            None => w.quiet += users,
            Some(p) => w.single[p] += users,
        }
    }
    for (user, users) in alone.drain(..) {
        // Every user but the last walks a copy of the entry (an entry holds one user or more).
        for _ in 1..users {
            walk_alone(table, boosts, served, user.clone(), &mut w, r);
        }
        walk_alone(table, boosts, served, user, &mut w, r);
    }
    w
}

/// The rest of the walk (positions `from` to `served`) of a user with two clicks, alone: each
/// position serves one of its unserved impressions uniformly at random, clicked with its chance.
fn walk_alone(
    table: &ClickTable,
    boosts: &[Boost],
    served: usize,
    (from, mut organic_left, mut boosted_left, mut sessions): Alone,
    w: &mut Walk,
    r: &mut Stream,
) {
    let places = table.placements();
    for k in from..served {
        let unserved = organic_left + boosted_left.iter().map(|&b| u64::from(b)).sum::<u64>();
        let mut x = r.random_range(0..unserved);
        if x < organic_left {
            organic_left -= 1;
            let o = pick(table.organic(k), r);
            let p = o % places;
            w.organic[p] += 1;
            if o >= places {
                w.clicks[p] += 1;
                sessions.push(p);
            }
            continue;
        }
        x -= organic_left;
        let i = boosted_left
            .iter()
            .position(|&b| {
                let here = x < u64::from(b);
                x = x.wrapping_sub(u64::from(b));
                here
            })
            .expect("x is below the unserved count");
        boosted_left[i] -= 1;
        let b = boosts[i];
        w.boosted[b.program] += 1;
        if r.random::<f64>() < table.click(k)[b.placement] {
            w.clicks[b.placement] += 1;
            sessions.push(b.placement);
        }
    }
    w.organic_unserved += organic_left;
    w.multi.push(sessions);
}

/// The stream key of an exposure group: its segment, impressions served today and boosted
/// vector `b` (a vector without boosted impressions does not enter it).
fn group_key(segment: u32, served_before: u32, b: &[u32]) -> u64 {
    let base = mix64(u64::from(segment) << 32 | u64::from(served_before));
    if b.iter().all(|&k| k == 0) {
        base
    } else {
        mix64(base ^ boosts_key(b))
    }
}

/// The stream key of one organic level of an exposure group (the group's `key`, its organic
/// impression count `o`, and `tail`, 0 for the enumerated levels and the rank of a user drawn
/// beyond them): each number enters a key already mixed, so that no two levels share draws. (A
/// key built as `mix64(key ^ mix64(o))`, with the group key `mix64(served_before)` of segment 0,
/// was symmetric in served_before and o: the levels (3 served before, 4 offered) and (4, 3)
/// shared every draw, their several-session users too.)
fn level_unit(key: u64, o: u64, tail: u64) -> u64 {
    mix64(mix64(key ^ o) ^ tail)
}

/// A stream key for a boosted vector (programs with none do not enter it).
fn boosts_key(boosts: &[u32]) -> u64 {
    boosts
        .iter()
        .enumerate()
        .filter(|(_, b)| **b > 0)
        .fold(0, |h, (j, &b)| {
            mix64(h ^ mix64((j as u64) << 32 | u64::from(b)))
        })
}

/// How many of `offered` impressions a user with `room` left under the cap is served.
fn served_of(offered: u64, room: u32) -> usize {
    offered.min(u64::from(room)) as usize
}

/// Weights of organic impression counts 0, 1, …, L for Poisson(mean), then one last weight for
/// "more than L"; L is large enough that "more" has chance below LEVEL_TAIL. The enumeration
/// starts from P(0) = exp(−mean), which underflows past a mean of about 745 (every user would
/// then go to "more" and be drawn one by one): scenarios keep the mean within
/// `MAX_IMPRESSIONS_PER_TICK`.
fn poisson_levels(mean: f64) -> Vec<f64> {
    debug_assert!(mean <= crate::scenario::MAX_IMPRESSIONS_PER_TICK, "{mean}");
    let mut p = (-mean).exp();
    let mut levels = vec![p];
    let mut cumulative = p;
    let mut o = 0u64;
    while 1.0 - cumulative > LEVEL_TAIL {
        o += 1;
        p *= mean / o as f64;
        levels.push(p);
        cumulative += p;
        if p == 0.0 && o as f64 > mean {
            break;
        }
    }
    levels.push((1.0 - cumulative).max(0.0));
    levels
}

/// Organic levels of `n` users: (level, users, tail index), `levels` the conditional chances of
/// [`poisson_levels`] for `mean`. Users above the enumerated levels come one by one (tail index
/// 1, 2, …) with their level drawn from the conditional tail.
fn split_levels(levels: &ChanceChain, mean: f64, n: u64, r: &mut Stream) -> Vec<(u64, u64, u64)> {
    let mut counts = Vec::new();
    levels.multinomial(n, r, &mut counts);
    let beyond = counts.pop().unwrap_or(0);
    let top = counts.len() as u64 - 1;
    let mut levels: Vec<(u64, u64, u64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(o, &c)| (o as u64, c, 0))
        .collect();
    levels.extend((0..beyond).map(|i| (poisson_above(mean, top, r), 1, i + 1)));
    levels
}

/// Gives program `j`'s levels to the users of a cohort: `histogram[l]` users get l of its kept
/// impressions; `groups` counts the users by boosted vector so far (the rest have none) and is
/// updated. Which users get each level is a uniform draw without replacement, so each level's
/// users fall over the groups by a multivariate hypergeometric of the group sizes: program j
/// thins independently of the programs before it.
fn assign_levels(
    histogram: &[u64],
    j: usize,
    programs: usize,
    groups: &mut BTreeMap<Boosts, u64>,
    r: &mut Stream,
) {
    let n: u64 = histogram.iter().sum();
    let none = n - groups.values().sum::<u64>();
    // Users not yet given a level of program j, by group: the zero vector (sorted first) and the
    // earlier programs' groups in order.
    let mut unassigned: Vec<(Boosts, u64)> = std::iter::once((smallvec![0; programs], none))
        .chain(groups.iter().map(|(b, &c)| (b.clone(), c)))
        .collect();
    let mut left = n;
    for (level, &count) in histogram.iter().enumerate().skip(1) {
        let (mut pool, mut wanted) = (left, count);
        for (b, size) in unassigned.iter_mut() {
            if wanted == 0 {
                break;
            }
            let x = hypergeometric_keyed(pool, *size, wanted, r.next_u64());
            pool -= *size;
            *size -= x;
            wanted -= x;
            if x == 0 {
                continue;
            }
            if let Some(c) = groups.get_mut(b) {
                *c -= x;
            }
            let mut to = b.clone();
            to[j] = level as u32;
            *groups.entry(to).or_insert(0) += x;
        }
        left -= count;
    }
    groups.retain(|_, c| *c > 0);
}

/// The users of one level, by outcome: the quiet, the single-session ones by placement, and
/// the multi-session ones with their sessions and stream keys.
struct Outcomes {
    quiet: u64,
    single: SmallVec<[u64; 8]>,
    multi: Vec<(Placements, u64)>,
}

impl<'p, 's> Sim<'p, 's> {
    /// Phase 1 (MODEL.md, *Budgets*): each traffic program in listed order reserves what it can
    /// pay (A); the M ~ Poisson(Σ size × β) offered boosted impressions keep min(M, A), spread over
    /// cohorts by a multinomial and over users by an occupancy histogram. Returns the boosted users
    /// by cohort and boosted vector.
    pub(super) fn reserve_boosts(&mut self, t: usize) -> Boosted {
        let s = self.scenario();
        let mut boosted = Boosted::new();
        for j in 0..s.programs.len() {
            self.reserved[j] = 0;
            self.paid[j] = 0;
            let Some(buy) = s.programs[j].traffic() else {
                continue;
            };
            if !self.plan.in_window[j][t] {
                continue;
            }
            let a = self.ledger.affordable(self.plan, j, t);
            let targets: Vec<(&State, u64, f64)> = self
                .cohorts
                .iter()
                .map(|(state, &n)| {
                    let g = state.segment as usize;
                    let beta = if s.programs[j].segments[g] {
                        buy.max_boost * self.plan.lambda[t][g][buy.placement]
                    } else {
                        0.0
                    };
                    (state, n, n as f64 * beta)
                })
                .filter(|x| x.2 > 0.0)
                .collect();
            let weights: Vec<f64> = targets.iter().map(|x| x.2).collect();
            let mut r = keyed(self.seed, self.rep, t, j as u64, Step::BoostTotal, 0);
            let kept = poisson(weights.iter().sum(), &mut r).min(a);
            let mut per_cohort = Vec::new();
            // Each cohort's share from a seed of its own state, so that a cohort only one
            // paired run has (a redemption state only it reached) shifts no other's.
            let base = r.next_u64();
            let seed = |i: usize| mix64(base ^ targets[i].0.key());
            multinomial_keyed(kept, &weights, seed, &mut per_cohort);
            for (&(state, n, _), &k) in targets.iter().zip(&per_cohort) {
                if k > 0 {
                    let groups = boosted.entry(state.clone()).or_default();
                    self.spread_boosts(t, j, state, n, k, groups);
                }
            }
            self.reserved[j] = kept;
            self.ledger.reserve(self.plan, j, kept, true);
        }
        boosted
    }

    /// Spreads `balls` kept boosted impressions of program `j` uniformly over the `n` users of a
    /// cohort whose users are grouped by their boosted vectors so far (`groups`).
    fn spread_boosts(
        &self,
        t: usize,
        j: usize,
        state: &State,
        n: u64,
        balls: u64,
        groups: &mut BTreeMap<Boosts, u64>,
    ) {
        let mut r = keyed(
            self.seed,
            self.rep,
            t,
            state.key(),
            Step::BoostSpread,
            j as u64,
        );
        let histogram = occupancy(n, balls, &mut r);
        assign_levels(&histogram, j, self.paid.len(), groups, &mut r);
    }
    /// Phase 2 for `n` users of segment `g` with `served` impressions today, `organic` organic
    /// impressions offered and the kept `boosts`: books every impression, click and boosted
    /// payment, and returns the users by outcome. `unit` keys the level's stream.
    #[allow(clippy::too_many_arguments)]
    fn expose_users(
        &mut self,
        t: usize,
        table: &ClickTable,
        g: usize,
        served: usize,
        boosts: &[Boost],
        organic: u64,
        n: u64,
        unit: u64,
    ) -> Outcomes {
        let programs = self.paid.len();
        let mut r = keyed(self.seed, self.rep, t, unit, Step::Level, 0);
        let scratch = &mut self.walk_scratch;
        let mut w = walk(table, organic, boosts, served, n, programs, &mut r, scratch);
        for p in 0..table.placements() {
            self.add(t, Count::ImpressionsOffered, p, g, w.organic[p]);
            self.add(t, Count::Impressions, p, g, w.organic[p]);
            self.add(t, Count::Clicks, p, g, w.clicks[p]);
            self.add(t, Count::Sessions, p, g, w.clicks[p]);
        }
        let mut counts = std::mem::take(&mut self.walk_scratch.unserved);
        multinomial(w.organic_unserved, &table.label, &mut r, &mut counts);
        for (p, &c) in counts.iter().enumerate() {
            self.add(t, Count::ImpressionsOffered, p, g, c);
        }
        self.walk_scratch.unserved = counts;
        for b in boosts {
            let m = w.boosted[b.program];
            self.add(t, Count::Impressions, b.placement, g, m);
            self.paid[b.program] += m;
            let mut tally = Tally {
                out: &mut self.out,
                funnel: self.funnel,
                t,
                placement: b.placement,
                segment: g,
            };
            story::pay_boosted_many(self.plan, &mut self.ledger, b.program, m, &mut tally);
        }
        let out = Outcomes {
            quiet: w.quiet,
            single: SmallVec::from_slice(&w.single),
            multi: w
                .multi
                .drain(..)
                .enumerate()
                .map(|(i, sessions)| (sessions, mix64(unit ^ mix64(i as u64 + 1))))
                .collect(),
        };
        self.walk_scratch.spare = w;
        out
    }

    /// Phase 2 for every user. Exposure depends only on segment, impressions served today and
    /// the kept boosted impressions (the boosted vector), so the users sharing those form one
    /// group whatever their cohorts: its users are split by organic impression count, each level
    /// is walked on counts, and each outcome is then dealt to the group's cohorts uniformly
    /// without replacement. Keying a group's streams by (segment, served, boosted vector) alone
    /// keeps the scenario and its baseline (and two splits) on the same draws even after
    /// redemptions have split their cohorts.
    pub(super) fn expose_cohorts(
        &mut self,
        t: usize,
        boosted: Boosted,
        next: &mut Next,
        clicked: &mut Clicked,
    ) {
        let mut groups: BTreeMap<(u32, u32, Boosts), Vec<(State, u64)>> = BTreeMap::new();
        for (state, by_vector) in boosted {
            for (b, n) in by_vector {
                *self.cohorts.get_mut(&state).expect("boosted cohorts exist") -= n;
                groups
                    .entry((state.segment, state.served, b))
                    .or_default()
                    .push((state.clone(), n));
            }
        }
        for (state, &n) in self.cohorts.iter().filter(|x| *x.1 > 0) {
            groups
                .entry((state.segment, state.served, Boosts::new()))
                .or_default()
                .push((state.clone(), n));
        }
        for ((segment, served_before, b), members) in groups {
            self.expose_group(t, (segment, served_before, &b), members, next, clicked);
        }
    }

    /// Organic impressions offered to `n` users who are served none: Poisson(n λ_p) per placement.
    fn offer_unserved(&mut self, t: usize, g: usize, n: u64, r: &mut Stream) {
        for (p, &l) in self.plan.lambda[t][g].iter().enumerate() {
            let offered = poisson(n as f64 * l, r);
            self.add(t, Count::ImpressionsOffered, p, g, offered);
        }
    }

    /// Phase 2 for one group: `members` (cohorts in state order, with their users in the group)
    /// share `segment`, `served_before` and the boosted vector `b`.
    fn expose_group(
        &mut self,
        t: usize,
        (segment, served_before, b): (u32, u32, &[u32]),
        members: Vec<(State, u64)>,
        next: &mut Next,
        clicked: &mut Clicked,
    ) {
        let s = self.scenario();
        let g = segment as usize;
        let boosts: Vec<Boost> = b
            .iter()
            .enumerate()
            .filter(|(_, k)| **k > 0)
            .map(|(j, &kept)| Boost {
                program: j,
                placement: s.programs[j].traffic().expect("traffic program").placement,
                kept,
            })
            .collect();
        let offered: u64 = boosts.iter().map(|x| u64::from(x.kept)).sum();
        let n: u64 = members.iter().map(|m| m.1).sum();
        for x in &boosts {
            self.add(
                t,
                Count::ImpressionsOffered,
                x.placement,
                g,
                n * u64::from(x.kept),
            );
        }
        let key = group_key(segment, served_before, b);
        let mean: f64 = self.plan.lambda[t][g].iter().sum();
        let room = s.frequency.cap.saturating_sub(served_before);
        let mut r = keyed(self.seed, self.rep, t, key, Step::Exposure, 0);
        let mut group = Group::new(
            members,
            keyed(self.seed, self.rep, t, key, Step::AssignBlock, 0),
            keyed(self.seed, self.rep, t, key, Step::AssignMember, 0),
        );
        if room == 0 || (mean == 0.0 && offered == 0) {
            self.offer_unserved(t, g, n, &mut r);
        } else {
            let mut laws = match self.walk_scratch.segment.take() {
                Some(laws) if laws.table.at == (t, g) => laws,
                _ => SegmentLaws::new(self.plan, t, g, mean),
            };
            let levels = split_levels(&laws.levels, mean, n, &mut r);
            let most = levels.iter().map(|l| l.0).max().unwrap_or(0) + offered;
            let positions = served_of(most, room);
            (laws.table).start_at(self.plan, served_before as usize, positions);
            for (o, users, tail) in levels {
                if o + offered == 0 {
                    continue;
                }
                let served = served_of(o + offered, room);
                let unit = level_unit(key, o, tail);
                let out = self.expose_users(t, &laws.table, g, served, &boosts, o, users, unit);
                group.deal(self.plan, out, served as u32, next, clicked);
            }
            self.walk_scratch.segment = Some(laws);
        }
        for (state, left) in group.members {
            if left > 0 {
                *next.entry(state).or_insert(0) += left;
            }
        }
    }
}

/// The cohorts of one exposure group, with the users not yet dealt an outcome. Users are
/// dealt uniformly without replacement, first to an (app, Alipay) block, then to a cohort within it,
/// each level with its own stream: the baseline's blocks are the scenario's, so they stay coupled.
struct Group {
    /// Cohorts in state order (blocks of equal app and Alipay are contiguous), with users left.
    members: Vec<(State, u64)>,
    /// `[first, end)` member ranges of the (app, Alipay) blocks (four at most).
    blocks: SmallVec<[(usize, usize); 4]>,
    block_rng: Stream,
    member_rng: Stream,
    /// Scratch space of [`Group::take_many`]'s results.
    dealt: Vec<(usize, u64)>,
}

impl Group {
    fn new(members: Vec<(State, u64)>, block_rng: Stream, member_rng: Stream) -> Self {
        let mut blocks: SmallVec<[(usize, usize); 4]> = SmallVec::new();
        for (i, (state, _)) in members.iter().enumerate() {
            match blocks.last_mut() {
                Some(b)
                    if members[b.0].0.app == state.app && members[b.0].0.alipay == state.alipay =>
                {
                    b.1 = i + 1
                }
                _ => blocks.push((i, i + 1)),
            }
        }
        Group {
            // A deal gives each member one count at most.
            dealt: Vec::with_capacity(members.len()),
            members,
            blocks,
            block_rng,
            member_rng,
        }
    }

    /// Deals one level's users by outcome (`out`, each served `served` impressions) to the
    /// group's cohorts: the quiet ones to `next`, the others to `clicked`.
    fn deal(
        &mut self,
        plan: &Plan,
        out: Outcomes,
        served: u32,
        next: &mut Next,
        clicked: &mut Clicked,
    ) {
        let after = |state: &State| State {
            served: state.served + served,
            ..state.clone()
        };
        let mut dealt = std::mem::take(&mut self.dealt);
        self.take_many(out.quiet, &mut dealt);
        for &(m, c) in &dealt {
            *next.entry(after(&self.members[m].0)).or_insert(0) += c;
        }
        for (p, &n_p) in out.single.iter().enumerate() {
            self.take_many(n_p, &mut dealt);
            for &(m, c) in &dealt {
                let state = after(&self.members[m].0);
                *clicked.single.entry((state, p)).or_insert(0) += c;
            }
        }
        self.dealt = dealt;
        for (sessions, unit) in out.multi {
            let m = self.take_one();
            let state = after(&self.members[m].0);
            let user = Individual {
                state,
                sessions,
                unit,
            };
            clicked.add_several(plan, user);
        }
    }

    fn left(&self, range: (usize, usize)) -> u64 {
        self.members[range.0..range.1].iter().map(|m| m.1).sum()
    }

    /// Deals `n` users (to `out`, as member and count): a multivariate hypergeometric draw, block
    /// by block then member by member.
    fn take_many(&mut self, n: u64, out: &mut Vec<(usize, u64)>) {
        out.clear();
        if n == 0 {
            return;
        }
        let mut total = self.left((0, self.members.len()));
        let mut wanted = n;
        for b in 0..self.blocks.len() {
            let range = self.blocks[b];
            let in_block = self.left(range);
            let x = hypergeometric_keyed(total, in_block, wanted, self.block_rng.next_u64());
            total -= in_block;
            wanted -= x;
            let (mut block_left, mut block_wanted) = (in_block, x);
            for m in range.0..range.1 {
                let size = self.members[m].1;
                let y = hypergeometric_keyed(
                    block_left,
                    size,
                    block_wanted,
                    self.member_rng.next_u64(),
                );
                block_left -= size;
                block_wanted -= y;
                if y > 0 {
                    self.members[m].1 -= y;
                    out.push((m, y));
                }
            }
        }
    }

    /// Deals one user, uniformly among those left.
    fn take_one(&mut self) -> usize {
        let total = self.left((0, self.members.len()));
        let mut x = self.block_rng.random_range(0..total);
        let mut range = self.blocks[0];
        for &b in &self.blocks {
            let in_block = self.left(b);
            if x < in_block {
                range = b;
                break;
            }
            x -= in_block;
        }
        let mut y = self.member_rng.random_range(0..self.left(range));
        for m in range.0..range.1 {
            if y < self.members[m].1 {
                self.members[m].1 -= 1;
                return m;
            }
            y -= self.members[m].1;
        }
        unreachable!("a user is left in the chosen block")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::{Stage, stream};
    use statrs::distribution::{ChiSquared, ContinuousCDF};

    /// A user's outcome: its click class (0 quiet, 1 + p one click on p, 1 + P two or more), its
    /// boosted impressions served per offer entry, and its organic impressions served on
    /// placement 0.
    type Class = (usize, Vec<u64>, u64);

    #[test]
    fn levels_of_different_groups_never_share_a_stream() {
        // Every organic level of every exposure group on a grid wider than the default's
        // (segments, impressions served before, boosted vectors, levels, tail ranks): all level
        // keys distinct, so no two levels, and no two of their several-session users, share
        // draws. The key mix64(mix64(group key ^ mix64(o)) ^ tail) fails here: in segment 0 it
        // was symmetric in served_before and o.
        let vectors: [&[u32]; 4] = [&[0, 0], &[1, 0], &[0, 2], &[3, 1]];
        let mut seen = std::collections::HashSet::new();
        for segment in 0..4 {
            for served_before in 0..16 {
                for b in vectors {
                    let key = group_key(segment, served_before, b);
                    for o in 0..16 {
                        for tail in 0..3 {
                            let unit = level_unit(key, o, tail);
                            assert!(
                                seen.insert(unit),
                                "segment {segment}, served {served_before}, {b:?}, level {o}, \
                                 tail {tail}"
                            );
                        }
                    }
                }
            }
        }
    }

    fn click_class(sessions: &[usize], places: usize) -> usize {
        match sessions {
            [] => 0,
            [p] => 1 + p,
            _ => 1 + places,
        }
    }

    /// The exact law of a user's class, by enumerating the literal story position by position:
    /// the next served impression is any unserved one with equal chance, an organic one lies on
    /// p with chance π_p, and it is clicked with its chance.
    #[allow(clippy::too_many_arguments)]
    fn enumerate(
        table: &ClickTable,
        boosts: &[Boost],
        k: usize,
        served: usize,
        left: (u64, Vec<u32>),
        state: (Vec<usize>, Vec<u64>, u64),
        prob: f64,
        out: &mut BTreeMap<Class, f64>,
    ) {
        let places = table.placements();
        if k == served {
            let class = (click_class(&state.0, places), state.1, state.2);
            *out.entry(class).or_insert(0.0) += prob;
            return;
        }
        let unserved = (left.0 + left.1.iter().map(|&b| u64::from(b)).sum::<u64>()) as f64;
        for clicked in [false, true] {
            let chance = |c: f64| if clicked { c } else { 1.0 - c };
            if left.0 > 0 {
                for p in 0..places {
                    let mut s = state.clone();
                    if clicked {
                        s.0.push(p);
                    }
                    s.2 += u64::from(p == 0);
                    let pr = left.0 as f64 / unserved * table.label[p] * chance(table.click(k)[p]);
                    let next = (left.0 - 1, left.1.clone());
                    enumerate(table, boosts, k + 1, served, next, s, prob * pr, out);
                }
            }
            for (i, b) in boosts.iter().enumerate().filter(|(i, _)| left.1[*i] > 0) {
                let mut s = state.clone();
                if clicked {
                    s.0.push(b.placement);
                }
                s.1[i] += 1;
                let pr = f64::from(left.1[i]) / unserved * chance(table.click(k)[b.placement]);
                let mut next = left.clone();
                next.1[i] -= 1;
                enumerate(table, boosts, k + 1, served, next, s, prob * pr, out);
            }
        }
    }

    #[test]
    fn a_table_s_rows_are_their_day_indices_however_it_grew() {
        // `expose_group` keeps one table a tick and segment, grown as its groups reach further:
        // row d must hold day index d's chances whatever the table first reached, and a walk
        // from row `from` must read row from + k at its position k.
        let scenario = crate::scenario::quick_fixture();
        let plan = Plan::new(&scenario);
        for t in [0, 30, 71] {
            let mut short = ClickTable::new(&plan, t, 0);
            short.reach(&plan, 3);
            let mut grown = ClickTable::new(&plan, t, 0);
            for rows in [5, 2, 9] {
                grown.reach(&plan, rows);
            }
            assert_eq!((short.click.len(), grown.click.len()), (3, 9));
            assert_eq!(short.click[..], grown.click[..3]);
            assert_eq!(short.organic[..], grown.organic[..3]);
            assert_eq!(short.label, grown.label);
            for (d, row) in grown.click.iter().enumerate() {
                for (p, &c) in row.iter().enumerate() {
                    assert_eq!(c, story::click_probability(&plan, t, 0, p, d as u32));
                }
            }
            grown.start_at(&plan, 5, 4);
            assert_eq!(grown.click(2), &grown.click[7][..]);
            assert_eq!(grown.organic(1), &grown.organic[6][..]);
            // Fatigue makes later positions differ: the rows are of their own positions.
            assert_ne!(grown.click[0], grown.click[8]);
        }
    }

    fn fixture() -> (ClickTable, Vec<Boost>) {
        // Click chances high enough that two clicks are common, different by position.
        let table = ClickTable::from_chances(
            (0, 0),
            vec![0.6, 0.4],
            vec![
                vec![0.3, 0.5],
                vec![0.4, 0.2],
                vec![0.25, 0.35],
                vec![0.5, 0.1],
            ],
        );
        let boosts = vec![
            Boost {
                program: 0,
                placement: 0,
                kept: 2,
            },
            Boost {
                program: 2,
                placement: 1,
                kept: 1,
            },
        ];
        (table, boosts)
    }

    fn exact_law(
        table: &ClickTable,
        boosts: &[Boost],
        organic: u64,
        served: usize,
    ) -> BTreeMap<Class, f64> {
        let mut law = BTreeMap::new();
        let start = (organic, boosts.iter().map(|b| b.kept).collect());
        let state = (Vec::new(), vec![0; boosts.len()], 0);
        enumerate(table, boosts, 0, served, start, state, 1.0, &mut law);
        law
    }

    #[test]
    fn one_user_walk_has_the_exact_law_of_the_literal_story() {
        // 3 organic and 3 boosted impressions offered, 4 served: the cap cuts into both kinds.
        let (table, boosts) = fixture();
        let (organic, served, reps) = (3, 4, 100_000u64);
        let law = exact_law(&table, &boosts, organic, served);
        assert!((law.values().sum::<f64>() - 1.0).abs() < 1e-12);
        let mut seen: BTreeMap<Class, f64> = BTreeMap::new();
        let mut r = stream(5, 0, 0, 0, Stage::Exposure, 0);
        let mut scratch = WalkScratch::default();
        for _ in 0..reps {
            let w = walk(&table, organic, &boosts, served, 1, 3, &mut r, &mut scratch);
            let sessions = match (w.quiet, w.single.iter().position(|&c| c == 1)) {
                (1, _) => Vec::new(),
                (_, Some(p)) => vec![p],
                _ => w.multi[0].to_vec(),
            };
            let served_boosted: u64 = w.boosted.iter().sum();
            let served_organic: u64 = w.organic.iter().sum();
            assert_eq!(served_boosted + served_organic, served as u64);
            assert_eq!(served_organic + w.organic_unserved, organic);
            assert_eq!(w.clicks.iter().sum::<u64>(), sessions.len() as u64);
            let class = (
                click_class(&sessions, 2),
                vec![w.boosted[0], w.boosted[2]],
                w.organic[0],
            );
            assert!(law.contains_key(&class), "impossible outcome {class:?}");
            *seen.entry(class).or_insert(0.0) += 1.0;
        }
        // Chi-square over the cells expected at least 5 times, the others lumped into one.
        let (mut chi, mut cells, mut small_seen, mut small_expected) = (0.0, 0, 0.0, 0.0);
        for (class, p) in &law {
            let (o, e) = (seen.get(class).copied().unwrap_or(0.0), p * reps as f64);
            if e >= 5.0 {
                chi += (o - e) * (o - e) / e;
                cells += 1;
            } else {
                small_seen += o;
                small_expected += e;
            }
        }
        if small_expected > 0.0 {
            chi += (small_seen - small_expected).powi(2) / small_expected;
            cells += 1;
        }
        assert!(cells > 30, "{cells} cells");
        let critical = ChiSquared::new((cells - 1) as f64)
            .unwrap()
            .inverse_cdf(1.0 - 1e-4);
        assert!(
            chi < critical,
            "chi-square {chi} over {cells} cells (critical {critical})"
        );
    }

    #[test]
    fn two_programs_spread_like_literal_throws() {
        // 3 users, program 0 keeps 2 impressions and program 1 keeps 2, each thrown uniformly
        // over the users: the 3^4 = 81 equally likely throws give the exact law of the users'
        // counts by boosted vector.
        let (users, reps) = (3usize, 40_000u64);
        let histogram_of = |b: &[Vec<u32>]| -> Vec<(Vec<u32>, u64)> {
            let mut h: BTreeMap<Vec<u32>, u64> = BTreeMap::new();
            for v in b.iter().filter(|v| v.iter().any(|&x| x > 0)) {
                *h.entry(v.clone()).or_insert(0) += 1;
            }
            h.into_iter().collect()
        };
        let mut law: BTreeMap<Vec<(Vec<u32>, u64)>, f64> = BTreeMap::new();
        for throw in 0..81 {
            let mut b = vec![vec![0u32; 2]; users];
            for ball in 0..4 {
                let user = throw / 3usize.pow(ball) % 3;
                b[user][ball as usize / 2] += 1;
            }
            *law.entry(histogram_of(&b)).or_insert(0.0) += 1.0 / 81.0;
        }
        let mut seen: BTreeMap<Vec<(Vec<u32>, u64)>, f64> = BTreeMap::new();
        let mut r = stream(7, 0, 0, 0, Stage::Exposure, 0);
        for _ in 0..reps {
            let mut groups = BTreeMap::new();
            for j in 0..2 {
                let histogram = occupancy(users as u64, 2, &mut r);
                assign_levels(&histogram, j, 2, &mut groups, &mut r);
            }
            let by_vector = groups.into_iter().map(|(b, c)| (b.to_vec(), c)).collect();
            *seen.entry(by_vector).or_insert(0.0) += 1.0;
        }
        assert!(seen.keys().all(|k| law.contains_key(k)));
        let chi: f64 = law
            .iter()
            .map(|(k, p)| {
                let (o, e) = (seen.get(k).copied().unwrap_or(0.0), p * reps as f64);
                (o - e) * (o - e) / e
            })
            .sum();
        assert!(law.values().all(|p| p * reps as f64 >= 5.0));
        let critical = ChiSquared::new((law.len() - 1) as f64)
            .unwrap()
            .inverse_cdf(1.0 - 1e-4);
        assert!(chi < critical, "chi-square {chi} over {} cells", law.len());
    }

    #[test]
    fn many_users_walk_together_with_the_one_user_means() {
        // n users at once: each class count, and each served count, has mean n × the one-user
        // mean (exact law above); 5 standard errors from the exact variance of a sum of n
        // independent users over `reps` replications.
        let (table, boosts) = fixture();
        let (organic, served, n, reps) = (3, 4, 7u64, 20_000u64);
        let law = exact_law(&table, &boosts, organic, served);
        let mut r = stream(6, 0, 0, 0, Stage::Exposure, 0);
        let mut scratch = WalkScratch::default();
        let mut sums = [0.0; 6];
        for _ in 0..reps {
            let w = walk(&table, organic, &boosts, served, n, 3, &mut r, &mut scratch);
            assert_eq!(
                w.quiet + w.single.iter().sum::<u64>() + w.multi.len() as u64,
                n
            );
            let x = [
                w.quiet as f64,
                w.single[0] as f64,
                w.single[1] as f64,
                w.multi.len() as f64,
                w.boosted[0] as f64,
                w.organic[0] as f64,
            ];
            for (s, v) in sums.iter_mut().zip(x) {
                *s += v;
            }
        }
        let per_user: [fn(&Class) -> f64; 6] = [
            |c| f64::from(c.0 == 0),
            |c| f64::from(c.0 == 1),
            |c| f64::from(c.0 == 2),
            |c| f64::from(c.0 == 3),
            |c| c.1[0] as f64,
            |c| c.2 as f64,
        ];
        for (i, f) in per_user.iter().enumerate() {
            let mean: f64 = law.iter().map(|(c, p)| p * f(c)).sum();
            let var: f64 = law.iter().map(|(c, p)| p * (f(c) - mean).powi(2)).sum();
            let se = (n as f64 * var / reps as f64).sqrt();
            let observed = sums[i] / reps as f64;
            assert!(
                (observed - n as f64 * mean).abs() < 5.0 * se,
                "statistic {i}: {observed} against {}",
                n as f64 * mean
            );
        }
    }
}
