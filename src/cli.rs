//! The command line: clap derive structs whose doc comments are the help text. Only this module
//! and `main` know clap; each command is carried out by a function of `crate::cmd`.

// The doc comments are written for the terminal (`<scenario name>`, `[[split]]`), not as
// rustdoc's markdown.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Monte Carlo simulator of Singles' Day subsidies and WeChat-to-Taobao traffic.
///
/// d11sim answers: what does a joint Alibaba–Tencent subsidy budget buy on Singles' Day, and how
/// should it be split (coupons vs traffic, Channels vs Moments, who pays what)? Every figure comes
/// with its Monte Carlo confidence interval.
#[derive(Debug, Parser)]
#[command(
    name = "d11sim",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
#[command(
    after_help = "Examples:\n  d11sim run                              # the built-in national 2023 scenario\n  d11sim run scenarios/quick.toml         # a small scenario, in a second\n  d11sim compare scenarios/singles_day_2023.toml --split-programs cross_store_300_50,channels_boost\n  d11sim validate scenarios/*.toml\n  d11sim scenario --default > my.toml"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(RunArgs),
    Compare(CompareArgs),
    Chart(ChartArgs),
    Validate(ValidateArgs),
    Scenario(ScenarioArgs),
    Merge(MergeArgs),
}

/// Which engine computes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    /// Exact counts over exchangeable users (fast).
    Cohorts,
    /// The literal per-user reference (small populations only).
    Agents,
}

/// Image format of the charts (`--chart-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChartFormatChoice {
    /// PNG images, 1280×720.
    Png,
    /// SVG images, 1280×720.
    Svg,
    /// Both PNG and SVG.
    Both,
}

impl From<ChartFormatChoice> for crate::chart::ChartFormat {
    fn from(c: ChartFormatChoice) -> Self {
        match c {
            ChartFormatChoice::Png => crate::chart::ChartFormat::Png,
            ChartFormatChoice::Svg => crate::chart::ChartFormat::Svg,
            ChartFormatChoice::Both => crate::chart::ChartFormat::Both,
        }
    }
}

/// Options shared by `run` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Number of replications (overrides the scenario's `replications`, and for compare its
    /// `compare_replications`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub replications: Option<u32>,
    /// Master seed (overrides the scenario's `seed`).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Results folder (default: output/<scenario name>/ for run, output/<scenario name>-compare/
    /// for compare).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing results folder (atomically).
    #[arg(long)]
    pub force: bool,
    /// No progress bar and no table (run's summary, compare's ranking).
    #[arg(long, short)]
    pub quiet: bool,
    /// Image format of the charts in charts/ (report.html always inlines SVG).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ChartFormatChoice::Png)]
    pub chart_format: ChartFormatChoice,
    /// Write no charts/ and no report.html.
    #[arg(long)]
    pub no_charts: bool,
    /// Run only the K-th (1 ≤ K ≤ N) of N deterministic, contiguous slices of the replications;
    /// `d11sim merge` combines the N folders into the unsharded results, byte for byte. `auto/N`
    /// takes K from the scheduler's 0-based index plus one: SLURM_ARRAY_TASK_ID (Slurm job
    /// arrays) or JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::shard::ShardSpec>,
    /// Engine: `cohorts` (exact counts, fast) or `agents` (the literal per-user reference).
    #[arg(long, value_enum, default_value_t = EngineChoice::Cohorts)]
    pub engine: EngineChoice,
}

/// Run a scenario: replications of the festival and its no-program baseline, written to a
/// results folder (summary.csv, replications.csv, timeseries.csv, funnel.csv, budgets.csv,
/// manifest.json, raw/).
///
/// Example: d11sim run scenarios/quick.toml --replications 50 --out output/try1
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (default: the built-in national scenario, see `d11sim scenario --default`).
    pub scenario: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Compare splits of a scenario's budgets or funding shares, on common random numbers.
///
/// Every split runs the same replications with the same seed against one shared baseline (the
/// scenario without programs), so differences between splits are measured far more precisely than
/// each split alone. The reference is the scenario's own split (the row named `reference`). Writes
/// compare.csv (a row per split × metric: mean and CI, the paired difference vs the reference and
/// its CI, and p_best on the objective), summary.csv of the reference, manifest.json and raw/ to
/// output/<scenario name>-compare/ unless --out is given. With --shard K/N, a shard writes only
/// manifest.json and raw/ for its replications; `d11sim merge` of every shard writes the rest.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    d11sim compare scenarios/quick.toml --split-programs cross_store_300_50,channels_boost\n  \
    d11sim compare scenarios/quick.toml --split-funders alibaba,tencent --steps 5\n  \
    d11sim compare scenarios/quick.toml --splits my_splits.toml --objective return.alibaba")]
#[command(group(
    clap::ArgGroup::new("splits_from")
        .required(true)
        .args(["split_programs", "split_funders", "splits"])
))]
pub struct CompareArgs {
    /// Scenario file.
    pub scenario: PathBuf,
    /// Sweep how the summed budget of programs A and B is split, from all-A to all-B (the kinds
    /// may differ: a coupon program against a traffic program).
    #[arg(long, value_name = "A,B")]
    pub split_programs: Option<String>,
    /// Sweep the shares of funders F and G in every program both fund (their sum kept in each
    /// program), from all-F to all-G.
    #[arg(long, value_name = "F,G")]
    pub split_funders: Option<String>,
    /// A TOML file of named splits: [[split]] name = "…", budget = { program = yuan, … },
    /// funded_by.<program> = { funder = share, … } (see the README's compare section).
    #[arg(long, value_name = "FILE")]
    pub splits: Option<PathBuf>,
    /// Number of evenly spaced splits of a sweep, both ends included (at least 2).
    #[arg(long, value_name = "N", default_value_t = 11, conflicts_with = "splits",
          value_parser = clap::value_parser!(u32).range(2..))]
    pub steps: u32,
    /// The metric the splits are ranked by and p_best is computed on (a summary.csv metric).
    #[arg(long, value_name = "METRIC", default_value = "incremental_gmv")]
    pub objective: String,
    /// Lower is better on the objective (for cost-like metrics such as subsidy_spend).
    #[arg(long)]
    pub minimize: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Check scenario files and list every problem, each as FILE:LINE: key.path: what is wrong.
///
/// Exits 0 only if every file is valid. Example: d11sim validate scenarios/*.toml
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files to check.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
}

/// Merge the results folders of shards (`run --shard K/N` or `compare --shard K/N`) into one.
///
/// The merged CSV files are byte-identical to those of an unsharded run (or compare, its p_best
/// computed here) with the same scenario, arguments and seed. Refuses (exit 2) run and compare
/// shards mixed, shards of different scenarios, seeds, engines, versions or compare arguments,
/// and shards missing or given twice; writes nothing unless the merge succeeds.
///
/// Example: d11sim merge shards/1 shards/2 shards/3 --out output/merged
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' results folders, in any order.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// The merged results folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an existing results folder (atomically).
    #[arg(long)]
    pub force: bool,
    /// Print nothing on success.
    #[arg(long, short)]
    pub quiet: bool,
    /// Image format of the merged folder's charts.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ChartFormatChoice::Png)]
    pub chart_format: ChartFormatChoice,
    /// Write no charts/.
    #[arg(long)]
    pub no_charts: bool,
}

/// Redraw the charts and report.html of a results folder from its files alone.
///
/// Reads the folder's CSV files and manifest.json (never the engine) and writes charts/ (funnel,
/// GMV per hour, budget burn-down, spend by funder, incremental GMV by placement, orders by
/// destination; for a compare folder, the metrics against the split) and report.html, byte for
/// byte what `run` drew. A missing or malformed file is reported with its line (exit 2).
///
/// Example: d11sim chart output/singles_day_2023 --chart-format both
#[derive(Debug, Args)]
pub struct ChartArgs {
    /// The results folder (written by `run`, `merge` or `compare`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Image format of the charts in charts/ (report.html always inlines SVG).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ChartFormatChoice::Png)]
    pub chart_format: ChartFormatChoice,
}

/// Print the built-in default scenario (commented) to start a new one from.
///
/// Example: d11sim scenario --default > my_scenario.toml
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Print the default national scenario (the only one built in; the flag may be omitted).
    #[arg(long)]
    pub default: bool,
}

/// Carries out the parsed command line.
pub fn run(cli: Cli) -> crate::Result<()> {
    match cli.command {
        Command::Run(args) => crate::cmd::run::run(&args),
        Command::Compare(args) => crate::cmd::compare::run(&args),
        Command::Chart(args) => crate::cmd::chart::run(&args),
        Command::Validate(args) => crate::cmd::validate::run(&args.scenarios),
        Command::Merge(args) => crate::cmd::merge::run(&args),
        Command::Scenario(_) => {
            print!("{}", crate::scenario::default::DEFAULT_SCENARIO_TOML);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
