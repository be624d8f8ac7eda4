//! `nixgen keys`: the only way pinned registry keys change, and it shows
//! the change.

use std::process::Command;

use serde_json::json;

use crate::trust::Key;
use crate::*;

fn keys(root: &Path, registry: &str, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_nixgen"))
        .arg("keys")
        .arg("--root")
        .arg(root)
        .args(["--registry", registry])
        .args(args)
        .env_remove("NIXGEN_REGISTRY_TOKEN")
        .env_remove("NIXGEN_REGISTRY_TOKEN_FILE")
        .output()
        .expect("run nixgen keys");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: Duration::ZERO,
    }
}

fn serve(server: &Server, list: &[&Key]) {
    let keys: Vec<_> = list
        .iter()
        .map(|k| {
            json!({"expires": null, "keyid": k.keyid, "keytype": "ecdsa-sha2-nistp256",
                        "scheme": "ecdsa-sha2-nistp256", "key": k.public_b64, "pemkey": "ignored"})
        })
        .collect();
    server.set("/-/npm/v1/keys", Reply::json(&json!({ "keys": keys })));
}

#[test]
fn keys_are_pinned_only_by_the_command_which_shows_the_change() {
    let server = Server::start();
    let (first, second) = (
        Key::generate("SHA256:first"),
        Key::generate("SHA256:second"),
    );
    serve(&server, &[&first]);
    let root = new_root();
    let file = root.path().join("nix/plugins/registry-keys.json");

    let out = keys(root.path(), &server.url, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("keys changed\n  + SHA256:first (ecdsa-sha2-nistp256, expires never) "),
        "{}",
        out.stdout
    );
    let pinned: Value = serde_json::from_str(&read(&file)).expect("json");
    assert_eq!(
        pinned[&server.url]["keys"][0]["key"],
        first.public_b64.as_str()
    );
    assert!(pinned[&server.url]["keys"][0].get("pemkey").is_none());

    let out = keys(root.path(), &server.url, &[]);
    assert!(out.stdout.contains("keys unchanged"), "{}", out.stdout);

    // A rotation is shown; --dry-run keeps the old pin, and `update` never
    // fetches keys.
    serve(&server, &[&second]);
    let before = read(&file);
    let out = keys(root.path(), &server.url, &["--dry-run"]);
    assert!(
        out.stdout.contains("  + SHA256:second") && out.stdout.contains("  - SHA256:first"),
        "{}",
        out.stdout
    );
    assert_eq!(read(&file), before);
    server.search(&["@scrypted/a"]);
    server.latest("a", &plugin_doc("a", "1.0.0"));
    nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(server.hits("/-/npm/v1/keys"), 3);
    assert_eq!(keys(root.path(), &server.url, &[]).code, 0);
    assert!(read(&file).contains("SHA256:second") && !read(&file).contains("SHA256:first"));
}

#[test]
fn a_registry_without_keys_or_with_unusable_ones_is_refused() {
    let server = Server::start();
    let root = new_root();
    let out = keys(root.path(), &server.url, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("serves no signing keys"),
        "{}",
        out.stderr
    );
    server.set(
        "/-/npm/v1/keys",
        Reply::json(&json!({"keys": [{"expires": null, "keyid": "x", "keytype": "ssh-rsa", "scheme": "ssh-rsa", "key": "AAAA"}]})),
    );
    let out = keys(root.path(), &server.url, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("cannot use"), "{}", out.stderr);
    assert!(!root.path().join("nix/plugins/registry-keys.json").exists());
}
