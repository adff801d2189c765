//! Normalisation of the text an editor types, so that line endings, trailing blanks and
//! Unicode composition never show up as a change.

use unicode_normalization::UnicodeNormalization;

/// Normalises a prose field: CRLF and CR become LF, trailing spaces and tabs are trimmed
/// from every line, blank lines at both ends are dropped, and the text is put in NFC.
pub fn normalize(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");

    let mut lines: Vec<&str> = unified.split('\n').map(|line| line.trim_end_matches([' ', '\t'])).collect();
    while lines.first().is_some_and(|line| line.is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|line| line.is_empty()) {
        lines.pop();
    }

    compose(lines.join("\n"))
}

/// Puts text in NFC, skipping the work when a quick check already proves it is.
fn compose(text: String) -> String {
    match unicode_normalization::is_nfc_quick(text.chars()) {
        unicode_normalization::IsNormalized::Yes => text,
        _ => text.nfc().collect(),
    }
}

/// Normalises a one-line value (a name, a unit, a title): prose normalisation, and every
/// run of whitespace, line breaks included, becomes one space.
pub fn normalize_line(text: &str) -> String {
    let composed = compose(text.to_owned());
    composed.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Returns whether a one-line value contains a character that is invisible or changes how the
/// text around it reads: zero-width characters, direction overrides and isolates, line
/// and paragraph separators, the byte order mark and the soft hyphen. They let one name
/// look like another, so names, units and titles reject them.
pub fn has_invisible_chars(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    })
}

/// Whether the text contains a control character (other than LF and TAB in prose).
pub fn has_control_chars(text: &str, allow_newlines: bool) -> bool {
    text.chars().any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_found() {
        for hidden in ["NPS\u{202E}", "N\u{200B}PS", "\u{FEFF}NPS", "NPS\u{2028}", "N\u{00AD}PS"] {
            assert!(has_invisible_chars(hidden), "{hidden:?}");
        }
        assert!(!has_invisible_chars("Net Promoter Score (NPS) – café"));
    }

    #[test]
    fn line_endings_become_lf() {
        assert_eq!(normalize("a\r\nb\rc\n"), "a\nb\nc");
    }

    #[test]
    fn trailing_blanks_trimmed() {
        assert_eq!(normalize("\n\n  a  \nb\t\n\n"), "  a\nb");
    }

    #[test]
    fn decomposed_text_composed() {
        assert_eq!(normalize("cafe\u{301}"), "caf\u{e9}");
    }

    #[test]
    fn normalized_text_is_stable() {
        let once = normalize("x \r\n\r\ny\u{308}  ");
        assert_eq!(normalize(&once), once);
    }

    #[test]
    fn line_collapses_whitespace() {
        assert_eq!(normalize_line("  Gross \n revenue\tretention "), "Gross revenue retention");
    }
}
