//! The ledger in PostgreSQL, shared by every process that uses an API id.
//!
//! Each reservation is one short transaction that locks the id's
//! `sonnys.api_budget` row, so reservations of one id are serialised however
//! many processes, pools or PgBouncers stand between them; row locks, unlike
//! session advisory locks, end with the transaction. Times come from the
//! database's `clock_timestamp()`, the one clock every process shares; the
//! host's clock is never written. The transaction never spans the request.

use std::time::Duration;

use sqlx::PgPool;

use super::ledger::{Ledger, LedgerError, Reservation};
use super::Allowance;
use crate::domain::ApiId;

/// Lock the id's row; the seconds until its pause ends (negative or null: none).
const LOCK: &str = "SELECT extract(epoch FROM blocked_until - clock_timestamp())::float8
  FROM sonnys.api_budget WHERE api_id = $1 FOR UPDATE";

/// Forget sends that left the window; count those inside it and say in how
/// many seconds the oldest leaves. The `SELECT` still sees the deleted rows
/// (one snapshot), hence its own bound.
const COUNT: &str = "WITH now AS (SELECT clock_timestamp() - make_interval(secs => $2) AS since),
gone AS (
    DELETE FROM sonnys.api_requests r USING now
     WHERE r.api_id = $1 AND r.sent_at <= now.since
)
SELECT count(r.sent_at)::int4,
       extract(epoch FROM min(r.sent_at) - now.since)::float8
  FROM now LEFT JOIN sonnys.api_requests r ON r.api_id = $1 AND r.sent_at > now.since
 GROUP BY now.since";

/// The shared ledger of one API id.
#[derive(Debug, Clone)]
pub struct PgLedger {
    pool: PgPool,
    api_id: ApiId,
    /// Seconds a send occupies its slot: the window plus the guard.
    life_s: f64,
}

impl PgLedger {
    /// The ledger of `api_id` in `pool`'s database (migration 0005). Every
    /// process on the id must use the same `allowance` window and guard.
    pub fn new(pool: PgPool, api_id: ApiId, allowance: Allowance) -> Self {
        Self {
            pool,
            api_id,
            life_s: (allowance.window + allowance.guard).as_secs_f64(),
        }
    }
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

impl Ledger for PgLedger {
    async fn reserve(&mut self, limit: u32, wanted: u32) -> Result<Reservation, LedgerError> {
        let id = self.api_id.as_str();
        let mut tx = self.pool.begin().await?;
        let paused: Option<Option<f64>> = sqlx::query_scalar(LOCK)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let paused = match paused {
            Some(paused) => paused,
            None => {
                sqlx::query(
                    "INSERT INTO sonnys.api_budget (api_id) VALUES ($1) ON CONFLICT (api_id) DO NOTHING",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query_scalar(LOCK)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        if let Some(left) = paused.filter(|s| *s > 0.0) {
            tx.commit().await?;
            return Ok(Reservation {
                granted: 0,
                retry_in: seconds(left),
            });
        }
        let (in_window, oldest_leaves): (i32, Option<f64>) = sqlx::query_as(COUNT)
            .bind(id)
            .bind(self.life_s)
            .fetch_one(&mut *tx)
            .await?;
        let in_window = u32::try_from(in_window).unwrap_or(0);
        let granted = wanted.min(limit.saturating_sub(in_window));
        if granted > 0 {
            sqlx::query(
                "INSERT INTO sonnys.api_requests (api_id, sent_at)
                 SELECT $1, clock_timestamp() FROM generate_series(1, $2)",
            )
            .bind(id)
            .bind(granted as i32)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let retry_in = if in_window + granted < limit {
            Duration::ZERO
        } else {
            // Full now; with nothing older, the slots just taken are the oldest.
            seconds(oldest_leaves.unwrap_or(self.life_s))
        };
        Ok(Reservation { granted, retry_in })
    }

    async fn block(&mut self, pause: Duration) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO sonnys.api_budget AS b (api_id, blocked_until)
             VALUES ($1, clock_timestamp() + make_interval(secs => $2))
             ON CONFLICT (api_id) DO UPDATE
                SET blocked_until = greatest(b.blocked_until, EXCLUDED.blocked_until)",
        )
        .bind(self.api_id.as_str())
        .bind(pause.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
