//! How washes are counted: the wash departments of the configuration
//! (`reporting.wash_departments`) and the wash lists the export reads
//! (`sonnys.wash_list_days`, `sonnys.wash_list_transactions`). Either
//! change recomputes the rollup of what it changes, in its transaction.

use sqlx::PgPool;

use super::{Lease, SiteDay};

/// Make `reporting.wash_departments` exactly `names` (compared without
/// case). Returns whether the table changed; its triggers then recompute
/// the rollup of the site-days holding items of the departments added or
/// removed, in the same transaction.
pub async fn set_wash_departments(pool: &PgPool, names: &[String]) -> sqlx::Result<bool> {
    let wanted: Vec<String> = names.iter().map(|n| n.trim().to_lowercase()).collect();
    let mut tx = pool.begin().await?;
    // Two processes starting at once write the list one after the other.
    sqlx::query("LOCK TABLE reporting.wash_departments IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let mut stored: Vec<String> =
        sqlx::query_scalar("SELECT lower(department) FROM reporting.wash_departments")
            .fetch_all(&mut *tx)
            .await?;
    let mut sorted = wanted.clone();
    sorted.sort();
    sorted.dedup();
    stored.sort();
    if stored == sorted {
        return Ok(false);
    }
    sqlx::query("DELETE FROM reporting.wash_departments WHERE lower(department) <> ALL ($1)")
        .bind(&wanted)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO reporting.wash_departments (department)
         SELECT btrim(name) FROM unnest($1::text[]) AS n(name)
         ON CONFLICT ((lower(department))) DO NOTHING",
    )
    .bind(names)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Write `[reporting] wash_departments`, when set, to the database: at
/// `migrate` and when a command or the service starts.
pub async fn apply_configured(
    pool: &PgPool,
    settings: &crate::configuration::ReportingSettings,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let Some(names) = &settings.wash_departments else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    let changed = set_wash_departments(pool, names)
        .await
        .context("cannot write reporting.wash_departments from [reporting] wash_departments")?;
    if changed {
        tracing::info!(
            wash_departments = ?names,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "wash departments set from the configuration; the days holding their items were recomputed"
        );
    }
    Ok(())
}

/// The departments that count as a wash, as stored.
pub async fn wash_departments(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT department FROM reporting.wash_departments ORDER BY lower(department)",
    )
    .fetch_all(pool)
    .await
}

/// Store the wash list of a site-day (the ids `GET /transaction/type/wash`
/// listed across its windows): from now on the day's washes are exactly
/// these. Replaces the day's earlier list and recomputes its rollup row, in
/// one transaction, fenced by the day's claim like a page: `None` when
/// another process took the day over (nothing is written).
pub async fn replace_wash_list(
    pool: &PgPool,
    day: SiteDay<'_>,
    ids: &[String],
    lease: Lease,
) -> sqlx::Result<Option<u64>> {
    let (account, site, date) = (day.account.as_str(), day.site.as_str(), day.date);
    let mut tx = pool.begin().await?;
    let holds: Option<bool> = sqlx::query_scalar(
        "SELECT true FROM sonnys.sync_days
          WHERE account = $1 AND site_code = $2 AND business_date = $3 AND lease_owner = $4::uuid
            FOR UPDATE",
    )
    .bind(account)
    .bind(site)
    .bind(date)
    .bind(lease.owner.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    if holds.is_none() {
        return Ok(None);
    }
    let listed: i64 = sqlx::query_scalar(
        "WITH day AS (
             INSERT INTO sonnys.wash_list_days AS d (account, site_code, business_date, washes)
             VALUES ($1, $2, $3, (SELECT count(DISTINCT id) FROM unnest($4::text[]) AS u(id)))
             ON CONFLICT (account, site_code, business_date) DO UPDATE
                SET washes = EXCLUDED.washes, read_at = now()
             RETURNING d.washes
         ), gone AS (
             DELETE FROM sonnys.wash_list_transactions
              WHERE account = $1 AND site_code = $2 AND business_date = $3 AND transaction_id <> ALL ($4)
         ), listed AS (
             INSERT INTO sonnys.wash_list_transactions (account, site_code, business_date, transaction_id)
             SELECT DISTINCT $1, $2, $3::date, id FROM unnest($4::text[]) AS u(id), day
             ON CONFLICT DO NOTHING
         )
         SELECT washes::bigint FROM day",
    )
    .bind(account)
    .bind(site)
    .bind(date)
    .bind(ids)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("SELECT reporting.refresh_site_days($1, ARRAY[$2::text], ARRAY[$3::date])")
        .bind(account)
        .bind(site)
        .bind(date)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(u64::try_from(listed).unwrap_or(0)))
}
