//! `nixgen update`: discover and fetch ([`discover`]), decide ([`plan`]),
//! check tarballs ([`download`]), write ([`write`]).

mod discover;
mod download;
mod plan;
mod progress;
mod write;

use std::path::PathBuf;

use reqwest::Url;

use crate::classify::ClassifyError;
use crate::config::{Config, ConfigError};
use crate::name::PluginName;
use crate::registry::{FetchError, HttpSettings, Registry, Token};
use crate::render::RenderError;
use crate::report::Report;
use crate::tree::{self, TreeError};
use crate::verify::VerifyError;

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
    /// Lift the limit on removals per run.
    pub allow_removals: bool,
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
    #[error(
        "refusing to remove {} of {generated} generated plugins (more than {}, or more than one and over 10 %); nothing was written:\n{}\nAn empty or partial mirror answers like this; check the registry, or pass --allow-removals if these plugins really are gone",
        .removals.len(), plan::MAX_REMOVALS, .removals.join("\n")
    )]
    TooManyRemovals {
        removals: Vec<String>,
        generated: usize,
    },
}

/// Why one plugin failed; the others go on.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot fetch {}", .plugin.npm())]
    Fetch {
        plugin: PluginName,
        #[source]
        source: FetchError,
    },
    #[error("{} is not in the registry ({url})", .plugin.npm())]
    NotFound { plugin: PluginName, url: Url },
    #[error("{} answers 404 at {url}, but {why}", .plugin.npm())]
    Unconfirmed404 {
        plugin: PluginName,
        url: Url,
        why: &'static str,
    },
    #[error("bad registry data for {} from {url}", .plugin.npm())]
    Data {
        plugin: PluginName,
        url: Url,
        #[source]
        source: ClassifyError,
    },
    #[error("cannot download {} {version} for --verify", .plugin.npm())]
    Download {
        plugin: PluginName,
        version: semver::Version,
        #[source]
        source: FetchError,
    },
    #[error("--verify failed for {} {version} from {url}", .plugin.npm())]
    Verify {
        plugin: PluginName,
        version: semver::Version,
        url: Url,
        #[source]
        source: VerifyError,
    },
    #[error("cannot render {}", .plugin.npm())]
    Render {
        plugin: PluginName,
        #[source]
        source: RenderError,
    },
    #[error("cannot write {}", .plugin.npm())]
    Write {
        plugin: PluginName,
        #[source]
        source: TreeError,
    },
}

/// The metadata registry and the one tarballs come from.
struct Clients {
    registry: Registry,
    tarballs: Registry,
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
        let tarballs = match &opts.tarball_registry {
            Some(t) => {
                // A private mirror's token must not travel to another host.
                let probe = Registry::new(t, None, opts.http.clone())?;
                if probe.same_origin(&registry) {
                    Registry::new(t, opts.token.as_ref(), opts.http.clone())?
                } else {
                    probe
                }
            }
            None => registry.clone(),
        };
        Ok(Self { registry, tarballs })
    }
}

pub async fn run(opts: Options) -> Result<Report, UpdateError> {
    let root = opts.root.as_path();
    if !root.is_dir() {
        return Err(UpdateError::BadRoot(root.to_owned()));
    }
    let config = Config::load(root)?;
    let clients = Clients::new(&opts, &config).map_err(UpdateError::Registry)?;
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
    let found = discover::discover(&ctx, &mut report).await;
    let inputs = plan::Inputs {
        tree: &scan.plugins,
        listed: found.listed.as_ref(),
        keep_removed: opts.keep_removed,
    };
    let mut actions = plan::plan(found.results, &inputs, &mut report);
    if !opts.allow_removals {
        plan::check_removals(&actions, &scan.plugins)?;
    }
    if opts.verify {
        download::verify_changes(&clients.tarballs, opts.jobs, &mut actions, &mut report).await;
    }
    write::builder(root, writing, &clients.tarballs, &mut report)?;
    write::apply(root, writing, opts.jobs, actions, &mut report).await;
    write::removed_record(root, writing, &mut report);
    report.sort();
    Ok(report)
}
