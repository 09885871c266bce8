//! Site-day leases: a process claims a day before exporting it; another
//! process leaves a claimed day alone (the service) or waits for it (`sync`);
//! a dead process's claim runs out and its day is taken over; a process that
//! lost its claim cannot write (fencing).

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sonnys_etl::api::model::Transaction;
use sonnys_etl::domain::days::DaySelection;
use sonnys_etl::domain::{AccountName, SiteCode};
use sonnys_etl::progress::Progress;
use sonnys_etl::store::{self, Lease};
use sonnys_etl::sync::{SyncPlan, Syncer};
use tokio_util::sync::CancellationToken;

use crate::support::{day_status, fast_simulator, TestApp};

fn other_process() -> Lease {
    Lease {
        owner: uuid::Uuid::new_v4(),
        term: sonnys_etl::configuration::LEASE,
    }
}

async fn expire(app: &TestApp, date: NaiveDate) {
    sqlx::query(
        "UPDATE sonnys.sync_days SET lease_until = now() - interval '1 second' WHERE business_date = $1",
    )
    .bind(date)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_worker_whose_claim_was_taken_over_cannot_write() {
    let app = TestApp::start(fast_simulator()).await;
    let (account, site) = (
        AccountName::parse("desert").unwrap(),
        SiteCode::parse("D01").unwrap(),
    );
    let date = app.find_day("desert", "D01", |n| n >= 2);
    let pool = &app.db.pool;
    let (a, b, c) = (other_process(), other_process(), other_process());

    assert_eq!(
        store::claim_day(pool, &account, &site, date, a, true)
            .await
            .unwrap(),
        Some(a)
    );
    assert_eq!(
        store::claim_day(pool, &account, &site, date, b, true)
            .await
            .unwrap(),
        None,
        "a live claim holds"
    );
    expire(&app, date).await;
    assert_eq!(
        store::claim_day(pool, &account, &site, date, b, true)
            .await
            .unwrap(),
        Some(b),
        "a dead claim is taken over"
    );

    let records: Vec<Transaction> = app
        .served("desert", "D01", date)
        .into_iter()
        .map(|r| Transaction::from_raw(r).unwrap())
        .collect();
    let tz = app.business_day("desert", "D01", date).timezone;
    let day = store::SiteDay {
        account: &account,
        site: &site,
        timezone: tz,
        date,
    };
    let fenced = store::store_page(pool, day, &records[..1], &[], a)
        .await
        .unwrap();
    assert_eq!(fenced, None, "the old owner's page is refused");
    assert!(!store::heartbeat(pool, &account, &site, date, a)
        .await
        .unwrap());
    store::finish_day(pool, &account, &site, date, 1, None, a)
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing of the old owner's page was written");
    assert_eq!(
        day_status(pool, account.as_str(), site.as_str(), date)
            .await
            .as_deref(),
        Some("running"),
        "the old owner cannot close the day"
    );

    let written = store::store_page(pool, day, &records[1..2], &[], b)
        .await
        .unwrap();
    assert!(written.is_some(), "the new owner writes");
    assert!(store::heartbeat(pool, &account, &site, date, b)
        .await
        .unwrap());
    assert_eq!(
        store::claim_day(pool, &account, &site, date, c, true)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_service_leaves_a_claimed_day_to_its_owner_and_sync_waits_for_it() {
    let app = TestApp::start(fast_simulator()).await;
    let (account, site) = (
        AccountName::parse("desert").unwrap(),
        SiteCode::parse("D01").unwrap(),
    );
    let settings = Arc::new(app.settings());
    let now = chrono::Utc::now();
    let tz = app.business_day("desert", "D01", now.date_naive()).timezone;
    let date = sonnys_etl::domain::days::last_ended_day(tz, now);
    let before = date - chrono::Days::new(1);
    let pool = app.db.pool.clone();
    let other = other_process();
    assert!(store::claim_day(&pool, &account, &site, date, other, true)
        .await
        .unwrap()
        .is_some());

    // The service exports the days nobody holds first, and leaves the
    // claimed one to its owner until its own work is done.
    let service_plan = SyncPlan {
        days: DaySelection::Recent {
            catch_up_days: 2,
            lookback_days: 0,
        },
        accounts: vec!["desert".into()],
        sites: vec!["D01".into()],
    };
    let syncer = Syncer::new(settings.clone(), pool.clone());
    let service = {
        let syncer = syncer.clone();
        tokio::spawn(async move {
            syncer
                .run(&service_plan, &CancellationToken::new(), &Progress::plain())
                .await
                .unwrap()
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while day_status(&pool, account.as_str(), site.as_str(), before)
        .await
        .as_deref()
        != Some("done")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the free day is exported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!service.is_finished(), "the service waits for the held day");
    assert_eq!(
        day_status(&pool, account.as_str(), site.as_str(), date)
            .await
            .as_deref(),
        Some("running"),
        "and does not take it from a live owner"
    );
    store::finish_day(&pool, &account, &site, date, 3, None, other)
        .await
        .unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(20), service)
        .await
        .expect("the service sees the day done")
        .unwrap();
    assert!(summary.ok(), "{summary}");
    assert_eq!(
        (summary.accounts[0].done, summary.accounts[0].done_by_others),
        (2, 1),
        "{summary}"
    );

    // `sync` of a held day waits, and reports it done when the owner finishes it.
    let other = other_process();
    assert!(store::claim_day(&pool, &account, &site, date, other, true)
        .await
        .unwrap()
        .is_some());
    let plan = SyncPlan {
        days: DaySelection::Range {
            from: date,
            to: date,
            missing_only: false,
        },
        accounts: vec!["desert".into()],
        sites: vec!["D01".into()],
    };
    let waiting = tokio::spawn(async move {
        syncer
            .run(&plan, &CancellationToken::new(), &Progress::plain())
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "sync waits for the other process");
    store::finish_day(&pool, &account, &site, date, 3, None, other)
        .await
        .unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("sync sees the day done")
        .unwrap();
    assert!(summary.ok(), "{summary}");
    assert_eq!(summary.accounts[0].done_by_others, 1, "{summary}");
}

#[tokio::test]
async fn a_dead_processs_day_is_taken_over_once_its_claim_runs_out() {
    let app = TestApp::start(fast_simulator()).await;
    let (account, site) = (
        AccountName::parse("desert").unwrap(),
        SiteCode::parse("D01").unwrap(),
    );
    let date = app.find_day("desert", "D01", |n| n > 0);
    assert!(
        store::claim_day(&app.db.pool, &account, &site, date, other_process(), true)
            .await
            .unwrap()
            .is_some()
    );
    expire(&app, date).await;
    let summary = app.sync(date, date, &["desert"], &["D01"]).await;
    assert!(
        summary.ok() && summary.accounts[0].done_by_others == 0,
        "{summary}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored as usize, app.served("desert", "D01", date).len());
}

#[tokio::test]
async fn a_day_another_process_finished_since_it_was_chosen_as_missing_is_not_exported_again() {
    let app = TestApp::start(fast_simulator()).await;
    let (account, site) = (
        AccountName::parse("desert").unwrap(),
        SiteCode::parse("D01").unwrap(),
    );
    let date = app.find_day("desert", "D01", |n| n > 0);
    let pool = &app.db.pool;
    let (a, b) = (other_process(), other_process());
    assert!(store::claim_day(pool, &account, &site, date, a, false)
        .await
        .unwrap()
        .is_some());
    store::finish_day(pool, &account, &site, date, 2, None, a)
        .await
        .unwrap();
    assert_eq!(
        store::claim_day(pool, &account, &site, date, b, false)
            .await
            .unwrap(),
        None,
        "chosen because it was missing: done by now, so left alone"
    );
    assert_eq!(
        store::claim_day(pool, &account, &site, date, b, true)
            .await
            .unwrap(),
        Some(b),
        "chosen whatever its state (a range, the lookback): exported again"
    );
}
