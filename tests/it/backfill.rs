//! The service's backfill (`[backfill] since`), the real binary against the
//! simulator and a real PostgreSQL: it yields to a nightly run that comes
//! due meanwhile and resumes after it, and a restart mid-backfill resumes
//! without exporting a done day again.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use sonnys_etl::domain::days::last_ended_days;
use sonnys_etl::domain::parse_timezone;
use sonnys_etl::rehearsal::simulator::SimulatorConfig;

use crate::support::service::{ConfigFile, ServiceProcess};
use crate::support::{fast_simulator, TestApp};

const CATCH_UP: u32 = 2;
/// Days of each site the backfill covers: 5 sites × 5 days = 25 site-days.
const BACKFILL_DAYS: u64 = 5;
/// Requests per 600 ms of each API id: slow enough that the backfill is
/// still going when the test fires the night or restarts the service. And
/// one site at a time (`sync.max_concurrent_sites = 1`): a site's turn
/// takes all of its 5 days, so the later sites' days are still waiting for
/// their turn then.
const ALLOWANCE: u32 = 6;

fn toml(app: &TestApp, cron: &str, since: NaiveDate) -> String {
    format!(
        "[schedule]\ncron = \"{cron}\"\ntimezone = \"America/Chicago\"\ncatch_up_days = {CATCH_UP}\nlookback_days = 2\nlookback = \"full\"\n\n[server]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"20s\"\n\n[sync]\nmax_concurrent_sites = 1\n\n[backfill]\nsince = \"{since}\"\n\n{}",
        app.config_toml(ALLOWANCE, Duration::from_millis(600))
    )
}

/// A cron expression that fires once a year: only the start-up run happens.
const YEARLY: &str = "0 0 4 1 1 *";

/// Every site: (account, code, first day of its nightly range at `at`).
fn sites(app: &TestApp, at: DateTime<Utc>) -> Vec<(String, String, NaiveDate)> {
    let mut all = Vec::new();
    for account in app.simulator().accounts() {
        for site in account.sites.iter().filter(|s| !s.code.is_empty()) {
            let zone = site.timezone.clone().unwrap_or(account.timezone.clone());
            let (first, _) = last_ended_days(parse_timezone(&zone).unwrap(), at, CATCH_UP);
            all.push((account.name.clone(), site.code.clone(), first));
        }
    }
    all
}

/// The backfill's start: `BACKFILL_DAYS` before the nightly range of the
/// site whose range starts earliest.
fn since(app: &TestApp) -> NaiveDate {
    let first = sites(app, Utc::now()).iter().map(|s| s.2).min().unwrap();
    first - Days::new(BACKFILL_DAYS)
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    account: String,
    site: String,
    date: NaiveDate,
    status: String,
    attempts: i32,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

type RawRow = (
    String,
    String,
    NaiveDate,
    String,
    i32,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

async fn rows(app: &TestApp) -> Vec<Row> {
    let rows: Vec<RawRow> =
        sqlx::query_as(
            "SELECT account, site_code, business_date, status, attempts, started_at, finished_at FROM sonnys.sync_days ORDER BY 1, 2, 3",
        )
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    rows.into_iter()
        .map(|r| Row {
            account: r.0,
            site: r.1,
            date: r.2,
            status: r.3,
            attempts: r.4,
            started_at: r.5,
            finished_at: r.6,
        })
        .collect()
}

/// Whether a row is a backfill day (before its site's nightly range at `at`).
fn is_backfill(app: &TestApp, at: DateTime<Utc>, row: &Row) -> bool {
    sites(app, at)
        .iter()
        .any(|(a, s, first)| *a == row.account && *s == row.site && row.date < *first)
}

/// Every site-day from `since` to the day before each site's nightly range
/// is done, exported once.
fn assert_backfilled(app: &TestApp, at: DateTime<Utc>, since: NaiveDate, rows: &[Row]) {
    for (account, site, first) in sites(app, at) {
        let mut date = since;
        while date < first {
            let row = rows
                .iter()
                .find(|r| r.account == account && r.site == site && r.date == date)
                .unwrap_or_else(|| panic!("{account}/{site} {date} was not backfilled"));
            assert_eq!(row.status, "done", "{row:?}");
            date = date + Days::new(1);
        }
    }
}

#[tokio::test]
async fn a_nightly_run_due_during_the_backfill_goes_first_and_the_backfill_resumes_after_it() {
    let app = TestApp::start(SimulatorConfig {
        build_latency: Duration::from_millis(400),
        ..fast_simulator()
    })
    .await;
    let since = since(&app);
    let config = ConfigFile::new(&toml(&app, YEARLY, since));
    let mut service = ServiceProcess::start(&config.path, &[]);
    service
        .wait_for("run finished", 1, Duration::from_secs(120))
        .await;
    // The backfill is underway: a nightly run comes due a moment later.
    await_backfilled_day(&app, since).await;
    let tick = Utc::now() + chrono::Duration::seconds(2);
    let local = tick.with_timezone(&chrono_tz::America::Chicago);
    use chrono::Timelike;
    config.write(&toml(
        &app,
        &format!(
            "{} {} {} * * *",
            local.second(),
            local.minute(),
            local.hour()
        ),
        since,
    ));
    service.signal("HUP");
    service
        .wait_for("run finished", 2, Duration::from_secs(120))
        .await;
    service
        .wait_for("backfill complete", 1, Duration::from_secs(180))
        .await;
    service.signal("TERM");
    assert!(service
        .exit(Duration::from_secs(30))
        .await
        .unwrap()
        .success());

    let (night_start, night_end): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT started_at, finished_at FROM sonnys.runs ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let all = rows(&app).await;
    assert_backfilled(&app, night_start, since, &all);
    let (backfill, nightly): (Vec<&Row>, Vec<&Row>) =
        all.iter().partition(|r| is_backfill(&app, night_start, r));
    assert!(backfill.len() as u64 >= 5 * BACKFILL_DAYS, "{backfill:?}");
    // The night re-exported its days whole: they finished within its run.
    let nightly_done = nightly.iter().filter_map(|r| r.finished_at).max().unwrap();
    assert!(nightly_done >= night_start && nightly_done <= night_end);
    // No backfill day started while the night ran (but for a claim already
    // on its way to the database as the night began)…
    let on_its_way = night_start + chrono::Duration::milliseconds(500);
    for r in &backfill {
        let started = r.started_at.unwrap();
        assert!(
            started < on_its_way || started > nightly_done,
            "a backfill day started during the nightly run: {r:?} (night {night_start}..{nightly_done})"
        );
    }
    // …and the backfill resumed after it: its days that started after the
    // night began finished after every nightly day.
    let after: Vec<&&Row> = backfill
        .iter()
        .filter(|r| r.started_at.unwrap() > night_start)
        .collect();
    assert!(
        !after.is_empty(),
        "the backfill was done before the night came due; nothing resumed:\n{}",
        service.log().join("\n")
    );
    for r in after {
        assert!(r.finished_at.unwrap() > nightly_done, "{r:?}");
    }
    // Backfill batches are not runs.
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.runs")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(runs, 2);
}

#[tokio::test]
async fn a_restart_mid_backfill_resumes_without_exporting_a_done_day_again() {
    let app = TestApp::start(SimulatorConfig {
        build_latency: Duration::from_millis(400),
        ..fast_simulator()
    })
    .await;
    let since = since(&app);
    let config = ConfigFile::new(&toml(&app, YEARLY, since));
    let mut first = ServiceProcess::start(&config.path, &[]);
    await_backfilled_day(&app, since).await;
    // The operator watches it on /metrics and the status page.
    let endpoint = first.endpoint().await;
    let watched = watch_metrics(&endpoint).await;
    assert_eq!(
        watched.done + watched.remaining,
        5 * BACKFILL_DAYS,
        "{watched:?}"
    );
    assert!(watched.eta_seconds > 0.0, "{watched:?}");
    let page = reqwest::get(format!("{endpoint}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("backfill since {since}")) && page.contains("site-days done"),
        "the status page shows no backfill line:\n{page}"
    );
    first.signal("TERM");
    assert!(first.exit(Duration::from_secs(30)).await.unwrap().success());
    let before = rows(&app).await;
    let done_before: Vec<&Row> = before
        .iter()
        .filter(|r| r.status == "done" && is_backfill(&app, Utc::now(), r))
        .collect();
    assert!(!done_before.is_empty());
    assert!(
        !first.log().iter().any(|l| l.contains("backfill complete")),
        "the backfill finished before the restart"
    );

    // status, the page and plan show the progress.
    let progress = backfill_progress(&config).await;
    assert!(progress.done > 0 && progress.remaining > 0, "{progress:?}");
    assert_eq!(progress.done + progress.remaining, 5 * BACKFILL_DAYS);
    assert!(progress.eta_seconds > 0.0);

    let mut second = ServiceProcess::start(&config.path, &[]);
    second
        .wait_for("backfill complete", 1, Duration::from_secs(180))
        .await;
    second.signal("TERM");
    assert!(second
        .exit(Duration::from_secs(30))
        .await
        .unwrap()
        .success());
    let after = rows(&app).await;
    assert_backfilled(&app, Utc::now(), since, &after);
    let progress = backfill_progress(&config).await;
    assert_eq!((progress.done, progress.remaining), (5 * BACKFILL_DAYS, 0));
    assert!(second.count("backfill progress") > 0);
    // A finished backfill resting through a SIGTERM starts nothing: no
    // error at a clean stop.
    let errors: Vec<String> = second
        .log()
        .into_iter()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    for r in done_before {
        let now = after
            .iter()
            .find(|a| a.account == r.account && a.site == r.site && a.date == r.date)
            .unwrap();
        assert_eq!(now, r, "a day done before the restart was exported again");
        assert_eq!(now.attempts, 1);
    }
}

/// The backfill's progress as an operator reads it: `status --format json`
/// (each account's `backfill`) and `plan --format json` (`backfill` per
/// account), the real binary; the two must agree. Summed over accounts.
async fn backfill_progress(config: &ConfigFile) -> Watched {
    let run = |args: &'static [&'static str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sonnys-etl"));
        command
            .arg("--config")
            .arg(&config.path)
            .args(args)
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1");
        async move {
            let out = tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_else(|e| {
                panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr))
            })
        }
    };
    let status = run(&["status", "--format", "json"]).await;
    let plan = run(&["plan", "--format", "json"]).await;
    let mut sum = Watched::default();
    for account in status["accounts"].as_array().unwrap() {
        let backfill = &account["backfill"];
        let name = account["name"].as_str().unwrap();
        assert_eq!(
            backfill, &plan["backfill"][name],
            "status and plan disagree on {name}'s backfill"
        );
        sum.done += backfill["done"].as_u64().unwrap();
        sum.remaining += backfill["remaining"].as_u64().unwrap();
        sum.eta_seconds = sum
            .eta_seconds
            .max(backfill["eta_seconds"].as_f64().unwrap());
    }
    sum
}

/// The backfill's gauges as `/metrics` shows them, summed over accounts.
#[derive(Debug, Default)]
struct Watched {
    done: u64,
    remaining: u64,
    eta_seconds: f64,
}

/// Read `/metrics` until the backfill's gauges show a done site-day (they
/// are brought up to date within 2 s of a site-day finishing).
async fn watch_metrics(endpoint: &str) -> Watched {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let text = reqwest::get(format!("{endpoint}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut watched = Watched::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            if name.starts_with("sonnys_etl_backfill_site_days{") {
                if name.contains("state=\"done\"") {
                    watched.done += value as u64;
                } else if name.contains("state=\"remaining\"") {
                    watched.remaining += value as u64;
                }
            } else if name.starts_with("sonnys_etl_backfill_eta_seconds{") {
                watched.eta_seconds = watched.eta_seconds.max(value);
            }
        }
        if watched.done > 0 {
            return watched;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/metrics never showed a done backfill site-day:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until a backfill site-day (before `since` + `BACKFILL_DAYS`) is done.
async fn await_backfilled_day(app: &TestApp, since: NaiveDate) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sonnys.sync_days
                             WHERE status = 'done' AND business_date >= $1 AND business_date < $2)",
        )
        .bind(since)
        .bind(since + Days::new(BACKFILL_DAYS))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no backfill site-day done within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
