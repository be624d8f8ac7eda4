//! Plugin names: the bare part after `@scrypted/`, also used as a directory
//! name, so a hostile registry must not be able to smuggle a path through it.

use std::fmt;

/// A validated plugin name: `[a-z0-9][a-z0-9._-]*`, at most 214 bytes (npm's
/// limit), never `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PluginName(String);

pub const SCOPE: &str = "@scrypted/";

#[derive(Debug, thiserror::Error)]
#[error("invalid plugin name {0:?}: must match [a-z0-9][a-z0-9._-]* (at most 214 characters)")]
pub struct InvalidName(pub String);

impl PluginName {
    pub fn new(s: &str) -> Result<Self, InvalidName> {
        let mut bytes = s.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
        // The first-character rule already excludes "." and "..", the check
        // stays so the invariant does not hinge on that subtlety.
        if first_ok && rest_ok && s.len() <= 214 && s != "." && s != ".." {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidName(s.to_owned()))
        }
    }

    /// Parses `@scrypted/<name>`; `None` for other scopes or unscoped names.
    pub fn from_scoped(full: &str) -> Option<Result<Self, InvalidName>> {
        full.strip_prefix(SCOPE).map(Self::new)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn scoped(&self) -> String {
        format!("{SCOPE}{}", self.0)
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PluginName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s.strip_prefix(SCOPE).unwrap_or(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_names() {
        for n in ["nvr", "prebuffer-mixin", "tensorflow-lite", "a.b_c", "0x"] {
            assert!(PluginName::new(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn rejects_paths_and_junk() {
        for n in [
            "",
            ".",
            "..",
            "../../etc",
            "a/b",
            "-x",
            ".hidden",
            "_x",
            "Nvr",
            "a b",
            "a\0",
            "é",
            "a\\b",
        ] {
            assert!(PluginName::new(n).is_err(), "{n:?}");
        }
        assert!(PluginName::new(&"a".repeat(215)).is_err());
    }

    #[test]
    fn scope_handling() {
        assert_eq!(
            PluginName::from_scoped("@scrypted/nvr")
                .and_then(Result::ok)
                .map(|n| n.scoped()),
            Some("@scrypted/nvr".into())
        );
        assert!(PluginName::from_scoped("@other/nvr").is_none());
        assert!(matches!(
            PluginName::from_scoped("@scrypted/../x"),
            Some(Err(_))
        ));
        assert_eq!(
            "@scrypted/nvr"
                .parse::<PluginName>()
                .map(|n| n.to_string())
                .ok(),
            Some("nvr".into())
        );
    }
}
