//! The last version known to be in place, kept in the state directory so a deploy
//! that fails after Scrypted has killed the plugin can put it back
//! (`docs/scrypted-api.md` §4-5: deploy kills the running plugin first).
//!
//! Layout: `<stateDir>/kept/<name, "/" as "+">/<zip md5>/{package.json,plugin.zip}`.
//! Each version directory is written under a temporary name and renamed into
//! place, so a kept version is always whole; older versions are removed after.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::PluginDecl;
use crate::validate::ValidPlugin;

const KEPT: &str = "kept";

fn plugin_dir(state_dir: &Path, name: &str) -> PathBuf {
    // npm names have at most one "/" and never a "+".
    state_dir.join(KEPT).join(name.replace('/', "+"))
}

/// Where `p`'s copy is (or would be).
pub fn version_dir(state_dir: &Path, name: &str, zip_md5: &str) -> PathBuf {
    plugin_dir(state_dir, name).join(zip_md5)
}

/// Copies `p`'s package.json and zip into the state directory, unless an intact
/// copy is already there (a damaged one is replaced: it could not be rolled back
/// to), and drops other kept versions of it.
pub fn keep(state_dir: &Path, p: &ValidPlugin) -> io::Result<()> {
    let dir = plugin_dir(state_dir, &p.name);
    let target = dir.join(&p.zip_md5);
    if !intact(&target, p) {
        if target.exists() {
            tracing::warn!(plugin = %p.name, path = %target.display(), "the kept copy is damaged; replacing it");
        }
        std::fs::create_dir_all(&dir)?;
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(&dir)?;
        std::fs::write(tmp.path().join("package.json"), &p.package_json)?;
        std::fs::copy(&p.zip_path, tmp.path().join("plugin.zip"))?;
        std::fs::File::open(tmp.path().join("plugin.zip"))?.sync_all()?;
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(tmp.keep(), &target)?;
        std::fs::File::open(&dir)?.sync_all()?;
    }
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path != target {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    Ok(())
}

/// Whether `dir` holds exactly `p`'s package.json and zip.
fn intact(dir: &Path, p: &ValidPlugin) -> bool {
    let pj = std::fs::read(dir.join("package.json"));
    let zip = crate::validate::md5_file(&dir.join("plugin.zip"));
    pj.is_ok_and(|pj| pj == p.package_json) && zip.is_ok_and(|md5| md5 == p.zip_md5)
}

/// The kept copy of `name` at `zip_md5`, as a declaration to validate and deploy.
pub fn kept(state_dir: &Path, name: &str, zip_md5: &str) -> Option<PluginDecl> {
    let path = version_dir(state_dir, name, zip_md5);
    path.join("plugin.zip").is_file().then(|| PluginDecl {
        name: name.to_string(),
        path,
        key: "kept".into(),
    })
}

/// Drops every kept version of plugins not in `declared`.
pub fn retain(state_dir: &Path, declared: &[&str]) {
    let Ok(entries) = std::fs::read_dir(state_dir.join(KEPT)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().replace('+', "/");
        if !declared.contains(&name.as_str()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
