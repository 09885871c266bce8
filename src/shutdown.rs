//! One shutdown signal for every command: a [`CancellationToken`] that every
//! loop selects on, cancelled by the first SIGTERM or Ctrl-C; a second signal
//! exits at once. The caller owns the signal handling and decides what
//! "draining" means (mini-redis shape).

use tokio_util::sync::CancellationToken;

/// Exit status after a second signal: the conventional 128 + SIGINT.
const EXIT_AT_ONCE: i32 = 130;

/// A token cancelled on the first SIGTERM or SIGINT; the second exits the
/// process at once. For the service, which reloads on SIGHUP itself.
pub fn on_signal() -> CancellationToken {
    watch(false)
}

/// The same, also stopping on SIGHUP (a closed terminal or ssh session), so
/// that a `sync` interrupted that way records every started day's end
/// instead of dying with days left `running`.
pub fn on_signal_or_hangup() -> CancellationToken {
    watch(true)
}

fn watch(hangup: bool) -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal(hangup).await;
        tracing::warn!(
            "shutting down: finishing the pages in flight (signal again to exit at once)"
        );
        cancel.cancel();
        wait_for_signal(hangup).await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(EXIT_AT_ONCE);
    });
    token
}

/// The next SIGTERM or SIGINT (or SIGHUP, when asked).
async fn wait_for_signal(hangup: bool) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let hup = async {
            match signal(SignalKind::hangup()) {
                Ok(mut s) if hangup => {
                    s.recv().await;
                }
                _ => std::future::pending::<()>().await,
            }
        };
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = hup => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = hangup;
        let _ = tokio::signal::ctrl_c().await;
    }
}
