//! Readiness for systemd's `Type=notify` (contrib/shiplog.service).
//!
//! `READY=1` is sent once the port is bound and the router built, so `/healthz` answers the
//! moment systemd starts the units that wait for shiplog; `STOPPING=1` when a stop signal
//! arrives, so systemd shows the service as deactivating while requests drain. Without
//! `NOTIFY_SOCKET` (not started by systemd) both do nothing; a failure to notify is logged and
//! never stops the daemon.

use sd_notify::NotifyState;

/// Tells systemd the daemon is ready, with its address as the unit's status line.
pub fn ready(listen: &std::net::SocketAddr) {
    let status = format!("listening on {listen}");
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}
