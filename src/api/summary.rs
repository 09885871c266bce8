//! Transaction summaries (`GET /transaction/version-2`): the only place the
//! live service sends a transaction's membership flags and status. The
//! export's records lack them; each exported site-day reads its summaries to
//! fill them in, and a lookback compares a stored day's summaries with what
//! they said before instead of exporting the day again.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::model::{decimal_of, timestamp, Transaction};

/// Items per summary page: the most the endpoint serves.
pub const SUMMARY_PAGE_SIZE: u32 = 100;

/// One transaction's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// `transId`: the export's `id`.
    pub id: String,
    pub number: Option<i64>,
    /// `None` when the total is missing or not an exact amount.
    pub total: Option<Decimal>,
    /// The total as sent, for the digest of an unreadable one.
    total_text: String,
    pub date: Option<DateTime<Utc>>,
    pub customer_id: Option<String>,
    pub is_recurring_plan_sale: Option<bool>,
    pub is_recurring_plan_redemption: Option<bool>,
    pub transaction_status: Option<String>,
}

impl Summary {
    /// Parse one item of a summary page. Only a missing `transId` is an
    /// error (the item cannot be matched with its record); a field that
    /// cannot be read is left empty, and its text still counts in the
    /// digest, so one broken field (which the export quarantines with its
    /// record) never fails the day's other summaries.
    pub fn from_raw(raw: &Value) -> Result<Self, String> {
        let field = |name: &str| raw.get(name).unwrap_or(&Value::Null);
        let id = text_of(field("transId"))
            .ok_or_else(|| format!("a summary without `transId`: {}", snippet(raw)))?;
        let date = text_of(field("date")).and_then(|d| timestamp::<Value>(Value::String(d)).ok());
        Ok(Self {
            number: text_of(field("transNumber")).and_then(|n| n.trim().parse().ok()),
            total: decimal_of(field("total")).ok().flatten(),
            total_text: field("total").to_string(),
            date,
            customer_id: text_of(field("customerId")),
            is_recurring_plan_sale: flag_of(field("isRecurringPlanSale")),
            is_recurring_plan_redemption: flag_of(field("isRecurringPlanRedemption")),
            transaction_status: text_of(field("transactionStatus")),
            id,
        })
    }

    /// A digest of everything a summary shows, stored with the transaction:
    /// a later summary with another digest means the transaction changed.
    pub fn digest(&self) -> String {
        let flag = |f: Option<bool>| match f {
            Some(true) => "t",
            Some(false) => "f",
            None => "",
        };
        let text = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.id,
            self.number.map(|n| n.to_string()).unwrap_or_default(),
            self.total
                .map_or_else(|| self.total_text.clone(), |t| t.normalize().to_string()),
            self.date
                .map(|d| d.timestamp_millis().to_string())
                .unwrap_or_default(),
            self.customer_id.as_deref().unwrap_or_default(),
            flag(self.is_recurring_plan_sale),
            flag(self.is_recurring_plan_redemption),
            self.transaction_status.as_deref().unwrap_or_default(),
        );
        format!("{:016x}", fnv1a(text.as_bytes()))
    }

    /// Fill the export record's membership flags and status from this
    /// summary. A value the record carries is kept unless the summary says
    /// otherwise; returns how many fields the two disagreed on.
    pub fn apply_to(&self, t: &mut Transaction) -> u32 {
        fn merge<T: PartialEq + Clone>(ours: &mut Option<T>, theirs: &Option<T>) -> u32 {
            let Some(theirs) = theirs else { return 0 };
            let disagree = ours.as_ref().is_some_and(|o| o != theirs);
            *ours = Some(theirs.clone());
            u32::from(disagree)
        }
        t.summary_digest = Some(self.digest());
        merge(&mut t.transaction_status, &self.transaction_status)
            + merge(&mut t.is_recurring_plan_sale, &self.is_recurring_plan_sale)
            + merge(
                &mut t.is_recurring_plan_redemption,
                &self.is_recurring_plan_redemption,
            )
    }
}

/// A string (or number) field; `""` is null, as everywhere in this API.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A flag; anything but a boolean-like value reads as unknown.
fn flag_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The start of an item, for an error message.
fn snippet(raw: &Value) -> String {
    raw.to_string().chars().take(160).collect()
}

/// FNV-1a, 64 bits: stable across versions and platforms.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({"transNumber": 253425, "transId": "876:1001", "total": 12.99,
               "date": "2020-05-19T05:32:32.000Z", "customerId": "1:234",
               "isRecurringPlanSale": false, "isRecurringPlanRedemption": true,
               "transactionStatus": "Completed"})
    }

    #[test]
    fn a_live_summary_is_read_exactly() {
        let s = Summary::from_raw(&live()).unwrap();
        assert_eq!(s.id, "876:1001");
        assert_eq!(s.number, Some(253425));
        assert_eq!(s.total, Some(Decimal::new(1299, 2)));
        assert_eq!(s.is_recurring_plan_redemption, Some(true));
        assert_eq!(s.transaction_status.as_deref(), Some("Completed"));
    }

    #[test]
    fn empty_strings_are_null_and_a_summary_without_an_id_is_refused_naming_it() {
        let mut raw = live();
        raw["customerId"] = json!("");
        raw["transactionStatus"] = json!(null);
        let s = Summary::from_raw(&raw).unwrap();
        assert_eq!((s.customer_id, s.transaction_status), (None, None));
        raw["transId"] = json!("");
        let e = Summary::from_raw(&raw).unwrap_err();
        assert!(e.contains("transId"), "{e}");
    }

    #[test]
    fn the_digest_changes_with_what_a_void_or_a_reprice_changes_and_not_with_formatting() {
        let s = Summary::from_raw(&live()).unwrap();
        let mut void = s.clone();
        void.transaction_status = Some("Voided".into());
        let mut repriced = s.clone();
        repriced.total = Some(Decimal::new(1099, 2));
        assert_ne!(s.digest(), void.digest());
        assert_ne!(s.digest(), repriced.digest());
        let mut raw = live();
        raw["total"] = json!("12.990");
        assert_eq!(Summary::from_raw(&raw).unwrap().digest(), s.digest());
    }

    #[test]
    fn a_broken_field_leaves_the_summary_readable_by_its_id() {
        let mut raw = live();
        raw["total"] = json!("twelve dollars");
        raw["isRecurringPlanSale"] = json!("maybe");
        let s = Summary::from_raw(&raw).unwrap();
        assert_eq!(
            (s.id.as_str(), s.total, s.is_recurring_plan_sale),
            ("876:1001", None, None)
        );
        let mut mended = raw.clone();
        mended["total"] = json!(12.99);
        assert_ne!(Summary::from_raw(&mended).unwrap().digest(), s.digest());
    }
}
