//! The live record shape: the export lacks the membership flags and status,
//! the summaries carry them. KPIs on hand-worked days with and without
//! summaries, the lookback by summaries, and what the summaries change.

use std::str::FromStr;

use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sonnys_etl::domain::days::{last_ended_day, DaySelection};
use sonnys_etl::domain::parse_timezone;
use sonnys_etl::rehearsal::simulator::{RecordShape, SimulatorConfig};
use sonnys_etl::sync::SyncPlan;
use sqlx::Row;

use crate::support::{fast_simulator, TestApp};

/// A transaction of a hand-worked day: its total, its items (name,
/// department, net), the v1 flags that the export carries (redemption,
/// sale) and the v2 flags and status that only the summaries carry.
struct Hand {
    total: &'static str,
    items: &'static [(&'static str, &'static str, &'static str)],
    v1_redemption: bool,
    v1_sale: bool,
    plan_sale: bool,
    plan_redemption: bool,
    status: &'static str,
}

const WASH: (&str, &str, &str) = ("Express", "Wash", "10.00");

/// Eight transactions whose figures are worked out by hand in
/// `live_shape_kpis_…` below.
const DAY: [Hand; 8] = [
    // 1. A retail wash.
    Hand {
        total: "10.00",
        items: &[WASH],
        v1_redemption: false,
        v1_sale: false,
        plan_sale: false,
        plan_redemption: false,
        status: "Completed",
    },
    // 2. A free wash.
    Hand {
        total: "0.00",
        items: &[("Express", "Wash", "0.00")],
        v1_redemption: false,
        v1_sale: false,
        plan_sale: false,
        plan_redemption: false,
        status: "Completed",
    },
    // 3, 4. Member washes: priced at the wash, paid by the plan.
    Hand {
        total: "12.00",
        items: &[("Deluxe", "Wash", "12.00")],
        v1_redemption: true,
        v1_sale: false,
        plan_sale: false,
        plan_redemption: true,
        status: "Completed",
    },
    Hand {
        total: "15.00",
        items: &[("Ultimate", "Wash", "15.00")],
        v1_redemption: true,
        v1_sale: false,
        plan_sale: false,
        plan_redemption: true,
        status: "Completed",
    },
    // 5. A new membership with its first wash.
    Hand {
        total: "30.00",
        items: &[
            ("Deluxe Club", "Recurring Plan", "30.00"),
            ("Deluxe", "Wash", "0.00"),
        ],
        v1_redemption: false,
        v1_sale: true,
        plan_sale: true,
        plan_redemption: false,
        status: "Completed",
    },
    // 6. An upgrade: a plan sale that is no new membership.
    Hand {
        total: "5.00",
        items: &[("Ultimate Club upgrade", "Recurring Plan", "5.00")],
        v1_redemption: false,
        v1_sale: false,
        plan_sale: true,
        plan_redemption: false,
        status: "Completed",
    },
    // 7. A voided retail wash.
    Hand {
        total: "9.00",
        items: &[("Express", "Wash", "9.00")],
        v1_redemption: false,
        v1_sale: false,
        plan_sale: false,
        plan_redemption: false,
        status: "Voided",
    },
    // 8. Merchandise.
    Hand {
        total: "4.50",
        items: &[("Air freshener", "Merchandise", "4.50")],
        v1_redemption: false,
        v1_sale: false,
        plan_sale: false,
        plan_redemption: false,
        status: "Completed",
    },
];

fn number(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Make the site-day hold exactly `DAY`: the first eight records are
/// rewritten, the others deleted. Returns the date.
fn hand_worked_day(app: &TestApp, account: &str, code: &str) -> NaiveDate {
    let date = app.find_day(account, code, |n| n == 100);
    let api_id = app.account(account).api_id;
    let served = app.served(account, code, date);
    assert_eq!(served.len(), 100);
    for (i, record) in served.iter().enumerate() {
        let id = record["id"].as_str().unwrap();
        let Some(hand) = DAY.get(i) else {
            assert!(app
                .simulator()
                .update_transaction(&api_id, id, |r| *r = Value::Null));
            continue;
        };
        assert!(app.simulator().update_transaction(&api_id, id, |r| {
            r["type"] = json!("Sale");
            r["total"] = number(hand.total);
            r["items"] = hand
                .items
                .iter()
                .map(|(name, department, net)| {
                    json!({"name": name, "sku": null, "department": department, "quantity": 1,
                           "gross": number(net), "net": number(net), "discount": number("0.00"),
                           "tax": number("0.00"), "additionalFee": number("0.00"), "isVoided": false})
                })
                .collect();
            r["tenders"] = json!([]);
            r["discount"] = json!([]);
            r["isRecurringPayment"] = json!(false);
            r["isRecurringRedemption"] = json!(hand.v1_redemption);
            r["isRecurringSale"] = json!(hand.v1_sale);
            r["isPrepaidRedemption"] = json!(false);
            r["isPrepaidSale"] = json!(false);
            r["isRecurringPlanSale"] = json!(hand.plan_sale);
            r["isRecurringPlanRedemption"] = json!(hand.plan_redemption);
            r["transactionStatus"] = json!(hand.status);
        }));
    }
    date
}

/// The daily KPIs of a site-day, in the order of `daily_site_kpis`' figures.
async fn site_kpis(app: &TestApp, account: &str, code: &str, date: NaiveDate) -> Vec<String> {
    let row = sqlx::query(
        "SELECT transactions, total_sales, retail_sales, membership_sales, member_washes, retail_washes,
                free_washes, eligible_washes, new_memberships, conversion_rate, total_washes, plan_sale_washes
           FROM reporting.daily_site_kpis WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account)
    .bind(code)
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let int = |c: &str| row.get::<i32, _>(c).to_string();
    let dec = |c: &str| row.get::<Decimal, _>(c).normalize().to_string();
    vec![
        int("transactions"),
        dec("total_sales"),
        dec("retail_sales"),
        dec("membership_sales"),
        int("member_washes"),
        int("retail_washes"),
        int("free_washes"),
        int("eligible_washes"),
        int("new_memberships"),
        dec("conversion_rate"),
        int("total_washes"),
        int("plan_sale_washes"),
    ]
}

fn figures(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn live_shape_kpis_come_from_the_summaries_and_match_hand_worked_figures() {
    let app = TestApp::start(fast_simulator()).await;
    let date = hand_worked_day(&app, "desert", "D01");
    // The export the live service sends has no v2 flags and no status.
    let served = app.served("desert", "D01", date);
    assert_eq!(served.len(), 8);
    let summary = app.sync(date, date, &["desert"], &["D01"]).await;
    assert!(summary.ok(), "{summary}");

    // 7 counted (the void excluded). Sales without the redemptions' prices:
    // 10 + 0 + 30 + 5 + 4.50 = 49.50, of which plan sales 35. Washes:
    // member 2 (#3, #4), retail 2 (#1, #2), plan-sale 1 (#5), free 1 (#2);
    // eligible 2 + 1 − 1 = 2; one new membership (the upgrade is not one):
    // conversion 1 / 2.
    assert_eq!(
        site_kpis(&app, "desert", "D01", date).await,
        figures(&["7", "49.5", "14.5", "35", "2", "2", "1", "2", "1", "0.5", "5", "1"])
    );
    // The stored flags are the summaries' (the export carried none).
    let voided: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sonnys.transactions
          WHERE account = 'desert' AND business_date = $1 AND transaction_status = 'Voided'",
    )
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(voided, 1);
}

#[tokio::test]
async fn without_summaries_the_kpis_fall_back_to_the_v1_flags_as_documented() {
    let app = TestApp::start(fast_simulator()).await;
    let date = hand_worked_day(&app, "desert", "D01");
    let plan = SyncPlan {
        accounts: vec!["desert".into()],
        sites: vec!["D01".into()],
        ..SyncPlan::range(date, date)
    };
    let summary = app
        .sync_plan(&plan, "[transactions]\nsummaries = false\n")
        .await;
    assert!(summary.ok(), "{summary}");
    assert_eq!(
        app.simulator().counters("desert-demo").summary_requests,
        0,
        "no summary is read"
    );
    // The fallback: redemption = isRecurringRedemption, plan sale =
    // isRecurringSale, status unknown. All 8 count (the void too): sales
    // 10 + 0 + 30 + 5 + 9 + 4.50 = 58.50, plan sales 30 (the upgrade is
    // retail); washes: member 2, retail 3 (#1, #2, the void), plan-sale 1,
    // free 1; eligible 3 + 1 − 1 = 3; conversion 1 / 3.
    assert_eq!(
        site_kpis(&app, "desert", "D01", date).await,
        figures(&["8", "58.5", "28.5", "30", "2", "3", "1", "3", "1", "0.333333", "6", "1"])
    );
}

/// Both record shapes land exactly: the database equals the simulator's
/// full records (v2 flags and status included) whichever shape is served.
#[tokio::test]
async fn both_record_shapes_land_the_same_flags_and_status() {
    for shape in [RecordShape::Live, RecordShape::Spec] {
        let app = TestApp::start(SimulatorConfig {
            shape,
            ..fast_simulator()
        })
        .await;
        let date = app.find_day("northside", "N02", |n| (150..=400).contains(&n));
        let summary = app.sync(date, date, &["northside"], &["N02"]).await;
        assert!(summary.ok(), "{shape:?}: {summary}");
        let served = app.served("northside", "N02", date);
        let rows = sqlx::query(
            "SELECT id, transaction_status, is_recurring_plan_sale, is_recurring_plan_redemption
               FROM sonnys.transactions WHERE account = 'northside' AND site_code = 'N02' AND business_date = $1",
        )
        .bind(date)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), served.len(), "{shape:?}");
        let truth: std::collections::HashMap<&str, &Value> = served
            .iter()
            .map(|r| (r["id"].as_str().unwrap(), r))
            .collect();
        for row in &rows {
            let id: String = row.get("id");
            let r = truth[id.as_str()];
            let status = r["transactionStatus"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            assert_eq!(
                row.get::<Option<String>, _>("transaction_status"),
                status,
                "{shape:?} {id}"
            );
            assert_eq!(
                row.get::<Option<bool>, _>("is_recurring_plan_sale"),
                r["isRecurringPlanSale"].as_bool(),
                "{shape:?} {id}"
            );
            assert_eq!(
                row.get::<Option<bool>, _>("is_recurring_plan_redemption"),
                r["isRecurringPlanRedemption"].as_bool(),
                "{shape:?} {id}"
            );
        }
    }
}

/// The last `n` ended days of a site, newest first.
fn last_days(app: &TestApp, account: &str, code: &str, n: u64) -> Vec<NaiveDate> {
    let site = app.site(account, code);
    let zone = site
        .timezone
        .unwrap_or_else(|| app.account(account).timezone);
    let last = last_ended_day(parse_timezone(&zone).unwrap(), Utc::now());
    (0..n).map(|back| last - chrono::Days::new(back)).collect()
}

/// When each site-day of the account last finished exporting.
async fn finished(
    app: &TestApp,
    account: &str,
) -> Vec<(String, NaiveDate, Option<chrono::DateTime<Utc>>)> {
    sqlx::query_as(
        "SELECT site_code, business_date, finished_at FROM sonnys.sync_days
          WHERE account = $1 ORDER BY site_code, business_date",
    )
    .bind(account)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_lookback_re_exports_only_the_site_days_whose_summaries_changed() {
    let app = TestApp::start(fast_simulator()).await;
    let api_id = app.account("desert").api_id;
    let nightly = SyncPlan {
        days: DaySelection::Recent {
            catch_up_days: 3,
            lookback_days: 3,
        },
        accounts: vec!["desert".into()],
        sites: vec!["D01".into(), "D02".into()],
    };
    let first = app.sync_plan(&nightly, "").await;
    assert!(first.ok(), "{first}");
    let account = &first.accounts[0];
    assert_eq!(account.done, 6, "{first}");

    // Late changes: a sale voided at D01 and one repriced at D02, on the
    // most recent ended day of each (still in the lookback after any
    // midnight that may pass during the test).
    let pick = |code: &str| {
        let date = last_days(&app, "desert", code, 1)[0];
        let served = app.served("desert", code, date);
        let record = served
            .iter()
            .find(|r| {
                r["transactionStatus"] == "Completed"
                    && r["isRecurringPlanRedemption"] == false
                    && Decimal::from_str(&r["total"].to_string()).unwrap() > Decimal::ZERO
            })
            .unwrap_or_else(|| panic!("a completed sale at {code} {date}"));
        (date, record["id"].as_str().unwrap().to_owned())
    };
    let (void_date, void_id) = pick("D01");
    let (reprice_date, reprice_id) = pick("D02");
    assert!(app
        .simulator()
        .update_transaction(&api_id, &void_id, |r| r["transactionStatus"] =
            json!("Voided")));
    assert!(app
        .simulator()
        .update_transaction(&api_id, &reprice_id, |r| r["total"] = number("1.23")));
    app.simulator().clear_job_cache();
    let before = finished(&app, "desert").await;
    let jobs_before = app.simulator().counters(&api_id).load_jobs;

    let second = app.sync_plan(&nightly, "").await;
    assert!(second.ok(), "{second}");
    let account = &second.accounts[0];
    assert_eq!((account.changed, account.unchanged), (2, 4), "{second}");
    // Only the two changed site-days were exported again.
    let after = finished(&app, "desert").await;
    let redone: Vec<(String, NaiveDate)> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.2 != a.2)
        .map(|(_, a)| (a.0.clone(), a.1))
        .collect();
    assert_eq!(
        redone,
        vec![
            ("D01".to_owned(), void_date),
            ("D02".to_owned(), reprice_date)
        ]
    );
    assert!(app.simulator().counters(&api_id).load_jobs > jobs_before);
    let status: Option<String> = sqlx::query_scalar(
        "SELECT transaction_status FROM sonnys.transactions WHERE account = 'desert' AND id = $1",
    )
    .bind(&void_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(status.as_deref(), Some("Voided"));
    let repriced: Decimal = sqlx::query_scalar(
        "SELECT total FROM sonnys.transactions WHERE account = 'desert' AND id = $1",
    )
    .bind(&reprice_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(repriced, Decimal::new(123, 2));

    // A night without changes exports nothing: every day is checked.
    app.simulator().clear_job_cache();
    let jobs = app.simulator().counters(&api_id).load_jobs;
    let quiet = app.sync_plan(&nightly, "").await;
    assert!(quiet.ok(), "{quiet}");
    assert_eq!(quiet.accounts[0].unchanged, 6, "{quiet}");
    assert_eq!(app.simulator().counters(&api_id).load_jobs, jobs);

    // A tender renamed at the same total: no summary shows it, so the
    // nightly check misses it, and the full lookback picks it up.
    let date = last_days(&app, "desert", "D01", 1)[0];
    let served = app.served("desert", "D01", date);
    let paid = served
        .iter()
        .find(|r| r["tenders"].as_array().is_some_and(|t| !t.is_empty()))
        .unwrap();
    let paid_id = paid["id"].as_str().unwrap().to_owned();
    assert!(app.simulator().update_transaction(&api_id, &paid_id, |r| {
        r["tenders"][0]["tender"] = json!("Fleet Card")
    }));
    app.simulator().clear_job_cache();
    let tender = || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT tender FROM sonnys.transaction_tenders WHERE account = 'desert' AND transaction_id = $1 AND line_no = 1",
        )
        .bind(&paid_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
    };
    let missed = app.sync_plan(&nightly, "").await;
    assert_eq!(missed.accounts[0].unchanged, 6, "{missed}");
    assert_ne!(tender().await.as_deref(), Some("Fleet Card"));
    let full = app
        .sync_plan(&nightly, "[schedule]\nfull_lookback_every = \"1ms\"\n")
        .await;
    assert!(full.ok(), "{full}");
    assert!(full.accounts[0].full_lookback, "{full}");
    assert_eq!(tender().await.as_deref(), Some("Fleet Card"));
}

/// A transaction gone from the export but still in the summaries (a cached
/// summary page, read again within its 10 minutes): the day is read twice,
/// then fails naming the id, and stays `done` with its rows whole. Once
/// both agree, the stored row the source no longer has is removed.
#[tokio::test]
async fn export_and_summaries_that_disagree_fail_the_day_naming_the_id_and_it_stays_done() {
    let app = TestApp::start(fast_simulator()).await;
    let api_id = app.account("desert").api_id;
    let date = app.find_day("desert", "D01", |n| (150..=400).contains(&n));
    let first = app.sync(date, date, &["desert"], &["D01"]).await;
    assert!(first.ok(), "{first}");
    let served = app.served("desert", "D01", date);
    let gone = served[served.len() / 2]["id"].as_str().unwrap().to_owned();
    assert!(app
        .simulator()
        .update_transaction(&api_id, &gone, |r| *r = Value::Null));
    app.simulator().clear_export_jobs();

    let second = app.sync(date, date, &["desert"], &["D01"]).await;
    assert!(!second.ok(), "{second}");
    let error = &second.accounts[0].failures[0].error;
    assert!(
        error.contains(&gone) && error.contains("in the summaries but not exported"),
        "{error}"
    );
    let (status, last_error): (String, Option<String>) = sqlx::query_as(
        "SELECT status, last_error FROM sonnys.sync_days WHERE account = 'desert' AND site_code = 'D01' AND business_date = $1",
    )
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(status, "done", "the day's rows are whole: it stays done");
    assert!(last_error.is_some_and(|e| e.contains(&gone)));
    let stored = |id: String| {
        let pool = app.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM sonnys.transactions WHERE account = 'desert' AND id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(stored(gone.clone()).await, 1, "nothing stored is lost");

    // Both caches expired: export and summaries agree the transaction is
    // gone, and so is its row.
    app.simulator().clear_job_cache();
    let third = app.sync(date, date, &["desert"], &["D01"]).await;
    assert!(third.ok(), "{third}");
    assert_eq!(stored(gone).await, 0);
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sonnys.transactions WHERE account = 'desert' AND site_code = 'D01' AND business_date = $1",
    )
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(count as usize, app.served("desert", "D01", date).len());
}
