//! Labour and memberships exported through the simulator into a real
//! PostgreSQL by `sync --data labour,members`, read back through the
//! reporting views and compared with figures worked out by hand.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use sonnys_etl::configuration::{Settings, Sources};
use sonnys_etl::domain::days::last_ended_day;
use sonnys_etl::people::DataKinds;
use sonnys_etl::progress::Progress;
use sonnys_etl::rehearsal::simulator::{
    MemberStatus, People, SimEmployee, SimMember, SimShift, SimStatusChange,
};
use sonnys_etl::sync::{SyncPlan, Syncer};
use tokio_util::sync::CancellationToken;

use crate::support::{fast_simulator, TestApp};

const PHOENIX: chrono_tz::Tz = chrono_tz::America::Phoenix;

fn local(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    PHOENIX
        .from_local_datetime(&date.and_hms_opt(h, m, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn employee(id: i64, name: &str) -> SimEmployee {
    SimEmployee {
        employee_id: id,
        first_name: name.into(),
        last_name: "Test".into(),
    }
}

fn shift(id: i64, site: &str, clock_in: DateTime<Utc>, hours_x2: i64, rate: &str) -> SimShift {
    SimShift {
        employee_id: id,
        site_code: site.into(),
        clock_in,
        clock_out: Some(clock_in + chrono::Duration::minutes(30 * hours_x2)),
        regular_rate: d(rate),
        overtime_eligible: true,
        overtime_rate: d(rate) * d("1.5"),
        modification: None,
        created_in_back_office: None,
    }
}

fn change(id: &str, at: DateTime<Utc>, old: MemberStatus, new: MemberStatus) -> SimStatusChange {
    SimStatusChange {
        recurring_id: id.into(),
        at,
        old_status: old,
        new_status: new,
        employee_name: "Billing Service".into(),
        site_code: "D01".into(),
    }
}

fn people_settings(app: &TestApp, extra: &str) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "{}\n[labour]\nenabled = true\n{extra}\n[members]\nenabled = true\n",
            app.config_toml(20, std::time::Duration::from_millis(600))
        ),
    )
    .unwrap();
    Settings::load(&Sources {
        file: Some(&path),
        env: HashMap::new(),
        keys: sonnys_etl::configuration::Keys::Required,
    })
    .unwrap()
}

async fn sync_people(app: &TestApp, extra: &str) -> sonnys_etl::sync::SyncSummary {
    let settings = people_settings(app, extra);
    let today = Utc::now().date_naive();
    let plan = SyncPlan {
        accounts: vec!["desert".into()],
        ..SyncPlan::range(today, today)
    };
    Syncer::new(Arc::new(settings), app.db.pool.clone())
        .with_data(DataKinds::parse("labour,members").unwrap())
        .run(&plan, &CancellationToken::new(), &Progress::plain())
        .await
        .unwrap()
}

/// (regular_hours, overtime_hours, labour_cost) of a site-day.
async fn labour(app: &TestApp, site: &str, date: NaiveDate) -> (Decimal, Decimal, Decimal) {
    sqlx::query_as(
        "SELECT regular_hours, overtime_hours, labour_cost FROM reporting.daily_site_labour
          WHERE account = 'desert' AND site_code = $1 AND business_date = $2",
    )
    .bind(site)
    .bind(date)
    .fetch_optional(&app.db.pool)
    .await
    .unwrap()
    .unwrap_or_default()
}

#[tokio::test]
async fn labour_and_members_equal_hand_worked_figures_and_an_edited_clock_in_is_corrected_by_the_sweep(
) {
    let app = TestApp::start(fast_simulator()).await;
    let api_id = app.account("desert").api_id;
    let last = last_ended_day(PHOENIX, Utc::now());
    let back = |n: u64| last - Days::new(n);
    // Bob's four 11-hour days lie in one payroll week (Friday to Thursday),
    // all before Ann's and Cy's days at D01.
    let friday = sonnys_etl::rehearsal::simulator::week_start(back(6));
    let bob_days: Vec<NaiveDate> = (0..4).map(|i| friday + Days::new(i)).collect();
    assert!(bob_days[3] <= back(2));
    let ann_d02 = local(back(3), 7, 0);
    app.simulator().set_people(
        &api_id,
        People {
            employees: vec![employee(1, "Ann"), employee(2, "Bob"), employee(3, "Cy")],
            shifts: [
                // Ann: 9 h at D02 (edited to 8 h below), 4 h at D01.
                vec![
                    shift(1, "D02", ann_d02, 18, "15.00"),
                    shift(1, "D01", local(back(1), 10, 0), 8, "15.00"),
                    // Cy: 22:00 to 06:30, over midnight: his clock-in's day.
                    shift(3, "D01", local(back(1), 22, 0), 17, "14.00"),
                ],
                bob_days
                    .iter()
                    .map(|&day| shift(2, "D01", local(day, 6, 0), 22, "12.00"))
                    .collect(),
            ]
            .concat(),
            members: ["1:1", "1:2"]
                .iter()
                .map(|id| SimMember {
                    id: (*id).into(),
                    name: Some(format!("member {id}")),
                    customer_id: None,
                    billing_site_code: "D01".into(),
                    signed_up: local(back(20), 10, 0),
                })
                .collect(),
            changes: vec![
                change(
                    "1:1",
                    local(back(10), 12, 0),
                    MemberStatus::Active,
                    MemberStatus::Cancelled,
                ),
                change(
                    "1:1",
                    local(back(5), 12, 0),
                    MemberStatus::Cancelled,
                    MemberStatus::Active,
                ),
                change(
                    "1:2",
                    local(back(8), 12, 0),
                    MemberStatus::Active,
                    MemberStatus::PaymentFailed,
                ),
                change(
                    "1:2",
                    local(back(7), 12, 0),
                    MemberStatus::PaymentFailed,
                    MemberStatus::Active,
                ),
            ],
        },
    );

    let first = sync_people(&app, "").await;
    assert!(first.ok(), "{first}");
    let report = first.accounts[0].labour.as_ref().unwrap();
    assert!(report.sweep, "the first export reads every employee");
    assert_eq!(
        labour(&app, "D02", back(3)).await,
        (d("9"), d("0"), d("135.00"))
    );

    // Ann's clock-in is moved an hour later in BackOffice; the sweep
    // replaces her day, leaving no trace of the old entry.
    assert!(app.simulator().edit_clock_in(
        &api_id,
        1,
        ann_d02,
        ann_d02 + chrono::Duration::hours(1)
    ));
    let second = sync_people(&app, "sweep_every = \"1s\"").await;
    assert!(second.ok(), "{second}");
    assert_eq!(
        labour(&app, "D02", back(3)).await,
        (d("8"), d("0"), d("120.00"))
    );
    let ann_entries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sonnys.clock_entries WHERE account = 'desert' AND employee_id = 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(ann_entries, 2, "the entry at the old clock-in is gone");

    // D01 the day before last: Ann 4 h × 15 + Cy 8.5 h × 14 (his shift
    // ends the next morning, and still belongs to this day).
    assert_eq!(
        labour(&app, "D01", back(1)).await,
        (d("12.5"), d("0"), d("179.00"))
    );
    assert_eq!(labour(&app, "D01", last).await.2, d("0"));
    // Bob's week: 44 hours, 40 regular at 12.00 and 4 overtime at 18.00.
    let mut week = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for day in &bob_days {
        let (r, o, c) = labour(&app, "D01", *day).await;
        week = (week.0 + r, week.1 + o, week.2 + c);
    }
    assert_eq!(week, (d("40"), d("4"), d("552.00")));

    // Members at D01, day by day; D02 bills no member and has no rows.
    let days: Vec<(NaiveDate, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT business_date, active_members, new_members, cancellations, payment_failures, reactivations
           FROM reporting.daily_site_members WHERE account = 'desert' AND site_code = 'D01'
            AND business_date IN ($1, $2, $3, $4, $5) ORDER BY business_date",
    )
    .bind(back(20))
    .bind(back(10))
    .bind(back(8))
    .bind(back(7))
    .bind(back(5))
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        days,
        vec![
            (back(20), 2, 2, 0, 0, 0),
            (back(10), 1, 0, 1, 0, 0),
            (back(8), 0, 0, 0, 1, 0),
            (back(7), 1, 0, 0, 0, 1),
            (back(5), 2, 0, 0, 0, 1),
        ]
    );
    let d02: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM reporting.daily_site_members WHERE account = 'desert' AND site_code = 'D02'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(d02, 0, "a site with no members");

    // `plan` counts the next night's labour and membership requests: a
    // sweep of the three employees (2 requests each for 14 days), the
    // employee list, the night's sign-ups and the status changes.
    let settings = people_settings(&app, "sweep_every = \"1s\"");
    let today = Utc::now().date_naive();
    let forecast = sonnys_etl::plan::forecast(
        &app.db.pool,
        &settings,
        sonnys_etl::domain::days::DaySelection::Range {
            from: today,
            to: today,
            missing_only: false,
        },
        Utc::now(),
    )
    .await
    .unwrap();
    let desert = forecast
        .api_ids
        .iter()
        .find(|f| f.api_id == api_id)
        .unwrap();
    let third = sync_people(&app, "sweep_every = \"1s\"").await;
    let spent = third.accounts[0].labour.as_ref().unwrap().requests
        + third.accounts[0].members.as_ref().unwrap().requests;
    assert_eq!(spent, 1 + 3 * 2 + 1 + 1, "{third}");
    assert!(
        (desert.people_requests - spent as f64).abs() <= 0.1 * spent as f64,
        "forecast {} against {spent} spent",
        desert.people_requests
    );

    // `status` shows both exports with their newest record.
    let snapshot = sonnys_etl::status::Snapshot::load(
        &app.db.pool,
        &settings,
        sonnys_etl::status::SnapshotContext {
            now: Utc::now(),
            stale_after: std::time::Duration::from_secs(36 * 3600),
            next_run: None,
            last_run: None,
            current_run: None,
        },
    )
    .await
    .unwrap();
    let mut text = Vec::new();
    sonnys_etl::status::text::table(&snapshot, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let zone = settings.schedule.schedule.timezone();
    let newest_clock_in = bob_days
        .iter()
        .map(|&day| local(day, 6, 0))
        .chain([local(back(1), 22, 0)])
        .max()
        .unwrap()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("labour: last export ")
                && l.contains(&format!("newest record {newest_clock_in}"))),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("members: last export ")
                && !l.contains("never done")),
        "{text}"
    );

    // The labour and membership requests ran at the lowest priority and
    // drew no 429.
    assert_eq!(app.simulator().counters(&api_id).rate_limited, 0);
}

/// Ann's clock entries as stored: (clock_in, clock_out, regular_hours).
async fn ann_entries(app: &TestApp) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>, Decimal)> {
    sqlx::query_as(
        "SELECT clock_in, clock_out, regular_hours FROM sonnys.clock_entries
          WHERE account = 'desert' AND employee_id = 1 ORDER BY clock_in",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_open_shift_is_stored_with_no_clock_out_and_replaced_once_it_closes() {
    let app = TestApp::start(fast_simulator()).await;
    let api_id = app.account("desert").api_id;
    let last = last_ended_day(PHOENIX, Utc::now());
    // Ann clocked in at 08:00 on the last ended day and, as far as
    // BackOffice knows, is still on shift.
    let clock_in = local(last, 8, 0);
    let mut open = shift(1, "D01", clock_in, 8, "15.00");
    open.clock_out = None;
    let people = |shift: SimShift| People {
        employees: vec![employee(1, "Ann")],
        shifts: vec![shift],
        ..People::default()
    };
    app.simulator().set_people(&api_id, people(open.clone()));

    let first = sync_people(&app, "").await;
    assert!(first.ok(), "{first}");
    assert_eq!(ann_entries(&app).await, [(clock_in, None, d("0"))]);
    assert_eq!(labour(&app, "D01", last).await, (d("0"), d("0"), d("0")));

    // She clocks out at 12:00: the next export finishes the same row.
    let closed = SimShift {
        clock_out: Some(local(last, 12, 0)),
        ..open
    };
    app.simulator().set_people(&api_id, people(closed));
    let second = sync_people(&app, "").await;
    assert!(second.ok(), "{second}");
    assert_eq!(
        ann_entries(&app).await,
        [(clock_in, Some(local(last, 12, 0)), d("4"))]
    );
    assert_eq!(
        labour(&app, "D01", last).await,
        (d("4"), d("0"), d("60.00")),
        "counted once"
    );
}

#[tokio::test]
async fn a_clock_entry_without_clock_in_is_quarantined_and_the_employees_other_entries_are_stored()
{
    let app = TestApp::start(fast_simulator()).await;
    let api_id = app.account("desert").api_id;
    let last = last_ended_day(PHOENIX, Utc::now());
    let kept = local(last, 9, 0);
    let lost = local(last - Days::new(1), 9, 0);
    app.simulator().set_people(
        &api_id,
        People {
            employees: vec![employee(1, "Ann")],
            shifts: vec![
                shift(1, "D01", lost, 12, "15.00"),
                shift(1, "D01", kept, 8, "15.00"),
            ],
            ..People::default()
        },
    );
    assert!(app.simulator().serve_without_clock_in(&api_id, 1, lost));

    let summary = sync_people(&app, "").await;
    assert!(summary.ok(), "a quarantine fails nothing: {summary}");
    let report = summary.accounts[0].labour.as_ref().unwrap();
    assert_eq!(report.written.quarantined, 1);
    assert!(
        summary
            .to_string()
            .contains("1 clock entries without a clock-in quarantined in sonnys.rejected_records"),
        "{summary}"
    );
    assert_eq!(
        ann_entries(&app).await,
        [(kept, Some(local(last, 13, 0)), d("4"))]
    );

    // Filed under the day it ended (15:00 the day before last), at its site.
    let rejected: Vec<(String, NaiveDate, String, String)> = sqlx::query_as(
        "SELECT site_code, business_date, record_key, reason FROM sonnys.rejected_records
          WHERE account = 'desert'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let (site, day, key, reason) = &rejected[0];
    assert_eq!((site.as_str(), *day), ("D01", last - Days::new(1)));
    assert!(key.starts_with("clock:1:"), "{key}");
    assert!(
        reason.contains("employee 1") && reason.contains("`clockIn` is null"),
        "{reason}"
    );
    let recorded: i32 = sqlx::query_scalar(
        "SELECT rejected FROM sonnys.people_syncs WHERE account = 'desert' AND data LIKE 'labour%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn a_status_change_sent_as_a_bare_date_lands_at_the_accounts_local_midnight() {
    let mut config = fast_simulator();
    config.faults.bare_date_rate = 1.0;
    let app = TestApp::start(config).await;
    let api_id = app.account("desert").api_id;
    let last = last_ended_day(PHOENIX, Utc::now());
    let back = |n: u64| last - Days::new(n);
    let member = |id: &str| SimMember {
        id: id.into(),
        name: None,
        customer_id: None,
        billing_site_code: "D01".into(),
        signed_up: local(back(20), 10, 0),
    };
    // 1:1 cancels at 15:30 on its own; 1:2's payment fails and recovers on
    // one day, which a date alone could not order: those keep their times.
    let cancel = change(
        "1:1",
        local(back(5), 15, 30),
        MemberStatus::Active,
        MemberStatus::Cancelled,
    );
    let failed = change(
        "1:2",
        local(back(7), 8, 0),
        MemberStatus::Active,
        MemberStatus::PaymentFailed,
    );
    let recovered = change(
        "1:2",
        local(back(7), 20, 0),
        MemberStatus::PaymentFailed,
        MemberStatus::Active,
    );
    app.simulator().set_people(
        &api_id,
        People {
            members: vec![member("1:1"), member("1:2")],
            changes: vec![cancel.clone(), failed.clone(), recovered.clone()],
            ..People::default()
        },
    );

    let summary = sync_people(&app, "").await;
    assert!(summary.ok(), "{summary}");
    let stored: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT recurring_id, status_at FROM sonnys.recurring_status_changes
          WHERE account = 'desert' ORDER BY status_at",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let midnight = local(back(5), 0, 0);
    assert_eq!(
        stored,
        [
            ("1:2".to_string(), failed.at),
            ("1:2".to_string(), recovered.at),
            ("1:1".to_string(), midnight),
        ]
    );
    // What the simulator says a client should store.
    let truth: Vec<DateTime<Utc>> = [&failed, &recovered, &cancel]
        .iter()
        .map(|c| app.simulator().stored_status_at(&api_id, c))
        .collect();
    assert_eq!(truth, stored.iter().map(|s| s.1).collect::<Vec<_>>());
    // The cancellation counts on its own local day.
    let day: (i64, i64) = sqlx::query_as(
        "SELECT active_members, cancellations FROM reporting.daily_site_members
          WHERE account = 'desert' AND site_code = 'D01' AND business_date = $1",
    )
    .bind(back(5))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(day, (1, 1));
}

/// Each `sonnys.people_syncs` row says what its own export spent and
/// received: over a first membership run (every 6-month period of history,
/// the recent sign-ups, the status changes) the rows add up to the requests
/// the simulator saw and the records the run reports, not to running totals.
#[tokio::test]
async fn each_people_syncs_row_holds_what_its_own_export_spent_and_received() {
    let app = TestApp::start(fast_simulator()).await;
    let summary = sync_people(&app, "").await;
    assert!(summary.ok(), "{summary}");
    let counters = app.simulator().counters(&app.account("desert").api_id);
    let (rows, requests, records): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(requests)::bigint, sum(records)::bigint FROM sonnys.people_syncs
          WHERE account = 'desert' AND data LIKE 'member%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(
        rows >= 3,
        "history periods, sign-ups and changes: {rows} rows"
    );
    assert_eq!(requests as u64, counters.member_requests);
    let members = summary.accounts[0].members.clone().unwrap();
    assert_eq!(records as u64, members.listed + members.records);
}
