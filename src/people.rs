//! The nightly export of labour (employees and their clock entries) and
//! memberships (recurring accounts and their status changes), beside the
//! transactions and within the same API id's budget at its lowest priority
//! (`Priority::Background`): the transactions never wait for them.
//!
//! What each run covered is recorded in `sonnys.people_syncs`, which decides
//! when the weekly clock-entry sweep and the one walk back through
//! membership history are due, and from which `plan` forecasts their cost.
//!
//! Live answers are taken as they come: a clock entry without a clock-in
//! is quarantined alone in `sonnys.rejected_records` (counted in the
//! report, `sonnys.people_syncs.rejected` and
//! `sonnys_etl_rejected_records_total`), an open shift is stored as given,
//! and bare dates are read in the account's zone ([`PeopleExport::timezone`]).
//!
//! Request cost per account and night (pages of 100 unless said):
//! - labour: ⌈employees / 100⌉ for the list, then one request per employee
//!   seen in the last `active_weeks` (more for spans over 12 days); on sweep
//!   nights one per employee per 12 days of `sweep_days` (14 days: 2).
//! - members: one for the night's sign-ups, ⌈changes / 1,000⌉ for the status
//!   changes; once, ⌈sign-ups / 100⌉ per 6 months back to `since` and
//!   ⌈changes / 1,000⌉ for the status history.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::stream::{self, StreamExt};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::api::people::{Page, CLOCK_ENTRY_MAX_DAYS, STATUS_LIST_LIMITS};
use crate::api::policy::{with_policy, CallError};
use crate::api::Client;
use crate::configuration::{LabourSettings, MembersSettings};
use crate::domain::days::{day_chunks, last_ended_days};
use crate::domain::states::PeopleKind;
use crate::domain::AccountName;
use crate::store::people as store;

/// Business days one clock-entries request covers: the request asks a day
/// more on each side (the API's date zone is not documented), within its
/// limit of 14 days.
pub const CLOCK_DAYS_PER_REQUEST: u32 = (CLOCK_ENTRY_MAX_DAYS - 2) as u32;

/// Employees whose entries are read at once.
const EMPLOYEES_IN_FLIGHT: usize = 4;

/// Which data a sync exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataKinds {
    pub transactions: bool,
    pub labour: bool,
    pub members: bool,
}

impl DataKinds {
    /// Transactions, plus what the configuration enables.
    pub fn configured(labour: &LabourSettings, members: &MembersSettings) -> Self {
        Self {
            transactions: true,
            labour: labour.enabled,
            members: members.enabled,
        }
    }

    /// Parses `transactions,labour,members` (any subset, at least one).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut kinds = Self {
            transactions: false,
            labour: false,
            members: false,
        };
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "transactions" => kinds.transactions = true,
                "labour" | "labor" => kinds.labour = true,
                "members" => kinds.members = true,
                other => {
                    return Err(format!(
                        "unknown data {other:?}: use transactions, labour or members"
                    ))
                }
            }
        }
        if !(kinds.transactions || kinds.labour || kinds.members) {
            return Err("name at least one of transactions, labour, members".into());
        }
        Ok(kinds)
    }
}

/// Why a labour or membership export stopped.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    /// An API call failed for good (after the policy's retries).
    #[error("{what}: {source}")]
    Api {
        what: &'static str,
        #[source]
        source: CallError,
    },
    /// Reading or writing what is stored failed.
    #[error("{what}{source}")]
    Database {
        /// What was being done, with a trailing ": ", or nothing.
        what: String,
        #[source]
        source: sqlx::Error,
    },
}

impl From<sqlx::Error> for PeopleError {
    fn from(source: sqlx::Error) -> Self {
        PeopleError::Database {
            what: String::new(),
            source,
        }
    }
}

fn database(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> PeopleError {
    let what = what.into();
    move |source| PeopleError::Database {
        what: format!("{what}: "),
        source,
    }
}

/// What one account's labour or membership export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleReport {
    pub requests: u64,
    /// Employees or membership accounts listed.
    pub listed: u64,
    /// Clock entries or status changes received (quarantined ones included).
    pub records: u64,
    /// What was stored; `written.quarantined` counts the clock entries
    /// set aside in `sonnys.rejected_records` (no clock-in).
    pub written: store::Written,
    /// For labour: whether this was the sweep of every employee.
    pub sweep: bool,
    pub error: Option<String>,
}

/// One account's labour and membership export.
pub struct PeopleExport<'a> {
    pub pool: &'a PgPool,
    pub account: &'a AccountName,
    /// Zone of the account's business days (and of sites without one). A
    /// bare date the service sends (a status change's `status_date`, a
    /// sign-up or cancel date) is that day's midnight in this zone.
    pub timezone: Tz,
    pub client: &'a Client,
    pub cancel: &'a CancellationToken,
}

impl PeopleExport<'_> {
    /// Employees, then their clock entries of the recent business days (or
    /// of the sweep's days for every employee, when a sweep is due).
    pub async fn labour(&self, settings: &LabourSettings, now: DateTime<Utc>) -> PeopleReport {
        let requests = AtomicU64::new(0);
        let mut report = PeopleReport::default();
        let sweep = match store::sweep_due(self.pool, self.account, settings.sweep_every)
            .await
            .map_err(database("cannot read when labour was last swept"))
        {
            Ok(due) => due,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        let days = if sweep {
            settings.sweep_days
        } else {
            settings.recent_days
        };
        let (first, last) = last_ended_days(self.timezone, now, days);
        let data = if sweep {
            PeopleKind::LabourSweep
        } else {
            PeopleKind::Labour
        };
        let span = (day_start(first), day_start(last + Days::new(1)));
        let result: Result<(), PeopleError> = async {
            store::begin(self.pool, self.account, data, span).await?;
            let employees = self
                .pages("employee", "list employees", &requests, |page| {
                    self.client.employees_page(page)
                })
                .await?;
            report.listed = employees.len() as u64;
            store::upsert_employees(self.pool, self.account, &employees).await?;
            let ids: Vec<i64> = if sweep {
                employees.iter().map(|e| e.employee_id).collect()
            } else {
                store::active_employees(
                    self.pool,
                    self.account,
                    now - chrono::Duration::weeks(i64::from(settings.active_weeks)),
                )
                .await?
            };
            let chunks = day_chunks(first, last, CLOCK_DAYS_PER_REQUEST);
            let reads: Vec<_> = ids
                .iter()
                .flat_map(|id| chunks.iter().map(move |(from, to)| (*id, *from, *to)))
                .map(|(id, from, to)| self.clock_entries(&requests, id, from, to))
                .collect();
            let mut results = stream::iter(reads).buffer_unordered(EMPLOYEES_IN_FLIGHT);
            while let Some(result) = results.next().await {
                let (received, written) = result?;
                report.records += received;
                add(&mut report.written, written);
            }
            Ok(())
        }
        .await;
        report.sweep = sweep;
        self.finish(
            data,
            span,
            &requests,
            Counted::default(),
            result,
            &mut report,
        )
        .await;
        report
    }

    /// Sign-ups of the last days and status changes since the last export;
    /// the first time, both back to `since`.
    pub async fn members(&self, settings: &MembersSettings, now: DateTime<Utc>) -> PeopleReport {
        let requests = AtomicU64::new(0);
        let mut report = PeopleReport::default();
        let since = settings.since.at(now);
        let recent = now - chrono::Duration::days(i64::from(settings.recent_days) + 1);

        // Sign-ups: every whole 6-month period back to `since` once, then
        // the recent days every night.
        let periods = match store::missing_history(self.pool, self.account, since, recent)
            .await
            .map_err(database("cannot read the membership history done"))
        {
            Ok(p) => p,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        for (data, span) in periods
            .into_iter()
            .map(|p| (PeopleKind::MemberHistory, p))
            .chain(std::iter::once((PeopleKind::MemberSignUps, (recent, now))))
        {
            let before = Counted::of(&requests, &report);
            let result = async {
                store::begin(self.pool, self.account, data, span).await?;
                let accounts = self
                    .pages(
                        "recurring/account/list",
                        "list membership accounts",
                        &requests,
                        |page| self.client.recurring_accounts_page(span.0, span.1, page),
                    )
                    .await?;
                report.listed += accounts.len() as u64;
                let written = store::upsert_recurring_accounts(
                    self.pool,
                    self.account,
                    self.timezone,
                    &accounts,
                )
                .await?;
                add(&mut report.written, written);
                Ok(())
            }
            .await;
            let failed = result.is_err();
            self.finish(data, span, &requests, before, result, &mut report)
                .await;
            if failed {
                return report;
            }
        }

        // Status changes since the last export, with the recent days again.
        let from = match store::changes_covered_to(self.pool, self.account)
            .await
            .map_err(database("cannot read the status changes done"))
        {
            Ok(Some(to)) => {
                (to - chrono::Duration::days(i64::from(settings.recent_days))).max(since)
            }
            Ok(None) => since,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        let span = (from, now);
        let before = Counted::of(&requests, &report);
        let result = async {
            store::begin(self.pool, self.account, PeopleKind::MemberChanges, span).await?;
            let limit = *STATUS_LIST_LIMITS.end();
            let changes = self
                .pages(
                    "recurring/account/status-list",
                    "list membership status changes",
                    &requests,
                    |page| self.client.status_changes_page(from, now, page, limit),
                )
                .await?;
            report.records += changes.len() as u64;
            let written =
                store::upsert_status_changes(self.pool, self.account, self.timezone, &changes)
                    .await?;
            add(&mut report.written, written);
            Ok(())
        }
        .await;
        self.finish(
            PeopleKind::MemberChanges,
            span,
            &requests,
            before,
            result,
            &mut report,
        )
        .await;
        report
    }

    /// One employee's entries of the business days `from..=to`, stored;
    /// entries without a clock-in quarantined alone.
    async fn clock_entries(
        &self,
        requests: &AtomicU64,
        id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(u64, store::Written), PeopleError> {
        let read = self
            .call("read clock entries", requests, || {
                // A day more on each side: the API's date zone is not documented.
                self.client
                    .clock_entries(id, from - Days::new(1), to + Days::new(1))
            })
            .await?;
        let written = store::replace_clock_entries(
            self.pool,
            self.account,
            self.timezone,
            id,
            from..=to,
            &read.entries,
            &read.quarantined,
        )
        .await
        .map_err(database(format!(
            "cannot store employee {id}'s clock entries"
        )))?;
        if written.quarantined > 0 {
            self.quarantined(&read.quarantined, written.quarantined);
        }
        Ok((
            (read.entries.len() + read.quarantined.len()) as u64,
            written,
        ))
    }

    /// Clock entries set aside on the replaced days: logged once per
    /// employee and read (every reason is in the table) and counted in
    /// `sonnys_etl_rejected_records_total`, as quarantined transactions are.
    fn quarantined(&self, entries: &[crate::api::people::QuarantinedEntry], stored: u64) {
        if let Some(first) = entries.first() {
            tracing::warn!(
                employee_id = first.employee_id,
                quarantined = stored,
                reason = %first.reason,
                "clock entries quarantined in sonnys.rejected_records"
            );
        }
        metrics::counter!(crate::metrics::REJECTED_RECORDS, "account" => self.account.to_string())
            .increment(stored);
    }

    /// Every page of a collection, each page one request under the
    /// export's error policy (retried alone, counted alone).
    async fn pages<T, F, Fut>(
        &self,
        endpoint: &'static str,
        what: &'static str,
        requests: &AtomicU64,
        fetch: F,
    ) -> Result<Vec<T>, PeopleError>
    where
        F: Fn(u32) -> Fut,
        Fut: std::future::Future<Output = Result<Page<T>, crate::api::ApiError>>,
    {
        let fetch = &fetch;
        crate::api::walk_pages(endpoint, |page| {
            with_policy(self.cancel, what, requests, move || fetch(page))
        })
        .await
        .map_err(|source| PeopleError::Api { what, source })
    }

    /// One call with the export's error policy (transient errors and 429s
    /// retried), its requests counted, its error named.
    async fn call<T, F, Fut>(
        &self,
        what: &'static str,
        requests: &AtomicU64,
        call: F,
    ) -> Result<T, PeopleError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, crate::api::ApiError>>,
    {
        with_policy(self.cancel, what, requests, call)
            .await
            .map_err(|source| PeopleError::Api { what, source })
    }

    /// Record one export (one `sonnys.people_syncs` row) with what it
    /// alone spent and received: the counts since `before`, not the run's
    /// running totals.
    async fn finish(
        &self,
        data: PeopleKind,
        span: (DateTime<Utc>, DateTime<Utc>),
        requests: &AtomicU64,
        before: Counted,
        result: Result<(), PeopleError>,
        report: &mut PeopleReport,
    ) {
        report.requests = requests.load(Ordering::Relaxed);
        let now = Counted::of(requests, report);
        let error = result.err().map(|e| e.to_string());
        if let Some(e) = &error {
            tracing::warn!(data = data.as_str(), error = %e, "export failed");
            report.error = Some(e.clone());
        }
        let outcome = store::Outcome {
            requests: (now.requests - before.requests) as i64,
            records: (now.records - before.records) as i64,
            rejected: (now.rejected - before.rejected) as i64,
            error: error.as_deref(),
        };
        if let Err(e) = store::finish(self.pool, self.account, data, span, outcome).await {
            tracing::warn!(data = data.as_str(), error = %e, "cannot record the export in sonnys.people_syncs");
        }
    }
}

/// What a run has spent and received so far, to tell each export's own share.
#[derive(Debug, Clone, Copy, Default)]
struct Counted {
    requests: u64,
    records: u64,
    rejected: u64,
}

impl Counted {
    fn of(requests: &AtomicU64, report: &PeopleReport) -> Self {
        Self {
            requests: requests.load(Ordering::Relaxed),
            records: report.records + report.listed,
            rejected: report.written.quarantined,
        }
    }
}

fn add(total: &mut store::Written, w: store::Written) {
    total.inserted += w.inserted;
    total.updated += w.updated;
    total.unchanged += w.unchanged;
    total.deleted += w.deleted;
    total.outside += w.outside;
    total.quarantined += w.quarantined;
}

fn day_start(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_kinds_name_exactly_what_to_export() {
        assert_eq!(
            DataKinds::parse("labour,members").unwrap(),
            DataKinds {
                transactions: false,
                labour: true,
                members: true
            }
        );
        assert!(DataKinds::parse("sales").unwrap_err().contains("sales"));
        assert!(DataKinds::parse("").is_err());
    }
}
