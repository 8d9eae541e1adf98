//! The library's one error type and the single mapping from errors to exit codes.

use std::fmt;
use std::path::PathBuf;

/// Exit code of a bad command line or bad input file (INTERFACE.md).
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code of a run that failed while computing or writing (INTERFACE.md).
pub const EXIT_FAILED: i32 = 1;

/// One problem found in an input file, located by line and key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as the user named it (or `<default>` for the built-in scenario).
    pub file: String,
    /// 1-based line of the offending value (or of its table when a key is missing).
    pub line: usize,
    /// Dotted key path, e.g. `program.spring_coupon.discount`.
    pub key: String,
    /// What is wrong, then what is expected in parentheses.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.key, self.message
        )
    }
}

/// Every failure the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file (scenario, splits, results CSV) has one or more problems.
    #[error("{}", list_problems(.0))]
    Invalid(Vec<Problem>),
    /// An input file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A command-line value that clap could not check (e.g. a split naming an unknown program).
    #[error("{0}")]
    Usage(String),
    /// The results folder exists and `--force` was not given.
    #[error("{} already exists (pass --force to replace it)", .0.display())]
    OutputExists(PathBuf),
    /// Writing results failed.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The run could not be carried out (e.g. too many users for the agents engine).
    #[error("{0}")]
    Run(String),
    /// The run was interrupted (Ctrl-C); nothing was written.
    #[error("interrupted; the results folder was left as it was")]
    Interrupted,
}

fn list_problems(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    lines.join("\n")
}

impl Error {
    /// The process exit code for this error: 2 for bad usage or input, 1 for a failed run.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) | Error::Read { .. } | Error::Usage(_) | Error::OutputExists(_) => {
                EXIT_BAD_INPUT
            }
            Error::Write { .. } | Error::Run(_) | Error::Interrupted => EXIT_FAILED,
        }
    }

    /// A single located problem as an error.
    pub fn invalid(file: &str, line: usize, key: &str, message: impl Into<String>) -> Self {
        Error::Invalid(vec![Problem {
            file: file.to_string(),
            line,
            key: key.to_string(),
            message: message.into(),
        }])
    }
}

pub type Result<T> = std::result::Result<T, Error>;
