//! `adminPasswordFile`: give Scrypted's admin user a password the operator knows.
//! A fresh server creates that user with a random one, so nobody could log into
//! the web UI (`docs/scrypted-api.md` §14).
//!
//! `POST /login` tells whether the password is already the declared one without
//! changing anything; only when it is not (or the user is missing) does
//! `users.addUser` set it, because that also regenerates the user's token. Login is
//! never tried for a missing user: with no user at all it would create one.
//! Failures are reported and fail the run, but never stop plugin provisioning.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::outcome::Outcome;
use crate::rpc::RpcError;
use crate::session::Session;

/// Shorter passwords are refused: this one opens the admin web UI.
pub const MIN_PASSWORD_CHARS: usize = 8;
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The password; its Debug never shows it.
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("cannot read adminPasswordFile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("adminPasswordFile {path} is empty")]
    Empty { path: PathBuf },
    #[error("adminPasswordFile {path} holds more than one line; it must hold the password alone")]
    MultiLine { path: PathBuf },
    #[error(
        "adminPasswordFile {path}: the password has {chars} characters, \
         at least {MIN_PASSWORD_CHARS} are required"
    )]
    TooShort { path: PathBuf, chars: usize },
    #[error("cannot check the admin password with POST /login: {0}")]
    Login(String),
    #[error("cannot set the admin password over RPC: {0}")]
    Rpc(#[from] RpcError),
}

/// What became of the password.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    Set,
    Already,
    /// No installed plugin can host the RPC session yet.
    NoHost,
}

/// One line; trailing whitespace (the newline an editor adds) is not part of it.
pub fn read_password(path: &Path) -> Result<Password, PasswordError> {
    let text = std::fs::read_to_string(path).map_err(|source| PasswordError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let password = text.trim_end();
    let path = path.to_path_buf();
    if password.is_empty() {
        return Err(PasswordError::Empty { path });
    }
    if password.contains(['\n', '\r']) {
        return Err(PasswordError::MultiLine { path });
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort { path, chars });
    }
    Ok(Password(password.to_string()))
}

/// With `adminPasswordFile`, makes the admin's password the one in it, and says
/// which of set, already so, or not yet it was. A failure goes to `outcome`.
pub async fn admin_password(session: &Session<'_>, outcome: &mut Outcome) {
    let Some(path) = &session.config.admin_password_file else {
        return;
    };
    let user = session.config.admin_username.as_str();
    match ensure(session, path, user).await {
        Ok(Done::Set) => {
            tracing::info!(user, "admin password of {user} set from adminPasswordFile")
        }
        Ok(Done::Already) => {
            tracing::info!(
                user,
                "admin password of {user} already as in adminPasswordFile"
            );
        }
        Ok(Done::NoHost) => tracing::warn!(
            user,
            "admin password of {user} could not be set yet: no plugin is installed to host \
             Scrypted's RPC; a later run with an installed plugin will set it"
        ),
        Err(e) => {
            tracing::error!(user, error = %e, "admin password of {user} not set");
            outcome.admin_password_failed = Some(e.to_string());
        }
    }
}

async fn ensure(session: &Session<'_>, path: &Path, user: &str) -> Result<Done, PasswordError> {
    let password = read_password(path)?;
    let rpc = match session.rpc(&[]).await {
        Ok(rpc) => rpc,
        Err(_) if session.hosts.lock().map(|h| h.is_empty()).unwrap_or(false) => {
            return Ok(Done::NoHost);
        }
        Err(e) => return Err(e.into()),
    };
    let exists = rpc.all_users().await?.iter().any(|u| u == user);
    if exists && login(session, user, &password).await? {
        return Ok(Done::Already);
    }
    rpc.add_user(user, &password.0).await?;
    Ok(Done::Set)
}

/// Whether `POST /login` accepts the password. It changes nothing on the server
/// when the user exists (checked before): a failed login is a 200 whose body has
/// an `error`.
async fn login(
    session: &Session<'_>,
    user: &str,
    password: &Password,
) -> Result<bool, PasswordError> {
    let mut url = session.client.base().clone();
    url.set_path("/login");
    let res = session
        .client
        .http()
        .post(url)
        .json(&json!({"username": user, "password": password.0}))
        .timeout(LOGIN_TIMEOUT)
        .send()
        .await
        .map_err(|e| PasswordError::Login(crate::client::chain(&e)))?;
    let status = res.status();
    if status != reqwest::StatusCode::OK {
        return Err(PasswordError::Login(format!("answered {status}")));
    }
    let body: Value = res
        .json()
        .await
        .map_err(|e| PasswordError::Login(format!("the answer is not JSON: {e}")))?;
    match body.as_object() {
        Some(o) => Ok(!o.contains_key("error")),
        None => Err(PasswordError::Login(format!("unexpected answer: {body}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> (Result<Password, PasswordError>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        std::fs::write(&path, text).expect("write");
        (read_password(&path), dir)
    }

    #[test]
    fn one_line_with_trailing_whitespace_trimmed() {
        assert_eq!(read(b"correct horse\n").0.expect("ok").0, "correct horse");
        assert_eq!(
            read(b" leading kept \t\r\n").0.expect("ok").0,
            " leading kept"
        );
        assert_eq!(read("ünïcødé!".as_bytes()).0.expect("ok").0, "ünïcødé!");
    }

    #[test]
    fn bad_files_name_the_key_and_path_not_the_content() {
        for (text, says) in [
            (&b"\n \n"[..], "is empty"),
            (b"seven77\n", "has 7 characters, at least 8"),
            (b"first line\nsecond line\n", "more than one line"),
        ] {
            let (r, dir) = read(text);
            let m = r.expect_err("refused").to_string();
            let path = dir.path().join("pw");
            assert!(
                m.starts_with("adminPasswordFile ") && m.contains(&*path.to_string_lossy()),
                "{m}"
            );
            assert!(m.contains(says), "{m}");
            let content = String::from_utf8_lossy(text);
            assert!(
                content.trim().is_empty() || !m.contains(content.trim()),
                "{m}"
            );
        }
        let m = read_password(Path::new("/nonexistent/pw"))
            .expect_err("missing")
            .to_string();
        assert!(
            m.starts_with("cannot read adminPasswordFile /nonexistent/pw"),
            "{m}"
        );
        assert_eq!(format!("{:?}", Password("secret".into())), "Password(..)");
    }
}
