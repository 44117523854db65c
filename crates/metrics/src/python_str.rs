//! Python `str` whitespace semantics, which sacreBLEU and jiwer rely on: `str.split()`,
//! `str.strip()`, `str.rstrip()` and the regex class `\s` all use CPython's
//! `Py_UNICODE_ISSPACE`. It differs from Rust's [`char::is_whitespace`] in treating the
//! information separators U+001C..U+001F as whitespace, so a line holding one of them splits
//! there in the references' tools and must split there here too.

/// Whether `c` is whitespace for Python (`str.isspace()`, regex `\s` on `str`).
pub(crate) fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's `s.split()`: the non-empty runs of non-whitespace.
pub(crate) fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|w| !w.is_empty())
}

/// Python's `s.strip()`.
pub(crate) fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Python's `s.rstrip()`.
pub(crate) fn rstrip(s: &str) -> &str {
    s.trim_end_matches(is_space)
}
