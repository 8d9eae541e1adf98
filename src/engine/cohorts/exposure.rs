//! Phases 1–2 of a tick on counts: traffic programs' kept boosted impressions, then every user's
//! impressions and clicks. Work grows with the number of user types (cohort × boosted vector ×
//! organic level), not with users; only users with two or more clicks are drawn one by one.

use std::collections::BTreeMap;

use rand::RngExt;

use super::samplers::{binomial, hypergeometric, multinomial, occupancy, poisson, poisson_above};
use super::{Clicked, Individual, Sim, State, Step, keyed};
use crate::engine::rng::{Stream, mix64};
use crate::engine::story::{self, Tally};
use crate::engine::{Count, Plan};

/// Organic impression levels are enumerated until the chance of more is below this; users beyond
/// (almost never any) are drawn one by one from the exact conditional law, so nothing is cut off.
const LEVEL_TAIL: f64 = 1e-12;

/// Kept boosted impressions of one user per program (indexed by program; 0 for coupon programs).
type Boosts = Vec<u32>;

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

/// Step 2's chances for the positions of one tick, segment and day index onwards.
struct ClickTable {
    /// `click[k][p]`: the click chance of position k (day index served today + k) on placement p.
    click: Vec<Vec<f64>>,
    /// `organic[k]`: the joint law of an organic impression's placement and click at position k:
    /// π_p (1 − c_kp) for p in 0..P, then π_p c_kp; π_p = λ_p / Λ is the organic label law.
    organic: Vec<Vec<f64>>,
    /// π, the law of an organic impression's placement.
    label: Vec<f64>,
}

impl ClickTable {
    fn new(plan: &Plan, t: usize, g: usize, served: u32, room: usize) -> Self {
        let lambda = &plan.lambda[t][g];
        let total: f64 = lambda.iter().sum();
        let label = lambda
            .iter()
            .map(|&l| if total > 0.0 { l / total } else { 0.0 })
            .collect();
        let click = (0..room as u32)
            .map(|k| {
                (0..lambda.len())
                    .map(|p| story::click_probability(plan, t, g, p, served + k))
                    .collect()
            })
            .collect();
        ClickTable::from_chances(label, click)
    }

    fn from_chances(label: Vec<f64>, click: Vec<Vec<f64>>) -> Self {
        let organic = click
            .iter()
            .map(|ck: &Vec<f64>| {
                let quiet = label.iter().zip(ck).map(|(pi, c)| pi * (1.0 - c));
                let clicked = label.iter().zip(ck).map(|(pi, c)| pi * c);
                quiet.chain(clicked).collect()
            })
            .collect();
        ClickTable {
            click,
            organic,
            label,
        }
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
struct Walk {
    /// Users with no click.
    quiet: u64,
    /// Users with exactly one click, by its placement.
    single: Vec<u64>,
    /// The click placements (in served order) of each user with two clicks or more.
    multi: Vec<Vec<usize>>,
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
type Standing = (u64, Vec<u32>, Option<usize>);

/// A user with two clicks, walked alone: the position it stands before, its unserved organic and
/// boosted impressions, and its clicks' placements so far.
type Alone = (usize, u64, Vec<u32>, Vec<usize>);

/// Where the users walked through one position go.
struct Moves<'a> {
    to: BTreeMap<Standing, u64>,
    alone: &'a mut Vec<Alone>,
    next_position: usize,
}

impl Moves<'_> {
    /// `users` with unserved counts `left` and click so far `first` who did not click here.
    fn quiet(&mut self, left: &(u64, Vec<u32>), first: Option<usize>, users: u64) {
        if users > 0 {
            *self.to.entry((left.0, left.1.clone(), first)).or_insert(0) += users;
        }
    }

    /// `users` who clicked here on `placement`: a first click moves them on together; a second
    /// takes each one out to be walked alone.
    fn clicked(
        &mut self,
        left: &(u64, Vec<u32>),
        first: Option<usize>,
        placement: usize,
        users: u64,
    ) {
        if users == 0 {
            return;
        }
        match first {
            None => {
                *self
                    .to
                    .entry((left.0, left.1.clone(), Some(placement)))
                    .or_insert(0) += users
            }
            Some(f) => self.alone.extend((0..users).map(|_| {
                (
                    self.next_position,
                    left.0,
                    left.1.clone(),
                    vec![f, placement],
                )
            })),
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
fn walk(
    table: &ClickTable,
    organic: u64,
    boosts: &[Boost],
    served: usize,
    n: u64,
    programs: usize,
    r: &mut Stream,
) -> Walk {
    let places = table.placements();
    let mut w = Walk {
        quiet: 0,
        single: vec![0; places],
        multi: Vec::new(),
        organic: vec![0; places],
        boosted: vec![0; programs],
        clicks: vec![0; places],
        organic_unserved: 0,
    };
    let start: Standing = (organic, boosts.iter().map(|b| b.kept).collect(), None);
    let mut standings: BTreeMap<Standing, u64> = BTreeMap::from([(start, n)]);
    let mut alone: Vec<Alone> = Vec::new();
    let (mut kinds, mut split, mut outcome) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..served {
        let mut moves = Moves {
            to: BTreeMap::new(),
            alone: &mut alone,
            next_position: k + 1,
        };
        for ((organic_left, boosted_left, first), users) in standings {
            kinds.clear();
            kinds.push(organic_left as f64);
            kinds.extend(boosted_left.iter().map(|&b| f64::from(b)));
            multinomial(users, &kinds, r, &mut split);
            if split[0] > 0 {
                multinomial(split[0], &table.organic[k], r, &mut outcome);
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
                let c = binomial(m, table.click[k][b.placement], r);
                w.boosted[b.program] += m;
                w.clicks[b.placement] += c;
                let mut left = (organic_left, boosted_left.clone());
                left.1[i] -= 1;
                moves.quiet(&left, first, m - c);
                moves.clicked(&left, first, b.placement, c);
            }
        }
        standings = moves.to;
    }
    for ((organic_left, _, first), users) in standings {
        w.organic_unserved += organic_left * users;
        match first {
            None => w.quiet += users,
            Some(p) => w.single[p] += users,
        }
    }
    for (from, mut organic_left, mut boosted_left, mut sessions) in alone {
        for k in from..served {
            let unserved = organic_left + boosted_left.iter().map(|&b| u64::from(b)).sum::<u64>();
            let mut x = r.random_range(0..unserved);
            if x < organic_left {
                organic_left -= 1;
                let o = pick(&table.organic[k], r);
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
            if r.random::<f64>() < table.click[k][b.placement] {
                w.clicks[b.placement] += 1;
                sessions.push(b.placement);
            }
        }
        w.organic_unserved += organic_left;
        w.multi.push(sessions);
    }
    w
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

/// Weights of organic impression counts 0, 1, …, L for Poisson(mean), then one last weight for
/// "more than L"; L is at least `room` and large enough that "more" has chance below LEVEL_TAIL.
fn poisson_levels(mean: f64, room: u64) -> Vec<f64> {
    let mut p = (-mean).exp();
    let mut levels = vec![p];
    let mut cumulative = p;
    let mut o = 0u64;
    while o < room || 1.0 - cumulative > LEVEL_TAIL {
        o += 1;
        p *= mean / o as f64;
        levels.push(p);
        cumulative += p;
        if p == 0.0 && o > room && o as f64 > mean {
            break;
        }
    }
    levels.push((1.0 - cumulative).max(0.0));
    levels
}

/// Organic levels of `n` users: (level, users, tail index). Users above the enumerated levels
/// come one by one (tail index 1, 2, …) with their level drawn from the conditional tail.
fn split_levels(mean: f64, room: u64, n: u64, r: &mut Stream) -> Vec<(u64, u64, u64)> {
    let mut counts = Vec::new();
    multinomial(n, &poisson_levels(mean, room), r, &mut counts);
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

/// The users of one level, by outcome: the quiet, the single-session ones by placement, and
/// the multi-session ones with their sessions and stream keys.
struct Outcomes {
    quiet: u64,
    single: Vec<u64>,
    multi: Vec<(Vec<usize>, u64)>,
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
            multinomial(kept, &weights, &mut r, &mut per_cohort);
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
    /// cohort whose users are grouped by their boosted vectors so far (`groups`; the rest have
    /// none). The occupancy histogram gives how many users get each level; which users they are is
    /// a uniform draw without replacement, so each level's users fall over the groups by a
    /// multivariate hypergeometric of the group sizes (program j thins independently of the
    /// programs before it).
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
        let none = n - groups.values().sum::<u64>();
        // Users not yet given a level of program j, by group: the zero vector (sorted first) and
        // the earlier programs' groups in order.
        let mut unassigned: Vec<(Boosts, u64)> = std::iter::once((vec![0; self.paid.len()], none))
            .chain(groups.iter().map(|(b, &c)| (b.clone(), c)))
            .collect();
        let mut left = n;
        for (level, &count) in histogram.iter().enumerate().skip(1) {
            let (mut pool, mut wanted) = (left, count);
            for (b, size) in unassigned.iter_mut() {
                if wanted == 0 {
                    break;
                }
                let x = hypergeometric(pool, *size, wanted, &mut r);
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
        let w = walk(table, organic, boosts, served, n, programs, &mut r);
        for p in 0..table.placements() {
            self.add(t, Count::ImpressionsOffered, p, g, w.organic[p]);
            self.add(t, Count::Impressions, p, g, w.organic[p]);
            self.add(t, Count::Clicks, p, g, w.clicks[p]);
            self.add(t, Count::Sessions, p, g, w.clicks[p]);
        }
        let mut counts = Vec::new();
        multinomial(w.organic_unserved, &table.label, &mut r, &mut counts);
        for (p, &c) in counts.iter().enumerate() {
            self.add(t, Count::ImpressionsOffered, p, g, c);
        }
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
        Outcomes {
            quiet: w.quiet,
            single: w.single,
            multi: w
                .multi
                .into_iter()
                .enumerate()
                .map(|(i, sessions)| (sessions, mix64(unit ^ mix64(i as u64 + 1))))
                .collect(),
        }
    }

    /// Phase 2 for the boosted users, type by type (cohort and boosted vector): their organic
    /// levels by a multinomial, then each level walked on counts.
    pub(super) fn expose_boosted(
        &mut self,
        t: usize,
        boosted: Boosted,
        next: &mut BTreeMap<State, u64>,
        clicked: &mut Clicked,
    ) {
        let s = self.scenario();
        for (state, groups) in boosted {
            let g = state.segment as usize;
            let room = s.frequency.cap.saturating_sub(state.served);
            let table = ClickTable::new(self.plan, t, g, state.served, room as usize);
            let mean: f64 = self.plan.lambda[t][g].iter().sum();
            for (b, n) in groups {
                *self.cohorts.get_mut(&state).expect("boosted cohorts exist") -= n;
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
                for x in &boosts {
                    self.add(
                        t,
                        Count::ImpressionsOffered,
                        x.placement,
                        g,
                        n * u64::from(x.kept),
                    );
                }
                let key = mix64(state.key() ^ boosts_key(&b));
                let mut r = keyed(self.seed, self.rep, t, key, Step::BoostedLevels, 0);
                if room == 0 {
                    self.offer_unserved(t, g, n, &mut r);
                    *next.entry(state.clone()).or_insert(0) += n;
                    continue;
                }
                for (o, users, tail) in split_levels(mean, u64::from(room), n, &mut r) {
                    let served = (o + offered).min(u64::from(room)) as usize;
                    let unit = mix64(mix64(key ^ mix64(o)) ^ tail);
                    let out = self.expose_users(t, &table, g, served, &boosts, o, users, unit);
                    let after = State {
                        served: state.served + served as u32,
                        ..state.clone()
                    };
                    if out.quiet > 0 {
                        *next.entry(after.clone()).or_insert(0) += out.quiet;
                    }
                    for (p, &c) in out.single.iter().enumerate().filter(|x| *x.1 > 0) {
                        *clicked.single.entry((after.clone(), p)).or_insert(0) += c;
                    }
                    for (sessions, unit) in out.multi {
                        clicked.multi.push(Individual {
                            state: after.clone(),
                            sessions,
                            unit,
                        });
                    }
                }
            }
        }
    }

    /// Organic impressions offered to `n` users who are served none: Poisson(n λ_p) per placement.
    fn offer_unserved(&mut self, t: usize, g: usize, n: u64, r: &mut Stream) {
        for (p, &l) in self.plan.lambda[t][g].iter().enumerate() {
            let offered = poisson(n as f64 * l, r);
            self.add(t, Count::ImpressionsOffered, p, g, offered);
        }
    }

    /// Phase 2 for the users without boosted impressions. Exposure depends only on segment and
    /// impressions served today, so the cohorts sharing those form one group: its users are split
    /// by organic impression count, each level walked on counts, and each outcome is then dealt to
    /// the group's cohorts uniformly without replacement. Keying the group's streams by (segment,
    /// served) alone keeps the scenario and its baseline on the same draws even after redemptions
    /// have split the scenario's cohorts.
    pub(super) fn expose_cohorts(
        &mut self,
        t: usize,
        next: &mut BTreeMap<State, u64>,
        clicked: &mut Clicked,
    ) {
        let s = self.scenario();
        let mut groups: BTreeMap<(u32, u32), Vec<(State, u64)>> = BTreeMap::new();
        for (state, &n) in self.cohorts.iter().filter(|x| *x.1 > 0) {
            groups
                .entry((state.segment, state.served))
                .or_default()
                .push((state.clone(), n));
        }
        for ((segment, served_before), members) in groups {
            let g = segment as usize;
            let key = mix64(u64::from(segment) << 32 | u64::from(served_before));
            let mean: f64 = self.plan.lambda[t][g].iter().sum();
            let room = s.frequency.cap.saturating_sub(served_before);
            let n: u64 = members.iter().map(|m| m.1).sum();
            let mut r = keyed(self.seed, self.rep, t, key, Step::Exposure, 0);
            let mut group = Group::new(
                members,
                keyed(self.seed, self.rep, t, key, Step::AssignBlock, 0),
                keyed(self.seed, self.rep, t, key, Step::AssignMember, 0),
            );
            if mean > 0.0 && room > 0 {
                let table = ClickTable::new(self.plan, t, g, served_before, room as usize);
                for (o, users, tail) in split_levels(mean, u64::from(room), n, &mut r) {
                    if o == 0 {
                        continue;
                    }
                    let served = o.min(u64::from(room)) as usize;
                    let unit = mix64(mix64(key ^ mix64(o)) ^ tail);
                    let out = self.expose_users(t, &table, g, served, &[], o, users, unit);
                    let after = |state: &State| State {
                        served: state.served + served as u32,
                        ..state.clone()
                    };
                    for (m, c) in group.take_many(out.quiet) {
                        *next.entry(after(&group.members[m].0)).or_insert(0) += c;
                    }
                    for (p, &n_p) in out.single.iter().enumerate() {
                        for (m, c) in group.take_many(n_p) {
                            let state = after(&group.members[m].0);
                            *clicked.single.entry((state, p)).or_insert(0) += c;
                        }
                    }
                    for (sessions, unit) in out.multi {
                        let m = group.take_one();
                        clicked.multi.push(Individual {
                            state: after(&group.members[m].0),
                            sessions,
                            unit,
                        });
                    }
                }
            } else {
                self.offer_unserved(t, g, n, &mut r);
            }
            for (state, left) in group.members {
                *next.entry(state).or_insert(0) += left;
            }
        }
    }
}

/// The cohorts of one (segment, served today), with the users not yet dealt an outcome. Users are
/// dealt uniformly without replacement, first to an (app, Alipay) block, then to a cohort within it,
/// each level with its own stream: the baseline's blocks are the scenario's, so they stay coupled.
struct Group {
    /// Cohorts in state order (blocks of equal app and Alipay are contiguous), with users left.
    members: Vec<(State, u64)>,
    /// `[first, end)` member ranges of the (app, Alipay) blocks.
    blocks: Vec<(usize, usize)>,
    block_rng: Stream,
    member_rng: Stream,
}

impl Group {
    fn new(members: Vec<(State, u64)>, block_rng: Stream, member_rng: Stream) -> Self {
        let mut blocks: Vec<(usize, usize)> = Vec::new();
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
            members,
            blocks,
            block_rng,
            member_rng,
        }
    }

    fn left(&self, range: (usize, usize)) -> u64 {
        self.members[range.0..range.1].iter().map(|m| m.1).sum()
    }

    /// Deals `n` users: a multivariate hypergeometric draw, block by block then member by member.
    fn take_many(&mut self, n: u64) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        if n == 0 {
            return out;
        }
        let mut total = self.left((0, self.members.len()));
        let mut wanted = n;
        for b in 0..self.blocks.len() {
            let range = self.blocks[b];
            let in_block = self.left(range);
            let x = hypergeometric(total, in_block, wanted, &mut self.block_rng);
            total -= in_block;
            wanted -= x;
            let (mut block_left, mut block_wanted) = (in_block, x);
            for m in range.0..range.1 {
                let size = self.members[m].1;
                let y = hypergeometric(block_left, size, block_wanted, &mut self.member_rng);
                block_left -= size;
                block_wanted -= y;
                if y > 0 {
                    self.members[m].1 -= y;
                    out.push((m, y));
                }
            }
        }
        out
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
