//! The RPC endpoint (`docs/scrypted-api.md` §8-9): engine.io v4 over a WebSocket,
//! RpcPeer messages, the calls sideloadd makes. A WebSocket upgrade for a plugin
//! that is not installed kills the server, as it does the real one.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::http::{self, Head};
use crate::life::{self, Event};
use crate::routes::authorized;
use crate::state::Shared;

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

const OPEN: &str = r#"0{"sid":"fake-sid","upgrades":[],"pingInterval":25000,"pingTimeout":120000,"maxPayload":1000000}"#;

/// The host plugin named by an engine.io path, if it is one.
pub fn engine_io_host(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/endpoint/")?;
    let (scope, rest) = rest.split_once('/')?;
    let (name, rest) = rest.split_once('/')?;
    (scope.starts_with('@') && rest.starts_with("engine.io/api")).then(|| format!("{scope}/{name}"))
}

/// Host state: `Err(status)` when it cannot host a session.
fn host_status(shared: &Shared, host: &str) -> Result<(), u16> {
    match shared.lock().db.get(host) {
        None => Err(404),
        Some(r) if r.pid.is_none() => Err(503),
        Some(_) => Ok(()),
    }
}

/// `transport=polling`: harmless, answers the open packet for a live host.
pub fn polling(shared: &Shared, host: &str) -> http::Response {
    match host_status(shared, host) {
        Ok(()) => http::Response::text(200, OPEN),
        Err(404) => http::Response::text(404, ""),
        Err(s) => http::Response::text(s, "Service Unavailable"),
    }
}

/// `transport=websocket`: answers 101 and runs the session on the upgraded
/// connection. None (no answer at all): the host is missing, and the upgrade took
/// the whole server down, before any authentication, as it does the real one.
pub async fn upgrade(
    shared: Arc<Shared>,
    mut req: hyper::Request<Incoming>,
    host: String,
) -> Option<hyper::Response<Full<Bytes>>> {
    if !shared.lock().db.contains_key(&host) {
        shared.lock().crashed_by_websocket = true;
        shared.go_down(std::time::Duration::from_secs(24 * 3600));
        return None;
    }
    let head = Head::of(&req);
    let status = if authorized(&shared, &head) {
        host_status(&shared, &host)
    } else {
        Err(401)
    };
    if let Err(s) = status {
        return Some(http::Response::text(s, "").into_hyper());
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let io = TokioIo::new(upgraded);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            session(shared, ws, host).await;
        }
    });
    let key = head.header("sec-websocket-key").unwrap_or("");
    let mut r = hyper::Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("upgrade", HeaderValue::from_static("websocket"));
    h.insert("connection", HeaderValue::from_static("Upgrade"));
    let accept = derive_accept_key(key.as_bytes());
    h.insert("sec-websocket-accept", HeaderValue::from_str(&accept).ok()?);
    Some(r)
}

fn proxy(id: &str) -> Value {
    json!({"__remote_proxy_id": id, "__remote_proxy_finalizer_id": id,
           "__remote_constructor_name": "Object", "__remote_proxy_oneway_methods": []})
}

async fn send(ws: &mut Ws, v: &Value) -> bool {
    ws.send(Message::text(format!("4{v}"))).await.is_ok()
}

async fn session(shared: Arc<Shared>, mut ws: Ws, host: String) {
    let mut events = shared.events.subscribe();
    // Open, a ping (which must be answered), then ask for the client's getRemote.
    for frame in [OPEN.to_string(), "2".into()] {
        if ws.send(Message::text(frame)).await.is_err() {
            return;
        }
    }
    let ask = json!({"type": "param", "id": "A", "param": "getRemote"});
    if !send(&mut ws, &ask).await {
        return;
    }
    let mut remote: Option<String> = None;
    loop {
        tokio::select! {
            frame = ws.next() => {
                let Some(Ok(Message::Text(text))) = frame else { return };
                if !on_frame(&shared, &mut ws, &text, &mut remote).await {
                    return;
                }
            }
            ev = events.recv() => match ev {
                Ok(Event::HostChanged(name)) if name == host => return,
                Ok(Event::ServerDown) => return,
                Ok(Event::Device(id, state)) => {
                    if let Some(r) = &remote {
                        let m = json!({"type": "apply", "proxyId": r, "method": "updateDeviceState", "oneway": true, "args": [id, state]});
                        if !send(&mut ws, &m).await { return; }
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            },
        }
    }
}

/// One frame from the client; false ends the session.
async fn on_frame(
    shared: &Arc<Shared>,
    ws: &mut Ws,
    text: &str,
    remote: &mut Option<String>,
) -> bool {
    if text == "3" {
        shared.lock().pongs += 1;
        return true;
    }
    let Some(msg) = text
        .strip_prefix('4')
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
    else {
        return text != "1";
    };
    let proxy_id = |v: &Value| {
        v.pointer("/result/__remote_proxy_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match (msg["type"].as_str(), msg["id"].as_str()) {
        (Some("result"), Some("A")) => {
            let Some(g) = proxy_id(&msg) else {
                return false;
            };
            let m = json!({"type": "apply", "id": "B", "proxyId": g, "method": null,
                           "args": [proxy("API"), null, {"serverVersion": "0.144.2"}]});
            send(ws, &m).await
        }
        (Some("result"), Some("B")) => {
            let Some(r) = proxy_id(&msg) else {
                return false;
            };
            let state = life::system_state(&shared.lock());
            let m = json!({"type": "apply", "proxyId": r, "method": "setSystemState", "oneway": true, "args": [state]});
            *remote = Some(r);
            send(ws, &m).await
        }
        (Some("apply"), _) if shared.lock().rpc_stalled => true,
        (Some("apply"), id) => {
            let result = dispatch(shared, &msg);
            let Some(id) = id else { return true };
            let reply = match result {
                Ok(Value::Null) => json!({"type": "result", "id": id}),
                Ok(v) => json!({"type": "result", "id": id, "result": v}),
                Err(message) => json!({"type": "result", "id": id, "throw": true, "result": {
                    "__remote_constructor_name": "RPCResultError",
                    "__serialized_value": {"name": "Error", "message": message, "stack": ""}}}),
            };
            send(ws, &reply).await
        }
        _ => true,
    }
}

/// The Logger a proxy stands for, by its path: the root `logger` component is "",
/// `getLogger("device", ..)` on it gives "/device", and so on (server/src/logger.ts).
fn logger_path(proxy: &str) -> Option<String> {
    match proxy {
        "logger" => Some(String::new()),
        p => p.strip_prefix("logger:").map(str::to_string),
    }
}

fn arg(msg: &Value, i: usize) -> &str {
    msg["args"][i].as_str().unwrap_or("")
}

/// The calls of `docs/scrypted-api.md` §9. Null: `undefined`.
fn dispatch(shared: &Arc<Shared>, msg: &Value) -> Result<Value, String> {
    let target = msg["proxyId"].as_str().unwrap_or("");
    let method = msg["method"].as_str().unwrap_or("");
    match (target, method) {
        ("API", "getComponent") => match arg(msg, 0) {
            c @ ("plugins" | "logger" | "users") => Ok(proxy(c)),
            c => Err(format!("unknown component {c}")),
        },
        ("API", "getDeviceById") => Ok(proxy(&format!("device:{}", arg(msg, 0)))),
        ("API", "removeDevice") => life::remove_device(shared, arg(msg, 0))
            .then_some(Value::Null)
            .ok_or_else(|| "device not found".into()),
        ("plugins", "getIdForPluginId") => Ok(shared
            .lock()
            .db
            .get(arg(msg, 0))
            .map_or(Value::Null, |r| json!(r.id))),
        ("plugins", "getPluginInfo") => {
            let st = shared.lock();
            let rec = st.db.get(arg(msg, 0)).ok_or("plugin not found")?;
            Ok(json!({"id": rec.id, "pid": rec.pid, "packageJson": rec.package_json}))
        }
        ("plugins", "getIdForNativeId") => {
            let st = shared.lock();
            let found = (arg(msg, 0) == life::CORE && arg(msg, 1) == life::AUTOMATION_NATIVE_ID)
                .then(|| st.automation.as_ref().map(|a| json!(a.id)))
                .flatten();
            Ok(found.unwrap_or(Value::Null))
        }
        ("users", method) => crate::users::dispatch(shared, method, &msg["args"]),
        (logger, "getLogger") if logger_path(logger).is_some() => {
            let base = logger_path(logger).unwrap_or_default();
            Ok(proxy(&format!("logger:{base}/{}", arg(msg, 0))))
        }
        (logger, "getLogs") if logger_path(logger).is_some() => {
            let base = logger_path(logger).unwrap_or_default();
            let st = shared.lock();
            let within = |p: &str| {
                base.is_empty()
                    || p == base
                    || p.strip_prefix(base.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            };
            Ok(json!(
                st.logs
                    .iter()
                    .filter(|e| within(&e.path))
                    .collect::<Vec<_>>()
            ))
        }
        (device, "turnOff") if device.starts_with("device:") && shared.lock().turn_off_fails => {
            Err("turnOff failed (fault injected by the test)".into())
        }
        (device, "turnOff") if device.starts_with("device:") => {
            life::turn_off(shared, &device["device:".len()..])
                .then_some(Value::Null)
                .ok_or_else(|| "device has no OnOff".into())
        }
        _ => Err(format!("{target}.{method} is not supported by the fake")),
    }
}
