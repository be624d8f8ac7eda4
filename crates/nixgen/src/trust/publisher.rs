//! Who published a version. The npm worms spread through stolen publisher
//! credentials, so a new person publishing a plugin is worth a look before
//! the pin moves; the publisher is recorded next to each pin to compare.

use serde_json::Value;

/// The `# Published by:` comment line of a generated package.nix.
pub const LINE_PREFIX: &str = "# Published by: ";

/// `_npmUser` (the account that published this version), else the
/// maintainers list, else `None`. One line, as recorded in package.nix.
pub fn of(doc: &Value) -> Option<String> {
    if let Some(user) = doc.get("_npmUser").and_then(person) {
        return Some(user);
    }
    let maintainers: Vec<String> = doc
        .get("maintainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(person)
        .collect();
    (!maintainers.is_empty()).then(|| format!("maintainers {}", maintainers.join(", ")))
}

/// `name <email>` from an npm person (object or string), sanitized to one
/// printable line.
fn person(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let field = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").trim();
            match (field("name"), field("email")) {
                ("", "") => return None,
                (name, "") => name.to_owned(),
                ("", email) => format!("<{email}>"),
                (name, email) => format!("{name} <{email}>"),
            }
        }
        _ => return None,
    };
    let line = crate::escape::nix_comment(&s);
    (!line.trim().is_empty()).then_some(line)
}

/// The publisher a generated file records, `None` for files written before
/// nixgen recorded one (or recording that none was known).
pub fn recorded(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(LINE_PREFIX))
        .map(str::to_owned)
        .filter(|p| p != UNKNOWN)
}

/// Whether `to` is the same publisher as `from`, as far as the records
/// tell: the same text, or a person who was on the other's maintainers list
/// (the registry that drops `_npmUser` still lists maintainers).
pub fn same(from: &str, to: Option<&str>) -> bool {
    let Some(to) = to else {
        return false;
    };
    let listed = |list: &str, person: &str| {
        list.strip_prefix("maintainers ")
            .is_some_and(|l| l.split(", ").any(|p| p == person))
    };
    from == to || listed(from, to) || listed(to, from)
}

/// What is recorded when the registry names nobody.
pub const UNKNOWN: &str = "unknown";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn npm_user_then_maintainers() {
        let doc = json!({
            "_npmUser": {"name": "koush", "email": "k@example.com"},
            "maintainers": [{"name": "a", "email": "a@x"}, "b <b@x>"]
        });
        assert_eq!(of(&doc).as_deref(), Some("koush <k@example.com>"));
        let doc = json!({"maintainers": [{"name": "a", "email": "a@x"}, "b\n<b@x>", {}]});
        assert_eq!(of(&doc).as_deref(), Some("maintainers a <a@x>, b <b@x>"));
        assert_eq!(of(&json!({"maintainers": []})), None);
        let text = format!("# x\n{LINE_PREFIX}koush <k@example.com>\n{{ }}\n");
        assert_eq!(recorded(&text).as_deref(), Some("koush <k@example.com>"));
        assert_eq!(recorded(&format!("{LINE_PREFIX}{UNKNOWN}\n")), None);
        assert_eq!(recorded("# x\n"), None);
        assert!(same("maintainers a <a@x>, b <b@x>", Some("b <b@x>")));
        assert!(same("b <b@x>", Some("maintainers a <a@x>, b <b@x>")));
        assert!(!same("b <b@x>", Some("mallory <m@x>")));
        assert!(!same("b <b@x>", None));
    }
}
