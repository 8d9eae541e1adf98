//! Phase 3 of a tick: every session in one uniformly random arrival order, through steps 3–10.
//!
//! Sessions of users with one session this tick come as counts per class (user state and
//! placement); users with several sessions come one by one. The arrival order is drawn only as
//! far as outcomes depend on it:
//! - the several-session users' sessions take uniformly random positions among all the tick's
//!   sessions (a uniform subset of positions, in a uniformly random order), and are resolved one
//!   at a time, literally, with the code the `agents` engine runs;
//! - the single sessions between two of them are a uniformly random subset of the single
//!   sessions not yet placed (a multivariate hypergeometric draw by class);
//! - within such a block every session's fate is drawn by class (a multinomial over the fates of
//!   `fates::fate_law`) under what the block's first session finds: the live room open or full,
//!   the programs that can pay. If the whole block leaves that unchanged, every session in it
//!   found the same, and the block stands. Otherwise the session at which it changed is found by
//!   halving: the first half of the block (in its uniformly random order) is a multivariate
//!   hypergeometric draw of its (class, fate) counts; a half that leaves things unchanged stands,
//!   and the search goes on in the other. The sessions after the change keep their classes but
//!   lose their fates, which are drawn again under what they now find (MODEL.md's first-come rule).
//! - Blocks that cannot change anything (the room and every budget can take as many sessions as
//!   the block and everything before it holds) are not drawn until something could change: their
//!   sessions then form one block.

use std::collections::BTreeMap;

use rand::Rng;

use super::fates::{self, Class, Coupon, End, Fate, Landing, Room};
use super::samplers::{choose_distinct, multinomial, multivariate_hypergeometric};
use super::{Clicked, Individual, Sim, State, Step, keyed};
use crate::engine::Count;
use crate::engine::rng::{Stream, mix64};
use crate::engine::story::{self, SessionDraws, Shopper, Tally, TickSessions};
use crate::scenario::yuan_to_units;

/// What an arriving session finds: the live room, and which programs can still pay one charge.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Avail {
    room: Room,
    programs: Vec<bool>,
}

/// `n` single sessions of one class with one fate; `law` is the coupon law behind the fate.
#[derive(Clone, Copy, Debug)]
struct Item {
    class: usize,
    fate: Fate,
    law: usize,
    n: u64,
}

/// One tick's phase 3 in progress.
struct Arrivals<'n> {
    t: usize,
    /// Single-session classes (state, placement), in state order.
    classes: Vec<(State, usize)>,
    /// Single sessions of each class not yet placed in the order.
    pool: Vec<u64>,
    /// Single sessions placed but not yet drawn: nothing can change while they arrive.
    pending: u64,
    tick: TickSessions,
    /// Draws of positions, blocks and halvings, in the order they happen.
    rng: Stream,
    /// How many times fates were drawn this tick (part of their streams' keys).
    epoch: u64,
    next: &'n mut BTreeMap<State, u64>,
}

impl Sim<'_, '_> {
    pub(super) fn resolve_sessions(
        &mut self,
        t: usize,
        clicked: Clicked,
        next: &mut BTreeMap<State, u64>,
    ) {
        let (classes, pool): (Vec<(State, usize)>, Vec<u64>) = clicked.single.into_iter().unzip();
        let mut multi = clicked.multi;
        let (seed, rep) = (self.seed, self.rep);
        let stream_of =
            |ind: &Individual, idx: usize| keyed(seed, rep, t, ind.unit, Step::Session, idx as u64);
        // The several-session users' sessions in a uniformly random order: sorted by a key from
        // each session's own stream (ties, of chance ~ sessions² / 2^65, fall back to a fixed order).
        let mut order: Vec<(u64, u32, u32)> = Vec::new();
        for (i, ind) in multi.iter().enumerate() {
            for idx in 0..ind.sessions.len() {
                order.push((stream_of(ind, idx).next_u64(), i as u32, idx as u32));
            }
        }
        order.sort_unstable();
        let total = pool.iter().sum::<u64>() + order.len() as u64;
        let mut ar = Arrivals {
            t,
            classes,
            pool,
            pending: 0,
            tick: TickSessions::default(),
            rng: keyed(self.seed, self.rep, t, 0, Step::Arrivals, 0),
            epoch: 0,
            next,
        };
        let positions = choose_distinct(total as usize, order.len(), &mut ar.rng);
        let mut placed = 0;
        for (&(_, i, idx), &position) in order.iter().zip(&positions) {
            let gap = position as u64 - placed;
            placed = position as u64 + 1;
            self.advance(&mut ar, gap, 1);
            let ind = &mut multi[i as usize];
            let mut rng = stream_of(ind, idx as usize);
            rng.next_u64();
            let draws = SessionDraws::draw(&mut rng);
            let placement = ind.sessions[idx as usize];
            let segment = ind.state.segment as usize;
            let shopper = Shopper {
                segment,
                app: ind.state.app,
                alipay: &mut ind.state.alipay,
                redeemed: &mut ind.state.redeemed,
            };
            let mut tally = Tally {
                out: &mut self.out,
                funnel: self.funnel,
                t,
                placement,
                segment,
            };
            story::resolve_session(
                self.plan,
                &mut self.ledger,
                shopper,
                draws,
                &mut ar.tick,
                &mut tally,
            );
        }
        self.advance(&mut ar, total - placed, 0);
        let pending = std::mem::take(&mut ar.pending);
        self.block(&mut ar, pending);
        for ind in multi {
            *ar.next.entry(ind.state).or_insert(0) += 1;
        }
    }

    /// The next `gap` single sessions arrive, then `then` (0 or 1) literal sessions: defer them
    /// while nothing can change, else draw everything deferred and then this gap as blocks.
    fn advance(&mut self, ar: &mut Arrivals, gap: u64, then: u64) {
        if self.unchangeable(ar, ar.pending + gap + then) {
            ar.pending += gap;
            return;
        }
        let pending = std::mem::take(&mut ar.pending);
        self.block(ar, pending);
        self.block(ar, gap);
    }

    /// Whether `n` more arrivals can leave what sessions find unchanged whatever they do: each
    /// admits at most one session to the room and redeems at most one coupon.
    fn unchangeable(&self, ar: &Arrivals, n: u64) -> bool {
        let plan = self.plan;
        let now = self.avail(ar.t, ar.tick.admitted, &self.ledger);
        if now.room == Room::Open
            && let Some(cap) = plan.scenario.live_room.capacity_per_tick
            && ar.tick.admitted + n > cap
        {
            return false;
        }
        let mut largest_part = vec![0u128; plan.scenario.funders.len()];
        for (j, _) in now.programs.iter().enumerate().filter(|x| *x.1) {
            let charge = plan.charge[j];
            if charge > 0 && self.ledger.allowance_room(plan, j, ar.t) / charge < n {
                return false;
            }
            for &(f, part) in &plan.parts[j] {
                largest_part[f] = largest_part[f].max(u128::from(part));
            }
        }
        largest_part.iter().enumerate().all(|(f, &part)| {
            self.ledger
                .funder_room(f)
                .is_none_or(|room| room >= part * u128::from(n))
        })
    }

    /// What a session arriving now finds, with `admitted` sessions in the room and `ledger`.
    fn avail(&self, t: usize, admitted: u64, ledger: &crate::engine::ledger::Ledger) -> Avail {
        let plan = self.plan;
        let room = if !plan.live_open[t] {
            Room::Closed
        } else if plan
            .scenario
            .live_room
            .capacity_per_tick
            .is_none_or(|c| admitted < c)
        {
            Room::Open
        } else {
            Room::Full
        };
        let programs = (0..plan.scenario.programs.len())
            .map(|j| plan.coupon_slot[j].is_some() && ledger.can_charge(plan, j, t))
            .collect();
        Avail { room, programs }
    }

    /// What a session finds after `items` arrived on top of what has been booked.
    fn avail_after(&self, ar: &Arrivals, items: &[Item]) -> Avail {
        let mut ledger = self.ledger.clone();
        let mut admitted = ar.tick.admitted;
        for item in items {
            if let Fate::Landed(landing, end) = item.fate {
                if landing == Landing::Live {
                    admitted += item.n;
                }
                if let End::Order { coupon, .. } = end
                    && let Some(j) = coupon.program()
                {
                    ledger.charge(self.plan, j, item.n);
                }
            }
        }
        self.avail(ar.t, admitted, &ledger)
    }

    /// The next `n` single sessions of the order: a uniformly random subset of those not yet
    /// placed, resolved under the first-come rule.
    fn block(&mut self, ar: &mut Arrivals, n: u64) {
        if n == 0 {
            return;
        }
        let mut counts = Vec::new();
        multivariate_hypergeometric(&ar.pool, n, &mut ar.rng, &mut counts);
        let mut block: Vec<(usize, u64)> = Vec::new();
        for (c, &k) in counts.iter().enumerate().filter(|x| *x.1 > 0) {
            ar.pool[c] -= k;
            block.push((c, k));
        }
        while !block.is_empty() {
            let found = self.avail(ar.t, ar.tick.admitted, &self.ledger);
            let items = self.draw_fates(ar, &block, &found);
            block = self.first_change(ar, items, &found);
        }
    }

    /// Fates of a block's sessions, class by class, under `found`.
    fn draw_fates(
        &mut self,
        ar: &mut Arrivals,
        block: &[(usize, u64)],
        found: &Avail,
    ) -> Vec<Item> {
        let mut law = Vec::new();
        let mut counts = Vec::new();
        let mut items = Vec::new();
        for &(c, n) in block {
            let (state, placement) = &ar.classes[c];
            let class = Class {
                segment: state.segment as usize,
                app: state.app,
                alipay: state.alipay,
                placement: *placement,
                redeemed: &state.redeemed,
            };
            fates::fate_law(
                self.plan,
                &mut self.laws,
                ar.t,
                class,
                found.room,
                &found.programs,
                &mut law,
            );
            let weights: Vec<f64> = law.iter().map(|x| x.1).collect();
            let key = mix64(state.key() ^ *placement as u64);
            let mut r = keyed(self.seed, self.rep, ar.t, key, Step::Fates, ar.epoch);
            multinomial(n, &weights, &mut r, &mut counts);
            for (&(fate, _, law), &k) in law.iter().zip(&counts) {
                if k > 0 {
                    items.push(Item {
                        class: c,
                        fate,
                        law,
                        n: k,
                    });
                }
            }
        }
        ar.epoch += 1;
        items
    }

    /// Books the sessions of `items` (in uniformly random order) up to and including the first
    /// one after which arrivals find something else than `found`; returns the classes of the
    /// sessions after it (none if nothing changed).
    fn first_change(
        &mut self,
        ar: &mut Arrivals,
        items: Vec<Item>,
        found: &Avail,
    ) -> Vec<(usize, u64)> {
        if self.avail_after(ar, &items) == *found {
            self.book(ar, &items);
            return Vec::new();
        }
        let mut later: BTreeMap<usize, u64> = BTreeMap::new();
        let mut span = items;
        loop {
            let size: u64 = span.iter().map(|x| x.n).sum();
            if size == 1 {
                self.book(ar, &span);
                break;
            }
            let sizes: Vec<u64> = span.iter().map(|x| x.n).collect();
            let mut first = Vec::new();
            multivariate_hypergeometric(&sizes, size / 2, &mut ar.rng, &mut first);
            let (mut early, mut late) = (Vec::new(), Vec::new());
            for (item, &k) in span.iter().zip(&first) {
                if k > 0 {
                    early.push(Item { n: k, ..*item });
                }
                if item.n > k {
                    late.push(Item {
                        n: item.n - k,
                        ..*item
                    });
                }
            }
            if self.avail_after(ar, &early) == *found {
                self.book(ar, &early);
                span = late;
            } else {
                for item in &late {
                    *later.entry(item.class).or_insert(0) += item.n;
                }
                span = early;
            }
        }
        later.into_iter().collect()
    }

    /// Counts, money, budgets and user states of resolved single sessions.
    fn book(&mut self, ar: &mut Arrivals, items: &[Item]) {
        let t = ar.t;
        for item in items {
            let (state, p) = &ar.classes[item.class];
            let (p, g, n) = (*p, state.segment as usize, item.n);
            let mut after = state.clone();
            let funnel = self.funnel;
            let tally = |out: &mut crate::engine::Outcome, count: Count, column: usize| {
                out.add(t, count, n);
                out.funnel[funnel.index(p, g, column, count)] += n;
            };
            let out = &mut self.out;
            match item.fate {
                Fate::JumpFail => tally(out, Count::JumpFailures, 0),
                Fate::Landed(landing, end) => {
                    tally(out, Count::Landed, 0);
                    let column = landing.column();
                    match landing {
                        Landing::Shop => {}
                        Landing::Closed => tally(out, Count::LiveRoomClosed, column),
                        Landing::Overflow => tally(out, Count::LiveRoomOverflow, column),
                        Landing::Live => {
                            ar.tick.admitted += n;
                            tally(out, Count::LiveRoomSessions, column);
                        }
                    }
                    match end {
                        End::Leak => tally(out, Count::LeakedToCompetitor, column),
                        End::NoAttempt => {}
                        End::PayFail => {
                            tally(out, Count::OrderAttempts, column);
                            tally(out, Count::PaymentFailures, column);
                        }
                        End::Order { setup, coupon } => {
                            tally(out, Count::OrderAttempts, column);
                            if setup {
                                tally(out, Count::AlipaySetups, column);
                                after.alipay = true;
                            }
                            tally(out, Count::Orders, column);
                            let by_destination = if column == 2 {
                                Count::OrdersLiveRoom
                            } else {
                                Count::OrdersShop
                            };
                            tally(out, by_destination, column);
                            if let Some(j) = coupon.program() {
                                tally(out, Count::CouponOrders, column);
                                self.ledger.charge(self.plan, j, n);
                                let d = u128::from(self.plan.charge[j]) * u128::from(n);
                                out.per_tick[t].discount += d;
                                out.totals.discount += d;
                                after.redeemed[self.plan.coupon_slot[j].expect("coupon")] += 1;
                            }
                            let key = mix64(mix64(state.key() ^ p as u64) ^ fate_code(coupon));
                            let mut r = keyed(self.seed, self.rep, t, key, Step::Baskets, ar.epoch);
                            let law = self.laws.law(item.law);
                            let value: u128 = (0..n)
                                .map(|_| {
                                    u128::from(yuan_to_units(
                                        law.order_basket(self.plan, coupon, &mut r),
                                    ))
                                })
                                .sum();
                            out.per_tick[t].gmv += value;
                            out.totals.gmv += value;
                            out.funnel_gmv[self.funnel.gmv_index(p, g, column)] += value;
                        }
                    }
                }
            }
            *ar.next.entry(after).or_insert(0) += n;
        }
        ar.epoch += 1;
    }
}

/// A number for an order's coupon in a stream key.
fn fate_code(coupon: Coupon) -> u64 {
    match coupon {
        Coupon::None => 0,
        Coupon::Reached(j) => 2 * j as u64 + 1,
        Coupon::TopUp(j) => 2 * j as u64 + 2,
    }
}
