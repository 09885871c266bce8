//! Labour and membership records as the live service sends them: employees
//! and their clock entries, recurring (membership) accounts and their status
//! changes. Parsing follows `model.rs`: lenient where the service varies
//! (`""` for null, numbers as strings), strict where a wrong value would
//! corrupt reports (keys, times, money and hours, which are kept exact).
//!
//! What the live service is known to send besides the reference's shape,
//! and how it is read:
//! - a clock entry without `clockIn` (null, missing or `""`) cannot be
//!   keyed: it is set aside alone ([`QuarantinedEntry`]) and the rest of
//!   the answer is kept; a null `clockOut` is an open shift, kept as given;
//! - a status change's `status_date`, or an account's `signUpDate` or
//!   `cancelDate`, may be a bare date (`"2024-06-01"`): kept as a date
//!   ([`ServedTime::Date`]) until the account's zone makes it an instant;
//! - a list page may answer `"total": null`: [`Page::is_last`] then waits
//!   for a short page.

use chrono::{DateTime, Months, NaiveDate, Utc};
use chrono_tz::Tz;
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

/// A clock entry set aside because it cannot be keyed: it came without
/// `clockIn`. The rest of its answer is stored; this one goes to
/// `sonnys.rejected_records` with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedEntry {
    pub employee_id: i64,
    /// `siteCode`, when readable and not empty.
    pub site_code: Option<String>,
    /// `clockOut`, when readable: it dates the entry in the absence of a clock-in.
    pub clock_out: Option<DateTime<Utc>>,
    /// Names the employee and the field, e.g. "clock entry of employee 1102: `clockIn` is null".
    pub reason: String,
    /// The entry exactly as received.
    pub raw: Value,
}

/// What one clock-entries answer held: the entries to store and those set
/// aside, every week's together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClockEntries {
    pub entries: Vec<ClockEntry>,
    pub quarantined: Vec<QuarantinedEntry>,
}

/// A moment as the people endpoints send it: a date-time (UTC), or a bare
/// calendar date such as `"2024-06-01"`, which the live service sometimes
/// sends for a status change's `status_date`. A bare date has no zone of
/// its own; it is read as that day's local midnight in the account's zone
/// ([`ServedTime::instant`]), the one zone the export knows for sure (the
/// reference's example is a date of the account's BackOffice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServedTime {
    /// A full date-time; without a zone it is UTC.
    Instant(DateTime<Utc>),
    /// A date alone.
    Date(NaiveDate),
}

impl ServedTime {
    /// The instant: a date-time as it is, a bare date as its local
    /// midnight in `zone` (on a day whose midnight does not exist, the
    /// first local instant that does).
    pub fn instant(self, zone: Tz) -> DateTime<Utc> {
        match self {
            Self::Instant(t) => t,
            Self::Date(d) => crate::domain::BusinessDay::new(d, zone).start(),
        }
    }

    /// Reads `"2024-06-01"` as a date and anything else the date-time
    /// parser accepts as an instant.
    fn parse(v: &Value) -> Result<Self, String> {
        if let Value::String(s) = v {
            let s = s.trim();
            if s.len() == 10 {
                if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                    return Ok(Self::Date(d));
                }
            }
        }
        timestamp(v).map(Self::Instant).map_err(|e| e.to_string())
    }
}

/// A recurring (membership) account of `/recurring/account/list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurringAccount {
    /// The vendor's id, e.g. `"876:1001"`.
    pub id: String,
    pub name: Option<String>,
    pub customer_id: Option<String>,
    /// `signUpDate`: a date-time, or a bare date (see [`ServedTime`]).
    pub sign_up_date: Option<ServedTime>,
    /// `cancelDate`, read like `signUpDate`.
    pub cancel_date: Option<ServedTime>,
    /// The status number, 1–15.
    pub status: Option<i32>,
    pub status_name: Option<String>,
    pub billing_site_id: Option<i64>,
    pub billing_site_code: Option<String>,
    pub raw: Value,
}

/// A status change of `/recurring/account/status-list`. Identified by
/// `(recurring_id, status_at, new_status)`, `status_at` being the instant
/// of `status_date` in the account's zone ([`StatusChange::status_at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub recurring_id: String,
    pub washbook_account_id: Option<String>,
    /// `status_date`: a date-time, or a bare date (see [`ServedTime`]).
    pub status_date: ServedTime,
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
    /// `total` items (the public client stops on either). Without a
    /// `total` (the live service sometimes answers `"total": null`) only a
    /// short page ends the walk, so a full last page costs one more,
    /// empty, page: never a page left unread.
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
/// An entry without `clockIn` is set aside alone; any other unreadable
/// entry fails the answer, as a wrong rate or hour would corrupt the
/// labour cost.
pub(crate) fn clock_entries_of(body: Value, employee_id: i64) -> Result<ClockEntries, String> {
    let (weeks, _) = envelope(body, "weeks")?;
    let mut read = ClockEntries::default();
    for week in weeks {
        let Value::Object(mut week) = week else {
            return Err(format!("a week is not an object: {week}"));
        };
        match week.remove("clockEntries") {
            Some(Value::Array(list)) => {
                for raw in list {
                    match QuarantinedEntry::without_clock_in(employee_id, &raw) {
                        Some(q) => read.quarantined.push(QuarantinedEntry { raw, ..q }),
                        None => read.entries.push(ClockEntry::from_raw(employee_id, raw)?),
                    }
                }
            }
            None | Some(Value::Null) => {}
            Some(other) => return Err(format!("`clockEntries` is not a list: {other}")),
        }
    }
    Ok(read)
}

impl QuarantinedEntry {
    /// The entry set aside, if it has no `clockIn` (null, missing or `""`);
    /// `raw` is left for the caller to fill.
    fn without_clock_in(employee_id: i64, raw: &Value) -> Option<Self> {
        let f = Fields::of(raw).ok()?;
        let given = match f.get("clockIn") {
            Value::Null if !f.0.contains_key("clockIn") => "missing",
            Value::Null => "null",
            Value::String(s) if s.trim().is_empty() => "empty",
            _ => return None,
        };
        Some(Self {
            employee_id,
            site_code: f.text("siteCode").ok().flatten(),
            clock_out: f.time("clockOut").ok().flatten(),
            reason: format!(
                "clock entry of employee {employee_id}: `clockIn` is {given}, so the entry cannot be keyed; the employee's other entries are stored"
            ),
            raw: Value::Null,
        })
    }
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

    /// A date-time or a bare date, where `""` and null mean none.
    fn served(&self, key: &str) -> Result<Option<ServedTime>, String> {
        match self.get(key) {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            v @ Value::String(_) => ServedTime::parse(v)
                .map(Some)
                .map_err(|e| format!("`{key}`: {e}")),
            other => Err(format!(
                "`{key}`: expected a date or date-time, got {other}"
            )),
        }
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
            sign_up_date: f.served("signUpDate")?,
            cancel_date: f.served("cancelDate")?,
            status,
            status_name: f.text("statusName")?,
            billing_site_id: f.integer("billingSiteId")?,
            billing_site_code: f.text("billingSiteCode")?,
            raw: Value::Null,
        })
    }

    /// `signUpDate` as an instant; a bare date is local midnight in the
    /// account's `zone`.
    pub fn sign_up_at(&self, zone: Tz) -> Option<DateTime<Utc>> {
        self.sign_up_date.map(|t| t.instant(zone))
    }

    /// `cancelDate` as an instant, read like [`Self::sign_up_at`].
    pub fn cancel_at(&self, zone: Tz) -> Option<DateTime<Utc>> {
        self.cancel_date.map(|t| t.instant(zone))
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
            status_date: f
                .served("status_date")?
                .ok_or_else(|| "`status_date` is missing or empty".to_string())?,
            old_status: f.text("old_status")?,
            new_status: f.required_text("new_status")?,
            employee_name: f.text("employee_name")?,
            site_code: f.text("site_code")?,
            raw: Value::Null,
        })
    }

    /// When the change was made: `status_date` as an instant, a bare date
    /// being local midnight in the account's `zone`.
    pub fn status_at(&self, zone: Tz) -> DateTime<Utc> {
        self.status_date.instant(zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_up_periods_the_export_walks_are_all_accepted() {
        let since: DateTime<Utc> = "2023-01-31T00:00:00Z".parse().unwrap();
        let until: DateTime<Utc> = "2026-11-29T00:00:00Z".parse().unwrap();
        for (from, to) in crate::domain::days::sign_up_periods(since, until) {
            check_sign_up_period(from, to).unwrap();
        }
    }
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
            a.sign_up_at(chrono_tz::America::Chicago)
                .unwrap()
                .to_rfc3339(),
            "2020-05-19T08:45:00+00:00",
            "a date-time is UTC whatever the account's zone"
        );
        assert_eq!((a.name, a.cancel_date, a.status), (None, None, Some(7)));
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
        assert_eq!(
            c.status_at(chrono_tz::America::New_York).to_rfc3339(),
            "2024-03-02T08:00:00+00:00"
        );
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

    /// A clock-entries answer as the live service sends it: one entry on
    /// shift (`clockOut` null), one without `clockIn`, one whole.
    fn live_clock_entries() -> Value {
        let mut whole = entry();
        whole["clockIn"] = json!("2021-01-09T13:00:00.000Z");
        whole["clockOut"] = json!("2021-01-09T17:00:00.000Z");
        whole["regularHours"] = number("4");
        let mut on_shift = entry();
        on_shift["clockIn"] = json!("2021-01-10T13:00:00.000Z");
        on_shift["clockOut"] = Value::Null;
        on_shift["regularHours"] = number("0");
        let mut no_clock_in = entry();
        no_clock_in["clockIn"] = Value::Null;
        no_clock_in["siteCode"] = json!("N02");
        json!({"data": {"weeks": [
            {"week": "2021-01-08 - 2021-01-14", "weekTotalRegularHours": 12.5,
             "weekTotalOverTimeHours": 0, "clockEntries": [entry(), no_clock_in, whole]},
            {"week": "2021-01-15 - 2021-01-21", "weekTotalRegularHours": 0,
             "weekTotalOverTimeHours": 0, "clockEntries": [on_shift]}
        ]}})
    }

    #[test]
    fn an_entry_without_clock_in_is_set_aside_alone_and_an_open_shift_is_kept_as_given() {
        let read = clock_entries_of(live_clock_entries(), 1102).unwrap();
        let ins: Vec<String> = read
            .entries
            .iter()
            .map(|e| e.clock_in.to_rfc3339())
            .collect();
        assert_eq!(
            ins,
            [
                "2021-01-08T13:00:00+00:00",
                "2021-01-09T13:00:00+00:00",
                "2021-01-10T13:00:00+00:00"
            ]
        );
        let open = &read.entries[2];
        assert_eq!((open.clock_out, open.regular_hours), (None, Decimal::ZERO));
        assert_eq!(read.quarantined.len(), 1);
        let q = &read.quarantined[0];
        assert_eq!(q.employee_id, 1102);
        assert_eq!(q.site_code.as_deref(), Some("N02"));
        assert_eq!(
            q.clock_out.map(|t| t.to_rfc3339()).as_deref(),
            Some("2021-01-08T21:30:00+00:00")
        );
        assert!(
            q.reason.contains("1102") && q.reason.contains("`clockIn` is null"),
            "{}",
            q.reason
        );
        assert_eq!(q.raw["siteCode"], "N02", "kept as received");
    }

    #[test]
    fn a_clock_in_missing_or_empty_is_set_aside_too_and_a_bad_one_fails_the_answer() {
        for (value, said) in [(None, "missing"), (Some(json!("")), "empty")] {
            let mut raw = entry();
            match value {
                Some(v) => raw["clockIn"] = v,
                None => {
                    raw.as_object_mut().unwrap().remove("clockIn");
                }
            }
            let body = json!({"data": {"weeks": [{"clockEntries": [raw, entry()]}]}});
            let read = clock_entries_of(body, 7).unwrap();
            assert_eq!((read.entries.len(), read.quarantined.len()), (1, 1));
            assert!(read.quarantined[0].reason.contains(said));
        }
        let mut wrong = entry();
        wrong["clockIn"] = json!("yesterday");
        let body = json!({"data": {"weeks": [{"clockEntries": [wrong, entry()]}]}});
        let e = clock_entries_of(body, 7).unwrap_err();
        assert!(e.contains("clockIn") && e.contains("yesterday"), "{e}");
    }

    #[test]
    fn a_bare_status_date_is_local_midnight_in_the_accounts_zone() {
        let body = json!({"data": {"accounts": [
            {"washbook_account_id": "1:1001", "recurring_id": "1:1001", "old_status": "Active",
             "new_status": "Cancelled", "status_date": "2024-06-01",
             "employee_name": "Maria Lopez", "site_code": "N01"},
            {"washbook_account_id": "1:1002", "recurring_id": "1:1002", "old_status": "Active",
             "new_status": "Suspended", "status_date": "2024-06-01T03:00:00.000Z",
             "employee_name": "Maria Lopez", "site_code": "N01"}
        ], "offset": 1, "limit": 1000, "total": 2}});
        let (raw, total) = envelope(body, "accounts").unwrap();
        assert_eq!(total, Some(2));
        let changes: Vec<StatusChange> = raw
            .into_iter()
            .map(StatusChange::from_raw)
            .collect::<Result<_, _>>()
            .unwrap();
        let june_first = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        assert_eq!(changes[0].status_date, ServedTime::Date(june_first));
        let new_york = chrono_tz::America::New_York;
        // Midnight in New York (EDT, UTC−4), not midnight UTC.
        assert_eq!(
            changes[0].status_at(new_york).to_rfc3339(),
            "2024-06-01T04:00:00+00:00"
        );
        assert_eq!(
            changes[0].status_at(chrono_tz::Asia::Tokyo).to_rfc3339(),
            "2024-05-31T15:00:00+00:00"
        );
        // A full date-time stays the instant it names.
        assert_eq!(
            changes[1].status_at(new_york).to_rfc3339(),
            "2024-06-01T03:00:00+00:00"
        );
    }

    #[test]
    fn bare_sign_up_and_cancel_dates_are_local_midnights_too() {
        let a = RecurringAccount::from_raw(json!({
            "id": "1:1001", "signUpDate": "2024-03-10", "cancelDate": "2024-11-03 ",
            "status": 7, "statusName": "Cancelled"
        }))
        .unwrap();
        let zone = chrono_tz::America::Chicago;
        assert_eq!(
            a.sign_up_at(zone).unwrap().to_rfc3339(),
            "2024-03-10T06:00:00+00:00"
        );
        // The day summer time ends: midnight is still CDT (UTC−5).
        assert_eq!(
            a.cancel_at(zone).unwrap().to_rfc3339(),
            "2024-11-03T05:00:00+00:00"
        );
        let e = RecurringAccount::from_raw(json!({"id": "1:1001", "signUpDate": "2024-13-10"}))
            .unwrap_err();
        assert!(e.contains("signUpDate"), "{e}");
    }

    #[test]
    fn a_null_total_with_full_pages_reads_on_until_a_short_page() {
        let employees = |n: usize| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"employeeId": i, "firstName": "A", "lastName": "B"}))
                .collect()
        };
        let body = |n: usize| json!({"data": {"employees": employees(n), "offset": 1, "limit": 100, "total": null}});
        let page = |n: usize, page: u32| {
            let (items, total) = envelope(body(n), "employees").unwrap();
            Page {
                items,
                page,
                limit: 100,
                total,
            }
        };
        assert_eq!(page(100, 1).total, None);
        assert!(!page(100, 1).is_last(), "a full page without a total");
        assert!(!page(100, 2).is_last());
        assert!(page(37, 3).is_last());
        assert!(page(0, 3).is_last());
        // A missing total reads the same.
        let (_, total) = envelope(json!({"data": {"employees": []}}), "employees").unwrap();
        assert_eq!(total, None);
    }

    #[tokio::test]
    async fn the_page_walker_reads_every_full_page_of_a_null_total() {
        // 250 items served 100 a page, every page answering `total: null`.
        let asked = std::sync::Mutex::new(Vec::new());
        let items = crate::api::walk_pages("employee", |page| {
            asked.lock().unwrap().push(page);
            async move {
                let start = (page as usize - 1) * 100;
                let items: Vec<usize> = (start..250.min(start + 100)).collect();
                Ok::<_, crate::api::ApiError>(Page {
                    items,
                    page,
                    limit: 100,
                    total: None,
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(items, (0..250).collect::<Vec<_>>());
        assert_eq!(*asked.lock().unwrap(), [1, 2, 3]);
    }
}
