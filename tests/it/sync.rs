//! `sync` against the simulator lands every transaction of every site-day
//! exactly, with its lines; runs are idempotent; changes replace; failures
//! stay contained.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;
use sonnys_etl::rehearsal::simulator::{Faults, SimulatorConfig};
use sqlx::Row;

use crate::support::{fast_simulator, TestApp};

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn amount(v: &Value) -> Option<Decimal> {
    match v {
        Value::Null => None,
        other => Some(
            other
                .to_string()
                .trim_matches('"')
                .parse()
                .expect("an amount"),
        ),
    }
}

/// Every served record of the site-day is in the database with the same
/// values and the same lines, and nothing else is.
async fn assert_day_landed(app: &TestApp, account: &str, code: &str, date: NaiveDate) -> usize {
    let served = app.served(account, code, date);
    let pool = &app.db.pool;
    let rows = sqlx::query(
        "SELECT id, number, type, completed_at, total, customer_name, customer_id, vehicle_license_plate,
                employee_cashier, employee_greeter, transaction_status, is_recurring_plan_sale,
                is_recurring_plan_redemption, is_recurring_sale, business_date
           FROM sonnys.transactions WHERE account = $1 AND site_code = $2 AND business_date = $3 ORDER BY completed_at, id",
    )
    .bind(account)
    .bind(code)
    .bind(date)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        rows.len(),
        served.len(),
        "{account}/{code} {date}: row count"
    );
    let by_id: std::collections::HashMap<String, &sqlx::postgres::PgRow> =
        rows.iter().map(|r| (r.get::<String, _>("id"), r)).collect();
    for record in &served {
        let id = record["id"].as_str().unwrap();
        let row = by_id.get(id).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(
            row.get::<Option<i64>, _>("number"),
            record["number"].as_i64(),
            "{id} number"
        );
        assert_eq!(
            row.get::<Option<String>, _>("type"),
            text(&record["type"]),
            "{id} type"
        );
        assert_eq!(
            Some(row.get::<Decimal, _>("total")),
            amount(&record["total"]),
            "{id} total"
        );
        let completed: chrono::DateTime<chrono::Utc> = row.get("completed_at");
        assert_eq!(
            completed,
            chrono::DateTime::parse_from_rfc3339(record["completeDate"].as_str().unwrap()).unwrap(),
            "{id} completed_at"
        );
        for (column, field) in [
            ("customer_name", "customerName"),
            ("customer_id", "customerId"),
            ("vehicle_license_plate", "vehicleLicensePlate"),
            ("employee_cashier", "employeeCashier"),
            ("employee_greeter", "employeeGreeter"),
            ("transaction_status", "transactionStatus"),
        ] {
            assert_eq!(
                row.get::<Option<String>, _>(column),
                text(&record[field]),
                "{id} {column}"
            );
        }
        for (column, field) in [
            ("is_recurring_plan_sale", "isRecurringPlanSale"),
            ("is_recurring_plan_redemption", "isRecurringPlanRedemption"),
            ("is_recurring_sale", "isRecurringSale"),
        ] {
            assert_eq!(
                row.get::<Option<bool>, _>(column),
                record[field].as_bool(),
                "{id} {column}"
            );
        }

        let items = sqlx::query("SELECT name, department, quantity, gross, net, discount, tax, is_voided FROM sonnys.transaction_items WHERE account = $1 AND transaction_id = $2 ORDER BY line_no")
            .bind(account).bind(id).fetch_all(pool).await.unwrap();
        let served_items = record["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), served_items.len(), "{id} items");
        for (row, item) in items.iter().zip(&served_items) {
            assert_eq!(row.get::<Option<String>, _>("name"), text(&item["name"]));
            assert_eq!(
                row.get::<Option<String>, _>("department"),
                text(&item["department"])
            );
            for (column, field) in [
                ("quantity", "quantity"),
                ("gross", "gross"),
                ("net", "net"),
                ("discount", "discount"),
                ("tax", "tax"),
            ] {
                assert_eq!(
                    row.get::<Option<Decimal>, _>(column),
                    amount(&item[field]),
                    "{id} item {column}"
                );
            }
            assert_eq!(
                row.get::<Option<bool>, _>("is_voided"),
                item["isVoided"].as_bool()
            );
        }

        let tenders = sqlx::query("SELECT tender, tender_sub_type, amount, change, total, credit_card_last_four FROM sonnys.transaction_tenders WHERE account = $1 AND transaction_id = $2 ORDER BY line_no")
            .bind(account).bind(id).fetch_all(pool).await.unwrap();
        let served_tenders = record["tenders"].as_array().cloned().unwrap_or_default();
        assert_eq!(tenders.len(), served_tenders.len(), "{id} tenders");
        for (row, tender) in tenders.iter().zip(&served_tenders) {
            assert_eq!(
                row.get::<Option<String>, _>("tender"),
                text(&tender["tender"])
            );
            assert_eq!(
                row.get::<Option<String>, _>("tender_sub_type"),
                text(&tender["tenderSubType"])
            );
            for (column, field) in [
                ("amount", "amount"),
                ("change", "change"),
                ("total", "total"),
            ] {
                assert_eq!(
                    row.get::<Option<Decimal>, _>(column),
                    amount(&tender[field]),
                    "{id} tender {column}"
                );
            }
            assert_eq!(
                row.get::<Option<String>, _>("credit_card_last_four"),
                text(&tender["creditCardLastFour"])
            );
        }

        let discounts = sqlx::query("SELECT discount_name, amount, discount_code FROM sonnys.transaction_discounts WHERE account = $1 AND transaction_id = $2 ORDER BY line_no")
            .bind(account).bind(id).fetch_all(pool).await.unwrap();
        let served_discounts = record["discount"].as_array().cloned().unwrap_or_default();
        assert_eq!(discounts.len(), served_discounts.len(), "{id} discounts");
        for (row, discount) in discounts.iter().zip(&served_discounts) {
            let served_amount = match discount.get("discountAmount") {
                Some(v) => amount(v),
                None => amount(&discount["discount"]),
            };
            assert_eq!(
                row.get::<Option<Decimal>, _>("amount"),
                served_amount,
                "{id} discount amount"
            );
            assert_eq!(
                row.get::<Option<String>, _>("discount_name"),
                text(&discount["discountName"])
            );
        }
    }
    served.len()
}

async fn sync_day_status(
    app: &TestApp,
    account: &str,
    code: &str,
    date: NaiveDate,
) -> (String, i32, i32, Option<String>) {
    let r = sqlx::query("SELECT status, transactions, pages, last_error FROM sonnys.sync_days WHERE account = $1 AND site_code = $2 AND business_date = $3")
        .bind(account).bind(code).bind(date).fetch_one(&app.db.pool).await.unwrap();
    (
        r.get("status"),
        r.get("transactions"),
        r.get("pages"),
        r.get("last_error"),
    )
}

#[tokio::test]
async fn every_transaction_of_edge_sized_days_lands_exactly_with_its_lines() {
    let app = TestApp::start(fast_simulator()).await;
    let days = [
        ("empty", app.find_day("northside", "N01", |n| n == 0)),
        (
            "exactly one page",
            app.find_day("northside", "N01", |n| n == 100),
        ),
        (
            "one over a page",
            app.find_day("northside", "N01", |n| n == 101),
        ),
        (
            "a rush day",
            app.find_day("northside", "N01", |n| n >= 1000),
        ),
    ];
    for (what, date) in days {
        let summary = app.sync(date, date, &["northside"], &["N01"]).await;
        assert!(summary.ok(), "{what}: {summary}");
        let landed = assert_day_landed(&app, "northside", "N01", date).await;
        let (status, transactions, pages, error) =
            sync_day_status(&app, "northside", "N01", date).await;
        assert_eq!(
            (status.as_str(), transactions as usize, error),
            ("done", landed, None),
            "{what}"
        );
        // One page per 100 transactions of each export window (a fall-back
        // day has two windows), and at least one per window.
        let day = app.business_day("northside", "N01", date);
        let api_id = app.account("northside").api_id;
        let expected_pages: usize = day
            .windows(chrono::Utc::now())
            .iter()
            .map(|w| {
                let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap();
                app.simulator()
                    .transactions(&api_id, "N01", at(w.start()), at(w.end()))
                    .len()
                    .div_ceil(100)
                    .max(1)
            })
            .sum();
        assert_eq!(pages as usize, expected_pages, "{what}: pages");
    }
    let counters = app.simulator().counters(&app.account("northside").api_id);
    assert_eq!(
        counters.rate_limited, 0,
        "the daemon alone never causes a 429"
    );
}

#[tokio::test]
async fn the_25_hour_fall_back_day_is_exported_in_two_windows_and_lands_whole() {
    // N03 trades around the clock in the account's zone (America/New_York),
    // so its fall-back day really has 25 hours of transactions.
    let mut config = fast_simulator();
    config.max_age_days = 3650;
    let app = TestApp::start(config).await;
    let fall_back = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let day = app.business_day("northside", "N03", fall_back);
    assert_eq!((day.end_exclusive() - day.start()).num_hours(), 25);
    assert_eq!(day.windows(chrono::Utc::now()).len(), 2);
    let summary = app
        .sync(fall_back, fall_back, &["northside"], &["N03"])
        .await;
    assert!(summary.ok(), "{summary}");
    let landed = assert_day_landed(&app, "northside", "N03", fall_back).await;
    assert!(landed > 0);
    // Transactions of the repeated hour (01:00–02:00 twice) are all there.
    let late: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sonnys.transactions WHERE site_code = 'N03' AND business_date = $1
           AND completed_at >= $2",
    )
    .bind(fall_back)
    .bind(day.start() + chrono::Duration::hours(24))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(late > 0, "the 25th hour was exported");
}

#[tokio::test]
async fn a_second_run_over_unchanged_days_rewrites_nothing() {
    let app = TestApp::start(fast_simulator()).await;
    let to = chrono::Utc::now().date_naive() - chrono::Days::new(2);
    let from = to - chrono::Days::new(1);
    let first = app.sync(from, to, &["desert"], &[]).await;
    assert!(first.ok(), "{first}");
    assert!(first.accounts[0].inserted > 0);
    let before: (i64, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT count(*), max(last_changed_at) FROM sonnys.transactions")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let items_before: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transaction_items")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    app.simulator().clear_job_cache();
    let second = app.sync(from, to, &["desert"], &[]).await;
    assert!(second.ok(), "{second}");
    assert_eq!(
        (second.accounts[0].inserted, second.accounts[0].updated),
        (0, 0)
    );
    assert_eq!(
        second.accounts[0].transactions,
        first.accounts[0].transactions
    );
    let after: (i64, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT count(*), max(last_changed_at) FROM sonnys.transactions")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let items_after: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transaction_items")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(items_before, items_after);
    for code in ["D01", "D02"] {
        for date in [from, to] {
            assert_day_landed(&app, "desert", code, date).await;
        }
    }
}

#[tokio::test]
async fn a_changed_transaction_is_updated_and_its_lines_replaced_not_accumulated() {
    let app = TestApp::start(fast_simulator()).await;
    let date = app.find_day("northside", "N02", |n| (150..=400).contains(&n));
    assert!(app.sync(date, date, &["northside"], &["N02"]).await.ok());
    let served = app.served("northside", "N02", date);
    let target = served
        .iter()
        .find(|r| r["items"].as_array().is_some_and(|i| i.len() >= 2))
        .expect("a multi-item transaction")
        .clone();
    let id = target["id"].as_str().unwrap().to_owned();
    let api_id = app.account("northside").api_id;
    assert!(app.simulator().update_transaction(&api_id, &id, |r| {
        r["transactionStatus"] = Value::from("Voided");
        r["items"].as_array_mut().unwrap().truncate(1);
        r["total"] = serde_json::from_str("1.23").unwrap();
    }));
    app.simulator().clear_job_cache();
    let summary = app.sync(date, date, &["northside"], &["N02"]).await;
    assert!(summary.ok(), "{summary}");
    assert_eq!(
        (summary.accounts[0].inserted, summary.accounts[0].updated),
        (0, 1)
    );
    let (status, total): (Option<String>, Decimal) =
        sqlx::query_as("SELECT transaction_status, total FROM sonnys.transactions WHERE account = 'northside' AND id = $1")
            .bind(&id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status.as_deref(), Some("Voided"));
    assert_eq!(total, "1.23".parse::<Decimal>().unwrap());
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transaction_items WHERE account = 'northside' AND transaction_id = $1")
        .bind(&id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(items, 1);
    assert_day_landed(&app, "northside", "N02", date).await;
}

#[tokio::test]
async fn empty_strings_are_null_and_discount_amount_is_read() {
    let mut config = fast_simulator();
    config.faults = Faults {
        empty_strings: true,
        discount_amount: true,
        ..Faults::default()
    };
    let app = TestApp::start(config).await;
    let date = app.find_day("desert", "D01", |n| (150..=400).contains(&n));
    let served = app.served("desert", "D01", date);
    assert!(
        served.iter().any(|r| r["customerName"] == ""),
        "the simulator sends \"\""
    );
    assert!(served.iter().any(|r| r["discount"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| d.get("discountAmount").is_some()))));
    assert!(app.sync(date, date, &["desert"], &["D01"]).await.ok());
    assert_day_landed(&app, "desert", "D01", date).await;
    let empties: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sonnys.transactions WHERE '' IN (customer_name, customer_id, vehicle_license_plate, employee_cashier, employee_greeter)",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(empties, 0);
    let amounts: i64 = sqlx::query_scalar("SELECT count(amount) FROM sonnys.transaction_discounts")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(amounts > 0, "discount amounts were stored");
}

#[tokio::test]
async fn a_refused_account_stops_alone_and_the_healthy_one_completes() {
    let app = TestApp::start(fast_simulator()).await;
    app.simulator().revoke(&app.account("desert").api_id);
    let date = chrono::Utc::now().date_naive() - chrono::Days::new(3);
    let summary = app.sync(date, date, &[], &[]).await;
    assert!(!summary.ok());
    let desert = summary
        .accounts
        .iter()
        .find(|a| a.account == "desert")
        .unwrap();
    let north = summary
        .accounts
        .iter()
        .find(|a| a.account == "northside")
        .unwrap();
    assert!(
        desert
            .stopped
            .as_ref()
            .is_some_and(|s| s.to_string().contains("403")),
        "{summary}"
    );
    assert!(north.ok(), "{summary}");
    assert_eq!(north.done, 3);
    for code in ["N01", "N02", "N03"] {
        assert_day_landed(&app, "northside", code, date).await;
    }
    let desert_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions WHERE account = 'desert'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(desert_rows, 0);
    assert_eq!(
        app.simulator()
            .counters(&app.account("desert").api_id)
            .requests,
        1,
        "one refused request, no retries"
    );
}

/// The live service sometimes answers a page with `"total": null`: the
/// export keeps asking for the next page until a short one, so a busy day
/// lands whole (it used to read as a total of 0: page 1 stored, the day
/// `done`, the rest lost).
#[tokio::test]
async fn pages_without_a_total_are_followed_until_a_short_one_and_the_day_lands_whole() {
    let mut config = fast_simulator();
    config.faults.job_null_total_rate = 1.0;
    config.faults.null_total_rate = 1.0;
    let app = TestApp::start(config).await;
    let date = app.find_day("northside", "N01", |n| n >= 1000);
    let exact = app.find_day("northside", "N02", |n| n == 100);
    let summary = app.sync(date, date, &["northside"], &["N01"]).await;
    assert!(summary.ok(), "{summary}");
    assert!(assert_day_landed(&app, "northside", "N01", date).await >= 1000);
    // Exactly 100: the full first page is followed by an empty second one.
    let summary = app.sync(exact, exact, &["northside"], &["N02"]).await;
    assert!(summary.ok(), "{summary}");
    assert_eq!(
        assert_day_landed(&app, "northside", "N02", exact).await,
        100
    );
}

#[tokio::test]
async fn transient_faults_are_retried_and_the_data_still_lands_exactly() {
    // Enough requests (about 60) that a 500 is all but certain (the chance
    // of none is 0.9^60 ≈ 0.2 %), at a rate that five in a row on one
    // request, which fails its day, stays as unlikely.
    let config = SimulatorConfig {
        faults: Faults {
            error_500_rate: 0.1,
            fail_rate: 0.1,
            expire_rate: 0.1,
            empty_strings: true,
            ..Faults::default()
        },
        ..fast_simulator()
    };
    let app = TestApp::start(config).await;
    let date = app.find_day("northside", "N01", |n| n >= 1000);
    let from = date - chrono::Days::new(1);
    let sites = ["N01", "N02", "N03"];
    let summary = app.sync(from, date, &["northside"], &sites).await;
    assert!(summary.ok(), "{summary}");
    for code in sites {
        for day in [from, date] {
            assert_day_landed(&app, "northside", code, day).await;
        }
    }
    let c = app.simulator().counters(&app.account("northside").api_id);
    assert!(c.errors_500 > 0, "faults were injected: {c:?}");
    assert_eq!(c.rate_limited, 0);
}

#[tokio::test]
async fn a_rejected_request_fails_its_site_day_loudly_and_keeps_what_was_stored() {
    // The simulator allows only 3 days back here, so an older day is a 422.
    let config = SimulatorConfig {
        max_age_days: 3,
        ..fast_simulator()
    };
    let app = TestApp::start(config).await;
    let recent = chrono::Utc::now().date_naive() - chrono::Days::new(2);
    assert!(app.sync(recent, recent, &["desert"], &["D01"]).await.ok());
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let old = recent - chrono::Days::new(10);
    let summary = app.sync(old, recent, &["desert"], &["D01"]).await;
    assert!(!summary.ok());
    let (status, _, _, error) = sync_day_status(&app, "desert", "D01", old).await;
    assert_eq!(status, "failed");
    assert!(
        error.as_deref().is_some_and(|e| e.contains("422")),
        "{error:?}"
    );
    assert_eq!(
        sync_day_status(&app, "desert", "D01", recent).await.0,
        "done"
    );
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(after >= stored, "nothing already stored was lost");
    assert_day_landed(&app, "desert", "D01", recent).await;
}

/// The brief's figures, computed straight from the served records.
fn expected_kpis(served: &[Value]) -> (i64, Decimal, i64) {
    let counted: Vec<&Value> = served
        .iter()
        .filter(|r| {
            !r["transactionStatus"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("voided"))
        })
        .collect();
    let total_sales = counted
        .iter()
        .filter(|r| r["isRecurringPlanRedemption"] != Value::Bool(true))
        .map(|r| amount(&r["total"]).unwrap())
        .sum();
    let new_memberships = counted
        .iter()
        .filter(|r| {
            r["isRecurringPlanSale"] == Value::Bool(true)
                && r["isRecurringSale"] == Value::Bool(true)
        })
        .count() as i64;
    (counted.len() as i64, total_sales, new_memberships)
}

async fn kpis(app: &TestApp, account: &str, code: &str, date: NaiveDate) -> (i64, Decimal, i64) {
    sqlx::query_as(
        "SELECT transactions::bigint, total_sales, new_memberships::bigint FROM reporting.daily_site_kpis
          WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account)
    .bind(code)
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn kpis_follow_a_resync_that_voids_a_transaction() {
    let app = TestApp::start(fast_simulator()).await;
    let date = app.find_day("desert", "D02", |n| (150..=400).contains(&n));
    assert!(app.sync(date, date, &["desert"], &["D02"]).await.ok());
    let before = kpis(&app, "desert", "D02", date).await;
    assert_eq!(before, expected_kpis(&app.served("desert", "D02", date)));

    // The site voids a paid retail sale after the day closed.
    let served = app.served("desert", "D02", date);
    let sale = served
        .iter()
        .find(|r| {
            r["transactionStatus"] != "Voided"
                && r["isRecurringPlanRedemption"] != Value::Bool(true)
                && amount(&r["total"]).is_some_and(|t| t > Decimal::ZERO)
        })
        .unwrap();
    let id = sale["id"].as_str().unwrap().to_owned();
    let total = amount(&sale["total"]).unwrap();
    app.simulator()
        .update_transaction(&app.account("desert").api_id, &id, |r| {
            r["transactionStatus"] = Value::from("Voided")
        });
    app.simulator().clear_job_cache();
    assert!(app.sync(date, date, &["desert"], &["D02"]).await.ok());

    let after = kpis(&app, "desert", "D02", date).await;
    assert_eq!(after.0, before.0 - 1, "one transaction fewer counts");
    assert_eq!(after.1, before.1 - total, "sales drop by its total");
    assert_eq!(after, expected_kpis(&app.served("desert", "D02", date)));
}

#[tokio::test]
async fn after_another_consumer_overspends_the_api_id_the_sync_backs_off_and_completes() {
    let app = TestApp::start(fast_simulator()).await;
    let date = app.find_day("northside", "N01", |n| n >= 1000);
    let account = app.account("northside");
    let url = format!("{}/site/list", app.sim.base_url());
    // A script on the same API id hammers it for two windows, keeping the
    // server's counter over the limit.
    let neighbour = async {
        let http = reqwest::Client::new();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let until = tokio::time::Instant::now() + std::time::Duration::from_millis(1200);
        while tokio::time::Instant::now() < until {
            let _ = http
                .get(&url)
                .header("X-Sonnys-API-ID", &account.api_id)
                .header("X-Sonnys-API-Key", &account.api_key)
                .send()
                .await;
        }
    };
    let (summary, ()) = tokio::join!(app.sync(date, date, &["northside"], &["N01"]), neighbour);
    assert!(summary.ok(), "{summary}");
    assert!(
        summary.accounts[0].rate_limited > 0,
        "the daemon met the neighbour's 429s: {summary}"
    );
    assert_day_landed(&app, "northside", "N01", date).await;
}

#[tokio::test]
async fn a_site_code_no_account_has_is_an_error_not_a_silent_no_op() {
    let app = TestApp::start(fast_simulator()).await;
    let date = chrono::Utc::now().date_naive() - chrono::Days::new(2);
    let summary = app.sync(date, date, &[], &["N01", "NOPE"]).await;
    assert!(!summary.ok());
    assert_eq!(summary.unknown_sites, ["NOPE"]);
    assert!(summary
        .to_string()
        .contains("site NOPE: no selected account reports this site"));
    assert_day_landed(&app, "northside", "N01", date).await;
}

#[tokio::test]
async fn a_malformed_record_is_quarantined_with_its_reason_and_nothing_stored_is_lost() {
    let app = TestApp::start(fast_simulator()).await;
    let date = app.find_day("northside", "N02", |n| (150..=400).contains(&n));
    assert!(app.sync(date, date, &["northside"], &["N02"]).await.ok());
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    let id = app.served("northside", "N02", date)[5]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.simulator()
        .update_transaction(&app.account("northside").api_id, &id, |r| {
            r["total"] = Value::from("twelve dollars")
        });
    app.simulator().clear_job_cache();
    let summary = app.sync(date, date, &["northside"], &["N02"]).await;
    // The day is complete: every record arrived; one could not be stored.
    assert!(summary.ok(), "{summary}");
    assert_eq!(summary.accounts[0].rejected, 1, "{summary}");
    assert!(
        summary.to_string().contains("1 records quarantined"),
        "{summary}"
    );
    let (status, _, _, _) = sync_day_status(&app, "northside", "N02", date).await;
    assert_eq!(status, "done");
    let (reason, raw, rejected): (String, String, i32) = sqlx::query_as(
        "SELECT r.reason, r.raw, d.rejected FROM sonnys.rejected_records r
           JOIN sonnys.sync_days d USING (account, site_code, business_date)
          WHERE r.account = 'northside' AND r.transaction_id = $1",
    )
    .bind(&id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(
        reason.contains(&id) && reason.contains("twelve dollars"),
        "{reason}"
    );
    assert!(
        raw.contains("twelve dollars"),
        "the raw record is kept: {raw}"
    );
    assert_eq!(rejected, 1);
    let health: i32 = sqlx::query_scalar(
        "SELECT rejected_records FROM reporting.sync_health WHERE account = 'northside' AND site_code = 'N02'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(health, 1);
    // The transaction's earlier, valid version is still there.
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "nothing already stored was lost");

    // Mended at the source: stored, and out of quarantine.
    app.simulator()
        .update_transaction(&app.account("northside").api_id, &id, |r| {
            r["total"] = Value::from(12)
        });
    app.simulator().clear_job_cache();
    assert!(app.sync(date, date, &["northside"], &["N02"]).await.ok());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.rejected_records")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
