//! A real group writer process killed with SIGKILL at random instants: after
//! every kill, the group opens, all three members hold the rows of one and
//! the same commit, `cursor()` is that commit's cursor (the last
//! acknowledged one or the one in flight), and every row is as written.
//!
//! The test re-executes its own binary as the writer (`child_group_writer`,
//! which does nothing unless `NPY_APPEND_KILL_GROUP_CHILD` is set). Input
//! record `k` adds one row to `a.npy`, `k % 3` rows to `b.npy` and one row
//! to `c.npy` when `k % 5 != 0`, so the members grow by different amounts and
//! their row counts are functions of the cursor (the next input record).
//! The writer commits after a random number of records with the cursor, and
//! now and then closes and reopens. The same runs under Process durability
//! (`sigkill_group_writer_process_durability`, whose writer reopens with
//! either durability at random): a kill keeps every write the kernel took.
//!
//! Environment: `NPY_APPEND_GROUP_KILLS` (default 50) sets the number of
//! kills, `NPY_APPEND_SEED` replays a run (the seed is printed).
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use npy_append::{AppendGroup, Durability, GroupOptions, GroupReader, MemberSpec};

use support::u64rows::Rng;

const CHILD_ENV: &str = "NPY_APPEND_KILL_GROUP_CHILD";
const CHILD_SEED_ENV: &str = "NPY_APPEND_KILL_GROUP_SEED";
/// "process": the writer opens with Process durability, then either.
const CHILD_DURABILITY_ENV: &str = "NPY_APPEND_KILL_GROUP_DURABILITY";
const TAG: &str = "@npy-group ";
/// The writer closes and stops after this many input records.
const MAX_RECORDS: u64 = 60_000;

/// Rows of each member after input records `0..k`.
fn rows_after(k: u64) -> [u64; 3] {
    let b = (0..k).map(|i| i % 3).sum::<u64>();
    let c = k - k.div_ceil(5);
    [k, b, c]
}

/// Row `r` of member `m` (one `u64` per row, `a` has two).
fn row(m: usize, r: u64) -> Vec<u64> {
    match m {
        0 => vec![r, r ^ 0xabcd],
        1 => vec![r.wrapping_mul(31) + 1],
        _ => vec![!r],
    }
}

fn options() -> GroupOptions {
    options_as(Durability::Fsync)
}

fn options_as(durability: Durability) -> GroupOptions {
    GroupOptions::new()
        .durability(durability)
        .member(MemberSpec::of::<u64>("a.npy", &[2]))
        .member(MemberSpec::of::<u64>("b.npy", &[]))
        .member(MemberSpec::of::<u64>("c.npy", &[]))
        .lock_wait(npy_append::LockWait::Wait(Duration::from_secs(10)))
        .buffer_bytes(4096)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{TAG}{line}").unwrap();
    out.flush().unwrap();
}

fn cursor_of(g: &AppendGroup) -> u64 {
    let c = g.cursor();
    if c.is_empty() {
        0
    } else {
        std::str::from_utf8(c).unwrap().parse().unwrap()
    }
}

/// The writer process; returns at once in a normal test run.
#[test]
fn child_group_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let seed: u64 = std::env::var(CHILD_SEED_ENV).unwrap().parse().unwrap();
    let mut rng = Rng::new(seed | 1);
    let process = std::env::var(CHILD_DURABILITY_ENV).is_ok_and(|d| d == "process");
    let mut durability = if process {
        Durability::Process
    } else {
        Durability::Fsync
    };
    let mut g = options_as(durability).open(&path).unwrap();
    let mut k = cursor_of(&g);
    assert_eq!(g.member_rows(), rows_after(k));
    say(&format!("opened {k}"));
    loop {
        if k >= MAX_RECORDS {
            g.close().unwrap();
            say("done");
            return;
        }
        let target = (k + 1 + rng.below(400)).min(MAX_RECORDS);
        for i in k..target {
            let [a, b, c] = rows_after(i);
            g.append(0, &row(0, a)).unwrap();
            for r in b..b + i % 3 {
                g.append(1, &row(1, r)).unwrap();
            }
            if i % 5 != 0 {
                g.append(2, &row(2, c)).unwrap();
            }
        }
        say(&format!("committing {target}"));
        g.commit_with_cursor(target.to_string().as_bytes()).unwrap();
        assert_eq!(g.member_rows(), rows_after(target));
        say(&format!("committed {target}"));
        k = target;
        if rng.below(20) == 0 {
            g.close().unwrap();
            say(&format!("closed {k}"));
            if process && rng.below(2) == 0 {
                durability = match durability {
                    Durability::Fsync => Durability::Process,
                    _ => Durability::Fsync,
                };
            }
            g = options_as(durability).open(&path).unwrap();
            say(&format!("opened {}", cursor_of(&g)));
        }
    }
}

#[derive(Default)]
struct Heard {
    acked: u64,
    in_flight: Option<u64>,
    done: bool,
}

impl Heard {
    fn hear(&mut self, line: &str) {
        let Some((_, msg)) = line.split_once(TAG) else {
            return;
        };
        let mut words = msg.split(' ');
        let word = words.next().unwrap_or_default();
        let n = words.next().and_then(|n| n.parse::<u64>().ok());
        match (word, n) {
            ("opened" | "closed", Some(n)) => self.acked = self.acked.max(n),
            ("committing", Some(n)) => self.in_flight = Some(n),
            ("committed", Some(n)) => {
                self.acked = n;
                self.in_flight = None;
            }
            ("done", _) => self.done = true,
            _ => {}
        }
    }
}

/// Checks the recovered group against `heard`; returns the cursor.
fn check(path: &Path, heard: &Heard) -> u64 {
    let g = options().open(path).unwrap();
    let k = cursor_of(&g);
    assert!(
        g.dropped_rows().iter().all(|&d| d == 0),
        "a kill dropped rows: {:?}",
        g.dropped_rows()
    );
    assert!(
        k == heard.acked || Some(k) == heard.in_flight,
        "recovered cursor {k}; acknowledged {}, in flight {:?}",
        heard.acked,
        heard.in_flight
    );
    assert_eq!(
        g.member_rows(),
        rows_after(k),
        "members disagree with cursor {k}"
    );
    drop(g);
    let r = GroupReader::open(path).unwrap();
    let cursor = if k == 0 {
        Vec::new()
    } else {
        k.to_string().into_bytes()
    };
    assert_eq!(r.cursor(), cursor.as_slice());
    for m in 0..3 {
        let values = r.as_slice::<u64>(m).unwrap();
        let expected: Vec<u64> = (0..r.rows(m)).flat_map(|i| row(m, i)).collect();
        assert!(values == expected.as_slice(), "member {m} rows differ");
    }
    k
}

#[test]
fn sigkill_group_writer() {
    sigkill_group_writers("fsync", 50);
}

#[test]
fn sigkill_group_writer_process_durability() {
    sigkill_group_writers("process", 30);
}

fn sigkill_group_writers(durability: &str, default_kills: u32) {
    let kills: u32 = std::env::var("NPY_APPEND_GROUP_KILLS").map_or(default_kills, |s| {
        s.trim().parse().expect("NPY_APPEND_GROUP_KILLS")
    });
    let seed: u64 = std::env::var("NPY_APPEND_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        },
        |s| s.trim().parse().expect("NPY_APPEND_SEED"),
    );
    println!("seed {seed} (NPY_APPEND_SEED={seed} replays the choices)");
    let mut rng = Rng::new(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let mut generation = 0;
    let group_in = |generation: u32| {
        let sub = dir.path().join(format!("g{generation}"));
        std::fs::create_dir_all(&sub).unwrap();
        sub.join("data.group")
    };
    let mut path = group_in(generation);
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let (mut killed, mut in_flight_kept, mut finished) = (0u32, 0u32, 0u32);
    while killed < kills {
        let mut child = Command::new(&exe)
            .args([
                "child_group_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .env(CHILD_SEED_ENV, rng.next().to_string())
            .env(CHILD_DURABILITY_ENV, durability)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut heard = Heard::default();
        // Kill at a random instant after it opened.
        let delay = Duration::from_micros(1000 + rng.below(40_000));
        let mut opened_at = None;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match rx.recv_timeout(Duration::from_millis(1)) {
                Ok(line) => {
                    if line.contains(&format!("{TAG}opened")) && opened_at.is_none() {
                        opened_at = Some(Instant::now());
                    }
                    heard.hear(&line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if heard.done || opened_at.is_some_and(|t| t.elapsed() >= delay) {
                break;
            }
            assert!(Instant::now() < deadline, "writer hung");
        }
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(line) = rx.try_recv() {
            heard.hear(&line);
        }
        if heard.done {
            assert!(status.success(), "writer failed: {status}");
            finished += 1;
            let k = check(&path, &heard);
            assert_eq!(k, MAX_RECORDS);
            generation += 1;
            path = group_in(generation);
            continue;
        }
        killed += 1;
        let k = check(&path, &heard);
        if Some(k) == heard.in_flight && k != heard.acked {
            in_flight_kept += 1;
        }
    }
    if let Some(py) = support::require_numpy("sigkill_group_writer") {
        let out = support::run_python(
            &py,
            "import sys, numpy as np\n\
             d = sys.argv[1]\n\
             a = np.load(d + '/a.npy'); b = np.load(d + '/b.npy'); c = np.load(d + '/c.npy')\n\
             assert (a[:, 0] == np.arange(len(a))).all() and (b == np.arange(len(b)) * 31 + 1).all()\n\
             print(len(a), len(b), len(c))",
            &[path.parent().unwrap().to_str().unwrap()],
        );
        let k = {
            let g = options().open(&path).unwrap();
            cursor_of(&g)
        };
        let [a, b, c] = rows_after(k);
        assert_eq!(out.trim(), format!("{a} {b} {c}"));
    }
    println!(
        "{durability}: {killed} SIGKILLs survived ({in_flight_kept} kept the commit in flight), \
         {finished} writers finished, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
