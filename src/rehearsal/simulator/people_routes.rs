//! HTTP face of the labour and membership endpoints: `/employee`,
//! `/employee/{employee_id}/clock-entries`, `/recurring/account/list` and
//! `/recurring/account/status-list`, behind the same gate as the export
//! routes. Validation collects every message, as the service does. The
//! live service's shape (a null `total`, open shifts with `clockOut: null`,
//! entries without `clockIn`, bare status dates) follows the knobs of
//! [`super::Faults`].

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::chain::{format_instant, num, Quirks};
use super::gate::{query_params, ApiError, Caller};
use super::people::{chosen, MemberStatus, SimClockEntry, SimRecurringAccount, SimStatusChange};
use super::{lock, Simulator};

/// The longest span of one clock-entries request.
const CLOCK_SPAN_DAYS: i64 = 14;
/// How long the status list answers identical requests from its cache.
pub(crate) const STATUS_CACHE_TTL: Duration = Duration::from_secs(60 * 60);

/// An unset nullable string: `""` under the live service's quirk, else null.
fn unset(quirks: Quirks) -> Value {
    if quirks.empty_strings {
        Value::String(String::new())
    } else {
        Value::Null
    }
}

fn nullable(text: Option<String>, quirks: Quirks) -> Value {
    text.map_or_else(|| unset(quirks), Value::String)
}

/// A rate with exactly two decimals, as the service sends money.
fn rate(d: Decimal) -> Value {
    let mut r = d.round_dp(2);
    r.rescale(2);
    num(r)
}

/// `signUpDate` and `cancelDate` are sent as the vendor's example shows
/// them: `2020-05-19 08:45:00`, UTC without a zone.
fn plain_utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Collects validation messages over several parameters.
#[derive(Default)]
struct Checks {
    messages: Vec<String>,
}

impl Checks {
    /// An optional integer parameter.
    fn integer(&mut self, params: &HashMap<String, String>, name: &str) -> Option<i64> {
        match params.get(name).map(|v| v.trim()) {
            None | Some("") => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.messages
                        .push(format!("The {name} must be an integer."));
                    None
                }
            },
        }
    }

    /// A Unix timestamp in seconds.
    fn unix(&mut self, params: &HashMap<String, String>, name: &str) -> Option<DateTime<Utc>> {
        let n = self.integer(params, name)?;
        let t = DateTime::<Utc>::from_timestamp(n, 0);
        if t.is_none() {
            self.messages
                .push(format!("The {name} must be a Unix timestamp in seconds."));
        }
        t
    }

    /// `limit` within `range` (default `default`) and `offset`, a page number
    /// from 1 (default 1).
    fn page(
        &mut self,
        params: &HashMap<String, String>,
        range: std::ops::RangeInclusive<i64>,
        default: u32,
    ) -> (u32, u32) {
        let limit = match self.integer(params, "limit") {
            None => default,
            Some(l) if range.contains(&l) => l as u32,
            Some(_) => {
                self.messages.push(format!(
                    "The limit must be between {} and {}.",
                    range.start(),
                    range.end()
                ));
                default
            }
        };
        let offset = match self.integer(params, "offset") {
            None => 1,
            Some(o) if (1..=i64::from(u32::MAX)).contains(&o) => o as u32,
            Some(_) => {
                self.messages
                    .push("The offset must be an integer page number of at least 1.".into());
                1
            }
        };
        (limit, offset)
    }

    fn status(&mut self, params: &HashMap<String, String>) -> Option<MemberStatus> {
        let n = self.integer(params, "recurringAccountStatus")?;
        let status = MemberStatus::from_number(n);
        if status.is_none() {
            self.messages
                .push("The recurringAccountStatus must be a number from 1 to 15.".into());
        }
        status
    }

    fn order(&mut self, start: DateTime<Utc>, end: DateTime<Utc>) {
        if start > end {
            self.messages
                .push("The startDate must be before or equal to the endDate.".into());
        }
    }

    fn done<T>(self, value: T) -> Result<T, ApiError> {
        if self.messages.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::Validation(self.messages))
        }
    }
}

/// Items `[(offset-1)*limit, offset*limit)`.
fn page_of<T>(items: &[T], offset: u32, limit: u32) -> &[T] {
    let start = (offset.saturating_sub(1) as usize)
        .saturating_mul(limit as usize)
        .min(items.len());
    let end = start.saturating_add(limit as usize).min(items.len());
    &items[start..end]
}

/// The envelope of a list page; `total` `None` is served as `null`.
fn envelope(
    key: &str,
    items: Vec<Value>,
    offset: u32,
    limit: u32,
    total: Option<usize>,
) -> Json<Value> {
    Json(json!({ "data": {
        key: items,
        "offset": offset,
        "limit": limit,
        "total": total,
    }}))
}

/// `total`, or `None` for the requests chosen by `people_null_total_rate`
/// (by API id, site header, path and parameters: a repeat gets the same).
fn served_total(
    sim: &Simulator,
    caller: &Caller,
    path: &str,
    params: &HashMap<String, String>,
    total: usize,
) -> Option<usize> {
    let share = lock(&sim.inner.state).faults.people_null_total_rate;
    let mut pairs: Vec<(&String, &String)> = params.iter().collect();
    pairs.sort();
    let key = format!(
        "total:{}|{}|{path}|{pairs:?}",
        caller.api_id,
        caller.site_header.as_deref().unwrap_or("*")
    );
    (!chosen(&key, share)).then_some(total)
}

/// `GET /v1/employee`: every employee of the account, paged.
pub(super) async fn employees(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(raw.as_deref());
    let mut checks = Checks::default();
    let (limit, offset) = checks.page(&params, 1..=100, 10);
    checks.done(())?;
    let all = sim.employee_list(caller.account, &caller.api_id);
    let items = page_of(&all, offset, limit)
        .iter()
        .map(|e| {
            json!({
                "employeeId": e.employee_id,
                "firstName": e.first_name,
                "lastName": e.last_name,
            })
        })
        .collect();
    let total = served_total(&sim, &caller, "employee", &params, all.len());
    Ok(envelope("employees", items, offset, limit, total))
}

/// A `startDate`/`endDate` of clock entries: a calendar date (UTC) or
/// Unix seconds.
fn clock_bound(
    checks: &mut Checks,
    params: &HashMap<String, String>,
    name: &str,
    end_of_day: bool,
) -> Option<DateTime<Utc>> {
    let text = params
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())?;
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let time = if end_of_day {
            NaiveTime::from_hms_opt(23, 59, 59)
        } else {
            Some(NaiveTime::MIN)
        };
        return time.map(|t| date.and_time(t).and_utc());
    }
    if text.parse::<i64>().is_ok() {
        return checks.unix(params, name);
    }
    checks.messages.push(format!(
        "The {name} must be a date (YYYY-MM-DD) or a Unix timestamp in seconds."
    ));
    None
}

/// `GET /v1/employee/{employee_id}/clock-entries`: an employee's entries of
/// at most 14 days (UTC dates of the clock-in), grouped by payroll week.
pub(super) async fn clock_entries(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(employee_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(raw.as_deref());
    let now = Utc::now();
    let mut checks = Checks::default();
    let start = clock_bound(&mut checks, &params, "startDate", false);
    let end = clock_bound(&mut checks, &params, "endDate", true);
    let given = |name: &str| params.get(name).is_some_and(|v| !v.trim().is_empty());
    let (from, to) = match (given("startDate"), given("endDate")) {
        // Without dates: the most recent entries, i.e. the last 14 UTC dates.
        (false, false) => {
            let first = now.date_naive() - chrono::Days::new(CLOCK_SPAN_DAYS as u64 - 1);
            (first.and_time(NaiveTime::MIN).and_utc(), now)
        }
        (true, false) | (false, true) => {
            checks
                .messages
                .push("The startDate and endDate must be given together.".into());
            (now, now)
        }
        (true, true) => (start.unwrap_or(now), end.unwrap_or(now)),
    };
    checks.order(from, to);
    if to - from > chrono::Duration::days(CLOCK_SPAN_DAYS) {
        checks.messages.push(format!(
            "The date range between startDate and endDate may not exceed {CLOCK_SPAN_DAYS} days."
        ));
    }
    checks.done(())?;
    let employee_id: i64 = employee_id.trim().parse().map_err(|_| ApiError::NotFound)?;
    let Some(entries) =
        sim.served_clock_entries(caller.account, &caller.api_id, employee_id, from, to, now)
    else {
        return Err(ApiError::NotFound);
    };
    let quirks = lock(&sim.inner.state).faults.quirks();
    let entries = entries.into_iter().filter(|e| {
        caller
            .site_header
            .as_ref()
            .map_or(true, |h| *h == e.site_code)
    });
    let mut weeks: Vec<(String, Vec<SimClockEntry>)> = Vec::new();
    for e in entries {
        match weeks.last_mut() {
            Some((week, list)) if *week == e.week => list.push(e),
            _ => weeks.push((e.week.clone(), vec![e])),
        }
    }
    let weeks: Vec<Value> = weeks
        .into_iter()
        .map(|(week, list)| {
            let regular: Decimal = list.iter().map(|e| e.regular_hours).sum();
            let overtime: Decimal = list.iter().map(|e| e.overtime_hours).sum();
            json!({
                "week": week,
                "weekTotalRegularHours": num(regular.normalize()),
                "weekTotalOverTimeHours": num(overtime.normalize()),
                "clockEntries": list.iter().map(|e| clock_entry(e, quirks)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "data": { "weeks": weeks } })))
}

fn clock_entry(e: &SimClockEntry, quirks: Quirks) -> Value {
    json!({
        "clockIn": if e.clock_in_missing { Value::Null } else { json!(format_instant(e.clock_in)) },
        // On shift: null, as the reference says, whatever the "" quirk.
        "clockOut": e.clock_out.map_or(Value::Null, |t| json!(format_instant(t))),
        "regularRate": rate(e.regular_rate),
        "regularHours": num(e.regular_hours),
        "overtimeEligible": e.overtime_eligible,
        "overtimeRate": rate(e.overtime_rate),
        "overtimeHours": num(e.overtime_hours),
        "wasModified": e.was_modified,
        "modificationTimestamp": nullable(e.modification_timestamp.map(format_instant), quirks),
        "wasCreatedInBackOffice": e.was_created_in_back_office,
        "siteCode": e.site_code,
    })
}

/// The first instant of the month before `now`'s.
fn first_of_last_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let this_month = now.date_naive().with_day(1).unwrap_or(now.date_naive());
    this_month
        .checked_sub_months(Months::new(1))
        .unwrap_or(this_month)
        .and_time(NaiveTime::MIN)
        .and_utc()
}

/// `GET /v1/recurring/account/list`: accounts that signed up in the period
/// (at most six months), with status and cancel date as of its end.
pub(super) async fn recurring_accounts(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(raw.as_deref());
    let now = Utc::now();
    let mut checks = Checks::default();
    let start = checks
        .unix(&params, "startDate")
        .unwrap_or_else(|| first_of_last_month(now));
    let end = checks.unix(&params, "endDate").unwrap_or(now);
    let status = checks.status(&params);
    let (limit, offset) = checks.page(&params, 1..=100, 10);
    checks.order(start, end);
    if start
        .checked_add_months(Months::new(6))
        .is_some_and(|limit| end > limit)
    {
        checks
            .messages
            .push("The date range between startDate and endDate may not exceed 6 months.".into());
    }
    checks.done(())?;
    let customer = params.get("customerId").filter(|c| !c.trim().is_empty());
    let accounts: Vec<SimRecurringAccount> = sim
        .accounts_signed_up(caller.account, &caller.api_id, start, end, now)
        .into_iter()
        .filter(|a| status.map_or(true, |s| a.status == s))
        .filter(|a| customer.map_or(true, |c| a.customer_id.as_ref() == Some(c)))
        .filter(|a| {
            caller
                .site_header
                .as_ref()
                .map_or(true, |h| *h == a.billing_site_code)
        })
        .collect();
    let quirks = lock(&sim.inner.state).faults.quirks();
    let items = page_of(&accounts, offset, limit)
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "name": nullable(a.name.clone(), quirks),
                // Always null for a recurring account, says the reference.
                "balance": Value::Null,
                "signUpDate": plain_utc(a.signed_up),
                "cancelDate": nullable(a.cancelled.map(plain_utc), quirks),
                "billingSiteId": a.billing_site_id,
                "billingSiteCode": a.billing_site_code,
                "customerId": nullable(a.customer_id.clone(), quirks),
                "status": a.status.number(),
                "statusName": a.status.name(),
            })
        })
        .collect();
    let total = served_total(
        &sim,
        &caller,
        "recurring/account/list",
        &params,
        accounts.len(),
    );
    Ok(envelope("accounts", items, offset, limit, total))
}

/// `GET /v1/recurring/account/status-list`: status changes in a period,
/// answered from a one-hour cache of identical requests.
pub(super) async fn status_changes(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(raw.as_deref());
    let now = Utc::now();
    let mut checks = Checks::default();
    let today = now.date_naive().and_time(NaiveTime::MIN).and_utc();
    let start = checks.unix(&params, "startDate").unwrap_or(today);
    let end = checks.unix(&params, "endDate").unwrap_or(now);
    let status = checks.status(&params);
    let (limit, offset) = checks.page(&params, 100..=1_000, 100);
    checks.order(start, end);
    checks.done(())?;

    // "The same exact request": the same id, site header and parameters.
    let mut pairs: Vec<(&String, &String)> = params.iter().collect();
    pairs.sort();
    let key = format!(
        "{}|{}|{pairs:?}",
        caller.api_id,
        caller.site_header.as_deref().unwrap_or("*")
    );
    let asked = Instant::now();
    {
        let mut state = lock(&sim.inner.state);
        state
            .status_cache
            .retain(|_, (at, _)| asked.duration_since(*at) < STATUS_CACHE_TTL);
        if let Some((_, body)) = state.status_cache.get(&key) {
            return Ok(Json(body.clone()));
        }
    }
    let changes: Vec<SimStatusChange> = sim
        .changes_between(caller.account, &caller.api_id, start, end, now)
        .into_iter()
        .filter(|c| status.map_or(true, |s| c.new_status == s))
        .filter(|c| {
            caller
                .site_header
                .as_ref()
                .map_or(true, |h| *h == c.site_code)
        })
        .collect();
    let items = page_of(&changes, offset, limit)
        .iter()
        .map(|c| {
            let status_date = match sim.served_status_date(caller.account, &caller.api_id, c, now) {
                Some(date) => date.format("%Y-%m-%d").to_string(),
                None => format_instant(c.at),
            };
            json!({
                "washbook_account_id": c.recurring_id,
                "recurring_id": c.recurring_id,
                "old_status": c.old_status.name(),
                "new_status": c.new_status.name(),
                "status_date": status_date,
                "employee_name": c.employee_name,
                "site_code": c.site_code,
            })
        })
        .collect();
    let total = served_total(
        &sim,
        &caller,
        "recurring/account/status-list",
        &params,
        changes.len(),
    );
    let Json(body) = envelope("accounts", items, offset, limit, total);
    lock(&sim.inner.state)
        .status_cache
        .insert(key, (asked, body.clone()));
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn clock_dates_are_utc_days_or_unix_seconds() {
        let p = params(&[("startDate", "2021-01-08"), ("endDate", "1610668799")]);
        let mut checks = Checks::default();
        let start = clock_bound(&mut checks, &p, "startDate", false);
        let end = clock_bound(&mut checks, &p, "endDate", true);
        assert_eq!(start, Utc.with_ymd_and_hms(2021, 1, 8, 0, 0, 0).single());
        assert_eq!(end, Utc.with_ymd_and_hms(2021, 1, 14, 23, 59, 59).single());
        let end = clock_bound(
            &mut checks,
            &params(&[("endDate", "2021-01-14")]),
            "endDate",
            true,
        );
        assert_eq!(end, Utc.with_ymd_and_hms(2021, 1, 14, 23, 59, 59).single());
        assert!(checks.messages.is_empty());
        clock_bound(
            &mut checks,
            &params(&[("endDate", "14/01/2021")]),
            "endDate",
            true,
        );
        assert_eq!(checks.messages.len(), 1);
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        let mut checks = Checks::default();
        checks.page(
            &params(&[("limit", "99"), ("offset", "0")]),
            100..=1_000,
            100,
        );
        assert_eq!(checks.messages.len(), 2);
        let mut checks = Checks::default();
        assert_eq!(
            checks.page(
                &params(&[("limit", "1000"), ("offset", "3")]),
                100..=1_000,
                100
            ),
            (1_000, 3)
        );
        assert!(checks.messages.is_empty());
    }

    #[test]
    fn the_default_period_starts_on_the_first_of_last_month() {
        let now = Utc
            .with_ymd_and_hms(2026, 1, 20, 10, 0, 0)
            .single()
            .expect("t");
        assert_eq!(
            Some(first_of_last_month(now)),
            Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).single()
        );
    }

    #[test]
    fn pages_past_the_end_are_empty() {
        let items: Vec<u32> = (0..250).collect();
        assert_eq!(page_of(&items, 3, 100).len(), 50);
        assert!(page_of(&items, 4, 100).is_empty());
        assert!(page_of(&items, u32::MAX, 1_000).is_empty());
    }
}
