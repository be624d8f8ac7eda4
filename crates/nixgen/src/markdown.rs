//! `--markdown`: the summary as Markdown, for pull request bodies.

use std::fmt::Write as _;

use crate::cell::cell;
use crate::name::PluginName;
use crate::report::Report;

/// The npm name of a reported plugin (reports carry directory names).
fn npm_name(name: &str) -> String {
    PluginName::new(name).map_or_else(|_| name.to_owned(), |n| n.npm())
}

/// `[@scope/name](npm page)`, at the given version when there is one.
fn link(name: &str, version: Option<&str>) -> String {
    let npm = npm_name(name);
    let page = format!("https://www.npmjs.com/package/{npm}");
    match version {
        Some(v) => format!("[{}]({page}/v/{})", cell(&npm), cell(v)),
        None => format!("[{}]({page})", cell(&npm)),
    }
}

/// One row per changed plugin: updated, added, removed.
fn rows(report: &Report) -> Vec<String> {
    let v = |o: &Option<String>| o.as_deref().map_or_else(|| "–".to_owned(), cell);
    let mut rows = Vec::new();
    for u in &report.updated {
        let new = match &u.note() {
            Some(d) => format!("{} ({})", cell(&u.new), cell(d)),
            None => cell(&u.new),
        };
        rows.push(format!(
            "| {} | {} | {new} | {} |",
            cell(&u.name),
            v(&u.old),
            link(&u.name, Some(&u.new))
        ));
    }
    for a in &report.added {
        rows.push(format!(
            "| {} | – | {} (added) | {} |",
            cell(&a.name),
            v(&a.version),
            link(&a.name, a.version.as_deref())
        ));
    }
    for r in &report.removed {
        rows.push(format!(
            "| {} | {} | removed: {} | {} |",
            cell(&r.name),
            v(&r.version),
            cell(&r.reason),
            link(&r.name, None)
        ));
    }
    rows
}

impl Report {
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("## Scrypted plugin updates\n\n");
        // What needs a person first: a new publisher.
        self.trust.markdown_top(&mut s);
        let rows = rows(self);
        if rows.is_empty() {
            s.push_str("No plugin changed.\n");
        } else {
            s.push_str("| Plugin | Old | New | npm |\n| --- | --- | --- | --- |\n");
            for r in rows {
                let _ = writeln!(s, "{r}");
            }
        }
        if self.builder != "unchanged" {
            let _ = writeln!(
                s,
                "\nThe builder, `nix/mk-scrypted-plugin.nix`, was {}.",
                self.builder
            );
        }
        self.problems_markdown(&mut s);
        self.trust.markdown(&mut s);
        let _ = writeln!(
            s,
            "\n{} updated, {} added, {} removed, {} unchanged, {} skipped, {} failed.",
            self.updated.len(),
            self.added.len(),
            self.removed.len(),
            self.unchanged,
            self.skipped.len(),
            self.failed.len()
        );
        s
    }

    /// What a reviewer must know besides the table: failures (old pins
    /// kept) and a failed search.
    fn problems_markdown(&self, s: &mut String) {
        if let Some(e) = &self.search_error {
            let _ = writeln!(
                s,
                "\n**The registry search failed**; only known plugins were refreshed: {}",
                cell(e)
            );
        }
        if !self.warnings.is_empty() {
            s.push_str("\n### Not pinned for offline use\n\n");
            for w in &self.warnings {
                let _ = writeln!(s, "- {}: {}", cell(&w.name), cell(&w.message));
            }
        }
        let (listed, grouped) = self.failed_groups();
        if let Some(hint) = self.not_found_hint() {
            let names: Vec<String> = grouped.iter().map(|f| cell(&f.name)).collect();
            let _ = writeln!(
                s,
                "\n### Answering 404 (old pins kept)\n\n{}\n\n{}",
                names.join(", "),
                cell(&hint)
            );
        }
        if !listed.is_empty() {
            s.push_str("\n### Failed (old pins kept)\n\n");
            for f in listed {
                let kept = f
                    .kept
                    .as_deref()
                    .map_or_else(|| "not pinned".to_owned(), cell);
                let _ = writeln!(s, "- {} ({kept}): {}", cell(&f.name), cell(&f.error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Failed, Removed, Updated, Versioned};

    #[test]
    fn table_links_and_escapes() {
        let report = Report {
            updated: vec![Updated {
                name: "nvr".into(),
                old: Some("0.12.40".into()),
                new: "0.12.43".into(),
                detail: None,
                changed: Vec::new(),
            }],
            added: vec![Versioned {
                name: "vityevato--hikvision-doorbell".into(),
                version: Some("2.0.8".into()),
            }],
            removed: vec![Removed {
                name: "onvif".into(),
                version: Some("0.1.31".into()),
                reason: "a | b [x](javascript:1)\nc".into(),
            }],
            failed: vec![Failed {
                name: "ring".into(),
                kept: Some("0.0.145".into()),
                error: "HTTP 500".into(),
                not_found: false,
            }],
            builder: "unchanged",
            ..Report::default()
        };
        let md = report.to_markdown();
        assert!(md.contains("| nvr | 0.12.40 | 0.12.43 | [@scrypted/nvr](https://www.npmjs.com/package/@scrypted/nvr/v/0.12.43) |\n"), "{md}");
        assert!(md.contains("| vityevato--hikvision-doorbell | – | 2.0.8 (added) | [@vityevato/hikvision-doorbell](https://www.npmjs.com/package/@vityevato/hikvision-doorbell/v/2.0.8) |\n"), "{md}");
        assert!(md.contains("| onvif | 0.1.31 | removed: a \\| b \\[x\\](javascript:1) c | [@scrypted/onvif](https://www.npmjs.com/package/@scrypted/onvif) |\n"), "{md}");
        assert!(md.contains("- ring (0.0.145): HTTP 500\n"), "{md}");
        assert_eq!(md.lines().filter(|l| l.starts_with('|')).count(), 5);
        assert!(
            Report::default()
                .to_markdown()
                .contains("No plugin changed.")
        );
    }
}
