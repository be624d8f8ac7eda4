//! Record before act: a run stopped between a deploy and its load confirmation
//! leaves the step journaled, and the next run finishes or undoes it
//! (`crates/sideloadd/src/state.rs`).

use std::time::Duration;

use crate::harness::{Harness, Setup, kill_after_deploy};
use crate::rpc::throwing;

/// One plugin that takes long enough to load for a run to be killed meanwhile.
async fn slow_loading() -> Harness {
    Harness::start(Setup {
        plugins: 1,
        load_delay: Duration::from_secs(2),
        ..Setup::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_before_a_bad_upgrade_was_confirmed_still_rolls_it_back_later() {
    let mut h = slow_loading().await;
    h.run().await.assert_code(0);
    let v1 = h.zip_md5(0);
    let name = h.specs[0].name.clone();
    h.set_spec(0, throwing(&name, "2.0.0", "boom"));
    kill_after_deploy(&h, &name).await;

    // On disk: what was being deployed, and what to go back to.
    let state = h.state();
    let pending = &state["pending"][&name];
    assert_eq!(pending["deploying"]["version"], "2.0.0", "{state}");
    assert_eq!(pending["previous"]["version"], "1.0.0", "{state}");
    assert!(state["plugins"].get(&name).is_none(), "{state}");
    let (code, text, _) = h.status();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("deploying 2.0.0: a run stopped before its load was confirmed")
            && text.contains("puts 1.0.0 back"),
        "{text}"
    );

    // The next run finds 2.0.0 failed and puts 1.0.0 back, without sending 2.0.0 again.
    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("2.0.0 was deployed but did not load: Error: boom")
            && out.stderr.contains("previous version 1.0.0 was redeployed"),
        "{}",
        out.stderr
    );
    assert_eq!(h.deploys(), vec![1], "only the rollback");
    let rec = h.server.plugin(&name).expect("installed");
    assert_eq!(rec.zip_md5.as_deref(), Some(v1.as_str()));
    assert!(rec.loaded && rec.pid.is_some());
    let state = h.state();
    assert!(state["pending"].get(&name).is_none(), "{state}");
    assert_eq!(state["plugins"][&name]["version"], "1.0.0", "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_before_a_good_upgrade_was_confirmed_is_finished_without_redeploying() {
    let mut h = slow_loading().await;
    h.run().await.assert_code(0);
    let name = h.specs[0].name.clone();
    h.bump(0, "2.0.0");
    kill_after_deploy(&h, &name).await;
    let pid = h.server.plugin(&name).expect("installed").pid;
    // Once it has loaded, status says it runs, before any run recorded it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (code, text, _) = h.status();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("deployed and running; a run stopped before confirming its load"),
        "{text}"
    );

    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(0);
    assert!(out.stderr.contains("confirming it now"), "{}", out.stderr);
    assert_eq!(h.deploys(), vec![0], "confirmed, not sent again");
    assert_eq!(h.server.plugin(&name).expect("installed").pid, pid);
    h.assert_running(0);
    let state = h.state();
    assert_eq!(state["plugins"][&name]["version"], "2.0.0", "{state}");
    assert!(state["pending"].get(&name).is_none(), "{state}");
}
