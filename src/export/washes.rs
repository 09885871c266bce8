//! The wash list of a site-day in its export (`[transactions] wash_list =
//! true`): the ids `GET /transaction/type/wash` lists for the day's
//! windows, stored as the day's washes, which the views then prefer to the
//! items' departments. One request per 100 wash transactions per window,
//! through the same budget and retry policy as every request of the day.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{DayExport, ExportError};
use crate::api::{walk_pages, ApiError};
use crate::budget::Priority;
use crate::domain::ExportWindow;
use crate::store;

/// Whether an account's exports read the wash lists: only with
/// `[transactions] wash_list = true`, and no more for the rest of the
/// process once the API refuses them to the account (403). Without them a
/// wash is counted by `reporting.wash_departments`.
#[derive(Debug, Clone, Default)]
pub struct WashListPolicy {
    enabled: bool,
    refused: Arc<AtomicBool>,
}

impl WashListPolicy {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            refused: Arc::default(),
        }
    }

    /// Whether wash lists are read now.
    pub fn active(&self) -> bool {
        self.enabled && !self.refused.load(Ordering::Relaxed)
    }

    /// The API refused them: stop asking. True the first time.
    fn refuse(&self) -> bool {
        !self.refused.swap(true, Ordering::Relaxed)
    }
}

impl DayExport<'_> {
    /// Read the day's wash list and store it; nothing when wash lists are
    /// off or refused (the day then counts washes by department).
    pub(super) async fn wash_list(&self, windows: &[ExportWindow]) -> Result<(), ExportError> {
        let Some(ids) = self.read_wash_list(windows).await? else {
            return Ok(());
        };
        let ids: Vec<String> = ids.into_iter().collect();
        let a = self.account;
        let day = store::SiteDay {
            account: &a.account,
            site: &self.site.code,
            timezone: self.site.timezone,
            date: self.day.date,
        };
        let washes = store::ride_out(a.outage, "store the wash list", || {
            store::washes::replace_wash_list(&a.pool, day, &ids, self.lease)
        })
        .await?
        .ok_or(ExportError::LeaseLost)?;
        tracing::debug!(washes, "wash list stored");
        Ok(())
    }

    /// The ids every window's wash list names; `None` when wash lists are
    /// off or the API refuses them to the account.
    async fn read_wash_list(
        &self,
        windows: &[ExportWindow],
    ) -> Result<Option<HashSet<String>>, ExportError> {
        let policy = &self.account.wash_list;
        if !policy.active() {
            return Ok(None);
        }
        let client = &self.account.client;
        let code = &self.site.code;
        let mut ids = HashSet::new();
        for window in windows {
            let read = walk_pages("transaction/type/wash", |page| {
                self.request(move || client.wash_list_page(code, *window, page, Priority::Continue))
            })
            .await;
            match read {
                Ok(listed) => ids.extend(listed),
                // "No data" for these criteria: no wash in the window.
                Err(ExportError::Api(ApiError::NotFound { .. })) => {}
                Err(ExportError::Api(e @ ApiError::Forbidden { .. })) => {
                    if policy.refuse() {
                        tracing::warn!(error = %e, "the API refuses this account's wash lists: washes are counted by reporting.wash_departments");
                    }
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(ids))
    }
}
