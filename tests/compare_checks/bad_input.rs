//! Bad input to `compare`: a clear message, exit 2, and nothing written (no results folder, no
//! temporary sibling).

use super::*;

/// Tiny plus a funder, merchants, that funds no program.
fn with_merchants() -> String {
    scenario_text(&[(
        "cap = 40.0\n",
        "cap = 40.0\n\n[[funder]]\nname = \"merchants\"\ntake_rate = 0.0\n",
    )])
}

/// Splits files, each with one mistake, and the fragment its message must contain
/// (`FILE:LINE: key.path: …`).
const BAD_FILES: [(&str, &str, &str); 7] = [
    (
        "shares.toml",
        "[[split]]\nname = \"s\"\nfunded_by.threshold_coupon = { alibaba = 0.6, tencent = 0.3 }\n",
        "shares.toml:3: split.s.funded_by.threshold_coupon: funding shares sum to 0.8999999999999999 (they must sum to 1 within 1e-9)",
    ),
    (
        "negative.toml",
        "[[split]]\nname = \"s\"\nbudget = { channels_boost = -5 }\n",
        "negative.toml:3: split.s.budget.channels_boost: -5 is out of range (a finite number ≥ 0, in yuan, at most 10^13)",
    ),
    (
        "program.toml",
        "[[split]]\nname = \"s\"\nbudget = { channel_boost = 5 }\n",
        "program.toml:3: split.s.budget.channel_boost: unknown program \"channel_boost\" (one of: threshold_coupon, channels_boost)",
    ),
    (
        "funder.toml",
        "[[split]]\nname = \"s\"\nfunded_by.channels_boost = { alibaba = 0.5, jd = 0.5 }\n",
        "funder.toml:3: split.s.funded_by.channels_boost.jd: unknown funder \"jd\" (one of: alibaba, tencent)",
    ),
    (
        "key.toml",
        "[[split]]\nname = \"s\"\nbudgets = { channels_boost = 5 }\n",
        "key.toml:3: split.s.budgets: unknown key (did you mean `budget`?)",
    ),
    (
        "reserved.toml",
        "[[split]]\nname = \"reference\"\n",
        "reserved.toml:2: split.reference.name: \"reference\" is reserved",
    ),
    (
        "empty.toml",
        "# no splits\n",
        "empty.toml:1: split: no [[split]] defined",
    ),
];

/// Runs a failing case and checks exit 2, the message, and that the folder holds only `inputs`.
fn fails(dir: &Path, inputs: &[&str], args: &[&str], fragment: &str) -> Result<(), String> {
    let out = d11sim_in(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) {
        return Err(format!(
            "{args:?}: exit {:?}, not 2:\n{stderr}",
            out.status.code()
        ));
    }
    if !stderr.contains(fragment) {
        return Err(format!("{args:?}: stderr lacks `{fragment}`:\n{stderr}"));
    }
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut expected: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
    expected.sort();
    if found != expected {
        return Err(format!(
            "{args:?}: the folder holds {found:?}, not only {expected:?}"
        ));
    }
    Ok(())
}

#[test]
fn every_bad_input_exits_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tiny.toml", &scenario_text(&[]));
    write(dir, "merchants.toml", &with_merchants());
    // Both programs' budgets zero (nothing to split), or summing past what one budget may hold.
    let budgets = |a: &str, b: &str| {
        scenario_text(&[
            ("budget = 300.0\n", &format!("budget = {a}\n")),
            ("budget = 20.0\n", &format!("budget = {b}\n")),
        ])
    };
    write(dir, "zero.toml", &budgets("0.0", "0.0"));
    write(dir, "huge.toml", &budgets("9e12", "9e12"));
    let mut inputs = vec!["tiny.toml", "merchants.toml", "zero.toml", "huge.toml"];
    for (name, text, _) in BAD_FILES {
        write(dir, name, text);
        inputs.push(name);
    }
    let both = "threshold_coupon,channels_boost";
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--split-programs", "nope,channels_boost"],
            "--split-programs: unknown program \"nope\" (one of: threshold_coupon, channels_boost)",
        ),
        (
            vec!["--split-programs", "threshold_coupon,threshold_coupon"],
            "A and B are both \"threshold_coupon\"",
        ),
        (
            vec!["--split-programs", "threshold_coupon"],
            "is not two program names",
        ),
        (vec!["--split-programs", both, "--steps", "1"], "--steps"),
        (vec!["--split-programs", both, "--steps", "0"], "--steps"),
        (
            vec!["--split-funders", "alibaba,nobody"],
            "unknown funder \"nobody\" (one of: alibaba, tencent)",
        ),
        (
            vec!["--split-funders", "tencent,tencent"],
            "F and G are both \"tencent\"",
        ),
        (
            vec!["--split-programs", both, "--objective", "gmw"],
            "--objective: unknown metric \"gmw\"",
        ),
        (
            vec!["--split-programs", both, "--shard", "3/3"],
            "--shard 3/3: 2 replications cannot be split 3 ways",
        ),
        (
            vec!["--splits", "missing.toml"],
            "missing.toml: cannot read",
        ),
        (
            vec!["--splits", "empty.toml", "--steps", "3"],
            "cannot be used with",
        ),
        (
            vec![
                "--split-programs",
                both,
                "--split-funders",
                "alibaba,tencent",
            ],
            "cannot be used with",
        ),
        (vec![], "required"),
    ];
    for (name, _, fragment) in BAD_FILES {
        cases.push((vec!["--splits", name], fragment));
    }
    let mut failures = Vec::new();
    for (extra, fragment) in &cases {
        let mut args = vec!["compare", "tiny.toml", "--replications", "2", "--quiet"];
        args.extend(extra);
        failures.extend(fails(dir, &inputs, &args, fragment).err());
    }
    for (file, fragment) in [
        ("zero.toml", "have no budget between them"),
        (
            "huge.toml",
            "more than one budget may hold (at most 10^13 yuan)",
        ),
    ] {
        let args = ["compare", file, "--split-programs", both, "--quiet"];
        failures.extend(fails(dir, &inputs, &args, fragment).err());
    }
    let args = [
        "compare",
        "merchants.toml",
        "--split-funders",
        "alibaba,merchants",
        "--out",
        "x",
    ];
    failures.extend(
        fails(
            dir,
            &inputs,
            &args,
            "\"alibaba\" and \"merchants\" co-fund no program",
        )
        .err(),
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len() + 3,
        failures.join("\n")
    );
}

#[test]
fn a_splits_file_reports_all_its_problems_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tiny.toml", &scenario_text(&[]));
    let text = "[[split]]\nname = \"a\"\nbudget = { nope = 1, channels_boost = -1 }\n\n\
                [[split]]\nname = \"a\"\nfunded_by.threshold_coupon = { alibaba = 1.5 }\n";
    write(dir, "splits.toml", text);
    let out = d11sim_in(
        dir,
        &["compare", "tiny.toml", "--splits", "splits.toml", "--quiet"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for fragment in [
        "splits.toml:3: split.a.budget.nope: unknown program",
        "splits.toml:3: split.a.budget.channels_boost: -1 is out of range",
        "splits.toml:6: split.a.name: duplicate split name \"a\"",
        "splits.toml:7: split.a.funded_by.threshold_coupon.alibaba: 1.5 is out of range",
        "splits.toml:7: split.a.funded_by.threshold_coupon: funding shares sum to 0",
    ] {
        assert!(stderr.contains(fragment), "no `{fragment}` in:\n{stderr}");
    }
    assert!(!dir.join("output").exists());
}
