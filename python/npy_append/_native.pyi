"""Type stubs of the native module (the Rust appender and reader)."""

import os
import pathlib
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "os.PathLike[str]"]

class Appender:
    @staticmethod
    def open_or_recover(
        path: _Path,
        dtype: Optional[npt.DTypeLike] = None,
        row_shape: Optional[Sequence[int]] = None,
        durability: Literal["fsync", "process"] = "fsync",
        commit_every: Optional[int] = None,
        tail_policy: Literal["refuse", "cut", "adopt"] = "refuse",
        lock_timeout: Optional[float] = None,
        fortran_order: Optional[bool] = None,
    ) -> "Appender": ...
    def append(self, arr: np.ndarray) -> None: ...
    def append_commit(self, arr: np.ndarray) -> int:
        """append(arr) then commit(), the GIL released once; returns the committed rows."""
        ...
    def append_at(self, start_row: int, arr: np.ndarray) -> int: ...
    def commit(self, cursor: Optional[bytes] = None) -> int: ...
    def close(self) -> Optional[int]: ...
    def abandon(self) -> None: ...
    def __len__(self) -> int: ...
    @property
    def pending_rows(self) -> int: ...
    @property
    def cursor(self) -> bytes: ...
    @property
    def dtype(self) -> Optional[np.dtype]: ...
    @property
    def row_shape(self) -> Tuple[int, ...]: ...
    @property
    def fortran_order(self) -> bool: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def closed(self) -> bool: ...
    @property
    def report(self) -> dict[str, Any]: ...
    def __enter__(self) -> "Appender": ...
    def __exit__(self, exc_type: Any = None, _exc: Any = None, _tb: Any = None) -> bool: ...

class _Mapping: ...

class _Reader:
    def __init__(self, path: _Path) -> None: ...
    def refresh(self) -> bool: ...
    def wait_for_rows(self, rows: int, timeout: float) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def descr(self) -> str: ...
    @property
    def row_shape(self) -> Tuple[int, ...]: ...
    @property
    def fortran_order(self) -> bool: ...
    @property
    def path(self) -> pathlib.Path: ...
    def mapping(self) -> _Mapping: ...

_DTypeSpec = Union[npt.DTypeLike, Tuple[npt.DTypeLike, Union[int, Sequence[int]]]]

class AppendGroup:
    """Several ``.npy`` files committed together, crash-safely.

    ``path`` is the group journal (e.g. ``"data/train.group"``); the members
    are ``.npy`` files in its directory, addressed by their file names.
    Rows given to ``append(name, arr)`` are pending until ``commit()``; a
    commit is one synced record for every member, and after a crash every
    member holds the rows of the same commit. Members may grow by different
    amounts per commit. Each member is a plain ``.npy`` that numpy loads on
    its own; the journal stays after ``close()`` (it names the members and
    keeps the last cursor). As a context manager, a normal exit closes and
    an exception only releases the files (the pending rows are lost).
    """

    @staticmethod
    def open_or_recover(
        path: _Path,
        members: Optional[
            Union[Mapping[str, _DTypeSpec], Sequence[Tuple[Any, ...]]]
        ] = None,
        lock_timeout: Optional[float] = None,
        buffer_bytes: Optional[int] = None,
    ) -> "AppendGroup":
        """Creates the group with ``members`` (``{file_name: (dtype,
        row_shape)}`` or ``{file_name: dtype}``, or ``(file_name, dtype,
        row_shape)`` tuples), or opens an existing one and recovers every
        member to its last commit. For an existing group ``members`` is
        optional and, when given, must list exactly its members in order."""
    def append(self, name: str, arr: np.ndarray) -> None:
        """Appends rows to member ``name``: exactly its dtype (never cast)
        and row shape; pending until the next commit."""
    def append_at(self, name: str, start_row: int, arr: np.ndarray) -> int:
        """Exactly-once append: ``arr`` holds rows ``start_row...`` of member
        ``name``; rows it already holds are skipped; returns rows appended.
        GapError past the rows it holds."""
    def commit(self, cursor: Optional[bytes] = None) -> Dict[str, int]:
        """One synced group commit of every member's pending rows (with
        ``cursor`` when given, else the last cursor); returns ``{name:
        committed rows}``."""
    def close(self) -> Optional[Dict[str, int]]:
        """Commits and makes every member's header durable; None when
        already closed."""
    def abandon(self) -> None:
        """Releases the files without committing, as a crash would."""
    def member_path(self, name: str) -> pathlib.Path:
        """The path of member ``name``."""
    @property
    def names(self) -> Tuple[str, ...]:
        """The member file names, in order."""
    @property
    def members(self) -> Dict[str, Tuple[np.dtype, Tuple[int, ...]]]:
        """``{name: (dtype, row_shape)}``."""
    @property
    def rows(self) -> Dict[str, int]:
        """``{name: committed rows}``."""
    @property
    def pending_rows(self) -> Dict[str, int]:
        """``{name: rows appended since the last commit}``."""
    @property
    def cursor(self) -> bytes:
        """The cursor of the last commit (empty when none was given)."""
    @property
    def bytes_cut(self) -> int:
        """Bytes the open cut from the members (an unfinished commit)."""
    @property
    def path(self) -> pathlib.Path:
        """The group journal's path."""
    @property
    def closed(self) -> bool:
        """Whether close() or abandon() was called."""
    def __enter__(self) -> "AppendGroup": ...
    def __exit__(self, exc_type: Any = None, _exc: Any = None, _tb: Any = None) -> bool: ...

class RaggedAppender:
    """Sequences of different lengths appended crash-safely to a
    values/offsets pair (``values.npy``, ``offsets.npy`` = 0 then one end
    offset per sequence, int64), both members of one append group: a commit
    holds a sequence in both files or in neither."""

    @staticmethod
    def open_or_recover(
        path: _Path,
        dtype: Optional[npt.DTypeLike] = None,
        row_shape: Optional[Union[int, Sequence[int]]] = None,
        names: Tuple[str, str] = ("values.npy", "offsets.npy"),
        lock_timeout: Optional[float] = None,
    ) -> "RaggedAppender":
        """Creates the array (``dtype``: any dtype a ``.npy`` file holds
        without pickling, any byte order, structured and strings included;
        ``row_shape``: () for 1-D values) or opens and recovers it
        (``dtype`` and ``row_shape`` then optional, read from it)."""
    def append(self, seq: np.ndarray) -> None:
        """Appends one sequence: an array of shape (n,) + row_shape, of
        exactly the values' dtype (never cast), read without a copy when
        C-contiguous."""
    def extend(self, seqs: Iterable[np.ndarray]) -> None:
        """Appends several sequences; all are checked before any is appended."""
    def append_batch(self, values: np.ndarray, lengths: Sequence[int]) -> None:
        """Appends sequences given as all their rows and the rows of each
        (``lengths`` add up to ``len(values)``, else ShapeMismatchError)."""
    def commit(self, cursor: Optional[bytes] = None) -> int:
        """Commits values and offsets together (synced); returns the
        committed sequence count."""
    def close(self) -> Optional[int]:
        """Commits and closes; None when already closed."""
    def abandon(self) -> None:
        """Releases the files without committing, as a crash would."""
    def __len__(self) -> int:
        """Committed sequences."""
    @property
    def pending_sequences(self) -> int: ...
    @property
    def values_rows(self) -> int:
        """Committed rows of the values."""
    @property
    def cursor(self) -> bytes: ...
    @property
    def dtype(self) -> np.dtype: ...
    @property
    def row_shape(self) -> Tuple[int, ...]: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def values_path(self) -> pathlib.Path: ...
    @property
    def offsets_path(self) -> pathlib.Path: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> "RaggedAppender": ...
    def __exit__(self, exc_type: Any = None, _exc: Any = None, _tb: Any = None) -> bool: ...

class _GroupMapping: ...

class _GroupReader:
    def __init__(self, path: _Path) -> None: ...
    def refresh(self) -> bool: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def sequence(self) -> int: ...
    @property
    def cursor(self) -> bytes: ...
    @property
    def names(self) -> List[str]: ...
    def rows(self, name: str) -> int: ...
    def descr(self, name: str) -> str: ...
    def row_shape(self, name: str) -> List[int]: ...
    def member_path(self, name: str) -> pathlib.Path: ...
    def mapping(self, name: str) -> _GroupMapping: ...

class _RaggedReader:
    def __init__(self, path: _Path, values: str, offsets: str) -> None: ...
    def refresh(self) -> bool: ...
    def __len__(self) -> int: ...
    def range(self, i: int) -> Tuple[int, int]: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def sequence(self) -> int: ...
    @property
    def cursor(self) -> bytes: ...
    @property
    def descr(self) -> str: ...
    @property
    def row_shape(self) -> List[int]: ...
    @property
    def values_rows(self) -> int: ...
    @property
    def offsets_rows(self) -> int: ...
    @property
    def values_path(self) -> pathlib.Path: ...
    @property
    def offsets_path(self) -> pathlib.Path: ...
    def values_mapping(self) -> _GroupMapping: ...
    def offsets_mapping(self) -> _GroupMapping: ...

def file_state(path: _Path) -> Tuple[str, Optional[str], bool]: ...
