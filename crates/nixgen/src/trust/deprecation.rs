//! Deprecation: npm's `deprecated` message on a version. A deprecated
//! version is never pinned, and a plugin whose `latest` is deprecated keeps
//! its pin (Scrypted's own updater uninstalls such plugins; a host that pins
//! one should not lose it because its author gave up on it).

use serde_json::Value;

/// npm's `deprecated` of one version document: a non-empty message, or
/// `true` (which some registries send).
pub fn message(version_doc: &Value) -> Option<String> {
    match version_doc.get("deprecated") {
        Some(Value::String(why)) if !why.trim().is_empty() => Some(crate::escape::nix_comment(why)),
        Some(Value::Bool(true)) => Some("no reason given".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages() {
        assert_eq!(
            message(&json!({"deprecated": "use\nfoo"})).as_deref(),
            Some("use foo")
        );
        assert_eq!(
            message(&json!({"deprecated": true})).as_deref(),
            Some("no reason given")
        );
        for none in [
            json!({"deprecated": ""}),
            json!({"deprecated": false}),
            json!({}),
        ] {
            assert_eq!(message(&none), None, "{none}");
        }
    }
}
