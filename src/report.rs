//! The `report` command: sales, labour and membership KPIs of a range of
//! business days, read from the `reporting` views, for people (table) or
//! tools (csv, json); with `--departments`, the item departments seen
//! (`departments`).

use std::io::Write;

use anyhow::Context;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};

mod departments;
pub use departments::{departments, ReportCommand};

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

/// A family of figures the report can show.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kpi {
    /// Transactions, sales, washes, new memberships and conversion rate.
    Sales,
    /// Hours, labour cost, cost per car and labour share of sales.
    Labour,
    /// Active members at the start and end, sign-ups, cancellations, payment failures, reactivations, churn rate.
    Members,
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
    /// Figures to show, comma-separated: sales, labour, members. Columns come in
    /// that order whatever the order given; members are per billing site.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sales")]
    pub kpis: Vec<Kpi>,
}

/// How a figure is read and written.
#[derive(Clone, Copy)]
enum Kind {
    /// An integer count.
    Count,
    /// An exact decimal as the database computed it (money of the sales figures).
    Decimal,
    /// An exact decimal written without trailing zeros past the cents: rate ×
    /// hours carries the scale of both (`15.50 × 8.00 = 124.0000`).
    Amount,
    /// A ratio the database rounded to this many decimal places.
    Rate(u32),
}

/// One figure column: its name in the output and in the query.
struct Column {
    name: &'static str,
    kind: Kind,
}

const fn column(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

const SALES_COLUMNS: &[Column] = &[
    column("transactions", Kind::Count),
    column("total_sales", Kind::Decimal),
    column("retail_sales", Kind::Decimal),
    column("membership_sales", Kind::Decimal),
    column("member_washes", Kind::Count),
    column("retail_washes", Kind::Count),
    column("free_washes", Kind::Count),
    column("eligible_washes", Kind::Count),
    column("new_memberships", Kind::Count),
    column("conversion_rate", Kind::Rate(6)),
];

const LABOUR_COLUMNS: &[Column] = &[
    column("regular_hours", Kind::Amount),
    column("overtime_hours", Kind::Amount),
    column("regular_cost", Kind::Amount),
    column("overtime_cost", Kind::Amount),
    column("labour_cost", Kind::Amount),
    column("car_washes", Kind::Count),
    column("cost_per_car", Kind::Rate(2)),
    column("labour_share", Kind::Rate(6)),
];

const MEMBERS_COLUMNS: &[Column] = &[
    column("active_at_start", Kind::Count),
    column("active_at_end", Kind::Count),
    column("new_members", Kind::Count),
    column("cancellations", Kind::Count),
    column("payment_failures", Kind::Count),
    column("reactivations", Kind::Count),
    column("churn_rate", Kind::Rate(6)),
];

impl Kpi {
    /// The figure columns of the family, in output order.
    fn columns(self) -> &'static [Column] {
        match self {
            Kpi::Sales => SALES_COLUMNS,
            Kpi::Labour => LABOUR_COLUMNS,
            Kpi::Members => MEMBERS_COLUMNS,
        }
    }

    /// The CTE name of the family in the report's query.
    fn name(self) -> &'static str {
        match self {
            Kpi::Sales => "sales",
            Kpi::Labour => "labour",
            Kpi::Members => "members",
        }
    }

    /// A query of the family's figures per report row, plus a totals row
    /// (`is_total`), with the native key columns of `by`. `$1`, `$2`: the
    /// days; `$3`: the accounts (all when empty).
    fn sql(self, by: GroupBy) -> String {
        let group = by.group_columns();
        let filter = "(cardinality($3::text[]) = 0 OR account = ANY($3))";
        match self {
            Kpi::Sales => format!(
                "SELECT {group}, GROUPING({group}) <> 0 AS is_total,
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
                  WHERE business_date BETWEEN $1 AND $2 AND {filter}
                  GROUP BY GROUPING SETS (({group}), ())"
            ),
            Kpi::Labour => format!(
                "SELECT {group}, GROUPING({group}) <> 0 AS is_total,
                        coalesce(sum(regular_hours), 0)                     AS regular_hours,
                        coalesce(sum(overtime_hours), 0)                    AS overtime_hours,
                        coalesce(sum(regular_cost), 0)                      AS regular_cost,
                        coalesce(sum(overtime_cost), 0)                     AS overtime_cost,
                        coalesce(sum(labour_cost), 0)                       AS labour_cost,
                        coalesce(sum(car_washes), 0)::bigint                AS car_washes,
                        reporting.ratio(sum(labour_cost), sum(car_washes), 2)  AS cost_per_car,
                        reporting.ratio(sum(labour_cost), sum(total_sales), 6) AS labour_share
                   FROM reporting.daily_site_labour
                  WHERE business_date BETWEEN $1 AND $2 AND {filter}
                  GROUP BY GROUPING SETS (({group}), ())"
            ),
            // Members are a state, not a sum over days: a row starts with
            // those active at the end of the day before the range and ends
            // with those active at its end. Every billing site has a row for
            // each day from its first member to the latest day with data, so
            // the latest row up to a day is that day, or the last one known.
            Kpi::Members => {
                let sums = "coalesce(sum(active_at_start), 0)::bigint  AS active_at_start,
                            coalesce(sum(active_at_end), 0)::bigint    AS active_at_end,
                            coalesce(sum(new_members), 0)::bigint      AS new_members,
                            coalesce(sum(cancellations), 0)::bigint    AS cancellations,
                            coalesce(sum(payment_failures), 0)::bigint AS payment_failures,
                            coalesce(sum(reactivations), 0)::bigint    AS reactivations,
                            reporting.ratio(sum(cancellations), sum(active_at_start), 6) AS churn_rate";
                match by {
                    GroupBy::Site | GroupBy::Account => format!(
                        "SELECT {group}, GROUPING({group}) <> 0 AS is_total, {sums}
                           FROM member_sites
                          GROUP BY GROUPING SETS (({group}), ())"
                    ),
                    // A day of the chain starts where the day before ended.
                    // Days past the latest with data keep its members (as a
                    // site's row does), with no events; the totals row is the
                    // range as a whole.
                    GroupBy::Day => format!(
                        "WITH chain AS (
                             SELECT business_date,
                                    sum(active_members)::bigint   AS active,
                                    sum(new_members)::bigint      AS new_members,
                                    sum(cancellations)::bigint    AS cancellations,
                                    sum(payment_failures)::bigint AS payment_failures,
                                    sum(reactivations)::bigint    AS reactivations
                               FROM member_days
                              GROUP BY business_date
                         )
                         SELECT g.day::date AS business_date, false AS is_total,
                                coalesce(s.active, 0)           AS active_at_start,
                                coalesce(e.active, 0)           AS active_at_end,
                                coalesce(c.new_members, 0)      AS new_members,
                                coalesce(c.cancellations, 0)    AS cancellations,
                                coalesce(c.payment_failures, 0) AS payment_failures,
                                coalesce(c.reactivations, 0)    AS reactivations,
                                reporting.ratio(coalesce(c.cancellations, 0), coalesce(s.active, 0), 6) AS churn_rate
                           FROM generate_series($1::date, $2::date, interval '1 day') AS g(day)
                           LEFT JOIN chain c ON c.business_date = g.day
                           LEFT JOIN LATERAL (SELECT active FROM chain WHERE business_date < g.day
                                               ORDER BY business_date DESC LIMIT 1) s ON true
                           LEFT JOIN LATERAL (SELECT active FROM chain WHERE business_date <= g.day
                                               ORDER BY business_date DESC LIMIT 1) e ON true
                          WHERE EXISTS (SELECT 1 FROM chain)
                         UNION ALL
                         SELECT NULL, true, {sums} FROM member_sites"
                    ),
                }
            }
        }
    }
}

/// Common table expressions the members figures read: the days of the
/// selected accounts the range needs (its days, and the day before it, or
/// the latest day with data when the range starts after it: every site has
/// a row for each day from its first to the chain's last), and per billing
/// site the range's figures.
const MEMBER_CTES: &str = "
    member_days AS MATERIALIZED (
        SELECT * FROM reporting.daily_site_members
         WHERE business_date <= $2
           AND business_date >= least($1::date - 1,
                                      (SELECT max(business_date) FROM reporting.daily_site_members))
           AND (cardinality($3::text[]) = 0 OR account = ANY($3))
    ), member_sites AS (
        SELECT account, site_code,
               coalesce((array_agg(active_members ORDER BY business_date DESC)
                             FILTER (WHERE business_date < $1))[1], 0)                AS active_at_start,
               (array_agg(active_members ORDER BY business_date DESC))[1]             AS active_at_end,
               coalesce(sum(new_members) FILTER (WHERE business_date >= $1), 0)      AS new_members,
               coalesce(sum(cancellations) FILTER (WHERE business_date >= $1), 0)    AS cancellations,
               coalesce(sum(payment_failures) FILTER (WHERE business_date >= $1), 0) AS payment_failures,
               coalesce(sum(reactivations) FILTER (WHERE business_date >= $1), 0)    AS reactivations
          FROM member_days
         GROUP BY account, site_code
    ),";

/// A figure as it is written: counts are integers, money, hours and rates exact decimals.
enum Value {
    Count(i64),
    Decimal(Decimal),
}

/// One line of the report: its key (NULL-free except on the totals row) and
/// figures, in the order of the selected columns.
struct ReportRow {
    keys: Vec<Option<String>>,
    is_total: bool,
    values: Vec<Value>,
}

impl GroupBy {
    fn key_columns(self) -> &'static [&'static str] {
        match self {
            GroupBy::Site => &["account", "site_code", "site_name"],
            GroupBy::Account => &["account"],
            GroupBy::Day => &["business_date"],
        }
    }

    /// The columns a row is grouped by, in the views' own types.
    fn group_columns(self) -> &'static str {
        match self {
            GroupBy::Site => "account, site_code",
            GroupBy::Account => "account",
            GroupBy::Day => "business_date",
        }
    }

    /// The key columns as written, from the row keys `k`.
    fn key_select(self) -> &'static str {
        match self {
            // The name as reporting.daily_site_kpis gives it: the latest
            // site-list row with the code.
            GroupBy::Site => {
                "k.account, k.site_code,
                 CASE WHEN NOT k.is_total THEN
                      (SELECT si.name FROM sonnys.sites si
                        WHERE si.account = k.account AND si.code = k.site_code
                        ORDER BY si.updated_at DESC LIMIT 1) END AS site_name"
            }
            GroupBy::Account => "k.account",
            GroupBy::Day => "k.business_date::text AS business_date",
        }
    }
}

/// The selected families, each once, in their fixed order.
fn selected(kpis: &[Kpi]) -> Vec<Kpi> {
    let mut kpis = kpis.to_vec();
    kpis.sort();
    kpis.dedup();
    kpis
}

/// Writes the KPIs of `args.from..=args.to` grouped as asked, with a totals row
/// whose rates are recomputed from the summed figures.
pub async fn run(pool: &PgPool, args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.from > args.to {
        anyhow::bail!(
            "--from {} is after --to {}: the range of business days is empty",
            args.from,
            args.to
        );
    }
    let kpis = selected(&args.kpis);
    if kpis.is_empty() {
        anyhow::bail!("--kpis names no figures: give sales, labour and/or members");
    }
    let rows = fetch(pool, args, &kpis).await?;
    let keys = args.by.key_columns();
    let figures: Vec<&str> = kpis
        .iter()
        .flat_map(|k| k.columns().iter().map(|c| c.name))
        .collect();
    match args.format {
        Format::Table => write_table(out, keys, &figures, &rows),
        Format::Csv => write_csv(out, keys, &figures, &rows),
        Format::Json => write_json(out, keys, &figures, &rows),
    }
    .context("cannot write the report")
}

/// One query: each family's rows (with its own totals row), joined on the
/// row keys that any family has, so a site with labour and no sales, or
/// members and no labour, has one row with zeros where it has no figures.
async fn fetch(pool: &PgPool, args: &ReportArgs, kpis: &[Kpi]) -> anyhow::Result<Vec<ReportRow>> {
    let by = args.by;
    let group = by.group_columns();
    let mut ctes = String::new();
    if kpis.contains(&Kpi::Members) {
        ctes.push_str(MEMBER_CTES);
    }
    for kpi in kpis {
        ctes.push_str(&format!("\n    {} AS ({}),", kpi.name(), kpi.sql(by)));
    }
    let keys = kpis
        .iter()
        .map(|k| format!("SELECT is_total, {group} FROM {}", k.name()))
        .collect::<Vec<_>>()
        .join(" UNION ");
    let joins: String = kpis
        .iter()
        .map(|k| {
            let on = group
                .split(", ")
                .map(|c| format!(" AND {0}.{c} IS NOT DISTINCT FROM k.{c}", k.name()))
                .collect::<String>();
            format!(
                "\n  LEFT JOIN {0} ON {0}.is_total = k.is_total{on}",
                k.name()
            )
        })
        .collect();
    let figures = kpis
        .iter()
        .flat_map(|k| {
            k.columns()
                .iter()
                .map(move |c| format!("coalesce({0}.{1}, 0) AS {1}", k.name(), c.name))
        })
        .collect::<Vec<_>>()
        .join(",\n       ");
    let order = group
        .split(", ")
        .map(|c| format!("k.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "WITH{ctes}
    k AS ({keys})
SELECT {key_select}, k.is_total,
       {figures}
  FROM k{joins}
 ORDER BY k.is_total, {order}",
        key_select = by.key_select()
    );
    let records = sqlx::query(&sql)
        .bind(args.from)
        .bind(args.to)
        .bind(&args.accounts)
        .fetch_all(pool)
        .await
        .context("cannot read the reporting views")?;

    let key_columns = by.key_columns();
    let columns: Vec<&Column> = kpis.iter().flat_map(|k| k.columns()).collect();
    records
        .iter()
        .map(|r| {
            let keys = key_columns
                .iter()
                .map(|k| r.try_get::<Option<String>, _>(*k))
                .collect::<Result<_, _>>()?;
            let values = columns
                .iter()
                .map(|c| {
                    Ok(match c.kind {
                        Kind::Count => Value::Count(r.try_get(c.name)?),
                        Kind::Decimal => Value::Decimal(r.try_get(c.name)?),
                        Kind::Amount => Value::Decimal(cents_or_finer(r.try_get(c.name)?)),
                        Kind::Rate(places) => {
                            Value::Decimal(fixed_scale(r.try_get(c.name)?, places))
                        }
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?;
            Ok(ReportRow {
                keys,
                is_total: r.try_get("is_total")?,
                values,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .context("unexpected row shape from the reporting views")
}

/// The exact value with at least two decimal places and no trailing zero
/// beyond them: `124.0000` → `124.00`, `120.1250` → `120.125`.
fn cents_or_finer(amount: Decimal) -> Decimal {
    let mut amount = amount.normalize();
    if amount.scale() < 2 {
        amount.rescale(2);
    }
    amount
}

/// Rates are written with the decimal places the database rounds them to
/// (a decoded zero would otherwise lose its scale and print as `0`).
fn fixed_scale(mut rate: Decimal, places: u32) -> Decimal {
    rate.rescale(places);
    rate
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Count(n) => n.to_string(),
        Value::Decimal(d) => d.to_string(),
    }
}

fn write_table(
    out: &mut dyn Write,
    keys: &[&str],
    figures: &[&str],
    rows: &[ReportRow],
) -> std::io::Result<()> {
    let header: Vec<String> = keys
        .iter()
        .chain(figures.iter())
        .map(|c| c.to_string())
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let key_cells = row.keys.iter().enumerate().map(|(i, k)| match k {
                None if row.is_total && i == 0 => "TOTAL".to_string(),
                k => k.clone().unwrap_or_default(),
            });
            key_cells.chain(row.values.iter().map(value_text)).collect()
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

fn write_csv(
    out: &mut dyn Write,
    keys: &[&str],
    figures: &[&str],
    rows: &[ReportRow],
) -> std::io::Result<()> {
    let header: Vec<&str> = keys
        .iter()
        .chain(figures.iter())
        .copied()
        .chain(["is_total"])
        .collect();
    writeln!(out, "{}", header.join(","))?;
    for row in rows {
        let fields: Vec<String> = row
            .keys
            .iter()
            .map(|k| csv_field(k.as_deref().unwrap_or("")))
            .chain(row.values.iter().map(value_text))
            .chain([row.is_total.to_string()])
            .collect();
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

fn write_json(
    out: &mut dyn Write,
    keys: &[&str],
    figures: &[&str],
    rows: &[ReportRow],
) -> std::io::Result<()> {
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
            for (name, value) in figures.iter().zip(&row.values) {
                let v = match value {
                    Value::Count(n) => Json::from(*n),
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
