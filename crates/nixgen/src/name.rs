//! Plugin names: an npm package name and the attribute/directory name it maps
//! to. The directory name ends up in paths, so a hostile registry must not be
//! able to smuggle a path through it, and two npm names must never share one.
//!
//! The mapping (also in README.md, section "Plugin names"):
//!
//! | npm name | attribute and directory |
//! | --- | --- |
//! | `@scrypted/<name>` | `<name>` |
//! | `@<scope>/<name>` (any other scope) | `<scope>--<name>` |
//! | `<name>` (unscoped) | `_--<name>` |
//!
//! Every part matches `[a-z0-9][a-z0-9._-]*`; an official name may not contain
//! `--`, a scope may neither contain `--` nor end with `-`. So a directory name
//! without `--` is official, and otherwise the first `--` splits it into scope
//! (`_` for none: npm scopes cannot start with `_`) and name: one directory
//! name per npm name and back.

use std::fmt;

/// A validated plugin name. Ordered, compared and shown by its directory name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginName {
    /// The attribute and directory name.
    key: String,
    /// `None` for an unscoped package.
    scope: Option<String>,
    /// The npm name without its scope.
    bare: String,
}

impl serde::Serialize for PluginName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key)
    }
}

pub const OFFICIAL_SCOPE: &str = "scrypted";
pub const SCOPE: &str = "@scrypted/";
const SEPARATOR: &str = "--";
const UNSCOPED: &str = "_";
/// npm's limit for a whole name.
const MAX_LEN: usize = 214;

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid plugin name {0:?}: expected an npm name (`@scope/name` or `name`) or a directory name (`name` for @scrypted/name, `scope--name`, `_--name` for an unscoped package), each part matching [a-z0-9][a-z0-9._-]*"
)]
pub struct InvalidName(pub String);

fn part_ok(s: &str) -> bool {
    let mut bytes = s.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

fn scope_ok(s: &str) -> bool {
    part_ok(s) && !s.contains(SEPARATOR) && !s.ends_with('-') && s != OFFICIAL_SCOPE
}

impl PluginName {
    fn build(scope: Option<&str>, bare: &str, raw: &str) -> Result<Self, InvalidName> {
        let bad = || InvalidName(raw.to_owned());
        if !part_ok(bare) {
            return Err(bad());
        }
        let key = match scope {
            Some(OFFICIAL_SCOPE) if bare.contains(SEPARATOR) => return Err(bad()),
            Some(OFFICIAL_SCOPE) => bare.to_owned(),
            Some(s) if scope_ok(s) => format!("{s}{SEPARATOR}{bare}"),
            Some(_) => return Err(bad()),
            None => format!("{UNSCOPED}{SEPARATOR}{bare}"),
        };
        let npm_len = scope.map_or(0, |s| s.len() + 2) + bare.len();
        if npm_len > MAX_LEN {
            return Err(bad());
        }
        Ok(Self {
            key,
            scope: scope.map(str::to_owned),
            bare: bare.to_owned(),
        })
    }

    /// Parses a directory (attribute) name: `nvr`, `scope--name`, `_--name`.
    pub fn new(key: &str) -> Result<Self, InvalidName> {
        let name = match key.split_once(SEPARATOR) {
            None => Self::build(Some(OFFICIAL_SCOPE), key, key),
            Some((UNSCOPED, bare)) => Self::build(None, bare, key),
            Some((scope, bare)) => Self::build(Some(scope), bare, key),
        }?;
        // Only the canonical spelling: `scrypted--nvr` is not a second `nvr`.
        if name.key == key {
            Ok(name)
        } else {
            Err(InvalidName(key.to_owned()))
        }
    }

    /// Parses an npm name: `@scope/name` or `name`.
    pub fn from_npm(npm: &str) -> Result<Self, InvalidName> {
        match npm.strip_prefix('@') {
            Some(scoped) => match scoped.split_once('/') {
                Some((scope, bare)) => Self::build(Some(scope), bare, npm),
                None => Err(InvalidName(npm.to_owned())),
            },
            None => Self::build(None, npm, npm),
        }
    }

    /// Parses `@scrypted/<name>`; `None` for other scopes or unscoped names.
    pub fn from_scoped(full: &str) -> Option<Result<Self, InvalidName>> {
        full.strip_prefix(SCOPE)
            .map(|bare| Self::build(Some(OFFICIAL_SCOPE), bare, full))
    }

    /// The attribute and directory name.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The full npm name, `@scrypted/nvr`.
    pub fn npm(&self) -> String {
        match &self.scope {
            Some(s) => format!("@{s}/{}", self.bare),
            None => self.bare.clone(),
        }
    }

    /// The scope without `@`, `None` for an unscoped package.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The npm name without its scope (the tarball's file name starts with it).
    pub fn bare(&self) -> &str {
        &self.bare
    }

    pub fn is_official(&self) -> bool {
        self.scope.as_deref() == Some(OFFICIAL_SCOPE)
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// An npm name (`@scope/name`) or a directory name (`nvr`, `scope--name`).
impl std::str::FromStr for PluginName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('@') {
            Self::from_npm(s)
        } else {
            Self::new(s)
        }
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
            "scrypted--nvr",
            "a---b",
            "_--",
            "--x",
            "x--",
        ] {
            assert!(PluginName::new(n).is_err(), "{n:?}");
        }
        assert!(PluginName::new(&"a".repeat(215)).is_err());
        for n in [
            "@scrypted/a--b",
            "@a-/b",
            "@a--b/c",
            "@_x/y",
            "@x",
            "@/x",
            "@x/",
            "@X/y",
            "@a/b/c",
        ] {
            assert!(PluginName::from_npm(n).is_err(), "{n:?}");
        }
    }

    #[test]
    fn mapping_both_ways() {
        for (npm, key) in [
            ("@scrypted/nvr", "nvr"),
            (
                "@apocaliss92/scrypted-frigate-bridge",
                "apocaliss92--scrypted-frigate-bridge",
            ),
            (
                "@vityevato/hikvision-doorbell",
                "vityevato--hikvision-doorbell",
            ),
            ("@a/b--c", "a--b--c"),
            ("@a-b/c", "a-b--c"),
            ("scrypted-foo", "_--scrypted-foo"),
        ] {
            let from_npm = PluginName::from_npm(npm).expect(npm);
            let from_key = PluginName::new(key).expect(key);
            assert_eq!(from_npm, from_key, "{npm} <-> {key}");
            assert_eq!((from_npm.as_str(), from_key.npm().as_str()), (key, npm));
            if npm.starts_with('@') {
                assert_eq!(npm.parse::<PluginName>().expect(npm), from_key);
            }
            assert_eq!(key.parse::<PluginName>().expect(key), from_key);
        }
        let official = PluginName::new("nvr").expect("nvr");
        assert!(official.is_official() && official.bare() == "nvr");
        let other = PluginName::new("_--x").expect("x");
        assert!(other.scope().is_none() && !other.is_official());
    }

    /// Every valid npm name maps to its own directory, and back.
    #[test]
    fn no_two_npm_names_share_a_directory() {
        let parts = [
            "a", "a-", "-a", "a--b", "b", "scrypted", "_", "a.b", "x-", "0",
        ];
        let mut seen = std::collections::BTreeMap::new();
        for scope in parts.iter().map(|s| Some(*s)).chain([None]) {
            for bare in parts {
                let npm = scope.map_or_else(|| bare.to_owned(), |s| format!("@{s}/{bare}"));
                let Ok(n) = PluginName::from_npm(&npm) else {
                    continue;
                };
                let back = PluginName::new(n.as_str()).expect("a key parses back");
                assert_eq!(back.npm(), npm);
                if let Some(other) = seen.insert(n.as_str().to_owned(), npm.clone()) {
                    panic!("{npm} and {other} both map to {}", n.as_str());
                }
            }
        }
        assert!(seen.len() > 10);
    }

    proptest::proptest! {
        /// Any two valid npm names differ in their directory names, and a
        /// directory name gives its npm name back.
        #[test]
        fn directory_names_are_one_to_one(
            a in "(@[a-z0-9][a-z0-9._-]{0,6}/)?[a-z0-9][a-z0-9._-]{0,8}",
            b in "(@[a-z0-9][a-z0-9._-]{0,6}/)?[a-z0-9][a-z0-9._-]{0,8}",
        ) {
            if let (Ok(x), Ok(y)) = (PluginName::from_npm(&a), PluginName::from_npm(&b)) {
                proptest::prop_assert_eq!(x.as_str() == y.as_str(), a == b, "{} {}", a, b);
                let back = PluginName::new(x.as_str()).map(|n| n.npm());
                proptest::prop_assert_eq!(back.ok(), Some(a.clone()));
            }
        }
    }

    #[test]
    fn scope_handling() {
        assert_eq!(
            PluginName::from_scoped("@scrypted/nvr")
                .and_then(Result::ok)
                .map(|n| n.npm()),
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
