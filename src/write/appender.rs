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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::data_file::DataFile;
use crate::element::{self, Element};
use crate::error::{Error, Poison, Result};
use crate::files;
use crate::format::cursor_file::{self, CursorFile};
use crate::format::dtype::Dtype;
use crate::format::header;
use crate::format::journal::{self, FLAG_CREATED, Record, Slot};
use crate::format::layout::Layout;
use crate::options::{AppendOptions, Durability, GroupCommit, LockWait};
use crate::recovery::{self, Files, Inspection, Plan};
use crate::report::{Found, RecoveryReport};
use crate::storage::{Backend, FsBackend, OpenMode, Storage};

/// Default size of the user-space buffer collecting small appends.
const DEFAULT_BUFFER_BYTES: usize = 1 << 20;

/// Bytes of a group member's marker read (it holds a file name).
const MARKER_MAX_LEN: usize = 4096;

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
    data: DataFile<F>,
    journal: F,
    journal_id: u64,
    identity_len: u64,
    next_slot: Slot,
    next_sequence: u64,
    cursor: Vec<u8>,
    /// The cursor changed since the last commit.
    cursor_dirty: bool,
    pending_since: Option<Instant>,
    /// Reused by every commit for the journal record.
    record_buf: Vec<u8>,
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

impl AppendOptions {
    /// Opens, creates or recovers the file at `path` on the real file system.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Appender<FsBackend>> {
        Appender::open_with(FsBackend, path.as_ref(), &self)
    }

    /// Opens, creates or recovers the file at `path` on `backend`.
    pub fn open_with<B: Backend>(self, backend: B, path: impl AsRef<Path>) -> Result<Appender<B>> {
        Appender::open_with(backend, path.as_ref(), &self)
    }
}

impl<B: Backend> Appender<B> {
    fn open_with(backend: B, path: &Path, options: &AppendOptions) -> Result<Self> {
        let resolved = files::resolve(&backend, path)?;
        let path = resolved.as_path();
        files::check_sidecar_names(&backend, path)?;
        let journal_path = files::journal_path(path);
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
        refuse_member(&self.backend, &path)?;
        let npy = files::open_locked(&self.backend, &path, options.lock_wait, "opening")?;
        // The writer holds the journal's lock too, so that a writer still
        // creating a new file (no `.npy` to lock yet) is never mistaken for a
        // crashed one. With the `.npy` locked, a held journal lock is a
        // reader's probe (see files::lock_probed). Without a `.npy` it can
        // be one too: a reader of a file removed since may still probe the
        // journal its path had. Waiting for a probe, a writer finds another
        // writer creating the file after that short wait.
        let journal = files::open_locked_probed(
            &self.backend,
            &journal_path,
            options.lock_wait,
            "opening the journal",
        )?;
        let (npy, room) = self.give_header_room(npy, journal.is_none(), options)?;
        let aside = recovery::aside_if(&self.backend, &journal_path, journal.is_some())?;
        let inspection = recovery::inspect(&Files::of(
            &path,
            &journal_path,
            npy.as_ref(),
            journal.as_ref(),
            &aside,
            options,
        ))?;
        let plan = match inspection {
            Inspection::Missing { journal: stray } => {
                // Removed or moved while its lock is held, so that no other
                // writer can take it over in between.
                self.report.journal_moved_aside =
                    recovery::clear_stray(&self.backend, &journal_path, stray)?;
                self.report.journal_discarded = stray == recovery::Stray::Remove;
                drop(journal);
                return Ok(());
            }
            Inspection::Existing(plan) => plan,
        };
        check_options(&path, &plan, options)?;
        if journal.is_some() && plan.report.changed_file() {
            // A writer removes the journal when it closes: recovery changes
            // the file only in a directory where that will be possible.
            files::check_dir_writable(&self.backend, &path)?;
        }
        let applied = recovery::apply(
            &self.backend,
            &path,
            &journal_path,
            npy,
            journal,
            (*plan).clone(),
        )?;
        self.report = plan.report.clone();
        self.report.file_rewritten = room.file_rewritten;
        self.report.rewrite_leftover_removed = room.leftover_removed;
        self.report
            .journal_moved_aside
            .clone_from(&applied.moved_aside);
        let identity_len = applied.identity.block_len();
        let mut newest = applied.newest.clone();
        self.adopt_cursor_file(&applied, &mut newest, plan.file.rows)?;
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
        let data = self.data_file(path, applied.npy, plan.layout)?;
        self.state = State::Live(Box::new(Live {
            data,
            journal: applied.journal,
            journal_id: applied.identity.journal_id,
            identity_len,
            next_slot: newest.0.other(),
            next_sequence: newest.1.sequence + 1,
            cursor: newest.1.cursor,
            cursor_dirty: false,
            pending_since: None,
            record_buf: Vec::new(),
        }));
        Ok(())
    }

    /// With the writer lock on `file` (the `.npy`, if any) held: removes a
    /// leftover of a header rewrite that died before its rename, then, when
    /// the file has no journal and its header has no room to grow, replaces
    /// it by a rewritten copy whose header has room (returned, locked).
    fn give_header_room(
        &self,
        file: Option<B::File>,
        no_journal: bool,
        options: &AppendOptions,
    ) -> Result<(Option<B::File>, HeaderRoom)> {
        let mut room = HeaderRoom::default();
        let Some(file) = file else {
            return Ok((None, room));
        };
        if rewrite_leftover(&self.backend, &self.path)? {
            recovery::remove_rewrite_leftover(&self.backend, &self.path)?;
            room.leftover_removed = true;
        }
        if !no_journal {
            return Ok((Some(file), room));
        }
        let Some(header) =
            recovery::header_without_room(&file, options.tail_policy, options.short_file_policy)
                .map_err(|e| Error::io(&self.path, "reading the header", e))?
        else {
            return Ok((Some(file), room));
        };
        let new = recovery::rewrite_with_room(&self.backend, &self.path, &file, &header)?;
        room.file_rewritten = true;
        Ok((Some(new), room))
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
        let path = files::cursor_path(&self.path);
        let Some(bytes) = files::read_small(&self.backend, &path, cursor_file::MAX_LEN)? else {
            return Ok(());
        };
        if let Some(cursor) = cursor_to_adopt(newest.1.sequence, &newest.1.cursor, rows, &bytes) {
            let record = Record {
                sequence: newest.1.sequence + 1,
                rows,
                prev_rows: rows,
                data_crc: 0,
                data_synced: false,
                cursor,
                file_id: applied
                    .npy
                    .file_id()
                    .map_err(|e| Error::io(&self.path, "reading the file's identity", e))?,
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
        files::remove_durably(&self.backend, &path, "removing the cursor file")?;
        Ok(())
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
        files::remove_durably(
            &self.backend,
            &files::cursor_path(&self.path),
            "removing the cursor file",
        )?;
        let (journal, identity, record) = recovery::create_journal(
            &self.backend,
            &self.journal_path,
            &layout,
            bytes.clone(),
            FLAG_CREATED,
            0,
            None,
        )?;
        // The journal's lock keeps every other writer away until the file
        // exists: no writer creates a `.npy` without holding its journal. On
        // failure both go again, so a failed creation changes nothing.
        let npy = match self.create_npy(&bytes) {
            Ok(npy) => npy,
            Err(e) => {
                let _ = files::remove_durably(
                    &self.backend,
                    &self.journal_path,
                    "removing a failed journal",
                );
                drop(journal);
                return Err(e);
            }
        };
        let data = self.data_file(self.path.clone(), npy, layout)?;
        self.state = State::Live(Box::new(Live {
            data,
            journal,
            journal_id: identity.journal_id,
            identity_len: identity.block_len(),
            next_slot: Slot::B,
            next_sequence: record.sequence + 1,
            cursor: Vec::new(),
            cursor_dirty: false,
            pending_since: None,
            record_buf: Vec::new(),
        }));
        self.report.found = Found::NoFile;
        Ok(())
    }

    /// Creates the new `.npy` (locked) holding `header`, synced with its
    /// directory entry; on failure removes what it created.
    fn create_npy(&self, header: &[u8]) -> Result<B::File> {
        let path = &self.path;
        let npy = self
            .backend
            .open(path, OpenMode::CreateNew)
            .map_err(|e| Error::io(path, "creating the file", e))?;
        // Another writer that opened the new, empty file holds its lock only
        // until it finds the journal locked.
        let done = files::lock(&npy, path, LockWait::Wait(Duration::from_secs(1)))
            .and_then(|()| files::check_named(&self.backend, &npy, path))
            .and_then(|()| {
                npy.write_at(header, 0)
                    .and_then(|()| npy.sync_data())
                    .map_err(|e| Error::io(path, "writing the header", e))
            })
            .and_then(|()| files::sync_parent(&self.backend, path));
        match done {
            Ok(()) => Ok(npy),
            Err(e) => {
                // This writer created the file and holds the journal's lock:
                // no other writer can be using it.
                let _ = files::remove_durably(&self.backend, path, "removing a failed file");
                Err(e)
            }
        }
    }

    /// What opening found and what recovery changed.
    pub fn report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The path of the `.npy` file: the path it was opened with, with a
    /// symbolic link in its last component resolved (the journal and the
    /// other sidecars sit beside the file itself).
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
            State::Live(live) => live.data.committed(),
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
            State::Live(live) => live.data.pending(),
            State::Unborn { .. } => 0,
        }
    }

    /// The file's dtype; `None` before a new file's first append.
    pub fn dtype(&self) -> Option<&Dtype> {
        match &self.state {
            State::Live(live) => Some(live.data.dtype()),
            State::Unborn { dtype, .. } => dtype.as_ref(),
        }
    }

    /// The shape of one row (the array's shape without its first axis).
    pub fn row_shape(&self) -> &[u64] {
        match &self.state {
            State::Live(live) => live.data.row_shape(),
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
                let header = &live.data.layout().header;
                header.fortran_order && header.shape.len() > 1
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
            State::Live(live) => Some(live.data.row_bytes()),
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

    /// The write path of the open file; under [`Durability::Fsync`], whose
    /// every commit syncs the rows, it hands them to the device as they are
    /// written.
    fn data_file(&self, path: PathBuf, npy: B::File, layout: Layout) -> Result<DataFile<B::File>> {
        let data = DataFile::new(path, npy, layout, self.buffer_bytes)?;
        Ok(match self.durability {
            Durability::Fsync => data.start_early_writeback(),
            Durability::Process => data,
        })
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
                        path: self.path.clone(),
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
        let bytes = live.data.typed_bytes(values)?;
        self.append_rows(bytes)
    }

    /// Appends raw row bytes in the file's own dtype layout (C order, the
    /// dtype's byte order): `bytes.len()` must be a whole number of rows.
    /// A new file needs its dtype from [`AppendOptions::dtype`].
    pub fn append_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.check_poison()?;
        if let State::Unborn { dtype, .. } = &self.state {
            let Some(dtype) = dtype.clone() else {
                return Err(Error::InvalidArgument {
                    path: Some(self.path.clone()),
                    what: "a new file needs its dtype before raw bytes can be appended; \
                           set AppendOptions::dtype or make the first append a typed one"
                        .to_owned(),
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
        live.data.rows_in(bytes)?;
        self.append_rows(bytes)
    }

    /// Appends whole rows (checked by the caller) to the live file.
    fn append_rows(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.guarded(|a| {
            // The clock is read only for a commit interval to measure.
            let timed = a.group_commit.interval.is_some();
            let State::Live(live) = &mut a.state else {
                return Ok(());
            };
            live.data.push(bytes)?;
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
        let pending = live.data.pending();
        g.rows.is_some_and(|n| pending >= n)
            || g.bytes
                .is_some_and(|n| pending.saturating_mul(live.data.row_bytes()) >= n)
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
            let bytes = live.data.typed_bytes(values)?;
            return self.append_bytes_at(start_row, bytes);
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
        let row_bytes = live.data.row_bytes();
        let rows = live.data.rows_in(bytes)?;
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
        let first_diff = self.guarded(|a| match &mut a.state {
            State::Live(live) => live.data.first_difference(start_row, bytes),
            State::Unborn { .. } => Ok(None),
        })?;
        match first_diff {
            Some(row) => Err(Error::DataDiffers {
                path: self.path.clone(),
                row,
            }),
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
                    path: Some(self.path.clone()),
                    what: "a new file needs its dtype before a cursor can be committed; \
                           set AppendOptions::dtype or append a typed row first"
                        .to_owned(),
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
    ///
    /// A commit that wrote something then checks that the file's path
    /// still names the file this writer holds (under
    /// [`Durability::Fsync`] the journal's path too; [`close`](Self::close)
    /// checks both), and fails with [`Error::Replaced`] when another
    /// program removed or replaced it.
    pub fn commit(&mut self) -> Result<u64> {
        self.guarded(|a| {
            let Self {
                backend,
                journal_path,
                durability,
                state,
                ..
            } = a;
            match state {
                State::Live(live) => {
                    let wrote = live.data.pending() > 0 || live.cursor_dirty;
                    let rows = live.commit(journal_path, *durability)?;
                    if wrote {
                        live.check_file_held(backend, journal_path)?;
                        // The journal's path too where a commit syncs (its
                        // cost is lost in the sync's); otherwise at close.
                        if *durability == Durability::Fsync {
                            live.check_journal_held(backend, journal_path, false)?;
                        }
                    }
                    Ok(rows)
                }
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
            live.check_file_held(&a.backend, &a.journal_path)?;
            live.data.sync_all()?;
            // Never remove a file another program put in the journal's place.
            live.check_journal_held(&a.backend, &a.journal_path, true)?;
            let Live {
                data,
                journal,
                cursor,
                ..
            } = *live;
            if !cursor.is_empty() {
                write_cursor_file(&a.backend, &a.path, data.committed(), cursor)?;
            }
            a.backend
                .remove(&a.journal_path)
                .map_err(|e| Error::io(&a.journal_path, "removing the journal", e))?;
            drop(journal);
            files::sync_parent(&a.backend, &a.journal_path)?;
            drop(data);
            Ok(())
        })?;
        Ok(rows)
    }
}

impl<F: Storage> Live<F> {
    /// `Replaced` when the file's path no longer names the file this writer
    /// holds. The writer then removes its own journal, which describes a
    /// file no longer at the path, so that the path is left to whatever is
    /// there now.
    fn check_file_held<B: Backend<File = F>>(
        &self,
        backend: &B,
        journal_path: &Path,
    ) -> Result<()> {
        let Err(mut err) = self.data.check_held(backend) else {
            return Ok(());
        };
        let removed = self
            .check_journal_held(backend, journal_path, false)
            .and_then(|()| {
                files::remove_durably(backend, journal_path, "removing the journal").map(|_| ())
            });
        if let Error::Replaced { kept, .. } = &mut err {
            match removed {
                Ok(()) => kept.push_str(
                    " It removed its journal, which described that file: opening the path \
                     again takes it as it is now (a new file when there is none). Restore \
                     the file from a copy first if it was removed by mistake",
                ),
                Err(e) => {
                    let _ = write!(
                        kept,
                        " Its journal could not be removed ({e}): once the path holds the \
                         right file, remove {} and open it again",
                        journal_path.display()
                    );
                }
            }
        }
        Err(err)
    }

    /// `Replaced` when `journal_path` no longer names this writer's journal;
    /// `closing` once the file is synced with its final header.
    fn check_journal_held<B: Backend<File = F>>(
        &self,
        backend: &B,
        journal_path: &Path,
        closing: bool,
    ) -> Result<()> {
        let (path, rows) = (self.data.path(), self.data.committed());
        files::check_held(backend, &self.journal, journal_path, "its journal", || {
            if closing {
                format!(
                    "{} is closed all the same: its {rows} committed rows are synced and its \
                     header is final, nothing else is needed",
                    path.display()
                )
            } else {
                format!(
                    "{} is a plain .npy of its {rows} committed rows, but a crash from now on \
                     could not be recovered, so the writer stopped; reopen the file to go on",
                    path.display()
                )
            }
        })
    }

    fn commit(&mut self, journal_path: &Path, durability: Durability) -> Result<u64> {
        if self.data.pending() == 0 && !self.cursor_dirty {
            return Ok(self.data.committed());
        }
        let synced = durability == Durability::Fsync;
        // 1. rows past the committed end.
        self.data.flush()?;
        // 2. rows durable.
        if synced {
            self.data.sync_rows()?;
        }
        // 3. journal record in the older slot, durable.
        let pending = self.data.pending_commit();
        let record = Record {
            sequence: self.next_sequence,
            rows: pending.rows,
            prev_rows: pending.prev_rows,
            data_crc: pending.data_crc,
            data_synced: synced,
            // Lent to the record for its encoding, given back below.
            cursor: std::mem::take(&mut self.cursor),
            file_id: self.data.file_id(),
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
        self.data.publish()?;
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
        Ok(pending.rows)
    }
}

/// Writes the cursor sidecar of a file being closed with `rows` rows: a new
/// file, synced, its directory entry synced (before the journal goes).
fn write_cursor_file<B: Backend>(
    backend: &B,
    npy_path: &Path,
    rows: u64,
    cursor: Vec<u8>,
) -> Result<()> {
    let path = files::cursor_path(npy_path);
    let bytes = CursorFile { rows, cursor }
        .encode()
        .map_err(|e| Error::from_format(&path, e))?;
    match backend.remove(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&path, "removing the cursor file", e)),
    }
    // The directory sync after the creation covers the removal too.
    files::create_durably(backend, &path, &bytes, "writing the cursor file")
}

/// What opening did about a header without room to grow.
#[derive(Debug, Default)]
struct HeaderRoom {
    /// A leftover `<file>.rewrite` was removed.
    leftover_removed: bool,
    /// The file was replaced by a copy whose header has room.
    file_rewritten: bool,
}

/// Whether a leftover of a header rewrite (`<file>.rewrite`) is beside
/// `path`: opening removes it.
pub(crate) fn rewrite_leftover<B: Backend>(backend: &B, path: &Path) -> Result<bool> {
    let temp = files::rewrite_path(path);
    backend
        .exists(&temp)
        .map_err(|e| Error::io(&temp, "checking for a leftover rewrite", e))
}

/// The cursor of the sidecar `bytes` that opening takes into the journal:
/// when the journal's newest record (`sequence`, `cursor`) is the one a new
/// journal starts with (no commit yet, no cursor) and the sidecar is intact,
/// not empty, and describes the same `rows`.
pub(crate) fn cursor_to_adopt(
    sequence: u64,
    cursor: &[u8],
    rows: u64,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    let found = CursorFile::decode(bytes).ok()?;
    (found.rows == rows && !found.cursor.is_empty() && sequence == 1 && cursor.is_empty())
        .then_some(found.cursor)
}

/// `GroupMember` when a marker says `path` belongs to a group.
pub(crate) fn refuse_member<B: Backend>(backend: &B, path: &Path) -> Result<()> {
    let marker = files::member_marker_path(path);
    match files::read_small(backend, &marker, MARKER_MAX_LEN)? {
        None => Ok(()),
        Some(bytes) => Err(Error::GroupMember {
            path: path.to_path_buf(),
            group: String::from_utf8_lossy(&bytes).trim().to_owned(),
            marker,
        }),
    }
}

/// Checks explicit dtype and row-shape options against an existing file.
pub(crate) fn check_options(path: &Path, plan: &Plan, options: &AppendOptions) -> Result<()> {
    let header = &plan.layout.header;
    if let Some(dtype) = &options.dtype
        && *dtype != header.dtype
    {
        {
            return Err(Error::DtypeMismatch {
                path: path.to_path_buf(),
                expected: header.dtype.to_string(),
                found: format!("{dtype} in the options"),
            });
        }
    }
    if let Some(fortran) = options.fortran_order
        && fortran != header.fortran_order
        && !header.row_shape().is_empty()
    {
        let order = |f: bool| if f { "Fortran" } else { "C" };
        return Err(Error::ShapeMismatch {
            path: path.to_path_buf(),
            expected: format!("an array in {} order", order(header.fortran_order)),
            found: format!("{} order in the options", order(fortran)),
        });
    }
    if let Some(shape) = &options.row_shape
        && shape.as_slice() != header.row_shape()
    {
        {
            return Err(Error::ShapeMismatch {
                path: path.to_path_buf(),
                expected: format!("rows of shape {}", header::shape_repr(header.row_shape())),
                found: format!("rows of shape {} in the options", header::shape_repr(shape)),
            });
        }
    }
    Ok(())
}
