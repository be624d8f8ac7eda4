//! `adminPasswordFile`: the admin user gets the declared password, over RPC
//! (`users.addUser`) only when `POST /login` says it does not have it yet.

use std::path::PathBuf;
use std::time::Duration;

use fake_scrypted::UsersCall;
use serde_json::json;

use crate::harness::{Harness, Output, Setup};

const FIRST: &str = "first-Password-9f3";
const SECOND: &str = "second-Password-c7a";

/// Writes `text` as the password file and declares it.
fn declare(h: &Harness, text: &str) -> PathBuf {
    let path = h.dir.path().join("admin-password");
    std::fs::write(&path, text).expect("password file");
    h.write_config(|c| c["adminPasswordFile"] = json!(path));
    path
}

async fn login(h: &Harness, user: &str, password: &str) -> bool {
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/login", h.server.url()))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    body.get("error").is_none()
}

fn logins(h: &Harness) -> usize {
    h.server
        .requests()
        .iter()
        .filter(|r| r.path == "/login")
        .count()
}

fn assert_never_printed(out: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "the password was printed:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_is_set_then_left_alone_then_changed() {
    let h = Harness::start(Setup::default()).await;
    declare(&h, &format!("{FIRST}\n"));
    let out = h.run().await;
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("admin password of admin set from adminPasswordFile"),
        "{}",
        out.stderr
    );
    assert_never_printed(&out, &[FIRST]);
    assert!(login(&h, "admin", FIRST).await, "the web UI login works");
    assert_eq!(h.server.add_user_calls(), 1);
    let token = h.server.user("admin").expect("admin").token;

    // Unchanged: checked by login, not set again, so the user's token stays.
    let out = h.run().await;
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("admin password of admin already as in adminPasswordFile"),
        "{}",
        out.stderr
    );
    assert_eq!(h.server.add_user_calls(), 1, "addUser not called again");
    assert_eq!(h.server.user("admin").expect("admin").token, token);

    declare(&h, SECOND);
    let out = h.run().await;
    out.assert_code(0);
    assert!(
        out.stderr.contains("set from adminPasswordFile"),
        "{}",
        out.stderr
    );
    assert_never_printed(&out, &[FIRST, SECOND]);
    assert!(login(&h, "admin", SECOND).await);
    assert!(!login(&h, "admin", FIRST).await);
    assert_eq!(h.server.add_user_calls(), 2);
    let admin = h.server.user("admin").expect("admin");
    assert!(admin.acl_id.is_none(), "still an admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_user_is_created_without_trying_login() {
    let h = Harness::start(Setup::default()).await;
    let path = declare(&h, FIRST);
    h.write_config(|c| {
        c["adminPasswordFile"] = json!(path);
        c["adminUsername"] = json!("operator");
    });
    let out = h.run().await;
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("admin password of operator set from adminPasswordFile"),
        "{}",
        out.stderr
    );
    assert_eq!(logins(&h), 0, "no login for a user that does not exist");
    assert!(login(&h, "operator", FIRST).await);
    assert_eq!(
        h.server.users_calls(),
        vec![
            UsersCall::GetAllUsers,
            UsersCall::AddUser {
                username: "operator".into()
            }
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_password_file_fails_the_run_but_not_the_plugins() {
    let h = Harness::start(Setup::default()).await;
    assert!(h.server.wait_up(Duration::from_secs(10)).await);
    let seeded = h.server.user("admin").expect("seeded at boot").password;
    let path = declare(&h, "Short77\n");
    let out = h.run().await;
    out.assert_code(1);
    let says = format!("adminPasswordFile {}", path.display());
    assert!(
        out.stderr.contains("error: admin password not set")
            && out.stderr.contains(&says)
            && out.stderr.contains("at least 8 are required"),
        "{}",
        out.stderr
    );
    assert_never_printed(&out, &["Short77"]);
    for i in 0..h.specs.len() {
        h.assert_running(i);
    }
    assert_eq!(h.server.add_user_calls(), 0);
    assert_eq!(logins(&h), 0);
    assert_eq!(h.server.user("admin").expect("admin").password, seeded);

    let missing = h.dir.path().join("no-such-password");
    h.write_config(|c| c["adminPasswordFile"] = json!(missing));
    let out = h.run().await;
    out.assert_code(1);
    let says = format!("cannot read adminPasswordFile {}", missing.display());
    assert!(out.stderr.contains(&says), "{}", out.stderr);
    assert_eq!(h.deploys(), vec![1, 1, 1], "plugins were not redeployed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_admin_password_file_no_login_and_no_users_call() {
    let h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    h.run().await.assert_code(0);
    assert_eq!(logins(&h), 0);
    assert_eq!(h.server.users_calls(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_plugin_to_host_rpc_the_password_waits_for_a_later_run() {
    let h = Harness::start(Setup {
        plugins: 0,
        ..Setup::default()
    })
    .await;
    declare(&h, FIRST);
    let out = h.run().await;
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("admin password of admin could not be set yet"),
        "{}",
        out.stderr
    );
    assert_eq!(logins(&h), 0);
    assert_eq!(h.server.users_calls(), vec![]);
}
