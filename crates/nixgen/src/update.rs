//! `nixgen update`: discover, fetch, classify, render, verify, write.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures_util::{StreamExt as _, stream};
use reqwest::Url;

use crate::classify::{Classified, ClassifyError, Pin, SkipReason, classify};
use crate::config::{Config, ConfigError};
use crate::name::PluginName;
use crate::registry::{FetchError, HttpSettings, Registry, Token};
use crate::render::{self, RenderError};
use crate::report::{self, Failed, Removed, Report, Skipped, Updated, Versioned};
use crate::tree::{self, Entry, TreeError};
use crate::verify::{Download, VerifyError};

pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Write,
    /// Write nothing; the caller exits 1 when updates are pending.
    Check,
    /// Write nothing; print what would change.
    DryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Bar,
    Lines,
    Quiet,
}

#[derive(Debug)]
pub struct Options {
    pub root: PathBuf,
    /// `--registry`; wins over the config file.
    pub registry: Option<String>,
    /// `--tarball-registry`: where the builder fetches tarballs; defaults to
    /// the registry.
    pub tarball_registry: Option<String>,
    /// `NPM_CONFIG_REGISTRY`; used when neither flag nor config set one.
    pub env_registry: Option<String>,
    pub token: Option<Token>,
    pub jobs: usize,
    pub mode: Mode,
    pub verify: bool,
    pub keep_removed: bool,
    pub only: Vec<PluginName>,
    pub http: HttpSettings,
    pub progress: Progress,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("--root {0} is not a directory")]
    BadRoot(PathBuf),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up the registry client")]
    Registry(#[source] FetchError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Why one plugin failed; the others go on.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot fetch @scrypted/{plugin}")]
    Fetch {
        plugin: PluginName,
        #[source]
        source: FetchError,
    },
    #[error("@scrypted/{plugin} is not in the registry ({url})")]
    NotFound { plugin: PluginName, url: Url },
    #[error("@scrypted/{plugin} answers 404 at {url}, but {why}")]
    Unconfirmed404 {
        plugin: PluginName,
        url: Url,
        why: &'static str,
    },
    #[error("bad registry data for @scrypted/{plugin} from {url}")]
    Data {
        plugin: PluginName,
        url: Url,
        #[source]
        source: ClassifyError,
    },
    #[error("cannot download @scrypted/{plugin} {version} for --verify")]
    Download {
        plugin: PluginName,
        version: semver::Version,
        #[source]
        source: FetchError,
    },
    #[error("--verify failed for @scrypted/{plugin} {version} from {url}")]
    Verify {
        plugin: PluginName,
        version: semver::Version,
        url: Url,
        #[source]
        source: VerifyError,
    },
    #[error("cannot render @scrypted/{plugin}")]
    Render {
        plugin: PluginName,
        #[source]
        source: RenderError,
    },
    #[error("cannot write @scrypted/{plugin}")]
    Write {
        plugin: PluginName,
        #[source]
        source: TreeError,
    },
}

enum Fetched {
    Classified(Classified),
    Gone(Url),
}

enum Action {
    Add(Pin, String),
    Update {
        pin: Pin,
        text: String,
        old: Option<String>,
        new_pin: bool,
    },
    Remove {
        old: Option<String>,
        reason: SkipReason,
    },
}

pub async fn run(opts: Options) -> Result<Report, UpdateError> {
    let root = opts.root.as_path();
    if !root.is_dir() {
        return Err(UpdateError::BadRoot(root.to_owned()));
    }
    let config = Config::load(root)?;
    let base = opts
        .registry
        .clone()
        .or_else(|| config.registry.clone())
        .or_else(|| opts.env_registry.clone().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned());
    let registry = Registry::new(&base, opts.token.as_ref(), opts.http.clone())
        .map_err(UpdateError::Registry)?;
    let tarballs = match &opts.tarball_registry {
        Some(t) => {
            // A private mirror's token must not travel to another host.
            let probe = Registry::new(t, None, opts.http.clone()).map_err(UpdateError::Registry)?;
            if probe.same_origin(&registry) {
                Registry::new(t, opts.token.as_ref(), opts.http.clone())
                    .map_err(UpdateError::Registry)?
            } else {
                probe
            }
        }
        None => registry.clone(),
    };
    let writing = opts.mode == Mode::Write;
    if writing {
        tree::sweep(root);
    }
    let scan = tree::scan(root)?;
    for stray in &scan.strays {
        tracing::warn!(dir = %stray.escape_debug(), "ignoring a directory in nix/plugins whose name is not a plugin name");
    }

    let mut report = Report {
        registry: registry.base().to_owned(),
        wrote: writing,
        ..Report::default()
    };
    // The plugins already known are fetched while the search runs: in the
    // usual run (a populated tree) that hides the search's latency.
    let known = known_names(&opts, &config, &scan.plugins);
    let skip = |name: &PluginName| {
        if config.ignore.contains(name) {
            Some(SkipReason::Ignored)
        } else if scan.plugins.get(name) == Some(&Entry::HandMaintained) {
            Some(SkipReason::HandMaintained)
        } else {
            None
        }
    };
    let (known_fetch, mut skipped): (Vec<_>, Vec<_>) =
        known.iter().cloned().partition(|n| skip(n).is_none());
    let progress = Bar::new(opts.progress, known_fetch.len() as u64);
    let fetch = |names: Vec<PluginName>| {
        let (registry, config, progress) = (&registry, &config, &progress);
        stream::iter(names)
            .map(move |name| async move {
                let r = fetch_one(registry, &name, config.hold.get(&name)).await;
                progress.tick(&name, r.is_ok());
                (name, r)
            })
            .buffer_unordered(opts.jobs.max(1))
            .collect::<Vec<_>>()
    };
    let search = async {
        if opts.only.is_empty() {
            Some(search_names(&registry).await)
        } else {
            None
        }
    };
    let (searched, mut results) = tokio::join!(search, fetch(known_fetch));
    // What a successful search listed: the only evidence, beside a 404, that a
    // pinned plugin really left the registry.
    let mut listed = None;
    if let Some(searched) = searched {
        let found = match searched {
            Ok(found) => found,
            Err(e) => {
                let msg = report::chain(&e);
                // The summary says so; once is enough.
                tracing::debug!("search failed, refreshing the known plugins only: {msg}");
                report.search_error = Some(msg);
                Searched::default()
            }
        };
        if report.search_error.is_none() {
            listed = Some(found.names.clone());
        }
        for (raw, why) in found.invalid {
            push_skip(&mut report, raw, SkipReason::InvalidName(why), "");
        }
        let (new, new_skipped): (Vec<_>, Vec<_>) = found
            .names
            .into_iter()
            .filter(|n| !known.contains(n))
            .partition(|n| skip(n).is_none());
        skipped.extend(new_skipped);
        progress.add_total(new.len() as u64);
        results.extend(fetch(new).await);
    }
    progress.finish();
    for name in skipped {
        let reason = skip(&name).unwrap_or(SkipReason::Ignored);
        push_skip(&mut report, name.to_string(), reason, "");
    }

    let mut actions = plan(
        results,
        &scan.plugins,
        listed.as_ref(),
        opts.keep_removed,
        &mut report,
    );

    if opts.verify {
        verify_changes(&tarballs, opts.jobs, &mut actions, &mut report).await;
    }

    let builder_path = root.join(tree::BUILDER_PATH);
    let builder_text = render::builder_nix(tarballs.base())?;
    report.builder = match std::fs::read_to_string(&builder_path) {
        Ok(t) if t == builder_text => "unchanged",
        Ok(t) if !render::is_generated(&t) => {
            report.failed.push(Failed {
                name: tree::BUILDER_PATH.to_owned(),
                kept: None,
                error: report::chain(&TreeError::NotGenerated {
                    path: builder_path.clone(),
                }),
            });
            "unchanged"
        }
        Ok(_) => "updated",
        Err(_) => "created",
    };

    if writing && report.builder != "unchanged" {
        match tree::write_generated(&builder_path, &builder_text) {
            Ok(changed) => report.files_changed += usize::from(changed),
            Err(e) => {
                report.failed.push(Failed {
                    name: tree::BUILDER_PATH.to_owned(),
                    kept: None,
                    error: report::chain(&e),
                });
                report.builder = "unchanged";
            }
        }
    }
    apply(root, writing, opts.jobs, actions, &mut report).await;
    report.sort();
    Ok(report)
}

/// Decides, per fetched plugin, what happens to its directory.
fn plan(
    results: Vec<(PluginName, Result<Fetched, PluginError>)>,
    tree: &BTreeMap<PluginName, Entry>,
    listed: Option<&BTreeSet<PluginName>>,
    keep_removed: bool,
    report: &mut Report,
) -> BTreeMap<PluginName, Action> {
    let mut actions = BTreeMap::new();
    for (name, result) in results {
        let old = match tree.get(&name) {
            Some(Entry::Generated {
                version,
                hash,
                text,
            }) => Some((version.clone(), hash.as_deref(), text.as_str())),
            _ => None,
        };
        let old_version = old.as_ref().and_then(|(v, _, _)| v.clone());
        let removal = match result {
            Err(e) => {
                fail(report, &name, old_version, &e);
                continue;
            }
            Ok(Fetched::Gone(url)) => {
                if old.is_none() {
                    fail(
                        report,
                        &name,
                        None,
                        &PluginError::NotFound {
                            plugin: name.clone(),
                            url,
                        },
                    );
                    continue;
                }
                // A 404 alone is what a partial mirror or a registry outage also
                // answers; removing the pin on it would lose it for nothing.
                let why = match listed {
                    None => Some("no registry search confirmed it was removed"),
                    Some(l) if l.contains(&name) => Some("the registry search still lists it"),
                    Some(_) => None,
                };
                if let Some(why) = why {
                    fail(
                        report,
                        &name,
                        old_version,
                        &PluginError::Unconfirmed404 {
                            plugin: name.clone(),
                            url,
                            why,
                        },
                    );
                    continue;
                }
                SkipReason::Gone
            }
            Ok(Fetched::Classified(Classified::Skip(reason))) => {
                if old.is_none() || !reason.removes_package() {
                    push_skip(report, name.to_string(), reason, "");
                    continue;
                }
                reason
            }
            Ok(Fetched::Classified(Classified::Plugin(pin))) => {
                let text = match render::package_nix(&pin) {
                    Ok(t) => t,
                    Err(source) => {
                        fail(
                            report,
                            &name,
                            old_version,
                            &PluginError::Render {
                                plugin: name.clone(),
                                source,
                            },
                        );
                        continue;
                    }
                };
                match old {
                    None => {
                        actions.insert(name, Action::Add(pin, text));
                    }
                    Some((_, _, old_text)) if old_text == text => report.unchanged += 1,
                    Some((_, old_hash, _)) => {
                        let new_pin = old_hash != Some(pin.hash.as_str())
                            || old_version.as_deref() != Some(pin.version.to_string().as_str());
                        actions.insert(
                            name,
                            Action::Update {
                                pin,
                                text,
                                old: old_version,
                                new_pin,
                            },
                        );
                    }
                }
                continue;
            }
        };
        if keep_removed {
            push_skip(
                report,
                name.to_string(),
                removal,
                ", kept by --keep-removed",
            );
        } else {
            actions.insert(
                name,
                Action::Remove {
                    old: old_version,
                    reason: removal,
                },
            );
        }
    }
    actions
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
    names: BTreeSet<PluginName>,
    /// `@scrypted/` names that are not valid plugin names: (as found, why).
    invalid: Vec<(String, String)>,
}

/// The search's `@scrypted/*` names; other scopes are dropped unseen.
async fn search_names(registry: &Registry) -> Result<Searched, FetchError> {
    let mut out = Searched::default();
    for raw in registry.search().await?.names {
        match PluginName::from_scoped(&raw) {
            None => tracing::debug!(name = %raw.escape_debug(), "not in the @scrypted scope"),
            Some(Ok(n)) => {
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
) -> Result<Fetched, PluginError> {
    let (url, doc) = match registry.metadata(name, held).await {
        Ok(r) => r,
        Err(FetchError::NotFound { url }) => return Ok(Fetched::Gone(url)),
        Err(source) => {
            return Err(PluginError::Fetch {
                plugin: name.clone(),
                source,
            });
        }
    };
    classify(name, held, &doc)
        .map(Fetched::Classified)
        .map_err(|source| PluginError::Data {
            plugin: name.clone(),
            url,
            source,
        })
}

/// Downloads and checks every new pin; a failure keeps the old pin.
async fn verify_changes(
    registry: &Registry,
    jobs: usize,
    actions: &mut BTreeMap<PluginName, Action>,
    report: &mut Report,
) {
    let pins: Vec<(Pin, Option<String>)> = actions
        .values()
        .filter_map(|a| match a {
            Action::Add(pin, _) => Some((pin.clone(), None)),
            Action::Update {
                pin,
                old,
                new_pin: true,
                ..
            } => Some((pin.clone(), old.clone())),
            _ => None,
        })
        .collect();
    let failures: Vec<(Pin, Option<String>, PluginError)> = stream::iter(pins)
        .map(|(pin, old)| async move {
            let url = registry.tarball_url(&pin.name, &pin.version);
            let verify_err = |pin: &Pin, url: Url, source| PluginError::Verify {
                plugin: pin.name.clone(),
                version: pin.version.clone(),
                url,
                source,
            };
            let mut download = match Download::new() {
                Ok(d) => d,
                Err(e) => {
                    let e = verify_err(&pin, url, VerifyError::Spool(e));
                    return Some((pin, old, e));
                }
            };
            match registry.tarball(&url, &mut download).await {
                Ok(()) => {}
                Err(source) => {
                    let e = PluginError::Download {
                        plugin: pin.name.clone(),
                        version: pin.version.clone(),
                        source,
                    };
                    return Some((pin, old, e));
                }
            };
            let checked = {
                let pin = pin.clone();
                tokio::task::spawn_blocking(move || download.check(&pin)).await
            };
            match checked {
                Ok(Ok(())) => None,
                Ok(Err(source)) => {
                    let e = verify_err(&pin, url, source);
                    Some((pin, old, e))
                }
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        })
        .buffer_unordered(jobs.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await;
    for (pin, old, e) in failures {
        actions.remove(&pin.name);
        fail(report, &pin.name, old, &e);
    }
}

/// Writes the planned changes. Plugins live in separate directories, so the
/// writes run in parallel: most of their cost is fsync latency, which
/// overlapping hides.
async fn apply(
    root: &Path,
    writing: bool,
    jobs: usize,
    actions: BTreeMap<PluginName, Action>,
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
            Ok(changed) => report.files_changed += usize::from(changed),
            Err(source) => {
                let old = match &action {
                    Action::Update { old, .. } | Action::Remove { old, .. } => old.clone(),
                    Action::Add(..) => None,
                };
                let e = PluginError::Write {
                    plugin: name.clone(),
                    source,
                };
                fail(report, &name, old, &e);
                continue;
            }
        }
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

fn fail(report: &mut Report, name: &PluginName, kept: Option<String>, e: &PluginError) {
    report.failed.push(Failed {
        name: name.to_string(),
        kept,
        error: report::chain(e),
    });
}

fn push_skip(report: &mut Report, name: String, reason: SkipReason, note: &str) {
    let message = format!("{reason}{note}");
    report.skipped.push(Skipped {
        name,
        reason,
        message,
    });
}

/// Progress on a terminal as a bar, elsewhere as one line per plugin.
struct Bar {
    mode: Progress,
    bar: Option<indicatif::ProgressBar>,
    total: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
}

impl Bar {
    fn new(mode: Progress, total: u64) -> Self {
        let bar = (mode == Progress::Bar).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Self {
            mode,
            bar,
            total: std::sync::atomic::AtomicU64::new(total),
            done: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn add_total(&self, n: u64) {
        self.total
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc_length(n);
        }
    }

    fn tick(&self, name: &PluginName, ok: bool) {
        let n = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        match (&self.bar, self.mode) {
            (Some(b), _) => {
                b.set_message(name.to_string());
                b.inc(1);
            }
            (None, Progress::Lines) => {
                let state = if ok { "fetched" } else { "failed" };
                let total = self.total.load(std::sync::atomic::Ordering::Relaxed);
                eprintln!("[{n}/{total}] {state} {name}");
            }
            _ => {}
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
