//! Readiness, authentication and every injected server fault.

use std::time::Duration;

use fake_scrypted::Route;

use crate::harness::{Harness, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_fails_fast_and_says_so() {
    let h = Harness::start(Setup {
        token_in_file: "not-the-token\n".into(),
        ready_timeout_secs: 60,
        ..Setup::default()
    })
    .await;
    let out = h.run().await;
    out.assert_code(3);
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    assert!(out.stderr.contains("rejected the token"), "{}", out.stderr);
    assert!(
        out.stderr.contains("SCRYPTED_ADMIN_TOKEN"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("not-the-token"),
        "token leaked:\n{}",
        out.stderr
    );
    assert!(h.server.requests().iter().all(|r| r.route.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_past_the_timeout_fails_clearly() {
    let h = Harness::start(Setup {
        startup_delay: Duration::from_secs(3600),
        ready_timeout_secs: 2,
        ..Setup::default()
    })
    .await;
    fake_scrypted::fixture::truncate_zip(&h.plugin_dir(2), 0.5).expect("truncate");
    let out = h.run().await;
    out.assert_code(3);
    assert!(out.elapsed >= Duration::from_secs(2), "{:?}", out.elapsed);
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    assert!(
        out.stderr.contains("was not ready within 2 s"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.to_lowercase().contains("refused"),
        "names the cause:\n{}",
        out.stderr
    );
    // Validation ran while waiting; its findings are not lost.
    assert!(
        out.stderr.contains("invalid plugin") && out.stderr.contains("@scrypted/test-2"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_file_is_fatal_and_named() {
    let h = Harness::start(Setup::default()).await;
    std::fs::remove_file(h.dir.path().join("token")).expect("rm");
    let out = h.run().await;
    out.assert_code(3);
    assert!(
        out.stderr.contains("cannot read tokenFile"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_through_a_slow_start() {
    let h = Harness::start(Setup {
        startup_delay: Duration::from_millis(1500),
        ..Setup::default()
    })
    .await;
    let out = h.run().await;
    out.assert_code(0);
    assert!(out.elapsed >= Duration::from_millis(1500));
    assert_eq!(h.deploys(), vec![1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_refused_connections_mid_run() {
    let h = Harness::start(Setup::default()).await;
    assert!(h.server.wait_up(Duration::from_secs(5)).await);
    // Probe, then plugin 0's setup+deploy+... : the port closes after the 3rd request
    // for 2 s, in the middle of the run.
    h.server.go_down_after_requests(3, Duration::from_secs(2));
    let out = h.run().await;
    out.assert_code(0);
    for i in 0..3 {
        h.assert_running(i);
    }
    assert_eq!(h.server.boots(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_reset_mid_upload() {
    let h = Harness::start(Setup::default()).await;
    h.server.reset_next(Route::Deploy);
    let out = h.run().await;
    out.assert_code(0);
    assert_eq!(h.deploys(), vec![2, 1, 1]);
    let cut = h
        .server
        .requests()
        .into_iter()
        .find(|r| r.status.is_none())
        .expect("one upload was cut");
    assert!(cut.body_len < cut.content_length.expect("length"));
    for i in 0..3 {
        h.assert_running(i);
    }
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_one_500_on_setup_and_on_deploy() {
    let h = Harness::start(Setup::default()).await;
    h.server.fail_next(Route::Setup);
    h.server.fail_next(Route::Deploy);
    let out = h.run().await;
    out.assert_code(0);
    for i in 0..3 {
        h.assert_running(i);
    }
    // Plugin 0: setup 500, setup ok + deploy 500, setup ok + deploy ok.
    let statuses: Vec<_> = h
        .server
        .sideload_requests(&h.specs[0].name)
        .iter()
        .map(|r| (r.route, r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (Some(Route::Setup), Some(500)),
            (Some(Route::Setup), Some(200)),
            (Some(Route::Deploy), Some(500)),
            (Some(Route::Setup), Some(200)),
            (Some(Route::Deploy), Some(200)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_restart_between_setup_and_deploy() {
    let h = Harness::start(Setup::default()).await;
    h.server.restart_after_next_setup(Duration::from_secs(1));
    let out = h.run().await;
    out.assert_code(0);
    assert_eq!(h.server.boots(), 2);
    for i in 0..3 {
        h.assert_running(i);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_slow_answers() {
    let h = Harness::start(Setup::default()).await;
    h.server.set_slow(Duration::from_millis(400));
    let out = h.run().await;
    out.assert_code(0);
    assert_eq!(h.deploys(), vec![1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_server_errors_fail_the_plugin_by_name() {
    let h = Harness::start(Setup {
        plugins: 2,
        ..Setup::default()
    })
    .await;
    for _ in 0..sideloadd::run::MAX_ATTEMPTS {
        h.server.fail_next(Route::Deploy);
    }
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr.contains("plugin @scrypted/test-0 failed") && out.stderr.contains("500"),
        "{}",
        out.stderr
    );
    let attempts = format!("after {} attempts", sideloadd::run::MAX_ATTEMPTS);
    assert!(out.stderr.contains(&attempts), "{}", out.stderr);
    h.assert_running(1);
    // A failed plugin is not recorded as deployed: the next run tries again.
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![1, 0]);
}

/// Sends SIGTERM as systemd does on stop, and waits for sideloadd to exit
/// with its "stopped by a signal" status.
async fn stop_with_sigterm(child: tokio::process::Child) -> std::process::Output {
    let pid = child.id().expect("pid");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("stopped in time")
        .expect("wait");
    assert_eq!(out.status.code(), Some(4));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_between_requests() {
    let h = Harness::start(Setup {
        plugins: 5,
        ..Setup::default()
    })
    .await;
    h.server.set_slow(Duration::from_millis(300));
    let child = h
        .command(&["run", "--config", crate::harness::path_str(&h.config)])
        .spawn()
        .expect("spawn");
    // Wait for the first deploy to be answered, then stop it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while h.deploys()[0] == 0 {
        assert!(std::time::Instant::now() < deadline, "no deploy seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = stop_with_sigterm(child).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped by a signal"), "{stderr}");
    let deploys = h.deploys();
    assert!(deploys.iter().sum::<usize>() < 5, "{deploys:?}");
    // Nothing is left half-done: every setup is followed by its deploy.
    for s in &h.specs {
        let routes: Vec<_> = h
            .server
            .sideload_requests(&s.name)
            .iter()
            .map(|r| r.route)
            .collect();
        assert!(
            routes.is_empty() || routes == vec![Some(Route::Setup), Some(Route::Deploy)],
            "{}: {routes:?}",
            s.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_interrupts_the_readiness_wait_at_once() {
    let h = Harness::start(Setup {
        startup_delay: Duration::from_secs(3600),
        ready_timeout_secs: 600,
        ..Setup::default()
    })
    .await;
    let child = h
        .command(&["run", "--config", crate::harness::path_str(&h.config)])
        .spawn()
        .expect("spawn");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let sent = std::time::Instant::now();
    let out = stop_with_sigterm(child).await;
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 of 3 plugins in place"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_hung_deploy_within_10_s() {
    let h = Harness::start(Setup::default()).await;
    assert!(h.server.wait_up(Duration::from_secs(5)).await);
    h.server.set_slow_deploys(Duration::from_secs(120));
    let child = h
        .command(&["run", "--config", crate::harness::path_str(&h.config)])
        .spawn()
        .expect("spawn");
    // Validation, probe and the first setup take well under this.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = std::time::Instant::now();
    let out = stop_with_sigterm(child).await;
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "{:?}",
        sent.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("was abandoned"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_probe_that_hangs_does_not_outlast_the_timeout() {
    let h = Harness::start(Setup {
        ready_timeout_secs: 2,
        ..Setup::default()
    })
    .await;
    assert!(h.server.wait_up(Duration::from_secs(5)).await);
    // Every answer, the probe's included, comes after the whole budget.
    h.server.set_slow(Duration::from_secs(30));
    let out = h.run().await;
    out.assert_code(3);
    assert!(
        out.elapsed < Duration::from_millis(3500),
        "{:?}",
        out.elapsed
    );
    assert!(
        out.stderr.contains("was not ready within 2 s"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_deploy_each_plugin_once() {
    let h = Harness::start(Setup::default()).await;
    h.server.set_slow(Duration::from_millis(200));
    let (a, b) = tokio::join!(h.run(), h.run());
    a.assert_code(0);
    b.assert_code(0);
    assert_eq!(h.deploys(), vec![1, 1, 1]);
    assert!(
        a.stderr.contains("another sideloadd run is in progress")
            || b.stderr.contains("another sideloadd run is in progress"),
        "{}\n{}",
        a.stderr,
        b.stderr
    );
}
