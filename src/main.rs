//! The `d11sim` binary: parse the command line, run, map the error to an exit code.

use clap::Parser;

fn main() {
    let cli = d11sim::cli::Cli::parse();
    d11sim::engine::return_large_blocks();
    if let Err(e) = d11sim::cli::run(cli) {
        match &e {
            d11sim::Error::Invalid(problems) => {
                for p in problems {
                    eprintln!("{p}");
                }
                let plural = if problems.len() == 1 { "" } else { "s" };
                eprintln!(
                    "error: {} problem{plural} found; nothing was run or written",
                    problems.len()
                );
            }
            _ => eprintln!("error: {e}"),
        }
        std::process::exit(e.exit_code());
    }
}
