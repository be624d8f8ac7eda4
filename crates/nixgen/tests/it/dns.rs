//! Host name lookups against a DNS stand-in on loopback that drops answers:
//! a run at `--jobs 64` asks for the registry's address once, not once per
//! connection, and finishes although the stand-in drops every second query
//! (the first one included).

use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{names, new_root, nixgen, nixgen_env, plugin_doc, small_registry};

/// A UDP DNS server on 127.0.0.1 that answers A queries for one name with
/// 127.0.0.1 (anything else: no records), dropping the first query and
/// every second one after it.
struct StandIn {
    port: u16,
    /// Every query received: (name, type).
    queries: Arc<Mutex<Vec<(String, u16)>>>,
}

impl StandIn {
    fn start(host: &'static str) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("addr").port();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let seen = queries.clone();
        let count = AtomicUsize::new(0);
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let Some((name, qtype, end)) = question(&buf[..n]) else {
                    continue;
                };
                seen.lock().expect("lock").push((name.clone(), qtype));
                if count.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                    continue; // dropped
                }
                let answer =
                    (qtype == 1 && name.eq_ignore_ascii_case(host)).then_some([127, 0, 0, 1]);
                let _ = socket.send_to(&reply(&buf[..end], answer), from);
            }
        });
        Self { port, queries }
    }

    fn queries_for(&self, host: &str) -> usize {
        let q = self.queries.lock().expect("lock");
        q.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(host))
            .count()
    }
}

/// The question's name (without the root dot), type, and where it ends.
fn question(msg: &[u8]) -> Option<(String, u16, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*msg.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(at..at + len)?).into_owned());
        at += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    Some((labels.join("."), qtype, at + 4))
}

/// A response to `query` (header and question) with at most one A record.
fn reply(query: &[u8], a: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = query.to_vec();
    out[2] = 0x81; // response, recursion desired
    out[3] = 0x80; // recursion available, no error
    out[6..8].copy_from_slice(&u16::from(a.is_some()).to_be_bytes()); // answers
    out[8..12].fill(0); // no authority or additional records
    if let Some(ip) = a {
        // Name by pointer to the question, type A, class IN, TTL 60, 4 bytes.
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend_from_slice(&ip);
    }
    out
}

#[test]
fn one_lookup_per_host_whatever_the_jobs() {
    let host = "registry.nixgen.test";
    let dns = StandIn::start(host);
    let plugins: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = plugins.iter().map(String::as_str).collect();
    let server = small_registry(&refs);
    // Slow answers keep many requests in flight at once: each opens its own
    // connection, and each connection used to look the host up.
    server.set_delay(Duration::from_millis(50));
    let port = server.url.rsplit(':').next().expect("port").to_owned();
    let registry = format!("http://{host}:{port}");
    let dns_server = format!("127.0.0.1:{}", dns.port);
    // A populated tree: the known plugins are fetched at once, with the
    // search, so the first connections all start before any answer.
    let root = new_root();
    let first = nixgen(root.path(), &server.url, &["--metadata-only"]);
    assert_eq!(first.code, 0, "{first:?}");
    for p in &refs {
        server.latest(p, &plugin_doc(p, "1.1.0"));
    }
    server.reset_max_in_flight();
    let out = nixgen_env(
        root.path(),
        &registry,
        &["--json", "--jobs", "64", "--metadata-only"],
        &[("NIXGEN_DNS_SERVER", dns_server.as_str())],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(names(&out.json(), "updated").len(), 40);
    assert!(
        server.max_in_flight() > 8,
        "not enough in flight to tell: {}",
        server.max_in_flight()
    );
    // The first query is dropped and asked again once; its answer serves
    // every connection.
    assert_eq!(dns.queries_for(host), 2, "{:?}", dns.queries.lock());
}
