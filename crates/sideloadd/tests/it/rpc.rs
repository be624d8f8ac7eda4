//! What sideloadd does over Scrypted's RPC (`docs/scrypted-api.md` §8-11): load
//! confirmation, the auto-update automation, drift, prune, no volume.

use std::time::Duration;

use fake_scrypted::Latest;
use fake_scrypted::fixture::PluginSpec;

use crate::harness::{Harness, Setup, path_str};

pub(crate) fn throwing(name: &str, version: &str, message: &str) -> PluginSpec {
    let mut s = PluginSpec::new(name, version);
    s.main_js = Some(format!(
        "{}Error: {message}\nthrow new Error(\"{message}\");\n",
        fake_scrypted::FAIL_LOAD_MARKER
    ));
    s
}

fn status(h: &Harness) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sideloadd"))
        .args(["status", "--config", path_str(&h.config)])
        .output()
        .expect("status");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_fails_to_load_is_failed_with_scrypteds_words() {
    let mut h = Harness::start(Setup::default()).await;
    h.set_spec(
        1,
        throwing(&h.specs[1].name.clone(), "1.0.0", "no camera found"),
    );
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr.contains("plugin @scrypted/test-1 failed")
            && out.stderr.contains("Error: no camera found"),
        "{}",
        out.stderr
    );
    assert!(!h.server.crashed_by_websocket());
    assert!(h.server.pongs() > 0, "engine.io pings are answered");
    // Not recorded: the next run deploys it again, and only it.
    h.server.clear_requests();
    h.run().await.assert_code(1);
    assert_eq!(h.deploys(), vec![0, 1, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_that_fails_to_load_is_rolled_back() {
    let mut h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    let old_md5 = h.zip_md5(0);
    h.set_spec(0, throwing(&h.specs[0].name.clone(), "2.0.0", "boom"));
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("2.0.0 was deployed but did not load: Error: boom")
            && out.stderr.contains("previous version 1.0.0 was redeployed"),
        "{}",
        out.stderr
    );
    let rec = h.server.plugin(&h.specs[0].name).expect("installed");
    assert_eq!(rec.zip_md5.as_deref(), Some(old_md5.as_str()));
    assert!(rec.loaded && rec.pid.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_crashes_at_start_is_failed() {
    let mut h = Harness::start(Setup::default()).await;
    let mut crash = PluginSpec::new(&h.specs[2].name.clone(), "1.0.0");
    crash.main_js = Some(format!(
        "{}\nprocess.exit(1);\n",
        fake_scrypted::CRASH_MARKER
    ));
    h.set_spec(2, crash);
    let out = h.run().await;
    out.assert_code(1);
    assert!(out.stderr.contains("unexpectedly exited"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_auto_update_is_turned_off_and_pins_hold() {
    let mut h = Harness::start(Setup::default()).await;
    h.set_spec(0, PluginSpec::new("@scrypted/core", "0.3.147"));
    let out = h.run().await;
    out.assert_code(0);
    let (_, on) = h.server.automation().expect("core created its automation");
    assert!(!on, "turned off");
    assert!(
        out.stderr
            .contains("turned off Scrypted's plugin auto-update"),
        "{}",
        out.stderr
    );
    let newer = PluginSpec::new(&h.specs[1].name, "9.0.0");
    assert!(h.server.fire_auto_update(&[latest(&h, &newer)]).is_empty());
    // The next run finds it off and says so.
    let out = h.run().await;
    out.assert_code(0);
    assert!(
        out.stderr.contains("plugin auto-update is off"),
        "{}",
        out.stderr
    );
}

fn latest(h: &Harness, spec: &PluginSpec) -> Latest {
    let dir = h.dir.path().join("latest");
    spec.write(&dir).expect("write");
    Latest {
        package_json: spec.package_json(),
        zip: std::fs::read(dir.join("plugin.zip")).expect("zip"),
        deprecated: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auto_update_allowed_drift_is_reported_and_repaired() {
    let mut h = Harness::start(Setup::default()).await;
    h.set_spec(0, PluginSpec::new("@scrypted/core", "0.3.147"));
    h.write_config(|c| c["autoUpdate"] = true.into());
    h.run().await.assert_code(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, on) = h.server.automation().expect("automation");
    assert!(on, "left alone");
    let newer = PluginSpec::new(&h.specs[1].name, "1.0.9");
    assert_eq!(h.server.fire_auto_update(&[latest(&h, &newer)]).len(), 1);
    let (code, text) = status(&h);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("drifted: 1.0.9 installed, 1.0.0 declared"),
        "{text}"
    );
    // Without the server (nothing listens there): the volume shows another zip.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    h.write_config(|c| {
        c["autoUpdate"] = true.into();
        c["server"] = url.into();
    });
    let (code, text, stderr) = h.status();
    assert_eq!(code, Some(3), "the server was not reached: {stderr}");
    assert!(stderr.contains("Scrypted was not reached"), "{stderr}");
    assert!(
        text.contains("drifted: another zip than the declared one"),
        "{text}"
    );
    h.write_config(|c| c["autoUpdate"] = true.into());
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![0, 1, 0]);
    h.assert_running(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_only_what_sideloadd_installed() {
    let h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    // Installed by hand, never by sideloadd.
    let hand = PluginSpec::new("@scrypted/by-hand", "1.0.0");
    hand.write(&h.dir.path().join("by-hand")).expect("write");
    h.server.seed_setup(&hand.name, hand.package_json());
    // Plugin 2 leaves the config.
    let without_2 = |c: &mut serde_json::Value| {
        c["plugins"].as_array_mut().expect("list").truncate(2);
    };
    h.write_config(without_2);
    let out = h.run().await;
    out.assert_code(0);
    assert!(
        h.server.plugin(&h.specs[2].name).is_some(),
        "kept without prune"
    );
    assert!(out.stderr.contains("would remove it"), "{}", out.stderr);
    let (_, text) = status(&h);
    assert!(
        text.contains("@scrypted/test-2") && text.contains("prune would remove"),
        "{text}"
    );
    h.write_config(|c| {
        without_2(c);
        c["prune"] = true.into();
    });
    let out = h.run().await;
    out.assert_code(0);
    assert!(h.server.plugin(&h.specs[2].name).is_none(), "pruned");
    assert!(
        out.stderr
            .contains("2 plugins in place, 2 skipped, 1 pruned"),
        "{}",
        out.stderr
    );
    assert!(h.server.plugin(&hand.name).is_some(), "never touched");
    assert!(h.server.plugin(&h.specs[0].name).is_some());
    // Nothing declared any more: prune still runs and removes the rest.
    h.write_config(|c| {
        c["plugins"] = serde_json::json!([]);
        c["prune"] = true.into();
    });
    h.run().await.assert_code(0);
    assert!(h.server.plugin(&h.specs[0].name).is_none());
    assert!(h.server.plugin(&h.specs[1].name).is_none());
    assert!(h.server.plugin(&hand.name).is_some(), "never touched");
    assert!(!h.server.crashed_by_websocket());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_volume_the_installed_version_comes_from_rpc() {
    let h = Harness::start(Setup {
        use_volume: false,
        ..Setup::default()
    })
    .await;
    h.run().await.assert_code(0);
    // These test plugins have no HTTP handler: their endpoints answer "not found"
    // like missing ones; only RPC can tell.
    let r = reqwest::get(format!("{}/endpoint/{}/", h.server.url(), h.specs[0].name))
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![0, 0, 0]);
    assert!(
        h.server
            .requests()
            .iter()
            .all(|r| !r.path.ends_with(&format!("{}/", h.specs[0].name))),
        "no endpoint guessing"
    );
}
