//! report.html: one self-contained page (no network, no JavaScript) with the headline table and
//! every chart as inline SVG. The embedded Noto Sans is inlined too (base64 `@font-face`), so the
//! page looks the same on every machine.

use std::fmt::Write as _;
use std::path::Path;

use super::{Drawn, RunData};
use crate::error::{Error, Result};

/// The report's file name in a results folder.
pub const REPORT: &str = "report.html";
/// Family name of the inlined font in the page's CSS.
const PAGE_FONT: &str = "d11sim Noto Sans";
/// Rows of the headline table: metric, unit, what it is. `return.<funder>` rows follow.
const HEADLINES: [(&str, &str, &str); 8] = [
    ("gmv", "yuan", "GMV with the programs"),
    (
        "incremental_gmv",
        "yuan",
        "GMV with the programs minus the no-program baseline",
    ),
    ("orders", "orders", "paid orders with the programs"),
    (
        "incremental_orders",
        "orders",
        "paid orders minus the baseline's",
    ),
    (
        "subsidy_spend",
        "yuan",
        "coupon discounts plus traffic spend",
    ),
    ("discount", "yuan", "coupon discounts paid"),
    (
        "traffic_spend",
        "yuan",
        "paid traffic (boosted impressions)",
    ),
    (
        "iroi",
        "yuan per yuan",
        "incremental GMV per yuan of subsidy (ratio of means)",
    ),
];
/// Values at least this large are shown without decimals.
const WHOLE_FROM: f64 = 1000.0;
/// Decimals of a ratio such as `iroi`.
const RATIO_DECIMALS: usize = 3;
/// Decimals of a small value.
const SMALL_DECIMALS: usize = 2;

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A number with thousands separators: 1234567.8 → "1,234,568"; small values keep decimals.
pub fn grouped(x: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, x.abs());
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(a, b)| (a, b));
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out = format!("{out}.{frac}");
    }
    let zero = text.chars().all(|c| c == '0' || c == '.');
    if x < 0.0 && !zero {
        format!("-{out}")
    } else {
        out
    }
}

/// Decimals for a table cell of `metric` with typical size `scale`.
fn decimals(metric: &str, scale: f64) -> usize {
    if metric == "iroi" {
        RATIO_DECIMALS
    } else if scale.abs() >= WHOLE_FROM {
        0
    } else {
        SMALL_DECIMALS
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * k)) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page's head: title and CSS with the inlined font.
pub fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
@font-face {{ font-family: \"{PAGE_FONT}\"; src: url(data:font/ttf;base64,{}) format(\"truetype\"); }}\n\
body {{ font-family: \"{PAGE_FONT}\", sans-serif; max-width: 1320px; margin: 2em auto; padding: 0 1em; color: #222; }}\n\
svg text {{ font-family: \"{PAGE_FONT}\", sans-serif; }}\n\
figure {{ margin: 2em 0; }} figure svg {{ width: 100%; height: auto; border: 1px solid #ddd; }}\n\
table {{ border-collapse: collapse; }} th, td {{ padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; }}\n\
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }} th {{ text-align: left; }}\n\
.note {{ color: #555; }}\n</style>\n</head>\n<body>\n",
        escape(title),
        base64(ttf_noto_sans::REGULAR)
    )
}

/// The charts as figures with their SVG inline.
pub fn figures(drawn: &[Drawn]) -> String {
    let mut out = String::from("<h2>Charts</h2>\n");
    for d in drawn {
        let svg = d.svg.trim_start_matches(|c| c != '<');
        let _ = write!(
            out,
            "<figure id=\"{}\">\n<figcaption><h3>{}</h3></figcaption>\n{}\n</figure>\n",
            escape(&d.name),
            escape(&d.title),
            svg.trim_end()
        );
    }
    out
}

/// Writes `dir/report.html`.
pub fn write_page(dir: &Path, html: &str) -> Result<()> {
    let path = dir.join(REPORT);
    std::fs::write(&path, html).map_err(|source| Error::Write { path, source })
}

fn headline_table(data: &RunData) -> String {
    let mut rows: Vec<(String, String, String)> = HEADLINES
        .iter()
        .map(|(m, u, d)| (m.to_string(), u.to_string(), d.to_string()))
        .collect();
    for f in data.summary.suffixes("return.") {
        rows.push((
            format!("return.{f}"),
            "yuan".into(),
            format!("{f}'s net return (MODEL.md)"),
        ));
    }
    let mut out = String::from(
        "<table>\n<tr><th>metric</th><th>what it is</th><th>unit</th><th>mean</th>\
<th>95% CI low</th><th>95% CI high</th><th>replications</th></tr>\n",
    );
    for (metric, unit, what) in rows {
        let Some(s) = data.summary.get(&metric) else {
            continue;
        };
        let d = decimals(&metric, s.mean.unwrap_or(0.0));
        let cell = |v: Option<f64>| v.map_or("–".to_string(), |x| grouped(x, d));
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&metric),
            escape(&what),
            escape(&unit),
            cell(s.mean),
            cell(s.ci.map(|c| c.0)),
            cell(s.ci.map(|c| c.1)),
            s.replications
        );
    }
    out + "</table>\n"
}

/// Writes report.html of a `run` folder.
pub fn write_run(dir: &Path, data: &RunData, drawn: &[Drawn]) -> Result<()> {
    let m = &data.manifest;
    let title = format!("d11sim report: {}", m.scenario_name);
    let mut html = head(&title);
    let _ = write!(
        html,
        "<h1>{}</h1>\n<p>{} · engine {} · seed {} · d11sim {}</p>\n<h2>Headline figures</h2>\n{}\
<p class=\"note\">Means over replications with 95% confidence intervals of the mean (Student t; \
<code>iroi</code>: ratio of means with a delta-method interval). Intervals are Monte Carlo error only, \
not uncertainty about the scenario's parameters. Money in yuan. Charts abbreviate numbers with SI-style \
suffixes: K = thousand, M = million, B = billion (1 万 = 10K, 1 亿 = 100M).</p>\n",
        escape(&title),
        escape(&data.subtitle()),
        escape(&m.engine),
        m.seed.map_or("–".to_string(), |s| s.to_string()),
        escape(&m.version),
        headline_table(data)
    );
    html.push_str(&figures(drawn));
    html.push_str("</body>\n</html>\n");
    write_page(dir, &html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn grouped_adds_separators() {
        assert_eq!(grouped(1234567.8, 0), "1,234,568");
        assert_eq!(grouped(-1234.5, 1), "-1,234.5");
        assert_eq!(grouped(-0.001, 2), "0.00");
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
