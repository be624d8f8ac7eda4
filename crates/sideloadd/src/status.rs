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
use crate::run::read_token;
use crate::session::Session;
use crate::state::{State, StateError};
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

/// How long `status` tries to reach the server before answering from files.
const LIVE_WITHIN: Duration = Duration::from_secs(5);

pub fn status(config: &Config) -> Result<Vec<PluginStatus>, StateError> {
    let state = State::load(&config.state_dir, false)?;
    let volume = Volume::open(config.volume.as_deref());
    let live = live(config, &state);
    let mut lines: Vec<PluginStatus> = config
        .plugins
        .iter()
        .map(|decl| line(decl, &state, &volume, live.as_ref()))
        .collect();
    for (name, d) in state.undeclared() {
        let installed = live.as_ref().map(|l| l.contains_key(&name));
        if installed == Some(false) {
            continue;
        }
        lines.push(PluginStatus {
            name,
            version: Some(d.version),
            deployed: true,
            detail: "installed by sideloadd, no longer declared: prune would remove it".into(),
        });
    }
    Ok(lines)
}

/// Installed plugins over RPC, if the server answers soon.
fn live(config: &Config, state: &State) -> Option<BTreeMap<String, Installed>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        tokio::time::timeout(LIVE_WITHIN, live_session(config, state))
            .await
            .ok()
            .flatten()
    })
}

async fn live_session(config: &Config, state: &State) -> Option<BTreeMap<String, Installed>> {
    let token = read_token(&config.token_file).ok()?;
    let client = Client::new(config.server.clone(), &token).ok()?;
    if !matches!(client.probe(Duration::from_secs(2)).await, Probe::Ready) {
        return None;
    }
    let session = Session {
        config,
        client,
        notifier: Notifier,
        shutdown: CancellationToken::new(),
        volume: Volume::Unavailable,
        rpc: Default::default(),
        hosts: Default::default(),
    };
    for d in &config.plugins {
        session.add_host(&d.name);
    }
    for (name, _) in state.undeclared() {
        session.add_host(&name);
    }
    Some(session.rpc(&[]).await.ok()?.installed())
}

fn line(
    decl: &PluginDecl,
    state: &State,
    volume: &Volume,
    live: Option<&BTreeMap<String, Installed>>,
) -> PluginStatus {
    match validate::validate(decl) {
        Err(e) => PluginStatus {
            name: decl.name.clone(),
            version: None,
            deployed: false,
            detail: format!("invalid: {e}"),
        },
        Ok(p) => {
            let (deployed, detail) = match live.map(|l| l.get(&p.name)) {
                Some(None) => (false, "not installed".into()),
                Some(Some(i)) if i.version.as_deref() != Some(p.version.as_str()) => {
                    (false, mismatch(&p, i, state))
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
    }
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
        None => (false, "not deployed".into()),
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
