//! Append groups from Python: several `.npy` files committed together
//! (`AppendGroup`), and a consistent snapshot of all of them
//! (`_GroupReader`, wrapped by `npy_append.GroupReader`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use npy_append::{
    AppendGroup as RsGroup, Dtype, GroupOptions, GroupReader as RsGroupReader, MemberSpec,
    WriterState,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::convert::{
    Accepts, Rows, cursor_bytes, lock_wait, numpy_dtype, parse_durability, parse_specs, seconds,
};
use crate::errors::{OrRaise, corrupt, invalid_argument};
use crate::handle::Handle;
use crate::reader::{GroupMapping, Snapshot};

/// The members given to `AppendGroup.open_or_recover` (see
/// [`parse_specs`]).
fn parse_members(py: Python<'_>, members: &Bound<'_, PyAny>) -> PyResult<Vec<MemberSpec>> {
    Ok(parse_specs(py, members, "member")?
        .into_iter()
        .map(|(name, dtype, shape)| MemberSpec::with_dtype(&name, dtype, &shape))
        .collect())
}

/// A member as the Python writer knows it.
struct Member {
    name: String,
    path: PathBuf,
    accepts: Accepts,
}

/// Several `.npy` files committed together, crash-safely.
///
/// Open with `AppendGroup.open_or_recover(path, members=...)`, where `path`
/// is the group journal (e.g. "data/train.group") and the members are
/// `.npy` files in the same directory, addressed by their file names.
/// Rows given to `append(name, arr)` are pending until `commit()`; a commit
/// is one record for every member, synced (it survives a power loss), and
/// after a crash every member holds the rows of the same commit. Members
/// may grow by different amounts per commit. Each member is a plain `.npy`
/// that numpy loads on its own; the group journal stays after `close()`
/// (it names the members and keeps the last cursor).
///
/// As a context manager, leaving the block normally closes; leaving it by
/// an exception only releases the files without committing (as a crash
/// would: the next open keeps exactly the last commit).
#[pyclass(module = "npy_append._native", name = "AppendGroup")]
pub(crate) struct PyAppendGroup {
    handle: Handle<RsGroup>,
    members: Vec<Member>,
}

impl PyAppendGroup {
    /// The index of the member named `name`.
    fn index(&self, name: &str) -> PyResult<usize> {
        self.members
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| {
                invalid_argument(format!(
                    "{}: no member {name:?}; the members are {}",
                    self.handle.path().display(),
                    self.member_names().join(", ")
                ))
            })
    }

    fn member_names(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.name.as_str()).collect()
    }

    /// `{name: count}` for the members in order.
    fn by_name<'py>(&self, py: Python<'py>, counts: &[u64]) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (m, n) in self.members.iter().zip(counts) {
            d.set_item(&m.name, n)?;
        }
        Ok(d)
    }

    /// Checks `arr` for member `name`; returns the member's index and the
    /// array's bytes.
    fn check<'py>(
        &mut self,
        py: Python<'py>,
        name: &str,
        arr: &Bound<'py, PyAny>,
    ) -> PyResult<(usize, Rows<'py>)> {
        self.handle.live_ref()?;
        let i = self.index(name)?;
        let m = self
            .members
            .get_mut(i)
            .ok_or_else(|| invalid_argument(format!("member {i}")))?;
        let rows = m.accepts.check(py, arr, &m.path)?;
        Ok((i, rows))
    }
}

#[pymethods]
impl PyAppendGroup {
    /// Opens the group whose journal is `path`: creates it with `members`,
    /// or opens an existing group and recovers it to its last commit (every
    /// member cut back to the same commit).
    ///
    /// members: a dict `{file_name: (dtype, row_shape)}` (or
    ///   `{file_name: dtype}` for 1-D members), or a sequence of
    ///   `(file_name, dtype, row_shape)` tuples. Needed to create a group;
    ///   for an existing group, optional, and when given it must list
    ///   exactly the group's members, in order, with their dtypes and row
    ///   shapes (else DtypeMismatchError or ShapeMismatchError). Member
    ///   files live in the journal's directory and must not exist yet when
    ///   the group is created.
    /// lock_timeout: seconds to wait for another writer's lock (default:
    ///   fail at once with LockedError).
    /// buffer_bytes: per-member buffer for small appends (default 256 KiB).
    /// move_aside_foreign_journal: a file at `path` that is not a group
    ///   journal npy_append wrote, with no member file beside it, is renamed
    ///   to `<path>.foreign` and a new group created (default: raise
    ///   ForeignJournalError, nothing changed).
    /// durability: "fsync" (default; a commit survives power loss) or
    ///   "process" (commits are not synced: they survive the death of the
    ///   process, and a power loss can take every member back to an earlier
    ///   commit together, reported by `dropped_rows`).
    /// accept_loss: recover even when a member's header claims rows it
    ///   holds past the newest intact commit (a power loss under process
    ///   durability, or another program's write; default: raise
    ///   JournalDisagreesError, nothing changed).
    #[staticmethod]
    #[pyo3(signature = (path, members=None, lock_timeout=None, buffer_bytes=None, move_aside_foreign_journal=false, durability="fsync", accept_loss=false))]
    #[allow(clippy::too_many_arguments, reason = "the Python signature")]
    fn open_or_recover(
        py: Python<'_>,
        path: PathBuf,
        members: Option<Bound<'_, PyAny>>,
        lock_timeout: Option<f64>,
        buffer_bytes: Option<usize>,
        move_aside_foreign_journal: bool,
        durability: &str,
        accept_loss: bool,
    ) -> PyResult<Self> {
        let mut options = GroupOptions::new()
            .lock_wait(lock_wait(lock_timeout)?)
            .move_aside_foreign_journal(move_aside_foreign_journal)
            .durability(parse_durability(durability)?)
            .accept_loss(accept_loss);
        if let Some(members) = &members {
            for spec in parse_members(py, members)? {
                options = options.member(spec);
            }
        }
        if let Some(bytes) = buffer_bytes {
            options = options.buffer_bytes(bytes);
        }
        let group = py.detach(|| options.open(&path)).or_raise(py)?;
        let members = (0..group.member_count())
            .map(|i| {
                let missing = || corrupt(format!("{}: member {i} vanished", path.display()));
                Ok(Member {
                    name: group.member_name(i).ok_or_else(missing)?.to_owned(),
                    path: group.member_path(i).ok_or_else(missing)?.to_path_buf(),
                    accepts: Accepts::new(
                        group.member_dtype(i).ok_or_else(missing)?.clone(),
                        group.member_row_shape(i).ok_or_else(missing)?.to_vec(),
                    ),
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        // The group journal's own path (a symbolic link resolved).
        let path = group.path().to_path_buf();
        Ok(Self {
            handle: Handle::new(group, path),
            members,
        })
    }

    /// Appends the rows of a numpy array to member `name` (axis 0 is rows;
    /// the other axes must be the member's row shape). The dtype must equal
    /// the member's exactly: nothing is cast. A C-contiguous array is read
    /// in place, without a copy. The rows are pending until the next
    /// commit. A mismatch raises and appends nothing.
    fn append(&mut self, py: Python<'_>, name: &str, arr: &Bound<'_, PyAny>) -> PyResult<()> {
        let (i, rows) = self.check(py, name, arr)?;
        if rows.count == 0 {
            return Ok(());
        }
        let bytes = rows.bytes();
        let group = self.handle.live()?;
        py.detach(|| group.append_bytes(i, bytes)).or_raise(py)
    }

    /// Exactly-once append keyed by row index: `arr` holds rows
    /// `start_row...` of member `name`. Rows the member already holds
    /// (committed or pending) are skipped; returns how many rows were
    /// appended. A `start_row` past the rows the member holds raises
    /// GapError and appends nothing.
    fn append_at(
        &mut self,
        py: Python<'_>,
        name: &str,
        start_row: u64,
        arr: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let (i, rows) = self.check(py, name, arr)?;
        let bytes = rows.bytes();
        let group = self.handle.live()?;
        py.detach(|| group.append_bytes_at(i, start_row, bytes))
            .or_raise(py)
    }

    /// Commits every member's pending rows as one group commit, synced,
    /// with `cursor` (a bytes-like value of at most 8128 bytes, found again
    /// after a crash)
    /// when given; without one the commit keeps the last cursor. Returns
    /// `{name: committed rows}`. With nothing pending and no new cursor,
    /// does nothing.
    #[pyo3(signature = (cursor=None))]
    fn commit<'py>(
        &mut self,
        py: Python<'py>,
        cursor: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cursor = cursor_bytes(cursor.as_ref())?;
        let rows = self.handle.commit(py, cursor.as_deref())?;
        self.by_name(py, &rows)
    }

    /// Commits, then makes every member's header durable: each member is a
    /// plain `.npy`. The group journal stays. Returns `{name: committed
    /// rows}`; closing again does nothing and returns None.
    fn close<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match self.handle.close(py)? {
            Some(rows) => self.by_name(py, &rows).map(Some),
            None => Ok(None),
        }
    }

    /// Releases the files without committing, as a crash would: pending
    /// rows are lost, committed rows stay (the next open cuts the rest).
    fn abandon(&mut self) {
        self.handle.abandon();
    }

    /// The member file names, in the group's order.
    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.member_names())
    }

    /// `{name: (numpy dtype, row_shape)}`: what each member accepts (the
    /// form `open_or_recover` takes as `members`).
    #[getter]
    fn members<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for m in &self.members {
            let shape = PyTuple::new(py, &m.accepts.row_shape)?;
            d.set_item(&m.name, (numpy_dtype(py, &m.accepts.dtype)?, shape))?;
        }
        Ok(d)
    }

    /// `{name: committed rows}`.
    #[getter]
    fn rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let rows = self.handle.live_ref()?.member_rows();
        self.by_name(py, &rows)
    }

    /// `{name: rows appended since the last commit}`.
    #[getter]
    fn pending_rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let group = self.handle.live_ref()?;
        let pending: Vec<u64> = (0..self.members.len())
            .map(|i| group.pending_rows(i))
            .collect();
        self.by_name(py, &pending)
    }

    /// The cursor of the last commit (bytes; empty when none was given).
    #[getter]
    fn cursor<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.handle.cursor()?))
    }

    /// Bytes the open cut from the members (rows of a commit that never
    /// completed).
    #[getter]
    fn bytes_cut(&self) -> PyResult<u64> {
        Ok(self.handle.live_ref()?.bytes_cut())
    }

    /// Rows of each member (`[(name, rows)]`) that the open dropped from the
    /// newest commit, because a power loss under process durability did not
    /// keep them (zeros otherwise).
    #[getter]
    fn dropped_rows(&self) -> PyResult<Vec<(String, u64)>> {
        let g = self.handle.live_ref()?;
        Ok(self
            .members
            .iter()
            .map(|m| m.name.clone())
            .zip(g.dropped_rows().iter().copied())
            .collect())
    }

    /// The path of member `name`'s `.npy` file.
    fn member_path(&self, name: &str) -> PyResult<PathBuf> {
        let i = self.index(name)?;
        Ok(self
            .members
            .get(i)
            .map(|m| m.path.clone())
            .unwrap_or_default())
    }

    /// The group journal's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.handle.path().to_path_buf()
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
    /// releases the files without committing (the pending rows are lost).
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
        self.handle.repr("AppendGroup", |g| {
            let rows: Vec<String> = self
                .members
                .iter()
                .zip(g.member_rows())
                .map(|(m, n)| format!("{}: {n}", m.name))
                .collect();
            format!("committed rows {{{}}}", rows.join(", "))
        })
    }
}

/// A consistent snapshot of every member of a group (the rows of one group
/// commit); see `npy_append.GroupReader`.
#[pyclass(module = "npy_append._native", name = "_GroupReader")]
pub(crate) struct PyGroupReader {
    path: PathBuf,
    reader: Arc<RsGroupReader>,
}

impl PyGroupReader {
    fn index(&self, name: &str) -> PyResult<usize> {
        self.reader
            .member_index(name)
            .ok_or_else(|| invalid_argument(format!("{}: no member {name:?}", self.path.display())))
    }
}

#[pymethods]
impl PyGroupReader {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let reader = py.detach(|| RsGroupReader::open(&path)).or_raise(py)?;
        Ok(Self {
            path,
            reader: Arc::new(reader),
        })
    }

    /// Reads the newest commit again; returns whether it changed. Views of
    /// the older snapshot stay valid.
    fn refresh(&mut self, py: Python<'_>) -> PyResult<bool> {
        let path = self.path.clone();
        let fresh = py.detach(|| RsGroupReader::open(&path)).or_raise(py)?;
        let changed = fresh.sequence() != self.reader.sequence();
        self.reader = Arc::new(fresh);
        Ok(changed)
    }

    /// Waits until member `name` has at least `rows` committed rows (see
    /// `npy_append.GroupReader.wait_for_rows`); the snapshot then shows the
    /// newest commit.
    fn wait_for_rows(
        &mut self,
        py: Python<'_>,
        name: &str,
        rows: u64,
        timeout: f64,
    ) -> PyResult<bool> {
        let timeout = seconds("timeout", timeout)?;
        let i = self.index(name)?;
        if self.reader.rows(i) >= rows {
            return Ok(true);
        }
        let path = self.path.clone();
        let (fresh, waited) = py
            .detach(|| -> npy_append::Result<_> {
                let mut fresh = RsGroupReader::open(&path)?;
                let waited = fresh.wait_for_rows(i, rows, timeout);
                Ok((fresh, waited))
            })
            .or_raise(py)?;
        self.reader = Arc::new(fresh);
        waited.or_raise(py)
    }

    /// "active", "finished" or "died" (see
    /// `npy_append.GroupReader.writer_state`).
    fn writer_state(&self, py: Python<'_>) -> PyResult<&'static str> {
        let reader = &self.reader;
        py.detach(|| reader.writer_state())
            .map(WriterState::as_str)
            .or_raise(py)
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    #[getter]
    fn sequence(&self) -> u64 {
        self.reader.sequence()
    }

    #[getter]
    fn cursor<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.reader.cursor())
    }

    /// The member names, in order.
    #[getter]
    fn names(&self) -> Vec<String> {
        (0..self.reader.member_count())
            .filter_map(|i| self.reader.member_name(i).map(str::to_owned))
            .collect()
    }

    fn rows(&self, name: &str) -> PyResult<u64> {
        Ok(self.reader.rows(self.index(name)?))
    }

    fn descr(&self, name: &str) -> PyResult<String> {
        let i = self.index(name)?;
        Ok(self
            .reader
            .dtype(i)
            .map(Dtype::descr_repr)
            .unwrap_or_default())
    }

    fn row_shape(&self, name: &str) -> PyResult<Vec<u64>> {
        let i = self.index(name)?;
        Ok(self.reader.row_shape(i).unwrap_or_default().to_vec())
    }

    fn member_path(&self, name: &str) -> PyResult<PathBuf> {
        let i = self.index(name)?;
        Ok(self
            .reader
            .member_path(i)
            .map(Path::to_path_buf)
            .unwrap_or_default())
    }

    /// The committed bytes of member `name`, as an object exporting the
    /// buffer protocol.
    fn mapping(&self, name: &str) -> PyResult<GroupMapping> {
        Ok(GroupMapping::new(
            Snapshot::Group(Arc::clone(&self.reader)),
            self.index(name)?,
        ))
    }
}
