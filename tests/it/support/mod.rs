//! Shared helpers for the integration tests.
//!
//! Every test gets a database of its own from [`test_db`], on the server named
//! by `DATABASE_URL`, or else on a private server that the first test starts
//! in `$TMPDIR/sonnys-etl-<checkout>/test-postgres` ([`private_server_dir`]).
//! That private server keeps running after the tests so later runs start
//! fast; stop it with `pg_ctl stop -D <that folder>` (as user `postgres`
//! when root) or delete the folder once it is stopped.
//!
//! Test databases are left behind (a test may still be using its pool when
//! it finishes); each run drops those whose test process has exited.

pub mod chromium;
mod database;

pub use database::{test_db, TestDb};

/// The data folder of the private server `name`, for this checkout: in the
/// system's temporary folder, not under `target/`, because when the tests
/// run as root the server runs as another user, who may not be able to
/// enter the checkout (a clone in a `mktemp -d` folder, or under `/root`).
pub fn private_server_dir(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let checkout = env!("CARGO_MANIFEST_DIR");
    let hash = checkout.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let root = std::env::temp_dir().join(format!("sonnys-etl-{hash:016x}"));
    std::fs::create_dir_all(&root).expect("create the private servers' folder");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))
        .expect("open the private servers' folder to the server's user");
    root.join(name)
}

/// A temporary folder that an unprivileged PostgreSQL can use.
///
/// When the tests run as root, the server runs as another user, who must be
/// able to enter the folder whatever the umask.
pub fn server_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("create a temporary folder");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open the temporary folder to the server's user");
    dir
}

/// The status of a site-day in `sonnys.sync_days`, if it was ever exported.
pub async fn day_status(
    pool: &sqlx::PgPool,
    account: &str,
    site: &str,
    date: chrono::NaiveDate,
) -> Option<String> {
    sqlx::query_scalar(
        "SELECT status FROM sonnys.sync_days WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account)
    .bind(site)
    .bind(date)
    .fetch_optional(pool)
    .await
    .expect("read the site-day's status")
}

mod app;

pub use app::{fast_simulator, TestApp};

pub mod service;
