//! The tags of a list's made latent draws (see `sessions::Latents`): one per draw, its *cell*
//! (its coupon's place among those its list's law can give) or, once a booking took it, a flag
//! beside its coupon. One byte per draw while a scenario's coupons fit in seven bits (at most
//! [`NARROW_COUPON_PROGRAMS`] coupon programs), two otherwise: the tags of the peak tick are most
//! of what the engine keeps that grows with the population.

use super::fates::Coupon;
use crate::engine::Plan;

/// Coupon programs a scenario may have for its draws' tags to take one byte each: its coupons
/// (none, or a program's, reached or topped up to: 1 + 2 × 63 = 127) and a flag fit in eight
/// bits.
pub(super) const NARROW_COUPON_PROGRAMS: usize = 63;

/// A draw's tag, of one width.
pub(super) trait Tag: Copy + Eq + Default {
    /// The flag of a booked draw: the rest of its tag is its coupon's [`slot_code`].
    const BOOKED: Self;
    fn of_cell(cell: u8) -> Self;
    /// The tag of a booked draw whose coupon has slot code `code`.
    fn of_booked(code: usize) -> Self;
    fn is_booked(self) -> bool;
    /// A cell (not booked), or a slot code (booked).
    fn index(self) -> usize;
}

impl Tag for u8 {
    const BOOKED: u8 = 0x80;

    fn of_cell(cell: u8) -> u8 {
        debug_assert!(cell < Self::BOOKED, "a narrow law has fewer than 128 cells");
        cell
    }

    fn of_booked(code: usize) -> u8 {
        match u8::try_from(code) {
            Ok(code) if code < Self::BOOKED => Self::BOOKED | code,
            _ => unreachable!("narrow tags are for scenarios of at most 63 coupon programs"),
        }
    }

    fn is_booked(self) -> bool {
        self & Self::BOOKED != 0
    }

    fn index(self) -> usize {
        usize::from(self & !Self::BOOKED)
    }
}

impl Tag for u16 {
    const BOOKED: u16 = 0x100;

    fn of_cell(cell: u8) -> u16 {
        u16::from(cell)
    }

    fn of_booked(code: usize) -> u16 {
        match u8::try_from(code) {
            Ok(code) => Self::BOOKED | u16::from(code),
            Err(_) => unreachable!("a scenario has at most 127 coupon programs"),
        }
    }

    fn is_booked(self) -> bool {
        self & Self::BOOKED != 0
    }

    fn index(self) -> usize {
        usize::from(self & 0xff)
    }
}

/// A list's tags, one byte or two each (see the module's docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tags {
    Narrow(Vec<u8>),
    Wide(Vec<u16>),
}

impl Default for Tags {
    fn default() -> Self {
        Tags::Narrow(Vec::new())
    }
}

/// Runs `$body` with `$t` bound to the tags of either width (a slice of a [`Tag`] type).
macro_rules! each_width {
    ($tags:expr, $t:ident => $body:expr) => {
        match $tags {
            $crate::engine::cohorts::tags::Tags::Narrow($t) => $body,
            $crate::engine::cohorts::tags::Tags::Wide($t) => $body,
        }
    };
}
pub(super) use each_width;

impl Tags {
    /// `n` tags of cell 0, as wide as `plan`'s coupons need.
    pub fn new(plan: &Plan, n: usize) -> Self {
        if plan.coupons() <= NARROW_COUPON_PROGRAMS && !wide_asked() {
            Tags::Narrow(vec![0; n])
        } else {
            Tags::Wide(vec![0; n])
        }
    }

    pub fn len(&self) -> usize {
        each_width!(self, t => t.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn any_booked(&self) -> bool {
        each_width!(self, t => t.iter().any(|x| x.is_booked()))
    }
}

/// A coupon's code by coupon slot (`Plan::coupon_slot`): 0 for none, 2s + 1 for slot s's
/// program reached, 2s + 2 for it topped up to; below 2 × 127 + 1 = 255, whatever the places of
/// the coupon programs among the others.
pub(super) fn slot_code(plan: &Plan, coupon: Coupon) -> usize {
    let slot = |j: usize| plan.coupon_slot[j].expect("a coupon program");
    match coupon {
        Coupon::None => 0,
        Coupon::Reached(j) => 2 * slot(j) + 1,
        Coupon::TopUp(j) => 2 * slot(j) + 2,
    }
}

/// The coupon of a [`slot_code`].
pub(super) fn coupon_of_slot_code(plan: &Plan, code: usize) -> Coupon {
    let program = |slot: usize| plan.coupon_programs[slot];
    match code {
        0 => Coupon::None,
        c if c % 2 == 1 => Coupon::Reached(program(c / 2)),
        c => Coupon::TopUp(program(c / 2 - 1)),
    }
}

/// How many of `tags` equal `tag`, counted in blocks small enough for 8-bit counters, which the
/// compiler vectorises.
pub(super) fn count_of<T: Tag>(tags: &[T], tag: T) -> usize {
    tags.chunks(255)
        .map(|block| {
            let n = block
                .iter()
                .fold(0u8, |n, &t| n.wrapping_add(u8::from(t == tag)));
            usize::from(n)
        })
        .sum()
}

/// Whether tags are two bytes whatever the coupons (only tests ask).
#[cfg(not(test))]
fn wide_asked() -> bool {
    false
}

#[cfg(test)]
fn wide_asked() -> bool {
    tests::WIDE.get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cohorts::simulate;
    use crate::engine::rng::Stream;
    use crate::scenario::{Scenario, exact_fixture, exact_fixture_text, load_str};
    use rand::{RngExt, SeedableRng};

    thread_local! {
        /// Whether the runs of this thread tag their draws with two bytes whatever their coupons.
        pub static WIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// `scenario`'s text with `extra` inserted before its first program.
    fn with_programs_first(name: &str, extra: &str) -> Scenario {
        let text = exact_fixture_text(name);
        let at = text.find("[[program]]").expect("a program");
        let text = format!("{}{extra}{}", &text[..at], &text[at..]);
        load_str(&text, &format!("{name}.toml")).expect("valid")
    }

    #[test]
    fn wide_tags_give_the_runs_of_narrow_ones() {
        // Scenarios whose draws are booked in part and whole, with top-ups: every outcome the
        // same to the unit, whichever width the tags take.
        let mut scenarios = vec![
            load_str(include_str!("../../../scenarios/quick.toml"), "quick.toml").expect("valid"),
        ];
        scenarios.extend(["topup", "two_pools", "coupon_overflow", "budget"].map(exact_fixture));
        for scenario in scenarios {
            let plan = Plan::new(&scenario);
            for rep in 1..=3 {
                let narrow = simulate(&plan, 7, rep);
                WIDE.set(true);
                let wide = simulate(&plan, 7, rep);
                WIDE.set(false);
                assert!(narrow == wide, "{} replication {rep}", scenario.name);
            }
        }
    }

    #[test]
    fn coupon_programs_listed_after_many_others_or_past_the_narrow_limit_run() {
        // 130 traffic programs listed before coupon_overflow's two coupon programs (whose
        // indices then pass 127, where a code by program index no longer fits a byte); and 70
        // coupon programs of small budgets (two-byte tags, slot codes past 127), spent mid-tick
        // so that bookings take lists in part. Both run, and their coupons are redeemed.
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
                .map(|rep| simulate(&plan, 3, rep).count(crate::engine::Count::CouponOrders))
                .sum();
            assert!(redeemed > 0, "{}: no coupon redeemed", scenario.name);
        }
        let many = with_programs_first("coupon_overflow", &coupons);
        assert!(matches!(Tags::new(&Plan::new(&many), 1), Tags::Wide(_)));
    }

    fn counted_like_a_filter<T: Tag + TryFrom<u8> + std::fmt::Debug>() {
        let t = |x: u8| T::try_from(x).ok().expect("small");
        // Runs of one tag longer than the 8-bit counters' block and than 256 (where an 8-bit
        // count would wrap), and tags spread at random, against a plain count.
        let mut r = Stream::seed_from_u64(5);
        let mut lists = vec![
            vec![t(2); 1_000],
            vec![t(0); 255],
            vec![t(1); 256],
            Vec::new(),
        ];
        lists.push((0..10_007).map(|_| t(r.random_range(0..4u8))).collect());
        lists.push(
            [
                vec![t(3); 600],
                vec![t(1); 7],
                vec![t(3); 300],
                vec![T::of_booked(3); 9],
            ]
            .concat(),
        );
        for tags in lists {
            for tag in (0..5).map(t).chain([T::of_booked(3)]) {
                let plain = tags.iter().filter(|&&x| x == tag).count();
                assert_eq!(count_of(&tags, tag), plain, "tag {tag:?} of {}", tags.len());
            }
        }
    }

    #[test]
    fn tags_of_both_widths_are_counted_like_a_filter() {
        counted_like_a_filter::<u8>();
        counted_like_a_filter::<u16>();
    }

    #[test]
    fn a_booked_tag_keeps_its_coupon_and_never_reads_as_a_cell() {
        fn check<T: Tag + std::fmt::Debug>(codes: std::ops::Range<usize>, cells: u8) {
            for code in codes {
                let tag = T::of_booked(code);
                assert!(tag.is_booked());
                assert_eq!(tag.index(), code);
                assert!((0..cells).all(|c| T::of_cell(c) != tag && !T::of_cell(c).is_booked()));
            }
        }
        check::<u8>(0..128, 128);
        check::<u16>(0..256, 255);
    }

    #[test]
    fn slot_codes_do_not_depend_on_where_the_coupon_programs_are_listed() {
        // Traffic programs listed first push the coupon programs' indices past 127: their
        // slot codes stay 1..=4 and decode back.
        let quick = include_str!("../../../scenarios/quick.toml");
        let scenario = load_str(quick, "quick.toml").expect("valid");
        let traffic = scenario
            .programs
            .iter()
            .find(|p| p.traffic().is_some())
            .expect("quick has a traffic program")
            .clone();
        let mut crowded = scenario.clone();
        let coupons: Vec<_> = crowded
            .programs
            .drain(..)
            .filter(|p| p.coupon().is_some())
            .collect();
        crowded.programs = vec![traffic; 200];
        crowded.programs.extend(coupons);
        let plan = Plan::new(&crowded);
        let mut seen = Vec::new();
        for j in 200..crowded.programs.len() {
            for coupon in [Coupon::Reached(j), Coupon::TopUp(j)] {
                let code = slot_code(&plan, coupon);
                assert_eq!(coupon_of_slot_code(&plan, code), coupon);
                seen.push(code);
            }
        }
        assert_eq!(slot_code(&plan, Coupon::None), 0);
        assert_eq!(seen, (1..=seen.len()).collect::<Vec<_>>());
    }
}
