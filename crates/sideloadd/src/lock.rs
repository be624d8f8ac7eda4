//! One run at a time per state directory: two runs at once would deploy every
//! plugin twice, and Scrypted handles two deploys of one plugin badly
//! (`docs/scrypted-api.md` §4).
//!
//! `flock` on `<stateDir>/lock`: released by the kernel when the process exits,
//! however it exits, so a killed run never leaves a stale lock behind. A second run
//! waits up to [`LOCK_WAIT`] for the first, then gives up with a clear message.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};
use tokio_util::sync::CancellationToken;

pub const LOCK_FILE: &str = "lock";
/// Long enough for a run with nothing to do, or a few deploys, to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot lock {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "another sideloadd run holds {path} (same stateDir); gave up after waiting {} s",
        .waited.as_secs()
    )]
    Busy { path: PathBuf, waited: Duration },
    #[error("stopped by a signal while waiting for another run to finish")]
    Interrupted,
}

/// Held for the whole run; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock, waiting up to `wait` for another run to release it.
pub async fn acquire(
    state_dir: &Path,
    wait: Duration,
    shutdown: &CancellationToken,
) -> Result<RunLock, LockError> {
    let path = state_dir.join(LOCK_FILE);
    let io_err = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(io_err)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err)?;
    let started = Instant::now();
    let mut said = false;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(RunLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => {}
            Err(e) => return Err(io_err(e.into())),
        }
        if started.elapsed() >= wait {
            return Err(LockError::Busy {
                path,
                waited: started.elapsed(),
            });
        }
        if !said {
            said = true;
            tracing::warn!(lock = %path.display(), "another sideloadd run is in progress; waiting for it");
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => return Err(LockError::Interrupted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_then_gives_up_and_gets_it_once_released() {
        let t = tempfile::tempdir().expect("tempdir");
        let never = CancellationToken::new();
        let first = acquire(t.path(), LOCK_WAIT, &never).await.expect("first");
        let started = Instant::now();
        let busy = acquire(t.path(), Duration::from_millis(300), &never)
            .await
            .expect_err("held");
        assert!(matches!(busy, LockError::Busy { .. }), "{busy}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(busy.to_string().contains("another sideloadd run holds"));
        drop(first);
        acquire(t.path(), Duration::ZERO, &never)
            .await
            .expect("released");
    }

    #[tokio::test]
    async fn a_signal_ends_the_wait() {
        let t = tempfile::tempdir().expect("tempdir");
        let stop = CancellationToken::new();
        let _first = acquire(t.path(), LOCK_WAIT, &stop).await.expect("first");
        stop.cancel();
        let err = acquire(t.path(), LOCK_WAIT, &stop).await.expect_err("held");
        assert!(matches!(err, LockError::Interrupted));
    }
}
