//! Putting back what was in place before a deploy that went wrong, from the copy
//! kept in `stateDir/kept/` (`keep.rs`). Scrypted kills the running plugin before
//! it looks at a zip, and stores a deploy's package.json and zip in its database
//! before it records the device (`docs/scrypted-api.md` §4-5).
//!
//! Keeping that copy ([`keep_copy`]) lives here too, beside the rollback it
//! serves, so the steps that keep one (`health.rs`, `confirm.rs`) need not reach
//! up to `run.rs`.

use crate::deploy::PluginResult;
use crate::error::RunError;
use crate::keep;
use crate::session::Session;
use crate::state::Deployed;
use crate::validate::{self, ValidPlugin};

/// Keeps a copy of what is now in place, for [`roll_back`]. Failing to keep one
/// costs only the rollback, so it is logged, not fatal.
pub(crate) fn keep_copy(session: &Session<'_>, p: &ValidPlugin) {
    if let Err(e) = keep::keep(&session.config.state_dir, p) {
        tracing::warn!(plugin = %p.name, error = %e, "cannot keep a copy for rollback");
    }
}

/// The kept copy of `prev`, checked as a declared plugin would be.
fn kept_copy(session: &Session<'_>, name: &str, prev: &Deployed) -> Result<ValidPlugin, String> {
    let Some(decl) = keep::kept(&session.config.state_dir, name, &prev.zip_md5) else {
        return Err(format!("no copy of {} was kept", prev.version));
    };
    validate::validate(&decl).map_err(|e| format!("the kept {} is unusable: {e}", prev.version))
}

/// A deploy failed before Scrypted touched the running version, but after it had
/// stored the new package.json and zip: its next restart would start those. The
/// kept copy of the running version is stored again, without restarting it
/// (`deploy?no-rebind`). Returns the sentence saying what became of it.
pub async fn restore_record(session: &Session<'_>, name: &str, prev: &Deployed) -> String {
    let old = match kept_copy(session, name, prev) {
        Ok(old) => old,
        Err(e) => {
            tracing::warn!(plugin = %name, error = %e, "Scrypted stores the failed version; it would start it at its next restart");
            return format!(
                "{e}, so Scrypted keeps the failed version stored and would start it at its next restart"
            );
        }
    };
    let c = &session.client;
    let stored = match c.setup(&old).await {
        Ok(()) => c.store_without_restart(&old).await,
        Err(e) => Err(e),
    };
    match stored {
        Ok(()) => {
            tracing::info!(plugin = %name, version = %old.version, "stored again the running version (not restarted)");
            format!(
                "{} still runs, and is what Scrypted stores again",
                old.version
            )
        }
        Err(e) => {
            tracing::warn!(plugin = %name, error = %e, "cannot store the running version again");
            format!(
                "{} still runs, but Scrypted stores the failed version and would start it at its next restart ({e})",
                old.version
            )
        }
    }
}

/// Scrypted killed the old version and the new one did not make it: put the kept
/// copy of the old version back, so the plugin keeps running. Ok/Err: the sentence
/// saying which.
pub async fn roll_back(
    session: &Session<'_>,
    name: &str,
    prev: &Deployed,
) -> Result<Result<String, String>, RunError> {
    let old = match kept_copy(session, name, prev) {
        Ok(old) => old,
        Err(e) => {
            return Ok(Err(format!(
                "{e}, so it could not be put back: the plugin is down"
            )));
        }
    };
    tracing::warn!(plugin = %name, version = %old.version, "rolling back to the version that was in place");
    Ok(match session.deploy_with_retries(&old).await? {
        PluginResult::Deployed => {
            tracing::info!(plugin = %name, version = %old.version, "rolled back; the previous version runs");
            Ok(format!(
                "rolled back: the previous version {} was redeployed and keeps running",
                old.version
            ))
        }
        PluginResult::Failed { reason, .. } => Err(format!(
            "rolling back to {} failed too: {reason}",
            old.version
        )),
    })
}
