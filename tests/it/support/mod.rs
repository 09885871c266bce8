//! Shared helpers for the integration tests.
//!
//! Every test gets a database of its own from [`test_db`], on the server named
//! by `DATABASE_URL`, or else on a private server that the first test starts
//! in `target/test-postgres`. That private server keeps running after the
//! tests so later runs start fast; stop it with
//! `pg_ctl stop -D target/test-postgres` (as user `postgres` when root) or
//! delete the folder once it is stopped.
//!
//! Test databases are left behind (a test may still be using its pool when
//! it finishes); each run drops those whose test process has exited.

pub mod chromium;
mod database;

pub use database::{test_db, TestDb};

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

mod app;

pub use app::{fast_simulator, TestApp};

pub mod service;
