//! What an operator checks in the morning: per account and site, which of the
//! recent business days are exported, failed, missing or not ended yet, the
//! next scheduled run and the last run's figures. One [`Snapshot`] feeds the
//! status page of the service ([`page`]) and `sonnys-etl status` ([`text`]).

mod format;
pub mod page;
pub mod text;

#[cfg(test)]
mod fixture;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// Business days shown per site.
pub const DAYS_SHOWN: usize = 30;

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
    /// The service's latest finished run; `None` outside the service or
    /// before its first run.
    pub last_run: Option<RunFigures>,
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
            DayState::Missing => "missing",
            DayState::NotEnded => "not ended",
        }
    }
}

/// The figures of one finished run of the service.
#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `ok`, `failed` (some site-days failed) or `interrupted`.
    pub outcome: String,
    pub site_days: u64,
    pub done: u64,
    pub failed: u64,
    pub transactions: u64,
    pub inserted: u64,
    pub updated: u64,
    pub pages: u64,
    pub requests: u64,
    pub rate_limited: u64,
}

/// A run in progress.
#[derive(Debug, Clone, Serialize)]
pub struct RunProgress {
    pub started_at: DateTime<Utc>,
    pub site_days: u64,
    pub finished: u64,
}

fn zone_name<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}
