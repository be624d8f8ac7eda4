//! engine.io v4 over a WebSocket and the RpcPeer messages on top, exactly the subset
//! of `docs/scrypted-api.md` §8-9: the `getRemote` handshake, `apply` / `result`
//! (errors included), proxies, pings, and the system state the server pushes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = tokio::sync::Mutex<SplitSink<Ws, Message>>;
type Pending = HashMap<String, oneshot::Sender<Result<Value, RpcError>>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// engine.io sends each message in one WebSocket frame. tungstenite's default frame
/// limit (16 MiB) closed the session on a real Logger's answer; the calls made here
/// answer far less (one plugin's log), and this bound keeps a hostile answer from
/// taking unbounded memory (`docs/scrypted-api.md` §9).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// At most this many devices are mirrored from the pushed system state: a real
/// installation has hundreds; a stream of updates for ever new ids must not grow
/// the mirror without end.
pub const MAX_DEVICES: usize = 10_000;
/// Mirrored strings (plugin names, versions) are cut to this length.
const MAX_STRING: usize = 256;
/// Our side's proxy ids, as the server will address them.
const OUR_GET_REMOTE: &str = "sideloadd-getRemote";
const OUR_REMOTE: &str = "sideloadd-remote";

#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    #[error("{0}")]
    Connect(String),
    #[error("host plugin {host} is not alive (polling handshake answered {answer})")]
    HostNotAlive { host: String, answer: String },
    #[error("the RPC connection closed")]
    Closed,
    #[error("no answer to {0} in time")]
    Timeout(String),
    #[error("Scrypted threw: {0}")]
    Remote(String),
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// What every side of the session shares.
#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Device id -> `{property: {"value": ...}}`.
    state: Mutex<Map<String, Value>>,
    closed: std::sync::atomic::AtomicBool,
    /// A call went unanswered: the session is given up (see [`Peer::call`]).
    stalled: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One RPC session with Scrypted, hosted on one plugin.
#[derive(Debug)]
pub struct Peer {
    sink: Arc<Sink>,
    shared: Arc<Shared>,
    api: String,
    next: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn engine_io_url(base: &Url, host: &str, transport: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("/endpoint/{host}/engine.io/api/"));
    url.query_pairs_mut()
        .append_pair("EIO", "4")
        .append_pair("transport", transport);
    url
}

/// The harmless check that `host` is installed and its process is up. Only after
/// it may a WebSocket be opened: an upgrade for a missing plugin kills the server.
pub async fn host_alive(
    http: &reqwest::Client,
    base: &Url,
    auth: &str,
    host: &str,
) -> Result<(), RpcError> {
    let url = engine_io_url(base, host, "polling");
    let res = http
        .get(url)
        .header("authorization", auth)
        .timeout(CONNECT_TIMEOUT)
        .send()
        .await
        .map_err(|e| RpcError::Connect(e.to_string()))?;
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    if status.is_success() && body.starts_with("0{") {
        return Ok(());
    }
    Err(RpcError::HostNotAlive {
        host: host.into(),
        answer: status.to_string(),
    })
}

impl Peer {
    /// Opens the WebSocket (the caller checked [`host_alive`]) and does the handshake.
    pub async fn connect(base: &Url, auth: &str, host: &str) -> Result<Self, RpcError> {
        let mut url = engine_io_url(base, host, "websocket");
        let scheme = if base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        url.set_scheme(scheme)
            .map_err(|()| RpcError::Connect("bad URL".into()))?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| RpcError::Connect(e.to_string()))?;
        let mut value: tokio_tungstenite::tungstenite::http::HeaderValue = auth
            .parse()
            .map_err(|_| RpcError::Connect("token is not a header value".into()))?;
        value.set_sensitive(true);
        request.headers_mut().insert("authorization", value);
        let limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(limits), false);
        let (ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| RpcError::Timeout("the WebSocket connection".into()))?
            .map_err(|e| RpcError::Connect(e.to_string()))?;
        let (mut sink, mut stream) = ws.split();
        let api = tokio::time::timeout(CONNECT_TIMEOUT, handshake(&mut sink, &mut stream))
            .await
            .map_err(|_| RpcError::Timeout("the RPC handshake".into()))??;
        let shared = Arc::new(Shared::default());
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let (peer_shared, pong_sink) = (shared.clone(), sink.clone());
        let reader = tokio::spawn(async move {
            read_loop(stream, &peer_shared, &pong_sink).await;
            peer_shared.closed.store(true, Ordering::Relaxed);
            for (_, tx) in lock(&peer_shared.pending).drain() {
                let _ = tx.send(Err(RpcError::Closed));
            }
        });
        Ok(Self {
            sink,
            shared,
            api,
            next: AtomicU64::new(0),
            reader,
        })
    }

    pub fn api(&self) -> &str {
        &self.api
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Whether a call went unanswered in time (the session is then closed).
    pub fn is_stalled(&self) -> bool {
        self.shared.stalled.load(Ordering::Relaxed)
    }

    async fn send(&self, frame: String) -> Result<(), RpcError> {
        self.sink
            .lock()
            .await
            .send(Message::text(frame))
            .await
            .map_err(|_| RpcError::Closed)
    }

    /// `apply` on a proxy; the decoded result (`Null` for `undefined`).
    pub async fn call(&self, proxy: &str, method: &str, args: Value) -> Result<Value, RpcError> {
        if self.is_closed() {
            return Err(RpcError::Closed);
        }
        let id = format!("s{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(id.clone(), tx);
        let msg =
            json!({"type": "apply", "id": id, "proxyId": proxy, "method": method, "args": args});
        self.send(format!("4{msg}")).await?;
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RpcError::Closed),
            Err(_) => {
                // A server that leaves one call unanswered leaves the next ones too:
                // waiting for each would make a run take minutes.
                lock(&self.shared.pending).remove(&id);
                self.shared.stalled.store(true, Ordering::Relaxed);
                self.shared.closed.store(true, Ordering::Relaxed);
                Err(RpcError::Timeout(format!("{proxy}.{method}")))
            }
        }
    }

    /// The pushed system state: device id -> properties.
    pub fn system_state(&self) -> Map<String, Value> {
        lock(&self.shared.state).clone()
    }
}

/// Proxy id of a value that is a remote object.
pub fn proxy_id(v: &Value) -> Option<&str> {
    v.get("__remote_proxy_id").and_then(Value::as_str)
}

fn our_proxy(id: &str, oneway: &[&str]) -> Value {
    json!({"__remote_proxy_id": id, "__remote_proxy_finalizer_id": id,
           "__remote_constructor_name": "Object", "__remote_proxy_oneway_methods": oneway})
}

async fn next_text(stream: &mut SplitStream<Ws>) -> Result<String, RpcError> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Close(_))) | None => return Err(RpcError::Closed),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(RpcError::Connect(e.to_string())),
        }
    }
}

/// Server first: open, then `param getRemote`, then a call of our getRemote with
/// the API proxy. Returns the API's proxy id.
async fn handshake(
    sink: &mut SplitSink<Ws, Message>,
    stream: &mut SplitStream<Ws>,
) -> Result<String, RpcError> {
    loop {
        let text = next_text(stream).await?;
        if text == "2" {
            sink.send(Message::text("3"))
                .await
                .map_err(|_| RpcError::Closed)?;
            continue;
        }
        let Some(msg) = text
            .strip_prefix('4')
            .and_then(|j| serde_json::from_str::<Value>(j).ok())
        else {
            continue; // open packet, noop
        };
        let id = msg["id"].clone();
        match (
            msg["type"].as_str(),
            msg["param"].as_str(),
            msg["proxyId"].as_str(),
        ) {
            (Some("param"), Some("getRemote"), _) => {
                let result = json!({"__remote_proxy_id": OUR_GET_REMOTE, "__remote_proxy_finalizer_id": OUR_GET_REMOTE, "__remote_constructor_name": "AsyncFunction"});
                let reply = json!({"type": "result", "id": id, "result": result});
                sink.send(Message::text(format!("4{reply}")))
                    .await
                    .map_err(|_| RpcError::Closed)?;
            }
            (Some("apply"), _, Some(OUR_GET_REMOTE)) => {
                let api = proxy_id(&msg["args"][0])
                    .ok_or_else(|| RpcError::Protocol("getRemote without an API proxy".into()))?
                    .to_string();
                let oneway = [
                    "notify",
                    "updateDeviceState",
                    "setSystemState",
                    "ioEvent",
                    "setNativeId",
                ];
                let reply =
                    json!({"type": "result", "id": id, "result": our_proxy(OUR_REMOTE, &oneway)});
                sink.send(Message::text(format!("4{reply}")))
                    .await
                    .map_err(|_| RpcError::Closed)?;
                return Ok(api);
            }
            _ => {}
        }
    }
}

async fn read_loop(mut stream: SplitStream<Ws>, shared: &Shared, sink: &Sink) {
    while let Ok(text) = next_text(&mut stream).await {
        match text.as_bytes().first() {
            // The server closes a session whose pings go unanswered.
            Some(b'2') if sink.lock().await.send(Message::text("3")).await.is_err() => return,
            Some(b'1') => return,
            Some(b'4') => {
                if let Ok(msg) = serde_json::from_str::<Value>(&text[1..]) {
                    on_message(shared, msg);
                }
            }
            _ => {}
        }
    }
}

fn on_message(shared: &Shared, msg: Value) {
    match msg["type"].as_str() {
        Some("result") => {
            let Some(id) = msg["id"].as_str() else { return };
            let Some(tx) = lock(&shared.pending).remove(id) else {
                return;
            };
            let result = decode(msg.get("result").cloned().unwrap_or(Value::Null));
            let _ = tx.send(if msg["throw"].as_bool() == Some(true) {
                Err(RpcError::Remote(error_message(&result)))
            } else {
                Ok(result)
            });
        }
        Some("apply") if msg["proxyId"] == OUR_REMOTE => on_state(shared, &msg),
        _ => {}
    }
}

/// `setSystemState`, `updateDeviceState` and `notify`, kept as a mirror of only
/// what sideloadd reads (see [`slim`]), for at most [`MAX_DEVICES`] devices.
fn on_state(shared: &Shared, msg: &Value) {
    let args = &msg["args"];
    let mut state = lock(&shared.state);
    match msg["method"].as_str() {
        Some("setSystemState") => {
            if let Some(all) = decode(args[0].clone()).as_object() {
                *state = all
                    .iter()
                    .filter_map(|(id, d)| Some((id.clone(), slim(d)?)))
                    .take(MAX_DEVICES)
                    .collect();
            }
        }
        Some("updateDeviceState") => {
            let Some(id) = args[0].as_str() else { return };
            match slim(&decode(args[1].clone())) {
                None => {
                    state.remove(id);
                }
                Some(v) if state.contains_key(id) || state.len() < MAX_DEVICES => {
                    state.insert(id.into(), v);
                }
                Some(_) => {}
            }
        }
        Some("notify") => {
            let (Some(id), Some("on")) = (args[0].as_str(), args[1]["property"].as_str()) else {
                return;
            };
            let on = decode(args[2].clone())["value"].as_bool();
            if !state.contains_key(id) && state.len() >= MAX_DEVICES {
                return;
            }
            let device = state.entry(id).or_insert_with(|| json!({}));
            if let (Some(d), Some(on)) = (device.as_object_mut(), on) {
                d.insert("on".into(), json!({ "value": on }));
            }
        }
        _ => {}
    }
}

/// What sideloadd reads of a device: whether it is a plugin, the plugin's npm name
/// and version, and `on` (core's auto-update automation). None: nothing of it.
pub fn slim(device: &Value) -> Option<Value> {
    let cut = |v: &Value| {
        v.as_str()
            .map(|s| s.chars().take(MAX_STRING).collect::<String>())
    };
    let plugin = device["interfaces"]["value"]
        .as_array()
        .is_some_and(|i| i.iter().any(|x| x == "ScryptedPlugin"));
    let on = device["on"]["value"].as_bool();
    let mut out = Map::new();
    if plugin {
        let info = &device["info"]["value"];
        out.insert("interfaces".into(), json!({"value": ["ScryptedPlugin"]}));
        out.insert(
            "info".into(),
            json!({"value": {"manufacturer": cut(&info["manufacturer"]), "version": cut(&info["version"])}}),
        );
    }
    if let Some(on) = on {
        out.insert("on".into(), json!({ "value": on }));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Unwraps `__json_copy_serialize_children`, at any depth.
pub fn decode(v: Value) -> Value {
    match v {
        Value::Object(mut o) => {
            if let Some(inner) = o.remove("__json_copy_serialize_children") {
                return decode(inner);
            }
            Value::Object(o.into_iter().map(|(k, v)| (k, decode(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(decode).collect()),
        v => v,
    }
}

fn error_message(v: &Value) -> String {
    let s = &v["__serialized_value"];
    match (s["name"].as_str(), s["message"].as_str()) {
        (Some(n), Some(m)) => format!("{n}: {m}"),
        (_, Some(m)) => m.into(),
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, state: Value) -> Value {
        json!({"type": "apply", "proxyId": OUR_REMOTE, "method": "updateDeviceState",
               "oneway": true, "args": [id, state]})
    }

    #[test]
    fn a_hostile_stream_of_device_updates_is_mirrored_within_bounds() {
        let shared = Shared::default();
        let plugin = json!({
            "interfaces": {"value": ["ScryptedPlugin", "Settings"]},
            "info": {"value": {"manufacturer": "@scrypted/x", "version": "1.0.0", "serialNumber": "s"}},
            "junk": {"value": "z".repeat(10_000)},
        });
        on_message(&shared, update("plugin", plugin));
        let junk = "y".repeat(10_000);
        for i in 0..(MAX_DEVICES * 3) {
            let state =
                json!({"junk": {"value": junk}, "on": {"value": true}, "name": {"value": i}});
            on_message(&shared, update(&format!("flood-{i}"), state));
            let notify = json!({"type": "apply", "proxyId": OUR_REMOTE, "method": "notify", "oneway": true,
                                "args": [format!("other-{i}"), {"property": "on"}, {"value": false}]});
            on_message(&shared, notify);
        }
        let state = lock(&shared.state);
        assert!(
            state.len() <= MAX_DEVICES,
            "{} devices mirrored",
            state.len()
        );
        let bytes: usize = state.values().map(|v| v.to_string().len()).sum();
        assert!(bytes < 100 * MAX_DEVICES, "{bytes} bytes mirrored");
        // What sideloadd reads is kept.
        assert_eq!(state["plugin"]["info"]["value"]["version"], "1.0.0");
        assert_eq!(state["plugin"]["interfaces"]["value"][0], "ScryptedPlugin");
        assert!(state["plugin"].get("junk").is_none());
    }
}
