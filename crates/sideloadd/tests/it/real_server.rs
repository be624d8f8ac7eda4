//! The real-server tier: the real sideloadd against a REAL Scrypted server, when one
//! is given; every test here passes with a `skipped:` line when none is.
//!
//! - `SCRYPTED_SERVER`: base URL of a running Scrypted on loopback, e.g.
//!   `http://127.0.0.1:40000` (its plain-HTTP port, `SCRYPTED_INSECURE_PORT`).
//! - `SCRYPTED_SERVER_TOKEN_FILE` (or `SCRYPTED_SERVER_TOKEN`): the server's
//!   `SCRYPTED_ADMIN_TOKEN`; the server needs `SCRYPTED_ADMIN_USERNAME` too.
//! - `SCRYPTED_SERVER_VOLUME`: the server's `SCRYPTED_VOLUME`, readable by the tests.
//!   Required: the real `/endpoint/<name>/` answers "not found" for an installed
//!   plugin without an HTTP handler (these test plugins), so only the volume can
//!   confirm a deploy, and it is where the test plugins report that they loaded.
//!
//! The test plugins are real ones: on construction their plugin class writes
//! `$SCRYPTED_PLUGIN_VOLUME/it-loaded.json` with the nonce built into this zip and its
//! own pid, so a test sees which zip is running, that it loaded, and whether it was
//! restarted. Their names are fixed (`@scrypted/it-real-*`), so repeated runs leave
//! three small plugins installed, not more; use a throwaway volume.
//!
//! sideloadd talks to the server through a recording proxy on loopback, so "nothing
//! was sent" is checked on the wire, not inferred.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_scrypted::fixture::{self, PluginSpec};
use serde_json::json;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{Output, run_config};

const SKIP: &str = "skipped: SCRYPTED_SERVER is not set (see README: real-server tier)";
/// A deployed plugin answers 200 before it loads; loading takes ~0.5 s on an idle
/// machine, far longer on a busy one.
const LOAD_WITHIN: Duration = Duration::from_secs(30);
const MARKER: &str = "it-loaded.json";

/// The server under test, from the environment.
struct RealServer {
    url: url::Url,
    token: String,
    volume: PathBuf,
}

impl RealServer {
    /// None (and the skip line printed) when `SCRYPTED_SERVER` is unset.
    fn from_env() -> Option<Self> {
        let Some(server) = std::env::var("SCRYPTED_SERVER")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            println!("{SKIP}");
            return None;
        };
        let url = url::Url::parse(&server)
            .unwrap_or_else(|e| panic!("SCRYPTED_SERVER={server:?} is not a URL: {e}"));
        assert_eq!(
            url.scheme(),
            "http",
            "SCRYPTED_SERVER must be the server's plain-HTTP port"
        );
        let token = match (
            std::env::var("SCRYPTED_SERVER_TOKEN_FILE"),
            std::env::var("SCRYPTED_SERVER_TOKEN"),
        ) {
            (Ok(file), _) => std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("SCRYPTED_SERVER_TOKEN_FILE={file}: {e}")),
            (_, Ok(token)) => token,
            _ => panic!(
                "SCRYPTED_SERVER is set, but neither SCRYPTED_SERVER_TOKEN_FILE nor \
                 SCRYPTED_SERVER_TOKEN is (see README: real-server tier)"
            ),
        };
        let token = token.trim().to_string();
        assert!(!token.is_empty(), "the SCRYPTED_SERVER token is empty");
        let volume = std::env::var("SCRYPTED_SERVER_VOLUME").unwrap_or_else(|_| {
            panic!(
                "SCRYPTED_SERVER is set, but SCRYPTED_SERVER_VOLUME is not: the real server \
                 cannot confirm a deploy of these plugins without it (see README: real-server tier)"
            )
        });
        let volume = PathBuf::from(volume);
        assert!(
            volume.join("scrypted.db").exists(),
            "SCRYPTED_SERVER_VOLUME={} holds no scrypted.db",
            volume.display()
        );
        Some(Self { url, token, volume })
    }
}

/// What a test plugin wrote when its class was constructed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loaded {
    nonce: String,
    pid: u32,
}

/// One test's world: plugin directories, config, token file and state dir in a temp
/// dir, and a recording proxy in front of the real server.
struct World {
    dir: TempDir,
    server: RealServer,
    proxy: Proxy,
    specs: Vec<PluginSpec>,
    nonces: Vec<String>,
    config: PathBuf,
}

impl World {
    async fn start(server: RealServer, names: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let proxy = Proxy::start(&server.url).await;
        let mut w = Self {
            config: dir.path().join("config.json"),
            dir,
            server,
            proxy,
            specs: Vec::new(),
            nonces: Vec::new(),
        };
        for (i, name) in names.iter().enumerate() {
            w.specs.push(PluginSpec::new(name, "1.0.0"));
            w.nonces.push(String::new());
            w.write_plugin(i, "1.0.0");
        }
        w.write_files(&w.server.token.clone());
        w
    }

    fn plugin_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join("plugins").join(format!("p{i}"))
    }

    /// Writes plugin `i` as `version`, with a fresh nonce so its zip bytes are new on
    /// every test run.
    fn write_plugin(&mut self, i: usize, version: &str) {
        let name = self.specs[i].name.clone();
        let nonce = format!("{version}-{}", unique());
        let mut spec = PluginSpec::new(&name, version);
        spec.main_js = Some(loading_plugin_js(&name, &nonce));
        spec.write(&self.plugin_dir(i)).expect("plugin");
        self.specs[i] = spec;
        self.nonces[i] = nonce;
    }

    /// Writes the token file (with `token`) and the config.
    fn write_files(&self, token: &str) {
        std::fs::write(self.dir.path().join("token"), format!("{token}\n")).expect("token");
        let plugins: Vec<_> = self
            .specs
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"name": s.name, "path": self.plugin_dir(i)}))
            .collect();
        let config = json!({
            "server": self.proxy.url,
            "tokenFile": self.dir.path().join("token"),
            "stateDir": self.dir.path().join("state"),
            "volume": self.server.volume,
            "readyTimeoutSecs": 30,
            "plugins": plugins,
        });
        std::fs::write(&self.config, config.to_string()).expect("config");
    }

    async fn run(&self) -> Output {
        run_config(&self.config).await
    }

    fn plugin_volume(&self, i: usize) -> PathBuf {
        self.server.volume.join("plugins").join(&self.specs[i].name)
    }

    fn zip_md5(&self, i: usize) -> String {
        fake_scrypted::md5_hex(&std::fs::read(self.plugin_dir(i).join("plugin.zip")).expect("zip"))
    }

    /// The zips Scrypted has installed for plugin `i`, by file name.
    fn installed_zips(&self, i: usize) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.plugin_volume(i).join("zip"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".zip"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn loaded(&self, i: usize) -> Option<Loaded> {
        let text = std::fs::read_to_string(self.plugin_volume(i).join(MARKER)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(Loaded {
            nonce: v["nonce"].as_str()?.to_string(),
            pid: u32::try_from(v["pid"].as_u64()?).ok()?,
        })
    }

    /// Waits until plugin `i`'s current zip has loaded, and returns what it wrote.
    async fn wait_loaded(&self, i: usize) -> Loaded {
        let deadline = Instant::now() + LOAD_WITHIN;
        loop {
            if let Some(l) = self.loaded(i).filter(|l| l.nonce == self.nonces[i]) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "{} (nonce {}) did not load within {LOAD_WITHIN:?}; marker: {:?}",
                self.specs[i].name,
                self.nonces[i],
                self.loaded(i)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts that `l` is plugin `i`'s worker, alive.
    fn assert_alive(&self, i: usize, l: &Loaded) {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", l.pid)).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(
            cmdline.contains(&format!("child {}", self.specs[i].name)),
            "pid {} is not {}'s running worker: {cmdline:?}",
            l.pid,
            self.specs[i].name
        );
    }

    fn assert_installed(&self, i: usize) {
        assert_eq!(
            self.installed_zips(i),
            vec![format!("1-{}.zip", self.zip_md5(i))],
            "{}",
            self.specs[i].name
        );
    }
}

/// A plugin whose class, when Scrypted constructs it, reports the zip's nonce and its
/// pid in its plugin volume (written whole, then renamed, so never read half-done).
fn loading_plugin_js(name: &str, nonce: &str) -> String {
    let report = json!({ "nonce": nonce }).to_string();
    format!(
        r#"// {name} {nonce}
const fs = require('fs');
const path = require('path');
class Plugin {{
    constructor() {{
        const dir = process.env.SCRYPTED_PLUGIN_VOLUME;
        const report = Object.assign({report}, {{ pid: process.pid }});
        fs.writeFileSync(path.join(dir, '{MARKER}.tmp'), JSON.stringify(report));
        fs.renameSync(path.join(dir, '{MARKER}.tmp'), path.join(dir, '{MARKER}'));
    }}
}}
exports.default = Plugin;
"#
    )
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// A TCP proxy on 127.0.0.1 that forwards everything to the real server unchanged and
/// records the request line of every request it forwards (bodies are skipped by their
/// Content-Length; sideloadd never sends chunked bodies).
struct Proxy {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start(upstream: &url::Url) -> Self {
        let host = upstream.host_str().expect("host").to_string();
        let port = upstream.port_or_known_default().expect("port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let seen = seen.clone();
                let host = host.clone();
                tokio::spawn(async move {
                    // A refused upstream is passed on as a closed connection.
                    if let Ok(up) = TcpStream::connect((host.as_str(), port)).await {
                        forward(client, up, seen).await;
                    }
                });
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }

    fn clear(&self) {
        self.requests.lock().expect("lock").clear();
    }

    /// Requests that can change anything on the server.
    fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with("GET "))
            .collect()
    }
}

async fn forward(client: TcpStream, up: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut up_rd, mut up_wr) = up.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut up_rd, &mut client_wr).await;
        let _ = client_wr.shutdown().await;
    });
    let mut sniffer = Sniffer::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut found = Vec::new();
        sniffer.feed(&buf[..n], &mut found);
        seen.lock().expect("lock").extend(found);
        if up_wr.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = up_wr.shutdown().await;
    let _ = answers.await;
}

/// Splits a client's byte stream into requests: a head up to the blank line, then
/// Content-Length bytes of body.
#[derive(Default)]
struct Sniffer {
    head: Vec<u8>,
    body_left: u64,
}

impl Sniffer {
    fn feed(&mut self, data: &[u8], out: &mut Vec<String>) {
        if data.is_empty() {
            return;
        }
        if self.body_left > 0 {
            let k = self.body_left.min(data.len() as u64) as usize;
            self.body_left -= k as u64;
            self.feed(&data[k..], out);
            return;
        }
        self.head.extend_from_slice(data);
        let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
            return;
        };
        let rest = self.head.split_off(end + 4);
        let head = String::from_utf8_lossy(&std::mem::take(&mut self.head)).into_owned();
        let mut lines = head.lines();
        let line = lines.next().unwrap_or_default();
        // "POST /web/component/script/deploy?npmPackage=... HTTP/1.1"
        out.push(line.rsplit_once(' ').map_or(line, |(l, _)| l).to_string());
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    self.body_left = v.trim().parse().expect("content-length");
                }
                assert!(
                    !k.eq_ignore_ascii_case("transfer-encoding"),
                    "the proxy does not follow chunked bodies: {head}"
                );
            }
        }
        self.feed(&rest, out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_two_plugins_load_and_a_second_run_deploys_nothing() {
    let Some(server) = RealServer::from_env() else {
        return;
    };
    let w = World::start(server, &["@scrypted/it-real-a", "@scrypted/it-real-b"]).await;

    let out = w.run().await;
    out.assert_code(0);
    assert!(
        out.stderr.contains("2 plugins in place, 0 skipped"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(&w.server.token),
        "token leaked into logs:\n{}",
        out.stderr
    );
    // On the wire: setup then deploy, once per plugin, in config order.
    let writes = w.proxy.writes();
    let expected: Vec<String> = w
        .specs
        .iter()
        .flat_map(|s| {
            let q = format!(
                "?npmPackage={}",
                s.name.replace('@', "%40").replace('/', "%2F")
            );
            [
                format!("POST /web/component/script/setup{q}"),
                format!("POST /web/component/script/deploy{q}"),
            ]
        })
        .collect();
    assert_eq!(writes, expected);
    let mut running = Vec::new();
    for i in 0..2 {
        w.assert_installed(i);
        let l = w.wait_loaded(i).await;
        w.assert_alive(i, &l);
        running.push(l);
    }

    // "Reboot": sideloadd runs again with nothing changed.
    w.proxy.clear();
    let out = w.run().await;
    out.assert_code(0);
    assert!(
        out.stderr.contains("2 plugins in place, 2 skipped"),
        "{}",
        out.stderr
    );
    assert_eq!(w.proxy.writes(), Vec::<String>::new(), "nothing sent");
    // A deploy always restarts the plugin: same pid means it was not touched.
    for (i, before) in running.iter().enumerate() {
        assert_eq!(w.loaded(i).as_ref(), Some(before), "{}", w.specs[i].name);
        w.assert_alive(i, before);
        w.assert_installed(i);
    }
}

/// Damages the zip in a plugin directory.
type Damage = fn(&Path) -> std::io::Result<()>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_a_corrupt_zip_is_refused_and_the_old_version_keeps_running() {
    let Some(server) = RealServer::from_env() else {
        return;
    };
    let mut w = World::start(server, &["@scrypted/it-real-corrupt"]).await;
    w.run().await.assert_code(0);
    let v1 = w.wait_loaded(0).await;
    w.assert_alive(0, &v1);
    let v1_zips = w.installed_zips(0);

    // A new version with a bad CRC (its central directory still reads), then one cut
    // short (a truncated download).
    let damage: [(&str, Damage); 2] = [
        ("bad CRC", fixture::corrupt_zip_data),
        ("truncated", |d| fixture::truncate_zip(d, 0.7)),
    ];
    for (what, damage) in damage {
        w.write_plugin(0, "2.0.0");
        damage(&w.plugin_dir(0)).expect("damage");
        w.proxy.clear();
        let out = w.run().await;
        out.assert_code(1);
        assert!(
            out.stderr
                .contains("plugin @scrypted/it-real-corrupt failed")
                && out.stderr.contains("invalid, not sent"),
            "{what}: {}",
            out.stderr
        );
        assert_eq!(
            w.proxy.writes(),
            Vec::<String>::new(),
            "{what}: nothing sent"
        );
        assert_eq!(w.loaded(0).as_ref(), Some(&v1), "{what}: v1 still running");
        w.assert_alive(0, &v1);
        assert_eq!(w.installed_zips(0), v1_zips, "{what}");
        assert!(!w.plugin_volume(0).join("zip.tmp").exists(), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_a_wrong_token_exits_3_and_names_the_cause() {
    let Some(server) = RealServer::from_env() else {
        return;
    };
    let w = World::start(server, &["@scrypted/it-real-token"]).await;
    w.write_files("not-the-token");
    let out = w.run().await;
    out.assert_code(3);
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    assert!(
        out.stderr.contains("rejected the token") && out.stderr.contains("SCRYPTED_ADMIN_TOKEN"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not-the-token"), "{}", out.stderr);
    assert_eq!(w.proxy.writes(), Vec::<String>::new(), "nothing sent");
    assert!(
        !w.plugin_volume(0).exists(),
        "{} was installed",
        w.specs[0].name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_status_and_prune_never_touch_the_endpoint_of_a_missing_core() {
    let Some(server) = RealServer::from_env() else {
        return;
    };
    if server.volume.join("plugins/@scrypted/core").exists() {
        println!("skipped: this server has @scrypted/core installed");
        return;
    }
    let w = World::start(server, &["@scrypted/it-real-nocore"]).await;
    w.run().await.assert_code(0);
    // Core declared but not installed: status only looks.
    let core = w.dir.path().join("plugins/core");
    PluginSpec::new("@scrypted/core", "0.3.147")
        .write(&core)
        .expect("core");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&w.config).expect("config")).expect("json");
    let base = config.clone();
    config["plugins"]
        .as_array_mut()
        .expect("list")
        .push(json!({"name": "@scrypted/core", "path": core}));
    std::fs::write(&w.config, config.to_string()).expect("config");
    w.proxy.clear();
    let out = crate::harness::run_cmd(crate::harness::command(&[
        "status",
        "--config",
        crate::harness::path_str(&w.config),
    ]))
    .await;
    out.assert_code(1);
    assert!(out.stdout.contains("not installed"), "{}", out.stdout);
    // An earlier run's claim that sideloadd installed core, which the user then
    // removed: prune looks, and must not ask core's endpoint.
    let state_file = w.dir.path().join("state/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).expect("state")).expect("json");
    state["undeclared"]["@scrypted/core"] = json!({"version": "0.3.147",
        "zipMd5": "0", "zipSize": 1, "packageJsonMd5": "0", "deployedAt": 0});
    std::fs::write(&state_file, state.to_string()).expect("state");
    let mut config = base;
    config["prune"] = json!(true);
    std::fs::write(&w.config, config.to_string()).expect("config");
    let out = w.run().await;
    out.assert_code(0);
    let touched: Vec<String> = w
        .proxy
        .requests()
        .into_iter()
        .filter(|r| {
            r.contains("/endpoint/@scrypted/core") || r.contains("/endpoint/%40scrypted%2Fcore")
        })
        .collect();
    assert_eq!(touched, Vec::<String>::new(), "core's endpoint was asked");
    assert!(!w.server.volume.join("plugins/@scrypted/core").exists());
}
