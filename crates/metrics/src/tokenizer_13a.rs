//! sacreBLEU's default BLEU tokenizer, `13a` (mteval-v13a.pl as used by WMT):
//! `sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a` followed by its post-tokenizer
//! `tokenizer_re.TokenizerRegexp`. The four regular expressions are re-implemented as
//! left-to-right scans with the same non-overlapping match semantics as Python's `re.sub`.

use super::python_str;

/// Tokenizes one segment exactly as `Tokenizer13a()(line)`: drops `<skipped>` and `-\n`,
/// turns newlines into spaces, unescapes `&quot;`, `&amp;`, `&lt;`, `&gt;` (in that order,
/// each once), then applies `TokenizerRegexp` and joins the tokens with single spaces.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    tokenize_regexp(&format!(" {line} "))
}

/// `TokenizerRegexp.__call__`: the Western-language regexes, then `' '.join(line.split())`.
fn tokenize_regexp(line: &str) -> String {
    // r'([\{-\~\[-\` -\&\(-\+\:-\@\/])' -> r' \1 '
    let mut chars = Vec::with_capacity(line.len() * 2);
    for c in line.chars() {
        if is_separated_symbol(c) {
            chars.extend([' ', c, ' ']);
        } else {
            chars.push(c);
        }
    }
    // r'([^0-9])([\.,])' -> r'\1 \2 ': period and comma unless preceded by a digit.
    let chars = substitute_pairs(
        &chars,
        |a, b| !is_digit(a) && is_period_or_comma(b),
        |a, b| [a, ' ', b, ' '],
    );
    // r'([\.,])([^0-9])' -> r' \1 \2': period and comma unless followed by a digit.
    let chars = substitute_pairs(
        &chars,
        |a, b| is_period_or_comma(a) && !is_digit(b),
        |a, b| [' ', a, ' ', b],
    );
    // r'([0-9])(-)' -> r'\1 \2 ': dash when preceded by a digit.
    let chars = substitute_pairs(
        &chars,
        |a, b| is_digit(a) && b == '-',
        |a, b| [a, ' ', b, ' '],
    );
    let line: String = chars.into_iter().collect();
    python_str::split(&line).collect::<Vec<_>>().join(" ")
}

/// The character class `[\{-\~\[-\` -\&\(-\+\:-\@\/]`: ASCII symbols and space, but not
/// `'`, `,`, `-`, `.`, digits or letters.
fn is_separated_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// `[0-9]` in a Python `str` pattern: ASCII digits only.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// `[\.,]`.
fn is_period_or_comma(c: char) -> bool {
    c == '.' || c == ','
}

/// `re.sub` of a two-character pattern: scans left to right, replaces each match of
/// `(a, b)` and resumes after it (matches never overlap, replacements are not rescanned).
fn substitute_pairs(
    chars: &[char],
    matches: impl Fn(char, char) -> bool,
    replace: impl Fn(char, char) -> [char; 4],
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() + chars.len() / 2);
    let mut i = 0;
    while i < chars.len() {
        match chars.get(i + 1) {
            Some(&next) if matches(chars[i], next) => {
                out.extend(replace(chars[i], next));
                i += 2;
            }
            _ => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}
