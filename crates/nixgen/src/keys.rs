//! `nixgen keys`: pins the registry's public signing keys in the repository.
//! The only way keys change: `nixgen update` never fetches them, so a
//! registry (or anyone between it and us) cannot swap keys and signatures
//! together. The change is shown, for the commit that pins it to be reviewed.

use std::fmt::Write as _;
use std::path::Path;

use crate::registry::{FetchError, Registry};
use crate::trust::signature::{self, KEYS_PATH, KeysFile, PublicKey, RegistryKeys, Verifiers};

#[derive(Debug, thiserror::Error)]
pub enum KeysCmdError {
    #[error(
        "{0} serves no signing keys (/-/npm/v1/keys answers 404): its versions cannot be verified"
    )]
    NoKeys(String),
    #[error(transparent)]
    Fetch(FetchError),
    #[error("{url} answered keys nixgen cannot use: {why}")]
    Unusable { url: String, why: String },
    #[error(transparent)]
    Pinned(#[from] signature::KeysError),
    #[error(transparent)]
    Write(#[from] crate::tree::TreeError),
}

/// What changed for one registry.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyChange {
    pub added: Vec<PublicKey>,
    pub removed: Vec<PublicKey>,
    /// Same keyid, other key material or expiry: (old, new).
    pub changed: Vec<(PublicKey, PublicKey)>,
}

impl KeyChange {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// The change as people review it: every key in full.
    pub fn text(&self, registry: &str) -> String {
        if self.is_empty() {
            return format!("{registry}: keys unchanged\n");
        }
        let mut s = format!("{registry}: keys changed\n");
        let show = |k: &PublicKey| {
            let expires = k.expires.as_deref().unwrap_or("never");
            format!("{} ({}, expires {expires}) {}", k.keyid, k.keytype, k.key)
        };
        for k in &self.added {
            let _ = writeln!(s, "  + {}", show(k));
        }
        for k in &self.removed {
            let _ = writeln!(s, "  - {}", show(k));
        }
        for (old, new) in &self.changed {
            let _ = writeln!(s, "  - {}\n  + {}", show(old), show(new));
        }
        s
    }
}

/// Compares the pinned keys with the registry's.
pub fn diff(old: &[PublicKey], new: &[PublicKey]) -> KeyChange {
    let find = |list: &[PublicKey], id: &str| list.iter().find(|k| k.keyid == id).cloned();
    let mut change = KeyChange::default();
    for k in new {
        match find(old, &k.keyid) {
            None => change.added.push(k.clone()),
            Some(o) if o != *k => change.changed.push((o, k.clone())),
            Some(_) => {}
        }
    }
    change.removed = old
        .iter()
        .filter(|k| find(new, &k.keyid).is_none())
        .cloned()
        .collect();
    change
}

/// Fetches the registry's keys, checks each is a usable P-256 key, and
/// (unless `dry_run`) pins them in place of the registry's old ones.
pub async fn refresh(
    root: &Path,
    registry: &Registry,
    dry_run: bool,
) -> Result<KeyChange, KeysCmdError> {
    let (url, doc) = registry.keys().await.map_err(|e| match e {
        FetchError::NotFound { .. } => KeysCmdError::NoKeys(registry.base().to_owned()),
        other => KeysCmdError::Fetch(other),
    })?;
    let unusable = |why: String| KeysCmdError::Unusable {
        url: url.to_string(),
        why,
    };
    let fresh: Vec<PublicKey> = doc
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| unusable("no `keys` list".into()))?
        .iter()
        .map(|k| serde_json::from_value::<Lenient>(k.clone()).map(PublicKey::from))
        .collect::<Result<_, _>>()
        .map_err(|e| unusable(e.to_string()))?;
    let entry = RegistryKeys { keys: fresh };
    let probe = KeysFile::from([(registry.base().to_owned(), entry.clone())]);
    if Verifiers::for_registry(&probe, registry.base()).is_none() {
        return Err(unusable("not one ecdsa-sha2-nistp256 key".into()));
    }
    let mut file = signature::load(root)?;
    let old = file
        .get(registry.base())
        .map(|k| k.keys.clone())
        .unwrap_or_default();
    let change = diff(&old, &entry.keys);
    if !dry_run && !change.is_empty() {
        file.insert(registry.base().to_owned(), entry);
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        crate::tree::write_data(&root.join(KEYS_PATH), &text)?;
    }
    Ok(change)
}

/// A key as the registry answers it: fields nixgen does not pin (npm's
/// `pemkey`, say) are dropped rather than refused.
#[derive(serde::Deserialize)]
struct Lenient {
    expires: Option<String>,
    keyid: String,
    keytype: String,
    scheme: String,
    key: String,
}

impl From<Lenient> for PublicKey {
    fn from(k: Lenient) -> Self {
        Self {
            expires: k.expires,
            keyid: k.keyid,
            keytype: k.keytype,
            scheme: k.scheme,
            key: k.key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, material: &str) -> PublicKey {
        PublicKey {
            expires: None,
            keyid: id.into(),
            keytype: signature::KEY_TYPE.into(),
            scheme: signature::KEY_TYPE.into(),
            key: material.into(),
        }
    }

    #[test]
    fn diff_shows_added_removed_and_changed() {
        let old = [key("a", "1"), key("b", "2"), key("c", "3")];
        let new = [key("a", "1"), key("b", "9"), key("d", "4")];
        let c = diff(&old, &new);
        assert_eq!(c.added, [key("d", "4")]);
        assert_eq!(c.removed, [key("c", "3")]);
        assert_eq!(c.changed, [(key("b", "2"), key("b", "9"))]);
        let text = c.text("https://r");
        assert!(
            text.contains("  + d (ecdsa-sha2-nistp256, expires never) 4\n"),
            "{text}"
        );
        assert!(text.contains("  - c "), "{text}");
        assert!(diff(&old, &old).is_empty());
    }
}
