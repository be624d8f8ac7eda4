//! Command line front end; the work happens in the library.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use nixgen::name::PluginName;
use nixgen::registry::{HttpSettings, Token};
use nixgen::report::Report;
use nixgen::update::{self, Mode, Options, Progress};

/// Generates pinned Nix packages for every Scrypted plugin on the npm registry.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Refresh nix/plugins/<name>/package.nix and nix/mk-scrypted-plugin.nix.
    ///
    /// Exit status: 0 when every plugin succeeded, 1 when --check finds
    /// pending updates, 2 when a plugin failed (the others are still written)
    /// or the run could not start.
    Update(UpdateArgs),
    /// Pin the registry's public signing keys in nix/plugins/registry-keys.json,
    /// showing what changed. `update` never fetches keys: a key change is a
    /// reviewed commit.
    Keys(KeysArgs),
}

#[derive(Debug, Args)]
struct KeysArgs {
    /// The repository to update.
    #[arg(long, value_name = "DIR", default_value = ".")]
    root: PathBuf,
    /// Registry base URL [default: as for `update`].
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
    /// Show the change; write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    /// The repository to update.
    #[arg(long, value_name = "DIR", default_value = ".")]
    root: PathBuf,
    /// Registry base URL [default: `registry` in nix/plugins/nixgen.toml, else
    /// $NPM_CONFIG_REGISTRY, else https://registry.npmjs.org].
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
    /// Base URL the generated builder downloads tarballs from (and --verify
    /// checks) [default: the registry]. For a metadata-only mirror or snapshot.
    #[arg(long, value_name = "URL")]
    tarball_registry: Option<String>,
    /// Requests in flight at once. The default fetches the ~70 documents of
    /// the @scrypted scope in about two round trips; lower it for a small mirror.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Write nothing; exit 1 when updates are pending.
    #[arg(long, conflicts_with = "dry_run")]
    check: bool,
    /// Write nothing; print what would change.
    #[arg(long)]
    dry_run: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the summary as a Markdown table on stdout (for pull request bodies).
    #[arg(long)]
    markdown: bool,
    /// Also write the Markdown summary to this file (whatever the output format).
    #[arg(long, value_name = "FILE", env = "NIXGEN_MARKDOWN_FILE")]
    markdown_file: Option<PathBuf>,
    /// Download the tarballs of changed plugins and check their hash and content.
    #[arg(long)]
    verify: bool,
    /// Start a new tree: without it, a --root that has no nix/plugins is
    /// refused rather than filled.
    #[arg(long)]
    init: bool,
    /// Keep generated plugins that left the registry or turned to another runtime.
    #[arg(long)]
    keep_removed: bool,
    /// Allow removing more than 3 plugins (or more than one and over 10 %
    /// of the tree) in one run; without it such a run writes nothing.
    #[arg(long)]
    allow_removals: bool,
    /// Only refresh these plugins (no search; no other plugin is added or removed).
    #[arg(long, num_args = 1.., value_name = "NAME")]
    only: Vec<PluginName>,
    /// Run no npm and download no tarball: native dependency locks and
    /// runtime needs are carried over from the tree (new or changed plugins
    /// are recorded as not scanned).
    #[arg(long)]
    metadata_only: bool,
    /// Pin a version only once it has been public this long (`3d`, `12h`,
    /// `0` for no cooldown) [default: `minReleaseAge` in
    /// nix/plugins/nixgen.toml, else 3d].
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    min_release_age: Option<Duration>,
    /// The npm program that resolves native dependency trees.
    #[arg(long, hide = true, env = "NIXGEN_NPM", default_value = "npm")]
    npm: std::ffi::OsString,
    /// Node's heap limit for npm in MiB (npm reads whole package documents).
    #[arg(long, hide = true, env = "NIXGEN_NPM_MEMORY_MIB", default_value_t = nixgen::lockfile::DEFAULT_NPM_MEMORY_MIB)]
    npm_memory_mib: u32,
    /// Per-request timeout in milliseconds.
    #[arg(long, hide = true, env = "NIXGEN_TIMEOUT_MS", default_value_t = 30_000)]
    timeout_ms: u64,
    /// Retries after the first attempt.
    #[arg(long, hide = true, env = "NIXGEN_RETRIES", default_value_t = 4)]
    retries: u32,
    /// First retry delay in milliseconds (doubles, with jitter).
    #[arg(long, hide = true, env = "NIXGEN_BACKOFF_MS", default_value_t = 500)]
    backoff_ms: u64,
    /// Longest single wait in milliseconds, Retry-After included.
    #[arg(
        long,
        hide = true,
        env = "NIXGEN_MAX_WAIT_MS",
        default_value_t = 60_000
    )]
    max_wait_ms: u64,
    /// Overall deadline of one --verify download in milliseconds, retries
    /// included.
    #[arg(
        long,
        hide = true,
        env = "NIXGEN_TARBALL_DEADLINE_MS",
        default_value_t = 600_000
    )]
    tarball_deadline_ms: u64,
    /// Ask only this DNS server (UDP, ADDRESS:PORT) instead of the system's:
    /// for tests and benchmarks against a stand-in on loopback.
    #[arg(long, hide = true, env = "NIXGEN_DNS_SERVER", value_name = "ADDR")]
    dns_server: Option<std::net::SocketAddr>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NIXGEN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Update(args) => run(args),
        Command::Keys(args) => keys(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nixgen: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: UpdateArgs) -> Result<ExitCode> {
    let token = read_token()?;
    let mode = if args.check {
        Mode::Check
    } else if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Write
    };
    let progress = if args.json || args.markdown {
        Progress::Quiet
    } else if std::io::stderr().is_terminal() {
        Progress::Bar
    } else {
        Progress::Lines
    };
    let opts = Options {
        root: args.root.clone(),
        registry: args.registry.clone(),
        tarball_registry: args.tarball_registry.clone(),
        env_registry: std::env::var("NPM_CONFIG_REGISTRY").ok(),
        // As huggingface_hub reads it, so that a mirror serves both.
        hf_endpoint: std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| nixgen::hf::DEFAULT_ENDPOINT.to_owned()),
        token,
        jobs: usize::from(args.jobs),
        mode,
        verify: args.verify,
        keep_removed: args.keep_removed,
        allow_removals: args.allow_removals,
        only: args.only.clone(),
        metadata_only: args.metadata_only,
        npm: args.npm.clone(),
        http: HttpSettings {
            timeout: Duration::from_millis(args.timeout_ms),
            retries: args.retries,
            backoff: Duration::from_millis(args.backoff_ms),
            max_wait: Duration::from_millis(args.max_wait_ms),
            max_in_flight: usize::from(args.jobs),
            tarball_deadline: Duration::from_millis(args.tarball_deadline_ms),
            resolver: nixgen::dns::SharedResolver::new(args.dns_server),
        },
        progress,
        init: args.init,
        min_release_age: args.min_release_age,
        npm_memory_mib: args.npm_memory_mib,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(update::run(opts))?;
    emit(&args, &report)?;
    Ok(if !report.failed.is_empty() {
        ExitCode::from(2)
    } else if mode == Mode::Check && report.pending() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `nixgen keys`: shows the key change and pins the registry's keys.
fn keys(args: &KeysArgs) -> Result<ExitCode> {
    let config = nixgen::config::Config::load(&args.root)?;
    let env = std::env::var("NPM_CONFIG_REGISTRY").ok();
    let base = config.registry_base(args.registry.as_deref(), env.as_deref());
    let token = read_token()?;
    let registry = nixgen::registry::Registry::new(&base, token.as_ref(), HttpSettings::default())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let change = runtime.block_on(nixgen::keys::refresh(&args.root, &registry, args.dry_run))?;
    print!("{}", change.text(registry.base()));
    if args.dry_run && !change.is_empty() {
        println!("(not written: --dry-run)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the summary in the format asked for, and the Markdown file.
fn emit(args: &UpdateArgs, report: &Report) -> Result<()> {
    if let Some(path) = &args.markdown_file {
        std::fs::write(path, report.to_markdown())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).context("cannot encode the summary")?
        );
    } else if args.markdown {
        print!("{}", report.to_markdown());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn parse_age(raw: &str) -> Result<Duration, String> {
    nixgen::trust::cooldown::parse_age(raw)
}

/// The bearer token for a private mirror, from the environment or a file
/// (the file keeps it out of `ps` and shell history). Never printed.
fn read_token() -> Result<Option<Token>> {
    if let Ok(t) = std::env::var("NIXGEN_REGISTRY_TOKEN") {
        return Ok(Token::new(&t));
    }
    match std::env::var_os("NIXGEN_REGISTRY_TOKEN_FILE") {
        Some(path) => {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!("cannot read NIXGEN_REGISTRY_TOKEN_FILE {}", path.display())
            })?;
            Ok(Token::new(&text))
        }
        None => Ok(None),
    }
}
