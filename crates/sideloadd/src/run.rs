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
//!   previous version back and waits for it to load, as a failed load does
//!   (`confirm::roll_back_and_confirm`).
//! - A plugin whose exact bytes are recorded *and* still installed (volume, RPC) is
//!   not sent again, so a reboot with nothing changed restarts no plugin; anything
//!   else installed over it is drift, and it is deployed again.
//! - With `adminPasswordFile`, the admin user ends up with that password
//!   (`password.rs`), set only when it differs; a failure there fails the run
//!   (exit 1) but never stops plugin provisioning.
//! - One run at a time per stateDir ([`crate::lock`]); after SIGTERM a run ends
//!   within [`STOP_GRACE`] plus a moment.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::config::{Config, PluginDecl};
use crate::confirm;
use crate::deploy::PluginResult;
use crate::health;
use crate::keep;
use crate::lock;
use crate::notify::Notifier;
use crate::password;
use crate::rollback;
use crate::rpc::Installed;
use crate::session::Session;
use crate::state::{Deployed, State};
use crate::upkeep;
use crate::validate::{self, PluginError, ValidPlugin};
use crate::volume::Volume;

// The shared types live below the orchestrator (issue 16); re-exported so
// `sideloadd::run::{Outcome, RunError, ...}` keep working for main.rs and callers.
pub use crate::deploy::MAX_ATTEMPTS;
pub use crate::error::RunError;
pub use crate::outcome::{Failure, Outcome};
pub use crate::token::read_token;

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
    let mut session = Session::new(config, client, notifier, shutdown, Volume::Unavailable);
    let mut outcome = Outcome::default();
    let valid = validate_while_waiting(&session, &mut outcome).await?;
    session.volume = Volume::open(config.volume.as_deref());
    let installed = live_installed(&session, &valid, &state).await;
    if let Some(installed) = &installed
        && !volume_agrees(&session.volume, installed)
    {
        session.volume = Volume::Unavailable;
    }
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

/// A volume that has none of the plugins Scrypted reports installed is not its
/// volume (a wrong `volume` setting): the server is trusted instead, and nothing is
/// redeployed because of it.
fn volume_agrees(volume: &Volume, installed: &BTreeMap<String, Installed>) -> bool {
    let Volume::Readable(path) = volume else {
        return true;
    };
    if installed.is_empty() || installed.keys().any(|n| volume.installed(n) == Some(true)) {
        return true;
    }
    tracing::warn!(volume = %path.display(), installed = installed.len(), "the volume looks wrong: Scrypted reports {} installed plugins and none of them is in it; trusting the server", installed.len());
    false
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
    for p in valid
        .iter()
        .filter(|p| state.get(&p.name).is_some() || state.pending(&p.name).is_some())
    {
        session.add_host(&p.name);
    }
    // Last resort hosts; prune never hosts on the plugin it removes. Only plugins
    // known installed are ever tried (`Session::may_host`).
    for (name, _) in state.undeclared() {
        session.add_host(&name);
    }
    for name in session.volume.installed_plugins() {
        session.add_host(&name);
    }
    // Better a host this run changes (the session is reopened elsewhere once it
    // closes) than no view of what is installed.
    let rpc = match session.rpc(&changing).await {
        Ok(rpc) => Ok(rpc),
        Err(_) => session.rpc(&[]).await,
    };
    match rpc {
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
        match health::check(session, p).await {
            health::Health::Dead(why) if session.volume.zip_intact(p) == Some(false) => {
                tracing::warn!(plugin = %p.name, version = %p.version, error = %why, "found not running, and its installed zip differs from the declared one; redeploying");
            }
            h => {
                health::report(session, p, h, outcome);
                return Ok(());
            }
        }
    }
    if let Some(a) = finish_pending(session, p, state, installed.as_ref()) {
        awaiting.push(a);
        return Ok(());
    }
    session.notifier.progress(&format!(
        "deploying {} ({}/{})",
        short_name(&p.name),
        position(session.config, &p.name),
        session.config.plugins.len()
    ));
    // Record before act: what is sent, and what to go back to, is on disk first.
    let previous = state.begin(&p.name, Deployed::of(p));
    state.save()?;
    let started = Instant::now();
    let since_ms = confirm::now_ms();
    let result = session.deploy_with_retries(p).await.map_err(|e| match e {
        RunError::Interrupted { .. } => interrupted(outcome),
        other => other,
    })?;
    let deploy = Deploy {
        result,
        previous,
        started,
        since_ms,
    };
    on_result(session, p, deploy, state, outcome, awaiting).await?;
    state.save()?;
    Ok(())
}

/// An earlier run deployed exactly this and stopped before it knew whether it
/// loaded: if it is what is installed, its load is confirmed now rather than
/// deployed again; the journaled previous version is still the one to go back to.
fn finish_pending(
    session: &Session<'_>,
    p: &ValidPlugin,
    state: &State,
    installed: Option<&BTreeMap<String, Installed>>,
) -> Option<confirm::Awaiting> {
    let pending = state.pending(&p.name)?;
    let version = installed?.get(&p.name)?.version.as_deref();
    if !pending.deploying.matches(p)
        || version != Some(p.version.as_str())
        || session.volume.has(p) == Some(false)
    {
        return None;
    }
    tracing::info!(plugin = %p.name, version = %p.version, "an earlier run deployed this version and stopped before its load was confirmed; confirming it now");
    Some(confirm::Awaiting {
        plugin: p.clone(),
        since_ms: 0,
        previous: pending.previous.clone(),
    })
}

/// One deploy as it went.
struct Deploy {
    result: PluginResult,
    /// What was in place before (journaled), to roll back to.
    previous: Option<Deployed>,
    started: Instant,
    /// Our clock when it was sent: its Logger lines are newer.
    since_ms: u64,
}

/// A deploy that went through waits for its load confirmation; one that failed
/// before Scrypted touched the running version keeps its record; one that failed
/// after Scrypted killed it puts the previous version back.
async fn on_result(
    session: &Session<'_>,
    p: &ValidPlugin,
    deploy: Deploy,
    state: &mut State,
    outcome: &mut Outcome,
    awaiting: &mut Vec<confirm::Awaiting>,
) -> Result<(), RunError> {
    let (reason, plugin_killed, record_changed) = match deploy.result {
        PluginResult::Deployed => {
            tracing::info!(plugin = %p.name, version = %p.version, zip_md5 = %p.zip_md5, duration_ms = deploy.started.elapsed().as_millis() as u64, "deployed; load to be confirmed");
            // Installed now and not changed again this run: it can host RPC.
            session.installed(&p.name);
            awaiting.push(confirm::Awaiting {
                plugin: p.clone(),
                since_ms: deploy.since_ms,
                previous: deploy.previous,
            });
            return Ok(());
        }
        PluginResult::Failed {
            reason,
            plugin_killed,
            record_changed,
        } => (reason, plugin_killed, record_changed),
    };
    tracing::error!(plugin = %p.name, version = %p.version, error = %reason, "deploy failed");
    let reason = match deploy.previous {
        // Scrypted never got to the running version: it still runs, as recorded,
        // but its database may now hold the new package.json and zip, which the
        // next Scrypted restart would start: those are put back too.
        Some(prev) if !plugin_killed => {
            let reason = match record_changed {
                true => format!(
                    "{reason}; {}",
                    rollback::restore_record(session, &p.name, &prev).await
                ),
                false => reason,
            };
            state.resolve(&p.name, prev);
            reason
        }
        Some(prev) if prev.zip_md5 != p.zip_md5 => {
            confirm::roll_back_and_confirm(session, state, &p.name, &prev, reason).await?
        }
        _ => {
            state.abandon(&p.name);
            reason
        }
    };
    outcome.failed.push(Failure {
        name: p.name.clone(),
        reason,
    });
    Ok(())
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
