//! The simulator seen over HTTP, as the daemon sees it: throttle, validation,
//! jobs, auth, paging, the live service's quirks and determinism.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use reqwest::StatusCode;
use serde_json::Value;
use sonnys_etl::simulator::{Faults, RunningSimulator, Simulator, SimulatorConfig};

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
    assert_eq!(served, expected);
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
        r["transactionStatus"] = "Voided".into();
        r["customerName"] = "Changed Later".into();
    }));
    // The old hash keeps its snapshot; a new build after expiry shows the change.
    let again = app.fetch_page("N01", start, end, 1).await;
    assert_eq!(again["data"][0], page["data"][0]);
    app.sim().clear_job_cache();
    let changed = app.fetch_page("N01", start, end, 1).await;
    assert_eq!(changed["data"][0]["transactionStatus"], "Voided");
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
