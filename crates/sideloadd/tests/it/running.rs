//! A plugin is in place only while it runs: loaded, and still running at the end
//! of the run; one found dead on a later run is reported (`docs/scrypted-api.md` §10).

use std::time::Duration;

use fake_scrypted::fixture::PluginSpec;

use crate::harness::{Harness, Setup};

fn crashing_after_load(name: &str, version: &str, ms: u64) -> PluginSpec {
    let mut s = PluginSpec::new(name, version);
    s.main_js = Some(format!(
        "{}{ms}\nexports.default = class Plugin {{}};\n",
        fake_scrypted::CRASH_AFTER_LOAD_MARKER
    ));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_exits_right_after_loading_is_not_in_place() {
    let mut h = Harness::start(Setup {
        plugins: 2,
        ..Setup::default()
    })
    .await;
    let name = h.specs[1].name.clone();
    h.set_spec(1, crashing_after_load(&name, "1.0.0", 50));
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!("plugin {name} failed"))
            && out.stderr.contains("unexpectedly exited"),
        "{}",
        out.stderr
    );
    assert!(h.state()["plugins"].get(&name).is_none(), "not recorded");
    // Not skipped by the next run: deployed again, and failed again.
    h.server.clear_requests();
    h.run().await.assert_code(1);
    assert_eq!(h.deploys(), vec![0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_exits_a_second_after_loading_is_rolled_back() {
    let mut h = Harness::start(Setup {
        plugins: 1,
        ..Setup::default()
    })
    .await;
    h.run().await.assert_code(0);
    let v1 = h.zip_md5(0);
    let name = h.specs[0].name.clone();
    h.set_spec(0, crashing_after_load(&name, "2.0.0", 1000));
    let out = h.run().await;
    out.assert_code(1);
    // It hosted the RPC session, which went with its process: its endpoint's 503
    // tells it is not running.
    assert!(
        out.stderr.contains("2.0.0 was deployed but did not load")
            && out.stderr.contains("not running")
            && out.stderr.contains("previous version 1.0.0 was redeployed"),
        "{}",
        out.stderr
    );
    let rec = h.server.plugin(&name).expect("installed");
    assert_eq!(rec.zip_md5.as_deref(), Some(v1.as_str()));
    assert!(rec.pid.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_found_dead_on_a_later_run_is_reported_not_counted_in_place() {
    let h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    let name = h.specs[1].name.clone();
    h.server.crash_plugin(&name);
    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!("plugin {name} failed"))
            && out.stderr.contains("installed as declared but not running"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("1 of 3 plugins failed"),
        "{}",
        out.stderr
    );
    assert_eq!(h.deploys(), vec![0, 0, 0], "same files: not redeployed");
    let (code, text, _) = h.status();
    assert_eq!(code, Some(1), "{text}");
    let line = text.lines().find(|l| l.contains(&name)).expect("its line");
    assert!(line.contains("deployed but not running"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_plugin_whose_installed_zip_was_damaged_is_redeployed() {
    let h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    let name = h.specs[0].name.clone();
    h.server.crash_plugin(&name);
    let installed = h
        .volume()
        .join("plugins")
        .join(&name)
        .join("zip")
        .join(format!("1-{}.zip", h.zip_md5(0)));
    std::fs::write(&installed, b"damaged").expect("damage");
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![1, 0, 0]);
    h.assert_running(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_budget_is_load_timeout_secs() {
    let h = Harness::start(Setup {
        plugins: 1,
        load_delay: Duration::from_millis(2500),
        ..Setup::default()
    })
    .await;
    h.write_config(|c| c["loadTimeoutSecs"] = 1.into());
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("still loading after 1 s (loadTimeoutSecs)"),
        "{}",
        out.stderr
    );
    h.write_config(|c| c["loadTimeoutSecs"] = 10.into());
    h.run().await.assert_code(0);
}
