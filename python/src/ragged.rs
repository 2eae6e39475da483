//! Ragged arrays from Python: sequences of different lengths in a
//! values/offsets pair committed together (`RaggedAppender`), and a
//! snapshot returning each sequence without a copy (`_RaggedReader`,
//! wrapped by `npy_append.RaggedReader`).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use npy_append::format::dtype::{ByteOrder, Kind};
use npy_append::{
    Dtype, Element, Error, RaggedAppender as RsRagged, RaggedOptions, RaggedReader as RsReader,
};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::groups::{Accepts, GroupMapping, Snapshot, lock_wait, parse_dtype, parse_row_shape};
use crate::{OrRaise, Rows, numpy_dtype, raise};

/// The value types the library appends to ragged arrays: numpy's
/// booleans, integers and `f4`/`f8`, in the host's byte order.
#[derive(Clone, Copy)]
enum Values {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

/// Runs `$body` with `$t` the Rust type of `$values`.
macro_rules! with_type {
    ($values:expr, $t:ident => $body:expr) => {
        match $values {
            Values::Bool => {
                type $t = bool;
                $body
            }
            Values::I8 => {
                type $t = i8;
                $body
            }
            Values::I16 => {
                type $t = i16;
                $body
            }
            Values::I32 => {
                type $t = i32;
                $body
            }
            Values::I64 => {
                type $t = i64;
                $body
            }
            Values::U8 => {
                type $t = u8;
                $body
            }
            Values::U16 => {
                type $t = u16;
                $body
            }
            Values::U32 => {
                type $t = u32;
                $body
            }
            Values::U64 => {
                type $t = u64;
                $body
            }
            Values::F32 => {
                type $t = f32;
                $body
            }
            Values::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}

impl Values {
    const ALL: [Self; 11] = [
        Self::Bool,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::I64,
        Self::U8,
        Self::U16,
        Self::U32,
        Self::U64,
        Self::F32,
        Self::F64,
    ];

    fn dtype(self) -> Dtype {
        with_type!(self, T => T::dtype())
    }

    /// The value type whose dtype is exactly `dtype`.
    fn of(dtype: &Dtype) -> Option<Self> {
        let s = dtype.as_scalar()?;
        Self::ALL.into_iter().find(|v| {
            let want = v.dtype();
            want.as_scalar().is_some_and(|w| {
                w.kind == s.kind
                    && w.size == s.size
                    && s.unit.is_none()
                    && (w.order == s.order || s.order == ByteOrder::NotApplicable && w.size == 1)
            })
        })
    }
}

/// `bytes` as values of `T`: in place when aligned, else copied.
fn values_of<T: Element>(bytes: &[u8]) -> Result<Cow<'_, [T]>, Error> {
    let size = std::mem::size_of::<T>();
    if T::KIND == Kind::Bool && bytes.iter().any(|&b| b > 1) {
        return Err(Error::InvalidArgument {
            what: "a bool value is neither 0 nor 1".to_owned(),
        });
    }
    let count = bytes.len() / size;
    if bytes.as_ptr().cast::<T>().is_aligned() {
        // SAFETY: `T` is a primitive with no invalid bit patterns (bool
        // bytes are checked above); the pointer is aligned for `T`; `count`
        // values fit in `bytes`, which outlives the slice.
        return Ok(Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), count)
        }));
    }
    let mut out: Vec<T> = Vec::with_capacity(count);
    // SAFETY: `out` has room for `count` values, that is `count * size`
    // bytes of `bytes`; any bit pattern is a valid `T` (bool checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().cast::<u8>(), count * size);
        out.set_len(count);
    }
    Ok(Cow::Owned(out))
}

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
    inner: Option<RsRagged>,
    path: PathBuf,
    values: Values,
    values_path: PathBuf,
    offsets_path: PathBuf,
    accepts: Accepts,
}

impl PyRaggedAppender {
    fn live(&mut self, py: Python<'_>) -> PyResult<&mut RsRagged> {
        let path = self.path.display().to_string();
        self.inner.as_mut().ok_or_else(|| {
            raise(
                py,
                "ClosedError",
                format!("{path}: the ragged appender is closed"),
            )
        })
    }

    fn live_ref(&self, py: Python<'_>) -> PyResult<&RsRagged> {
        let path = self.path.display().to_string();
        self.inner.as_ref().ok_or_else(|| {
            raise(
                py,
                "ClosedError",
                format!("{path}: the ragged appender is closed"),
            )
        })
    }

    fn check<'py>(&mut self, py: Python<'py>, arr: &Bound<'py, PyAny>) -> PyResult<Rows<'py>> {
        self.live_ref(py)?;
        self.accepts.check(py, arr, &self.values_path)
    }

    /// Appends sequences of `lengths` rows whose rows are `bytes`.
    fn append_bytes(&mut self, py: Python<'_>, bytes: &[u8], lengths: &[u64]) -> PyResult<()> {
        let values = self.values;
        let ragged = self.live(py)?;
        py.detach(|| {
            with_type!(values, T => {
                let v = values_of::<T>(bytes)?;
                ragged.append_batch::<T>(&v, lengths)
            })
        })
        .or_raise(py)
    }
}

#[pymethods]
impl PyRaggedAppender {
    /// Opens the ragged array whose group journal is `path` (e.g.
    /// "tokens.group"; the two members are in its directory): creates it,
    /// or opens it and recovers it to its last commit.
    ///
    /// dtype: the values' dtype, exactly (never cast): bool, int8..int64,
    ///   uint8..uint64, float32 or float64 in the machine's byte order.
    ///   Optional for an existing array, then read from it.
    /// row_shape: the shape of one row of the values: () for 1-D values
    ///   such as tokens, (d,) for sequences of d-wide rows. Default: () for
    ///   a new array, the array's own for an existing one.
    /// names: the file names of the values and the offsets.
    /// lock_timeout: seconds to wait for another writer's lock (default:
    ///   fail at once with LockedError).
    #[staticmethod]
    #[pyo3(signature = (path, dtype=None, row_shape=None, names=("values.npy".to_owned(), "offsets.npy".to_owned()), lock_timeout=None))]
    fn open_or_recover(
        py: Python<'_>,
        path: PathBuf,
        dtype: Option<Bound<'_, PyAny>>,
        row_shape: Option<Bound<'_, PyAny>>,
        names: (String, String),
        lock_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let wait = lock_wait(py, lock_timeout)?;
        let row_shape = row_shape.map(|s| parse_row_shape(py, &s)).transpose()?;
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
                return Err(raise(
                    py,
                    "InvalidArgumentError",
                    format!(
                        "invalid argument: {}: no ragged array there; give the dtype to create one",
                        path.display()
                    ),
                ));
            }
        };
        let values = Values::of(&dtype).ok_or_else(|| {
            raise(
                py,
                "UnsupportedError",
                format!(
                    "unsupported: ragged values of dtype {dtype}; the values of a ragged array are \
                     bool, int8..int64, uint8..uint64, float32 or float64 in the machine's byte order"
                ),
            )
        })?;
        let options = RaggedOptions::new(&dtype.descr_repr(), &row_shape)
            .or_raise(py)?
            .names(&names.0, &names.1)
            .lock_wait(wait);
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
            inner: Some(ragged),
            path,
            values,
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
        let lengths = [rows.count];
        self.append_bytes(py, rows.bytes(), &lengths)
    }

    /// Appends several sequences, each an array as for `append()`. Every
    /// array is checked before any is appended.
    fn extend(&mut self, py: Python<'_>, seqs: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut all = Vec::new();
        for seq in seqs.try_iter()? {
            all.push(self.check(py, &seq?)?);
        }
        let values = self.values;
        let ragged = self.live(py)?;
        let parts: Vec<(&[u8], u64)> = all.iter().map(|r| (r.bytes(), r.count)).collect();
        py.detach(|| {
            with_type!(values, T => {
                for (bytes, count) in parts {
                    let v = values_of::<T>(bytes)?;
                    ragged.append_batch::<T>(&v, &[count])?;
                }
                Ok(())
            })
        })
        .or_raise(py)
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
        self.append_bytes(py, rows.bytes(), &lengths)
    }

    /// Commits the pending sequences (values and offsets together, synced),
    /// with `cursor` (bytes of at most 8128, found again after a crash) when
    /// given; returns the committed sequence count.
    #[pyo3(signature = (cursor=None))]
    fn commit(&mut self, py: Python<'_>, cursor: Option<&[u8]>) -> PyResult<u64> {
        let ragged = self.live(py)?;
        match cursor {
            Some(cursor) => {
                let cursor = cursor.to_vec();
                py.detach(|| ragged.commit_with_cursor(&cursor))
                    .or_raise(py)
            }
            None => py.detach(|| ragged.commit()).or_raise(py),
        }
    }

    /// Commits and closes: values and offsets are plain `.npy` files.
    /// Returns the committed sequence count; closing again returns None.
    fn close(&mut self, py: Python<'_>) -> PyResult<Option<u64>> {
        let Some(ragged) = self.inner.take() else {
            return Ok(None);
        };
        py.detach(|| ragged.close()).or_raise(py).map(Some)
    }

    /// Releases the files without committing, as a crash would.
    fn abandon(&mut self) {
        self.inner = None;
    }

    /// Committed sequences.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.live_ref(py)?.len() as usize)
    }

    /// Sequences appended since the last commit.
    #[getter]
    fn pending_sequences(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.live_ref(py)?.pending_sequences())
    }

    /// Committed rows of the values (the last committed offset).
    #[getter]
    fn values_rows(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.live_ref(py)?.values_len())
    }

    /// The cursor of the last commit (bytes; empty when none was given).
    #[getter]
    fn cursor<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.live_ref(py)?.cursor()))
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
        self.path.clone()
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
        self.inner.is_none()
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
        if exc_type.is_some_and(|t| !t.is_none()) {
            self.inner = None;
        } else {
            self.close(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let path = self.path.display().to_string();
        match &self.inner {
            Some(r) => format!(
                "<npy_append.RaggedAppender {path:?}: {} committed sequences, {} pending>",
                r.len(),
                r.pending_sequences()
            ),
            None => format!("<npy_append.RaggedAppender {path:?}: closed>"),
        }
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
        GroupMapping {
            snapshot: Snapshot::Ragged(Arc::clone(&self.reader)),
            member: self.values_index(),
        }
    }

    /// The committed offsets' bytes, exporting the buffer protocol.
    fn offsets_mapping(&self) -> GroupMapping {
        GroupMapping {
            snapshot: Snapshot::Ragged(Arc::clone(&self.reader)),
            member: self.offsets_index(),
        }
    }
}
