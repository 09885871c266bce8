//! The ledger in PostgreSQL, shared by every process that uses an API id.
//!
//! Each reservation is one short transaction that locks the id's
//! `sonnys.api_budget` row, so reservations of one id are serialised however
//! many processes, pools or PgBouncers stand between them; row locks, unlike
//! session advisory locks, end with the transaction. Times come from the
//! database's `clock_timestamp()`, the one clock every process shares; the
//! host's clock is never written. The transaction never spans the request.
//!
//! A slot is charged until its request's answer came back (migration
//! 0016): each reserved row has an `id`, which the grant hands to the
//! request; once answered, the budget's task writes `sent_at =
//! greatest(sent_at, clock_timestamp())` for the settled ids, in one
//! statement before its next reservation, off the request path. The vendor
//! counts the request at its arrival, no later than that, so the slot's
//! next use comes a window plus guard after the arrival whatever the delay
//! between reservation and arrival (commit, wake-up, a saturated host).
//!
//! Priority across processes (migration 0015): the same statement that
//! reserves the slots records, in `sonnys.api_waiters`, the most urgent
//! [`PriorityClass`] this process still waits with afterwards, when it will
//! ask again (`next_look`) and until when the record holds (`expires_at`, a
//! little later). It refuses slots to the classes below the most urgent one
//! another live process has recorded, and tells a process held back to ask
//! again just after that process's next look. A process that stops waiting
//! removes its record in its last reservation; one that dies leaves it to
//! expire, at most a window and [`WAITER_GRACE`] later. So waiting costs no
//! round trip beyond the reservations a budget makes anyway, and the slot
//! count is exactly as strict as without priorities: a class only decides
//! who gets a free slot, never whether one is free.

use std::time::Duration;

use sqlx::PgPool;

use super::ledger::{Ledger, LedgerError, Reservation, SlotId};
use super::{Allowance, PriorityClass, Wants};
use crate::domain::ApiId;

/// How long a process's waiting record outlives the moment it said it would
/// ask again: scheduling and database delays of a busy host. Also the
/// longest a dead process holds others back beyond its next look.
pub const WAITER_GRACE: Duration = Duration::from_secs(2);

/// A process held back asks again this long after the other's next look,
/// so that the other goes first. While the other is late, it asks again
/// after as long as the other is late by (at least this, at most until the
/// other's record expires): a slow process is caught soon, a dead one costs
/// a few reservations.
pub const HELD_BACK_RETRY: Duration = Duration::from_millis(20);

/// Open a reservation's transaction, in the same round trip as `BEGIN`: the
/// reservation statement then runs on its generic plan, made once per
/// connection, instead of being planned again at each call (its planning
/// costs more than its execution).
const BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

/// Lock the id's row, so that reservations of the id are serialised.
const LOCK: &str = "SELECT 1 FROM sonnys.api_budget WHERE api_id = $1 FOR UPDATE";

/// One reservation, under the row lock; a statement of its own after the
/// lock, so that its snapshot sees every reservation committed before.
///
/// `$1` api id, `$2` seconds a slot lives (window + guard), `$3` the limit,
/// `$4` this process, `$5` slots wanted per class (least urgent first),
/// `$6` [`WAITER_GRACE`], `$7` [`HELD_BACK_RETRY`], in seconds.
///
/// Forgets sends that left the window (the reads below still see them, one
/// snapshot, hence their own bound) and other processes' expired records;
/// grants `least(free slots, slots wanted by the classes at or above the
/// most urgent class another live process waits with)`, none during a 429's
/// pause, the most urgent classes first; records what still waits, or
/// removes the record; and returns the grant, when to ask again and the
/// least urgent class admitted. A held-back class asks again just after
/// the other's next look, or when the window has room again, whichever is
/// later.
const RESERVE: &str = "
WITH clock AS MATERIALIZED (
    SELECT c.t, c.t - make_interval(secs => $2) AS since
      FROM (SELECT clock_timestamp() AS t) c
),
gone AS (
    DELETE FROM sonnys.api_requests r USING clock
     WHERE r.api_id = $1 AND r.sent_at <= clock.since
),
expired AS (
    DELETE FROM sonnys.api_waiters w USING clock
     WHERE w.api_id = $1 AND w.process <> $4::uuid AND w.expires_at <= clock.t
),
state AS (
    SELECT clock.t,
           (SELECT count(*) FROM sonnys.api_requests r
             WHERE r.api_id = $1 AND r.sent_at > clock.since)::int4 AS used,
           (SELECT extract(epoch FROM min(r.sent_at) - clock.since) FROM sonnys.api_requests r
             WHERE r.api_id = $1 AND r.sent_at > clock.since)::float8 AS oldest_leaves_s,
           coalesce((SELECT extract(epoch FROM b.blocked_until - clock.t) FROM sonnys.api_budget b
                      WHERE b.api_id = $1)::float8, 0) AS paused_s,
           (SELECT max(w.priority) FROM sonnys.api_waiters w
             WHERE w.api_id = $1 AND w.process <> $4::uuid AND w.expires_at > clock.t) AS rival
      FROM clock
),
wants AS (
    SELECT (u.ord - 1)::int2 AS class, u.n
      FROM unnest($5::int4[]) WITH ORDINALITY AS u(n, ord)
),
grant_ AS (
    SELECT s.*,
           least(CASE WHEN s.paused_s > 0 THEN 0 ELSE greatest($3 - s.used, 0) END,
                 (SELECT coalesce(sum(w.n), 0) FROM wants w
                   WHERE s.rival IS NULL OR w.class >= s.rival))::int4 AS granted
      FROM state s
),
per_class AS (
    SELECT w.class,
           least(w.n, greatest(g.granted - (sum(w.n) OVER (ORDER BY w.class DESC) - w.n), 0))::int4 AS taken,
           w.n > 0 AND sum(w.n) OVER (ORDER BY w.class DESC) > g.granted AS still_waits
      FROM wants w, grant_ g
),
verdict AS (
    SELECT g.*, (SELECT max(p.class) FROM per_class p WHERE p.still_waits) AS waiting
      FROM grant_ g
),
rival_next AS (
    SELECT extract(epoch FROM r.next_look - v.t)::float8 AS look_s,
           extract(epoch FROM r.expires_at - v.t)::float8 AS expires_s
      FROM verdict v
      LEFT JOIN LATERAL (
          SELECT min(w.next_look) AS next_look, min(w.expires_at) AS expires_at
            FROM sonnys.api_waiters w
           WHERE w.api_id = $1 AND w.process <> $4::uuid AND w.expires_at > v.t
             AND w.priority = v.rival
      ) r ON true
),
timing AS (
    SELECT v.*,
           (CASE
              WHEN v.paused_s > 0 THEN v.paused_s
              WHEN v.waiting < v.rival THEN greatest(
                  CASE WHEN v.used + v.granted < $3 THEN 0 ELSE coalesce(v.oldest_leaves_s, $2) END,
                  CASE WHEN r.look_s >= 0 THEN r.look_s + $7
                       ELSE least(greatest(-r.look_s, $7), r.expires_s) END)
              WHEN v.used + v.granted < $3 THEN 0
              ELSE coalesce(v.oldest_leaves_s, $2)
            END)::float8 AS retry_s
      FROM verdict v, rival_next r
),
registered AS (
    INSERT INTO sonnys.api_waiters AS w (api_id, process, priority, next_look, expires_at)
    SELECT $1, $4::uuid, tm.waiting, tm.t + make_interval(secs => tm.retry_s),
           tm.t + make_interval(secs => tm.retry_s + $6)
      FROM timing tm
     WHERE tm.waiting IS NOT NULL
    ON CONFLICT (api_id, process) DO UPDATE
       SET priority = EXCLUDED.priority, next_look = EXCLUDED.next_look,
           expires_at = EXCLUDED.expires_at
),
unregistered AS (
    DELETE FROM sonnys.api_waiters w USING timing tm
     WHERE w.api_id = $1 AND w.process = $4::uuid AND tm.waiting IS NULL
),
taken AS (
    INSERT INTO sonnys.api_requests (api_id, sent_at, process, priority)
    SELECT $1, clock_timestamp(), $4::uuid, p.class
      FROM per_class p, generate_series(1, p.taken)
    RETURNING id
)
SELECT tm.granted, tm.retry_s, coalesce(tm.rival, 0)::int2 AS lowest_admitted,
       coalesce((SELECT array_agg(t.id) FROM taken t), '{}')::int8[] AS slots
  FROM timing tm";

/// Settle slots (migration 0016): each is charged from the later of its
/// reservation and now. `$1` api id, `$2` the slots' ids.
const SETTLE: &str = "
UPDATE sonnys.api_requests
   SET sent_at = greatest(sent_at, clock_timestamp())
 WHERE api_id = $1 AND id = ANY($2::int8[])";

/// The shared ledger of one API id.
#[derive(Debug, Clone)]
pub struct PgLedger {
    pool: PgPool,
    api_id: ApiId,
    /// Seconds a send occupies its slot: the window plus the guard.
    life_s: f64,
    /// This ledger's name among the processes on the id (a process has one
    /// ledger per id): `sonnys.api_waiters.process`, `sonnys.api_requests.process`.
    process: uuid::Uuid,
}

impl PgLedger {
    /// The ledger of `api_id` in `pool`'s database (migrations 0005, 0015).
    /// Every process on the id must use the same `allowance` window and guard.
    pub fn new(pool: PgPool, api_id: ApiId, allowance: Allowance) -> Self {
        Self {
            pool,
            api_id,
            life_s: (allowance.window + allowance.guard).as_secs_f64(),
            process: uuid::Uuid::new_v4(),
        }
    }

    /// The name this ledger reserves and waits under.
    pub fn process(&self) -> uuid::Uuid {
        self.process
    }
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

impl Ledger for PgLedger {
    async fn reserve(&mut self, limit: u32, wanted: Wants) -> Result<Reservation, LedgerError> {
        let id = self.api_id.as_str();
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let locked: Option<i32> = sqlx::query_scalar(LOCK)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if locked.is_none() {
            sqlx::query(
                "INSERT INTO sonnys.api_budget (api_id) VALUES ($1) ON CONFLICT (api_id) DO NOTHING",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query_scalar::<_, i32>(LOCK)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        }
        let (granted, retry_s, lowest, slots): (i32, f64, i16, Vec<i64>) = sqlx::query_as(RESERVE)
            .bind(id)
            .bind(self.life_s)
            .bind(i32::try_from(limit).unwrap_or(i32::MAX))
            .bind(self.process.to_string())
            .bind(wanted.by_level())
            .bind(WAITER_GRACE.as_secs_f64())
            .bind(HELD_BACK_RETRY.as_secs_f64())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Reservation {
            granted: u32::try_from(granted).unwrap_or(0),
            slots,
            retry_in: seconds(retry_s),
            lowest_admitted: PriorityClass::from_level(lowest),
        })
    }

    async fn settle(&mut self, slots: &[SlotId]) -> Result<(), LedgerError> {
        sqlx::query(SETTLE)
            .bind(self.api_id.as_str())
            .bind(slots)
            .execute(&self.pool)
            .await?;
        Ok(())
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
