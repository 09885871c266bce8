//! A sync run: for every selected account (in parallel), list its sites, then
//! run one worker per site over the requested business days. Workers of one
//! API id share its budget; a refused account stops alone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::Client;
use crate::budget::{Allowance, Budgets, PriorityClass};
use crate::configuration::{AccountSettings, Lookback, Settings};
use crate::domain::days::{DaySelection, OnClaimed, Redo};
use crate::domain::{BusinessDay, Site};
use crate::export::{AccountExport, BuildTimes, DayReport, ExportError, SummaryPolicy};
use crate::people::{DataKinds, PeopleExport};
use crate::progress::Progress;
use crate::store;

mod sites;
mod summary;

pub use summary::{AccountSummary, Failure, SyncSummary};

/// Why a sync cannot start: the plan does not fit the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("--from {from} is after --to {to}")]
    RangeReversed { from: NaiveDate, to: NaiveDate },
    #[error("no accounts are configured ([[accounts]] in the configuration file)")]
    NoAccounts,
    #[error("--account {name}: no such account (configured: {})", configured.join(", "))]
    UnknownAccount {
        name: String,
        configured: Vec<String>,
    },
}

/// Why an account's whole sync stopped before its days were done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    /// The program was asked to stop: the rest is done next time.
    #[error("interrupted by shutdown")]
    Interrupted,
    /// The API refused the account (401, 403): its key or id is wrong.
    #[error("{0}")]
    Refused(String),
    /// The account could not be worked on (no client, no site list, the
    /// database away past its outage timeout).
    #[error("{0}")]
    Failed(String),
}

/// Business days one site exports at the same time.
pub const DAYS_IN_FLIGHT: usize = 6;

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncPlan {
    pub days: DaySelection,
    /// Only these accounts (by configured name); all when empty.
    pub accounts: Vec<String>,
    /// Only these site codes; all configured sites when empty.
    pub sites: Vec<String>,
}

impl SyncPlan {
    /// Every ended day of an inclusive range, for all accounts and sites.
    pub fn range(from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            days: DaySelection::Range {
                from,
                to,
                missing_only: false,
            },
            accounts: Vec::new(),
            sites: Vec::new(),
        }
    }
}

/// Runs syncs with one budget per API id, however many accounts share it.
#[derive(Clone)]
pub struct Syncer {
    settings: Arc<Settings>,
    pool: PgPool,
    budgets: Budgets,
    sites_running: Arc<Semaphore>,
    data: DataKinds,
    /// The class of the requests; `None`: [`PriorityClass::of_sync`].
    priority: Option<PriorityClass>,
    /// Sites take turns of this many days ([`Syncer::taking_turns`]).
    turn_days: Option<usize>,
    /// No site-day starts while this says `true` ([`Syncer::paused_by`]).
    pause: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Syncer {
    /// A syncer whose budgets are shared through `pool`'s database with every
    /// other process on the same API ids.
    pub fn new(settings: Arc<Settings>, pool: PgPool) -> Self {
        let sites = settings.sync.max_concurrent_sites;
        // Every process syncing with an API id reserves its requests in the
        // database they share, so together they keep to the limit.
        let budgets = Budgets::shared(pool.clone());
        let data = DataKinds::configured(&settings.labour, &settings.members);
        Self {
            settings,
            pool,
            budgets,
            sites_running: Arc::new(Semaphore::new(sites)),
            data,
            priority: None,
            turn_days: None,
            pause: None,
        }
    }

    /// Sites take turns: a site exports `days` of its days, then queues
    /// again behind the sites waiting for one of the `max_concurrent_sites`
    /// places, so that every site's oldest days go before any site's later
    /// ones (the backfill; without it, a site keeps its place until all its
    /// days are done).
    pub fn taking_turns(mut self, days: usize) -> Self {
        self.turn_days = Some(days.max(1));
        self
    }

    /// Start no site-day while `pause` says `true` (the backfill, during the
    /// service's nightly runs); the days already going carry on. The syncer
    /// gets places of its own for `max_concurrent_sites`, so that a paused
    /// site never holds a place the nightly run needs.
    pub fn paused_by(mut self, pause: tokio::sync::watch::Receiver<bool>) -> Self {
        self.pause = Some(pause);
        self.sites_running = Arc::new(Semaphore::new(self.settings.sync.max_concurrent_sites));
        self
    }

    /// Wait until no pause holds, or the export is cancelled.
    async fn unpaused(&self, cancel: &CancellationToken) {
        if let Some(mut pause) = self.pause.clone() {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = pause.wait_for(|paused| !*paused) => {}
            }
        }
    }

    /// Send every request at this class (`sync --priority`).
    pub fn with_priority(mut self, class: PriorityClass) -> Self {
        self.priority = Some(class);
        self
    }

    /// Export these data instead of what the configuration enables (`sync --data`).
    pub fn with_data(mut self, data: DataKinds) -> Self {
        self.data = data;
        self
    }

    /// Check a plan against the configuration; the error names the problem.
    pub fn check(&self, plan: &SyncPlan) -> Result<(), SyncError> {
        if let DaySelection::Range { from, to, .. } = plan.days {
            if from > to {
                return Err(SyncError::RangeReversed { from, to });
            }
        }
        if self.settings.accounts.is_empty() {
            return Err(SyncError::NoAccounts);
        }
        let known: Vec<&str> = self
            .settings
            .accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        for name in &plan.accounts {
            if !known.contains(&name.as_str()) {
                return Err(SyncError::UnknownAccount {
                    name: name.clone(),
                    configured: known.iter().map(|k| k.to_string()).collect(),
                });
            }
        }
        Ok(())
    }

    /// Export every selected (account, site, business day) of the plan.
    pub async fn run(
        &self,
        plan: &SyncPlan,
        shutdown: &CancellationToken,
        progress: &Progress,
    ) -> Result<SyncSummary, SyncError> {
        self.check(plan)?;
        let started = Instant::now();
        let accounts = self.settings.accounts.iter().filter(|a| {
            plan.accounts.is_empty() || plan.accounts.iter().any(|n| n == a.name.as_str())
        });
        let summaries = join_all(accounts.map(|a| {
            self.run_account(a, plan, shutdown, progress)
                .instrument(tracing::info_span!("account", account = %a.name))
        }))
        .await;
        // A code stays unknown only if every account answered its site list.
        let unknown_sites = if summaries.iter().any(|a| a.stopped.is_some()) {
            Vec::new()
        } else {
            plan.sites
                .iter()
                .filter(|c| !summaries.iter().any(|a| a.site_codes.contains(c)))
                .cloned()
                .collect()
        };
        Ok(SyncSummary {
            accounts: summaries,
            unknown_sites,
            elapsed: started.elapsed(),
        })
    }

    async fn run_account(
        &self,
        settings: &AccountSettings,
        plan: &SyncPlan,
        shutdown: &CancellationToken,
        progress: &Progress,
    ) -> AccountSummary {
        let started = Instant::now();
        let mut summary = AccountSummary {
            account: settings.name.to_string(),
            ..Default::default()
        };
        let api = &self.settings.api;
        let budget = self.budgets.get_or_create(
            &settings.api_id,
            Allowance {
                requests: api.allowance(),
                window: api.window,
                guard: api.jitter_guard,
            },
        );
        let budget = budget.with_class(self.priority.unwrap_or_default());
        let limited_before = budget.stats().rate_limited;
        let client = match Client::new(
            &settings.name,
            &api.base_url,
            &settings.api_id,
            &settings.api_key,
            api.request_timeout,
            budget.clone(),
        ) {
            Ok(c) => c,
            Err(e) => {
                summary.stopped = Some(Stop::Failed(e.to_string()));
                return summary;
            }
        };
        let export = AccountExport {
            pool: self.pool.clone(),
            account: settings.name.clone(),
            client,
            builds: Arc::new(BuildTimes::default()),
            job_timeout: api.job_timeout,
            max_total: api.max_total_per_window,
            outage: self.settings.database.outage_timeout,
            on_claimed: plan.days.on_claimed(),
            summaries: SummaryPolicy::new(self.settings.transactions.summaries),
            wash_list: crate::export::WashListPolicy::new(self.settings.transactions.wash_list),
            lease: self.settings.sync.lease,
            cancel: shutdown.child_token(),
        };

        let sites = match self.sites(&export, settings, plan).await {
            Ok((sites, missing)) => {
                summary.failures.extend(missing);
                sites
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot list the account's sites; skipping the account");
                summary.stopped = Some(Stop::Failed(e));
                summary.requests = export.client.sent();
                summary.elapsed = started.elapsed();
                return summary;
            }
        };
        summary.site_codes = sites.iter().map(|s| s.code.to_string()).collect();

        let now = Utc::now();
        let outage = self.settings.database.outage_timeout;
        let done = match plan.days.needs_done_from(now) {
            Some(since) => match store::ride_out(outage, "read the days done", || {
                store::done_days(&self.pool, &settings.name, since)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    let reason = format!("cannot read which days are done: {e}");
                    tracing::error!(error = %e, "cannot read which days are done; skipping the account");
                    summary.stopped = Some(Stop::Failed(reason));
                    // The site list was asked for: it counts.
                    summary.requests = export.client.sent();
                    summary.elapsed = started.elapsed();
                    return summary;
                }
            },
            None => HashMap::new(),
        };
        let lookback = self.settings.schedule.lookback;
        let full = self.full_lookback_due(settings, plan, now).await;
        summary.full_lookback = full;
        let none = HashSet::new();
        let mut work = Vec::new();
        for site in sites.iter().filter(|_| self.data.transactions) {
            let selected =
                plan.days
                    .site_days(site.timezone, now, done.get(&site.code).unwrap_or(&none));
            summary.not_complete += selected.not_ended;
            summary.site_days += selected.days.len();
            let days = selected
                .days
                .into_iter()
                .map(|day| {
                    let redo = plan.days.redo(site.timezone, now, day.date, lookback, full);
                    (day, redo)
                })
                .collect();
            work.push((site, days));
        }
        let class = self.priority.unwrap_or_else(|| {
            let days = work
                .iter()
                .flat_map(|(_, days): &(_, Vec<(BusinessDay, Redo)>)| {
                    days.iter().map(|(day, _)| day)
                });
            PriorityClass::of_sync(&plan.days, self.settings.schedule.catch_up_days, now, days)
        });
        budget.set_class(class);
        tracing::info!(priority = %class, "requests at priority {class}");
        let bar = progress.account(
            settings.name.as_str(),
            summary.site_days as u64,
            budget.clone(),
        );
        let summary = Mutex::new(summary);
        // Labour and memberships, at the budget's lowest priority (other
        // accounts on the API id may still be exporting transactions).
        let people = PeopleExport {
            pool: &self.pool,
            account: &settings.name,
            timezone: settings.timezone.unwrap_or(chrono_tz::UTC),
            client: &export.client,
            cancel: &export.cancel,
        };
        let (labour_settings, members_settings) = (&self.settings.labour, &self.settings.members);
        let people_work = async {
            let labour = async {
                if self.data.labour {
                    Some(
                        people
                            .labour(labour_settings, now)
                            .instrument(tracing::info_span!("labour"))
                            .await,
                    )
                } else {
                    None
                }
            };
            let members = async {
                if self.data.members {
                    Some(
                        people
                            .members(members_settings, now)
                            .instrument(tracing::info_span!("members"))
                            .await,
                    )
                } else {
                    None
                }
            };
            tokio::join!(labour, members)
        };
        let left = self.export_sites(&export, work, &summary, &bar).await;
        // The service left days that another live process holds; once its
        // own work is done it comes back and waits for them: done by the
        // other, or taken over when the other's claim runs out (it died).
        if !left.is_empty() && !export.cancel.is_cancelled() {
            tracing::info!(
                site_days = left.len(),
                "waiting for the site-days other processes hold"
            );
            let again = AccountExport {
                on_claimed: OnClaimed::Wait,
                ..export.clone()
            };
            let mut by_site: Vec<(&Site, Vec<(BusinessDay, Redo)>)> = Vec::new();
            for (site, day) in left {
                match by_site.iter_mut().find(|(s, _)| s.code == site.code) {
                    Some((_, days)) => days.push(day),
                    None => by_site.push((site, vec![day])),
                }
            }
            self.export_sites(&again, by_site, &summary, &bar).await;
        }
        // Labour and memberships once the account's transactions are in:
        // any slot they took earlier would be one the transaction pipeline
        // needs a moment later, since it keeps the budget at its ceiling.
        let (labour, members) = people_work.await;
        {
            let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
            s.labour = labour;
            s.members = members;
        }
        bar.finish();
        let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
        if shutdown.is_cancelled() && summary.stopped.is_none() && summary.done < summary.site_days
        {
            summary.stopped = Some(Stop::Interrupted);
        }
        summary.summaries_refused = export.summaries.refused();
        if full && summary.stopped.is_none() {
            let recorded = store::ride_out(outage, "record the full lookback", || {
                store::lookback::record_full_lookback(&self.pool, &settings.name, now)
            })
            .await;
            if let Err(e) = recorded {
                tracing::warn!(error = %e, "cannot record the full lookback; the next run does it again");
            }
        }
        summary.rate_limited = budget.stats().rate_limited - limited_before;
        // Every request sent, also those of failed days and the site list.
        summary.requests = export.client.sent();
        summary.elapsed = started.elapsed();
        summary
    }

    /// Export the given days of each site (a few days of a site at once,
    /// sites up to `max_concurrent_sites`), recording each outcome in
    /// `summary`. Returns the days another live process holds.
    async fn export_sites<'s>(
        &self,
        export: &AccountExport,
        work: Vec<(&'s Site, Vec<(BusinessDay, Redo)>)>,
        summary: &Mutex<AccountSummary>,
        bar: &crate::progress::AccountProgress,
    ) -> Vec<(&'s Site, (BusinessDay, Redo))> {
        let left = Mutex::new(Vec::new());
        join_all(work.into_iter().map(|(site, days)| {
            let (summary, bar, left) = (summary, bar, &left);
            let span = tracing::info_span!("site", site = %site.code);
            async move {
              for turn in days.chunks(self.turn_days.unwrap_or(usize::MAX)) {
                let Ok(_permit) = self.sites_running.acquire().await else { return };
                // A few days at once, so the site always has requests queued
                // while another day waits for its first page's build.
                let mut days = stream::iter(turn.to_vec())
                    .map(|(day, redo)| async move {
                        self.unpaused(&export.cancel).await;
                        if export.cancel.is_cancelled() {
                            return (day, redo, Err(ExportError::Cancelled));
                        }
                        (day, redo, export.export_day(site, day, redo).await)
                    })
                    .buffer_unordered(DAYS_IN_FLIGHT);
                // Drain every started day even after a stop, so each records its end.
                while let Some((day, redo, result)) = days.next().await {
                    let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
                    match result {
                        Ok(report) if report.done_by_other => {
                            tracing::info!(day = %day, "site-day done by another process");
                            s.done += 1;
                            s.done_by_others += 1;
                            bar.day_done(&report);
                        }
                        Ok(report) => {
                            crate::metrics::site_day(export.account.as_str(), report.metric_status(), &report.write);
                            s.done += 1;
                            match report.checked {
                                Some(true) => s.changed += 1,
                                Some(false) => s.unchanged += 1,
                                None => {}
                            }
                            add(&mut s, &report);
                            bar.day_done(&report);
                            tracing::debug!(day = %day, transactions = report.transactions,
                                pages = report.pages, requests = report.requests, inserted = report.write.inserted,
                                updated = report.write.updated, "site-day done");
                        }
                        Err(e) if e.stops_account() => {
                            if s.stopped.is_none() {
                                tracing::error!(day = %day, error = %e, "the API refused the account; stopping its work");
                                s.stopped = Some(Stop::Refused(e.to_string()));
                            }
                            export.cancel.cancel();
                        }
                        Err(ExportError::Cancelled) => {}
                        Err(ExportError::ClaimedElsewhere) => {
                            tracing::info!(day = %day, "another process is exporting this site-day; coming back to it later");
                            left.lock().unwrap_or_else(|e| e.into_inner()).push((site, (day, redo)));
                        }
                        Err(e @ ExportError::LeaseLost) => {
                            tracing::warn!(day = %day, reason = %e, "site-day left to the process that took it over");
                            s.left_to_others += 1;
                            bar.day_failed();
                        }
                        Err(e) => {
                            crate::metrics::site_day(export.account.as_str(), "failed", &Default::default());
                            tracing::error!(day = %day, error = %e, "site-day failed");
                            bar.day_failed();
                            s.failures.push(Failure {
                                site: site.code.to_string(),
                                date: Some(day.date),
                                error: e.to_string(),
                            });
                        }
                    }
                }
              }
            }
            .instrument(span)
        }))
        .await;
        left.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this run exports the account's lookback days whole although
    /// `lookback = "summaries"`: once every `full_lookback_every`, for the
    /// changes a summary cannot show. (Without summaries, a day to check is
    /// exported whole anyway.)
    async fn full_lookback_due(
        &self,
        settings: &AccountSettings,
        plan: &SyncPlan,
        now: DateTime<Utc>,
    ) -> bool {
        let DaySelection::Recent { lookback_days, .. } = plan.days else {
            return false;
        };
        if lookback_days == 0
            || self.settings.schedule.lookback == Lookback::Full
            || !self.settings.transactions.summaries
        {
            return false;
        }
        let every = self.settings.schedule.full_lookback_every;
        match store::lookback::last_full_lookback(&self.pool, &settings.name).await {
            Ok(Some(last)) => (now - last).to_std().unwrap_or_default() >= every,
            // Never: the lookback days of a new installation were exported
            // just now or are about to be; start the period here.
            Ok(None) => {
                if let Err(e) =
                    store::lookback::record_full_lookback(&self.pool, &settings.name, now).await
                {
                    tracing::warn!(error = %e, "cannot record the start of the full-lookback period");
                }
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read when the lookback days were last exported whole; checking them by their summaries");
                false
            }
        }
    }
}

fn add(summary: &mut AccountSummary, report: &DayReport) {
    summary.disagreements += report.disagreements;
    summary.transactions += report.transactions;
    summary.pages += report.pages;
    summary.inserted += report.write.inserted;
    summary.updated += report.write.updated;
    summary.rejected += report.write.rejected;
}
