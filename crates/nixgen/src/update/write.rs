//! Writes the planned changes and the builder.

use std::collections::BTreeMap;
use std::path::Path;

use futures_util::{StreamExt as _, stream};

use super::plan::{Action, Actions, fail};
use crate::failure::Failure;
use crate::lockfile;
use crate::name::PluginName;
use crate::readme;
use crate::registry::Registry;
use crate::removed;
use crate::render::{self, RenderError};
use crate::report::{self, Failed, Removed, Report, Updated, Versioned};
use crate::tree::{self, Entry, TreeError};

/// Renders `nix/mk-scrypted-plugin.nix` for the tarball registry and writes
/// it when it changed; a hand-written builder is reported and kept.
pub(super) fn builder(
    root: &Path,
    writing: bool,
    tarballs: &Registry,
    report: &mut Report,
) -> Result<(), RenderError> {
    let path = root.join(tree::BUILDER_PATH);
    let text = render::builder_nix(tarballs.base())?;
    let failed = |report: &mut Report, e: &TreeError| {
        report.failed.push(Failed {
            name: tree::BUILDER_PATH.to_owned(),
            kept: None,
            error: report::chain(e),
            not_found: false,
        });
    };
    report.builder = match std::fs::read_to_string(&path) {
        Ok(t) if t == text => "unchanged",
        Ok(t) if !render::is_generated(&t) => {
            failed(report, &TreeError::NotGenerated { path: path.clone() });
            "unchanged"
        }
        Ok(_) => "updated",
        Err(_) => "created",
    };
    if writing && report.builder != "unchanged" {
        match tree::write_generated(&path, &text) {
            Ok(changed) => report.files_changed += usize::from(changed),
            Err(e) => {
                failed(report, &e);
                report.builder = "unchanged";
            }
        }
    }
    Ok(())
}

/// The README table's rows: every generated plugin as the tree will pin it
/// once `actions` are written.
pub(super) fn readme_rows(
    tree: &BTreeMap<PluginName, Entry>,
    actions: &Actions,
) -> Vec<readme::Row> {
    let mut texts: BTreeMap<&PluginName, &str> = tree
        .iter()
        .filter_map(|(n, e)| match e {
            Entry::Generated { text, .. } => Some((n, text.as_str())),
            Entry::HandMaintained => None,
        })
        .collect();
    for (name, action) in actions {
        match action {
            Action::Add(_, text) | Action::Update { text, .. } => {
                texts.insert(name, text);
            }
            Action::Remove { .. } => {
                texts.remove(name);
            }
        }
    }
    texts
        .into_iter()
        .map(|(name, text)| readme::Row {
            npm_name: name.npm(),
            version: tree::pinned(text, "version").unwrap_or_else(|| "?".to_owned()),
            needs: tree::recorded_needs(text)
                .unwrap_or_else(|| vec![crate::needs::NOT_SCANNED.to_owned()]),
            locked: tree::has_lock(text),
        })
        .collect()
}

/// Rewrites the table between README.md's markers when it changed; a README
/// without them is left alone (and the summary says so).
pub(super) fn readme(root: &Path, writing: bool, rows: &[readme::Row], report: &mut Report) {
    let path = root.join(readme::README);
    let Ok(old) = std::fs::read_to_string(&path) else {
        report.readme = "none";
        return;
    };
    let Some(new) = readme::splice(&old, &readme::table(rows)) else {
        report.readme = "no-markers";
        return;
    };
    if new == old {
        report.readme = "unchanged";
        return;
    }
    report.readme = "updated";
    if writing {
        match tree::write_data(&path, &new) {
            Ok(()) => report.files_changed += 1,
            Err(e) => report.failed.push(Failed {
                name: readme::README.to_owned(),
                kept: None,
                error: report::chain(&e),
                not_found: false,
            }),
        }
    }
}

/// Records this run's removals in `nix/plugins/removed.json` (and forgets
/// plugins that came back). An unreadable record is reported, never replaced.
pub(super) fn removed_record(root: &Path, writing: bool, report: &mut Report) {
    let failed = |report: &mut Report, e: &Failure| {
        report.failed.push(Failed {
            name: removed::REMOVED_PATH.to_owned(),
            kept: None,
            error: format!("{e:#}"),
            not_found: false,
        });
    };
    let mut record = match removed::load(root) {
        Ok(r) => r,
        Err(e) => return failed(report, &e),
    };
    if !removed::merge(&mut record, report, &removed::today()) || !writing {
        return;
    }
    match removed::write(root, &record) {
        Ok(()) => report.files_changed += 1,
        Err(e) => failed(report, &e),
    }
}

/// Writes the planned changes. Plugins live in separate directories, so the
/// writes run in parallel: most of their cost is fsync latency, which
/// overlapping hides.
pub(super) async fn apply(
    root: &Path,
    writing: bool,
    jobs: usize,
    actions: Actions,
    report: &mut Report,
) {
    let results: Vec<(PluginName, Action, Result<usize, TreeError>)> = stream::iter(actions)
        .map(|(name, action)| {
            let root = root.to_owned();
            async move {
                if !writing {
                    return (name, action, Ok(0));
                }
                let task = tokio::task::spawn_blocking(move || {
                    let r = write_action(&root, &name, &action);
                    (name, action, r)
                });
                match task.await {
                    Ok(done) => done,
                    Err(join) => std::panic::resume_unwind(join.into_panic()),
                }
            }
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    for (name, action, result) in results {
        match result {
            Ok(changed) => {
                report.files_changed += changed;
                record(report, &name, action);
            }
            Err(source) => {
                let old = match &action {
                    Action::Update { old, .. } | Action::Remove { old, .. } => old.clone(),
                    Action::Add(..) => None,
                };
                let e = Failure::caused(format!("cannot write {}", name.npm()), source);
                fail(report, &name, old, &e);
            }
        }
    }
}

/// Lists a change that was made (or, without writing, would be).
fn record(report: &mut Report, name: &PluginName, action: Action) {
    let name = name.to_string();
    match action {
        Action::Add(pin, _) => report.added.push(Versioned {
            name,
            version: Some(pin.version.to_string()),
        }),
        Action::Update {
            pin,
            old,
            detail,
            changed,
            ..
        } => report.updated.push(Updated {
            name,
            old,
            new: pin.version.to_string(),
            detail: detail.map(str::to_owned),
            changed,
        }),
        Action::Remove { old, reason } => report.removed.push(Removed {
            name,
            version: old,
            reason: reason.to_string(),
        }),
    }
}

/// Writes one plugin's files; returns how many changed. The lock is written
/// before the package.nix naming it, and a lock no longer named is removed
/// after.
fn write_action(root: &Path, name: &PluginName, action: &Action) -> Result<usize, TreeError> {
    let dir = root.join(tree::PLUGINS_DIR).join(name.as_str());
    let lock_path = dir.join(lockfile::LOCK_FILE);
    match action {
        Action::Add(pin, text) => {
            let lock = pin.offline.write_lock.as_deref();
            let extra: Vec<(&str, &str)> =
                lock.map(|l| (lockfile::LOCK_FILE, l)).into_iter().collect();
            tree::create_plugin(root, name, text, &extra).map(|()| 1 + extra.len())
        }
        Action::Update { pin, text, .. } => {
            let mut changed = 0;
            if let Some(lock) = &pin.offline.write_lock {
                tree::write_data(&lock_path, lock)?;
                changed += 1;
            }
            changed += usize::from(tree::write_generated(&dir.join(tree::PACKAGE_FILE), text)?);
            if !pin.offline.locked && lock_path.exists() {
                std::fs::remove_file(&lock_path).map_err(|source| TreeError::Write {
                    path: lock_path.clone(),
                    source,
                })?;
                changed += 1;
            }
            Ok(changed)
        }
        Action::Remove { .. } => tree::remove_plugin(root, name).map(|()| 1),
    }
}
