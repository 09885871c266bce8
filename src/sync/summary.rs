//! What a sync did: per account and for the whole run, the one outcome
//! rule, and the summary printed at the end of `sync` and logged by the service.

use std::time::Duration;

use chrono::NaiveDate;

use crate::domain::states::RunOutcome;
use crate::people::PeopleReport;

use super::Stop;

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
