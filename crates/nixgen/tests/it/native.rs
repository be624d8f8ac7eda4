//! Native npm dependencies pinned in a lock, runtime needs found in the
//! zip, and the README table: against a tiny npm registry on loopback
//! (real packuments, tarballs with real sha512 integrities).

use serde_json::{Value, json};

use crate::*;

/// A plugin `p` 1.0.0 with `optionalDependencies` and a real tarball whose
/// plugin.zip holds `main_js`.
fn publish_plugin(server: &Server, optional: Value, main_js: &str) {
    let zip = plugin_zip(&[("main.nodejs.js", main_js)]);
    let manifest =
        serde_json::to_vec(&json!({"name": "@scrypted/p", "version": "1.0.0"})).expect("json");
    let tarball = tgz(&[("package.json", &manifest), ("dist/plugin.zip", &zip)]);
    let mut doc = plugin_doc("p", "1.0.0");
    doc["dist"]["integrity"] = json!(sri(&tarball));
    doc["optionalDependencies"] = optional;
    server.latest("p", &doc);
    server.set("/@scrypted/p/-/p-1.0.0.tgz", Reply::Ok(tarball));
}

/// Publishes the packument of `name` with these versions (version ->
/// dependencies); `integrity: false` leaves it out of the last version.
fn publish_dep(server: &Server, name: &str, versions: &[(&str, Value)], integrity: bool) {
    let mut all = serde_json::Map::new();
    for (i, (version, deps)) in versions.iter().enumerate() {
        let tarball = tgz(&[(
            "package.json",
            &serde_json::to_vec(&json!({"name": name, "version": version})).expect("json"),
        )]);
        let path = format!("/{name}/-/{name}-{version}.tgz");
        let mut dist = json!({"tarball": format!("{}{path}", server.url)});
        if integrity || i + 1 < versions.len() {
            dist["integrity"] = json!(sri(&tarball));
        }
        server.set(&path, Reply::Ok(tarball));
        all.insert(
            (*version).to_owned(),
            json!({"name": name, "version": version, "dependencies": deps, "dist": dist}),
        );
    }
    let latest = versions.last().map(|v| v.0).unwrap_or("1.0.0");
    let doc = json!({"name": name, "dist-tags": {"latest": latest}, "versions": all});
    server.set(&format!("/{name}"), Reply::json(&doc));
}

/// dep-a 1.0.0 depends on dep-b ^1.0.0.
fn tiny_tree(server: &Server, b_versions: &[&str], integrity: bool) {
    publish_dep(
        server,
        "dep-a",
        &[("1.0.0", json!({"dep-b": "^1.0.0"}))],
        true,
    );
    let b: Vec<(&str, Value)> = b_versions.iter().map(|v| (*v, json!({}))).collect();
    publish_dep(server, "dep-b", &b, integrity);
}

fn run(root: &Path, server: &Server, args: &[&str], cache: &Path) -> Out {
    let cache = cache.to_string_lossy().into_owned();
    let mut all = vec!["--tarball-registry", server.url.as_str()];
    all.extend_from_slice(args);
    nixgen_env(root, &server.url, &all, &[("npm_config_cache", &cache)])
}

fn lock_path(root: &Path) -> PathBuf {
    root.join("nix/plugins/p/package-lock.json")
}

#[test]
fn native_dependencies_are_pinned_and_checked() {
    if !has_npm() {
        return;
    }
    let server = small_registry(&["p"]);
    publish_plugin(
        &server,
        json!({"dep-a": "^1.0.0"}),
        "fetch('https://huggingface.co/m')",
    );
    tiny_tree(&server, &["1.0.0"], true);
    let (root, cache) = (new_root(), tempfile::tempdir().expect("cache"));
    let out = run(root.path(), &server, &["--json"], cache.path());
    assert_eq!(out.code, 0, "{out:?}");
    let text = read(&plugin_file(root.path(), "p"));
    golden("native/p.nix", &text);
    let lock: Value = serde_json::from_str(&read(&lock_path(root.path()))).expect("lock");
    assert_eq!(lock["lockfileVersion"], 3);
    assert_eq!(
        lock["packages"][""]["dependencies"],
        json!({"dep-a": "^1.0.0"})
    );
    for dep in ["dep-a", "dep-b"] {
        let entry = &lock["packages"][format!("node_modules/{dep}")];
        assert!(
            entry["resolved"]
                .as_str()
                .expect("resolved")
                .starts_with(&server.url)
        );
        assert!(
            entry["integrity"]
                .as_str()
                .expect("integrity")
                .starts_with("sha512-")
        );
    }

    // Nothing changed: nothing is rewritten, and the unchanged pin's needs
    // are carried over without downloading its tarball again.
    let out = run(root.path(), &server, &["--check"], cache.path());
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(server.hits("/@scrypted/p/-/p-1.0.0.tgz"), 1);

    // dep-b 1.0.1 is published: the tree changed, --check says so.
    tiny_tree(&server, &["1.0.0", "1.0.1"], true);
    let before = read(&lock_path(root.path()));
    let out = run(root.path(), &server, &["--check"], cache.path());
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("  p: native dependencies changed\n"),
        "{out:?}"
    );
    assert_eq!(read(&lock_path(root.path())), before, "--check wrote");
    let md = run(
        root.path(),
        &server,
        &["--dry-run", "--markdown"],
        cache.path(),
    );
    assert!(
        md.stdout.contains("1.0.0 (native dependencies changed)"),
        "{md:?}"
    );

    // A registry answering a dependency without integrity: p fails and
    // keeps its pin and lock.
    tiny_tree(&server, &["1.0.0", "1.0.2"], false);
    let out = run(root.path(), &server, &["--json"], cache.path());
    assert_eq!(out.code, 2, "{out:?}");
    let report = out.json();
    assert_eq!(names(&report, "failed"), ["p"]);
    let error = report["failed"][0]["error"].as_str().expect("error");
    assert!(
        error.contains("node_modules/dep-b has no sha512 integrity"),
        "{error}"
    );
    assert!(error.contains(&server.url), "{error}");
    assert_eq!(read(&lock_path(root.path())), before);
    assert_eq!(read(&plugin_file(root.path(), "p")), text);

    // The plugin drops its optionalDependencies: the lock goes with them.
    publish_plugin(&server, json!({}), "fetch('https://huggingface.co/m')");
    let out = run(root.path(), &server, &["--json"], cache.path());
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!lock_path(root.path()).exists());
    let text = read(&plugin_file(root.path(), "p"));
    assert!(!text.contains("nodeDependencies"), "{text}");
    assert!(text.contains("runtimeNeeds = [ \"model downloads from huggingface.co\" ];"));
}

#[test]
fn missing_npm_is_a_clear_per_plugin_error() {
    let server = small_registry(&["p", "q"]);
    publish_plugin(&server, json!({"dep-a": "^1.0.0"}), "x");
    let root = new_root();
    let out = nixgen_env(
        root.path(),
        &server.url,
        &["--json"],
        &[("NIXGEN_NPM", "/nonexistent/npm")],
    );
    assert_eq!(out.code, 2, "{out:?}");
    let report = out.json();
    assert_eq!(names(&report, "failed"), ["p"]);
    assert_eq!(
        report["failed"][0]["error"],
        "needs npm on PATH to pin the native dependencies of @scrypted/p"
    );
    assert!(plugin_file(root.path(), "q").exists());
}

#[test]
fn readme_table_between_markers_only() {
    let server = small_registry(&["p"]);
    publish_plugin(&server, json!({}), "x");
    let root = new_root();
    let readme = root.path().join("README.md");
    let before = "# Title\n\nText | with [stuff]\n<!-- nixgen:plugins:begin -->\nold\n<!-- nixgen:plugins:end -->\nAfter.\n";
    std::fs::write(&readme, before).expect("write");
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["readme"], "updated");
    let after = read(&readme);
    assert_eq!(
        after,
        "# Title\n\nText | with [stuff]\n<!-- nixgen:plugins:begin -->\n\n| Plugin | Version | Offline |\n| --- | --- | --- |\n| @scrypted/p | 1.0.0 | yes |\n\n<!-- nixgen:plugins:end -->\nAfter.\n"
    );
    let mtime = || {
        std::fs::metadata(&readme)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let stamp = mtime();
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.json()["files_changed"], 0, "{out:?}");
    assert_eq!(out.json()["readme"], "unchanged");
    assert_eq!(mtime(), stamp);

    std::fs::write(&readme, before).expect("write");
    let out = nixgen(root.path(), &server.url, &["--check"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("README.md: plugin table would be updated\n"),
        "{out:?}"
    );
    assert_eq!(read(&readme), before);

    std::fs::write(&readme, "# No markers\n").expect("write");
    let out = nixgen(root.path(), &server.url, &[]);
    assert!(
        out.stdout
            .contains("README.md has no <!-- nixgen:plugins:begin -->"),
        "{out:?}"
    );
    assert_eq!(read(&readme), "# No markers\n");
}

/// The builder's interface for native dependencies, evaluated with Nix:
/// `passthru.offline` always, `passthru.nodeDependencies` and
/// `passthru.provision` only with a lock, and a clear error when the plugin
/// set gives no `pluginNodeDependencies`.
#[test]
fn builder_exposes_offline_state_and_provision() {
    if !has_nix() {
        return;
    }
    let builder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nix/mk-scrypted-plugin.nix");
    let expr = format!(
        r#"let
  builder = import {};
  mk = withDeps: builder ({{
    lib.platforms.all = [ ];
    stdenvNoCC.mkDerivation = f: let self = f (self // {{ finalPackage = self; }}); in self;
    fetchurl = x: x;
    unzip = null;
    jq = null;
  }} // (if withDeps then {{
    pluginNodeDependencies = {{ plugin, lockFile }}: {{
      directoryName = "n-node-v115-linux-x64";
      inherit lockFile;
      for = plugin.pname;
    }};
  }} else {{ }}));
  args = {{ pname = "p"; version = "1.0.0"; hash = "sha512-x"; nodeDependencies = "LOCK"; runtimeNeeds = [ "a need" ]; }};
  with' = (mk true args).passthru;
  community = (mk true (args // {{ scope = "someone"; }})).passthru.provision.directories;
  unscoped = (mk true (args // {{ scope = null; }})).passthru.provision.directories;
  without = (mk false args).passthru;
  plain = (mk false {{ pname = "q"; version = "1.0.0"; hash = "sha512-x"; }});
in {{
  offline = with'.offline;
  deps = with'.nodeDependencies;
  provision = with'.provision;
  inherit community unscoped;
  withoutOffline = without.offline;
  withoutThrows = (builtins.tryEval without.provision.directories).success;
  plain = {{ inherit (plain.passthru) offline; provision = plain.passthru ? provision; leaked = plain ? runtimeNeeds || plain ? nodeDependencies; }};
}}"#,
        builder.display()
    );
    let got = nix_eval(&expr);
    assert_eq!(got["offline"], json!({"ready": false, "needs": ["a need"]}));
    assert_eq!(got["deps"]["lockFile"], "LOCK");
    assert_eq!(got["deps"]["for"], "p");
    assert_eq!(
        got["provision"],
        json!({
            "directories": ["plugins", "plugins/@scrypted", "plugins/@scrypted/p"],
            "symlinks": [{"path": "plugins/@scrypted/p/n-node-v115-linux-x64", "target": got["deps"]}],
            "warnings": []
        })
    );
    assert_eq!(
        got["community"],
        json!(["plugins", "plugins/@someone", "plugins/@someone/p"])
    );
    assert_eq!(got["unscoped"], json!(["plugins", "plugins/p"]));
    assert_eq!(got["withoutOffline"]["ready"], false);
    assert_eq!(got["withoutThrows"], false);
    assert_eq!(
        got["plain"],
        json!({"offline": {"ready": true, "needs": []}, "provision": false, "leaked": false})
    );
}

/// npm leaves out an optional dependency the registry does not have, and
/// still succeeds: the lock is written, but the summary warns and does not
/// call the tree pinned.
#[test]
fn an_optional_dependency_the_registry_lacks_is_not_called_pinned() {
    if !has_npm() {
        return;
    }
    let server = small_registry(&["p"]);
    publish_plugin(&server, json!({"dep-a": "^1.0.0"}), "x");
    tiny_tree(&server, &["1.0.0"], true);
    // dep-a also wants dep-gone, optionally (npm lists optional
    // dependencies in both maps); the registry answers 404 for it.
    let tarball = tgz(&[("package.json", br#"{"name":"dep-a","version":"1.0.0"}"#)]);
    server.set("/dep-a/-/dep-a-1.0.0.tgz", Reply::Ok(tarball.clone()));
    let doc = json!({"name": "dep-a", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {
        "name": "dep-a", "version": "1.0.0",
        "dependencies": {"dep-b": "^1.0.0", "dep-gone": "^1.0.0"},
        "optionalDependencies": {"dep-gone": "^1.0.0"},
        "dist": {"tarball": format!("{}/dep-a/-/dep-a-1.0.0.tgz", server.url), "integrity": sri(&tarball)}
    }}});
    server.set("/dep-a", Reply::json(&doc));
    let (root, cache) = (new_root(), tempfile::tempdir().expect("cache"));
    let out = run(root.path(), &server, &["--json"], cache.path());
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    let warning = r["warnings"][0]["message"].as_str().unwrap_or("");
    assert!(
        warning.contains("not all pinned") && warning.contains("dep-gone (of node_modules/dep-a)"),
        "{r}"
    );
    assert!(lock_path(root.path()).exists());
    // A later run says so again, and a change of the tree says "not all
    // pinned" rather than "changed".
    tiny_tree(&server, &["1.0.0", "1.0.1"], true);
    server.set("/dep-a", Reply::json(&doc));
    let out = run(root.path(), &server, &[], cache.path());
    assert!(
        out.stdout
            .contains("p: native dependencies changed, not all pinned"),
        "{}",
        out.stdout
    );
}

/// A stand-in npm that records how it was called, then behaves as told.
fn fake_npm(dir: &Path, behaviour: &str) -> PathBuf {
    let path = dir.join("npm");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"NODE_OPTIONS=$NODE_OPTIONS\" \"$@\" > {}/called\n{behaviour}\n",
        dir.display()
    );
    std::fs::write(&path, script).expect("write fake npm");
    let mut perms = std::fs::metadata(&path).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).expect("chmod");
    path
}

/// npm runs with a heap limit, the release cooldown (`--before`) and a
/// deadline, and a run over either bound says which.
#[test]
fn npm_is_bounded_in_memory_and_time() {
    let server = small_registry(&["p"]);
    publish_plugin(&server, json!({"dep-a": "^1.0.0"}), "x");
    let dir = tempfile::tempdir().expect("dir");
    let oom = "echo 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory' >&2; exit 134";
    let npm = fake_npm(dir.path(), oom);
    let root = new_root();
    let env = [
        ("NIXGEN_NPM", npm.to_str().expect("utf8")),
        ("NIXGEN_NPM_MEMORY_MIB", "64"),
        ("NODE_OPTIONS", "--no-warnings"),
    ];
    let out = nixgen_env(root.path(), &server.url, &["--json"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    let called = read(&dir.path().join("called"));
    assert!(
        called.starts_with("NODE_OPTIONS=--no-warnings --max-old-space-size=64\n"),
        "{called}"
    );
    assert!(!called.contains("--before"), "no cooldown asked: {called}");
    let warning = out.json()["warnings"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(warning.contains("memory bound (64 MiB)"), "{warning}");

    // With the cooldown, npm resolves only versions published before it.
    let now = jiff::Timestamp::now();
    let mut full = json!({"name": "@scrypted/p", "time": {"1.0.0": (now - jiff::SignedDuration::from_hours(240)).to_string()}});
    full["versions"] = json!({"1.0.0": {}});
    server.set("/@scrypted/p", Reply::json(&full));
    let npm = fake_npm(dir.path(), "sleep 5");
    let env = [
        ("NIXGEN_NPM", npm.to_str().expect("utf8")),
        ("NIXGEN_TARBALL_DEADLINE_MS", "300"),
    ];
    let root = new_root();
    let started = Instant::now();
    let out = nixgen_trusting(root.path(), &server.url, &["--json"], &env);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "npm outlived its deadline"
    );
    assert_eq!(out.code, 0, "{out:?}");
    let called = read(&dir.path().join("called"));
    let before = called
        .lines()
        .find_map(|l| l.strip_prefix("--before="))
        .unwrap_or_else(|| panic!("no --before: {called}"));
    let before: jiff::Timestamp = before.parse().expect("a timestamp");
    let age = now.as_second() - before.as_second();
    assert!((259_190..259_300).contains(&age), "{age}");
    let warning = out.json()["warnings"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(warning.contains("not done after"), "{warning}");
}
