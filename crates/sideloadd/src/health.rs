//! A plugin put in place by an earlier run can have died since: it crashed after
//! loading, or fails at every start. Such a plugin is reported on every run, not
//! counted as in place; it is redeployed only when its installed files are not the
//! declared ones (redeploying the same files would change nothing).
//! `docs/scrypted-api.md` §9-10: no `pid` in `getPluginInfo` means no process.

use crate::confirm;
use crate::outcome::{Failure, Outcome};
use crate::rollback::keep_copy;
use crate::session::Session;
use crate::validate::ValidPlugin;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Running,
    /// Why it is not running, in Scrypted's words where it has some.
    Dead(String),
    /// Scrypted could not be asked.
    Unknown,
}

/// Whether an unchanged plugin's process is up and its newest start did not fail.
pub async fn check(session: &Session<'_>, p: &ValidPlugin) -> Health {
    if session.known_installed(&p.name) == Some(false) {
        return Health::Dead("it is not installed".into());
    }
    match confirm::still_running(session, p, 0).await {
        Ok(None) => Health::Running,
        Ok(Some(why)) => Health::Dead(why),
        Err(e) => match confirm::endpoint_says_crashed(session, &p.name).await {
            Some(why) => Health::Dead(why),
            None => {
                tracing::debug!(plugin = %p.name, error = %e, "cannot check that it runs");
                Health::Unknown
            }
        },
    }
}

/// Counts an unchanged plugin as in place, or reports it as not running.
pub fn report(session: &Session<'_>, p: &ValidPlugin, health: Health, outcome: &mut Outcome) {
    if let Health::Dead(why) = health {
        tracing::error!(plugin = %p.name, version = %p.version, error = %why, "in place but not running");
        outcome.failed.push(Failure {
            name: p.name.clone(),
            reason: format!(
                "{} is installed as declared but not running: {why} (its files are the declared \
                 ones, so it was not redeployed)",
                p.version
            ),
        });
        return;
    }
    tracing::info!(plugin = %p.name, version = %p.version, "unchanged, not redeployed");
    // Also for plugins deployed before copies were kept.
    keep_copy(session, p);
    outcome.unchanged.push(p.name.clone());
}
