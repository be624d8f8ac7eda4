//! What nixgen may touch: discovery, classification, removal, config,
//! `--check`, `--dry-run`, `--only`, and hostile registry text.

use serde_json::json;

use crate::*;

fn config(root: &Path, text: &str) {
    std::fs::write(root.join("nix/plugins/nixgen.toml"), text).expect("write config");
}

fn skip_kind(report: &Value, name: &str) -> String {
    let s = report["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .find(|s| s["name"] == name);
    s.unwrap_or_else(|| panic!("{name} not skipped: {report}"))["reason"]["kind"]
        .as_str()
        .expect("kind")
        .to_owned()
}

#[test]
fn other_runtimes_libraries_other_scopes_and_hostile_names_are_not_generated() {
    let server = small_registry(&["node"]);
    server.search(&[
        "@scrypted/node",
        "@scrypted/py",
        "@scrypted/sdk",
        "@scrypted/old",
        "@other/node",
        "unscoped",
        "@scrypted/../../etc",
        "@scrypted/UPPER",
        "@scrypted/a\nb",
    ]);
    // Python plugins are generated (tests/it/python.rs); other runtimes not.
    let mut py = plugin_doc("py", "1.0.0");
    py["scrypted"]["runtime"] = json!("deno");
    server.latest("py", &py);
    server.latest(
        "sdk",
        &json!({"name": "@scrypted/sdk", "version": "0.5.46", "dist": {"integrity": sri(b"sdk")}}),
    );
    let mut old = plugin_doc("old", "1.0.0");
    old["deprecated"] = json!("use @scrypted/node instead\u{1b}[2J");
    server.latest("old", &old);
    let root = new_root();
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "added"), ["node"]);
    assert_eq!(skip_kind(&r, "py"), "unsupported-runtime");
    assert_eq!(skip_kind(&r, "sdk"), "not-a-plugin");
    assert_eq!(skip_kind(&r, "old"), "deprecated");
    let old_skip = r["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .find(|s| s["name"] == "old")
        .expect("old");
    assert_eq!(
        old_skip["message"],
        "deprecated: use @scrypted/node instead [2J"
    );
    for bad in [
        "\"@scrypted/../../etc\"",
        "\"@scrypted/UPPER\"",
        "\"@scrypted/a\\nb\"",
    ] {
        assert_eq!(skip_kind(&r, bad), "invalid-name", "{bad}");
    }
    let hits = server.all_hits();
    assert!(
        hits.keys()
            .all(|p| !p.contains("etc") && !p.contains("other") && !p.contains("unscoped")),
        "{hits:?}"
    );
    let entries: Vec<_> = std::fs::read_dir(root.path().join("nix/plugins"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries, ["node"]);
    assert!(!root.path().join("etc").exists() && !root.path().join("nix/etc").exists());
}

#[test]
fn vanished_and_unsupported_runtime_plugins_are_removed_unless_kept() {
    let server = small_registry(&["stays", "becomes-deno"]);
    let mut py = plugin_doc("becomes-deno", "2.0.0");
    py["scrypted"]["runtime"] = json!("deno");
    server.latest("becomes-deno", &py);
    let root = new_root();
    // First run pins all three; then one vanishes and one turns to a
    // runtime nixgen does not package.
    server.search(&[
        "@scrypted/stays",
        "@scrypted/gone",
        "@scrypted/becomes-deno",
    ]);
    server.latest("gone", &plugin_doc("gone", "1.0.0"));
    server.latest("becomes-deno", &plugin_doc("becomes-deno", "1.0.0"));
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    server.search(&["@scrypted/stays", "@scrypted/becomes-deno"]);
    server.remove("/@scrypted/gone/latest");
    server.latest("becomes-deno", &py);

    let kept = nixgen(root.path(), &server.url, &["--json", "--keep-removed"]);
    assert_eq!(kept.code, 0, "{kept:?}");
    let r = kept.json();
    assert!(names(&r, "removed").is_empty());
    assert_eq!(skip_kind(&r, "gone"), "gone");
    assert!(
        plugin_file(root.path(), "gone").exists()
            && plugin_file(root.path(), "becomes-deno").exists()
    );

    // Two of three is over 10 % of the tree: refused, nothing written.
    let refused = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("refusing to remove 2 of 3")
            && refused
                .stderr
                .contains("gone 1.0.0 (no longer on the registry)"),
        "{}",
        refused.stderr
    );
    assert!(plugin_file(root.path(), "gone").exists());

    let out = nixgen_env(
        root.path(),
        &server.url,
        &["--json", "--allow-removals"],
        &[("SOURCE_DATE_EPOCH", "1795996800")],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "removed"), ["becomes-deno", "gone"]);
    // Each removal is recorded for the NixOS module's messages.
    let record: Value =
        serde_json::from_str(&read(&root.path().join("nix/plugins/removed.json"))).expect("json");
    assert_eq!(
        record,
        json!({
            "becomes-deno": {"npmName": "@scrypted/becomes-deno", "version": "1.0.0",
                               "reason": "unsupported runtime \"deno\"", "date": "2026-11-30"},
            "gone": {"npmName": "@scrypted/gone", "version": "1.0.0",
                     "reason": "no longer on the registry", "date": "2026-11-30"},
        })
    );
    assert_eq!(r["removed"][0]["version"], "1.0.0");
    assert!(!root.path().join("nix/plugins/gone").exists());
    assert!(!root.path().join("nix/plugins/becomes-deno").exists());
    assert!(plugin_file(root.path(), "stays").exists());
    let mut left: Vec<_> = std::fs::read_dir(root.path().join("nix/plugins"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["removed.json", "stays"],
        "no temporaries left behind"
    );

    // A plugin that comes back leaves the record; the others stay in it.
    server.search(&["@scrypted/stays", "@scrypted/gone"]);
    server.latest("gone", &plugin_doc("gone", "1.1.0"));
    let back = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(names(&back.json(), "added"), ["gone"], "{back:?}");
    let record: Value =
        serde_json::from_str(&read(&root.path().join("nix/plugins/removed.json"))).expect("json");
    assert_eq!(
        record
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["becomes-deno".to_owned()])
    );
    // A deprecated latest never removes a pin (Scrypted's own updater
    // would uninstall the plugin; ours keeps it): trust.rs tests it.
}

#[test]
fn hand_maintained_plugins_are_never_touched() {
    let server = small_registry(&["openvino", "custom"]);
    let root = new_root();
    let p = root.path().join("nix/plugins");
    std::fs::create_dir_all(p.join("openvino")).expect("mkdir");
    std::fs::write(p.join("openvino/package.nix"), "{ }: \"by hand\"\n").expect("write");
    std::fs::write(p.join("openvino/extra.nix"), "1\n").expect("write");
    // A directory without package.nix is also someone else's.
    std::fs::create_dir_all(p.join("custom")).expect("mkdir");
    std::fs::write(p.join("custom/README"), "mine\n").expect("write");
    std::fs::write(p.join("default.nix"), "{ }: { }\n").expect("write");
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert_eq!(skip_kind(&r, "openvino"), "hand-maintained");
    assert_eq!(skip_kind(&r, "custom"), "hand-maintained");
    assert_eq!(server.hits("/@scrypted/openvino/latest"), 0);
    assert_eq!(read(&p.join("openvino/package.nix")), "{ }: \"by hand\"\n");
    assert!(!plugin_file(root.path(), "custom").exists());
    assert_eq!(read(&p.join("default.nix")), "{ }: { }\n");
}

#[test]
fn check_and_dry_run_write_nothing() {
    let server = small_registry(&["a"]);
    let root = new_root();
    let check = nixgen(root.path(), &server.url, &["--check"]);
    assert_eq!(check.code, 1, "{check:?}");
    assert!(
        check.stdout.contains("added (not written):\n  a 1.0.0"),
        "{}",
        check.stdout
    );
    let dry = nixgen(root.path(), &server.url, &["--dry-run", "--json"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(dry.json()["wrote"], false);
    assert_eq!(names(&dry.json(), "added"), ["a"]);
    assert!(!plugin_file(root.path(), "a").exists());
    assert!(!root.path().join("nix/mk-scrypted-plugin.nix").exists());
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    assert_eq!(nixgen(root.path(), &server.url, &["--check"]).code, 0);
    server.latest("a", &plugin_doc("a", "1.1.0"));
    let check = nixgen(root.path(), &server.url, &["--check", "--json"]);
    assert_eq!(check.code, 1);
    assert_eq!(
        check.json()["updated"][0],
        json!({"name": "a", "old": "1.0.0", "new": "1.1.0"})
    );
    assert!(read(&plugin_file(root.path(), "a")).contains("version = \"1.0.0\";"));
}

#[test]
fn only_refreshes_the_named_plugins() {
    let server = small_registry(&["a", "b"]);
    let root = new_root();
    let out = nixgen(
        root.path(),
        &server.url,
        &["--only", "@scrypted/b", "--json"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(names(&out.json(), "added"), ["b"]);
    assert_eq!(server.hits("/-/v1/search"), 0);
    assert_eq!(server.hits("/@scrypted/a/latest"), 0);
    let out = nixgen(root.path(), &server.url, &["--only", "missing", "--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.json()["failed"][0]["error"]
            .as_str()
            .expect("error")
            .contains("is not in the registry")
    );
    assert!(plugin_file(root.path(), "b").exists());
}

#[test]
fn config_extra_ignore_hold_and_registry() {
    let server = small_registry(&["a", "ignored"]);
    server.latest("hidden", &plugin_doc("hidden", "3.0.0"));
    server.set("/@scrypted/a/0.5.0", Reply::json(&plugin_doc("a", "0.5.0")));
    let root = new_root();
    config(
        root.path(),
        &format!(
            "# test\nregistry = \"{}/\"\nextra = [\"hidden\"]\nignore = [\"ignored\"]\n\n[hold]\na = \"0.5.0\"\n",
            server.url
        ),
    );
    let out = nixgen_env(root.path(), "", &["--json"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "added"), ["a", "hidden"]);
    assert_eq!(skip_kind(&r, "ignored"), "ignored");
    assert_eq!(server.hits("/@scrypted/ignored/latest"), 0);
    assert_eq!(server.hits("/@scrypted/a/latest"), 0);
    assert!(read(&plugin_file(root.path(), "a")).contains("version = \"0.5.0\";"));
    assert!(
        read(&root.path().join("nix/mk-scrypted-plugin.nix"))
            .contains(&format!("\"{}/${{npmName}}/-/", server.url))
    );

    config(root.path(), "hold = { a = \"not-a-version\" }\n");
    let out = nixgen(root.path(), &server.url, &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("nixgen.toml") && out.stderr.contains("not-a-version"),
        "{}",
        out.stderr
    );
}

#[test]
fn npm_config_registry_is_the_fallback() {
    let server = small_registry(&["a"]);
    let root = new_root();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nixgen"));
    let out = cmd
        .args(["update", "--json", "--min-release-age", "0", "--root"])
        .arg(root.path())
        .env("NPM_CONFIG_REGISTRY", &server.url)
        .env_remove("NIXGEN_REGISTRY_TOKEN")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(plugin_file(root.path(), "a").exists());
}

#[test]
fn failed_search_refreshes_known_plugins() {
    let server = small_registry(&["known", "new"]);
    let root = new_root();
    assert_eq!(
        nixgen(root.path(), &server.url, &["--only", "known"]).code,
        0
    );
    server.latest("known", &plugin_doc("known", "1.1.0"));
    server.set("/-/v1/search", Reply::status(500));
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert!(
        r["search_error"]
            .as_str()
            .expect("search_error")
            .contains("HTTP 500")
    );
    assert_eq!(r["updated"][0]["name"], "known");
    assert!(!plugin_file(root.path(), "new").exists());
    // Said once, in the report (search_error above), not again on stderr.
    assert_eq!(
        out.stderr.matches("search failed").count(),
        0,
        "{}",
        out.stderr
    );
    // The text summary says it too, and only it.
    let text = nixgen(root.path(), &server.url, &[]);
    let said = format!("{}{}", text.stdout, text.stderr);
    assert_eq!(said.matches("search failed").count(), 1, "{said}");
}

/// A 404 is also what a partial mirror or an outage answers: without a
/// successful search that no longer lists the plugin, its pin must survive.
#[test]
fn a_404_alone_never_removes_a_pin() {
    let server = small_registry(&["p"]);
    let root = new_root();
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    let pinned = read(&plugin_file(root.path(), "p"));
    server.remove("/@scrypted/p/latest");

    let cases: [(&str, &[&str], &str); 3] = [
        (
            "search still lists it",
            &["--json"],
            "the registry search still lists it",
        ),
        (
            "--only, no search",
            &["--json", "--only", "p"],
            "no registry search confirmed",
        ),
        ("search failed", &["--json"], "no registry search confirmed"),
    ];
    for (case, args, why) in cases {
        if case == "search failed" {
            server.set("/-/v1/search", Reply::status(500));
        }
        let out = nixgen(root.path(), &server.url, args);
        assert_eq!(out.code, 2, "{case}: {out:?}");
        let r = out.json();
        assert!(names(&r, "removed").is_empty(), "{case}: {r}");
        assert_eq!(r["failed"][0]["name"], "p", "{case}: {r}");
        assert_eq!(r["failed"][0]["kept"], "1.0.0", "{case}: {r}");
        let error = r["failed"][0]["error"].as_str().expect("error");
        assert!(
            error.contains(why) && error.contains("/@scrypted/p/latest"),
            "{case}: {error}"
        );
        assert_eq!(read(&plugin_file(root.path(), "p")), pinned, "{case}");
    }
}

/// A partial mirror answers 404 for most documents and for the search: the
/// summary groups those 404s with a hint instead of one line each, and the
/// progress lines do not call a 404 "fetched".
#[test]
fn a_partial_mirror_s_404s_are_grouped_with_a_hint() {
    let server = small_registry(&["a", "b", "c", "d"]);
    let root = new_root();
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    for n in ["a", "b", "c"] {
        server.remove(&format!("/@scrypted/{n}/latest"));
    }
    server.set("/-/v1/search", Reply::status(404));

    let out = nixgen(root.path(), &server.url, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    let hint = "the search failed and 3 of 4 documents answer 404";
    assert!(
        out.stdout
            .contains("failed, answering 404 (old pins kept): a, b, c\n"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches(hint).count(), 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("a partial mirror, or the wrong --registry?")
    );
    assert_eq!(
        out.stdout.matches("answers 404 at").count(),
        1,
        "{}",
        out.stdout
    );
    for n in ["a", "b", "c"] {
        assert!(
            out.stderr.contains(&format!("] not found (404) {n}\n")),
            "{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(&format!("fetched {n}\n")),
            "{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("] fetched d\n"), "{}", out.stderr);

    let json = nixgen(root.path(), &server.url, &["--json"]).json();
    assert_eq!(json["failed"].as_array().map(Vec::len), Some(3), "{json}");
    assert_eq!(json["failed"][0]["not_found"], true, "{json}");
    assert_eq!(json["documents"], 4, "{json}");
    let md = nixgen(root.path(), &server.url, &["--markdown"]).stdout;
    assert!(
        md.contains("### Answering 404 (old pins kept)\n\na, b, c\n"),
        "{md}"
    );
    assert!(!md.contains("### Failed"), "{md}");

    // One 404 alone is listed as before, with its URL.
    server.latest("a", &plugin_doc("a", "1.0.0"));
    server.latest("b", &plugin_doc("b", "1.0.0"));
    let out = nixgen(root.path(), &server.url, &[]);
    assert!(!out.stdout.contains("partial mirror"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("  c (kept 1.0.0): @scrypted/c answers 404 at"),
        "{}",
        out.stdout
    );
}

/// A --root without nix/plugins is most likely the wrong directory: it is
/// refused and left empty, unless --init asks for a new tree.
#[test]
fn a_root_without_a_tree_needs_init() {
    let server = small_registry(&["a"]);
    let root = tempfile::tempdir().expect("tempdir");
    let out = nixgen(root.path(), &server.url, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("has no nix/plugins"), "{}", out.stderr);
    assert!(out.stderr.contains("--init"), "{}", out.stderr);
    assert_eq!(std::fs::read_dir(root.path()).expect("ls").count(), 0);

    let out = nixgen(root.path(), &server.url, &["--init"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(plugin_file(root.path(), "a").exists());
}

#[test]
fn search_pages_with_from() {
    let server = small_registry(&[]);
    let names_: Vec<String> = (0..3).map(|i| format!("p{i}")).collect();
    for n in &names_ {
        server.latest(n, &plugin_doc(n, "1.0.0"));
    }
    // The fake ignores the query, so script three pages of one object each.
    let page = |n: &str| {
        Reply::json(
            &json!({"objects": [{"package": {"name": format!("@scrypted/{n}")}}], "total": 3}),
        )
    };
    server.script("/-/v1/search", names_.iter().map(|n| page(n)).collect());
    let root = new_root();
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(names(&out.json(), "added"), names_);
    assert_eq!(server.hits("/-/v1/search"), 3);
}

#[test]
fn hostile_strings_stay_data() {
    let server = small_registry(&["hostile"]);
    let description = "Evil \"quote\" \\ back ${builtins.abort \"pwned\"} $${x} $ end$\nline2\ttab\r\n# not a comment '' ${\u{1b}[31m\u{202e}";
    let mut d = plugin_doc("hostile", "1.0.0-rc.1+build.5");
    d["description"] = json!(description);
    d["maintainers"] =
        json!([{"name": "Mallory\n}; evil = import /etc/passwd; {", "email": "m@x\r\ny"}]);
    d["_npmUser"] = json!({"name": "Eve\u{2028}}; x = 1; #", "email": "e@x\n{"});
    server.latest("hostile", &d);
    let root = new_root();
    let out = nixgen(root.path(), &server.url, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = read(&plugin_file(root.path(), "hostile"));
    golden("hostile.nix", &text);
    assert_eq!(
        text.lines().count(),
        16,
        "comment or string broke out of its line:\n{text}"
    );
    assert!(
        text.contains("\n# Published by: Eve }; x = 1; # <e@x {>\n"),
        "{text}"
    );
    let parsed = rnix::Root::parse(&text);
    assert!(parsed.errors().is_empty(), "{:?}", parsed.errors());
    if has_nix() {
        let got = nix_eval(&format!(
            "import {} {{ mkScryptedPlugin = x: x; }}",
            plugin_file(root.path(), "hostile").display()
        ));
        // Line breaks survive; terminal escapes and bidi overrides do not.
        let expected = description
            .replace("\r\n", "\n")
            .replace(['\u{1b}', '\u{202e}'], "");
        assert_eq!(got["meta"]["description"], expected);
        assert_eq!(got["version"], "1.0.0-rc.1+build.5");
    }
}

#[test]
fn leftovers_of_an_interrupted_run_are_swept() {
    let server = small_registry(&["a"]);
    let root = new_root();
    let p = root.path().join("nix/plugins");
    std::fs::create_dir_all(p.join(".nixgen-XYZ")).expect("mkdir");
    std::fs::write(p.join(".nixgen-tmp1"), "half").expect("write");
    std::fs::create_dir_all(p.join("a")).expect("mkdir");
    std::fs::write(p.join("a/.nixgen-tmp2"), "half").expect("write");
    std::fs::write(p.join("a/package.nix"), "# @generated by nixgen\n").expect("write");
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    let mut all: Vec<String> = walk_names(&p);
    all.sort();
    assert_eq!(all, ["a", "a/package.nix"]);
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).expect("ls").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            out.extend(
                walk_names(&e.path())
                    .into_iter()
                    .map(|c| format!("{name}/{c}")),
            );
        }
        out.push(name);
    }
    out
}

#[test]
fn hand_written_builder_is_kept_and_reported() {
    let server = small_registry(&["a"]);
    let root = new_root();
    let builder = root.path().join("nix/mk-scrypted-plugin.nix");
    std::fs::write(&builder, "{ fetchurl }: args: null\n").expect("write");
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let r = out.json();
    assert!(
        r["failed"][0]["error"]
            .as_str()
            .expect("error")
            .contains("has no `@generated by nixgen` marker"),
        "{r}"
    );
    assert_eq!(read(&builder), "{ fetchurl }: args: null\n");
    assert!(plugin_file(root.path(), "a").exists());
}

#[test]
fn metadata_change_regenerates_without_a_version_bump() {
    let server = small_registry(&["a"]);
    let root = new_root();
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    let mut d = plugin_doc("a", "1.0.0");
    d["description"] = json!("A better description");
    d["maintainers"] = json!([{"name": "someone", "email": "s@example.org"}]);
    server.latest("a", &d);
    let dry = nixgen(root.path(), &server.url, &["--dry-run", "--json"]);
    assert_eq!(
        dry.json()["updated"][0]["changed"],
        // The maintainers are also who published it, where the registry
        // names no `_npmUser`.
        json!(["description", "maintainer", "publisher"]),
        "{dry:?}"
    );
    let md = nixgen(root.path(), &server.url, &["--dry-run", "--markdown"]);
    assert!(
        md.stdout
            .contains("| 1.0.0 (regenerated: description, maintainer, publisher) |"),
        "{}",
        md.stdout
    );
    let out = nixgen(root.path(), &server.url, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("  a: 1.0.0 -> 1.0.0 (regenerated: description, maintainer, publisher)\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("; 1 file changed\n"), "{}", out.stdout);
    assert!(
        read(&plugin_file(root.path(), "a")).contains("description = \"A better description\";")
    );
}

#[test]
fn held_version_missing_from_the_registry_fails() {
    let server = small_registry(&["a"]);
    let root = new_root();
    config(root.path(), "[hold]\na = \"9.9.9\"\n");
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let err = out.json()["failed"][0]["error"]
        .as_str()
        .expect("error")
        .to_owned();
    assert!(err.contains("/@scrypted/a/9.9.9"), "{err}");
}

/// What a new user with an empty private mirror gets: a search with no
/// results and 404 for everything. Nothing may be removed.
#[test]
fn empty_mirror_removes_nothing() {
    let names_: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names_.iter().map(String::as_str).collect();
    let server = small_registry(&refs);
    let root = new_root();
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    let empty = Server::start();
    empty.search(&[]);
    let out = nixgen(root.path(), &empty.url, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let r = out.json();
    assert!(
        r["search_error"]
            .as_str()
            .expect("search_error")
            .contains("no results"),
        "{r}"
    );
    assert!(names(&r, "removed").is_empty(), "{r}");
    assert_eq!(names(&r, "failed").len(), 8, "{r}");
    for n in &refs {
        assert!(plugin_file(root.path(), n).exists(), "{n}");
    }
}

/// A search that answers, but without most of the tree (a partial mirror):
/// more than 3 removals are refused unless --allow-removals.
#[test]
fn mass_removal_is_refused_without_allow_removals() {
    let server = small_registry(&["a", "b", "c", "d", "e"]);
    let root = new_root();
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    server.search(&["@scrypted/a"]);
    for n in ["b", "c", "d", "e"] {
        server.remove(&format!("/@scrypted/{n}/latest"));
    }
    for args in [&["--json"][..], &["--dry-run"][..]] {
        let out = nixgen(root.path(), &server.url, args);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        for n in ["b", "c", "d", "e"] {
            assert!(
                out.stderr
                    .contains(&format!("  {n} 1.0.0 (no longer on the registry)")),
                "{}",
                out.stderr
            );
            assert!(plugin_file(root.path(), n).exists());
        }
        assert!(out.stderr.contains("--allow-removals"), "{}", out.stderr);
    }
    let out = nixgen(root.path(), &server.url, &["--json", "--allow-removals"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(names(&out.json(), "removed"), ["b", "c", "d", "e"]);
}

#[test]
fn markdown_summary_on_stdout_and_in_a_file() {
    let server = small_registry(&["a", "b"]);
    let root = new_root();
    assert_eq!(nixgen(root.path(), &server.url, &["--only", "a"]).code, 0);
    server.latest("a", &plugin_doc("a", "1.1.0"));
    let file = root.path().join("body.md");
    let out = nixgen_env(
        root.path(),
        &server.url,
        &["--markdown"],
        &[("NIXGEN_MARKDOWN_FILE", file.to_str().expect("utf-8"))],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(
            "| a | 1.0.0 | 1.1.0 | [@scrypted/a](https://www.npmjs.com/package/@scrypted/a/v/1.1.0) |"
        ) && out.stdout.contains("| b | – | 1.0.0 (added) |"),
        "{}",
        out.stdout
    );
    assert_eq!(read(&file), out.stdout);
    // Progress lines stay off stdout; --json and --markdown exclude each other.
    assert!(!out.stdout.contains("fetched"));
    assert_eq!(
        nixgen(root.path(), &server.url, &["--json", "--markdown"]).code,
        2
    );
}
