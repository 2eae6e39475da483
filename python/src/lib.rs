//! The native part of the `npy_append` Python package: the crash-safe
//! appender and the reader of the `npy-append` crate, for numpy arrays.
//!
//! The pure-Python package (`npy_append/`) defines the exception classes,
//! the dtype helpers this module calls, and the npy-append-array drop-in.

#![allow(
    clippy::doc_markdown,
    clippy::cast_possible_truncation,
    clippy::needless_pass_by_value,
    reason = "doc comments are Python docstrings; pyo3 arguments arrive owned; row counts fit in usize on the platforms numpy runs on"
)]

use std::ffi::{c_int, c_void};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use npy_append::format::header::shape_repr;
use npy_append::{
    AppendOptions, Appender as RsAppender, Dtype, Durability, Error, FileState, FileStatus, Found,
    GroupCommit, Reader as RsReader, TailPolicy,
};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyTuple};

mod groups;
mod ragged;

/// The Python exception class (from `npy_append._errors`) for a library error.
fn error_class(e: &Error) -> &'static str {
    match e {
        Error::Locked { .. } => "LockedError",
        Error::TrailingBytes { .. } => "TrailingBytesError",
        Error::Corrupt { .. }
        | Error::ChecksumMismatch { .. }
        | Error::CommittedDataMissing { .. } => "CorruptError",
        Error::ShapeMismatch { .. } => "ShapeMismatchError",
        Error::DtypeMismatch { .. } => "DtypeMismatchError",
        Error::Unsupported { .. } => "UnsupportedError",
        Error::InvalidArgument { .. } | Error::CursorTooLong { .. } => "InvalidArgumentError",
        Error::Gap { .. } => "GapError",
        Error::DataDiffers { .. } => "DataDiffersError",
        Error::Poisoned { .. } => "PoisonedError",
        Error::GroupMember { .. } => "GroupMemberError",
        Error::Io { .. } => "NpyAppendIOError",
        _ => "NpyAppendError",
    }
}

/// A Python exception of class `name` (from `npy_append._errors`) with `message`.
fn raise(py: Python<'_>, name: &str, message: String) -> PyErr {
    let class = match py
        .import("npy_append._errors")
        .and_then(|m| m.getattr(name))
    {
        Ok(class) => class,
        Err(e) => return e,
    };
    match class.call1((message,)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A library error as a Python exception with the same message.
///
/// An I/O error (`NpyAppendIOError`, an `OSError`) also carries the
/// operating system's `errno`. Its `strerror` and `filename` stay unset:
/// `OSError.__str__` would replace the message with them.
fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let err = raise(py, error_class(e), e.to_string());
    if let Error::Io { source, .. } = e
        && let Some(code) = source.raw_os_error()
    {
        // A writable attribute of every OSError.
        let _ = err.value(py).setattr("errno", code);
    }
    err
}

trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for Result<T, Error> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}

static DESCR_TEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DTYPE_FROM_DESCR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASCONTIGUOUS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASFORTRAN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The header descriptor text of a numpy dtype (`'<f4'`, `[('a', '<i4')]`),
/// parsed by the library.
fn dtype_of(py: Python<'_>, dtype: &Bound<'_, PyAny>) -> PyResult<Dtype> {
    let f = DESCR_TEXT.import(py, "npy_append._dtypes", "descr_text")?;
    let text: String = f.call1((dtype,))?.extract()?;
    Dtype::parse_descr(&text)
        .map_err(|e| raise(py, "UnsupportedError", format!("dtype {text}: {e}")))
}

/// The numpy dtype of a library dtype.
fn numpy_dtype<'py>(py: Python<'py>, dtype: &Dtype) -> PyResult<Bound<'py, PyAny>> {
    let f = DTYPE_FROM_DESCR.import(py, "npy_append._dtypes", "dtype_from_descr")?;
    f.call1((dtype.descr_repr(),))
}

fn parse_durability(py: Python<'_>, durability: &str) -> PyResult<Durability> {
    match durability {
        "fsync" => Ok(Durability::Fsync),
        "process" => Ok(Durability::Process),
        other => Err(raise(
            py,
            "InvalidArgumentError",
            format!("invalid argument: durability must be \"fsync\" or \"process\", not {other:?}"),
        )),
    }
}

fn parse_tail_policy(py: Python<'_>, policy: &str) -> PyResult<TailPolicy> {
    match policy {
        "refuse" => Ok(TailPolicy::Refuse),
        "cut" => Ok(TailPolicy::CutToHeader),
        "adopt" => Ok(TailPolicy::AdoptWholeRows),
        other => Err(raise(
            py,
            "InvalidArgumentError",
            format!(
                "invalid argument: tail_policy must be \"refuse\", \"cut\" or \"adopt\", not {other:?}"
            ),
        )),
    }
}

/// A contiguous numpy array's data as bytes, with its rows and row shape:
/// C order with rows along the first axis, or (for a Fortran-order file)
/// Fortran order with rows along the last axis.
struct Rows<'py> {
    /// Keeps the data alive (the array given, or its contiguous copy).
    array: Bound<'py, PyUntypedArray>,
    count: u64,
    /// Rows along the last axis (else the first).
    fortran: bool,
    nbytes: usize,
}

impl Rows<'_> {
    /// The array's shape without its row axis (not allocated: this is on
    /// every append's path).
    fn row_dims(&self) -> &[usize] {
        let shape = self.array.shape();
        let dims = if self.fortran {
            shape.split_last()
        } else {
            shape.split_first()
        };
        dims.map_or(&[], |(_, rest)| rest)
    }

    /// Whether one row has `shape`.
    fn row_shape_is(&self, shape: &[u64]) -> bool {
        self.row_dims()
            .iter()
            .map(|&d| d as u64)
            .eq(shape.iter().copied())
    }

    /// The shape of one row.
    fn row_shape(&self) -> Vec<u64> {
        self.row_dims().iter().map(|&d| d as u64).collect()
    }

    /// The array's bytes.
    ///
    /// Valid while `self.array` lives; numpy refuses to resize an array
    /// with other references, and `self.array` is one.
    fn bytes(&self) -> &[u8] {
        if self.nbytes == 0 {
            return &[];
        }
        // SAFETY: the array is C- or Fortran-contiguous (made so in
        // `rows_of`), so its `nbytes` bytes start at `data`, and it outlives
        // the slice.
        unsafe {
            let data = (*self.array.as_array_ptr()).fields.data.cast::<u8>();
            std::slice::from_raw_parts(data, self.nbytes)
        }
    }
}

/// The rows of `arr` for a file in C order (`fortran` false: rows along
/// axis 0, the data C-contiguous) or in Fortran order (`fortran` true: rows
/// along the last axis, the data Fortran-contiguous, as npy-append-array
/// appends to such files). An array in the other layout is copied into
/// this one, as `numpy.ascontiguousarray` / `numpy.asfortranarray` do.
fn rows_of<'py>(py: Python<'py>, arr: &Bound<'py, PyAny>, fortran: bool) -> PyResult<Rows<'py>> {
    let Ok(array) = arr.cast::<PyUntypedArray>() else {
        return Err(raise(
            py,
            "DtypeMismatchError",
            format!(
                "expected a numpy array, found {}; convert it with numpy.asarray(x, dtype=...) \
                 so that its dtype is chosen, not guessed",
                arr.get_type().name()?
            ),
        ));
    };
    let mut array = array.clone();
    if fortran && !array.is_fortran_contiguous() {
        let f = ASFORTRAN.import(py, "numpy", "asfortranarray")?;
        array = f.call1((&array,))?.cast_into::<PyUntypedArray>()?;
    } else if !fortran && !array.is_c_contiguous() {
        let f = ASCONTIGUOUS.import(py, "numpy", "ascontiguousarray")?;
        array = f.call1((&array,))?.cast_into::<PyUntypedArray>()?;
    }
    let shape = array.shape();
    let split = if fortran {
        shape.split_last()
    } else {
        shape.split_first()
    };
    let Some((&rows, _)) = split else {
        return Err(raise(
            py,
            "ShapeMismatchError",
            "shape mismatch: expected an array with at least one axis (rows), found a 0-d array"
                .to_owned(),
        ));
    };
    let itemsize = array.dtype().itemsize();
    let nbytes = shape.iter().product::<usize>() * itemsize;
    Ok(Rows {
        count: rows as u64,
        fortran,
        nbytes,
        array,
    })
}

/// Whether `np.save` (and npy-append-array's first append) writes `arr` in
/// Fortran order: a numpy array that is Fortran-contiguous and not
/// C-contiguous (so of at least two axes).
fn saved_in_fortran_order(arr: &Bound<'_, PyAny>) -> bool {
    arr.cast::<PyUntypedArray>()
        .is_ok_and(|a| a.is_fortran_contiguous() && !a.is_c_contiguous())
}

/// The error for a call on a closed appender.
fn closed(py: Python<'_>, path: &std::path::Path) -> PyErr {
    raise(
        py,
        "ClosedError",
        format!("{}: the appender is closed", path.display()),
    )
}

/// Crash-safe appender to one `.npy` file.
///
/// Open with `Appender.open_or_recover(path, ...)`. Rows given to
/// `append()` are pending until `commit()` (or `commit_every` rows); a
/// commit survives a kill of the process (durability="process") or also a
/// power loss (durability="fsync", the default). `close()` commits and leaves
/// a plain `.npy`. As a context manager, leaving the block normally closes;
/// leaving it by an exception only releases the file without committing
/// (as a crash would: the next open keeps exactly the last commit).
#[pyclass(module = "npy_append._native", name = "Appender")]
struct PyAppender {
    inner: Option<RsAppender>,
    path: PathBuf,
    options: AppendOptions,
    /// A new file whose dtype or row shape comes from the first append.
    infer: bool,
    /// Whether `options` has the row shape from the caller.
    row_shape_given: bool,
    /// The order the caller asked for (`fortran_order=`), if any.
    fortran_given: Option<bool>,
    /// The numpy dtype object last found equal to the file's dtype.
    matched: Option<Py<PyAny>>,
}

impl PyAppender {
    fn live(&mut self, py: Python<'_>) -> PyResult<&mut RsAppender> {
        match &mut self.inner {
            Some(appender) => Ok(appender),
            None => Err(closed(py, &self.path)),
        }
    }

    fn live_ref(&self, py: Python<'_>) -> PyResult<&RsAppender> {
        self.inner.as_ref().ok_or_else(|| closed(py, &self.path))
    }

    /// Checks `arr` against the file's dtype and row shape (opening a new
    /// file with them first when they come from the first append) and
    /// returns its bytes.
    fn check<'py>(&mut self, py: Python<'py>, arr: &Bound<'py, PyAny>) -> PyResult<Rows<'py>> {
        let unborn = self.infer && self.live_ref(py)?.dtype().is_none();
        let fortran = if unborn {
            // Not created yet: the order is the caller's or, when the first
            // array also gives the row shape, the one `np.save` (and
            // npy-append-array) would write that array in.
            self.fortran_given
                .unwrap_or_else(|| !self.row_shape_given && saved_in_fortran_order(arr))
        } else {
            self.live_ref(py)?.fortran_order()
        };
        let rows = rows_of(py, arr, fortran)?;
        let dtype = rows.array.dtype();
        if self.infer {
            if rows.count == 0 {
                return Ok(rows);
            }
            let given = dtype_of(py, dtype.as_any())?;
            let mut options = self.options.clone().fortran_order(fortran);
            if unborn {
                options = options.dtype_value(given);
            }
            if !self.row_shape_given {
                options = options.row_shape(&rows.row_shape());
            }
            let path = self.path.clone();
            // Nothing exists yet: dropping the first appender writes nothing.
            self.inner = None;
            let appender = py.detach(|| options.open(&path)).or_raise(py)?;
            self.inner = Some(appender);
            self.infer = false;
        }
        let appender = self.live_ref(py)?;
        let same = self
            .matched
            .as_ref()
            .is_some_and(|m| m.as_ptr() == dtype.as_ptr());
        if !same {
            let Some(file_dtype) = appender.dtype() else {
                return Err(raise(
                    py,
                    "InvalidArgumentError",
                    "invalid argument: no dtype".into(),
                ));
            };
            let file_dtype = file_dtype.clone();
            let given = dtype_of(py, dtype.as_any())?;
            if given != file_dtype {
                return Err(to_py(
                    py,
                    &Error::DtypeMismatch {
                        expected: file_dtype.to_string(),
                        found: given.to_string(),
                    },
                ));
            }
            self.matched = Some(dtype.into_any().unbind());
        }
        let appender = self.live_ref(py)?;
        if fortran && !rows.row_shape_is(appender.row_shape()) {
            let found: Vec<u64> = rows.array.shape().iter().map(|&d| d as u64).collect();
            return Err(to_py(
                py,
                &Error::ShapeMismatch {
                    expected: format!(
                        "arrays of shape ({}) (a Fortran-order file grows along its last axis)",
                        appender
                            .row_shape()
                            .iter()
                            .map(u64::to_string)
                            .chain(["n".to_owned()])
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    found: format!("an array of shape {}", shape_repr(&found)),
                },
            ));
        }
        if !rows.row_shape_is(appender.row_shape()) {
            return Err(to_py(
                py,
                &Error::ShapeMismatch {
                    expected: format!("rows of shape {}", shape_repr(appender.row_shape())),
                    found: format!("rows of shape {}", shape_repr(&rows.row_shape())),
                },
            ));
        }
        Ok(rows)
    }
}

#[pymethods]
impl PyAppender {
    /// Opens `path` for appending: creates it (at once when `dtype` is given,
    /// with `row_shape` or else 1-D; otherwise on the first append, with
    /// that array's dtype and, unless given, row shape), takes over a clean
    /// `.npy` (one whose header has no room to grow is first replaced by a
    /// rewritten copy), or recovers a crashed writer's file to its last
    /// commit.
    ///
    /// dtype: anything `numpy.dtype()` accepts; checked against an existing
    ///   file, never cast.
    /// row_shape: the shape of one row (the array's shape without axis 0;
    ///   in a Fortran-order file, without its last axis).
    /// durability: "fsync" (a commit survives power loss) or "process"
    ///   (a commit survives a kill of the process, not a power loss).
    /// commit_every: commit automatically once this many rows are pending.
    /// tail_policy: for a file without journal that has bytes past its
    ///   header's rows: "refuse" (TrailingBytesError), "cut" or "adopt".
    /// lock_timeout: seconds to wait for another writer's lock (default: fail
    ///   at once with LockedError).
    /// fortran_order: create a new file in Fortran order (True; rows are then
    ///   slices along the last axis) or C order (False); checked against an
    ///   existing file. Default: an existing file's order; for a new file,
    ///   C order, or, when neither dtype nor row_shape is given, the order
    ///   np.save writes the first array in (Fortran for an array that is
    ///   Fortran-contiguous and not C-contiguous).
    #[staticmethod]
    #[pyo3(signature = (path, dtype=None, row_shape=None, durability="fsync", commit_every=None, tail_policy="refuse", lock_timeout=None, fortran_order=None))]
    #[allow(clippy::too_many_arguments)]
    fn open_or_recover(
        py: Python<'_>,
        path: PathBuf,
        dtype: Option<Bound<'_, PyAny>>,
        row_shape: Option<Vec<u64>>,
        durability: &str,
        commit_every: Option<u64>,
        tail_policy: &str,
        lock_timeout: Option<f64>,
        fortran_order: Option<bool>,
    ) -> PyResult<Self> {
        let mut options = AppendOptions::new()
            .durability(parse_durability(py, durability)?)
            .tail_policy(parse_tail_policy(py, tail_policy)?);
        if let Some(dtype) = &dtype {
            let np_dtype = py.import("numpy")?.getattr("dtype")?.call1((dtype,))?;
            options = options.dtype_value(dtype_of(py, &np_dtype)?);
        }
        if let Some(shape) = &row_shape {
            options = options.row_shape(shape);
        }
        if let Some(fortran) = fortran_order {
            options = options.fortran_order(fortran);
        }
        if let Some(rows) = commit_every {
            if rows == 0 {
                return Err(raise(
                    py,
                    "InvalidArgumentError",
                    "invalid argument: commit_every must be at least 1".to_owned(),
                ));
            }
            options = options.group_commit(GroupCommit::rows(rows));
        }
        if let Some(seconds) = lock_timeout {
            let wait = Duration::try_from_secs_f64(seconds).map_err(|e| {
                raise(
                    py,
                    "InvalidArgumentError",
                    format!("invalid argument: lock_timeout: {e}"),
                )
            })?;
            options = options.lock_wait(npy_append::LockWait::Wait(wait));
        }
        let opened = options.clone();
        let appender = py.detach(|| opened.open(&path)).or_raise(py)?;
        // With a dtype, a new file exists already (1-D unless row_shape is
        // given); without one, the first array gives what is missing.
        let infer = appender.report().found == Found::NoFile && appender.dtype().is_none();
        Ok(Self {
            inner: Some(appender),
            path,
            options,
            infer,
            row_shape_given: row_shape.is_some(),
            fortran_given: fortran_order,
            matched: None,
        })
    }

    /// Appends the rows of a numpy array: axis 0 is rows and the other axes
    /// must be the file's row shape (for a Fortran-order file, the last axis
    /// is rows and the leading axes must be the file's). The dtype must
    /// equal the file's exactly: nothing is cast. An array already in the
    /// file's order (C-contiguous; Fortran-contiguous for a Fortran-order
    /// file) is read in place, without a copy. The rows are pending until
    /// the next commit.
    fn append(&mut self, py: Python<'_>, arr: &Bound<'_, PyAny>) -> PyResult<()> {
        let rows = self.check(py, arr)?;
        if rows.count == 0 {
            return Ok(());
        }
        let bytes = rows.bytes();
        let appender = self.live(py)?;
        py.detach(|| appender.append_bytes(bytes)).or_raise(py)
    }

    /// `append(arr)` and `commit()` in one call, with the GIL released once:
    /// the rows are committed when it returns. Returns the committed row
    /// count. On a dtype or shape mismatch nothing is appended or committed.
    fn append_commit(&mut self, py: Python<'_>, arr: &Bound<'_, PyAny>) -> PyResult<u64> {
        let rows = self.check(py, arr)?;
        let bytes = rows.bytes();
        let appender = self.live(py)?;
        py.detach(|| {
            if !bytes.is_empty() {
                appender.append_bytes(bytes)?;
            }
            appender.commit()
        })
        .or_raise(py)
    }

    /// Exactly-once append keyed by row index: `arr` holds rows
    /// `start_row...` of the data. Rows the file already holds are skipped;
    /// returns how many rows were appended. A `start_row` past the rows the
    /// file holds raises GapError.
    fn append_at(
        &mut self,
        py: Python<'_>,
        start_row: u64,
        arr: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let rows = self.check(py, arr)?;
        if rows.count == 0 {
            return Ok(0);
        }
        let bytes = rows.bytes();
        let appender = self.live(py)?;
        py.detach(|| appender.append_bytes_at(start_row, bytes))
            .or_raise(py)
    }

    /// Commits the pending rows (with `cursor`, a bytes value of at most
    /// 8128 bytes found again after a crash, when given); returns the
    /// committed row count.
    #[pyo3(signature = (cursor=None))]
    fn commit(&mut self, py: Python<'_>, cursor: Option<&[u8]>) -> PyResult<u64> {
        let appender = self.live(py)?;
        match cursor {
            Some(cursor) => {
                let cursor = cursor.to_vec();
                py.detach(|| appender.commit_with_cursor(&cursor))
                    .or_raise(py)
            }
            None => py.detach(|| appender.commit()).or_raise(py),
        }
    }

    /// Commits, makes the header final, removes the journal: the file is a
    /// plain `.npy`. Returns the committed row count. Closing twice does
    /// nothing the second time (returns the same count).
    fn close(&mut self, py: Python<'_>) -> PyResult<Option<u64>> {
        let Some(appender) = self.inner.take() else {
            return Ok(None);
        };
        py.detach(|| appender.close()).or_raise(py).map(Some)
    }

    /// Releases the file without committing, as a crash would: pending rows
    /// are lost, committed rows stay, the journal stays until a later close.
    fn abandon(&mut self) {
        self.inner = None;
    }

    /// Committed rows.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.live_ref(py)?.len() as usize)
    }

    /// Rows appended since the last commit.
    #[getter]
    fn pending_rows(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.live_ref(py)?.pending_rows())
    }

    /// The cursor of the last commit (bytes; empty when none was given).
    #[getter]
    fn cursor<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.live_ref(py)?.cursor()))
    }

    /// The file's numpy dtype; None before a new file's first append.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.live_ref(py)?
            .dtype()
            .map(|d| numpy_dtype(py, d))
            .transpose()
    }

    /// The shape of one row: the array's shape without its first axis, or
    /// without its last axis in a Fortran-order file.
    #[getter]
    fn row_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.live_ref(py)?.row_shape())
    }

    /// Whether the file is in Fortran order (of at least two axes): the
    /// array's shape is then `row_shape + (len(self),)` and `append()` takes
    /// arrays of that shape with any last axis (Fortran-contiguous arrays are
    /// read in place, others copied). Before a new file's first append:
    /// whether it will be created so, as far as the options decide it.
    #[getter]
    fn fortran_order(&self, py: Python<'_>) -> PyResult<bool> {
        let appender = self.live_ref(py)?;
        Ok(if self.infer && appender.dtype().is_none() {
            self.fortran_given.unwrap_or(false)
        } else {
            appender.fortran_order()
        })
    }

    /// The `.npy` file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Whether close() (or abandon()) was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
    }

    /// What opening found and changed: a dict with `found` ("no file",
    /// "clean" or "journal"), `committed_rows`, `bytes_cut`,
    /// `header_rewritten`, `dropped_rows`, `adopted_rows`,
    /// `journal_discarded` and `text` (a one-line summary).
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = self.live_ref(py)?.report();
        let d = PyDict::new(py);
        let found = match r.found {
            Found::NoFile => "no file",
            Found::Clean => "clean",
            Found::Journal => "journal",
        };
        d.set_item("found", found)?;
        d.set_item("committed_rows", r.committed_rows)?;
        d.set_item("bytes_cut", r.bytes_cut)?;
        d.set_item("header_rewritten", r.header_rewritten)?;
        d.set_item("dropped_rows", r.dropped_rows)?;
        d.set_item("adopted_rows", r.adopted_rows)?;
        d.set_item("journal_discarded", r.journal_discarded)?;
        d.set_item("text", r.to_string())?;
        Ok(d)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Closes when the block ends normally; when it ends by an exception,
    /// releases the file without committing (the pending rows are lost).
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
        match &self.inner {
            Some(a) => format!(
                "<npy_append.Appender {:?}: {} committed rows, {} pending>",
                self.path.display().to_string(),
                a.len(),
                a.pending_rows()
            ),
            None => format!(
                "<npy_append.Appender {:?}: closed>",
                self.path.display().to_string()
            ),
        }
    }
}

/// The committed bytes of a reader, exported through the buffer protocol;
/// keeps the mapping alive as long as any view of it.
#[pyclass(module = "npy_append._native", name = "_Mapping", frozen)]
struct Mapping {
    reader: Arc<RsReader>,
}

#[pymethods]
impl Mapping {
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let reader = &slf.get().reader;
        let bytes = reader
            .bytes(0..reader.len())
            .map_err(|e| PyBufferError::new_err(e.to_string()))?;
        // SAFETY: `view` comes from the interpreter; the bytes are committed
        // rows of `reader`'s mapping, which `slf` keeps alive.
        unsafe { fill_read_only_buffer(slf.as_any(), view, bytes, flags) }
    }
}

/// Fills `view` with a read-only, one-dimensional byte buffer of `bytes`,
/// whose owner (stored in the view) is `owner`.
///
/// # Safety
///
/// `view` is the pointer the interpreter passed to `__getbuffer__`, and
/// `bytes` stay valid and unchanged as long as `owner` lives.
unsafe fn fill_read_only_buffer(
    owner: &Bound<'_, PyAny>,
    view: *mut ffi::Py_buffer,
    bytes: &[u8],
    flags: c_int,
) -> PyResult<()> {
    let len = isize::try_from(bytes.len()).map_err(|e| PyBufferError::new_err(e.to_string()))?;
    // SAFETY: as the caller promises; PyBuffer_FillInfo takes a reference
    // to `owner` into the view, which keeps the bytes alive.
    let rc = unsafe {
        ffi::PyBuffer_FillInfo(
            view,
            owner.as_ptr(),
            bytes.as_ptr().cast_mut().cast::<c_void>(),
            len,
            1,
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(PyErr::fetch(owner.py()))
    }
}

/// Read-only view of the committed rows of a `.npy` file, beside a writer
/// (no lock taken). `array()` is a zero-copy numpy view of the rows
/// committed when it was called; `refresh()` picks up new commits.
#[pyclass(module = "npy_append._native", name = "_Reader")]
struct PyReader {
    path: PathBuf,
    reader: Arc<RsReader>,
}

impl PyReader {
    /// The reader to update: this one when no view shares its mapping, else
    /// a new one (the views keep the old mapping).
    fn own(&mut self, py: Python<'_>) -> PyResult<&mut RsReader> {
        if Arc::get_mut(&mut self.reader).is_none() {
            let path = self.path.clone();
            let fresh = py.detach(|| RsReader::open(&path)).or_raise(py)?;
            self.reader = Arc::new(fresh);
        }
        Arc::get_mut(&mut self.reader)
            .ok_or_else(|| PyValueError::new_err("reader mapping is shared"))
    }
}

#[pymethods]
impl PyReader {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let reader = py.detach(|| RsReader::open(&path)).or_raise(py)?;
        Ok(Self {
            path,
            reader: Arc::new(reader),
        })
    }

    fn refresh(&mut self, py: Python<'_>) -> PyResult<bool> {
        let before = self.reader.len();
        let reader = self.own(py)?;
        let changed = py.detach(|| reader.refresh()).or_raise(py)?;
        Ok(changed || reader.len() != before)
    }

    fn wait_for_rows(&mut self, py: Python<'_>, rows: u64, timeout: f64) -> PyResult<bool> {
        let timeout = Duration::try_from_secs_f64(timeout).map_err(|e| {
            raise(
                py,
                "InvalidArgumentError",
                format!("invalid argument: timeout: {e}"),
            )
        })?;
        if self.reader.len() >= rows {
            return Ok(true);
        }
        let reader = self.own(py)?;
        py.detach(|| reader.wait_for_rows(rows, timeout))
            .or_raise(py)
    }

    fn __len__(&self) -> usize {
        self.reader.len() as usize
    }

    #[getter]
    fn descr(&self) -> String {
        self.reader.dtype().descr_repr()
    }

    #[getter]
    fn row_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.reader.row_shape())
    }

    /// Whether rows are slices along the last axis (Fortran order, at least
    /// two axes).
    #[getter]
    fn fortran_order(&self) -> bool {
        self.reader.fortran_order()
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The committed bytes, as an object exporting the buffer protocol.
    fn mapping(&self) -> Mapping {
        Mapping {
            reader: Arc::clone(&self.reader),
        }
    }
}

/// The state of a file as far as appending is concerned: "clean",
/// "needs-recovery", "inconsistent" or "unsupported", the reason when not
/// clean, and whether its header has room to grow the row count in place
/// (false: opening it without a journal first replaces it by a rewritten
/// copy). Read-only, takes no lock.
#[pyfunction]
fn file_state(py: Python<'_>, path: PathBuf) -> PyResult<(String, Option<String>, bool)> {
    let status = py.detach(|| FileStatus::read(&path)).or_raise(py)?;
    let state = match status.state {
        FileState::Clean => "clean",
        FileState::NeedsRecovery => "needs-recovery",
        FileState::Inconsistent => "inconsistent",
        FileState::Unsupported => "unsupported",
        _ => "unknown",
    };
    // A header rebuilt from the journal is written with room.
    let room = !status.header_from_file || status.header.has_growth_room();
    Ok((state.to_owned(), status.problem, room))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAppender>()?;
    m.add_class::<PyReader>()?;
    m.add_class::<Mapping>()?;
    m.add_class::<groups::PyAppendGroup>()?;
    m.add_class::<groups::PyGroupReader>()?;
    m.add_class::<groups::GroupMapping>()?;
    m.add_class::<ragged::PyRaggedAppender>()?;
    m.add_class::<ragged::PyRaggedReader>()?;
    m.add_function(wrap_pyfunction!(file_state, m)?)?;
    Ok(())
}
