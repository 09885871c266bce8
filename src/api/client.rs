//! The HTTP client of one account. Every request first waits for the
//! account's API-id budget; a 429 is reported back to that budget.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::error::ApiError;
use super::model::{JobData, SiteEntry};
use super::people::{
    check_clock_range, check_sign_up_period, clock_entries_of, envelope, ClockEntries, Employee,
    Page, RecurringAccount, StatusChange, LIST_LIMIT, STATUS_LIST_LIMITS,
};
use super::summary::{Summary, SUMMARY_PAGE_SIZE};
use crate::budget::{Budget, Closed, Priority};
use crate::domain::{AccountName, ApiId, ExportWindow, SiteCode};

/// The page size the export endpoint requires.
pub const PAGE_SIZE: u32 = 100;

/// The handle of one export job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobHash(pub String);

impl std::fmt::Display for JobHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client for one API id and key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: Url,
    budget: Budget,
    /// The account's configured name, for metrics.
    account: std::sync::Arc<str>,
    request_timeout: Duration,
    /// Requests sent with this client (and its clones), answered or not.
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Why a client for an account cannot be made. The messages never
/// include the key itself.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the API id is not a valid header value")]
    ApiId,
    #[error("the API key is not a valid header value")]
    ApiKey,
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

impl Client {
    pub fn new(
        account: &AccountName,
        base_url: &Url,
        api_id: &ApiId,
        api_key: &SecretString,
        request_timeout: Duration,
        budget: Budget,
    ) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "X-Sonnys-API-ID",
            HeaderValue::from_str(api_id.as_str()).map_err(|_| ClientError::ApiId)?,
        );
        let mut key =
            HeaderValue::from_str(api_key.expose_secret()).map_err(|_| ClientError::ApiKey)?;
        key.set_sensitive(true);
        headers.insert("X-Sonnys-API-Key", key);
        headers.insert("Accept", HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("sonnys-etl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Http)?;
        let mut base_url = base_url.clone();
        if !base_url.path().ends_with('/') {
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        Ok(Self {
            http,
            base_url,
            budget,
            account: account.as_str().into(),
            request_timeout,
            sent: Default::default(),
        })
    }

    fn url(&self, path: &str) -> Url {
        // `base_url` ends with '/', and `path` is relative, so join keeps /v1.
        self.base_url
            .join(path)
            .unwrap_or_else(|_| self.base_url.clone())
    }

    /// Wait for the budget, send, and read the answer: the JSON body of a
    /// 2xx, or the typed error of anything else.
    async fn send(
        &self,
        endpoint: &'static str,
        priority: Priority,
        lane: &str,
        request: RequestBuilder,
    ) -> Result<Value, ApiError> {
        let asked = std::time::Instant::now();
        // Held until the answer (or error) is back: the slot is charged
        // until then, as the vendor counts the request on its arrival.
        let slot = self
            .budget
            .acquire(priority, lane)
            .await
            .map_err(|Closed| ApiError::Decode {
                endpoint,
                problem: "shutting down".into(),
            })?;
        crate::metrics::budget_wait(&self.account, asked.elapsed());
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = request.send().await;
        drop(slot);
        let response = match sent {
            Ok(response) => response,
            Err(source) => {
                crate::metrics::api_request(&self.account, endpoint, "error");
                return Err(self.transport(endpoint, source));
            }
        };
        crate::metrics::api_request(&self.account, endpoint, response.status().as_str());
        self.body(endpoint, response).await
    }

    /// Whether the API id's budget has slack: no request waits for a slot.
    pub fn budget_idle(&self) -> bool {
        self.budget.stats().queued == 0
    }

    /// Requests sent so far, answered or not (a request that timed out
    /// counts: the server may have counted it too).
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A request that got no answer, named a timeout when it was one.
    fn transport(&self, endpoint: &'static str, source: reqwest::Error) -> ApiError {
        if source.is_timeout() {
            ApiError::Timeout {
                endpoint,
                after: self.request_timeout,
            }
        } else {
            ApiError::Transport { endpoint, source }
        }
    }

    /// GET /site/list.
    pub async fn list_sites(&self) -> Result<Vec<SiteEntry>, ApiError> {
        const ENDPOINT: &str = "site/list";
        let request = self.http.get(self.url(ENDPOINT));
        let body = self.send(ENDPOINT, Priority::Open, "", request).await?;
        let sites = body
            .get("data")
            .and_then(|d| d.get("sites"))
            .cloned()
            .ok_or_else(|| ApiError::Decode {
                endpoint: ENDPOINT,
                problem: "no `data.sites` in the answer".into(),
            })?;
        serde_json::from_value(sites).map_err(|e| ApiError::Decode {
            endpoint: ENDPOINT,
            problem: e.to_string(),
        })
    }

    /// POST /transaction/load-job for one page (numbered from 1) of a site's window.
    pub async fn load_job(
        &self,
        site: &SiteCode,
        window: ExportWindow,
        page: u32,
        priority: Priority,
    ) -> Result<JobHash, ApiError> {
        const ENDPOINT: &str = "transaction/load-job";
        let request = self.http.post(self.url(ENDPOINT)).query(&[
            ("startDate", window.start().to_string()),
            ("endDate", window.end().to_string()),
            ("site", site.as_str().to_owned()),
            ("limit", PAGE_SIZE.to_string()),
            ("offset", page.to_string()),
        ]);
        let body = self
            .send(ENDPOINT, priority, site.as_str(), request)
            .await?;
        body.get("data")
            .and_then(|d| d.get("hash"))
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(|h| JobHash(h.to_owned()))
            .ok_or_else(|| ApiError::Decode {
                endpoint: ENDPOINT,
                problem: "no `data.hash` in the answer".into(),
            })
    }

    /// GET /transaction/get-job-data for a hash.
    pub async fn get_job_data(&self, site: &SiteCode, hash: &JobHash) -> Result<JobData, ApiError> {
        const ENDPOINT: &str = "transaction/get-job-data";
        let request = self
            .http
            .get(self.url(ENDPOINT))
            .query(&[("hash", hash.0.as_str())]);
        let body = self
            .send(ENDPOINT, Priority::Poll, site.as_str(), request)
            .await?;
        JobData::from_body(body).map_err(|problem| ApiError::Decode {
            endpoint: ENDPOINT,
            problem,
        })
    }

    /// GET /transaction/version-2: one page (numbered from 1) of the
    /// summaries of a site's window, [`SUMMARY_PAGE_SIZE`] a page. The
    /// service answers identical criteria from a 10-minute cache.
    pub async fn summaries_page(
        &self,
        site: &SiteCode,
        window: ExportWindow,
        page: u32,
        priority: Priority,
    ) -> Result<Page<Summary>, ApiError> {
        self.window_page(
            "transaction/version-2",
            site,
            window,
            page,
            priority,
            Summary::from_raw,
        )
        .await
    }

    /// GET /transaction/type/wash: one page (numbered from 1) of the ids of
    /// a site window's transactions that hold a wash, as the API itself
    /// classifies them (whatever the items' departments are called),
    /// [`SUMMARY_PAGE_SIZE`] a page: paged like the summaries.
    pub async fn wash_list_page(
        &self,
        site: &SiteCode,
        window: ExportWindow,
        page: u32,
        priority: Priority,
    ) -> Result<Page<String>, ApiError> {
        // The items are plain transaction summaries: only their id is used.
        self.window_page(
            "transaction/type/wash",
            site,
            window,
            page,
            priority,
            |item| Summary::from_raw(item).map(|s| s.id),
        )
        .await
    }

    /// One page of a site window's transaction summaries from `endpoint`
    /// (the summaries and the type lists share their paging and envelope),
    /// each item read by `read`.
    async fn window_page<T>(
        &self,
        endpoint: &'static str,
        site: &SiteCode,
        window: ExportWindow,
        page: u32,
        priority: Priority,
        read: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Page<T>, ApiError> {
        let request = self.http.get(self.url(endpoint)).query(&[
            ("startDate", window.start().to_string()),
            ("endDate", window.end().to_string()),
            ("site", site.as_str().to_owned()),
            ("limit", SUMMARY_PAGE_SIZE.to_string()),
            ("offset", page.to_string()),
        ]);
        let body = self
            .send(endpoint, priority, site.as_str(), request)
            .await?;
        let decode = |problem| ApiError::Decode { endpoint, problem };
        let (raw, total) = envelope(body, "transactions").map_err(decode)?;
        let items = raw
            .iter()
            .map(read)
            .collect::<Result<_, _>>()
            .map_err(decode)?;
        Ok(Page {
            items,
            page,
            limit: SUMMARY_PAGE_SIZE,
            total,
        })
    }

    /// GET /employee, one page of [`LIST_LIMIT`] employees.
    pub async fn employees_page(&self, page: u32) -> Result<Page<Employee>, ApiError> {
        const ENDPOINT: &str = "employee";
        let request = self.http.get(self.url(ENDPOINT)).query(&[
            ("limit", LIST_LIMIT.to_string()),
            ("offset", page.to_string()),
        ]);
        let body = self.people(ENDPOINT, request).await?;
        let decode = |problem| ApiError::Decode {
            endpoint: ENDPOINT,
            problem,
        };
        let (raw, total) = envelope(body, "employees").map_err(decode)?;
        let items = raw
            .iter()
            .map(Employee::from_raw)
            .collect::<Result<_, _>>()
            .map_err(decode)?;
        Ok(Page {
            items,
            page,
            limit: LIST_LIMIT,
            total,
        })
    }

    /// GET /employee/{id}/clock-entries for the dates `from` to `to`, both
    /// included: at most [`CLOCK_ENTRY_MAX_DAYS`] days, else refused without
    /// sending. Which zone the dates are read in is not documented (the
    /// simulator reads UTC dates of the clock-in): ask a day more on each
    /// side and keep what belongs to the wanted business days. Entries
    /// without `clockIn` come back set aside, apart from the others.
    ///
    /// [`CLOCK_ENTRY_MAX_DAYS`]: super::people::CLOCK_ENTRY_MAX_DAYS
    pub async fn clock_entries(
        &self,
        employee_id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<ClockEntries, ApiError> {
        // One label for every employee keeps the metrics' labels bounded.
        const ENDPOINT: &str = "employee/clock-entries";
        check_clock_range(from, to).map_err(|problem| ApiError::Refused {
            endpoint: ENDPOINT,
            problem,
        })?;
        let request = self
            .http
            .get(self.url(&format!("employee/{employee_id}/clock-entries")))
            .query(&[
                ("startDate", from.format("%Y-%m-%d").to_string()),
                ("endDate", to.format("%Y-%m-%d").to_string()),
            ]);
        let body = self.people(ENDPOINT, request).await?;
        clock_entries_of(body, employee_id).map_err(|problem| ApiError::Decode {
            endpoint: ENDPOINT,
            problem,
        })
    }

    /// GET /recurring/account/list: one page of [`LIST_LIMIT`] accounts that
    /// signed up from `from` to `to` (at most six months, else refused
    /// without sending). Status and cancel date are as of the period's end.
    pub async fn recurring_accounts_page(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: u32,
    ) -> Result<Page<RecurringAccount>, ApiError> {
        const ENDPOINT: &str = "recurring/account/list";
        check_sign_up_period(from, to).map_err(|problem| ApiError::Refused {
            endpoint: ENDPOINT,
            problem,
        })?;
        let request = self.http.get(self.url(ENDPOINT)).query(&[
            ("startDate", from.timestamp().to_string()),
            ("endDate", to.timestamp().to_string()),
            ("limit", LIST_LIMIT.to_string()),
            ("offset", page.to_string()),
        ]);
        let body = self.people(ENDPOINT, request).await?;
        let decode = |problem| ApiError::Decode {
            endpoint: ENDPOINT,
            problem,
        };
        let (raw, total) = envelope(body, "accounts").map_err(decode)?;
        let items = raw
            .into_iter()
            .map(RecurringAccount::from_raw)
            .collect::<Result<_, _>>()
            .map_err(decode)?;
        Ok(Page {
            items,
            page,
            limit: LIST_LIMIT,
            total,
        })
    }

    /// GET /recurring/account/status-list: one page of the status changes
    /// made from `from` to `to`, `limit` per page (100 to 1,000, else refused
    /// without sending). The service answers an identical request from a
    /// one-hour cache, so a repeat within the hour may miss newer changes.
    pub async fn status_changes_page(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: u32,
        limit: u32,
    ) -> Result<Page<StatusChange>, ApiError> {
        const ENDPOINT: &str = "recurring/account/status-list";
        if !STATUS_LIST_LIMITS.contains(&limit) {
            return Err(ApiError::Refused {
                endpoint: ENDPOINT,
                problem: format!(
                    "a page of {limit}; the status list serves pages of {} to {}",
                    STATUS_LIST_LIMITS.start(),
                    STATUS_LIST_LIMITS.end()
                ),
            });
        }
        if to < from {
            return Err(ApiError::Refused {
                endpoint: ENDPOINT,
                problem: format!("the period {from} to {to} ends before it starts"),
            });
        }
        let request = self.http.get(self.url(ENDPOINT)).query(&[
            ("startDate", from.timestamp().to_string()),
            ("endDate", to.timestamp().to_string()),
            ("limit", limit.to_string()),
            ("offset", page.to_string()),
        ]);
        let body = self.people(ENDPOINT, request).await?;
        let decode = |problem| ApiError::Decode {
            endpoint: ENDPOINT,
            problem,
        };
        let (raw, total) = envelope(body, "accounts").map_err(decode)?;
        let items = raw
            .into_iter()
            .map(StatusChange::from_raw)
            .collect::<Result<_, _>>()
            .map_err(decode)?;
        Ok(Page {
            items,
            page,
            limit,
            total,
        })
    }

    /// Sends a labour or membership request at [`Priority::Background`]:
    /// the nightly export always goes first.
    async fn people(
        &self,
        endpoint: &'static str,
        request: RequestBuilder,
    ) -> Result<Value, ApiError> {
        self.send(endpoint, Priority::Background, "people", request)
            .await
    }

    /// The JSON body of a 2xx answer, or the typed error of any other.
    async fn body(&self, endpoint: &'static str, response: Response) -> Result<Value, ApiError> {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response
            .bytes()
            .await
            .map_err(|source| self.transport(endpoint, source))?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return json.ok_or_else(|| ApiError::Decode {
                endpoint,
                problem: format!("the body is not JSON: {}", snippet(&bytes)),
            });
        }
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| j.get(name))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        let kind = field("type").unwrap_or_else(|| "(no type)".into());
        let mut message = field("message").unwrap_or_else(|| {
            if json.is_some() {
                String::new()
            } else {
                format!("non-JSON body: {}", snippet(&bytes))
            }
        });
        if let Some(Value::Array(messages)) = json.as_ref().and_then(|j| j.get("messages")) {
            let list: Vec<String> = messages
                .iter()
                .map(|m| {
                    m.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| m.to_string())
                })
                .collect();
            message = format!("{message} [{}]", list.join("; "));
        }
        Err(match status {
            StatusCode::FORBIDDEN => ApiError::Forbidden { kind, message },
            StatusCode::TOO_MANY_REQUESTS => {
                self.budget.rate_limited(retry_after);
                ApiError::RateLimited {
                    kind,
                    message,
                    retry_after,
                }
            }
            StatusCode::NOT_FOUND => ApiError::NotFound { kind, message },
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Invalid { kind, message },
            s if s == StatusCode::BAD_REQUEST || s.is_server_error() => ApiError::Server {
                status: s.as_u16(),
                kind,
                code: field("code"),
                message,
            },
            s => ApiError::Unexpected {
                status: s.as_u16(),
                message: format!("{kind}: {message}"),
            },
        })
    }
}

/// The most pages a walk reads before deciding the service is misbehaving
/// (a `total` that never comes, full pages for ever).
const MAX_PAGES: u32 = 10_000;

/// Reads pages 1, 2, 3 … until one is short or the pages so far hold
/// `total` items, as the public client does: a whole collection, e.g. every
/// employee with `walk_pages("employee", |page| client.employees_page(page))`.
pub async fn walk_pages<T, E, F, Fut>(endpoint: &'static str, mut fetch: F) -> Result<Vec<T>, E>
where
    E: From<ApiError>,
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, E>>,
{
    let mut items = Vec::new();
    for page in 1..=MAX_PAGES {
        let got = fetch(page).await?;
        let last = got.is_last();
        items.extend(got.items);
        if last {
            return Ok(items);
        }
    }
    Err(ApiError::Decode {
        endpoint,
        problem: format!("still full pages after {MAX_PAGES} pages"),
    }
    .into())
}

/// The start of a body for an error message, on one line.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(160)]);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        "(empty)".into()
    } else {
        one_line
    }
}
