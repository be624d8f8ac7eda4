//! What a person running sideloadd by hand sees: both ways of naming the
//! config, the example config, causes said once, and a wait that reports
//! itself.

use std::time::Duration;

use fake_scrypted::fixture::PluginSpec;

use crate::harness::{Harness, Setup, command, path_str};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/example-config.json");

#[tokio::test]
async fn every_command_takes_the_config_both_ways() {
    let h = Harness::start(Setup::default()).await;
    let config = path_str(&h.config);
    for cmd in ["check-config", "status"] {
        let flag = h.run_cmd(command(&[cmd, "--config", config])).await;
        let positional = h.run_cmd(command(&[cmd, config])).await;
        assert_ne!(flag.code, Some(2), "{cmd} --config: {}", flag.stderr);
        assert_eq!(flag.code, positional.code, "{cmd}: {}", positional.stderr);
        assert_eq!(flag.stdout, positional.stdout, "{cmd}");
    }
    h.run_cmd(command(&["run", config])).await.assert_code(0);
    let both = h
        .run_cmd(command(&["check-config", config, "--config", config]))
        .await;
    both.assert_code(2);
}

#[tokio::test]
async fn help_documents_the_config_and_the_exit_codes() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["check-config", "--help"],
    ] {
        let out = crate::harness::run_cmd(command(args)).await;
        out.assert_code(0);
        assert!(
            out.stdout.contains("Exit codes:"),
            "{args:?}:\n{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("3  nothing could be provisioned"),
            "{}",
            out.stdout
        );
        if args.len() > 1 {
            assert!(out.stdout.contains("--config <FILE>"), "{}", out.stdout);
        }
    }
}

/// The example in the repository is a valid config: verbatim it fails only
/// on its plugin directories (they are where a user would build them), and
/// with those built it passes.
#[tokio::test]
async fn the_example_config_checks() {
    let out = crate::harness::run_cmd(command(&["check-config", "--config", EXAMPLE])).await;
    out.assert_code(2);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 3, "{}", out.stderr);
    for (i, e) in errors.iter().enumerate() {
        assert!(e.contains(&format!("`plugins[{i}].path`")), "{e}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut example: serde_json::Value =
        serde_json::from_slice(&std::fs::read(EXAMPLE).expect("example")).expect("json");
    for (i, p) in example["plugins"]
        .as_array_mut()
        .expect("plugins")
        .iter_mut()
        .enumerate()
    {
        let at = dir.path().join(format!("p{i}"));
        PluginSpec::new(p["name"].as_str().expect("name"), "1.0.0")
            .write(&at)
            .expect("plugin");
        p["path"] = path_str(&at).into();
    }
    let config = dir.path().join("config.json");
    std::fs::write(&config, example.to_string()).expect("config");
    let out = crate::harness::run_cmd(command(&["check-config", path_str(&config)])).await;
    out.assert_code(0);
    assert!(out.stdout.contains("ok (3 plugins)"), "{}", out.stdout);
}

#[tokio::test]
async fn a_cause_is_said_once() {
    let h = Harness::start(Setup::default()).await;
    std::fs::remove_file(h.dir.path().join("token")).expect("rm");
    let out = h.run().await;
    out.assert_code(3);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: cannot read tokenFile"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    // Before: `...: No such file or directory (os error 2): No such file or
    // directory (os error 2)`.
    assert!(line.ends_with("(os error 2)"), "{line}");
    assert_eq!(line.matches("os error").count(), 1, "{line}");
}

/// A server that never comes up: the log says what is awaited and why it is
/// not there, at the first probe and again while the wait goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_wait_reports_itself() {
    let h = Harness::start(Setup {
        startup_delay: Duration::from_secs(3600),
        ready_timeout_secs: 7,
        ..Setup::default()
    })
    .await;
    let out = h.run().await;
    out.assert_code(3);
    let waits: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("INFO") && l.contains("waiting for Scrypted at"))
        .collect();
    assert!(waits.len() >= 2, "{}", out.stderr);
    for w in &waits {
        assert!(w.contains(&h.server.url()), "{w}");
        assert!(
            w.contains("of 7 s") && w.to_lowercase().contains("refused"),
            "{w}"
        );
    }
    assert!(
        waits[0].contains(", 0 s of 7 s"),
        "the first probe is reported: {}",
        waits[0]
    );
}
