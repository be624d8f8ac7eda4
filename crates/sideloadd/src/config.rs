//! The JSON config written by the NixOS module.
//!
//! Parsing walks the JSON by hand before handing each value to serde, so every error
//! names the key it is about (`plugins[3].path`): serde's own messages for nested
//! values carry no path, and the person reading them is looking at a Nix expression.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Longest readiness wait accepted; past a day a typo is more likely than intent.
pub const MAX_READY_TIMEOUT_SECS: u64 = 86_400;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: Url,
    pub token_file: PathBuf,
    pub state_dir: PathBuf,
    pub volume: Option<PathBuf>,
    pub ready_timeout: Duration,
    pub plugins: Vec<PluginDecl>,
    pub allow_remote: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDecl {
    pub name: String,
    pub path: PathBuf,
    /// Where it sits in the config, for messages: `plugins[3]`.
    pub key: String,
}

/// The accepted shape, for serde. Unknown keys are rejected here too, so the two
/// cannot drift apart silently.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    server: String,
    token_file: String,
    state_dir: String,
    #[serde(default)]
    volume: Option<String>,
    ready_timeout_secs: u64,
    plugins: Vec<RawPlugin>,
    #[serde(default)]
    allow_remote: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: String,
    path: String,
}

const ROOT_KEYS: &[(&str, bool)] = &[
    ("server", true),
    ("tokenFile", true),
    ("stateDir", true),
    ("volume", false),
    ("readyTimeoutSecs", true),
    ("plugins", true),
    ("allowRemote", false),
];
const PLUGIN_KEYS: &[(&str, bool)] = &[("name", true), ("path", true)];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid JSON: {source}")]
    Syntax {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("config {path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// `origin` is only used in messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let value: Value = serde_json::from_str(text).map_err(|source| ConfigError::Syntax {
            path: origin.to_path_buf(),
            source,
        })?;
        let root = value
            .as_object()
            .ok_or_else(|| invalid("(root)", "must be a JSON object".into()))?;
        check_keys(root, ROOT_KEYS, "").map_err(|(k, m)| invalid(&k, m))?;
        let plugins = root
            .get("plugins")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("plugins", "must be a list of {name, path}".into()))?;
        for (i, p) in plugins.iter().enumerate() {
            let key = format!("plugins[{i}]");
            let obj = p
                .as_object()
                .ok_or_else(|| invalid(&key, "must be an object {name, path}".into()))?;
            check_keys(obj, PLUGIN_KEYS, &format!("{key}.")).map_err(|(k, m)| invalid(&k, m))?;
            field::<String>(obj, "name", &key).map_err(|(k, m)| invalid(&k, m))?;
            field::<String>(obj, "path", &key).map_err(|(k, m)| invalid(&k, m))?;
        }
        for (key, _) in ROOT_KEYS {
            if *key != "plugins" && root.get(*key).is_some_and(|v| !v.is_null()) {
                check_root_type(root, key).map_err(|(k, m)| invalid(&k, m))?;
            }
        }
        // Every key has been checked one by one; this cannot fail on shape any more,
        // but a failure is still reported rather than assumed away.
        let raw: RawConfig =
            serde_json::from_value(value.clone()).map_err(|e| invalid("(root)", e.to_string()))?;

        let server =
            parse_server(&raw.server, raw.allow_remote).map_err(|m| invalid("server", m))?;
        let token_file = absolute(&raw.token_file).map_err(|m| invalid("tokenFile", m))?;
        let state_dir = absolute(&raw.state_dir).map_err(|m| invalid("stateDir", m))?;
        let volume = raw
            .volume
            .as_deref()
            .map(absolute)
            .transpose()
            .map_err(|m| invalid("volume", m))?;
        if raw.ready_timeout_secs == 0 || raw.ready_timeout_secs > MAX_READY_TIMEOUT_SECS {
            return Err(invalid(
                "readyTimeoutSecs",
                format!(
                    "must be between 1 and {MAX_READY_TIMEOUT_SECS}, got {}",
                    raw.ready_timeout_secs
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut decls = Vec::with_capacity(raw.plugins.len());
        for (i, p) in raw.plugins.into_iter().enumerate() {
            let key = format!("plugins[{i}]");
            check_npm_name(&p.name).map_err(|m| invalid(&format!("{key}.name"), m))?;
            if !seen.insert(p.name.clone()) {
                return Err(invalid(
                    &format!("{key}.name"),
                    format!("{:?} is declared more than once", p.name),
                ));
            }
            let path = absolute(&p.path).map_err(|m| invalid(&format!("{key}.path"), m))?;
            decls.push(PluginDecl {
                name: p.name,
                path,
                key,
            });
        }
        Ok(Config {
            server,
            token_file,
            state_dir,
            volume,
            ready_timeout: Duration::from_secs(raw.ready_timeout_secs),
            plugins: decls,
            allow_remote: raw.allow_remote,
        })
    }
}

fn check_keys(
    obj: &Map<String, Value>,
    known: &[(&str, bool)],
    prefix: &str,
) -> Result<(), (String, String)> {
    for k in obj.keys() {
        if !known.iter().any(|(name, _)| name == k) {
            let expected: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
            return Err((
                format!("{prefix}{k}"),
                format!("unknown key (expected one of: {})", expected.join(", ")),
            ));
        }
    }
    for (name, required) in known {
        if *required && obj.get(*name).is_none_or(Value::is_null) {
            return Err((format!("{prefix}{name}"), "is required".into()));
        }
    }
    Ok(())
}

fn field<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    name: &str,
    parent: &str,
) -> Result<T, (String, String)> {
    let v = obj.get(name).cloned().unwrap_or(Value::Null);
    serde_json::from_value(v).map_err(|e| (format!("{parent}.{name}"), e.to_string()))
}

fn check_root_type(root: &Map<String, Value>, key: &str) -> Result<(), (String, String)> {
    let v = root.get(key).cloned().unwrap_or(Value::Null);
    let res = match key {
        "readyTimeoutSecs" => serde_json::from_value::<u64>(v).map(drop),
        "allowRemote" => serde_json::from_value::<bool>(v).map(drop),
        _ => serde_json::from_value::<String>(v).map(drop),
    };
    res.map_err(|e| (key.to_string(), e.to_string()))
}

fn absolute(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    let p = PathBuf::from(s);
    if !p.is_absolute() {
        return Err(format!("{s:?} is relative; an absolute path is required"));
    }
    Ok(p)
}

fn parse_server(s: &str, allow_remote: bool) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme {other:?} is not http or https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in the URL would end up in logs; the token file is the way in.
        return Err("must not contain credentials; use tokenFile".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if url.path() != "/" {
        return Err(format!(
            "must be the server root (like http://127.0.0.1:11080), not a path {:?}",
            url.path()
        ));
    }
    let host = url
        .host()
        .ok_or_else(|| "has no host".to_string())?
        .to_owned();
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(ip).is_loopback(),
    };
    if url.scheme() == "http" && !loopback && !allow_remote {
        return Err(format!(
            "{s:?} is plain http to a non-loopback host: the admin token would cross the \
             network in clear; use https, a loopback address, or set \"allowRemote\": true"
        ));
    }
    Ok(url)
}

/// npm's rules for new package names, which Scrypted uses as plugin ids and in paths
/// under its volume.
pub fn check_npm_name(name: &str) -> Result<(), String> {
    let ok_part = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && !s.starts_with('_')
            && s.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_' | '~')
            })
    };
    let valid = name.len() <= 214
        && match name.strip_prefix('@') {
            Some(scoped) => scoped
                .split_once('/')
                .is_some_and(|(scope, pkg)| ok_part(scope) && ok_part(pkg)),
            None => ok_part(name),
        };
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid npm package name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Config, ConfigError> {
        Config::parse(&v.to_string(), Path::new("test.json"))
    }

    fn base() -> Value {
        serde_json::json!({
            "server": "http://127.0.0.1:11080",
            "tokenFile": "/run/credentials/x/token",
            "stateDir": "/var/lib/scrypted-sideload",
            "volume": "/var/lib/scrypted/volume",
            "readyTimeoutSecs": 600,
            "plugins": [
                {"name": "@scrypted/core", "path": "/nix/store/a-core"},
                {"name": "@scrypted/nvr", "path": "/nix/store/b-nvr"}
            ]
        })
    }

    fn key_of(r: Result<Config, ConfigError>) -> String {
        match r {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_documented_example() {
        let c = parse(base()).expect("valid");
        assert_eq!(c.plugins.len(), 2);
        assert_eq!(c.plugins[1].key, "plugins[1]");
        assert_eq!(c.ready_timeout, Duration::from_secs(600));
        assert!(!c.allow_remote);
    }

    #[test]
    fn volume_and_allow_remote_are_optional() {
        let mut v = base();
        v.as_object_mut().expect("object").remove("volume");
        assert!(parse(v).expect("valid").volume.is_none());
    }

    #[test]
    fn errors_name_the_key() {
        let mut v = base();
        v["plugins"][1]["path"] = "relative/dir".into();
        assert_eq!(key_of(parse(v)), "plugins[1].path");

        let mut v = base();
        v["plugins"][0]["nmae"] = "x".into();
        assert_eq!(key_of(parse(v)), "plugins[0].nmae");

        let mut v = base();
        v["extra"] = true.into();
        assert_eq!(key_of(parse(v)), "extra");

        let mut v = base();
        v["readyTimeoutSecs"] = "600".into();
        assert_eq!(key_of(parse(v)), "readyTimeoutSecs");

        let mut v = base();
        v["readyTimeoutSecs"] = 0.into();
        assert_eq!(key_of(parse(v)), "readyTimeoutSecs");

        let mut v = base();
        v.as_object_mut().expect("object").remove("tokenFile");
        assert_eq!(key_of(parse(v)), "tokenFile");

        let mut v = base();
        v["plugins"][1]["name"] = "@scrypted/core".into();
        assert_eq!(key_of(parse(v)), "plugins[1].name");

        let mut v = base();
        v["plugins"][0]["name"] = "Bad Name".into();
        assert_eq!(key_of(parse(v)), "plugins[0].name");

        let mut v = base();
        v["plugins"][0]["path"] = 3.into();
        assert_eq!(key_of(parse(v)), "plugins[0].path");

        let mut v = base();
        v["stateDir"] = "".into();
        assert_eq!(key_of(parse(v)), "stateDir");
    }

    #[test]
    fn plain_http_to_a_remote_host_needs_allow_remote() {
        let mut v = base();
        v["server"] = "http://192.168.1.5:11080".into();
        assert_eq!(key_of(parse(v.clone())), "server");
        v["allowRemote"] = true.into();
        parse(v).expect("allowed");

        for ok in [
            "http://localhost:11080",
            "http://[::1]:11080",
            "http://127.0.0.2:1",
            "https://nvr.example:10443",
        ] {
            let mut v = base();
            v["server"] = ok.into();
            parse(v).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "ftp://127.0.0.1",
            "http://u:p@127.0.0.1:11080",
            "http://127.0.0.1:11080/sub",
            "not a url",
        ] {
            let mut v = base();
            v["server"] = bad.into();
            assert_eq!(key_of(parse(v)), "server", "{bad}");
        }
    }

    #[test]
    fn npm_names() {
        for ok in ["@scrypted/nvr", "scrypted-foo", "a.b~c", "@a-b/c_d"] {
            check_npm_name(ok).unwrap_or_else(|e| panic!("{e}"));
        }
        for bad in [
            "",
            "@scrypted",
            "@/x",
            "Upper",
            "../x",
            "@s/../x",
            ".x",
            "a b",
        ] {
            assert!(check_npm_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(matches!(
            Config::parse("{", Path::new("x")),
            Err(ConfigError::Syntax { .. })
        ));
    }
}
