//! Community plugins (other npm scopes): opt-in by name, with real registry
//! data for @apocaliss92/scrypted-frigate-bridge and @vityevato/hikvision-doorbell.

use std::path::Path;

use serde_json::Value;

use crate::*;

const FRIGATE: &str = "@apocaliss92/scrypted-frigate-bridge";
const FRIGATE_DIR: &str = "apocaliss92--scrypted-frigate-bridge";
const HIKVISION: &str = "@vityevato/hikvision-doorbell";
const HIKVISION_DIR: &str = "vityevato--hikvision-doorbell";

fn latest(npm: &str) -> Value {
    serde_json::from_str(&read(&fixtures().join(npm).join("latest"))).expect("fixture json")
}

fn community_root(extra: &str) -> tempfile::TempDir {
    let root = new_root();
    std::fs::write(
        root.path().join("nix/plugins/nixgen.toml"),
        format!("extra = [{extra}]\n"),
    )
    .expect("write config");
    root
}

#[test]
fn listed_community_plugins_are_generated_under_their_mapped_names() {
    let server = Server::with_dir(&fixtures());
    let root = community_root(&format!("\"{FRIGATE}\", \"{HIKVISION}\""));
    let out = nixgen(root.path(), &server.url, &["--json"]);
    let r = assert_snapshot_run(&out);
    let added = names(&r, "added");
    assert!(added.contains(&FRIGATE_DIR.to_owned()), "{added:?}");
    assert!(added.contains(&HIKVISION_DIR.to_owned()), "{added:?}");
    for dir in [FRIGATE_DIR, HIKVISION_DIR] {
        golden(
            &format!("community/{dir}.nix"),
            &read(&plugin_file(root.path(), dir)),
        );
    }
    // The search lists both; only the names in `extra` were asked for.
    assert_eq!(server.hits(&format!("/{FRIGATE}/latest")), 1);

    let second = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(second.json()["files_changed"], 0, "{second:?}");
    evaluate(root.path());
}

/// The generated files, called with `mkScryptedPlugin = x: x`, hand the
/// builder the registry's name, scope, version, hash and dependencies.
fn evaluate(root: &Path) {
    if !has_nix() {
        return;
    }
    for (npm, dir) in [(FRIGATE, FRIGATE_DIR), (HIKVISION, HIKVISION_DIR)] {
        let expr = format!(
            "import {} {{ mkScryptedPlugin = x: x; }}",
            plugin_file(root, dir).display()
        );
        let got = nix_eval(&expr);
        let doc = latest(npm);
        let (scope, bare) = npm.trim_start_matches('@').split_once('/').expect("scoped");
        assert_eq!(
            (got["scope"].as_str(), got["pname"].as_str()),
            (Some(scope), Some(bare))
        );
        assert_eq!(got["version"], doc["version"]);
        assert_eq!(got["hash"], doc["dist"]["integrity"]);
        assert_eq!(
            got["meta"]["homepage"],
            format!("https://www.npmjs.com/package/{npm}")
        );
        assert_eq!(
            got["pluginDependencies"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            doc["scrypted"]["pluginDependencies"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            "{npm}"
        );
    }
}

#[test]
fn only_takes_npm_and_directory_names_of_any_scope() {
    let server = Server::with_dir(&fixtures());
    let root = new_root();
    let out = nixgen(root.path(), &server.url, &["--json", "--only", HIKVISION]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(names(&out.json(), "added"), [HIKVISION_DIR]);
    let out = nixgen(root.path(), &server.url, &["--json", "--only", FRIGATE_DIR]);
    assert_eq!(names(&out.json(), "added"), [FRIGATE_DIR]);
    assert_eq!(server.hits("/-/v1/search"), 0);
    // Once in the tree, a community plugin is refreshed like any other.
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert!(
        names(&assert_snapshot_run(&out), "added")
            .iter()
            .all(|n| !n.contains("--"))
    );
}

#[test]
fn a_community_package_is_checked_like_an_official_one() {
    let server = Server::start();
    server.search(&[]);
    let mut doc = latest(FRIGATE);
    doc["scrypted"]["runtime"] = serde_json::json!("deno");
    server.set(&format!("/{FRIGATE}/latest"), Reply::json(&doc));
    let mut lib = latest(HIKVISION);
    lib.as_object_mut().map(|o| o.remove("scrypted"));
    server.set(&format!("/{HIKVISION}/latest"), Reply::json(&lib));
    let mut impostor = latest(HIKVISION);
    impostor["name"] = serde_json::json!("@scrypted/nvr");
    server.set("/@evil/x/latest", Reply::json(&impostor));
    let root = community_root(&format!("\"{FRIGATE}\", \"{HIKVISION}\", \"@evil/x\""));
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "skipped"), [FRIGATE_DIR, HIKVISION_DIR]);
    assert_eq!(names(&r, "failed"), ["evil--x"]);
    assert!(names(&r, "added").is_empty());

    for bad in [
        "\"@Evil/x\"",
        "\"@a--b/c\"",
        "\"scrypted--nvr\"",
        "\"@scrypted/a--b\"",
    ] {
        let root = community_root(bad);
        let out = nixgen(root.path(), &server.url, &[]);
        assert_eq!(out.code, 2, "{bad}: {out:?}");
        assert!(out.stderr.contains("invalid plugin name"), "{}", out.stderr);
    }
}

/// A 404 alone never removes a pin, whatever the scope: an `extra`
/// community plugin the search still lists keeps its pin and fails the run,
/// as an `@scrypted` plugin does; once the search stops listing it too, it
/// is removed.
#[test]
fn a_listed_community_plugin_answering_404_keeps_its_pin() {
    let server = Server::with_dir(&fixtures());
    let root = community_root(&format!("\"{FRIGATE}\", \"{HIKVISION}\""));
    assert_snapshot_run(&nixgen(root.path(), &server.url, &["--json"]));
    server.remove(&format!("/{FRIGATE}/latest"));
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let r = out.json();
    assert!(names(&r, "removed").is_empty(), "{r}");
    let mut failed = snapshot_unpinnable();
    failed.insert(0, FRIGATE_DIR.to_owned());
    failed.sort();
    assert_eq!(names(&r, "failed"), failed);
    let frigate = r["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .find(|f| f["name"] == FRIGATE_DIR);
    let error = frigate.and_then(|f| f["error"].as_str()).unwrap_or("");
    assert!(
        error.contains("the registry search still lists it"),
        "{error}"
    );
    assert!(plugin_file(root.path(), FRIGATE_DIR).exists());

    let search: Value = serde_json::from_str(&read(&fixtures().join("-/v1/search"))).expect("json");
    let mut kept = search.clone();
    if let Some(objects) = kept["objects"].as_array_mut() {
        objects.retain(|o| o["package"]["name"] != FRIGATE);
    }
    assert_ne!(kept, search, "the fixture search lists {FRIGATE}");
    server.set("/-/v1/search", Reply::json(&kept));
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(names(&assert_snapshot_run(&out), "removed"), [FRIGATE_DIR]);
}
