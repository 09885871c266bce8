//! The transaction summaries: `GET /v1/transaction/version-2` (the only
//! place the live service sends the plan flags and the status) and
//! `GET /v1/transaction`, paged straight from the request without a job.
//! Version 2 answers identical criteria from a 10-minute cache.

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::{Extension, Json};
use chrono::Utc;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::chain::Quirks;
use super::gate::{chosen, query_params, ApiError, Caller};
use super::jobs::{page, PAGE_SIZE};
use super::{lock, query, Simulator};

/// How long version 2 answers identical criteria from its cache.
pub(crate) const SUMMARY_CACHE_TTL: Duration = Duration::from_secs(10 * 60);

/// Which of the two summary endpoints a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listing {
    /// `/transaction`: number, id, total and date.
    Plain,
    /// `/transaction/version-2`: those plus the customer, the plan flags
    /// and the status; cached.
    Version2,
}

impl Listing {
    /// The summary of one full canonical record.
    fn item(self, record: &Value, quirks: Quirks) -> Value {
        let field = |name: &str| record.get(name).cloned().unwrap_or(Value::Null);
        let mut item = Map::new();
        item.insert("transNumber".into(), field("number"));
        item.insert("transId".into(), field("id"));
        item.insert("total".into(), field("total"));
        item.insert("date".into(), field("completeDate"));
        if self == Self::Version2 {
            let customer = match field("customerId") {
                Value::Null if quirks.empty_strings => Value::String(String::new()),
                id => id,
            };
            item.insert("customerId".into(), customer);
            for name in [
                "isRecurringPlanSale",
                "isRecurringPlanRedemption",
                "transactionStatus",
            ] {
                item.insert(name.into(), field(name));
            }
        }
        Value::Object(item)
    }

    /// The fault tag that picks this endpoint's pages for a null `total`.
    fn null_total_tag(self) -> &'static str {
        match self {
            Self::Plain => "null-total-v1",
            Self::Version2 => "null-total-v2",
        }
    }
}

/// `GET /v1/transaction/version-2`.
pub(super) async fn version_2(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    summaries(&sim, &caller, raw.as_deref(), Listing::Version2).map(Json)
}

/// `GET /v1/transaction`.
pub(super) async fn plain(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    summaries(&sim, &caller, raw.as_deref(), Listing::Plain).map(Json)
}

/// One page of summaries of the transactions `load-job` would export for
/// the same criteria, in the same order.
fn summaries(
    sim: &Simulator,
    caller: &Caller,
    raw: Option<&str>,
    listing: Listing,
) -> Result<Value, ApiError> {
    let inner = &sim.inner;
    let criteria = query::validate(
        &query_params(raw),
        Utc::now().timestamp(),
        inner.max_age_days,
        1..=PAGE_SIZE,
    )
    .map_err(ApiError::Validation)?
    .criteria(caller)?;
    // The criteria hash covers the API id, window, site, limit and offset.
    let key = criteria.hash();
    let asked = Instant::now();
    let mut state = lock(&inner.state);
    if listing == Listing::Version2 {
        state
            .summary_cache
            .retain(|_, (at, _)| asked.duration_since(*at) < SUMMARY_CACHE_TTL);
        if let Some((_, body)) = state.summary_cache.get(&key) {
            return Ok(body.clone());
        }
    }
    let window = query::select(
        &inner.chain,
        caller.account,
        &criteria,
        Utc::now(),
        state.overrides.get(&caller.api_id),
    );
    let quirks = state.faults.quirks();
    let items: Vec<Value> = page(&window, criteria.offset, criteria.limit)
        .iter()
        .map(|r| listing.item(r, quirks))
        .collect();
    let total = if chosen(&key, listing.null_total_tag(), state.faults.null_total_rate) {
        Value::Null
    } else {
        json!(window.len())
    };
    let body = json!({ "data": {
        "transactions": items,
        "offset": criteria.offset,
        "limit": criteria.limit,
        "total": total,
    }});
    if listing == Listing::Version2 {
        state.summary_cache.insert(key, (asked, body.clone()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rehearsal::simulator::{Faults, SimulatorConfig};
    use chrono::{TimeZone, Utc};
    use chrono_tz::Tz;

    fn record() -> Value {
        json!({
            "id": "1:264580001",
            "number": 264_580_001,
            "type": "Sale",
            "completeDate": "2026-06-01T12:00:00.000Z",
            "total": 16.05,
            "customerId": null,
            "customerName": null,
            "isRecurringPlanSale": false,
            "isRecurringPlanRedemption": null,
            "transactionStatus": "Voided",
        })
    }

    #[test]
    fn version_2_carries_the_flags_and_status_as_recorded() {
        let quirks = Quirks {
            empty_strings: true,
            discount_amount: false,
        };
        assert_eq!(
            Listing::Version2.item(&record(), quirks),
            json!({
                "transNumber": 264_580_001,
                "transId": "1:264580001",
                "total": 16.05,
                "date": "2026-06-01T12:00:00.000Z",
                "customerId": "",
                "isRecurringPlanSale": false,
                "isRecurringPlanRedemption": null,
                "transactionStatus": "Voided",
            })
        );
        let plain = Listing::Plain.item(&record(), Quirks::default());
        assert_eq!(
            plain,
            json!({
                "transNumber": 264_580_001,
                "transId": "1:264580001",
                "total": 16.05,
                "date": "2026-06-01T12:00:00.000Z",
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn version_2_answers_from_its_cache_for_ten_minutes_then_afresh() {
        let sim = Simulator::new(SimulatorConfig {
            faults: Faults::default(),
            ..SimulatorConfig::default()
        });
        let api_id = "northside-demo";
        let caller = Caller {
            api_id: api_id.into(),
            account: 0,
            site_header: None,
        };
        let today = Utc::now()
            .with_timezone(&Tz::America__New_York)
            .date_naive();
        let date = today
            .iter_days()
            .rev()
            .skip(1)
            .find(|d| sim.day_volume(api_id, "N01", *d) > 0)
            .expect("a recent day with transactions");
        let start = Tz::America__New_York
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .expect("midnight exists")
            .timestamp();
        let raw = format!(
            "startDate={start}&endDate={}&site=N01&limit=100&offset=1",
            start + 86_399
        );
        let ask = || summaries(&sim, &caller, Some(&raw), Listing::Version2).expect("answer");
        let before = ask();
        let items = before["data"]["transactions"].as_array().expect("items");
        let i = items
            .iter()
            .position(|t| t["transactionStatus"] != "Voided")
            .expect("a transaction not voided");
        let id = items[i]["transId"].as_str().expect("an id").to_string();
        assert!(sim.update_transaction(api_id, &id, |r| {
            r["transactionStatus"] = "Voided".into();
        }));

        tokio::time::advance(SUMMARY_CACHE_TTL - Duration::from_secs(1)).await;
        assert_eq!(ask(), before);
        tokio::time::advance(Duration::from_secs(1)).await;
        let after = ask();
        assert_eq!(
            after["data"]["transactions"][i]["transactionStatus"],
            "Voided"
        );
        assert_eq!(after["data"]["total"], before["data"]["total"]);
    }
}
