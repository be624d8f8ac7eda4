//! Release cooldown: a version is pinned only once it has been public for
//! `minReleaseAge`. Stolen publisher credentials are usually noticed and the
//! versions pulled within hours to days; a delay keeps them out of the tree.
//!
//! The publish times come from the package document's `time` map
//! (docs/npm-registry.md), fetched only for plugins whose `latest` differs
//! from the pin.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

/// The default `minReleaseAge`: three days.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(3 * 86_400);

/// Parses `0`, `<n>d`, `<n>h`, `<n>m` or `<n>s` (one unit, as in the config
/// file and `--min-release-age`).
pub fn parse_age(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s.len().saturating_sub(1);
    let (n, unit) = s.split_at(split);
    let secs = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => {
            return Err(format!(
                "{raw:?} is not a duration such as 3d, 12h, 30m or 0"
            ));
        }
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration such as 3d, 12h, 30m or 0"))?;
    n.checked_mul(secs)
        .filter(|s| *s <= 3_650 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{raw:?} is longer than ten years"))
}

/// A duration as people say it: `5 h`, `3 days`, `40 min`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=3_599 => format!("{} min", s / 60),
        3_600..=172_799 => format!("{} h", s / 3_600),
        _ => format!("{} days", s / 86_400),
    }
}

/// What the package document says about each version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    /// Publish time of each version, where the document gives one.
    pub published: BTreeMap<semver::Version, jiff::Timestamp>,
    /// Deprecated versions and npm's message.
    pub deprecated: BTreeMap<semver::Version, String>,
}

impl Versions {
    /// Reads a full or abbreviated package document. `None` when it carries
    /// no `time` map (npm's abbreviated document, which has only `modified`).
    pub fn from_document(doc: &Value) -> Option<Self> {
        let time = doc.get("time")?.as_object()?;
        let mut out = Self::default();
        for (k, v) in time {
            let (Ok(version), Some(t)) = (semver::Version::parse(k), v.as_str()) else {
                continue; // `created`, `modified`, `unpublished`, junk
            };
            if let Ok(t) = t.parse::<jiff::Timestamp>() {
                out.published.insert(version, t);
            }
        }
        let versions = doc.get("versions").and_then(Value::as_object);
        for (k, v) in versions.into_iter().flatten() {
            let Ok(version) = semver::Version::parse(k) else {
                continue;
            };
            if let Some(why) = super::deprecation::message(v) {
                out.deprecated.insert(version, why);
            }
        }
        Some(out)
    }
}

/// What the cooldown decided for a plugin whose `latest` is not the pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `latest` is old enough.
    Latest,
    /// `latest` is too young (or its age unknown); this older version is old
    /// enough, not deprecated, and newer than the pin.
    Older(semver::Version),
    /// `latest` is too young and nothing between the pin and it qualifies:
    /// the pin stays (or a new plugin is not added yet).
    Hold,
}

/// `latest`'s age, `None` when the document has no time for it.
pub fn age_of(versions: &Versions, v: &semver::Version, now: jiff::Timestamp) -> Option<Duration> {
    let t = versions.published.get(v)?;
    let secs = now.as_second().saturating_sub(t.as_second());
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// Picks what to pin. A version of unknown age counts as too young.
pub fn decide(
    versions: &Versions,
    latest: &semver::Version,
    pinned: Option<&semver::Version>,
    min_age: Duration,
    now: jiff::Timestamp,
) -> Decision {
    let old_enough = |v: &semver::Version| age_of(versions, v, now).is_some_and(|a| a >= min_age);
    if old_enough(latest) {
        return Decision::Latest;
    }
    // A stable line never falls back to a prerelease.
    let candidate = versions
        .published
        .keys()
        .filter(|v| *v < latest && pinned.is_none_or(|p| *v > p))
        .filter(|v| latest.pre.is_empty() <= v.pre.is_empty())
        .filter(|v| !versions.deprecated.contains_key(*v))
        .filter(|v| old_enough(v))
        .max();
    match candidate {
        Some(v) => Decision::Older(v.clone()),
        None => Decision::Hold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).expect("version")
    }

    fn ago(now: jiff::Timestamp, hours: i64) -> String {
        (now - jiff::SignedDuration::from_hours(hours)).to_string()
    }

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("3d"), Ok(Duration::from_secs(259_200)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        for bad in ["", "3", "d", "-1d", "1w", "99999999999d", "1.5d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        assert_eq!(human(Duration::from_secs(5 * 3600 + 10)), "5 h");
        assert_eq!(human(Duration::from_secs(4 * 86_400)), "4 days");
        assert_eq!(human(Duration::from_secs(3_700)), "1 h");
        assert_eq!(human(Duration::from_secs(600)), "10 min");
    }

    #[test]
    fn picks_latest_an_older_version_or_holds() {
        let now = jiff::Timestamp::now();
        let doc = json!({
            "time": {"created": ago(now, 900), "modified": ago(now, 1),
                     "1.0.0": ago(now, 800), "1.1.0": ago(now, 200), "1.2.0": ago(now, 100),
                     "1.3.0-beta.1": ago(now, 90), "1.3.0": ago(now, 1), "bogus": "x"},
            "versions": {"1.2.0": {"deprecated": "broken"}, "1.1.0": {}, "1.3.0": {}}
        });
        let vs = Versions::from_document(&doc).expect("time");
        let three_days = DEFAULT_MIN_AGE;
        assert_eq!(vs.deprecated.keys().collect::<Vec<_>>(), [&v("1.2.0")]);
        // 1.3.0 is 1 h old, 1.2.0 deprecated, the beta not on a stable line.
        assert_eq!(
            decide(&vs, &v("1.3.0"), Some(&v("1.0.0")), three_days, now),
            Decision::Older(v("1.1.0"))
        );
        assert_eq!(
            decide(&vs, &v("1.3.0"), Some(&v("1.1.0")), three_days, now),
            Decision::Hold
        );
        assert_eq!(
            decide(&vs, &v("1.3.0"), None, three_days, now),
            Decision::Older(v("1.1.0"))
        );
        assert_eq!(
            decide(
                &vs,
                &v("1.3.0"),
                Some(&v("1.0.0")),
                Duration::from_secs(1800),
                now
            ),
            Decision::Latest
        );
        // Unknown age counts as too young.
        assert_eq!(
            decide(&vs, &v("2.0.0"), Some(&v("1.1.0")), three_days, now),
            Decision::Hold
        );
        assert!(Versions::from_document(&json!({"modified": ago(now, 1)})).is_none());
    }

    #[test]
    fn registry_time_formats_parse() {
        // npm writes `Z` with milliseconds; the mirror here writes offsets
        // with microseconds.
        let doc = json!({"time": {"1.0.0": "2015-03-24T00:12:24.039Z",
                                  "2.0.0": "2026-03-29T08:50:05.148000+00:00"}});
        let vs = Versions::from_document(&doc).expect("time");
        assert_eq!(vs.published.len(), 2);
    }
}
