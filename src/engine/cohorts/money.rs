//! The money of a tick's orders whose baskets no other step reads, valued apart from the tick.
//!
//! An order's basket decides nothing but its value (its fate, coupon and top-up were settled by
//! counts or by its latent draws' cells), and the values only add up into the tick's GMV, its
//! total and its funnel cells. So phase 3 hands them over as a [`Batch`] when the tick is over:
//! the lists of latent draws its bookings took (each with its laws and bookings: each draw is
//! made again from its place and its coupon found again, [`History::replay`]), and the basket
//! streams whose draws it did not need to make, each with the runs of draws it owes. Valuing a
//! batch makes exactly the draws booking would have made, and integer sums do not depend on the
//! order they are added in, so the results are the same wherever and whenever a batch is
//! valued: on the run's own thread, or by the other run of a pair while it has time to spare
//! (see [`Share`]).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::bookings::{Found, History};
use super::fates::{Coupon, CouponLaw, Tilt};
use super::push_lean;
use super::sessions::{LatentKey, for_each_deviate};
use crate::engine::rng::Stream;
use crate::engine::{Funnel, Outcome, Plan};
use crate::scenario::yuan_to_units;

/// How the draws of a run are made and valued.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Draw {
    /// Latent draws (deviate, top-up uniform) of orders that are orders without programs too,
    /// valued by [`CouponLaw::plain_basket`] from the deviate.
    Latent,
    /// Baskets of orders a coupon made, from their tilted law ([`CouponLaw::order_basket`]).
    Tilted(Tilt),
}

/// `n` draws from one basket stream, valued under `law` with `coupon`, for GMV cell `cell`
/// (`Funnel::gmv_index`): latent draws at the places from `start` on, or tilted baskets next in
/// the stream (`start` unused).
pub(super) struct Run {
    pub law: Arc<CouponLaw>,
    pub coupon: Coupon,
    pub draw: Draw,
    pub n: u64,
    pub cell: usize,
    pub start: u64,
}

impl Run {
    /// The run's value (units), its draws made from `source`.
    fn value(&self, plan: &Plan, source: &mut Source) -> u128 {
        let (law, coupon) = (&*self.law, self.coupon);
        match (self.draw, source) {
            (Draw::Latent, Source::Places { key, .. }) => {
                let mut units = 0;
                let places = self.start..self.start + self.n;
                for_each_deviate(key, places, |_, z| {
                    units += plain_value(plan, law, coupon, z)
                });
                units
            }
            (Draw::Tilted(tilt), Source::Stream(r)) => (0..self.n)
                .map(|_| u128::from(yuan_to_units(law.order_basket(plan, coupon, tilt, r))))
                .sum(),
            _ => unreachable!("latent draws come from places, tilted baskets from a stream"),
        }
    }
}

/// Where a basket stream's draws come from.
pub(super) enum Source {
    /// Latent draws, each a function of the stream's key and its place
    /// ([`latent_deviate`](super::sessions::latent_deviate));
    /// `next` is the first place not taken yet.
    Places { key: LatentKey, next: u64 },
    /// Tilted baskets, drawn one after the other.
    Stream(Stream),
}

/// A basket stream and the runs of draws it owes, in the order booking met them.
pub(super) struct Owed {
    pub source: Source,
    pub runs: Vec<Run>,
}

impl Owed {
    pub fn new(source: Source) -> Self {
        Owed {
            source,
            runs: Vec::new(),
        }
    }

    /// The next `n` places of a stream of latent draws: its key and the first of them.
    pub fn take_places(&mut self, n: u64) -> (LatentKey, u64) {
        let Source::Places { key, next } = &mut self.source else {
            unreachable!("only latent draws have places");
        };
        let start = *next;
        *next += n;
        (*key, start)
    }

    /// Owes `run`'s draws: latent ones take the next places. A run that goes on from the last
    /// (same law, coupon, draws and cell; latent draws at the places right after its) joins it:
    /// its draws are the ones the last run's would be followed by, valued alike, so the sum is
    /// the same, and a stream booked over many epochs of a busy tick keeps one run, not one per
    /// epoch.
    pub fn owe(&mut self, mut run: Run) {
        if let Draw::Latent = run.draw {
            run.start = self.take_places(run.n).1;
        }
        if let Some(last) = self.runs.last_mut()
            && Arc::ptr_eq(&last.law, &run.law)
            && (last.coupon, last.draw, last.cell) == (run.coupon, run.draw, run.cell)
            && (run.draw != Draw::Latent || last.start + last.n == run.start)
        {
            last.n += run.n;
            return;
        }
        push_lean(&mut self.runs, run);
    }

    /// Makes the draws owed and values them: `add(cell, value)` per run.
    pub fn settle(&mut self, plan: &Plan, mut add: impl FnMut(usize, u128)) {
        for run in self.runs.drain(..) {
            add(run.cell, run.value(plan, &mut self.source));
        }
    }
}

/// The latent draws of a list booked whole (at the end of a tick, most of them), or those booked
/// of a list whose fates are drawn again, for GMV cell `cell`: the `n` draws from place `start`
/// of the stream keyed `key`, made again from their places and valued under the list's last law
/// (their basket's law is the class's, whatever the law). A draw one of the list's bookings took
/// ([`History::replay`]) has the coupon it was booked with; another, in a list booked `whole`,
/// the coupon of its cell under the last law; in a list whose fates are drawn again it is not
/// booked at all, and not valued.
pub(super) struct Taken {
    pub cell: usize,
    pub whole: bool,
    pub key: LatentKey,
    pub start: u64,
    pub n: usize,
    pub history: History,
}

impl Taken {
    /// The units of the draws' orders.
    fn value(&self, plan: &Plan) -> u128 {
        let (law, coupons) = (self.history.last_law(), self.history.last_coupons());
        let mut units = 0;
        self.history
            .replay(&self.key, self.start, self.n, |z, found| {
                let coupon = match found {
                    Found::Booked(coupon) => coupon,
                    Found::Cell(cell) if self.whole => coupons[cell],
                    Found::Cell(_) => return,
                };
                units += plain_value(plan, law, coupon, z);
            });
        units
    }
}

/// The value (units) of an order that is one without programs too and redeemed `coupon` under
/// `law`, from its latent basket deviate `z`.
pub(super) fn plain_value(plan: &Plan, law: &CouponLaw, coupon: Coupon, z: f64) -> u128 {
    u128::from(yuan_to_units(law.plain_basket(plan, coupon, z)))
}

/// A tick's money left to value.
pub(super) struct Batch {
    pub t: usize,
    pub taken: Vec<Taken>,
    pub owed: Vec<Owed>,
}

impl Batch {
    pub fn new(t: usize) -> Self {
        Batch {
            t,
            taken: Vec::new(),
            owed: Vec::new(),
        }
    }

    /// Values the batch: `add(cell, units)` for each part, adding up to its GMV per GMV cell
    /// (nothing where the plan does not value baskets: [`Plan::value_baskets`]). What it holds
    /// is freed when it is dropped (by the run that made it: see [`Share`]).
    pub fn value(&mut self, plan: &Plan, mut add: impl FnMut(usize, u128)) {
        if !plan.value_baskets {
            return;
        }
        for taken in &self.taken {
            add(taken.cell, taken.value(plan));
        }
        for owed in &mut self.owed {
            owed.settle(plan, &mut add);
        }
    }

    /// Values the batch into `out`.
    pub fn value_into(mut self, plan: &Plan, out: &mut Outcome) {
        let t = self.t;
        self.value(plan, |cell, v| out.add_gmv(t, cell, v));
    }
}

/// Batches a lead lets wait for the other run: it can lag a tick behind (its own ticks are
/// shorter, but not all of them).
const QUEUED: usize = 2;

/// The batches of one run (the *lead*, whose work is the longer) that the other run of its pair
/// values while it has time: between its own ticks and, when the pair is alone in the thread
/// pool, once it is done until the lead is.
///
/// Neither run ever waits for work the other has not started: the lead values itself the oldest
/// batch still queued when a third comes (so at most two wait, whatever the other run does),
/// and all those queued when it ends, and every batch while the other run is not running; it
/// waits only for a batch being valued, which ends by itself. The other run takes batches
/// without blocking while it runs, and afterwards waits for more only while the lead runs,
/// doing other work of the thread pool meanwhile. It allocates nothing while it values (the
/// sums go to lists the lead made), so that the memory its own run freed can go back to the
/// system, and frees nothing of the lead's: a batch valued goes back to the lead, which drops
/// it at its next epoch ([`Share::free_valued`]), so that the memory of its lists of draws
/// returns to the allocator of the thread that reuses it (freed on the other thread, that
/// memory had cost the lead about 0.01 s of a national replication's 1.01 s).
pub(super) struct Share<'p, 's> {
    plan: &'p Plan<'s>,
    state: Mutex<ShareState>,
    /// Signalled when a batch is queued or the lead ends.
    news: Condvar,
    /// The GMV of the batch being valued, per GMV cell (only the other run uses it).
    valuing: Mutex<Vec<u128>>,
    /// Batches the other run valued, for the lead to drop.
    valued: Mutex<Vec<Batch>>,
}

#[derive(Default)]
struct ShareState {
    /// Whether the other run is running (else the lead values its batches at once: nobody
    /// would take them).
    lending: bool,
    /// Batches handed over and not taken yet, oldest first.
    queued: VecDeque<Batch>,
    /// Whether a batch is being valued by the other run.
    busy: bool,
    /// The GMV of the batches the other run valued, per tick and per GMV cell.
    per_tick: Vec<u128>,
    per_cell: Vec<u128>,
    /// Whether the lead has ended (it values what is left itself).
    closed: bool,
}

impl<'p, 's> Share<'p, 's> {
    /// A share for the lead run of `plan`.
    pub(super) fn new(plan: &'p Plan<'s>) -> Self {
        let cells = Funnel::of(plan.scenario).gmv_cells();
        Share {
            plan,
            state: Mutex::new(ShareState {
                per_tick: vec![0; plan.ticks],
                per_cell: vec![0; cells],
                ..ShareState::default()
            }),
            news: Condvar::new(),
            valuing: Mutex::new(vec![0; cells]),
            valued: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ShareState> {
        // A panic while valuing poisons nothing worth keeping from: the lead ends the run.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lead hands over a tick's batch; the oldest still queued, if there are more than
    /// [`QUEUED`], it values itself.
    pub(super) fn hand_over(&self, batch: Batch, out: &mut Outcome) {
        let older = {
            let mut s = self.lock();
            if !s.lending {
                // Nobody takes batches now: this one and any still queued are valued here.
                let queued = std::mem::take(&mut s.queued);
                drop(s);
                for b in queued.into_iter().chain([batch]) {
                    b.value_into(self.plan, out);
                }
                return;
            }
            s.queued.push_back(batch);
            if s.queued.len() > QUEUED {
                s.queued.pop_front()
            } else {
                None
            }
        };
        self.news.notify_one();
        if let Some(older) = older {
            older.value_into(self.plan, out);
        }
    }

    /// The lead drops the batches the other run valued since it last looked, if the list is
    /// free (else they wait for its next look: it never waits here).
    pub(super) fn free_valued(&self) {
        let valued = match self.valued.try_lock() {
            Ok(mut valued) if !valued.is_empty() => std::mem::take(&mut *valued),
            _ => return,
        };
        drop(valued);
    }

    /// The other run starts: it values batches from now on.
    pub(super) fn start_lending(&self) {
        let mut s = self.lock();
        s.lending = !s.closed;
    }

    /// The other run is done and does not wait for the lead: the lead values its batches from
    /// now on.
    pub(super) fn stop_lending(&self) {
        self.lock().lending = false;
    }

    /// A guard that marks the lead ended when dropped, even by a panic, so that the other run
    /// never waits for it in vain.
    pub(super) fn closer(&self) -> Closer<'_, 'p, 's> {
        Closer(self)
    }

    /// The lead has ended: it values the batches still queued, waits for the one being valued
    /// and adds every value to `out`.
    pub(super) fn close(&self, out: &mut Outcome) {
        let queued = {
            let mut s = self.lock();
            s.closed = true;
            std::mem::take(&mut s.queued)
        };
        self.news.notify_all();
        for batch in queued {
            batch.value_into(self.plan, out);
        }
        loop {
            let s = self.lock();
            if !s.busy {
                for (t, &v) in s.per_tick.iter().enumerate() {
                    out.per_tick[t].gmv += v;
                    out.totals.gmv += v;
                }
                for (cell, &v) in s.per_cell.iter().enumerate() {
                    out.funnel_gmv[cell] += v;
                }
                return;
            }
            drop(s);
            // A batch is a tick's valuing, a few milliseconds at most.
            std::thread::yield_now();
        }
    }

    /// Values the oldest queued batch, if any and if the lock is free: the other run, between
    /// its own ticks. Returns whether it valued one.
    pub(super) fn lend(&self) -> bool {
        let mut batch = match self.state.try_lock() {
            Ok(mut s) => match s.queued.pop_front() {
                Some(b) => {
                    s.busy = true;
                    b
                }
                None => return false,
            },
            Err(_) => return false,
        };
        let t = batch.t;
        let mut cells = self.valuing.lock().unwrap_or_else(|e| e.into_inner());
        batch.value(self.plan, |cell, v| cells[cell] += v);
        (self.valued.lock().unwrap_or_else(|e| e.into_inner())).push(batch);
        let mut s = self.lock();
        for (cell, v) in cells.iter_mut().enumerate() {
            s.per_tick[t] += *v;
            s.per_cell[cell] += std::mem::take(v);
        }
        s.busy = false;
        true
    }

    /// The other run, once it is done: values batches until the lead ends, doing other work of
    /// the thread pool while there is none. A run that is itself such other work (inside
    /// another run's wait) does not wait but stops lending: waits never nest, so that the stack
    /// stays bounded and no thread idles while the pool has work.
    pub(super) fn lend_until_closed(&self) {
        if WAITING.get() {
            return self.stop_lending();
        }
        loop {
            if self.lend() || other_work() {
                continue;
            }
            let s = self.lock();
            if s.closed {
                return;
            }
            if s.queued.is_empty() {
                // Woken by a batch or by the end, and now and then to look for other work.
                drop(self.news.wait_timeout(s, Duration::from_millis(1)));
            }
        }
    }
}

thread_local! {
    /// Whether this thread is doing other work of the pool while it waits for a lead.
    static WAITING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Does one job of the thread pool, if there is one, while waiting for a lead; returns whether
/// it did.
fn other_work() -> bool {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            WAITING.set(false);
        }
    }
    WAITING.set(true);
    let _reset = Reset;
    rayon::yield_now() == Some(rayon::Yield::Executed)
}

/// See [`Share::closer`].
pub(super) struct Closer<'a, 'p, 's>(&'a Share<'p, 's>);

impl Drop for Closer<'_, '_, '_> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.news.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cohorts::{Sim, simulate, simulate_pair};
    use crate::scenario::{Scenario, exact_fixture};

    /// Scenarios whose orders take every path of money: latent draws booked in part and whole,
    /// top-ups, coupon orders' tilted baskets, draws not made while no coupon is offered.
    fn scenarios() -> Vec<Scenario> {
        let mut scenarios = vec![crate::scenario::quick_fixture()];
        scenarios.extend(["topup", "two_pools", "coupon_overflow"].map(exact_fixture));
        scenarios
    }

    #[test]
    fn money_valued_by_the_other_run_adds_up_to_the_same_outcome() {
        // The lead hands each tick's batch over and the other run's side of the share values
        // it (called here between ticks, on this thread, so that it surely takes them): the
        // outcome must be the one a run alone gives, to the unit. Each batch valued goes back
        // to the lead, which drops it in its next tick.
        for scenario in scenarios() {
            let plan = Plan::new(&scenario);
            for rep in 1..=3 {
                let alone = simulate(&plan, 11, rep);
                let share = Share::new(&plan);
                share.start_lending();
                let mut sim = Sim::new(&plan, 11, rep);
                sim.share = Some(&share);
                let mut lent = 0;
                let valued = || share.valued.lock().expect("not poisoned").len();
                for t in 0..plan.ticks {
                    sim.tick(t);
                    assert_eq!(
                        valued(),
                        0,
                        "{}: the lead dropped what was valued",
                        scenario.name
                    );
                    if share.lend() {
                        lent += 1;
                        assert_eq!(valued(), 1, "{}: a valued batch goes back", scenario.name);
                    }
                }
                let mut out = sim.out;
                share.close(&mut out);
                assert!(lent > 0, "{}: no batch was lent", scenario.name);
                assert!(out == alone, "{} replication {rep}", scenario.name);
            }
        }
    }

    #[test]
    fn baskets_decide_nothing_but_their_value() {
        // With the batches' baskets not valued (the scaling example's reading of the cost
        // without them), every count, spend and budget is the same to the unit and only GMV is
        // less: what the users resolved one by one spent, drawn with their sessions.
        let without_gmv = |mut out: Outcome| {
            let gmv = out.totals.gmv;
            out.totals.gmv = 0;
            for tick in &mut out.per_tick {
                tick.gmv = 0;
            }
            out.funnel_gmv.iter_mut().for_each(|g| *g = 0);
            (out, gmv)
        };
        for scenario in scenarios() {
            let plan = Plan::new(&scenario);
            let mut unvalued = Plan::new(&scenario);
            unvalued.value_baskets = false;
            for rep in 1..=3 {
                let (valued, gmv) = without_gmv(simulate(&plan, 13, rep));
                let (rest, less) = without_gmv(simulate(&unvalued, 13, rep));
                assert!(valued == rest, "{} replication {rep}", scenario.name);
                assert!(less < gmv, "{}: {less} vs {gmv}", scenario.name);
            }
        }
    }

    #[test]
    fn the_work_meter_counts_and_changes_nothing() {
        // The scaling example's counts of work: a plan with the meter gives the results of one
        // without, the same counts each time. Every one of these scenarios books latent draws
        // (see `scenarios`), so that count is positive; a baseline makes none (no coupon is ever
        // offered it, so no law puts its orders in cells). Both have sessions, and a class with
        // sessions in an epoch has at least one outcome, so the outcomes are at least the
        // class-epochs, and both are positive.
        use crate::engine::WorkMeter;
        let metered = |plan: &Plan| {
            let meter = Arc::new(WorkMeter::default());
            let mut plan = plan.clone();
            plan.meter = Some(Arc::clone(&meter));
            let out = simulate(&plan, 17, 2);
            (out, meter.counts())
        };
        for scenario in scenarios() {
            let baseline = scenario.baseline();
            let (plan, base_plan) = (Plan::new(&scenario), Plan::new(&baseline));
            for (plan, coupons) in [(&plan, true), (&base_plan, false)] {
                let (out, counts) = metered(plan);
                let name = &plan.scenario.name;
                assert!(out == simulate(plan, 17, 2), "{name}");
                assert_eq!(counts.latent_draws > 0, coupons, "{name}: {counts:?}");
                assert!(counts.class_epochs > 0, "{name}: no class drawn");
                assert!(counts.outcomes >= counts.class_epochs, "{name}: {counts:?}");
                assert_eq!(metered(plan).1, counts, "{name}");
            }
        }
    }

    #[test]
    fn a_pair_gives_each_run_alone_whatever_the_threads() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            for scenario in scenarios() {
                let baseline = scenario.baseline();
                let (plan, base_plan) = (Plan::new(&scenario), Plan::new(&baseline));
                for rep in 1..=3 {
                    let alone = rep % 2 == 0;
                    let (a, b) = pool.install(|| simulate_pair(&plan, &base_plan, 5, rep, alone));
                    assert!(a == simulate(&plan, 5, rep), "{} {threads}", scenario.name);
                    assert!(
                        b == simulate(&base_plan, 5, rep),
                        "{} {threads}",
                        scenario.name
                    );
                }
            }
        }
    }

    #[test]
    fn a_run_inside_another_runs_wait_stops_lending_instead_of_waiting() {
        let scenario = scenarios().remove(0);
        let plan = Plan::new(&scenario);
        let share = Share::new(&plan);
        share.start_lending();
        WAITING.set(true);
        // Returns at once (the lead has not ended), and the lead now values its own batches.
        share.lend_until_closed();
        WAITING.set(false);
        let s = share.lock();
        assert!(!s.lending && !s.closed);
    }

    #[test]
    fn the_other_run_stops_waiting_when_the_lead_ends_even_by_a_panic() {
        let scenario: &'static Scenario = Box::leak(Box::new(scenarios().remove(0)));
        let plan: &'static Plan = Box::leak(Box::new(Plan::new(scenario)));
        let share: &'static Share = Box::leak(Box::new(Share::new(plan)));
        share.start_lending();
        let (done, waited) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            share.lend_until_closed();
            done.send(()).expect("the test waits");
        });
        // A lead that panics drops its guard while unwinding.
        let lead = std::thread::spawn(move || {
            let _closes = share.closer();
            panic!("the lead fails");
        });
        assert!(lead.join().is_err());
        assert!(
            waited.recv_timeout(Duration::from_secs(30)).is_ok(),
            "the other run still waits"
        );
    }
}
