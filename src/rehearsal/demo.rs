//! `sonnys-etl demo`: the whole product on one machine with no credentials.
//! It starts the simulator in-process, finds or starts a PostgreSQL, syncs
//! the last days of the sample chain and prints per-site totals.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{Days, Utc};
use clap::Args;
use secrecy::SecretString;
use sqlx::{Connection, Executor, PgConnection};
use url::Url;

use super::pgserver::{server_answers, PrivatePostgres};
use super::simulator::{Simulator, SimulatorConfig};
use crate::configuration::{
    AccountSettings, ApiSettings, DatabaseSettings, ScheduleSettings, ServerSettings, Settings,
    SyncSettings,
};
use crate::database::redact_url;
use crate::domain::{parse_timezone, AccountName, ApiId};
use crate::progress::Progress;
use crate::report::{Format, GroupBy, Kpi, ReportArgs};
use crate::sync::{SyncPlan, Syncer};

/// The database the demo writes into on a server it did not start itself.
const DEMO_DATABASE: &str = "sonnys_demo";
/// The conventional local server, tried when DATABASE_URL is not set.
const LOCAL_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Business days to sync, ending yesterday.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub days: u32,
    /// Data folder for the private PostgreSQL started when no server answers
    /// (default: a folder in the system's temporary directory).
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// Rehearse the service instead: run `sonnys-etl run` against the
    /// simulator (a run every minute, the last --days caught up at once,
    /// the status page and /metrics on --listen) until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Where the rehearsed service's operations endpoint listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9187")]
    pub listen: std::net::SocketAddr,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    // The vendor's throttle is 20 requests per 15 s; the demo scales the
    // window down so that a week of the sample chain takes seconds, not minutes.
    let window = Duration::from_secs(2);
    let simulator = Simulator::new(SimulatorConfig {
        window,
        build_latency: Duration::from_millis(300),
        ..SimulatorConfig::default()
    });
    let running = simulator
        .start("127.0.0.1:0".parse()?)
        .await
        .context("cannot start the simulator")?;
    println!(
        "simulator of the Sonny's Data API: {} (20 requests per {}s per API id)",
        running.base_url(),
        window.as_secs()
    );

    let url = database(&args).await?;
    println!("database: {}", redact_url(&url));

    let accounts = simulator
        .accounts()
        .into_iter()
        .map(|a| {
            Ok(AccountSettings {
                name: AccountName::parse(&a.name).map_err(anyhow::Error::msg)?,
                api_id: ApiId::parse(&a.api_id).map_err(anyhow::Error::msg)?,
                api_key: SecretString::from(a.api_key),
                timezone: Some(parse_timezone(&a.timezone).map_err(anyhow::Error::msg)?),
                sites: None,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settings = Settings {
        database: DatabaseSettings {
            url: Some(SecretString::from(url.clone())),
            max_connections: 5,
            ..DatabaseSettings::default()
        },
        api: ApiSettings {
            base_url: Url::parse(&running.base_url())?,
            window,
            // The simulator answers at once: a small guard, shorter timeouts.
            jitter_guard: Duration::from_millis(50),
            request_timeout: Duration::from_secs(10),
            job_timeout: Duration::from_secs(120),
            ..ApiSettings::default()
        },
        labour: crate::configuration::LabourSettings::default(),
        members: crate::configuration::MembersSettings::default(),
        reporting: crate::configuration::ReportingSettings::default(),
        backfill: crate::configuration::BackfillSettings::default(),
        sync: SyncSettings::default(),
        schedule: ScheduleSettings {
            schedule: crate::schedule::Schedule::parse("0 * * * * *", chrono_tz::UTC)
                .map_err(anyhow::Error::msg)?,
            lookback_days: 1,
            catch_up_days: args.days,
            ..ScheduleSettings::default()
        },
        transactions: crate::configuration::TransactionSettings::default(),
        server: ServerSettings {
            listen: Some(args.listen),
            ..ServerSettings::default()
        },
        accounts,
    };
    if args.serve {
        println!(
            "rehearsing the service: status page http://{0}/ , metrics http://{0}/metrics ; a run every minute; Ctrl-C stops",
            args.listen
        );
        crate::service::run(crate::service::Reload::Fixed, settings).await?;
        running.shutdown().await;
        return Ok(ExitCode::SUCCESS);
    }

    // The last `days` days that have ended in every site's zone.
    let to = simulator
        .accounts()
        .iter()
        .flat_map(|a| {
            a.sites
                .iter()
                .map(move |s| s.timezone.clone().unwrap_or_else(|| a.timezone.clone()))
        })
        .filter_map(|zone| parse_timezone(&zone).ok())
        .map(|tz| Utc::now().with_timezone(&tz).date_naive())
        .min()
        .unwrap_or_else(|| Utc::now().date_naive())
        - Days::new(1);
    let from = to - Days::new(u64::from(args.days) - 1);
    println!("syncing business days {from} to {to} of the sample chain…");

    let pool = crate::store::connect(&url, 5).await?;
    let syncer = Syncer::new(Arc::new(settings), pool.clone());
    let plan = SyncPlan::range(from, to);
    let progress = Progress::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let summary = syncer
        .run(&plan, &crate::shutdown::on_signal_or_hangup(), &progress)
        .await
        .map_err(anyhow::Error::msg)?;
    println!();
    print!("{summary}");
    println!();
    // The same per-site figures `sonnys-etl report` gives.
    let report = ReportArgs {
        from,
        to,
        by: GroupBy::Site,
        format: Format::Table,
        accounts: Vec::new(),
        kpis: vec![Kpi::Sales],
    };
    crate::report::run(&pool, &report, &mut std::io::stdout().lock()).await?;
    println!();
    println!("The data is in PostgreSQL; try:");
    println!(
        "  psql '{}' -c 'SELECT * FROM sonnys.sync_days ORDER BY 1, 2, 3'",
        redact_url(&url)
    );
    running.shutdown().await;
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// DATABASE_URL if it answers; else the usual local server if it answers
/// (with a database of the demo's own); else a private server.
async fn database(args: &DemoArgs) -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("DATABASE_URL").map(|u| u.trim().to_owned()) {
        match probe(&url).await {
            Probe::Ready => return Ok(url),
            // The server is there but the database is not: a typo, or a
            // database not created yet. Falling back would hide it.
            Probe::MissingDatabase(name) => anyhow::bail!(
                "DATABASE_URL ({}) names the database `{name}`, which does not exist on that server; create it (createdb {name}) or point DATABASE_URL at an existing one",
                redact_url(&url)
            ),
            Probe::Refused(reason) => anyhow::bail!(
                "DATABASE_URL ({}): the server answers but refuses the connection: {reason}",
                redact_url(&url)
            ),
            Probe::NotAnswering(reason) => println!(
                "DATABASE_URL ({}): no server answers ({reason}); looking elsewhere",
                redact_url(&url)
            ),
        }
    } else if server_answers(LOCAL_SERVER).await {
        return demo_database(LOCAL_SERVER).await;
    }
    let dir = args.data_dir.clone().unwrap_or_else(|| {
        let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
        std::env::temp_dir().join(format!("sonnys-etl-demo-{user}"))
    });
    println!(
        "no PostgreSQL answers: starting a private one in {}",
        dir.display()
    );
    let server = PrivatePostgres::start(&dir).await?;
    let pg_ctl = PrivatePostgres::find_binaries()
        .map(|bin| bin.join("pg_ctl").display().to_string())
        .unwrap_or_else(|_| "pg_ctl".into());
    println!(
        "  (it keeps running for your queries; stop it with `{pg_ctl} stop -D {}`, as the user that owns the folder)",
        dir.display()
    );
    demo_database(&server.url("postgres")).await
}

/// What a connection attempt says about a server and database.
enum Probe {
    Ready,
    /// The server answers; the database does not exist.
    MissingDatabase(String),
    /// The server answers and refuses (authentication, permissions, TLS).
    Refused(String),
    /// Nothing answers at that address.
    NotAnswering(String),
}

async fn probe(url: &str) -> Probe {
    let attempt = tokio::time::timeout(Duration::from_secs(3), PgConnection::connect(url)).await;
    match attempt {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Probe::Ready
        }
        Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("3D000") => {
            let name = Url::parse(url)
                .ok()
                .map(|u| u.path().trim_start_matches('/').to_owned())
                .unwrap_or_default();
            Probe::MissingDatabase(name)
        }
        Ok(Err(sqlx::Error::Database(e))) => Probe::Refused(e.message().to_owned()),
        Ok(Err(e)) => Probe::NotAnswering(e.to_string()),
        Err(_) => Probe::NotAnswering("no answer within 3 s".into()),
    }
}

/// Create the demo's own database on a server, if missing; its URL.
async fn demo_database(server: &str) -> anyhow::Result<String> {
    let mut conn = PgConnection::connect(server)
        .await
        .with_context(|| format!("cannot connect to {}", redact_url(server)))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(DEMO_DATABASE)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        conn.execute(format!("CREATE DATABASE {DEMO_DATABASE}").as_str())
            .await
            .with_context(|| format!("cannot create the database {DEMO_DATABASE}"))?;
    }
    let _ = conn.close().await;
    let mut url = Url::parse(server)?;
    url.set_path(DEMO_DATABASE);
    Ok(url.to_string())
}
