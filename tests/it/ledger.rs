//! The request budget shared through PostgreSQL: processes on one API id
//! (separate pools to one database) keep together to the vendor's limit, and
//! a 429 seen by one pauses them all. The simulator's throttle is the judge.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sonnys_etl::budget::{Allowance, Budget, Ledger, PgLedger, Priority, PriorityClass, Wants};
use sonnys_etl::configuration::{Keys, Settings, Sources};
use sonnys_etl::domain::days::DaySelection;
use sonnys_etl::domain::ApiId;
use sonnys_etl::progress::Progress;
use sonnys_etl::sync::{SyncPlan, Syncer};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::support::{fast_simulator, TestApp};

/// The budget of `fast_simulator()` as `TestApp::config_toml` configures it.
const ALLOWANCE: Allowance = Allowance {
    requests: 20,
    window: Duration::from_millis(600),
    guard: Duration::from_millis(20),
};

/// A pool of its own, as another process would have.
async fn process_pool(app: &TestApp) -> PgPool {
    PgPoolOptions::new()
        .max_connections(3)
        .connect(&app.db.url)
        .await
        .expect("connect to the test database")
}

fn shared_budget(pool: PgPool, api_id: &str, allowance: Allowance) -> Budget {
    Budget::with_ledger(
        allowance,
        PgLedger::new(pool, ApiId::parse(api_id).unwrap(), allowance),
    )
}

/// Keep a copy of every reservation: the ledger deletes the rows that left
/// the window.
async fn log_reservations(pool: &PgPool) {
    sqlx::raw_sql(
        "CREATE TABLE public.reserved (api_id text, sent_at timestamptz);
         CREATE FUNCTION public.log_reserved() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO public.reserved VALUES (NEW.api_id, NEW.sent_at); RETURN NULL; END $$;
         CREATE TRIGGER log_reserved AFTER INSERT ON sonnys.api_requests
            FOR EACH ROW EXECUTE FUNCTION public.log_reserved();",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// The database's time of every reservation of `api_id`, in seconds, in order.
async fn reservations(pool: &PgPool, api_id: &str) -> Vec<f64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM sent_at)::float8 FROM public.reserved
          WHERE api_id = $1 ORDER BY sent_at",
    )
    .bind(api_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// One request to the simulator with the id's headers, right after a grant.
async fn send(http: &reqwest::Client, base_url: &str, api_id: &str, api_key: &str) -> u16 {
    http.get(format!("{base_url}/site/list"))
        .header("X-Sonnys-API-ID", api_id)
        .header("X-Sonnys-API-Key", api_key)
        .send()
        .await
        .expect("the simulator answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_of_separate_processes_never_fill_a_window_past_the_allowance() {
    let app = TestApp::start(fast_simulator()).await;
    let account = app.account("northside");
    let http = reqwest::Client::new();
    let base_url = app.sim.base_url();
    let mut total = 0u64;
    // The simulated window is 25 times shorter than the real one, the test
    // machine's scheduling delays between reservation and send are not: the
    // guard that absorbs them is larger than `TestApp`'s.
    let allowance = Allowance {
        guard: Duration::from_millis(100),
        ..ALLOWANCE
    };
    log_reservations(&app.db.pool).await;
    // Each seed is one random scenario: how many processes, how many
    // requests, when they arrive, with which priority and site.
    for seed in [7u64, 1_000_003] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let processes = rng.gen_range(2..=4);
        let mut budgets = Vec::new();
        for _ in 0..processes {
            budgets.push(shared_budget(
                process_pool(&app).await,
                &account.api_id,
                allowance,
            ));
        }
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        let requests = rng.gen_range(50..90);
        for _ in 0..requests {
            let budget = budgets[rng.gen_range(0..processes)].clone();
            let at = start + Duration::from_millis(rng.gen_range(0..1200));
            let priority =
                [Priority::Poll, Priority::Continue, Priority::Open][rng.gen_range(0..3)];
            let lane = format!("site-{}", rng.gen_range(0..4));
            let (http, base_url) = (http.clone(), base_url.clone());
            let (api_id, api_key) = (account.api_id.clone(), account.api_key.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                budget.acquire(priority, &lane).await.unwrap();
                send(&http, &base_url, &api_id, &api_key).await
            }));
        }
        for t in tasks {
            assert_eq!(
                t.await.unwrap(),
                200,
                "seed {seed}: every request is served"
            );
        }
        total += requests;
        // Let the window empty so the next scenario starts from scratch.
        tokio::time::sleep(allowance.window + allowance.guard).await;
    }
    let counters = app.simulator().counters(&account.api_id);
    assert_eq!(counters.requests, total);
    assert_eq!(counters.rate_limited, 0, "no 429 between the processes");
    assert!(
        counters.max_in_window <= allowance.requests,
        "the server counted {} in one window",
        counters.max_in_window
    );
    // By the database's clock, exactly: any `requests + 1` reservations in a
    // row span at least the window and guard.
    let reserved = reservations(&app.db.pool, &account.api_id).await;
    assert_eq!(reserved.len() as u64, total, "one reservation per request");
    let life = (allowance.window + allowance.guard).as_secs_f64();
    let n = allowance.requests as usize;
    for (i, pair) in reserved.windows(n + 1).enumerate() {
        assert!(
            pair[n] - pair[0] >= life - 1e-6,
            "reservations {i}..={} span {:.6} s, under {life} s",
            i + n,
            pair[n] - pair[0]
        );
    }
}

#[tokio::test]
async fn a_429_seen_by_one_process_pauses_every_process_on_the_id() {
    let app = TestApp::start(fast_simulator()).await;
    let api_id = "shared-id";
    let one = shared_budget(process_pool(&app).await, api_id, ALLOWANCE);
    let other = shared_budget(process_pool(&app).await, api_id, ALLOWANCE);
    other.acquire(Priority::Open, "x").await.unwrap();
    one.acquire(Priority::Open, "x").await.unwrap();
    let hit = Instant::now();
    one.rate_limited(Some(Duration::from_millis(900)));
    // Give the pause time to reach the database, then ask from the other
    // process, whose own window has room.
    tokio::time::sleep(Duration::from_millis(100)).await;
    other.acquire(Priority::Poll, "x").await.unwrap();
    assert!(
        hit.elapsed() >= Duration::from_millis(900),
        "the other process waited out the Retry-After too: {:?}",
        hit.elapsed()
    );
    one.acquire(Priority::Poll, "x").await.unwrap();
    assert!(hit.elapsed() >= Duration::from_millis(900));
    assert_eq!(other.stats().rate_limited, 0, "the other saw no 429 itself");
    assert_eq!(one.stats().rate_limited, 1);
}

#[tokio::test]
async fn a_full_window_is_full_for_every_process_by_the_database_clock() {
    let app = TestApp::start(fast_simulator()).await;
    let pool = process_pool(&app).await;
    let id = ApiId::parse("clock-id").unwrap();
    let mut one = PgLedger::new(pool.clone(), id.clone(), ALLOWANCE);
    let mut other = PgLedger::new(process_pool(&app).await, id, ALLOWANCE);
    let first = one
        .reserve(20, Wants::of(PriorityClass::Normal, 15))
        .await
        .unwrap();
    assert_eq!(first.granted, 15);
    assert_eq!(first.retry_in, Duration::ZERO);
    let second = other
        .reserve(20, Wants::of(PriorityClass::Normal, 10))
        .await
        .unwrap();
    assert_eq!(second.granted, 5, "only what the first process left");
    let life = ALLOWANCE.window + ALLOWANCE.guard;
    assert!(
        second.retry_in > life - Duration::from_millis(200) && second.retry_in <= life,
        "the oldest slot frees one window and guard after it was taken: {:?}",
        second.retry_in
    );
    let third = one
        .reserve(20, Wants::of(PriorityClass::Normal, 1))
        .await
        .unwrap();
    assert_eq!(third.granted, 0);
    tokio::time::sleep(life + Duration::from_millis(50)).await;
    let later = other
        .reserve(20, Wants::of(PriorityClass::Normal, 20))
        .await
        .unwrap();
    assert_eq!(later.granted, 20, "the whole window freed");
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sonnys.api_requests WHERE api_id = 'clock-id'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 20, "sends that left the window are deleted");
}

/// Transaction ids and totals of a site-day as stored.
async fn stored(
    pool: &PgPool,
    account: &str,
    code: &str,
    date: NaiveDate,
) -> HashMap<String, String> {
    sqlx::query(
        "SELECT id, total::text AS total FROM sonnys.transactions
          WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account)
    .bind(code)
    .bind(date)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("id"), r.get("total")))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncers_on_one_api_id_draw_no_429_and_store_exact_data() {
    let app = TestApp::start(fast_simulator()).await;
    let to = chrono::Utc::now().date_naive() - chrono::Days::new(2);
    let from = to - chrono::Days::new(2);
    // `TestApp`'s settings, with a guard for the scheduling delays of a busy
    // test machine between a reservation in one process and its send.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let toml = app
        .config_toml(20, ALLOWANCE.window)
        .replace("jitter_guard = \"20ms\"", "jitter_guard = \"60ms\"");
    std::fs::write(&path, toml).unwrap();
    let settings = Arc::new(
        Settings::load(&Sources {
            file: Some(&path),
            env: HashMap::new(),
            keys: Keys::Required,
        })
        .unwrap(),
    );
    assert_eq!(settings.api.jitter_guard, Duration::from_millis(60));
    let syncer = |pool: PgPool| Syncer::new(settings.clone(), pool);
    let plan = |sites: &[&str]| SyncPlan {
        days: DaySelection::Range {
            from,
            to,
            missing_only: false,
        },
        accounts: vec!["northside".into()],
        sites: sites.iter().map(|s| s.to_string()).collect(),
    };
    // Two "processes": a pool each, different sites, started together.
    let (first, second) = (
        syncer(process_pool(&app).await),
        syncer(process_pool(&app).await),
    );
    let (first_plan, second_plan) = (plan(&["N01"]), plan(&["N02", "N03"]));
    let shutdown = CancellationToken::new();
    let progress = Progress::plain();
    let started = Instant::now();
    let (a, b) = tokio::join!(
        first.run(&first_plan, &shutdown, &progress),
        second.run(&second_plan, &shutdown, &progress),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.ok(), "{a}");
    assert!(b.ok(), "{b}");
    let api_id = app.account("northside").api_id;
    let counters = app.simulator().counters(&api_id);
    eprintln!(
        "two syncers, 3 sites x 3 days: {} requests in {:?}, {} x 429, at most {} in a window",
        counters.requests,
        started.elapsed(),
        counters.rate_limited,
        counters.max_in_window
    );
    assert_eq!(
        counters.rate_limited, 0,
        "the two processes share one budget"
    );
    assert!(counters.max_in_window <= ALLOWANCE.requests);
    for code in ["N01", "N02", "N03"] {
        for date in from.iter_days().take_while(|d| *d <= to) {
            let served: HashMap<String, String> = app
                .served("northside", code, date)
                .iter()
                .map(|r| {
                    let total = r["total"].to_string().trim_matches('"').to_string();
                    (r["id"].as_str().unwrap().to_string(), total)
                })
                .collect();
            let stored = stored(&app.db.pool, "northside", code, date).await;
            assert_eq!(
                stored.len(),
                served.len(),
                "northside/{code} {date}: row count"
            );
            for (id, total) in &served {
                let got = stored.get(id).unwrap_or_else(|| panic!("{id} missing"));
                assert_eq!(
                    got.parse::<f64>().unwrap(),
                    total.parse::<f64>().unwrap(),
                    "{id} total"
                );
            }
        }
    }
}
