//! Plugin processes as the real server runs them (`docs/scrypted-api.md` §9-11):
//! Logger entries while loading, load failure with the process alive, a crash and
//! the restart 60 s later, core's "Autoupdate Plugins" automation, uninstall.

use std::io::{Cursor, Read};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Value, json};

use crate::routes::write_volume;
use crate::state::{Shared, State};

pub const CORE: &str = "@scrypted/core";
pub const AUTOMATION_NATIVE_ID: &str = "automation:update-plugins";

/// One Logger entry (`getLogs()`).
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub path: String,
    pub level: String,
    pub message: String,
    pub timestamp: u64,
}

/// What a pushed system-state change says, for open RPC sessions.
#[derive(Debug, Clone)]
pub enum Event {
    /// `updateDeviceState(id, state)`; None: the device is gone.
    Device(String, Option<Value>),
    /// The plugin was redeployed or removed: sessions hosted on it close.
    HostChanged(String),
    /// The server went down (restart): every session closes.
    ServerDown,
}

/// The automation device core creates once it has loaded.
#[derive(Debug, Clone)]
pub struct Automation {
    pub id: String,
    pub on: bool,
}

/// How a zip's main module behaves. Test plugins say it in a marker line, which
/// real plugin bundles never contain (their code does throw, just not at load):
/// `// fake-scrypted: fail-load <error text>` fails to load with the process
/// alive, `// fake-scrypted: crash` exits at start, `// fake-scrypted:
/// crash-after-load <ms>` loads and exits that long after; anything else loads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Load {
    Loaded,
    Fails(String),
    Crashes,
    LoadsThenExits(Duration),
}

pub const FAIL_LOAD_MARKER: &str = "// fake-scrypted: fail-load ";
pub const CRASH_MARKER: &str = "// fake-scrypted: crash";
pub const CRASH_AFTER_LOAD_MARKER: &str = "// fake-scrypted: crash-after-load ";

fn load_of(zip: &[u8]) -> Load {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(zip)) else {
        return Load::Crashes;
    };
    let mut main = String::new();
    let Ok(mut entry) = archive.by_name("main.nodejs.js") else {
        // A python plugin starts main.py; the fake does not run python.
        return match archive.index_for_name("main.py") {
            Some(_) => Load::Loaded,
            None => Load::Fails("Error: Cannot find module 'main.nodejs.js'".into()),
        };
    };
    if entry.read_to_string(&mut main).is_err() {
        return Load::Crashes;
    }
    for line in main.lines() {
        if let Some(error) = line.strip_prefix(FAIL_LOAD_MARKER) {
            return Load::Fails(error.trim().to_string());
        }
        if let Some(ms) = line.strip_prefix(CRASH_AFTER_LOAD_MARKER) {
            let ms = ms.trim().parse().unwrap_or(0);
            return Load::LoadsThenExits(Duration::from_millis(ms));
        }
        if line.starts_with(CRASH_MARKER) {
            return Load::Crashes;
        }
    }
    Load::Loaded
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn log(st: &mut State, id: &str, level: &str, message: String) {
    st.logs.push(LogEntry {
        path: format!("/device/{id}"),
        level: level.into(),
        message,
        timestamp: now_ms(),
    });
}

/// A fresh device id (a removed plugin installed again gets a new one).
pub fn new_id(st: &mut State) -> String {
    st.next_device += 1;
    st.next_device.to_string()
}

/// The old process goes (the real server logs this misleading line on redeploy).
pub fn kill(st: &mut State, name: &str) {
    let Some(rec) = st.db.get_mut(name) else {
        return;
    };
    let id = rec.id.clone();
    if rec.pid.take().is_some() {
        log(st, &id, "e", format!("plugin {name} unexpectedly exited"));
    }
}

/// Forks the plugin's process; it loads (or not) after `load_delay`.
pub fn start(shared: &Arc<Shared>, st: &mut State, name: &str) {
    let pid = st.next_pid;
    st.next_pid += 1;
    let Some(rec) = st.db.get_mut(name) else {
        return;
    };
    rec.pid = Some(pid);
    let load = st.zips.get(name).map_or(Load::Crashes, |z| load_of(z));
    let rec = st.db.get_mut(name).expect("checked above");
    rec.loaded = matches!(load, Load::Loaded | Load::LoadsThenExits(_));
    let id = rec.id.clone();
    log(st, &id, "i", format!("loading {name}"));
    log(st, &id, "i", format!("pid {pid}"));
    let (shared, name) = (shared.clone(), name.to_string());
    let delay = shared.options.load_delay;
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        finish_load(&shared, &name, pid, load);
    });
}

fn finish_load(shared: &Arc<Shared>, name: &str, pid: u64, load: Load) {
    let mut guard = shared.lock();
    let st = &mut *guard;
    let Some(rec) = st.db.get_mut(name).filter(|r| r.pid == Some(pid)) else {
        return; // redeployed or removed meanwhile
    };
    let id = rec.id.clone();
    match load {
        Load::Loaded => {
            log(st, &id, "i", format!("loaded {name}"));
            if name == CORE {
                schedule_automation(shared);
            }
        }
        Load::Fails(error) => {
            let failed = "Plugin failed to load. View Console for more information.";
            log(st, &id, "e", failed.into());
            log(st, &id, "e", format!("plugin load error {error}"));
        }
        Load::Crashes => crash(shared, st, name),
        Load::LoadsThenExits(after) => {
            log(st, &id, "i", format!("loaded {name}"));
            let (shared, name) = (shared.clone(), name.to_string());
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let mut guard = shared.lock();
                if guard.db.get(&name).is_some_and(|r| r.pid == Some(pid)) {
                    crash(&shared, &mut guard, &name);
                }
            });
        }
    }
}

/// The process exits: Scrypted logs it and restarts the plugin after
/// `crash_restart` (server/src/runtime.ts, `setupPluginHostAutoRestart`).
pub fn crash(shared: &Arc<Shared>, st: &mut State, name: &str) {
    let Some(rec) = st.db.get_mut(name) else {
        return;
    };
    rec.pid = None;
    rec.loaded = false;
    let id = rec.id.clone();
    let restart = shared.options.crash_restart;
    let line = format!(
        "plugin {name} unexpectedly exited, restarting in {}ms",
        restart.as_millis()
    );
    log(st, &id, "e", line);
    // Sessions hosted on it go with its process (measured: the next WebSocket to
    // it is answered 503 until the restart).
    let _ = shared.events.send(Event::HostChanged(name.into()));
    let (shared, name) = (shared.clone(), name.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(restart).await;
        let mut st = shared.lock();
        if st.db.get(&name).is_some_and(|r| r.pid.is_none()) {
            start(&shared, &mut st, &name);
        }
    });
}

/// The server retries a plugin that is down every `crash_restart`; with a zip
/// holding a 2 GiB entry each retry freezes it again, until another zip is stored.
pub fn refreeze_while_stored(shared: &Arc<Shared>, name: &str, md5: &str) {
    let (shared, name, md5) = (shared.clone(), name.to_string(), md5.to_string());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(shared.options.crash_restart).await;
            let mut st = shared.lock();
            if st.zips.get(&name).map(|z| crate::md5_hex(z)) != Some(md5.clone()) {
                return;
            }
            st.frozen_until = Some(std::time::Instant::now() + shared.options.freeze);
        }
    });
}

/// Core creates its automation shortly after it loads, ON, unless it exists.
fn schedule_automation(shared: &Arc<Shared>) {
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(shared.options.automation_delay).await;
        let mut st = shared.lock();
        if st.automation.is_none() && st.db.contains_key(CORE) {
            let id = new_id(&mut st);
            st.automation = Some(Automation {
                id: id.clone(),
                on: true,
            });
            let state = automation_state(true);
            drop(st);
            let _ = shared.events.send(Event::Device(id, Some(state)));
        }
    });
}

fn automation_state(on: bool) -> Value {
    json!({
        "name": {"value": "Autoupdate Plugins"},
        "interfaces": {"value": ["OnOff", "Automation"]},
        "on": {"value": on},
    })
}

pub fn plugin_state(name: &str, package_json: &Value) -> Value {
    json!({
        "name": {"value": package_json.pointer("/scrypted/name").cloned().unwrap_or(json!(name))},
        "interfaces": {"value": ["ScryptedPlugin", "Settings"]},
        "info": {"value": {"manufacturer": name, "version": package_json.get("version")}},
    })
}

/// What `setSystemState` carries: every plugin device and the automation.
pub fn system_state(st: &State) -> Value {
    let mut map = serde_json::Map::new();
    for (name, rec) in &st.db {
        map.insert(rec.id.clone(), plugin_state(name, &rec.package_json));
    }
    if let Some(a) = &st.automation {
        map.insert(a.id.clone(), automation_state(a.on));
    }
    Value::Object(map)
}

/// `turnOff()` on a device; only the automation has an OnOff interface here.
pub fn turn_off(shared: &Shared, id: &str) -> bool {
    let mut st = shared.lock();
    let Some(a) = st.automation.as_mut().filter(|a| a.id == id) else {
        return false;
    };
    a.on = false;
    let line = "automation is turned off, and will not be scheduled.";
    log(&mut st, id, "i", line.into());
    drop(st);
    let _ = shared
        .events
        .send(Event::Device(id.into(), Some(automation_state(false))));
    true
}

/// `removeDevice(<plugin device id>)`: uninstalls the plugin as the web UI does.
pub fn remove_device(shared: &Shared, id: &str) -> bool {
    let mut st = shared.lock();
    let Some(name) = st
        .db
        .iter()
        .find(|(_, r)| r.id == id)
        .map(|(n, _)| n.clone())
    else {
        return false;
    };
    st.db.remove(&name);
    st.zips.remove(&name);
    if let Some(volume) = &shared.options.volume {
        let _ = std::fs::remove_dir_all(volume.join("plugins").join(&name));
    }
    drop(st);
    let _ = shared.events.send(Event::HostChanged(name));
    let _ = shared.events.send(Event::Device(id.into(), None));
    true
}

/// One version npm's registry would offer the automation.
#[derive(Debug, Clone)]
pub struct Latest {
    pub package_json: Value,
    pub zip: Vec<u8>,
    pub deprecated: bool,
}

/// Installs `latest` over every installed plugin it is newer than, or uninstalls
/// those whose latest is deprecated, when the automation is on. Returns the names
/// changed.
pub fn auto_update(shared: &Arc<Shared>, latest: &[Latest]) -> Vec<String> {
    let mut changed = Vec::new();
    let mut st = shared.lock();
    if !st.automation.as_ref().is_some_and(|a| a.on) {
        return changed;
    }
    for l in latest {
        let Some(name) = l.package_json.get("name").and_then(Value::as_str) else {
            continue;
        };
        let Some(rec) = st.db.get(name) else {
            continue;
        };
        if l.deprecated {
            let id = rec.id.clone();
            drop(st);
            remove_device(shared, &id);
            st = shared.lock();
        } else if newer(&l.package_json, &rec.package_json) {
            install(shared, &mut st, name, l);
        } else {
            continue;
        }
        changed.push(name.to_string());
    }
    changed
}

fn install(shared: &Arc<Shared>, st: &mut State, name: &str, l: &Latest) {
    kill(st, name);
    st.zips.insert(name.into(), l.zip.clone());
    let md5 = crate::md5_hex(&l.zip);
    if let Some(rec) = st.db.get_mut(name) {
        rec.package_json = l.package_json.clone();
        rec.zip_md5 = Some(md5.clone());
    }
    if let Some(volume) = &shared.options.volume {
        let dir = volume.join("plugins").join(name);
        let _ = std::fs::remove_dir_all(dir.join("zip"));
        let _ = write_volume(&dir, &md5, &l.zip);
    }
    start(shared, st, name);
    let _ = shared.events.send(Event::HostChanged(name.into()));
}

/// Semver-greater, on the numeric dotted part (enough for tests).
fn newer(a: &Value, b: &Value) -> bool {
    let parse = |v: &Value| -> Vec<u64> {
        v.get("version")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(['.', '-'])
            .map_while(|p| p.parse().ok())
            .collect()
    };
    parse(a) > parse(b)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_with_main(main: &str) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("main.nodejs.js", zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(main.as_bytes()).expect("write");
        w.finish().expect("finish").into_inner()
    }

    #[test]
    fn only_the_markers_make_a_plugin_fail() {
        // Real bundles throw in their code; that is not a load failure.
        let real = "function f(){ throw new Error(\"bad arg\"); }\nprocess.exit(0);\n";
        assert_eq!(load_of(&zip_with_main(real)), Load::Loaded);
        let failing = format!("{FAIL_LOAD_MARKER}Error: boom\n");
        assert_eq!(
            load_of(&zip_with_main(&failing)),
            Load::Fails("Error: boom".into())
        );
        let crashing = format!("{CRASH_MARKER}\n");
        assert_eq!(load_of(&zip_with_main(&crashing)), Load::Crashes);
    }
}
