//! The admin token, read by both `run` and `status`; here so `status.rs` does not
//! depend on the `run` orchestrator.

use std::path::Path;

use crate::error::RunError;

/// Reads the admin token, warning when every local user could read it too.
pub fn read_token(path: &Path) -> Result<String, RunError> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "tokenFile is readable by every user of this machine, and whoever reads it is Scrypted's admin: remove its read permission for others (chmod o-r)");
    }
    let text = std::fs::read_to_string(path).map_err(|source| RunError::TokenRead {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(RunError::TokenEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_string())
}
