//! `fake-scrypted`: the fake server as a process, for the benchmark script.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use fake_scrypted::fixture::PluginSpec;
use fake_scrypted::{FakeScrypted, Options};

#[derive(Parser)]
#[command(about = "Fake Scrypted server (tests and benchmarks only)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve on 127.0.0.1:PORT until killed; `GET /__fake/requests` lists requests.
    Serve {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        token: String,
        #[arg(long)]
        volume: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        startup_delay_ms: u64,
        /// Delay every answer, to stand in for the real server's work.
        #[arg(long, default_value_t = 0)]
        slow_ms: u64,
        /// From fork to "loaded" (the real server: 450-700 ms).
        #[arg(long, default_value_t = 500)]
        load_delay_ms: u64,
    },
    /// Write a test plugin (package.json + plugin.zip) into DIR.
    MakePlugin {
        dir: PathBuf,
        name: String,
        #[arg(long, default_value = "1.0.0")]
        version: String,
        /// Extra stored bytes in the zip.
        #[arg(long, default_value_t = 0)]
        padding_bytes: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Serve {
            port,
            token,
            volume,
            startup_delay_ms,
            slow_ms,
            load_delay_ms,
        } => {
            let server = FakeScrypted::start(Options {
                token,
                startup_delay: Duration::from_millis(startup_delay_ms),
                volume,
                port,
                control_endpoint: true,
                load_delay: Duration::from_millis(load_delay_ms),
                ..Options::default()
            })?;
            server.set_slow(Duration::from_millis(slow_ms));
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r?,
                _ = term.recv() => {}
            }
            drop(server);
        }
        Cmd::MakePlugin {
            dir,
            name,
            version,
            padding_bytes,
        } => {
            let mut spec = PluginSpec::new(&name, &version);
            spec.padding_bytes = padding_bytes;
            spec.write(&dir)?;
        }
    }
    Ok(())
}
