//! Text from a layout made safe to print: a ref name, a media type or a file name in a
//! crafted layout may hold escape sequences and line breaks that would forge output lines.

use std::borrow::Cow;

/// `text` with every control character, and every invisible character that reorders or hides
/// text (bidirectional overrides, zero-width characters, line and paragraph separators),
/// escaped as `{:?}` escapes it (`\n`, `\t`, `\u{1b}`). Everything else, backslashes and
/// quotes included, is left as it is, so ordinary names print unchanged.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn ordinary_names_are_unchanged_and_controls_are_escaped() {
        assert_eq!(printable("v1.0_latest-x:y/z"), "v1.0_latest-x:y/z");
        assert_eq!(printable(r#"a\b"c'd"#), r#"a\b"c'd"#);
        assert_eq!(printable("é ü 日本"), "é ü 日本");
        assert_eq!(printable("v1\nforged\tline"), "v1\\nforged\\tline");
        assert_eq!(printable("\u{1b}[31mred\u{7f}"), "\\u{1b}[31mred\\u{7f}");
        assert_eq!(printable("\u{202e}txt.exe"), "\\u{202e}txt.exe");
        assert_eq!(printable("\u{85}"), "\\u{85}");
    }
}
