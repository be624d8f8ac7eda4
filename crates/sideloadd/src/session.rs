//! What one `run` shares between its steps: the server, the volume, the stop signal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::client::{Client, Probe};
use crate::config::Config;
use crate::notify::Notifier;
use crate::rpc::{RpcError, Scrypted};
use crate::run::RunError;
use crate::volume::Volume;

const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(2);
/// A probe normally answers in milliseconds; one that hangs is cut at the smaller
/// of this and what is left of the readiness budget.
const MAX_PROBE: Duration = Duration::from_secs(10);
const MIN_PROBE: Duration = Duration::from_millis(50);

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
}

impl Session<'_> {
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
                self.notifier
                    .progress(&format!("waiting for Scrypted ({secs} s)"));
                tracing::debug!(waited_s = secs, last = %why, "Scrypted not ready yet");
            }
            if !self.sleep(poll.min(budget - waited)).await {
                return Err(self.interrupted());
            }
            poll = (poll * 3 / 2).min(MAX_POLL);
        }
    }

    /// Adds a plugin that is installed and will not be changed again this run.
    pub fn add_host(&self, name: &str) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if !hosts.iter().any(|h| h == name) {
            hosts.push(name.to_string());
        }
    }

    /// The RPC session, opened (or reopened after its host was redeployed) on a
    /// host that is alive and not in `avoid` (plugins this run will still change).
    pub async fn rpc(&self, avoid: &[&str]) -> Result<Arc<Scrypted>, RpcError> {
        let mut current = self.rpc.lock().await;
        if let Some(s) = current.as_ref()
            && !s.is_closed()
            && !avoid.contains(&s.host())
        {
            return Ok(s.clone());
        }
        let candidates: Vec<String> = self
            .hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|h| !avoid.contains(&h.as_str()))
            .cloned()
            .collect();
        let mut last = RpcError::Connect("no installed plugin to host the RPC session".into());
        for host in candidates {
            let (c, http) = (&self.client, self.client.http());
            match Scrypted::connect(http, c.base(), c.auth(), &host).await {
                Ok(s) => {
                    // Every installed plugin can host a later session.
                    for name in s.installed().keys() {
                        self.add_host(name);
                    }
                    let s = Arc::new(s);
                    *current = Some(s.clone());
                    return Ok(s);
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
