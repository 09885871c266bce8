//! Labour and membership records as the live service sends them: employees
//! and their clock entries, recurring (membership) accounts and their status
//! changes. Parsing follows `model.rs`: lenient where the service varies
//! (`""` for null, numbers as strings), strict where a wrong value would
//! corrupt reports (keys, times, money and hours, which are kept exact).

use chrono::{DateTime, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::model::{as_u64, decimal_of, flag, integer_of, text, timestamp};

/// An employee of `/employee`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    pub employee_id: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// One clock entry of `/employee/{id}/clock-entries`. Entries have no id of
/// their own; `(employee_id, clock_in)` identifies one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockEntry {
    pub employee_id: i64,
    pub clock_in: DateTime<Utc>,
    /// `None` while the employee is on shift.
    pub clock_out: Option<DateTime<Utc>>,
    pub site_code: Option<String>,
    pub regular_rate: Decimal,
    pub regular_hours: Decimal,
    pub overtime_eligible: bool,
    pub overtime_rate: Decimal,
    pub overtime_hours: Decimal,
    pub was_modified: bool,
    pub modification_timestamp: Option<DateTime<Utc>>,
    pub was_created_in_back_office: bool,
    /// The entry exactly as received.
    pub raw: Value,
}

/// A recurring (membership) account of `/recurring/account/list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurringAccount {
    /// The vendor's id, e.g. `"876:1001"`.
    pub id: String,
    pub name: Option<String>,
    pub customer_id: Option<String>,
    pub sign_up_at: Option<DateTime<Utc>>,
    pub cancel_at: Option<DateTime<Utc>>,
    /// The status number, 1–15.
    pub status: Option<i32>,
    pub status_name: Option<String>,
    pub billing_site_id: Option<i64>,
    pub billing_site_code: Option<String>,
    pub raw: Value,
}

/// A status change of `/recurring/account/status-list`. Identified by
/// `(recurring_id, status_at, new_status)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub recurring_id: String,
    pub washbook_account_id: Option<String>,
    pub status_at: DateTime<Utc>,
    pub old_status: Option<String>,
    pub new_status: String,
    pub employee_name: Option<String>,
    pub site_code: Option<String>,
    pub raw: Value,
}

/// Status names that count as a member leaving.
pub const CANCELLED_STATUSES: [&str; 2] = ["Cancelled", "Expired"];
/// Status names that count as a failed payment.
pub const PAYMENT_FAILURE_STATUSES: [&str; 4] = [
    "Payment Failed",
    "Declined",
    "Payment CC Expired",
    "Payment Retries Exceeded",
];

/// The most calendar days one clock-entries request may cover.
pub const CLOCK_ENTRY_MAX_DAYS: i64 = 14;

/// The page sizes `/recurring/account/status-list` accepts.
pub const STATUS_LIST_LIMITS: std::ops::RangeInclusive<u32> = 100..=1_000;

/// The largest page of `/employee` and `/recurring/account/list`.
pub const LIST_LIMIT: u32 = 100;

/// Refuses a clock-entries range the service would answer with a 422:
/// more than [`CLOCK_ENTRY_MAX_DAYS`] days, both ends included.
pub fn check_clock_range(from: NaiveDate, to: NaiveDate) -> Result<(), String> {
    if to < from {
        return Err(format!("the range {from} to {to} ends before it starts"));
    }
    let days = (to - from).num_days() + 1;
    if days > CLOCK_ENTRY_MAX_DAYS {
        return Err(format!(
            "the range {from} to {to} covers {days} days; clock entries are served at most {CLOCK_ENTRY_MAX_DAYS} days at a time"
        ));
    }
    Ok(())
}

/// Refuses a sign-up period the account list would answer with a 422:
/// ending before it starts, or more than six calendar months long.
pub fn check_sign_up_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), String> {
    if to < from {
        return Err(format!("the period {from} to {to} ends before it starts"));
    }
    match from.checked_add_months(Months::new(6)) {
        Some(limit) if to > limit => Err(format!(
            "the period {from} to {to} is longer than the 6 months the account list serves at a time"
        )),
        _ => Ok(()),
    }
}

/// One page of a collection paged by page number (`offset`, from 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The page number asked for, from 1.
    pub page: u32,
    /// The page size asked for.
    pub limit: u32,
    /// Items across all pages, when the service says.
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// Whether no page follows: this one is short, or the pages so far hold
    /// `total` items (the public client stops on either).
    pub fn is_last(&self) -> bool {
        (self.items.len() as u64) < u64::from(self.limit)
            || self
                .total
                .is_some_and(|total| u64::from(self.page) * u64::from(self.limit) >= total)
    }
}

/// The items and `total` of a paged envelope `{"data": {key: [...], "total"}}`.
pub(crate) fn envelope(body: Value, key: &str) -> Result<(Vec<Value>, Option<u64>), String> {
    let mut data = match body {
        Value::Object(mut o) => match o.remove("data") {
            Some(Value::Object(d)) => d,
            _ => return Err("the body has no `data` object".into()),
        },
        _ => return Err("the body is not a JSON object".into()),
    };
    let total = match data.get("total") {
        None | Some(Value::Null) => None,
        Some(v) => Some(as_u64(v).ok_or_else(|| format!("`data.total` is not a count: {v}"))?),
    };
    let items = match data.remove(key) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(format!("`data.{key}` is not a list")),
    };
    Ok((items, total))
}

/// The clock entries of a clock-entries answer, every week's in one list.
pub(crate) fn clock_entries_of(body: Value, employee_id: i64) -> Result<Vec<ClockEntry>, String> {
    let (weeks, _) = envelope(body, "weeks")?;
    let mut entries = Vec::new();
    for week in weeks {
        let Value::Object(mut week) = week else {
            return Err(format!("a week is not an object: {week}"));
        };
        match week.remove("clockEntries") {
            Some(Value::Array(list)) => {
                for raw in list {
                    entries.push(ClockEntry::from_raw(employee_id, raw)?);
                }
            }
            None | Some(Value::Null) => {}
            Some(other) => return Err(format!("`clockEntries` is not a list: {other}")),
        }
    }
    Ok(entries)
}

/// Reads the fields of one record, naming the field in every complaint.
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn of(raw: &'a Value) -> Result<Self, String> {
        raw.as_object()
            .map(Fields)
            .ok_or_else(|| format!("not an object: {raw}"))
    }

    fn get(&self, key: &str) -> &'a Value {
        self.0.get(key).unwrap_or(&Value::Null)
    }

    /// A string where `""` means null; numbers become their text.
    fn text(&self, key: &str) -> Result<Option<String>, String> {
        text(self.get(key)).map_err(|e| format!("`{key}`: {e}"))
    }

    fn required_text(&self, key: &str) -> Result<String, String> {
        self.text(key)?
            .ok_or_else(|| format!("`{key}` is missing or empty"))
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, String> {
        match self.get(key) {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            v => integer_of(v).map(Some).map_err(|e| format!("`{key}`: {e}")),
        }
    }

    /// An exact decimal from the JSON number's text (or a numeric string).
    fn decimal(&self, key: &str) -> Result<Option<Decimal>, String> {
        decimal_of(self.get(key)).map_err(|e| format!("`{key}`: {e}"))
    }

    fn required_decimal(&self, key: &str) -> Result<Decimal, String> {
        self.decimal(key)?
            .ok_or_else(|| format!("`{key}` is missing"))
    }

    fn flag(&self, key: &str) -> Result<bool, String> {
        flag(self.get(key))
            .map(Option::unwrap_or_default)
            .map_err(|e| format!("`{key}`: {e}"))
    }

    /// A UTC date-time, where `""` and null mean none.
    fn time(&self, key: &str) -> Result<Option<DateTime<Utc>>, String> {
        match self.get(key) {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            v @ Value::String(_) => timestamp(v).map(Some).map_err(|e| format!("`{key}`: {e}")),
            other => Err(format!("`{key}`: expected a date-time, got {other}")),
        }
    }

    fn required_time(&self, key: &str) -> Result<DateTime<Utc>, String> {
        self.time(key)?
            .ok_or_else(|| format!("`{key}` is missing or empty"))
    }
}

impl Employee {
    /// Parses one entry of `data.employees`.
    pub fn from_raw(raw: &Value) -> Result<Self, String> {
        let f = Fields::of(raw)?;
        let employee_id = f
            .integer("employeeId")
            .and_then(|id| id.ok_or_else(|| "`employeeId` is missing".to_string()))
            .map_err(|e| format!("employee {raw}: {e}"))?;
        let named = |key| {
            f.text(key)
                .map_err(|e| format!("employee {employee_id}: {e}"))
        };
        Ok(Self {
            employee_id,
            first_name: named("firstName")?,
            last_name: named("lastName")?,
        })
    }
}

impl ClockEntry {
    /// Parses one entry of `clockEntries` of an employee. Rates and hours
    /// are kept exact; an entry still on shift may come without hours.
    pub fn from_raw(employee_id: i64, raw: Value) -> Result<Self, String> {
        match Self::read(employee_id, &raw) {
            Ok(entry) => Ok(Self { raw, ..entry }),
            Err(e) => {
                let at = raw
                    .get("clockIn")
                    .map_or_else(|| "?".into(), Value::to_string);
                Err(format!(
                    "clock entry of employee {employee_id} at {at}: {e}"
                ))
            }
        }
    }

    /// The entry's fields; `raw` is left for the caller to fill.
    fn read(employee_id: i64, raw: &Value) -> Result<Self, String> {
        let f = Fields::of(raw)?;
        let clock_in = f.required_time("clockIn")?;
        let clock_out = f.time("clockOut")?;
        let hours = |key| match (f.decimal(key)?, clock_out) {
            (Some(h), _) => Ok(h),
            (None, None) => Ok(Decimal::ZERO),
            (None, Some(_)) => Err(format!("`{key}` is missing")),
        };
        Ok(Self {
            employee_id,
            clock_in,
            clock_out,
            site_code: f.text("siteCode")?,
            regular_rate: f.required_decimal("regularRate")?,
            regular_hours: hours("regularHours")?,
            overtime_eligible: f.flag("overtimeEligible")?,
            overtime_rate: f.required_decimal("overtimeRate")?,
            overtime_hours: hours("overtimeHours")?,
            was_modified: f.flag("wasModified")?,
            modification_timestamp: f.time("modificationTimestamp")?,
            was_created_in_back_office: f.flag("wasCreatedInBackOffice")?,
            raw: Value::Null,
        })
    }

    /// Labour cost of the entry as the public client defines it:
    /// regular rate × regular hours + overtime rate × overtime hours.
    pub fn cost(&self) -> Decimal {
        self.regular_rate * self.regular_hours + self.overtime_rate * self.overtime_hours
    }
}

impl RecurringAccount {
    /// Parses one entry of the account list's `data.accounts`.
    pub fn from_raw(raw: Value) -> Result<Self, String> {
        match Self::read(&raw) {
            Ok(account) => Ok(Self { raw, ..account }),
            Err(e) => {
                let id = raw.get("id").map_or_else(|| "?".into(), Value::to_string);
                Err(format!("recurring account {id}: {e}"))
            }
        }
    }

    fn read(raw: &Value) -> Result<Self, String> {
        let f = Fields::of(raw)?;
        let status = f
            .integer("status")?
            .map(|n| i32::try_from(n).map_err(|_| format!("`status`: {n} is not a status")))
            .transpose()?;
        Ok(Self {
            id: f.required_text("id")?,
            name: f.text("name")?,
            customer_id: f.text("customerId")?,
            sign_up_at: f.time("signUpDate")?,
            cancel_at: f.time("cancelDate")?,
            status,
            status_name: f.text("statusName")?,
            billing_site_id: f.integer("billingSiteId")?,
            billing_site_code: f.text("billingSiteCode")?,
            raw: Value::Null,
        })
    }
}

impl StatusChange {
    /// Parses one entry of the status list's `data.accounts`.
    pub fn from_raw(raw: Value) -> Result<Self, String> {
        match Self::read(&raw) {
            Ok(change) => Ok(Self { raw, ..change }),
            Err(e) => {
                let id = raw
                    .get("recurring_id")
                    .map_or_else(|| "?".into(), Value::to_string);
                Err(format!("status change of {id}: {e}"))
            }
        }
    }

    fn read(raw: &Value) -> Result<Self, String> {
        let f = Fields::of(raw)?;
        Ok(Self {
            recurring_id: f.required_text("recurring_id")?,
            washbook_account_id: f.text("washbook_account_id")?,
            status_at: f.required_time("status_date")?,
            old_status: f.text("old_status")?,
            new_status: f.required_text("new_status")?,
            employee_name: f.text("employee_name")?,
            site_code: f.text("site_code")?,
            raw: Value::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn entry() -> Value {
        json!({
            "clockIn": "2021-01-08T13:00:00.000Z", "clockOut": "2021-01-08T21:30:00.000Z",
            "regularRate": number("15.50"), "regularHours": number("8.5"),
            "overtimeEligible": true, "overtimeRate": number("23.25"), "overtimeHours": 0,
            "wasModified": false, "modificationTimestamp": "", "wasCreatedInBackOffice": false,
            "siteCode": "N01"
        })
    }

    #[test]
    fn a_clock_entry_keeps_rates_and_hours_exact() {
        let mut raw = entry();
        raw["regularRate"] = number("15.3333333333333333333");
        raw["overtimeHours"] = number("0.1");
        let e = ClockEntry::from_raw(1102, raw).unwrap();
        assert_eq!(e.regular_rate.to_string(), "15.3333333333333333333");
        assert_eq!(e.overtime_hours.to_string(), "0.1");
        assert_eq!(e.regular_hours, Decimal::new(85, 1));
        assert_eq!(e.modification_timestamp, None, "\"\" is null");
        assert_eq!(e.site_code.as_deref(), Some("N01"));
        assert_eq!(e.raw["siteCode"], "N01", "the raw entry is kept");
    }

    #[test]
    fn numbers_may_come_as_strings_and_unset_values_as_empty_strings() {
        let mut raw = entry();
        raw["regularRate"] = json!("15.50");
        raw["wasModified"] = json!("true");
        raw["siteCode"] = json!("");
        let e = ClockEntry::from_raw(1102, raw).unwrap();
        assert_eq!(e.regular_rate, Decimal::new(1550, 2));
        assert!(e.was_modified);
        assert_eq!(e.site_code, None);
    }

    #[test]
    fn an_entry_on_shift_may_lack_its_clock_out_and_hours() {
        let mut raw = entry();
        raw["clockOut"] = json!("");
        raw["regularHours"] = Value::Null;
        let e = ClockEntry::from_raw(1, raw).unwrap();
        assert_eq!((e.clock_out, e.regular_hours), (None, Decimal::ZERO));
        let mut closed = entry();
        closed["regularHours"] = Value::Null;
        assert!(
            ClockEntry::from_raw(1, closed).is_err(),
            "a finished shift needs its hours"
        );
    }

    #[test]
    fn bad_times_and_amounts_are_refused_naming_the_field() {
        for (key, value) in [
            ("clockIn", json!("yesterday")),
            ("clockIn", json!("")),
            ("clockOut", json!(1610110800)),
            ("modificationTimestamp", json!("2021-13-01T00:00:00Z")),
            ("regularRate", json!("about 15")),
            ("overtimeRate", Value::Null),
        ] {
            let mut raw = entry();
            raw[key] = value;
            let e = ClockEntry::from_raw(1102, raw).unwrap_err();
            assert!(e.contains(key) && e.contains("1102"), "{e}");
        }
    }

    #[test]
    fn labour_cost_is_regular_plus_overtime() {
        let mut raw = entry();
        raw["regularHours"] = number("6");
        raw["overtimeHours"] = number("2.5");
        let e = ClockEntry::from_raw(1, raw).unwrap();
        // 15.50 × 6 + 23.25 × 2.5
        assert_eq!(e.cost(), Decimal::new(151125, 3));
    }

    #[test]
    fn an_employee_needs_an_integer_id() {
        let e = Employee::from_raw(
            &json!({"employeeId": "1101", "firstName": "Maria", "lastName": ""}),
        )
        .unwrap();
        assert_eq!((e.employee_id, e.last_name), (1101, None));
        assert!(Employee::from_raw(&json!({"employeeId": "x1", "firstName": "Maria"})).is_err());
        assert!(Employee::from_raw(&json!({"firstName": "Maria"})).is_err());
    }

    #[test]
    fn a_recurring_account_reads_the_vendors_plain_utc_times() {
        let raw = json!({
            "id": "1:1001", "name": "", "balance": null, "signUpDate": "2020-05-19 08:45:00",
            "cancelDate": "", "billingSiteId": 1, "billingSiteCode": "N01",
            "customerId": "1:234", "status": "7", "statusName": "Cancelled"
        });
        let a = RecurringAccount::from_raw(raw).unwrap();
        assert_eq!(
            a.sign_up_at.unwrap().to_rfc3339(),
            "2020-05-19T08:45:00+00:00"
        );
        assert_eq!((a.name, a.cancel_at, a.status), (None, None, Some(7)));
        let bad = json!({"id": "1:1001", "signUpDate": "19/05/2020"});
        let e = RecurringAccount::from_raw(bad).unwrap_err();
        assert!(e.contains("signUpDate") && e.contains("1:1001"), "{e}");
        assert!(RecurringAccount::from_raw(json!({"id": ""})).is_err());
    }

    #[test]
    fn a_status_change_needs_its_account_time_and_new_status() {
        let raw = json!({
            "washbook_account_id": "1:1001", "recurring_id": "1:1001", "old_status": "Payment Failed",
            "new_status": "Active", "status_date": "2024-03-02T08:00:00.000Z",
            "employee_name": "Billing Service", "site_code": "N01"
        });
        let c = StatusChange::from_raw(raw.clone()).unwrap();
        assert_eq!(c.new_status, "Active");
        assert_eq!(c.status_at.to_rfc3339(), "2024-03-02T08:00:00+00:00");
        for key in ["recurring_id", "status_date", "new_status"] {
            let mut r = raw.clone();
            r[key] = json!("");
            assert!(StatusChange::from_raw(r).is_err(), "{key}");
        }
    }

    #[test]
    fn ranges_the_service_refuses_are_refused_before_sending() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(check_clock_range(d("2021-01-01"), d("2021-01-14")).is_ok());
        assert!(check_clock_range(d("2021-01-01"), d("2021-01-15")).is_err());
        assert!(check_clock_range(d("2021-01-02"), d("2021-01-01")).is_err());
        let t = |s: &str| d(s).and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert!(check_sign_up_period(t("2024-01-01"), t("2024-07-01")).is_ok());
        assert!(check_sign_up_period(t("2024-01-01"), t("2024-07-02")).is_err());
    }

    #[test]
    fn paging_stops_on_a_short_page_or_at_the_total() {
        let page = |n: usize, page, total| Page {
            items: vec![0; n],
            page,
            limit: 100,
            total,
        };
        assert!(!page(100, 1, Some(250)).is_last());
        assert!(page(50, 3, Some(250)).is_last());
        assert!(page(100, 2, Some(200)).is_last());
        assert!(!page(100, 2, None).is_last());
        assert!(page(0, 1, None).is_last());
    }

    #[test]
    fn envelopes_without_items_are_empty_and_bad_totals_are_refused() {
        let (items, total) = envelope(
            json!({"data": {"employees": null, "total": "0"}}),
            "employees",
        )
        .unwrap();
        assert!(items.is_empty());
        assert_eq!(total, Some(0));
        assert!(envelope(
            json!({"data": {"employees": [], "total": "many"}}),
            "employees"
        )
        .is_err());
        assert!(envelope(json!({"employees": []}), "employees").is_err());
    }
}
