//! Phase 3 of a tick: every session in one uniformly random arrival order, through steps 3–10.
//!
//! Sessions of users with one session this tick come as counts per class (user state but for
//! impressions served today, which no step here reads, and placement); so do the sessions of
//! users with several whose sessions cannot interact, by group of users with the same state and
//! placements ([`FreeGroup`]); the other several-session users come one by one. The arrival
//! order is drawn only as far as outcomes depend on it. An *epoch* is a stretch of the order
//! during which arrivals find the same live room (open or full) and the same programs able to
//! pay:
//! - at its start, the fate of every single session not yet resolved is drawn by class, in two
//!   layers (`fates::joint_law`): its fate without any coupon program, by the multinomial and
//!   stream the baseline uses (drawn once per tick and room state, and kept across epochs), then
//!   its fate under the available programs given that one (a multinomial per row of the joint
//!   law; for a session that would order without programs, read off its own latent basket and
//!   top-up draws, which the baseline's no-coupon orders share);
//! - a fate uses at most one room place and one coupon: its *kind*. What arrivals find depends
//!   only on how many sessions of each kind arrived, so the order is followed on kinds alone;
//! - every session arrives at an independent uniform time: the several-session users' sessions
//!   at times from their own streams, resolved one at a time with the code the `agents` engine
//!   runs. They cut the single sessions into *gaps*; how many singles fall in each gap, and of
//!   which kinds, come from the tick's [`Timeline`] and the epoch's [`Order`]: a binary tree of
//!   intervals of time, fixed by the cuts and keyed by each node's place in it, whose nodes split
//!   their sessions by binomial draws and their kinds by multivariate hypergeometric ones, so a
//!   run of gaps has the same kinds whether it is drawn gap by gap or at once, and a
//!   several-session user only one of two paired runs has moves the gaps near it, not all of
//!   them. While no gap could change anything whatever its sessions do, gaps are not drawn at
//!   all;
//! - when a gap changes what arrivals find, the session at which it changed is found by
//!   halving the gap's room- or coupon-using sessions (each half's kinds a multivariate
//!   hypergeometric draw), and the sessions using neither that come before it are a beta-binomial
//!   count (the number of items before the k-th of T marked ones in a uniform order). The epoch
//!   ends there: its sessions so far are dealt back to their classes and fates by kind (each
//!   item's share from a seed of its own) and booked, with latent draws chosen as [`Latents`]
//!   says;
//!   the others keep their classes and fates without programs (and basket draws) but lose their
//!   fates under the programs, drawn again given the former under what they now find (MODEL.md's
//!   first-come rule: a late session never sees the coupon it missed). When the room fills, only
//!   the live-bound sessions' fates without programs are drawn again.
//!
//! So the scenario and its baseline share every session's fate without programs and every
//! no-coupon basket wherever their classes agree: incremental figures come from the sessions a
//! coupon changed, not from two unrelated draws.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use smallvec::{SmallVec, smallvec};

use super::bookings::{Found, History, Take};
use super::fates::{self, Class, Coupon, End, Fate, Landing, Room, Tilt};
use super::money::{Batch, Draw, Owed, Run, Source, Taken};
use super::order::{Order, Timeline};
use super::samplers::{
    multinomial, multivariate_hypergeometric, multivariate_hypergeometric_by_ranks,
    multivariate_hypergeometric_keyed, unit_uniform, unmarked_before,
};
use super::{Clicked, Individual, Listed, Next, Placements, Sim, State, Step, keyed};
use crate::engine::rng::{Stream, mix64};
use crate::engine::story::{self, SessionDraws, Shopper, Tally, TickSessions};
use crate::engine::{Count, Plan, WorkMeter};

/// What an arriving session finds: the live room, and which programs can still pay one charge.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Avail {
    room: Room,
    programs: Vec<bool>,
}

/// `n` single sessions of one class with one fate under what the epoch's arrivals find (`fate`)
/// and one fate without any coupon program (`from`, the `base`-th of the class's base law);
/// `law` is the coupon law behind `fate` ([`NO_LAW`] for jump failures). Its indices are kept in
/// 32 bits, so that an item takes 40 bytes: an epoch lists every class's unresolved sessions in
/// items (see [`SessionScratch`]).
#[derive(Clone, Copy, Debug)]
struct Item {
    class: u32,
    base: u32,
    from: Fate,
    fate: Fate,
    law: u32,
    n: u64,
    /// For sessions that would be orders without programs: the cell of their latent draws in
    /// the class's list for `base` (`Arrivals::latents`).
    cell: u32,
}

const _: () = assert!(std::mem::size_of::<Item>() == 40);

/// An item's `law` when its sessions meet none: a jump failure (`usize::MAX` in the fate laws).
const NO_LAW: u32 = u32::MAX;

impl Item {
    /// `n` sessions of class `c` with base fate `base` (`from`), fate `fate` under coupon law
    /// `law`, and latent draws in cell `cell`.
    fn new(
        (c, base, from): (usize, usize, Fate),
        fate: Fate,
        law: usize,
        n: u64,
        cell: usize,
    ) -> Self {
        Item {
            class: u32::try_from(c).expect("fewer than 2^32 classes"),
            base: u32::try_from(base).expect("fewer than 2^32 base fates"),
            from,
            fate,
            law: match law {
                usize::MAX => NO_LAW,
                law => u32::try_from(law)
                    .ok()
                    .filter(|&law| law != NO_LAW)
                    .expect("fewer than 2^32 - 1 coupon laws"),
            },
            n,
            cell: u32::try_from(cell).expect("fewer than 2^32 cells"),
        }
    }

    fn class(&self) -> usize {
        self.class as usize
    }

    fn base(&self) -> usize {
        self.base as usize
    }

    fn law(&self) -> usize {
        debug_assert_ne!(self.law, NO_LAW, "jump failures meet no coupon law");
        self.law as usize
    }

    fn cell(&self) -> usize {
        self.cell as usize
    }
}

/// The lists of items an epoch draws and books, kept from one epoch to the next so that they
/// grow once per replication, not once per epoch.
#[derive(Default)]
pub(super) struct SessionScratch {
    items: Vec<Item>,
    booked: Vec<Item>,
}

/// A class's unresolved sessions by fate without any coupon program (in the order of the base
/// law of `fates::joint_law`), and the room that law was for.
type BaseFates = (Room, Vec<(Fate, u64)>);

/// The latent draws (basket deviate, top-up uniform) of a class's unresolved sessions whose fate
/// without programs is one order fate, in the order they were made, each in a *cell*: its coupon
/// under the coupon law `law`. A latent draw is a function of its place in the class's basket
/// stream ([`latent_deviate`], [`latent_topup`]), and a list's draws have consecutive places, so
/// the list keeps only where they start, how many there are, and its laws and bookings
/// ([`History`]): the draws are made again wherever their values are wanted (to count them by
/// cell under a new law, to value them), and which of them a booking took is found again from
/// its counts.
///
/// While every law met offers no coupon, the draws are not made until their sessions are booked
/// (`fresh` counts them; they take the next places of the class's basket stream), so that a
/// baseline keeps none; the first law that offers one makes them all.
///
/// Booking d sessions of a cell takes a uniformly random d of its draws, so that paired runs that
/// book a few sessions more or fewer book nearly the same draws: while the draws have been put
/// in cells by one law only, its first d in place order (which does not depend on the values);
/// once a new law has put them in cells again (after some were booked, the order of a new cell's
/// members depends on which old cells they came from), a uniformly random d by selection
/// sampling on uniforms that hash the draws' places, keyed afresh for each booking. A booked
/// draw keeps its place in the list and is valued, with the coupon it was booked with, with the
/// list's others when the last booking takes the list whole ([`Latents::take_all`], which every
/// list with made draws meets by the end of its tick).
#[derive(Clone, Default)]
struct Latents {
    law: Option<usize>,
    /// The coupons `law` can give these orders (in code order) and how many draws not booked
    /// have each.
    cells: Vec<(Coupon, usize)>,
    /// The keys of the class's basket stream, and the place in it of the list's first draw.
    key: LatentKey,
    start: u64,
    /// Made draws, and those not booked yet.
    made: usize,
    kept: usize,
    /// The laws that put the made draws in cells, and the bookings under each.
    history: History,
    /// The GMV cell of the list's orders (`Funnel::gmv_index`), once a booking took some.
    gmv_cell: usize,
    /// Whether the draws have been put in cells by one law only since they were made.
    ordered: bool,
    /// Whether the current booking took made draws (valued with the list, in the tick's
    /// [`Batch`]), not sessions whose draws are not made yet.
    took_drawn: bool,
    /// Sessions whose draws are not made yet (only while none are).
    fresh: u64,
}

impl Latents {
    /// Makes the list's `fresh` draws: the next places of the basket stream `owed`.
    fn make(&mut self, owed: &mut Owed) {
        (self.key, self.start) = owed.take_places(self.fresh);
        self.made = self.fresh as usize;
        self.kept = self.made;
        self.history = History::default();
        self.fresh = 0;
        self.law = None;
    }

    /// Puts the `m` sessions' draws not booked in cells by coupon law `law` (`coupon_law`);
    /// returns how many latent deviates it made to do so (every made draw's, replays included).
    fn regroup(&mut self, law: usize, coupon_law: &Arc<fates::CouponLaw>, m: u64) -> u64 {
        self.ordered = self.law.is_none();
        self.law = Some(law);
        self.cells.clear();
        if self.made > 0 {
            self.history.regroup(Arc::clone(coupon_law));
        }
        if coupon_law.offers_nothing() {
            self.cells.push((Coupon::None, m as usize));
            return 0;
        }
        let mut counts = vec![0; coupon_law.plain_coupons().len()];
        if self.kept == self.made {
            // Nothing booked: every draw counts, its cell from its own draws. (This runs on the
            // scenario's own thread for most made draws: going through the replay instead cost
            // 0.02 s of a national replication's wall time.)
            let places = self.start..self.start + self.made as u64;
            count_in_cells(&self.key, places, coupon_law, &mut counts);
        } else {
            // The new law is the history's last: a draw no booking took comes in its cell.
            self.history
                .replay(&self.key, self.start, self.made, |_, found| {
                    if let Found::Cell(cell) = found {
                        counts[cell] += 1;
                    }
                });
        }
        debug_assert_eq!(counts.iter().sum::<usize>(), self.kept);
        let coupons = coupon_law.plain_coupons().iter().copied();
        self.cells.extend(coupons.zip(counts));
        self.made as u64
    }

    /// Whether booking `booked[k]` sessions of each cell k takes every draw left (as at the end
    /// of a tick), made draws.
    fn takes_all(&self, booked: &[usize]) -> bool {
        self.kept > 0 && self.cells.iter().zip(booked).all(|(c, &d)| c.1 == d)
    }

    /// Books every session left ([`Latents::takes_all`]): the draws, for GMV cell `cell`, each
    /// valued with its cell's coupon under the list's law if no booking before took it.
    fn take_all(&mut self, cell: usize) -> Taken {
        for cell in &mut self.cells {
            cell.1 = 0;
        }
        self.hand_over(cell, true)
    }

    /// The draws booked so far, if any, for a list whose sessions not booked yet start afresh
    /// (their fates drawn again): only those a booking took are to be valued.
    fn take_booked(&mut self) -> Option<Taken> {
        // The made draws not kept are the booked ones.
        if self.made == self.kept {
            return None;
        }
        debug_assert!(self.history.any_booked());
        Some(self.hand_over(self.gmv_cell, false))
    }

    /// The made draws, to be valued for GMV cell `cell`: those not booked too if `whole`.
    fn hand_over(&mut self, cell: usize, whole: bool) -> Taken {
        self.kept = 0;
        Taken {
            cell,
            whole,
            key: self.key,
            start: self.start,
            n: std::mem::take(&mut self.made),
            history: std::mem::take(&mut self.history),
        }
    }

    /// Books `booked[k]` sessions of each cell k: the draws they take (see [`Latents`]; `key`
    /// keys this booking's uniforms) are found again from the booking's counts wherever they are
    /// wanted; while the draws are not made, only their count goes down. (A booking that takes
    /// every draw left hands them over whole instead: [`Latents::take_all`].)
    fn book(&mut self, booked: &[usize], key: u64) {
        for (cell, &d) in self.cells.iter_mut().zip(booked) {
            cell.1 -= d;
        }
        if self.kept == 0 {
            self.fresh -= booked.iter().sum::<usize>() as u64;
            return;
        }
        // Per cell: sessions to take, draws to see, whether the first ones are taken (place
        // order, or the whole cell), and the coupon of a draw taken.
        let takes = booked
            .iter()
            .zip(&self.cells)
            .map(|(&d, c)| Take {
                wanted: d,
                seen: c.1 + d,
                first: self.ordered || c.1 == 0,
                coupon: c.0,
            })
            .collect();
        self.kept -= booked.iter().sum::<usize>();
        self.history.book(key, takes);
    }
}

/// The basket stream of a class (its index and stream key) for its sessions with fates `code`
/// this tick, with the draws it owes: `index` 0 for the latent draws of orders without
/// programs, 1 for the orders a coupon made. It goes on from booking to booking, so the draws
/// do not depend on how the tick's sessions were split into bookings; draws whose values alone
/// are wanted are owed until the tick is over (see [`money`](super::money)).
fn basket_stream(
    baskets: &mut Baskets,
    (seed, rep, t): (u64, u64, usize),
    (class, class_key): (usize, u64),
    code: u64,
    index: u64,
) -> &mut Owed {
    let Baskets { at, streams } = baskets;
    let i = *at.entry((class, code)).or_insert_with(|| {
        let mut stream = keyed(seed, rep, t, mix64(class_key ^ code), Step::Baskets, index);
        streams.push(Owed::new(if index == 0 {
            Source::Places {
                key: LatentKey::new(stream.next_u64()),
                next: 0,
            }
        } else {
            Source::Stream(stream)
        }));
        streams.len() - 1
    });
    &mut streams[i]
}

/// A tick's basket streams, in the order they were first wanted, each found by its (class,
/// fates): the list itself goes over with the tick's money.
#[derive(Default)]
struct Baskets {
    at: rustc_hash::FxHashMap<(usize, u64), usize>,
    streams: Vec<Owed>,
}

/// The keys of a basket stream's latent draws, derived once from the stream's key.
///
/// The random bits at place p are SplitMix64-like outputs, `mix64(first + p γ)` and
/// `mix64(top + p γ)`, with an odd increment γ of the stream's own (with its bits mixed as
/// SplitMix64's split asks): the places of two streams then lie on different lines, which meet
/// at single points at most (a chance of about 2^-64 per pair of draws), instead of runs of
/// equal values wherever two keys happen to lie a few increments apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LatentKey {
    first: u64,
    top: u64,
    gamma: u64,
    slow: u64,
}

impl LatentKey {
    pub(super) fn new(key: u64) -> Self {
        let mut gamma = mix64(key ^ GAMMA_KEY) | 1;
        if (gamma ^ (gamma >> 1)).count_ones() < 24 {
            gamma ^= 0xAAAA_AAAA_AAAA_AAAA;
        }
        LatentKey {
            first: key,
            top: mix64(key ^ TOP_UP_KEY),
            gamma,
            slow: mix64(key ^ SLOW_PATH_KEY),
        }
    }

    /// The bits of place `place` in the sequence that starts at `start`.
    fn bits(&self, start: u64, place: u64) -> u64 {
        mix64(start.wrapping_add(place.wrapping_mul(self.gamma)))
    }
}

/// The latent draws of the session at place `place` of the basket stream with keys `key`: its
/// basket deviate and its top-up uniform (the tests' view: the engine makes each alone, where
/// it is wanted).
#[cfg(test)]
pub(super) fn latent_at(key: &LatentKey, place: u64) -> (f64, f64) {
    let u = latent_topup(key, place);
    (latent_deviate(key, place), u)
}

/// The top-up uniform of the latent draw at place `place` of the basket stream with keys `key`,
/// from the key's second sequence: a function of the place, so that it can be made again
/// wherever it is wanted instead of kept. Always inlined, as [`latent_deviate`] is.
#[inline(always)]
pub(super) fn latent_topup(key: &LatentKey, place: u64) -> f64 {
    unit_uniform(key.bits(key.top, place))
}

/// A latent draw's top-up uniform, made the first time it is wanted (most cells do not depend
/// on it: [`CouponLaw::plain_cell`](fates::CouponLaw::plain_cell)).
pub(super) struct TopUp<'k> {
    key: &'k LatentKey,
    place: u64,
    u: Option<f64>,
}

impl<'k> TopUp<'k> {
    pub(super) fn new(key: &'k LatentKey, place: u64) -> Self {
        TopUp {
            key,
            place,
            u: None,
        }
    }

    pub(super) fn get(&mut self) -> f64 {
        let (key, place) = (self.key, self.place);
        *self.u.get_or_insert_with(|| latent_topup(key, place))
    }
}

/// The basket deviate of the latent draw at place `place` of the basket stream with keys `key`,
/// from the random bits of [`Place`] (a function of the place, as [`latent_topup`] is; all that
/// valuing a draw of a known coupon needs).
/// Always inlined: it runs once per made draw in [`for_each_deviate`], whose batches it fills
/// (not inlined, the call took 2% more of a national replication's wall time).
#[inline(always)]
pub(super) fn latent_deviate(key: &LatentKey, place: u64) -> f64 {
    StandardNormal.sample(&mut Place::new(key, place))
}

/// `each(place, z)` for the places `places` of the basket stream with keys `key`, in order, with
/// their basket deviates ([`latent_deviate`]), made a batch at a time before their uses: the
/// deviates do not depend on each other, and made apart from what is done with them they are
/// made several at once (in a national replication, 5% less CPU time than one by one).
#[inline(always)]
pub(super) fn for_each_deviate(
    key: &LatentKey,
    places: Range<u64>,
    mut each: impl FnMut(u64, f64),
) {
    const BATCH: u64 = 16;
    let mut zs = [0.0; BATCH as usize];
    for first in places.clone().step_by(BATCH as usize) {
        let zs = &mut zs[..(places.end - first).min(BATCH) as usize];
        for (z, place) in zs.iter_mut().zip(first..) {
            *z = latent_deviate(key, place);
        }
        for (&z, place) in zs.iter().zip(first..) {
            each(place, z);
        }
    }
}

/// The cell pass: adds to `counts[k]` the draws at `places` of the basket stream with keys `key`
/// whose coupon under `law` is its k-th plain coupon ([`CouponLaw::plain_cell`]), each made from
/// its place.
///
/// [`CouponLaw::plain_cell`]: fates::CouponLaw::plain_cell
#[inline(always)]
pub(super) fn count_in_cells(
    key: &LatentKey,
    places: Range<u64>,
    law: &fates::CouponLaw,
    counts: &mut [usize],
) {
    for_each_deviate(key, places, |place, z| {
        let u = || latent_topup(key, place);
        counts[usize::from(law.plain_cell(z, u))] += 1;
    });
}

/// Set apart the keys derived from a basket stream's: the increment, the top-up bits, the
/// normal sampler's rare further bits.
const GAMMA_KEY: u64 = 0x6761_6d6d_612d_6b65;
const TOP_UP_KEY: u64 = 0x746f_702d_7570_2d62;
const SLOW_PATH_KEY: u64 = 0x736c_6f77_2d70_6174;

/// The random bits of the latent draw at one place of a basket stream: first the key's first
/// sequence at that place (all that the normal sampler's ziggurat takes, but in about one draw
/// in a hundred), then the outputs of a stream seeded by the key and the place.
struct Place<'k> {
    key: &'k LatentKey,
    place: u64,
    first: bool,
    rest: Option<Stream>,
}

impl<'k> Place<'k> {
    fn new(key: &'k LatentKey, place: u64) -> Self {
        Place {
            key,
            place,
            first: true,
            rest: None,
        }
    }
}

impl rand::TryRng for Place<'_> {
    type Error = std::convert::Infallible;

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        if std::mem::take(&mut self.first) {
            return Ok(self.key.bits(self.key.first, self.place));
        }
        let seed = self.key.slow ^ mix64(self.place);
        let rest = self.rest.get_or_insert_with(|| Stream::seed_from_u64(seed));
        Ok(rest.next_u64())
    }

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bits = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&bits[..chunk.len()]);
        }
        Ok(())
    }
}

/// Users by impressions served today and redemptions so far (those the class's own counters
/// stand for: see [`Sim::classes`]).
type ByServed = Vec<((u32, SmallVec<[u32; 4]>), u64)>;

/// A class's sessions of several-session users resolved as its members, by group of users: the
/// group's index in `Arrivals::free` and the session's index among each of its users' sessions
/// (one slot per user of the group).
type Slots = Vec<(u32, u32)>;

/// Several-session users whose sessions are resolved as members of their classes
/// ([`Sim::sessions_independent`]), grouped by state and the placements of their sessions (in
/// placement order): a group's users are interchangeable, so their sessions are counted, not
/// listed, and so are their outcomes.
struct FreeGroup {
    state: State,
    /// A stream key of the state and placements: equal in the scenario and its baseline
    /// wherever the group is.
    key: u64,
    users: u64,
    /// Per session: how many of the group's users had each change (dealt by its class).
    dealt: Vec<Vec<(Change, u64)>>,
}

/// A tick's single-session classes (state with impressions served today 0, placement), each
/// with its users by impressions served today and its slots.
type Classes = BTreeMap<(State, usize), (ByServed, Slots)>;

/// What a session changes in its user's state: an Alipay set-up, and the coupon slot of a
/// redemption.
type Change = (bool, Option<usize>);

/// A list's sessions booked in one epoch, by cell (inline for the usual few cells).
type BookedCells = SmallVec<[usize; 8]>;

/// A class's sessions by what they changed (inline for the usual few changes).
type ChangeCounts = SmallVec<[(Change, u64); 2]>;

/// What a fate uses: kind 0 nothing, else `live + 2 × (1 + program)` with `live` 1 for a place in
/// the room (and 2 × 0 for no coupon).
fn kind(fate: Fate) -> usize {
    let Fate::Landed(landing, end) = fate else {
        return 0;
    };
    let live = usize::from(landing == Landing::Live);
    let coupon = match end {
        End::Order { coupon, .. } => coupon.program().map_or(0, |j| j + 1),
        _ => 0,
    };
    live + 2 * coupon
}

/// One tick's phase 3 in progress.
struct Arrivals<'n> {
    t: usize,
    /// Single-session classes (state, placement), in state order.
    classes: Vec<(State, usize)>,
    /// Each class's stream key (of its state and placement): equal in the scenario and its
    /// baseline wherever the class is.
    keys: Vec<u64>,
    /// Single sessions of each class not yet resolved.
    left: Vec<u64>,
    /// Per class, its users by impressions served today and redemption counts (the class's
    /// states have `served` 0 and the counts as [`Sim::as_in_class`] makes them); who among them
    /// had which outcome is drawn once the tick is over.
    served: Vec<ByServed>,
    /// Per class, the sessions of several-session users resolved as its members, dealt their
    /// outcomes with the users of `served`.
    slots: Vec<Slots>,
    /// Several-session users whose sessions are resolved as members of their classes, by group
    /// (their sessions are their classes' slots).
    free: Vec<FreeGroup>,
    /// Per class, how many of its sessions booked so far had each change of their users' state
    /// (an Alipay set-up, the program slot of a redeemed coupon).
    outcomes: Vec<ChangeCounts>,
    tick: TickSessions,
    /// Single sessions not arrived yet in each gap (the stretches before each several-session
    /// user's session, and after the last).
    gaps: Vec<u64>,
    /// The tick's single sessions over time.
    timeline: Timeline,
    /// The gap arriving now.
    gap: usize,
    /// How many times fates were drawn or booked this tick (part of the kernel and
    /// deal streams' keys).
    epoch: u64,
    /// Per class, the fates without any coupon program of its unresolved sessions (counts by the
    /// base law's fates), and the room they were drawn for: kept across epochs, so that only
    /// the fates under the programs are drawn again when what arrivals find changes.
    base: Vec<Option<BaseFates>>,
    /// Basket streams of this tick by (class, fates), continued from booking to booking, with
    /// the draws they owe.
    baskets: Baskets,
    /// The tick's money: the lists of latent draws that bookings took whole or handed over, to
    /// be valued apart (the draws owed stay with `baskets` until the tick ends).
    money: Batch,
    /// Per class and base fate that is an order, the latent draws (their places and bookings) of
    /// the unresolved sessions with that fate without programs.
    latents: Vec<ClassLatents>,
    next: &'n mut Next,
}

/// A class's lists of latent draws by base fate, those of order fates only (most fates are
/// not orders, and a busy tick has thousands of classes' lists): a fate without one has the
/// default list, which is what a list that started afresh is.
#[derive(Clone, Default)]
struct ClassLatents(Vec<(usize, Latents)>);

impl ClassLatents {
    /// Where base fate `i`'s list is, or would go (the lists are in fate order).
    fn at(&self, i: usize) -> Result<usize, usize> {
        self.0.binary_search_by_key(&i, |x| x.0)
    }

    fn get(&self, i: usize) -> Option<&Latents> {
        self.at(i).ok().map(|at| &self.0[at].1)
    }

    /// Base fate `i`'s list, made (default) if it has none yet.
    fn get_mut(&mut self, i: usize) -> &mut Latents {
        let at = self.at(i).unwrap_or_else(|at| {
            self.0.insert(at, (i, Latents::default()));
            at
        });
        &mut self.0[at].1
    }

    /// Base fate `i`'s list starts afresh: the draws booked from it so far, if any
    /// ([`Latents::take_booked`]).
    fn restart(&mut self, i: usize) -> Option<Taken> {
        let at = self.at(i).ok()?;
        self.0.remove(at).1.take_booked()
    }

    /// Every list starts afresh: the draws booked from them so far, in fate order.
    fn restart_all(&mut self) -> impl Iterator<Item = Taken> + '_ {
        self.0
            .drain(..)
            .filter_map(|(_, mut list)| list.take_booked())
    }

    fn iter(&self) -> impl Iterator<Item = &Latents> {
        self.0.iter().map(|x| &x.1)
    }
}

/// The current epoch: its sessions' fates, and how many of each kind have arrived.
struct Epoch {
    found: Avail,
    items: Vec<Item>,
    /// Sessions of each kind not yet arrived.
    kinds_left: Vec<u64>,
    /// Sessions of each kind arrived (and booked on the room and budgets).
    arrived: Vec<u64>,
    /// The arrival order of the sessions not yet arrived, over the gaps.
    order: Option<Order>,
    /// Sessions of the gaps before `pending_to` whose kinds are not drawn yet (nothing could
    /// change while they arrived).
    pending: u64,
    pending_to: usize,
    /// Scratch space of [`Sim::unchangeable`].
    bound: Vec<u64>,
}

impl Arrivals<'_> {
    /// Frees the tick's working lists once its sessions are resolved and its users returned,
    /// before its money is handed over: what is left is the money, the free groups and the next
    /// tick's cohorts (the money's streams go over as they are, in a list).
    fn release_lists(&mut self) {
        debug_assert!(
            self.latents
                .iter()
                .flat_map(|c| c.iter())
                .all(|l| l.made == l.kept),
            "every list with booked draws was taken whole or handed over"
        );
        self.classes = Vec::new();
        self.keys = Vec::new();
        self.left = Vec::new();
        self.served = Vec::new();
        self.slots = Vec::new();
        self.outcomes = Vec::new();
        self.gaps = Vec::new();
        self.timeline.release();
        self.base = Vec::new();
        self.latents = Vec::new();
    }
}

impl Sim<'_, '_> {
    /// Phase 3 of tick `t`: every session of `clicked`, in one uniformly random arrival order;
    /// the users return to `next` with their new state.
    pub(super) fn resolve_sessions(&mut self, t: usize, clicked: Clicked, next: &mut Next) {
        let (merged, free, mut multi) = self.classes(t, clicked);
        let (classes, (served, slots)): (Vec<_>, (Vec<_>, Vec<_>)) = merged.into_iter().unzip();
        let left: Vec<u64> = served
            .iter()
            .zip(&slots)
            .map(|(h, s)| h.iter().map(|x| x.1).sum::<u64>() + slot_users(s, &free))
            .collect();
        // The several-session users' sessions in a uniformly random order: sorted by a key from
        // each session's own stream (ties, of chance ~ sessions² / 2^65, fall back to a fixed order).
        let sessions = (0..multi.len()).map(|i| multi.sessions(i)).sum();
        let mut order: Vec<(u64, u32, u32)> = Vec::with_capacity(sessions);
        for i in 0..multi.len() {
            for idx in 0..multi.sessions(i) {
                let key = self.session_stream(t, multi.unit(i), idx).next_u64();
                order.push((key, i as u32, idx as u32));
            }
        }
        order.sort_unstable();
        // Equal keys would mean two sessions drawn from one stream (keys of different streams
        // meet with chance ~ sessions² / 2^65): their users would share every draw.
        debug_assert!(
            order.windows(2).all(|w| w[0].0 != w[1].0),
            "two several-session users' sessions share a stream"
        );
        // The times go to the timeline; the sessions, in their order, are all that is left.
        let times = order.iter().map(|x| x.0).collect();
        let order: Vec<(u32, u32)> = order.into_iter().map(|x| (x.1, x.2)).collect();
        // The single sessions at independent uniform times, cut by the several-session users'.
        let singles: u64 = left.iter().sum();
        let (timeline, gaps) = Timeline::new((self.seed, self.rep, t), singles, times);
        let n_classes = classes.len();
        let mut ar = Arrivals {
            t,
            keys: classes
                .iter()
                .map(|(state, p)| mix64(state.key() ^ *p as u64))
                .collect(),
            classes,
            left,
            served,
            slots,
            free,
            outcomes: vec![ChangeCounts::new(); n_classes],
            base: vec![None; n_classes],
            latents: vec![ClassLatents::default(); n_classes],
            baskets: Baskets::default(),
            money: Batch::new(t),
            tick: TickSessions::default(),
            gaps,
            timeline,
            gap: 0,
            epoch: 0,
            next,
        };
        let mut epoch = self.start_epoch(&mut ar);
        for (k, &(i, idx)) in order.iter().enumerate() {
            let later = (order.len() - k) as u64;
            ar.gap = k;
            self.arrive_singles(&mut ar, &mut epoch, later);
            let (i, idx) = (i as usize, idx as usize);
            let mut state = multi.state(i).clone();
            let session = (multi.placement(i, idx), multi.unit(i), idx);
            self.resolve_literal(&mut ar, &mut state, session);
            multi.set_state(i, state);
            // Inside a deferred stretch nothing could change, this session included; otherwise
            // it may have filled the room or spent a program's last coupon.
            if epoch.pending == 0 {
                self.settle(&mut ar, &mut epoch);
            }
        }
        ar.gap = ar.gaps.len() - 1;
        self.arrive_singles(&mut ar, &mut epoch, 0);
        self.draw_pending(&mut ar, &mut epoch);
        self.end_epoch(&mut ar, epoch);
        self.return_users(&mut ar);
        drop(order);
        ar.release_lists();
        self.value_money(&mut ar);
        for (state, n) in multi.by_state() {
            *ar.next.entry(state).or_insert(0) += n;
        }
        self.return_free(t, std::mem::take(&mut ar.free), ar.next);
    }

    /// The tick's single-session classes (state but for impressions served today, placement),
    /// each with its users by impressions served today and redemptions and its slots; the
    /// several-session users resolved as members of their classes (see
    /// [`Sim::sessions_independent`]); and the others, resolved one session at a time.
    ///
    /// Phase 3 reads neither impressions served today nor a redemption count but to compare it
    /// with its program's per-user limit, and a session redeems at most one coupon: users who
    /// differ only there, with the same programs within their limits, share a class, whose state
    /// counts 0 redemptions of a program within its limit and the limit of one reached.
    fn classes(&self, t: usize, clicked: Clicked) -> (Classes, Vec<FreeGroup>, Listed) {
        let mut merged = Classes::new();
        let mut single: Vec<_> = clicked.single.into_iter().collect();
        single.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((mut state, p), n) in single {
            let served = std::mem::take(&mut state.served);
            let redeemed = state.redeemed.clone();
            self.as_in_class(&mut state.redeemed);
            merged
                .entry((state, p))
                .or_default()
                .0
                .push(((served, redeemed), n));
        }
        // Several-session users whose sessions cannot change one another's law join the
        // classes, by group of users with the same state and placements: each session of the
        // group is one more member of its class per user, a slot, and its outcomes are dealt
        // to the slot once the tick is over.
        // The others are taken out in order (the users come one by one, so their list grows
        // with the population: it is not copied whole).
        let mut counted = clicked.free;
        // The list lives through phase 3: it does not keep the room it grew into.
        let multi = clicked.multi.split(
            |ind| !self.sessions_independent(t, ind),
            |ind| count_in_group(&mut counted, ind),
        );
        let groups: BTreeMap<(State, Placements), u64> = counted.into_iter().collect();
        let mut free = Vec::with_capacity(groups.len());
        for (g, ((state, placements), users)) in groups.into_iter().enumerate() {
            let mut in_class = State {
                served: 0,
                ..state.clone()
            };
            self.as_in_class(&mut in_class.redeemed);
            let group = u32::try_from(g).expect("fewer than 2^32 groups");
            for (idx, &p) in placements.iter().enumerate() {
                let idx = u32::try_from(idx).expect("fewer than 2^32 sessions");
                merged
                    .entry((in_class.clone(), p))
                    .or_default()
                    .1
                    .push((group, idx));
            }
            let key = placements
                .iter()
                .fold(state.key(), |h, &p| mix64(h ^ mix64(p as u64 + 1)));
            free.push(FreeGroup {
                state,
                key,
                users,
                dealt: vec![Vec::new(); placements.len()],
            });
        }
        (merged, free, multi)
    }

    /// A user's redemption counts as its class counts them: 0 within the program's per-user
    /// limit, the limit once reached.
    fn as_in_class(&self, redeemed: &mut [u32]) {
        for (r, &limit) in redeemed.iter_mut().zip(&self.plan.coupon_limits) {
            *r = if *r < limit { 0 } else { limit };
        }
    }

    /// The stream of a several-session user's session `idx` in tick `t`: its first number is
    /// the session's arrival key, the rest its draws.
    fn session_stream(&self, t: usize, unit: u64, idx: usize) -> Stream {
        keyed(self.seed, self.rep, t, unit, Step::Session, idx as u64)
    }

    /// Resolves a several-session user's session by the `agents` engine's code, as it arrives:
    /// the user in `state`, the session its `idx`-th (on `placement`; `unit` the user's stream
    /// key).
    fn resolve_literal(
        &mut self,
        ar: &mut Arrivals,
        state: &mut State,
        (placement, unit, idx): (usize, u64, usize),
    ) {
        let t = ar.t;
        let mut rng = self.session_stream(t, unit, idx);
        rng.next_u64();
        let draws = SessionDraws::draw(&mut rng);
        let segment = state.segment as usize;
        let shopper = Shopper {
            segment,
            app: state.app,
            alipay: &mut state.alipay,
            redeemed: &mut state.redeemed,
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

    /// Whether a several-session user's sessions in tick `t` are independent given its state,
    /// so that they can be resolved as members of their classes: no session can set up Alipay
    /// (the user holds it, or payment is interoperable), and no coupon program that may offer
    /// them a coupon (the user's segment, a budget that can pay as the tick starts: within a tick
    /// it only runs down) has a per-user limit that its sessions could reach (redemptions so far
    /// plus its sessions on the program's placements at most the limit, or the limit already
    /// reached). Where no program can pay, the rule is the baseline's, so a scenario whose
    /// budgets are all spent is its baseline exactly.
    fn sessions_independent(&self, t: usize, ind: &Individual) -> bool {
        let plan = self.plan;
        independent_if(plan, &ind.state, &ind.sessions, |j| {
            !self.ledger.can_charge(plan, j, t)
        })
    }

    /// The fates of every unresolved single session under what arrivals find now.
    fn start_epoch(&mut self, ar: &mut Arrivals) -> Epoch {
        self.free_valued();
        let found = self.avail(ar);
        let block: Vec<(usize, u64)> = ar
            .left
            .iter()
            .enumerate()
            .filter(|x| *x.1 > 0)
            .map(|(c, &n)| (c, n))
            .collect();
        let items = self.draw_fates(ar, &block, &found);
        let mut kinds_left = vec![0; 2 * (self.plan.scenario.programs.len() + 1)];
        for item in &items {
            kinds_left[kind(item.fate)] += item.n;
        }
        // The order's draws are keyed by what arrivals find, which tells a tick's epochs apart
        // (it only ever changes one way).
        let programs = found
            .programs
            .iter()
            .fold(0u64, |bits, &p| bits << 1 | u64::from(p));
        let room = found.room as u64;
        let key = mix64(room << 32 ^ mix64(programs));
        let order = Order::new(
            (self.seed, self.rep, ar.t),
            key,
            &ar.timeline,
            &ar.gaps,
            kinds_left.clone(),
        );
        Epoch {
            found,
            items,
            arrived: vec![0; kinds_left.len()],
            kinds_left,
            order: Some(order),
            pending: 0,
            pending_to: ar.gap,
            bound: Vec::new(),
        }
    }

    /// The single sessions of the current gap arrive (then `later` literal sessions will, at
    /// most): none, some or all of them in this epoch, the rest in the following ones.
    fn arrive_singles(&mut self, ar: &mut Arrivals, epoch: &mut Epoch, later: u64) {
        let k = ar.gap;
        loop {
            // Nothing can change while these arrive (plus those deferred and the next literal
            // one): defer drawing their kinds. Checked even for an empty stretch, since the
            // literal session after it needs to find what the deferred ones left.
            if self.unchangeable(ar, epoch, epoch.pending + ar.gaps[k], later.min(1)) {
                epoch.pending += ar.gaps[k];
                epoch.pending_to = k + 1;
                return;
            }
            self.settle(ar, epoch);
            let gap = ar.gaps[k];
            if gap == 0 {
                return;
            }
            let order = epoch.order.as_mut().expect("an epoch has an order");
            let mut stretch = Vec::new();
            order.take(&ar.timeline, k + 1, &mut stretch);
            ar.gaps[k] = 0;
            if !self.changes(ar, &epoch.found, &stretch) {
                self.consume(ar, epoch, &stretch);
                return;
            }
            let mut r = order.inside(&ar.timeline, k);
            let prefix = self.first_change(ar, &epoch.found, &stretch, &mut r);
            ar.gaps[k] = gap - prefix.iter().sum::<u64>();
            self.consume(ar, epoch, &prefix);
            let ended = std::mem::replace(epoch, self.empty_epoch());
            self.end_epoch(ar, ended);
            *epoch = self.start_epoch(ar);
        }
    }

    fn empty_epoch(&self) -> Epoch {
        Epoch {
            found: Avail {
                room: Room::Closed,
                programs: Vec::new(),
            },
            items: Vec::new(),
            kinds_left: Vec::new(),
            arrived: Vec::new(),
            order: None,
            pending: 0,
            pending_to: 0,
            bound: Vec::new(),
        }
    }

    /// Draws the deferred sessions' kinds; if they (or a literal session) changed what arrivals
    /// find, which can happen only at the last of them, the epoch ends there.
    fn settle(&mut self, ar: &mut Arrivals, epoch: &mut Epoch) {
        self.draw_pending(ar, epoch);
        if !self.finds(ar, &epoch.found) {
            let ended = std::mem::replace(epoch, self.empty_epoch());
            self.end_epoch(ar, ended);
            *epoch = self.start_epoch(ar);
        }
    }

    /// Draws the kinds of the deferred sessions and books them.
    fn draw_pending(&mut self, ar: &mut Arrivals, epoch: &mut Epoch) {
        if epoch.pending > 0 {
            let order = epoch.order.as_mut().expect("an epoch has an order");
            let from = order.next_gap();
            let mut stretch = Vec::new();
            order.take(&ar.timeline, epoch.pending_to, &mut stretch);
            ar.gaps[from..epoch.pending_to].fill(0);
            epoch.pending = 0;
            self.consume(ar, epoch, &stretch);
        }
    }

    /// Sessions of the given kinds arrived: their room places and coupons are booked.
    fn consume(&mut self, ar: &mut Arrivals, epoch: &mut Epoch, kinds: &[u64]) {
        for (k, &n) in kinds.iter().enumerate().filter(|x| *x.1 > 0) {
            epoch.kinds_left[k] -= n;
            epoch.arrived[k] += n;
            if k % 2 == 1 {
                ar.tick.admitted += n;
            }
            if k >= 2 {
                self.ledger.charge(self.plan, k / 2 - 1, n);
            }
        }
    }

    /// Of a stretch (kinds in uniformly random order) that changes what arrivals find, the
    /// sessions up to and including the one after which it changed, by kind.
    fn first_change(
        &mut self,
        ar: &mut Arrivals,
        found: &Avail,
        stretch: &[u64],
        r: &mut Stream,
    ) -> Vec<u64> {
        let mut before = vec![0; stretch.len()];
        let mut span: Vec<u64> = stretch.to_vec();
        span[0] = 0;
        let mut half = Vec::new();
        loop {
            let size: u64 = span.iter().sum();
            debug_assert!(size > 0, "a change needs a session that uses something");
            if size <= 1 {
                break;
            }
            multivariate_hypergeometric(&span, size / 2, r, &mut half);
            let trial: Vec<u64> = before.iter().zip(&half).map(|(a, b)| a + b).collect();
            if self.changes(ar, found, &trial) {
                span = half.clone();
            } else {
                before = trial;
                for (s, h) in span.iter_mut().zip(&half) {
                    *s -= h;
                }
            }
        }
        let marked: u64 = stretch[1..].iter().sum();
        let k = before.iter().sum::<u64>() + 1;
        let mut prefix: Vec<u64> = before.iter().zip(&span).map(|(a, b)| a + b).collect();
        prefix[0] = unmarked_before(k, marked, stretch[0], r);
        prefix
    }

    /// Ends an epoch: its arrived sessions, by kind, are dealt to its items uniformly and booked;
    /// the others go back to their classes, unresolved.
    fn end_epoch(&mut self, ar: &mut Arrivals, epoch: Epoch) {
        self.free_valued();
        let mut booked = std::mem::take(&mut self.session_scratch.booked);
        booked.clear();
        let mut dealt_to = vec![0; epoch.items.len()];
        // One kind's items, their sizes and shares: made once, at the largest size any kind
        // can need, and filled kind by kind.
        let mut of_kind: Vec<(usize, &Item)> = Vec::with_capacity(epoch.items.len());
        let mut sizes: Vec<u64> = Vec::with_capacity(epoch.items.len());
        let mut dealt = Vec::with_capacity(epoch.items.len());
        // A kind none of whose sessions arrived deals nothing (its draws are keyed: skipping
        // them shifts no other).
        for (k, &arrived) in epoch.arrived.iter().enumerate().filter(|x| *x.1 > 0) {
            of_kind.clear();
            of_kind.extend((epoch.items.iter().enumerate()).filter(|i| kind(i.1.fate) == k));
            sizes.clear();
            sizes.extend(of_kind.iter().map(|i| i.1.n));
            // Each item's share from a seed of its own (its class and fates), so that paired
            // runs whose arrivals of a kind differ by a few deal them a few apart.
            let deal = keyed(self.seed, self.rep, ar.t, k as u64, Step::Deal, ar.epoch).next_u64();
            let seed = |i: usize| {
                let item = of_kind[i].1;
                let fates = fate_code(item.from) << 32 | fate_code(item.fate);
                mix64(deal ^ mix64(ar.keys[item.class()] ^ fates))
            };
            multivariate_hypergeometric_by_ranks(&sizes, arrived, seed, &mut dealt);
            for (&(at, item), &d) in of_kind.iter().zip(&dealt) {
                dealt_to[at] = d;
                if d > 0 {
                    booked.push(Item { n: d, ..*item });
                }
                ar.left[item.class()] -= d;
                if let Some((_, base)) = &mut ar.base[item.class()] {
                    base[item.base()].1 -= d;
                }
            }
        }
        // Which latent draws the booked sessions take, list by list (the items of a list are
        // consecutive: `draw_fates` pushes a list's cells one after the other).
        // Each list's items share its class and landing, so its orders have one GMV cell.
        // Per list (class and base fate): its GMV cell and its sessions booked by cell.
        let mut lists: Vec<((usize, usize), usize, BookedCells)> = Vec::new();
        for (item, &d) in epoch.items.iter().zip(&dealt_to) {
            if d == 0 || !is_order(item.from) {
                continue;
            }
            let at = (item.class(), item.base());
            let cells = ar.latents[at.0].get(at.1).map_or(0, |l| l.cells.len());
            if lists.last().is_none_or(|x| x.0 != at) {
                lists.push((at, self.gmv_cell(ar, item), smallvec![0; cells]));
            }
            lists.last_mut().expect("pushed above").2[item.cell()] += d as usize;
        }
        for ((c, i), gmv_cell, booked) in lists {
            let unit = mix64(ar.keys[c] ^ mix64(i as u64 + 1));
            let key = keyed(self.seed, self.rep, ar.t, unit, Step::Take, ar.epoch).next_u64();
            let list = ar.latents[c].get_mut(i);
            list.took_drawn = list.kept > 0;
            if list.takes_all(&booked) {
                // The draws are handed over whole, to be valued with the tick's money.
                ar.money.taken.push(list.take_all(gmv_cell));
            } else {
                // Valued when the list is taken whole (or its fates drawn again).
                list.gmv_cell = gmv_cell;
                list.book(&booked, key);
            }
        }
        self.book(ar, &booked);
        self.session_scratch = SessionScratch {
            items: epoch.items,
            booked,
        };
    }

    /// Whether `singles` more single sessions of the epoch and `literal` several-session users'
    /// sessions, whatever their order, leave what arrivals find unchanged: at most
    /// min(singles, those of the epoch left that use the room) + literal take room places, and
    /// likewise for each program's coupons.
    fn unchangeable(&self, ar: &Arrivals, epoch: &mut Epoch, singles: u64, literal: u64) -> bool {
        let left = &epoch.kinds_left;
        let bound = &mut epoch.bound;
        bound.clear();
        bound.resize(left.len(), 0);
        let live: u64 = left.iter().skip(1).step_by(2).sum();
        bound[1] = singles.min(live) + literal;
        for j in 0..self.plan.scenario.programs.len() {
            let coupons = left[2 * (j + 1)] + left[2 * (j + 1) + 1];
            bound[2 * (j + 1)] = singles.min(coupons) + literal;
        }
        !self.changes(ar, &epoch.found, &epoch.bound)
    }

    /// Whether sessions of the given kinds, arriving now, leave later arrivals finding something
    /// else than `found` (a full room, a program that can no longer pay).
    fn changes(&self, ar: &Arrivals, found: &Avail, kinds: &[u64]) -> bool {
        let plan = self.plan;
        if found.room == Room::Open
            && let Some(cap) = plan.scenario.live_room.capacity_per_tick
        {
            let live: u64 = kinds.iter().skip(1).step_by(2).sum();
            if ar.tick.admitted + live >= cap {
                return true;
            }
        }
        let coupons = |j: usize| kinds[2 * (j + 1)] + kinds[2 * (j + 1) + 1];
        // What the coupons of every program charge funder f.
        let funder_use = |f: usize| -> u128 {
            (0..plan.scenario.programs.len())
                .flat_map(|j| plan.parts[j].iter().map(move |x| (j, x)))
                .filter(|x| x.1.0 == f)
                .map(|(j, &(_, part))| u128::from(coupons(j)) * u128::from(part))
                .sum()
        };
        found
            .programs
            .iter()
            .enumerate()
            .filter(|x| *x.1)
            .any(|(j, _)| {
                let charge = u128::from(plan.charge[j]);
                let room = u128::from(self.ledger.allowance_room(plan, j, ar.t));
                room < (u128::from(coupons(j)) + 1) * charge
                    || plan.parts[j].iter().any(|&(f, part)| {
                        self.ledger
                            .funder_room(f)
                            .is_some_and(|r| r < funder_use(f) + u128::from(part))
                    })
            })
    }

    /// Whether a session arriving now finds `found`.
    fn finds(&self, ar: &Arrivals, found: &Avail) -> bool {
        let plan = self.plan;
        self.room(ar) == found.room
            && found.programs.iter().enumerate().all(|(j, &can)| {
                can == (plan.coupon_slot[j].is_some() && self.ledger.can_charge(plan, j, ar.t))
            })
    }

    /// The live room a session arriving now finds.
    fn room(&self, ar: &Arrivals) -> Room {
        let plan = self.plan;
        if !plan.live_open[ar.t] {
            Room::Closed
        } else if plan
            .scenario
            .live_room
            .capacity_per_tick
            .is_none_or(|c| ar.tick.admitted < c)
        {
            Room::Open
        } else {
            Room::Full
        }
    }

    /// What a session arriving now finds.
    fn avail(&self, ar: &Arrivals) -> Avail {
        let plan = self.plan;
        let programs = (0..plan.scenario.programs.len())
            .map(|j| plan.coupon_slot[j].is_some() && self.ledger.can_charge(plan, j, ar.t))
            .collect();
        Avail {
            room: self.room(ar),
            programs,
        }
    }

    /// Fates of single sessions, class by class, under `found`, in two layers: each session's
    /// fate without any coupon program (drawn once per class and room state, with the stream and
    /// law the baseline uses, and kept across epochs), then its fate under the available
    /// programs given that one (from their joint law; the identity when no program is eligible).
    fn draw_fates(
        &mut self,
        ar: &mut Arrivals,
        block: &[(usize, u64)],
        found: &Avail,
    ) -> Vec<Item> {
        let mut base = Vec::new();
        let mut pairs = Vec::new();
        let mut counts = Vec::new();
        let mut weights = Vec::new();
        let mut items = std::mem::take(&mut self.session_scratch.items);
        items.clear();
        for &(c, n) in block {
            let (state, placement) = &ar.classes[c];
            let class = Class {
                segment: state.segment as usize,
                app: state.app,
                alipay: state.alipay,
                placement: *placement,
                redeemed: &state.redeemed,
            };
            fates::joint_law(
                self.plan,
                &mut self.laws,
                ar.t,
                class,
                found.room,
                &found.programs,
                &mut base,
                &mut pairs,
            );
            if !matches!(&ar.base[c], Some((room, _)) if *room == found.room) {
                self.draw_base_fates(ar, (c, n), found.room, &base, (&mut weights, &mut counts));
            }
            // Out of `ar` while its sessions are dealt to items (counting latent draws by cell
            // borrows the rest of `ar`); back in, unchanged, at the end of the class.
            let (_, drawn) = ar.base[c].take().expect("drawn above");
            debug_assert_eq!(drawn.iter().map(|x| x.1).sum::<u64>(), n);
            let mut kernel: Option<Stream> = None;
            // The pairs by base fate, each row in the joint law's order.
            pairs.sort_by_key(|x| x.0);
            let mut rest: &[fates::Pair] = &pairs;
            for (i, &(from, m)) in drawn.iter().enumerate() {
                let skip = rest.iter().take_while(|x| x.0 < i).count();
                rest = &rest[skip..];
                let len = rest.iter().take_while(|x| x.0 == i).count();
                let (row, after) = rest.split_at(len);
                rest = after;
                if m == 0 {
                    continue;
                }
                let item = |fate: Fate, law: usize, n: u64, cell: usize| {
                    Item::new((c, i, from), fate, law, n, cell)
                };
                if is_order(from) {
                    // Orders without programs: each session's coupon under the programs follows
                    // from its latent basket and top-up draws, kept until it is resolved.
                    let law = row.first().map_or(base[i].2, |x| x.3);
                    self.latents_in_cells(ar, (c, i, from, m), law, &mut items);
                    continue;
                }
                if row.len() <= 1 {
                    let (fate, law) = row.first().map_or((from, base[i].2), |x| (x.1, x.3));
                    items.push(item(fate, law, m, 0));
                    continue;
                }
                let (key, epoch) = (ar.keys[c], ar.epoch);
                let r = kernel.get_or_insert_with(|| {
                    keyed(self.seed, self.rep, ar.t, key, Step::Kernel, epoch)
                });
                weights.clear();
                weights.extend(row.iter().map(|x| x.2));
                multinomial(m, &weights, r, &mut counts);
                for (&(_, fate, _, law), &k) in row.iter().zip(&counts) {
                    if k > 0 {
                        items.push(item(fate, law, k, 0));
                    }
                }
            }
            ar.base[c] = Some((found.room, drawn));
        }
        ar.epoch += 1;
        if let Some(meter) = &self.plan.meter {
            WorkMeter::add(&meter.class_epochs, block.len() as u64);
            WorkMeter::add(&meter.outcomes, items.len() as u64);
        }
        items
    }

    /// Draws the fates without any coupon program of class `c`'s `n` unresolved sessions from
    /// the base law `base` under `room`, keyed by the room: in the class's first epoch, or when
    /// the room filled.
    fn draw_base_fates(
        &self,
        ar: &mut Arrivals,
        (c, n): (usize, u64),
        room: Room,
        base: &[(Fate, f64, usize)],
        (weights, counts): (&mut Vec<f64>, &mut Vec<u64>),
    ) {
        let index = u64::from(room == Room::Full);
        let mut r = keyed(self.seed, self.rep, ar.t, ar.keys[c], Step::Fates, index);
        match ar.base[c].take() {
            Some((Room::Open, mut kept)) if kept.len() == base.len() => {
                // The room filled: a session's fate depends on the room only if it was
                // admitted, so the others keep theirs (and their basket draws), and the
                // live-bound ones now overflow: their ends are drawn afresh from the
                // overflow's law (the base law given the landing).
                let mut live = 0;
                weights.clear();
                for (k, (fate, count)) in kept.iter_mut().enumerate() {
                    if let Fate::Landed(Landing::Live, _) = *fate {
                        live += std::mem::take(count);
                        *fate = base[k].0;
                        ar.money.taken.extend(ar.latents[c].restart(k));
                    }
                    debug_assert_eq!(*fate, base[k].0);
                    let overflow = matches!(base[k].0, Fate::Landed(Landing::Overflow, _));
                    weights.push(if overflow { base[k].1 } else { 0.0 });
                }
                multinomial(live, weights, &mut r, counts);
                for (x, &k) in kept.iter_mut().zip(counts.iter()) {
                    x.1 += k;
                }
                ar.base[c] = Some((room, kept));
            }
            _ => {
                weights.clear();
                weights.extend(base.iter().map(|x| x.1));
                multinomial(n, weights, &mut r, counts);
                let drawn = base
                    .iter()
                    .zip(counts.iter())
                    .map(|(x, &k)| (x.0, k))
                    .collect();
                ar.base[c] = Some((room, drawn));
                ar.money.taken.extend(ar.latents[c].restart_all());
            }
        }
    }

    /// The `m` unresolved sessions of class `c` whose fate without programs is the order fate
    /// `from` (base fate `i`), by their coupon under coupon law `law`: one item per cell that
    /// has some, pushed to `items`. Their latent draws are made when a law first offers a
    /// coupon, and put in cells again when the law changes.
    fn latents_in_cells(
        &self,
        ar: &mut Arrivals,
        (c, i, from, m): (usize, usize, Fate, u64),
        law: usize,
        items: &mut Vec<Item>,
    ) {
        let Fate::Landed(landing, End::Order { setup, .. }) = from else {
            unreachable!("latent draws are kept for orders only");
        };
        let list = ar.latents[c].get_mut(i);
        if list.law.is_none() && list.made == 0 && list.fresh == 0 {
            list.fresh = m;
        }
        let coupon_law = self.laws.shared(law);
        if list.fresh > 0 && !coupon_law.offers_nothing() {
            let tick = (self.seed, self.rep, ar.t);
            // The draws take the places after those the stream owes already.
            list.make(basket_stream(
                &mut ar.baskets,
                tick,
                (c, ar.keys[c]),
                fate_code(from),
                0,
            ));
        }
        debug_assert_eq!(list.kept as u64 + list.fresh, m);
        if list.law != Some(law) {
            let made = list.regroup(law, &coupon_law, m);
            if let Some(meter) = &self.plan.meter {
                WorkMeter::add(&meter.latent_draws, made);
            }
        }
        for (cell, &(coupon, n)) in list.cells.iter().enumerate().filter(|x| x.1.1 > 0) {
            let fate = Fate::Landed(landing, End::Order { setup, coupon });
            items.push(Item::new((c, i, from), fate, law, n as u64, cell));
        }
    }

    /// Counts, money and user states of resolved single sessions (their use of the room and of
    /// budgets was booked by [`Sim::consume`]).
    fn book(&mut self, ar: &mut Arrivals, items: &[Item]) {
        for item in items {
            let change = self.book_item(ar, item);
            let outcomes = &mut ar.outcomes[item.class()];
            match outcomes.iter_mut().find(|x| x.0 == change) {
                Some(x) => x.1 += item.n,
                None => outcomes.push((change, item.n)),
            }
        }
        ar.epoch += 1;
    }

    /// Books an item's counts, discount and money in its tick and funnel cells, and returns
    /// what its sessions change in their users' state: an Alipay set-up, a redemption.
    fn book_item(&mut self, ar: &mut Arrivals, item: &Item) -> Change {
        let t = ar.t;
        let (state, p) = &ar.classes[item.class()];
        let (p, g, n) = (*p, state.segment as usize, item.n);
        let mut change: Change = (false, None);
        let funnel = self.funnel;
        let tally = |out: &mut crate::engine::Outcome, count: Count, column: usize| {
            out.add(t, count, n);
            out.funnel[funnel.index(p, g, column, count)] += n;
        };
        let out = &mut self.out;
        let Fate::Landed(landing, end) = item.fate else {
            tally(out, Count::JumpFailures, 0);
            return change;
        };
        tally(out, Count::Landed, 0);
        let column = landing.column();
        match landing {
            Landing::Shop => {}
            Landing::Closed => tally(out, Count::LiveRoomClosed, column),
            Landing::Overflow => tally(out, Count::LiveRoomOverflow, column),
            Landing::Live => tally(out, Count::LiveRoomSessions, column),
        }
        let (setup, coupon) = match end {
            End::Leak => {
                tally(out, Count::LeakedToCompetitor, column);
                return change;
            }
            End::NoAttempt => return change,
            End::PayFail => {
                tally(out, Count::OrderAttempts, column);
                tally(out, Count::PaymentFailures, column);
                return change;
            }
            End::Order { setup, coupon } => (setup, coupon),
        };
        tally(out, Count::OrderAttempts, column);
        if setup {
            tally(out, Count::AlipaySetups, column);
            change.0 = true;
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
            let d = u128::from(self.plan.charge[j]) * u128::from(n);
            out.per_tick[t].discount += d;
            out.totals.discount += d;
            change.1 = self.plan.coupon_slot[j];
        }
        let cell = self.gmv_cell(ar, item);
        self.owe_value(ar, item, coupon, cell);
        change
    }

    /// The GMV cell of an item's orders.
    fn gmv_cell(&self, ar: &Arrivals, item: &Item) -> usize {
        let (state, p) = &ar.classes[item.class()];
        let Fate::Landed(landing, _) = item.fate else {
            unreachable!("orders landed");
        };
        self.funnel
            .gmv_index(*p, state.segment as usize, landing.column())
    }

    /// The money of an item's orders, which redeemed `coupon` (one basket per order), for the
    /// tick's [`Batch`]: orders whose latent draws were made are valued with their list (see
    /// [`Latents`]); otherwise the basket stream owes their draws, at its next places, valued
    /// when the tick is over.
    fn owe_value(&mut self, ar: &mut Arrivals, item: &Item, coupon: Coupon, cell: usize) {
        let class = (item.class(), ar.keys[item.class()]);
        let tick = (self.seed, self.rep, ar.t);
        let (code, index, draw) = match item.from {
            Fate::Landed(_, End::Order { .. }) => {
                // An order without programs too: its basket comes from its own latent draws,
                // shared with the baseline.
                let list = ar.latents[item.class()].get(item.base());
                if list.is_some_and(|l| l.took_drawn) {
                    return;
                }
                // Not drawn yet: the next ones of the class's stream.
                (fate_code(item.from), 0, Draw::Latent)
            }
            from => {
                let tilt = match from {
                    Fate::Landed(_, End::Leak) => Tilt::FromLeak,
                    _ => Tilt::FromNoAttempt,
                };
                let code = mix64(fate_code(from) ^ mix64(fate_code(item.fate)));
                (code, 1, Draw::Tilted(tilt))
            }
        };
        let owed = basket_stream(&mut ar.baskets, tick, class, code, index);
        owed.owe(Run {
            law: self.laws.shared(item.law()),
            coupon,
            draw,
            n: item.n,
            cell,
            start: 0,
        });
    }

    /// Hands the tick's money over to be valued (see [`money`](super::money)).
    fn value_money(&mut self, ar: &mut Arrivals) {
        let mut batch = std::mem::replace(&mut ar.money, Batch::new(ar.t));
        // The index is dropped here; the streams go over as they are.
        batch.owed = std::mem::take(&mut ar.baskets).streams;
        batch.owed.retain(|owed| !owed.runs.is_empty());
        // The batch can wait for a tick or two, while the next ticks build their own lists: it
        // gives back the room its lists do not use.
        batch.owed.shrink_to_fit();
        batch.taken.shrink_to_fit();
        self.hand_over(batch);
    }

    /// Once every session of the tick is resolved, the users of each class return to the
    /// cohorts with their new state. Phase 3 never looks at impressions served today, nor at a
    /// redemption count but to compare it with its limit, so which of a class's users had each
    /// outcome is a uniformly random partition of them: the users whose state changed are drawn
    /// one by one without replacement from the class's histogram by served count and redemption
    /// counts (Alipay set-ups first, then redemptions by slot), and the rest keep their state,
    /// each with its own counts. The draws come from a stream of the class alone, so the scenario and its baseline
    /// pick the same users wherever their outcome counts agree, and the bulk that changed
    /// nothing differs between them only by the users whose outcomes differ. A class's slots
    /// (sessions of several-session users resolved as its members) take their share of the
    /// outcomes first, and their users the changes.
    fn return_users(&self, ar: &mut Arrivals) {
        let mut picked: Vec<u64> = Vec::new();
        for (c, outcomes) in ar.outcomes.iter_mut().enumerate() {
            let state = &ar.classes[c].0;
            let histogram = &mut ar.served[c];
            let mut left: u64 = histogram.iter().map(|x| x.1).sum();
            outcomes.sort_unstable_by_key(|&((setup, slot), _)| {
                ((setup, slot) == (false, None), slot, !setup)
            });
            let slots = std::mem::take(&mut ar.slots[c]);
            debug_assert_eq!(
                outcomes.iter().map(|x| x.1).sum::<u64>(),
                left + slot_users(&slots, &ar.free)
            );
            if !slots.is_empty() {
                self.deal_to_slots((ar.t, ar.keys[c]), outcomes, &slots, &mut ar.free);
            }
            let mut r = keyed(self.seed, self.rep, ar.t, ar.keys[c], Step::Served, 0);
            for &(change, n) in outcomes.iter() {
                picked.clear();
                picked.resize(histogram.len(), 0);
                if change == (false, None) {
                    // Sorted last: the users left.
                    for (x, cell) in picked.iter_mut().zip(histogram.iter_mut()) {
                        *x = std::mem::take(&mut cell.1);
                    }
                } else {
                    for _ in 0..n {
                        let mut u = r.random_range(0..left);
                        let cell = histogram
                            .iter()
                            .position(|x| {
                                let inside = u < x.1;
                                u = u.wrapping_sub(x.1);
                                inside
                            })
                            .expect("a user is left");
                        histogram[cell].1 -= 1;
                        picked[cell] += 1;
                        left -= 1;
                    }
                }
                for (((served, redeemed), _), &k) in
                    histogram.iter().zip(&picked).filter(|x| *x.1 > 0)
                {
                    let mut after = state.clone();
                    after.served = *served;
                    after.redeemed.copy_from_slice(redeemed);
                    apply(&mut after, change);
                    *ar.next.entry(after).or_insert(0) += k;
                }
            }
        }
    }

    /// Deals a class's outcomes (`outcomes`, sorted) to its slots, the sessions of
    /// several-session users resolved as its members, whose groups count them; what is left of
    /// `outcomes` goes to the class's other users. The slots are a uniformly random subset of
    /// the class's members: their outcomes, by kind, a multivariate hypergeometric draw by ranks
    /// keyed by what it decides (tick `t`, the class's key), so that paired runs deal nearly the
    /// same where their counts are close; then each group's slots, in group order, a uniformly
    /// random share of what is left of those (a multivariate hypergeometric draw keyed by the
    /// class and the group).
    fn deal_to_slots(
        &self,
        (t, class_key): (usize, u64),
        outcomes: &mut [(Change, u64)],
        slots: &[(u32, u32)],
        free: &mut [FreeGroup],
    ) {
        let key = keyed(self.seed, self.rep, t, class_key, Step::Served, 1).next_u64();
        let counts: Vec<u64> = outcomes.iter().map(|x| x.1).collect();
        let codes: Vec<u64> = outcomes.iter().map(|x| change_code(x.0)).collect();
        let seed = |key: u64, i: usize| mix64(key ^ mix64(codes[i]));
        let mut to_slots = Vec::new();
        let n = slot_users(slots, free);
        multivariate_hypergeometric_by_ranks(&counts, n, |i| seed(key, i), &mut to_slots);
        for (outcome, &k) in outcomes.iter_mut().zip(&to_slots) {
            outcome.1 -= k;
        }
        let mut share = Vec::new();
        for &(g, idx) in slots {
            let group = &mut free[g as usize];
            let key = mix64(key ^ mix64(group.key ^ u64::from(idx)));
            take_share(&mut to_slots, group.users, |i| seed(key, i), &mut share);
            group.dealt[idx as usize] = (outcomes.iter().zip(&share))
                .filter(|x| *x.1 > 0)
                .map(|(o, &k)| (o.0, k))
                .collect();
        }
    }

    /// The free several-session users return to `next`: a group's users with the changes its
    /// sessions were dealt, matched user by user uniformly at random (the sessions are
    /// independent given the state): session by session, the users with each combination of
    /// changes so far take a uniformly random share of the session's changes (a multivariate
    /// hypergeometric draw keyed by the group, the session and the combination's place).
    fn return_free(&self, t: usize, free: Vec<FreeGroup>, next: &mut Next) {
        let mut share = Vec::new();
        for group in free {
            let mut users = vec![(group.state, group.users)];
            for (idx, dealt) in group.dealt.iter().enumerate() {
                debug_assert_eq!(dealt.iter().map(|x| x.1).sum::<u64>(), group.users);
                let key = keyed(
                    self.seed,
                    self.rep,
                    t,
                    group.key,
                    Step::Served,
                    2 + idx as u64,
                )
                .next_u64();
                let mut counts: Vec<u64> = dealt.iter().map(|x| x.1).collect();
                let mut after = Vec::with_capacity(users.len() * dealt.len());
                for (j, (state, n)) in users.into_iter().enumerate() {
                    let key = mix64(key ^ mix64(j as u64 + 1));
                    let seed = |i: usize| mix64(key ^ mix64(change_code(dealt[i].0)));
                    take_share(&mut counts, n, seed, &mut share);
                    for (&k, &(change, _)) in share.iter().zip(dealt).filter(|x| *x.0 > 0) {
                        let mut state = state.clone();
                        apply(&mut state, change);
                        after.push((state, k));
                    }
                }
                users = after;
            }
            for (state, n) in users {
                *next.entry(state).or_insert(0) += n;
            }
        }
    }
}

/// The members a class's slots stand for: one per user of each slot's group.
fn slot_users(slots: &[(u32, u32)], free: &[FreeGroup]) -> u64 {
    slots.iter().map(|&(g, _)| free[g as usize].users).sum()
}

/// A uniformly random `n` of the items left in `counts` (by category, category i's count drawn
/// from `seed(i)`: [`multivariate_hypergeometric_keyed`]) into `share`, taken out of `counts`.
/// Taking the last `n` leaves nothing to chance: `share` is what was left.
fn take_share(counts: &mut [u64], n: u64, seed: impl Fn(usize) -> u64, share: &mut Vec<u64>) {
    multivariate_hypergeometric_keyed(counts, n, seed, share);
    for (x, &k) in counts.iter_mut().zip(share.iter()) {
        *x -= k;
    }
}

/// A dense code of a change (keys streams): 2 × (1 + program slot) for a redemption, plus 1 for
/// an Alipay set-up.
fn change_code((setup, slot): Change) -> u64 {
    u64::from(setup) | slot.map_or(0, |k| k as u64 + 1) << 1
}

/// Whether the sessions (placements `sessions`) of a user in `state` are independent given its
/// state ([`Sim::sessions_independent`]) if the coupon programs j with `spent(j)` cannot pay.
fn independent_if(
    plan: &Plan,
    state: &State,
    sessions: &[usize],
    spent: impl Fn(usize) -> bool,
) -> bool {
    let s = plan.scenario;
    if !(state.alipay || s.friction.payment_interop) {
        return false;
    }
    s.programs.iter().enumerate().all(|(j, p)| {
        let (Some(c), Some(k)) = (p.coupon(), plan.coupon_slot[j]) else {
            return true;
        };
        let redeemed = state.redeemed[k];
        let offered = sessions.iter().filter(|&&pl| c.placements[pl]).count();
        !p.segments[state.segment as usize]
            || redeemed >= c.per_user_limit
            || u64::from(redeemed) + offered as u64 <= u64::from(c.per_user_limit)
            || spent(j)
    })
}

impl Clicked {
    /// Adds a user with several sessions: by count if its sessions are independent whatever
    /// the budgets (so in phase 3 too: [`Sim::sessions_independent`]), else one by one.
    pub(super) fn add_several(&mut self, plan: &Plan, ind: Individual) {
        if independent_if(plan, &ind.state, &ind.sessions, |_| false) {
            count_in_group(&mut self.free, ind);
        } else {
            self.multi.push(ind);
        }
    }
}

/// Counts a several-session user in its group: its state and its sessions' placements in
/// placement order (the order of a user's sessions decides nothing once they are independent).
fn count_in_group(groups: &mut rustc_hash::FxHashMap<(State, Placements), u64>, ind: Individual) {
    let mut placements = ind.sessions;
    placements.sort_unstable();
    *groups.entry((ind.state, placements)).or_insert(0) += 1;
}

/// Gives a user's state the change its session made: an Alipay set-up, a redemption.
fn apply(state: &mut State, (setup, slot): Change) {
    state.alipay |= setup;
    if let Some(k) = slot {
        state.redeemed[k] += 1;
    }
}

/// Whether a fate is a paid order.
fn is_order(fate: Fate) -> bool {
    matches!(fate, Fate::Landed(_, End::Order { .. }))
}

/// A number for a fate in a stream key.
fn fate_code(fate: Fate) -> u64 {
    let Fate::Landed(landing, end) = fate else {
        return 0;
    };
    let landing = match landing {
        Landing::Shop => 1,
        Landing::Closed => 2,
        Landing::Live => 3,
        Landing::Overflow => 4,
    };
    let end = match end {
        End::Leak => 0,
        End::NoAttempt => 1,
        End::PayFail => 2,
        End::Order { setup, coupon } => 4 + u64::from(setup) + 2 * coupon.code() as u64,
    };
    landing | end << 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latent_draws_made_from_their_places_are_independent_standard_normals() {
        // 400,000 places of two keys. A function of the place: made again, the same draws.
        let n = 200_000u64;
        let draws: Vec<(f64, f64)> = [3u64, mix64(11)]
            .iter()
            .map(|&key| LatentKey::new(key))
            .flat_map(|key| (0..n).map(move |place| latent_at(&key, place)))
            .collect();
        let key = LatentKey::new(3);
        assert_eq!(latent_at(&key, 17), draws[17]);
        assert_eq!(latent_deviate(&key, 17), draws[17].0);
        let m = draws.len() as f64;
        let mean = |f: &dyn Fn(usize) -> f64| (0..draws.len()).map(f).sum::<f64>() / m;
        // Moments and tails of N(0, 1), each within 5 standard errors of its sample mean:
        // E z = 0 (sd 1), E z² = 1 (sd √2), P(z > 2) and P(z < −3) (sd √(p(1 − p))). Past the
        // ziggurat's base strip (|z| > 3.654, about 100 of these draws) a deviate takes more
        // random bits than the first 64: the generator's slow path.
        let z = |i: usize| draws[i].0;
        let tail = |p: f64| 5.0 * (p * (1.0 - p) / m).sqrt();
        assert!(mean(&|i| z(i)).abs() < 5.0 / m.sqrt());
        assert!((mean(&|i| z(i) * z(i)) - 1.0).abs() < 5.0 * 2f64.sqrt() / m.sqrt());
        let (p2, p3) = (0.022_750_131_948_179, 0.001_349_898_031_630);
        assert!((mean(&|i| f64::from(u8::from(z(i) > 2.0))) - p2).abs() < tail(p2));
        assert!((mean(&|i| f64::from(u8::from(z(i) < -3.0))) - p3).abs() < tail(p3));
        assert!(
            draws.iter().any(|d| d.0.abs() > 3.66),
            "the slow path is taken"
        );
        // Top-up uniforms on [0, 1) (mean ½, sd √(1/12)), uncorrelated with the deviate, and
        // deviates uncorrelated from place to place (a correlation's sd is 1/√m).
        let (u, sd) = (|i: usize| draws[i].1, (1.0f64 / 12.0).sqrt());
        assert!(draws.iter().all(|d| (0.0..1.0).contains(&d.1)));
        assert!((mean(&u) - 0.5).abs() < 5.0 * sd / m.sqrt());
        assert!((mean(&|i| z(i) * (u(i) - 0.5)) / sd).abs() < 5.0 / m.sqrt());
        let next = |i: usize| {
            if i + 1 < draws.len() {
                z(i) * z(i + 1)
            } else {
                0.0
            }
        };
        assert!(mean(&next).abs() < 5.0 / m.sqrt());
        // Two streams whose keys lie one increment apart do not repeat each other's draws a
        // place later (as they would with an increment shared by all streams).
        let (a, b) = (key, LatentKey::new(3u64.wrapping_add(key.gamma)));
        assert_ne!(a.gamma, b.gamma);
        assert!((0..100).all(|p| latent_at(&a, p + 1) != latent_at(&b, p)));
    }

    #[test]
    fn deviates_made_in_batches_are_each_place_s_own_in_order() {
        // Empty, shorter than a batch, one batch, one more, and several with a partial last
        // batch, from an odd start: every place once, in order, with its own deviate.
        let key = LatentKey::new(41);
        for n in [0u64, 1, 15, 16, 17, 40] {
            let places = 1_000_003..1_000_003 + n;
            let mut seen = Vec::new();
            for_each_deviate(&key, places.clone(), |place, z| seen.push((place, z)));
            let want: Vec<(u64, f64)> = places.map(|p| (p, latent_deviate(&key, p))).collect();
            assert_eq!(seen, want, "{n} places");
        }
    }

    /// A law of quick.toml's first segment that offers no coupon: one cell.
    fn offering_nothing() -> Arc<fates::CouponLaw> {
        let scenario = crate::scenario::quick_fixture();
        let plan = crate::engine::Plan::new(&scenario);
        let q = story::base_order_probability(&plan, 0, 0, 0, false, false);
        let law = fates::CouponLaw::new(&plan, 0, q, &[]);
        assert!(law.offers_nothing());
        Arc::new(law)
    }

    /// A list of `n` made draws in one cell, put in it by a second law (`ordered` false).
    fn regrouped(n: usize, law: &Arc<fates::CouponLaw>) -> Latents {
        let mut list = Latents {
            law: Some(1),
            cells: vec![(Coupon::None, n)],
            key: LatentKey::new(99),
            start: 5,
            made: n,
            kept: n,
            ordered: false,
            ..Latents::default()
        };
        list.history.regroup(Arc::clone(law));
        list
    }

    /// Whether each of `list`'s draws was booked, found again from its bookings.
    fn booked(list: &Latents) -> Vec<bool> {
        let mut booked = Vec::new();
        list.history
            .replay(&list.key, list.start, list.made, |_, found| {
                // The one cell's coupon is none.
                assert!(matches!(
                    found,
                    Found::Booked(Coupon::None) | Found::Cell(0)
                ));
                booked.push(found != Found::Cell(0));
            });
        booked
    }

    /// The positions in `list` of the draws a booking takes.
    fn booked_positions(list: &mut Latents, wanted: usize, key: u64) -> Vec<usize> {
        let before = booked(list);
        list.book(&[wanted], key);
        let after = booked(list);
        (0..before.len())
            .filter(|&i| !before[i] && after[i])
            .collect()
    }

    #[test]
    fn a_booking_of_regrouped_draws_takes_a_uniformly_random_subset() {
        // 2 of 4 draws, over 60,000 keys: each of the C(4, 2) = 6 pairs with chance 1/6; every
        // pair's share within 5 standard errors, sqrt(1/6 × 5/6 / 60,000).
        let keys = 60_000u64;
        let mut seen = [0u64; 16];
        let law = offering_nothing();
        for key in 0..keys {
            let mut list = regrouped(4, &law);
            let taken = booked_positions(&mut list, 2, mix64(key));
            assert_eq!(taken.len(), 2);
            seen[taken.iter().fold(0, |m, &i| m | 1 << i)] += 1;
            assert_eq!((list.kept, list.cells[0].1), (2, 2));
        }
        let p = 1.0 / 6.0;
        let se = (p * (1.0 - p) / keys as f64).sqrt();
        for mask in [3, 5, 6, 9, 10, 12] {
            let share = seen[mask] as f64 / keys as f64;
            assert!((share - p).abs() < 5.0 * se, "{seen:?}");
        }
    }

    #[test]
    fn several_sessions_are_independent_only_where_no_setup_or_limit_is_at_stake() {
        let text = include_str!("../../../tests/data/exact/multi_session_free.toml");
        let scenario = crate::scenario::load_str(text, "multi_session_free.toml").expect("valid");
        let plan = crate::engine::Plan::new(&scenario);
        let sim = Sim::new(&plan, 1, 0);
        // Programs: `wide`, limit 3 on both placements; `narrow`, limit 1 on moments only.
        let (channels, moments) = (0, 1);
        let user = |alipay: bool, redeemed: [u32; 2], sessions: Vec<usize>| Individual {
            state: State {
                segment: 0,
                app: true,
                alipay,
                served: 2,
                redeemed: smallvec::SmallVec::from_slice(&redeemed),
            },
            sessions: sessions.into(),
            unit: 0,
        };
        let independent = |alipay: bool, redeemed: [u32; 2], sessions: Vec<usize>| {
            sim.sessions_independent(0, &user(alipay, redeemed, sessions))
        };
        assert!(independent(true, [0, 0], vec![channels; 3]));
        // A session may set up Alipay for the next.
        assert!(!independent(false, [0, 0], vec![channels; 2]));
        // wide: 0 + 4 > 3, 2 + 2 > 3; reached already, no session can redeem it.
        assert!(!independent(true, [0, 0], vec![channels; 4]));
        assert!(!independent(true, [2, 0], vec![channels; 2]));
        assert!(independent(true, [3, 0], vec![channels; 2]));
        // narrow counts only its placement's sessions: 0 + 1 ≤ 1, 0 + 2 > 1, or reached.
        assert!(independent(true, [0, 0], vec![channels, moments]));
        assert!(!independent(true, [0, 0], vec![moments, moments]));
        assert!(independent(true, [0, 1], vec![moments, moments]));
        // A program that cannot pay as the tick starts offers nothing in it: its limit is moot.
        let spent = crate::scenario::load_str(
            &text.replace("budget = 3000", "budget = 0"),
            "multi_session_free.toml",
        )
        .expect("valid");
        let plan = crate::engine::Plan::new(&spent);
        let four = user(true, [0, 0], vec![channels; 4]);
        assert!(Sim::new(&plan, 1, 0).sessions_independent(0, &four));
    }

    #[test]
    fn a_booking_of_draws_in_cells_by_one_law_takes_the_first_in_draw_order() {
        let mut list = regrouped(5, &offering_nothing());
        list.ordered = true;
        assert_eq!(booked_positions(&mut list, 3, 7), [0, 1, 2]);
        // The next booking passes over the draws booked before.
        assert_eq!(booked_positions(&mut list, 1, 8), [3]);
        assert_eq!(booked(&list), [true, true, true, true, false]);
        assert_eq!(list.kept, 1);
    }

    #[test]
    fn users_within_their_limits_share_a_class_and_keep_their_counts() {
        // multi_session_free.toml: `wide` has a per-user limit of 3. Users with 0 and 1
        // redemptions of it have the same law (a session redeems one coupon at most), those
        // with 3 do not offer it. Each user returns with its own count (plus what it redeemed):
        // fails if the class's counts were given back instead.
        let scenario = crate::scenario::exact_fixture("multi_session_free");
        let plan = crate::engine::Plan::new(&scenario);
        let mut sim = Sim::new(&plan, 1, 0);
        let state = |wide: u32| State {
            segment: 0,
            app: true,
            alipay: true,
            served: 2,
            redeemed: smallvec::SmallVec::from_slice(&[wide, 0]),
        };
        let users = 1000;
        let clicked = || {
            let mut clicked = Clicked::default();
            for wide in [0, 1, 3] {
                clicked.single.insert((state(wide), 0), users);
            }
            clicked
        };
        let (classes, _, _) = sim.classes(0, clicked());
        let members: Vec<usize> = classes.values().map(|(cells, _)| cells.len()).collect();
        assert_eq!(members, [2, 1]);
        let mut next = Next::default();
        sim.resolve_sessions(0, clicked(), &mut next);
        let with = |at_least: u32| -> u64 {
            next.iter()
                .filter(|(s, _)| s.redeemed[0] >= at_least)
                .map(|x| x.1)
                .sum()
        };
        assert_eq!(with(0), 3 * users);
        assert!(with(1) >= 2 * users && with(3) >= users);
        assert!(next.keys().all(|s| s.served == 2));
    }

    /// A group of `users` users of multi_session_free.toml with sessions on `placements`.
    fn free_group(users: u64, placements: usize, key: u64) -> FreeGroup {
        FreeGroup {
            state: State {
                segment: 0,
                app: true,
                alipay: true,
                served: 1,
                redeemed: smallvec::SmallVec::from_slice(&[0, 0]),
            },
            key,
            users,
            dealt: vec![Vec::new(); placements],
        }
    }

    #[test]
    fn a_group_of_slots_takes_a_uniformly_random_share_of_its_class() {
        // A class of 8 members, 3 of which redeemed `wide`: 2 users of group 0 and 2 of group 1
        // (one session each), the other 4 single-session users. Group 0's redemptions are
        // Hypergeometric(8, 3, 2): 0, 1, 2 with chances 10/28, 15/28, 3/28. Over 20,000
        // replications each share within 5 standard errors; the class's counts must add up.
        let scenario = crate::scenario::exact_fixture("multi_session_free");
        let plan = crate::engine::Plan::new(&scenario);
        let redeem: Change = (false, Some(0));
        let reps = 20_000u64;
        let mut seen = [0u64; 3];
        for rep in 0..reps {
            let sim = Sim::new(&plan, 1, rep);
            let mut free = vec![free_group(2, 1, 11), free_group(2, 1, 12)];
            let mut outcomes = vec![(redeem, 3), ((false, None), 5)];
            sim.deal_to_slots((0, 5), &mut outcomes, &[(0, 0), (1, 0)], &mut free);
            let redeemed = |g: &FreeGroup| -> u64 {
                g.dealt[0]
                    .iter()
                    .filter(|x| x.0 == redeem)
                    .map(|x| x.1)
                    .sum()
            };
            let (a, b) = (redeemed(&free[0]), redeemed(&free[1]));
            assert_eq!(outcomes[0].1 + a + b, 3);
            assert_eq!(outcomes.iter().map(|x| x.1).sum::<u64>(), 4);
            assert!(
                free.iter()
                    .all(|g| g.dealt[0].iter().map(|x| x.1).sum::<u64>() == 2)
            );
            seen[a as usize] += 1;
        }
        for (k, expected) in [10.0 / 28.0, 15.0 / 28.0, 3.0 / 28.0]
            .into_iter()
            .enumerate()
        {
            let share = seen[k] as f64 / reps as f64;
            let se = (expected * (1.0 - expected) / reps as f64).sqrt();
            assert!((share - expected).abs() < 5.0 * se, "{seen:?}");
        }
    }

    #[test]
    fn a_groups_sessions_are_matched_user_by_user_uniformly_at_random() {
        // 4 users with 2 sessions each; each session was dealt 2 redemptions of `wide` and 2
        // nothing. Matched at random, the users who redeemed twice are Hypergeometric(4, 2, 2):
        // 0, 1, 2 with chances 1/6, 4/6, 1/6 (a fixed matching would give always 2, or always
        // 0). Over 20,000 replications each share within 5 standard errors; every user returns.
        let scenario = crate::scenario::exact_fixture("multi_session_free");
        let plan = crate::engine::Plan::new(&scenario);
        let dealt = vec![((false, Some(0)), 2), ((false, None), 2)];
        let reps = 20_000u64;
        let mut seen = [0u64; 3];
        for rep in 0..reps {
            let sim = Sim::new(&plan, 1, rep);
            let mut group = free_group(4, 2, 13);
            group.dealt = vec![dealt.clone(), dealt.clone()];
            let mut next = Next::default();
            sim.return_free(0, vec![group], &mut next);
            assert_eq!(next.values().sum::<u64>(), 4);
            let by = |wide: u32| -> u64 {
                next.iter()
                    .filter(|(s, _)| s.redeemed[0] == wide)
                    .map(|x| x.1)
                    .sum()
            };
            assert_eq!(by(1) + 2 * by(2), 4);
            seen[by(2) as usize] += 1;
        }
        for (k, expected) in [1.0 / 6.0, 4.0 / 6.0, 1.0 / 6.0].into_iter().enumerate() {
            let share = seen[k] as f64 / reps as f64;
            let se = (expected * (1.0 - expected) / reps as f64).sqrt();
            assert!((share - expected).abs() < 5.0 * se, "{seen:?}");
        }
    }
}
