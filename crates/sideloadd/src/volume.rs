//! Scrypted's volume, read-only: which zip it installed for a plugin
//! (`docs/scrypted-api.md` §6).

use std::path::{Path, PathBuf};

use crate::state::volume_zip_path;
use crate::validate::ValidPlugin;

/// How the volume can be used to see what Scrypted installed.
#[derive(Debug, Clone)]
pub enum Volume {
    Readable(PathBuf),
    /// Not configured or not readable.
    Unavailable,
}

impl Volume {
    pub fn open(volume: Option<&Path>) -> Self {
        let Some(v) = volume else {
            return Self::Unavailable;
        };
        match std::fs::read_dir(v) {
            Ok(_) => Self::Readable(v.to_path_buf()),
            Err(e) => {
                tracing::warn!(volume = %v.display(), error = %e, "volume not readable; checking plugins through the server instead");
                Self::Unavailable
            }
        }
    }

    /// Some(true/false) when the volume answers; None when it cannot tell
    /// (unavailable, permissions).
    pub fn has(&self, p: &ValidPlugin) -> Option<bool> {
        let Self::Readable(volume) = self else {
            return None;
        };
        match std::fs::metadata(volume_zip_path(volume, &p.name, &p.zip_md5)) {
            Ok(m) => Some(m.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
            Err(_) => None,
        }
    }

    /// Whether the plugin has some installed zip (auto-update or a hand install
    /// replaces the whole `zip/` directory).
    pub fn has_other_zip(&self, name: &str) -> bool {
        let Self::Readable(volume) = self else {
            return false;
        };
        let dir = volume.join("plugins").join(name).join("zip");
        std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
    }
}
