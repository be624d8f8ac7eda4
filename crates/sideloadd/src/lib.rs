//! sideloadd: provisions Nix-built Scrypted plugins into a running Scrypted server.
//!
//! The binary (`main.rs`) is a thin shell around one module per command:
//! [`run::run`], [`status::status`] and [`check::check_config`].

pub mod check;
pub mod client;
pub mod config;
mod confirm;
mod deploy;
pub mod errchain;
mod error;
mod health;
pub mod keep;
pub mod lock;
pub mod logging;
pub mod notify;
mod outcome;
pub mod password;
mod rollback;
pub mod rpc;
pub mod run;
mod session;
pub mod state;
pub mod status;
mod token;
mod upkeep;
pub mod validate;
mod volume;
pub mod zipcheck;

pub use check::{CheckError, check_config};
pub use config::{Config, ConfigError, PluginDecl};
pub use error::RunError;
pub use outcome::Outcome;

/// Every declared plugin is in place.
pub const EXIT_OK: u8 = 0;
/// At least one plugin failed (each is named on stderr); the others were provisioned.
pub const EXIT_PLUGIN_FAILED: u8 = 1;
/// The config is invalid (or the command line is).
pub const EXIT_CONFIG: u8 = 2;
/// Nothing could be provisioned: server not ready in time, token rejected or
/// unreadable, state directory unusable.
pub const EXIT_FATAL: u8 = 3;
/// Stopped by SIGTERM/SIGINT before finishing.
pub const EXIT_INTERRUPTED: u8 = 4;
