//! Labour and membership reporting: records written through the store's
//! functions, read back through the `reporting` views and `report --kpis`,
//! against figures worked out by hand below. Sales come from the fixture of
//! `report.rs` (sites N1, N2 of account north in Chicago, S1 of south in New
//! York; washes and sales on 2024-03-10 and 2024-03-11).

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{ConnectOptions, Connection, PgPool};

use sonnys_etl::api::people::{
    ClockEntry, Employee, QuarantinedEntry, RecurringAccount, ServedTime, StatusChange,
};
use sonnys_etl::domain::AccountName;
use sonnys_etl::report::{self, Format, GroupBy, Kpi, ReportArgs};
use sonnys_etl::store::people::{self, Written};

use crate::report::{fixture_db, parse_csv};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid time")
        .with_timezone(&Utc)
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("valid decimal")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).expect("valid date")
}

fn account(name: &str) -> AccountName {
    AccountName::parse(name).expect("valid account")
}

const CHICAGO: Tz = chrono_tz::America::Chicago;
const NEW_YORK: Tz = chrono_tz::America::New_York;

/// An employee's pay: regular and overtime rate.
struct Pay {
    employee_id: i64,
    rate: &'static str,
    overtime_rate: &'static str,
}

const ANA: Pay = Pay {
    employee_id: 101,
    rate: "15.50",
    overtime_rate: "23.25",
};
const BEN: Pay = Pay {
    employee_id: 102,
    rate: "14.25",
    overtime_rate: "21.375",
};
const CY: Pay = Pay {
    employee_id: 201,
    rate: "16.00",
    overtime_rate: "24.00",
};

fn shift(
    pay: &Pay,
    site: &str,
    clock_in: &str,
    clock_out: &str,
    hours: &str,
    overtime_hours: &str,
) -> ClockEntry {
    ClockEntry {
        employee_id: pay.employee_id,
        clock_in: at(clock_in),
        clock_out: Some(at(clock_out)),
        site_code: Some(site.to_string()),
        regular_rate: d(pay.rate),
        regular_hours: d(hours),
        overtime_eligible: true,
        overtime_rate: d(pay.overtime_rate),
        overtime_hours: d(overtime_hours),
        was_modified: false,
        modification_timestamp: None,
        was_created_in_back_office: false,
        raw: json!({"clockIn": clock_in, "clockOut": clock_out, "siteCode": site,
                    "regularRate": pay.rate, "regularHours": hours,
                    "overtimeRate": pay.overtime_rate, "overtimeHours": overtime_hours}),
    }
}

fn employee(pay: &Pay, first: &str, last: &str) -> Employee {
    Employee {
        employee_id: pay.employee_id,
        first_name: Some(first.to_string()),
        last_name: Some(last.to_string()),
    }
}

/// The week of 2024-03-04 (Monday) to 2024-03-10 (Sunday, the day US clocks
/// spring forward), in Chicago:
///
/// Ana (15.50/h) works at both north sites:
///   A1 N1 Mon 08:00–16:00 CST   7.75 h regular            120.125
///   A2 N2 Tue 09:00–17:30 CST   8.50 h                    131.75
///   A3 N1 Sun 09:00–17:00 CDT   8.00 h                    124.00
///   A4 N2 Sun 18:00–21:00 CDT   3.00 h (out 02:00 UTC Mon) 46.50
/// Ben (14.25/h, overtime 21.375/h) works 4 × 10 h at N1, then the Sunday
/// night shift 22:00 CDT – 06:00 CDT Monday: 8 h all overtime (past 40 h in
/// the week), 171.00. It clocks in at 03:00 UTC on Monday 03-11 but belongs
/// to Sunday 03-10, its clock-in day in Chicago.
#[rustfmt::skip]
fn north_shifts() -> (Vec<ClockEntry>, Vec<ClockEntry>) {
    let ana = vec![
        shift(&ANA, "N1", "2024-03-04T08:00:00-06:00", "2024-03-04T16:00:00-06:00", "7.75", "0"),
        shift(&ANA, "N2", "2024-03-05T09:00:00-06:00", "2024-03-05T17:30:00-06:00", "8.50", "0"),
        shift(&ANA, "N1", "2024-03-10T09:00:00-05:00", "2024-03-10T17:00:00-05:00", "8.00", "0"),
        shift(&ANA, "N2", "2024-03-10T18:00:00-05:00", "2024-03-10T21:00:00-05:00", "3.00", "0"),
    ];
    let ben = vec![
        shift(&BEN, "N1", "2024-03-04T08:00:00-06:00", "2024-03-04T18:00:00-06:00", "10.00", "0"),
        shift(&BEN, "N1", "2024-03-05T08:00:00-06:00", "2024-03-05T18:00:00-06:00", "10.00", "0"),
        shift(&BEN, "N1", "2024-03-06T08:00:00-06:00", "2024-03-06T18:00:00-06:00", "10.00", "0"),
        shift(&BEN, "N1", "2024-03-07T08:00:00-06:00", "2024-03-07T18:00:00-06:00", "10.00", "0"),
        shift(&BEN, "N1", "2024-03-10T22:00:00-05:00", "2024-03-11T06:00:00-05:00", "0", "8.00"),
    ];
    (ana, ben)
}

/// Cy at S1 (New York), exported for 2024-03-09..=03-10 twice. The first
/// export has Sunday 06:00–14:00 EDT (8 h, 128.00) and Saturday 08:00–12:00
/// EST (4 h, 64.00). By the second, a manager has moved Sunday's clock-in to
/// 07:00 (7 h, 112.00): a new key, and the 06:00 row must go. The second
/// export also brings Friday's entry (a padded day, outside the window).
#[rustfmt::skip]
fn south_exports() -> (Vec<ClockEntry>, Vec<ClockEntry>) {
    let saturday = shift(&CY, "S1", "2024-03-09T08:00:00-05:00", "2024-03-09T12:00:00-05:00", "4.00", "0");
    let first = vec![
        saturday.clone(),
        shift(&CY, "S1", "2024-03-10T06:00:00-04:00", "2024-03-10T14:00:00-04:00", "8.00", "0"),
    ];
    let mut edited = shift(&CY, "S1", "2024-03-10T07:00:00-04:00", "2024-03-10T14:00:00-04:00", "7.00", "0");
    edited.was_modified = true;
    edited.modification_timestamp = Some(at("2024-03-11T09:00:00-04:00"));
    let second = vec![
        shift(&CY, "S1", "2024-03-08T08:00:00-05:00", "2024-03-08T16:00:00-05:00", "8.00", "0"),
        saturday,
        edited,
    ];
    (first, second)
}

fn member(id: &str, site: &str, sign_up: Option<&str>, status: &str) -> RecurringAccount {
    RecurringAccount {
        id: id.to_string(),
        name: Some(format!("Member {id}")),
        customer_id: Some(format!("C-{id}")),
        sign_up_date: sign_up.map(|t| ServedTime::Instant(at(t))),
        cancel_date: None,
        status: None,
        status_name: Some(status.to_string()),
        billing_site_id: None,
        billing_site_code: Some(site.to_string()),
        raw: json!({"id": id, "billingSiteCode": site, "signUpDate": sign_up, "statusName": status}),
    }
}

fn change(id: &str, when: &str, old: Option<&str>, new: &str) -> StatusChange {
    StatusChange {
        recurring_id: id.to_string(),
        washbook_account_id: None,
        status_date: ServedTime::Instant(at(when)),
        old_status: old.map(str::to_string),
        new_status: new.to_string(),
        employee_name: Some("Billing Service".to_string()),
        site_code: Some("N1".to_string()),
        raw: json!({"recurring_id": id, "status_date": when, "old_status": old, "new_status": new}),
    }
}

/// Members billed at N1 (Chicago) and S1 (New York); none at N2.
///
/// M4 signs up 2023-12-20, cancels 2024-01-31 20:00 CST (02-01 in UTC),
///    expires 02-10 (not a second cancellation)
/// M5 signs up 2023-12-22, M6 2023-12-28: active throughout, no change
/// M3 signs up 01-02; payment fails 01-15 06:00, declined 01-15 18:00 (one
///    failure), recovers 01-17 (a reactivation)
/// M1 signs up 01-05 21:00 CST (01-06 in UTC), cancels 02-06
/// M2 signs up 01-10, cancels 01-20 23:30 CST (01-21 in UTC), rejoins 02-03
/// M7 signs up at S1 02-01
///
/// N1 active at the end of each day: 12-20 1, 12-22 2, 12-28 3, 01-02 4,
/// 01-05 5, 01-10 6, 01-15 5, 01-17 6, 01-20 5, 01-31 4, 02-03 5, 02-06 4,
/// unchanged in between; the data ends 02-10 (M4's last change).
#[rustfmt::skip]
fn north_members() -> (Vec<RecurringAccount>, Vec<StatusChange>) {
    let members = vec![
        member("M1", "N1", Some("2024-01-05T21:00:00-06:00"), "Cancelled"),
        member("M2", "N1", Some("2024-01-10T10:00:00-06:00"), "Active"),
        member("M3", "N1", Some("2024-01-02T12:00:00-06:00"), "Active"),
        member("M4", "N1", Some("2023-12-20T09:00:00-06:00"), "Expired"),
        member("M5", "N1", Some("2023-12-22T12:00:00-06:00"), "Active"),
        member("M6", "N1", Some("2023-12-28T17:00:00-06:00"), "Active"),
    ];
    let changes = vec![
        change("M1", "2024-02-06T10:00:00-06:00", Some("Active"), "Cancelled"),
        change("M2", "2024-01-20T23:30:00-06:00", Some("Active"), "Cancelled"),
        change("M2", "2024-02-03T09:00:00-06:00", Some("Cancelled"), "Active"),
        change("M3", "2024-01-15T06:00:00-06:00", Some("Active"), "Payment Failed"),
        change("M3", "2024-01-15T18:00:00-06:00", Some("Payment Failed"), "Declined"),
        change("M3", "2024-01-17T09:00:00-06:00", Some("Declined"), "Active"),
        change("M4", "2024-01-31T20:00:00-06:00", Some("Active"), "Cancelled"),
        change("M4", "2024-02-10T11:00:00-06:00", Some("Cancelled"), "Expired"),
    ];
    (members, changes)
}

/// The sales fixture of `report.rs` plus every record above, written the way
/// the export writes them (the south window exported twice).
async fn people_db() -> PgPool {
    let pool = fixture_db().await;
    let (north, south) = (account("north"), account("south"));
    people::upsert_employees(
        &pool,
        &north,
        &[
            employee(&ANA, "Ana", "Alvarez"),
            employee(&BEN, "Ben", "Brown"),
        ],
    )
    .await
    .expect("north employees");
    people::upsert_employees(&pool, &south, &[employee(&CY, "Cy", "Cole")])
        .await
        .expect("south employees");
    let week = date("2024-03-04")..=date("2024-03-10");
    let (ana, ben) = north_shifts();
    people::replace_clock_entries(
        &pool,
        &north,
        CHICAGO,
        ANA.employee_id,
        week.clone(),
        &ana,
        &[],
    )
    .await
    .expect("Ana's week");
    people::replace_clock_entries(&pool, &north, CHICAGO, BEN.employee_id, week, &ben, &[])
        .await
        .expect("Ben's week");
    let (first, second) = south_exports();
    let weekend = date("2024-03-09")..=date("2024-03-10");
    for export in [first, second] {
        people::replace_clock_entries(
            &pool,
            &south,
            NEW_YORK,
            CY.employee_id,
            weekend.clone(),
            &export,
            &[],
        )
        .await
        .expect("Cy's weekend");
    }
    let (members, changes) = north_members();
    people::upsert_recurring_accounts(&pool, &north, CHICAGO, &members)
        .await
        .expect("north members");
    people::upsert_status_changes(&pool, &north, CHICAGO, &changes)
        .await
        .expect("north status changes");
    people::upsert_recurring_accounts(
        &pool,
        &south,
        NEW_YORK,
        &[member(
            "M7",
            "S1",
            Some("2024-02-01T10:00:00-05:00"),
            "Active",
        )],
    )
    .await
    .expect("south members");
    pool
}

/// business_date, account, site_code, regular_hours, overtime_hours,
/// regular_cost, overtime_cost, labour_cost, car_washes, cost_per_car, labour_share
type LabourRow = (
    String,
    String,
    Option<String>,
    Decimal,
    Decimal,
    Decimal,
    Decimal,
    Decimal,
    i64,
    Decimal,
    Decimal,
);

#[allow(clippy::too_many_arguments)]
fn labour(
    day: &str,
    account: &str,
    site: &str,
    hours: &str,
    overtime_hours: &str,
    cost: &str,
    overtime_cost: &str,
    labour_cost: &str,
    car_washes: i64,
    cost_per_car: &str,
    labour_share: &str,
) -> LabourRow {
    (
        day.to_string(),
        account.to_string(),
        (!site.is_empty()).then(|| site.to_string()),
        d(hours),
        d(overtime_hours),
        d(cost),
        d(overtime_cost),
        d(labour_cost),
        car_washes,
        d(cost_per_car),
        d(labour_share),
    )
}

async fn site_labour(pool: &PgPool) -> Vec<LabourRow> {
    sqlx::query_as(
        "SELECT business_date::text, account, site_code, regular_hours, overtime_hours, regular_cost,
                overtime_cost, labour_cost, car_washes, cost_per_car, labour_share
           FROM reporting.daily_site_labour ORDER BY account, business_date, site_code",
    )
    .fetch_all(pool)
    .await
    .expect("daily_site_labour reads")
}

#[tokio::test]
async fn labour_costs_a_week_with_overtime_to_the_cent_per_site_day() {
    let pool = people_db().await;
    #[rustfmt::skip]
    let expected = vec![
        // Ana 7.75 h × 15.50 = 120.125 + Ben 10 h × 14.25 = 142.50; no washes that day.
        labour("2024-03-04", "north", "N1", "17.75", "0", "262.625", "0", "262.625", 0, "0", "0"),
        labour("2024-03-05", "north", "N1", "10.00", "0", "142.50", "0", "142.50", 0, "0", "0"),
        // Ana at her other site: 8.50 × 15.50
        labour("2024-03-05", "north", "N2", "8.50", "0", "131.75", "0", "131.75", 0, "0", "0"),
        labour("2024-03-06", "north", "N1", "10.00", "0", "142.50", "0", "142.50", 0, "0", "0"),
        labour("2024-03-07", "north", "N1", "10.00", "0", "142.50", "0", "142.50", 0, "0", "0"),
        // Ana 8 h × 15.50 = 124.00 + Ben's night, 8 h overtime × 21.375 = 171.00:
        // 295.00 over 5 washes = 59.00 a car; 295.00 / 82.49 of sales = 3.576191.
        labour("2024-03-10", "north", "N1", "8.00", "8.00", "124.00", "171.00", "295.00", 5, "59.00", "3.576191"),
        // Ana 3 h × 15.50 = 46.50; one wash, 49.99 of sales.
        labour("2024-03-10", "north", "N2", "3.00", "0", "46.50", "0", "46.50", 1, "46.50", "0.930186"),
        // Washes and no labour: Ben's shift that ran into this day is Sunday's.
        labour("2024-03-11", "north", "N1", "0", "0", "0", "0", "0", 2, "0", "0"),
        labour("2024-03-09", "south", "S1", "4.00", "0", "64.00", "0", "64.00", 0, "0", "0"),
        // Only the edited entry: 7 h × 16.00 = 112.00 over 3 washes = 37.33 a car;
        // 112.00 / 18.00 = 6.222222.
        labour("2024-03-10", "south", "S1", "7.00", "0", "112.00", "0", "112.00", 3, "37.33", "6.222222"),
    ];
    assert_eq!(site_labour(&pool).await, expected);

    // Ben's week at N1: 40 regular hours (570.00) and 8 overtime (171.00).
    let (hours, overtime, cost): (Decimal, Decimal, Decimal) = sqlx::query_as(
        "SELECT sum(regular_hours), sum(overtime_hours), sum(regular_rate * regular_hours + overtime_rate * overtime_hours)
           FROM sonnys.clock_entries WHERE account = 'north' AND employee_id = 102
            AND business_date BETWEEN '2024-03-04' AND '2024-03-10'",
    )
    .fetch_one(&pool)
    .await
    .expect("Ben's week");
    assert_eq!((hours, overtime, cost), (d("40"), d("8"), d("741.00")));
}

#[tokio::test]
async fn a_shift_over_midnight_belongs_to_its_clock_in_day_in_the_sites_zone() {
    let pool = people_db().await;
    let (business_date, clock_in_utc): (NaiveDate, String) = sqlx::query_as(
        "SELECT business_date, to_char(clock_in AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
           FROM sonnys.clock_entries WHERE account = 'north' AND employee_id = 102 AND overtime_hours > 0",
    )
    .fetch_one(&pool)
    .await
    .expect("Ben's night shift");
    assert_eq!(clock_in_utc, "2024-03-11 03:00");
    assert_eq!(business_date, date("2024-03-10"));
}

#[tokio::test]
async fn re_exporting_a_window_replaces_an_edited_clock_in() {
    let pool = fixture_db().await;
    let south = account("south");
    let weekend = date("2024-03-09")..=date("2024-03-10");
    let (first, second) = south_exports();
    let written = people::replace_clock_entries(
        &pool,
        &south,
        NEW_YORK,
        CY.employee_id,
        weekend.clone(),
        &first,
        &[],
    )
    .await
    .expect("first export");
    assert_eq!(
        written,
        Written {
            inserted: 2,
            ..Written::default()
        }
    );
    let written = people::replace_clock_entries(
        &pool,
        &south,
        NEW_YORK,
        CY.employee_id,
        weekend.clone(),
        &second,
        &[],
    )
    .await
    .expect("second export");
    assert_eq!(
        written,
        Written {
            inserted: 1,  // 07:00
            unchanged: 1, // Saturday
            deleted: 1,   // 06:00
            outside: 1,   // Friday: its own window stores it
            updated: 0,
            quarantined: 0,
        }
    );
    let entries: Vec<(String, Decimal, bool)> = sqlx::query_as(
        "SELECT to_char(clock_in AT TIME ZONE 'America/New_York', 'YYYY-MM-DD HH24:MI'), regular_hours, was_modified
           FROM sonnys.clock_entries WHERE account = 'south' ORDER BY clock_in",
    )
    .fetch_all(&pool)
    .await
    .expect("entries read");
    assert_eq!(
        entries,
        vec![
            ("2024-03-09 08:00".to_string(), d("4.00"), false),
            ("2024-03-10 07:00".to_string(), d("7.00"), true),
        ]
    );

    // The same export again changes nothing; an empty one empties the days.
    let again = people::replace_clock_entries(
        &pool,
        &south,
        NEW_YORK,
        CY.employee_id,
        weekend.clone(),
        &second,
        &[],
    )
    .await
    .expect("third export");
    assert_eq!(
        (
            again.inserted,
            again.updated,
            again.deleted,
            again.unchanged
        ),
        (0, 0, 0, 2)
    );
    let emptied =
        people::replace_clock_entries(&pool, &south, NEW_YORK, CY.employee_id, weekend, &[], &[])
            .await
            .expect("empty export");
    assert_eq!(emptied.deleted, 2);
}

/// (clock_out, regular_hours, labour_cost, clock_entries) of Cy's Saturday at S1.
async fn cy_saturday(pool: &PgPool) -> (Option<DateTime<Utc>>, Decimal, Decimal, i64) {
    let (clock_out,): (Option<DateTime<Utc>>,) = sqlx::query_as(
        "SELECT clock_out FROM sonnys.clock_entries WHERE account = 'south' AND employee_id = $1",
    )
    .bind(CY.employee_id)
    .fetch_one(pool)
    .await
    .expect("one entry");
    let (hours, cost, entries): (Decimal, Decimal, i64) = sqlx::query_as(
        "SELECT regular_hours, labour_cost, clock_entries FROM reporting.daily_site_labour
          WHERE account = 'south' AND site_code = 'S1' AND business_date = '2024-03-09'",
    )
    .fetch_one(pool)
    .await
    .expect("Saturday's labour");
    (clock_out, hours, cost, entries)
}

#[tokio::test]
async fn an_open_shift_is_stored_as_given_and_its_closing_replaces_it() {
    let pool = fixture_db().await;
    let south = account("south");
    let weekend = date("2024-03-09")..=date("2024-03-10");
    // Exported while Cy is on shift: no clock-out, the hours reported so far.
    let mut open = shift(
        &CY,
        "S1",
        "2024-03-09T08:00:00-05:00",
        "2024-03-09T12:00:00-05:00",
        "2.50",
        "0",
    );
    open.clock_out = None;
    open.raw["clockOut"] = serde_json::Value::Null;
    let written = people::replace_clock_entries(
        &pool,
        &south,
        NEW_YORK,
        CY.employee_id,
        weekend.clone(),
        &[open],
        &[],
    )
    .await
    .expect("open shift stored");
    assert_eq!(written.inserted, 1);
    // 2.5 h × 16.00, counted once.
    assert_eq!(cy_saturday(&pool).await, (None, d("2.50"), d("40.00"), 1));

    // The next export has the shift closed: the same row, now finished.
    let closed = shift(
        &CY,
        "S1",
        "2024-03-09T08:00:00-05:00",
        "2024-03-09T12:00:00-05:00",
        "4.00",
        "0",
    );
    let written = people::replace_clock_entries(
        &pool,
        &south,
        NEW_YORK,
        CY.employee_id,
        weekend,
        &[closed],
        &[],
    )
    .await
    .expect("closed shift stored");
    assert_eq!(
        (written.inserted, written.updated, written.deleted),
        (0, 1, 0)
    );
    assert_eq!(
        cy_saturday(&pool).await,
        (
            Some(at("2024-03-09T12:00:00-05:00")),
            d("4.00"),
            d("64.00"),
            1
        )
    );
}

fn without_clock_in(pay: &Pay, site: Option<&str>, clock_out: Option<&str>) -> QuarantinedEntry {
    QuarantinedEntry {
        employee_id: pay.employee_id,
        site_code: site.map(str::to_string),
        clock_out: clock_out.map(at),
        reason: format!(
            "clock entry of employee {}: `clockIn` is null",
            pay.employee_id
        ),
        raw: json!({"clockIn": null, "clockOut": clock_out, "siteCode": site.unwrap_or_default(),
                    "regularRate": pay.rate}),
    }
}

/// (site_code, business_date, reason) of the quarantined clock entries.
async fn quarantined(pool: &PgPool) -> Vec<(String, NaiveDate, String)> {
    sqlx::query_as(
        "SELECT site_code, business_date, reason FROM sonnys.rejected_records
          WHERE record_key LIKE 'clock:%' ORDER BY business_date, site_code",
    )
    .fetch_all(pool)
    .await
    .expect("rejected records read")
}

#[tokio::test]
async fn entries_without_a_clock_in_are_quarantined_alone_and_leave_once_mended() {
    let pool = fixture_db().await;
    let north = account("north");
    let week = date("2024-03-04")..=date("2024-03-10");
    let (ana, _) = north_shifts();
    let set_aside = [
        // Clocked out Tuesday 17:30 in Chicago: Tuesday's.
        without_clock_in(&ANA, Some("N2"), Some("2024-03-05T17:30:00-06:00")),
        // No time at all and no site: the first day exported.
        without_clock_in(&ANA, None, None),
        // Clocked out the Tuesday after: its own days' export keeps it.
        without_clock_in(&ANA, Some("N1"), Some("2024-03-12T16:00:00-05:00")),
    ];
    let written = people::replace_clock_entries(
        &pool,
        &north,
        CHICAGO,
        ANA.employee_id,
        week.clone(),
        &ana,
        &set_aside,
    )
    .await
    .expect("entries stored");
    assert_eq!(
        (written.inserted, written.quarantined, written.outside),
        (4, 2, 1)
    );
    let rows = quarantined(&pool).await;
    assert_eq!(
        rows.iter()
            .map(|(s, d, _)| (s.as_str(), *d))
            .collect::<Vec<_>>(),
        [("", date("2024-03-04")), ("N2", date("2024-03-05"))]
    );
    assert!(
        rows.iter()
            .all(|(_, _, r)| r.contains("employee 101") && r.contains("clockIn")),
        "{rows:?}"
    );
    // Ana's labour is whole: 7.75 + 8.50 + 8.00 + 3.00 hours.
    let hours: Decimal = sqlx::query_scalar(
        "SELECT sum(regular_hours) FROM sonnys.clock_entries WHERE account = 'north' AND employee_id = $1",
    )
    .bind(ANA.employee_id)
    .fetch_one(&pool)
    .await
    .expect("hours read");
    assert_eq!(hours, d("27.25"));

    // Seen again, each is one row still.
    people::replace_clock_entries(
        &pool,
        &north,
        CHICAGO,
        ANA.employee_id,
        week.clone(),
        &ana,
        &set_aside,
    )
    .await
    .expect("entries stored again");
    assert_eq!(quarantined(&pool).await.len(), 2);
    // Once the service sends the clock-in, the quarantine of those days empties.
    let written =
        people::replace_clock_entries(&pool, &north, CHICAGO, ANA.employee_id, week, &ana, &[])
            .await
            .expect("mended");
    assert_eq!(written.quarantined, 0);
    assert!(quarantined(&pool).await.is_empty());
}

#[tokio::test]
async fn clock_entries_of_an_unknown_site_take_the_accounts_zone_and_other_employees_are_refused() {
    let pool = fixture_db().await;
    let north = account("north");
    // 05:00 UTC on 03-05 is 23:00 on 03-04 in Chicago, the account's zone.
    let late = shift(
        &ANA,
        "N9",
        "2024-03-05T05:00:00Z",
        "2024-03-05T09:00:00Z",
        "4.00",
        "0",
    );
    let written = people::replace_clock_entries(
        &pool,
        &north,
        CHICAGO,
        ANA.employee_id,
        date("2024-03-04")..=date("2024-03-04"),
        std::slice::from_ref(&late),
        &[],
    )
    .await
    .expect("unknown site stored");
    assert_eq!(written.inserted, 1);
    let day: NaiveDate =
        sqlx::query_scalar("SELECT business_date FROM sonnys.clock_entries WHERE site_code = 'N9'")
            .fetch_one(&pool)
            .await
            .expect("entry read");
    assert_eq!(day, date("2024-03-04"));

    let err = people::replace_clock_entries(
        &pool,
        &north,
        CHICAGO,
        BEN.employee_id,
        date("2024-03-04")..=date("2024-03-04"),
        &[late],
        &[],
    )
    .await
    .expect_err("Ana's entry in Ben's export is refused");
    assert!(err.to_string().contains("employee 101"), "{err}");
}

#[tokio::test]
async fn account_and_chain_labour_recompute_cost_per_car_and_share_from_sums() {
    let pool = people_db().await;
    let rows: Vec<(String, Decimal, i64, Decimal, Decimal)> = sqlx::query_as(
        "SELECT account, labour_cost, car_washes, cost_per_car, labour_share
           FROM reporting.daily_account_labour WHERE business_date = '2024-03-10' ORDER BY account",
    )
    .fetch_all(&pool)
    .await
    .expect("daily_account_labour reads");
    assert_eq!(
        rows,
        vec![
            // N1 + N2: 295.00 + 46.50 = 341.50 over 6 washes = 56.92 (the sites'
            // 59.00 and 46.50 averaged would say 52.75); / 132.48 of sales.
            (
                "north".to_string(),
                d("341.50"),
                6,
                d("56.92"),
                d("2.577748")
            ),
            (
                "south".to_string(),
                d("112.00"),
                3,
                d("37.33"),
                d("6.222222")
            ),
        ]
    );
    let chain: (Decimal, i64, Decimal, Decimal) = sqlx::query_as(
        "SELECT labour_cost, car_washes, cost_per_car, labour_share
           FROM reporting.daily_labour WHERE business_date = '2024-03-10'",
    )
    .fetch_one(&pool)
    .await
    .expect("daily_labour reads");
    // 453.50 over 9 washes, / 150.48 of sales.
    assert_eq!(chain, (d("453.50"), 9, d("50.39"), d("3.013690")));
}

/// business_date, active_members, new_members, cancellations, payment_failures, reactivations
type MemberDay = (String, i64, i64, i64, i64, i64);

async fn member_days(pool: &PgPool, account: &str, site: &str) -> Vec<MemberDay> {
    sqlx::query_as(
        "SELECT business_date::text, active_members, new_members, cancellations, payment_failures, reactivations
           FROM reporting.daily_site_members WHERE account = $1 AND site_code = $2 ORDER BY business_date",
    )
    .bind(account)
    .bind(site)
    .fetch_all(pool)
    .await
    .expect("daily_site_members reads")
}

fn day(d: &str, active: i64, new: i64, cancelled: i64, failed: i64, reactivated: i64) -> MemberDay {
    (d.to_string(), active, new, cancelled, failed, reactivated)
}

#[tokio::test]
async fn members_who_cancel_rejoin_and_recover_are_counted_day_by_day() {
    let pool = people_db().await;
    let days = member_days(&pool, "north", "N1").await;
    // Every day from the first sign-up (2023-12-20) to the last change (2024-02-10).
    assert_eq!(days.len(), 12 + 31 + 10);
    assert_eq!(days.first().map(|r| r.0.as_str()), Some("2023-12-20"));
    assert_eq!(days.last().map(|r| r.0.as_str()), Some("2024-02-10"));
    // active, new, cancelled, payment failed, reactivated
    let on = |d: &str| {
        let r = days.iter().find(|r| r.0 == d).expect(d);
        (r.1, r.2, r.3, r.4, r.5)
    };
    assert_eq!(on("2023-12-21"), (1, 0, 0, 0, 0));
    assert_eq!(on("2024-01-02"), (4, 1, 0, 0, 0));
    // M1 signs up at 21:00 in Chicago: that day, though it is the 6th in UTC.
    assert_eq!(on("2024-01-05"), (5, 1, 0, 0, 0));
    assert_eq!(on("2024-01-06"), (5, 0, 0, 0, 0));
    assert_eq!(on("2024-01-10"), (6, 1, 0, 0, 0));
    // M3's payment fails and is declined the same day: one failure, and not
    // active at the day's end…
    assert_eq!(on("2024-01-15"), (5, 0, 0, 1, 0));
    assert_eq!(on("2024-01-16"), (5, 0, 0, 0, 0));
    // …until it recovers.
    assert_eq!(on("2024-01-17"), (6, 0, 0, 0, 1));
    // M2 cancels at 23:30 in Chicago: on the 20th, not on the 21st as in UTC.
    assert_eq!(on("2024-01-20"), (5, 0, 1, 0, 0));
    assert_eq!(on("2024-01-21"), (5, 0, 0, 0, 0));
    assert_eq!(on("2024-01-31"), (4, 0, 1, 0, 0));
    // M2 rejoins.
    assert_eq!(on("2024-02-03"), (5, 0, 0, 0, 1));
    assert_eq!(on("2024-02-06"), (4, 0, 1, 0, 0));
    // M4 goes from Cancelled to Expired: not a second cancellation.
    assert_eq!(on("2024-02-10"), (4, 0, 0, 0, 0));
    let totals = days.iter().fold((0, 0, 0, 0), |t, r| {
        (t.0 + r.2, t.1 + r.3, t.2 + r.4, t.3 + r.5)
    });
    assert_eq!(totals, (6, 3, 1, 2));
}

#[tokio::test]
async fn a_billing_site_without_members_has_no_member_rows() {
    let pool = people_db().await;
    assert!(member_days(&pool, "north", "N2").await.is_empty());
    // S1's member joins 02-01; its rows run to the chain's last day with data.
    let s1 = member_days(&pool, "south", "S1").await;
    assert_eq!(s1.len(), 10);
    assert_eq!(s1[0], day("2024-02-01", 1, 1, 0, 0, 0));
    assert_eq!(s1[9], day("2024-02-10", 1, 0, 0, 0, 0));
}

/// month, account, site_code, active_at_start, active_at_end, new_members, cancellations, churn_rate
type MonthRow = (String, String, String, i64, i64, i64, i64, Decimal);

#[tokio::test]
async fn monthly_churn_is_cancellations_over_members_at_the_start() {
    let pool = people_db().await;
    let sites: Vec<MonthRow> = sqlx::query_as(
        "SELECT month::text, account, site_code, active_at_start, active_at_end, new_members, cancellations, churn_rate
           FROM reporting.monthly_site_members ORDER BY account, site_code, month",
    )
    .fetch_all(&pool)
    .await
    .expect("monthly_site_members reads");
    let row = |m: &str, a: &str, s: &str, start, end, new, cancelled, churn: &str| {
        (
            m.to_string(),
            a.to_string(),
            s.to_string(),
            start,
            end,
            new,
            cancelled,
            d(churn),
        )
    };
    assert_eq!(
        sites,
        vec![
            // M4, M5, M6 join; nobody was there to churn.
            row("2023-12-01", "north", "N1", 0, 3, 3, 0, "0"),
            // M2 and M4 leave out of 3 at the start: 0.666667.
            row("2024-01-01", "north", "N1", 3, 4, 3, 2, "0.666667"),
            // M1 leaves out of 4; the month ends with the data, on the 10th.
            row("2024-02-01", "north", "N1", 4, 4, 0, 1, "0.25"),
            row("2024-02-01", "south", "S1", 0, 1, 1, 0, "0"),
        ]
    );
    let chain: Vec<(String, i64, i64, i64, Decimal)> = sqlx::query_as(
        "SELECT month::text, active_at_start, active_at_end, cancellations, churn_rate
           FROM reporting.monthly_members ORDER BY month",
    )
    .fetch_all(&pool)
    .await
    .expect("monthly_members reads");
    assert_eq!(
        chain[2],
        // N1 + S1: 1 of 4 (the sites' 0.25 and 0 averaged would say 0.125).
        ("2024-02-01".to_string(), 4, 5, 1, d("0.25"))
    );
    let accounts: Vec<(String, String, Decimal)> = sqlx::query_as(
        "SELECT month::text, account, churn_rate FROM reporting.monthly_account_members
          WHERE month = '2024-01-01' ORDER BY account",
    )
    .fetch_all(&pool)
    .await
    .expect("monthly_account_members reads");
    assert_eq!(
        accounts,
        vec![("2024-01-01".to_string(), "north".to_string(), d("0.666667"))]
    );
}

#[tokio::test]
async fn member_history_rules_for_missing_sign_ups_sites_and_changes() {
    let pool = fixture_db().await;
    let north = account("north");
    let members = vec![
        // No sign-up date: a member from its first change on, not a new member.
        member("X1", "N1", None, "Active"),
        // No change recorded: its current status from sign-up on (never active).
        member("X2", "N1", Some("2024-02-01T12:00:00-06:00"), "Cancelled"),
        // A billing site not in the site list: days in UTC (21:00 in Chicago is the 2nd there).
        member("X3", "N9", Some("2024-02-02T03:00:00Z"), "Active"),
    ];
    people::upsert_recurring_accounts(&pool, &north, CHICAGO, &members)
        .await
        .expect("members");
    people::upsert_status_changes(
        &pool,
        &north,
        CHICAGO,
        &[change(
            "X1",
            "2024-02-03T10:00:00-06:00",
            Some("Payment Failed"),
            "Active",
        )],
    )
    .await
    .expect("changes");
    assert_eq!(
        member_days(&pool, "north", "N1").await,
        vec![
            day("2024-02-01", 0, 1, 0, 0, 0),
            day("2024-02-02", 0, 0, 0, 0, 0),
            day("2024-02-03", 1, 0, 0, 0, 1),
        ]
    );
    assert_eq!(
        member_days(&pool, "north", "N9").await,
        vec![
            day("2024-02-02", 1, 1, 0, 0, 0),
            day("2024-02-03", 1, 0, 0, 0, 0)
        ]
    );
}

#[tokio::test]
async fn writing_the_same_records_again_changes_nothing() {
    let pool = fixture_db().await;
    let north = account("north");
    let staff = [
        employee(&ANA, "Ana", "Alvarez"),
        employee(&BEN, "Ben", "Brown"),
    ];
    let first = people::upsert_employees(&pool, &north, &staff)
        .await
        .expect("employees");
    assert_eq!((first.inserted, first.updated, first.unchanged), (2, 0, 0));
    let renamed = [
        employee(&ANA, "Ana", "Alvarez-Ruiz"),
        employee(&BEN, "Ben", "Brown"),
    ];
    let second = people::upsert_employees(&pool, &north, &renamed)
        .await
        .expect("employees");
    assert_eq!(
        (second.inserted, second.updated, second.unchanged),
        (0, 1, 1)
    );

    let (members, changes) = north_members();
    let first = people::upsert_recurring_accounts(&pool, &north, CHICAGO, &members)
        .await
        .expect("members");
    assert_eq!((first.inserted, first.updated, first.unchanged), (6, 0, 0));
    let again = people::upsert_recurring_accounts(&pool, &north, CHICAGO, &members)
        .await
        .expect("members");
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 6));
    let first = people::upsert_status_changes(&pool, &north, CHICAGO, &changes)
        .await
        .expect("changes");
    assert_eq!((first.inserted, first.unchanged), (8, 0));
    // One change twice in a batch is stored once.
    let doubled: Vec<StatusChange> = changes.iter().chain(&changes[..1]).cloned().collect();
    let again = people::upsert_status_changes(&pool, &north, CHICAGO, &doubled)
        .await
        .expect("changes");
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 8));
}

fn report_args(from: &str, to: &str, by: GroupBy, kpis: &[Kpi]) -> ReportArgs {
    ReportArgs {
        from: date(from),
        to: date(to),
        by,
        format: Format::Csv,
        accounts: Vec::new(),
        kpis: kpis.to_vec(),
    }
}

/// The report as CSV, each record's fields joined with `|` (one line per row,
/// a comma inside a field left alone).
async fn report_lines(pool: &PgPool, args: &ReportArgs) -> Vec<String> {
    let mut out = Vec::new();
    report::run(pool, args, &mut out)
        .await
        .expect("report runs");
    parse_csv(&String::from_utf8(out).expect("report is UTF-8"))
        .iter()
        .map(|record| record.join("|"))
        .collect()
}

#[tokio::test]
async fn report_shows_labour_and_members_beside_sales() {
    let pool = people_db().await;
    // Asked in any order, the families come as sales, labour, members.
    let kpis = [Kpi::Members, Kpi::Sales, Kpi::Labour];
    let lines = report_lines(
        &pool,
        &report_args("2024-03-04", "2024-03-11", GroupBy::Site, &kpis),
    )
    .await;
    #[rustfmt::skip]
    let expected = [
        "account|site_code|site_name\
         |transactions|total_sales|retail_sales|membership_sales|member_washes|retail_washes|free_washes|eligible_washes|new_memberships|conversion_rate\
         |regular_hours|overtime_hours|regular_cost|overtime_cost|labour_cost|car_washes|cost_per_car|labour_share\
         |active_at_start|active_at_end|new_members|cancellations|payment_failures|reactivations|churn_rate|is_total",
        // Sales as report.rs works them out. Labour over the week: Ana 7.75 + 8.00 h,
        // Ben 40 h + 8 h overtime: 120.125 + 124.00 + 570.00 = 814.125 regular, 171.00
        // overtime, 985.125 over 7 washes = 140.73 a car, / 97.49 of sales = 10.104883.
        // Members: no change in March; 4 active since 02-10, the last day known.
        "north|N1|North, Main St|9|97.49|47.50|49.99|2|4|1|4|1|0.250000\
         |55.75|8.00|814.125|171.00|985.125|7|140.73|10.104883|4|4|0|0|0|0|0.000000|false",
        // Ana's 8.50 + 3.00 h; no member is billed here: zeros.
        "north|N2|North \"Two\"|2|49.99|20.00|29.99|0|1|0|1|1|1.000000\
         |11.50|0.00|178.25|0.00|178.25|1|178.25|3.565713|0|0|0|0|0|0|0.000000|false",
        // Cy's 4 + 7 h = 176.00 over 3 washes, / 18.00 of sales.
        "south|S1|South One|3|18.00|18.00|0|1|2|1|1|0|0.000000\
         |11.00|0.00|176.00|0.00|176.00|3|58.67|9.777778|1|1|0|0|0|0|0.000000|false",
        // 1339.375 over 11 washes, / 165.48 of sales; 4 + 1 members.
        "|||14|165.48|85.50|79.98|3|7|2|6|2|0.333333\
         |78.25|8.00|1168.375|171.00|1339.375|11|121.76|8.093878|5|5|0|0|0|0|0.000000|true",
    ];
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn report_by_day_chains_members_from_one_day_to_the_next() {
    let pool = people_db().await;
    let args = report_args("2024-01-30", "2024-02-03", GroupBy::Day, &[Kpi::Members]);
    #[rustfmt::skip]
    let expected = [
        "business_date|active_at_start|active_at_end|new_members|cancellations|payment_failures|reactivations|churn_rate|is_total",
        "2024-01-30|5|5|0|0|0|0|0.000000|false",
        // M4 leaves: 1 of 5.
        "2024-01-31|5|4|0|1|0|0|0.200000|false",
        // M7 joins at S1.
        "2024-02-01|4|5|1|0|0|0|0.000000|false",
        "2024-02-02|5|5|0|0|0|0|0.000000|false",
        // M2 rejoins.
        "2024-02-03|5|6|0|0|0|1|0.000000|false",
        // The range as a whole: from the end of 01-29 to the end of 02-03.
        "|5|6|1|1|0|1|0.200000|true",
    ];
    assert_eq!(report_lines(&pool, &args).await, expected);

    // Past the latest day with data (02-10) the members stay as they were.
    let args = report_args("2024-02-09", "2024-02-12", GroupBy::Day, &[Kpi::Members]);
    let lines = report_lines(&pool, &args).await;
    #[rustfmt::skip]
    let expected = [
        "2024-02-09|5|5|0|0|0|0|0.000000|false",
        "2024-02-10|5|5|0|0|0|0|0.000000|false",
        "2024-02-11|5|5|0|0|0|0|0.000000|false",
        "2024-02-12|5|5|0|0|0|0|0.000000|false",
        "|5|5|0|0|0|0|0.000000|true",
    ];
    assert_eq!(lines[1..], expected);
}

type Moment = DateTime<Utc>;

#[tokio::test]
async fn sync_health_tells_when_clock_entries_and_status_changes_last_arrived() {
    let pool = people_db().await;
    let rows: Vec<(String, String, Option<Moment>, Option<Moment>)> = sqlx::query_as(
        "SELECT account, site_code, last_clock_in_at, last_status_change_at
           FROM reporting.sync_health ORDER BY account, site_code",
    )
    .fetch_all(&pool)
    .await
    .expect("sync_health reads");
    let m4_expired = Some(at("2024-02-10T11:00:00-06:00"));
    assert_eq!(
        rows,
        vec![
            (
                "north".into(),
                "N1".into(),
                Some(at("2024-03-10T22:00:00-05:00")),
                m4_expired
            ),
            (
                "north".into(),
                "N2".into(),
                Some(at("2024-03-10T18:00:00-05:00")),
                m4_expired
            ),
            (
                "south".into(),
                "S1".into(),
                Some(at("2024-03-10T07:00:00-04:00")),
                None
            ),
        ]
    );
}

#[tokio::test]
async fn the_reader_role_can_select_the_labour_and_member_views() {
    let pool = people_db().await;
    let login = format!("people_reader_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE ROLE {login} LOGIN IN ROLE sonnys_reader"))
        .execute(&pool)
        .await
        .expect("create login role");
    let mut reader = (*pool.connect_options())
        .clone()
        .username(&login)
        .connect()
        .await
        .expect("reader connects");
    for view in [
        "daily_site_labour",
        "daily_account_labour",
        "daily_labour",
        "daily_site_members",
        "daily_account_members",
        "daily_members",
        "monthly_site_members",
        "monthly_account_members",
        "monthly_members",
        "sync_health",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM reporting.{view}"))
            .fetch_one(&mut reader)
            .await
            .unwrap_or_else(|e| panic!("reader reads reporting.{view}: {e}"));
        assert!(n > 0, "reporting.{view} is empty for the reader");
    }
    let err = sqlx::query("SELECT count(*) FROM sonnys.clock_entries")
        .execute(&mut reader)
        .await
        .expect_err("reader is refused the raw table");
    assert!(err.to_string().contains("permission denied"), "{err}");

    reader.close().await.ok();
    sqlx::query(&format!("DROP OWNED BY {login}"))
        .execute(&pool)
        .await
        .expect("drop what the login role owns");
    sqlx::query(&format!("DROP ROLE {login}"))
        .execute(&pool)
        .await
        .expect("drop login role");
}

#[test]
fn kpis_default_to_sales_and_take_a_list() {
    use clap::Parser;
    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        report: ReportArgs,
    }
    let defaults = Cli::try_parse_from(["report", "--from", "2024-03-01", "--to", "2024-03-31"])
        .expect("parses");
    assert_eq!(defaults.report.kpis, [Kpi::Sales]);
    let listed = Cli::try_parse_from([
        "report",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-31",
        "--kpis",
        "labour,members",
    ])
    .expect("parses");
    assert_eq!(listed.report.kpis, [Kpi::Labour, Kpi::Members]);
    assert!(Cli::try_parse_from([
        "report",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-31",
        "--kpis",
        "wages"
    ])
    .is_err());
}

#[tokio::test]
async fn report_of_labour_and_members_as_a_table_lines_up() {
    let pool = people_db().await;
    let mut args = report_args(
        "2024-03-04",
        "2024-03-11",
        GroupBy::Account,
        &[Kpi::Labour, Kpi::Members],
    );
    args.format = Format::Table;
    let mut out = Vec::new();
    report::run(&pool, &args, &mut out)
        .await
        .expect("report runs");
    let text = String::from_utf8(out).expect("report is UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    // header, rule, north, south, rule, TOTAL
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[0].starts_with("account  regular_hours  overtime_hours  regular_cost"),
        "{text}"
    );
    assert!(lines[0].ends_with("reactivations  churn_rate"), "{text}");
    // north: N1 + N2 = 985.125 + 178.25 over 8 washes; 4 members all along.
    assert!(lines[2].starts_with("north "), "{text}");
    assert!(lines[2].contains(" 1163.375 "), "{text}");
    assert!(lines[2].contains(" 145.42 "), "{text}");
    assert!(lines[5].starts_with("TOTAL "), "{text}");
    assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{text}");
}
