//! What can go wrong talking to the API, typed by what the caller must do.

use std::time::Duration;

/// An unsuccessful request. Messages quote the server's `type`, `code` and
/// message but never credentials.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Credentials or site access refused. Permanent until the operator fixes it.
    #[error("HTTP 403 {kind}: {message} (the API refused this account's credentials; fix them and run again)")]
    Forbidden { kind: String, message: String },
    /// Over the API id's request budget.
    #[error("HTTP 429 {kind}: {message}")]
    RateLimited {
        kind: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// An expired or unknown job hash, or an unknown resource.
    #[error("HTTP 404 {kind}: {message}")]
    NotFound { kind: String, message: String },
    /// The request itself is wrong: a bug or a date outside what the API serves.
    #[error("HTTP 422 {kind}: {message}")]
    Invalid { kind: String, message: String },
    /// 400: a request the server will not take (`UnexpectedFailure`,
    /// `InvalidPayloadRequestTimestampError`); sent again it fails again.
    /// 5xx: the server could not answer this time.
    #[error("HTTP {status} {kind}{code}: {message}", code = code.as_deref().map(|c| format!(" (code {c})")).unwrap_or_default())]
    Server {
        status: u16,
        kind: String,
        code: Option<String>,
        message: String,
    },
    /// Any other status.
    #[error("unexpected HTTP {status}: {message}")]
    Unexpected { status: u16, message: String },
    /// No answer within the request timeout (`api.request_timeout`).
    #[error("timeout: no answer from {endpoint} within {after:?} (api.request_timeout)")]
    Timeout {
        endpoint: &'static str,
        after: Duration,
    },
    /// No answer: connection refused, reset.
    #[error("no answer from {endpoint}: {source}")]
    Transport {
        endpoint: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// Not sent: the request breaks a rule the API enforces (a range too
    /// long, a page size out of bounds), so the answer could only be a 422.
    #[error("request to {endpoint} not sent: {problem}")]
    Refused {
        endpoint: &'static str,
        problem: String,
    },
    /// A 200 whose body is not what the documentation promises.
    #[error("unreadable answer from {endpoint}: {problem}")]
    Decode {
        endpoint: &'static str,
        problem: String,
    },
}

/// What the caller does about an [`ApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Stop all work of the account.
    StopAccount,
    /// Wait past the window (the budget already paused) and send again.
    AfterWindow,
    /// The job is gone: submit its criteria again.
    Resubmit,
    /// Transient: retry with bounded backoff.
    Retry,
    /// Fail this unit of work loudly; retrying cannot help.
    Fail,
}

impl ApiError {
    /// What to do about this error, after the reference's error table: 403
    /// stops the account, 429 waits out the window, 404 resubmits a job,
    /// 400 and 422 fail the unit of work at once naming the message, 5xx
    /// and network trouble are retried with backoff.
    pub fn disposition(&self) -> Disposition {
        match self {
            ApiError::Forbidden { .. } => Disposition::StopAccount,
            ApiError::RateLimited { .. } => Disposition::AfterWindow,
            ApiError::NotFound { .. } => Disposition::Resubmit,
            ApiError::Invalid { .. } | ApiError::Refused { .. } => Disposition::Fail,
            // The reference's error table: a 400 never succeeds on retry
            // (the live-validated client met `InvalidPayloadRequestTimestampError`
            // again and again); only the budget would be spent.
            ApiError::Server { status: 400, .. } => Disposition::Fail,
            ApiError::Server { .. }
            | ApiError::Transport { .. }
            | ApiError::Timeout { .. }
            | ApiError::Decode { .. } => Disposition::Retry,
            ApiError::Unexpected { status, .. } if *status >= 500 || *status == 408 => {
                Disposition::Retry
            }
            ApiError::Unexpected { .. } => Disposition::Fail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, kind: &str) -> ApiError {
        ApiError::Server {
            status,
            kind: kind.into(),
            code: None,
            message: "Request timestamp is invalid".into(),
        }
    }

    #[test]
    fn a_400_fails_at_once_naming_its_message_and_a_500_is_retried() {
        for kind in ["InvalidPayloadRequestTimestampError", "UnexpectedFailure"] {
            let e = server(400, kind);
            assert_eq!(e.disposition(), Disposition::Fail, "{kind}");
            let text = e.to_string();
            assert!(
                text.contains("400")
                    && text.contains(kind)
                    && text.contains("timestamp is invalid"),
                "{text}"
            );
        }
        for status in [500, 502, 503] {
            assert_eq!(
                server(status, "ServerUnexpectedFailure").disposition(),
                Disposition::Retry
            );
        }
    }
}
