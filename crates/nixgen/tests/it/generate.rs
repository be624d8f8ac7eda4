//! The full snapshot: what gets generated, golden files, Nix evaluation, and
//! a second run that changes nothing.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::*;

/// The snapshot's MANIFEST: name (without scope) -> runtime.
fn manifest() -> BTreeMap<String, String> {
    let m: Value =
        serde_json::from_str(&read(&fixtures().join("MANIFEST.json"))).expect("manifest");
    m.as_array()
        .expect("array")
        .iter()
        .map(|e| {
            let name = e["name"]
                .as_str()
                .expect("name")
                .trim_start_matches("@scrypted/")
                .to_owned();
            (name, e["runtime"].as_str().expect("runtime").to_owned())
        })
        .collect()
}

fn latest(name: &str) -> Value {
    serde_json::from_str(&read(
        &fixtures().join("@scrypted").join(name).join("latest"),
    ))
    .expect("fixture json")
}

fn searched() -> Vec<String> {
    let s: Value =
        serde_json::from_str(&read(&fixtures().join("-/v1/search"))).expect("search json");
    s["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o["package"]["name"].as_str().expect("name").to_owned())
        .collect()
}

const HAND_OPENVINO: &str = "# Maintained by hand.\n{ mkScryptedPlugin }: null\n";

fn snapshot_root() -> tempfile::TempDir {
    let root = new_root();
    let p = root.path().join("nix/plugins");
    std::fs::create_dir_all(p.join("openvino")).expect("mkdir");
    std::fs::write(p.join("openvino/package.nix"), HAND_OPENVINO).expect("write");
    std::fs::write(p.join("default.nix"), "{ }: { }\n").expect("write");
    root
}

#[test]
fn snapshot_generates_every_node_and_python_plugin_and_nothing_else() {
    let server = Server::with_dir(&fixtures());
    let root = snapshot_root();
    let out = nixgen(root.path(), &server.url, &["--json"]);
    let report = out.json();
    // llm's optionalDependencies are not on this registry: npm cannot
    // resolve them, which is recorded, not a failure. Without npm, llm fails.
    let unpinnable = snapshot_unpinnable();
    if has_npm() {
        assert_snapshot_run(&out);
        assert_eq!(
            names(&report, "warnings")
                .iter()
                .filter(|n| *n == "llm")
                .count(),
            2
        );
        let llm = read(&plugin_file(root.path(), "llm"));
        assert!(llm.contains("\"npm install of its native dependencies (@modelcontextprotocol/sdk, jsdom) at every load\""), "{llm}");
    } else {
        let mut failed = unpinnable.clone();
        failed.push("llm".into());
        failed.sort();
        assert_eq!(names(&report, "failed"), failed, "{report}");
        return;
    }

    let manifest = manifest();
    let searched = searched();
    let in_search = |n: &str| searched.iter().any(|s| s == &format!("@scrypted/{n}"));
    // Node and Python plugins alike; openvino is hand-maintained in this
    // test's root (a fixture: the repository generates it), and the unpinnable
    // ones have nothing to pin.
    let generated = |n: &str, runtime: &str| {
        matches!(runtime, "node" | "python")
            && in_search(n)
            && n != "openvino"
            && !unpinnable.iter().any(|u| u == n)
    };
    let expect: Vec<String> = manifest
        .iter()
        .filter(|(n, r)| generated(n, r))
        .map(|(n, _)| n.clone())
        .collect();
    assert!(
        expect.len() > 50,
        "the snapshot should hold about 60 Node plugins"
    );
    assert_eq!(names(&report, "added"), expect);
    assert_eq!(
        names(&report, "skipped"),
        ["openvino"],
        "only the hand-maintained fixture is skipped"
    );
    for (name, runtime) in &manifest {
        assert_eq!(
            plugin_file(root.path(), name).exists(),
            generated(name, runtime) || name == "openvino",
            "{name}"
        );
    }
    // Their tarballs are not on this registry: generated, not scanned, and
    // so with no Python environment (tests/it/python.rs reads one).
    let onnx = read(&plugin_file(root.path(), "onnx"));
    assert!(
        onnx.contains("unknown: its plugin.zip could not be scanned")
            && !onnx.contains("python.requirements"),
        "{onnx}"
    );
    assert_eq!(read(&plugin_file(root.path(), "openvino")), HAND_OPENVINO);
    assert_eq!(
        read(&root.path().join("nix/plugins/default.nix")),
        "{ }: { }\n"
    );

    // Other scopes are dropped before any request is made for them.
    for foreign in searched.iter().filter(|s| !s.starts_with("@scrypted/")) {
        assert!(
            server
                .all_hits()
                .keys()
                .all(|p| !p.contains(foreign.as_str())),
            "fetched {foreign}"
        );
    }

    for name in [
        "nvr",
        "doorbird",
        "tuya",
        "objectdetector",
        "google-cloud-tts",
    ] {
        golden(
            &format!("snapshot/{name}.nix"),
            &read(&plugin_file(root.path(), name)),
        );
    }
    let builder = read(&root.path().join("nix/mk-scrypted-plugin.nix"))
        .replace(&server.url, "http://REGISTRY");
    golden("snapshot/mk-scrypted-plugin.nix", &builder);

    for name in &expect {
        let text = read(&plugin_file(root.path(), name));
        let parsed = rnix::Root::parse(&text);
        assert!(parsed.errors().is_empty(), "{name}: {:?}", parsed.errors());
    }
    evaluate_against_registry(root.path(), &expect);
}

/// Evaluates every generated package with `mkScryptedPlugin = x: x` and
/// compares the result with the registry document it came from.
fn evaluate_against_registry(root: &Path, plugins: &[String]) {
    if !has_nix() {
        return;
    }
    let attrs: String = plugins
        .iter()
        .map(|n| format!("  \"{n}\" = import {};\n", plugin_file(root, n).display()))
        .collect();
    let expr = format!("builtins.mapAttrs (_: f: f {{ mkScryptedPlugin = x: x; }}) {{\n{attrs}}}");
    let evaluated = nix_eval(&expr);
    for name in plugins {
        let got = &evaluated[name];
        let doc = latest(name);
        assert_eq!(got["pname"], *name);
        assert_eq!(got["version"], doc["version"], "{name}");
        let integrity = doc["dist"]["integrity"].as_str().expect("integrity");
        let sha512 = integrity
            .split_whitespace()
            .find(|h| h.starts_with("sha512-"))
            .expect("sha512");
        assert_eq!(got["hash"], sha512, "{name}");
        let description = doc["description"].as_str().filter(|d| !d.trim().is_empty());
        let fallback = doc["scrypted"]["name"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or(format!("Scrypted plugin @scrypted/{name}"));
        assert_eq!(
            got["meta"]["description"].as_str(),
            Some(description.map_or(fallback.as_str(), |d| d)),
            "{name}"
        );
        assert_eq!(
            got["meta"]["homepage"],
            format!("https://www.npmjs.com/package/@scrypted/{name}")
        );
        // Sorted as nixgen writes them; absent when the plugin needs none.
        let mut deps: Vec<&str> = doc["scrypted"]["pluginDependencies"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        deps.sort_unstable();
        let got_deps: Vec<&str> = got["pluginDependencies"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(got_deps, deps, "{name}");
    }
    // The snapshot has plugins with dependencies: the comparison above is not vacuous.
    assert!(
        plugins.iter().any(|n| evaluated[n]["pluginDependencies"]
            .as_array()
            .is_some_and(|a| a.len() > 1)),
        "no generated plugin carries several pluginDependencies"
    );
}

#[test]
fn second_run_rewrites_no_file() {
    let server = Server::with_dir(&fixtures());
    let root = snapshot_root();
    let first = nixgen(root.path(), &server.url, &["--json"]);
    let added = names(&assert_snapshot_run(&first), "added").len();
    let stamps = || -> BTreeMap<String, std::time::SystemTime> {
        let mut m = BTreeMap::new();
        for dir in std::fs::read_dir(root.path().join("nix/plugins"))
            .expect("ls")
            .flatten()
        {
            let f = dir.path().join("package.nix");
            if let Ok(meta) = std::fs::metadata(&f) {
                m.insert(f.display().to_string(), meta.modified().expect("mtime"));
            }
        }
        m
    };
    let before = stamps();
    std::thread::sleep(Duration::from_millis(20));
    let second = nixgen(root.path(), &server.url, &["--json"]);
    let r = assert_snapshot_run(&second);
    assert_eq!(r["files_changed"], 0, "{r}");
    assert_eq!(r["unchanged"], added);
    assert_eq!(r["builder"], "unchanged");
    assert_eq!(stamps(), before);
    // Nothing pending; the unpinnable plugins still fail (exit 2).
    let check = nixgen(root.path(), &server.url, &["--check", "--json"]);
    assert_eq!(assert_snapshot_run(&check)["files_changed"], 0);
}

#[test]
fn text_summary_and_progress_lines() {
    let server = small_registry(&["a", "b"]);
    let root = new_root();
    std::fs::create_dir_all(root.path().join("nix/plugins/b")).expect("mkdir");
    std::fs::write(
        plugin_file(root.path(), "b"),
        "# @generated by nixgen\n{\n  version = \"0.9.0\";\n}\n",
    )
    .expect("write");
    let out = nixgen(root.path(), &server.url, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("updated:\n  b: 0.9.0 -> 1.0.0\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("added:\n  a 1.0.0\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("1 updated, 1 added, 0 removed"),
        "{}",
        out.stdout
    );
    // Not a terminal: plain progress lines on stderr.
    assert!(out.stderr.contains("[2/2] fetched"), "{}", out.stderr);
}
