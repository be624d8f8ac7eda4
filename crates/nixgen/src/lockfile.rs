//! Pins a plugin's native npm dependencies (`optionalDependencies`, which
//! Scrypted npm-installs at every load; README, "What each plugin still
//! fetches") as an npm lockfile v3, resolved by npm itself.
//!
//! The lock is registry text: Nix only ever reads it as JSON
//! (`lib.importJSON`), and package.nix names it by a fixed relative path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::registry::Token;

/// The file written beside package.nix.
pub const LOCK_FILE: &str = "package-lock.json";

/// How nixgen runs npm.
#[derive(Debug, Clone)]
pub struct Npm {
    /// The program (`npm`, found on PATH).
    pub program: std::ffi::OsString,
    /// Registry base URL npm resolves against.
    pub registry: String,
    /// Sent to that registry only, through npm's per-registry setting.
    pub token: Option<Token>,
    /// The longest one resolution may take.
    pub deadline: Duration,
    /// Node's heap limit for npm, in MiB: npm reads whole package documents
    /// into memory, and a hostile or huge one must not take the machine.
    pub memory_mib: u32,
    /// Resolve only versions published before this time (npm's `--before`):
    /// the release cooldown, for the native dependency tree.
    pub before: Option<jiff::Timestamp>,
}

/// The default of [`Npm::memory_mib`]: resolving a plugin's few native
/// dependencies needs a fraction of it.
pub const DEFAULT_NPM_MEMORY_MIB: u32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("needs npm on PATH to pin the native dependencies of {name}")]
    NoNpm { name: String },
    #[error("cannot run npm for {name}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("npm could not resolve the native dependencies of {name} from {registry}: {detail}")]
    Npm {
        name: String,
        registry: String,
        detail: String,
    },
    #[error("the lock npm resolved for {name} from {registry} is unusable: {reason}")]
    Invalid {
        name: String,
        registry: String,
        reason: String,
    },
}

impl LockError {
    /// Whether the registry could not resolve the tree (rather than nixgen's
    /// environment failing, or the registry answering something unusable).
    pub fn is_unresolvable(&self) -> bool {
        matches!(self, Self::Npm { .. })
    }
}

/// One locked package: install path, version, integrity. Two locks with the
/// same set install the same bytes.
pub type PackageSet = BTreeSet<(String, String, String)>;

/// The package.json npm resolves: the plugin with its optionalDependencies
/// as dependencies, which is what Scrypted installs.
pub fn package_json(npm_name: &str, version: &str, deps: &[(String, String)]) -> String {
    let deps: serde_json::Map<String, Value> = deps
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let doc = serde_json::json!({ "name": npm_name, "version": version, "dependencies": deps });
    format!("{doc:#}\n")
}

impl Npm {
    /// Resolves the lock in a temporary directory; returns its text after
    /// [`validate`] accepted it.
    pub async fn resolve(
        &self,
        npm_name: &str,
        version: &str,
        deps: &[(String, String)],
    ) -> Result<String, LockError> {
        let io = |source| LockError::Io {
            name: npm_name.to_owned(),
            source,
        };
        let dir = tempfile::tempdir().map_err(io)?;
        std::fs::write(
            dir.path().join("package.json"),
            package_json(npm_name, version, deps),
        )
        .map_err(io)?;
        self.run(npm_name, dir.path()).await?;
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).map_err(io)?;
        validate(&text, deps).map_err(|reason| LockError::Invalid {
            name: npm_name.to_owned(),
            registry: self.registry.clone(),
            reason,
        })?;
        Ok(text)
    }

    /// The npm command: lock only, no scripts, bounded by Node's heap
    /// limit and (under the release cooldown) by `--before`.
    fn command(&self, dir: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        if let Some(before) = self.before {
            // Whole seconds: npm parses it with JavaScript's Date.
            let before = jiff::Timestamp::from_second(before.as_second()).unwrap_or(before);
            cmd.arg(format!("--before={before}"));
        }
        let mut node_options = std::env::var("NODE_OPTIONS").unwrap_or_default();
        node_options.push_str(&format!(" --max-old-space-size={}", self.memory_mib));
        cmd.env("NODE_OPTIONS", node_options.trim_start());
        cmd.current_dir(dir)
            .args([
                "install",
                "--package-lock-only",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--prefer-online",
                "--package-lock=true",
                "--lockfile-version=3",
                // A user's npmrc may say otherwise; a lock without resolved
                // URLs cannot be fetched by Nix.
                "--omit-lockfile-registry-resolved=false",
                "--registry",
                &self.registry,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = &self.token {
            cmd.env(
                format!("npm_config_{}:_authToken", nerf_dart(&self.registry)),
                token.expose(),
            );
        }
        cmd
    }

    async fn run(&self, npm_name: &str, dir: &Path) -> Result<(), LockError> {
        let mut cmd = self.command(dir);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LockError::NoNpm {
                    name: npm_name.to_owned(),
                });
            }
            Err(source) => {
                return Err(LockError::Io {
                    name: npm_name.to_owned(),
                    source,
                });
            }
        };
        let failed = |detail: String| LockError::Npm {
            name: npm_name.to_owned(),
            registry: self.registry.clone(),
            detail,
        };
        let out = tokio::time::timeout(self.deadline, child.wait_with_output())
            .await
            .map_err(|_| failed(format!("not done after {} s", self.deadline.as_secs())))?
            .map_err(|source| LockError::Io {
                name: npm_name.to_owned(),
                source,
            })?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            if text.contains("heap out of memory") || text.contains("Reached heap limit") {
                let bound = self.memory_mib;
                return Err(failed(format!(
                    "npm went over its memory bound ({bound} MiB)"
                )));
            }
            return Err(failed(npm_error(&out.stderr)));
        }
        Ok(())
    }
}

/// npm's per-registry key prefix: `//host[:port]/path/`.
fn nerf_dart(registry: &str) -> String {
    let rest = registry.split_once("://").map_or(registry, |(_, r)| r);
    format!("//{}/", rest.trim_end_matches('/'))
}

/// The lines of npm's stderr that say what went wrong, on one line.
fn npm_error(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("npm error") && !l.contains("A complete log"))
        .map(|l| l.trim_start_matches("npm error").trim())
        .filter(|l| !l.is_empty())
        .take(4)
        .collect();
    let joined = if lines.is_empty() {
        text.lines().last().unwrap_or("no output").to_owned()
    } else {
        lines.join("; ")
    };
    crate::escape::nix_comment(&joined)
}

/// Checks a lock is one Nix can fetch: v3, every installed package with an
/// http(s) `resolved` and a sha512 `integrity`, and its root depending on
/// exactly `deps`. Returns its package set.
pub fn validate(text: &str, deps: &[(String, String)]) -> Result<PackageSet, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if doc.get("lockfileVersion").and_then(Value::as_u64) != Some(3) {
        return Err("lockfileVersion is not 3".into());
    }
    let packages = doc
        .get("packages")
        .and_then(Value::as_object)
        .ok_or("no packages")?;
    let root: BTreeMap<&str, &str> = packages
        .get("")
        .and_then(|r| r.get("dependencies"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let wanted: BTreeMap<&str, &str> = deps.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if root != wanted {
        return Err("its root dependencies differ from the plugin's optionalDependencies".into());
    }
    let mut set = PackageSet::new();
    for (path, entry) in packages.iter().filter(|(p, _)| !p.is_empty()) {
        if entry.get("link").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        set.insert(locked_package(path, entry)?);
    }
    Ok(set)
}

fn locked_package(path: &str, entry: &Value) -> Result<(String, String, String), String> {
    let shown = || crate::escape::nix_comment(path);
    let field = |k: &str| entry.get(k).and_then(Value::as_str);
    let resolved = field("resolved").ok_or_else(|| format!("{} has no resolved URL", shown()))?;
    if !(resolved.starts_with("https://") || resolved.starts_with("http://")) {
        return Err(format!("{} is resolved to a non-HTTP source", shown()));
    }
    let integrity = field("integrity").unwrap_or("");
    if !integrity.starts_with("sha512-") {
        return Err(format!("{} has no sha512 integrity", shown()));
    }
    let version = field("version").ok_or_else(|| format!("{} has no version", shown()))?;
    Ok((path.to_owned(), version.to_owned(), integrity.to_owned()))
}

/// Optional dependencies that a lock's packages declare but the lock does
/// not hold: npm leaves out an optional dependency it cannot fetch (the
/// registry lacks it) without failing, so a lock can look complete and not
/// be. Each as `<name> (of <package path>)`.
pub fn missing_optional(text: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let Some(packages) = doc.get("packages").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut missing = Vec::new();
    for (path, entry) in packages {
        let optional = entry.get("optionalDependencies").and_then(Value::as_object);
        for dep in optional.into_iter().flat_map(|m| m.keys()) {
            if !resolves(packages, path, dep) {
                let of = if path.is_empty() { "the plugin" } else { path };
                missing.push(crate::escape::nix_comment(&format!("{dep} (of {of})")));
            }
        }
    }
    missing.sort();
    missing.dedup();
    missing
}

/// Whether `dep`, required from the package at `path`, is found the way
/// Node looks: in `path/node_modules`, then each enclosing `node_modules`.
fn resolves(packages: &serde_json::Map<String, Value>, path: &str, dep: &str) -> bool {
    let mut base = path.to_owned();
    loop {
        let candidate = if base.is_empty() {
            format!("node_modules/{dep}")
        } else {
            format!("{base}/node_modules/{dep}")
        };
        if packages.contains_key(&candidate) {
            return true;
        }
        match base.rfind("/node_modules/") {
            Some(i) => base.truncate(i),
            None if !base.is_empty() => base.clear(),
            None => return false,
        }
    }
}

/// The package set of a committed lock, if it is a valid lock for `deps`.
pub fn committed_set(text: &str, deps: &[(String, String)]) -> Option<PackageSet> {
    validate(text, deps).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps() -> Vec<(String, String)> {
        vec![("a".into(), "^1.0.0".into())]
    }

    fn lock(integrity: &str) -> String {
        serde_json::json!({
            "name": "@scrypted/x", "lockfileVersion": 3,
            "packages": {
                "": {"name": "@scrypted/x", "dependencies": {"a": "^1.0.0"}},
                "node_modules/a": {"version": "1.0.1", "resolved": "https://r.example/a/-/a-1.0.1.tgz", "integrity": integrity},
                "node_modules/l": {"link": true, "resolved": "x"}
            }
        })
        .to_string()
    }

    #[test]
    fn validates_locks() {
        let set = validate(&lock("sha512-abc"), &deps()).expect("valid");
        assert_eq!(set.len(), 1);
        assert!(validate(&lock("sha1-abc"), &deps()).is_err());
        assert!(validate(&lock("sha512-abc"), &[]).is_err());
        let no_resolved =
            lock("sha512-abc").replace("\"resolved\":\"https://r.example/a/-/a-1.0.1.tgz\",", "");
        assert!(
            validate(&no_resolved, &deps())
                .expect_err("invalid")
                .contains("no resolved")
        );
        assert!(validate(&lock("sha512-abc").replace("https://", "file:"), &deps()).is_err());
    }

    #[test]
    fn optional_dependencies_left_out_are_found() {
        let lock = serde_json::json!({"lockfileVersion": 3, "packages": {
            "": {"dependencies": {"a": "^1"}},
            "node_modules/a": {"version": "1.0.0", "optionalDependencies": {"b": "^1", "c": "^1", "d": "^1"}},
            "node_modules/a/node_modules/b": {"version": "1.0.0", "optionalDependencies": {"c": "^1", "e": "^1"}},
            "node_modules/c": {"version": "1.0.0"}
        }})
        .to_string();
        assert_eq!(
            missing_optional(&lock),
            [
                "d (of node_modules/a)",
                "e (of node_modules/a/node_modules/b)"
            ]
        );
    }

    #[test]
    fn package_json_and_token_key() {
        let p = package_json("@scrypted/x", "1.0.0", &deps());
        let v: Value = serde_json::from_str(&p).expect("json");
        assert_eq!(v["dependencies"]["a"], "^1.0.0");
        assert_eq!(
            nerf_dart("https://r.example:8443/npm/"),
            "//r.example:8443/npm/"
        );
    }
}
