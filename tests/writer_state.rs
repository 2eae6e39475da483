//! Readers tell an active writer from one that finished cleanly and from one
//! that died, and `wait_for_rows` returns early or fails accordingly; a
//! reader probing a writer's lock never makes a writer's open fail.
//!
//! Dropping a writer without `close` releases its locks as a killed
//! process's are released, and leaves its files as a crash would: the
//! tests use it as the death of a writer (the Python suite kills writer
//! processes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use npy_append::dataset::{self, Batch, Column, DatasetReader};
use npy_append::storage::{Backend, FsBackend, OpenMode, Storage};
use npy_append::{
    AppendOptions, Error, GroupOptions, GroupReader, LockWait, MemberSpec, RaggedOptions,
    RaggedReader, Reader, WriterState,
};

const LONG: Duration = Duration::from_secs(30);

fn f32_options() -> AppendOptions {
    AppendOptions::new().dtype("<f4").unwrap()
}

#[test]
fn a_single_file_is_active_then_finished_or_died() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut w = f32_options().open(&path).unwrap();
    w.append(&[1.0f32, 2.0]).unwrap();
    w.commit().unwrap();
    let mut r = Reader::open(&path).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    w.close().unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
    // Finished without the rows: the wait returns at once.
    let start = Instant::now();
    assert!(!r.wait_for_rows(3, LONG).unwrap());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.len(), 2);
    assert!(r.wait_for_rows(2, LONG).unwrap());

    // A writer that dies (dropped: its lock released as by a kill).
    let mut w = AppendOptions::new().open(&path).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    w.append(&[3.0f32]).unwrap();
    w.commit().unwrap();
    w.append(&[4.0f32]).unwrap();
    drop(w);
    assert_eq!(r.writer_state().unwrap(), WriterState::Died);
    let start = Instant::now();
    match r.wait_for_rows(4, LONG) {
        Err(Error::WriterDied { shown, wanted, .. }) => assert_eq!((shown, wanted), (3, 4)),
        other => panic!("expected WriterDied, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    // The committed row arrived before the death was reported.
    assert_eq!(r.len(), 3);
    // A new writer recovers it: active again, then finished.
    let w = AppendOptions::new().open(&path).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    w.close().unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
}

#[test]
fn a_file_no_writer_of_ours_opened_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numpy.npy");
    let dtype = npy_append::Dtype::parse("<u2").unwrap();
    let mut bytes = npy_append::format::header::build(&dtype, false, &[2]).unwrap();
    bytes.extend([1, 0, 2, 0]);
    std::fs::write(&path, bytes).unwrap();
    let mut r = Reader::open(&path).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
    assert!(!r.wait_for_rows(3, LONG).unwrap());
    // A journal whose identity was never completed (its writer died
    // creating it) carries no commit: still finished.
    std::fs::write(npy_append::journal_path(&path), b"").unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
}

#[test]
fn wait_for_rows_sees_rows_a_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.npy");
    let mut w = f32_options().open(&path).unwrap();
    let mut r = Reader::open(&path).unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..5 {
            std::thread::sleep(Duration::from_millis(20));
            w.append(&[i as f32]).unwrap();
            w.commit().unwrap();
        }
        w.close().unwrap();
    });
    assert!(r.wait_for_rows(5, LONG).unwrap());
    writer.join().unwrap();
    assert!(!r.wait_for_rows(6, LONG).unwrap());
}

fn group_options() -> GroupOptions {
    GroupOptions::new()
        .member(MemberSpec::of::<u32>("a.npy", &[]))
        .member(MemberSpec::of::<f32>("b.npy", &[2]))
}

#[test]
fn a_group_is_active_then_finished_or_died() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.group");
    let mut g = group_options().open(&path).unwrap();
    let mut r = GroupReader::open(&path).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    let writer = std::thread::spawn(move || {
        for i in 0..4u32 {
            std::thread::sleep(Duration::from_millis(20));
            g.append::<u32>(0, &[i]).unwrap();
            g.append::<f32>(1, &[0.0, 1.0]).unwrap();
            g.commit().unwrap();
        }
        g.close().unwrap();
    });
    assert!(r.wait_for_rows(1, 4, LONG).unwrap());
    assert_eq!(r.rows(1), 4);
    writer.join().unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
    let start = Instant::now();
    assert!(!r.wait_for_rows(0, 5, LONG).unwrap());
    assert!(start.elapsed() < Duration::from_secs(5));

    // Reopened and dropped without a change: still as the close left it.
    let g = GroupOptions::new().open(&path).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    drop(g);
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);

    // Reopened, rows appended (past the buffer, so they reach the file),
    // dropped: died, and recovery would cut them.
    let mut g = GroupOptions::new().buffer_bytes(1).open(&path).unwrap();
    g.append::<u32>(0, &[9, 9]).unwrap();
    drop(g);
    assert_eq!(r.writer_state().unwrap(), WriterState::Died);
    match r.wait_for_rows(0, 5, LONG) {
        Err(Error::WriterDied { shown: 4, .. }) => {}
        other => panic!("expected WriterDied, got {other:?}"),
    }
    // Recovery, then a clean close: finished with the 4 committed rows.
    let g = GroupOptions::new().open(&path).unwrap();
    assert_eq!(g.bytes_cut(), 8);
    assert_eq!(g.close().unwrap(), vec![4, 4]);
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);

    // Dropped after a commit, without close: died.
    let mut g = GroupOptions::new().open(&path).unwrap();
    g.commit_with_cursor(b"c").unwrap();
    drop(g);
    assert_eq!(r.writer_state().unwrap(), WriterState::Died);
}

#[test]
fn a_group_whose_creation_died_is_died() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.group");
    group_options().open(&path).unwrap().close().unwrap();
    let r = GroupReader::open(&path).unwrap();
    // As if the creating writer died before creating its first member: a
    // reader opened on the journal alone.
    std::fs::remove_file(dir.path().join("a.npy")).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Died);
    // A writer holding the journal (creating the members) is active.
    let journal = FsBackend.open(&path, OpenMode::ReadWrite).unwrap();
    assert!(journal.try_lock().unwrap());
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    drop(journal);
    // The next writer completes the creation.
    group_options().open(&path).unwrap().close().unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
}

#[test]
fn a_ragged_array_waits_and_tells_its_writer_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.group");
    let mut w = RaggedOptions::of::<u16>(&[]).open(&path).unwrap();
    let mut r = RaggedReader::open(&path).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    let writer = std::thread::spawn(move || {
        for i in 0..3u16 {
            std::thread::sleep(Duration::from_millis(20));
            w.append(&[i, i]).unwrap();
            w.commit().unwrap();
        }
        w
    });
    assert!(r.wait_for_rows(3, LONG).unwrap());
    assert_eq!(r.get::<u16>(2).unwrap(), &[2, 2]);
    let w = writer.join().unwrap();
    drop(w);
    assert!(matches!(
        r.wait_for_rows(4, LONG),
        Err(Error::WriterDied { shown: 3, .. })
    ));
    RaggedOptions::of::<u16>(&[])
        .open(&path)
        .unwrap()
        .close()
        .unwrap();
    assert!(!r.wait_for_rows(4, LONG).unwrap());
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
}

#[test]
fn a_dataset_is_finished_once_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    let columns = [Column::of::<u64>("id", &[])];
    let mut w = dataset::open_shard(&root, "s0", Some(&columns)).unwrap();
    w.append(&Batch::new().column("id", &[1u64, 2])).unwrap();
    w.commit().unwrap();
    let mut r = DatasetReader::open(&root).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    assert_eq!(r.shard_states().unwrap(), vec![WriterState::Active]);
    drop(w);
    assert_eq!(r.writer_state().unwrap(), WriterState::Died);
    assert!(matches!(
        r.wait_for_rows(3, LONG),
        Err(Error::WriterDied { shown: 2, .. })
    ));
    let w = dataset::open_shard(&root, "s0", None).unwrap();
    assert_eq!(w.finish().unwrap(), 2);
    r.refresh().unwrap();
    assert_eq!(r.shard_states().unwrap(), vec![WriterState::Finished]);
    // Complete but not finalized: more shards may come.
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    assert!(!r.wait_for_rows(3, Duration::from_millis(50)).unwrap());
    dataset::finalize(&root).unwrap();
    let start = Instant::now();
    assert!(!r.wait_for_rows(3, LONG).unwrap());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(r.from_manifest());
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
}

type Probing = (
    Arc<AtomicBool>,
    Arc<AtomicU64>,
    Vec<std::thread::JoinHandle<()>>,
);

/// A thread's own prober: a reader's `writer_state` (which probes the
/// writer's locks), `None` while there is nothing to read.
type Prober = Box<dyn FnMut() -> Option<WriterState> + Send>;

/// Threads each asking its own prober as fast as they can until stopped;
/// counts the answers.
fn probers(threads: usize, make: fn(PathBuf) -> Prober, path: &Path) -> Probing {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let handles = (0..threads)
        .map(|_| {
            let (stop, count) = (stop.clone(), count.clone());
            let mut state = make(path.to_path_buf());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if state().is_some() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    (stop, count, handles)
}

fn stop(probing: Probing) -> u64 {
    probing.0.store(true, Ordering::Relaxed);
    for h in probing.2 {
        h.join().unwrap();
    }
    probing.1.load(Ordering::Relaxed)
}

/// Runs `open(round)` `rounds` times while three readers of `path` ask for
/// the writer's state as fast as they can; every open must succeed (they
/// all use `LockWait::Fail`).
fn open_under_probes(
    make: fn(PathBuf) -> Prober,
    path: &Path,
    rounds: usize,
    mut open: impl FnMut(usize),
) -> u64 {
    let probing = probers(3, make, path);
    for round in 0..rounds {
        open(round);
    }
    stop(probing)
}

/// A reader of the file at `path`, reopened now and then (the writers
/// remove and create the file).
fn file_prober(path: PathBuf) -> Prober {
    let mut reader: Option<(Reader, u32)> = None;
    Box::new(move || {
        if reader.as_ref().is_none_or(|(_, n)| *n > 50) {
            reader = Reader::open(&path).ok().map(|r| (r, 0));
        }
        let (r, n) = reader.as_mut()?;
        *n += 1;
        r.writer_state().ok()
    })
}

/// A reader of the group at `path`, reopened now and then.
fn group_prober(path: PathBuf) -> Prober {
    let mut reader: Option<(GroupReader, u32)> = None;
    Box::new(move || {
        if reader.as_ref().is_none_or(|(_, n)| *n > 50) {
            reader = GroupReader::open(&path).ok().map(|r| (r, 0));
        }
        let (r, n) = reader.as_mut()?;
        *n += 1;
        r.writer_state().ok()
    })
}

fn rounds() -> usize {
    std::env::var("NPY_APPEND_PROBE_ROUNDS").map_or(300, |s| s.parse().unwrap())
}

#[test]
fn probing_readers_never_make_a_single_file_writer_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.npy");
    let journal = npy_append::journal_path(&path);
    let opts = || f32_options().lock_wait(LockWait::Fail);
    let probes = open_under_probes(file_prober, &path, rounds(), |round| {
        let fail = |what: &str, e: Error| panic!("round {round}, {what}: {e}");
        match round % 4 {
            // A new file (its journal created, then the .npy).
            0 => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(&journal);
                let mut w = opts().open(&path).unwrap_or_else(|e| fail("new file", e));
                w.append(&[1.0f32]).unwrap();
                w.commit().unwrap();
                drop(w); // crashed: the next round recovers it
            }
            // A crashed file: its journal taken over.
            1 => {
                let mut w = opts()
                    .open(&path)
                    .unwrap_or_else(|e| fail("crashed file", e));
                w.append(&[2.0f32]).unwrap();
                w.close().unwrap();
            }
            // A clean file: a journal created beside it.
            2 => {
                let w = opts().open(&path).unwrap_or_else(|e| fail("clean file", e));
                w.close().unwrap();
            }
            // A crashed creation: only the journal exists.
            _ => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(&journal);
                let w = opts().open(&path).unwrap_or_else(|e| fail("new file", e));
                drop(w);
                std::fs::remove_file(&path).unwrap();
                let w = AppendOptions::new()
                    .lock_wait(LockWait::Fail)
                    .open(&path)
                    .unwrap_or_else(|e| fail("crashed creation", e));
                w.close().unwrap();
                let _ = std::fs::remove_file(&path);
            }
        }
    });
    assert!(probes > 1000, "only {probes} probes ran");
}

#[test]
fn probing_readers_never_make_a_group_writer_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.group");
    let member = |name: &str| dir.path().join(name);
    let probes = open_under_probes(group_prober, &path, rounds(), |round| {
        let fail = |what: &str, e: Error| panic!("round {round}, {what}: {e}");
        if round % 3 == 0 {
            for name in [
                "g.group",
                "a.npy",
                "b.npy",
                "a.npy.group-member",
                "b.npy.group-member",
            ] {
                let _ = std::fs::remove_file(member(name));
            }
        }
        let mut g = group_options()
            .lock_wait(LockWait::Fail)
            .open(&path)
            .unwrap_or_else(|e| fail("group", e));
        g.append::<u32>(0, &[1]).unwrap();
        g.commit().unwrap();
        if round % 2 == 0 {
            g.close().unwrap();
        }
    });
    assert!(probes > 1000, "only {probes} probes ran");
}

#[test]
fn a_second_writer_is_still_locked_out_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let _w = f32_options().open(&path).unwrap();
    let start = Instant::now();
    assert!(matches!(
        AppendOptions::new().open(&path),
        Err(Error::Locked { .. })
    ));
    let group = dir.path().join("g.group");
    let _g = group_options().open(&group).unwrap();
    assert!(matches!(
        GroupOptions::new().open(&group),
        Err(Error::Locked { .. })
    ));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn the_memory_backend_tells_a_group_writer_state() {
    // A closed group reads as finished; reopened and dropped without a
    // change, still as finished.
    let mem = npy_append::storage::MemBackend::new();
    let path = Path::new("/mem/g.group");
    let g = group_options().open_with(mem.clone(), path).unwrap();
    let r = GroupReader::open_with(mem.clone(), path).unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Active);
    g.close().unwrap();
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
    let g = GroupOptions::new().open_with(mem, path).unwrap();
    drop(g);
    assert_eq!(r.writer_state().unwrap(), WriterState::Finished);
}
