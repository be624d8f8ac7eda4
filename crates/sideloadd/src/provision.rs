//! `sideloadd run`: get every declared plugin into Scrypted, never making one worse.
//!
//! Guarantees, and what they rest on (see `docs/scrypted-api.md`):
//! - An invalid plugin is never sent. Setup stores anything, and deploy kills the
//!   running copy before it looks at the zip, so sending it could only do harm.
//! - Setup and deploy go together, one plugin at a time. Setup alone only rewrites
//!   the plugin's database record; the running worker keeps its old zip until a
//!   deploy (or a Scrypted restart). If setup succeeds and every deploy attempt then
//!   fails, the old zip keeps running under the new package.json until Scrypted
//!   restarts, and the plugin is not recorded as deployed, so the next run (next
//!   boot at the latest) tries again. A deploy cut off mid-upload stores nothing.
//! - A plugin counts as deployed only once Scrypted shows it: its md5-named zip in
//!   the volume, else its endpoint no longer answering the server's "not found".
//!   Only then is it written to the state file.
//! - A plugin whose exact bytes are recorded *and* still installed is not sent again,
//!   so a reboot with nothing changed restarts no plugin.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::client::{Client, ClientError, Probe};
use crate::config::{Config, PluginDecl};
use crate::notify::Notifier;
use crate::state::{Deployed, State, StateError, volume_zip_path};
use crate::validate::{self, PluginError, ValidPlugin};

/// Attempts per plugin before it is declared failed (each transient failure also
/// waits for the server to be ready again).
pub const MAX_ATTEMPTS: u32 = 5;
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(2);
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// How long a deployed plugin may take to show up (the zip is written before the
/// worker is forked, so normally it is there when deploy answers).
const CONFIRM_WITHIN: Duration = Duration::from_secs(15);
const CONFIRM_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read tokenFile {path}: {source}")]
    TokenRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tokenFile {path} is empty")]
    TokenEmpty { path: PathBuf },
    #[error("tokenFile {path}: {source}")]
    Client {
        path: PathBuf,
        source: Box<ClientError>,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("Scrypted at {url} was not ready within {secs} s (last attempt: {last})")]
    NotReady { url: Url, secs: u64, last: String },
    #[error(
        "Scrypted at {url} rejected the token from {token_file} (401 Not Authorized); it must \
         equal the server's SCRYPTED_ADMIN_TOKEN, and SCRYPTED_ADMIN_USERNAME must be set"
    )]
    Unauthorized { url: Url, token_file: PathBuf },
    #[error("stopped by a signal before finishing: {in_place} of {total} plugins in place")]
    Interrupted { in_place: usize, total: usize },
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Interrupted { .. } => crate::EXIT_INTERRUPTED,
            _ => crate::EXIT_FATAL,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub deployed: Vec<String>,
    pub unchanged: Vec<String>,
    pub failed: Vec<Failure>,
}

impl Outcome {
    pub fn summary(&self) -> String {
        let in_place = self.deployed.len() + self.unchanged.len();
        if self.failed.is_empty() {
            format!(
                "{in_place} plugins in place, {} skipped",
                self.unchanged.len()
            )
        } else {
            let names: Vec<&str> = self.failed.iter().map(|f| f.name.as_str()).collect();
            format!(
                "{} of {} plugins failed: {}",
                self.failed.len(),
                in_place + self.failed.len(),
                names.join(", ")
            )
        }
    }
}

/// How the volume can be used to see what Scrypted installed.
#[derive(Debug, Clone)]
enum Volume {
    Readable(PathBuf),
    /// Not configured or not readable: fall back to the plugin endpoints.
    Unavailable,
}

pub fn read_token(path: &Path) -> Result<String, RunError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunError::TokenRead {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(RunError::TokenEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_string())
}

/// Validates every declared plugin (blocking I/O, off the async threads).
pub async fn validate_all(
    decls: &[PluginDecl],
) -> Vec<(PluginDecl, Result<ValidPlugin, PluginError>)> {
    let decls = decls.to_vec();
    let handle = tokio::task::spawn_blocking(move || {
        decls
            .into_iter()
            .map(|d| {
                let r = validate::validate(&d);
                (d, r)
            })
            .collect::<Vec<_>>()
    });
    match handle.await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

struct Run<'a> {
    config: &'a Config,
    client: Client,
    notifier: Notifier,
    shutdown: CancellationToken,
    volume: Volume,
}

enum AttemptError {
    Client(ClientError),
    NotConfirmed(String),
}

impl AttemptError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Client(e) => e.is_transient(),
            // Deploy answered 200 but nothing landed: a restart in between can do
            // that; deploying again is safe.
            Self::NotConfirmed(_) => true,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Client(e) => e.to_string(),
            Self::NotConfirmed(s) => s.clone(),
        }
    }
}

enum PluginResult {
    Deployed,
    Failed(String),
}

pub async fn run(
    config: &Config,
    shutdown: CancellationToken,
    notifier: Notifier,
) -> Result<Outcome, RunError> {
    let total = config.plugins.len();
    notifier.progress(&format!("validating {total} plugins"));
    let token = read_token(&config.token_file)?;
    let client = Client::new(config.server.clone(), &token).map_err(|source| RunError::Client {
        path: config.token_file.clone(),
        source: Box::new(source),
    })?;
    drop(token);

    let mut state = State::load(&config.state_dir, true)?;
    if let Some(why) = &state.discarded {
        tracing::warn!(path = %state.path().display(), reason = %why, "ignoring unreadable state file; every plugin will be redeployed");
    }
    let declared: Vec<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
    state.retain(&declared);
    // Saving now proves stateDir is writable before anything is sent.
    state.save()?;
    if config.plugins.is_empty() {
        // Nothing to put in place; no reason to wait for the server.
        return Ok(Outcome::default());
    }

    let mut run = Run {
        config,
        client,
        notifier,
        shutdown,
        volume: Volume::Unavailable,
    };
    // Reading and checking every zip overlaps with Scrypted's own start-up, so the
    // work left once it answers is only the per-plugin "already there?" checks.
    let ready_started = Instant::now();
    let (validated, ready) = tokio::join!(
        validate_all(&config.plugins),
        run.wait_ready(config.ready_timeout)
    );
    let mut outcome = Outcome::default();
    let mut valid = Vec::new();
    for (decl, res) in validated {
        match res {
            Ok(p) => valid.push((decl, p)),
            Err(e) => {
                tracing::error!(plugin = %decl.name, key = %decl.key, error = %e, "invalid plugin, not sent");
                outcome.failed.push(Failure {
                    name: decl.name.clone(),
                    reason: format!("invalid, not sent ({}): {e}", decl.key),
                });
            }
        }
    }
    // Bad plugins are reported even when the server never comes up.
    ready?;
    tracing::info!(
        duration_ms = ready_started.elapsed().as_millis() as u64,
        "Scrypted is ready"
    );
    run.volume = volume_access(config.volume.as_deref());

    for (i, (decl, p)) in valid.iter().enumerate() {
        if run.shutdown.is_cancelled() {
            return Err(RunError::Interrupted {
                in_place: outcome.deployed.len() + outcome.unchanged.len(),
                total,
            });
        }
        if run.in_place(p, &state).await {
            tracing::info!(plugin = %p.name, version = %p.version, "unchanged, not redeployed");
            outcome.unchanged.push(p.name.clone());
            continue;
        }
        // Position among all declared plugins, as the operator counts them.
        let position = config
            .plugins
            .iter()
            .position(|d| d.name == decl.name)
            .unwrap_or(i)
            + 1;
        run.notifier.progress(&format!(
            "deploying {} ({position}/{total})",
            short_name(&p.name)
        ));
        let started = Instant::now();
        let result = run.deploy_with_retries(p).await.map_err(|e| match e {
            RunError::Interrupted { total, .. } => RunError::Interrupted {
                in_place: outcome.deployed.len() + outcome.unchanged.len(),
                total,
            },
            other => other,
        })?;
        match result {
            PluginResult::Deployed => {
                tracing::info!(
                    plugin = %p.name,
                    version = %p.version,
                    zip_md5 = %p.zip_md5,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "deployed"
                );
                state.record(&p.name, Deployed::of(p));
                state.save()?;
                outcome.deployed.push(p.name.clone());
            }
            PluginResult::Failed(reason) => {
                tracing::error!(plugin = %p.name, version = %p.version, error = %reason, "deploy failed");
                // A failed deploy may have replaced what was installed; the old claim
                // no longer holds.
                state.forget(&p.name);
                state.save()?;
                outcome.failed.push(Failure {
                    name: p.name.clone(),
                    reason,
                });
            }
        }
    }
    // Report failures in config order.
    outcome
        .failed
        .sort_by_key(|f| declared.iter().position(|n| *n == f.name));
    Ok(outcome)
}

fn short_name(name: &str) -> &str {
    name.strip_prefix("@scrypted/").unwrap_or(name)
}

fn volume_access(volume: Option<&Path>) -> Volume {
    let Some(v) = volume else {
        return Volume::Unavailable;
    };
    match std::fs::read_dir(v) {
        Ok(_) => Volume::Readable(v.to_path_buf()),
        Err(e) => {
            tracing::warn!(volume = %v.display(), error = %e, "volume not readable; checking plugins through their endpoints instead");
            Volume::Unavailable
        }
    }
}

/// Some(true/false) when the volume answers; None when it cannot tell (permissions).
fn volume_has(volume: &Path, p: &ValidPlugin) -> Option<bool> {
    match std::fs::metadata(volume_zip_path(volume, &p.name, &p.zip_md5)) {
        Ok(m) => Some(m.is_file()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

impl Run<'_> {
    /// Sleeps unless shut down first; false when interrupted.
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.shutdown.cancelled() => false,
        }
    }

    fn interrupted(&self) -> RunError {
        RunError::Interrupted {
            in_place: 0,
            total: self.config.plugins.len(),
        }
    }

    async fn wait_ready(&self, budget: Duration) -> Result<(), RunError> {
        let started = Instant::now();
        let mut poll = FIRST_POLL;
        let mut last_status: Option<u64> = None;
        loop {
            if self.shutdown.is_cancelled() {
                return Err(self.interrupted());
            }
            let why = match self.client.probe().await {
                Probe::Ready => return Ok(()),
                Probe::Unauthorized => {
                    return Err(RunError::Unauthorized {
                        url: self.config.server.clone(),
                        token_file: self.config.token_file.clone(),
                    });
                }
                Probe::NotYet(why) => why,
            };
            let waited = started.elapsed();
            if waited >= budget {
                return Err(RunError::NotReady {
                    url: self.config.server.clone(),
                    secs: budget.as_secs(),
                    last: why,
                });
            }
            let secs = waited.as_secs();
            if last_status != Some(secs) {
                last_status = Some(secs);
                self.notifier
                    .progress(&format!("waiting for Scrypted ({secs} s)"));
                tracing::debug!(waited_s = secs, last = %why, "Scrypted not ready yet");
            }
            if !self.sleep(poll.min(budget - waited)).await {
                return Err(self.interrupted());
            }
            poll = (poll * 3 / 2).min(MAX_POLL);
        }
    }

    async fn present(&self, p: &ValidPlugin) -> Result<bool, ClientError> {
        if let Volume::Readable(v) = &self.volume
            && let Some(known) = volume_has(v, p)
        {
            return Ok(known);
        }
        self.client.endpoint_present(&p.name).await
    }

    async fn in_place(&self, p: &ValidPlugin, state: &State) -> bool {
        if !state.get(&p.name).is_some_and(|d| d.matches(p)) {
            return false;
        }
        match self.present(p).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::info!(plugin = %p.name, "recorded as deployed but not installed in Scrypted; redeploying");
                false
            }
            Err(e) => {
                tracing::warn!(plugin = %p.name, error = %e, "cannot check whether it is installed; redeploying");
                false
            }
        }
    }

    async fn attempt(&self, p: &ValidPlugin) -> Result<(), AttemptError> {
        let t = Instant::now();
        self.client.setup(p).await.map_err(AttemptError::Client)?;
        tracing::debug!(plugin = %p.name, duration_ms = t.elapsed().as_millis() as u64, "setup ok");
        // No shutdown check here on purpose: setup without deploy would leave a new
        // package.json next to the old zip; the deploy is one bounded request more.
        let t = Instant::now();
        self.client.deploy(p).await.map_err(AttemptError::Client)?;
        tracing::debug!(plugin = %p.name, duration_ms = t.elapsed().as_millis() as u64, bytes = p.zip_size, "deploy ok");
        self.confirm(p).await
    }

    async fn confirm(&self, p: &ValidPlugin) -> Result<(), AttemptError> {
        let deadline = Instant::now() + CONFIRM_WITHIN;
        loop {
            let last = match self.present(p).await {
                Ok(true) => return Ok(()),
                Ok(false) => "not installed".to_string(),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                let how = match &self.volume {
                    Volume::Readable(v) => format!(
                        "{} did not appear ({last})",
                        volume_zip_path(v, &p.name, &p.zip_md5).display()
                    ),
                    Volume::Unavailable => {
                        format!("its endpoint still answers \"not found\" ({last})")
                    }
                };
                return Err(AttemptError::NotConfirmed(format!(
                    "deploy answered ok but {how} after {} s",
                    CONFIRM_WITHIN.as_secs()
                )));
            }
            if !self.sleep(CONFIRM_POLL).await {
                return Err(AttemptError::NotConfirmed("interrupted".into()));
            }
        }
    }

    async fn deploy_with_retries(&self, p: &ValidPlugin) -> Result<PluginResult, RunError> {
        let mut backoff = FIRST_RETRY;
        for attempt in 1..=MAX_ATTEMPTS {
            if self.shutdown.is_cancelled() {
                return Err(self.interrupted());
            }
            let err = match self.attempt(p).await {
                Ok(()) => return Ok(PluginResult::Deployed),
                Err(e) => e,
            };
            if let AttemptError::Client(ClientError::Unauthorized { .. }) = err {
                return Err(RunError::Unauthorized {
                    url: self.config.server.clone(),
                    token_file: self.config.token_file.clone(),
                });
            }
            if self.shutdown.is_cancelled() && err.is_transient() {
                return Err(self.interrupted());
            }
            if !err.is_transient() || attempt == MAX_ATTEMPTS {
                return Ok(PluginResult::Failed(format!(
                    "{} (after {attempt} attempt{})",
                    err.describe(),
                    if attempt == 1 { "" } else { "s" }
                )));
            }
            tracing::warn!(
                plugin = %p.name,
                attempt,
                error = %err.describe(),
                retry_in_ms = backoff.as_millis() as u64,
                "transient failure, retrying"
            );
            if !self.sleep(backoff).await {
                return Err(self.interrupted());
            }
            backoff *= 2;
            // The server may be restarting; give it the same grace as at boot.
            self.wait_ready(self.config.ready_timeout).await?;
        }
        unreachable!("the last attempt returns")
    }
}

/// One line of `sideloadd status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginStatus {
    pub name: String,
    pub version: Option<String>,
    pub deployed: bool,
    pub detail: String,
}

/// What is deployed, from the state file and (when readable) the volume. Does not
/// contact the server.
pub fn status(config: &Config) -> Result<Vec<PluginStatus>, StateError> {
    let state = State::load(&config.state_dir, false)?;
    let volume = volume_access(config.volume.as_deref());
    let mut out = Vec::new();
    for decl in &config.plugins {
        let line = match validate::validate(decl) {
            Err(e) => PluginStatus {
                name: decl.name.clone(),
                version: None,
                deployed: false,
                detail: format!("invalid: {e}"),
            },
            Ok(p) => {
                let (deployed, detail) = match state.get(&p.name) {
                    None => (false, "not deployed".to_string()),
                    Some(d) if !d.matches(&p) => (
                        false,
                        format!("outdated: {} deployed, {} declared", d.version, p.version),
                    ),
                    Some(_) => match &volume {
                        Volume::Readable(v) => match volume_has(v, &p) {
                            Some(true) => (true, "deployed".to_string()),
                            Some(false) => (
                                false,
                                "recorded as deployed but missing from the volume".to_string(),
                            ),
                            None => (true, "deployed (volume not checked)".to_string()),
                        },
                        Volume::Unavailable => (true, "deployed (volume not checked)".to_string()),
                    },
                };
                PluginStatus {
                    name: p.name.clone(),
                    version: Some(p.version.clone()),
                    deployed,
                    detail,
                }
            }
        };
        out.push(line);
    }
    Ok(out)
}
