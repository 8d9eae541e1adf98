//! The `d11sim` binary: parse the command line, run, map the error to an exit code.

use clap::Parser;

fn main() {
    let cli = d11sim::cli::Cli::parse();
    if let Err(e) = d11sim::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
