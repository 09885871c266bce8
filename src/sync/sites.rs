//! The sites of an account a sync exports: /site/list narrowed to the
//! configured and requested codes, each with its zone.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;

use crate::api::model::SiteEntry;
use crate::api::policy::with_policy;
use crate::configuration::AccountSettings;
use crate::domain::{parse_timezone, Site, SiteCode};
use crate::export::AccountExport;
use crate::store;

use super::{Failure, SyncPlan, Syncer};

impl Syncer {
    /// The account's sites from /site/list, narrowed to the configured and
    /// requested codes, and stored in `sonnys.sites`. Requested codes the API
    /// does not know come back as failures.
    pub(super) async fn sites(
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
