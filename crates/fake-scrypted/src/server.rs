//! The listener and its supervisor: binding, restarts, one connection at a time
//! through hyper, and the answer delays and one-off faults around every route.

use crate::http::Head;
use crate::{
    adm, life, records::Route, routes::authorized, routes::handle, rpc, state::Control,
    state::Shared, users,
};
use std::fs;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
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

pub(crate) async fn supervise(shared: Arc<Shared>, mut control: mpsc::UnboundedReceiver<Control>) {
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
pub(crate) fn boot(shared: &Arc<Shared>) {
    let mut guard = shared.lock();
    let st = &mut *guard;
    st.boots += 1;
    if let Some(volume) = &shared.options.volume {
        // The real volume holds its LevelDB directory (docs/scrypted-api.md §1).
        let _ = fs::create_dir_all(volume.join("scrypted.db"));
    }
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

pub(crate) async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let service = hyper::service::service_fn(move |req| serve_request(shared.clone(), req));
    // An error here is a connection the fake (or the client) cut: nothing to do.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

/// Err: drop the connection without an answer (hyper then closes it).
pub(crate) async fn serve_request(
    shared: Arc<Shared>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>, std::io::Error> {
    let cut = || std::io::Error::other("connection cut by the fake");
    note_core_install(&shared, &Head::of(&req));
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

/// The real server answers an authorized request under `/endpoint/@scrypted/core/`
/// on a server without core by installing npm's latest core (server/src/runtime.ts,
/// `getPluginForEndpoint`); the fake counts it instead.
pub(crate) fn note_core_install(shared: &Shared, head: &Head) {
    let core = head.path == "/endpoint/@scrypted/core"
        || head.path.starts_with("/endpoint/@scrypted/core/");
    if core && authorized(shared, head) {
        let mut st = shared.lock();
        if !st.db.contains_key(life::CORE) {
            st.core_installs += 1;
        }
    }
}

/// Slow-answer faults, and the freeze after a huge entry.
pub(crate) async fn delay_answer(shared: &Shared, route: Option<Route>) {
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

pub(crate) fn take_fault(list: &mut Vec<Route>, route: Route) -> bool {
    match list.iter().position(|r| *r == route) {
        Some(i) => {
            list.remove(i);
            true
        }
        None => false,
    }
}
