//! A Python plugin's offline state: its zip is read at every run (there are
//! few of them, and the alias table may have changed since), its
//! requirements decided ([`crate::python::plan`]); they are rendered when
//! nixpkgs provides all of them, else the reasons are recorded as needs and
//! listed under "not pinned for offline use".

use super::models;
use super::offline::{Old, ScanFailure, Settings, scan};
use crate::classify::Pin;
use crate::failure::Failure;
use crate::needs;
use crate::python;

/// Fills `pin.offline.python` (or the reasons it stays unset); returns the
/// needs to record. An error fails the plugin (`--verify` only).
pub(super) async fn fill(
    pin: &mut Pin,
    old: Option<&Old>,
    settings: &Settings<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, Failure> {
    if settings.npm.is_none() {
        return Ok(carried(pin, old, warnings));
    }
    let scanned = match scan(settings.tarballs, pin, settings.verify).await {
        Ok(s) => s,
        Err(ScanFailure::Verify(e)) => return Err(e),
        Err(ScanFailure::Unscanned(e)) => {
            warnings.push(format!("plugin.zip not scanned: {e:#}"));
            return Ok(vec![needs::NOT_SCANNED.to_owned()]);
        }
    };
    let python_needs = decide(pin, scanned.requirements.as_deref(), settings.aliases);
    for need in &python_needs {
        warnings.push(format!("Python packages not from nixpkgs: {need}"));
    }
    let mut needs = scanned.needs;
    // Models are laid out with the Python environment, so only for a plugin
    // that has one.
    if pin.offline.python.is_some() && !scanned.models.is_empty() {
        let hub = settings.hub;
        if models::pin_models(pin, &scanned.models, old, hub, warnings).await {
            needs.retain(|n| n != models::HUB_NEED);
        }
    }
    Ok(needs.into_iter().chain(python_needs).collect())
}

/// Under `--metadata-only`: what the tree records for the same pin, else
/// "not scanned" (and no Python environment).
fn carried(pin: &mut Pin, old: Option<&Old>, warnings: &mut Vec<String>) -> Vec<String> {
    let recorded = old.filter(|o| o.same_pin(pin)).filter(|o| {
        o.needs
            .as_ref()
            .is_some_and(|n| !n.iter().any(|s| s == needs::NOT_SCANNED))
    });
    match recorded {
        Some(o) => {
            pin.offline.python_block = o.python_block.clone();
            pin.offline.models_block = o.models_block.clone();
            o.needs.clone().unwrap_or_default()
        }
        None => {
            warnings.push("plugin.zip not scanned (--metadata-only)".to_owned());
            vec![needs::NOT_SCANNED.to_owned()]
        }
    }
}

/// Sets the requirements to render when nixpkgs provides them all and the
/// plugin runs on the server's Python; returns the reasons otherwise.
fn decide(
    pin: &mut Pin,
    requirements: Option<&str>,
    aliases: Option<&python::Aliases>,
) -> Vec<String> {
    let Some(aliases) = aliases else {
        return vec![format!(
            "pip install at start: the tree has no {}",
            python::aliases::PATH
        )];
    };
    let asked = pin
        .python
        .as_ref()
        .map(|p| p.versions.as_slice())
        .unwrap_or_default();
    let mut reasons: Vec<String> = asked
        .iter()
        .filter(|v| **v != aliases.server_python)
        .map(|v| python::other_python(v, &aliases.server_python))
        .collect();
    // No requirements.txt: Scrypted has nothing to install.
    let Some(text) = requirements else {
        return reasons;
    };
    let plan = python::plan(text, aliases);
    reasons.extend(plan.needs);
    if reasons.is_empty() {
        pin.offline.python = Some(plan.requirements);
    }
    reasons
}
