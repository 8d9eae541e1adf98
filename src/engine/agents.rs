//! The `agents` engine: MODEL.md's per-user story, literally, user by user. It is the oracle of the
//! test suite, so it is written to be checked by reading against the spec, not to be fast.
//!
//! Streams are keyed by (replication, tick, user, stage, index): a user's organic exposure in a
//! tick, its boosted offers per program, and each of its sessions have their own streams, so the
//! baseline (no programs) meets the same draws wherever its state agrees with the scenario's.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Poisson};

use super::ledger::Ledger;
use super::rng::{Stage, Stream, stream};
use super::story::{self, Label, SessionDraws, Shopper, Tally, TickSessions};
use super::{Funnel, Outcome, Plan};
use crate::scenario::Scenario;

/// Most users the engine accepts: its per-user state must fit comfortably in memory.
pub const MAX_USERS: u64 = 50_000_000;
/// Most user-ticks per replication it accepts (about ten minutes per replication at its speed).
pub const MAX_USER_TICKS: u64 = 20_000_000_000;

/// Refuses, with a pointer to the default engine, a scenario too large to simulate user by user.
pub fn check_size(scenario: &Scenario) -> crate::Result<()> {
    let user_ticks = scenario.users.saturating_mul(scenario.ticks() as u64);
    if scenario.users > MAX_USERS || user_ticks > MAX_USER_TICKS {
        return Err(crate::Error::Run(format!(
            "the agents engine simulates users one by one and cannot finish {} users × {} ticks in reasonable \
             memory and time (limits: {MAX_USERS} users, {MAX_USER_TICKS} user-ticks per replication); \
             use the default engine, --engine cohorts, which is exact and does not grow with users",
            scenario.users,
            scenario.ticks()
        )));
    }
    Ok(())
}

/// Segment sizes: `users × share` rounded by largest remainder, ties to the segment listed first.
pub fn segment_sizes(scenario: &Scenario) -> Vec<u64> {
    let users = scenario.users as f64;
    let raw: Vec<f64> = scenario.segments.iter().map(|s| users * s.share).collect();
    let mut sizes: Vec<u64> = raw.iter().map(|x| x.floor() as u64).collect();
    let left = scenario.users.saturating_sub(sizes.iter().sum()) as usize;
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| {
        (raw[b] - raw[b].floor())
            .total_cmp(&(raw[a] - raw[a].floor()))
            .then(a.cmp(&b))
    });
    for &i in order.iter().cycle().take(left) {
        sizes[i] += 1;
    }
    sizes
}

/// Per-user state (MODEL.md: segment, app, Alipay, served today, redemptions per coupon program).
struct Users {
    segment: Vec<u32>,
    app: Vec<bool>,
    alipay: Vec<bool>,
    served_today: Vec<u32>,
    /// `redeemed[user × coupons + k]`: redemptions of the k-th coupon program.
    redeemed: Vec<u32>,
    coupons: usize,
}

impl Users {
    fn draw(plan: &Plan, seed: u64, replication: u64) -> Users {
        let s = plan.scenario;
        let coupons = s.programs.iter().filter(|p| p.coupon().is_some()).count();
        let n = s.users as usize;
        let mut users = Users {
            segment: Vec::with_capacity(n),
            app: Vec::with_capacity(n),
            alipay: Vec::with_capacity(n),
            served_today: vec![0; n],
            redeemed: vec![0; n * coupons],
            coupons,
        };
        for (g, &size) in segment_sizes(s).iter().enumerate() {
            let seg = &s.segments[g];
            for _ in 0..size {
                let u = users.segment.len() as u64;
                let mut r = stream(seed, replication, 0, u, Stage::Population, 0);
                users.segment.push(g as u32);
                users.app.push(r.random::<f64>() < seg.taobao_app);
                users.alipay.push(r.random::<f64>() < seg.alipay);
            }
        }
        users
    }
}

/// One click waiting for phase 3.
struct Session {
    arrival: u64,
    user: u32,
    index: u32,
    placement: usize,
    rng: Stream,
}

/// Simulates one replication of the plan's scenario.
pub fn simulate(plan: &Plan, seed: u64, replication: u64) -> Outcome {
    let mut sim = Sim::new(plan, seed, replication);
    for t in 0..plan.ticks {
        sim.tick(t);
    }
    sim.out
}

struct Sim<'p, 's> {
    plan: &'p Plan<'s>,
    seed: u64,
    rep: u64,
    users: Users,
    ledger: Ledger,
    out: Outcome,
    funnel: Funnel,
    /// Kept boosted impressions of this tick per traffic program: (user, count), users ascending.
    kept: Vec<Vec<(u32, u32)>>,
    /// Charges reserved in phase 1 of this tick per program, and paid so far.
    reserved: Vec<u64>,
    paid: Vec<u64>,
}

impl<'p, 's> Sim<'p, 's> {
    fn new(plan: &'p Plan<'s>, seed: u64, rep: u64) -> Self {
        let n_programs = plan.scenario.programs.len();
        Sim {
            plan,
            seed,
            rep,
            users: Users::draw(plan, seed, rep),
            ledger: Ledger::new(plan),
            out: Outcome::new(plan.scenario),
            funnel: Funnel::of(plan.scenario),
            kept: vec![Vec::new(); n_programs],
            reserved: vec![0; n_programs],
            paid: vec![0; n_programs],
        }
    }

    fn tick(&mut self, t: usize) {
        if self.plan.day_reset[t] {
            self.users.served_today.iter_mut().for_each(|s| *s = 0);
        }
        self.reserve_boosts(t);
        let sessions = self.expose(t);
        for j in 0..self.reserved.len() {
            let unused = self.reserved[j] - self.paid[j];
            self.ledger.reserve(self.plan, j, unused, false);
        }
        self.resolve_sessions(t, sessions);
        self.ledger.close_tick(self.plan, &mut self.out, t);
    }

    /// Phase 1: each traffic program in listed order reserves what it can pay, A; users in its
    /// segments are offered Poisson(max_boost × λ) boosted impressions; a uniformly random
    /// min(M, A) of the M offered are kept (selection sampling, ball by ball).
    fn reserve_boosts(&mut self, t: usize) {
        let s = self.plan.scenario;
        for j in 0..s.programs.len() {
            self.kept[j].clear();
            self.reserved[j] = 0;
            self.paid[j] = 0;
            let Some(buy) = s.programs[j].traffic() else {
                continue;
            };
            if !self.plan.in_window[j][t] {
                continue;
            }
            let a = self.ledger.affordable(self.plan, j, t);
            let mut offered: Vec<(u32, u64)> = Vec::new();
            for u in 0..self.users.segment.len() {
                let g = self.users.segment[u] as usize;
                let mean = buy.max_boost * self.plan.lambda[t][g][buy.placement];
                if !s.programs[j].segments[g] || mean <= 0.0 {
                    continue;
                }
                let mut r = stream(
                    self.seed,
                    self.rep,
                    t as u64,
                    u as u64,
                    Stage::BoostOffer,
                    j as u64,
                );
                let m = super::cohorts::samplers::poisson(mean, &mut r);
                if m > 0 {
                    offered.push((u as u32, m));
                }
            }
            let total: u64 = offered.iter().map(|o| o.1).sum();
            let keep = total.min(a);
            let mut r = stream(self.seed, self.rep, t as u64, 0, Stage::BoostKeep, j as u64);
            let (mut balls_left, mut keep_left) = (total, keep);
            for (u, m) in offered {
                let mut kept = 0u32;
                for _ in 0..m {
                    if r.random_range(0..balls_left) < keep_left {
                        kept += 1;
                        keep_left -= 1;
                    }
                    balls_left -= 1;
                }
                if kept > 0 {
                    self.kept[j].push((u, kept));
                }
            }
            self.reserved[j] = keep;
            self.ledger.reserve(self.plan, j, keep, true);
        }
    }

    /// Phase 2: every user's offered impressions in one uniformly random order, the first
    /// min(offered, cap − served_today) served, each clicked with the fatigued CTR.
    fn expose(&mut self, t: usize) -> Vec<Session> {
        let s = self.plan.scenario;
        let poissons: Vec<Vec<Option<Poisson<f64>>>> = self.plan.lambda[t]
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&l| (l > 0.0).then(|| Poisson::new(l).expect("finite positive mean")))
                    .collect()
            })
            .collect();
        let mut cursors = vec![0usize; s.programs.len()];
        let mut labels: Vec<Label> = Vec::new();
        let mut sessions = Vec::new();
        for u in 0..self.users.segment.len() {
            let g = self.users.segment[u] as usize;
            let mut r = stream(self.seed, self.rep, t as u64, u as u64, Stage::Exposure, 0);
            labels.clear();
            for (p, dist) in poissons[g].iter().enumerate() {
                let k = dist.map_or(0, |d| d.sample(&mut r) as u64);
                labels.extend((0..k).map(|_| Label {
                    placement: p,
                    program: None,
                }));
            }
            for (j, cursor) in cursors.iter_mut().enumerate() {
                if let Some(&(user, kept)) = self.kept[j].get(*cursor)
                    && user as usize == u
                {
                    *cursor += 1;
                    let placement = s.programs[j].traffic().expect("traffic program").placement;
                    labels.extend((0..kept).map(|_| Label {
                        placement,
                        program: Some(j),
                    }));
                }
            }
            if labels.is_empty() {
                continue;
            }
            self.serve_user(t, u, &mut labels, &mut r, &mut sessions);
        }
        sessions
    }

    /// Steps 1–2 for user `u` (shared with the cohorts engine), then a session per click, with
    /// its own stream and arrival key.
    fn serve_user(
        &mut self,
        t: usize,
        u: usize,
        labels: &mut [Label],
        r: &mut Stream,
        sessions: &mut Vec<Session>,
    ) {
        let segment = self.users.segment[u] as usize;
        let mut tally = Tally {
            out: &mut self.out,
            funnel: self.funnel,
            t,
            placement: 0,
            segment,
        };
        let clicks = story::serve_and_click(
            self.plan,
            &mut self.ledger,
            &mut tally,
            &mut self.users.served_today[u],
            labels,
            &mut self.paid,
            r,
        );
        for (index, placement) in clicks.into_iter().enumerate() {
            let index = index as u32;
            let mut rng = stream(
                self.seed,
                self.rep,
                t as u64,
                u as u64,
                Stage::Session,
                u64::from(index),
            );
            sessions.push(Session {
                arrival: rng.next_u64(),
                user: u as u32,
                index,
                placement,
                rng,
            });
        }
    }

    /// Phase 3: the tick's sessions in one uniformly random arrival order (sorted by independent
    /// uniform 64-bit keys), each resolved through steps 3–10 before the next.
    fn resolve_sessions(&mut self, t: usize, mut sessions: Vec<Session>) {
        sessions.sort_by_key(|x| (x.arrival, x.user, x.index));
        let mut tick = TickSessions::default();
        let coupons = self.users.coupons;
        for mut x in sessions {
            let u = x.user as usize;
            let draws = SessionDraws::draw(&mut x.rng);
            let shopper = Shopper {
                segment: self.users.segment[u] as usize,
                app: self.users.app[u],
                alipay: &mut self.users.alipay[u],
                redeemed: &mut self.users.redeemed[u * coupons..(u + 1) * coupons],
            };
            let mut tally = Tally {
                out: &mut self.out,
                funnel: self.funnel,
                t,
                placement: x.placement,
                segment: shopper.segment,
            };
            story::resolve_session(
                self.plan,
                &mut self.ledger,
                shopper,
                draws,
                &mut tick,
                &mut tally,
            );
        }
    }
}
