//! GNU gettext `.mo` catalogs: a little- or big-endian header, then two tables of
//! `(length, offset)` pairs pointing at the original and translated strings.

use std::path::Path;

use crate::error::DataError;

/// Little-endian magic number (big-endian files store it byte-swapped).
const MAGIC: u32 = 0x950412de;

/// One message of a catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoEntry {
    /// `msgctxt`, when the message has one.
    pub context: Option<String>,
    /// The original (English) string; empty for the header entry.
    pub msgid: String,
    /// The plural original, for plural messages.
    pub msgid_plural: Option<String>,
    /// The translations: one, or one per plural form.
    pub msgstr: Vec<String>,
}

/// Reads a `.mo` file.
pub fn read_mo(path: &Path) -> Result<Vec<MoEntry>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_mo(&bytes, path)
}

/// Parses `.mo` bytes; `path` only names the file in errors. Strings are UTF-8, or Latin-1 when
/// they are not valid UTF-8 (old catalogs).
pub fn parse_mo(bytes: &[u8], path: &Path) -> Result<Vec<MoEntry>, DataError> {
    let bad = |reason: String| DataError::format(path, 0, format!("not a .mo catalog: {reason}"));
    let word = |at: usize, big: bool| -> Result<u32, DataError> {
        let b: [u8; 4] = bytes
            .get(at..at + 4)
            .ok_or_else(|| bad(format!("truncated at byte {at}")))?
            .try_into()
            .expect("4 bytes");
        Ok(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let big = match word(0, false)? {
        MAGIC => false,
        m if m.swap_bytes() == MAGIC => true,
        m => return Err(bad(format!("bad magic {m:#010x}"))),
    };
    let count = word(8, big)? as usize;
    let (originals, translations) = (word(12, big)? as usize, word(16, big)? as usize);
    let string = |table: usize, i: usize| -> Result<String, DataError> {
        let len = word(table + 8 * i, big)? as usize;
        let at = word(table + 8 * i + 4, big)? as usize;
        let raw = bytes
            .get(at..at + len)
            .ok_or_else(|| bad(format!("string {i} at {at}+{len} lies outside the file")))?;
        Ok(match std::str::from_utf8(raw) {
            Ok(s) => s.to_string(),
            Err(_) => raw.iter().map(|&b| b as char).collect(),
        })
    };
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        let original = string(originals, i)?;
        let translation = string(translations, i)?;
        let (context, ids) = match original.split_once('\u{4}') {
            Some((ctx, rest)) => (Some(ctx.to_string()), rest.to_string()),
            None => (None, original),
        };
        let mut ids = ids.split('\0').map(str::to_string);
        entries.push(MoEntry {
            context,
            msgid: ids.next().unwrap_or_default(),
            msgid_plural: ids.next(),
            msgstr: translation.split('\0').map(str::to_string).collect(),
        });
    }
    Ok(entries)
}
