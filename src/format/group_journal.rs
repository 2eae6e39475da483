//! The group journal: the committed row count of every member of an append
//! group, and the cursor, in one record.
//!
//! Like the single-file journal it has an identity block, written once when
//! the group is created, and two commit slots written alternately (a commit
//! overwrites the slot holding the older record, so a torn write leaves the
//! previous commit in the other). Unlike it, it stays after a clean close:
//! it names the members and holds the group's cursor.
//!
//! # Byte map (all integers little-endian)
//!
//! ```text
//! identity block, offset 0, padded with zeros to a multiple of BLOCK:
//!   0  magic            8  b"NPYAGRUP"
//!   8  format version   4  u32 = FORMAT_VERSION
//!  12  member count     4  u32, 1..=MAX_MEMBERS
//!  16  group id         8  u64, random; every slot repeats it
//!  24  body length      4  u32, bytes of the member entries
//!  28  reserved        32  zero
//!  60  crc32            4  CRC32 of bytes 0..60 and of the body
//!  64  body: per member, in order:
//!        name length    4  u32, 1..=MAX_NAME_LEN (UTF-8 file name, no '/')
//!        header length  8  u64, bytes before the data in the member
//!        row bytes      8  u64
//!        name           n
//!        snapshot       header length bytes: the member's header as created
//!
//! slot A at identity_len, slot B at identity_len + slot_len(members):
//!   0  crc32            4  CRC32 of bytes 4..64 + 24 * members + cursor length
//!   4  format version   1  u8 = FORMAT_VERSION
//!   5  flags            1  u8, bit 0 = every member's rows were synced first,
//!                          bit 1 = the writer closed the group cleanly with
//!                          this record (readers ignore other bits)
//!   6  reserved         2  zero
//!   8  group id         8  u64, must equal the identity's
//!  16  sequence         8  u64, >= 1, grows by one per record
//!  24  member count     4  u32, must equal the identity's
//!  28  cursor length    4  u32, <= MAX_CURSOR_LEN
//!  32  reserved        32  zero
//!  64  per member: rows 8 (u64), previous rows 8 (u64),
//!      data crc32 4 (of the bytes of rows previous..rows), reserved 4
//!  64 + 24 * members: cursor
//! ```

use super::FormatError;
pub use super::journal::{MAX_CURSOR_LEN, Slot};

/// Magic bytes at the start of a group journal.
pub const MAGIC: [u8; 8] = *b"NPYAGRUP";
/// Version of the layout written by this library.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the fixed part of the identity block.
pub const IDENTITY_FIXED_LEN: usize = 64;
/// Length of the fixed part of a slot.
pub const SLOT_FIXED_LEN: usize = 64;
/// Bytes per member in a slot.
pub const MEMBER_ENTRY_LEN: usize = 24;
/// The identity block and the slots are aligned to this many bytes.
pub const BLOCK: u64 = 4096;
/// Most members a group can have.
pub const MAX_MEMBERS: usize = 1024;
/// Longest member file name.
pub const MAX_NAME_LEN: usize = 255;
/// Largest member header a group journal accepts.
pub const MAX_SNAPSHOT_LEN: u64 = 1 << 20;
/// Slot flag: every member's rows were synced before the record.
pub const SLOT_FLAG_DATA_SYNCED: u8 = 1;
/// Slot flag: the record is the last one of a writer that closed the group
/// cleanly (its members synced, headers final). Written by `close` in a
/// record of its own (no new rows); any later record lacks it. A decoder
/// that does not know the flag reads the record as any other (the CRC
/// covers it), which is also what it means for recovery: nothing to do.
pub const SLOT_FLAG_CLOSED: u8 = 2;

/// One member as the identity block describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentity {
    /// The member's file name, in the group journal's directory.
    pub name: String,
    /// Bytes before the data.
    pub header_len: u64,
    /// Bytes per row.
    pub row_bytes: u64,
    /// The header as the group created it (its row count is 0).
    pub snapshot: Vec<u8>,
}

/// The identity block of a group journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupIdentity {
    /// Random id repeated in every slot.
    pub group_id: u64,
    /// The members, in order.
    pub members: Vec<MemberIdentity>,
}

/// One member's counts in a commit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemberCommit {
    /// Committed rows after this commit.
    pub rows: u64,
    /// Committed rows before it.
    pub prev_rows: u64,
    /// CRC32 of the data bytes of rows `prev_rows..rows`.
    pub data_crc: u32,
}

/// One commit record of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupRecord {
    /// Grows by one per record; the newer slot has the larger one.
    pub sequence: u64,
    /// Every member's rows were synced before the record was written.
    pub data_synced: bool,
    /// The writer closed the group cleanly with this record
    /// ([`SLOT_FLAG_CLOSED`]).
    pub closed: bool,
    /// One entry per member, in the identity's order.
    pub members: Vec<MemberCommit>,
    /// The user's cursor.
    pub cursor: Vec<u8>,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn round_up(n: u64) -> Option<u64> {
    n.checked_next_multiple_of(BLOCK)
}

/// Bytes reserved for each slot of a group of `members` members.
pub fn slot_len(members: usize) -> u64 {
    round_up((SLOT_FIXED_LEN + MEMBER_ENTRY_LEN * members + MAX_CURSOR_LEN) as u64)
        .unwrap_or(u64::MAX)
}

/// Whether `name` can name a member: a plain file name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
}

impl GroupIdentity {
    /// Encodes the identity block, padded to a multiple of [`BLOCK`].
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return Err(FormatError::unsupported(format!(
                "a group has 1 to {MAX_MEMBERS} members, not {}",
                self.members.len()
            )));
        }
        let mut body = Vec::new();
        for m in &self.members {
            if !valid_name(&m.name) {
                return Err(FormatError::unsupported(format!(
                    "member name {:?} is not a plain file name of at most {MAX_NAME_LEN} bytes",
                    m.name
                )));
            }
            if m.snapshot.len() as u64 != m.header_len || m.header_len > MAX_SNAPSHOT_LEN {
                return Err(FormatError::unsupported(format!(
                    "member {}: a header of {} bytes does not fit the group journal",
                    m.name, m.header_len
                )));
            }
            body.extend_from_slice(&(m.name.len() as u32).to_le_bytes());
            body.extend_from_slice(&m.header_len.to_le_bytes());
            body.extend_from_slice(&m.row_bytes.to_le_bytes());
            body.extend_from_slice(m.name.as_bytes());
            body.extend_from_slice(&m.snapshot);
        }
        let body_len = u32::try_from(body.len())
            .map_err(|_| FormatError::unsupported("group identity too long"))?;
        let mut buf = Vec::with_capacity(IDENTITY_FIXED_LEN + body.len());
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        buf.extend_from_slice(&self.group_id.to_le_bytes());
        buf.extend_from_slice(&body_len.to_le_bytes());
        buf.resize(60, 0);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&buf);
        hasher.update(&body);
        buf.extend_from_slice(&hasher.finalize().to_le_bytes());
        buf.extend_from_slice(&body);
        let total = round_up(buf.len() as u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| FormatError::unsupported("group identity too long"))?;
        buf.resize(total, 0);
        Ok(buf)
    }

    /// The body length the fixed part `fixed` announces (to know how much
    /// to read), after checking magic and version.
    pub fn body_len(fixed: &[u8]) -> Result<usize, FormatError> {
        if fixed.len() < IDENTITY_FIXED_LEN {
            return Err(FormatError::malformed(
                Some(0),
                "group journal is shorter than its identity block",
            ));
        }
        if fixed.get(..8) != Some(&MAGIC[..]) {
            return Err(FormatError::malformed(
                Some(0),
                "not an npy-append group journal (bad magic)",
            ));
        }
        match u32_at(fixed, 8) {
            Some(FORMAT_VERSION) => {}
            Some(0) | None => {
                return Err(FormatError::malformed(
                    Some(8),
                    "group journal identity has format version 0 (not completely written)",
                ));
            }
            Some(v) => {
                return Err(FormatError::unsupported(format!(
                    "group journal format version {v}; this library reads version {FORMAT_VERSION}"
                )));
            }
        }
        let len = u32_at(fixed, 24).unwrap_or(0) as usize;
        let most = MAX_MEMBERS * (20 + MAX_NAME_LEN + MAX_SNAPSHOT_LEN as usize);
        if len > most {
            return Err(FormatError::malformed(
                Some(24),
                "group identity body too long",
            ));
        }
        Ok(len)
    }

    /// Decodes an identity block: `bytes` holds the fixed part and the body.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let body_len = Self::body_len(bytes)?;
        let bad = |at: usize, what: &str| FormatError::malformed(Some(at as u64), what.to_owned());
        let body = bytes
            .get(IDENTITY_FIXED_LEN..IDENTITY_FIXED_LEN + body_len)
            .ok_or_else(|| bad(IDENTITY_FIXED_LEN, "group identity block is cut short"))?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(bytes.get(..60).unwrap_or_default());
        hasher.update(body);
        if u32_at(bytes, 60) != Some(hasher.finalize()) {
            return Err(bad(60, "group identity block fails its checksum"));
        }
        let count = u32_at(bytes, 12).unwrap_or(0) as usize;
        if count == 0 || count > MAX_MEMBERS {
            return Err(bad(12, "group member count out of range"));
        }
        let mut members = Vec::with_capacity(count);
        let mut at = 0usize;
        for _ in 0..count {
            let name_len = u32_at(body, at).unwrap_or(0) as usize;
            let header_len = u64_at(body, at + 4).unwrap_or(u64::MAX);
            let row_bytes = u64_at(body, at + 12).unwrap_or(0);
            if name_len == 0 || name_len > MAX_NAME_LEN || header_len > MAX_SNAPSHOT_LEN {
                return Err(bad(
                    IDENTITY_FIXED_LEN + at,
                    "group member entry out of range",
                ));
            }
            let name_at = at + 20;
            let snap_at = name_at + name_len;
            let end = snap_at + header_len as usize;
            let (Some(name), Some(snapshot)) = (body.get(name_at..snap_at), body.get(snap_at..end))
            else {
                return Err(bad(
                    IDENTITY_FIXED_LEN + at,
                    "group member entry is cut short",
                ));
            };
            let name = std::str::from_utf8(name)
                .ok()
                .filter(|n| valid_name(n))
                .ok_or_else(|| {
                    bad(
                        IDENTITY_FIXED_LEN + name_at,
                        "group member name is not valid",
                    )
                })?;
            members.push(MemberIdentity {
                name: name.to_owned(),
                header_len,
                row_bytes,
                snapshot: snapshot.to_vec(),
            });
            at = end;
        }
        if at != body.len() {
            return Err(bad(
                IDENTITY_FIXED_LEN + at,
                "group identity body has extra bytes",
            ));
        }
        Ok(Self {
            group_id: u64_at(bytes, 16).unwrap_or(0),
            members,
        })
    }

    /// Length of the encoded identity block.
    pub fn block_len(&self) -> u64 {
        let body: usize = self
            .members
            .iter()
            .map(|m| 20 + m.name.len() + m.snapshot.len())
            .sum();
        round_up((IDENTITY_FIXED_LEN + body) as u64).unwrap_or(u64::MAX)
    }

    /// Byte offset of `slot`.
    pub fn slot_offset(&self, slot: Slot) -> u64 {
        let base = self.block_len();
        match slot {
            Slot::A => base,
            Slot::B => base.saturating_add(slot_len(self.members.len())),
        }
    }

    /// Full length of the journal.
    pub fn journal_len(&self) -> u64 {
        self.block_len()
            .saturating_add(2 * slot_len(self.members.len()))
    }
}

impl GroupRecord {
    /// Bytes the record of a group with `members` members and a cursor of
    /// `cursor_len` bytes occupies.
    pub fn encoded_len(members: usize, cursor_len: usize) -> usize {
        SLOT_FIXED_LEN + MEMBER_ENTRY_LEN * members + cursor_len
    }

    /// Encodes the record for the group `group_id`.
    pub fn encode(&self, group_id: u64) -> Result<Vec<u8>, FormatError> {
        if self.cursor.len() > MAX_CURSOR_LEN {
            return Err(FormatError::unsupported(format!(
                "cursor of {} bytes is longer than the {MAX_CURSOR_LEN}-byte limit",
                self.cursor.len()
            )));
        }
        let mut buf = Vec::with_capacity(Self::encoded_len(self.members.len(), self.cursor.len()));
        buf.extend_from_slice(&[0; 4]);
        buf.push(FORMAT_VERSION as u8);
        buf.push(
            (u8::from(self.data_synced) * SLOT_FLAG_DATA_SYNCED)
                | (u8::from(self.closed) * SLOT_FLAG_CLOSED),
        );
        buf.extend_from_slice(&[0; 2]);
        buf.extend_from_slice(&group_id.to_le_bytes());
        buf.extend_from_slice(&self.sequence.to_le_bytes());
        buf.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(self.cursor.len() as u32).to_le_bytes());
        buf.resize(SLOT_FIXED_LEN, 0);
        for m in &self.members {
            buf.extend_from_slice(&m.rows.to_le_bytes());
            buf.extend_from_slice(&m.prev_rows.to_le_bytes());
            buf.extend_from_slice(&m.data_crc.to_le_bytes());
            buf.extend_from_slice(&[0; 4]);
        }
        buf.extend_from_slice(&self.cursor);
        let crc = crc32fast::hash(buf.get(4..).unwrap_or_default());
        if let Some(dst) = buf.get_mut(..4) {
            dst.copy_from_slice(&crc.to_le_bytes());
        }
        Ok(buf)
    }

    /// How many bytes the record whose fixed part is `fixed` occupies, for a
    /// group of `members` members; `None` when out of range (torn slot).
    pub fn len_from_fixed(fixed: &[u8], members: usize) -> Option<usize> {
        let cursor_len = u32_at(fixed, 28)? as usize;
        (cursor_len <= MAX_CURSOR_LEN).then(|| Self::encoded_len(members, cursor_len))
    }

    /// Decodes a slot of the group `group_id` with `members` members. Any
    /// failure means the slot holds no valid record of this group.
    pub fn decode(bytes: &[u8], group_id: u64, members: usize) -> Result<Self, FormatError> {
        let bad = |at: usize, what: &str| FormatError::malformed(Some(at as u64), what.to_owned());
        let len = Self::len_from_fixed(bytes, members)
            .ok_or_else(|| bad(28, "slot cursor length out of range"))?;
        let body = bytes
            .get(4..len)
            .ok_or_else(|| bad(0, "slot is cut short"))?;
        if u32_at(bytes, 0) != Some(crc32fast::hash(body)) {
            return Err(bad(0, "slot fails its checksum"));
        }
        if bytes.get(4).copied().map(u32::from) != Some(FORMAT_VERSION) {
            return Err(FormatError::unsupported(
                "group journal slot of another format version",
            ));
        }
        if u64_at(bytes, 8) != Some(group_id) {
            return Err(bad(8, "slot belongs to another group"));
        }
        if u32_at(bytes, 24).map(|n| n as usize) != Some(members) {
            return Err(bad(24, "slot member count differs from the identity's"));
        }
        let sequence = u64_at(bytes, 16).unwrap_or(0);
        let mut entries = Vec::with_capacity(members);
        for i in 0..members {
            let at = SLOT_FIXED_LEN + i * MEMBER_ENTRY_LEN;
            let entry = MemberCommit {
                rows: u64_at(bytes, at).unwrap_or(0),
                prev_rows: u64_at(bytes, at + 8).unwrap_or(0),
                data_crc: u32_at(bytes, at + 16).unwrap_or(0),
            };
            if entry.prev_rows > entry.rows {
                return Err(bad(at, "slot member entry goes backwards"));
            }
            entries.push(entry);
        }
        if sequence == 0 {
            return Err(bad(16, "slot sequence is 0"));
        }
        let cursor_at = Self::encoded_len(members, 0);
        let flags = bytes.get(5).copied().unwrap_or(0);
        Ok(Self {
            sequence,
            data_synced: flags & SLOT_FLAG_DATA_SYNCED != 0,
            closed: flags & SLOT_FLAG_CLOSED != 0,
            members: entries,
            cursor: bytes.get(cursor_at..len).unwrap_or_default().to_vec(),
        })
    }
}

/// Bytes a torn write is judged by: writes land or fail in whole sectors.
const SECTOR: usize = 512;

/// Whether `bytes` (a group journal whose identity does not decode) are the
/// creation of a group journal cut short: the identity block and a first
/// record of zero rows, written in one write, with any sectors not landed
/// (zeros, or the file ending early). Precisely: empty or all zeros; or a
/// prefix of the magic and version; or a first sector holding the magic,
/// version [`FORMAT_VERSION`], a member count in range and zero reserved
/// bytes, no longer than the creation write it describes, whose other
/// sectors are each all zeros or hold zeros in the identity's padding and
/// slot A's fixed part and entries as a creation writes them (version, no
/// flags, sequence 1, the member count, no cursor, zero rows). Anything
/// else is not this library's, and is never removed.
pub fn is_torn_creation(bytes: &[u8]) -> bool {
    let zero = |b: &[u8]| b.iter().all(|&x| x == 0);
    let most = IDENTITY_FIXED_LEN as u64
        + (MAX_MEMBERS * (20 + MAX_NAME_LEN) + MAX_MEMBERS * MAX_SNAPSHOT_LEN as usize) as u64
        + BLOCK
        + (SLOT_FIXED_LEN + MEMBER_ENTRY_LEN * MAX_MEMBERS) as u64;
    if bytes.len() as u64 > most {
        return false;
    }
    if zero(bytes) {
        return true;
    }
    let first = bytes.get(..bytes.len().min(SECTOR)).unwrap_or_default();
    if zero(first) {
        // The first sector did not land. A torn write leaves the file as
        // long as the whole write, which ends with slot A's record: for some
        // member count, its sector must have landed and be a creation's.
        return (1..=MAX_MEMBERS).any(|count| {
            let record = SLOT_FIXED_LEN + MEMBER_ENTRY_LEN * count;
            bytes.len().checked_sub(record).is_some_and(|block| {
                block > 0
                    && (block as u64).is_multiple_of(BLOCK)
                    && bytes.get(block..block + 32).is_some_and(|head| !zero(head))
                    && creation_slot_ok(bytes.get(block..).unwrap_or_default(), count)
            })
        });
    }
    if first.len() < IDENTITY_FIXED_LEN {
        let mut start = MAGIC.to_vec();
        start.extend(FORMAT_VERSION.to_le_bytes());
        return first.iter().zip(&start).all(|(a, b)| a == b);
    }
    let count = u32_at(first, 12).unwrap_or(0) as usize;
    let Ok(body_len) = GroupIdentity::body_len(first) else {
        return false;
    };
    if !(1..=MAX_MEMBERS).contains(&count) || first.get(28..60).is_some_and(|r| !zero(r)) {
        return false;
    }
    let Some(block) = round_up((IDENTITY_FIXED_LEN + body_len) as u64) else {
        return false;
    };
    let body_end = (IDENTITY_FIXED_LEN + body_len) as u64;
    let record_len = (SLOT_FIXED_LEN + MEMBER_ENTRY_LEN * count) as u64;
    if bytes.len() as u64 > block + record_len {
        return false;
    }
    bytes.chunks(SECTOR).enumerate().skip(1).all(|(i, sector)| {
        zero(sector)
            || sector.iter().enumerate().all(|(j, &b)| {
                let at = (i * SECTOR + j) as u64;
                if at < body_end {
                    true
                } else if at < block {
                    b == 0
                } else {
                    creation_slot_byte(count, (at - block) as usize).is_none_or(|want| b == want)
                }
            })
    })
}

/// What byte `k` of slot A's record is as a group's creation writes it for
/// `count` members; `None`: any value (the checksum and the group id).
fn creation_slot_byte(count: usize, k: usize) -> Option<u8> {
    match k {
        0..=3 | 8..=15 => None,
        4 => Some(FORMAT_VERSION as u8),
        16 => Some(1),
        24..=27 => u32::try_from(count)
            .unwrap_or(0)
            .to_le_bytes()
            .get(k - 24)
            .copied(),
        _ => Some(0),
    }
}

/// Whether `slot` (the bytes from slot A on) is, sector by sector, zeros
/// or the record a group's creation writes for `count` members.
fn creation_slot_ok(slot: &[u8], count: usize) -> bool {
    slot.chunks(SECTOR).enumerate().all(|(i, sector)| {
        sector.iter().all(|&b| b == 0)
            || sector.iter().enumerate().all(|(j, &b)| {
                creation_slot_byte(count, i * SECTOR + j).is_none_or(|want| b == want)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> GroupIdentity {
        GroupIdentity {
            group_id: 0xfeed_f00d,
            members: vec![
                MemberIdentity {
                    name: "x.npy".into(),
                    header_len: 128,
                    row_bytes: 512,
                    snapshot: (0..128u8).collect(),
                },
                MemberIdentity {
                    name: "y.npy".into(),
                    header_len: 64,
                    row_bytes: 8,
                    snapshot: vec![9; 64],
                },
            ],
        }
    }

    fn record() -> GroupRecord {
        GroupRecord {
            sequence: 3,
            data_synced: true,
            closed: false,
            members: vec![
                MemberCommit {
                    rows: 10,
                    prev_rows: 4,
                    data_crc: 0xabcd,
                },
                MemberCommit {
                    rows: 7,
                    prev_rows: 7,
                    data_crc: 0,
                },
            ],
            cursor: b"line 1234".to_vec(),
        }
    }

    #[test]
    fn identity_round_trip_and_flips() {
        let id = identity();
        let bytes = id.encode().unwrap();
        assert_eq!(bytes.len() as u64, id.block_len());
        assert_eq!(GroupIdentity::decode(&bytes).unwrap(), id);
        let used = IDENTITY_FIXED_LEN + GroupIdentity::body_len(&bytes).unwrap();
        for i in 0..used {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                if (28..60).contains(&i) {
                    continue; // reserved, covered by the CRC but ignored
                }
                assert!(GroupIdentity::decode(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
        for cut in [0, 8, 63, 64, used - 1] {
            assert!(GroupIdentity::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn identity_refuses_bad_names_and_counts() {
        let mut id = identity();
        id.members[0].name = "../x.npy".into();
        assert!(id.encode().is_err());
        id.members.clear();
        assert!(id.encode().is_err());
    }

    #[test]
    fn record_round_trip_and_flips() {
        let r = record();
        let bytes = r.encode(0xfeed_f00d).unwrap();
        assert_eq!(bytes.len(), GroupRecord::encoded_len(2, 9));
        assert_eq!(GroupRecord::decode(&bytes, 0xfeed_f00d, 2).unwrap(), r);
        assert!(GroupRecord::decode(&bytes, 1, 2).is_err());
        assert!(GroupRecord::decode(&bytes, 0xfeed_f00d, 3).is_err());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                let ok = GroupRecord::len_from_fixed(&bad, 2)
                    .filter(|&n| n <= bad.len())
                    .is_some_and(|_| GroupRecord::decode(&bad, 0xfeed_f00d, 2).is_ok());
                assert!(!ok, "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn the_closed_flag_round_trips_and_other_bits_are_ignored() {
        let mut r = record();
        r.closed = true;
        let bytes = r.encode(7).unwrap();
        assert_eq!(bytes[5], SLOT_FLAG_DATA_SYNCED | SLOT_FLAG_CLOSED);
        assert_eq!(GroupRecord::decode(&bytes, 7, 2).unwrap(), r);
        // A flag bit this version does not know (a newer writer's): the
        // record reads as it is, without it.
        let mut newer = bytes.clone();
        newer[5] |= 0x80;
        let crc = crc32fast::hash(&newer[4..]);
        newer[..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(GroupRecord::decode(&newer, 7, 2).unwrap(), r);
    }

    #[test]
    fn cursor_limit_and_slot_room() {
        let mut r = record();
        r.cursor = vec![1; MAX_CURSOR_LEN];
        let bytes = r.encode(1).unwrap();
        assert!(bytes.len() as u64 <= slot_len(2));
        r.cursor.push(1);
        assert!(r.encode(1).is_err());
        let id = identity();
        assert_eq!(id.slot_offset(Slot::A), id.block_len());
        assert_eq!(id.slot_offset(Slot::B), id.block_len() + slot_len(2));
    }

    #[test]
    fn a_creation_cut_short_is_torn_and_nothing_else() {
        let identity = identity();
        let mut full = identity.encode().unwrap();
        let first = GroupRecord {
            sequence: 1,
            data_synced: false,
            closed: false,
            members: vec![MemberCommit::default(); 2],
            cursor: Vec::new(),
        };
        full.extend(first.encode(identity.group_id).unwrap());
        for cut in 0..full.len() {
            assert!(is_torn_creation(&full[..cut]), "prefix of {cut} bytes");
        }
        for lost in 1..full.len().div_ceil(SECTOR) {
            let mut torn = full.clone();
            let end = ((lost + 1) * SECTOR).min(torn.len());
            torn[lost * SECTOR..end].fill(0);
            assert!(is_torn_creation(&torn), "sector {lost} zero");
        }
        // The first sector lost, the slot landed.
        let mut first_lost = full.clone();
        first_lost[..SECTOR].fill(0);
        assert!(is_torn_creation(&first_lost));
        assert!(is_torn_creation(&vec![0; 9000]));
        // Not a creation: random bytes, a later commit's record, a newer
        // version, a longer file.
        let mut x = 7u64;
        let noise: Vec<u8> = (0..8192)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(!is_torn_creation(&noise));
        assert!(!is_torn_creation(&noise[..100]));
        let block = identity.block_len() as usize;
        let mut later = full.clone();
        later[block + 16] = 2;
        assert!(!is_torn_creation(&later));
        let mut newer = full.clone();
        newer[8] = 2;
        assert!(!is_torn_creation(&newer));
        let mut longer = full.clone();
        longer.push(1);
        assert!(!is_torn_creation(&longer));
    }
}
