//! A fake Scrypted server for tests and benchmarks.
//!
//! It keeps the sideload contract measured on the real server (see
//! `docs/scrypted-api.md`), bugs included, because sideloadd must be tested against
//! what Scrypted does, not against what it should do:
//! - `/web/component/*` needs the admin bearer token (or `?scryptedToken=`), else
//!   `401 Not Authorized`;
//! - the port stays closed until the server is "ready" (start-up delay, restarts);
//! - setup stores any JSON as-is, so `{}` is accepted and poisons the next deploy;
//! - deploy without setup is `500 npm package not found`; without a Content-Type a
//!   body over 100 kB is `413`; a corrupt zip is a `500 ADM-ZIP` *after* the running
//!   plugin was killed and its files deleted;
//! - deploy answers `200 ok` once the worker is spawned, whether or not it loads;
//! - a deployed zip lands in `<volume>/plugins/<npm name>/zip/1-<md5>.zip`.
//!
//! It serves HTTP/1.1 with hyper, and the RPC WebSocket with tokio-tungstenite on
//! the upgraded connection. Faults are injected around it: refusing connections
//! (the listener closes), cutting an upload midway (the connection is dropped
//! unanswered), one-off 500s, restarts between setup and deploy, slow or hung
//! answers. Every request is recorded for assertions.

mod adm;
pub mod fixture;
mod handle;
mod http;
mod life;
mod records;
mod routes;
mod rpc;
mod server;
mod state;
#[cfg(test)]
mod tests;
mod users;

use md5::{Digest, Md5};

pub use crate::handle::FakeScrypted;
pub use crate::life::{CRASH_AFTER_LOAD_MARKER, CRASH_MARKER, FAIL_LOAD_MARKER, Latest, LogEntry};
pub use crate::records::{Options, PluginRecord, RequestRecord, Route};
pub use crate::users::{User, UsersCall};

/// Express's `bodyParser.json()` default limit, which also applies to bodies sent
/// without a Content-Type (measured: 413 above it).
pub const JSON_LIMIT: u64 = 100 * 1024;
/// `bodyParser.raw({ limit: 100000000 })` for zips.
pub const RAW_LIMIT: u64 = 100_000_000;

/// The server's own "not found" answer on `/endpoint/<name>/`.
pub fn endpoint_not_found_body(name: &str) -> String {
    format!("Not Found (plugin or device \"{name}\" not found)")
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
