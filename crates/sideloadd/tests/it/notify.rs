//! sd-notify messages on a real NOTIFY_SOCKET datagram socket.

use std::time::Duration;

use tokio::net::UnixDatagram;

use crate::harness::{Harness, Setup, path_str};

async fn collect(h: &Harness, watchdog_usec: Option<u64>) -> (Vec<String>, crate::harness::Output) {
    let sock_path = h.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    let msgs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = msgs.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf).await {
            // One datagram may carry several assignments; keep them in order.
            let text = String::from_utf8_lossy(&buf[..n]);
            sink.lock()
                .expect("lock")
                .extend(text.lines().map(str::to_string));
        }
    });
    let mut cmd = h.command(&["run", "--config", path_str(&h.config)]);
    cmd.env("NOTIFY_SOCKET", &sock_path);
    if let Some(usec) = watchdog_usec {
        cmd.env("WATCHDOG_USEC", usec.to_string());
    }
    let out = h.run_cmd(cmd).await;
    // Datagrams sent before exit are already queued on the socket.
    tokio::time::sleep(Duration::from_millis(100)).await;
    reader.abort();
    let _ = std::fs::remove_file(&sock_path);
    let msgs = msgs.lock().expect("lock").clone();
    (msgs, out)
}

/// Index of the first message satisfying `f`, for order checks.
fn pos(msgs: &[String], f: impl Fn(&str) -> bool) -> usize {
    msgs.iter()
        .position(|m| f(m))
        .unwrap_or_else(|| panic!("message not found in {msgs:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_then_ready_in_order() {
    let h = Harness::start(Setup {
        startup_delay: Duration::from_millis(2000),
        ..Setup::default()
    })
    .await;
    let (msgs, out) = collect(&h, None).await;
    out.assert_code(0);
    let validating = pos(&msgs, |m| m == "STATUS=validating 3 plugins");
    let waiting = pos(&msgs, |m| m.starts_with("STATUS=waiting for Scrypted ("));
    let d1 = pos(&msgs, |m| m == "STATUS=deploying test-0 (1/3)");
    let d2 = pos(&msgs, |m| m == "STATUS=deploying test-1 (2/3)");
    let d3 = pos(&msgs, |m| m == "STATUS=deploying test-2 (3/3)");
    let ready = pos(&msgs, |m| m == "READY=1");
    assert!(
        validating < waiting && waiting < d1 && d1 < d2 && d2 < d3 && d3 < ready,
        "{msgs:#?}"
    );
    assert_eq!(
        msgs[ready + 1],
        "STATUS=3 plugins in place, 0 skipped",
        "{msgs:#?}"
    );
    // Every progress update also asks systemd for more start-up time.
    assert_eq!(msgs[d1 + 1], "EXTEND_TIMEOUT_USEC=300000000", "{msgs:#?}");
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("STATUS=waiting for Scrypted (1 s): ")),
        "{msgs:#?}"
    );

    // Second run: nothing to deploy, READY with everything skipped.
    let (msgs, out) = collect(&h, None).await;
    out.assert_code(0);
    assert!(!msgs.iter().any(|m| m.contains("deploying")), "{msgs:#?}");
    let ready = pos(&msgs, |m| m == "READY=1");
    assert_eq!(
        msgs[ready + 1],
        "STATUS=3 plugins in place, 3 skipped",
        "{msgs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ready_when_a_plugin_fails() {
    let h = Harness::start(Setup::default()).await;
    fake_scrypted::fixture::truncate_zip(&h.plugin_dir(0), 0.5).expect("truncate");
    let (msgs, out) = collect(&h, None).await;
    out.assert_code(1);
    assert!(!msgs.iter().any(|m| m.contains("READY=1")), "{msgs:#?}");
    assert!(
        msgs.last()
            .is_some_and(|m| m.contains("1 of 3 plugins failed: @scrypted/test-0")),
        "{msgs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_pings_when_asked() {
    let h = Harness::start(Setup {
        startup_delay: Duration::from_millis(1500),
        ..Setup::default()
    })
    .await;
    let (msgs, out) = collect(&h, Some(200_000)).await;
    out.assert_code(0);
    let pings = msgs.iter().filter(|m| m.as_str() == "WATCHDOG=1").count();
    // About 1.4 s of waiting at one ping per 100 ms; leave room for a loaded machine.
    assert!(pings >= 5, "{pings} pings in {msgs:#?}");

    let (msgs, _) = collect(&h, None).await;
    assert!(!msgs.iter().any(|m| m == "WATCHDOG=1"), "{msgs:#?}");
}
