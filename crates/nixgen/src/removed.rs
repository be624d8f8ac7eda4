//! `nix/plugins/removed.json`: which plugins nixgen removed from the tree,
//! when, at which version and why, so that a host still naming one gets an
//! explanation instead of a list of closest names.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::failure::{Context as _, Failure};
use crate::name::PluginName;
use crate::report::Report;
use crate::tree;

/// Where the record lives, relative to `--root`.
pub const REMOVED_PATH: &str = "nix/plugins/removed.json";

/// One removed plugin, keyed by its attribute name in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub npm_name: String,
    /// The last pinned version, if known.
    pub version: Option<String>,
    pub reason: String,
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
}

pub type Removed = BTreeMap<String, Entry>;

/// Reads the record; a missing file is an empty one.
pub fn load(root: &Path) -> Result<Removed, Failure> {
    let path = root.join(REMOVED_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removed::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text).with_context(|| format!("invalid {}", path.display()))
}

/// Adds this run's removals and forgets plugins that came back; `true` when
/// the record changed.
pub fn merge(record: &mut Removed, report: &Report, date: &str) -> bool {
    let before = record.clone();
    for r in &report.removed {
        let npm_name = PluginName::new(&r.name).map_or_else(|_| r.name.clone(), |n| n.npm());
        let entry = Entry {
            npm_name,
            version: r.version.clone(),
            reason: r.reason.clone(),
            date: date.to_owned(),
        };
        record.insert(r.name.clone(), entry);
    }
    for a in &report.added {
        record.remove(&a.name);
    }
    *record != before
}

/// Writes the record atomically, sorted, with a final newline.
pub fn write(root: &Path, record: &Removed) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(record).context("cannot encode removed.json")?;
    text.push('\n');
    Ok(tree::write_data(&root.join(REMOVED_PATH), &text)?)
}

/// Today in UTC as `YYYY-MM-DD`, or the day of `$SOURCE_DATE_EPOCH` when
/// set (reproducible runs and tests).
pub fn today() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        });
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(1_795_996_800 / 86_400), (2026, 11, 30));
        assert_eq!(civil_from_days(951_782_400 / 86_400), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
