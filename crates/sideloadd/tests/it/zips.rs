//! Zips that would take a plugin down are never sent; a deploy that fails after
//! Scrypted killed the plugin puts the previous version back
//! (`docs/scrypted-api.md` §4-5).

use fake_scrypted::fixture::{RawEntry, plugin_entries, write_raw_plugin};

use crate::harness::{Harness, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zips_the_extractor_chokes_on_are_never_sent() {
    let h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    let before: Vec<_> = (0..3)
        .map(|i| h.server.plugin(&h.specs[i].name).expect("installed"))
        .collect();
    let mut lying = RawEntry::new("fs/a.js", b"hello");
    lying.central_size = Some(4);
    lying.local_size = Some(4);
    let mut huge = RawEntry::new("fs/zeros", b"");
    huge.central_size = Some(1 << 31);
    let cases = [
        vec![lying],
        vec![RawEntry::new("a", b"f"), RawEntry::new("a/b", b"g")],
        vec![huge],
    ];
    for (i, extra) in cases.into_iter().enumerate() {
        let mut entries = plugin_entries();
        entries.extend(extra);
        write_raw_plugin(&h.plugin_dir(i), &h.specs[i].name, "9.0.0", &entries).expect("write");
    }
    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(1);
    assert!(
        h.server.requests().iter().all(|r| r.route.is_none()),
        "nothing sent: {:?}",
        h.server.requests()
    );
    for (i, why) in ["the CRC", "is a file and also a directory", "2 GiB or more"]
        .iter()
        .enumerate()
    {
        assert!(out.stderr.contains(why), "{why}:\n{}", out.stderr);
        let now = h.server.plugin(&h.specs[i].name).expect("installed");
        assert_eq!(
            (now.pid, now.zip_md5),
            (before[i].pid, before[i].zip_md5.clone())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_fails_after_the_kill_is_not_retried_and_rolls_back() {
    let mut h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    let old_md5 = h.zip_md5(0);
    h.bump(0, "2.0.0");
    h.server
        .fail_next_deploy_after_kill("Error: ADM-ZIP: CRC32 checksum failed \"fs/x.js\"");
    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(1);
    // The 2.0.0 deploy once (deterministic: not retried), then 1.0.0 again.
    assert_eq!(h.deploys(), vec![2, 0, 0]);
    let rec = h.server.plugin(&h.specs[0].name).expect("installed");
    assert_eq!(rec.zip_md5.as_deref(), Some(old_md5.as_str()));
    assert!(rec.pid.is_some(), "the old version runs again");
    assert!(
        out.stderr.contains("CRC32 checksum failed")
            && out.stderr.contains("previous version 1.0.0 was redeployed"),
        "{}",
        out.stderr
    );
    // The declared version is tried again by the next run.
    h.server.clear_requests();
    h.run().await.assert_code(0);
    assert_eq!(h.deploys(), vec![1, 0, 0]);
    h.assert_running(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_before_the_kill_needs_no_rollback() {
    let mut h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    h.bump(1, "2.0.0");
    for _ in 0..sideloadd::run::MAX_ATTEMPTS {
        h.server.reset_next(fake_scrypted::Route::Deploy);
    }
    h.server.clear_requests();
    let out = h.run().await;
    out.assert_code(1);
    assert!(!out.stderr.contains("rolled back"), "{}", out.stderr);
    let rec = h.server.plugin(&h.specs[1].name).expect("installed");
    assert!(rec.pid.is_some(), "never killed");
}
