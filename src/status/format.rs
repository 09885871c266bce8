//! How times, durations, counts and runs of days read, the same on the
//! status page and in `sonnys-etl status`.

use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

/// A moment as the people of `zone` read it, e.g. `2026-12-01 03:30 CST`.
pub fn local(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// A limit given in seconds in the largest whole unit, e.g. `36h`, `90m`.
///
/// Hours stay hours past a day: "stale after 36h" reads better than "1day 12h".
pub fn limit(seconds: u64) -> String {
    match seconds {
        0 => "0s".to_owned(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A time left, rounded as a person would say it: `40s`, `12m`, `2h 5m`.
pub fn about(seconds: u64) -> String {
    let rounded = match seconds {
        s if s < 90 => s,
        s if s < 3600 => (s + 30) / 60 * 60,
        s => (s + 150) / 300 * 300,
    };
    humantime::format_duration(std::time::Duration::from_secs(rounded)).to_string()
}

/// How long something took, to the second, e.g. `14m 3s`.
pub fn elapsed(delta: TimeDelta) -> String {
    let seconds = delta.num_seconds().max(0).unsigned_abs();
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

/// A count with thousands separated, e.g. `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Consecutive calendar days joined into ranges, in date order.
pub fn day_ranges(days: &[NaiveDate]) -> Vec<RangeInclusive<NaiveDate>> {
    let mut days = days.to_vec();
    days.sort_unstable();
    days.dedup();
    let mut ranges: Vec<RangeInclusive<NaiveDate>> = Vec::new();
    for day in days {
        match ranges.last_mut() {
            Some(last) if last.end().succ_opt() == Some(day) => {
                *last = *last.start()..=day;
            }
            _ => ranges.push(day..=day),
        }
    }
    ranges
}

/// Days as compressed ranges, e.g. `2026-11-20..2026-11-22, 2026-11-25`.
pub fn day_ranges_text(days: &[NaiveDate]) -> String {
    day_ranges(days)
        .iter()
        .map(|r| {
            if r.start() == r.end() {
                r.start().to_string()
            } else {
                format!("{}..{}", r.start(), r.end())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n` followed by the noun, plural unless `n` is one: `1 day`, `3 days`.
pub fn plural(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("{n} {singular}")
    } else {
        format!("{n} {plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn time_left_is_rounded_as_a_person_would_say_it() {
        assert_eq!(about(40), "40s");
        assert_eq!(about(719), "12m");
        assert_eq!(about(2 * 3600 + 4 * 60), "2h 5m");
    }

    #[test]
    fn consecutive_days_join_into_one_range_and_gaps_start_another() {
        let days = [
            day("2026-11-25"),
            day("2026-11-20"),
            day("2026-11-21"),
            day("2026-11-22"),
            day("2026-11-28"),
            day("2026-11-29"),
        ];
        assert_eq!(
            day_ranges_text(&days),
            "2026-11-20..2026-11-22, 2026-11-25, 2026-11-28..2026-11-29"
        );
        assert_eq!(day_ranges_text(&[]), "");
    }

    #[test]
    fn ranges_run_across_month_ends() {
        let days = [day("2026-11-30"), day("2026-12-01")];
        assert_eq!(day_ranges_text(&days), "2026-11-30..2026-12-01");
    }

    #[test]
    fn limits_read_in_the_largest_whole_unit_with_hours_past_a_day() {
        assert_eq!(limit(36 * 3600), "36h");
        assert_eq!(limit(48 * 3600), "48h");
        assert_eq!(limit(90 * 60), "90m");
        assert_eq!(limit(45), "45s");
    }

    #[test]
    fn counts_separate_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(12_345_678), "12,345,678");
    }

    #[test]
    fn local_times_name_the_zone_abbreviation() {
        let at: DateTime<Utc> = "2026-12-01T09:30:00Z".parse().unwrap();
        assert_eq!(
            local(at, chrono_tz::America::Chicago),
            "2026-12-01 03:30 CST"
        );
    }
}
