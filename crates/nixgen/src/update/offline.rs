//! What each plugin still fetches at runtime: its native npm dependencies
//! pinned in a lock ([`crate::lockfile`]), the needs found in its plugin.zip
//! ([`crate::needs`]) and, for a Python plugin, whether nixpkgs provides its
//! requirements ([`crate::python`]). Fills in every pin's
//! [`Offline`](crate::classify::Offline) before the plan renders it.

use std::collections::BTreeMap;
use std::path::Path;

use futures_util::{StreamExt as _, stream};

use super::discover::{Fetched, Results};
use crate::classify::{Classified, Pin};
use crate::failure::{Context as _, Failure};
use crate::lockfile::{self, Npm};
use crate::name::PluginName;
use crate::needs;
use crate::registry::Registry;
use crate::report::{Report, Warning};
use crate::tree::{self, Entry};
use std::io::Seek as _;

use crate::verify::{self, Download, VerifyError};

/// How much of the offline work a run does.
pub(super) struct Settings<'a> {
    pub root: &'a Path,
    pub tarballs: &'a Registry,
    /// `None` under `--metadata-only`: no npm, no downloads; what the tree
    /// records is carried over.
    pub npm: Option<Npm>,
    pub jobs: usize,
    /// `--verify`: the download that is scanned is also checked the way
    /// `--verify` checks, and a plugin that fails it fails.
    pub verify: bool,
    /// The tree's alias table; `None` when it has none.
    pub aliases: Option<&'a crate::python::Aliases>,
    /// Where Python plugins' models are pinned from.
    pub hub: &'a crate::hf::Hub,
}

/// A scan that could not look at the zip, or (under `--verify`) a tarball
/// that failed the check.
pub(super) enum ScanFailure {
    Unscanned(Failure),
    Verify(Failure),
}

/// What the tree records for one plugin.
pub(super) struct Old {
    version: Option<String>,
    hash: Option<String>,
    pub(super) needs: Option<Vec<String>>,
    lock: Option<String>,
    pub(super) python_block: Option<String>,
    pub(super) models_block: Option<String>,
}

impl Old {
    fn of(root: &Path, tree: &BTreeMap<PluginName, Entry>, name: &PluginName) -> Option<Self> {
        let Some(Entry::Generated {
            version,
            hash,
            text,
        }) = tree.get(name)
        else {
            return None;
        };
        Some(Self {
            version: version.clone(),
            hash: hash.clone(),
            needs: tree::recorded_needs(text),
            lock: tree::read_lock(root, name),
            python_block: tree::list_block(text, tree::PYTHON_REQUIREMENTS),
            models_block: tree::list_block(text, tree::PYTHON_MODELS),
        })
    }

    pub(super) fn same_pin(&self, pin: &Pin) -> bool {
        self.version.as_deref() == Some(pin.version.to_string().as_str())
            && self.hash.as_deref() == Some(pin.hash.as_str())
    }
}

/// Fills in every Node plugin's offline state. A plugin whose committed lock
/// cannot be refreshed fails (keeping its old pin and lock).
pub(super) async fn fill(
    results: Results,
    tree: &BTreeMap<PluginName, Entry>,
    settings: &Settings<'_>,
    report: &mut Report,
) -> Results {
    let npm_slots = tokio::sync::Semaphore::new(2);
    let done: Vec<_> = stream::iter(results)
        .map(|(name, result)| {
            let old = Old::of(settings.root, tree, &name);
            let slots = &npm_slots;
            async move {
                let Ok(Fetched::Classified(Classified::Plugin(mut pin))) = result else {
                    return (name, result, Vec::new());
                };
                match fill_one(&mut pin, old, settings, slots).await {
                    Ok(warnings) => {
                        let r = Ok(Fetched::Classified(Classified::Plugin(pin)));
                        (name, r, warnings)
                    }
                    Err(e) => (name, Err(e), Vec::new()),
                }
            }
        })
        .buffer_unordered(settings.jobs.max(1))
        .collect()
        .await;
    let mut out = Vec::with_capacity(done.len());
    for (name, result, warnings) in done {
        report
            .warnings
            .extend(warnings.into_iter().map(|message| Warning {
                name: name.to_string(),
                message,
            }));
        out.push((name, result));
    }
    out
}

async fn fill_one(
    pin: &mut Pin,
    old: Option<Old>,
    settings: &Settings<'_>,
    npm_slots: &tokio::sync::Semaphore,
) -> Result<Vec<String>, Failure> {
    let mut warnings = Vec::new();
    if pin.python.is_some() {
        let mut needs = super::python::fill(pin, old.as_ref(), settings, &mut warnings).await?;
        needs.sort();
        needs.dedup();
        pin.offline.needs = needs;
        return Ok(warnings);
    }
    let mut needs = zip_needs(pin, old.as_ref(), settings, &mut warnings).await?;
    if !pin.native_dependencies.is_empty() {
        let _slot = npm_slots.acquire().await;
        if let Some(need) = native(pin, old.as_ref(), settings, &mut warnings).await? {
            needs.push(need);
        }
    }
    needs.sort();
    needs.dedup();
    pin.offline.needs = needs;
    Ok(warnings)
}

/// The needs found in the zip: recorded ones when the pin is unchanged,
/// else a fresh scan.
async fn zip_needs(
    pin: &Pin,
    old: Option<&Old>,
    settings: &Settings<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, Failure> {
    let recorded = old
        .filter(|o| o.same_pin(pin))
        .and_then(|o| o.needs.as_ref())
        .filter(|n| !n.iter().any(|s| s == needs::NOT_SCANNED));
    if let Some(recorded) = recorded {
        let known = recorded.iter().filter(|s| needs::known(s));
        return Ok(known.cloned().collect());
    }
    if settings.npm.is_none() {
        warnings.push("plugin.zip not scanned (--metadata-only)".to_owned());
        return Ok(vec![needs::NOT_SCANNED.to_owned()]);
    }
    match scan(settings.tarballs, pin, settings.verify).await {
        Ok(found) => Ok(found.needs),
        Err(ScanFailure::Verify(e)) => Err(e),
        Err(ScanFailure::Unscanned(e)) => {
            warnings.push(format!("plugin.zip not scanned: {e:#}"));
            Ok(vec![needs::NOT_SCANNED.to_owned()])
        }
    }
}

/// Downloads the tarball (integrity checked, with the download deadline)
/// and scans its plugin.zip; under `--verify` also checks its content.
pub(super) async fn scan(
    registry: &Registry,
    pin: &Pin,
    verify: bool,
) -> Result<needs::Scanned, ScanFailure> {
    let url = registry.tarball_url(&pin.name, &pin.version);
    let what = format!("{} {} from {url}", pin.name.npm(), pin.version);
    let fail = |e: Failure| {
        if verify {
            ScanFailure::Verify(Failure::caused(format!("--verify failed for {what}"), e))
        } else {
            ScanFailure::Unscanned(e)
        }
    };
    let mut download = Download::new()
        .context("cannot create a temporary file")
        .map_err(fail)?;
    if let Err(e) = registry.tarball(&url, &mut download).await {
        return Err(fail(Failure::wrap(e)));
    }
    let pin = pin.clone();
    // Outer error: the tarball is bad; inner: its zip could not be read.
    let checked = tokio::task::spawn_blocking(move || {
        let mut file = download.checked(&pin)?;
        if verify {
            verify::check_archive(&pin, std::io::BufReader::new(&file))?;
            file.rewind().map_err(VerifyError::Archive)?;
        }
        Ok::<_, VerifyError>(needs::scan_tarball(std::io::BufReader::new(file)))
    })
    .await;
    match checked {
        Ok(Ok(Ok(found))) => Ok(found),
        Ok(Ok(Err(e))) => Err(ScanFailure::Unscanned(Failure::caused(what, e))),
        Ok(Err(e)) => Err(fail(Failure::wrap(e))),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Warns about optional dependencies npm silently left out of `lock`, so
/// the summary does not call the tree pinned when it is not whole.
fn incomplete(pin: &mut Pin, lock: &str, warnings: &mut Vec<String>) {
    let missing = lockfile::missing_optional(lock);
    if !missing.is_empty() {
        warnings.push(format!(
            "native dependencies not all pinned: the registry lacks optional dependencies npm left out of the lock: {}",
            missing.join(", ")
        ));
    }
    pin.offline.missing_optional = missing;
}

/// Pins the native dependencies. Returns the need to record when they could
/// not be pinned; an error fails the plugin.
async fn native(
    pin: &mut Pin,
    old: Option<&Old>,
    settings: &Settings<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, Failure> {
    let deps = &pin.native_dependencies;
    let committed = old
        .and_then(|o| o.lock.as_deref())
        .and_then(|l| lockfile::committed_set(l, deps));
    let names: Vec<&str> = deps.iter().map(|(n, _)| n.as_str()).collect();
    let Some(npm) = &settings.npm else {
        if committed.is_some() {
            pin.offline.locked = true;
            let lock = old.and_then(|o| o.lock.as_deref()).unwrap_or("");
            incomplete(pin, lock, warnings);
            return Ok(None);
        }
        warnings.push("native dependencies not pinned (--metadata-only)".to_owned());
        return Ok(Some(needs::native_install(&names)));
    };
    let version = pin.version.to_string();
    match npm.resolve(&pin.name.npm(), &version, deps).await {
        Ok(text) => {
            let fresh = lockfile::validate(&text, deps).ok();
            pin.offline.locked = true;
            incomplete(pin, &text, warnings);
            if committed.is_none() || committed != fresh {
                pin.offline.write_lock = Some(text);
            }
            Ok(None)
        }
        Err(e) if e.is_unresolvable() && old.is_none_or(|o| o.lock.is_none()) => {
            warnings.push(format!("native dependencies not pinned: {e}"));
            Ok(Some(needs::native_install(&names)))
        }
        Err(e) => Err(Failure::wrap(e)),
    }
}
