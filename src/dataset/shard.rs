//! A shard's writer: an append group of one `.npy` per column, with
//! exactly-once appends that compare what they skip, and a complete mark.

use std::path::{Path, PathBuf};

use super::{Column, Schema, check_shard_name, ensure_schema, group_options, shard_journal};
use crate::element::{self, Element};
use crate::error::{Error, Result};
use crate::format::dataset::{self as fmt, MAX_SHARD_CURSOR_LEN};
use crate::format::dtype::Dtype;
use crate::options::{Durability, LockWait};
use crate::storage::{Directories, FsBackend};
use crate::write::group::AppendGroup;

/// Opens shard `shard` of the dataset at `root` on the real file system:
/// creates the dataset (with `columns`) and the shard when missing, or
/// resumes it. `columns` may be `None` when the dataset exists.
///
/// The same as `ShardOptions::new().columns(columns).open(root, shard)`.
pub fn open_shard(
    root: impl AsRef<Path>,
    shard: &str,
    columns: Option<&[Column]>,
) -> Result<ShardWriter<FsBackend>> {
    let mut options = ShardOptions::new();
    if let Some(columns) = columns {
        options = options.columns(columns);
    }
    options.open(root, shard)
}

/// Options for opening a shard: `ShardOptions::new().columns(..)
/// .open(root, shard)`.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    columns: Option<Vec<Column>>,
    lock_wait: LockWait,
    compare_overlap: bool,
    buffer_bytes: Option<usize>,
    durability: Durability,
    move_aside_foreign_journal: bool,
    accept_loss: bool,
}

impl Default for ShardOptions {
    fn default() -> Self {
        Self {
            columns: None,
            lock_wait: LockWait::Fail,
            compare_overlap: true,
            buffer_bytes: None,
            durability: Durability::Fsync,
            move_aside_foreign_journal: false,
            accept_loss: false,
        }
    }
}

impl ShardOptions {
    /// No columns (the dataset must exist), fail at once when the shard is
    /// locked, compare the rows `append_at` skips, fsync durability.
    pub fn new() -> Self {
        Self::default()
    }

    /// The dataset's columns: the schema of a new dataset; checked against
    /// an existing one.
    #[must_use]
    pub fn columns(mut self, columns: &[Column]) -> Self {
        self.columns = Some(columns.to_vec());
        self
    }

    /// What to do when another writer holds the shard.
    #[must_use]
    pub fn lock_wait(mut self, lock_wait: LockWait) -> Self {
        self.lock_wait = lock_wait;
        self
    }

    /// What to do with a file at the shard's group journal path that this
    /// library did not write, when none of the shard's column files exists:
    /// refuse (the default) or move it aside
    /// ([`GroupOptions::move_aside_foreign_journal`](crate::GroupOptions::move_aside_foreign_journal)).
    #[must_use]
    pub fn move_aside_foreign_journal(mut self, move_aside: bool) -> Self {
        self.move_aside_foreign_journal = move_aside;
        self
    }

    /// Whether [`ShardWriter::append_at`] compares the rows it skips with
    /// the rows the shard holds (default true).
    #[must_use]
    pub fn compare_overlap(mut self, compare: bool) -> Self {
        self.compare_overlap = compare;
        self
    }

    /// Size of each column's buffer for small appends.
    #[must_use]
    pub fn buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer_bytes = Some(bytes);
        self
    }

    /// The durability of commits (default [`Durability::Fsync`]: a commit
    /// survives power loss). Under [`Durability::Process`] commits and the
    /// complete mark are not synced: they survive the death of the process
    /// (`kill -9`, a killed worker), and a power loss can take the shard
    /// back to an earlier commit, never to a partial one
    /// ([`GroupOptions::durability`](crate::GroupOptions::durability)).
    /// [`finalize`](crate::dataset::finalize) publishes such a shard
    /// unsynced too: after a power loss the reader refuses a manifest that
    /// lists rows the shard lost, until it is finished and finalized again.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Whether recovery may cut rows it cannot show are the shard's own
    /// ([`GroupOptions::accept_loss`](crate::GroupOptions::accept_loss);
    /// default no).
    #[must_use]
    pub fn accept_loss(mut self, accept: bool) -> Self {
        self.accept_loss = accept;
        self
    }

    /// Opens (creating or resuming) shard `shard` of the dataset at `root`
    /// on the real file system.
    pub fn open(self, root: impl AsRef<Path>, shard: &str) -> Result<ShardWriter<FsBackend>> {
        ShardWriter::open_with(FsBackend, root.as_ref(), shard, &self)
    }

    /// Opens shard `shard` of the dataset at `root` on `backend`.
    pub fn open_with<B: Directories + Clone>(
        self,
        backend: B,
        root: impl AsRef<Path>,
        shard: &str,
    ) -> Result<ShardWriter<B>> {
        ShardWriter::open_with(backend, root.as_ref(), shard, &self)
    }
}

/// One batch of rows for a shard: every column of the dataset, each with
/// the same number of rows.
///
/// ```
/// # use npy_append::dataset::Batch;
/// let ids = [0u64, 1, 2];
/// let feats = [0f32; 3 * 4];
/// let batch = Batch::new().column("id", &ids).column("feature", &feats);
/// # let _ = batch;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Batch<'a> {
    parts: Vec<Part<'a>>,
}

/// Whether a dtype is that of typed values, and their dtype.
type TypeCheck = (fn(&Dtype) -> bool, Dtype);

#[derive(Debug, Clone)]
struct Part<'a> {
    name: &'a str,
    bytes: &'a [u8],
    /// For typed values: whether a dtype is theirs, and their dtype.
    typed: Option<TypeCheck>,
}

impl<'a> Batch<'a> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds column `name`: typed values, whole rows in C order, exactly the
    /// column's dtype (never cast).
    #[must_use]
    pub fn column<T: Element>(mut self, name: &'a str, values: &'a [T]) -> Self {
        self.parts.push(Part {
            name,
            bytes: element::as_bytes(values),
            typed: Some((element::matches::<T>, T::dtype())),
        });
        self
    }

    /// Adds column `name` as raw row bytes in the column's own layout.
    #[must_use]
    pub fn column_bytes(mut self, name: &'a str, bytes: &'a [u8]) -> Self {
        self.parts.push(Part {
            name,
            bytes,
            typed: None,
        });
        self
    }
}

/// The writer of one shard: an append group holding one plain `.npy` per
/// column, committed together, with a cursor and a complete mark.
///
/// One writer per shard: a second one gets [`Error::Locked`]. Dropping the
/// writer without [`close`](Self::close) or [`finish`](Self::finish) has the
/// effect of a crash: committed rows stay, pending rows are cut by the next
/// open.
pub struct ShardWriter<B: Directories + Clone = FsBackend> {
    root: PathBuf,
    name: String,
    schema: Schema,
    row_bytes: Vec<u64>,
    group: AppendGroup<B>,
    cursor: Vec<u8>,
    complete: bool,
    resumed: bool,
    compare_overlap: bool,
}

impl<B: Directories + Clone> std::fmt::Debug for ShardWriter<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardWriter")
            .field("root", &self.root)
            .field("name", &self.name)
            .field("rows", &self.len())
            .field("pending_rows", &self.pending_rows())
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

impl<B: Directories + Clone> ShardWriter<B> {
    /// Opens, creating or resuming, shard `shard` of the dataset at `root`.
    pub fn open_with(backend: B, root: &Path, shard: &str, options: &ShardOptions) -> Result<Self> {
        check_shard_name(shard)?;
        let schema = ensure_schema(&backend, root, options.columns.as_deref())?;
        let row_bytes = schema
            .columns
            .iter()
            .map(Column::row_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::from_format(super::schema_path(root), e))?;
        let dir = root.join(shard);
        let journal = shard_journal(root, shard);
        let resumed = backend
            .exists(&journal)
            .map_err(|e| Error::io(&journal, "checking", e))?;
        if !resumed {
            backend
                .create_dir_all(&dir)
                .map_err(|e| Error::io(&dir, "creating the shard directory", e))?;
            backend
                .sync_dir(root)
                .map_err(|e| Error::io(root, "syncing the directory", e))?;
        }
        let mut group = group_options(&schema, options.lock_wait)
            .move_aside_foreign_journal(options.move_aside_foreign_journal)
            .durability(options.durability)
            .accept_loss(options.accept_loss);
        if let Some(bytes) = options.buffer_bytes {
            group = group.buffer_bytes(bytes);
        }
        let group = group.open_with(backend, &journal)?;
        let rows = group.member_rows();
        if rows.windows(2).any(|w| w.first() != w.get(1)) {
            return Err(Error::Corrupt {
                path: journal,
                offset: None,
                what: format!(
                    "its columns hold different rows ({rows:?}); a shard's columns are always \
                     committed together"
                ),
            });
        }
        let (complete, cursor) =
            fmt::parse_shard_cursor(group.cursor()).map_err(|e| Error::from_format(&journal, e))?;
        let cursor = cursor.to_vec();
        Ok(Self {
            root: root.to_path_buf(),
            name: shard.to_owned(),
            schema,
            row_bytes,
            group,
            cursor,
            complete,
            resumed,
            compare_overlap: options.compare_overlap,
        })
    }

    /// The dataset's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The shard's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shard's directory.
    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    /// The dataset's schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The dataset's columns.
    pub fn columns(&self) -> &[Column] {
        &self.schema.columns
    }

    /// Committed rows (every column holds as many).
    pub fn len(&self) -> u64 {
        self.group.rows(0)
    }

    /// Whether no row is committed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows appended since the last commit.
    pub fn pending_rows(&self) -> u64 {
        self.group.pending_rows(0)
    }

    /// The cursor of the last commit (empty when none carried one).
    pub fn cursor(&self) -> &[u8] {
        &self.cursor
    }

    /// Whether the shard is complete ([`finish`](Self::finish) was called,
    /// by this writer or an earlier one). A complete shard takes no rows.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether the shard existed before this open (a restarted or retried
    /// writer resuming it), rather than being created by it.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Bytes recovery cut at open (rows of commits that never completed).
    pub fn bytes_cut(&self) -> u64 {
        self.group.bytes_cut()
    }

    /// The path of column `i`'s `.npy` file.
    pub fn column_path(&self, i: usize) -> Option<&Path> {
        self.group.member_path(i)
    }

    fn journal_path(&self) -> PathBuf {
        shard_journal(&self.root, &self.name)
    }

    fn check_open(&self) -> Result<()> {
        if self.complete {
            return Err(Error::InvalidArgument {
                path: None,
                what: format!(
                    "shard {} of {} is complete; it takes no more rows",
                    self.name,
                    self.root.display()
                ),
            });
        }
        Ok(())
    }

    /// The rows of `batch` and its bytes in schema order, checked: every
    /// column once, no other, typed values of exactly the column's dtype,
    /// whole rows, the same number of rows in each.
    fn resolve<'b>(&self, batch: &Batch<'b>) -> Result<(u64, Vec<&'b [u8]>)> {
        for (i, part) in batch.parts.iter().enumerate() {
            if self.schema.index(part.name).is_none() {
                return Err(Error::InvalidArgument {
                    path: None,
                    what: format!(
                        "column {:?} is not in the dataset {} (its columns: {})",
                        part.name,
                        self.root.display(),
                        self.schema.describe()
                    ),
                });
            }
            if batch.parts.iter().take(i).any(|p| p.name == part.name) {
                return Err(Error::InvalidArgument {
                    path: None,
                    what: format!("column {:?} is given twice in one batch", part.name),
                });
            }
        }
        let mut cols = Vec::with_capacity(self.schema.columns.len());
        for c in &self.schema.columns {
            let part = batch
                .parts
                .iter()
                .find(|p| p.name == c.name)
                .ok_or_else(|| Error::InvalidArgument {
                    path: None,
                    what: format!(
                        "the batch has no column {:?}; every batch holds every column ({})",
                        c.name,
                        self.schema.describe()
                    ),
                })?;
            if let Some((matches, dtype)) = &part.typed
                && !matches(&c.dtype)
            {
                return Err(Error::DtypeMismatch {
                    path: self.journal_path(),
                    expected: format!("{} (column {})", c.dtype_text(), c.name),
                    found: dtype.to_string(),
                });
            }
            cols.push(part.bytes);
        }
        let rows = self.rows_of(&cols)?;
        Ok((rows, cols))
    }

    /// The rows of raw column bytes in schema order, checked.
    fn rows_of(&self, cols: &[&[u8]]) -> Result<u64> {
        if cols.len() != self.schema.columns.len() {
            return Err(Error::InvalidArgument {
                path: None,
                what: format!(
                    "{} columns given, the dataset has {} ({})",
                    cols.len(),
                    self.schema.columns.len(),
                    self.schema.describe()
                ),
            });
        }
        let mut rows = None;
        for ((c, bytes), &row_bytes) in self.schema.columns.iter().zip(cols).zip(&self.row_bytes) {
            let len = bytes.len() as u64;
            if !len.is_multiple_of(row_bytes) {
                return Err(Error::ShapeMismatch {
                    path: self.journal_path(),
                    expected: format!(
                        "whole rows of column {} ({row_bytes} bytes each: {} {})",
                        c.name,
                        c.dtype_text(),
                        crate::format::header::shape_repr(&c.row_shape)
                    ),
                    found: format!("{len} bytes"),
                });
            }
            let n = len / row_bytes;
            match rows {
                None => rows = Some((n, &c.name)),
                Some((m, first)) if m != n => {
                    return Err(Error::ShapeMismatch {
                        path: self.journal_path(),
                        expected: format!("as many rows of {} as of {first} ({m})", c.name),
                        found: format!("{n} rows"),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(rows.map_or(0, |(n, _)| n))
    }

    /// Appends `batch` after the rows the shard holds; pending until the
    /// next commit.
    pub fn append(&mut self, batch: &Batch<'_>) -> Result<()> {
        self.check_open()?;
        let (rows, cols) = self.resolve(batch)?;
        let held = self.len() + self.pending_rows();
        self.append_resolved_at(held, rows, &cols).map(|_| ())
    }

    /// Exactly-once append keyed by row index: `batch` holds the shard's
    /// rows `start_row..`. Rows the shard already holds (committed or
    /// pending) are skipped, after comparing them with the rows given
    /// (unless [`ShardOptions::compare_overlap`] is off): a difference is
    /// [`Error::DataDiffers`] naming the column's file in the shard, and
    /// nothing is appended. A `start_row` past the rows held is
    /// [`Error::Gap`]. Returns the rows appended.
    pub fn append_at(&mut self, start_row: u64, batch: &Batch<'_>) -> Result<u64> {
        self.check_open()?;
        let (rows, cols) = self.resolve(batch)?;
        self.append_resolved_at(start_row, rows, &cols)
    }

    /// [`append`](Self::append) for raw row bytes, one slice per column in
    /// the schema's order.
    pub fn append_bytes(&mut self, cols: &[&[u8]]) -> Result<()> {
        self.check_open()?;
        let rows = self.rows_of(cols)?;
        let held = self.len() + self.pending_rows();
        self.append_resolved_at(held, rows, cols).map(|_| ())
    }

    /// [`append_at`](Self::append_at) for raw row bytes, one slice per
    /// column in the schema's order.
    pub fn append_bytes_at(&mut self, start_row: u64, cols: &[&[u8]]) -> Result<u64> {
        self.check_open()?;
        let rows = self.rows_of(cols)?;
        self.append_resolved_at(start_row, rows, cols)
    }

    fn append_resolved_at(&mut self, start_row: u64, rows: u64, cols: &[&[u8]]) -> Result<u64> {
        let held = self.len() + self.pending_rows();
        if start_row > held {
            return Err(Error::Gap {
                path: self.journal_path(),
                start_row,
                len: held,
            });
        }
        // Every column's bytes are checked before any column is appended
        // to, so a refused batch leaves every column as it was.
        for (i, bytes) in cols.iter().enumerate() {
            self.group.rows_in(i, bytes)?;
        }
        let overlap = (held - start_row).min(rows);
        if overlap > 0 && self.compare_overlap {
            for (i, (bytes, &row_bytes)) in cols.iter().zip(&self.row_bytes).enumerate() {
                let held_rows = self.group.read_rows(i, start_row..start_row + overlap)?;
                let given = bytes
                    .get(..(overlap * row_bytes) as usize)
                    .unwrap_or_default();
                if held_rows != given {
                    let row = held_rows
                        .chunks(row_bytes as usize)
                        .zip(given.chunks(row_bytes as usize))
                        .position(|(a, b)| a != b)
                        .unwrap_or(0) as u64;
                    return Err(Error::DataDiffers {
                        path: self
                            .group
                            .member_path(i)
                            .map_or_else(|| self.journal_path(), Path::to_path_buf),
                        row: start_row + row,
                    });
                }
            }
        }
        for (i, (bytes, &row_bytes)) in cols.iter().zip(&self.row_bytes).enumerate() {
            let new = bytes
                .get((overlap * row_bytes) as usize..)
                .unwrap_or_default();
            self.group.append_bytes(i, new)?;
        }
        Ok(rows - overlap)
    }

    /// Commits the pending rows of every column as one group commit;
    /// returns the committed rows. Durable when it returns (under
    /// [`Durability::Process`]: kept when the process dies).
    pub fn commit(&mut self) -> Result<u64> {
        Ok(self.group.commit()?.first().copied().unwrap_or(0))
    }

    /// Commits the pending rows together with `cursor` (at most
    /// [`MAX_SHARD_CURSOR_LEN`] bytes, else [`Error::CursorTooLong`], which
    /// commits nothing). After a crash, [`cursor`](Self::cursor) is the
    /// cursor of the commit that survived.
    pub fn commit_with_cursor(&mut self, cursor: &[u8]) -> Result<u64> {
        self.check_open()?;
        if cursor.len() > MAX_SHARD_CURSOR_LEN {
            return Err(Error::CursorTooLong {
                len: cursor.len(),
                max: MAX_SHARD_CURSOR_LEN,
            });
        }
        let rows = self
            .group
            .commit_with_cursor(&fmt::shard_cursor(false, cursor))?;
        self.cursor = cursor.to_vec();
        Ok(rows.first().copied().unwrap_or(0))
    }

    /// Commits the pending rows, marks the shard complete and closes it;
    /// returns its rows. The mark is a group commit of its own (no rows, the
    /// state byte of the cursor set), so "complete" and the rows it covers
    /// are one atomic record, and reading it never needs the rows' data.
    /// Finishing a complete shard only closes it.
    pub fn finish(mut self) -> Result<u64> {
        if !self.complete {
            self.commit()?;
            self.group
                .commit_with_cursor(&fmt::shard_cursor(true, &self.cursor))?;
            self.complete = true;
        }
        Ok(self.group.close()?.first().copied().unwrap_or(0))
    }

    /// Commits the pending rows and closes the shard (not complete: a later
    /// writer resumes it); returns its rows.
    pub fn close(self) -> Result<u64> {
        Ok(self.group.close()?.first().copied().unwrap_or(0))
    }
}
