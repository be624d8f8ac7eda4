//! `sideloadd status`: what is deployed, from the state file and (when readable)
//! the volume. Does not contact the server.

use crate::config::{Config, PluginDecl};
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

pub fn status(config: &Config) -> Result<Vec<PluginStatus>, StateError> {
    let state = State::load(&config.state_dir, false)?;
    let volume = Volume::open(config.volume.as_deref());
    Ok(config
        .plugins
        .iter()
        .map(|decl| line(decl, &state, &volume))
        .collect())
}

fn line(decl: &PluginDecl, state: &State, volume: &Volume) -> PluginStatus {
    match validate::validate(decl) {
        Err(e) => PluginStatus {
            name: decl.name.clone(),
            version: None,
            deployed: false,
            detail: format!("invalid: {e}"),
        },
        Ok(p) => {
            let (deployed, detail) = deployed(&p, state, volume);
            PluginStatus {
                name: p.name.clone(),
                version: Some(p.version.clone()),
                deployed,
                detail,
            }
        }
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
            Some(false) => (
                false,
                "recorded as deployed but missing from the volume".into(),
            ),
            None => (true, "deployed (volume not checked)".into()),
        },
    }
}
