//! `d11sim validate` and `d11sim scenario` as a user runs them.

use std::path::PathBuf;

use crate::common;

/// Each mistake of `tests/data/bad_ten_mistakes.toml`: the text of its line and the key path
/// reported. The line numbers are looked up in the file, so editing its header keeps them right.
const TEN_MISTAKES: [(&str, &str); 10] = [
    ("tick_minutes = 45", "scenario.tick_minutes"),
    ("users = 0", "population.users"),
    ("taobao_app = 1.3", "segment.urban.taobao_app"),
    ("basket_sigma = -0.7", "segment.rural.basket_sigma"),
    ("owner = \"tencnet\"", "placement.channels.owner"),
    ("fatige = 0.8", "frequency.fatige"),
    (
        "schedule = [\"20:00-1:00\"]",
        "destination.live_room.schedule",
    ),
    ("discount = 150.0", "program.threshold_coupon.discount"),
    ("placement = \"videos\"", "program.channels_boost.placement"),
    ("end = \"2023-11-10 20:00\"", "event.final.end"),
];

/// The folder of test fixtures, as the working directory of commands naming them plainly.
fn data_dir() -> PathBuf {
    common::root().join("tests").join("data")
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `d11sim ARGS` in the fixture folder; returns its exit code, stdout and stderr.
fn run_in_data(args: &[&str]) -> (Option<i32>, String, String) {
    let output = common::d11sim()
        .current_dir(data_dir())
        .args(args)
        .output()
        .expect("d11sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), stdout, stderr_of(&output))
}

#[test]
fn validate_lists_all_ten_mistakes_with_their_lines() {
    let file = "bad_ten_mistakes.toml";
    let text = common::read(&common::data(file));
    let output = common::d11sim()
        .current_dir(data_dir())
        .args(["validate", file])
        .assert()
        .code(2)
        .stdout("")
        .get_output()
        .clone();
    let stderr = stderr_of(&output);
    let mut lines_seen = Vec::new();
    for (needle, key) in TEN_MISTAKES {
        let matching: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim() == needle)
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(matching.len(), 1, "`{needle}` is on one line of {file}");
        let located = format!("{file}:{}: {key}: ", matching[0]);
        assert!(
            stderr.contains(&located),
            "missing `{located}` in:\n{stderr}"
        );
        lines_seen.push(matching[0]);
    }
    lines_seen.dedup();
    assert_eq!(lines_seen.len(), 10, "ten different lines");
    let reported = stderr
        .lines()
        .filter(|l| l.contains(&format!("{file}:")))
        .count();
    assert_eq!(reported, 10, "exactly ten problems:\n{stderr}");
}

#[test]
fn validate_accepts_every_file_in_scenarios() {
    let dir = common::root().join("scenarios");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|p| p.ends_with("singles_day_2023.toml")),
        "scenarios/ holds the default scenario"
    );
    for file in &files {
        let name = file.display().to_string();
        common::d11sim()
            .arg("validate")
            .arg(file)
            .assert()
            .success()
            .stdout(format!("{name}: ok\n"))
            .stderr("");
    }
}

#[test]
fn validate_accepts_tiny() {
    common::d11sim()
        .current_dir(data_dir())
        .args(["validate", "tiny.toml"])
        .assert()
        .success()
        .stdout("tiny.toml: ok\n")
        .stderr("");
}

#[test]
fn validate_a_valid_and_a_bad_file_together_exits_2_and_still_says_ok() {
    for args in [
        ["validate", "tiny.toml", "bad_ten_mistakes.toml"],
        ["validate", "bad_ten_mistakes.toml", "tiny.toml"],
    ] {
        let (code, stdout, stderr) = run_in_data(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert_eq!(stdout, "tiny.toml: ok\n", "{args:?}");
        assert!(stderr.contains("bad_ten_mistakes.toml:"), "{stderr}");
        assert!(!stderr.contains("tiny.toml:"), "{stderr}");
    }
}

#[test]
fn validate_a_missing_file_exits_2_and_names_it() {
    let (code, stdout, stderr) = run_in_data(&["validate", "no_such_scenario.toml"]);
    assert_eq!(code, Some(2));
    assert_eq!(stdout, "");
    assert!(stderr.contains("no_such_scenario.toml"), "{stderr}");
}

#[test]
fn validate_a_missing_file_beside_a_valid_one_exits_2() {
    let (code, stdout, stderr) = run_in_data(&["validate", "tiny.toml", "no_such_scenario.toml"]);
    assert_eq!(code, Some(2));
    assert_eq!(stdout, "tiny.toml: ok\n");
    assert!(stderr.contains("no_such_scenario.toml"), "{stderr}");
}

#[test]
fn validate_without_a_file_is_a_usage_error() {
    common::d11sim().arg("validate").assert().code(2);
}

#[test]
fn validate_reports_a_syntax_error_with_its_line() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let text = common::read(&common::data("tiny.toml")).replacen("users = 500", "users = = 500", 1);
    let line = text
        .lines()
        .position(|l| l == "users = = 500")
        .expect("the edit")
        + 1;
    std::fs::write(dir.path().join("broken.toml"), &text).expect("write the fixture");
    let output = common::d11sim()
        .current_dir(dir.path())
        .args(["validate", "broken.toml"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!("broken.toml:{line}: (syntax): ")),
        "{stderr}"
    );
}

#[test]
fn scenario_default_prints_exactly_the_default_file() {
    let expected = std::fs::read(
        common::root()
            .join("scenarios")
            .join("singles_day_2023.toml"),
    )
    .expect("scenarios/singles_day_2023.toml is readable");
    for args in [&["scenario", "--default"][..], &["scenario"][..]] {
        let output = common::d11sim()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        assert!(
            output.stdout == expected,
            "`d11sim {}` differs from the file",
            args.join(" ")
        );
    }
}

#[test]
fn the_printed_default_scenario_validates() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let output = common::d11sim()
        .args(["scenario", "--default"])
        .assert()
        .success()
        .get_output()
        .clone();
    std::fs::write(dir.path().join("my.toml"), &output.stdout).expect("write the copy");
    common::d11sim()
        .current_dir(dir.path())
        .args(["validate", "my.toml"])
        .assert()
        .success()
        .stdout("my.toml: ok\n");
}

#[test]
fn help_of_validate_and_scenario_gives_an_example() {
    for command in ["validate", "scenario"] {
        let output = common::d11sim()
            .args([command, "--help"])
            .assert()
            .success()
            .get_output()
            .clone();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            help.contains("Example"),
            "`d11sim {command} --help` shows no example:\n{help}"
        );
        assert!(
            help.contains(&format!("d11sim {command} ")),
            "the example runs `d11sim {command}`:\n{help}"
        );
    }
}
