//! What a comparison computes: sweep ends equal to `run`, zero differences for the reference,
//! `p_best` summing to 1 and picking the obvious winner, the same bytes on any thread count.

use super::*;

const A: &str = "threshold_coupon";
const B: &str = "channels_boost";
const REPS: &str = "30";
const SEED: &str = "11";

/// Compares every metric's mean and CI of a `run` summary.csv with a split's compare.csv rows.
fn assert_same_as_run(compare_dir: &Path, split: &str, run_dir: &Path) {
    let rows = read_csv(&compare_dir.join("compare.csv"));
    let summary = read_csv(&run_dir.join("summary.csv"));
    let ours = split_rows(&rows, split);
    assert_eq!(ours.len(), summary.len(), "one row per metric for {split}");
    for (mine, theirs) in ours.iter().zip(&summary) {
        assert_eq!(mine["metric"], theirs["metric"]);
        for column in ["mean", "ci95_low", "ci95_high"] {
            assert_eq!(
                num(mine, column),
                num(theirs, column),
                "{split} {} {column}",
                mine["metric"]
            );
        }
    }
}

/// Runs `run` on a scenario text with the test's seed and replications; returns its folder.
fn run_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let file = write(dir, &format!("{name}.toml"), text);
    let out = dir.join(name);
    let (file, out_arg) = (file.display().to_string(), out.display().to_string());
    ok_in(
        dir,
        &[
            "run",
            &file,
            "--replications",
            REPS,
            "--seed",
            SEED,
            "--out",
            &out_arg,
            "--quiet",
        ],
    );
    out
}

#[test]
fn program_sweep_ends_equal_runs_with_all_budget_in_one_program() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tiny.toml", &scenario_text(&[]));
    ok_in(
        dir,
        &[
            "compare",
            "tiny.toml",
            "--split-programs",
            &format!("{A},{B}"),
            "--steps",
            "3",
            "--replications",
            REPS,
            "--seed",
            SEED,
            "--out",
            "cmp",
            "--quiet",
        ],
    );
    let cmp = dir.join("cmp");
    let splits: Vec<String> = read_csv(&cmp.join("raw/splits.csv"))
        .iter()
        .map(|r| r["split"].clone())
        .collect();
    assert_eq!(splits, ["reference", "step_0", "step_1", "step_2"]);
    // tiny: 300 + 20 yuan; all in A, then all in B.
    let all_a = scenario_text(&[
        ("budget = 300.0", "budget = 320.0"),
        ("budget = 20.0", "budget = 0.0"),
    ]);
    let all_b = scenario_text(&[
        ("budget = 300.0", "budget = 0.0"),
        ("budget = 20.0", "budget = 320.0"),
    ]);
    assert_same_as_run(&cmp, "step_0", &run_scenario(dir, "all_a", &all_a));
    assert_same_as_run(&cmp, "step_2", &run_scenario(dir, "all_b", &all_b));
    assert_same_as_run(
        &cmp,
        "reference",
        &run_scenario(dir, "own", &scenario_text(&[])),
    );
    let rows = read_csv(&cmp.join("compare.csv"));
    let budgets: Vec<(f64, f64)> = split_rows(&rows, "step_1")
        .iter()
        .map(|r| {
            (
                num(r, "budget.threshold_coupon").unwrap(),
                num(r, "budget.channels_boost").unwrap(),
            )
        })
        .collect();
    assert!(budgets.iter().all(|&b| b == (160.0, 160.0)), "{budgets:?}");
}

#[test]
fn funder_sweep_ends_equal_runs_with_one_funder_paying() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tiny.toml", &scenario_text(&[]));
    ok_in(
        dir,
        &[
            "compare",
            "tiny.toml",
            "--split-funders",
            "alibaba,tencent",
            "--steps",
            "2",
            "--replications",
            REPS,
            "--seed",
            SEED,
            "--out",
            "cmp",
            "--quiet",
        ],
    );
    let all_alibaba = scenario_text(&[
        (
            "funded_by = { alibaba = 0.7, tencent = 0.3 }",
            "funded_by = { alibaba = 1.0, tencent = 0.0 }",
        ),
        (
            "funded_by = { alibaba = 0.5, tencent = 0.5 }",
            "funded_by = { alibaba = 1.0, tencent = 0.0 }",
        ),
    ]);
    let all_tencent = scenario_text(&[
        (
            "funded_by = { alibaba = 0.7, tencent = 0.3 }",
            "funded_by = { alibaba = 0.0, tencent = 1.0 }",
        ),
        (
            "funded_by = { alibaba = 0.5, tencent = 0.5 }",
            "funded_by = { alibaba = 0.0, tencent = 1.0 }",
        ),
    ]);
    let cmp = dir.join("cmp");
    assert_same_as_run(&cmp, "step_0", &run_scenario(dir, "alibaba", &all_alibaba));
    assert_same_as_run(&cmp, "step_1", &run_scenario(dir, "tencent", &all_tencent));
    let rows = read_csv(&cmp.join("compare.csv"));
    let shares = |split: &str| {
        let r = split_rows(&rows, split)[0];
        (
            num(r, "share.alibaba").unwrap(),
            num(r, "share.tencent").unwrap(),
        )
    };
    assert_eq!(shares("step_0"), (1.0, 0.0));
    assert_eq!(shares("step_1"), (0.0, 1.0));
}

/// A splits file with two splits equal to the reference, one without coupons, one without any
/// program budget, and one with a big coupon budget paid by Alibaba alone (Tencent's cap of 40
/// yuan would stop the coupon early otherwise).
const SPLITS: &str = r#"
[[split]]
name = "same"

[[split]]
name = "explicit_same"
budget = { threshold_coupon = 300.0, channels_boost = 20.0 }
funded_by.threshold_coupon = { alibaba = 0.7, tencent = 0.3 }

[[split]]
name = "nothing"
budget = { threshold_coupon = 0, channels_boost = 0 }

[[split]]
name = "big_coupon"
budget = { threshold_coupon = 20000.0, channels_boost = 0 }
funded_by.threshold_coupon = { alibaba = 1.0 }
"#;

#[test]
fn splits_equal_to_the_reference_differ_by_exactly_zero_and_tie() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tiny.toml", &scenario_text(&[]));
    write(dir, "splits.toml", SPLITS);
    ok_in(
        dir,
        &[
            "compare",
            "tiny.toml",
            "--splits",
            "splits.toml",
            "--replications",
            REPS,
            "--out",
            "cmp",
            "--quiet",
        ],
    );
    let rows = read_csv(&dir.join("cmp/compare.csv"));
    let reference = split_rows(&rows, "reference");
    for split in ["reference", "same", "explicit_same"] {
        for (row, base) in split_rows(&rows, split).iter().zip(&reference) {
            for column in ["diff_vs_reference", "diff_ci95_low", "diff_ci95_high"] {
                let v = num(row, column);
                assert!(
                    v.is_none() || v == Some(0.0),
                    "{split} {} {column}: {v:?}",
                    row["metric"]
                );
            }
            assert_eq!(
                num(row, "mean"),
                num(base, "mean"),
                "{split} {}",
                row["metric"]
            );
        }
        let gmv = split_rows(&rows, split)
            .into_iter()
            .find(|r| r["metric"] == "incremental_gmv")
            .unwrap();
        assert_eq!(num(gmv, "diff_vs_reference"), Some(0.0));
        assert_eq!(num(gmv, "diff_ci95_low"), Some(0.0));
    }
    let p: BTreeMap<String, f64> = p_best(&rows, "incremental_gmv").into_iter().collect();
    assert_eq!(p["same"], p["reference"]);
    assert_eq!(p["explicit_same"], p["reference"]);
    // The columns: every budget and share any split sets, the reference's own values in its row.
    let r = reference[0];
    assert_eq!(num(r, "budget.threshold_coupon"), Some(300.0));
    assert_eq!(num(r, "funded_by.threshold_coupon.tencent"), Some(0.3));
    let big = split_rows(&rows, "big_coupon")[0];
    assert_eq!(num(big, "funded_by.threshold_coupon.tencent"), Some(0.0));
    assert_eq!(num(big, "funded_by.threshold_coupon.alibaba"), Some(1.0));
}

#[test]
fn p_best_sums_to_one_and_tied_splits_share_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tiny.toml", &scenario_text(&[]));
    write(dir, "splits.toml", SPLITS);
    ok_in(
        dir,
        &[
            "compare",
            "tiny.toml",
            "--splits",
            "splits.toml",
            "--replications",
            "50",
            "--out",
            "cmp",
            "--quiet",
        ],
    );
    let rows = read_csv(&dir.join("cmp/compare.csv"));
    let p: BTreeMap<String, f64> = p_best(&rows, "incremental_gmv").into_iter().collect();
    let total: f64 = p.values().sum();
    assert!((total - 1.0).abs() < 1e-9, "p_best sums to {total}: {p:?}");
    assert_eq!(p["same"], p["reference"], "{p:?}");
    assert_eq!(p["explicit_same"], p["reference"], "{p:?}");
    // p_best only on the objective's rows.
    assert!(
        rows.iter()
            .all(|r| (r["metric"] == "incremental_gmv") != r["p_best"].is_empty())
    );
    // Minimising a cost: without programs nothing is spent, so `nothing` is best in every resample.
    ok_in(
        dir,
        &[
            "compare",
            "tiny.toml",
            "--splits",
            "splits.toml",
            "--replications",
            "20",
            "--out",
            "cost",
            "--objective",
            "subsidy_spend",
            "--minimize",
            "--quiet",
        ],
    );
    let rows = read_csv(&dir.join("cost/compare.csv"));
    let p: BTreeMap<String, f64> = p_best(&rows, "subsidy_spend").into_iter().collect();
    assert_eq!(p["nothing"], 1.0, "{p:?}");
}

#[test]
fn p_best_finds_a_big_coupon_pool_against_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The reference spends nothing, like `nothing`: both are the baseline, incremental GMV 0 in
    // every replication. A big coupon pool paid by Alibaba alone raises it clearly (measured:
    // +65 yuan, CI [25, 105], over 100 replications of seed 7 with the agents engine).
    let zero = scenario_text(&[
        ("budget = 300.0", "budget = 0.0"),
        ("budget = 20.0", "budget = 0.0"),
    ]);
    write(dir, "zero.toml", &zero);
    let splits = SPLITS
        .split("[[split]]")
        .filter(|s| s.contains("\"nothing\"") || s.contains("\"big_coupon\""))
        .map(|s| format!("[[split]]{s}"))
        .collect::<String>();
    write(dir, "splits.toml", &splits);
    let stdout = ok_in(
        dir,
        &[
            "compare",
            "zero.toml",
            "--splits",
            "splits.toml",
            "--replications",
            "100",
            "--out",
            "cmp",
            "--engine",
            "agents",
        ],
    );
    let rows = read_csv(&dir.join("cmp/compare.csv"));
    let p: BTreeMap<String, f64> = p_best(&rows, "incremental_gmv").into_iter().collect();
    assert!(p["big_coupon"] > 0.95, "{p:?}");
    assert_eq!(p["nothing"], p["reference"], "{p:?}");
    let nothing = split_rows(&rows, "nothing")
        .into_iter()
        .find(|r| r["metric"] == "incremental_gmv")
        .unwrap();
    assert_eq!(num(nothing, "mean"), Some(0.0));
    assert!(stdout.contains("best: big_coupon"), "{stdout}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tiny.toml", &scenario_text(&[]));
    for threads in ["1", "4"] {
        ok_in(
            dir,
            &[
                "compare",
                "tiny.toml",
                "--split-programs",
                &format!("{A},{B}"),
                "--steps",
                "4",
                "--replications",
                "12",
                "--threads",
                threads,
                "--out",
                threads,
                "--quiet",
            ],
        );
    }
    for file in [
        "compare.csv",
        "summary.csv",
        "raw/replications.csv",
        "raw/splits.csv",
    ] {
        assert_eq!(
            common::read(&dir.join("1").join(file)),
            common::read(&dir.join("4").join(file)),
            "{file}"
        );
    }
    let manifest = common::read(&dir.join("1/manifest.json"));
    assert!(manifest.contains("\"command\": \"compare\""), "{manifest}");
}

#[test]
fn compare_replications_sets_a_comparison_s_count_and_the_command_line_overrides_it() {
    // tiny.toml sets `replications = 10`; `compare_replications = 3` applies to compare only.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = scenario_text(&[(
        "replications = 10",
        "replications = 10\ncompare_replications = 3",
    )]);
    write(dir, "tiny.toml", &text);
    let compare = |out: &str, extra: &[&str]| {
        let mut args = vec!["compare", "tiny.toml", "--split-programs"];
        let programs = format!("{A},{B}");
        args.push(&programs);
        args.extend_from_slice(&["--steps", "2", "--out", out, "--quiet", "--no-charts"]);
        args.extend_from_slice(extra);
        ok_in(dir, &args);
        read_csv(&dir.join(out).join("raw/replications.csv"))
            .iter()
            .map(|r| r["replication"].clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert_eq!(compare("by_file", &[]), 3);
    assert_eq!(compare("by_flag", &["--replications", "5"]), 5);
    ok_in(
        dir,
        &["run", "tiny.toml", "--out", "run", "--quiet", "--no-charts"],
    );
    assert_eq!(read_csv(&dir.join("run/replications.csv")).len(), 10);
}
