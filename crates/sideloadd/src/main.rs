//! sideloadd command line. The logic lives in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sideloadd::notify::Notifier;
use sideloadd::{Config, EXIT_CONFIG, EXIT_FATAL, EXIT_OK, EXIT_PLUGIN_FAILED};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

#[derive(Parser)]
#[command(
    version,
    about = "Provision Nix-built Scrypted plugins into a running Scrypted"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Provision every declared plugin, then exit (0 when all are in place).
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a config and its plugin directories without touching the server.
    CheckConfig {
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
    /// Show each declared plugin and whether it is deployed.
    Status {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
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
            .with(journald.with_syslog_identifier("sideloadd".into()))
            .init();
        return;
    }
    tracing_subscriber::registry()
        .with(filter)
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
        Cmd::CheckConfig { config } => check_config(&config),
        Cmd::Status { config } => status(&config),
        Cmd::Run { config } => run(&config),
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
        Ok(lines) => {
            let width = lines.iter().map(|l| l.name.len()).max().unwrap_or(0);
            for l in &lines {
                println!(
                    "{:width$}  {:12}  {}",
                    l.name,
                    l.version.as_deref().unwrap_or("-"),
                    l.detail
                );
            }
            if lines.iter().all(|l| l.deployed) {
                EXIT_OK
            } else {
                EXIT_PLUGIN_FAILED
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
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
            eprintln!("error: {e:#}");
            return EXIT_FATAL;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        if let Err(e) = watch_signals(shutdown.clone()) {
            eprintln!("error: {e:#}");
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
            eprintln!("error: {summary}");
            EXIT_PLUGIN_FAILED
        }
        Err(e) => {
            notifier.status(&format!("failed: {e}"));
            let code = e.exit_code();
            eprintln!("error: {:#}", anyhow::Error::new(e));
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
