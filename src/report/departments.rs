//! `sonnys-etl report --departments`: every item department seen in a range
//! of business days, with its item count and whether it counts as a wash
//! (`reporting.wash_departments`), so an operator whose departments are not
//! called `Wash` sees at a glance what the wash figures miss.

use std::io::Write;

use anyhow::Context;
use sqlx::PgPool;

use super::{csv_field, Format, ReportArgs};

/// The `report` command's arguments: the KPIs, or with `--departments` the
/// departments of the range.
#[derive(clap::Args, Debug)]
pub struct ReportCommand {
    #[command(flatten)]
    pub args: ReportArgs,
    /// Instead of the KPIs: every item department seen in the range (items
    /// not voided), with its item and transaction counts and whether it
    /// counts as a wash (`[reporting] wash_departments`).
    #[arg(long, conflicts_with_all = ["by", "kpis"])]
    pub departments: bool,
}

impl ReportCommand {
    /// The KPIs, or the departments with `--departments`.
    pub async fn run(&self, pool: &PgPool, out: &mut dyn Write) -> anyhow::Result<()> {
        if self.departments {
            departments(pool, &self.args, out).await
        } else {
            super::run(pool, &self.args, out).await
        }
    }
}

/// One department of the range.
#[derive(Debug, sqlx::FromRow)]
struct Department {
    department: Option<String>,
    items: i64,
    transactions: i64,
    counts_as_wash: bool,
}

/// Writes every department seen from `args.from` to `args.to` (of
/// `args.accounts`, all when empty) in `args.format`; the table ends with
/// how washes are counted.
pub async fn departments(
    pool: &PgPool,
    args: &ReportArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if args.from > args.to {
        anyhow::bail!(
            "--from {} is after --to {}: the range of business days is empty",
            args.from,
            args.to
        );
    }
    let rows: Vec<Department> = sqlx::query_as(
        "SELECT department, sum(items)::bigint AS items, sum(transactions)::bigint AS transactions,
                bool_or(is_wash_department) AS counts_as_wash
           FROM reporting.department_washes
          WHERE business_date BETWEEN $1 AND $2
            AND (cardinality($3::text[]) = 0 OR account = ANY ($3))
          GROUP BY department
          ORDER BY lower(department) NULLS LAST, department",
    )
    .bind(args.from)
    .bind(args.to)
    .bind(&args.accounts)
    .fetch_all(pool)
    .await
    .context("cannot read reporting.department_washes")?;
    match args.format {
        Format::Table => {
            let wash_departments = crate::store::washes::wash_departments(pool)
                .await
                .context("cannot read reporting.wash_departments")?;
            let (listed, days): (i64, i64) = sqlx::query_as(
                "SELECT count(l.account), count(*)
                   FROM (SELECT DISTINCT account, site_code, business_date FROM sonnys.transactions
                          WHERE business_date BETWEEN $1 AND $2
                            AND (cardinality($3::text[]) = 0 OR account = ANY ($3))) d
                   LEFT JOIN sonnys.wash_list_days l USING (account, site_code, business_date)",
            )
            .bind(args.from)
            .bind(args.to)
            .bind(&args.accounts)
            .fetch_one(pool)
            .await
            .context("cannot read sonnys.wash_list_days")?;
            write_table(out, &rows, &wash_departments, listed, days)
        }
        Format::Csv => write_csv(out, &rows),
        Format::Json => write_json(out, &rows),
    }
    .context("cannot write the report")
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn write_table(
    out: &mut dyn Write,
    rows: &[Department],
    wash_departments: &[String],
    listed_days: i64,
    days: i64,
) -> std::io::Result<()> {
    let header = ["department", "items", "transactions", "counts_as_wash"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.department.clone().unwrap_or_else(|| "(none)".to_string()),
                r.items.to_string(),
                r.transactions.to_string(),
                yes_no(r.counts_as_wash).to_string(),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..4).map(width).collect();
    let line = |out: &mut dyn Write, row: [&str; 4]| {
        writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:>w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        )
        .map(|_| ())
    };
    line(out, header)?;
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, [&rules[0], &rules[1], &rules[2], &rules[3]])?;
    for c in &cells {
        line(out, [&c[0], &c[1], &c[2], &c[3]])?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "A transaction is a wash when an item not voided is in one of: {} (reporting.wash_departments, any case; [reporting] wash_departments sets it).",
        wash_departments.join(", ")
    )?;
    if listed_days > 0 {
        writeln!(
            out,
            "On {listed_days} of the range's {days} site-days the API's wash list (GET /transaction/type/wash, [transactions] wash_list) was read: there it decides instead."
        )?;
    }
    Ok(())
}

fn write_csv(out: &mut dyn Write, rows: &[Department]) -> std::io::Result<()> {
    writeln!(out, "department,items,transactions,counts_as_wash")?;
    for r in rows {
        writeln!(
            out,
            "{},{},{},{}",
            csv_field(r.department.as_deref().unwrap_or("")),
            r.items,
            r.transactions,
            r.counts_as_wash
        )?;
    }
    Ok(())
}

fn write_json(out: &mut dyn Write, rows: &[Department]) -> std::io::Result<()> {
    let array: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "department": r.department,
                "items": r.items,
                "transactions": r.transactions,
                "counts_as_wash": r.counts_as_wash,
            })
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &array)?;
    writeln!(out)
}
