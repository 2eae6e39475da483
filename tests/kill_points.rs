//! A writer process SIGKILLed exactly at each step of creation, commit,
//! close, reopening and recovery, under both durabilities.
//!
//! The writer (`child_kill_point`, which does nothing unless
//! `NPY_APPEND_KP_CHILD` is set) runs one fixed script through a backend
//! that wraps `FsBackend`, counts every operation that changes a file or a
//! directory (create, write, set_len, sync, remove, directory sync), prints
//! it, and SIGKILLs its own process right after the operation whose number
//! it was given. A clean run records the operation sequence; each position
//! in it gets a name such as `commit/after-record-write` (the script phase,
//! then what the operation did). The test then kills the writer after
//! every one of them, recovers in this process with `open_or_recover`, and
//! checks:
//!
//! - the writer died by SIGKILL right after the intended operation, having
//!   done the same operations as the clean run up to there;
//! - recovery succeeds with exactly the expected rows: inside a commit, the
//!   previous commit until the journal record is written and the commit in
//!   flight from then on (a kill loses no completed write, so the record
//!   alone decides); elsewhere the last commit;
//! - every row holds its value, the header's shape equals the rows and the
//!   file ends there; recovering again changes nothing; `close` leaves no
//!   journal; numpy loads every recovered file.
//!
//! The script's phases: `create` a file; `commit` buffered rows;
//! `append-direct` rows larger than the buffer (written at once) and
//! `commit-direct` them; `close`; `open-clean` (a journal for a clean file);
//! `commit-reopened`; `append-uncommitted` and drop. The script then breaks
//! the file as a power loss may (a stale header; under Process durability
//! the last commit's rows damaged) and goes on: `recover` (cut, header
//! rewrite, and under Process durability the re-anchoring record),
//! `commit-recovered`, `close-recovered`; `discard-torn-journal` (a torn
//! journal next to the clean file), `close-discarded`; and for a second
//! file, `b-create`, then with its `.npy` removed `b-recover-creation`
//! (recovery creates it from the journal), `b-commit`, `b-close`. The clean
//! run's operations are also checked against the documented protocol order
//! (for example data, data sync, record, journal sync, header in a commit).
//!
//! Each test prints a table of the points and their outcomes.
#![cfg(unix)]

mod support;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use npy_append::storage::{Backend, FsBackend, FsFile, OpenMode, Storage};
use npy_append::{AppendOptions, Appender, Durability, Found};
use support::u64rows::{ROW, ROW_BYTES, read_npy_header, rows, verify_file};

const CHILD_ENV: &str = "NPY_APPEND_KP_CHILD";
const DURABILITY_ENV: &str = "NPY_APPEND_KP_DURABILITY";
const KILL_AT_ENV: &str = "NPY_APPEND_KP_KILL_AT";
/// Prefix of the lines the writer prints, to tell them from libtest's output.
const TAG: &str = "@npy-kp ";

/// The writer's append buffer: 64 rows, so an append of 100 rows goes to the
/// file at once and one of 10 waits for the commit.
const BUFFER_BYTES: usize = 64 * ROW_BYTES as usize;

/// Rows committed by the script's first three commits.
const FIRST: u64 = 10;
const SECOND: u64 = 110;
const THIRD: u64 = 117;
/// Rows appended by the last commit, after recovery.
const LAST: u64 = 3;
/// Rows committed to the second file, whose creation is recovered.
const SECOND_FILE: u64 = 5;

/// The script's second file, next to the first: `<stem>-b.npy`. The phases
/// working on it are named `b-...`.
fn second_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap().to_string_lossy();
    path.with_file_name(format!("{stem}-b.npy"))
}

/// Prints one tagged line and flushes it, so it is in the pipe before a kill.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    writeln!(out, "{TAG}{line}").unwrap();
    out.flush().unwrap();
}

fn durability_name(d: Durability) -> &'static str {
    if d == Durability::Fsync {
        "fsync"
    } else {
        "process"
    }
}

// ---------------------------------------------------------------------------
// The counting backend.

/// Shared by the backend and its files: the operation counter, the script
/// phase, and the operation after which to die.
struct Counter {
    ops: AtomicU64,
    phase: Mutex<&'static str>,
    kill_at: Option<u64>,
}

impl Counter {
    /// Records a completed operation; dies when it is the chosen one.
    fn done(&self, what: &str) {
        let index = self.ops.fetch_add(1, Ordering::SeqCst);
        let phase = *self.phase.lock().unwrap();
        say(&format!("op {index} {phase} {what}"));
        if self.kill_at == Some(index) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
}

#[derive(Clone)]
struct KillBackend {
    inner: FsBackend,
    counter: Arc<Counter>,
}

impl KillBackend {
    fn set_phase(&self, phase: &'static str) {
        *self.counter.phase.lock().unwrap() = phase;
    }
}

/// Which of the two files a handle is.
fn kind_of(path: &Path) -> &'static str {
    if path.to_string_lossy().ends_with(".journal") {
        "journal"
    } else {
        "npy"
    }
}

struct KillFile {
    inner: FsFile,
    kind: &'static str,
    counter: Arc<Counter>,
    /// What the last write since the last sync was, to name the sync.
    dirty: Mutex<Option<&'static str>>,
}

impl KillFile {
    fn sync(&self, result: io::Result<()>) -> io::Result<()> {
        result?;
        let what = match self.dirty.lock().unwrap().take() {
            Some("data-write") => "data-sync",
            Some("header-write") => "header-sync",
            Some("data-cut") => "cut-sync",
            Some(_) => "journal-sync",
            None => {
                if self.kind == "npy" {
                    "npy-sync"
                } else {
                    "journal-sync"
                }
            }
        };
        self.counter.done(what);
        Ok(())
    }

    fn changed(&self, what: &'static str) {
        *self.dirty.lock().unwrap() = Some(what);
        self.counter.done(what);
    }
}

impl Storage for KillFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        // The header ends where the file's header says (a commit rewrites
        // bytes anywhere up to there); a file without one yet is being
        // given its header.
        let mut prefix = [0u8; 12];
        let header_len = self
            .inner
            .read_at(&mut prefix, 0)
            .ok()
            .and_then(|()| npy_append::format::header::parse_prefix(&prefix).ok())
            .map_or(64, |(_, len)| len);
        self.inner.write_at(buf, offset)?;
        let what = match (self.kind, offset) {
            ("npy", o) if o < header_len => "header-write",
            ("npy", _) => "data-write",
            (_, 0) => "journal-identity-write",
            _ => "record-write",
        };
        self.changed(what);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        self.changed(if self.kind == "npy" {
            "data-cut"
        } else {
            "journal-set-len"
        });
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync(self.inner.sync_data())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync(self.inner.sync_all())
    }

    fn try_lock(&self) -> io::Result<bool> {
        self.inner.try_lock()
    }
}

impl Backend for KillBackend {
    type File = KillFile;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<KillFile> {
        let inner = self.inner.open(path, mode)?;
        let kind = kind_of(path);
        if mode == OpenMode::CreateNew {
            self.counter.done(if kind == "npy" {
                "npy-create"
            } else {
                "journal-create"
            });
        }
        Ok(KillFile {
            inner,
            kind,
            counter: Arc::clone(&self.counter),
            dirty: Mutex::new(None),
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)?;
        self.counter.done(if kind_of(path) == "npy" {
            "npy-remove"
        } else {
            "journal-remove"
        });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)?;
        self.counter.done("rename");
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)?;
        self.counter.done("dir-sync");
        Ok(())
    }

    fn is_same_file(&self, file: &KillFile, path: &Path) -> io::Result<bool> {
        self.inner.is_same_file(&file.inner, path)
    }
}

// ---------------------------------------------------------------------------
// The writer's script.

/// The rows recovery must find after the script broke the file between its
/// `append-uncommitted` and `recover` phases: under Fsync the last commit;
/// under Process the commit before it, since the script damaged the last
/// commit's rows as a power loss may (their data was never synced).
fn recovered(durability: Durability) -> u64 {
    if durability == Durability::Fsync {
        THIRD
    } else {
        SECOND
    }
}

/// The rows a recovery must find after a kill in `phase`, before or after
/// the phase's journal record was written.
fn expected_rows(phase: &str, record_written: bool, durability: Durability) -> u64 {
    let r = recovered(durability);
    let (before, after) = match phase {
        "create" => (0, 0),
        "commit" => (0, FIRST),
        "append-direct" => (FIRST, FIRST),
        "commit-direct" => (FIRST, SECOND),
        "close" | "open-clean" => (SECOND, SECOND),
        "commit-reopened" => (SECOND, THIRD),
        "append-uncommitted" => (THIRD, THIRD),
        "recover" => (r, r),
        "commit-recovered" => (r, r + LAST),
        "close-recovered" | "discard-torn-journal" | "close-discarded" => (r + LAST, r + LAST),
        "b-create" | "b-recover-creation" => (0, 0),
        "b-commit" => (0, SECOND_FILE),
        "b-close" => (SECOND_FILE, SECOND_FILE),
        other => panic!("unknown phase {other}"),
    };
    if record_written { after } else { before }
}

/// Makes the file look as a power loss may leave it: the header of an older
/// commit (its rewrite lost), and under Process durability the last
/// commit's rows damaged (never synced). Plain file I/O: not a step of the
/// library.
fn break_file(path: &Path, durability: Durability) {
    let mut bytes = std::fs::read(path).unwrap();
    let (header_len, _, shape) = read_npy_header(&bytes);
    assert_eq!(shape, vec![THIRD, ROW], "before breaking the file");
    // The text after the magic, version and length field.
    let start = if bytes[6] == 1 { 10 } else { 12 };
    let text = std::str::from_utf8(&bytes[start..header_len as usize])
        .unwrap()
        .to_owned();
    let old = format!("({THIRD}, {ROW}), }}");
    let new = format!("({FIRST}, {ROW}), }} ");
    assert_eq!(old.len(), new.len());
    let stale = text.replacen(&old, &new, 1);
    assert_ne!(stale, text, "header {text:?}");
    bytes[start..header_len as usize].copy_from_slice(stale.as_bytes());
    if durability == Durability::Process {
        let at = (header_len + (THIRD - 2) * ROW_BYTES) as usize;
        bytes[at] ^= 0xff;
    }
    std::fs::write(path, bytes).unwrap();
}

/// The writer process; returns at once in a normal test run.
#[test]
fn child_kill_point() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let durability = match std::env::var(DURABILITY_ENV).unwrap().as_str() {
        "fsync" => Durability::Fsync,
        "process" => Durability::Process,
        other => panic!("unknown durability {other}"),
    };
    let kill_at = std::env::var(KILL_AT_ENV)
        .ok()
        .map(|s| s.parse::<u64>().unwrap());
    let backend = KillBackend {
        inner: FsBackend,
        counter: Arc::new(Counter {
            ops: AtomicU64::new(0),
            phase: Mutex::new("create"),
            kill_at,
        }),
    };
    let options = || {
        AppendOptions::new()
            .durability(durability)
            .buffer_bytes(BUFFER_BYTES)
    };

    backend.set_phase("create");
    let mut w = options()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[ROW])
        .open_with(backend.clone(), &path)
        .unwrap();
    assert_eq!(w.report().found, Found::NoFile);
    backend.set_phase("commit");
    w.append(&rows(0, FIRST)).unwrap();
    assert_eq!(w.commit().unwrap(), FIRST);
    backend.set_phase("append-direct");
    w.append(&rows(FIRST, SECOND - FIRST)).unwrap();
    backend.set_phase("commit-direct");
    assert_eq!(w.commit().unwrap(), SECOND);
    backend.set_phase("close");
    assert_eq!(w.close().unwrap(), SECOND);

    backend.set_phase("open-clean");
    let mut w = options().open_with(backend.clone(), &path).unwrap();
    assert_eq!((w.report().found, w.len()), (Found::Clean, SECOND));
    backend.set_phase("commit-reopened");
    w.append(&rows(SECOND, THIRD - SECOND)).unwrap();
    assert_eq!(w.commit().unwrap(), THIRD);
    backend.set_phase("append-uncommitted");
    w.append(&rows(THIRD, 150)).unwrap();
    drop(w); // without close: like a crash, the rows stay uncommitted

    break_file(&path, durability);
    backend.set_phase("recover");
    let mut w = options().open_with(backend.clone(), &path).unwrap();
    let r = recovered(durability);
    assert_eq!((w.report().found, w.len()), (Found::Journal, r));
    backend.set_phase("commit-recovered");
    w.append(&rows(r, LAST)).unwrap();
    assert_eq!(w.commit().unwrap(), r + LAST);
    backend.set_phase("close-recovered");
    assert_eq!(w.close().unwrap(), r + LAST);

    // A torn journal next to the clean file (its writer died while creating
    // it): opening removes it and makes a new one.
    std::fs::write(npy_append::journal_path(&path), b"NPYAJ").unwrap();
    backend.set_phase("discard-torn-journal");
    let w = options().open_with(backend.clone(), &path).unwrap();
    assert!(w.report().journal_discarded, "{}", w.report());
    assert_eq!(w.len(), r + LAST);
    backend.set_phase("close-discarded");
    assert_eq!(w.close().unwrap(), r + LAST);

    // A second file whose writer died between creating the journal and the
    // `.npy`: recovery creates the `.npy` from the journal's snapshot.
    let b = second_path(&path);
    backend.set_phase("b-create");
    let w = options()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[ROW])
        .open_with(backend.clone(), &b)
        .unwrap();
    drop(w);
    std::fs::remove_file(&b).unwrap();
    backend.set_phase("b-recover-creation");
    let mut w = options().open_with(backend.clone(), &b).unwrap();
    assert_eq!(w.len(), 0);
    backend.set_phase("b-commit");
    w.append(&rows(0, SECOND_FILE)).unwrap();
    assert_eq!(w.commit().unwrap(), SECOND_FILE);
    backend.set_phase("b-close");
    assert_eq!(w.close().unwrap(), SECOND_FILE);
    say("done");
}

// ---------------------------------------------------------------------------
// Checking.

/// One counted operation of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Op {
    phase: String,
    what: String,
}

/// What one writer run printed: its operations in order, and whether it
/// finished the script.
fn run_writer(path: &Path, durability: Durability, kill_at: Option<usize>) -> (Vec<Op>, bool) {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args([
            "--exact",
            "child_kill_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .env(DURABILITY_ENV, durability_name(durability))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = kill_at {
        command.env(KILL_AT_ENV, k.to_string());
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut ops = Vec::new();
    let mut done = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let Some((_, msg)) = line.split_once(TAG) else {
            continue;
        };
        let words: Vec<&str> = msg.split(' ').collect();
        match words.as_slice() {
            ["op", index, phase, what] => {
                assert_eq!(index.parse::<usize>().unwrap(), ops.len(), "op numbers");
                ops.push(Op {
                    phase: (*phase).to_owned(),
                    what: (*what).to_owned(),
                });
            }
            ["done"] => done = true,
            _ => panic!("unexpected writer line {line:?}"),
        }
    }
    let status = child.wait().unwrap();
    let stderr = err_reader.join().unwrap();
    match kill_at {
        None => assert!(
            status.success() && done,
            "the clean {} run failed ({status}):\n{stderr}",
            durability_name(durability)
        ),
        Some(k) => assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the writer to be killed after op {k} ended with {status}:\n{stderr}"
        ),
    }
    (ops, done)
}

/// Names each position: `<phase>/after-<operation>`, with `#2`, `#3`... when
/// an operation repeats within a phase. A journal record written by
/// recovery is the re-anchoring record.
fn point_names(trace: &[Op]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for op in trace {
        let what = match (op.phase.as_str(), op.what.as_str()) {
            ("recover", "record-write") => "reanchor-record-write",
            (_, what) => what,
        };
        let base = format!("{}/after-{what}", op.phase);
        let seen = names
            .iter()
            .filter(|n| n.split('#').next() == Some(base.as_str()))
            .count();
        names.push(if seen == 0 {
            base
        } else {
            format!("{base}#{}", seen + 1)
        });
    }
    names
}

/// The operations of `phase`, in order.
fn phase_ops<'a>(trace: &'a [Op], phase: &str) -> Vec<&'a str> {
    trace
        .iter()
        .filter(|op| op.phase == phase)
        .map(|op| op.what.as_str())
        .collect()
}

/// The operations of a commit `phase`, its header writes (one, or several:
/// `header::update_writes`) as one `header-write`.
fn commit_ops<'a>(trace: &'a [Op], phase: &str) -> Vec<&'a str> {
    let mut ops = phase_ops(trace, phase);
    ops.dedup_by(|a, b| *a == "header-write" && *b == "header-write");
    ops
}

/// Checks that the clean run followed the documented protocol, so that the
/// named points are the ones the design describes.
fn check_protocol(trace: &[Op], durability: Durability) {
    let fsync = durability == Durability::Fsync;
    let commit: &[&str] = if fsync {
        &[
            "data-write",
            "data-sync",
            "record-write",
            "journal-sync",
            "header-write",
        ]
    } else {
        &["data-write", "record-write", "header-write"]
    };
    assert_eq!(commit_ops(trace, "commit"), commit, "commit");
    assert_eq!(
        phase_ops(trace, "append-direct"),
        ["data-write"],
        "append-direct"
    );
    assert_eq!(
        commit_ops(trace, "commit-direct"),
        &commit[1..],
        "a commit whose rows are already written"
    );
    assert_eq!(
        commit_ops(trace, "commit-reopened"),
        commit,
        "commit-reopened"
    );
    assert_eq!(
        commit_ops(trace, "commit-recovered"),
        commit,
        "commit-recovered"
    );
    assert_eq!(
        phase_ops(trace, "append-uncommitted"),
        ["data-write"],
        "append-uncommitted"
    );
    // Creation: the journal first (created, written, synced with its
    // directory), then the `.npy` (created, header written and synced,
    // directory synced).
    let create = phase_ops(trace, "create");
    assert_eq!(
        create,
        [
            "journal-create",
            "journal-identity-write",
            "journal-sync",
            "dir-sync",
            "npy-create",
            "header-write",
            "header-sync",
            "dir-sync"
        ],
        "create"
    );
    // Close: the `.npy` durable (named by what was written to it since its
    // last sync: the header of the last commit, or nothing), then the
    // journal removed and its removal synced.
    for phase in ["close", "close-recovered", "close-discarded", "b-close"] {
        let ops = phase_ops(trace, phase);
        assert!(
            matches!(
                ops.as_slice(),
                ["header-sync" | "npy-sync", "journal-remove", "dir-sync"]
            ),
            "{phase}: {ops:?}"
        );
    }
    assert_eq!(phase_ops(trace, "b-create"), create, "b-create");
    assert_eq!(commit_ops(trace, "b-commit"), commit, "b-commit");
    // The torn journal is removed before the new one is created; the new
    // one is made durable with its directory entry.
    let discard = phase_ops(trace, "discard-torn-journal");
    assert!(
        discard.first() == Some(&"journal-remove")
            && discard.contains(&"journal-create")
            && discard.ends_with(&["journal-sync", "dir-sync"]),
        "discard-torn-journal: {discard:?}"
    );
    // Recovering a creation creates the `.npy` and its header, durably.
    let creation = phase_ops(trace, "b-recover-creation");
    for step in ["npy-create", "header-write", "header-sync", "dir-sync"] {
        assert!(
            creation.contains(&step),
            "b-recover-creation has no {step}: {creation:?}"
        );
    }
    // Recovery cuts the uncommitted rows and rewrites the stale header; under
    // Process durability it also re-anchors the journal on the older record.
    let recover = phase_ops(trace, "recover");
    for step in ["data-cut", "header-write"] {
        assert!(
            recover.contains(&step),
            "recover has no {step}: {recover:?}"
        );
    }
    assert_eq!(
        recover.contains(&"record-write"),
        !fsync,
        "re-anchoring in recovery: {recover:?}"
    );
}

struct Outcome {
    point: String,
    rows: u64,
    /// "last commit", "previous commit" or "commit in flight".
    kind: &'static str,
    summary: String,
}

/// Serializes the two tests: a process spawned by one test's thread holds,
/// between its fork and its exec, a copy of every descriptor of this
/// process, and with it the flock of a file the other test just closed, so
/// that reopening it would find it locked.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn kill_at_every_point(durability: Durability) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let name = durability_name(durability);
    let dir = tempfile::Builder::new()
        .prefix("kill-points-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let started = std::time::Instant::now();

    let clean = dir.path().join("clean.npy");
    let (trace, _) = run_writer(&clean, durability, None);
    let expected_final = recovered(durability) + LAST;
    for (file, rows) in [
        (clean.clone(), expected_final),
        (second_path(&clean), SECOND_FILE),
    ] {
        verify_file(&file, rows, &format!("{name}: clean run"));
        assert!(
            !npy_append::journal_path(&file).exists(),
            "{name}: clean run left a journal"
        );
    }
    check_protocol(&trace, durability);
    let names = point_names(&trace);

    let mut outcomes = Vec::new();
    let mut samples = Vec::new();
    for (k, point) in names.iter().enumerate() {
        let context = format!("{name}: kill at {point} (op {k})");
        let first = dir.path().join(format!("kill-{k}.npy"));
        let (ops, done) = run_writer(&first, durability, Some(k));
        assert!(!done, "{context}: the writer finished");
        assert_eq!(
            ops.len(),
            k + 1,
            "{context}: the writer died after op {}",
            ops.len()
        );
        assert_eq!(
            ops[..],
            trace[..=k],
            "{context}: the operations differ from the clean run"
        );

        let op = &trace[k];
        let path = if op.phase.starts_with("b-") {
            // The first file is closed by then.
            verify_file(&first, expected_final, &format!("{context}: first file"));
            assert!(!npy_append::journal_path(&first).exists(), "{context}");
            second_path(&first)
        } else {
            first
        };
        let record_written = trace[..=k]
            .iter()
            .any(|o| o.phase == op.phase && o.what == "record-write");
        let expected = expected_rows(&op.phase, record_written, durability);
        let kind = if expected_rows(&op.phase, false, durability)
            == expected_rows(&op.phase, true, durability)
        {
            "last commit"
        } else if record_written {
            "commit in flight"
        } else {
            "previous commit"
        };

        let journal = npy_append::journal_path(&path);
        let w = Appender::open_or_recover(&path)
            .unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"));
        let rows = w.len();
        let report = w.report().clone();
        assert_eq!(
            rows, expected,
            "{context}: {rows} rows recovered, expected {expected} ({report})"
        );
        assert_eq!(report.committed_rows, rows, "{context}: {report}");
        assert_eq!(w.pending_rows(), 0, "{context}");
        if path.exists() {
            verify_file(&path, rows, &context);
        } else {
            assert_eq!(rows, 0, "{context}: rows without a file");
        }
        let summary = format!("{report}");
        // Recovering again finds the recovered state and changes nothing.
        drop(w);
        let w = Appender::open_or_recover(&path)
            .unwrap_or_else(|e| panic!("{context}: second recovery failed: {e}"));
        let again = w.report().clone();
        assert_eq!(w.len(), rows, "{context}: second recovery ({again})");
        assert!(
            again.bytes_cut == 0 && !again.header_rewritten && again.dropped_rows == 0,
            "{context}: the second recovery changed the file again: {again}"
        );
        let n = w
            .close()
            .unwrap_or_else(|e| panic!("{context}: close failed: {e}"));
        assert_eq!(n, rows, "{context}: close");
        assert!(!journal.exists(), "{context}: journal left after close");
        if path.exists() {
            verify_file(&path, rows, &format!("{context}, after close"));
            samples.push((path, rows));
        }
        outcomes.push(Outcome {
            point: point.clone(),
            rows,
            kind,
            summary,
        });
    }

    let width = names.iter().map(String::len).max().unwrap_or(0);
    println!(
        "kill_points ({name}): {} points killed and recovered in {:.1} s",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    for o in &outcomes {
        println!(
            "  {:<width$}  {:>4} rows  {:<16}  {}",
            o.point, o.rows, o.kind, o.summary
        );
    }
    let count = |kind: &str| outcomes.iter().filter(|o| o.kind == kind).count();
    println!(
        "kill_points ({name}): kills inside a commit: {} kept the commit in flight, {} the \
         previous commit; {} elsewhere kept the last commit",
        count("commit in flight"),
        count("previous commit"),
        count("last commit")
    );

    let Some(py) = support::require_numpy(&format!("kill_points_{name}")) else {
        return;
    };
    let mut args: Vec<String> = Vec::new();
    for (path, rows) in &samples {
        args.push(path.display().to_string());
        args.push(rows.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::run_python(
        &py,
        r"
import sys
import numpy as np
args = sys.argv[1:]
for k in range(0, len(args), 2):
    path, rows = args[k], int(args[k + 1])
    expected = np.arange(rows * 16, dtype=np.uint64).reshape(rows, 16)
    for mode in (None, 'r'):
        a = np.load(path, mmap_mode=mode)
        assert a.dtype == np.dtype('<u8'), (path, a.dtype)
        assert a.shape == (rows, 16), (path, a.shape, rows)
        assert np.array_equal(a, expected), path
print('numpy read', len(args) // 2, 'files')
",
        &args,
    );
    assert!(
        out.contains(&format!("numpy read {} files", samples.len())),
        "numpy check printed {out:?}"
    );
    println!("kill_points ({name}): {}", out.trim());
}

#[test]
fn kill_at_every_point_fsync() {
    kill_at_every_point(Durability::Fsync);
}

#[test]
fn kill_at_every_point_process() {
    kill_at_every_point(Durability::Process);
}
