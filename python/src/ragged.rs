//! Ragged arrays from Python: sequences of different lengths in a
//! values/offsets pair committed together (`RaggedAppender`), and a
//! snapshot returning each sequence without a copy (`_RaggedReader`,
//! wrapped by `npy_append.RaggedReader`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use npy_append::{
    Dtype, RaggedAppender as RsRagged, RaggedOptions, RaggedReader as RsReader, WriterState,
};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::convert::{
    Accepts, Rows, cursor_bytes, lock_wait, numpy_dtype, parse_dtype, parse_row_shape, seconds,
};
use crate::errors::{OrRaise, invalid_argument};
use crate::handle::Handle;
use crate::reader::{GroupMapping, Snapshot};

/// Sequences of rows of different lengths, appended crash-safely to a
/// values/offsets pair of `.npy` files.
///
/// `values.npy` holds every sequence's rows one after another (1-D, or
/// `(M, d)` for rows of shape `(d,)`) and `offsets.npy` (int64) holds 0 and
/// then one end offset per sequence: sequence `i` is
/// `values[offsets[i]:offsets[i + 1]]` (the layout of nanoGPT-style token
/// files and Megatron's indexed datasets). Both are members of one append
/// group, so a commit (always synced) holds a sequence in both or in
/// neither; `close()` leaves two plain `.npy` files and the group journal.
///
/// As a context manager, leaving the block normally closes; leaving it by
/// an exception only releases the files without committing.
#[pyclass(module = "npy_append._native", name = "RaggedAppender")]
pub(crate) struct PyRaggedAppender {
    handle: Handle<RsRagged>,
    values_path: PathBuf,
    offsets_path: PathBuf,
    accepts: Accepts,
}

impl PyRaggedAppender {
    /// Checks `arr` against the values' dtype and row shape; returns its
    /// bytes, without a copy when it is C-contiguous. (The library checks
    /// the bytes themselves when they are appended: whole rows, and 0 or 1
    /// in a bool array.)
    fn check<'py>(&mut self, py: Python<'py>, arr: &Bound<'py, PyAny>) -> PyResult<Rows<'py>> {
        self.handle.live_ref()?;
        let rows = self.accepts.check(py, arr, &self.values_path)?;
        Ok(rows)
    }

    /// Appends sequences of `lengths` rows whose rows are `rows`.
    fn append_rows(&mut self, py: Python<'_>, rows: &Rows<'_>, lengths: &[u64]) -> PyResult<()> {
        let bytes = rows.bytes();
        let ragged = self.handle.live()?;
        py.detach(|| ragged.append_batch_bytes(bytes, lengths))
            .or_raise(py)
    }
}

#[pymethods]
impl PyRaggedAppender {
    /// Opens the ragged array whose group journal is `path` (e.g.
    /// "tokens.group"; the two members are in its directory): creates it,
    /// or opens it and recovers it to its last commit.
    ///
    /// dtype: the values' dtype (anything `numpy.dtype()` accepts that a
    ///   `.npy` file can hold without pickling: any byte order, float16,
    ///   complex, strings, structured). Appended arrays must have exactly
    ///   this dtype (never cast). Optional for an existing array, then read
    ///   from it.
    /// row_shape: the shape of one row of the values: () for 1-D values
    ///   such as tokens, (d,) for sequences of d-wide rows. Default: () for
    ///   a new array, the array's own for an existing one.
    /// names: the file names of the values and the offsets.
    /// lock_timeout: seconds to wait for another writer's lock (default:
    ///   fail at once with LockedError).
    /// move_aside_foreign_journal: as for AppendGroup.open_or_recover.
    #[staticmethod]
    #[pyo3(signature = (path, dtype=None, row_shape=None, names=("values.npy".to_owned(), "offsets.npy".to_owned()), lock_timeout=None, move_aside_foreign_journal=false))]
    fn open_or_recover(
        py: Python<'_>,
        path: PathBuf,
        dtype: Option<Bound<'_, PyAny>>,
        row_shape: Option<Bound<'_, PyAny>>,
        names: (String, String),
        lock_timeout: Option<f64>,
        move_aside_foreign_journal: bool,
    ) -> PyResult<Self> {
        let wait = lock_wait(lock_timeout)?;
        let row_shape = row_shape.map(|s| parse_row_shape(&s)).transpose()?;
        let given = dtype.as_ref().map(|d| parse_dtype(py, d)).transpose()?;
        // An existing array: the values member says what it holds, for
        // whatever the caller leaves out (the open checks what is given).
        let found = if path.exists() && (given.is_none() || row_shape.is_none()) {
            let reader = py
                .detach(|| RsReader::open_names(&path, &names.0, &names.1))
                .or_raise(py)?;
            let group = reader.group();
            let i = group.member_index(&names.0).unwrap_or(0);
            group
                .dtype(i)
                .cloned()
                .map(|d| (d, group.row_shape(i).unwrap_or_default().to_vec()))
        } else {
            None
        };
        let (dtype, row_shape) = match (given, found) {
            (Some(d), found) => {
                let shape = row_shape
                    .or_else(|| found.map(|(_, s)| s))
                    .unwrap_or_default();
                (d, shape)
            }
            (None, Some((d, s))) => (d, row_shape.unwrap_or(s)),
            (None, None) => {
                return Err(invalid_argument(format!(
                    "{}: no ragged array there; give the dtype to create one",
                    path.display()
                )));
            }
        };
        let options = RaggedOptions::new(&dtype.descr_repr(), &row_shape)
            .or_raise(py)?
            .names(&names.0, &names.1)
            .lock_wait(wait)
            .move_aside_foreign_journal(move_aside_foreign_journal);
        let ragged = py.detach(|| options.open(&path)).or_raise(py)?;
        let group = ragged.group();
        let member = |i: usize| {
            group
                .member_path(i)
                .map(Path::to_path_buf)
                .unwrap_or_default()
        };
        let (values_path, offsets_path) = (member(0), member(1));
        Ok(Self {
            handle: Handle::new(ragged, path),
            values_path,
            offsets_path,
            accepts: Accepts::new(dtype, row_shape),
        })
    }

    /// Appends one sequence: an array of its rows (1-D for 1-D values, or
    /// of shape (n,) + row_shape), of exactly the values' dtype. Pending
    /// until the next commit. A mismatch raises and appends nothing.
    fn append(&mut self, py: Python<'_>, seq: &Bound<'_, PyAny>) -> PyResult<()> {
        let rows = self.check(py, seq)?;
        self.append_rows(py, &rows, &[rows.count])
    }

    /// Appends several sequences, each an array as for `append()`. Every
    /// array is checked before any is appended.
    fn extend(&mut self, py: Python<'_>, seqs: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut all = Vec::new();
        for seq in seqs.try_iter()? {
            all.push(self.check(py, &seq?)?);
        }
        let ragged = self.handle.live()?;
        let parts: Vec<&[u8]> = all.iter().map(Rows::bytes).collect();
        py.detach(|| ragged.extend_bytes(&parts)).or_raise(py)
    }

    /// Appends several sequences given as one array of all their rows
    /// (`values`, read without a copy) and the rows of each (`lengths`,
    /// non-negative integers adding up to `len(values)`).
    fn append_batch(
        &mut self,
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
        lengths: Vec<u64>,
    ) -> PyResult<()> {
        let rows = self.check(py, values)?;
        self.append_rows(py, &rows, &lengths)
    }

    /// Commits the pending sequences (values and offsets together, synced),
    /// with `cursor` (a bytes-like value of at most 8128 bytes, found again
    /// after a crash) when
    /// given; returns the committed sequence count.
    #[pyo3(signature = (cursor=None))]
    fn commit(&mut self, py: Python<'_>, cursor: Option<Bound<'_, PyAny>>) -> PyResult<u64> {
        let cursor = cursor_bytes(cursor.as_ref())?;
        self.handle.commit(py, cursor.as_deref())
    }

    /// Commits and closes: values and offsets are plain `.npy` files.
    /// Returns the committed sequence count; closing again returns None.
    fn close(&mut self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.handle.close(py)
    }

    /// Releases the files without committing, as a crash would.
    fn abandon(&mut self) {
        self.handle.abandon();
    }

    /// Committed sequences.
    fn __len__(&self) -> PyResult<usize> {
        Ok(self.handle.live_ref()?.len() as usize)
    }

    /// Sequences appended since the last commit.
    #[getter]
    fn pending_sequences(&self) -> PyResult<u64> {
        Ok(self.handle.live_ref()?.pending_sequences())
    }

    /// Committed rows of the values (the last committed offset).
    #[getter]
    fn values_rows(&self) -> PyResult<u64> {
        Ok(self.handle.live_ref()?.values_len())
    }

    /// The cursor of the last commit (bytes; empty when none was given).
    #[getter]
    fn cursor<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.handle.cursor()?))
    }

    /// The values' numpy dtype.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        numpy_dtype(py, &self.accepts.dtype)
    }

    /// The shape of one row of the values.
    #[getter]
    fn row_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.accepts.row_shape)
    }

    /// The group journal's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.handle.path().to_path_buf()
    }

    /// The values file's path.
    #[getter]
    fn values_path(&self) -> PathBuf {
        self.values_path.clone()
    }

    /// The offsets file's path.
    #[getter]
    fn offsets_path(&self) -> PathBuf {
        self.offsets_path.clone()
    }

    /// Whether close() (or abandon()) was called.
    #[getter]
    fn closed(&self) -> bool {
        self.handle.closed()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Closes when the block ends normally; when it ends by an exception,
    /// releases the files without committing (the pending sequences are
    /// lost).
    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.handle.exit(py, exc_type)
    }

    fn __repr__(&self) -> String {
        self.handle.repr("RaggedAppender", |r| {
            format!(
                "{} committed sequences, {} pending",
                r.len(),
                r.pending_sequences()
            )
        })
    }
}

/// A snapshot of a ragged array; see `npy_append.RaggedReader`.
#[pyclass(module = "npy_append._native", name = "_RaggedReader")]
pub(crate) struct PyRaggedReader {
    path: PathBuf,
    names: (String, String),
    reader: Arc<RsReader>,
}

impl PyRaggedReader {
    fn values_index(&self) -> usize {
        self.reader
            .group()
            .member_index(&self.names.0)
            .unwrap_or_default()
    }

    fn offsets_index(&self) -> usize {
        self.reader
            .group()
            .member_index(&self.names.1)
            .unwrap_or_default()
    }
}

#[pymethods]
impl PyRaggedReader {
    #[new]
    fn new(py: Python<'_>, path: PathBuf, values: String, offsets: String) -> PyResult<Self> {
        let reader = py
            .detach(|| RsReader::open_names(&path, &values, &offsets))
            .or_raise(py)?;
        Ok(Self {
            path,
            names: (values, offsets),
            reader: Arc::new(reader),
        })
    }

    /// Reads the newest commit again; returns whether it changed. Views of
    /// the older snapshot stay valid.
    fn refresh(&mut self, py: Python<'_>) -> PyResult<bool> {
        let (path, (values, offsets)) = (&self.path, &self.names);
        let fresh = py
            .detach(|| RsReader::open_names(path, values, offsets))
            .or_raise(py)?;
        let changed = fresh.group().sequence() != self.reader.group().sequence();
        self.reader = Arc::new(fresh);
        Ok(changed)
    }

    /// Waits until at least `sequences` sequences are committed (see
    /// `npy_append.RaggedReader.wait_for_rows`); the snapshot then shows
    /// the newest commit.
    fn wait_for_rows(&mut self, py: Python<'_>, sequences: u64, timeout: f64) -> PyResult<bool> {
        let timeout = seconds("timeout", timeout)?;
        if self.reader.len() >= sequences {
            return Ok(true);
        }
        let (path, (values, offsets)) = (&self.path, &self.names);
        let (fresh, waited) = py
            .detach(|| -> npy_append::Result<_> {
                let mut fresh = RsReader::open_names(path, values, offsets)?;
                let waited = fresh.wait_for_rows(sequences, timeout);
                Ok((fresh, waited))
            })
            .or_raise(py)?;
        self.reader = Arc::new(fresh);
        waited.or_raise(py)
    }

    /// "active", "finished" or "died" (see
    /// `npy_append.RaggedReader.writer_state`).
    fn writer_state(&self, py: Python<'_>) -> PyResult<&'static str> {
        let reader = &self.reader;
        py.detach(|| reader.writer_state())
            .map(WriterState::as_str)
            .or_raise(py)
    }

    fn __len__(&self) -> usize {
        self.reader.len() as usize
    }

    /// The rows `(start, end)` of the values holding sequence `i`
    /// (checked against the values).
    fn range(&self, py: Python<'_>, i: u64) -> PyResult<(u64, u64)> {
        if i >= self.reader.len() {
            return Err(PyIndexError::new_err(format!(
                "sequence {i} of {}",
                self.reader.len()
            )));
        }
        let r = self.reader.range(i).or_raise(py)?;
        Ok((r.start, r.end))
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    #[getter]
    fn sequence(&self) -> u64 {
        self.reader.group().sequence()
    }

    #[getter]
    fn cursor<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.reader.cursor())
    }

    #[getter]
    fn descr(&self) -> String {
        self.reader
            .group()
            .dtype(self.values_index())
            .map(Dtype::descr_repr)
            .unwrap_or_default()
    }

    #[getter]
    fn row_shape(&self) -> Vec<u64> {
        self.reader
            .group()
            .row_shape(self.values_index())
            .unwrap_or_default()
            .to_vec()
    }

    /// Committed rows of the values in this snapshot.
    #[getter]
    fn values_rows(&self) -> u64 {
        self.reader.group().rows(self.values_index())
    }

    /// Committed rows of the offsets in this snapshot.
    #[getter]
    fn offsets_rows(&self) -> u64 {
        self.reader.group().rows(self.offsets_index())
    }

    #[getter]
    fn values_path(&self) -> PathBuf {
        self.reader
            .group()
            .member_path(self.values_index())
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    #[getter]
    fn offsets_path(&self) -> PathBuf {
        self.reader
            .group()
            .member_path(self.offsets_index())
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The committed values' bytes, exporting the buffer protocol.
    fn values_mapping(&self) -> GroupMapping {
        GroupMapping::new(
            Snapshot::Ragged(Arc::clone(&self.reader)),
            self.values_index(),
        )
    }

    /// The committed offsets' bytes, exporting the buffer protocol.
    fn offsets_mapping(&self) -> GroupMapping {
        GroupMapping::new(
            Snapshot::Ragged(Arc::clone(&self.reader)),
            self.offsets_index(),
        )
    }
}
