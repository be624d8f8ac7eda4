//! What a run does when the server, the volume or the state directory is not as
//! expected: a wrong volume, a deterministic deploy error, a Logger over 16 MiB, a
//! stalled RPC, a damaged kept copy, a token file others can read, and logging at
//! trace level.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use fake_scrypted::Route;
use serde_json::json;

use crate::harness::{Harness, Setup, TOKEN, path_str, run_cmd};
use crate::rpc::throwing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_volume_is_reported_and_nothing_is_redeployed() {
    let h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    // Not Scrypted's volume at all, then one that looks like it but holds none of
    // the installed plugins.
    let empty = h.dir.path().join("not-the-volume");
    std::fs::create_dir_all(&empty).expect("dir");
    let other = h.dir.path().join("another-volume");
    std::fs::create_dir_all(other.join("scrypted.db")).expect("dir");
    for (wrong, said) in [
        (&empty, "has no scrypted.db"),
        (&other, "none of them is in it"),
    ] {
        h.write_config(|c| c["volume"] = json!(wrong));
        h.server.clear_requests();
        let out = h.run().await;
        out.assert_code(0);
        assert!(
            out.stderr.contains("the volume looks wrong") && out.stderr.contains(said),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("3 plugins in place, 3 skipped"),
            "{}",
            out.stderr
        );
        assert_eq!(h.deploys(), vec![0, 0, 0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deterministic_deploy_error_is_not_retried_and_the_record_is_kept() {
    let mut h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    let name = h.specs[0].name.clone();
    let pid = h.server.plugin(&name).expect("installed").pid;
    let v1 = h.zip_md5(0);
    h.bump(0, "2.0.0");
    h.server.fail_deploys_before_kill(Some(
        "TypeError: Cannot read properties of undefined (reading 'slice')",
    ));
    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr.contains("TypeError") && out.stderr.contains("after 1 attempt"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("1.0.0 still runs, and is what Scrypted stores again"),
        "{}",
        out.stderr
    );
    // The failed deploy, then 1.0.0 stored again without a restart; no retry.
    assert_eq!(h.deploys(), vec![2, 0, 0]);
    let rec = h.server.plugin(&name).expect("installed");
    assert_eq!(rec.pid, pid, "untouched");
    assert_eq!(
        rec.package_json["version"], "1.0.0",
        "stored record put back"
    );
    assert_eq!(
        rec.zip_md5.as_deref(),
        Some(v1.as_str()),
        "stored zip put back"
    );
    assert_eq!(
        h.state()["plugins"][&name]["version"],
        "1.0.0",
        "record kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logger_over_16_mib_does_not_stop_load_confirmation() {
    let h = Harness::start(Setup::default()).await;
    assert!(h.server.wait_up(Duration::from_secs(5)).await);
    // Other devices' entries: the whole Logger answers more than a WebSocket frame
    // may carry by default.
    h.server.add_log_noise(17 << 20);
    let out = h.run().await;
    out.assert_code(0);
    assert!(
        out.stderr.contains("3 plugins in place, 0 skipped"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_rpc_cannot_confirm_and_never_rolls_back() {
    let mut h = Harness::start(Setup {
        plugins: 1,
        ..Setup::default()
    })
    .await;
    h.run().await.assert_code(0);
    let name = h.specs[0].name.clone();
    h.bump(0, "2.0.0");
    h.server.stall_rpc(true);
    h.write_config(|c| c["loadTimeoutSecs"] = 2.into());
    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr.contains("could not be confirmed")
            && out.stderr.contains("not rolled back")
            && !out.stderr.contains("rolling back"),
        "{}",
        out.stderr
    );
    assert_eq!(
        h.deploys(),
        vec![1],
        "2.0.0 sent once, 1.0.0 never sent back"
    );
    h.assert_running(0);
    assert_eq!(h.state()["pending"][&name]["deploying"]["version"], "2.0.0");
    // Once the server answers again, the next run confirms 2.0.0 without sending it.
    h.server.stall_rpc(false);
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![0]);
    assert_eq!(h.state()["plugins"][&name]["version"], "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_kept_copy_is_replaced_by_the_next_good_run() {
    let mut h = Harness::start(Setup {
        plugins: 1,
        ..Setup::default()
    })
    .await;
    h.run().await.assert_code(0);
    let name = h.specs[0].name.clone();
    let kept = h
        .dir
        .path()
        .join("state/kept")
        .join(name.replace('/', "+"))
        .join(h.zip_md5(0))
        .join("plugin.zip");
    std::fs::write(&kept, b"damaged").expect("damage");
    let out = h.run().await;
    out.assert_code(0);
    assert!(out.stderr.contains("replacing it"), "{}", out.stderr);
    let copy = fake_scrypted::md5_hex(&std::fs::read(&kept).expect("kept"));
    assert_eq!(copy, h.zip_md5(0));
    // And it serves: a bad upgrade is rolled back to it.
    h.set_spec(0, throwing(&name, "2.0.0", "boom"));
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr.contains("previous version 1.0.0 was redeployed"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_readable_by_others_is_warned_about() {
    let h = Harness::start(Setup {
        plugins: 1,
        ..Setup::default()
    })
    .await;
    let token = h.dir.path().join("token");
    let warning = "tokenFile is readable by every user";
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = h.run().await;
    out.assert_code(0);
    assert!(out.stderr.contains(warning), "{}", out.stderr);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = h.run().await;
    out.assert_code(0);
    assert!(!out.stderr.contains(warning), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_logged_at_trace_level() {
    let h = Harness::start(Setup::default()).await;
    let password = "trace-Password-5e1d";
    let file = h.dir.path().join("admin-password");
    std::fs::write(&file, format!("{password}\n")).expect("password file");
    h.write_config(|c| c["adminPasswordFile"] = json!(file));
    let mut cmd = h.command(&["run", "--config", path_str(&h.config)]);
    cmd.env("RUST_LOG", "trace");
    let out = run_cmd(cmd).await;
    out.assert_code(0);
    // The run did use RPC (the password is set over it) and logged at trace.
    assert!(h.server.add_user_calls() > 0);
    assert!(out.stderr.contains("TRACE"), "{}", out.stderr);
    for secret in [TOKEN, password] {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "{secret} was logged at trace level"
        );
    }
    assert!(
        h.server
            .requests()
            .iter()
            .any(|r| r.route == Some(Route::Deploy))
    );
}
