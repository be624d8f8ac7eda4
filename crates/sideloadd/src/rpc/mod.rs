//! A Scrypted RPC client: the calls sideloadd needs, on top of [`peer`]
//! (`docs/scrypted-api.md` §8-11).

pub mod peer;

use std::collections::BTreeMap;

use reqwest::Url;
use serde_json::{Value, json};

pub use peer::RpcError;
use peer::{Peer, proxy_id};

pub const CORE: &str = "@scrypted/core";
/// Native id of core's "Autoupdate Plugins" automation.
pub const AUTO_UPDATE_NATIVE_ID: &str = "automation:update-plugins";

/// A plugin as the system state shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub id: String,
    pub version: Option<String>,
}

/// What the Logger says about the newest start of a plugin (§10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadVerdict {
    Loaded,
    /// Scrypted's own error text.
    Failed(String),
    Crashed(String),
}

#[derive(Debug)]
pub struct Scrypted {
    peer: Peer,
    plugins: String,
    /// The Logger of every device (`logger.getLogger("device", ..)`).
    devices_logger: String,
    host: String,
}

impl Scrypted {
    /// Checks that `host` is alive with a polling handshake, then opens the session.
    pub async fn connect(
        http: &reqwest::Client,
        base: &Url,
        auth: &str,
        host: &str,
    ) -> Result<Self, RpcError> {
        peer::host_alive(http, base, auth, host).await?;
        let peer = Peer::connect(base, auth, host).await?;
        let api = peer.api().to_string();
        let component = |v: Value| {
            proxy_id(&v)
                .map(str::to_string)
                .ok_or_else(|| RpcError::Protocol(format!("not a proxy: {v}")))
        };
        let plugins = component(peer.call(&api, "getComponent", json!(["plugins"])).await?)?;
        let logger = component(peer.call(&api, "getComponent", json!(["logger"])).await?)?;
        // The root Logger answers every entry of the last 48 h in one message, tens of
        // MB on a busy server; a device's own Logger answers only its entries
        // (server/src/logger.ts; `docs/scrypted-api.md` §10).
        let devices = peer.call(&logger, "getLogger", json!(["device", "Devices"]));
        let devices_logger = component(devices.await?)?;
        tracing::debug!(host, "RPC session open");
        Ok(Self {
            peer,
            plugins,
            devices_logger,
            host: host.into(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn is_closed(&self) -> bool {
        self.peer.is_closed()
    }

    pub fn is_stalled(&self) -> bool {
        self.peer.is_stalled()
    }

    /// Device id of an installed plugin.
    pub async fn plugin_id(&self, name: &str) -> Result<Option<String>, RpcError> {
        let v = self
            .peer
            .call(&self.plugins, "getIdForPluginId", json!([name]))
            .await?;
        Ok(v.as_str().map(str::to_string))
    }

    /// Whether the plugin's process is up (`getPluginInfo` has a `pid`); None when
    /// the plugin is not installed.
    pub async fn process_up(&self, name: &str) -> Result<Option<bool>, RpcError> {
        match self
            .peer
            .call(&self.plugins, "getPluginInfo", json!([name]))
            .await
        {
            Ok(info) => Ok(Some(!info["pid"].is_null())),
            Err(RpcError::Remote(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every installed plugin, from the pushed system state.
    pub fn installed(&self) -> BTreeMap<String, Installed> {
        let state = self.peer.system_state();
        let mut out = BTreeMap::new();
        for (id, device) in state {
            let is_plugin = device["interfaces"]["value"]
                .as_array()
                .is_some_and(|i| i.iter().any(|x| x == "ScryptedPlugin"));
            let info = &device["info"]["value"];
            if let (true, Some(name)) = (is_plugin, info["manufacturer"].as_str()) {
                let version = info["version"].as_str().map(str::to_string);
                out.insert(name.to_string(), Installed { id, version });
            }
        }
        out
    }

    /// The Logger's verdict on the newest start of plugin `name` (device `id`) at
    /// or after `since_ms`; None while it is still loading.
    pub async fn load_verdict(
        &self,
        name: &str,
        id: &str,
        since_ms: u64,
    ) -> Result<Option<LoadVerdict>, RpcError> {
        let logger = self
            .peer
            .call(&self.devices_logger, "getLogger", json!([id, name]))
            .await?;
        let logger = proxy_id(&logger)
            .ok_or_else(|| RpcError::Protocol(format!("the Logger of {id}: {logger}")))?;
        let logs = self.peer.call(logger, "getLogs", json!([])).await?;
        let path = format!("/device/{id}");
        let lines: Vec<&str> = logs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["path"] == path.as_str())
            .filter(|e| e["timestamp"].as_u64().is_some_and(|t| t >= since_ms))
            .filter_map(|e| e["message"].as_str())
            .collect();
        Ok(verdict(&lines, name))
    }

    /// Turns core's auto-update automation off. Ok(None): core has no such device
    /// (yet); Ok(Some(was_on)).
    pub async fn auto_update_off(&self) -> Result<Option<bool>, RpcError> {
        let id = self
            .peer
            .call(
                &self.plugins,
                "getIdForNativeId",
                json!([CORE, AUTO_UPDATE_NATIVE_ID]),
            )
            .await?;
        let Some(id) = id.as_str() else {
            return Ok(None);
        };
        if self.is_on(id) == Some(false) {
            return Ok(Some(false));
        }
        let device = self
            .peer
            .call(self.peer.api(), "getDeviceById", json!([id]))
            .await?;
        let device = proxy_id(&device)
            .ok_or_else(|| RpcError::Protocol(format!("device {id}: {device}")))?;
        self.peer.call(device, "turnOff", json!([])).await?;
        self.wait_off(id).await?;
        Ok(Some(true))
    }

    fn is_on(&self, id: &str) -> Option<bool> {
        self.peer.system_state().get(id)?["on"]["value"].as_bool()
    }

    /// The server pushes the new state; the contract's check is `on == false`.
    async fn wait_off(&self, id: &str) -> Result<(), RpcError> {
        for _ in 0..50 {
            if self.is_on(id) == Some(false) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(RpcError::Protocol(format!(
            "turnOff answered, but device {id} still reports on"
        )))
    }

    /// A component of the API (`plugins`, `users`, ...) as a proxy id.
    async fn component(&self, name: &str) -> Result<String, RpcError> {
        let v = self
            .peer
            .call(self.peer.api(), "getComponent", json!([name]))
            .await?;
        proxy_id(&v)
            .map(str::to_string)
            .ok_or_else(|| RpcError::Protocol(format!("component {name} is not a proxy: {v}")))
    }

    /// The names of every Scrypted user (`users.getAllUsers`).
    pub async fn all_users(&self) -> Result<Vec<String>, RpcError> {
        let users = self.component("users").await?;
        let all = self.peer.call(&users, "getAllUsers", json!([])).await?;
        let list = all
            .as_array()
            .ok_or_else(|| RpcError::Protocol(format!("getAllUsers answered {all}")))?;
        list.iter()
            .map(|u| {
                u["username"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| RpcError::Protocol(format!("a user without a username: {u}")))
            })
            .collect()
    }

    /// Creates or replaces `username` as an admin (no ACL) with `password`. This
    /// also gives the user a new token, so it is called only when needed.
    pub async fn add_user(&self, username: &str, password: &str) -> Result<(), RpcError> {
        let users = self.component("users").await?;
        self.peer
            .call(&users, "addUser", json!([username, password, null]))
            .await
            .map(drop)
    }

    /// Uninstalls the plugin with device id `id`, as the web UI does.
    pub async fn remove_device(&self, id: &str) -> Result<(), RpcError> {
        self.peer
            .call(self.peer.api(), "removeDevice", json!([id]))
            .await
            .map(drop)
    }
}

/// After the newest `loading <name>`: `loaded`, a load failure, or a crash. A
/// crash after `loaded` (the process exited once loaded) is a crash: the plugin
/// is not running (`docs/scrypted-api.md` §10). Lines are matched on their start
/// and the plugin's name, not whole, so a detail Scrypted appends (a path, a pid)
/// does not hide them.
pub fn verdict(lines: &[&str], name: &str) -> Option<LoadVerdict> {
    let about = |line: &str, word: &str| {
        line.strip_prefix(word)
            .and_then(|rest| rest.strip_prefix(' '))
            .is_some_and(|rest| rest.split_whitespace().next() == Some(name))
    };
    let start = lines.iter().rposition(|l| about(l, "loading"))?;
    let mut seen: Option<LoadVerdict> = None;
    // "Plugin failed to load" comes before the line with the error itself.
    let mut failed: Option<String> = None;
    for line in &lines[start + 1..] {
        if line.contains("unexpectedly exited, restarting") {
            return Some(LoadVerdict::Crashed(line.to_string()));
        }
        if seen.is_some() {
            continue;
        }
        if about(line, "loaded") {
            seen = Some(LoadVerdict::Loaded);
        } else if let Some(error) = line.strip_prefix("plugin load error ") {
            seen = Some(LoadVerdict::Failed(error.to_string()));
        } else if line.starts_with("Plugin failed to load") {
            failed = Some(line.to_string());
        }
    }
    seen.or(failed.map(LoadVerdict::Failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_start_decides() {
        let n = "@scrypted/x";
        // A redeploy first logs the old process's exit; that means nothing.
        let lines = [
            "plugin @scrypted/x unexpectedly exited",
            "loading @scrypted/x",
            "pid 3",
        ];
        assert_eq!(verdict(&lines, n), None);
        let lines = ["loading @scrypted/x", "pid 3", "loaded @scrypted/x"];
        assert_eq!(verdict(&lines, n), Some(LoadVerdict::Loaded));
        // Another plugin whose name starts the same is not this one.
        let lines = ["loading @scrypted/x", "loaded @scrypted/x-extra"];
        assert_eq!(verdict(&lines, n), None);
        let lines = [
            "loading @scrypted/x",
            "loaded @scrypted/x",
            "loading @scrypted/x",
            "Plugin failed to load. View Console for more information.",
            "plugin load error Error: boom",
        ];
        assert_eq!(
            verdict(&lines, n),
            Some(LoadVerdict::Failed("Error: boom".into()))
        );
        let lines = [
            "loading @scrypted/x",
            "plugin @scrypted/x unexpectedly exited, restarting in 60000ms",
        ];
        assert!(matches!(verdict(&lines, n), Some(LoadVerdict::Crashed(_))));
        // Loaded, then the process exited: not running, so not loaded.
        let lines = [
            "loading @scrypted/x",
            "loaded @scrypted/x",
            "plugin @scrypted/x unexpectedly exited, restarting in 60000ms",
        ];
        assert!(matches!(verdict(&lines, n), Some(LoadVerdict::Crashed(_))));
    }
}
