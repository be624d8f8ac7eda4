//! A fake npm registry on 127.0.0.1 with scripted faults.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Reply {
    Ok(Vec<u8>),
    Status {
        code: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Accept the request and never answer (until the test process ends).
    Hang,
    /// Promise the whole body, send half of it, hang up.
    Truncated(Vec<u8>),
    /// Send the body one byte per interval: never idle long enough for a
    /// read timeout.
    Trickle(Vec<u8>, Duration),
}

impl Reply {
    pub fn json(v: &serde_json::Value) -> Self {
        Self::Ok(serde_json::to_vec(v).expect("json"))
    }

    pub fn status(code: u16) -> Self {
        Self::Status {
            code,
            headers: vec![],
            body: b"{\"error\":\"nope\"}".to_vec(),
        }
    }

    pub fn too_many(retry_after: &str) -> Self {
        Self::Status {
            code: 429,
            headers: vec![("Retry-After".into(), retry_after.into())],
            body: vec![],
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Replies used once each, in order, before the route's steady reply.
    scripts: HashMap<String, VecDeque<Reply>>,
    routes: HashMap<String, Reply>,
    /// Replies chosen by the request's Accept header, before `routes`.
    by_accept: HashMap<(String, String), Reply>,
    hits: HashMap<String, usize>,
    /// Hits per (path, Accept header).
    accept_hits: HashMap<(String, String), usize>,
    authorizations: Vec<String>,
    /// Added to every request, to make runs long enough to interrupt.
    delay: Duration,
    active: usize,
    max_active: usize,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Server {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Self { url, state }
    }

    /// Serves every file under `dir` at its relative path, like the snapshot.
    pub fn with_dir(dir: &Path) -> Self {
        let server = Self::start();
        for entry in walk(dir) {
            let rel = entry
                .strip_prefix(dir)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            server.set(
                &format!("/{rel}"),
                Reply::Ok(std::fs::read(&entry).expect("read fixture")),
            );
        }
        server
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.lock().routes.insert(path.to_owned(), reply);
    }

    /// The reply to requests for `path` whose Accept header is `accept`.
    pub fn set_for_accept(&self, path: &str, accept: &str, reply: Reply) {
        self.lock()
            .by_accept
            .insert((path.to_owned(), accept.to_owned()), reply);
    }

    /// Requests for `path` with this Accept header (`""`: none).
    pub fn accept_hits(&self, path: &str, accept: &str) -> usize {
        let key = (path.to_owned(), accept.to_owned());
        self.lock().accept_hits.get(&key).copied().unwrap_or(0)
    }

    pub fn remove(&self, path: &str) {
        self.lock().routes.remove(path);
    }

    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.lock().scripts.insert(path.to_owned(), replies.into());
    }

    pub fn set_delay(&self, d: Duration) {
        self.lock().delay = d;
    }

    pub fn hits(&self, path: &str) -> usize {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    pub fn all_hits(&self) -> HashMap<String, usize> {
        self.lock().hits.clone()
    }

    pub fn reset_max_in_flight(&self) {
        self.lock().max_active = 0;
    }

    /// The most requests seen in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_active
    }

    pub fn authorizations(&self) -> Vec<String> {
        self.lock().authorizations.clone()
    }

    /// A plugin's `/latest` document.
    pub fn latest(&self, name: &str, doc: &serde_json::Value) {
        self.set(&format!("/@scrypted/{name}/latest"), Reply::json(doc));
    }

    /// Replaces the search result with these package names.
    pub fn search(&self, names: &[&str]) {
        let objects: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"package": {"name": n}}))
            .collect();
        let total = objects.len();
        self.set(
            "/-/v1/search",
            Reply::json(&serde_json::json!({"objects": objects, "total": total})),
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

fn serve(conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut auth = None;
    let mut accept = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("authorization")
                {
                    auth = Some(v.trim().to_owned());
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("accept")
                {
                    accept = v.trim().to_owned();
                }
            }
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let path = target.split('?').next().unwrap_or("/").to_owned();
    let (reply, delay) = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        *s.hits.entry(path.clone()).or_default() += 1;
        let key = (path.clone(), accept);
        *s.accept_hits.entry(key.clone()).or_default() += 1;
        if let Some(a) = auth {
            s.authorizations.push(a);
        }
        s.active += 1;
        s.max_active = s.max_active.max(s.active);
        let scripted = s.scripts.get_mut(&path).and_then(VecDeque::pop_front);
        let routed = s
            .by_accept
            .get(&key)
            .or_else(|| s.routes.get(&path))
            .cloned();
        (scripted.or(routed), s.delay)
    };
    std::thread::sleep(delay);
    // Counted as done before the answer leaves, so a client that sends its
    // next request on receipt is never seen overlapping with this one.
    state.lock().unwrap_or_else(|e| e.into_inner()).active -= 1;
    respond(conn, reply.unwrap_or_else(|| Reply::status(404)));
}

fn respond(mut conn: TcpStream, reply: Reply) {
    let (code, headers, body) = match reply {
        Reply::Ok(body) => (200, vec![], body),
        Reply::Status {
            code,
            headers,
            body,
        } => (code, headers, body),
        Reply::Hang => {
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
        Reply::Trickle(body, every) => {
            let head = format!(
                "HTTP/1.1 200 X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if conn.write_all(head.as_bytes()).is_err() {
                return;
            }
            for b in body {
                std::thread::sleep(every);
                if conn.write_all(&[b]).and_then(|()| conn.flush()).is_err() {
                    return;
                }
            }
            return;
        }
        Reply::Truncated(body) => {
            let head = format!(
                "HTTP/1.1 200 X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn
                .write_all(head.as_bytes())
                .and_then(|()| conn.write_all(&body[..body.len() / 2]));
            return;
        }
    };
    let mut head = format!(
        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn
        .write_all(head.as_bytes())
        .and_then(|()| conn.write_all(&body));
}
