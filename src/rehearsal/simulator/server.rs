//! HTTP face of the simulator: the three routes the export needs, the
//! transaction summaries (in `summaries`) and the labour and membership
//! routes (in `people_routes`), behind one gate that
//! applies slowness, the throttle, injected 500s and authentication in the
//! order a request meets them at the real service.

use std::collections::HashMap;

use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::chain::render;
use super::jobs::{build_time, page, Job, Outcome, PAGE_SIZE};
use super::{lock, people_routes, query, summaries, Simulator};

/// The page a misbehaving proxy in front of the service returns.
const PROXY_ERROR_PAGE: &str = "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n\
<body>\r\n<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// Error answers of the service, each with its documented status and `type`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("Missing client information")]
    MissingCredentials,
    #[error("Invalid client information")]
    BadCredentials,
    #[error("Access not authorized")]
    NotAuthorized,
    #[error("Invalid site code")]
    BadSiteCredentials,
    #[error("Mismatch between arguments and headers")]
    SiteArgsMismatch,
    #[error("API request rate limit exceeded")]
    RateExceeded,
    #[error("Payload validation failure")]
    Validation(Vec<String>),
    #[error("The requested entity could not be found")]
    NotFound,
    /// An injected outage: a proxy's HTML page, not the API's JSON.
    #[error("proxy failure")]
    ProxyFailure,
}

impl ApiError {
    fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MissingCredentials => (StatusCode::FORBIDDEN, "MissingClientCredentialsError"),
            Self::BadCredentials => (StatusCode::FORBIDDEN, "BadClientCredentialsError"),
            Self::NotAuthorized => (StatusCode::FORBIDDEN, "NotAuthorizedError"),
            Self::BadSiteCredentials => (StatusCode::FORBIDDEN, "BadSiteCredentialsError"),
            Self::SiteArgsMismatch => (StatusCode::FORBIDDEN, "NotAuthorizedSiteArgsError"),
            Self::RateExceeded => (StatusCode::TOO_MANY_REQUESTS, "RequestRateExceedError"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "PayloadValidationError"),
            Self::NotFound => (StatusCode::NOT_FOUND, "EntityNotFoundError"),
            Self::ProxyFailure => (StatusCode::INTERNAL_SERVER_ERROR, "ServerUnexpectedFailure"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::ProxyFailure = self {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/html")],
                PROXY_ERROR_PAGE,
            )
                .into_response();
        }
        let (status, kind) = self.status_and_type();
        let mut body = json!({ "type": kind, "message": self.to_string() });
        if let Self::Validation(messages) = self {
            body["messages"] = json!(messages);
        }
        (status, Json(body)).into_response()
    }
}

/// The authenticated caller, handed from the gate to the routes.
#[derive(Clone, Debug)]
pub(super) struct Caller {
    pub(super) api_id: String,
    pub(super) account: usize,
    /// The `X-Sonnys-Site-Code` header, already checked against the account.
    pub(super) site_header: Option<String>,
}

/// Builds the routes; everything else answers 404 `EntityNotFoundError`.
pub(crate) fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/v1/site/list", get(site_list))
        .route("/v1/transaction/load-job", post(load_job))
        .route("/v1/transaction/get-job-data", get(get_job_data))
        .route("/v1/transaction", get(summaries::plain))
        .route("/v1/transaction/version-2", get(summaries::version_2))
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

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Which endpoints a request is for, for the per-family counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Labour,
    Members,
    Summaries,
    Other,
}

impl Family {
    fn of(path: &str) -> Self {
        if path == "/v1/employee" || path.starts_with("/v1/employee/") {
            Self::Labour
        } else if path.starts_with("/v1/recurring/") {
            Self::Members
        } else if path == "/v1/transaction" || path == "/v1/transaction/version-2" {
            Self::Summaries
        } else {
            Self::Other
        }
    }
}

/// True with probability `p` (values outside 0..=1 act as never / always).
fn roll(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && rng.gen::<f64>() < p
}

/// Applies, in order: slowness, request counting and the throttle (before
/// authentication, keyed by the id header), injected 500s, authentication.
async fn gate(State(sim): State<Simulator>, mut req: Request, next: Next) -> Response {
    // The throttle counts a request when it arrives, as the service does:
    // not when this gate gets the state's lock, which a handler building a
    // page (load-job, the summaries) may hold for a while. Counting at the
    // lock would bunch requests that arrived spread out into one window.
    let arrived = Instant::now();
    let slow = lock(&sim.inner.state).faults.slow;
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    let arrived = arrived + slow;
    let headers = req.headers();
    let api_id = header_value(headers, "x-sonnys-api-id");
    let api_key = header_value(headers, "x-sonnys-api-key");
    let site_header = header_value(headers, "x-sonnys-site-code");
    let family = Family::of(req.uri().path());

    let caller = {
        let mut guard = lock(&sim.inner.state);
        let state = &mut *guard;
        let key = api_id.clone().unwrap_or_default();
        let verdict = api_id.as_deref().map(|id| state.throttle.hit(id, arrived));
        let counters = state.counters.entry(key).or_default();
        counters.requests += 1;
        match family {
            Family::Labour => counters.labour_requests += 1,
            Family::Members => counters.member_requests += 1,
            Family::Summaries => counters.summary_requests += 1,
            Family::Other => {}
        }
        if let Some(verdict) = verdict {
            counters.max_in_window = counters.max_in_window.max(verdict.count);
            if !verdict.allowed {
                counters.rate_limited += 1;
                return ApiError::RateExceeded.into_response();
            }
        }
        if roll(&mut state.fault_rng, state.faults.error_500_rate) {
            counters.errors_500 += 1;
            return ApiError::ProxyFailure.into_response();
        }
        let (Some(api_id), Some(api_key)) = (api_id, api_key) else {
            return ApiError::MissingCredentials.into_response();
        };
        let chain = &sim.inner.chain;
        let Some(account) = chain
            .account_index(&api_id)
            .filter(|&a| chain.accounts()[a].api_key == api_key)
        else {
            return ApiError::BadCredentials.into_response();
        };
        if state.revoked.contains(&api_id) {
            return ApiError::NotAuthorized.into_response();
        }
        if let Some(code) = &site_header {
            if !chain.accounts()[account]
                .sites
                .iter()
                .any(|s| &s.code == code)
            {
                return ApiError::BadSiteCredentials.into_response();
            }
        }
        Caller {
            api_id,
            account,
            site_header,
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
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

pub(super) fn query_params(raw: Option<&str>) -> HashMap<String, String> {
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        params
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    params
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
                .map(|r| shape.apply(render(r, quirks)))
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

/// Whether the record, job or request `id` is among the `share` chosen for
/// a fault: the same ones every time, so a re-export meets the same faults.
pub(super) fn chosen(id: &str, fault: &str, share: f64) -> bool {
    share > 0.0
        && (super::chain::str_hash(&format!("{fault}:{id}")) % 10_000) as f64 / 10_000.0 < share
}
