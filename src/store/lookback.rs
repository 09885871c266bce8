//! What the lookback by summaries reads and writes: the stored summary
//! digests of a site-day, the checks it made (by the day's age, for `plan`
//! and the status page), when an account last re-exported its lookback days
//! whole, and the rows of a day that its source no longer has.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use super::{Lease, SiteDay};
use crate::domain::{AccountName, SiteCode};

/// The stored transactions of a site-day, each with the digest of its
/// summary when last read (`None` if never).
pub async fn summary_digests(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
) -> sqlx::Result<HashMap<String, Option<String>>> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT id, summary_digest FROM sonnys.transactions
          WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Delete the transactions of a site-day (with their lines) that are not in
/// `keep`: the export and the summaries agreed on `keep`, so the source no
/// longer has the others. The rollup follows in the same transaction.
/// `None`, with nothing deleted, when `lease` no longer holds the day.
pub async fn remove_vanished(
    pool: &PgPool,
    day: SiteDay<'_>,
    keep: &[String],
    lease: Lease,
) -> sqlx::Result<Option<u64>> {
    let mut tx = pool.begin().await?;
    let holds: Option<bool> = sqlx::query_scalar(
        "SELECT true FROM sonnys.sync_days
          WHERE account = $1 AND site_code = $2 AND business_date = $3 AND lease_owner = $4::uuid
            FOR UPDATE",
    )
    .bind(day.account.as_str())
    .bind(day.site.as_str())
    .bind(day.date)
    .bind(lease.owner.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    if holds.is_none() {
        return Ok(None);
    }
    let gone: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM sonnys.transactions
          WHERE account = $1 AND site_code = $2 AND business_date = $3 AND NOT (id = ANY($4))",
    )
    .bind(day.account.as_str())
    .bind(day.site.as_str())
    .bind(day.date)
    .bind(keep)
    .fetch_all(&mut *tx)
    .await?;
    if !gone.is_empty() {
        sqlx::query(
            "WITH items AS (DELETE FROM sonnys.transaction_items WHERE account = $1 AND transaction_id = ANY($2)),
                  tenders AS (DELETE FROM sonnys.transaction_tenders WHERE account = $1 AND transaction_id = ANY($2)),
                  discounts AS (DELETE FROM sonnys.transaction_discounts WHERE account = $1 AND transaction_id = ANY($2))
             DELETE FROM sonnys.transactions WHERE account = $1 AND id = ANY($2)",
        )
        .bind(day.account.as_str())
        .bind(&gone)
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT reporting.refresh_site_days($1, ARRAY[$2::text], ARRAY[$3::date])")
            .bind(day.account.as_str())
            .bind(day.site.as_str())
            .bind(day.date)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Some(gone.len() as u64))
}

/// Record one lookback check of a done site-day.
pub async fn record_check(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    age_days: i32,
    changed: bool,
    requests: u64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sonnys.lookback_checks (account, site_code, business_date, age_days, changed, requests)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .bind(age_days)
    .bind(changed)
    .bind(i32::try_from(requests).unwrap_or(i32::MAX))
    .execute(pool)
    .await?;
    Ok(())
}

/// When the account's lookback days were last exported whole.
pub async fn last_full_lookback(
    pool: &PgPool,
    account: &AccountName,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT done_at FROM sonnys.full_lookbacks WHERE account = $1")
        .bind(account.as_str())
        .fetch_optional(pool)
        .await
}

/// Remember that the account's lookback days were exported whole at `at`.
pub async fn record_full_lookback(
    pool: &PgPool,
    account: &AccountName,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sonnys.full_lookbacks (account, done_at) VALUES ($1, $2)
         ON CONFLICT (account) DO UPDATE SET done_at = greatest(sonnys.full_lookbacks.done_at, EXCLUDED.done_at)",
    )
    .bind(account.as_str())
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

/// How often lookback checks found a change, by the day's age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckHistory {
    pub age_days: i32,
    pub checks: i64,
    pub changed: i64,
}

impl CheckHistory {
    /// The share of checks that found a change.
    pub fn change_rate(&self) -> f64 {
        if self.checks == 0 {
            0.0
        } else {
            self.changed as f64 / self.checks as f64
        }
    }
}

/// Lookback checks since `since`, per day age (all accounts when `account`
/// is `None`).
pub async fn check_history(
    pool: &PgPool,
    account: Option<&AccountName>,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<CheckHistory>> {
    let rows: Vec<(i32, i64, i64)> = sqlx::query_as(
        "SELECT age_days, count(*), count(*) FILTER (WHERE changed)
           FROM sonnys.lookback_checks
          WHERE checked_at >= $1 AND ($2::text IS NULL OR account = $2)
          GROUP BY age_days ORDER BY age_days",
    )
    .bind(since)
    .bind(account.map(AccountName::as_str))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(age_days, checks, changed)| CheckHistory {
            age_days,
            checks,
            changed,
        })
        .collect())
}
