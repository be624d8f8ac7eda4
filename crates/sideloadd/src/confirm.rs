//! A deployed plugin counts as in place only once Scrypted logs `loaded <name>`
//! for its new process (`docs/scrypted-api.md` §10): deploy answers 200 before the
//! plugin loads, also for one that throws.
//!
//! Confirmation overlaps with the next deploys: the verdict is read from the
//! Logger after the fact, so every plugin is deployed first and the Logger is read
//! once they are all sent; by then most have loaded.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::rpc::{LoadVerdict, RpcError};
use crate::run::{Failure, Outcome, RunError, keep_copy, roll_back};
use crate::session::Session;
use crate::state::{Deployed, State};
use crate::validate::ValidPlugin;

/// A plugin loads in well under a second; a slow one (native modules) in a few.
/// One budget for all the plugins of a run: they load in parallel, and a run that
/// cannot read the Logger at all must not wait this long once per plugin.
pub const LOAD_WITHIN: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
/// Logger timestamps are the server's clock; allow it to be a little behind ours.
const CLOCK_SLACK_MS: u64 = 2_000;
/// Benchmarks only: skip confirmation to measure what it costs.
pub const SKIP_ENV: &str = "SIDELOADD_BENCH_SKIP_LOAD_CONFIRMATION";

/// A plugin deployed this run whose load is not confirmed yet.
#[derive(Debug)]
pub struct Awaiting {
    pub plugin: ValidPlugin,
    /// Our clock when its setup was sent.
    pub since_ms: u64,
    /// What was in place before, for a rollback.
    pub previous: Option<Deployed>,
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
    let deadline = Instant::now() + LOAD_WITHIN;
    if !awaiting.is_empty() {
        let n = awaiting.len();
        session
            .notifier
            .progress(&format!("confirming that {n} deployed plugins loaded"));
    }
    for a in awaiting {
        let verdict = wait_load(session, &a.plugin, a.since_ms, deadline).await?;
        let p = &a.plugin;
        match verdict {
            Ok(()) => {
                tracing::info!(plugin = %p.name, version = %p.version, "loaded");
                state.record(&p.name, Deployed::of(p));
                keep_copy(session, p);
                outcome.deployed.push(p.name.clone());
            }
            Err(why) => {
                tracing::error!(plugin = %p.name, version = %p.version, error = %why, "deployed but did not load");
                let reason = format!("{} was deployed but did not load: {why}", p.version);
                let reason = match &a.previous {
                    Some(prev) if prev.zip_md5 != p.zip_md5 => {
                        roll_back_and_confirm(session, state, &p.name, prev, reason).await?
                    }
                    _ => reason,
                };
                outcome.failed.push(Failure {
                    name: p.name.clone(),
                    reason,
                });
            }
        }
        state.save()?;
    }
    Ok(())
}

/// The previous version goes back and must load too.
async fn roll_back_and_confirm(
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
    let loaded = match &old {
        Some(old) => wait_load(session, old, since, Instant::now() + LOAD_WITHIN).await?,
        None => Err("the kept copy vanished".into()),
    };
    Ok(match loaded {
        Ok(()) => {
            state.record(name, prev.clone());
            format!("{reason}; {said}")
        }
        Err(why) => {
            format!("{reason}; the previous version was redeployed but did not load either: {why}")
        }
    })
}

/// Ok: loaded. Err: Scrypted's own words for why not.
async fn wait_load(
    session: &Session<'_>,
    p: &ValidPlugin,
    since_ms: u64,
    deadline: Instant,
) -> Result<Result<(), String>, RunError> {
    if std::env::var_os(SKIP_ENV).is_some() {
        return Ok(Ok(()));
    }
    let since = since_ms.saturating_sub(CLOCK_SLACK_MS);
    let last = loop {
        let last = match read_verdict(session, p, since).await {
            Ok(Some(LoadVerdict::Loaded)) => return Ok(Ok(())),
            Ok(Some(LoadVerdict::Failed(e) | LoadVerdict::Crashed(e))) => return Ok(Err(e)),
            Ok(None) => "still loading".to_string(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            break last;
        }
        if !session.sleep(POLL).await {
            return Err(session.interrupted());
        }
    };
    Ok(Err(format!(
        "no verdict in Scrypted's log within {} s ({last})",
        LOAD_WITHIN.as_secs()
    )))
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
