//! Every crash state, enumerated: simulated power loss after every operation
//! of a workload, with every surviving disk image the fault model of
//! `tests/crashsim` allows (lost, reordered, torn, zeroed or garbage writes;
//! lost directory entries), recovered and checked:
//!
//! - under Fsync durability, before any recovery: a header that parses shows
//!   only committed rows, all present and as written (what numpy sees);
//! - opening succeeds (the model never destroys synced data);
//! - the committed rows are a commit boundary, at least the last commit an
//!   Fsync writer (or a close) acknowledged, and after a kill (every pending
//!   write kept, as the page cache keeps them) at least the last acknowledged;
//! - under Process durability, `report.dropped_rows` is exactly what the
//!   newest valid journal record claimed beyond the recovered rows;
//! - the header's shape equals the committed rows, the file length matches,
//!   every row equals what was written (under Process durability only when
//!   the disk wrote back in order: older commits are not checksummed by
//!   design, so lost write-back there is counted, not judged);
//! - recovering the recovered image again changes nothing;
//! - a crash at any point of recovery itself, then recovery again, gives the
//!   same committed rows;
//! - closing leaves a plain `.npy` with no journal (a sample is loaded with numpy).
//!
//! Workloads: create, commits of 1, several and page-crossing rows (and
//! several writes per commit), close, reopen, drop and recover, append; a
//! file numpy saved taken over; under Fsync, under Process durability, and
//! writers of both durabilities one after another on one file.
//!
//! Broken variants of the protocol, made by rewriting the recorded operations,
//! show that the enumeration catches each broken step.
//!
//! `cargo test --release --test crash_states -- --nocapture` prints the counts.

mod crashsim;
mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::time::Instant;

use crashsim::{Fate, Image, Ino, Model, Op, Rng, SimBackend};
use npy_append::format::{header, journal};
use npy_append::{Appender, Durability, Error, journal_path};
use support::workload::{ROW_BYTES, ROW_VALUES, Step, options, row_bytes};

fn npy() -> PathBuf {
    PathBuf::from("/sim/data.npy")
}

fn jnl() -> PathBuf {
    journal_path(&npy())
}

/// create, commits of 1, several, page-crossing and buffered rows, close,
/// reopen (a clean file: a new journal), append, drop, reopen (recovery),
/// append, close.
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
    Step::Append(1),
    Step::Commit,
    Step::Close,
    Step::Open,
    Step::Append(170),
    Step::Commit,
    Step::Append(2),
    Step::Commit,
    Step::Drop,
    Step::Open,
    Step::Append(5),
    Step::Commit,
    Step::Append(1),
    Step::Commit,
    Step::Close,
];

/// A recorded run of a workload.
#[derive(Clone)]
struct Recording {
    name: String,
    durability: Durability,
    initial: Image,
    trace: Vec<Op>,
    /// (operations done when the call returned Ok, rows acknowledged,
    /// whether durably: an Fsync commit or a close).
    acks: Vec<(usize, u64, bool)>,
    /// Every row count a commit was attempted for, and 0.
    boundaries: BTreeSet<u64>,
}

impl Recording {
    /// Rows acknowledged durably, and at all, after `k` operations.
    fn acked_at(&self, k: usize) -> (u64, u64) {
        let done = || self.acks.iter().filter(|(at, _, _)| *at <= k);
        let durable = done()
            .filter(|(_, _, durable)| *durable)
            .map(|(_, rows, _)| *rows)
            .max();
        let any = done().map(|(_, rows, _)| *rows).max();
        (durable.unwrap_or(0), any.unwrap_or(0))
    }

    fn names(&self) -> BTreeMap<Ino, PathBuf> {
        crashsim::names(&self.initial, &self.trace)
    }

    fn is_journal(&self, ino: Ino) -> bool {
        self.names().get(&ino).is_some_and(|p| *p == jnl())
    }

    fn is_npy(&self, ino: Ino) -> bool {
        self.names().get(&ino).is_some_and(|p| *p == npy())
    }

    /// Bytes before the data (the length of the first header written).
    fn header_len(&self) -> u64 {
        self.trace
            .iter()
            .find_map(|op| match op {
                Op::Write {
                    ino,
                    offset: 0,
                    data,
                } if self.is_npy(*ino) => Some(data.len() as u64),
                _ => None,
            })
            .unwrap()
    }
}

/// A plain `.npy` of `rows` rows as numpy saves it.
fn saved_file(rows: u64) -> Image {
    let dtype = npy_append::Dtype::parse_descr("'<u4'").unwrap();
    let mut bytes = header::build(&dtype, false, &[rows, ROW_VALUES]).unwrap();
    bytes.extend(row_bytes(0..rows));
    Image::from([(npy(), bytes)])
}

/// Appending to a file numpy saved: taken over, then appended to, with
/// small buffers (several writes per commit); dropped, recovered, closed.
const TAKEOVER: &[Step] = &[
    Step::Open,
    Step::Append(7),
    Step::Append(30),
    Step::Append(100),
    Step::Commit,
    Step::Append(1),
    Step::Commit,
    Step::Append(400),
    Step::Commit,
    Step::Drop,
    Step::Open,
    Step::Append(3),
    Step::Commit,
    Step::Close,
];

fn record(name: &str, durability: Durability, steps: &[Step]) -> Recording {
    record_from(name, durability, steps, &Image::new(), 2048)
}

fn record_from(
    name: &str,
    durability: Durability,
    steps: &[Step],
    initial: &Image,
    buffer: usize,
) -> Recording {
    let sim = SimBackend::from_image(initial);
    let options = |d| options(d).buffer_bytes(buffer);
    let mut acks = Vec::new();
    let mut boundaries: BTreeSet<u64> = BTreeSet::from([0]);
    if let Some(bytes) = initial.get(&npy()) {
        let rows = (bytes.len() as u64 - 128) / ROW_BYTES;
        boundaries.insert(rows);
        acks.push((0, rows, true));
    }
    let mut w: Option<Appender<SimBackend>> = None;
    let mut current = durability;
    for step in steps {
        match *step {
            Step::Open | Step::OpenAs(_) => {
                if let Step::OpenAs(d) = *step {
                    current = d;
                }
                let a = options(current).open_with(sim.clone(), npy()).unwrap();
                // What opening found is not made durable by it.
                acks.push((sim.ops(), a.len(), false));
                w = Some(a);
            }
            Step::Append(n) => {
                let a = w.as_mut().unwrap();
                let start = a.len() + a.pending_rows();
                a.append_bytes(&row_bytes(start..start + n)).unwrap();
            }
            Step::Commit => {
                let a = w.as_mut().unwrap();
                boundaries.insert(a.len() + a.pending_rows());
                let rows = a.commit().unwrap();
                acks.push((sim.ops(), rows, current == Durability::Fsync));
            }
            Step::Close => {
                let a = w.take().unwrap();
                let rows = a.close().unwrap();
                acks.push((sim.ops(), rows, true));
            }
            Step::Drop => drop(w.take()),
        }
    }
    Recording {
        name: name.to_owned(),
        durability,
        initial: sim.initial(),
        trace: sim.trace(),
        acks,
        boundaries,
    }
}

/// What one image is expected to recover to.
#[derive(Clone, Copy)]
struct Expect<'a> {
    rec: &'a Recording,
    /// Rows acknowledged durably before the crash.
    acked: u64,
    /// Rows acknowledged at all (a kill keeps them).
    acked_any: u64,
    /// Every pending operation was applied (a kill: the page cache survived).
    kill: bool,
    /// The disk wrote back in order (a prefix of the pending operations).
    in_order: bool,
    /// Recovery of this image must give exactly these rows (a crash during
    /// a recovery that gave them).
    exact: Option<u64>,
    /// Recover with `accept_loss` (a crash during a recovery that needed it).
    accept_loss: bool,
    /// Recover with `move_aside_foreign_journal` (likewise).
    move_aside: bool,
}

#[derive(Default)]
struct Stats {
    /// Distinct crash images checked (including crashes during recovery).
    states: u64,
    /// Of which crashes during recovery.
    nested: u64,
    /// Process durability images whose older commits lost write-back (not
    /// checksummed by design, so counted rather than judged).
    unverified_older_rows: u64,
    /// Process durability power-loss images that recovery refused (the file
    /// holds rows its header claims that no intact commit explains, as
    /// another program's write would leave it), unchanged, then recovered
    /// with `accept_loss`.
    refused: u64,
    /// Of those, images whose header claims more rows than the newest
    /// record (a header write kept, its record lost).
    refused_header_ahead: u64,
    /// Of those, images whose newest commit's rows fail their checksum while
    /// the header claims them.
    refused_rows_lost: u64,
    /// Power-loss images whose journal creation was torn into garbage: not
    /// a torn creation by the definition recovery applies (it cannot tell
    /// them from another program's file), refused unchanged, then recovered
    /// with `move_aside_foreign_journal`.
    refused_foreign_journal: u64,
    /// Of those, images whose last kept commit has wrong rows and whose
    /// report drops nothing.
    silent_last_commit: u64,
    violations: Vec<String>,
    /// Closed files for numpy: (bytes, rows).
    samples: Vec<(Vec<u8>, u64)>,
    /// Fsync durability: crash images whose `.npy` a reader can load before
    /// any recovery (the header parses), and those whose header write was
    /// torn (unreadable until recovery rebuilds it from the journal).
    loadable_before_recovery: u64,
    torn_header_before_recovery: u64,
    seen: HashSet<u64>,
}

fn image_key(image: &Image, exp: &Expect<'_>) -> u64 {
    let mut h = DefaultHasher::new();
    image.hash(&mut h);
    (exp.acked, exp.acked_any, exp.kill, exp.in_order, exp.exact).hash(&mut h);
    h.finish()
}

/// The rows of the newest valid record of the journal in `image`.
fn newest_record_rows(image: &Image) -> Option<u64> {
    newest_record(image).map(|r| r.rows)
}

/// The newest valid record of the journal in `image`.
fn newest_record(image: &Image) -> Option<journal::Record> {
    let bytes = image.get(&jnl())?;
    let identity = journal::Identity::decode(bytes).ok()?;
    [journal::Slot::A, journal::Slot::B]
        .into_iter()
        .filter_map(|slot| {
            let at = journal::slot_offset(identity.block_len(), slot) as usize;
            journal::Record::decode(bytes.get(at..)?, identity.journal_id).ok()
        })
        .max_by_key(|r| r.sequence)
}

/// Checks the `.npy` in `image`: header shape, length and (when `strict`)
/// every row. Returns whether all rows matched.
fn check_npy(image: &Image, rows: u64, strict: bool) -> Result<bool, String> {
    let bytes = image.get(&npy()).ok_or("the .npy is missing")?;
    let (_, header_len) = header::parse_prefix(bytes).map_err(|e| format!("header prefix: {e}"))?;
    let h = bytes
        .get(..header_len as usize)
        .ok_or("file shorter than its header")
        .and_then(|raw| header::parse(raw).map_err(|_| "header does not parse"))?;
    if h.shape != [rows, ROW_VALUES] {
        return Err(format!("header shape {:?}, committed rows {rows}", h.shape));
    }
    let want_len = header_len + rows * ROW_BYTES;
    if bytes.len() as u64 != want_len {
        return Err(format!(
            "file is {} bytes, {rows} rows need {want_len}",
            bytes.len()
        ));
    }
    let data = &bytes[header_len as usize..];
    let same = data == row_bytes(0..rows).as_slice();
    if strict && !same {
        let bad = (0..rows)
            .find(|&i| {
                data[(i * ROW_BYTES) as usize..((i + 1) * ROW_BYTES) as usize]
                    != row_bytes(i..i + 1)
            })
            .unwrap_or(0);
        return Err(format!("row {bad} differs from what was written"));
    }
    Ok(same)
}

/// Fsync durability, before any recovery: when the crash image's header
/// parses, it claims no more rows than the newest valid journal record
/// commits, and the file holds exactly those rows as written, so numpy
/// (which ignores bytes past the header's rows) shows only committed rows.
fn check_unrecovered(image: &Image, stats: &mut Stats) -> Result<(), String> {
    let Some(bytes) = image.get(&npy()) else {
        return Ok(());
    };
    let parsed = header::parse_prefix(bytes).ok().and_then(|(_, len)| {
        let h = header::parse(bytes.get(..len as usize)?).ok()?;
        Some((len, h.shape.first().copied()?))
    });
    let Some((header_len, rows)) = parsed else {
        stats.torn_header_before_recovery += 1;
        return Ok(());
    };
    stats.loadable_before_recovery += 1;
    if let Some(committed) = newest_record_rows(image)
        && rows > committed
    {
        return Err(format!(
            "before recovery, the header shows {rows} rows, the journal commits {committed}"
        ));
    }
    let data = bytes
        .get(header_len as usize..(header_len + rows * ROW_BYTES) as usize)
        .ok_or_else(|| {
            format!("before recovery, the header shows {rows} rows the file does not hold")
        })?;
    if data != row_bytes(0..rows) {
        return Err(format!(
            "before recovery, the {rows} rows the header shows are not all as written"
        ));
    }
    if stats.loadable_before_recovery.is_multiple_of(53) && stats.samples.len() < 400 {
        stats.samples.push((bytes.clone(), rows));
    }
    Ok(())
}

/// Whether rows `start..end` of the `.npy` in `image` are what was written.
fn last_commit_intact(image: &Image, start: u64, end: u64) -> bool {
    let bytes = &image[&npy()];
    let Ok((_, header_len)) = header::parse_prefix(bytes) else {
        return false;
    };
    let at = |row: u64| (header_len + row * ROW_BYTES) as usize;
    bytes.get(at(start)..at(end)) == Some(row_bytes(start..end).as_slice())
}

fn open(
    image: &Image,
    durability: Durability,
) -> Result<(SimBackend, Appender<SimBackend>), String> {
    let sim = SimBackend::from_image(image);
    let w = options(durability)
        .open_with(sim.clone(), npy())
        .map_err(|e| format!("open_or_recover failed: {e}"))?;
    Ok((sim, w))
}

/// Recovers `image`, checks every invariant, returns the closed file's bytes.
fn check_image(
    image: &Image,
    exp: &Expect<'_>,
    stats: &mut Stats,
    rng: &mut Rng,
) -> Result<(), String> {
    crashsim::predict::check_image(image)?;
    let durability = exp.rec.durability;
    let fsync = durability == Durability::Fsync;
    let mut sim = SimBackend::from_image(image);
    let mut accept_loss = exp.accept_loss;
    let mut move_aside = exp.move_aside;
    let w = match options(durability)
        .accept_loss(accept_loss)
        .move_aside_foreign_journal(move_aside)
        .open_with(sim.clone(), npy())
    {
        Ok(w) => w,
        Err(e @ Error::ForeignJournal { .. }) if !move_aside => {
            // A journal creation torn into garbage by a power loss looks
            // like another program's file: left alone. Never after a kill.
            if exp.kill {
                return Err(format!("refused after a kill: {e}"));
            }
            if sim.current() != *image {
                return Err(format!("a refused recovery changed the image: {e}"));
            }
            stats.refused_foreign_journal += 1;
            move_aside = true;
            sim = SimBackend::from_image(image);
            options(durability)
                .accept_loss(accept_loss)
                .move_aside_foreign_journal(true)
                .open_with(sim.clone(), npy())
                .map_err(|e| format!("open_or_recover moving the journal aside failed: {e}"))?
        }
        Err(e @ Error::JournalDisagrees { .. }) if !accept_loss => {
            // Recovery refuses a file whose header claims rows it cannot
            // show are its writer's. Its own writes leave such a file only
            // after a power loss under process durability: never after a
            // kill, never with fsync commits. The refusal changes nothing,
            // and accepting the loss recovers as before.
            if exp.kill {
                return Err(format!("refused after a kill: {e}"));
            }
            if newest_record(image).is_some_and(|r| r.data_synced) {
                return Err(format!("refused with an fsync record newest: {e}"));
            }
            if sim.current() != *image {
                return Err(format!("a refused recovery changed the image: {e}"));
            }
            stats.refused += 1;
            if e.to_string().contains("committed only") {
                stats.refused_header_ahead += 1;
            } else {
                stats.refused_rows_lost += 1;
            }
            accept_loss = true;
            sim = SimBackend::from_image(image);
            options(durability)
                .accept_loss(true)
                .open_with(sim.clone(), npy())
                .map_err(|e| format!("open_or_recover with accept_loss failed: {e}"))?
        }
        Err(e) => return Err(format!("open_or_recover failed: {e}")),
    };
    let rows = w.len();
    let report = w.report().clone();
    if !exp.rec.boundaries.contains(&rows) {
        return Err(format!("{rows} committed rows is not a commit boundary"));
    }
    if rows < exp.acked {
        return Err(format!(
            "{rows} committed rows, but {} were acknowledged durably",
            exp.acked
        ));
    }
    if exp.kill && rows < exp.acked_any {
        return Err(format!(
            "{rows} committed rows after a kill, but {} were acknowledged",
            exp.acked_any
        ));
    }
    if let Some(exact) = exp.exact
        && rows != exact
    {
        return Err(format!(
            "recovery after a crash during recovery gave {rows} rows, the uninterrupted one {exact}"
        ));
    }
    if report.committed_rows != rows {
        return Err(format!(
            "report says {} committed rows, len() {rows}",
            report.committed_rows
        ));
    }
    let expected_dropped = match newest_record_rows(image) {
        Some(n) if n > rows => n - rows,
        _ => 0,
    };
    if report.dropped_rows != expected_dropped {
        return Err(format!(
            "report.dropped_rows is {}, the newest valid record claimed {expected_dropped} rows more than the {rows} kept",
            report.dropped_rows
        ));
    }
    if fsync && report.dropped_rows != 0 {
        return Err(format!(
            "fsync durability dropped {} rows",
            report.dropped_rows
        ));
    }
    let strict = fsync || exp.in_order;
    let after = sim.current();
    if !after.contains_key(&jnl()) {
        return Err("no journal after opening".to_owned());
    }
    if !check_npy(&after, rows, strict)? {
        stats.unverified_older_rows += 1;
        let last_start = exp
            .rec
            .boundaries
            .range(..rows)
            .next_back()
            .copied()
            .unwrap_or(0);
        if report.dropped_rows == 0 && !last_commit_intact(&after, last_start, rows) {
            stats.silent_last_commit += 1;
        }
    }
    let recovery_trace = sim.trace();
    drop(w);

    // Recovering again changes nothing.
    let (sim2, w2) = open(&after, durability).map_err(|e| format!("second recovery: {e}"))?;
    if w2.len() != rows {
        return Err(format!(
            "second recovery gave {} rows, first {rows}",
            w2.len()
        ));
    }
    drop(w2);
    if sim2.current() != after {
        return Err("recovering the recovered image changed its bytes".to_owned());
    }

    // A crash at any point of recovery, then recovery again.
    if exp.exact.is_none()
        && recovery_trace
            .iter()
            .any(|op| matches!(op, Op::Write { .. } | Op::SetLen { .. }))
    {
        let nested = Expect {
            exact: Some(rows),
            accept_loss,
            move_aside,
            ..*exp
        };
        for k in 1..=recovery_trace.len() {
            let model = Model::at(image, &recovery_trace, k);
            for fates in model.choices(rng, 4, 4, 2) {
                let img = model.build(&fates, rng.next());
                // A crash during recovery is a kill only when every write
                // of the recovery so far was kept.
                let nested = Expect {
                    kill: exp.kill && fates.iter().all(|f| *f == Fate::Keep),
                    ..nested
                };
                if stats.seen.insert(image_key(&img, &nested)) {
                    stats.states += 1;
                    stats.nested += 1;
                    check_image(&img, &nested, stats, rng).map_err(|e| {
                        format!(
                            "crash during recovery after {k} of its operations ({}): {e}",
                            model.describe_lost(&fates, &recovery_trace, image)
                        )
                    })?;
                }
            }
        }
    }

    // Close leaves a plain .npy.
    let (sim3, w3) = open(&after, durability).map_err(|e| format!("reopening to close: {e}"))?;
    let closed_rows = w3.close().map_err(|e| format!("close failed: {e}"))?;
    if closed_rows != rows {
        return Err(format!(
            "close returned {closed_rows} rows, recovery {rows}"
        ));
    }
    let closed = sim3.current();
    if closed.contains_key(&jnl()) {
        return Err("journal left after close".to_owned());
    }
    check_npy(&closed, rows, strict)?;
    // A sample of the closed files (rows checked above) goes to numpy.
    if strict && stats.states.is_multiple_of(97) && stats.samples.len() < 300 {
        stats.samples.push((closed[&npy()].clone(), rows));
    }
    Ok(())
}

/// Random subsets sampled per crash point when there are too many pending
/// operations to try them all: `NPY_APPEND_CRASH_SAMPLES`, default 160 (a
/// deeper search with 20000 checks about 94,000 crash states).
fn samples() -> usize {
    std::env::var("NPY_APPEND_CRASH_SAMPLES").map_or(160, |s| {
        s.trim()
            .parse()
            .expect("NPY_APPEND_CRASH_SAMPLES must be a number")
    })
}

/// Enumerates the crash states of `rec`; returns the stats.
fn enumerate(rec: &Recording, seed: u64, stop_at_first: bool) -> Stats {
    let mut stats = Stats::default();
    let mut rng = Rng::new(seed);
    let names = rec.names();
    for k in 0..=rec.trace.len() {
        let model = Model::at(&rec.initial, &rec.trace, k);
        let (acked, acked_any) = rec.acked_at(k);
        for fates in model.choices(&mut rng, 12, samples(), 12) {
            let image = model.build(&fates, rng.next());
            let kill = fates.iter().all(|f| *f == Fate::Keep);
            let exp = Expect {
                rec,
                acked,
                acked_any,
                kill,
                in_order: Model::is_in_order(&fates),
                exact: None,
                accept_loss: false,
                move_aside: false,
            };
            if !stats.seen.insert(image_key(&image, &exp)) {
                continue;
            }
            stats.states += 1;
            let checked = if rec.durability == Durability::Fsync {
                check_unrecovered(&image, &mut stats)
            } else {
                Ok(())
            };
            if let Err(e) = checked.and_then(|()| check_image(&image, &exp, &mut stats, &mut rng)) {
                let last = k.checked_sub(1).map_or("nothing".to_owned(), |i| {
                    format!("#{i} {}", rec.trace[i].describe(&names))
                });
                stats.violations.push(format!(
                    "{}: crash after {k} operations (last: {last}; {acked} rows acknowledged); image: {}\n    -> {e}",
                    rec.name,
                    model.describe_lost(&fates, &rec.trace, &rec.initial)
                ));
                if stop_at_first && !stats.violations.is_empty() {
                    return stats;
                }
            }
        }
    }
    stats
}

/// Writers of both durabilities on one file, one after another: Fsync,
/// Process, Fsync, Process, each dropped (the journal stays) but the last.
const MIXED: &[Step] = &[
    Step::OpenAs(Durability::Fsync),
    Step::Append(3),
    Step::Commit,
    Step::Append(200),
    Step::Commit,
    Step::Drop,
    Step::OpenAs(Durability::Process),
    Step::Append(5),
    Step::Commit,
    Step::Append(1),
    Step::Commit,
    Step::Drop,
    Step::OpenAs(Durability::Fsync),
    Step::Append(2),
    Step::Commit,
    Step::Drop,
    Step::OpenAs(Durability::Process),
    Step::Append(7),
    Step::Commit,
    Step::Close,
];

fn workloads() -> Vec<Recording> {
    let saved = saved_file(10);
    vec![
        // Judged as Process durability (the weaker promise) except for the
        // acknowledged commits of its Fsync writers.
        record("mixed", Durability::Process, MIXED),
        record("fsync", Durability::Fsync, WORKLOAD),
        record("process", Durability::Process, WORKLOAD),
        record_from("takeover fsync", Durability::Fsync, TAKEOVER, &saved, 600),
        record_from(
            "takeover process",
            Durability::Process,
            TAKEOVER,
            &saved,
            600,
        ),
    ]
}

/// Loads the sampled closed files with numpy (memory-mapped) and compares
/// them with the expected rows, all in one Python call.
fn numpy_check(test: &str, samples: &[(Vec<u8>, u64)]) {
    let Some(py) = support::require_numpy(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut list = String::new();
    for (i, (bytes, rows)) in samples.iter().enumerate() {
        let path = dir.path().join(format!("s{i}.npy"));
        std::fs::write(&path, bytes).unwrap();
        list.push_str(&format!("{} {rows}\n", path.display()));
    }
    let list_path = dir.path().join("list.txt");
    std::fs::write(&list_path, list).unwrap();
    let code = r#"
import sys, numpy as np
n = 0
for line in open(sys.argv[1]):
    path, rows = line.split()
    rows = int(rows)
    a = np.load(path, mmap_mode="r")
    assert a.dtype == np.dtype("<u4") and a.shape == (rows, 6), (path, a.dtype, a.shape)
    want = ((np.arange(rows * 6, dtype=np.uint64) * 2654435761) % 2**32).astype("<u4").reshape(rows, 6)
    assert np.array_equal(a, want), path
    n += 1
print(n)
"#;
    let out = support::run_python(&py, code, &[list_path.to_str().unwrap()]);
    assert_eq!(out.trim(), samples.len().to_string());
    println!(
        "numpy loaded {} files (closed after recovery, or crash images before recovery)",
        samples.len()
    );
}

#[test]
fn every_crash_state_recovers() {
    let started = Instant::now();
    let mut total = 0;
    let mut samples = Vec::new();
    let mut violations = Vec::new();
    for rec in workloads() {
        let t = Instant::now();
        let stats = enumerate(&rec, 0x5eed, false);
        if rec.durability == Durability::Fsync {
            println!(
                "crash_states: workload {}: before recovery, {} crash images have a readable header \
                 showing only committed rows, {} a torn header",
                rec.name, stats.loadable_before_recovery, stats.torn_header_before_recovery
            );
        }
        println!(
            "crash_states: workload {}: {} operations, {} crash states checked ({} during recovery), \
             {} with lost write-back of older unchecksummed commits ({} of them in the last kept \
             commit, nothing reported dropped), {} refused unchanged then recovered with \
             accept_loss ({} header ahead of the journal, {} newest commit's rows lost), {} \
             journal creations torn into garbage refused then moved aside, {} violations, \
             {:.1?}",
            rec.name,
            rec.trace.len(),
            stats.states,
            stats.nested,
            stats.unverified_older_rows,
            stats.silent_last_commit,
            stats.refused,
            stats.refused_header_ahead,
            stats.refused_rows_lost,
            stats.refused_foreign_journal,
            stats.violations.len(),
            t.elapsed()
        );
        total += stats.states;
        samples.extend(stats.samples);
        violations.extend(stats.violations);
    }
    println!(
        "crash_states: {total} crash states checked in {:.1?}",
        started.elapsed()
    );
    println!("crash_states: {}", crashsim::predict::summary());
    let mut kinds = BTreeSet::new();
    for v in &violations {
        // One example per workload and kind of failure.
        let kind = v
            .split("-> ")
            .last()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect::<String>();
        if kinds.insert((v.split(':').next().unwrap_or("").to_owned(), kind)) {
            println!("VIOLATION {v}");
        }
    }
    assert!(violations.is_empty(), "{} violations", violations.len());
    assert!(total >= 10_000, "only {total} crash states");
    numpy_check("every_crash_state_recovers", &samples);
}

// Single crash states that once broke recovery, built directly.

/// The power-loss image of `sim`'s disk now, where each pending operation's
/// fate is chosen by `fate`.
fn crash_image(sim: &SimBackend, fate: impl Fn(&Op) -> Fate) -> Image {
    let trace = sim.trace();
    let model = Model::at(&sim.initial(), &trace, trace.len());
    let fates: Vec<Fate> = model.pending.iter().map(|p| fate(&p.op)).collect();
    model.build(&fates, 7)
}

fn is_journal_write(op: &Op, sim: &SimBackend) -> bool {
    let names = crashsim::names(&sim.initial(), &sim.trace());
    matches!(op, Op::Write { ino, .. } if names.get(ino) == Some(&jnl()))
}

fn is_npy_write(op: &Op, sim: &SimBackend, header: bool) -> bool {
    let names = crashsim::names(&sim.initial(), &sim.trace());
    matches!(op, Op::Write { ino, offset, .. }
        if names.get(ino) == Some(&npy()) && (*offset < 128) == header)
}

/// Recovery rewrites a header whose row count is stale without rewriting
/// its magic, version and length: a torn rewrite of a file this writer did
/// not create is still recognised (it once made the next recovery refuse).
#[test]
fn torn_header_rewrite_during_recovery_keeps_the_file() {
    let saved = saved_file(10);
    let sim = SimBackend::from_image(&saved);
    let mut w = options(Durability::Fsync)
        .open_with(sim.clone(), npy())
        .unwrap();
    w.append_bytes(&row_bytes(10..15)).unwrap();
    w.commit().unwrap();
    drop(w);
    // A power loss lost the header write of the commit.
    let image = crash_image(&sim, |op| {
        if is_npy_write(op, &sim, true) {
            Fate::Drop
        } else {
            Fate::Keep
        }
    });
    let sim = SimBackend::from_image(&image);
    let w = options(Durability::Fsync)
        .open_with(sim.clone(), npy())
        .unwrap();
    assert_eq!(w.len(), 15);
    drop(w);
    assert!(
        sim.trace()
            .iter()
            .any(|op| matches!(op, Op::Write { offset: 10, .. })),
        "the header rewrite starts after the length field: {:?}",
        sim.trace()
    );
    // That rewrite torn (zeros) by a power loss: recovered again.
    let image = crash_image(&sim, |op| {
        if matches!(op, Op::Write { .. }) {
            Fate::Torn(vec![crashsim::SectorFate::Zero])
        } else {
            Fate::Keep
        }
    });
    let (_, w) = open(&image, Durability::Fsync).unwrap();
    assert_eq!(w.len(), 15);
}

/// Process durability: a power loss kept a commit's header and rows but
/// lost its record. The file then holds the rows its header claims, as
/// another program's write would leave it: refused, nothing changed; with
/// accept_loss the journal wins.
#[test]
fn process_header_ahead_of_the_creation_record_is_refused_unless_accepted() {
    let sim = SimBackend::from_image(&Image::new());
    let mut w = options(Durability::Process)
        .open_with(sim.clone(), npy())
        .unwrap();
    w.append_bytes(&row_bytes(0..5)).unwrap();
    w.commit().unwrap();
    drop(w);
    let image = crash_image(&sim, |op| {
        if is_journal_write(op, &sim) {
            Fate::Drop
        } else {
            Fate::Keep
        }
    });
    let sim = SimBackend::from_image(&image);
    let err = options(Durability::Process)
        .open_with(sim.clone(), npy())
        .err()
        .expect("refused");
    assert!(matches!(err, Error::JournalDisagrees { .. }), "{err}");
    assert!(
        sim.current() == image,
        "a refused recovery changed the image"
    );
    let w = options(Durability::Process)
        .accept_loss(true)
        .open_with(sim, npy())
        .unwrap();
    assert_eq!(w.len(), 0, "the journal wins");
    assert_eq!(w.report().rows_discarded, 5);
}

/// Process durability, a file reopened with 355 rows, then several commits
/// whose records survived a power loss but whose rows did not: recovery
/// opens at the rows the writer opened with (it once failed).
#[test]
fn process_records_without_their_rows_fall_back_to_the_durable_state() {
    let sim = SimBackend::from_image(&saved_file(355));
    let mut w = options(Durability::Process)
        .open_with(sim.clone(), npy())
        .unwrap();
    for n in [170, 2, 5] {
        let start = w.len();
        w.append_bytes(&row_bytes(start..start + n)).unwrap();
        w.commit().unwrap();
    }
    drop(w);
    let image = crash_image(&sim, |op| {
        if is_npy_write(op, &sim, false) {
            Fate::Drop
        } else {
            Fate::Keep
        }
    });
    let (_, w) = open(&image, Durability::Process).unwrap();
    assert_eq!(w.len(), 355);
    assert_eq!(w.report().dropped_rows, 177);
}

/// An Fsync writer's acknowledged commit survives a power loss during the
/// commits of a later Process writer whose records landed without their
/// rows (it was once lost: the Process records overwrote both slots).
#[test]
fn fsync_commit_survives_a_later_process_writer() {
    let sim = SimBackend::from_image(&Image::new());
    let mut w = options(Durability::Fsync)
        .open_with(sim.clone(), npy())
        .unwrap();
    w.append_bytes(&row_bytes(0..203)).unwrap();
    assert_eq!(w.commit().unwrap(), 203);
    drop(w);
    let mut w = options(Durability::Process)
        .open_with(sim.clone(), npy())
        .unwrap();
    for n in [5, 1, 4] {
        let start = w.len();
        w.append_bytes(&row_bytes(start..start + n)).unwrap();
        w.commit().unwrap();
    }
    drop(w);
    for keep_headers in [false, true] {
        let image = crash_image(&sim, |op| {
            if is_npy_write(op, &sim, false) || (!keep_headers && is_npy_write(op, &sim, true)) {
                Fate::Drop
            } else {
                Fate::Keep
            }
        });
        let (_, w) = open(&image, Durability::Process)
            .unwrap_or_else(|e| panic!("headers kept: {keep_headers}: {e}"));
        assert_eq!(w.len(), 203, "headers kept: {keep_headers}");
    }
}

/// Outside the fault model: the disk loses or changes synced rows of the
/// newest commit. Recovery must say so (`CommittedDataMissing`,
/// `ChecksumMismatch`) and change nothing, rather than guess.
#[test]
fn lost_synced_rows_are_reported_not_hidden() {
    let rec = record("fsync", Durability::Fsync, WORKLOAD);
    let mut checked = 0;
    for k in 0..=rec.trace.len() {
        let model = Model::at(&rec.initial, &rec.trace, k);
        let image = model.build(&model.all_kept(), 0);
        let Some(newest) = newest_record(&image) else {
            continue;
        };
        if !newest.data_synced || newest.rows == newest.prev_rows {
            continue;
        }
        let end = (rec.header_len() + newest.rows * ROW_BYTES) as usize;
        let mut short = image.clone();
        short.get_mut(&npy()).unwrap().truncate(end - 1);
        let mut changed = image.clone();
        changed.get_mut(&npy()).unwrap()[end - 5] ^= 0x40;
        for (damaged, want) in [
            (short, "CommittedDataMissing"),
            (changed, "ChecksumMismatch"),
        ] {
            let sim = SimBackend::from_image(&damaged);
            let err = options(Durability::Fsync)
                .open_with(sim.clone(), npy())
                .err()
                .unwrap_or_else(|| panic!("crash after {k}: lost synced rows were not reported"));
            assert!(
                format!("{err:?}").starts_with(want),
                "crash after {k}: expected {want}, got {err:?}"
            );
            assert!(
                sim.current() == damaged,
                "crash after {k}: recovery changed the files"
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} cases");
    println!("lost synced rows: {checked} damaged images, each reported and left unchanged");
}

// Teeth: broken variants of the protocol, made by rewriting the recorded
// operations of a correct run. The enumeration must find a violating crash
// state for each.

/// Enumerates the broken recording `rec`, asserts that a violation is found
/// and prints the first one.
fn assert_caught(variant: &str, rec: &Recording) {
    let stats = enumerate(rec, 0x7ee7, true);
    let first = stats.violations.first().unwrap_or_else(|| {
        panic!(
            "{variant}: the enumeration found no violation in {} crash states",
            stats.states
        )
    });
    println!(
        "{variant}: caught after {} crash states; example:\n  {first}",
        stats.states
    );
}

/// (a) No data sync before the journal record: the record can become
/// durable while the rows it commits are lost.
#[test]
fn broken_no_data_sync_before_record_is_caught() {
    let mut rec = record("fsync, no data sync", Durability::Fsync, WORKLOAD);
    let mut removed = 0;
    for i in 0..rec.trace.len() - 1 {
        if let (Op::Sync { ino, .. }, Op::Write { ino: next, .. }) =
            (&rec.trace[i], &rec.trace[i + 1])
            && rec.is_npy(*ino)
            && rec.is_journal(*next)
        {
            rec.trace[i] = Op::Nop;
            removed += 1;
        }
    }
    assert!(removed > 0);
    assert_caught("no data sync before the journal record", &rec);
}

/// A recording whose slot-B record writes go to slot A instead.
fn one_slot(mut rec: Recording) -> Recording {
    let identity_len = journal::identity_len(rec.header_len()).unwrap();
    let slot_a = journal::slot_offset(identity_len, journal::Slot::A);
    let slot_b = journal::slot_offset(identity_len, journal::Slot::B);
    let journal_inos: Vec<Ino> = rec
        .names()
        .into_iter()
        .filter(|(_, p)| *p == jnl())
        .map(|(ino, _)| ino)
        .collect();
    let mut moved = 0;
    for op in &mut rec.trace {
        if let Op::Write { ino, offset, .. } = op
            && *offset == slot_b
            && journal_inos.contains(ino)
        {
            *offset = slot_a;
            moved += 1;
        }
    }
    assert!(moved > 0);
    rec.name.push_str(", one slot");
    rec
}

/// (b) One journal slot instead of two: every record goes to slot A.
///
/// Under Fsync durability this variant is safe, and the enumeration shows it:
/// when a record write is torn, recovery falls back to the header, and the
/// header of the previous (acknowledged) commit was made durable by this
/// commit's data sync, before the record was written; recovery's own
/// re-anchoring record is written after its header rewrite is synced. So the
/// header serves as the second record.
///
/// Under Process durability it breaks: commits are not synced, and the
/// second slot is what keeps the durable record the writer opened with. With
/// one slot, a power loss that tears the newest record and loses the rows
/// the header already claims leaves nothing to recover from.
#[test]
fn broken_one_journal_slot_is_caught() {
    let stats = enumerate(
        &one_slot(record("fsync", Durability::Fsync, WORKLOAD)),
        0x7ee7,
        false,
    );
    println!(
        "one journal slot, fsync: {} crash states, {} violations (safe: the header is the second record)",
        stats.states,
        stats.violations.len()
    );
    assert!(
        stats.violations.is_empty(),
        "{:?}",
        stats.violations.first()
    );
    assert_caught(
        "one journal slot (process durability)",
        &one_slot(record("process", Durability::Process, WORKLOAD)),
    );
}

/// (c) The header written before the journal record: a crash between the
/// two leaves a header claiming rows no record commits.
#[test]
fn broken_header_before_record_is_caught() {
    let mut rec = record("fsync, header first", Durability::Fsync, WORKLOAD);
    let header_len = rec.header_len();
    let mut moved = 0;
    let mut i = 0;
    while i < rec.trace.len() {
        let is_header = matches!(&rec.trace[i], Op::Write { ino, offset, .. }
            if rec.is_npy(*ino) && *offset > 0 && *offset < header_len);
        if is_header {
            // Back over the journal's sync to its record write.
            let mut j = i;
            while j > 0 && matches!(&rec.trace[j - 1], Op::Sync { ino, .. } if rec.is_journal(*ino))
            {
                j -= 1;
            }
            if j > 0 && matches!(&rec.trace[j - 1], Op::Write { ino, .. } if rec.is_journal(*ino)) {
                let op = rec.trace.remove(i);
                rec.trace.insert(j - 1, op);
                moved += 1;
            }
        }
        i += 1;
    }
    assert!(moved > 0);
    assert_caught("header written before the journal record", &rec);
}

/// (d) No directory sync after creating a journal: the journal's entry can
/// vanish while the rows it committed stay, leaving a `.npy` whose header
/// does not describe its data.
#[test]
fn broken_no_directory_sync_for_new_journal_is_caught() {
    let mut rec = record("fsync, no journal dir sync", Durability::Fsync, WORKLOAD);
    let mut removed = 0;
    for i in 2..rec.trace.len() {
        if matches!(rec.trace[i], Op::SyncDir)
            && matches!(&rec.trace[i - 1], Op::Sync { ino, .. } if rec.is_journal(*ino))
            && matches!(&rec.trace[i - 2], Op::Write { ino, offset: 0, .. } if rec.is_journal(*ino))
        {
            rec.trace[i] = Op::Nop;
            removed += 1;
        }
    }
    assert!(removed > 0);
    assert_caught("no directory sync for a new journal", &rec);
}
