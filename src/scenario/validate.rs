//! Walks a parsed scenario, reporting every problem with its line and key path, and resolves it
//! into a [`Scenario`]. Sections are read in dependency order (funders before the placements that
//! name an owner, placements before the segments that set a reach, …).

use std::collections::BTreeSet;
use std::path::Path;

use toml::de::DeTable;

use super::parse::{Doc, Range, Section};
use super::*;
use crate::error::{Error, Result};
use crate::time::{self, HOURS_PER_DAY, MINUTES_PER_HOUR};

/// Shares and `funded_by` weights must sum to 1 within this tolerance (INTERFACE.md).
const SHARE_TOLERANCE: f64 = 1e-9;
/// Tick length used when `tick_minutes` is absent.
const DEFAULT_TICK_MINUTES: u64 = 60;
/// Replications used when `replications` is absent.
const DEFAULT_REPLICATIONS: u64 = 100;
/// Seed used when `seed` is absent.
const DEFAULT_SEED: u64 = 1;
/// Coupon programs a scenario may have: the `cohorts` engine tells the coupons a basket can get
/// (none, or a program's, reached or topped up to: 1 + 2 × 127 = 255) apart in one byte.
const MAX_COUPON_PROGRAMS: usize = 127;
/// Programs a scenario may have, of either kind: the `cohorts` engine keeps the program of a
/// coupon an order redeemed in 16 bits (indices 0 to 65,535).
const MAX_PROGRAMS: usize = 1 << 16;
/// Users a scenario may have: more than ten times the world's population. The `cohorts`
/// engine's memory does not grow with users but through the users with several sessions in one
/// tick whose sessions can interact, whom it follows one by one: measured on
/// `scenarios/quick.toml` scaled up, one replication with its baseline takes 16 MB at 10^10
/// users and 0.10 GB at 10^11 (4.8 GB at 10^12 with an earlier engine, whose memory also grew
/// with the orders).
pub const MAX_USERS: u64 = 100_000_000_000;
/// Name of the competitor when `[competitor]` gives none.
const DEFAULT_COMPETITOR: &str = "douyin";

const TOP_KEYS: &[&str] = &[
    "scenario",
    "population",
    "segment",
    "placement",
    "frequency",
    "destination",
    "friction",
    "funder",
    "program",
    "calendar",
    "event",
    "macro",
    "competitor",
];

/// Reads and checks a scenario file; `Error::Invalid` lists every problem.
pub fn load_file(path: &Path) -> Result<(Scenario, String)> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let scenario = load_str(&text, &path.display().to_string())?;
    Ok((scenario, text))
}

/// Checks a scenario text; `origin` names it in problems (a file name, or `<default>`).
pub fn load_str(text: &str, origin: &str) -> Result<Scenario> {
    let doc = Doc::new(text, origin);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    // After the first syntax error the parser's recovery reports follow-on errors that only
    // confuse; the first one is the one to fix.
    for e in syntax_errors.iter().take(1) {
        let offset = e.span().map_or(0, |s| s.start);
        doc.report(
            offset,
            "(syntax)",
            format!("{} (valid TOML)", e.message().trim()),
        );
    }
    if !syntax_errors.is_empty() {
        return Err(Error::Invalid(doc.into_problems()));
    }
    let top = Section::root(&doc, &root);
    let scenario = build(&top);
    if doc.problem_count() == 0 {
        Ok(scenario)
    } else {
        Err(Error::Invalid(doc.into_problems()))
    }
}

/// A name list (segments, placements, funders, …) with lookups that report unknown names.
struct Names(Vec<String>);

impl Names {
    fn index(
        &self,
        s: &Section,
        key: &str,
        name: &str,
        offset: usize,
        what: &str,
    ) -> Option<usize> {
        let found = self.0.iter().position(|n| n == name);
        if found.is_none() {
            let known = if self.0.is_empty() {
                "none defined".to_string()
            } else {
                self.0.join(", ")
            };
            s.report(
                key,
                offset,
                format!("unknown {what} \"{name}\" (one of: {known})"),
            );
        }
        found
    }

    /// A mask over the names from an optional list key (absent or empty: all).
    fn mask(&self, s: &Section, key: &str, what: &str) -> Vec<bool> {
        let Some(list) = s.strings(key) else {
            return vec![true; self.0.len()];
        };
        if list.is_empty() {
            return vec![true; self.0.len()];
        }
        let mut mask = vec![false; self.0.len()];
        for (name, offset) in list {
            if let Some(i) = self.index(s, key, &name, offset, what) {
                mask[i] = true;
            }
        }
        mask
    }
}

/// Reads `name` of each element and reports duplicates (looked up in a set: a scenario may have
/// tens of thousands of programs).
fn names_of(items: &[Section], what: &str) -> Names {
    let mut names: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for s in items {
        let name = s.text("name", None);
        if !name.is_empty() && !seen.insert(name.clone()) {
            s.report(
                "name",
                s.offset_of("name"),
                format!("duplicate {what} name \"{name}\" (names are unique)"),
            );
        }
        names.push(name);
    }
    Names(names)
}

fn check_sum(s: &Section, key: &str, total: f64, what: &str) {
    if (total - 1.0).abs() > SHARE_TOLERANCE {
        s.report(
            key,
            s.offset_of(key),
            format!("{what} sum to {total} (they must sum to 1 within 1e-9)"),
        );
    }
}

struct Festival {
    start: Minutes,
    end: Minutes,
    tick_minutes: i64,
}

fn build(top: &Section) -> Scenario {
    top.finish(TOP_KEYS);
    let head = top.table("scenario");
    let (meta, festival) = read_meta(top, head.as_ref());
    let users = match top.table("population") {
        Some(p) => {
            p.finish(&["users"]);
            let users = p.integer("users", 1, None);
            if users > MAX_USERS {
                p.report(
                    "users",
                    p.offset_of("users"),
                    format!(
                        "{users} is too large (at most {MAX_USERS}: the `cohorts` engine \
                         follows users with several sessions in one tick one by one, so past \
                         about 10^10 users its memory grows with the population)"
                    ),
                );
            }
            users
        }
        None => {
            top.report(
                "population",
                top.offset,
                "missing section [population] (with users ≥ 1)",
            );
            1
        }
    };
    let funder_items = top.tables("funder");
    let funders = read_funders(top, &funder_items);
    let funder_names = names_of(&funder_items, "funder");
    let placement_items = top.tables("placement");
    let placement_names = names_of(&placement_items, "placement");
    let placements = read_placements(top, &placement_items, &funder_names);
    let segment_items = top.tables("segment");
    let segment_names = names_of(&segment_items, "segment");
    let segments = read_segments(top, &segment_items, &placement_names);
    let program_items = top.tables("program");
    names_of(&program_items, "program");
    let refs = Refs {
        funders: &funder_names,
        placements: &placement_names,
        segments: &segment_names,
    };
    let programs: Vec<Program> = program_items
        .iter()
        .map(|p| read_program(p, &refs, &festival))
        .collect();
    if let Some(s) = program_items.get(MAX_PROGRAMS) {
        s.report(
            "kind",
            s.offset_of("kind"),
            format!(
                "{} programs (at most {MAX_PROGRAMS} in a scenario)",
                program_items.len()
            ),
        );
    }
    let coupons = program_items
        .iter()
        .zip(&programs)
        .filter(|(_, p)| p.coupon().is_some());
    if let Some((s, _)) = coupons.clone().nth(MAX_COUPON_PROGRAMS) {
        s.report(
            "kind",
            s.offset_of("kind"),
            format!(
                "{} coupon programs (at most {MAX_COUPON_PROGRAMS} in a scenario)",
                coupons.count()
            ),
        );
    }
    let event_items = top.tables("event");
    names_of(&event_items, "event");
    let events = event_items
        .iter()
        .map(|e| read_event(e, &placement_names))
        .collect();
    let (shop, live_room) = read_destinations(top);
    let scenario = Scenario {
        name: meta.0,
        description: meta.1,
        seed: meta.2,
        replications: meta.3,
        compare_replications: meta.4,
        start: festival.start,
        end: festival.end,
        tick_minutes: festival.tick_minutes as u32,
        users,
        segments,
        placements,
        frequency: read_frequency(top),
        shop,
        live_room,
        friction: read_friction(top),
        funders,
        programs,
        calendar: read_calendar(top),
        events,
        macro_: read_macro(top),
        competitor: read_competitor(top),
    };
    // The means are products of keys checked one by one above: read only from a scenario
    // whose every key is valid.
    if top.problem_count() == 0 {
        check_impression_means(&scenario, &placement_items, &program_items);
    }
    scenario
}

/// The most impressions a user may be offered in one tick, on average: organic, on all
/// placements together (`impressions_per_user_day` × reach × traffic × event multipliers × tick
/// length in days, summed), and boosted by any one traffic program (`max_boost` × its
/// placement's organic mean). Published ad loads are a few a day (the default scenario's
/// placements cite 0.5–5 ads a user-day), so this leaves room for any what-if; beyond it the
/// engines' work per user grows with the impressions (the `cohorts` engine splits users by their
/// organic count, the `agents` engine orders each user's impressions), and far beyond it a
/// Poisson count no longer fits its sampler, nor, past about 745, the `cohorts` engine's
/// enumeration of organic counts (which starts from exp(−mean)).
pub const MAX_IMPRESSIONS_PER_TICK: f64 = 500.0;

/// A mean for a message: one decimal, or three significant digits with an exponent past 10^6.
fn readable(x: f64) -> String {
    if x < 1e6 {
        format!("{x:.1}")
    } else {
        format!("{x:.3e}")
    }
}

/// A mean, or infinity if it is not a number: a product of finite keys can overflow, and
/// infinity times a multiplier of 0 is not a number; such a mean is past any limit.
fn or_infinite(mean: f64) -> f64 {
    if mean.is_nan() { f64::INFINITY } else { mean }
}

/// Reports an organic mean, or a traffic program's boosted mean, past
/// [`MAX_IMPRESSIONS_PER_TICK`] at some tick in some segment: the largest, with where it is. An
/// organic mean is reported on the placement that offers most of it there.
fn check_impression_means(scenario: &Scenario, placements: &[Section], programs: &[Section]) {
    let plan = crate::engine::Plan::new(scenario);
    // The largest of `mean(organic means of the tick's segment)` over the ticks in `ticks` and
    // the segments in `segments`: (mean, tick, segment).
    let largest = |mean: &dyn Fn(&[f64]) -> f64, ticks: &[bool], segments: &[bool]| {
        let mut worst = (0.0, 0, 0);
        for (t, by_segment) in plan.lambda.iter().enumerate().filter(|x| ticks[x.0]) {
            for (g, by_placement) in by_segment.iter().enumerate().filter(|x| segments[x.0]) {
                let m = or_infinite(mean(by_placement));
                if m > worst.0 {
                    worst = (m, t, g);
                }
            }
        }
        worst
    };
    let at = |t: usize, g: usize| {
        format!(
            "segment \"{}\" in the tick from {}",
            scenario.segments[g].name,
            time::format(scenario.tick_start(t))
        )
    };
    let every_tick = vec![true; plan.lambda.len()];
    let every_segment = vec![true; scenario.segments.len()];
    let (total, t, g) = largest(&|m| m.iter().sum(), &every_tick, &every_segment);
    if total > MAX_IMPRESSIONS_PER_TICK {
        let by_placement = &plan.lambda[t][g];
        let here = |p: usize| or_infinite(by_placement[p]);
        let p = (0..by_placement.len())
            .max_by(|&a, &b| here(a).total_cmp(&here(b)))
            .expect("a placement");
        let s = &placements[p];
        s.report(
            "impressions_per_user_day",
            s.offset_of("impressions_per_user_day"),
            format!(
                "with the other placements, offers a user {} organic impressions a tick on \
                 average, {} of them here ({}: impressions_per_user_day × reach × traffic × \
                 event multipliers × tick length in days, summed over the placements; at most \
                 {MAX_IMPRESSIONS_PER_TICK})",
                readable(total),
                readable(here(p)),
                at(t, g)
            ),
        );
    }
    for (j, (program, s)) in scenario.programs.iter().zip(programs).enumerate() {
        let Some(buy) = program.traffic() else {
            continue;
        };
        let (mean, t, g) = largest(&|m| m[buy.placement], &plan.in_window[j], &program.segments);
        let boosted = buy.max_boost * mean;
        if boosted > MAX_IMPRESSIONS_PER_TICK {
            s.report(
                "max_boost",
                s.offset_of("max_boost"),
                format!(
                    "offers a user {} boosted impressions a tick on average ({}: max_boost × \
                     the placement's organic mean; at most {MAX_IMPRESSIONS_PER_TICK})",
                    readable(boosted),
                    at(t, g)
                ),
            );
        }
    }
}

type Meta = (String, String, u64, u32, Option<u32>);

fn read_meta(top: &Section, head: Option<&Section>) -> (Meta, Festival) {
    let Some(s) = head else {
        top.report(
            "scenario",
            top.offset,
            "missing section [scenario] (with name, start, end)",
        );
        return (
            Default::default(),
            Festival {
                start: 0,
                end: 0,
                tick_minutes: 60,
            },
        );
    };
    s.finish(&[
        "name",
        "description",
        "seed",
        "replications",
        "compare_replications",
        "start",
        "end",
        "tick_minutes",
    ]);
    let name = s.text("name", None);
    let valid_name = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if s.has("name") && (name.is_empty() || !name.chars().all(valid_name) || name.starts_with('.'))
    {
        s.report(
            "name",
            s.offset_of("name"),
            format!("\"{name}\" cannot name a results folder (letters, digits, _, - and . only)"),
        );
    }
    let description = s.text("description", Some(""));
    let seed = s.integer("seed", 0, Some(DEFAULT_SEED));
    let replications = s.integer("replications", 1, Some(DEFAULT_REPLICATIONS));
    let count = |key: &str, n: u64| {
        u32::try_from(n).unwrap_or_else(|_| {
            s.report(
                key,
                s.offset_of(key),
                format!("{n} is too large (at most {})", u32::MAX),
            );
            1
        })
    };
    let replications = count("replications", replications);
    let compare_replications = s.has("compare_replications").then(|| {
        count(
            "compare_replications",
            s.integer("compare_replications", 1, None),
        )
    });
    let tick = s.integer("tick_minutes", 1, Some(DEFAULT_TICK_MINUTES)) as i64;
    let tick = if MINUTES_PER_HOUR % tick == 0 {
        tick
    } else {
        s.report(
            "tick_minutes",
            s.offset_of("tick_minutes"),
            format!("{tick} does not divide 60 (15, 20, 30 or 60, …)"),
        );
        MINUTES_PER_HOUR
    };
    let start = s.time("start", true);
    let end = s.time("end", true);
    for (key, t) in [("start", start), ("end", end)] {
        if let Some(t) = t
            && time::minute_of_day(t) % tick != 0
        {
            s.report(
                key,
                s.offset_of(key),
                format!(
                    "{} is not on a tick boundary (a multiple of {tick} minutes after the hour)",
                    time::format(t)
                ),
            );
        }
    }
    let (start, end) = match (start, end) {
        (Some(a), Some(b)) if b <= a => {
            s.report(
                "end",
                s.offset_of("end"),
                format!(
                    "{} is not after start {} (end after start)",
                    time::format(b),
                    time::format(a)
                ),
            );
            (a, a + tick)
        }
        (Some(a), Some(b)) => (a, b),
        (a, _) => (a.unwrap_or(0), a.unwrap_or(0) + tick),
    };
    (
        (name, description, seed, replications, compare_replications),
        Festival {
            start,
            end,
            tick_minutes: tick,
        },
    )
}

fn read_funders(top: &Section, items: &[Section]) -> Vec<Funder> {
    if items.is_empty() {
        top.report(
            "funder",
            top.offset,
            "no [[funder]] defined (at least one, e.g. alibaba)",
        );
    }
    items
        .iter()
        .map(|s| {
            s.finish(&["name", "take_rate", "cap", "traffic_cost_ratio"]);
            Funder {
                name: s.text("name", None),
                take_rate: s.number("take_rate", Range::Probability, None),
                cap: s
                    .has("cap")
                    .then(|| yuan_to_units(s.number("cap", Range::Money, Some(0.0)))),
                traffic_cost_ratio: s.number("traffic_cost_ratio", Range::NonNegative, Some(0.0)),
            }
        })
        .collect()
}

fn read_placements(top: &Section, items: &[Section], funders: &Names) -> Vec<Placement> {
    if items.is_empty() {
        top.report(
            "placement",
            top.offset,
            "no [[placement]] defined (at least one, e.g. channels)",
        );
    }
    items
        .iter()
        .map(|s| {
            s.finish(&[
                "name",
                "impressions_per_user_day",
                "ctr",
                "cpm",
                "to_live_room",
                "owner",
            ]);
            let owner_name = s.text("owner", None);
            let owner = if s.has("owner") {
                funders
                    .index(s, "owner", &owner_name, s.offset_of("owner"), "funder")
                    .unwrap_or(0)
            } else {
                0
            };
            Placement {
                name: s.text("name", None),
                impressions_per_user_day: s.number(
                    "impressions_per_user_day",
                    Range::NonNegative,
                    None,
                ),
                ctr: s.number("ctr", Range::Probability, None),
                cpm_yuan: s.number("cpm", Range::Money, None),
                to_live_room: s.number("to_live_room", Range::Probability, Some(0.0)),
                owner,
            }
        })
        .collect()
}

fn read_segments(top: &Section, items: &[Section], placements: &Names) -> Vec<Segment> {
    if items.is_empty() {
        top.report(
            "segment",
            top.offset,
            "no [[segment]] defined (at least one)",
        );
    }
    let segments: Vec<Segment> = items.iter().map(|s| read_segment(s, placements)).collect();
    if !items.is_empty() {
        let total: f64 = segments.iter().map(|s| s.share).sum();
        if (total - 1.0).abs() > SHARE_TOLERANCE {
            items[0].report(
                "share",
                items[0].offset_of("share"),
                format!("segment shares sum to {total} (they must sum to 1 within 1e-9)"),
            );
        }
    }
    segments
}

fn read_segment(s: &Section, placements: &Names) -> Segment {
    s.finish(&[
        "name",
        "share",
        "taobao_app",
        "alipay",
        "base_conversion",
        "price_sensitivity",
        "basket_median",
        "basket_sigma",
        "ctr_multiplier",
        "competitor_leakage",
        "reach",
    ]);
    let mut reach = vec![1.0; placements.0.len()];
    if let Some(table) = s.table("reach") {
        for (key, offset) in table.keys() {
            if let Some(i) = placements.index(&table, &key, &key, offset, "placement") {
                reach[i] = table.number(&key, Range::NonNegative, Some(1.0));
            }
        }
    }
    Segment {
        name: s.text("name", None),
        share: s.number("share", Range::Probability, None),
        taobao_app: s.number("taobao_app", Range::Probability, None),
        alipay: s.number("alipay", Range::Probability, None),
        base_conversion: s.number("base_conversion", Range::Probability, None),
        price_sensitivity: s.number("price_sensitivity", Range::NonNegative, None),
        basket_median_yuan: s.number("basket_median", Range::Positive, None),
        basket_sigma: s.number("basket_sigma", Range::NonNegative, None),
        ctr_multiplier: s.number("ctr_multiplier", Range::NonNegative, Some(1.0)),
        competitor_leakage: s.number("competitor_leakage", Range::Probability, Some(0.0)),
        reach,
    }
}

fn read_frequency(top: &Section) -> Frequency {
    let Some(s) = top.table("frequency") else {
        top.report(
            "frequency",
            top.offset,
            "missing section [frequency] (with cap, a positive integer)",
        );
        return Frequency {
            cap: 1,
            fatigue: 1.0,
        };
    };
    s.finish(&["cap", "fatigue"]);
    let cap = s.integer("cap", 1, None);
    let cap = u32::try_from(cap).unwrap_or_else(|_| {
        s.report(
            "cap",
            s.offset_of("cap"),
            format!("{cap} is too large (at most {})", u32::MAX),
        );
        1
    });
    Frequency {
        cap,
        fatigue: s.number("fatigue", Range::NonNegative, Some(1.0)),
    }
}

fn read_destinations(top: &Section) -> (Destination, LiveRoom) {
    let mut shop = Destination {
        conversion_multiplier: 1.0,
    };
    let mut live = LiveRoom {
        conversion_multiplier: 1.0,
        schedule: Vec::new(),
        capacity_per_tick: None,
    };
    let Some(d) = top.table("destination") else {
        return (shop, live);
    };
    d.finish(&["shop", "live_room"]);
    if let Some(s) = d.table("shop") {
        s.finish(&["conversion_multiplier"]);
        shop.conversion_multiplier =
            s.number("conversion_multiplier", Range::NonNegative, Some(1.0));
    }
    if let Some(s) = d.table("live_room") {
        s.finish(&["conversion_multiplier", "schedule", "capacity_per_tick"]);
        live.conversion_multiplier =
            s.number("conversion_multiplier", Range::NonNegative, Some(1.0));
        live.capacity_per_tick = s
            .has("capacity_per_tick")
            .then(|| s.integer("capacity_per_tick", 0, Some(0)));
        for (text, offset) in s.strings("schedule").unwrap_or_default() {
            match parse_interval(&text) {
                Some(interval) => live.schedule.push(interval),
                None => s.report(
                    "schedule",
                    offset,
                    format!("\"{text}\" does not parse (\"HH:MM-HH:MM\", e.g. \"19:00-02:00\")"),
                ),
            }
        }
    }
    (shop, live)
}

/// Parses `"HH:MM-HH:MM"` into minutes after midnight; `24:00` may only end an interval.
fn parse_interval(text: &str) -> Option<(i64, i64)> {
    let (a, b) = text.split_once('-')?;
    // Digits and ':' only: `time::parse_clock` would also take a sign ("20:00--1:00").
    let clock = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || b == b':')
            .then(|| time::parse_clock(s))
            .flatten()
    };
    let from = clock(a.trim())?;
    let to = clock(b.trim())?;
    (from < time::MINUTES_PER_DAY && from != to).then_some((from, to))
}

fn read_friction(top: &Section) -> Friction {
    let Some(s) = top.table("friction") else {
        top.report(
            "friction",
            top.offset,
            "missing section [friction] (with jump_with_app, jump_h5, alipay_setup)",
        );
        return Friction {
            jump_with_app: 1.0,
            jump_h5: 1.0,
            h5_conversion: 1.0,
            alipay_setup: 0.0,
            payment_interop: false,
        };
    };
    s.finish(&[
        "jump_with_app",
        "jump_h5",
        "h5_conversion",
        "alipay_setup",
        "payment_interop",
    ]);
    Friction {
        jump_with_app: s.number("jump_with_app", Range::Probability, None),
        jump_h5: s.number("jump_h5", Range::Probability, None),
        h5_conversion: s.number("h5_conversion", Range::NonNegative, Some(1.0)),
        alipay_setup: s.number("alipay_setup", Range::Probability, None),
        payment_interop: s.boolean("payment_interop", false),
    }
}

struct Refs<'n> {
    funders: &'n Names,
    placements: &'n Names,
    segments: &'n Names,
}

const PROGRAM_KEYS: &[&str] = &[
    "name",
    "kind",
    "budget",
    "funded_by",
    "pacing",
    "start",
    "end",
    "segments",
    "placements",
    "threshold",
    "discount",
    "per_user_limit",
    "topup_from",
    "topup",
    "placement",
    "max_boost",
];
const COUPON_ONLY: &[&str] = &[
    "placements",
    "threshold",
    "discount",
    "per_user_limit",
    "topup_from",
    "topup",
];
const TRAFFIC_ONLY: &[&str] = &["placement", "max_boost"];

fn read_program(s: &Section, refs: &Refs, festival: &Festival) -> Program {
    s.finish(PROGRAM_KEYS);
    s.text("name", None);
    let kind_text = s.text("kind", None);
    let kind = match kind_text.as_str() {
        "coupon" => ProgramKind::Coupon(read_coupon(s, refs.placements)),
        "traffic" => ProgramKind::Traffic(read_traffic(s, refs.placements)),
        other => {
            if s.has("kind") {
                s.report(
                    "kind",
                    s.offset_of("kind"),
                    format!("\"{other}\" is not a program kind (\"coupon\" or \"traffic\")"),
                );
            }
            ProgramKind::Traffic(TrafficBuy {
                placement: 0,
                max_boost: 0.0,
            })
        }
    };
    let (misplaced, right) = match kind {
        ProgramKind::Coupon(_) => (TRAFFIC_ONLY, "traffic"),
        ProgramKind::Traffic(_) => (COUPON_ONLY, "coupon"),
    };
    if s.has("kind") && ["coupon", "traffic"].contains(&kind_text.as_str()) {
        for key in misplaced.iter().filter(|k| s.has(k)) {
            s.report(
                key,
                s.offset_of(key),
                format!("applies to {right} programs only (this one is kind = \"{kind_text}\")"),
            );
        }
    }
    let pacing = match s.text("pacing", Some("asap")).as_str() {
        "asap" => Pacing::Asap,
        "even" => Pacing::Even,
        "traffic" => Pacing::Traffic,
        other => {
            s.report(
                "pacing",
                s.offset_of("pacing"),
                format!("\"{other}\" is not a pacing (\"asap\", \"even\" or \"traffic\")"),
            );
            Pacing::Asap
        }
    };
    let (start, end) = program_window(s, festival);
    Program {
        name: s.text("name", None),
        kind,
        budget: yuan_to_units(s.number("budget", Range::Money, None)),
        funded_by: read_funded_by(s, refs.funders),
        pacing,
        start,
        end,
        segments: refs.segments.mask(s, "segments", "segment"),
    }
}

fn program_window(s: &Section, festival: &Festival) -> (Minutes, Minutes) {
    let start = s.time("start", false).unwrap_or(festival.start);
    let end = s.time("end", false).unwrap_or(festival.end);
    let inside = |t: Minutes| (festival.start..=festival.end).contains(&t);
    let span = format!(
        "{} to {}",
        time::format(festival.start),
        time::format(festival.end)
    );
    for (key, t) in [("start", start), ("end", end)] {
        if s.has(key) && !inside(t) {
            s.report(
                key,
                s.offset_of(key),
                format!(
                    "{} is outside the festival (program windows lie within {span})",
                    time::format(t)
                ),
            );
        }
    }
    if end <= start {
        s.report(
            "end",
            s.offset_of("end"),
            format!(
                "window is reversed or empty: {} is not after {} (end after start)",
                time::format(end),
                time::format(start)
            ),
        );
    }
    (start, end)
}

fn read_funded_by(s: &Section, funders: &Names) -> Vec<(usize, f64)> {
    let Some(table) = s.table("funded_by") else {
        if !s.has("funded_by") {
            s.report(
                "funded_by",
                s.offset,
                "missing (a table funder → share, shares summing to 1)",
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut total = 0.0;
    for (key, offset) in table.keys() {
        let share = table.number(&key, Range::Probability, Some(0.0));
        total += share;
        if let Some(i) = funders.index(&table, &key, &key, offset, "funder") {
            out.push((i, share));
        }
    }
    if table.keys().is_empty() {
        s.report(
            "funded_by",
            s.offset_of("funded_by"),
            "is empty (at least one funder with a share)",
        );
    } else {
        check_sum(s, "funded_by", total, "funding shares");
    }
    out
}

fn read_coupon(s: &Section, placements: &Names) -> Coupon {
    let threshold_yuan = s.number("threshold", Range::Money, None);
    let discount_yuan = s.number("discount", Range::Money, None);
    if s.has("discount") && discount_yuan == 0.0 {
        s.report(
            "discount",
            s.offset_of("discount"),
            "0 is out of range (a finite number > 0)",
        );
    }
    if s.has("threshold")
        && s.has("discount")
        && discount_yuan >= threshold_yuan
        && discount_yuan > 0.0
    {
        s.report(
            "discount",
            s.offset_of("discount"),
            format!(
                "{discount_yuan} is not below threshold {threshold_yuan} (discount < threshold)"
            ),
        );
    }
    let limit = s.integer("per_user_limit", 1, Some(1));
    Coupon {
        threshold_yuan: units_to_yuan(u128::from(yuan_to_units(threshold_yuan))),
        discount: yuan_to_units(discount_yuan),
        per_user_limit: u32::try_from(limit).unwrap_or(u32::MAX),
        topup_from: s.number("topup_from", Range::Probability, Some(1.0)),
        topup: s.number("topup", Range::Probability, Some(0.0)),
        placements: placements.mask(s, "placements", "placement"),
    }
}

fn read_traffic(s: &Section, placements: &Names) -> TrafficBuy {
    let name = s.text("placement", None);
    let placement = if s.has("placement") {
        placements
            .index(s, "placement", &name, s.offset_of("placement"), "placement")
            .unwrap_or(0)
    } else {
        0
    };
    TrafficBuy {
        placement,
        max_boost: s.number("max_boost", Range::NonNegative, None),
    }
}

/// A calendar or event window: both times required, end after start.
fn dated_window(s: &Section) -> (Minutes, Minutes) {
    let start = s.time("start", true);
    let end = s.time("end", true);
    match (start, end) {
        (Some(a), Some(b)) if b <= a => {
            s.report(
                "end",
                s.offset_of("end"),
                format!(
                    "window is reversed or empty: {} is not after {} (end after start)",
                    time::format(b),
                    time::format(a)
                ),
            );
            (a, a)
        }
        (Some(a), Some(b)) => (a, b),
        _ => (0, 0),
    }
}

fn read_event(s: &Section, placements: &Names) -> Event {
    s.finish(&[
        "name",
        "start",
        "end",
        "placements",
        "destinations",
        "impressions",
        "ctr",
        "conversion",
    ]);
    let (start, end) = dated_window(s);
    let mut destinations = [true; 2];
    if let Some(list) = s.strings("destinations").filter(|l| !l.is_empty()) {
        destinations = [false; 2];
        for (name, offset) in list {
            match DestinationKind::ALL.iter().position(|d| d.name() == name) {
                Some(i) => destinations[i] = true,
                None => s.report(
                    "destinations",
                    offset,
                    format!("unknown destination \"{name}\" (shop or live_room)"),
                ),
            }
        }
    }
    Event {
        name: s.text("name", None),
        start,
        end,
        placements: placements.mask(s, "placements", "placement"),
        destinations,
        impressions: s.number("impressions", Range::NonNegative, Some(1.0)),
        ctr: s.number("ctr", Range::NonNegative, Some(1.0)),
        conversion: s.number("conversion", Range::NonNegative, Some(1.0)),
    }
}

fn read_calendar(top: &Section) -> Calendar {
    let mut calendar = Calendar {
        intraday: vec![1.0; HOURS_PER_DAY],
        windows: Vec::new(),
    };
    let Some(s) = top.table("calendar") else {
        return calendar;
    };
    s.finish(&["intraday", "window"]);
    if let Some(weights) = s.numbers("intraday") {
        let bad = weights.iter().find(|(w, _)| !(w.is_finite() && *w >= 0.0));
        let sum: f64 = weights.iter().map(|(w, _)| w).sum();
        if weights.len() != HOURS_PER_DAY {
            s.report(
                "intraday",
                s.offset_of("intraday"),
                format!(
                    "has {} weights (24 non-negative weights, hour 00 first)",
                    weights.len()
                ),
            );
        } else if let Some((w, offset)) = bad {
            s.report(
                "intraday",
                *offset,
                format!("weight {w} is negative or not finite (24 non-negative weights)"),
            );
        } else if sum <= 0.0 {
            s.report(
                "intraday",
                s.offset_of("intraday"),
                "weights sum to 0 (a positive sum)",
            );
        } else {
            calendar.intraday = weights.iter().map(|(w, _)| *w).collect();
        }
    }
    for w in s.tables("window") {
        w.finish(&["name", "start", "end", "traffic"]);
        let (start, end) = dated_window(&w);
        calendar.windows.push(CalendarWindow {
            name: w.text("name", Some("")),
            start,
            end,
            traffic: w.number("traffic", Range::NonNegative, Some(1.0)),
        });
    }
    calendar
}

fn read_macro(top: &Section) -> Macro {
    let mut m = Macro {
        consumer_confidence: 1.0,
        sensitivity_multiplier: 1.0,
        price_index: 1.0,
    };
    if let Some(s) = top.table("macro") {
        s.finish(&[
            "consumer_confidence",
            "sensitivity_multiplier",
            "price_index",
        ]);
        m.consumer_confidence = s.number("consumer_confidence", Range::NonNegative, Some(1.0));
        m.sensitivity_multiplier =
            s.number("sensitivity_multiplier", Range::NonNegative, Some(1.0));
        m.price_index = s.number("price_index", Range::Positive, Some(1.0));
    }
    m
}

fn read_competitor(top: &Section) -> Competitor {
    let mut c = Competitor {
        name: DEFAULT_COMPETITOR.to_string(),
        pressure: 1.0,
        coupon_retention: 0.0,
    };
    if let Some(s) = top.table("competitor") {
        s.finish(&["name", "pressure", "coupon_retention"]);
        c.name = s.text("name", Some(DEFAULT_COMPETITOR));
        c.pressure = s.number("pressure", Range::NonNegative, Some(1.0));
        c.coupon_retention = s.number("coupon_retention", Range::NonNegative, Some(0.0));
    }
    c
}
