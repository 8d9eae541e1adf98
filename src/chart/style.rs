//! The look shared by every chart: size, the embedded font, the Okabe–Ito palette, number formats
//! and the title block.
//!
//! Numbers use SI-style suffixes (K = thousand, M = million, B = billion): the embedded Noto Sans
//! has no CJK glyphs, so 万/亿 cannot be drawn. Money is in yuan (¥).

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::error::{Error, Result};

/// Chart size in pixels: 16:9, pasteable into a slide.
pub const SIZE: (u32, u32) = (1280, 720);
/// The one font family, registered from the embedded Noto Sans.
pub const FONT: &str = "sans-serif";
/// Font sizes (plotters "size" units; the drawn cap height is about 0.7 of it).
pub const TITLE_SIZE: f64 = 34.0;
pub const SUBTITLE_SIZE: f64 = 21.0;
pub const AXIS_DESC_SIZE: f64 = 22.0;
pub const LABEL_SIZE: f64 = 19.0;
pub const VALUE_SIZE: f64 = 18.0;
/// Height of the title block above the plot (title and subtitle), pixels.
pub const TITLE_BLOCK: u32 = 92;
/// Outer margin, pixels.
pub const MARGIN: i32 = 24;
/// Width of the plotted lines and legend marks, pixels.
pub const LINE_WIDTH: u32 = 3;
/// Above this many points a line is drawn thinner, so that hourly detail stays visible.
const DENSE_POINTS: usize = 120;

/// Line width for a series of `points` points.
pub fn line_width(points: usize) -> u32 {
    if points > DENSE_POINTS {
        LINE_WIDTH - 1
    } else {
        LINE_WIDTH
    }
}
/// Opacity of a shaded band.
pub const BAND_ALPHA: f64 = 0.22;
/// Light grey of gridlines and the legend frame.
pub const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
/// Dark grey of subtitles and notes.
pub const NOTE: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// The Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008), in the order series take them:
/// blue, orange, bluish green, vermillion, reddish purple, sky blue, yellow, black.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xF0, 0xE4, 0x42),
    RGBColor(0x00, 0x00, 0x00),
];

/// The `i`-th series colour (cycling).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Registers the embedded Noto Sans as `sans-serif`, once per process; never a system font.
pub fn register() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT, FontStyle::Normal, ttf_noto_sans::REGULAR)
                .map_err(|_| "the embedded Noto Sans font is invalid".to_string())
        })
        .clone()
        .map_err(Error::Run)
}

/// A text style of the embedded font.
pub fn text(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// The same, in a colour.
pub fn text_in(size: f64, c: RGBColor) -> TextStyle<'static> {
    (FONT, size).into_font().color(&c)
}

const THOUSAND: f64 = 1e3;
const SUFFIXES: [(f64, &str); 4] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (THOUSAND, "K")];
/// Significant digits kept by `si`.
const SIG_DIGITS: i32 = 3;
/// At most this many decimals (values below 1e-6 show as 0).
const MAX_DECIMALS: i32 = 6;

/// A number with an SI-style suffix and at most three significant digits: 1234 → "1.23K",
/// 5_600_000 → "5.6M", 0.25 → "0.25". Trailing zeros are dropped.
pub fn si(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return "0".to_string();
    }
    let (scale, suffix) = SUFFIXES
        .iter()
        .find(|(s, _)| x.abs() >= *s * (1.0 - 0.5e-3))
        .map_or((1.0, ""), |&(s, n)| (s, n));
    let v = x / scale;
    let digits_before = v.abs().log10().floor() as i32 + 1;
    let decimals = (SIG_DIGITS - digits_before).clamp(0, MAX_DECIMALS) as usize;
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    let text = if text == "-0" { "0".to_string() } else { text };
    format!("{text}{suffix}")
}

/// Yuan with a suffix: "¥1.23M" (negative: "-¥450").
pub fn yuan(x: f64) -> String {
    let s = si(x.abs());
    if x < 0.0 && s != "0" {
        format!("-¥{s}")
    } else {
        format!("¥{s}")
    }
}

/// A share as a percentage: 0.253 → "25.3%".
pub fn percent(x: f64) -> String {
    const PERCENT: f64 = 100.0;
    format!("{:.1}%", x * PERCENT)
}

/// How a legend entry is marked.
#[derive(Clone, Copy, Debug)]
pub enum Mark {
    /// A filled box (bars).
    Box(RGBColor),
    /// A solid line over its shaded band.
    Band(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A black whisker (confidence interval).
    Whisker,
}

/// Width of a legend mark, pixels.
const MARK_W: i32 = 26;
/// Gap after a mark and between entries, pixels.
const MARK_GAP: i32 = 8;
const ENTRY_GAP: i32 = 30;
/// Height of a legend row, pixels.
const LEGEND_ROW: i32 = 30;
/// Top of the subtitle and of the first legend row, pixels.
const SUBTITLE_TOP: i32 = 64;
const LEGEND_TOP: i32 = 100;

fn draw_mark<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    mark: Mark,
    (x, y): (i32, i32),
) -> std::result::Result<(), String> {
    let half = 8;
    let r = match mark {
        Mark::Box(c) => root.draw(&Rectangle::new(
            [(x, y - half), (x + MARK_W, y + half)],
            c.filled(),
        )),
        Mark::Band(c) => root
            .draw(&Rectangle::new(
                [(x, y - half), (x + MARK_W, y + half)],
                c.mix(BAND_ALPHA).filled(),
            ))
            .and_then(|_| {
                root.draw(&PathElement::new(
                    vec![(x, y), (x + MARK_W, y)],
                    c.stroke_width(LINE_WIDTH),
                ))
            }),
        Mark::Dashed(c) => root
            .draw(&PathElement::new(
                vec![(x, y), (x + 10, y)],
                c.stroke_width(LINE_WIDTH),
            ))
            .and_then(|_| {
                root.draw(&PathElement::new(
                    vec![(x + 16, y), (x + MARK_W, y)],
                    c.stroke_width(LINE_WIDTH),
                ))
            }),
        Mark::Whisker => root
            .draw(&PathElement::new(
                vec![(x + MARK_W / 2, y - half), (x + MARK_W / 2, y + half)],
                BLACK.stroke_width(2),
            ))
            .and_then(|_| {
                root.draw(&PathElement::new(
                    vec![(x + 6, y - half), (x + MARK_W - 6, y - half)],
                    BLACK.stroke_width(2),
                ))
            })
            .and_then(|_| {
                root.draw(&PathElement::new(
                    vec![(x + 6, y + half), (x + MARK_W - 6, y + half)],
                    BLACK.stroke_width(2),
                ))
            }),
    };
    r.map_err(|e| e.to_string())
}

/// Lays legend entries out in rows under the subtitle, wrapping at the right margin; returns
/// the entries' positions and the number of rows.
fn legend_layout<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[(Mark, String)],
) -> (Vec<(i32, i32)>, i32) {
    let width = root.dim_in_pixel().0 as i32 - MARGIN;
    let (mut x, mut row, mut out) = (MARGIN, 0, Vec::new());
    for (_, label) in entries {
        let w = root
            .estimate_text_size(label, &text(LABEL_SIZE))
            .map_or(0, |s| s.0 as i32);
        let entry = MARK_W + MARK_GAP + w;
        if x > MARGIN && x + entry > width {
            (x, row) = (MARGIN, row + 1);
        }
        out.push((x, LEGEND_TOP + row * LEGEND_ROW));
        x += entry + ENTRY_GAP;
    }
    (out, if entries.is_empty() { 0 } else { row + 1 })
}

/// Draws the title (what), the subtitle (scenario, replications, when) and the legend, and
/// returns the area below them.
pub fn title_block<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
    legend: &[(Mark, String)],
) -> std::result::Result<DrawingArea<DB, Shift>, String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let left = Pos::new(HPos::Left, VPos::Top);
    root.draw(&Text::new(
        title.to_string(),
        (MARGIN, MARGIN / 2 + 4),
        text(TITLE_SIZE).pos(left),
    ))
    .map_err(|e| e.to_string())?;
    root.draw(&Text::new(
        subtitle.to_string(),
        (MARGIN, SUBTITLE_TOP),
        text_in(SUBTITLE_SIZE, NOTE).pos(left),
    ))
    .map_err(|e| e.to_string())?;
    let (positions, rows) = legend_layout(root, legend);
    let mid = Pos::new(HPos::Left, VPos::Center);
    for ((mark, label), (x, y)) in legend.iter().zip(positions) {
        let y = y + LEGEND_ROW / 2;
        draw_mark(root, *mark, (x, y))?;
        root.draw(&Text::new(
            label.clone(),
            (x + MARK_W + MARK_GAP, y),
            text(LABEL_SIZE).pos(mid),
        ))
        .map_err(|e| e.to_string())?;
    }
    let (_, below) = root.split_vertically(TITLE_BLOCK as i32 + rows * LEGEND_ROW);
    Ok(below)
}

/// "scenario · N replications" for subtitles.
pub fn run_label(scenario: &str, replications: u64) -> String {
    let plural = if replications == 1 { "" } else { "s" };
    format!("Scenario {scenario} · {replications} replication{plural}")
}

/// The value axis every chart draws: horizontal grid lines only, no x labels (each chart draws its
/// own), the chart's y description and label format in the embedded font.
pub fn draw_value_mesh<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    y_desc: &str,
    y_labels: Option<usize>,
    format: &dyn Fn(&Y::ValueType) -> String,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend,
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh().x_labels(0);
    if let Some(n) = y_labels {
        mesh.y_labels(n);
    }
    mesh.y_label_formatter(format)
        .y_desc(y_desc)
        .axis_desc_style(text(AXIS_DESC_SIZE))
        .label_style(text(LABEL_SIZE))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_keeps_three_significant_digits() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(999.0), "999");
        assert_eq!(si(1234.0), "1.23K");
        assert_eq!(si(5_600_000.0), "5.6M");
        assert_eq!(si(0.25), "0.25");
        assert_eq!(si(0.001234), "0.00123");
        assert_eq!(si(-1500.0), "-1.5K");
        assert_eq!(si(2.5e9), "2.5B");
        assert_eq!(si(999_999.0), "1M");
        assert_eq!(yuan(-450.0), "-¥450");
    }
}
