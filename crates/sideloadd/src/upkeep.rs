//! What a run does besides deploying: keep Scrypted from updating pinned plugins
//! behind the operator's back, and (opt-in) uninstall what is no longer declared
//! (`docs/scrypted-api.md` §9, §11).

use std::time::{Duration, Instant};

use crate::error::RunError;
use crate::outcome::{Failure, Outcome};
use crate::rpc::{CORE, RpcError};
use crate::session::Session;
use crate::state::{Deployed, State};

/// Core creates its automation shortly after it loads.
const AUTOMATION_WITHIN: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(200);
/// A removed plugin's files leave the volume within moments.
const GONE_WITHIN: Duration = Duration::from_secs(5);

/// With `autoUpdate: false`, makes sure core's "Autoupdate Plugins" automation is
/// off, and says so. Failing to is a failure of the run (pins would not hold),
/// reported on its own line, never as a plugin's failure.
pub async fn auto_update(session: &Session<'_>, outcome: &mut Outcome) {
    if session.config.auto_update {
        tracing::info!("autoUpdate is true: Scrypted's plugin auto-update left as it is");
        return;
    }
    // Core creates the automation shortly after its first load: only a core
    // loaded by this run is worth waiting for.
    let fresh_core = outcome.deployed.iter().any(|n| n == CORE);
    match turn_off(session, fresh_core).await {
        Ok(Automation::TurnedOff) => tracing::info!(
            "turned off Scrypted's plugin auto-update (core's \"Autoupdate Plugins\"), so the pins hold"
        ),
        Ok(Automation::Off) => tracing::info!("Scrypted's plugin auto-update is off"),
        Ok(Automation::NoCore) => {
            tracing::info!("no @scrypted/core installed: nothing updates plugins");
        }
        Ok(Automation::Missing) => {
            tracing::warn!(
                "@scrypted/core is installed but has no \"Autoupdate Plugins\" automation (yet)"
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot turn off Scrypted's plugin auto-update");
            outcome.auto_update_failed = Some(format!(
                "cannot make sure Scrypted's plugin auto-update is off, so pins may not hold: {e}"
            ));
        }
    }
}

/// What became of core's auto-update automation.
#[derive(Debug)]
enum Automation {
    TurnedOff,
    Off,
    NoCore,
    Missing,
}

/// Whether core is installed comes from the server's list (or, without a session,
/// the volume), never from which plugins this run could host a session on.
async fn turn_off(session: &Session<'_>, wait: bool) -> Result<Automation, RpcError> {
    let deadline = Instant::now() + AUTOMATION_WITHIN;
    let mut reopened = false;
    loop {
        let rpc = match session.rpc(&[]).await {
            Ok(rpc) => rpc,
            Err(_) if session.known_installed(CORE) == Some(false) => {
                return Ok(Automation::NoCore);
            }
            Err(e) => return Err(e),
        };
        if !rpc.installed().contains_key(CORE) {
            return Ok(Automation::NoCore);
        }
        let off = match rpc.auto_update_off().await {
            // Its host went away meanwhile: once more, on a new session.
            Err(RpcError::Closed) if !reopened => {
                reopened = true;
                continue;
            }
            off => off?,
        };
        match off {
            Some(true) => return Ok(Automation::TurnedOff),
            Some(false) => return Ok(Automation::Off),
            None if !wait || Instant::now() >= deadline => return Ok(Automation::Missing),
            None => {}
        }
        if !session.sleep(POLL).await {
            return Ok(Automation::Missing);
        }
    }
}

/// Whether an undeclared plugin is still what sideloadd installed.
#[derive(Debug)]
enum Owner {
    /// The same version, and (with a volume) the same zip.
    Sideloadd,
    /// Not installed any more.
    Gone,
    /// Something else was installed over it (by hand, by auto-update): its
    /// version.
    Other(String),
}

/// Plugins sideloadd installed in an earlier run and no longer declared: removed
/// with `prune`, listed otherwise. Only while what is installed is what sideloadd
/// installed (version, and zip where the volume shows it): a plugin installed by
/// hand, also over one sideloadd had installed, is never touched.
pub async fn prune(
    session: &Session<'_>,
    state: &mut State,
    outcome: &mut Outcome,
) -> Result<(), RunError> {
    for (name, d) in state.undeclared() {
        if !session.config.prune {
            tracing::info!(plugin = %name, version = %d.version, "installed by sideloadd, no longer declared; kept (\"prune\": true would remove it)");
            continue;
        }
        let mut result = prune_one(session, &name, &d).await;
        if matches!(result, Err(RpcError::Closed)) {
            // Its host went away meanwhile (removed or redeployed by someone else):
            // the next session is hosted elsewhere.
            result = prune_one(session, &name, &d).await;
        }
        match result {
            Ok(removed) => {
                if removed {
                    tracing::info!(plugin = %name, version = %d.version, "pruned: uninstalled, no longer declared");
                    outcome.pruned.push(name.clone());
                }
                state.forget_undeclared(&name);
                state.save()?;
            }
            Err(e) => outcome.failed.push(Failure {
                name: name.clone(),
                reason: format!("cannot prune it: {e}"),
            }),
        }
    }
    Ok(())
}

/// Removes `name` if it is still sideloadd's. Ok(false): nothing to remove.
async fn prune_one(session: &Session<'_>, name: &str, d: &Deployed) -> Result<bool, RpcError> {
    match owner(session, name, d).await? {
        Owner::Sideloadd => remove(session, name).await,
        Owner::Gone => Ok(false),
        Owner::Other(version) => {
            tracing::info!(plugin = %name, installed = %version, recorded = %d.version, "{version} is installed, not the {} sideloadd installed: installed by other means since, so not sideloadd's to remove; left alone and no longer tracked", d.version);
            Ok(false)
        }
    }
}

/// What is installed under `name`, from the server's list and the volume.
async fn owner(session: &Session<'_>, name: &str, d: &Deployed) -> Result<Owner, RpcError> {
    let rpc = match session.rpc(&[name]).await {
        Ok(rpc) => rpc,
        Err(_) => session.rpc(&[]).await?,
    };
    let Some(installed) = rpc.installed().remove(name) else {
        return Ok(Owner::Gone);
    };
    let version = installed.version.unwrap_or_else(|| "?".into());
    if version != d.version {
        return Ok(Owner::Other(version));
    }
    match session.volume.has_zip(name, &d.zip_md5) {
        Some(false) => Ok(Owner::Other(format!("{version} (another zip)"))),
        Some(true) | None => Ok(Owner::Sideloadd),
    }
}

/// Ok(false): it was not installed any more. Hosted on another plugin when one
/// is alive; else on the plugin itself, whose removal then closes the session.
async fn remove(session: &Session<'_>, name: &str) -> Result<bool, RpcError> {
    let rpc = match session.rpc(&[name]).await {
        Ok(rpc) => rpc,
        Err(_) => session.rpc(&[]).await?,
    };
    let Some(id) = rpc.plugin_id(name).await? else {
        return Ok(false);
    };
    let removed = match rpc.remove_device(&id).await {
        Err(RpcError::Closed) if rpc.host() == name => confirm_gone(session, name).await,
        other => other.map(|()| true),
    };
    if removed.is_ok() {
        session.removed(name);
    }
    removed
}

/// The session closed with its host, the plugin being removed. The volume shows
/// whether it is gone; without one, a polling handshake answering 404 does, except
/// for core: any request under its endpoint makes Scrypted download it again
/// (`docs/scrypted-api.md` §8).
async fn confirm_gone(session: &Session<'_>, name: &str) -> Result<bool, RpcError> {
    // The session closes as the removal starts; the files go a moment later.
    let deadline = Instant::now() + GONE_WITHIN;
    while session.volume.installed(name) == Some(true) && Instant::now() < deadline {
        if !session.sleep(POLL).await {
            break;
        }
    }
    match session.volume.installed(name) {
        Some(false) => return Ok(true),
        Some(true) => return Err(RpcError::Protocol(format!("{name} is still installed"))),
        None if name == CORE => {
            tracing::warn!(plugin = %name, "removed; with no volume to look at, its removal is taken from the closed session");
            return Ok(true);
        }
        None => {}
    }
    let c = &session.client;
    match crate::rpc::peer::host_alive(c.http(), c.base(), c.auth(), name).await {
        Err(RpcError::HostNotAlive { answer, .. }) if answer.starts_with("404") => Ok(true),
        Ok(()) => Err(RpcError::Protocol(format!("{name} is still installed"))),
        Err(e) => Err(e),
    }
}
