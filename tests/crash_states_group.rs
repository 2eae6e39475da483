//! Every crash state of cursor and group workloads, enumerated with the
//! power-loss model of `tests/crashsim` (lost, reordered, torn, zeroed or
//! garbage writes; lost directory entries), recovered and checked.
//!
//! Cursor workload (one file): commits with and without a cursor, a
//! cursor-only commit, a clean close (the cursor goes to the `.cursor`
//! sidecar), a reopen (the sidecar's cursor goes into the new journal and
//! the sidecar is removed), a drop and a recovery, an empty cursor. After
//! every crash image, opening must succeed and give:
//!
//! - a committed row count and `cursor()` that belong to one and the same
//!   commit, the last acknowledged one or the one in flight (after a kill,
//!   with every pending write kept, still one of those two);
//! - exactly the rows written, and a header showing them;
//! - the same cursor again after a clean close and a reopen of the
//!   recovered file.
//!
//! The same cursor workload under Process durability: after a kill (every
//! pending write kept) the same checks; after a power loss, rows of some
//! commit with that commit's cursor, or an empty cursor when recovery
//! reports dropped rows (the fallback of docs/design.md).
//!
//! Group workload (three members growing by different amounts per commit,
//! cursors, close, reopen, drop): after every crash image,
//!
//! - before any recovery, every member's header that parses shows the rows
//!   of some commit not later than the one in flight, all present and as
//!   written (what numpy sees), and a member file never exists without its
//!   marker;
//! - opening the group succeeds; all members hold the rows of one commit
//!   (the last acknowledged or the one in flight) and `cursor()` is that
//!   commit's cursor; every row is as written; every header shows its rows;
//! - a member alone is refused by `Appender`;
//! - for the kill images and a sample of the others, a crash after each
//!   operation of that recovery, then recovery again, gives the same rows
//!   and cursor.
//!
//! The same group workload under Process durability: after a kill (every
//! pending write kept) the same checks. After a power loss, opening
//! succeeds (or refuses a member whose header claims rows it holds beyond
//! the newest intact commit, changing nothing, and then succeeds with
//! `accept_loss`); every member holds the rows of one and the same commit
//! begun before the crash, with that commit's cursor (or an empty cursor
//! when recovery dropped rows and fell back to a commit whose record was
//! overwritten), every header shows its member's rows and the length
//! matches; what `GroupStatus` predicted (a refusal, the rows dropped)
//! is what opening did. Rows of commits older than the newest are only as
//! durable as the disk's write-back made them (as for a single file): the
//! images where they differ from those written are counted, not failed.
//!
//! Ragged workload (sequences appended one by one, commits with and without
//! a cursor, close, reopen, drop): after every crash image the ragged array
//! opens with the sequences and cursor of one commit (the last acknowledged
//! or the one in flight), offsets `0, end_0, end_1, ...` and the values
//! exactly those sequences.
//!
//! `cargo test --release --test crash_states_group -- --nocapture` prints
//! the counts.

mod crashsim;

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use crashsim::{Image, Model, Rng, SimBackend};
use npy_append::format::header;
use npy_append::{
    AppendGroup, AppendOptions, Appender, Durability, Error, GroupOptions, GroupStatus,
    MemberRecovery, MemberSpec, RaggedOptions, cursor_path, member_marker_path,
};

/// One state a crash may leave: rows of every member and the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    rows: Vec<u64>,
    cursor: Vec<u8>,
    /// Operations recorded before the commit began.
    start: usize,
    /// Operations recorded when it returned.
    end: usize,
}

/// The states of a recording and the trace.
struct Recording {
    name: &'static str,
    initial: Image,
    trace: Vec<crashsim::Op>,
    states: Vec<State>,
}

impl Recording {
    /// States a crash after `k` operations may leave: the last acknowledged
    /// one and any one begun before the crash.
    fn allowed(&self, k: usize) -> Vec<&State> {
        let acked = self.states.iter().rposition(|s| s.end <= k).unwrap_or(0);
        self.states
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == acked || (*i > acked && s.start < k))
            .map(|(_, s)| s)
            .collect()
    }

    /// The states begun before `k` (what a header may show).
    fn begun(&self, k: usize) -> Vec<&State> {
        self.states
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == 0 || s.start < k)
            .map(|(_, s)| s)
            .collect()
    }
}

#[derive(Default)]
struct Stats {
    crash_points: usize,
    states: usize,
    kills: usize,
    violations: Vec<String>,
}

fn image_key(image: &Image, k: usize) -> u64 {
    let mut h = DefaultHasher::new();
    image.hash(&mut h);
    // The allowed states depend on the crash point only through the
    // acknowledged commit; keeping k in the key keeps the check exact.
    k.hash(&mut h);
    h.finish()
}

/// The header rows and data of `bytes`, when its header parses.
fn parse(bytes: &[u8]) -> Option<(u64, u64)> {
    let h = header::parse(bytes).ok()?;
    Some((h.shape.first().copied()?, h.header_len))
}

// ---------------------------------------------------------------- cursor

const ROW_VALUES: u64 = 5;
const ROW_BYTES: u64 = ROW_VALUES * 4;

fn npy() -> PathBuf {
    PathBuf::from("/sim/single.npy")
}

fn single_value(i: u64, j: u64) -> u32 {
    ((i * ROW_VALUES + j).wrapping_mul(2_654_435_761) % (1 << 32)) as u32
}

fn single_rows(rows: std::ops::Range<u64>) -> Vec<u8> {
    rows.flat_map(|i| (0..ROW_VALUES).flat_map(move |j| single_value(i, j).to_le_bytes()))
        .collect()
}

fn single_options() -> AppendOptions {
    single_options_as(Durability::Fsync)
}

fn single_options_as(durability: Durability) -> AppendOptions {
    AppendOptions::new()
        .durability(durability)
        .dtype("<u4")
        .unwrap()
        .row_shape(&[ROW_VALUES])
        .buffer_bytes(1024)
}

#[derive(Debug, Clone, Copy)]
enum CStep {
    Open,
    Append(u64),
    Commit,
    Cursor(&'static str),
    Close,
    Drop,
}

const CURSOR_WORKLOAD: &[CStep] = &[
    CStep::Open,
    CStep::Append(3),
    CStep::Cursor("input line 3"),
    CStep::Append(2),
    CStep::Commit,
    CStep::Cursor("input line 5, nothing new"),
    CStep::Append(60),
    CStep::Cursor(
        "input line 65 ........................................................................................................",
    ),
    CStep::Close,
    CStep::Open,
    CStep::Append(1),
    CStep::Commit,
    CStep::Cursor("input line 66"),
    CStep::Drop,
    CStep::Open,
    CStep::Append(2),
    CStep::Cursor("input line 68"),
    CStep::Close,
    CStep::Open,
    CStep::Cursor(""),
    CStep::Close,
];

/// Adds the state after a commit, unless the commit changed nothing.
fn push(states: &mut Vec<State>, rows: Vec<u64>, cursor: &[u8], start: usize, end: usize) {
    let last = states.last().unwrap();
    if rows != last.rows || cursor != last.cursor {
        states.push(State {
            rows,
            cursor: cursor.to_vec(),
            start,
            end,
        });
    }
}

fn record_cursor() -> Recording {
    record_cursor_as(Durability::Fsync)
}

fn record_cursor_as(durability: Durability) -> Recording {
    let sim = SimBackend::from_image(&Image::new());
    let mut states = vec![State {
        rows: vec![0],
        cursor: Vec::new(),
        start: 0,
        end: 0,
    }];
    let mut w: Option<Appender<SimBackend>> = None;
    for step in CURSOR_WORKLOAD {
        match *step {
            CStep::Open => {
                let a = single_options_as(durability)
                    .open_with(sim.clone(), npy())
                    .unwrap();
                if states.len() == 1 {
                    // Creation: a crash before it leaves no file, which
                    // opens as the same empty state.
                    states[0].end = sim.ops();
                }
                w = Some(a);
            }
            CStep::Append(n) => {
                let a = w.as_mut().unwrap();
                let at = a.len() + a.pending_rows();
                a.append_bytes(&single_rows(at..at + n)).unwrap();
            }
            CStep::Commit => {
                let a = w.as_mut().unwrap();
                let start = sim.ops();
                a.commit().unwrap();
                push(&mut states, vec![a.len()], a.cursor(), start, sim.ops());
            }
            CStep::Cursor(c) => {
                let a = w.as_mut().unwrap();
                let start = sim.ops();
                a.commit_with_cursor(c.as_bytes()).unwrap();
                assert_eq!(a.cursor(), c.as_bytes());
                push(&mut states, vec![a.len()], a.cursor(), start, sim.ops());
            }
            CStep::Close => {
                let a = w.take().unwrap();
                let (rows, cursor) = (a.len(), a.cursor().to_vec());
                let start = sim.ops();
                a.close().unwrap();
                assert!(
                    !sim.current()
                        .contains_key(&npy_append::journal_path(&npy()))
                );
                assert_eq!(
                    sim.current().contains_key(&cursor_path(&npy())),
                    !cursor.is_empty()
                );
                let last = states.last().unwrap();
                assert_eq!(
                    (vec![rows], cursor),
                    (last.rows.clone(), last.cursor.clone())
                );
                let _ = start;
            }
            CStep::Drop => drop(w.take()),
        }
    }
    Recording {
        name: if durability == Durability::Fsync {
            "cursor"
        } else {
            "cursor, process durability"
        },
        initial: sim.initial(),
        trace: sim.trace(),
        states,
    }
}

/// Opens `image` with `open(backend, move_aside)`. A journal creation torn
/// into garbage by a power loss is not a torn creation by recovery's
/// definition (it cannot be told from another program's file): the open
/// must refuse it and change nothing; it is then moved aside and opening
/// goes on.
fn open_image<T>(
    image: &Image,
    open: impl Fn(SimBackend, bool) -> npy_append::Result<T>,
) -> Result<(SimBackend, T), String> {
    let sim = SimBackend::from_image(image);
    match open(sim.clone(), false) {
        Ok(w) => Ok((sim, w)),
        Err(e @ Error::ForeignJournal { .. }) => {
            if sim.current() != *image {
                return Err(format!("a refused open changed the image: {e}"));
            }
            let sim = SimBackend::from_image(image);
            let w = open(sim.clone(), true)
                .map_err(|e| format!("open moving the journal aside failed: {e}"))?;
            Ok((sim, w))
        }
        Err(e) => Err(format!("open failed: {e}")),
    }
}

fn check_cursor_image(
    image: &Image,
    allowed: &[&State],
    reopen: bool,
    durability: Durability,
) -> Result<(), String> {
    let (sim, w) = open_image(image, |sim, aside| {
        single_options_as(durability)
            .move_aside_foreign_journal(aside)
            .open_with(sim, npy())
    })?;
    let (rows, cursor) = (w.len(), w.cursor().to_vec());
    if !allowed
        .iter()
        .any(|s| s.rows == [rows] && s.cursor == cursor)
    {
        return Err(format!(
            "recovered {rows} rows with cursor {:?}; allowed {:?}",
            String::from_utf8_lossy(&cursor),
            allowed
                .iter()
                .map(|s| (s.rows[0], String::from_utf8_lossy(&s.cursor).into_owned()))
                .collect::<Vec<_>>()
        ));
    }
    let bytes = sim.current()[&npy()].clone();
    let (header_rows, header_len) = parse(&bytes).ok_or("header does not parse")?;
    if header_rows != rows || bytes.len() as u64 != header_len + rows * ROW_BYTES {
        return Err(format!(
            "header says {header_rows} rows, file {} bytes, {rows} rows recovered",
            bytes.len()
        ));
    }
    if bytes[header_len as usize..] != single_rows(0..rows)[..] {
        return Err("rows differ from those written".into());
    }
    if reopen {
        w.close().map_err(|e| format!("close failed: {e}"))?;
        let again = single_options()
            .open_with(sim.clone(), npy())
            .map_err(|e| format!("reopen failed: {e}"))?;
        if again.len() != rows || again.cursor() != cursor {
            return Err(format!(
                "after close and reopen: {} rows, cursor {:?}",
                again.len(),
                String::from_utf8_lossy(again.cursor())
            ));
        }
    }
    Ok(())
}

/// Process durability: after a kill (every pending write kept) the rows and
/// the cursor are the last acknowledged commit's or the one in flight's;
/// after a power loss the rows are a commit's and the cursor is that
/// commit's, or empty when recovery dropped rows and fell back to a commit
/// whose record was overwritten (documented in docs/design.md).
fn check_cursor_image_process(
    image: &Image,
    rec: &Recording,
    k: usize,
    kill: bool,
) -> Result<(), String> {
    if kill {
        return check_cursor_image(image, &rec.allowed(k), false, Durability::Process);
    }
    let sim = SimBackend::from_image(image);
    let w = match single_options_as(Durability::Process).open_with(sim.clone(), npy()) {
        Ok(w) => w,
        Err(Error::ForeignJournal { .. }) => {
            open_image(image, |sim, aside| {
                single_options_as(Durability::Process)
                    .move_aside_foreign_journal(aside)
                    .open_with(sim, npy())
            })?
            .1
        }
        // A power loss under process durability can leave a file holding
        // rows its header claims that no intact commit explains (as another
        // program's write would): refused, nothing changed; accepting the
        // loss recovers as before.
        Err(e @ Error::JournalDisagrees { .. }) => {
            if sim.current() != *image {
                return Err(format!("a refused recovery changed the image: {e}"));
            }
            single_options_as(Durability::Process)
                .accept_loss(true)
                .open_with(SimBackend::from_image(image), npy())
                .map_err(|e| format!("open with accept_loss failed: {e}"))?
        }
        Err(e) => return Err(format!("open failed: {e}")),
    };
    let (rows, cursor) = (w.len(), w.cursor().to_vec());
    let begun = rec.begun(k);
    let matched = begun.iter().any(|s| s.rows == [rows] && s.cursor == cursor)
        || (cursor.is_empty()
            && w.report().dropped_rows > 0
            && begun.iter().any(|s| s.rows == [rows]));
    if matched {
        Ok(())
    } else {
        Err(format!(
            "power loss: recovered {rows} rows with cursor {:?} (dropped {})",
            String::from_utf8_lossy(&cursor),
            w.report().dropped_rows
        ))
    }
}

// ----------------------------------------------------------------- group

fn group_path() -> PathBuf {
    PathBuf::from("/sim/data.group")
}

const NAMES: [&str; 3] = ["x.npy", "y.npy", "ids.npy"];

fn member_path(i: usize) -> PathBuf {
    PathBuf::from("/sim").join(NAMES[i])
}

fn group_options() -> GroupOptions {
    group_options_as(Durability::Fsync)
}

fn group_options_as(durability: Durability) -> GroupOptions {
    GroupOptions::new()
        .durability(durability)
        .member(MemberSpec::of::<f32>(NAMES[0], &[3]))
        .member(MemberSpec::of::<i64>(NAMES[1], &[]))
        .member(MemberSpec::of::<u64>(NAMES[2], &[]))
        .buffer_bytes(512)
}

/// Bytes per row of each member.
const MEMBER_ROW_BYTES: [u64; 3] = [12, 8, 8];

/// The bytes of rows `rows` of member `m`.
fn member_rows(m: usize, rows: std::ops::Range<u64>) -> Vec<u8> {
    match m {
        0 => rows
            .flat_map(|i| (0..3).flat_map(move |j| ((i * 3 + j) as f32 * 0.5).to_le_bytes()))
            .collect(),
        1 => rows.flat_map(|i| (-(i as i64) * 7).to_le_bytes()).collect(),
        _ => rows
            .flat_map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes())
            .collect(),
    }
}

#[derive(Debug, Clone, Copy)]
enum GStep {
    Open,
    /// Rows appended to each member.
    Append([u64; 3]),
    Commit,
    Cursor(&'static str),
    Close,
    Drop,
}

const GROUP_WORKLOAD: &[GStep] = &[
    GStep::Open,
    GStep::Append([2, 2, 2]),
    GStep::Cursor("batch 1"),
    GStep::Append([1, 3, 0]),
    GStep::Commit,
    GStep::Append([50, 0, 70]),
    GStep::Append([1, 1, 1]),
    GStep::Cursor("batch 3"),
    GStep::Cursor("batch 3, no rows"),
    GStep::Close,
    GStep::Open,
    GStep::Append([4, 4, 4]),
    GStep::Cursor("batch 4"),
    GStep::Drop,
    GStep::Open,
    GStep::Append([0, 5, 1]),
    GStep::Cursor("batch 5"),
    GStep::Close,
];

fn record_group() -> Recording {
    record_group_as(Durability::Fsync)
}

fn record_group_as(durability: Durability) -> Recording {
    let sim = SimBackend::from_image(&Image::new());
    let mut states = vec![State {
        rows: vec![0; 3],
        cursor: Vec::new(),
        start: 0,
        end: 0,
    }];
    let mut g: Option<AppendGroup<SimBackend>> = None;
    for step in GROUP_WORKLOAD {
        match *step {
            GStep::Open => {
                let a = group_options_as(durability)
                    .open_with(sim.clone(), group_path())
                    .unwrap();
                if states.len() == 1 {
                    states[0].end = sim.ops();
                }
                g = Some(a);
            }
            GStep::Append(n) => {
                let a = g.as_mut().unwrap();
                for (m, &count) in n.iter().enumerate() {
                    let at = a.rows(m) + a.pending_rows(m);
                    a.append_bytes(m, &member_rows(m, at..at + count)).unwrap();
                }
            }
            GStep::Commit => {
                let a = g.as_mut().unwrap();
                let start = sim.ops();
                a.commit().unwrap();
                push(&mut states, a.member_rows(), a.cursor(), start, sim.ops());
            }
            GStep::Cursor(c) => {
                let a = g.as_mut().unwrap();
                let start = sim.ops();
                a.commit_with_cursor(c.as_bytes()).unwrap();
                push(&mut states, a.member_rows(), a.cursor(), start, sim.ops());
            }
            GStep::Close => {
                let a = g.take().unwrap();
                a.close().unwrap();
            }
            GStep::Drop => drop(g.take()),
        }
    }
    Recording {
        name: if durability == Durability::Fsync {
            "group"
        } else {
            "group, process durability"
        },
        initial: sim.initial(),
        trace: sim.trace(),
        states,
    }
}

/// What numpy would see in a crash image, before any recovery.
fn check_group_unrecovered(image: &Image, begun: &[&State]) -> Result<(), String> {
    for m in 0..3 {
        let Some(bytes) = image.get(&member_path(m)) else {
            continue;
        };
        if !image.contains_key(&member_marker_path(&member_path(m))) {
            return Err(format!("{} exists without its marker", NAMES[m]));
        }
        let Some((rows, header_len)) = parse(bytes) else {
            continue;
        };
        if !begun.iter().any(|s| s.rows[m] == rows) {
            return Err(format!(
                "unrecovered header of {} shows {rows} rows, no commit had that many",
                NAMES[m]
            ));
        }
        let end = (header_len + rows * MEMBER_ROW_BYTES[m]) as usize;
        if bytes.len() < end || bytes[header_len as usize..end] != member_rows(m, 0..rows)[..] {
            return Err(format!(
                "unrecovered {}: the {rows} rows its header shows are not all there as written",
                NAMES[m]
            ));
        }
    }
    Ok(())
}

fn check_group_image(
    image: &Image,
    allowed: &[&State],
    durability: Durability,
) -> Result<(), String> {
    let (sim, g) = open_image(image, |sim, aside| {
        group_options_as(durability)
            .move_aside_foreign_journal(aside)
            .open_with(sim, group_path())
    })?;
    let (rows, cursor) = (g.member_rows(), g.cursor().to_vec());
    if !allowed.iter().any(|s| s.rows == rows && s.cursor == cursor) {
        return Err(format!(
            "recovered rows {rows:?} with cursor {:?}; allowed {:?}",
            String::from_utf8_lossy(&cursor),
            allowed
                .iter()
                .map(|s| (
                    s.rows.clone(),
                    String::from_utf8_lossy(&s.cursor).into_owned()
                ))
                .collect::<Vec<_>>()
        ));
    }
    if !check_members(&sim.current(), &rows)? {
        return Err("rows differ from those written".into());
    }
    drop(g);
    match AppendOptions::new().open_with(sim.clone(), member_path(1)) {
        Err(Error::GroupMember { .. }) => Ok(()),
        Err(e) => Err(format!("a member opened alone: unexpected error {e}")),
        Ok(_) => Err("a member opened alone was not refused".into()),
    }
}

/// Checks every recovered member of `files` against `rows`: its header
/// shows them and its length matches (else an error); returns whether its
/// rows are also exactly those written.
fn check_members(files: &Image, rows: &[u64]) -> Result<bool, String> {
    let mut as_written = true;
    for m in 0..3 {
        let bytes = &files[&member_path(m)];
        let (header_rows, header_len) =
            parse(bytes).ok_or_else(|| format!("{}: header does not parse", NAMES[m]))?;
        if header_rows != rows[m]
            || bytes.len() as u64 != header_len + rows[m] * MEMBER_ROW_BYTES[m]
        {
            return Err(format!(
                "{}: header {header_rows} rows, {} bytes, {} rows recovered",
                NAMES[m],
                bytes.len(),
                rows[m]
            ));
        }
        as_written &= bytes[header_len as usize..] == member_rows(m, 0..rows[m])[..];
    }
    Ok(as_written)
}

/// What the Process power-loss images showed.
#[derive(Default)]
struct ProcessStats {
    /// Refused (nothing changed), then recovered with `accept_loss`.
    refused: usize,
    /// Recovered with rows dropped from the newest commit.
    dropped: usize,
    /// Rows of older commits not as written (the documented limit).
    older_rows_differ: usize,
}

/// A power-loss image under Process durability (see the module's doc).
fn check_group_image_process(
    image: &Image,
    begun: &[&State],
    stats: &mut ProcessStats,
) -> Result<(), String> {
    let status = GroupStatus::read_with(&SimBackend::from_image(image), group_path()).ok();
    let refuses = status.as_ref().map(|s| {
        s.members
            .iter()
            .any(|m| matches!(m.recovery, MemberRecovery::Refuses(_)))
    });
    let sim = SimBackend::from_image(image);
    let (sim, g, accepted) =
        match group_options_as(Durability::Process).open_with(sim.clone(), group_path()) {
            Ok(g) => (sim, g, false),
            Err(Error::ForeignJournal { .. }) => {
                let (sim, g) = open_image(image, |sim, aside| {
                    group_options_as(Durability::Process)
                        .move_aside_foreign_journal(aside)
                        .open_with(sim, group_path())
                })?;
                (sim, g, false)
            }
            // A power loss that kept a member's header and lost the commit it
            // belongs to looks like another program's write: refused, nothing
            // changed; accepting the loss recovers.
            Err(e @ Error::JournalDisagrees { .. }) => {
                if sim.current() != *image {
                    return Err(format!("a refused recovery changed the image: {e}"));
                }
                if refuses == Some(false) {
                    return Err(format!("the status did not predict the refusal: {e}"));
                }
                stats.refused += 1;
                let sim = SimBackend::from_image(image);
                let g = group_options_as(Durability::Process)
                    .accept_loss(true)
                    .open_with(sim.clone(), group_path())
                    .map_err(|e| format!("open with accept_loss failed: {e}"))?;
                (sim, g, true)
            }
            Err(e) => return Err(format!("open failed: {e}")),
        };
    let (rows, cursor) = (g.member_rows(), g.cursor().to_vec());
    let dropped = g.dropped_rows().iter().any(|&d| d > 0);
    stats.dropped += usize::from(dropped);
    let matched = begun
        .iter()
        .any(|s| s.rows == rows && (s.cursor == cursor || (cursor.is_empty() && dropped)));
    if !matched {
        return Err(format!(
            "power loss: recovered rows {rows:?} with cursor {:?} (dropped {:?})",
            String::from_utf8_lossy(&cursor),
            g.dropped_rows()
        ));
    }
    if let Some(status) = status.filter(|_| !accepted) {
        if refuses == Some(true) {
            return Err("the status predicted a refusal, opening recovered".into());
        }
        for (m, member) in status.members.iter().enumerate() {
            let predicted = match member.recovery {
                MemberRecovery::Changes { rows_dropped, .. } => rows_dropped,
                _ => 0,
            };
            if predicted != g.dropped_rows()[m] {
                return Err(format!(
                    "{}: the status predicted {predicted} rows dropped, opening dropped {}",
                    NAMES[m],
                    g.dropped_rows()[m]
                ));
            }
        }
    }
    if !check_members(&sim.current(), &rows)? {
        stats.older_rows_differ += 1;
    }
    Ok(())
}

/// Recovers `image`, then crashes that recovery after each of its
/// operations (a few images each) and recovers again: the same rows and
/// cursor every time. Returns how many images were checked.
fn check_group_recovery_crashes(
    image: &Image,
    rng: &mut Rng,
    options: impl Fn() -> GroupOptions,
) -> Result<usize, String> {
    let (sim, g) = open_image(image, |sim, aside| {
        options()
            .move_aside_foreign_journal(aside)
            .open_with(sim, group_path())
    })?;
    let want = (g.member_rows(), g.cursor().to_vec());
    drop(g);
    let (initial, trace) = (sim.initial(), sim.trace());
    let mut checked = 0;
    for k in 0..=trace.len() {
        let model = Model::at(&initial, &trace, k);
        for fates in model.choices(rng, 4, 4, 2) {
            let img = model.build(&fates, rng.next());
            crashsim::predict::check_image(&img)
                .map_err(|e| format!("recovery crashed after {k} operations: {e}"))?;
            let (_, g) = open_image(&img, |sim, aside| {
                options()
                    .move_aside_foreign_journal(aside)
                    .open_with(sim, group_path())
            })
            .map_err(|e| format!("recovery crashed after {k} operations, then: {e}"))?;
            checked += 1;
            if (g.member_rows(), g.cursor().to_vec()) != want {
                return Err(format!(
                    "recovery crashed after {k} operations, then recovered {:?}, first {:?}",
                    g.member_rows(),
                    want.0
                ));
            }
        }
    }
    Ok(checked)
}

// ---------------------------------------------------------------- ragged

fn ragged_path() -> PathBuf {
    PathBuf::from("/sim/tokens.group")
}

/// Sequence `i`: `i % 4` values.
fn sequence(i: u64) -> Vec<u16> {
    (0..i % 4).map(|j| (i * 10 + j) as u16).collect()
}

fn ragged_options() -> RaggedOptions {
    RaggedOptions::of::<u16>(&[])
}

#[derive(Debug, Clone, Copy)]
enum RStep {
    Open,
    Append(u64),
    Commit,
    Cursor(&'static str),
    Close,
    Drop,
}

const RAGGED_WORKLOAD: &[RStep] = &[
    RStep::Open,
    RStep::Append(3),
    RStep::Commit,
    RStep::Append(40),
    RStep::Cursor("43"),
    RStep::Close,
    RStep::Open,
    RStep::Append(5),
    RStep::Cursor("48"),
    RStep::Append(2),
    RStep::Drop,
    RStep::Open,
    RStep::Append(1),
    RStep::Cursor("49"),
    RStep::Close,
];

fn record_ragged() -> Recording {
    let sim = SimBackend::from_image(&Image::new());
    let mut states = vec![State {
        rows: vec![0],
        cursor: Vec::new(),
        start: 0,
        end: 0,
    }];
    let mut w: Option<npy_append::RaggedAppender<SimBackend>> = None;
    for step in RAGGED_WORKLOAD {
        match *step {
            RStep::Open => {
                let a = ragged_options()
                    .open_with(sim.clone(), ragged_path())
                    .unwrap();
                if states.len() == 1 {
                    states[0].end = sim.ops();
                }
                w = Some(a);
            }
            RStep::Append(n) => {
                let a = w.as_mut().unwrap();
                let at = a.len() + a.pending_sequences();
                for i in at..at + n {
                    a.append(&sequence(i)).unwrap();
                }
            }
            RStep::Commit | RStep::Cursor(_) => {
                let a = w.as_mut().unwrap();
                let start = sim.ops();
                match *step {
                    RStep::Cursor(c) => a.commit_with_cursor(c.as_bytes()).unwrap(),
                    _ => a.commit().unwrap(),
                };
                push(&mut states, vec![a.len()], a.cursor(), start, sim.ops());
            }
            RStep::Close => {
                w.take().unwrap().close().unwrap();
            }
            RStep::Drop => drop(w.take()),
        }
    }
    Recording {
        name: "ragged",
        initial: sim.initial(),
        trace: sim.trace(),
        states,
    }
}

/// The data of a member in the recovered image, after its header.
fn data_of(image: &Image, name: &str) -> Result<Vec<u8>, String> {
    let bytes = image
        .get(&PathBuf::from("/sim").join(name))
        .ok_or_else(|| format!("{name} missing"))?;
    let (_, header_len) = parse(bytes).ok_or_else(|| format!("{name}: header does not parse"))?;
    Ok(bytes[header_len as usize..].to_vec())
}

fn check_ragged_image(image: &Image, allowed: &[&State]) -> Result<(), String> {
    let (sim, w) = open_image(image, |sim, aside| {
        ragged_options()
            .move_aside_foreign_journal(aside)
            .open_with(sim, ragged_path())
    })?;
    let (n, cursor) = (w.len(), w.cursor().to_vec());
    if !allowed.iter().any(|s| s.rows == [n] && s.cursor == cursor) {
        return Err(format!(
            "recovered {n} sequences with cursor {:?}",
            String::from_utf8_lossy(&cursor)
        ));
    }
    drop(w);
    let now = sim.current();
    let offsets: Vec<i64> = data_of(&now, "offsets.npy")?
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let values: Vec<u16> = data_of(&now, "values.npy")?
        .chunks(2)
        .map(|c| u16::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut expected_offsets = vec![0i64];
    let mut expected_values = Vec::new();
    for i in 0..n {
        expected_values.extend(sequence(i));
        expected_offsets.push(expected_values.len() as i64);
    }
    if offsets != expected_offsets || values != expected_values {
        return Err(format!(
            "{n} sequences: offsets or values differ ({} offsets, {} values)",
            offsets.len(),
            values.len()
        ));
    }
    Ok(())
}

// ------------------------------------------------------------ enumeration

fn enumerate(
    rec: &Recording,
    seed: u64,
    mut check: impl FnMut(&Image, &Recording, usize, bool, usize) -> Result<(), String>,
) -> Stats {
    let mut stats = Stats::default();
    let mut rng = Rng::new(seed);
    let mut seen = HashSet::new();
    for k in 0..=rec.trace.len() {
        stats.crash_points += 1;
        let model = Model::at(&rec.initial, &rec.trace, k);
        // What a kill leaves: every pending write kept (the page cache).
        let killed = model.build(&model.all_kept(), 0);
        for fates in model.choices(&mut rng, 10, 64, 8) {
            let image = model.build(&fates, rng.next());
            if !seen.insert(image_key(&image, k)) {
                continue;
            }
            let kill = image == killed;
            stats.states += 1;
            stats.kills += usize::from(kill);
            let checked = crashsim::predict::check_image(&image)
                .and_then(|()| check(&image, rec, k, kill, stats.states));
            if let Err(e) = checked {
                let last = k.checked_sub(1).map_or("nothing".to_owned(), |i| {
                    format!("{:?}", rec.trace[i]).chars().take(80).collect()
                });
                stats.violations.push(format!(
                    "{}: crash after {k} operations (last {last}): {e}",
                    rec.name
                ));
            }
        }
    }
    stats
}

/// Prints what was checked and the first violations, then fails the test
/// if there was any.
fn report(rec: &Recording, stats: &Stats) {
    println!(
        "{}: {} operations, {} commits, {} crash points, {} distinct crash states checked \
         ({} with every pending write kept, as after a kill), {} violations",
        rec.name,
        rec.trace.len(),
        rec.states.len() - 1,
        stats.crash_points,
        stats.states,
        stats.kills,
        stats.violations.len()
    );
    for v in stats.violations.iter().take(10) {
        println!("  {v}");
    }
    println!("{}: {}", rec.name, crashsim::predict::summary());
    assert!(
        stats.violations.is_empty(),
        "{}: {} violations",
        rec.name,
        stats.violations.len()
    );
}

#[test]
fn cursor_crash_states() {
    let rec = record_cursor();
    assert!(rec.states.len() >= 7, "{:?}", rec.states);
    let stats = enumerate(&rec, 0xc0ff_ee00, |image, rec, k, _kill, n| {
        check_cursor_image(image, &rec.allowed(k), n % 3 == 0, Durability::Fsync)
    });
    report(&rec, &stats);
    assert!(stats.states > 250, "too few states: {}", stats.states);
}

#[test]
fn cursor_crash_states_process_durability() {
    let rec = record_cursor_as(Durability::Process);
    let stats = enumerate(&rec, 0xc0ff_ee01, |image, rec, k, kill, _n| {
        check_cursor_image_process(image, rec, k, kill)
    });
    report(&rec, &stats);
    assert!(stats.kills > 50, "too few kills: {}", stats.kills);
}

/// The checks catch a close that loses the cursor: with the sidecar's
/// write left out, reopening a closed file finds no cursor.
#[test]
fn cursor_checks_catch_a_lost_sidecar() {
    let mut rec = record_cursor();
    let names = crashsim::names(&rec.initial, &rec.trace);
    let mut removed = 0;
    for op in &mut rec.trace {
        if let crashsim::Op::Write { ino, .. } = op
            && names.get(ino) == Some(&cursor_path(&npy()))
        {
            *op = crashsim::Op::Nop;
            removed += 1;
        }
    }
    assert!(removed > 0);
    let stats = enumerate(&rec, 5, |image, rec, k, _kill, _n| {
        check_cursor_image(image, &rec.allowed(k), false, Durability::Fsync)
    });
    println!(
        "broken variant (no sidecar written, {removed} closes): {} states, {} violations",
        stats.states,
        stats.violations.len()
    );
    assert!(
        !stats.violations.is_empty(),
        "the broken variant went unnoticed"
    );
}

#[test]
fn group_crash_states() {
    let rec = record_group();
    assert!(rec.states.len() >= 6, "{:?}", rec.states);
    let mut rng = Rng::new(77);
    let mut recovery_crashes = 0;
    let stats = enumerate(&rec, 0x0060_9007, |image, rec, k, kill, n| {
        check_group_unrecovered(image, &rec.begun(k))?;
        check_group_image(image, &rec.allowed(k), Durability::Fsync)?;
        if kill || n % 8 == 0 {
            recovery_crashes += check_group_recovery_crashes(image, &mut rng, group_options)?;
        }
        Ok(())
    });
    report(&rec, &stats);
    println!(
        "group: {recovery_crashes} crashes during recovery, recovered again to the same commit"
    );
    assert!(stats.states > 1000, "too few states: {}", stats.states);
}

#[test]
fn group_crash_states_process_durability() {
    let rec = record_group_as(Durability::Process);
    assert!(rec.states.len() >= 6, "{:?}", rec.states);
    let mut rng = Rng::new(78);
    let mut recovery_crashes = 0;
    let mut process = ProcessStats::default();
    let stats = enumerate(&rec, 0x0060_9008, |image, rec, k, kill, n| {
        if kill {
            check_group_unrecovered(image, &rec.begun(k))?;
            check_group_image(image, &rec.allowed(k), Durability::Process)?;
        } else {
            check_group_image_process(image, &rec.begun(k), &mut process)?;
        }
        if kill || n % 8 == 0 {
            // A power loss's image may need the loss accepted (checked
            // above); the recovery is crashed with it accepted.
            recovery_crashes += check_group_recovery_crashes(image, &mut rng, || {
                group_options_as(Durability::Process).accept_loss(!kill)
            })?;
        }
        Ok(())
    });
    report(&rec, &stats);
    println!(
        "group, process durability: {recovery_crashes} crashes during recovery, recovered again \
         to the same commit; power losses: {} refused then recovered with accept_loss, {} \
         dropped rows of the newest commit, {} with older commits' rows not as written",
        process.refused, process.dropped, process.older_rows_differ
    );
    assert!(stats.states > 1000, "too few states: {}", stats.states);
    assert!(stats.kills > 30, "too few kills: {}", stats.kills);
    assert!(process.dropped > 0, "no power loss made recovery fall back");
}

#[test]
fn ragged_crash_states() {
    let rec = record_ragged();
    assert!(rec.states.len() >= 5, "{:?}", rec.states);
    let stats = enumerate(&rec, 0x7a66_ed00, |image, rec, k, _kill, _n| {
        check_ragged_image(image, &rec.allowed(k))
    });
    report(&rec, &stats);
    assert!(stats.states > 300, "too few states: {}", stats.states);
}

/// The checks catch a broken protocol: with a member's header written
/// before the group record in each commit, some crash image keeps the
/// header and loses the record, and recovery refuses the file or the
/// members disagree.
#[test]
fn group_checks_catch_a_header_before_the_record() {
    let mut rec = record_group();
    // Swap, in every commit, the group journal's record write and the
    // first header write after it: the header then lands before the record.
    let journal_ino = {
        let names = crashsim::names(&rec.initial, &rec.trace);
        *names.iter().find(|(_, p)| **p == group_path()).unwrap().0
    };
    let mut swapped = 0;
    let mut i = 0;
    while i < rec.trace.len() {
        if let crashsim::Op::Write { ino, offset, .. } = &rec.trace[i]
            && *ino == journal_ino
            && *offset > 0
        {
            // record write, then its sync, then header writes.
            if let Some(j) = (i + 2..rec.trace.len().min(i + 6)).find(|&j| {
                matches!(&rec.trace[j], crashsim::Op::Write { ino, offset, .. } if *ino != journal_ino && *offset < 64)
            }) {
                let header = rec.trace.remove(j);
                rec.trace.insert(i, header);
                swapped += 1;
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    assert!(swapped > 0);
    let stats = enumerate(&rec, 11, |image, rec, k, _kill, _n| {
        check_group_unrecovered(image, &rec.begun(k))?;
        check_group_image(image, &rec.allowed(k), Durability::Fsync)
    });
    println!(
        "broken variant (header before record, {swapped} commits): {} states, {} violations",
        stats.states,
        stats.violations.len()
    );
    assert!(
        !stats.violations.is_empty(),
        "the broken variant went unnoticed"
    );
}

/// The checks catch Process commits that alternate slots without syncs:
/// with every second unsynced record moved to the other slot, two unsynced
/// records can replace the durable one, and a power loss then leaves
/// members that no intact record describes.
#[test]
fn process_group_checks_catch_alternating_slots() {
    let mut rec = record_group_as(Durability::Process);
    let names = crashsim::names(&rec.initial, &rec.trace);
    let journal_ino = *names.iter().find(|(_, p)| **p == group_path()).unwrap().0;
    let slots: Vec<u64> = {
        let mut offsets: Vec<u64> = rec
            .trace
            .iter()
            .filter_map(|op| match op {
                crashsim::Op::Write { ino, offset, .. } if *ino == journal_ino && *offset > 0 => {
                    Some(*offset)
                }
                _ => None,
            })
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        offsets
    };
    assert_eq!(slots.len(), 2, "{slots:?}");
    let mut moved = 0;
    let mut unsynced = 0;
    for i in 0..rec.trace.len() {
        let synced_next = matches!(
            rec.trace.get(i + 1),
            Some(crashsim::Op::Sync { ino, .. }) if *ino == journal_ino
        );
        if let crashsim::Op::Write { ino, offset, .. } = &mut rec.trace[i]
            && *ino == journal_ino
            && *offset > 0
            && !synced_next
        {
            unsynced += 1;
            if unsynced % 2 == 0 {
                *offset = if *offset == slots[0] {
                    slots[1]
                } else {
                    slots[0]
                };
                moved += 1;
            }
        }
    }
    assert!(moved > 0);
    let mut process = ProcessStats::default();
    let stats = enumerate(&rec, 13, |image, rec, k, kill, _n| {
        if kill {
            check_group_image(image, &rec.allowed(k), Durability::Process)
        } else {
            check_group_image_process(image, &rec.begun(k), &mut process)
        }
    });
    println!(
        "broken variant (Process records alternating slots, {moved} moved): {} states, {} \
         violations",
        stats.states,
        stats.violations.len()
    );
    if let Some(v) = stats.violations.first() {
        println!("  {v}");
    }
    assert!(
        !stats.violations.is_empty(),
        "the broken variant went unnoticed"
    );
}
