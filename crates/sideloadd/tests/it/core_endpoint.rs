//! `@scrypted/core`'s endpoint is never touched unless core is known installed: on
//! a server without core, any request under `/endpoint/@scrypted/core/` makes it
//! download npm's latest core (`docs/scrypted-api.md` §8). And what core does or
//! does not do is never blamed on a plugin.

use fake_scrypted::fixture::PluginSpec;

use crate::harness::{Harness, Setup, hand_install};

const CORE: &str = "@scrypted/core";

fn with_core(h: &mut Harness) {
    h.set_spec(0, PluginSpec::new(CORE, "0.3.147"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_run_and_prune_never_make_scrypted_fetch_core() {
    let mut h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    with_core(&mut h);
    // Declared, not installed: status only looks.
    let (code, text, _) = h.status();
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(h.server.core_install_attempts(), 0, "status");
    h.run().await.assert_code(0);
    assert!(h.server.plugin(CORE).is_some());
    // Uninstalled by hand: the state still claims it.
    assert!(h.server.remove_plugin(CORE));
    h.status();
    assert_eq!(h.server.core_install_attempts(), 0, "status after removal");
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.server.core_install_attempts(), 0, "run after removal");
    assert_eq!(h.deploys(), vec![1, 0, 0], "put back through sideload");
    // No longer declared, pruned (with test-0, which core replaced in the config),
    // and the runs after it.
    h.write_config(|c| {
        c["plugins"].as_array_mut().expect("list").remove(0);
        c["prune"] = true.into();
    });
    let out = h.run().await;
    out.assert_code(0);
    assert!(out.stderr.contains("2 pruned"), "{}", out.stderr);
    assert!(h.server.plugin(CORE).is_none());
    h.run().await.assert_code(0);
    h.status();
    assert_eq!(h.server.core_install_attempts(), 0, "prune");
    assert!(!h.server.crashed_by_websocket());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_volume_core_is_never_an_rpc_host_on_a_claim() {
    let mut h = Harness::start(Setup {
        use_volume: false,
        ..Setup::default()
    })
    .await;
    with_core(&mut h);
    h.run().await.assert_code(0);
    assert!(h.server.remove_plugin(CORE));
    h.status();
    h.run().await.assert_code(0);
    assert_eq!(h.server.core_install_attempts(), 0);
    assert!(h.server.plugin(CORE).is_some(), "put back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_plugin_alone_is_the_only_failure_named() {
    let mut h = Harness::start(Setup {
        plugins: 1,
        ..Setup::default()
    })
    .await;
    let mut crash = PluginSpec::new(&h.specs[0].name.clone(), "1.0.0");
    crash.main_js = Some(format!("{}\n", fake_scrypted::CRASH_MARKER));
    h.set_spec(0, crash);
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("1 of 1 plugins failed: @scrypted/test-0")
            && !out.stderr.contains("failed: @scrypted/core")
            && !out.stderr.contains("plugin @scrypted/core failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("no @scrypted/core installed"),
        "the volume says so: {}",
        out.stderr
    );
    assert_eq!(h.server.core_install_attempts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_to_turn_off_auto_update_is_its_own_line_not_a_plugin() {
    let mut h = Harness::start(Setup::default()).await;
    with_core(&mut h);
    h.server.fail_turn_off(true);
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("error: cannot make sure Scrypted's plugin auto-update is off")
            && out
                .stderr
                .contains("3 plugins in place, 0 skipped; plugin auto-update not known to be off")
            && !out.stderr.contains("plugin @scrypted/core failed"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_installed_by_hand_comes_from_the_server_and_its_auto_update_is_turned_off() {
    let mut h = Harness::start(Setup {
        plugins: 1,
        ..Setup::default()
    })
    .await;
    hand_install(&h, &PluginSpec::new(CORE, "0.3.147")).await;
    let mut crash = PluginSpec::new(&h.specs[0].name.clone(), "1.0.0");
    crash.main_js = Some(format!("{}\n", fake_scrypted::CRASH_MARKER));
    h.set_spec(0, crash);
    // Core creates its automation shortly after loading.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("turned off Scrypted's plugin auto-update")
            && !out.stderr.contains("no @scrypted/core installed"),
        "{}",
        out.stderr
    );
    assert_eq!(h.server.automation().map(|(_, on)| on), Some(false));
}
