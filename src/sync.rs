//! A sync run: for every selected account (in parallel), list its sites, then
//! run one worker per site over the requested business days. Workers of one
//! API id share its budget; a refused account stops alone.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::model::SiteEntry;
use crate::api::policy::with_policy;
use crate::api::Client;
use crate::budget::{Allowance, Budgets};
use crate::configuration::{AccountSettings, Lookback, Settings};
use crate::domain::days::{DaySelection, OnClaimed, Redo};
use crate::domain::states::RunOutcome;
use crate::domain::{parse_timezone, BusinessDay, Site, SiteCode};
use crate::export::{AccountExport, BuildTimes, DayReport, ExportError, SummaryPolicy};
use crate::people::{DataKinds, PeopleExport, PeopleReport};
use crate::progress::Progress;
use crate::store;

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
const DAYS_IN_FLIGHT: usize = 6;

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

/// One site-day that did not complete.
#[derive(Debug, Clone)]
pub struct Failure {
    pub site: String,
    pub date: Option<NaiveDate>,
    pub error: String,
}

/// What a sync did for one account.
#[derive(Debug, Clone, Default)]
pub struct AccountSummary {
    pub account: String,
    pub site_days: usize,
    pub done: usize,
    /// Days in the range that have not ended yet in the site's zone.
    pub not_complete: usize,
    pub transactions: u64,
    pub inserted: u64,
    pub updated: u64,
    pub pages: u64,
    pub requests: u64,
    pub rate_limited: u64,
    /// Records quarantined in `sonnys.rejected_records`.
    pub rejected: u64,
    /// Site-days another process exported while this one waited (counted in `done`).
    pub done_by_others: usize,
    /// Site-days left to another process that holds them (the service).
    pub left_to_others: usize,
    /// Lookback days compared with their summaries and found unchanged
    /// (counted in `done`, not exported again).
    pub unchanged: usize,
    /// Lookback days whose summaries showed a change: exported again.
    pub changed: usize,
    /// Whether this run exported the lookback days whole
    /// (`schedule.full_lookback_every`, or `lookback = "full"`).
    pub full_lookback: bool,
    /// Membership flags or statuses where the export and the summaries
    /// disagreed (the summaries' values were stored).
    pub disagreements: u64,
    /// The API refused the account's summaries (403): classified by the
    /// v1 flags.
    pub summaries_refused: bool,
    /// The reason the whole account stopped, if it did.
    pub stopped: Option<Stop>,
    /// Codes of the sites exported.
    pub site_codes: Vec<String>,
    /// The labour export, when it ran.
    pub labour: Option<PeopleReport>,
    /// The membership export, when it ran.
    pub members: Option<PeopleReport>,
    pub failures: Vec<Failure>,
    pub elapsed: Duration,
}

impl AccountSummary {
    /// How the account's part of the run ended.
    pub fn outcome(&self) -> RunOutcome {
        if self.ok() {
            RunOutcome::Ok
        } else if self.failures.is_empty()
            && self.stopped == Some(Stop::Interrupted)
            && [&self.labour, &self.members]
                .iter()
                .all(|r| r.as_ref().map_or(true, |r| r.error.is_none()))
        {
            RunOutcome::Interrupted
        } else {
            RunOutcome::Failed
        }
    }

    pub fn ok(&self) -> bool {
        self.stopped.is_none()
            && self.failures.is_empty()
            && [&self.labour, &self.members]
                .iter()
                .all(|r| r.as_ref().map_or(true, |r| r.error.is_none()))
    }

    /// Requests of the transaction export alone.
    pub fn transaction_requests(&self) -> u64 {
        let people: u64 = [&self.labour, &self.members]
            .iter()
            .filter_map(|r| r.as_ref().map(|r| r.requests))
            .sum();
        self.requests.saturating_sub(people)
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncSummary {
    pub accounts: Vec<AccountSummary>,
    /// `--site` codes that no selected account reports.
    pub unknown_sites: Vec<String>,
    pub elapsed: Duration,
}

impl SyncSummary {
    /// Whether every site-day succeeded.
    pub fn ok(&self) -> bool {
        self.unknown_sites.is_empty() && self.accounts.iter().all(AccountSummary::ok)
    }

    /// How the run ended: the worst of its accounts' outcomes.
    pub fn outcome(&self) -> RunOutcome {
        let worst = self
            .accounts
            .iter()
            .map(AccountSummary::outcome)
            .max()
            .unwrap_or(RunOutcome::Ok);
        if self.unknown_sites.is_empty() {
            worst
        } else {
            RunOutcome::Failed
        }
    }
}

impl std::fmt::Display for SyncSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for a in &self.accounts {
            let state = a.outcome().headline();
            writeln!(
                f,
                "{}: {state} — {} of {} site-days done across {} sites, {} transactions ({} new, {} changed), {} pages, {} requests ({:.2}/page), {} × 429, {:.1}s",
                a.account,
                a.done,
                a.site_days,
                a.site_codes.len(),
                a.transactions,
                a.inserted,
                a.updated,
                a.pages,
                a.transaction_requests(),
                if a.pages == 0 { 0.0 } else { a.transaction_requests() as f64 / a.pages as f64 },
                a.rate_limited,
                a.elapsed.as_secs_f64(),
            )?;
            if a.not_complete > 0 {
                writeln!(
                    f,
                    "  {} site-days skipped: the day has not ended yet in the site's time zone",
                    a.not_complete
                )?;
            }
            if a.unchanged + a.changed > 0 {
                writeln!(
                    f,
                    "  lookback: {} site-days checked by their summaries, {} unchanged (not exported again), {} changed (exported again)",
                    a.unchanged + a.changed,
                    a.unchanged,
                    a.changed
                )?;
            }
            if a.full_lookback {
                writeln!(
                    f,
                    "  lookback: the lookback days were exported whole (schedule.full_lookback_every)"
                )?;
            }
            if a.summaries_refused {
                writeln!(
                    f,
                    "  summaries: refused by the API (403); membership figures fall back to the export's v1 flags (docs/schema.md)"
                )?;
            }
            if a.done_by_others > 0 {
                writeln!(
                    f,
                    "  {} of them done by another process while this one waited",
                    a.done_by_others
                )?;
            }
            if a.left_to_others > 0 {
                writeln!(
                    f,
                    "  {} site-days left to another process that is exporting them",
                    a.left_to_others
                )?;
            }
            if a.rejected > 0 {
                writeln!(
                    f,
                    "  {} records quarantined in sonnys.rejected_records (see their reasons there); the rest of their pages is stored",
                    a.rejected
                )?;
            }
            if let Some(l) = &a.labour {
                writeln!(
                    f,
                    "  labour{}: {} employees, {} clock entries received ({} new, {} changed, {} removed), {} requests{}",
                    if l.sweep { " (weekly sweep of every employee)" } else { "" },
                    l.listed,
                    l.records,
                    l.written.inserted,
                    l.written.updated,
                    l.written.deleted,
                    l.requests,
                    l.error.as_deref().map(|e| format!(" — FAILED: {e}")).unwrap_or_default()
                )?;
                if l.written.quarantined > 0 {
                    writeln!(
                        f,
                        "  {} clock entries without a clock-in quarantined in sonnys.rejected_records; the employees' other entries are stored",
                        l.written.quarantined
                    )?;
                }
            }
            if let Some(m) = &a.members {
                writeln!(
                    f,
                    "  members: {} accounts listed, {} status changes ({} rows new, {} changed), {} requests{}",
                    m.listed,
                    m.records,
                    m.written.inserted,
                    m.written.updated,
                    m.requests,
                    m.error.as_deref().map(|e| format!(" — FAILED: {e}")).unwrap_or_default()
                )?;
            }
            if let Some(reason) = &a.stopped {
                writeln!(f, "  stopped: {reason}")?;
            }
            for failure in &a.failures {
                match failure.date {
                    Some(date) => writeln!(f, "  {} {date}: {}", failure.site, failure.error)?,
                    None => writeln!(f, "  {}: {}", failure.site, failure.error)?,
                }
            }
        }
        for code in &self.unknown_sites {
            writeln!(f, "site {code}: no selected account reports this site")?;
        }
        Ok(())
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
        }
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
                let Ok(_permit) = self.sites_running.acquire().await else { return };
                // A few days at once, so the site always has requests queued
                // while another day waits for its first page's build.
                let mut days = stream::iter(days)
                    .map(|(day, redo)| async move {
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

    /// The account's sites from /site/list, narrowed to the configured and
    /// requested codes, and stored in `sonnys.sites`. Requested codes the API
    /// does not know come back as failures.
    async fn sites(
        &self,
        export: &AccountExport,
        settings: &AccountSettings,
        plan: &SyncPlan,
    ) -> Result<(Vec<Site>, Vec<Failure>), String> {
        let requests = AtomicU64::new(0);
        let what = format!("site list of {}", settings.name);
        let entries = with_policy(&export.cancel, &what, &requests, || {
            export.client.list_sites()
        })
        .await
        .map_err(|e| e.to_string())?;
        let all: Vec<Site> = entries
            .into_iter()
            .filter_map(|e| resolve_site(e, settings))
            .collect();
        // One export per code: a code the API lists twice (two site ids)
        // would otherwise be exported twice over the same rows.
        let mut seen = HashSet::new();
        let exported: Vec<&Site> = all.iter().filter(|s| seen.insert(s.code.clone())).collect();
        if exported.len() < all.len() {
            tracing::warn!(
                listed = all.len(),
                codes = exported.len(),
                "/site/list reports some site codes more than once; each code is exported once"
            );
        }
        store::ride_out(
            self.settings.database.outage_timeout,
            "store the site list",
            || store::upsert_sites(&self.pool, &settings.name, &all),
        )
        .await
        .map_err(|e| format!("cannot store the site list: {e}"))?;

        let mut wanted: Option<Vec<SiteCode>> = settings.sites.clone();
        if !plan.sites.is_empty() {
            let requested: Vec<SiteCode> = plan
                .sites
                .iter()
                .filter_map(|c| SiteCode::parse(c))
                .collect();
            wanted = Some(match wanted {
                // --site narrows the configured list; it never widens it.
                Some(configured) => requested
                    .into_iter()
                    .filter(|c| configured.contains(c))
                    .collect(),
                None => requested
                    .into_iter()
                    .filter(|c| all.iter().any(|s| &s.code == c))
                    .collect(),
            });
        }
        let Some(mut wanted) = wanted else {
            return Ok((exported.into_iter().cloned().collect(), Vec::new()));
        };
        // A code listed twice is exported once.
        wanted.sort();
        wanted.dedup();
        let missing = wanted
            .iter()
            .filter(|c| !all.iter().any(|s| &s.code == *c))
            .map(|c| Failure {
                site: c.to_string(),
                date: None,
                error: format!(
                    "site {c} is configured for account {} but /site/list does not report it",
                    settings.name
                ),
            })
            .collect();
        let sites = exported
            .into_iter()
            .filter(|s| wanted.contains(&s.code))
            .cloned()
            .collect();
        Ok((sites, missing))
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

/// A site from /site/list with its business-day zone: its own, else the
/// account's, else UTC. Virtual sites without a code cannot be exported alone.
fn resolve_site(entry: SiteEntry, account: &AccountSettings) -> Option<Site> {
    let Some(code) = entry.code.as_deref().and_then(SiteCode::parse) else {
        tracing::info!(
            site_id = entry.site_id,
            "skipping a site without a code (a virtual site)"
        );
        return None;
    };
    let fallback = account.timezone.unwrap_or(chrono_tz::UTC);
    let timezone = match entry.timezone.as_deref().map(parse_timezone) {
        Some(Ok(tz)) => tz,
        Some(Err(problem)) => {
            tracing::warn!(site = %code, %problem, fallback = fallback.name(), "the site's time zone is unknown; using the account's");
            fallback
        }
        None => fallback,
    };
    Some(Site {
        site_id: entry.site_id,
        name: entry.name.unwrap_or_default(),
        reported_timezone: entry.timezone,
        code,
        timezone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_run_with_failed_days_is_failed_in_the_summary_and_the_metrics_alike() {
        let stopped = |failures: usize| AccountSummary {
            account: "northside".into(),
            stopped: Some(Stop::Interrupted),
            failures: (0..failures)
                .map(|_| Failure {
                    site: "N01".into(),
                    date: None,
                    error: "HTTP 422".into(),
                })
                .collect(),
            ..AccountSummary::default()
        };
        let run = |accounts| SyncSummary {
            accounts,
            ..SyncSummary::default()
        };
        let interrupted = run(vec![stopped(0)]);
        assert_eq!(interrupted.outcome(), RunOutcome::Interrupted);
        assert!(interrupted.to_string().contains("northside: interrupted"));
        let failed = run(vec![stopped(1), AccountSummary::default()]);
        assert_eq!(failed.outcome(), RunOutcome::Failed);
        assert_eq!(failed.outcome().as_str(), "failed");
        assert!(failed.to_string().contains("northside: FAILED"));
        assert_eq!(
            run(vec![AccountSummary::default()]).outcome(),
            RunOutcome::Ok
        );
    }
}
