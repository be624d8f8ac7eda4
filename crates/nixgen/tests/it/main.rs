//! Integration tests: the real `nixgen` binary against a fake registry on
//! loopback. One test binary, split by topic.

mod committed;
mod community;
mod escape_prop;
mod faults;
mod generate;
mod interrupt;
mod server;
mod tree_rules;
mod verify;

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

pub fn nixgen_env(root: &Path, registry: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nixgen"));
    cmd.arg("update").arg("--root").arg(root).args(args);
    if !registry.is_empty() {
        cmd.args(["--registry", registry]);
    }
    cmd.env_remove("NIXGEN_REGISTRY_TOKEN")
        .env_remove("NIXGEN_REGISTRY_TOKEN_FILE")
        .env_remove("NPM_CONFIG_REGISTRY")
        .env("NIXGEN_TIMEOUT_MS", "3000")
        .env("NIXGEN_RETRIES", "2")
        .env("NIXGEN_BACKOFF_MS", "10")
        .env("NIXGEN_MAX_WAIT_MS", "3000");
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
