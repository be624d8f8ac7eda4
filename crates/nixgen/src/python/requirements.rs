//! The lines of a plugin's requirements.txt (pip's format), read from its zip
//! at update time. Untrusted text: every name is checked against PEP 508's
//! name syntax before anything is recorded, and versions are only ever
//! rendered through the Nix string escaper.

/// One line that matters to pip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Requirement(Requirement),
    /// An option line (`--extra-index-url ...`, `-r other.txt`): its option.
    Option(String),
    /// A requirement given as a URL or `name @ URL`: the line, shortened.
    Url(String),
    /// A line that is neither: shortened.
    Unreadable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// As written (without extras): `Pillow`, `opencv-python-headless`.
    pub name: String,
    /// The version after `==` (up to a `,`), as the Nix build reads it back.
    pub pin: Option<String>,
    /// The environment marker after `;`, if any.
    pub marker: Option<String>,
}

/// PEP 503: lower case, every run of `-`, `_` and `.` one `-`.
pub fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}

fn shorten(line: &str) -> String {
    crate::escape::clean_text(line).chars().take(120).collect()
}

/// Parses requirements.txt as pip does, line by line: comments start at a
/// `#` at the start of a line or after whitespace.
pub fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .filter_map(|raw| {
            let line = strip_comment(raw.trim_end_matches('\r')).trim();
            (!line.is_empty()).then(|| parse_line(line))
        })
        .collect()
}

fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let at = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    at.map_or(line, |i| &line[..i])
}

fn parse_line(line: &str) -> Line {
    if line.starts_with('-') {
        let option = line.split_whitespace().next().unwrap_or(line);
        return Line::Option(shorten(option.split('=').next().unwrap_or(option)));
    }
    let (spec, marker) = match line.split_once(';') {
        Some((s, m)) => (s.trim(), Some(m.trim().to_owned())),
        None => (line, None),
    };
    if spec.contains("://") || spec.contains('@') {
        return Line::Url(shorten(line));
    }
    let name_len = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let name = &spec[..name_len];
    let valid_name = name
        .chars()
        .next()
        .zip(name.chars().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    let mut rest = spec[name_len..].trim_start();
    if rest.starts_with('[') {
        match rest.find(']') {
            Some(end) => rest = rest[end + 1..].trim_start(),
            None => return Line::Unreadable(shorten(line)),
        }
    }
    let version: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
    let spec_ok = version.is_empty()
        || version.starts_with(['=', '<', '>', '~', '!'])
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "=<>~!.,*+-_".contains(c));
    if !valid_name || !spec_ok {
        return Line::Unreadable(shorten(line));
    }
    let pin = version
        .strip_prefix("==")
        .map(|v| v.split(',').next().unwrap_or(v).to_owned());
    Line::Requirement(Requirement {
        name: name.to_owned(),
        pin,
        marker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, pin: Option<&str>, marker: Option<&str>) -> Line {
        Line::Requirement(Requirement {
            name: name.into(),
            pin: pin.map(Into::into),
            marker: marker.map(Into::into),
        })
    }

    #[test]
    fn onnx_requirements() {
        let text = "# comment\n# --extra-index-url https://x/simple/\r\nonnxruntime-gpu==1.22.0; 'darwin' not in sys_platform\nonnxruntime; platform_machine == 'aarch64'\n\nPillow==10.3.0  # pinned\nimutils>=0.5.0\nfoo[bar] == 1.0, <2\n";
        assert_eq!(
            parse(text),
            [
                req(
                    "onnxruntime-gpu",
                    Some("1.22.0"),
                    Some("'darwin' not in sys_platform")
                ),
                req("onnxruntime", None, Some("platform_machine == 'aarch64'")),
                req("Pillow", Some("10.3.0"), None),
                req("imutils", None, None),
                req("foo", Some("1.0"), None),
            ]
        );
    }

    #[test]
    fn options_urls_and_junk_are_told_apart() {
        let text = "--extra-index-url https://google-coral.github.io/py-repo/\n-i=https://x\nrknn @ https://github.com/x/r.whl\nhttps://x/y.whl\nbad name==1\n${x}==1\nok==1\"\n";
        assert_eq!(
            parse(text),
            [
                Line::Option("--extra-index-url".into()),
                Line::Option("-i".into()),
                Line::Url("rknn @ https://github.com/x/r.whl".into()),
                Line::Url("https://x/y.whl".into()),
                Line::Unreadable("bad name==1".into()),
                Line::Unreadable("${x}==1".into()),
                Line::Unreadable("ok==1\"".into()),
            ]
        );
    }

    #[test]
    fn pep_503_names() {
        assert_eq!(
            normalise("Opencv_Python..Headless"),
            "opencv-python-headless"
        );
        assert_eq!(normalise("Pillow"), "pillow");
    }
}
