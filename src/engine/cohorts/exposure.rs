//! Phases 1–2 of a tick on counts: traffic programs' kept boosted impressions, then every user's
//! impressions and clicks.

use std::collections::BTreeMap;

use rand::RngExt;

use super::samplers::{
    binomial, choose_distinct, hypergeometric, multinomial, occupancy, poisson, poisson_above,
};
use super::{Individual, Origin, Sim, State, Step, keyed, unit_of};
use crate::engine::Count;
use crate::engine::rng::{Stream, mix64};
use crate::engine::story::{self, Label, Tally};

/// Organic impression levels are enumerated until the chance of more is below this; users beyond
/// (almost never any) are drawn one by one from the exact conditional law, so nothing is cut off.
const LEVEL_TAIL: f64 = 1e-12;

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

/// Per-position click chances of a user with `served` impressions already today.
struct Positions {
    /// `label[k][p]`: P(label p, no click) at position k, unnormalised (π_p (1 − c_kp)).
    quiet: Vec<Vec<f64>>,
    /// `click[k][p]`: P(label p, click) at position k (π_p c_kp).
    click: Vec<Vec<f64>>,
    /// `log_quiet_from[k]`: ln P(no click at positions k..S), with one extra 0 at S.
    log_quiet_from: Vec<f64>,
}

impl<'p, 's> Sim<'p, 's> {
    fn positions(&self, t: usize, g: usize, served_before: u32, served_now: usize) -> Positions {
        let lambda = &self.plan.lambda[t][g];
        let total: f64 = lambda.iter().sum();
        let mut quiet = Vec::with_capacity(served_now);
        let mut click = Vec::with_capacity(served_now);
        for k in 0..served_now {
            let day_index = served_before + k as u32;
            let (mut qk, mut ck) = (Vec::new(), Vec::new());
            for (p, &l) in lambda.iter().enumerate() {
                let c = story::click_probability(self.plan, t, g, p, day_index);
                let pi = l / total;
                qk.push(pi * (1.0 - c));
                ck.push(pi * c);
            }
            quiet.push(qk);
            click.push(ck);
        }
        let mut log_quiet_from = vec![0.0; served_now + 1];
        for k in (0..served_now).rev() {
            let x: f64 = click[k].iter().sum();
            log_quiet_from[k] = log_quiet_from[k + 1] + (-x.min(1.0)).ln_1p();
        }
        Positions {
            quiet,
            click,
            log_quiet_from,
        }
    }

    /// Phase 1 (MODEL.md, *Budgets*): each traffic program in listed order reserves what it can
    /// pay (A); the M ~ Poisson(Σ size × β) offered boosted impressions keep min(M, A), spread over
    /// cohorts by a multinomial and over users by an occupancy histogram.
    pub(super) fn reserve_boosts(
        &mut self,
        t: usize,
        extracted: &mut BTreeMap<State, Vec<Individual>>,
    ) {
        let s = self.scenario();
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
            let targets: Vec<(State, u64, f64)> = self
                .cohorts
                .iter()
                .map(|(state, &pool)| {
                    let g = state.segment as usize;
                    let n = pool + extracted.get(state).map_or(0, |v| v.len() as u64);
                    let beta = if s.programs[j].segments[g] {
                        buy.max_boost * self.plan.lambda[t][g][buy.placement]
                    } else {
                        0.0
                    };
                    (state.clone(), n, n as f64 * beta)
                })
                .filter(|x| x.2 > 0.0)
                .collect();
            let weights: Vec<f64> = targets.iter().map(|x| x.2).collect();
            let mut r = keyed(self.seed, self.rep, t, j as u64, Step::BoostTotal, 0);
            let kept = poisson(weights.iter().sum(), &mut r).min(a);
            let mut per_cohort = Vec::new();
            multinomial(kept, &weights, &mut r, &mut per_cohort);
            for ((state, n, _), &k) in targets.iter().zip(&per_cohort) {
                if k > 0 {
                    self.spread_boosts(t, j, state, *n, k, extracted);
                }
            }
            self.reserved[j] = kept;
            self.ledger.reserve(self.plan, j, kept, true);
        }
    }

    /// Spreads `balls` kept boosted impressions of program `j` uniformly over the `n` users of a
    /// cohort; users already drawn out (by an earlier program) are a uniform subset of them.
    fn spread_boosts(
        &mut self,
        t: usize,
        j: usize,
        state: &State,
        n: u64,
        balls: u64,
        extracted: &mut BTreeMap<State, Vec<Individual>>,
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
        let drawn = extracted.entry(state.clone()).or_default();
        let mut unchosen: Vec<usize> = (0..drawn.len()).collect();
        let mut users_left = n;
        for (level, &count) in histogram.iter().enumerate().skip(1) {
            if count == 0 {
                continue;
            }
            let among_drawn = hypergeometric(users_left, unchosen.len() as u64, count, &mut r);
            let picks = choose_distinct(unchosen.len(), among_drawn as usize, &mut r);
            for &i in picks.iter().rev() {
                drawn[unchosen.remove(i)].boosted.push((j, level as u32));
            }
            let fresh = count - among_drawn;
            *self.cohorts.get_mut(state).expect("cohort exists") -= fresh;
            for _ in 0..fresh {
                let unit = unit_of(state, Origin::Boosted, drawn.len() as u64);
                drawn.push(Individual {
                    state: state.clone(),
                    boosted: vec![(j, level as u32)],
                    sessions: Vec::new(),
                    unit,
                });
            }
            users_left -= count;
        }
    }

    /// Phase 2 for a drawn-out user with boosted impressions: literally, as in `agents`.
    pub(super) fn expose_individual(&mut self, t: usize, ind: &mut Individual) {
        let s = self.scenario();
        let g = ind.state.segment as usize;
        let mut r = keyed(self.seed, self.rep, t, ind.unit, Step::Individual, 0);
        let mut labels: Vec<Label> = Vec::new();
        for (p, &l) in self.plan.lambda[t][g].iter().enumerate() {
            labels.extend((0..poisson(l, &mut r)).map(|_| Label {
                placement: p,
                program: None,
            }));
        }
        for &(j, k) in &ind.boosted {
            let placement = s.programs[j].traffic().expect("traffic program").placement;
            labels.extend((0..k).map(|_| Label {
                placement,
                program: Some(j),
            }));
        }
        let mut tally = Tally {
            out: &mut self.out,
            funnel: self.funnel,
            t,
            placement: 0,
            segment: g,
        };
        ind.sessions = story::serve_and_click(
            self.plan,
            &mut self.ledger,
            &mut tally,
            &mut ind.state.served,
            &mut labels,
            &mut self.paid,
            &mut r,
        );
    }

    /// Phase 2 for the users left in the cohorts. Exposure depends only on segment and impressions
    /// served today, so the cohorts sharing those form one group: its users are split by organic
    /// impression count, quiet users counted in aggregate and clicking users drawn out, and each
    /// outcome is then dealt to the group's cohorts uniformly without replacement. Keying the group's
    /// streams by (segment, served) alone keeps the scenario and its baseline on the same draws even
    /// after redemptions have split the scenario's cohorts.
    pub(super) fn expose_cohorts(
        &mut self,
        t: usize,
        next: &mut BTreeMap<State, u64>,
        individuals: &mut Vec<Individual>,
    ) {
        let s = self.scenario();
        let mut groups: BTreeMap<(u32, u32), Vec<(State, u64)>> = BTreeMap::new();
        for (state, &n) in self.cohorts.iter().filter(|x| *x.1 > 0) {
            groups
                .entry((state.segment, state.served))
                .or_default()
                .push((state.clone(), n));
        }
        for ((segment, served), members) in groups {
            let g = segment as usize;
            let key = mix64(u64::from(segment) << 32 | u64::from(served));
            let lambda = &self.plan.lambda[t][g];
            let total: f64 = lambda.iter().sum();
            let room = s.frequency.cap.saturating_sub(served) as u64;
            let n: u64 = members.iter().map(|m| m.1).sum();
            let mut r = keyed(self.seed, self.rep, t, key, Step::Exposure, 0);
            let mut group = Group::new(
                members,
                keyed(self.seed, self.rep, t, key, Step::AssignBlock, 0),
                keyed(self.seed, self.rep, t, key, Step::AssignMember, 0),
            );
            self.clicked_rank = 0;
            if total > 0.0 && room > 0 {
                let levels = poisson_levels(total, room);
                let mut counts = Vec::new();
                multinomial(n, &levels, &mut r, &mut counts);
                let beyond = counts.pop().unwrap_or(0);
                for (o, &n_o) in counts.iter().enumerate().skip(1) {
                    if n_o > 0 {
                        self.expose_level(
                            t,
                            key,
                            o as u64,
                            n_o,
                            &mut r,
                            &mut group,
                            next,
                            individuals,
                        );
                    }
                }
                for _ in 0..beyond {
                    let o = poisson_above(total, counts.len() as u64 - 1, &mut r);
                    self.expose_level(t, key, o, 1, &mut r, &mut group, next, individuals);
                }
            } else {
                for (p, &l) in lambda.iter().enumerate() {
                    let offered = poisson(n as f64 * l, &mut r);
                    self.add(t, Count::ImpressionsOffered, p, g, offered);
                }
            }
            for (state, left) in group.members {
                *next.entry(state).or_insert(0) += left;
            }
        }
    }

    /// `n` users of a group with exactly `o` organic impressions offered this tick.
    #[allow(clippy::too_many_arguments)]
    fn expose_level(
        &mut self,
        t: usize,
        key: u64,
        o: u64,
        n: u64,
        r: &mut Stream,
        group: &mut Group,
        next: &mut BTreeMap<State, u64>,
        individuals: &mut Vec<Individual>,
    ) {
        let s = self.scenario();
        let (g, served_before) = (
            group.members[0].0.segment as usize,
            group.members[0].0.served,
        );
        let room = u64::from(s.frequency.cap.saturating_sub(served_before));
        let served = o.min(room) as usize;
        let pos = self.positions(t, g, served_before, served);
        let clickers = binomial(n, -pos.log_quiet_from[0].exp_m1(), r);
        let quiet = n - clickers;
        let mut counts = Vec::new();
        for k in 0..served {
            multinomial(quiet, &pos.quiet[k], r, &mut counts);
            for (p, &c) in counts.iter().enumerate() {
                self.add(t, Count::Impressions, p, g, c);
                self.add(t, Count::ImpressionsOffered, p, g, c);
            }
        }
        let unserved = n * (o - served as u64);
        multinomial(unserved, &self.plan.lambda[t][g], r, &mut counts);
        for (p, &c) in counts.iter().enumerate() {
            self.add(t, Count::ImpressionsOffered, p, g, c);
        }
        let after = |state: &State| State {
            served: state.served + served as u32,
            ..state.clone()
        };
        for (m, c) in group.take_many(quiet) {
            *next.entry(after(&group.members[m].0)).or_insert(0) += c;
        }
        for _ in 0..clickers {
            let sessions = self.draw_clicker(t, g, &pos, r);
            let m = group.take_one();
            let unit = mix64(mix64(key ^ Origin::Clicked as u64) ^ self.clicked_rank);
            individuals.push(Individual {
                state: after(&group.members[m].0),
                boosted: Vec::new(),
                sessions,
                unit,
            });
            self.clicked_rank += 1;
        }
    }

    /// One user's served impressions, conditioned on at least one click: position by position,
    /// P(no click here | a click from here on) = q_k (1 − Q_{k+1}) / (1 − Q_k) until the first click.
    fn draw_clicker(&mut self, t: usize, g: usize, pos: &Positions, r: &mut Stream) -> Vec<usize> {
        let mut sessions = Vec::new();
        let mut need = true;
        for k in 0..pos.quiet.len() {
            let q: f64 = pos.quiet[k].iter().sum();
            let p_quiet = if need {
                q * -pos.log_quiet_from[k + 1].exp_m1() / -pos.log_quiet_from[k].exp_m1()
            } else {
                q
            };
            let (weights, clicked) = if r.random::<f64>() < p_quiet {
                (&pos.quiet[k], false)
            } else {
                (&pos.click[k], true)
            };
            let p = pick(weights, r);
            self.add(t, Count::Impressions, p, g, 1);
            self.add(t, Count::ImpressionsOffered, p, g, 1);
            if clicked {
                need = false;
                self.add(t, Count::Clicks, p, g, 1);
                self.add(t, Count::Sessions, p, g, 1);
                sessions.push(p);
            }
        }
        sessions
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
