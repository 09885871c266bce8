//! Consolidated reporting: the KPI views, the rollup that keeps them fast, the
//! read-only role and the `report` command, on hand-built transactions whose
//! figures are worked out by hand below.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{ConnectOptions, Connection, PgPool, Row};

use sonnys_etl::report::{self, Format, GroupBy, Kpi, ReportArgs};

/// A new, migrated database for one test (to be replaced by the shared harness).
async fn fresh_db() -> PgPool {
    crate::support::test_db().await.pool
}

/// Two accounts, three sites, two business days. 2024-03-10 is the day US
/// clocks spring forward (a 23-hour day): N1's last transaction completes at
/// 23:30 CDT, already 2024-03-11 in UTC, and still belongs to 2024-03-10.
///
/// north / N1 / 2024-03-10
///   T1 retail wash             15.00   Wash 15.00 (tax 1.00)
///   T2 membership redemption    0.00   Wash 0
///   T3 new membership          39.99   Recurring Plan 29.99 + Wash 10.00
///   T4 plan upgrade            10.00   Recurring Plan 10.00 (plan sale, not a recurring sale, no wash)
///   T5 free wash                0.00   WASH gross 15.00, discount 15.00 (department in capitals)
///   T6 VOIDED retail wash      20.00   counts nowhere
///   T7 voided wash item         5.00   Wash 12.00 voided + Merchandise 5.00: not a wash
///   T8 retail wash, NULL flags 12.50   Wash 10.00 + Merchandise 2.50, 23:30 CDT
/// north / N1 / 2024-03-11
///   V1 membership redemption    0.00   Wash 0
///   V2 retail wash             15.00   Wash 15.00
/// north / N2 / 2024-03-10
///   U1 retail wash             20.00   Wash 20.00
///   U2 new membership          29.99   Recurring Plan 29.99 (no wash)
/// south / S1 / 2024-03-10
///   W1 retail wash             18.00   Wash 18.00
///   W2 free wash                0.00   Wash 0
///   W3 membership redemption    0.00   Wash 0
const FIXTURE: &str = r#"
INSERT INTO sonnys.sites (account, site_id, code, name, timezone, effective_timezone) VALUES
  ('north', 1, 'N1', 'North, Main St', 'America/Chicago', 'America/Chicago'),
  ('north', 2, 'N2', 'North "Two"', NULL, 'America/Chicago'),
  ('north', 3, '', 'Web shop', NULL, 'America/Chicago'),
  ('south', 1, 'S1', 'South One', 'America/New_York', 'America/New_York');

INSERT INTO sonnys.transactions
  (account, id, site_code, business_date, completed_at, total, transaction_status,
   is_recurring_sale, is_recurring_plan_sale, is_recurring_plan_redemption, raw) VALUES
  ('north', 'T1', 'N1', '2024-03-10', '2024-03-10 01:30-06', 15.00, 'Completed', false, false, false, '{}'),
  ('north', 'T2', 'N1', '2024-03-10', '2024-03-10 01:45-06', 0.00, 'Completed', false, false, true, '{}'),
  ('north', 'T3', 'N1', '2024-03-10', '2024-03-10 03:15-05', 39.99, 'Completed', true, true, false, '{}'),
  ('north', 'T4', 'N1', '2024-03-10', '2024-03-10 09:00-05', 10.00, 'Completed', false, true, false, '{}'),
  ('north', 'T5', 'N1', '2024-03-10', '2024-03-10 10:00-05', 0.00, 'Completed', false, false, false, '{}'),
  ('north', 'T6', 'N1', '2024-03-10', '2024-03-10 11:00-05', 20.00, 'Voided', false, false, false, '{}'),
  ('north', 'T7', 'N1', '2024-03-10', '2024-03-10 12:00-05', 5.00, 'Completed', false, false, false, '{}'),
  ('north', 'T8', 'N1', '2024-03-10', '2024-03-10 23:30-05', 12.50, NULL, NULL, NULL, NULL, '{}'),
  ('north', 'V1', 'N1', '2024-03-11', '2024-03-11 08:00-05', 0.00, 'Completed', false, false, true, '{}'),
  ('north', 'V2', 'N1', '2024-03-11', '2024-03-11 09:00-05', 15.00, 'Completed', false, false, false, '{}'),
  ('north', 'U1', 'N2', '2024-03-10', '2024-03-10 08:00-05', 20.00, 'Completed', false, false, false, '{}'),
  ('north', 'U2', 'N2', '2024-03-10', '2024-03-10 09:00-05', 29.99, 'Completed', true, true, false, '{}'),
  ('south', 'W1', 'S1', '2024-03-10', '2024-03-10 08:00-04', 18.00, 'Completed', false, false, false, '{}'),
  ('south', 'W2', 'S1', '2024-03-10', '2024-03-10 09:00-04', 0.00, 'Completed', false, false, false, '{}'),
  ('south', 'W3', 'S1', '2024-03-10', '2024-03-10 10:00-04', 0.00, 'Completed', false, false, true, '{}');

INSERT INTO sonnys.transaction_items
  (account, transaction_id, line_no, name, department, quantity, gross, net, discount, tax, is_voided) VALUES
  ('north', 'T1', 1, 'Ultimate', 'Wash', 1, 15.00, 15.00, 0.00, 1.00, false),
  ('north', 'T2', 1, 'Ultimate', 'Wash', 1, 0.00, 0.00, 0.00, 0.00, false),
  ('north', 'T3', 1, 'Unlimited', 'Recurring Plan', 1, 29.99, 29.99, 0.00, 0.00, false),
  ('north', 'T3', 2, 'Ultimate', 'Wash', 1, 10.00, 10.00, 0.00, 0.00, NULL),
  ('north', 'T4', 1, 'Upgrade', 'Recurring Plan', 1, 10.00, 10.00, 0.00, 0.00, false),
  ('north', 'T5', 1, 'Ultimate', 'WASH', 1, 15.00, 0.00, 15.00, 0.00, false),
  ('north', 'T6', 1, 'Ultimate', 'Wash', 1, 20.00, 20.00, 0.00, 0.00, false),
  ('north', 'T7', 1, 'Ultimate', 'Wash', 1, 12.00, 12.00, 0.00, 0.00, true),
  ('north', 'T7', 2, 'Towel', 'Merchandise', 1, 5.00, 5.00, 0.00, 0.00, false),
  ('north', 'T8', 1, 'Basic', 'Wash', 1, 10.00, 10.00, 0.00, 0.00, false),
  ('north', 'T8', 2, 'Air freshener', 'Merchandise', 1, 2.50, 2.50, 0.00, 0.00, false),
  ('north', 'V1', 1, 'Ultimate', 'Wash', 1, 0.00, 0.00, 0.00, 0.00, false),
  ('north', 'V2', 1, 'Ultimate', 'Wash', 1, 15.00, 15.00, 0.00, 0.00, false),
  ('north', 'U1', 1, 'Ultimate', 'Wash', 1, 20.00, 20.00, 0.00, 0.00, false),
  ('north', 'U2', 1, 'Unlimited', 'Recurring Plan', 1, 29.99, 29.99, 0.00, 0.00, false),
  ('south', 'W1', 1, 'Ultimate', 'Wash', 1, 18.00, 18.00, 0.00, 0.00, false),
  ('south', 'W2', 1, 'Ultimate', 'Wash', 1, 18.00, 0.00, 18.00, 0.00, false),
  ('south', 'W3', 1, 'Ultimate', 'Wash', 1, 0.00, 0.00, 0.00, 0.00, false);

INSERT INTO sonnys.transaction_tenders
  (account, transaction_id, line_no, tender, tender_sub_type, amount, change, total) VALUES
  ('north', 'T1', 1, 'Cash', NULL, 20.00, 5.00, 15.00),
  ('north', 'T3', 1, 'Credit', 'Visa', 39.99, 0.00, 39.99),
  ('north', 'T6', 1, 'Cash', NULL, 20.00, 0.00, 20.00),
  ('north', 'T8', 1, 'Credit', 'Visa', 12.50, 0.00, 12.50);
"#;

/// Loads [`FIXTURE`] and refreshes its site-days the way the export does, one
/// call per account (a repeated pair and a day without transactions included).
pub(crate) async fn fixture_db() -> PgPool {
    let pool = fresh_db().await;
    sqlx::raw_sql(FIXTURE)
        .execute(&pool)
        .await
        .expect("fixture loads");
    refresh(
        &pool,
        "north",
        &[
            ("N1", "2024-03-10"),
            ("N1", "2024-03-11"),
            ("N2", "2024-03-10"),
            ("N1", "2024-03-10"),
            ("N2", "2024-03-12"),
        ],
    )
    .await;
    refresh(&pool, "south", &[("S1", "2024-03-10")]).await;
    pool
}

async fn refresh(pool: &PgPool, account: &str, keys: &[(&str, &str)]) {
    let sites: Vec<String> = keys.iter().map(|(s, _)| s.to_string()).collect();
    let dates: Vec<NaiveDate> = keys.iter().map(|(_, d)| date(d)).collect();
    sqlx::query("SELECT reporting.refresh_site_days($1, $2, $3)")
        .bind(account)
        .bind(&sites)
        .bind(&dates)
        .execute(pool)
        .await
        .expect("refresh_site_days");
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).expect("valid date")
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("valid decimal")
}

/// The KPI columns every daily view shares, in the brief's order.
#[derive(Debug, PartialEq, Eq)]
struct Kpis {
    transactions: i64,
    total_sales: Decimal,
    retail_sales: Decimal,
    membership_sales: Decimal,
    member_washes: i64,
    retail_washes: i64,
    free_washes: i64,
    eligible_washes: i64,
    new_memberships: i64,
    conversion_rate: Decimal,
}

#[allow(clippy::too_many_arguments)]
fn kpis(
    transactions: i64,
    total_sales: &str,
    retail_sales: &str,
    membership_sales: &str,
    member_washes: i64,
    retail_washes: i64,
    free_washes: i64,
    eligible_washes: i64,
    new_memberships: i64,
    conversion_rate: &str,
) -> Kpis {
    Kpis {
        transactions,
        total_sales: d(total_sales),
        retail_sales: d(retail_sales),
        membership_sales: d(membership_sales),
        member_washes,
        retail_washes,
        free_washes,
        eligible_washes,
        new_memberships,
        conversion_rate: d(conversion_rate),
    }
}

const KPI_SELECT: &str = "transactions::bigint, total_sales, retail_sales, membership_sales, \
     member_washes::bigint, retail_washes::bigint, free_washes::bigint, eligible_washes::bigint, \
     new_memberships::bigint, conversion_rate";

/// Rows of a daily view: the `keys` columns as text, then the KPIs.
async fn view_rows(pool: &PgPool, view: &str, keys: &str) -> Vec<(Vec<Option<String>>, Kpis)> {
    let key_count = keys.split(',').count();
    let sql = format!("SELECT {keys}, {KPI_SELECT} FROM reporting.{view} ORDER BY {keys}");
    sqlx::query(&sql)
        .fetch_all(pool)
        .await
        .expect("view reads")
        .iter()
        .map(|r| {
            let k = (0..key_count)
                .map(|i| r.get::<Option<String>, _>(i))
                .collect();
            let n = key_count;
            let kpi = Kpis {
                transactions: r.get(n),
                total_sales: r.get(n + 1),
                retail_sales: r.get(n + 2),
                membership_sales: r.get(n + 3),
                member_washes: r.get(n + 4),
                retail_washes: r.get(n + 5),
                free_washes: r.get(n + 6),
                eligible_washes: r.get(n + 7),
                new_memberships: r.get(n + 8),
                conversion_rate: r.get(n + 9),
            };
            (k, kpi)
        })
        .collect()
}

fn key(parts: &[&str]) -> Vec<Option<String>> {
    parts.iter().map(|p| Some(p.to_string())).collect()
}

#[tokio::test]
async fn daily_site_kpis_follow_the_business_definitions() {
    let pool = fixture_db().await;
    let rows = view_rows(
        &pool,
        "daily_site_kpis",
        "business_date::text, account, site_code, site_name",
    )
    .await;
    assert_eq!(
        rows,
        vec![
            // N1 2024-03-10: counted T1 T2 T3 T4 T5 T7 T8 (T6 voided) = 7.
            // total = all but the redemption T2: 15.00+39.99+10.00+0+5.00+12.50 = 82.49
            // membership = plan sales T3+T4 = 49.99; retail = 82.49-49.99 = 32.50
            // washes: T2 member; T1, T5 (WASH), T8 retail; T3 plan-sale wash;
            //   T4 has no wash item, T7's wash item is voided.
            // member 1, retail 3, free 1 (T5), total washes 5, eligible 5-1-1 = 3
            // new memberships: T3 only (T4 is an upgrade) = 1; rate 1/3
            (
                key(&["2024-03-10", "north", "N1", "North, Main St"]),
                kpis(7, "82.49", "32.50", "49.99", 1, 3, 1, 3, 1, "0.333333")
            ),
            // N2: U1 retail wash 20.00, U2 new membership 29.99 without a wash.
            // total 49.99, membership 29.99, retail 20.00; eligible 1; rate 1/1
            (
                key(&["2024-03-10", "north", "N2", "North \"Two\""]),
                kpis(2, "49.99", "20.00", "29.99", 0, 1, 0, 1, 1, "1")
            ),
            // S1: W1 retail 18.00, W2 free, W3 redemption. eligible 3-1-1 = 1, no sign-up.
            (
                key(&["2024-03-10", "south", "S1", "South One"]),
                kpis(3, "18.00", "18.00", "0", 1, 2, 1, 1, 0, "0")
            ),
            // N1 2024-03-11: V1 redemption, V2 retail 15.00. eligible 1, rate 0/1.
            (
                key(&["2024-03-11", "north", "N1", "North, Main St"]),
                kpis(2, "15.00", "15.00", "0", 1, 1, 0, 1, 0, "0")
            ),
        ]
    );
}

#[tokio::test]
async fn account_and_chain_views_sum_sites_and_recompute_the_rate() {
    let pool = fixture_db().await;
    let accounts = view_rows(&pool, "daily_account_kpis", "business_date::text, account").await;
    assert_eq!(
        accounts,
        vec![
            // north 03-10 = N1 + N2: 9 tx, 82.49+49.99 = 132.48, membership 79.98,
            // retail 52.50, member 1, retail washes 4, free 1, eligible 4, new 2,
            // rate 2/4 = 0.5 (averaging the sites' rates would say 0.666667).
            (
                key(&["2024-03-10", "north"]),
                kpis(9, "132.48", "52.50", "79.98", 1, 4, 1, 4, 2, "0.5")
            ),
            (
                key(&["2024-03-10", "south"]),
                kpis(3, "18.00", "18.00", "0", 1, 2, 1, 1, 0, "0")
            ),
            (
                key(&["2024-03-11", "north"]),
                kpis(2, "15.00", "15.00", "0", 1, 1, 0, 1, 0, "0")
            ),
        ]
    );
    let chain = view_rows(&pool, "daily_kpis", "business_date::text").await;
    assert_eq!(
        chain,
        vec![
            // 03-10 = north + south: 12 tx, 150.48, membership 79.98, retail 70.50,
            // member 2, retail washes 6, free 2, eligible 5, new 2, rate 2/5.
            (
                key(&["2024-03-10"]),
                kpis(12, "150.48", "70.50", "79.98", 2, 6, 2, 5, 2, "0.4")
            ),
            (
                key(&["2024-03-11"]),
                kpis(2, "15.00", "15.00", "0", 1, 1, 0, 1, 0, "0")
            ),
        ]
    );
}

#[tokio::test]
async fn tender_mix_and_department_sales_leave_out_voids() {
    let pool = fixture_db().await;
    let tenders: Vec<(String, Option<String>, i64, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT tender, tender_sub_type, transactions, amount, change, total
           FROM reporting.tender_mix
          WHERE account = 'north' AND site_code = 'N1' AND business_date = '2024-03-10'
          ORDER BY tender",
    )
    .fetch_all(&pool)
    .await
    .expect("tender_mix reads");
    // T6's cash is voided; T3 + T8 paid by Visa: 39.99 + 12.50.
    assert_eq!(
        tenders,
        vec![
            ("Cash".into(), None, 1, d("20.00"), d("5.00"), d("15.00")),
            (
                "Credit".into(),
                Some("Visa".into()),
                2,
                d("52.49"),
                d("0"),
                d("52.49")
            ),
        ]
    );

    let departments: Vec<(String, Decimal, Decimal, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT department, quantity, gross, net, discount, tax
               FROM reporting.department_sales
              WHERE account = 'north' AND site_code = 'N1' AND business_date = '2024-03-10'
              ORDER BY department",
    )
    .fetch_all(&pool)
    .await
    .expect("department_sales reads");
    assert_eq!(
        departments,
        vec![
            // T7 5.00 + T8 2.50
            (
                "Merchandise".into(),
                d("2"),
                d("7.50"),
                d("7.50"),
                d("0"),
                d("0")
            ),
            // T3 29.99 + T4 10.00
            (
                "Recurring Plan".into(),
                d("2"),
                d("39.99"),
                d("39.99"),
                d("0"),
                d("0")
            ),
            // T5, as the source spells its department
            (
                "WASH".into(),
                d("1"),
                d("15.00"),
                d("0.00"),
                d("15.00"),
                d("0")
            ),
            // T1 15.00 (tax 1.00) + T2 0 + T3 10.00 + T8 10.00; T6 voided, T7's item voided
            (
                "Wash".into(),
                d("4"),
                d("35.00"),
                d("35.00"),
                d("0"),
                d("1.00")
            ),
        ]
    );
}

#[tokio::test]
async fn voiding_a_transaction_changes_the_kpis_once_its_day_is_refreshed() {
    let pool = fixture_db().await;
    sqlx::query("UPDATE sonnys.transactions SET transaction_status = 'Voided' WHERE account = 'north' AND id IN ('T3', 'V1', 'V2')")
        .execute(&pool)
        .await
        .expect("void");
    refresh(
        &pool,
        "north",
        &[("N1", "2024-03-10"), ("N1", "2024-03-11")],
    )
    .await;

    let rows = view_rows(&pool, "daily_site_kpis", "business_date::text, site_code").await;
    assert_eq!(
        rows,
        vec![
            // N1 03-10 without T3: 6 tx, 82.49-39.99 = 42.50, membership 10.00 (T4),
            // retail 32.50; washes T2 member, T1 T5 T8 retail: eligible 4-1-1 = 2; no sign-up.
            (
                key(&["2024-03-10", "N1"]),
                kpis(6, "42.50", "32.50", "10.00", 1, 3, 1, 2, 0, "0")
            ),
            (
                key(&["2024-03-10", "N2"]),
                kpis(2, "49.99", "20.00", "29.99", 0, 1, 0, 1, 1, "1")
            ),
            (
                key(&["2024-03-10", "S1"]),
                kpis(3, "18.00", "18.00", "0", 1, 2, 1, 1, 0, "0")
            ),
            // N1 03-11: every transaction voided, so the day has no row any more.
        ]
    );

    // Rebuilding from scratch agrees with the incremental refreshes.
    let before: Vec<String> = rollup_text(&pool).await;
    sqlx::query("SELECT reporting.refresh_all()")
        .execute(&pool)
        .await
        .expect("refresh_all");
    assert_eq!(rollup_text(&pool).await, before);
}

async fn rollup_text(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT (account, site_code, business_date, transactions, total_sales, membership_sales,
                 member_washes, retail_washes, plan_sale_washes, free_washes, new_memberships)::text
           FROM reporting.daily_site_rollup ORDER BY account, site_code, business_date",
    )
    .fetch_all(pool)
    .await
    .expect("rollup reads")
}

#[tokio::test]
async fn refresh_rejects_arrays_of_different_lengths() {
    let pool = fresh_db().await;
    let err = sqlx::query(
        "SELECT reporting.refresh_site_days('north', ARRAY['N1', 'N2'], ARRAY['2024-03-10'::date])",
    )
    .execute(&pool)
    .await
    .expect_err("mismatched arrays are refused");
    assert!(err.to_string().contains("parallel arrays"), "{err}");
}

fn report_args(by: GroupBy, format: Format, accounts: &[&str]) -> ReportArgs {
    ReportArgs {
        from: date("2024-03-10"),
        to: date("2024-03-11"),
        by,
        format,
        accounts: accounts.iter().map(|a| a.to_string()).collect(),
        kpis: vec![Kpi::Sales],
    }
}

async fn report_text(pool: &PgPool, args: &ReportArgs) -> String {
    let mut out = Vec::new();
    report::run(pool, args, &mut out)
        .await
        .expect("report runs");
    String::from_utf8(out).expect("report is UTF-8")
}

/// Splits CSV text into records (RFC 4180 quoting).
pub(crate) fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (c, _) => field.push(c),
        }
    }
    records
}

#[tokio::test]
async fn report_by_site_as_csv_sums_the_range_with_a_totals_row() {
    let pool = fixture_db().await;
    let csv = parse_csv(&report_text(&pool, &report_args(GroupBy::Site, Format::Csv, &[])).await);
    let expected: Vec<Vec<&str>> = vec![
        vec![
            "account",
            "site_code",
            "site_name",
            "transactions",
            "total_sales",
            "retail_sales",
            "membership_sales",
            "member_washes",
            "retail_washes",
            "free_washes",
            "eligible_washes",
            "new_memberships",
            "conversion_rate",
            "is_total",
        ],
        // N1 over both days: 7+2 tx, 82.49+15.00, member 1+1, retail 3+1, free 1,
        // eligible 3+1 = 4, new 1: rate 1/4
        vec![
            "north",
            "N1",
            "North, Main St",
            "9",
            "97.49",
            "47.50",
            "49.99",
            "2",
            "4",
            "1",
            "4",
            "1",
            "0.250000",
            "false",
        ],
        vec![
            "north",
            "N2",
            "North \"Two\"",
            "2",
            "49.99",
            "20.00",
            "29.99",
            "0",
            "1",
            "0",
            "1",
            "1",
            "1.000000",
            "false",
        ],
        vec![
            "south",
            "S1",
            "South One",
            "3",
            "18.00",
            "18.00",
            "0",
            "1",
            "2",
            "1",
            "1",
            "0",
            "0.000000",
            "false",
        ],
        // 14 tx, 97.49+49.99+18.00 = 165.48, membership 79.98, retail 85.50,
        // member 3, retail 7, free 2, eligible 6, new 2: rate 2/6
        vec![
            "", "", "", "14", "165.48", "85.50", "79.98", "3", "7", "2", "6", "2", "0.333333",
            "true",
        ],
    ];
    assert_eq!(csv, expected);
}

#[tokio::test]
async fn report_by_day_matches_the_chain_view() {
    let pool = fixture_db().await;
    let csv = parse_csv(&report_text(&pool, &report_args(GroupBy::Day, Format::Csv, &[])).await);
    // Same days, same figures (compared as numbers), and a totals row.
    let chain = view_rows(&pool, "daily_kpis", "business_date::text").await;
    assert_eq!(csv[0][0], "business_date");
    assert_eq!(csv.len(), chain.len() + 2);
    for (cells, (keys, kpis)) in csv[1..].iter().zip(&chain) {
        assert_eq!(Some(cells[0].clone()), keys[0]);
        let number = |i: usize| d(&cells[i]);
        let count = |i: usize| cells[i].parse::<i64>().expect("count");
        let from_csv = Kpis {
            transactions: count(1),
            total_sales: number(2),
            retail_sales: number(3),
            membership_sales: number(4),
            member_washes: count(5),
            retail_washes: count(6),
            free_washes: count(7),
            eligible_washes: count(8),
            new_memberships: count(9),
            conversion_rate: number(10),
        };
        assert_eq!(&from_csv, kpis);
        assert_eq!(cells[11], "false");
    }
    assert_eq!(
        csv[3],
        ["", "14", "165.48", "85.50", "79.98", "3", "7", "2", "6", "2", "0.333333", "true"]
    );
}

#[tokio::test]
async fn report_by_account_as_json_keeps_money_exact() {
    let pool = fixture_db().await;
    let text = report_text(&pool, &report_args(GroupBy::Account, Format::Json, &[])).await;
    let json: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
    assert_eq!(
        json,
        serde_json::json!([
            // north: N1 + N2 over both days: 11 tx, 97.49+49.99 = 147.48, membership
            // 79.98, retail 67.50, member 2, retail 5, free 1, eligible 5, new 2: 2/5
            {"account": "north", "transactions": 11, "total_sales": "147.48", "retail_sales": "67.50",
             "membership_sales": "79.98", "member_washes": 2, "retail_washes": 5, "free_washes": 1,
             "eligible_washes": 5, "new_memberships": 2, "conversion_rate": "0.400000", "is_total": false},
            {"account": "south", "transactions": 3, "total_sales": "18.00", "retail_sales": "18.00",
             "membership_sales": "0", "member_washes": 1, "retail_washes": 2, "free_washes": 1,
             "eligible_washes": 1, "new_memberships": 0, "conversion_rate": "0.000000", "is_total": false},
            {"account": null, "transactions": 14, "total_sales": "165.48", "retail_sales": "85.50",
             "membership_sales": "79.98", "member_washes": 3, "retail_washes": 7, "free_washes": 2,
             "eligible_washes": 6, "new_memberships": 2, "conversion_rate": "0.333333", "is_total": true},
        ])
    );
}

#[tokio::test]
async fn report_for_one_account_and_as_a_table() {
    let pool = fixture_db().await;
    let text = report_text(&pool, &report_args(GroupBy::Day, Format::Table, &["south"])).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("business_date  transactions  total_sales"),
        "{text}"
    );
    assert!(lines[2].starts_with("2024-03-10"), "{text}");
    assert!(lines[2].ends_with("0.000000"), "{text}");
    assert!(lines[4].starts_with("TOTAL "), "{text}");
    // Columns line up: every line is as wide as the header.
    assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{text}");
}

#[tokio::test]
async fn report_refuses_a_range_that_ends_before_it_starts() {
    let pool = fresh_db().await;
    let mut args = report_args(GroupBy::Site, Format::Table, &[]);
    args.from = date("2024-03-12");
    let err = report::run(&pool, &args, &mut Vec::new())
        .await
        .expect_err("from > to is an error");
    assert!(
        err.to_string()
            .contains("--from 2024-03-12 is after --to 2024-03-11"),
        "{err}"
    );
}

/// account, site_code, site_name, missing_days, failed_days, last_error, whether
/// the last complete day is yesterday, whether last_synced_at is the expected time.
type HealthRow = (
    String,
    String,
    Option<String>,
    Option<i32>,
    i32,
    Option<String>,
    bool,
    bool,
);

#[tokio::test]
async fn sync_health_tells_stale_sites_from_slow_days() {
    let pool = fresh_db().await;
    sqlx::raw_sql(FIXTURE)
        .execute(&pool)
        .await
        .expect("fixture loads");
    // N1: done from 6 days ago to yesterday except 3 days ago (failed, then
    // retried and failed again). S1: nothing yet. X9: only in sync_days.
    sqlx::raw_sql(
        "WITH y AS (SELECT (now() AT TIME ZONE 'America/Chicago')::date - 1 AS d)
         INSERT INTO sonnys.sync_days (account, site_code, business_date, status, last_error, started_at, finished_at)
         SELECT 'north', 'N1', y.d - k,
                CASE WHEN k = 2 THEN 'failed' ELSE 'done' END,
                CASE WHEN k = 2 THEN 'HTTP 503 from get-job-data' END,
                '2024-01-01 00:00Z'::timestamptz + k * interval '1 hour',
                '2024-01-01 00:30Z'::timestamptz - k * interval '1 minute'
           FROM y, generate_series(0, 5) k;
         INSERT INTO sonnys.sync_days (account, site_code, business_date, status)
         VALUES ('north', 'X9', '2024-03-10', 'running');",
    )
    .execute(&pool)
    .await
    .expect("sync_days load");

    let rows: Vec<HealthRow> =
        sqlx::query_as(
            "SELECT account, site_code, site_name, missing_days, failed_days, last_error,
                    coalesce(last_complete_business_date = (now() AT TIME ZONE 'America/Chicago')::date - 1, false),
                    coalesce(last_synced_at = '2024-01-01 00:30Z', false)
               FROM reporting.sync_health ORDER BY account, site_code",
        )
        .fetch_all(&pool)
        .await
        .expect("sync_health reads");
    assert_eq!(
        rows,
        vec![
            (
                "north".into(),
                "N1".into(),
                Some("North, Main St".into()),
                Some(1),
                1,
                Some("HTTP 503 from get-job-data".into()),
                true,
                true
            ),
            // The site with an empty code (an e-commerce site) is not listed.
            (
                "north".into(),
                "N2".into(),
                Some("North \"Two\"".into()),
                None,
                0,
                None,
                false,
                false
            ),
            (
                "north".into(),
                "X9".into(),
                None,
                None,
                0,
                None,
                false,
                false
            ),
            (
                "south".into(),
                "S1".into(),
                Some("South One".into()),
                None,
                0,
                None,
                false,
                false
            ),
        ]
    );
}

#[tokio::test]
async fn the_reader_role_sees_reporting_but_not_the_raw_tables() {
    let pool = fixture_db().await;
    let login = format!("report_reader_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE ROLE {login} LOGIN IN ROLE sonnys_reader"))
        .execute(&pool)
        .await
        .expect("create login role");

    let mut reader = (*pool.connect_options())
        .clone()
        .username(&login)
        .connect()
        .await
        .expect("reader connects");

    for view in [
        "daily_site_kpis",
        "daily_account_kpis",
        "daily_kpis",
        "tender_mix",
        "department_sales",
        "sync_health",
        "transaction_facts",
        "daily_site_rollup",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM reporting.{view}"))
            .fetch_one(&mut reader)
            .await
            .unwrap_or_else(|e| panic!("reader reads reporting.{view}: {e}"));
        assert!(n > 0, "reporting.{view} is empty for the reader");
    }
    for denied in [
        "SELECT count(*) FROM sonnys.transactions",
        "SELECT reporting.refresh_all()",
    ] {
        let err = sqlx::query(denied)
            .execute(&mut reader)
            .await
            .expect_err("reader is refused");
        assert!(
            err.to_string().contains("permission denied"),
            "{denied}: {err}"
        );
    }

    reader.close().await.ok();
    sqlx::query(&format!("DROP OWNED BY {login}"))
        .execute(&pool)
        .await
        .expect("drop what the login role owns");
    sqlx::query(&format!("DROP ROLE {login}"))
        .execute(&pool)
        .await
        .expect("drop login role");
}

#[derive(clap::Parser, Debug)]
struct Cli {
    #[command(flatten)]
    report: ReportArgs,
}

#[test]
fn report_flags_parse_and_are_documented() {
    use clap::{CommandFactory, Parser};
    Cli::command().debug_assert();
    let cli = Cli::try_parse_from([
        "report",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-31",
        "--by",
        "account",
        "--format",
        "json",
        "--account",
        "north",
        "--account",
        "south",
    ])
    .expect("flags parse");
    assert_eq!(cli.report.by, GroupBy::Account);
    assert_eq!(cli.report.format, Format::Json);
    assert_eq!(cli.report.accounts, ["north", "south"]);

    let defaults = Cli::try_parse_from(["report", "--from", "2024-03-01", "--to", "2024-03-31"])
        .expect("defaults parse");
    assert_eq!(
        (defaults.report.by, defaults.report.format),
        (GroupBy::Site, Format::Table)
    );

    let help = Cli::command().render_long_help().to_string();
    for flag in ["--from", "--to", "--by", "--format", "--account"] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag))
            .expect(flag);
        let described = help.lines().skip_while(|l| *l != line).nth(1).unwrap_or("");
        assert!(!described.trim().is_empty(), "{flag} has no help:\n{help}");
    }
}
