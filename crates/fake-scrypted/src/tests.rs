//! The fake's own contract, checked against `docs/scrypted-api.md`.

use std::fs;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpStream;

use super::*;
use crate::fixture::{self, PluginSpec};

const TOKEN: &str = "secret-token";

struct Env {
    server: FakeScrypted,
    http: reqwest::Client,
    volume: tempfile::TempDir,
    plugins: tempfile::TempDir,
}

async fn env(startup: Duration) -> Env {
    env_with(Options {
        startup_delay: startup,
        ..Options::default()
    })
}

/// A fake with these options, the test token and a volume of its own.
fn env_with(options: Options) -> Env {
    let volume = tempfile::tempdir().expect("tempdir");
    let server = FakeScrypted::start(Options {
        token: TOKEN.into(),
        volume: Some(volume.path().to_path_buf()),
        ..options
    })
    .expect("start");
    Env {
        server,
        http: reqwest::Client::new(),
        volume,
        plugins: tempfile::tempdir().expect("tempdir"),
    }
}

impl Env {
    fn url(&self, path: &str, npm: &str) -> String {
        format!(
            "{}{path}?npmPackage={}",
            self.server.url(),
            npm.replace('/', "%2F")
        )
    }

    async fn setup(&self, npm: &str, body: &str, ct: Option<&str>) -> (StatusCode, String) {
        let mut req = self
            .http
            .post(self.url("/web/component/script/setup", npm))
            .bearer_auth(TOKEN)
            .body(body.to_string());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.expect("send");
        (r.status(), r.text().await.expect("text"))
    }

    async fn deploy(&self, npm: &str, body: Vec<u8>, ct: Option<&str>) -> (StatusCode, String) {
        let mut req = self
            .http
            .post(self.url("/web/component/script/deploy", npm))
            .bearer_auth(TOKEN)
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.expect("send");
        (r.status(), r.text().await.expect("text"))
    }

    fn plugin(&self, name: &str) -> (String, Vec<u8>) {
        let dir = self.plugins.path().join(name.replace('/', "_"));
        let spec = PluginSpec::new(name, "1.0.0");
        spec.write(&dir).expect("write");
        (
            spec.package_json().to_string(),
            fs::read(dir.join("plugin.zip")).expect("read"),
        )
    }
}

#[tokio::test]
async fn port_is_closed_until_ready_and_auth_is_enforced() {
    let e = env(Duration::from_millis(300)).await;
    assert!(
        TcpStream::connect(e.server.addr()).await.is_err(),
        "refused while starting"
    );
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let probe = format!("{}/web/component/script/setup", e.server.url());
    let r = e.http.get(&probe).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.text().await.expect("text"), "Not Authorized");
    let r = e
        .http
        .get(&probe)
        .bearer_auth("wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = e
        .http
        .get(&probe)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = e
        .http
        .get(format!("{probe}?scryptedToken={TOKEN}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn setup_then_deploy_installs_the_md5_named_zip() {
    let e = env(Duration::ZERO).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let name = "@scrypted/nvr";
    let (pj, zip) = e.plugin(name);
    let ep = format!("{}/endpoint/{name}/", e.server.url());
    let r = e.http.get(&ep).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.expect("t"), endpoint_not_found_body(name));

    assert_eq!(
        e.deploy(name, zip.clone(), Some("application/zip")).await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "npm package not found".into()
        )
    );
    assert_eq!(
        e.setup(name, &pj, Some("application/json")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        e.deploy(name, zip.clone(), Some("application/zip")).await,
        (StatusCode::OK, "ok".into())
    );
    let md5 = md5_hex(&zip);
    let on_disk = e
        .volume
        .path()
        .join("plugins")
        .join(name)
        .join("zip")
        .join(format!("1-{md5}.zip"));
    assert_eq!(fs::read(&on_disk).expect("installed"), zip);
    let rec = e.server.plugin(name).expect("record");
    assert!(rec.pid.is_some() && rec.loaded);
    // Installed and running, but without an HTTP handler: answered exactly like a
    // missing plugin (docs/scrypted-api.md §6).
    let r = e.http.get(&ep).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.expect("t"), endpoint_not_found_body(name));

    // Redeploying the same zip restarts the plugin.
    let first_pid = rec.pid;
    e.deploy(name, zip, Some("application/zip")).await;
    assert_ne!(e.server.plugin(name).expect("record").pid, first_pid);
}

#[tokio::test]
async fn setup_stores_anything_and_empty_object_poisons_deploy() {
    let e = env(Duration::ZERO).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let (_, zip) = e.plugin("p");
    let (status, body) = e.setup("p", "{not json", Some("application/json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("SyntaxError"), "{body}");
    assert_eq!(
        e.setup("p", "{}", Some("application/json")).await.0,
        StatusCode::OK
    );
    let (status, body) = e.deploy("p", zip.clone(), Some("application/zip")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("reading 'slice'"), "{body}");
    // Without a JSON content type the route sees `{}` too.
    let pj = PluginSpec::new("q", "1.0.0").package_json().to_string();
    assert_eq!(e.setup("q", &pj, None).await.0, StatusCode::OK);
    assert_eq!(
        e.server.plugin("q").expect("record").package_json,
        serde_json::json!({})
    );
}

#[tokio::test]
async fn no_content_type_over_100kb_is_413() {
    let e = env(Duration::ZERO).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let (pj, _) = e.plugin("p");
    e.setup("p", &pj, Some("application/json")).await;
    let (status, _) = e.deploy("p", vec![0u8; 150 * 1024], None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn corrupt_zip_kills_the_running_plugin_and_it_stays_down() {
    let e = env(Duration::ZERO).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let (pj, zip) = e.plugin("p");
    e.setup("p", &pj, Some("application/json")).await;
    assert_eq!(
        e.deploy("p", zip.clone(), Some("application/zip")).await.0,
        StatusCode::OK
    );
    let dir = e.plugins.path().join("p");
    fixture::truncate_zip(&dir, 0.5).expect("truncate");
    let bad = fs::read(dir.join("plugin.zip")).expect("read");
    let (status, body) = e.deploy("p", bad.clone(), Some("application/zip")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("ADM-ZIP"), "{body}");
    let rec = e.server.plugin("p").expect("record");
    assert_eq!(rec.pid, None, "killed");
    assert_eq!(rec.zip_md5, Some(md5_hex(&bad)), "bad zip kept in the db");
    assert!(!e.volume.path().join("plugins/p/unzipped").exists());
    assert!(!e.volume.path().join("plugins/p/zip").exists());
    // Still down after a restart.
    e.server.restart(Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    assert_eq!(e.server.plugin("p").expect("record").pid, None);
}

/// Deploys `zip` over a running plugin; returns the answer and whether it runs.
async fn deploy_over_running(e: &Env, zip: Vec<u8>) -> (StatusCode, String, Option<u64>) {
    let (pj, good) = e.plugin("p");
    e.setup("p", &pj, Some("application/json")).await;
    e.deploy("p", good, Some("application/zip")).await;
    assert!(e.server.plugin("p").expect("record").pid.is_some());
    let (status, body) = e.deploy("p", zip, Some("application/zip")).await;
    (status, body, e.server.plugin("p").expect("record").pid)
}

#[tokio::test]
async fn zips_that_pass_a_crc_check_still_break_the_extractor() {
    use fixture::{RawEntry, plugin_entries, raw_zip};
    let e = env(Duration::ZERO).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let mut lying = RawEntry::new("fs/a.js", b"hello");
    lying.local_size = Some(6);
    let mut entries = plugin_entries();
    entries.push(lying);
    let (status, body, pid) = deploy_over_running(&e, raw_zip(&entries)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body.contains("ADM-ZIP: CRC32 checksum failed \"fs/a.js\""),
        "{body}"
    );
    assert_eq!(pid, None, "killed first");

    let mut entries = plugin_entries();
    entries.push(RawEntry::new("a", b"file"));
    entries.push(RawEntry::new("a/b", b"under a file"));
    let (status, body, pid) = deploy_over_running(&e, raw_zip(&entries)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("ENOTDIR") && body.contains("a/b"), "{body}");
    assert_eq!(pid, None, "killed first");
}

#[tokio::test]
async fn a_huge_entry_freezes_the_whole_server() {
    use fixture::{RawEntry, plugin_entries, raw_zip};
    let e = env_with(Options {
        freeze: Duration::from_millis(1500),
        crash_restart: Duration::from_secs(3),
        ..Options::default()
    });
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let mut huge = RawEntry::new("fs/zeros", b"");
    huge.central_size = Some(1 << 31);
    let mut entries = plugin_entries();
    entries.push(huge);
    let started = Instant::now();
    let (status, body, pid) = deploy_over_running(&e, raw_zip(&entries)).await;
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("RangeError"), "{body}");
    assert_eq!(pid, None);
    // At the next boot the stored zip freezes it again.
    e.server.restart(Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let started = Instant::now();
    let r = e
        .http
        .get(format!("{}/login", e.server.url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    // And again at the server's next retry (crash_restart after the deploy).
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut refrozen = false;
    while !refrozen && Instant::now() < deadline {
        let started = Instant::now();
        let login = e.http.get(format!("{}/login", e.server.url())).send();
        assert_eq!(login.await.expect("answer").status(), StatusCode::OK);
        refrozen = started.elapsed() >= Duration::from_millis(1000);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refrozen, "frozen again at the retry");
}

#[tokio::test]
async fn a_plugin_that_fails_to_load_still_gets_200() {
    let e = env(Duration::ZERO).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let mut spec = PluginSpec::new("p", "1.0.0");
    spec.main_js = None;
    spec.padding_bytes = 100;
    let dir = e.plugins.path().join("p");
    spec.write(&dir).expect("write");
    e.setup(
        "p",
        &spec.package_json().to_string(),
        Some("application/json"),
    )
    .await;
    let zip = fs::read(dir.join("plugin.zip")).expect("read");
    assert_eq!(
        e.deploy("p", zip, Some("application/zip")).await.0,
        StatusCode::OK
    );
    assert!(!e.server.plugin("p").expect("record").loaded);
}

#[tokio::test]
async fn faults_fire_once() {
    let e = env(Duration::ZERO).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let (pj, zip) = e.plugin("p");

    e.server.fail_next(Route::Setup);
    assert_eq!(
        e.setup("p", &pj, Some("application/json")).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        e.setup("p", &pj, Some("application/json")).await.0,
        StatusCode::OK
    );

    e.server.reset_next(Route::Deploy);
    let cut = e
        .http
        .post(e.url("/web/component/script/deploy", "p"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/zip")
        .body(zip.clone())
        .send()
        .await;
    assert!(cut.is_err(), "the client sees the connection drop");
    assert_eq!(
        e.server.plugin("p").expect("record").zip_md5,
        None,
        "nothing stored"
    );

    e.server.set_slow(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(
        e.deploy("p", zip, Some("application/zip")).await.0,
        StatusCode::OK
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    e.server.set_slow(Duration::ZERO);

    e.server
        .restart_after_next_setup(Duration::from_millis(500));
    assert_eq!(
        e.setup("p", &pj, Some("application/json")).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(e.server.addr()).await.is_err());
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    assert_eq!(e.server.boots(), 2);
    assert!(e.server.plugin("p").expect("survives").pid.is_some());

    let records = e.server.requests();
    let resets: Vec<_> = records.iter().filter(|r| r.status.is_none()).collect();
    assert_eq!(resets.len(), 1);
    assert!(resets[0].body_len > 0);
    assert!(resets[0].body_len < resets[0].content_length.expect("length sent"));
}

#[tokio::test]
async fn engine_io_polling_is_harmless_and_a_websocket_to_a_missing_plugin_kills_the_server() {
    let e = env(Duration::ZERO).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let (pj, zip) = e.plugin("@scrypted/p");
    e.setup("@scrypted/p", &pj, Some("application/json")).await;
    e.deploy("@scrypted/p", zip, Some("application/zip")).await;
    let poll = |name: &str| {
        format!(
            "{}/endpoint/{name}/engine.io/api/?EIO=4&transport=polling",
            e.server.url()
        )
    };
    let r = e
        .http
        .get(poll("@scrypted/p"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").starts_with("0{"));
    let r = e
        .http
        .get(poll("@scrypted/missing"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!e.server.crashed_by_websocket());
    // A WebSocket upgrade to the missing plugin, unauthenticated even.
    let upgrade = e
        .http
        .get(poll("@scrypted/missing").replace("polling", "websocket"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await;
    assert!(upgrade.is_err(), "no answer: {upgrade:?}");
    assert!(e.server.crashed_by_websocket());
    assert!(
        !e.server.wait_up(Duration::from_millis(300)).await,
        "the server is gone"
    );
}

#[tokio::test]
async fn a_crashing_plugin_is_restarted_after_the_delay_and_logs_why() {
    let e = env_with(Options {
        load_delay: Duration::from_millis(50),
        crash_restart: Duration::from_millis(400),
        ..Options::default()
    });
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let dir = e.plugins.path().join("crash");
    let mut spec = PluginSpec::new("@scrypted/crash", "1.0.0");
    spec.main_js = Some(format!("{CRASH_MARKER}\nprocess.exit(1);\n"));
    spec.write(&dir).expect("write");
    let pj = spec.package_json().to_string();
    e.setup("@scrypted/crash", &pj, Some("application/json"))
        .await;
    let zip = fs::read(dir.join("plugin.zip")).expect("zip");
    assert_eq!(
        e.deploy("@scrypted/crash", zip, Some("application/zip"))
            .await
            .0,
        StatusCode::OK,
        "200 before it crashes"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(e.server.plugin("@scrypted/crash").expect("rec").pid, None);
    let crashes = |e: &Env| {
        e.server
            .logs()
            .iter()
            .filter(|l| {
                l.message
                    .contains("unexpectedly exited, restarting in 400ms")
            })
            .count()
    };
    assert_eq!(crashes(&e), 1);
    // Restarted after the delay, and crashes again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(crashes(&e), 2);
    let loading = e
        .server
        .logs()
        .iter()
        .filter(|l| l.message == "loading @scrypted/crash")
        .count();
    assert_eq!(loading, 2);
}

async fn login(e: &Env, body: Value) -> Value {
    let r = e
        .http
        .post(format!("{}/login", e.server.url()))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_checks_the_seeded_admin_and_changes_nothing() {
    let e = env(Duration::ZERO).await;
    assert!(e.server.wait_up(Duration::from_secs(5)).await);
    let admin = e.server.user("admin").expect("seeded at boot");
    assert!(admin.acl_id.is_none() && admin.password.len() >= 16);
    let wrong = login(
        &e,
        serde_json::json!({"username": "admin", "password": "guess"}),
    )
    .await;
    assert_eq!(wrong["error"], "Incorrect password.");
    let right = login(
        &e,
        serde_json::json!({"username": "admin", "password": admin.password}),
    )
    .await;
    assert!(right.get("error").is_none(), "{right}");
    assert_eq!(right["username"], "admin");
    // Neither attempt changed the user, nor created the unknown one.
    let after = e.server.user("admin").expect("still there");
    assert_eq!((after.password, after.token), (admin.password, admin.token));
    let unknown = login(&e, serde_json::json!({"username": "eve", "password": "x"})).await;
    assert_eq!(unknown["error"], "User does not exist.");
    assert!(e.server.user("eve").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_users_the_first_login_creates_the_admin() {
    let server = FakeScrypted::start(Options {
        admin_username: None,
        ..Options::default()
    })
    .expect("start");
    assert!(server.wait_up(Duration::from_secs(5)).await);
    let r: Value = reqwest::Client::new()
        .post(format!("{}/login", server.url()))
        .json(&serde_json::json!({"username": "first", "password": "come-served"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(r["username"], "first");
    let u = server.user("first").expect("created by login");
    assert_eq!(u.password, "come-served");
}
