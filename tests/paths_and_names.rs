//! Paths on the real file system: symbolic links, files removed or replaced
//! under a live writer, names too long for the sidecar files, a read-only
//! directory. The sidecars always sit beside the file itself, a writer never
//! acknowledges rows no path leads to, and a refused operation changes
//! nothing.
//!
//! Rows are `<u8`, 8 wide, row i = `i * 8 + [0..7]`.

mod support;

use std::os::unix::fs::symlink;
use std::path::Path;

use npy_append::format::header;
use npy_append::{
    AppendOptions, Appender, Durability, Error, FileState, FileStatus, Reader, journal_path,
};

const ROW: u64 = 8;

fn rows(range: std::ops::Range<u64>) -> Vec<u64> {
    range
        .flat_map(|i| (0..ROW).map(move |j| i * ROW + j))
        .collect()
}

fn options() -> AppendOptions {
    AppendOptions::new().dtype("<u8").unwrap().row_shape(&[ROW])
}

/// Appends rows `range` in one commit and closes.
fn write(path: &Path, range: std::ops::Range<u64>) -> u64 {
    let mut w = options().open(path).unwrap();
    w.append(&rows(range)).unwrap();
    w.close().unwrap()
}

/// The rows numpy would read from the file: the header's count, and the
/// values after it.
fn contents(path: &Path) -> (u64, Vec<u64>) {
    let bytes = std::fs::read(path).unwrap();
    let parsed = header::parse(&bytes).unwrap();
    let values = bytes[parsed.header_len as usize..]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (parsed.shape[0], values)
}

/// The bytes `np.save` writes for `n` rows of `value`.
fn saved(n: u64, value: u64) -> Vec<u8> {
    support::np_saved_u8(n, ROW, value)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_dangling_symlink_creates_its_target_with_the_journal_beside_it() {
    let dir = tmp();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::create_dir(dir.path().join("links")).unwrap();
    let target = dir.path().join("data/t.npy");
    let link = dir.path().join("links/l.npy");
    symlink(&target, &link).unwrap();

    let mut w = options().open(&link).unwrap();
    assert_eq!(w.path(), target, "the writer names the file itself");
    w.append(&rows(0..10)).unwrap();
    w.commit().unwrap();
    assert!(journal_path(&target).exists());
    assert!(!journal_path(&link).exists(), "no journal beside the link");
    assert_eq!(w.close().unwrap(), 10);
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());

    // The sequence that cut a file written through its other path: every
    // path now shares the one journal, and nothing is lost.
    assert_eq!(write(&target, 10..1010), 1010);
    let outcome = AppendOptions::new().recover(&link).unwrap();
    assert_eq!(outcome.report.committed_rows, 1010);
    assert_eq!(contents(&target), (1010, rows(0..1010)));
}

#[test]
fn a_live_symlink_and_the_file_share_one_journal() {
    for durability in [Durability::Process, Durability::Fsync] {
        let dir = tmp();
        let target = dir.path().join("t.npy");
        let link = dir.path().join("l.npy");
        symlink("t.npy", &link).unwrap(); // relative, resolved from the link's directory
        let mut w = options().durability(durability).open(&link).unwrap();
        w.append(&rows(0..3010)).unwrap();
        w.commit().unwrap();
        drop(w); // killed

        let status = FileStatus::read(&target).unwrap();
        assert_eq!(status.state, FileState::NeedsRecovery, "{durability:?}");
        // A writer while the journal is there: through the file itself.
        let mut w = options().durability(durability).open(&target).unwrap();
        assert_eq!(w.len(), 3010);
        w.append(&rows(3010..5010)).unwrap();
        assert_eq!(w.commit().unwrap(), 5010);
        drop(w); // killed again

        // Reopening through the link keeps every acknowledged row.
        let w = options().durability(durability).open(&link).unwrap();
        assert_eq!(w.len(), 5010, "{durability:?}");
        w.close().unwrap();
        assert_eq!(contents(&target), (5010, rows(0..5010)));
        // Readers and the status follow the link too.
        assert_eq!(Reader::open(&link).unwrap().len(), 5010);
        assert_eq!(FileStatus::read(&link).unwrap().path, target);
    }
}

#[test]
fn a_loop_of_symlinks_is_a_clear_error() {
    let dir = tmp();
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    symlink(&b, &a).unwrap();
    symlink(&a, &b).unwrap();
    let err = options().open(&a).err().expect("a loop cannot be opened");
    assert!(
        matches!(err, Error::InvalidArgument { .. }) && err.to_string().contains("symbolic links"),
        "{err}"
    );
    assert!(!journal_path(&a).exists() && !journal_path(&b).exists());
}

#[test]
fn a_writer_notices_its_file_removed() {
    let dir = tmp();
    let path = dir.path().join("f.npy");
    let mut w = options().open(&path).unwrap();
    w.append(&rows(0..1000)).unwrap();
    w.commit().unwrap();
    std::fs::remove_file(&path).unwrap();
    w.append(&rows(1000..2000)).unwrap();
    let err = w.commit().unwrap_err();
    assert!(matches!(err, Error::Replaced { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("the file was removed by another program")
            && message.contains("not acknowledged"),
        "{message}"
    );
    assert!(matches!(w.close(), Err(Error::Poisoned { .. })));
    assert!(!path.exists(), "nothing was created at the path");
    // Its journal described the removed file: it is gone with it, and the
    // path starts afresh.
    assert!(!journal_path(&path).exists());
    assert_eq!(write(&path, 0..5), 5);
}

#[test]
fn a_writer_notices_a_file_renamed_over_its_own() {
    for at_close in [false, true] {
        let dir = tmp();
        let path = dir.path().join("f.npy");
        let mut w = options().open(&path).unwrap();
        w.append(&rows(0..1000)).unwrap();
        w.commit().unwrap();
        let other = dir.path().join("other.npy");
        std::fs::write(&other, saved(500, 42)).unwrap();
        std::fs::rename(&other, &path).unwrap();
        let err = if at_close {
            w.close().unwrap_err()
        } else {
            w.append(&rows(1000..2000)).unwrap();
            w.commit().unwrap_err()
        };
        assert!(
            matches!(err, Error::Replaced { .. })
                && err
                    .to_string()
                    .contains("another file was moved or saved over the file"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), saved(500, 42));
        // The file now at the path is taken as it is.
        assert!(!journal_path(&path).exists());
        let w = Appender::open_or_recover(&path).unwrap();
        assert_eq!(w.len(), 500);
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), saved(500, 42));
    }
}

#[test]
fn a_journal_removed_under_a_live_writer_is_reported_as_such() {
    // At an Fsync commit: the writer stops, the file holds the committed
    // rows. (Process commits leave the journal's check to close.)
    let dir = tmp();
    let path = dir.path().join("f.npy");
    let mut w = options().durability(Durability::Fsync).open(&path).unwrap();
    w.append(&rows(0..1000)).unwrap();
    w.commit().unwrap();
    std::fs::remove_file(journal_path(&path)).unwrap();
    w.append(&rows(1000..2000)).unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(err, Error::Replaced { .. })
            && err.to_string().contains("its journal was removed")
            && err.to_string().contains("reopen"),
        "{err}"
    );
    drop(w);
    let w = Appender::open_or_recover(&path).unwrap();
    assert_eq!(w.len(), 2000);
    w.close().unwrap();

    // At close: the file is complete, and the message says so; a file
    // another program put where the journal was is not removed.
    for (replaced, durability) in [
        (false, Durability::Fsync),
        (true, Durability::Fsync),
        (false, Durability::Process),
    ] {
        let dir = tmp();
        let path = dir.path().join("f.npy");
        let mut w = options().durability(durability).open(&path).unwrap();
        w.append(&rows(0..1000)).unwrap();
        w.commit().unwrap();
        let journal = journal_path(&path);
        std::fs::remove_file(&journal).unwrap();
        if replaced {
            std::fs::write(&journal, b"someone else's file").unwrap();
        }
        let mut n = 1000;
        if durability == Durability::Process {
            w.append(&rows(1000..1010)).unwrap();
            n = w.commit().unwrap();
        }
        let err = w.close().unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::Replaced { .. })
                && message.contains("is closed all the same")
                && message.contains(&format!("{n} committed rows")),
            "{message}"
        );
        assert_eq!(contents(&path), (n, rows(0..n)));
        if replaced {
            assert_eq!(std::fs::read(&journal).unwrap(), b"someone else's file");
        }
    }
}

#[test]
fn names_too_long_for_the_journal_are_readable_but_not_appendable() {
    let dir = tmp();
    // 250 bytes: "<name>.journal" would be 258.
    let long = dir.path().join(format!("{}.npy", "x".repeat(246)));
    std::fs::write(&long, saved(3, 7)).unwrap();
    let before = std::fs::read(&long).unwrap();
    let err = options().open(&long).err().expect("no journal can exist");
    let message = err.to_string();
    assert!(
        matches!(err, Error::Unsupported { .. }) && message.contains("too long for its sidecar"),
        "{message}"
    );
    assert!(matches!(
        AppendOptions::new().recover(&long),
        Err(Error::Unsupported { .. })
    ));
    let status = FileStatus::read(&long).unwrap();
    assert_eq!(status.state, FileState::Unsupported);
    assert!(
        status
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("too long")),
        "{status:?}"
    );
    assert_eq!(Reader::open(&long).unwrap().len(), 3);
    assert_eq!(std::fs::read(&long).unwrap(), before);

    // 245 bytes: the journal fits, a group marker would not (and so
    // cannot exist): appending works.
    let fits = dir.path().join(format!("{}.npy", "y".repeat(241)));
    assert_eq!(write(&fits, 0..10), 10);
    assert_eq!(FileStatus::read(&fits).unwrap().state, FileState::Clean);
    assert_eq!(contents(&fits), (10, rows(0..10)));
}
