//! `nix/plugins/nixgen.toml`: the repository's generator settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::name::PluginName;
use crate::trust::cooldown;

/// Where the config lives, relative to `--root`.
pub const CONFIG_PATH: &str = "nix/plugins/nixgen.toml";

#[derive(Debug, Clone)]
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
    /// How long a version must have been public before it is pinned.
    pub min_release_age: Duration,
    /// Refuse versions without a registry signature (from a registry whose
    /// keys are pinned).
    pub require_signatures: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            registry: None,
            extra: Vec::new(),
            ignore: Vec::new(),
            hold: BTreeMap::new(),
            min_release_age: cooldown::DEFAULT_MIN_AGE,
            require_signatures: false,
        }
    }
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
    #[serde(rename = "minReleaseAge")]
    min_release_age: Option<String>,
    #[serde(rename = "requireSignatures", default)]
    require_signatures: bool,
}

impl Config {
    /// The registry a command talks to: `flag`, else the config's, else
    /// `env` (`NPM_CONFIG_REGISTRY`), else npm's public registry. The order
    /// `nixgen update` uses too.
    pub fn registry_base(&self, flag: Option<&str>, env: Option<&str>) -> String {
        flag.map(str::to_owned)
            .or_else(|| self.registry.clone())
            .or_else(|| env.filter(|s| !s.trim().is_empty()).map(str::to_owned))
            .unwrap_or_else(|| crate::update::DEFAULT_REGISTRY.to_owned())
    }

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
        let min_release_age = match &raw.min_release_age {
            Some(age) => {
                cooldown::parse_age(age).map_err(|e| invalid(format!("minReleaseAge: {e}")))?
            }
            None => cooldown::DEFAULT_MIN_AGE,
        };
        Ok(Self {
            registry: raw.registry,
            extra: names(raw.extra, "extra")?,
            ignore: names(raw.ignore, "ignore")?,
            hold,
            min_release_age,
            require_signatures: raw.require_signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_keys() {
        let c = Config::parse(
            "registry = \"https://npm.example\"\nextra = [\"@scrypted/x\", \"y\"]\nignore = [\"z\"]\nhold = { nvr = \"0.12.43\" }\nminReleaseAge = \"12h\"\nrequireSignatures = true\n",
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
        assert_eq!(c.min_release_age, Duration::from_secs(12 * 3600));
        assert!(c.require_signatures);
        let d = Config::parse("", Path::new("t.toml")).expect("empty");
        assert_eq!(d.min_release_age, Duration::from_secs(3 * 86_400));
        assert!(!d.require_signatures);
    }

    #[test]
    fn rejects_bad_names_versions_and_keys() {
        for bad in &[
            "extra = [\"../x\"]",
            "hold = { nvr = \"latest\" }",
            &format!("hold = {{ nvr = \"1.0.0-{}\" }}", "a".repeat(300)),
            "typo = 1",
            "hold = { \"A\" = \"1.0.0\" }",
            "minReleaseAge = \"3 days\"",
            "minReleaseAge = 3",
            "min_release_age = \"3d\"",
            "requireSignatures = \"yes\"",
        ] {
            let err = Config::parse(bad, Path::new("t.toml")).expect_err(bad);
            assert!(err.to_string().len() < 400, "{err}");
            assert!(err.to_string().contains("t.toml"), "{err}");
        }
    }
}
