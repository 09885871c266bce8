//! HTTP face of the simulator: the three routes the export needs, the
//! transaction summaries (in `summaries`) and the labour and membership
//! routes (in `people_routes`), all behind the one gate of `gate`.

use axum::extract::{RawQuery, State};
use axum::middleware;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::chain::render;
use super::gate::{chosen, gate, query_params, roll, ApiError, Caller};
use super::jobs::{build_time, page, Job, Outcome, PAGE_SIZE};
use super::{lock, people_routes, query, summaries, washes, Simulator};

/// Builds the routes; everything else answers 404 `EntityNotFoundError`.
pub(crate) fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/v1/site/list", get(site_list))
        .route("/v1/transaction/load-job", post(load_job))
        .route("/v1/transaction/get-job-data", get(get_job_data))
        .route("/v1/transaction", get(summaries::plain))
        .route("/v1/transaction/version-2", get(summaries::version_2))
        .route("/v1/transaction/type/{item_type}", get(washes::by_type))
        .route("/v1/employee", get(people_routes::employees))
        .route(
            "/v1/employee/{employee_id}/clock-entries",
            get(people_routes::clock_entries),
        )
        .route(
            "/v1/recurring/account/list",
            get(people_routes::recurring_accounts),
        )
        .route(
            "/v1/recurring/account/status-list",
            get(people_routes::status_changes),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(middleware::from_fn_with_state(sim.clone(), gate))
        .with_state(sim)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// `GET /v1/site/list`: every site of the account (or only the header's site).
async fn site_list(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let account = &sim.inner.chain.accounts()[caller.account];
    let sites: Vec<Value> = account
        .sites
        .iter()
        .filter(|s| caller.site_header.as_ref().map_or(true, |h| *h == s.code))
        .map(|s| {
            json!({
                "siteID": s.site_id,
                "code": s.code,
                "name": s.name,
                "timezone": s.timezone.map(|tz| tz.name()),
            })
        })
        .collect();
    Json(json!({ "data": { "sites": sites } }))
}

/// `POST /v1/transaction/load-job`: validates, then starts (or reuses) a build.
async fn load_job(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let inner = &sim.inner;
    let criteria = query::validate(
        &query_params(raw.as_deref()),
        Utc::now().timestamp(),
        inner.max_age_days,
        PAGE_SIZE..=PAGE_SIZE,
    )
    .map_err(ApiError::Validation)?
    .criteria(&caller)?;
    let hash = criteria.hash();

    let mut guard = lock(&inner.state);
    let state = &mut *guard;
    let now = Instant::now();
    state.jobs.purge(now);
    if state.jobs.needs_build(&hash, now) {
        let outcome = if roll(&mut state.fault_rng, state.faults.fail_rate) {
            Outcome::Fail
        } else {
            let window = query::select(
                &inner.chain,
                caller.account,
                &criteria,
                Utc::now(),
                state.overrides.get(&caller.api_id),
            );
            Outcome::Pass {
                data: page(&window, criteria.offset, criteria.limit),
                total: window.len(),
            }
        };
        let job = Job {
            api_id: caller.api_id.clone(),
            offset: criteria.offset,
            limit: criteria.limit,
            created: now,
            ready_at: now + build_time(inner.build_latency, inner.seed, &hash),
            outcome,
            short_once: chosen(&hash, "short", state.faults.short_page_rate),
            extra_working: if chosen(&hash, "linger", state.faults.extra_working_rate) {
                2
            } else {
                0
            },
        };
        state.jobs.insert(hash.clone(), job);
    }
    state.counters.entry(caller.api_id).or_default().load_jobs += 1;
    Ok(Json(json!({ "data": { "hash": hash } })))
}

/// `GET /v1/transaction/get-job-data?hash=`: the job's status and, once
/// passed, its page.
async fn get_job_data(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(raw.as_deref());
    let Some(hash) = params.get("hash").filter(|h| !h.is_empty()) else {
        return Err(ApiError::Validation(vec![
            "The hash field is required.".into()
        ]));
    };
    let mut guard = lock(&sim.inner.state);
    let state = &mut *guard;
    let now = Instant::now();
    state.jobs.purge(now);
    let counters = state.counters.entry(caller.api_id.clone()).or_default();
    counters.polls += 1;
    let Some(job) = state
        .jobs
        .get(hash)
        .filter(|job| job.api_id == caller.api_id)
    else {
        return Err(ApiError::NotFound);
    };
    let (offset, limit) = (job.offset, job.limit);
    let answer = |status: &str, data: Value, total: Value| {
        Json(json!({ "data": {
            "hash": hash,
            "status": status,
            "data": data,
            "offset": offset,
            "limit": limit,
            "total": total,
        }}))
    };
    if !job.is_ready(now) {
        counters.polls_working += 1;
        return Ok(answer("working", json!([]), json!(0)));
    }
    if job.extra_working > 0 {
        counters.polls_working += 1;
        if let Some(job) = state.jobs.get_mut(hash) {
            job.extra_working -= 1;
        }
        return Ok(answer("working", json!([]), json!(0)));
    }
    match &job.outcome {
        Outcome::Fail => Ok(answer("fail", json!([]), json!(0))),
        Outcome::Pass { .. } if roll(&mut state.fault_rng, state.faults.expire_rate) => {
            state.jobs.remove(hash);
            Err(ApiError::NotFound)
        }
        Outcome::Pass { data, total } => {
            let quirks = state.faults.quirks();
            let shape = sim.inner.shape;
            let mut data: Vec<Value> = data
                .iter()
                .map(|r| {
                    let r =
                        washes::name_departments(render(r, quirks), &sim.inner.wash_departments);
                    shape.apply(r)
                })
                .collect();
            let faults = state.faults.clone();
            let mut bad_records = 0;
            for record in &mut data {
                let id = record["id"].as_str().unwrap_or_default().to_owned();
                if chosen(&id, "nul", faults.nul_rate) {
                    record["customerName"] = json!("Jane\u{0}Doe");
                    bad_records += 1;
                }
                if chosen(&id, "window", faults.out_of_window_rate) {
                    record["completeDate"] = json!("9999-12-31T23:59:59.000Z");
                    bad_records += 1;
                }
            }
            let due = data.len();
            let total = if chosen(hash, "null-total", faults.job_null_total_rate) {
                Value::Null
            } else {
                json!(faults
                    .absurd_total
                    .map_or(*total, |t| usize::try_from(t).unwrap_or(usize::MAX)))
            };
            let data = if roll(&mut state.fault_rng, faults.null_data_rate) {
                Value::Null
            } else {
                if let Some(job) = state.jobs.get_mut(hash).filter(|j| j.short_once) {
                    job.short_once = false;
                    data.truncate(data.len() / 2);
                }
                Value::Array(data)
            };
            let served = data.as_array().map_or(0, Vec::len);
            let counters = state.counters.entry(caller.api_id.clone()).or_default();
            counters.bad_records += bad_records;
            counters.short_pages += u64::from(served < due);
            Ok(answer("pass", data, total))
        }
    }
}
