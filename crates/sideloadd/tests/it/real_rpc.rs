//! The RPC scenarios against a real Scrypted, when one is given:
//! `SCRYPTED_SERVER` (base URL), `SCRYPTED_SERVER_TOKEN_FILE`, and optionally
//! `SCRYPTED_SERVER_VOLUME`. Without them each test says why it skips (CI has no
//! real server). Plugin names are unique per test, and each test prunes what it
//! installed, so the server can be shared.

use std::path::PathBuf;

use fake_scrypted::fixture::PluginSpec;
use serde_json::json;
use tempfile::TempDir;

use crate::harness::path_str;

struct Real {
    dir: TempDir,
    server: String,
    token_file: String,
    volume: Option<String>,
    prefix: String,
}

fn real(test: &str) -> Option<Real> {
    let (Ok(server), Ok(token_file)) = (
        std::env::var("SCRYPTED_SERVER"),
        std::env::var("SCRYPTED_SERVER_TOKEN_FILE"),
    ) else {
        eprintln!(
            "{test}: skipped: SCRYPTED_SERVER and SCRYPTED_SERVER_TOKEN_FILE are not set (no real Scrypted)"
        );
        return None;
    };
    Some(Real {
        dir: tempfile::tempdir().expect("tempdir"),
        server,
        token_file,
        volume: std::env::var("SCRYPTED_SERVER_VOLUME").ok(),
        prefix: format!("@scrypted/sideloadd-it-{}", fastrand::u32(..)),
    })
}

impl Real {
    fn name(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    fn plugin(&self, spec: &PluginSpec) -> PathBuf {
        let dir = self
            .dir
            .path()
            .join(spec.name.replace('/', "+"))
            .join(&spec.version);
        spec.write(&dir).expect("plugin");
        dir
    }

    /// Runs sideloadd with these plugins; returns (exit code, stderr).
    fn run(&self, plugins: &[PathBuf], edit: impl FnOnce(&mut serde_json::Value)) -> (i32, String) {
        let decls: Vec<_> = plugins
            .iter()
            .map(|p| {
                let pj: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(p.join("package.json")).expect("pj"))
                        .expect("json");
                json!({"name": pj["name"], "path": p})
            })
            .collect();
        let mut c = json!({
            "server": self.server, "tokenFile": self.token_file,
            "stateDir": self.dir.path().join("state"), "readyTimeoutSecs": 30,
            "plugins": decls,
        });
        if let Some(v) = &self.volume {
            c["volume"] = json!(v);
        }
        edit(&mut c);
        let config = self.dir.path().join("config.json");
        std::fs::write(&config, c.to_string()).expect("config");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sideloadd"))
            .args(["run", "--config", path_str(&config)])
            .env("RUST_LOG", "info")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), stderr)
    }

    /// Uninstalls everything this test installed.
    fn clean_up(&self) {
        let (code, stderr) = self.run(&[], |c| c["prune"] = true.into());
        assert_eq!(code, 0, "{stderr}");
    }
}

fn failing(name: &str, version: &str) -> PluginSpec {
    let mut s = PluginSpec::new(name, version);
    s.main_js = Some(format!(
        "{}Error: real boom\nthrow new Error(\"real boom\");\n",
        fake_scrypted::FAIL_LOAD_MARKER
    ));
    s
}

#[test]
fn real_rpc_loads_are_confirmed_and_a_second_run_deploys_nothing() {
    let Some(r) = real("real_rpc_loads_are_confirmed") else {
        return;
    };
    let plugins = [r.plugin(&PluginSpec::new(&r.name(0), "1.0.0"))];
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("loaded"), "{stderr}");
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("1 plugins in place, 1 skipped"), "{stderr}");
    r.clean_up();
}

#[test]
fn real_rpc_a_failed_load_is_named_and_a_bad_upgrade_rolled_back() {
    let Some(r) = real("real_rpc_a_failed_load") else {
        return;
    };
    let good = r.plugin(&PluginSpec::new(&r.name(0), "1.0.0"));
    let (code, stderr) = r.run(std::slice::from_ref(&good), |_| {});
    assert_eq!(code, 0, "{stderr}");
    let bad = r.plugin(&failing(&r.name(0), "2.0.0"));
    let (code, stderr) = r.run(&[bad], |_| {});
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("did not load: Error: real boom")
            && stderr.contains("previous version 1.0.0 was redeployed"),
        "{stderr}"
    );
    r.clean_up();
}

#[test]
fn real_rpc_prune_removes_what_sideloadd_installed() {
    let Some(r) = real("real_rpc_prune") else {
        return;
    };
    let plugins = [0, 1].map(|i| r.plugin(&PluginSpec::new(&r.name(i), "1.0.0")));
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = r.run(&plugins[..1], |c| c["prune"] = true.into());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("1 pruned"), "{stderr}");
    if let Some(v) = &r.volume {
        let gone = PathBuf::from(v).join("plugins").join(r.name(1));
        assert!(!gone.exists(), "{}", gone.display());
    }
    r.clean_up();
}

#[test]
fn real_rpc_without_a_volume_nothing_is_guessed() {
    let Some(r) = real("real_rpc_without_a_volume") else {
        return;
    };
    let plugins = [r.plugin(&PluginSpec::new(&r.name(0), "1.0.0"))];
    let no_volume = |c: &mut serde_json::Value| {
        c.as_object_mut().expect("object").remove("volume");
    };
    let (code, stderr) = r.run(&plugins, no_volume);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = r.run(&plugins, no_volume);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("1 plugins in place, 1 skipped"), "{stderr}");
    r.clean_up();
}

/// A user of its own, not the server's admin: the test must not change the password
/// of whoever uses the server. sideloadd never removes users, so the name is fixed
/// and repeated runs reuse it (each with a new password).
const REAL_IT_USER: &str = "sideloadd-it-admin";

#[test]
fn real_rpc_admin_password_is_set_once_then_confirmed_by_login() {
    let Some(r) = real("real_rpc_admin_password") else {
        return;
    };
    let plugins = [r.plugin(&PluginSpec::new(&r.name(0), "1.0.0"))];
    let file = r.dir.path().join("admin-password");
    let secret = format!("it-{:016x}", fastrand::u64(..));
    std::fs::write(&file, format!("{secret}\n")).expect("password file");
    let declare = |c: &mut serde_json::Value| {
        c["adminPasswordFile"] = json!(file);
        c["adminUsername"] = json!(REAL_IT_USER);
    };
    let (code, stderr) = r.run(&plugins, |c| declare(c));
    assert_eq!(code, 0, "{stderr}");
    let set = format!("admin password of {REAL_IT_USER} set from adminPasswordFile");
    assert!(stderr.contains(&set), "{stderr}");
    // Only the real POST /login accepting the password makes this run leave it be.
    let (code, stderr) = r.run(&plugins, |c| declare(c));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("already as in adminPasswordFile"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&secret),
        "the password was printed: {stderr}"
    );
    r.clean_up();
}

/// core's "Autoupdate Plugins" automation as read over an RPC session of the test's
/// own, independent of what sideloadd logs.
struct CoreView {
    on: Option<bool>,
    pid: Option<u64>,
}

/// Reads core's pid and its automation's `on` over RPC hosted on core; with
/// `turn_on`, first turns the automation on (as a restart within Scrypted's 30 s
/// state-save window leaves it) and waits until the server reports it on.
fn core_view(r: &Real, turn_on: bool) -> CoreView {
    use sideloadd::rpc::peer::{self, Peer, proxy_id};
    use sideloadd::rpc::{AUTO_UPDATE_NATIVE_ID, CORE};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let base = url::Url::parse(&r.server).expect("SCRYPTED_SERVER is a URL");
        let token = std::fs::read_to_string(&r.token_file).expect("token file");
        let auth = format!("Bearer {}", token.trim());
        // Only a host seen alive may take a WebSocket (docs/scrypted-api.md §9).
        peer::host_alive(&reqwest::Client::new(), &base, &auth, CORE)
            .await
            .expect("core is up");
        let p = Peer::connect(&base, &auth, CORE)
            .await
            .expect("RPC session");
        let plugins = p
            .call(p.api(), "getComponent", json!(["plugins"]))
            .await
            .expect("plugins");
        let plugins = proxy_id(&plugins).expect("plugins proxy").to_string();
        let info = p
            .call(&plugins, "getPluginInfo", json!([CORE]))
            .await
            .expect("core's plugin info");
        let id = p
            .call(
                &plugins,
                "getIdForNativeId",
                json!([CORE, AUTO_UPDATE_NATIVE_ID]),
            )
            .await
            .expect("automation id");
        let id = id.as_str().expect("core has its automation").to_string();
        let on = || {
            p.system_state()
                .get(&id)
                .and_then(|d| d["on"]["value"].as_bool())
        };
        if turn_on {
            let device = p
                .call(p.api(), "getDeviceById", json!([id]))
                .await
                .expect("device");
            let device = proxy_id(&device).expect("device proxy").to_string();
            p.call(&device, "turnOn", json!([])).await.expect("turnOn");
            for _ in 0..50 {
                if on() == Some(true) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert_eq!(on(), Some(true), "the automation did not turn on");
        }
        CoreView {
            on: on(),
            pid: info["pid"].as_u64(),
        }
    })
}

/// Needs, besides the real server, `SCRYPTED_CORE_PLUGIN`: a directory with the
/// `package.json` and `plugin.zip` of a real `@scrypted/core` (not on the registry
/// here; built from source as `../shared/real-scrypted.md` says). Core stays
/// installed (it is the web UI; removing it makes Scrypted fetch it from npm).
/// Deploying core closes RPC sessions hosted on it: run this test on its own,
/// `cargo nextest run -p sideloadd real_rpc_core`.
#[test]
fn real_rpc_core_auto_update_is_turned_off_and_a_second_run_changes_nothing() {
    let Some(r) = real("real_rpc_core_auto_update") else {
        return;
    };
    let Ok(core) = std::env::var("SCRYPTED_CORE_PLUGIN") else {
        eprintln!(
            "real_rpc_core_auto_update: skipped: SCRYPTED_CORE_PLUGIN is not set (no @scrypted/core build)"
        );
        return;
    };
    let plugins = [PathBuf::from(core)];
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(core_view(&r, false).on, Some(false), "{stderr}");

    let before = core_view(&r, false);
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("1 plugins in place, 1 skipped")
            && stderr.contains("auto-update is off")
            && !stderr.contains("turned off"),
        "{stderr}"
    );
    let after = core_view(&r, false);
    assert_eq!(after.on, Some(false));
    assert!(before.pid.is_some(), "core is running");
    assert_eq!(after.pid, before.pid, "core was restarted");

    // Turned back on behind sideloadd's back: the next run turns it off again.
    let log = std::env::var("SCRYPTED_SERVER_LOG").ok();
    const OFF_LINE: &str =
        "Autoupdate Plugins automation is turned off, and will not be scheduled.";
    let offs = || {
        log.as_ref().map(|l| {
            std::fs::read_to_string(l)
                .expect("SCRYPTED_SERVER_LOG")
                .matches(OFF_LINE)
                .count()
        })
    };
    core_view(&r, true);
    let offs_before = offs();
    let (code, stderr) = r.run(&plugins, |c| c["autoUpdate"] = false.into());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("turned off"), "{stderr}");
    assert_eq!(core_view(&r, false).on, Some(false), "{stderr}");
    if let Some(before) = offs_before {
        // The server's own word, when its log is given (written asynchronously).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while offs() == Some(before) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            offs() > Some(before),
            "the server never logged {OFF_LINE:?}"
        );
    }
}
