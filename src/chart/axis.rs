//! Axes drawn by hand where plotters' automatic labels would not read well: time axes labelled
//! with local clock times and dates (UTC+8), and category axes labelled at bar-group centres.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::bad;
use super::style::{self, AXIS_DESC_SIZE, GRID, LABEL_SIZE};
use crate::error::Result;
use crate::time::{self, MINUTES_PER_DAY, MINUTES_PER_HOUR, Minutes};

/// Label spacings a time axis may use, in minutes: 1, 2, 3, 6, 12 hours, 1, 2, 7 days.
const STEPS_MINUTES: [i64; 8] = [60, 120, 180, 360, 720, 1440, 2880, 10080];
/// Pixels per label on a time axis that shows clock times ("20:00" with "Nov 10" below).
const CLOCK_LABEL_PX: i64 = 90;
/// Pixels per label on a time axis that shows dates only ("Nov 10").
const DATE_LABEL_PX: i64 = 72;
/// Length of an axis tick mark, pixels.
const TICK_MARK: i32 = 6;
/// Gap between the axis and its first label line, pixels.
const LABEL_GAP: i32 = 10;
/// Height of one label line, pixels.
const LINE_HEIGHT: i32 = 22;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A chart over ticks: x = ticks since the start (fractional), labelled with local times.
pub type TickChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The festival's ticks: start time and tick length, read from a `time` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeAxis {
    pub start: Minutes,
    pub tick_minutes: i64,
    pub ticks: usize,
}

impl TimeAxis {
    /// From the tick start times of timeseries.csv or budgets.csv (`file` names it in errors).
    pub fn of(times: &[String], file: &str) -> Result<TimeAxis> {
        let parse = |i: usize| {
            time::parse(&times[i]).ok_or_else(|| {
                bad(
                    file,
                    i + 2,
                    "time",
                    format!("`{}` is not YYYY-MM-DD HH:MM", times[i]),
                )
            })
        };
        let start = parse(0)?;
        let tick_minutes = if times.len() > 1 {
            parse(1)? - start
        } else {
            MINUTES_PER_HOUR
        };
        if tick_minutes <= 0 {
            return Err(bad(file, 2, "time", "tick times do not increase"));
        }
        Ok(TimeAxis {
            start,
            tick_minutes,
            ticks: times.len(),
        })
    }

    /// Local time at `x` ticks from the start.
    pub fn at(&self, x: f64) -> Minutes {
        self.start + (x * self.tick_minutes as f64).round() as i64
    }

    /// The end of the last tick.
    pub fn end(&self) -> Minutes {
        self.start + self.ticks as i64 * self.tick_minutes
    }

    /// "2023-11-10 20:00 – 2023-11-11 02:00 (UTC+8)".
    pub fn span(&self) -> String {
        format!(
            "{} – {} (UTC+8)",
            time::format(self.start),
            time::format(self.end())
        )
    }

    /// Label spacing (minutes) and whether labels show clock times, for a plot `width_px` wide.
    fn step(&self, width_px: i32) -> (i64, bool) {
        let minutes = self.end() - self.start;
        for &step in &STEPS_MINUTES {
            let clock = step < MINUTES_PER_DAY;
            let per_label = if clock { CLOCK_LABEL_PX } else { DATE_LABEL_PX };
            let limit = (i64::from(width_px) / per_label).max(2);
            if step >= self.tick_minutes && minutes / step < limit {
                return (step, clock);
            }
        }
        (STEPS_MINUTES[STEPS_MINUTES.len() - 1], false)
    }

    /// Label positions (x in ticks) on whole multiples of the step in local time.
    pub fn label_positions(&self, width_px: i32) -> Vec<f64> {
        let (step, _) = self.step(width_px);
        let first = self.start.div_euclid(step) * step;
        let first = if first < self.start {
            first + step
        } else {
            first
        };
        (0..)
            .map(|k| first + k * step)
            .take_while(|t| *t <= self.end())
            .map(|t| (t - self.start) as f64 / self.tick_minutes as f64)
            .collect()
    }
}

/// "Nov 10 20:00" of a local time.
pub fn date_time_label(t: Minutes) -> String {
    let m = time::minute_of_day(t);
    let (h, mm) = (m / MINUTES_PER_HOUR, m % MINUTES_PER_HOUR);
    format!("{} {h:02}:{mm:02}", date_label(t))
}

/// "Nov 10" of a local time.
fn date_label(t: Minutes) -> String {
    let text = time::format(t);
    let month: usize = text[5..7].parse().unwrap_or(1);
    let day: u32 = text[8..10].parse().unwrap_or(1);
    format!(
        "{} {day}",
        MONTHS[(month + MONTHS.len() - 1) % MONTHS.len()]
    )
}

/// The plot's width in pixels.
fn width<DB: DrawingBackend>(chart: &TickChart<'_, DB>, axis: &TimeAxis) -> i32 {
    let (left, _) = chart.backend_coord(&(0.0, 0.0));
    let (right, _) = chart.backend_coord(&(axis.ticks as f64, 0.0));
    right - left
}

/// Draws vertical gridlines at the time labels (inside the plot).
pub fn time_grid<DB: DrawingBackend>(
    chart: &mut TickChart<'_, DB>,
    axis: &TimeAxis,
    y: (f64, f64),
) -> std::result::Result<(), String> {
    let width = width(chart, axis);
    let lines = axis
        .label_positions(width)
        .into_iter()
        .map(|x| PathElement::new(vec![(x, y.0), (x, y.1)], GRID));
    chart.draw_series(lines).map_err(|e| e.to_string())?;
    Ok(())
}

/// Draws time labels under the x axis: clock times on the first line, the date on the second
/// line where the day changes (dates only when labels are a day or more apart), and the axis
/// description below.
pub fn time_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &TickChart<'_, DB>,
    axis: &TimeAxis,
    y_bottom: f64,
) -> std::result::Result<(), String> {
    let width = width(chart, axis);
    let (_, clock) = axis.step(width);
    let top = Pos::new(HPos::Center, VPos::Top);
    let mut last_day = None;
    let (mut bottom, mut lines_used) = (0, 1);
    for x in axis.label_positions(width) {
        let (px, py) = chart.backend_coord(&(x, y_bottom));
        let t = axis.at(x);
        let mut lines = Vec::new();
        if clock {
            lines.push(format!(
                "{:02}:{:02}",
                time::minute_of_day(t) / MINUTES_PER_HOUR,
                time::minute_of_day(t) % MINUTES_PER_HOUR
            ));
        }
        if !clock || last_day != Some(time::day(t)) {
            lines.push(date_label(t));
        }
        last_day = Some(time::day(t));
        root.draw(&PathElement::new(
            vec![(px, py), (px, py + TICK_MARK)],
            BLACK,
        ))
        .map_err(|e| e.to_string())?;
        for (k, line) in lines.iter().enumerate() {
            let y = py + LABEL_GAP + k as i32 * LINE_HEIGHT;
            root.draw(&Text::new(
                line.clone(),
                (px, y),
                style::text(LABEL_SIZE).pos(top),
            ))
            .map_err(|e| e.to_string())?;
        }
        bottom = py;
        lines_used = lines_used.max(lines.len() as i32);
    }
    let (left, _) = chart.backend_coord(&(0.0, y_bottom));
    let (right, _) = chart.backend_coord(&(axis.ticks as f64, y_bottom));
    let desc_y = bottom + LABEL_GAP + lines_used * LINE_HEIGHT + LABEL_GAP / 2;
    root.draw(&Text::new(
        "Time (UTC+8)".to_string(),
        ((left + right) / 2, desc_y),
        style::text(AXIS_DESC_SIZE).pos(top),
    ))
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Draws category names centred under x = k + 0.5 (k = 0, 1, …) and an axis description.
pub fn category_labels<DB: DrawingBackend, Y: Ranged>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    names: &[String],
    y_bottom: Y::ValueType,
    desc: &str,
) -> std::result::Result<(), String>
where
    Y::ValueType: Clone,
{
    let top = Pos::new(HPos::Center, VPos::Top);
    let mut py = 0;
    for (k, name) in names.iter().enumerate() {
        let (px, y) = chart.backend_coord(&(k as f64 + 0.5, y_bottom.clone()));
        py = y;
        root.draw(&Text::new(
            name.clone(),
            (px, y + LABEL_GAP),
            style::text(LABEL_SIZE).pos(top),
        ))
        .map_err(|e| e.to_string())?;
    }
    let (left, _) = chart.backend_coord(&(0.0, y_bottom.clone()));
    let (right, _) = chart.backend_coord(&(names.len() as f64, y_bottom));
    root.draw(&Text::new(
        desc.to_string(),
        ((left + right) / 2, py + LABEL_GAP + LINE_HEIGHT + LABEL_GAP),
        style::text(AXIS_DESC_SIZE).pos(top),
    ))
    .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(start: &str, ticks: usize, tick_minutes: i64) -> TimeAxis {
        TimeAxis {
            start: time::parse(start).expect("time"),
            tick_minutes,
            ticks,
        }
    }

    #[test]
    fn short_runs_label_every_hour() {
        let a = axis("2023-11-10 20:00", 6, 60);
        assert_eq!(
            a.label_positions(1100),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
    }

    #[test]
    fn long_runs_label_whole_days() {
        let a = axis("2023-10-24 20:00", 436, 60);
        let xs = a.label_positions(1100);
        assert!(xs.len() as i64 <= 1100 / DATE_LABEL_PX, "{xs:?}");
        assert_eq!(time::minute_of_day(a.at(xs[0])), 0);
        let first = a.at(xs[0]) - a.start;
        assert!(first > 0 && first <= 2 * MINUTES_PER_DAY, "{first}");
        assert!(date_label(a.at(xs[0])).starts_with("Oct 2"));
    }
}
