//! Charts and report.html (issue 7): files, sizes, byte-identical redraws, located errors, and
//! no system-font dependencies.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::common::{d11sim, data, read, root};

/// The charts of a `run` folder.
const CHARTS: [&str; 6] = [
    "funnel",
    "gmv_per_hour",
    "budget_burndown",
    "spend_by_funder",
    "incremental_gmv_by_placement",
    "orders_by_destination",
];
/// PNG signature and the offsets of the IHDR chunk's type, width and height (PNG spec, 11.2.2).
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
const IHDR_TYPE: std::ops::Range<usize> = 12..16;
const IHDR_WIDTH: std::ops::Range<usize> = 16..20;
const IHDR_HEIGHT: std::ops::Range<usize> = 20..24;
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;

/// Runs tests/data/tiny.toml into `<tmp>/r` with extra arguments.
fn run_tiny(tmp: &Path, extra: &[&str]) -> PathBuf {
    let out = tmp.join("r");
    d11sim()
        .arg("run")
        .arg(data("tiny.toml"))
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .args(extra)
        .assert()
        .success();
    out
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_png_size(path: &Path) {
    let b = bytes(path);
    assert!(b.len() > IHDR_HEIGHT.end, "{}: too short", path.display());
    assert_eq!(b[..8], PNG_SIGNATURE, "{}: not a PNG", path.display());
    assert_eq!(&b[IHDR_TYPE], b"IHDR", "{}", path.display());
    let be = |r: std::ops::Range<usize>| u32::from_be_bytes(b[r].try_into().expect("4 bytes"));
    assert_eq!(
        (be(IHDR_WIDTH), be(IHDR_HEIGHT)),
        (WIDTH, HEIGHT),
        "{}",
        path.display()
    );
}

fn assert_svg_size(path: &Path) {
    let text = read(path);
    let head =
        format!("<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\"");
    assert!(
        text.starts_with(&head),
        "{}: {}",
        path.display(),
        &text[..80.min(text.len())]
    );
    assert!(text.trim_end().ends_with("</svg>"), "{}", path.display());
}

/// SHA-256 of every file in `charts/` and of report.html, by name.
fn hashes(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("charts"))
        .expect("charts/")
        .map(|e| e.expect("entry").path())
        .collect();
    files.push(dir.join("report.html"));
    files.sort();
    files
        .iter()
        .map(|p| {
            let digest: String = Sha256::digest(bytes(p))
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                digest,
            )
        })
        .collect()
}

#[test]
fn run_draws_every_chart_as_a_1280_by_720_png() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &[]);
    for name in CHARTS {
        assert_png_size(&out.join("charts").join(format!("{name}.png")));
        assert!(!out.join("charts").join(format!("{name}.svg")).exists());
    }
}

#[test]
fn chart_format_both_writes_svg_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &["--chart-format", "both"]);
    for name in CHARTS {
        assert_png_size(&out.join("charts").join(format!("{name}.png")));
        assert_svg_size(&out.join("charts").join(format!("{name}.svg")));
    }
}

#[test]
fn no_charts_writes_neither_charts_nor_report() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &["--no-charts"]);
    assert!(out.join("summary.csv").exists());
    assert!(!out.join("charts").exists());
    assert!(!out.join("report.html").exists());
}

#[test]
fn report_is_self_contained_with_every_chart_inline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &[]);
    let html = read(&out.join("report.html"));
    assert_eq!(html.matches("<svg ").count(), CHARTS.len());
    for name in CHARTS {
        assert!(html.contains(&format!("<figure id=\"{name}\">")), "{name}");
    }
    for metric in [
        "<code>gmv</code>",
        "<code>iroi</code>",
        "<code>return.alibaba</code>",
    ] {
        assert!(html.contains(metric), "{metric}");
    }
    assert!(!html.to_lowercase().contains("<script"));
    assert!(!html.contains("https://") && !html.contains("src=\"http"));
}

#[test]
fn chart_command_reproduces_the_run_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &["--chart-format", "both"]);
    let before = hashes(&out);
    std::fs::remove_dir_all(out.join("charts")).expect("remove charts");
    std::fs::remove_file(out.join("report.html")).expect("remove report");
    d11sim()
        .args(["chart", "--chart-format", "both"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(hashes(&out), before);
}

#[test]
fn a_chart_rendered_twice_hashes_the_same() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &["--no-charts"]);
    d11sim().arg("chart").arg(&out).assert().success();
    let first = hashes(&out);
    d11sim().arg("chart").arg(&out).assert().success();
    assert_eq!(hashes(&out), first);
    assert_eq!(first.len(), CHARTS.len() + 1);
}

/// `chart` on a folder whose `file` is replaced by `text` fails with exit 2 naming `located`.
fn assert_bad_input(file: &str, text: &str, located: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &["--no-charts"]);
    std::fs::write(out.join(file), text).expect("write");
    let assert = d11sim().arg("chart").arg(&out).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let expected = format!("{}{located}", out.join(file).display());
    assert!(
        stderr.contains(&expected),
        "expected `{expected}` in:\n{stderr}"
    );
    assert!(!out.join("report.html").exists());
}

#[test]
fn an_empty_csv_is_reported_with_file_and_line() {
    assert_bad_input("summary.csv", "", ":1: header: empty file");
}

#[test]
fn a_header_only_csv_is_reported_with_file_and_line() {
    assert_bad_input(
        "budgets.csv",
        "tick,time,program,remaining_mean,band_low,band_high\n",
        ":2: rows: no data rows",
    );
}

#[test]
fn a_malformed_number_is_reported_with_file_line_and_column() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &["--no-charts"]);
    let text = read(&out.join("funnel.csv"));
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let cells: Vec<&str> = lines[3].split(',').collect();
    let broken = format!(
        "{},{},{},{},12abc,{},{}",
        cells[0], cells[1], cells[2], cells[3], cells[5], cells[6]
    );
    lines[3] = broken;
    assert_bad_input(
        "funnel.csv",
        &(lines.join("\n") + "\n"),
        ":4: mean: `12abc` is not a finite number",
    );
}

#[test]
fn a_ragged_csv_row_is_reported_with_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &["--no-charts"]);
    let text = read(&out.join("timeseries.csv"));
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "0,2023-11-10 20:00,clicks";
    assert_bad_input(
        "timeseries.csv",
        &(lines.join("\n") + "\n"),
        ":3: csv: malformed CSV",
    );
}

#[test]
fn a_missing_raw_file_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run_tiny(tmp.path(), &["--no-charts"]);
    let raw = out.join("raw").join("funnel.csv");
    std::fs::remove_file(&raw).expect("remove");
    let assert = d11sim().arg("chart").arg(&out).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains(&format!("{}:1: file: cannot read", raw.display())),
        "{stderr}"
    );
}

#[test]
fn no_system_font_libraries_in_the_dependency_tree() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["tree", "-e", "normal", "--prefix", "none"])
        .current_dir(root())
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let bad: Vec<&str> = tree
        .lines()
        .filter(|l| l.starts_with("font-kit") || l.starts_with("yeslogic-fontconfig"))
        .collect();
    assert!(bad.is_empty(), "system font crates: {bad:?}");
    assert!(
        tree.lines().any(|l| l.starts_with("plotters ")),
        "cargo tree lists plotters"
    );
}

#[test]
fn chart_help_has_a_purpose_and_an_example() {
    let assert = d11sim().args(["chart", "--help"]).assert().success();
    let help = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(help.contains("Redraw the charts"), "{help}");
    assert!(help.contains("Example: d11sim chart"), "{help}");
    assert!(help.contains("--chart-format"), "{help}");
}
