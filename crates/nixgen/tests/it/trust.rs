//! The trust checks against a loopback registry that answers like the real
//! one (docs/npm-registry.md): full and abbreviated package documents with
//! `time`, `dist.signatures` made with a key pair generated here,
//! `_npmUser`, `deprecated`.

use std::path::Path;

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{Value, json};

use crate::*;

const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";
/// What reqwest sends when nixgen asks for nothing in particular.
const ANY: &str = "*/*";

/// A registry signing key, generated for this test run.
pub(crate) struct Key {
    signing: SigningKey,
    pub(crate) keyid: String,
    pub(crate) public_b64: String,
}

impl Key {
    pub(crate) fn generate(keyid: &str) -> Self {
        let signing = loop {
            let bytes: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
            if let Ok(k) = SigningKey::from_slice(&bytes) {
                break k;
            }
        };
        let der = signing
            .verifying_key()
            .to_public_key_der()
            .expect("public key DER");
        Self {
            signing,
            keyid: keyid.to_owned(),
            public_b64: base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
        }
    }

    /// `dist.signatures` entry over `<name>@<version>:<integrity>`.
    fn sign(&self, message: &str) -> Value {
        let sig: Signature = self.signing.sign(message.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
        json!({"keyid": self.keyid, "sig": sig})
    }

    /// Pins this key for `registry` in the root's keys file.
    fn pin(&self, root: &Path, registry: &str) {
        let file = json!({ registry: {"keys": [{
            "expires": null, "keyid": self.keyid, "keytype": "ecdsa-sha2-nistp256",
            "scheme": "ecdsa-sha2-nistp256", "key": self.public_b64
        }]}});
        std::fs::write(
            root.join("nix/plugins/registry-keys.json"),
            serde_json::to_string_pretty(&file).expect("json"),
        )
        .expect("write keys");
    }
}

/// One published version.
#[derive(Clone)]
struct Release {
    version: &'static str,
    hours_ago: i64,
    publisher: &'static str,
    deprecated: Option<&'static str>,
    /// How `dist.signatures` is made.
    signed: Signed,
}

#[derive(Clone, Copy)]
enum Signed {
    Valid,
    /// Over another integrity: does not verify.
    Invalid,
    Missing,
    /// By a key the repository does not pin.
    ByOtherKey,
}

fn release(version: &'static str, hours_ago: i64) -> Release {
    Release {
        version,
        hours_ago,
        publisher: "alice",
        deprecated: None,
        signed: Signed::Valid,
    }
}

struct Registry {
    server: Server,
    key: Key,
    other: Key,
}

impl Registry {
    fn new() -> Self {
        Self {
            server: Server::start(),
            key: Key::generate("SHA256:test-key"),
            other: Key::generate("SHA256:other-key"),
        }
    }

    fn version_doc(&self, name: &str, r: &Release) -> Value {
        let mut doc = plugin_doc(name, r.version);
        let npm = format!("@scrypted/{name}");
        let integrity = doc["dist"]["integrity"].as_str().expect("sri").to_owned();
        let message = format!("{npm}@{}:{integrity}", r.version);
        let sigs = match r.signed {
            Signed::Valid => json!([self.key.sign(&message)]),
            Signed::Invalid => json!([self.key.sign(&format!("{message}x"))]),
            Signed::Missing => json!(null),
            Signed::ByOtherKey => json!([self.other.sign(&message)]),
        };
        if !sigs.is_null() {
            doc["dist"]["signatures"] = sigs;
        }
        doc["_npmUser"] =
            json!({"name": r.publisher, "email": format!("{}@example.com", r.publisher)});
        if let Some(why) = r.deprecated {
            doc["deprecated"] = json!(why);
        }
        doc
    }

    /// Publishes `releases` of `@scrypted/<name>`, the last one `latest`:
    /// its version documents, and its package document in both forms (the
    /// abbreviated one with `time` only when `abbreviated_time`).
    fn publish(&self, name: &str, releases: &[Release], abbreviated_time: bool) {
        let now = jiff::Timestamp::now();
        let npm = format!("@scrypted/{name}");
        let (mut time, mut versions, mut short) = (json!({}), json!({}), json!({}));
        for r in releases {
            let doc = self.version_doc(name, r);
            let at = now - jiff::SignedDuration::from_hours(r.hours_ago);
            time[r.version] = json!(at.to_string());
            let mut abbreviated = json!({"name": npm, "version": r.version, "dist": doc["dist"]});
            if let Some(why) = r.deprecated {
                abbreviated["deprecated"] = json!(why);
            }
            short[r.version] = abbreviated;
            self.server
                .set(&format!("/{npm}/{}", r.version), Reply::json(&doc));
            versions[r.version] = doc;
        }
        let latest = releases.last().expect("a release");
        self.server.latest(name, &versions[latest.version]);
        time["created"] = json!("2020-01-01T00:00:00.000Z");
        time["modified"] = json!(now.to_string());
        let tags = json!({"latest": latest.version});
        let full = json!({"name": npm, "dist-tags": tags, "time": time, "versions": versions});
        let mut abbreviated =
            json!({"name": npm, "dist-tags": tags, "modified": now.to_string(), "versions": short});
        if abbreviated_time {
            abbreviated["time"] = time;
        }
        let path = format!("/{npm}");
        self.server.set(&path, Reply::json(&full));
        self.server
            .set_for_accept(&path, ABBREVIATED, Reply::json(&abbreviated));
    }
}

fn run(root: &Path, registry: &Registry, args: &[&str]) -> Out {
    nixgen_trusting(root, &registry.server.url, args, &[])
}

fn pinned(root: &Path, name: &str) -> String {
    nixgen::tree::pinned(&read(&plugin_file(root, name)), "version").expect("version")
}

/// A tree pinning each `(name, version)` at releases 10 days old.
fn tree(registry: &Registry, pins: &[(&str, &'static str)]) -> tempfile::TempDir {
    let root = new_root();
    let names: Vec<String> = pins.iter().map(|(n, _)| format!("@scrypted/{n}")).collect();
    registry
        .server
        .search(&names.iter().map(String::as_str).collect::<Vec<_>>());
    for (name, version) in pins {
        registry.publish(name, &[release(version, 240)], true);
    }
    let out = run(root.path(), registry, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    root
}

#[test]
fn cooldown_holds_back_young_versions_and_pins_the_newest_old_enough() {
    let registry = Registry::new();
    let root = tree(
        &registry,
        &[("older", "1.0.0"), ("stays", "1.1.0"), ("held", "1.0.0")],
    );
    let young = release("1.2.0", 1);
    registry.publish(
        "older",
        &[release("1.0.0", 240), release("1.1.0", 96), young.clone()],
        true,
    );
    registry.publish("stays", &[release("1.1.0", 240), young.clone()], true);
    registry.publish("held", &[release("1.0.0", 240), young], true);
    std::fs::write(
        root.path().join("nix/plugins/nixgen.toml"),
        "[hold]\nheld = \"1.2.0\"\n",
    )
    .expect("config");

    let out = run(root.path(), &registry, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert_eq!(pinned(root.path(), "older"), "1.1.0");
    assert_eq!(pinned(root.path(), "stays"), "1.1.0");
    // A held version is the operator's choice: no cooldown.
    assert_eq!(pinned(root.path(), "held"), "1.2.0");
    let held = &r["cooldown"]["held_back"];
    assert_eq!(held.as_array().map(Vec::len), Some(2), "{r}");
    assert_eq!(held[0]["name"], "older");
    assert_eq!(held[0]["pinned_instead"], "1.1.0");
    assert_eq!(held[1]["kept"], "1.1.0");
    let age = held[1]["age_secs"].as_u64().expect("age");
    assert!((3_500..4_000).contains(&age), "{age}");
    assert_eq!(r["cooldown"]["min_release_age_secs"], 259_200);

    let text = run(root.path(), &registry, &["--dry-run"]);
    assert!(
        text.stdout
            .contains("stays 1.2.0 held back: published 1 h ago; pinned 1.1.0 stays"),
        "{}",
        text.stdout
    );
    let md = run(root.path(), &registry, &["--markdown", "--dry-run"]);
    assert!(md.stdout.contains("### Release cooldown"), "{}", md.stdout);

    // The flag lifts it; the pins then follow latest.
    let out = run(
        root.path(),
        &registry,
        &["--json", "--min-release-age", "30m"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(pinned(root.path(), "stays"), "1.2.0");
}

#[test]
fn a_no_change_run_fetches_no_package_document() {
    let registry = Registry::new();
    let root = tree(&registry, &[("a", "1.0.0"), ("b", "1.0.0")]);
    let before = registry.server.all_hits();
    let out = run(root.path(), &registry, &["--json"]);
    assert_eq!(out.json()["files_changed"], 0, "{out:?}");
    for n in ["a", "b"] {
        let path = format!("/@scrypted/{n}");
        assert_eq!(
            registry.server.hits(&path),
            before[&path],
            "{n}: fetched only while adding"
        );
    }
}

#[test]
fn the_abbreviated_document_is_used_when_it_carries_time() {
    let registry = Registry::new();
    let root = tree(&registry, &[("a", "1.0.0"), ("b", "1.0.0")]);
    for n in ["a", "b"] {
        registry.publish(n, &[release("1.0.0", 240), release("1.1.0", 96)], true);
    }
    let count = |accept: &str| -> usize {
        ["a", "b"]
            .iter()
            .map(|n| {
                registry
                    .server
                    .accept_hits(&format!("/@scrypted/{n}"), accept)
            })
            .sum()
    };
    let before = count(ABBREVIATED);
    assert_eq!(run(root.path(), &registry, &["--json"]).code, 0);
    assert_eq!(pinned(root.path(), "a"), "1.1.0");
    assert_eq!(count(ANY), 0, "no full document");
    // A probe, then one document per changed plugin.
    assert_eq!(count(ABBREVIATED) - before, 3);
    // npm's own abbreviated document has no `time`: one probe per run, then
    // full documents.
    for n in ["a", "b"] {
        registry.publish(n, &[release("1.1.0", 240), release("1.2.0", 96)], false);
    }
    let before = count(ABBREVIATED);
    let out = run(root.path(), &registry, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(pinned(root.path(), "a"), "1.2.0");
    assert_eq!(count(ABBREVIATED) - before, 1, "one probe");
    assert_eq!(count(ANY), 2, "then full documents");
}

#[test]
fn a_registry_without_package_documents_fails_changed_plugins_only() {
    let registry = Registry::new();
    let root = tree(&registry, &[("a", "1.0.0"), ("b", "1.0.0")]);
    registry.publish("a", &[release("1.0.0", 240), release("1.1.0", 96)], true);
    registry.server.remove("/@scrypted/a");
    registry
        .server
        .set_for_accept("/@scrypted/a", ABBREVIATED, Reply::status(404));
    let out = run(root.path(), &registry, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "failed"), ["a"]);
    assert!(
        r["failed"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("minReleaseAge"),
        "{r}"
    );
    assert_eq!(pinned(root.path(), "a"), "1.0.0");
}

#[test]
fn signatures_valid_invalid_missing_and_wrongly_keyed() {
    let registry = Registry::new();
    let root = tree(
        &registry,
        &[
            ("valid", "1.0.0"),
            ("invalid", "1.0.0"),
            ("missing", "1.0.0"),
            ("foreign", "1.0.0"),
        ],
    );
    registry.key.pin(root.path(), &registry.server.url);
    for (name, signed) in [
        ("valid", Signed::Valid),
        ("invalid", Signed::Invalid),
        ("missing", Signed::Missing),
        ("foreign", Signed::ByOtherKey),
    ] {
        let new = Release {
            signed,
            ..release("1.1.0", 96)
        };
        registry.publish(name, &[release("1.0.0", 240), new], true);
    }
    let out = run(root.path(), &registry, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "failed"), ["foreign", "invalid"]);
    assert!(
        r["failed"][1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("invalid registry signature"),
        "{r}"
    );
    assert!(
        r["failed"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("nixgen keys"),
        "{r}"
    );
    assert_eq!(pinned(root.path(), "invalid"), "1.0.0");
    assert_eq!(pinned(root.path(), "foreign"), "1.0.0");
    assert_eq!(pinned(root.path(), "valid"), "1.1.0");
    assert_eq!(pinned(root.path(), "missing"), "1.1.0");
    assert_eq!(
        r["signatures"]["unsigned"],
        json!(["@scrypted/missing@1.1.0"])
    );
    assert_eq!(r["signatures"]["invalid"].as_array().map(Vec::len), Some(2));
    assert_eq!(r["signatures"]["verified"], 1);
    assert!(r["signatures"]["no_keys"].is_null());
    let valid = read(&plugin_file(root.path(), "valid"));
    assert!(
        valid.contains("# Registry signature: verified by key SHA256:test-key\n"),
        "{valid}"
    );
    let missing = read(&plugin_file(root.path(), "missing"));
    assert!(
        missing.contains("# Registry signature: none: the registry serves no signature"),
        "{missing}"
    );
}

#[test]
fn require_signatures_refuses_unsigned_versions() {
    let registry = Registry::new();
    let root = tree(&registry, &[("missing", "1.0.0"), ("signed", "1.0.0")]);
    registry.key.pin(root.path(), &registry.server.url);
    std::fs::write(
        root.path().join("nix/plugins/nixgen.toml"),
        "requireSignatures = true\n",
    )
    .expect("config");
    let unsigned = Release {
        signed: Signed::Missing,
        ..release("1.1.0", 96)
    };
    registry.publish("missing", &[release("1.0.0", 240), unsigned], true);
    registry.publish(
        "signed",
        &[release("1.0.0", 240), release("1.1.0", 96)],
        true,
    );
    let out = run(root.path(), &registry, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "failed"), ["missing"]);
    assert!(
        r["failed"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("requireSignatures"),
        "{r}"
    );
    assert_eq!(pinned(root.path(), "missing"), "1.0.0");
    assert_eq!(pinned(root.path(), "signed"), "1.1.0");
}

#[test]
fn a_registry_without_keys_is_reported_once() {
    let registry = Registry::new();
    let root = tree(&registry, &[("a", "1.0.0"), ("b", "1.0.0")]);
    let out = run(root.path(), &registry, &["--dry-run"]);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("no keys pinned"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    std::fs::write(
        root.path().join("nix/plugins/nixgen.toml"),
        "requireSignatures = true\n",
    )
    .expect("config");
    let out = run(root.path(), &registry, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("pins no keys for"), "{}", out.stderr);
}

#[test]
fn a_changed_publisher_is_flagged_and_needs_review() {
    let registry = Registry::new();
    let root = tree(&registry, &[("p", "1.0.0"), ("q", "1.0.0")]);
    let mallory = Release {
        publisher: "mallory",
        ..release("1.1.0", 96)
    };
    registry.publish("p", &[release("1.0.0", 240), mallory], true);
    registry.publish("q", &[release("1.0.0", 240), release("1.1.0", 96)], true);
    let check = run(root.path(), &registry, &["--check", "--json"]);
    assert_eq!(check.code, 1, "{check:?}");
    let r = check.json();
    assert_eq!(names(&r, "publishers"), ["p"]);
    assert_eq!(r["publishers"][0]["from"], "alice <alice@example.com>");
    assert_eq!(r["publishers"][0]["to"], "mallory <mallory@example.com>");
    let md = run(root.path(), &registry, &["--markdown", "--dry-run"]);
    let first = md
        .stdout
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with("## "))
        .unwrap_or("");
    assert!(
        first.contains(
            "publisher changed: alice <alice@example.com> -> mallory <mallory@example.com>"
        ) || first.contains(
            "publisher changed: alice \\<alice@example.com\\> -> mallory \\<mallory@example.com\\>"
        ),
        "{}",
        md.stdout
    );
    let out = run(root.path(), &registry, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("publisher changed"), "{}", out.stdout);
    let text = read(&plugin_file(root.path(), "p"));
    assert!(
        text.contains("# Published by: mallory <mallory@example.com>\n"),
        "{text}"
    );
}

#[test]
fn a_deprecated_latest_keeps_the_pin() {
    let registry = Registry::new();
    let root = tree(&registry, &[("d", "1.0.0")]);
    let dep = Release {
        deprecated: Some("use e\nnow"),
        ..release("1.1.0", 96)
    };
    registry.publish("d", &[release("1.0.0", 240), dep], true);
    let out = run(root.path(), &registry, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert!(names(&r, "removed").is_empty(), "{r}");
    assert_eq!(r["deprecated"][0]["message"], "use e now");
    assert_eq!(r["deprecated"][0]["kept"], "1.0.0");
    assert_eq!(pinned(root.path(), "d"), "1.0.0");
    // The cooldown never falls back to a deprecated version either.
    let old_dep = Release {
        deprecated: Some("broken"),
        ..release("1.1.0", 96)
    };
    registry.publish(
        "d",
        &[release("1.0.0", 240), old_dep, release("1.2.0", 1)],
        true,
    );
    let out = run(root.path(), &registry, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(pinned(root.path(), "d"), "1.0.0");
    assert_eq!(out.json()["cooldown"]["held_back"][0]["kept"], "1.0.0");
}
