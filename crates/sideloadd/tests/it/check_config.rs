//! `sideloadd check-config`, as the NixOS module runs it at build time.

use crate::harness::{Harness, Setup, path_str};

fn check(h: &Harness) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sideloadd"))
        .args(["check-config", path_str(&h.config)])
        .output()
        .expect("check-config");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn runtime_paths_need_not_exist() {
    let h = Harness::start(Setup::default()).await;
    h.write_config(|c| {
        c["tokenFile"] = "/run/credentials/scrypted-sideload.service/token".into();
        c["stateDir"] = "/nonexistent/state".into();
        c["volume"] = "/nonexistent/volume".into();
        c["adminPasswordFile"] = "/run/credentials/scrypted-sideload.service/admin-password".into();
    });
    let (code, stdout, stderr) = check(&h);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("ok (3 plugins)"), "{stdout}");
}

type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[tokio::test]
async fn errors_name_the_key() {
    let h = Harness::start(Setup::default()).await;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| c["plugins"][2]["path"] = "rel/dir".into()),
            "`plugins[2].path`",
        ),
        (
            Box::new(|c| c["plugins"][1]["path"] = "/nonexistent/plugin".into()),
            "`plugins[1].path`",
        ),
        (
            Box::new(|c| c["plugins"][0]["name"] = "@scrypted/other".into()),
            "`plugins[0].path`",
        ),
        (Box::new(|c| c["bogus"] = 1.into()), "`bogus`"),
        (
            Box::new(|c| c["adminPasswordFile"] = "admin-password".into()),
            "`adminPasswordFile`",
        ),
        (
            Box::new(|c| c["adminUsername"] = "admin user".into()),
            "`adminUsername`",
        ),
        (
            Box::new(|c| c["server"] = "http://10.0.0.2:11080".into()),
            "`server`",
        ),
        (
            Box::new(|c| c["readyTimeoutSecs"] = (-1).into()),
            "`readyTimeoutSecs`",
        ),
        (
            Box::new(|c| c["plugins"][0]["extra"] = true.into()),
            "`plugins[0].extra`",
        ),
    ];
    for (edit, key) in cases {
        h.write_config(edit);
        let (code, _, stderr) = check(&h);
        assert_eq!(code, Some(2), "{key}: {stderr}");
        assert!(stderr.contains(key), "{key} not named in:\n{stderr}");
    }
}

#[tokio::test]
async fn every_bad_plugin_is_reported() {
    let h = Harness::start(Setup::default()).await;
    fake_scrypted::fixture::truncate_zip(&h.plugin_dir(0), 0.5).expect("truncate");
    std::fs::write(h.plugin_dir(2).join("package.json"), "{}").expect("pj");
    let (code, _, stderr) = check(&h);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("plugins[0]") && stderr.contains("plugins[2]"),
        "{stderr}"
    );
    assert!(!stderr.contains("plugins[1]"), "{stderr}");
}

#[tokio::test]
async fn run_refuses_an_invalid_config_before_anything_else() {
    let h = Harness::start(Setup::default()).await;
    h.write_config(|c| c["server"] = "http://192.0.2.1:11080".into());
    let out = h.run().await;
    out.assert_code(2);
    assert!(out.stderr.contains("allowRemote"), "{}", out.stderr);
    assert!(h.server.requests().is_empty());
}

#[tokio::test]
async fn an_empty_plugin_list_is_valid_and_needs_no_server() {
    let h = Harness::start(Setup {
        startup_delay: std::time::Duration::from_secs(3600),
        ..Setup::default()
    })
    .await;
    h.write_config(|c| c["plugins"] = serde_json::json!([]));
    let (code, stdout, _) = check(&h);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("ok (0 plugins)"), "{stdout}");
    let out = h.run().await;
    out.assert_code(0);
    assert!(out.stderr.contains("0 plugins in place"), "{}", out.stderr);
}

#[tokio::test]
async fn an_https_server_is_refused_naming_the_plain_http_port() {
    let h = Harness::start(Setup::default()).await;
    h.write_config(|c| c["server"] = "https://127.0.0.1:10443".into());
    let (code, _, stderr) = check(&h);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`server`")
            && stderr.contains("self-signed")
            && stderr.contains("SCRYPTED_INSECURE_PORT")
            && stderr.contains("http://127.0.0.1:11080"),
        "{stderr}"
    );
}
