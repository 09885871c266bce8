//! The error policy every API call goes through: transient errors are
//! retried with bounded exponential backoff, 429s after the budget's pause,
//! and everything else goes up to the caller, typed by what it must do
//! (see [`Disposition`]). Every sleep ends at once on cancellation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{ApiError, Disposition};

/// Attempts of one request on transient errors (500, no answer).
pub const MAX_ATTEMPTS: u32 = 5;
/// Attempts of one request answered 429 (another consumer overspent the id).
pub const MAX_RATE_LIMITED: u32 = 8;
/// The first backoff after a transient error; it doubles on each attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(1000);

/// Why a call under the policy gave up.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The API's answer, once the policy has no retry left for it.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// The run is stopping.
    #[error("interrupted by shutdown; redone at the next run")]
    Cancelled,
}

/// One API call with the error policy. Counts every request sent in
/// `requests`, failed ones too: they spend the budget alike.
pub async fn with_policy<T, F, Fut>(
    cancel: &CancellationToken,
    what: &str,
    requests: &AtomicU64,
    call: F,
) -> Result<T, CallError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut transient = 0;
    let mut limited = 0;
    loop {
        if cancel.is_cancelled() {
            return Err(CallError::Cancelled);
        }
        let result = tokio::select! {
            r = call() => r,
            _ = cancel.cancelled() => return Err(CallError::Cancelled),
        };
        requests.fetch_add(1, Ordering::Relaxed);
        let error = match result {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        match error.disposition() {
            Disposition::Retry if transient + 1 < MAX_ATTEMPTS => {
                // 1 s, 2 s, 4 s, 8 s: past a restart of the service's front end.
                let delay = FIRST_BACKOFF * 2u32.pow(transient);
                transient += 1;
                tracing::warn!(%what, error = %error, attempt = transient, retry_in_ms = delay.as_millis() as u64, "request failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => return Err(CallError::Cancelled),
                }
            }
            // The budget has paused itself past the window; asking again
            // simply waits for it.
            Disposition::AfterWindow if limited + 1 < MAX_RATE_LIMITED => {
                limited += 1;
                tracing::warn!(%what, error = %error, "rate limited by the API; the budget pauses past the window");
            }
            _ => return Err(error.into()),
        }
    }
}
