//! Washes counted the operator's way, on a chain whose wash items are in
//! departments `Express Washes` and `Full Serve` (none is called `Wash`):
//! through `[reporting] wash_departments`, written by the real binary at
//! `migrate`, and through `[transactions] wash_list`, the API's own
//! classification read from the simulator; `report --departments` shows
//! what counts.

use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sonnys_etl::rehearsal::simulator::SimulatorConfig;
use sonnys_etl::sync::SyncPlan;

use crate::support::service::ConfigFile;
use crate::support::{fast_simulator, TestApp};

const NAMES: [&str; 2] = ["Express Washes", "Full Serve"];

/// The simulated chain with its washes in the operator's departments.
async fn operator_chain() -> TestApp {
    TestApp::start(SimulatorConfig {
        wash_departments: NAMES.iter().map(|n| n.to_string()).collect(),
        ..fast_simulator()
    })
    .await
}

fn sonnys_etl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SONNYS_ETL_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run sonnys-etl")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether a served record holds an item of a wash department.
fn holds_a_wash(record: &Value) -> bool {
    record["items"].as_array().is_some_and(|items| {
        items.iter().any(|i| {
            i["isVoided"] != true && NAMES.iter().any(|n| i["department"].as_str() == Some(*n))
        })
    })
}

fn voided(record: &Value) -> bool {
    record["transactionStatus"]
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("voided"))
}

/// The washes the day's KPIs must show: transactions not voided holding a
/// wash item, whatever its department is called.
fn washes_served(app: &TestApp, date: NaiveDate) -> i64 {
    app.served("northside", "N01", date)
        .iter()
        .filter(|r| !voided(r) && holds_a_wash(r))
        .count() as i64
}

/// total_washes and eligible_washes of N01's day.
async fn washes_stored(app: &TestApp, date: NaiveDate) -> (i64, i64) {
    sqlx::query_as(
        "SELECT coalesce(sum(member_washes + retail_washes + plan_sale_washes), 0)::bigint,
                coalesce(sum(eligible_washes), 0)::bigint
           FROM reporting.daily_site_kpis
          WHERE account = 'northside' AND site_code = 'N01' AND business_date = $1",
    )
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .expect("daily_site_kpis reads")
}

/// Eligible washes worked out from the served records as the KPIs define
/// them: washes that are neither redemptions nor free, the v2 flags first.
fn eligible_served(app: &TestApp, date: NaiveDate) -> i64 {
    let flag = |r: &Value, v2: &str, v1: &str| r[v2].as_bool().or(r[v1].as_bool()).unwrap_or(false);
    app.served("northside", "N01", date)
        .iter()
        .filter(|r| !voided(r) && holds_a_wash(r))
        .filter(|r| !flag(r, "isRecurringPlanRedemption", "isRecurringRedemption"))
        .filter(|r| {
            let plan_sale = flag(r, "isRecurringPlanSale", "isRecurringSale");
            plan_sale || r["total"].as_f64() != Some(0.0)
        })
        .count() as i64
}

fn one_day(date: NaiveDate) -> SyncPlan {
    SyncPlan {
        accounts: vec!["northside".into()],
        sites: vec!["N01".into()],
        ..SyncPlan::range(date, date)
    }
}

#[tokio::test]
async fn departments_named_in_the_configuration_count_as_washes_and_report_shows_them() {
    let app = operator_chain().await;
    let date = app.find_day("northside", "N01", |n| (150..=400).contains(&n));
    let washes = washes_served(&app, date);
    assert!(washes > 50, "a normal day has washes: {washes}");

    // By the default department `wash`, this chain has no wash at all.
    assert!(app.sync_plan(&one_day(date), "").await.ok());
    assert_eq!(washes_stored(&app, date).await, (0, 0));

    let file = ConfigFile::new(&app.config_toml(20, Duration::from_millis(600)));
    let config = file.path.to_str().unwrap().to_owned();
    let day = date.to_string();
    let report = |config: String| {
        let day = day.clone();
        tokio::task::spawn_blocking(move || {
            sonnys_etl(&[
                "report",
                "--config",
                &config,
                "--departments",
                "--from",
                &day,
                "--to",
                &day,
            ])
        })
    };
    let before = report(config.clone()).await.unwrap();
    assert!(before.status.success(), "{}", text(&before));
    let out = String::from_utf8_lossy(&before.stdout).to_string();
    for name in NAMES {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} is listed:\n{out}"));
        assert!(line.trim_end().ends_with("no"), "{line}");
    }
    assert!(out.contains("one of: wash "), "{out}");

    // The operator names their departments; `migrate` writes them and the
    // stored day is counted again at once.
    let file = ConfigFile::new(&format!(
        "{}\n[reporting]\nwash_departments = [\"Express Washes\", \"Full Serve\"]\n",
        app.config_toml(20, Duration::from_millis(600))
    ));
    let config = file.path.to_str().unwrap().to_owned();
    let migrate = tokio::task::spawn_blocking({
        let config = config.clone();
        move || sonnys_etl(&["migrate", "--config", &config])
    })
    .await
    .unwrap();
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert_eq!(
        washes_stored(&app, date).await,
        (washes, eligible_served(&app, date))
    );
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT department FROM reporting.wash_departments ORDER BY department")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(stored, NAMES);

    let after = report(config).await.unwrap();
    assert!(after.status.success(), "{}", text(&after));
    let out = String::from_utf8_lossy(&after.stdout).to_string();
    for name in NAMES {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        assert!(line.trim_end().ends_with("yes"), "{line}");
        // The item count is the served one.
        let items: i64 = app
            .served("northside", "N01", date)
            .iter()
            .filter(|r| !voided(r))
            .flat_map(|r| r["items"].as_array().cloned().unwrap_or_default())
            .filter(|i| i["isVoided"] != true && i["department"] == name)
            .count() as i64;
        assert!(
            line.split_whitespace().any(|w| w == items.to_string()),
            "{line}: {items} items"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("Merchandise") && l.trim_end().ends_with("no")),
        "{out}"
    );

    // An operator's edit of the table is counted too.
    sqlx::query("DELETE FROM reporting.wash_departments WHERE department = 'Full Serve'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (fewer, _) = washes_stored(&app, date).await;
    assert!(fewer > 0 && fewer < washes, "{fewer} of {washes}");
}

/// The wash list's requests for a day: one per 100 listed transactions
/// (those holding a wash item, voided or not) per window, at least one per
/// window.
fn wash_list_requests(app: &TestApp, date: NaiveDate) -> u64 {
    let api_id = app.account("northside").api_id;
    let has_wash_item = |r: &Value| {
        r["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|i| NAMES.iter().any(|n| i["department"].as_str() == Some(*n)))
        })
    };
    app.business_day("northside", "N01", date)
        .windows(Utc::now())
        .iter()
        .map(|w| {
            let at = |t: i64| DateTime::<Utc>::from_timestamp(t, 0).unwrap();
            let listed = app
                .simulator()
                .transactions(&api_id, "N01", at(w.start()), at(w.end()))
                .iter()
                .filter(|r| has_wash_item(r))
                .count() as u64;
            listed.div_ceil(100).max(1)
        })
        .sum()
}

#[tokio::test]
async fn the_apis_wash_list_counts_washes_whatever_their_departments() {
    let app = operator_chain().await;
    let date = app.find_day("northside", "N01", |n| (150..=400).contains(&n));
    let washes = washes_served(&app, date);

    let summary = app
        .sync_plan(&one_day(date), "[transactions]\nwash_list = true\n")
        .await;
    assert!(summary.ok(), "{summary}");
    // No department is configured: the API's classification alone counts.
    assert_eq!(
        washes_stored(&app, date).await,
        (washes, eligible_served(&app, date))
    );
    let counters = app.simulator().counters("northside-demo");
    assert_eq!(counters.type_list_requests, wash_list_requests(&app, date));
    let (days, listed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(washes), 0)::bigint FROM sonnys.wash_list_days
          WHERE account = 'northside' AND site_code = 'N01' AND business_date = $1",
    )
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(days, 1);
    assert!(
        listed >= washes,
        "{listed} listed, {washes} washes not voided"
    );

    // Off (the default), no wash list is asked for.
    let other = app.find_day("northside", "N02", |n| (150..=400).contains(&n));
    let before = app
        .simulator()
        .counters("northside-demo")
        .type_list_requests;
    let plan = SyncPlan {
        accounts: vec!["northside".into()],
        sites: vec!["N02".into()],
        ..SyncPlan::range(other, other)
    };
    assert!(app.sync_plan(&plan, "").await.ok());
    assert_eq!(
        app.simulator()
            .counters("northside-demo")
            .type_list_requests,
        before
    );
}

#[tokio::test]
async fn plan_counts_a_wash_list_request_a_page_without_history() {
    let app = TestApp::start(fast_simulator()).await;
    let at = Utc::now();
    let selection = sonnys_etl::domain::days::DaySelection::Range {
        from: at.date_naive() - chrono::Days::new(3),
        to: at.date_naive() - chrono::Days::new(2),
        missing_only: false,
    };
    let mut per_page = Vec::new();
    for extra in ["", "[transactions]\nwash_list = true\n"] {
        let forecast =
            sonnys_etl::plan::forecast(&app.db.pool, &app.settings_with(extra), selection, at)
                .await
                .expect("forecast");
        per_page.push(forecast.api_ids[0].requests_per_page);
    }
    assert!(
        (per_page[1] - per_page[0] - 1.0).abs() < 1e-9,
        "{per_page:?}"
    );
}
