//! `Appender`: the crash-safe appender of one `.npy` file.

use std::path::PathBuf;

use npy_append::format::header::shape_repr;
use npy_append::{AppendOptions, Appender as RsAppender, Found, GroupCommit};
use numpy::PyUntypedArrayMethods;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::convert::{
    Accepts, Rows, cursor_bytes, dtype_of, lock_wait, numpy_dtype, parse_dtype, parse_durability,
    parse_row_shape, parse_short_file_policy, parse_tail_policy, rows_of,
};
use crate::errors::{OrRaise, invalid_argument, shape_mismatch};
use crate::handle::Handle;

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
pub(crate) struct PyAppender {
    handle: Handle<RsAppender>,
    options: AppendOptions,
    /// A new file whose dtype or row shape comes from the first append.
    infer: bool,
    /// Whether `options` has the row shape from the caller.
    row_shape_given: bool,
    /// The order the caller asked for (`fortran_order=`), if any.
    fortran_given: Option<bool>,
    /// The file's dtype and row shape, once it has them.
    accepts: Option<Accepts>,
}

impl PyAppender {
    /// Checks `arr` against the file's dtype and row shape (opening a new
    /// file with them first when they come from the first append) and
    /// returns its bytes.
    fn check<'py>(&mut self, py: Python<'py>, arr: &Bound<'py, PyAny>) -> PyResult<Rows<'py>> {
        let appender = self.handle.live_ref()?;
        let unborn = self.infer && appender.dtype().is_none();
        let fortran = if unborn {
            // Not created yet: C order unless the caller asked for Fortran
            // order, whatever the memory order of the first array.
            self.fortran_given.unwrap_or(false)
        } else {
            appender.fortran_order()
        };
        let rows = rows_of(py, arr, fortran)?;
        if self.infer {
            if rows.count == 0 {
                return Ok(rows);
            }
            let mut options = self.options.clone().fortran_order(fortran);
            if unborn {
                options = options.dtype_value(dtype_of(py, rows.array.dtype().as_any())?);
            }
            if !self.row_shape_given {
                options = options.row_shape(&rows.row_shape());
            }
            let path = self.handle.path().to_path_buf();
            // Nothing exists yet: dropping the first appender writes nothing.
            self.handle.replace(py, || options.open(&path))?;
            self.infer = false;
        }
        let appender = self.handle.live_ref()?;
        if self.accepts.is_none() {
            let Some(dtype) = appender.dtype() else {
                return Err(invalid_argument("no dtype"));
            };
            self.accepts = Some(Accepts::new(dtype.clone(), appender.row_shape().to_vec()));
        }
        let Some(accepts) = self.accepts.as_mut() else {
            return Err(invalid_argument("no dtype"));
        };
        accepts.check_dtype(py, &rows, None)?;
        if !rows.row_shape_is(&accepts.row_shape) {
            return Err(if fortran {
                shape_mismatch(
                    format!(
                        "arrays of shape ({}) (a Fortran-order file grows along its last axis)",
                        accepts
                            .row_shape
                            .iter()
                            .map(u64::to_string)
                            .chain(["n".to_owned()])
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    format!("an array of shape {}", shape_repr(&rows.shape())),
                )
            } else {
                shape_mismatch(
                    format!("rows of shape {}", shape_repr(&accepts.row_shape)),
                    format!("rows of shape {}", shape_repr(&rows.row_shape())),
                )
            });
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
    ///   in a Fortran-order file, without its last axis): a tuple of sizes,
    ///   or one size for 1-D rows (384 is (384,)).
    /// durability: "fsync" (a commit survives power loss) or "process"
    ///   (a commit survives a kill of the process, not a power loss).
    /// commit_every: commit automatically once this many rows are pending.
    /// tail_policy: for a file without journal that has bytes past its
    ///   header's rows: "refuse" (TrailingBytesError), "cut", "adopt" (the
    ///   whole rows past them; a partial last row is cut) or
    ///   "adopt-zero-fill" (a partial last row is completed with zeros).
    /// short_file_policy: for a file without journal that is shorter than
    ///   its header says: "refuse" (CorruptError), "keep" (the whole rows it
    ///   holds, the header rewritten to them) or "zero-fill" (also a partial
    ///   last row, completed with zeros).
    /// lock_timeout: seconds to wait for another writer's lock (default: fail
    ///   at once with LockedError).
    /// accept_loss: recover to the journal's last commit even when the file
    ///   is in a state its writer's journal cannot explain (another program
    ///   rewrote or replaced it: JournalDisagreesError by default, nothing
    ///   changed), cutting what the journal does not commit.
    /// move_aside_foreign_journal: a file at `<path>.journal` that
    ///   npy_append did not write is renamed to `<path>.journal.foreign` and
    ///   opening goes on (default: ForeignJournalError, nothing changed).
    /// fortran_order: create a new file in Fortran order (True; rows are then
    ///   slices along the last axis) or C order (False); checked against an
    ///   existing file. Default: an existing file's order; C order for a new
    ///   file, whatever the memory order of the arrays appended to it.
    #[staticmethod]
    #[pyo3(signature = (path, dtype=None, row_shape=None, durability="fsync", commit_every=None, tail_policy="refuse", lock_timeout=None, fortran_order=None, short_file_policy="refuse", accept_loss=false, move_aside_foreign_journal=false))]
    #[allow(clippy::too_many_arguments)]
    fn open_or_recover(
        py: Python<'_>,
        path: PathBuf,
        dtype: Option<Bound<'_, PyAny>>,
        row_shape: Option<Bound<'_, PyAny>>,
        durability: &str,
        commit_every: Option<u64>,
        tail_policy: &str,
        lock_timeout: Option<f64>,
        fortran_order: Option<bool>,
        short_file_policy: &str,
        accept_loss: bool,
        move_aside_foreign_journal: bool,
    ) -> PyResult<Self> {
        let mut options = AppendOptions::new()
            .durability(parse_durability(durability)?)
            .tail_policy(parse_tail_policy(tail_policy)?)
            .short_file_policy(parse_short_file_policy(short_file_policy)?)
            .accept_loss(accept_loss)
            .move_aside_foreign_journal(move_aside_foreign_journal);
        if let Some(dtype) = &dtype {
            options = options.dtype_value(parse_dtype(py, dtype)?);
        }
        if let Some(shape) = &row_shape {
            options = options.row_shape(&parse_row_shape(shape)?);
        }
        if let Some(fortran) = fortran_order {
            options = options.fortran_order(fortran);
        }
        if let Some(rows) = commit_every {
            if rows == 0 {
                return Err(invalid_argument("commit_every must be at least 1"));
            }
            options = options.group_commit(GroupCommit::rows(rows));
        }
        options = options.lock_wait(lock_wait(lock_timeout)?);
        let opened = options.clone();
        let appender = py.detach(|| opened.open(&path)).or_raise(py)?;
        // With a dtype, a new file exists already (1-D unless row_shape is
        // given); without one, the first array gives what is missing.
        let infer = appender.report().found == Found::NoFile && appender.dtype().is_none();
        // The file's own path (a symbolic link resolved).
        let path = appender.path().to_path_buf();
        Ok(Self {
            handle: Handle::new(appender, path),
            options,
            infer,
            row_shape_given: row_shape.is_some(),
            fortran_given: fortran_order,
            accepts: None,
        })
    }

    /// Appends the rows of a numpy array: axis 0 is rows and the other axes
    /// must be the file's row shape (for a Fortran-order file, the last axis
    /// is rows and the leading axes must be the file's). The dtype must
    /// equal the file's exactly: nothing is cast. The rows appended are the
    /// array's rows as numpy indexes them, whatever its memory order: an
    /// array already in the file's order (C-contiguous; Fortran-contiguous
    /// for a Fortran-order file) is read in place, any other is copied
    /// first. The rows are pending until the next commit.
    fn append(&mut self, py: Python<'_>, arr: &Bound<'_, PyAny>) -> PyResult<()> {
        let rows = self.check(py, arr)?;
        if rows.count == 0 {
            return Ok(());
        }
        let bytes = rows.bytes();
        let appender = self.handle.live()?;
        py.detach(|| appender.append_bytes(bytes)).or_raise(py)
    }

    /// `append(arr)` and `commit()` in one call, with the GIL released once:
    /// the rows are committed when it returns. Returns the committed row
    /// count. On a dtype or shape mismatch nothing is appended or committed.
    fn append_commit(&mut self, py: Python<'_>, arr: &Bound<'_, PyAny>) -> PyResult<u64> {
        let rows = self.check(py, arr)?;
        let bytes = rows.bytes();
        let appender = self.handle.live()?;
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
        let appender = self.handle.live()?;
        py.detach(|| appender.append_bytes_at(start_row, bytes))
            .or_raise(py)
    }

    /// Commits the pending rows (with `cursor`, a bytes-like value of at
    /// most 8128 bytes found again after a crash, when given); returns the
    /// committed row count. FileReplacedError (the writer stops) when
    /// another program removed or replaced the file or its journal.
    #[pyo3(signature = (cursor=None))]
    fn commit(&mut self, py: Python<'_>, cursor: Option<Bound<'_, PyAny>>) -> PyResult<u64> {
        let cursor = cursor_bytes(cursor.as_ref())?;
        self.handle.commit(py, cursor.as_deref())
    }

    /// Commits, makes the header final, removes the journal: the file is a
    /// plain `.npy`. Returns the committed row count. Closing twice does
    /// nothing the second time (returns None).
    fn close(&mut self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.handle.close(py)
    }

    /// Releases the file without committing, as a crash would: pending rows
    /// are lost, committed rows stay, the journal stays until a later close.
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

    /// The file's numpy dtype; None before a new file's first append.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.handle
            .live_ref()?
            .dtype()
            .map(|d| numpy_dtype(py, d))
            .transpose()
    }

    /// The shape of one row: the array's shape without its first axis, or
    /// without its last axis in a Fortran-order file.
    #[getter]
    fn row_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.handle.live_ref()?.row_shape())
    }

    /// Whether the file is in Fortran order (of at least two axes): the
    /// array's shape is then `row_shape + (len(self),)` and `append()` takes
    /// arrays of that shape with any last axis (Fortran-contiguous arrays are
    /// read in place, others copied). Before a new file's first append:
    /// whether it will be created so (only with `fortran_order=True`).
    #[getter]
    fn fortran_order(&self) -> PyResult<bool> {
        let appender = self.handle.live_ref()?;
        Ok(if self.infer && appender.dtype().is_none() {
            self.fortran_given.unwrap_or(false)
        } else {
            appender.fortran_order()
        })
    }

    /// The `.npy` file's path (a symbolic link in its last component
    /// resolved: the journal sits beside the file itself).
    #[getter]
    fn path(&self) -> PathBuf {
        self.handle.path().to_path_buf()
    }

    /// Whether close() (or abandon()) was called.
    #[getter]
    fn closed(&self) -> bool {
        self.handle.closed()
    }

    /// What opening found and changed: a dict with `found` ("no file",
    /// "clean" or "journal"), `committed_rows`, `bytes_cut`,
    /// `header_rewritten`, `dropped_rows`, `adopted_rows`,
    /// `journal_discarded` and `text` (a one-line summary).
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = self.handle.live_ref()?.report();
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
        self.handle.exit(py, exc_type)
    }

    fn __repr__(&self) -> String {
        self.handle.repr("Appender", |a| {
            format!("{} committed rows, {} pending", a.len(), a.pending_rows())
        })
    }
}
