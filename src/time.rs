//! Local festival time (UTC+8) as whole minutes since 1970-01-01 00:00 local.
//!
//! Scenario files write times as `"YYYY-MM-DD HH:MM"`; outputs write them the same way. Only whole
//! minutes exist in the model, so an `i64` of minutes is exact.

/// Minutes in an hour.
pub const MINUTES_PER_HOUR: i64 = 60;
/// Minutes in a day.
pub const MINUTES_PER_DAY: i64 = 1440;
/// Hours in a day (the intraday profile has this many weights).
pub const HOURS_PER_DAY: usize = 24;

/// A local time in minutes since 1970-01-01 00:00 (UTC+8).
pub type Minutes = i64;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a count of days since 1970-01-01 (inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if month <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        month,
        day,
    )
}

fn days_in_month(year: i64, month: i64) -> i64 {
    days_from_civil(year + i64::from(month == 12), month % 12 + 1, 1)
        - days_from_civil(year, month, 1)
}

/// Parses `"YYYY-MM-DD HH:MM"` (24-hour clock; `24:00` is not a time of day here).
pub fn parse(text: &str) -> Option<Minutes> {
    let (date, clock) = text.trim().split_once(' ')?;
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
        return None;
    }
    let (year, month, day): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let minute_of_day = parse_clock(clock.trim())?;
    if minute_of_day >= MINUTES_PER_DAY {
        return None;
    }
    Some(days_from_civil(year, month, day) * MINUTES_PER_DAY + minute_of_day)
}

/// Parses `"HH:MM"` into minutes after midnight; accepts `24:00` (= 1440) for interval ends.
pub fn parse_clock(text: &str) -> Option<i64> {
    let (h, m) = text.split_once(':')?;
    let digits = |x: &str| x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (hour, minute): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    let total = hour * MINUTES_PER_HOUR + minute;
    let valid = (hour < 24 && minute < 60) || (hour == 24 && minute == 0);
    valid.then_some(total)
}

/// Formats a time as `"YYYY-MM-DD HH:MM"`.
pub fn format(t: Minutes) -> String {
    let days = t.div_euclid(MINUTES_PER_DAY);
    let minute_of_day = t.rem_euclid(MINUTES_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm) = (
        minute_of_day / MINUTES_PER_HOUR,
        minute_of_day % MINUTES_PER_HOUR,
    );
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
}

/// Minutes after local midnight of a time.
pub fn minute_of_day(t: Minutes) -> i64 {
    t.rem_euclid(MINUTES_PER_DAY)
}

/// The local day (days since 1970-01-01) of a time.
pub fn day(t: Minutes) -> i64 {
    t.div_euclid(MINUTES_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_festival_dates() {
        for text in [
            "2023-10-24 20:00",
            "2023-11-12 00:00",
            "2024-02-29 23:59",
            "1999-12-31 00:01",
        ] {
            assert_eq!(format(parse(text).expect("valid")), text);
        }
    }

    #[test]
    fn hourly_ticks_of_the_2023_festival() {
        // 24 Oct 20:00 to 12 Nov 00:00 is 4 hours + 18 days = 436 hours (the figure).
        let span = parse("2023-11-12 00:00").unwrap() - parse("2023-10-24 20:00").unwrap();
        assert_eq!(span / MINUTES_PER_HOUR, 436);
    }

    #[test]
    fn rejects_malformed_times() {
        for text in [
            "2023-02-29 10:00",
            "2023-13-01 00:00",
            "2023-11-11 24:00",
            "2023-11-11",
            "11/11/2023 10:00",
            "2023-11-11 7:00",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn clock_accepts_24_00_as_an_end() {
        assert_eq!(parse_clock("24:00"), Some(MINUTES_PER_DAY));
        assert_eq!(parse_clock("24:01"), None);
        assert_eq!(parse_clock("19:30"), Some(1170));
        assert_eq!(parse_clock("-1:00"), None);
        assert_eq!(parse_clock("20:+1"), None);
    }
}
