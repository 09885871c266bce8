//! A fresh, migrated database per test.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use rand::Rng;
use sonnys_etl::rehearsal::pgserver::{Options, PrivatePostgres};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::OnceCell;

/// Prefix of every test database's name; old ones are found by it.
const PREFIX: &str = "sonnys_test_";

/// A fresh, migrated database of its own for one test.
pub struct TestDb {
    /// Pool for this test's runtime only; never share it across tests.
    pub pool: PgPool,
    /// URL of the test database, for code under test that connects itself.
    pub url: String,
    /// Name of the test database.
    pub name: String,
}

/// Create a new database named `sonnys_test_<pid>_<counter>_<random>`,
/// run the migrations on it and connect to it.
pub async fn test_db() -> TestDb {
    let maintenance = maintenance_url().await;
    drop_databases_of_exited_runs(maintenance).await;

    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{PREFIX}{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::thread_rng().gen::<u32>()
    );
    let mut conn = PgConnection::connect(maintenance)
        .await
        .unwrap_or_else(|e| panic!("connect to {maintenance}: {e}"));
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let _ = conn.close().await;

    let url = with_database(maintenance, &name);
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    sonnys_etl::store::migrate(&pool)
        .await
        .unwrap_or_else(|e| panic!("migrate {name}: {e}"));
    TestDb { pool, url, name }
}

/// URL of the maintenance database: `DATABASE_URL`, or the private server's
/// `postgres` database, started on first use.
///
/// Only the URL is kept: the server outlives any one test's runtime, a pool
/// would not.
async fn maintenance_url() -> &'static str {
    static URL: OnceCell<String> = OnceCell::const_new();
    URL.get_or_init(|| async {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if !url.is_empty() {
                return url;
            }
        }
        let data_dir = super::private_server_dir("test-postgres");
        let server = PrivatePostgres::start_with(&data_dir, Options::EPHEMERAL)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "DATABASE_URL is not set and a private PostgreSQL in {} could not start: {e:#}",
                    data_dir.display()
                )
            });
        server.url("postgres")
    })
    .await
}

fn with_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).unwrap_or_else(|e| panic!("parse {url}: {e}"));
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// Drop test databases whose process has exited, once per test process.
/// Best effort: a failure here must not fail the test that triggered it.
async fn drop_databases_of_exited_runs(maintenance: &str) {
    static DONE: OnceCell<()> = OnceCell::const_new();
    DONE.get_or_init(|| async {
        // Without /proc we cannot tell live pids from dead ones.
        if !std::path::Path::new("/proc/self").exists() {
            return;
        }
        let Ok(mut conn) = PgConnection::connect(maintenance).await else {
            return;
        };
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
                .bind(PREFIX)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
        for name in names {
            let pid = name[PREFIX.len()..].split('_').next().unwrap_or("");
            // A name we cannot read is left alone.
            let alive = pid
                .parse::<u32>()
                .map_or(true, |pid| PathBuf::from(format!("/proc/{pid}")).exists());
            if !alive {
                let _ = conn
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await;
            }
        }
        let _ = conn.close().await;
    })
    .await;
}
