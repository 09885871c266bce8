//! Hand-built snapshots for the renderers' tests: a site is written as a
//! row of day states, the way it shows on the page.

use crate::domain::states::RunOutcome;
use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use super::{
    AccountStatus, DayCell, DayState, FailedDay, RunFigures, RunProgress, SiteStatus, Snapshot,
    DAYS_SHOWN,
};

/// The moment every fixture is seen from: 2026-11-29 15:00 UTC.
pub fn now() -> DateTime<Utc> {
    "2026-11-29T15:00:00Z".parse().unwrap()
}

pub const CATCH_UP_DAYS: u32 = 14;
pub const STALE_AFTER_SECONDS: u64 = 36 * 3600;

/// A site whose last [`DAYS_SHOWN`] days, oldest first, are `pattern`:
/// `d` done, `f` failed, `r` running, `m` missing, `n` not ended, `.` done.
/// The newest day is the site's today. Failed days fail with `error`.
pub fn site(code: &str, name: &str, timezone: Tz, pattern: &str, error: &str) -> SiteStatus {
    assert_eq!(pattern.chars().count(), DAYS_SHOWN, "pattern {pattern:?}");
    let today = now().with_timezone(&timezone).date_naive();
    let first = today - Days::new(DAYS_SHOWN as u64 - 1);
    let days: Vec<DayCell> = pattern
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let state = match c {
                'd' | '.' => DayState::Done,
                'f' => DayState::Failed,
                'r' => DayState::Running,
                's' => DayState::Stale,
                'm' => DayState::Missing,
                'n' => DayState::NotEnded,
                other => panic!("unknown day state {other:?}"),
            };
            DayCell {
                date: first + Days::new(i as u64),
                state,
                transactions: (state == DayState::Done).then_some(100 + i as i32),
                error: (state == DayState::Failed).then(|| error.to_owned()),
                rejected: 0,
            }
        })
        .collect();
    let last_done = days
        .iter()
        .rev()
        .find(|d| d.state == DayState::Done)
        .map(|d| d.date);
    let data_complete_until = last_done.map(|d| end_of(d, timezone));
    let stale = match data_complete_until {
        Some(t) => now() - t > TimeDelta::seconds(STALE_AFTER_SECONDS as i64),
        None => true,
    };
    let catch_up_from = today - Days::new(u64::from(CATCH_UP_DAYS));
    SiteStatus {
        code: code.to_owned(),
        name: name.to_owned(),
        timezone,
        last_done,
        data_complete_until,
        stale,
        missing: days
            .iter()
            .filter(|d| d.state == DayState::Missing && d.date >= catch_up_from)
            .map(|d| d.date)
            .collect(),
        failed: days
            .iter()
            .filter(|d| d.state == DayState::Failed)
            .map(|d| FailedDay {
                date: d.date,
                error: error.to_owned(),
                attempts: 3,
            })
            .collect(),
        stale_days: days
            .iter()
            .filter(|d| d.state == DayState::Stale)
            .map(|d| d.date)
            .collect(),
        rejected: 0,
        days,
    }
}

fn end_of(day: NaiveDate, timezone: Tz) -> DateTime<Utc> {
    day.succ_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(timezone)
        .unwrap()
        .with_timezone(&Utc)
}

/// A snapshot of `accounts` with a finished last run and none in progress.
pub fn snapshot(accounts: Vec<AccountStatus>) -> Snapshot {
    Snapshot {
        generated_at: now(),
        next_run: Some("2026-11-30T09:30:00Z".parse().unwrap()),
        schedule_timezone: chrono_tz::America::Chicago,
        catch_up_days: CATCH_UP_DAYS,
        stale_after_seconds: STALE_AFTER_SECONDS,
        last_run: Some(last_run()),
        recent_runs: vec![last_run()],
        current_run: None,
        accounts,
    }
}

/// The last run of [`snapshot`]: failed, 38 of 40 site-days done.
pub fn last_run() -> RunFigures {
    RunFigures {
        started_at: "2026-11-29T09:30:00Z".parse().unwrap(),
        finished_at: "2026-11-29T09:44:03Z".parse().unwrap(),
        outcome: RunOutcome::Failed,
        site_days: 40,
        done: 38,
        failed: 2,
        transactions: 12_345,
        inserted: 11_000,
        updated: 45,
        pages: 120,
        requests: 131,
        rate_limited: 3,
    }
}

/// A run `nights` before [`last_run`] at the same hour, with `outcome`.
pub fn earlier_run(nights: i64, outcome: RunOutcome, done: u64, site_days: u64) -> RunFigures {
    let last = last_run();
    RunFigures {
        started_at: last.started_at - TimeDelta::days(nights),
        finished_at: last.started_at - TimeDelta::days(nights) + TimeDelta::seconds(65),
        outcome,
        site_days,
        done,
        failed: if outcome == RunOutcome::Failed {
            site_days - done
        } else {
            0
        },
        requests: 12,
        ..last
    }
}

pub fn account(name: &str, sites: Vec<SiteStatus>) -> AccountStatus {
    AccountStatus {
        name: name.to_owned(),
        sites,
        people: Vec::new(),
        lookback: None,
        backfill: None,
    }
}

pub fn progress(site_days: u64, finished: u64) -> RunProgress {
    RunProgress {
        started_at: "2026-11-29T14:30:00Z".parse().unwrap(),
        site_days,
        finished,
        left_seconds: Some(720),
    }
}

/// Thirty done days ending with today not ended: a healthy site.
pub const HEALTHY: &str = ".............................n";
