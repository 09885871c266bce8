//! `sonnys-etl plan` forecasts from the recorded history, checked against a
//! forecast worked by hand.

use std::process::Command;
use std::time::Duration;

use chrono::{Days, Utc};

use crate::support::{fast_simulator, TestApp};

#[tokio::test]
async fn plan_forecasts_pages_and_requests_from_the_same_weekday_of_recent_weeks() {
    let app = TestApp::start(fast_simulator()).await;
    let pool = &app.db.pool;
    let day = Utc::now().date_naive() - Days::new(3);
    sqlx::query(
        "INSERT INTO sonnys.sites (account, site_id, code, name, timezone, effective_timezone)
         VALUES ('desert', 1, 'D01', 'Camelback', 'America/Phoenix', 'America/Phoenix'),
                ('desert', 2, 'D02', 'Colorado Springs', NULL, 'America/Denver')",
    )
    .execute(pool)
    .await
    .unwrap();
    // D01's history: the same weekday 1–4 weeks back had 3, 5, 4, 4 pages
    // (mean 4); the day before had 10. 52 requests for 26 pages: 2.0 a page.
    for (back, pages, requests) in [(7, 3, 6), (14, 5, 10), (21, 4, 8), (28, 4, 8), (1, 10, 20)] {
        sqlx::query(
            "INSERT INTO sonnys.sync_days (account, site_code, business_date, status, pages, requests, transactions)
             VALUES ('desert', 'D01', $1, 'done', $2, $3, $2 * 100)",
        )
        .bind(day - Days::new(back))
        .bind(pages)
        .bind(requests)
        .execute(pool)
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonnys-etl.toml");
    std::fs::write(&path, app.config_toml(20, Duration::from_millis(600))).unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
            .args([
                "--config",
                path.to_str().unwrap(),
                "plan",
                "--from",
                &day.to_string(),
                "--to",
                &day.to_string(),
                "--format",
                "json",
            ])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let forecast: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let desert = forecast["api_ids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["api_id"] == "desert-demo")
        .unwrap();
    // D01: 4 pages (its weekday's mean); D02, no history: 1 page (one window).
    assert_eq!(desert["site_days"], 2);
    assert_eq!(desert["pages"].as_f64(), Some(5.0));
    // 1 site list + 5 pages × 2.0 requests.
    assert_eq!(desert["requests"].as_f64(), Some(11.0));
    assert_eq!(
        desert["minimum_seconds"].as_f64(),
        Some(0.0),
        "within one window's allowance"
    );
    assert_eq!(
        forecast["per_account"]["northside"].as_f64(),
        Some(1.0),
        "no known sites: the site list"
    );
    // No request was sent to plan.
    assert_eq!(app.simulator().counters("desert-demo").requests, 0);
}

#[test]
fn the_reference_table_is_computed_at_the_ceiling() {
    let output = Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
        .args(["plan", "--table"])
        .env_remove("DATABASE_URL")
        .env_remove("SONNYS_ETL_CONFIG")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}");
    // 100,000 transactions: 1,000 pages, 2.05 export and 1 summary request
    // a page: 3,050 requests, (3050 − 20) / 20 × 15 s.
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("100000"))
        .unwrap();
    assert!(
        row.contains("1000") && row.contains("3050") && row.contains("37m 53s"),
        "{row}"
    );
}

#[tokio::test]
async fn plan_tonight_warns_when_the_next_run_cannot_finish_before_the_deadline() {
    let app = TestApp::start(fast_simulator()).await;
    sqlx::query(
        "INSERT INTO sonnys.sites (account, site_id, code, name, timezone, effective_timezone)
         VALUES ('desert', 1, 'D01', 'Camelback', 'America/Phoenix', 'America/Phoenix')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonnys-etl.toml");
    // One request per 15 s: 2 days without history are 2 pages, 1 + 2 × 3.05
    // requests (export and summaries), at least (7.1 − 1) × 15 s = 91.5 s,
    // past a deadline a minute after the run starts; two minutes after, it
    // fits.
    let toml = |deadline: &str| {
        format!(
            "{}\n[schedule]\ncron = \"0 0 3 * * *\"\ntimezone = \"UTC\"\ncatch_up_days = 2\nlookback_days = 0\ndeadline = \"{deadline}\"\n",
            app.config_toml(1, Duration::from_secs(15))
        )
    };
    let run = |toml: String| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::write(&path, toml).unwrap();
            Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
                .args(["--config", path.to_str().unwrap(), "plan", "--tonight"])
                .env_remove("DATABASE_URL")
                .output()
                .unwrap()
        })
    };
    let tight = run(toml("03:01")).await.unwrap();
    let out = String::from_utf8_lossy(&tight.stdout);
    assert!(tight.status.success(), "{out}");
    assert!(out.contains("WARNING") && out.contains("03:01"), "{out}");
    let roomy = run(toml("03:02")).await.unwrap();
    let out = String::from_utf8_lossy(&roomy.stdout);
    assert!(
        !out.contains("WARNING") && out.contains("finishes before"),
        "{out}"
    );
}

#[tokio::test]
async fn plan_shows_what_the_last_nights_really_took() {
    let app = TestApp::start(fast_simulator()).await;
    let pool = &app.db.pool;
    // Two finished runs, as the service records them at their end.
    let started = Utc::now() - chrono::Duration::hours(30);
    for (back, minutes, requests, outcome) in [
        (0, 14, 131, sonnys_etl::domain::states::RunOutcome::Failed),
        (1, 9, 96, sonnys_etl::domain::states::RunOutcome::Ok),
    ] {
        let start = started - chrono::Duration::days(back);
        let run = sonnys_etl::store::runs::RunFigures {
            started_at: start,
            finished_at: start + chrono::Duration::minutes(minutes),
            outcome,
            site_days: 40,
            done: 40,
            failed: 0,
            transactions: 4_000,
            inserted: 4_000,
            updated: 0,
            pages: 40,
            requests,
            rate_limited: 0,
        };
        sonnys_etl::store::runs::record_run(pool, &run, uuid::Uuid::nil())
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonnys-etl.toml");
    std::fs::write(&path, app.config_toml(20, Duration::from_millis(600))).unwrap();
    let plan = |format: &'static str| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
                .args([
                    "--config",
                    path.to_str().unwrap(),
                    "plan",
                    "--format",
                    format,
                ])
                .env_remove("DATABASE_URL")
                .output()
                .unwrap()
        })
    };
    let table = plan("table").await.unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{text}");
    let nights: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("the last nights"))
        .skip(1)
        .collect();
    assert_eq!(nights.len(), 2, "{text}");
    assert!(
        nights[0].contains("failed") && nights[0].contains("took 14m, 40 site-days, 131 requests"),
        "newest first: {text}"
    );
    assert!(
        nights[1].contains("took 9m, 40 site-days, 96 requests"),
        "{text}"
    );
    let json = plan("json").await.unwrap();
    let forecast: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        forecast["recent_nights"][0]["seconds"].as_f64(),
        Some(840.0)
    );
    assert_eq!(forecast["recent_nights"][1]["requests"], 96);
}
