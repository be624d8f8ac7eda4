//! `sideloadd status`: what is deployed. Live from Scrypted over RPC when it
//! answers (installed versions, drift), from the state file and the volume
//! otherwise. Changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::client::{Client, Probe};
use crate::config::{Config, PluginDecl};
use crate::notify::Notifier;
use crate::rpc::Installed;
use crate::session::Session;
use crate::state::{State, StateError};
use crate::token::read_token;
use crate::validate::{self, ValidPlugin};
use crate::volume::Volume;

/// One line of `sideloadd status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginStatus {
    pub name: String,
    pub version: Option<String>,
    pub deployed: bool,
    pub detail: String,
}

/// What `status` found: a line per plugin, and whether Scrypted was reached (Err:
/// why not; the lines then come from the state file and the volume only).
#[derive(Debug)]
pub struct Report {
    pub lines: Vec<PluginStatus>,
    pub server: Result<(), String>,
}

/// How long `status` tries to reach the server before answering from files.
const LIVE_WITHIN: Duration = Duration::from_secs(5);

/// What the server says: installed plugins, and which declared ones are not
/// running (name -> why).
#[derive(Debug, Default)]
struct Live {
    installed: BTreeMap<String, Installed>,
    not_running: BTreeMap<String, String>,
    /// Plugins whose newest start logged `loaded`.
    loaded: std::collections::BTreeSet<String>,
}

pub fn status(config: &Config) -> Result<Report, StateError> {
    let mut state = State::load(&config.state_dir, false)?;
    // As the next run will see it (in memory only: status changes nothing).
    let declared: Vec<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
    state.retain(&declared);
    let volume = Volume::open(config.volume.as_deref());
    let valid: Vec<_> = config
        .plugins
        .iter()
        .map(|d| (d, validate::validate(d)))
        .collect();
    let in_place: Vec<ValidPlugin> = valid
        .iter()
        .filter_map(|(_, v)| v.as_ref().ok())
        .filter(|p| {
            state.get(&p.name).is_some_and(|d| d.matches(p))
                || state
                    .pending(&p.name)
                    .is_some_and(|j| j.deploying.matches(p))
        })
        .cloned()
        .collect();
    let live = live(config, &state, &in_place);
    let known = live.as_ref().ok().and_then(Option::as_ref);
    let mut lines: Vec<PluginStatus> = valid
        .into_iter()
        .map(|(decl, v)| line(decl, v, &state, &volume, known))
        .collect();
    lines.extend(undeclared(&state, known));
    Ok(Report {
        lines,
        server: live.map(drop),
    })
}

/// Plugins sideloadd installed that are no longer declared, as installed now.
fn undeclared(state: &State, live: Option<&Live>) -> Vec<PluginStatus> {
    let mut lines = Vec::new();
    for (name, d) in state.undeclared() {
        let installed = live.map(|l| l.installed.get(&name));
        let (version, detail) = match installed {
            Some(None) => continue,
            Some(Some(i)) if i.version.as_deref() != Some(d.version.as_str()) => {
                let v = i.version.clone().unwrap_or_else(|| "?".into());
                let detail = format!(
                    "installed by other means over the {} sideloadd installed; not declared, \
                     and not sideloadd's: prune leaves it",
                    d.version
                );
                (v, detail)
            }
            _ => (
                d.version,
                "installed by sideloadd, no longer declared: prune would remove it".into(),
            ),
        };
        lines.push(PluginStatus {
            name,
            version: Some(version),
            deployed: true,
            detail,
        });
    }
    lines
}

/// What the server says, if it answers soon; Err: why it was not reached. Ok(None):
/// it answered, but no RPC session could be opened (nothing known installed can
/// host one), so the files say what is deployed.
fn live(config: &Config, state: &State, in_place: &[ValidPlugin]) -> Result<Option<Live>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        tokio::time::timeout(LIVE_WITHIN, live_session(config, state, in_place))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", LIVE_WITHIN.as_secs())))
    })
}

async fn live_session(
    config: &Config,
    state: &State,
    in_place: &[ValidPlugin],
) -> Result<Option<Live>, String> {
    let token = read_token(&config.token_file).map_err(|e| e.to_string())?;
    let client = Client::new(config.server.clone(), &token).map_err(|e| e.to_string())?;
    match client.probe(Duration::from_secs(2)).await {
        Probe::Ready => {}
        Probe::Unauthorized => return Err("it rejected the token (401 Not Authorized)".into()),
        Probe::NotYet(why) => return Err(why),
    }
    let volume = Volume::open(config.volume.as_deref());
    let session = Session::new(config, client, Notifier, CancellationToken::new(), volume);
    for d in &config.plugins {
        session.add_host(&d.name);
    }
    for (name, _) in state.undeclared() {
        session.add_host(&name);
    }
    for name in session.volume.installed_plugins() {
        session.add_host(&name);
    }
    let rpc = match session.rpc(&[]).await {
        Ok(rpc) => rpc,
        Err(e) => {
            tracing::info!(error = %e, "Scrypted answers, but no RPC session: the files say what is deployed");
            return Ok(None);
        }
    };
    let installed = rpc.installed();
    let mut live = Live {
        installed,
        ..Live::default()
    };
    for p in in_place
        .iter()
        .filter(|p| live.installed.contains_key(&p.name))
    {
        if let crate::health::Health::Dead(why) = crate::health::check(&session, p).await {
            live.not_running.insert(p.name.clone(), why);
        } else if crate::confirm::newest_loaded(&session, p).await {
            live.loaded.insert(p.name.clone());
        }
    }
    Ok(Some(live))
}

fn line(
    decl: &PluginDecl,
    valid: Result<ValidPlugin, validate::PluginError>,
    state: &State,
    volume: &Volume,
    live: Option<&Live>,
) -> PluginStatus {
    let p = match valid {
        Err(e) => {
            return PluginStatus {
                name: decl.name.clone(),
                version: None,
                deployed: false,
                detail: format!("invalid: {e}"),
            };
        }
        Ok(p) => p,
    };
    let (deployed, detail) =
        match live.map(|l| (l.installed.get(&p.name), l.not_running.get(&p.name))) {
            Some((None, _)) => (false, "not installed".into()),
            Some((Some(i), _)) if i.version.as_deref() != Some(p.version.as_str()) => {
                (false, mismatch(&p, i, state))
            }
            Some((Some(_), Some(why))) => (false, format!("deployed but not running: {why}")),
            // Installed as declared, and running: only no run has recorded it yet.
            Some((Some(_), None))
                if state.pending(&p.name).is_some()
                    && live.is_some_and(|l| l.loaded.contains(&p.name)) =>
            {
                (
                    true,
                    "deployed and running; a run stopped before confirming its load, the next \
                 run records it"
                        .into(),
                )
            }
            _ => deployed(&p, state, volume),
        };
    PluginStatus {
        name: p.name.clone(),
        version: Some(p.version.clone()),
        deployed,
        detail,
    }
}

/// A deploy whose run stopped before its load was confirmed.
fn pending(j: &crate::state::Pending) -> String {
    let back = match &j.previous {
        Some(prev) => format!("or puts {} back", prev.version),
        None => "or reports it".into(),
    };
    format!(
        "deploying {}: a run stopped before its load was confirmed; the next run confirms it {back}",
        j.deploying.version
    )
}

/// Installed and declared versions differ: the config moved on (outdated), or
/// something other than sideloadd installed over it (drifted).
fn mismatch(p: &ValidPlugin, i: &Installed, state: &State) -> String {
    let installed = i.version.as_deref().unwrap_or("?");
    let recorded = state.get(&p.name).map(|d| d.version.as_str());
    if recorded == Some(installed) {
        format!("outdated: {installed} deployed, {} declared", p.version)
    } else {
        format!("drifted: {installed} installed, {} declared", p.version)
    }
}

fn deployed(p: &ValidPlugin, state: &State, volume: &Volume) -> (bool, String) {
    match state.get(&p.name) {
        None => match state.pending(&p.name) {
            Some(j) => (false, pending(j)),
            None => (false, "not deployed".into()),
        },
        Some(d) if !d.matches(p) => (
            false,
            format!("outdated: {} deployed, {} declared", d.version, p.version),
        ),
        Some(_) => match volume.has(p) {
            Some(true) => (true, "deployed".into()),
            Some(false) if volume.has_other_zip(&p.name) => (
                false,
                "drifted: another zip than the declared one is installed".into(),
            ),
            Some(false) => (
                false,
                "recorded as deployed but missing from the volume".into(),
            ),
            None => (true, "deployed (volume not checked)".into()),
        },
    }
}
