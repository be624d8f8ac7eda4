//! What stops a run as a whole, and the exit code it ends with. Kept apart from
//! `run.rs` because the steps below the orchestrator (`session.rs`, `deploy.rs`,
//! `confirm.rs`, `rollback.rs`, `upkeep.rs`) return it too: they depend on this
//! module, never on `run.rs` (issue 16).

use std::path::PathBuf;

use reqwest::Url;

use crate::client::ClientError;
use crate::lock::LockError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read tokenFile {path}: {source}")]
    TokenRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tokenFile {path} is empty")]
    TokenEmpty { path: PathBuf },
    #[error("tokenFile {path}: {source}")]
    Client {
        path: PathBuf,
        source: Box<ClientError>,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("Scrypted at {url} was not ready within {secs} s (last attempt: {last})")]
    NotReady { url: Url, secs: u64, last: String },
    #[error(
        "Scrypted at {url} rejected the token from {token_file} (401 Not Authorized); it must \
         equal the server's SCRYPTED_ADMIN_TOKEN, and SCRYPTED_ADMIN_USERNAME must be set"
    )]
    Unauthorized { url: Url, token_file: PathBuf },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("stopped by a signal; a request still unanswered after {grace_s} s was abandoned")]
    Abandoned { grace_s: u64 },
    #[error("stopped by a signal before finishing: {in_place} of {total} plugins in place")]
    Interrupted { in_place: usize, total: usize },
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Interrupted { .. }
            | Self::Abandoned { .. }
            | Self::Lock(LockError::Interrupted) => crate::EXIT_INTERRUPTED,
            _ => crate::EXIT_FATAL,
        }
    }
}
