//! Sharded datasets from Python: a shard's writer (`ShardWriter`, opened by
//! `npy_append.dataset.open_shard`), creating a dataset, finalizing it, the
//! state of a shard, and the reader over every shard (`_DatasetReader`,
//! wrapped by `npy_append.dataset.DatasetReader`).
//!
//! The rules (schema, shard names and order, complete marks, manifest) are
//! the library's; this module only converts.

use std::path::PathBuf;
use std::sync::Arc;

use npy_append::dataset::{
    self as ds, Column, DatasetReader as RsReader, ReadFrom, ShardOptions, ShardWriter as RsShard,
};
use npy_append::{Dtype, Error, WriterState};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyMapping, PyTuple};

use crate::convert::{
    Accepts, Rows, cursor_bytes, lock_wait, numpy_dtype, parse_durability, parse_specs, seconds,
};
use crate::errors::{OrRaise, invalid_argument};
use crate::handle::{Handle, Writer};
use crate::reader::{GroupMapping, Snapshot};

impl Writer for RsShard {
    type Committed = u64;
    const NOUN: &'static str = "shard";
    fn commit(&mut self) -> Result<u64, Error> {
        RsShard::commit(self)
    }
    fn commit_with_cursor(&mut self, cursor: &[u8]) -> Result<u64, Error> {
        RsShard::commit_with_cursor(self, cursor)
    }
    fn close(self) -> Result<u64, Error> {
        RsShard::close(self)
    }
    fn cursor(&self) -> &[u8] {
        RsShard::cursor(self)
    }
}

/// The columns given as `{name: (dtype, row_shape)}` (or `{name: dtype}`
/// for one value per row), or a sequence of `(name, dtype, row_shape)`.
fn parse_columns(py: Python<'_>, columns: &Bound<'_, PyAny>) -> PyResult<Vec<Column>> {
    Ok(parse_specs(py, columns, "column")?
        .into_iter()
        .map(|(name, dtype, shape)| Column::new(name, dtype, &shape))
        .collect())
}

/// `{name: (numpy dtype, row_shape)}` of `columns`.
fn columns_dict<'py>(py: Python<'py>, columns: &[Column]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for c in columns {
        let shape = PyTuple::new(py, &c.row_shape)?;
        d.set_item(&c.name, (numpy_dtype(py, &c.dtype)?, shape))?;
    }
    Ok(d)
}

/// A column as the Python writer checks it.
struct ColumnIn {
    name: String,
    path: PathBuf,
    accepts: Accepts,
}

/// The writer of one shard of a dataset: one plain `.npy` per column,
/// committed together, with a cursor and a complete mark. Opened by
/// `npy_append.dataset.open_shard(root, shard, columns=None)`.
///
/// `append(batch)` and `append_at(start_row, batch)` take a dict
/// `{column: array}` holding every column, with the same number of rows,
/// each of exactly the column's dtype and row shape (nothing is cast); the
/// rows are pending until `commit()`. `append_at` skips rows the shard
/// already holds after comparing them: a retry that produces other rows
/// raises DataDiffersError naming the shard and column, never a duplicate.
/// `finish()` commits, marks the shard complete and closes it; a complete
/// shard opens with `complete` true and takes no rows.
///
/// As a context manager, leaving the block normally closes (without
/// marking the shard complete); leaving it by an exception only releases
/// the files, as a crash would (committed rows stay).
#[pyclass(module = "npy_append._native", name = "ShardWriter")]
pub(crate) struct PyShardWriter {
    handle: Handle<RsShard>,
    columns: Vec<ColumnIn>,
    schema: Vec<Column>,
    root: PathBuf,
    name: String,
    /// Whether the shard was complete when the writer was closed.
    complete: bool,
    resumed: bool,
}

impl PyShardWriter {
    /// The arrays of `batch` in the schema's order, checked.
    fn batch<'py>(
        &mut self,
        py: Python<'py>,
        batch: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Rows<'py>>> {
        self.handle.live_ref()?;
        let Ok(map) = batch.cast::<PyMapping>() else {
            return Err(PyTypeError::new_err(format!(
                "a batch is a dict {{column: array}}, not {}",
                batch.get_type().name()?
            )));
        };
        let names = self
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        for key in map.keys()?.iter() {
            let known = key
                .extract::<String>()
                .is_ok_and(|k| self.columns.iter().any(|c| c.name == k));
            if !known {
                return Err(invalid_argument(format!(
                    "column {} is not in the dataset {} (its columns: {})",
                    key.repr()?,
                    self.root.display(),
                    names
                )));
            }
        }
        let mut rows = Vec::with_capacity(self.columns.len());
        for i in 0..self.columns.len() {
            let name = self
                .columns
                .get(i)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let Ok(arr) = map.get_item(&name) else {
                return Err(invalid_argument(format!(
                    "the batch has no column {name:?}; every batch holds every column ({names})"
                )));
            };
            let Some(c) = self.columns.get_mut(i) else {
                break;
            };
            rows.push(c.accepts.check(py, &arr, &c.path)?);
        }
        Ok(rows)
    }
}

#[pymethods]
impl PyShardWriter {
    /// Opens (creating or resuming) shard `shard` of the dataset at `root`;
    /// see `npy_append.dataset.open_shard`.
    #[staticmethod]
    #[pyo3(signature = (root, shard, columns=None, durability="fsync", lock_timeout=None, compare_overlap=true, buffer_bytes=None, accept_loss=false))]
    #[allow(clippy::too_many_arguments, reason = "the Python signature")]
    fn open(
        py: Python<'_>,
        root: PathBuf,
        shard: String,
        columns: Option<Bound<'_, PyAny>>,
        durability: &str,
        lock_timeout: Option<f64>,
        compare_overlap: bool,
        buffer_bytes: Option<usize>,
        accept_loss: bool,
    ) -> PyResult<Self> {
        let mut options = ShardOptions::new()
            .durability(parse_durability(durability)?)
            .lock_wait(lock_wait(lock_timeout)?)
            .compare_overlap(compare_overlap)
            .accept_loss(accept_loss);
        if let Some(columns) = &columns {
            options = options.columns(&parse_columns(py, columns)?);
        }
        if let Some(bytes) = buffer_bytes {
            options = options.buffer_bytes(bytes);
        }
        let writer = py.detach(|| options.open(&root, &shard)).or_raise(py)?;
        let columns = writer
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| ColumnIn {
                name: c.name.clone(),
                path: writer
                    .column_path(i)
                    .map_or_else(|| writer.dir().join(c.file_name()), PathBuf::from),
                accepts: Accepts::new(c.dtype.clone(), c.row_shape.clone()),
            })
            .collect();
        Ok(Self {
            schema: writer.columns().to_vec(),
            complete: writer.is_complete(),
            resumed: writer.resumed(),
            columns,
            name: shard,
            handle: Handle::new(writer, root.clone()),
            root,
        })
    }

    /// Appends `batch` (a dict `{column: array}` holding every column, each
    /// with the same number of rows) after the rows the shard holds;
    /// pending until the next commit. A mismatch raises and appends
    /// nothing.
    fn append(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<()> {
        let rows = self.batch(py, batch)?;
        let cols: Vec<&[u8]> = rows.iter().map(Rows::bytes).collect();
        let writer = self.handle.live()?;
        py.detach(|| writer.append_bytes(&cols)).or_raise(py)
    }

    /// Exactly-once append keyed by row index: `batch` holds the shard's
    /// rows `start_row...`. Rows the shard already holds (committed or
    /// pending) are compared with the rows given and skipped; a difference
    /// raises DataDiffersError (naming the shard's column file) and appends
    /// nothing; a `start_row` past the rows held raises GapError. Returns
    /// the rows appended.
    fn append_at(
        &mut self,
        py: Python<'_>,
        start_row: u64,
        batch: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let rows = self.batch(py, batch)?;
        let cols: Vec<&[u8]> = rows.iter().map(Rows::bytes).collect();
        let writer = self.handle.live()?;
        py.detach(|| writer.append_bytes_at(start_row, &cols))
            .or_raise(py)
    }

    /// Commits the pending rows of every column as one group commit,
    /// synced, with `cursor` (a bytes-like value of at most 8127 bytes,
    /// found again after a crash) when given; without one the commit keeps
    /// the last cursor. Returns the committed rows.
    #[pyo3(signature = (cursor=None))]
    fn commit(&mut self, py: Python<'_>, cursor: Option<Bound<'_, PyAny>>) -> PyResult<u64> {
        let cursor = cursor_bytes(cursor.as_ref())?;
        self.handle.commit(py, cursor.as_deref())
    }

    /// Commits the pending rows, marks the shard complete and closes it;
    /// returns its rows. A resumed job skips complete shards.
    fn finish(&mut self, py: Python<'_>) -> PyResult<u64> {
        let writer = self.handle.take()?;
        let rows = py.detach(|| writer.finish()).or_raise(py)?;
        self.complete = true;
        Ok(rows)
    }

    /// Commits the pending rows and closes the shard without marking it
    /// complete (a later writer resumes it). Returns the committed rows;
    /// closing again does nothing and returns None.
    fn close(&mut self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.handle.close(py)
    }

    /// Releases the files without committing, as a crash would: pending
    /// rows are lost, committed rows stay.
    fn abandon(&mut self) {
        self.handle.abandon();
    }

    /// Committed rows.
    fn __len__(&self) -> PyResult<usize> {
        Ok(self.handle.live_ref()?.len() as usize)
    }

    /// Rows appended since the last commit.
    #[getter]
    fn pending_rows(&self) -> PyResult<u64> {
        Ok(self.handle.live_ref()?.pending_rows())
    }

    /// The cursor of the last commit (bytes; empty when none was given).
    #[getter]
    fn cursor<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.handle.cursor()?))
    }

    /// Whether the shard is complete (finished by this writer or an
    /// earlier one); a complete shard takes no rows.
    #[getter]
    fn complete(&self) -> bool {
        self.handle
            .live_ref()
            .map_or(self.complete, RsShard::is_complete)
    }

    /// Whether the shard existed before this open (a restarted or retried
    /// writer resuming it).
    #[getter]
    fn resumed(&self) -> bool {
        self.resumed
    }

    /// The shard's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The dataset's root directory.
    #[getter]
    fn root(&self) -> PathBuf {
        self.root.clone()
    }

    /// The shard's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    /// `{column: (numpy dtype, row_shape)}`: the dataset's columns.
    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        columns_dict(py, &self.schema)
    }

    /// Whether close(), finish() or abandon() was called.
    #[getter]
    fn closed(&self) -> bool {
        self.handle.closed()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Closes (without marking the shard complete) when the block ends
    /// normally; when it ends by an exception, releases the files without
    /// committing.
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
        let complete = self.complete();
        self.handle.repr("ShardWriter", |w| {
            format!(
                "shard {:?}, {} committed rows{}",
                self.name,
                w.len(),
                if complete { ", complete" } else { "" }
            )
        })
    }
}

/// Creates the dataset at `root` with `columns` (its `schema.json`), or
/// checks an existing one against them; returns the columns.
#[pyfunction]
pub(crate) fn create<'py>(
    py: Python<'py>,
    root: PathBuf,
    columns: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let columns = parse_columns(py, columns)?;
    let schema = py.detach(|| ds::create(&root, &columns)).or_raise(py)?;
    columns_dict(py, &schema.columns)
}

/// The dataset's columns `{name: (numpy dtype, row_shape)}`, or None when
/// `root` holds no dataset.
#[pyfunction]
pub(crate) fn read_schema(py: Python<'_>, root: PathBuf) -> PyResult<Option<Bound<'_, PyDict>>> {
    match py.detach(|| ds::read_schema(&root)).or_raise(py)? {
        Some(schema) => columns_dict(py, &schema.columns).map(Some),
        None => Ok(None),
    }
}

/// The text of `manifest.json` after finalizing (every shard, or exactly
/// `shards`).
#[pyfunction]
#[pyo3(signature = (root, shards=None))]
pub(crate) fn finalize(
    py: Python<'_>,
    root: PathBuf,
    shards: Option<Vec<String>>,
) -> PyResult<String> {
    let manifest = py
        .detach(|| match &shards {
            None => ds::finalize(&root),
            Some(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                ds::finalize_shards(&root, &names)
            }
        })
        .or_raise(py)?;
    Ok(String::from_utf8_lossy(&manifest.encode()).into_owned())
}

/// The text of `manifest.json`, or None when the dataset was not finalized
/// (checked as the library reads it).
#[pyfunction]
pub(crate) fn read_manifest(py: Python<'_>, root: PathBuf) -> PyResult<Option<String>> {
    Ok(py
        .detach(|| ds::read_manifest(&root))
        .or_raise(py)?
        .map(|m| String::from_utf8_lossy(&m.encode()).into_owned()))
}

/// The shards under `root`, in the dataset's order.
#[pyfunction]
pub(crate) fn list_shards(py: Python<'_>, root: PathBuf) -> PyResult<Vec<String>> {
    py.detach(|| ds::list_shards(&root)).or_raise(py)
}

/// `(rows, complete, cursor)` of shard `shard` as of its last commit, or
/// None when there is no such shard yet. Takes no lock.
#[pyfunction]
pub(crate) fn shard_status<'py>(
    py: Python<'py>,
    root: PathBuf,
    shard: &str,
) -> PyResult<Option<(u64, bool, Bound<'py, PyBytes>)>> {
    Ok(py
        .detach(|| ds::shard_status(&root, shard))
        .or_raise(py)?
        .map(|s| (s.rows, s.complete, PyBytes::new(py, &s.cursor))))
}

fn parse_read_from(read_from: &str) -> PyResult<ReadFrom> {
    match read_from {
        "auto" => Ok(ReadFrom::Auto),
        "manifest" => Ok(ReadFrom::Manifest),
        "shards" => Ok(ReadFrom::Shards),
        other => Err(invalid_argument(format!(
            "read_from must be \"auto\", \"manifest\" or \"shards\", not {other:?}"
        ))),
    }
}

fn read_from_name(read_from: ReadFrom) -> &'static str {
    match read_from {
        ReadFrom::Manifest => "manifest",
        ReadFrom::Shards => "shards",
        ReadFrom::Auto => "auto",
    }
}

/// Every shard's committed rows with global row numbers; see
/// `npy_append.dataset.DatasetReader`.
#[pyclass(module = "npy_append._native", name = "_DatasetReader")]
pub(crate) struct PyDatasetReader {
    reader: RsReader,
}

#[pymethods]
impl PyDatasetReader {
    #[new]
    #[pyo3(signature = (root, read_from="auto", pinned=None))]
    fn new(
        py: Python<'_>,
        root: PathBuf,
        read_from: &str,
        pinned: Option<Vec<(String, u64)>>,
    ) -> PyResult<Self> {
        let from = parse_read_from(read_from)?;
        let reader = py
            .detach(|| match &pinned {
                Some(pins) => RsReader::open_pinned(&root, from, pins),
                None => RsReader::open_from(&root, from),
            })
            .or_raise(py)?;
        Ok(Self { reader })
    }

    /// Reads the dataset again; returns whether the rows shown changed.
    fn refresh(&mut self, py: Python<'_>) -> PyResult<bool> {
        let reader = &mut self.reader;
        py.detach(|| reader.refresh()).or_raise(py)
    }

    /// Waits until at least `rows` rows are shown (see
    /// `npy_append.dataset.DatasetReader.wait_for_rows`).
    fn wait_for_rows(&mut self, py: Python<'_>, rows: u64, timeout: f64) -> PyResult<bool> {
        let timeout = seconds("timeout", timeout)?;
        let reader = &mut self.reader;
        py.detach(|| reader.wait_for_rows(rows, timeout))
            .or_raise(py)
    }

    /// "active", "finished" or "died" for the dataset as a whole (see
    /// `npy_append.dataset.DatasetReader.writer_state`).
    fn writer_state(&self, py: Python<'_>) -> PyResult<&'static str> {
        let reader = &self.reader;
        py.detach(|| reader.writer_state())
            .map(WriterState::as_str)
            .or_raise(py)
    }

    /// The state of each shown shard's writer, in row order.
    fn shard_states(&self, py: Python<'_>) -> PyResult<Vec<&'static str>> {
        let reader = &self.reader;
        py.detach(|| reader.shard_states())
            .map(|states| states.into_iter().map(WriterState::as_str).collect())
            .or_raise(py)
    }

    #[getter]
    fn root(&self) -> PathBuf {
        self.reader.root().to_path_buf()
    }

    #[getter]
    fn read_from(&self) -> &'static str {
        read_from_name(self.reader.read_from())
    }

    #[getter(from_manifest)]
    fn uses_manifest(&self) -> bool {
        self.reader.from_manifest()
    }

    fn __len__(&self) -> usize {
        self.reader.len() as usize
    }

    /// `[(name, descr, row_shape)]` of the columns, in order.
    #[getter]
    fn columns(&self) -> Vec<(String, String, Vec<u64>)> {
        self.reader
            .columns()
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    Dtype::descr_repr(&c.dtype),
                    c.row_shape.clone(),
                )
            })
            .collect()
    }

    /// `[(name, rows, complete)]` of the shards shown, in row order.
    #[getter]
    fn shards(&self) -> Vec<(String, u64, bool)> {
        self.reader
            .shards()
            .map(|s| (s.name.clone(), s.rows, s.complete))
            .collect()
    }

    /// The first global row of each shard, and the total.
    #[getter]
    fn starts(&self) -> Vec<u64> {
        (0..=self.reader.shards().len())
            .filter_map(|k| self.reader.shard_start(k))
            .collect()
    }

    /// `[(name, rows)]`: what `pinned=` reopens.
    #[getter]
    fn pinned(&self) -> Vec<(String, u64)> {
        self.reader.pinned()
    }

    /// The committed bytes of column `column` in shard `shard` (all the
    /// shard's committed rows, which may exceed those shown), as an object
    /// exporting the buffer protocol.
    fn mapping(&self, shard: usize, column: usize) -> PyResult<GroupMapping> {
        let group = self
            .reader
            .shard_reader(shard)
            .ok_or_else(|| invalid_argument(format!("shard index {shard}")))?;
        if column >= self.reader.columns().len() {
            return Err(invalid_argument(format!("column index {column}")));
        }
        Ok(GroupMapping::new(
            Snapshot::Group(Arc::clone(group)),
            column,
        ))
    }

    /// The rows `indices` (global; negative counts from the end) of every
    /// column, each copied into a new byte array, the GIL released while
    /// copying. IndexError for an index out of range.
    fn gather<'py>(
        &self,
        py: Python<'py>,
        indices: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Vec<Bound<'py, PyArray1<u8>>>> {
        let given = indices
            .as_slice()
            .map_err(|e| invalid_argument(format!("indices: {e}")))?;
        let len = self.reader.len();
        let rows = given
            .iter()
            .map(|&i| {
                let row = if i < 0 {
                    len.checked_sub(i.unsigned_abs())
                } else {
                    Some(i.unsigned_abs())
                };
                row.filter(|&r| r < len).ok_or_else(|| {
                    PyIndexError::new_err(format!("row {i} of a dataset of {len} rows"))
                })
            })
            .collect::<PyResult<Vec<u64>>>()?;
        (0..self.reader.columns().len())
            .map(|column| {
                let row_bytes = self.reader.row_bytes(column).unwrap_or(0);
                let size = (rows.len() as u64)
                    .checked_mul(row_bytes)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| invalid_argument("too many rows"))?;
                // SAFETY: a new array, every byte of which gather_into writes
                // before it is returned (or dropped on an error).
                let out = unsafe { PyArray1::<u8>::new(py, [size], false) };
                {
                    // SAFETY: `out` was just created here; nothing else holds
                    // a reference to its data.
                    let bytes = unsafe { out.as_slice_mut() }
                        .map_err(|e| invalid_argument(format!("output: {e}")))?;
                    let reader = &self.reader;
                    let rows = rows.as_slice();
                    py.detach(|| reader.gather_into(column, rows, bytes))
                        .or_raise(py)?;
                }
                Ok(out)
            })
            .collect()
    }
}
