"""Type stubs of the native module (the Rust writers and readers)."""

import os
import pathlib
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
from _typeshed import ReadableBuffer

_Path = Union[str, "os.PathLike[str]"]
_Shape = Union[int, Sequence[int]]

class Appender:
    """Crash-safe appender to one ``.npy`` file.

    Rows given to ``append()`` are pending until ``commit()`` (or
    ``commit_every`` rows); a commit survives a kill of the process
    (durability="process") or also a power loss (durability="fsync", the
    default). ``close()`` commits and leaves a plain ``.npy``. As a context
    manager, a normal exit closes and an exception only releases the file
    (the pending rows are lost, as in a crash).
    """

    @staticmethod
    def open_or_recover(
        path: _Path,
        dtype: Optional[npt.DTypeLike] = None,
        row_shape: Optional[_Shape] = None,
        durability: Literal["fsync", "process"] = "fsync",
        commit_every: Optional[int] = None,
        tail_policy: Literal["refuse", "cut", "adopt", "adopt-zero-fill"] = "refuse",
        lock_timeout: Optional[float] = None,
        fortran_order: Optional[bool] = None,
        short_file_policy: Literal["refuse", "keep", "zero-fill"] = "refuse",
        accept_loss: bool = False,
        move_aside_foreign_journal: bool = False,
    ) -> "Appender":
        """Creates ``path`` (at once with ``dtype``, else on the first
        append), takes over a clean ``.npy``, or recovers a crashed writer's
        file to its last commit. A new file is in C order unless
        ``fortran_order=True``; ``row_shape`` is a tuple of sizes or one
        size; ``tail_policy`` decides for bytes past the header's rows of a
        file without journal, ``short_file_policy`` for such a file shorter
        than its header says; ``lock_timeout`` waits for another writer.
        ``accept_loss=True`` recovers to the journal's last commit even when
        another program rewrote or replaced the file (else
        JournalDisagreesError, nothing changed);
        ``move_aside_foreign_journal=True`` renames a ``<path>.journal``
        npy_append did not write to ``<path>.journal.foreign`` (else
        ForeignJournalError, nothing changed)."""
    def append(self, arr: npt.NDArray[Any]) -> None:
        """Appends the array's rows (axis 0; the last axis in a Fortran-order
        file) as numpy indexes them: exactly the file's dtype (never cast)
        and row shape. Pending until the next commit."""
    def append_commit(self, arr: npt.NDArray[Any]) -> int:
        """``append(arr)`` then ``commit()``, the GIL released once; returns
        the committed rows."""
    def append_at(self, start_row: int, arr: npt.NDArray[Any]) -> int:
        """Exactly-once append: ``arr`` holds rows ``start_row...``; rows the
        file holds are skipped; returns rows appended. GapError past the
        rows the file holds."""
    def commit(self, cursor: Optional[ReadableBuffer] = None) -> int:
        """Commits the pending rows, with ``cursor`` (a bytes-like value of
        at most 8128 bytes) when given; returns the committed rows.
        FileReplacedError (the writer stops) when another program removed
        or replaced the file or its journal meanwhile."""
    def close(self) -> Optional[int]:
        """Commits, makes the header final and removes the journal; returns
        the committed rows, or None when already closed. FileReplacedError
        as for ``commit``."""
    def abandon(self) -> None:
        """Releases the file without committing, as a crash would."""
    def __len__(self) -> int:
        """Committed rows."""
    @property
    def pending_rows(self) -> int:
        """Rows appended since the last commit."""
    @property
    def cursor(self) -> bytes:
        """The cursor of the last commit (empty when none was given)."""
    @property
    def dtype(self) -> Optional[np.dtype[Any]]:
        """The file's dtype; None before a new file's first append."""
    @property
    def row_shape(self) -> Tuple[int, ...]:
        """The shape of one row."""
    @property
    def fortran_order(self) -> bool:
        """Whether the file is in Fortran order (rows along the last axis)."""
    @property
    def path(self) -> pathlib.Path:
        """The ``.npy`` file's path (a symbolic link in its last component
        resolved: the journal sits beside the file itself)."""
    @property
    def closed(self) -> bool:
        """Whether close() or abandon() was called."""
    @property
    def report(self) -> Dict[str, Any]:
        """What opening found and changed (``found``, ``committed_rows``,
        ``bytes_cut``, ``header_rewritten``, ``dropped_rows``,
        ``adopted_rows``, ``journal_discarded``, ``text``)."""
    def __enter__(self) -> "Appender":
        """The appender itself."""
    def __exit__(self, exc_type: Any = None, _exc: Any = None, _tb: Any = None) -> bool:
        """Closes after a normal exit, abandons after an exception."""

class _Mapping:
    """The committed bytes of a reader, through the buffer protocol."""

    def __buffer__(self, flags: int, /) -> memoryview:
        """A read-only view of the committed bytes."""

class _Reader:
    """The native reader behind ``npy_append.Reader``."""

    def __init__(self, path: _Path) -> None:
        """Maps the committed rows of ``path``."""
    def refresh(self) -> bool:
        """Reads the committed row count again; returns whether it changed."""
    def wait_for_rows(self, rows: int, timeout: float) -> bool:
        """Waits until ``rows`` rows are committed; False after ``timeout``
        seconds or at once when the writer finished; WriterDiedError when
        it died."""
    def writer_state(self) -> str:
        """``"active"``, ``"finished"`` or ``"died"``."""
    def __len__(self) -> int:
        """Committed rows."""
    @property
    def descr(self) -> str:
        """The header's descriptor text."""
    @property
    def row_shape(self) -> Tuple[int, ...]:
        """The shape of one row."""
    @property
    def fortran_order(self) -> bool:
        """Whether rows are slices along the last axis."""
    @property
    def path(self) -> pathlib.Path:
        """The ``.npy`` file's path."""
    def mapping(self) -> _Mapping:
        """The committed bytes."""

_DTypeSpec = Union[npt.DTypeLike, Tuple[npt.DTypeLike, _Shape]]

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
        move_aside_foreign_journal: bool = False,
        durability: Literal["fsync", "process"] = "fsync",
        accept_loss: bool = False,
    ) -> "AppendGroup":
        """Creates the group with ``members`` (``{file_name: (dtype,
        row_shape)}`` or ``{file_name: dtype}``, or ``(file_name, dtype,
        row_shape)`` tuples), or opens an existing one and recovers every
        member to its last commit. For an existing group ``members`` is
        optional and, when given, must list exactly its members in order.
        ``move_aside_foreign_journal=True`` renames a file at ``path`` that
        is not a group journal npy_append wrote (with no member beside it)
        to ``<path>.foreign`` (else ForeignJournalError, nothing
        changed)."""
    def append(self, name: str, arr: npt.NDArray[Any]) -> None:
        """Appends rows to member ``name``: exactly its dtype (never cast)
        and row shape; pending until the next commit."""
    def append_at(self, name: str, start_row: int, arr: npt.NDArray[Any]) -> int:
        """Exactly-once append: ``arr`` holds rows ``start_row...`` of member
        ``name``; rows it already holds are skipped; returns rows appended.
        GapError past the rows it holds."""
    def commit(self, cursor: Optional[ReadableBuffer] = None) -> Dict[str, int]:
        """One synced group commit of every member's pending rows (with
        ``cursor``, a bytes-like value, when given, else the last cursor);
        returns ``{name: committed rows}``."""
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
    def members(self) -> Dict[str, Tuple[np.dtype[Any], Tuple[int, ...]]]:
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
    def dropped_rows(self) -> List[Tuple[str, int]]:
        """``(member, rows)`` the open dropped from the newest commit: a
        power loss under process durability did not keep them."""
    @property
    def path(self) -> pathlib.Path:
        """The group journal's path."""
    @property
    def closed(self) -> bool:
        """Whether close() or abandon() was called."""
    def __enter__(self) -> "AppendGroup":
        """The group itself."""
    def __exit__(self, exc_type: Any = None, _exc: Any = None, _tb: Any = None) -> bool:
        """Closes after a normal exit, abandons after an exception."""

class RaggedAppender:
    """Sequences of different lengths appended crash-safely to a
    values/offsets pair (``values.npy``, ``offsets.npy`` = 0 then one end
    offset per sequence, int64), both members of one append group: a commit
    holds a sequence in both files or in neither."""

    @staticmethod
    def open_or_recover(
        path: _Path,
        dtype: Optional[npt.DTypeLike] = None,
        row_shape: Optional[_Shape] = None,
        names: Tuple[str, str] = ("values.npy", "offsets.npy"),
        lock_timeout: Optional[float] = None,
        move_aside_foreign_journal: bool = False,
    ) -> "RaggedAppender":
        """Creates the array (``dtype``: any dtype a ``.npy`` file holds
        without pickling, any byte order, structured and strings included;
        ``row_shape``: () for 1-D values) or opens and recovers it
        (``dtype`` and ``row_shape`` then optional, read from it).
        ``move_aside_foreign_journal`` as for AppendGroup."""
    def append(self, seq: npt.NDArray[Any]) -> None:
        """Appends one sequence: an array of shape (n,) + row_shape, of
        exactly the values' dtype (never cast), read without a copy when
        C-contiguous."""
    def extend(self, seqs: Iterable[npt.NDArray[Any]]) -> None:
        """Appends several sequences; all are checked before any is appended."""
    def append_batch(self, values: npt.NDArray[Any], lengths: Sequence[int]) -> None:
        """Appends sequences given as all their rows and the rows of each
        (``lengths`` add up to ``len(values)``, else ShapeMismatchError)."""
    def commit(self, cursor: Optional[ReadableBuffer] = None) -> int:
        """Commits values and offsets together (synced), with ``cursor`` (a
        bytes-like value) when given; returns the committed sequence count."""
    def close(self) -> Optional[int]:
        """Commits and closes; None when already closed."""
    def abandon(self) -> None:
        """Releases the files without committing, as a crash would."""
    def __len__(self) -> int:
        """Committed sequences."""
    @property
    def pending_sequences(self) -> int:
        """Sequences appended since the last commit."""
    @property
    def values_rows(self) -> int:
        """Committed rows of the values."""
    @property
    def cursor(self) -> bytes:
        """The cursor of the last commit (empty when none was given)."""
    @property
    def dtype(self) -> np.dtype[Any]:
        """The values' dtype."""
    @property
    def row_shape(self) -> Tuple[int, ...]:
        """The shape of one row of the values."""
    @property
    def path(self) -> pathlib.Path:
        """The group journal's path."""
    @property
    def values_path(self) -> pathlib.Path:
        """The values file's path."""
    @property
    def offsets_path(self) -> pathlib.Path:
        """The offsets file's path."""
    @property
    def closed(self) -> bool:
        """Whether close() or abandon() was called."""
    def __enter__(self) -> "RaggedAppender":
        """The ragged appender itself."""
    def __exit__(self, exc_type: Any = None, _exc: Any = None, _tb: Any = None) -> bool:
        """Closes after a normal exit, abandons after an exception."""

class _GroupMapping:
    """The committed bytes of one member of a snapshot, through the buffer
    protocol."""

    def __buffer__(self, flags: int, /) -> memoryview:
        """A read-only view of the committed bytes."""

class _GroupReader:
    """The native snapshot behind ``npy_append.GroupReader``."""

    def __init__(self, path: _Path) -> None:
        """Opens the newest commit of the group whose journal is ``path``."""
    def refresh(self) -> bool:
        """Opens the newest commit; returns whether it changed."""
    def wait_for_rows(self, name: str, rows: int, timeout: float) -> bool:
        """Waits until member ``name`` has ``rows`` committed rows; False
        after ``timeout`` seconds or at once when the writer finished;
        WriterDiedError when it died."""
    def writer_state(self) -> str:
        """``"active"``, ``"finished"`` or ``"died"``."""
    @property
    def path(self) -> pathlib.Path:
        """The group journal's path."""
    @property
    def sequence(self) -> int:
        """The sequence number of the commit shown."""
    @property
    def cursor(self) -> bytes:
        """That commit's cursor."""
    @property
    def names(self) -> List[str]:
        """The member names, in order."""
    def rows(self, name: str) -> int:
        """Member ``name``'s committed rows."""
    def descr(self, name: str) -> str:
        """Member ``name``'s descriptor text."""
    def row_shape(self, name: str) -> List[int]:
        """The shape of one row of member ``name``."""
    def member_path(self, name: str) -> pathlib.Path:
        """The path of member ``name``."""
    def mapping(self, name: str) -> _GroupMapping:
        """Member ``name``'s committed bytes."""

class _RaggedReader:
    """The native snapshot behind ``npy_append.RaggedReader``."""

    def __init__(self, path: _Path, values: str, offsets: str) -> None:
        """Opens the newest commit of the ragged array whose journal is ``path``."""
    def refresh(self) -> bool:
        """Opens the newest commit; returns whether it changed."""
    def wait_for_rows(self, sequences: int, timeout: float) -> bool:
        """Waits until ``sequences`` sequences are committed; False after
        ``timeout`` seconds or at once when the writer finished;
        WriterDiedError when it died."""
    def writer_state(self) -> str:
        """``"active"``, ``"finished"`` or ``"died"``."""
    def __len__(self) -> int:
        """Committed sequences."""
    def range(self, i: int) -> Tuple[int, int]:
        """The rows ``(start, end)`` of the values holding sequence ``i``."""
    @property
    def path(self) -> pathlib.Path:
        """The group journal's path."""
    @property
    def sequence(self) -> int:
        """The sequence number of the commit shown."""
    @property
    def cursor(self) -> bytes:
        """That commit's cursor."""
    @property
    def descr(self) -> str:
        """The values' descriptor text."""
    @property
    def row_shape(self) -> List[int]:
        """The shape of one row of the values."""
    @property
    def values_rows(self) -> int:
        """Committed rows of the values."""
    @property
    def offsets_rows(self) -> int:
        """Committed rows of the offsets."""
    @property
    def values_path(self) -> pathlib.Path:
        """The values file's path."""
    @property
    def offsets_path(self) -> pathlib.Path:
        """The offsets file's path."""
    def values_mapping(self) -> _GroupMapping:
        """The committed values' bytes."""
    def offsets_mapping(self) -> _GroupMapping:
        """The committed offsets' bytes."""

def file_state(path: _Path) -> Tuple[str, Optional[str], bool]:
    """``(state, problem, room)``: "clean", "needs-recovery", "inconsistent"
    or "unsupported"; the reason when not clean; whether the header has room
    for any row count."""

def numpy_header_len(descr: str, fortran_order: bool, shape: Sequence[int]) -> int:
    """The length of the header numpy (1.24 and later) writes for this
    descriptor text, order and shape, growth padding included."""

_Columns = Union[Mapping[str, _DTypeSpec], Sequence[Tuple[Any, ...]]]

class ShardWriter:
    """The writer of one shard of a dataset: one plain ``.npy`` per column,
    committed together, with a cursor and a complete mark (see
    ``npy_append.dataset.open_shard``). ``append(batch)`` and
    ``append_at(start_row, batch)`` take ``{column: array}`` holding every
    column with the same rows, each of exactly the column's dtype and row
    shape. As a context manager, a normal exit closes (without marking the
    shard complete) and an exception only releases the files."""

    @staticmethod
    def open(
        root: _Path,
        shard: str,
        columns: Optional[_Columns] = None,
        durability: str = "fsync",
        lock_timeout: Optional[float] = None,
        compare_overlap: bool = True,
        buffer_bytes: Optional[int] = None,
        accept_loss: bool = False,
    ) -> "ShardWriter":
        """Opens (creating or resuming) shard ``shard`` of the dataset at
        ``root``; ``columns`` creates or must match the dataset's schema."""
    def append(self, batch: Mapping[str, npt.NDArray[Any]]) -> None:
        """Appends a batch after the rows the shard holds; pending until the
        next commit."""
    def append_at(self, start_row: int, batch: Mapping[str, npt.NDArray[Any]]) -> int:
        """Exactly-once append: the batch holds rows ``start_row...``; rows
        the shard holds are compared (DataDiffersError when they differ) and
        skipped; returns the rows appended. GapError past the rows held."""
    def commit(self, cursor: Optional[ReadableBuffer] = None) -> int:
        """Commits the pending rows of every column (synced under fsync
        durability), with ``cursor``
        (at most 8127 bytes) when given; returns the committed rows."""
    def finish(self) -> int:
        """Commits, marks the shard complete and closes it; returns its
        rows."""
    def close(self) -> Optional[int]:
        """Commits and closes without marking the shard complete; returns
        the committed rows, or None when already closed."""
    def abandon(self) -> None:
        """Releases the files without committing, as a crash would."""
    def __len__(self) -> int:
        """Committed rows."""
    @property
    def pending_rows(self) -> int:
        """Rows appended since the last commit."""
    @property
    def cursor(self) -> bytes:
        """The cursor of the last commit."""
    @property
    def complete(self) -> bool:
        """Whether the shard is complete (it then takes no rows)."""
    @property
    def resumed(self) -> bool:
        """Whether the shard existed before this open."""
    @property
    def name(self) -> str:
        """The shard's name."""
    @property
    def root(self) -> pathlib.Path:
        """The dataset's root directory."""
    @property
    def path(self) -> pathlib.Path:
        """The shard's directory."""
    @property
    def columns(self) -> Dict[str, Tuple[np.dtype[Any], Tuple[int, ...]]]:
        """``{column: (numpy dtype, row_shape)}``."""
    @property
    def closed(self) -> bool:
        """Whether close(), finish() or abandon() was called."""
    def __enter__(self) -> "ShardWriter":
        """Returns the writer."""
    def __exit__(self, exc_type: Any = None, _exc: Any = None, _tb: Any = None) -> bool:
        """Closes on a normal exit; releases the files on an exception."""

class _DatasetReader:
    """The native reader behind ``npy_append.dataset.DatasetReader``."""

    def __init__(
        self, root: _Path, read_from: str = "auto", pinned: Optional[List[Tuple[str, int]]] = None
    ) -> None:
        """Opens the dataset at ``root`` (exactly ``pinned`` when given)."""
    def refresh(self) -> bool:
        """Reads the dataset again; returns whether the rows shown changed."""
    def wait_for_rows(self, rows: int, timeout: float) -> bool:
        """Waits until ``rows`` rows are shown; False after ``timeout``
        seconds or at once when the dataset is finalized; WriterDiedError
        when a shard's writer died and none is active."""
    def writer_state(self) -> str:
        """``"active"``, ``"finished"`` or ``"died"`` for the dataset."""
    def shard_states(self) -> List[str]:
        """Each shown shard's writer state, in row order."""
    @property
    def root(self) -> pathlib.Path:
        """The dataset's root directory."""
    @property
    def read_from(self) -> str:
        """"auto", "manifest" or "shards"."""
    @property
    def from_manifest(self) -> bool:
        """Whether the rows shown are the manifest's."""
    def __len__(self) -> int:
        """Rows shown."""
    @property
    def columns(self) -> List[Tuple[str, str, List[int]]]:
        """``(name, descr, row_shape)`` of each column."""
    @property
    def shards(self) -> List[Tuple[str, int, bool]]:
        """``(name, rows, complete)`` of each shard shown."""
    @property
    def starts(self) -> List[int]:
        """The first global row of each shard, then the total."""
    @property
    def pinned(self) -> List[Tuple[str, int]]:
        """``(name, rows)`` of each shard shown."""
    def mapping(self, shard: int, column: int) -> _GroupMapping:
        """The committed bytes of a column in a shard."""
    def gather(self, indices: npt.NDArray[np.int64]) -> List[npt.NDArray[np.uint8]]:
        """The rows ``indices`` (negative from the end) of every column,
        copied as bytes; IndexError out of range."""

def create(root: _Path, columns: _Columns) -> Dict[str, Tuple[np.dtype[Any], Tuple[int, ...]]]:
    """Creates the dataset at ``root`` with ``columns``, or checks it."""

def read_schema(root: _Path) -> Optional[Dict[str, Tuple[np.dtype[Any], Tuple[int, ...]]]]:
    """The dataset's columns, or None."""

def finalize(root: _Path, shards: Optional[List[str]] = None) -> str:
    """Finalizes the dataset; returns the text of ``manifest.json``."""

def read_manifest(root: _Path) -> Optional[str]:
    """The text of ``manifest.json``, or None."""

def list_shards(root: _Path) -> List[str]:
    """The shards under ``root``, in the dataset's order."""

def shard_status(root: _Path, shard: str) -> Optional[Tuple[int, bool, bytes]]:
    """``(rows, complete, cursor)`` of a shard, or None."""
