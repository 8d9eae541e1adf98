//! `run --shard`: what is accepted, what is refused (exit 2), and `auto/N` from each scheduler.

use super::*;

#[test]
fn malformed_or_impossible_shards_exit_2_and_write_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    let cases: [(&[&str], &str); 7] = [
        (&["--shard", "0/3"], "positive"),
        (&["--shard", "4/3"], "K is greater than N"),
        (&["--shard", "x/3"], "K/N"),
        (&["--shard", "3"], "K/N"),
        (&["--shard", "1/0"], "positive"),
        (
            &["--shard", "auto/3"],
            "neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX",
        ),
        (&["--shard", "1/15"], "without empty shards"),
    ];
    for (args, fragment) in cases {
        let o = run_tiny(&out, args);
        expect_code(&o, 2, &format!("{args:?}"));
        assert!(stderr(&o).contains(fragment), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
}

/// `run --shard auto/3` with one scheduler variable set.
fn auto(out: &Path, var: &str, value: &str) -> std::process::Output {
    common::d11sim()
        .arg("run")
        .arg(common::data("tiny.toml"))
        .args([
            "--replications",
            REPLICATIONS,
            "--quiet",
            "--no-charts",
            "--shard",
            "auto/3",
            "--out",
        ])
        .arg(out)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .env(var, value)
        .output()
        .expect("d11sim runs")
}

#[test]
fn auto_takes_the_zero_based_index_of_slurm_or_kubernetes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    for (var, index, shard, first, last) in [
        ("SLURM_ARRAY_TASK_ID", "0", "1/3", 1, 4),
        ("JOB_COMPLETION_INDEX", "2", "3/3", 10, 14),
    ] {
        let out = tmp.path().join(var);
        expect_code(&auto(&out, var, index), 0, var);
        let m = manifest(&out);
        assert_eq!(m["shard"], shard);
        assert_eq!(m["replication_first"], first);
        assert_eq!(m["replication_last"], last);
    }
    for (var, value) in [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("JOB_COMPLETION_INDEX", "-1"),
        ("SLURM_ARRAY_TASK_ID", "one"),
    ] {
        let o = auto(&tmp.path().join("bad"), var, value);
        expect_code(&o, 2, &format!("{var}={value}"));
        assert!(
            stderr(&o).contains(&format!("{var}={value}")),
            "{}",
            stderr(&o)
        );
    }
    assert!(!tmp.path().join("bad").exists());
}

#[test]
fn an_unsharded_run_records_no_shard_and_every_replication() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("whole");
    expect_code(&run_tiny(&out, &[]), 0, "run");
    let m = manifest(&out);
    assert_eq!(m["shard"], serde_json::Value::Null);
    assert_eq!(
        (
            m["replication_first"].clone(),
            m["replication_last"].clone()
        ),
        (1.into(), 14.into())
    );
}
