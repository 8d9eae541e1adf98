//! `d11sim merge`: byte-identity with an unsharded run, and every refusal.

use std::path::{Path, PathBuf};

use super::*;

/// Runs the N shards of tiny into `dir/N-K` (one thread each, to show threads do not matter).
fn shards(dir: &Path, n: u64) -> Vec<PathBuf> {
    shards_on("agents", dir, n)
}

/// As [`shards`], on the engine named.
fn shards_on(engine: &str, dir: &Path, n: u64) -> Vec<PathBuf> {
    (1..=n)
        .map(|k| {
            let out = dir.join(format!("{engine}-{n}-{k}"));
            let o = run_tiny_on(
                engine,
                &out,
                &["--shard", &format!("{k}/{n}"), "--threads", "1"],
            );
            expect_code(&o, 0, &format!("shard {k}/{n}"));
            out
        })
        .collect()
}

/// The unsharded reference run.
fn whole(dir: &Path) -> PathBuf {
    whole_on("agents", dir)
}

/// As [`whole`], on the engine named.
fn whole_on(engine: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("whole-{engine}"));
    expect_code(&run_tiny_on(engine, &out, &[]), 0, "unsharded run");
    out
}

/// The same byte-identity on the default engine.
#[test]
fn merged_cohorts_shards_equal_an_unsharded_run_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let reference = whole_on("cohorts", tmp.path());
    for n in [1u64, 3, 7] {
        let parts = shards_on("cohorts", tmp.path(), n);
        let out = tmp.path().join(format!("merged-cohorts-{n}"));
        expect_code(&merge(&parts, &out, &[]), 0, "merge");
        assert_same_csvs(&out, &reference);
    }
}

#[test]
fn merged_shards_equal_an_unsharded_run_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let reference = whole(tmp.path());
    for n in [1u64, 3, 7] {
        let mut parts = shards(tmp.path(), n);
        parts.reverse(); // merge takes its folders in any order
        let out = tmp.path().join(format!("merged-{n}"));
        expect_code(&merge(&parts, &out, &[]), 0, "merge");
        assert_same_csvs(&out, &reference);
        let m = manifest(&out);
        assert_eq!(m["command"], "merge");
        assert_eq!(m["merged_from"].as_array().map(Vec::len), Some(n as usize));
        assert_eq!(m["shard"], serde_json::Value::Null);
        assert_eq!(m["replication_first"], 1);
        assert_eq!(m["replication_last"], 14);
    }
    // Merged folders get charts like `run`'s.
    let charted = tmp.path().join("charted");
    let o = common::d11sim()
        .arg("merge")
        .args(shards(&tmp.path().join("charts"), 1))
        .arg("--out")
        .arg(&charted)
        .output()
        .expect("runs");
    expect_code(&o, 0, "merge with charts");
    assert!(String::from_utf8_lossy(&o.stdout).contains("merged 1 shards (14 replications)"));
    assert!(
        listing(&charted.join("charts")).len() >= 5,
        "charts/ of a merge"
    );
}

#[test]
fn shard_manifests_record_the_shard_and_its_replications() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let parts = shards(tmp.path(), 7);
    let m = manifest(&parts[2]);
    assert_eq!(m["shard"], "3/7");
    assert_eq!(
        (
            m["replication_first"].clone(),
            m["replication_last"].clone()
        ),
        (5.into(), 6.into())
    );
    assert_eq!(m["replications"], 14);
}

/// The merge of `dirs` is refused with exit 2, a message containing each of `fragments`, and
/// nothing written beside `out`.
fn refused(dirs: &[PathBuf], out: &Path, fragments: &[&str]) {
    let parent = out.parent().expect("out has a parent");
    let before = listing(parent);
    let o = merge(dirs, out, &[]);
    expect_code(&o, 2, &format!("merge {fragments:?}"));
    let message = stderr(&o);
    for f in fragments {
        assert!(message.contains(f), "`{f}` not in: {message}");
    }
    assert_eq!(listing(parent), before, "a refused merge wrote something");
}

/// A copy of a shard with one manifest line edited.
fn edited(shard: &Path, to: &Path, old: &str, new: &str) -> PathBuf {
    common::copy_dir(shard, to);
    let path = to.join("manifest.json");
    let text = common::read(&path);
    assert!(text.contains(old), "{old} not in the manifest");
    std::fs::write(&path, text.replacen(old, new, 1)).expect("write");
    to.to_path_buf()
}

#[test]
fn merge_refuses_shards_that_do_not_make_one_run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = tmp.path();
    let s = shards(t, 3);
    let out = t.join("out");
    let name = |p: &Path| p.display().to_string();
    // Missing, duplicated, or from two different splits.
    refused(
        &[s[0].clone(), s[2].clone()],
        &out,
        &["replications 5..=9", "missing"],
    );
    refused(
        &[s[0].clone(), s[1].clone()],
        &out,
        &["replications 10..=14", "missing"],
    );
    let twice = [s[0].clone(), s[1].clone(), s[1].clone(), s[2].clone()];
    refused(&twice, &out, &["overlaps", &name(&s[1])]);
    let seven = shards(t, 7);
    let mixed = [s[0].clone(), s[1].clone(), s[2].clone(), seven[6].clone()];
    refused(&mixed, &out, &["overlaps", &name(&seven[6])]);
    // Another seed, scenario, engine or version.
    let seed = t.join("seed");
    expect_code(
        &run_tiny(&seed, &["--shard", "2/3", "--seed", "8"]),
        0,
        "seed 8",
    );
    refused(
        &[s[0].clone(), seed.clone(), s[2].clone()],
        &out,
        &[&name(&seed), "seed"],
    );
    let other = t.join("other.toml");
    let text = common::read(&common::data("tiny.toml")).replace("users = 500", "users = 400");
    std::fs::write(&other, text).expect("write");
    let scen = t.join("scen");
    let o = common::d11sim()
        .args([
            "run",
            "--replications",
            REPLICATIONS,
            "--shard",
            "2/3",
            "--quiet",
            "--no-charts",
            "--out",
        ])
        .arg(&scen)
        .arg(&other)
        .output()
        .expect("runs");
    expect_code(&o, 0, "other scenario");
    refused(
        &[s[0].clone(), scen.clone(), s[2].clone()],
        &out,
        &[&name(&scen), "SHA-256"],
    );
    let engine = edited(
        &s[1],
        &t.join("engine"),
        "\"engine\": \"agents\"",
        "\"engine\": \"cohorts\"",
    );
    refused(
        &[s[0].clone(), engine.clone(), s[2].clone()],
        &out,
        &[&name(&engine), "engine"],
    );
    let version = edited(
        &s[1],
        &t.join("version"),
        "\"version\": \"",
        "\"version\": \"0.0.0-",
    );
    refused(
        &[s[0].clone(), version.clone(), s[2].clone()],
        &out,
        &[&name(&version), "version"],
    );
}

#[test]
fn merge_refuses_folders_that_are_not_whole_shards() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = tmp.path();
    let s = shards(t, 3);
    let out = t.join("out");
    let empty = t.join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    refused(
        &[s[0].clone(), empty.clone(), s[2].clone()],
        &out,
        &["empty/manifest.json", "cannot read"],
    );
    let absent = t.join("absent");
    refused(
        &[s[0].clone(), absent, s[2].clone()],
        &out,
        &["absent/manifest.json"],
    );
    // A manifest edited by hand: its scenario no longer matches its SHA-256.
    let hacked = edited(&s[1], &t.join("hacked"), "users = 500", "users = 501");
    refused(
        &[s[0].clone(), hacked, s[2].clone()],
        &out,
        &["hacked/manifest.json", "scenario_sha256"],
    );
    // A truncated raw file: named with its line.
    let cut = t.join("cut");
    common::copy_dir(&s[1], &cut);
    let funnel = cut.join("raw").join("funnel.csv");
    let text = common::read(&funnel);
    let shorter: Vec<&str> = text.lines().collect();
    std::fs::write(&funnel, shorter[..shorter.len() - 1].join("\n") + "\n").expect("write");
    refused(
        &[s[0].clone(), cut, s[2].clone()],
        &out,
        &["cut/raw/funnel.csv:", "rows (expected"],
    );
    // An existing --out without --force is refused; with --force it is replaced.
    std::fs::create_dir(&out).expect("mkdir");
    refused(&s, &t.join("out"), &["already exists"]);
    expect_code(&merge(&s, &out, &["--force"]), 0, "merge --force");
    assert_eq!(manifest(&out)["command"], "merge");
}

#[test]
fn merge_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let o = common::d11sim()
        .args(["merge", "--out"])
        .arg(tmp.path().join("o"))
        .output()
        .expect("runs");
    expect_code(&o, 2, "merge without folders");
    let o = common::d11sim()
        .args(["merge"])
        .arg(tmp.path())
        .output()
        .expect("runs");
    expect_code(&o, 2, "merge without --out");
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
}
