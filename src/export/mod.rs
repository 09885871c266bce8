//! The export of one site's business day: for each export window, submit page
//! 1, learn `total`, then keep the further pages' jobs building ahead of time
//! and poll each when it is probably ready, so that close to two requests are
//! spent per page. Each page is stored as soon as it arrives, in its own
//! database transaction; nothing collects a whole day.
//!
//! With summaries on (the default), the day's summaries are read first
//! (`summaries`): they fill each record's membership flags and status, which
//! the live export leaves out; the day is `done` only when the export and
//! the summaries agree on its transaction ids; and a lookback day that is
//! already `done` is first compared with them, and exported again only
//! when they show a change. With `[transactions] wash_list = true`, the
//! day's wash list is read before its pages too (`washes`).

mod summaries;
mod washes;

pub use summaries::SummaryPolicy;
pub use washes::WashListPolicy;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use futures::stream::{self, StreamExt, TryStreamExt};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::model::{JobData, JobStatus, Rejected, Transaction};
use crate::api::policy::{with_policy, CallError};
use crate::api::summary::Summary;
use crate::api::{ApiError, Client, Disposition, JobHash};
use crate::budget::Priority;
use crate::domain::days::{OnClaimed, Redo};
use crate::domain::states::DayStatus;
use crate::domain::{AccountName, BusinessDay, ExportWindow, Site, SiteCode};
use crate::store::{self, PageWrite};

/// Records per page, fixed by the API.
const PAGE_SIZE: u64 = crate::api::PAGE_SIZE as u64;
/// Page jobs a site keeps building ahead. Far below what could expire: at
/// the API's ceiling a page is read within seconds of its submission.
const LOOKAHEAD: usize = 6;
/// Times one page's job is submitted again after `fail` or an expired hash.
const MAX_RESUBMITS: u32 = 3;
/// Times a page that arrived short (fewer records than its place implies) is
/// asked for again before the day fails.
const MAX_SHORT_PAGES: u32 = 5;

/// Why a site-day could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("page {page} of window {window}: the export job did not finish within {timeout:?}")]
    JobTimeout {
        page: u32,
        window: ExportWindow,
        timeout: Duration,
    },
    #[error("page {page} of window {window}: the job failed {times} times")]
    JobFailed {
        page: u32,
        window: ExportWindow,
        times: u32,
    },
    #[error("window {window}: the API reports {total} transactions, more than api.max_total_per_window = {limit}; refusing to page through it")]
    AbsurdTotal {
        window: ExportWindow,
        total: u64,
        limit: u64,
    },
    #[error("page {page} of window {window}: {got} of the {due} records due arrived, {times} times; the day is not marked done")]
    ShortPage {
        page: u32,
        window: ExportWindow,
        got: u64,
        due: u64,
        times: u32,
    },
    #[error("window {window}: {received} records arrived of the {total} the API reported; the day is not marked done")]
    Incomplete {
        window: ExportWindow,
        received: u64,
        total: u64,
    },
    #[error(
        "the export and the summaries disagree on the day's transactions, read twice: {}",
        mismatch(only_export, only_summaries)
    )]
    SummaryMismatch {
        /// Ids the export sent that no summary lists.
        only_export: Vec<String>,
        /// Ids a summary lists that the export did not send.
        only_summaries: Vec<String>,
    },
    #[error("interrupted by shutdown; redone at the next run")]
    Cancelled,
    /// Another process holds a live claim on the day (the service skips it).
    #[error("another process is exporting this day")]
    ClaimedElsewhere,
    /// Our claim ran out and another process took the day over.
    #[error("another process took this day over after our claim ran out; it finishes the day")]
    LeaseLost,
}

impl From<CallError> for ExportError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Api(e) => ExportError::Api(e),
            CallError::Cancelled => ExportError::Cancelled,
        }
    }
}

/// Up to ten ids of each side of a disagreement, for an error message.
fn mismatch(only_export: &[String], only_summaries: &[String]) -> String {
    let list = |ids: &[String]| {
        let mut shown = ids.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
        if ids.len() > 10 {
            shown.push_str(&format!(" and {} more", ids.len() - 10));
        }
        shown
    };
    let mut parts = Vec::new();
    if !only_export.is_empty() {
        parts.push(format!("exported but in no summary: {}", list(only_export)));
    }
    if !only_summaries.is_empty() {
        parts.push(format!(
            "in the summaries but not exported: {}",
            list(only_summaries)
        ));
    }
    parts.join("; ")
}

impl ExportError {
    /// Whether the whole account must stop (its credentials were refused).
    pub fn stops_account(&self) -> bool {
        matches!(self, ExportError::Api(e) if e.disposition() == Disposition::StopAccount)
    }
}

/// What a finished site-day did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DayReport {
    pub transactions: u64,
    pub pages: u64,
    pub requests: u64,
    pub write: PageWrite,
    /// Another process exported the day while this one waited for it.
    pub done_by_other: bool,
    /// Set when a lookback compared the `done` day with its summaries:
    /// `true` when they showed a change (the day was exported again).
    pub checked: Option<bool>,
    /// Record fields where the export and the summary disagreed (the
    /// summary won).
    pub disagreements: u64,
    /// Stored transactions the source no longer has, removed.
    pub vanished: u64,
}

impl DayReport {
    /// The `status` label of `sonnys_etl_site_days_total` for a finished day.
    pub fn metric_status(&self) -> &'static str {
        match self.checked {
            Some(false) => "unchanged",
            Some(true) => "changed",
            None => "done",
        }
    }
}

/// Records page `page` (from 1) must hold when the window has `total`:
/// 100, or the remainder on the last page, or none past it.
pub fn due_on_page(total: u64, page: u32) -> u64 {
    total
        .saturating_sub(u64::from(page.saturating_sub(1)) * PAGE_SIZE)
        .min(PAGE_SIZE)
}

/// What page `page` tells of its window's size when it holds `got` records:
/// a lower bound of the window's records, and its exact end when the page
/// has no `total` (the live service sometimes sends `null`) and is short.
/// A full page without a total implies at least one more page.
fn implied_size(total: Option<u64>, page: u32, got: u64) -> (u64, Option<u64>) {
    let before = u64::from(page.saturating_sub(1)) * PAGE_SIZE;
    match total {
        Some(total) => (total, None),
        None if got >= PAGE_SIZE => (before + got + 1, None),
        None => (before + got, Some(before + got)),
    }
}

/// The first guess of a job's build time, before any job was seen.
const FIRST_BUILD_ESTIMATE: Duration = Duration::from_secs(1);
/// After a job that passed at its first poll, the estimate shrinks by this
/// factor while other work waits for the budget…
const SHRINK_BUSY: f64 = 0.99;
/// …and by this one while the budget is idle (a wasted poll costs nothing).
const SHRINK_IDLE: f64 = 0.98;
/// The estimate never drops below this.
const MIN_ESTIMATE: Duration = Duration::from_millis(20);
/// After a job that answered `working`, the estimate keeps this share of
/// itself…
const KEEP_ON_SETTLE: f64 = 0.95;
/// …and takes this share of the time the job took to pass: a twentieth of
/// the way towards it, with a 10 % margin (0.05 × 1.1).
const LEARN_ON_SETTLE: f64 = 0.055;
/// The estimate never grows past this.
const MAX_ESTIMATE: Duration = Duration::from_secs(120);
/// The first poll of a job still working comes after this share of the
/// estimate (at least [`MIN_BACKOFF`]), each next one ×[`BACKOFF_GROWTH`],
/// at most [`MAX_BACKOFF`] apart.
const BACKOFF_SHARE: f64 = 0.25;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const BACKOFF_GROWTH: f64 = 1.5;
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Build times seen for one account, to time the first poll of each job.
///
/// A poll that finds `working` is a wasted request; a late poll only costs
/// latency, which pipelining hides. So the estimate drifts down slowly after
/// a job that passed at its first poll ([`SHRINK_BUSY`], [`SHRINK_IDLE`]),
/// and after one that was still working it moves a twentieth of the way
/// towards the time that job actually took to pass, with a margin
/// ([`LEARN_ON_SETTLE`]): jobs that linger after their build cannot ratchet
/// it up.
#[derive(Debug)]
pub struct BuildTimes {
    estimate: Mutex<Duration>,
}

impl Default for BuildTimes {
    fn default() -> Self {
        Self::new(FIRST_BUILD_ESTIMATE)
    }
}

impl BuildTimes {
    pub fn new(initial: Duration) -> Self {
        Self {
            estimate: Mutex::new(initial),
        }
    }

    pub fn estimate(&self) -> Duration {
        *self.estimate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A job passed at its first poll: the estimate may be longer than
    /// needed; probe a little shorter, more boldly while the budget is idle
    /// (a poll that finds the job working then costs no other work a slot).
    fn hit(&self, idle: bool) {
        let mut e = self.estimate.lock().unwrap_or_else(|e| e.into_inner());
        let factor = if idle { SHRINK_IDLE } else { SHRINK_BUSY };
        *e = e.mul_f64(factor).max(MIN_ESTIMATE);
    }

    /// A job that answered `working` first passed `elapsed` after its
    /// submit: move the estimate a twentieth of the way towards that, with
    /// a margin. Learning from the pass, not from each `working`, keeps jobs
    /// that linger after their build (which no estimate can catch) from
    /// ratcheting the estimate up without bound.
    fn settled(&self, elapsed: Duration) {
        let mut e = self.estimate.lock().unwrap_or_else(|e| e.into_inner());
        *e = (e.mul_f64(KEEP_ON_SETTLE) + elapsed.mul_f64(LEARN_ON_SETTLE)).min(MAX_ESTIMATE);
    }

    /// Delay before the `n`-th poll (from 1) of a job that was still working.
    fn backoff(&self, n: u32) -> Duration {
        let base = self.estimate().mul_f64(BACKOFF_SHARE).max(MIN_BACKOFF);
        base.mul_f64(BACKOFF_GROWTH.powi(n as i32 - 1))
            .min(MAX_BACKOFF)
    }
}

/// How often a `sync` looks again at a day another process is exporting.
const CLAIM_POLL: Duration = Duration::from_secs(2);
/// Added to a claim's remaining time before trying to take it over.
const CLAIM_SLACK: Duration = Duration::from_millis(20);

/// A page's job, submitted.
struct Submitted {
    hash: JobHash,
    at: Instant,
}

/// Everything one account's exports share.
#[derive(Clone)]
pub struct AccountExport {
    pub pool: PgPool,
    pub account: AccountName,
    pub client: Client,
    pub builds: Arc<BuildTimes>,
    pub job_timeout: Duration,
    /// A window reporting more transactions than this fails its day.
    pub max_total: u64,
    /// How long database outages are waited out before a day fails.
    pub outage: Duration,
    /// What to do with a day another process is exporting.
    pub on_claimed: OnClaimed,
    /// How long this process's claims hold without renewal.
    pub lease: Duration,
    /// Whether the days' summaries are read, and whether the account's
    /// were refused.
    pub summaries: SummaryPolicy,
    /// Whether the days' wash lists are read (`washes`).
    pub wash_list: WashListPolicy,
    /// Cancelled when the account must stop or the program shuts down.
    pub cancel: CancellationToken,
}

/// The export of one site-day in progress.
struct DayExport<'a> {
    account: &'a AccountExport,
    site: &'a Site,
    day: BusinessDay,
    claim: store::Claim,
    lease: store::Lease,
    requests: AtomicU64,
    /// What the stored pages did; `requests` is filled in at the end.
    report: Mutex<DayReport>,
    /// The day's summaries by id, when they are read.
    summaries: Mutex<Option<HashMap<String, Summary>>>,
    /// Ids of every record the export received (stored or quarantined).
    seen: Mutex<HashSet<String>>,
    /// Quarantined records without a readable id.
    anonymous: AtomicU64,
}

/// How a day's export ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayEnd {
    Exported,
    /// A lookback found the day unchanged: nothing exported.
    Unchanged,
}

impl AccountExport {
    /// Export one site-day completely and record it in `sonnys.sync_days`:
    /// `done` only when every page of every window is committed (and, with
    /// summaries, the export and the summaries agree on the day's ids).
    /// `redo` says what to do when the day is already `done`.
    pub async fn export_day(
        &self,
        site: &Site,
        day: BusinessDay,
        redo: Redo,
    ) -> Result<DayReport, ExportError> {
        let (pool, account, code, date) = (&self.pool, &self.account, &site.code, day.date);
        let ours = store::Lease::of_this_process(self.lease);
        let claim = loop {
            let claimed = store::ride_out(self.outage, "claim the day", || {
                store::claim(pool, account, code, date, ours, redo != Redo::No)
            })
            .await?;
            if let Some(claim) = claimed {
                break claim;
            }
            // Not claimed: held by a live process, or `done` (a day chosen
            // as missing that another process finished since).
            let Some(left) = self.claim_left(code, date).await? else {
                return Ok(DayReport {
                    done_by_other: true,
                    ..DayReport::default()
                });
            };
            if self.on_claimed == OnClaimed::Skip {
                return Err(ExportError::ClaimedElsewhere);
            }
            tracing::info!(day = %date, claim_left_ms = left.as_millis() as u64, "another process is exporting this day; waiting for it");
            // Look again when the other's claim runs out (a dead process's
            // days are taken over at once), or sooner to see it done.
            tokio::select! {
                _ = tokio::time::sleep(CLAIM_POLL.min(left + CLAIM_SLACK)) => {}
                _ = self.cancel.cancelled() => return Err(ExportError::Cancelled),
            }
            if self.claim_left(code, date).await?.is_none() {
                return Ok(DayReport {
                    done_by_other: true,
                    ..DayReport::default()
                });
            }
        };
        let lease = claim.lease;
        let run = DayExport {
            account: self,
            site,
            day,
            claim,
            lease,
            requests: AtomicU64::new(0),
            report: Mutex::new(DayReport::default()),
            summaries: Mutex::new(None),
            seen: Mutex::new(HashSet::new()),
            anonymous: AtomicU64::new(0),
        };
        let work = run
            .run(redo)
            .instrument(tracing::info_span!("day", day = %day.date));
        // The heartbeat tells other processes and `sync_health` that this
        // `running` row is alive, and renews the claim. It runs beside the
        // work, never instead of it: a renewal waits for the row lock of a
        // page transaction in flight, which only the work can commit.
        let renew = async {
            let mut beat = tokio::time::interval(lease.renew_every());
            beat.tick().await;
            loop {
                beat.tick().await;
                match store::heartbeat(pool, account, code, date, lease).await {
                    Ok(true) => {}
                    // Fenced off: stop here, the new owner finishes the day.
                    Ok(false) => return ExportError::LeaseLost,
                    Err(e) => tracing::debug!(error = %e, "cannot write the heartbeat"),
                }
            }
        };
        let result = tokio::select! {
            result = work => result,
            lost = renew => Err(lost),
        };
        let requests = run.requests.load(Ordering::Relaxed);
        let error = result.as_ref().err().map(|e| e.to_string());
        let ending = match (&result, &error) {
            (Ok(DayEnd::Unchanged), _) => store::Ending::Unchanged,
            (Ok(DayEnd::Exported), _) => store::Ending::Done,
            (Err(_), error) => store::Ending::Failed(error.as_deref().unwrap_or_default()),
        };
        if claim.done_before.is_some() && matches!(ending, store::Ending::Failed(_)) {
            tracing::info!(day = %date, "the day stays done: its rows are whole, and the next run looks at it again");
        }
        // Written once the database is back, so no day stays `running`.
        store::ride_out(self.outage, "finish the day", || {
            store::end_day(pool, account, code, date, requests, ending, &claim)
        })
        .await?;
        result?;
        let report = *run.report.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(changed) = report.checked {
            let age = (BusinessDay::of(chrono::Utc::now(), site.timezone).date - date).num_days();
            let record = store::ride_out(self.outage, "record the lookback check", || {
                store::lookback::record_check(
                    pool, account, code, date, age as i32, changed, requests,
                )
            })
            .await;
            if let Err(e) = record {
                tracing::warn!(day = %date, error = %e, "cannot record the lookback check");
            }
        }
        Ok(DayReport { requests, ..report })
    }
}

impl AccountExport {
    /// How long another process's claim on a site-day still holds; `None`
    /// when that process has finished the day.
    async fn claim_left(
        &self,
        code: &SiteCode,
        date: NaiveDate,
    ) -> Result<Option<Duration>, ExportError> {
        let state = store::ride_out(self.outage, "read the day's status", || {
            store::claim_state(&self.pool, &self.account, code, date)
        })
        .await?;
        Ok(match state {
            Some((DayStatus::Done, _)) => None,
            Some((_, left)) => Some(left),
            None => Some(Duration::ZERO),
        })
    }
}

impl DayExport<'_> {
    async fn run(&self, redo: Redo) -> Result<DayEnd, ExportError> {
        let windows = self.day.windows(chrono::Utc::now());
        let mut summaries = self.read_summaries(&windows).await?;
        if let (Some(book), Redo::Check, Some(_)) = (&summaries, redo, self.claim.done_before) {
            let changed = self.differs_from_stored(book).await?;
            self.report
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .checked = Some(changed);
            if !changed {
                tracing::debug!("the day's summaries match what is stored; not exported again");
                return Ok(DayEnd::Unchanged);
            }
            tracing::info!("the day's summaries show a change; exporting it again");
        }
        self.wash_list(&windows).await?;
        // Read twice at most: an id on one side only may be a transaction
        // that arrived between the two reads.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let with_summaries = summaries.is_some();
            *self.summaries.lock().unwrap_or_else(|e| e.into_inner()) = summaries.take();
            self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
            self.anonymous.store(0, Ordering::Relaxed);
            for window in &windows {
                self.export_window(*window).await?;
            }
            if !with_summaries {
                return Ok(DayEnd::Exported);
            }
            match self.agreed_ids() {
                Ok(Some(ids)) => {
                    self.remove_vanished(&ids).await?;
                    return Ok(DayEnd::Exported);
                }
                Ok(None) => return Ok(DayEnd::Exported),
                Err(e) if attempt == 1 => {
                    tracing::warn!(error = %e, "the export and the summaries disagree; reading both again");
                    summaries = self.read_summaries(&windows).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn export_window(&self, window: ExportWindow) -> Result<(), ExportError> {
        // Page 2 is submitted with page 1, before `total` is known: most
        // windows have more than 100 transactions, and this takes a whole
        // build off the day's critical path. A smaller window wastes that
        // one submit (it is never polled).
        let (first, second) = tokio::join!(
            self.fetch_page(window, 1, Priority::Open, None)
                .instrument(tracing::info_span!("page", page = 1)),
            self.submit(window, 2, Priority::Open)
        );
        let first = first?;
        let ahead = Mutex::new(second.ok());
        // What the pages say of the window's size: the largest total (or
        // lower bound, where a page has no total), and the exact end where
        // a page without a total was short.
        let (mut total, mut end) = implied_size(first.total, 1, first.records.len() as u64);
        let mut reported = first.total.unwrap_or(0);
        let received = AtomicU64::new(0);
        self.store(window, 1, first, &received)
            .instrument(tracing::info_span!("page", page = 1))
            .await?;
        let mut done = 1u64;
        // `total` may grow between builds (late transactions): keep going
        // until every page the largest total implies is stored.
        loop {
            let target = end.unwrap_or(total);
            let pages = target.div_ceil(PAGE_SIZE);
            if done >= pages {
                // Every page held what its place implies, so this holds
                // too; checked once more, as it is the promise of `done`.
                let received = received.load(Ordering::Relaxed);
                let due = target.max(reported);
                if received < due {
                    return Err(ExportError::Incomplete {
                        window,
                        received,
                        total: due,
                    });
                }
                return Ok(());
            }
            let seen = AtomicU64::new(total);
            let seen_reported = AtomicU64::new(reported);
            let ends = Mutex::new(end);
            stream::iter(done + 1..=pages)
                .map(|page| {
                    let (seen, seen_reported, ends, ahead, received) =
                        (&seen, &seen_reported, &ends, &ahead, &received);
                    let span = tracing::info_span!("page", page);
                    async move {
                        let page = page as u32;
                        let job = if page == 2 {
                            ahead.lock().unwrap_or_else(|e| e.into_inner()).take()
                        } else {
                            None
                        };
                        let data = self
                            .fetch_page(window, page, Priority::Continue, job)
                            .await?;
                        let (lower, exact) =
                            implied_size(data.total, page, data.records.len() as u64);
                        seen.fetch_max(lower, Ordering::Relaxed);
                        seen_reported.fetch_max(data.total.unwrap_or(0), Ordering::Relaxed);
                        if let Some(exact) = exact {
                            let mut ends = ends.lock().unwrap_or_else(|e| e.into_inner());
                            *ends = Some(ends.map_or(exact, |e: u64| e.min(exact)));
                        }
                        self.store(window, page, data, received).await
                    }
                    .instrument(span)
                })
                .buffer_unordered(LOOKAHEAD)
                .try_collect::<()>()
                .await?;
            done = pages;
            end = ends.into_inner().unwrap_or_else(|e| e.into_inner());
            // A larger total reported by a later page: the day grew.
            let grown = seen_reported.load(Ordering::Relaxed);
            if reported > 0 && grown > reported {
                tracing::warn!(
                    total = reported,
                    grown,
                    "the day grew during its export; fetching the new pages"
                );
            }
            reported = grown;
            total = seen.load(Ordering::Relaxed);
        }
    }

    /// Store one page: its transactions, and in quarantine the records that
    /// cannot be stored or lie outside the window. `received` counts every
    /// record that arrived, for the window's completeness check.
    async fn store(
        &self,
        window: ExportWindow,
        page: u32,
        data: JobData,
        received: &AtomicU64,
    ) -> Result<(), ExportError> {
        received.fetch_add(data.records.len() as u64, Ordering::Relaxed);
        let mut records = Vec::with_capacity(data.records.len());
        let mut rejected = Vec::new();
        let mut disagreements = 0u64;
        for raw in data.records {
            match Transaction::from_raw(raw) {
                Ok(mut t) if window.contains(t.completed_at) => {
                    let summaries = self.summaries.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(summary) = summaries.as_ref().and_then(|s| s.get(&t.id)) {
                        disagreements += u64::from(summary.apply_to(&mut t));
                    }
                    records.push(t)
                }
                Ok(t) => rejected.push(Rejected {
                    reason: format!(
                        "transaction {}: completeDate {} lies outside the requested window {window}",
                        t.id,
                        t.completed_at.format("%Y-%m-%dT%H:%M:%SZ")
                    ),
                    transaction_id: Some(t.id),
                    raw: t.raw,
                }),
                Err(r) => rejected.push(r),
            }
        }
        for r in &rejected {
            tracing::warn!(page, reason = %r.reason, "record quarantined in sonnys.rejected_records");
        }
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.extend(records.iter().map(|t| t.id.clone()));
            seen.extend(rejected.iter().filter_map(|r| r.transaction_id.clone()));
            let anonymous = rejected
                .iter()
                .filter(|r| r.transaction_id.is_none())
                .count();
            self.anonymous
                .fetch_add(anonymous as u64, Ordering::Relaxed);
        }
        if disagreements > 0 {
            tracing::info!(page, fields = disagreements, "the export's membership flags or status disagree with the summaries; the summaries win");
            crate::metrics::summary_disagreements(self.account.account.as_str(), disagreements);
        }
        let a = self.account;
        let write = store::ride_out(a.outage, "store a page", || {
            store::store_page(
                &a.pool,
                store::SiteDay {
                    account: &a.account,
                    site: &self.site.code,
                    timezone: self.site.timezone,
                    date: self.day.date,
                },
                &records,
                &rejected,
                self.lease,
            )
        })
        .await?
        .ok_or(ExportError::LeaseLost)?;
        tracing::debug!(
            records = records.len(),
            rejected = rejected.len(),
            inserted = write.inserted,
            updated = write.updated,
            "page stored"
        );
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.transactions += records.len() as u64;
        report.pages += 1;
        report.write.inserted += write.inserted;
        report.write.updated += write.updated;
        report.write.unchanged += write.unchanged;
        report.write.rejected += write.rejected;
        report.disagreements += disagreements;
        Ok(())
    }

    /// Submit one page's job.
    async fn submit(
        &self,
        window: ExportWindow,
        page: u32,
        priority: Priority,
    ) -> Result<Submitted, ExportError> {
        let client = &self.account.client;
        let hash = self
            .request(|| client.load_job(&self.site.code, window, page, priority))
            .await?;
        Ok(Submitted {
            hash,
            at: Instant::now(),
        })
    }

    /// Poll one page's job until it passes, submitting it first unless it
    /// was submitted `ahead`, and again after `fail` or expiry.
    async fn fetch_page(
        &self,
        window: ExportWindow,
        page: u32,
        priority: Priority,
        mut ahead: Option<Submitted>,
    ) -> Result<JobData, ExportError> {
        let client = &self.account.client;
        let builds = &self.account.builds;
        let mut resubmits = 0;
        let mut short = 0;
        'submit: loop {
            let job = match ahead.take() {
                Some(job) => job,
                None => self.submit(window, page, priority).await?,
            };
            let (hash, submitted) = (job.hash, job.at);
            let mut wait = builds.estimate().saturating_sub(submitted.elapsed());
            let mut polls = 0;
            loop {
                self.sleep(wait).await?;
                if submitted.elapsed() > self.account.job_timeout {
                    return Err(ExportError::JobTimeout {
                        page,
                        window,
                        timeout: self.account.job_timeout,
                    });
                }
                polls += 1;
                match self
                    .request(|| client.get_job_data(&self.site.code, &hash))
                    .await
                {
                    Ok(data) => match data.status {
                        JobStatus::Pass => {
                            if polls == 1 {
                                builds.hit(client.budget_idle());
                            } else {
                                builds.settled(submitted.elapsed());
                            }
                            if let Some(total) = data.total.filter(|t| *t > self.account.max_total)
                            {
                                return Err(ExportError::AbsurdTotal {
                                    window,
                                    total,
                                    limit: self.account.max_total,
                                });
                            }
                            // Without a total, a short page is the window's
                            // end (as the public client reads it); the
                            // summaries' ids catch a page that was cut.
                            let got = data.records.len() as u64;
                            let due = data.total.map_or(0, |total| due_on_page(total, page));
                            if got >= due {
                                return Ok(data);
                            }
                            // A short, null or empty page where records are
                            // due: never accepted; asked for again.
                            short += 1;
                            if short > MAX_SHORT_PAGES {
                                return Err(ExportError::ShortPage {
                                    page,
                                    window,
                                    got,
                                    due,
                                    times: short,
                                });
                            }
                            let delay = (Duration::from_millis(500) * 2u32.pow(short))
                                .min(Duration::from_secs(5));
                            tracing::warn!(
                                page,
                                got,
                                due,
                                retry_in_ms = delay.as_millis() as u64,
                                "the page arrived short; asking again"
                            );
                            self.sleep(delay).await?;
                            continue 'submit;
                        }
                        JobStatus::Working | JobStatus::Other(_) => {
                            wait = builds.backoff(polls);
                            // The backoff spares a saturated budget; with
                            // slack (the end of a night, a one-site backfill)
                            // the only cost of polling is latency saved.
                            if client.budget_idle() {
                                wait = wait.min(builds.estimate().max(MIN_BACKOFF));
                            }
                        }
                        JobStatus::Fail => {
                            resubmits += 1;
                            tracing::warn!(page, %hash, resubmits, "export job failed; submitting again");
                            if resubmits > MAX_RESUBMITS {
                                return Err(ExportError::JobFailed {
                                    page,
                                    window,
                                    times: resubmits,
                                });
                            }
                            continue 'submit;
                        }
                    },
                    Err(ExportError::Api(e)) if e.disposition() == Disposition::Resubmit => {
                        resubmits += 1;
                        tracing::warn!(page, %hash, error = %e, "export job expired; submitting again");
                        if resubmits > MAX_RESUBMITS {
                            return Err(e.into());
                        }
                        continue 'submit;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    async fn request<T, F, Fut>(&self, call: F) -> Result<T, ExportError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let what = format!("site {} day {}", self.site.code, self.day);
        Ok(with_policy(&self.account.cancel, &what, &self.requests, call).await?)
    }

    async fn sleep(&self, duration: Duration) -> Result<(), ExportError> {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.account.cancel.cancelled() => Err(ExportError::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_without_a_total_ends_the_window_only_when_it_is_short() {
        // A full first page without a total: at least one more page.
        assert_eq!(implied_size(None, 1, 100), (101, None));
        // A short third page without a total: the window ends there.
        assert_eq!(implied_size(None, 3, 42), (242, Some(242)));
        assert_eq!(implied_size(None, 2, 0), (100, Some(100)));
        // A total is taken as it is.
        assert_eq!(implied_size(Some(250), 1, 100), (250, None));
    }

    #[test]
    fn jobs_that_linger_after_their_build_do_not_ratchet_the_first_poll_delay_up() {
        let builds = BuildTimes::new(Duration::from_millis(400));
        // Three jobs in ten answer `working` twice more after their build:
        // they pass well after the estimate whatever it is.
        for i in 0..300 {
            let e = builds.estimate();
            if i % 10 < 3 {
                builds.settled(e.mul_f64(1.6));
            } else {
                builds.hit(true);
            }
        }
        assert!(
            builds.estimate() < Duration::from_millis(400),
            "{:?}",
            builds.estimate()
        );
    }

    #[test]
    fn builds_slower_than_the_estimate_raise_it_towards_what_they_take() {
        let builds = BuildTimes::new(Duration::from_secs(1));
        for _ in 0..40 {
            builds.settled(Duration::from_secs(3));
        }
        let e = builds.estimate();
        assert!(
            e > Duration::from_millis(2500) && e < Duration::from_millis(3400),
            "{e:?}"
        );
    }
}
