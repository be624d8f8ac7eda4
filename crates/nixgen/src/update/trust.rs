//! Applies the trust checks ([`crate::trust`]) to the fetched plugins,
//! before anything is scanned or rendered: the cooldown may pick another
//! version, and a refused signature fails the plugin (its old pin stays).
//!
//! Only plugins whose `latest` differs from the pin cost a request (their
//! package document, for the publish times): a run with nothing new makes
//! no more requests than without the checks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::{StreamExt as _, stream};

use super::discover::{Fetched, Results};
use crate::classify::{Classified, Pin, classify};
use crate::failure::{Context as _, Failure};
use crate::name::PluginName;
use crate::registry::Registry;
use crate::tree::Entry;
use crate::trust::cooldown::{self, Decision, Versions};
use crate::trust::publisher;
use crate::trust::signature::{Status, Verifiers};
use crate::trust::summary::{HeldBack, PublisherChange, TrustSummary};

/// The run's trust settings.
#[derive(Debug)]
pub(super) struct Policy {
    pub min_age: Duration,
    /// Plugins held at a version in the config: the operator's choice, so
    /// the cooldown does not apply to them.
    pub held: BTreeSet<PluginName>,
    /// Package documents in flight.
    pub jobs: usize,
    pub require_signatures: bool,
    /// `None`: no keys pinned for the registry.
    pub verifiers: Option<Verifiers>,
    pub now: jiff::Timestamp,
}

pub(super) struct Ctx<'a> {
    pub registry: &'a Registry,
    pub tree: &'a BTreeMap<PluginName, Entry>,
    pub policy: &'a Policy,
    /// Whether the registry's abbreviated document carries `time` (npm's
    /// does not; some mirrors' do), found out once per run.
    abbreviated_has_time: tokio::sync::OnceCell<bool>,
}

/// What one plugin's checks found, merged into the summary in order.
enum Finding {
    HeldBack(HeldBack),
    Verified,
    Unsigned(String),
    Invalid(String),
    Publisher(PublisherChange),
}

impl<'a> Ctx<'a> {
    pub fn new(
        registry: &'a Registry,
        tree: &'a BTreeMap<PluginName, Entry>,
        policy: &'a Policy,
    ) -> Self {
        Self {
            registry,
            tree,
            policy,
            abbreviated_has_time: tokio::sync::OnceCell::new(),
        }
    }
}

/// Checks every Node plugin; other results pass through.
pub(super) async fn apply(results: Results, ctx: &Ctx<'_>, summary: &mut TrustSummary) -> Results {
    summary.cooldown.min_release_age_secs = ctx.policy.min_age.as_secs();
    if ctx.policy.verifiers.is_none() {
        summary.signatures.no_keys = Some(ctx.registry.base().to_owned());
    }
    let done: Vec<_> = stream::iter(results)
        .map(|(name, result)| async move {
            match result {
                Ok(Fetched::Classified(Classified::Plugin(pin))) => {
                    let (result, findings) = ctx.check(&name, pin).await;
                    (name, result, findings)
                }
                other => (name, other, Vec::new()),
            }
        })
        .buffer_unordered(ctx.policy.jobs.max(1))
        .collect()
        .await;
    let mut out = Vec::with_capacity(done.len());
    for (name, result, findings) in done {
        for f in findings {
            match f {
                Finding::HeldBack(h) => summary.cooldown.held_back.push(h),
                Finding::Verified => summary.signatures.verified += 1,
                Finding::Unsigned(id) => summary.signatures.unsigned.push(id),
                Finding::Invalid(why) => summary.signatures.invalid.push(why),
                Finding::Publisher(p) => summary.publishers.push(p),
            }
        }
        out.push((name, result));
    }
    out
}

/// What the tree pins for a plugin now.
struct OldPin<'a> {
    version: Option<semver::Version>,
    text: &'a str,
}

impl Ctx<'_> {
    fn old(&self, name: &PluginName) -> Option<OldPin<'_>> {
        match self.tree.get(name) {
            Some(Entry::Generated { version, text, .. }) => Some(OldPin {
                version: version
                    .as_deref()
                    .and_then(|v| semver::Version::parse(v).ok()),
                text,
            }),
            _ => None,
        }
    }

    async fn check(
        &self,
        name: &PluginName,
        pin: Box<Pin>,
    ) -> (Result<Fetched, Failure>, Vec<Finding>) {
        let mut findings = Vec::new();
        let old = self.old(name);
        let old_version = old.as_ref().and_then(|o| o.version.as_ref());
        let changed = old_version != Some(&pin.version);
        let cooled = changed && !self.policy.held.contains(name) && !self.policy.min_age.is_zero();
        let (mut pin, published) = if cooled {
            match self.cooldown(name, pin, old_version, &mut findings).await {
                Ok(Some(chosen)) => chosen,
                Ok(None) => return (Ok(Fetched::Held), findings),
                Err(e) => return (Err(e), findings),
            }
        } else {
            (pin, None)
        };
        if let Err(e) = self.signature(&mut pin, published, &mut findings) {
            return (Err(e), findings);
        }
        let changed = old_version != Some(&pin.version);
        if let Some(old) = old.as_ref().filter(|_| changed) {
            let from = publisher::recorded(old.text);
            let to = pin.publisher.clone();
            if let Some(from) = from
                && !publisher::same(&from, to.as_deref())
            {
                findings.push(Finding::Publisher(PublisherChange {
                    name: name.to_string(),
                    old_version: old.version.as_ref().map(ToString::to_string),
                    new_version: pin.version.to_string(),
                    from,
                    to: to.unwrap_or_else(|| publisher::UNKNOWN.to_owned()),
                }));
            }
        }
        (Ok(Fetched::Classified(Classified::Plugin(pin))), findings)
    }

    /// The version the cooldown allows and its publish time; `None` when
    /// nothing newer than the pin is old enough.
    async fn cooldown(
        &self,
        name: &PluginName,
        pin: Box<Pin>,
        pinned: Option<&semver::Version>,
        findings: &mut Vec<Finding>,
    ) -> Result<Option<(Box<Pin>, Option<jiff::Timestamp>)>, Failure> {
        let versions = self.versions(name).await.with_context(|| {
            format!(
                "cannot read the publish times of {} for the release cooldown (minReleaseAge = \"0\" turns it off)",
                name.npm()
            )
        })?;
        let now = self.policy.now;
        let latest = pin.version.clone();
        let decision = cooldown::decide(&versions, &latest, pinned, self.policy.min_age, now);
        let held = |instead: Option<&semver::Version>| HeldBack {
            name: name.to_string(),
            version: latest.to_string(),
            age_secs: cooldown::age_of(&versions, &latest, now).map(|d| d.as_secs()),
            kept: pinned.map(ToString::to_string),
            pinned_instead: instead.map(ToString::to_string),
        };
        let v = match decision {
            Decision::Latest => return Ok(Some((pin, versions.published.get(&latest).copied()))),
            Decision::Hold => {
                findings.push(Finding::HeldBack(held(None)));
                return Ok(None);
            }
            Decision::Older(v) => v,
        };
        findings.push(Finding::HeldBack(held(Some(&v))));
        let (url, doc) = self.registry.metadata(name, Some(&v)).await?;
        let what = || {
            format!(
                "{} {v} (the release cooldown's pick) from {url}",
                name.npm()
            )
        };
        match classify(name, Some(&v), &doc).with_context(what)? {
            Classified::Plugin(older) => Ok(Some((older, versions.published.get(&v).copied()))),
            Classified::Deprecated { message, .. } => {
                Err(Failure::new(format!("{} is deprecated: {message}", what())))
            }
            Classified::Skip(reason) => Err(Failure::new(format!(
                "{} cannot be pinned: {reason}",
                what()
            ))),
        }
    }

    /// The publish times, from the abbreviated document when the registry
    /// puts `time` in it (smaller), else from the full one.
    async fn versions(&self, name: &PluginName) -> Result<Versions, Failure> {
        let abbreviated = *self
            .abbreviated_has_time
            .get_or_init(|| async {
                let doc = self.registry.document(name, true).await;
                let has = doc.is_ok_and(|(_, d)| Versions::from_document(&d).is_some());
                tracing::debug!(has, "whether the abbreviated document carries `time`");
                has
            })
            .await;
        let (url, doc) = self.registry.document(name, abbreviated).await?;
        Versions::from_document(&doc)
            .with_context(|| format!("{url} has no `time` map (publish times)"))
    }

    /// Verifies the pin's registry signature and records the outcome.
    fn signature(
        &self,
        pin: &mut Pin,
        published: Option<jiff::Timestamp>,
        findings: &mut Vec<Finding>,
    ) -> Result<(), Failure> {
        let Some(verifiers) = &self.policy.verifiers else {
            pin.signature = Some(Status::NotChecked);
            return Ok(());
        };
        let id = format!("{}@{}", pin.name.npm(), pin.version);
        match verifiers.check(&id, &pin.integrity, &pin.signatures, published) {
            Ok(Status::Unsigned) => {
                findings.push(Finding::Unsigned(id.clone()));
                if self.policy.require_signatures {
                    let message =
                        format!("{id} has no registry signature (requireSignatures is set)");
                    return Err(Failure::new(message));
                }
                pin.signature = Some(Status::Unsigned);
            }
            Ok(status) => {
                findings.push(Finding::Verified);
                pin.signature = Some(status);
            }
            Err(e) => {
                findings.push(Finding::Invalid(format!("{id}: {e}")));
                return Err(Failure::caused(format!("refusing {id}"), e));
            }
        }
        Ok(())
    }
}
