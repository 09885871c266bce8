//! The command line: one binary, one subcommand per job. Each command body
//! loads what it needs and calls into the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{Months, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};

use crate::configuration::{Settings, Sources};
use crate::progress::Progress;
use crate::sync::{DaySelection, SyncPlan, Syncer};
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
    /// Create or update the database schema, then exit.
    Migrate,
    /// Print the KPIs (sales, washes, memberships, conversion rate) of a date
    /// range per site, account or day, with a totals row.
    Report(crate::report::ReportArgs),
    /// Try it all without credentials: start the simulator in-process, use
    /// DATABASE_URL (or a local or private PostgreSQL), sync the last 7 days of
    /// the sample chain and print per-site totals.
    Demo(crate::demo::DemoArgs),
    /// Serve a simulator of the Sonny's Data API with a sample car-wash chain,
    /// to rehearse a deployment or try the daemon without credentials.
    Simulate(crate::simulator::SimulateArgs),
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
}

/// Run the parsed command line; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Migrate => {
            let settings = load_settings(cli.config.as_deref())?;
            let url = settings.database_url()?;
            crate::store::connect(url, 2).await?;
            println!("database schema is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => {
            let settings = load_settings(cli.config.as_deref())?;
            let pool = crate::store::connect(settings.database_url()?, 2).await?;
            let mut out = std::io::stdout().lock();
            crate::report::run(&pool, &args, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Simulate(args) => {
            crate::simulator::run(args).await?;
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

async fn sync(settings: Settings, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let plan = SyncPlan {
        days: DaySelection::Range {
            from: args.from,
            to: args.to.unwrap_or(args.from),
            missing_only: args.missing,
        },
        accounts: args.accounts,
        sites: args.sites,
    };
    let oldest = Utc::now().date_naive() - Months::new(6);
    if args.from < oldest {
        anyhow::bail!(
            "--from {} is more than 6 months ago; the API only serves the last 6 months (from {oldest})",
            args.from
        );
    }
    let settings = Arc::new(settings);
    let pool =
        crate::store::connect(settings.database_url()?, settings.database.max_connections).await?;
    let syncer = Syncer::new(settings, pool);
    syncer.check(&plan).map_err(anyhow::Error::msg)?;
    let shutdown = crate::shutdown::on_signal();
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
