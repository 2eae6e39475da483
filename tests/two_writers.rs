//! One writer per file: a second writer, in the same process or another one,
//! gets `Error::Locked` at once (or after its `LockWait`), changes nothing,
//! and the first writer goes on unaffected. A killed writer's lock is
//! released by the kernel.
//!
//! Cross-process cases re-execute this test binary as the holding writer
//! (`child_holder`, which does nothing unless `NPY_APPEND_HOLDER` is set); it
//! takes commands on stdin and reports on stdout.
#![cfg(unix)]

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use npy_append::storage::{Backend, FsBackend, FsFile, OpenMode, Storage};
use npy_append::{AppendOptions, Appender, Durability, Error, LockWait};

const HOLDER_ENV: &str = "NPY_APPEND_HOLDER";
const TAG: &str = "@npy-holder ";
/// Values per row.
const ROW: u64 = 16;
/// "At once": far above any real lock attempt, far below any wait.
const AT_ONCE: Duration = Duration::from_secs(2);

/// Rows `start..start + n` of the test data: value `j` of row `i` is `16 * i + j`.
fn rows(start: u64, n: u64) -> Vec<u64> {
    (start * ROW..(start + n) * ROW).collect()
}

fn options() -> AppendOptions {
    AppendOptions::new().dtype("<u8").unwrap().row_shape(&[ROW])
}

/// Reopens `path` after its writer was dropped (a crash). Waits for the
/// lock: a child process another test spawns may hold a copy of the dropped
/// writer's descriptor (and its lock) between its fork and its exec.
fn reopen(path: &Path) -> Result<Appender, Error> {
    AppendOptions::new()
        .lock_wait(LockWait::Wait(std::time::Duration::from_secs(10)))
        .open(path)
}

/// Appends `n` rows after the committed ones and commits; returns the rows.
fn append_commit(w: &mut Appender, n: u64) -> u64 {
    let start = w.len();
    w.append(&rows(start, n)).unwrap();
    let committed = w.commit().unwrap();
    assert_eq!(committed, start + n);
    committed
}

/// Checks the `.npy` at `path` holds exactly `rows` rows of the test data,
/// reading it with std only (header parsed here, not by the library).
fn verify_file(path: &Path, rows: u64) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY", "bad magic");
    let (len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header_len = start + len;
    let text = std::str::from_utf8(&bytes[start..header_len]).unwrap();
    let expected_shape = format!("'shape': ({rows}, {ROW}), ");
    assert!(
        text.contains(&expected_shape),
        "header {text:?}, expected {expected_shape}"
    );
    assert!(text.contains("'descr': '<u8'"), "header {text:?}");
    assert_eq!(
        bytes.len() as u64,
        header_len as u64 + rows * ROW * 8,
        "file length"
    );
    for (k, word) in bytes[header_len..].chunks_exact(8).enumerate() {
        let got = u64::from_le_bytes(word.try_into().unwrap());
        assert_eq!(
            got,
            k as u64,
            "value {k} (row {}, column {})",
            k as u64 / ROW,
            k as u64 % ROW
        );
    }
}

/// The `.npy` and its journal, byte for byte.
fn snapshot(path: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        std::fs::read(path).unwrap(),
        std::fs::read(npy_append::journal_path(path)).ok(),
    )
}

/// Opens `path` as a second writer, expecting `Locked`; returns how long it took.
fn expect_locked(path: &Path, options: AppendOptions) -> Duration {
    let started = Instant::now();
    let result = options.open(path);
    let elapsed = started.elapsed();
    match result {
        Err(Error::Locked { path: p }) => {
            assert_eq!(p, path, "Locked names the file");
            let message = Error::Locked { path: p }.to_string();
            assert!(message.contains("another writer"), "message: {message}");
        }
        Err(e) => panic!("second writer: expected Locked, got {e:?}"),
        Ok(w) => panic!("second writer opened a locked file ({} rows)", w.len()),
    }
    elapsed
}

#[test]
fn second_writer_in_the_same_process_is_locked_out_and_the_first_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut first = options().open(&path).unwrap();
    append_commit(&mut first, 100);
    // Pending, uncommitted rows written to the file (over the 1 MiB buffer).
    first.append(&rows(100, 10_000)).unwrap();

    let before = snapshot(&path);
    for second in [
        AppendOptions::new(),
        options(),
        AppendOptions::new().lock_wait(LockWait::Fail),
    ] {
        let elapsed = expect_locked(&path, second);
        assert!(elapsed < AT_ONCE, "Locked took {elapsed:?}");
    }
    match Appender::open_or_recover(&path) {
        Err(Error::Locked { .. }) => {}
        other => panic!(
            "open_or_recover: expected Locked, got {:?}",
            other.map(|w| w.len())
        ),
    }
    assert!(
        before == snapshot(&path),
        "a locked-out writer changed the file or its journal"
    );

    // The first writer is unaffected.
    assert_eq!(first.commit().unwrap(), 10_100);
    append_commit(&mut first, 37);
    first.append(&rows(10_137, 3)).unwrap();
    assert_eq!(first.close().unwrap(), 10_140);
    assert!(!npy_append::journal_path(&path).exists());
    verify_file(&path, 10_140);

    // Now free: a new writer opens it at once and resumes (waiting only
    // out a process another test thread is starting, which holds a copy of
    // our descriptors until it calls `exec`).
    let mut third = AppendOptions::new()
        .lock_wait(LockWait::Wait(AT_ONCE))
        .open(&path)
        .unwrap();
    assert_eq!(third.len(), 10_140);
    append_commit(&mut third, 60);
    assert_eq!(third.close().unwrap(), 10_200);
    verify_file(&path, 10_200);
}

#[test]
fn two_writers_of_a_new_file_only_one_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.npy");
    // Neither has created the file yet (dtype from the first append).
    let mut a = AppendOptions::new().row_shape(&[ROW]).open(&path).unwrap();
    let mut b = AppendOptions::new().row_shape(&[ROW]).open(&path).unwrap();
    a.append(&rows(0, 10)).unwrap();
    match b.append(&rows(0, 5)) {
        Err(Error::Locked { .. }) => {}
        other => panic!("second creator: expected Locked, got {other:?}"),
    }
    drop(b);
    assert!(
        npy_append::journal_path(&path).exists(),
        "the loser removed the winner's journal"
    );
    assert_eq!(a.commit().unwrap(), 10);
    append_commit(&mut a, 5);
    assert_eq!(a.close().unwrap(), 15);
    verify_file(&path, 15);
}

/// Four threads create the same new file at the same instant, many times:
/// exactly one wins, the other gets `Locked`, and the winner keeps a working
/// journal (a crash of the winner is recovered to its last commit).
#[test]
fn racing_creators_leave_one_writer_with_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let rounds: usize =
        std::env::var("NPY_APPEND_RACE_ROUNDS").map_or(1000, |s| s.parse().unwrap());
    let mut problems = Vec::new();
    for round in 0..rounds {
        let path = dir.path().join(format!("race-{round}.npy"));
        // Four racers on two cores: preemption inside open() is likely.
        let racers = 4;
        let durability = if round % 2 == 0 {
            Durability::Fsync
        } else {
            Durability::Process
        };
        let barrier = Arc::new(Barrier::new(racers));
        let threads: Vec<_> = (0..racers)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    options().durability(durability).open(&path)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let mut winners = Vec::new();
        for result in results {
            match result {
                Ok(w) => winners.push(w),
                Err(Error::Locked { .. }) => {}
                Err(e) => problems.push(format!("round {round}: a racing creator failed: {e}")),
            }
        }
        if winners.len() != 1 {
            problems.push(format!(
                "round {round}: {} writers won the race",
                winners.len()
            ));
            continue;
        }
        let mut w = winners.pop().unwrap();
        append_commit(&mut w, 20);
        if !npy_append::journal_path(&path).exists() {
            problems.push(format!(
                "round {round}: the winner's journal is gone (removed by the loser)"
            ));
        }
        if let Some(fd) = deleted_open_journal(&path) {
            problems.push(format!(
                "round {round}: the winner commits to an unlinked journal ({fd}): \
                 the journal at the path is another one"
            ));
        }
        // Uncommitted rows reach the file (over the buffer), then the writer
        // "crashes": recovery must cut them.
        w.append(&rows(20, 10_000)).unwrap();
        drop(w);
        match reopen(&path) {
            Ok(w) if w.len() == 20 => {
                drop(w);
                verify_file(&path, 20);
            }
            Ok(w) => problems.push(format!(
                "round {round}: recovery after a crash of the winner found {} rows, not the 20 committed ({})",
                w.len(),
                w.report()
            )),
            Err(e) => problems.push(format!(
                "round {round}: recovery after a crash of the winner failed: {e}"
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems in {rounds} rounds:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// An open file descriptor of this process on a journal of `path` that was
/// unlinked (Linux `/proc/self/fd` shows it as "... (deleted)").
fn deleted_open_journal(path: &Path) -> Option<String> {
    let journal = npy_append::journal_path(path);
    let deleted = format!("{} (deleted)", journal.display());
    std::fs::read_dir("/proc/self/fd").ok()?.find_map(|entry| {
        let target = std::fs::read_link(entry.ok()?.path()).ok()?;
        (target.to_string_lossy() == deleted).then(|| target.display().to_string())
    })
}

#[test]
fn lock_wait_succeeds_when_the_first_writer_closes_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.npy");
    let mut first = options().open(&path).unwrap();
    append_commit(&mut first, 500);
    first.append(&rows(500, 20)).unwrap();
    let wait = Duration::from_secs(20);
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let closing = Instant::now();
        (first.close().unwrap(), closing)
    });
    let started = Instant::now();
    let mut second = options()
        .lock_wait(LockWait::Wait(wait))
        .open(&path)
        .unwrap_or_else(|e| panic!("waiting writer failed: {e}"));
    let acquired = Instant::now();
    let (closed_rows, closing) = closer.join().unwrap();
    assert_eq!(closed_rows, 520);
    assert!(
        acquired >= closing,
        "the waiting writer got in {:?} before the first started closing",
        closing - acquired
    );
    assert!(acquired - started < wait, "waited the whole {wait:?}");
    // It sees everything the first committed, including the commit in close().
    assert_eq!(second.len(), 520);
    append_commit(&mut second, 80);
    assert_eq!(second.close().unwrap(), 600);
    verify_file(&path, 600);
}

#[test]
fn lock_wait_times_out_with_locked_and_the_first_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.npy");
    let mut first = options().open(&path).unwrap();
    append_commit(&mut first, 64);
    let before = snapshot(&path);
    for wait in [Duration::from_millis(50), Duration::from_millis(400)] {
        let elapsed = expect_locked(&path, options().lock_wait(LockWait::Wait(wait)));
        assert!(
            elapsed >= wait,
            "gave up after {elapsed:?}, before the {wait:?} wait"
        );
        assert!(
            elapsed < wait + Duration::from_secs(10),
            "waited {elapsed:?} for {wait:?}"
        );
    }
    assert!(
        before == snapshot(&path),
        "a timed-out writer changed the file or its journal"
    );
    append_commit(&mut first, 36);
    assert_eq!(first.close().unwrap(), 100);
    verify_file(&path, 100);
}

/// The holding writer: opens the file, commits 100 rows, reports, then obeys
/// stdin: `more` commits 50 rows, `close` closes and exits.
#[test]
fn child_holder() {
    let Some(path) = std::env::var_os(HOLDER_ENV) else {
        return;
    };
    let say = |line: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{TAG}{line}").unwrap();
        out.flush().unwrap();
    };
    let mut w = options().open(PathBuf::from(path)).unwrap();
    let n = append_commit(&mut w, 100);
    say(format!("holding {n}"));
    for line in std::io::stdin().lock().lines() {
        match line.unwrap().as_str() {
            "more" => {
                let n = append_commit(&mut w, 50);
                say(format!("committed {n}"));
            }
            "close" => {
                let n = w.close().unwrap();
                say(format!("closed {n}"));
                return;
            }
            other => panic!("unknown command {other}"),
        }
    }
}

/// A holding writer in another process.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Holder {
    fn spawn(path: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_holder", "--nocapture", "--test-threads=1"])
            .env(HOLDER_ENV, path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print "test child_holder ... " first on the same line.
                if let Some((_, msg)) = line.split_once(TAG)
                    && tx.send(msg.to_owned()).is_err()
                {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// The next report, as (word, number).
    fn hear(&mut self) -> (String, u64) {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("holder said nothing: {e} ({:?})", self.child.try_wait()));
        let (word, n) = line.split_once(' ').unwrap();
        (word.to_owned(), n.parse().unwrap())
    }

    fn tell(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn second_writer_in_another_process_is_locked_out_and_the_first_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let mut holder = Holder::spawn(&path);
    assert_eq!(holder.hear(), ("holding".to_owned(), 100));

    let before = snapshot(&path);
    let elapsed = expect_locked(&path, AppendOptions::new());
    assert!(elapsed < AT_ONCE, "Locked took {elapsed:?}");
    let elapsed = expect_locked(
        &path,
        options().lock_wait(LockWait::Wait(Duration::from_millis(200))),
    );
    assert!(
        elapsed >= Duration::from_millis(200),
        "gave up after {elapsed:?}"
    );
    assert!(
        before == snapshot(&path),
        "a locked-out writer changed the file or its journal"
    );

    // The holder goes on committing, then closes.
    holder.tell("more");
    assert_eq!(holder.hear(), ("committed".to_owned(), 150));
    expect_locked(&path, AppendOptions::new());
    holder.tell("more");
    assert_eq!(holder.hear(), ("committed".to_owned(), 200));
    holder.tell("close");
    assert_eq!(holder.hear(), ("closed".to_owned(), 200));
    let status = holder.child.wait().unwrap();
    assert!(status.success(), "holder: {status}");
    assert!(!npy_append::journal_path(&path).exists());
    verify_file(&path, 200);

    let mut w = AppendOptions::new()
        .lock_wait(LockWait::Wait(AT_ONCE))
        .open(&path)
        .unwrap();
    assert_eq!(w.len(), 200);
    append_commit(&mut w, 1);
    w.close().unwrap();
    verify_file(&path, 201);
}

#[test]
fn lock_wait_gets_the_file_when_another_process_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("y.npy");
    let mut holder = Holder::spawn(&path);
    assert_eq!(holder.hear(), ("holding".to_owned(), 100));
    let waiter = {
        let path = path.clone();
        std::thread::spawn(move || {
            let w = options()
                .lock_wait(LockWait::Wait(Duration::from_secs(30)))
                .open(&path);
            (w, Instant::now())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    holder.tell("more");
    assert_eq!(holder.hear(), ("committed".to_owned(), 150));
    let close_sent = Instant::now();
    holder.tell("close");
    assert_eq!(holder.hear(), ("closed".to_owned(), 150));
    let (w, acquired) = waiter.join().unwrap();
    let w = w.unwrap_or_else(|e| panic!("waiting writer failed: {e}"));
    assert!(
        acquired >= close_sent,
        "the waiting writer got in {:?} before the holder was told to close",
        close_sent - acquired
    );
    assert_eq!(w.len(), 150);
    w.close().unwrap();
    verify_file(&path, 150);
}

#[test]
fn a_killed_writer_releases_its_lock_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.npy");
    let mut holder = Holder::spawn(&path);
    assert_eq!(holder.hear(), ("holding".to_owned(), 100));
    holder.tell("more");
    assert_eq!(holder.hear(), ("committed".to_owned(), 150));
    expect_locked(&path, AppendOptions::new());

    holder.child.kill().unwrap(); // SIGKILL
    let status = holder.child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(
        npy_append::journal_path(&path).exists(),
        "a killed writer leaves its journal"
    );

    // No stale lock: a new writer gets in at once. (It waits up to a second
    // only for a process another test thread is starting, which holds a
    // copy of our descriptors until `exec`; a stale lock would outlast it.)
    let started = Instant::now();
    let mut w = AppendOptions::new()
        .lock_wait(LockWait::Wait(Duration::from_secs(1)))
        .open(&path)
        .unwrap_or_else(|e| panic!("after the kill: {e}"));
    assert!(started.elapsed() < AT_ONCE);
    assert_eq!(w.len(), 150);
    append_commit(&mut w, 50);
    w.close().unwrap();
    verify_file(&path, 200);
}

/// A one-shot pause: runs once, at the first call.
type Hook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

fn hook(f: impl FnOnce() + Send + 'static) -> Hook {
    Arc::new(Mutex::new(Some(Box::new(f))))
}

fn run_hook(hook: Option<&Hook>) {
    if let Some(f) = hook.and_then(|h| h.lock().unwrap().take()) {
        f();
    }
}

/// The real file system, with pauses before chosen operations, to force one
/// interleaving of two writers.
#[derive(Clone, Default)]
struct Paused {
    /// Before locking a journal this writer has just created.
    before_locking_new_journal: Option<Hook>,
    /// Before creating the `.npy`.
    before_creating_npy: Option<Hook>,
}

struct PausedFile {
    inner: FsFile,
    before_lock: Option<Hook>,
}

impl Backend for Paused {
    type File = PausedFile;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<PausedFile> {
        let journal = path.extension().is_some_and(|e| e == "journal");
        if mode == OpenMode::CreateNew && !journal {
            run_hook(self.before_creating_npy.as_ref());
        }
        let inner = FsBackend.open(path, mode)?;
        let before_lock = if mode == OpenMode::CreateNew && journal {
            self.before_locking_new_journal.clone()
        } else {
            None
        };
        Ok(PausedFile { inner, before_lock })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        FsBackend.exists(path)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        FsBackend.remove(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        FsBackend.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        FsBackend.sync_dir(dir)
    }

    fn is_same_file(&self, file: &PausedFile, path: &Path) -> io::Result<bool> {
        FsBackend.is_same_file(&file.inner, path)
    }
}

impl Storage for PausedFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_at(buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.inner.sync_all()
    }

    fn try_lock(&self) -> io::Result<bool> {
        run_hook(self.before_lock.as_ref());
        self.inner.try_lock()
    }
}

/// The interleaving `racing_creators_leave_one_writer_with_its_journal` hits
/// by chance, forced step by step:
///
/// 1. A creates the journal (empty), and pauses before locking it;
/// 2. B finds no `.npy` and an empty, unlocked journal: it locks it, takes
///    it for a crashed creation, removes it, creates its own journal, and
///    pauses before creating the `.npy`;
/// 3. A locks its journal (now unlinked: the lock protects nothing), writes
///    it, creates the `.npy` and wins;
/// 4. B's `.npy` creation fails: `Locked`, leaving its own 0-row journal.
///
/// A's commits go to a journal no one will ever read; after a crash of A,
/// recovery reads B's journal, which contradicts A's committed rows.
#[test]
fn creator_pausing_before_locking_its_journal_keeps_a_working_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paused.npy");
    // A pause never blocks for good, so a changed library cannot hang the test.
    let patience = Duration::from_secs(5);
    let (a_created, a_created_rx) = mpsc::channel::<()>();
    let (b_paused, b_paused_rx) = mpsc::channel::<()>();
    let (a_done, a_done_rx) = mpsc::channel::<()>();

    let a_backend = Paused {
        before_locking_new_journal: Some(hook(move || {
            a_created.send(()).unwrap();
            let _ = b_paused_rx.recv_timeout(patience);
        })),
        ..Paused::default()
    };
    let a = {
        let path = path.clone();
        std::thread::spawn(move || options().open_with(a_backend, &path))
    };
    a_created_rx.recv_timeout(patience).unwrap();

    let b_backend = Paused {
        before_creating_npy: Some(hook(move || {
            b_paused.send(()).unwrap();
            let _ = a_done_rx.recv_timeout(patience);
        })),
        ..Paused::default()
    };
    let b = {
        let path = path.clone();
        std::thread::spawn(move || options().open_with(b_backend, &path))
    };
    let a = a.join().unwrap();
    let _ = a_done.send(());
    let b = b.join().unwrap();

    let (mut w, loser) = match (a, b) {
        // A finds its journal replaced after locking it and yields; or A
        // wins if B backed off. Either way exactly one writer, whose
        // journal is the one at the path.
        (Ok(w), Err(e)) | (Err(e), Ok(w)) => (w, e),
        (a, b) => panic!(
            "expected one winner: A {:?}, B {:?}",
            a.map(|w| w.len()),
            b.map(|w| w.len())
        ),
    };
    assert!(
        matches!(loser, Error::Locked { .. }),
        "the loser: {loser:?}"
    );
    let start = w.len();
    w.append(&rows(start, 20)).unwrap();
    assert_eq!(w.commit().unwrap(), 20);
    let unlinked = deleted_open_journal(&path);
    drop(w); // a crash of the winner
    let recovered = reopen(&path).map(|w| w.len());
    assert!(
        unlinked.is_none() && matches!(recovered, Ok(20)),
        "the winner committed 20 rows to the journal {} and crashed; recovery: {recovered:?}",
        unlinked.as_deref().unwrap_or("at its path")
    );
    verify_file(&path, 20);
}
