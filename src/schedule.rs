//! When the service runs: a 6-field cron expression (seconds first) evaluated
//! in an IANA zone.
//!
//! Each next fire time is computed here from the expression and the zone, at
//! the moment it is needed, and handed to tokio-cron-scheduler as a one-shot
//! job; after it fires, the next one is computed afresh. A repeating job of
//! tokio-cron-scheduler 0.15 would keep the UTC offset of the moment it was
//! created (its issues #87 and #107: an hour off after a DST change until a
//! restart), so it is not used.
//!
//! Daylight-saving rules (those of the `croner` crate, which follows the Open
//! Cron Pattern Specification and Vixie cron):
//! - a time that does not exist on the spring-forward day (02:30 in the US)
//!   fires at the first instant after the gap (03:00 local), once;
//! - a time that exists twice on the fall-back day (01:30 in the US) fires
//!   once, at its first occurrence.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// A cron expression in a time zone.
#[derive(Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    timezone: Tz,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} in {}", self.expression, self.timezone)
    }
}

impl Schedule {
    /// Parse a 6-field expression (`sec min hour day month weekday`).
    pub fn parse(expression: &str, timezone: Tz) -> Result<Self, String> {
        let expression = expression.trim();
        let fields = expression.split_whitespace().count();
        if fields != 6 {
            return Err(format!(
                "`{expression}` has {fields} fields; write 6, seconds first (for example \"0 30 3 * * *\" for 03:30 every day)"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(expression)
            .map_err(|e| format!("`{expression}` is not a cron expression: {e}"))?;
        let schedule = Self {
            expression: expression.to_owned(),
            cron,
            timezone,
        };
        // An expression that never matches (Feb 30) would stall the service.
        let now = Utc::now();
        if schedule.next_after(now).is_none() {
            return Err(format!("`{expression}` never fires"));
        }
        Ok(schedule)
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first fire time strictly after `moment`.
    pub fn next_after(&self, moment: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = moment.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// A fire time as the operator reads it: local, with the zone's abbreviation.
    pub fn local(&self, moment: DateTime<Utc>) -> String {
        moment
            .with_timezone(&self.timezone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
    use chrono_tz::America::Chicago;

    fn chicago(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Chicago
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Every fire time of the schedule from `from` for `days` days, local.
    fn fires(s: &Schedule, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        let mut at = from;
        (0..n)
            .map(|_| {
                at = s.next_after(at).unwrap();
                at.with_timezone(&s.timezone())
            })
            .collect()
    }

    #[test]
    fn a_0330_schedule_fires_at_0330_local_on_the_days_around_both_dst_changes_of_2026() {
        let s = Schedule::parse("0 30 3 * * *", Chicago).unwrap();
        // From before spring forward (8 March 2026) to after fall back (1 November 2026).
        let all = fires(&s, chicago(2026, 3, 5, 12, 0), 250);
        for t in &all {
            assert_eq!((t.hour(), t.minute(), t.second()), (3, 30, 0), "{t}");
        }
        let dates: Vec<NaiveDate> = all.iter().map(|t| t.date_naive()).collect();
        for (y, m, d) in [(2026, 3, 8), (2026, 3, 9), (2026, 11, 1), (2026, 11, 2)] {
            assert!(dates.contains(&NaiveDate::from_ymd_opt(y, m, d).unwrap()));
        }
        // The UTC offset follows the season: CST (UTC−6) before, CDT (UTC−5) after.
        let utc_hour = |y, m, d| {
            all.iter()
                .find(|t| t.date_naive() == NaiveDate::from_ymd_opt(y, m, d).unwrap())
                .unwrap()
                .with_timezone(&Utc)
                .hour()
        };
        assert_eq!(utc_hour(2026, 3, 7), 9);
        assert_eq!(utc_hour(2026, 3, 9), 8);
        assert_eq!(utc_hour(2026, 11, 2), 9);
        // One fire a day, no day skipped or doubled.
        for pair in dates.windows(2) {
            assert_eq!((pair[1] - pair[0]).num_days(), 1, "{pair:?}");
        }
    }

    #[test]
    fn a_time_that_does_not_exist_on_the_spring_forward_day_fires_once_right_after_the_gap() {
        let s = Schedule::parse("0 30 2 * * *", Chicago).unwrap();
        let all = fires(&s, chicago(2026, 3, 7, 12, 0), 3);
        let local: Vec<(u32, u32, u32)> = all
            .iter()
            .map(|t| (t.day(), t.hour(), t.minute()))
            .collect();
        // 02:30 on 8 March does not exist (02:00 jumps to 03:00): 03:00 instead.
        assert_eq!(local, vec![(8, 3, 0), (9, 2, 30), (10, 2, 30)]);
    }

    #[test]
    fn a_time_that_exists_twice_on_the_fall_back_day_fires_once() {
        let s = Schedule::parse("0 30 1 * * *", Chicago).unwrap();
        let all = fires(&s, chicago(2026, 10, 31, 12, 0), 3);
        let days: Vec<u32> = all.iter().map(|t| t.day()).collect();
        assert_eq!(days, vec![1, 2, 3]);
        // The first 01:30 of 1 November is still CDT: 06:30 UTC.
        assert_eq!(all[0].with_timezone(&Utc).hour(), 6);
    }

    #[test]
    fn a_five_field_or_broken_expression_is_refused_with_the_reason() {
        let five = Schedule::parse("30 3 * * *", Chicago).unwrap_err();
        assert!(
            five.contains("5 fields") && five.contains("seconds first"),
            "{five}"
        );
        let bad = Schedule::parse("0 61 3 * * *", Chicago).unwrap_err();
        assert!(bad.contains("not a cron expression"), "{bad}");
    }

    #[test]
    fn the_next_fire_is_shown_in_the_schedules_zone() {
        let s = Schedule::parse("0 30 3 * * *", Chicago).unwrap();
        let next = s.next_after(chicago(2026, 12, 1, 12, 0)).unwrap();
        assert_eq!(s.local(next), "2026-12-02 03:30 CST");
    }
}
