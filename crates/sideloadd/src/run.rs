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
//! - A plugin counts as deployed only once Scrypted has loaded it: its md5-named
//!   zip in the volume (when readable) and `loaded <name>` in Scrypted's Logger
//!   (`confirm.rs`). Only then is it written to the state file.
//! - A deploy that fails after Scrypted killed the running version puts the kept
//!   previous version back (`roll_back`).
//! - A plugin whose exact bytes are recorded *and* still installed (volume, RPC) is
//!   not sent again, so a reboot with nothing changed restarts no plugin; anything
//!   else installed over it is drift, and it is deployed again.
//! - With `adminPasswordFile`, the admin user ends up with that password
//!   (`password.rs`), set only when it differs; a failure there fails the run
//!   (exit 1) but never stops plugin provisioning.
//! - One run at a time per stateDir ([`crate::lock`]); after SIGTERM a run ends
//!   within [`STOP_GRACE`] plus a moment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::client::{Client, ClientError};
use crate::config::{Config, PluginDecl};
use crate::confirm;
use crate::deploy::PluginResult;
use crate::keep;
use crate::lock::{self, LockError};
use crate::notify::Notifier;
use crate::password;
use crate::rpc::Installed;
use crate::session::Session;
use crate::state::{Deployed, State, StateError};
use crate::upkeep;
use crate::validate::{self, PluginError, ValidPlugin};
use crate::volume::Volume;

pub use crate::deploy::MAX_ATTEMPTS;

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
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("stopped by a signal; a request still unanswered after {grace_s} s was abandoned")]
    Abandoned { grace_s: u64 },
    #[error("stopped by a signal before finishing: {in_place} of {total} plugins in place")]
    Interrupted { in_place: usize, total: usize },
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Interrupted { .. }
            | Self::Abandoned { .. }
            | Self::Lock(LockError::Interrupted) => crate::EXIT_INTERRUPTED,
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
    /// Uninstalled because no longer declared (`prune`).
    pub pruned: Vec<String>,
    /// Why the admin password from `adminPasswordFile` could not be set.
    pub admin_password_failed: Option<String>,
}

impl Outcome {
    /// Every plugin in place and, when declared, the admin password set.
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.admin_password_failed.is_none()
    }

    pub fn summary(&self) -> String {
        let password = match self.admin_password_failed {
            Some(_) => "; admin password not set",
            None => "",
        };
        format!("{}{password}", self.plugins_summary())
    }

    fn plugins_summary(&self) -> String {
        let in_place = self.deployed.len() + self.unchanged.len();
        let pruned = match self.pruned.len() {
            0 => String::new(),
            n => format!(", {n} pruned"),
        };
        if self.failed.is_empty() {
            format!(
                "{in_place} plugins in place, {} skipped{pruned}",
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

/// How long a request in flight may still take after SIGTERM. systemd kills
/// the unit at its TimeoutStopSec; the run must end well before, also in the
/// middle of a deploy that hangs.
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// Provisions every declared plugin. After a signal it stops at the next request
/// boundary, or abandons the request in flight after [`STOP_GRACE`]: an upload cut
/// off stores nothing, and the state file is only ever replaced whole.
pub async fn run(
    config: &Config,
    shutdown: CancellationToken,
    notifier: Notifier,
) -> Result<Outcome, RunError> {
    let stopped = shutdown.clone();
    tokio::select! {
        result = run_to_end(config, shutdown, notifier) => result,
        () = async {
            stopped.cancelled().await;
            tokio::time::sleep(STOP_GRACE).await;
        } => {
            tracing::warn!(grace_s = STOP_GRACE.as_secs(), "a request was still in flight after the grace period; abandoned");
            Err(RunError::Abandoned { grace_s: STOP_GRACE.as_secs() })
        }
    }
}

async fn run_to_end(
    config: &Config,
    shutdown: CancellationToken,
    notifier: Notifier,
) -> Result<Outcome, RunError> {
    notifier.progress(&format!("validating {} plugins", config.plugins.len()));
    let token = read_token(&config.token_file)?;
    let client = Client::new(config.server.clone(), &token).map_err(|source| RunError::Client {
        path: config.token_file.clone(),
        source: Box::new(source),
    })?;
    drop(token);
    let _lock = lock::acquire(&config.state_dir, lock::LOCK_WAIT, &shutdown).await?;
    let mut state = open_state(config)?;
    let to_prune = config.prune && !state.undeclared().is_empty();
    if config.plugins.is_empty() && !to_prune && config.admin_password_file.is_none() {
        // Nothing to put in place, remove or set; no reason to wait for the server.
        return Ok(Outcome::default());
    }
    let mut session = Session {
        config,
        client,
        notifier,
        shutdown,
        volume: Volume::Unavailable,
        rpc: Default::default(),
        hosts: Default::default(),
    };
    let mut outcome = Outcome::default();
    let valid = validate_while_waiting(&session, &mut outcome).await?;
    session.volume = Volume::open(config.volume.as_deref());
    let installed = live_installed(&session, &valid, &state).await;
    let mut awaiting = Vec::new();
    for p in &valid {
        provision_one(
            &session,
            p,
            &mut state,
            &mut outcome,
            &installed,
            &mut awaiting,
        )
        .await?;
    }
    confirm::confirm_all(&session, awaiting, &mut state, &mut outcome).await?;
    upkeep::auto_update(&session, &mut outcome).await;
    // After the deploys: on a first boot they install the plugin that hosts RPC.
    password::admin_password(&session, &mut outcome).await;
    upkeep::prune(&session, &mut state, &mut outcome).await?;
    // Report failures in config order.
    outcome
        .failed
        .sort_by_key(|f| config.plugins.iter().position(|d| d.name == f.name));
    Ok(outcome)
}

/// Loads the state, dropping plugins no longer declared, and saves it at once:
/// that proves stateDir is writable before anything is sent.
fn open_state(config: &Config) -> Result<State, RunError> {
    let mut state = State::load(&config.state_dir, true)?;
    if let Some(why) = &state.discarded {
        tracing::warn!(path = %state.path().display(), reason = %why, "ignoring unreadable state file; every plugin will be redeployed");
    }
    let declared: Vec<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
    state.retain(&declared);
    keep::retain(&config.state_dir, &declared);
    state.save()?;
    Ok(state)
}

/// Reading and checking every zip overlaps with Scrypted's own start-up, so the
/// work left once it answers is only the per-plugin "already there?" checks.
/// Invalid plugins go to `outcome` even when the server never comes up.
async fn validate_while_waiting(
    session: &Session<'_>,
    outcome: &mut Outcome,
) -> Result<Vec<ValidPlugin>, RunError> {
    let started = Instant::now();
    let (validated, ready) = tokio::join!(
        validate_all(&session.config.plugins),
        session.wait_ready(session.config.ready_timeout)
    );
    let mut valid = Vec::new();
    for (decl, res) in validated {
        match res {
            Ok(p) => valid.push(p),
            Err(e) => {
                tracing::error!(plugin = %decl.name, key = %decl.key, error = %e, "invalid plugin, not sent");
                outcome.failed.push(Failure {
                    name: decl.name.clone(),
                    reason: format!("invalid, not sent ({}): {e}", decl.key),
                });
            }
        }
    }
    ready?;
    tracing::info!(
        duration_ms = started.elapsed().as_millis() as u64,
        "Scrypted is ready"
    );
    Ok(valid)
}

/// What Scrypted has installed, over RPC, hosted on a plugin this run will not
/// redeploy if there is one (`docs/scrypted-api.md` §8). None: no session.
async fn live_installed(
    session: &Session<'_>,
    valid: &[ValidPlugin],
    state: &State,
) -> Option<BTreeMap<String, Installed>> {
    let changing: Vec<&str> = valid
        .iter()
        .filter(|p| !state.get(&p.name).is_some_and(|d| d.matches(p)))
        .map(|p| p.name.as_str())
        .collect();
    for p in valid.iter().filter(|p| state.get(&p.name).is_some()) {
        session.add_host(&p.name);
    }
    // Last resort hosts; prune never hosts on the plugin it removes.
    for (name, _) in state.undeclared() {
        session.add_host(&name);
    }
    match session.rpc(&changing).await {
        Ok(rpc) => Some(rpc.installed()),
        Err(e) => {
            tracing::info!(error = %e, "no RPC session yet (nothing alive to host it)");
            None
        }
    }
}

async fn provision_one(
    session: &Session<'_>,
    p: &ValidPlugin,
    state: &mut State,
    outcome: &mut Outcome,
    installed: &Option<BTreeMap<String, Installed>>,
    awaiting: &mut Vec<confirm::Awaiting>,
) -> Result<(), RunError> {
    let interrupted = |outcome: &Outcome| RunError::Interrupted {
        in_place: outcome.deployed.len() + outcome.unchanged.len(),
        total: session.config.plugins.len(),
    };
    if session.shutdown.is_cancelled() {
        return Err(interrupted(outcome));
    }
    if in_place(session, p, state, installed.as_ref()) {
        tracing::info!(plugin = %p.name, version = %p.version, "unchanged, not redeployed");
        // Also for plugins deployed before copies were kept.
        keep_copy(session, p);
        outcome.unchanged.push(p.name.clone());
        return Ok(());
    }
    session.notifier.progress(&format!(
        "deploying {} ({}/{})",
        short_name(&p.name),
        position(session.config, &p.name),
        session.config.plugins.len()
    ));
    let started = Instant::now();
    let since_ms = confirm::now_ms();
    let result = session.deploy_with_retries(p).await.map_err(|e| match e {
        RunError::Interrupted { .. } => interrupted(outcome),
        other => other,
    })?;
    on_result(
        session,
        p,
        result,
        (started, since_ms),
        state,
        outcome,
        awaiting,
    )
    .await?;
    state.save()?;
    Ok(())
}

/// A deploy that went through waits for its load confirmation; one that failed
/// after Scrypted killed the plugin puts the previous version back.
async fn on_result(
    session: &Session<'_>,
    p: &ValidPlugin,
    result: PluginResult,
    (started, since_ms): (Instant, u64),
    state: &mut State,
    outcome: &mut Outcome,
    awaiting: &mut Vec<confirm::Awaiting>,
) -> Result<(), RunError> {
    match result {
        PluginResult::Deployed => {
            tracing::info!(plugin = %p.name, version = %p.version, zip_md5 = %p.zip_md5, duration_ms = started.elapsed().as_millis() as u64, "deployed; load to be confirmed");
            // Installed now and not changed again this run: it can host RPC.
            session.add_host(&p.name);
            awaiting.push(confirm::Awaiting {
                plugin: p.clone(),
                since_ms,
                previous: state.get(&p.name).cloned(),
            });
            // Not in place until its load is confirmed.
            state.forget(&p.name);
        }
        PluginResult::Failed {
            reason,
            plugin_killed,
        } => {
            tracing::error!(plugin = %p.name, version = %p.version, error = %reason, "deploy failed");
            let previous = state.get(&p.name).cloned();
            // A failed deploy may have replaced what was installed; the old claim
            // no longer holds.
            state.forget(&p.name);
            let reason = match previous {
                Some(prev) if plugin_killed && prev.zip_md5 != p.zip_md5 => {
                    let back = roll_back(session, &p.name, &prev).await?;
                    if back.is_ok() {
                        state.record(&p.name, prev.clone());
                    }
                    format!("{reason}; {}", back.unwrap_or_else(|e| e))
                }
                _ => reason,
            };
            outcome.failed.push(Failure {
                name: p.name.clone(),
                reason,
            });
        }
    }
    Ok(())
}

/// Keeps a copy of what is now in place, for [`roll_back`]. Failing to keep one
/// costs only the rollback, so it is logged, not fatal.
pub(crate) fn keep_copy(session: &Session<'_>, p: &ValidPlugin) {
    if let Err(e) = keep::keep(&session.config.state_dir, p) {
        tracing::warn!(plugin = %p.name, error = %e, "cannot keep a copy for rollback");
    }
}

/// Scrypted killed the old version and the new one did not make it: put the kept
/// copy of the old version back, so the plugin keeps running. Ok/Err: the sentence
/// saying which.
pub(crate) async fn roll_back(
    session: &Session<'_>,
    name: &str,
    prev: &Deployed,
) -> Result<Result<String, String>, RunError> {
    let Some(decl) = keep::kept(&session.config.state_dir, name, &prev.zip_md5) else {
        return Ok(Err(format!(
            "no copy of {} was kept, so it could not be put back: the plugin is down",
            prev.version
        )));
    };
    let old = match validate::validate(&decl) {
        Ok(old) => old,
        Err(e) => return Ok(Err(format!("the kept {} is unusable: {e}", prev.version))),
    };
    tracing::warn!(plugin = %name, version = %old.version, "rolling back to the version that was in place");
    Ok(match session.deploy_with_retries(&old).await? {
        PluginResult::Deployed => {
            tracing::info!(plugin = %name, version = %old.version, "rolled back; the previous version runs");
            Ok(format!(
                "rolled back: the previous version {} was redeployed and keeps running",
                old.version
            ))
        }
        PluginResult::Failed { reason, .. } => Err(format!(
            "rolling back to {} failed too: {reason}",
            old.version
        )),
    })
}

/// Position among all declared plugins, as the operator counts them.
fn position(config: &Config, name: &str) -> usize {
    config
        .plugins
        .iter()
        .position(|d| d.name == name)
        .map_or(0, |i| i + 1)
}

fn short_name(name: &str) -> &str {
    name.strip_prefix("@scrypted/").unwrap_or(name)
}

/// A plugin whose exact bytes are recorded *and* still installed is not sent
/// again, so a reboot with nothing changed restarts no plugin. "Installed" is the
/// md5-named zip in the volume and, over RPC, the declared version: anything else
/// (auto-update, a hand install) is drift, repaired by deploying again. Without
/// either, nothing is guessed: it is deployed again (`docs/scrypted-api.md` §6).
fn in_place(
    session: &Session<'_>,
    p: &ValidPlugin,
    state: &State,
    installed: Option<&BTreeMap<String, Installed>>,
) -> bool {
    if !state.get(&p.name).is_some_and(|d| d.matches(p)) {
        return false;
    }
    if let Some(installed) = installed {
        let version = installed.get(&p.name).and_then(|i| i.version.as_deref());
        if version != Some(p.version.as_str()) {
            let found = version.unwrap_or("nothing");
            tracing::warn!(plugin = %p.name, installed = found, declared = %p.version, "drifted: {found} installed, {} declared; redeploying", p.version);
            return false;
        }
    }
    match session.volume.has(p) {
        Some(true) => true,
        Some(false) => {
            tracing::warn!(plugin = %p.name, "drifted: the installed zip is not the declared one; redeploying");
            false
        }
        None if installed.is_some() => true,
        None => {
            tracing::warn!(plugin = %p.name, "no readable volume and no RPC session: cannot tell what is installed; redeploying");
            false
        }
    }
}
