//! The writer: appends rows, commits them, closes cleanly.
//!
//! Commit protocol (see `docs/design.md` for the failure analysis):
//!
//! 1. pending rows are written past the committed end of the data;
//! 2. the data is synced (`fdatasync`; skipped under [`Durability::Process`]);
//! 3. a record {sequence, rows, previous rows, data CRC} is written to the
//!    journal slot holding the older record, and synced (same exception;
//!    under Process durability every commit uses the same slot, and the
//!    other keeps the durable record the writer opened with);
//! 4. the header's shape is rewritten in place (same length, never synced on
//!    its own: the next commit's data sync or the close flushes it).
//!
//! The header is never ahead of the journal and the journal never ahead of
//! durable data, so a crash at any instant leaves a file numpy reads with
//! only committed rows, and a journal that recovery trusts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::element::{self, Element};
use crate::error::{Error, Poison, Result};
use crate::format::cursor_file::CursorFile;
use crate::format::dtype::Dtype;
use crate::format::header;
use crate::format::journal::{self, FLAG_CREATED, Record, Slot};
use crate::options::{AppendOptions, Durability, GroupCommit, LockWait, TailPolicy};
use crate::recovery::{self, Files, Inspection, Layout, Plan};
use crate::report::{Found, RecoveryReport};
use crate::storage::{Backend, FsBackend, OpenMode, Storage};

/// Default size of the user-space buffer collecting small appends.
const DEFAULT_BUFFER_BYTES: usize = 1 << 20;

/// Appends rows to one `.npy` file, crash-safely.
///
/// Opened with [`Appender::open_or_recover`] or [`AppendOptions::open`].
/// Rows passed to [`append`](Self::append) are buffered and written past the
/// committed end; they become visible to readers and survive a crash only
/// once [`commit`](Self::commit) returns.
///
/// # Dropping
///
/// Dropping an appender without [`close`](Self::close) has the effect of a
/// crash of the process: it releases the lock and nothing else. Committed
/// rows stay committed and readable; rows appended since the last commit are
/// lost (the next [`Appender::open_or_recover`] cuts them); the journal stays
/// next to the file until a later writer closes it. Dropping does no I/O, so
/// it cannot fail or block.
pub struct Appender<B: Backend = FsBackend> {
    backend: B,
    path: PathBuf,
    journal_path: PathBuf,
    durability: Durability,
    group_commit: GroupCommit,
    buffer_bytes: usize,
    compare_overlap: bool,
    /// The committed cursor while a new one waits for its commit.
    committed_cursor: Vec<u8>,
    state: State<B::File>,
    report: RecoveryReport,
    poisoned: Poison,
}

enum State<F> {
    /// No file yet: it is created by the first append.
    Unborn {
        dtype: Option<Dtype>,
        row_shape: Vec<u64>,
        /// Create the file in Fortran order (rows along the last axis).
        fortran_order: bool,
    },
    Live(Box<Live<F>>),
}

struct Live<F> {
    npy: F,
    journal: F,
    layout: Layout,
    /// Values (not bytes) per row.
    row_values: u64,
    journal_id: u64,
    identity_len: u64,
    next_slot: Slot,
    next_sequence: u64,
    committed_rows: u64,
    cursor: Vec<u8>,
    /// The cursor changed since the last commit.
    cursor_dirty: bool,
    /// File offset where the next buffered bytes go.
    written_end: u64,
    buffer: Vec<u8>,
    pending_rows: u64,
    /// CRC32 of the pending rows already written to the file.
    pending_crc: crc32fast::Hasher,
    pending_since: Option<Instant>,
    /// Reused by every commit: the journal record and the header.
    record_buf: Vec<u8>,
    header_buf: Vec<u8>,
}

impl Appender<FsBackend> {
    /// Opens the file at `path` for appending with the default options:
    /// creates it if missing (dtype and row shape from the first typed
    /// append), takes over a clean `.npy`, or recovers a crashed writer's
    /// file to its last commit. See [`Appender::report`] for what was found.
    pub fn open_or_recover(path: impl AsRef<Path>) -> Result<Self> {
        AppendOptions::new().open(path)
    }
}

impl<B: Backend> Appender<B> {
    pub(crate) fn open_with(backend: B, path: &Path, options: &AppendOptions) -> Result<Self> {
        let journal_path = recovery::journal_path(path);
        let mut appender = Self {
            path: path.to_path_buf(),
            journal_path,
            durability: options.durability,
            group_commit: options.group_commit,
            buffer_bytes: options.buffer_bytes.unwrap_or(DEFAULT_BUFFER_BYTES).max(1),
            compare_overlap: options.compare_overlap,
            committed_cursor: Vec::new(),
            state: State::Unborn {
                dtype: options.dtype.clone(),
                row_shape: options.row_shape.clone().unwrap_or_default(),
                fortran_order: options.fortran_order.unwrap_or(false),
            },
            report: RecoveryReport::default(),
            poisoned: Poison::default(),
            backend,
        };
        appender.open_existing(options)?;
        if let State::Unborn {
            dtype: Some(dtype), ..
        } = &appender.state
        {
            let dtype = dtype.clone();
            appender.create(&dtype)?;
        }
        Ok(appender)
    }

    fn open_existing(&mut self, options: &AppendOptions) -> Result<()> {
        let (path, journal_path) = (self.path.clone(), self.journal_path.clone());
        crate::group::refuse_member(&self.backend, &path)?;
        let npy = match self.backend.open(&path, OpenMode::ReadWrite) {
            Ok(file) => {
                lock(&file, &path, options.lock_wait)?;
                locked_file_has_path(&self.backend, &file, &path)?;
                Some(file)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&path, "opening", e)),
        };
        let journal = match self.backend.open(&journal_path, OpenMode::ReadWrite) {
            Ok(file) => {
                // The writer holds the journal's lock too, so that a writer
                // still creating a new file (no `.npy` to lock yet) is never
                // mistaken for a crashed one.
                lock(&file, &journal_path, options.lock_wait)?;
                locked_file_has_path(&self.backend, &file, &journal_path)?;
                Some(file)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&journal_path, "opening the journal", e)),
        };
        let (npy, file_rewritten) =
            self.give_header_room(npy, journal.is_none(), options.tail_policy)?;
        let inspection = recovery::inspect(&Files {
            path: &path,
            journal_path: &journal_path,
            npy: npy.as_ref(),
            journal: journal.as_ref(),
            tail_policy: options.tail_policy,
        })?;
        let plan = match inspection {
            Inspection::Missing { discard_journal } => {
                if discard_journal {
                    // Removed while its lock is held, so that no other
                    // writer can take it over in between.
                    self.backend.remove(&journal_path).map_err(|e| {
                        Error::io(&journal_path, "removing an incomplete journal", e)
                    })?;
                    drop(journal);
                    let dir = recovery::parent_dir(&journal_path);
                    self.backend
                        .sync_dir(dir)
                        .map_err(|e| Error::io(dir, "syncing the directory", e))?;
                    self.report.journal_discarded = true;
                }
                return Ok(());
            }
            Inspection::Existing(plan) => plan,
        };
        check_options(&path, &plan, options)?;
        let applied = recovery::apply(
            &self.backend,
            &path,
            &journal_path,
            npy,
            journal,
            (*plan).clone(),
        )?;
        self.report = plan.report.clone();
        self.report.file_rewritten = file_rewritten;
        let identity_len = applied.identity.block_len();
        let mut newest = applied.newest.clone();
        self.adopt_cursor_file(&applied, &mut newest, plan.rows)?;
        if self.durability == Durability::Process && newest.1.data_synced {
            // A power loss under Process durability can leave the header
            // ahead of the journal (a commit's header kept, its record lost),
            // which recovery refuses when the newest durable record is an
            // Fsync commit's. So a copy of that record that claims no synced
            // data goes to the other slot first, durably; this writer's
            // commits then all go to the first slot.
            let record = Record {
                sequence: newest.1.sequence + 1,
                data_synced: false,
                ..newest.1.clone()
            };
            let bytes = record
                .encode(applied.identity.journal_id)
                .map_err(|e| Error::from_format(&journal_path, e))?;
            let slot = newest.0.other();
            applied
                .journal
                .write_at(&bytes, journal::slot_offset(identity_len, slot))
                .and_then(|()| applied.journal.sync_data())
                .map_err(|e| Error::io(&journal_path, "writing the journal", e))?;
            newest = (slot, record);
        }
        let row_values = plan.layout.header.row_shape().iter().product::<u64>();
        let end = plan.layout.end_of(plan.rows).unwrap_or(u64::MAX);
        self.state = State::Live(Box::new(Live {
            npy: applied.npy,
            journal: applied.journal,
            row_values,
            journal_id: applied.identity.journal_id,
            identity_len,
            next_slot: newest.0.other(),
            next_sequence: newest.1.sequence + 1,
            committed_rows: plan.rows,
            cursor: newest.1.cursor,
            cursor_dirty: false,
            written_end: end,
            buffer: Vec::new(),
            pending_rows: 0,
            pending_crc: crc32fast::Hasher::new(),
            pending_since: None,
            record_buf: Vec::new(),
            header_buf: Vec::new(),
            layout: plan.layout,
        }));
        Ok(())
    }

    /// With the writer lock on `file` (the `.npy`, if any) held: removes a
    /// leftover of a header rewrite that died before its rename, then, when
    /// the file has no journal and its header has no room to grow, replaces
    /// it by a rewritten copy whose header has room (returned, locked, with
    /// `true`).
    fn give_header_room(
        &self,
        file: Option<B::File>,
        no_journal: bool,
        tail_policy: TailPolicy,
    ) -> Result<(Option<B::File>, bool)> {
        let Some(file) = file else {
            return Ok((None, false));
        };
        let temp = recovery::rewrite_path(&self.path);
        if self
            .backend
            .exists(&temp)
            .map_err(|e| Error::io(&temp, "checking for a leftover rewrite", e))?
        {
            recovery::remove_rewrite_leftover(&self.backend, &self.path)?;
        }
        if !no_journal {
            return Ok((Some(file), false));
        }
        let Some(header) = recovery::header_without_room(&file, tail_policy)
            .map_err(|e| Error::io(&self.path, "reading the header", e))?
        else {
            return Ok((Some(file), false));
        };
        let new = recovery::rewrite_with_room(&self.backend, &self.path, &file, &header)?;
        Ok((Some(new), true))
    }

    /// Takes over the cursor a clean close left in the sidecar: when the
    /// journal's newest record is the one a new journal starts with (no
    /// commit yet) and the sidecar is intact and describes the same rows,
    /// its cursor goes into the journal in a record of its own (synced).
    /// The sidecar is then removed: the journal holds the cursor from now on.
    fn adopt_cursor_file(
        &self,
        applied: &recovery::Applied<B::File>,
        newest: &mut (Slot, Record),
        rows: u64,
    ) -> Result<()> {
        let path = cursor_path(&self.path);
        let Some(bytes) = read_whole(&self.backend, &path)? else {
            return Ok(());
        };
        let found = CursorFile::decode(&bytes)
            .ok()
            .filter(|f| f.rows == rows && !f.cursor.is_empty());
        if let Some(found) = found
            && newest.1.sequence == 1
            && newest.1.cursor.is_empty()
        {
            let record = Record {
                sequence: newest.1.sequence + 1,
                rows,
                prev_rows: rows,
                data_crc: 0,
                data_synced: false,
                cursor: found.cursor,
            };
            let bytes = record
                .encode(applied.identity.journal_id)
                .map_err(|e| Error::from_format(&self.journal_path, e))?;
            let slot = newest.0.other();
            applied
                .journal
                .write_at(
                    &bytes,
                    journal::slot_offset(applied.identity.block_len(), slot),
                )
                .and_then(|()| applied.journal.sync_data())
                .map_err(|e| Error::io(&self.journal_path, "writing the journal", e))?;
            *newest = (slot, record);
        }
        remove_cursor_file(&self.backend, &self.path)
    }

    /// `.npy` with an empty shape, each synced with its directory.
    fn create(&mut self, dtype: &Dtype) -> Result<()> {
        let State::Unborn {
            row_shape,
            fortran_order,
            ..
        } = &self.state
        else {
            return Ok(());
        };
        // numpy writes 1-D arrays with fortran_order False.
        let fortran_order = *fortran_order && !row_shape.is_empty();
        let shape: Vec<u64> = if fortran_order {
            row_shape.iter().copied().chain([0]).collect()
        } else {
            [0].into_iter().chain(row_shape.iter().copied()).collect()
        };
        let bytes = header::build(dtype, fortran_order, &shape)
            .map_err(|e| Error::from_format(&self.path, e))?;
        let parsed = header::parse(&bytes).map_err(|e| Error::from_format(&self.path, e))?;
        let layout = Layout::new(parsed).map_err(|e| Error::from_format(&self.path, e))?;
        // A cursor left by a removed file of the same name describes
        // nothing this writer creates.
        remove_cursor_file(&self.backend, &self.path)?;
        let (journal, identity, record) = recovery::create_journal(
            &self.backend,
            &self.journal_path,
            &layout,
            bytes.clone(),
            FLAG_CREATED,
            0,
        )?;
        // On failure the journal stays: if another writer created the
        // `.npy` meanwhile, it may be using this journal now; if not,
        // recovery recognises it.
        let npy = recovery::create_locked(&self.backend, &self.path, "creating the file")?;
        npy.write_at(&bytes, 0)
            .and_then(|()| npy.sync_data())
            .map_err(|e| Error::io(&self.path, "writing the header", e))?;
        let dir = recovery::parent_dir(&self.path);
        self.backend
            .sync_dir(dir)
            .map_err(|e| Error::io(dir, "syncing the directory", e))?;
        let row_values = layout.header.row_shape().iter().product::<u64>();
        self.state = State::Live(Box::new(Live {
            npy,
            journal,
            row_values,
            journal_id: identity.journal_id,
            identity_len: identity.block_len(),
            next_slot: Slot::B,
            next_sequence: record.sequence + 1,
            committed_rows: 0,
            cursor: Vec::new(),
            cursor_dirty: false,
            written_end: layout.header.header_len,
            buffer: Vec::new(),
            pending_rows: 0,
            pending_crc: crc32fast::Hasher::new(),
            pending_since: None,
            record_buf: Vec::new(),
            header_buf: Vec::new(),
            layout,
        }));
        self.report.found = Found::NoFile;
        Ok(())
    }

    /// What opening found and what recovery changed.
    pub fn report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The path of the `.npy` file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the journal next to it.
    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }

    /// Committed rows: after opening, where appending continues.
    pub fn len(&self) -> u64 {
        match &self.state {
            State::Live(live) => live.committed_rows,
            State::Unborn { .. } => 0,
        }
    }

    /// Whether no row is committed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows appended since the last commit.
    pub fn pending_rows(&self) -> u64 {
        match &self.state {
            State::Live(live) => live.pending_rows,
            State::Unborn { .. } => 0,
        }
    }

    /// The file's dtype; `None` before a new file's first append.
    pub fn dtype(&self) -> Option<&Dtype> {
        match &self.state {
            State::Live(live) => Some(&live.layout.header.dtype),
            State::Unborn { dtype, .. } => dtype.as_ref(),
        }
    }

    /// The shape of one row (the array's shape without its first axis).
    pub fn row_shape(&self) -> &[u64] {
        match &self.state {
            State::Live(live) => live.layout.header.row_shape(),
            State::Unborn { row_shape, .. } => row_shape,
        }
    }

    /// Whether the file is in Fortran order with more than one dimension
    /// (for a new file: whether it will be created so): rows are then
    /// slices along the last axis, each in Fortran order, and the array's
    /// shape is `(*row_shape, len)`. A 1-D array is the same in both orders
    /// and counts as C order, as in [`crate::Reader::fortran_order`].
    pub fn fortran_order(&self) -> bool {
        match &self.state {
            State::Live(live) => {
                live.layout.header.fortran_order && live.layout.header.shape.len() > 1
            }
            State::Unborn {
                row_shape,
                fortran_order,
                ..
            } => *fortran_order && !row_shape.is_empty(),
        }
    }

    /// Bytes per row; `None` before a new file's first append.
    pub fn row_bytes(&self) -> Option<u64> {
        match &self.state {
            State::Live(live) => Some(live.layout.row_bytes),
            State::Unborn { .. } => None,
        }
    }

    /// The durability of commits.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Whether an earlier failure poisoned this appender.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_set()
    }

    fn check_poison(&self) -> Result<()> {
        self.poisoned.check(&self.path)
    }

    /// Runs `f`; any error poisons the appender.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.check_poison()?;
        let result = f(self);
        self.poisoned.note(result)
    }

    /// Appends typed values: `values.len()` must be a whole number of rows
    /// and `T` exactly the file's dtype (no cast). A new file takes its dtype
    /// from `T`. The rows are pending until the next commit.
    pub fn append<T: Element>(&mut self, values: &[T]) -> Result<()> {
        self.check_poison()?;
        if let State::Unborn { dtype, .. } = &self.state {
            let dtype = match dtype {
                Some(d) if element::matches::<T>(d) => d.clone(),
                Some(d) => {
                    return Err(Error::DtypeMismatch {
                        expected: d.to_string(),
                        found: T::dtype().to_string(),
                    });
                }
                None => T::dtype(),
            };
            if values.is_empty() {
                return Ok(());
            }
            self.guarded(|a| a.create(&dtype))?;
        }
        let State::Live(live) = &self.state else {
            return Ok(());
        };
        let (rows, _) = live.typed_rows(values)?;
        self.append_rows(element::as_bytes(values), rows)
    }

    /// Appends raw row bytes in the file's own dtype layout (C order, the
    /// dtype's byte order): `bytes.len()` must be a whole number of rows.
    /// A new file needs its dtype from [`AppendOptions::dtype`].
    pub fn append_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.check_poison()?;
        if let State::Unborn { dtype, .. } = &self.state {
            let Some(dtype) = dtype.clone() else {
                return Err(Error::InvalidArgument {
                    what: format!(
                        "{}: a new file needs its dtype before raw bytes can be appended; \
                         set AppendOptions::dtype or make the first append a typed one",
                        self.path.display()
                    ),
                });
            };
            if bytes.is_empty() {
                return Ok(());
            }
            self.guarded(|a| a.create(&dtype))?;
        }
        let State::Live(live) = &self.state else {
            return Ok(());
        };
        let row_bytes = live.layout.row_bytes;
        if !(bytes.len() as u64).is_multiple_of(row_bytes) {
            return Err(Error::ShapeMismatch {
                expected: format!("a multiple of {row_bytes} bytes (whole rows)"),
                found: format!("{} bytes", bytes.len()),
            });
        }
        let rows = bytes.len() as u64 / row_bytes;
        self.append_rows(bytes, rows)
    }

    fn append_rows(&mut self, bytes: &[u8], rows: u64) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        self.guarded(|a| {
            let path = &a.path;
            let cap = a.buffer_bytes;
            // The clock is read only for a commit interval to measure.
            let timed = a.group_commit.interval.is_some();
            let State::Live(live) = &mut a.state else {
                return Ok(());
            };
            let total = live
                .committed_rows
                .checked_add(live.pending_rows)
                .and_then(|r| r.checked_add(rows))
                .filter(|&r| live.layout.end_of(r).is_some())
                .ok_or_else(|| Error::InvalidArgument {
                    what: format!("{}: the row count would overflow 64 bits", path.display()),
                })?;
            if live.buffer.len() + bytes.len() > cap {
                live.flush(path)?;
            }
            if bytes.len() >= cap {
                live.write(path, bytes)?;
            } else {
                live.buffer.extend_from_slice(bytes);
            }
            live.pending_rows = total - live.committed_rows;
            if timed {
                live.pending_since.get_or_insert_with(Instant::now);
            }
            Ok(())
        })?;
        if self.group_commit.is_set() && self.group_due() {
            self.commit()?;
        }
        Ok(())
    }

    fn group_due(&self) -> bool {
        let State::Live(live) = &self.state else {
            return false;
        };
        let g = &self.group_commit;
        g.rows.is_some_and(|n| live.pending_rows >= n)
            || g.bytes
                .is_some_and(|n| live.pending_rows.saturating_mul(live.layout.row_bytes) >= n)
            || g.interval
                .zip(live.pending_since)
                .is_some_and(|(every, since)| since.elapsed() >= every)
    }

    /// Exactly-once append keyed by row index: `values` are the rows
    /// `start_row..` of the array (typed, as for [`append`](Self::append)).
    /// Rows the file already holds (committed or pending) are skipped, the
    /// rest appended; returns how many rows were appended. A builder that
    /// restarts from an older checkpoint of its input passes the row index of
    /// that checkpoint and produces no duplicates.
    ///
    /// With [`AppendOptions::compare_overlap`], the skipped rows are compared
    /// with the file's and a difference is [`Error::DataDiffers`]. A
    /// `start_row` past the rows the file holds (committed plus pending: a
    /// pending row is appended already, and the next commit keeps it) is
    /// [`Error::Gap`]. Neither error appends anything or poisons the writer.
    pub fn append_at<T: Element>(&mut self, start_row: u64, values: &[T]) -> Result<u64> {
        self.check_poison()?;
        if let State::Live(live) = &self.state {
            live.typed_rows(values)?;
            return self.append_bytes_at(start_row, element::as_bytes(values));
        }
        // No file yet: nothing is held, and a typed append creates it.
        if start_row > 0 {
            return Err(self.gap(start_row, 0));
        }
        self.append(values)?;
        Ok(self.len() + self.pending_rows())
    }

    /// [`append_at`](Self::append_at) for raw row bytes in the file's own
    /// layout (as for [`append_bytes`](Self::append_bytes)).
    pub fn append_bytes_at(&mut self, start_row: u64, bytes: &[u8]) -> Result<u64> {
        self.check_poison()?;
        let held = self.len() + self.pending_rows();
        if start_row > held {
            return Err(self.gap(start_row, held));
        }
        let State::Live(live) = &self.state else {
            self.append_bytes(bytes)?;
            return Ok(self.len() + self.pending_rows() - held);
        };
        let row_bytes = live.layout.row_bytes;
        if !(bytes.len() as u64).is_multiple_of(row_bytes) {
            return Err(Error::ShapeMismatch {
                expected: format!("a multiple of {row_bytes} bytes (whole rows)"),
                found: format!("{} bytes", bytes.len()),
            });
        }
        let rows = bytes.len() as u64 / row_bytes;
        let skip = (held - start_row).min(rows);
        let (old, new) = bytes.split_at((skip * row_bytes) as usize);
        if self.compare_overlap {
            self.compare_rows(start_row, old)?;
        }
        self.append_bytes(new)?;
        Ok(rows - skip)
    }

    fn gap(&self, start_row: u64, held: u64) -> Error {
        Error::Gap {
            path: self.path.clone(),
            start_row,
            len: held,
        }
    }

    /// Compares `bytes` (whole rows) with the rows from `start_row` the file
    /// holds; pending rows are written to the file first.
    fn compare_rows(&mut self, start_row: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let first_diff = self.guarded(|a| {
            let State::Live(live) = &mut a.state else {
                return Ok(None);
            };
            live.flush(&path)?;
            let row_bytes = live.layout.row_bytes as usize;
            let mut at = live.layout.end_of(start_row).unwrap_or(u64::MAX);
            let chunk_rows = (DEFAULT_BUFFER_BYTES / row_bytes).max(1);
            let mut buf = Vec::new();
            for (i, given) in bytes.chunks(chunk_rows * row_bytes).enumerate() {
                buf.resize(given.len(), 0);
                live.npy
                    .read_at(&mut buf, at)
                    .map_err(|e| Error::io(&path, "reading rows to compare", e))?;
                if let Some(row) = buf
                    .chunks(row_bytes)
                    .zip(given.chunks(row_bytes))
                    .position(|(a, b)| a != b)
                {
                    return Ok(Some(start_row + (i * chunk_rows + row) as u64));
                }
                at += given.len() as u64;
            }
            Ok(None)
        })?;
        match first_diff {
            Some(row) => Err(Error::DataDiffers { path, row }),
            None => Ok(()),
        }
    }

    /// The cursor of the last commit: what
    /// [`commit_with_cursor`](Self::commit_with_cursor) stored, found again
    /// by [`Appender::open_or_recover`] after a crash or a clean close. Empty
    /// when no commit carried one.
    pub fn cursor(&self) -> &[u8] {
        match &self.state {
            State::Live(live) if !live.cursor_dirty => &live.cursor,
            State::Live(_) => self.committed_cursor.as_slice(),
            State::Unborn { .. } => &[],
        }
    }

    /// Commits every pending row together with `cursor`, a small user value
    /// (for example the position in the input the rows came from), in one
    /// journal record: after a crash, [`cursor`](Self::cursor) returns the
    /// cursor of exactly the commit recovery kept. Commits even when no row
    /// is pending. At most [`MAX_CURSOR_LEN`](crate::MAX_CURSOR_LEN) bytes
    /// (8128), else [`Error::CursorTooLong`], which commits nothing.
    ///
    /// Later [`commit`](Self::commit)s keep the same cursor. A new file
    /// needs its dtype ([`AppendOptions::dtype`] or a typed append) first.
    pub fn commit_with_cursor(&mut self, cursor: &[u8]) -> Result<u64> {
        self.check_poison()?;
        if cursor.len() > journal::MAX_CURSOR_LEN {
            return Err(Error::CursorTooLong {
                len: cursor.len(),
                max: journal::MAX_CURSOR_LEN,
            });
        }
        if let State::Unborn { dtype, .. } = &self.state {
            let Some(dtype) = dtype.clone() else {
                return Err(Error::InvalidArgument {
                    what: format!(
                        "{}: a new file needs its dtype before a cursor can be committed; \
                         set AppendOptions::dtype or append a typed row first",
                        self.path.display()
                    ),
                });
            };
            self.guarded(|a| a.create(&dtype))?;
        }
        if let State::Live(live) = &mut self.state
            && live.cursor != cursor
        {
            self.committed_cursor = std::mem::replace(&mut live.cursor, cursor.to_vec());
            live.cursor_dirty = true;
        }
        self.commit()
    }

    /// Makes every pending row committed and returns the committed row count.
    ///
    /// When this returns `Ok` under [`Durability::Fsync`] (the default), the
    /// rows survive power loss; under [`Durability::Process`], they survive
    /// the death of the process. Readers see them from now on. On error the
    /// appender is poisoned and the commit is not acknowledged (recovery may
    /// or may not keep it). Committing with no pending rows does nothing.
    pub fn commit(&mut self) -> Result<u64> {
        self.guarded(|a| {
            let Self {
                path,
                journal_path,
                durability,
                state,
                ..
            } = a;
            match state {
                State::Live(live) => live.commit(path, journal_path, *durability),
                State::Unborn { .. } => Ok(0),
            }
        })
    }

    /// Commits, makes the header final and durable, removes the journal and
    /// syncs the directory: the file is left a plain `.npy` with nothing
    /// beside it. Returns the committed row count. An appender that never
    /// received a row for a new file creates nothing.
    ///
    /// Under both durabilities, close syncs the file before removing the
    /// journal, so a closed file survives power loss.
    pub fn close(mut self) -> Result<u64> {
        let rows = self.commit()?;
        self.guarded(|a| {
            let State::Live(live) = std::mem::replace(
                &mut a.state,
                State::Unborn {
                    dtype: None,
                    row_shape: Vec::new(),
                    fortran_order: false,
                },
            ) else {
                return Ok(());
            };
            let Live {
                npy,
                journal,
                cursor,
                committed_rows,
                ..
            } = *live;
            npy.sync_all()
                .map_err(|e| Error::io(&a.path, "syncing the header", e))?;
            if !cursor.is_empty() {
                write_cursor_file(&a.backend, &a.path, committed_rows, cursor)?;
            }
            a.backend
                .remove(&a.journal_path)
                .map_err(|e| Error::io(&a.journal_path, "removing the journal", e))?;
            drop(journal);
            let dir = recovery::parent_dir(&a.journal_path);
            a.backend
                .sync_dir(dir)
                .map_err(|e| Error::io(dir, "syncing the directory", e))?;
            drop(npy);
            Ok(())
        })?;
        Ok(rows)
    }
}

impl<F: Storage> Live<F> {
    /// Checks that `values` are whole rows of exactly the file's dtype:
    /// the number of rows and the values per row.
    fn typed_rows<T: Element>(&self, values: &[T]) -> Result<(u64, u64)> {
        if !element::matches::<T>(&self.layout.header.dtype) {
            return Err(Error::DtypeMismatch {
                expected: self.layout.header.dtype.to_string(),
                found: T::dtype().to_string(),
            });
        }
        let per_row = self.row_values;
        if per_row == 0 || !(values.len() as u64).is_multiple_of(per_row) {
            return Err(Error::ShapeMismatch {
                expected: format!(
                    "a multiple of {per_row} values (rows of shape {:?})",
                    self.layout.header.row_shape()
                ),
                found: format!("{} values", values.len()),
            });
        }
        Ok((values.len() as u64 / per_row, per_row))
    }

    /// Writes `bytes` (whole rows) at the end of the written data.
    fn write(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.npy
            .write_at(bytes, self.written_end)
            .map_err(|e| Error::io(path, "writing rows", e))?;
        self.pending_crc.update(bytes);
        self.written_end += bytes.len() as u64;
        Ok(())
    }

    /// Writes the buffered rows to the file.
    fn flush(&mut self, path: &Path) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let buffer = std::mem::take(&mut self.buffer);
        let result = self.write(path, &buffer);
        self.buffer = buffer;
        self.buffer.clear();
        result
    }

    fn commit(&mut self, path: &Path, journal_path: &Path, durability: Durability) -> Result<u64> {
        if self.pending_rows == 0 && !self.cursor_dirty {
            return Ok(self.committed_rows);
        }
        let synced = durability == Durability::Fsync;
        // 1. rows past the committed end.
        self.flush(path)?;
        // 2. rows durable.
        if synced {
            self.npy
                .sync_data()
                .map_err(|e| Error::io(path, "syncing rows", e))?;
        }
        // 3. journal record in the older slot, durable.
        let rows = self.committed_rows + self.pending_rows;
        let record = Record {
            sequence: self.next_sequence,
            rows,
            prev_rows: self.committed_rows,
            data_crc: self.pending_crc.clone().finalize(),
            data_synced: synced,
            // Lent to the record for its encoding, given back below.
            cursor: std::mem::take(&mut self.cursor),
        };
        let encoded = record.encode_into(self.journal_id, &mut self.record_buf);
        self.cursor = record.cursor;
        encoded.map_err(|e| Error::from_format(journal_path, e))?;
        self.journal
            .write_at(
                &self.record_buf,
                journal::slot_offset(self.identity_len, self.next_slot),
            )
            .map_err(|e| Error::io(journal_path, "writing the journal", e))?;
        if synced {
            self.journal
                .sync_data()
                .map_err(|e| Error::io(journal_path, "syncing the journal", e))?;
        }
        // 4. header shape, in place.
        self.layout
            .header_bytes_into(rows, &mut self.header_buf)
            .map_err(|e| Error::from_format(path, e))?;
        let skip = self.layout.header.version.prefix_len();
        self.npy
            .write_at(self.header_buf.get(skip..).unwrap_or_default(), skip as u64)
            .map_err(|e| Error::io(path, "rewriting the header", e))?;
        self.layout.set_rows(rows);
        self.committed_rows = rows;
        self.pending_rows = 0;
        self.pending_crc = crc32fast::Hasher::new();
        self.pending_since = None;
        self.cursor_dirty = false;
        // Fsync commits alternate slots: a torn record leaves the previous,
        // durable one. Process commits all go to one slot, so that the other
        // keeps the durable record this writer opened with (or created):
        // alternating without syncs would let two unsynced records replace
        // every durable one, and a power loss could then fall back behind it.
        if synced {
            self.next_slot = self.next_slot.other();
        }
        self.next_sequence += 1;
        Ok(rows)
    }
}

/// The cursor sidecar of a `.npy` path: `<file>.cursor`.
pub fn cursor_path(path: &Path) -> PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(".cursor");
    PathBuf::from(os)
}

/// The whole content of `path`, `None` when it does not exist.
pub(crate) fn read_whole<B: Backend>(backend: &B, path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match backend.open(path, OpenMode::Read) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, "opening", e)),
    };
    let len = file
        .len()
        .map_err(|e| Error::io(path, "reading the length", e))?;
    // Anything longer than a cursor file can be is not one.
    let len = usize::try_from(len)
        .unwrap_or(usize::MAX)
        .min(journal::SLOT_LEN as usize * 2);
    let mut bytes = vec![0u8; len];
    file.read_at(&mut bytes, 0)
        .map_err(|e| Error::io(path, "reading", e))?;
    Ok(Some(bytes))
}

/// Removes the cursor sidecar of `npy_path` if there is one, durably.
fn remove_cursor_file<B: Backend>(backend: &B, npy_path: &Path) -> Result<()> {
    let path = cursor_path(npy_path);
    match backend.remove(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&path, "removing the cursor file", e)),
    }
    let dir = recovery::parent_dir(&path);
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io(dir, "syncing the directory", e))
}

/// Writes the cursor sidecar of a file being closed with `rows` rows: a new
/// file, synced, its directory entry synced (before the journal goes).
fn write_cursor_file<B: Backend>(
    backend: &B,
    npy_path: &Path,
    rows: u64,
    cursor: Vec<u8>,
) -> Result<()> {
    let path = cursor_path(npy_path);
    let bytes = CursorFile { rows, cursor }
        .encode()
        .map_err(|e| Error::from_format(&path, e))?;
    match backend.remove(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&path, "removing the cursor file", e)),
    }
    let file = backend
        .open(&path, OpenMode::CreateNew)
        .map_err(|e| Error::io(&path, "creating the cursor file", e))?;
    file.write_at(&bytes, 0)
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(&path, "writing the cursor file", e))?;
    let dir = recovery::parent_dir(&path);
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io(dir, "syncing the directory", e))
}

/// Takes the writer lock on `file`, waiting as `wait` allows.
pub(crate) fn lock<F: Storage>(file: &F, path: &Path, wait: LockWait) -> Result<()> {
    let deadline = match wait {
        LockWait::Fail => None,
        LockWait::Wait(d) => Some(Instant::now() + d),
    };
    let mut pause = Duration::from_millis(1);
    loop {
        if file.try_lock().map_err(|e| Error::io(path, "locking", e))? {
            return Ok(());
        }
        match deadline {
            Some(deadline) if Instant::now() < deadline => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            _ => {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                });
            }
        }
    }
}

/// After taking a lock: `Locked` when `path` no longer names `file`, because
/// another writer removed or replaced it meanwhile (a lock on an unlinked
/// file protects nothing).
pub(crate) fn locked_file_has_path<B: Backend>(
    backend: &B,
    file: &B::File,
    path: &Path,
) -> Result<()> {
    if backend
        .is_same_file(file, path)
        .map_err(|e| Error::io(path, "checking the locked file", e))?
    {
        Ok(())
    } else {
        Err(Error::Locked {
            path: path.to_path_buf(),
        })
    }
}

/// Checks explicit dtype and row-shape options against an existing file.
fn check_options(path: &Path, plan: &Plan, options: &AppendOptions) -> Result<()> {
    let header = &plan.layout.header;
    if let Some(dtype) = &options.dtype
        && *dtype != header.dtype
    {
        {
            return Err(Error::DtypeMismatch {
                expected: header.dtype.to_string(),
                found: format!("{dtype} (from the options, for {})", path.display()),
            });
        }
    }
    if let Some(fortran) = options.fortran_order
        && fortran != header.fortran_order
        && !header.row_shape().is_empty()
    {
        let order = |f: bool| if f { "Fortran" } else { "C" };
        return Err(Error::ShapeMismatch {
            expected: format!(
                "an array in {} order ({})",
                order(header.fortran_order),
                path.display()
            ),
            found: format!("{} order in the options", order(fortran)),
        });
    }
    if let Some(shape) = &options.row_shape
        && shape.as_slice() != header.row_shape()
    {
        {
            return Err(Error::ShapeMismatch {
                expected: format!(
                    "rows of shape {:?} ({})",
                    header.row_shape(),
                    path.display()
                ),
                found: format!("rows of shape {shape:?} in the options"),
            });
        }
    }
    Ok(())
}
