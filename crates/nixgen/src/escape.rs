//! The one place where untrusted text becomes Nix source.
//!
//! Everything that reaches a generated file from the registry goes through
//! [`nix_string`] (inside `"..."`) or [`nix_comment`] (after `#`).

/// Escapes `s` for the inside of a double-quoted Nix string, so that the
/// string evaluates to exactly `s`.
///
/// Nix has no escape for arbitrary code points: control characters other
/// than `\n`, `\r` and `\t` are valid raw inside a string literal and are
/// kept as they are (callers that do not want them in a file sanitize
/// first, see [`clean_text`]). NUL cannot exist in a Nix string at all, so it
/// becomes U+FFFD.
pub fn nix_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push('\u{FFFD}'),
            // Only `${` starts an interpolation; a lone `$` is literal.
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`nix_string`], for reading back what nixgen wrote.
pub fn nix_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Turns `s` into text that is safe after a `#` in a Nix file: one line, no
/// control characters, bounded length. A comment cannot be escaped out of
/// except by a line break, so this removes every line terminator an editor
/// or Nix might honour.
pub fn nix_comment(s: &str) -> String {
    const MAX_CHARS: usize = 200;
    let one_line: String = s
        .chars()
        .map(|c| {
            if is_unwanted(c) || c.is_whitespace() {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = String::new();
    for word in one_line.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > MAX_CHARS {
        out = out.chars().take(MAX_CHARS - 1).collect::<String>() + "…";
    }
    out
}

/// Registry text policy for values that land in Nix strings: line breaks and
/// tabs survive (the escaper spells them), other control characters (terminal
/// escapes, NUL, bidi overrides) are dropped so they never reach a committed
/// file or a reviewer's terminal.
pub fn clean_text(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .map(|c| if c == '\r' { '\n' } else { c })
        .filter(|&c| matches!(c, '\n' | '\t') || !is_unwanted(c))
        .collect()
}

fn is_unwanted(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_nix_specials() {
        assert_eq!(nix_string(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(nix_string("${x} $y $"), "\\${x} $y $");
        assert_eq!(nix_string("l1\nl2\r\t"), "l1\\nl2\\r\\t");
        assert_eq!(nix_string("a\0b"), "a\u{FFFD}b");
    }

    #[test]
    fn comment_is_one_clean_line() {
        assert_eq!(
            nix_comment("koush\n{ evil = 1; }\r# x\u{1b}[31m"),
            "koush { evil = 1; } # x [31m"
        );
        assert_eq!(nix_comment("a\u{2028}b"), "a b");
        assert_eq!(nix_comment(&"x".repeat(500)).chars().count(), 200);
    }

    #[test]
    fn clean_text_keeps_lines_and_drops_escapes() {
        assert_eq!(clean_text("a\r\nb\u{1b}[0m\u{202E}\tc\rd"), "a\nb[0m\tc\nd");
    }
}
