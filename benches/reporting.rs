//! Reporting at scale: loads synthetic data for a hundred sites straight
//! into a database of its own (set-based, in PostgreSQL) — months of
//! transactions, three years of memberships and three years of clock
//! entries — builds the rollups, then times the views the dashboards read
//! for a month of one account and of the whole chain, family by family
//! (sales, members, labour), and what the exports add to keep them current.
//!
//! `cargo bench --bench reporting` runs the full scale: 25 million
//! transactions, 300,000 members, 3,000 employees, unless
//! `REPORTING_BENCH_TRANSACTIONS`, `REPORTING_BENCH_MEMBERS` or
//! `REPORTING_BENCH_EMPLOYEES` say otherwise. Built as a test (`cargo test
//! --all-targets`) it runs a small smoke scale instead. The database
//! `sonnys_reporting_bench` on the server of `DATABASE_URL` is replaced, and
//! dropped at the end unless `REPORTING_BENCH_KEEP=1`.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Row};

use sonnys_etl::api::people::{RecurringAccount, ServedTime, StatusChange};
use sonnys_etl::domain::AccountName;
use sonnys_etl::report::{self, Format, GroupBy, Kpi, ReportArgs};
use sonnys_etl::store::people;

const DATABASE: &str = "sonnys_reporting_bench";
const SITES: i64 = 100;
/// 2024-01-01 ..= 2024-06-30.
const DAYS: i64 = 182;
const FIRST_DAY: &str = "2024-01-01";
const FULL_SCALE: i64 = 25_000_000;
const SMOKE_SCALE: i64 = 20_000;
/// Members and employees: three years, 2022-01-01 ..= 2024-12-31.
const HISTORY_FROM: &str = "2022-01-01";
const HISTORY_DAYS: i64 = 1096;
const FULL_MEMBERS: i64 = 300_000;
const SMOKE_MEMBERS: i64 = 3_000;
const FULL_EMPLOYEES: i64 = 3_000;
const SMOKE_EMPLOYEES: i64 = 30;

/// A scale from its environment variable, else the full or smoke default.
fn scale(var: &str, bench_mode: bool, full: i64, smoke: i64) -> anyhow::Result<i64> {
    Ok(match std::env::var(var) {
        Ok(v) => v.replace('_', "").parse::<i64>()?,
        Err(_) if bench_mode => full,
        Err(_) => smoke,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let transactions = scale(
        "REPORTING_BENCH_TRANSACTIONS",
        bench_mode,
        FULL_SCALE,
        SMOKE_SCALE,
    )?;
    let members = scale(
        "REPORTING_BENCH_MEMBERS",
        bench_mode,
        FULL_MEMBERS,
        SMOKE_MEMBERS,
    )?;
    let employees = scale(
        "REPORTING_BENCH_EMPLOYEES",
        bench_mode,
        FULL_EMPLOYEES,
        SMOKE_EMPLOYEES,
    )?;
    let per_site_day = (transactions / (SITES * DAYS)).max(1);
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let admin = PgConnectOptions::from_str(&base)?;

    let mut conn = admin.connect().await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;

    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(admin.clone().database(DATABASE))
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;

    println!(
        "loading {} transactions: {SITES} sites x {DAYS} days x {per_site_day} per site-day, 2 accounts",
        SITES * DAYS * per_site_day
    );
    let started = Instant::now();
    load(&pool, per_site_day).await?;
    println!("loaded in {}", secs(started.elapsed()));

    let started = Instant::now();
    let (accounts, changes) = load_members(&pool, members).await?;
    println!(
        "loaded {accounts} members and {changes} status changes ({HISTORY_DAYS} days from {HISTORY_FROM}, billed at {SITES} sites) in {}",
        secs(started.elapsed())
    );
    let started = Instant::now();
    let entries = load_labour(&pool, employees).await?;
    println!(
        "loaded {employees} employees and {entries} clock entries ({HISTORY_DAYS} days from {HISTORY_FROM}) in {}",
        secs(started.elapsed())
    );

    let started = Instant::now();
    let rows: i32 = sqlx::query_scalar("SELECT reporting.refresh_all()")
        .fetch_one(&pool)
        .await?;
    sqlx::query("ANALYZE reporting.daily_site_rollup")
        .execute(&pool)
        .await?;
    sqlx::query("ANALYZE reporting.daily_site_member_rollup")
        .execute(&pool)
        .await?;
    let member_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting.daily_site_member_rollup")
            .fetch_one(&pool)
            .await?;
    println!(
        "reporting.refresh_all(): {rows} sales rollup rows and {member_rows} member rollup rows in {}",
        secs(started.elapsed())
    );
    let started = Instant::now();
    let from_scratch: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting.members_from_scratch()")
            .fetch_one(&pool)
            .await?;
    println!(
        "reporting.members_from_scratch() (what the member views computed on every read before): {from_scratch} rows in {:.2?}",
        started.elapsed()
    );

    let month = "business_date >= '2024-03-01' AND business_date < '2024-04-01'";
    let queries = [
        (
            "daily_site_kpis, one account, one month",
            format!("SELECT * FROM reporting.daily_site_kpis WHERE account = 'acme' AND {month}"),
        ),
        (
            "daily_account_kpis, one account, one month",
            format!(
                "SELECT * FROM reporting.daily_account_kpis WHERE account = 'acme' AND {month}"
            ),
        ),
        (
            "daily_kpis, whole chain, one month",
            format!("SELECT * FROM reporting.daily_kpis WHERE {month}"),
        ),
        (
            "department_sales, one site, one month (base tables)",
            format!(
                "SELECT * FROM reporting.department_sales \
                 WHERE account = 'acme' AND site_code = 'S001' AND {month}"
            ),
        ),
        (
            "refresh_site_days, one site-day (the cost added to a page upsert)",
            "SELECT reporting.refresh_site_days('acme', ARRAY['S001'], ARRAY['2024-03-10'::date])"
                .to_string(),
        ),
        (
            "daily_site_members, one account, one month",
            format!("SELECT * FROM reporting.daily_site_members WHERE account = 'acme' AND {month}"),
        ),
        (
            "daily_account_members, one account, one month",
            format!(
                "SELECT * FROM reporting.daily_account_members WHERE account = 'acme' AND {month}"
            ),
        ),
        (
            "daily_members, whole chain, one month",
            format!("SELECT * FROM reporting.daily_members WHERE {month}"),
        ),
        (
            "monthly_account_members, one account, one month",
            "SELECT * FROM reporting.monthly_account_members WHERE account = 'acme' AND month = '2024-03-01'"
                .to_string(),
        ),
        (
            "monthly_members, whole chain, one month",
            "SELECT * FROM reporting.monthly_members WHERE month = '2024-03-01'".to_string(),
        ),
        (
            "daily_site_labour, one account, one month",
            format!("SELECT * FROM reporting.daily_site_labour WHERE account = 'acme' AND {month}"),
        ),
        (
            "daily_account_labour, one account, one month",
            format!(
                "SELECT * FROM reporting.daily_account_labour WHERE account = 'acme' AND {month}"
            ),
        ),
        (
            "daily_labour, whole chain, one month",
            format!("SELECT * FROM reporting.daily_labour WHERE {month}"),
        ),
    ];
    for (name, sql) in &queries {
        time(&pool, name, sql).await?;
    }

    for kpis in [vec![Kpi::Sales], vec![Kpi::Members], vec![Kpi::Labour]] {
        let args = ReportArgs {
            from: NaiveDate::from_ymd_opt(2024, 3, 1).expect("valid date"),
            to: NaiveDate::from_ymd_opt(2024, 3, 31).expect("valid date"),
            by: GroupBy::Site,
            format: Format::Csv,
            accounts: vec!["acme".to_string()],
            kpis: kpis.clone(),
        };
        let started = Instant::now();
        let mut out = Vec::new();
        report::run(&pool, &args, &mut out).await?;
        println!(
            "report --by site --account acme --kpis {kpis:?}, one month: {} lines in {:.2?}",
            out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(),
            started.elapsed()
        );
    }

    nightly_members(&pool, members).await?;

    pool.close().await;
    if std::env::var("REPORTING_BENCH_KEEP").as_deref() != Ok("1") {
        let mut conn = admin.connect().await?;
        sqlx::query(&format!("DROP DATABASE {DATABASE} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// Runs `sql` twice to warm the cache, once more for the round trip, then
/// under `EXPLAIN (ANALYZE, BUFFERS)`, and prints both.
async fn time(pool: &PgPool, name: &str, sql: &str) -> anyhow::Result<()> {
    for _ in 0..2 {
        sqlx::query(sql).fetch_all(pool).await?;
    }
    let started = Instant::now();
    let n = sqlx::query(sql).fetch_all(pool).await?.len();
    let wall = started.elapsed();
    let plan: Vec<String> = sqlx::query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let execution = plan
        .iter()
        .find(|l| l.starts_with("Execution Time"))
        .map_or("?", String::as_str);
    let buffers = plan
        .iter()
        .find(|l| l.trim_start().starts_with("Buffers"))
        .map_or("", |l| l.trim());
    println!("{name}: {n} rows, round trip {wall:.2?}; EXPLAIN {execution}; {buffers}");
    Ok(())
}

/// Memberships of three years, set-based: `members` accounts billed at the
/// 100 sites in turn (S000..S049 of `acme`, the rest of `bravo`), signed up
/// evenly over the three years, each with 0 to 5 status changes 1 to 4
/// months apart (payment failures and recoveries, cancellations,
/// expiries, suspensions, rejoins). Returns (accounts, changes).
async fn load_members(pool: &PgPool, members: i64) -> anyhow::Result<(i64, i64)> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO sonnys.recurring_accounts (account, id, name, sign_up_at, status_name, billing_site_code, raw)
         SELECT CASE WHEN n % 100 < 50 THEN 'acme' ELSE 'bravo' END, 'R' || n, 'Member ' || n,
                $2::date::timestamptz + ((n * 2654435761) % $3) * interval '1 day'
                    + ((n * 40503) % 86400) * interval '1 second',
                'Active', 'S' || lpad((n % 100)::text, 3, '0'), '{}'::jsonb
           FROM generate_series(0::bigint, $1 - 1) n",
    )
    .bind(members)
    .bind(NaiveDate::from_str(HISTORY_FROM)?)
    .bind(HISTORY_DAYS)
    .execute(&mut *conn)
    .await?;
    let changes = sqlx::query(
        "INSERT INTO sonnys.recurring_status_changes (account, recurring_id, status_at, new_status, old_status, raw)
         SELECT account, id, at, new_status,
                coalesce(lag(new_status) OVER (PARTITION BY id ORDER BY i), 'Active'), '{}'::jsonb
           FROM (SELECT a.account, a.id, i,
                        a.sign_up_at + (i * 60 + (substr(a.id, 2)::bigint * (i + 3) * 37) % 60) * interval '1 day'
                            + (substr(a.id, 2)::bigint % 7200) * interval '1 second' AS at,
                        (ARRAY['Payment Failed', 'Active', 'Payment Failed', 'Active', 'Declined',
                               'Cancelled', 'Expired', 'Suspended', 'Active', 'Cancelled'])
                            [1 + (substr(a.id, 2)::bigint * 31 + i * 17) % 10] AS new_status
                   FROM sonnys.recurring_accounts a
                  CROSS JOIN LATERAL generate_series(1, (substr(a.id, 2)::bigint * 7919 % 6)::int) AS i) x
          WHERE at < $1::date::timestamptz + $2 * interval '1 day'",
    )
    .bind(NaiveDate::from_str(HISTORY_FROM)?)
    .bind(HISTORY_DAYS)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE sonnys.recurring_accounts a SET status_name = c.new_status
           FROM (SELECT DISTINCT ON (recurring_id) recurring_id, new_status
                   FROM sonnys.recurring_status_changes ORDER BY recurring_id, status_at DESC) c
          WHERE c.recurring_id = a.id",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query("ANALYZE sonnys.recurring_accounts")
        .execute(&mut *conn)
        .await?;
    sqlx::query("ANALYZE sonnys.recurring_status_changes")
        .execute(&mut *conn)
        .await?;
    Ok((members, changes as i64))
}

/// Clock entries of three years, set-based: `employees` employees at the
/// 100 sites in turn, each on shift every other day (8 hours, one day in
/// three with an hour of overtime), starting at 6:00, 10:00 or 14:00 in
/// the site's zone. Returns the entries.
async fn load_labour(pool: &PgPool, employees: i64) -> anyhow::Result<i64> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO sonnys.employees (account, employee_id, first_name, last_name)
         SELECT CASE WHEN e % 100 < 50 THEN 'acme' ELSE 'bravo' END, e, 'First ' || e, 'Last ' || e
           FROM generate_series(0::bigint, $1 - 1) e",
    )
    .bind(employees)
    .execute(&mut *conn)
    .await?;
    let entries = sqlx::query(
        "INSERT INTO sonnys.clock_entries
                (account, employee_id, clock_in, clock_out, site_code, business_date, regular_rate,
                 regular_hours, overtime_eligible, overtime_rate, overtime_hours, was_modified,
                 modification_timestamp, was_created_in_back_office, raw)
         SELECT CASE WHEN e % 100 < 50 THEN 'acme' ELSE 'bravo' END, e,
                (d + time '06:00' + (e % 3) * interval '4 hours') AT TIME ZONE 'America/Chicago',
                (d + time '14:00' + (e % 3) * interval '4 hours'
                   + CASE WHEN (e + g) % 3 = 0 THEN interval '1 hour' ELSE interval '0' END) AT TIME ZONE 'America/Chicago',
                'S' || lpad((e % 100)::text, 3, '0'), d,
                14.25 + (e % 8) * 0.75, 8, true, 21.375 + (e % 8) * 1.125,
                CASE WHEN (e + g) % 3 = 0 THEN 1 ELSE 0 END,
                false, NULL, false, '{}'::jsonb
           FROM generate_series(0::bigint, $1 - 1) e
          CROSS JOIN generate_series(0, $3 - 1) g
          CROSS JOIN LATERAL (SELECT $2::date + g AS d) day
          WHERE (e + g) % 2 = 0",
    )
    .bind(employees)
    .bind(NaiveDate::from_str(HISTORY_FROM)?)
    .bind(HISTORY_DAYS as i32)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query("ANALYZE sonnys.clock_entries")
        .execute(&mut *conn)
        .await?;
    Ok(entries as i64)
}

/// The members export of one night, through the store's functions as the
/// export writes it: the day's sign-ups (a thousandth of the members, as
/// over three years; at least 100, so both accounts have some), then the
/// day's status changes (Active to Payment Failed or Cancelled) of members
/// of every age, 22 in 10,000 (about the rate of the three years loaded).
/// Each write refreshes the member rollup's days it touches, in its
/// transaction; printed with the refresh alone under EXPLAIN ANALYZE.
async fn nightly_members(pool: &PgPool, members: i64) -> anyhow::Result<()> {
    let night = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time");
    let at = |n: i64| night + chrono::Duration::seconds(n * 37 % 86_000);
    let sign_ups = (members / 1_000).max(100);
    let changed = (members * 22 / 10_000).max(1);
    for account in ["acme", "bravo"] {
        let name = AccountName::parse(account).map_err(anyhow::Error::msg)?;
        let mine = |n: &i64| (n % 100 < 50) == (account == "acme");
        let listed: Vec<RecurringAccount> = (members..members + sign_ups)
            .filter(mine)
            .map(|n| RecurringAccount {
                id: format!("R{n}"),
                name: Some(format!("Member {n}")),
                customer_id: None,
                sign_up_date: Some(ServedTime::Instant(at(n))),
                cancel_date: None,
                status: None,
                status_name: Some("Active".to_string()),
                billing_site_id: None,
                billing_site_code: Some(format!("S{:03}", n % 100)),
                raw: json!({"id": n}),
            })
            .collect();
        let started = Instant::now();
        let written =
            people::upsert_recurring_accounts(pool, &name, chrono_tz::UTC, &listed).await?;
        println!(
            "nightly members export, {account}: {} sign-ups written with their rollup refresh in {:.2?}",
            written.inserted,
            started.elapsed()
        );
        let step = (members / changed).max(1);
        let changes: Vec<StatusChange> = (0..changed)
            .map(|k| k * step)
            .filter(mine)
            .map(|n| StatusChange {
                recurring_id: format!("R{n}"),
                washbook_account_id: None,
                status_date: ServedTime::Instant(at(n)),
                old_status: Some("Active".to_string()),
                new_status: if n % 3 == 0 {
                    "Cancelled"
                } else {
                    "Payment Failed"
                }
                .to_string(),
                employee_name: Some("Billing Service".to_string()),
                site_code: None,
                raw: json!({"recurring_id": n}),
            })
            .collect();
        let started = Instant::now();
        let written = people::upsert_status_changes(pool, &name, chrono_tz::UTC, &changes).await?;
        println!(
            "nightly members export, {account}: {} status changes written with their rollup refresh in {:.2?}",
            written.inserted,
            started.elapsed()
        );
    }
    let sites: Vec<String> = (0..50).map(|s| format!("S{s:03}")).collect();
    let since: Vec<DateTime<Utc>> = sites.iter().map(|_| night).collect();
    let sql = format!(
        "SELECT reporting.refresh_member_sites('acme', ARRAY[{}], ARRAY[{}]::timestamptz[])",
        sites
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(","),
        since
            .iter()
            .map(|t| format!("'{}'", t.to_rfc3339()))
            .collect::<Vec<_>>()
            .join(",")
    );
    time(
        pool,
        "refresh_member_sites, acme's 50 sites from the night on (the refresh a nightly export adds)",
        &sql,
    )
    .await?;
    let whole = format!(
        "SELECT reporting.refresh_member_sites('acme', ARRAY[{}], ARRAY[{}]::timestamptz[])",
        sites
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(","),
        sites.iter().map(|_| "NULL").collect::<Vec<_>>().join(",")
    );
    let started = Instant::now();
    sqlx::query(&whole).execute(pool).await?;
    println!(
        "refresh_member_sites, acme's 50 sites whole (a first export's refresh, once): {:.2?}",
        started.elapsed()
    );
    println!(
        "labour: plain views over sonnys.clock_entries, nothing to refresh when the export writes"
    );
    Ok(())
}

/// Inserts `per_site_day` transactions for every site-day, site by site, each
/// with one or two items. Sites S000..S049 belong to account `acme`, the rest
/// to `bravo`. The mix per 100 transactions: 30 membership redemptions, 2 new
/// memberships and 1 upgrade, 5 free washes, 52 retail washes, 10 retail
/// without a wash; every 97th is voided; three in ten also have a merchandise item.
async fn load(pool: &PgPool, per_site_day: i64) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    // Bulk load: the generated rows are consistent, so skip the per-row
    // foreign-key triggers, and do not wait for WAL flushes.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await?;
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO sonnys.sites (account, site_id, code, name, effective_timezone)
         SELECT CASE WHEN s < 50 THEN 'acme' ELSE 'bravo' END, s,
                'S' || lpad(s::text, 3, '0'), 'Site ' || s, 'America/Chicago'
           FROM generate_series(0, $1 - 1) s",
    )
    .bind(SITES)
    .execute(&mut *conn)
    .await?;

    for site in 0..SITES {
        let started = Instant::now();
        sqlx::query(
            "WITH g AS (
                 SELECT n, n / $3 AS day, (n * 37) % 100 AS kind
                   FROM generate_series(0::bigint, $2 * $3 - 1) n
             ), tx AS (
                 INSERT INTO sonnys.transactions
                        (account, id, number, type, site_code, business_date, completed_at, total,
                         transaction_status, is_recurring_sale, is_recurring_plan_sale,
                         is_recurring_plan_redemption, raw)
                 SELECT CASE WHEN $1 < 50 THEN 'acme' ELSE 'bravo' END,
                        $1 || ':' || lpad(n::text, 9, '0'),
                        n,
                        'Sale',
                        'S' || lpad($1::text, 3, '0'),
                        $4::date + day::int,
                        ($4::date + day::int + time '07:00'
                            + (n % $3) * interval '30 seconds') AT TIME ZONE 'America/Chicago',
                        CASE WHEN kind < 30 THEN 0
                             WHEN kind < 33 THEN 39.99
                             WHEN kind < 38 THEN 0
                             WHEN kind < 90 THEN 10 + (n % 4) * 5
                             ELSE 4.50 END,
                        CASE WHEN n % 97 = 0 THEN 'Voided' ELSE 'Completed' END,
                        kind BETWEEN 30 AND 31,
                        kind BETWEEN 30 AND 32,
                        kind < 30,
                        '{}'::jsonb
                   FROM g
                 RETURNING id, total, is_recurring_plan_sale, is_recurring_plan_redemption
             )
             INSERT INTO sonnys.transaction_items
                    (account, transaction_id, line_no, name, department, quantity, gross, net,
                     discount, tax, is_voided)
             SELECT CASE WHEN $1 < 50 THEN 'acme' ELSE 'bravo' END, tx.id, line.no,
                    line.name, line.department, 1, line.amount, line.amount, 0, 0, false
               FROM tx
              CROSS JOIN LATERAL (
                    SELECT 1 AS no,
                           CASE WHEN tx.total = 4.50 THEN 'Air freshener' ELSE 'Express Wash' END AS name,
                           CASE WHEN tx.total = 4.50 THEN 'Merchandise' ELSE 'Wash' END AS department,
                           tx.total AS amount
                    UNION ALL
                    SELECT 2, 'Towel', 'Merchandise', 0
                     WHERE right(tx.id, 1) IN ('0', '3', '6')
                  ) line",
        )
        .bind(site)
        .bind(DAYS)
        .bind(per_site_day)
        .bind(FIRST_DAY)
        .execute(&mut *conn)
        .await?;
        if site % 10 == 9 {
            println!(
                "  site {site} loaded ({} for the last site)",
                secs(started.elapsed())
            );
        }
    }
    sqlx::query("ANALYZE").execute(&mut *conn).await?;
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
