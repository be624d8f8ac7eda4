//! `sideloadd check-config`: the config's structure and values, plus every plugin
//! directory (which exists at build time). Runtime paths (tokenFile, stateDir,
//! volume) are deliberately not looked at: they do not exist inside the Nix sandbox.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::validate;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("config {path}: `{key}.path` ({name}): {source}")]
    Plugin {
        path: PathBuf,
        key: String,
        name: String,
        source: validate::PluginError,
    },
}

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
