//! What the trust checks found in one run, one section per check, for the
//! text, JSON and Markdown summaries.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cell::cell;

/// Every check's findings. Names are directory names, as elsewhere in the
/// report.
#[derive(Debug, Default, Serialize)]
pub struct TrustSummary {
    pub cooldown: Cooldown,
    pub signatures: Signatures,
    /// Publisher changes between the old pin and the new version: each
    /// needs a review (`--check` counts them as pending).
    pub publishers: Vec<PublisherChange>,
    /// Plugins whose `latest` is deprecated: their pins stay.
    pub deprecated: Vec<Deprecated>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cooldown {
    /// `minReleaseAge` in seconds (0: off).
    pub min_release_age_secs: u64,
    pub held_back: Vec<HeldBack>,
}

#[derive(Debug, Serialize)]
pub struct HeldBack {
    pub name: String,
    /// The version too young to pin.
    pub version: String,
    /// Its age in seconds, `None` when the registry gave no publish time.
    pub age_secs: Option<u64>,
    /// The pin that stays (when nothing older qualified).
    pub kept: Option<String>,
    /// The older, old-enough version pinned instead.
    pub pinned_instead: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Signatures {
    /// Pins (new and unchanged) whose registry signature verified.
    pub verified: usize,
    /// `name@version` of pins without a signature from a registry whose
    /// keys are pinned.
    pub unsigned: Vec<String>,
    /// `name@version: why` of versions refused (their plugins failed).
    pub invalid: Vec<String>,
    /// Set when the registry has no pinned keys: nothing was checked.
    pub no_keys: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PublisherChange {
    pub name: String,
    pub old_version: Option<String>,
    pub new_version: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize)]
pub struct Deprecated {
    pub name: String,
    pub version: String,
    pub kept: Option<String>,
    pub message: String,
}

impl HeldBack {
    /// `nvr 0.12.50 held back: published 5 h ago; pinned 0.12.49 stays`.
    pub fn line(&self) -> String {
        let age = self.age_secs.map_or_else(
            || "no publish time in the registry's document".to_owned(),
            |s| {
                format!(
                    "published {} ago",
                    super::cooldown::human(std::time::Duration::from_secs(s))
                )
            },
        );
        let outcome = match (&self.pinned_instead, &self.kept) {
            (Some(v), _) => format!("pinning {v} instead"),
            (None, Some(k)) => format!("pinned {k} stays"),
            (None, None) => "not added yet".to_owned(),
        };
        format!("{} {} held back: {age}; {outcome}", self.name, self.version)
    }
}

impl PublisherChange {
    pub fn line(&self) -> String {
        format!(
            "{} {} -> {}: publisher changed: {} -> {}",
            self.name,
            self.old_version.as_deref().unwrap_or("?"),
            self.new_version,
            self.from,
            self.to
        )
    }
}

impl Deprecated {
    pub fn line(&self) -> String {
        let kept = self
            .kept
            .as_deref()
            .map_or_else(|| "not pinned".to_owned(), |k| format!("pinned {k} stays"));
        format!(
            "{} {} is deprecated ({kept}): {}",
            self.name, self.version, self.message
        )
    }
}

impl TrustSummary {
    /// Whether a person must look before merging: a new publisher.
    pub fn needs_review(&self) -> bool {
        !self.publishers.is_empty()
    }

    pub fn sort(&mut self) {
        self.cooldown.held_back.sort_by(|a, b| a.name.cmp(&b.name));
        self.signatures.unsigned.sort();
        self.signatures.invalid.sort();
        self.publishers.sort_by(|a, b| a.name.cmp(&b.name));
        self.deprecated.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// One line per finding, under a heading per check; nothing when a
    /// check found nothing worth saying.
    pub fn text(&self, s: &mut String) {
        let section = |s: &mut String, title: &str, lines: Vec<String>| {
            if !lines.is_empty() {
                let _ = writeln!(s, "{title}:");
                for l in lines {
                    let _ = writeln!(s, "  {l}");
                }
            }
        };
        section(
            s,
            "publisher changed (review before merging)",
            self.publishers.iter().map(PublisherChange::line).collect(),
        );
        section(
            s,
            "held back by the release cooldown",
            self.cooldown.held_back.iter().map(HeldBack::line).collect(),
        );
        section(
            s,
            "deprecated on the registry",
            self.deprecated.iter().map(Deprecated::line).collect(),
        );
        section(
            s,
            "invalid registry signatures (refused)",
            self.signatures.invalid.clone(),
        );
        section(
            s,
            "unsigned (no registry signature)",
            self.signatures.unsigned.clone(),
        );
        let _ = writeln!(s, "{}", self.signature_line());
    }

    /// The signature counts on one line.
    pub fn signature_line(&self) -> String {
        match &self.signatures.no_keys {
            Some(registry) => format!(
                "signatures: not checked: no keys pinned for {registry} (nixgen keys pins them)"
            ),
            None => format!(
                "signatures: {} verified, {} unsigned, {} invalid",
                self.signatures.verified,
                self.signatures.unsigned.len(),
                self.signatures.invalid.len()
            ),
        }
    }

    /// The Markdown warning that goes first in a pull request body.
    pub fn markdown_top(&self, s: &mut String) {
        for p in &self.publishers {
            let _ = writeln!(
                s,
                "> **publisher changed: {} -> {}** ({} {} -> {}); review before merging.\n",
                cell(&p.from),
                cell(&p.to),
                cell(&p.name),
                cell(p.old_version.as_deref().unwrap_or("?")),
                cell(&p.new_version)
            );
        }
    }

    /// A Markdown section per check.
    pub fn markdown(&self, s: &mut String) {
        let list = |s: &mut String, title: &str, lines: Vec<String>, none: &str| {
            let _ = writeln!(s, "\n### {title}\n");
            if lines.is_empty() {
                let _ = writeln!(s, "{none}");
            }
            for l in lines {
                let _ = writeln!(s, "- {}", cell(&l));
            }
        };
        let age = super::cooldown::human(std::time::Duration::from_secs(
            self.cooldown.min_release_age_secs,
        ));
        let held = self.cooldown.held_back.iter().map(HeldBack::line).collect();
        list(
            s,
            "Release cooldown",
            held,
            &format!("Nothing held back (minimum age {age})."),
        );
        let mut sig: Vec<String> = self
            .signatures
            .invalid
            .iter()
            .map(|l| format!("invalid: {l}"))
            .collect();
        sig.extend(
            self.signatures
                .unsigned
                .iter()
                .map(|l| format!("unsigned: {l}")),
        );
        list(s, "Registry signatures", sig, &cell(&self.signature_line()));
        if !self.signatures.invalid.is_empty() || !self.signatures.unsigned.is_empty() {
            let _ = writeln!(s, "\n{}", cell(&self.signature_line()));
        }
        let publishers = self.publishers.iter().map(PublisherChange::line).collect();
        list(s, "Publishers", publishers, "No publisher changed.");
        let deprecated = self.deprecated.iter().map(Deprecated::line).collect();
        list(
            s,
            "Deprecated",
            deprecated,
            "No pinned plugin is deprecated.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> TrustSummary {
        TrustSummary {
            cooldown: Cooldown {
                min_release_age_secs: 259_200,
                held_back: vec![HeldBack {
                    name: "nvr".into(),
                    version: "0.12.50".into(),
                    age_secs: Some(5 * 3600 + 20),
                    kept: Some("0.12.49".into()),
                    pinned_instead: None,
                }],
            },
            signatures: Signatures {
                verified: 3,
                unsigned: vec!["@scrypted/x@1.0.0".into()],
                invalid: Vec::new(),
                no_keys: None,
            },
            publishers: vec![PublisherChange {
                name: "hue".into(),
                old_version: Some("1.0.0".into()),
                new_version: "1.1.0".into(),
                from: "koush <k@x>".into(),
                to: "[evil](javascript:1) <img>".into(),
            }],
            deprecated: vec![Deprecated {
                name: "wemo".into(),
                version: "0.0.10".into(),
                kept: Some("0.0.9".into()),
                message: "use | matter".into(),
            }],
        }
    }

    #[test]
    fn every_check_has_a_section_and_registry_text_is_escaped() {
        let s = summary();
        let mut text = String::new();
        s.text(&mut text);
        assert!(
            text.contains("  nvr 0.12.50 held back: published 5 h ago; pinned 0.12.49 stays\n"),
            "{text}"
        );
        assert!(
            text.contains("signatures: 3 verified, 1 unsigned, 0 invalid\n"),
            "{text}"
        );
        assert!(
            text.contains("wemo 0.0.10 is deprecated (pinned 0.0.9 stays): use | matter"),
            "{text}"
        );
        let mut md = String::new();
        s.markdown_top(&mut md);
        assert!(
            md.starts_with(
                "> **publisher changed: koush \\<k@x\\> -> \\[evil\\](javascript:1) \\<img\\>**"
            ),
            "{md}"
        );
        let mut md = String::new();
        s.markdown(&mut md);
        for heading in [
            "Release cooldown",
            "Registry signatures",
            "Publishers",
            "Deprecated",
        ] {
            assert!(md.contains(&format!("\n### {heading}\n")), "{md}");
        }
        assert!(
            md.contains("- wemo 0.0.10 is deprecated (pinned 0.0.9 stays): use \\| matter\n"),
            "{md}"
        );
        assert!(s.needs_review());
        assert!(!TrustSummary::default().needs_review());
    }
}
