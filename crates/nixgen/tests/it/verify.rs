//! `--verify`: tarballs are downloaded and checked before a pin changes.

use crate::*;

fn manifest(name: &str, version: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"name": format!("@scrypted/{name}"), "version": version}),
    )
    .expect("json")
}

/// Publishes `name@1.0.0` with this tarball; `hash_of` picks the bytes the
/// registry's integrity claims.
fn publish(server: &Server, name: &str, tarball: Vec<u8>, hash_of: Option<&[u8]>) {
    let mut doc = plugin_doc(name, "1.0.0");
    doc["dist"]["integrity"] = serde_json::json!(sri(hash_of.unwrap_or(&tarball)));
    server.latest(name, &doc);
    server.set(
        &format!("/@scrypted/{name}/-/{name}-1.0.0.tgz"),
        Reply::Ok(tarball),
    );
}

#[test]
fn verify_checks_hash_and_content() {
    let names_ = ["good", "tampered", "nozip", "wrongname", "notgz", "missing"];
    let server = small_registry(&names_);
    let zip: &[u8] = b"PK\x05\x06 fake zip";
    publish(
        &server,
        "good",
        tgz(&[
            ("package.json", &manifest("good", "1.0.0")),
            ("dist/plugin.zip", zip),
        ]),
        None,
    );
    publish(
        &server,
        "tampered",
        tgz(&[
            ("package.json", &manifest("tampered", "1.0.0")),
            ("dist/plugin.zip", zip),
        ]),
        Some(b"other"),
    );
    publish(
        &server,
        "nozip",
        tgz(&[("package.json", &manifest("nozip", "1.0.0"))]),
        None,
    );
    publish(
        &server,
        "wrongname",
        tgz(&[
            ("package.json", &manifest("nvr", "1.0.0")),
            ("dist/plugin.zip", zip),
        ]),
        None,
    );
    publish(&server, "notgz", b"plain text".to_vec(), None);
    publish(&server, "missing", vec![], None);
    server.remove("/@scrypted/missing/-/missing-1.0.0.tgz");

    let root = new_root();
    let out = nixgen(root.path(), &server.url, &["--verify", "--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "added"), ["good"]);
    let err = |n: &str| {
        r["failed"]
            .as_array()
            .expect("failed")
            .iter()
            .find(|f| f["name"] == n)
            .expect(n)["error"]
            .as_str()
            .expect("e")
            .to_owned()
    };
    assert!(
        err("tampered").contains("tarball does not match sha512-"),
        "{}",
        err("tampered")
    );
    assert!(err("tampered").contains("/@scrypted/tampered/-/tampered-1.0.0.tgz"));
    assert!(err("nozip").contains("lacks package/dist/plugin.zip"));
    assert!(err("wrongname").contains("says @scrypted/nvr@1.0.0"));
    assert!(err("notgz").contains("not a readable .tgz"));
    assert!(err("missing").contains("not found (HTTP 404)"));
    for n in &names_[1..] {
        assert!(!plugin_file(root.path(), n).exists(), "{n} was written");
    }
    // Without --verify a new pin is downloaded once, for the runtime-needs
    // scan, and a bad tarball does not fail it (it is recorded as not
    // scanned).
    let root = new_root();
    let before = server.hits("/@scrypted/good/-/good-1.0.0.tgz");
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    assert_eq!(server.hits("/@scrypted/good/-/good-1.0.0.tgz"), before + 1);
    assert!(plugin_file(root.path(), "tampered").exists());
}

#[test]
fn verify_failure_keeps_the_old_pin() {
    let server = small_registry(&["p"]);
    let zip: &[u8] = b"zip";
    let root = new_root();
    publish(
        &server,
        "p",
        tgz(&[
            ("package.json", &manifest("p", "1.0.0")),
            ("dist/plugin.zip", zip),
        ]),
        None,
    );
    assert_eq!(nixgen(root.path(), &server.url, &["--verify"]).code, 0);
    let old = read(&plugin_file(root.path(), "p"));
    let mut doc = plugin_doc("p", "1.1.0");
    doc["dist"]["integrity"] = serde_json::json!(sri(b"not the tarball"));
    server.latest("p", &doc);
    server.set(
        "/@scrypted/p/-/p-1.1.0.tgz",
        Reply::Ok(tgz(&[("package.json", &manifest("p", "1.1.0"))])),
    );
    let out = nixgen(root.path(), &server.url, &["--verify", "--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.json()["failed"][0]["kept"], "1.0.0");
    assert_eq!(read(&plugin_file(root.path(), "p")), old);
}

#[test]
fn token_stays_with_its_registry() {
    let metadata = small_registry(&["p"]);
    let tarballs = Server::start();
    let zip: &[u8] = b"zip";
    let tarball = tgz(&[
        ("package.json", &manifest("p", "1.0.0")),
        ("dist/plugin.zip", zip),
    ]);
    let mut doc = plugin_doc("p", "1.0.0");
    doc["dist"]["integrity"] = serde_json::json!(sri(&tarball));
    metadata.latest("p", &doc);
    tarballs.set("/@scrypted/p/-/p-1.0.0.tgz", Reply::Ok(tarball));
    let root = new_root();
    let out = nixgen_env(
        root.path(),
        &metadata.url,
        &["--verify", "--tarball-registry", &tarballs.url],
        &[("NIXGEN_REGISTRY_TOKEN", "private")],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(tarballs.hits("/@scrypted/p/-/p-1.0.0.tgz"), 1);
    assert!(
        tarballs.authorizations().is_empty(),
        "token sent to another host"
    );
    assert!(!metadata.authorizations().is_empty());
    let builder = read(&root.path().join("nix/mk-scrypted-plugin.nix"));
    assert!(
        builder.contains(&format!("\"{}/${{npmName}}/-/", tarballs.url)),
        "{builder}"
    );
}

#[test]
fn verify_skips_plugins_whose_pin_did_not_change() {
    let server = small_registry(&["p"]);
    // A real zip: a zip that cannot be scanned is scanned again next run.
    let zip = &plugin_zip(&[("main.nodejs.js", "x")])[..];
    let tarball = tgz(&[
        ("package.json", &manifest("p", "1.0.0")),
        ("dist/plugin.zip", zip),
    ]);
    publish(&server, "p", tarball.clone(), None);
    let root = new_root();
    assert_eq!(nixgen(root.path(), &server.url, &["--verify"]).code, 0);
    assert_eq!(server.hits("/@scrypted/p/-/p-1.0.0.tgz"), 1);
    let mut doc = plugin_doc("p", "1.0.0");
    doc["dist"]["integrity"] = serde_json::json!(sri(&tarball));
    doc["description"] = serde_json::json!("New words, same tarball");
    server.latest("p", &doc);
    let out = nixgen(root.path(), &server.url, &["--verify", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["updated"][0]["new"], "1.0.0");
    assert_eq!(
        server.hits("/@scrypted/p/-/p-1.0.0.tgz"),
        1,
        "unchanged pin downloaded again"
    );
}

#[test]
fn cut_download_is_retried_from_scratch() {
    let server = small_registry(&["p"]);
    let zip: &[u8] = &[7u8; 4096];
    let tarball = tgz(&[
        ("package.json", &manifest("p", "1.0.0")),
        ("dist/plugin.zip", zip),
    ]);
    publish(&server, "p", tarball.clone(), None);
    server.script(
        "/@scrypted/p/-/p-1.0.0.tgz",
        vec![Reply::Truncated(tarball)],
    );
    let root = new_root();
    let out = nixgen(root.path(), &server.url, &["--verify", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(server.hits("/@scrypted/p/-/p-1.0.0.tgz"), 2);
    assert_eq!(names(&out.json(), "added"), ["p"]);
}

/// One byte every 50 ms never trips the read timeout; the download's own
/// deadline stops it.
#[test]
fn trickling_download_hits_the_deadline() {
    let server = small_registry(&["slow"]);
    let tarball = tgz(&[
        ("package.json", &manifest("slow", "1.0.0")),
        ("dist/plugin.zip", b"PK\x05\x06 fake zip"),
    ]);
    let mut doc = plugin_doc("slow", "1.0.0");
    doc["dist"]["integrity"] = serde_json::json!(sri(&tarball));
    server.latest("slow", &doc);
    server.set(
        "/@scrypted/slow/-/slow-1.0.0.tgz",
        Reply::Trickle(tarball, Duration::from_millis(50)),
    );
    let root = new_root();
    let out = nixgen_env(
        root.path(),
        &server.url,
        &["--json", "--verify"],
        &[("NIXGEN_TARBALL_DEADLINE_MS", "700")],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.elapsed < Duration::from_secs(3), "{out:?}");
    let r = out.json();
    let err = r["failed"][0]["error"].as_str().expect("error");
    assert!(err.contains("deadline"), "{err}");
    assert!(!plugin_file(root.path(), "slow").exists());
}
