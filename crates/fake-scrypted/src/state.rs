//! The server's shared state: its "database", faults and control channel.

use crate::{
    life, life::LogEntry, records::Options, records::PluginRecord, records::RequestRecord,
    records::Route, users::User, users::UsersCall,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) reset_next: Vec<Route>,
    pub(crate) fail_next: Vec<Route>,
    pub(crate) restart_after_setup: Option<Duration>,
    pub(crate) down_after_requests: Option<(usize, Duration)>,
    pub(crate) slow: Duration,
    /// Extra delay before answering a deploy (a hung deploy).
    pub(crate) slow_deploy: Duration,
    /// The next deploy kills the plugin, then fails with this 500 body.
    pub(crate) fail_after_kill: Option<String>,
    /// Every deploy fails with this 500 body before touching the running plugin,
    /// as recording the device does on a package.json it chokes on.
    pub(crate) fail_before_kill: Option<String>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) db: BTreeMap<String, PluginRecord>,
    pub(crate) zips: BTreeMap<String, Vec<u8>>,
    pub(crate) requests: Vec<RequestRecord>,
    pub(crate) faults: Faults,
    pub(crate) next_pid: u64,
    pub(crate) boots: u32,
    /// Nothing is answered before this (a huge entry stalled the main process).
    pub(crate) frozen_until: Option<Instant>,
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) next_device: u64,
    pub(crate) automation: Option<life::Automation>,
    /// Pongs received on RPC sessions.
    pub(crate) pongs: u64,
    pub(crate) crashed_by_websocket: bool,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) users_calls: Vec<UsersCall>,
    /// Requests under `/endpoint/@scrypted/core/` while core was not installed: each
    /// makes the real server install npm's latest core (`docs/scrypted-api.md` §8).
    pub(crate) core_installs: u32,
    /// RPC calls are received but never answered (a stalled server or host).
    pub(crate) rpc_stalled: bool,
    /// `turnOff()` throws.
    pub(crate) turn_off_fails: bool,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) addr: SocketAddr,
    pub(crate) state: Mutex<State>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    pub(crate) events: tokio::sync::broadcast::Sender<life::Event>,
}

#[derive(Debug)]
pub(crate) enum Control {
    Down(Duration),
}

/// The plugin's record, created (with a new device id) if missing.
pub(crate) fn record<'a>(st: &'a mut State, name: &str) -> &'a mut PluginRecord {
    if !st.db.contains_key(name) {
        let id = life::new_id(st);
        st.db.insert(
            name.into(),
            PluginRecord {
                id,
                ..PluginRecord::default()
            },
        );
    }
    st.db.get_mut(name).expect("just inserted")
}

impl Shared {
    pub(crate) fn go_down(&self, downtime: Duration) {
        let _ = self.control.send(Control::Down(downtime));
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not hide the recorded requests from the test.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
