//! The service's backfill (`[backfill] since`): every ended site-day from
//! `since` up to the day before the nightly range that is not `done`,
//! oldest first ([`DaySelection::Backfill`]), exported continuously through
//! the same [`Syncer`] as the nightly run, every request at
//! [`PriorityClass::Background`].
//!
//! It never delays the night: while a nightly run is going it starts no
//! site-day, and the days already going only get the slots the run does not
//! want (the budget serves the normal class first, in this process and,
//! through the ledger, across processes). Sites take turns of
//! [`TURN_DAYS`] days, so the oldest days of every site go first, and the
//! budget never idles at the end of a batch. Its state is
//! `sonnys.sync_days` alone, so a restart resumes where it stopped and
//! replicas share it through the site-day leases. Its passes are not runs:
//! they are not in `sonnys.runs` nor in the run metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Shared;
use crate::budget::PriorityClass;
use crate::domain::days::DaySelection;
use crate::people::DataKinds;
use crate::progress::Progress;
use crate::status::backfill::BackfillStatus;
use crate::sync::{SyncPlan, Syncer};

/// Days a site exports in its turn before the next site's turn: as many as
/// it exports at once, so a site alone keeps as many days going as in a run.
pub const TURN_DAYS: usize = crate::sync::DAYS_IN_FLIGHT;
/// How long the backfill rests after a pass that finished nothing (the
/// API refusing, the database away), or once everything is done, unless the
/// service wakes it sooner (a run ended, the configuration changed).
const REST: Duration = Duration::from_secs(300);
/// How often, during a pass, the progress gauges are brought up to date
/// once site-days finished since the last time.
const PROGRESS_LOOK: Duration = Duration::from_secs(2);

/// What the service tells the backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signal {
    /// A nightly run is going: start no site-day.
    pub night: bool,
    /// Changed at every run end and every reload: look again.
    pub generation: u64,
    /// Changed at every reload: a pass going stops and starts again when
    /// the backfill's part of the configuration changed.
    pub reloads: u64,
}

/// The syncer the nightly run uses (so both share each API id's budget).
pub type SharedSyncer = Arc<Mutex<Option<Syncer>>>;

/// Work through the backfill until `shutdown`.
pub async fn work(
    shared: Arc<Shared>,
    syncer: SharedSyncer,
    mut signal: watch::Receiver<Signal>,
    shutdown: CancellationToken,
) {
    // The pause the syncer reads: the night, from the service's signal.
    let (pause_tx, pause) = watch::channel(signal.borrow().night);
    {
        let (mut signal, shutdown) = (signal.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    changed = signal.changed() => if changed.is_err() { return },
                }
                let night = signal.borrow_and_update().night;
                pause_tx.send_replace(night);
            }
        });
    }
    let mut warned: Option<usize> = None;
    loop {
        // A rest ends at shutdown too: start nothing then.
        if shutdown.is_cancelled() {
            return;
        }
        // Start a pass only between nights.
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            waited = signal.wait_for(|s| !s.night) => if waited.is_err() { return },
        }
        let settings = shared.settings();
        let now = Utc::now();
        let Some(since) = settings.backfill.first_date(now) else {
            rest(&mut signal, &shutdown, None).await;
            continue;
        };
        let Some(pool) = shared.pool() else {
            rest(&mut signal, &shutdown, Some(REST)).await;
            continue;
        };
        report_progress(&pool, &settings, &mut warned).await;
        let syncer = {
            let mut slot = syncer.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert_with(|| Syncer::new(settings.clone(), pool.clone()))
                .clone()
        }
        .with_priority(PriorityClass::Background)
        .with_data(DataKinds {
            transactions: true,
            labour: false,
            members: false,
        })
        .taking_turns(TURN_DAYS)
        .paused_by(pause.clone());
        let plan = SyncPlan {
            days: DaySelection::Backfill {
                since,
                catch_up_days: settings.schedule.catch_up_days,
            },
            accounts: Vec::new(),
            sites: Vec::new(),
        };
        let started = tokio::time::Instant::now();
        // A reload stops the pass (its days in flight finish) and the next
        // one starts with the new configuration.
        let pass = shutdown.child_token();
        let progress = Progress::plain();
        let reloads = signal.borrow().reloads;
        let watcher = {
            let (mut signal, pass) = (signal.clone(), pass.clone());
            let (pool, settings, shared) = (pool.clone(), settings.clone(), shared.clone());
            let totals = progress.totals();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(PROGRESS_LOOK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut seen = 0;
                loop {
                    tokio::select! {
                        _ = pass.cancelled() => return,
                        _ = tick.tick() => {
                            // After site-days finished, at most every PROGRESS_LOOK.
                            let finished = totals.finished.load(std::sync::atomic::Ordering::Relaxed);
                            if finished != seen {
                                seen = finished;
                                if let Err(e) = update_gauges(&pool, &settings).await {
                                    tracing::debug!(error = %e, "cannot read the backfill's progress");
                                }
                            }
                        }
                        changed = signal.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            if signal.borrow_and_update().reloads != reloads
                                && what_a_pass_reads(&shared.settings()) != what_a_pass_reads(&settings)
                            {
                                tracing::info!("the backfill's configuration changed: the backfill starts again with it");
                                pass.cancel();
                                return;
                            }
                        }
                    }
                }
            })
        };
        let summary = syncer
            .run(&plan, &pass, &progress)
            .instrument(tracing::info_span!("backfill"))
            .await;
        watcher.abort();
        let Ok(summary) = summary else {
            rest(&mut signal, &shutdown, Some(REST)).await;
            continue;
        };
        let chosen: usize = summary.accounts.iter().map(|a| a.site_days).sum();
        let done: usize = summary.accounts.iter().map(|a| a.done).sum();
        if chosen == 0 {
            if summary.accounts.iter().all(|a| a.stopped.is_none()) {
                tracing::info!(since = %since, "backfill complete: every site-day since {since} up to the nightly range is done");
            }
            rest(&mut signal, &shutdown, Some(REST)).await;
            continue;
        }
        tracing::info!(
            site_days = chosen,
            done,
            took_s = started.elapsed().as_secs_f64(),
            "backfill pass finished"
        );
        if done == 0 && !pass.is_cancelled() {
            // Nothing went through: do not hammer the API or the database.
            rest(&mut signal, &shutdown, Some(REST)).await;
        }
    }
}

/// The settings a pass works by: a reload that changes one of them stops
/// the pass going (its days in flight finish) and starts another. (A new
/// API key applies at the next pass: the old one's refusal ends this one.)
fn what_a_pass_reads(settings: &crate::configuration::Settings) -> String {
    let accounts: Vec<String> = settings
        .accounts
        .iter()
        .map(|a| format!("{}/{}/{:?}/{:?}", a.name, a.api_id, a.sites, a.timezone))
        .collect();
    let api = &settings.api;
    format!(
        "{:?} {} {} {} {:?} {} {:?}",
        settings.backfill.since,
        settings.schedule.catch_up_days,
        accounts.join(","),
        api.base_url,
        api.window,
        api.allowance(),
        api.jitter_guard
    )
}

/// Bring the backfill's gauges up to date; returns the progress read.
async fn update_gauges(
    pool: &sqlx::PgPool,
    settings: &crate::configuration::Settings,
) -> sqlx::Result<BTreeMap<String, BackfillStatus>> {
    let all = crate::status::backfill::load(pool, settings, Utc::now()).await?;
    for (account, status) in &all {
        crate::metrics::backfill(account, status.done, status.remaining, status.eta_seconds);
    }
    Ok(all)
}

/// Set the backfill's metrics, log its progress, and warn (once per
/// change) about the days that will leave the API's reach before the
/// backfill gets to them.
async fn report_progress(
    pool: &sqlx::PgPool,
    settings: &crate::configuration::Settings,
    warned: &mut Option<usize>,
) {
    let all = match update_gauges(pool, settings).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the backfill's progress");
            return;
        }
    };
    let mut at_risk = 0;
    for (account, status) in &all {
        at_risk += status.at_risk.len();
        if *warned != Some(at_risk) {
            if let Some(risk) = status.describe_at_risk() {
                tracing::warn!(account = %account, "{risk}");
            }
        }
        tracing::info!(account = %account, done = status.done, remaining = status.remaining,
            eta_s = status.eta_seconds, "backfill progress");
    }
    *warned = Some(at_risk);
}

/// Wait for the service's next signal, `shutdown`, or `at_most`.
async fn rest(
    signal: &mut watch::Receiver<Signal>,
    shutdown: &CancellationToken,
    at_most: Option<Duration>,
) {
    let timer = async {
        match at_most {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = signal.changed() => {}
        _ = timer => {}
    }
}
