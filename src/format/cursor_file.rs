//! The cursor sidecar `<file>.cursor`: the cursor of the last commit of a
//! cleanly closed file.
//!
//! A cleanly closed `.npy` has no journal beside it, and its header cannot
//! hold a user value (numpy rejects unknown header keys). When the last
//! commit carried a cursor, closing writes it here, synced, before the
//! journal is removed. The next writer copies it into its new journal and
//! removes the sidecar.
//!
//! # Byte map (all integers little-endian)
//!
//! ```text
//!   0  magic            8  b"NPYACURS"
//!   8  format version   4  u32 = FORMAT_VERSION
//!  12  cursor length    4  u32, <= journal::MAX_CURSOR_LEN
//!  16  rows             8  u64, committed rows of the .npy at that commit
//!  24  crc32            4  CRC32 of bytes 0..24 and of the cursor
//!  28  reserved         4  zero
//!  32  cursor           n  the user bytes
//! ```
//!
//! The row count binds the cursor to the file's state: a sidecar whose rows
//! differ from the file's (the file was rewritten by another program) is
//! ignored.

use super::FormatError;
use super::journal::{MAX_CURSOR_LEN, cursor_len};

/// Magic bytes at the start of a cursor sidecar.
pub const MAGIC: [u8; 8] = *b"NPYACURS";
/// Version of the layout written by this library.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the fixed part before the cursor.
pub const FIXED_LEN: usize = 32;
/// The longest a cursor sidecar can be: anything longer is not one.
pub const MAX_LEN: usize = FIXED_LEN + MAX_CURSOR_LEN;

/// The content of a cursor sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorFile {
    /// Committed rows of the `.npy` when the cursor was committed.
    pub rows: u64,
    /// The cursor.
    pub cursor: Vec<u8>,
}

impl CursorFile {
    /// Encodes the sidecar.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let len = cursor_len(&self.cursor)?;
        let mut buf = Vec::with_capacity(FIXED_LEN + self.cursor.len());
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&self.rows.to_le_bytes());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&buf);
        hasher.update(&self.cursor);
        buf.extend_from_slice(&hasher.finalize().to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&self.cursor);
        Ok(buf)
    }

    /// Decodes a sidecar; any torn, short or foreign content is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let bad = |what: &str| FormatError::malformed(Some(0), format!("cursor file: {what}"));
        let fixed = bytes.get(..FIXED_LEN).ok_or_else(|| bad("cut short"))?;
        if fixed.get(..8) != Some(&MAGIC[..]) {
            return Err(bad("bad magic"));
        }
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(fixed.get(at..at + 4)?.try_into().ok()?))
        };
        let version = word(8).ok_or_else(|| bad("cut short"))?;
        if version != FORMAT_VERSION {
            return Err(FormatError::unsupported(format!(
                "cursor file format version {version}; this library reads version {FORMAT_VERSION}"
            )));
        }
        let len = word(12).ok_or_else(|| bad("cut short"))? as usize;
        if len > MAX_CURSOR_LEN || bytes.len() != FIXED_LEN + len {
            return Err(bad("length does not match"));
        }
        let rows = fixed
            .get(16..24)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| bad("cut short"))?;
        let cursor = bytes.get(FIXED_LEN..).unwrap_or_default();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(fixed.get(..24).unwrap_or_default());
        hasher.update(cursor);
        if word(24) != Some(hasher.finalize()) || word(28) != Some(0) {
            return Err(bad("fails its checksum"));
        }
        Ok(Self {
            rows,
            cursor: cursor.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flipped_bit_is_caught() {
        let file = CursorFile {
            rows: 77,
            cursor: b"offset=123".to_vec(),
        };
        let bytes = file.encode().unwrap();
        assert_eq!(CursorFile::decode(&bytes).unwrap(), file);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(CursorFile::decode(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
        for cut in 0..bytes.len() {
            assert!(CursorFile::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn limit() {
        let max = CursorFile {
            rows: 1,
            cursor: vec![7; MAX_CURSOR_LEN],
        };
        assert_eq!(CursorFile::decode(&max.encode().unwrap()).unwrap(), max);
        let over = CursorFile {
            rows: 1,
            cursor: vec![7; MAX_CURSOR_LEN + 1],
        };
        assert!(over.encode().is_err());
    }
}
