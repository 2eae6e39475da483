//! The bad-input corpus: malformed `.npy` files and journals, each with the
//! outcome it must have.
//!
//! `tests/bad_inputs/<case>.npy`, optionally `<case>.npy.journal`, and
//! `<case>.expect`, which holds a `#` description line and one line per check:
//!
//! ```text
//! open: Corrupt: journal belongs to another file
//! reader: Ok rows=5
//! numpy: refuses
//! ```
//!
//! `open` is `Appender::open_or_recover` (through `AppendOptions`), `reader`
//! is `Reader::open`, each on a temporary copy; the outcome is `Ok rows=N` or
//! an `Error` variant and a substring of its message. Every refusal must leave
//! both files byte for byte as they were and create no file. `numpy: refuses`
//! marks numpy's own bad-header cases: `np.load` must raise on them too.
//!
//! The files are written by [`cases`] (run
//! `cargo test --release --test bad_inputs -- --ignored write_bad_inputs`);
//! `bad_inputs_match_their_generator` keeps the checked-in files and the
//! generator in step.

#![allow(
    clippy::cast_possible_truncation,
    reason = "the generator wraps lengths on purpose and builds small test files"
)]

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use npy_append::format::header;
use npy_append::format::journal::{self, Identity, Record, Slot};
use npy_append::{AppendOptions, Dtype, Error, Reader};

/// Journal id of every generated journal (fixed, so the files are reproducible).
const JOURNAL_ID: u64 = 0x1122_3344_5566_7788;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs")
}

// ---------------------------------------------------------------------------
// Building blocks of the generator.

/// A header whose text is exactly `text`, padded as numpy pads (spaces and a
/// newline up to a multiple of 64), with a correct length field.
fn wrap(major: u8, text: &[u8]) -> Vec<u8> {
    let prefix = if major == 1 { 10 } else { 12 };
    let mut body = text.to_vec();
    while !(prefix + body.len() + 1).is_multiple_of(64) {
        body.push(b' ');
    }
    body.push(b'\n');
    with_len_field(major, 0, body.len() as u32, &body)
}

/// Magic, version `major.minor`, a length field of `len` and then `body`.
fn with_len_field(major: u8, minor: u8, len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([major, minor]);
    if major == 1 {
        out.extend((len as u16).to_le_bytes());
    } else {
        out.extend(len.to_le_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// A version 1.0 header for this dict text, with 24 spaces of growth room.
fn v1(text: &str) -> Vec<u8> {
    wrap(1, format!("{text}{}", " ".repeat(24)).as_bytes())
}

/// The dict text numpy writes.
fn dict(descr: &str, fortran: &str, shape: &str) -> String {
    format!("{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}")
}

/// `n` bytes of deterministic, non-constant data.
fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 37 + 11) as u8).collect()
}

fn dtype(descr: &str) -> Dtype {
    Dtype::parse_descr(descr).unwrap()
}

/// The header `np.save` writes for `descr` and `shape`.
fn saved_header(descr: &str, shape: &[u64]) -> Vec<u8> {
    header::build(&dtype(descr), false, shape).unwrap()
}

/// A file of `rows` rows of three `<f4` (12 bytes a row) whose header says
/// `header_rows`.
fn f4x3(header_rows: u64, rows: usize) -> Vec<u8> {
    let mut out = saved_header("'<f4'", &[header_rows, 3]);
    out.extend(data(rows * 12));
    out
}

/// CRC32 of rows `from..to` of an [`f4x3`] file.
fn rows_crc(file: &[u8], from: u64, to: u64) -> u32 {
    let header_len = header::parse(file).unwrap().header_len as usize;
    crc32fast::hash(&file[header_len + from as usize * 12..header_len + to as usize * 12])
}

fn record(sequence: u64, prev_rows: u64, rows: u64, data_crc: u32, synced: bool) -> Record {
    Record {
        sequence,
        rows,
        prev_rows,
        data_crc,
        data_synced: synced,
        cursor: Vec::new(),
        file_id: None,
    }
}

/// A journal with this identity snapshot and these slots (`None`: zeros).
fn journal_with(
    snapshot: &[u8],
    row_bytes: u64,
    flags: u32,
    a: Option<&Record>,
    b: Option<&Record>,
) -> Vec<u8> {
    let identity = Identity {
        flags,
        journal_id: JOURNAL_ID,
        header_len: snapshot.len() as u64,
        row_bytes,
        snapshot: snapshot.to_vec(),
    };
    let mut out = identity.encode().unwrap();
    let block = identity.block_len();
    out.resize(journal::journal_len(block) as usize, 0);
    for (slot, rec) in [(Slot::A, a), (Slot::B, b)] {
        if let Some(rec) = rec {
            let at = journal::slot_offset(block, slot) as usize;
            let bytes = rec.encode(JOURNAL_ID).unwrap();
            out[at..at + bytes.len()].copy_from_slice(&bytes);
        }
    }
    out
}

/// The bytes a writer adopting the clean [`f4x3`] file `file` of `rows` rows
/// writes when it creates its journal (identity and slot A, one write).
fn creation_journal(file: &[u8], rows: u64) -> Vec<u8> {
    let h = header::parse(file).unwrap();
    let identity = Identity {
        flags: 0,
        journal_id: JOURNAL_ID,
        header_len: h.header_len,
        row_bytes: 12,
        snapshot: file[..h.header_len as usize].to_vec(),
    };
    let mut out = identity.encode().unwrap();
    out.extend(record(1, rows, rows, 0, false).encode(JOURNAL_ID).unwrap());
    assert!(journal::is_torn_creation(&out[..out.len() - 1]));
    out
}

/// The journal of a writer of [`f4x3`] files that committed `prev` rows, then
/// `rows` rows of `file` (fsync durability when `synced`).
fn f4x3_journal(file: &[u8], prev: u64, rows: u64, synced: bool) -> Vec<u8> {
    let snapshot = saved_header("'<f4'", &[0, 3]);
    let older = record(1, 0, prev, rows_crc(file, 0, prev), synced);
    let newer = record(2, prev, rows, rows_crc(file, prev, rows), synced);
    journal_with(&snapshot, 12, 0, Some(&older), Some(&newer))
}

/// Overwrites `bytes[at..]` with `with`.
fn patched(mut bytes: Vec<u8>, at: usize, with: &[u8]) -> Vec<u8> {
    bytes[at..at + with.len()].copy_from_slice(with);
    bytes
}

/// One generated case.
struct Case {
    name: &'static str,
    npy: Vec<u8>,
    journal: Option<Vec<u8>>,
    expect: String,
}

struct Cases(Vec<Case>);

impl Cases {
    /// A case without journal.
    fn npy(&mut self, name: &'static str, about: &str, npy: Vec<u8>, outcomes: &[&str]) {
        self.add(name, about, npy, None, outcomes);
    }

    fn add(
        &mut self,
        name: &'static str,
        about: &str,
        npy: Vec<u8>,
        journal: Option<Vec<u8>>,
        outcomes: &[&str],
    ) {
        let mut expect = format!("# {about}\n");
        for line in outcomes {
            expect.push_str(line);
            expect.push('\n');
        }
        self.0.push(Case {
            name,
            npy,
            journal,
            expect,
        });
    }
}

/// Every case of the corpus.
#[expect(clippy::too_many_lines, reason = "one list of cases")]
fn cases() -> Vec<Case> {
    let mut c = Cases(Vec::new());
    let good = f4x3(5, 5);
    let hlen = header::parse(&good).unwrap().header_len as usize;

    // --- numpy's own bad-header cases: numpy refuses them too.
    let corrupt_refused = |what: &str| {
        [
            format!("open: Corrupt: {what}"),
            format!("reader: Corrupt: {what}"),
            "numpy: refuses".to_owned(),
        ]
    };
    macro_rules! refused {
        ($name:literal, $about:literal, $npy:expr, $what:literal) => {{
            let lines = corrupt_refused($what);
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            c.npy($name, $about, $npy, &lines);
        }};
    }
    refused!(
        "empty_file",
        "a file of zero bytes",
        Vec::new(),
        "need 8 bytes, have 0"
    );
    refused!(
        "one_byte",
        "only the first magic byte",
        b"\x93".to_vec(),
        "need 8 bytes, have 1"
    );
    refused!(
        "magic_only",
        "the six magic bytes and nothing else",
        b"\x93NUMPY".to_vec(),
        "need 8 bytes, have 6"
    );
    refused!(
        "magic_and_version",
        "magic and version, no length field",
        b"\x93NUMPY\x01\x00".to_vec(),
        "need 10 bytes, have 8"
    );
    refused!(
        "v2_length_cut",
        "version 2.0 with two of its four length bytes",
        b"\x93NUMPY\x02\x00\x76\x00".to_vec(),
        "need 12 bytes, have 10"
    );
    refused!(
        "length_no_header",
        "a length field claiming 118 bytes of header text, then nothing",
        with_len_field(1, 0, 118, b""),
        "header claims 128 bytes but the file has only 10"
    );
    refused!(
        "header_cut_short",
        "a valid header cut after 50 bytes",
        good[..50].to_vec(),
        "header claims 128 bytes but the file has only 50"
    );
    refused!(
        "bad_magic",
        "the magic string spelled \\x93NUMPZ",
        patched(good.clone(), 5, b"Z"),
        "does not start with the magic string"
    );
    refused!(
        "bad_magic_first_byte",
        "the magic without its \\x93 byte",
        patched(good.clone(), 0, b"N"),
        "does not start with the magic string"
    );
    refused!(
        "text_file",
        "a text file",
        b"this is not an array, just some text\n".to_vec(),
        "does not start with the magic string"
    );
    refused!(
        "zip_file",
        "an .npz (zip) archive named .npy",
        patched(support::garbage(200, 7), 0, b"PK\x03\x04"),
        "does not start with the magic string"
    );
    refused!(
        "missing_descr",
        "no 'descr' key",
        v1("{'fortran_order': False, 'shape': (5, 3), }"),
        "no 'descr' key"
    );
    refused!(
        "missing_fortran_order",
        "no 'fortran_order' key",
        v1("{'descr': '<f4', 'shape': (5, 3), }"),
        "no 'fortran_order' key"
    );
    refused!(
        "missing_shape",
        "no 'shape' key",
        v1("{'descr': '<f4', 'fortran_order': False, }"),
        "no 'shape' key"
    );
    refused!(
        "extra_key",
        "a fourth key 'extra'",
        v1("{'descr': '<f4', 'extra': 1, 'fortran_order': False, 'shape': (5, 3), }"),
        "unexpected key 'extra'"
    );
    refused!(
        "not_a_dict",
        "the header is a list",
        v1("['<f4', False, (5, 3)]"),
        "not a dict but a list"
    );
    refused!(
        "unclosed_dict",
        "the dict is never closed",
        v1("{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), "),
        "unexpected end of text"
    );
    refused!(
        "unquoted_keys",
        "keys that are not Python literals",
        v1("{descr: '<f4', fortran_order: False, shape: (5, 3)}"),
        "unknown name \"descr\""
    );
    refused!(
        "nul_in_header",
        "a NUL byte inside the dict",
        v1("{'descr': '<f4',\0 'fortran_order': False, 'shape': (5, 3), }"),
        "unexpected character '\\0'"
    );
    refused!(
        "v3_invalid_utf8",
        "a version 3.0 header that is not UTF-8",
        wrap(
            3,
            b"{'descr': [('\xff', '<f4')], 'fortran_order': False, 'shape': (5,), }"
        ),
        "not valid UTF-8"
    );
    {
        // numpy's writer refuses a version 1.0 header over 65535 bytes; a
        // file that has one anyway (4,500 fields) has a length field that
        // wrapped around and cuts the text inside the field list.
        let fields: Vec<String> = (0..4500).map(|i| format!("('f{i}', '<f4')")).collect();
        let text = dict(&format!("[{}]", fields.join(", ")), "False", "(0,)");
        let mut body = text.into_bytes();
        while !(10 + body.len() + 1).is_multiple_of(64) {
            body.push(b' ');
        }
        body.push(b'\n');
        assert!(body.len() > 65535);
        let npy = with_len_field(1, 0, (body.len() % 65536) as u32, &body);
        refused!(
            "v1_header_over_65535",
            "a version 1.0 header of over 65535 bytes (its u16 length wrapped)",
            npy,
            "unexpected end of text"
        );
    }
    refused!(
        "shape_negative",
        "shape (-1,)",
        v1(&dict("'<f4'", "False", "(-1,)")),
        "'shape' is not valid: (-1,)"
    );
    refused!(
        "shape_negative_row",
        "shape (5, -3)",
        v1(&dict("'<f4'", "False", "(5, -3)")),
        "'shape' is not valid"
    );
    refused!(
        "shape_float",
        "a float dimension (5.0, 3)",
        v1(&dict("'<f4'", "False", "(5.0, 3)")),
        "float and complex literals are not supported"
    );
    refused!(
        "shape_str",
        "a string dimension ('5', 3)",
        v1(&dict("'<f4'", "False", "('5', 3)")),
        "'shape' is not valid"
    );
    refused!(
        "shape_list",
        "shape as a list [5, 3]",
        v1(&dict("'<f4'", "False", "[5, 3]")),
        "'shape' is not valid"
    );
    refused!(
        "shape_int",
        "shape as a bare int",
        v1(&dict("'<f4'", "False", "5")),
        "'shape' is not valid"
    );
    refused!(
        "shape_none",
        "shape None",
        v1(&dict("'<f4'", "False", "None")),
        "'shape' is not valid"
    );
    refused!(
        "shape_over_u64",
        "a dimension of 2**64",
        v1(&dict("'<f4'", "False", "(18446744073709551616,)")),
        "NPY header"
    );
    refused!(
        "dims_product_overflows",
        "shape (2**40, 2**40) of '<f8': the data size overflows u64",
        v1(&dict("'<f8'", "False", "(1099511627776, 1099511627776)")),
        "overflows 64 bits"
    );
    refused!(
        "row_size_overflows",
        "a row of (2**62, 8) '<f8': the row size overflows u64",
        v1(&dict("'<f8'", "False", "(1, 4611686018427387904, 8)")),
        "overflows 64 bits"
    );
    refused!(
        "descr_unknown_code",
        "descr '<q9'",
        v1(&dict("'<q9'", "False", "(5, 3)")),
        "'descr' is not valid"
    );
    refused!(
        "descr_bad_size",
        "descr '<f3'",
        v1(&dict("'<f3'", "False", "(5, 3)")),
        "'descr' is not valid"
    );
    refused!(
        "descr_garbage",
        "descr 'xyz'",
        v1(&dict("'xyz'", "False", "(5, 3)")),
        "'descr' is not valid"
    );
    refused!(
        "descr_int",
        "descr 42",
        v1(&dict("42", "False", "(5, 3)")),
        "'descr' is not valid"
    );
    refused!(
        "descr_bad_field",
        "a field tuple with one element",
        v1(&dict("[('a',)]", "False", "(5,)")),
        "'descr' is not valid"
    );
    refused!(
        "descr_nested_too_deep",
        "a descr nested 80 lists deep",
        v1(&dict(
            &format!("{}'<f4'{}", "[".repeat(80), "]".repeat(80)),
            "False",
            "(5,)"
        )),
        "nested deeper than"
    );
    refused!(
        "fortran_order_int",
        "fortran_order 0 instead of False",
        v1(&dict("'<f4'", "0", "(5, 3)")),
        "'fortran_order' is not a bool"
    );
    {
        let mut npy = v1(&dict("'<f4'", "False", "(5, 3)"));
        npy.extend(data(59));
        c.npy(
            "data_one_byte_short",
            "a (5, 3) '<f4' array with 59 of its 60 data bytes",
            npy,
            &[
                "open: FileTooShort: rows are missing: the header describes 5 rows in 188 bytes, the file has 187, which hold 4 whole rows",
                "reader: FileTooShort: rows are missing",
                "numpy: refuses",
            ],
        );
    }
    c.npy(
        "data_missing",
        "a (1000,) '<f8' header with no data at all",
        saved_header("'<f8'", &[1000]),
        &[
            "open: FileTooShort: the header describes 1000 rows in 8128 bytes, the file has 128, which hold 0 whole rows",
            "reader: FileTooShort: rows are missing",
            "numpy: refuses",
        ],
    );
    c.npy(
        "rows_2_pow_60",
        "a header claiming 2**60 rows of '<f4' over 5 rows of data",
        {
            let mut npy = saved_header("'<f4'", &[1 << 60]);
            npy.extend(data(20));
            npy
        },
        &[
            "open: FileTooShort: the header describes 1152921504606846976 rows in 4611686018427388032 bytes",
            "reader: FileTooShort: rows are missing",
            "numpy: refuses",
        ],
    );
    c.npy(
        "header_len_4gib",
        "a version 2.0 length field of 4 GiB in a 200-byte file",
        with_len_field(2, 0, u32::MAX, &f4x3(5, 6)[12..]),
        &[
            "open: Unsupported: over the 67108864-byte limit",
            "reader: Unsupported: over the 67108864-byte limit",
            "numpy: refuses",
        ],
    );
    c.npy(
        "header_len_1mib",
        "a version 2.0 length field of 1 MiB in a 200-byte file",
        with_len_field(2, 0, 1 << 20, &f4x3(5, 6)[12..]),
        &[
            "open: Corrupt: header claims 1048588 bytes but the file has only 200",
            "reader: Corrupt: header claims 1048588 bytes but the file has only 200",
            "numpy: refuses",
        ],
    );
    for (name, major, minor) in [
        ("version_4_0", 4, 0),
        ("version_1_1", 1, 1),
        ("version_0_0", 0, 0),
    ] {
        let mut npy = good.clone();
        npy[6] = major;
        npy[7] = minor;
        let what = format!("unsupported NPY version {major}.{minor}");
        c.npy(
            name,
            &format!("format version {major}.{minor}"),
            npy,
            &[
                &format!("open: Unsupported: {what}"),
                &format!("reader: Unsupported: {what}"),
                "numpy: refuses",
            ],
        );
    }
    c.npy(
        "object_dtype",
        "an object array ('|O'), which holds pickled pointers",
        {
            let mut npy = v1(&dict("'|O'", "False", "(5,)"));
            npy.extend(data(40));
            npy
        },
        &[
            "open: Unsupported: object dtype",
            "reader: Unsupported: object dtype",
            "numpy: refuses",
        ],
    );
    c.npy(
        "object_field",
        "a structured dtype with an object field",
        {
            let mut npy = v1(&dict("[('a', '<i4'), ('b', '|O')]", "False", "(5,)"));
            npy.extend(data(60));
            npy
        },
        &[
            "open: Unsupported: object dtype",
            "reader: Unsupported: object dtype",
            "numpy: refuses",
        ],
    );

    // --- Valid to numpy, refused (or partly refused) by this library.
    c.npy(
        "duplicate_key",
        "'descr' twice (numpy keeps the last; which one was meant is unknown)",
        v1("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (5, 3), }"),
        &[
            "open: Corrupt: has the key 'descr' twice",
            "reader: Corrupt: has the key 'descr' twice",
        ],
    );
    c.npy(
        "fortran_2d",
        "a Fortran-order (5, 3) array: 3 rows along the last axis",
        {
            let mut npy = v1(&dict("'<f4'", "True", "(5, 3)"));
            npy.extend(data(60));
            npy
        },
        &["open: Ok rows=3", "reader: Ok rows=3"],
    );
    c.npy(
        "fortran_1d",
        "a Fortran-order 1-d array: the same as C order",
        {
            let mut npy = v1(&dict("'<f4'", "True", "(5,)"));
            npy.extend(data(20));
            npy
        },
        &["open: Ok rows=5", "reader: Ok rows=5"],
    );
    c.npy(
        "zero_d",
        "a 0-d array (shape ())",
        {
            let mut npy = v1(&dict("'<f8'", "False", "()"));
            npy.extend(data(8));
            npy
        },
        &[
            "open: Unsupported: a 0-d array",
            "reader: Unsupported: a 0-d array",
        ],
    );
    c.npy(
        "zero_size_rows",
        "rows of shape (0,): zero bytes a row",
        v1(&dict("'<f4'", "False", "(5, 0)")),
        &[
            "open: Unsupported: have zero bytes",
            "reader: Unsupported: have zero bytes",
        ],
    );
    c.npy(
        "zero_size_dtype",
        "dtype '|V0': zero bytes an item",
        v1(&dict("'|V0'", "False", "(5,)")),
        &[
            "open: Unsupported: have zero bytes",
            "reader: Unsupported: have zero bytes",
        ],
    );
    c.npy(
        "toplevel_subarray_descr",
        "a subarray descr ('<f4', (3,)) at the top level",
        {
            let mut npy = v1(&dict("('<f4', (3,))", "False", "(5,)"));
            npy.extend(data(60));
            npy
        },
        &[
            "open: Unsupported: subarray dtype",
            "reader: Unsupported: subarray dtype",
        ],
    );
    c.npy(
        "no_growth_room",
        "a header with no room for a 20-digit row count (read as is; opening rewrites it with room)",
        {
            let text = dict("'<f4'", "False", "(5, 3)");
            let mut body = text.into_bytes();
            while !(10 + body.len() + 1).is_multiple_of(16) {
                body.push(b' ');
            }
            body.push(b'\n');
            let mut npy = with_len_field(1, 0, body.len() as u32, &body);
            npy.extend(data(60));
            npy
        },
        &[
            "open: Ok rows=5",
            "reader: Ok rows=5",
        ],
    );
    c.npy(
        "trailing_bytes_no_journal",
        "3 bytes past the data and no journal",
        {
            let mut npy = good.clone();
            npy.extend(data(3));
            npy
        },
        &[
            "open: TrailingBytes: 3 bytes past the 5 rows",
            "reader: Ok rows=5",
        ],
    );
    c.npy(
        "trailing_rows_no_journal",
        "two whole rows past the data and no journal",
        f4x3(5, 7),
        &[
            "open: TrailingBytes: 24 bytes past the 5 rows",
            "reader: Ok rows=5",
        ],
    );
    c.npy(
        "header_over_numpy_limit",
        "a valid version 2.0 header of 20,032 bytes: over numpy's default max_header_size (10,000), \
         which np.load refuses; within this library's limit, so it is taken over",
        {
            let text = dict("'<f4'", "False", "(5, 3)");
            let mut body = text.into_bytes();
            body.resize(20_032 - 12 - 1, b' ');
            body.push(b'\n');
            let mut npy = with_len_field(2, 0, body.len() as u32, &body);
            npy.extend(data(60));
            npy
        },
        &["open: Ok rows=5", "reader: Ok rows=5", "numpy: refuses"],
    );

    // --- Journals.
    let base = || f4x3(5, 5);
    let other_journal = |descr: &str, row_shape: &[u64], row_bytes: u64| {
        let mut shape = vec![0];
        shape.extend_from_slice(row_shape);
        let snapshot = saved_header(descr, &shape);
        journal_with(
            &snapshot,
            row_bytes,
            0,
            Some(&record(1, 0, 0, 0, true)),
            None,
        )
    };
    c.add(
        "journal_other_dtype",
        "a journal written for a '<f8' file next to a '<f4' file",
        base(),
        Some(other_journal("'<f8'", &[3], 24)),
        &[
            "open: Corrupt: journal belongs to another file",
            "reader: Corrupt: journal belongs to another file",
        ],
    );
    c.add(
        "journal_other_row_shape",
        "a journal written for rows of shape (4,) next to rows of shape (3,)",
        base(),
        Some(other_journal("'<f4'", &[4], 16)),
        &[
            "open: Corrupt: journal belongs to another file",
            "reader: Corrupt: journal belongs to another file",
        ],
    );
    c.add(
        "journal_other_header_len",
        "a journal whose header snapshot is a version 2.0 header (another length)",
        base(),
        Some({
            let snapshot =
                header::build_with_len(header::Version::V2, &dtype("'<f4'"), false, &[0, 3], 192)
                    .unwrap();
            journal_with(&snapshot, 12, 0, Some(&record(1, 0, 0, 0, true)), None)
        }),
        &[
            "open: Corrupt: journal belongs to another file",
            "reader: Corrupt: journal belongs to another file",
        ],
    );
    {
        let journal = f4x3_journal(&base(), 2, 5, true);
        let mut future = journal.clone();
        future[8..12].copy_from_slice(&2u32.to_le_bytes());
        c.add(
            "journal_future_version",
            "a journal of format version 2 (its checksum valid for version 1)",
            base(),
            Some(future),
            &[
                "open: Unsupported: journal format version 2",
                "reader: Unsupported: journal format version 2",
            ],
        );
        let mut future = vec![0u8; 20480];
        future[..8].copy_from_slice(&journal::MAGIC);
        future[8..12].copy_from_slice(&7u32.to_le_bytes());
        c.add(
            "journal_future_version_other_layout",
            "a journal with the magic, format version 7 and a layout this library does not know",
            f4x3(5, 7),
            Some(future),
            &[
                "open: Unsupported: journal format version 7",
                "reader: Unsupported: journal format version 7",
            ],
        );
    }
    c.add(
        "journal_garbage_with_trailing_bytes",
        "a journal of random bytes (not a journal npy-append wrote: left alone, refused) and \
         2 rows past the header's",
        f4x3(5, 7),
        Some(support::garbage(20480, 3)),
        &[
            "open: ForeignJournal: not a journal npy-append wrote",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "journal_cut_short_with_trailing_bytes",
        "a journal cut inside its identity block (a torn creation, ignored) and a byte past the data",
        {
            let mut npy = base();
            npy.push(0);
            npy
        },
        Some(f4x3_journal(&base(), 2, 5, true)[..40].to_vec()),
        &["open: TrailingBytes: 1 bytes past the 5 rows", "reader: Ok rows=5"],
    );
    {
        // Both slots torn and a header that does not describe the data.
        let snapshot = saved_header("'<f4'", &[0, 3]);
        let mut j = journal_with(&snapshot, 12, 0, None, None);
        let block = journal::identity_len(snapshot.len() as u64).unwrap() as usize;
        let a = support::garbage(64, 11);
        let b = support::garbage(64, 12);
        j[block..block + 64].copy_from_slice(&a);
        j[block + 8192..block + 8192 + 64].copy_from_slice(&b);
        c.add(
            "both_slots_torn",
            "both journal slots fail their checksum and the header claims 10 rows over 5",
            f4x3(10, 5),
            Some(j.clone()),
            &[
                "open: Corrupt: both journal slots fail their checksum",
                "reader: Ok rows=5",
            ],
        );
        // Slots of another journal: the same, for another reason.
        let other = |rec: &Record| {
            let mut bytes = rec.encode(JOURNAL_ID ^ 1).unwrap();
            bytes.resize(64, 0);
            bytes
        };
        let mut j2 = journal_with(&snapshot, 12, 0, None, None);
        j2[block..block + 64].copy_from_slice(&other(&record(1, 0, 5, 0, true)));
        j2[block + 8192..block + 8192 + 64].copy_from_slice(&other(&record(2, 5, 10, 0, true)));
        c.add(
            "slots_of_another_journal",
            "both slots carry another journal's id and the header claims 10 rows over 5",
            f4x3(10, 5),
            Some(j2),
            &[
                "open: Corrupt: both journal slots fail their checksum",
                "reader: Ok rows=5",
            ],
        );
        c.add(
            "both_slots_torn_header_ok",
            "both journal slots torn, the header describes its 5 rows: recoverable (expected ok)",
            base(),
            Some(j),
            &["open: Ok rows=5", "reader: Ok rows=5"],
        );
    }
    c.add(
        "file_shorter_than_journal",
        "the journal committed 8 rows (data synced first); the file holds exactly the 5 rows \
         its header says, as another program's write would leave it",
        f4x3(5, 5),
        Some({
            let long = f4x3(8, 8);
            f4x3_journal(&long, 5, 8, true)
        }),
        &[
            "open: JournalDisagrees: holds exactly the 5 rows its header says",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "file_shorter_than_journal_with_a_tail",
        "the journal committed 8 rows (data synced first); the file holds 5 rows and half \
         of a sixth: committed data is missing",
        {
            let mut npy = f4x3(5, 5);
            npy.extend(data(6));
            npy
        },
        Some({
            let long = f4x3(8, 8);
            f4x3_journal(&long, 5, 8, true)
        }),
        &[
            "open: CommittedDataMissing: 8 committed rows need",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "journal_claims_2_pow_60_rows",
        "a synced record of 2**60 rows next to a file of 5 and a half rows",
        {
            // Half a row past the header's: not what another program's
            // complete write leaves, so committed data is missing.
            let mut npy = base();
            npy.extend(data(6));
            npy
        },
        Some({
            let snapshot = saved_header("'<f4'", &[0, 3]);
            journal_with(
                &snapshot,
                12,
                0,
                Some(&record(1, 0, 5, rows_crc(&base(), 0, 5), true)),
                Some(&record(2, 5, 1 << 60, 0, true)),
            )
        }),
        &[
            "open: CommittedDataMissing: 1152921504606846976 committed rows need",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "journal_claims_rows_past_u64",
        "a synced record whose rows overflow the file size in u64, next to a file of 5 and a \
         half rows",
        {
            // Half a row past the header's: not what another program's
            // complete write leaves, so committed data is missing.
            let mut npy = base();
            npy.extend(data(6));
            npy
        },
        Some({
            let snapshot = saved_header("'<f4'", &[0, 3]);
            journal_with(
                &snapshot,
                12,
                0,
                Some(&record(1, 0, 5, rows_crc(&base(), 0, 5), true)),
                Some(&record(2, 5, u64::MAX, 0, true)),
            )
        }),
        &[
            "open: CommittedDataMissing: 18446744073709551615 committed rows",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "data_checksum_mismatch",
        "a synced commit of rows 2..5 whose data no longer matches its CRC",
        {
            let mut npy = base();
            npy[hlen + 3 * 12] ^= 0xff;
            npy
        },
        Some(f4x3_journal(&base(), 2, 5, true)),
        &[
            "open: ChecksumMismatch: checksum mismatch in rows 2..5 of commit 2",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "header_ahead_of_journal",
        "the header says 7 rows, the fsync journal committed 5: rewritten by another program",
        f4x3(7, 7),
        Some(f4x3_journal(&f4x3(7, 7), 2, 5, true)),
        &[
            "open: JournalDisagrees: another program rewrote the file",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "snapshot_not_a_header",
        "a journal whose identity checksum is valid but whose header snapshot is garbage",
        base(),
        Some({
            let mut snapshot = support::garbage(128, 5);
            snapshot[..6].copy_from_slice(b"\x93NUMPY");
            journal_with(&snapshot, 12, 0, Some(&record(1, 0, 5, 0, true)), None)
        }),
        &[
            "open: Corrupt: header snapshot",
            "reader: Corrupt: header snapshot",
        ],
    );
    c.add(
        "snapshot_disagrees_with_identity",
        "an identity whose row size (16) disagrees with its own header snapshot (12)",
        base(),
        Some({
            let snapshot = saved_header("'<f4'", &[0, 3]);
            journal_with(&snapshot, 16, 0, Some(&record(1, 0, 5, 0, true)), None)
        }),
        &[
            "open: Corrupt: disagrees with its own header snapshot",
            "reader: Corrupt: disagrees with its own header snapshot",
        ],
    );
    c.add(
        "snapshot_object_dtype",
        "a journal whose header snapshot is an object array",
        base(),
        Some({
            let snapshot = v1(&dict("'|O'", "False", "(0, 3)"));
            journal_with(&snapshot, 24, 0, Some(&record(1, 0, 0, 0, true)), None)
        }),
        &[
            "open: Corrupt: header snapshot: unsupported: object dtype",
            "reader: Corrupt: header snapshot: unsupported: object dtype",
        ],
    );
    c.add(
        "torn_header_foreign_journal",
        "an unreadable .npy header that does not start like the journal's snapshot",
        {
            let mut npy = support::garbage(hlen, 9);
            npy.extend(data(60));
            npy
        },
        Some(f4x3_journal(&base(), 2, 5, true)),
        &[
            "open: Corrupt: does not start like the header in",
            "reader: Corrupt: does not start like the header in",
        ],
    );
    c.add(
        "torn_header_from_writer",
        "a header torn by its own writer (same prefix) with a valid journal: recoverable (expected ok)",
        {
            let mut npy = base();
            npy[20..60].fill(0);
            npy
        },
        Some(f4x3_journal(&base(), 2, 5, true)),
        &["open: Ok rows=5", "reader: Ok rows=5"],
    );
    c.add(
        "torn_last_commit_process",
        "process durability, the newest commit's data is torn and the header kept at its 5 \
         rows, which the file holds: another program saving 5 rows leaves the same, so it is \
         refused (accept_loss recovers 2 rows)",
        {
            let mut npy = base();
            npy[hlen + 4 * 12] ^= 0xff;
            npy
        },
        Some(f4x3_journal(&base(), 2, 5, false)),
        &[
            "open: JournalDisagrees: the rows past it may be another program's",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "torn_last_commit_process_header_behind",
        "process durability, the newest commit's data is torn and its header write lost \
         (the header says 2 rows): a power loss of this library's writer, recoverable to 2 \
         rows (expected ok)",
        {
            let mut npy = base();
            npy[hlen + 4 * 12] ^= 0xff;
            let header = saved_header("'<f4'", &[2, 3]);
            npy[..header.len()].copy_from_slice(&header);
            npy
        },
        Some(f4x3_journal(&base(), 2, 5, false)),
        &["open: Ok rows=2", "reader: Ok rows=5"],
    );
    c.add(
        "garbage_journal_clean_file",
        "a journal of random bytes next to a clean file: not a journal npy-append wrote, left \
         alone (refused)",
        base(),
        Some(support::garbage(20480, 4)),
        &[
            "open: ForeignJournal: not a journal npy-append wrote",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "journal_is_a_copy_of_the_npy",
        "a copy of the .npy where its journal would be: not a journal, left alone (refused)",
        base(),
        Some(base()),
        &[
            "open: ForeignJournal: not a journal npy-append wrote",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "journal_of_100_random_bytes",
        "100 random bytes where the journal would be: left alone (refused)",
        base(),
        Some(support::garbage(100, 5)),
        &[
            "open: ForeignJournal: not a journal npy-append wrote",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "torn_journal_creation_first_sector",
        "a journal creation of this library cut after its first 512-byte sector, next to the \
         clean file it was created for: removed and created again (expected ok)",
        base(),
        Some({
            let mut creation = creation_journal(&base(), 5);
            creation.truncate(512);
            creation
        }),
        &["open: Ok rows=5", "reader: Ok rows=5"],
    );
    c.add(
        "torn_journal_creation_lost_sectors",
        "a journal creation whose first sector landed and whose others are zeros (the write \
         extended the file but did not land there): removed and created again (expected ok)",
        base(),
        Some({
            let mut creation = creation_journal(&base(), 5);
            for b in &mut creation[512..] {
                *b = 0;
            }
            creation
        }),
        &["open: Ok rows=5", "reader: Ok rows=5"],
    );
    c.add(
        "torn_journal_creation_garbage_sector",
        "a journal creation whose first sector holds garbage: not what this library writes, \
         left alone (refused; after a disk that returns garbage, the way out is to move it \
         aside)",
        base(),
        Some({
            let mut creation = creation_journal(&base(), 5);
            creation[..512].copy_from_slice(&support::garbage(512, 6));
            creation
        }),
        &[
            "open: ForeignJournal: not a journal npy-append wrote",
            "reader: Ok rows=5",
        ],
    );
    c.add(
        "trailing_bytes_with_journal",
        "uncommitted rows past a commit with a valid journal: cut by recovery (expected ok)",
        f4x3(5, 7),
        Some(f4x3_journal(&f4x3(5, 7), 2, 5, true)),
        &["open: Ok rows=5", "reader: Ok rows=5"],
    );
    c.0
}

// ---------------------------------------------------------------------------
// The expectations and their check.

/// What an `.expect` line says an operation returns.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok { rows: u64 },
    Err { variant: String, message: String },
}

impl Outcome {
    fn parse(text: &str) -> Self {
        if let Some(rows) = text.strip_prefix("Ok rows=") {
            return Self::Ok {
                rows: rows
                    .parse()
                    .unwrap_or_else(|_| panic!("bad rows in {text:?}")),
            };
        }
        let (variant, message) = text
            .split_once(": ")
            .unwrap_or_else(|| panic!("expected `Variant: message`, found {text:?}"));
        Self::Err {
            variant: variant.to_owned(),
            message: message.to_owned(),
        }
    }

    /// Whether `result` is this outcome; `Err(why)` when not.
    fn check(&self, result: &Result<u64, Error>) -> Result<(), String> {
        match (self, result) {
            (Self::Ok { rows }, Ok(found)) if rows == found => Ok(()),
            (Self::Err { variant, message }, Err(e)) => {
                let debug = format!("{e:?}");
                let found = debug.split([' ', '{', '(']).next().unwrap_or_default();
                let text = e.to_string();
                if found == variant && text.contains(message.as_str()) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected {variant} containing {message:?}, found {found}: {text}"
                    ))
                }
            }
            (_, Ok(found)) => Err(format!("expected {self:?}, found Ok with {found} rows")),
            (_, Err(e)) => Err(format!("expected {self:?}, found {e:?}: {e}")),
        }
    }
}

struct Expect {
    open: Outcome,
    reader: Outcome,
    numpy_refuses: bool,
}

fn read_expect(path: &Path) -> Expect {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines: BTreeMap<&str, &str> = BTreeMap::new();
    assert!(
        text.starts_with("# "),
        "{}: no description line",
        path.display()
    );
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (key, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("{}: bad line {line:?}", path.display()));
        assert!(
            lines.insert(key, value).is_none(),
            "{}: {key} twice",
            path.display()
        );
    }
    let get = |key: &str| {
        Outcome::parse(
            lines
                .get(key)
                .unwrap_or_else(|| panic!("{}: no {key} line", path.display())),
        )
    };
    Expect {
        open: get("open"),
        reader: get("reader"),
        numpy_refuses: lines.get("numpy") == Some(&"refuses"),
    }
}

/// The case names (`<case>.npy`) in the corpus directory.
fn case_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".npy").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Every file in `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A temporary directory holding a copy of the case's files, and the path of
/// its `.npy`.
fn copy_case(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let npy = tmp.path().join("case.npy");
    fs::copy(dir().join(format!("{name}.npy")), &npy).unwrap();
    let journal = dir().join(format!("{name}.npy.journal"));
    if journal.exists() {
        fs::copy(&journal, npy_append::journal_path(&npy)).unwrap();
    }
    (tmp, npy)
}

#[test]
fn bad_inputs_give_their_expected_outcome() {
    let names = case_names();
    let mut failures = Vec::new();
    let mut refused = 0;
    for name in &names {
        let expect = read_expect(&dir().join(format!("{name}.expect")));

        let (tmp, npy) = copy_case(name);
        let before = tree(tmp.path());
        let opened = std::panic::catch_unwind(|| AppendOptions::new().open(&npy).map(|a| a.len()));
        let Ok(opened) = opened else {
            failures.push(format!("{name}: open panicked"));
            continue;
        };
        if let Err(why) = expect.open.check(&opened) {
            failures.push(format!("{name}: open: {why}"));
        }
        if opened.is_err() {
            refused += 1;
            if tree(tmp.path()) != before {
                failures.push(format!("{name}: a refused open changed the files"));
            }
        }

        let (tmp, npy) = copy_case(name);
        let before = tree(tmp.path());
        let read = std::panic::catch_unwind(|| Reader::open(&npy).map(|r| r.len()));
        match read {
            Ok(read) => {
                if let Err(why) = expect.reader.check(&read) {
                    failures.push(format!("{name}: reader: {why}"));
                }
            }
            Err(_) => failures.push(format!("{name}: reader panicked")),
        }
        if tree(tmp.path()) != before {
            failures.push(format!("{name}: the reader changed the files"));
        }
    }
    println!("{} bad-input cases, {refused} refused by open", names.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(names.len() >= 60, "only {} cases", names.len());
    assert!(refused >= 60, "only {refused} cases are refused by open");
}

#[test]
fn numpy_refuses_its_own_bad_cases() {
    let Some(py) = support::require_numpy("numpy_refuses_its_own_bad_cases") else {
        return;
    };
    let names: Vec<String> = case_names()
        .into_iter()
        .filter(|n| read_expect(&dir().join(format!("{n}.expect"))).numpy_refuses)
        .collect();
    assert!(names.len() >= 20, "only {} numpy cases", names.len());
    let code = r"
import sys, numpy as np
for path in sys.argv[1:]:
    try:
        a = np.load(path)
        print(path, 'loaded', a.shape)
    except Exception as e:
        print(path, 'refused', type(e).__name__)
";
    let paths: Vec<String> = names
        .iter()
        .map(|n| dir().join(format!("{n}.npy")).display().to_string())
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let out = support::run_python(&py, code, &args);
    let loaded: Vec<&str> = out.lines().filter(|l| l.contains(" loaded ")).collect();
    assert_eq!(out.lines().count(), names.len(), "{out}");
    assert!(
        loaded.is_empty(),
        "numpy loads cases marked `numpy: refuses`:\n{}",
        loaded.join("\n")
    );
}

#[test]
fn bad_inputs_match_their_generator() {
    let mut want = BTreeMap::new();
    for case in cases() {
        want.insert(format!("{}.npy", case.name), case.npy);
        want.insert(format!("{}.expect", case.name), case.expect.into_bytes());
        if let Some(j) = case.journal {
            want.insert(format!("{}.npy.journal", case.name), j);
        }
    }
    let have = tree(&dir());
    let stale: Vec<&String> = want
        .iter()
        .filter(|(name, bytes)| have.get(*name) != Some(bytes))
        .map(|(name, _)| name)
        .chain(have.keys().filter(|name| !want.contains_key(*name)))
        .collect();
    assert!(
        stale.is_empty(),
        "tests/bad_inputs differs from its generator in {stale:?}; run \
         cargo test --release --test bad_inputs -- --ignored write_bad_inputs"
    );
}

#[test]
#[ignore = "generator: rewrites tests/bad_inputs"]
fn write_bad_inputs() {
    let dir = dir();
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    let cases = cases();
    let mut seen = std::collections::BTreeSet::new();
    for case in &cases {
        assert!(seen.insert(case.name), "case {} twice", case.name);
        fs::write(dir.join(format!("{}.npy", case.name)), &case.npy).unwrap();
        fs::write(dir.join(format!("{}.expect", case.name)), &case.expect).unwrap();
        if let Some(j) = &case.journal {
            fs::write(dir.join(format!("{}.npy.journal", case.name)), j).unwrap();
        }
    }
    println!("wrote {} cases to {}", cases.len(), dir.display());
}

/// A journal of a newer format version with no `.npy` beside it is refused
/// and kept (it is not a torn creation, which would be removed).
#[test]
fn future_journal_without_npy_is_refused_and_kept() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "journal_future_version")
        .unwrap();
    let journal = case.journal.unwrap();
    let fs = npy_append::storage::MemBackend::new();
    let path = Path::new("/d/f.npy");
    let journal_path = npy_append::journal_path(path);
    fs.put(&journal_path, &journal);
    let err = AppendOptions::new()
        .open_with(fs.clone(), path)
        .map(|a| a.len())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { .. }) && err.to_string().contains("format version 2"),
        "{err:?}"
    );
    assert_eq!(fs.contents(&journal_path), Some(journal));
    assert_eq!(fs.contents(path), None);
}
