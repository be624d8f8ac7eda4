//! What sideloadd deployed, kept in `stateDir/state.json`.
//!
//! Record before act: before a deploy, the step is journaled (`pending`: what is
//! being deployed and what was in place before, to roll back to) and the file saved;
//! only once the outcome is known is the entry resolved. A run stopped in between
//! (SIGTERM, SIGKILL, power loss) leaves the entry, and the next run finishes the
//! step (confirms the new version) or undoes it (puts the previous one back).
//!
//! The file is only a claim: when Scrypted's volume is readable it is checked against
//! the zip Scrypted actually installed, so a wiped volume gets everything again. A
//! missing or unreadable state file means "nothing known", which costs one redeploy
//! of each plugin and never skips one wrongly.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::validate::ValidPlugin;

pub const STATE_FILE: &str = "state.json";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    pub version: String,
    pub zip_md5: String,
    pub zip_size: u64,
    pub package_json_md5: String,
    /// Seconds since the epoch.
    pub deployed_at: u64,
}

impl Deployed {
    pub fn of(p: &ValidPlugin) -> Self {
        Self {
            version: p.version.clone(),
            zip_md5: p.zip_md5.clone(),
            zip_size: p.zip_size,
            package_json_md5: p.package_json_md5.clone(),
            deployed_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// Same bytes as `p`, ignoring when it was deployed.
    pub fn matches(&self, p: &ValidPlugin) -> bool {
        self.version == p.version
            && self.zip_md5 == p.zip_md5
            && self.zip_size == p.zip_size
            && self.package_json_md5 == p.package_json_md5
    }
}

/// A deploy whose outcome is not known yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// What is being deployed.
    pub deploying: Deployed,
    /// What was in place before: the version to roll back to.
    pub previous: Option<Deployed>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    format: u32,
    plugins: BTreeMap<String, Deployed>,
    /// Deploys begun and not resolved (see the module doc). Older files have none.
    #[serde(default)]
    pending: BTreeMap<String, Pending>,
    /// Plugins sideloadd installed that are no longer declared: never trusted
    /// for skipping a deploy, only for `prune` (which removes only these).
    #[serde(default)]
    undeclared: BTreeMap<String, Deployed>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("stateDir {path} is not usable: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("cannot write state file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Debug)]
pub struct State {
    dir: PathBuf,
    data: StateFile,
    /// Why the previous file was ignored, if it was.
    pub discarded: Option<String>,
}

impl State {
    /// Reads the state; creates `dir` if needed (systemd's StateDirectory normally
    /// has). Read-only use (`status`) passes `create = false`.
    pub fn load(dir: &Path, create: bool) -> Result<Self, StateError> {
        if create {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let path = dir.join(STATE_FILE);
        let (data, discarded) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<StateFile>(&bytes) {
                Ok(s) if s.format == FORMAT => (s, None),
                Ok(s) => (
                    StateFile::default(),
                    Some(format!("unknown format {}", s.format)),
                ),
                Err(e) => (StateFile::default(), Some(e.to_string())),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => (StateFile::default(), None),
            Err(source) => {
                return Err(StateError::Dir {
                    path: path.clone(),
                    source,
                });
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            data,
            discarded,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Deployed> {
        self.data.plugins.get(name)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub fn pending(&self, name: &str) -> Option<&Pending> {
        self.data.pending.get(name)
    }

    /// Journals a deploy of `deploying` (the caller saves before sending anything):
    /// the claim that something is in place moves into the entry as the version to
    /// roll back to. A step already pending keeps its `previous`: that is still
    /// the last version known to work. Returns what to roll back to.
    pub fn begin(&mut self, name: &str, deploying: Deployed) -> Option<Deployed> {
        let previous = match self.data.pending.remove(name) {
            Some(p) => p.previous,
            None => self.data.plugins.remove(name),
        };
        self.data.plugins.remove(name);
        let entry = Pending {
            deploying,
            previous: previous.clone(),
        };
        self.data.pending.insert(name.to_string(), entry);
        previous
    }

    /// The step is over and `in_place` runs (the new version, or the previous one
    /// put back).
    pub fn resolve(&mut self, name: &str, in_place: Deployed) {
        self.data.pending.remove(name);
        self.data.plugins.insert(name.to_string(), in_place);
    }

    /// The step is over and nothing known to work runs: nothing to claim, nothing
    /// to go back to.
    pub fn abandon(&mut self, name: &str) {
        self.data.pending.remove(name);
        self.data.plugins.remove(name);
    }

    /// Drops entries for plugins no longer declared, so a plugin removed and later
    /// declared again is not trusted on an old claim.
    pub fn retain(&mut self, declared: &[&str]) {
        let (keep, gone) = std::mem::take(&mut self.data.plugins)
            .into_iter()
            .partition(|(name, _)| declared.contains(&name.as_str()));
        self.data.plugins = keep;
        self.data.undeclared.extend(gone);
        // A step left pending: what was sent last is what sideloadd installed.
        let (keep, gone): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.data.pending)
            .into_iter()
            .partition(|(name, _)| declared.contains(&name.as_str()));
        self.data.pending = keep;
        self.data
            .undeclared
            .extend(gone.into_iter().map(|(n, p)| (n, p.deploying)));
        self.data
            .undeclared
            .retain(|name, _| !declared.contains(&name.as_str()));
    }

    /// Plugins sideloadd installed in an earlier run and no longer declared.
    pub fn undeclared(&self) -> Vec<(String, Deployed)> {
        self.data
            .undeclared
            .iter()
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect()
    }

    /// The plugin was uninstalled (prune) or is gone: nothing left to claim.
    pub fn forget_undeclared(&mut self, name: &str) {
        self.data.undeclared.remove(name);
    }

    pub fn forget(&mut self, name: &str) {
        self.data.plugins.remove(name);
    }

    pub fn record(&mut self, name: &str, d: Deployed) {
        self.data.plugins.insert(name.to_string(), d);
    }

    /// Replaces the file atomically: write a temporary file in the same directory,
    /// fsync it, rename it over the old one, fsync the directory. A crash leaves either
    /// the old or the new state, never a torn one.
    pub fn save(&mut self) -> Result<(), StateError> {
        self.data.format = FORMAT;
        let path = self.path();
        let err = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".state.")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(err)?;
        let bytes = serde_json::to_vec_pretty(&self.data).map_err(|e| err(io::Error::other(e)))?;
        tmp.write_all(&bytes).map_err(err)?;
        tmp.write_all(b"\n").map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
        Ok(())
    }
}

/// Where Scrypted keeps the installed zip of a plugin in its volume.
pub fn volume_zip_path(volume: &Path, name: &str, zip_md5: &str) -> PathBuf {
    volume
        .join("plugins")
        .join(name)
        .join("zip")
        .join(format!("1-{zip_md5}.zip"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(md5: &str) -> ValidPlugin {
        ValidPlugin {
            name: "@scrypted/nvr".into(),
            version: "1.0.0".into(),
            package_json: b"{}".to_vec(),
            package_json_md5: "p".into(),
            zip_path: "/x/plugin.zip".into(),
            zip_size: 10,
            zip_md5: md5.into(),
        }
    }

    #[test]
    fn round_trips_and_matches_only_the_same_bytes() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = t.path().join("state");
        let mut s = State::load(&dir, true).expect("load");
        assert!(s.get("@scrypted/nvr").is_none());
        s.record("@scrypted/nvr", Deployed::of(&plugin("aaa")));
        s.save().expect("save");
        let s = State::load(&dir, false).expect("reload");
        let d = s.get("@scrypted/nvr").expect("recorded");
        assert!(d.matches(&plugin("aaa")));
        assert!(!d.matches(&plugin("bbb")));
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
    }

    #[test]
    fn a_corrupt_file_is_discarded_not_trusted() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join(STATE_FILE), "{not json").expect("write");
        let s = State::load(t.path(), true).expect("load");
        assert!(s.discarded.is_some());
        assert!(s.get("@scrypted/nvr").is_none());
    }

    #[test]
    fn a_journaled_deploy_survives_a_reload_until_resolved() {
        let t = tempfile::tempdir().expect("tempdir");
        let mut s = State::load(t.path(), true).expect("load");
        s.record("a", Deployed::of(&plugin("old")));
        let previous = s.begin("a", Deployed::of(&plugin("new")));
        assert_eq!(previous.map(|d| d.zip_md5), Some("old".into()));
        s.save().expect("save");
        // A run killed here: the next one reads what was being done.
        let mut s = State::load(t.path(), true).expect("reload");
        assert!(s.get("a").is_none(), "not claimed in place while pending");
        let p = s.pending("a").expect("journaled").clone();
        assert_eq!(p.deploying.zip_md5, "new");
        assert_eq!(p.previous.as_ref().map(|d| d.zip_md5.as_str()), Some("old"));
        // Begun again (another attempt): the version to go back to is unchanged.
        let again = s.begin("a", Deployed::of(&plugin("newer")));
        assert_eq!(again.map(|d| d.zip_md5), Some("old".into()));
        s.resolve("a", Deployed::of(&plugin("newer")));
        assert!(s.pending("a").is_none());
        assert!(s.get("a").is_some_and(|d| d.matches(&plugin("newer"))));
    }

    #[test]
    fn retain_forgets_undeclared_plugins() {
        let t = tempfile::tempdir().expect("tempdir");
        let mut s = State::load(t.path(), true).expect("load");
        s.record("a", Deployed::of(&plugin("1")));
        s.record("b", Deployed::of(&plugin("2")));
        s.retain(&["b"]);
        assert!(s.get("a").is_none());
        assert_eq!(s.undeclared().len(), 1, "kept for prune");
        s.retain(&["a", "b"]);
        assert!(s.undeclared().is_empty(), "declared again: not prunable");
        assert!(s.get("a").is_none(), "and not trusted on the old claim");
        assert!(s.get("b").is_some());
    }
}
