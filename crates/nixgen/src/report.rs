//! The run's summary, as text for people and JSON for tools.

use std::fmt::Write as _;

use serde::Serialize;

use crate::classify::SkipReason;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub registry: String,
    /// Whether files were written (false under `--check` and `--dry-run`).
    pub wrote: bool,
    pub updated: Vec<Updated>,
    pub added: Vec<Versioned>,
    pub removed: Vec<Removed>,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Failed>,
    pub unchanged: usize,
    /// `created`, `updated` or `unchanged`, for nix/mk-scrypted-plugin.nix.
    pub builder: &'static str,
    /// Why discovery fell back to the names already known, if it did.
    pub search_error: Option<String>,
    /// Files written or removed in this run.
    pub files_changed: usize,
    /// What keeps plugins from being pinned for offline use, though they
    /// were written: native dependencies npm could not resolve, zips that
    /// could not be scanned.
    pub warnings: Vec<Warning>,
    /// Registry documents asked for (one per plugin looked at).
    pub documents: usize,
    /// The plugin table in README.md: `updated`, `unchanged`, `no-markers`
    /// (README.md lacks them: left alone) or `none` (no README.md).
    pub readme: &'static str,
    /// The trust checks' sections: `cooldown`, `signatures`, `publishers`,
    /// `deprecated`.
    #[serde(flatten)]
    pub trust: crate::trust::summary::TrustSummary,
}

#[derive(Debug, Serialize)]
pub struct Warning {
    pub name: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Updated {
    pub name: String,
    pub old: Option<String>,
    pub new: String,
    /// What changed besides the version, e.g. `native dependencies changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// At an unchanged pin, the parts of the file that were regenerated
    /// (`description`, `maintainer`, `layout` for nixgen's template, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<&'static str>,
}

impl Updated {
    /// Why the file was rewritten, besides a new version: the detail, else
    /// `regenerated: description, maintainer` at an unchanged pin.
    pub fn note(&self) -> Option<String> {
        if let Some(d) = &self.detail {
            return Some(d.clone());
        }
        if self.old.as_deref() != Some(self.new.as_str()) {
            return None;
        }
        Some(if self.changed.is_empty() {
            "regenerated".to_owned()
        } else {
            format!("regenerated: {}", self.changed.join(", "))
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Versioned {
    pub name: String,
    pub version: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Removed {
    pub name: String,
    /// The pin that was removed.
    pub version: Option<String>,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub name: String,
    pub reason: SkipReason,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Failed {
    pub name: String,
    /// The pin left in place, if the plugin had one.
    pub kept: Option<String>,
    pub error: String,
    /// The registry answered 404 and nothing confirmed a removal: what a
    /// partial mirror answers for every plugin it lacks.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_found: bool,
}

impl Report {
    /// Whether anything in the tree differs from what the registry says.
    pub fn pending(&self) -> bool {
        !self.updated.is_empty()
            || !self.added.is_empty()
            || !self.removed.is_empty()
            || self.builder != "unchanged"
            || self.readme == "updated"
            || self.trust.needs_review()
    }

    pub fn sort(&mut self) {
        self.updated.sort_by(|a, b| a.name.cmp(&b.name));
        self.added.sort_by(|a, b| a.name.cmp(&b.name));
        self.removed.sort_by(|a, b| a.name.cmp(&b.name));
        self.skipped.sort_by(|a, b| a.name.cmp(&b.name));
        self.failed.sort_by(|a, b| a.name.cmp(&b.name));
        self.warnings.sort_by(|a, b| a.name.cmp(&b.name));
        self.trust.sort();
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if let Some(e) = &self.search_error {
            let _ = writeln!(s, "search failed, refreshed the known plugins only: {e}");
        }
        self.changes_text(&mut s);
        self.problems_text(&mut s);
        self.trust.text(&mut s);
        let _ = writeln!(
            s,
            "{} updated, {} added, {} removed, {} unchanged, {} skipped, {} failed; builder {}; {} file{} changed",
            self.updated.len(),
            self.added.len(),
            self.removed.len(),
            self.unchanged,
            self.skipped.len(),
            self.failed.len(),
            self.builder,
            self.files_changed,
            if self.files_changed == 1 { "" } else { "s" },
        );
        s
    }

    /// Updated, added and removed plugins.
    fn changes_text(&self, s: &mut String) {
        let verb = if self.wrote { "" } else { " (not written)" };
        if !self.updated.is_empty() {
            let _ = writeln!(s, "updated{verb}:");
            for u in &self.updated {
                let same = u.old.as_deref() == Some(u.new.as_str());
                match (&u.detail, u.note()) {
                    (Some(d), _) if same => {
                        let _ = writeln!(s, "  {}: {d}", u.name);
                    }
                    (_, note) => {
                        let note = note.map_or_else(String::new, |n| format!(" ({n})"));
                        let _ =
                            writeln!(s, "  {}: {} -> {}{note}", u.name, or_unknown(&u.old), u.new);
                    }
                }
            }
        }
        if !self.added.is_empty() {
            let _ = writeln!(s, "added{verb}:");
            for a in &self.added {
                let _ = writeln!(s, "  {} {}", a.name, or_unknown(&a.version));
            }
        }
        if !self.removed.is_empty() {
            let _ = writeln!(s, "removed{verb}:");
            for r in &self.removed {
                let _ = writeln!(s, "  {} {} ({})", r.name, or_unknown(&r.version), r.reason);
            }
        }
    }

    /// Skipped and failed plugins, warnings.
    fn problems_text(&self, s: &mut String) {
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "not pinned for offline use:");
            for w in &self.warnings {
                let _ = writeln!(s, "  {}: {}", w.name, w.message);
            }
        }
        if self.readme == "updated" {
            let verb = if self.wrote {
                "updated"
            } else {
                "would be updated"
            };
            let _ = writeln!(s, "README.md: plugin table {verb}");
        }
        if self.readme == "no-markers" {
            let _ = writeln!(
                s,
                "README.md has no {} / {} lines: its plugin table was left alone",
                crate::readme::BEGIN,
                crate::readme::END
            );
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "skipped:");
            for k in &self.skipped {
                let _ = writeln!(s, "  {}: {}", k.name, k.message);
            }
        }
        let (listed, grouped) = self.failed_groups();
        if !listed.is_empty() {
            let _ = writeln!(s, "failed:");
            for f in listed {
                let kept = f
                    .kept
                    .as_deref()
                    .map_or_else(|| "not pinned".to_owned(), |k| format!("kept {k}"));
                let _ = writeln!(s, "  {} ({kept}): {}", f.name, f.error);
            }
        }
        if let Some(hint) = self.not_found_hint() {
            let names: Vec<&str> = grouped.iter().map(|f| f.name.as_str()).collect();
            let _ = writeln!(
                s,
                "failed, answering 404 (old pins kept): {}",
                names.join(", ")
            );
            let _ = writeln!(s, "  {hint}");
        }
    }

    /// The failures to list one by one, and the 404s to list as one group
    /// (when there are several: one 404 is listed with its URL).
    pub fn failed_groups(&self) -> (Vec<&Failed>, Vec<&Failed>) {
        let (not_found, other): (Vec<&Failed>, Vec<&Failed>) =
            self.failed.iter().partition(|f| f.not_found);
        if not_found.len() < 2 {
            return (self.failed.iter().collect(), Vec::new());
        }
        (other, not_found)
    }

    /// For several unconfirmed 404s, what they most likely mean.
    pub fn not_found_hint(&self) -> Option<String> {
        let (_, grouped) = self.failed_groups();
        let first = grouped.first()?;
        let search = match &self.search_error {
            Some(_) => "the search failed and ",
            None => "",
        };
        Some(format!(
            "{search}{} of {} documents answer 404 (e.g. {}): a partial mirror, or the wrong --registry?",
            grouped.len(),
            self.documents,
            first.error
        ))
    }
}

fn or_unknown(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("?")
}

/// An error and its causes on one line, `outer: inner: root`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}
