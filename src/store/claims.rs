//! Site-day claims (`sonnys.sync_days`): which days are done, who exports
//! a day now (a lease renewed by a heartbeat), and how its export ended.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use sqlx::PgPool;

use crate::domain::states::DayStatus;
use crate::domain::{AccountName, SiteCode};

use super::*;

/// The business days of an account that are `done`, from `since` on, per site.
pub async fn done_days(
    pool: &PgPool,
    account: &AccountName,
    since: NaiveDate,
) -> sqlx::Result<HashMap<SiteCode, HashSet<NaiveDate>>> {
    let rows: Vec<(String, NaiveDate)> = sqlx::query_as(
        "SELECT site_code, business_date FROM sonnys.sync_days
          WHERE account = $1 AND status = $3 AND business_date >= $2",
    )
    .bind(account.as_str())
    .bind(since)
    .bind(DayStatus::Done)
    .fetch_all(pool)
    .await?;
    let mut done: HashMap<SiteCode, HashSet<NaiveDate>> = HashMap::new();
    for (code, date) in rows {
        if let Some(code) = SiteCode::parse(&code) {
            done.entry(code).or_default().insert(date);
        }
    }
    Ok(done)
}

/// One site's business day, as the store addresses it.
#[derive(Debug, Clone, Copy)]
pub struct SiteDay<'a> {
    pub account: &'a AccountName,
    pub site: &'a SiteCode,
    /// The zone the site's business days are counted in.
    pub timezone: Tz,
    pub date: NaiveDate,
}

/// A claim on a site-day: who exports it. Every write of the day names it,
/// and fails once another process has taken the day over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: uuid::Uuid,
    /// How long the claim holds without renewal (`sync.lease`).
    pub term: Duration,
}

impl Lease {
    /// This process's claims (one owner per process), holding for `term`.
    pub fn of_this_process(term: Duration) -> Lease {
        Lease {
            owner: Self::this_process(),
            term,
        }
    }

    /// The owner id of this process's claims: `sync_days.lease_owner` of
    /// the days it is exporting.
    pub fn this_process() -> uuid::Uuid {
        static OWNER: std::sync::OnceLock<uuid::Uuid> = std::sync::OnceLock::new();
        *OWNER.get_or_init(uuid::Uuid::new_v4)
    }

    /// How often a claim is renewed: well inside its term, so one late
    /// heartbeat never loses it.
    pub fn renew_every(&self) -> Duration {
        HEARTBEAT_EVERY.min(self.term / 4)
    }
}

/// What a claimed site-day looked like just before the claim, when it was
/// `done`: a redo (lookback, range) that is interrupted or finds it unchanged
/// puts this back, since every row of the day is still whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneBefore {
    pub transactions: i32,
    pub pages: i32,
    pub rejected: i32,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A claim on a site-day, and what the day was before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub lease: Lease,
    /// Set when the day was `done` before this claim.
    pub done_before: Option<DoneBefore>,
}

/// Claim a site-day for export: counts restart, attempts go up. `None`
/// when another process holds a claim on it that has not run out, or when
/// the day is `done` and `redo_done` is false.
pub async fn claim(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    lease: Lease,
    redo_done: bool,
) -> sqlx::Result<Option<Claim>> {
    let mut tx = pool.begin().await?;
    #[derive(sqlx::FromRow)]
    struct Before {
        status: DayStatus,
        transactions: i32,
        pages: i32,
        rejected: i32,
        finished_at: Option<chrono::DateTime<chrono::Utc>>,
    }
    let before: Option<Before> = sqlx::query_as(
        "SELECT status, transactions, pages, rejected, finished_at FROM sonnys.sync_days
              WHERE account = $1 AND site_code = $2 AND business_date = $3
                FOR UPDATE",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .fetch_optional(&mut *tx)
    .await?;
    let claimed: Option<bool> = sqlx::query_scalar(
        "INSERT INTO sonnys.sync_days AS d
                (account, site_code, business_date, status, attempts, started_at, heartbeat_at, lease_owner, lease_until)
         VALUES ($1, $2, $3, 'running', 1, now(), now(), $4::uuid, now() + make_interval(secs => $5))
         ON CONFLICT (account, site_code, business_date) DO UPDATE
            SET status = 'running', attempts = d.attempts + 1,
                transactions = 0, pages = 0, requests = 0, rejected = 0,
                started_at = now(), heartbeat_at = now(), finished_at = NULL,
                lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until
          WHERE CASE d.status
                  WHEN 'running' THEN d.lease_until IS NULL OR d.lease_until < now()
                                      OR d.lease_owner = EXCLUDED.lease_owner
                  WHEN 'done' THEN $6
                  ELSE true
                END
         RETURNING true",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .bind(lease.owner.to_string())
    .bind(lease.term.as_secs_f64())
    .bind(redo_done)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed.map(|_| Claim {
        lease,
        done_before: before
            .filter(|b| b.status == DayStatus::Done)
            .map(|b| DoneBefore {
                transactions: b.transactions,
                pages: b.pages,
                rejected: b.rejected,
                finished_at: b.finished_at,
            }),
    }))
}

/// [`claim`], for callers that need only the lease.
pub async fn claim_day(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    lease: Lease,
    redo_done: bool,
) -> sqlx::Result<Option<Lease>> {
    Ok(claim(pool, account, site, date, lease, redo_done)
        .await?
        .map(|c| c.lease))
}

/// A site-day's status and how long its current claim still holds (zero
/// when it has run out or there is none).
pub async fn claim_state(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
) -> sqlx::Result<Option<(DayStatus, Duration)>> {
    let row: Option<(DayStatus, f64)> = sqlx::query_as(
        "SELECT status,
                coalesce(greatest(0, extract(epoch FROM lease_until - now()))::float8, 0)
           FROM sonnys.sync_days WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(status, left)| (status, Duration::from_secs_f64(left.max(0.0)))))
}

/// Prove that a running site-day's export is alive and renew its claim.
/// `false` when the claim is no longer ours (taken over after it ran out).
pub async fn heartbeat(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    lease: Lease,
) -> sqlx::Result<bool> {
    let renewed = sqlx::query(
        "UPDATE sonnys.sync_days
            SET heartbeat_at = now(), lease_until = now() + make_interval(secs => $5)
          WHERE account = $1 AND site_code = $2 AND business_date = $3 AND status = 'running'
            AND lease_owner = $4::uuid",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .bind(lease.owner.to_string())
    .bind(lease.term.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// How an export of a site-day ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    /// Every page committed (and, with summaries, their ids agreed).
    Done,
    /// A done day's summaries matched what is stored: not exported again.
    Unchanged,
    /// It failed with this error. A day that was `done` before its claim
    /// stays `done` with its former counts: its rows are whole.
    Failed(&'a str),
}

/// Close a site-day: `done` only when every page is committed, else `failed` with the error.
pub async fn finish_day(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    requests: u64,
    error: Option<&str>,
    lease: Lease,
) -> sqlx::Result<()> {
    let ending = error.map_or(Ending::Done, Ending::Failed);
    let claim = Claim {
        lease,
        done_before: None,
    };
    end_day(pool, account, site, date, requests, ending, &claim).await
}

/// Close a claimed site-day as `ending` says (see [`Ending`]).
pub async fn end_day(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    requests: u64,
    ending: Ending<'_>,
    claim: &Claim,
) -> sqlx::Result<()> {
    let error = match ending {
        Ending::Failed(e) => Some(e),
        _ => None,
    };
    // Put the former counts back where nothing was exported anew.
    let restore = claim.done_before.filter(|_| ending != Ending::Done);
    // Only the holder of the claim closes the day: a process whose claim
    // was taken over leaves the day to its new owner.
    sqlx::query(
        "UPDATE sonnys.sync_days
            SET status = CASE WHEN $5::text IS NULL OR $7 THEN 'done' ELSE 'failed' END,
                requests = $4, last_error = $5, lease_until = NULL,
                finished_at = CASE WHEN $7 THEN $11 ELSE now() END,
                transactions = CASE WHEN $7 THEN $8 ELSE transactions END,
                pages = CASE WHEN $7 THEN $9 ELSE pages END,
                rejected = CASE WHEN $7 THEN $10 ELSE rejected END,
                checked_at = CASE WHEN $12 THEN now() ELSE checked_at END
          WHERE account = $1 AND site_code = $2 AND business_date = $3 AND lease_owner = $6::uuid",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .bind(i32::try_from(requests).unwrap_or(i32::MAX))
    .bind(error)
    .bind(claim.lease.owner.to_string())
    .bind(restore.is_some())
    .bind(restore.map_or(0, |b| b.transactions))
    .bind(restore.map_or(0, |b| b.pages))
    .bind(restore.map_or(0, |b| b.rejected))
    .bind(restore.and_then(|b| b.finished_at))
    .bind(ending == Ending::Unchanged)
    .execute(pool)
    .await?;
    Ok(())
}
