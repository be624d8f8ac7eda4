//! The public handle a test holds: start, stop, restart, faults, assertions.

use crate::{
    life, life::Latest, life::LogEntry, records::Options, records::PluginRecord,
    records::RequestRecord, records::Route, server::supervise, state::Control, state::Faults,
    state::Shared, state::State, state::record, users::User, users::UsersCall,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A running fake server. Dropping it stops it.
#[derive(Debug)]
pub struct FakeScrypted {
    shared: Arc<Shared>,
    supervisor: JoinHandle<()>,
}

impl Drop for FakeScrypted {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

impl FakeScrypted {
    /// Starts the server in the current tokio runtime. The port opens after
    /// `startup_delay`; until then connections are refused.
    pub fn start(options: Options) -> std::io::Result<Self> {
        let port = if options.port == 0 {
            // Learn a free port now so the address is known while the port is closed.
            std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port()
        } else {
            options.port
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let (control, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            options,
            addr,
            state: Mutex::new(State {
                db: BTreeMap::new(),
                zips: BTreeMap::new(),
                requests: Vec::new(),
                faults: Faults::default(),
                next_pid: 1000,
                boots: 0,
                frozen_until: None,
                logs: Vec::new(),
                next_device: 100,
                automation: None,
                pongs: 0,
                crashed_by_websocket: false,
                users: BTreeMap::new(),
                users_calls: Vec::new(),
                core_installs: 0,
                rpc_stalled: false,
                turn_off_fails: false,
            }),
            control,
            events: tokio::sync::broadcast::channel(256).0,
        });
        let supervisor = tokio::spawn(supervise(shared.clone(), rx));
        Ok(Self { shared, supervisor })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn token(&self) -> &str {
        &self.shared.options.token
    }

    /// Waits until the port accepts connections (bounded).
    pub async fn wait_up(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if TcpStream::connect(self.shared.addr).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Setup/deploy requests for one plugin, in order.
    pub fn sideload_requests(&self, npm_name: &str) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| r.route.is_some() && r.npm_package.as_deref() == Some(npm_name))
            .collect()
    }

    pub fn plugin(&self, npm_name: &str) -> Option<PluginRecord> {
        self.shared.lock().db.get(npm_name).cloned()
    }

    pub fn boots(&self) -> u32 {
        self.shared.lock().boots
    }

    /// Closes the port now and reopens it after `downtime` (a server restart: the
    /// database survives, installed plugins are restarted at boot).
    pub fn restart(&self, downtime: Duration) {
        let _ = self.shared.control.send(Control::Down(downtime));
    }

    /// Fault: the port closes for `downtime` right after the `n`-th request from now
    /// has been answered.
    pub fn go_down_after_requests(&self, n: usize, downtime: Duration) {
        self.shared.lock().faults.down_after_requests = Some((n.max(1), downtime));
    }

    /// Fault: the next request on `route` is cut off halfway through its body (the
    /// client sees a reset); nothing is stored.
    pub fn reset_next(&self, route: Route) {
        self.shared.lock().faults.reset_next.push(route);
    }

    /// Fault: the next request on `route` answers a bare 500 with no effect.
    pub fn fail_next(&self, route: Route) {
        self.shared.lock().faults.fail_next.push(route);
    }

    /// Fault: after the next successful setup, the server restarts (down for
    /// `downtime`) before the deploy can arrive.
    pub fn restart_after_next_setup(&self, downtime: Duration) {
        self.shared.lock().faults.restart_after_setup = Some(downtime);
    }

    /// Fault: the next deploy kills the running plugin and deletes its files, then
    /// answers `500 <body>`, as when the extractor fails on something unforeseen.
    pub fn fail_next_deploy_after_kill(&self, body: &str) {
        self.shared.lock().faults.fail_after_kill = Some(body.into());
    }

    /// Fault: until cleared, every deploy stores the zip, then fails with `500
    /// <body>` before the running plugin is touched (the real server's `TypeError`
    /// from recording the device, server/src/runtime.ts `upsertDevice`).
    pub fn fail_deploys_before_kill(&self, body: Option<&str>) {
        self.shared.lock().faults.fail_before_kill = body.map(str::to_string);
    }

    /// The plugin's process exits now, as a crash: Scrypted logs it and restarts
    /// the plugin after `crash_restart`.
    pub fn crash_plugin(&self, npm_name: &str) {
        let mut st = self.shared.lock();
        life::crash(&self.shared, &mut st, npm_name);
    }

    /// Fault: every deploy answer is delayed by `delay`, after its work is done.
    pub fn set_slow_deploys(&self, delay: Duration) {
        self.shared.lock().faults.slow_deploy = delay;
    }

    /// Fault: every answer is delayed by `delay`.
    pub fn set_slow(&self, delay: Duration) {
        self.shared.lock().faults.slow = delay;
    }

    /// A fresh volume: database and plugin files gone, as after `rm -rf` of the
    /// volume followed by a server restart.
    pub fn wipe(&self, downtime: Duration) {
        {
            let mut st = self.shared.lock();
            st.db.clear();
            st.zips.clear();
            st.users.clear();
        }
        if let Some(volume) = &self.shared.options.volume {
            let _ = fs::remove_dir_all(volume.join("plugins"));
        }
        self.restart(downtime);
    }

    /// Every Logger entry since the fake started.
    pub fn logs(&self) -> Vec<LogEntry> {
        self.shared.lock().logs.clone()
    }

    /// Core's auto-update automation: its device id and whether it is on.
    pub fn automation(&self) -> Option<(String, bool)> {
        self.shared
            .lock()
            .automation
            .as_ref()
            .map(|a| (a.id.clone(), a.on))
    }

    /// Fires core's auto-update automation now (it would at 03:15): when it is on,
    /// every installed plugin older than its `latest` gets it, a deprecated one is
    /// uninstalled. Returns the plugins changed.
    pub fn fire_auto_update(&self, latest: &[Latest]) -> Vec<String> {
        life::auto_update(&self.shared, latest)
    }

    /// Uninstalls a plugin as the web UI does (`removeDevice`).
    pub fn remove_plugin(&self, npm_name: &str) -> bool {
        let id = self.plugin(npm_name).map(|r| r.id);
        id.is_some_and(|id| life::remove_device(&self.shared, &id))
    }

    /// Whether a WebSocket upgrade for a missing plugin took the server down.
    pub fn crashed_by_websocket(&self) -> bool {
        self.shared.lock().crashed_by_websocket
    }

    /// Engine.io pongs received (answers to the server's pings).
    pub fn pongs(&self) -> u64 {
        self.shared.lock().pongs
    }

    /// The user of that name, as the fake's database holds it.
    pub fn user(&self, username: &str) -> Option<User> {
        self.shared.lock().users.get(username).cloned()
    }

    /// Every call to the RPC `users` component since the fake started.
    pub fn users_calls(&self) -> Vec<UsersCall> {
        self.shared.lock().users_calls.clone()
    }

    /// How many times `addUser` was called.
    pub fn add_user_calls(&self) -> usize {
        self.users_calls()
            .iter()
            .filter(|c| matches!(c, UsersCall::AddUser { .. }))
            .count()
    }

    /// How many requests would have made the real server download `@scrypted/core`
    /// from npm: any authorized request under `/endpoint/@scrypted/core/` while core
    /// is not installed. The fake installs nothing; tests assert this stays 0.
    pub fn core_install_attempts(&self) -> u32 {
        self.shared.lock().core_installs
    }

    /// Fault: `turnOff()` on a device throws.
    pub fn fail_turn_off(&self, fails: bool) {
        self.shared.lock().turn_off_fails = fails;
    }

    /// Fault: RPC calls are read but never answered (the session stays open).
    pub fn stall_rpc(&self, stalled: bool) {
        self.shared.lock().rpc_stalled = stalled;
    }

    /// Adds Logger entries on a device that is not a plugin until they hold at least
    /// `bytes` of messages: the real Logger keeps 48 h of every device's entries, and
    /// its `getLogs()` answers them all in one message.
    pub fn add_log_noise(&self, bytes: usize) {
        let mut st = self.shared.lock();
        let line = "x".repeat(1000);
        for _ in 0..bytes.div_ceil(line.len()) {
            life::log(&mut st, "9", "i", line.clone());
        }
    }

    /// Stores a setup record directly, as an earlier sideloader would have.
    pub fn seed_setup(&self, npm_name: &str, package_json: Value) {
        let mut st = self.shared.lock();
        let rec = record(&mut st, npm_name);
        rec.package_json = package_json;
    }
}
