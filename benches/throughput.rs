//! Throughput at the API's ceiling: the daemon against the reference client's
//! documented method, on the simulator with a scaled throttle window.
//!
//! `cargo bench --bench throughput` (PostgreSQL from DATABASE_URL, else the
//! local server on 127.0.0.1:5432, else a private one in target/bench-postgres).
//!
//! Prints requests per page, 429s, budget utilisation, wall time against the
//! theoretical minimum, the reference client's time and the ratio, two
//! accounts together against each alone, the daemon beside a neighbour that
//! spends the reserve, and the peak memory of a 10,000-transaction sync.
//! With the budget shared in PostgreSQL: two and three processes on one API
//! id (`processes`), `plan` against the requests spent (`plan`), two `run`
//! replicas with one killed mid-run (`replicas`), the ledger's cost per
//! request (`ledger`), the tail of a run once the budget is idle (`tail`),
//! the whole `sync` process timed from spawn to exit (`process`), and a
//! night's lookback by summaries against whole re-exports on a 40-site
//! chain (`lookback`).
//! Name parts to run only those: `cargo bench --bench throughput -- tail`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use sonnys_etl::api::model::{JobStatus, Transaction};
use sonnys_etl::api::Client;
use sonnys_etl::budget::{Allowance, Budget, Priority};
use sonnys_etl::configuration::{Settings, Sources};
use sonnys_etl::domain::{parse_timezone, ApiId, BusinessDay, SiteCode};
use sonnys_etl::progress::Progress;
use sonnys_etl::rehearsal::pgserver::{server_answers, Options, PrivatePostgres};
use sonnys_etl::rehearsal::simulator::{RunningSimulator, Simulator, SimulatorConfig};
use sonnys_etl::sync::{SyncPlan, SyncSummary, Syncer};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The vendor's limit, with the window scaled from 15 s to 1.5 s (×0.1).
const LIMIT: u32 = 20;
const WINDOW: Duration = Duration::from_millis(1500);
/// Build latency scaled the same way (a few seconds on the live service).
const BUILD: Duration = Duration::from_millis(300);
/// The reference client polls every 2 s; scaled.
const REFERENCE_POLL: Duration = Duration::from_millis(200);
const GUARD: Duration = Duration::from_millis(20);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = database_server().await?;
    // `cargo bench --bench throughput -- daemon` runs only the named parts
    // (daemon always runs: the others compare against it).
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |part: &str| only.is_empty() || only.iter().any(|o| o == part);

    println!("sonnys-etl throughput benchmark");
    println!(
        "simulator: {LIMIT} requests per {} ms per API id (the live 20 per 15 s, scaled ×0.1), build latency {} ms ±50 %",
        WINDOW.as_millis(),
        BUILD.as_millis()
    );

    // 1. One API id, three sites, enough days for ≥ 100 pages.
    let sim = start_simulator().await?;
    let (from, to) = range_with_volume(&sim, "northside", &["N01", "N02", "N03"], 10_000);
    let db = fresh_database(&server, "one").await?;
    let run = plan_run(&sim, &db, account_plan("northside", from, to), 0).await?;
    let counters = sim.simulator().counters("northside-demo");
    let pages = run.summary.accounts[0].pages;
    let transactions = run.summary.accounts[0].transactions;
    let minimum = theoretical_minimum(pages);
    // The most a sliding window lets through in the run's time: a full
    // allowance for every window begun.
    let allowed = LIMIT as f64 * (run.wall.as_secs_f64() / WINDOW.as_secs_f64()).ceil();
    println!();
    println!(
        "[daemon] northside N01–N03, {from}..{to}: {transactions} transactions, {pages} pages"
    );
    println!(
        "  requests sent:        {} ({:.3} per page)",
        counters.requests,
        counters.requests as f64 / pages as f64
    );
    println!("  polls still working:  {}", counters.polls_working);
    println!("  429 answers:          {}", counters.rate_limited);
    println!(
        "  most in one window:   {} of {LIMIT}",
        counters.max_in_window
    );
    println!(
        "  budget utilisation:   {:.1} % ({} sent / {:.0} allowed during the run)",
        100.0 * counters.requests as f64 / allowed,
        counters.requests,
        allowed
    );
    println!("  wall time:            {:.2} s", run.wall.as_secs_f64());
    println!(
        "  theoretical minimum:  {:.2} s  (max(0, 3·{pages} − {LIMIT}) / {LIMIT} · {} s: a submit, a poll and a summary per page)",
        minimum.as_secs_f64(),
        WINDOW.as_secs_f64()
    );
    println!(
        "  efficiency:           {:.3}  (minimum / wall)",
        minimum.as_secs_f64() / run.wall.as_secs_f64()
    );
    let physical = physical_minimum(counters.requests);
    println!(
        "  physical minimum:     {:.2} s  (request i no earlier than ⌊i / {LIMIT}⌋ windows after the first), efficiency {:.3}",
        physical.as_secs_f64(),
        physical.as_secs_f64() / run.wall.as_secs_f64()
    );

    // 1b. Several processes on the one API id, each with its own pool and
    // budget: they keep together to the limit through the ledger in
    // PostgreSQL.
    if want("processes") {
        for split in [
            vec![vec!["N01"], vec!["N02", "N03"]],
            vec![vec!["N01"], vec!["N02"], vec!["N03"]],
        ] {
            let sim_p = start_simulator().await?;
            let db_p = fresh_database(&server, &format!("processes{}", split.len())).await?;
            let started = Instant::now();
            let runs = futures::future::join_all(split.iter().map(|sites| {
                let (sim_p, url) = (&sim_p, db_p.1.clone());
                async move {
                    let pool = sonnys_etl::store::connect(&url, 5).await?;
                    let syncer = Syncer::new(Arc::new(settings(sim_p, &url, 0)?), pool);
                    let mut plan = account_plan("northside", from, to);
                    plan.sites = sites.iter().map(|s| s.to_string()).collect();
                    let summary = syncer
                        .run(&plan, &CancellationToken::new(), &Progress::plain())
                        .await
                        .map_err(anyhow::Error::msg)?;
                    anyhow::ensure!(summary.ok(), "a process failed:\n{summary}");
                    anyhow::Ok(summary.accounts[0].transactions)
                }
            }))
            .await;
            let wall = started.elapsed();
            let transactions: u64 = runs
                .into_iter()
                .collect::<anyhow::Result<Vec<_>>>()?
                .iter()
                .sum();
            let c = sim_p.simulator().counters("northside-demo");
            let physical = physical_minimum(c.requests);
            let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions")
                .fetch_one(&db_p.0)
                .await?;
            println!();
            println!(
                "[{} processes] northside {}, {from}..{to}, one API id, a ledger in PostgreSQL",
                split.len(),
                split
                    .iter()
                    .map(|s| s.join("+"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
            println!(
                "  requests: {}, 429 answers: {}, most in one window: {} of {LIMIT}",
                c.requests, c.rate_limited, c.max_in_window
            );
            println!(
                "  transactions: {transactions} exported, {stored} stored (one process alone: {})",
                run.summary.accounts[0].transactions
            );
            println!(
                "  wall time: {:.2} s, physical minimum {:.2} s, efficiency {:.3}",
                wall.as_secs_f64(),
                physical.as_secs_f64(),
                physical.as_secs_f64() / wall.as_secs_f64()
            );
        }
    }

    // 1c. `plan` against the requests actually spent: four weeks of history,
    // then the forecast of the following week, then that week exported.
    if want("plan") {
        let sim_p = start_simulator().await?;
        let db_p = fresh_database(&server, "plan").await?;
        let to = Utc::now().date_naive() - Days::new(2);
        let (week_from, history_to) = (to - Days::new(6), to - Days::new(7));
        let history_from = history_to - Days::new(27);
        plan_run(
            &sim_p,
            &db_p,
            account_plan("northside", history_from, history_to),
            0,
        )
        .await?;
        let settings = settings(&sim_p, &db_p.1, 0)?;
        let forecast = sonnys_etl::plan::forecast(
            &db_p.0,
            &settings,
            sonnys_etl::domain::days::DaySelection::Range {
                from: week_from,
                to,
                missing_only: false,
            },
            Utc::now(),
        )
        .await?;
        let before = sim_p.simulator().counters("northside-demo").requests;
        let week = plan_run(&sim_p, &db_p, account_plan("northside", week_from, to), 0).await?;
        let spent = sim_p.simulator().counters("northside-demo").requests - before;
        let predicted = forecast
            .api_ids
            .iter()
            .find(|f| f.api_id == "northside-demo")
            .map_or(0.0, |f| f.requests);
        println!();
        println!(
            "[plan] northside N01–N03: history {history_from}..{history_to}, forecast of {week_from}..{to}"
        );
        println!(
            "  forecast: {predicted:.0} requests; spent: {spent} requests ({} pages); error {:+.1} %",
            week.summary.accounts[0].pages,
            100.0 * (predicted - spent as f64) / spent as f64
        );
    }

    // 1d. Replicas of the service, one killed with SIGKILL mid-run.
    if want("replicas") {
        replicas(&server).await?;
    }

    // 1e. What a request costs with the ledger in PostgreSQL.
    if want("ledger") {
        ledger_cost(&server).await?;
    }

    // 1g. The whole `sonnys-etl sync` process, from spawn to exit, against
    // the physical minimum of the requests it sent (export and summaries).
    if want("process") {
        whole_process(&server, from, to).await?;
    }

    // 1h. A night's lookback on a 40-site chain after a few late changes:
    // by summaries against whole re-exports.
    if want("lookback") {
        lookback_nights(&server).await?;
    }

    // 1f. An idle budget at the end of a run: the tail is bound by builds.
    if want("tail") {
        idle_tail(&server).await?;
    }

    // 1g. Labour and memberships beside the transactions on one API id.
    if want("people") {
        people_night(&server, from, to).await?;
    }

    // 2. The same export the way the reference client documents it.
    if want("reference") {
        let sim_ref = start_simulator().await?;
        let reference =
            reference_client(&sim_ref, "northside", &["N01", "N02", "N03"], from, to).await?;
        let rc = sim_ref.simulator().counters("northside-demo");
        println!();
        println!(
            "[reference client] sites one after another, submit then poll every {} ms, one limiter",
            REFERENCE_POLL.as_millis()
        );
        println!(
            "  pages: {}, requests: {} ({:.3} per page), 429 answers: {}",
            reference.1,
            rc.requests,
            rc.requests as f64 / reference.1 as f64,
            rc.rate_limited
        );
        println!("  wall time:            {:.2} s", reference.0.as_secs_f64());
        println!(
            "  daemon is {:.2}× faster",
            reference.0.as_secs_f64() / run.wall.as_secs_f64()
        );
        assert_eq!(
            reference.2, transactions,
            "both exports read the same transactions"
        );
    }

    // 3. Two API ids: together in the time of the larger, not the sum.
    if want("accounts") {
        let (dfrom, dto) = range_with_volume(&sim, "desert", &["D01", "D02"], 6_000);
        let mut alone = HashMap::new();
        for (account, from, to) in [("northside", from, to), ("desert", dfrom, dto)] {
            let sim = start_simulator().await?;
            let db = fresh_database(&server, account).await?;
            let run = plan_run(&sim, &db, account_plan(account, from, to), 0).await?;
            alone.insert(account, run.wall);
        }
        let sim2 = start_simulator().await?;
        let db2 = fresh_database(&server, "both").await?;
        let both = both_accounts(&sim2, &db2, (from, to), (dfrom, dto)).await?;
        let n = alone["northside"].as_secs_f64();
        let d = alone["desert"].as_secs_f64();
        println!();
        println!(
            "[two accounts] northside alone {n:.2} s, desert alone {d:.2} s, both together {:.2} s",
            both.as_secs_f64()
        );
        println!(
            "  together / larger alone = {:.3}; sum would be {:.2} s",
            both.as_secs_f64() / n.max(d),
            n + d
        );
    }

    // 4. Beside a neighbour that spends the reserve on the same API id.
    if want("neighbour") {
        let reserve = 4;
        let sim3 = start_simulator().await?;
        let db3 = fresh_database(&server, "neighbour").await?;
        let neighbour = Neighbour::start(&sim3, reserve);
        let run = plan_run(&sim3, &db3, account_plan("northside", from, to), reserve).await?;
        let (neighbour_requests, neighbour_limited) = neighbour.stop().await;
        let c = sim3.simulator().counters("northside-demo");
        println!();
        println!("[beside a neighbour] reserve {reserve}; the neighbour sends {reserve} requests per window on the same API id");
        println!(
            "  daemon requests: {}, neighbour requests: {neighbour_requests}",
            c.requests - neighbour_requests
        );
        println!(
            "  429 answers: {} in all, {} to the neighbour, {} to the daemon",
            c.rate_limited,
            neighbour_limited,
            c.rate_limited - neighbour_limited
        );
        println!(
            "  wall time: {:.2} s (minimum at {} per window: {:.2} s)",
            run.wall.as_secs_f64(),
            LIMIT - reserve,
            (2.0 * run.summary.accounts[0].pages as f64 - (LIMIT - reserve) as f64).max(0.0)
                / (LIMIT - reserve) as f64
                * WINDOW.as_secs_f64()
        );
    }

    // 5. Peak memory of the real binary syncing ≥ 10,000 transactions.
    if want("memory") {
        let sim4 = start_simulator().await?;
        let db4 = fresh_database(&server, "memory").await?;
        memory(&sim4, &db4, from, to).await?;
    }

    println!();
    println!("done");
    Ok(())
}

struct Run {
    summary: SyncSummary,
    wall: Duration,
}

async fn start_simulator() -> anyhow::Result<RunningSimulator> {
    let sim = Simulator::new(SimulatorConfig {
        requests_per_window: LIMIT,
        window: WINDOW,
        build_latency: BUILD,
        ..SimulatorConfig::default()
    });
    Ok(sim.start("127.0.0.1:0".parse()?).await?)
}

/// The minimum time for `pages` pages: 3 requests each (a submit, a poll and
/// a summary page), the first `LIMIT` at once.
fn theoretical_minimum(pages: u64) -> Duration {
    let extra = (3.0 * pages as f64 - LIMIT as f64).max(0.0);
    WINDOW.mul_f64(extra / LIMIT as f64)
}

/// The physical minimum of `requests` requests by all processes together:
/// request i (from 0) no earlier than ⌊i / LIMIT⌋ windows after the first.
fn physical_minimum(requests: u64) -> Duration {
    WINDOW * (requests.saturating_sub(1) / u64::from(LIMIT)) as u32
}

/// The latest complete days of the sites, going back until they hold `volume` transactions.
fn range_with_volume(
    sim: &RunningSimulator,
    account: &str,
    sites: &[&str],
    volume: usize,
) -> (NaiveDate, NaiveDate) {
    let s = sim.simulator();
    let api_id = s
        .accounts()
        .into_iter()
        .find(|a| a.name == account)
        .unwrap()
        .api_id;
    let to = Utc::now().date_naive() - Days::new(2);
    let mut from = to;
    let mut total = 0;
    loop {
        total += sites
            .iter()
            .map(|c| s.day_volume(&api_id, c, from))
            .sum::<usize>();
        if total >= volume {
            return (from, to);
        }
        from = from - Days::new(1);
    }
}

/// The configuration an operator would write for the simulated chain.
fn config_toml(sim: &RunningSimulator, url: &str, reserve: u32) -> String {
    let mut toml = format!(
        "[database]\nurl = \"{url}\"\n[api]\nbase_url = \"{}\"\nrequests_per_window = {LIMIT}\nwindow = \"{}ms\"\nreserve = {reserve}\njitter_guard = \"{}ms\"\n",
        sim.base_url(),
        WINDOW.as_millis(),
        GUARD.as_millis()
    );
    for a in sim.simulator().accounts() {
        toml.push_str(&format!(
            "[[accounts]]\nname = \"{}\"\napi_id = \"{}\"\napi_key = \"{}\"\ntimezone = \"{}\"\n",
            a.name, a.api_id, a.api_key, a.timezone
        ));
    }
    toml
}

fn settings(sim: &RunningSimulator, url: &str, reserve: u32) -> anyhow::Result<Settings> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, config_toml(sim, url, reserve))?;
    Ok(Settings::load(&Sources {
        file: Some(&path),
        env: HashMap::new(),
        keys: sonnys_etl::configuration::Keys::Required,
    })?)
}

fn account_plan(account: &str, from: NaiveDate, to: NaiveDate) -> SyncPlan {
    let sites = if account == "northside" {
        vec!["N01", "N02", "N03"]
    } else {
        vec!["D01", "D02"]
    };
    SyncPlan {
        days: sonnys_etl::domain::days::DaySelection::Range {
            from,
            to,
            missing_only: false,
        },
        accounts: vec![account.into()],
        sites: sites.into_iter().map(String::from).collect(),
    }
}

async fn plan_run(
    sim: &RunningSimulator,
    db: &(PgPool, String),
    plan: SyncPlan,
    reserve: u32,
) -> anyhow::Result<Run> {
    let syncer = Syncer::new(Arc::new(settings(sim, &db.1, reserve)?), db.0.clone());
    let started = Instant::now();
    let summary = syncer
        .run(&plan, &CancellationToken::new(), &Progress::plain())
        .await
        .map_err(anyhow::Error::msg)?;
    let wall = started.elapsed();
    anyhow::ensure!(summary.ok(), "the benchmark sync failed:\n{summary}");
    Ok(Run { summary, wall })
}

async fn both_accounts(
    sim: &RunningSimulator,
    db: &(PgPool, String),
    n: (NaiveDate, NaiveDate),
    d: (NaiveDate, NaiveDate),
) -> anyhow::Result<Duration> {
    let syncer = Syncer::new(Arc::new(settings(sim, &db.1, 0)?), db.0.clone());
    let started = Instant::now();
    let cancel = CancellationToken::new();
    let progress = Progress::plain();
    let (north, desert) = (
        account_plan("northside", n.0, n.1),
        account_plan("desert", d.0, d.1),
    );
    let (a, b) = tokio::join!(
        syncer.run(&north, &cancel, &progress),
        syncer.run(&desert, &cancel, &progress)
    );
    let wall = started.elapsed();
    anyhow::ensure!(
        a.map_err(anyhow::Error::msg)?.ok() && b.map_err(anyhow::Error::msg)?.ok(),
        "the two-account sync failed"
    );
    Ok(wall)
}

/// The reference client's documented method: sites one after another; for
/// each page submit, then poll every 2 s (scaled) until it passes; one
/// limiter for the client. Returns (wall time, pages, transactions).
async fn reference_client(
    sim: &RunningSimulator,
    account: &str,
    sites: &[&str],
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<(Duration, u64, u64)> {
    let a = sim
        .simulator()
        .accounts()
        .into_iter()
        .find(|x| x.name == account)
        .unwrap();
    let budget = Budget::new(Allowance {
        requests: LIMIT,
        window: WINDOW,
        guard: GUARD,
    });
    let client = Client::new(
        &sonnys_etl::domain::AccountName::parse(account).unwrap(),
        &url::Url::parse(&sim.base_url())?,
        &ApiId::parse(&a.api_id).unwrap(),
        &secrecy::SecretString::from(a.api_key.clone()),
        Duration::from_secs(10),
        budget,
    )
    .map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let (mut pages, mut transactions) = (0u64, 0u64);
    for code in sites {
        let site = a.sites.iter().find(|s| s.code == *code).unwrap();
        let tz = parse_timezone(site.timezone.as_deref().unwrap_or(&a.timezone)).unwrap();
        let code = SiteCode::parse(code).unwrap();
        let mut date = from;
        while date <= to {
            for window in BusinessDay::new(date, tz).windows(Utc::now()) {
                let mut page = 1;
                loop {
                    let hash = client
                        .load_job(&code, window, page, Priority::Continue)
                        .await?;
                    let data = loop {
                        tokio::time::sleep(REFERENCE_POLL).await;
                        let d = client.get_job_data(&code, &hash).await?;
                        if d.status == JobStatus::Pass {
                            break d;
                        }
                    };
                    pages += 1;
                    let got = data.records.len() as u64;
                    transactions += got;
                    for r in data.records {
                        Transaction::from_raw(r).map_err(|r| anyhow::anyhow!(r.reason))?;
                    }
                    // Without a total, a short page is the last.
                    let last = match data.total {
                        Some(total) => u64::from(page) * 100 >= total,
                        None => got < 100,
                    };
                    if last {
                        break;
                    }
                    page += 1;
                }
            }
            date = date + Days::new(1);
        }
    }
    Ok((started.elapsed(), pages, transactions))
}

/// Another consumer of the same API id: `per_window` site-list requests per
/// window, evenly spaced, with its own 429 count.
struct Neighbour {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

impl Neighbour {
    fn start(sim: &RunningSimulator, per_window: u32) -> Self {
        let a = sim
            .simulator()
            .accounts()
            .into_iter()
            .find(|x| x.name == "northside")
            .unwrap();
        let url = format!("{}/site/list", sim.base_url());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let period = WINDOW / per_window + Duration::from_millis(10);
            let (mut sent, mut limited) = (0, 0);
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = token.cancelled() => return (sent, limited),
                }
                let r = http
                    .get(&url)
                    .header("X-Sonnys-API-ID", &a.api_id)
                    .header("X-Sonnys-API-Key", &a.api_key)
                    .send()
                    .await;
                sent += 1;
                if r.map(|r| r.status().as_u16() == 429).unwrap_or(false) {
                    limited += 1;
                }
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.cancel();
        self.task.await.unwrap_or((0, 0))
    }
}

/// `sonnys-etl run`, the release binary, with its log lines collected.
struct Replica {
    child: tokio::process::Child,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Replica {
    fn start(config: &std::path::Path) -> anyhow::Result<Replica> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Ok(Replica { child, lines })
    }

    fn said(&self, text: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l.contains(text))
    }

    fn field(&self, text: &str, name: &str) -> Option<String> {
        let lines = self.lines.lock().unwrap();
        let line = lines.iter().find(|l| l.contains(text))?;
        let rest = line.split(&format!("{name}=")).nth(1)?;
        rest.split_whitespace().next().map(str::to_owned)
    }

    async fn wait_for(&self, text: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.said(text) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "no {text:?} within {timeout:?}:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

/// Two replicas of the service catching up a week, then the same with one
/// replica killed (SIGKILL) halfway: the survivor finishes the killed one's
/// site-days once their claims run out.
async fn replicas(server: &str) -> anyhow::Result<()> {
    const DAYS: u32 = 7;
    let lease = WINDOW * 4;
    let mut alone = Duration::ZERO;
    for kill in [false, true] {
        let sim = start_simulator().await?;
        let db = fresh_database(server, if kill { "replicas_kill" } else { "replicas" }).await?;
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("replica.toml");
        std::fs::write(
            &config,
            format!(
                "{}[sync]\nlease = \"{}ms\"\n[schedule]\ncron = \"0 0 4 1 1 *\"\ncatch_up_days = {DAYS}\nlookback_days = 0\n[server]\nlisten = \"\"\n",
                config_toml(&sim, &db.1, 0),
                lease.as_millis()
            ),
        )?;
        let started = Instant::now();
        let mut replicas = [Replica::start(&config)?, Replica::start(&config)?];
        let mut orphaned = 0i64;
        let mut killed_at = None;
        if kill {
            replicas[0]
                .wait_for("service ready", Duration::from_secs(60))
                .await?;
            let doomed = replicas[0]
                .field("service ready", "replica")
                .ok_or_else(|| anyhow::anyhow!("the replica logged no id"))?;
            // Halfway: half the site-days done, and the doomed replica in
            // the middle of some.
            loop {
                let (done, held): (i64, i64) = sqlx::query_as(
                    "SELECT count(*) FILTER (WHERE status = 'done'),
                            count(*) FILTER (WHERE status = 'running' AND pages > 0 AND lease_owner = $1::uuid)
                       FROM sonnys.sync_days",
                )
                .bind(&doomed)
                .fetch_one(&db.0)
                .await?;
                if done >= i64::from(DAYS * 5 / 2) && held > 0 {
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(120),
                    "never halfway"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            replicas[0].child.start_kill()?;
            replicas[0].child.wait().await?;
            killed_at = Some(started.elapsed());
            orphaned = sqlx::query_scalar(
                "SELECT count(*) FROM sonnys.sync_days WHERE status = 'running' AND lease_owner = $1::uuid",
            )
            .bind(&doomed)
            .fetch_one(&db.0)
            .await?;
        }
        let survivors = if kill { &replicas[1..] } else { &replicas[..] };
        for r in survivors {
            r.wait_for("run finished", Duration::from_secs(300)).await?;
        }
        let wall = started.elapsed();
        // Exact: every site-day done and holding what the simulator serves.
        let rows: Vec<(String, String, NaiveDate, String, i64)> = sqlx::query_as(
            "SELECT d.account, d.site_code, d.business_date, d.status,
                    (SELECT count(*) FROM sonnys.transactions t
                      WHERE t.account = d.account AND t.site_code = d.site_code AND t.business_date = d.business_date)
               FROM sonnys.sync_days d",
        )
        .fetch_all(&db.0)
        .await?;
        let accounts = sim.simulator().accounts();
        let mut wrong = 0;
        let mut stored = 0;
        for (account, code, date, status, count) in &rows {
            let api_id = &accounts.iter().find(|a| &a.name == account).unwrap().api_id;
            let served = sim.simulator().day_volume(api_id, code, *date) as i64;
            stored += count;
            if status != "done" || *count != served {
                wrong += 1;
            }
        }
        let limited: u64 = accounts
            .iter()
            .map(|a| sim.simulator().counters(&a.api_id).rate_limited)
            .sum();
        println!();
        if kill {
            println!(
                "[replicas, one killed] two `run` processes, catch-up of {DAYS} days × 5 sites, sync.lease {:.1} s; SIGKILL at {:.2} s leaving {orphaned} site-days running",
                lease.as_secs_f64(),
                killed_at.unwrap_or_default().as_secs_f64()
            );
        } else {
            println!(
                "[replicas] two `run` processes, catch-up of {DAYS} days × 5 sites (both accounts)"
            );
        }
        println!(
            "  site-days: {}, not done or not exact: {wrong}; transactions stored: {stored}; 429 answers: {limited}",
            rows.len()
        );
        if kill {
            println!(
                "  wall time: {:.2} s; without the kill {:.2} s; extra {:+.2} s (target ≤ lease + window = {:.1} s)",
                wall.as_secs_f64(),
                alone.as_secs_f64(),
                wall.as_secs_f64() - alone.as_secs_f64(),
                (lease + WINDOW).as_secs_f64()
            );
        } else {
            alone = wall;
            println!("  wall time: {:.2} s", wall.as_secs_f64());
        }
    }
    Ok(())
}

/// The time one reservation takes in the PostgreSQL ledger, alone and in a
/// burst, against the in-memory ledger.
async fn ledger_cost(server: &str) -> anyhow::Result<()> {
    let db = fresh_database(server, "ledger").await?;
    sonnys_etl::store::migrate(&db.0).await?;
    let roomy = Allowance {
        requests: 1_000_000,
        window: Duration::from_secs(60),
        guard: Duration::ZERO,
    };
    let n = 1_000u32;
    let memory = Budget::new(roomy);
    let started = Instant::now();
    for _ in 0..n {
        memory.acquire(Priority::Continue, "a").await?;
    }
    let in_memory = started.elapsed() / n;
    let shared = Budget::with_ledger(
        roomy,
        sonnys_etl::budget::PgLedger::new(
            db.0.clone(),
            ApiId::parse("cost").map_err(anyhow::Error::msg)?,
            roomy,
        ),
    );
    shared.acquire(Priority::Continue, "a").await?;
    let started = Instant::now();
    for _ in 0..n {
        shared.acquire(Priority::Continue, "a").await?;
    }
    let one_at_a_time = started.elapsed() / n;
    let started = Instant::now();
    let burst: Vec<_> = (0..n)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move { shared.acquire(Priority::Continue, "a").await })
        })
        .collect();
    for t in burst {
        t.await??;
    }
    let in_burst = started.elapsed() / n;
    println!();
    println!("[ledger] time to reserve one request slot ({n} reservations)");
    println!(
        "  in memory {in_memory:?}; PostgreSQL ledger one at a time {one_at_a_time:?}, in a burst of {n} {in_burst:?} each"
    );
    Ok(())
}

/// Three days × every site of both accounts, one of them a 1,000+ day, with
/// jobs that sometimes answer `working` twice more after their build: once
/// the budget is idle, the run's tail waits on builds, not on backoff.
async fn idle_tail(server: &str) -> anyhow::Result<()> {
    const MEAN_BUILD: Duration = Duration::from_millis(250);
    const LOOKAHEAD: u64 = 6;
    let sim = Simulator::new(SimulatorConfig {
        requests_per_window: LIMIT,
        window: WINDOW,
        build_latency: MEAN_BUILD,
        faults: sonnys_etl::rehearsal::simulator::Faults {
            empty_strings: true,
            extra_working_rate: 0.3,
            ..Default::default()
        },
        ..SimulatorConfig::default()
    })
    .start("127.0.0.1:0".parse()?)
    .await?;
    let s = sim.simulator();
    let north = s
        .accounts()
        .into_iter()
        .find(|a| a.name == "northside")
        .unwrap();
    // The latest big day that leaves a day after it ended.
    let mut big = Utc::now().date_naive() - Days::new(3);
    while s.day_volume(&north.api_id, "N01", big) < 1_000 {
        big = big - Days::new(1);
    }
    let (from, to) = (big - Days::new(1), big + Days::new(1));
    let db = fresh_database(server, "tail").await?;
    let run = plan_run(&sim, &db, SyncPlan::range(from, to), 0).await?;
    let mut longest_id = Duration::ZERO;
    let mut requests = 0;
    let mut working = 0;
    for a in s.accounts() {
        let c = s.counters(&a.api_id);
        requests += c.requests;
        working += c.polls_working;
        longest_id = longest_id.max(physical_minimum(c.requests));
    }
    let biggest: i64 = sqlx::query_scalar("SELECT max(pages)::bigint FROM sonnys.sync_days")
        .fetch_one(&db.0)
        .await?;
    // Page 1 first (page 2 alongside), then the rest LOOKAHEAD at a time.
    let stages = 1 + (biggest as u64).saturating_sub(2).div_ceil(LOOKAHEAD);
    let chain = MEAN_BUILD * stages as u32;
    let minimum = longest_id + chain;
    let transactions: u64 = run.summary.accounts.iter().map(|a| a.transactions).sum();
    println!();
    println!(
        "[idle tail] both accounts, every site, {from}..{to} (N01 has {} transactions on {big}); builds {} ms ±50 %, 30 % of jobs answer `working` twice more once built",
        s.day_volume(&north.api_id, "N01", big),
        MEAN_BUILD.as_millis()
    );
    println!(
        "  transactions: {transactions}; requests: {requests} ({working} polls answered `working`)"
    );
    println!(
        "  wall time: {:.2} s; physical minimum {:.2} s = busiest API id {:.2} s + build chain of the biggest site-day {:.2} s ({stages} builds of {biggest} pages); ratio {:.2} (target < 2)",
        run.wall.as_secs_f64(),
        minimum.as_secs_f64(),
        longest_id.as_secs_f64(),
        chain.as_secs_f64(),
        run.wall.as_secs_f64() / minimum.as_secs_f64()
    );
    Ok(())
}

/// The transactions of a night alone, then with labour and memberships (a
/// first night: the sweep of every employee and the walk back through three
/// years of sign-ups) on the same API id: the transactions must not finish
/// later.
async fn people_night(server: &str, from: NaiveDate, to: NaiveDate) -> anyhow::Result<()> {
    println!();
    println!("[labour and members] northside N01–N03, {from}..{to}, one API id");
    for with_people in [false, true] {
        let sim = start_simulator().await?;
        let db = fresh_database(server, if with_people { "people" } else { "no_people" }).await?;
        let mut settings = settings(&sim, &db.1, 0)?;
        settings.labour.enabled = with_people;
        settings.members.enabled = with_people;
        let syncer = Syncer::new(Arc::new(settings), db.0.clone());
        let started_at: chrono::DateTime<Utc> =
            sqlx::query_scalar("SELECT now()").fetch_one(&db.0).await?;
        let started = Instant::now();
        let summary = syncer
            .run(
                &account_plan("northside", from, to),
                &CancellationToken::new(),
                &Progress::plain(),
            )
            .await
            .map_err(anyhow::Error::msg)?;
        let wall = started.elapsed();
        anyhow::ensure!(summary.ok(), "the sync failed:\n{summary}");
        let transactions_done: f64 = sqlx::query_scalar(
            "SELECT extract(epoch FROM max(finished_at) - $1)::float8 FROM sonnys.sync_days",
        )
        .bind(started_at)
        .fetch_one(&db.0)
        .await?;
        let a = &summary.accounts[0];
        let people = a.labour.as_ref().map_or(0, |r| r.requests)
            + a.members.as_ref().map_or(0, |r| r.requests);
        let c = sim.simulator().counters("northside-demo");
        println!(
            "  {}: transactions done after {transactions_done:.2} s ({} transactions, {} requests); run {:.2} s; labour and members {people} requests; 429 answers: {}",
            if with_people { "with labour and members" } else { "transactions alone     " },
            a.transactions,
            a.transaction_requests(),
            wall.as_secs_f64(),
            c.rate_limited
        );
    }
    Ok(())
}

/// Run the real binary on ≥ 10,000 transactions and sample its peak resident memory.
async fn memory(
    sim: &RunningSimulator,
    db: &(PgPool, String),
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("memory.toml");
    std::fs::write(&config, config_toml(sim, &db.1, 0))?;
    let binary = env!("CARGO_BIN_EXE_sonnys-etl");
    let mut child = tokio::process::Command::new(binary)
        .args([
            "--config",
            config.to_str().unwrap(),
            "sync",
            "--account",
            "northside",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        tokio::select! {
            s = child.wait() => break s?,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    let output = child.wait_with_output().await?;
    anyhow::ensure!(
        status.success(),
        "the memory sync failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions")
        .fetch_one(&db.0)
        .await?;
    println!();
    println!("[memory] the release binary synced {stored} transactions ({from}..{to}, northside): peak resident memory {:.1} MiB (VmHWM)", peak_kib as f64 / 1024.0);
    Ok(())
}

/// A server to create benchmark databases on.
async fn database_server() -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok(url);
    }
    let local = "postgres://postgres@127.0.0.1:5432/postgres";
    if server_answers(local).await {
        return Ok(local.into());
    }
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-postgres");
    Ok(PrivatePostgres::start_with(&dir, Options::EPHEMERAL)
        .await?
        .url("postgres"))
}

/// `sonnys-etl sync` as an operator runs it (the release binary), timed from
/// spawn to exit: start-up, connecting, migrating and every request.
async fn whole_process(server: &str, from: NaiveDate, to: NaiveDate) -> anyhow::Result<()> {
    let sim = start_simulator().await?;
    let db = fresh_database(server, "process").await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, config_toml(&sim, &db.1, 0))?;
    let mut best: Option<(f64, u64, u64, Duration)> = None;
    println!();
    println!("[process] sonnys-etl sync --from {from} --to {to} --account northside --site N01 --site N02 --site N03, spawn to exit");
    for attempt in 1..=3 {
        sqlx::query("TRUNCATE sonnys.sync_days, sonnys.transactions, sonnys.transaction_items, sonnys.transaction_tenders, sonnys.transaction_discounts, sonnys.api_requests")
            .execute(&db.0)
            .await?;
        sim.simulator().clear_job_cache();
        let before = sim.simulator().counters("northside-demo");
        // A fresh window: the previous attempt's requests are out of it.
        tokio::time::sleep(WINDOW * 2).await;
        let started = Instant::now();
        let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
            .arg("--config")
            .arg(&path)
            .args(["sync", "--from", &from.to_string(), "--to", &to.to_string()])
            .args([
                "--account",
                "northside",
                "--site",
                "N01",
                "--site",
                "N02",
                "--site",
                "N03",
            ])
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .status()
            .await?;
        let wall = started.elapsed();
        anyhow::ensure!(status.success(), "sonnys-etl sync failed: {status}");
        let after = sim.simulator().counters("northside-demo");
        let requests = after.requests - before.requests;
        let summaries = after.summary_requests - before.summary_requests;
        let pages: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(pages), 0)::bigint FROM sonnys.sync_days")
                .fetch_one(&db.0)
                .await?;
        let efficiency = physical_minimum(requests).as_secs_f64() / wall.as_secs_f64();
        println!(
            "  run {attempt}: {pages} pages, {requests} requests ({:.3} per page, of which {summaries} summaries: {:.3} per page), {} × 429, wall {:.2} s, physical minimum {:.2} s, efficiency {:.3}",
            requests as f64 / pages as f64,
            summaries as f64 / pages as f64,
            after.rate_limited - before.rate_limited,
            wall.as_secs_f64(),
            physical_minimum(requests).as_secs_f64(),
            efficiency
        );
        if best.map_or(true, |b| efficiency > b.0) {
            best = Some((efficiency, requests, pages as u64, wall));
        }
    }
    if let Some((efficiency, ..)) = best {
        println!("  best of 3: efficiency {efficiency:.3} (target ≥ 0.95)");
    }
    Ok(())
}

/// Nights with `lookback_days` = 3 and 7 on a 40-site chain after a few late
/// changes: the requests of the lookback by summaries against the same night
/// with `lookback = "full"`.
async fn lookback_nights(server: &str) -> anyhow::Result<()> {
    // Requests are what is measured here, not time: a fast throttle.
    let window = Duration::from_millis(150);
    let sim = Simulator::new(SimulatorConfig {
        requests_per_window: LIMIT,
        window,
        build_latency: Duration::from_millis(30),
        extra_sites: 37,
        ..SimulatorConfig::default()
    })
    .start("127.0.0.1:0".parse()?)
    .await?;
    let db = fresh_database(server, "lookback").await?;
    let api_id = "northside-demo";
    let toml = |lookback_days: u32, mode: &str| {
        format!(
            "{}[schedule]\ncatch_up_days = 7\nlookback_days = {lookback_days}\nlookback = \"{mode}\"\n",
            config_toml(&sim, &db.1, 0).replace(
                &format!("window = \"{}ms\"", WINDOW.as_millis()),
                &format!("window = \"{}ms\"", window.as_millis())
            )
        )
    };
    let night = |lookback_days: u32, mode: &'static str| {
        let toml = toml(lookback_days, mode);
        let (sim, db) = (&sim, &db);
        async move {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("bench.toml");
            std::fs::write(&path, toml)?;
            let settings = Settings::load(&Sources {
                file: Some(&path),
                env: HashMap::new(),
                keys: sonnys_etl::configuration::Keys::Required,
            })?;
            let plan = SyncPlan {
                days: sonnys_etl::domain::days::DaySelection::Recent {
                    catch_up_days: 7,
                    lookback_days,
                },
                accounts: vec!["northside".into()],
                sites: Vec::new(),
            };
            sim.simulator().clear_job_cache();
            let before = sim.simulator().counters(api_id).requests;
            let summary = Syncer::new(Arc::new(settings), db.0.clone())
                .run(&plan, &CancellationToken::new(), &Progress::plain())
                .await
                .map_err(anyhow::Error::msg)?;
            anyhow::ensure!(summary.ok(), "the night failed:\n{summary}");
            let spent = sim.simulator().counters(api_id).requests - before;
            anyhow::Ok((spent, summary.accounts[0].clone()))
        }
    };
    // A chain caught up on its last 7 days.
    let (first, caught_up) = night(0, "summaries").await?;
    let sites = caught_up.site_codes.len();
    println!();
    println!(
        "[lookback] northside, {sites} sites, caught up on 7 days: {} site-days, {} transactions, {first} requests",
        caught_up.done, caught_up.transactions
    );
    let mut change = 0u64;
    let mut late_changes = |back: u64, n: usize| -> usize {
        // Void one paid transaction at each of `n` site-days within the
        // last `back` days, spread over the chain.
        let account = sim
            .simulator()
            .accounts()
            .into_iter()
            .find(|a| a.name == "northside")
            .unwrap();
        let mut applied = std::collections::HashSet::new();
        for i in 0..n {
            change += 1;
            let site = &account.sites[(change as usize * 7) % account.sites.len()];
            let zone =
                parse_timezone(site.timezone.as_deref().unwrap_or(&account.timezone)).unwrap();
            let date = sonnys_etl::domain::days::last_ended_day(zone, Utc::now())
                - Days::new(i as u64 % back);
            let day = BusinessDay::new(date, zone);
            let records = sim.simulator().transactions(
                api_id,
                &site.code,
                day.start(),
                day.end_exclusive() - chrono::Duration::seconds(1),
            );
            if let Some(r) = records
                .iter()
                .find(|r| r["transactionStatus"] == "Completed")
            {
                let id = r["id"].as_str().unwrap().to_owned();
                if sim
                    .simulator()
                    .update_transaction(api_id, &id, |r| r["transactionStatus"] = "Voided".into())
                {
                    applied.insert((site.code.clone(), date));
                }
            }
        }
        applied.len()
    };
    for lookback_days in [3u32, 7] {
        let changed = late_changes(u64::from(lookback_days), 4);
        let (by_summaries, s) = night(lookback_days, "summaries").await?;
        let (full, f) = night(lookback_days, "full").await?;
        println!(
            "  lookback_days = {lookback_days}, late voids on {changed} site-days: by summaries {by_summaries} requests ({} site-days checked, {} changed and exported again); full {full} requests ({} site-days exported); ratio {:.3}",
            s.unchanged + s.changed,
            s.changed,
            f.done,
            by_summaries as f64 / full as f64
        );
    }
    Ok(())
}

/// A new, migrated database for one scenario: (pool, url).
async fn fresh_database(server: &str, what: &str) -> anyhow::Result<(PgPool, String)> {
    let name = format!("sonnys_bench_{}_{what}", std::process::id());
    let mut conn = PgConnection::connect(server).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
        .await?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    let mut url = url::Url::parse(server)?;
    url.set_path(&name);
    let pool = sonnys_etl::store::connect(url.as_str(), 10).await?;
    Ok((pool, url.to_string()))
}
