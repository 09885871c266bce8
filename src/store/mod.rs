//! PostgreSQL: the product's interface. Every write is an idempotent,
//! set-based upsert keyed by the source's identity, and each page of an export
//! commits in one short database transaction — never held across a request.

use std::time::Duration;

use sqlx::PgPool;

pub mod claims;
pub mod lookback;
pub mod people;
pub mod runs;
pub mod sites;
pub mod status;
pub mod transactions;
pub mod washes;

pub use crate::domain::PageWrite;
pub use claims::*;
pub use sites::*;
pub use transactions::*;

/// Apply the migrations in `migrations/` (idempotent).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}

/// The newest migration applied to the database (0 before any).
pub async fn applied_migration(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
}

/// The newest migration this build carries.
pub fn latest_migration() -> i64 {
    sqlx::migrate!("./migrations")
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Open a pool on `url` and bring its schema up to date.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    use anyhow::Context;
    let pool = crate::database::connect(url, max_connections).await?;
    migrate(&pool)
        .await
        .context("cannot apply the database migrations")?;
    Ok(pool)
}

/// A running export writes its heartbeat this often…
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// …so one without a heartbeat for this long was left by a process that is
/// gone (the same rule as `reporting.sync_health.stale_days`).
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// Whether a database error is worth waiting out: the server is away,
/// restarting or overloaded, or the transaction lost a race. Anything else
/// (a constraint, a bad value) would fail again.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-03: admin shutdown, crash
            // shutdown, cannot connect now; 53300: too many connections;
            // 40001/40P01: serialization failure, deadlock.
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(code.as_ref(), "53300" | "40001" | "40P01")
        }),
        _ => false,
    }
}

/// Run a database operation, waiting out transient errors (see
/// [`is_transient`]) with exponential backoff and jitter for at most
/// `outage`. Each attempt is a whole transaction: it commits or not at all.
pub async fn ride_out<T, F, Fut>(outage: Duration, what: &str, mut op: F) -> sqlx::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<T>>,
{
    use rand::Rng;
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(value) => {
                if attempt > 0 {
                    tracing::info!(%what, attempts = attempt + 1, "the database is back");
                }
                return Ok(value);
            }
            Err(e) if is_transient(&e) && started.elapsed() + delay < outage => {
                attempt += 1;
                let jittered = delay.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
                tracing::warn!(%what, error = %e, attempt, retry_in_ms = jittered.as_millis() as u64,
                    "the database is unavailable; waiting for it");
                tokio::time::sleep(jittered).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}
