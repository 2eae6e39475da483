//! Readers beside a writer: they see exactly the committed rows, never an
//! uncommitted or torn one, and the library's readers' row count never goes
//! down (a numpy reader, which reads the header a commit rewrites in place,
//! can see a lower count or an unparsable header for a moment, as
//! docs/design.md "Readers during a commit" says; never a row not committed).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use npy_append::format::dtype::Dtype;
use npy_append::format::header;
use npy_append::storage::MemBackend;
use npy_append::{AppendOptions, Appender, Durability, Error, Reader, journal_path};

/// Values per row of the test files.
const WIDTH: u64 = 16;

/// Row `i`: `i * 16 + j` for `j` in `0..16`, so every value says where it belongs.
fn row(i: u64) -> [u64; WIDTH as usize] {
    std::array::from_fn(|j| i * WIDTH + j as u64)
}

fn rows(range: std::ops::Range<u64>) -> Vec<u64> {
    range.flat_map(row).collect()
}

fn writer(path: &Path) -> Appender {
    AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[WIDTH])
        .durability(Durability::Process)
        .open(path)
        .unwrap()
}

fn temp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// Checks that every visible row of `reader` is row `i`; returns the row count.
fn check_rows(reader: &Reader) -> u64 {
    let values = reader.as_slice::<u64>().unwrap();
    assert_eq!(values.len() as u64, reader.len() * WIDTH);
    for (k, &v) in values.iter().enumerate() {
        assert_eq!(v, k as u64, "value {k} of {}", reader.len());
    }
    reader.len()
}

#[test]
fn new_file_then_commits_appear_and_uncommitted_rows_never_do() {
    let (_dir, path) = temp("new.npy");
    let mut w = AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[WIDTH])
        .durability(Durability::Process)
        .buffer_bytes(64)
        .open(&path)
        .unwrap();
    let mut r = Reader::open(&path).unwrap();
    assert_eq!(r.len(), 0);
    assert!(r.is_empty());
    assert_eq!(r.row_shape(), &[WIDTH]);
    assert_eq!(r.row_bytes(), WIDTH * 8);
    assert_eq!(r.dtype(), &Dtype::parse_descr("'<u8'").unwrap());
    assert!(r.as_slice::<u64>().unwrap().is_empty());
    assert!(!r.refresh().unwrap());

    w.append(&rows(0..10)).unwrap();
    w.commit().unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(check_rows(&r), 10);

    // Written to the file (the buffer is tiny) but not committed.
    w.append(&rows(10..25)).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > r.data_offset() + 10 * r.row_bytes());
    assert!(!r.refresh().unwrap());
    assert_eq!(r.len(), 10);
    assert!(r.bytes(0..11).is_err());

    w.commit().unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(check_rows(&r), 25);
    assert_eq!(r.rows_as::<u64>(3..5).unwrap(), rows(3..5).as_slice());
    assert_eq!(r.bytes(24..25).unwrap().len() as u64, r.row_bytes());

    // Clean close: the journal goes away, the header is the count.
    assert_eq!(w.close().unwrap(), 25);
    assert!(!journal_path(&path).exists());
    assert!(!r.refresh().unwrap());
    assert_eq!(check_rows(&r), 25);

    // A new writer takes the closed file over (new journal) and continues.
    let mut w = writer(&path);
    w.append(&rows(25..30)).unwrap();
    w.commit().unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(check_rows(&r), 30);
    // A fresh reader agrees.
    assert_eq!(check_rows(&Reader::open(&path).unwrap()), 30);
    drop(w);
}

#[test]
fn reads_a_numpy_style_file_and_a_cleanly_closed_one() {
    let (_dir, path) = temp("np.npy");
    let dtype = Dtype::parse_descr("'<f4'").unwrap();
    let mut bytes = header::build(&dtype, false, &[3, 2]).unwrap();
    let header_len = bytes.len() as u64;
    for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
        bytes.extend(v.to_le_bytes());
    }
    std::fs::write(&path, &bytes).unwrap();
    let r = Reader::open(&path).unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r.data_offset(), header_len);
    assert_eq!(
        r.as_slice::<f32>().unwrap(),
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    assert_eq!(r.rows_as::<f32>(1..2).unwrap(), &[3.0, 4.0]);
    let chunks: Vec<&[u8]> = r.chunks(2).collect();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].len(), 16);
    assert_eq!(chunks[1].len(), 8);
    assert!(matches!(
        r.as_slice::<f64>(),
        Err(Error::DtypeMismatch { .. })
    ));
    assert!(matches!(
        r.rows_as::<i32>(0..1),
        Err(Error::DtypeMismatch { .. })
    ));
    assert!(matches!(r.bytes(2..4), Err(Error::InvalidArgument { .. })));

    // The header says 3 rows, the file holds 2 and part of the third.
    std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
    assert!(matches!(
        Reader::open(&path),
        Err(Error::FileTooShort {
            header_rows: 3,
            whole_rows: 2,
            ..
        })
    ));

    // A file our writer closed.
    let (_dir2, path) = temp("closed.npy");
    let mut w = writer(&path);
    w.append(&rows(0..7)).unwrap();
    w.close().unwrap();
    let r = Reader::open(&path).unwrap();
    assert_eq!(check_rows(&r), 7);
    assert_eq!(r.chunks(3).map(<[u8]>::len).sum::<usize>(), 7 * 128);
}

#[test]
fn a_crashed_writers_file_shows_its_committed_rows() {
    let (_dir, path) = temp("crashed.npy");
    let mut w = AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[WIDTH])
        .durability(Durability::Process)
        .buffer_bytes(64)
        .open(&path)
        .unwrap();
    w.append(&rows(0..4)).unwrap();
    w.commit().unwrap();
    w.append(&rows(4..9)).unwrap();
    drop(w); // like a crash: the journal stays, 5 uncommitted rows in the file
    assert!(journal_path(&path).exists());
    assert_eq!(check_rows(&Reader::open(&path).unwrap()), 4);
}

#[test]
fn malformed_files_are_typed_errors() {
    let (_dir, path) = temp("bad.npy");
    for (bytes, what) in [
        (b"not an npy file at all".to_vec(), "text"),
        (Vec::new(), "empty"),
        (b"\x93NUMPY\x01\x00\xff\xff".to_vec(), "truncated header"),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        match Reader::open(&path) {
            Err(Error::Corrupt { .. } | Error::Unsupported { .. }) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    // A 0-d array has no rows.
    let dtype = Dtype::parse_descr("'<f8'").unwrap();
    let mut bytes = header::build(&dtype, false, &[]).unwrap();
    bytes.extend(1.0f64.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Reader::open(&path),
        Err(Error::Unsupported { .. })
    ));
    // A journal of another file next to it.
    let (_dir2, other) = temp("other.npy");
    let mut w = AppendOptions::new()
        .dtype("<f4")
        .unwrap()
        .open(&other)
        .unwrap();
    w.append(&[1.0f32]).unwrap();
    w.commit().unwrap();
    let (_dir3, path) = temp("mine.npy");
    let mut mine = writer(&path);
    mine.append(&rows(0..1)).unwrap();
    mine.close().unwrap();
    std::fs::copy(journal_path(&other), journal_path(&path)).unwrap();
    assert!(matches!(Reader::open(&path), Err(Error::Corrupt { .. })));
    drop(w);
}

#[test]
fn works_on_the_in_memory_backend() {
    let backend = MemBackend::new();
    let path = Path::new("/mem/x.npy");
    let mut w = AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[WIDTH])
        .open_with(backend.clone(), path)
        .unwrap();
    let mut r = Reader::open_with(backend.clone(), path).unwrap();
    assert_eq!(r.len(), 0);
    w.append(&rows(0..3)).unwrap();
    w.commit().unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(r.as_slice::<u64>().unwrap(), rows(0..3).as_slice());
    w.close().unwrap();
    assert!(!r.refresh().unwrap());
    assert_eq!(r.len(), 3);
}

#[test]
fn wait_for_rows_sees_a_commit_and_times_out() {
    let (_dir, path) = temp("wait.npy");
    let mut w = writer(&path);
    let mut r = Reader::open(&path).unwrap();

    let timeout = Duration::from_millis(50);
    let start = Instant::now();
    assert!(!r.wait_for_rows(1, timeout).unwrap());
    assert!(start.elapsed() >= timeout);

    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        w.append(&rows(0..5)).unwrap();
        w.commit().unwrap();
        w
    });
    assert!(r.wait_for_rows(5, Duration::from_secs(10)).unwrap());
    assert_eq!(check_rows(&r), 5);
    // Already there: returns at once.
    assert!(r.wait_for_rows(3, Duration::ZERO).unwrap());
    t.join().unwrap().close().unwrap();
}

/// Environment variable that makes the test binary a stress reader process
/// of the file it names.
const STRESS_CHILD: &str = "NPY_APPEND_STRESS_READER";

/// The file whose existence tells the reader processes the writer is done.
fn done_marker(path: &Path) -> PathBuf {
    path.with_extension("done")
}

/// A stress reader process: refreshes and checks every new row until the
/// writer is done, then once more; prints `ready` when it has opened the
/// file and `reads=R errors=0 rows=N grew=G` at the end. Any wrong row
/// panics (exit 101), which fails the test.
fn stress_child_reader(path: &Path) {
    let done = done_marker(path);
    let mut r = Reader::open(path).unwrap();
    println!("ready");
    let (mut reads, mut grew, mut checked) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    loop {
        let finished = done.exists();
        // A parent that died without saying so leaves no reader spinning.
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the writer never finished"
        );
        if r.refresh().unwrap() {
            grew += 1;
        }
        reads += 1;
        let len = r.len();
        assert!(len >= checked, "row count went down: {checked} -> {len}");
        let values = r.as_slice::<u64>().unwrap();
        for i in (checked..len).chain([0, len.saturating_sub(1)]) {
            if i < len {
                let start = (i * WIDTH) as usize;
                assert_eq!(
                    values[start..start + WIDTH as usize],
                    row(i),
                    "row {i} of {len}"
                );
            }
        }
        checked = len;
        if finished {
            println!("reads={reads} errors=0 rows={len} grew={grew}");
            return;
        }
    }
}

/// The Python stress reader: `np.load(path, mmap_mode="r")` in a loop until
/// the writer is done, checking what docs/design.md ("Readers during a
/// commit") promises a numpy reader: every visible row `i` is
/// `16 * i + [0..16)` (never a row that was not committed, never a header
/// ahead of the data, which `np.load` refuses as larger than the file), a
/// header refused as unparsable only for a moment (`Cannot parse header`,
/// or `tokenize.TokenError` when its parentheses do not balance, while a
/// commit makes the count gain a digit), and a count below an
/// earlier read only for a moment (a carry's first write): both are
/// counted, the next reads go on, and the last read sees every row.
const PYTHON_READER: &str = r#"
import os, sys, tokenize
import numpy as np
path, done, width = sys.argv[1], sys.argv[2], int(sys.argv[3])
reads = errors = last = grew = dips = unparsable = 0
first = []
print("ready", flush=True)

def check():
    global reads, errors, last, grew, dips, unparsable
    reads += 1
    try:
        try:
            a = np.load(path, mmap_mode="r")
        except ValueError as e:
            if "Cannot parse header" in str(e):
                unparsable += 1
                return
            raise
        except tokenize.TokenError:
            # numpy's filter of a v1/v2 header that does not parse as a
            # dict (its parentheses unbalanced) raises this, not ValueError.
            unparsable += 1
            return
        n = a.shape[0]
        if a.dtype != np.dtype("<u8") or a.shape[1:] != (width,):
            raise ValueError(f"dtype {a.dtype}, shape {a.shape}")
        if n < last:
            # A carry's first write, seen for a moment: the rows shown are
            # still all committed (checked below); `last` stays.
            dips += 1
            for lo, hi in [(0, min(n, 1)), (max(n - 1, 0), n)]:
                got = np.asarray(a[lo:hi])
                want = np.arange(lo * width, hi * width, dtype=np.uint64).reshape(-1, width)
                if not np.array_equal(got, want):
                    raise ValueError(f"row {lo} of {n} is {np.asarray(a[lo]).tolist()}")
            del a
            return
        # The new rows, and again the first and the last row.
        for lo, hi in [(last, n), (0, min(n, 1)), (max(n - 1, 0), n)]:
            got = np.asarray(a[lo:hi])
            want = np.arange(lo * width, hi * width, dtype=np.uint64).reshape(-1, width)
            if not np.array_equal(got, want):
                bad = lo + int(np.argwhere((got != want).any(axis=1))[0][0])
                raise ValueError(f"row {bad} of {n} is {np.asarray(a[bad]).tolist()}")
        grew += n > last
        last = n
        del a
    except Exception as e:  # counted, and the first few shown
        errors += 1
        if len(first) < 5:
            first.append(repr(e))

import time
deadline = time.monotonic() + 300  # a parent that died leaves no reader spinning
while not os.path.exists(done) and time.monotonic() < deadline:
    check()
check()
for e in first:
    print("error:", e)
print(f"reads={reads} errors={errors} rows={last} grew={grew} dips={dips} unparsable={unparsable}", flush=True)
"#;

/// A child process killed when dropped, so that a failing test leaves no
/// reader spinning behind it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `child`'s stdout up to its `ready` line.
fn wait_ready(child: &mut Child) -> BufReader<ChildStdout> {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        assert_ne!(
            out.read_line(&mut line).unwrap(),
            0,
            "reader exited before it was ready"
        );
    }
    out
}

/// What a reader process reported: reads, errors, final rows, and reads
/// that saw new rows.
struct Summary {
    reads: u64,
    errors: u64,
    rows: u64,
    grew: u64,
    /// numpy reader: counts below an earlier read, seen for a moment.
    dips: u64,
    /// numpy reader: headers refused as unparsable for a moment.
    unparsable: u64,
}

/// Waits for a reader process and returns its `key=value` numbers.
fn finish_reader(name: &str, child: &mut KillOnDrop, mut out: BufReader<ChildStdout>) -> Summary {
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{name} failed ({status}):\n{rest}");
    let summary = rest
        .lines()
        .find(|l| l.starts_with("reads="))
        .unwrap_or_else(|| panic!("{name}: no summary in\n{rest}"));
    let get = |key: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .unwrap_or(0)
    };
    if get("errors") > 0 {
        eprintln!("{name}:\n{rest}");
    }
    Summary {
        reads: get("reads"),
        errors: get("errors"),
        rows: get("rows"),
        grew: get("grew"),
        dips: get("dips"),
        unparsable: get("unparsable"),
    }
}

/// A writer commits a few thousand batches of 1..500 rows (closing the file
/// and taking it over again with a new journal every 1000 commits) while
/// readers check every visible row: threads and processes refreshing a
/// `Reader` in a loop, and a Python process running
/// `np.load(path, mmap_mode="r")` in a loop.
#[test]
fn stress_readers_beside_a_writer() {
    const COMMITS: u64 = 6000;
    const READERS: usize = 3;
    const PROCESSES: usize = 2;
    if let Ok(path) = std::env::var(STRESS_CHILD) {
        stress_child_reader(Path::new(&path));
        return;
    }
    let python = support::require_numpy("stress_readers_beside_a_writer (python reader)");
    let (_dir, path) = temp("stress.npy");
    let mut w = writer(&path);
    // Reader processes, each ready (file opened) before the writes start.
    let mut processes: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["stress_readers_beside_a_writer", "--exact", "--nocapture"])
                .env(STRESS_CHILD, &path)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let out = wait_ready(&mut child);
            (KillOnDrop(child), out)
        })
        .collect();
    let python = python.map(|py| {
        let mut child = Command::new(py)
            .arg("-c")
            .arg(PYTHON_READER)
            .arg(&path)
            .arg(done_marker(&path))
            .arg(WIDTH.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_ready(&mut child);
        (KillOnDrop(child), out)
    });
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let changes = Arc::new(AtomicU64::new(0));

    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (path, done, reads, changes) =
                (path.clone(), done.clone(), reads.clone(), changes.clone());
            std::thread::spawn(move || -> Result<u64, String> {
                let mut r = Reader::open(&path).map_err(|e| e.to_string())?;
                let mut last = 0;
                let mut checked = 0u64; // rows already verified
                loop {
                    let finished = done.load(Ordering::Acquire);
                    if r.refresh().map_err(|e| e.to_string())? {
                        changes.fetch_add(1, Ordering::Relaxed);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    let len = r.len();
                    if len < last {
                        return Err(format!("row count went down: {last} -> {len}"));
                    }
                    last = len;
                    // Check the new rows, and a re-check of row 0 and the last row.
                    let values = r.as_slice::<u64>().map_err(|e| e.to_string())?;
                    for i in (checked..len).chain([0, len.saturating_sub(1)]) {
                        if i >= len {
                            continue;
                        }
                        let start = (i * WIDTH) as usize;
                        let got = &values[start..start + WIDTH as usize];
                        if got != row(i) {
                            return Err(format!("row {i} of {len} is {got:?}"));
                        }
                    }
                    checked = len;
                    if finished {
                        return Ok(len);
                    }
                }
            })
        })
        .collect();

    // Deterministic batch sizes 1..=500.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut total = 0;
    let start = Instant::now();
    for k in 1..=COMMITS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Mostly small commits, one in four up to 500 rows.
        let n = 1 + seed % if seed >> 62 == 0 { 500 } else { 20 };
        w.append(&rows(total..total + n)).unwrap();
        total += n;
        assert_eq!(w.commit().unwrap(), total);
        if k % 1000 == 0 {
            w.close().unwrap();
            w = writer(&path);
        }
        // Bursts of ten commits, then a pause in which slower readers (the
        // Python one) catch up, so that every kind of reader sees many
        // states of the file.
        if k % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let write_time = start.elapsed();
    done.store(true, Ordering::Release);
    std::fs::write(done_marker(&path), b"").unwrap();
    let mut errors = 0;
    for (k, t) in readers.into_iter().enumerate() {
        match t.join().unwrap() {
            Ok(len) => assert_eq!(len, total, "reader {k} final count"),
            Err(e) => {
                eprintln!("reader {k}: {e}");
                errors += 1;
            }
        }
    }
    let (mut process_reads, mut process_grew, mut process_errors) = (0, 0, 0);
    for (k, (mut child, out)) in processes.drain(..).enumerate() {
        let got = finish_reader(&format!("reader process {k}"), &mut child, out);
        assert_eq!(got.rows, total, "reader process {k} final count");
        process_reads += got.reads;
        process_grew += got.grew;
        process_errors += got.errors;
    }
    let python = python.map(|(mut child, out)| {
        let got = finish_reader("python reader", &mut child, out);
        assert_eq!(got.rows, total, "python reader final count");
        got
    });
    let python_text = match &python {
        Some(p) => format!(
            "{} reads ({} saw new rows; {} a count below an earlier read and {} an \
             unparsable header, each for a moment), {} errors",
            p.reads, p.grew, p.dips, p.unparsable, p.errors
        ),
        None => "skipped (no numpy)".to_owned(),
    };
    println!(
        "stress: {COMMITS} commits, {total} rows in {write_time:?}; readers: \
         {READERS} threads {} reads ({} saw new rows), {errors} errors; \
         {PROCESSES} processes {process_reads} reads ({process_grew} saw new rows), \
         {process_errors} errors; python np.load(mmap_mode=\"r\") {python_text}",
        reads.load(Ordering::Relaxed),
        changes.load(Ordering::Relaxed)
    );
    assert_eq!(errors, 0);
    assert_eq!(process_errors, 0);
    if let Some(p) = python {
        assert_eq!(p.errors, 0, "python reader errors");
        assert!(p.grew > 0, "the python reader never saw the file grow");
    }
    assert!(process_reads > 0);
    w.close().unwrap();
}

/// The same check from another process: the test binary re-executes itself
/// as a reader (`NPY_APPEND_CHILD_READER=<path>`).
#[test]
fn reader_in_a_child_process() {
    if let Ok(path) = std::env::var("NPY_APPEND_CHILD_READER") {
        // Child: wait for the final count, checking rows on the way.
        let mut r = Reader::open(&path).unwrap();
        let mut last = 0;
        while !r.wait_for_rows(2000, Duration::from_millis(20)).unwrap() {
            assert!(r.len() >= last);
            last = check_rows(&r);
        }
        assert_eq!(check_rows(&r), 2000);
        println!("child reader: ok");
        return;
    }
    let (_dir, path) = temp("child.npy");
    let mut w = writer(&path);
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["reader_in_a_child_process", "--exact", "--nocapture"])
        .env("NPY_APPEND_CHILD_READER", &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for k in 0..200 {
        w.append(&rows(k * 10..k * 10 + 10)).unwrap();
        w.commit().unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(stdout.contains("child reader: ok"), "{stdout}");
    w.close().unwrap();
}

/// A refresh that finds nothing new reads two slot records and a length.
#[test]
fn refresh_is_cheap_when_nothing_changed() {
    const N: u32 = 20_000;
    let (_dir, path) = temp("cheap.npy");
    let mut w = writer(&path);
    w.append(&rows(0..100)).unwrap();
    w.commit().unwrap();
    let mut r = Reader::open(&path).unwrap();
    let time = |r: &mut Reader| {
        let start = Instant::now();
        for _ in 0..N {
            assert!(!r.refresh().unwrap());
        }
        start.elapsed() / N
    };
    let active = time(&mut r);
    w.close().unwrap();
    r.refresh().unwrap();
    let closed = time(&mut r);
    println!("refresh with nothing new: {active:?} (writer active), {closed:?} (closed file)");
    assert_eq!(r.len(), 100);
    // Generous bounds (debug builds, loaded machines); typically a few µs.
    assert!(active < Duration::from_millis(1), "{active:?}");
    assert!(closed < Duration::from_millis(1), "{closed:?}");
}

#[test]
fn readers_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Reader>();
}
