//! The summaries of a site-day in its export: read them, compare a stored
//! day with them, and check that the export and the summaries agree on the
//! day's transactions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{DayExport, ExportError};
use crate::api::summary::Summary;
use crate::api::{walk_pages, ApiError};
use crate::budget::Priority;
use crate::domain::ExportWindow;
use crate::store;

/// Whether an account's exports read the transaction summaries: on unless
/// `[transactions] summaries = false`, and off for the rest of the process
/// once the API refuses them to the account (403). Without them the views
/// classify by the export's v1 flags (docs/schema.md).
#[derive(Debug, Clone)]
pub struct SummaryPolicy {
    enabled: bool,
    refused: Arc<AtomicBool>,
}

impl SummaryPolicy {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            refused: Arc::default(),
        }
    }

    /// Whether summaries are read now.
    pub fn active(&self) -> bool {
        self.enabled && !self.refused.load(Ordering::Relaxed)
    }

    /// Whether the API refused the account's summaries.
    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// The API refused them: stop asking. True the first time.
    fn refuse(&self) -> bool {
        !self.refused.swap(true, Ordering::Relaxed)
    }
}

impl DayExport<'_> {
    /// The summaries of every window of the day, by transaction id; `None`
    /// when summaries are off or the API refuses them to the account.
    pub(super) async fn read_summaries(
        &self,
        windows: &[ExportWindow],
    ) -> Result<Option<HashMap<String, Summary>>, ExportError> {
        let policy = &self.account.summaries;
        if !policy.active() {
            return Ok(None);
        }
        let client = &self.account.client;
        let code = &self.site.code;
        let mut by_id = HashMap::new();
        for window in windows {
            let read = walk_pages("transaction/version-2", |page| {
                self.request(move || client.summaries_page(code, *window, page, Priority::Continue))
            })
            .await;
            match read {
                Ok(summaries) => {
                    by_id.extend(summaries.into_iter().map(|s| (s.id.clone(), s)));
                }
                // "No data" for these criteria. Should the export hold any,
                // the ids disagree and the day fails naming them.
                Err(ExportError::Api(ApiError::NotFound { .. })) => {}
                Err(ExportError::Api(e @ ApiError::Forbidden { .. })) => {
                    if policy.refuse() {
                        tracing::warn!(error = %e, "the API refuses this account's transaction summaries: membership flags and status fall back to the export's v1 flags, and the lookback exports days whole");
                    }
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(by_id))
    }

    /// Whether the day's summaries differ from what is stored: another set
    /// of ids, or a transaction whose summary digest changed (or was never
    /// read).
    pub(super) async fn differs_from_stored(
        &self,
        summaries: &HashMap<String, Summary>,
    ) -> Result<bool, ExportError> {
        let a = self.account;
        let stored = store::ride_out(a.outage, "read the stored summaries", || {
            store::lookback::summary_digests(&a.pool, &a.account, &self.site.code, self.day.date)
        })
        .await?;
        Ok(stored.len() != summaries.len()
            || summaries.values().any(|s| match stored.get(&s.id) {
                Some(Some(digest)) => *digest != s.digest(),
                _ => true,
            }))
    }

    /// The day's ids when the export and its summaries agree on them;
    /// `None` when they agree but quarantined records without an id leave
    /// the set uncertain; an error naming the ids where they disagree.
    pub(super) fn agreed_ids(&self) -> Result<Option<Vec<String>>, ExportError> {
        let summaries = self.summaries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(summaries) = summaries.as_ref() else {
            return Ok(None);
        };
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut only_export: Vec<String> = seen
            .iter()
            .filter(|id| !summaries.contains_key(*id))
            .cloned()
            .collect();
        let mut only_summaries: Vec<String> = summaries
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        let anonymous = self.anonymous.load(Ordering::Relaxed);
        // A record quarantined without an id may be any one summary.
        if only_export.is_empty() && only_summaries.len() as u64 <= anonymous {
            return Ok((anonymous == 0).then(|| seen.iter().cloned().collect()));
        }
        only_export.sort();
        only_summaries.sort();
        Err(ExportError::SummaryMismatch {
            only_export,
            only_summaries,
        })
    }

    /// Remove the day's stored transactions that neither the export nor
    /// the summaries list any more.
    pub(super) async fn remove_vanished(&self, ids: &[String]) -> Result<(), ExportError> {
        let a = self.account;
        let day = store::SiteDay {
            account: &a.account,
            site: &self.site.code,
            timezone: self.site.timezone,
            date: self.day.date,
        };
        let removed = store::ride_out(a.outage, "remove vanished transactions", || {
            store::lookback::remove_vanished(&a.pool, day, ids, self.lease)
        })
        .await?
        .ok_or(ExportError::LeaseLost)?;
        if removed > 0 {
            tracing::warn!(
                removed,
                "stored transactions that the source no longer lists were removed"
            );
            self.report
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .vanished += removed;
        }
        Ok(())
    }
}
