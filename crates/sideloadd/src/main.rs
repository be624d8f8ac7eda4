//! sideloadd command line. The logic lives in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sideloadd::errchain::chain;
use sideloadd::notify::Notifier;
use sideloadd::{Config, EXIT_CONFIG, EXIT_FATAL, EXIT_OK, EXIT_PLUGIN_FAILED};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

const EXIT_CODES: &str = "\
Exit codes:
  0  every declared plugin is in place (check-config: the config is valid;
     status: every plugin is deployed)
  1  at least one plugin failed or is not running, each named on stderr, or
     the admin password could not be set, or Scrypted's plugin auto-update not
     made sure off; the rest was provisioned (status: some plugin is not
     deployed or not running)
  2  invalid config or command line
  3  nothing could be provisioned: Scrypted not ready within readyTimeoutSecs,
     token rejected or unreadable, stateDir unusable, lock held for 60 s
     (status: Scrypted was not reached)
  4  stopped by SIGTERM or SIGINT before finishing

The config's keys are listed in README.md (\"sideloadd\"); an example is
crates/sideloadd/example-config.json.";

#[derive(Parser)]
#[command(
    version,
    about = "Provision Nix-built Scrypted plugins into a running Scrypted",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Provision every declared plugin, then exit (0 when all are in place).
    #[command(after_help = EXIT_CODES)]
    Run(ConfigArg),
    /// Validate a config and its plugin directories without touching the server.
    #[command(after_help = EXIT_CODES)]
    CheckConfig(ConfigArg),
    /// Show each declared plugin and whether it is deployed.
    #[command(after_help = EXIT_CODES)]
    Status(ConfigArg),
}

/// The config file, given as `--config FILE` or as `FILE`: every command
/// takes both forms, so whichever one a user learnt works everywhere.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct ConfigArg {
    /// The JSON config file (server, tokenFile, stateDir, plugins, ...).
    #[arg(long = "config", value_name = "FILE")]
    flag: Option<PathBuf>,
    /// The same file, given without `--config`.
    #[arg(value_name = "FILE")]
    positional: Option<PathBuf>,
}

impl ConfigArg {
    fn path(self) -> PathBuf {
        // The group makes exactly one of the two present.
        self.flag.or(self.positional).unwrap_or_default()
    }
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // systemd sets these for services; JOURNAL_STREAM means stderr goes to the journal
    // anyway, so structured fields are worth sending directly.
    let under_systemd =
        std::env::var_os("JOURNAL_STREAM").is_some() || std::env::var_os("INVOCATION_ID").is_some();
    if under_systemd && let Ok(journald) = tracing_journald::layer() {
        tracing_subscriber::registry()
            .with(filter)
            .with(sideloadd::logging::no_secret_traces())
            .with(journald.with_syslog_identifier("sideloadd".into()))
            .init();
        return;
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(sideloadd::logging::no_secret_traces())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let code = match cli.cmd {
        Cmd::CheckConfig(config) => check_config(&config.path()),
        Cmd::Status(config) => status(&config.path()),
        Cmd::Run(config) => run(&config.path()),
    };
    ExitCode::from(code)
}

fn check_config(path: &std::path::Path) -> u8 {
    match sideloadd::check_config(path) {
        Ok(config) => {
            println!("{}: ok ({} plugins)", path.display(), config.plugins.len());
            EXIT_OK
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            EXIT_CONFIG
        }
    }
}

fn status(path: &std::path::Path) -> u8 {
    let result = Config::load(path)
        .context("loading config")
        .and_then(|c| sideloadd::status::status(&c).context("reading state"));
    match result {
        Ok(report) => {
            let lines = &report.lines;
            let width = lines.iter().map(|l| l.name.len()).max().unwrap_or(0);
            for l in lines {
                println!(
                    "{:width$}  {:12}  {}",
                    l.name,
                    l.version.as_deref().unwrap_or("-"),
                    l.detail
                );
            }
            if let Err(why) = &report.server {
                // Files alone cannot say what runs: a dead server is not "deployed".
                eprintln!(
                    "error: Scrypted was not reached ({why}); the lines above come from the state file and the volume only"
                );
                EXIT_FATAL
            } else if lines.iter().all(|l| l.deployed) {
                EXIT_OK
            } else {
                EXIT_PLUGIN_FAILED
            }
        }
        Err(e) => {
            eprintln!("error: {}", chain(e.as_ref()));
            EXIT_FATAL
        }
    }
}

fn run(path: &std::path::Path) -> u8 {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_CONFIG;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", chain(e.as_ref()));
            return EXIT_FATAL;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        if let Err(e) = watch_signals(shutdown.clone()) {
            eprintln!("error: {}", chain(e.as_ref()));
            return EXIT_FATAL;
        }
        let notifier = Notifier;
        let watchdog = notifier.start_watchdog();
        let result = sideloadd::run::run(&config, shutdown, notifier.clone()).await;
        if let Some(w) = watchdog {
            w.abort();
        }
        report(&notifier, result)
    })
}

/// Tells systemd and the operator how the run ended; the exit code.
fn report(
    notifier: &Notifier,
    result: Result<sideloadd::run::Outcome, sideloadd::run::RunError>,
) -> u8 {
    match result {
        Ok(outcome) if outcome.succeeded() => {
            let summary = outcome.summary();
            tracing::info!(
                deployed = outcome.deployed.len(),
                unchanged = outcome.unchanged.len(),
                "{summary}"
            );
            notifier.ready(&summary);
            EXIT_OK
        }
        Ok(outcome) => {
            let summary = outcome.summary();
            notifier.status(&summary);
            for f in &outcome.failed {
                eprintln!("error: plugin {} failed: {}", f.name, f.reason);
            }
            if let Some(why) = &outcome.admin_password_failed {
                eprintln!("error: admin password not set: {why}");
            }
            if let Some(why) = &outcome.auto_update_failed {
                eprintln!("error: {why}");
            }
            eprintln!("error: {summary}");
            EXIT_PLUGIN_FAILED
        }
        Err(e) => {
            notifier.status(&format!("failed: {e}"));
            let code = e.exit_code();
            eprintln!("error: {}", chain(&e));
            code
        }
    }
}

/// SIGTERM (systemd stop) and SIGINT cancel the run; it stops at the next request
/// boundary.
fn watch_signals(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("signal received; stopping after the current request");
        Notifier.stopping();
        shutdown.cancel();
    });
    Ok(())
}
