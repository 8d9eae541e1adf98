//! Random scenarios: the suite's comparison on scenarios drawn at random, so that the mechanisms
//! meet in combinations no hand-built scenario has (several segments and placements, a cap,
//! coupons with limits, top-up bands and windows, traffic programs, funder caps, a live room with
//! a schedule and a capacity, events, calendar windows, Alipay set-ups or interoperable payment,
//! days that reset), each drawn with chances that make it bind often.
//!
//! Each scenario is written as a TOML text and read like a user's file. `D11SIM_RANDOM_SCENARIOS=N`
//! checks N of them instead of [`DEFAULT_SCENARIOS`] (scenario k is the same for every N).

use d11sim::scenario::{Scenario, load_str};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Random scenarios checked unless `D11SIM_RANDOM_SCENARIOS` says otherwise.
pub const DEFAULT_SCENARIOS: u64 = 6;
/// Seed of scenario k's parameters: this plus k.
const PARAMETER_SEED: u64 = 20_231_212;

/// The scenarios to check: 0 to N − 1 (`D11SIM_RANDOM_SCENARIOS=N`, default
/// [`DEFAULT_SCENARIOS`]), or those listed by `D11SIM_RANDOM_ONLY=k,l,…`.
pub fn indices() -> Vec<u64> {
    if let Ok(only) = std::env::var("D11SIM_RANDOM_ONLY") {
        return only
            .split(',')
            .map(|k| {
                k.trim()
                    .parse()
                    .expect("D11SIM_RANDOM_ONLY: scenario numbers")
            })
            .collect();
    }
    (0..super::env_count("D11SIM_RANDOM_SCENARIOS", DEFAULT_SCENARIOS)).collect()
}

/// Draws of the generator: a uniform in [lo, hi) rounded to 3 decimals, and yes/no.
struct Draws(Xoshiro256PlusPlus);

impl Draws {
    fn real(&mut self, lo: f64, hi: f64) -> f64 {
        (self.0.random_range(lo..hi) * 1000.0).round() / 1000.0
    }
    fn int(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.random_range(lo..=hi)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.0.random_bool(p)
    }
    /// A program's `funded_by`: half each of `lead` and `other`, or all `lead`.
    fn funding(&mut self, lead: &str, other: &str) -> String {
        if self.chance(0.5) {
            format!("{{ {lead} = 0.5, {other} = 0.5 }}")
        } else {
            format!("{{ {lead} = 1.0 }}")
        }
    }
    fn pacing(&mut self) -> &'static str {
        ["asap", "even", "traffic"][self.int(0, 2) as usize]
    }
    /// A `[[program]]` table's first lines, those every kind has: its name, kind and budget, its
    /// funders (`lead` and `other`, see [`Draws::funding`]) and its pacing.
    fn program(
        &mut self,
        name: &str,
        kind: &str,
        budget: f64,
        (lead, other): (&str, &str),
    ) -> String {
        format!(
            "[[program]]\nname = \"{name}\"\nkind = \"{kind}\"\nbudget = {budget}\nfunded_by = {}\npacing = \"{}\"\n",
            self.funding(lead, other),
            self.pacing(),
        )
    }
    /// A window of whole ticks inside a festival of `ticks` from `start_hour`: `start` and `end`.
    fn window(&mut self, start_hour: u64, ticks: u64) -> String {
        let from = self.int(0, ticks - 1);
        format!(
            "start = \"{}\"\nend = \"{}\"",
            time(start_hour, from),
            time(start_hour, self.int(from + 1, ticks))
        )
    }
    /// `key = [...]` and a newline for a drawn subset of `names`, or nothing (all of them).
    fn subset_line(&mut self, key: &str, names: &[String]) -> String {
        self.subset(names)
            .map_or_else(String::new, |s| format!("{key} = {}\n", list(&s)))
    }
    /// A nonempty subset of `names`, or `None` (meaning all of them) half the time.
    fn subset(&mut self, names: &[String]) -> Option<Vec<String>> {
        if names.len() < 2 || self.chance(0.5) {
            return None;
        }
        let mut kept: Vec<String> = names.iter().filter(|_| self.chance(0.5)).cloned().collect();
        if kept.is_empty() {
            kept.push(names[self.0.random_range(0..names.len())].clone());
        }
        Some(kept)
    }
}

fn list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// `"2023-11-10 HH:00"` plus `hours` (the festival starts at 20:00 on 10 Nov at the latest).
fn time(start_hour: u64, hours: u64) -> String {
    let h = start_hour + hours;
    format!("2023-11-{:02} {:02}:00", 10 + h / 24, h % 24)
}

/// Random scenario number `k` as a TOML text.
pub fn text(k: u64) -> String {
    let mut d = Draws(Xoshiro256PlusPlus::seed_from_u64(PARAMETER_SEED + k));
    let start_hour = d.int(14, 20);
    let ticks = d.int(8, 20);
    let mut t = String::new();
    let mut add = |line: String| {
        t.push_str(&line);
        t.push('\n');
    };
    add(format!(
        "[scenario]\nname = \"random{k}\"\nseed = 5\nreplications = 1000\nstart = \"{}\"\nend = \"{}\"\ntick_minutes = 60\n",
        time(start_hour, 0),
        time(start_hour, ticks)
    ));
    add(format!("[population]\nusers = {}\n", d.int(300, 1500)));
    let segments: Vec<String> = (0..d.int(1, 3)).map(|i| format!("s{i}")).collect();
    let placements: Vec<String> = (0..d.int(1, 3)).map(|i| format!("p{i}")).collect();
    let shares: &[f64] = match segments.len() {
        1 => &[1.0],
        2 => &[0.625, 0.375],
        _ => &[0.5, 0.25, 0.25],
    };
    for (s, share) in segments.iter().zip(shares) {
        add(format!(
            "[[segment]]\nname = \"{s}\"\nshare = {share}\ntaobao_app = {}\nalipay = {}\nbase_conversion = {}\nprice_sensitivity = {}\nbasket_median = {}\nbasket_sigma = {}\nctr_multiplier = {}\ncompetitor_leakage = {}",
            d.real(0.2, 1.0),
            if d.chance(0.5) {
                d.real(0.0, 0.4)
            } else {
                d.real(0.6, 1.0)
            },
            d.real(0.05, 0.5),
            d.real(0.0, 6.0),
            d.real(60.0, 300.0),
            d.real(0.2, 1.0),
            d.real(0.5, 3.0),
            d.real(0.0, 0.4),
        ));
        if d.chance(0.5) {
            let reach: Vec<String> = placements
                .iter()
                .map(|p| format!("{p} = {}", d.real(0.3, 2.0)))
                .collect();
            add(format!("reach = {{ {} }}", reach.join(", ")));
        }
        add(String::new());
    }
    let funders = ["alibaba", "tencent"];
    for p in &placements {
        add(format!(
            "[[placement]]\nname = \"{p}\"\nimpressions_per_user_day = {}\nctr = {}\ncpm = {}\nto_live_room = {}\nowner = \"{}\"\n",
            d.real(2.0, 30.0),
            d.real(0.01, 0.15),
            d.real(10.0, 100.0),
            if d.chance(0.7) { d.real(0.0, 0.8) } else { 0.0 },
            funders[d.int(0, 1) as usize],
        ));
    }
    add(format!(
        "[frequency]\ncap = {}\nfatigue = {}\n",
        d.int(1, 8),
        d.real(0.5, 1.0)
    ));
    add(format!(
        "[destination.live_room]\nconversion_multiplier = {}",
        d.real(0.5, 2.0)
    ));
    if d.chance(0.6) {
        add(format!("capacity_per_tick = {}", d.int(0, 60)));
    }
    if d.chance(0.3) {
        let opens = d.int(0, 23);
        let closes = (opens + d.int(1, 23)) % 24;
        add(format!("schedule = [\"{opens:02}:00-{closes:02}:00\"]"));
    }
    add(String::new());
    add(format!(
        "[friction]\njump_with_app = {}\njump_h5 = {}\nh5_conversion = {}\nalipay_setup = {}\npayment_interop = {}\n",
        d.real(0.6, 1.0),
        d.real(0.3, 1.0),
        d.real(0.3, 1.0),
        d.real(0.0, 1.0),
        d.chance(0.2),
    ));
    // Programs first, so that the funders' caps can be drawn against their budgets.
    let mut programs = String::new();
    let mut budgets = 0.0;
    for i in 0..d.int(0, 3) {
        let threshold = d.real(50.0, 300.0);
        let discount = d.real(5.0, (threshold * 0.4).max(6.0));
        let budget = (discount * d.int(3, 60) as f64).round();
        budgets += budget;
        programs += &d.program(&format!("c{i}"), "coupon", budget, ("alibaba", "tencent"));
        programs += &format!(
            "threshold = {threshold}\ndiscount = {discount}\nper_user_limit = {}\n",
            d.int(1, 3),
        );
        if d.chance(0.4) {
            programs += &format!(
                "topup_from = {}\ntopup = {}\n",
                d.real(0.5, 0.95),
                d.real(0.0, 1.0)
            );
        }
        programs += &d.subset_line("segments", &segments);
        programs += &d.subset_line("placements", &placements);
        if d.chance(0.3) {
            programs += &format!("{}\n", d.window(start_hour, ticks));
        }
        programs += "\n";
    }
    for i in 0..d.int(0, 2) {
        let placement = &placements[d.int(0, placements.len() as u64 - 1) as usize];
        let budget = d.int(1, 60) as f64;
        budgets += budget;
        programs += &d.program(&format!("t{i}"), "traffic", budget, ("tencent", "alibaba"));
        programs += &format!(
            "placement = \"{placement}\"\nmax_boost = {}\n",
            d.real(0.2, 2.0)
        );
        programs += &d.subset_line("segments", &segments);
        programs += "\n";
    }
    for f in funders {
        add(format!(
            "[[funder]]\nname = \"{f}\"\ntake_rate = {}\ntraffic_cost_ratio = {}",
            d.real(0.0, 0.1),
            d.real(0.0, 0.5)
        ));
        if budgets > 0.0 && d.chance(0.3) {
            add(format!("cap = {}", (budgets * d.real(0.1, 0.6)).round()));
        }
        add(String::new());
    }
    add(programs);
    if d.chance(0.4) {
        add(format!(
            "[[event]]\nname = \"e\"\n{}\nimpressions = {}\nctr = {}\nconversion = {}",
            d.window(start_hour, ticks),
            d.real(0.5, 3.0),
            d.real(0.5, 2.0),
            d.real(0.5, 2.0),
        ));
        if let Some(p) = d.subset(&placements) {
            add(format!("placements = {}", list(&p)));
        }
        add(String::new());
    }
    if d.chance(0.4) {
        let weights: Vec<String> = (0..24).map(|_| d.int(0, 4).to_string()).collect();
        add(format!("[calendar]\nintraday = [{}]", weights.join(", ")));
        if d.chance(0.5) {
            add(format!(
                "\n[[calendar.window]]\n{}\ntraffic = {}",
                d.window(start_hour, ticks),
                d.real(0.5, 3.0)
            ));
        }
        add(String::new());
    }
    add(format!(
        "[macro]\nconsumer_confidence = {}\nsensitivity_multiplier = {}\nprice_index = {}\n",
        d.real(0.7, 1.2),
        d.real(0.5, 1.5),
        d.real(0.9, 1.1)
    ));
    add(format!(
        "[competitor]\npressure = {}\ncoupon_retention = {}",
        d.real(0.5, 1.5),
        d.real(0.0, 5.0)
    ));
    t
}

/// Random scenario number `k`, read like a user's file.
pub fn scenario(k: u64) -> Scenario {
    let text = text(k);
    load_str(&text, &format!("random{k}.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}
