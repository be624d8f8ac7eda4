//! Which plugins to look at, and their registry documents: the names already
//! known are fetched while the search runs, then whatever the search adds.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt as _, stream};
use reqwest::Url;

use super::Options;
use super::progress::Bar;
use crate::classify::{Classified, SkipReason, classify};
use crate::config::Config;
use crate::failure::{Context as _, Failure};
use crate::name::PluginName;
use crate::registry::{FetchError, Registry};
use crate::report::{self, Report};
use crate::tree::{Entry, Scan};

pub(super) enum Fetched {
    Classified(Classified),
    Gone(Url),
    /// The release cooldown keeps the pin (or does not add the plugin yet).
    Held,
}

pub(super) type Results = Vec<(PluginName, Result<Fetched, Failure>)>;

/// What discovery found.
pub(super) struct Found {
    pub results: Results,
    /// What a successful search listed: the only evidence, beside a 404,
    /// that a pinned plugin really left the registry.
    pub listed: Option<BTreeSet<PluginName>>,
}

/// Everything discovery needs to know, borrowed from the run.
pub(super) struct Ctx<'a> {
    pub opts: &'a Options,
    pub config: &'a Config,
    pub scan: &'a Scan,
    pub registry: &'a Registry,
}

impl Ctx<'_> {
    /// Why a name is not fetched at all, if it is not.
    fn skip(&self, name: &PluginName) -> Option<SkipReason> {
        if self.config.ignore.contains(name) {
            Some(SkipReason::Ignored)
        } else if self.scan.plugins.get(name) == Some(&Entry::HandMaintained) {
            Some(SkipReason::HandMaintained)
        } else {
            None
        }
    }

    async fn fetch(&self, names: Vec<PluginName>, progress: &Bar) -> Results {
        stream::iter(names)
            .map(|name| async move {
                let held = self.config.hold.get(&name);
                let r = fetch_one(self.registry, &name, held).await;
                let state = match &r {
                    Ok(Fetched::Classified(_)) => "fetched",
                    Ok(Fetched::Gone(_)) => "not found (404)",
                    Ok(Fetched::Held) => "held back (cooldown)",
                    Err(_) => "failed",
                };
                progress.tick(&name, state);
                (name, r)
            })
            .buffer_unordered(self.opts.jobs.max(1))
            .collect()
            .await
    }
}

/// Fetches the known plugins and, unless `--only`, those the search adds.
pub(super) async fn discover(ctx: &Ctx<'_>, report: &mut Report) -> Found {
    let known = known_names(ctx.opts, ctx.config, &ctx.scan.plugins);
    let (known_fetch, mut skipped): (Vec<_>, Vec<_>) =
        known.iter().cloned().partition(|n| ctx.skip(n).is_none());
    let progress = Bar::new(ctx.opts.progress, known_fetch.len() as u64);
    let search = async {
        if ctx.opts.only.is_empty() {
            Some(search_names(ctx.registry).await)
        } else {
            None
        }
    };
    let (searched, mut results) = tokio::join!(search, ctx.fetch(known_fetch, &progress));
    let mut listed = None;
    if let Some(searched) = searched {
        let found = take_search(searched, report);
        if report.search_error.is_none() {
            listed = Some(found.listed.clone());
        }
        let (new, new_skipped): (Vec<_>, Vec<_>) = found
            .names
            .into_iter()
            .filter(|n| !known.contains(n))
            .partition(|n| ctx.skip(n).is_none());
        skipped.extend(new_skipped);
        progress.add_total(new.len() as u64);
        results.extend(ctx.fetch(new, &progress).await);
    }
    progress.finish();
    for name in skipped {
        let reason = ctx.skip(&name).unwrap_or(SkipReason::Ignored);
        push_skip(report, name.to_string(), reason, "");
    }
    Found { results, listed }
}

/// A failed search is reported once and counts as an empty one.
fn take_search(searched: Result<Searched, FetchError>, report: &mut Report) -> Searched {
    let found = match searched {
        Ok(found) => found,
        Err(e) => {
            let msg = report::chain(&e);
            // The summary says so; once is enough.
            tracing::debug!("search failed, refreshing the known plugins only: {msg}");
            report.search_error = Some(msg);
            return Searched::default();
        }
    };
    for (raw, why) in &found.invalid {
        push_skip(
            report,
            raw.clone(),
            SkipReason::InvalidName(why.clone()),
            "",
        );
    }
    found
}

/// Names to refresh whatever the search says: `--only`, or the generated
/// plugins in the tree plus the config's `extra` and `hold` names.
fn known_names(
    opts: &Options,
    config: &Config,
    tree: &BTreeMap<PluginName, Entry>,
) -> BTreeSet<PluginName> {
    if !opts.only.is_empty() {
        return opts.only.iter().cloned().collect();
    }
    let generated = tree
        .iter()
        .filter(|(_, e)| matches!(e, Entry::Generated { .. }))
        .map(|(n, _)| n.clone());
    generated
        .chain(config.extra.iter().cloned())
        .chain(config.hold.keys().cloned())
        .collect()
}

#[derive(Debug, Default)]
struct Searched {
    /// `@scrypted/*` names: the plugins discovery adds by itself.
    names: BTreeSet<PluginName>,
    /// Every valid name of any scope the search listed: evidence that a
    /// plugin is still on the registry, whatever its scope (an `extra`
    /// community plugin whose `/latest` answers 404 keeps its pin too).
    listed: BTreeSet<PluginName>,
    /// `@scrypted/` names that are not valid plugin names: (as found, why).
    invalid: Vec<(String, String)>,
}

/// The search's `@scrypted/*` names; other scopes are dropped unseen.
async fn search_names(registry: &Registry) -> Result<Searched, FetchError> {
    let mut out = Searched::default();
    for raw in registry.search().await?.names {
        if let Ok(n) = PluginName::from_npm(&raw) {
            out.listed.insert(n);
        }
        match PluginName::from_scoped(&raw) {
            None => tracing::debug!(name = %raw.escape_debug(), "not in the @scrypted scope"),
            Some(Ok(n)) => {
                out.listed.insert(n.clone());
                out.names.insert(n);
            }
            Some(Err(e)) => out.invalid.push((format!("{raw:?}"), e.to_string())),
        }
    }
    Ok(out)
}

async fn fetch_one(
    registry: &Registry,
    name: &PluginName,
    held: Option<&semver::Version>,
) -> Result<Fetched, Failure> {
    let (url, doc) = match registry.metadata(name, held).await {
        Ok(r) => r,
        Err(FetchError::NotFound { url }) => return Ok(Fetched::Gone(url)),
        Err(e) => return Err(e).with_context(|| format!("cannot fetch {}", name.npm())),
    };
    classify(name, held, &doc)
        .map(Fetched::Classified)
        .with_context(|| format!("bad registry data for {} from {url}", name.npm()))
}

pub(super) fn push_skip(report: &mut Report, name: String, reason: SkipReason, note: &str) {
    let message = format!("{reason}{note}");
    report.skipped.push(report::Skipped {
        name,
        reason,
        message,
    });
}
