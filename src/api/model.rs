//! Records as the live service sends them. Parsing is lenient where the
//! service is known to vary (`""` for null, `discount` or `discountAmount`,
//! numbers as strings, unknown enum values) and strict where a wrong value
//! would corrupt reports (ids, dates, money).

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;

/// A site entry of /site/list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteEntry {
    #[serde(rename = "siteID", alias = "siteId", deserialize_with = "integer")]
    pub site_id: i64,
    #[serde(default, deserialize_with = "text")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub timezone: Option<String>,
}

/// The build state of an export job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Working,
    Pass,
    Fail,
    /// A value the documentation does not list; treated like `working`.
    Other(String),
}

/// One answer of get-job-data.
#[derive(Debug)]
pub struct JobData {
    pub status: JobStatus,
    /// Transactions across all pages of the criteria; `None` when the
    /// service leaves it out or sends `null` (the live service sometimes
    /// does): then only a short page ends the window.
    pub total: Option<u64>,
    /// This page's records, untouched; parse each with [`Transaction::from_raw`].
    pub records: Vec<Value>,
}

impl JobData {
    pub(crate) fn from_body(body: Value) -> Result<Self, String> {
        let mut data = match body {
            Value::Object(mut o) => match o.remove("data") {
                Some(Value::Object(d)) => d,
                _ => return Err("the body has no `data` object".into()),
            },
            _ => return Err("the body is not a JSON object".into()),
        };
        let status = match data.get("status").and_then(Value::as_str) {
            Some("pass") => JobStatus::Pass,
            Some("working") => JobStatus::Working,
            Some("fail") => JobStatus::Fail,
            Some(other) => JobStatus::Other(other.to_owned()),
            None => return Err("`data.status` is missing".into()),
        };
        let total = match data.get("total") {
            None | Some(Value::Null) => None,
            Some(v) => Some(as_u64(v).ok_or_else(|| format!("`data.total` is not a count: {v}"))?),
        };
        let records = match data.remove("data") {
            Some(Value::Array(records)) => records,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err("`data.data` is not an array".into()),
        };
        Ok(Self {
            status,
            total,
            records,
        })
    }
}

pub(super) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A transaction with its lines, parsed from one record of get-job-data.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: String,
    pub number: Option<i64>,
    pub kind: Option<String>,
    pub completed_at: DateTime<Utc>,
    pub location_code: Option<String>,
    pub sales_device_name: Option<String>,
    pub total: Decimal,
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    pub vehicle_license_plate: Option<String>,
    pub employee_cashier: Option<String>,
    pub employee_greeter: Option<String>,
    pub transaction_status: Option<String>,
    pub is_recurring_payment: Option<bool>,
    pub is_recurring_redemption: Option<bool>,
    pub is_recurring_sale: Option<bool>,
    pub is_prepaid_redemption: Option<bool>,
    pub is_prepaid_sale: Option<bool>,
    pub is_recurring_plan_sale: Option<bool>,
    pub is_recurring_plan_redemption: Option<bool>,
    pub items: Vec<Item>,
    pub tenders: Vec<Tender>,
    pub discounts: Vec<Discount>,
    /// The digest of the transaction's summary, once one was applied
    /// ([`Summary::apply_to`](super::summary::Summary::apply_to)).
    pub summary_digest: Option<String>,
    /// The record exactly as received.
    pub raw: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub sku: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub department: Option<String>,
    #[serde(default, deserialize_with = "money")]
    pub quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "money")]
    pub gross: Option<Decimal>,
    #[serde(default, deserialize_with = "money")]
    pub net: Option<Decimal>,
    #[serde(default, deserialize_with = "money")]
    pub discount: Option<Decimal>,
    #[serde(default, deserialize_with = "money")]
    pub tax: Option<Decimal>,
    #[serde(default, deserialize_with = "money")]
    pub additional_fee: Option<Decimal>,
    #[serde(default, deserialize_with = "flag")]
    pub is_voided: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tender {
    #[serde(default, deserialize_with = "text")]
    pub tender: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub tender_sub_type: Option<String>,
    #[serde(default, deserialize_with = "money")]
    pub amount: Option<Decimal>,
    #[serde(default, deserialize_with = "money")]
    pub change: Option<Decimal>,
    #[serde(default, deserialize_with = "money")]
    pub total: Option<Decimal>,
    #[serde(default, deserialize_with = "text")]
    pub reference_number: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub credit_card_last_four: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub credit_card_expiration_date: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDiscount {
    #[serde(default, deserialize_with = "text")]
    discount_name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    discount_sku: Option<String>,
    #[serde(default, deserialize_with = "text")]
    applied_to_item_name: Option<String>,
    /// The spec's name for the amount.
    #[serde(default, deserialize_with = "money")]
    discount: Option<Decimal>,
    /// The live service's name for the amount.
    #[serde(default, deserialize_with = "money")]
    discount_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "text")]
    discount_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Discount {
    pub discount_name: Option<String>,
    pub discount_sku: Option<String>,
    pub applied_to_item_name: Option<String>,
    pub amount: Option<Decimal>,
    pub discount_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTransaction {
    #[serde(deserialize_with = "required_text")]
    id: String,
    #[serde(default, deserialize_with = "optional_integer")]
    number: Option<i64>,
    #[serde(default, rename = "type", deserialize_with = "text")]
    kind: Option<String>,
    #[serde(deserialize_with = "timestamp")]
    complete_date: DateTime<Utc>,
    #[serde(default, deserialize_with = "text")]
    location_code: Option<String>,
    #[serde(default, deserialize_with = "text")]
    sales_device_name: Option<String>,
    #[serde(deserialize_with = "required_money")]
    total: Decimal,
    #[serde(default, deserialize_with = "list")]
    tenders: Vec<Tender>,
    #[serde(default, deserialize_with = "list")]
    items: Vec<Item>,
    /// The spec's and the export's `discount`; the detail endpoint, as the
    /// live-validated client saw it, names the list `discounts`.
    #[serde(default, alias = "discounts", deserialize_with = "list")]
    discount: Vec<RawDiscount>,
    #[serde(default, deserialize_with = "text")]
    customer_name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    customer_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    vehicle_license_plate: Option<String>,
    #[serde(default, deserialize_with = "text")]
    employee_cashier: Option<String>,
    #[serde(default, deserialize_with = "text")]
    employee_greeter: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    is_recurring_payment: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    is_recurring_redemption: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    is_recurring_sale: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    is_prepaid_redemption: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    is_prepaid_sale: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    is_recurring_plan_sale: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    is_recurring_plan_redemption: Option<bool>,
    #[serde(default, deserialize_with = "text")]
    transaction_status: Option<String>,
}

/// A record that cannot be stored as a transaction: it goes to quarantine
/// (`sonnys.rejected_records`) with the reason, and the rest of its page is
/// stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The record's `id`, when it has a readable one.
    pub transaction_id: Option<String>,
    pub reason: String,
    /// The record as received (NUL characters escaped).
    pub raw: Value,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl Transaction {
    /// Parse one record, keeping it whole in `raw`. A record that cannot be
    /// parsed comes back as [`Rejected`], its reason naming the record and
    /// the field.
    ///
    /// PostgreSQL's text and jsonb cannot hold a NUL character, so each NUL
    /// in a string becomes the six characters `\u0000`, in the columns and in
    /// `raw` alike: the original stays readable, nothing is lost.
    pub fn from_raw(mut raw: Value) -> Result<Self, Rejected> {
        escape_nul(&mut raw);
        let r = match RawTransaction::deserialize(&raw) {
            Ok(r) => r,
            Err(e) => {
                let transaction_id = raw.get("id").and_then(Value::as_str).map(str::to_owned);
                let shown = raw
                    .get("id")
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "<no id>".into());
                return Err(Rejected {
                    transaction_id,
                    reason: format!("transaction {shown}: {e}"),
                    raw,
                });
            }
        };
        if r.id.trim().is_empty() {
            return Err(Rejected {
                transaction_id: None,
                reason: "a transaction with an empty id".into(),
                raw,
            });
        }
        Ok(Self {
            id: r.id,
            number: r.number,
            kind: r.kind,
            completed_at: r.complete_date,
            location_code: r.location_code,
            sales_device_name: r.sales_device_name,
            total: r.total,
            customer_id: r.customer_id,
            customer_name: r.customer_name,
            vehicle_license_plate: r.vehicle_license_plate,
            employee_cashier: r.employee_cashier,
            employee_greeter: r.employee_greeter,
            transaction_status: r.transaction_status,
            is_recurring_payment: r.is_recurring_payment,
            is_recurring_redemption: r.is_recurring_redemption,
            is_recurring_sale: r.is_recurring_sale,
            is_prepaid_redemption: r.is_prepaid_redemption,
            is_prepaid_sale: r.is_prepaid_sale,
            is_recurring_plan_sale: r.is_recurring_plan_sale,
            is_recurring_plan_redemption: r.is_recurring_plan_redemption,
            items: r.items,
            tenders: r.tenders,
            discounts: r
                .discount
                .into_iter()
                .map(|d| Discount {
                    discount_name: d.discount_name,
                    discount_sku: d.discount_sku,
                    applied_to_item_name: d.applied_to_item_name,
                    amount: d.discount.or(d.discount_amount),
                    discount_code: d.discount_code,
                })
                .collect(),
            summary_digest: None,
            raw,
        })
    }
}

/// Replace each NUL character in the strings (and keys) of `value` with the
/// text `\u0000`.
fn escape_nul(value: &mut Value) {
    const NUL: char = '\0';
    match value {
        Value::String(s) if s.contains(NUL) => *s = s.replace(NUL, "\\u0000"),
        Value::Array(items) => items.iter_mut().for_each(escape_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains(NUL)) {
                let entries = std::mem::take(map);
                *map = entries
                    .into_iter()
                    .map(|(k, v)| (k.replace(NUL, "\\u0000"), v))
                    .collect();
            }
            map.values_mut().for_each(escape_nul);
        }
        _ => {}
    }
}

// ---- field parsers ----

/// A string where `""` (and whitespace) mean null; numbers become their text.
pub(crate) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        other => return Err(de::Error::custom(format!("expected a string, got {other}"))),
    })
}

fn required_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text(d)?.ok_or_else(|| de::Error::custom("must not be empty"))
}

pub(crate) fn decimal_of(v: &Value) -> Result<Option<Decimal>, String> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        other => return Err(format!("expected an amount, got {other}")),
    };
    text.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(&text))
        .map(|d| Some(d.normalize()))
        .map_err(|_| format!("`{text}` is not an exact amount"))
}

/// Money and quantities: a JSON number (or numeric string) read exactly,
/// never through f64.
fn money<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    decimal_of(&Value::deserialize(d)?).map_err(de::Error::custom)
}

fn required_money<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    money(d)?.ok_or_else(|| de::Error::custom("an amount is required"))
}

pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::Null => None,
        Value::Number(n) => Some(n.as_i64().unwrap_or(0) != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "" => None,
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            other => {
                return Err(de::Error::custom(format!(
                    "expected true or false, got `{other}`"
                )))
            }
        },
        other => {
            return Err(de::Error::custom(format!(
                "expected true or false, got {other}"
            )))
        }
    })
}

fn optional_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        v => Some(integer_of(&v).map_err(de::Error::custom)?),
    })
}

fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    integer_of(&Value::deserialize(d)?).map_err(de::Error::custom)
}

pub(super) fn integer_of(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("expected an integer, got {v}"))
}

/// `2020-05-19T05:32:32.000Z`; also accepts an offset, or no zone (then UTC).
pub(crate) fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                .map(|t| t.and_utc())
        })
        .map_err(|_| de::Error::custom(format!("`{s}` is not a UTC date-time")))
}

/// A list where null or a missing field means empty.
fn list<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        v @ Value::Array(_) => serde_json::from_value(v).map_err(de::Error::custom),
        other => Err(de::Error::custom(format!("expected a list, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({
            "id": "876:1001", "number": 253425, "type": "Sale",
            "completeDate": "2020-05-19T05:32:32.000Z", "locationCode": "SITE1",
            "salesDeviceName": "POS1", "total": 7.99,
            "tenders": [{"tender": "Credit", "tenderSubType": "Visa", "amount": 20.00, "change": -1.00, "total": 19.00,
                          "referenceNumber": "", "creditCardLastFour": "1111", "creditCardExpirationDate": "2025-01"}],
            "items": [{"name": "Basic Wash", "sku": "", "department": "Wash", "quantity": 1, "gross": 8.55,
                        "net": 7.99, "discount": 0.00, "tax": 0.56, "additionalFee": 0, "isVoided": false}],
            "discount": [{"discountName": "Coupon", "discountSku": null, "appliedToItemName": "Basic Wash",
                          "discountAmount": 2.10, "discountCode": "91415818"}],
            "customerName": "", "customerId": "1:234", "vehicleLicensePlate": "",
            "employeeCashier": "Mary Jones", "employeeGreeter": "",
            "isRecurringPayment": false, "isRecurringRedemption": false, "isRecurringSale": false,
            "isPrepaidRedemption": false, "isPrepaidSale": false,
            "isRecurringPlanSale": null, "isRecurringPlanRedemption": false,
            "transactionStatus": "Completed", "somethingNew": {"kept": true}
        })
    }

    #[test]
    fn live_quirks_are_accepted_and_the_record_is_kept_whole() {
        let t = Transaction::from_raw(record()).unwrap();
        assert_eq!(t.total, "7.99".parse::<Decimal>().unwrap());
        assert_eq!(t.customer_name, None);
        assert_eq!(t.employee_greeter, None);
        assert_eq!(t.customer_id.as_deref(), Some("1:234"));
        assert_eq!(t.discounts[0].amount, Some("2.1".parse().unwrap()));
        assert_eq!(t.items[0].sku, None);
        assert_eq!(t.tenders[0].reference_number, None);
        assert_eq!(t.is_recurring_plan_sale, None);
        assert_eq!(t.raw["somethingNew"]["kept"], json!(true));
    }

    #[test]
    fn the_spec_name_of_the_discount_amount_works_too() {
        let mut r = record();
        r["discount"][0] = json!({"discountName": "Coupon", "discount": 2.00});
        assert_eq!(
            Transaction::from_raw(r).unwrap().discounts[0].amount,
            Some(Decimal::new(2, 0))
        );
    }

    #[test]
    fn money_is_exact_even_where_f64_is_not() {
        let mut r = record();
        r["total"] = serde_json::from_str("0.30000000000000004441").unwrap();
        r["items"][0]["gross"] = serde_json::from_str("1234567.105").unwrap();
        let t = Transaction::from_raw(r).unwrap();
        assert_eq!(t.total.to_string(), "0.30000000000000004441");
        assert_eq!(t.items[0].gross.unwrap().to_string(), "1234567.105");
    }

    #[test]
    fn unknown_enum_values_are_kept_as_text() {
        let mut r = record();
        r["transactionStatus"] = json!("Archived");
        r["type"] = json!("Refund");
        let t = Transaction::from_raw(r).unwrap();
        assert_eq!(t.transaction_status.as_deref(), Some("Archived"));
        assert_eq!(t.kind.as_deref(), Some("Refund"));
    }

    #[test]
    fn a_bad_record_names_itself_and_the_problem() {
        let mut r = record();
        r["completeDate"] = json!("yesterday");
        let e = Transaction::from_raw(r).unwrap_err();
        assert!(
            e.reason.contains("876:1001") && e.reason.contains("yesterday"),
            "{e}"
        );
        assert_eq!(e.transaction_id.as_deref(), Some("876:1001"));
        assert_eq!(e.raw["completeDate"], "yesterday", "the raw record is kept");
    }

    #[test]
    fn a_nul_character_is_kept_as_escaped_text_in_the_columns_and_the_raw_record() {
        let mut r = record();
        r["customerName"] = json!("Jane\u{0}Doe");
        r["items"][0]["name"] = json!("\u{0}");
        let t = Transaction::from_raw(r).unwrap();
        assert_eq!(t.customer_name.as_deref(), Some("Jane\\u0000Doe"));
        assert_eq!(t.raw["customerName"], "Jane\\u0000Doe");
        assert!(!has_nul(&t.raw), "jsonb cannot hold a NUL");
    }

    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has_nul),
            Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
            "[0-9]{1,40}(\\.[0-9]{1,40})?"
                .prop_map(|n| serde_json::from_str(&n).unwrap_or(Value::Null)),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("id".to_owned()),
                        Just("completeDate".to_owned()),
                        Just("total".to_owned()),
                        Just("items".to_owned()),
                        Just("tenders".to_owned()),
                        Just("discount".to_owned()),
                        Just("number".to_owned()),
                        Just("isRecurringSale".to_owned()),
                        ".{0,6}".prop_map(|s| s)
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The decoder meets whatever a hostile or broken server sends: any
        /// JSON value is parsed or rejected with a reason, never a panic.
        #[test]
        fn any_json_record_is_parsed_or_rejected_never_a_panic(raw in any_json()) {
            match Transaction::from_raw(raw) {
                Ok(t) => proptest::prop_assert!(!t.id.trim().is_empty()),
                Err(r) => proptest::prop_assert!(!r.reason.is_empty()),
            }
        }

        /// A valid record with arbitrary strings (NULs included) in its text
        /// fields is stored with no NUL left anywhere.
        #[test]
        fn text_fields_never_keep_a_nul(name in "\\PC{0,8}\u{0}?\\PC{0,8}") {
            let mut r = record();
            r["customerName"] = json!(name);
            let t = Transaction::from_raw(r).unwrap();
            proptest::prop_assert!(!t.customer_name.unwrap_or_default().contains('\0'));
            proptest::prop_assert!(!has_nul(&t.raw));
        }
    }

    #[test]
    fn job_data_reads_status_and_total() {
        let body = json!({"data": {"hash": "h", "status": "pass", "data": [record()], "offset": 1, "limit": 100, "total": "101"}});
        let d = JobData::from_body(body).unwrap();
        assert_eq!(
            (d.status, d.total, d.records.len()),
            (JobStatus::Pass, Some(101), 1)
        );
        assert!(JobData::from_body(json!([1, 2])).is_err());
        // A null total is not a zero total: the window's end is unknown.
        let body = json!({"data": {"status": "pass", "data": [record()], "total": null}});
        assert_eq!(JobData::from_body(body).unwrap().total, None);
    }

    #[test]
    fn the_discount_list_may_be_named_discounts() {
        let mut r = record();
        let list = r.as_object_mut().unwrap().remove("discount").unwrap();
        r["discounts"] = list;
        let t = Transaction::from_raw(r).unwrap();
        assert_eq!(t.discounts.len(), 1);
        assert_eq!(t.discounts[0].discount_name.as_deref(), Some("Coupon"));
        assert_eq!(t.discounts[0].amount, Some("2.1".parse().unwrap()));
        assert_eq!(
            t.raw["discounts"][0]["discountCode"], "91415818",
            "the record is kept as received"
        );
    }
}
