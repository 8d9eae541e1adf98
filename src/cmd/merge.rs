//! `d11sim merge DIR... --out DIR`: the results folders of shards (`run --shard K/N` or
//! `compare --shard K/N`) combined into one, byte-identical in every CSV to an unsharded `run` or
//! `compare` of the same scenario and seed.
//!
//! Every shard's `manifest.json` is checked first: one command (`run` or `compare`, never both),
//! scenario (SHA-256), seed, engine, version and replication count, for a compare the same splits,
//! objective and direction, and replication ranges that tile `1..=R` exactly. Then each `raw/` is
//! read back, the layout (and a compare's splits) rebuilt from the manifest, and the folder written
//! atomically (INTERFACE.md, *Results folder*), so a refused or failed merge writes nothing. A
//! compare's `p_best` is computed here, from every replication: its shards write none.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::chart::ChartFormat;
use crate::cli::MergeArgs;
use crate::cmd::compare::{self as cmd_compare, CompareFields, CompareManifest, Outcome};
use crate::cmd::run::{Manifest, sha256_hex};
use crate::compare::stats::BOOTSTRAP_RESAMPLES;
use crate::error::{Error, Result};
use crate::results::files::{self, MANIFEST};
use crate::results::{Layout, Record, atomic, raw};
use crate::scenario::{self, Scenario};
use crate::shard::{Shard, shard_range};

/// What `merge` reads of a shard's `manifest.json` (written by `run` or `compare`; a compare's own
/// fields are read as [`CompareFields`]; other fields are ignored).
#[derive(Debug, Deserialize)]
pub struct ShardManifest {
    pub tool: String,
    pub version: String,
    pub command: String,
    pub engine: String,
    #[serde(default)]
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
}

/// Engine names a manifest may record.
const ENGINES: [&str; 2] = ["agents", "cohorts"];
/// The commands whose shards `merge` combines.
const COMMANDS: [&str; 2] = ["run", "compare"];

/// One shard folder and its manifest.
struct Part {
    dir: PathBuf,
    manifest: ShardManifest,
    /// A compare shard's splits, objective and direction (`None` for a run's shard).
    compare: Option<CompareFields>,
}

impl Part {
    fn range(&self) -> RangeInclusive<u64> {
        self.manifest.replication_first..=self.manifest.replication_last
    }

    /// `DIR (shard K/N, replications A..=B)`, as messages name a shard.
    fn label(&self) -> String {
        let shard = self.manifest.shard.as_deref().unwrap_or("none");
        format!(
            "{} (shard {shard}, replications {}..={})",
            self.dir.display(),
            self.manifest.replication_first,
            self.manifest.replication_last
        )
    }
}

/// Where the merged folder came from, recorded in its manifest.
#[derive(Serialize)]
struct MergedFrom {
    folder: String,
    shard: Option<String>,
    replication_first: u64,
    replication_last: u64,
}

#[derive(Serialize)]
struct MergedManifest {
    #[serde(flatten)]
    base: Manifest,
    merged_from: Vec<MergedFrom>,
}

/// The manifest of a merged compare: the compare's fields, `command` = `merge`, and the shards.
#[derive(Serialize)]
struct MergedCompareManifest {
    #[serde(flatten)]
    base: CompareManifest,
    merged_from: Vec<MergedFrom>,
}

pub fn run(args: &MergeArgs) -> Result<()> {
    let started = Instant::now();
    atomic::check_target(&args.out, args.force)?;
    let mut parts = args
        .dirs
        .iter()
        .map(|d| read_part(d))
        .collect::<Result<Vec<_>>>()?;
    check_compatible(&parts)?;
    parts.sort_by_key(|p| p.manifest.replication_first);
    check_coverage(&parts)?;
    if parts[0].compare.is_some() {
        return merge_compare(args, &parts, started);
    }
    let first = &parts[0].manifest;
    let scenario = scenario::load_str(&first.scenario_text, &first.scenario_file)?;
    let layout = Layout::of(&scenario);
    let mut records: Vec<Record> = Vec::new();
    for part in &parts {
        records.extend(read_records(part, &layout)?);
    }
    let manifest = merged_manifest(&parts, &scenario, started.elapsed().as_secs_f64());
    write(args, &layout, &records, &manifest)?;
    if !args.quiet {
        println!(
            "merged {} shards ({} replications) into {}",
            parts.len(),
            records.len(),
            args.out.display()
        );
    }
    Ok(())
}

/// Reads and checks one folder's manifest.
fn read_part(dir: &Path) -> Result<Part> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let file = path.display().to_string();
    let manifest: ShardManifest = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            &file,
            e.line(),
            "manifest",
            format!("{e} (expected the manifest.json written by `d11sim run` or `compare`)"),
        )
    })?;
    let bad = |key: &str, message: String| Err(Error::invalid(&file, 1, key, message));
    if manifest.tool != "d11sim" || !COMMANDS.contains(&manifest.command.as_str()) {
        return bad(
            "command",
            format!(
                "`{} {}` (expected the results of `d11sim run` or `d11sim compare`)",
                manifest.tool, manifest.command
            ),
        );
    }
    if !ENGINES.contains(&manifest.engine.as_str()) {
        return bad(
            "engine",
            format!(
                "`{}` (expected one of {})",
                manifest.engine,
                ENGINES.join(", ")
            ),
        );
    }
    if sha256_hex(&manifest.scenario_text) != manifest.scenario_sha256 {
        return bad(
            "scenario_sha256",
            "does not match scenario_text (expected an unedited manifest)".into(),
        );
    }
    let compare = match manifest.command.as_str() {
        "compare" => Some(compare_fields(&text, &file, &manifest.version)?),
        _ => None,
    };
    let part = Part {
        dir: dir.to_path_buf(),
        manifest,
        compare,
    };
    check_range(&part, &file)?;
    Ok(part)
}

/// The recorded range lies in `1..=R` and is the recorded shard's slice.
fn check_range(part: &Part, file: &str) -> Result<()> {
    let m = &part.manifest;
    let expected = match m.shard.as_deref() {
        None => 1..=m.replications,
        Some(text) => {
            let shard = Shard::parse(text).ok_or_else(|| {
                Error::invalid(
                    file,
                    1,
                    "shard",
                    format!("`{text}` is not K/N (expected e.g. 2/3)"),
                )
            })?;
            shard_range(m.replications, shard)
        }
    };
    if part.range() != expected || expected.is_empty() {
        return Err(Error::invalid(
            file,
            1,
            "replication_first",
            format!(
                "replications {}..={} (expected {}..={} for shard {} of {} replications)",
                m.replication_first,
                m.replication_last,
                expected.start(),
                expected.end(),
                m.shard.as_deref().unwrap_or("none"),
                m.replications
            ),
        ));
    }
    Ok(())
}

/// A compare shard's own fields. The statistics and `p_best` are computed here, so the shard must
/// come from this very version (with its number of bootstrap resamples).
fn compare_fields(text: &str, file: &str, version: &str) -> Result<CompareFields> {
    let ours = env!("CARGO_PKG_VERSION");
    if version != ours {
        return Err(Error::invalid(
            file,
            1,
            "version",
            format!(
                "{version} (expected {ours}: a compare's shards are merged by the d11sim version \
                 that ran them)"
            ),
        ));
    }
    let fields: CompareFields = serde_json::from_str(text).map_err(|e| {
        Error::invalid(
            file,
            e.line(),
            "manifest",
            format!("{e} (expected the manifest.json written by `d11sim compare --shard`)"),
        )
    })?;
    if fields.bootstrap_resamples != BOOTSTRAP_RESAMPLES {
        return Err(Error::invalid(
            file,
            1,
            "bootstrap_resamples",
            format!(
                "{} (this d11sim draws {BOOTSTRAP_RESAMPLES}: merge with the version that ran the \
                 shards)",
                fields.bootstrap_resamples
            ),
        ));
    }
    Ok(fields)
}

/// All shards come from one run: same command, scenario, seed, replication count, engine and
/// version, and for a compare the same splits, objective and direction.
fn check_compatible(parts: &[Part]) -> Result<()> {
    let first = &parts[0];
    check_same_command(parts)?;
    check_same_compare(parts)?;
    for part in &parts[1..] {
        let (a, b) = (&first.manifest, &part.manifest);
        let differences = [
            ("scenario (SHA-256)", &a.scenario_sha256, &b.scenario_sha256),
            ("seed", &a.seed.to_string(), &b.seed.to_string()),
            (
                "replications",
                &a.replications.to_string(),
                &b.replications.to_string(),
            ),
            ("engine", &a.engine, &b.engine),
            ("version", &a.version, &b.version),
            (
                "options",
                &a.non_exact_options.join(","),
                &b.non_exact_options.join(","),
            ),
        ];
        if let Some((what, x, y)) = differences.iter().find(|(_, x, y)| x != y) {
            return Err(Error::Usage(format!(
                "{}: {what} {y} differs from that of {} ({x}); shards must come from one run \
                 (same scenario, seed, replications, engine and version)",
                part.dir.display(),
                first.dir.display()
            )));
        }
    }
    Ok(())
}

/// Every folder holds shards of the same command: `run` and `compare` shards do not mix.
fn check_same_command(parts: &[Part]) -> Result<()> {
    let first = &parts[0];
    let Some(part) = parts
        .iter()
        .find(|p| p.manifest.command != first.manifest.command)
    else {
        return Ok(());
    };
    Err(Error::Usage(format!(
        "{}: a shard of `d11sim {}`, but {} is a shard of `d11sim {}`; shards of run and \
         compare cannot be merged together",
        part.dir.display(),
        part.manifest.command,
        first.dir.display(),
        first.manifest.command
    )))
}

/// What must agree between the shards of one compare, each with its name in messages. The splits
/// file is compared by its SHA-256 (its path may differ between hosts).
fn compare_arguments(c: &CompareFields) -> [(&'static str, String); 9] {
    let s = &c.splits_source;
    let text = |x: &Option<String>| x.clone().unwrap_or_else(|| "-".into());
    [
        ("splits (kind)", s.kind.clone()),
        (
            "split pair",
            s.pair.as_ref().map_or("-".into(), |p| p.join(",")),
        ),
        ("steps", s.steps.map_or("-".into(), |n| n.to_string())),
        ("splits file (SHA-256)", text(&s.file_sha256)),
        ("splits", c.splits.join(",")),
        ("columns", c.columns.join(",")),
        ("reference", c.reference.clone()),
        ("objective", c.objective.clone()),
        ("minimize", c.minimize.to_string()),
    ]
}

/// The shards of a compare agree on its arguments (splits, steps, objective, direction).
fn check_same_compare(parts: &[Part]) -> Result<()> {
    let Some(first) = &parts[0].compare else {
        return Ok(());
    };
    let expected = compare_arguments(first);
    for part in &parts[1..] {
        let found = compare_arguments(part.compare.as_ref().expect("same command checked"));
        if let Some(((what, x), (_, y))) = expected.iter().zip(&found).find(|(a, b)| a.1 != b.1) {
            return Err(Error::Usage(format!(
                "{}: {what} {y} differs from that of {} ({x}); shards must come from one \
                 compare (same arguments: splits, steps, objective, --minimize)",
                part.dir.display(),
                parts[0].dir.display()
            )));
        }
    }
    Ok(())
}

/// The shards' ranges (sorted by start) tile `1..=R`: no replication twice, none missing.
fn check_coverage(parts: &[Part]) -> Result<()> {
    let total = parts[0].manifest.replications;
    let mut next = 1;
    let mut previous: Option<&Part> = None;
    for part in parts {
        let first = part.manifest.replication_first;
        if first < next {
            let other = previous.expect("next > 1 only after a part");
            return Err(Error::Usage(format!(
                "{} overlaps {}: each replication must come from exactly one shard (is a shard \
                 given twice?)",
                part.label(),
                other.label()
            )));
        }
        if first > next {
            return Err(missing(next, first - 1, total, previous, Some(part)));
        }
        next = part.manifest.replication_last + 1;
        previous = Some(part);
    }
    if next <= total {
        return Err(missing(next, total, total, previous, None));
    }
    Ok(())
}

fn missing(from: u64, to: u64, total: u64, before: Option<&Part>, after: Option<&Part>) -> Error {
    let around: Vec<String> = [before, after]
        .iter()
        .flatten()
        .map(|p| p.label())
        .collect();
    Error::Usage(format!(
        "replications {from}..={to} of 1..={total} are missing: no folder given covers them \
         (next to {}); give every shard's folder",
        around.join(" and ")
    ))
}

/// A shard's records, which must be exactly its manifest's range.
fn read_records(part: &Part, layout: &Layout) -> Result<Vec<Record>> {
    let records = raw::read(&part.dir, layout, part.manifest.seed)?;
    let found: Vec<u64> = records.iter().map(|r| r.replication).collect();
    let expected: Vec<u64> = part.range().collect();
    if found != expected {
        let path = part.dir.join(files::RAW).join(files::REPLICATIONS);
        return Err(Error::invalid(
            &path.display().to_string(),
            1,
            "replication",
            format!(
                "holds {} replications {:?}..{:?} (expected {}..={} as its manifest says)",
                found.len(),
                found.first(),
                found.last(),
                expected.first().unwrap_or(&0),
                expected.last().unwrap_or(&0)
            ),
        ));
    }
    Ok(records)
}

fn merged_manifest(parts: &[Part], scenario: &Scenario, merge_seconds: f64) -> MergedManifest {
    let m = &parts[0].manifest;
    let user_ticks = 2.0 * scenario.users as f64 * scenario.ticks() as f64 * m.replications as f64;
    MergedManifest {
        base: base_manifest(parts, user_ticks, merge_seconds),
        merged_from: merged_from(parts),
    }
}

/// `run`'s manifest fields of a merged folder: the shards' scenario, seed and engine, their wall
/// times summed (plus the merge's), `command` = `merge`.
fn base_manifest(parts: &[Part], user_ticks: f64, merge_seconds: f64) -> Manifest {
    let m = &parts[0].manifest;
    let wall: f64 = parts.iter().map(|p| p.manifest.wall_seconds).sum();
    Manifest {
        tool: "d11sim",
        version: env!("CARGO_PKG_VERSION"),
        command: "merge",
        engine: engine_name(&m.engine),
        non_exact_options: m.non_exact_options.clone(),
        scenario_name: m.scenario_name.clone(),
        scenario_file: m.scenario_file.clone(),
        scenario_sha256: m.scenario_sha256.clone(),
        scenario_text: m.scenario_text.clone(),
        seed: m.seed,
        replications: m.replications,
        replication_first: 1,
        replication_last: m.replications,
        threads: parts.iter().map(|p| p.manifest.threads).max().unwrap_or(1),
        shard: None,
        wall_seconds: wall + merge_seconds,
        user_ticks_per_second: user_ticks / wall.max(f64::MIN_POSITIVE),
        note: crate::cmd::run::MC_NOTE,
    }
}

fn merged_from(parts: &[Part]) -> Vec<MergedFrom> {
    parts
        .iter()
        .map(|p| MergedFrom {
            folder: p.dir.display().to_string(),
            shard: p.manifest.shard.clone(),
            replication_first: p.manifest.replication_first,
            replication_last: p.manifest.replication_last,
        })
        .collect()
}

/// The engine's name as `Manifest` holds it (checked against the known names when read).
fn engine_name(name: &str) -> &'static str {
    ENGINES
        .iter()
        .find(|&&e| e == name)
        .copied()
        .unwrap_or("unknown")
}

/// Writes the merged folder atomically, charts included like `run`'s (nothing is written if any
/// step fails).
fn write(
    args: &MergeArgs,
    layout: &Layout,
    records: &[Record],
    manifest: &MergedManifest,
) -> Result<()> {
    atomic::write_folder(&args.out, args.force, |dir| {
        files::write_all(dir, layout, records, manifest.base.seed)?;
        let json = serde_json::to_string_pretty(manifest).map_err(|e| Error::Run(e.to_string()))?;
        let path = dir.join(MANIFEST);
        std::fs::write(&path, json + "\n").map_err(|source| Error::Write { path, source })?;
        if !args.no_charts {
            crate::chart::draw_all(dir, args.chart_format.into())?;
        }
        Ok(())
    })
}

/// Merges the shards of a compare (checked compatible and tiling `1..=R`): rebuilds the splits from
/// the manifest's arguments, reads every shard's `raw/`, computes every statistic and `p_best` from
/// all the replications, and writes the folder `compare` would have written.
fn merge_compare(args: &MergeArgs, parts: &[Part], started: Instant) -> Result<()> {
    let outcome = compare_outcome(parts)?;
    let fields = parts[0].compare.clone().expect("a compare's parts");
    let s = &outcome.scenario;
    let simulations = u64::from(s.replications) * (outcome.set.splits.len() as u64 + 1);
    let user_ticks = s.users as f64 * s.ticks() as f64 * simulations as f64;
    let merge_seconds = started.elapsed().as_secs_f64();
    let manifest = MergedCompareManifest {
        base: CompareManifest {
            run: base_manifest(parts, user_ticks, merge_seconds),
            compare: fields,
        },
        merged_from: merged_from(parts),
    };
    let charts: Option<ChartFormat> = (!args.no_charts).then(|| args.chart_format.into());
    outcome.write(&args.out, args.force, charts, &manifest)?;
    if !args.quiet {
        let wall = manifest.base.run.wall_seconds;
        cmd_compare::print_ranking(&outcome, manifest.base.run.engine, wall, &args.out);
        println!(
            "merged {} shards ({} replications) into {}",
            parts.len(),
            s.replications,
            args.out.display()
        );
    }
    Ok(())
}

/// The comparison of the shards' replications, its splits rebuilt as `compare` built them.
fn compare_outcome(parts: &[Part]) -> Result<Outcome> {
    let (m, fields) = (
        &parts[0].manifest,
        parts[0].compare.as_ref().expect("compare"),
    );
    let origin = parts[0].dir.join(MANIFEST).display().to_string();
    let bad = |key: &str, message: String| Error::invalid(&origin, 1, key, message);
    let mut scenario = scenario::load_str(&m.scenario_text, &m.scenario_file)?;
    scenario.replications = u32::try_from(m.replications)
        .map_err(|_| bad("replications", format!("{} is too many", m.replications)))?;
    let spec = cmd_compare::spec_of_source(&fields.splits_source, &scenario, &origin)?;
    let set = crate::compare::split_set(&scenario, &spec)?;
    let names: Vec<String> = set.splits.iter().map(|x| x.name.clone()).collect();
    if names != fields.splits || set.column_names(&scenario) != fields.columns {
        return Err(bad(
            "splits",
            format!(
                "`{}` are not the splits its splits_source gives (`{}`; expected an unedited \
                 manifest)",
                fields.splits.join(","),
                names.join(",")
            ),
        ));
    }
    let layout = Layout::of(&scenario);
    let objective = layout.metric_index(&fields.objective).ok_or_else(|| {
        bad(
            "objective",
            format!(
                "unknown metric `{}` (expected a summary.csv metric)",
                fields.objective
            ),
        )
    })?;
    let mut records: Vec<Vec<Record>> = vec![Vec::new(); names.len()];
    for part in parts {
        let shard = raw::read_compare(&part.dir, &layout, m.seed, &names, part.range())?;
        for (all, more) in records.iter_mut().zip(shard) {
            all.extend(more);
        }
    }
    let minimize = fields.minimize;
    Ok(Outcome::new(
        scenario, set, records, objective, minimize, m.seed,
    ))
}
