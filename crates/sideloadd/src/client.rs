//! The three Scrypted HTTP calls sideloadd makes, and how their failures are classed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio_util::io::ReaderStream;

use crate::validate::ValidPlugin;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const SMALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Deploy waits for Scrypted to stop the old worker (up to 5 s), extract the zip and
/// fork the new one; the upload itself is bounded by the allowance per megabyte.
const DEPLOY_BASE_TIMEOUT: Duration = Duration::from_secs(120);
const DEPLOY_TIMEOUT_PER_MB: Duration = Duration::from_secs(2);
/// Answers are quoted in errors, cut to this length (HTML stack traces are long).
const BODY_QUOTE: usize = 300;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
}

// The token must never reach a log, so Debug is written by hand.
impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the token is not a valid HTTP header value")]
    BadToken,
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    #[error("{url}: cannot connect: {}", chain(.source))]
    Connect { url: Url, source: reqwest::Error },
    #[error("{url}: request failed: {}", chain(.source))]
    Transport { url: Url, source: reqwest::Error },
    #[error("{url}: the server rejected the token (401 Not Authorized)")]
    Unauthorized { url: Url },
    #[error("{url}: server answered {status}: {body}")]
    Status {
        url: Url,
        status: StatusCode,
        body: String,
    },
    #[error("cannot open {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ClientError {
    /// Worth retrying: the server may be restarting or briefly failing. A 4xx other
    /// than a timeout will answer the same way next time.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Transport { .. } => true,
            Self::Status { status, .. } if self.is_deterministic() => {
                debug_assert!(status.is_server_error());
                false
            }
            Self::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::REQUEST_TIMEOUT
            }
            Self::BadToken | Self::Build(_) | Self::Unauthorized { .. } | Self::File { .. } => {
                false
            }
        }
    }
}

impl ClientError {
    /// Scrypted could not extract the zip (`docs/scrypted-api.md` §5): the same zip
    /// fails the same way every time, and every try kills the running plugin again.
    pub fn is_extraction_failure(&self) -> bool {
        match self {
            Self::Status { status, body, .. } => {
                status.is_server_error()
                    && ["ADM-ZIP", "ENOTDIR", "RangeError"]
                        .iter()
                        .any(|m| body.contains(m))
            }
            _ => false,
        }
    }

    /// A 500 that the same request gets every time: an extraction failure, or a
    /// JavaScript `TypeError` thrown by the server's own code on this package.json
    /// (`docs/scrypted-api.md` §4). Retrying only repeats it.
    pub fn is_deterministic(&self) -> bool {
        self.is_extraction_failure() || self.is_type_error()
    }

    fn is_type_error(&self) -> bool {
        matches!(self, Self::Status { status, body, .. }
            if status.is_server_error() && body.contains("TypeError"))
    }

    /// Whether a failed deploy had stored its zip in Scrypted's database (it does
    /// so first, `docs/scrypted-api.md` §4): any 500 but `npm package not found`.
    pub fn deploy_stored_the_zip(&self) -> bool {
        matches!(self, Self::Status { status, body, .. }
            if status.is_server_error() && !body.contains("npm package not found"))
    }

    /// Whether the server got far enough in a deploy to kill the running plugin:
    /// it answered (200, or a 500 from extraction), rather than refusing the request
    /// before touching the plugin. A `TypeError` comes from recording the plugin's
    /// device (server/src/runtime.ts, `upsertDevice`), before the old process is
    /// stopped: the running version is untouched.
    pub fn deploy_reached_the_plugin(&self) -> bool {
        match self {
            Self::Status { status, body, .. } => {
                status.is_server_error()
                    && !body.contains("npm package not found")
                    && !self.is_type_error()
            }
            _ => false,
        }
    }
}

/// reqwest's Display stops at "error sending request"; the cause (refused, reset)
/// is what an operator needs.
pub(crate) use crate::errchain::chain;

/// What the readiness probe saw.
#[derive(Debug)]
pub enum Probe {
    /// 404 on GET setup: up, and the token is admin.
    Ready,
    /// 401: up, but the token is wrong.
    Unauthorized,
    /// Not up (refused, reset, timeout) or answering something unexpected.
    NotYet(String),
}

impl Client {
    pub fn new(base: Url, token: &str) -> Result<Self, ClientError> {
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::BadToken)?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // Scrypted closes idle keep-alive sockets after 5 s (node's default); a
            // shorter pool life avoids reusing one it is about to close.
            .pool_idle_timeout(Duration::from_secs(3))
            .user_agent(concat!("sideloadd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self { http, base, auth })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The `Authorization` value, for the RPC connection (never logged).
    pub fn auth(&self) -> &str {
        self.auth.to_str().unwrap_or("")
    }

    fn url(&self, path: &str, npm_package: Option<&str>) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        if let Some(p) = npm_package {
            url.query_pairs_mut().append_pair("npmPackage", p);
        }
        url
    }

    fn send_error(url: &Url, e: reqwest::Error) -> ClientError {
        if e.is_connect() {
            ClientError::Connect {
                url: url.clone(),
                source: e,
            }
        } else {
            ClientError::Transport {
                url: url.clone(),
                source: e,
            }
        }
    }

    /// `GET /web/component/script/setup`: no side effects on the server. Gives up
    /// after `timeout`, so a wait never outlasts its budget.
    pub async fn probe(&self, timeout: Duration) -> Probe {
        let url = self.url("/web/component/script/setup", None);
        let res = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(timeout)
            .send()
            .await;
        match res {
            Ok(r) if r.status() == StatusCode::NOT_FOUND => Probe::Ready,
            Ok(r) if r.status() == StatusCode::UNAUTHORIZED => Probe::Unauthorized,
            Ok(r) => Probe::NotYet(format!("answered {}", r.status())),
            Err(e) => Probe::NotYet(chain(&e)),
        }
    }

    async fn check(url: Url, res: reqwest::Response) -> Result<(), ClientError> {
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized { url });
        }
        let mut body = res.text().await.unwrap_or_default();
        if body.len() > BODY_QUOTE {
            let mut cut = BODY_QUOTE;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push_str("...");
        }
        Err(ClientError::Status {
            url,
            status,
            body: body.trim().to_string(),
        })
    }

    /// `POST setup`: stores package.json as the plugin's record.
    pub async fn setup(&self, p: &ValidPlugin) -> Result<(), ClientError> {
        let url = self.url("/web/component/script/setup", Some(&p.name));
        let res = self
            .http
            .post(url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(p.package_json.clone())
            .timeout(SMALL_REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| Self::send_error(&url, e))?;
        Self::check(url, res).await
    }

    /// `POST deploy`: the zip streamed from disk with its length announced, so
    /// memory use does not grow with the plugin.
    pub async fn deploy(&self, p: &ValidPlugin) -> Result<(), ClientError> {
        let url = self.url("/web/component/script/deploy", Some(&p.name));
        self.post_zip(url, p).await
    }

    /// `POST deploy?no-rebind`: stores the zip as the plugin's record without
    /// touching the running process (server/src/scrypted-server-main.ts).
    pub async fn store_without_restart(&self, p: &ValidPlugin) -> Result<(), ClientError> {
        let mut url = self.url("/web/component/script/deploy", Some(&p.name));
        url.query_pairs_mut().append_pair("no-rebind", "");
        self.post_zip(url, p).await
    }

    async fn post_zip(&self, url: Url, p: &ValidPlugin) -> Result<(), ClientError> {
        let file =
            tokio::fs::File::open(&p.zip_path)
                .await
                .map_err(|source| ClientError::File {
                    path: p.zip_path.clone(),
                    source,
                })?;
        let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(file, 64 * 1024));
        let timeout =
            DEPLOY_BASE_TIMEOUT + DEPLOY_TIMEOUT_PER_MB * (p.zip_size / 1_000_000 + 1) as u32;
        let res = self
            .http
            .post(url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/zip")
            .header(CONTENT_LENGTH, p.zip_size)
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| Self::send_error(&url, e))?;
        Self::check(url, res).await
    }
}
