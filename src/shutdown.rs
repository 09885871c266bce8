//! One shutdown signal for every command: a [`CancellationToken`] that every
//! loop selects on, cancelled by the first SIGTERM or Ctrl-C; a second signal
//! exits at once. The caller owns the signal handling and decides what
//! "draining" means (mini-redis shape).

use tokio_util::sync::CancellationToken;

/// Exit status after a second signal: the conventional 128 + SIGINT.
const EXIT_AT_ONCE: i32 = 130;

/// A token cancelled on the first SIGTERM or SIGINT; the second exits the
/// process at once.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!(
            "shutting down: finishing the pages in flight (signal again to exit at once)"
        );
        cancel.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(EXIT_AT_ONCE);
    });
    token
}

/// The next SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
