//! The reader: a read-only, memory-mapped view of the committed rows.
//!
//! A [`Reader`] takes no lock and never writes, so any number of readers run
//! beside one writer without slowing it down. It shows exactly the rows that
//! are committed, decided by the same rules as recovery:
//!
//! - with a journal whose identity is valid (a writer is active, or crashed):
//!   the newest valid slot's row count, the journal bound to the file as
//!   recovery binds it (same dtype, row shape and header length);
//! - without one (a cleanly closed file, or one numpy wrote): the header's
//!   row count, and the file must hold those rows;
//!
//! and never more rows than the file holds. Only that committed prefix is
//! mapped: the writer only ever writes past it (new rows) or rewrites the
//! header, which is not mapped, so the mapped bytes never change.
//!
//! The journal and the header are read before the file's length, and the
//! writer writes the rows before the record that commits them and the record
//! before the header, so a reader never sees a committed count whose rows are
//! not in the file yet. Within one journal a record with a lower sequence
//! than one already seen is a stale read (the other slot was being rewritten)
//! and is ignored, so the row count never goes down while the file is not
//! recovered below it.
//!
//! Decisions for unusual files:
//!
//! - a file without journal that is shorter than its header says:
//!   [`Error::CommittedDataMissing`]; longer: the bytes past the header's rows
//!   are not rows (numpy ignores them too);
//! - a journal that commits rows the file does not hold (a power loss
//!   before recovery ran): only the whole rows present are shown;
//! - a file recovered below the rows a reader showed (only after a power loss
//!   under [`crate::Durability::Process`]): the lower count is reported;
//! - Fortran-order arrays grow along their last axis: a row is one slice
//!   along it (contiguous, itself in Fortran order);
//! - 0-d arrays and rows of zero bytes: [`Error::Unsupported`].

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::liveness::{self, WriterState};
use super::rows::{self, Rows};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::files;
use crate::format::FormatError;
use crate::format::dtype::Dtype;
use crate::format::header::Header;
use crate::format::journal::Record;
use crate::format::layout::Layout;
use crate::recovery;
use crate::storage::{Backend, FsBackend, OpenMode, Storage};

/// Attempts at a full read of the header and journal before an inconsistent
/// view is reported: a header read while the writer rewrites it can be torn.
const ATTEMPTS: u32 = 3;

/// A read-only view of the committed rows of a `.npy` file.
///
/// Opened with [`Reader::open`]; [`refresh`](Self::refresh) picks up rows
/// committed since, [`wait_for_rows`](Self::wait_for_rows) waits for them.
/// The rows are read through [`bytes`](Self::bytes),
/// [`as_slice`](Self::as_slice), [`rows_as`](Self::rows_as) and
/// [`chunks`](Self::chunks).
///
/// ```no_run
/// use std::time::Duration;
/// use npy_append::Reader;
///
/// # fn main() -> npy_append::Result<()> {
/// let mut r = Reader::open("feats.npy")?;            // no lock: the writer goes on
/// r.wait_for_rows(1000, Duration::from_secs(5))?;     // or r.refresh()? now and then
/// let values: &[f32] = r.as_slice()?;                 // committed rows only, dtype checked
/// for chunk in r.chunks(256) {                        // raw bytes, 256 rows at a time
///     # let _ = chunk;
/// }
/// # let _ = values;
/// # Ok(())
/// # }
/// ```
///
/// With [`FsBackend`] (the default) the committed rows are memory-mapped.
/// Other backends have no file descriptor to map: their committed data is
/// copied into memory whenever the row count changes (meant for tests).
///
/// # Caveat
///
/// The mapping covers only committed rows, which npy-append never rewrites
/// or cuts. Another program that truncates the file below them while it is
/// mapped makes the next access to the lost pages raise `SIGBUS`, as with any
/// memory-mapped file. The reader follows the file it opened: a file
/// replaced under its path (renamed over, deleted and recreated) is not
/// noticed; open a new reader.
pub struct Reader<B: Backend = FsBackend> {
    backend: B,
    path: PathBuf,
    journal_path: PathBuf,
    npy: B::File,
    shape: Shape,
    source: Source,
    rows: u64,
    data: Rows,
}

/// What the rows look like; fixed for the life of a reader.
#[expect(
    clippy::struct_field_names,
    reason = "row_shape and row_bytes are the API's words"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    dtype: Dtype,
    /// Whether rows are slices along the last axis.
    fortran_order: bool,
    row_shape: Vec<u64>,
    header_len: u64,
    row_bytes: u64,
}

impl Shape {
    /// The rows of a header, for reading (any header, also one
    /// without growth room).
    fn of(path: &Path, header: &Header) -> Result<Self> {
        let layout =
            Layout::without_room(header.clone()).map_err(|e| Error::from_format(path, e))?;
        Ok(Self {
            dtype: header.dtype.clone(),
            fortran_order: header.fortran_order && header.shape.len() > 1,
            row_shape: header.row_shape().to_vec(),
            header_len: header.header_len,
            row_bytes: layout.row_bytes,
        })
    }

    /// Whole rows in a file of `len` bytes.
    fn rows_in(&self, len: u64) -> u64 {
        len.saturating_sub(self.header_len) / self.row_bytes
    }
}

/// Where the committed row count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The header: there is no journal (or one still being created).
    Header,
    /// The journal with this id; `sequence` is the newest record adopted.
    Journal {
        id: u64,
        block_len: u64,
        sequence: u64,
    },
}

/// One look at the journal and the file.
struct Observed {
    shape: Shape,
    source: Source,
    /// Committed rows (not yet limited to the file).
    committed: u64,
    file_len: u64,
}

impl Reader<FsBackend> {
    /// Opens the `.npy` at `path` for reading its committed rows.
    ///
    /// Takes no lock and writes nothing: works while a writer appends, after
    /// a crash (showing the rows recovery would keep, at most) and on any
    /// C-order file numpy wrote. A missing file is an `Io` error of kind
    /// `NotFound`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(FsBackend, path)
    }
}

impl<B: Backend> Reader<B>
where
    B::File: 'static,
{
    /// Opens the `.npy` at `path` in `backend` for reading (see [`Reader::open`]).
    pub fn open_with(backend: B, path: impl AsRef<Path>) -> Result<Self> {
        let path = files::resolve(&backend, path.as_ref())?;
        let journal_path = files::journal_path(&path);
        let npy = backend
            .open(&path, OpenMode::Read)
            .map_err(|e| Error::io(&path, "opening", e))?;
        let observed = retry(|| observe(&backend, &path, &journal_path, &npy))?;
        let mut reader = Self {
            rows: 0,
            data: Rows::Empty,
            source: observed.source,
            shape: observed.shape.clone(),
            backend,
            path,
            journal_path,
            npy,
        };
        reader.adopt(&observed)?;
        Ok(reader)
    }

    /// Re-reads the committed row count and maps the new rows. Returns
    /// whether the row count changed.
    ///
    /// Cheap when a writer is active: it reads the journal's two slot records
    /// and the file's length. When the journal is gone (the writer closed the
    /// file) the count comes from the header; a new journal (a new writer) is
    /// checked against the file again.
    ///
    /// The count only goes down when the file lost committed rows (recovery
    /// after a power loss dropped rows whose data never reached the disk, or
    /// another program cut the file): the new, lower count is reported.
    pub fn refresh(&mut self) -> Result<bool> {
        let journal = match self.backend.open(&self.journal_path, OpenMode::Read) {
            Ok(file) => Some(file),
            Err(e) if files::sidecar_absent(&e) => None,
            Err(e) => return Err(Error::io(&self.journal_path, "opening the journal", e)),
        };
        if let (
            Some(journal),
            Source::Journal {
                id,
                block_len,
                sequence,
            },
        ) = (&journal, self.source)
        {
            let newest = newest_slot(journal, id, block_len)
                .map_err(|e| Error::io(&self.journal_path, "reading the journal", e))?
                .map_err(|e| Error::from_format(&self.journal_path, e))?;
            if let Some(record) = newest {
                let file_len = self
                    .npy
                    .len()
                    .map_err(|e| Error::io(&self.path, "reading the length", e))?;
                if record.sequence < sequence {
                    // A stale slot: the newer one was being rewritten.
                    return Ok(false);
                }
                let before = self.rows;
                let observed = Observed {
                    shape: self.shape.clone(),
                    source: Source::Journal {
                        id,
                        block_len,
                        sequence: record.sequence,
                    },
                    committed: record.rows,
                    file_len,
                };
                self.adopt(&observed)?;
                return Ok(self.rows != before);
            }
            // Neither slot is this journal's: a new journal replaced it.
        }
        drop(journal);
        let before = self.rows;
        let observed = retry(|| {
            let observed = observe(&self.backend, &self.path, &self.journal_path, &self.npy)?;
            if observed.shape == self.shape {
                Ok(observed)
            } else {
                Err(Error::Corrupt {
                    path: self.path.clone(),
                    offset: None,
                    what: format!(
                        "the file's rows changed from dtype {} shape {:?} ({}-byte header) to dtype {} \
                         shape {:?} ({}-byte header) while it was open; open a new reader",
                        self.shape.dtype,
                        self.shape.row_shape,
                        self.shape.header_len,
                        observed.shape.dtype,
                        observed.shape.row_shape,
                        observed.shape.header_len
                    ),
                })
            }
        })?;
        if let (
            Source::Journal {
                id, sequence: new, ..
            },
            Source::Journal {
                id: old_id,
                sequence: old,
                ..
            },
        ) = (observed.source, self.source)
            && id == old_id
            && new < old
        {
            // A stale slot of the same journal (see the fast path above).
            return Ok(false);
        }
        self.adopt(&observed)?;
        Ok(self.rows != before)
    }

    /// Waits until at least `rows` rows are committed; returns whether
    /// they are. Returns `false` when `timeout` passes first, and at once
    /// when the writer has finished (closed the file) without committing
    /// them, or when no writer has the file open; fails with
    /// [`Error::WriterDied`] when the writer stopped without closing
    /// (killed, crashed or dropped) before committing them. Refreshes with a
    /// sleep growing from 100 µs to 10 ms in between (no busy loop); see
    /// [`writer_state`](Self::writer_state).
    pub fn wait_for_rows(&mut self, rows: u64, timeout: Duration) -> Result<bool> {
        let (path, shown) = (self.path.clone(), self.rows);
        liveness::wait_for_rows(
            self,
            rows,
            timeout,
            shown,
            Self::writer_state,
            |r| r.refresh().map(|_| r.rows),
            |shown| Error::WriterDied {
                path,
                shown,
                wanted: rows,
            },
        )
    }

    /// Whether a writer has the file open ([`WriterState::Active`]), the
    /// last one closed it cleanly or none of this library ever opened it
    /// ([`WriterState::Finished`]), or the last one stopped without closing
    /// ([`WriterState::Died`]: killed, crashed or dropped; the next writer
    /// recovers the file). Read now, from the journal and its lock (probed
    /// with a shared lock held for microseconds, which a writer opening the
    /// file waits for); the answer is true at that moment only.
    ///
    /// A file removed or replaced under its path since the reader opened
    /// it reads as finished: the file this reader follows gets no new
    /// writer (and its journal path is no longer its journal's).
    ///
    /// An `Io` error of kind `Unsupported` on a backend that cannot probe
    /// locks.
    pub fn writer_state(&self) -> Result<WriterState> {
        if !self
            .backend
            .is_same_file(&self.npy, &self.path)
            .map_err(|e| Error::io(&self.path, "checking the file", e))?
        {
            return Ok(WriterState::Finished);
        }
        liveness::file_state(&self.backend, &self.journal_path)
    }

    /// Takes `observed` as the current state and maps its rows when their
    /// number changed.
    fn adopt(&mut self, observed: &Observed) -> Result<()> {
        let rows = observed
            .committed
            .min(observed.shape.rows_in(observed.file_len));
        self.source = observed.source;
        if rows == self.rows && !matches!(self.data, Rows::Empty) {
            return Ok(());
        }
        let len = rows
            .checked_mul(self.shape.row_bytes)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Error::Unsupported {
                path: Some(self.path.clone()),
                what: format!("{rows} rows do not fit in this machine's address space"),
            })?;
        self.data = Rows::load(&self.npy, &self.path, self.shape.header_len, len)?;
        self.rows = rows;
        Ok(())
    }
}

impl<B: Backend> Reader<B> {
    /// The `.npy` file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Committed rows visible to this reader (as of the last refresh).
    pub fn len(&self) -> u64 {
        self.rows
    }

    /// Whether no row is visible.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The file's dtype.
    pub fn dtype(&self) -> &Dtype {
        &self.shape.dtype
    }

    /// Whether the file is in Fortran order with more than one dimension:
    /// rows are then slices along the last axis, each in Fortran order.
    pub fn fortran_order(&self) -> bool {
        self.shape.fortran_order
    }

    /// The shape of one row (empty for a 1-d array).
    pub fn row_shape(&self) -> &[u64] {
        &self.shape.row_shape
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> u64 {
        self.shape.row_bytes
    }

    /// The file offset of the first row (the header's length).
    pub fn data_offset(&self) -> u64 {
        self.shape.header_len
    }

    /// The raw bytes of all visible rows.
    fn data(&self) -> &[u8] {
        self.data.bytes()
    }

    /// The raw bytes (in the file's byte order) of rows `range`; an
    /// `InvalidArgument` error when the range is not within [`len`](Self::len).
    pub fn bytes(&self, range: Range<u64>) -> Result<&[u8]> {
        let out_of_range = || Error::InvalidArgument {
            path: Some(self.path.clone()),
            what: format!(
                "rows {}..{} are not within the {} committed rows",
                range.start, range.end, self.rows
            ),
        };
        if range.start > range.end || range.end > self.rows {
            return Err(out_of_range());
        }
        // Both ends are at most the mapped length, which fits in a usize.
        let start = (range.start * self.shape.row_bytes) as usize;
        let end = (range.end * self.shape.row_bytes) as usize;
        self.data().get(start..end).ok_or_else(out_of_range)
    }

    /// All visible rows as values of `T`, which must be exactly the file's
    /// dtype (no cast, no byte swap). An `Unsupported` error when the data
    /// offset is not aligned for `T` (files npy-append or numpy >= 1.24 write
    /// align it to 64 bytes) and a `Corrupt` error for a `bool` file holding
    /// bytes other than 0 and 1.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        self.rows_as(0..self.rows)
    }

    /// Rows `range` as values of `T` (see [`as_slice`](Self::as_slice)).
    pub fn rows_as<T: Element>(&self, range: Range<u64>) -> Result<&[T]> {
        let bytes = self.bytes(range)?;
        rows::cast(&self.shape.dtype, &self.path, self.shape.header_len, bytes)
    }

    /// The visible rows in chunks of `rows_per_chunk` rows (raw bytes, the
    /// last chunk shorter); a `rows_per_chunk` of 0 is taken as 1.
    pub fn chunks(&self, rows_per_chunk: u64) -> impl Iterator<Item = &[u8]> {
        let size = rows_per_chunk
            .max(1)
            .saturating_mul(self.shape.row_bytes)
            .min(usize::MAX as u64) as usize;
        self.data().chunks(size.max(1))
    }
}

#[cfg(feature = "ndarray")]
impl<B: Backend> Reader<B> {
    /// All visible rows as an array view of shape `(len, *row_shape)`
    /// (Fortran order: `(*row_shape, len)` with Fortran strides, as numpy
    /// loads it), with the checks of [`as_slice`](Self::as_slice) (exact
    /// dtype, alignment).
    pub fn as_array<T: Element>(&self) -> Result<ndarray::ArrayViewD<'_, T>> {
        let values = self.as_slice::<T>()?;
        let too_large = || Error::Unsupported {
            path: Some(self.path.clone()),
            what: "the array's shape does not fit in this machine's address space".to_owned(),
        };
        let dims: Vec<u64> = if self.shape.fortran_order {
            self.shape
                .row_shape
                .iter()
                .copied()
                .chain(std::iter::once(self.rows))
                .collect()
        } else {
            std::iter::once(self.rows)
                .chain(self.shape.row_shape.iter().copied())
                .collect()
        };
        let shape = dims
            .into_iter()
            .map(|d| usize::try_from(d).map_err(|_| too_large()))
            .collect::<Result<Vec<usize>>>()?;
        let dim = ndarray::IxDyn(&shape);
        let built = if self.shape.fortran_order {
            use ndarray::ShapeBuilder;
            ndarray::ArrayViewD::from_shape(dim.f(), values)
        } else {
            ndarray::ArrayViewD::from_shape(dim, values)
        };
        built.map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            offset: None,
            what: format!("the rows do not form an array of shape {shape:?}: {e}"),
        })
    }
}

impl<B: Backend> std::fmt::Debug for Reader<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .field("dtype", &self.shape.dtype)
            .field("row_shape", &self.shape.row_shape)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Runs `f` up to [`ATTEMPTS`] times while it reports the file corrupt: a
/// header read during the writer's in-place rewrite can be torn.
fn retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 1;
    loop {
        match f() {
            Err(Error::Corrupt { .. }) if attempt < ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

/// Reads the journal (if any) and the header and decides the committed row
/// count, as recovery does, without changing anything.
fn observe<B: Backend>(
    backend: &B,
    path: &Path,
    journal_path: &Path,
    npy: &B::File,
) -> Result<Observed> {
    let journal = read_journal(backend, journal_path)?;
    if let Some(journal) = &journal {
        journal.check_version(journal_path)?;
    }
    // The writer writes rows, then the record, then the header: reading in
    // the opposite order (journal, header, length) never finds a committed
    // count whose rows are not in the file yet.
    let len = |op| npy.len().map_err(|e| Error::io(path, op, e));
    let read = files::read_header(npy, len("reading the length")?)
        .map_err(|e| Error::io(path, "reading the header", e))?;
    let file_len = len("reading the length")?;
    if let Some(recovery::JournalRead {
        identity: Ok(identity),
        slots,
        ..
    }) = journal
    {
        let newest = slots.into_iter().map(|(_, r)| r).max_by_key(|r| r.sequence);
        let layout = recovery::journal_layout(path, journal_path, &identity)?;
        recovery::check_binding(
            path,
            journal_path,
            &layout,
            &identity.snapshot,
            identity.created(),
            &read,
        )?;
        let (committed, sequence) = match newest {
            Some(record) => (record.rows, record.sequence),
            // Identity and slot A are written together: a reader that
            // finds neither slot valid caught that write half done, and
            // the header is the committed state.
            None => (
                read.header
                    .as_ref()
                    .ok()
                    .and_then(Header::growth_len)
                    .unwrap_or(0),
                0,
            ),
        };
        Ok(Observed {
            shape: Shape::of(path, &layout.header)?,
            source: Source::Journal {
                id: identity.journal_id,
                block_len: identity.block_len(),
                sequence,
            },
            committed,
            file_len,
        })
    } else {
        // No journal, or one whose identity is still being written (no
        // commit can depend on it): the header is the committed state, unless
        // a writer started meanwhile, whose header rewrite may have been read
        // torn: then look again.
        if let Some(recovery::JournalRead {
            identity: Ok(_), ..
        }) = read_journal(backend, journal_path)?
        {
            return Err(Error::Corrupt {
                path: journal_path.to_path_buf(),
                offset: None,
                what: "a writer started while the header was read; read again".to_owned(),
            });
        }
        let header = read.header.map_err(|e| Error::from_format(path, e))?;
        let shape = Shape::of(path, &header)?;
        let committed = header.growth_len().unwrap_or(0);
        let needed = header
            .data_len()
            .ok()
            .and_then(|n| n.checked_add(header.header_len))
            .ok_or_else(|| Error::Corrupt {
                path: path.to_path_buf(),
                offset: None,
                what: "data size of the header's shape overflows 64 bits".to_owned(),
            })?;
        if file_len < needed {
            return Err(Error::FileTooShort {
                path: path.to_path_buf(),
                header_rows: committed,
                needed_len: needed,
                actual_len: file_len,
                whole_rows: shape.rows_in(file_len),
            });
        }
        Ok(Observed {
            shape,
            source: Source::Header,
            committed,
            file_len,
        })
    }
}

/// The journal at `journal_path`, read whole; `None` when there is none.
fn read_journal<B: Backend>(
    backend: &B,
    journal_path: &Path,
) -> Result<Option<recovery::JournalRead>> {
    match backend.open(journal_path, OpenMode::Read) {
        Ok(file) => recovery::read_journal(&file)
            .map(Some)
            .map_err(|e| Error::io(journal_path, "reading the journal", e)),
        Err(e) if files::sidecar_absent(&e) => Ok(None),
        Err(e) => Err(Error::io(journal_path, "opening the journal", e)),
    }
}

/// The newest valid record of the journal `id` in `file` (reading only the
/// two slots); `None` when neither slot is valid for this journal.
fn newest_slot<F: Storage>(
    file: &F,
    id: u64,
    block_len: u64,
) -> io::Result<Result<Option<Record>, FormatError>> {
    Ok(recovery::read_slots(file, id, block_len)?.map(|slots| {
        slots
            .into_iter()
            .map(|(_, record)| record)
            .max_by_key(|record| record.sequence)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::header;
    use crate::format::journal::{self, FLAG_CREATED, Identity, Slot};
    use crate::storage::MemBackend;

    const NPY: &str = "/mem/r.npy";

    fn npy_path() -> &'static Path {
        Path::new(NPY)
    }

    /// A `(rows, 2)` `<u8` file holding `file_rows` rows `i*2, i*2+1`.
    fn npy(rows: u64, file_rows: u64) -> Vec<u8> {
        let dtype = Dtype::parse_descr("'<u8'").unwrap();
        let mut bytes = header::build(&dtype, false, &[rows, 2]).unwrap();
        for v in 0..file_rows * 2 {
            bytes.extend(v.to_le_bytes());
        }
        bytes
    }

    fn identity(id: u64, snapshot: Vec<u8>) -> Identity {
        Identity {
            flags: 0,
            journal_id: id,
            header_len: snapshot.len() as u64,
            row_bytes: 16,
            snapshot,
        }
    }

    fn record(sequence: u64, rows: u64) -> Record {
        Record {
            sequence,
            rows,
            prev_rows: 0,
            ..Record::default()
        }
    }

    /// A journal with `identity` and the given slot records.
    fn journal(identity: &Identity, a: Option<Record>, b: Option<Record>) -> Vec<u8> {
        let mut bytes = identity.encode().unwrap();
        bytes.resize(journal::journal_len(identity.block_len()) as usize, 0);
        for (slot, record) in [(Slot::A, a), (Slot::B, b)] {
            if let Some(record) = record {
                let at = journal::slot_offset(identity.block_len(), slot) as usize;
                let encoded = record.encode(identity.journal_id).unwrap();
                bytes[at..at + encoded.len()].copy_from_slice(&encoded);
            }
        }
        bytes
    }

    fn put_journal(backend: &MemBackend, bytes: &[u8]) {
        backend.put(&files::journal_path(npy_path()), bytes);
    }

    #[test]
    fn newest_slot_wins_and_a_stale_one_is_ignored() {
        let backend = MemBackend::new();
        backend.put(npy_path(), &npy(0, 10));
        let id = identity(7, npy(0, 0));
        put_journal(
            &backend,
            &journal(&id, Some(record(2, 5)), Some(record(3, 8))),
        );
        let mut r = Reader::open_with(backend.clone(), NPY).unwrap();
        assert_eq!(r.len(), 8);
        assert_eq!(r.rows_as::<u64>(7..8).unwrap(), &[14, 15]);
        // Slot B torn while rewritten: slot A (older) is all that is valid.
        let mut torn = journal(&id, Some(record(2, 5)), Some(record(4, 9)));
        let at = journal::slot_offset(id.block_len(), Slot::B) as usize;
        torn[at + 30] ^= 0xff;
        put_journal(&backend, &torn);
        assert!(!r.refresh().unwrap());
        assert_eq!(r.len(), 8);
        // The newer record lands in slot A.
        put_journal(
            &backend,
            &journal(&id, Some(record(4, 9)), Some(record(3, 8))),
        );
        assert!(r.refresh().unwrap());
        assert_eq!(r.len(), 9);
        // Never more rows than the file holds.
        put_journal(
            &backend,
            &journal(&id, Some(record(4, 9)), Some(record(5, 50))),
        );
        assert!(r.refresh().unwrap());
        assert_eq!(r.len(), 10);
    }

    #[test]
    fn journal_states_without_a_usable_slot_fall_back_to_the_header() {
        let backend = MemBackend::new();
        backend.put(npy_path(), &npy(3, 6));
        // A journal being created: its identity is not written yet.
        put_journal(&backend, &[]);
        let mut r = Reader::open_with(backend.clone(), NPY).unwrap();
        assert_eq!(r.len(), 3);
        // Identity written, no slot valid yet: still the header.
        let id = identity(9, npy(0, 0));
        put_journal(&backend, &journal(&id, None, None));
        assert!(!r.refresh().unwrap());
        assert_eq!(r.len(), 3);
        // A commit in the new journal.
        put_journal(&backend, &journal(&id, Some(record(1, 5)), None));
        assert!(r.refresh().unwrap());
        assert_eq!(r.len(), 5);
        // Closed, then another writer's journal with a new id.
        backend.remove(&files::journal_path(npy_path())).unwrap();
        assert!(r.refresh().unwrap());
        assert_eq!(
            r.len(),
            3,
            "the header (never rewritten in this test) is the count"
        );
        let id2 = identity(10, npy(0, 0));
        put_journal(&backend, &journal(&id2, Some(record(1, 6)), None));
        assert!(r.refresh().unwrap());
        assert_eq!(r.len(), 6);
        assert_eq!(
            r.as_slice::<u64>().unwrap(),
            &(0..12).collect::<Vec<u64>>()[..]
        );
    }

    #[test]
    fn a_journal_of_another_file_is_refused() {
        let backend = MemBackend::new();
        backend.put(npy_path(), &npy(1, 1));
        let f4 = Dtype::parse_descr("'<f4'").unwrap();
        let snapshot = header::build(&f4, false, &[0, 4]).unwrap();
        put_journal(
            &backend,
            &journal(&identity(1, snapshot), Some(record(1, 1)), None),
        );
        assert!(matches!(
            Reader::open_with(backend, NPY),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn a_writer_creating_the_file_shows_zero_rows() {
        let backend = MemBackend::new();
        // The journal is written before the .npy, which is still empty.
        backend.put(npy_path(), &[]);
        let mut id = identity(3, npy(0, 0));
        id.flags = FLAG_CREATED;
        put_journal(&backend, &journal(&id, Some(record(1, 0)), None));
        let r = Reader::open_with(backend, NPY).unwrap();
        assert_eq!(r.len(), 0);
        assert_eq!(r.row_shape(), &[2]);
        assert_eq!(r.chunks(4).count(), 0);
    }

    #[test]
    fn trailing_bytes_of_a_file_without_journal_are_not_rows() {
        let backend = MemBackend::new();
        backend.put(npy_path(), &npy(2, 4));
        let r = Reader::open_with(backend, NPY).unwrap();
        assert_eq!(r.len(), 2);
    }

    /// A v1.0 header of exactly `total` bytes for `descr` and `shape`.
    fn raw_header(descr: &str, shape: &str, total: usize) -> Vec<u8> {
        let mut text = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}");
        while text.len() + 11 < total {
            text.push(' ');
        }
        text.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend(u16::try_from(text.len()).unwrap().to_le_bytes());
        bytes.extend(text.as_bytes());
        assert_eq!(bytes.len(), total);
        bytes
    }

    #[test]
    fn misaligned_data_is_refused_for_typed_access() {
        let backend = MemBackend::new();
        let mut bytes = raw_header("'<u8'", "(2,)", 84);
        bytes.extend(1u64.to_le_bytes());
        bytes.extend(2u64.to_le_bytes());
        backend.put(npy_path(), &bytes);
        let r = Reader::open_with(backend, NPY).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.data_offset(), 84);
        assert!(matches!(
            r.as_slice::<u64>(),
            Err(Error::Unsupported { .. })
        ));
        assert_eq!(r.bytes(1..2).unwrap(), 2u64.to_le_bytes());
    }

    #[test]
    fn bool_bytes_are_checked() {
        let backend = MemBackend::new();
        let mut bytes = raw_header("'|b1'", "(3,)", 128);
        bytes.extend([1, 0, 2]);
        backend.put(npy_path(), &bytes);
        let r = Reader::open_with(backend, NPY).unwrap();
        assert_eq!(r.rows_as::<bool>(0..2).unwrap(), &[true, false]);
        assert!(matches!(
            r.as_slice::<bool>(),
            Err(Error::Corrupt {
                offset: Some(130),
                ..
            })
        ));
    }

    #[test]
    fn garbage_never_panics_and_never_shows_rows_past_the_file() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let id = identity(5, npy(0, 0));
        let good_journal = journal(&id, Some(record(1, 3)), Some(record(2, 4)));
        let mut opened = 0;
        for case in 0..3000 {
            let mut file = npy(4, 5);
            let mut jrnl = good_journal.clone();
            let target = if case % 2 == 0 { &mut file } else { &mut jrnl };
            for _ in 0..=next() % 4 {
                let at = (next() % target.len() as u64) as usize;
                target[at] = next() as u8;
            }
            if next() % 5 == 0 {
                let cut = (next() % target.len() as u64) as usize;
                target.truncate(cut);
            }
            let backend = MemBackend::new();
            backend.put(npy_path(), &file);
            if case % 3 != 0 {
                put_journal(&backend, &jrnl);
            }
            let Ok(mut r) = Reader::open_with(backend, NPY) else {
                continue;
            };
            opened += 1;
            let rows_in_file = (file.len() as u64).saturating_sub(r.data_offset()) / r.row_bytes();
            assert!(r.len() <= rows_in_file, "case {case}");
            let _ = r.as_slice::<u64>();
            let _ = r.bytes(0..r.len());
            assert_eq!(
                r.chunks(3).map(<[u8]>::len).sum::<usize>() as u64,
                r.len() * r.row_bytes()
            );
            let _ = r.refresh();
        }
        assert!(opened > 100, "{opened}");
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn array_views_have_the_file_shape() {
        let backend = MemBackend::new();
        backend.put(npy_path(), &npy(3, 3));
        let r = Reader::open_with(backend.clone(), NPY).unwrap();
        let a = r.as_array::<u64>().unwrap();
        assert_eq!(a.shape(), &[3, 2]);
        assert_eq!(a[[2, 1]], 5);
        assert!(matches!(
            r.as_array::<f64>(),
            Err(Error::DtypeMismatch { .. })
        ));
        backend.put(npy_path(), &npy(0, 0));
        let r = Reader::open_with(backend, NPY).unwrap();
        assert_eq!(r.as_array::<u64>().unwrap().shape(), &[0, 2]);
    }

    #[test]
    fn unreadable_layouts_are_typed_errors() {
        let backend = MemBackend::new();
        let dtype = Dtype::parse_descr("'<u8'").unwrap();
        let zero_d = header::build(&dtype, false, &[]).unwrap();
        backend.put(npy_path(), &[zero_d, vec![0; 8]].concat());
        assert!(matches!(
            Reader::open_with(backend.clone(), NPY),
            Err(Error::Unsupported { .. })
        ));
        backend.put(npy_path(), &raw_header("'<u8'", "(2, 0)", 128));
        assert!(matches!(
            Reader::open_with(backend.clone(), NPY),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            Reader::open_with(backend, "/mem/missing.npy"),
            Err(Error::Io { .. })
        ));
    }
}
