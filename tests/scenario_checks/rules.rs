//! One test per validation rule of the README's scenario reference: each case edits one line of
//! tiny.toml and asserts the file, the edited line and the key path of the problem.

use super::*;

const SCENARIO: &str = "[scenario]";
const URBAN: &str = "name = \"urban\"";
const RURAL: &str = "name = \"rural\"";
const CHANNELS: &str = "name = \"channels\"";
const MOMENTS: &str = "name = \"moments\"";
const TENCENT: &str = "name = \"tencent\"";
const COUPON: &str = "name = \"threshold_coupon\"";
const BOOST: &str = "name = \"channels_boost\"";
const WINDOW: &str = "name = \"main\"";
const EVENT: &str = "name = \"final\"";
const LIVE_ROOM: &str = "[destination.live_room]";

#[test]
fn tiny_is_valid_and_resolved() {
    let s = valid(TINY);
    assert_eq!(s.name, "tiny");
    assert_eq!(
        (
            s.users,
            s.segments.len(),
            s.placements.len(),
            s.funders.len()
        ),
        (500, 2, 2, 2)
    );
    assert_eq!(
        (s.programs.len(), s.events.len(), s.calendar.windows.len()),
        (2, 1, 1)
    );
    assert_eq!(s.ticks(), 6);
    assert_eq!(s.placements[0].owner, 1, "channels is owned by tencent");
    assert_eq!(s.segments[0].reach, vec![1.5, 1.0]);
    assert_eq!(s.live_room.schedule, vec![(20 * 60, 60)]);
}

#[test]
fn optional_sections_may_be_omitted() {
    let mut text = TINY.to_string();
    for header in [
        "[destination.shop]",
        LIVE_ROOM,
        "[calendar]",
        "[[calendar.window]]",
        "[[event]]",
        "[macro]",
        "[competitor]",
    ] {
        text = delete_section_of(&text, header);
    }
    text = delete_section_of(&text, "[[program]]");
    text = delete_section_of(&text, "[[program]]");
    let s = valid(&text);
    assert!(s.programs.is_empty() && s.events.is_empty());
    assert_eq!(s.calendar.intraday, vec![1.0; 24]);
    assert_eq!(s.competitor.name, "douyin");
}

/// `text` without the first section `header` (up to the next blank line).
fn delete_section_of(text: &str, header: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == header)
        .unwrap_or_else(|| panic!("no {header}"));
    let len = lines[at..]
        .iter()
        .position(|l| l.trim().is_empty())
        .unwrap_or(lines.len() - at);
    splice(&lines, at, len, "")
}

#[test]
fn toml_spellings_of_numbers_are_accepted() {
    valid(&set("[population]", "users", "1_000").text);
    valid(&set("[population]", "users", "0x1F4").text);
    valid(&set(CHANNELS, "cpm", "40").text);
    valid(&set(CHANNELS, "cpm", "4_0.0").text);
    valid(&set(CHANNELS, "cpm", "4e1").text);
}

#[test]
fn shares_summing_to_1_up_to_rounding_are_accepted() {
    // 0.1 + 0.2 + 0.7 is 1.0000000000000002 in floating point: within 1e-9 of 1.
    let third = "\n[[segment]]\nname = \"town\"\nshare = 0.7\ntaobao_app = 0.5\n\
                 alipay = 0.5\nbase_conversion = 0.1\nprice_sensitivity = 1\n\
                 basket_median = 100\nbasket_sigma = 0.5\n";
    let text = set(URBAN, "share", "0.1")
        .text
        .replacen("share = 0.4", "share = 0.2", 1)
        + third;
    assert_eq!(valid(&text).segments.len(), 3);
}

#[test]
fn unknown_key_suggests_the_nearest_valid_key() {
    let case = replace("share = 0.6", "shar = 0.6");
    expect(&case, "segment.urban.shar", "did you mean `share`");
    expect_only(
        &replace("tick_minutes = 60", "tick_minute = 60"),
        "scenario.tick_minute",
        "did you mean `tick_minutes`",
    );
    expect_only(
        &replace("fatigue = 0.8", "fatigu = 0.8"),
        "frequency.fatigu",
        "did you mean `fatigue`",
    );
    expect_only(
        &replace("[macro]", "[macros]"),
        "macros",
        "did you mean `macro`",
    );
    expect_only(
        &replace("[destination.shop]", "[destination.shops]"),
        "destination.shops",
        "did you mean `shop`",
    );
    expect_only(
        &replace("max_boost = 1.0", "max_bost = 1.0\nmax_boost = 1.0"),
        "program.channels_boost.max_bost",
        "did you mean `max_boost`",
    );
}

#[test]
fn unknown_key_far_from_every_valid_key_lists_them() {
    expect_only(
        &insert_after("cap = 3", "zzzzzzzzzzzz = 1"),
        "frequency.zzzzzzzzzzzz",
        "expected one of: cap, fatigue",
    );
}

#[test]
fn unknown_key_is_reported_in_every_section() {
    let sections = [
        (SCENARIO, "scenario"),
        ("[population]", "population"),
        (URBAN, "segment.urban"),
        (RURAL, "segment.rural"),
        (CHANNELS, "placement.channels"),
        ("[frequency]", "frequency"),
        ("[destination.shop]", "destination.shop"),
        (LIVE_ROOM, "destination.live_room"),
        ("[friction]", "friction"),
        (TENCENT, "funder.tencent"),
        (COUPON, "program.threshold_coupon"),
        (BOOST, "program.channels_boost"),
        ("[calendar]", "calendar"),
        (WINDOW, "calendar.window.main"),
        (EVENT, "event.final"),
        ("[macro]", "macro"),
        ("[competitor]", "competitor"),
    ];
    let cases: Vec<(Case, String, &str)> = sections
        .iter()
        .map(|(anchor, path)| {
            let case = insert_after(anchor, "bogus_key_xyz = 1");
            (case, format!("{path}.bogus_key_xyz"), "unknown key")
        })
        .collect();
    expect_each(&cases);
    let top = insert_after(
        "# A tiny scenario used by the test suite: every section, small numbers.",
        "bogus_key_xyz = 1",
    );
    expect_only(&top, "bogus_key_xyz", "unknown key");
}

#[test]
fn wrong_types_are_reported() {
    expect_each(&[
        (
            set(SCENARIO, "name", "5"),
            "scenario.name",
            "wrong type (a string)",
        ),
        (set(SCENARIO, "seed", "1.5"), "scenario.seed", "wrong type"),
        (
            set(SCENARIO, "start", "2023-11-10T20:00:00"),
            "scenario.start",
            "wrong type",
        ),
        (
            set(SCENARIO, "tick_minutes", "\"60\""),
            "scenario.tick_minutes",
            "wrong type",
        ),
        (
            set("[population]", "users", "\"many\""),
            "population.users",
            "wrong type (an integer ≥ 1)",
        ),
        (
            set("[population]", "users", "500.0"),
            "population.users",
            "wrong type",
        ),
        (
            set(URBAN, "share", "\"0.6\""),
            "segment.urban.share",
            "wrong type (a probability in [0, 1])",
        ),
        (
            set(URBAN, "basket_median", "true"),
            "segment.urban.basket_median",
            "wrong type",
        ),
        (
            set(URBAN, "reach", "1.5"),
            "segment.urban.reach",
            "wrong type (a table)",
        ),
        (
            set(URBAN, "reach", "{ channels = \"high\" }"),
            "segment.urban.reach.channels",
            "wrong type",
        ),
        (
            set(CHANNELS, "owner", "[\"tencent\"]"),
            "placement.channels.owner",
            "wrong type",
        ),
        (
            set("[frequency]", "cap", "3.5"),
            "frequency.cap",
            "wrong type",
        ),
        (
            set(LIVE_ROOM, "schedule", "\"20:00-01:00\""),
            "destination.live_room.schedule",
            "wrong type (a list of strings)",
        ),
        (
            set(LIVE_ROOM, "schedule", "[2000]"),
            "destination.live_room.schedule",
            "wrong type",
        ),
        (
            insert_after("alipay_setup = 0.3", "payment_interop = 1"),
            "friction.payment_interop",
            "wrong type (true or false)",
        ),
        (
            set(COUPON, "funded_by", "\"alibaba\""),
            "program.threshold_coupon.funded_by",
            "wrong type (a table)",
        ),
        (
            set(COUPON, "kind", "1"),
            "program.threshold_coupon.kind",
            "wrong type",
        ),
        (
            set(BOOST, "segments", "\"rural\""),
            "program.channels_boost.segments",
            "wrong type",
        ),
        (
            set("[calendar]", "intraday", "1"),
            "calendar.intraday",
            "wrong type (a list of numbers)",
        ),
        (
            set(EVENT, "placements", "\"channels\""),
            "event.final.placements",
            "wrong type",
        ),
        (
            set("[competitor]", "name", "false"),
            "competitor.name",
            "wrong type",
        ),
    ]);
    let text = format!("frequency = 3\n{}", delete_section("[frequency]"));
    expect_at(&text, 1, "frequency", "wrong type (a table)");
}

#[test]
fn probabilities_outside_0_1_are_reported() {
    let keys = [
        (URBAN, "share", "segment.urban.share"),
        (URBAN, "taobao_app", "segment.urban.taobao_app"),
        (URBAN, "alipay", "segment.urban.alipay"),
        (URBAN, "base_conversion", "segment.urban.base_conversion"),
        (
            RURAL,
            "competitor_leakage",
            "segment.rural.competitor_leakage",
        ),
        (CHANNELS, "ctr", "placement.channels.ctr"),
        (CHANNELS, "to_live_room", "placement.channels.to_live_room"),
        ("[friction]", "jump_with_app", "friction.jump_with_app"),
        ("[friction]", "jump_h5", "friction.jump_h5"),
        ("[friction]", "alipay_setup", "friction.alipay_setup"),
        (TENCENT, "take_rate", "funder.tencent.take_rate"),
        (COUPON, "topup_from", "program.threshold_coupon.topup_from"),
        (COUPON, "topup", "program.threshold_coupon.topup"),
    ];
    let mut cases = Vec::new();
    for value in ["-0.1", "1.5", "nan", "inf"] {
        for (anchor, key, path) in keys {
            cases.push((set(anchor, key, value), path, "(a probability in [0, 1])"));
        }
    }
    let funded = set(COUPON, "funded_by", "{ alibaba = 1.3, tencent = -0.3 }");
    cases.push((
        funded,
        "program.threshold_coupon.funded_by.alibaba",
        "1.3 is out of range (a probability in [0, 1])",
    ));
    let funded = set(COUPON, "funded_by", "{ alibaba = 1.3, tencent = -0.3 }");
    cases.push((
        funded,
        "program.threshold_coupon.funded_by.tencent",
        "-0.3 is out of range",
    ));
    expect_each(&cases);
    valid(&set(CHANNELS, "ctr", "0").text);
    valid(&set(CHANNELS, "ctr", "1").text);
}

#[test]
fn segment_shares_must_sum_to_1() {
    let case = set(URBAN, "share", "0.5");
    expect_only(&case, "segment.urban.share", "segment shares sum to 0.9");
    let case = set(URBAN, "share", "0.7");
    expect_only(
        &case,
        "segment.urban.share",
        "(they must sum to 1 within 1e-9)",
    );
    // Within the tolerance: off by 1e-12.
    valid(&set(URBAN, "share", "0.600000000001").text);
    // Only the first segment carries the sum problem, whichever share is off.
    let case = set(RURAL, "share", "0.3");
    let line = TINY
        .lines()
        .position(|l| l == "share = 0.6")
        .expect("urban share")
        + 1;
    let found = expect_at(&case.text, line, "segment.urban.share", "sum to");
    assert_eq!(found.len(), 1);
}

#[test]
fn funded_by_shares_must_sum_to_1() {
    let case = set(COUPON, "funded_by", "{ alibaba = 0.7, tencent = 0.2 }");
    expect_only(
        &case,
        "program.threshold_coupon.funded_by",
        "funding shares sum to 0.8",
    );
    let case = set(BOOST, "funded_by", "{ alibaba = 0.5 }");
    expect_only(
        &case,
        "program.channels_boost.funded_by",
        "(they must sum to 1 within 1e-9)",
    );
    expect_only(
        &set(BOOST, "funded_by", "{}"),
        "program.channels_boost.funded_by",
        "is empty",
    );
    valid(&set(BOOST, "funded_by", "{ tencent = 1 }").text);
    valid(&set(BOOST, "funded_by", "{ alibaba = 0.1, tencent = 0.9 }").text);
}

#[test]
fn negative_and_non_finite_numbers_are_reported() {
    let keys = [
        (
            URBAN,
            "price_sensitivity",
            "segment.urban.price_sensitivity",
        ),
        (URBAN, "basket_median", "segment.urban.basket_median"),
        (URBAN, "basket_sigma", "segment.urban.basket_sigma"),
        (
            CHANNELS,
            "impressions_per_user_day",
            "placement.channels.impressions_per_user_day",
        ),
        (CHANNELS, "cpm", "placement.channels.cpm"),
        ("[frequency]", "fatigue", "frequency.fatigue"),
        (
            "[destination.shop]",
            "conversion_multiplier",
            "destination.shop.conversion_multiplier",
        ),
        (
            LIVE_ROOM,
            "conversion_multiplier",
            "destination.live_room.conversion_multiplier",
        ),
        ("[friction]", "h5_conversion", "friction.h5_conversion"),
        (
            TENCENT,
            "traffic_cost_ratio",
            "funder.tencent.traffic_cost_ratio",
        ),
        (TENCENT, "cap", "funder.tencent.cap"),
        (COUPON, "budget", "program.threshold_coupon.budget"),
        (COUPON, "threshold", "program.threshold_coupon.threshold"),
        (COUPON, "discount", "program.threshold_coupon.discount"),
        (BOOST, "max_boost", "program.channels_boost.max_boost"),
        (WINDOW, "traffic", "calendar.window.main.traffic"),
        (EVENT, "impressions", "event.final.impressions"),
        (EVENT, "conversion", "event.final.conversion"),
        (
            "[macro]",
            "consumer_confidence",
            "macro.consumer_confidence",
        ),
        (
            "[macro]",
            "sensitivity_multiplier",
            "macro.sensitivity_multiplier",
        ),
        ("[macro]", "price_index", "macro.price_index"),
        ("[competitor]", "pressure", "competitor.pressure"),
        (
            "[competitor]",
            "coupon_retention",
            "competitor.coupon_retention",
        ),
    ];
    let mut cases = Vec::new();
    for value in ["-1", "-0.5", "inf", "-inf", "nan", "+nan", "1e400"] {
        for (anchor, key, path) in keys {
            cases.push((
                set(anchor, key, value),
                path,
                "is out of range (a finite number",
            ));
        }
    }
    for (anchor, key, path) in [
        (URBAN, "ctr_multiplier", "segment.urban.ctr_multiplier"),
        (EVENT, "ctr", "event.final.ctr"),
    ] {
        cases.push((
            insert_after(anchor, &format!("{key} = -2")),
            path,
            "-2 is out of range (a finite number ≥ 0)",
        ));
        cases.push((
            insert_after(anchor, &format!("{key} = inf")),
            path,
            "inf is out of range",
        ));
    }
    expect_each(&cases);
}

#[test]
fn zero_where_positive_is_required_is_reported() {
    expect_each(&[
        (
            set(URBAN, "basket_median", "0"),
            "segment.urban.basket_median",
            "(a finite number > 0)",
        ),
        (
            set("[macro]", "price_index", "0.0"),
            "macro.price_index",
            "(a finite number > 0)",
        ),
        (
            set(COUPON, "discount", "0"),
            "program.threshold_coupon.discount",
            "(a finite number > 0)",
        ),
    ]);
    valid(&set(URBAN, "basket_sigma", "0").text);
    valid(&set(COUPON, "budget", "0").text);
}

#[test]
fn users_past_ten_times_the_world_are_reported_and_the_limit_itself_is_valid() {
    // The cohorts engine follows several-session users one by one: 9 × 10^18 users aborted a
    // run on an allocation of 53 TB before the limit; 10^11 (tests/data/hard_huge.toml) runs.
    for users in ["100_000_000_001", "9_000_000_000_000_000_000"] {
        expect_only(
            &set("[population]", "users", users),
            "population.users",
            "is too large (at most 100000000000",
        );
    }
    valid(&set("[population]", "users", "100_000_000_000").text);
}

#[test]
fn impression_means_past_500_a_tick_are_reported_and_those_below_are_valid() {
    // tiny.toml's busiest tick for urban users (21:00 and 22:00): on channels reach 1.5 × traffic
    // 2 / (28/24) (the intraday weight over the weights' mean) × window 1.5 × event 2 × 1/24 of a
    // day = 0.32143 × impressions_per_user_day, on moments 12 × 1.7143 × 1.5 / 24 = 1.2857; so
    // channels at 1552 offer 498.9 + 1.3 = 500.1 impressions a tick and at 1551 offer 499.8. The
    // boost targets rural users (reach 1): 24 × 0.21429 = 5.1429 organic impressions a tick on
    // channels, so max_boost 97.3 offers 500.4 boosted ones and 97.2 offers 499.9.
    // Before the rule, an organic mean past about 745 a tick made the `cohorts` engine follow
    // users one by one (10^5 a day took 34 s for `scenarios/quick.toml`), and far larger ones
    // hung it or failed the Poisson sampler.
    expect_only(
        &set(CHANNELS, "impressions_per_user_day", "1552.0"),
        "placement.channels.impressions_per_user_day",
        "offers a user 500.1 organic impressions a tick on average, 498.9 of them here (segment \
         \"urban\" in the tick from 2023-11-10 21:00",
    );
    expect_only(
        &set(BOOST, "max_boost", "97.3"),
        "program.channels_boost.max_boost",
        "offers a user 500.4 boosted impressions a tick on average (segment \"rural\" in the \
         tick from 2023-11-10 21:00",
    );
    // Far past the limit both the placement and the program on it are reported, in readable
    // numbers.
    let huge = set(CHANNELS, "impressions_per_user_day", "1e30");
    let found = expect(
        &huge,
        "placement.channels.impressions_per_user_day",
        "offers a user 3.214e29 organic impressions",
    );
    assert_eq!(found.len(), 2, "{}", listing(&found));
    assert_eq!(found[1].key, "program.channels_boost.max_boost");
    // Keys each finite whose product is not a number (10^300 × 10^300 overflows, then an event
    // multiplier of 0 at every tick): reported as infinite, not let through to the samplers.
    let mut nan = set(CHANNELS, "impressions_per_user_day", "1e300");
    nan.text = nan
        .text
        .replace("reach = { channels = 1.5 }", "reach = { channels = 1e300 }")
        .replace(
            "start = \"2023-11-10 21:00\"",
            "start = \"2023-11-10 20:00\"",
        )
        .replace("end = \"2023-11-10 23:00\"", "end = \"2023-11-11 02:00\"")
        .replace("impressions = 2.0", "impressions = 0.0");
    expect_only(
        &nan,
        "placement.channels.impressions_per_user_day",
        "offers a user inf organic impressions a tick on average, inf of them here",
    );
    valid(&set(CHANNELS, "impressions_per_user_day", "1551.0").text);
    valid(&set(BOOST, "max_boost", "97.2").text);
}

#[test]
fn zero_users_and_other_integers_below_their_minimum_are_reported() {
    expect_only(
        &set("[population]", "users", "0"),
        "population.users",
        "0 is out of range (an integer ≥ 1)",
    );
    expect_each(&[
        (
            set("[population]", "users", "-5"),
            "population.users",
            "-5 is out of range (an integer ≥ 1)",
        ),
        (
            set(SCENARIO, "replications", "0"),
            "scenario.replications",
            "(an integer ≥ 1)",
        ),
        (
            set(SCENARIO, "replications", "99999999999"),
            "scenario.replications",
            "too large",
        ),
        (
            insert_after(SCENARIO, "compare_replications = 0"),
            "scenario.compare_replications",
            "(an integer ≥ 1)",
        ),
        (
            insert_after(SCENARIO, "compare_replications = 99999999999"),
            "scenario.compare_replications",
            "too large",
        ),
        (
            set(SCENARIO, "seed", "-1"),
            "scenario.seed",
            "(an integer ≥ 0)",
        ),
        (
            set("[frequency]", "cap", "0"),
            "frequency.cap",
            "(an integer ≥ 1)",
        ),
        (
            set(LIVE_ROOM, "capacity_per_tick", "-1"),
            "destination.live_room.capacity_per_tick",
            "(an integer ≥ 0)",
        ),
        (
            set(COUPON, "per_user_limit", "0"),
            "program.threshold_coupon.per_user_limit",
            "(an integer ≥ 1)",
        ),
        (
            set("[population]", "users", "99999999999999999999"),
            "population.users",
            "out of range",
        ),
    ]);
    valid(&set(LIVE_ROOM, "capacity_per_tick", "0").text);
    valid(&set(SCENARIO, "seed", "0").text);
}

#[test]
fn duplicate_names_are_reported() {
    expect_each(&[
        (
            replace(RURAL, URBAN),
            "segment.urban.name",
            "duplicate segment name \"urban\"",
        ),
        (
            replace(MOMENTS, CHANNELS),
            "placement.channels.name",
            "duplicate placement name \"channels\"",
        ),
        (
            replace(TENCENT, "name = \"alibaba\""),
            "funder.alibaba.name",
            "duplicate funder name \"alibaba\"",
        ),
        (
            replace(BOOST, COUPON),
            "program.threshold_coupon.name",
            "duplicate program name",
        ),
    ]);
    // A second event named like the first, appended at the end.
    let text = format!(
        "{TINY}\n[[event]]\nname = \"final\"\n\
         start = \"2023-11-10 22:00\"\nend = \"2023-11-10 23:00\"\n"
    );
    let line = TINY.lines().count() + 3;
    expect_at(
        &text,
        line,
        "event.final.name",
        "duplicate event name \"final\" (names are unique)",
    );
}

#[test]
fn unknown_references_are_reported() {
    expect_each(&[
        (
            replace_after(CHANNELS, "owner = \"tencent\"", "owner = \"tencnet\""),
            "placement.channels.owner",
            "unknown funder \"tencnet\" (one of: alibaba, tencent)",
        ),
        (
            set(URBAN, "reach", "{ chanels = 1.5 }"),
            "segment.urban.reach.chanels",
            "unknown placement \"chanels\"",
        ),
        (
            set(COUPON, "funded_by", "{ alibaba = 0.7, tencnet = 0.3 }"),
            "program.threshold_coupon.funded_by.tencnet",
            "unknown funder",
        ),
        (
            set(BOOST, "segments", "[\"rurall\"]"),
            "program.channels_boost.segments",
            "unknown segment \"rurall\" (one of: urban, rural)",
        ),
        (
            insert_after("topup = 0.3", "placements = [\"momnets\"]"),
            "program.threshold_coupon.placements",
            "unknown placement \"momnets\"",
        ),
        (
            insert_after("topup = 0.3", "segments = [\"urban\", \"suburban\"]"),
            "program.threshold_coupon.segments",
            "unknown segment \"suburban\"",
        ),
        (
            set(BOOST, "placement", "\"channel\""),
            "program.channels_boost.placement",
            "unknown placement \"channel\" (one of: channels, moments)",
        ),
        (
            set(EVENT, "placements", "[\"chanels\"]"),
            "event.final.placements",
            "unknown placement",
        ),
        (
            set(EVENT, "destinations", "[\"live\"]"),
            "event.final.destinations",
            "unknown destination \"live\" (shop or live_room)",
        ),
    ]);
}

#[test]
fn reference_on_a_continuation_line_is_located_on_that_line() {
    let case = set(EVENT, "placements", "[\n  \"channels\",\n  \"chanels\",\n]");
    expect_at(
        &case.text,
        case.line + 2,
        "event.final.placements",
        "unknown placement \"chanels\"",
    );
}

#[test]
fn traffic_program_on_an_unknown_placement_is_reported() {
    expect_only(
        &set(BOOST, "placement", "\"tencent_video\""),
        "program.channels_boost.placement",
        "unknown placement \"tencent_video\"",
    );
    let case = delete_after(BOOST, "placement = \"channels\"");
    expect(&case, "program.channels_boost.placement", "missing");
}

#[test]
fn reversed_windows_are_reported() {
    let window = set(WINDOW, "end", "\"2023-11-10 19:00\"");
    expect_only(
        &window,
        "calendar.window.main.end",
        "window is reversed or empty",
    );
    let empty = set(EVENT, "end", "\"2023-11-10 21:00\"");
    expect_only(&empty, "event.final.end", "(end after start)");
    let program = insert_after(
        "pacing = \"even\"",
        "start = \"2023-11-11 01:00\"\nend = \"2023-11-10 22:00\"",
    );
    expect_at(
        &program.text,
        program.line + 1,
        "program.threshold_coupon.end",
        "window is reversed or empty",
    );
    assert_eq!(problems(&program.text).len(), 1);
}

#[test]
fn program_windows_lie_inside_the_festival() {
    let early = insert_after(BOOST, "start = \"2023-11-10 19:00\"");
    expect_only(
        &early,
        "program.channels_boost.start",
        "is outside the festival",
    );
    let late = insert_after(BOOST, "end = \"2023-11-11 03:00\"");
    expect_only(
        &late,
        "program.channels_boost.end",
        "(program windows lie within 2023-11-10 20:00 to 2023-11-11 02:00)",
    );
    valid(
        &insert_after(
            BOOST,
            "start = \"2023-11-10 20:00\"\nend = \"2023-11-11 02:00\"",
        )
        .text,
    );
    valid(
        &insert_after(
            BOOST,
            "start = \"2023-11-10 22:00\"\nend = \"2023-11-11 00:00\"",
        )
        .text,
    );
}

#[test]
fn calendar_and_event_windows_may_reach_beyond_the_festival() {
    let text = set(WINDOW, "start", "\"2023-11-01 00:00\"")
        .text
        .replace("end = \"2023-11-11 01:00\"", "end = \"2023-12-01 00:00\"");
    valid(&text);
    let text = set(EVENT, "start", "\"2023-11-09 00:00\"")
        .text
        .replace("end = \"2023-11-10 23:00\"", "end = \"2023-11-12 00:00\"");
    valid(&text);
}

#[test]
fn times_that_do_not_parse_are_reported() {
    expect_each(&[
        (
            set(SCENARIO, "start", "\"2023-11-10\""),
            "scenario.start",
            "is not a valid time (a time \"YYYY-MM-DD HH:MM\"",
        ),
        (
            set(SCENARIO, "end", "\"2023-02-29 00:00\""),
            "scenario.end",
            "is not a valid time",
        ),
        (
            set(SCENARIO, "start", "\"2023-11-10 24:00\""),
            "scenario.start",
            "is not a valid time",
        ),
        (
            set(SCENARIO, "start", "\"2023-11-10 -1:00\""),
            "scenario.start",
            "is not a valid time",
        ),
        (
            set(SCENARIO, "start", "\"2023-11-10 20:-1\""),
            "scenario.start",
            "is not a valid time",
        ),
        (
            set(SCENARIO, "start", "\"2023-+1-10 20:00\""),
            "scenario.start",
            "is not a valid time",
        ),
        (
            set(WINDOW, "start", "\"10 Nov 2023 20:00\""),
            "calendar.window.main.start",
            "is not a valid time",
        ),
        (
            set(EVENT, "end", "\"2023-11-10 23:60\""),
            "event.final.end",
            "is not a valid time",
        ),
        (
            insert_after(COUPON, "start = \"2023-11-10 8pm\""),
            "program.threshold_coupon.start",
            "is not a valid time",
        ),
    ]);
}

#[test]
fn live_room_schedules_that_do_not_parse_are_reported() {
    let bad = [
        "20:00",
        "8pm-1am",
        "20:00-25:00",
        "24:00-01:00",
        "20:00-20:00",
        "20:00--1:00",
        "-1:00-02:00",
        "20:-5-22:00",
        "2000-0100",
        "20:00-1:00",
    ];
    let cases: Vec<(Case, &str, &str)> = bad
        .iter()
        .map(|b| {
            (
                set(LIVE_ROOM, "schedule", &format!("[\"{b}\"]")),
                "destination.live_room.schedule",
                "does not parse (\"HH:MM-HH:MM\"",
            )
        })
        .collect();
    expect_each(&cases);
    let second = set(LIVE_ROOM, "schedule", "[\"10:00-12:00\", \"19:00-2:00\"]");
    let found = expect(
        &second,
        "destination.live_room.schedule",
        "\"19:00-2:00\" does not parse",
    );
    assert_eq!(found.len(), 1);
}

#[test]
fn live_room_schedules_may_wrap_and_end_at_24_00() {
    let s = valid(
        &set(
            LIVE_ROOM,
            "schedule",
            "[\"22:00-24:00\", \"00:00-01:00\", \"23:00-02:00\"]",
        )
        .text,
    );
    assert_eq!(
        s.live_room.schedule,
        vec![(1320, 1440), (0, 60), (1380, 120)]
    );
    let s = valid(&set(LIVE_ROOM, "schedule", "[]").text);
    assert!(s.live_room.schedule.is_empty());
}

#[test]
fn intraday_profile_is_24_non_negative_weights_with_a_positive_sum() {
    let weights = |w: &[&str]| format!("[{}]", w.join(", "));
    let ones = vec!["1"; 24];
    let mut negative = ones.clone();
    negative[5] = "-1";
    let mut not_finite = ones.clone();
    not_finite[23] = "inf";
    let mut more = ones.clone();
    more.push("1");
    let mut not_a_number = ones.clone();
    not_a_number[0] = "nan";
    expect_each(&[
        (
            set("[calendar]", "intraday", &weights(&ones[..23])),
            "calendar.intraday",
            "has 23 weights (24 non-negative weights",
        ),
        (
            set("[calendar]", "intraday", &weights(&more)),
            "calendar.intraday",
            "has 25 weights",
        ),
        (
            set("[calendar]", "intraday", "[]"),
            "calendar.intraday",
            "has 0 weights",
        ),
        (
            set("[calendar]", "intraday", &weights(&negative)),
            "calendar.intraday",
            "weight -1 is negative",
        ),
        (
            set("[calendar]", "intraday", &weights(&not_finite)),
            "calendar.intraday",
            "weight inf is negative or not finite",
        ),
        (
            set("[calendar]", "intraday", &weights(&not_a_number)),
            "calendar.intraday",
            "weight NaN",
        ),
        (
            set("[calendar]", "intraday", &weights(&["0"; 24])),
            "calendar.intraday",
            "weights sum to 0 (a positive sum)",
        ),
        (
            set("[calendar]", "intraday", &weights(&["0.0"; 24])),
            "calendar.intraday",
            "(a positive sum)",
        ),
    ]);
    let mut one_hour = vec!["0"; 24];
    one_hour[20] = "3";
    valid(&set("[calendar]", "intraday", &weights(&one_hour)).text);
}

#[test]
fn a_bad_weight_on_a_continuation_line_is_located_on_that_line() {
    let mut lines = ["1, 1, 1, 1, 1, 1,"; 4];
    lines[2] = "1, 1, -3, 1, 1, 1,";
    let case = set(
        "[calendar]",
        "intraday",
        &format!("[\n{}\n]", lines.join("\n")),
    );
    expect_at(
        &case.text,
        case.line + 3,
        "calendar.intraday",
        "weight -3 is negative",
    );
}

#[test]
fn end_must_be_after_start() {
    let same = set(SCENARIO, "end", "\"2023-11-10 20:00\"");
    expect_only(
        &same,
        "scenario.end",
        "is not after start 2023-11-10 20:00 (end after start)",
    );
    let before = set(SCENARIO, "end", "\"2023-11-09 20:00\"");
    expect(&before, "scenario.end", "(end after start)");
}

#[test]
fn coupon_discount_must_be_below_its_threshold() {
    let equal = set(COUPON, "discount", "150.0");
    expect_only(
        &equal,
        "program.threshold_coupon.discount",
        "150 is not below threshold 150 (discount < threshold)",
    );
    let above = set(COUPON, "discount", "200");
    expect_only(
        &above,
        "program.threshold_coupon.discount",
        "not below threshold",
    );
    let zero_threshold = set(COUPON, "threshold", "0");
    let discount_line = TINY
        .lines()
        .position(|l| l == "discount = 20.0")
        .expect("discount")
        + 1;
    expect_at(
        &zero_threshold.text,
        discount_line,
        "program.threshold_coupon.discount",
        "not below threshold 0",
    );
    valid(&set(COUPON, "discount", "149.99").text);
}

#[test]
fn tick_minutes_must_divide_60() {
    let cases: Vec<(Case, &str, &str)> = ["7", "45", "90", "120", "25"]
        .iter()
        .map(|t| {
            (
                set(SCENARIO, "tick_minutes", t),
                "scenario.tick_minutes",
                "does not divide 60 (15, 20, 30 or 60",
            )
        })
        .collect();
    expect_each(&cases);
    expect(
        &set(SCENARIO, "tick_minutes", "0"),
        "scenario.tick_minutes",
        "(an integer ≥ 1)",
    );
    for ok in ["1", "5", "15", "20", "30", "60"] {
        let s = valid(&set(SCENARIO, "tick_minutes", ok).text);
        assert_eq!(
            s.ticks() as u32 * s.tick_minutes,
            6 * 60,
            "tick_minutes = {ok}"
        );
    }
}

#[test]
fn start_and_end_lie_on_tick_boundaries() {
    let start = set(SCENARIO, "start", "\"2023-11-10 20:30\"");
    expect_only(
        &start,
        "scenario.start",
        "is not on a tick boundary (a multiple of 60 minutes after the hour)",
    );
    let end = set(SCENARIO, "end", "\"2023-11-11 01:45\"");
    expect_only(&end, "scenario.end", "not on a tick boundary");
    let fifteen = set(SCENARIO, "tick_minutes", "15").text;
    let fifteen = fifteen.replacen(
        "start = \"2023-11-10 20:00\"",
        "start = \"2023-11-10 20:10\"",
        1,
    );
    let line = TINY
        .lines()
        .position(|l| l.starts_with("start = "))
        .expect("start")
        + 1;
    expect_at(
        &fifteen,
        line,
        "scenario.start",
        "(a multiple of 15 minutes after the hour)",
    );
    valid(&set(SCENARIO, "tick_minutes", "30").text.replacen(
        "2023-11-10 20:00",
        "2023-11-10 20:30",
        1,
    ));
}

#[test]
fn kind_specific_keys_on_the_other_kind_are_reported() {
    expect_each(&[
        (
            insert_after(BOOST, "threshold = 100.0"),
            "program.channels_boost.threshold",
            "applies to coupon programs only (this one is kind = \"traffic\")",
        ),
        (
            insert_after(BOOST, "discount = 10.0"),
            "program.channels_boost.discount",
            "coupon programs only",
        ),
        (
            insert_after(BOOST, "per_user_limit = 2"),
            "program.channels_boost.per_user_limit",
            "coupon programs only",
        ),
        (
            insert_after(BOOST, "topup_from = 0.9"),
            "program.channels_boost.topup_from",
            "coupon programs only",
        ),
        (
            insert_after(BOOST, "topup = 0.1"),
            "program.channels_boost.topup",
            "coupon programs only",
        ),
        (
            insert_after(BOOST, "placements = [\"channels\"]"),
            "program.channels_boost.placements",
            "coupon programs only",
        ),
        (
            insert_after(COUPON, "placement = \"channels\""),
            "program.threshold_coupon.placement",
            "applies to traffic programs only (this one is kind = \"coupon\")",
        ),
        (
            insert_after(COUPON, "max_boost = 2.0"),
            "program.threshold_coupon.max_boost",
            "traffic programs only",
        ),
    ]);
    expect_only(
        &insert_after(BOOST, "threshold = 100.0"),
        "program.channels_boost.threshold",
        "coupon programs only",
    );
}

#[test]
fn unknown_kind_and_pacing_are_reported() {
    expect_only(
        &set(COUPON, "kind", "\"voucher\""),
        "program.threshold_coupon.kind",
        "\"voucher\" is not a program kind (\"coupon\" or \"traffic\")",
    );
    expect_only(
        &set(COUPON, "pacing", "\"fast\""),
        "program.threshold_coupon.pacing",
        "\"fast\" is not a pacing (\"asap\", \"even\" or \"traffic\")",
    );
    expect_only(
        &set(COUPON, "kind", "\"Coupon\""),
        "program.threshold_coupon.kind",
        "is not a program kind",
    );
    for pacing in ["asap", "even", "traffic"] {
        valid(&set(COUPON, "pacing", &format!("\"{pacing}\"")).text);
    }
}

#[test]
fn missing_required_keys_are_reported_at_their_section() {
    let required = [
        (SCENARIO, "name = \"tiny\"", "scenario.name"),
        (SCENARIO, "start = \"2023-11-10 20:00\"", "scenario.start"),
        (SCENARIO, "end = \"2023-11-11 02:00\"", "scenario.end"),
        ("[population]", "users = 500", "population.users"),
        (URBAN, "share = 0.6", "segment.urban.share"),
        (URBAN, "taobao_app = 0.9", "segment.urban.taobao_app"),
        (URBAN, "alipay = 0.8", "segment.urban.alipay"),
        (
            URBAN,
            "base_conversion = 0.1",
            "segment.urban.base_conversion",
        ),
        (
            URBAN,
            "price_sensitivity = 2.0",
            "segment.urban.price_sensitivity",
        ),
        (
            URBAN,
            "basket_median = 150.0",
            "segment.urban.basket_median",
        ),
        (RURAL, "basket_sigma = 0.7", "segment.rural.basket_sigma"),
        (RURAL, "name = \"rural\"", "segment[1].name"),
        (
            MOMENTS,
            "impressions_per_user_day = 12.0",
            "placement.moments.impressions_per_user_day",
        ),
        (MOMENTS, "ctr = 0.03", "placement.moments.ctr"),
        (MOMENTS, "cpm = 80.0", "placement.moments.cpm"),
        (MOMENTS, "owner = \"tencent\"", "placement.moments.owner"),
        ("[frequency]", "cap = 3", "frequency.cap"),
        (
            "[friction]",
            "jump_with_app = 0.9",
            "friction.jump_with_app",
        ),
        ("[friction]", "jump_h5 = 0.8", "friction.jump_h5"),
        ("[friction]", "alipay_setup = 0.3", "friction.alipay_setup"),
        (TENCENT, "take_rate = 0.0", "funder.tencent.take_rate"),
        (COUPON, "kind = \"coupon\"", "program.threshold_coupon.kind"),
        (COUPON, "budget = 300.0", "program.threshold_coupon.budget"),
        (
            COUPON,
            "funded_by = { alibaba = 0.7, tencent = 0.3 }",
            "program.threshold_coupon.funded_by",
        ),
        (
            COUPON,
            "threshold = 150.0",
            "program.threshold_coupon.threshold",
        ),
        (
            COUPON,
            "discount = 20.0",
            "program.threshold_coupon.discount",
        ),
        (BOOST, "max_boost = 1.0", "program.channels_boost.max_boost"),
        (
            WINDOW,
            "start = \"2023-11-10 20:00\"",
            "calendar.window.main.start",
        ),
        (
            WINDOW,
            "end = \"2023-11-11 01:00\"",
            "calendar.window.main.end",
        ),
        (EVENT, "start = \"2023-11-10 21:00\"", "event.final.start"),
        (EVENT, "end = \"2023-11-10 23:00\"", "event.final.end"),
    ];
    let cases: Vec<(Case, &str, &str)> = required
        .iter()
        .map(|(anchor, line, path)| (delete_after(anchor, line), *path, "missing ("))
        .collect();
    expect_each(&cases);
}

#[test]
fn missing_sections_are_reported() {
    let sections = [
        ("[scenario]", "scenario", "missing section [scenario]"),
        (
            "[population]",
            "population",
            "missing section [population] (with users ≥ 1)",
        ),
        ("[frequency]", "frequency", "missing section [frequency]"),
        ("[friction]", "friction", "missing section [friction]"),
    ];
    let failures: Vec<String> = sections
        .iter()
        .filter_map(|(header, key, fragment)| {
            check_at(&delete_section(header), 1, key, fragment).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let mut text = TINY.to_string();
    for header in ["[[segment]]", "[[segment]]"] {
        text = delete_section_of(&text, header);
    }
    expect_at(&text, 1, "segment", "no [[segment]] defined (at least one)");
    let mut text = TINY.to_string();
    for header in ["[[placement]]", "[[placement]]"] {
        text = delete_section_of(&text, header);
    }
    expect_at(&text, 1, "placement", "no [[placement]] defined");
    let mut text = TINY.to_string();
    for header in ["[[funder]]", "[[funder]]"] {
        text = delete_section_of(&text, header);
    }
    expect_at(&text, 1, "funder", "no [[funder]] defined");
    let found = problems("");
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "scenario",
        "population",
        "segment",
        "placement",
        "frequency",
        "friction",
        "funder",
    ] {
        assert!(
            keys.contains(&key),
            "empty file: no `{key}` problem in {keys:?}"
        );
    }
}

#[test]
fn scenario_name_must_suit_a_folder() {
    expect_each(&[
        (
            set(SCENARIO, "name", "\"my run\""),
            "scenario.name",
            "cannot name a results folder",
        ),
        (
            set(SCENARIO, "name", "\"../up\""),
            "scenario.name",
            "cannot name a results folder",
        ),
        (
            set(SCENARIO, "name", "\"\""),
            "scenario.name",
            "cannot name a results folder",
        ),
        (
            set(SCENARIO, "name", "\".hidden\""),
            "scenario.name",
            "(letters, digits, _, - and . only)",
        ),
    ]);
    valid(&set(SCENARIO, "name", "\"tiny-2023.v2_b\"").text);
}

#[test]
fn toml_syntax_errors_are_reported_with_their_line() {
    expect_each(&[
        (
            set("[population]", "users", "500 500"),
            "(syntax)",
            "(valid TOML)",
        ),
        (set(SCENARIO, "name", "\"tiny"), "(syntax)", "(valid TOML)"),
        (
            replace_after("[population]", "[[segment]]", "[[segment]"),
            "(syntax)",
            "(valid TOML)",
        ),
        (
            insert_after("seed = 7", "seed = 8"),
            "(syntax)",
            "duplicate key",
        ),
        (
            insert_after("users = 500", "[population]"),
            "(syntax)",
            "(valid TOML)",
        ),
        (set(CHANNELS, "ctr", "0.05.1"), "(syntax)", "(valid TOML)"),
        (insert_after("cap = 3", "= 4"), "(syntax)", "(valid TOML)"),
    ]);
    // TOML 1.1 lets an inline table go on over newlines, so an unclosed one is only noticed on
    // the next line, where a comma is missing.
    let unclosed = set(COUPON, "funded_by", "{ alibaba = 0.7, tencent = 0.3");
    let found = expect_at(
        &unclosed.text,
        unclosed.line + 1,
        "(syntax)",
        "expected `,`",
    );
    assert_eq!(
        found[0].line,
        unclosed.line + 1,
        "the first problem is the first syntax error"
    );
}

#[test]
fn every_problem_of_a_file_is_reported_at_once_in_line_order() {
    let text = TINY
        .replacen("users = 500", "users = 0", 1)
        .replacen("ctr = 0.05", "ctr = 5", 1)
        .replacen("kind = \"traffic\"", "kind = \"trafic\"", 1)
        .replacen("conversion = 1.2", "conversion = -1.2", 1);
    let found = problems(&text);
    let lines: Vec<usize> = found.iter().map(|p| p.line).collect();
    let line_of = |needle: &str| text.lines().position(|l| l == needle).expect(needle) + 1;
    let expected = [
        line_of("users = 0"),
        line_of("ctr = 5"),
        line_of("kind = \"trafic\""),
        line_of("conversion = -1.2"),
    ];
    assert_eq!(lines, expected, "{}", listing(&found));
}

/// `text` with `more` coupon programs appended (thresholds 100, 101, … yuan), and the line of
/// the last one's `kind`.
fn with_coupon_programs(mut text: String, more: usize) -> (String, usize) {
    for i in 0..more {
        text.push_str(&format!(
            "\n[[program]]\nname = \"extra_{i}\"\nkind = \"coupon\"\nbudget = 10.0\n\
             funded_by = {{ alibaba = 1.0 }}\npacing = \"even\"\nthreshold = {}.0\n\
             discount = 5.0\n",
            100 + i
        ));
    }
    let line = text.lines().count() - 5;
    (text, line)
}

#[test]
fn at_most_127_coupon_programs() {
    // Tiny has one coupon program: 126 more make the largest valid scenario, which both engines
    // run without error, and one more is reported at its `kind`. (At 500 users no class meets
    // anywhere near 255 coupons; the limit's arithmetic is in `MAX_COUPON_PROGRAMS`'s comment.)
    let (text, _) = with_coupon_programs(TINY.to_string(), 126);
    let s = valid(&text);
    let plan = d11sim::engine::Plan::new(&s);
    for engine in [
        d11sim::engine::Engine::Cohorts,
        d11sim::engine::Engine::Agents,
    ] {
        engine.simulate(&plan, 1, 0);
    }
    let (text, line) = with_coupon_programs(TINY.to_string(), 127);
    assert_eq!(text.lines().nth(line - 1), Some("kind = \"coupon\""));
    check_at(
        &text,
        line,
        "program.extra_126.kind",
        "128 coupon programs (at most 127 in a scenario)",
    )
    .unwrap();
}

/// Tiny with `more` traffic programs appended.
fn with_traffic_programs(more: usize) -> String {
    let mut text = TINY.to_string();
    for i in 0..more {
        text.push_str(&format!(
            "\n[[program]]\nname = \"boost_{i}\"\nkind = \"traffic\"\nbudget = 1.0\n\
             funded_by = {{ alibaba = 1.0 }}\nplacement = \"moments\"\nmax_boost = 0.0\n"
        ));
    }
    text
}

#[test]
fn at_most_65536_programs() {
    // Tiny has two programs: 65,533 traffic programs and a coupon program more make the largest
    // valid scenario, whose last program is a coupon with the largest index a `Coupon` keeps
    // (65,535), which the `cohorts` engine pays; one more program is reported at the last one's
    // `kind`.
    let (text, _) = with_coupon_programs(with_traffic_programs(65_533), 1);
    let s = valid(&text);
    assert_eq!(s.programs.len(), 65_536);
    let plan = d11sim::engine::Plan::new(&s);
    // Replication 1: its last program pays one charge of 5 yuan (replication 0 pays none).
    let o = d11sim::engine::Engine::Cohorts.simulate(&plan, 1, 1);
    assert!(
        o.program_spend[65_535] > 0,
        "the last program pays some coupon"
    );
    let (text, line) = with_coupon_programs(with_traffic_programs(65_534), 1);
    assert_eq!(text.lines().nth(line - 1), Some("kind = \"coupon\""));
    check_at(
        &text,
        line,
        "program.extra_0.kind",
        "65537 programs (at most 65536 in a scenario)",
    )
    .unwrap();
}
