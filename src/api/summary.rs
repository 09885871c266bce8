//! Transaction summaries (`GET /transaction/version-2`): the only place the
//! live service sends a transaction's membership flags and status. The
//! export's records lack them; each exported site-day reads its summaries to
//! fill them in, and a lookback compares a stored day's summaries with what
//! they said before instead of exporting the day again.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::model::{flag, text, timestamp, Transaction};

/// Items per summary page: the most the endpoint serves.
pub const SUMMARY_PAGE_SIZE: u32 = 100;

/// One transaction's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// `transId`: the export's `id`.
    pub id: String,
    pub number: Option<i64>,
    pub total: Decimal,
    pub date: Option<DateTime<Utc>>,
    pub customer_id: Option<String>,
    pub is_recurring_plan_sale: Option<bool>,
    pub is_recurring_plan_redemption: Option<bool>,
    pub transaction_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSummary {
    #[serde(default, deserialize_with = "text")]
    trans_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    trans_number: Option<String>,
    #[serde(default)]
    total: Value,
    #[serde(default, deserialize_with = "optional_timestamp")]
    date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "text")]
    customer_id: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    is_recurring_plan_sale: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    is_recurring_plan_redemption: Option<bool>,
    #[serde(default, deserialize_with = "text")]
    transaction_status: Option<String>,
}

fn optional_timestamp<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        v => timestamp(v).map(Some).map_err(serde::de::Error::custom),
    }
}

impl Summary {
    /// Parse one item of a summary page; the error names the item and field.
    pub fn from_raw(raw: &Value) -> Result<Self, String> {
        let r = RawSummary::deserialize(raw).map_err(|e| format!("a summary {raw}: {e}"))?;
        let id = r
            .trans_id
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| format!("a summary without `transId`: {raw}"))?;
        let total = super::model::decimal_of(&r.total)
            .map_err(|e| format!("summary {id}: total: {e}"))?
            .ok_or_else(|| format!("summary {id}: `total` is missing"))?;
        let number = match r.trans_number {
            None => None,
            Some(n) => Some(
                n.trim()
                    .parse()
                    .map_err(|_| format!("summary {id}: `transNumber` {n} is not an integer"))?,
            ),
        };
        Ok(Self {
            id,
            number,
            total,
            date: r.date,
            customer_id: r.customer_id,
            is_recurring_plan_sale: r.is_recurring_plan_sale,
            is_recurring_plan_redemption: r.is_recurring_plan_redemption,
            transaction_status: r.transaction_status,
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
            self.total.normalize(),
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
        assert_eq!(s.total, Decimal::new(1299, 2));
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
        repriced.total = Decimal::new(1099, 2);
        assert_ne!(s.digest(), void.digest());
        assert_ne!(s.digest(), repriced.digest());
        let mut raw = live();
        raw["total"] = json!("12.990");
        assert_eq!(Summary::from_raw(&raw).unwrap().digest(), s.digest());
    }
}
