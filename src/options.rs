//! How an [`crate::Appender`] is opened and when it commits.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::dtype::Dtype;

/// What a returned [`Appender::commit`](crate::Appender::commit) survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Data and journal are synced (`fdatasync`) before `commit` returns: the
    /// commit survives power loss and kernel crashes.
    #[default]
    Fsync,
    /// The same writes in the same order, without syncs: the commit survives
    /// the death of the process (`kill -9`, OOM) because the kernel keeps the
    /// written pages, but not power loss. After a power loss, recovery checks
    /// the newest commit against its checksum; when it fails, recovery falls
    /// back to the previous commit, then to the durable state the writer
    /// opened with, and reports the rows it dropped
    /// ([`crate::RecoveryReport::dropped_rows`]). Only the newest commit is
    /// checked: rows of earlier commits are as durable as the kernel's
    /// write-back made them. Opening and [`Appender::close`](crate::Appender::close) still sync.
    Process,
}

/// Commit automatically once enough rows, bytes or time have accumulated.
///
/// Every limit that is set triggers a commit when reached, checked after each
/// append; [`Appender::close`](crate::Appender::close) always commits. The default commits only when
/// [`Appender::commit`](crate::Appender::commit) is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupCommit {
    /// Commit when this many rows are pending.
    pub rows: Option<u64>,
    /// Commit when this many bytes are pending.
    pub bytes: Option<u64>,
    /// Commit when the oldest pending row is this old.
    pub interval: Option<Duration>,
}

impl GroupCommit {
    /// Commit every `rows` rows.
    #[must_use]
    pub fn rows(rows: u64) -> Self {
        Self {
            rows: Some(rows),
            ..Self::default()
        }
    }

    /// Commit every `bytes` bytes.
    #[must_use]
    pub fn bytes(bytes: u64) -> Self {
        Self {
            bytes: Some(bytes),
            ..Self::default()
        }
    }

    /// Commit when pending rows are `interval` old.
    #[must_use]
    pub fn interval(interval: Duration) -> Self {
        Self {
            interval: Some(interval),
            ..Self::default()
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.rows.is_some() || self.bytes.is_some() || self.interval.is_some()
    }
}

/// What to do when another writer holds the file's lock.
///
/// The lock is an `flock` lock on the open file. A process forked by another
/// thread of the same program holds a copy of every open descriptor until it
/// calls `exec`, and with it the lock: reopening a file right after closing
/// it can then briefly fail with [`Error::Locked`]. Programs that start
/// processes from several threads should open with [`LockWait::Wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockWait {
    /// Return [`Error::Locked`] at once.
    #[default]
    Fail,
    /// Retry until the lock is free or the duration has passed, then return
    /// [`Error::Locked`].
    Wait(Duration),
}

/// What to do with bytes past the data a header describes when the file has
/// no journal (another tool's writer crashed, or the file was cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TailPolicy {
    /// Change nothing and return [`Error::TrailingBytes`].
    #[default]
    Refuse,
    /// Cut the file to the rows the header describes.
    CutToHeader,
    /// Keep every whole row found past the header's rows and cut the partial
    /// row at the end, if any.
    AdoptWholeRows,
    /// Keep every whole row found past the header's rows and complete a
    /// partial row at the end, if any, with zero bytes (it is kept too).
    AdoptZeroFillLastRow,
}

/// What to do when a file without a journal is shorter than its header says:
/// the header's rows are not all there (a copy cut short, a file truncated,
/// another tool's writer that wrote the header before the data).
///
/// Without a journal the file's bytes are the only evidence of what it
/// held, so the salvage options keep what is there and rewrite the header to
/// it, as npy-append-array's `recover` does; the
/// [`RecoveryReport`](crate::RecoveryReport) says how many rows the header
/// lost ([`missing_rows`](crate::RecoveryReport::missing_rows)) and what was
/// cut ([`bytes_cut`](crate::RecoveryReport::bytes_cut)) or zero-filled
/// ([`zero_filled_bytes`](crate::RecoveryReport::zero_filled_bytes)).
/// A file whose journal commits rows is never salvaged: the journal says
/// what was committed, and when those rows are missing opening refuses with
/// [`Error::CommittedDataMissing`] whatever this policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShortFilePolicy {
    /// Change nothing and return [`Error::FileTooShort`].
    #[default]
    Refuse,
    /// Keep the whole rows the file holds, cut a partial last row, and
    /// rewrite the header's row count to the rows kept.
    KeepWholeRows,
    /// Keep the whole rows the file holds and complete a partial last row
    /// with zero bytes (it is kept), then rewrite the header's row count.
    ZeroFillLastRow,
}

/// Options for opening an [`Appender`](crate::Appender); `AppendOptions::new().open(path)`.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    pub(crate) dtype: Option<Dtype>,
    pub(crate) row_shape: Option<Vec<u64>>,
    pub(crate) fortran_order: Option<bool>,
    pub(crate) durability: Durability,
    pub(crate) group_commit: GroupCommit,
    pub(crate) lock_wait: LockWait,
    pub(crate) tail_policy: TailPolicy,
    pub(crate) short_file_policy: ShortFilePolicy,
    pub(crate) buffer_bytes: Option<usize>,
    pub(crate) compare_overlap: bool,
    pub(crate) accept_loss: bool,
    pub(crate) move_aside_foreign_journal: bool,
}

impl AppendOptions {
    /// The defaults: fsync durability, explicit commits, fail at once when
    /// locked, refuse unexplained trailing bytes and files shorter than
    /// their header.
    pub fn new() -> Self {
        Self::default()
    }

    /// The dtype of a new file, as numpy writes it in a header (`"<f4"`,
    /// `"|u1"`, `"[('a', '<i4'), ('b', '<f8', (3,))]"`); checked against an
    /// existing file.
    pub fn dtype(mut self, descr: &str) -> Result<Self> {
        let dtype = Dtype::parse(descr).map_err(|e| Error::InvalidArgument {
            path: None,
            what: format!("dtype {descr:?}: {e}"),
        })?;
        self.dtype = Some(dtype);
        Ok(self)
    }

    /// The dtype of a new file, as a parsed [`Dtype`].
    #[must_use]
    pub fn dtype_value(mut self, dtype: Dtype) -> Self {
        self.dtype = Some(dtype);
        self
    }

    /// The shape of one row (`[]`, the default, makes a 1-D array; `[128]`
    /// makes an `(N, 128)` array); checked against an existing file.
    #[must_use]
    pub fn row_shape(mut self, shape: &[u64]) -> Self {
        self.row_shape = Some(shape.to_vec());
        self
    }

    /// Whether a new file is in Fortran order (default: C order); checked
    /// against an existing file of more than one dimension.
    ///
    /// A Fortran-order array grows along its last axis, where its data is
    /// contiguous: with row shape `[a, b]` the file holds an `(a, b, N)`
    /// array, and each appended row is one `(a, b)` slice whose values are
    /// given in Fortran order (the first index varying fastest). 1-D arrays
    /// are the same in both orders and are written with `fortran_order`
    /// False, as numpy writes them.
    #[must_use]
    pub fn fortran_order(mut self, fortran: bool) -> Self {
        self.fortran_order = Some(fortran);
        self
    }

    /// What a returned commit survives.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// When to commit without an explicit call.
    #[must_use]
    pub fn group_commit(mut self, group_commit: GroupCommit) -> Self {
        self.group_commit = group_commit;
        self
    }

    /// What to do when another writer holds the lock.
    #[must_use]
    pub fn lock_wait(mut self, lock_wait: LockWait) -> Self {
        self.lock_wait = lock_wait;
        self
    }

    /// What to do with unexplained bytes past the header's data.
    #[must_use]
    pub fn tail_policy(mut self, tail_policy: TailPolicy) -> Self {
        self.tail_policy = tail_policy;
        self
    }

    /// What to do with a file without a journal that is shorter than its
    /// header says.
    #[must_use]
    pub fn short_file_policy(mut self, policy: ShortFilePolicy) -> Self {
        self.short_file_policy = policy;
        self
    }

    /// Whether recovery may cut rows it cannot show are this library's own
    /// (default: no). Recovery removes rows only when the file is in a state
    /// the journal's own writes can produce; a file another program rewrote
    /// or replaced after its writer died (its header claims rows the journal
    /// does not commit, or it is another file than the journal's) is refused
    /// with [`Error::JournalDisagrees`], nothing changed. With this option the
    /// journal wins: the file is brought to the journal's last intact commit
    /// and the rows cut are reported
    /// ([`RecoveryReport::rows_discarded`](crate::RecoveryReport::rows_discarded)).
    #[must_use]
    pub fn accept_loss(mut self, accept: bool) -> Self {
        self.accept_loss = accept;
        self
    }

    /// What to do with a `<file>.journal` this library did not write (not a
    /// journal creation of its own cut short; see `docs/design.md`): by
    /// default opening refuses it with [`Error::ForeignJournal`] and changes
    /// nothing; with `true` it is renamed to `<file>.journal.foreign` (or
    /// `.foreign.1`, ...), never removed, and opening goes on
    /// ([`RecoveryReport::journal_moved_aside`](crate::RecoveryReport::journal_moved_aside)).
    #[must_use]
    pub fn move_aside_foreign_journal(mut self, move_aside: bool) -> Self {
        self.move_aside_foreign_journal = move_aside;
        self
    }

    /// Size of the user-space buffer that collects small appends before they
    /// are written (default 1 MiB).
    #[must_use]
    pub fn buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer_bytes = Some(bytes);
        self
    }

    /// Whether [`Appender::append_at`](crate::Appender::append_at) compares the rows it skips (rows the
    /// file already holds) with the rows given, and returns
    /// [`Error::DataDiffers`] on the first difference (default: off, the
    /// skipped rows are not read).
    #[must_use]
    pub fn compare_overlap(mut self, compare: bool) -> Self {
        self.compare_overlap = compare;
        self
    }
}
