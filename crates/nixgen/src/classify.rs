//! Turns a registry version document (untrusted JSON) into a pin or a reason
//! to skip it.

use serde_json::Value;

use crate::escape::clean_text;
use crate::name::PluginName;
use crate::trust::signature::{RegistrySignature, Status};

/// What nixgen writes for one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub name: PluginName,
    pub version: semver::Version,
    /// The sha512 SRI hash, `sha512-<base64>`.
    pub hash: String,
    pub description: String,
    /// `name <email>` as the registry lists it, or `unknown`.
    pub maintainer: String,
    /// Who published this version ([`crate::trust::publisher`]).
    pub publisher: Option<String>,
    /// `dist.integrity` exactly as the registry spells it: what its
    /// signatures sign.
    pub integrity: String,
    /// `dist.signatures`.
    pub signatures: Vec<RegistrySignature>,
    /// What the signature check found; set before the pin is rendered.
    pub signature: Option<Status>,
    /// `scrypted.pluginDependencies`, sorted: Scrypted installs them only when
    /// it downloads a plugin from npm itself, never on a sideload, so the
    /// NixOS module has to bring them along.
    pub dependencies: Vec<PluginName>,
    /// `optionalDependencies` (npm name, version range), in the order of the
    /// JSON object as parsed (sorted by name): Scrypted npm-installs these at
    /// every load, so nixgen pins them in a lock.
    pub native_dependencies: Vec<(String, String)>,
    /// A Python plugin (`scrypted.runtime == "python"`): what it asks of the
    /// interpreter. `None` for Node plugins.
    pub python: Option<PythonRuntime>,
    /// What the plugin still fetches at runtime and whether its native
    /// dependencies are pinned: filled in after classification.
    pub offline: Offline,
}

/// What a plugin needs from the network at runtime, as far as nixgen can
/// tell (see [`crate::needs`] and [`crate::lockfile`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offline {
    /// Short sentences, sorted; empty means offline-ready.
    pub needs: Vec<String>,
    /// Whether `package-lock.json` pins the native dependencies.
    pub locked: bool,
    /// A lock to write beside package.nix (new, or its package set changed).
    pub write_lock: Option<String>,
    /// Optional dependencies npm left out of the lock because the registry
    /// lacks them: the lock is not the whole tree.
    pub missing_optional: Vec<String>,
    /// A Python plugin's requirements, when nixpkgs provides all of them
    /// (rendered as `python.requirements`).
    pub python: Option<Vec<crate::python::Recorded>>,
    /// The `python.requirements = [ ... ];` block of the tree's package.nix,
    /// kept as it is when the zip is not read again (`--metadata-only`).
    pub python_block: Option<String>,
    /// The model files pinned from the Hugging Face Hub (`python.models`).
    pub models: Option<Vec<crate::hf::ModelFile>>,
    /// The tree's `python.models = [ ... ];` block, kept as it is when the
    /// Hub cannot be asked (or under `--metadata-only`).
    pub models_block: Option<String>,
}

/// What a Python plugin's package.json asks of the interpreter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PythonRuntime {
    /// `scrypted.pythonVersion` as Scrypted resolves it on each Linux
    /// platform (`linux.<arch>`, else `default`); empty when it names none.
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    Plugin(Box<Pin>),
    Skip(SkipReason),
    /// A Node plugin whose version is deprecated: never pinned; a plugin
    /// that has a pin keeps it.
    Deprecated {
        version: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum SkipReason {
    /// No `scrypted` section: a library such as the SDK.
    NotAPlugin,
    UnsupportedRuntime(String),
    Deprecated(String),
    Ignored,
    HandMaintained,
    InvalidName(String),
    /// The registry answers 404 for a plugin the tree pins.
    Gone,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAPlugin => f.write_str("not a plugin (no scrypted section)"),
            Self::UnsupportedRuntime(r) => write!(f, "unsupported runtime {r:?}"),
            Self::Deprecated(why) => write!(f, "deprecated: {why}"),
            Self::Ignored => f.write_str("ignored by nixgen.toml"),
            Self::HandMaintained => f.write_str("hand-maintained (no @generated marker)"),
            Self::InvalidName(why) => f.write_str(why),
            Self::Gone => f.write_str("no longer on the registry"),
        }
    }
}

impl SkipReason {
    /// Reasons that mean a generated package should go away. Deprecation
    /// is not one: the pin stays (see [`crate::trust::deprecation`]).
    pub fn removes_package(&self) -> bool {
        matches!(self, Self::NotAPlugin | Self::UnsupportedRuntime(_))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClassifyError {
    #[error("the document is not a JSON object")]
    NotAnObject,
    #[error("the document is for {found}, not {expected}")]
    WrongName { expected: String, found: String },
    #[error("asked for version {expected}, got {found:?}")]
    WrongVersion { expected: String, found: String },
    #[error("missing version")]
    MissingVersion,
    #[error("version is {0} characters long; more than {MAX_VERSION_LEN} is refused")]
    VersionTooLong(usize),
    #[error("version {version:?} is not semver: {why}")]
    BadVersion { version: String, why: String },
    #[error("missing dist.integrity")]
    MissingIntegrity,
    #[error("dist.integrity {0:?} has no sha512 hash (sha1 alone is too weak to pin)")]
    NoSha512(String),
    #[error("dist.integrity {0:?} is malformed")]
    BadIntegrity(String),
    #[error("scrypted.pluginDependencies must be a list of npm package names, found {0}")]
    BadDependency(String),
    #[error("optionalDependencies must map package names to version strings, found {0}")]
    BadNativeDependency(String),
}

/// Longest version accepted: real ones are a few dozen characters; a huge
/// one would end up in file names, store paths and every message.
pub const MAX_VERSION_LEN: usize = 256;

/// Parses a registry or config version, refusing absurd lengths first.
pub fn parse_version(raw: &str) -> Result<semver::Version, ClassifyError> {
    if raw.len() > MAX_VERSION_LEN {
        return Err(ClassifyError::VersionTooLong(raw.len()));
    }
    semver::Version::parse(raw).map_err(|e| ClassifyError::BadVersion {
        version: clean_line(raw, 80),
        why: e.to_string(),
    })
}

/// Classifies the document fetched for `name` (and `held` version, if any).
pub fn classify(
    name: &PluginName,
    held: Option<&semver::Version>,
    doc: &Value,
) -> Result<Classified, ClassifyError> {
    let obj = doc.as_object().ok_or(ClassifyError::NotAnObject)?;
    let expected = name.npm();
    let found = obj.get("name").and_then(Value::as_str);
    if found != Some(expected.as_str()) {
        let found = found.map_or_else(
            || "no name".to_owned(),
            |f| format!("{:?}", clean_line(f, 100)),
        );
        return Err(ClassifyError::WrongName { expected, found });
    }
    let Some(scrypted) = obj.get("scrypted").filter(|s| s.is_object()) else {
        return Ok(Classified::Skip(SkipReason::NotAPlugin));
    };
    if let Some(reason) = runtime_skip(scrypted) {
        return Ok(Classified::Skip(reason));
    }
    let raw_version = obj
        .get("version")
        .and_then(Value::as_str)
        .ok_or(ClassifyError::MissingVersion)?;
    if let Some(message) = crate::trust::deprecation::message(doc) {
        let version = clean_line(raw_version, 80);
        return Ok(Classified::Deprecated { version, message });
    }
    let version = parse_version(raw_version)?;
    if let Some(held) = held
        && *held != version
    {
        return Err(ClassifyError::WrongVersion {
            expected: held.to_string(),
            found: version.to_string(),
        });
    }
    let integrity = obj
        .get("dist")
        .and_then(|d| d.get("integrity"))
        .and_then(Value::as_str)
        .ok_or(ClassifyError::MissingIntegrity)?;
    let hash = sha512_of(integrity)?;
    let dependencies = dependencies(scrypted)?;
    let native_dependencies = native_dependencies(obj)?;
    Ok(Classified::Plugin(Box::new(Pin {
        name: name.clone(),
        version,
        hash,
        description: description(obj, scrypted, name),
        maintainer: maintainer(obj),
        publisher: crate::trust::publisher::of(doc),
        integrity: integrity.to_owned(),
        signatures: crate::trust::signature::signatures_of(doc),
        signature: None,
        dependencies,
        native_dependencies,
        python: python_runtime(scrypted),
        offline: Offline::default(),
    })))
}

/// `optionalDependencies`, which Scrypted installs with npm at every load.
/// Anything but a map of strings fails the plugin: dropping an entry would
/// claim the plugin offline-ready when it is not.
fn native_dependencies(
    obj: &serde_json::Map<String, Value>,
) -> Result<Vec<(String, String)>, ClassifyError> {
    let bad = |v: &Value| ClassifyError::BadNativeDependency(clean_line(&v.to_string(), 100));
    let map = match obj.get("optionalDependencies") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(bad(other)),
    };
    map.iter()
        .map(|(k, v)| match v.as_str() {
            Some(range) if !k.is_empty() => Ok((k.clone(), range.to_owned())),
            _ => Err(bad(&serde_json::json!({ k: v }))),
        })
        .collect()
}

/// `scrypted.pythonVersion` of a Python plugin, as Scrypted's python-worker
/// picks it: `pythonVersion[platform][arch]`, else `pythonVersion.default`.
/// Anything but strings there is left out (Scrypted would ignore it too).
fn python_runtime(scrypted: &Value) -> Option<PythonRuntime> {
    if scrypted.get("runtime").and_then(Value::as_str) != Some("python") {
        return None;
    }
    let asked = scrypted.get("pythonVersion");
    let mut versions: Vec<String> = ["x64", "arm64"]
        .iter()
        .filter_map(|arch| {
            let specific = asked.and_then(|v| v.get("linux")).and_then(|v| v.get(arch));
            specific
                .or_else(|| asked.and_then(|v| v.get("default")))
                .and_then(Value::as_str)
                .map(|v| clean_line(v, 40))
        })
        .collect();
    versions.sort();
    versions.dedup();
    Some(PythonRuntime { versions })
}

/// Why a plugin with this `scrypted` section is neither a Node nor a Python
/// plugin, if not.
fn runtime_skip(scrypted: &Value) -> Option<SkipReason> {
    match scrypted.get("runtime") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if r == "node" => None,
        Some(Value::String(r)) if r == "python" => None,
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            Some(SkipReason::UnsupportedRuntime(clean_line(&shown, 80)))
        }
    }
}

/// A malformed dependency must not be dropped silently (the plugin would then
/// be deployed without it): it fails the plugin, which keeps its old pin. A
/// dependency the plugin set lacks is the NixOS module's to report.
fn dependencies(scrypted: &Value) -> Result<Vec<PluginName>, ClassifyError> {
    let bad = |v: &Value| ClassifyError::BadDependency(clean_line(&v.to_string(), 100));
    let list = match scrypted.get("pluginDependencies") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(bad(other)),
    };
    let mut names = list
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(|s| PluginName::from_npm(s).ok())
                .ok_or_else(|| bad(v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    names.dedup();
    Ok(names)
}

/// Picks the sha512 entry of an SRI string and checks it is a well-formed
/// 64-byte digest, so what we pin is what Nix will accept.
pub fn sha512_of(integrity: &str) -> Result<String, ClassifyError> {
    let shown = || clean_line(integrity, 200);
    let parsed: ssri::Integrity = integrity
        .parse()
        .map_err(|_| ClassifyError::BadIntegrity(shown()))?;
    let Some(h) = parsed
        .hashes
        .iter()
        .find(|h| h.algorithm == ssri::Algorithm::Sha512)
    else {
        return Err(if parsed.hashes.is_empty() {
            ClassifyError::MissingIntegrity
        } else {
            ClassifyError::NoSha512(shown())
        });
    };
    // SRI allows `?options` after the digest; npm never sends them and Nix
    // would reject them, so they count as malformed.
    let d = h.digest.as_str();
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    let ok = d.len() == 88 && d.ends_with("==") && d[..86].chars().all(b64);
    if !ok {
        return Err(ClassifyError::BadIntegrity(shown()));
    }
    Ok(format!("sha512-{d}"))
}

fn description(
    obj: &serde_json::Map<String, Value>,
    scrypted: &Value,
    name: &PluginName,
) -> String {
    let pick = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(clean_text)
            .filter(|s| !s.trim().is_empty())
    };
    pick(obj.get("description"))
        .or_else(|| pick(scrypted.get("name")))
        .unwrap_or_else(|| format!("Scrypted plugin {}", name.npm()))
}

/// The first maintainer, else the publisher, else the author.
fn maintainer(obj: &serde_json::Map<String, Value>) -> String {
    let person = |v: &Value| -> Option<String> {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Object(o) => {
                let name = o.get("name").and_then(Value::as_str).unwrap_or("").trim();
                let email = o.get("email").and_then(Value::as_str).unwrap_or("").trim();
                match (name.is_empty(), email.is_empty()) {
                    (false, false) => format!("{name} <{email}>"),
                    (false, true) => name.to_owned(),
                    (true, false) => format!("<{email}>"),
                    (true, true) => return None,
                }
            }
            _ => return None,
        };
        let s = clean_line(&s, 200);
        (!s.is_empty()).then_some(s)
    };
    obj.get("maintainers")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(person)
        .or_else(|| obj.get("_npmUser").and_then(person))
        .or_else(|| obj.get("author").and_then(person))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// One printable line, for text that ends up in comments or messages.
fn clean_line(s: &str, max: usize) -> String {
    let line = crate::escape::nix_comment(s);
    if line.chars().count() > max {
        line.chars().take(max).collect()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const H: &str = "sha512-TvD6tNXkUQHJgdFR9sA6sPqhRtFHPP4Sjvfp0bDYMyhwWlTkhwGxq057xZfcyGMnBlz36Ui0/NovU8S+uxFaQA==";

    fn nvr() -> PluginName {
        PluginName::new("nvr").expect("name")
    }

    fn doc() -> Value {
        json!({"name": "@scrypted/nvr", "version": "0.12.43", "description": "NVR",
               "scrypted": {"name": "Scrypted NVR"},
               "maintainers": [{"name": "koush", "email": "k@example.com"}],
               "dist": {"integrity": H}})
    }

    #[test]
    fn plugin_dependencies_are_validated_and_sorted() {
        let mut d = doc();
        d["scrypted"]["pluginDependencies"] = json!([
            "@scrypted/snapshot",
            "@scrypted/prebuffer-mixin",
            "@scrypted/snapshot"
        ]);
        let Ok(Classified::Plugin(p)) = classify(&nvr(), None, &d) else {
            panic!("not a plugin")
        };
        let names: Vec<&str> = p.dependencies.iter().map(PluginName::as_str).collect();
        assert_eq!(names, ["prebuffer-mixin", "snapshot"]);

        for bad in [
            json!(["@Other/plugin"]),
            json!(["@scrypted/../../etc"]),
            json!(["../snapshot"]),
            json!([1]),
            json!("@scrypted/snapshot"),
        ] {
            d["scrypted"]["pluginDependencies"] = bad.clone();
            assert!(
                matches!(
                    classify(&nvr(), None, &d),
                    Err(ClassifyError::BadDependency(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn node_plugin() {
        let Ok(Classified::Plugin(p)) = classify(&nvr(), None, &doc()) else {
            panic!("not a plugin")
        };
        assert_eq!(
            (p.version.to_string(), p.hash.as_str()),
            ("0.12.43".into(), H)
        );
        assert_eq!(
            (p.description.as_str(), p.maintainer.as_str()),
            ("NVR", "koush <k@example.com>")
        );
    }

    #[test]
    fn python_plugins_are_plugins_with_their_python_version() {
        let mut d = doc();
        d["scrypted"]["runtime"] = json!("python");
        d["scrypted"]["pythonVersion"] =
            json!({"default": "3.9", "darwin": {"arm64": "3.10"}, "linux": {"arm64": "3.11"}});
        let Ok(Classified::Plugin(p)) = classify(&nvr(), None, &d) else {
            panic!("not a plugin");
        };
        assert_eq!(
            p.python,
            Some(PythonRuntime {
                versions: vec!["3.11".into(), "3.9".into()]
            })
        );
        d["scrypted"]
            .as_object_mut()
            .map(|o| o.remove("pythonVersion"));
        let Ok(Classified::Plugin(p)) = classify(&nvr(), None, &d) else {
            panic!("not a plugin");
        };
        assert_eq!(p.python, Some(PythonRuntime::default()));
    }

    #[test]
    fn skips() {
        let mut d = doc();
        d["scrypted"]["runtime"] = json!("deno");
        assert_eq!(
            classify(&nvr(), None, &d),
            Ok(Classified::Skip(SkipReason::UnsupportedRuntime(
                "deno".into()
            )))
        );
        let mut d = doc();
        d.as_object_mut().map(|o| o.remove("scrypted"));
        assert_eq!(
            classify(&nvr(), None, &d),
            Ok(Classified::Skip(SkipReason::NotAPlugin))
        );
        let mut d = doc();
        d["deprecated"] = json!("use\nfoo");
        assert_eq!(
            classify(&nvr(), None, &d),
            Ok(Classified::Deprecated {
                version: "0.12.43".into(),
                message: "use foo".into()
            })
        );
        let mut d = doc();
        d["deprecated"] = json!("");
        assert!(matches!(
            classify(&nvr(), None, &d),
            Ok(Classified::Plugin(_))
        ));
    }

    #[test]
    fn integrity_errors() {
        let mut d = doc();
        d["dist"]["integrity"] = json!("sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert!(matches!(
            classify(&nvr(), None, &d),
            Err(ClassifyError::NoSha512(_))
        ));
        d["dist"]["integrity"] = json!("sha512-short==");
        assert!(matches!(
            classify(&nvr(), None, &d),
            Err(ClassifyError::BadIntegrity(_))
        ));
        d["dist"]["integrity"] = json!("md5-xyz");
        assert!(matches!(
            classify(&nvr(), None, &d),
            Err(ClassifyError::BadIntegrity(_))
        ));
        d["dist"] = json!({"shasum": "abc"});
        assert_eq!(
            classify(&nvr(), None, &d),
            Err(ClassifyError::MissingIntegrity)
        );
        let both = format!("sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk= {H}");
        assert_eq!(sha512_of(&both).as_deref(), Ok(H));
    }

    #[test]
    fn version_and_name_checks() {
        let mut d = doc();
        d["version"] = json!("latest");
        assert!(matches!(
            classify(&nvr(), None, &d),
            Err(ClassifyError::BadVersion { .. })
        ));
        d["version"] = json!(format!("1.0.0-{}", "a".repeat(300)));
        assert_eq!(
            classify(&nvr(), None, &d),
            Err(ClassifyError::VersionTooLong(306))
        );
        let held = semver::Version::new(0, 12, 1);
        assert!(matches!(
            classify(&nvr(), Some(&held), &doc()),
            Err(ClassifyError::WrongVersion { .. })
        ));
        let mut d = doc();
        d["name"] = json!("@scrypted/other");
        assert!(matches!(
            classify(&nvr(), None, &d),
            Err(ClassifyError::WrongName { .. })
        ));
        assert_eq!(
            classify(&nvr(), None, &json!([1])),
            Err(ClassifyError::NotAnObject)
        );
    }

    #[test]
    fn defaults() {
        let mut d = doc();
        d["description"] = json!("  ");
        d["maintainers"] = json!([]);
        d["author"] = json!("Scrypted");
        let Ok(Classified::Plugin(p)) = classify(&nvr(), None, &d) else {
            panic!("not a plugin")
        };
        assert_eq!(
            (p.description.as_str(), p.maintainer.as_str()),
            ("Scrypted NVR", "Scrypted")
        );
        d["scrypted"] = json!({});
        d.as_object_mut().map(|o| o.remove("author"));
        let Ok(Classified::Plugin(p)) = classify(&nvr(), None, &d) else {
            panic!("not a plugin")
        };
        assert_eq!(
            (p.description.as_str(), p.maintainer.as_str()),
            ("Scrypted plugin @scrypted/nvr", "unknown")
        );
    }
}
