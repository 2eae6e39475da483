//! Behaviour of the appender and of recovery, written once and run against
//! every storage backend (the real file system and the in-memory one).

use std::path::{Path, PathBuf};
use std::time::Duration;

use npy_append::format::header;
use npy_append::storage::{Backend, FsBackend, MemBackend, MemOp};
use npy_append::{AppendOptions, Durability, Error, Found, GroupCommit, TailPolicy, journal_path};

/// A place to put files, on one backend.
trait Env {
    type B: Backend + Clone;
    fn backend(&self) -> Self::B;
    fn path(&self, name: &str) -> PathBuf;
    fn read(&self, path: &Path) -> Option<Vec<u8>>;
    fn write(&self, path: &Path, bytes: &[u8]);
}

struct Fs(tempfile::TempDir);

impl Env for Fs {
    type B = FsBackend;
    fn backend(&self) -> FsBackend {
        FsBackend
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        std::fs::read(path).ok()
    }
    fn write(&self, path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap();
    }
}

struct Mem(MemBackend);

impl Env for Mem {
    type B = MemBackend;
    fn backend(&self) -> MemBackend {
        self.0.clone()
    }
    fn path(&self, name: &str) -> PathBuf {
        Path::new("/mem").join(name)
    }
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        self.0.contents(path)
    }
    fn write(&self, path: &Path, bytes: &[u8]) {
        // In place, as std::fs::write does to an existing file.
        self.0.overwrite(path, bytes);
    }
}

fn open<E: Env>(env: &E, path: &Path) -> npy_append::Result<npy_append::Appender<E::B>> {
    AppendOptions::new().open_with(env.backend(), path)
}

/// Row `i` of a (N, 4) f32 array.
fn row(i: u64) -> [f32; 4] {
    let base = i as f32;
    [base, base + 0.25, base + 0.5, -base]
}

fn rows(range: std::ops::Range<u64>) -> Vec<f32> {
    range.flat_map(row).collect()
}

fn f32_options() -> AppendOptions {
    AppendOptions::new().row_shape(&[4])
}

/// Parses a file's header and returns (header, data bytes).
fn parse(bytes: &[u8]) -> (header::Header, Vec<u8>) {
    let (_, len) = header::parse_prefix(bytes).unwrap();
    let h = header::parse(&bytes[..len as usize]).unwrap();
    (h, bytes[len as usize..].to_vec())
}

/// Checks the file is exactly `n` committed rows of `row(i)`, header included.
fn assert_rows<E: Env>(env: &E, path: &Path, n: u64) {
    let bytes = env.read(path).expect("file exists");
    let (h, data) = parse(&bytes);
    assert_eq!(h.shape, vec![n, 4], "header shape");
    let want: Vec<u8> = rows(0..n).iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(data.len(), want.len(), "data length");
    assert!(data == want, "row values differ");
}

fn new_file_typed_append_commit_close<E: Env>(env: &E) {
    let path = env.path("a.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    assert_eq!(w.report().found, Found::NoFile);
    assert!(
        env.read(&path).is_none(),
        "nothing is created before the dtype is known"
    );
    w.append(&rows(0..3)).unwrap();
    assert_eq!(w.len(), 0);
    assert_eq!(w.pending_rows(), 3);
    assert_eq!(w.commit().unwrap(), 3);
    assert_rows(env, &path, 3);
    w.append(&rows(3..10)).unwrap();
    assert_eq!(w.close().unwrap(), 10);
    assert_rows(env, &path, 10);
    assert!(
        env.read(&journal_path(&path)).is_none(),
        "close removes the journal"
    );

    let w = open(env, &path).unwrap();
    assert_eq!(w.report().found, Found::Clean);
    assert_eq!(w.len(), 10);
    assert!(!w.report().changed_file());
    assert_eq!(w.row_shape(), &[4]);
}

fn header_never_exceeds_committed_rows<E: Env>(env: &E) {
    let path = env.path("b.npy");
    let mut w = f32_options()
        .buffer_bytes(64)
        .open_with(env.backend(), &path)
        .unwrap();
    w.append(&rows(0..1)).unwrap();
    w.commit().unwrap();
    for step in 1..20u64 {
        w.append(&rows(step * 10..step * 10 + 10)).unwrap();
        // Rows are written (the buffer is tiny) but not committed: the
        // header still says the committed count.
        let (h, _) = parse(&env.read(&path).unwrap());
        assert_eq!(h.shape[0], w.len());
        w.commit().unwrap();
        let (h, _) = parse(&env.read(&path).unwrap());
        assert_eq!(h.shape[0], w.len());
    }
}

fn header_length_is_constant_and_numpy_identical<E: Env>(env: &E) {
    let path = env.path("c.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..1)).unwrap();
    w.commit().unwrap();
    let first = parse(&env.read(&path).unwrap()).0.header_len;
    w.append(&rows(1..1234)).unwrap();
    w.close().unwrap();
    let bytes = env.read(&path).unwrap();
    let (h, _) = parse(&bytes);
    assert_eq!(h.header_len, first);
    let expected = header::build(&h.dtype, false, &[1234, 4]).unwrap();
    assert_eq!(&bytes[..expected.len()], expected.as_slice());
}

fn uncommitted_rows_are_cut_after_drop<E: Env>(env: &E) {
    let path = env.path("d.npy");
    let mut w = f32_options()
        .buffer_bytes(16)
        .open_with(env.backend(), &path)
        .unwrap();
    w.append(&rows(0..5)).unwrap();
    w.commit().unwrap();
    w.append(&rows(5..9)).unwrap();
    drop(w); // like a crash of the process: no I/O
    assert!(
        env.read(&journal_path(&path)).is_some(),
        "drop leaves the journal"
    );
    let len_before = env.read(&path).unwrap().len() as u64;
    let w = open(env, &path).unwrap();
    let report = w.report().clone();
    assert_eq!(report.found, Found::Journal);
    assert_eq!(report.committed_rows, 5);
    assert_eq!(report.bytes_cut, 4 * 16);
    assert_eq!(
        len_before - report.bytes_cut,
        env.read(&path).unwrap().len() as u64
    );
    assert_eq!(w.len(), 5);
    drop(w);
    assert_rows(env, &path, 5);
}

fn recovery_is_idempotent<E: Env>(env: &E) {
    let path = env.path("e.npy");
    let mut w = f32_options()
        .buffer_bytes(16)
        .open_with(env.backend(), &path)
        .unwrap();
    w.append(&rows(0..7)).unwrap();
    w.commit().unwrap();
    w.append(&rows(7..8)).unwrap();
    drop(w);
    drop(open(env, &path).unwrap());
    let once = (
        env.read(&path).unwrap(),
        env.read(&journal_path(&path)).unwrap(),
    );
    let w = open(env, &path).unwrap();
    assert_eq!(w.report().bytes_cut, 0);
    assert!(!w.report().header_rewritten);
    drop(w);
    let twice = (
        env.read(&path).unwrap(),
        env.read(&journal_path(&path)).unwrap(),
    );
    assert!(
        once == twice,
        "a second recovery changed the file or journal"
    );
}

fn resume_appends_after_recovery<E: Env>(env: &E) {
    let path = env.path("f.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..4)).unwrap();
    w.commit().unwrap();
    w.append(&rows(4..6)).unwrap();
    drop(w);
    for round in 0..3u64 {
        let mut w = open(env, &path).unwrap();
        let start = w.len();
        assert_eq!(start, 4 + round * 10);
        w.append(&rows(start..start + 10)).unwrap();
        w.commit().unwrap();
        w.append(&rows(start + 10..start + 11)).unwrap(); // never committed
    }
    let w = open(env, &path).unwrap();
    assert_eq!(w.close().unwrap(), 34);
    assert_rows(env, &path, 34);
}

fn typed_append_checks_dtype_and_shape<E: Env>(env: &E) {
    let path = env.path("g.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..2)).unwrap();
    assert!(matches!(
        w.append(&[1.0f64; 4]),
        Err(Error::DtypeMismatch { .. })
    ));
    assert!(matches!(
        w.append(&[1i32; 4]),
        Err(Error::DtypeMismatch { .. })
    ));
    assert!(matches!(
        w.append(&[1.0f32; 3]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        w.append_bytes(&[0u8; 17]),
        Err(Error::ShapeMismatch { .. })
    ));
    // Argument errors do not poison.
    assert!(!w.is_poisoned());
    w.append_bytes(&[0u8; 16]).unwrap();
    assert_eq!(w.commit().unwrap(), 3);
}

fn raw_append_to_new_file_needs_dtype<E: Env>(env: &E) {
    let path = env.path("h.npy");
    let mut w = open(env, &path).unwrap();
    assert!(matches!(
        w.append_bytes(&[0u8; 8]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(env.read(&path).is_none());
    let mut w = AppendOptions::new()
        .dtype("[('a', '<i4'), ('b', '<f8', (2,))]")
        .unwrap()
        .open_with(env.backend(), &path)
        .unwrap();
    assert_eq!(w.row_bytes(), Some(20));
    w.append_bytes(&[7u8; 40]).unwrap();
    assert_eq!(w.close().unwrap(), 2);
    let (h, data) = parse(&env.read(&path).unwrap());
    assert_eq!(h.shape, vec![2]);
    assert_eq!(data, vec![7u8; 40]);
}

fn options_must_match_existing_file<E: Env>(env: &E) {
    let path = env.path("i.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..2)).unwrap();
    w.close().unwrap();
    let before = env.read(&path).unwrap();
    let wrong_dtype = AppendOptions::new()
        .dtype("<f8")
        .unwrap()
        .open_with(env.backend(), &path);
    assert!(matches!(wrong_dtype, Err(Error::DtypeMismatch { .. })));
    let wrong_shape = AppendOptions::new()
        .row_shape(&[5])
        .open_with(env.backend(), &path);
    assert!(matches!(wrong_shape, Err(Error::ShapeMismatch { .. })));
    assert_eq!(env.read(&path).unwrap(), before);
    assert!(env.read(&journal_path(&path)).is_none());
}

fn group_commit_by_rows<E: Env>(env: &E) {
    let path = env.path("j.npy");
    let mut w = f32_options()
        .group_commit(GroupCommit::rows(10))
        .open_with(env.backend(), &path)
        .unwrap();
    for i in 0..25 {
        w.append(&rows(i..i + 1)).unwrap();
    }
    assert_eq!(w.len(), 20);
    assert_eq!(w.pending_rows(), 5);
    assert_eq!(w.close().unwrap(), 25);
    assert_rows(env, &path, 25);
}

fn group_commit_by_bytes_and_interval<E: Env>(env: &E) {
    let path = env.path("k.npy");
    let mut w = f32_options()
        .group_commit(GroupCommit::bytes(160))
        .open_with(env.backend(), &path)
        .unwrap();
    for i in 0..25 {
        w.append(&rows(i..i + 1)).unwrap();
    }
    assert_eq!(w.len(), 20, "commits every 10 rows of 16 bytes");
    drop(w);
    let path = env.path("k2.npy");
    let mut w = f32_options()
        .group_commit(GroupCommit::interval(Duration::from_millis(30)))
        .open_with(env.backend(), &path)
        .unwrap();
    w.append(&rows(0..1)).unwrap();
    assert_eq!(w.len(), 0);
    std::thread::sleep(Duration::from_millis(40));
    w.append(&rows(1..2)).unwrap();
    assert_eq!(w.len(), 2);
}

fn refuses_when_committed_data_is_missing<E: Env>(env: &E) {
    let path = env.path("l.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..10)).unwrap();
    w.commit().unwrap();
    drop(w);
    let mut bytes = env.read(&path).unwrap();
    bytes.truncate(bytes.len() - 20); // lose committed data
    env.write(&path, &bytes);
    let journal = env.read(&journal_path(&path)).unwrap();
    let err = open(env, &path).err().expect("must refuse");
    assert!(
        matches!(
            err,
            Error::CommittedDataMissing {
                committed_rows: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(env.read(&path).unwrap(), bytes, "file unchanged");
    assert_eq!(
        env.read(&journal_path(&path)).unwrap(),
        journal,
        "journal unchanged"
    );
}

fn refuses_when_synced_data_changed<E: Env>(env: &E) {
    let path = env.path("m.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..10)).unwrap();
    w.commit().unwrap();
    drop(w);
    let mut bytes = env.read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    env.write(&path, &bytes);
    let err = open(env, &path).err().expect("must refuse");
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert_eq!(env.read(&path).unwrap(), bytes);
}

fn trailing_bytes_without_journal<E: Env>(env: &E) {
    let path = env.path("n.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..4)).unwrap();
    w.close().unwrap();
    let mut bytes = env.read(&path).unwrap();
    bytes.extend(rows(4..6).iter().flat_map(|v| v.to_le_bytes()));
    bytes.extend([1, 2, 3]); // a torn row
    env.write(&path, &bytes);
    let err = open(env, &path).err().expect("refused by default");
    assert!(
        matches!(
            err,
            Error::TrailingBytes {
                header_rows: 4,
                extra_bytes: 35,
                whole_rows: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(env.read(&path).unwrap(), bytes);
    assert!(env.read(&journal_path(&path)).is_none());

    let w = AppendOptions::new()
        .tail_policy(TailPolicy::AdoptWholeRows)
        .open_with(env.backend(), &path)
        .unwrap();
    assert_eq!(w.len(), 6);
    assert_eq!(w.report().adopted_rows, 2);
    assert_eq!(w.report().bytes_cut, 3);
    w.close().unwrap();
    assert_rows(env, &path, 6);

    let mut bytes = env.read(&path).unwrap();
    bytes.extend([9u8; 40]);
    env.write(&path, &bytes);
    let w = AppendOptions::new()
        .tail_policy(TailPolicy::CutToHeader)
        .open_with(env.backend(), &path)
        .unwrap();
    assert_eq!(w.len(), 6);
    assert_eq!(w.report().bytes_cut, 40);
    w.close().unwrap();
    assert_rows(env, &path, 6);
}

fn too_short_file_without_journal_is_refused<E: Env>(env: &E) {
    let path = env.path("o.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..4)).unwrap();
    w.close().unwrap();
    let mut bytes = env.read(&path).unwrap();
    bytes.pop();
    env.write(&path, &bytes);
    assert!(matches!(
        open(env, &path),
        Err(Error::FileTooShort {
            header_rows: 4,
            whole_rows: 3,
            ..
        })
    ));
    assert_eq!(env.read(&path).unwrap(), bytes);
}

fn torn_header_is_rebuilt_from_journal<E: Env>(env: &E) {
    let path = env.path("p.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..12)).unwrap();
    w.commit().unwrap();
    drop(w);
    let mut bytes = env.read(&path).unwrap();
    for b in &mut bytes[20..60] {
        *b = 0xAA; // garbage where the dict was
    }
    env.write(&path, &bytes);
    let w = open(env, &path).unwrap();
    assert!(w.report().header_rewritten);
    assert_eq!(w.len(), 12);
    drop(w);
    assert_rows(env, &path, 12);
}

fn journal_of_another_file_is_refused<E: Env>(env: &E) {
    let a = env.path("q1.npy");
    let b = env.path("q2.npy");
    let mut w = f32_options().open_with(env.backend(), &a).unwrap();
    w.append(&rows(0..3)).unwrap();
    w.commit().unwrap();
    drop(w);
    let mut w = AppendOptions::new().open_with(env.backend(), &b).unwrap();
    w.append(&[1u8, 2, 3]).unwrap();
    w.close().unwrap();
    // Put a's journal next to b.
    let journal = env.read(&journal_path(&a)).unwrap();
    env.write(&journal_path(&b), &journal);
    let before = env.read(&b).unwrap();
    let err = open(env, &b).err().expect("refused");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("another file"), "{err}");
    assert_eq!(env.read(&b).unwrap(), before);
    assert_eq!(env.read(&journal_path(&b)).unwrap(), journal);
}

fn file_rewritten_after_its_writer_died_is_refused<E: Env>(env: &E) {
    let path = env.path("r2.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..3)).unwrap();
    w.commit().unwrap();
    drop(w);
    // Another program saves 10 rows over the file; the journal says 3.
    let (h, _) = parse(&env.read(&path).unwrap());
    let mut bytes = header::build(&h.dtype, false, &[10, 4]).unwrap();
    bytes.extend(rows(0..10).iter().flat_map(|v| v.to_le_bytes()));
    env.write(&path, &bytes);
    let journal = env.read(&journal_path(&path)).unwrap();
    let err = open(env, &path).err().expect("must refuse");
    assert!(
        matches!(&err, Error::JournalDisagrees { path: p, .. } if *p == path),
        "{err}"
    );
    let text = err.to_string();
    for part in [
        "header says 10 rows",
        "committed only 3",
        "accept_loss",
        "move",
    ] {
        assert!(text.contains(part), "{part:?} not in: {text}");
    }
    assert_eq!(env.read(&path).unwrap(), bytes, "file unchanged");
    assert_eq!(
        env.read(&journal_path(&path)).unwrap(),
        journal,
        "journal unchanged"
    );
    // Accepting the loss, the journal wins.
    let w = AppendOptions::new()
        .accept_loss(true)
        .open_with(env.backend(), &path)
        .unwrap();
    assert_eq!(w.len(), 3);
    assert_eq!(w.report().rows_discarded, 7);
    w.close().unwrap();
    assert_rows(env, &path, 3);
}

fn torn_newest_slot_falls_back_to_older<E: Env>(env: &E) {
    let path = env.path("r.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..3)).unwrap();
    w.commit().unwrap(); // slot B, sequence 2
    w.append(&rows(3..5)).unwrap();
    w.commit().unwrap(); // slot A, sequence 3
    drop(w);
    // Tear slot A's record (the newest): as if the journal write of the
    // second commit never completed, so that commit was not acknowledged
    // and its header write (which follows the journal's) never happened.
    let mut journal = env.read(&journal_path(&path)).unwrap();
    journal[4096 + 20] ^= 0x55;
    env.write(&journal_path(&path), &journal);
    let mut bytes = env.read(&path).unwrap();
    let (h, _) = parse(&bytes);
    let old_header = header::build(&h.dtype, false, &[3, 4]).unwrap();
    bytes[..old_header.len()].copy_from_slice(&old_header);
    env.write(&path, &bytes);
    let w = open(env, &path).unwrap();
    assert_eq!(w.len(), 3);
    assert_eq!(w.report().bytes_cut, 2 * 16);
    drop(w);
    assert_rows(env, &path, 3);
}

fn incomplete_journal_beside_clean_file_is_discarded<E: Env>(env: &E) {
    let path = env.path("s.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..3)).unwrap();
    w.close().unwrap();
    for junk in [Vec::new(), vec![0u8; 100], b"NPYAJRNL".to_vec()] {
        env.write(&journal_path(&path), &junk);
        let w = open(env, &path).unwrap();
        assert!(w.report().journal_discarded);
        assert_eq!(w.len(), 3);
        w.close().unwrap();
        assert_rows(env, &path, 3);
    }
}

fn creation_killed_before_npy_exists_recovers_to_empty<E: Env>(env: &E) {
    let path = env.path("t.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..1)).unwrap();
    drop(w);
    // Simulate a writer that died after the journal was created but before
    // the .npy had its header.
    let journal = env.read(&journal_path(&path)).unwrap();
    let other = env.path("t2.npy");
    env.write(&journal_path(&other), &journal);
    let w = open(env, &other).unwrap();
    assert_eq!(w.len(), 0);
    assert_eq!(w.row_shape(), &[4]);
    w.close().unwrap();
    let (h, data) = parse(&env.read(&other).unwrap());
    assert_eq!(h.shape, vec![0, 4]);
    assert!(data.is_empty());
}

fn creation_killed_during_header_write_recovers_to_empty<E: Env>(env: &E) {
    let path = env.path("t3.npy");
    let mut w = f32_options().open_with(env.backend(), &path).unwrap();
    w.append(&rows(0..1)).unwrap();
    drop(w);
    let full = env.read(&path).unwrap();
    // The .npy was created but its header write only partly landed (or not
    // at all, or as garbage).
    for torn in [
        Vec::new(),
        full[..7].to_vec(),
        full[..100].to_vec(),
        vec![0xEE; 128],
    ] {
        env.write(&path, &torn);
        let w = open(env, &path).unwrap();
        assert_eq!(w.len(), 0);
        assert!(w.report().header_rewritten);
        drop(w);
        let (h, data) = parse(&env.read(&path).unwrap());
        assert_eq!(h.shape, vec![0, 4]);
        assert!(data.is_empty());
    }
}

fn unappendable_files_are_refused_unchanged<E: Env>(env: &E) {
    let dtype = npy_append::Dtype::parse_descr("'<f4'").unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero_d", {
            let mut b = header::build(&dtype, false, &[]).unwrap();
            b.extend([0u8; 4]);
            b
        }),
        // Fortran order: the rows are (0,) slices along the last axis.
        (
            "fortran_zero_row",
            header::build(&dtype, true, &[0, 3]).unwrap(),
        ),
        ("zero_row", header::build(&dtype, false, &[3, 0]).unwrap()),
        ("garbage", b"this is not an npy file at all".to_vec()),
        ("empty", Vec::new()),
    ];
    for (name, bytes) in cases {
        let path = env.path(&format!("u_{name}.npy"));
        env.write(&path, &bytes);
        let err = open(env, &path)
            .err()
            .unwrap_or_else(|| panic!("{name} must be refused"));
        assert!(
            matches!(err, Error::Unsupported { .. } | Error::Corrupt { .. }),
            "{name}: {err}"
        );
        assert_eq!(env.read(&path).unwrap(), bytes, "{name} changed");
        assert!(
            env.read(&journal_path(&path)).is_none(),
            "{name} got a journal"
        );
    }
}

fn close_of_unborn_creates_nothing<E: Env>(env: &E) {
    let path = env.path("v.npy");
    let w = open(env, &path).unwrap();
    assert_eq!(w.close().unwrap(), 0);
    assert!(env.read(&path).is_none());
    assert!(env.read(&journal_path(&path)).is_none());
}

fn second_writer_is_locked<E: Env>(env: &E) {
    let path = env.path("w.npy");
    let mut first = f32_options().open_with(env.backend(), &path).unwrap();
    first.append(&rows(0..2)).unwrap();
    first.commit().unwrap();
    let err = open(env, &path).err().expect("second writer refused");
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    first.append(&rows(2..3)).unwrap();
    assert_eq!(first.close().unwrap(), 3);
    let second = open(env, &path).unwrap();
    assert_eq!(second.len(), 3);
}

fn journal_of_a_writer_still_creating_is_locked<E: Env>(env: &E) {
    use npy_append::storage::{OpenMode, Storage};
    let path = env.path("w2.npy");
    // A writer that created the journal but not yet the .npy holds the
    // journal's lock.
    let creator = env
        .backend()
        .open(&journal_path(&path), OpenMode::CreateNew)
        .unwrap();
    assert!(creator.try_lock().unwrap());
    let err = open(env, &path)
        .err()
        .expect("must not take over a live creation");
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(
        env.read(&journal_path(&path)).is_some(),
        "journal left alone"
    );
    drop(creator);
    // Once that writer is gone, its empty journal is an incomplete creation.
    let w = open(env, &path).unwrap();
    assert!(w.report().journal_discarded);
}

fn process_durability_commits_and_closes<E: Env>(env: &E) {
    let path = env.path("x.npy");
    let mut w = f32_options()
        .durability(Durability::Process)
        .open_with(env.backend(), &path)
        .unwrap();
    w.append(&rows(0..5)).unwrap();
    w.commit().unwrap();
    w.append(&rows(5..6)).unwrap();
    drop(w);
    let w = open(env, &path).unwrap();
    assert_eq!(w.len(), 5);
    w.close().unwrap();
    assert_rows(env, &path, 5);
}

fn process_durability_power_loss_drops_unsynced_commit<E: Env>(env: &E) {
    let path = env.path("y.npy");
    let mut w = f32_options()
        .durability(Durability::Process)
        .open_with(env.backend(), &path)
        .unwrap();
    w.append(&rows(0..5)).unwrap();
    w.commit().unwrap();
    w.append(&rows(5..9)).unwrap();
    w.commit().unwrap();
    drop(w);
    // A power loss kept the journal record of the second commit but not all
    // of its data (the file was extended with zeros), nor its header write.
    let mut bytes = env.read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len - 20..] {
        *b = 0;
    }
    let (h, _) = parse(&bytes);
    let header_of_5 =
        header::build_with_len(h.version, &h.dtype, false, &[5, 4], h.header_len).unwrap();
    bytes[..header_of_5.len()].copy_from_slice(&header_of_5);
    env.write(&path, &bytes);
    let w = open(env, &path).unwrap();
    assert_eq!(w.len(), 5);
    assert_eq!(w.report().dropped_rows, 4);
    assert_eq!(w.report().rows_discarded, 0);
    drop(w);
    assert_rows(env, &path, 5);
    // The re-anchored journal keeps recovery stable and appending works.
    let mut w = open(env, &path).unwrap();
    assert_eq!(w.len(), 5);
    w.append(&rows(5..7)).unwrap();
    w.commit().unwrap();
    drop(w);
    let w = open(env, &path).unwrap();
    assert_eq!(w.len(), 7);
    w.close().unwrap();
    assert_rows(env, &path, 7);
}

/// A power loss under process durability that kept the second commit's
/// record and header but zeroed part of its rows leaves a file that holds
/// the 9 rows its header claims, whose last rows fail the record's checksum:
/// exactly what another program saving 9 other rows over the file leaves.
/// Recovery cannot tell them apart, so it refuses and changes nothing;
/// accepting the loss recovers the previous commit.
fn process_power_loss_with_the_header_kept_is_refused_unless_accepted<E: Env>(env: &E) {
    let path = env.path("y2.npy");
    let mut w = f32_options()
        .durability(Durability::Process)
        .open_with(env.backend(), &path)
        .unwrap();
    w.append(&rows(0..5)).unwrap();
    w.commit().unwrap();
    w.append(&rows(5..9)).unwrap();
    w.commit().unwrap();
    drop(w);
    let mut bytes = env.read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len - 20..] {
        *b = 0;
    }
    env.write(&path, &bytes);
    let journal = env.read(&journal_path(&path)).unwrap();
    let err = open(env, &path).err().expect("must refuse");
    assert!(matches!(err, Error::JournalDisagrees { .. }), "{err}");
    assert_eq!(env.read(&path).unwrap(), bytes, "file unchanged");
    assert_eq!(
        env.read(&journal_path(&path)).unwrap(),
        journal,
        "journal unchanged"
    );
    let w = AppendOptions::new()
        .accept_loss(true)
        .open_with(env.backend(), &path)
        .unwrap();
    assert_eq!(w.len(), 5);
    assert_eq!(w.report().dropped_rows, 4);
    assert_eq!(w.report().rows_discarded, 4);
    w.close().unwrap();
    assert_rows(env, &path, 5);
}

fn large_appends_bypass_the_buffer<E: Env>(env: &E) {
    let path = env.path("z.npy");
    let mut w = f32_options()
        .buffer_bytes(1024)
        .open_with(env.backend(), &path)
        .unwrap();
    w.append(&rows(0..3)).unwrap();
    w.append(&rows(3..1003)).unwrap();
    w.append(&rows(1003..1004)).unwrap();
    assert_eq!(w.commit().unwrap(), 1004);
    w.close().unwrap();
    assert_rows(env, &path, 1004);
}

macro_rules! behaviour_tests {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $(#[test] fn $name() { super::$name(&super::Fs(tempfile::tempdir().unwrap())); })*
        }
        mod mem {
            $(#[test] fn $name() { super::$name(&super::Mem(super::MemBackend::new())); })*
        }
    };
}

behaviour_tests!(
    new_file_typed_append_commit_close,
    header_never_exceeds_committed_rows,
    header_length_is_constant_and_numpy_identical,
    uncommitted_rows_are_cut_after_drop,
    recovery_is_idempotent,
    resume_appends_after_recovery,
    typed_append_checks_dtype_and_shape,
    raw_append_to_new_file_needs_dtype,
    options_must_match_existing_file,
    group_commit_by_rows,
    group_commit_by_bytes_and_interval,
    refuses_when_committed_data_is_missing,
    refuses_when_synced_data_changed,
    trailing_bytes_without_journal,
    too_short_file_without_journal_is_refused,
    torn_header_is_rebuilt_from_journal,
    journal_of_another_file_is_refused,
    torn_newest_slot_falls_back_to_older,
    file_rewritten_after_its_writer_died_is_refused,
    incomplete_journal_beside_clean_file_is_discarded,
    creation_killed_before_npy_exists_recovers_to_empty,
    creation_killed_during_header_write_recovers_to_empty,
    unappendable_files_are_refused_unchanged,
    close_of_unborn_creates_nothing,
    second_writer_is_locked,
    journal_of_a_writer_still_creating_is_locked,
    process_durability_commits_and_closes,
    process_durability_power_loss_drops_unsynced_commit,
    process_power_loss_with_the_header_kept_is_refused_unless_accepted,
    large_appends_bypass_the_buffer,
);

// I/O failures: only the memory backend can inject them.

/// Every failing operation of a commit poisons the appender; reopening
/// recovers to the last acknowledged commit.
#[test]
fn failure_at_every_operation_poisons_and_recovers() {
    for op in [MemOp::Write, MemOp::Sync] {
        for nth in 1..=4 {
            let mem = MemBackend::new();
            let env = Mem(mem.clone());
            let path = env.path("poison.npy");
            let mut w = f32_options().open_with(mem.clone(), &path).unwrap();
            w.append(&rows(0..2)).unwrap();
            w.commit().unwrap();
            mem.fail_at(op, nth);
            let mut acknowledged = 2;
            let mut failed = false;
            for step in 0..4u64 {
                let start = 2 + step * 3;
                let result = w.append(&rows(start..start + 3)).and_then(|()| w.commit());
                match result {
                    Ok(n) => acknowledged = n,
                    Err(e) => {
                        assert!(
                            !matches!(e, Error::Poisoned { .. }),
                            "first failure is the I/O error: {e}"
                        );
                        failed = true;
                        break;
                    }
                }
            }
            assert!(failed, "{op:?} #{nth} never failed");
            assert!(w.is_poisoned());
            assert!(matches!(w.append(&rows(0..1)), Err(Error::Poisoned { .. })));
            assert!(matches!(w.commit(), Err(Error::Poisoned { .. })));
            assert!(matches!(w.close(), Err(Error::Poisoned { .. })));
            mem.clear_failure();
            let w = open(&env, &path).unwrap();
            assert!(
                w.len() >= acknowledged,
                "{op:?} #{nth}: lost an acknowledged commit"
            );
            let n = w.len();
            w.close().unwrap();
            let (h, data) = parse(&env.read(&path).unwrap());
            assert_eq!(h.shape[0], n);
            let want: Vec<u8> = rows(0..n).iter().flat_map(|v| v.to_le_bytes()).collect();
            assert_eq!(data, want);
        }
    }
}

#[test]
fn disk_full_is_a_clear_error_and_recoverable() {
    let mem = MemBackend::new();
    let env = Mem(mem.clone());
    let path = env.path("full.npy");
    let mut w = f32_options().open_with(mem.clone(), &path).unwrap();
    w.append(&rows(0..10)).unwrap();
    w.commit().unwrap();
    mem.set_size_limit(Some(300));
    w.append(&rows(10..100)).unwrap();
    let err = w.commit().unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{err}"
    );
    drop(w);
    mem.set_size_limit(None);
    let mut w = open(&env, &path).unwrap();
    assert_eq!(w.len(), 10);
    w.append(&rows(10..100)).unwrap();
    assert_eq!(w.close().unwrap(), 100);
    assert_rows(&env, &path, 100);
}

#[test]
fn drop_does_no_io() {
    let mem = MemBackend::new();
    let env = Mem(mem.clone());
    let path = env.path("drop.npy");
    let mut w = f32_options().open_with(mem.clone(), &path).unwrap();
    w.append(&rows(0..10)).unwrap();
    w.commit().unwrap();
    w.append(&rows(10..11)).unwrap();
    let counts = [MemOp::Write, MemOp::SetLen, MemOp::Sync, MemOp::Remove].map(|op| mem.count(op));
    drop(w);
    assert_eq!(
        counts,
        [MemOp::Write, MemOp::SetLen, MemOp::Sync, MemOp::Remove].map(|op| mem.count(op))
    );
}

#[test]
fn fsync_commit_syncs_data_then_journal() {
    let mem = MemBackend::new();
    let env = Mem(mem.clone());
    let path = env.path("sync.npy");
    let mut w = f32_options().open_with(mem.clone(), &path).unwrap();
    w.append(&rows(0..1)).unwrap();
    w.commit().unwrap();
    let (writes, syncs) = (mem.count(MemOp::Write), mem.count(MemOp::Sync));
    w.append(&rows(1..2)).unwrap();
    w.commit().unwrap();
    assert_eq!(
        mem.count(MemOp::Sync) - syncs,
        2,
        "one data sync, one journal sync"
    );
    assert_eq!(
        mem.count(MemOp::Write) - writes,
        3,
        "rows, journal record, header"
    );

    let path = env.path("nosync.npy");
    let mut w = f32_options()
        .durability(Durability::Process)
        .open_with(mem.clone(), &path)
        .unwrap();
    w.append(&rows(0..1)).unwrap();
    w.commit().unwrap();
    let syncs = mem.count(MemOp::Sync);
    w.append(&rows(1..2)).unwrap();
    w.commit().unwrap();
    assert_eq!(
        mem.count(MemOp::Sync),
        syncs,
        "process durability: no sync per commit"
    );
}
