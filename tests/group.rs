//! Append groups on the real file system: members committed together,
//! recovered together, read as one snapshot, locked as one, refused alone,
//! and each loaded by numpy on its own.

mod support;

use std::path::Path;
use std::time::Duration;

use npy_append::{
    AppendGroup, AppendOptions, Error, GroupOptions, GroupReader, LockWait, MemberSpec, Reader,
    member_marker_path,
};

/// Another test's child process may hold a copy of a descriptor (and its
/// lock) between its fork and its exec: opening waits for it.
fn wait() -> LockWait {
    LockWait::Wait(Duration::from_secs(10))
}

fn options() -> GroupOptions {
    GroupOptions::new()
        .lock_wait(wait())
        .member(MemberSpec::of::<f32>("x.npy", &[4]))
        .member(MemberSpec::of::<i64>("y.npy", &[]))
        .member(MemberSpec::new("ids.npy", "<u8", &[]).unwrap())
}

fn x(rows: std::ops::Range<u64>) -> Vec<f32> {
    rows.flat_map(|i| (0..4).map(move |j| (i * 4 + j) as f32))
        .collect()
}

fn y(rows: std::ops::Range<u64>) -> Vec<i64> {
    rows.map(|i| -(i as i64)).collect()
}

fn ids(rows: std::ops::Range<u64>) -> Vec<u64> {
    rows.map(|i| i * 1000 + 7).collect()
}

/// Appends `n` rows to every member.
fn add(g: &mut AppendGroup, n: u64) {
    let at = g.rows(0) + g.pending_rows(0);
    g.append(0, &x(at..at + n)).unwrap();
    g.append(1, &y(at..at + n)).unwrap();
    g.append(2, &ids(at..at + n)).unwrap();
}

#[test]
fn commit_reopen_and_read_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    let mut g = options().open(&path).unwrap();
    assert_eq!(g.member_count(), 3);
    assert_eq!(g.member_index("ids.npy"), Some(2));
    add(&mut g, 5);
    assert_eq!(g.commit_with_cursor(b"batch 0").unwrap(), vec![5, 5, 5]);
    // Members may grow by different amounts per commit.
    g.append(1, &y(5..8)).unwrap();
    g.commit().unwrap();
    assert_eq!(g.member_rows(), vec![5, 8, 5]);
    let r = GroupReader::open(&path).unwrap();
    assert_eq!(
        (r.rows(0), r.rows(1), r.rows(2), r.cursor()),
        (5, 8, 5, &b"batch 0"[..])
    );
    assert_eq!(r.as_slice::<f32>(0).unwrap(), &x(0..5)[..]);
    assert_eq!(r.as_slice::<i64>(1).unwrap(), &y(0..8)[..]);
    assert_eq!(r.rows_as::<u64>(2, 1..3).unwrap(), &ids(1..3)[..]);
    assert!(matches!(
        r.as_slice::<f64>(0),
        Err(Error::DtypeMismatch { .. })
    ));
    assert!(r.bytes(0, 0..6).is_err());
    assert_eq!(g.close().unwrap(), vec![5, 8, 5]);
    // The group journal stays (it names the members and keeps the cursor).
    assert!(path.exists());
    let g = options().open(&path).unwrap();
    assert_eq!(
        (g.member_rows(), g.cursor()),
        (vec![5, 8, 5], &b"batch 0"[..])
    );
    // Opening without the members works for an existing group.
    drop(g);
    let g = GroupOptions::new().lock_wait(wait()).open(&path).unwrap();
    assert_eq!(g.member_rows(), vec![5, 8, 5]);
}

#[test]
fn a_crash_cuts_every_member_to_the_last_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    let mut g = options().buffer_bytes(16).open(&path).unwrap();
    add(&mut g, 3);
    g.commit_with_cursor(b"3").unwrap();
    add(&mut g, 100); // written to the files (small buffer), never committed
    g.append(1, &y(103..110)).unwrap();
    drop(g);
    // The files hold bytes past the commit; each header shows the commit.
    for name in ["x.npy", "y.npy", "ids.npy"] {
        let r = Reader::open(dir.path().join(name)).unwrap();
        assert_eq!(r.len(), 3, "{name}");
    }
    let r = GroupReader::open(&path).unwrap();
    assert_eq!((r.rows(0), r.rows(1), r.rows(2)), (3, 3, 3));
    let g = options().open(&path).unwrap();
    assert_eq!(g.member_rows(), vec![3, 3, 3]);
    assert_eq!(g.cursor(), b"3");
    assert!(g.bytes_cut() > 0);
    for (name, row_bytes) in [("x.npy", 16), ("y.npy", 8), ("ids.npy", 8)] {
        let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
        assert_eq!(len, 128 + 3 * row_bytes, "{name}");
    }
}

#[test]
fn one_writer_per_group_and_no_member_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    let mut g = options().open(&path).unwrap();
    add(&mut g, 2);
    g.commit().unwrap();
    assert!(matches!(
        options().lock_wait(LockWait::Fail).open(&path),
        Err(Error::Locked { .. })
    ));
    let member = dir.path().join("y.npy");
    match AppendOptions::new().lock_wait(wait()).open(&member) {
        Err(Error::GroupMember { group, marker, .. }) => {
            assert_eq!(group, "data.group");
            assert_eq!(marker, member_marker_path(&member));
        }
        other => panic!("expected GroupMember, got {:?}", other.err()),
    }
    g.close().unwrap();
    // Still refused after the group closed: the group names the member.
    let err = AppendOptions::new().open(&member).err().unwrap();
    assert!(matches!(err, Error::GroupMember { .. }), "{err}");
    assert!(err.to_string().contains("open the group"), "{err}");
    // Readers of a member alone are fine.
    assert_eq!(Reader::open(&member).unwrap().len(), 2);
}

#[test]
fn options_must_match_an_existing_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    options().open(&path).unwrap().close().unwrap();
    let other = GroupOptions::new()
        .member(MemberSpec::of::<f32>("x.npy", &[4]))
        .member(MemberSpec::of::<i32>("y.npy", &[]))
        .member(MemberSpec::of::<u64>("ids.npy", &[]));
    assert!(matches!(
        other.open(&path),
        Err(Error::DtypeMismatch { .. })
    ));
    let fewer = GroupOptions::new().member(MemberSpec::of::<f32>("x.npy", &[4]));
    assert!(matches!(
        fewer.open(&path),
        Err(Error::ShapeMismatch { .. })
    ));
    let shape = GroupOptions::new()
        .member(MemberSpec::of::<f32>("x.npy", &[5]))
        .member(MemberSpec::of::<i64>("y.npy", &[]))
        .member(MemberSpec::of::<u64>("ids.npy", &[]));
    assert!(matches!(
        shape.open(&path),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn creation_refuses_existing_files_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    std::fs::write(dir.path().join("y.npy"), b"mine").unwrap();
    assert!(matches!(
        options().open(&path),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(!path.exists());
    assert_eq!(std::fs::read(dir.path().join("y.npy")).unwrap(), b"mine");
    for bad in ["", "../x.npy", "a/b.npy"] {
        let o = GroupOptions::new().member(MemberSpec::of::<u8>(bad, &[]));
        assert!(
            matches!(o.open(&path), Err(Error::InvalidArgument { .. })),
            "{bad:?}"
        );
    }
    let twice = GroupOptions::new()
        .member(MemberSpec::of::<u8>("a.npy", &[]))
        .member(MemberSpec::of::<u8>("a.npy", &[]));
    assert!(matches!(
        twice.open(&path),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        GroupOptions::new().open(&path),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn raw_byte_appends_keyed_by_row_and_member_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    let mut g = options().open(&path).unwrap();
    assert_eq!(g.member_dtype(0).unwrap().to_string(), "<f4");
    assert_eq!(g.member_row_shape(0), Some(&[4u64][..]));
    assert_eq!(g.member_row_bytes(0), Some(16));
    assert_eq!(g.member_row_shape(1), Some(&[][..]));
    assert_eq!(g.member_row_bytes(2), Some(8));
    assert_eq!(g.member_dtype(3), None);
    assert_eq!(g.member_name(2), Some("ids.npy"));
    assert_eq!(g.member_name(3), None);
    let bytes = |rows: std::ops::Range<u64>| -> Vec<u8> {
        y(rows).iter().flat_map(|v| v.to_le_bytes()).collect()
    };
    // Rows 0..3, then a replay of 1..5 appends only 3..5.
    assert_eq!(g.append_bytes_at(1, 0, &bytes(0..3)).unwrap(), 3);
    g.commit().unwrap();
    assert_eq!(g.append_bytes_at(1, 1, &bytes(1..5)).unwrap(), 2);
    assert_eq!(g.pending_rows(1), 2);
    // Past the rows held: a gap, nothing appended, not poisoned.
    assert!(matches!(
        g.append_bytes_at(1, 6, &bytes(6..7)),
        Err(Error::Gap {
            start_row: 6,
            len: 5,
            ..
        })
    ));
    // A partial row is refused before anything is appended.
    let mut torn = bytes(5..7);
    torn.pop();
    assert!(matches!(
        g.append_bytes_at(1, 5, &torn),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(g.pending_rows(1), 2);
    assert!(!g.is_poisoned());
    assert_eq!(g.commit().unwrap(), vec![0, 5, 0]);
    g.close().unwrap();
    let r = GroupReader::open(&path).unwrap();
    assert_eq!(r.bytes(1, 0..5).unwrap(), &bytes(0..5)[..]);
}

#[test]
fn a_member_rewritten_by_another_program_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    let mut g = options().open(&path).unwrap();
    add(&mut g, 2);
    g.close().unwrap();
    // Another program appends a row to y.npy and rewrites its header.
    let member = dir.path().join("y.npy");
    std::fs::remove_file(member_marker_path(&member)).unwrap();
    let mut w = AppendOptions::new()
        .lock_wait(wait())
        .open(&member)
        .unwrap();
    w.append(&[5i64]).unwrap();
    w.close().unwrap();
    let before = std::fs::read(&member).unwrap();
    let err = options().open(&path).err().unwrap();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert_eq!(std::fs::read(&member).unwrap(), before);
}

#[test]
fn a_damaged_member_is_reported_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    let mut g = options().open(&path).unwrap();
    add(&mut g, 4);
    g.commit().unwrap();
    drop(g);
    // Committed rows of x.npy changed on disk: the newest commit's CRC fails.
    let member = dir.path().join("x.npy");
    let mut bytes = std::fs::read(&member).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&member, &bytes).unwrap();
    assert!(matches!(
        options().open(&path),
        Err(Error::ChecksumMismatch { .. })
    ));
    // Cut short: committed data missing.
    std::fs::write(&member, &bytes[..bytes.len() - 16]).unwrap();
    assert!(matches!(
        options().open(&path),
        Err(Error::CommittedDataMissing { .. })
    ));
}

#[test]
fn a_torn_group_journal_is_refused_when_members_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    let mut g = options().open(&path).unwrap();
    add(&mut g, 1);
    g.close().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[70] ^= 1; // inside the identity's member entries
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(options().open(&path), Err(Error::Corrupt { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn numpy_loads_every_member() {
    let Some(py) = support::require_numpy("numpy_loads_every_member") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    let mut g = options().open(&path).unwrap();
    add(&mut g, 6);
    g.commit().unwrap();
    add(&mut g, 50); // pending: numpy must not see these
    let check = |dir: &Path, rows: u64| {
        let out = support::run_python(
            &py,
            "import sys, numpy as np\n\
             d = sys.argv[1]\n\
             x = np.load(d + '/x.npy', mmap_mode='r'); y = np.load(d + '/y.npy'); i = np.load(d + '/ids.npy')\n\
             n = x.shape[0]\n\
             assert x.dtype == np.float32 and x.shape == (n, 4), x.shape\n\
             assert (x == np.arange(n * 4, dtype=np.float32).reshape(n, 4)).all()\n\
             assert (y == -np.arange(n)).all() and y.dtype == np.int64\n\
             assert (i == np.arange(n, dtype=np.uint64) * 1000 + 7).all()\n\
             print(n, y.shape[0], i.shape[0])",
            &[dir.to_str().unwrap()],
        );
        assert_eq!(out.trim(), format!("{rows} {rows} {rows}"));
    };
    check(dir.path(), 6);
    g.close().unwrap();
    check(dir.path(), 56);
}

#[test]
fn snapshots_beside_a_running_writer_are_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.group");
    let mut g = options().open(&path).unwrap();
    g.commit_with_cursor(b"0").unwrap();
    let reader_path = path.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_reader = std::sync::Arc::clone(&stop);
    let reader = std::thread::spawn(move || {
        let mut snapshots = 0u64;
        let mut r = GroupReader::open(&reader_path).unwrap();
        while !stop_reader.load(std::sync::atomic::Ordering::Relaxed) {
            // The cursor is the number of rows of every member in that commit.
            let n: u64 = std::str::from_utf8(r.cursor()).unwrap().parse().unwrap();
            assert_eq!((r.rows(0), r.rows(1), r.rows(2)), (n, n, n));
            assert_eq!(r.as_slice::<u64>(2).unwrap(), &ids(0..n)[..]);
            assert_eq!(r.as_slice::<f32>(0).unwrap(), &x(0..n)[..]);
            r.refresh().unwrap();
            snapshots += 1;
        }
        snapshots
    });
    for _ in 0..200 {
        add(&mut g, 7);
        let n = g.rows(0) + g.pending_rows(0);
        g.commit_with_cursor(n.to_string().as_bytes()).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let snapshots = reader.join().unwrap();
    assert!(snapshots > 0);
    g.close().unwrap();
}
