//! The sidecar journal: which rows of the `.npy` are committed.
//!
//! The journal `<file>.journal` exists while a writer has the file open and
//! after a crash. It holds an identity block, written once when the journal is
//! created, and two fixed commit slots written alternately. A commit overwrites
//! the slot holding the *older* record, so a torn slot write (which fails its
//! CRC) leaves the previous commit intact in the other slot.
//!
//! # Byte map (all integers little-endian)
//!
//! ```text
//! identity block, offset 0, IDENTITY_FIXED_LEN bytes + header snapshot,
//! padded with zeros to a multiple of BLOCK:
//!   0  magic            8  b"NPYAJRNL"
//!   8  format version   4  u32 = FORMAT_VERSION
//!  12  flags            4  u32, bit 0 = the writer created the .npy itself
//!  16  journal id       8  u64, random; every slot repeats it
//!  24  header length    8  u64, bytes before the data in the .npy
//!  32  row bytes        8  u64, bytes per row
//!  40  snapshot length  4  u32, = header length
//!  44  reserved        16  zero
//!  60  crc32            4  CRC32 of bytes 0..60 and of the snapshot
//!  64  snapshot         n  the .npy header as the writer wrote it
//!
//! slot A at identity_len, slot B at identity_len + SLOT_LEN, SLOT_LEN bytes each:
//!   0  crc32            4  CRC32 of bytes 4..SLOT_FIXED_LEN + cursor length
//!   4  format version   1  u8 = FORMAT_VERSION
//!   5  flags            1  u8, bit 0 = the rows were durable before this record,
//!                          bit 1 = the .npy's device and inode follow
//!   6  reserved         2  zero
//!   8  journal id       8  u64, must equal the identity's
//!  16  sequence         8  u64, >= 1, grows by one per record
//!  24  rows             8  u64, committed rows after this commit
//!  32  previous rows    8  u64, committed rows before this commit
//!  40  data crc32       4  CRC32 of the data bytes of rows previous..rows
//!  44  cursor length    4  u32, <= MAX_CURSOR_LEN
//!  48  file device      8  u64, st_dev of the .npy the writer had open
//!                          (zero without flag bit 1)
//!  56  file inode       8  u64, its st_ino (zero without flag bit 1)
//!  64  cursor           n  opaque user bytes
//! ```
//!
//! The snapshot lets recovery rebuild a torn `.npy` header: it has the dtype,
//! order and row shape, and the exact header length, which never changes.

use super::FormatError;

/// Magic bytes at the start of every journal.
pub const MAGIC: [u8; 8] = *b"NPYAJRNL";
/// Version of the journal layout written by this library.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the fixed part of the identity block.
pub const IDENTITY_FIXED_LEN: usize = 64;
/// The identity block and the slots are aligned to this many bytes.
pub const BLOCK: u64 = 4096;
/// Length of the fixed part of a slot record.
pub const SLOT_FIXED_LEN: usize = 64;
/// Bytes reserved for each slot.
pub const SLOT_LEN: u64 = 8192;
/// Largest user cursor a slot can hold.
pub const MAX_CURSOR_LEN: usize = SLOT_LEN as usize - SLOT_FIXED_LEN;
/// Largest `.npy` header a journal accepts in its snapshot (numpy's own
/// writer never exceeds a `u32` length field; this bound keeps a garbage
/// length from causing a huge allocation).
pub const MAX_SNAPSHOT_LEN: u64 = 64 << 20;

const ID_VERSION: usize = 8;
const ID_FLAGS: usize = ID_VERSION + 4;
const ID_JOURNAL_ID: usize = ID_FLAGS + 4;
const ID_HEADER_LEN: usize = ID_JOURNAL_ID + 8;
const ID_ROW_BYTES: usize = ID_HEADER_LEN + 8;
const ID_SNAPSHOT_LEN: usize = ID_ROW_BYTES + 8;
const ID_RESERVED: usize = ID_SNAPSHOT_LEN + 4;
const ID_CRC: usize = ID_RESERVED + 16;
const _: () = assert!(ID_CRC + 4 == IDENTITY_FIXED_LEN);

const SLOT_CRC: usize = 0;
const SLOT_VERSION: usize = SLOT_CRC + 4;
const SLOT_FLAGS: usize = SLOT_VERSION + 1;
const SLOT_JOURNAL_ID: usize = SLOT_FLAGS + 1 + 2;
const SLOT_SEQUENCE: usize = SLOT_JOURNAL_ID + 8;
const SLOT_ROWS: usize = SLOT_SEQUENCE + 8;
const SLOT_PREV_ROWS: usize = SLOT_ROWS + 8;
const SLOT_DATA_CRC: usize = SLOT_PREV_ROWS + 8;
const SLOT_CURSOR_LEN: usize = SLOT_DATA_CRC + 4;
const SLOT_FILE_DEV: usize = SLOT_CURSOR_LEN + 4;
const SLOT_FILE_INO: usize = SLOT_FILE_DEV + 8;
const _: () = assert!(SLOT_FILE_INO + 8 == SLOT_FIXED_LEN);

/// Identity flag: the writer created the `.npy`, so until its first synced
/// commit every byte of it may be rebuilt from the snapshot.
pub const FLAG_CREATED: u32 = 1;
/// Slot flag: the committed rows were synced before the record was written.
pub const SLOT_FLAG_DATA_SYNCED: u8 = 1;
/// Slot flag: the device and inode numbers of the `.npy` follow
/// ([`Record::file_id`]). Records written before they were recorded have
/// zeros there and no flag.
pub const SLOT_FLAG_FILE_ID: u8 = 2;

/// One of the two commit slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The first slot, right after the identity block.
    A,
    /// The second slot.
    B,
}

impl Slot {
    /// The other slot.
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::A => "A",
            Self::B => "B",
        })
    }
}

/// The block that binds a journal to its `.npy`, written once at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Random number repeated in every slot, so that a slot left from another
    /// journal is never taken for one of this journal's.
    pub journal_id: u64,
    /// Bytes before the data in the `.npy`.
    pub header_len: u64,
    /// Bytes per row.
    pub row_bytes: u64,
    /// The `.npy` header bytes as the writer wrote them (`header_len` bytes).
    pub snapshot: Vec<u8>,
}

/// The length of the identity block for a header of `header_len` bytes.
pub fn identity_len(header_len: u64) -> Option<u64> {
    let raw = (IDENTITY_FIXED_LEN as u64).checked_add(header_len)?;
    raw.checked_next_multiple_of(BLOCK)
}

/// The byte offset of `slot` in a journal whose identity block is
/// `identity_len` bytes long.
pub fn slot_offset(identity_len: u64, slot: Slot) -> u64 {
    match slot {
        Slot::A => identity_len,
        Slot::B => identity_len + SLOT_LEN,
    }
}

/// The full length of a journal whose identity block is `identity_len` bytes.
pub fn journal_len(identity_len: u64) -> u64 {
    identity_len + 2 * SLOT_LEN
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The length field of `cursor`; [`FormatError::Unsupported`] past
/// [`MAX_CURSOR_LEN`].
pub(crate) fn cursor_len(cursor: &[u8]) -> Result<u32, FormatError> {
    u32::try_from(cursor.len())
        .ok()
        .filter(|&n| n as usize <= MAX_CURSOR_LEN)
        .ok_or_else(|| {
            FormatError::unsupported(format!(
                "cursor of {} bytes is longer than the {MAX_CURSOR_LEN}-byte limit",
                cursor.len()
            ))
        })
}

fn put(buf: &mut [u8], at: usize, value: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + value.len()) {
        dst.copy_from_slice(value);
    }
}

/// What the fixed part of an identity block says, before the snapshot is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityPrefix {
    /// Length of the snapshot that follows the fixed part.
    pub snapshot_len: u64,
}

impl Identity {
    /// Encodes the identity block, padded to [`identity_len`].
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let snapshot_len = u32::try_from(self.snapshot.len())
            .ok()
            .filter(|&n| u64::from(n) == self.header_len && u64::from(n) <= MAX_SNAPSHOT_LEN)
            .ok_or_else(|| {
                FormatError::unsupported(format!(
                    "a header of {} bytes is too long for the journal (limit {MAX_SNAPSHOT_LEN})",
                    self.snapshot.len()
                ))
            })?;
        let total = identity_len(self.header_len)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| FormatError::unsupported("header too long for the journal"))?;
        let mut buf = vec![0u8; total];
        put(&mut buf, 0, &MAGIC);
        put(&mut buf, ID_VERSION, &FORMAT_VERSION.to_le_bytes());
        put(&mut buf, ID_FLAGS, &self.flags.to_le_bytes());
        put(&mut buf, ID_JOURNAL_ID, &self.journal_id.to_le_bytes());
        put(&mut buf, ID_HEADER_LEN, &self.header_len.to_le_bytes());
        put(&mut buf, ID_ROW_BYTES, &self.row_bytes.to_le_bytes());
        put(&mut buf, ID_SNAPSHOT_LEN, &snapshot_len.to_le_bytes());
        put(&mut buf, IDENTITY_FIXED_LEN, &self.snapshot);
        let crc = identity_crc(buf.get(..ID_CRC).unwrap_or_default(), &self.snapshot);
        put(&mut buf, ID_CRC, &crc.to_le_bytes());
        Ok(buf)
    }

    /// Checks the fixed part of an identity block (its first
    /// [`IDENTITY_FIXED_LEN`] bytes) and says how long the snapshot is.
    pub fn decode_prefix(fixed: &[u8]) -> Result<IdentityPrefix, FormatError> {
        let fixed = fixed.get(..IDENTITY_FIXED_LEN).ok_or_else(|| {
            FormatError::malformed(
                Some(0),
                format!(
                    "journal is {} bytes, shorter than its {IDENTITY_FIXED_LEN}-byte identity block",
                    fixed.len()
                ),
            )
        })?;
        if fixed.get(..8) != Some(&MAGIC[..]) {
            return Err(FormatError::malformed(
                Some(0),
                "not an npy-append journal (bad magic)",
            ));
        }
        let version = u32_at(fixed, ID_VERSION).unwrap_or(0);
        if version == 0 {
            // Versions start at 1: a zero is a block not written yet.
            return Err(FormatError::malformed(
                Some(ID_VERSION as u64),
                "journal identity has format version 0 (not completely written)",
            ));
        }
        if version != FORMAT_VERSION {
            return Err(FormatError::unsupported(format!(
                "journal format version {version}; this library reads version {FORMAT_VERSION} \
                 (a newer npy-append wrote it: recover the file with that version)"
            )));
        }
        let snapshot_len = u64::from(u32_at(fixed, ID_SNAPSHOT_LEN).unwrap_or(0));
        let header_len = u64_at(fixed, ID_HEADER_LEN).unwrap_or(0);
        if snapshot_len != header_len || snapshot_len > MAX_SNAPSHOT_LEN {
            return Err(FormatError::malformed(
                Some(ID_SNAPSHOT_LEN as u64),
                format!(
                    "journal identity: snapshot length {snapshot_len} does not match header length {header_len}"
                ),
            ));
        }
        Ok(IdentityPrefix { snapshot_len })
    }

    /// Decodes an identity block: `bytes` holds the fixed part followed by at
    /// least the snapshot.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let prefix = Self::decode_prefix(bytes)?;
        let snapshot_end = IDENTITY_FIXED_LEN + prefix.snapshot_len as usize;
        let (Some(fixed), Some(snapshot)) = (
            bytes.get(..ID_CRC),
            bytes.get(IDENTITY_FIXED_LEN..snapshot_end),
        ) else {
            return Err(FormatError::malformed(
                Some(IDENTITY_FIXED_LEN as u64),
                "journal identity block is cut short",
            ));
        };
        let stored = u32_at(bytes, ID_CRC).unwrap_or(0);
        let computed = identity_crc(fixed, snapshot);
        if stored != computed {
            return Err(FormatError::malformed(
                Some(ID_CRC as u64),
                format!(
                    "journal identity block fails its checksum (stored {stored:#010x}, computed {computed:#010x})"
                ),
            ));
        }
        Ok(Self {
            flags: u32_at(bytes, ID_FLAGS).unwrap_or(0),
            journal_id: u64_at(bytes, ID_JOURNAL_ID).unwrap_or(0),
            header_len: u64_at(bytes, ID_HEADER_LEN).unwrap_or(0),
            row_bytes: u64_at(bytes, ID_ROW_BYTES).unwrap_or(0),
            snapshot: snapshot.to_vec(),
        })
    }

    /// The length of this identity block on disk.
    pub fn block_len(&self) -> u64 {
        identity_len(self.header_len).unwrap_or(u64::MAX)
    }

    /// Whether the writer created the `.npy` itself.
    pub fn created(&self) -> bool {
        self.flags & FLAG_CREATED != 0
    }
}

fn identity_crc(fixed: &[u8], snapshot: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(fixed);
    hasher.update(snapshot);
    hasher.finalize()
}

/// One commit record, as stored in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Grows by one with every record; the newer slot has the larger one.
    pub sequence: u64,
    /// Committed rows after this commit.
    pub rows: u64,
    /// Committed rows before this commit.
    pub prev_rows: u64,
    /// CRC32 of the data bytes of rows `prev_rows..rows`.
    pub data_crc: u32,
    /// The rows were synced to disk before this record was written.
    pub data_synced: bool,
    /// Opaque user bytes committed with the rows.
    pub cursor: Vec<u8>,
    /// The device and inode numbers of the `.npy` the writer had open, when
    /// the file system has them: a file replaced under its path since (renamed
    /// over, or removed and created again) has others.
    pub file_id: Option<(u64, u64)>,
}

impl Record {
    /// Encodes the record for a journal with the given id. Only the used part
    /// of the slot is returned; the rest of the slot is never read.
    pub fn encode(&self, journal_id: u64) -> Result<Vec<u8>, FormatError> {
        let mut buf = Vec::new();
        self.encode_into(journal_id, &mut buf)?;
        Ok(buf)
    }

    /// [`encode`](Self::encode) into `buf`, which is cleared first (so that
    /// a writer reuses one buffer for every commit).
    pub fn encode_into(&self, journal_id: u64, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        let cursor_len = cursor_len(&self.cursor)?;
        buf.clear();
        buf.resize(SLOT_FIXED_LEN + self.cursor.len(), 0);
        put(buf, SLOT_VERSION, &[FORMAT_VERSION as u8]);
        let mut flags = u8::from(self.data_synced) * SLOT_FLAG_DATA_SYNCED;
        if let Some((dev, ino)) = self.file_id {
            flags |= SLOT_FLAG_FILE_ID;
            put(buf, SLOT_FILE_DEV, &dev.to_le_bytes());
            put(buf, SLOT_FILE_INO, &ino.to_le_bytes());
        }
        put(buf, SLOT_FLAGS, &[flags]);
        put(buf, SLOT_JOURNAL_ID, &journal_id.to_le_bytes());
        put(buf, SLOT_SEQUENCE, &self.sequence.to_le_bytes());
        put(buf, SLOT_ROWS, &self.rows.to_le_bytes());
        put(buf, SLOT_PREV_ROWS, &self.prev_rows.to_le_bytes());
        put(buf, SLOT_DATA_CRC, &self.data_crc.to_le_bytes());
        put(buf, SLOT_CURSOR_LEN, &cursor_len.to_le_bytes());
        put(buf, SLOT_FIXED_LEN, &self.cursor);
        let crc = crc32fast::hash(buf.get(SLOT_VERSION..).unwrap_or_default());
        put(buf, SLOT_CRC, &crc.to_le_bytes());
        Ok(())
    }

    /// How many bytes of the slot the record whose fixed part is `fixed`
    /// occupies, so the caller knows how much to read. `None` when the
    /// cursor length is out of range (the slot is torn or garbage).
    pub fn encoded_len(fixed: &[u8]) -> Option<usize> {
        let cursor_len = u32_at(fixed, SLOT_CURSOR_LEN)? as usize;
        (cursor_len <= MAX_CURSOR_LEN).then_some(SLOT_FIXED_LEN + cursor_len)
    }

    /// Decodes a slot; `bytes` holds at least [`Record::encoded_len`] bytes.
    ///
    /// Any failure means the slot holds no valid record of this journal: it
    /// was torn, never written, or belongs to another journal.
    pub fn decode(bytes: &[u8], journal_id: u64) -> Result<Self, FormatError> {
        let len = Self::encoded_len(bytes).ok_or_else(|| {
            FormatError::malformed(
                Some(SLOT_CURSOR_LEN as u64),
                "slot cursor length out of range",
            )
        })?;
        let body = bytes
            .get(SLOT_VERSION..len)
            .ok_or_else(|| FormatError::malformed(Some(0), "slot is cut short"))?;
        let stored = u32_at(bytes, SLOT_CRC).unwrap_or(0);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(FormatError::malformed(
                Some(SLOT_CRC as u64),
                format!(
                    "slot fails its checksum (stored {stored:#010x}, computed {computed:#010x})"
                ),
            ));
        }
        let version = u32::from(bytes.get(SLOT_VERSION).copied().unwrap_or(0));
        if version != FORMAT_VERSION {
            return Err(FormatError::unsupported(format!(
                "journal slot format version {version}; this library reads version {FORMAT_VERSION}"
            )));
        }
        let found_id = u64_at(bytes, SLOT_JOURNAL_ID).unwrap_or(0);
        if found_id != journal_id {
            return Err(FormatError::malformed(
                Some(SLOT_JOURNAL_ID as u64),
                "slot belongs to another journal",
            ));
        }
        let flags = bytes.get(SLOT_FLAGS).copied().unwrap_or(0);
        let record = Self {
            sequence: u64_at(bytes, SLOT_SEQUENCE).unwrap_or(0),
            rows: u64_at(bytes, SLOT_ROWS).unwrap_or(0),
            prev_rows: u64_at(bytes, SLOT_PREV_ROWS).unwrap_or(0),
            data_crc: u32_at(bytes, SLOT_DATA_CRC).unwrap_or(0),
            data_synced: flags & SLOT_FLAG_DATA_SYNCED != 0,
            cursor: bytes.get(SLOT_FIXED_LEN..len).unwrap_or_default().to_vec(),
            file_id: (flags & SLOT_FLAG_FILE_ID != 0).then(|| {
                (
                    u64_at(bytes, SLOT_FILE_DEV).unwrap_or(0),
                    u64_at(bytes, SLOT_FILE_INO).unwrap_or(0),
                )
            }),
        };
        if record.sequence == 0 || record.prev_rows > record.rows {
            return Err(FormatError::malformed(
                Some(SLOT_SEQUENCE as u64),
                format!(
                    "slot record is inconsistent (sequence {}, rows {} after {})",
                    record.sequence, record.rows, record.prev_rows
                ),
            ));
        }
        Ok(record)
    }
}

/// Bytes a torn write is judged by: writes land or fail in whole sectors.
pub const SECTOR: usize = 512;

/// Whether `b` may be byte `k` of slot A's fixed part as a journal's
/// creation writes it: version, no flags but the file-id flag, sequence 1,
/// no data checksum, no cursor (the checksum, the journal id, the row
/// counts and the file's identity may be anything).
fn creation_slot_byte_ok(k: usize, b: u8) -> bool {
    match k {
        SLOT_VERSION => b == FORMAT_VERSION as u8,
        SLOT_FLAGS => b & !SLOT_FLAG_FILE_ID == 0,
        6 | 7 => b == 0,
        SLOT_SEQUENCE => b == 1,
        x if (SLOT_SEQUENCE + 1..SLOT_ROWS).contains(&x) => b == 0,
        x if (SLOT_DATA_CRC..SLOT_FILE_DEV).contains(&x) => b == 0,
        _ => true,
    }
}

/// Whether the creation record at `block` has rows equal to its previous
/// rows (both lie in slot A's first sector: zeros there if it did not land).
fn creation_rows_agree(bytes: &[u8], block: u64) -> bool {
    let rows_at = usize::try_from(block)
        .unwrap_or(usize::MAX)
        .saturating_add(SLOT_ROWS);
    match (u64_at(bytes, rows_at), u64_at(bytes, rows_at + 8)) {
        (Some(rows), Some(prev)) => rows == prev,
        _ => true,
    }
}

/// Whether `bytes` (a journal file whose identity does not decode) are the
/// creation of a journal cut short: what [`Identity::encode`] and the first
/// [`Record::encode`] (slot A, sequence 1) write in one write, with any of
/// its sectors not landed (zeros, or the file ending early). Precisely:
///
/// - empty, or every sector zero, within the longest creation write; or
/// - a first sector of zeros (it did not land) in a file exactly as long as
///   a creation write (identity block, a multiple of [`BLOCK`], and slot
///   A's fixed part), whose identity block holds only header text or zeros
///   and whose slot A is a creation's, as below; or
/// - no longer than the creation write its first sector describes, that
///   first sector holding the magic, format version [`FORMAT_VERSION`],
///   known flags, a snapshot length equal to the header length and a
///   snapshot that starts like an `.npy` header; every other sector either
///   all zeros or holding, where it overlaps them, zeros in the padding
///   after the snapshot, and slot A's fixed part as a creation writes it
///   (version, no flags but the file-id flag, sequence 1, rows equal to
///   previous rows, no checksum of data, no cursor).
///
/// Anything else (other bytes in the first sector, garbage, a copy of the
/// `.npy`, a newer format) is not a torn creation of this library: recovery
/// refuses it rather than remove a file it cannot show is its own.
pub fn is_torn_creation(bytes: &[u8]) -> bool {
    let max_len = IDENTITY_FIXED_LEN as u64 + MAX_SNAPSHOT_LEN + BLOCK + SLOT_FIXED_LEN as u64;
    if bytes.len() as u64 > max_len {
        return false;
    }
    let zero = |b: &[u8]| b.iter().all(|&x| x == 0);
    let Some(first) = bytes.get(..SECTOR.min(bytes.len())) else {
        return false;
    };
    if zero(bytes) {
        return true;
    }
    if zero(first) {
        // The first sector did not land. A torn write leaves the file as
        // long as the whole write, so slot A's record ends the file: its
        // fixed part must be a creation's, and the rest of the identity
        // block header text (the snapshot) or zeros.
        let Some(block) = (bytes.len() as u64).checked_sub(SLOT_FIXED_LEN as u64) else {
            return false;
        };
        if block == 0 || !block.is_multiple_of(BLOCK) {
            return false;
        }
        let text = |b: u8| b == 0 || b == b'\n' || (0x20..0x7f).contains(&b);
        return bytes.chunks(SECTOR).enumerate().skip(1).all(|(i, sector)| {
            zero(sector)
                || sector.iter().enumerate().all(|(j, &b)| {
                    let at = (i * SECTOR + j) as u64;
                    if at < block {
                        text(b)
                    } else {
                        creation_slot_byte_ok((at - block) as usize, b)
                    }
                })
        }) && creation_rows_agree(bytes, block);
    }
    if first.len() < IDENTITY_FIXED_LEN {
        // A creation cut inside its fixed part: the magic and version as
        // far as they go.
        let mut start = MAGIC.to_vec();
        start.extend(FORMAT_VERSION.to_le_bytes());
        return first.iter().zip(&start).all(|(a, b)| a == b);
    }
    // The first sector as written: magic, version, flags, lengths.
    let fixed_ok = first.get(..8) == Some(&MAGIC[..])
        && u32_at(first, ID_VERSION) == Some(FORMAT_VERSION)
        && u32_at(first, ID_FLAGS).is_some_and(|f| f & !FLAG_CREATED == 0);
    let Some(header_len) = u64_at(first, ID_HEADER_LEN) else {
        return false;
    };
    if !fixed_ok
        || u32_at(first, ID_SNAPSHOT_LEN).map(u64::from) != Some(header_len)
        || header_len > MAX_SNAPSHOT_LEN
        || first
            .get(ID_SNAPSHOT_LEN + 4..ID_CRC)
            .is_some_and(|r| !zero(r))
    {
        return false;
    }
    let snapshot_start = first.get(IDENTITY_FIXED_LEN..);
    if snapshot_start
        .is_some_and(|s| !b"\x93NUMPY".starts_with(s.get(..s.len().min(6)).unwrap_or_default()))
    {
        return false;
    }
    let Some(block) = identity_len(header_len) else {
        return false;
    };
    let snapshot_end = IDENTITY_FIXED_LEN as u64 + header_len;
    let slot_end = block + SLOT_FIXED_LEN as u64;
    if bytes.len() as u64 > slot_end {
        return false;
    }
    for (i, sector) in bytes.chunks(SECTOR).enumerate().skip(1) {
        if zero(sector) {
            continue;
        }
        let base = (i * SECTOR) as u64;
        for (j, &b) in sector.iter().enumerate() {
            let at = base + j as u64;
            let ok = if at < snapshot_end {
                true
            } else if at < block {
                b == 0
            } else {
                creation_slot_byte_ok((at - block) as usize, b)
            };
            if !ok {
                return false;
            }
        }
    }
    creation_rows_agree(bytes, block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            flags: FLAG_CREATED,
            journal_id: 0x1234_5678_9abc_def0,
            header_len: 128,
            row_bytes: 512,
            snapshot: (0..128u8).collect(),
        }
    }

    #[test]
    fn identity_round_trip() {
        let id = identity();
        let bytes = id.encode().unwrap();
        assert_eq!(bytes.len() as u64, BLOCK);
        assert_eq!(id.block_len(), BLOCK);
        assert_eq!(Identity::decode(&bytes).unwrap(), id);
        assert!(id.created());
    }

    #[test]
    fn identity_layout_is_little_endian_at_documented_offsets() {
        let bytes = identity().encode().unwrap();
        assert_eq!(&bytes[..8], b"NPYAJRNL");
        assert_eq!(bytes[8..12], 1u32.to_le_bytes());
        assert_eq!(bytes[24..32], 128u64.to_le_bytes());
        assert_eq!(bytes[32..40], 512u64.to_le_bytes());
        assert_eq!(bytes[64], 0);
        assert_eq!(bytes[64 + 127], 127);
    }

    #[test]
    fn identity_every_flipped_bit_is_caught() {
        let bytes = identity().encode().unwrap();
        for i in 0..(IDENTITY_FIXED_LEN + 128) {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(Identity::decode(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn identity_rejects_short_future_and_garbage() {
        let bytes = identity().encode().unwrap();
        for cut in [0, 1, 8, 63, 64, 100, 191] {
            assert!(Identity::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut future = bytes.clone();
        future[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert!(matches!(
            Identity::decode(&future),
            Err(FormatError::Unsupported { .. })
        ));
        assert!(Identity::decode(&[0u8; 4096]).is_err());
        assert!(Identity::decode(&[0xffu8; 4096]).is_err());
    }

    #[test]
    fn identity_version_zero_is_unwritten_not_future() {
        let mut bytes = identity().encode().unwrap();
        bytes[8..12].fill(0);
        assert!(matches!(
            Identity::decode_prefix(&bytes),
            Err(FormatError::Malformed { .. })
        ));
    }

    #[test]
    fn identity_refuses_huge_snapshot_length() {
        let mut bytes = identity().encode().unwrap();
        bytes[ID_HEADER_LEN..ID_HEADER_LEN + 8].copy_from_slice(&u64::from(u32::MAX).to_le_bytes());
        bytes[ID_SNAPSHOT_LEN..ID_SNAPSHOT_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Identity::decode_prefix(&bytes).is_err());
    }

    fn record() -> Record {
        Record {
            sequence: 7,
            rows: 100,
            prev_rows: 64,
            data_crc: 0xdead_beef,
            data_synced: true,
            cursor: b"input-offset=4242".to_vec(),
            file_id: Some((0x803, 1_234_567)),
        }
    }

    #[test]
    fn record_round_trip() {
        let r = record();
        let bytes = r.encode(42).unwrap();
        assert_eq!(Record::encoded_len(&bytes), Some(bytes.len()));
        assert_eq!(Record::decode(&bytes, 42).unwrap(), r);
        let empty = Record {
            cursor: Vec::new(),
            ..r
        };
        assert_eq!(
            Record::decode(&empty.encode(42).unwrap(), 42).unwrap(),
            empty
        );
    }

    #[test]
    fn record_of_another_journal_is_rejected() {
        let bytes = record().encode(42).unwrap();
        assert!(Record::decode(&bytes, 43).is_err());
    }

    #[test]
    fn record_every_flipped_bit_is_caught() {
        let bytes = record().encode(42).unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                let ok = Record::encoded_len(&bad)
                    .filter(|&n| n <= bad.len())
                    .is_some_and(|_| Record::decode(&bad, 42).is_ok());
                assert!(!ok, "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn record_rejects_torn_zero_and_inconsistent() {
        let bytes = record().encode(42).unwrap();
        for cut in [0, 4, 63, 64, bytes.len() - 1] {
            assert!(Record::decode(&bytes[..cut], 42).is_err(), "cut at {cut}");
        }
        assert!(Record::decode(&[0u8; SLOT_FIXED_LEN], 0).is_err());
        let backwards = Record {
            rows: 1,
            prev_rows: 2,
            ..record()
        };
        assert!(Record::decode(&backwards.encode(42).unwrap(), 42).is_err());
        let zero_seq = Record {
            sequence: 0,
            ..record()
        };
        assert!(Record::decode(&zero_seq.encode(42).unwrap(), 42).is_err());
    }

    #[test]
    fn cursor_limit_is_enforced() {
        let big = Record {
            cursor: vec![1; MAX_CURSOR_LEN + 1],
            ..record()
        };
        assert!(big.encode(1).is_err());
        let max = Record {
            cursor: vec![1; MAX_CURSOR_LEN],
            ..record()
        };
        assert_eq!(max.encode(1).unwrap().len() as u64, SLOT_LEN);
    }

    #[test]
    fn slots_follow_identity() {
        assert_eq!(slot_offset(4096, Slot::A), 4096);
        assert_eq!(slot_offset(4096, Slot::B), 4096 + SLOT_LEN);
        assert_eq!(journal_len(4096), 4096 + 2 * SLOT_LEN);
        assert_eq!(identity_len(128), Some(4096));
        assert_eq!(identity_len(4096 - 64 + 1), Some(8192));
        assert_eq!(identity_len(u64::MAX), None);
        assert_eq!(Slot::A.other(), Slot::B);
    }

    /// The bytes a creation writes: identity and slot A in one write.
    fn creation(snapshot: &[u8], flags: u32, file_id: Option<(u64, u64)>) -> Vec<u8> {
        let identity = Identity {
            flags,
            journal_id: 0x5151_7272_9393_b4b4,
            header_len: snapshot.len() as u64,
            row_bytes: 12,
            snapshot: snapshot.to_vec(),
        };
        let mut out = identity.encode().unwrap();
        let record = Record {
            sequence: 1,
            rows: 7,
            prev_rows: 7,
            file_id,
            ..Record::default()
        };
        out.extend(record.encode(identity.journal_id).unwrap());
        out
    }

    fn npy_header(len: usize) -> Vec<u8> {
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        h.extend(u16::try_from(len - 10).unwrap().to_le_bytes());
        h.extend(b"{'descr': '<f4', 'fortran_order': False, 'shape': (7, 3), }");
        h.resize(len - 1, b' ');
        h.push(b'\n');
        h
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_creation_cut_short_is_torn() {
        for (snapshot_len, flags, file_id) in [
            (128, 0, None),
            (128, FLAG_CREATED, None),
            (128, 0, Some((0x803, 99))),
            (5000, 0, Some((1, 2))),
        ] {
            let full = creation(&npy_header(snapshot_len), flags, file_id);
            assert!(Identity::decode(&full).is_ok());
            // Every prefix (the write stopped, at any byte).
            for cut in 0..full.len() {
                assert!(is_torn_creation(&full[..cut]), "prefix of {cut} bytes");
            }
            // Any sectors not landed (zeros), the first one included.
            let sectors = full.len().div_ceil(SECTOR);
            for lost in 0..sectors {
                let mut torn = full.clone();
                let end = ((lost + 1) * SECTOR).min(torn.len());
                torn[lost * SECTOR..end].fill(0);
                assert!(is_torn_creation(&torn), "sector {lost} zero");
                // With the first sector lost as well.
                torn[..SECTOR].fill(0);
                assert!(is_torn_creation(&torn), "sectors 0 and {lost} zero");
            }
            // Zeros of any length up to the creation's.
            assert!(is_torn_creation(&vec![0; full.len()]));
        }
        assert!(is_torn_creation(&[]));
    }

    #[test]
    fn anything_else_is_not_a_torn_creation() {
        let full = creation(&npy_header(128), 0, None);
        // Random bytes of several lengths, and a copy of an .npy.
        for (n, seed) in [(100, 1), (512, 2), (8192, 3), (20480, 4)] {
            assert!(!is_torn_creation(&noise(n, seed)), "{n} random bytes");
        }
        let mut npy = npy_header(128);
        npy.extend(noise(7 * 12, 5));
        assert!(!is_torn_creation(&npy));
        // Garbage in the first sector, or in a later one.
        let mut garbage_first = full.clone();
        garbage_first[..SECTOR].copy_from_slice(&noise(SECTOR, 6));
        assert!(!is_torn_creation(&garbage_first));
        let mut garbage_padding = full.clone();
        garbage_padding[1024..1536].copy_from_slice(&noise(SECTOR, 7));
        garbage_padding[20] ^= 1; // the identity's checksum fails
        assert!(!is_torn_creation(&garbage_padding));
        // A slot that is not a creation's record (a later commit's).
        let mut later = full.clone();
        later[4096 + SLOT_SEQUENCE] = 2;
        later[20] ^= 1;
        assert!(!is_torn_creation(&later));
        // A newer format, and flags this version does not write.
        let mut newer = full.clone();
        newer[ID_VERSION] = 2;
        assert!(!is_torn_creation(&newer));
        let mut flags = full.clone();
        flags[ID_FLAGS] = 0x80;
        assert!(!is_torn_creation(&flags));
        // Longer than the creation write.
        let mut longer = full.clone();
        longer[20] ^= 1;
        longer.push(0);
        assert!(!is_torn_creation(&longer));
        // After a first sector of zeros: bytes no header holds, a slot that
        // is not a creation's, or a length no creation has.
        let mut lost_first = vec![0u8; full.len()];
        lost_first[600] = 0xff;
        assert!(!is_torn_creation(&lost_first));
        let mut later_slot = full.clone();
        later_slot[..SECTOR].fill(0);
        later_slot[4096 + SLOT_SEQUENCE] = 2;
        assert!(!is_torn_creation(&later_slot));
        let mut odd_length = full.clone();
        odd_length[..SECTOR].fill(0);
        odd_length.push(0);
        assert!(!is_torn_creation(&odd_length));
    }
}
