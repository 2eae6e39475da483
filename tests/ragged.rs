//! Ragged arrays: sequences appended one at a time or in batches,
//! committed together in values and offsets, read back without copying,
//! recovered together after a crash, and loaded by numpy.

mod support;

use std::time::Duration;

use npy_append::{Error, LockWait, RaggedOptions, RaggedReader};

/// Another test's child process may hold a copy of a descriptor (and its
/// lock) between its fork and its exec: opening waits for it.
fn wait() -> LockWait {
    LockWait::Wait(Duration::from_secs(10))
}

/// Opens the u16 token array of `path` (created on first use).
fn open_tokens(path: &std::path::Path) -> npy_append::RaggedAppender {
    RaggedOptions::of::<u16>(&[])
        .lock_wait(wait())
        .open(path)
        .unwrap()
}

/// Sequence `i`: `i % 7` tokens.
fn seq(i: u64) -> Vec<u16> {
    (0..i % 7).map(|j| (i * 10 + j) as u16).collect()
}

#[test]
fn sequences_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.group");
    let mut w = open_tokens(&path);
    assert!(w.is_empty());
    for i in 0..10 {
        w.append(&seq(i)).unwrap();
    }
    assert_eq!(w.pending_sequences(), 10);
    assert_eq!(w.commit().unwrap(), 10);
    // A batch: values one after another, lengths per sequence.
    let batch: Vec<u16> = (10..20).flat_map(seq).collect();
    let lengths: Vec<u64> = (10..20).map(|i| seq(i).len() as u64).collect();
    w.append_batch(&batch, &lengths).unwrap();
    assert!(matches!(
        w.append_batch(&batch, &[1]),
        Err(Error::ShapeMismatch { .. })
    ));
    w.commit_with_cursor(b"doc 20").unwrap();
    assert_eq!(w.close().unwrap(), 20);

    let r = RaggedReader::open(&path).unwrap();
    assert_eq!(r.len(), 20);
    assert_eq!(r.cursor(), b"doc 20");
    for i in 0..20 {
        assert_eq!(r.get::<u16>(i).unwrap(), &seq(i)[..], "sequence {i}");
    }
    // A slice of the mapping, not a copy: consecutive sequences are adjacent.
    let (a, b) = (r.get::<u16>(1).unwrap(), r.get::<u16>(2).unwrap());
    assert_eq!(a.as_ptr_range().end, b.as_ptr());
    assert!(r.get::<u16>(20).is_err());
    assert!(matches!(r.get::<u32>(1), Err(Error::DtypeMismatch { .. })));
}

#[test]
fn raw_bytes_for_dtypes_without_an_element_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("half.group");
    // Big-endian 16-bit floats, rows of 2: no Rust element type.
    let mut w = RaggedOptions::new(">f2", &[2])
        .unwrap()
        .lock_wait(wait())
        .open(&path)
        .unwrap();
    // Three sequences of 1, 0 and 2 rows (4 bytes per row).
    let bytes: Vec<u8> = (0u8..12).collect();
    w.append_batch_bytes(&bytes, &[1, 0, 2]).unwrap();
    // Lengths that do not match the bytes, or a partial row: refused, nothing appended.
    match w.append_batch_bytes(&bytes, &[1, 1]) {
        Err(e @ Error::ShapeMismatch { .. }) => {
            let text = e.to_string();
            assert!(text.contains("adding up to the 3 rows given"), "{text}");
            assert!(text.contains("2 lengths adding up to 2 rows"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.append_batch_bytes(&bytes[..6], &[1]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(w.pending_sequences(), 3);
    w.append_batch_bytes(&[20, 21, 22, 23], &[1]).unwrap();
    assert_eq!(w.commit().unwrap(), 4);
    w.close().unwrap();
    let r = RaggedReader::open(&path).unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r.get_bytes(0).unwrap(), &bytes[0..4]);
    assert_eq!(r.get_bytes(1).unwrap(), &[] as &[u8]);
    assert_eq!(r.get_bytes(2).unwrap(), &bytes[4..12]);
    assert_eq!(r.get_bytes(3).unwrap(), &[20, 21, 22, 23]);
    assert_eq!(r.range(3).unwrap(), 3..4);
}

#[test]
fn rows_of_several_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emb.group");
    let mut w = RaggedOptions::new("<f4", &[3])
        .unwrap()
        .names("emb.npy", "emb_offsets.npy")
        .lock_wait(wait())
        .open(&path)
        .unwrap();
    w.append(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(); // 2 rows
    w.append::<f32>(&[]).unwrap(); // empty sequence
    w.append(&[7.0f32, 8.0, 9.0]).unwrap();
    assert!(matches!(
        w.append(&[1.0f32]),
        Err(Error::ShapeMismatch { .. })
    ));
    w.close().unwrap();
    let r = RaggedReader::open_names(&path, "emb.npy", "emb_offsets.npy").unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r.range(0).unwrap(), 0..2);
    assert_eq!(r.get::<f32>(1).unwrap(), &[] as &[f32]);
    assert_eq!(r.get::<f32>(2).unwrap(), &[7.0, 8.0, 9.0]);
    assert_eq!(r.get_bytes(2).unwrap().len(), 12);
}

#[test]
fn a_crash_keeps_values_and_offsets_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.group");
    let mut w = open_tokens(&path);
    for i in 0..5 {
        w.append(&seq(i)).unwrap();
    }
    w.commit_with_cursor(b"5").unwrap();
    for i in 5..9 {
        w.append(&seq(i)).unwrap();
    }
    drop(w); // crash: sequences 5..9 never committed
    let mut w = open_tokens(&path);
    assert_eq!((w.len(), w.cursor()), (5, &b"5"[..]));
    let total: u64 = (0..5).map(|i| seq(i).len() as u64).sum();
    assert_eq!(w.values_len(), total);
    for i in 5..9 {
        w.append(&seq(i)).unwrap();
    }
    w.close().unwrap();
    let r = RaggedReader::open(&path).unwrap();
    assert_eq!(r.len(), 9);
    for i in 0..9 {
        assert_eq!(r.get::<u16>(i).unwrap(), &seq(i)[..]);
    }
}

#[test]
fn a_new_array_crashed_before_its_first_offset_opens_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.group");
    // The group exists with both members empty (as if the writer died
    // between creating it and committing the leading 0).
    npy_append::GroupOptions::new()
        .member(npy_append::MemberSpec::of::<u16>("values.npy", &[]))
        .member(npy_append::MemberSpec::of::<i64>("offsets.npy", &[]))
        .lock_wait(wait())
        .open(&path)
        .unwrap();
    let mut w = open_tokens(&path);
    assert_eq!(w.len(), 0);
    w.append(&[1u16, 2]).unwrap();
    w.close().unwrap();
    assert_eq!(
        RaggedReader::open(&path).unwrap().get::<u16>(0).unwrap(),
        &[1, 2]
    );
}

#[test]
fn numpy_reads_values_and_offsets() {
    let Some(py) = support::require_numpy("numpy_reads_values_and_offsets") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.group");
    let mut w = open_tokens(&path);
    for i in 0..30 {
        w.append(&seq(i)).unwrap();
    }
    w.close().unwrap();
    let out = support::run_python(
        &py,
        "import sys, numpy as np\n\
         d = sys.argv[1]\n\
         v = np.load(d + '/values.npy', mmap_mode='r'); o = np.load(d + '/offsets.npy')\n\
         assert o.dtype == np.int64 and o[0] == 0 and o[-1] == v.shape[0]\n\
         seqs = [v[o[i]:o[i + 1]].tolist() for i in range(len(o) - 1)]\n\
         assert seqs == [[i * 10 + j for j in range(i % 7)] for i in range(30)]\n\
         print(len(seqs), v.dtype)",
        &[dir.path().to_str().unwrap()],
    );
    assert_eq!(out.trim(), "30 uint16");
}
