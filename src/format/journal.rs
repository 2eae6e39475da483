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
//!   5  flags            1  u8, bit 0 = the rows were durable before this record
//!   6  reserved         2  zero
//!   8  journal id       8  u64, must equal the identity's
//!  16  sequence         8  u64, >= 1, grows by one per record
//!  24  rows             8  u64, committed rows after this commit
//!  32  previous rows    8  u64, committed rows before this commit
//!  40  data crc32       4  CRC32 of the data bytes of rows previous..rows
//!  44  cursor length    4  u32, <= MAX_CURSOR_LEN
//!  48  reserved        16  zero
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
const SLOT_RESERVED: usize = SLOT_CURSOR_LEN + 4;
const _: () = assert!(SLOT_RESERVED + 16 == SLOT_FIXED_LEN);

/// Identity flag: the writer created the `.npy`, so until its first synced
/// commit every byte of it may be rebuilt from the snapshot.
pub const FLAG_CREATED: u32 = 1;
/// Slot flag: the committed rows were synced before the record was written.
pub const SLOT_FLAG_DATA_SYNCED: u8 = 1;

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
        put(
            buf,
            SLOT_FLAGS,
            &[u8::from(self.data_synced) * SLOT_FLAG_DATA_SYNCED],
        );
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
        let record = Self {
            sequence: u64_at(bytes, SLOT_SEQUENCE).unwrap_or(0),
            rows: u64_at(bytes, SLOT_ROWS).unwrap_or(0),
            prev_rows: u64_at(bytes, SLOT_PREV_ROWS).unwrap_or(0),
            data_crc: u32_at(bytes, SLOT_DATA_CRC).unwrap_or(0),
            data_synced: bytes.get(SLOT_FLAGS).copied().unwrap_or(0) & SLOT_FLAG_DATA_SYNCED != 0,
            cursor: bytes.get(SLOT_FIXED_LEN..len).unwrap_or_default().to_vec(),
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
}
