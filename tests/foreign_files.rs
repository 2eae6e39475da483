//! Files that other programs wrote, rewrote or replaced, on the real file
//! system: recovery cuts only rows it can show are its own, and removes only
//! journals it can show are its own.
//!
//! Rows are `<u8`, 8 wide, row i = `i * 8 + [0..7]`. "Another program" is a
//! plain write of a numpy-style file over the path (in place, as `np.save`
//! does), or a rename over it.

mod support;

use std::path::{Path, PathBuf};

use npy_append::{AppendOptions, Appender, Durability, Error, journal_path};

const ROW: u64 = 8;

fn rows(range: std::ops::Range<u64>) -> Vec<u64> {
    range
        .flat_map(|i| (0..ROW).map(move |j| i * ROW + j))
        .collect()
}

fn options(durability: Durability) -> AppendOptions {
    AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[ROW])
        .durability(durability)
}

/// The bytes `np.save` writes for `n` rows of `value`.
fn saved(n: u64, value: u64) -> Vec<u8> {
    support::np_saved_u8(n, ROW, value)
}

/// A writer that committed `commits` times 1000 rows and was then killed
/// (dropped: the effect of `kill -9`), its journal left beside the file.
fn killed_writer(path: &Path, durability: Durability, commits: u64) {
    let mut w = options(durability).open(path).unwrap();
    for c in 0..commits {
        w.append(&rows(c * 1000..(c + 1) * 1000)).unwrap();
        w.commit().unwrap();
    }
    drop(w);
    assert!(journal_path(path).exists());
}

/// Both files' bytes, for "nothing was changed".
fn snapshot(path: &Path) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (
        std::fs::read(path).ok(),
        std::fs::read(journal_path(path)).ok(),
    )
}

fn refused(path: &Path) -> Error {
    AppendOptions::new()
        .open(path)
        .err()
        .expect("recovery must refuse")
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_file_saved_over_a_crashed_writers_file_is_left_alone() {
    for durability in [Durability::Process, Durability::Fsync] {
        for saved_rows in [500, 3000, 5000] {
            let dir = tmp();
            let path = dir.path().join("f.npy");
            killed_writer(&path, durability, 3);
            std::fs::write(&path, saved(saved_rows, 42)).unwrap();
            let before = snapshot(&path);
            let err = refused(&path);
            // With the journal's own row count, a file whose synced rows
            // differ is reported as such; either way nothing changes and
            // the message names the way out.
            assert!(
                matches!(
                    err,
                    Error::JournalDisagrees { .. } | Error::ChecksumMismatch { .. }
                ),
                "{durability:?}, {saved_rows} rows: {err}"
            );
            assert!(err.to_string().contains("accept_loss"), "{err}");
            assert!(
                snapshot(&path) == before,
                "{durability:?}, {saved_rows}: changed"
            );
            // The saved file is what a reader sees, whole.
            let r = npy_append::Reader::open(&path);
            drop(r);
            // Accepting the loss, the journal wins: its last commit the
            // file still holds (none of these rows are the writer's), and
            // every row the saved header claimed past it is reported.
            let w = options(durability).accept_loss(true).open(&path).unwrap();
            assert_eq!(
                w.len() + w.report().rows_discarded,
                saved_rows,
                "{durability:?}, {saved_rows}: {}",
                w.report()
            );
            assert!(w.len() <= saved_rows);
            drop(w);
        }
    }
}

#[test]
fn a_file_saved_before_the_first_commit_is_left_alone() {
    for durability in [Durability::Process, Durability::Fsync] {
        let dir = tmp();
        let path = dir.path().join("f.npy");
        killed_writer(&path, durability, 0);
        std::fs::write(&path, saved(5000, 7)).unwrap();
        let before = snapshot(&path);
        let err = refused(&path);
        assert!(
            matches!(err, Error::JournalDisagrees { .. }),
            "{durability:?}: {err}"
        );
        assert!(snapshot(&path) == before, "{durability:?}: changed");
    }
}

#[test]
fn a_file_renamed_over_a_live_writers_file_is_left_alone_unless_it_is_a_copy() {
    for durability in [Durability::Process, Durability::Fsync] {
        let dir = tmp();
        let path = dir.path().join("f.npy");
        let other = dir.path().join("other.npy");
        let mut w = options(durability).open(&path).unwrap();
        w.append(&rows(0..1000)).unwrap();
        w.commit().unwrap();
        // Another file is renamed over the path, then the writer dies.
        std::fs::write(&other, saved(1000, 9)).unwrap();
        std::fs::rename(&other, &path).unwrap();
        drop(w);
        let before = snapshot(&path);
        let err = refused(&path);
        assert!(
            matches!(err, Error::JournalDisagrees { .. }),
            "{durability:?}: {err}"
        );
        assert!(err.to_string().contains("inode"), "{err}");
        assert!(snapshot(&path) == before, "{durability:?}: changed");

        // A copy of the writer's own file (a backup restored): recovered.
        let dir = tmp();
        let path = dir.path().join("g.npy");
        killed_writer(&path, durability, 2);
        let copy: PathBuf = dir.path().join("g.copy");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::rename(&copy, &path).unwrap();
        let w = AppendOptions::new().open(&path).unwrap();
        assert_eq!(w.len(), 2000, "{durability:?}");
        assert_eq!(w.close().unwrap(), 2000);
    }
}

#[test]
fn journals_npy_append_did_not_write_are_never_removed() {
    let mut garbage = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..8192 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        garbage.push(x as u8);
    }
    for (what, with_npy, journal) in [
        ("100 random bytes", true, garbage[..100].to_vec()),
        ("8192 random bytes", true, garbage.clone()),
        ("a copy of the .npy", true, saved(10, 1)),
        ("512 random bytes, no .npy", false, garbage[..512].to_vec()),
    ] {
        let dir = tmp();
        let path = dir.path().join("f.npy");
        if with_npy {
            std::fs::write(&path, saved(10, 1)).unwrap();
        }
        std::fs::write(journal_path(&path), &journal).unwrap();
        let before = snapshot(&path);
        let err = refused(&path);
        assert!(matches!(err, Error::ForeignJournal { .. }), "{what}: {err}");
        assert!(snapshot(&path) == before, "{what}: changed");
        // Moved aside on request, never removed.
        let w = AppendOptions::new()
            .move_aside_foreign_journal(true)
            .open(&path)
            .unwrap();
        let aside = w.report().journal_moved_aside.clone().expect("moved aside");
        assert_eq!(std::fs::read(&aside).unwrap(), journal, "{what}");
        drop(w);
    }
}

#[test]
fn a_torn_journal_creation_is_still_removed() {
    let dir = tmp();
    let path = dir.path().join("f.npy");
    std::fs::write(&path, saved(10, 1)).unwrap();
    for journal in [Vec::new(), vec![0u8; 4160], b"NPYAJRNL\x01\x00".to_vec()] {
        std::fs::write(journal_path(&path), &journal).unwrap();
        let w = Appender::open_or_recover(&path).unwrap();
        assert!(w.report().journal_discarded);
        assert_eq!(w.close().unwrap(), 10);
    }
}

#[test]
fn a_failed_open_leaves_no_journal() {
    use npy_append::storage::{MemBackend, MemOp};
    let mem = MemBackend::new();
    let path = Path::new("/m/f.npy");
    mem.put(path, &saved(10, 1));
    // Writing the journal fails (a full disk): nothing is left behind.
    mem.fail_at(MemOp::Write, 1);
    let err = AppendOptions::new().open_with(mem.clone(), path).err();
    assert!(err.is_some());
    mem.clear_failure();
    assert!(mem.contents(&journal_path(path)).is_none(), "journal left");
    assert_eq!(mem.contents(path).unwrap(), saved(10, 1));
    // Creating a new file: the journal's write fails, then the file's.
    for (op, nth) in [(MemOp::Write, 1), (MemOp::Write, 2), (MemOp::Sync, 2)] {
        let mem = MemBackend::new();
        let path = Path::new("/m/new.npy");
        mem.fail_at(op, nth);
        assert!(
            options(Durability::Fsync)
                .open_with(mem.clone(), path)
                .is_err()
        );
        mem.clear_failure();
        assert!(
            mem.contents(&journal_path(path)).is_none(),
            "{op:?} {nth}: journal left"
        );
        assert!(mem.contents(path).is_none(), "{op:?} {nth}: file left");
    }
}
