//! Shards: the K-th of N deterministic, contiguous slices of replications `1..=R`
//! (INTERFACE.md, `--shard K/N`). Each replication's random streams are keyed by its number, so a
//! replication gives the same numbers whichever shard (process, host) runs it, and `merge`
//! rebuilds the results of an unsharded run byte for byte.
//!
//! `--shard auto/N` takes K from a scheduler's 0-based task index plus one: Slurm job arrays set
//! `SLURM_ARRAY_TASK_ID`, Kubernetes Indexed Jobs set `JOB_COMPLETION_INDEX`.

use std::fmt;
use std::ops::RangeInclusive;

use crate::error::{Error, Result};

/// The scheduler variables `--shard auto/N` reads, in order of precedence (0-based indices).
pub const INDEX_VARS: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

/// One resolved shard: `index` K of `count` N, with 1 ≤ K ≤ N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// `--shard` as given: a fixed `K/N`, or `auto/N` (K from the scheduler's environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSpec {
    Fixed(Shard),
    Auto { count: u64 },
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardSpec::Fixed(s) => s.fmt(f),
            ShardSpec::Auto { count } => write!(f, "auto/{count}"),
        }
    }
}

fn positive(text: &str, what: &str) -> std::result::Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{what} `{text}` is not a positive whole number (expected K/N or auto/N with 1 ≤ K ≤ N, e.g. 2/8)"
        )),
    }
}

impl std::str::FromStr for ShardSpec {
    type Err = String;

    /// Parses `K/N` (1 ≤ K ≤ N) or `auto/N`; the message says what is expected.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let Some((k, n)) = text.split_once('/') else {
            return Err(format!(
                "`{text}` is not K/N or auto/N (expected e.g. 2/8 or auto/8)"
            ));
        };
        let count = positive(n, "N")?;
        if k.trim() == "auto" {
            return Ok(ShardSpec::Auto { count });
        }
        let index = positive(k, "K")?;
        if index > count {
            return Err(format!(
                "shard {index}/{count}: K is greater than N (expected 1 ≤ K ≤ N)"
            ));
        }
        Ok(ShardSpec::Fixed(Shard { index, count }))
    }
}

impl Shard {
    /// Parses the `shard` field of a manifest (`"K/N"`).
    pub fn parse(text: &str) -> Option<Shard> {
        match text.parse() {
            Ok(ShardSpec::Fixed(s)) => Some(s),
            _ => None,
        }
    }
}

impl ShardSpec {
    /// The shard to run, reading the scheduler's index from the process environment for `auto`.
    pub fn resolve(self) -> Result<Shard> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// [`ShardSpec::resolve`] with the environment given as a lookup (for tests).
    pub fn resolve_with(self, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let count = match self {
            ShardSpec::Fixed(s) => return Ok(s),
            ShardSpec::Auto { count } => count,
        };
        let Some((var, value)) = INDEX_VARS
            .iter()
            .find_map(|&var| env(var).map(|v| (var, v)))
        else {
            return Err(Error::Usage(format!(
                "--shard auto/{count}: neither {} nor {} is set (run under a Slurm job array or a \
                 Kubernetes Indexed Job, or give --shard K/{count})",
                INDEX_VARS[0], INDEX_VARS[1]
            )));
        };
        match value.trim().parse::<u64>() {
            Ok(i) if i < count => Ok(Shard {
                index: i + 1,
                count,
            }),
            _ => Err(Error::Usage(format!(
                "--shard auto/{count}: {var}={value} is not a 0-based index below {count} \
                 (expected 0 to {})",
                count - 1
            ))),
        }
    }
}

/// The replications of `shard` among `1..=total_replications`: the K-th of N contiguous slices,
/// whose sizes differ by at most one (slice K is `(K-1)·R/N + 1 ..= K·R/N`, integer division).
/// Empty (start > end) when N > R leaves this shard nothing; see [`checked_range`].
pub fn shard_range(total_replications: u64, shard: Shard) -> RangeInclusive<u64> {
    let r = u128::from(total_replications);
    let (k, n) = (u128::from(shard.index), u128::from(shard.count));
    let bound = |i: u128| u64::try_from(i * r / n).expect("at most total_replications");
    (bound(k - 1) + 1)..=bound(k)
}

/// [`shard_range`], refusing more shards than replications (exit 2), which would leave some
/// shards empty: every shard of such a split fails alike, rather than only the empty ones.
pub fn checked_range(total_replications: u64, shard: Shard) -> Result<RangeInclusive<u64>> {
    let range = shard_range(total_replications, shard);
    if shard.count > total_replications || range.is_empty() {
        return Err(Error::Usage(format!(
            "--shard {shard}: {total_replications} replications cannot be split {} ways \
             without empty shards (use at most {total_replications} shards)",
            shard.count
        )));
    }
    Ok(range)
}

/// The replications a run or compare covers: all of `1..=total` without `--shard`, else the
/// resolved shard's (non-empty) slice, with the shard for the manifest.
pub fn replications_for(
    total_replications: u64,
    spec: Option<ShardSpec>,
) -> Result<(RangeInclusive<u64>, Option<Shard>)> {
    match spec {
        None => Ok((1..=total_replications, None)),
        Some(spec) => {
            let shard = spec.resolve()?;
            Ok((checked_range(total_replications, shard)?, Some(shard)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(index: u64, count: u64) -> Shard {
        Shard { index, count }
    }

    #[test]
    fn parses_fixed_and_auto_and_refuses_the_rest() {
        assert_eq!("2/8".parse(), Ok(ShardSpec::Fixed(fixed(2, 8))));
        assert_eq!("auto/3".parse(), Ok(ShardSpec::Auto { count: 3 }));
        for bad in [
            "", "3", "0/3", "4/3", "1/0", "a/3", "1/x", "auto/0", "-1/3", "1/2/3",
        ] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn slices_are_contiguous_balanced_and_cover_everything() {
        for total in 1..=40u64 {
            for count in 1..=total {
                let mut next = 1;
                for index in 1..=count {
                    let r = shard_range(total, fixed(index, count));
                    assert_eq!(*r.start(), next);
                    let len = r.end() + 1 - r.start();
                    assert!(len == total / count || len == total / count + 1);
                    next = r.end() + 1;
                }
                assert_eq!(next, total + 1);
            }
        }
        assert_eq!(shard_range(14, fixed(3, 7)), 5..=6);
        assert!(checked_range(2, fixed(3, 3)).is_err());
        assert!(checked_range(2, fixed(1, 3)).is_err());
        assert_eq!(checked_range(3, fixed(3, 3)).ok(), Some(3..=3));
    }

    #[test]
    fn auto_reads_slurm_then_kubernetes() {
        let auto = ShardSpec::Auto { count: 3 };
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = auto.resolve_with(env(&[("JOB_COMPLETION_INDEX", "1")]));
        assert_eq!(k8s.ok(), Some(fixed(2, 3)));
        assert_eq!(
            auto.resolve_with(env(&[
                ("SLURM_ARRAY_TASK_ID", "0"),
                ("JOB_COMPLETION_INDEX", "2")
            ]))
            .ok(),
            Some(fixed(1, 3))
        );
        assert!(auto.resolve_with(env(&[])).is_err());
        assert!(
            auto.resolve_with(env(&[("SLURM_ARRAY_TASK_ID", "3")]))
                .is_err()
        );
        assert!(
            auto.resolve_with(env(&[("SLURM_ARRAY_TASK_ID", "x")]))
                .is_err()
        );
    }
}
