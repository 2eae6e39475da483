//! Files whose header has no room to grow (numpy < 1.24 wrote no growth
//! padding; version 2.0 and 3.0 headers; other writers) are taken over by an
//! atomic rewrite: a copy with a header that has room is written next to the
//! file, synced, renamed over it and the directory synced.
//!
//! The old-style files are built byte by byte here, as numpy 1.x wrote them
//! (no growth padding, 16- or 64-byte alignment); numpy loads every result
//! with the expected data.

mod support;

use std::io;
use std::path::{Path, PathBuf};

use npy_append::format::header;
use npy_append::storage::{Backend, MemBackend, MemOp, OpenMode};
use npy_append::{AppendOptions, Error, Reader, journal_path};

/// A `.npy` as numpy 1.x wrote it: the dict text padded with spaces and a
/// newline to a multiple of `align` bytes, no growth padding, in `version`
/// (1: `u16` length; 2 and 3: `u32` length).
fn old_style(version: u8, dict: &str, align: usize, data: &[u8]) -> Vec<u8> {
    let prefix = if version == 1 { 10 } else { 12 };
    let text = dict.as_bytes();
    let mut total = prefix + text.len() + 1;
    total = total.div_ceil(align) * align;
    let header_len = total - prefix;
    let mut out = b"\x93NUMPY".to_vec();
    out.push(version);
    out.push(0);
    if version == 1 {
        out.extend_from_slice(&u16::try_from(header_len).unwrap().to_le_bytes());
    } else {
        out.extend_from_slice(&u32::try_from(header_len).unwrap().to_le_bytes());
    }
    out.extend_from_slice(text);
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

fn f64_rows(rows: std::ops::Range<u64>, cols: u64) -> Vec<f64> {
    rows.flat_map(|i| (0..cols).map(move |j| (i * cols + j) as f64 * 0.5 - 3.0))
        .collect()
}

fn le_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn header_len_of(bytes: &[u8]) -> u64 {
    header::parse_prefix(bytes).unwrap().1
}

/// Whether the header of `bytes` has the growth padding `np.save` writes.
fn has_room(bytes: &[u8]) -> bool {
    let parsed = header::parse(&bytes[..usize::try_from(header_len_of(bytes)).unwrap()]).unwrap();
    let built = header::build(&parsed.dtype, parsed.fortran_order, &parsed.shape).unwrap();
    built.len() as u64 == parsed.header_len
}

/// numpy's `np.load(path)` of `path` as `repr(a.dtype), a.shape, a.tolist()`.
fn numpy_view(py: &Path, path: &Path) -> String {
    support::run_python(
        py,
        "import sys, numpy as np\n\
         a = np.load(sys.argv[1])\n\
         print(a.dtype.str, a.shape, a.reshape(a.shape[0], -1).tolist())",
        &[path.to_str().unwrap()],
    )
}

struct Case {
    name: &'static str,
    version: u8,
    align: usize,
    /// Axes of length 1 between the row count and the last axis (2), to
    /// make the header text long enough that the alignment padding leaves
    /// no room.
    ones: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "v1.0, 16-byte alignment",
        version: 1,
        align: 16,
        ones: 0,
    },
    Case {
        name: "v1.0, 64-byte alignment (numpy 1.14 to 1.23)",
        version: 1,
        align: 64,
        ones: 14,
    },
    Case {
        name: "v2.0",
        version: 2,
        align: 64,
        ones: 14,
    },
    Case {
        name: "v3.0",
        version: 3,
        align: 16,
        ones: 1,
    },
];

#[test]
fn old_style_files_are_rewritten_and_numpy_loads_them() {
    let Some(py) = support::require_numpy("old_style_files_are_rewritten_and_numpy_loads_them")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for case in CASES {
        let path = tmp
            .path()
            .join(format!("v{}-{}.npy", case.version, case.align));
        let ones = ", 1".repeat(case.ones);
        let shape_text = |rows: u64| format!("({rows}{ones}, 2)");
        let old = old_style(
            case.version,
            &format!(
                "{{'descr': '<f8', 'fortran_order': False, 'shape': {}, }}",
                shape_text(3)
            ),
            case.align,
            &le_bytes(&f64_rows(0..3, 2)),
        );
        assert!(
            !has_room(&old),
            "{}: the test file must lack room",
            case.name
        );
        std::fs::write(&path, &old).unwrap();
        // numpy reads the hand-built file as intended.
        let before = numpy_view(&py, &path);
        assert_eq!(
            before.trim(),
            format!("<f8 {} {:?}", shape_text(3), pairs(&f64_rows(0..3, 2))),
            "{}",
            case.name
        );

        let mut appender = AppendOptions::new().open(&path).unwrap();
        assert_eq!(appender.len(), 3, "{}", case.name);
        appender.append(&f64_rows(3..5, 2)).unwrap();
        appender.commit().unwrap();
        // The rewritten file is the one being appended to.
        let during = std::fs::read(&path).unwrap();
        assert!(
            has_room(&during),
            "{}: rewritten header has room",
            case.name
        );
        appender.append(&f64_rows(5..6, 2)).unwrap();
        assert_eq!(appender.close().unwrap(), 6);

        let after = std::fs::read(&path).unwrap();
        assert!(has_room(&after), "{}", case.name);
        assert_eq!(
            header_len_of(&after) % 64,
            0,
            "{}: numpy's alignment",
            case.name
        );
        assert_eq!(
            &after[usize::try_from(header_len_of(&after)).unwrap()..],
            le_bytes(&f64_rows(0..6, 2)).as_slice(),
            "{}: data after the header",
            case.name
        );
        assert!(!npy_append::rewrite_path(&path).exists());
        assert!(!journal_path(&path).exists());
        let reader = Reader::open(&path).unwrap();
        assert_eq!(reader.as_slice::<f64>().unwrap(), f64_rows(0..6, 2));
        assert_eq!(
            numpy_view(&py, &path).trim(),
            format!("<f8 {} {:?}", shape_text(6), pairs(&f64_rows(0..6, 2))),
            "{}",
            case.name
        );
    }
}

/// Rows of two values as numpy's `tolist()` prints them.
fn pairs(values: &[f64]) -> Vec<[f64; 2]> {
    values.chunks(2).map(|c| [c[0], c[1]]).collect()
}

/// A structured dtype with field names outside latin-1, written by another
/// tool as a 3.0 header without growth padding: the rewrite keeps 3.0 and
/// numpy reads the names and values.
#[test]
fn utf8_field_names_keep_a_v3_header() {
    let Some(py) = support::require_numpy("utf8_field_names_keep_a_v3_header") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("names.npy");
    let row = |i: i32| {
        let mut b = i.to_le_bytes().to_vec();
        b.extend_from_slice(&(f64::from(i) * 1.5).to_le_bytes());
        b
    };
    let data: Vec<u8> = (0..2).flat_map(row).collect();
    let old = old_style(
        3,
        "{'descr': [('é', '<i4'), ('日本', '<f8')], 'fortran_order': False, 'shape': (2,), }",
        16,
        &data,
    );
    assert!(!has_room(&old));
    std::fs::write(&path, &old).unwrap();
    let mut appender = AppendOptions::new().open(&path).unwrap();
    appender.append_bytes(&row(2)).unwrap();
    assert_eq!(appender.close().unwrap(), 3);
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after[6], 3, "still a 3.0 header");
    assert!(has_room(&after));
    let out = support::run_python(
        &py,
        "import sys, numpy as np\n\
         a = np.load(sys.argv[1])\n\
         print(a.dtype.names, a.shape, a['é'].tolist(), a['日本'].tolist())",
        &[path.to_str().unwrap()],
    );
    assert_eq!(out.trim(), "('é', '日本') (3,) [0, 1, 2] [0.0, 1.5, 3.0]");
}

/// Bytes of an old-style `<u4` file of `rows` rows of 4 values.
fn old_u4(rows: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..rows * 4).flat_map(u32::to_le_bytes).collect();
    old_style(
        1,
        &format!("{{'descr': '<u4', 'fortran_order': False, 'shape': ({rows}, 4), }}"),
        16,
        &data,
    )
}

#[test]
fn rewrite_happens_once_and_only_when_needed() {
    let fs = MemBackend::new();
    let path = PathBuf::from("/d/a.npy");
    fs.put(&path, &old_u4(2));
    let appender = AppendOptions::new().open_with(fs.clone(), &path).unwrap();
    assert_eq!(appender.len(), 2);
    assert_eq!(
        fs.count(MemOp::Rename),
        1,
        "the old-style file is rewritten"
    );
    assert!(appender.report().file_rewritten);
    assert!(appender.report().changed_file());
    appender.close().unwrap();
    let appender = AppendOptions::new().open_with(fs.clone(), &path).unwrap();
    assert!(!appender.report().file_rewritten);
    appender.close().unwrap();
    assert_eq!(
        fs.count(MemOp::Rename),
        1,
        "a rewritten file is not rewritten again"
    );

    // A file numpy >= 1.24 writes has room: never rewritten.
    let other = PathBuf::from("/d/b.npy");
    let mut bytes = header::build(
        &npy_append::format::dtype::Dtype::parse_descr("'<u4'").unwrap(),
        false,
        &[1, 4],
    )
    .unwrap();
    bytes.extend_from_slice(&[0u8; 16]);
    fs.put(&other, &bytes);
    let appender = AppendOptions::new().open_with(fs.clone(), &other).unwrap();
    appender.close().unwrap();
    assert_eq!(fs.count(MemOp::Rename), 1);
    assert!(!fs.exists(&npy_append::rewrite_path(&other)).unwrap());
}

#[test]
fn a_leftover_temporary_file_is_removed() {
    let fs = MemBackend::new();
    let path = PathBuf::from("/d/a.npy");
    let old = old_u4(3);
    fs.put(&path, &old);
    let temp = npy_append::rewrite_path(&path);
    // What a rewrite that died before its rename leaves: a partial copy.
    fs.put(&temp, &old[..40]);
    let mut appender = AppendOptions::new().open_with(fs.clone(), &path).unwrap();
    assert!(!fs.exists(&temp).unwrap());
    assert_eq!(appender.len(), 3);
    appender.append::<u32>(&[12, 13, 14, 15]).unwrap();
    appender.close().unwrap();
    let reader = Reader::open_with(fs.clone(), &path).unwrap();
    assert_eq!(
        reader.as_slice::<u32>().unwrap(),
        (0..16).collect::<Vec<u32>>()
    );

    // Also next to a file that needs no rewrite.
    fs.put(&temp, b"garbage");
    AppendOptions::new()
        .open_with(fs.clone(), &path)
        .unwrap()
        .close()
        .unwrap();
    assert!(!fs.exists(&temp).unwrap());
}

#[test]
fn a_failed_rewrite_leaves_the_old_file() {
    let fs = MemBackend::new();
    let path = PathBuf::from("/d/a.npy");
    let old = old_u4(3);
    fs.put(&path, &old);
    // The first sync is the one of the rewritten copy.
    fs.fail_at(MemOp::Sync, 1);
    let err = AppendOptions::new()
        .open_with(fs.clone(), &path)
        .err()
        .expect("the sync fails");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(fs.contents(&path).unwrap(), old);
    assert!(!fs.exists(&npy_append::rewrite_path(&path)).unwrap());
    assert!(!fs.exists(&journal_path(&path)).unwrap());
    fs.clear_failure();
    let appender = AppendOptions::new().open_with(fs.clone(), &path).unwrap();
    assert_eq!(appender.close().unwrap(), 3);
}

/// A [`MemBackend`] whose directory refuses new files, as a read-only
/// directory does (root ignores directory permissions, so a real one cannot
/// be tested reliably).
#[derive(Clone)]
struct ReadOnlyDir(MemBackend);

impl Backend for ReadOnlyDir {
    type File = <MemBackend as Backend>::File;
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File> {
        if mode == OpenMode::CreateNew {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        self.0.open(path, mode)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.0.exists(path)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn is_same_file(&self, file: &Self::File, path: &Path) -> io::Result<bool> {
        self.0.is_same_file(file, path)
    }
}

#[test]
fn a_read_only_directory_is_refused_clearly() {
    let fs = MemBackend::new();
    let path = PathBuf::from("/ro/a.npy");
    let old = old_u4(2);
    fs.put(&path, &old);
    let err = AppendOptions::new()
        .open_with(ReadOnlyDir(fs.clone()), &path)
        .err()
        .expect("refused");
    let Error::Unsupported {
        path: Some(at),
        what,
    } = &err
    else {
        panic!("expected Unsupported, got {err:?}");
    };
    assert_eq!(at, &path);
    assert!(what.contains("not writable"), "{what}");
    assert!(what.contains("a.npy.rewrite"), "{what}");
    assert!(what.contains("np.save(path, np.load(path))"), "{what}");
    assert_eq!(fs.contents(&path).unwrap(), old);
    // Reading needs no rewrite.
    let reader = Reader::open_with(fs.clone(), &path).unwrap();
    assert_eq!(reader.len(), 2);
}

/// Time of the rewrite of an old-style file of `NPY_APPEND_REWRITE_MB`
/// megabytes (default 1024) in `CARGO_TARGET_TMPDIR`: the data is written and
/// synced first, so the time is the copy (page cache warm), its sync, the
/// rename and the directory sync.
///
/// `cargo test --release --test adopt_rewrite -- --ignored --nocapture rewrite_seconds_per_gb`
#[test]
#[ignore = "a measurement: writes a 1 GB file"]
fn rewrite_seconds_per_gb() {
    use std::io::Write;
    let mb: u64 = std::env::var("NPY_APPEND_REWRITE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("big.npy");
    let rows = mb * (1 << 20) / 32;
    let head = old_style(
        1,
        &format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, 4), }}"),
        16,
        &[],
    );
    {
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&head).unwrap();
        let chunk: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
        for _ in 0..mb {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
    }
    let start = std::time::Instant::now();
    let appender = AppendOptions::new().open(&path).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(appender.report().file_rewritten);
    assert_eq!(appender.len(), rows);
    appender.close().unwrap();
    println!(
        "rewrite of {mb} MB: {secs:.2} s, {:.2} s per GB",
        secs * 1024.0 / mb as f64
    );
}

/// Bytes past the data of a file without room: under the default policy
/// the file is refused unchanged (not rewritten); under a policy that
/// handles them, it is rewritten and the policy applied to the copy.
#[test]
fn trailing_bytes_are_refused_before_any_rewrite() {
    let fs = MemBackend::new();
    let path = PathBuf::from("/d/t.npy");
    let mut old = old_u4(2);
    old.extend((8..12u32).flat_map(u32::to_le_bytes)); // one whole row
    old.extend([9u8; 5]); // and a partial one
    fs.put(&path, &old);
    let err = AppendOptions::new()
        .open_with(fs.clone(), &path)
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            Error::TrailingBytes {
                header_rows: 2,
                extra_bytes: 21,
                whole_rows: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(fs.contents(&path).unwrap(), old, "nothing was changed");
    assert_eq!(fs.count(MemOp::Rename), 0);

    let w = AppendOptions::new()
        .tail_policy(npy_append::TailPolicy::AdoptWholeRows)
        .open_with(fs.clone(), &path)
        .unwrap();
    assert!(w.report().file_rewritten);
    assert_eq!((w.len(), w.report().adopted_rows), (3, 1));
    assert_eq!(w.close().unwrap(), 3);
    let reader = Reader::open_with(fs, &path).unwrap();
    assert_eq!(
        reader.as_slice::<u32>().unwrap(),
        (0..12).collect::<Vec<u32>>()
    );
}

#[cfg(unix)]
#[test]
fn the_rewritten_file_keeps_its_permissions_and_a_symlink_stays_a_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("p.npy");
    std::fs::write(&path, old_u4(2)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let w = AppendOptions::new().open(&path).unwrap();
    assert!(w.report().file_rewritten);
    w.close().unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    let target = tmp.path().join("target.npy");
    let link = tmp.path().join("link.npy");
    let old = old_u4(2);
    std::fs::write(&target, &old).unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // Opened through the link, the file it names is rewritten (the link is
    // followed, never replaced).
    let w = AppendOptions::new().open(&link).unwrap();
    assert!(w.report().file_rewritten);
    assert_eq!(w.path(), target);
    w.close().unwrap();
    let reader = Reader::open(&link).unwrap();
    assert_eq!(reader.len(), 2);
    assert_ne!(std::fs::read(&target).unwrap(), old);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!npy_append::rewrite_path(&link).exists());
    assert!(!journal_path(&link).exists());
}
