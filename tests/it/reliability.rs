//! What a hostile or broken world does to an export, and what the product
//! does about it: short, null and empty pages, absurd totals, NUL
//! characters, records dated outside their window, a database outage in
//! the middle of a sync, and rows left `running` by a process that died.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sonnys_etl::configuration::{Keys, Settings, Sources};
use sonnys_etl::progress::Progress;
use sonnys_etl::rehearsal::simulator::{Faults, SimulatorConfig};
use sonnys_etl::sync::{SyncPlan, Syncer};
use tokio_util::sync::CancellationToken;

use crate::support::{fast_simulator, TestApp};

fn with_faults(faults: Faults) -> SimulatorConfig {
    SimulatorConfig {
        faults: Faults {
            empty_strings: true,
            ..faults
        },
        ..fast_simulator()
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// Transactions stored for a site-day, and what the simulator serves for it.
async fn stored_and_served(
    app: &TestApp,
    account: &str,
    code: &str,
    date: NaiveDate,
) -> (i64, usize) {
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sonnys.transactions WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account)
    .bind(code)
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    (stored, app.served(account, code, date).len())
}

#[tokio::test]
async fn short_null_and_empty_pages_are_asked_for_again_and_the_data_lands_exactly() {
    let app = TestApp::start(with_faults(Faults {
        short_page_rate: 0.5,
        null_data_rate: 0.05,
        ..Faults::default()
    }))
    .await;
    let date = app.find_day("northside", "N02", |n| (250..=600).contains(&n));
    let summary = app.sync(date, date, &["northside"], &[]).await;
    assert!(summary.ok(), "{summary}");
    let mut total = 0;
    for code in ["N01", "N02", "N03"] {
        let (stored, served) = stored_and_served(&app, "northside", code, date).await;
        assert_eq!(stored as usize, served, "{code}");
        total += served;
    }
    let injected = app.simulator().counters("northside-demo").short_pages;
    eprintln!(
        "reliability figures: short or null pages: {injected} injected, {} pages stored, {total} records, 0 lost",
        summary.accounts[0].pages
    );
}

#[tokio::test]
async fn a_page_that_stays_short_fails_its_day_naming_window_and_page_and_is_never_done() {
    let app = TestApp::start(with_faults(Faults {
        null_data_rate: 1.0,
        ..Faults::default()
    }))
    .await;
    let date = app.find_day("desert", "D01", |n| n > 0);
    let summary = app.sync(date, date, &["desert"], &["D01"]).await;
    assert!(!summary.ok());
    let error = &summary.accounts[0].failures[0].error;
    eprintln!("reliability figures: null data on every page: the day failed, not done: {error}");
    assert!(
        error.contains("page 1 of window")
            && error.contains("0 of the")
            && error.contains("records due"),
        "{error}"
    );
    let status: String = sqlx::query_scalar(
        "SELECT status FROM sonnys.sync_days WHERE site_code = 'D01' AND business_date = $1",
    )
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(status, "failed");
}

#[tokio::test]
async fn an_absurd_total_fails_the_day_at_once_instead_of_paging_without_end() {
    let app = TestApp::start(with_faults(Faults {
        absurd_total: Some(10_000_000),
        ..Faults::default()
    }))
    .await;
    let date = app.find_day("desert", "D01", |n| n > 0);
    let started = std::time::Instant::now();
    let summary = app.sync(date, date, &["desert"], &["D01"]).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let error = &summary.accounts[0].failures[0].error;
    assert!(
        error.contains("10000000") && error.contains("api.max_total_per_window"),
        "{error}"
    );
    assert!(summary.accounts[0].requests < 10, "{summary}");
}

#[tokio::test]
async fn nul_characters_are_stored_as_escaped_text_and_the_day_is_done() {
    let app = TestApp::start(with_faults(Faults {
        nul_rate: 0.2,
        ..Faults::default()
    }))
    .await;
    let date = app.find_day("northside", "N01", |n| (100..=400).contains(&n));
    let summary = app.sync(date, date, &["northside"], &["N01"]).await;
    assert!(summary.ok(), "{summary}");
    let (stored, served) = stored_and_served(&app, "northside", "N01", date).await;
    assert_eq!(stored as usize, served);
    let escaped = count(
        &app,
        r"SELECT count(*) FROM sonnys.transactions
           WHERE customer_name = 'Jane\u0000Doe' AND raw->>'customerName' = 'Jane\u0000Doe'",
    )
    .await;
    assert!(escaped > 0, "some records carried a NUL");
    eprintln!(
        "reliability figures: NUL characters: {} records injected, {stored} of {served} stored, {escaped} with the NUL kept as text, 0 lost",
        app.simulator().counters("northside-demo").bad_records
    );
}

#[tokio::test]
async fn records_dated_outside_the_window_are_quarantined_not_stored_under_another_day() {
    let app = TestApp::start(with_faults(Faults {
        out_of_window_rate: 0.1,
        ..Faults::default()
    }))
    .await;
    let date = app.find_day("northside", "N01", |n| (100..=400).contains(&n));
    let summary = app.sync(date, date, &["northside"], &["N01"]).await;
    assert!(summary.ok(), "{summary}");
    let (stored, served) = stored_and_served(&app, "northside", "N01", date).await;
    let rejected = count(&app, "SELECT count(*) FROM sonnys.rejected_records").await;
    assert!(rejected > 0);
    assert_eq!(
        stored + rejected,
        served as i64,
        "every record is stored or quarantined"
    );
    assert_eq!(summary.accounts[0].rejected, rejected as u64);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM sonnys.transactions WHERE business_date > '2100-01-01'"
        )
        .await,
        0
    );
    let reason: String = sqlx::query_scalar("SELECT reason FROM sonnys.rejected_records LIMIT 1")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(
        reason.contains("9999-12-31") && reason.contains("outside the requested window"),
        "{reason}"
    );
    eprintln!(
        "reliability figures: out-of-window dates: {} records injected, {rejected} quarantined, {stored} stored, {served} served, 0 lost",
        app.simulator().counters("northside-demo").bad_records
    );
}

#[tokio::test]
async fn a_day_left_running_by_a_dead_process_shows_as_stale_and_is_redone() {
    let app = TestApp::start(fast_simulator()).await;
    let date = app.find_day("desert", "D01", |n| n > 0);
    sqlx::query(
        "INSERT INTO sonnys.sync_days (account, site_code, business_date, status, attempts, started_at, heartbeat_at)
         VALUES ('desert', 'D01', $1, 'running', 1, now() - interval '10 minutes', now() - interval '5 minutes')",
    )
    .bind(date)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let (running, stale): (i32, i32) = sqlx::query_as(
        "SELECT running_days, stale_days FROM reporting.sync_health WHERE account = 'desert' AND site_code = 'D01'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((running, stale), (0, 1));

    // `sync --missing` (and the service's catch-up) redo it.
    let syncer = Syncer::new(Arc::new(app.settings()), app.db.pool.clone());
    let plan = SyncPlan {
        days: sonnys_etl::domain::days::DaySelection::Range {
            from: date,
            to: date,
            missing_only: true,
        },
        accounts: vec!["desert".into()],
        sites: vec!["D01".into()],
    };
    let summary = syncer
        .run(&plan, &CancellationToken::new(), &Progress::plain())
        .await
        .unwrap();
    assert!(summary.ok() && summary.accounts[0].done == 1, "{summary}");
    let (stored, served) = stored_and_served(&app, "desert", "D01", date).await;
    assert_eq!(stored as usize, served);
}

#[tokio::test]
async fn a_sync_rides_out_a_20_second_database_outage_with_every_day_done_and_exact() {
    use sonnys_etl::rehearsal::pgserver::{Options, PrivatePostgres};

    let app = TestApp::start(SimulatorConfig {
        build_latency: Duration::from_millis(200),
        ..fast_simulator()
    })
    .await;
    let dir = crate::support::server_tempdir();
    let server = PrivatePostgres::start_with(dir.path(), Options::EPHEMERAL)
        .await
        .expect("a private PostgreSQL");
    let url = server.url("postgres");
    let toml = app
        .config_toml(20, Duration::from_millis(600))
        .replace(&app.db.url, &url)
        .replace(
            "max_connections = 5\n",
            "max_connections = 5\noutage_timeout = \"2m\"\n",
        );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), toml).unwrap();
    let settings = Settings::load(&Sources {
        file: Some(file.path()),
        env: HashMap::new(),
        keys: Keys::Required,
    })
    .unwrap();
    let pool = sonnys_etl::store::connect(&url, 5).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (today - chrono::Days::new(5), today - chrono::Days::new(2));
    let syncer = Syncer::new(Arc::new(settings), pool.clone());
    let sync = tokio::spawn(async move {
        syncer
            .run(
                &SyncPlan::range(from, to),
                &CancellationToken::new(),
                &Progress::plain(),
            )
            .await
            .unwrap()
    });

    // Stop PostgreSQL once pages are being committed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let pages: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(pages), 0)::bigint FROM sonnys.sync_days")
                .fetch_one(&pool)
                .await
                .unwrap();
        if pages >= 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!sync.is_finished(), "the sync finished before the outage");
    server.stop().expect("stop PostgreSQL");
    tokio::time::sleep(Duration::from_secs(20)).await;
    let server = PrivatePostgres::start_with(dir.path(), Options::EPHEMERAL)
        .await
        .expect("restart PostgreSQL");

    let summary = tokio::time::timeout(Duration::from_secs(120), sync)
        .await
        .expect("the sync finishes after the outage")
        .unwrap();
    assert!(summary.ok(), "{summary}");
    let rows: Vec<(String, String, NaiveDate, String)> =
        sqlx::query_as("SELECT account, site_code, business_date, status FROM sonnys.sync_days")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 5 * 4);
    let mut records = 0;
    for (account, code, date, status) in rows {
        assert_eq!(status, "done", "{account} {code} {date}");
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sonnys.transactions WHERE account = $1 AND site_code = $2 AND business_date = $3",
        )
        .bind(&account)
        .bind(&code)
        .bind(date)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            stored as usize,
            app.served(&account, &code, date).len(),
            "{account} {code} {date}"
        );
        records += stored;
    }
    eprintln!("reliability figures: PostgreSQL stopped for 20 s mid-sync: 20 of 20 site-days done, {records} records stored, 0 lost, 0 duplicated");
    pool.close().await;
    server.stop().unwrap();
}
