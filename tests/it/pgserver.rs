//! The private PostgreSQL server and the per-test database harness.

use sonnys_etl::rehearsal::pgserver::{server_answers, Options, PrivatePostgres};
use sqlx::{Connection, PgConnection};

use crate::support::{server_tempdir, test_db, TestDb};

/// Stops the server when the test ends, even by panic, so no server is
/// left running on a deleted folder.
struct Running(Option<PrivatePostgres>);

impl Running {
    fn get(&self) -> &PrivatePostgres {
        self.0.as_ref().expect("server still running")
    }

    fn stop(mut self) {
        self.0
            .take()
            .expect("server still running")
            .stop()
            .expect("stop the server");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(server) = self.0.take() {
            let _ = server.stop();
        }
    }
}

#[test]
fn server_binaries_are_found_on_this_machine() {
    let dir = PrivatePostgres::find_binaries().expect("server binaries");
    for name in ["initdb", "pg_ctl", "postgres"] {
        assert!(dir.join(name).is_file(), "{} lacks {name}", dir.display());
    }
}

#[tokio::test]
async fn a_private_server_starts_serves_and_stops() {
    let dir = server_tempdir();
    let data = dir.path().join("pg");
    let server = Running(Some(
        PrivatePostgres::start_with(&data, Options::EPHEMERAL)
            .await
            .expect("start"),
    ));
    let url = server.get().url("postgres");
    assert!(
        url.ends_with(&format!(":{}/postgres", server.get().port())),
        "{url}"
    );
    assert!(
        data.join("server.log").is_file(),
        "server log in the data folder"
    );

    let mut conn = PgConnection::connect(&url).await.expect("connect");
    sqlx::query("CREATE TABLE visit (id int PRIMARY KEY, site text NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("create table");
    sqlx::query("INSERT INTO visit VALUES (1, 'north')")
        .execute(&mut conn)
        .await
        .expect("insert");
    let site: String = sqlx::query_scalar("SELECT site FROM visit WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .expect("select");
    assert_eq!(site, "north");
    conn.close().await.expect("close");

    server.stop();
    assert!(!server_answers(&url).await, "stopped server still answers");
}

#[tokio::test]
async fn a_running_server_is_reused_and_a_restart_keeps_port_and_data() {
    let dir = server_tempdir();
    let data = dir.path().join("pg");
    let first = Running(Some(
        PrivatePostgres::start_with(&data, Options::EPHEMERAL)
            .await
            .expect("start"),
    ));
    let port = first.get().port();
    let mut conn = PgConnection::connect(&first.get().url("postgres"))
        .await
        .expect("connect");
    sqlx::query("CREATE TABLE kept (n int)")
        .execute(&mut conn)
        .await
        .expect("create table");
    conn.close().await.expect("close");

    // Starting again while it runs reuses the same server.
    let pid_before = std::fs::read_to_string(data.join("postmaster.pid")).expect("pid file");
    let second = PrivatePostgres::start_with(&data, Options::EPHEMERAL)
        .await
        .expect("reuse");
    assert_eq!(second.port(), port);
    let pid_after = std::fs::read_to_string(data.join("postmaster.pid")).expect("pid file");
    assert_eq!(
        pid_before.lines().next(),
        pid_after.lines().next(),
        "same postmaster"
    );
    drop(second);
    first.stop();

    // Starting after a stop brings back the same data, on the same port.
    let third = Running(Some(
        PrivatePostgres::start_with(&data, Options::DURABLE)
            .await
            .expect("restart"),
    ));
    assert_eq!(third.get().port(), port, "port stable across restarts");
    let mut conn = PgConnection::connect(&third.get().url("postgres"))
        .await
        .expect("connect after restart");
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'kept'")
        .fetch_one(&mut conn)
        .await
        .expect("query");
    assert_eq!(tables, 1, "table survives the restart");
    conn.close().await.expect("close");
    third.stop();
}

/// As root the server runs as another user; a data folder that user cannot
/// reach must be reported as such, not as an obscure initdb failure.
#[tokio::test]
async fn as_root_an_unreachable_data_folder_is_explained() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let is_root = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0");
    if !is_root {
        return; // nothing to check: the server runs as us
    }
    use std::os::unix::fs::PermissionsExt;
    let closed = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700))
        .expect("close the folder to other users");
    let err = match PrivatePostgres::start_with(&closed.path().join("pg"), Options::EPHEMERAL).await
    {
        Ok(server) => {
            let _ = server.stop();
            panic!("started in a folder its user cannot reach");
        }
        Err(err) => err,
    };
    let message = format!("{err:#}");
    assert!(message.contains("cannot reach"), "{message}");
    assert!(message.contains("chmod o+x"), "{message}");
}

#[tokio::test]
async fn nothing_listening_means_no_server() {
    // A port that was free a moment ago; nothing listens on it now.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    assert!(!server_answers(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).await);
}

#[tokio::test]
async fn each_test_gets_its_own_empty_migrated_database() {
    let a = test_db().await;
    let b = test_db().await;
    assert_ne!(a.name, b.name);
    assert_ne!(a.url, b.url);

    sqlx::query("CREATE TABLE only_in_a (n int)")
        .execute(&a.pool)
        .await
        .expect("create table in a");

    assert_tables(&a, 1).await;
    assert_tables(&b, 0).await;
}

/// Checks that `db` is the database it claims, is migrated and holds
/// `expected` tables of its own.
async fn assert_tables(db: &TestDb, expected: i64) {
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&db.pool)
        .await
        .expect("current database");
    assert_eq!(current, db.name);
    let migrated: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&db.pool)
        .await
        .expect("migrations table");
    assert!(migrated, "{} is migrated", db.name);
    let user_tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables
         WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("count tables");
    assert_eq!(user_tables, expected, "tables in {}", db.name);
}
