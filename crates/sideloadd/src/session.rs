//! What one `run` shares between its steps: the server, the volume, the stop signal.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::client::{Client, Probe};
use crate::config::Config;
use crate::error::RunError;
use crate::notify::Notifier;
use crate::rpc::{CORE, RpcError, Scrypted};
use crate::volume::Volume;

const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(2);
/// A probe normally answers in milliseconds; one that hangs is cut at the smaller
/// of this and what is left of the readiness budget.
const MAX_PROBE: Duration = Duration::from_secs(10);
const MIN_PROBE: Duration = Duration::from_millis(50);
/// How often a wait is logged. The status line changes every second; the log
/// gets a line at the first failed probe and then at this pace, so someone
/// watching a terminal or the journal through a long start (the module waits
/// up to 600 s) sees what is awaited and why it is not there yet.
const REPORT_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Session<'a> {
    pub config: &'a Config,
    pub client: Client,
    pub notifier: Notifier,
    pub shutdown: CancellationToken,
    pub volume: Volume,
    /// The RPC session, once one could be opened.
    pub rpc: tokio::sync::Mutex<Option<Arc<Scrypted>>>,
    /// Plugins believed installed, in the order to try them as RPC hosts.
    pub hosts: std::sync::Mutex<Vec<String>>,
    /// Which plugins are installed, as far as this run knows: the server's own list
    /// (from the last RPC session), plus what this run installed, minus what it
    /// removed. Decides which plugins may host a session ([`Session::may_host`]).
    pub known: std::sync::Mutex<Known>,
    /// Scrypted's RPC left a call unanswered this run: not asked again, so a
    /// stalled server costs one timeout, not one per question.
    pub rpc_stalled: std::sync::atomic::AtomicBool,
}

/// What a run knows about which plugins are installed.
#[derive(Debug, Default)]
pub struct Known {
    /// The server's list, once an RPC session gave it.
    pub server: Option<BTreeSet<String>>,
    /// Installed by this run (deploy answered).
    pub installed: BTreeSet<String>,
    /// Removed by this run.
    pub removed: BTreeSet<String>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<'a> Session<'a> {
    pub fn new(
        config: &'a Config,
        client: Client,
        notifier: Notifier,
        shutdown: CancellationToken,
        volume: Volume,
    ) -> Self {
        Self {
            config,
            client,
            notifier,
            shutdown,
            volume,
            rpc: Default::default(),
            hosts: Default::default(),
            known: Default::default(),
            rpc_stalled: Default::default(),
        }
    }

    /// Sleeps unless shut down first; false when interrupted.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.shutdown.cancelled() => false,
        }
    }

    pub fn interrupted(&self) -> RunError {
        RunError::Interrupted {
            in_place: 0,
            total: self.config.plugins.len(),
        }
    }

    pub fn unauthorized(&self) -> RunError {
        RunError::Unauthorized {
            url: self.config.server.clone(),
            token_file: self.config.token_file.clone(),
        }
    }

    /// Polls the readiness probe (`docs/scrypted-api.md` §3) for at most `budget`.
    pub async fn wait_ready(&self, budget: Duration) -> Result<(), RunError> {
        let started = Instant::now();
        let mut poll = FIRST_POLL;
        let mut last_status: Option<u64> = None;
        let mut next_report: Option<Duration> = None;
        loop {
            if self.shutdown.is_cancelled() {
                return Err(self.interrupted());
            }
            let remaining = budget.saturating_sub(started.elapsed());
            let probe_within = remaining.clamp(MIN_PROBE, MAX_PROBE);
            let why = match self.client.probe(probe_within).await {
                Probe::Ready => return Ok(()),
                Probe::Unauthorized => return Err(self.unauthorized()),
                Probe::NotYet(why) => why,
            };
            let waited = started.elapsed();
            if waited >= budget {
                return Err(RunError::NotReady {
                    url: self.config.server.clone(),
                    secs: budget.as_secs(),
                    last: why,
                });
            }
            let secs = waited.as_secs();
            if last_status != Some(secs) {
                last_status = Some(secs);
                self.notifier.progress(&format!(
                    "waiting for Scrypted ({secs} s): {}",
                    root_cause(&why)
                ));
            }
            if next_report.is_none_or(|at| waited >= at) {
                next_report = Some(waited + REPORT_EVERY);
                tracing::info!(
                    waited_s = secs,
                    "waiting for Scrypted at {} to answer (GET /web/component/script/setup), {secs} s of {} s: {why}",
                    self.config.server,
                    budget.as_secs()
                );
            }
            if !self.sleep(poll.min(budget - waited)).await {
                return Err(self.interrupted());
            }
            poll = (poll * 3 / 2).min(MAX_POLL);
        }
    }

    /// Adds a plugin believed installed, as a possible RPC host.
    pub fn add_host(&self, name: &str) {
        let mut hosts = lock(&self.hosts);
        if !hosts.iter().any(|h| h == name) {
            hosts.push(name.to_string());
        }
    }

    /// This run installed `name` (its deploy answered): it can host a session.
    pub fn installed(&self, name: &str) {
        let mut known = lock(&self.known);
        known.removed.remove(name);
        known.installed.insert(name.to_string());
        drop(known);
        self.add_host(name);
    }

    /// This run removed `name`: it is never a host again.
    pub fn removed(&self, name: &str) {
        let mut known = lock(&self.known);
        known.installed.remove(name);
        known.removed.insert(name.to_string());
        drop(known);
        lock(&self.hosts).retain(|h| h != name);
    }

    /// Whether `name`'s endpoint may be touched to host a session. Any request
    /// under `/endpoint/@scrypted/core/` makes a server without core download it
    /// from npm (`docs/scrypted-api.md` §8): core only when the server's own list,
    /// or else the volume, shows it installed. Another plugin also on a claim (the
    /// state file), since its polling handshake is harmless and is the server's own
    /// word on whether it is alive; the WebSocket, which would kill the server for
    /// a missing plugin, is opened only after that handshake. A volume that lacks a
    /// plugin does not veto it: a wrong `volume` setting must not cut RPC off.
    pub fn may_host(&self, name: &str) -> bool {
        let known = lock(&self.known);
        if known.removed.contains(name) {
            return false;
        }
        if known.installed.contains(name) {
            return true;
        }
        if let Some(server) = &known.server {
            return server.contains(name);
        }
        name != CORE || self.volume.installed(name) == Some(true)
    }

    /// Whether the server (or failing that, the volume) says `name` is installed;
    /// None when neither can tell.
    pub fn known_installed(&self, name: &str) -> Option<bool> {
        let known = lock(&self.known);
        if known.removed.contains(name) {
            return Some(false);
        }
        if known.installed.contains(name) {
            return Some(true);
        }
        match &known.server {
            Some(server) => Some(server.contains(name)),
            None => self.volume.installed(name),
        }
    }

    /// The RPC session, opened (or reopened after its host was redeployed) on a
    /// host that is alive, known installed ([`Session::may_host`]) and not in
    /// `avoid` (plugins this run will still change).
    pub async fn rpc(&self, avoid: &[&str]) -> Result<Arc<Scrypted>, RpcError> {
        use std::sync::atomic::Ordering;
        let mut current = self.rpc.lock().await;
        if current.as_ref().is_some_and(|s| s.is_stalled()) {
            self.rpc_stalled.store(true, Ordering::Relaxed);
        }
        if self.rpc_stalled.load(Ordering::Relaxed) {
            return Err(RpcError::Timeout(
                "Scrypted's RPC, which stopped answering earlier in this run".into(),
            ));
        }
        if let Some(s) = current.as_ref()
            && !s.is_closed()
            && !avoid.contains(&s.host())
        {
            return Ok(s.clone());
        }
        let candidates: Vec<String> = lock(&self.hosts)
            .iter()
            .filter(|h| !avoid.contains(&h.as_str()) && self.may_host(h))
            .cloned()
            .collect();
        let mut last = RpcError::Connect("no installed plugin to host the RPC session".into());
        for host in candidates {
            let (c, http) = (&self.client, self.client.http());
            match Scrypted::connect(http, c.base(), c.auth(), &host).await {
                Ok(s) => {
                    let installed = s.installed();
                    // Every installed plugin can host a later session.
                    for name in installed.keys() {
                        self.add_host(name);
                    }
                    lock(&self.known).server = Some(installed.into_keys().collect());
                    let s = Arc::new(s);
                    *current = Some(s.clone());
                    return Ok(s);
                }
                Err(e @ RpcError::Timeout(_)) => {
                    tracing::warn!(host, error = %e, "Scrypted's RPC does not answer; not asked again this run");
                    self.rpc_stalled.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                Err(e) => {
                    tracing::debug!(host, error = %e, "cannot host the RPC session");
                    last = e;
                }
            }
        }
        Err(last)
    }
}

/// The innermost cause of a probe failure (`Connection refused (os error
/// 111)`), short enough for systemd's one-line status; the log has the whole
/// chain with the URL.
fn root_cause(why: &str) -> &str {
    why.rsplit(": ").next().unwrap_or(why)
}
