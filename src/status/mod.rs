//! What an operator checks in the morning: per account and site, which of the
//! recent business days are exported, failed, missing or not ended yet, the
//! next scheduled run, the last run's figures and the last nights' runs. One [`Snapshot`] feeds the
//! status page of the service ([`page`]) and `sonnys-etl status` ([`text`]).

pub mod backfill;
pub(crate) mod format;
pub mod page;
pub mod text;

#[cfg(test)]
mod fixture;

use crate::domain::states::{DayStatus, PeopleFamily};
pub use crate::store::runs::RunFigures;
use crate::store::status::DayRow;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// Business days shown per site.
pub const DAYS_SHOWN: usize = 30;

/// Finished runs shown in the history (the last nights).
pub const RUNS_SHOWN: usize = 7;

/// The whole picture at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub generated_at: DateTime<Utc>,
    /// When the schedule fires next; `None` when no schedule applies.
    pub next_run: Option<DateTime<Utc>>,
    /// The zone the schedule is evaluated in, to show `next_run` locally.
    #[serde(serialize_with = "zone_name")]
    pub schedule_timezone: Tz,
    /// Days looked back for missing data (`schedule.catch_up_days`).
    pub catch_up_days: u32,
    /// Data older than this is stale (`status --stale-after`, 36 h by default).
    pub stale_after_seconds: u64,
    /// The latest finished run of the service (any replica, from
    /// `sonnys.runs`, or the service's memory when newer); `None` before the
    /// first run.
    pub last_run: Option<RunFigures>,
    /// Up to [`RUNS_SHOWN`] finished runs, newest first, from `sonnys.runs`.
    pub recent_runs: Vec<RunFigures>,
    /// The run going on now, if any.
    pub current_run: Option<RunProgress>,
    pub accounts: Vec<AccountStatus>,
}

impl Snapshot {
    /// Sites whose data is older than `stale_after_seconds`.
    pub fn stale_sites(&self) -> impl Iterator<Item = (&AccountStatus, &SiteStatus)> {
        self.accounts
            .iter()
            .flat_map(|a| a.sites.iter().map(move |s| (a, s)))
            .filter(|(_, s)| s.stale)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountStatus {
    pub name: String,
    pub sites: Vec<SiteStatus>,
    /// The labour and membership exports, when they ever ran.
    pub people: Vec<PeopleStatus>,
    /// How often the lookback's checks by summaries found a change over
    /// the last [`LOOKBACK_SHOWN_DAYS`] days; `None` without any check.
    pub lookback: Option<LookbackStatus>,
    /// The backfill (`[backfill] since`), when configured.
    pub backfill: Option<backfill::BackfillStatus>,
}

/// Days of lookback checks the status shows.
pub const LOOKBACK_SHOWN_DAYS: i64 = 30;

/// The lookback checks of an account over the last [`LOOKBACK_SHOWN_DAYS`].
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LookbackStatus {
    /// Done site-days compared with their summaries.
    pub checks: i64,
    /// Of which the summaries showed a change (exported again).
    pub changed: i64,
}

impl LookbackStatus {
    /// The line shown for it, e.g. "lookback: 42 checks of done site-days
    /// by their summaries in 30 days, 3 found a change (7.1 %) …".
    pub fn describe(&self) -> String {
        format!(
            "lookback: {} checks of done site-days by their summaries in {LOOKBACK_SHOWN_DAYS} days, {} found a change ({:.1} %) and exported the day again",
            self.checks,
            self.changed,
            if self.checks == 0 {
                0.0
            } else {
                100.0 * self.changed as f64 / self.checks as f64
            }
        )
    }
}

/// The account's lookback checks since `since`.
async fn lookback_status(
    pool: &sqlx::PgPool,
    account: &crate::domain::AccountName,
    since: DateTime<Utc>,
) -> sqlx::Result<Option<LookbackStatus>> {
    let history = crate::store::lookback::check_history(pool, Some(account), since).await?;
    let checks: i64 = history.iter().map(|h| h.checks).sum();
    let changed: i64 = history.iter().map(|h| h.changed).sum();
    Ok((checks > 0).then_some(LookbackStatus { checks, changed }))
}

/// The latest labour or membership export of an account.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PeopleStatus {
    /// `labour` or `members`.
    pub data: PeopleFamily,
    /// When the latest successful export finished.
    pub last_done_at: Option<DateTime<Utc>>,
    /// The latest record stored: a clock-in, or a status change.
    pub latest_record_at: Option<DateTime<Utc>>,
    /// The error of the latest export, if it failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteStatus {
    pub code: String,
    pub name: String,
    #[serde(serialize_with = "zone_name")]
    pub timezone: Tz,
    /// Latest business day exported completely.
    pub last_done: Option<NaiveDate>,
    /// When that day ended in the site's zone: the data is complete up to here.
    pub data_complete_until: Option<DateTime<Utc>>,
    /// No complete day, or `data_complete_until` older than the stale limit.
    pub stale: bool,
    /// Ended days within the catch-up range that are not done, oldest first.
    pub missing: Vec<NaiveDate>,
    /// Days whose latest export failed, oldest first, with the error.
    pub failed: Vec<FailedDay>,
    /// Days left `running` by a process that is gone, oldest first.
    pub stale_days: Vec<NaiveDate>,
    /// Records quarantined by the exports of the days shown.
    pub rejected: i64,
    /// The last [`DAYS_SHOWN`] business days, oldest first, ending today in
    /// the site's zone.
    pub days: Vec<DayCell>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedDay {
    pub date: NaiveDate,
    pub error: String,
    pub attempts: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayCell {
    pub date: NaiveDate,
    pub state: DayState,
    /// Transactions stored for the day (as of its latest export).
    pub transactions: Option<i32>,
    /// The error of a failed (or interrupted) day.
    pub error: Option<String>,
    /// Records of the day quarantined in `sonnys.rejected_records`.
    pub rejected: i32,
}

/// The state of one business day of one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayState {
    /// Exported completely.
    Done,
    /// The latest export failed.
    Failed,
    /// Being exported now.
    Running,
    /// Left `running` by a process that is gone (no heartbeat for 2
    /// minutes); the next run redoes it.
    Stale,
    /// Ended, never exported.
    Missing,
    /// Not ended yet in the site's zone.
    NotEnded,
}

impl DayState {
    pub fn as_str(self) -> &'static str {
        match self {
            DayState::Done => "done",
            DayState::Failed => "failed",
            DayState::Running => "running",
            DayState::Stale => "stale",
            DayState::Missing => "missing",
            DayState::NotEnded => "not ended",
        }
    }
}

/// A run in progress.
#[derive(Debug, Clone, Serialize)]
pub struct RunProgress {
    pub started_at: DateTime<Utc>,
    pub site_days: u64,
    pub finished: u64,
    /// Time left by the run's forecast, in seconds (none before it is made).
    pub left_seconds: Option<u64>,
}

/// The labour and membership exports of an account.
async fn people_status(pool: &sqlx::PgPool, account: &str) -> sqlx::Result<Vec<PeopleStatus>> {
    Ok(crate::store::status::people_exports(pool, account)
        .await?
        .into_iter()
        .map(|r| PeopleStatus {
            data: r.family,
            last_done_at: r.last_done_at,
            latest_record_at: r.latest_record_at,
            last_error: r.last_error,
        })
        .collect())
}

fn cells_rejected(cells: &[DayCell]) -> i64 {
    cells.iter().map(|c| i64::from(c.rejected)).sum()
}

fn zone_name<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// What the snapshot is taken for, beyond the database.
#[derive(Debug, Clone)]
pub struct SnapshotContext {
    pub now: DateTime<Utc>,
    pub stale_after: std::time::Duration,
    pub next_run: Option<DateTime<Utc>>,
    /// The service's own latest run, from memory: shown when the table has
    /// none as new (its row could not be written). `None` outside the service.
    pub last_run: Option<RunFigures>,
    pub current_run: Option<RunProgress>,
}

impl Snapshot {
    /// Read the picture of the configured accounts and sites from the database.
    pub async fn load(
        pool: &sqlx::PgPool,
        settings: &crate::configuration::Settings,
        context: SnapshotContext,
    ) -> sqlx::Result<Snapshot> {
        use std::collections::HashMap;

        let now = context.now;
        let catch_up_days = settings.schedule.catch_up_days;
        let sites = crate::store::known_sites(pool).await?;
        let shown = DAYS_SHOWN.max(catch_up_days as usize) as u64 + 2;
        let since = now.date_naive() - chrono::Days::new(shown);
        let rows = crate::store::status::recorded_days(pool, since).await?;
        let last_done = crate::store::status::last_done_days(pool).await?;
        let last_done: HashMap<(&str, &str), NaiveDate> = last_done
            .iter()
            .map(|(a, s, d)| ((a.as_str(), s.as_str()), *d))
            .collect();
        let mut days: HashMap<(&str, &str), HashMap<NaiveDate, &DayRow>> = HashMap::new();
        for row in &rows {
            days.entry((row.account.as_str(), row.site_code.as_str()))
                .or_default()
                .insert(row.business_date, row);
        }

        let mut backfills = backfill::load(pool, settings, now).await?;
        let mut accounts = Vec::new();
        for account in &settings.accounts {
            let mut site_statuses = Vec::new();
            for site in sites.iter().filter(|s| s.exported_by(account)) {
                let timezone = site.timezone();
                let key = (site.account.as_str(), site.code.as_str());
                let empty = HashMap::new();
                let recorded = days.get(&key).unwrap_or(&empty);
                let last_done = last_done.get(&key).copied();
                let data_complete_until =
                    last_done.map(|d| crate::domain::BusinessDay::new(d, timezone).end_exclusive());
                let stale = data_complete_until.map_or(true, |t| {
                    (now - t).to_std().unwrap_or_default() > context.stale_after
                });
                let today = crate::domain::BusinessDay::of(now, timezone).date;
                let cells: Vec<DayCell> = (0..DAYS_SHOWN as u64)
                    .rev()
                    .map(|back| today - chrono::Days::new(back))
                    .map(|date| {
                        let row = recorded.get(&date);
                        let state = match row.map(|r| r.status) {
                            Some(DayStatus::Done) => DayState::Done,
                            Some(DayStatus::Failed) => DayState::Failed,
                            Some(DayStatus::Running) if row.is_some_and(|r| r.stale) => {
                                DayState::Stale
                            }
                            Some(DayStatus::Running) => DayState::Running,
                            _ if !crate::domain::BusinessDay::new(date, timezone)
                                .is_complete(now) =>
                            {
                                DayState::NotEnded
                            }
                            _ => DayState::Missing,
                        };
                        DayCell {
                            date,
                            state,
                            transactions: row.map(|r| r.transactions),
                            error: row
                                .filter(|r| !r.is(DayStatus::Done))
                                .and_then(|r| r.last_error.clone()),
                            rejected: row.map_or(0, |r| r.rejected),
                        }
                    })
                    .collect();
                let (first, last_ended) =
                    crate::domain::days::last_ended_days(timezone, now, catch_up_days);
                let missing = crate::domain::days::dates(first, last_ended)
                    .filter(|d| recorded.get(d).map_or(true, |r| !r.is(DayStatus::Done)))
                    .collect();
                let mut failed: Vec<FailedDay> = recorded
                    .values()
                    .filter(|r| r.is(DayStatus::Failed))
                    .map(|r| FailedDay {
                        date: r.business_date,
                        error: r.last_error.clone().unwrap_or_default(),
                        attempts: r.attempts,
                    })
                    .collect();
                failed.sort_by_key(|f| f.date);
                let mut stale_days: Vec<NaiveDate> = recorded
                    .values()
                    .filter(|r| r.is(DayStatus::Running) && r.stale)
                    .map(|r| r.business_date)
                    .collect();
                stale_days.sort();
                let rejected = cells_rejected(&cells);
                site_statuses.push(SiteStatus {
                    code: site.code.clone(),
                    name: site.name.clone().unwrap_or_default(),
                    timezone,
                    last_done,
                    data_complete_until,
                    stale,
                    missing,
                    failed,
                    stale_days,
                    rejected,
                    days: cells,
                });
            }
            accounts.push(AccountStatus {
                name: account.name.to_string(),
                sites: site_statuses,
                people: people_status(pool, account.name.as_str()).await?,
                lookback: lookback_status(
                    pool,
                    &account.name,
                    now - chrono::Duration::days(LOOKBACK_SHOWN_DAYS),
                )
                .await?,
                backfill: backfills.remove(account.name.as_str()),
            });
        }
        let recent_runs = crate::store::runs::recent_runs(pool, RUNS_SHOWN as i64).await?;
        let last_run = match (context.last_run, recent_runs.first()) {
            (Some(remembered), Some(stored)) if stored.finished_at > remembered.finished_at => {
                Some(stored.clone())
            }
            (Some(remembered), _) => Some(remembered),
            (None, stored) => stored.cloned(),
        };
        Ok(Snapshot {
            generated_at: now,
            next_run: context.next_run,
            schedule_timezone: settings.schedule.schedule.timezone(),
            catch_up_days,
            stale_after_seconds: context.stale_after.as_secs(),
            last_run,
            recent_runs,
            current_run: context.current_run,
            accounts,
        })
    }

    /// Whether any configured site has a day to export in the catch-up
    /// range, or an account has no known sites yet (its first run).
    pub fn any_day_due(&self) -> bool {
        self.accounts
            .iter()
            .any(|a| a.sites.is_empty() || a.sites.iter().any(|s| !s.missing.is_empty()))
    }
}

#[cfg(test)]
mod lookback_tests {
    use super::LookbackStatus;

    #[test]
    fn the_lookback_line_says_how_often_a_check_found_a_change() {
        let line = LookbackStatus {
            checks: 42,
            changed: 3,
        }
        .describe();
        assert!(
            line.contains("42 checks") && line.contains("3 found a change (7.1 %)"),
            "{line}"
        );
    }
}
