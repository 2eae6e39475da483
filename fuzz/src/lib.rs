//! The checks behind the fuzz targets, shared with `tests/fuzz_corpus.rs`,
//! which replays the committed corpus through them on stable Rust.
//!
//! Every check feeds arbitrary bytes to the library and asserts what must hold
//! for any input: no panic, no allocation beyond what the input's real length
//! justifies (libFuzzer's `-malloc_limit_mb` catches the rest), and, when the
//! library accepts the input, properties that tie the answer to the bytes.
//!
//! Input of [`open_pair`]: byte 0 holds flags (bit 0: the `.npy` exists, bit 1:
//! the journal exists, bits 2-3: the tail policy), bytes 1..5 the `.npy`
//! length (u32 little-endian, cut to what is left), then the `.npy` bytes,
//! then the journal bytes. [`encode_pair`] builds such an input.
//!
//! The fuzz target opens a reader on the damaged pair for one input in
//! eight (chosen by a hash of the input, so a crash reproduces): the reader
//! retries a file it finds corrupt after a 1 ms sleep (a writer may be
//! rewriting the header), which would cap the fuzzer at a few hundred inputs
//! a second. The corpus replay ([`replay_pair`]) always runs it.
//!
//! Input of [`open_group`]: byte 0 holds flags (bit 0: the group journal
//! exists, bits 1-3: member file 0, 1, 2 exists, bit 4: the group is opened
//! with its member specs, bits 5-7: member 0, 1, 2 has its marker), then
//! four parts, the group journal and the three member files, each a u32
//! little-endian length (cut to what is left) and that many bytes.
//! [`encode_group`] builds such an input. The members are
//! [`GROUP_MEMBERS`], in the group journal's directory; the reader on the
//! files as given runs for one input in 64 (see [`open_group`]), always in
//! the corpus replay ([`replay_group`]).

use std::path::{Path, PathBuf};

use npy_append::format::cursor_file::{self, CursorFile};
use npy_append::format::dtype::Dtype;
use npy_append::format::group_journal::{self, GroupIdentity, GroupRecord};
use npy_append::format::header;
use npy_append::format::journal::{self, Identity, Record, Slot};
use npy_append::storage::{MemBackend, MemOp};
use npy_append::{
    AppendOptions, Error, GroupOptions, GroupReader, MemberSpec, Reader, TailPolicy, cursor_path,
    member_marker_path,
};

/// Where [`open_pair`] puts the `.npy` in its in-memory file system.
pub const NPY_PATH: &str = "/fuzz/f.npy";
/// Where [`open_pair`] puts the journal.
pub const JOURNAL_PATH: &str = "/fuzz/f.npy.journal";

/// Rows appended by [`check_pair`] after a successful recovery are only
/// written when a row is at most this many bytes.
const MAX_APPEND_ROW_BYTES: u64 = 1 << 16;

/// Header parser: `parse_prefix`, `parse`, the rebuild of a parsed header, and
/// dtype descriptor parsing on the same bytes.
pub fn header(data: &[u8]) {
    if let Ok((version, len)) = header::parse_prefix(data) {
        assert!(
            len >= version.prefix_len() as u64,
            "header length below its prefix"
        );
        assert!(
            len <= 12 + u64::from(u32::MAX),
            "header length beyond a u32 field"
        );
    }
    if let Ok(h) = header::parse(data) {
        assert!(
            h.header_len <= data.len() as u64,
            "a parsed header is longer than its bytes"
        );
        check_dtype(&h.dtype);
        let _ = h.data_len();
        let _ = h.row_shape();
        let _ = h.growth_len();
        // A header rebuilt at the same length in the same version (what
        // recovery writes in place) parses back to the same header.
        if let Ok(bytes) =
            header::build_with_len(h.version, &h.dtype, h.fortran_order, &h.shape, h.header_len)
        {
            assert_eq!(bytes.len() as u64, h.header_len, "rebuilt header length");
            match header::parse(&bytes) {
                Ok(again) => assert_eq!(again, h, "rebuilt header parses differently"),
                Err(e) => panic!("rebuilt header does not parse: {e}"),
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(dtype) = Dtype::parse_descr(text)
    {
        check_dtype(&dtype);
    }
}

/// A parsed dtype renders to a descriptor that parses back to itself.
fn check_dtype(dtype: &Dtype) {
    let _ = dtype.itemsize();
    let _ = dtype.to_string();
    let repr = dtype.descr_repr();
    match Dtype::parse_descr(&repr) {
        Ok(again) => assert_eq!(&again, dtype, "descr {repr} parses to another dtype"),
        Err(e) => panic!("the descr {repr} of a parsed dtype does not parse: {e}"),
    }
}

/// Journal decoder: the identity block and slot records at every place the
/// bytes could hold them, with round trips of whatever decodes.
pub fn journal(data: &[u8]) {
    if let Ok(prefix) = Identity::decode_prefix(data) {
        assert!(prefix.snapshot_len <= journal::MAX_SNAPSHOT_LEN);
    }
    let mut ids = vec![0];
    if let Some(id) = data.get(16..24).and_then(|b| b.try_into().ok()) {
        ids.push(u64::from_le_bytes(id));
    }
    if let Ok(identity) = Identity::decode(data) {
        assert_eq!(identity.snapshot.len() as u64, identity.header_len);
        match identity.encode() {
            Ok(bytes) => {
                assert_eq!(
                    bytes.len() as u64,
                    identity.block_len(),
                    "identity block length"
                );
                match Identity::decode(&bytes) {
                    Ok(again) => assert_eq!(again, identity, "identity round trip"),
                    Err(e) => panic!("an encoded identity does not decode: {e}"),
                }
            }
            Err(e) => panic!("a decoded identity does not encode: {e}"),
        }
        ids.push(identity.journal_id);
        let block = identity.block_len();
        for slot in [Slot::A, Slot::B] {
            let at = usize::try_from(journal::slot_offset(block, slot)).unwrap_or(usize::MAX);
            if let Some(bytes) = data.get(at..) {
                check_record(bytes, identity.journal_id);
            }
        }
    }
    for id in ids {
        check_record(data, id);
        if let Some(rest) = data.get(journal::IDENTITY_FIXED_LEN..) {
            check_record(rest, id);
        }
    }
}

fn check_record(bytes: &[u8], journal_id: u64) {
    let Ok(record) = Record::decode(bytes, journal_id) else {
        return;
    };
    assert!(record.sequence >= 1 && record.prev_rows <= record.rows);
    assert!(record.cursor.len() <= journal::MAX_CURSOR_LEN);
    assert_eq!(
        Record::encoded_len(bytes),
        Some(journal::SLOT_FIXED_LEN + record.cursor.len())
    );
    match record.encode(journal_id) {
        Ok(enc) => match Record::decode(&enc, journal_id) {
            Ok(again) => assert_eq!(again, record, "record round trip"),
            Err(e) => panic!("an encoded record does not decode: {e}"),
        },
        Err(e) => panic!("a decoded record does not encode: {e}"),
    }
}

/// Builds an [`open_pair`] input.
pub fn encode_pair(npy: Option<&[u8]>, journal: Option<&[u8]>, tail_policy: u8) -> Vec<u8> {
    let flags =
        u8::from(npy.is_some()) | (u8::from(journal.is_some()) << 1) | ((tail_policy & 3) << 2);
    let npy = npy.unwrap_or_default();
    let npy_len = u32::try_from(npy.len()).unwrap_or(u32::MAX);
    let mut out = vec![flags];
    out.extend(npy_len.to_le_bytes());
    out.extend_from_slice(npy);
    out.extend_from_slice(journal.unwrap_or_default());
    out
}

/// The `.npy` bytes (`None`: no file), the journal bytes (`None`: no
/// journal) and the tail policy of an [`open_pair`] input.
pub type Pair<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, TailPolicy);

/// Splits an [`open_pair`] input into (`.npy`, journal, tail policy).
pub fn decode_pair(data: &[u8]) -> Option<Pair<'_>> {
    let (&flags, rest) = data.split_first()?;
    let len_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    let rest = rest.get(4..)?;
    let npy_len = usize::try_from(u32::from_le_bytes(len_bytes))
        .unwrap_or(usize::MAX)
        .min(rest.len());
    let (npy, journal) = rest.split_at(npy_len);
    let tail = match (flags >> 2) & 3 {
        1 => TailPolicy::CutToHeader,
        2 => TailPolicy::AdoptWholeRows,
        _ => TailPolicy::Refuse,
    };
    Some((
        (flags & 1 != 0).then_some(npy),
        (flags & 2 != 0).then_some(journal),
        tail,
    ))
}

/// `open_or_recover` and `Reader` on an arbitrary (`.npy`, journal) pair
/// (the fuzz target: the reader on the damaged pair for one input in eight).
pub fn open_pair(data: &[u8]) {
    if let Some((npy, journal, tail)) = decode_pair(data) {
        let fnv = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        check_pair(npy, journal, tail, fnv % 8 == 0);
    }
}

/// [`open_pair`] with the reader always run (the corpus replay).
pub fn replay_pair(data: &[u8]) {
    if let Some((npy, journal, tail)) = decode_pair(data) {
        check_pair(npy, journal, tail, true);
    }
}

/// The bytes of both files: `None` for a missing file.
fn snapshot(fs: &MemBackend) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (
        fs.contents(Path::new(NPY_PATH)),
        fs.contents(Path::new(JOURNAL_PATH)),
    )
}

/// What every caller can rely on for the pair (`npy`, `journal`), whatever
/// the bytes:
///
/// - `Reader` never panics, never changes a byte, and shows only whole rows
///   the file holds;
/// - `open_or_recover` never panics; when it refuses, neither file changed;
///   when it opens, the file holds exactly the committed rows under a header
///   that says so, a second recovery changes nothing, a reader sees the same
///   rows, and a commit and a clean close work from there.
pub fn check_pair(npy: Option<&[u8]>, journal: Option<&[u8]>, tail: TailPolicy, with_reader: bool) {
    let fs = MemBackend::new();
    let path = Path::new(NPY_PATH);
    if let Some(bytes) = npy {
        fs.put(path, bytes);
    }
    if let Some(bytes) = journal {
        fs.put(Path::new(JOURNAL_PATH), bytes);
    }
    let before = snapshot(&fs);

    if with_reader {
        if let Ok(reader) = Reader::open_with(fs.clone(), path) {
            check_reader(&reader, npy.map_or(0, <[u8]>::len));
        }
        assert!(snapshot(&fs) == before, "Reader changed the files");
    }

    let opened = AppendOptions::new()
        .tail_policy(tail)
        .open_with(fs.clone(), path);
    let appender = match opened {
        Ok(appender) => appender,
        Err(e) => {
            assert!(
                !matches!(e, Error::Poisoned { .. } | Error::Io { .. }),
                "in-memory files without faults gave {e:?}"
            );
            assert!(
                snapshot(&fs) == before,
                "a refused open changed the files: {e}"
            );
            return;
        }
    };
    let rows = appender.len();
    let Some(row_bytes) = appender.row_bytes() else {
        // Nothing to take over: a new file, created by the first append.
        assert!(
            fs.contents(path).is_none(),
            "no file state but a .npy exists"
        );
        assert_eq!(rows, 0);
        return;
    };
    let recovered = snapshot(&fs);
    let (Some(npy_after), Some(_)) = &recovered else {
        panic!("an opened file has no .npy or no journal");
    };
    let parsed = match header::parse(npy_after) {
        Ok(h) => h,
        Err(e) => panic!("the recovered header does not parse: {e}"),
    };
    assert_eq!(parsed.growth_len(), Some(rows), "recovered header rows");
    let end = rows
        .checked_mul(row_bytes)
        .and_then(|n| n.checked_add(parsed.header_len));
    assert_eq!(end, Some(npy_after.len() as u64), "recovered file length");
    drop(appender);

    // Recovery is idempotent.
    match AppendOptions::new()
        .tail_policy(tail)
        .open_with(fs.clone(), path)
    {
        Ok(again) => {
            assert_eq!(again.len(), rows, "second recovery rows");
            assert!(
                snapshot(&fs) == recovered,
                "second recovery changed the files"
            );
            drop(again);
        }
        Err(e) => panic!("second recovery failed: {e}"),
    }
    match Reader::open_with(fs.clone(), path) {
        Ok(reader) => assert_eq!(reader.len(), rows, "reader after recovery"),
        Err(e) => panic!("reader after recovery failed: {e}"),
    }

    // The recovered file takes new commits and closes cleanly.
    if row_bytes > MAX_APPEND_ROW_BYTES {
        return;
    }
    let row = vec![0u8; usize::try_from(row_bytes).unwrap_or(0)];
    let mut appender = match AppendOptions::new().open_with(fs.clone(), path) {
        Ok(a) => a,
        Err(e) => panic!("third open failed: {e}"),
    };
    if let Err(e) = appender
        .append_bytes(&row)
        .and_then(|()| appender.commit().map(drop))
    {
        panic!("commit after recovery failed: {e}");
    }
    match appender.close() {
        Ok(n) => assert_eq!(n, rows + 1, "rows after one more commit"),
        Err(e) => panic!("close after recovery failed: {e}"),
    }
    assert!(
        fs.contents(Path::new(JOURNAL_PATH)).is_none(),
        "close left the journal"
    );
    match Reader::open_with(fs.clone(), path) {
        Ok(reader) => {
            assert_eq!(reader.len(), rows + 1, "reader after close");
            check_reader(&reader, fs.contents(path).map_or(0, |b| b.len()));
        }
        Err(e) => panic!("reader after close failed: {e}"),
    }
}

fn check_reader(reader: &Reader<MemBackend>, file_len: usize) {
    let rows = reader.len();
    let shown = rows
        .checked_mul(reader.row_bytes())
        .and_then(|n| n.checked_add(reader.data_offset()));
    assert!(
        rows == 0 || shown.is_some_and(|n| n <= file_len as u64),
        "reader shows {rows} rows past the end of a {file_len}-byte file"
    );
    match reader.bytes(0..rows) {
        Ok(bytes) => assert_eq!(
            Some(bytes.len() as u64),
            rows.checked_mul(reader.row_bytes())
        ),
        Err(e) => panic!("reader cannot return its own rows: {e}"),
    }
    assert!(
        reader.bytes(0..rows + 1).is_err(),
        "reader returned a row past its count"
    );
    let chunked: usize = reader.chunks(7).map(<[u8]>::len).sum();
    assert_eq!(
        chunked as u64,
        rows * reader.row_bytes(),
        "chunks cover the rows"
    );
}

// ------------------------------------------------------------ group journal

/// Group journal decoder: the identity block at the start, and group
/// records at the start, after the fixed identity, and at both slots of a
/// decoded identity, for member counts taken from the bytes; round trips of
/// whatever decodes.
pub fn group_journal(data: &[u8]) {
    let mut counts = vec![1usize, 3];
    if let Some(n) = data.get(12..16).and_then(|b| b.try_into().ok()) {
        counts.push(u32::from_le_bytes(n) as usize % (group_journal::MAX_MEMBERS + 1));
    }
    let mut ids = vec![0u64];
    if let Some(id) = data.get(16..24).and_then(|b| b.try_into().ok()) {
        ids.push(u64::from_le_bytes(id));
    }
    if let Ok(body_len) = GroupIdentity::body_len(data) {
        assert!(body_len <= data.len() || GroupIdentity::decode(data).is_err());
    }
    if let Ok(identity) = GroupIdentity::decode(data) {
        let count = identity.members.len();
        assert!((1..=group_journal::MAX_MEMBERS).contains(&count));
        for m in &identity.members {
            assert!(
                group_journal::valid_name(&m.name),
                "member name {:?}",
                m.name
            );
            assert_eq!(m.snapshot.len() as u64, m.header_len);
        }
        match identity.encode() {
            Ok(bytes) => {
                assert_eq!(bytes.len() as u64, identity.block_len(), "block length");
                match GroupIdentity::decode(&bytes) {
                    Ok(again) => assert_eq!(again, identity, "group identity round trip"),
                    Err(e) => panic!("an encoded group identity does not decode: {e}"),
                }
            }
            Err(e) => panic!("a decoded group identity does not encode: {e}"),
        }
        assert!(identity.slot_offset(Slot::A) < identity.slot_offset(Slot::B));
        assert!(identity.slot_offset(Slot::B) < identity.journal_len());
        for slot in [Slot::A, Slot::B] {
            let at = usize::try_from(identity.slot_offset(slot)).unwrap_or(usize::MAX);
            if let Some(bytes) = data.get(at..) {
                check_group_record(bytes, identity.group_id, count);
            }
        }
        counts.push(count);
        ids.push(identity.group_id);
    }
    for id in &ids {
        for &count in &counts {
            check_group_record(data, *id, count);
            if let Some(rest) = data.get(group_journal::IDENTITY_FIXED_LEN..) {
                check_group_record(rest, *id, count);
            }
        }
    }
}

fn check_group_record(bytes: &[u8], group_id: u64, members: usize) {
    let Ok(record) = GroupRecord::decode(bytes, group_id, members) else {
        return;
    };
    assert_eq!(record.members.len(), members);
    assert!(record.cursor.len() <= group_journal::MAX_CURSOR_LEN);
    assert!(record.members.iter().all(|m| m.prev_rows <= m.rows));
    assert_eq!(
        GroupRecord::len_from_fixed(bytes, members),
        Some(GroupRecord::encoded_len(members, record.cursor.len()))
    );
    match record.encode(group_id) {
        Ok(enc) => match GroupRecord::decode(&enc, group_id, members) {
            Ok(again) => assert_eq!(again, record, "group record round trip"),
            Err(e) => panic!("an encoded group record does not decode: {e}"),
        },
        Err(e) => panic!("a decoded group record does not encode: {e}"),
    }
}

// -------------------------------------------------------------- cursor file

/// Where [`cursor_file`] puts its `.npy` (3 committed rows of `<f4`).
pub const CURSOR_NPY_PATH: &str = "/fuzz/c.npy";

/// Rows of the file [`cursor_file`] opens beside the sidecar.
const CURSOR_FILE_ROWS: u64 = 3;

/// Cursor sidecar decoder with its round trip, then the sidecar beside a
/// clean file of [`CURSOR_FILE_ROWS`] rows: opening takes its cursor exactly
/// when it decodes, describes those rows and is not empty, removes it in
/// every case, and a clean close writes the cursor back (or nothing).
pub fn cursor_file(data: &[u8]) {
    let decoded = CursorFile::decode(data);
    if let Ok(found) = &decoded {
        assert!(found.cursor.len() <= journal::MAX_CURSOR_LEN);
        assert_eq!(data.len(), cursor_file::FIXED_LEN + found.cursor.len());
        match found.encode() {
            Ok(bytes) => assert_eq!(bytes, data, "cursor file round trip"),
            Err(e) => panic!("a decoded cursor file does not encode: {e}"),
        }
    }
    let fs = MemBackend::new();
    let path = Path::new(CURSOR_NPY_PATH);
    let dtype = Dtype::parse_descr("'<f4'").unwrap_or_else(|e| panic!("{e}"));
    let mut npy =
        header::build(&dtype, false, &[CURSOR_FILE_ROWS]).unwrap_or_else(|e| panic!("{e}"));
    npy.extend([0u8; 4 * CURSOR_FILE_ROWS as usize]);
    fs.put(path, &npy);
    let sidecar = cursor_path(path);
    fs.put(&sidecar, data);
    let appender = match AppendOptions::new().open_with(fs.clone(), path) {
        Ok(a) => a,
        Err(e) => {
            // Only a sidecar longer than any cursor file is refused.
            assert!(
                data.len() > cursor_file::MAX_LEN,
                "a {}-byte cursor file made the open fail: {e}",
                data.len()
            );
            assert_eq!(
                fs.contents(path),
                Some(npy),
                "a refused open changed the file"
            );
            assert_eq!(fs.contents(&sidecar).as_deref(), Some(data));
            return;
        }
    };
    let expected: &[u8] = match &decoded {
        Ok(f) if f.rows == CURSOR_FILE_ROWS => &f.cursor,
        _ => &[],
    };
    assert_eq!(appender.cursor(), expected, "the cursor taken over");
    assert_eq!(appender.len(), CURSOR_FILE_ROWS);
    assert!(
        fs.contents(&sidecar).is_none(),
        "opening left the cursor file"
    );
    match appender.close() {
        Ok(rows) => assert_eq!(rows, CURSOR_FILE_ROWS),
        Err(e) => panic!("close failed: {e}"),
    }
    let written = (!expected.is_empty()).then(|| {
        CursorFile {
            rows: CURSOR_FILE_ROWS,
            cursor: expected.to_vec(),
        }
        .encode()
        .unwrap_or_else(|e| panic!("{e}"))
    });
    assert_eq!(
        fs.contents(&sidecar),
        written,
        "the cursor file after close"
    );
    assert_eq!(
        fs.contents(path),
        Some(npy),
        "the file after open and close"
    );
}

// --------------------------------------------------------------- open_group

/// The group journal of [`open_group`].
pub const GROUP_PATH: &str = "/fuzz/g.group";
/// The members of [`open_group`]: name, dtype, row shape.
pub const GROUP_MEMBERS: [(&str, &str, &[u64]); 3] = [
    ("m0.npy", "<f4", &[3]),
    ("m1.npy", "|u1", &[]),
    ("m2.npy", "<i8", &[2]),
];

/// The parts of an [`open_group`] input.
#[derive(Debug, Clone, Copy)]
pub struct GroupInput<'a> {
    /// The group journal's bytes (`None`: no journal).
    pub journal: Option<&'a [u8]>,
    /// Each member file's bytes (`None`: no file).
    pub members: [Option<&'a [u8]>; 3],
    /// Which members have their marker.
    pub markers: [bool; 3],
    /// Whether the group is opened with its member specs.
    pub specs: bool,
}

/// Builds an [`open_group`] input.
pub fn encode_group(input: &GroupInput<'_>) -> Vec<u8> {
    let mut flags = u8::from(input.journal.is_some()) | (u8::from(input.specs) << 4);
    for i in 0..3 {
        flags |= u8::from(input.members[i].is_some()) << (1 + i);
        flags |= u8::from(input.markers[i]) << (5 + i);
    }
    let mut out = vec![flags];
    let parts = [
        input.journal,
        input.members[0],
        input.members[1],
        input.members[2],
    ];
    for part in parts {
        let bytes = part.unwrap_or_default();
        out.extend(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Splits an [`open_group`] input.
pub fn decode_group(data: &[u8]) -> Option<GroupInput<'_>> {
    let (&flags, mut rest) = data.split_first()?;
    let mut parts: [&[u8]; 4] = [&[]; 4];
    for part in &mut parts {
        let Some(len_bytes) = rest.get(..4) else {
            break;
        };
        let len = u32::from_le_bytes(len_bytes.try_into().ok()?) as usize;
        let body = rest.get(4..).unwrap_or_default();
        let (head, tail) = body.split_at(len.min(body.len()));
        *part = head;
        rest = tail;
    }
    let bit = |i: u8| flags >> i & 1 == 1;
    Some(GroupInput {
        journal: bit(0).then_some(parts[0]),
        members: [
            bit(1).then_some(parts[1]),
            bit(2).then_some(parts[2]),
            bit(3).then_some(parts[3]),
        ],
        markers: [bit(5), bit(6), bit(7)],
        specs: bit(4),
    })
}

/// `AppendGroup` and `GroupReader` on an arbitrary group journal and
/// member files (the fuzz target: the reader on the files as given for one
/// input in 64; it retries a journal it finds corrupt 20 times, 1 ms
/// apart).
pub fn open_group(data: &[u8]) {
    if let Some(input) = decode_group(data) {
        let fnv = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        check_group(&input, fnv % 64 == 0);
    }
}

/// [`open_group`] with the reader always run (the corpus replay).
pub fn replay_group(data: &[u8]) {
    if let Some(input) = decode_group(data) {
        check_group(&input, true);
    }
}

fn member_path(i: usize) -> PathBuf {
    Path::new(GROUP_PATH).with_file_name(GROUP_MEMBERS[i].0)
}

fn group_options(specs: bool) -> GroupOptions {
    let mut options = GroupOptions::new().buffer_bytes(1);
    if specs {
        for (name, descr, row_shape) in GROUP_MEMBERS {
            let spec = MemberSpec::new(name, descr, row_shape).unwrap_or_else(|e| panic!("{e}"));
            options = options.member(spec);
        }
    }
    options
}

/// Operations that change files.
const MUTATIONS: [MemOp; 5] = [
    MemOp::Write,
    MemOp::SetLen,
    MemOp::Remove,
    MemOp::Create,
    MemOp::Rename,
];

fn mutations(fs: &MemBackend) -> u64 {
    MUTATIONS.iter().map(|&op| fs.count(op)).sum()
}

/// The bytes of the group journal, of `paths`, and of their markers.
fn group_files(fs: &MemBackend, paths: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    std::iter::once(fs.contents(Path::new(GROUP_PATH)))
        .chain(
            paths
                .iter()
                .flat_map(|p| [fs.contents(p), fs.contents(&member_marker_path(p))]),
        )
        .collect()
}

/// What every caller can rely on for a group journal and its members,
/// whatever the bytes:
///
/// - `GroupReader` never panics, never changes a byte, and shows only rows
///   each member file holds;
/// - opening the group never panics; when it refuses, no file changed;
///   when it opens, every member holds exactly the rows of the newest
///   record under a header that says so and has its marker, a reader shows
///   the same rows and cursor, a second open changes nothing and gives the
///   same rows, and a commit of one more row to every member and a clean
///   close work from there.
pub fn check_group(input: &GroupInput<'_>, with_reader: bool) {
    let fs = MemBackend::new();
    let group = Path::new(GROUP_PATH);
    if let Some(bytes) = input.journal {
        fs.put(group, bytes);
    }
    let mut paths: Vec<PathBuf> = (0..3).map(member_path).collect();
    for (i, path) in paths.iter().enumerate() {
        if let Some(bytes) = input.members[i] {
            fs.put(path, bytes);
        }
        if input.markers[i] {
            fs.put(&member_marker_path(path), b"g.group");
        }
    }
    // The members an arbitrary identity names, wherever they are.
    if let Some(identity) = input.journal.and_then(|j| GroupIdentity::decode(j).ok()) {
        for m in identity.members {
            let p = group.with_file_name(&m.name);
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    let before = group_files(&fs, &paths);

    if with_reader {
        if let Ok(reader) = GroupReader::open_with(fs.clone(), group) {
            check_group_reader(&reader, &fs);
        }
        assert!(
            group_files(&fs, &paths) == before,
            "GroupReader changed files"
        );
        assert_eq!(mutations(&fs), 0, "GroupReader wrote");
    }

    let opened = group_options(input.specs).open_with(fs.clone(), group);
    let g = match opened {
        Ok(g) => g,
        Err(e) => {
            assert!(
                !matches!(e, Error::Poisoned { .. } | Error::Io { .. }),
                "in-memory files without faults gave {e:?}"
            );
            assert_eq!(mutations(&fs), 0, "a refused group open wrote: {e}");
            assert!(
                group_files(&fs, &paths) == before,
                "a refused group open changed files: {e}"
            );
            return;
        }
    };
    let rows = g.member_rows();
    let cursor = g.cursor().to_vec();
    let mut row_bytes = Vec::new();
    for (i, &n) in rows.iter().enumerate() {
        let path = g
            .member_path(i)
            .unwrap_or_else(|| panic!("member {i} has no path"))
            .to_path_buf();
        let bytes = fs
            .contents(&path)
            .unwrap_or_else(|| panic!("an opened group has no file for member {i}"));
        let h = header::parse(&bytes)
            .unwrap_or_else(|e| panic!("member {i}: the recovered header does not parse: {e}"));
        let rb = g
            .member_row_bytes(i)
            .unwrap_or_else(|| panic!("member {i}: no row bytes"));
        assert_eq!(h.growth_len(), Some(n), "member {i}: header rows");
        assert_eq!(
            n.checked_mul(rb).and_then(|d| d.checked_add(h.header_len)),
            Some(bytes.len() as u64),
            "member {i}: file length"
        );
        assert!(
            fs.contents(&member_marker_path(&path)).is_some(),
            "member {i} has no marker"
        );
        row_bytes.push(rb);
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    drop(g);
    let recovered = group_files(&fs, &paths);

    // The record and the members agree for a reader.
    match GroupReader::open_with(fs.clone(), group) {
        Ok(reader) => {
            let shown: Vec<u64> = (0..reader.member_count()).map(|i| reader.rows(i)).collect();
            assert_eq!(shown, rows, "reader rows after recovery");
            assert_eq!(reader.cursor(), cursor, "reader cursor after recovery");
            check_group_reader(&reader, &fs);
        }
        Err(e) => panic!("reader after recovery failed: {e}"),
    }

    // Recovery is idempotent.
    let writes = mutations(&fs);
    match group_options(false).open_with(fs.clone(), group) {
        Ok(again) => {
            assert_eq!(again.member_rows(), rows, "second open rows");
            assert_eq!(again.cursor(), cursor, "second open cursor");
        }
        Err(e) => panic!("second open failed: {e}"),
    }
    assert_eq!(mutations(&fs), writes, "a second open wrote");
    assert!(
        group_files(&fs, &paths) == recovered,
        "a second open changed files"
    );

    // One more row to every member, a commit and a clean close.
    if row_bytes.iter().any(|&rb| rb > MAX_APPEND_ROW_BYTES) {
        return;
    }
    let mut g = match group_options(false).open_with(fs.clone(), group) {
        Ok(g) => g,
        Err(e) => panic!("third open failed: {e}"),
    };
    for (i, &rb) in row_bytes.iter().enumerate() {
        let row = vec![7u8; usize::try_from(rb).unwrap_or(0)];
        if let Err(e) = g.append_bytes(i, &row) {
            panic!("append to member {i} after recovery failed: {e}");
        }
    }
    match g.commit_with_cursor(b"fuzz") {
        Ok(after) => {
            let want: Vec<u64> = rows.iter().map(|n| n + 1).collect();
            assert_eq!(after, want, "rows after one more commit");
        }
        Err(e) => panic!("commit after recovery failed: {e}"),
    }
    if let Err(e) = g.close() {
        panic!("close after recovery failed: {e}");
    }
    match GroupReader::open_with(fs.clone(), group) {
        Ok(reader) => {
            for (i, n) in rows.iter().enumerate() {
                assert_eq!(reader.rows(i), n + 1, "reader after close, member {i}");
            }
            assert_eq!(reader.cursor(), b"fuzz");
            check_group_reader(&reader, &fs);
        }
        Err(e) => panic!("reader after close failed: {e}"),
    }
}

/// A group reader shows only whole rows its member files hold, and returns
/// exactly them.
fn check_group_reader(reader: &GroupReader<MemBackend>, fs: &MemBackend) {
    for i in 0..reader.member_count() {
        let rows = reader.rows(i);
        let path = reader
            .member_path(i)
            .unwrap_or_else(|| panic!("member {i}: no path"));
        let file_len = fs.contents(path).map_or(0, |b| b.len() as u64);
        let row_bytes = reader
            .dtype(i)
            .and_then(|d| d.itemsize().ok())
            .zip(reader.row_shape(i))
            .and_then(|(size, shape)| shape.iter().try_fold(size, |a, &d| a.checked_mul(d)))
            .unwrap_or_else(|| panic!("member {i}: no row size"));
        match reader.bytes(i, 0..rows) {
            Ok(bytes) => {
                assert_eq!(
                    Some(bytes.len() as u64),
                    rows.checked_mul(row_bytes),
                    "member {i}: the reader's bytes are not its rows"
                );
                assert!(
                    rows == 0 || bytes.len() as u64 <= file_len,
                    "member {i}: the reader shows more bytes than the file has"
                );
            }
            Err(e) => panic!("member {i}: the reader cannot return its own rows: {e}"),
        }
        assert!(
            reader.bytes(i, 0..rows + 1).is_err(),
            "member {i}: the reader returned a row past its count"
        );
    }
}
