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
        let config = self.write_config(plugins, edit);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sideloadd"))
            .args(["run", "--config", path_str(&config)])
            .env("RUST_LOG", "info")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), stderr)
    }

    /// Writes the config for these plugins; returns its path.
    fn write_config(
        &self,
        plugins: &[PathBuf],
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> PathBuf {
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
        config
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
    use sideloadd::rpc::peer::proxy_id;
    use sideloadd::rpc::{AUTO_UPDATE_NATIVE_ID, CORE};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (p, plugins) = plugins_session(r, CORE).await;
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

/// Lines of the server's own log (`SCRYPTED_SERVER_LOG`) that say it tried to
/// download `@scrypted/core` from npm (server/src/runtime.ts, `installNpm` and
/// `getPluginForEndpoint`); None without the log.
fn core_fetches() -> Option<usize> {
    let log = std::fs::read_to_string(std::env::var("SCRYPTED_SERVER_LOG").ok()?).ok()?;
    Some(
        log.matches("@scrypted/core auto install failed").count()
            + log.matches("installing package @scrypted/core").count(),
    )
}

#[test]
fn real_rpc_a_plugin_that_exits_after_loading_is_not_in_place() {
    let Some(r) = real("real_rpc_a_plugin_that_exits_after_loading") else {
        return;
    };
    // Loads, then exits a second later, as a plugin that crashes on its first
    // event would; Scrypted restarts it every 60 s.
    let mut spec = PluginSpec::new(&r.name(0), "1.0.0");
    spec.main_js = Some(
        "class Plugin { constructor() { setTimeout(() => process.exit(3), 1000); } }\n\
         exports.default = Plugin;\n"
            .into(),
    );
    let plugins = [r.plugin(&spec)];
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("plugin {} failed", r.name(0)))
            && stderr.contains("unexpectedly exited, restarting in 60000ms"),
        "{stderr}"
    );
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(r.dir.path().join("state/state.json")).expect("state"),
    )
    .expect("json");
    assert!(
        state["plugins"].get(r.name(0)).is_none(),
        "recorded: {state}"
    );
    // A later run does not count it in place either.
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 1, "{stderr}");
    r.clean_up();
}

#[test]
fn real_rpc_a_logger_over_16_mib_does_not_stop_load_confirmation() {
    let Some(r) = real("real_rpc_a_logger_over_16_mib") else {
        return;
    };
    // A plugin that writes 18 MB into Scrypted's Logger (its own device's), which
    // keeps it for 48 h: the whole Logger no longer fits a default WebSocket frame.
    let mut noisy = PluginSpec::new(&r.name(0), "1.0.0");
    noisy.main_js = Some(
        "class Plugin { constructor() { const log = deviceManager.getDeviceLogger(undefined);\n\
         const line = 'n'.repeat(9000); for (let i = 0; i < 2000; i++) log.i(line); } }\n\
         exports.default = Plugin;\n"
            .into(),
    );
    let quiet = PluginSpec::new(&r.name(1), "1.0.0");
    let plugins = [r.plugin(&noisy), r.plugin(&quiet)];
    let (code, stderr) = r.run(&plugins[..1], |_| {});
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("2 plugins in place, 1 skipped"), "{stderr}");
    r.clean_up();
}

/// Needs `SCRYPTED_CORE_PLUGIN` (a real core build) and `SCRYPTED_SERVER_LOG`;
/// removes and reinstalls core, so run it on its own, on a throwaway server:
/// `cargo nextest run -p sideloadd real_rpc_core_removed`.
#[test]
fn real_rpc_core_removed_by_hand_is_put_back_without_scrypted_fetching_it() {
    let Some(r) = real("real_rpc_core_removed_by_hand") else {
        return;
    };
    let (Ok(core), Some(before)) = (std::env::var("SCRYPTED_CORE_PLUGIN"), core_fetches()) else {
        eprintln!(
            "real_rpc_core_removed_by_hand: skipped: needs SCRYPTED_CORE_PLUGIN and SCRYPTED_SERVER_LOG"
        );
        return;
    };
    let plugins = [
        PathBuf::from(core),
        r.plugin(&PluginSpec::new(&r.name(0), "1.0.0")),
    ];
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 0, "{stderr}");
    remove_by_hand(&r, sideloadd::rpc::CORE, &r.name(0));
    // status, a run that puts core back, and prune right after core left the
    // config: none may make the server fetch core.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sideloadd"))
        .args([
            "status",
            "--config",
            path_str(&r.dir.path().join("config.json")),
        ])
        .output()
        .expect("status");
    assert_eq!(status.status.code(), Some(1), "core is not installed");
    let (code, stderr) = r.run(&plugins, |_| {});
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("2 plugins in place, 1 skipped"), "{stderr}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        core_fetches(),
        Some(before),
        "the server tried to fetch core"
    );
    r.clean_up();
    assert_eq!(
        core_fetches(),
        Some(before),
        "the server tried to fetch core"
    );
}

/// Uninstalls `name` as the web UI does, over an RPC session hosted on `host`.
fn remove_by_hand(r: &Real, name: &str, host: &str) {
    plugins_call(r, host, "getIdForPluginId", name, |p, id| async move {
        p.call(p.api(), "removeDevice", json!([id]))
            .await
            .expect("removeDevice");
    });
}

/// The pid of `name`'s process (`getPluginInfo`), over a session hosted on it.
fn plugin_pid(r: &Real, name: &str) -> Option<u64> {
    let pid = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = pid.clone();
    plugins_call(r, name, "getPluginInfo", name, |_, info| async move {
        *out.lock().expect("lock") = info["pid"].as_u64();
    });
    *pid.lock().expect("lock")
}

/// A session of the test's own, hosted on `host`, and the id of its plugins
/// component. Only a host seen alive may take a WebSocket (docs/scrypted-api.md
/// §8): one to a missing plugin kills the server.
async fn plugins_session(r: &Real, host: &str) -> (sideloadd::rpc::peer::Peer, String) {
    use sideloadd::rpc::peer::{self, Peer, proxy_id};
    let base = url::Url::parse(&r.server).expect("SCRYPTED_SERVER is a URL");
    let token = std::fs::read_to_string(&r.token_file).expect("token file");
    let auth = format!("Bearer {}", token.trim());
    peer::host_alive(&reqwest::Client::new(), &base, &auth, host)
        .await
        .expect("host is up");
    let p = Peer::connect(&base, &auth, host)
        .await
        .expect("RPC session");
    let plugins = p
        .call(p.api(), "getComponent", json!(["plugins"]))
        .await
        .expect("plugins");
    let plugins = proxy_id(&plugins).expect("plugins proxy").to_string();
    (p, plugins)
}

/// Calls `method(arg)` of the plugins component over a session of the test's own,
/// hosted on `host`, and hands the answer to `then`.
fn plugins_call<F, Fut>(r: &Real, host: &str, method: &str, arg: &str, then: F)
where
    F: FnOnce(std::sync::Arc<sideloadd::rpc::peer::Peer>, serde_json::Value) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (p, plugins) = plugins_session(r, host).await;
        let answer = p.call(&plugins, method, json!([arg])).await.expect(method);
        then(std::sync::Arc::new(p), answer).await;
    });
}

#[test]
fn real_rpc_a_type_error_on_deploy_is_not_retried_and_the_old_version_keeps_running() {
    let Some(r) = real("real_rpc_a_type_error_on_deploy") else {
        return;
    };
    let v1 = r.plugin(&PluginSpec::new(&r.name(0), "1.0.0"));
    let (code, stderr) = r.run(std::slice::from_ref(&v1), |_| {});
    assert_eq!(code, 0, "{stderr}");
    let pid = plugin_pid(&r, &r.name(0));
    assert!(pid.is_some(), "1.0.0 runs");
    // A package.json without scrypted.interfaces: Scrypted stores it, then throws
    // a TypeError while recording the device.
    let v2 = r.plugin(&PluginSpec::new(&r.name(0), "2.0.0"));
    let pj_path = v2.join("package.json");
    let mut pj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&pj_path).expect("pj")).expect("json");
    pj["scrypted"]
        .as_object_mut()
        .expect("scrypted")
        .remove("interfaces");
    std::fs::write(&pj_path, pj.to_string()).expect("pj");
    let started = std::time::Instant::now();
    let (code, stderr) = r.run(&[v2], |_| {});
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("TypeError") && stderr.contains("after 1 attempt"),
        "{stderr}"
    );
    assert!(!stderr.contains("retrying"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(plugin_pid(&r, &r.name(0)), pid, "1.0.0 was not touched");
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(r.dir.path().join("state/state.json")).expect("state"),
    )
    .expect("json");
    assert_eq!(state["plugins"][r.name(0)]["version"], "1.0.0", "{state}");
    // Back to 1.0.0 in the config: nothing to do.
    let (code, stderr) = r.run(&[v1], |_| {});
    assert_eq!(code, 0, "{stderr}");
    r.clean_up();
}

/// A plugin whose module takes 3 s to evaluate (then loads, or throws).
fn slow(name: &str, version: &str, throws: bool) -> PluginSpec {
    let mut s = PluginSpec::new(name, version);
    let end = if throws {
        "throw new Error('slow boom');"
    } else {
        "exports.default = class Plugin {};"
    };
    s.main_js = Some(format!(
        "// {name} {version}\nconst end = Date.now() + 3000; while (Date.now() < end) {{}}\n{end}\n"
    ));
    s
}

/// Starts a run and SIGKILLs it once Scrypted installed `zip_md5` for `name` (deploy
/// answered), before the slow plugin can have loaded.
fn kill_after_deploy(r: &Real, config: &std::path::Path, name: &str, zip_md5: &str) {
    let volume = PathBuf::from(r.volume.as_ref().expect("a volume"));
    let zip = volume
        .join("plugins")
        .join(name)
        .join("zip")
        .join(format!("1-{zip_md5}.zip"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sideloadd"))
        .args(["run", "--config", path_str(config)])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !zip.is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never installed",
            zip.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

#[test]
fn real_rpc_a_run_killed_before_confirmation_is_finished_or_undone_by_the_next() {
    let Some(r) = real("real_rpc_a_run_killed_before_confirmation") else {
        return;
    };
    if r.volume.is_none() {
        eprintln!(
            "real_rpc_a_run_killed_before_confirmation: skipped: needs SCRYPTED_SERVER_VOLUME"
        );
        return;
    }
    let name = r.name(0);
    let md5 = |dir: &PathBuf| {
        fake_scrypted::md5_hex(&std::fs::read(dir.join("plugin.zip")).expect("zip"))
    };
    let v1 = r.plugin(&PluginSpec::new(&name, "1.0.0"));
    let (code, stderr) = r.run(&[v1], |_| {});
    assert_eq!(code, 0, "{stderr}");

    // A good, slow 2.0.0, killed before its load was confirmed: the next run
    // confirms it without sending it again (same process).
    let v2 = r.plugin(&slow(&name, "2.0.0", false));
    let config = r.write_config(std::slice::from_ref(&v2), |_| {});
    kill_after_deploy(&r, &config, &name, &md5(&v2));
    std::thread::sleep(std::time::Duration::from_secs(4));
    let pid = plugin_pid(&r, &name);
    assert!(pid.is_some(), "2.0.0 runs");
    let (code, stderr) = r.run(&[v2], |_| {});
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("confirming it now"), "{stderr}");
    assert_eq!(plugin_pid(&r, &name), pid, "not deployed again");

    // A slow 3.0.0 that throws, killed the same way: the next run finds it failed
    // and puts 2.0.0 back from the kept copy.
    let v3 = r.plugin(&slow(&name, "3.0.0", true));
    let config = r.write_config(std::slice::from_ref(&v3), |_| {});
    kill_after_deploy(&r, &config, &name, &md5(&v3));
    let (code, stderr) = r.run(&[v3], |_| {});
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("3.0.0 was deployed but did not load")
            && stderr.contains("previous version 2.0.0 was redeployed"),
        "{stderr}"
    );
    r.clean_up();
}
