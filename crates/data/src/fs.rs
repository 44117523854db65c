//! File helpers shared by the data layer: atomic writes (the fbank crate's temporary file +
//! rename, with I/O errors reported as I/O rather than as audio errors) and positioned reads.

use std::fs::File;
use std::path::Path;

use super::error::DataError;

/// Writes `bytes` to `path` through a temporary sibling and a rename, so that an interrupted
/// run leaves either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    fbank::npy::write_atomic(path, bytes).map_err(|e| match e {
        fbank::FbankError::Io { path, source } => DataError::Io { path, source },
        other => DataError::Audio(other),
    })
}

/// Fills `buf` from `file` at byte `offset` without moving a shared cursor, so that several
/// threads can read one file at once.
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}
