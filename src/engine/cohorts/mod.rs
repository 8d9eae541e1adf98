//! The `cohorts` engine: MODEL.md's per-user story, exact in distribution, on counts of
//! exchangeable users instead of users.
//!
//! Users who share segment, Taobao app, Alipay, impressions served today and redemptions so far
//! are interchangeable, so the population is a sorted map from that state to a count. Per tick:
//! - phase 1: a traffic program's kept boosted impressions are spread over cohorts by a multinomial
//!   weighted by size × boosted mean, then over a cohort's users by an exact occupancy histogram;
//!   each cohort keeps a histogram of its users by boosted vector (kept impressions per program);
//! - phase 2: the users of each exposure group (segment, served today, boosted vector) are split
//!   by their organic impression count (a multinomial over Poisson levels); a level's served
//!   positions are walked on counts, and its users come out as counts of quiet users and of
//!   single-session users by placement; only users with two sessions or more are individuals;
//! - phase 3: the sessions go through steps 3–10 in one uniformly random arrival order: single
//!   sessions by class (user state but for impressions served today and for redemption counts
//!   below their limits, and placement), their fates drawn as counts and the order followed
//!   only as far as outcomes depend on it; the several-session users' sessions one by one with
//!   the `agents` engine's code. The users then return to the cohorts with their new state
//!   (which of a class's users had each outcome is a uniformly random partition of them, since
//!   no step of phase 3 reads impressions served today, nor a redemption count but to compare
//!   it with its limit). The orders' baskets decide nothing but their values, which are found
//!   apart once the tick is over (`money`), by the other run of a pair where it has time;
//! - a coupon program that can never pay again stops telling cohorts apart by its redemption
//!   counts, which are set to zero.
//!
//! The cost grows with cohorts × ticks plus one basket draw per order (the scenario's latent
//! draws made again from their places where they are wanted, and nothing kept per draw: see
//! `bookings`); beyond those, it and the memory grow with the population only through the
//! several-session users whose sessions can interact, followed one by one (the others are
//! counted by group: ENGINE.md, step 3).

mod bookings;
mod exposure;
mod fates;
mod money;
mod order;
pub(crate) mod samplers;
mod sessions;

pub use fates::{seconds_per_basket, seconds_per_latent};

use std::collections::BTreeMap;

use super::ledger::Ledger;
use super::rng::{Stage, Stream, mix64, stream};
use super::{Count, Funnel, Outcome, Plan};
use crate::scenario::Scenario;
use money::Share;
use samplers::multinomial;
use smallvec::{SmallVec, smallvec};

/// What makes users interchangeable (MODEL.md, *Two engines*).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct State {
    segment: u32,
    app: bool,
    alipay: bool,
    served: u32,
    /// Redemptions per coupon program (inline up to four programs: states are cloned often).
    redeemed: SmallVec<[u32; 4]>,
}

// By hand: the derived clone copies the counters one by one, and states are cloned often.
impl Clone for State {
    fn clone(&self) -> Self {
        State {
            redeemed: SmallVec::from_slice(&self.redeemed),
            ..*self
        }
    }
}

impl State {
    /// A stream key for the cohort: equal for equal states in the scenario and its baseline
    /// (redemption counters of zero do not enter it), so the two meet the same draws.
    fn key(&self) -> u64 {
        let mut h =
            mix64(u64::from(self.segment) << 3 | u64::from(self.app) << 1 | u64::from(self.alipay));
        h = mix64(h ^ u64::from(self.served));
        for (k, &c) in self.redeemed.iter().enumerate().filter(|(_, c)| **c > 0) {
            h = mix64(h ^ mix64((k as u64) << 32 | u64::from(c)));
        }
        h
    }
}

/// The cohorts a tick builds for the next, by state: hashed while users are added (a thousand
/// times a tick and more), put in state order once the tick is over.
type Next = rustc_hash::FxHashMap<State, u64>;

/// The placements of a user's sessions in one tick (inline for two, the usual number).
type Placements = SmallVec<[usize; 2]>;

/// A user drawn out of its cohort for this tick.
struct Individual {
    state: State,
    /// Placements of its sessions this tick.
    sessions: Placements,
    /// Its stream key: what it was drawn out of (exposure type and organic level) and its rank
    /// there, so that the same user meets the same draws in the scenario and in its baseline.
    unit: u64,
}

/// What phase 2 hands to phase 3: the users with sessions this tick.
#[derive(Default)]
struct Clicked {
    /// Users with exactly one session, by state after exposure and the session's placement
    /// (hashed while exposure adds to it, put in order when phase 3 starts).
    single: rustc_hash::FxHashMap<(State, usize), u64>,
    /// Users with two or more sessions whose sessions are independent whatever the budgets
    /// ([`Clicked::add_several`]), by state and placements of their sessions (in placement
    /// order).
    free: rustc_hash::FxHashMap<(State, Placements), u64>,
    /// Other users with two or more sessions, one by one.
    multi: Listed,
}

/// Several-session users followed one by one, kept compactly (a busy tick has thousands, and
/// more with the population): the users share their states, each user keeps an index into them,
/// and its sessions' placements are a stretch of one list.
#[derive(Default)]
struct Listed {
    states: Vec<State>,
    /// Each state's index in `states`.
    index: rustc_hash::FxHashMap<State, u32>,
    /// Per user: its state's index, where its placements start in `placements`, its stream key
    /// ([`Individual::unit`]).
    users: Vec<(u32, u32, u64)>,
    placements: Vec<u32>,
}

impl Listed {
    fn push(&mut self, ind: Individual) {
        let state = self.intern(ind.state);
        let first = u32::try_from(self.placements.len()).expect("fewer than 2^32 sessions");
        self.users.push((state, first, ind.unit));
        self.placements.extend(
            (ind.sessions.iter()).map(|&p| u32::try_from(p).expect("fewer than 2^32 placements")),
        );
    }

    /// The index of `state` in `states`, added if new.
    fn intern(&mut self, state: State) -> u32 {
        if let Some(&k) = self.index.get(&state) {
            return k;
        }
        let k = u32::try_from(self.states.len()).expect("fewer than 2^32 states");
        self.states.push(state.clone());
        self.index.insert(state, k);
        k
    }

    fn len(&self) -> usize {
        self.users.len()
    }

    /// How many sessions user `i` has.
    fn sessions(&self, i: usize) -> usize {
        let end = self
            .users
            .get(i + 1)
            .map_or(self.placements.len(), |u| u.1 as usize);
        end - self.users[i].1 as usize
    }

    fn unit(&self, i: usize) -> u64 {
        self.users[i].2
    }

    fn state(&self, i: usize) -> &State {
        &self.states[self.users[i].0 as usize]
    }

    /// The placement of user `i`'s session `idx`.
    fn placement(&self, i: usize, idx: usize) -> usize {
        debug_assert!(idx < self.sessions(i));
        self.placements[self.users[i].1 as usize + idx] as usize
    }

    /// User `i` as an [`Individual`] of its own.
    fn get(&self, i: usize) -> Individual {
        Individual {
            state: self.state(i).clone(),
            sessions: (0..self.sessions(i))
                .map(|idx| self.placement(i, idx))
                .collect(),
            unit: self.unit(i),
        }
    }

    /// User `i`'s state is now `state`.
    fn set_state(&mut self, i: usize, state: State) {
        if *self.state(i) != state {
            self.users[i].0 = self.intern(state);
        }
    }

    /// The users for whom `keep` holds, in order, in a list of their own (no larger than they
    /// need); the others go to `other`.
    fn split(
        self,
        keep: impl Fn(&Individual) -> bool,
        mut other: impl FnMut(Individual),
    ) -> Listed {
        let mut kept = Listed::default();
        for i in 0..self.len() {
            let ind = self.get(i);
            if keep(&ind) {
                kept.push(ind);
            } else {
                other(ind);
            }
        }
        kept.users.shrink_to_fit();
        kept.placements.shrink_to_fit();
        kept
    }

    /// The users' states, with how many users have each.
    fn by_state(self) -> impl Iterator<Item = (State, u64)> {
        let mut counts = vec![0; self.states.len()];
        for u in &self.users {
            counts[u.0 as usize] += 1;
        }
        self.states.into_iter().zip(counts).filter(|x| x.1 > 0)
    }
}

/// Stream stages of this engine (kept apart from the agents engine's numbering).
#[derive(Clone, Copy)]
#[repr(u64)]
enum Step {
    Population = 101,
    BoostTotal = 102,
    BoostSpread = 103,
    Exposure = 104,
    Session = 106,
    AssignBlock = 107,
    AssignMember = 108,
    /// The walk of one organic level of one exposure group through its served positions.
    Level = 120,
    Arrivals = 140,
    Fates = 141,
    Baskets = 142,
    /// A class's fates under the available programs given its fates without them.
    Kernel = 143,
    /// Which users of a phase-3 class (by impressions served today) had which outcome.
    Served = 145,
    /// Which of an epoch's sessions of one kind arrived: their items' shares.
    Deal = 146,
    /// Which latent basket draws a booking takes, once their order depends on their values.
    Take = 147,
}

/// One replication of the plan's scenario.
pub fn simulate(plan: &Plan, seed: u64, replication: u64) -> Outcome {
    run(plan, seed, replication, Pairing::Alone)
}

/// One replication of a scenario and of its baseline (or of any two plans), on two threads of
/// the current rayon pool where one is free: the second run values the first's money between
/// its own ticks (a `Share`) and, if the pair is `alone` (all the pool has to do, as for a
/// single replication), once it is done until the lead is. The results are those of
/// [`simulate`] for each plan.
///
/// With other work in the pool, a done run goes back to it instead: a thread that took a job
/// resumes its own work only when the job returns, so a wait there could hold up more than it
/// saves.
pub fn simulate_pair(
    lead: &Plan,
    other: &Plan,
    seed: u64,
    replication: u64,
    alone: bool,
) -> (Outcome, Outcome) {
    let share = Share::new(lead);
    rayon::join(
        || run(lead, seed, replication, Pairing::Lead(&share)),
        || run(other, seed, replication, Pairing::Lends(&share, alone)),
    )
}

/// How a run shares work with the other run of its pair.
#[derive(Clone, Copy)]
enum Pairing<'a, 'p, 's> {
    Alone,
    /// It hands its money over to be valued by the other run.
    Lead(&'a Share<'p, 's>),
    /// It values the lead's money between its ticks, and once it is done until the lead is if
    /// the flag is set.
    Lends(&'a Share<'p, 's>, bool),
}

fn run(plan: &Plan, seed: u64, replication: u64, pairing: Pairing) -> Outcome {
    // Whatever happens to the lead, the other run stops waiting for it.
    let _closes = match pairing {
        Pairing::Lead(share) => Some(share.closer()),
        _ => None,
    };
    if let Pairing::Lends(share, _) = pairing {
        share.start_lending();
    }
    let mut sim = Sim::new(plan, seed, replication);
    sim.share = match pairing {
        Pairing::Lead(share) => Some(share),
        _ => None,
    };
    for t in 0..plan.ticks {
        sim.tick(t);
        if let Pairing::Lends(share, _) = pairing {
            share.lend();
        }
    }
    // The run's state is dropped before it waits for the lead, so that the two are not kept
    // at once.
    let Sim { mut out, .. } = sim;
    match pairing {
        Pairing::Alone => {}
        Pairing::Lead(share) => share.close(&mut out),
        Pairing::Lends(share, true) => share.lend_until_closed(),
        Pairing::Lends(share, false) => share.stop_lending(),
    }
    out
}

struct Sim<'p, 's> {
    plan: &'p Plan<'s>,
    seed: u64,
    rep: u64,
    cohorts: BTreeMap<State, u64>,
    ledger: Ledger,
    out: Outcome,
    funnel: Funnel,
    reserved: Vec<u64>,
    paid: Vec<u64>,
    /// Sessions' coupon laws met so far in this replication.
    laws: fates::Laws,
    walk_scratch: exposure::WalkScratch,
    session_scratch: sessions::SessionScratch,
    /// Where a lead run hands its ticks' money over (`None`: it values it itself).
    share: Option<&'p Share<'p, 's>>,
    /// Per coupon slot: whether its program can never pay again, so that its redemption
    /// counters are kept at zero.
    spent: Vec<bool>,
    /// The next tick's cohorts while a tick builds them: empty between ticks, its table kept
    /// (it grows to the same size tick after tick).
    next: Next,
}

/// Pushes `item` on `list`, allocating room for it alone when the list is empty. For lists
/// that mostly never get a second item (a basket stream's runs of draws owed, a list's
/// bookings: at 10^9 users about four in five and all but a few), of which a tick holds a few
/// thousand at once: the three spare places `Vec` allocates with its first item came to about
/// 140 KB of the 2 MB the engine's live heap peaked at. A list that does get a second item moves
/// its first.
fn push_lean<T>(list: &mut Vec<T>, item: T) {
    if list.capacity() == 0 {
        list.reserve_exact(1);
    }
    list.push(item);
}

/// The stream of (seed, replication, tick, unit, step, index): distinct arguments give distinct
/// streams, whatever their values (but for 64-bit hash collisions, of chance ~2^-64 a pair).
fn keyed(seed: u64, rep: u64, t: usize, unit: u64, step: Step, index: u64) -> Stream {
    stream(
        seed,
        rep,
        t as u64,
        unit_step(unit, step),
        Stage::Exposure,
        index,
    )
}

/// The unit and step of [`keyed`] as one key (the engine's steps are folded into the unit so
/// that they never meet the agents' stages). The unit is mixed first and the step enters the
/// mixed value, as each part of [`stream`]'s key enters the mix of the parts before it: units
/// that are small numbers (a segment, a program, a kind) XORed with a step directly would meet,
/// segment 3's draws with program 0's, say (3 ^ 101 = 0 ^ 102).
fn unit_step(unit: u64, step: Step) -> u64 {
    mix64(mix64(unit) ^ step as u64)
}

impl<'p, 's> Sim<'p, 's> {
    fn new(plan: &'p Plan<'s>, seed: u64, rep: u64) -> Self {
        let s = plan.scenario;
        let mut cohorts = BTreeMap::new();
        let mut counts = Vec::new();
        for (g, &n) in super::agents::segment_sizes(s).iter().enumerate() {
            let seg = &s.segments[g];
            let (a, p) = (seg.taobao_app, seg.alipay);
            let mut r = keyed(seed, rep, 0, g as u64, Step::Population, 0);
            multinomial(
                n,
                &[a * p, a * (1.0 - p), (1.0 - a) * p, (1.0 - a) * (1.0 - p)],
                &mut r,
                &mut counts,
            );
            for (i, &c) in counts.iter().enumerate() {
                let state = State {
                    segment: g as u32,
                    app: i < 2,
                    alipay: i % 2 == 0,
                    served: 0,
                    redeemed: smallvec![0; plan.coupons()],
                };
                if c > 0 {
                    cohorts.insert(state, c);
                }
            }
        }
        let n_programs = s.programs.len();
        Sim {
            plan,
            seed,
            rep,
            cohorts,
            ledger: Ledger::new(plan),
            out: Outcome::new(s),
            funnel: Funnel::of(s),
            reserved: vec![0; n_programs],
            paid: vec![0; n_programs],
            laws: fates::Laws::default(),
            walk_scratch: exposure::WalkScratch::default(),
            session_scratch: sessions::SessionScratch::default(),
            share: None,
            spent: vec![false; plan.coupons()],
            next: Next::default(),
        }
    }

    fn scenario(&self) -> &'s Scenario {
        self.plan.scenario
    }

    /// A tick's money, valued here or handed over.
    fn hand_over(&mut self, batch: money::Batch) {
        match self.share {
            Some(share) => share.hand_over(batch, &mut self.out),
            None => batch.value_into(self.plan, &mut self.out),
        }
    }

    /// Drops the tick batches the other run of a pair has valued (see [`Share`]).
    fn free_valued(&self) {
        if let Some(share) = self.share {
            share.free_valued();
        }
    }

    /// Adds `n` to a count in tick `t` and in a funnel cell (destination column `all`).
    fn add(&mut self, t: usize, count: Count, placement: usize, segment: usize, n: u64) {
        if n > 0 {
            self.out.add(t, count, n);
            self.out.funnel[self.funnel.index(placement, segment, 0, count)] += n;
        }
    }

    fn tick(&mut self, t: usize) {
        self.advance(t);
        self.forget_spent_programs(t);
    }

    /// Tick `t`'s three phases and the close of its budgets.
    fn advance(&mut self, t: usize) {
        if self.plan.day_reset[t] {
            let old = std::mem::take(&mut self.cohorts);
            for (mut state, n) in old {
                state.served = 0;
                *self.cohorts.entry(state).or_insert(0) += n;
            }
        }
        let boosted = self.reserve_boosts(t);
        let mut next = std::mem::take(&mut self.next);
        let mut clicked = Clicked::default();
        self.expose_cohorts(t, boosted, &mut next, &mut clicked);
        self.walk_scratch.release_large();
        for j in 0..self.reserved.len() {
            self.ledger
                .reserve(self.plan, j, self.reserved[j] - self.paid[j], false);
        }
        self.resolve_sessions(t, clicked, &mut next);
        // Gathered in a list made at its full size at once, which the ordered map's collection
        // sorts where it lies (collected from the hash map, that list grows step by step, and at
        // national scale each step moves a large block).
        let mut entries = Vec::with_capacity(next.len());
        entries.extend(next.drain().filter(|x| x.1 > 0));
        self.cohorts = entries.into_iter().collect();
        self.next = next;
        self.ledger.close_tick(self.plan, &mut self.out, t);
    }

    /// A coupon program that can never pay again (see [`Ledger::never_pays_after`]) no longer
    /// tells its users apart by their redemptions, which no step reads but its per-user limit:
    /// its counters are set to zero, merging the cohorts that differed only there. Users of one
    /// merged cohort have the same law from here on, as the users of any cohort do.
    fn forget_spent_programs(&mut self, t: usize) {
        let plan = self.plan;
        if t + 1 == plan.ticks {
            return; // no tick left to merge for
        }
        let newly: SmallVec<[usize; 4]> = (0..plan.scenario.programs.len())
            .filter_map(|j| {
                plan.coupon_slot[j]
                    .filter(|&k| !self.spent[k] && self.ledger.never_pays_after(plan, j, t))
            })
            .collect();
        if newly.is_empty() {
            return;
        }
        let old = std::mem::take(&mut self.cohorts);
        for (mut state, n) in old {
            for &k in &newly {
                state.redeemed[k] = 0;
            }
            *self.cohorts.entry(state).or_insert(0) += n;
        }
        for k in newly {
            self.spent[k] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::exact_fixture;

    #[test]
    fn small_units_of_different_steps_never_share_a_stream() {
        // Units that are small numbers (segments, programs, kinds of sessions) under every step:
        // all keys distinct. With the unit and step XORed directly, segment 3's population draws
        // were program 0's boosted total (3 ^ 101 = 0 ^ 102), and this fails.
        let steps = [
            Step::Population,
            Step::BoostTotal,
            Step::BoostSpread,
            Step::Exposure,
            Step::Session,
            Step::AssignBlock,
            Step::AssignMember,
            Step::Level,
            Step::Arrivals,
            Step::Fates,
            Step::Baskets,
            Step::Kernel,
            Step::Served,
            Step::Deal,
            Step::Take,
        ];
        let mut seen = std::collections::HashSet::new();
        for step in steps {
            for unit in 0..1024 {
                assert!(
                    seen.insert(unit_step(unit, step)),
                    "unit {unit}, step {}",
                    step as u64
                );
            }
        }
    }

    #[test]
    fn listed_users_come_back_as_they_went_in() {
        // Users pushed one by one come back whole, in order, with their own sessions; a changed
        // state is kept for its user alone; a split keeps the order; the states' counts add up.
        let state = |served: u32, redeemed: u32| State {
            segment: 1,
            app: true,
            alipay: false,
            served,
            redeemed: smallvec![redeemed, 0],
        };
        let users: Vec<Individual> = (0..6u32)
            .map(|k| Individual {
                state: state(k % 2, 0),
                sessions: (0..2 + k as usize % 3)
                    .map(|s| (s * 7 + k as usize) % 4)
                    .collect(),
                unit: 100 + u64::from(k),
            })
            .collect();
        let mut listed = Listed::default();
        for u in &users {
            listed.push(Individual {
                state: u.state.clone(),
                sessions: u.sessions.clone(),
                unit: u.unit,
            });
        }
        assert_eq!(listed.len(), 6);
        assert_eq!(listed.states.len(), 2, "six users, two states");
        for (i, u) in users.iter().enumerate() {
            let back = listed.get(i);
            assert_eq!(
                (&back.state, &back.sessions, back.unit),
                (&u.state, &u.sessions, u.unit)
            );
            assert_eq!(listed.sessions(i), u.sessions.len());
            assert_eq!(listed.unit(i), u.unit);
        }
        listed.set_state(2, state(0, 1));
        assert_eq!(listed.get(2).state, state(0, 1));
        assert_eq!(
            listed.get(0).state,
            state(0, 0),
            "user 0 shared user 2's state"
        );
        let mut others = Vec::new();
        let kept = listed.split(|u| u.unit % 2 == 0, |u| others.push(u.unit));
        assert_eq!(others, [101, 103, 105]);
        let units: Vec<u64> = (0..kept.len()).map(|i| kept.unit(i)).collect();
        assert_eq!(units, [100, 102, 104]);
        assert_eq!(kept.get(1).sessions, users[2].sessions);
        let mut counts: Vec<(State, u64)> = kept.by_state().collect();
        counts.sort();
        assert_eq!(counts, [(state(0, 0), 2), (state(0, 1), 1)]);
    }

    #[test]
    fn a_spent_program_stops_telling_cohorts_apart() {
        // budget.toml: "spring" (asap, one slot) runs out in its first ticks, "small" (even
        // pacing) pays to the end. Users redeem both; once spring can never pay again, no
        // cohort keeps a count of it, while small's counts stay. Fails without the merge.
        let scenario = exact_fixture("budget");
        let plan = Plan::new(&scenario);
        let (spring, small) = (
            plan.coupon_slot[0].expect("a coupon"),
            plan.coupon_slot[1].expect("a coupon"),
        );
        let counted = |sim: &Sim, k: usize| sim.cohorts.keys().any(|s| s.redeemed[k] > 0);
        let mut sim = Sim::new(&plan, 11, 1);
        let (mut merged, mut small_after) = (false, false);
        for t in 0..plan.ticks {
            sim.advance(t);
            let before = sim.cohorts.len();
            let spring_counted = counted(&sim, spring);
            sim.forget_spent_programs(t);
            if sim.spent[spring] {
                assert!(!counted(&sim, spring), "tick {t}: spring still counted");
                merged |= spring_counted && sim.cohorts.len() < before;
                small_after |= counted(&sim, small);
            }
            if t + 1 < plan.ticks {
                assert_eq!(sim.spent[spring], sim.ledger.never_pays_after(&plan, 0, t));
                assert_eq!(sim.spent[small], sim.ledger.never_pays_after(&plan, 1, t));
            }
        }
        // Cohorts that differed only in spring's count were merged, and small's counts, which
        // still matter, stay.
        assert!(merged && small_after);
    }
}
