//! `d11sim merge DIR... --out DIR`: the results folders of shards (`run --shard K/N`) combined
//! into one, byte-identical in every CSV to an unsharded run of the same scenario and seed.
//!
//! Every shard's `manifest.json` is checked first: one scenario (SHA-256), seed, engine, version
//! and replication count, and replication ranges that tile `1..=R` exactly. Then each `raw/` is
//! read back, the layout rebuilt from the manifest's scenario text, and the folder written
//! atomically (INTERFACE.md, *Results folder*), so a refused or failed merge writes nothing.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::cli::MergeArgs;
use crate::cmd::run::{Manifest, sha256_hex};
use crate::error::{Error, Result};
use crate::results::files::{self, MANIFEST};
use crate::results::{Layout, Record, atomic, raw};
use crate::scenario::{self, Scenario};
use crate::shard::{Shard, shard_range};

/// What `merge` reads of a shard's `manifest.json` (written by `run`; other fields are ignored).
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

/// One shard folder and its manifest.
struct Part {
    dir: PathBuf,
    manifest: ShardManifest,
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
            format!("{e} (expected the manifest.json written by `d11sim run`)"),
        )
    })?;
    let bad = |key: &str, message: String| Err(Error::invalid(&file, 1, key, message));
    if manifest.tool != "d11sim" || manifest.command != "run" {
        return bad(
            "command",
            format!(
                "`{} {}` (expected the results of `d11sim run`)",
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
    let part = Part {
        dir: dir.to_path_buf(),
        manifest,
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

/// All shards come from one run: same scenario, seed, replication count, engine and version.
fn check_compatible(parts: &[Part]) -> Result<()> {
    let first = &parts[0];
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
    let wall: f64 = parts.iter().map(|p| p.manifest.wall_seconds).sum();
    let user_ticks = 2.0 * scenario.users as f64 * scenario.ticks() as f64 * m.replications as f64;
    let base = Manifest {
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
    };
    let merged_from = parts
        .iter()
        .map(|p| MergedFrom {
            folder: p.dir.display().to_string(),
            shard: p.manifest.shard.clone(),
            replication_first: p.manifest.replication_first,
            replication_last: p.manifest.replication_last,
        })
        .collect();
    MergedManifest { base, merged_from }
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
