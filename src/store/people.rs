//! Labour and membership records: employees, their clock entries, recurring
//! (membership) accounts and their status changes. Each write is one
//! set-based statement — one short transaction — keyed by the source's
//! identity, rewriting only rows that changed, as the transactions are.
//! A membership write also refreshes the days it touches of the member
//! rollup (`reporting.daily_site_member_rollup`), in its transaction.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use sqlx::PgPool;

use crate::api::people::{ClockEntry, Employee, QuarantinedEntry, RecurringAccount, StatusChange};
use crate::domain::states::{DayStatus, PeopleKind};
use crate::domain::AccountName;

/// What one write changed, for the caller's log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    pub updated: u64,
    /// Records identical to the stored row, left untouched.
    pub unchanged: u64,
    /// Rows removed because the export no longer has them (clock entries only).
    pub deleted: u64,
    /// Records received but not stored: clock entries whose business day
    /// lies outside the replaced days (their own days' export stores them).
    pub outside: u64,
    /// Records received that cannot be stored, kept in
    /// `sonnys.rejected_records` instead (clock entries without a clock-in).
    pub quarantined: u64,
}

/// The records with distinct keys, the later of two with one key winning
/// (as it would across pages): an upsert must not touch a row twice.
fn last_per_key<'a, T, K: Eq + Hash>(records: &'a [T], key: impl Fn(&'a T) -> K) -> Vec<&'a T> {
    let mut last: HashMap<K, usize> = HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        last.insert(key(r), i);
    }
    let mut kept: Vec<usize> = last.into_values().collect();
    kept.sort_unstable();
    kept.into_iter().map(|i| &records[i]).collect()
}

/// Counts of an upsert whose statement returns `inserted` per written row.
fn counted(received: usize, inserted_flags: &[bool]) -> Written {
    let inserted = inserted_flags.iter().filter(|i| **i).count() as u64;
    let written = inserted_flags.len() as u64;
    Written {
        inserted,
        updated: written - inserted,
        unchanged: received as u64 - written,
        ..Written::default()
    }
}

/// Record the account's employees as `/employee` lists them.
pub async fn upsert_employees(
    pool: &PgPool,
    account: &AccountName,
    employees: &[Employee],
) -> sqlx::Result<Written> {
    let rows = last_per_key(employees, |e| e.employee_id);
    let inserted: Vec<bool> = sqlx::query_scalar(
        "INSERT INTO sonnys.employees AS e (account, employee_id, first_name, last_name)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[])
         ON CONFLICT (account, employee_id) DO UPDATE
            SET first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, last_changed_at = now()
          WHERE (e.first_name, e.last_name) IS DISTINCT FROM (EXCLUDED.first_name, EXCLUDED.last_name)
         RETURNING (e.xmax = 0)",
    )
    .bind(account.as_str())
    .bind(rows.iter().map(|e| e.employee_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.first_name.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.last_name.as_deref()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    Ok(counted(rows.len(), &inserted))
}

/// Replace one employee's clock entries on the business days `days` with
/// `entries`, the export of those days: afterwards the employee's stored
/// entries on those days are exactly the exported ones. Entries have no id,
/// so an entry whose clock-in was edited arrives under a new key; replacing
/// the days as a whole removes the old row instead of keeping both.
///
/// An entry's business day is the local date of its clock-in in its site's
/// zone (`sonnys.sites`), or in `account_zone` when the site is not in the
/// site list — the zone sites without a zone of their own get, so both agree
/// until the site list says otherwise, and the next export of the days then
/// corrects it. Received entries on other days (the API's date filter is in
/// an undocumented zone, so exports ask for a day more on each side) are not
/// stored: the days they belong to are replaced by their own export.
///
/// An entry still on shift (`clock_out` `None`) is stored as given, with
/// the hours it reports; once it is closed the same key, its clock-in,
/// carries the finished entry, so the open row is updated, never doubled.
///
/// The export's `quarantined` entries (no clock-in, so no key) replace the
/// employee's quarantined entries of the same days in
/// `sonnys.rejected_records`, so a mended entry leaves no stale quarantine.
/// Such an entry's business day is the local date of its clock-out by the
/// same zone rule, else — with neither time readable — the first of `days`;
/// those on other days are left to their own days' export. Its key is
/// `clock:{employee_id}:{md5 of the raw entry}`, its site code `''` when
/// it names none.
///
/// Entries of another employee are refused: they would escape the replacement.
pub async fn replace_clock_entries(
    pool: &PgPool,
    account: &AccountName,
    account_zone: Tz,
    employee_id: i64,
    days: RangeInclusive<NaiveDate>,
    entries: &[ClockEntry],
    quarantined: &[QuarantinedEntry],
) -> sqlx::Result<Written> {
    let others = entries
        .iter()
        .map(|e| e.employee_id)
        .chain(quarantined.iter().map(|q| q.employee_id));
    if let Some(other) = others.into_iter().find(|id| *id != employee_id) {
        return Err(sqlx::Error::InvalidArgument(format!(
            "replace_clock_entries for employee {employee_id} of account {account} received an entry of employee {other}"
        )));
    }
    let rows = last_per_key(entries, |e| e.clock_in);
    macro_rules! column {
        ($f:expr) => {
            rows.iter().map($f).collect::<Vec<_>>()
        };
    }
    let (deleted, inserted, updated, kept, set_aside): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "WITH received AS (
             SELECT u.*, (u.clock_in AT TIME ZONE coalesce(z.effective_timezone, $3))::date AS business_date
               FROM UNNEST($6::timestamptz[], $7::timestamptz[], $8::text[], $9::numeric[], $10::numeric[],
                           $11::bool[], $12::numeric[], $13::numeric[], $14::bool[], $15::timestamptz[],
                           $16::bool[], $17::jsonb[])
                    AS u(clock_in, clock_out, site_code, regular_rate, regular_hours, overtime_eligible,
                         overtime_rate, overtime_hours, was_modified, modification_timestamp,
                         was_created_in_back_office, raw)
               LEFT JOIN LATERAL (SELECT s.effective_timezone FROM sonnys.sites s
                                   WHERE s.account = $1 AND s.code = u.site_code
                                   ORDER BY s.updated_at DESC LIMIT 1) z ON true
         ), kept AS (
             SELECT * FROM received WHERE business_date BETWEEN $4 AND $5
         ), deleted AS (
             DELETE FROM sonnys.clock_entries e
              WHERE e.account = $1 AND e.employee_id = $2 AND e.business_date BETWEEN $4 AND $5
                AND NOT EXISTS (SELECT 1 FROM kept k WHERE k.clock_in = e.clock_in)
             RETURNING 1
         ), upserted AS (
             INSERT INTO sonnys.clock_entries AS e
                    (account, employee_id, clock_in, clock_out, site_code, business_date, regular_rate,
                     regular_hours, overtime_eligible, overtime_rate, overtime_hours, was_modified,
                     modification_timestamp, was_created_in_back_office, raw)
             SELECT $1, $2, clock_in, clock_out, site_code, business_date, regular_rate,
                    regular_hours, overtime_eligible, overtime_rate, overtime_hours, was_modified,
                    modification_timestamp, was_created_in_back_office, raw
               FROM kept
             ON CONFLICT (account, employee_id, clock_in) DO UPDATE SET
                    clock_out = EXCLUDED.clock_out, site_code = EXCLUDED.site_code,
                    business_date = EXCLUDED.business_date, regular_rate = EXCLUDED.regular_rate,
                    regular_hours = EXCLUDED.regular_hours, overtime_eligible = EXCLUDED.overtime_eligible,
                    overtime_rate = EXCLUDED.overtime_rate, overtime_hours = EXCLUDED.overtime_hours,
                    was_modified = EXCLUDED.was_modified,
                    modification_timestamp = EXCLUDED.modification_timestamp,
                    was_created_in_back_office = EXCLUDED.was_created_in_back_office,
                    raw = EXCLUDED.raw, last_changed_at = now()
              WHERE (e.clock_out, e.site_code, e.business_date, e.regular_rate, e.regular_hours,
                     e.overtime_eligible, e.overtime_rate, e.overtime_hours, e.was_modified,
                     e.modification_timestamp, e.was_created_in_back_office, e.raw)
                    IS DISTINCT FROM
                    (EXCLUDED.clock_out, EXCLUDED.site_code, EXCLUDED.business_date, EXCLUDED.regular_rate,
                     EXCLUDED.regular_hours, EXCLUDED.overtime_eligible, EXCLUDED.overtime_rate,
                     EXCLUDED.overtime_hours, EXCLUDED.was_modified, EXCLUDED.modification_timestamp,
                     EXCLUDED.was_created_in_back_office, EXCLUDED.raw)
             RETURNING (e.xmax = 0) AS inserted
         ), set_aside AS (
             SELECT DISTINCT ON (site_code, business_date, record_key) *
               FROM (SELECT coalesce(q.site_code, '') AS site_code,
                            coalesce((q.clock_out AT TIME ZONE coalesce(z.effective_timezone, $3))::date,
                                     $4) AS business_date,
                            'clock:' || $2::text || ':' || md5(q.raw) AS record_key,
                            q.reason, q.raw
                       FROM UNNEST($18::text[], $19::timestamptz[], $20::text[], $21::text[])
                            AS q(site_code, clock_out, reason, raw)
                       LEFT JOIN LATERAL (SELECT s.effective_timezone FROM sonnys.sites s
                                           WHERE s.account = $1 AND s.code = q.site_code
                                           ORDER BY s.updated_at DESC LIMIT 1) z ON true) q
              WHERE business_date BETWEEN $4 AND $5
         ), mended AS (
             DELETE FROM sonnys.rejected_records r
              WHERE r.account = $1 AND r.record_key LIKE 'clock:' || $2::text || ':%'
                AND r.business_date BETWEEN $4 AND $5
                AND NOT EXISTS (SELECT 1 FROM set_aside a
                                 WHERE (a.site_code, a.business_date, a.record_key)
                                     = (r.site_code, r.business_date, r.record_key))
         ), quarantined AS (
             INSERT INTO sonnys.rejected_records AS r
                    (account, site_code, business_date, record_key, transaction_id, reason, raw)
             SELECT $1, site_code, business_date, record_key, NULL, reason, raw FROM set_aside
             ON CONFLICT (account, site_code, business_date, record_key) DO UPDATE
                SET reason = EXCLUDED.reason, raw = EXCLUDED.raw, last_seen_at = now()
         )
         SELECT (SELECT count(*) FROM deleted),
                (SELECT count(*) FROM upserted WHERE inserted),
                (SELECT count(*) FROM upserted WHERE NOT inserted),
                (SELECT count(*) FROM kept),
                (SELECT count(*) FROM set_aside)",
    )
    .bind(account.as_str())
    .bind(employee_id)
    .bind(account_zone.name())
    .bind(*days.start())
    .bind(*days.end())
    .bind(column!(|e| e.clock_in))
    .bind(column!(|e| e.clock_out))
    .bind(column!(|e| e.site_code.as_deref()))
    .bind(column!(|e| e.regular_rate))
    .bind(column!(|e| e.regular_hours))
    .bind(column!(|e| e.overtime_eligible))
    .bind(column!(|e| e.overtime_rate))
    .bind(column!(|e| e.overtime_hours))
    .bind(column!(|e| e.was_modified))
    .bind(column!(|e| e.modification_timestamp))
    .bind(column!(|e| e.was_created_in_back_office))
    .bind(column!(|e| &e.raw))
    .bind(quarantined.iter().map(|q| q.site_code.as_deref()).collect::<Vec<_>>())
    .bind(quarantined.iter().map(|q| q.clock_out).collect::<Vec<_>>())
    .bind(quarantined.iter().map(|q| q.reason.as_str()).collect::<Vec<_>>())
    // As text, as sonnys.rejected_records keeps every record.
    .bind(quarantined.iter().map(|q| q.raw.to_string()).collect::<Vec<_>>())
    .fetch_one(pool)
    .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let set_aside = count(set_aside);
    Ok(Written {
        inserted: count(inserted),
        updated: count(updated),
        unchanged: count(kept - inserted - updated),
        deleted: count(deleted),
        // Entries and set-aside entries on other days alike.
        outside: (rows.len() + quarantined.len()) as u64 - count(kept) - set_aside,
        quarantined: set_aside,
    })
}

/// Record membership accounts as `/recurring/account/list` reports them.
/// A sign-up or cancel date sent as a bare date is stored as its local
/// midnight in `account_zone` (see [`crate::api::people::ServedTime`]).
///
/// In the same transaction, the member rollup is refreshed for the days
/// the write touches: for every account added, or whose billing site,
/// sign-up or status changed, its billing sites (old and new) from its
/// earliest event on.
pub async fn upsert_recurring_accounts(
    pool: &PgPool,
    account: &AccountName,
    account_zone: Tz,
    accounts: &[RecurringAccount],
) -> sqlx::Result<Written> {
    let rows = last_per_key(accounts, |a| a.id.as_str());
    macro_rules! column {
        ($f:expr) => {
            rows.iter().map($f).collect::<Vec<_>>()
        };
    }
    let mut tx = pool.begin().await?;
    let written: Vec<MemberWritten> = sqlx::query_as(
            "WITH input AS (
                 SELECT * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                                      $7::int[], $8::text[], $9::bigint[], $10::text[], $11::jsonb[])
                        AS u(id, name, customer_id, sign_up_at, cancel_at, status, status_name,
                             billing_site_id, billing_site_code, raw)
             ), old AS (
                 -- the rows as they were: the statement's snapshot
                 SELECT a.id, a.billing_site_code, a.sign_up_at, a.status_name
                   FROM sonnys.recurring_accounts a
                   JOIN input i ON a.account = $1 AND a.id = i.id
             ), written AS (
                 INSERT INTO sonnys.recurring_accounts AS a
                        (account, id, name, customer_id, sign_up_at, cancel_at, status, status_name,
                         billing_site_id, billing_site_code, raw)
                 SELECT $1, * FROM input
                 ON CONFLICT (account, id) DO UPDATE SET
                        name = EXCLUDED.name, customer_id = EXCLUDED.customer_id, sign_up_at = EXCLUDED.sign_up_at,
                        cancel_at = EXCLUDED.cancel_at, status = EXCLUDED.status, status_name = EXCLUDED.status_name,
                        billing_site_id = EXCLUDED.billing_site_id, billing_site_code = EXCLUDED.billing_site_code,
                        raw = EXCLUDED.raw, last_changed_at = now()
                  WHERE (a.name, a.customer_id, a.sign_up_at, a.cancel_at, a.status, a.status_name,
                         a.billing_site_id, a.billing_site_code, a.raw)
                        IS DISTINCT FROM
                        (EXCLUDED.name, EXCLUDED.customer_id, EXCLUDED.sign_up_at, EXCLUDED.cancel_at, EXCLUDED.status,
                         EXCLUDED.status_name, EXCLUDED.billing_site_id, EXCLUDED.billing_site_code, EXCLUDED.raw)
                 RETURNING a.id, (a.xmax = 0) AS inserted, a.billing_site_code, a.sign_up_at, a.status_name
             )
             SELECT w.inserted,
                    -- what the member figures read changed
                    (o.id IS NULL
                     OR (o.billing_site_code, o.sign_up_at, o.status_name)
                        IS DISTINCT FROM (w.billing_site_code, w.sign_up_at, w.status_name)) AS touched,
                    w.billing_site_code AS site,
                    o.billing_site_code AS old_site,
                    least(w.sign_up_at, o.sign_up_at,
                          (SELECT min(c.status_at) FROM sonnys.recurring_status_changes c
                            WHERE c.account = $1 AND c.recurring_id = w.id)) AS since
               FROM written w
               LEFT JOIN old o ON o.id = w.id",
        )
        .bind(account.as_str())
        .bind(column!(|a| a.id.as_str()))
        .bind(column!(|a| a.name.as_deref()))
        .bind(column!(|a| a.customer_id.as_deref()))
        .bind(column!(|a| a.sign_up_at(account_zone)))
        .bind(column!(|a| a.cancel_at(account_zone)))
        .bind(column!(|a| a.status))
        .bind(column!(|a| a.status_name.as_deref()))
        .bind(column!(|a| a.billing_site_id))
        .bind(column!(|a| a.billing_site_code.as_deref()))
        .bind(column!(|a| &a.raw))
        .fetch_all(&mut *tx)
        .await?;
    let mut touched = MemberDays::default();
    for w in &written {
        if let (true, Some(since)) = (w.touched, w.since) {
            touched.add(w.site.as_deref(), since);
            if w.old_site != w.site {
                touched.add(w.old_site.as_deref(), since);
            }
        }
    }
    touched.refresh(&mut tx, account).await?;
    tx.commit().await?;
    let inserted: Vec<bool> = written.iter().map(|w| w.inserted).collect();
    Ok(counted(rows.len(), &inserted))
}

/// A membership account as written, with what the member rollup needs.
#[derive(sqlx::FromRow)]
struct MemberWritten {
    inserted: bool,
    /// Its billing site, sign-up or status changed (or it is new).
    touched: bool,
    site: Option<String>,
    old_site: Option<String>,
    /// The earliest of its sign-ups (old and new) and first change.
    since: Option<DateTime<Utc>>,
}

/// Record membership status changes as `/recurring/account/status-list`
/// reports them. Changes are events: a later export adds to them and
/// corrects their details, and never removes one. A `status_date` sent as
/// a bare date is stored as its local midnight in `account_zone` (see
/// [`crate::api::people::ServedTime`]).
///
/// In the same transaction, the member rollup is refreshed for the days
/// the written changes touch: each one's member at its billing site, from
/// the change's day on; from the member's sign-up day when the change is
/// dated before it (it then counts on the sign-up day), or may be its
/// first and changes its status at sign-up (a first change's `old_status`
/// is the status from the sign-up on).
pub async fn upsert_status_changes(
    pool: &PgPool,
    account: &AccountName,
    account_zone: Tz,
    changes: &[StatusChange],
) -> sqlx::Result<Written> {
    let rows = last_per_key(changes, |c| {
        (
            c.recurring_id.as_str(),
            c.status_at(account_zone),
            c.new_status.as_str(),
        )
    });
    macro_rules! column {
        ($f:expr) => {
            rows.iter().map($f).collect::<Vec<_>>()
        };
    }
    let mut tx = pool.begin().await?;
    let written: Vec<(bool, Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "WITH written AS (
             INSERT INTO sonnys.recurring_status_changes AS c
                    (account, recurring_id, status_at, new_status, old_status, washbook_account_id,
                     employee_name, site_code, raw)
             SELECT $1, * FROM UNNEST($2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                                      $7::text[], $8::text[], $9::jsonb[])
             ON CONFLICT (account, recurring_id, status_at, new_status) DO UPDATE SET
                    old_status = EXCLUDED.old_status, washbook_account_id = EXCLUDED.washbook_account_id,
                    employee_name = EXCLUDED.employee_name, site_code = EXCLUDED.site_code,
                    raw = EXCLUDED.raw, last_changed_at = now()
              WHERE (c.old_status, c.washbook_account_id, c.employee_name, c.site_code, c.raw)
                    IS DISTINCT FROM
                    (EXCLUDED.old_status, EXCLUDED.washbook_account_id, EXCLUDED.employee_name,
                     EXCLUDED.site_code, EXCLUDED.raw)
             RETURNING c.recurring_id, c.status_at, c.new_status, c.old_status, (c.xmax = 0) AS inserted
         )
         SELECT w.inserted, a.billing_site_code,
                CASE
                     -- a change of a member not in the account list counts nowhere (yet)
                     WHEN a.id IS NULL THEN NULL
                     -- a change before the sign-up counts on the sign-up day
                     WHEN w.status_at < a.sign_up_at THEN w.status_at
                     -- a member's first change decides its status at sign-up: when
                     -- that changes, so do the days from the sign-up on
                     WHEN NOT EXISTS (SELECT 1 FROM sonnys.recurring_status_changes p
                                       WHERE p.account = $1 AND p.recurring_id = w.recurring_id
                                         AND (p.status_at, p.new_status) < (w.status_at, w.new_status))
                          AND coalesce(coalesce(w.old_status, a.status_name) = 'Active', false)
                              <> coalesce(coalesce(f.old_status, a.status_name) = 'Active', false)
                     THEN least(w.status_at, a.sign_up_at)
                     -- else it changes its own day and the days after
                     ELSE w.status_at
                END
           FROM written w
           LEFT JOIN sonnys.recurring_accounts a ON a.account = $1 AND a.id = w.recurring_id
           -- the member's first change as stored before this write
           LEFT JOIN LATERAL (SELECT f.old_status FROM sonnys.recurring_status_changes f
                               WHERE f.account = $1 AND f.recurring_id = w.recurring_id
                               ORDER BY f.status_at, f.new_status
                               LIMIT 1) f ON true",
    )
    .bind(account.as_str())
    .bind(column!(|c| c.recurring_id.as_str()))
    .bind(column!(|c| c.status_at(account_zone)))
    .bind(column!(|c| c.new_status.as_str()))
    .bind(column!(|c| c.old_status.as_deref()))
    .bind(column!(|c| c.washbook_account_id.as_deref()))
    .bind(column!(|c| c.employee_name.as_deref()))
    .bind(column!(|c| c.site_code.as_deref()))
    .bind(column!(|c| &c.raw))
    .fetch_all(&mut *tx)
    .await?;
    let mut touched = MemberDays::default();
    for (_, site, since) in &written {
        if let Some(since) = since {
            touched.add(site.as_deref(), *since);
        }
    }
    touched.refresh(&mut tx, account).await?;
    tx.commit().await?;
    let inserted: Vec<bool> = written.iter().map(|w| w.0).collect();
    Ok(counted(rows.len(), &inserted))
}

/// The member rollup's days a write touched: per billing site (`None`:
/// members without one), the earliest moment from which its local days
/// are recomputed.
#[derive(Debug, Default)]
struct MemberDays {
    since: HashMap<Option<String>, DateTime<Utc>>,
}

impl MemberDays {
    fn add(&mut self, site: Option<&str>, since: DateTime<Utc>) {
        let at = self.since.entry(site.map(str::to_owned)).or_insert(since);
        *at = (*at).min(since);
    }

    /// `reporting.refresh_member_sites` for the touched sites, in the
    /// writing transaction: the rollup commits with the records.
    async fn refresh(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        account: &AccountName,
    ) -> sqlx::Result<()> {
        if self.since.is_empty() {
            return Ok(());
        }
        let (sites, since): (Vec<Option<String>>, Vec<DateTime<Utc>>) =
            self.since.into_iter().unzip();
        sqlx::query("SELECT reporting.refresh_member_sites($1, $2, $3)")
            .bind(account.as_str())
            .bind(sites)
            .bind(since)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

// ---- what the labour and membership exports covered (`sonnys.people_syncs`) ----

type Span = (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>);

/// Record that an export of `data` over `span` starts.
pub async fn begin(
    pool: &PgPool,
    account: &AccountName,
    data: PeopleKind,
    span: Span,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sonnys.people_syncs AS p (account, data, covered_from, covered_to, status)
         VALUES ($1, $2, $3, $4, 'running')
         ON CONFLICT (account, data, covered_from, covered_to) DO UPDATE
            SET status = 'running', started_at = now(), finished_at = NULL, last_error = NULL",
    )
    .bind(account.as_str())
    .bind(data)
    .bind(span.0)
    .bind(span.1)
    .execute(pool)
    .await?;
    Ok(())
}

/// How an export ended, for [`finish`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome<'a> {
    pub requests: i64,
    /// Records received.
    pub records: i64,
    /// Records quarantined in `sonnys.rejected_records`.
    pub rejected: i64,
    pub error: Option<&'a str>,
}

/// Record how an export of `data` over `span` ended.
pub async fn finish(
    pool: &PgPool,
    account: &AccountName,
    data: PeopleKind,
    span: Span,
    outcome: Outcome<'_>,
) -> sqlx::Result<()> {
    let Outcome {
        requests,
        records,
        rejected,
        error,
    } = outcome;
    sqlx::query(
        "UPDATE sonnys.people_syncs
            SET status = CASE WHEN $7::text IS NULL THEN 'done' ELSE 'failed' END,
                requests = $5, records = $6, last_error = $7, rejected = $8, finished_at = now()
          WHERE account = $1 AND data = $2 AND covered_from = $3 AND covered_to = $4",
    )
    .bind(account.as_str())
    .bind(data)
    .bind(span.0)
    .bind(span.1)
    .bind(i32::try_from(requests).unwrap_or(i32::MAX))
    .bind(i32::try_from(records).unwrap_or(i32::MAX))
    .bind(error)
    .bind(i32::try_from(rejected).unwrap_or(i32::MAX))
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether the sweep of every employee's entries is due: none done within `every`.
pub async fn sweep_due(
    pool: &PgPool,
    account: &AccountName,
    every: std::time::Duration,
) -> sqlx::Result<bool> {
    let recent: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sonnys.people_syncs
                         WHERE account = $1 AND data = $3 AND status = $4
                           AND finished_at > now() - make_interval(secs => $2))",
    )
    .bind(account.as_str())
    // An hour's slack, so a weekly sweep at a nightly run is not put off a day.
    .bind(every.as_secs_f64() - 3600.0)
    .bind(PeopleKind::LabourSweep)
    .bind(DayStatus::Done)
    .fetch_one(pool)
    .await?;
    Ok(!recent)
}

/// Employees with a clock entry since `since`, or first listed since then.
pub async fn active_employees(
    pool: &PgPool,
    account: &AccountName,
    since: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT employee_id FROM sonnys.employees WHERE account = $1 AND first_seen_at >= $2
         UNION
         SELECT DISTINCT employee_id FROM sonnys.clock_entries WHERE account = $1 AND clock_in >= $2
         ORDER BY 1",
    )
    .bind(account.as_str())
    .bind(since)
    .fetch_all(pool)
    .await
}

/// The 6-month sign-up periods from `since` to `until` not yet read.
pub async fn missing_history(
    pool: &PgPool,
    account: &AccountName,
    since: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<Vec<Span>> {
    let done: Vec<Span> = sqlx::query_as(
        "SELECT covered_from, covered_to FROM sonnys.people_syncs
          WHERE account = $1 AND data = $2 AND status = $3",
    )
    .bind(account.as_str())
    .bind(PeopleKind::MemberHistory)
    .bind(DayStatus::Done)
    .fetch_all(pool)
    .await?;
    // Periods start at `since` rounded to a day, so a `since` given as a
    // span ("3years") names the same periods night after night, and the
    // last one ends at the start of the current night's sign-ups.
    let start = since
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let end = until
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    Ok(crate::domain::days::sign_up_periods(start, end)
        .into_iter()
        .filter(|p| !done.iter().any(|d| d.0 <= p.0 && d.1 >= p.1))
        .collect())
}

/// Up to when status changes were last read completely.
pub async fn changes_covered_to(
    pool: &PgPool,
    account: &AccountName,
) -> sqlx::Result<Option<chrono::DateTime<chrono::Utc>>> {
    sqlx::query_scalar(
        "SELECT max(covered_to) FROM sonnys.people_syncs
          WHERE account = $1 AND data = $2 AND status = $3",
    )
    .bind(account.as_str())
    .bind(PeopleKind::MemberChanges)
    .bind(DayStatus::Done)
    .fetch_one(pool)
    .await
}
