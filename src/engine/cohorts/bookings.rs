//! Which of a list's made latent draws its bookings took (see `sessions::Latents`), kept as the
//! bookings themselves rather than as a mark per draw: memory that does not grow with the orders.
//!
//! A draw's cell under a law (its coupon's place among those the law can give) is a function of
//! its latent draws, which are a function of its place; a booking takes, in each cell, either
//! the first draws not booked yet in place order or a selection sample whose uniforms hash the
//! draws' places. So which draws a list's bookings took, and with which coupons, is found again
//! by going over its draws in place order with each booking's counts ([`History::replay`]):
//! where a list's sessions are drawn again under a new law (to count its draws not booked by
//! their new cells) and where its orders are valued.

use std::sync::Arc;

use super::fates::{Coupon, CouponLaw};
use super::push_lean;
use super::samplers::{float, unit_uniform};
use super::sessions::{LatentKey, TopUp, for_each_deviate};
use crate::engine::rng::mix64;

/// What one booking takes from one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Take {
    /// The cell's sessions it books.
    pub wanted: usize,
    /// The cell's draws not booked before it.
    pub seen: usize,
    /// Whether it takes the first ones in place order (else a selection sample).
    pub first: bool,
    /// The coupon of the draws it takes.
    pub coupon: Coupon,
}

/// One booking: its takes by cell of its law, and the key of its uniforms.
#[derive(Clone, Debug)]
struct Booking {
    key: u64,
    cells: Vec<Take>,
}

/// A law the draws were put in cells by, and the bookings made under it.
#[derive(Clone, Debug)]
struct Stage {
    law: Arc<CouponLaw>,
    /// Whether the law offers nothing: one cell.
    nothing: bool,
    bookings: Vec<Booking>,
}

impl Stage {
    /// The cell of latent draws (`z`, `u`) under the stage's law.
    #[inline]
    fn cell(&self, z: f64, u: &mut TopUp) -> usize {
        if self.nothing {
            0
        } else {
            usize::from(self.law.plain_cell(z, || u.get()))
        }
    }
}

/// A list's laws and bookings since its draws were made, in the order they came.
#[derive(Clone, Debug, Default)]
pub(super) struct History {
    stages: Vec<Stage>,
}

impl History {
    /// The draws are put in cells by a new law.
    pub fn regroup(&mut self, law: Arc<CouponLaw>) {
        // Not allocated lean (`push_lean`): most lists are put in cells by a second law.
        self.stages.push(Stage {
            nothing: law.offers_nothing(),
            law,
            bookings: Vec::new(),
        });
    }

    /// A booking under the last law: `cells[k]` what it takes of cell k; `key` keys its uniforms.
    pub fn book(&mut self, key: u64, cells: Vec<Take>) {
        let bookings = &mut self
            .stages
            .last_mut()
            .expect("a booking of made draws follows a law")
            .bookings;
        // Two bookings in a row that take the first draws of every cell take, together, the
        // first draws of each cell, as many as both (with the same coupons: the law's); so they
        // are kept as one, and a list whose law never changed goes over one booking per draw.
        if let Some(last) = bookings.last_mut()
            && last.cells.iter().chain(&cells).all(|t| t.first)
        {
            for (t, more) in last.cells.iter_mut().zip(&cells) {
                debug_assert_eq!(t.coupon, more.coupon);
                t.wanted += more.wanted;
            }
            return;
        }
        push_lean(bookings, Booking { key, cells });
    }

    /// Whether some booking took draws.
    pub fn any_booked(&self) -> bool {
        self.stages
            .iter()
            .flat_map(|s| &s.bookings)
            .any(|b| b.cells.iter().any(|t| t.wanted > 0))
    }

    /// Goes over the `n` draws from place `start` of the basket stream with keys `key`, in place
    /// order: `visit(z, found)` with each draw's basket deviate and what became of it. Each
    /// booking decides on the draws not booked before it as its own pass over them did (see
    /// `sessions::Latents::book`): a draw of a cell whose first ones it takes is taken while some
    /// are wanted; otherwise with chance wanted / (its draws of the cell left to see), by a
    /// uniform that hashes the draw's place and the booking's key.
    pub fn replay(&self, key: &LatentKey, start: u64, n: usize, mut visit: impl FnMut(f64, Found)) {
        let Some(last) = self.stages.last() else {
            return;
        };
        // The stages that booked anything, with their bookings' counts left.
        let final_stage = self.stages.len() - 1;
        let mut stages: Vec<Replayed> = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| Replayed {
                stage: s,
                is_final: i == final_stage,
                bookings: s
                    .bookings
                    .iter()
                    .filter_map(|b| {
                        let wanted = b.cells.iter().map(|t| t.wanted).sum();
                        (wanted > 0).then(|| (b.key, b.cells.clone(), wanted))
                    })
                    .collect(),
            })
            .filter(|s| !s.bookings.is_empty())
            .collect();
        // Draws the bookings still take: once none, the rest are in their cells under the last
        // law (each booking decides nothing more, and nothing is counted for it).
        let mut wanted: usize = stages.iter().flat_map(|s| &s.bookings).map(|b| b.2).sum();
        for_each_deviate(key, start..start + n as u64, |place, z| {
            let mut u = TopUp::new(key, place);
            let taken = if wanted == 0 {
                Err(None)
            } else {
                take(&mut stages, place, z, &mut u)
            };
            let found = match taken {
                Ok(coupon) => {
                    wanted -= 1;
                    Found::Booked(coupon)
                }
                Err(Some(cell)) => Found::Cell(cell),
                Err(None) => Found::Cell(last.cell(z, &mut u)),
            };
            // One call, so that `visit` is inlined.
            visit(z, found);
        });
    }

    /// The last law that put the draws in cells (a list with made draws has one).
    pub fn last_law(&self) -> &CouponLaw {
        &self.stages.last().expect("made draws are put in cells").law
    }

    /// The coupons of the last law's cells, in cell order: [`Found::Cell`]'s coupons.
    pub fn last_coupons(&self) -> &[Coupon] {
        let last = self.stages.last().expect("made draws are put in cells");
        if last.nothing {
            &[Coupon::None]
        } else {
            last.law.plain_coupons()
        }
    }
}

/// What became of a draw: a booking took it with a coupon, or none did and the last law puts it
/// in a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Found {
    Booked(Coupon),
    Cell(usize),
}

/// A stage as [`History::replay`] goes over the draws: its bookings that still take draws, each
/// with its key, its counts left and how many draws it still takes. A booking that takes no
/// more decides nothing more (its counts of draws seen matter only where it wants some), so it
/// leaves the list, and so does a stage left without bookings.
struct Replayed<'h> {
    stage: &'h Stage,
    /// Whether it is the history's last stage.
    is_final: bool,
    bookings: Vec<(u64, Vec<Take>, usize)>,
}

/// The coupon the first of `stages`' bookings to take the draw at `place` took it with, or, if
/// none did, its cell under the last law where that was found on the way; every booking that saw
/// the draw counts it.
fn take(
    stages: &mut Vec<Replayed>,
    place: u64,
    z: f64,
    u: &mut TopUp,
) -> Result<Coupon, Option<usize>> {
    let mut final_cell = None;
    for i in 0..stages.len() {
        let s = &mut stages[i];
        let cell = s.stage.cell(z, u);
        if s.is_final {
            final_cell = Some(cell);
        }
        for b in 0..s.bookings.len() {
            let (key, cells, wanted) = &mut s.bookings[b];
            let t = &mut cells[cell];
            let taken = t.wanted > 0
                && (t.first
                    || unit_uniform(mix64(*key ^ mix64(place))) * float(t.seen as u64)
                        < float(t.wanted as u64));
            t.seen -= 1;
            if taken {
                t.wanted -= 1;
                *wanted -= 1;
                let coupon = t.coupon;
                if *wanted == 0 {
                    s.bookings.remove(b);
                    if s.bookings.is_empty() {
                        stages.remove(i);
                    }
                }
                return Ok(coupon);
            }
        }
    }
    Err(final_cell)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cohorts::sessions::latent_at;
    use crate::engine::rng::Stream;
    use crate::engine::{Plan, story};
    use rand::{RngExt, SeedableRng};

    #[test]
    fn replayed_bookings_take_the_draws_their_own_passes_took() {
        // The reference: each booking marks the draws it takes in one pass over them, in place
        // order, as bookings did when every draw carried a mark. Lists of 300 draws go through
        // three laws (quick.toml's first coupon program, both, none) with up to three bookings
        // each of random sizes, the first law's bookings taking the first draws of their cells;
        // the replay must find every draw's mark, coupon included.
        let scenario = crate::scenario::quick_fixture();
        let plan = Plan::new(&scenario);
        let coupons: Vec<usize> = (0..scenario.programs.len())
            .filter(|&j| plan.coupon_slot[j].is_some())
            .collect();
        let (a, b) = (coupons[0], coupons[1]);
        let q = story::base_order_probability(&plan, 1, 0, 0, false, false);
        let laws = [vec![a], vec![a, b], vec![]]
            .map(|eligible| Arc::new(CouponLaw::new(&plan, 1, q, &eligible)));
        assert!(laws[1].plain_coupons().len() > laws[0].plain_coupons().len());
        let mut r = Stream::seed_from_u64(11);
        let n = 300;
        for list in 0..200u64 {
            let (key, start) = (LatentKey::new(list), r.random_range(0..1000u64));
            let draws: Vec<(f64, f64)> = (start..start + n as u64)
                .map(|place| latent_at(&key, place))
                .collect();
            let mut marks: Vec<Option<Coupon>> = vec![None; n];
            let mut history = History::default();
            for (stage, law) in laws.iter().enumerate() {
                history.regroup(Arc::clone(law));
                let nothing = law.offers_nothing();
                let cell = |(z, u): (f64, f64)| {
                    if nothing {
                        0
                    } else {
                        usize::from(law.plain_cell(z, || u))
                    }
                };
                let coupons = if nothing {
                    vec![Coupon::None]
                } else {
                    law.plain_coupons().to_vec()
                };
                for _ in 0..r.random_range(1..=3) {
                    let mut left = vec![0; coupons.len()];
                    for (d, m) in draws.iter().zip(&marks) {
                        if m.is_none() {
                            left[cell(*d)] += 1;
                        }
                    }
                    let mut takes: Vec<Take> = left
                        .iter()
                        .zip(&coupons)
                        .map(|(&l, &coupon)| {
                            let wanted = r.random_range(0..=l / 2 + usize::from(l == 1));
                            Take {
                                wanted,
                                seen: l,
                                first: stage == 0 || wanted == l,
                                coupon,
                            }
                        })
                        .collect();
                    let key = r.random::<u64>();
                    history.book(key, takes.clone());
                    for (place, (d, m)) in (start..).zip(draws.iter().zip(&mut marks)) {
                        if m.is_some() {
                            continue;
                        }
                        let t = &mut takes[cell(*d)];
                        let u = unit_uniform(mix64(key ^ mix64(place)));
                        if t.wanted > 0 && (t.first || u * (t.seen as f64) < t.wanted as f64) {
                            t.wanted -= 1;
                            *m = Some(t.coupon);
                        }
                        t.seen -= 1;
                    }
                    assert!(takes.iter().all(|t| t.wanted == 0 && t.seen == 0));
                }
            }
            let mut replayed = Vec::new();
            history.replay(&key, start, n, |_, found| replayed.push(found));
            // A draw no booking took is in its cell under the last law (which offers nothing).
            let marks: Vec<Found> = marks
                .iter()
                .map(|m| m.map_or(Found::Cell(0), Found::Booked))
                .collect();
            assert_eq!(replayed, marks, "list {list}");
            assert_eq!(
                history.any_booked(),
                marks.iter().any(|m| m != &Found::Cell(0))
            );
        }
    }

    /// `name`'s exactness fixture with `extra` inserted before its first program.
    fn with_programs_first(name: &str, extra: &str) -> crate::scenario::Scenario {
        let text = crate::scenario::exact_fixture_text(name);
        let at = text.find("[[program]]").expect("a program");
        let text = format!("{}{extra}{}", &text[..at], &text[at..]);
        crate::scenario::load_str(&text, &format!("{name}.toml")).expect("valid")
    }

    #[test]
    fn coupon_programs_listed_after_many_others_or_many_of_them_run() {
        // 130 traffic programs listed before coupon_overflow's two coupon programs (whose
        // indices then pass 127), and 70 coupon programs of small budgets, spent mid-tick so
        // that bookings take lists in part. Both run, and their coupons are redeemed.
        let traffic: String = (0..130)
            .map(|k| {
                format!(
                    "[[program]]\nname = \"t{k}\"\nkind = \"traffic\"\nbudget = 1\n\
                     funded_by = {{ tencent = 1.0 }}\nplacement = \"moments\"\nmax_boost = 0.1\n\n"
                )
            })
            .collect();
        let coupons: String = (0..70)
            .map(|k| {
                format!(
                    "[[program]]\nname = \"c{k}\"\nkind = \"coupon\"\nbudget = {}\n\
                     funded_by = {{ alibaba = 1.0 }}\nthreshold = {}\ndiscount = 5\n\
                     topup_from = 0.8\ntopup = 0.3\n\n",
                    20 + k % 7 * 10,
                    60 + 2 * k
                )
            })
            .collect();
        for scenario in [
            with_programs_first("coupon_overflow", &traffic),
            with_programs_first("coupon_overflow", &coupons),
        ] {
            let plan = Plan::new(&scenario);
            let redeemed: u64 = (1..=3)
                .map(|rep| {
                    crate::engine::cohorts::simulate(&plan, 3, rep)
                        .count(crate::engine::Count::CouponOrders)
                })
                .sum();
            assert!(redeemed > 0, "{}: no coupon redeemed", scenario.name);
        }
    }
}
