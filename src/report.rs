//! The `report` command: membership and sales KPIs of a range of business days,
//! read from the `reporting` views, for people (table) or tools (csv, json).

use std::io::Write;

use anyhow::Context;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};

/// What one row of the report stands for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// One row per account and site over the whole range.
    Site,
    /// One row per account over the whole range.
    Account,
    /// One row per business day, the whole chain (all selected accounts) together.
    Day,
}

/// How the report is written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of objects; money and rates are decimal strings.
    Json,
}

/// Arguments of `sonnys-etl report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// First business day of the report, inclusive (YYYY-MM-DD).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last business day of the report, inclusive (YYYY-MM-DD).
    #[arg(long)]
    pub to: NaiveDate,
    /// One row per account+site, per account, or per business day for the whole chain; a totals row follows.
    #[arg(long, value_enum, default_value = "site")]
    pub by: GroupBy,
    /// Output format: aligned table, CSV with a header row, or a JSON array (money as decimal strings).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only this account; repeat the flag for several. Every account when absent.
    #[arg(long = "account")]
    pub accounts: Vec<String>,
}

/// Figure columns after the key columns, in the order of [`Figures::values`].
const FIGURE_COLUMNS: [&str; 10] = [
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
];

/// The KPIs of one report row, summed over its days and sites.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Figures {
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

/// A figure as it is written: counts are integers, money and rates exact decimals.
enum Value {
    Count(i64),
    Decimal(Decimal),
}

impl Figures {
    fn values(&self) -> [Value; 10] {
        [
            Value::Count(self.transactions),
            Value::Decimal(self.total_sales),
            Value::Decimal(self.retail_sales),
            Value::Decimal(self.membership_sales),
            Value::Count(self.member_washes),
            Value::Count(self.retail_washes),
            Value::Count(self.free_washes),
            Value::Count(self.eligible_washes),
            Value::Count(self.new_memberships),
            Value::Decimal(self.conversion_rate),
        ]
    }
}

/// One line of the report: its key (NULL-free except on the totals row) and figures.
struct ReportRow {
    keys: Vec<Option<String>>,
    is_total: bool,
    figures: Figures,
}

impl GroupBy {
    fn key_columns(self) -> &'static [&'static str] {
        match self {
            GroupBy::Site => &["account", "site_code", "site_name"],
            GroupBy::Account => &["account"],
            GroupBy::Day => &["business_date"],
        }
    }

    /// Key expressions (as text) and the grouping set of the query.
    fn sql_keys(self) -> (&'static str, &'static str) {
        match self {
            GroupBy::Site => (
                "account, site_code, \
                 CASE WHEN GROUPING(account) = 0 THEN max(site_name) END AS site_name",
                "account, site_code",
            ),
            GroupBy::Account => ("account", "account"),
            GroupBy::Day => ("business_date::text AS business_date", "business_date"),
        }
    }
}

/// Writes the KPIs of `args.from..=args.to` grouped as asked, with a totals row
/// whose conversion rate is recomputed from the summed counts.
pub async fn run(pool: &PgPool, args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.from > args.to {
        anyhow::bail!(
            "--from {} is after --to {}: the range of business days is empty",
            args.from,
            args.to
        );
    }
    let rows = fetch(pool, args).await?;
    let keys = args.by.key_columns();
    match args.format {
        Format::Table => write_table(out, keys, &rows),
        Format::Csv => write_csv(out, keys, &rows),
        Format::Json => write_json(out, keys, &rows),
    }
    .context("cannot write the report")
}

async fn fetch(pool: &PgPool, args: &ReportArgs) -> anyhow::Result<Vec<ReportRow>> {
    let (key_select, group) = args.by.sql_keys();
    let sql = format!(
        "SELECT {key_select},
                GROUPING({group}) <> 0                              AS is_total,
                coalesce(sum(transactions), 0)::bigint              AS transactions,
                coalesce(sum(total_sales), 0)                       AS total_sales,
                coalesce(sum(retail_sales), 0)                      AS retail_sales,
                coalesce(sum(membership_sales), 0)                  AS membership_sales,
                coalesce(sum(member_washes), 0)::bigint             AS member_washes,
                coalesce(sum(retail_washes), 0)::bigint             AS retail_washes,
                coalesce(sum(free_washes), 0)::bigint               AS free_washes,
                coalesce(sum(eligible_washes), 0)::bigint           AS eligible_washes,
                coalesce(sum(new_memberships), 0)::bigint           AS new_memberships,
                reporting.conversion_rate(coalesce(sum(new_memberships), 0),
                                          coalesce(sum(eligible_washes), 0)) AS conversion_rate
           FROM reporting.daily_site_kpis
          WHERE business_date BETWEEN $1 AND $2
            AND (cardinality($3::text[]) = 0 OR account = ANY($3))
          GROUP BY GROUPING SETS (({group}), ())
          ORDER BY is_total, {group}"
    );
    let records = sqlx::query(&sql)
        .bind(args.from)
        .bind(args.to)
        .bind(&args.accounts)
        .fetch_all(pool)
        .await
        .context("cannot read reporting.daily_site_kpis")?;

    let key_columns = args.by.key_columns();
    records
        .iter()
        .map(|r| {
            let keys = key_columns
                .iter()
                .map(|k| r.try_get::<Option<String>, _>(*k))
                .collect::<Result<_, _>>()?;
            Ok(ReportRow {
                keys,
                is_total: r.try_get("is_total")?,
                figures: Figures {
                    transactions: r.try_get("transactions")?,
                    total_sales: r.try_get("total_sales")?,
                    retail_sales: r.try_get("retail_sales")?,
                    membership_sales: r.try_get("membership_sales")?,
                    member_washes: r.try_get("member_washes")?,
                    retail_washes: r.try_get("retail_washes")?,
                    free_washes: r.try_get("free_washes")?,
                    eligible_washes: r.try_get("eligible_washes")?,
                    new_memberships: r.try_get("new_memberships")?,
                    conversion_rate: fixed_scale(r.try_get("conversion_rate")?),
                },
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .context("unexpected row shape from reporting.daily_site_kpis")
}

/// Rates are written with the 6 decimal places the database rounds them to
/// (a decoded zero would otherwise lose its scale and print as `0`).
fn fixed_scale(mut rate: Decimal) -> Decimal {
    rate.rescale(6);
    rate
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Count(n) => n.to_string(),
        Value::Decimal(d) => d.to_string(),
    }
}

fn write_table(out: &mut dyn Write, keys: &[&str], rows: &[ReportRow]) -> std::io::Result<()> {
    let header: Vec<String> = keys
        .iter()
        .chain(FIGURE_COLUMNS.iter())
        .map(|c| c.to_string())
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let key_cells = row.keys.iter().enumerate().map(|(i, k)| match k {
                None if row.is_total && i == 0 => "TOTAL".to_string(),
                k => k.clone().unwrap_or_default(),
            });
            key_cells
                .chain(row.figures.values().iter().map(value_text))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut dyn Write, row: &[String]| -> std::io::Result<()> {
        let text: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < keys.len() {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        writeln!(out, "{}", text.join("  ").trim_end())
    };
    line(out, &header)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule)?;
    for (row, cell) in rows.iter().zip(&cells) {
        if row.is_total {
            line(out, &rule)?;
        }
        line(out, cell)?;
    }
    Ok(())
}

/// Quotes a CSV field when it holds a separator, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(out: &mut dyn Write, keys: &[&str], rows: &[ReportRow]) -> std::io::Result<()> {
    let header: Vec<&str> = keys
        .iter()
        .chain(FIGURE_COLUMNS.iter())
        .copied()
        .chain(["is_total"])
        .collect();
    writeln!(out, "{}", header.join(","))?;
    for row in rows {
        let fields: Vec<String> = row
            .keys
            .iter()
            .map(|k| csv_field(k.as_deref().unwrap_or("")))
            .chain(row.figures.values().iter().map(value_text))
            .chain([row.is_total.to_string()])
            .collect();
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

fn write_json(out: &mut dyn Write, keys: &[&str], rows: &[ReportRow]) -> std::io::Result<()> {
    use serde_json::Value as Json;
    let array: Vec<Json> = rows
        .iter()
        .map(|row| {
            let mut object = serde_json::Map::new();
            for (name, key) in keys.iter().zip(&row.keys) {
                object.insert(
                    name.to_string(),
                    key.clone().map_or(Json::Null, Json::String),
                );
            }
            for (name, value) in FIGURE_COLUMNS.iter().zip(row.figures.values()) {
                let v = match value {
                    Value::Count(n) => Json::from(n),
                    Value::Decimal(d) => Json::String(d.to_string()),
                };
                object.insert(name.to_string(), v);
            }
            object.insert("is_total".to_string(), Json::Bool(row.is_total));
            Json::Object(object)
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &array)?;
    writeln!(out)
}
