//! `d11sim run`: replications of a scenario and its baseline into a results folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cli::{CommonArgs, EngineChoice, RunArgs};
use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::results::files::{self, MANIFEST, SummaryRow};
use crate::results::{Layout, Record, atomic};
use crate::scenario::{self, Scenario, default};

/// The headline metrics printed at the end of a run.
const HEADLINES: [&str; 7] = [
    "gmv",
    "incremental_gmv",
    "orders",
    "incremental_orders",
    "subsidy_spend",
    "discount",
    "iroi",
];
/// Where results go when `--out` is absent.
const OUTPUT_ROOT: &str = "output";

/// A scenario as loaded, with what the manifest records of it.
pub struct Loaded {
    pub scenario: Scenario,
    pub text: String,
    pub origin: String,
}

/// Loads the named scenario file, or the built-in default.
pub fn load(path: Option<&Path>) -> Result<Loaded> {
    match path {
        Some(p) => {
            let (scenario, text) = scenario::load_file(p)?;
            Ok(Loaded {
                scenario,
                text,
                origin: p.display().to_string(),
            })
        }
        None => Ok(Loaded {
            scenario: scenario::load_str(default::DEFAULT_SCENARIO_TOML, default::DEFAULT_ORIGIN)?,
            text: default::DEFAULT_SCENARIO_TOML.to_string(),
            origin: default::DEFAULT_ORIGIN.to_string(),
        }),
    }
}

pub fn engine_of(choice: EngineChoice) -> Engine {
    match choice {
        EngineChoice::Agents => Engine::Agents,
        EngineChoice::Cohorts => Engine::Cohorts,
    }
}

/// Hex SHA-256 of a text.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `manifest.json` records (INTERFACE.md).
#[derive(Serialize)]
pub struct Manifest {
    pub tool: &'static str,
    pub version: &'static str,
    pub command: &'static str,
    pub engine: &'static str,
    /// Options that change the distribution (none exist yet: every run is exact).
    pub non_exact_options: Vec<String>,
    pub scenario_name: String,
    pub scenario_file: String,
    pub scenario_sha256: String,
    pub scenario_text: String,
    pub seed: u64,
    pub replications: u64,
    pub replication_first: u64,
    pub replication_last: u64,
    pub threads: usize,
    pub shard: Option<String>,
    pub wall_seconds: f64,
    pub user_ticks_per_second: f64,
    pub note: &'static str,
}

pub const MC_NOTE: &str =
    "Intervals are Monte Carlo error only, not uncertainty about the scenario's parameters.";

/// A progress bar on stderr over `total` steps, each one of `what` (e.g. "replications");
/// hidden when quiet or not on a terminal.
pub fn progress(total: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template =
        format!("{{spinner}} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {what}, ETA {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// Runs `f` on a rayon pool of `threads` threads (all cores if `None`).
pub fn with_threads<T: Send>(
    threads: Option<u32>,
    f: impl FnOnce() -> T + Send,
) -> Result<(T, usize)> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n as usize);
    }
    let pool = builder
        .build()
        .map_err(|e| Error::Run(format!("cannot start worker threads: {e}")))?;
    Ok((pool.install(f), pool.current_num_threads()))
}

pub fn default_out(name: &str, suffix: &str) -> PathBuf {
    Path::new(OUTPUT_ROOT).join(format!("{name}{suffix}"))
}

pub fn run(args: &RunArgs) -> Result<()> {
    let loaded = load(args.scenario.as_deref())?;
    let c = &args.common;
    let mut scenario = loaded.scenario.clone();
    if let Some(n) = c.replications {
        scenario.replications = n;
    }
    let seed = c.seed.unwrap_or(scenario.seed);
    let engine = engine_of(c.engine);
    engine.check(&scenario)?;
    let (reps, shard) = crate::shard::replications_for(u64::from(scenario.replications), c.shard)?;
    let out = c
        .out
        .clone()
        .unwrap_or_else(|| default_out(&scenario.name, ""));
    atomic::check_target(&out, c.force)?;
    let started = Instant::now();
    let bar = progress(reps.end() + 1 - reps.start(), "replications", c.quiet);
    let (paired, threads) = with_threads(c.threads, || {
        engine::run_replications(engine, &scenario, seed, reps.clone(), &|| bar.inc(1))
    })?;
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let layout = Layout::of(&scenario);
    let records: Vec<Record> = paired.iter().map(|p| Record::of(&scenario, p)).collect();
    let user_ticks = 2.0 * scenario.users as f64 * scenario.ticks() as f64 * paired.len() as f64;
    let manifest = Manifest {
        tool: "d11sim",
        version: env!("CARGO_PKG_VERSION"),
        command: "run",
        engine: engine.name(),
        non_exact_options: Vec::new(),
        scenario_name: scenario.name.clone(),
        scenario_file: loaded.origin.clone(),
        scenario_sha256: sha256_hex(&loaded.text),
        scenario_text: loaded.text.clone(),
        seed,
        replications: u64::from(scenario.replications),
        replication_first: *reps.start(),
        replication_last: *reps.end(),
        threads,
        shard: shard.map(|s| s.to_string()),
        wall_seconds: wall,
        user_ticks_per_second: user_ticks / wall.max(f64::MIN_POSITIVE),
        note: MC_NOTE,
    };
    write_results(&out, c, &layout, &records, &manifest)?;
    if !c.quiet {
        print_headlines(&scenario, &layout, &records, &out, wall);
    }
    Ok(())
}

/// Writes the whole folder atomically.
pub fn write_results(
    out: &Path,
    c: &CommonArgs,
    layout: &Layout,
    records: &[Record],
    manifest: &Manifest,
) -> Result<()> {
    atomic::write_folder(out, c.force, |dir| {
        files::write_all(dir, layout, records, manifest.seed)?;
        let json = serde_json::to_string_pretty(manifest).map_err(|e| Error::Run(e.to_string()))?;
        let path = dir.join(MANIFEST);
        std::fs::write(&path, json + "\n").map_err(|source| Error::Write { path, source })?;
        if !c.no_charts {
            crate::chart::draw_all(dir, c.chart_format.into())?;
        }
        Ok(())
    })
}

/// Formats a number with thousands separators and `decimals` decimals.
pub fn thousands(x: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, x.abs());
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(a, b)| (a, b));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn print_headlines(s: &Scenario, layout: &Layout, records: &[Record], out: &Path, wall: f64) {
    let rows: Vec<SummaryRow> = files::summary(layout, records);
    println!(
        "{}: {} replications in {:.1} s (95% CI of the mean; Monte Carlo error only)",
        s.name,
        records.len(),
        wall
    );
    println!(
        "{:<20} {:>22} {:>22} {:>22}",
        "metric", "mean", "ci95_low", "ci95_high"
    );
    for name in HEADLINES {
        let Some(r) = rows.iter().find(|r| r.metric == name) else {
            continue;
        };
        let decimals = match (name, r.mean) {
            ("iroi", _) => 3,
            (_, Some(m)) if m.abs() < 100.0 => 2,
            _ => 0,
        };
        let f = |v: Option<f64>| v.map_or("-".to_string(), |x| thousands(x, decimals));
        println!(
            "{:<20} {:>22} {:>22} {:>22}",
            name,
            f(r.mean),
            f(r.ci95_low),
            f(r.ci95_high)
        );
    }
    println!("results: {}", out.display());
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(1234567.0, 0), "1,234,567");
        assert_eq!(thousands(-1234.5, 1), "-1,234.5");
        assert_eq!(thousands(999.0, 0), "999");
        assert_eq!(thousands(-0.0001, 2), "0.00");
    }
}
