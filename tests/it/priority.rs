//! Priority across processes on one API id: a process never takes a slot for
//! a background request while another process waits with a normal one; a
//! background process gets the slots nobody else waits for; a dead
//! process's waiting record holds back no one once it expires. Judged from
//! the ledger's own rows, logged in the order the id's row lock serialised
//! them, and, for the service beside `sync --priority background`, from
//! what the simulator served.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sonnys_etl::budget::{Allowance, Budget, PgLedger, Priority, PriorityClass, WAITER_GRACE};
use sonnys_etl::domain::days::last_ended_day;
use sonnys_etl::domain::{parse_timezone, ApiId};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::time::Instant;

use crate::support::service::{ConfigFile, ServiceProcess};
use crate::support::{fast_simulator, test_db, TestApp};

/// A pool of its own, as another process would have.
async fn process_pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(3)
        .connect(url)
        .await
        .expect("connect to the test database")
}

/// A budget of its own ("a process") on `api_id`, asking at `class`.
async fn process(url: &str, api_id: &str, allowance: Allowance, class: PriorityClass) -> Budget {
    let ledger = PgLedger::new(
        process_pool(url).await,
        ApiId::parse(api_id).unwrap(),
        allowance,
    );
    Budget::with_ledger(allowance, ledger).with_class(class)
}

/// Keep every change of the shared ledger in `public.ledger_log`, in the
/// order the id's row lock serialised them: slots granted (with their
/// class), waiting records written, records removed.
async fn log_the_ledger(pool: &PgPool) {
    sqlx::raw_sql(
        "CREATE TABLE public.ledger_log (
             id         bigserial PRIMARY KEY,
             at         timestamptz NOT NULL DEFAULT clock_timestamp(),
             api_id     text NOT NULL,
             event      text NOT NULL,
             process    uuid,
             priority   smallint,
             expires_at timestamptz);
         CREATE FUNCTION public.log_granted() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO public.ledger_log (api_id, event, process, priority)
             VALUES (NEW.api_id, 'granted', NEW.process, NEW.priority);
             RETURN NULL;
         END $$;
         CREATE TRIGGER log_granted AFTER INSERT ON sonnys.api_requests
             FOR EACH ROW EXECUTE FUNCTION public.log_granted();
         CREATE FUNCTION public.log_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF TG_OP = 'DELETE' THEN
                 INSERT INTO public.ledger_log (api_id, event, process, priority)
                 VALUES (OLD.api_id, 'stops', OLD.process, OLD.priority);
             ELSE
                 INSERT INTO public.ledger_log (api_id, event, process, priority, expires_at)
                 VALUES (NEW.api_id, 'waits', NEW.process, NEW.priority, NEW.expires_at);
             END IF;
             RETURN NULL;
         END $$;
         CREATE TRIGGER log_waiting AFTER INSERT OR UPDATE OR DELETE ON sonnys.api_waiters
             FOR EACH ROW EXECUTE FUNCTION public.log_waiting();",
    )
    .execute(pool)
    .await
    .unwrap();
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Event {
    at: DateTime<Utc>,
    event: String,
    process: Option<String>,
    priority: Option<i16>,
    expires_at: Option<DateTime<Utc>>,
}

async fn events(pool: &PgPool, api_id: &str) -> Vec<Event> {
    sqlx::query_as(
        "SELECT at, event, process::text AS process, priority, expires_at
           FROM public.ledger_log WHERE api_id = $1 ORDER BY id",
    )
    .bind(api_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The classes of the slots granted, in order.
fn grants(events: &[Event]) -> Vec<i16> {
    events
        .iter()
        .filter(|e| e.event == "granted")
        .map(|e| e.priority.unwrap())
        .collect()
}

/// What the log says about the rule.
#[derive(Debug, Default)]
struct Replay {
    /// Background slots granted while another process's normal record was
    /// live: must be none.
    violations: Vec<String>,
    /// Records written that left a background and a normal record of two
    /// processes live at once: the times both waited.
    both_waited: usize,
    normal_grants: usize,
    background_grants: usize,
    /// Background slots granted between the first and the last normal one.
    background_among_normal: usize,
}

/// Replay the ledger's log, keeping each process's live waiting record.
fn replay(events: &[Event]) -> Replay {
    let mut records: HashMap<String, (i16, DateTime<Utc>)> = HashMap::new();
    let mut r = Replay::default();
    let normal_held = |records: &HashMap<String, (i16, DateTime<Utc>)>, me: &str, at| {
        records
            .iter()
            .find(|(p, (priority, expires))| p.as_str() != me && *priority > 0 && *expires > at)
            .map(|(p, (_, expires))| format!("{p} waits with normal until {expires}"))
    };
    let first_normal = events
        .iter()
        .position(|e| e.event == "granted" && e.priority == Some(1));
    let last_normal = events
        .iter()
        .rposition(|e| e.event == "granted" && e.priority == Some(1));
    for (i, e) in events.iter().enumerate() {
        let me = e.process.clone().unwrap_or_default();
        match e.event.as_str() {
            "waits" => {
                records.insert(me, (e.priority.unwrap(), e.expires_at.unwrap()));
                let background_waits = records
                    .iter()
                    .filter(|(_, (priority, expires))| *priority == 0 && *expires > e.at)
                    .any(|(p, _)| normal_held(&records, p, e.at).is_some());
                if background_waits {
                    r.both_waited += 1;
                }
            }
            "stops" => {
                records.remove(&me);
            }
            _ if e.priority == Some(1) => r.normal_grants += 1,
            _ => {
                r.background_grants += 1;
                if first_normal.is_some_and(|f| f < i) && last_normal.is_some_and(|l| i < l) {
                    r.background_among_normal += 1;
                }
                if let Some(holder) = normal_held(&records, &me, e.at) {
                    r.violations
                        .push(format!("{me} got a background slot at {}: {holder}", e.at));
                }
            }
        }
    }
    r
}

/// Wait until the ledger holds a waiting record of `class` on `api_id`.
async fn await_record(pool: &PgPool, api_id: &str, class: PriorityClass) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sonnys.api_waiters WHERE api_id = $1 AND priority = $2)",
        )
        .bind(api_id)
        .bind(class.level())
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting {
            return;
        }
        assert!(Instant::now() < deadline, "no {class} waiting record");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn spawn_acquires(budget: &Budget, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let budget = budget.clone();
            tokio::spawn(async move {
                budget
                    .acquire(Priority::Open, &format!("site-{}", i % 2))
                    .await
                    .unwrap();
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_process_is_served_before_a_background_one_that_waited_first_and_the_background_one_gets_every_idle_slot(
) {
    let db = test_db().await;
    log_the_ledger(&db.pool).await;
    let api_id = "priority-id";
    let allowance = Allowance {
        requests: 4,
        window: Duration::from_millis(1_500),
        guard: Duration::ZERO,
    };
    let normal = process(&db.url, api_id, allowance, PriorityClass::Normal).await;
    let background = process(&db.url, api_id, allowance, PriorityClass::Background).await;

    // The normal process is idle: the background one gets the whole window.
    let start = Instant::now();
    for _ in 0..allowance.requests {
        background.acquire(Priority::Open, "site-0").await.unwrap();
    }
    let filled = start.elapsed();
    assert!(
        filled < allowance.window,
        "took {filled:?} for an idle budget"
    );

    // Both wait for the window to free; the background one asked first.
    let later_background = spawn_acquires(&background, 4);
    await_record(&db.pool, api_id, PriorityClass::Background).await;
    let normal_requests = spawn_acquires(&normal, 4);
    await_record(&db.pool, api_id, PriorityClass::Normal).await;
    assert!(
        start.elapsed() < allowance.window,
        "the test machine took longer than a window to queue the requests: inconclusive"
    );
    for t in normal_requests.into_iter().chain(later_background) {
        t.await.unwrap();
    }

    let log = events(&db.pool, api_id).await;
    assert_eq!(
        grants(&log),
        [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0],
        "the window's slots: the idle fill, then the normal process's, then the background's"
    );
    let replay = replay(&log);
    assert!(replay.violations.is_empty(), "{:#?}", replay.violations);
    assert!(replay.both_waited > 0, "both processes waited at once");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.api_waiters")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "a process that stops waiting removes its record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_processs_waiting_record_holds_back_no_one_once_it_expires() {
    let db = test_db().await;
    log_the_ledger(&db.pool).await;
    let api_id = "crash-id";
    let allowance = Allowance {
        requests: 2,
        window: Duration::from_millis(1_000),
        guard: Duration::ZERO,
    };
    let normal = process(&db.url, api_id, allowance, PriorityClass::Normal).await;
    let background = process(&db.url, api_id, allowance, PriorityClass::Background).await;
    for _ in 0..allowance.requests {
        normal.acquire(Priority::Open, "site").await.unwrap();
    }
    // The normal process waits for a slot, then dies: nothing of it runs
    // any more, its waiting record stays behind.
    let waiting = spawn_acquires(&normal, 1);
    await_record(&db.pool, api_id, PriorityClass::Normal).await;
    for t in &waiting {
        t.abort();
    }
    drop(normal);
    let (next_look, expires_at): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT next_look, expires_at FROM sonnys.api_waiters WHERE api_id = $1 AND priority = 1",
    )
    .bind(api_id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        (expires_at - next_look).to_std().unwrap(),
        WAITER_GRACE,
        "the record outlives the process's next look by the grace only"
    );

    background.acquire(Priority::Open, "site").await.unwrap();
    let log = events(&db.pool, api_id).await;
    let granted = log
        .iter()
        .rfind(|e| e.event == "granted" && e.priority == Some(0))
        .expect("the background slot")
        .at;
    let last_normal = log
        .iter()
        .rfind(|e| e.event == "granted" && e.priority == Some(1))
        .unwrap()
        .at;
    assert!(
        granted >= expires_at,
        "held back while the record was live: granted at {granted}, record until {expires_at}"
    );
    assert!(
        (granted - expires_at).to_std().unwrap() < Duration::from_secs(1),
        "served once the record expired: granted at {granted}, record until {expires_at}"
    );
    assert!(
        (expires_at - last_normal).to_std().unwrap()
            <= allowance.window + WAITER_GRACE + Duration::from_millis(200),
        "a dead process holds back others for at most a window and the grace"
    );
    let replay = replay(&log);
    assert!(replay.violations.is_empty(), "{:#?}", replay.violations);
}

/// A cron expression that fires once a year: only the start-up run happens.
const YEARLY: &str = "0 0 4 1 1 *";

/// The service's configuration: its start-up run exports the last
/// `catch_up_days` ended days. Two processes, the simulator, the test and
/// the rest of the suite share two cores here: the guard is wide, as in the
/// replica test.
fn service_toml(app: &TestApp, catch_up_days: u32) -> String {
    format!(
        "{}\n[schedule]\ncron = \"{YEARLY}\"\ntimezone = \"America/Chicago\"\ncatch_up_days = {catch_up_days}\nlookback_days = 0\n\n[server]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"20s\"\n",
        app.config_toml(20, Duration::from_millis(600))
            .replace("jitter_guard = \"20ms\"", "jitter_guard = \"300ms\"")
    )
}

async fn stored(app: &TestApp, account: &str, code: &str, date: NaiveDate) -> usize {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sonnys.transactions WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account)
    .bind(code)
    .bind(date)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    n as usize
}

/// The last `n` ended business days of a site, oldest first.
fn recent_days(app: &TestApp, account: &str, code: &str, n: u64) -> Vec<NaiveDate> {
    let site = app.site(account, code);
    let zone = site
        .timezone
        .unwrap_or_else(|| app.account(account).timezone);
    let last = last_ended_day(parse_timezone(&zone).unwrap(), Utc::now());
    (0..n)
        .rev()
        .map(|back| last - chrono::Days::new(back))
        .collect()
}

// The simulator runs on this test's runtime, with two threads (see the
// replica test in service.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_night_is_served_first_whenever_a_background_sync_beside_it_also_waits() {
    let app = TestApp::start(fast_simulator()).await;
    log_the_ledger(&app.db.pool).await;
    let catch_up_days = 2;
    let config = ConfigFile::new(&service_toml(&app, catch_up_days));
    let northside = app.account("northside");
    let codes: Vec<String> = northside.sites.iter().map(|s| s.code.clone()).collect();

    // A backfill of older days on northside's API id, started first: with
    // the budget to itself, it takes every slot.
    let to = Utc::now().date_naive() - chrono::Days::new(u64::from(catch_up_days) + 3);
    let from = to - chrono::Days::new(7);
    let (from_arg, to_arg) = (from.to_string(), to.to_string());
    let mut backfill = ServiceProcess::command(
        &config.path,
        &[
            "sync",
            "--account",
            "northside",
            "--from",
            &from_arg,
            "--to",
            &to_arg,
            "--priority",
            "background",
        ],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let grants = grants(&events(&app.db.pool, &northside.api_id).await);
        if grants.len() >= 20 {
            assert!(grants.iter().all(|c| *c == 0), "{grants:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the backfill took no slot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The service starts and runs its night meanwhile.
    let night_started = Instant::now();
    let service = ServiceProcess::start(&config.path, &[]);
    service
        .wait_for("run finished", 1, Duration::from_secs(180))
        .await;
    let night = night_started.elapsed();
    let status = backfill.exit(Duration::from_secs(180)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the backfill: {status:?}\n{}",
        backfill.log().join("\n")
    );
    assert!(
        backfill.count("requests at priority background") >= 1,
        "{}",
        backfill.log().join("\n")
    );

    // Whenever both waited, the service went first: no background slot
    // while the service's normal record was live.
    let log = events(&app.db.pool, &northside.api_id).await;
    let replay = replay(&log);
    eprintln!(
        "night {night:?} beside the backfill: {} normal and {} background slots, {} of them \
         amid the night's; both waited at {} records",
        replay.normal_grants,
        replay.background_grants,
        replay.background_among_normal,
        replay.both_waited
    );
    assert!(replay.violations.is_empty(), "{:#?}", replay.violations);
    assert!(
        replay.both_waited > 0,
        "the two processes never waited at once: the test proved nothing"
    );
    assert!(replay.normal_grants > 0);
    let grants = grants(&log);
    let last_normal = grants.iter().rposition(|c| *c == 1).unwrap();
    assert!(
        grants[last_normal..].contains(&0),
        "the backfill resumed after the night"
    );

    // Both landed exactly, without a 429.
    let counters = app.simulator().counters(&northside.api_id);
    assert_eq!(counters.rate_limited, 0, "one budget, shared");
    for code in &codes {
        let night_days = recent_days(&app, "northside", code, u64::from(catch_up_days));
        for date in from.iter_days().take_while(|d| *d <= to).chain(night_days) {
            assert_eq!(
                stored(&app, "northside", code, date).await,
                app.served("northside", code, date).len(),
                "northside {code} {date}"
            );
        }
    }
    drop(service);
}

/// `sonnys-etl --config <config> <args>`, run to its end.
async fn run_to_end(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sonnys-etl"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SONNYS_ETL_CONFIG")
        .env("NO_COLOR", "1");
    tokio::task::spawn_blocking(move || command.output().expect("run sonnys-etl"))
        .await
        .unwrap()
}

#[tokio::test]
async fn sync_goes_at_background_for_days_older_than_the_nightly_range_unless_told_otherwise() {
    let app = TestApp::start(fast_simulator()).await;
    let config = ConfigFile::new(&service_toml(&app, 2));
    let help = run_to_end(&config.path, &["sync", "--help"]).await;
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(
        help.contains("--priority <PRIORITY>") && help.contains("background"),
        "{help}"
    );
    let old = (Utc::now().date_naive() - chrono::Days::new(10)).to_string();
    let recent = recent_days(&app, "northside", "N01", 1)[0].to_string();
    for (day, extra, class) in [
        (&old, None, "background"),
        (&recent, None, "normal"),
        (&old, Some("normal"), "normal"),
    ] {
        let mut args = vec![
            "sync",
            "--account",
            "northside",
            "--site",
            "N01",
            "--from",
            day,
            "--to",
            day,
        ];
        if let Some(priority) = extra {
            args.extend(["--priority", priority]);
        }
        let output = run_to_end(&config.path, &args).await;
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {log}");
        assert!(
            log.contains(&format!("requests at priority {class}")),
            "{args:?}: {log}"
        );
    }
}
