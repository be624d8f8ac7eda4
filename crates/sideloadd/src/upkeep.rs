//! What a run does besides deploying: keep Scrypted from updating pinned plugins
//! behind the operator's back, and (opt-in) uninstall what is no longer declared
//! (`docs/scrypted-api.md` §9, §11).

use std::time::{Duration, Instant};

use crate::rpc::{CORE, RpcError};
use crate::run::{Failure, Outcome, RunError};
use crate::session::Session;
use crate::state::State;

/// Core creates its automation shortly after it loads.
const AUTOMATION_WITHIN: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(200);

/// With `autoUpdate: false`, makes sure core's "Autoupdate Plugins" automation is
/// off, and says so. Failing to is a failure of the run: pins would not hold.
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
            outcome.failed.push(Failure {
                name: CORE.into(),
                reason: format!(
                    "cannot turn off its plugin auto-update, so pins may not hold: {e}"
                ),
            });
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

async fn turn_off(session: &Session<'_>, wait: bool) -> Result<Automation, RpcError> {
    let deadline = Instant::now() + AUTOMATION_WITHIN;
    loop {
        let rpc = match session.rpc(&[]).await {
            Ok(rpc) => rpc,
            // Nothing is installed at all: nothing can update anything.
            Err(_) if session.hosts.lock().map(|h| h.is_empty()).unwrap_or(false) => {
                return Ok(Automation::NoCore);
            }
            Err(e) => return Err(e),
        };
        match rpc.auto_update_off().await? {
            Some(true) => return Ok(Automation::TurnedOff),
            Some(false) => return Ok(Automation::Off),
            None if !rpc.installed().contains_key(CORE) => return Ok(Automation::NoCore),
            None if !wait || Instant::now() >= deadline => return Ok(Automation::Missing),
            None => {}
        }
        if !session.sleep(POLL).await {
            return Ok(Automation::Missing);
        }
    }
}

/// Plugins sideloadd installed in an earlier run and no longer declared: removed
/// with `prune`, listed otherwise. A plugin sideloadd never installed is never
/// touched (only the state file's records are considered).
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
        match remove(session, &name).await {
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

/// Ok(false): it was not installed any more. Hosted on another plugin when one
/// is alive; else on the plugin itself, whose removal then closes the session:
/// a polling handshake (harmless) answering 404 confirms it is gone.
async fn remove(session: &Session<'_>, name: &str) -> Result<bool, RpcError> {
    let rpc = match session.rpc(&[name]).await {
        Ok(rpc) => rpc,
        Err(_) => session.rpc(&[]).await?,
    };
    let Some(id) = rpc.plugin_id(name).await? else {
        return Ok(false);
    };
    match rpc.remove_device(&id).await {
        Err(RpcError::Closed) if rpc.host() == name => {
            let c = &session.client;
            match crate::rpc::peer::host_alive(c.http(), c.base(), c.auth(), name).await {
                Err(RpcError::HostNotAlive { answer, .. }) if answer.starts_with("404") => Ok(true),
                Ok(()) => Err(RpcError::Protocol(format!("{name} is still installed"))),
                Err(e) => Err(e),
            }
        }
        other => other.map(|()| true),
    }
}
