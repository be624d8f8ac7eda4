//! A deployed plugin counts as in place only once Scrypted logs `loaded <name>`
//! for its new process, and only while that process still runs
//! (`docs/scrypted-api.md` §10): deploy answers 200 before the plugin loads, also
//! for one that throws, and a plugin can exit right after loading.
//!
//! Confirmation overlaps with the next deploys: the verdict is read from the
//! Logger after the fact, so every plugin is deployed first and the Logger is read
//! once they are all sent; by then most have loaded.
//!
//! Not being able to read a verdict (RPC down or stalled) is not a failure to
//! load: such a plugin is never rolled back; its journaled step stays pending and
//! a later run confirms it (`state.rs`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::RunError;
use crate::outcome::{Failure, Outcome};
use crate::rollback::{keep_copy, roll_back};
use crate::rpc::{LoadVerdict, RpcError};
use crate::session::Session;
use crate::state::{Deployed, State};
use crate::validate::ValidPlugin;

const POLL: Duration = Duration::from_millis(100);
/// A plugin must still run this long after its `loaded` line before the run counts
/// it in place: one that exits at once is caught here; a later death is caught by
/// the next run's health check (`health.rs`).
pub const SETTLE: Duration = Duration::from_secs(3);
/// Logger timestamps are the server's clock; allow it to be a little behind ours.
const CLOCK_SLACK_MS: u64 = 2_000;
/// Benchmarks only: skip confirmation to measure what it costs.
pub const SKIP_ENV: &str = "SIDELOADD_BENCH_SKIP_LOAD_CONFIRMATION";

/// A plugin deployed (this run, or by an interrupted earlier one) whose load is
/// not confirmed yet.
#[derive(Debug)]
pub struct Awaiting {
    pub plugin: ValidPlugin,
    /// Our clock when its setup was sent; 0: the newest start decides.
    pub since_ms: u64,
    /// What was in place before, for a rollback.
    pub previous: Option<Deployed>,
}

/// What is known about a deployed plugin's load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    /// Loaded, and running when last looked at.
    Running,
    /// Scrypted's own words for why it is not running.
    Failed(String),
    /// Scrypted could not be asked (RPC down or stalled): unknown, not failed.
    Unconfirmed(String),
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub async fn confirm_all(
    session: &Session<'_>,
    awaiting: Vec<Awaiting>,
    state: &mut State,
    outcome: &mut Outcome,
) -> Result<(), RunError> {
    if awaiting.is_empty() {
        return Ok(());
    }
    let n = awaiting.len();
    session
        .notifier
        .progress(&format!("confirming that {n} deployed plugins loaded"));
    let deadline = Instant::now() + session.config.load_timeout;
    let mut verdicts = Vec::with_capacity(n);
    for a in awaiting {
        let load = wait_load(session, &a.plugin, a.since_ms, deadline).await?;
        verdicts.push((a, load));
    }
    settle(session, &mut verdicts).await?;
    for (a, load) in verdicts {
        conclude(session, a, load, state, outcome).await?;
        state.save()?;
    }
    Ok(())
}

/// Waits [`SETTLE`], then looks again at every plugin that loaded: one that exited
/// meanwhile is not in place.
async fn settle(session: &Session<'_>, verdicts: &mut [(Awaiting, Load)]) -> Result<(), RunError> {
    if std::env::var_os(SKIP_ENV).is_some() || !verdicts.iter().any(|(_, l)| *l == Load::Running) {
        return Ok(());
    }
    if !session.sleep(SETTLE).await {
        return Err(session.interrupted());
    }
    for (a, load) in verdicts.iter_mut().filter(|(_, l)| *l == Load::Running) {
        match still_running(session, &a.plugin, a.since_ms).await {
            Ok(None) => {}
            Ok(Some(why)) => *load = Load::Failed(why),
            Err(e) => match endpoint_says_crashed(session, &a.plugin.name).await {
                Some(why) => *load = Load::Failed(why),
                None => {
                    tracing::warn!(plugin = %a.plugin.name, error = %e, "loaded, but cannot check that it still runs");
                    *load = Load::Unconfirmed(format!(
                        "it loaded, but whether it still runs could not be checked: {e}"
                    ));
                }
            },
        }
    }
    Ok(())
}

/// Without RPC (often because the plugin that crashed was the session's host), the
/// plugin's own polling handshake tells: a crashed plugin answers `503`, one with
/// no process at all `500` (`docs/scrypted-api.md` §8; server/src/runtime.ts,
/// `handleEngineIOEndpoint`). Only asked of a plugin known installed.
pub async fn endpoint_says_crashed(session: &Session<'_>, name: &str) -> Option<String> {
    if !session.may_host(name) {
        return None;
    }
    let c = &session.client;
    match crate::rpc::peer::host_alive(c.http(), c.base(), c.auth(), name).await {
        Err(RpcError::HostNotAlive { answer, .. })
            if answer.starts_with("503") || answer.starts_with("500") =>
        {
            Some(format!(
                "its process is not running (its endpoint answers {answer})"
            ))
        }
        _ => None,
    }
}

/// None: its process is up and its newest start loaded. Some: why it is not running.
pub async fn still_running(
    session: &Session<'_>,
    p: &ValidPlugin,
    since_ms: u64,
) -> Result<Option<String>, RpcError> {
    let since = since_ms.saturating_sub(CLOCK_SLACK_MS);
    let verdict = read_verdict(session, p, since).await?;
    let rpc = session.rpc(&[]).await?;
    let up = rpc.process_up(&p.name).await?;
    Ok(match (verdict, up) {
        (Some(LoadVerdict::Failed(e) | LoadVerdict::Crashed(e)), _) => Some(e),
        (_, Some(false)) => Some("its process is not running (Scrypted shows it crashed)".into()),
        (_, None) => Some("it is not installed".into()),
        _ => None,
    })
}

/// Whether the newest start of `p` logged `loaded` (and nothing after it).
pub async fn newest_loaded(session: &Session<'_>, p: &ValidPlugin) -> bool {
    matches!(
        read_verdict(session, p, 0).await,
        Ok(Some(LoadVerdict::Loaded))
    )
}

/// Records what is in place, or rolls back, or leaves the step pending.
async fn conclude(
    session: &Session<'_>,
    a: Awaiting,
    load: Load,
    state: &mut State,
    outcome: &mut Outcome,
) -> Result<(), RunError> {
    let p = &a.plugin;
    let why = match load {
        Load::Running => {
            tracing::info!(plugin = %p.name, version = %p.version, "loaded");
            state.resolve(&p.name, Deployed::of(p));
            keep_copy(session, p);
            outcome.deployed.push(p.name.clone());
            return Ok(());
        }
        Load::Unconfirmed(why) => {
            tracing::error!(plugin = %p.name, version = %p.version, error = %why, "deployed, but cannot confirm that it loaded; not rolled back");
            outcome.failed.push(Failure {
                name: p.name.clone(),
                reason: format!(
                    "{} was deployed, but whether it loaded could not be confirmed ({why}); \
                     not rolled back: the next run confirms it",
                    p.version
                ),
            });
            return Ok(());
        }
        Load::Failed(why) => why,
    };
    tracing::error!(plugin = %p.name, version = %p.version, error = %why, "deployed but did not load");
    let reason = format!("{} was deployed but did not load: {why}", p.version);
    let reason = match &a.previous {
        Some(prev) if prev.zip_md5 != p.zip_md5 => {
            roll_back_and_confirm(session, state, &p.name, prev, reason).await?
        }
        Some(_) | None => {
            state.abandon(&p.name);
            reason
        }
    };
    outcome.failed.push(Failure {
        name: p.name.clone(),
        reason,
    });
    Ok(())
}

/// The previous version goes back and must load too, whether the new one failed
/// to deploy or to load. Until it does, the step stays pending, so a later run
/// can still undo it.
pub async fn roll_back_and_confirm(
    session: &Session<'_>,
    state: &mut State,
    name: &str,
    prev: &Deployed,
    reason: String,
) -> Result<String, RunError> {
    let since = now_ms();
    let back = roll_back(session, name, prev).await?;
    let Ok(said) = back else {
        return Ok(format!("{reason}; {}", back.unwrap_or_else(|e| e)));
    };
    let old = crate::keep::kept(&session.config.state_dir, name, &prev.zip_md5)
        .and_then(|d| crate::validate::validate(&d).ok());
    let deadline = Instant::now() + session.config.load_timeout;
    let loaded = match &old {
        Some(old) => wait_load(session, old, since, deadline).await?,
        None => Load::Failed("the kept copy vanished".into()),
    };
    Ok(match loaded {
        Load::Running => {
            state.resolve(name, prev.clone());
            format!("{reason}; {said}")
        }
        Load::Failed(why) | Load::Unconfirmed(why) => {
            format!("{reason}; the previous version was redeployed but did not load either: {why}")
        }
    })
}

/// Polls the plugin's Logger until a verdict or `deadline`. No verdict in time with
/// the Logger readable: it did not load within the budget. No verdict because
/// Scrypted could not be asked: unconfirmed.
pub async fn wait_load(
    session: &Session<'_>,
    p: &ValidPlugin,
    since_ms: u64,
    deadline: Instant,
) -> Result<Load, RunError> {
    if std::env::var_os(SKIP_ENV).is_some() {
        return Ok(Load::Running);
    }
    let since = since_ms.saturating_sub(CLOCK_SLACK_MS);
    loop {
        let last = match read_verdict(session, p, since).await {
            Ok(Some(LoadVerdict::Loaded)) => return Ok(Load::Running),
            Ok(Some(LoadVerdict::Failed(e) | LoadVerdict::Crashed(e))) => {
                return Ok(Load::Failed(e));
            }
            Ok(None) => None,
            Err(e) => match endpoint_says_crashed(session, &p.name).await {
                Some(why) => return Ok(Load::Failed(why)),
                None => Some(e.to_string()),
            },
        };
        if Instant::now() >= deadline {
            let secs = session.config.load_timeout.as_secs();
            return Ok(match last {
                Some(e) => Load::Unconfirmed(format!("Scrypted's log could not be read: {e}")),
                None => Load::Failed(format!("still loading after {secs} s (loadTimeoutSecs)")),
            });
        }
        if !session.sleep(POLL).await {
            return Err(session.interrupted());
        }
    }
}

async fn read_verdict(
    session: &Session<'_>,
    p: &ValidPlugin,
    since: u64,
) -> Result<Option<LoadVerdict>, RpcError> {
    let rpc = session.rpc(&[]).await?;
    let Some(id) = rpc.plugin_id(&p.name).await? else {
        return Err(RpcError::Protocol(format!("{} is not installed", p.name)));
    };
    rpc.load_verdict(&p.name, &id, since).await
}
