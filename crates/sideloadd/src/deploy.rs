//! One plugin's setup + deploy + confirmation, under one retry policy.
//!
//! Setup and deploy always go together: setup alone only rewrites the plugin's
//! record, next to the old zip (`docs/scrypted-api.md` §4).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use tokio_util::sync::CancellationToken;

use crate::client::ClientError;
use crate::error::RunError;
use crate::session::Session;
use crate::validate::ValidPlugin;
use crate::volume::Volume;

/// Attempts per plugin before it is declared failed (each transient failure also
/// waits for the server to be ready again).
pub const MAX_ATTEMPTS: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// How long a deployed plugin may take to show up (the zip is written before the
/// worker is forked, so normally it is there when deploy answers).
const CONFIRM_WITHIN: Duration = Duration::from_secs(15);
const CONFIRM_POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
enum AttemptError {
    Client(ClientError),
    NotConfirmed(String),
    Interrupted,
    Fatal(RunError),
}

impl AttemptError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Client(e) => e.is_transient(),
            // Deploy answered 200 but nothing landed: a restart in between can do
            // that; deploying again is safe.
            Self::NotConfirmed(_) => true,
            Self::Interrupted | Self::Fatal(_) => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Client(e) => e.to_string(),
            Self::NotConfirmed(s) => s.clone(),
            Self::Interrupted => "interrupted".into(),
            Self::Fatal(e) => e.to_string(),
        }
    }
}

#[derive(Debug)]
pub enum PluginResult {
    Deployed,
    Failed {
        reason: String,
        /// A deploy got far enough that Scrypted killed the running version.
        plugin_killed: bool,
        /// A deploy reached Scrypted's database: the stored package.json and zip
        /// are the new ones, whatever runs (`docs/scrypted-api.md` §4).
        record_changed: bool,
    },
}

/// Exponential from 0.5 s, doubling, no jitter: one sideloadd talks to one server.
fn policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(FIRST_RETRY)
        .with_factor(2.0)
        .with_max_times(MAX_ATTEMPTS as usize - 1)
}

/// The pause between attempts, cut short by a signal (the next attempt then sees it).
fn cancellable_sleep(
    shutdown: CancellationToken,
) -> impl Fn(Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    move |d| {
        let shutdown = shutdown.clone();
        Box::pin(async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = shutdown.cancelled() => {}
            }
        })
    }
}

impl Session<'_> {
    pub async fn deploy_with_retries(&self, p: &ValidPlugin) -> Result<PluginResult, RunError> {
        let attempts = AtomicU32::new(0);
        let killed = AtomicBool::new(false);
        let stored = AtomicBool::new(false);
        let once = || async {
            if self.shutdown.is_cancelled() {
                return Err(AttemptError::Interrupted);
            }
            if attempts.fetch_add(1, Ordering::Relaxed) > 0 {
                // The server may be restarting; give it the same grace as at boot.
                let budget = self.config.ready_timeout;
                self.wait_ready(budget).await.map_err(AttemptError::Fatal)?;
            }
            self.attempt(p, &killed, &stored).await
        };
        let result = once
            .retry(policy())
            .sleep(cancellable_sleep(self.shutdown.clone()))
            .when(AttemptError::is_transient)
            .notify(|e, d| {
                tracing::warn!(plugin = %p.name, error = %e.describe(), retry_in_ms = d.as_millis() as u64, "transient failure, retrying");
            })
            .await;
        let n = attempts.load(Ordering::Relaxed);
        match result {
            Ok(()) => Ok(PluginResult::Deployed),
            Err(AttemptError::Interrupted) => Err(self.interrupted()),
            Err(AttemptError::Fatal(e)) => Err(e),
            Err(e) => Ok(PluginResult::Failed {
                reason: format!(
                    "{} (after {n} attempt{})",
                    e.describe(),
                    if n == 1 { "" } else { "s" }
                ),
                plugin_killed: killed.load(Ordering::Relaxed),
                record_changed: stored.load(Ordering::Relaxed),
            }),
        }
    }

    async fn attempt(
        &self,
        p: &ValidPlugin,
        killed: &AtomicBool,
        stored: &AtomicBool,
    ) -> Result<(), AttemptError> {
        let client_err = |e: ClientError| match e {
            ClientError::Unauthorized { .. } => AttemptError::Fatal(self.unauthorized()),
            e => AttemptError::Client(e),
        };
        let t = Instant::now();
        self.client.setup(p).await.map_err(client_err)?;
        tracing::debug!(plugin = %p.name, duration_ms = t.elapsed().as_millis() as u64, "setup ok");
        // No shutdown check here on purpose: setup without deploy would leave a new
        // package.json next to the old zip; the deploy is one bounded request more.
        let t = Instant::now();
        let deployed = self.client.deploy(p).await;
        if deployed
            .as_ref()
            .map_or_else(ClientError::deploy_reached_the_plugin, |()| true)
        {
            killed.store(true, Ordering::Relaxed);
        }
        if deployed
            .as_ref()
            .map_or_else(ClientError::deploy_stored_the_zip, |()| true)
        {
            stored.store(true, Ordering::Relaxed);
        }
        deployed.map_err(client_err)?;
        tracing::debug!(plugin = %p.name, duration_ms = t.elapsed().as_millis() as u64, bytes = p.zip_size, "deploy ok");
        self.confirm(p).await
    }

    /// With a readable volume, the md5-named zip must appear (it is written before
    /// the worker is forked). Whether the plugin then loads is [`crate::confirm`]'s.
    async fn confirm(&self, p: &ValidPlugin) -> Result<(), AttemptError> {
        if !matches!(self.volume, Volume::Readable(_)) {
            return Ok(());
        }
        let deadline = Instant::now() + CONFIRM_WITHIN;
        loop {
            if self.volume.has(p) == Some(true) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(AttemptError::NotConfirmed(self.not_confirmed(p)));
            }
            if !self.sleep(CONFIRM_POLL).await {
                return Err(AttemptError::NotConfirmed("interrupted".into()));
            }
        }
    }

    fn not_confirmed(&self, p: &ValidPlugin) -> String {
        let path = match &self.volume {
            Volume::Readable(v) => crate::state::volume_zip_path(v, &p.name, &p.zip_md5),
            Volume::Unavailable => "the installed zip".into(),
        };
        format!(
            "deploy answered ok but {} did not appear within {} s",
            path.display(),
            CONFIRM_WITHIN.as_secs()
        )
    }
}
