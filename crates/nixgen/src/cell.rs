//! Registry text made safe for a Markdown table cell. Both Markdown outputs
//! (the pull request summary and README.md's plugin table) use it; it sits
//! below them so neither reaches into the other.

/// Text made safe for a table cell: one line, Markdown punctuation escaped,
/// so registry text cannot break the table or inject links and HTML.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::escape::nix_comment(s).chars() {
        if matches!(
            c,
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '!' | '~' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn one_line_and_punctuation_escaped() {
        assert_eq!(cell("a | b\n[x](y)"), "a \\| b \\[x\\](y)");
        assert_eq!(cell("<img>&"), "\\<img\\>\\&");
    }
}
