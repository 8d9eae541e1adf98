//! The command line: clap derive structs whose doc comments are the help text. Only this module
//! and `main` know clap; each command is carried out by a function of `crate::cmd`.

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
    after_help = "Examples:\n  d11sim run                              # the built-in national 2023 scenario\n  d11sim run scenarios/quick.toml         # a small scenario, in a second\n  d11sim validate scenarios/*.toml\n  d11sim scenario --default > my.toml"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(RunArgs),
    Validate(ValidateArgs),
    Scenario(ScenarioArgs),
}

/// Which engine computes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    /// Exact counts over exchangeable users (fast).
    Cohorts,
    /// The literal per-user reference (small populations only).
    Agents,
}

/// Options shared by `run` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Number of replications (overrides the scenario's `replications`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub replications: Option<u32>,
    /// Master seed (overrides the scenario's `seed`).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Results folder (default: output/<scenario name>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing results folder (atomically).
    #[arg(long)]
    pub force: bool,
    /// No progress bar and no summary table.
    #[arg(long, short)]
    pub quiet: bool,
    /// Engine: `cohorts` (exact counts, fast) or `agents` (the literal per-user reference).
    #[arg(long, value_enum, default_value_t = EngineChoice::Agents)]
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

/// Check scenario files and list every problem, each as FILE:LINE: key.path: what is wrong.
///
/// Exits 0 only if every file is valid. Example: d11sim validate scenarios/*.toml
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files to check.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
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
        Command::Validate(args) => crate::cmd::validate::run(&args.scenarios),
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
