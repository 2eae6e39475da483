"""A crash-safe drop-in for npy-append-array (0.9.x signatures)."""

from __future__ import annotations

import errno
import importlib
import os
import threading
from typing import IO, Any, Callable, Literal, Optional, Tuple, Type, Union

import numpy as np
import numpy.typing as npt

from . import _native
from ._errors import ClosedError, NpyAppendFileNotFoundError, UnsupportedError

try:
    from numpy.lib import format as _format
except ImportError:  # pragma: no cover
    import numpy.lib.format as _format

def _numpy_header_reader() -> Callable[..., Tuple[Tuple[int, ...], bool, np.dtype[Any]]]:
    """numpy's reader of a header of any version (its public readers stop
    at 2.0): private, in ``numpy.lib._format_impl`` from numpy 2 on."""
    try:
        module = importlib.import_module("numpy.lib._format_impl")
    except ImportError:  # pragma: no cover - numpy 1.x
        module = importlib.import_module("numpy.lib.format")
    reader: Callable[..., Tuple[Tuple[int, ...], bool, np.dtype[Any]]] = module._read_array_header
    return reader


_read_array_header = _numpy_header_reader()


StrPath = Union[str, "os.PathLike[str]"]


def _journal(path: str) -> str:
    return path + ".journal"


class NpyAppendArray:
    """Appends arrays to a ``.npy`` file along axis 0 (along the last axis
    for a Fortran-order file); crash-safe.

    ``NpyAppendArray(filename, delete_if_exists=False,
    rewrite_header_on_append=True, *, fsync=False)``

    Same use as npy-append-array's ``NpyAppendArray``. Each :meth:`append`
    is a commit: when it returns, the rows survive a kill of the process
    (``kill -9``, the OOM killer); with ``fsync=True`` they also survive a
    power loss. :meth:`close` makes the file final and durable. A process
    killed at any moment leaves a file the next ``NpyAppendArray(filename)``
    (or :func:`recover`) brings back to its last completed ``append()``.

    Differences from npy-append-array: the dtype of appended arrays must
    equal the file's (``DtypeMismatchError``, a ``TypeError``, instead of a
    silent cast); ``append()`` after ``close()`` raises ``ClosedError``
    (instead of truncating the file); a second writer on the same file
    raises ``LockedError``; the header is kept current at every append
    whatever ``rewrite_header_on_append`` says; a file whose header has no
    room to grow is rewritten (atomically) when opened, instead of raising.

    A Fortran-order file (``fortran_order`` True, as ``np.save`` writes an
    array that is Fortran-contiguous and not C-contiguous) grows along its
    last axis, as with npy-append-array: appended arrays have the file's
    leading axes and any last axis. A new file takes the order of its first
    array.
    """

    filename: StrPath
    """The file's path, as given."""
    rewrite_header_on_append: bool
    """Accepted for compatibility: the header is current after every append."""
    fortran_order: bool
    """Whether the file is in Fortran order (it grows along its last axis)."""
    dtype: Optional[np.dtype[Any]]
    """The file's dtype; None before a new file's first append."""

    def __init__(
        self,
        filename: StrPath,
        delete_if_exists: bool = False,
        rewrite_header_on_append: bool = True,
        *,
        fsync: bool = False,
    ) -> None:
        self.filename = filename
        self.rewrite_header_on_append = rewrite_header_on_append
        self.fortran_order = False
        self.dtype = None
        self._closed_rows = 0
        self._row_shape: Tuple[int, ...] = ()
        self._lock = threading.Lock()
        self._durability: Literal["fsync", "process"] = "fsync" if fsync else "process"
        path = os.fspath(filename)
        if delete_if_exists:
            for p in (path, _journal(path)):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
        self._appender = _native.Appender.open_or_recover(path, durability=self._durability)
        self._sync_attrs()

    def _sync_attrs(self) -> None:
        a = self._appender
        if a.dtype is None or not (len(a) > 0 or os.path.exists(os.fspath(self.filename))):
            return
        self.dtype = a.dtype
        self._row_shape = tuple(a.row_shape)
        self.fortran_order = a.fortran_order

    def append(self, arr: npt.NDArray[Any]) -> None:
        """Appends ``arr`` and commits it: a numpy array of the file's dtype
        exactly, whose axis 0 is rows and whose other axes are the file's row
        shape (for a Fortran-order file: whose last axis is rows and whose
        leading axes are the file's)."""
        # acquire/release rather than `with`: this is the one-row hot path.
        lock = self._lock
        lock.acquire()
        try:
            if self.dtype is None and _saved_in_fortran_order(arr) and self._unborn():
                # A new file takes the order np.save (and npy-append-array)
                # writes its first array in; nothing exists yet to release.
                self._appender.abandon()
                self._appender = _native.Appender.open_or_recover(
                    os.fspath(self.filename), durability=self._durability, fortran_order=True
                )
            self._appender.append_commit(arr)
            if self.dtype is None:
                self._sync_attrs()
        except ClosedError:
            raise ClosedError(
                f"{os.fspath(self.filename)}: append() after close(); open a new NpyAppendArray"
            ) from None
        finally:
            lock.release()

    def _unborn(self) -> bool:
        """Whether the file is new and not created yet (no dtype)."""
        a = self._appender
        return not a.closed and a.dtype is None

    @property
    def shape(self) -> Optional[Tuple[int, ...]]:
        """The array's shape (rows first; last in a Fortran-order file); None
        before a new file's first append."""
        if self.dtype is None:
            return None
        a = self._appender
        rows = self._closed_rows if a.closed else len(a)
        if self.fortran_order:
            return self._row_shape + (rows,)
        return (rows,) + self._row_shape

    def update_header(self) -> None:
        """Commits (the header is always current: nothing else to do)."""
        with self._lock:
            if not self._appender.closed:
                self._appender.commit()

    def close(self) -> None:
        """Makes the file a final, durable plain ``.npy``. Idempotent."""
        with self._lock:
            if not self._appender.closed:
                self._closed_rows = self._appender.close() or 0

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to report to in a finalizer (nor after a failed __init__)
            pass

    def __enter__(self) -> NpyAppendArray:
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc_val: Optional[BaseException], exc_tb: Any) -> None:
        # Every append is committed already, so closing also after an
        # exception keeps exactly the appended arrays, as npy-append-array does.
        self.close()


def _saved_in_fortran_order(arr: object) -> bool:
    """Whether ``np.save`` writes ``arr`` in Fortran order: a numpy array that
    is Fortran-contiguous and not C-contiguous (so of at least two axes)."""
    return isinstance(arr, np.ndarray) and bool(arr.flags.f_contiguous) and not arr.flags.c_contiguous


def _read_header(fp: IO[bytes]) -> Tuple[Tuple[int, ...], bool, np.dtype[Any], int]:
    version = _format.read_magic(fp)
    # Versions 1.0 and 2.0 are latin-1, 3.0 is UTF-8: numpy's private reader
    # takes the version (its public readers stop at 2.0).
    shape, fortran_order, dtype = _read_array_header(fp, version, max_header_size=2**31)
    return shape, fortran_order, dtype, fp.tell()


def recover(filename: StrPath, zerofill_incomplete: bool = False) -> bool:
    """Brings a file left by a killed writer back to an appendable state;
    returns True.

    With a journal (left by npy_append), the file goes back to its last
    commit; when the file lacks rows the journal committed, it raises
    ``CorruptError`` and changes nothing. Without one (a crashed
    npy-append-array or other writer, a copy cut short), it does what
    npy-append-array's ``recover`` does: the whole rows the file holds are
    kept and the header's row count rewritten to them (rows past the
    header's are adopted, rows the header counts but the file lacks are
    dropped), and a partial last row is cut, or, with
    ``zerofill_incomplete=True``, completed with zero bytes. A "row" of a
    Fortran-order file is a slice along its last axis. A header without
    room to grow is rewritten as by :func:`ensure_appendable`.
    """
    path = os.fspath(filename)
    _require_file(path)
    if os.path.exists(_journal(path)):
        _native.Appender.open_or_recover(path).close()
        return True
    if zerofill_incomplete:
        _native.Appender.open_or_recover(
            path, tail_policy="adopt-zero-fill", short_file_policy="zero-fill"
        ).close()
    else:
        _native.Appender.open_or_recover(path, tail_policy="adopt", short_file_policy="keep").close()
    return True


def _require_file(path: str) -> None:
    """Raises ``FileNotFoundError`` (an :class:`NpyAppendFileNotFoundError`,
    as npy-append-array's ``open`` raises it) when neither the file nor a
    journal exists: there is nothing to recover or check."""
    if not os.path.exists(path) and not os.path.exists(_journal(path)):
        e = NpyAppendFileNotFoundError(
            f"{path}: no such file or directory (and no journal beside it)"
        )
        e.errno = errno.ENOENT
        raise e


def _file_state(path: str) -> Tuple[str, Optional[str], bool]:
    """The native file state; ``FileNotFoundError`` when neither the file
    nor a journal exists."""
    _require_file(path)
    return _native.file_state(path)


def is_appendable(filename: StrPath) -> bool:
    """Whether the header numpy (1.24 and later) writes for the file's dtype,
    order and shape, growth padding included, fits in the file's present
    header: npy-append-array's question and its answer, for the same files
    (``False``: :func:`ensure_appendable` rewrites the header).

    Only the header is read; the data and a journal beside the file do not
    change the answer. Whether npy_append itself can append to the file is
    another question: it appends in place to any header with room for a
    20-digit row count, and opening rewrites one without (see
    :func:`ensure_appendable`).
    """
    path = os.fspath(filename)
    try:
        fp = open(path, "rb")
    except FileNotFoundError:
        _require_file(path)  # a journal beside a missing file: numpy's error
        raise
    with fp:
        shape, fortran_order, dtype, header_len = _read_header(fp)
    descr = repr(_format.dtype_to_descr(dtype))
    return _native.numpy_header_len(descr, fortran_order, list(shape)) <= header_len


def ensure_appendable(filename: StrPath, inplace: bool = False) -> bool:
    """Makes a file whose header has no room to grow the row count
    appendable; returns True. A file :func:`is_appendable` accepts is left
    as it is, and so is one whose header has room for any row count (20
    digits) but is shorter than numpy's own: npy_append appends to it in
    place (``is_appendable`` keeps answering npy-append-array's ``False``
    for it).

    The rewrite is the library's: a copy with numpy's header (which has
    room) and the same data bytes is written next to the file as
    ``<file>.rewrite``, synced, and renamed over the file, so a crash leaves
    the old file or the new one, never a mix. ``inplace`` is accepted for
    compatibility and does not change that.

    Raises ``UnsupportedError`` for a file npy_append cannot append to
    (0-d, rows of zero bytes, a header without room next to a journal), and
    the error opening the file raises otherwise: ``TrailingBytesError`` for
    bytes past the header's data (a crashed writer of another tool: call
    :func:`recover`, which also rewrites the header), ``LockedError`` when
    a writer holds the file. The file is then unchanged.
    """
    del inplace
    path = os.fspath(filename)
    if is_appendable(path):
        return True
    state, problem, room = _file_state(path)
    if state == "unsupported":
        raise UnsupportedError(f"{path}: cannot be made appendable: {problem}")
    if room:
        return True
    _native.Appender.open_or_recover(path).close()
    state, problem, room = _native.file_state(path)
    if state == "unsupported" or not room:
        raise UnsupportedError(f"{path}: still not appendable after the rewrite: {problem}")
    return True
