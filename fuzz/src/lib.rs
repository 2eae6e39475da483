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

use std::path::Path;

use npy_append::format::dtype::Dtype;
use npy_append::format::header;
use npy_append::format::journal::{self, Identity, Record, Slot};
use npy_append::storage::MemBackend;
use npy_append::{AppendOptions, Error, Reader, TailPolicy};

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
