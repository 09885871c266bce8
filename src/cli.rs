//! The command line: one binary, one subcommand per job. Each command body
//! loads what it needs and calls into the library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};

use crate::configuration::{Settings, Sources};
use crate::domain::days::DaySelection;
use crate::progress::Progress;
use crate::sync::{SyncPlan, Syncer};
use crate::telemetry::LogFormat;

/// Export Sonny's Carwash Controls transactions into PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "sonnys-etl", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables SONNYS_ETL__SECTION__KEY
    /// and DATABASE_URL override it.
    #[arg(
        long,
        short,
        global = true,
        env = "SONNYS_ETL_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export every (account, site, business day) in a date range and upsert it
    /// into PostgreSQL. Exits 0 only if every site-day succeeded.
    Sync(SyncArgs),
    /// Run as a service: export every night on `[schedule]`, catch up on
    /// start, serve /livez, /readyz, /metrics and a status page on
    /// `[server] listen`. Stops gracefully on SIGTERM; SIGHUP reloads the
    /// configuration.
    Run,
    /// Per account and site: the last day done, missing and failed days,
    /// the next scheduled run. Exits 1 when any site's data is older than
    /// --stale-after, so it doubles as a cron check.
    Status(StatusArgs),
    /// GET a URL and exit 0 on a 2xx answer, 1 otherwise: a health check
    /// for container images without curl.
    Probe(ProbeArgs),
    /// Forecast the request budget of the next scheduled run (or of a date
    /// range) from the recorded history: site-days, pages, requests and the
    /// minimum time per API id. Sends no request to the API.
    Plan(crate::plan::PlanArgs),
    /// Create or update the database schema, then exit.
    Migrate,
    /// Print the KPIs (sales, washes, memberships, conversion rate; with
    /// --kpis, labour cost and members) of a date range per site, account or
    /// day, with a totals row; with --departments, the item departments seen
    /// and whether each counts as a wash.
    Report(crate::report::ReportCommand),
    /// Try it all without credentials: start the simulator in-process, use
    /// DATABASE_URL (or a local or private PostgreSQL), sync the last 7 days of
    /// the sample chain and print per-site totals.
    #[cfg(feature = "rehearsal")]
    Demo(crate::rehearsal::demo::DemoArgs),
    /// Serve a simulator of the Sonny's Data API with a sample car-wash chain,
    /// to rehearse a deployment or try the daemon without credentials.
    #[cfg(feature = "rehearsal")]
    Simulate(crate::rehearsal::simulator::SimulateArgs),
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// First business day to export (YYYY-MM-DD, in each site's local time).
    #[arg(long, value_name = "DATE")]
    pub from: NaiveDate,
    /// Last business day to export, inclusive (default: the same as --from).
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Only this account (its configured name); repeat for several.
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,
    /// Only this site code; repeat for several.
    #[arg(long = "site", value_name = "CODE")]
    pub sites: Vec<String>,
    /// Only the days of the range that are not done yet (rerun a night's
    /// failures without repeating the good days).
    #[arg(long)]
    pub missing: bool,
    /// What to export, comma-separated: transactions, labour, members
    /// (default: transactions plus what `[labour]` and `[members]` enable).
    #[arg(long, value_name = "LIST", value_parser = crate::people::DataKinds::parse)]
    pub data: Option<crate::people::DataKinds>,
    /// How this sync's requests rank against other processes on the same
    /// API id (the service): `normal`, like the service's nightly work;
    /// `background`, only the slots no other process waits for with normal
    /// work (a backfill beside the service). Applies to every request of the
    /// sync. Default: `background` when every day of the range is older than
    /// the service's nightly range (the last `schedule.catch_up_days` ended
    /// days in each site's zone), else `normal`.
    #[arg(long, value_enum, value_name = "PRIORITY")]
    pub priority: Option<crate::budget::PriorityClass>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: StatusFormat,
    /// A site whose data is older than this is stale (exit code 1).
    #[arg(long, value_name = "DURATION", default_value = "36h", value_parser = humantime::parse_duration)]
    pub stale_after: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The URL to GET, e.g. http://127.0.0.1:9187/readyz.
    pub url: url::Url,
    /// Give up after this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// Run the parsed command line; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run => {
            let settings = load_settings(cli.config.as_deref())?;
            crate::service::run(crate::service::Reload::From(cli.config), settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => {
            let settings = load_settings_without_keys(cli.config.as_deref())?;
            status(settings, args).await
        }
        Command::Probe(args) => Ok(probe(args).await),
        Command::Plan(args) => {
            let settings = load_settings_without_keys(cli.config.as_deref())?;
            plan(settings, args).await
        }
        Command::Migrate => {
            let settings = load_settings_without_keys(cli.config.as_deref())?;
            let url = settings.database_url()?;
            let pool = crate::store::connect(url, 2).await?;
            crate::store::washes::apply_configured(&pool, &settings.reporting).await?;
            println!("database schema is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(report) => {
            let settings = load_settings_without_keys(cli.config.as_deref())?;
            let pool = crate::store::connect(settings.database_url()?, 2).await?;
            let mut out = std::io::stdout().lock();
            report.run(&pool, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "rehearsal")]
        Command::Demo(args) => crate::rehearsal::demo::run(args).await,
        #[cfg(feature = "rehearsal")]
        Command::Simulate(args) => {
            crate::rehearsal::simulator::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync(args) => {
            let settings = load_settings(cli.config.as_deref())?;
            sync(settings, args).await
        }
    }
}

fn load_settings(file: Option<&std::path::Path>) -> anyhow::Result<Settings> {
    Ok(Settings::load(&Sources::process(file))?)
}

/// For commands that never call the API: a missing key variable is no error.
fn load_settings_without_keys(file: Option<&std::path::Path>) -> anyhow::Result<Settings> {
    Ok(Settings::load(&Sources::process(file).without_keys())?)
}

async fn status(settings: Settings, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let pool = crate::store::connect(settings.database_url()?, 2).await?;
    let now = Utc::now();
    let context = crate::status::SnapshotContext {
        now,
        stale_after: args.stale_after,
        next_run: settings.schedule.schedule.next_after(now),
        last_run: None,
        current_run: None,
    };
    let snapshot = crate::status::Snapshot::load(&pool, &settings, context)
        .await
        .context("cannot read the status from the database")?;
    let mut out = std::io::stdout().lock();
    match args.format {
        StatusFormat::Table => crate::status::text::table(&snapshot, &mut out)?,
        StatusFormat::Json => crate::status::text::json(&snapshot, &mut out)?,
    }
    Ok(if snapshot.stale_sites().next().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn plan(settings: Settings, args: crate::plan::PlanArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.table {
        crate::plan::reference_table(
            &mut out,
            settings.api.allowance(),
            settings.api.window,
            settings.transactions.summaries,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let pool = crate::store::connect(settings.database_url()?, 2).await?;
    let now = Utc::now();
    let schedule = &settings.schedule;
    let (selection, at) = match (args.from, args.to) {
        (Some(from), Some(to)) => (
            DaySelection::Range {
                from,
                to,
                missing_only: false,
            },
            now,
        ),
        _ => (
            DaySelection::Recent {
                catch_up_days: schedule.catch_up_days,
                lookback_days: schedule.lookback_days,
            },
            schedule.schedule.next_after(now).unwrap_or(now),
        ),
    };
    let mut forecast = crate::plan::forecast(&pool, &settings, selection, at)
        .await
        .context("cannot read the history from the database")?;
    if args.from.is_none() {
        forecast.deadline = schedule.deadline.and_then(|time| {
            let zone = schedule.schedule.timezone();
            let local = at.with_timezone(&zone);
            let mut date = local.date_naive();
            if local.time() >= time {
                date = date.succ_opt()?;
            }
            date.and_time(time)
                .and_local_timezone(zone)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        });
    }
    match args.format {
        crate::plan::PlanFormat::Table => {
            crate::plan::print(&forecast, settings.schedule.schedule.timezone(), &mut out)?
        }
        crate::plan::PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &forecast)?;
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn probe(args: ProbeArgs) -> ExitCode {
    let client = match reqwest::Client::builder().timeout(args.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(args.url.clone()).send().await {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            eprintln!("probe {}: HTTP {status} {}", args.url, body.trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("probe {}: {e}", args.url);
            ExitCode::FAILURE
        }
    }
}

async fn sync(settings: Settings, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let data = args.data;
    let plan = SyncPlan {
        days: DaySelection::Range {
            from: args.from,
            to: args.to.unwrap_or(args.from),
            missing_only: args.missing,
        },
        accounts: args.accounts,
        sites: args.sites,
    };
    let oldest = crate::domain::days::earliest_servable_date(Utc::now());
    if args.from < oldest {
        anyhow::bail!(
            "--from {} is older than the API serves: it accepts exports starting at most {} days before its now, so the oldest day to ask for is {oldest}",
            args.from,
            crate::domain::days::API_MAX_AGE_DAYS
        );
    }
    let settings = Arc::new(settings);
    let pool =
        crate::store::connect(settings.database_url()?, settings.database.max_connections).await?;
    crate::store::washes::apply_configured(&pool, &settings.reporting).await?;
    let mut syncer = Syncer::new(settings, pool);
    if let Some(data) = data {
        syncer = syncer.with_data(data);
    }
    if let Some(priority) = args.priority {
        syncer = syncer.with_priority(priority);
    }
    syncer.check(&plan).map_err(anyhow::Error::msg)?;
    let shutdown = crate::shutdown::on_signal_or_hangup();
    let progress = Progress::new(std::io::stderr().is_terminal());
    let summary = syncer
        .run(&plan, &shutdown, &progress)
        .await
        .map_err(anyhow::Error::msg)
        .context("sync")?;
    print!("{summary}");
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
