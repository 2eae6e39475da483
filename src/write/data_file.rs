//! One `.npy` file being appended to: the single-file write path that
//! [`Appender`](crate::Appender) and every member of an
//! [`AppendGroup`](crate::AppendGroup) share.
//!
//! A `DataFile` holds the open, locked file, its [`Layout`], the committed
//! and pending rows, the end of the written bytes, the buffer for small
//! appends and the running CRC of the pending rows. It writes rows only past
//! the committed end and rewrites only the header: the commit protocol
//! (which record goes where, when to sync) belongs to its owner, which calls
//! [`DataFile::flush`], [`DataFile::sync_rows`], [`DataFile::pending_commit`]
//! and then, once the record is written, [`DataFile::publish`].

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::element::{self, Element};
use crate::error::{Error, Result};
use crate::files;
use crate::format::dtype::{Dtype, Kind};
use crate::format::header;
use crate::format::layout::Layout;
use crate::storage::{Backend, Storage};

/// Bytes written (and then checksummed) at a time. The CRC of a chunk runs
/// right after the write that copied it into the page cache, so that it
/// reads the chunk from the core's cache, not from memory; the kernel's
/// copy takes the one read from memory. 128 KiB keeps the chunk and its
/// page cache pages well inside a core's 2 MiB cache: with 1 MiB chunks the
/// CRC cost about twice as much, with 64 KiB the writes' own file system
/// work (the inode's size and times, a few microseconds each) starts to
/// show. Chunks end at multiples of this size in the file, so that every
/// write after an append's first starts on a page boundary (a write that
/// starts inside a page costs about 3 % more). `docs/benchmarks.md` has the
/// measurements.
const WRITE_CHUNK: usize = 128 << 10;

/// Under early writeback, written bytes are handed to the device in steps
/// of at least this many: one `sync_file_range` a step.
const WRITEBACK_STEP: u64 = 1 << 20;

/// Rows appended to a file since its last commit, as a journal records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PendingCommit {
    /// Committed rows once the commit is done.
    pub rows: u64,
    /// Committed rows before it.
    pub prev_rows: u64,
    /// CRC32 of the bytes of rows `prev_rows..rows`.
    pub data_crc: u32,
}

/// An open, locked `.npy` that rows are appended to.
pub(crate) struct DataFile<F> {
    path: PathBuf,
    file: F,
    /// The header's shape holds the committed rows.
    layout: Layout,
    /// Values (not bytes) per row.
    row_values: u64,
    committed: u64,
    pending: u64,
    /// File offset where the next buffered bytes go.
    written_end: u64,
    /// Whether written rows are handed to the device as they are written
    /// ([`start_early_writeback`](Self::start_early_writeback)).
    early_writeback: bool,
    /// Written bytes from here to `written_end` are not yet handed to the
    /// device.
    writeback_from: u64,
    buffer: Vec<u8>,
    buffer_cap: usize,
    /// CRC32 of the pending rows already written to the file.
    crc: crc32fast::Hasher,
    /// The header bytes the file holds, and a buffer for the next ones.
    header_now: Vec<u8>,
    header_next: Vec<u8>,
    /// The file's device and inode numbers, when the file system has them.
    file_id: Option<(u64, u64)>,
}

impl<F: Storage> DataFile<F> {
    /// A file whose header holds exactly `layout` (its shape at the
    /// committed rows), as recovery or creation leaves it.
    pub(crate) fn new(path: PathBuf, file: F, layout: Layout, buffer_cap: usize) -> Result<Self> {
        let committed = layout.rows();
        let header_now = layout
            .header_bytes(committed)
            .map_err(|e| Error::from_format(&path, e))?;
        let file_id = file
            .file_id()
            .map_err(|e| Error::io(&path, "reading the file's identity", e))?;
        let end = layout.end_of(committed).unwrap_or(u64::MAX);
        Ok(Self {
            file_id,
            row_values: layout.header.row_shape().iter().product(),
            written_end: end,
            early_writeback: false,
            writeback_from: end,
            committed,
            pending: 0,
            buffer: Vec::new(),
            buffer_cap: buffer_cap.max(1),
            crc: crc32fast::Hasher::new(),
            header_now,
            header_next: Vec::new(),
            path,
            file,
            layout,
        })
    }

    /// Hands written rows to the device as they are written, in steps of
    /// [`WRITEBACK_STEP`], without waiting ([`Storage::start_writeback`]),
    /// for owners whose every commit syncs the rows: the device then writes
    /// while the writer goes on copying, and the commit's sync finds only
    /// the last step to write. It changes nothing that is promised: until a
    /// sync returns, any of the written bytes may or may not be durable,
    /// with or without it.
    pub(crate) fn start_early_writeback(mut self) -> Self {
        self.early_writeback = true;
        self
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `Replaced` when the path no longer names the open file (see
    /// [`files::check_held`]).
    pub(crate) fn check_held<B: Backend<File = F>>(&self, backend: &B) -> Result<()> {
        files::check_held(backend, &self.file, &self.path, "the file", || {
            "the rows it wrote are in the file it opened, which no path names now (it is \
             gone once the writer is dropped), and whatever is at the path was not written \
             by it; the writer stopped, this commit is not acknowledged."
                .to_owned()
        })
    }

    /// The file's device and inode numbers, when the file system has them.
    pub(crate) fn file_id(&self) -> Option<(u64, u64)> {
        self.file_id
    }

    /// The file's layout (its header's shape at the committed rows).
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The file's dtype.
    pub(crate) fn dtype(&self) -> &Dtype {
        &self.layout.header.dtype
    }

    /// The shape of one row.
    pub(crate) fn row_shape(&self) -> &[u64] {
        self.layout.header.row_shape()
    }

    /// Bytes per row.
    pub(crate) fn row_bytes(&self) -> u64 {
        self.layout.row_bytes
    }

    /// Values per row.
    pub(crate) fn row_values(&self) -> u64 {
        self.row_values
    }

    /// Committed rows.
    pub(crate) fn committed(&self) -> u64 {
        self.committed
    }

    /// Rows appended since the last commit.
    pub(crate) fn pending(&self) -> u64 {
        self.pending
    }

    /// Rows the file holds: committed plus pending.
    pub(crate) fn held(&self) -> u64 {
        self.committed + self.pending
    }

    /// Checks that `values` are whole rows of exactly the file's dtype (no
    /// cast) and returns their bytes.
    pub(crate) fn typed_bytes<'v, T: Element>(&self, values: &'v [T]) -> Result<&'v [u8]> {
        if !element::matches::<T>(self.dtype()) {
            return Err(Error::DtypeMismatch {
                path: self.path.clone(),
                expected: self.dtype().to_string(),
                found: T::dtype().to_string(),
            });
        }
        let per_row = self.row_values;
        if per_row == 0 || !(values.len() as u64).is_multiple_of(per_row) {
            return Err(Error::ShapeMismatch {
                path: self.path.clone(),
                expected: format!(
                    "a multiple of {per_row} values (rows of shape {})",
                    header::shape_repr(self.row_shape())
                ),
                found: format!("{} values", values.len()),
            });
        }
        Ok(element::as_bytes(values))
    }

    /// Checks that `bytes` are rows this file takes ([`rows_in`]); returns
    /// how many.
    pub(crate) fn rows_in(&self, bytes: &[u8]) -> Result<u64> {
        rows_in(&self.path, &self.layout, bytes)
    }

    /// Appends `bytes` (whole rows, checked by [`rows_in`](Self::rows_in)):
    /// buffered when small, written past the written end otherwise. Pending
    /// until the owner commits.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<()> {
        let rows = self.rows_in(bytes)?;
        if rows == 0 {
            return Ok(());
        }
        let total = self
            .held()
            .checked_add(rows)
            .filter(|&r| self.layout.end_of(r).is_some())
            .ok_or_else(|| Error::InvalidArgument {
                path: Some(self.path.clone()),
                what: "the row count would overflow 64 bits".to_owned(),
            })?;
        if self.buffer.len() + bytes.len() > self.buffer_cap {
            self.flush()?;
        }
        if bytes.len() >= self.buffer_cap {
            self.write(bytes)?;
        } else {
            self.buffer.extend_from_slice(bytes);
        }
        self.pending = total - self.committed;
        Ok(())
    }

    /// Writes `bytes` at the written end, checksumming each chunk right
    /// after it is written ([`WRITE_CHUNK`] says why in that order).
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            // Chunks end at multiples of WRITE_CHUNK in the file, so that
            // every write after the first starts on a page.
            let to_boundary = WRITE_CHUNK - (self.written_end % WRITE_CHUNK as u64) as usize;
            let (chunk, after) = rest.split_at(to_boundary.min(rest.len()));
            self.file
                .write_at(chunk, self.written_end)
                .map_err(|e| Error::io(&self.path, "writing rows", e))?;
            self.crc.update(chunk);
            self.written_end += chunk.len() as u64;
            if self.early_writeback && self.written_end - self.writeback_from >= WRITEBACK_STEP {
                // A hint: a failure here would surface at the sync, which
                // writes the same bytes and reports the device's errors.
                let _ = self
                    .file
                    .start_writeback(self.writeback_from, self.written_end - self.writeback_from);
                self.writeback_from = self.written_end;
            }
            rest = after;
        }
        Ok(())
    }

    /// Writes the buffered rows to the file.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let buffer = std::mem::take(&mut self.buffer);
        let result = self.write(&buffer);
        self.buffer = buffer;
        self.buffer.clear();
        result
    }

    /// Makes the written rows durable (`fdatasync`).
    pub(crate) fn sync_rows(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(&self.path, "syncing rows", e))
    }

    /// Makes the file, header included, durable (`fsync`).
    pub(crate) fn sync_all(&self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io(&self.path, "syncing the header", e))
    }

    /// The counts and checksum a journal record of the next commit holds.
    /// Call after [`flush`](Self::flush), so that every pending row is in
    /// the checksum.
    pub(crate) fn pending_commit(&self) -> PendingCommit {
        PendingCommit {
            rows: self.held(),
            prev_rows: self.committed,
            data_crc: self.crc.clone().finalize(),
        }
    }

    /// Once the record committing the pending rows is written: rewrites the
    /// header's shape in place (never ahead of the record) and counts the
    /// rows as committed.
    pub(crate) fn publish(&mut self) -> Result<()> {
        let rows = self.held();
        if rows != self.committed {
            self.layout
                .header_bytes_into(rows, &mut self.header_next)
                .map_err(|e| Error::from_format(&self.path, e))?;
            files::write_header(&self.file, &self.path, &self.header_now, &self.header_next)?;
            std::mem::swap(&mut self.header_now, &mut self.header_next);
            self.layout.set_rows(rows);
            self.committed = rows;
        }
        self.pending = 0;
        self.crc = crc32fast::Hasher::new();
        self.writeback_from = self.written_end;
        Ok(())
    }

    /// Compares `bytes` (whole rows) with the rows from `start_row` the file
    /// holds (pending rows are written to the file first); the index of the
    /// first row that differs.
    pub(crate) fn first_difference(&mut self, start_row: u64, bytes: &[u8]) -> Result<Option<u64>> {
        if bytes.is_empty() {
            return Ok(None);
        }
        self.flush()?;
        let row_bytes = self.layout.row_bytes as usize;
        let mut at = self.layout.end_of(start_row).unwrap_or(u64::MAX);
        let chunk_rows = (WRITE_CHUNK / row_bytes).max(1);
        let mut buf = Vec::new();
        for (i, given) in bytes.chunks(chunk_rows * row_bytes).enumerate() {
            buf.resize(given.len(), 0);
            self.file
                .read_at(&mut buf, at)
                .map_err(|e| Error::io(&self.path, "reading rows to compare", e))?;
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
    }

    /// Rows `range` (committed or pending) read into a vector; pending rows
    /// are written to the file first.
    pub(crate) fn read_rows(&mut self, range: Range<u64>) -> Result<Vec<u8>> {
        if range.start > range.end || range.end > self.held() {
            return Err(Error::InvalidArgument {
                path: Some(self.path.clone()),
                what: format!(
                    "rows {}..{}, the file holds {}",
                    range.start,
                    range.end,
                    self.held()
                ),
            });
        }
        self.flush()?;
        let len =
            usize::try_from((range.end - range.start) * self.layout.row_bytes).map_err(|_| {
                Error::InvalidArgument {
                    path: Some(self.path.clone()),
                    what: format!("rows {}..{} do not fit in memory", range.start, range.end),
                }
            })?;
        let mut buf = vec![0u8; len];
        self.file
            .read_at(
                &mut buf,
                self.layout.end_of(range.start).unwrap_or(u64::MAX),
            )
            .map_err(|e| Error::io(&self.path, "reading rows", e))?;
        Ok(buf)
    }
}

/// Checks that `bytes` are rows a file of `layout` at `path` takes: whole
/// rows, and, for a `bool` file (`|b1`), only the bytes 0 and 1. Returns
/// how many rows.
///
/// The one check of appended bytes, for every writer (an appender, every
/// member of a group, a ragged array, a shard): numpy shows another byte
/// as it is (`np.uint8` view) or as `True`, but a Rust `bool` holding it is
/// undefined behaviour, so typed reads refuse it as corruption; refusing it
/// here keeps every file this library writes readable both ways.
pub(crate) fn rows_in(path: &Path, layout: &Layout, bytes: &[u8]) -> Result<u64> {
    let row_bytes = layout.row_bytes;
    if !(bytes.len() as u64).is_multiple_of(row_bytes) {
        return Err(Error::ShapeMismatch {
            path: path.to_path_buf(),
            expected: format!("a multiple of {row_bytes} bytes (whole rows)"),
            found: format!("{} bytes", bytes.len()),
        });
    }
    let dtype = &layout.header.dtype;
    if matches!(dtype, Dtype::Scalar(s) if s.kind == Kind::Bool)
        && let Some(at) = bytes.iter().position(|&b| b > 1)
    {
        return Err(Error::InvalidArgument {
            path: Some(path.to_path_buf()),
            what: format!(
                "value {at} of the rows given is the byte {:#04x}, but a {dtype} (bool) value \
                 must be 0 (false) or 1 (true); nothing was appended",
                bytes.get(at).copied().unwrap_or(0),
            ),
        });
    }
    Ok(bytes.len() as u64 / row_bytes)
}
