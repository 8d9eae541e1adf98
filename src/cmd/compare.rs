//! `d11sim compare`: splits of a scenario's budgets or funding shares, run on common random numbers
//! against one shared baseline, ranked by an objective, written to a results folder (compare.csv,
//! summary.csv of the reference, manifest.json, raw/, and charts/ with report.html unless
//! `--no-charts`). With `--shard K/N`, only the slice's replications and only manifest.json and
//! raw/: `d11sim merge` of every shard's folder writes the rest (src/cmd/merge.rs).

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::run::{self, Manifest, sha256_hex, thousands};
use crate::chart::ChartFormat;
use crate::cli::CompareArgs;
use crate::compare::stats::BOOTSTRAP_RESAMPLES;
use crate::compare::table::{self, Comparison};
use crate::compare::{self, SplitSet, SplitSpec, file};
use crate::error::{Error, Result};
use crate::results::files::MANIFEST;
use crate::results::{Layout, Record, atomic};
use crate::scenario::Scenario;
use crate::shard::{Shard, replications_for};

/// Suffix of the default results folder: `output/<scenario name>-compare/` (INTERFACE.md).
const OUT_SUFFIX: &str = "-compare";
/// Values with a magnitude below this are printed with decimals (shares, small amounts).
const SMALL_VALUE: f64 = 100.0;
/// Decimals of small values.
const SMALL_DECIMALS: usize = 2;
/// Decimals of ratios such as `iroi` and of shares.
const RATIO_DECIMALS: usize = 3;

/// Where the splits came from, as the manifest records it (and `merge` rebuilds them from).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitsSource {
    /// `programs`, `funders` or `file`.
    pub kind: String,
    /// The two programs or funders of a sweep.
    pub pair: Option<[String; 2]>,
    pub steps: Option<u32>,
    pub file: Option<String>,
    pub file_sha256: Option<String>,
    pub file_text: Option<String>,
}

/// What a comparison's `manifest.json` adds to `run`'s fields: what was compared and how. A
/// shard's manifest holds it too, so that `merge` rebuilds the splits and `p_best`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareFields {
    pub splits_source: SplitsSource,
    pub splits: Vec<String>,
    pub columns: Vec<String>,
    pub reference: String,
    pub objective: String,
    pub minimize: bool,
    pub bootstrap_resamples: u64,
}

/// `manifest.json` of a comparison: `run`'s fields, then [`CompareFields`].
#[derive(Serialize)]
pub struct CompareManifest {
    #[serde(flatten)]
    pub run: Manifest,
    #[serde(flatten)]
    pub compare: CompareFields,
}

/// A comparison's results: everything its folder and its ranking are written from.
pub struct Outcome {
    /// The scenario, `replications` set to the comparison's total.
    pub scenario: Scenario,
    pub set: SplitSet,
    pub layout: Layout,
    /// `records[split][replication]`, metrics only.
    pub records: Vec<Vec<Record>>,
    pub comparison: Comparison,
    pub seed: u64,
}

impl Outcome {
    /// Computes every statistic (`p_best` too: `records` must hold every replication).
    pub fn new(
        scenario: Scenario,
        set: SplitSet,
        records: Vec<Vec<Record>>,
        objective: usize,
        minimize: bool,
        seed: u64,
    ) -> Outcome {
        let layout = Layout::of(&scenario);
        let columns = set.column_names(&scenario);
        let comparison =
            Comparison::new(&set, columns, &layout, &records, objective, minimize, seed);
        Outcome {
            scenario,
            set,
            layout,
            records,
            comparison,
            seed,
        }
    }

    /// Writes the folder atomically: compare.csv, summary.csv, raw/, `manifest` and, with a
    /// format, the charts.
    pub fn write(
        &self,
        out: &Path,
        force: bool,
        charts: Option<ChartFormat>,
        manifest: &impl Serialize,
    ) -> Result<()> {
        let (c, layout) = (&self.comparison, &self.layout);
        write_folder(out, force, manifest, |dir| {
            table::write_all(dir, c, layout, &self.records, self.seed)?;
            match charts {
                Some(format) => crate::chart::draw_compare(dir, format),
                None => Ok(()),
            }
        })
    }
}

/// Writes a folder atomically: `manifest.json` first, then whatever `fill` writes.
fn write_folder(
    out: &Path,
    force: bool,
    manifest: &impl Serialize,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    atomic::write_folder(out, force, |dir| {
        let json = serde_json::to_string_pretty(manifest).map_err(|e| Error::Run(e.to_string()))?;
        let path = dir.join(MANIFEST);
        std::fs::write(&path, json + "\n").map_err(|source| Error::Write { path, source })?;
        fill(dir)
    })
}

/// The split spec a manifest's `splits_source` records, for `merge`: a sweep's pair and steps,
/// or the splits file's text (checked against its SHA-256 and again against the scenario).
/// `origin` names the manifest in errors.
pub fn spec_of_source(
    source: &SplitsSource,
    scenario: &Scenario,
    origin: &str,
) -> Result<SplitSpec> {
    let bad = |message: String| Error::invalid(origin, 1, "splits_source", message);
    match (source.kind.as_str(), &source.pair, source.steps) {
        ("programs", Some([a, b]), Some(steps)) => Ok(SplitSpec::Programs {
            a: a.clone(),
            b: b.clone(),
            steps,
        }),
        ("funders", Some([f, g]), Some(steps)) => Ok(SplitSpec::Funders {
            f: f.clone(),
            g: g.clone(),
            steps,
        }),
        ("file", _, _) => {
            let text = source.file_text.as_deref().unwrap_or_default();
            if source.file_sha256.as_deref() != Some(sha256_hex(text).as_str()) {
                return Err(bad(
                    "file_text does not match file_sha256 (expected an unedited manifest)".into(),
                ));
            }
            let name = source.file.as_deref().unwrap_or(origin);
            Ok(SplitSpec::Named(file::load_str(text, name, scenario)?))
        }
        (kind, _, _) => Err(bad(format!(
            "kind `{kind}` without its pair and steps (expected programs, funders or file, as \
             `d11sim compare` writes)"
        ))),
    }
}

/// Splits "A,B" into two names.
fn pair(flag: &str, text: &str, what: &str) -> Result<[String; 2]> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [a, b] if !a.is_empty() && !b.is_empty() => Ok([a.to_string(), b.to_string()]),
        _ => Err(Error::Usage(format!(
            "{flag}: \"{text}\" is not two {what} names (NAME,NAME)"
        ))),
    }
}

/// The split spec of the command line, and where it came from.
fn spec_of(args: &CompareArgs, scenario: &Scenario) -> Result<(SplitSpec, SplitsSource)> {
    let mut source = SplitsSource {
        kind: "file".into(),
        pair: None,
        steps: Some(args.steps),
        file: None,
        file_sha256: None,
        file_text: None,
    };
    if let Some(text) = &args.split_programs {
        let [a, b] = pair("--split-programs", text, "program")?;
        source.kind = "programs".into();
        source.pair = Some([a.clone(), b.clone()]);
        let steps = args.steps;
        return Ok((SplitSpec::Programs { a, b, steps }, source));
    }
    if let Some(text) = &args.split_funders {
        let [f, g] = pair("--split-funders", text, "funder")?;
        source.kind = "funders".into();
        source.pair = Some([f.clone(), g.clone()]);
        let steps = args.steps;
        return Ok((SplitSpec::Funders { f, g, steps }, source));
    }
    let path = args.splits.as_deref().ok_or_else(|| {
        Error::Usage("one of --split-programs, --split-funders or --splits is required".into())
    })?;
    let (splits, text) = file::load_file(path, scenario)?;
    source.steps = None;
    source.file = Some(path.display().to_string());
    source.file_sha256 = Some(sha256_hex(&text));
    source.file_text = Some(text);
    Ok((SplitSpec::Named(splits), source))
}

fn objective_of(layout: &Layout, name: &str) -> Result<usize> {
    layout.metric_index(name).ok_or_else(|| {
        Error::Usage(format!(
            "--objective: unknown metric \"{name}\" (one of: {})",
            layout.metrics.join(", ")
        ))
    })
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let c = &args.common;
    let loaded = run::load(Some(&args.scenario))?;
    let mut scenario = loaded.scenario.clone();
    // Paired differences settle in fewer replications than a run's own figures: a scenario may
    // ask for fewer in a comparison.
    if let Some(n) = c.replications.or(scenario.compare_replications) {
        scenario.replications = n;
    }
    let seed = c.seed.unwrap_or(scenario.seed);
    let engine = run::engine_of(c.engine);
    let layout = Layout::of(&scenario);
    let objective = objective_of(&layout, &args.objective)?;
    let (spec, source) = spec_of(args, &scenario)?;
    let set = compare::split_set(&scenario, &spec)?;
    let scenarios = set.scenarios(&scenario);
    engine.check(&scenario)?;
    let (range, shard) = replications_for(u64::from(scenario.replications), c.shard)?;
    let out = c
        .out
        .clone()
        .unwrap_or_else(|| run::default_out(&scenario.name, OUT_SUFFIX));
    atomic::check_target(&out, c.force)?;
    let reps: Vec<u64> = range.collect();
    let simulations = reps.len() as u64 * (scenarios.len() as u64 + 1);
    // One step per simulation: each split and the baseline, per replication.
    let bar = run::progress(
        simulations,
        "simulations (splits and baseline × replications)",
        c.quiet,
    );
    let started = Instant::now();
    let (records, threads) = run::with_threads(c.threads, || {
        compare::simulate(engine, &scenario, &scenarios, seed, &reps, &|| bar.inc(1))
    })?;
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let user_ticks = scenario.users as f64 * scenario.ticks() as f64 * simulations as f64;
    let manifest = CompareManifest {
        run: Manifest {
            tool: "d11sim",
            version: env!("CARGO_PKG_VERSION"),
            command: "compare",
            engine: engine.name(),
            non_exact_options: Vec::new(),
            scenario_name: scenario.name.clone(),
            scenario_file: loaded.origin.clone(),
            scenario_sha256: sha256_hex(&loaded.text),
            scenario_text: loaded.text.clone(),
            seed,
            replications: u64::from(scenario.replications),
            replication_first: reps.first().copied().unwrap_or(0),
            replication_last: reps.last().copied().unwrap_or(0),
            threads,
            shard: shard.map(|s| s.to_string()),
            wall_seconds: wall,
            user_ticks_per_second: user_ticks / wall.max(f64::MIN_POSITIVE),
            note: run::MC_NOTE,
        },
        compare: CompareFields {
            splits_source: source,
            splits: set.splits.iter().map(|s| s.name.clone()).collect(),
            columns: set.column_names(&scenario),
            reference: compare::REFERENCE.to_string(),
            objective: args.objective.clone(),
            minimize: args.minimize,
            bootstrap_resamples: BOOTSTRAP_RESAMPLES,
        },
    };
    if let Some(shard) = shard {
        write_shard(&out, c.force, &manifest, &set, &layout, &records)?;
        if !c.quiet {
            print_shard(&scenario, shard, &reps, set.splits.len(), wall, &out);
        }
        return Ok(());
    }
    let outcome = Outcome::new(scenario, set, records, objective, args.minimize, seed);
    let charts: Option<ChartFormat> = (!c.no_charts).then(|| c.chart_format.into());
    outcome.write(&out, c.force, charts, &manifest)?;
    if !c.quiet {
        print_ranking(&outcome, engine.name(), wall, &out);
    }
    Ok(())
}

/// Writes a shard's folder atomically: `manifest.json` and `raw/` only. `compare.csv`, the
/// summary and the charts need every replication (`p_best`'s bootstrap resamples all of them), so
/// `merge` writes them.
fn write_shard(
    out: &Path,
    force: bool,
    manifest: &CompareManifest,
    set: &SplitSet,
    layout: &Layout,
    records: &[Vec<Record>],
) -> Result<()> {
    let names = &manifest.compare.splits;
    let (columns, seed) = (&manifest.compare.columns, manifest.run.seed);
    write_folder(out, force, manifest, |dir| {
        table::write_raw(dir, names, columns, &set.values, layout, records, seed)
    })
}

fn print_shard(s: &Scenario, shard: Shard, reps: &[u64], splits: usize, wall: f64, out: &Path) {
    println!(
        "{}: shard {shard}: {splits} splits × replications {}..={} of {} in {wall:.1} s",
        s.name,
        reps.first().copied().unwrap_or(0),
        reps.last().copied().unwrap_or(0),
        s.replications
    );
    println!(
        "raw per-replication results only: `d11sim merge` of every shard's folder writes \
         compare.csv, summary.csv and p_best"
    );
    println!("results: {}", out.display());
}

/// Decimals for a column of numbers, so that it reads alike: a few for ratios, two when some
/// value is small and not whole, none otherwise (large amounts, counts).
fn decimals_for(values: &[f64], ratio: bool) -> usize {
    let small = |v: &f64| v.abs() < SMALL_VALUE && v.fract() != 0.0;
    if ratio {
        RATIO_DECIMALS
    } else if values.iter().any(small) {
        SMALL_DECIMALS
    } else {
        0
    }
}

fn show_opt(x: Option<f64>, decimals: usize) -> String {
    x.map_or("-".to_string(), |v| thousands(v, decimals))
}

/// Prints the splits ranked by the objective, with paired differences against the reference.
pub fn print_ranking(outcome: &Outcome, engine: &str, wall: f64, out: &Path) {
    let (s, set, cmp, seed) = (
        &outcome.scenario,
        &outcome.set,
        &outcome.comparison,
        outcome.seed,
    );
    let metric = &cmp.metrics[cmp.objective];
    let ratio = metric == "iroi";
    let direction = if cmp.minimize { "lower" } else { "higher" };
    println!(
        "{}: {} splits × {} replications on common random numbers ({engine} engine, seed {seed}) in {wall:.1} s",
        s.name,
        set.splits.len(),
        s.replications
    );
    println!(
        "objective: {metric} ({direction} is better); diff = paired difference vs `reference` with its 95% CI (Monte Carlo error only)"
    );
    let width = cmp.names.iter().map(String::len).max().unwrap_or(0).max(5);
    let n = cmp.names.len();
    let column_decimals: Vec<usize> = (0..cmp.column_names.len())
        .map(|k| {
            let share = !cmp.column_names[k].starts_with("budget.");
            decimals_for(&cmp.values.iter().map(|v| v[k]).collect::<Vec<_>>(), share)
        })
        .collect();
    let mut numbers: Vec<f64> = (0..n).filter_map(|i| cmp.objective_mean(i)).collect();
    for d in cmp.diffs.iter().map(|row| row[cmp.objective]) {
        numbers.extend(d.mean);
        numbers.extend(d.ci.map_or(Vec::new(), |(lo, hi)| vec![lo, hi]));
    }
    let decimals = decimals_for(&numbers, ratio);
    let mut header = format!("{:>4}  {:<width$}", "rank", "split");
    for c in &cmp.column_names {
        header.push_str(&format!(" {c:>16}"));
    }
    header.push_str(&format!(
        " {:>16} {:>16} {:>29} {:>7}",
        metric, "diff", "diff ci95", "p_best"
    ));
    println!("{header}");
    for (rank, &i) in cmp.ranking().iter().enumerate() {
        let d = cmp.diffs[i][cmp.objective];
        let mut line = format!("{:>4}  {:<width$}", rank + 1, cmp.names[i]);
        for (&v, &dec) in cmp.values[i].iter().zip(&column_decimals) {
            line.push_str(&format!(" {:>16}", thousands(v, dec)));
        }
        let ci = d.ci.map_or("-".to_string(), |(lo, hi)| {
            format!("[{}, {}]", thousands(lo, decimals), thousands(hi, decimals))
        });
        line.push_str(&format!(
            " {:>16} {:>16} {:>29} {:>7.3}",
            show_opt(cmp.objective_mean(i), decimals),
            show_opt(d.mean, decimals),
            ci,
            cmp.p_best[i]
        ));
        println!("{line}");
    }
    print_best(cmp, decimals);
    println!("results: {}", out.display());
}

fn print_best(cmp: &Comparison, decimals: usize) {
    let Some(&best) = cmp.ranking().first() else {
        return;
    };
    let d = cmp.diffs[best][cmp.objective];
    let f = |x: f64| thousands(x, decimals);
    let verdict = match d.ci {
        _ if best == cmp.reference => "the reference itself".to_string(),
        Some((lo, hi)) if lo > 0.0 || hi < 0.0 => format!(
            "differs from the reference by {} [{}, {}]",
            show_opt(d.mean, decimals),
            f(lo),
            f(hi)
        ),
        Some((lo, hi)) => format!(
            "not distinguishable from the reference: {} [{}, {}] includes 0",
            show_opt(d.mean, decimals),
            f(lo),
            f(hi)
        ),
        None => "no interval (too few replications)".to_string(),
    };
    println!(
        "best: {} (p_best {:.3}); {verdict}",
        cmp.names[best], cmp.p_best[best]
    );
}
