//! The main paths: first run, no-change run, one change, wiped volume, bad plugins.

use std::time::Duration;

use fake_scrypted::Route;
use fake_scrypted::fixture;

use crate::harness::{Harness, Setup, TOKEN, path_str};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_deploys_all_and_second_run_none() {
    let h = Harness::start(Setup::default()).await;
    let out = h.run().await;
    out.assert_code(0);
    assert_eq!(h.deploys(), vec![1, 1, 1]);
    for i in 0..3 {
        h.assert_running(i);
        let installed = h
            .volume()
            .join("plugins")
            .join(&h.specs[i].name)
            .join("zip")
            .join(format!("1-{}.zip", h.zip_md5(i)));
        assert!(installed.is_file(), "{}", installed.display());
    }
    // Deploys were streamed with a length, never chunked, with the right type.
    for r in h
        .server
        .requests()
        .iter()
        .filter(|r| r.route == Some(Route::Deploy))
    {
        assert!(!r.chunked);
        assert_eq!(r.content_type.as_deref(), Some("application/zip"));
        assert_eq!(r.content_length, Some(r.body_len));
    }
    // Setup always precedes deploy for each plugin.
    for s in &h.specs {
        let routes: Vec<_> = h
            .server
            .sideload_requests(&s.name)
            .iter()
            .map(|r| r.route)
            .collect();
        assert_eq!(routes, vec![Some(Route::Setup), Some(Route::Deploy)]);
    }
    assert!(
        !out.stderr.contains(TOKEN),
        "token leaked into logs:\n{}",
        out.stderr
    );
    let state = std::fs::read_to_string(h.state_file()).expect("state written");
    assert!(state.contains(&h.zip_md5(2)), "{state}");

    let pids: Vec<_> = (0..3)
        .map(|i| h.server.plugin(&h.specs[i].name).expect("p").pid)
        .collect();
    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(0);
    assert_eq!(h.deploys(), vec![0, 0, 0], "second run must not redeploy");
    assert!(
        h.server.requests().iter().all(|r| r.route.is_none()),
        "no setup either: {:?}",
        h.server.requests()
    );
    let pids_after: Vec<_> = (0..3)
        .map(|i| h.server.plugin(&h.specs[i].name).expect("p").pid)
        .collect();
    assert_eq!(pids, pids_after, "no plugin restarted");
    assert!(
        out.stderr.contains("3 plugins in place, 3 skipped"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_plugin_is_the_only_one_redeployed() {
    let mut h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    h.bump(1, "1.0.1");
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![0, 1, 0]);
    h.assert_running(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_volume_gets_everything_again() {
    let h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    h.server.wipe(Duration::from_millis(200));
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![1, 1, 1]);
    for i in 0..3 {
        h.assert_running(i);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_volume_the_endpoints_confirm_and_guard_skips() {
    let h = Harness::start(Setup {
        use_volume: false,
        ..Setup::default()
    })
    .await;
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![1, 1, 1]);
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![0, 0, 0]);
    // The server lost everything: the endpoints say "not found", so all go again.
    h.server.wipe(Duration::from_millis(100));
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_zip_is_never_sent_and_the_others_still_deploy() {
    let h = Harness::start(Setup::default()).await;
    fixture::truncate_zip(&h.plugin_dir(1), 0.7).expect("truncate");
    let out = h.run().await;
    out.assert_code(1);
    assert_eq!(h.deploys(), vec![1, 0, 1]);
    assert!(
        h.server.sideload_requests(&h.specs[1].name).is_empty(),
        "not even setup for the corrupt one"
    );
    assert!(
        out.stderr.contains("plugin @scrypted/test-1 failed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("plugins[1]"), "{}", out.stderr);
    h.assert_running(0);
    h.assert_running(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_zip_does_not_touch_the_running_version() {
    let mut h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    let before = h.server.plugin(&h.specs[0].name).expect("p");
    // A new version whose zip has a bad CRC, and one whose package.json is `{}`.
    h.bump(0, "2.0.0");
    fixture::corrupt_zip_data(&h.plugin_dir(0)).expect("corrupt");
    h.bump(2, "2.0.0");
    std::fs::write(h.plugin_dir(2).join("package.json"), "{}").expect("pj");
    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(1);
    assert!(h.server.requests().iter().all(|r| r.route.is_none()));
    let after = h.server.plugin(&h.specs[0].name).expect("p");
    assert_eq!(
        before.pid, after.pid,
        "old version untouched, still running"
    );
    assert_eq!(before.zip_md5, after.zip_md5);
    assert!(
        out.stderr.contains("test-0") && out.stderr.contains("test-2"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("2 of 3 plugins failed"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_record_is_repaired_by_setup() {
    let h = Harness::start(Setup::default()).await;
    // What an unvalidated sideloader leaves behind.
    h.server.seed_setup(&h.specs[0].name, serde_json::json!({}));
    h.run().await.assert_code(0);
    h.assert_running(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_each_plugin() {
    let mut h = Harness::start(Setup::default()).await;
    let status = |h: &Harness| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sideloadd"))
            .args(["status", "--config", path_str(&h.config)])
            .output()
            .expect("status");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = status(&h);
    assert_eq!(code, Some(1));
    assert_eq!(text.matches("not deployed").count(), 3, "{text}");
    h.run().await.assert_code(0);
    let (code, text) = status(&h);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.ends_with("  deployed")).count(),
        3,
        "{text}"
    );
    h.bump(2, "1.1.0");
    let (code, text) = status(&h);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("outdated: 1.0.0 deployed, 1.1.0 declared"),
        "{text}"
    );
}
