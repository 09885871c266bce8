//! `sonnys-etl simulate`: run the simulator as a standalone server for
//! demos and rehearsals, printing the demo credentials to configure against.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use super::{Faults, RecordShape, Simulator, SimulatorConfig};

/// Command-line settings of `sonnys-etl simulate`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on (plain HTTP).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,

    /// Seed of the sample chain; the same seed serves the same transactions.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,

    /// Requests each API id may make per throttle window (the live service allows 20).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub requests_per_window: u32,

    /// Length of a throttle window, e.g. "15s" or "1500ms" (the live service uses 15s).
    #[arg(long, value_name = "DUR", default_value = "15s", value_parser = humantime::parse_duration)]
    pub window: Duration,

    /// Mean time a load-job takes to build; each job's time varies ±50%.
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = humantime::parse_duration)]
    pub build_latency: Duration,

    /// How many days back startDate may reach (the live service: about 6 months).
    #[arg(long, value_name = "N", default_value_t = 183)]
    pub max_age_days: i64,

    /// Tunnel sites to add to each account after the sample's (N04, N05, …;
    /// D03, D04, …), e.g. 37 for a 40-site northside chain in benchmarks.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub extra_sites: u32,

    /// Share (0–1) of employee, membership-account and status-change list pages
    /// answering `"total": null`, as the live service sometimes does.
    #[arg(long, value_name = "P", default_value_t = super::people::LIVE_NULL_TOTAL_RATE, value_parser = probability)]
    pub people_null_total_rate: f64,

    /// Do not serve the clock entries of shifts still running (the live
    /// service serves them with `clockOut: null`).
    #[arg(long)]
    pub no_open_shifts: bool,

    /// Share (0–1) of membership status changes dated by a bare `YYYY-MM-DD`
    /// (the account's local date), as the live service sometimes sends.
    #[arg(long, value_name = "P", default_value_t = super::people::LIVE_BARE_DATE_RATE, value_parser = probability)]
    pub bare_date_rate: f64,

    /// Probability (0–1) that a request answers HTTP 500 with an HTML proxy page.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub error_500_rate: f64,

    /// Probability (0–1) that a finished build ends in status "fail".
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub fail_rate: f64,

    /// Probability (0–1) that polling a finished job answers 404 as if it had expired.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub expire_rate: f64,

    /// Extra delay added to every answer, e.g. "200ms".
    #[arg(long, value_name = "DUR", default_value = "0s", value_parser = humantime::parse_duration)]
    pub slow: Duration,

    /// Send null for unset strings instead of "" (the live service sends "").
    #[arg(long)]
    pub no_empty_strings: bool,

    /// Name the discount amount "discountAmount" instead of the spec's "discount".
    #[arg(long)]
    pub discount_amount: bool,

    /// Share (0–1) of jobs whose first passing answer holds only half the page's records.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub short_page_rate: f64,

    /// Probability (0–1) that a passed page comes with `data: null`.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub null_data_rate: f64,

    /// Report this `total` on every page instead of the real one.
    #[arg(long, value_name = "N")]
    pub absurd_total: Option<u64>,

    /// Share (0–1) of records, always the same ones, with a NUL character in customerName.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub nul_rate: f64,

    /// Share (0–1) of records, always the same ones, dated 9999-12-31 (outside any window).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub out_of_window_rate: f64,

    /// Share (0–1) of jobs that answer `working` to two more polls after their build is done.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub extra_working_rate: f64,

    /// Send isRecurringPlanSale, isRecurringPlanRedemption and transactionStatus in
    /// get-job-data records, as the vendor's document describes (the live service
    /// leaves them out; only transaction/version-2 carries them).
    #[arg(long)]
    pub spec_shape: bool,

    /// Share (0–1) of summary pages, always the same ones, answering "total": null
    /// (the live service does this sometimes).
    #[arg(long, value_name = "P", default_value_t = 0.1, value_parser = probability)]
    pub null_total_rate: f64,

    /// Share (0–1) of jobs, always the same ones, whose passing get-job-data answers
    /// carry "total": null.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub job_null_total_rate: f64,

    /// Department names of the wash items, comma-separated, by wash product
    /// (Basic, Deluxe, Ultimate in turn), e.g. "Express Washes,Full Serve".
    /// /transaction/type/wash lists them whatever their names.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "Wash"
    )]
    pub wash_departments: Vec<String>,
}

fn probability(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability between 0 and 1"))
    }
}

impl SimulateArgs {
    /// The simulator settings these arguments describe.
    pub fn config(&self) -> SimulatorConfig {
        SimulatorConfig {
            seed: self.seed,
            requests_per_window: self.requests_per_window,
            window: self.window,
            build_latency: self.build_latency,
            max_age_days: self.max_age_days,
            extra_sites: self.extra_sites,
            wash_departments: self.wash_departments.clone(),
            shape: if self.spec_shape {
                RecordShape::Spec
            } else {
                RecordShape::Live
            },
            faults: Faults {
                people_null_total_rate: self.people_null_total_rate,
                open_shifts: !self.no_open_shifts,
                bare_date_rate: self.bare_date_rate,
                error_500_rate: self.error_500_rate,
                fail_rate: self.fail_rate,
                expire_rate: self.expire_rate,
                slow: self.slow,
                empty_strings: !self.no_empty_strings,
                discount_amount: self.discount_amount,
                short_page_rate: self.short_page_rate,
                null_data_rate: self.null_data_rate,
                absurd_total: self.absurd_total,
                nul_rate: self.nul_rate,
                out_of_window_rate: self.out_of_window_rate,
                extra_working_rate: self.extra_working_rate,
                null_total_rate: self.null_total_rate,
                job_null_total_rate: self.job_null_total_rate,
            },
        }
    }
}

/// Starts the simulator, prints where it listens and the demo accounts, and
/// serves until Ctrl-C or SIGTERM.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let simulator = Simulator::new(args.config());
    let running = simulator
        .start(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;

    println!("Sonny's Data API simulator listening");
    println!("  base URL: {}", running.base_url());
    println!("  serves:   site/list, transaction/load-job, transaction/get-job-data,");
    println!("            transaction/version-2, transaction,");
    println!("            employee, employee/{{employee_id}}/clock-entries,");
    println!("            recurring/account/list, recurring/account/status-list");
    println!(
        "  throttle: {} requests per {}",
        args.requests_per_window,
        humantime::format_duration(args.window)
    );
    for account in simulator.accounts() {
        // Demo credentials of a simulated chain, printed so operators can
        // configure the daemon; they open nothing but this simulator.
        println!();
        println!("account {}", account.name);
        println!("  api_id:   {}", account.api_id);
        println!("  api_key:  {}", account.api_key);
        println!("  timezone: {}", account.timezone);
        for site in &account.sites {
            println!(
                "  site {:>3}  code {:<6} {:<20} {}",
                site.site_id,
                format!("{:?}", site.code),
                site.timezone.as_deref().unwrap_or("(null: account zone)"),
                site.name
            );
        }
    }

    shutdown_signal().await?;
    println!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    #[test]
    fn defaults_match_the_live_service() {
        let cli = Cli::try_parse_from(["simulate"]).expect("defaults parse");
        let config = cli.args.config();
        assert_eq!(config.requests_per_window, 20);
        assert_eq!(config.window, Duration::from_secs(15));
        assert!(config.faults.empty_strings);
        assert!(!config.faults.discount_amount);
        assert_eq!(config.shape, RecordShape::Live);
        assert_eq!(config.faults.null_total_rate, 0.1);
        assert_eq!(config.faults.job_null_total_rate, 0.0);
        let library = SimulatorConfig::default();
        assert_eq!(config.shape, library.shape);
        assert_eq!((config.extra_sites, library.extra_sites), (0, 0));
        assert_eq!(
            config.faults.null_total_rate,
            library.faults.null_total_rate
        );
    }

    #[test]
    fn the_spec_shape_and_null_totals_are_flags() {
        let cli = Cli::try_parse_from([
            "simulate",
            "--spec-shape",
            "--null-total-rate",
            "0",
            "--job-null-total-rate",
            "0.5",
        ])
        .expect("parses");
        let config = cli.args.config();
        assert_eq!(config.shape, RecordShape::Spec);
        assert_eq!(config.faults.null_total_rate, 0.0);
        assert_eq!(config.faults.job_null_total_rate, 0.5);
    }

    #[test]
    fn the_people_endpoints_speak_the_live_shape_unless_told_otherwise() {
        let live = Cli::try_parse_from(["simulate"]).expect("defaults parse");
        let faults = live.args.config().faults;
        let library = SimulatorConfig::default().faults;
        assert_eq!(
            (
                faults.people_null_total_rate,
                faults.open_shifts,
                faults.bare_date_rate
            ),
            (
                library.people_null_total_rate,
                library.open_shifts,
                library.bare_date_rate
            )
        );
        assert!(
            faults.people_null_total_rate > 0.0
                && faults.open_shifts
                && faults.bare_date_rate > 0.0
        );
        let spec = Cli::try_parse_from([
            "simulate",
            "--people-null-total-rate",
            "0",
            "--no-open-shifts",
            "--bare-date-rate",
            "0",
        ])
        .expect("parses");
        let faults = spec.args.config().faults;
        assert_eq!(
            (
                faults.people_null_total_rate,
                faults.open_shifts,
                faults.bare_date_rate
            ),
            (0.0, false, 0.0)
        );
    }

    #[test]
    fn extra_sites_is_a_flag() {
        let cli = Cli::try_parse_from(["simulate", "--extra-sites", "37"]).expect("parses");
        assert_eq!(cli.args.config().extra_sites, 37);
        assert!(Cli::try_parse_from(["simulate", "--extra-sites", "-1"]).is_err());
    }

    #[test]
    fn durations_and_probabilities_parse() {
        let cli = Cli::try_parse_from([
            "simulate",
            "--window",
            "1500ms",
            "--fail-rate",
            "0.25",
            "--no-empty-strings",
        ])
        .expect("parses");
        assert_eq!(cli.args.window, Duration::from_millis(1500));
        assert_eq!(cli.args.fail_rate, 0.25);
        assert!(!cli.args.config().faults.empty_strings);
        assert!(Cli::try_parse_from(["simulate", "--fail-rate", "2"]).is_err());
    }
}
