//! The transactions of a site-day and their lines, one page per database
//! transaction: set-based upserts keyed by the source's identity.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, Transaction as DbTransaction};

use crate::api::model::{Rejected, Transaction};
use crate::domain::{AccountName, BusinessDay, SiteCode};

use super::*;

/// Upsert one page of a site-day in one database transaction: the
/// transactions, and the lines of those that are new or changed. Unchanged
/// transactions are not rewritten; a changed one has its lines replaced.
/// `None`, with nothing written, when `lease` no longer holds the day.
pub async fn store_page(
    pool: &PgPool,
    site_day: SiteDay<'_>,
    records: &[Transaction],
    rejected: &[Rejected],
    lease: Lease,
) -> sqlx::Result<Option<PageWrite>> {
    let SiteDay {
        account,
        site,
        timezone,
        date: day,
    } = site_day;
    // One id twice in a page would make the upsert touch a row twice; the
    // later record wins, as it would have across pages.
    let mut last_of: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    for (i, t) in records.iter().enumerate() {
        last_of.insert(t.id.as_str(), i);
    }
    let page: Vec<&Transaction> = records
        .iter()
        .enumerate()
        .filter(|(i, t)| last_of.get(t.id.as_str()) == Some(i))
        .map(|(_, t)| t)
        .collect();

    let mut tx = pool.begin().await?;
    // Fencing: the claim is checked (and its row locked) first, so a process
    // that lost its claim writes nothing, and no page of a new owner
    // interleaves with it.
    let holds: Option<bool> = sqlx::query_scalar(
        "SELECT true FROM sonnys.sync_days
          WHERE account = $1 AND site_code = $2 AND business_date = $3 AND lease_owner = $4::uuid
            FOR UPDATE",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(day)
    .bind(lease.owner.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    if holds.is_none() {
        // Another process took the day over: nothing of this page is written.
        return Ok(None);
    }
    let changed = upsert_transactions(&mut tx, account, site, timezone, &page).await?;
    let inserted = changed.iter().filter(|c| c.inserted).count() as u64;
    let updated_ids: Vec<&str> = changed
        .iter()
        .filter(|c| !c.inserted)
        .map(|c| c.id.as_str())
        .collect();
    if !updated_ids.is_empty() {
        sqlx::query(
            "WITH items AS (DELETE FROM sonnys.transaction_items WHERE account = $1 AND transaction_id = ANY($2)),
                  tenders AS (DELETE FROM sonnys.transaction_tenders WHERE account = $1 AND transaction_id = ANY($2))
             DELETE FROM sonnys.transaction_discounts WHERE account = $1 AND transaction_id = ANY($2)",
        )
        .bind(account.as_str())
        .bind(&updated_ids)
        .execute(&mut *tx)
        .await?;
    }
    if !changed.is_empty() {
        let ids: HashSet<&str> = changed.iter().map(|c| c.id.as_str()).collect();
        let lines: Vec<&Transaction> = page
            .iter()
            .copied()
            .filter(|t| ids.contains(t.id.as_str()))
            .collect();
        insert_items(&mut tx, account, &lines).await?;
        insert_tenders(&mut tx, account, &lines).await?;
        insert_discounts(&mut tx, account, &lines).await?;
        refresh_rollup(&mut tx, account, &changed).await?;
    }
    if !page.is_empty() {
        // A record stored now is no longer rejected (the source mended it).
        let ids: Vec<&str> = page.iter().map(|t| t.id.as_str()).collect();
        sqlx::query(
            "DELETE FROM sonnys.rejected_records WHERE account = $1 AND transaction_id = ANY($2)",
        )
        .bind(account.as_str())
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    }
    if !rejected.is_empty() {
        quarantine(&mut tx, account, site, day, rejected).await?;
    }
    sqlx::query(
        "UPDATE sonnys.sync_days
            SET pages = pages + 1, transactions = transactions + $4, rejected = rejected + $5,
                heartbeat_at = now()
          WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(day)
    .bind(page.len() as i32)
    .bind(rejected.len() as i32)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(PageWrite {
        inserted,
        updated: updated_ids.len() as u64,
        unchanged: page.len() as u64 - changed.len() as u64,
        rejected: rejected.len() as u64,
    }))
}

/// Keep records that cannot be stored, with the reason and the raw text.
async fn quarantine(
    tx: &mut DbTransaction<'_, Postgres>,
    account: &AccountName,
    site: &SiteCode,
    day: NaiveDate,
    rejected: &[Rejected],
) -> sqlx::Result<()> {
    // Last one wins when a page holds one key twice.
    let mut rows: HashMap<String, (Option<&str>, &str, String)> = HashMap::new();
    for r in rejected {
        let raw = r.raw.to_string();
        let key = match &r.transaction_id {
            Some(id) => id.clone(),
            None => format!("fnv:{:016x}", crate::api::summary::fnv1a(raw.as_bytes())),
        };
        rows.insert(key, (r.transaction_id.as_deref(), r.reason.as_str(), raw));
    }
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    let mut reasons = Vec::new();
    let mut raws = Vec::new();
    for (key, (id, reason, raw)) in rows {
        keys.push(key);
        ids.push(id);
        reasons.push(reason);
        raws.push(raw);
    }
    sqlx::query(
        "INSERT INTO sonnys.rejected_records AS r
            (account, site_code, business_date, record_key, transaction_id, reason, raw)
         SELECT $1, $2, $3, * FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[])
         ON CONFLICT (account, site_code, business_date, record_key) DO UPDATE
            SET reason = EXCLUDED.reason, raw = EXCLUDED.raw, last_seen_at = now()",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(day)
    .bind(&keys)
    .bind(&ids)
    .bind(&reasons)
    .bind(&raws)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A transaction the page inserted or changed, with the site-days it was
/// and is now counted in.
#[derive(sqlx::FromRow)]
struct Changed {
    id: String,
    inserted: bool,
    site_code: String,
    business_date: NaiveDate,
    old_site_code: Option<String>,
    old_business_date: Option<NaiveDate>,
}

/// Recompute the daily rollup of every site-day the page touched, in the
/// page's own transaction, so reports never see a half-written page.
async fn refresh_rollup(
    tx: &mut DbTransaction<'_, Postgres>,
    account: &AccountName,
    changed: &[Changed],
) -> sqlx::Result<()> {
    let mut days: HashSet<(&str, NaiveDate)> = HashSet::new();
    for c in changed {
        days.insert((c.site_code.as_str(), c.business_date));
        if let (Some(site), Some(date)) = (c.old_site_code.as_deref(), c.old_business_date) {
            days.insert((site, date));
        }
    }
    let (sites, dates): (Vec<&str>, Vec<NaiveDate>) = days.into_iter().unzip();
    sqlx::query("SELECT reporting.refresh_site_days($1, $2, $3)")
        .bind(account.as_str())
        .bind(&sites)
        .bind(&dates)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Upsert the transactions; returns those inserted or changed.
async fn upsert_transactions(
    tx: &mut DbTransaction<'_, Postgres>,
    account: &AccountName,
    site: &SiteCode,
    timezone: Tz,
    page: &[&Transaction],
) -> sqlx::Result<Vec<Changed>> {
    macro_rules! column {
        ($f:expr) => {
            page.iter().map($f).collect::<Vec<_>>()
        };
    }
    sqlx::query_as(
        "WITH old AS (
             SELECT id, site_code, business_date FROM sonnys.transactions WHERE account = $1 AND id = ANY($3)
         ), upserted AS (
         INSERT INTO sonnys.transactions AS t
            (account, site_code, id, number, type, business_date, completed_at, sales_device_name, total,
             customer_id, customer_name, vehicle_license_plate, employee_cashier, employee_greeter,
             transaction_status, is_recurring_payment, is_recurring_redemption, is_recurring_sale,
             is_prepaid_redemption, is_prepaid_sale, is_recurring_plan_sale, is_recurring_plan_redemption, raw,
             summary_digest)
         SELECT $1, $2, * FROM UNNEST(
             $3::text[], $4::bigint[], $5::text[], $6::date[], $7::timestamptz[], $8::text[], $9::numeric[],
             $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
             $15::text[], $16::bool[], $17::bool[], $18::bool[],
             $19::bool[], $20::bool[], $21::bool[], $22::bool[], $23::jsonb[], $24::text[])
         ON CONFLICT (account, id) DO UPDATE SET
             site_code = EXCLUDED.site_code, number = EXCLUDED.number, type = EXCLUDED.type,
             business_date = EXCLUDED.business_date, completed_at = EXCLUDED.completed_at,
             sales_device_name = EXCLUDED.sales_device_name, total = EXCLUDED.total,
             customer_id = EXCLUDED.customer_id, customer_name = EXCLUDED.customer_name,
             vehicle_license_plate = EXCLUDED.vehicle_license_plate,
             employee_cashier = EXCLUDED.employee_cashier, employee_greeter = EXCLUDED.employee_greeter,
             -- The live export lacks the status and the plan flags (the
             -- summaries carry them): a record without them keeps the
             -- stored values.
             transaction_status = coalesce(EXCLUDED.transaction_status, t.transaction_status),
             is_recurring_payment = EXCLUDED.is_recurring_payment,
             is_recurring_redemption = EXCLUDED.is_recurring_redemption,
             is_recurring_sale = EXCLUDED.is_recurring_sale,
             is_prepaid_redemption = EXCLUDED.is_prepaid_redemption,
             is_prepaid_sale = EXCLUDED.is_prepaid_sale,
             is_recurring_plan_sale = coalesce(EXCLUDED.is_recurring_plan_sale, t.is_recurring_plan_sale),
             is_recurring_plan_redemption =
                 coalesce(EXCLUDED.is_recurring_plan_redemption, t.is_recurring_plan_redemption),
             summary_digest = coalesce(EXCLUDED.summary_digest, t.summary_digest),
             raw = EXCLUDED.raw, last_changed_at = now()
         WHERE t.raw IS DISTINCT FROM EXCLUDED.raw
            OR t.site_code IS DISTINCT FROM EXCLUDED.site_code
            OR t.business_date IS DISTINCT FROM EXCLUDED.business_date
            OR coalesce(EXCLUDED.summary_digest, t.summary_digest) IS DISTINCT FROM t.summary_digest
            OR coalesce(EXCLUDED.transaction_status, t.transaction_status) IS DISTINCT FROM t.transaction_status
            OR coalesce(EXCLUDED.is_recurring_plan_sale, t.is_recurring_plan_sale)
                   IS DISTINCT FROM t.is_recurring_plan_sale
            OR coalesce(EXCLUDED.is_recurring_plan_redemption, t.is_recurring_plan_redemption)
                   IS DISTINCT FROM t.is_recurring_plan_redemption
         RETURNING t.id, (t.xmax = 0) AS inserted, t.site_code, t.business_date
         )
         SELECT u.id, u.inserted, u.site_code, u.business_date,
                o.site_code AS old_site_code, o.business_date AS old_business_date
           FROM upserted u LEFT JOIN old o USING (id)",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(column!(|t| t.id.as_str()))
    .bind(column!(|t| t.number))
    .bind(column!(|t| t.kind.as_deref()))
    .bind(column!(|t| BusinessDay::of(t.completed_at, timezone).date))
    .bind(column!(|t| t.completed_at))
    .bind(column!(|t| t.sales_device_name.as_deref()))
    .bind(column!(|t| t.total))
    .bind(column!(|t| t.customer_id.as_deref()))
    .bind(column!(|t| t.customer_name.as_deref()))
    .bind(column!(|t| t.vehicle_license_plate.as_deref()))
    .bind(column!(|t| t.employee_cashier.as_deref()))
    .bind(column!(|t| t.employee_greeter.as_deref()))
    .bind(column!(|t| t.transaction_status.as_deref()))
    .bind(column!(|t| t.is_recurring_payment))
    .bind(column!(|t| t.is_recurring_redemption))
    .bind(column!(|t| t.is_recurring_sale))
    .bind(column!(|t| t.is_prepaid_redemption))
    .bind(column!(|t| t.is_prepaid_sale))
    .bind(column!(|t| t.is_recurring_plan_sale))
    .bind(column!(|t| t.is_recurring_plan_redemption))
    .bind(column!(|t| &t.raw))
    .bind(column!(|t| t.summary_digest.as_deref()))
    .fetch_all(&mut **tx)
    .await
}

/// The lines of each transaction, flattened with their 1-based line number.
fn lines<'a, L>(
    page: &[&'a Transaction],
    of: impl Fn(&'a Transaction) -> &'a [L],
) -> (Vec<&'a str>, Vec<i32>, Vec<&'a L>) {
    let mut ids = Vec::new();
    let mut numbers = Vec::new();
    let mut rows = Vec::new();
    for t in page {
        for (i, line) in of(t).iter().enumerate() {
            ids.push(t.id.as_str());
            numbers.push(i as i32 + 1);
            rows.push(line);
        }
    }
    (ids, numbers, rows)
}

fn amounts<L>(rows: &[&L], f: impl Fn(&L) -> Option<Decimal>) -> Vec<Option<Decimal>> {
    rows.iter().map(|r| f(r)).collect()
}

fn texts<'a, L>(rows: &[&'a L], f: impl Fn(&'a L) -> Option<&'a str>) -> Vec<Option<&'a str>> {
    rows.iter().map(|r| f(r)).collect()
}

async fn insert_items(
    tx: &mut DbTransaction<'_, Postgres>,
    account: &AccountName,
    page: &[&Transaction],
) -> sqlx::Result<()> {
    let (ids, numbers, rows) = lines(page, |t| &t.items);
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO sonnys.transaction_items
            (account, transaction_id, line_no, name, sku, department, quantity, gross, net, discount, tax,
             additional_fee, is_voided)
         SELECT $1, * FROM UNNEST($2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::numeric[],
             $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[], $12::numeric[], $13::bool[])",
    )
    .bind(account.as_str())
    .bind(&ids)
    .bind(&numbers)
    .bind(texts(&rows, |r| r.name.as_deref()))
    .bind(texts(&rows, |r| r.sku.as_deref()))
    .bind(texts(&rows, |r| r.department.as_deref()))
    .bind(amounts(&rows, |r| r.quantity))
    .bind(amounts(&rows, |r| r.gross))
    .bind(amounts(&rows, |r| r.net))
    .bind(amounts(&rows, |r| r.discount))
    .bind(amounts(&rows, |r| r.tax))
    .bind(amounts(&rows, |r| r.additional_fee))
    .bind(rows.iter().map(|r| r.is_voided).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_tenders(
    tx: &mut DbTransaction<'_, Postgres>,
    account: &AccountName,
    page: &[&Transaction],
) -> sqlx::Result<()> {
    let (ids, numbers, rows) = lines(page, |t| &t.tenders);
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO sonnys.transaction_tenders
            (account, transaction_id, line_no, tender, tender_sub_type, amount, change, total, reference_number,
             credit_card_last_four, credit_card_expiration_date)
         SELECT $1, * FROM UNNEST($2::text[], $3::int[], $4::text[], $5::text[], $6::numeric[], $7::numeric[],
             $8::numeric[], $9::text[], $10::text[], $11::text[])",
    )
    .bind(account.as_str())
    .bind(&ids)
    .bind(&numbers)
    .bind(texts(&rows, |r| r.tender.as_deref()))
    .bind(texts(&rows, |r| r.tender_sub_type.as_deref()))
    .bind(amounts(&rows, |r| r.amount))
    .bind(amounts(&rows, |r| r.change))
    .bind(amounts(&rows, |r| r.total))
    .bind(texts(&rows, |r| r.reference_number.as_deref()))
    .bind(texts(&rows, |r| r.credit_card_last_four.as_deref()))
    .bind(texts(&rows, |r| r.credit_card_expiration_date.as_deref()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_discounts(
    tx: &mut DbTransaction<'_, Postgres>,
    account: &AccountName,
    page: &[&Transaction],
) -> sqlx::Result<()> {
    let (ids, numbers, rows) = lines(page, |t| &t.discounts);
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO sonnys.transaction_discounts
            (account, transaction_id, line_no, discount_name, discount_sku, applied_to_item_name, amount, discount_code)
         SELECT $1, * FROM UNNEST($2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::numeric[], $8::text[])",
    )
    .bind(account.as_str())
    .bind(&ids)
    .bind(&numbers)
    .bind(texts(&rows, |r| r.discount_name.as_deref()))
    .bind(texts(&rows, |r| r.discount_sku.as_deref()))
    .bind(texts(&rows, |r| r.applied_to_item_name.as_deref()))
    .bind(amounts(&rows, |r| r.amount))
    .bind(texts(&rows, |r| r.discount_code.as_deref()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
