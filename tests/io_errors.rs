//! I/O errors at every step of a workload.
//!
//! - A failure of the n-th read, write, set_len, sync, create, remove or
//!   directory sync, for every n the workload reaches: the call that hit it returns
//!   the I/O error, the appender is poisoned (every later call returns
//!   `Poisoned`), nothing is acknowledged after it, and reopening once the
//!   failure is gone recovers at least the last acknowledged commit, with
//!   every row as written.
//! - A full disk (`StorageFull`, from the memory backend's size limit) at
//!   every size the workload passes through, and a file-size limit on the
//!   real file system (`RLIMIT_FSIZE`, so writes fail with `EFBIG`): a clear
//!   error, committed rows intact, and appending works again after reopening
//!   once there is room.

mod support;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use npy_append::format::header;
use npy_append::storage::{Backend, FsBackend, MemBackend, MemOp};
use npy_append::{Appender, Durability, Error, journal_path};
use support::workload::{ROW_BYTES, ROW_VALUES, Step, options, row_bytes};

/// Create, commits of several sizes (one row, a few, page-crossing, several
/// writes per commit), close, reopen (new journal), uncommitted rows written
/// and dropped, reopen (recovery cuts them), append, close.
const WORKLOAD: &[Step] = &[
    Step::Open,
    Step::Append(1),
    Step::Commit,
    Step::Append(3),
    Step::Commit,
    Step::Append(200),
    Step::Commit,
    Step::Append(50),
    Step::Append(50),
    Step::Append(50),
    Step::Commit,
    Step::Close,
    Step::Open,
    Step::Append(170),
    Step::Commit,
    Step::Append(200),
    Step::Drop,
    Step::Open,
    Step::Append(5),
    Step::Commit,
    Step::Append(2),
    Step::Commit,
    Step::Close,
];

/// How a run of the workload ended.
#[derive(Debug)]
struct Run {
    /// Rows of the last acknowledged commit (or open, or close).
    acked: u64,
    /// Every row count a commit was attempted for.
    boundaries: BTreeSet<u64>,
    /// The first error, and the step it came from.
    failure: Option<(usize, Error)>,
}

/// Runs `steps` on `backend` until the first error. After it, checks that
/// the appender (if one is open) is poisoned: append, commit and close all
/// return `Poisoned`.
fn run<B: Backend + Clone>(
    backend: &B,
    path: &Path,
    durability: Durability,
    steps: &[Step],
) -> Run {
    let mut w: Option<Appender<B>> = None;
    let mut acked = 0;
    let mut boundaries = BTreeSet::from([0]);
    for (i, step) in steps.iter().enumerate() {
        let result = match *step {
            Step::Open | Step::OpenAs(_) => options(match *step {
                Step::OpenAs(d) => d,
                _ => durability,
            })
            .open_with(backend.clone(), path)
            .map(|a| {
                acked = acked.max(a.len());
                boundaries.insert(a.len());
                w = Some(a);
            }),
            Step::Append(n) => {
                let a = w.as_mut().unwrap();
                let start = a.len() + a.pending_rows();
                a.append_bytes(&row_bytes(start..start + n))
            }
            Step::Commit => {
                let a = w.as_mut().unwrap();
                boundaries.insert(a.len() + a.pending_rows());
                a.commit().map(|rows| acked = rows)
            }
            Step::Close => w.take().unwrap().close().map(|rows| acked = rows),
            Step::Drop => {
                drop(w.take());
                Ok(())
            }
        };
        if let Err(e) = result {
            assert!(
                !matches!(e, Error::Poisoned { .. }),
                "step {i} {step:?}: the first failure must be the I/O error itself: {e}"
            );
            if let Some(mut a) = w.take() {
                assert!(a.is_poisoned(), "step {i} {step:?}: not poisoned after {e}");
                let len = a.len();
                assert!(
                    matches!(
                        a.append_bytes(&row_bytes(0..1)),
                        Err(Error::Poisoned { .. })
                    ),
                    "append after a failure"
                );
                assert!(
                    matches!(a.commit(), Err(Error::Poisoned { .. })),
                    "commit after a failure"
                );
                assert_eq!(a.len(), len, "nothing acknowledged after a failure");
                assert!(
                    matches!(a.close(), Err(Error::Poisoned { .. })),
                    "close after a failure"
                );
            }
            return Run {
                acked,
                boundaries,
                failure: Some((i, e)),
            };
        }
    }
    Run {
        acked,
        boundaries,
        failure: None,
    }
}

/// Checks that `bytes` is a plain `.npy` of exactly `rows` rows as written.
fn assert_file(bytes: &[u8], rows: u64, context: &str) {
    let (_, header_len) = header::parse_prefix(bytes).unwrap();
    let h = header::parse(&bytes[..header_len as usize]).unwrap();
    assert_eq!(h.shape, [rows, ROW_VALUES], "{context}: header shape");
    assert_eq!(
        bytes.len() as u64,
        header_len + rows * ROW_BYTES,
        "{context}: file length"
    );
    assert!(
        bytes[header_len as usize..] == row_bytes(0..rows),
        "{context}: rows differ from what was written"
    );
}

/// Reopens after a failure: at least the acknowledged rows, on a commit
/// boundary, every row as written; appends more and closes cleanly.
fn reopen_and_check<B: Backend + Clone>(
    backend: &B,
    path: &Path,
    durability: Durability,
    run: &Run,
    read: impl Fn(&Path) -> Option<Vec<u8>>,
    context: &str,
) -> u64 {
    let mut w = options(durability)
        .open_with(backend.clone(), path)
        .unwrap_or_else(|e| panic!("{context}: reopening failed: {e}"));
    let rows = w.len();
    assert!(
        rows >= run.acked,
        "{context}: {rows} rows after reopening, {} were acknowledged",
        run.acked
    );
    assert!(
        run.boundaries.contains(&rows),
        "{context}: {rows} rows is not a commit boundary"
    );
    w.append_bytes(&row_bytes(rows..rows + 3)).unwrap();
    assert_eq!(w.close().unwrap(), rows + 3, "{context}");
    assert!(
        read(&journal_path(path)).is_none(),
        "{context}: journal left after close"
    );
    assert_file(&read(path).unwrap(), rows + 3, context);
    rows
}

const OPS: [MemOp; 7] = [
    MemOp::Read,
    MemOp::Write,
    MemOp::SetLen,
    MemOp::Sync,
    MemOp::Create,
    MemOp::Remove,
    MemOp::SyncDir,
];

fn mem_path() -> PathBuf {
    PathBuf::from("/mem/data.npy")
}

/// Writers of both durabilities one after another on one file (opening
/// under Process durability after an Fsync writer copies its record).
const MIXED: &[Step] = &[
    Step::OpenAs(Durability::Fsync),
    Step::Append(3),
    Step::Commit,
    Step::Drop,
    Step::OpenAs(Durability::Process),
    Step::Append(200),
    Step::Commit,
    Step::Append(1),
    Step::Commit,
    Step::Drop,
    Step::OpenAs(Durability::Fsync),
    Step::Append(2),
    Step::Commit,
    Step::Close,
];

/// Fails the n-th operation of each kind, for every n the workload reaches.
fn every_failure(durability: Durability) {
    every_failure_of(&format!("{durability:?}"), durability, WORKLOAD);
}

fn every_failure_of(name: &str, durability: Durability, steps: &[Step]) {
    let clean = MemBackend::new();
    let done = run(&clean, &mem_path(), durability, steps);
    assert!(done.failure.is_none(), "{:?}", done.failure);
    let mut total = 0;
    for op in OPS {
        let count = clean.count(op);
        if count == 0 {
            // The main workload does every kind; a shorter one may not.
            assert!(
                !std::ptr::eq(steps, WORKLOAD),
                "the workload does no {op:?}"
            );
            continue;
        }
        for nth in 1..=count {
            let context = format!("{durability:?}, {op:?} #{nth} of {count} fails");
            let mem = MemBackend::new();
            mem.fail_at(op, nth);
            let run = run(&mem, &mem_path(), durability, steps);
            let (step, err) = run
                .failure
                .as_ref()
                .unwrap_or_else(|| panic!("{context}: the workload never failed"));
            assert!(
                err.to_string().contains("injected failure"),
                "{context}: step {step} failed with an unrelated error: {err}"
            );
            mem.clear_failure();
            reopen_and_check(
                &mem,
                &mem_path(),
                durability,
                &run,
                |p| mem.contents(p),
                &context,
            );
            total += 1;
        }
    }
    println!("io_errors: {name}: failed each of {total} operations in turn, every one recovered");
}

#[test]
fn failure_of_every_operation_fsync() {
    every_failure(Durability::Fsync);
}

#[test]
fn failure_of_every_operation_process() {
    every_failure(Durability::Process);
}

#[test]
fn failure_of_every_operation_mixed_durability() {
    every_failure_of("mixed durability", Durability::Process, MIXED);
}

/// A size limit at every 256 bytes the files pass through: each run fails
/// with `StorageFull` (or completes when the limit is never reached),
/// committed rows stay intact, and appending works again with room.
#[test]
fn disk_full_at_every_size() {
    let clean = MemBackend::new();
    run(&clean, &mem_path(), Durability::Fsync, WORKLOAD);
    let max = clean.contents(&mem_path()).unwrap().len() as u64;
    let mut failed = 0;
    for durability in [Durability::Fsync, Durability::Process] {
        for limit in (0..=max + 256).step_by(256) {
            let context = format!("{durability:?}, files limited to {limit} bytes");
            let mem = MemBackend::new();
            mem.set_size_limit(Some(limit));
            let run = run(&mem, &mem_path(), durability, WORKLOAD);
            if let Some((step, err)) = &run.failure {
                assert_eq!(
                    err.io_kind(),
                    Some(ErrorKind::StorageFull),
                    "{context}: step {step}: {err}"
                );
                failed += 1;
            }
            mem.set_size_limit(None);
            if mem.contents(&mem_path()).is_some()
                || mem.contents(&journal_path(&mem_path())).is_some()
            {
                reopen_and_check(
                    &mem,
                    &mem_path(),
                    durability,
                    &run,
                    |p| mem.contents(p),
                    &context,
                );
            }
        }
    }
    assert!(failed > 10, "only {failed} runs hit the limit");
    println!("io_errors: {failed} runs stopped by a full disk, every one recovered");
}

const CHILD_ENV: &str = "NPY_APPEND_FSIZE_CHILD";

/// The child of `file_size_limit_efbig`: appends 100-row commits under a
/// file-size limit until a write fails, printing each acknowledged commit.
#[test]
fn child_appends_until_efbig() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let mut w = options(Durability::Fsync).open(&path).unwrap();
    println!("\n@ACK {}", w.len());
    loop {
        let start = w.len();
        let result = w
            .append_bytes(&row_bytes(start..start + 100))
            .and_then(|()| w.commit());
        match result {
            Ok(rows) => println!("@ACK {rows}"),
            Err(e) => {
                println!("@ERROR {:?} {e}", e.io_kind());
                assert!(matches!(w.commit(), Err(Error::Poisoned { .. })));
                return;
            }
        }
    }
}

/// A file-size limit (`ulimit -f`, SIGXFSZ ignored) on the real file system:
/// the writer gets `EFBIG` (`FileTooLarge`), its committed rows are intact,
/// and without the limit appending works again.
#[test]
fn file_size_limit_efbig() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npy");
    let exe = std::env::current_exe().unwrap();
    // 128 blocks of 512 bytes: the 64 KiB limit is reached after a few commits.
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 128 && exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([
            "--exact",
            "child_appends_until_efbig",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let acked = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@ACK "))
        .map(|n| n.trim().parse::<u64>().unwrap())
        .max()
        .unwrap();
    let error = stdout
        .lines()
        .find(|l| l.starts_with("@ERROR "))
        .unwrap_or_else(|| panic!("the child never hit the limit:\n{stdout}"));
    assert!(
        error.starts_with("@ERROR Some(FileTooLarge)"),
        "expected EFBIG, got: {error}"
    );
    assert!(acked > 0 && std::fs::metadata(&path).unwrap().len() <= 128 * 512);
    let run = Run {
        acked,
        boundaries: (0..=acked).step_by(100).collect(),
        failure: None,
    };
    let rows = reopen_and_check(
        &FsBackend,
        &path,
        Durability::Fsync,
        &run,
        |p| std::fs::read(p).ok(),
        "after EFBIG",
    );
    println!(
        "io_errors: EFBIG after {acked} acknowledged rows ({error}); reopened at {rows} rows and appended"
    );
}
