//! systemd notifications (`STATUS=`, `READY=1`, watchdog). All are no-ops outside
//! systemd: a missing `NOTIFY_SOCKET` is not an error.

use std::time::Duration;

use tokio::task::JoinHandle;

/// Sent with every progress update. sideloadd runs as a Type=notify unit whose start
/// may legitimately last as long as `readyTimeoutSecs` plus the deploys; rather than
/// relying on the unit's TimeoutStartSec being raised to match, each sign of progress
/// asks systemd for this much more time. A hang still gets caught (no progress, no
/// extension; and the watchdog, when enabled).
pub const EXTEND_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Default)]
pub struct Notifier;

impl Notifier {
    /// A status that means "still working": also extends the start timeout.
    pub fn progress(&self, text: &str) {
        tracing::debug!(status = text, "sd_notify");
        let states = [
            sd_notify::NotifyState::Status(text),
            sd_notify::NotifyState::ExtendTimeoutUsec(EXTEND_TIMEOUT.as_micros() as u32),
        ];
        if let Err(e) = sd_notify::notify(false, &states) {
            tracing::debug!(error = %e, "sd_notify STATUS failed");
        }
    }

    pub fn status(&self, text: &str) {
        tracing::debug!(status = text, "sd_notify");
        if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Status(text)]) {
            tracing::debug!(error = %e, "sd_notify STATUS failed");
        }
    }

    pub fn ready(&self, text: &str) {
        let states = [
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(text),
        ];
        if let Err(e) = sd_notify::notify(false, &states) {
            tracing::debug!(error = %e, "sd_notify READY failed");
        }
    }

    pub fn stopping(&self) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    }

    /// Starts pinging `WATCHDOG=1` at half the interval systemd asked for, if it asked.
    pub fn start_watchdog(&self) -> Option<JoinHandle<()>> {
        let interval = watchdog_interval()?;
        tracing::debug!(?interval, "watchdog enabled");
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval / 2);
            loop {
                tick.tick().await;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
        }))
    }
}

/// `sd_watchdog_enabled()` semantics: `WATCHDOG_USEC` set, and `WATCHDOG_PID` either
/// unset or ours. (The sd-notify crate insists on `WATCHDOG_PID`, which systemd does
/// not always set.)
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}
