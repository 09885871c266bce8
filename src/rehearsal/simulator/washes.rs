//! Transactions by item type: `GET /v1/transaction/type/{item_type}`, the
//! API's own classification (the live-validated public client counts washes
//! with `type/wash` rather than by department names), paged like the
//! summaries from the same window as `load-job`. And the department names
//! the chain's wash items are served under ([`SimulatorConfig::wash_departments`]),
//! so a chain whose departments are not called `Wash` can be rehearsed.
//!
//! [`SimulatorConfig::wash_departments`]: super::SimulatorConfig::wash_departments

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use chrono::Utc;
use serde_json::{json, Value};

use super::gate::{query_params, ApiError, Caller};
use super::jobs::{page, PAGE_SIZE};
use super::{lock, query, Simulator};

/// The department the chain generates its wash items in.
const WASH: &str = "Wash";

/// The canonical department a record must hold an item of to be listed
/// under `item_type`; `None` for an item type the sample chain never sells.
fn department_of(item_type: &str) -> Result<Option<&'static str>, ApiError> {
    Ok(match item_type {
        "wash" => Some(WASH),
        "prepaid-wash" => Some("Prepaid Wash"),
        "recurring" => Some("Recurring Plan"),
        "merchandise" => Some("Merchandise"),
        "washbook" | "giftcard" | "house-account" => None,
        _ => return Err(ApiError::NotFound),
    })
}

/// Whether a canonical record holds an item of `department`.
fn holds(record: &Value, department: &str) -> bool {
    record["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|i| i["department"] == department))
}

/// `GET /v1/transaction/type/{item_type}`: one page of the summaries
/// (number, id, total, date) of the window's transactions holding an item
/// of that type, in `load-job` order.
pub(super) async fn by_type(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(item_type): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let department = department_of(&item_type)?;
    let inner = &sim.inner;
    let criteria = query::validate(
        &query_params(raw.as_deref()),
        Utc::now().timestamp(),
        inner.max_age_days,
        1..=PAGE_SIZE,
    )
    .map_err(ApiError::Validation)?
    .criteria(&caller)?;
    let state = lock(&inner.state);
    let window: Vec<Value> = query::select(
        &inner.chain,
        caller.account,
        &criteria,
        Utc::now(),
        state.overrides.get(&caller.api_id),
    )
    .into_iter()
    .filter(|r| department.is_some_and(|d| holds(r, d)))
    .collect();
    let items: Vec<Value> = page(&window, criteria.offset, criteria.limit)
        .iter()
        .map(|r| {
            json!({
                "transNumber": r["number"],
                "transId": r["id"],
                "total": r["total"],
                "date": r["completeDate"],
            })
        })
        .collect();
    Ok(Json(json!({ "data": {
        "transactions": items,
        "offset": criteria.offset,
        "limit": criteria.limit,
        "total": window.len(),
    }})))
}

/// A served record with its wash items' department renamed: the wash
/// product `i` (Basic, Deluxe, Ultimate in turn) is served in
/// `names[i % names.len()]`. The default `["Wash"]` changes nothing.
pub(crate) fn name_departments(mut record: Value, names: &[String]) -> Value {
    if names.is_empty() || (names.len() == 1 && names[0] == WASH) {
        return record;
    }
    if let Some(items) = record["items"].as_array_mut() {
        for item in items.iter_mut().filter(|i| i["department"] == WASH) {
            let product = item["name"].as_str().and_then(super::chain::wash_product);
            let name = &names[product.unwrap_or(0) % names.len()];
            item["department"] = Value::String(name.clone());
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Value {
        json!({"id": "1:1", "items": [
            {"name": "Deluxe Wash", "department": "Wash"},
            {"name": "Tire Shine", "department": "Wash Extras"},
        ]})
    }

    #[test]
    fn wash_items_are_served_under_the_configured_names_by_product() {
        let names = vec!["Express Washes".to_string(), "Full Serve".to_string()];
        let served = name_departments(record(), &names);
        assert_eq!(served["items"][0]["department"], "Full Serve");
        assert_eq!(served["items"][1]["department"], "Wash Extras");
        assert_eq!(name_departments(record(), &["Wash".to_string()]), record());
    }

    #[test]
    fn the_type_list_knows_the_documented_item_types() {
        assert_eq!(department_of("wash").ok().flatten(), Some("Wash"));
        assert_eq!(department_of("giftcard").ok().flatten(), None);
        assert!(department_of("cars").is_err());
        assert!(holds(&record(), "Wash"));
        assert!(!holds(&record(), "Merchandise"));
    }
}
