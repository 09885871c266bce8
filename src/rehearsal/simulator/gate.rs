//! The simulator's gate, in front of every route: slowness, request
//! counting and the throttle, injected 500s and authentication, in the order
//! a request meets them at the real service; and what the routes share
//! behind it: the service's error answers ([`ApiError`]), the authenticated
//! [`Caller`], query parsing and the choice of the requests that meet a fault.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::time::Instant;

use super::{lock, Simulator};

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
    TypeList,
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
        } else if path.starts_with("/v1/transaction/type/") {
            Self::TypeList
        } else {
            Self::Other
        }
    }
}

/// True with probability `p` (values outside 0..=1 act as never / always).
pub(super) fn roll(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && rng.gen::<f64>() < p
}

/// Applies, in order: slowness, request counting and the throttle (before
/// authentication, keyed by the id header), injected 500s, authentication.
pub(super) async fn gate(State(sim): State<Simulator>, mut req: Request, next: Next) -> Response {
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
            Family::TypeList => counters.type_list_requests += 1,
            Family::Other => {}
        }
        if let Some(verdict) = verdict {
            counters.max_in_window = counters.max_in_window.max(verdict.count);
            if !verdict.allowed {
                counters.rate_limited += 1;
                if counters.first_rejected_window.is_empty() {
                    let (wall, now) = (std::time::SystemTime::now(), Instant::now());
                    counters.first_rejected_window = state
                        .throttle
                        .arrivals(api_id.as_deref().unwrap_or_default())
                        .into_iter()
                        .map(|t| wall - now.saturating_duration_since(t))
                        .collect();
                }
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

pub(super) fn query_params(raw: Option<&str>) -> HashMap<String, String> {
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        params
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    params
}

/// Whether the record, job or request `id` is among the `share` chosen for
/// a fault: the same ones every time, so a re-export meets the same faults.
pub(super) fn chosen(id: &str, fault: &str, share: f64) -> bool {
    share > 0.0
        && (super::chain::str_hash(&format!("{fault}:{id}")) % 10_000) as f64 / 10_000.0 < share
}
