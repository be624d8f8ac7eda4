//! `nix/plugins/nixgen.toml`: the repository's generator settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::name::PluginName;

/// Where the config lives, relative to `--root`.
pub const CONFIG_PATH: &str = "nix/plugins/nixgen.toml";

#[derive(Debug, Default, Clone)]
pub struct Config {
    /// Registry base URL; the command line and `NPM_CONFIG_REGISTRY` come
    /// after it only when it is absent.
    pub registry: Option<String>,
    /// Plugins to look up even when the search does not list them.
    pub extra: Vec<PluginName>,
    /// Plugins never fetched nor written; an existing directory stays as is.
    pub ignore: Vec<PluginName>,
    /// Plugins pinned to a given version instead of `latest`.
    pub hold: BTreeMap<PluginName, semver::Version>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("invalid config {path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    registry: Option<String>,
    #[serde(default)]
    extra: Vec<String>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    hold: BTreeMap<String, String>,
}

impl Config {
    /// Loads the config under `root`; a missing file is an empty config.
    pub fn load(root: &Path) -> Result<Self, ConfigError> {
        let path = root.join(CONFIG_PATH);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let invalid = |what: String| ConfigError::Invalid {
            path: path.to_owned(),
            what,
        };
        let names = |list: Vec<String>, key: &str| {
            list.iter()
                .map(|n| {
                    n.parse::<PluginName>()
                        .map_err(|e| invalid(format!("{key}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let mut hold = BTreeMap::new();
        for (name, version) in raw.hold {
            let name = name
                .parse::<PluginName>()
                .map_err(|e| invalid(format!("hold: {e}")))?;
            let version = crate::classify::parse_version(&version)
                .map_err(|e| invalid(format!("hold.{name}: {e}")))?;
            hold.insert(name, version);
        }
        Ok(Self {
            registry: raw.registry,
            extra: names(raw.extra, "extra")?,
            ignore: names(raw.ignore, "ignore")?,
            hold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_keys() {
        let c = Config::parse(
            "registry = \"https://npm.example\"\nextra = [\"@scrypted/x\", \"y\"]\nignore = [\"z\"]\nhold = { nvr = \"0.12.43\" }\n",
            Path::new("t.toml"),
        )
        .expect("valid");
        assert_eq!(c.registry.as_deref(), Some("https://npm.example"));
        assert_eq!(
            c.extra.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert_eq!(c.ignore.len(), 1);
        assert_eq!(
            c.hold.values().next().map(|v| v.to_string()),
            Some("0.12.43".into())
        );
    }

    #[test]
    fn rejects_bad_names_versions_and_keys() {
        for bad in &[
            "extra = [\"../x\"]",
            "hold = { nvr = \"latest\" }",
            &format!("hold = {{ nvr = \"1.0.0-{}\" }}", "a".repeat(300)),
            "typo = 1",
            "hold = { \"A\" = \"1.0.0\" }",
        ] {
            let err = Config::parse(bad, Path::new("t.toml")).expect_err(bad);
            assert!(err.to_string().len() < 400, "{err}");
            assert!(err.to_string().contains("t.toml"), "{err}");
        }
    }
}
