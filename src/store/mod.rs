//! PostgreSQL: the product's interface. Every write is an idempotent,
//! set-based upsert keyed by the source's identity, and each page of an export
//! commits in one short database transaction — never held across a request.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, Transaction as DbTransaction};

use crate::api::model::{Rejected, Transaction};
use crate::domain::{AccountName, BusinessDay, Site, SiteCode};

pub mod lookback;
pub mod people;
pub mod runs;

/// Apply the migrations in `migrations/` (idempotent).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}

/// The version of the newest migration this build carries.
pub fn latest_migration() -> i64 {
    sqlx::migrate!("./migrations")
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Open a pool on `url` and bring its schema up to date.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    use anyhow::Context;
    let pool = crate::database::connect(url, max_connections).await?;
    migrate(&pool)
        .await
        .context("cannot apply the database migrations")?;
    Ok(pool)
}

/// What one page changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageWrite {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Records quarantined in `sonnys.rejected_records`.
    pub rejected: u64,
}

/// A running export writes its heartbeat this often…
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// …so one without a heartbeat for this long was left by a process that is
/// gone (the same rule as `reporting.sync_health.stale_days`).
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// Whether a database error is worth waiting out: the server is away,
/// restarting or overloaded, or the transaction lost a race. Anything else
/// (a constraint, a bad value) would fail again.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-03: admin shutdown, crash
            // shutdown, cannot connect now; 53300: too many connections;
            // 40001/40P01: serialization failure, deadlock.
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(code.as_ref(), "53300" | "40001" | "40P01")
        }),
        _ => false,
    }
}

/// Run a database operation, waiting out transient errors (see
/// [`is_transient`]) with exponential backoff and jitter for at most
/// `outage`. Each attempt is a whole transaction: it commits or not at all.
pub async fn ride_out<T, F, Fut>(outage: Duration, what: &str, mut op: F) -> sqlx::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<T>>,
{
    use rand::Rng;
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(value) => {
                if attempt > 0 {
                    tracing::info!(%what, attempts = attempt + 1, "the database is back");
                }
                return Ok(value);
            }
            Err(e) if is_transient(&e) && started.elapsed() + delay < outage => {
                attempt += 1;
                let jittered = delay.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
                tracing::warn!(%what, error = %e, attempt, retry_in_ms = jittered.as_millis() as u64,
                    "the database is unavailable; waiting for it");
                tokio::time::sleep(jittered).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

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

/// The business days of an account that are `done`, from `since` on, per site.
pub async fn done_days(
    pool: &PgPool,
    account: &AccountName,
    since: NaiveDate,
) -> sqlx::Result<HashMap<SiteCode, HashSet<NaiveDate>>> {
    let rows: Vec<(String, NaiveDate)> = sqlx::query_as(
        "SELECT site_code, business_date FROM sonnys.sync_days
          WHERE account = $1 AND status = 'done' AND business_date >= $2",
    )
    .bind(account.as_str())
    .bind(since)
    .fetch_all(pool)
    .await?;
    let mut done: HashMap<SiteCode, HashSet<NaiveDate>> = HashMap::new();
    for (code, date) in rows {
        if let Some(code) = SiteCode::parse(&code) {
            done.entry(code).or_default().insert(date);
        }
    }
    Ok(done)
}

/// One site's business day, as the store addresses it.
#[derive(Debug, Clone, Copy)]
pub struct SiteDay<'a> {
    pub account: &'a AccountName,
    pub site: &'a SiteCode,
    /// The zone the site's business days are counted in.
    pub timezone: Tz,
    pub date: NaiveDate,
}

/// How long a claim on a site-day holds without being renewed. The heartbeat
/// renews it every [`HEARTBEAT_EVERY`]; a claim of a process that died runs
/// out after this and the day is taken over.
pub const LEASE: Duration = Duration::from_secs(60);

/// A claim on a site-day: who exports it. Every write of the day names it,
/// and fails once another process has taken the day over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: uuid::Uuid,
    /// How long the claim holds without renewal (`sync.lease`).
    pub term: Duration,
}

impl Lease {
    /// This process's claims (one owner per process), holding for `term`.
    pub fn of_this_process(term: Duration) -> Lease {
        Lease {
            owner: Self::this_process(),
            term,
        }
    }

    /// The owner id of this process's claims: `sync_days.lease_owner` of
    /// the days it is exporting.
    pub fn this_process() -> uuid::Uuid {
        static OWNER: std::sync::OnceLock<uuid::Uuid> = std::sync::OnceLock::new();
        *OWNER.get_or_init(uuid::Uuid::new_v4)
    }

    /// How often a claim is renewed: well inside its term, so one late
    /// heartbeat never loses it.
    pub fn renew_every(&self) -> Duration {
        HEARTBEAT_EVERY.min(self.term / 4)
    }
}

/// What a claimed site-day looked like just before the claim, when it was
/// `done`: a redo (lookback, range) that is interrupted or finds it unchanged
/// puts this back, since every row of the day is still whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneBefore {
    pub transactions: i32,
    pub pages: i32,
    pub rejected: i32,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A claim on a site-day, and what the day was before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub lease: Lease,
    /// Set when the day was `done` before this claim.
    pub done_before: Option<DoneBefore>,
}

/// Claim a site-day for export: counts restart, attempts go up. `None`
/// when another process holds a claim on it that has not run out, or when
/// the day is `done` and `redo_done` is false.
pub async fn claim(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    lease: Lease,
    redo_done: bool,
) -> sqlx::Result<Option<Claim>> {
    let mut tx = pool.begin().await?;
    #[derive(sqlx::FromRow)]
    struct Before {
        status: String,
        transactions: i32,
        pages: i32,
        rejected: i32,
        finished_at: Option<chrono::DateTime<chrono::Utc>>,
    }
    let before: Option<Before> = sqlx::query_as(
        "SELECT status, transactions, pages, rejected, finished_at FROM sonnys.sync_days
              WHERE account = $1 AND site_code = $2 AND business_date = $3
                FOR UPDATE",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .fetch_optional(&mut *tx)
    .await?;
    let claimed: Option<bool> = sqlx::query_scalar(
        "INSERT INTO sonnys.sync_days AS d
                (account, site_code, business_date, status, attempts, started_at, heartbeat_at, lease_owner, lease_until)
         VALUES ($1, $2, $3, 'running', 1, now(), now(), $4::uuid, now() + make_interval(secs => $5))
         ON CONFLICT (account, site_code, business_date) DO UPDATE
            SET status = 'running', attempts = d.attempts + 1,
                transactions = 0, pages = 0, requests = 0, rejected = 0,
                started_at = now(), heartbeat_at = now(), finished_at = NULL,
                lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until
          WHERE CASE d.status
                  WHEN 'running' THEN d.lease_until IS NULL OR d.lease_until < now()
                                      OR d.lease_owner = EXCLUDED.lease_owner
                  WHEN 'done' THEN $6
                  ELSE true
                END
         RETURNING true",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .bind(lease.owner.to_string())
    .bind(lease.term.as_secs_f64())
    .bind(redo_done)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed.map(|_| Claim {
        lease,
        done_before: before.filter(|b| b.status == "done").map(|b| DoneBefore {
            transactions: b.transactions,
            pages: b.pages,
            rejected: b.rejected,
            finished_at: b.finished_at,
        }),
    }))
}

/// [`claim`], for callers that need only the lease.
pub async fn claim_day(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    lease: Lease,
    redo_done: bool,
) -> sqlx::Result<Option<Lease>> {
    Ok(claim(pool, account, site, date, lease, redo_done)
        .await?
        .map(|c| c.lease))
}

/// A site-day's status and how long its current claim still holds (zero
/// when it has run out or there is none).
pub async fn claim_state(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
) -> sqlx::Result<Option<(String, Duration)>> {
    let row: Option<(String, f64)> = sqlx::query_as(
        "SELECT status,
                coalesce(greatest(0, extract(epoch FROM lease_until - now()))::float8, 0)
           FROM sonnys.sync_days WHERE account = $1 AND site_code = $2 AND business_date = $3",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(status, left)| (status, Duration::from_secs_f64(left.max(0.0)))))
}

/// Prove that a running site-day's export is alive and renew its claim.
/// `false` when the claim is no longer ours (taken over after it ran out).
pub async fn heartbeat(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    lease: Lease,
) -> sqlx::Result<bool> {
    let renewed = sqlx::query(
        "UPDATE sonnys.sync_days
            SET heartbeat_at = now(), lease_until = now() + make_interval(secs => $5)
          WHERE account = $1 AND site_code = $2 AND business_date = $3 AND status = 'running'
            AND lease_owner = $4::uuid",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .bind(lease.owner.to_string())
    .bind(lease.term.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// How an export of a site-day ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    /// Every page committed (and, with summaries, their ids agreed).
    Done,
    /// A done day's summaries matched what is stored: not exported again.
    Unchanged,
    /// It failed with this error. A day that was `done` before its claim
    /// stays `done` with its former counts: its rows are whole.
    Failed(&'a str),
}

/// Close a site-day: `done` only when every page is committed, else `failed` with the error.
pub async fn finish_day(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    requests: u64,
    error: Option<&str>,
    lease: Lease,
) -> sqlx::Result<()> {
    let ending = error.map_or(Ending::Done, Ending::Failed);
    let claim = Claim {
        lease,
        done_before: None,
    };
    end_day(pool, account, site, date, requests, ending, &claim).await
}

/// Close a claimed site-day as `ending` says (see [`Ending`]).
pub async fn end_day(
    pool: &PgPool,
    account: &AccountName,
    site: &SiteCode,
    date: NaiveDate,
    requests: u64,
    ending: Ending<'_>,
    claim: &Claim,
) -> sqlx::Result<()> {
    let error = match ending {
        Ending::Failed(e) => Some(e),
        _ => None,
    };
    // Put the former counts back where nothing was exported anew.
    let restore = claim.done_before.filter(|_| ending != Ending::Done);
    // Only the holder of the claim closes the day: a process whose claim
    // was taken over leaves the day to its new owner.
    sqlx::query(
        "UPDATE sonnys.sync_days
            SET status = CASE WHEN $5::text IS NULL OR $7 THEN 'done' ELSE 'failed' END,
                requests = $4, last_error = $5, lease_until = NULL,
                finished_at = CASE WHEN $7 THEN $11 ELSE now() END,
                transactions = CASE WHEN $7 THEN $8 ELSE transactions END,
                pages = CASE WHEN $7 THEN $9 ELSE pages END,
                rejected = CASE WHEN $7 THEN $10 ELSE rejected END,
                checked_at = CASE WHEN $12 THEN now() ELSE checked_at END
          WHERE account = $1 AND site_code = $2 AND business_date = $3 AND lease_owner = $6::uuid",
    )
    .bind(account.as_str())
    .bind(site.as_str())
    .bind(date)
    .bind(i32::try_from(requests).unwrap_or(i32::MAX))
    .bind(error)
    .bind(claim.lease.owner.to_string())
    .bind(restore.is_some())
    .bind(restore.map_or(0, |b| b.transactions))
    .bind(restore.map_or(0, |b| b.pages))
    .bind(restore.map_or(0, |b| b.rejected))
    .bind(restore.and_then(|b| b.finished_at))
    .bind(ending == Ending::Unchanged)
    .execute(pool)
    .await?;
    Ok(())
}

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
