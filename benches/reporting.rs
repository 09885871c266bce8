//! Reporting at scale: loads months of synthetic transactions for a hundred
//! sites straight into a database of its own (set-based, in PostgreSQL), builds
//! the rollup, then times the KPI views the dashboards read.
//!
//! `cargo bench --bench reporting` runs the full scale (25 million transactions
//! unless `REPORTING_BENCH_TRANSACTIONS` says otherwise). Built as a test
//! (`cargo test --all-targets`) it runs a small smoke scale instead. The
//! database `sonnys_reporting_bench` on the server of `DATABASE_URL` is
//! replaced, and dropped at the end unless `REPORTING_BENCH_KEEP=1`.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Row};

use sonnys_etl::report::{self, Format, GroupBy, Kpi, ReportArgs};

const DATABASE: &str = "sonnys_reporting_bench";
const SITES: i64 = 100;
/// 2024-01-01 ..= 2024-06-30.
const DAYS: i64 = 182;
const FIRST_DAY: &str = "2024-01-01";
const FULL_SCALE: i64 = 25_000_000;
const SMOKE_SCALE: i64 = 20_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let transactions = match std::env::var("REPORTING_BENCH_TRANSACTIONS") {
        Ok(v) => v.replace('_', "").parse::<i64>()?,
        Err(_) if bench_mode => FULL_SCALE,
        Err(_) => SMOKE_SCALE,
    };
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
    let rows: i32 = sqlx::query_scalar("SELECT reporting.refresh_all()")
        .fetch_one(&pool)
        .await?;
    sqlx::query("ANALYZE reporting.daily_site_rollup")
        .execute(&pool)
        .await?;
    println!(
        "reporting.refresh_all(): {rows} rollup rows in {}",
        secs(started.elapsed())
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
    ];
    for (name, sql) in &queries {
        // The first run warms the cache; the second is the one reported.
        for _ in 0..2 {
            sqlx::query(sql).fetch_all(&pool).await?;
        }
        let started = Instant::now();
        let n = sqlx::query(sql).fetch_all(&pool).await?.len();
        let wall = started.elapsed();
        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
            .fetch_all(&pool)
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
    }

    let args = ReportArgs {
        from: NaiveDate::from_ymd_opt(2024, 3, 1).expect("valid date"),
        to: NaiveDate::from_ymd_opt(2024, 3, 31).expect("valid date"),
        by: GroupBy::Site,
        format: Format::Csv,
        accounts: vec!["acme".to_string()],
        kpis: vec![Kpi::Sales],
    };
    let started = Instant::now();
    let mut out = Vec::new();
    report::run(&pool, &args, &mut out).await?;
    println!(
        "report --by site --account acme, one month: {} lines in {:.2?}",
        out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(),
        started.elapsed()
    );

    pool.close().await;
    if std::env::var("REPORTING_BENCH_KEEP").as_deref() != Ok("1") {
        let mut conn = admin.connect().await?;
        sqlx::query(&format!("DROP DATABASE {DATABASE} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
    }
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
