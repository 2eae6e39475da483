//! I/O errors at every step of an append group's and a ragged array's
//! workload, in memory.
//!
//! A failure of the n-th read, write, set_len, sync, create, remove, rename
//! or directory sync, for every n the workload reaches: the call that hit it
//! returns the I/O error; a writer that was open is poisoned (every later
//! append, commit and close returns `Poisoned`) and acknowledges nothing
//! more; once the failure is gone, reopening recovers at least the last
//! acknowledged commit, on a commit boundary, every member holding exactly
//! the rows written, and the reader (on the same backend) shows the same.
//!
//! Also the read fault that once lost a group commit: a failed read of the
//! newest record's slot must fail the open, never fall back to the older
//! record and cut an acknowledged commit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use npy_append::storage::{MemBackend, MemOp};
use npy_append::{
    AppendGroup, Durability, Error, GroupOptions, GroupReader, MemberSpec, RaggedAppender,
    RaggedOptions, RaggedReader,
};

const OPS: [MemOp; 8] = [
    MemOp::Read,
    MemOp::Write,
    MemOp::SetLen,
    MemOp::Sync,
    MemOp::Create,
    MemOp::Remove,
    MemOp::Rename,
    MemOp::SyncDir,
];

fn group_path() -> PathBuf {
    PathBuf::from("/mem/g/data.group")
}

fn options() -> GroupOptions {
    GroupOptions::new()
        .member(MemberSpec::of::<u32>("x.npy", &[3]))
        .member(MemberSpec::of::<i64>("y.npy", &[]))
        .buffer_bytes(64)
}

fn x(rows: std::ops::Range<u64>) -> Vec<u32> {
    rows.flat_map(|i| (0..3).map(move |j| (i * 3 + j) as u32))
        .collect()
}

fn y(rows: std::ops::Range<u64>) -> Vec<i64> {
    rows.map(|i| -(i as i64) - 1).collect()
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Open,
    Append(u64),
    Commit,
    Close,
    Drop,
}

/// Open (create), commits of one row, several rows and more than a buffer,
/// close, reopen, rows dropped uncommitted, reopen (recovery cuts them),
/// append, close.
const WORKLOAD: &[Step] = &[
    Step::Open,
    Step::Append(1),
    Step::Commit,
    Step::Append(7),
    Step::Commit,
    Step::Append(40),
    Step::Commit,
    Step::Close,
    Step::Open,
    Step::Append(5),
    Step::Commit,
    Step::Append(30),
    Step::Drop,
    Step::Open,
    Step::Append(2),
    Step::Commit,
    Step::Close,
];

/// How a run ended: rows of the last acknowledged commit, every row count
/// a commit was attempted for, and the first error.
struct Run {
    acked: u64,
    boundaries: BTreeSet<u64>,
    failure: Option<(usize, Error)>,
}

/// The writer a workload drives: a group of two members, or a ragged array
/// (one sequence of three values per row of the workload).
trait Writer: Sized {
    fn open(mem: &MemBackend) -> npy_append::Result<Self>;
    fn len(&self) -> u64;
    fn held(&self) -> u64;
    fn append(&mut self, n: u64) -> npy_append::Result<()>;
    fn commit(&mut self) -> npy_append::Result<u64>;
    fn close(self) -> npy_append::Result<u64>;
    fn is_poisoned(&self) -> bool;
    /// Rows and whether every row is as written, from a reader on `mem`.
    fn read(mem: &MemBackend) -> (u64, bool);
}

impl Writer for AppendGroup<MemBackend> {
    fn open(mem: &MemBackend) -> npy_append::Result<Self> {
        options().open_with(mem.clone(), group_path())
    }
    fn len(&self) -> u64 {
        // A writer poisoned between two members' header rewrites may count
        // them differently; the record (recovery's authority) has both.
        if !self.is_poisoned() {
            assert_eq!(self.rows(0), self.rows(1), "members agree");
        }
        self.rows(0)
    }
    fn held(&self) -> u64 {
        self.rows(0) + self.pending_rows(0)
    }
    fn append(&mut self, n: u64) -> npy_append::Result<()> {
        let at = self.held();
        AppendGroup::append(self, 0, &x(at..at + n))?;
        AppendGroup::append(self, 1, &y(at..at + n))
    }
    fn commit(&mut self) -> npy_append::Result<u64> {
        AppendGroup::commit(self).map(|rows| rows[0])
    }
    fn close(self) -> npy_append::Result<u64> {
        AppendGroup::close(self).map(|rows| rows[0])
    }
    fn is_poisoned(&self) -> bool {
        AppendGroup::is_poisoned(self)
    }
    fn read(mem: &MemBackend) -> (u64, bool) {
        let r = GroupReader::open_with(mem.clone(), group_path()).unwrap();
        let rows = r.rows(0);
        assert_eq!(rows, r.rows(1), "reader: members agree");
        let same = r.as_slice::<u32>(0).unwrap() == x(0..rows)
            && r.as_slice::<i64>(1).unwrap() == y(0..rows);
        (rows, same)
    }
}

/// The same group under Process durability (an I/O error is not a power
/// loss: what was written stays, and the promises are the same).
struct ProcessGroup(AppendGroup<MemBackend>);

impl Writer for ProcessGroup {
    fn open(mem: &MemBackend) -> npy_append::Result<Self> {
        let g = options()
            .durability(Durability::Process)
            .open_with(mem.clone(), group_path())?;
        Ok(Self(g))
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn held(&self) -> u64 {
        self.0.held()
    }
    fn append(&mut self, n: u64) -> npy_append::Result<()> {
        Writer::append(&mut self.0, n)
    }
    fn commit(&mut self) -> npy_append::Result<u64> {
        Writer::commit(&mut self.0)
    }
    fn close(self) -> npy_append::Result<u64> {
        Writer::close(self.0)
    }
    fn is_poisoned(&self) -> bool {
        AppendGroup::is_poisoned(&self.0)
    }
    fn read(mem: &MemBackend) -> (u64, bool) {
        <AppendGroup<MemBackend> as Writer>::read(mem)
    }
}

fn ragged_options() -> RaggedOptions {
    RaggedOptions::of::<u32>(&[])
}

impl Writer for RaggedAppender<MemBackend> {
    fn open(mem: &MemBackend) -> npy_append::Result<Self> {
        ragged_options().open_with(mem.clone(), group_path())
    }
    fn len(&self) -> u64 {
        RaggedAppender::len(self)
    }
    fn held(&self) -> u64 {
        RaggedAppender::len(self) + self.pending_sequences()
    }
    fn append(&mut self, n: u64) -> npy_append::Result<()> {
        let at = self.held();
        let values = x(at..at + n);
        self.append_batch(&values, &vec![3; n as usize])
    }
    fn commit(&mut self) -> npy_append::Result<u64> {
        RaggedAppender::commit(self)
    }
    fn close(self) -> npy_append::Result<u64> {
        RaggedAppender::close(self)
    }
    fn is_poisoned(&self) -> bool {
        self.group().is_poisoned()
    }
    fn read(mem: &MemBackend) -> (u64, bool) {
        let r = RaggedReader::open_with(mem.clone(), group_path(), "values.npy", "offsets.npy")
            .unwrap();
        let rows = r.len();
        let same = (0..rows).all(|i| r.get::<u32>(i).unwrap() == x(i..i + 1));
        (rows, same)
    }
}

/// Runs `WORKLOAD` until the first error; then checks the open writer is
/// poisoned and acknowledges nothing more.
fn run<W: Writer>(mem: &MemBackend) -> Run {
    let mut w: Option<W> = None;
    let mut acked = 0;
    let mut boundaries = BTreeSet::from([0]);
    for (i, step) in WORKLOAD.iter().enumerate() {
        let result = match *step {
            Step::Open => W::open(mem).map(|g| {
                acked = acked.max(g.len());
                boundaries.insert(g.len());
                w = Some(g);
            }),
            Step::Append(n) => w.as_mut().unwrap().append(n),
            Step::Commit => {
                let g = w.as_mut().unwrap();
                boundaries.insert(g.held());
                g.commit().map(|rows| acked = rows)
            }
            Step::Close => {
                let g = w.take().unwrap();
                boundaries.insert(g.held());
                g.close().map(|rows| acked = rows)
            }
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
            if let Some(mut g) = w.take() {
                assert!(g.is_poisoned(), "step {i} {step:?}: not poisoned after {e}");
                let len = g.len();
                assert!(
                    matches!(g.append(1), Err(Error::Poisoned { .. })),
                    "append after a failure"
                );
                assert!(
                    matches!(g.commit(), Err(Error::Poisoned { .. })),
                    "commit after a failure"
                );
                assert_eq!(g.len(), len, "nothing acknowledged after a failure");
                assert!(
                    matches!(g.close(), Err(Error::Poisoned { .. })),
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

fn every_failure<W: Writer>(name: &str) {
    let clean = MemBackend::new();
    let done = run::<W>(&clean);
    assert!(done.failure.is_none(), "{:?}", done.failure.map(|f| f.1));
    let mut total = 0;
    for op in OPS {
        let count = clean.count(op);
        for nth in 1..=count {
            let context = format!("{name}: {op:?} #{nth} of {count} fails");
            let mem = MemBackend::new();
            mem.fail_at(op, nth);
            let run = run::<W>(&mem);
            let (step, err) = run
                .failure
                .as_ref()
                .unwrap_or_else(|| panic!("{context}: the workload never failed"));
            assert!(
                err.to_string().contains("injected failure"),
                "{context}: step {step} failed with an unrelated error: {err}"
            );
            mem.clear_failure();
            let w = W::open(&mem).unwrap_or_else(|e| panic!("{context}: reopening failed: {e}"));
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
            assert_eq!(w.close().unwrap(), rows, "{context}");
            assert_eq!(W::read(&mem), (rows, true), "{context}: reader");
            total += 1;
        }
    }
    assert!(total > 50, "{name}: only {total} operations");
    println!(
        "io_errors_group: {name}: failed each of {total} operations in turn, every one recovered"
    );
}

#[test]
fn group_failure_of_every_operation() {
    every_failure::<AppendGroup<MemBackend>>("group");
}

#[test]
fn process_group_failure_of_every_operation() {
    every_failure::<ProcessGroup>("group, process durability");
}

#[test]
fn ragged_failure_of_every_operation() {
    every_failure::<RaggedAppender<MemBackend>>("ragged");
}

#[test]
fn a_read_error_on_the_newest_slot_fails_the_open_and_cuts_nothing() {
    let mem = MemBackend::new();
    let path = group_path();
    let mut g = options().open_with(mem.clone(), &path).unwrap();
    // Records: 1 (creation) in slot A, 2 in slot B, 3 in slot A, 4 in B.
    for n in [2, 3, 4] {
        Writer::append(&mut g, n).unwrap();
        AppendGroup::commit(&mut g).unwrap();
    }
    assert_eq!(g.close().unwrap(), vec![9, 9]);
    let dir = Path::new("/mem/g");
    let before = [
        mem.contents(&dir.join("x.npy")).unwrap(),
        mem.contents(&dir.join("y.npy")).unwrap(),
    ];
    // Opening reads the identity (its fixed part, then all of it), slot A
    // (its fixed part, then the record), then slot B the same way: reads 5
    // and 6 are slot B's, which holds the newest record.
    for nth in [5, 6] {
        mem.fail_at(MemOp::Read, nth);
        let err = options()
            .open_with(mem.clone(), &path)
            .err()
            .expect("the open must fail");
        assert!(
            matches!(&err, Error::Io { .. }) && err.to_string().contains("injected failure"),
            "read #{nth}: {err}"
        );
        mem.clear_failure();
        assert_eq!(
            [
                mem.contents(&dir.join("x.npy")).unwrap(),
                mem.contents(&dir.join("y.npy")).unwrap(),
            ],
            before,
            "read #{nth}: a member changed"
        );
        // The reader must not fall back either.
        mem.fail_at(MemOp::Read, nth);
        assert!(GroupReader::open_with(mem.clone(), &path).is_err());
        mem.clear_failure();
    }
    let g = options().open_with(mem.clone(), &path).unwrap();
    assert_eq!(g.member_rows(), vec![9, 9]);
}
