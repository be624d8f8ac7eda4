//! Pins the model files the Python detection plugins download from the
//! Hugging Face repository `scrypted/plugin-models`: the repository's
//! revision, and each file's path, size and sha256, as the Hub API lists
//! them (docs/huggingface-api.md). For a file stored in LFS the listed LFS
//! object id is its sha256, so nothing is downloaded; a small file kept in git
//! is downloaded once to hash it. The base URL is `HF_ENDPOINT`, as
//! `huggingface_hub` reads it, so a mirror works.

use base64::Engine as _;
use serde::Deserialize;
use sha2::Digest as _;

use crate::python::models::REPOSITORY;
use crate::registry::{FetchError, HttpSettings, Registry};

/// `huggingface_hub`'s default endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A file kept in git, hashed after download, may be at most this large
/// (model weights are in LFS; these are labels and configs).
const GIT_FILE_LIMIT: u64 = 16 << 20;

/// One pinned file, fetched by Nix from `url` with `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    /// Path in the repository: `<plugin>/<model>/<file>`.
    pub path: String,
    pub url: String,
    pub size: u64,
    /// `sha256-<base64>`.
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("the Hub names revision {0:?}, not a commit id")]
    BadRevision(String),
    #[error("the Hub lists no file under {0}")]
    NoFiles(String),
    #[error("the Hub lists {path:?} under {dir}: {why}")]
    BadEntry {
        dir: String,
        path: String,
        why: &'static str,
    },
}

#[derive(Deserialize)]
struct Revision {
    sha: String,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    oid: String,
    size: u64,
}

/// The Hub at one endpoint.
#[derive(Debug, Clone)]
pub struct Hub {
    client: Registry,
}

impl Hub {
    pub fn new(endpoint: &str, settings: HttpSettings) -> Result<Self, FetchError> {
        Ok(Self {
            client: Registry::new(endpoint, None, settings)?,
        })
    }

    pub fn endpoint(&self) -> &str {
        self.client.base()
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, HubError> {
        let text = format!("{}/{path}", self.endpoint());
        reqwest::Url::parse(&text).map_err(|_| HubError::BadRevision(text))
    }

    /// The commit `main` of the repository points at now.
    pub async fn revision(&self) -> Result<String, HubError> {
        let url = self.url(&format!("api/models/{REPOSITORY}/revision/main"))?;
        let r: Revision = self.client.get_json(url).await?;
        let commit = r.sha.len() == 40 && r.sha.chars().all(|c| c.is_ascii_hexdigit());
        if !commit {
            return Err(HubError::BadRevision(crate::escape::clean_text(&r.sha)));
        }
        Ok(r.sha.to_ascii_lowercase())
    }

    /// Every file under `dir` (`<plugin>/<model>`) at `revision`, pinned.
    pub async fn files(&self, revision: &str, dir: &str) -> Result<Vec<ModelFile>, HubError> {
        let url = self.url(&format!(
            "api/models/{REPOSITORY}/tree/{revision}/{dir}?recursive=true"
        ))?;
        let entries: Vec<Entry> = self.client.get_json(url).await?;
        let mut out = Vec::new();
        for e in entries.into_iter().filter(|e| e.kind == "file") {
            out.push(self.pin(revision, dir, e).await?);
        }
        if out.is_empty() {
            return Err(HubError::NoFiles(dir.to_owned()));
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn pin(&self, revision: &str, dir: &str, e: Entry) -> Result<ModelFile, HubError> {
        let bad = |why| HubError::BadEntry {
            dir: dir.to_owned(),
            path: crate::escape::clean_text(&e.path)
                .chars()
                .take(200)
                .collect(),
            why,
        };
        let inside = e.path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'));
        let safe = e.path.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
        if !inside || !safe {
            return Err(bad("not a plain path inside the model's directory"));
        }
        let url = format!(
            "{}/{REPOSITORY}/resolve/{revision}/{}",
            self.endpoint(),
            e.path
        );
        let (size, digest) = match &e.lfs {
            Some(lfs) => (
                lfs.size,
                decode_sha256(&lfs.oid).ok_or_else(|| bad("LFS oid is not a sha256"))?,
            ),
            None if e.size > GIT_FILE_LIMIT => return Err(bad("too large a file outside LFS")),
            None => {
                let mut body = Vec::new();
                let parsed = reqwest::Url::parse(&url).map_err(|_| bad("no URL"))?;
                self.client.tarball(&parsed, &mut body).await?;
                if body.len() as u64 != e.size {
                    return Err(bad("downloaded size differs from the listed size"));
                }
                (e.size, sha2::Sha256::digest(&body).to_vec())
            }
        };
        let hash = format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        Ok(ModelFile {
            path: e.path,
            url,
            size,
            hash,
        })
    }
}

fn decode_sha256(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfs_oids_are_sha256_digests() {
        let d = decode_sha256(&"ab".repeat(32)).expect("hex");
        assert_eq!(d, vec![0xab; 32]);
        assert!(decode_sha256("abc").is_none() && decode_sha256(&"zz".repeat(32)).is_none());
    }
}
