//! History beside the nights: a nightly run of the service (the release
//! binary) on a 20-site chain, on the simulator with its time scaled ×10
//! (20 requests per 1.5 s instead of 15 s, builds of 300 ms), in three cases:
//!
//! - `alone`: the night alone;
//! - `service`: the night while the same service backfills 30 days
//!   (`[backfill] since`);
//! - `sync`: the night while a separate `sonnys-etl sync` over those 30
//!   days runs beside it (at `background`, its default for such days).
//!
//! `cargo bench --bench history` (PostgreSQL from DATABASE_URL, else the
//! local server on 127.0.0.1:5432, else a private one in
//! target/bench-postgres). `-- alone service` runs only those cases;
//! `-- --runs N` repeats each (2 by default).
//!
//! Each night is the service's second run, fired by its cron once the
//! backfill is underway: `lookback = "full"` over the whole nightly range, so
//! that every case's night re-exports the same 60 site-days. It prints the
//! night's duration (goal: ≤ 1.1 × the night alone), the share of the slots
//! the night left that the backfill used while it ran (goal ≥ 0.9), the 429s
//! (goal 0) and whether every stored site-day matches the simulator's truth
//! exactly. Every slot granted is read from the shared ledger
//! (`sonnys.api_requests`, with its class) through a trigger the benchmark
//! adds to its own database.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Timelike, Utc};
use rust_decimal::Decimal;
use sonnys_etl::domain::days::last_ended_days;
use sonnys_etl::domain::parse_timezone;
use sonnys_etl::rehearsal::pgserver::{server_answers, Options, PrivatePostgres};
use sonnys_etl::rehearsal::simulator::{RunningSimulator, Simulator, SimulatorConfig};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::time::Instant;

/// The vendor's limit, with the window scaled from 15 s to 1.5 s (×0.1).
const LIMIT: u32 = 20;
const WINDOW: Duration = Duration::from_millis(1500);
/// Build latency scaled the same way (a few seconds on the live service).
const BUILD: Duration = Duration::from_millis(300);
const GUARD: Duration = Duration::from_millis(20);
/// The sample chain's 3 northside sites and 17 more: one API id, 20 sites.
const EXTRA_SITES: u32 = 17;
/// The nightly range: the last 3 ended days of every site.
const NIGHT_DAYS: u32 = 3;
/// The backfill: the 30 days before the nightly range.
const BACKFILL_DAYS: u64 = 30;
const ACCOUNT: &str = "northside";
/// A cron expression that fires once a year: only the start-up run, until
/// the benchmark sets the night's tick.
const YEARLY: &str = "0 0 4 1 1 *";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Alone,
    Service,
    Sync,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Alone => "alone",
            Case::Service => "service",
            Case::Sync => "sync",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Case::Alone => "the night alone",
            Case::Service => "the night with a 30-day backfill in the same service",
            Case::Sync => "the night with a separate `sync` over 30 older days (background)",
        }
    }
}

/// What one night showed.
#[derive(Debug, Clone)]
struct Night {
    seconds: f64,
    /// While the night ran.
    during: Slots,
    /// From the night's start to [`AFTER`] past its end: the backfill
    /// picking up again after it.
    with_after: Slots,
    rate_limited: u64,
    /// Site-days checked against the simulator, and those that differ.
    checked: usize,
    wrong: Vec<String>,
    backfilled: usize,
}

/// The slots granted in a span, by class.
#[derive(Debug, Clone, Copy)]
struct Slots {
    night: u64,
    background: u64,
    /// Slots the nominal allowance offered in the span.
    offered: f64,
}

impl Slots {
    /// Of the slots the night left, the share the backfill used.
    fn share(&self) -> f64 {
        self.background as f64 / (self.offered - self.night as f64).max(1.0)
    }
}

/// How long after the night the second span reaches: 20 windows.
const AFTER: Duration = Duration::from_millis(30_000);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(2);
    let only: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') && a.parse::<usize>().is_err())
        .collect();
    let cases: Vec<Case> = [Case::Alone, Case::Service, Case::Sync]
        .into_iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| *o == c.name()))
        .collect();
    let server = database_server().await?;

    println!("sonnys-etl history benchmark: the night beside a backfill");
    println!(
        "simulator: {LIMIT} requests per {} ms per API id (the live 20 per 15 s, scaled ×0.1), build latency {} ms ±50 %, one API id with {} sites",
        WINDOW.as_millis(),
        BUILD.as_millis(),
        3 + EXTRA_SITES
    );
    println!(
        "night: the service's cron run re-exporting the last {NIGHT_DAYS} ended days of every site (lookback = \"full\"); backfill: the {BACKFILL_DAYS} days before them"
    );
    let mut results: BTreeMap<&str, Vec<Night>> = BTreeMap::new();
    for run in 1..=runs {
        for case in &cases {
            println!();
            println!("[{}] run {run}: {}", case.name(), case.describe());
            let night = night(&server, *case, run).await?;
            print_night(&night);
            results.entry(case.name()).or_default().push(night);
        }
    }

    println!();
    println!("summary (mean of {runs} runs)");
    let mean =
        |v: &[Night], f: &dyn Fn(&Night) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let alone = results.get("alone").map(|v| mean(v, &|n| n.seconds));
    for case in &cases {
        let nights = &results[case.name()];
        let seconds = mean(nights, &|n| n.seconds);
        let ratio = alone.map_or(String::new(), |a| {
            format!(", {:.3} × the night alone", seconds / a)
        });
        let share = if *case == Case::Alone {
            String::new()
        } else {
            format!(
                ", backfill used {:.3} of the slots the night left (night and {} s after it; {:.3} during the night alone)",
                mean(nights, &|n| n.with_after.share()),
                AFTER.as_secs(),
                mean(nights, &|n| n.during.share())
            )
        };
        let limited: u64 = nights.iter().map(|n| n.rate_limited).sum();
        let exact = nights.iter().all(|n| n.wrong.is_empty());
        println!(
            "  {:<8} night {seconds:.2} s{ratio}{share}, {limited} × 429, data {}",
            case.name(),
            if exact { "exact" } else { "WRONG" }
        );
    }
    Ok(())
}

fn print_night(n: &Night) {
    println!("  night:              {:.2} s", n.seconds);
    for (what, slots) in [
        ("while it ran", &n.during),
        (&*format!("and {} s after", AFTER.as_secs()), &n.with_after),
    ] {
        println!(
            "  slots {what}: {} night, {} background, of {:.0} offered ({LIMIT} per {} ms): the backfill used {:.3} of the {:.0} the night left",
            slots.night,
            slots.background,
            slots.offered,
            WINDOW.as_millis(),
            slots.share(),
            slots.offered - slots.night as f64
        );
    }
    println!("  429 answers:        {}", n.rate_limited);
    println!(
        "  data:               {} ({} site-days checked against the simulator, {} of them backfilled)",
        if n.wrong.is_empty() {
            "exact".to_owned()
        } else {
            format!("{} site-days differ: {}", n.wrong.len(), n.wrong.join("; "))
        },
        n.checked,
        n.backfilled
    );
}

/// One case: start the service, let its start-up run export the nightly
/// range, start the backfill (if any), fire the night, and measure it.
async fn night(server: &str, case: Case, run: usize) -> anyhow::Result<Night> {
    let sim = Simulator::new(SimulatorConfig {
        requests_per_window: LIMIT,
        window: WINDOW,
        build_latency: BUILD,
        extra_sites: EXTRA_SITES,
        ..SimulatorConfig::default()
    })
    .start("127.0.0.1:0".parse()?)
    .await?;
    let account = northside(&sim);
    let db = fresh_database(server, &format!("{}{run}", case.name())).await?;
    sonnys_etl::store::migrate(&db.0).await?;
    log_the_ledger(&db.0).await?;

    let zone = parse_timezone(&account.timezone).map_err(anyhow::Error::msg)?;
    // The first day of the nightly range in the zone where it starts first,
    // so that every backfill day is older than every site's nightly range.
    let mut first_nightly = last_ended_days(zone, Utc::now(), NIGHT_DAYS).0;
    for site in account.sites.iter().filter(|s| !s.code.is_empty()) {
        if let Some(tz) = &site.timezone {
            let tz = parse_timezone(tz).map_err(anyhow::Error::msg)?;
            first_nightly = first_nightly.min(last_ended_days(tz, Utc::now(), NIGHT_DAYS).0);
        }
    }
    let since = first_nightly - Days::new(BACKFILL_DAYS);
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bench.toml");
    let toml =
        |cron: &str| config_toml(&sim, &db.1, cron, (case == Case::Service).then_some(since));
    std::fs::write(&config, toml(YEARLY))?;

    let mut service = Process::start(&config, &["run"])?;
    service
        .wait_for("run finished", 1, Duration::from_secs(300))
        .await?;
    let mut sync = None;
    match case {
        Case::Alone => {}
        Case::Service => {
            // The backfill's first batch is sending.
            await_background_slot(&db.0).await?;
        }
        Case::Sync => {
            let to = first_nightly - Days::new(1);
            sync = Some(Process::start(
                &config,
                &[
                    "sync",
                    "--from",
                    &since.to_string(),
                    "--to",
                    &to.to_string(),
                    "--account",
                    ACCOUNT,
                ],
            )?);
            await_background_slot(&db.0).await?;
        }
    }
    // The night: the cron fires two seconds from now.
    let tick = (Utc::now() + chrono::Duration::seconds(2)).with_timezone(&zone);
    std::fs::write(
        &config,
        toml(&format!(
            "{} {} {} * * *",
            tick.second(),
            tick.minute(),
            tick.hour()
        )),
    )?;
    service.signal("HUP")?;
    service
        .wait_for("run finished", 2, Duration::from_secs(600))
        .await?;
    let (started, finished): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT started_at, finished_at FROM sonnys.runs ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&db.0)
    .await?;
    let seconds = (finished - started).num_milliseconds() as f64 / 1000.0;
    let during = slots(&db.0, started, finished).await?;
    // The second span: wait until it has passed.
    let after = finished + chrono::Duration::from_std(AFTER)?;
    let wait = (after - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    let with_after = slots(&db.0, started, after).await?;
    service.signal("TERM")?;
    service.exit(Duration::from_secs(60), true).await?;
    if let Some(mut sync) = sync {
        // Stopped before its range is done: it exits 1, as documented.
        sync.signal("TERM")?;
        sync.exit(Duration::from_secs(60), false).await?;
    }
    let (checked, backfilled, wrong) = check_data(&sim, &db.0, first_nightly).await?;
    let counters = sim.simulator().counters(&account.api_id);
    db.0.close().await;
    Ok(Night {
        seconds,
        during,
        with_after,
        rate_limited: counters.rate_limited,
        checked,
        wrong,
        backfilled,
    })
}

/// The benchmark's account in the simulated chain.
fn northside(sim: &RunningSimulator) -> sonnys_etl::rehearsal::simulator::SimAccount {
    sim.simulator()
        .accounts()
        .into_iter()
        .find(|a| a.name == ACCOUNT)
        .expect("the sample chain's northside")
}

/// Every `done` site-day against the simulator's truth: the same
/// transaction ids with the same totals, none missing, none twice.
async fn check_data(
    sim: &RunningSimulator,
    pool: &PgPool,
    first_nightly: NaiveDate,
) -> anyhow::Result<(usize, usize, Vec<String>)> {
    let account = northside(sim);
    let days: Vec<(String, NaiveDate)> = sqlx::query_as(
        "SELECT site_code, business_date FROM sonnys.sync_days
          WHERE account = $1 AND status = 'done' ORDER BY 1, 2",
    )
    .bind(ACCOUNT)
    .fetch_all(pool)
    .await?;
    let mut wrong = Vec::new();
    let mut backfilled = 0;
    for (code, date) in &days {
        if *date < first_nightly {
            backfilled += 1;
        }
        let site = account
            .sites
            .iter()
            .find(|s| s.code == *code)
            .expect("a simulated site");
        let zone = parse_timezone(site.timezone.as_deref().unwrap_or(&account.timezone))
            .map_err(anyhow::Error::msg)?;
        let midnight = |d: NaiveDate| {
            zone.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
                .earliest()
                .expect("a local midnight")
                .with_timezone(&Utc)
        };
        let start = midnight(*date);
        let end = midnight(*date + Days::new(1)) - chrono::Duration::seconds(1);
        let mut truth: HashMap<String, Decimal> = HashMap::new();
        for record in sim
            .simulator()
            .transactions(&account.api_id, code, start, end)
        {
            let id = record["id"].as_str().unwrap_or_default().to_owned();
            let total: Decimal = record["total"].to_string().trim_matches('"').parse()?;
            truth.insert(id, total);
        }
        let stored: Vec<(String, Decimal)> = sqlx::query_as(
            "SELECT id, total FROM sonnys.transactions
              WHERE account = $1 AND site_code = $2 AND business_date = $3",
        )
        .bind(ACCOUNT)
        .bind(code)
        .bind(date)
        .fetch_all(pool)
        .await?;
        let stored_map: HashMap<String, Decimal> = stored.iter().cloned().collect();
        if stored.len() != truth.len() || stored_map != truth {
            wrong.push(format!(
                "{code} {date}: {} stored, {} served",
                stored.len(),
                truth.len()
            ));
        }
    }
    Ok((days.len(), backfilled, wrong))
}

/// The slots granted between `from` and `to`, by class.
async fn slots(pool: &PgPool, from: DateTime<Utc>, to: DateTime<Utc>) -> anyhow::Result<Slots> {
    let (night, background): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE priority = 1), count(*) FILTER (WHERE priority = 0)
           FROM public.granted WHERE at BETWEEN $1 AND $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    let seconds = (to - from).num_milliseconds() as f64 / 1000.0;
    Ok(Slots {
        night: night as u64,
        background: background as u64,
        offered: f64::from(LIMIT) * seconds / WINDOW.as_secs_f64(),
    })
}

/// Keep every slot the shared ledger grants, with its class and the
/// database's clock, in `public.granted`.
async fn log_the_ledger(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE public.granted (
             at       timestamptz NOT NULL DEFAULT clock_timestamp(),
             priority smallint);
         CREATE FUNCTION public.log_granted() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO public.granted (priority) VALUES (NEW.priority);
             RETURN NULL;
         END $$;
         CREATE TRIGGER log_granted AFTER INSERT ON sonnys.api_requests
             FOR EACH ROW EXECUTE FUNCTION public.log_granted();",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Wait until the ledger granted a background slot.
async fn await_background_slot(pool: &PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let any: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM public.granted WHERE priority = 0)")
                .fetch_one(pool)
                .await?;
        if any {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "no background slot within 300 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The configuration an operator would write: the northside account only.
fn config_toml(sim: &RunningSimulator, url: &str, cron: &str, since: Option<NaiveDate>) -> String {
    let account = northside(sim);
    let backfill = since.map_or(String::new(), |s| format!("[backfill]\nsince = \"{s}\"\n"));
    format!(
        "[database]\nurl = \"{url}\"\n\
         [api]\nbase_url = \"{}\"\nrequests_per_window = {LIMIT}\nwindow = \"{}ms\"\nreserve = 0\njitter_guard = \"{}ms\"\n\
         [schedule]\ncron = \"{cron}\"\ntimezone = \"{}\"\ncatch_up_days = {NIGHT_DAYS}\nlookback_days = {NIGHT_DAYS}\nlookback = \"full\"\n\
         [server]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"30s\"\n\
         {backfill}\
         [[accounts]]\nname = \"{}\"\napi_id = \"{}\"\napi_key = \"{}\"\ntimezone = \"{}\"\n",
        sim.base_url(),
        WINDOW.as_millis(),
        GUARD.as_millis(),
        account.timezone,
        account.name,
        account.api_id,
        account.api_key,
        account.timezone
    )
}

/// A `sonnys-etl` process (the release binary), its log lines collected.
struct Process {
    child: tokio::process::Child,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    fn start(config: &Path, args: &[&str]) -> anyhow::Result<Process> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
            .arg("--config")
            .arg(config)
            .args(args)
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
        Ok(Process { child, lines })
    }

    fn count(&self, text: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    async fn wait_for(&self, text: &str, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.count(text) < n {
            anyhow::ensure!(
                Instant::now() < deadline,
                "no {text:?} ×{n} within {timeout:?}:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("the process is gone"))?;
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{name} {pid} failed");
        Ok(())
    }

    async fn exit(&mut self, timeout: Duration, must_succeed: bool) -> anyhow::Result<()> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                anyhow::ensure!(
                    status.success() || !must_succeed,
                    "exited {status}:\n{}",
                    self.lines.lock().unwrap().join("\n")
                );
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                anyhow::bail!("did not stop within {timeout:?}")
            }
        }
    }
}

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

async fn fresh_database(server: &str, what: &str) -> anyhow::Result<(PgPool, String)> {
    let name = format!("sonnys_bench_history_{what}");
    let mut conn = PgConnection::connect(server).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    let mut url = url::Url::parse(server)?;
    url.set_path(&name);
    let pool = sonnys_etl::store::connect(url.as_str(), 5).await?;
    Ok((pool, url.to_string()))
}
