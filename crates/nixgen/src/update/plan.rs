//! Decides, per fetched plugin, what happens to its directory.

use std::collections::{BTreeMap, BTreeSet};

use super::TooManyRemovals;
use super::discover::{Fetched, Results, push_skip};
use crate::changes;
use crate::classify::{Classified, Pin, SkipReason};
use crate::failure::{Context as _, Failure};
use crate::name::PluginName;
use crate::render;
use crate::report::{Failed, Report};
use crate::tree::{self, Entry};
use crate::trust::summary::Deprecated;

pub(super) enum Action {
    Add(Pin, String),
    Update {
        pin: Pin,
        text: String,
        old: Option<String>,
        new_pin: bool,
        /// What changed besides the pin, for the summary.
        detail: Option<&'static str>,
        /// The parts of the file that differ, when the pin did not change.
        changed: Vec<&'static str>,
    },
    Remove {
        old: Option<String>,
        reason: SkipReason,
    },
}

pub(super) type Actions = BTreeMap<PluginName, Action>;

/// What the tree pins for one plugin now.
struct Old<'a> {
    version: Option<String>,
    hash: Option<&'a str>,
    text: &'a str,
}

fn old_of<'a>(tree: &'a BTreeMap<PluginName, Entry>, name: &PluginName) -> Option<Old<'a>> {
    match tree.get(name) {
        Some(Entry::Generated {
            version,
            hash,
            text,
        }) => Some(Old {
            version: version.clone(),
            hash: hash.as_deref(),
            text: text.as_str(),
        }),
        _ => None,
    }
}

pub(super) struct Inputs<'a> {
    pub tree: &'a BTreeMap<PluginName, Entry>,
    pub listed: Option<&'a BTreeSet<PluginName>>,
    pub keep_removed: bool,
}

pub(super) fn plan(results: Results, inputs: &Inputs<'_>, report: &mut Report) -> Actions {
    let mut actions = BTreeMap::new();
    report.documents = results.len();
    for (name, result) in results {
        let old = old_of(inputs.tree, &name);
        let old_version = old.as_ref().and_then(|o| o.version.clone());
        let removal = match result {
            Err(e) => {
                fail(report, &name, old_version, &e);
                continue;
            }
            // The summary's cooldown section says why.
            Ok(Fetched::Held) => continue,
            Ok(Fetched::Classified(Classified::Deprecated { version, message })) => {
                deprecated(report, &name, old_version, version, message);
                continue;
            }
            Ok(Fetched::Gone(url)) => match gone(&name, url, old.is_some(), inputs.listed) {
                Ok(reason) => reason,
                Err(e) => {
                    report.failed.push(Failed {
                        name: name.to_string(),
                        kept: old_version,
                        error: e.to_string(),
                        not_found: true,
                    });
                    continue;
                }
            },
            Ok(Fetched::Classified(Classified::Skip(reason))) => {
                if old.is_none() || !reason.removes_package() {
                    push_skip(report, name.to_string(), reason, "");
                    continue;
                }
                reason
            }
            Ok(Fetched::Classified(Classified::Plugin(pin))) => {
                match refresh(*pin, old.as_ref()) {
                    Ok(Some(action)) => {
                        actions.insert(name, action);
                    }
                    Ok(None) => report.unchanged += 1,
                    Err(e) => fail(report, &name, old_version, &e),
                }
                continue;
            }
        };
        if inputs.keep_removed {
            push_skip(
                report,
                name.to_string(),
                removal,
                ", kept by --keep-removed",
            );
        } else {
            let action = Action::Remove {
                old: old_version,
                reason: removal,
            };
            actions.insert(name, action);
        }
    }
    actions
}

/// A 404 that does not remove a pin: typed, so the summary can group a
/// partial mirror's many 404s instead of listing each alike.
#[derive(Debug, thiserror::Error)]
enum NotRemoved {
    #[error("{npm} is not in the registry ({url})")]
    Unknown { npm: String, url: String },
    #[error("{npm} answers 404 at {url}, but {why}")]
    Unconfirmed {
        npm: String,
        url: String,
        why: &'static str,
    },
}

/// A deprecated `latest` is never pinned; a plugin that has a pin keeps it
/// and is listed with npm's message.
fn deprecated(
    report: &mut Report,
    name: &PluginName,
    kept: Option<String>,
    version: String,
    message: String,
) {
    if kept.is_none() {
        let reason = SkipReason::Deprecated(message);
        push_skip(report, name.to_string(), reason, "");
        return;
    }
    report.trust.deprecated.push(Deprecated {
        name: name.to_string(),
        version,
        kept,
        message,
    });
}

/// A 404 removes a pin only when a successful search no longer lists the
/// plugin: alone, it is what a partial mirror or an outage also answers.
fn gone(
    name: &PluginName,
    url: reqwest::Url,
    pinned: bool,
    listed: Option<&BTreeSet<PluginName>>,
) -> Result<SkipReason, NotRemoved> {
    let (npm, url) = (name.npm(), url.to_string());
    if !pinned {
        return Err(NotRemoved::Unknown { npm, url });
    }
    let why = match listed {
        None => "no registry search confirmed it was removed",
        Some(l) if l.contains(name) => "the registry search still lists it",
        Some(_) => return Ok(SkipReason::Gone),
    };
    Err(NotRemoved::Unconfirmed { npm, url, why })
}

/// The action for a Node plugin, `None` when its file is already right.
fn refresh(pin: Pin, old: Option<&Old<'_>>) -> Result<Option<Action>, Failure> {
    let text =
        render::package_nix(&pin).with_context(|| format!("cannot render {}", pin.name.npm()))?;
    let Some(old) = old else {
        return Ok(Some(Action::Add(pin, text)));
    };
    let lock_changed = pin.offline.write_lock.is_some();
    if old.text == text && !lock_changed {
        return Ok(None);
    }
    let new_pin = old.hash != Some(pin.hash.as_str())
        || old.version.as_deref() != Some(pin.version.to_string().as_str());
    let whole = pin.offline.missing_optional.is_empty();
    let detail = lock_changed.then_some(match (tree::has_lock(old.text), whole) {
        (true, true) => "native dependencies changed",
        (true, false) => "native dependencies changed, not all pinned (see warnings)",
        (false, true) => "native dependencies pinned",
        (false, false) => "native dependencies locked, not all pinned (see warnings)",
    });
    let changed = if new_pin {
        Vec::new()
    } else {
        changes::changed(old.text, &text)
    };
    Ok(Some(Action::Update {
        pin,
        text,
        old: old.version.clone(),
        new_pin,
        detail,
        changed,
    }))
}

/// Removals a run makes without `--allow-removals`: a few, and never more
/// than one plugin in ten.
pub(super) const MAX_REMOVALS: usize = 3;

/// Refuses a plan that removes more than a few plugins.
pub(super) fn check_removals(
    actions: &Actions,
    tree: &BTreeMap<PluginName, Entry>,
) -> Result<(), TooManyRemovals> {
    let removals: Vec<String> = actions
        .iter()
        .filter_map(|(name, a)| match a {
            Action::Remove { old, reason } => Some(format!(
                "  {name} {} ({reason})",
                old.as_deref().unwrap_or("?")
            )),
            _ => None,
        })
        .collect();
    let generated = tree
        .values()
        .filter(|e| matches!(e, Entry::Generated { .. }))
        .count();
    let n = removals.len();
    if n > MAX_REMOVALS || (n > 1 && n * 10 > generated) {
        return Err(TooManyRemovals {
            removals,
            generated,
        });
    }
    Ok(())
}

pub(super) fn fail(report: &mut Report, name: &PluginName, kept: Option<String>, e: &Failure) {
    report.failed.push(Failed {
        name: name.to_string(),
        kept,
        error: format!("{e:#}"),
        not_found: false,
    });
}
