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
mod http;
mod life;
mod rpc;
#[cfg(test)]
mod tests;
mod users;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::http::{BodyOutcome, Head, Response};
pub use crate::life::{CRASH_MARKER, FAIL_LOAD_MARKER, Latest, LogEntry};
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
    fn of(head: &Head, authorized: bool) -> Self {
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

#[derive(Debug, Default)]
struct Faults {
    reset_next: Vec<Route>,
    fail_next: Vec<Route>,
    restart_after_setup: Option<Duration>,
    down_after_requests: Option<(usize, Duration)>,
    slow: Duration,
    /// Extra delay before answering a deploy (a hung deploy).
    slow_deploy: Duration,
    /// The next deploy kills the plugin, then fails with this 500 body.
    fail_after_kill: Option<String>,
}

#[derive(Debug)]
struct State {
    db: BTreeMap<String, PluginRecord>,
    zips: BTreeMap<String, Vec<u8>>,
    requests: Vec<RequestRecord>,
    faults: Faults,
    next_pid: u64,
    boots: u32,
    /// Nothing is answered before this (a huge entry stalled the main process).
    frozen_until: Option<Instant>,
    logs: Vec<LogEntry>,
    next_device: u64,
    automation: Option<life::Automation>,
    /// Pongs received on RPC sessions.
    pongs: u64,
    crashed_by_websocket: bool,
    users: BTreeMap<String, User>,
    users_calls: Vec<UsersCall>,
}

#[derive(Debug)]
struct Shared {
    options: Options,
    addr: SocketAddr,
    state: Mutex<State>,
    control: mpsc::UnboundedSender<Control>,
    events: tokio::sync::broadcast::Sender<life::Event>,
}

#[derive(Debug)]
enum Control {
    Down(Duration),
}

/// A running fake server. Dropping it stops it.
#[derive(Debug)]
pub struct FakeScrypted {
    shared: Arc<Shared>,
    supervisor: JoinHandle<()>,
}

impl Drop for FakeScrypted {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

impl FakeScrypted {
    /// Starts the server in the current tokio runtime. The port opens after
    /// `startup_delay`; until then connections are refused.
    pub fn start(options: Options) -> std::io::Result<Self> {
        let port = if options.port == 0 {
            // Learn a free port now so the address is known while the port is closed.
            std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port()
        } else {
            options.port
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let (control, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            options,
            addr,
            state: Mutex::new(State {
                db: BTreeMap::new(),
                zips: BTreeMap::new(),
                requests: Vec::new(),
                faults: Faults::default(),
                next_pid: 1000,
                boots: 0,
                frozen_until: None,
                logs: Vec::new(),
                next_device: 100,
                automation: None,
                pongs: 0,
                crashed_by_websocket: false,
                users: BTreeMap::new(),
                users_calls: Vec::new(),
            }),
            control,
            events: tokio::sync::broadcast::channel(256).0,
        });
        let supervisor = tokio::spawn(supervise(shared.clone(), rx));
        Ok(Self { shared, supervisor })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn token(&self) -> &str {
        &self.shared.options.token
    }

    /// Waits until the port accepts connections (bounded).
    pub async fn wait_up(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if TcpStream::connect(self.shared.addr).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Setup/deploy requests for one plugin, in order.
    pub fn sideload_requests(&self, npm_name: &str) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| r.route.is_some() && r.npm_package.as_deref() == Some(npm_name))
            .collect()
    }

    pub fn plugin(&self, npm_name: &str) -> Option<PluginRecord> {
        self.shared.lock().db.get(npm_name).cloned()
    }

    pub fn boots(&self) -> u32 {
        self.shared.lock().boots
    }

    /// Closes the port now and reopens it after `downtime` (a server restart: the
    /// database survives, installed plugins are restarted at boot).
    pub fn restart(&self, downtime: Duration) {
        let _ = self.shared.control.send(Control::Down(downtime));
    }

    /// Fault: the port closes for `downtime` right after the `n`-th request from now
    /// has been answered.
    pub fn go_down_after_requests(&self, n: usize, downtime: Duration) {
        self.shared.lock().faults.down_after_requests = Some((n.max(1), downtime));
    }

    /// Fault: the next request on `route` is cut off halfway through its body (the
    /// client sees a reset); nothing is stored.
    pub fn reset_next(&self, route: Route) {
        self.shared.lock().faults.reset_next.push(route);
    }

    /// Fault: the next request on `route` answers a bare 500 with no effect.
    pub fn fail_next(&self, route: Route) {
        self.shared.lock().faults.fail_next.push(route);
    }

    /// Fault: after the next successful setup, the server restarts (down for
    /// `downtime`) before the deploy can arrive.
    pub fn restart_after_next_setup(&self, downtime: Duration) {
        self.shared.lock().faults.restart_after_setup = Some(downtime);
    }

    /// Fault: the next deploy kills the running plugin and deletes its files, then
    /// answers `500 <body>`, as when the extractor fails on something unforeseen.
    pub fn fail_next_deploy_after_kill(&self, body: &str) {
        self.shared.lock().faults.fail_after_kill = Some(body.into());
    }

    /// Fault: every deploy answer is delayed by `delay`, after its work is done.
    pub fn set_slow_deploys(&self, delay: Duration) {
        self.shared.lock().faults.slow_deploy = delay;
    }

    /// Fault: every answer is delayed by `delay`.
    pub fn set_slow(&self, delay: Duration) {
        self.shared.lock().faults.slow = delay;
    }

    /// A fresh volume: database and plugin files gone, as after `rm -rf` of the
    /// volume followed by a server restart.
    pub fn wipe(&self, downtime: Duration) {
        {
            let mut st = self.shared.lock();
            st.db.clear();
            st.zips.clear();
            st.users.clear();
        }
        if let Some(volume) = &self.shared.options.volume {
            let _ = fs::remove_dir_all(volume.join("plugins"));
        }
        self.restart(downtime);
    }

    /// Every Logger entry since the fake started.
    pub fn logs(&self) -> Vec<LogEntry> {
        self.shared.lock().logs.clone()
    }

    /// Core's auto-update automation: its device id and whether it is on.
    pub fn automation(&self) -> Option<(String, bool)> {
        self.shared
            .lock()
            .automation
            .as_ref()
            .map(|a| (a.id.clone(), a.on))
    }

    /// Fires core's auto-update automation now (it would at 03:15): when it is on,
    /// every installed plugin older than its `latest` gets it, a deprecated one is
    /// uninstalled. Returns the plugins changed.
    pub fn fire_auto_update(&self, latest: &[Latest]) -> Vec<String> {
        life::auto_update(&self.shared, latest)
    }

    /// Uninstalls a plugin as the web UI does (`removeDevice`).
    pub fn remove_plugin(&self, npm_name: &str) -> bool {
        let id = self.plugin(npm_name).map(|r| r.id);
        id.is_some_and(|id| life::remove_device(&self.shared, &id))
    }

    /// Whether a WebSocket upgrade for a missing plugin took the server down.
    pub fn crashed_by_websocket(&self) -> bool {
        self.shared.lock().crashed_by_websocket
    }

    /// Engine.io pongs received (answers to the server's pings).
    pub fn pongs(&self) -> u64 {
        self.shared.lock().pongs
    }

    /// The user of that name, as the fake's database holds it.
    pub fn user(&self, username: &str) -> Option<User> {
        self.shared.lock().users.get(username).cloned()
    }

    /// Every call to the RPC `users` component since the fake started.
    pub fn users_calls(&self) -> Vec<UsersCall> {
        self.shared.lock().users_calls.clone()
    }

    /// How many times `addUser` was called.
    pub fn add_user_calls(&self) -> usize {
        self.users_calls()
            .iter()
            .filter(|c| matches!(c, UsersCall::AddUser { .. }))
            .count()
    }

    /// Stores a setup record directly, as an earlier sideloader would have.
    pub fn seed_setup(&self, npm_name: &str, package_json: Value) {
        let mut st = self.shared.lock();
        let rec = record(&mut st, npm_name);
        rec.package_json = package_json;
    }
}

/// The plugin's record, created (with a new device id) if missing.
fn record<'a>(st: &'a mut State, name: &str) -> &'a mut PluginRecord {
    if !st.db.contains_key(name) {
        let id = life::new_id(st);
        st.db.insert(
            name.into(),
            PluginRecord {
                id,
                ..PluginRecord::default()
            },
        );
    }
    st.db.get_mut(name).expect("just inserted")
}

impl Shared {
    fn go_down(&self, downtime: Duration) {
        let _ = self.control.send(Control::Down(downtime));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not hide the recorded requests from the test.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut last = None;
    // The port was just released by us (restart); allow TIME_WAIT reuse and retry a
    // little in case the kernel is slow to let go.
    for _ in 0..100 {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => return socket.listen(1024),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("bind failed")))
}

async fn supervise(shared: Arc<Shared>, mut control: mpsc::UnboundedReceiver<Control>) {
    let mut downtime = shared.options.startup_delay;
    loop {
        // While down, further restart requests extend the outage.
        let until = tokio::time::Instant::now() + downtime;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                msg = control.recv() => match msg {
                    Some(Control::Down(_)) => {}
                    None => return,
                },
            }
        }
        let listener = match bind(shared.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("fake-scrypted: cannot bind {}: {e}", shared.addr);
                return;
            }
        };
        boot(&shared);
        let mut conns = JoinSet::new();
        downtime = loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        conns.spawn(serve_connection(shared.clone(), stream));
                    }
                }
                msg = control.recv() => match msg {
                    Some(Control::Down(d)) => break d,
                    None => return,
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        };
        drop(listener);
        conns.abort_all();
        // RPC sessions run on upgraded connections of their own.
        let _ = shared.events.send(life::Event::ServerDown);
        while conns.join_next().await.is_some() {}
    }
}

/// Scrypted restarts installed plugins at boot.
fn boot(shared: &Arc<Shared>) {
    let mut guard = shared.lock();
    let st = &mut *guard;
    st.boots += 1;
    users::seed_admin(st, shared.options.admin_username.as_deref());
    let names: Vec<String> = st.db.keys().cloned().collect();
    for name in names {
        let extraction = st.zips.get(&name).map(|z| adm::extract(z));
        if let Some(adm::Extraction::Huge(_)) = extraction {
            st.frozen_until = Some(Instant::now() + shared.options.freeze);
        }
        if let Some(adm::Extraction::Ok { .. }) = extraction {
            life::start(shared, st, &name);
        } else if let Some(rec) = st.db.get_mut(&name) {
            rec.pid = None;
            rec.loaded = false;
        }
    }
}

async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let service = hyper::service::service_fn(move |req| serve_request(shared.clone(), req));
    // An error here is a connection the fake (or the client) cut: nothing to do.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

/// Err: drop the connection without an answer (hyper then closes it).
async fn serve_request(
    shared: Arc<Shared>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>, std::io::Error> {
    let cut = || std::io::Error::other("connection cut by the fake");
    if req
        .headers()
        .get("upgrade")
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"))
        && let Some(host) = rpc::engine_io_host(req.uri().path())
    {
        return rpc::upgrade(shared, req, host).await.ok_or_else(cut);
    }
    let head = Head::of(&req);
    let body = req.into_body();
    let started = Instant::now();
    let (mut record, response, after) = handle(&shared, body, &head).await;
    let Some(response) = response else {
        record.server_micros = started.elapsed().as_micros() as u64;
        shared.lock().requests.push(record);
        return Err(cut());
    };
    delay_answer(&shared, record.route).await;
    record.status = Some(response.status);
    record.server_micros = started.elapsed().as_micros() as u64;
    let down = {
        let mut st = shared.lock();
        st.requests.push(record);
        let mut down = after;
        if let Some((n, d)) = st.faults.down_after_requests.as_mut() {
            *n -= 1;
            if *n == 0 {
                down = Some(*d);
                st.faults.down_after_requests = None;
            }
        }
        down
    };
    if let Some(d) = down {
        // After the answer is on its way, as the real server would go down.
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            shared.go_down(d);
        });
    }
    Ok(response.into_hyper())
}

/// Slow-answer faults, and the freeze after a huge entry.
async fn delay_answer(shared: &Shared, route: Option<Route>) {
    let (slow, frozen_until) = {
        let st = shared.lock();
        let extra = if route == Some(Route::Deploy) {
            st.faults.slow_deploy
        } else {
            Duration::ZERO
        };
        (st.faults.slow + extra, st.frozen_until)
    };
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    if let Some(until) = frozen_until {
        tokio::time::sleep_until(until.into()).await;
    }
}

fn take_fault(list: &mut Vec<Route>, route: Route) -> bool {
    match list.iter().position(|r| *r == route) {
        Some(i) => {
            list.remove(i);
            true
        }
        None => false,
    }
}

/// Returns the record, the answer (None: drop the connection) and an optional
/// restart to perform after answering.
async fn handle(
    shared: &Arc<Shared>,
    body: hyper::body::Incoming,
    head: &Head,
) -> (RequestRecord, Option<Response>, Option<Duration>) {
    let query = head.query_pairs();
    let mut record = RequestRecord::of(head, authorized(shared, head));
    let (route, npm_package) = (record.route, record.npm_package.clone());
    let content_type = record.content_type.clone();

    let reset = route.is_some_and(|r| take_fault(&mut shared.lock().faults.reset_next, r));
    // Express reads (or discards) the body before routing errors are answered; the
    // fake does the same so the connection stays usable.
    let body = match http::read_body(body, head, reset).await {
        Ok(BodyOutcome::Complete(b)) => b,
        Ok(BodyOutcome::CutOff(n)) | Err(http::BodyError::Io(n)) => {
            record.body_len = n;
            return (record, None, None);
        }
    };
    record.body_len = body.len() as u64;
    record.body_md5 = Some(md5_hex(&body));

    if head.path.starts_with("/web/component/") && !record.authorized {
        return (record, Some(Response::text(401, "Not Authorized")), None);
    }
    if let Some(r) = route
        && take_fault(&mut shared.lock().faults.fail_next, r)
    {
        return (
            record,
            Some(Response::text(500, "Internal Server Error")),
            None,
        );
    }
    let response = match route {
        Some(Route::Setup) => setup(
            shared,
            npm_package.as_deref(),
            content_type.as_deref(),
            &body,
        ),
        Some(Route::Deploy) => deploy(
            shared,
            npm_package.as_deref(),
            content_type.as_deref(),
            body,
            query.iter().any(|(k, _)| k == "no-rebind"),
        ),
        // Express's JSON parser leaves the body empty for another content type.
        None if head.method == "POST" && head.path == "/login" => users::login(
            shared,
            if is_json(content_type.as_deref()) {
                &body
            } else {
                b""
            },
        ),
        None => other(shared, head),
    };
    let after = if route == Some(Route::Setup) && response.status == 200 {
        shared.lock().faults.restart_after_setup.take()
    } else {
        None
    };
    (record, Some(response), after)
}

/// The admin token as a bearer header or `scryptedToken` query parameter.
fn authorized(shared: &Shared, head: &Head) -> bool {
    let token = &shared.options.token;
    head.header("authorization")
        .is_some_and(|a| a.strip_prefix("Bearer ") == Some(token.as_str()))
        || head
            .query_pairs()
            .iter()
            .any(|(k, v)| k == "scryptedToken" && v == token)
}

/// The media type of a Content-Type header, without parameters, lowercased.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        let c = media_type(c);
        c == "application/json" || c.ends_with("+json")
    })
}

fn is_raw(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        let c = media_type(c);
        c.starts_with("application/")
            && !is_json(Some(&c))
            && c != "application/x-www-form-urlencoded"
    })
}

fn express_syntax_error(body: &[u8], err: &serde_json::Error) -> Response {
    let preview: String = String::from_utf8_lossy(body).chars().take(40).collect();
    Response::html(
        400,
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>SyntaxError: Unexpected token in JSON at position {} ({preview:?})<br> &nbsp; &nbsp;at JSON.parse (&lt;anonymous&gt;)<br> &nbsp; &nbsp;at parse (body-parser/lib/types/json.js:92:19)</pre>\n</body>\n</html>\n",
            err.column()
        ),
    )
}

fn setup(shared: &Shared, npm: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Response {
    // Non-JSON bodies are not parsed at all and the route sees `{}`.
    let package_json = if is_json(content_type) {
        if body.len() as u64 > JSON_LIMIT {
            return Response::text(413, "request entity too large");
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => v,
            Err(e) => return express_syntax_error(body, &e),
        }
    } else {
        Value::Object(Default::default())
    };
    let Some(npm) = npm else {
        return Response::text(500, "Internal Server Error");
    };
    let mut st = shared.lock();
    let rec = record(&mut st, npm);
    rec.package_json = package_json;
    Response::text(200, "ok")
}

fn deploy(
    shared: &Arc<Shared>,
    npm: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
    no_rebind: bool,
) -> Response {
    let zip = if is_raw(content_type) {
        if body.len() as u64 > RAW_LIMIT {
            return Response::text(413, "request entity too large");
        }
        body
    } else {
        if body.len() as u64 > JSON_LIMIT {
            return Response::text(413, "request entity too large");
        }
        // The route calls `req.body.toString('base64')` on the parser's `{}`.
        b"[object Object]".to_vec()
    };
    let mut guard = shared.lock();
    let st = &mut *guard;
    let Some(npm) = npm.filter(|n| st.db.contains_key(*n)) else {
        return Response::text(500, "npm package not found");
    };
    let npm = npm.to_string();
    let md5 = md5_hex(&zip);
    // The zip is written to the database before anything is checked.
    st.zips.insert(npm.clone(), zip.clone());
    let rec = st.db.get_mut(&npm).expect("checked above");
    rec.zip_md5 = Some(md5.clone());
    rec.deploys += 1;
    if no_rebind {
        return Response::text(200, "ok");
    }
    let pj = &rec.package_json;
    if !pj.get("name").is_some_and(Value::is_string)
        || !pj.get("scrypted").is_some_and(Value::is_object)
    {
        return Response::text(
            500,
            "TypeError: Cannot read properties of undefined (reading 'slice')",
        );
    }
    rec.loaded = false;
    rebind(shared, st, &npm, &zip, &md5)
}

/// Kills the running worker and deletes its files, then extracts the new zip (and
/// only then finds out whether it can) and forks the new worker.
fn rebind(shared: &Arc<Shared>, st: &mut State, npm: &str, zip: &[u8], md5: &str) -> Response {
    life::kill(st, npm);
    let _ = shared.events.send(life::Event::HostChanged(npm.into()));
    let plugin_dir = shared
        .options
        .volume
        .as_ref()
        .map(|v| v.join("plugins").join(npm));
    if let Some(dir) = &plugin_dir {
        let _ = fs::remove_dir_all(dir.join("unzipped"));
        let _ = fs::remove_dir_all(dir.join("zip"));
    }
    if let Some(body) = st.faults.fail_after_kill.take() {
        return Response::text(500, body);
    }
    let extraction = adm::extract(zip);
    if let adm::Extraction::Huge(_) = extraction {
        st.frozen_until = Some(Instant::now() + shared.options.freeze);
        life::refreeze_while_stored(shared, npm, md5);
    }
    if let Some(body) = extraction.error_body() {
        return Response::text(500, body);
    }
    if let Some(dir) = &plugin_dir
        && let Err(e) = write_volume(dir, md5, zip)
    {
        return Response::text(500, format!("Error: {e}"));
    }
    life::start(shared, st, npm);
    if let Some(rec) = st.db.get(npm) {
        let state = life::plugin_state(npm, &rec.package_json);
        let _ = shared
            .events
            .send(life::Event::Device(rec.id.clone(), Some(state)));
    }
    Response::text(200, "ok")
}

pub(crate) fn write_volume(dir: &Path, md5: &str, zip: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir.join("zip"))?;
    fs::write(dir.join("zip").join(format!("1-{md5}.zip")), zip)?;
    let unzipped = dir.join("unzipped");
    fs::create_dir_all(&unzipped)?;
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(std::io::Error::other)?;
    if let Ok(mut main) = archive.by_name("main.nodejs.js") {
        let mut text = Vec::new();
        main.read_to_end(&mut text)?;
        fs::write(unzipped.join("main.nodejs.js"), text)?;
    }
    Ok(())
}

fn other(shared: &Shared, head: &Head) -> Response {
    if let Some(host) = rpc::engine_io_host(&head.path) {
        return rpc::polling(shared, &host);
    }
    if let Some(rest) = head.path.strip_prefix("/endpoint/") {
        let mut parts = rest.split('/');
        let first = parts.next().unwrap_or("");
        let name = if first.starts_with('@') {
            format!("{first}/{}", parts.next().unwrap_or(""))
        } else {
            first.to_string()
        };
        let st = shared.lock();
        return match st.db.get(&name) {
            // Only a plugin with an HTTP handler answers; any other answers exactly
            // like a missing one (docs/scrypted-api.md §6).
            Some(rec) if rec.zip_md5.is_some() && has_http_handler(&rec.package_json) => {
                Response::text(200, format!("{name} endpoint"))
            }
            _ => Response::text(404, endpoint_not_found_body(&name)),
        };
    }
    if head.method == "GET" && head.path == "/login" {
        return Response::json(
            200,
            "{\"error\":\"Not logged in.\",\"hasLogin\":true}".into(),
        );
    }
    if shared.options.control_endpoint && head.method == "GET" && head.path == "/__fake/requests" {
        let st = shared.lock();
        return Response::json(
            200,
            serde_json::to_string(&st.requests).unwrap_or_else(|_| "[]".into()),
        );
    }
    Response::html(
        404,
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {} {}</pre>\n</body>\n</html>\n",
            head.method, head.path
        ),
    )
}

fn has_http_handler(package_json: &Value) -> bool {
    package_json
        .pointer("/scrypted/interfaces")
        .and_then(Value::as_array)
        .is_some_and(|i| i.iter().any(|x| x == "HttpRequestHandler"))
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
