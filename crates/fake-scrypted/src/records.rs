//! What a test configures and reads back: the server options, the routes faults
//! apply to, and the records of requests and plugins.

use crate::http::Head;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Options {
    /// The value of `SCRYPTED_ADMIN_TOKEN`.
    pub token: String,
    /// How long the port stays closed after `start`.
    pub startup_delay: Duration,
    /// `SCRYPTED_VOLUME`; plugin zips are written under `plugins/` there.
    pub volume: Option<PathBuf>,
    /// 0 picks a free port.
    pub port: u16,
    /// Serve `GET /__fake/requests` (for the benchmark script, which cannot call the
    /// Rust API). Not part of Scrypted.
    pub control_endpoint: bool,
    /// How long the whole server stops answering after a zip with an entry of
    /// 2 GiB or more (the real one: 10 s and more).
    pub freeze: Duration,
    /// From fork to `loaded <name>` (the real one: 0.45-0.7 s).
    pub load_delay: Duration,
    /// A crashed plugin is restarted after this (the real one: 60 s).
    pub crash_restart: Duration,
    /// Core creates its auto-update automation this long after it loads.
    pub automation_delay: Duration,
    /// `SCRYPTED_ADMIN_USERNAME`: at boot, this user is created with a random
    /// password if missing. None: no user until the first `POST /login`.
    pub admin_username: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            token: "fake-admin-token".into(),
            startup_delay: Duration::ZERO,
            volume: None,
            port: 0,
            control_endpoint: false,
            freeze: Duration::from_secs(10),
            load_delay: Duration::from_millis(300),
            crash_restart: Duration::from_secs(60),
            automation_delay: Duration::from_millis(200),
            admin_username: Some("admin".into()),
        }
    }
}

/// Which sideload route a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    Setup,
    Deploy,
}

/// One request as the server saw it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub route: Option<Route>,
    pub npm_package: Option<String>,
    pub content_type: Option<String>,
    pub authorized: bool,
    pub chunked: bool,
    pub content_length: Option<u64>,
    /// Bytes of body the fake took (for an upload it cut off: up to the cut).
    pub body_len: u64,
    /// md5 of the body, hex, when it was received completely.
    pub body_md5: Option<String>,
    /// None when the server dropped the connection instead of answering.
    pub status: Option<u16>,
    /// From the end of the request head to the end of the answer: the server's time.
    pub server_micros: u64,
}

impl RequestRecord {
    /// What the head says; the body and the answer are filled in later.
    pub(crate) fn of(head: &Head, authorized: bool) -> Self {
        let route = match (head.method.as_str(), head.path.as_str()) {
            ("POST", "/web/component/script/setup") => Some(Route::Setup),
            ("POST", "/web/component/script/deploy") => Some(Route::Deploy),
            _ => None,
        };
        Self {
            method: head.method.clone(),
            path: head.path.clone(),
            route,
            npm_package: head
                .query_pairs()
                .into_iter()
                .find(|(k, _)| k == "npmPackage")
                .map(|(_, v)| v),
            content_type: head.header("content-type").map(str::to_string),
            authorized,
            chunked: head.chunked(),
            content_length: head.content_length(),
            body_len: 0,
            body_md5: None,
            status: None,
            server_micros: 0,
        }
    }
}

/// What the fake's "database" holds for one plugin.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PluginRecord {
    pub package_json: Value,
    /// md5 of the zip stored by the last deploy (stored even when it is corrupt).
    pub zip_md5: Option<String>,
    /// Worker pid while the plugin runs; None when it was killed and not restarted.
    pub pid: Option<u64>,
    /// Whether the running worker found `main.nodejs.js` (deploy answers 200 either way).
    pub loaded: bool,
    pub deploys: u32,
    /// Device id; a plugin removed and installed again gets a new one.
    pub id: String,
}
