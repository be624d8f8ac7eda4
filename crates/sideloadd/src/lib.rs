//! sideloadd: provisions Nix-built Scrypted plugins into a running Scrypted server.
//!
//! The binary (`main.rs`) is a thin shell around [`provision::run`],
//! [`check_config`] and [`provision::status`].

pub mod client;
pub mod config;
pub mod notify;
pub mod provision;
pub mod state;
pub mod validate;

use std::path::Path;

pub use config::{Config, ConfigError, PluginDecl};
pub use provision::{Outcome, RunError};

/// Every declared plugin is in place.
pub const EXIT_OK: u8 = 0;
/// At least one plugin failed (each is named on stderr); the others were provisioned.
pub const EXIT_PLUGIN_FAILED: u8 = 1;
/// The config is invalid (or the command line is).
pub const EXIT_CONFIG: u8 = 2;
/// Nothing could be provisioned: server not ready in time, token rejected or
/// unreadable, state directory unusable.
pub const EXIT_FATAL: u8 = 3;
/// Stopped by SIGTERM/SIGINT before finishing.
pub const EXIT_INTERRUPTED: u8 = 4;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("config {path}: `{key}.path` ({name}): {source}")]
    Plugin {
        path: std::path::PathBuf,
        key: String,
        name: String,
        source: validate::PluginError,
    },
}

/// `sideloadd check-config`: the config's structure and values, plus every plugin
/// directory (which exists at build time). Runtime paths (tokenFile, stateDir,
/// volume) are deliberately not looked at: they do not exist inside the Nix sandbox.
/// Returns every plugin problem, not just the first.
pub fn check_config(path: &Path) -> Result<Config, Vec<CheckError>> {
    let config = Config::load(path).map_err(|e| vec![CheckError::Config(e)])?;
    let errors: Vec<CheckError> = config
        .plugins
        .iter()
        .filter_map(|d| {
            validate::validate(d)
                .err()
                .map(|source| CheckError::Plugin {
                    path: path.to_path_buf(),
                    key: d.key.clone(),
                    name: d.name.clone(),
                    source,
                })
        })
        .collect();
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}
