//! Labour and membership data through the API client, against the
//! simulator: employees, clock entries (weeks, overtime, shifts over
//! midnight, two sites, edits), recurring accounts and their status changes,
//! the service's validation and the status list's one-hour cache.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::Value;
use sonnys_etl::api::people::{
    ClockEntry, Employee, RecurringAccount, ServedTime, StatusChange, STATUS_LIST_LIMITS,
};
use sonnys_etl::api::{walk_pages, ApiError, Client};
use sonnys_etl::budget::{Allowance, Budget};
use sonnys_etl::domain::{AccountName, ApiId};
use sonnys_etl::rehearsal::simulator::{
    Faults, MemberStatus, Modification, People, RunningSimulator, SimAccount, SimEmployee,
    SimMember, SimShift, SimStatusChange, Simulator, SimulatorConfig,
};

use crate::support::fast_simulator;

const NORTH: &str = "northside-demo";

/// A simulator on a free port, with clients that speak as its accounts.
struct PeopleSim {
    running: RunningSimulator,
    http: reqwest::Client,
}

impl PeopleSim {
    async fn start(config: SimulatorConfig) -> Self {
        let running = Simulator::new(config)
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("start the simulator");
        Self {
            running,
            http: reqwest::Client::new(),
        }
    }

    fn sim(&self) -> &Simulator {
        self.running.simulator()
    }

    fn account(&self, api_id: &str) -> SimAccount {
        self.sim()
            .accounts()
            .into_iter()
            .find(|a| a.api_id == api_id)
            .unwrap()
    }

    /// The daemon's client for an account, with a budget matching the
    /// simulator's throttle.
    fn client(&self, api_id: &str) -> Client {
        let a = self.account(api_id);
        let budget = Budget::new(Allowance {
            requests: 20,
            window: Duration::from_millis(600),
            guard: Duration::from_millis(20),
        });
        Client::new(
            &AccountName::parse(&a.name).unwrap(),
            &url::Url::parse(&self.running.base_url()).unwrap(),
            &ApiId::parse(&a.api_id).unwrap(),
            &secrecy::SecretString::from(a.api_key),
            Duration::from_secs(10),
            budget,
        )
        .unwrap()
    }

    /// A raw GET as the account, for what the client refuses to send.
    async fn get(&self, api_id: &str, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.running.base_url()))
            .query(query)
            .header("X-Sonnys-API-ID", api_id)
            .header("X-Sonnys-API-Key", self.account(api_id).api_key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Every employee, read as the nightly export reads them: page by page
/// until a short page.
async fn all_employees(client: &Client) -> Result<Vec<Employee>, ApiError> {
    walk_pages("employee", |page| client.employees_page(page)).await
}

/// Every account that signed up from `from` to `to`, page by page.
async fn all_recurring_accounts(
    client: &Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<RecurringAccount>, ApiError> {
    walk_pages("recurring/account/list", |page| {
        client.recurring_accounts_page(from, to, page)
    })
    .await
}

/// Every status change made from `from` to `to`, in the export's pages of
/// 1,000.
async fn all_status_changes(
    client: &Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StatusChange>, ApiError> {
    let limit = *STATUS_LIST_LIMITS.end();
    walk_pages("recurring/account/status-list", |page| {
        client.status_changes_page(from, to, page, limit)
    })
    .await
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn employee(id: i64, first: &str, last: &str) -> SimEmployee {
    SimEmployee {
        employee_id: id,
        first_name: first.into(),
        last_name: last.into(),
    }
}

fn shift(
    employee_id: i64,
    site: &str,
    from: &str,
    to: &str,
    rate: &str,
    eligible: bool,
) -> SimShift {
    let rate = dec(rate);
    SimShift {
        employee_id,
        site_code: site.into(),
        clock_in: t(from),
        clock_out: Some(t(to)),
        regular_rate: rate,
        overtime_eligible: eligible,
        overtime_rate: (rate * dec("1.5")).round_dp(2),
        modification: None,
        created_in_back_office: None,
    }
}

/// Ann works one week at N01 and N02 with a raise on Tuesday and goes past
/// 40 hours; Nick works nights at N03 across local midnight, one entry
/// created in BackOffice and one corrected by a manager.
fn labour_fixture() -> People {
    let ann = |site, from, to, rate| shift(1, site, from, to, rate, true);
    let nick = |from, to| shift(2, "N03", from, to, "18.00", false);
    People {
        employees: vec![employee(2, "Nick", "Night"), employee(1, "Ann", "Example")],
        shifts: vec![
            // The week of Friday 2026-01-02 to Thursday 2026-01-08 (UTC dates).
            ann(
                "N01",
                "2026-01-02T13:00:00Z",
                "2026-01-02T21:30:00Z",
                "16.00",
            ),
            ann(
                "N01",
                "2026-01-03T13:00:00Z",
                "2026-01-03T21:30:00Z",
                "16.00",
            ),
            ann(
                "N02",
                "2026-01-04T13:00:00Z",
                "2026-01-04T21:30:00Z",
                "16.00",
            ),
            ann(
                "N02",
                "2026-01-05T13:00:00Z",
                "2026-01-05T21:30:00Z",
                "16.00",
            ),
            ann(
                "N01",
                "2026-01-06T13:00:00Z",
                "2026-01-06T22:45:00Z",
                "16.50",
            ),
            // The next week starts again at zero.
            ann(
                "N01",
                "2026-01-09T13:00:00Z",
                "2026-01-09T17:00:00Z",
                "16.50",
            ),
            // 22:00 to 06:30 in New York, i.e. the business day 2026-01-06.
            nick("2026-01-07T03:00:00Z", "2026-01-07T11:30:00Z"),
            SimShift {
                created_in_back_office: Some(t("2026-01-09T15:00:00Z")),
                ..nick("2026-01-08T03:00:00Z", "2026-01-08T11:00:00Z")
            },
            SimShift {
                modification: Some(Modification {
                    at: t("2026-01-10T09:00:00Z"),
                    original_clock_in: Some(t("2026-01-09T03:20:00Z")),
                }),
                ..nick("2026-01-09T03:00:00Z", "2026-01-09T11:15:00Z")
            },
        ],
        ..People::default()
    }
}

fn hours(entries: &[ClockEntry]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| (e.regular_hours.to_string(), e.overtime_hours.to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn a_hand_made_week_gives_the_hand_worked_overtime_and_labour_cost() {
    let app = PeopleSim::start(fast_simulator()).await;
    app.sim().set_people(NORTH, labour_fixture());
    let client = app.client(NORTH);

    let employees = all_employees(&client).await.unwrap();
    let ids: Vec<i64> = employees.iter().map(|e| e.employee_id).collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(employees[0].first_name.as_deref(), Some("Ann"));

    let week = client
        .clock_entries(1, d("2026-01-02"), d("2026-01-09"))
        .await
        .unwrap()
        .entries;
    // 4 × 8.5 h, then 9.75 h of which 6 reach 40 and 3.75 are overtime;
    // Friday 2026-01-09 opens a new week.
    assert_eq!(
        hours(&week),
        pairs(&[
            ("8.5", "0"),
            ("8.5", "0"),
            ("8.5", "0"),
            ("8.5", "0"),
            ("6", "3.75"),
            ("4", "0")
        ])
    );
    let sites: HashSet<Option<&str>> = week.iter().map(|e| e.site_code.as_deref()).collect();
    assert_eq!(sites, HashSet::from([Some("N01"), Some("N02")]));
    assert_eq!(week[4].regular_rate, dec("16.50"));
    assert_eq!(week[4].overtime_rate, dec("24.75"));
    // 34 × 16.00 + 6 × 16.50 + 3.75 × 24.75 + 4 × 16.50
    let cost: Decimal = week.iter().map(ClockEntry::cost).sum();
    assert_eq!(cost, dec("801.8125"));

    // Asked alone, Tuesday still counts the hours worked earlier that week.
    let tuesday = client
        .clock_entries(1, d("2026-01-06"), d("2026-01-06"))
        .await
        .unwrap()
        .entries;
    assert_eq!(hours(&tuesday), pairs(&[("6", "3.75")]));

    // The service's own week totals, which the client does not keep.
    let (status, body) = app
        .get(
            NORTH,
            "/employee/1/clock-entries",
            &[("startDate", "2026-01-02"), ("endDate", "2026-01-09")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let weeks = body["data"]["weeks"].as_array().unwrap();
    let totals: Vec<(String, String, String)> = weeks
        .iter()
        .map(|w| {
            (
                w["week"].as_str().unwrap().to_owned(),
                w["weekTotalRegularHours"].to_string(),
                w["weekTotalOverTimeHours"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        totals,
        [
            ("2026-01-02 - 2026-01-08".into(), "40".into(), "3.75".into()),
            ("2026-01-09 - 2026-01-15".into(), "4".into(), "0".into())
        ]
    );
    assert_eq!(
        weeks[0]["clockEntries"][0]["regularRate"].to_string(),
        "16.00"
    );
}

#[tokio::test]
async fn a_night_shift_belongs_to_the_utc_date_of_its_clock_in_so_clients_ask_a_day_more() {
    let app = PeopleSim::start(fast_simulator()).await;
    app.sim().set_people(NORTH, labour_fixture());
    let client = app.client(NORTH);
    let new_york = Tz::America__New_York;

    // Nick's shift of the New York business day 2026-01-06 starts at 22:00
    // local, 03:00 UTC on the 7th: asking for the 6th alone misses it.
    let alone = client
        .clock_entries(2, d("2026-01-06"), d("2026-01-06"))
        .await
        .unwrap()
        .entries;
    assert!(alone.is_empty(), "{alone:?}");
    let wider = client
        .clock_entries(2, d("2026-01-05"), d("2026-01-07"))
        .await
        .unwrap()
        .entries;
    assert_eq!(wider.len(), 1);
    let night = &wider[0];
    let local_in = night.clock_in.with_timezone(&new_york);
    let local_out = night.clock_out.unwrap().with_timezone(&new_york);
    assert_eq!(local_in.date_naive(), d("2026-01-06"));
    assert_eq!(
        local_out.date_naive(),
        d("2026-01-07"),
        "over local midnight"
    );
    // Not eligible for overtime: every hour is regular.
    assert_eq!(hours(&wider), pairs(&[("8.5", "0")]));

    // The entry created in BackOffice and the corrected one say so.
    let later = client
        .clock_entries(2, d("2026-01-08"), d("2026-01-09"))
        .await
        .unwrap()
        .entries;
    assert_eq!(later.len(), 2);
    assert!(later[0].was_created_in_back_office && !later[0].was_modified);
    assert_eq!(later[1].clock_in, t("2026-01-09T03:00:00Z"));
    assert!(later[1].was_modified);
    assert_eq!(
        later[1].modification_timestamp,
        Some(t("2026-01-10T09:00:00Z"))
    );
    assert_eq!(later[1].regular_hours, dec("8.25"));
}

#[tokio::test]
async fn an_edited_clock_in_replaces_the_entry_and_changes_the_weeks_overtime() {
    let app = PeopleSim::start(fast_simulator()).await;
    app.sim().set_people(NORTH, labour_fixture());
    let client = app.client(NORTH);
    let before = Utc::now();
    assert!(app.sim().edit_clock_in(
        NORTH,
        1,
        t("2026-01-06T13:00:00Z"),
        t("2026-01-06T12:00:00Z")
    ));
    assert!(
        !app.sim().edit_clock_in(
            NORTH,
            1,
            t("2026-01-06T13:00:00Z"),
            t("2026-01-06T12:30:00Z")
        ),
        "the old entry is gone"
    );
    let after = Utc::now();
    let week = client
        .clock_entries(1, d("2026-01-02"), d("2026-01-08"))
        .await
        .unwrap()
        .entries;
    let tuesday = &week[4];
    assert_eq!(tuesday.clock_in, t("2026-01-06T12:00:00Z"));
    assert_eq!(
        (tuesday.regular_hours, tuesday.overtime_hours),
        (dec("6"), dec("4.75"))
    );
    assert!(tuesday.was_modified);
    let stamp = tuesday.modification_timestamp.unwrap();
    // The service sends milliseconds.
    assert!(stamp >= before - chrono::Duration::milliseconds(1) && stamp <= after);
    assert!(week.iter().all(|e| e.clock_in != t("2026-01-06T13:00:00Z")));
}

#[tokio::test]
async fn more_than_14_days_is_refused_by_the_client_and_answered_422_by_the_service() {
    let app = PeopleSim::start(fast_simulator()).await;
    let client = app.client(NORTH);
    let today = Utc::now().date_naive();

    let refused = client
        .clock_entries(1101, today - Days::new(14), today)
        .await
        .unwrap_err();
    assert!(matches!(refused, ApiError::Refused { .. }), "{refused}");
    assert!(refused.to_string().contains("14 days"), "{refused}");
    assert_eq!(app.sim().counters(NORTH).labour_requests, 0, "nothing sent");
    // Exactly 14 days is served.
    client
        .clock_entries(1101, today - Days::new(13), today)
        .await
        .unwrap();

    let (from, to) = ((today - Days::new(14)).to_string(), today.to_string());
    let (status, body) = app
        .get(
            NORTH,
            "/employee/1101/clock-entries",
            &[("startDate", &from), ("endDate", &to)],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["type"], "PayloadValidationError");
    assert!(
        body["messages"][0].as_str().unwrap().contains("14 days"),
        "{body}"
    );

    // Unix seconds are read too, with the same limit.
    let start = (Utc::now() - chrono::Duration::days(15))
        .timestamp()
        .to_string();
    let end = Utc::now().timestamp().to_string();
    let (status, _) = app
        .get(
            NORTH,
            "/employee/1101/clock-entries",
            &[("startDate", &start), ("endDate", &end)],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let unknown = client
        .clock_entries(4242, today - Days::new(1), today)
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, ApiError::NotFound { kind, .. } if kind == "EntityNotFoundError"),
        "{unknown}"
    );
}

#[tokio::test]
async fn employees_are_read_page_by_page_until_a_short_page() {
    let app = PeopleSim::start(fast_simulator()).await;
    let client = app.client(NORTH);

    // The generated roster, as the simulator knows it.
    let listed = all_employees(&client).await.unwrap();
    let truth = app.sim().employees(NORTH);
    assert_eq!(listed.len(), truth.len());
    for (got, want) in listed.iter().zip(&truth) {
        assert_eq!(got.employee_id, want.employee_id);
        assert_eq!(got.last_name.as_deref(), Some(want.last_name.as_str()));
    }
    assert_eq!(app.sim().counters(NORTH).labour_requests, 1);

    // 230 employees take three pages of 100.
    let many = People {
        employees: (1..=230)
            .map(|i| employee(i, "Staff", &format!("No{i}")))
            .collect(),
        ..People::default()
    };
    app.sim().set_people(NORTH, many);
    let listed = all_employees(&client).await.unwrap();
    let ids: HashSet<i64> = listed.iter().map(|e| e.employee_id).collect();
    assert_eq!((listed.len(), ids.len()), (230, 230));
    assert_eq!(app.sim().counters(NORTH).labour_requests, 4);
}

/// Pat cancels and rejoins, Robin's payment fails and recovers, Lee
/// cancels for good; Kim signs up after the first half-year.
fn members_fixture() -> People {
    use MemberStatus::{Active, Cancelled, PaymentFailed};
    let member = |id: &str, site: &str, at: &str| SimMember {
        id: id.into(),
        name: Some(format!("Member {id}")),
        customer_id: Some(format!("{}:77", &id[..1])),
        billing_site_code: site.into(),
        signed_up: t(at),
    };
    let change = |id: &str, at: &str, old, new, who: &str, site: &str| SimStatusChange {
        recurring_id: id.into(),
        at: t(at),
        old_status: old,
        new_status: new,
        employee_name: who.into(),
        site_code: site.into(),
    };
    People {
        members: vec![
            member("1:5001", "N01", "2025-01-10T15:00:00Z"),
            member("1:5002", "N01", "2025-02-01T14:00:00Z"),
            member("2:5003", "N02", "2025-02-15T18:30:00Z"),
            member("3:5004", "N03", "2025-08-01T10:00:00Z"),
        ],
        changes: vec![
            change(
                "1:5001",
                "2025-03-05T16:00:00Z",
                Active,
                Cancelled,
                "Maria Lopez",
                "N01",
            ),
            change(
                "1:5001",
                "2025-05-20T17:00:00Z",
                Cancelled,
                Active,
                "Maria Lopez",
                "N01",
            ),
            change(
                "1:5002",
                "2025-03-01T08:00:00Z",
                Active,
                PaymentFailed,
                "Billing Service",
                "N01",
            ),
            change(
                "1:5002",
                "2025-03-03T08:00:00Z",
                PaymentFailed,
                Active,
                "Billing Service",
                "N01",
            ),
            change(
                "2:5003",
                "2025-06-01T12:00:00Z",
                Active,
                Cancelled,
                "Aisha Khan",
                "N02",
            ),
        ],
        ..People::default()
    }
}

fn summary(accounts: &[RecurringAccount]) -> Vec<(String, Option<String>, Option<DateTime<Utc>>)> {
    accounts
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                a.status_name.clone(),
                a.cancel_at(Tz::America__New_York),
            )
        })
        .collect()
}

#[tokio::test]
async fn members_report_their_status_as_of_the_end_of_the_sign_up_period() {
    let app = PeopleSim::start(fast_simulator()).await;
    app.sim().set_people(NORTH, members_fixture());
    let client = app.client(NORTH);
    let s = |x: &str| Some(x.to_string());

    let half_year = all_recurring_accounts(
        &client,
        t("2025-01-01T00:00:00Z"),
        t("2025-06-30T23:59:59Z"),
    )
    .await
    .unwrap();
    assert_eq!(
        summary(&half_year),
        [
            ("1:5001".into(), s("Active"), None),
            ("1:5002".into(), s("Active"), None),
            (
                "2:5003".into(),
                s("Cancelled"),
                Some(t("2025-06-01T12:00:00Z"))
            ),
        ]
    );
    let pat = &half_year[0];
    assert_eq!(
        pat.sign_up_at(Tz::America__New_York),
        Some(t("2025-01-10T15:00:00Z"))
    );
    assert_eq!(
        (pat.billing_site_id, pat.billing_site_code.as_deref()),
        (Some(1), Some("N01"))
    );
    assert_eq!(
        (pat.status, pat.customer_id.as_deref()),
        (Some(1), Some("1:77"))
    );
    assert_eq!(half_year[2].billing_site_id, Some(2));

    // The first quarter reports Pat as cancelled then, Lee still active.
    let quarter = all_recurring_accounts(
        &client,
        t("2025-01-01T00:00:00Z"),
        t("2025-03-31T23:59:59Z"),
    )
    .await
    .unwrap();
    assert_eq!(
        summary(&quarter),
        [
            (
                "1:5001".into(),
                s("Cancelled"),
                Some(t("2025-03-05T16:00:00Z"))
            ),
            ("1:5002".into(), s("Active"), None),
            ("2:5003".into(), s("Active"), None),
        ]
    );

    let changes = all_status_changes(&client, t("2025-01-01T00:00:00Z"), Utc::now())
        .await
        .unwrap();
    let seen: Vec<(&str, Option<&str>, &str)> = changes
        .iter()
        .map(|c| {
            (
                c.recurring_id.as_str(),
                c.old_status.as_deref(),
                c.new_status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("1:5002", Some("Active"), "Payment Failed"),
            ("1:5002", Some("Payment Failed"), "Active"),
            ("1:5001", Some("Active"), "Cancelled"),
            ("1:5001", Some("Cancelled"), "Active"),
            ("2:5003", Some("Active"), "Cancelled"),
        ]
    );
    let rejoin = &changes[3];
    // Its time, or its New York date if the service chose to send only that.
    let truth = &members_fixture().changes[1];
    assert_eq!(truth.at, t("2025-05-20T17:00:00Z"));
    let stored = app.sim().stored_status_at(NORTH, truth);
    assert!(
        stored == truth.at || stored == t("2025-05-20T04:00:00Z"),
        "{stored}"
    );
    assert_eq!(rejoin.status_at(Tz::America__New_York), stored);
    assert_eq!(rejoin.washbook_account_id.as_deref(), Some("1:5001"));
    assert_eq!(
        (rejoin.employee_name.as_deref(), rejoin.site_code.as_deref()),
        (Some("Maria Lopez"), Some("N01"))
    );
}

#[tokio::test]
async fn the_account_list_serves_six_months_at_a_time_in_pages_of_a_hundred() {
    let app = PeopleSim::start(fast_simulator()).await;
    let client = app.client(NORTH);
    let from = t("2025-01-01T00:00:00Z");

    let refused = all_recurring_accounts(&client, from, t("2025-07-01T00:00:01Z"))
        .await
        .unwrap_err();
    assert!(matches!(refused, ApiError::Refused { .. }), "{refused}");
    assert_eq!(app.sim().counters(NORTH).member_requests, 0, "nothing sent");

    let (status, body) = app
        .get(
            NORTH,
            "/recurring/account/list",
            &[
                ("startDate", "1735689600"),
                ("endDate", "1753920000"),
                ("limit", "101"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Seven months and a limit over 100: both reported.
    assert_eq!(body["messages"].as_array().unwrap().len(), 2, "{body}");

    // 250 sign-ups in one month take three pages.
    let members: Vec<SimMember> = (0..250)
        .map(|i| SimMember {
            id: format!("1:{}", 9_000 + i),
            name: None,
            customer_id: None,
            billing_site_code: "N01".into(),
            signed_up: from + chrono::Duration::hours(i + 1),
        })
        .collect();
    app.sim().set_people(
        NORTH,
        People {
            members,
            ..People::default()
        },
    );
    let accounts = all_recurring_accounts(&client, from, t("2025-07-01T00:00:00Z"))
        .await
        .unwrap();
    let ids: HashSet<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!((accounts.len(), ids.len()), (250, 250));
    // The refused raw request, then three pages.
    assert_eq!(app.sim().counters(NORTH).member_requests, 4);
    assert!(accounts
        .iter()
        .all(|a| a.name.is_none() && a.cancel_date.is_none()));
}

#[tokio::test]
async fn the_status_list_takes_100_to_1000_a_page_and_answers_repeats_from_its_cache() {
    // The live shape's null totals are chosen by request, and these
    // requests end at the clock's hour: without them, the run's time cannot
    // decide whether the first page's total is there.
    let app = PeopleSim::start(SimulatorConfig {
        faults: Faults {
            people_null_total_rate: 0.0,
            ..fast_simulator().faults
        },
        ..fast_simulator()
    })
    .await;
    app.sim().set_people(NORTH, members_fixture());
    let client = app.client(NORTH);
    let (from, to) = (
        t("2025-01-01T00:00:00Z"),
        Utc::now() + chrono::Duration::hours(1),
    );

    for limit in [99, 1_001] {
        let refused = client
            .status_changes_page(from, to, 1, limit)
            .await
            .unwrap_err();
        assert!(matches!(refused, ApiError::Refused { .. }), "{refused}");
    }
    let (status, _) = app
        .get(NORTH, "/recurring/account/status-list", &[("limit", "99")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let first = client.status_changes_page(from, to, 1, 100).await.unwrap();
    assert_eq!((first.items.len(), first.total), (5, Some(5)));
    assert!(first.is_last());

    // Kim is suspended; the identical request within the hour does not show it.
    assert!(app.sim().add_status_change(
        NORTH,
        SimStatusChange {
            recurring_id: "3:5004".into(),
            at: Utc::now() - chrono::Duration::minutes(1),
            old_status: MemberStatus::Active,
            new_status: MemberStatus::Suspended,
            employee_name: "Sam O'Neil".into(),
            site_code: "N03".into(),
        }
    ));
    let cached = client.status_changes_page(from, to, 1, 100).await.unwrap();
    assert_eq!(cached.items, first.items);
    // Any other request is computed afresh.
    let other = client.status_changes_page(from, to, 1, 200).await.unwrap();
    assert_eq!(other.items.len(), 6);
    assert_eq!(other.items[5].new_status, "Suspended");
    // An hour later the first request sees it too.
    app.sim().clear_status_cache();
    let fresh = client.status_changes_page(from, to, 1, 100).await.unwrap();
    assert_eq!(fresh.items.len(), 6);
    // And the account list agrees.
    let kim = app
        .sim()
        .recurring_accounts(NORTH)
        .into_iter()
        .find(|a| a.id == "3:5004")
        .unwrap();
    assert_eq!(kim.status, MemberStatus::Suspended);
}

#[tokio::test]
async fn people_endpoints_share_the_gate_throttle_and_faults() {
    let app = PeopleSim::start(SimulatorConfig {
        requests_per_window: 3,
        window: Duration::from_secs(30),
        ..fast_simulator()
    })
    .await;
    let mut codes = Vec::new();
    for path in [
        "/employee",
        "/employee/1101/clock-entries",
        "/recurring/account/list",
        "/recurring/account/status-list",
    ] {
        codes.push(app.get(NORTH, path, &[]).await.0);
    }
    assert_eq!(
        codes,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let c = app.sim().counters(NORTH);
    assert_eq!(
        (
            c.requests,
            c.labour_requests,
            c.member_requests,
            c.rate_limited
        ),
        (4, 2, 2, 1)
    );

    let wrong_key = app
        .http
        .get(format!("{}/employee", app.running.base_url()))
        .header("X-Sonnys-API-ID", "desert-demo")
        .header("X-Sonnys-API-Key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), StatusCode::FORBIDDEN);

    app.sim().set_throttle(1_000, Duration::from_secs(1));
    app.sim().set_faults(Faults {
        error_500_rate: 1.0,
        ..Faults::default()
    });
    let failed = all_employees(&app.client(NORTH)).await.unwrap_err();
    assert!(
        matches!(failed, ApiError::Server { status: 500, .. }),
        "{failed}"
    );
}

/// The zone a site's clock entries are local to (the account's when null).
fn zones(account: &SimAccount) -> HashMap<String, Tz> {
    account
        .sites
        .iter()
        .map(|s| {
            let zone = s.timezone.as_deref().unwrap_or(&account.timezone);
            (s.code.clone(), zone.parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn the_generated_labour_has_overtime_two_sites_night_shifts_and_late_edits() {
    let app = PeopleSim::start(fast_simulator()).await;
    let today = Utc::now().date_naive();
    let (mut overtime, mut over_midnight, mut modified, mut back_office) = (0, 0, 0, 0);
    let mut two_sites = Vec::new();
    for api_id in [NORTH, "desert-demo"] {
        let client = app.client(api_id);
        let zones = zones(&app.account(api_id));
        for e in all_employees(&client).await.unwrap() {
            let mut entries = Vec::new();
            for (from, to) in [(27, 14), (13, 0)] {
                let got = client
                    .clock_entries(
                        e.employee_id,
                        today - Days::new(from),
                        today - Days::new(to),
                    )
                    .await
                    .unwrap()
                    .entries;
                entries.extend(got);
            }
            let sites: HashSet<String> = entries
                .iter()
                .map(|x| x.site_code.clone().unwrap_or_default())
                .collect();
            if sites.len() > 1 {
                two_sites.push(e.employee_id);
            }
            for x in &entries {
                overtime += usize::from(x.overtime_hours > Decimal::ZERO);
                modified += usize::from(x.was_modified);
                back_office += usize::from(x.was_created_in_back_office);
                // An unset site code is the online store's `""`.
                let zone = zones[x.site_code.as_deref().unwrap_or("")];
                if let Some(out) = x.clock_out {
                    let local_day = |t: DateTime<Utc>| t.with_timezone(&zone).date_naive();
                    over_midnight += usize::from(local_day(x.clock_in) != local_day(out));
                }
            }
        }
    }
    assert!(
        overtime > 0 && over_midnight > 0,
        "{overtime} {over_midnight}"
    );
    assert!(modified > 0 && back_office > 0, "{modified} {back_office}");
    assert!(
        two_sites.contains(&1102) && two_sites.contains(&2106),
        "{two_sites:?}"
    );
}

#[tokio::test]
async fn the_generated_members_tell_every_story_and_agree_with_their_status_changes() {
    let app = PeopleSim::start(fast_simulator()).await;
    let now = Utc::now();
    let first = t("2023-12-01T00:00:00Z");
    for api_id in [NORTH, "desert-demo"] {
        let client = app.client(api_id);
        let changes = all_status_changes(&client, first, now).await.unwrap();
        let story = |old: &str, new: &str| {
            changes
                .iter()
                .any(|c| c.old_status.as_deref() == Some(old) && c.new_status == new)
        };
        assert!(story("Cancelled", "Active"), "{api_id}: a member rejoins");
        assert!(
            story("Payment Failed", "Active"),
            "{api_id}: a payment recovers"
        );
        assert!(story("Active", "Suspended") && story("Active", "Expired"));

        // Each change is read at the instant the simulator says a client
        // should store: its time, or its date's midnight in the account's
        // zone for those the live shape sends as a bare date.
        let zone: Tz = app.account(api_id).timezone.parse().unwrap();
        let truth: Vec<SimStatusChange> = app
            .sim()
            .status_changes(api_id)
            .into_iter()
            .filter(|c| c.at <= now)
            .collect();
        assert_eq!(changes.len(), truth.len());
        for (got, want) in changes.iter().zip(&truth) {
            assert_eq!(
                (got.recurring_id.as_str(), got.new_status.as_str()),
                (want.recurring_id.as_str(), want.new_status.name())
            );
            assert_eq!(
                got.status_at(zone),
                app.sim().stored_status_at(api_id, want)
            );
        }
        let bare = changes
            .iter()
            .filter(|c| matches!(c.status_date, ServedTime::Date(_)))
            .count();
        assert!(
            bare > 0 && bare < changes.len() / 4,
            "{api_id}: {bare} bare dates of {}",
            changes.len()
        );

        // Every sign-up period of six months, each account's status at the
        // period's end is its latest change by then (by the change's time,
        // which the service knows even when it sends only the date).
        let mut by_member: HashMap<&str, Vec<&SimStatusChange>> = HashMap::new();
        for c in &truth {
            by_member.entry(&c.recurring_id).or_default().push(c);
        }
        let mut period_start = first;
        let mut sites = HashSet::new();
        let mut count = 0;
        while period_start < now {
            let end = (period_start + chrono::Months::new(6)).min(now);
            for a in all_recurring_accounts(&client, period_start, end)
                .await
                .unwrap()
            {
                let expected = by_member
                    .get(a.id.as_str())
                    .and_then(|list| list.iter().rfind(|c| c.at <= end))
                    .map_or("Active", |c| c.new_status.name());
                assert_eq!(a.status_name.as_deref(), Some(expected), "{}", a.id);
                sites.insert(a.billing_site_code.clone().unwrap_or_default());
                count += 1;
            }
            period_start = end + chrono::Duration::seconds(1);
        }
        assert_eq!(count, app.sim().recurring_accounts(api_id).len());
        if api_id == "desert-demo" {
            // D02 is a physical site with no members at all.
            assert_eq!(sites, HashSet::from(["D01".to_string()]));
            assert!(changes
                .iter()
                .all(|c| c.site_code.as_deref() != Some("D02")));
            assert!(app.account(api_id).sites.iter().any(|s| s.code == "D02"));
        }
    }
}

#[tokio::test]
async fn the_live_shape_on_the_wire_null_totals_open_shifts_bare_dates_and_no_clock_in() {
    let mut config = fast_simulator();
    config.faults.people_null_total_rate = 1.0;
    config.faults.bare_date_rate = 1.0;
    let app = PeopleSim::start(config).await;
    let client = app.client(NORTH);
    let now = Utc::now();
    let today = now.date_naive();
    let yesterday = today - Days::new(1);
    // On shift since two hours ago (whole seconds, as the service sends
    // milliseconds); yesterday's shift ended long ago.
    let open_in = DateTime::from_timestamp(now.timestamp() - 7_200, 0).unwrap();
    let closed_in = yesterday.and_hms_opt(10, 0, 0).unwrap().and_utc();
    let mut open = shift(
        1,
        "N01",
        "2026-01-01T00:00:00Z",
        "2026-01-01T01:00:00Z",
        "16.00",
        true,
    );
    (open.clock_in, open.clock_out) = (open_in, None);
    let closed = SimShift {
        clock_in: closed_in,
        clock_out: Some(closed_in + chrono::Duration::hours(4)),
        ..open.clone()
    };
    let cancel = SimStatusChange {
        recurring_id: "1:5001".into(),
        at: t("2025-03-05T16:00:00Z"),
        old_status: MemberStatus::Active,
        new_status: MemberStatus::Cancelled,
        employee_name: "Maria Lopez".into(),
        site_code: "N01".into(),
    };
    app.sim().set_people(
        NORTH,
        People {
            employees: (1..=200).map(|i| employee(i, "Staff", "Member")).collect(),
            shifts: vec![closed, open],
            changes: vec![cancel.clone()],
            ..People::default()
        },
    );

    // Two full pages without a total, then an empty one.
    let (status, body) = app
        .get(NORTH, "/employee", &[("limit", "100"), ("offset", "2")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"]["total"].is_null(), "{body}");
    assert_eq!(body["data"]["employees"].as_array().unwrap().len(), 100);
    assert_eq!(all_employees(&client).await.unwrap().len(), 200);
    assert_eq!(app.sim().counters(NORTH).labour_requests, 1 + 3);

    // The status list sends the New York date alone.
    let (_, body) = app
        .get(
            NORTH,
            "/recurring/account/status-list",
            &[("startDate", "1735689600")],
        )
        .await;
    assert_eq!(body["data"]["accounts"][0]["status_date"], "2025-03-05");
    assert!(body["data"]["total"].is_null(), "{body}");
    let read = all_status_changes(&client, t("2025-01-01T00:00:00Z"), now)
        .await
        .unwrap();
    assert_eq!(read[0].status_date, ServedTime::Date(d("2025-03-05")));
    assert_eq!(
        read[0].status_at(Tz::America__New_York),
        app.sim().stored_status_at(NORTH, &cancel)
    );
    assert_eq!(
        app.sim().stored_status_at(NORTH, &cancel),
        t("2025-03-05T05:00:00Z")
    );

    // The open shift has `clockOut: null` and is read as open.
    let (yesterday, today) = (yesterday.to_string(), today.to_string());
    let dates = [
        ("startDate", yesterday.as_str()),
        ("endDate", today.as_str()),
    ];
    let (_, body) = app.get(NORTH, "/employee/1/clock-entries", &dates).await;
    let served: Vec<&Value> = body["data"]["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["clockEntries"].as_array().unwrap())
        .collect();
    assert_eq!(served.len(), 2, "{body}");
    assert!(served.iter().any(|e| e["clockOut"].is_null()), "{body}");
    let (from, to) = (now.date_naive() - Days::new(1), now.date_naive());
    let read = client.clock_entries(1, from, to).await.unwrap();
    let open_read: Vec<_> = read
        .entries
        .iter()
        .filter(|e| e.clock_out.is_none())
        .collect();
    assert_eq!(open_read.len(), 1);
    assert_eq!(open_read[0].clock_in, open_in);

    // An entry sent without its clock-in is set aside; the rest is read.
    assert!(app.sim().serve_without_clock_in(NORTH, 1, closed_in));
    let (_, body) = app.get(NORTH, "/employee/1/clock-entries", &dates).await;
    assert!(
        body["data"]["weeks"][0]["clockEntries"][0]["clockIn"].is_null(),
        "{body}"
    );
    let read = client.clock_entries(1, from, to).await.unwrap();
    assert_eq!((read.entries.len(), read.quarantined.len()), (1, 1));
    assert_eq!(
        read.quarantined[0].clock_out,
        Some(closed_in + chrono::Duration::hours(4))
    );

    // Without the open-shift knob, an entry shows only once its shift ends.
    app.sim().set_faults(Faults {
        open_shifts: false,
        ..fast_simulator().faults
    });
    let read = client.clock_entries(1, from, to).await.unwrap();
    assert_eq!((read.entries.len(), read.quarantined.len()), (0, 1));
}
