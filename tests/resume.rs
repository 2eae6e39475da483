//! Cursors and exactly-once appends on the real file system: the cursor
//! survives a crash (drop without close) and a clean close (the `.npy` stays
//! a plain file numpy loads, the cursor in `<file>.cursor`); `append_at`
//! skips rows the file holds, counts pending rows, compares on request and
//! refuses gaps.

mod support;

use std::time::Duration;

use npy_append::{
    AppendOptions, Appender, Error, LockWait, MAX_CURSOR_LEN, cursor_path, journal_path,
};

/// Another test's child process may hold a copy of a descriptor (and its
/// lock) between its fork and its exec: reopening waits for it.
fn wait() -> LockWait {
    LockWait::Wait(Duration::from_secs(10))
}

fn opts() -> AppendOptions {
    AppendOptions::new()
        .dtype("<u4")
        .unwrap()
        .row_shape(&[2])
        .lock_wait(wait())
}

/// The plain way to reopen an existing file (dtype and shape from it).
fn reopen(path: &std::path::Path) -> npy_append::Result<Appender> {
    AppendOptions::new().lock_wait(wait()).open(path)
}

fn rows(range: std::ops::Range<u32>) -> Vec<u32> {
    range.flat_map(|i| [i, i * 10]).collect()
}

#[test]
fn cursor_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = opts().open(&path).unwrap();
    assert_eq!(w.cursor(), b"");
    w.append(&rows(0..3)).unwrap();
    assert_eq!(w.commit_with_cursor(b"line=3").unwrap(), 3);
    assert_eq!(w.cursor(), b"line=3");
    w.append(&rows(3..5)).unwrap();
    w.commit().unwrap(); // keeps the cursor
    w.append(&rows(5..9)).unwrap(); // never committed
    drop(w);
    let w = reopen(&path).unwrap();
    assert_eq!(w.len(), 5);
    assert_eq!(w.cursor(), b"line=3");
}

#[test]
fn cursor_only_commit_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = opts().open(&path).unwrap();
    w.append(&rows(0..2)).unwrap();
    w.commit_with_cursor(b"first").unwrap();
    assert_eq!(w.commit_with_cursor(b"second, no rows").unwrap(), 2);
    drop(w);
    let w = reopen(&path).unwrap();
    assert_eq!((w.len(), w.cursor()), (2, &b"second, no rows"[..]));
}

#[test]
fn cursor_of_a_new_file_needs_a_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = reopen(&path).unwrap();
    assert!(matches!(
        w.commit_with_cursor(b"x"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(!path.exists());
    // With the dtype, a cursor alone creates the file.
    let mut w = opts().open(&path).unwrap();
    w.commit_with_cursor(b"start").unwrap();
    w.close().unwrap();
    assert_eq!(opts().open(&path).unwrap().cursor(), b"start");
}

#[test]
fn cursor_survives_a_clean_close_and_the_file_stays_plain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = opts().open(&path).unwrap();
    w.append(&rows(0..4)).unwrap();
    w.commit_with_cursor(b"offset 4").unwrap();
    assert_eq!(w.close().unwrap(), 4);
    assert!(!journal_path(&path).exists());
    assert!(cursor_path(&path).exists());

    if let Some(py) =
        support::require_numpy("cursor_survives_a_clean_close_and_the_file_stays_plain")
    {
        let out = support::run_python(
            &py,
            "import sys, numpy as np; a = np.load(sys.argv[1]); print(a.shape, a.dtype, a[3].tolist())",
            &[path.to_str().unwrap()],
        );
        assert_eq!(out.trim(), "(4, 2) uint32 [3, 30]");
    }

    let w = reopen(&path).unwrap();
    assert_eq!(w.cursor(), b"offset 4");
    // The new journal holds it now; the sidecar is gone.
    assert!(!cursor_path(&path).exists());
    drop(w);
    let mut w = reopen(&path).unwrap();
    assert_eq!(w.cursor(), b"offset 4");
    w.append(&rows(4..5)).unwrap();
    w.commit().unwrap();
    w.close().unwrap();
    let w = reopen(&path).unwrap();
    assert_eq!((w.len(), w.cursor()), (5, &b"offset 4"[..]));
}

#[test]
fn empty_cursor_leaves_no_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = opts().open(&path).unwrap();
    w.append(&rows(0..1)).unwrap();
    w.commit_with_cursor(b"c").unwrap();
    w.commit_with_cursor(b"").unwrap();
    w.close().unwrap();
    assert!(!cursor_path(&path).exists());
    assert_eq!(reopen(&path).unwrap().cursor(), b"");
}

#[test]
fn a_stale_or_damaged_sidecar_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = opts().open(&path).unwrap();
    w.append(&rows(0..2)).unwrap();
    w.commit_with_cursor(b"at 2").unwrap();
    w.close().unwrap();
    let sidecar = std::fs::read(cursor_path(&path)).unwrap();
    // Another program rewrites the file with 3 rows: the cursor of 2 rows
    // no longer describes it.
    let mut w = opts().open(&path).unwrap();
    w.append(&rows(2..3)).unwrap();
    w.close().unwrap();
    std::fs::write(cursor_path(&path), &sidecar).unwrap();
    assert_eq!(reopen(&path).unwrap().cursor(), b"");
    // A damaged sidecar is ignored too.
    let mut bad = sidecar.clone();
    *bad.last_mut().unwrap() ^= 1;
    std::fs::write(cursor_path(&path), &bad).unwrap();
    assert_eq!(reopen(&path).unwrap().cursor(), b"");
    assert!(!cursor_path(&path).exists());
}

#[test]
fn a_sidecar_of_a_removed_file_is_not_taken_by_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = opts().open(&path).unwrap();
    w.commit_with_cursor(b"old").unwrap();
    w.close().unwrap();
    std::fs::remove_file(&path).unwrap();
    let w = opts().open(&path).unwrap();
    assert_eq!(w.cursor(), b"");
    drop(w);
    assert_eq!(reopen(&path).unwrap().cursor(), b"");
}

#[test]
fn cursor_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    assert_eq!(MAX_CURSOR_LEN, 8128);
    let mut w = opts().open(&path).unwrap();
    let big: Vec<u8> = (0..MAX_CURSOR_LEN).map(|i| (i % 251) as u8).collect();
    w.append(&rows(0..1)).unwrap();
    assert!(matches!(
        w.commit_with_cursor(&[0; MAX_CURSOR_LEN + 1]),
        Err(Error::CursorTooLong {
            len: 8129,
            max: 8128
        })
    ));
    // Refused before anything happened: not poisoned, the row still pending.
    assert!(!w.is_poisoned());
    assert_eq!(w.pending_rows(), 1);
    w.commit_with_cursor(&big).unwrap();
    drop(w);
    let w = reopen(&path).unwrap();
    assert_eq!(w.cursor(), &big[..]);
    w.close().unwrap();
    assert_eq!(reopen(&path).unwrap().cursor(), &big[..]);
}

#[test]
fn append_at_skips_committed_and_pending_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = opts().open(&path).unwrap();
    assert_eq!(w.append_at(0, &rows(0..5)).unwrap(), 5);
    w.commit().unwrap();
    // A restart from an older checkpoint: rows 2..8 given, 2..5 held.
    assert_eq!(w.append_at(2, &rows(2..8)).unwrap(), 3);
    assert_eq!((w.len(), w.pending_rows()), (5, 3));
    // Pending rows count as held.
    assert_eq!(w.append_at(6, &rows(6..10)).unwrap(), 2);
    // Entirely held: nothing appended.
    assert_eq!(w.append_at(0, &rows(0..4)).unwrap(), 0);
    w.commit().unwrap();
    let w2 = npy_append::Reader::open(&path).unwrap();
    assert_eq!(w2.as_slice::<u32>().unwrap(), &rows(0..10)[..]);
    // A gap is refused and changes nothing.
    match w.append_at(11, &rows(11..12)) {
        Err(Error::Gap {
            start_row: 11,
            len: 10,
            ..
        }) => {}
        other => panic!("expected a gap error, got {other:?}"),
    }
    assert!(!w.is_poisoned());
    assert_eq!(w.pending_rows(), 0);
    // Raw bytes too.
    let bytes: Vec<u8> = rows(9..11).iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(w.append_bytes_at(9, &bytes).unwrap(), 1);
    assert!(matches!(
        w.append_bytes_at(20, &bytes),
        Err(Error::Gap { .. })
    ));
    assert_eq!(w.close().unwrap(), 11);
}

#[test]
fn append_at_on_a_new_file_starts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = AppendOptions::new().lock_wait(wait()).open(&path).unwrap();
    assert!(matches!(w.append_at(1, &[1u8]), Err(Error::Gap { .. })));
    assert!(!path.exists());
    assert_eq!(w.append_at(0, &[1u8, 2]).unwrap(), 2);
    assert_eq!(w.close().unwrap(), 2);
}

#[test]
fn append_at_compares_skipped_rows_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = opts().compare_overlap(true).open(&path).unwrap();
    w.append_at(0, &rows(0..4)).unwrap();
    w.commit().unwrap();
    w.append_at(4, &rows(4..6)).unwrap(); // pending, compared too
    assert_eq!(w.append_at(1, &rows(1..8)).unwrap(), 2);
    let mut changed = rows(3..9);
    changed[2 * 2 + 1] = 999; // row 5 (pending when compared)
    match w.append_at(3, &changed) {
        Err(Error::DataDiffers { row: 5, .. }) => {}
        other => panic!("expected DataDiffers at row 5, got {other:?}"),
    }
    let mut changed = rows(0..9);
    changed[2] = 7; // row 1, committed
    match w.append_at(0, &changed) {
        Err(Error::DataDiffers { row: 1, .. }) => {}
        other => panic!("expected DataDiffers at row 1, got {other:?}"),
    }
    assert!(!w.is_poisoned());
    assert_eq!(w.close().unwrap(), 8);
    // Without the option the skipped rows are not compared.
    let mut w = opts().open(&path).unwrap();
    assert_eq!(w.append_at(0, &[0u32; 18]).unwrap(), 1);
    assert_eq!(w.close().unwrap(), 9);
}

#[test]
fn append_at_after_a_crash_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    // A builder checkpoints its input position in the cursor every 3 rows.
    let input = rows(0..20);
    let mut w = opts().open(&path).unwrap();
    for start in (0..9u32).step_by(3) {
        let at = start as usize * 2;
        w.append_at(u64::from(start), &input[at..at + 6]).unwrap();
        w.commit_with_cursor((start + 3).to_string().as_bytes())
            .unwrap();
    }
    w.append_at(9, &input[18..24]).unwrap();
    drop(w); // crash: rows 9..12 not committed
    let mut w = reopen(&path).unwrap();
    assert_eq!(w.len(), 9);
    let resume: u64 = std::str::from_utf8(w.cursor()).unwrap().parse().unwrap();
    // Restart from an even older checkpoint: nothing is duplicated.
    let from = resume - 6;
    w.append_at(from, &input[from as usize * 2..]).unwrap();
    w.close().unwrap();
    let r = npy_append::Reader::open(&path).unwrap();
    assert_eq!(r.as_slice::<u32>().unwrap(), &input[..]);
}
