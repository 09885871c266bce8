//! The service's backfill (`[backfill] since`): every ended site-day from
//! `since` up to the day before the nightly range that is not `done`,
//! oldest first ([`DaySelection::Backfill`]), exported a small batch at a
//! time through the same [`Syncer`] as the nightly run, every request at
//! [`PriorityClass::Background`].
//!
//! It never delays the night: before each batch it waits until no nightly
//! run is going, and a batch still in flight when a run starts only gets the
//! slots the run does not want (the budget serves the normal class first, in
//! this process and, through the ledger, across processes). Its state is
//! `sonnys.sync_days` alone, so a restart resumes where it stopped and
//! replicas share it through the site-day leases. Its batches are not runs:
//! they are not in `sonnys.runs` nor in the run metrics.

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
use crate::sync::{SyncPlan, Syncer};

/// Site-days of each site one batch exports at most.
pub const BATCH_DAYS_PER_SITE: u32 = 2;
/// How long the backfill rests after a batch that finished nothing (the
/// API refusing, the database away), or once everything is done, unless the
/// service wakes it sooner (a run ended, the configuration changed).
const REST: Duration = Duration::from_secs(300);

/// What the service tells the backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signal {
    /// A nightly run is going: start no batch.
    pub night: bool,
    /// Changed at every run end and every reload: look again.
    pub generation: u64,
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
    let mut warned: Option<usize> = None;
    loop {
        // Never start a batch while the night runs.
        tokio::select! {
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
        });
        let plan = SyncPlan {
            days: DaySelection::Backfill {
                since,
                catch_up_days: settings.schedule.catch_up_days,
                batch: Some(BATCH_DAYS_PER_SITE),
            },
            accounts: Vec::new(),
            sites: Vec::new(),
        };
        let started = tokio::time::Instant::now();
        let summary = syncer
            .run(&plan, &shutdown, &Progress::plain())
            .instrument(tracing::info_span!("backfill"))
            .await;
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
            "backfill batch finished"
        );
        if done == 0 {
            // Nothing went through: do not hammer the API or the database.
            rest(&mut signal, &shutdown, Some(REST)).await;
        }
    }
}

/// Set the backfill's metrics, and warn (once per change) about the days
/// that will leave the API's reach before the backfill gets to them.
async fn report_progress(
    pool: &sqlx::PgPool,
    settings: &crate::configuration::Settings,
    warned: &mut Option<usize>,
) {
    match crate::status::backfill::load(pool, settings, Utc::now()).await {
        Ok(all) => {
            let mut at_risk = 0;
            for (account, status) in &all {
                crate::metrics::backfill(
                    account,
                    status.done,
                    status.remaining,
                    status.eta_seconds,
                );
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
        Err(e) => tracing::warn!(error = %e, "cannot read the backfill's progress"),
    }
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
