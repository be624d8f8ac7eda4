//! `nixgen update`: discover and fetch ([`discover`]), decide ([`plan`]),
//! check tarballs ([`download`]), write ([`write`]).

mod discover;
mod download;
mod models;
mod offline;
mod plan;
mod progress;
mod python;
mod trust;
mod write;

use std::path::PathBuf;

use crate::config::Config;
use crate::failure::{Context as _, Failure};
use crate::lockfile::Npm;
use crate::name::PluginName;
use crate::registry::{FetchError, HttpSettings, Registry, Token};
use crate::report::Report;
use crate::tree;

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
    /// `HF_ENDPOINT`, else huggingface.co: where models are pinned from.
    pub hf_endpoint: String,
    pub token: Option<Token>,
    pub jobs: usize,
    pub mode: Mode,
    pub verify: bool,
    pub keep_removed: bool,
    /// Lift the limit on removals per run.
    pub allow_removals: bool,
    pub only: Vec<PluginName>,
    /// `--metadata-only`: run no npm and download no tarball; locks and
    /// runtime needs are carried over from the tree.
    pub metadata_only: bool,
    /// The npm program (`npm` on PATH unless `$NIXGEN_NPM`).
    pub npm: std::ffi::OsString,
    pub http: HttpSettings,
    pub progress: Progress,
    /// Node's heap limit for npm, in MiB.
    pub npm_memory_mib: u32,
    /// `--min-release-age`; wins over the config's `minReleaseAge`.
    pub min_release_age: Option<std::time::Duration>,
    /// `--init`: start a new tree in a root that has no `nix/plugins`.
    pub init: bool,
}

/// `--root` names a directory without a plugin tree: most likely the wrong
/// directory, so nothing is scaffolded there unless `--init` asks for it.
#[derive(Debug, thiserror::Error)]
#[error(
    "--root {} has no {}: is it the repository's root? Pass --init to start a new tree there",
    .root.display(), tree::PLUGINS_DIR
)]
pub struct NoTree {
    pub root: PathBuf,
}

/// A run that would remove more than a few plugins: typed, so that the
/// command line and tests can tell it from other failures to start.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to remove {} of {generated} generated plugins (more than {}, or more than one and over 10 %); nothing was written:\n{}\nAn empty or partial mirror answers like this; check the registry, or pass --allow-removals if these plugins really are gone",
    .removals.len(), plan::MAX_REMOVALS, .removals.join("\n")
)]
pub struct TooManyRemovals {
    pub removals: Vec<String>,
    pub generated: usize,
}

/// `requireSignatures` with no keys pinned for the registry: every version
/// would be refused, so the run does not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "requireSignatures is set in nix/plugins/nixgen.toml, but {} pins no keys for {registry}; review and pin them with `nixgen keys`",
    crate::trust::signature::KEYS_PATH
)]
pub struct NoKeysPinned {
    pub registry: String,
}

/// The trust policy of a run: the config, the flag and the pinned keys.
fn policy(opts: &Options, config: &Config, registry: &Registry) -> Result<trust::Policy, Failure> {
    let keys = crate::trust::signature::load(&opts.root)?;
    let verifiers = crate::trust::signature::Verifiers::for_registry(&keys, registry.base());
    if config.require_signatures && verifiers.is_none() {
        return Err(NoKeysPinned {
            registry: registry.base().to_owned(),
        }
        .into());
    }
    Ok(trust::Policy {
        min_age: opts.min_release_age.unwrap_or(config.min_release_age),
        held: config.hold.keys().cloned().collect(),
        jobs: opts.jobs,
        require_signatures: config.require_signatures,
        verifiers,
        now: jiff::Timestamp::now(),
    })
}

/// The metadata registry and the one tarballs come from.
struct Clients {
    registry: Registry,
    tarballs: Registry,
    /// The token, when tarballs (and npm's resolution) use the registry's
    /// origin.
    tarball_token: Option<Token>,
}

impl Clients {
    fn new(opts: &Options, config: &Config) -> Result<Self, FetchError> {
        let base = opts
            .registry
            .clone()
            .or_else(|| config.registry.clone())
            .or_else(|| opts.env_registry.clone().filter(|s| !s.trim().is_empty()))
            .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned());
        let registry = Registry::new(&base, opts.token.as_ref(), opts.http.clone())?;
        let (tarballs, tarball_token) = match &opts.tarball_registry {
            Some(t) => {
                // A private mirror's token must not travel to another host.
                let probe = Registry::new(t, None, opts.http.clone())?;
                if probe.same_origin(&registry) {
                    let r = Registry::new(t, opts.token.as_ref(), opts.http.clone())?;
                    (r, opts.token.clone())
                } else {
                    (probe, None)
                }
            }
            None => (registry.clone(), opts.token.clone()),
        };
        Ok(Self {
            registry,
            tarballs,
            tarball_token,
        })
    }

    /// npm resolves native dependency trees against the tarball registry:
    /// the one whose URLs end up in locks and the builder.
    /// The release cooldown holds back the tree's packages as well.
    fn npm(&self, opts: &Options, policy: &trust::Policy) -> Option<Npm> {
        let before = (!policy.min_age.is_zero()).then(|| {
            let age =
                jiff::SignedDuration::try_from(policy.min_age).unwrap_or(jiff::SignedDuration::MAX);
            policy.now.checked_sub(age).unwrap_or(jiff::Timestamp::MIN)
        });
        (!opts.metadata_only).then(|| Npm {
            program: opts.npm.clone(),
            registry: self.tarballs.base().to_owned(),
            token: self.tarball_token.clone(),
            deadline: opts.http.tarball_deadline,
            memory_mib: opts.npm_memory_mib,
            before,
        })
    }
}

/// Runs an update. Errors are the run's (bad root, config, registry URL,
/// unreadable tree, [`TooManyRemovals`]); a plugin's failure is in the report.
pub async fn run(opts: Options) -> Result<Report, Failure> {
    let root = opts.root.as_path();
    if !root.is_dir() {
        let message = format!("--root {} is not a directory", root.display());
        return Err(Failure::new(message));
    }
    if !opts.init && !root.join(tree::PLUGINS_DIR).is_dir() {
        return Err(NoTree {
            root: root.to_path_buf(),
        }
        .into());
    }
    let config = Config::load(root)?;
    let clients = Clients::new(&opts, &config).context("cannot set up the registry client")?;
    let policy = policy(&opts, &config, &clients.registry)?;
    let writing = opts.mode == Mode::Write;
    if writing {
        tree::sweep(root);
    }
    let scan = tree::scan(root)?;
    for stray in &scan.strays {
        tracing::warn!(dir = %stray.escape_debug(), "ignoring a directory in nix/plugins whose name is not a plugin name");
    }
    let mut report = Report {
        registry: clients.registry.base().to_owned(),
        wrote: writing,
        ..Report::default()
    };
    let ctx = discover::Ctx {
        opts: &opts,
        config: &config,
        scan: &scan,
        registry: &clients.registry,
    };
    let mut found = discover::discover(&ctx, &mut report).await;
    let checks = trust::Ctx::new(&clients.registry, &scan.plugins, &policy);
    found.results = trust::apply(found.results, &checks, &mut report.trust).await;
    let aliases = crate::python::Aliases::load(root)?;
    let hub = crate::hf::Hub::new(&opts.hf_endpoint, opts.http.clone())
        .context("cannot set up the Hugging Face client (HF_ENDPOINT)")?;
    let settings = offline::Settings {
        root,
        tarballs: &clients.tarballs,
        npm: clients.npm(&opts, &policy),
        jobs: opts.jobs,
        verify: opts.verify,
        aliases: aliases.as_ref(),
        hub: &hub,
    };
    found.results = offline::fill(found.results, &scan.plugins, &settings, &mut report).await;
    let inputs = plan::Inputs {
        tree: &scan.plugins,
        listed: found.listed.as_ref(),
        keep_removed: opts.keep_removed,
    };
    let mut actions = plan::plan(found.results, &inputs, &mut report);
    if !opts.allow_removals {
        plan::check_removals(&actions, &scan.plugins)?;
    }
    // Otherwise the offline scan downloaded and verified every new pin.
    if opts.verify && opts.metadata_only {
        download::verify_changes(&clients.tarballs, opts.jobs, &mut actions, &mut report).await;
    }
    write::builder(root, writing, &clients.tarballs, &mut report)?;
    let rows = write::readme_rows(&scan.plugins, &actions);
    write::apply(root, writing, opts.jobs, actions, &mut report).await;
    write::readme(root, writing, &rows, &mut report);
    write::removed_record(root, writing, &mut report);
    report.sort();
    Ok(report)
}
