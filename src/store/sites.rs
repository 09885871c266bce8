//! The sites of each account, as /site/list reported them (`sonnys.sites`).

use chrono_tz::Tz;
use sqlx::PgPool;

use crate::domain::{AccountName, Site};

/// Record the account's sites as /site/list reported them.
pub async fn upsert_sites(
    pool: &PgPool,
    account: &AccountName,
    sites: &[Site],
) -> sqlx::Result<()> {
    let ids: Vec<i64> = sites.iter().map(|s| s.site_id).collect();
    let codes: Vec<&str> = sites.iter().map(|s| s.code.as_str()).collect();
    let names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
    let reported: Vec<Option<&str>> = sites
        .iter()
        .map(|s| s.reported_timezone.as_deref())
        .collect();
    let effective: Vec<&str> = sites.iter().map(|s| s.timezone.name()).collect();
    sqlx::query(
        "INSERT INTO sonnys.sites AS s (account, site_id, code, name, timezone, effective_timezone)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
         ON CONFLICT (account, site_id) DO UPDATE
            SET code = EXCLUDED.code, name = EXCLUDED.name, timezone = EXCLUDED.timezone,
                effective_timezone = EXCLUDED.effective_timezone, updated_at = now()
          WHERE (s.code, s.name, s.timezone, s.effective_timezone)
                IS DISTINCT FROM (EXCLUDED.code, EXCLUDED.name, EXCLUDED.timezone, EXCLUDED.effective_timezone)",
    )
    .bind(account.as_str())
    .bind(&ids)
    .bind(&codes)
    .bind(&names)
    .bind(&reported)
    .bind(&effective)
    .execute(pool)
    .await?;
    Ok(())
}

/// A site as `/site/list` last reported it (the latest row per code), for
/// work that does not ask the API: the status picture and the forecast.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KnownSite {
    pub account: String,
    pub code: String,
    pub name: Option<String>,
    effective_timezone: String,
}

impl KnownSite {
    /// The zone its business days are counted in.
    pub fn timezone(&self) -> Tz {
        self.effective_timezone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// Whether the configured account exports it (its own, and on its `sites` list if any).
    pub fn exported_by(&self, account: &crate::configuration::AccountSettings) -> bool {
        self.account == account.name.as_str()
            && account.sites.as_ref().map_or(true, |wanted| {
                wanted.iter().any(|w| w.as_str() == self.code)
            })
    }
}

/// Every site with a code, as last reported.
pub async fn known_sites(pool: &PgPool) -> sqlx::Result<Vec<KnownSite>> {
    sqlx::query_as(
        "SELECT DISTINCT ON (account, code) account, code, name, effective_timezone
           FROM sonnys.sites WHERE code <> ''
          ORDER BY account, code, updated_at DESC",
    )
    .fetch_all(pool)
    .await
}
