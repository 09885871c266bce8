//! Business-day selection: which days of a site a run exports, the last
//! ended day in a zone, the API's 183-day reach, date ranges and the
//! periods the people lists accept. One home for every "which days" rule.

use std::collections::HashSet;

use chrono::{DateTime, Days, Months, NaiveDate, Utc};
use chrono_tz::Tz;

use super::BusinessDay;

/// How a run looks at its lookback days again (`schedule.lookback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lookback {
    /// Compare each done day's summaries with what is stored; export it
    /// again only when they differ (1 request per 100 transactions).
    #[default]
    Summaries,
    /// Export every lookback day again whole (2 requests per 100).
    Full,
}

/// What an export does with a day that is already `done` when it claims it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redo {
    /// Leave it: the day was chosen because it was missing.
    No,
    /// Export it again whole (a range, a full lookback).
    Whole,
    /// Compare it with its summaries first, and export it again only when
    /// they show a change (the nightly lookback).
    Check,
}

/// What an export does with a day another live process has claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnClaimed {
    /// Leave it (the service: the other replica exports it).
    Skip,
    /// Wait until the other process is done with it (`sync`): report it done
    /// when the other finished it, export it when the other failed or died.
    Wait,
}

/// Which business days of each site a sync exports. Only days that have
/// ended in the site's zone are ever exported: a part-day marked `done`
/// would never be completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaySelection {
    /// The days of an inclusive range (in each site's local calendar); with
    /// `missing_only`, those not `done` yet.
    Range {
        from: NaiveDate,
        to: NaiveDate,
        missing_only: bool,
    },
    /// The service's run: of the last `catch_up_days` ended days, those not
    /// `done`, plus the last `lookback_days` again (late voids and edits).
    Recent {
        catch_up_days: u32,
        lookback_days: u32,
    },
    /// The service's backfill (`[backfill] since`): the ended days from
    /// `since` up to the day before the nightly range (the last
    /// `catch_up_days` ended days) that are not `done`, oldest first (they
    /// leave the API's reach soonest).
    Backfill {
        since: NaiveDate,
        catch_up_days: u32,
    },
}

/// The days one site exports under a selection, in the order it exports
/// them: a range and a backfill oldest first, the service's run newest
/// first (yesterday's report before older missing days).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SiteDays {
    pub days: Vec<BusinessDay>,
    /// Days of a range that have not ended yet in the site's zone.
    pub not_ended: usize,
}

impl DaySelection {
    /// What an export under this selection does with a day another live
    /// process is exporting: the service leaves it to the other (replicas
    /// share a night's work); a `sync` of a range waits for it, so that it
    /// can report every day of the range.
    pub fn on_claimed(&self) -> OnClaimed {
        match self {
            DaySelection::Recent { .. } | DaySelection::Backfill { .. } => OnClaimed::Skip,
            DaySelection::Range { .. } => OnClaimed::Wait,
        }
    }

    /// What the export does with a day this selection chose when the day
    /// is `done` by the time its export starts. A range exports it again
    /// whole; the service's lookback days are checked by their summaries
    /// (or exported whole with `lookback = "full"`, or on a `full` night);
    /// a day chosen because it was missing, and that another process
    /// finished meanwhile, is left alone.
    pub fn redo(
        &self,
        timezone: Tz,
        now: DateTime<Utc>,
        date: NaiveDate,
        lookback: Lookback,
        full: bool,
    ) -> Redo {
        match *self {
            DaySelection::Range { missing_only, .. } => {
                if missing_only {
                    Redo::No
                } else {
                    Redo::Whole
                }
            }
            DaySelection::Backfill { .. } => Redo::No,
            DaySelection::Recent { lookback_days, .. } => {
                if date <= last_ended_day(timezone, now) - Days::new(u64::from(lookback_days)) {
                    Redo::No
                } else if lookback == Lookback::Summaries && !full {
                    Redo::Check
                } else {
                    Redo::Whole
                }
            }
        }
    }

    /// The dates whose `done` state the selection depends on, if any.
    pub fn needs_done_from(&self, now: DateTime<Utc>) -> Option<NaiveDate> {
        match *self {
            DaySelection::Range {
                from,
                missing_only: true,
                ..
            } => Some(from),
            DaySelection::Range { .. } => None,
            DaySelection::Backfill { since, .. } => Some(since),
            // A day behind UTC at most; a day's margin covers every zone.
            DaySelection::Recent { catch_up_days, .. } => {
                Some(now.date_naive() - Days::new(u64::from(catch_up_days) + 1))
            }
        }
    }

    /// The site's days to export at `now`, given the dates already `done`.
    pub fn site_days(
        &self,
        timezone: Tz,
        now: DateTime<Utc>,
        done: &HashSet<NaiveDate>,
    ) -> SiteDays {
        let mut selected = SiteDays::default();
        match *self {
            DaySelection::Range {
                from,
                to,
                missing_only,
            } => {
                for date in dates(from, to) {
                    let day = BusinessDay::new(date, timezone);
                    if !day.is_complete(now) {
                        selected.not_ended += 1;
                    } else if !(missing_only && done.contains(&date)) {
                        selected.days.push(day);
                    }
                }
            }
            DaySelection::Recent {
                catch_up_days,
                lookback_days,
            } => {
                let (first, last) = last_ended_days(timezone, now, catch_up_days);
                let lookback_from = last - Days::new(u64::from(lookback_days));
                // Newest first: after an outage, yesterday's report comes
                // first, then the older missing days.
                let newest_first: Vec<NaiveDate> = dates(first, last).collect();
                selected.days = newest_first
                    .into_iter()
                    .rev()
                    .filter(|d| !done.contains(d) || *d > lookback_from)
                    .map(|d| BusinessDay::new(d, timezone))
                    .collect();
            }
            DaySelection::Backfill {
                since,
                catch_up_days,
            } => {
                selected.days = backfill_dates(timezone, now, since, catch_up_days)
                    .filter(|d| !done.contains(d))
                    .map(|d| BusinessDay::new(d, timezone))
                    .collect();
            }
        }
        selected
    }
}

/// How far back the API serves: `startDate` at most 183 days before its now.
pub const API_MAX_AGE_DAYS: i64 = 183;

/// The oldest business day whose export the API accepts at `now` in every
/// time zone: its local midnight must lie within the API's 183 days, less an
/// hour for clock differences, even in the zone furthest ahead (UTC+14).
pub fn earliest_servable_date(now: DateTime<Utc>) -> NaiveDate {
    let limit = now - chrono::Duration::days(API_MAX_AGE_DAYS)
        + chrono::Duration::hours(1)
        + chrono::Duration::hours(14);
    let date = limit.date_naive();
    if date
        .and_hms_opt(0, 0, 0)
        .is_some_and(|m| m.and_utc() >= limit)
    {
        date
    } else {
        date + Days::new(1)
    }
}

/// Every date a backfill from `since` covers in the zone at `now`, oldest
/// first: up to the day before the nightly range (the last `catch_up_days`
/// ended days), never before the API's reach.
pub fn backfill_dates(
    timezone: Tz,
    now: DateTime<Utc>,
    since: NaiveDate,
    catch_up_days: u32,
) -> impl Iterator<Item = NaiveDate> {
    let (nightly_first, _) = last_ended_days(timezone, now, catch_up_days);
    let from = since.max(earliest_servable_date(now));
    dates(from, nightly_first - Days::new(1))
}

/// The latest business day that has ended at `now` in the zone.
pub fn last_ended_day(timezone: Tz, now: DateTime<Utc>) -> NaiveDate {
    let today = BusinessDay::of(now, timezone).date;
    let yesterday = today - Days::new(1);
    if BusinessDay::new(yesterday, timezone).is_complete(now) {
        yesterday
    } else {
        yesterday - Days::new(1)
    }
}

/// The dates from `from` to `to`, inclusive.
pub fn dates(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    std::iter::successors(Some(from), |d| d.checked_add_days(Days::new(1)))
        .take_while(move |d| *d <= to)
}

/// The last `n` ended days in the zone at `now` (at least one), as an
/// inclusive `(first, last)`: the service's catch-up range, the labour
/// export's recent days and the status page's days all mean this.
pub fn last_ended_days(timezone: Tz, now: DateTime<Utc>, n: u32) -> (NaiveDate, NaiveDate) {
    let last = last_ended_day(timezone, now);
    (last - Days::new(u64::from(n.max(1)) - 1), last)
}

/// Consecutive spans of at most `days` days covering `first..=last`.
pub fn day_chunks(first: NaiveDate, last: NaiveDate, days: u32) -> Vec<(NaiveDate, NaiveDate)> {
    let mut chunks = Vec::new();
    let mut from = first;
    while from <= last {
        let to = (from + Days::new(u64::from(days) - 1)).min(last);
        chunks.push((from, to));
        from = to + Days::new(1);
    }
    chunks
}

/// Whole 6-month sign-up periods from `since` that end before `until`,
/// then the rest up to `until` (the longest period the account list accepts).
pub fn sign_up_periods(
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut periods = Vec::new();
    let mut from = since;
    while from < until {
        let to = from
            .checked_add_months(Months::new(6))
            .unwrap_or(until)
            .min(until);
        periods.push((from, to));
        from = to;
    }
    periods
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::America::{Chicago, Los_Angeles};
    use chrono_tz::Tz;

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn picked(
        selection: DaySelection,
        tz: Tz,
        now: DateTime<Utc>,
        done: &[NaiveDate],
    ) -> Vec<NaiveDate> {
        let done: HashSet<NaiveDate> = done.iter().copied().collect();
        selection
            .site_days(tz, now, &done)
            .days
            .iter()
            .map(|d| d.date)
            .collect()
    }

    #[test]
    fn a_run_exports_the_missing_days_of_the_catch_up_range_newest_first_and_the_lookback_days_again(
    ) {
        // 29 November 2026, 09:00 UTC: 03:00 in Chicago, so 28 November has ended there.
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
        let recent = DaySelection::Recent {
            catch_up_days: 7,
            lookback_days: 2,
        };
        let done: Vec<NaiveDate> = (22..=28)
            .filter(|d| *d != 24)
            .map(|d| date(11, d))
            .collect();
        assert_eq!(
            picked(recent, Chicago, now, &done),
            vec![date(11, 28), date(11, 27), date(11, 24)]
        );
        // Nothing done yet (after an outage): yesterday first, then older.
        assert_eq!(
            picked(recent, Chicago, now, &[]),
            (22..=28).rev().map(|d| date(11, d)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_backfill_takes_the_missing_days_before_the_nightly_range_oldest_first() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
        let backfill = || DaySelection::Backfill {
            since: date(11, 10),
            catch_up_days: 7,
        };
        // The nightly range is 22–28 November: the backfill stops at the 21st.
        let done = [date(11, 11), date(11, 15)];
        let all = picked(backfill(), Chicago, now, &done);
        assert_eq!(all.first(), Some(&date(11, 10)));
        assert_eq!(all.last(), Some(&date(11, 21)));
        assert_eq!(all.len(), 12 - 2);
        assert!(!all.contains(&date(11, 11)) && !all.contains(&date(11, 15)));
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
        // Never before the API's reach.
        let far = DaySelection::Backfill {
            since: date(1, 1),
            catch_up_days: 7,
        };
        assert_eq!(
            picked(far, Chicago, now, &[]).first(),
            Some(&earliest_servable_date(now))
        );
        assert_eq!(
            backfill().redo(Chicago, now, date(11, 12), Lookback::Summaries, false),
            Redo::No
        );
        assert_eq!(backfill().on_claimed(), OnClaimed::Skip);
    }

    #[test]
    fn a_day_that_has_not_ended_in_the_sites_zone_is_never_selected() {
        // 07:30 UTC is 23:30 on 28 November in Los Angeles: the 28th is still open there.
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 7, 30, 0).unwrap();
        let recent = DaySelection::Recent {
            catch_up_days: 3,
            lookback_days: 0,
        };
        assert_eq!(
            picked(recent, Los_Angeles, now, &[]),
            vec![date(11, 27), date(11, 26), date(11, 25)]
        );
        assert_eq!(last_ended_day(Chicago, now), date(11, 28));
    }

    #[test]
    fn the_oldest_date_allowed_is_within_the_apis_183_days_in_every_zone() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
        let earliest = earliest_servable_date(now);
        assert_eq!(earliest, date(5, 31));
        // Its local midnight at UTC+14 still lies within 183 days, with an hour to spare…
        let start = earliest.and_hms_opt(0, 0, 0).unwrap().and_utc() - chrono::Duration::hours(14);
        assert!(start >= now - chrono::Duration::days(183) + chrono::Duration::hours(1));
        // …and the day before would not.
        let before = start - chrono::Duration::days(1);
        assert!(before < now - chrono::Duration::days(183));
    }

    #[test]
    fn lookback_days_are_checked_by_their_summaries_unless_the_night_is_a_full_one() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
        let recent = DaySelection::Recent {
            catch_up_days: 7,
            lookback_days: 2,
        };
        let redo = |d, lookback, full| recent.redo(Chicago, now, date(11, d), lookback, full);
        assert_eq!(redo(28, Lookback::Summaries, false), Redo::Check);
        assert_eq!(redo(27, Lookback::Summaries, false), Redo::Check);
        assert_eq!(
            redo(26, Lookback::Summaries, false),
            Redo::No,
            "past the lookback"
        );
        assert_eq!(redo(28, Lookback::Summaries, true), Redo::Whole);
        assert_eq!(redo(28, Lookback::Full, false), Redo::Whole);
        let range = |missing_only| DaySelection::Range {
            from: date(11, 20),
            to: date(11, 28),
            missing_only,
        };
        assert_eq!(
            range(false).redo(Chicago, now, date(11, 21), Lookback::Summaries, false),
            Redo::Whole,
            "sync --from/--to exports its range whole"
        );
        assert_eq!(
            range(true).redo(Chicago, now, date(11, 21), Lookback::Summaries, false),
            Redo::No
        );
    }

    #[test]
    fn sync_missing_skips_the_days_already_done() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
        let range = |missing_only| DaySelection::Range {
            from: date(11, 20),
            to: date(11, 29),
            missing_only,
        };
        let done = [date(11, 21), date(11, 23)];
        let all = range(false).site_days(Chicago, now, &done.iter().copied().collect());
        assert_eq!(all.days.len(), 9);
        assert_eq!(all.not_ended, 1);
        let missing = picked(range(true), Chicago, now, &done);
        assert_eq!(missing.len(), 7);
        assert!(!missing.contains(&date(11, 21)) && !missing.contains(&date(11, 23)));
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_span_of_days_is_read_in_requests_of_at_most_twelve_days() {
        assert_eq!(
            day_chunks(day("2026-11-01"), day("2026-11-14"), 12),
            vec![
                (day("2026-11-01"), day("2026-11-12")),
                (day("2026-11-13"), day("2026-11-14"))
            ]
        );
        assert_eq!(
            day_chunks(day("2026-11-27"), day("2026-11-28"), 12),
            vec![(day("2026-11-27"), day("2026-11-28"))]
        );
    }

    #[test]
    fn sign_ups_are_read_in_periods_the_account_list_accepts() {
        let since: DateTime<Utc> = "2024-01-31T00:00:00Z".parse().unwrap();
        let until: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
        let periods = sign_up_periods(since, until);
        assert_eq!(periods.len(), 3);
        assert_eq!(
            periods[0].1,
            "2024-07-31T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(periods[2].1, until);
        // Each period starts where the last ended and spans 6 months at most.
        for pair in periods.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
        for (from, to) in periods {
            assert!(to <= from.checked_add_months(Months::new(6)).unwrap());
        }
    }
}
