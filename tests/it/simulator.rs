//! The simulator seen over HTTP, as the daemon sees it: throttle, validation,
//! jobs, auth, paging, the live record shape, the summaries and their cache,
//! the live service's quirks and determinism.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use reqwest::StatusCode;
use serde_json::Value;
use sonnys_etl::rehearsal::simulator::{
    Faults, RecordShape, RunningSimulator, Simulator, SimulatorConfig,
};

const ID: &str = "northside-demo";

/// A simulator on a free port plus a client that speaks as one account.
struct TestSim {
    running: RunningSimulator,
    client: reqwest::Client,
    key: String,
}

impl TestSim {
    async fn start(config: SimulatorConfig) -> Self {
        let sim = Simulator::new(config);
        let key = sim
            .accounts()
            .into_iter()
            .find(|a| a.api_id == ID)
            .expect("northside account")
            .api_key;
        let running = sim
            .start("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("simulator starts");
        Self {
            running,
            client: reqwest::Client::new(),
            key,
        }
    }

    fn sim(&self) -> &Simulator {
        self.running.simulator()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, String) {
        let resp = req
            .header("X-Sonnys-API-ID", ID)
            .header("X-Sonnys-API-Key", &self.key)
            .send()
            .await
            .expect("request sent");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    async fn site_list(&self) -> (StatusCode, String) {
        self.send(self.client.get(self.url("/site/list"))).await
    }

    async fn load_job(&self, query: &[(&str, String)]) -> (StatusCode, Value) {
        let (status, body) = self
            .send(
                self.client
                    .post(self.url("/transaction/load-job"))
                    .query(query),
            )
            .await;
        (status, serde_json::from_str(&body).expect("JSON body"))
    }

    async fn submit(&self, site: &str, start: i64, end: i64, page: u32) -> String {
        let (status, body) = self.load_job(&criteria(site, start, end, page)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["hash"].as_str().expect("hash").to_string()
    }

    async fn poll(&self, hash: &str) -> (StatusCode, String) {
        self.send(
            self.client
                .get(self.url("/transaction/get-job-data"))
                .query(&[("hash", hash)]),
        )
        .await
    }

    /// `GET` one of the summary endpoints (`/transaction/version-2` or
    /// `/transaction`).
    async fn summaries(&self, path: &str, query: &[(&str, String)]) -> (StatusCode, Value) {
        let (status, body) = self
            .send(self.client.get(self.url(path)).query(query))
            .await;
        (status, serde_json::from_str(&body).expect("JSON body"))
    }

    /// One page of summaries that must succeed; returns `data`.
    async fn summary_page(&self, path: &str, query: &[(&str, String)]) -> Value {
        let (status, body) = self.summaries(path, query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].clone()
    }

    /// Every record of a window as the export serves it, page by page.
    async fn export(&self, site: &str, start: i64, end: i64) -> Vec<Value> {
        let first = self.fetch_page(site, start, end, 1).await;
        let total = first["total"].as_u64().expect("total") as usize;
        let mut served: Vec<Value> = first["data"].as_array().expect("data").clone();
        for page in 2..=total.div_ceil(100) as u32 {
            let data = self.fetch_page(site, start, end, page).await;
            served.extend(data["data"].as_array().expect("data").iter().cloned());
        }
        served
    }

    /// Submits and polls until the page has passed; returns the job data.
    async fn fetch_page(&self, site: &str, start: i64, end: i64, page: u32) -> Value {
        let hash = self.submit(site, start, end, page).await;
        for _ in 0..100 {
            let (status, body) = self.poll(&hash).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let v: Value = serde_json::from_str(&body).expect("JSON");
            if v["data"]["status"] == "pass" {
                return v["data"].clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("job {hash} never passed");
    }
}

fn criteria(site: &str, start: i64, end: i64, page: u32) -> Vec<(&'static str, String)> {
    vec![
        ("startDate", start.to_string()),
        ("endDate", end.to_string()),
        ("site", site.to_string()),
        ("limit", "100".to_string()),
        ("offset", page.to_string()),
    ]
}

/// Fast builds and a throttle that stays out of the way.
fn quick() -> SimulatorConfig {
    SimulatorConfig {
        requests_per_window: 10_000,
        build_latency: Duration::ZERO,
        ..SimulatorConfig::default()
    }
}

/// `quick()` with every list `total` given (no null-total pages).
fn quick_with_totals() -> SimulatorConfig {
    let mut config = quick();
    config.faults.null_total_rate = 0.0;
    config
}

/// The fields only the summaries carry on the live service.
const SUMMARY_ONLY: [&str; 3] = [
    "isRecurringPlanSale",
    "isRecurringPlanRedemption",
    "transactionStatus",
];

/// A full record as the live export sends it.
fn live(record: &Value) -> Value {
    let mut record = record.clone();
    for field in SUMMARY_ONLY {
        record.as_object_mut().expect("record").remove(field);
    }
    record
}

fn ids(records: &[Value], key: &str) -> Vec<String> {
    records
        .iter()
        .map(|r| r[key].as_str().expect("id").to_string())
        .collect()
}

/// The most recent completed local date (within 60 days) of N01 whose
/// volume satisfies `pred`.
fn find_day(sim: &Simulator, pred: impl Fn(usize) -> bool) -> NaiveDate {
    let today = Utc::now()
        .with_timezone(&Tz::America__New_York)
        .date_naive();
    today
        .iter_days()
        .rev()
        .skip(1)
        .take(60)
        .find(|d| pred(sim.day_volume(ID, "N01", *d)))
        .expect("such a day within 60 days")
}

/// First 24 hours of a New York local day, which cover all tunnel hours.
fn day_window(date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Tz::America__New_York
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .expect("midnight exists")
        .with_timezone(&Utc);
    (start, start + chrono::Duration::seconds(86_399))
}

#[tokio::test]
async fn throttle_rejects_request_limit_plus_one_and_recovers_after_the_window() {
    let app = TestSim::start(SimulatorConfig {
        requests_per_window: 5,
        window: Duration::from_millis(600),
        ..quick()
    })
    .await;
    for i in 1..=5 {
        assert_eq!(app.site_list().await.0, StatusCode::OK, "request {i}");
    }
    let (status, body) = app.site_list().await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["type"], "RequestRateExceedError");

    tokio::time::sleep(Duration::from_millis(650)).await;
    assert_eq!(app.site_list().await.0, StatusCode::OK);

    let c = app.sim().counters(ID);
    assert_eq!((c.requests, c.rate_limited, c.max_in_window), (7, 1, 6));
}

#[tokio::test]
async fn load_job_rejects_invalid_criteria_with_422() {
    let app = TestSim::start(quick()).await;
    let now = Utc::now().timestamp();
    let day_ago = now - 86_400;
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("limit 50", {
            let mut q = criteria("N01", day_ago, now, 1);
            q[3].1 = "50".into();
            q
        }),
        ("offset 0", criteria("N01", day_ago, now, 0)),
        (
            "no startDate",
            criteria("N01", day_ago, now, 1)[1..].to_vec(),
        ),
        ("start after end", criteria("N01", now, day_ago, 1)),
        ("over 24 h", criteria("N01", day_ago - 1, now, 1)),
        (
            "older than max age",
            criteria("N01", now - 200 * 86_400, now - 199 * 86_400, 1),
        ),
        ("end in future", criteria("N01", day_ago + 60, now + 60, 1)),
        ("not integer", {
            let mut q = criteria("N01", day_ago, now, 1);
            q[0].1 = "1.5e9".into();
            q
        }),
    ];
    for (what, query) in cases {
        let (status, body) = app.load_job(&query).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert_eq!(body["type"], "PayloadValidationError", "{what}");
        assert!(
            !body["messages"].as_array().expect("messages").is_empty(),
            "{what}"
        );
    }
    assert_eq!(app.sim().counters(ID).load_jobs, 0);
}

#[tokio::test]
async fn same_criteria_return_the_same_hash_and_unknown_hashes_are_404() {
    let app = TestSim::start(SimulatorConfig {
        // Long enough that the first poll surely finds the job working.
        build_latency: Duration::from_secs(2),
        ..quick()
    })
    .await;
    let end = Utc::now().timestamp() - 3_600;
    let start = end - 86_400;
    let first = app.submit("N01", start, end, 1).await;
    assert_eq!(first.len(), 32);
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(app.submit("N01", start, end, 1).await, first);
    assert_ne!(app.submit("N01", start, end, 2).await, first);

    let (status, body) = app.poll(&first).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["data"]["status"], "working");
    assert_eq!(app.sim().counters(ID).polls_working, 1);

    let (status, body) = app.poll("0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("EntityNotFoundError"));

    app.sim().clear_job_cache();
    assert_eq!(app.poll(&first).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn credentials_are_checked_on_every_request() {
    let app = TestSim::start(quick()).await;
    let url = app.url("/site/list");
    let kind = |resp: reqwest::Response| async move {
        let status = resp.status();
        let body: Value = resp.json().await.expect("JSON");
        (
            status,
            body["type"].as_str().unwrap_or_default().to_string(),
        )
    };
    let missing = app.client.get(&url).send().await.expect("sent");
    assert_eq!(
        kind(missing).await,
        (
            StatusCode::FORBIDDEN,
            "MissingClientCredentialsError".into()
        )
    );
    let wrong_key = app
        .client
        .get(&url)
        .header("X-Sonnys-API-ID", ID)
        .header("X-Sonnys-API-Key", "nope")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        kind(wrong_key).await,
        (StatusCode::FORBIDDEN, "BadClientCredentialsError".into())
    );
    assert_eq!(app.site_list().await.0, StatusCode::OK);
    app.sim().revoke(ID);
    let (status, body) = app.site_list().await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("NotAuthorizedError"));
    // Failed requests still count against the id's budget.
    assert_eq!(app.sim().counters(ID).requests, 3);
}

#[tokio::test]
async fn extra_sites_are_listed_after_the_sample_sites_and_export_like_them() {
    let app = TestSim::start(SimulatorConfig {
        extra_sites: 37,
        ..quick()
    })
    .await;
    let (status, body) = app.site_list().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    let sites = body["data"]["sites"].as_array().expect("sites");
    let codes: Vec<&str> = sites
        .iter()
        .map(|s| s["code"].as_str().expect("code"))
        .collect();
    let expected: Vec<String> = (1..=40).map(|n| format!("N{n:02}")).collect();
    assert_eq!(codes, expected);
    let mut ids: Vec<i64> = sites
        .iter()
        .map(|s| s["siteID"].as_i64().expect("siteID"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    assert!(sites.iter().all(|s| s["name"].as_str().is_some()));

    // The last one (zone America/New_York) exports a normal day in full.
    let today = Utc::now()
        .with_timezone(&Tz::America__New_York)
        .date_naive();
    let date = today
        .iter_days()
        .rev()
        .skip(1)
        .take(30)
        .find(|d| (150..=400).contains(&app.sim().day_volume(ID, "N40", *d)))
        .expect("a normal day within 30 days");
    let (start, end) = day_window(date);
    let served = app.export("N40", start.timestamp(), end.timestamp()).await;
    assert_eq!(served.len(), app.sim().day_volume(ID, "N40", date));
    assert!(served.iter().all(|r| r["locationCode"] == "N40"));
}

#[tokio::test]
async fn a_busy_day_pages_by_hundred_with_the_window_total() {
    let app = TestSim::start(quick()).await;
    let date = find_day(app.sim(), |v| v >= 1_000);
    let (start, end) = day_window(date);
    let expected = app.sim().transactions(ID, "N01", start, end);
    assert_eq!(expected.len(), app.sim().day_volume(ID, "N01", date));

    let first = app
        .fetch_page("N01", start.timestamp(), end.timestamp(), 1)
        .await;
    let total = first["total"].as_u64().expect("total") as usize;
    assert_eq!(total, expected.len());
    assert_eq!(
        (first["offset"].as_u64(), first["limit"].as_u64()),
        (Some(1), Some(100))
    );
    let mut served: Vec<Value> = first["data"].as_array().expect("data").clone();
    for page in 2..=total.div_ceil(100) as u32 {
        let data = app
            .fetch_page("N01", start.timestamp(), end.timestamp(), page)
            .await;
        served.extend(data["data"].as_array().expect("data").iter().cloned());
    }
    assert_eq!(served, expected.iter().map(live).collect::<Vec<_>>());
    let beyond = app
        .fetch_page("N01", start.timestamp(), end.timestamp(), 99)
        .await;
    assert_eq!(beyond["data"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn the_exact_hundred_and_empty_days_exist_and_unknown_sites_are_empty() {
    let app = TestSim::start(quick()).await;
    for volume in [0, 100, 101] {
        let date = find_day(app.sim(), |v| v == volume);
        let (start, end) = day_window(date);
        let page = app
            .fetch_page("N01", start.timestamp(), end.timestamp(), 1)
            .await;
        assert_eq!(page["total"].as_u64(), Some(volume as u64));
        assert_eq!(page["data"].as_array().map(Vec::len), Some(volume.min(100)));
    }
    let end = Utc::now().timestamp() - 60;
    let page = app.fetch_page("NOPE", end - 86_400, end, 1).await;
    assert_eq!(page["total"].as_u64(), Some(0));
}

/// Unset nullable strings as served, by field name.
fn unset_customer_names(page: &Value) -> Vec<Value> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|r| r["customerId"].is_null() || r["customerId"] == "")
        .map(|r| r["customerName"].clone())
        .collect()
}

#[tokio::test]
async fn unset_strings_are_empty_by_default_and_null_without_the_quirk() {
    let app = TestSim::start(quick()).await;
    let end = Utc::now().timestamp() - 3_600;
    let page = app.fetch_page("N01", end - 86_400, end, 1).await;
    let names = unset_customer_names(&page);
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n == ""));

    app.sim().set_faults(Faults::default());
    app.sim().clear_job_cache();
    let page = app.fetch_page("N01", end - 86_400, end, 1).await;
    let names = unset_customer_names(&page);
    assert!(!names.is_empty());
    assert!(names.iter().all(Value::is_null));
}

#[tokio::test]
async fn discount_amount_quirk_renames_the_amount() {
    let app = TestSim::start(SimulatorConfig {
        faults: Faults {
            discount_amount: true,
            ..Faults::default()
        },
        ..quick()
    })
    .await;
    let date = find_day(app.sim(), |v| v >= 1_000);
    let (start, end) = day_window(date);
    let page = app
        .fetch_page("N01", start.timestamp(), end.timestamp(), 1)
        .await;
    let discounts: Vec<&Value> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .flat_map(|r| r["discount"].as_array().expect("discount list"))
        .collect();
    assert!(!discounts.is_empty());
    for d in discounts {
        assert!(d.get("discountAmount").is_some() && d.get("discount").is_none());
    }
}

#[tokio::test]
async fn the_same_seed_serves_the_same_bytes() {
    let a = TestSim::start(quick()).await;
    let b = TestSim::start(quick()).await;
    let c = TestSim::start(SimulatorConfig { seed: 7, ..quick() }).await;
    let end = Utc::now().timestamp() - 7_200;
    let start = end - 86_400;
    // Different request histories must not change the chain.
    b.fetch_page("N02", start, end, 1).await;
    let mut bodies = Vec::new();
    for app in [&a, &b, &c] {
        let hash = app.submit("N01", start, end, 2).await;
        bodies.push(app.poll(&hash).await.1);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_ne!(bodies[0], bodies[2]);
}

#[tokio::test]
async fn faults_and_overrides_show_over_http() {
    let app = TestSim::start(quick()).await;
    let end = Utc::now().timestamp() - 3_600;
    let start = end - 86_400;
    let page = app.fetch_page("N01", start, end, 1).await;
    let id = page["data"][0]["id"].as_str().expect("id").to_string();

    assert!(app.sim().update_transaction(ID, &id, |r| {
        r["total"] = 1.23.into();
        r["customerName"] = "Changed Later".into();
    }));
    // The old hash keeps its snapshot; a new build after expiry shows the change.
    let again = app.fetch_page("N01", start, end, 1).await;
    assert_eq!(again["data"][0], page["data"][0]);
    app.sim().clear_job_cache();
    let changed = app.fetch_page("N01", start, end, 1).await;
    assert_eq!(changed["data"][0]["total"], 1.23);
    assert_eq!(changed["data"][0]["customerName"], "Changed Later");

    app.sim().set_faults(Faults {
        fail_rate: 1.0,
        ..Faults::default()
    });
    let hash = app.submit("N01", start, end, 3).await;
    let (_, body) = app.poll(&hash).await;
    assert!(body.contains("\"status\":\"fail\""), "{body}");

    app.sim().set_faults(Faults {
        expire_rate: 1.0,
        ..Faults::default()
    });
    let hash = app.submit("N01", start, end, 4).await;
    assert_eq!(app.poll(&hash).await.0, StatusCode::NOT_FOUND);

    app.sim().set_faults(Faults {
        error_500_rate: 1.0,
        ..Faults::default()
    });
    let (status, body) = app.site_list().await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(serde_json::from_str::<Value>(&body).is_err());
    assert_eq!(app.sim().counters(ID).errors_500, 1);
}

/// The criteria of a summaries request.
fn summary_query(
    site: &str,
    start: i64,
    end: i64,
    limit: u32,
    page: u32,
) -> Vec<(&'static str, String)> {
    let mut query = criteria(site, start, end, page);
    query[3].1 = limit.to_string();
    query
}

#[tokio::test]
async fn the_live_export_leaves_out_the_plan_flags_and_status_and_the_spec_shape_sends_them() {
    let live_app = TestSim::start(quick()).await;
    let spec_app = TestSim::start(SimulatorConfig {
        shape: RecordShape::Spec,
        ..quick()
    })
    .await;
    let date = find_day(live_app.sim(), |v| v >= 150);
    let (start, end) = day_window(date);
    let (start, end) = (start.timestamp(), end.timestamp());
    let live_page = live_app.fetch_page("N01", start, end, 1).await;
    let spec_page = spec_app.fetch_page("N01", start, end, 1).await;
    let live_records = live_page["data"].as_array().expect("data");
    let spec_records = spec_page["data"].as_array().expect("data");
    assert_eq!(live_records.len(), 100);
    for (l, s) in live_records.iter().zip(spec_records) {
        for field in SUMMARY_ONLY {
            assert!(l.get(field).is_none(), "live record carries {field}: {l}");
            assert!(s.get(field).is_some(), "spec record lacks {field}: {s}");
        }
        assert!(l.get("customerId").is_some(), "{l}");
        assert_eq!(*l, live(s));
    }
}

#[tokio::test]
async fn summaries_page_like_the_export_and_name_the_same_transactions() {
    let app = TestSim::start(quick_with_totals()).await;
    let date = find_day(app.sim(), |v| v >= 1_000);
    let (start, end) = day_window(date);
    let truth = app.sim().transactions(ID, "N01", start, end);
    let (start, end) = (start.timestamp(), end.timestamp());
    let exported = app.export("N01", start, end).await;
    let pages = exported.len().div_ceil(100) as u32;
    assert!(pages >= 10, "{pages}");

    let mut v2: Vec<Value> = Vec::new();
    let mut plain: Vec<Value> = Vec::new();
    for page in 1..=pages + 1 {
        let query = summary_query("N01", start, end, 100, page);
        for (path, into) in [
            ("/transaction/version-2", &mut v2),
            ("/transaction", &mut plain),
        ] {
            let data = app.summary_page(path, &query).await;
            assert_eq!(
                data["total"].as_u64(),
                Some(exported.len() as u64),
                "{path}"
            );
            assert_eq!(
                (data["offset"].as_u64(), data["limit"].as_u64()),
                (Some(u64::from(page)), Some(100))
            );
            let items = data["transactions"].as_array().expect("transactions");
            let expected_len = exported
                .len()
                .saturating_sub(100 * (page as usize - 1))
                .min(100);
            assert_eq!(items.len(), expected_len, "{path} page {page}");
            into.extend(items.iter().cloned());
        }
    }
    assert_eq!(ids(&v2, "transId"), ids(&exported, "id"));
    assert_eq!(ids(&plain, "transId"), ids(&exported, "id"));
    assert_eq!(ids(&truth, "id"), ids(&exported, "id"));
    for ((summary, brief), record) in v2.iter().zip(&plain).zip(&truth) {
        assert_eq!(summary["transNumber"], record["number"]);
        assert_eq!(summary["total"], record["total"]);
        assert_eq!(summary["date"], record["completeDate"]);
        assert_eq!(summary["customerId"], record["customerId"]);
        for field in SUMMARY_ONLY {
            assert_eq!(summary[field], record[field], "{field} of {summary}");
        }
        let keys: Vec<&String> = brief.as_object().expect("item").keys().collect();
        assert_eq!(keys.len(), 4, "{brief}");
        for key in ["transNumber", "transId", "total", "date"] {
            assert_eq!(brief[key], summary[key]);
        }
    }
    assert!(v2.iter().any(|s| s["transactionStatus"] == "Voided"));

    // Any page size up to 100 cuts the same order.
    let data = app
        .summary_page(
            "/transaction/version-2",
            &summary_query("N01", start, end, 30, 2),
        )
        .await;
    let items = data["transactions"].as_array().expect("transactions");
    assert_eq!(ids(items, "transId"), ids(&exported[30..60], "id"));

    let c = app.sim().counters(ID);
    assert_eq!(c.summary_requests, 2 * u64::from(pages + 1) + 1);
    assert_eq!(c.load_jobs, u64::from(pages));
}

#[tokio::test]
async fn a_redemption_costs_the_wash_and_its_summary_carries_that_total() {
    let app = TestSim::start(quick_with_totals()).await;
    let date = find_day(app.sim(), |v| v >= 150);
    let (start, end) = day_window(date);
    let (start, end) = (start.timestamp(), end.timestamp());
    let page = app.fetch_page("N01", start, end, 1).await;
    let summaries = app
        .summary_page(
            "/transaction/version-2",
            &summary_query("N01", start, end, 100, 1),
        )
        .await;
    let summaries = summaries["transactions"].as_array().expect("transactions");
    let redemptions: Vec<&Value> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|r| r["isRecurringRedemption"] == true)
        .collect();
    assert!(!redemptions.is_empty());
    for r in redemptions {
        let total: f64 = r["total"].as_f64().expect("total");
        assert!(total > 0.0, "{r}");
        let tenders = r["tenders"].as_array().expect("tenders");
        assert_eq!(tenders.len(), 1, "{r}");
        assert_eq!(tenders[0]["amount"], r["total"], "{r}");
        let summary = summaries
            .iter()
            .find(|s| s["transId"] == r["id"])
            .expect("a summary of every exported transaction");
        assert_eq!(summary["total"], r["total"]);
        assert_eq!(summary["isRecurringPlanRedemption"], true);
    }
}

#[tokio::test]
async fn summaries_reject_invalid_criteria_with_422() {
    let app = TestSim::start(quick()).await;
    let now = Utc::now().timestamp();
    let day_ago = now - 86_400;
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("limit 0", summary_query("N01", day_ago, now, 0, 1)),
        ("limit 101", summary_query("N01", day_ago, now, 101, 1)),
        ("offset 0", summary_query("N01", day_ago, now, 100, 0)),
        ("over 24 h", summary_query("N01", day_ago - 1, now, 100, 1)),
        (
            "no endDate",
            summary_query("N01", day_ago, now, 100, 1)
                .into_iter()
                .filter(|(k, _)| *k != "endDate")
                .collect(),
        ),
    ];
    for path in ["/transaction/version-2", "/transaction"] {
        for (what, query) in &cases {
            let (status, body) = app.summaries(path, query).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path} {what}: {body}"
            );
            assert_eq!(body["type"], "PayloadValidationError", "{path} {what}");
            assert!(
                !body["messages"].as_array().expect("messages").is_empty(),
                "{path} {what}"
            );
        }
    }
    let (status, body) = app
        .send(
            app.client
                .get(app.url("/transaction/version-2"))
                .header("X-Sonnys-Site-Code", "N01")
                .query(&summary_query("N02", day_ago, now, 100, 1)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("NotAuthorizedSiteArgsError"), "{body}");
    assert_eq!(
        app.sim().counters(ID).summary_requests,
        2 * cases.len() as u64 + 1
    );
}

#[tokio::test]
async fn version_2_hides_a_change_until_its_cached_answer_is_gone() {
    let app = TestSim::start(quick_with_totals()).await;
    let date = find_day(app.sim(), |v| v >= 150);
    let (start, end) = day_window(date);
    let (start, end) = (start.timestamp(), end.timestamp());
    let query = summary_query("N01", start, end, 100, 1);
    let before = app.summary_page("/transaction/version-2", &query).await;
    let items = |page: &Value| page["transactions"].as_array().expect("items").clone();
    // A transaction neither voided nor free, so the change shows.
    let i = items(&before)
        .iter()
        .position(|t| t["transactionStatus"] != "Voided" && t["total"] != 0.0)
        .expect("a paid transaction");
    let id = before["transactions"][i]["transId"]
        .as_str()
        .expect("id")
        .to_string();

    assert!(app.sim().update_transaction(ID, &id, |r| {
        r["transactionStatus"] = "Voided".into();
        r["total"] = 0.into();
    }));
    let cached = app.summary_page("/transaction/version-2", &query).await;
    assert_eq!(
        cached, before,
        "an identical request within 10 minutes is cached"
    );
    // Other criteria are another request, and /transaction is not cached.
    let other = app
        .summary_page(
            "/transaction/version-2",
            &summary_query("N01", start, end, 99, 1),
        )
        .await;
    assert_eq!(other["transactions"][i]["transactionStatus"], "Voided");
    let plain = app.summary_page("/transaction", &query).await;
    assert_eq!(plain["transactions"][i]["total"], 0);

    app.sim().clear_job_cache();
    let after = app.summary_page("/transaction/version-2", &query).await;
    assert_eq!(after["transactions"][i]["transactionStatus"], "Voided");
    assert_eq!(after["transactions"][i]["total"], 0);
    let (mut after, mut before) = (items(&after), items(&before));
    after.remove(i);
    before.remove(i);
    assert_eq!(after, before, "nothing else changed");
}

#[tokio::test]
async fn null_totals_come_where_the_knobs_say_and_the_items_still_do() {
    let mut config = quick();
    config.faults.null_total_rate = 1.0;
    config.faults.job_null_total_rate = 1.0;
    let app = TestSim::start(config).await;
    let date = find_day(app.sim(), |v| v >= 150);
    let (start, end) = day_window(date);
    let (start, end) = (start.timestamp(), end.timestamp());
    for path in ["/transaction/version-2", "/transaction"] {
        let data = app
            .summary_page(path, &summary_query("N01", start, end, 100, 1))
            .await;
        assert!(data["total"].is_null(), "{path}: {data}");
        assert_eq!(data["transactions"].as_array().map(Vec::len), Some(100));
    }
    let page = app.fetch_page("N01", start, end, 1).await;
    assert!(page["total"].is_null(), "{page}");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(100));

    // Without the knobs every total is given.
    app.sim().set_faults(Faults::default());
    app.sim().clear_job_cache();
    let data = app
        .summary_page(
            "/transaction/version-2",
            &summary_query("N01", start, end, 100, 1),
        )
        .await;
    let volume = app.sim().day_volume(ID, "N01", date) as u64;
    assert_eq!(data["total"].as_u64(), Some(volume));
    let page = app.fetch_page("N01", start, end, 1).await;
    assert_eq!(page["total"].as_u64(), Some(volume));
}
