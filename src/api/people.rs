//! Labour and membership records as the live service sends them: employees
//! and their clock entries, recurring (membership) accounts and their status
//! changes. Parsing follows `model.rs`: lenient where the service varies
//! (`""` for null, numbers as strings), strict where a wrong value would
//! corrupt reports (keys, times, money and hours, which are kept exact).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

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
