//! The systemd notify protocol (`Type=notify`): READY=1 once migrated and
//! scheduled, STATUS= lines, WATCHDOG=1 from the main loop, STOPPING=1.
//! Outside systemd (no `$NOTIFY_SOCKET`) every call does nothing.

use sd_notify::NotifyState;

fn send(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "cannot notify systemd");
    }
}

pub fn ready() {
    send(&[NotifyState::Ready]);
}

pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// Called from the main loop: systemd restarts a service whose loop hangs.
pub fn watchdog() {
    if sd_notify::watchdog_enabled().is_some() {
        send(&[NotifyState::Watchdog]);
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}
