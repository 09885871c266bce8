//! The finished runs of the service (`sonnys.runs`): written when a run
//! ends, read by the status page and `sonnys-etl status`, so that the last
//! run outlives the process that ran it.

use sqlx::PgPool;

use chrono::{DateTime, Utc};

use crate::domain::states::RunOutcome;

/// The figures of one finished run of the service.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunFigures {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: RunOutcome,
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

/// Record a finished run of `replica`. Idempotent: the same run written
/// again (a retry after an outage) replaces its row.
pub async fn record_run(pool: &PgPool, run: &RunFigures, replica: uuid::Uuid) -> sqlx::Result<()> {
    let figure = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO sonnys.runs AS r (replica, started_at, finished_at, outcome, site_days, done, failed,
                                       transactions, inserted, updated, pages, requests, rate_limited)
         VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (replica, started_at) DO UPDATE SET
             finished_at = excluded.finished_at, outcome = excluded.outcome,
             site_days = excluded.site_days, done = excluded.done, failed = excluded.failed,
             transactions = excluded.transactions, inserted = excluded.inserted,
             updated = excluded.updated, pages = excluded.pages, requests = excluded.requests,
             rate_limited = excluded.rate_limited",
    )
    .bind(replica.to_string())
    .bind(run.started_at)
    .bind(run.finished_at)
    .bind(run.outcome)
    .bind(figure(run.site_days))
    .bind(figure(run.done))
    .bind(figure(run.failed))
    .bind(figure(run.transactions))
    .bind(figure(run.inserted))
    .bind(figure(run.updated))
    .bind(figure(run.pages))
    .bind(figure(run.requests))
    .bind(figure(run.rate_limited))
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RunRow {
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: chrono::DateTime<chrono::Utc>,
    outcome: RunOutcome,
    site_days: i64,
    done: i64,
    failed: i64,
    transactions: i64,
    inserted: i64,
    updated: i64,
    pages: i64,
    requests: i64,
    rate_limited: i64,
}

impl From<RunRow> for RunFigures {
    fn from(r: RunRow) -> RunFigures {
        // The table's checks keep every figure at zero or above.
        let figure = |n: i64| u64::try_from(n).unwrap_or(0);
        RunFigures {
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            site_days: figure(r.site_days),
            done: figure(r.done),
            failed: figure(r.failed),
            transactions: figure(r.transactions),
            inserted: figure(r.inserted),
            updated: figure(r.updated),
            pages: figure(r.pages),
            requests: figure(r.requests),
            rate_limited: figure(r.rate_limited),
        }
    }
}

/// The latest `limit` finished runs of every replica, newest first.
pub async fn recent_runs(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<RunFigures>> {
    let rows: Vec<RunRow> = sqlx::query_as(
        "SELECT started_at, finished_at, outcome, site_days, done, failed,
                transactions, inserted, updated, pages, requests, rate_limited
           FROM sonnys.runs ORDER BY finished_at DESC, started_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(RunFigures::from).collect())
}

/// The requests the service's runs spent since `since`, and when the first
/// of those runs started (`None` without a run since then).
pub async fn requests_since(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> sqlx::Result<(u64, Option<DateTime<Utc>>)> {
    let (requests, first): (Option<i64>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT sum(requests)::bigint, min(started_at) FROM sonnys.runs WHERE started_at >= $1",
    )
    .bind(since)
    .fetch_one(pool)
    .await?;
    Ok((requests.map_or(0, |r| u64::try_from(r).unwrap_or(0)), first))
}
