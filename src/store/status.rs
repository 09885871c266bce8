//! What `status`, the status page and `plan` read: the queries behind their
//! figures, kept with the rest of the SQL.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::domain::states::{DayStatus, PeopleFamily, PeopleKind};
use crate::domain::AccountName;

/// One recorded site-day, as `status` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DayRow {
    pub account: String,
    pub site_code: String,
    pub business_date: NaiveDate,
    pub status: DayStatus,
    pub transactions: i32,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub rejected: i32,
    /// `running` without a heartbeat for `reporting.stale_claim_after()`:
    /// left by a process that is gone.
    pub stale: bool,
}

impl DayRow {
    pub fn is(&self, status: DayStatus) -> bool {
        self.status == status
    }
}

/// Every recorded site-day from `since` on.
pub async fn recorded_days(pool: &PgPool, since: NaiveDate) -> sqlx::Result<Vec<DayRow>> {
    sqlx::query_as(
        "SELECT account, site_code, business_date, status, transactions, attempts, last_error, rejected,
                coalesce(heartbeat_at, started_at, '-infinity') < now() - reporting.stale_claim_after() AS stale
           FROM sonnys.sync_days WHERE business_date >= $1",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}

/// The latest `done` day of every (account, site code).
pub async fn last_done_days(pool: &PgPool) -> sqlx::Result<Vec<(String, String, NaiveDate)>> {
    sqlx::query_as(
        "SELECT account, site_code, max(business_date) FROM sonnys.sync_days
          WHERE status = $1 GROUP BY account, site_code",
    )
    .bind(DayStatus::Done)
    .fetch_all(pool)
    .await
}

/// The latest labour or membership export of an account.
#[derive(Debug, Clone)]
pub struct PeopleRow {
    pub family: PeopleFamily,
    /// When the latest successful export finished.
    pub last_done_at: Option<DateTime<Utc>>,
    /// The latest record stored: a clock-in, or a status change.
    pub latest_record_at: Option<DateTime<Utc>>,
    /// The error of the latest export, if it failed.
    pub last_error: Option<String>,
}

/// The labour and membership exports of an account, from
/// `sonnys.people_syncs` and the newest stored record of each; only those
/// that ever ran or stored anything.
pub async fn people_exports(pool: &PgPool, account: &str) -> sqlx::Result<Vec<PeopleRow>> {
    let mut rows = Vec::new();
    for (family, latest) in [
        (
            PeopleFamily::Labour,
            "SELECT max(clock_in) FROM sonnys.clock_entries WHERE account = $1",
        ),
        (
            PeopleFamily::Members,
            "SELECT max(status_at) FROM sonnys.recurring_status_changes WHERE account = $1",
        ),
    ] {
        let kinds: Vec<PeopleKind> = PeopleKind::of(family).to_vec();
        let (last_done_at, last_error): (Option<DateTime<Utc>>, Option<String>) = sqlx::query_as(
            "SELECT (SELECT max(finished_at) FROM sonnys.people_syncs
                      WHERE account = $1 AND status = $3 AND data = ANY($2)),
                    (SELECT last_error FROM sonnys.people_syncs
                      WHERE account = $1 AND data = ANY($2)
                      ORDER BY started_at DESC LIMIT 1)",
        )
        .bind(account)
        .bind(kinds)
        .bind(DayStatus::Done)
        .fetch_one(pool)
        .await?;
        let latest_record_at: Option<DateTime<Utc>> = sqlx::query_scalar(latest)
            .bind(account)
            .fetch_one(pool)
            .await?;
        if last_done_at.is_some() || latest_record_at.is_some() || last_error.is_some() {
            rows.push(PeopleRow {
                family,
                last_done_at,
                latest_record_at,
                last_error,
            });
        }
    }
    Ok(rows)
}

/// Pages and requests of the `done` site-days of one weekday, from `since`
/// on: what `plan` forecasts from.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DayHistory {
    pub account: String,
    pub site_code: String,
    /// ISO weekday, 1 = Monday.
    pub weekday: i32,
    pub days: i64,
    pub pages: i64,
    pub requests: i64,
}

/// What the exports of recent days cost, per (account, site, weekday).
pub async fn day_history(pool: &PgPool, since: NaiveDate) -> sqlx::Result<Vec<DayHistory>> {
    sqlx::query_as(
        "SELECT account, site_code, extract(isodow FROM business_date)::int AS weekday,
                count(*) AS days, sum(pages)::bigint AS pages, sum(requests)::bigint AS requests
           FROM sonnys.sync_days
          WHERE status = $2 AND business_date >= $1 AND pages > 0
            -- a check that found the day unchanged spent only summary requests
            AND (checked_at IS NULL OR checked_at <= finished_at)
          GROUP BY 1, 2, 3",
    )
    .bind(since)
    .bind(DayStatus::Done)
    .fetch_all(pool)
    .await
}

/// Employees stored for the account.
pub async fn employee_count(pool: &PgPool, account: &AccountName) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM sonnys.employees WHERE account = $1")
        .bind(account.as_str())
        .fetch_one(pool)
        .await
}

/// Membership accounts stored that signed up in `[from, to)`.
pub async fn sign_ups_between(
    pool: &PgPool,
    account: &AccountName,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM sonnys.recurring_accounts
          WHERE account = $1 AND sign_up_at >= $2 AND sign_up_at < $3",
    )
    .bind(account.as_str())
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await
}

/// Membership status changes stored from `since` on.
pub async fn status_changes_since(
    pool: &PgPool,
    account: &AccountName,
    since: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM sonnys.recurring_status_changes WHERE account = $1 AND status_at >= $2",
    )
    .bind(account.as_str())
    .bind(since)
    .fetch_one(pool)
    .await
}
