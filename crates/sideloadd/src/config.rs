//! The JSON config written by the NixOS module.
//!
//! serde does the walking (`deny_unknown_fields`, small validating newtypes) and
//! `serde_path_to_error` tells which key an error is about (`plugins[3].path`): the
//! person reading the message is looking at a Nix expression, not at this code.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

/// Longest readiness wait accepted; past a day a typo is more likely than intent.
pub const MAX_READY_TIMEOUT_SECS: u64 = 86_400;
/// Default budget for the plugins deployed in one run to load: most load in under a
/// second, a plugin with native modules in a few.
pub const DEFAULT_LOAD_TIMEOUT_SECS: u64 = 60;
/// Longest load budget accepted: an hour.
pub const MAX_LOAD_TIMEOUT_SECS: u64 = 3_600;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: Url,
    pub token_file: PathBuf,
    pub state_dir: PathBuf,
    pub volume: Option<PathBuf>,
    pub ready_timeout: Duration,
    /// How long the plugins deployed in one run may take, together, to load.
    pub load_timeout: Duration,
    pub plugins: Vec<PluginDecl>,
    pub allow_remote: bool,
    /// Leave Scrypted's own plugin auto-update alone (default: turn it off).
    pub auto_update: bool,
    /// Uninstall plugins sideloadd installed earlier and no longer declared.
    pub prune: bool,
    /// File holding the password the admin user must have (read by `run` only).
    pub admin_password_file: Option<PathBuf>,
    /// Scrypted's admin user (`SCRYPTED_ADMIN_USERNAME`).
    pub admin_username: String,
}

/// Scrypted's own default admin user name, the module's too.
pub const DEFAULT_ADMIN_USERNAME: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDecl {
    pub name: String,
    pub path: PathBuf,
    /// Where it sits in the config, for messages: `plugins[3]`.
    pub key: String,
}

/// The accepted shape. Each value type checks itself, so an error carries the key
/// of the value it is about.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    server: String,
    token_file: AbsPath,
    state_dir: AbsPath,
    #[serde(default)]
    volume: Option<AbsPath>,
    ready_timeout_secs: ReadyTimeout,
    #[serde(default)]
    load_timeout_secs: Option<LoadTimeout>,
    plugins: Vec<RawPlugin>,
    #[serde(default)]
    allow_remote: bool,
    #[serde(default)]
    auto_update: bool,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    admin_password_file: Option<AbsPath>,
    #[serde(default)]
    admin_username: Option<UserName>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: NpmName,
    path: AbsPath,
}

/// A non-empty absolute path.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
struct AbsPath(PathBuf);

impl TryFrom<String> for AbsPath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        let p = PathBuf::from(&s);
        if !p.is_absolute() {
            return Err(format!("{s:?} is relative; an absolute path is required"));
        }
        Ok(Self(p))
    }
}

/// A valid npm package name (see [`check_npm_name`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
struct NpmName(String);

impl TryFrom<String> for NpmName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        check_npm_name(&s).map(|()| Self(s))
    }
}

/// A user name as the NixOS module accepts it: `[A-Za-z0-9._-]+`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
struct UserName(String);

impl TryFrom<String> for UserName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if s.is_empty() || !s.chars().all(ok) {
            return Err(format!(
                "{s:?} is not a user name (letters, digits, '.', '_' and '-' only)"
            ));
        }
        Ok(Self(s))
    }
}

/// 1 to [`MAX_READY_TIMEOUT_SECS`] seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "u64")]
struct ReadyTimeout(Duration);

impl TryFrom<u64> for ReadyTimeout {
    type Error = String;
    fn try_from(secs: u64) -> Result<Self, String> {
        if secs == 0 || secs > MAX_READY_TIMEOUT_SECS {
            return Err(format!(
                "must be between 1 and {MAX_READY_TIMEOUT_SECS}, got {secs}"
            ));
        }
        Ok(Self(Duration::from_secs(secs)))
    }
}

/// 1 to [`MAX_LOAD_TIMEOUT_SECS`] seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "u64")]
struct LoadTimeout(Duration);

impl TryFrom<u64> for LoadTimeout {
    type Error = String;
    fn try_from(secs: u64) -> Result<Self, String> {
        if secs == 0 || secs > MAX_LOAD_TIMEOUT_SECS {
            return Err(format!(
                "must be between 1 and {MAX_LOAD_TIMEOUT_SECS}, got {secs}"
            ));
        }
        Ok(Self(Duration::from_secs(secs)))
    }
}

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
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key,
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|source| ConfigError::Syntax {
                path: origin.to_path_buf(),
                source,
            })?;
        // serde would also read a struct from a JSON list, by position.
        if !value.is_object() {
            return Err(invalid("(root)".into(), "must be a JSON object".into()));
        }
        let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let (key, message) = key_and_message(&e.path().to_string(), e.inner());
            invalid(key, message)
        })?;
        let server =
            parse_server(&raw.server, raw.allow_remote).map_err(|m| invalid("server".into(), m))?;
        let plugins = plugin_decls(raw.plugins).map_err(|(k, m)| invalid(k, m))?;
        Ok(Config {
            server,
            token_file: raw.token_file.0,
            state_dir: raw.state_dir.0,
            volume: raw.volume.map(|v| v.0),
            ready_timeout: raw.ready_timeout_secs.0,
            load_timeout: raw
                .load_timeout_secs
                .map_or(Duration::from_secs(DEFAULT_LOAD_TIMEOUT_SECS), |t| t.0),
            plugins,
            allow_remote: raw.allow_remote,
            auto_update: raw.auto_update,
            prune: raw.prune,
            admin_password_file: raw.admin_password_file.map(|p| p.0),
            admin_username: raw
                .admin_username
                .map_or_else(|| DEFAULT_ADMIN_USERNAME.to_string(), |u| u.0),
        })
    }
}

/// serde reports a missing key at the object that lacks it; the person fixing the
/// config wants the key itself (`tokenFile`, `plugins[0].path`).
fn key_and_message(path: &str, err: &serde_json::Error) -> (String, String) {
    let message = err.to_string();
    let parent = if path == "." { "" } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    match missing {
        Some(field) if parent.is_empty() => (field.into(), "is required".into()),
        Some(field) => (format!("{parent}.{field}"), "is required".into()),
        None if parent.is_empty() => ("(root)".into(), message),
        None => (parent.into(), message),
    }
}

/// Names must be unique: two paths for one plugin cannot both be deployed.
fn plugin_decls(raw: Vec<RawPlugin>) -> Result<Vec<PluginDecl>, (String, String)> {
    let mut seen = BTreeSet::new();
    let mut decls = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let key = format!("plugins[{i}]");
        if !seen.insert(p.name.0.clone()) {
            return Err((
                format!("{key}.name"),
                format!("{:?} is declared more than once", p.name.0),
            ));
        }
        decls.push(PluginDecl {
            name: p.name.0,
            path: p.path.0,
            key,
        });
    }
    Ok(decls)
}

fn parse_server(s: &str, allow_remote: bool) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" => {}
        // Scrypted's HTTPS port has a self-signed certificate, which no client here
        // trusts, and the RPC connection is a plain WebSocket; its plain-HTTP port
        // serves everything sideloadd needs (`docs/scrypted-api.md` §1).
        "https" => {
            let host = url.host_str().unwrap_or("127.0.0.1");
            return Err(format!(
                "{s:?} is https, which cannot work: Scrypted's HTTPS port \
                 (SCRYPTED_SECURE_PORT, default 10443) has a self-signed certificate. Use its \
                 plain-HTTP port (SCRYPTED_INSECURE_PORT, default 11080), e.g. \
                 \"http://{host}:11080\", on loopback"
            ));
        }
        other => return Err(format!("scheme {other:?} is not http")),
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
             network in clear; use a loopback address, or set \"allowRemote\": true"
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
    use serde_json::Value;

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
    fn messages_say_what_is_wrong() {
        let message = |v: Value| match parse(v) {
            Err(ConfigError::Invalid { message, .. }) => message,
            other => panic!("expected Invalid, got {other:?}"),
        };
        let mut v = base();
        v["plugins"][0]["nmae"] = "x".into();
        let m = message(v);
        assert!(m.contains("expected `name` or `path`"), "{m}");
        let mut v = base();
        v.as_object_mut().expect("object").remove("server");
        assert_eq!(message(v), "is required");
        let mut v = base();
        v["readyTimeoutSecs"] = 90_000.into();
        assert!(message(v).contains("between 1 and 86400"));
        assert_eq!(
            key_of(Config::parse("[1]", Path::new("x"))),
            "(root)",
            "a config that is not an object"
        );
    }

    #[test]
    fn admin_password_keys() {
        let c = parse(base()).expect("valid");
        assert_eq!(
            (c.admin_password_file, c.admin_username.as_str()),
            (None, "admin")
        );
        let mut v = base();
        v["adminPasswordFile"] = "/run/credentials/x/admin-password".into();
        v["adminUsername"] = "ops.team_1-a".into();
        let c = parse(v).expect("valid");
        assert_eq!(
            c.admin_password_file.as_deref(),
            Some(Path::new("/run/credentials/x/admin-password"))
        );
        assert_eq!(c.admin_username, "ops.team_1-a");
        for (key, bad) in [
            ("adminPasswordFile", Value::from("relative/pw")),
            ("adminPasswordFile", Value::from("")),
            ("adminUsername", Value::from("")),
            ("adminUsername", Value::from("ad min")),
            ("adminUsername", Value::from("root;")),
            ("adminUsername", Value::from(3)),
        ] {
            let mut v = base();
            v[key] = bad.clone();
            assert_eq!(key_of(parse(v)), key, "{bad}");
        }
    }

    #[test]
    fn a_null_volume_is_no_volume() {
        let mut v = base();
        v["volume"] = Value::Null;
        assert!(parse(v).expect("valid").volume.is_none());
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
    fn https_is_refused_naming_the_plain_http_port() {
        let mut v = base();
        v["server"] = "https://127.0.0.1:10443".into();
        match parse(v) {
            Err(ConfigError::Invalid { key, message, .. }) => {
                assert_eq!(key, "server");
                assert!(message.contains("self-signed"), "{message}");
                assert!(message.contains("SCRYPTED_INSECURE_PORT"), "{message}");
                assert!(message.contains("http://127.0.0.1:11080"), "{message}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn the_load_budget_defaults_to_60_s_and_is_bounded() {
        assert_eq!(
            parse(base()).expect("valid").load_timeout,
            Duration::from_secs(60)
        );
        let mut v = base();
        v["loadTimeoutSecs"] = 120.into();
        assert_eq!(
            parse(v).expect("valid").load_timeout,
            Duration::from_secs(120)
        );
        for bad in [0, 3_601] {
            let mut v = base();
            v["loadTimeoutSecs"] = bad.into();
            assert_eq!(key_of(parse(v)), "loadTimeoutSecs", "{bad}");
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
