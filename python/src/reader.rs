//! Readers' committed bytes for numpy: `_Reader` (wrapped by
//! `npy_append.Reader`) and the buffer-protocol objects that keep a
//! snapshot's mapping alive as long as any numpy view of it
//! (`_Mapping`, `_GroupMapping`).

use std::ffi::{c_int, c_void};
use std::path::PathBuf;
use std::sync::Arc;

use npy_append::{
    GroupReader as RsGroupReader, RaggedReader as RsRaggedReader, Reader as RsReader, WriterState,
};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::seconds;
use crate::errors::OrRaise;

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

/// The committed bytes of a reader, exported through the buffer protocol;
/// keeps the mapping alive as long as any view of it.
#[pyclass(module = "npy_append._native", name = "_Mapping", frozen)]
pub(crate) struct Mapping {
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

/// A group snapshot whose mapped bytes a view can keep alive.
pub(crate) enum Snapshot {
    Group(Arc<RsGroupReader>),
    Ragged(Arc<RsRaggedReader>),
}

impl Snapshot {
    fn group(&self) -> &RsGroupReader {
        match self {
            Self::Group(r) => r,
            Self::Ragged(r) => r.group(),
        }
    }
}

/// The committed bytes of one member of a group snapshot, exported
/// through the buffer protocol; keeps the mapping alive as long as any
/// view of it.
#[pyclass(module = "npy_append._native", name = "_GroupMapping", frozen)]
pub(crate) struct GroupMapping {
    snapshot: Snapshot,
    member: usize,
}

impl GroupMapping {
    /// The committed bytes of member `member` of `snapshot`.
    pub(crate) fn new(snapshot: Snapshot, member: usize) -> Self {
        Self { snapshot, member }
    }
}

#[pymethods]
impl GroupMapping {
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        let reader = this.snapshot.group();
        let bytes = reader
            .bytes(this.member, 0..reader.rows(this.member))
            .map_err(|e| PyBufferError::new_err(e.to_string()))?;
        // SAFETY: `view` comes from the interpreter; the bytes are committed
        // rows of the snapshot's mapping, which `slf` keeps alive.
        unsafe { fill_read_only_buffer(slf.as_any(), view, bytes, flags) }
    }
}

/// Read-only view of the committed rows of a `.npy` file, beside a writer
/// (no lock taken). `array()` is a zero-copy numpy view of the rows
/// committed when it was called; `refresh()` picks up new commits.
#[pyclass(module = "npy_append._native", name = "_Reader")]
pub(crate) struct PyReader {
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
        let timeout = seconds("timeout", timeout)?;
        if self.reader.len() >= rows {
            return Ok(true);
        }
        let reader = self.own(py)?;
        py.detach(|| reader.wait_for_rows(rows, timeout))
            .or_raise(py)
    }

    /// "active", "finished" or "died" (see `npy_append.Reader.writer_state`).
    fn writer_state(&self, py: Python<'_>) -> PyResult<&'static str> {
        let reader = &self.reader;
        py.detach(|| reader.writer_state())
            .map(WriterState::as_str)
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
