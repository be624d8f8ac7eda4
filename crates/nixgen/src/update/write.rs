//! Writes the planned changes and the builder.

use std::path::Path;

use futures_util::{StreamExt as _, stream};

use super::plan::{Action, Actions, fail};
use crate::name::PluginName;
use crate::registry::Registry;
use crate::removed;
use crate::render::{self, RenderError};
use crate::report::{self, Failed, Removed, Report, Updated, Versioned};
use crate::tree::{self, TreeError};

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

/// Records this run's removals in `nix/plugins/removed.json` (and forgets
/// plugins that came back). An unreadable record is reported, never replaced.
pub(super) fn removed_record(root: &Path, writing: bool, report: &mut Report) {
    let failed = |report: &mut Report, e: &anyhow::Error| {
        report.failed.push(Failed {
            name: removed::REMOVED_PATH.to_owned(),
            kept: None,
            error: format!("{e:#}"),
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
    let results: Vec<(PluginName, Action, Result<bool, TreeError>)> = stream::iter(actions)
        .map(|(name, action)| {
            let root = root.to_owned();
            async move {
                if !writing {
                    return (name, action, Ok(false));
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
                report.files_changed += usize::from(changed);
                record(report, &name, action);
            }
            Err(source) => {
                let old = match &action {
                    Action::Update { old, .. } | Action::Remove { old, .. } => old.clone(),
                    Action::Add(..) => None,
                };
                let e = anyhow::Error::new(source).context(format!("cannot write {}", name.npm()));
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
        Action::Update { pin, old, .. } => report.updated.push(Updated {
            name,
            old,
            new: pin.version.to_string(),
        }),
        Action::Remove { old, reason } => report.removed.push(Removed {
            name,
            version: old,
            reason: reason.to_string(),
        }),
    }
}

fn write_action(root: &Path, name: &PluginName, action: &Action) -> Result<bool, TreeError> {
    match action {
        Action::Add(_, text) => tree::create_plugin(root, name, text).map(|()| true),
        Action::Update { text, .. } => {
            let path = root
                .join(tree::PLUGINS_DIR)
                .join(name.as_str())
                .join(tree::PACKAGE_FILE);
            tree::write_generated(&path, text)
        }
        Action::Remove { .. } => tree::remove_plugin(root, name).map(|()| true),
    }
}
