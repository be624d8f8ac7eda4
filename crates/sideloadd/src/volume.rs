//! Scrypted's volume, read-only: which zip it installed for a plugin
//! (`docs/scrypted-api.md` §6).

use std::path::{Path, PathBuf};

use crate::state::volume_zip_path;
use crate::validate::ValidPlugin;

/// Scrypted's database, which every real volume holds (`docs/scrypted-api.md` §1).
const DATABASE: &str = "scrypted.db";

/// How the volume can be used to see what Scrypted installed.
#[derive(Debug, Clone)]
pub enum Volume {
    Readable(PathBuf),
    /// Not configured, not readable, or not Scrypted's.
    Unavailable,
}

impl Volume {
    /// A directory without Scrypted's database is not its volume (a typo, the
    /// parent directory): trusting it would make every plugin look missing.
    pub fn open(volume: Option<&Path>) -> Self {
        let Some(v) = volume else {
            return Self::Unavailable;
        };
        match std::fs::read_dir(v) {
            Ok(_) if v.join(DATABASE).exists() => Self::Readable(v.to_path_buf()),
            Ok(_) => {
                tracing::warn!(volume = %v.display(), "the volume looks wrong: it has no {DATABASE}, so it is not Scrypted's SCRYPTED_VOLUME; checking plugins through the server instead");
                Self::Unavailable
            }
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

    /// Whether the zip `1-<zip_md5>.zip` is what is installed for `name`; None
    /// without a readable volume.
    pub fn has_zip(&self, name: &str, zip_md5: &str) -> Option<bool> {
        let Self::Readable(volume) = self else {
            return None;
        };
        Some(volume_zip_path(volume, name, zip_md5).is_file())
    }

    /// Whether the installed zip's bytes are still the declared ones (its name says
    /// what was deployed; the bytes can have been damaged since). None: cannot tell.
    pub fn zip_intact(&self, p: &ValidPlugin) -> Option<bool> {
        let Self::Readable(volume) = self else {
            return None;
        };
        let path = volume_zip_path(volume, &p.name, &p.zip_md5);
        crate::validate::md5_file(&path)
            .ok()
            .map(|md5| md5 == p.zip_md5)
    }

    /// Whether the plugin has some installed zip (auto-update or a hand install
    /// replaces the whole `zip/` directory). None: no readable volume.
    pub fn installed(&self, name: &str) -> Option<bool> {
        let Self::Readable(volume) = self else {
            return None;
        };
        let dir = volume.join("plugins").join(name).join("zip");
        Some(std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()))
    }

    /// Whether the plugin has some installed zip; false without a readable volume.
    pub fn has_other_zip(&self, name: &str) -> bool {
        self.installed(name) == Some(true)
    }

    /// Every plugin with an installed zip (`plugins/<name>` or
    /// `plugins/@scope/<name>`), in name order.
    pub fn installed_plugins(&self) -> Vec<String> {
        let Self::Readable(volume) = self else {
            return Vec::new();
        };
        let names = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let plugins = volume.join("plugins");
        let mut out: Vec<String> = names(&plugins)
            .into_iter()
            .flat_map(|n| match n.starts_with('@') {
                true => names(&plugins.join(&n))
                    .into_iter()
                    .map(|m| format!("{n}/{m}"))
                    .collect(),
                false => vec![n],
            })
            .filter(|n| self.installed(n) == Some(true))
            .collect();
        out.sort();
        out
    }
}
