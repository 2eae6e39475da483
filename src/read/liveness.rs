//! Whether a writer is active, finished cleanly or died: the readers' view
//! of the writer, and the one wait loop every reader's `wait_for_rows` runs.
//!
//! Readers learn it from the locks writers hold and from what a clean close
//! leaves, probing a lock with [`Storage::lock_is_held`] (a shared lock
//! taken and released at once, never while a writer could take that lock
//! as the first of its locks, so no writer's open fails because of it):
//!
//! - a single file: no journal is a clean close (or a file no writer of
//!   this library has open yet); a journal whose lock is held has an active
//!   writer; a journal that is not locked, still has its path and whose
//!   identity is complete was left by a writer that died (or was dropped
//!   without `close`), and recovery is needed. A journal whose identity is
//!   not complete yet carries no commit: a writer is creating it or died
//!   doing so, and the file is as its last clean close left it.
//! - a group: the group journal stays after a clean close, whose record
//!   carries the closed mark. The first member's lock is held by any writer
//!   past its open; not held, the newest record tells a clean close from a
//!   death, read before and after the probe (the same sequence both times,
//!   else the look is repeated). While the group's creation is unfinished
//!   the group journal's own lock is probed instead.
//!
//! The argument that these answers are right at the moment of the probe,
//! and that writers never fail because of a probe, is in `docs/design.md`
//! ("Writer state").

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::files;
use crate::recovery::group::{self as group_recovery, GroupJournalRead};
use crate::recovery::read_journal;
use crate::storage::{Backend, OpenMode, Storage};

/// Looks taken before a state that keeps changing under the reader (a
/// journal replaced, a new record at every look) is called active.
const LOOKS: u32 = 8;
/// Shortest and longest sleep between refreshes of a wait.
const MIN_BACKOFF: Duration = Duration::from_micros(100);
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// What a reader can tell about the writer of the file, group or dataset it
/// reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriterState {
    /// A writer has it open: more rows may be committed.
    Active,
    /// The last writer closed it cleanly (or no writer of this library ever
    /// opened it): no more rows come unless a new writer opens it.
    Finished,
    /// The last writer stopped without closing (killed, crashed, or dropped
    /// without `close`): no more rows come until a new writer opens it,
    /// which first recovers it to its last commit.
    Died,
}

impl WriterState {
    /// `active`, `finished` or `died`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Finished => "finished",
            Self::Died => "died",
        }
    }
}

impl std::fmt::Display for WriterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether another handle holds `file`'s writer lock.
fn held<F: Storage>(file: &F, path: &Path) -> Result<bool> {
    file.lock_is_held()
        .map_err(|e| Error::io(path, "probing the writer lock", e))
}

/// The state of the writer of the `.npy` whose journal is `journal_path`.
pub(crate) fn file_state<B: Backend>(backend: &B, journal_path: &Path) -> Result<WriterState> {
    for _ in 0..LOOKS {
        let journal = match backend.open(journal_path, OpenMode::Read) {
            Ok(file) => file,
            Err(e) if files::sidecar_absent(&e) => return Ok(WriterState::Finished),
            Err(e) => return Err(Error::io(journal_path, "opening the journal", e)),
        };
        // The identity first, then the lock: a writer writes the identity
        // only while holding the lock.
        let complete = read_journal(&journal)
            .map_err(|e| Error::io(journal_path, "reading the journal", e))?
            .identity
            .is_ok();
        if held(&journal, journal_path)? {
            return Ok(WriterState::Active);
        }
        if !complete {
            // No commit depends on it: a writer is about to lock it (it
            // holds the `.npy`'s lock), or died before its first commit.
            return Ok(WriterState::Finished);
        }
        // Not locked at the probe: its writer is gone, unless it closed the
        // file meanwhile (a close removes the journal while holding the
        // lock), which the path tells.
        if backend
            .is_same_file(&journal, journal_path)
            .map_err(|e| Error::io(journal_path, "checking the journal", e))?
        {
            return Ok(WriterState::Died);
        }
    }
    Ok(WriterState::Active)
}

/// One look at a group journal.
struct GroupLook<F> {
    journal: F,
    read: GroupJournalRead,
    /// The newest record's sequence and closed mark.
    newest: Option<(u64, bool)>,
}

/// Reads the group journal at `path`.
fn read_group<B: Backend>(backend: &B, path: &Path) -> Result<GroupLook<B::File>> {
    let journal = backend
        .open(path, OpenMode::Read)
        .map_err(|e| Error::io(path, "opening the group journal", e))?;
    let read = group_recovery::read_group_journal(&journal, path)?;
    let newest = read.newest.as_ref().map(|(_, r)| (r.sequence, r.closed));
    Ok(GroupLook {
        journal,
        read,
        newest,
    })
}

/// The state of the writer of the group whose journal is `path`.
pub(crate) fn group_state<B: Backend>(backend: &B, path: &Path) -> Result<WriterState> {
    for _ in 0..LOOKS {
        let GroupLook {
            journal,
            read,
            newest,
        } = read_group(backend, path)?;
        if group_recovery::creation_incomplete(backend, path, &read)? {
            // Only the creating writer's journal lock tells.
            if held(&journal, path)? {
                return Ok(WriterState::Active);
            }
            let again = read_group(backend, path)?.read;
            if group_recovery::creation_incomplete(backend, path, &again)? {
                return Ok(WriterState::Died);
            }
            continue;
        }
        let Some(first) = read.identity.members.first() else {
            return Ok(WriterState::Died);
        };
        let member_path = files::parent_dir(path).join(&first.name);
        let member = backend
            .open(&member_path, OpenMode::Read)
            .map_err(|e| Error::io(&member_path, "opening a group member", e))?;
        if held(&member, &member_path)? {
            return Ok(WriterState::Active);
        }
        // Not locked at the probe; the record read before it is the newest
        // one if it still is after it (every record is written under that
        // lock, and sequences only grow).
        let after = read_group(backend, path)?.newest;
        match (newest, after) {
            (Some((before, closed)), Some((now, _))) if before == now => {
                return Ok(if closed {
                    WriterState::Finished
                } else {
                    WriterState::Died
                });
            }
            _ => {}
        }
    }
    Ok(WriterState::Active)
}

/// The state, or `None` when the backend cannot probe locks (then a wait
/// runs until its timeout, as if a writer were active).
fn known(state: Result<WriterState>) -> Result<Option<WriterState>> {
    match state {
        Ok(state) => Ok(Some(state)),
        Err(e) if e.io_kind() == Some(io::ErrorKind::Unsupported) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The one wait of every reader's `wait_for_rows`: until `refresh(reader)`
/// (which refreshes it and returns what it shows) reaches `want`, the
/// writer finished (`Ok(false)` at once) or died (`died(shown)`), or
/// `timeout` passes (`Ok(false)`). `shown` is what the reader shows before
/// the wait. Between looks it sleeps from 100 µs growing to 10 ms.
///
/// The writer's state is read before each refresh, so rows committed before
/// a writer closed or died are seen before the wait gives up on them.
pub(crate) fn wait_for_rows<R>(
    reader: &mut R,
    want: u64,
    timeout: Duration,
    shown: u64,
    state: impl Fn(&R) -> Result<WriterState>,
    refresh: impl Fn(&mut R) -> Result<u64>,
    died: impl FnOnce(u64) -> Error,
) -> Result<bool> {
    if shown >= want {
        return Ok(true);
    }
    let start = Instant::now();
    let mut backoff = MIN_BACKOFF;
    loop {
        let writer = known(state(reader))?;
        let shown = refresh(reader)?;
        if shown >= want {
            return Ok(true);
        }
        match writer {
            Some(WriterState::Finished) => return Ok(false),
            Some(WriterState::Died) => return Err(died(shown)),
            _ => {}
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Ok(false);
        }
        std::thread::sleep(backoff.min(timeout.saturating_sub(elapsed)));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
