//! Conversions between Python values and the library's: dtypes, row
//! shapes, the options given as strings and numbers, and the bytes of a
//! numpy array's rows.

use std::path::Path;
use std::time::Duration;

use npy_append::format::header::shape_repr;
use npy_append::{Dtype, Durability, LockWait, ShortFilePolicy, TailPolicy};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyMemoryView, PyString, PyTuple};

use crate::errors::{dtype_mismatch, invalid_argument, not_an_array, shape_mismatch, unsupported};

static DESCR_TEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DTYPE_FROM_DESCR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static NUMPY_DTYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASCONTIGUOUS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASFORTRAN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The library's dtype of a numpy dtype object, from the header descriptor
/// text numpy writes for it (`'<f4'`, `[('a', '<i4')]`).
pub(crate) fn dtype_of(py: Python<'_>, dtype: &Bound<'_, PyAny>) -> PyResult<Dtype> {
    let f = DESCR_TEXT.import(py, "npy_append._dtypes", "descr_text")?;
    let text: String = f.call1((dtype,))?.extract()?;
    Dtype::parse_descr(&text).map_err(|e| unsupported(format!("dtype {text}: {e}")))
}

/// The library's dtype of anything `numpy.dtype()` accepts.
pub(crate) fn parse_dtype(py: Python<'_>, dtype: &Bound<'_, PyAny>) -> PyResult<Dtype> {
    let np_dtype = NUMPY_DTYPE.import(py, "numpy", "dtype")?.call1((dtype,))?;
    dtype_of(py, &np_dtype)
}

/// The numpy dtype of a library dtype.
pub(crate) fn numpy_dtype<'py>(py: Python<'py>, dtype: &Dtype) -> PyResult<Bound<'py, PyAny>> {
    let f = DTYPE_FROM_DESCR.import(py, "npy_append._dtypes", "dtype_from_descr")?;
    f.call1((dtype.descr_repr(),))
}

/// A row shape: a sequence of sizes, or one size for `(n,)`.
pub(crate) fn parse_row_shape(shape: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    if let Ok(n) = shape.extract::<u64>() {
        return Ok(vec![n]);
    }
    shape.extract::<Vec<u64>>().map_err(|_| {
        invalid_argument(format!(
            "a row shape is a tuple of sizes, such as () or (768,), not {}",
            shape
                .repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string())
        ))
    })
}

/// Named specs of `noun`s (group members, dataset columns): a dict
/// `{name: (dtype, row_shape)}` or `{name: dtype}` (one value per row), or
/// a sequence of `(name, dtype, row_shape)` or `(name, dtype)` tuples; as
/// `(name, dtype, row_shape)` in order.
pub(crate) fn parse_specs(
    py: Python<'_>,
    specs: &Bound<'_, PyAny>,
    noun: &str,
) -> PyResult<Vec<(String, Dtype, Vec<u64>)>> {
    let mut entries: Vec<(String, Bound<'_, PyAny>, Option<Bound<'_, PyAny>>)> = Vec::new();
    if let Ok(dict) = specs.cast::<PyDict>() {
        for (name, spec) in dict.iter() {
            let Ok(name) = name.extract::<String>() else {
                return Err(invalid_argument(format!(
                    "{noun} names are strings, not {}",
                    name.repr()?
                )));
            };
            // A tuple is (dtype, row_shape): numpy's own (base, shape)
            // subarray dtypes are not these dtypes.
            match spec.cast::<PyTuple>() {
                Ok(t) if t.len() == 2 => {
                    entries.push((name, t.get_item(0)?, Some(t.get_item(1)?)));
                }
                Ok(t) => {
                    return Err(invalid_argument(format!(
                        "{noun} {name:?}: give (dtype, row_shape) or a dtype, not a tuple of {}",
                        t.len()
                    )));
                }
                Err(_) => entries.push((name, spec, None)),
            }
        }
    } else {
        for item in specs.try_iter()? {
            let item = item?;
            let t = item
                .cast_into::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2 || t.len() == 3)
                .ok_or_else(|| {
                    invalid_argument(format!(
                        "{noun}s: a dict {{name: (dtype, row_shape)}} or a sequence of \
                         (name, dtype, row_shape) tuples"
                    ))
                })?;
            let name: String = t
                .get_item(0)?
                .extract()
                .map_err(|_| invalid_argument(format!("{noun} names are strings")))?;
            let shape = if t.len() == 3 {
                Some(t.get_item(2)?)
            } else {
                None
            };
            entries.push((name, t.get_item(1)?, shape));
        }
    }
    entries
        .into_iter()
        .map(|(name, dtype, shape)| {
            let dtype = parse_dtype(py, &dtype)?;
            let shape = match shape {
                Some(s) => parse_row_shape(&s)?,
                None => Vec::new(),
            };
            Ok((name, dtype, shape))
        })
        .collect()
}

/// `lock_timeout` seconds as the library's lock policy (`None`: fail at once).
pub(crate) fn lock_wait(lock_timeout: Option<f64>) -> PyResult<LockWait> {
    let Some(seconds) = lock_timeout else {
        return Ok(LockWait::Fail);
    };
    Duration::try_from_secs_f64(seconds)
        .map(LockWait::Wait)
        .map_err(|e| invalid_argument(format!("lock_timeout: {e}")))
}

/// A timeout in seconds (`what` names the argument in the error).
pub(crate) fn seconds(what: &str, seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|e| invalid_argument(format!("{what}: {e}")))
}

/// A cursor given to `commit(cursor=...)`: the bytes of any bytes-like
/// object (`bytes`, `bytearray`, `memoryview`, a numpy array: its raw
/// bytes). A `str` is refused with a hint to encode it (which encoding is
/// the caller's choice), anything else as not bytes-like.
pub(crate) fn cursor_bytes(cursor: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<u8>>> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    if let Ok(bytes) = cursor.cast::<PyBytes>() {
        return Ok(Some(bytes.as_bytes().to_vec()));
    }
    if cursor.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "cursor must be a bytes-like object, not str; encode it, e.g. cursor=s.encode()",
        ));
    }
    let view = PyMemoryView::from(cursor).map_err(|_| {
        PyTypeError::new_err(format!(
            "cursor must be a bytes-like object (bytes, bytearray, memoryview), not {}",
            cursor
                .get_type()
                .name()
                .map_or_else(|_| "?".to_owned(), |n| n.to_string())
        ))
    })?;
    let bytes = view.call_method0("tobytes")?.cast_into::<PyBytes>()?;
    Ok(Some(bytes.as_bytes().to_vec()))
}

/// `durability="fsync" | "process"`.
pub(crate) fn parse_durability(durability: &str) -> PyResult<Durability> {
    match durability {
        "fsync" => Ok(Durability::Fsync),
        "process" => Ok(Durability::Process),
        other => Err(invalid_argument(format!(
            "durability must be \"fsync\" or \"process\", not {other:?}"
        ))),
    }
}

/// `tail_policy="refuse" | "cut" | "adopt" | "adopt-zero-fill"`.
pub(crate) fn parse_tail_policy(policy: &str) -> PyResult<TailPolicy> {
    match policy {
        "refuse" => Ok(TailPolicy::Refuse),
        "cut" => Ok(TailPolicy::CutToHeader),
        "adopt" => Ok(TailPolicy::AdoptWholeRows),
        "adopt-zero-fill" => Ok(TailPolicy::AdoptZeroFillLastRow),
        other => Err(invalid_argument(format!(
            "tail_policy must be \"refuse\", \"cut\", \"adopt\" or \"adopt-zero-fill\", \
             not {other:?}"
        ))),
    }
}

/// `short_file_policy="refuse" | "keep" | "zero-fill"`.
pub(crate) fn parse_short_file_policy(policy: &str) -> PyResult<ShortFilePolicy> {
    match policy {
        "refuse" => Ok(ShortFilePolicy::Refuse),
        "keep" => Ok(ShortFilePolicy::KeepWholeRows),
        "zero-fill" => Ok(ShortFilePolicy::ZeroFillLastRow),
        other => Err(invalid_argument(format!(
            "short_file_policy must be \"refuse\", \"keep\" or \"zero-fill\", not {other:?}"
        ))),
    }
}

/// A contiguous numpy array's data as bytes, with its rows and row shape:
/// C order with rows along the first axis, or (for a Fortran-order file)
/// Fortran order with rows along the last axis.
pub(crate) struct Rows<'py> {
    /// Keeps the data alive (the array given, or its contiguous copy).
    pub(crate) array: Bound<'py, PyUntypedArray>,
    /// Rows (the length of the row axis).
    pub(crate) count: u64,
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
    pub(crate) fn row_shape_is(&self, shape: &[u64]) -> bool {
        self.row_dims()
            .iter()
            .map(|&d| d as u64)
            .eq(shape.iter().copied())
    }

    /// The shape of one row.
    pub(crate) fn row_shape(&self) -> Vec<u64> {
        self.row_dims().iter().map(|&d| d as u64).collect()
    }

    /// The shape of the whole array.
    pub(crate) fn shape(&self) -> Vec<u64> {
        self.array.shape().iter().map(|&d| d as u64).collect()
    }

    /// The array's bytes.
    ///
    /// Valid while `self.array` lives; numpy refuses to resize an array
    /// with other references, and `self.array` is one.
    pub(crate) fn bytes(&self) -> &[u8] {
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
pub(crate) fn rows_of<'py>(
    py: Python<'py>,
    arr: &Bound<'py, PyAny>,
    fortran: bool,
) -> PyResult<Rows<'py>> {
    let Ok(array) = arr.cast::<PyUntypedArray>() else {
        return Err(not_an_array(arr.get_type().name()?));
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
        return Err(shape_mismatch(
            "an array with at least one axis (rows)",
            "a 0-d array",
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

/// What a file accepts: its dtype and row shape, and the numpy dtype object
/// last found equal to the dtype (an identity check then skips converting
/// the dtype on every append).
pub(crate) struct Accepts {
    pub(crate) dtype: Dtype,
    pub(crate) row_shape: Vec<u64>,
    matched: Option<Py<PyAny>>,
}

impl Accepts {
    pub(crate) fn new(dtype: Dtype, row_shape: Vec<u64>) -> Self {
        Self {
            dtype,
            row_shape,
            matched: None,
        }
    }

    /// Checks the dtype of `rows` against the file's: exactly equal, never
    /// cast. `file` names the file in the message, when given.
    pub(crate) fn check_dtype(
        &mut self,
        py: Python<'_>,
        rows: &Rows<'_>,
        file: Option<&Path>,
    ) -> PyResult<()> {
        let dtype = rows.array.dtype();
        if self
            .matched
            .as_ref()
            .is_some_and(|m| m.as_ptr() == dtype.as_ptr())
        {
            return Ok(());
        }
        let given = dtype_of(py, dtype.as_any())?;
        if given != self.dtype {
            return Err(match file {
                Some(file) => dtype_mismatch(format!("{} ({})", self.dtype, file.display()), given),
                None => dtype_mismatch(&self.dtype, given),
            });
        }
        self.matched = Some(dtype.into_any().unbind());
        Ok(())
    }

    /// Checks `arr` against the dtype and the row shape of a C-order file
    /// (`file`, named in messages) and returns its rows (without a copy
    /// when it is C-contiguous).
    pub(crate) fn check<'py>(
        &mut self,
        py: Python<'py>,
        arr: &Bound<'py, PyAny>,
        file: &Path,
    ) -> PyResult<Rows<'py>> {
        let rows = rows_of(py, arr, false)?;
        self.check_dtype(py, &rows, Some(file))?;
        if !rows.row_shape_is(&self.row_shape) {
            return Err(shape_mismatch(
                format!(
                    "rows of shape {} ({})",
                    shape_repr(&self.row_shape),
                    file.display()
                ),
                format!("rows of shape {}", shape_repr(&rows.row_shape())),
            ));
        }
        Ok(rows)
    }
}
