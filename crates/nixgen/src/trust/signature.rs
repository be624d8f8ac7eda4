//! npm registry signatures: ECDSA P-256 over `<name>@<version>:<integrity>`
//! (docs/npm-registry.md), checked against public keys pinned in the
//! repository (`nix/plugins/registry-keys.json`), never against keys fetched
//! during the run: a registry (or whoever sits between us and it) that could
//! swap keys could swap signatures too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::{Deserialize, Serialize};

/// Where the pinned keys live, relative to `--root`.
pub const KEYS_PATH: &str = "nix/plugins/registry-keys.json";

/// The only key type npm's CLI supports, and so the only one a registry
/// following npm's conventions serves.
pub const KEY_TYPE: &str = "ecdsa-sha2-nistp256";

/// One public key, in the shape `/-/npm/v1/keys` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKey {
    /// When the registry stopped signing with it (ISO 8601), if it did.
    pub expires: Option<String>,
    pub keyid: String,
    pub keytype: String,
    pub scheme: String,
    /// Base64 of the DER SubjectPublicKeyInfo.
    pub key: String,
}

/// The keys pinned for one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryKeys {
    pub keys: Vec<PublicKey>,
}

/// Every pinned registry's keys, by registry base URL (no trailing slash).
pub type KeysFile = BTreeMap<String, RegistryKeys>;

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {path}: key {keyid} of {registry}: {why}")]
    BadKey {
        path: PathBuf,
        registry: String,
        keyid: String,
        why: String,
    },
}

/// Loads the pinned keys; a missing file pins none.
pub fn load(root: &Path) -> Result<KeysFile, KeysError> {
    let path = root.join(KEYS_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeysFile::new()),
        Err(source) => return Err(KeysError::Read { path, source }),
    };
    let file: KeysFile = serde_json::from_str(&text).map_err(|source| KeysError::Parse {
        path: path.clone(),
        source,
    })?;
    for (registry, keys) in &file {
        for k in &keys.keys {
            Verifiers::decode(k).map_err(|why| KeysError::BadKey {
                path: path.clone(),
                registry: registry.clone(),
                keyid: k.keyid.clone(),
                why,
            })?;
        }
    }
    Ok(file)
}

/// A signature as `dist.signatures` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegistrySignature {
    pub keyid: String,
    /// Base64 of a DER-encoded ECDSA signature.
    pub sig: String,
}

/// What the check found for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Signed by this pinned key.
    Verified(String),
    /// No signature, from a registry whose keys are pinned.
    Unsigned,
    /// The registry has no pinned keys: nothing could be checked.
    NotChecked,
}

/// Why a version's signatures are refused: each fails the plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("invalid registry signature by key {keyid}: {why}")]
    Invalid { keyid: String, why: String },
    #[error(
        "signed only by keys that are not pinned ({keyids}); if the registry rotated its keys, review and pin them with `nixgen keys`"
    )]
    UnknownKey { keyids: String },
    #[error(
        "signed by key {keyid}, which expired at {expires}, before this version was published ({published})"
    )]
    Expired {
        keyid: String,
        expires: String,
        published: String,
    },
}

/// One decoded key, ready to verify with.
struct Verifier {
    key: VerifyingKey,
    expires: Option<jiff::Timestamp>,
}

/// The decoded keys of the run's registry.
pub struct Verifiers {
    by_id: BTreeMap<String, Verifier>,
}

impl std::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_id.keys()).finish()
    }
}

impl Verifiers {
    /// The verifiers for `registry`, `None` when no keys are pinned for it.
    pub fn for_registry(file: &KeysFile, registry: &str) -> Option<Self> {
        let keys = file.get(registry.trim_end_matches('/'))?;
        let by_id: BTreeMap<_, _> = keys
            .keys
            .iter()
            .filter_map(|k| Some((k.keyid.clone(), Self::decode(k).ok()?)))
            .collect();
        (!by_id.is_empty()).then_some(Self { by_id })
    }

    fn decode(k: &PublicKey) -> Result<Verifier, String> {
        if k.keytype != KEY_TYPE || k.scheme != KEY_TYPE {
            return Err(format!(
                "unsupported key type {:?}/{:?}",
                k.keytype, k.scheme
            ));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(k.key.trim())
            .map_err(|e| format!("key is not base64: {e}"))?;
        let key = VerifyingKey::from_public_key_der(&der)
            .map_err(|e| format!("not a P-256 public key: {e}"))?;
        let expires = match &k.expires {
            None => None,
            Some(t) => Some(
                t.parse::<jiff::Timestamp>()
                    .map_err(|e| format!("expires {t:?} is not a timestamp: {e}"))?,
            ),
        };
        Ok(Verifier { key, expires })
    }

    /// Checks `signatures` of `name@version` with integrity `integrity` (the
    /// registry's `dist.integrity`, exactly as it spells it). Every signature
    /// by a pinned key must verify and at least one must exist; signatures
    /// by other keys are ignored next to a verified one. A key that expired
    /// is accepted only for versions published before it expired; when the
    /// publish time is unknown its expiry is not held against it (see
    /// docs/npm-registry.md).
    pub fn check(
        &self,
        id: &str,
        integrity: &str,
        signatures: &[RegistrySignature],
        published: Option<jiff::Timestamp>,
    ) -> Result<Status, SignatureError> {
        if signatures.is_empty() {
            return Ok(Status::Unsigned);
        }
        let message = format!("{id}:{integrity}");
        let mut verified = None;
        for s in signatures {
            let Some(v) = self.by_id.get(&s.keyid) else {
                continue;
            };
            verify_one(v, &s.keyid, &s.sig, message.as_bytes())?;
            if let (Some(expires), Some(published)) = (v.expires, published)
                && published > expires
            {
                return Err(SignatureError::Expired {
                    keyid: s.keyid.clone(),
                    expires: expires.to_string(),
                    published: published.to_string(),
                });
            }
            verified.get_or_insert_with(|| s.keyid.clone());
        }
        verified.map(Status::Verified).ok_or_else(|| {
            let ids: Vec<String> = signatures
                .iter()
                .map(|s| crate::escape::nix_comment(&s.keyid))
                .collect();
            SignatureError::UnknownKey {
                keyids: ids.join(", "),
            }
        })
    }
}

fn verify_one(v: &Verifier, keyid: &str, sig: &str, message: &[u8]) -> Result<(), SignatureError> {
    let invalid = |why: String| SignatureError::Invalid {
        keyid: keyid.to_owned(),
        why,
    };
    let der = base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .map_err(|_| invalid("the signature is not base64".into()))?;
    let sig = Signature::from_der(&der).map_err(|_| invalid("the signature is not DER".into()))?;
    v.key
        .verify(message, &sig)
        .map_err(|_| invalid("it does not match the name, version and integrity".into()))
}

/// `dist.signatures` of a version document; anything malformed counts as
/// absent entries, which the caller reports as unsigned or unknown.
pub fn signatures_of(doc: &serde_json::Value) -> Vec<RegistrySignature> {
    doc.get("dist")
        .and_then(|d| d.get("signatures"))
        .and_then(serde_json::Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|s| serde_json::from_value(s.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// npm's keyid: `SHA256:` and the unpadded base64 of the SHA-256 of the
/// key in SSH's wire format (as `ssh-keygen -l` fingerprints it; the key
/// type names are SSH's too). Checked against the pinned file in tests, so
/// a typo in a key or its id shows.
pub fn fingerprint(key_b64: &str) -> Option<String> {
    use sha2::Digest as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(key_b64.trim())
        .ok()?;
    let key = VerifyingKey::from_public_key_der(&der).ok()?;
    let point = key.to_encoded_point(false);
    let mut blob = Vec::new();
    for part in [KEY_TYPE.as_bytes(), b"nistp256", point.as_bytes()] {
        blob.extend_from_slice(&u32::try_from(part.len()).ok()?.to_be_bytes());
        blob.extend_from_slice(part);
    }
    let digest = sha2::Sha256::digest(&blob);
    Some(format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;

    fn key_pair(seed: u8) -> (SigningKey, PublicKey) {
        let signing = SigningKey::from_slice(&[seed; 32]).expect("scalar");
        let der = signing.verifying_key().to_public_key_der().expect("der");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
        let public = PublicKey {
            expires: None,
            keyid: fingerprint(&b64).expect("fingerprint"),
            keytype: KEY_TYPE.into(),
            scheme: KEY_TYPE.into(),
            key: b64,
        };
        (signing, public)
    }

    fn sign(k: &SigningKey, keyid: &str, message: &str) -> RegistrySignature {
        let sig: Signature = k.sign(message.as_bytes());
        RegistrySignature {
            keyid: keyid.into(),
            sig: base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes()),
        }
    }

    fn verifiers(keys: Vec<PublicKey>) -> Verifiers {
        let file = KeysFile::from([("https://r.example".into(), RegistryKeys { keys })]);
        Verifiers::for_registry(&file, "https://r.example/").expect("keys")
    }

    #[test]
    fn valid_invalid_missing_and_unknown() {
        let (k, p) = key_pair(7);
        let (other, other_pub) = key_pair(9);
        let v = verifiers(vec![p.clone()]);
        let good = sign(&k, &p.keyid, "@s/x@1.0.0:sha512-A");
        assert_eq!(
            v.check("@s/x@1.0.0", "sha512-A", std::slice::from_ref(&good), None),
            Ok(Status::Verified(p.keyid.clone()))
        );
        // Another version, or another integrity, under the same signature.
        for (id, integrity) in [("@s/x@1.0.1", "sha512-A"), ("@s/x@1.0.0", "sha512-B")] {
            assert!(matches!(
                v.check(id, integrity, std::slice::from_ref(&good), None),
                Err(SignatureError::Invalid { .. })
            ));
        }
        // Signed by another key that claims the pinned key's id.
        let forged = sign(&other, &p.keyid, "@s/x@1.0.0:sha512-A");
        assert!(matches!(
            v.check("@s/x@1.0.0", "sha512-A", &[forged], None),
            Err(SignatureError::Invalid { .. })
        ));
        let foreign = sign(&other, &other_pub.keyid, "@s/x@1.0.0:sha512-A");
        assert!(matches!(
            v.check(
                "@s/x@1.0.0",
                "sha512-A",
                std::slice::from_ref(&foreign),
                None
            ),
            Err(SignatureError::UnknownKey { .. })
        ));
        assert_eq!(
            v.check("@s/x@1.0.0", "sha512-A", &[foreign, good], None),
            Ok(Status::Verified(p.keyid))
        );
        assert_eq!(
            v.check("@s/x@1.0.0", "sha512-A", &[], None),
            Ok(Status::Unsigned)
        );
        let garbage = RegistrySignature {
            keyid: other_pub.keyid.clone(),
            sig: "%%%".into(),
        };
        let v2 = verifiers(vec![other_pub]);
        assert!(matches!(
            v2.check("@s/x@1.0.0", "sha512-A", &[garbage], None),
            Err(SignatureError::Invalid { .. })
        ));
    }

    #[test]
    fn expired_keys_only_for_versions_published_before() {
        let (k, mut p) = key_pair(5);
        p.expires = Some("2025-01-29T00:00:00.000Z".into());
        let v = verifiers(vec![p.clone()]);
        let s = sign(&k, &p.keyid, "x@1.0.0:sha512-A");
        let before: jiff::Timestamp = "2024-06-01T00:00:00Z".parse().expect("ts");
        let after: jiff::Timestamp = "2025-06-01T00:00:00Z".parse().expect("ts");
        assert!(
            v.check(
                "x@1.0.0",
                "sha512-A",
                std::slice::from_ref(&s),
                Some(before)
            )
            .is_ok()
        );
        assert!(
            v.check("x@1.0.0", "sha512-A", std::slice::from_ref(&s), None)
                .is_ok()
        );
        assert!(matches!(
            v.check("x@1.0.0", "sha512-A", &[s], Some(after)),
            Err(SignatureError::Expired { .. })
        ));
    }

    #[test]
    fn no_keys_for_another_registry_and_bad_keys_are_refused() {
        let (_, p) = key_pair(3);
        let file = KeysFile::from([(
            "https://r.example".into(),
            RegistryKeys {
                keys: vec![p.clone()],
            },
        )]);
        assert!(Verifiers::for_registry(&file, "http://127.0.0.1:8765").is_none());
        let mut bad = p;
        bad.key = "AAAA".into();
        assert!(Verifiers::decode(&bad).is_err());
        bad.keytype = "ed25519".into();
        assert!(Verifiers::decode(&bad).is_err());
    }

    /// A signature the public registry served (published in a third party's
    /// recovery notes, see docs/npm-registry.md) verifies under the pinned
    /// key: the message format and the key are npm's, not a guess.
    #[test]
    fn a_real_registry_signature_verifies_under_the_pinned_key() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let file = load(&root).expect("committed keys");
        let npm = Verifiers::for_registry(&file, "https://registry.npmjs.org").expect("npm keys");
        let keyid = "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U";
        let cases = [
            (
                "2.1.97",
                "sha512-8lKM/rFctBl+82bQ+0g0Lkbt9tJU/zYKAjWisNUq436/386n/VZQbnyjnibGkyqqB6mrX/3ub/cpFlpCu4FXLg==",
                "MEUCICG6rML8JBFMxvrHFFDhofBztC5mvsOLqHbO7G4bdU4MAiEA/TuR+/HzSBvE2e/5XokcLHWOLaw604eahZ4Hy+IFTew=",
            ),
            (
                "2.1.98",
                "sha512-qecREauMWXHplkpjqsuDuUv4ww+NprMl71k9sMuLkZU7qwjLMkTPxRBjuKvZWWMrAPvZWdGZE9LljUTfCQ1lWQ==",
                "MEQCIGvolW/eLJuocfuN94cinl0Vz9arMrshmIhulXk/9JEBAiAW18CskQ+uEkWf90x4Dc0TqDoRBQ7lmCAXhpXpqbEJDA==",
            ),
        ];
        for (version, integrity, sig) in cases {
            let id = format!("@anthropic-ai/claude-code@{version}");
            let s = RegistrySignature {
                keyid: keyid.into(),
                sig: sig.into(),
            };
            assert_eq!(
                npm.check(&id, integrity, std::slice::from_ref(&s), None),
                Ok(Status::Verified(keyid.into())),
                "{id}"
            );
            // The same signature does not cover the other version.
            assert!(npm.check(&format!("{id}x"), integrity, &[s], None).is_err());
        }
    }

    /// The committed npm keys parse, and each keyid is its key's SHA-256
    /// fingerprint (how npm derives them), so a typo in either shows.
    #[test]
    fn committed_keys_are_consistent() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let file = load(&root).expect("committed keys");
        for keys in file.values() {
            for k in &keys.keys {
                assert_eq!(fingerprint(&k.key).as_deref(), Some(k.keyid.as_str()));
            }
        }
    }
}
