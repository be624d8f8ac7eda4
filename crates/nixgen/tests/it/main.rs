//! Integration tests: the real `nixgen` binary against a fake registry on
//! loopback. One test binary, split by topic.

mod committed;
mod community;
mod dns;
mod escape_prop;
mod faults;
mod generate;
mod interrupt;
mod keys;
mod native;
mod python;
mod server;
mod tree_rules;
mod trust;
mod verify;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use server::{Reply, Server};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry")
}

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with a golden file; `UPDATE_GOLDEN=1` rewrites it.
pub fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir golden");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs (UPDATE_GOLDEN=1 refreshes it after review)",
        path.display()
    );
}

/// A scratch repository with an empty `nix/plugins`.
pub fn new_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("nix/plugins")).expect("mkdir");
    root
}

pub fn plugin_file(root: &Path, name: &str) -> PathBuf {
    root.join("nix/plugins").join(name).join("package.nix")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// `nixgen update --root ROOT --registry URL ARGS` (no `--registry` when
/// `registry` is empty), with fast retry settings.
pub fn nixgen(root: &Path, registry: &str, args: &[&str]) -> Out {
    nixgen_env(root, registry, args, &[])
}

/// Tests written for other behaviour run without the release cooldown (their
/// registries serve no package documents); `trust.rs` tests it with
/// [`nixgen_trusting`].
pub fn nixgen_env(root: &Path, registry: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut args = args.to_vec();
    args.extend(["--min-release-age", "0"]);
    nixgen_trusting(root, registry, &args, env)
}

/// `nixgen update` with the cooldown the config (or ARGS) sets.
pub fn nixgen_trusting(root: &Path, registry: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nixgen"));
    cmd.arg("update").arg("--root").arg(root).args(args);
    if !registry.is_empty() {
        cmd.args(["--registry", registry]);
    }
    cmd.env_remove("NIXGEN_REGISTRY_TOKEN")
        .env_remove("NIXGEN_REGISTRY_TOKEN_FILE")
        .env_remove("NPM_CONFIG_REGISTRY")
        // Loopback only: a closed port unless a test serves the Hub.
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("NIXGEN_TIMEOUT_MS", "3000")
        .env("NIXGEN_RETRIES", "2")
        .env("NIXGEN_BACKOFF_MS", "10")
        .env("NIXGEN_MAX_WAIT_MS", "3000")
        // npm (for native dependencies) reads no user config: ~/.npmrc may
        // carry settings that change the lock.
        .env("npm_config_userconfig", empty_npmrc())
        .env("npm_config_update_notifier", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().expect("run nixgen");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// A valid sha512 SRI string for `data`.
pub fn sri(data: &[u8]) -> String {
    ssri::IntegrityOpts::new()
        .algorithm(ssri::Algorithm::Sha512)
        .chain(data)
        .result()
        .to_string()
}

/// A minimal Node plugin `/latest` document.
pub fn plugin_doc(name: &str, version: &str) -> Value {
    json!({
        "name": format!("@scrypted/{name}"),
        "version": version,
        "description": format!("The {name} plugin"),
        "scrypted": {"name": name, "type": "DeviceProvider"},
        "maintainers": [{"name": "tester", "email": "t@example.com"}],
        "dist": {"integrity": sri(format!("{name}-{version}").as_bytes())}
    })
}

/// A small registry: a search listing `names`, each a Node plugin at 1.0.0.
pub fn small_registry(names: &[&str]) -> Server {
    let server = Server::start();
    let scoped: Vec<String> = names.iter().map(|n| format!("@scrypted/{n}")).collect();
    server.search(&scoped.iter().map(String::as_str).collect::<Vec<_>>());
    for n in names {
        server.latest(n, &plugin_doc(n, "1.0.0"));
    }
    server
}

/// Names listed under a JSON summary key.
pub fn names(report: &Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} missing in {report}"))
        .iter()
        .map(|v| v["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub fn has_nix() -> bool {
    let ok = Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: nix-instantiate is not installed, Nix evaluation not checked");
    }
    ok
}

/// `nix-instantiate --eval --strict --json` of an expression.
pub fn nix_eval(expr: &str) -> Value {
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", expr])
        .output()
        .expect("run nix-instantiate");
    assert!(
        out.status.success(),
        "nix-instantiate failed on {expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("nix json")
}

/// An npm-style .tgz with the given files under `package/`.
pub fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        builder
            .append_data(&mut h, format!("package/{path}"), *data)
            .expect("append");
    }
    let mut gz = builder.into_inner().expect("tar");
    gz.flush().expect("flush");
    gz.finish().expect("gzip")
}

/// A plugin.zip holding these files.
pub fn plugin_zip(files: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        w.write_all(text.as_bytes()).expect("zip write");
    }
    w.finish().expect("zip").into_inner()
}

/// An empty file to stand for the user's npmrc.
pub fn empty_npmrc() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let p = std::env::temp_dir().join(format!("nixgen-it-npmrc-{}", std::process::id()));
        std::fs::write(&p, "").expect("write empty npmrc");
        p
    })
    .clone()
}

/// Whether npm is on PATH; tests that need it print why they skip.
pub fn has_npm() -> bool {
    let ok = Command::new("npm")
        .arg("--version")
        .env("npm_config_userconfig", empty_npmrc())
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: npm is not installed, native dependency pinning not checked");
    }
    ok
}

/// The snapshot's Python plugins whose documents were made from the
/// repository's package.json (MANIFEST source `repo-python-no-integrity`):
/// without `dist.integrity` there is nothing to pin, so nixgen fails them,
/// as it fails a Node plugin without one.
pub fn snapshot_unpinnable() -> Vec<String> {
    let m: Value =
        serde_json::from_str(&read(&fixtures().join("MANIFEST.json"))).expect("manifest");
    let mut names: Vec<String> = m
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["source"] == "repo-python-no-integrity")
        .map(|e| {
            e["name"]
                .as_str()
                .expect("name")
                .trim_start_matches("@scrypted/")
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

/// A run over the whole snapshot: exit 2 for exactly the plugins it cannot
/// pin ([`snapshot_unpinnable`]), each for its missing integrity.
pub fn assert_snapshot_run(out: &Out) -> Value {
    assert_eq!(out.code, 2, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "failed"), snapshot_unpinnable(), "{r}");
    for f in r["failed"].as_array().expect("failed") {
        let error = f["error"].as_str().unwrap_or("");
        assert!(error.ends_with("missing dist.integrity"), "{error}");
    }
    r
}
