//! A temporary world for one test: plugin directories, a config, a token file, a
//! state dir, a volume, and a fake Scrypted on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fake_scrypted::fixture::PluginSpec;
use fake_scrypted::{FakeScrypted, Options};
use serde_json::json;
use tempfile::TempDir;

pub const TOKEN: &str = "it-admin-token-5f1c";
/// Upper bound for any single sideloadd run in these tests.
const RUN_LIMIT: Duration = Duration::from_secs(120);

pub struct Setup {
    pub plugins: usize,
    pub startup_delay: Duration,
    pub use_volume: bool,
    pub ready_timeout_secs: u64,
    pub token_in_file: String,
    /// From fork to `loaded` in the fake.
    pub load_delay: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            plugins: 3,
            startup_delay: Duration::ZERO,
            use_volume: true,
            ready_timeout_secs: 30,
            token_in_file: format!("{TOKEN}\n"),
            load_delay: Options::default().load_delay,
        }
    }
}

pub struct Harness {
    pub dir: TempDir,
    pub server: FakeScrypted,
    pub specs: Vec<PluginSpec>,
    pub config: PathBuf,
    setup: Setup,
}

#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

pub fn plugin_name(i: usize) -> String {
    format!("@scrypted/test-{i}")
}

impl Harness {
    pub async fn start(setup: Setup) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let volume = dir.path().join("volume");
        std::fs::create_dir_all(&volume).expect("volume");
        let server = FakeScrypted::start(Options {
            token: TOKEN.into(),
            startup_delay: setup.startup_delay,
            volume: Some(volume),
            load_delay: setup.load_delay,
            ..Options::default()
        })
        .expect("fake server");
        let specs: Vec<PluginSpec> = (0..setup.plugins)
            .map(|i| PluginSpec::new(&plugin_name(i), "1.0.0"))
            .collect();
        let h = Self {
            config: dir.path().join("config.json"),
            dir,
            server,
            specs,
            setup,
        };
        for i in 0..h.specs.len() {
            h.specs[i].write(&h.plugin_dir(i)).expect("plugin");
        }
        let token = h.dir.path().join("token");
        std::fs::write(&token, &h.setup.token_in_file).expect("token");
        // As the NixOS module's credentials are: readable by the service only.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        h.write_config(|_| {});
        h
    }

    pub fn plugin_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join("plugins").join(format!("p{i}"))
    }

    pub fn volume(&self) -> PathBuf {
        self.dir.path().join("volume")
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join("state").join("state.json")
    }

    pub fn config_json(&self) -> serde_json::Value {
        let plugins: Vec<_> = (0..self.specs.len())
            .map(|i| json!({"name": self.specs[i].name, "path": self.plugin_dir(i)}))
            .collect();
        let mut c = json!({
            "server": self.server.url(),
            "tokenFile": self.dir.path().join("token"),
            "stateDir": self.dir.path().join("state"),
            "readyTimeoutSecs": self.setup.ready_timeout_secs,
            "plugins": plugins,
        });
        if self.setup.use_volume {
            c["volume"] = json!(self.volume());
        }
        c
    }

    /// Writes the config, letting the test edit it first.
    pub fn write_config(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut c = self.config_json();
        edit(&mut c);
        std::fs::write(&self.config, c.to_string()).expect("config");
    }

    /// Replaces plugin `i` by `spec` (name included) and writes it.
    pub fn set_spec(&mut self, i: usize, spec: PluginSpec) {
        spec.write(&self.plugin_dir(i)).expect("plugin");
        self.specs[i] = spec;
        self.write_config(|_| {});
    }

    /// Rewrites plugin `i` as a new version (new zip bytes).
    pub fn bump(&mut self, i: usize, version: &str) {
        self.specs[i] = PluginSpec::new(&self.specs[i].name, version);
        self.specs[i].write(&self.plugin_dir(i)).expect("plugin");
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        command(args)
    }

    pub async fn run(&self) -> Output {
        run_config(&self.config).await
    }

    /// `sideloadd status` (exit code, stdout, stderr).
    pub fn status(&self) -> (Option<i32>, String, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sideloadd"))
            .args(["status", "--config", path_str(&self.config)])
            .env("RUST_LOG", "info")
            .output()
            .expect("status");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn state(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.state_file()).expect("state")).expect("json")
    }

    pub async fn run_cmd(&self, cmd: tokio::process::Command) -> Output {
        run_cmd(cmd).await
    }

    /// Number of deploy requests per plugin, in plugin order.
    pub fn deploys(&self) -> Vec<usize> {
        self.specs
            .iter()
            .map(|s| {
                self.server
                    .sideload_requests(&s.name)
                    .iter()
                    .filter(|r| r.route == Some(fake_scrypted::Route::Deploy))
                    .count()
            })
            .collect()
    }

    pub fn zip_md5(&self, i: usize) -> String {
        fake_scrypted::md5_hex(&std::fs::read(self.plugin_dir(i).join("plugin.zip")).expect("zip"))
    }

    /// Asserts that the fake has exactly plugin `i`'s current zip running.
    pub fn assert_running(&self, i: usize) {
        let rec = self
            .server
            .plugin(&self.specs[i].name)
            .unwrap_or_else(|| panic!("{} not installed", self.specs[i].name));
        assert_eq!(rec.zip_md5.as_deref(), Some(self.zip_md5(i).as_str()));
        assert!(rec.pid.is_some(), "{} running", self.specs[i].name);
        assert_eq!(rec.package_json, self.specs[i].package_json());
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The real sideloadd binary, with a clean environment (no systemd variables) and
/// debug logging.
pub fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sideloadd"));
    cmd.args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM")
        .env_remove("INVOCATION_ID")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// `sideloadd run --config <config>`.
pub async fn run_config(config: &Path) -> Output {
    run_cmd(command(&["run", "--config", path_str(config)])).await
}

pub async fn run_cmd(mut cmd: tokio::process::Command) -> Output {
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn sideloadd");
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("sideloadd finished in time")
        .expect("wait");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Installs `spec` the way the web UI's upload does (setup, then deploy), as a
/// person would by hand: nothing sideloadd knows about.
pub async fn hand_install(h: &Harness, spec: &PluginSpec) {
    let dir = h
        .dir
        .path()
        .join("by-hand")
        .join(spec.name.replace('/', "+"))
        .join(&spec.version);
    spec.write(&dir).expect("plugin");
    let http = reqwest::Client::new();
    for (route, content_type, body) in [
        (
            "setup",
            "application/json",
            std::fs::read(dir.join("package.json")).expect("package.json"),
        ),
        (
            "deploy",
            "application/zip",
            std::fs::read(dir.join("plugin.zip")).expect("zip"),
        ),
    ] {
        let r = http
            .post(format!("{}/web/component/script/{route}", h.server.url()))
            .query(&[("npmPackage", spec.name.as_str())])
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect(route);
        assert_eq!(r.status(), 200, "{route} of {}", spec.name);
    }
}

/// Starts `sideloadd run` and kills it (SIGKILL, as a power loss would) once
/// Scrypted has answered the deploy of `name`, before its load can be confirmed.
pub async fn kill_after_deploy(h: &Harness, name: &str) {
    h.server.clear_requests();
    let mut child = h
        .command(&["run", "--config", path_str(&h.config)])
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !h
        .server
        .sideload_requests(name)
        .iter()
        .any(|r| r.route == Some(fake_scrypted::Route::Deploy) && r.status == Some(200))
    {
        assert!(Instant::now() < deadline, "no deploy of {name} answered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
}
