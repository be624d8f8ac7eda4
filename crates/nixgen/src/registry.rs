//! The npm registry client: one connection pool, per-request timeouts, and
//! retries with backoff for the failures that are worth retrying.

use std::fmt;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use reqwest::{StatusCode, Url, header};

use crate::name::PluginName;

/// Tuning knobs; the defaults suit the public registry, tests shrink them.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Whole-request timeout for metadata; connect and per-read timeout for
    /// tarballs (which may legitimately take longer in total).
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff delay, doubled per attempt, with jitter.
    pub backoff: Duration,
    /// Upper bound for a single wait, including one asked for by Retry-After,
    /// so a hostile server cannot park the updater.
    pub max_wait: Duration,
    /// Requests in flight at once over the whole client, whatever the
    /// callers' own concurrency (search, metadata, tarballs, retries).
    pub max_in_flight: usize,
    /// Overall limit for one tarball download, retries included: the read
    /// timeout alone lets a server trickling one byte at a time hold a run
    /// for hours.
    pub tarball_deadline: Duration,
    /// Host name lookups, shared by every client of the run (see
    /// [`crate::dns`]).
    pub resolver: std::sync::Arc<crate::dns::SharedResolver>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retries: 4,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
            max_in_flight: 16,
            tarball_deadline: Duration::from_secs(600),
            resolver: crate::dns::SharedResolver::new(None),
        }
    }
}

/// A bearer token for a private mirror. Its Debug output is redacted so it
/// cannot leak through logs or error reports.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(s: &str) -> Option<Self> {
        let s = s.trim();
        (!s.is_empty()).then(|| Self(s.to_owned()))
    }

    /// The secret itself, for handing to npm through its environment.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("invalid registry URL {url}: {why}")]
    BadBase { url: String, why: String },
    #[error(
        "invalid registry URL {url}: put credentials in NIXGEN_REGISTRY_TOKEN or NIXGEN_REGISTRY_TOKEN_FILE, not in the URL"
    )]
    CredentialsInUrl { url: String },
    #[error("invalid registry token: it must be printable ASCII")]
    BadToken,
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("GET {url}: no answer after {attempts} attempts")]
    Transport {
        url: Url,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}: HTTP {status} after {attempts} attempts")]
    Status {
        url: Url,
        status: StatusCode,
        attempts: u32,
    },
    #[error("GET {url}: HTTP {status}{hint}")]
    Refused {
        url: Url,
        status: StatusCode,
        hint: &'static str,
    },
    #[error("GET {url}: cannot store the response")]
    Sink {
        url: Url,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP client was shut down")]
    Closed,
    #[error("GET {url}: the search answered no results (counted as a failed search)")]
    EmptySearch { url: Url },
    #[error("GET {url}: not done after {} s (the whole download's deadline)", .after.as_secs_f64())]
    Deadline { url: Url, after: Duration },
    #[error("GET {url}: not found (HTTP 404)")]
    NotFound { url: Url },
    #[error("GET {url}: response larger than {limit} bytes")]
    TooLarge { url: Url, limit: u64 },
    #[error("GET {url}: malformed JSON")]
    Json {
        url: Url,
        #[source]
        source: serde_json::Error,
    },
}

const JSON_LIMIT: u64 = 16 << 20;
/// Package documents list every version ever published; large ones run to
/// tens of MiB on the public registry.
const DOCUMENT_LIMIT: u64 = 64 << 20;
/// npm's abbreviated package document (docs/npm-registry.md).
pub const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";
const TARBALL_LIMIT: u64 = 1 << 30;
const SEARCH_PAGE: usize = 250;
/// npm caps search results; this bounds a server whose `total` never ends.
const SEARCH_MAX_PAGES: usize = 40;

#[derive(Debug, Clone)]
pub struct Registry {
    client: reqwest::Client,
    base: Url,
    settings: HttpSettings,
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    /// Whether a bearer token is sent: a 401 then means it was rejected.
    has_token: bool,
}

/// The result of one search: scoped names as the registry spelled them.
#[derive(Debug, Default)]
pub struct SearchResult {
    pub names: Vec<String>,
}

impl Registry {
    pub fn new(
        base: &str,
        token: Option<&Token>,
        settings: HttpSettings,
    ) -> Result<Self, FetchError> {
        let base_str = normalize_base(base)?;
        let base = Url::parse(&format!("{base_str}/")).map_err(|e| FetchError::BadBase {
            url: redact(&base_str),
            why: e.to_string(),
        })?;
        let mut headers = header::HeaderMap::new();
        if let Some(Token(t)) = token {
            let mut v = header::HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| FetchError::BadToken)?;
            v.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, v);
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("nixgen/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(settings.timeout)
            .read_timeout(settings.timeout)
            .dns_resolver(settings.resolver.clone())
            .build()
            .map_err(FetchError::Client)?;
        let in_flight =
            std::sync::Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1)));
        Ok(Self {
            client,
            base,
            settings,
            in_flight,
            has_token: token.is_some(),
        })
    }

    /// Whether both clients talk to the same scheme, host and port.
    pub fn same_origin(&self, other: &Self) -> bool {
        self.base.origin() == other.base.origin()
    }

    /// The base URL without a trailing slash, as it goes into the builder.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    fn url(&self, path: &str) -> Url {
        // Paths are built from validated names and versions only.
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    pub fn metadata_url(&self, name: &PluginName, version: Option<&semver::Version>) -> Url {
        let tag = version.map_or_else(|| "latest".to_owned(), ToString::to_string);
        self.url(&format!("{}/{tag}", name.npm()))
    }

    pub fn tarball_url(&self, name: &PluginName, version: &semver::Version) -> Url {
        self.url(&format!("{}/-/{}-{version}.tgz", name.npm(), name.bare()))
    }

    /// All packages with the `scrypted` keyword, following `from=` pages.
    pub async fn search(&self) -> Result<SearchResult, FetchError> {
        #[derive(serde::Deserialize)]
        struct Page {
            objects: Vec<Object>,
            #[serde(default)]
            total: Option<u64>,
        }
        #[derive(serde::Deserialize)]
        struct Object {
            package: Package,
        }
        #[derive(serde::Deserialize)]
        struct Package {
            name: String,
        }
        let mut out = SearchResult::default();
        let mut from = 0usize;
        let mut url = self.url("-/v1/search");
        for _ in 0..SEARCH_MAX_PAGES {
            url = self.url("-/v1/search");
            url.query_pairs_mut()
                .append_pair("text", "keywords:scrypted")
                .append_pair("size", &SEARCH_PAGE.to_string())
                .append_pair("from", &from.to_string());
            let page: Page = self.get_json(url.clone()).await?;
            let n = page.objects.len();
            out.names
                .extend(page.objects.into_iter().map(|o| o.package.name));
            from += n;
            let more = page.total.is_some_and(|t| (from as u64) < t);
            if n == 0 || !more {
                break;
            }
        }
        // An empty or broken mirror answers an empty search; taken at its
        // word it would mean every plugin left the registry.
        if out.names.is_empty() {
            return Err(FetchError::EmptySearch { url });
        }
        out.names.sort();
        out.names.dedup();
        Ok(out)
    }

    /// A version document (`/latest` or a held version) as untrusted JSON.
    pub async fn metadata(
        &self,
        name: &PluginName,
        version: Option<&semver::Version>,
    ) -> Result<(Url, serde_json::Value), FetchError> {
        let url = self.metadata_url(name, version);
        let v = self.get_json(url.clone()).await?;
        Ok((url, v))
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
    ) -> Result<T, FetchError> {
        self.get_json_as(url, None, JSON_LIMIT).await
    }

    async fn get_json_as<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        accept: Option<&'static str>,
        limit: u64,
    ) -> Result<T, FetchError> {
        let mut body = Vec::new();
        let req = Request {
            limit,
            whole_timeout: true,
            accept,
        };
        self.get_into(&url, req, &mut body).await?;
        serde_json::from_slice(&body).map_err(|source| FetchError::Json { url, source })
    }

    /// The package document (`/<name>`, every version), abbreviated or full.
    pub async fn document(
        &self,
        name: &PluginName,
        abbreviated: bool,
    ) -> Result<(Url, serde_json::Value), FetchError> {
        let url = self.url(&name.npm());
        let accept = abbreviated.then_some(ABBREVIATED);
        let v = self
            .get_json_as(url.clone(), accept, DOCUMENT_LIMIT)
            .await?;
        Ok((url, v))
    }

    /// The registry's public signing keys (`/-/npm/v1/keys`).
    pub async fn keys(&self) -> Result<(Url, serde_json::Value), FetchError> {
        let url = self.url("-/npm/v1/keys");
        let v = self.get_json(url.clone()).await?;
        Ok((url, v))
    }

    /// Streams a tarball into `sink` (no whole-request timeout: a large
    /// tarball may take long, a stalled one still hits the read timeout).
    /// The whole download, retries included, has `tarball_deadline`.
    pub async fn tarball(&self, url: &Url, sink: &mut impl Sink) -> Result<(), FetchError> {
        let after = self.settings.tarball_deadline;
        let req = Request {
            limit: TARBALL_LIMIT,
            whole_timeout: false,
            accept: None,
        };
        tokio::time::timeout(after, self.get_into(url, req, sink))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Deadline {
                    url: url.clone(),
                    after,
                })
            })
    }

    /// The one retry policy of every request: exponential backoff from
    /// `backoff`, doubled per attempt, with jitter (each wait between half and
    /// all of its step), never longer than `max_wait`, `retries` times.
    fn policy(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.settings.backoff / 2)
            .with_max_delay(self.settings.max_wait / 2)
            .with_max_times(self.settings.retries as usize)
            .with_jitter()
    }

    /// GET with retries. A body cut short counts as a transport failure and
    /// is retried like a refused connection; a `Retry-After` (capped at
    /// `max_wait`) replaces the planned wait.
    async fn get_into(
        &self,
        url: &Url,
        req: Request,
        sink: &mut impl Sink,
    ) -> Result<(), FetchError> {
        let attempts = std::cell::Cell::new(0u32);
        let sink = tokio::sync::Mutex::new(sink);
        let max_wait = self.settings.max_wait;
        (|| async {
            attempts.set(attempts.get() + 1);
            let mut sink = sink.lock().await;
            self.try_get(url, req, &mut **sink).await
        })
        .retry(self.policy())
        .sleep(tokio::time::sleep)
        .when(Attempt::is_retryable)
        .notify(|e, after| tracing::debug!(%url, error = %e, ?after, "retrying"))
        .adjust(|e, planned| match (e, planned) {
            (Attempt::Status(_, Some(asked)), Some(_)) => Some((*asked).min(max_wait)),
            _ => planned,
        })
        .await
        .map_err(|e| e.into_error(url, attempts.get()))
    }

    fn refusal_hint(&self, status: StatusCode) -> &'static str {
        match status {
            StatusCode::UNAUTHORIZED if self.has_token => {
                " (the registry rejected the token from NIXGEN_REGISTRY_TOKEN or NIXGEN_REGISTRY_TOKEN_FILE)"
            }
            StatusCode::FORBIDDEN if self.has_token => {
                " (the token from NIXGEN_REGISTRY_TOKEN or NIXGEN_REGISTRY_TOKEN_FILE is not allowed to read this)"
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                " (a private mirror needs NIXGEN_REGISTRY_TOKEN or NIXGEN_REGISTRY_TOKEN_FILE)"
            }
            _ => "",
        }
    }

    /// One attempt: the request, its status, then the body into `sink`.
    async fn try_get(&self, url: &Url, req: Request, sink: &mut impl Sink) -> Result<(), Attempt> {
        let Request {
            limit,
            whole_timeout,
            accept,
        } = req;
        // The permit is held for one attempt, not across backoff sleeps.
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Attempt::Fatal(FetchError::Closed))?;
        let mut req = self.client.get(url.clone());
        if whole_timeout {
            req = req.timeout(self.settings.timeout);
        }
        if let Some(accept) = accept {
            req = req.header(header::ACCEPT, accept);
        }
        let resp = req.send().await.map_err(Attempt::from_reqwest)?;
        let resp = self.check_status(url, resp)?;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(Attempt::Fatal(FetchError::TooLarge {
                url: url.clone(),
                limit,
            }));
        }
        receive(url, resp, limit, sink).await
    }

    /// Sorts a response by status: success, worth a retry, or final.
    fn check_status(
        &self,
        url: &Url,
        resp: reqwest::Response,
    ) -> Result<reqwest::Response, Attempt> {
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(Attempt::Fatal(FetchError::NotFound { url: url.clone() }));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Attempt::Status(status, retry_after));
        }
        if !status.is_success() {
            return Err(Attempt::Fatal(FetchError::Refused {
                url: url.clone(),
                status,
                hint: self.refusal_hint(status),
            }));
        }
        Ok(resp)
    }
}

/// How one GET is made.
#[derive(Debug, Clone, Copy)]
struct Request {
    /// Largest body accepted.
    limit: u64,
    /// Whether the whole request has the timeout (metadata), or only each
    /// read (tarballs, which may take long in total).
    whole_timeout: bool,
    accept: Option<&'static str>,
}

/// Streams a response body into `sink`, at most `limit` bytes.
async fn receive(
    url: &Url,
    mut resp: reqwest::Response,
    limit: u64,
    sink: &mut impl Sink,
) -> Result<(), Attempt> {
    let sink_err = |source| {
        Attempt::Fatal(FetchError::Sink {
            url: url.clone(),
            source,
        })
    };
    sink.reset().map_err(sink_err)?;
    let mut received = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(Attempt::from_reqwest)? {
        received += chunk.len() as u64;
        if received > limit {
            return Err(Attempt::Fatal(FetchError::TooLarge {
                url: url.clone(),
                limit,
            }));
        }
        sink.write(&chunk).map_err(sink_err)?;
    }
    Ok(())
}

/// Where a response body goes. Reset before every attempt, so a retried
/// download never appends to a partial one.
pub trait Sink {
    fn reset(&mut self) -> std::io::Result<()>;
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()>;
}

impl Sink for Vec<u8> {
    fn reset(&mut self) -> std::io::Result<()> {
        self.clear();
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(chunk);
        Ok(())
    }
}

enum Attempt {
    Transport(reqwest::Error),
    Status(StatusCode, Option<Duration>),
    Fatal(FetchError),
}

impl Attempt {
    fn from_reqwest(e: reqwest::Error) -> Self {
        // Builder errors never heal; everything else on the wire may.
        if e.is_builder() {
            Self::Fatal(FetchError::Client(e))
        } else {
            Self::Transport(e)
        }
    }

    fn is_retryable(&self) -> bool {
        !matches!(self, Self::Fatal(_))
    }

    /// The error a caller sees once retries are over.
    fn into_error(self, url: &Url, attempts: u32) -> FetchError {
        match self {
            Self::Fatal(e) => e,
            Self::Transport(source) => FetchError::Transport {
                url: url.clone(),
                attempts,
                source,
            },
            Self::Status(status, _) => FetchError::Status {
                url: url.clone(),
                status,
                attempts,
            },
        }
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "{e}"),
            Self::Status(status, _) => write!(f, "HTTP {status}"),
            Self::Fatal(e) => write!(f, "{e}"),
        }
    }
}

/// Checks the scheme and drops trailing slashes. Credentials in the URL are
/// refused, and no error echoes them.
pub fn normalize_base(base: &str) -> Result<String, FetchError> {
    let trimmed = base.trim().trim_end_matches('/');
    let shown = redact(trimmed);
    let bad = |why: &str| FetchError::BadBase {
        url: shown.clone(),
        why: why.to_owned(),
    };
    let url = Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::CredentialsInUrl { url: shown });
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http and https are supported"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "a query or fragment makes no sense in a registry base URL",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A URL fit for an error message: user and password replaced by `***`; text
/// that does not parse but has an `@` (maybe `user:secret@`) is not shown.
fn redact(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_password(None);
            let _ = u.set_username("***");
            format!("{:?}", u.as_str())
        }
        Ok(_) => format!("{raw:?}"),
        Err(_) if raw.contains('@') => "(not shown: it may hold credentials)".to_owned(),
        Err(_) => format!("{raw:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_normalization() {
        assert_eq!(
            normalize_base("https://r.example/npm/").ok().as_deref(),
            Some("https://r.example/npm")
        );
        for bad in ["ftp://x", "not a url", "https://u:p@x", "https://x/?q=1"] {
            assert!(normalize_base(bad).is_err(), "{bad}");
        }
        for secret in [
            "https://u:s3cret@x/npm",
            "https://s3cret@x",
            "htt ps://u:s3cret@x",
        ] {
            let msg = normalize_base(secret).expect_err(secret).to_string();
            assert!(!msg.contains("s3cret"), "{msg}");
        }
    }

    #[test]
    fn urls_keep_a_base_path() {
        let r = Registry::new("http://127.0.0.1:1/npm/", None, HttpSettings::default())
            .expect("client");
        let n = PluginName::new("nvr").expect("name");
        let v = semver::Version::parse("0.12.43").expect("version");
        assert_eq!(r.base(), "http://127.0.0.1:1/npm");
        assert_eq!(
            r.metadata_url(&n, None).as_str(),
            "http://127.0.0.1:1/npm/@scrypted/nvr/latest"
        );
        assert_eq!(
            r.tarball_url(&n, &v).as_str(),
            "http://127.0.0.1:1/npm/@scrypted/nvr/-/nvr-0.12.43.tgz"
        );
        let community = PluginName::from_npm("@apocaliss92/scrypted-frigate-bridge").expect("name");
        assert_eq!(
            r.tarball_url(&community, &v).as_str(),
            "http://127.0.0.1:1/npm/@apocaliss92/scrypted-frigate-bridge/-/scrypted-frigate-bridge-0.12.43.tgz"
        );
        let unscoped = PluginName::from_npm("scrypted-x").expect("name");
        assert_eq!(
            r.metadata_url(&unscoped, None).as_str(),
            "http://127.0.0.1:1/npm/scrypted-x/latest"
        );
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = Token::new(" s3cret\n").expect("token");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert!(Token::new("  ").is_none());
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        use backon::BackoffBuilder as _;
        let s = HttpSettings {
            backoff: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
            retries: 30,
            ..Default::default()
        };
        let r = Registry::new("http://127.0.0.1:1", None, s).expect("client");
        let delays: Vec<Duration> = r.policy().build().collect();
        assert_eq!(delays.len(), 30);
        for d in &delays {
            assert!(*d <= Duration::from_secs(1), "{d:?}");
            assert!(*d >= Duration::from_millis(50), "{d:?}");
        }
        assert!(delays[0] < Duration::from_millis(100), "{delays:?}");
        assert!(delays[29] >= Duration::from_millis(500), "{delays:?}");
    }
}
