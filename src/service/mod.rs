//! `sonnys-etl run`: the long-running service. It applies the migrations,
//! schedules the nightly export itself, catches up on start, never runs two
//! exports at once, reloads its configuration on SIGHUP, stops gracefully on
//! SIGTERM, and is watched through systemd ([`notify`]) and its operations
//! endpoint ([`http`]).
//!
//! What a run exports is decided by the database, not by memory: every ended
//! business day of the catch-up range that is not `done`, plus the lookback
//! days again, newest first ([`crate::domain::days::DaySelection::Recent`]).
//! Beside the runs, with `[backfill] since`, [`backfill`] fills the older
//! history at the lowest priority, starting no site-day during a run.

pub mod backfill;
pub mod http;
pub mod notify;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::configuration::{Settings, Sources};
use crate::domain::days::DaySelection;
use crate::domain::states::RunOutcome;
use crate::progress::{Progress, Totals};
use crate::status::{RunFigures, RunProgress, Snapshot, SnapshotContext};
use crate::sync::{SyncError, SyncPlan, SyncSummary, Syncer};

/// How often the main loop proves it is alive (and pings the watchdog).
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Data older than this is stale on the status page.
pub const STALE_AFTER: Duration = Duration::from_secs(36 * 3600);

/// What the operations endpoint reads of the running service.
pub struct Shared {
    pub settings: RwLock<Arc<Settings>>,
    /// Set once connected and migrated.
    pub pool: RwLock<Option<PgPool>>,
    pub draining: AtomicBool,
    /// The main loop's last sign of life.
    pub heartbeat: Mutex<Instant>,
    pub next_run: Mutex<Option<DateTime<Utc>>>,
    pub last_run: Mutex<Option<RunFigures>>,
    pub current_run: Mutex<Option<(DateTime<Utc>, Arc<Totals>)>>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Shared {
    fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn pool(&self) -> Option<PgPool> {
        self.pool.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn beat(&self) {
        *self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Whether the main loop has shown life recently.
    pub fn alive(&self) -> bool {
        self.heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            < HEARTBEAT * 10
    }

    pub fn next_run(&self) -> Option<DateTime<Utc>> {
        *self.next_run.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The status picture, as the page and `status` show it.
    pub async fn snapshot(&self, pool: &PgPool) -> sqlx::Result<Snapshot> {
        let current_run = self
            .current_run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(started_at, totals)| RunProgress {
                started_at: *started_at,
                site_days: totals.site_days.load(Ordering::Relaxed),
                finished: totals.finished.load(Ordering::Relaxed),
                left_seconds: totals.left().map(|d| d.as_secs()),
            });
        let context = SnapshotContext {
            now: Utc::now(),
            stale_after: STALE_AFTER,
            next_run: self.next_run(),
            last_run: self
                .last_run
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            current_run,
        };
        Snapshot::load(pool, &self.settings(), context).await
    }
}

/// A run in progress.
struct Running {
    task: JoinHandle<Result<SyncSummary, SyncError>>,
    started_at: DateTime<Utc>,
    started: Instant,
    totals: Arc<Totals>,
}

/// Where SIGHUP reads the configuration again from.
#[derive(Debug, Clone)]
pub enum Reload {
    /// The configuration file (if any) and the environment, as at start.
    From(Option<PathBuf>),
    /// Built in (the demo's rehearsal): SIGHUP changes nothing.
    #[cfg(feature = "rehearsal")]
    Fixed,
}

/// Run the service until a signal stops it.
pub async fn run(reload: Reload, settings: Settings) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    let metrics = match crate::metrics::install() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics are off");
            None
        }
    };
    let shared = Arc::new(Shared {
        settings: RwLock::new(Arc::new(settings)),
        pool: RwLock::new(None),
        draining: AtomicBool::new(false),
        heartbeat: Mutex::new(Instant::now()),
        next_run: Mutex::new(None),
        last_run: Mutex::new(None),
        current_run: Mutex::new(None),
        metrics,
    });
    if let Some(handle) = &shared.metrics {
        let handle = handle.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                handle.run_upkeep();
            }
        });
    }

    // The endpoint comes first, so that /livez answers while the database
    // is awaited and /readyz says why the service is not ready.
    let http_stop = CancellationToken::new();
    let server = match shared.settings().server.listen {
        Some(addr) => Some(
            http::serve(addr, shared.clone(), http_stop.clone())
                .await
                .with_context(|| format!("cannot listen on server.listen = {addr}"))?,
        ),
        None => None,
    };
    notify::status("connecting to the database");
    let Some(pool) = connect(&shared, &shutdown).await else {
        notify::stopping();
        http_stop.cancel();
        return Ok(());
    };
    *shared.pool.write().unwrap_or_else(|e| e.into_inner()) = Some(pool.clone());

    let result = Service {
        reload,
        shared: shared.clone(),
        pool,
        shutdown,
        scheduler: JobScheduler::new()
            .await
            .context("cannot start the scheduler")?,
        job: None,
        syncer: Arc::new(Mutex::new(None)),
        backfill: tokio::sync::watch::channel(backfill::Signal::default()).0,
    }
    .serve()
    .await;
    http_stop.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    result
}

/// Connect and migrate, retrying until the database answers or the
/// service is stopped. `None` when stopped first.
async fn connect(shared: &Shared, shutdown: &CancellationToken) -> Option<PgPool> {
    let mut delay = Duration::from_secs(1);
    loop {
        let settings = shared.settings();
        let attempt = async {
            let url = settings.database_url()?;
            let pool = crate::store::connect(url, settings.database.max_connections).await?;
            crate::store::washes::apply_configured(&pool, &settings.reporting).await?;
            anyhow::Ok(pool)
        };
        match attempt.await {
            Ok(pool) => return Some(pool),
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    retry_in_s = delay.as_secs(),
                    "the database is not available; retrying"
                );
                notify::status(&format!("waiting for the database: {e}"));
            }
        }
        shared.beat();
        notify::watchdog();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return None,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

struct Service {
    reload: Reload,
    shared: Arc<Shared>,
    pool: PgPool,
    shutdown: CancellationToken,
    scheduler: JobScheduler,
    /// The one-shot job of the next tick.
    job: Option<Uuid>,
    /// Kept across runs, so that each API id's budget remembers its pace;
    /// the backfill uses it too, so that both share each API id's budget.
    syncer: backfill::SharedSyncer,
    /// What the backfill task is told: a night is running, look again.
    backfill: tokio::sync::watch::Sender<backfill::Signal>,
}

impl Service {
    async fn serve(mut self) -> anyhow::Result<()> {
        self.scheduler
            .start()
            .await
            .context("cannot start the scheduler")?;
        let (tick_tx, mut ticks) = mpsc::unbounded_channel::<DateTime<Utc>>();
        self.schedule_next(Utc::now(), &tick_tx).await?;
        let mut hangups = hangups()?;
        let mut running: Option<Running> = None;
        let mut pending: Option<Settings> = None;

        // One read of the sites' state sets the gauges and tells whether a
        // run is due at once.
        let state = self.refresh_site_gauges().await;
        // Replicas tell each other apart by this id: it is the
        // `lease_owner` of the site-days this process exports.
        tracing::info!(replica = %crate::store::Lease::this_process(), "service ready");
        notify::ready();
        self.idle_status();
        match state.map(|s| s.any_day_due()) {
            Ok(true) => {
                tracing::info!("days are due in the catch-up range: starting a run now");
                running = Some(self.start_run());
            }
            Ok(false) => {
                tracing::info!("every day of the catch-up range is done; waiting for the schedule")
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether days are due; starting a run now");
                running = Some(self.start_run());
            }
        }

        // The backfill starts once the start-up run (if any) is known, so
        // that its first pass waits for it.
        self.signal_backfill(running.is_some());
        let backfill_task = tokio::spawn(backfill::work(
            self.shared.clone(),
            self.syncer.clone(),
            self.backfill.subscribe(),
            self.shutdown.child_token(),
        ));

        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = heartbeat.tick() => {
                    self.shared.beat();
                    notify::watchdog();
                    if let Some(run) = &running {
                        let (done, all) = (run.totals.finished.load(Ordering::Relaxed), run.totals.site_days.load(Ordering::Relaxed));
                        let left = run.totals.left().map(|d| format!(", about {} left", crate::status::format::about(d.as_secs()))).unwrap_or_default();
                        notify::status(&format!("exporting {done}/{all} site-days{left}"));
                    }
                }
                Some(fired) = ticks.recv() => {
                    self.schedule_next(fired, &tick_tx).await?;
                    if running.is_some() {
                        crate::metrics::tick_skipped();
                        tracing::warn!(tick = %fired, "scheduled tick skipped: the previous run is still going");
                    } else {
                        // The backfill pauses first: its next day waits.
                        self.signal_backfill(true);
                        running = Some(self.start_run());
                    }
                }
                _ = hangups.recv() => {
                    match self.reload() {
                        Ok(new) if running.is_some() => {
                            tracing::info!("configuration reloaded; it applies after the current run");
                            pending = Some(new);
                        }
                        Ok(new) => self.apply(new, &tick_tx).await?,
                        Err(e) => tracing::error!(error = %e, "the new configuration is invalid; keeping the running one"),
                    }
                }
                finished = async { (&mut running.as_mut().expect("guarded").task).await }, if running.is_some() => {
                    let run = running.take().expect("guarded");
                    self.finish_run(run, finished).await;
                    if let Some(new) = pending.take() {
                        self.apply(new, &tick_tx).await?;
                    }
                    self.signal_backfill(false);
                    self.idle_status();
                }
            }
        }

        self.shared.draining.store(true, Ordering::SeqCst);
        notify::stopping();
        if let Some(run) = running.take() {
            let timeout = self.shared.settings().server.shutdown_timeout;
            tracing::info!(
                timeout_s = timeout.as_secs(),
                "stopping: waiting for the pages in flight"
            );
            let started = (run.started, run.started_at, run.totals.clone());
            let mut task = run.task;
            match tokio::time::timeout(timeout, &mut task).await {
                Ok(finished) => {
                    let run = Running {
                        task,
                        started_at: started.1,
                        started: started.0,
                        totals: started.2,
                    };
                    self.finish_run(run, finished).await;
                }
                Err(_) => {
                    task.abort();
                    tracing::warn!(timeout_s = timeout.as_secs(), "the run did not stop within server.shutdown_timeout; its unfinished days are redone at the next start");
                }
            }
        }
        // The backfill's pass stops with the shutdown token; its started
        // days record their end like the run's.
        let timeout = self.shared.settings().server.shutdown_timeout;
        if tokio::time::timeout(timeout, backfill_task).await.is_err() {
            tracing::warn!(
                "the backfill did not stop within server.shutdown_timeout; its unfinished days are redone later"
            );
        }
        let _ = self.scheduler.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }

    /// Register the next tick after `after` with the scheduler, as a one-shot
    /// job computed from the expression and the zone (see [`crate::schedule`]).
    ///
    /// tokio-cron-scheduler stays the scheduler: it is the stack the users
    /// chose. Only its one-shot jobs are used, one at a time, each computed
    /// afresh in the schedule's zone; its repeating cron jobs keep the UTC
    /// offset of the moment they were made (its issues #87 and #107), so a
    /// 03:30 Chicago run would drift an hour at every daylight-saving change.
    async fn schedule_next(
        &mut self,
        after: DateTime<Utc>,
        ticks: &mpsc::UnboundedSender<DateTime<Utc>>,
    ) -> anyhow::Result<()> {
        if let Some(old) = self.job.take() {
            let _ = self.scheduler.remove(&old).await;
        }
        let settings = self.shared.settings();
        let schedule = &settings.schedule.schedule;
        let Some(next) = schedule.next_after(after.max(Utc::now())) else {
            anyhow::bail!(
                "schedule.cron `{}` never fires again",
                schedule.expression()
            );
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        let at = std::time::Instant::now() + wait;
        let tx = ticks.clone();
        // The scheduler keeps whole seconds and looks every 500 ms, so it
        // may fire up to a second early: wait for the exact time, so that a
        // run at local midnight sees the day that just ended.
        let job = Job::new_one_shot_at_instant_async(at, move |_, _| {
            let tx = tx.clone();
            Box::pin(async move {
                let early = (next - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(early).await;
                let _ = tx.send(next);
            })
        })
        .context("cannot create the scheduler's job")?;
        self.job = Some(
            self.scheduler
                .add(job)
                .await
                .context("cannot add the scheduler's job")?,
        );
        *self
            .shared
            .next_run
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(next);
        crate::metrics::next_run(next.timestamp());
        tracing::debug!(next_run = %schedule.local(next), "next run scheduled");
        Ok(())
    }

    fn idle_status(&self) {
        let settings = self.shared.settings();
        match self.shared.next_run() {
            Some(next) => notify::status(&format!(
                "idle, next run {}",
                settings.schedule.schedule.local(next)
            )),
            None => notify::status("idle"),
        }
    }

    /// Tell the backfill whether a nightly run is going, and to look again.
    fn signal_backfill(&self, night: bool) {
        self.backfill.send_modify(|s| {
            s.night = night;
            s.generation += 1;
        });
    }

    fn start_run(&mut self) -> Running {
        let settings = self.shared.settings();
        let syncer = self
            .syncer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| Syncer::new(settings.clone(), self.pool.clone()))
            .clone();
        let plan = SyncPlan {
            days: DaySelection::Recent {
                catch_up_days: settings.schedule.catch_up_days,
                lookback_days: settings.schedule.lookback_days,
            },
            accounts: Vec::new(),
            sites: Vec::new(),
        };
        let progress = Progress::plain();
        let totals = progress.totals();
        let cancel = self.shutdown.child_token();
        let started_at = Utc::now();
        *self
            .shared
            .current_run
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((started_at, totals.clone()));
        tracing::info!("run started");
        notify::status("exporting: listing sites");
        let span = tracing::info_span!("run", started = %started_at.format("%Y-%m-%dT%H:%M:%SZ"));
        let pool = self.pool.clone();
        let totals_for_eta = totals.clone();
        let task = tokio::spawn(
            async move {
                match crate::plan::forecast(&pool, &settings, plan.days, Utc::now()).await {
                    Ok(forecast) => {
                        let requests = forecast.api_ids.iter().map(|f| f.requests).sum();
                        let busiest = forecast.api_ids.iter().map(|f| f.minimum_seconds).fold(0.0, f64::max);
                        totals_for_eta.set_forecast(requests, Duration::from_secs_f64(busiest.max(0.0)));
                        for (account, requests) in &forecast.per_account {
                            crate::metrics::forecast_requests(account, *requests);
                        }
                        for f in &forecast.api_ids {
                            if f.site_days == 0 {
                                // Before the first run no site is known yet.
                                tracing::info!(api_id = %f.api_id, "forecast: no known site-day to export (sites not listed yet, or all done)");
                                continue;
                            }
                            tracing::info!(api_id = %f.api_id, site_days = f.site_days, pages = f.pages.round(),
                                requests = f.requests.round(), minimum_s = f.minimum_seconds.round(), "forecast");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot forecast the run"),
                }
                syncer.run(&plan, &cancel, &progress).await
            }
            .instrument(span),
        );
        Running {
            task,
            started_at,
            started: Instant::now(),
            totals,
        }
    }

    async fn finish_run(
        &self,
        run: Running,
        finished: Result<Result<SyncSummary, SyncError>, tokio::task::JoinError>,
    ) {
        *self
            .shared
            .current_run
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        let took = run.started.elapsed();
        let summary = match finished {
            Ok(Ok(summary)) => summary,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the run could not start");
                crate::metrics::run_finished(RunOutcome::Failed, took);
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "the run ended abnormally");
                crate::metrics::run_finished(RunOutcome::Failed, took);
                return;
            }
        };
        // One rule for the summary, the metric and the status page.
        let outcome = summary.outcome();
        crate::metrics::run_finished(outcome, took);
        let sum = |f: fn(&crate::sync::AccountSummary) -> u64| -> u64 {
            summary.accounts.iter().map(f).sum()
        };
        let figures = RunFigures {
            started_at: run.started_at,
            finished_at: Utc::now(),
            outcome,
            site_days: sum(|a| a.site_days as u64),
            done: sum(|a| a.done as u64),
            failed: sum(|a| a.failures.len() as u64),
            transactions: sum(|a| a.transactions),
            inserted: sum(|a| a.inserted),
            updated: sum(|a| a.updated),
            pages: sum(|a| a.pages),
            requests: sum(|a| a.requests),
            rate_limited: sum(|a| a.rate_limited),
        };
        *self
            .shared
            .last_run
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(figures.clone());
        // The row lets `status` and a restarted service show the run; the
        // memory above still shows it here if the database stays away.
        let replica = crate::store::Lease::this_process();
        let outage = self.shared.settings().database.outage_timeout;
        if let Err(e) = crate::store::ride_out(outage, "record the run", || {
            crate::store::runs::record_run(&self.pool, &figures, replica)
        })
        .await
        {
            tracing::warn!(error = %e, %replica, started_at = %figures.started_at,
                "cannot record the run in sonnys.runs; status shows it only while this process runs");
        }
        // The figures are in place before the run is reported finished.
        let _ = self.refresh_site_gauges().await;
        tracing::info!(
            outcome = outcome.as_str(),
            site_days = figures.site_days,
            done = figures.done,
            failed = figures.failed,
            transactions = figures.transactions,
            inserted = figures.inserted,
            updated = figures.updated,
            requests = figures.requests,
            rate_limited = figures.rate_limited,
            took_s = took.as_secs_f64(),
            "run finished"
        );
        for line in summary.to_string().lines() {
            tracing::info!("{line}");
        }
    }

    /// `sonnys_etl_site_last_success_timestamp_seconds` from the database;
    /// the state read for it is returned.
    async fn refresh_site_gauges(&self) -> sqlx::Result<Snapshot> {
        let snapshot = self.shared.snapshot(&self.pool).await;
        match &snapshot {
            Ok(snapshot) => {
                for account in &snapshot.accounts {
                    for site in &account.sites {
                        if let Some(t) = site.data_complete_until {
                            crate::metrics::site_last_success(
                                &account.name,
                                &site.code,
                                t.timestamp(),
                            );
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the sites' state for the metrics"),
        }
        snapshot
    }

    fn reload(&self) -> anyhow::Result<Settings> {
        match &self.reload {
            Reload::From(file) => {
                tracing::info!("SIGHUP: reading the configuration again");
                Ok(Settings::load(&Sources::process(file.as_deref()))?)
            }
            #[cfg(feature = "rehearsal")]
            Reload::Fixed => {
                anyhow::bail!("SIGHUP: this configuration is built in; nothing to reload")
            }
        }
    }

    async fn apply(
        &mut self,
        new: Settings,
        ticks: &mpsc::UnboundedSender<DateTime<Utc>>,
    ) -> anyhow::Result<()> {
        let old = self.shared.settings();
        if new.server.listen != old.server.listen {
            tracing::warn!("server.listen changed: it takes effect at the next restart");
        }
        if new
            .database
            .url
            .as_ref()
            .map(secrecy::ExposeSecret::expose_secret)
            != old
                .database
                .url
                .as_ref()
                .map(secrecy::ExposeSecret::expose_secret)
        {
            tracing::warn!("database.url changed: it takes effect at the next restart");
        }
        *self
            .shared
            .settings
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        *self.syncer.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.schedule_next(Utc::now(), ticks).await?;
        // The backfill starts again with the new configuration.
        self.backfill.send_modify(|s| {
            s.generation += 1;
            s.reloads += 1;
        });
        self.idle_status();
        tracing::info!(
            next_run =
                self.shared
                    .next_run()
                    .map(|t| self.shared.settings().schedule.schedule.local(t)),
            "configuration reloaded"
        );
        Ok(())
    }
}

/// SIGHUP, as a stream of events.
fn hangups() -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")
}
