//! The operations endpoint: `/livez`, `/readyz`, `/metrics` and the status
//! page at `/`. Every answer is cheap and bounded in time, so probes never
//! pile up behind a slow database.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Shared;

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// Bind `addr` and serve until `stop` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(listen = %bound, "operations endpoint: /livez /readyz /metrics and the status page at /");
    let app = router(shared);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "the operations endpoint failed");
        }
    }))
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn livez(State(shared): State<Arc<Shared>>) -> Response {
    if shared.alive() {
        text(StatusCode::OK, "ok")
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the scheduler loop has not shown life for 20 s",
        )
    }
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match ready(&shared).await {
        Ok(()) => text(StatusCode::OK, "ready"),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason.to_string()),
    }
}

/// Ready: not draining, connected, the database answers within a second and
/// holds every migration this build knows.
async fn ready(shared: &Shared) -> Result<(), NotReady> {
    if shared.draining.load(Ordering::SeqCst) {
        return Err(NotReady::Draining);
    }
    let Some(pool) = shared.pool() else {
        return Err(NotReady::NotConnected);
    };
    let query = crate::store::applied_migration(&pool);
    let applied = match tokio::time::timeout(READY_TIMEOUT, query).await {
        Err(_) => return Err(NotReady::Slow),
        Ok(Err(e)) => return Err(NotReady::Database(one_line(&e))),
        Ok(Ok(version)) => version,
    };
    let needed = crate::store::latest_migration();
    if applied < needed {
        return Err(NotReady::Schema { applied, needed });
    }
    Ok(())
}

/// Why `/readyz` answers 503; the body says it.
#[derive(Debug, thiserror::Error)]
enum NotReady {
    #[error("draining: the service is stopping")]
    Draining,
    #[error("not connected to the database yet")]
    NotConnected,
    #[error("the database did not answer within 1 s")]
    Slow,
    #[error("the database does not answer: {0}")]
    Database(String),
    #[error("the database schema is at migration {applied}, this build needs {needed}")]
    Schema { applied: i64, needed: i64 },
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match &shared.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => text(StatusCode::NOT_FOUND, "metrics are off"),
    }
}

async fn status_page(State(shared): State<Arc<Shared>>) -> Response {
    let Some(pool) = shared.pool() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not connected to the database yet",
        );
    };
    match tokio::time::timeout(Duration::from_secs(5), shared.snapshot(&pool)).await {
        Ok(Ok(snapshot)) => Html(crate::status::page::render(&snapshot)).into_response(),
        Ok(Err(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the status from the database: {}", one_line(&e)),
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database did not answer within 5 s",
        ),
    }
}
