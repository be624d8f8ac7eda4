//! The plugin table in README.md, between two marker lines. Only the text
//! between them is ever rewritten.

use std::fmt::Write as _;

use crate::markdown::cell;

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

/// The table, one row per plugin in the order given. Every cell is escaped:
/// versions and the needs' package names are registry text.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from("| Plugin | Version | Offline |\n| --- | --- | --- |\n");
    for r in rows {
        let mut offline = if r.needs.is_empty() {
            "yes".to_owned()
        } else {
            format!("no: {}", cell(&r.needs.join("; ")))
        };
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
        assert!(splice(&format!("{END}\n{BEGIN}\n"), "t").is_none());
    }
}
