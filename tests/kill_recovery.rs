//! A real writer process killed with SIGKILL at random instants, hundreds of
//! times: every recovery must succeed, keep every acknowledged commit, keep
//! nothing but whole committed rows, and leave a file numpy reads.
//!
//! The test re-executes its own binary as the writer (`child_writer`, which
//! does nothing unless `NPY_APPEND_KILL_CHILD` is set). The writer appends
//! rows of 16 `u64` whose value `j` in row `i` is `16 * i + j`, so every byte
//! of the file can be checked, and prints `committing T` before each commit
//! and `committed N` once `commit()` has returned. After each kill the parent
//! recovers the file and checks that it holds exactly the last acknowledged
//! commit or the one in flight, never anything else.
//!
//! Environment: `NPY_APPEND_KILLS` (default 200) sets the number of kills,
//! `NPY_APPEND_SEED` replays a run's random choices (the seed is printed).
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use npy_append::{AppendOptions, Appender, Durability, Found, LockWait};
use support::u64rows::{ROW, Rng, rows, seed_from_env_or_time, verify_file};

const CHILD_ENV: &str = "NPY_APPEND_KILL_CHILD";
const CHILD_SEED_ENV: &str = "NPY_APPEND_KILL_CHILD_SEED";
const CHILD_DURABILITY_ENV: &str = "NPY_APPEND_KILL_CHILD_DURABILITY";
/// Prefix of the lines the writer prints, to tell them from libtest's output.
const TAG: &str = "@npy-kill ";

/// The writer stops (closing the file) at this many rows; the parent then
/// starts a new file, so creation is killed more than once.
const MAX_ROWS: u64 = 250_000;

/// Opens after a kill. The killed writer's lock is gone, but a process that
/// another test thread is starting holds a copy of our descriptors (and so
/// of a lock we just released) until it calls `exec`: wait briefly for that.
fn reopen(path: &Path) -> npy_append::Result<Appender> {
    AppendOptions::new()
        .lock_wait(LockWait::Wait(Duration::from_secs(10)))
        .open(path)
}

/// Prints one tagged line and flushes it (one `write` of a short line to a
/// pipe is atomic, so the parent never sees half a line).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{TAG}{line}").unwrap();
    out.flush().unwrap();
}

/// The writer process; returns at once in a normal test run.
#[test]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let seed: u64 = std::env::var(CHILD_SEED_ENV).unwrap().parse().unwrap();
    let durability = match std::env::var(CHILD_DURABILITY_ENV).unwrap().as_str() {
        "fsync" => Durability::Fsync,
        "process" => Durability::Process,
        other => panic!("unknown durability {other}"),
    };
    let mut rng = Rng::new(seed);
    let open = |rng: &mut Rng| {
        say("opening");
        let w = if durability == Durability::Fsync && path.exists() && rng.below(2) == 0 {
            // The plain entry point: an existing file knows its dtype and shape.
            Appender::open_or_recover(&path).unwrap()
        } else {
            let mut options = AppendOptions::new()
                .row_shape(&[ROW])
                .durability(durability);
            if rng.below(2) == 0 {
                // Otherwise a new file takes its dtype from the first append.
                options = options.dtype("<u8").unwrap();
            }
            options.open(&path).unwrap()
        };
        assert_eq!(w.pending_rows(), 0);
        say(&format!("opened {}", w.len()));
        w
    };
    let mut w = open(&mut rng);
    loop {
        let start = w.len();
        if start >= MAX_ROWS {
            let n = w.close().unwrap();
            say(&format!("closed {n}"));
            say("done");
            return;
        }
        // Mostly small commits; one in eight spans several MiB.
        let size = if rng.below(8) == 0 {
            16_384 + rng.below(48_000)
        } else {
            1 + rng.below(2000)
        };
        let target = (start + size).min(MAX_ROWS);
        let mut next = start;
        while next < target {
            let n = (1 + rng.below(9000)).min(target - next);
            w.append(&rows(next, n)).unwrap();
            next += n;
        }
        assert_eq!(w.pending_rows(), target - start);
        say(&format!("committing {target}"));
        let n = w.commit().unwrap();
        assert_eq!(n, target);
        say(&format!("committed {n}"));
        if rng.below(16) == 0 {
            // A clean close and reopen now and then, so kills land there too.
            let n = w.close().unwrap();
            say(&format!("closed {n}"));
            w = open(&mut rng);
        }
    }
}

/// What the writer said before it was killed.
#[derive(Default, Debug)]
struct Heard {
    opened: bool,
    /// Rows of the last commit (or close) that returned.
    acked: u64,
    /// Commits that returned.
    commits: u64,
    /// Rows of the last commit that was started.
    in_flight: Option<u64>,
    done: bool,
}

impl Heard {
    fn hear(&mut self, line: &str) {
        // libtest may print "test child_writer ... " first on the same line.
        let Some((_, msg)) = line.split_once(TAG) else {
            return;
        };
        let mut words = msg.split(' ');
        let word = words.next().unwrap_or_default();
        let number = words.next().and_then(|n| n.parse::<u64>().ok());
        match (word, number) {
            ("opened", Some(n)) => {
                self.opened = true;
                self.acked = self.acked.max(n);
            }
            ("committing", Some(n)) => self.in_flight = Some(n),
            ("committed", Some(n)) => {
                self.acked = n;
                self.commits += 1;
                self.in_flight = None;
            }
            ("closed", Some(n)) => {
                self.acked = n;
                self.opened = false;
            }
            ("done", None) => self.done = true,
            _ => {}
        }
    }
}

/// The state a SIGKILL between creating the `.npy` and writing its header
/// leaves (the random kills hit it only now and then): a complete journal
/// of 0 committed rows and an empty `.npy`. Nothing was committed, so
/// recovery must succeed with 0 rows and a valid header.
#[test]
fn kill_between_creating_the_npy_and_writing_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let w = AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[ROW])
        .open(&path)
        .unwrap();
    drop(w); // like a kill: the journal stays
    assert!(npy_append::journal_path(&path).exists());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();

    let mut w = reopen(&path)
        .unwrap_or_else(|e| panic!("recovering a writer killed while creating its file: {e}"));
    assert_eq!(w.len(), 0);
    verify_file(&path, 0, "after recovery");
    w.append(&rows(0, 3)).unwrap();
    assert_eq!(w.commit().unwrap(), 3);
    w.close().unwrap();
    verify_file(&path, 3, "after appending");
}

fn kill_count() -> usize {
    std::env::var("NPY_APPEND_KILLS").map_or(200, |s| {
        s.trim().parse().expect("NPY_APPEND_KILLS must be a number")
    })
}

#[test]
fn sigkill_at_random_instants_always_recovers_the_last_commit() {
    let kills = kill_count();
    let seed = seed_from_env_or_time();
    println!(
        "kill_recovery: seed {seed} (NPY_APPEND_SEED={seed} replays the choices), {kills} kills"
    );
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut generation = 0;
    let mut path = dir.path().join(format!("data-{generation}.npy"));
    let mut copies: Vec<(PathBuf, u64)> = Vec::new();
    let mut copy_due = false;
    let mut prev_rows = 0;

    let started = Instant::now();
    let (mut acked_commits, mut max_rows, mut cuts, mut rewrites) = (0u64, 0u64, 0u64, 0u64);
    let (mut kills_in_open, mut in_flight_kept, mut closes, mut journals_found) =
        (0u64, 0u64, 0u64, 0u64);
    let mut torn_creations = 0u64;
    for iteration in 0..kills {
        let context = format!("kill {iteration} (seed {seed})");
        let durability = if iteration % 2 == 0 {
            "fsync"
        } else {
            "process"
        };
        let mut child = Command::new(&exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .env(CHILD_SEED_ENV, rng.next().to_string())
            .env(CHILD_DURABILITY_ENV, durability)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });

        // Wait until the writer has started, then let it run a random while:
        // one kill in three within its first 2.5 ms (creating or recovering
        // the file), the rest 1..40 ms in.
        let mut heard = Heard::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    heard.hear(&line);
                    if line.contains(TAG) && line.ends_with("opening") {
                        break;
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let status = child.wait().unwrap();
                    panic!(
                        "{context}: the writer did not start ({e}, {status}):\n{}",
                        err_reader.join().unwrap()
                    );
                }
            }
        }
        let delay = if rng.below(3) == 0 {
            Duration::from_micros(rng.below(2500))
        } else {
            Duration::from_micros(1000 + rng.below(39_000))
        };
        std::thread::sleep(delay);
        child.kill().unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        for line in rx.try_iter() {
            heard.hear(&line);
        }
        let stderr = err_reader.join().unwrap();
        if status.signal() != Some(9) && !(status.success() && heard.done) {
            panic!("{context}: the writer failed on its own ({status}):\n{stderr}");
        }
        if !heard.opened && !heard.done {
            kills_in_open += 1;
        }
        acked_commits += heard.commits;

        // Recover in this process and check the result.
        let journal = npy_append::journal_path(&path);
        let had_journal = journal.exists();
        let npy_len = std::fs::metadata(&path).map(|m| m.len()).ok();
        if had_journal && npy_len.is_none_or(|len| len < 64) {
            // Killed between creating the journal and writing the header.
            torn_creations += 1;
        }
        let w = reopen(&path).unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"));
        let rows = w.len();
        let report = w.report().clone();
        assert_eq!(report.committed_rows, rows, "{context}: report {report}");
        assert_eq!(w.pending_rows(), 0, "{context}");
        assert!(
            rows >= heard.acked,
            "{context}: {rows} rows recovered but {} were acknowledged ({report})",
            heard.acked
        );
        assert!(
            rows >= prev_rows,
            "{context}: {rows} rows recovered, {prev_rows} before ({report})"
        );
        assert!(
            rows == heard.acked || rows == prev_rows || Some(rows) == heard.in_flight,
            "{context}: {rows} rows recovered: neither the acknowledged {} nor the commit in flight {:?} ({report})",
            heard.acked,
            heard.in_flight
        );
        if Some(rows) == heard.in_flight && rows != heard.acked {
            in_flight_kept += 1;
        }
        if had_journal && path.exists() {
            journals_found += 1;
            // A journal is either recovered from, or (killed while being
            // created, before any append could depend on it) discarded.
            assert!(
                report.found == Found::Journal
                    || (report.found == Found::Clean && report.journal_discarded),
                "{context}: a journal was there, but the report says {report}"
            );
        }
        if report.bytes_cut > 0 {
            cuts += 1;
        }
        if report.header_rewritten {
            rewrites += 1;
        }
        if path.exists() {
            verify_file(&path, rows, &context);
        } else {
            assert_eq!(rows, 0, "{context}: rows without a file");
        }
        max_rows = max_rows.max(rows);
        prev_rows = rows;

        // Close cleanly half of the time; otherwise drop (like a crash) and
        // let the next writer recover.
        if rng.below(2) == 0 {
            let n = w
                .close()
                .unwrap_or_else(|e| panic!("{context}: close failed: {e}"));
            assert_eq!(n, rows, "{context}");
            assert!(!journal.exists(), "{context}: journal left after close");
            if path.exists() {
                verify_file(&path, rows, &context);
            }
            closes += 1;
        } else {
            let existed = path.exists();
            drop(w);
            assert_eq!(
                journal.exists(),
                existed,
                "{context}: the journal must stay after a drop"
            );
        }

        if iteration % 20 == 0 {
            copy_due = true;
        }
        if copy_due && rows > 0 {
            let copy = dir.path().join(format!("copy-{}.npy", copies.len()));
            std::fs::copy(&path, &copy).unwrap();
            copies.push((copy, rows));
            copy_due = false;
        }
        if rows >= MAX_ROWS {
            // Start a new file: its creation gets killed too.
            std::fs::remove_file(&path).unwrap();
            let _ = std::fs::remove_file(&journal);
            generation += 1;
            path = dir.path().join(format!("data-{generation}.npy"));
            prev_rows = 0;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "kill_recovery: {kills} kills survived in {:.1} s (seed {seed}): {acked_commits} acknowledged commits, \
         max {max_rows} rows, {} files, {journals_found} recoveries from a journal, {cuts} cut bytes, \
         {rewrites} rewrote the header, {in_flight_kept} kept a commit in flight, {kills_in_open} kills \
         before the writer had opened, {closes} clean closes by the parent, {torn_creations} torn creations",
        elapsed.as_secs_f64(),
        generation + 1
    );
    assert!(
        acked_commits > 0,
        "no commit was ever acknowledged: the kills proved nothing"
    );
    assert!(
        cuts > 0 || kills < 20,
        "no recovery ever cut bytes: the kills never landed mid-write"
    );

    // One numpy process reads every copy, normally and memory-mapped.
    let Some(py) = support::require_numpy("kill_recovery numpy check") else {
        return;
    };
    let mut args: Vec<String> = Vec::new();
    for (copy, rows) in &copies {
        args.push(copy.display().to_string());
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
        out.contains(&format!("numpy read {} files", copies.len())),
        "numpy check printed {out:?}"
    );
    println!(
        "kill_recovery: numpy read all {} copies: {}",
        copies.len(),
        out.trim()
    );
}
