//! Phase 3 of a tick: every session in one uniformly random arrival order, through steps 3–10.

use rand::Rng;

use std::collections::BTreeMap;

use super::{Clicked, Individual, Sim, State, Step, keyed};
use crate::engine::rng::mix64;
use crate::engine::story::{self, SessionDraws, Shopper, Tally, TickSessions};

impl Sim<'_, '_> {
    pub(super) fn resolve_sessions(
        &mut self,
        t: usize,
        clicked: Clicked,
        next: &mut BTreeMap<State, u64>,
    ) {
        let mut individuals = clicked.multi;
        for ((state, placement), n) in clicked.single {
            for rank in 0..n {
                let unit = mix64(mix64(state.key() ^ placement as u64) ^ rank);
                individuals.push(Individual {
                    state: state.clone(),
                    sessions: vec![placement],
                    unit,
                });
            }
        }
        let stream_of = |ind: &Individual, idx: usize| {
            keyed(self.seed, self.rep, t, ind.unit, Step::Session, idx as u64)
        };
        let mut sessions: Vec<(u64, u32, u32)> = Vec::new();
        for (i, ind) in individuals.iter().enumerate() {
            for idx in 0..ind.sessions.len() {
                sessions.push((stream_of(ind, idx).next_u64(), i as u32, idx as u32));
            }
        }
        // Ties of two 64-bit keys (chance ~ sessions² / 2^65) fall back to a fixed order.
        sessions.sort_unstable();
        let mut tick = TickSessions::default();
        for (_, i, idx) in sessions {
            let (i, idx) = (i as usize, idx as usize);
            let mut rng = stream_of(&individuals[i], idx);
            rng.next_u64();
            let draws = SessionDraws::draw(&mut rng);
            let ind = &mut individuals[i];
            let placement = ind.sessions[idx];
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
                &mut tick,
                &mut tally,
            );
        }
        for ind in individuals {
            *next.entry(ind.state).or_insert(0) += 1;
        }
    }
}
