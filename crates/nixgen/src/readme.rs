//! The plugin table in README.md, between two marker lines. Only the text
//! between them is ever rewritten.

use std::fmt::Write as _;

use crate::cell::cell;
use crate::needs::NOT_SCANNED;

pub const README: &str = "README.md";
pub const BEGIN: &str = "<!-- nixgen:plugins:begin -->";
pub const END: &str = "<!-- nixgen:plugins:end -->";

/// One generated plugin as the tree pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub npm_name: String,
    pub version: String,
    pub needs: Vec<String>,
    /// Native npm dependencies pinned in a lock.
    pub locked: bool,
}

/// What a row says for a plugin whose zip was not scanned: short, because
/// where the tree is generated from a mirror without tarballs it is most
/// rows; the note under the table says what it means, once.
const NOT_SCANNED_CELL: &str = "not scanned";
const NOT_SCANNED_NOTE: &str = "*not scanned*: its plugin.zip could not be downloaded where this table was generated, so what it fetches at runtime is unknown (see [What each plugin still fetches](#what-each-plugin-still-fetches)).";

/// The Offline cell: `yes`, `no: <needs>`, or `not scanned`.
fn offline(needs: &[String]) -> String {
    let known: Vec<&str> = needs
        .iter()
        .map(String::as_str)
        .filter(|n| *n != NOT_SCANNED)
        .collect();
    let scanned = known.len() == needs.len();
    match (known.is_empty(), scanned) {
        (true, true) => "yes".to_owned(),
        (true, false) => NOT_SCANNED_CELL.to_owned(),
        (false, true) => format!("no: {}", cell(&known.join("; "))),
        (false, false) => format!("no: {}; {NOT_SCANNED_CELL}", cell(&known.join("; "))),
    }
}

/// The table, one row per plugin in the order given. Every cell is escaped:
/// versions and the needs' package names are registry text.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from("| Plugin | Version | Offline |\n| --- | --- | --- |\n");
    for r in rows {
        let mut offline = offline(&r.needs);
        if r.locked {
            offline.push_str(" (native npm dependencies pinned)");
        }
        let _ = writeln!(
            s,
            "| {} | {} | {offline} |",
            cell(&r.npm_name),
            cell(&r.version)
        );
    }
    if rows
        .iter()
        .any(|r| r.needs.iter().any(|n| n == NOT_SCANNED))
    {
        let _ = write!(s, "\n{NOT_SCANNED_NOTE}\n");
    }
    s
}

/// `readme` with the text between the markers replaced by `table`; `None`
/// when the markers are missing or out of order.
pub fn splice(readme: &str, table: &str) -> Option<String> {
    let begin = line_start(readme, BEGIN)?;
    let after_begin = begin + readme[begin..].find('\n')? + 1;
    let end = after_begin + line_start(&readme[after_begin..], END)?;
    let mut out = String::with_capacity(readme.len() + table.len());
    out.push_str(&readme[..after_begin]);
    out.push('\n');
    out.push_str(table);
    out.push('\n');
    out.push_str(&readme[end..]);
    Some(out)
}

/// Where the line that is exactly `marker` starts.
fn line_start(text: &str, marker: &str) -> Option<usize> {
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == marker {
            return Some(pos);
        }
        pos += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_text_between_the_markers_changes() {
        let readme = format!("# x\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n");
        let rows = [Row {
            npm_name: "@scrypted/llm".into(),
            version: "0.0.100".into(),
            needs: vec!["a | b".into()],
            locked: true,
        }];
        let out = splice(&readme, &table(&rows)).expect("markers");
        assert!(out.starts_with("# x\n\nbefore\n<!-- nixgen:plugins:begin -->\n\n| Plugin |"));
        assert!(
            out.ends_with("|\n\n<!-- nixgen:plugins:end -->\nafter\n"),
            "{out}"
        );
        assert!(out.contains(
            "| @scrypted/llm | 0.0.100 | no: a \\| b (native npm dependencies pinned) |"
        ));
        assert_eq!(splice(&out, &table(&rows)).as_deref(), Some(out.as_str()));
        assert!(splice("no markers\n", "t").is_none());
        assert!(!out.contains("not scanned"), "{out}");
        assert!(splice(&format!("{END}\n{BEGIN}\n"), "t").is_none());
    }

    #[test]
    fn unscanned_plugins_say_so_shortly_and_the_note_comes_once() {
        let row = |name: &str, needs: &[&str]| Row {
            npm_name: name.into(),
            version: "1.0.0".into(),
            needs: needs.iter().map(|n| (*n).to_owned()).collect(),
            locked: false,
        };
        let rows = [
            row("@scrypted/a", &[NOT_SCANNED]),
            row("@scrypted/b", &[NOT_SCANNED]),
            row("@scrypted/c", &["pip installs", NOT_SCANNED]),
            row("@scrypted/d", &[]),
        ];
        let t = table(&rows);
        assert!(t.contains("| @scrypted/a | 1.0.0 | not scanned |\n"), "{t}");
        assert!(
            t.contains("| @scrypted/c | 1.0.0 | no: pip installs; not scanned |\n"),
            "{t}"
        );
        assert!(t.contains("| @scrypted/d | 1.0.0 | yes |\n"), "{t}");
        assert!(!t.contains(NOT_SCANNED), "{t}");
        assert_eq!(t.matches("could not be downloaded").count(), 1, "{t}");
        assert!(!table(&rows[3..]).contains("not scanned"));
    }
}
