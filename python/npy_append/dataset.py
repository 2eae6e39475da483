"""One dataset from many workers and machines.

A dataset is a directory. Its schema (column names, dtypes, row shapes) is
recorded once in ``schema.json`` at its root by whichever writer comes
first; every shard must match it. Each shard is a subdirectory named by
the caller (a partition id, a rank) holding one plain ``.npy`` per column,
committed together, so numpy loads every column file on its own::

    from npy_append.dataset import open_shard, finalize, DatasetReader

    columns = {"id": ("<i8", ()), "emb": ("<f4", (768,))}
    with open_shard("data/train", f"rank-{rank:05d}", columns) as shard:
        start = len(shard)                       # committed rows: resume here
        for i, batch in enumerate(batches(rank, start)):
            shard.append_at(start, batch)        # {"id": ..., "emb": ...}
            start += len(batch["id"])
            shard.commit()
        shard.finish()                           # commit + complete mark

    finalize("data/train")                       # manifest.json, atomically
    ds = DatasetReader("data/train")             # one array per column
    ds[1234]["emb"], ds[10:20], ds[[3, 1, 2]]

- **Exactly once.** A restarted or retried worker reopens its shard, reads
  ``len(shard)`` or ``shard.cursor`` and continues; ``append_at`` skips the
  rows the shard already holds after comparing them, so a retry that
  produces other rows raises :class:`DataDiffersError` naming the shard.
- **Complete.** ``finish()`` marks the shard complete in the same atomic
  record as its rows; :func:`run_partitions` skips complete shards.
- **Publishing.** :func:`finalize` writes ``manifest.json`` (temporary file,
  fsync, rename, directory fsync) once every shard is complete; it refuses
  with :class:`IncompleteError` naming the others.
- **Reading.** :class:`DatasetReader` numbers rows across shards (manifest
  order once finalized; during a build every shard found, each up to its
  last commit), and is a map-style dataset for PyTorch's ``DataLoader``.

The rules live in the Rust library; this module converts and orchestrates.
"""

from __future__ import annotations

import bisect
import json
import math
import operator
import os
import pathlib
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import numpy.typing as npt

from . import _native
from ._dtypes import dtype_from_descr
from ._errors import DataDiffersError, IncompleteError, NpyAppendError
from ._reader import WriterState, _state

StrPath = Union[str, "os.PathLike[str]"]
#: A column's type: a dtype (one value per row) or ``(dtype, row_shape)``.
ColumnSpec = Union[npt.DTypeLike, Tuple[npt.DTypeLike, Union[int, Sequence[int]]]]
#: The columns of a dataset: ``{name: (dtype, row_shape)}``, in order.
Columns = Mapping[str, ColumnSpec]
#: Rows of every column: ``{name: array}``.
Batch = Dict[str, npt.NDArray[Any]]

__all__ = [
    "StrPath",
    "ColumnSpec",
    "Columns",
    "Batch",
    "open_shard",
    "ShardWriter",
    "create",
    "read_schema",
    "finalize",
    "read_manifest",
    "list_shards",
    "shard_status",
    "ShardStatus",
    "ShardInfo",
    "DatasetReader",
    "run_partitions",
    "PartitionReport",
    "PartitionsFailed",
    "Executor",
    "Work",
    "DataDiffersError",
    "IncompleteError",
]

ShardWriter = _native.ShardWriter


def open_shard(
    root: StrPath,
    shard: str,
    columns: Optional[Columns] = None,
    durability: str = "fsync",
    *,
    lock_timeout: Optional[float] = None,
    compare_overlap: bool = True,
    buffer_bytes: Optional[int] = None,
    accept_loss: bool = False,
) -> _native.ShardWriter:
    """Opens shard ``shard`` of the dataset at ``root``, creating the dataset
    and the shard when missing, or resuming it; returns a
    :class:`ShardWriter`.

    root: the dataset's directory (created when missing).
    shard: the shard's name (its subdirectory): 1 to 200 ASCII letters,
      digits and ``-_.=+``, not starting with ``.`` or ``-``. Shards are
      ordered by name, runs of digits by value (``rank-2`` before
      ``rank-10``).
    columns: ``{name: (dtype, row_shape)}`` (or ``{name: dtype}`` for one
      value per row), in the dataset's column order. Creates the dataset's
      schema when there is none; otherwise it must equal the schema
      (DtypeMismatchError, ShapeMismatchError). May be omitted when the
      dataset exists.
    durability: ``"fsync"`` (default): every commit is synced and survives a
      power loss. ``"process"``: commits and the complete mark make the
      same writes without syncing them, so they survive the death of the
      process (``kill -9``, a killed worker) but not a power loss, which can
      take the shard back to an earlier commit (never a partial one).
      :func:`finalize` publishes such a shard unsynced too: after a power
      loss, a reader refuses a manifest listing rows a shard lost (until the
      shard is finished and the dataset finalized again).
    lock_timeout: seconds to wait for another writer of the shard (default:
      fail at once with LockedError).
    compare_overlap: whether ``append_at`` compares the rows it skips
      (default True).
    buffer_bytes: per-column buffer for small appends.
    accept_loss: whether recovery may cut rows a column's header claims past
      the shard's newest intact commit (as a power loss under ``"process"``
      durability can leave them, or another program's write); refused by
      default (JournalDisagreesError), changing nothing.

    Opening a complete shard succeeds: ``complete`` is then true and
    appending raises.
    """
    return _native.ShardWriter.open(
        os.fspath(root),
        shard,
        columns,
        durability,
        lock_timeout,
        compare_overlap,
        buffer_bytes,
        accept_loss,
    )


def create(
    root: StrPath, columns: Columns
) -> Dict[str, Tuple[np.dtype[Any], Tuple[int, ...]]]:
    """Creates the dataset at ``root`` with ``columns`` (see
    :func:`open_shard`), writing its ``schema.json`` atomically, or checks an
    existing dataset against them. Returns the columns as
    ``{name: (numpy dtype, row_shape)}``."""
    return _native.create(os.fspath(root), columns)


def read_schema(root: StrPath) -> Optional[Dict[str, Tuple[np.dtype[Any], Tuple[int, ...]]]]:
    """The dataset's columns ``{name: (numpy dtype, row_shape)}``, or None
    when ``root`` holds no dataset."""
    return _native.read_schema(os.fspath(root))


def finalize(root: StrPath, shards: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Publishes the dataset at ``root``: checks that every shard (or
    exactly the shards named in ``shards``) is complete and matches the
    schema, and writes ``manifest.json`` (temporary file, fsync, rename,
    directory fsync). Returns the manifest as a dict::

        {"format": "npy-append-dataset-manifest", "version": 1,
         "columns": [{"name": ..., "dtype": ..., "shape": [...]}, ...],
         "rows": total, "shards": [{"name": ..., "rows": ...}, ...]}

    with the shards in the dataset's order. Idempotent: finalizing again
    with the same shards writes nothing. Raises :class:`IncompleteError`
    (``.shards`` names them) and writes nothing when a shard is not
    complete (or complete but in need of recovery while a writer holds
    it). Shards are read without their locks and left unchanged; only a
    complete shard whose ``finish`` was killed before a header rewrite is
    recovered, as its writer would.
    """
    names = None if shards is None else [str(s) for s in shards]
    manifest: Dict[str, Any] = json.loads(_native.finalize(os.fspath(root), names))
    return manifest


def read_manifest(root: StrPath) -> Optional[Dict[str, Any]]:
    """The dataset's manifest as a dict (see :func:`finalize`), or None when
    it was not finalized."""
    text = _native.read_manifest(os.fspath(root))
    if text is None:
        return None
    manifest: Dict[str, Any] = json.loads(text)
    return manifest


def list_shards(root: StrPath) -> List[str]:
    """The names of the shards under ``root``, in the dataset's order."""
    return _native.list_shards(os.fspath(root))


class ShardStatus(NamedTuple):
    """Where a shard stands as of its last commit."""

    rows: int
    complete: bool
    cursor: bytes


def shard_status(root: StrPath, shard: str) -> Optional[ShardStatus]:
    """The :class:`ShardStatus` of shard ``shard``, or None when there is no
    such shard (or no dataset) yet. Takes no lock: runs beside the shard's
    writer."""
    path = os.fspath(root)
    if read_schema(path) is None:
        return None
    status = _native.shard_status(path, shard)
    return None if status is None else ShardStatus(*status)


class ShardInfo(NamedTuple):
    """A shard as a :class:`DatasetReader` shows it."""

    name: str
    rows: int
    complete: bool


def _row_view(
    mapping: Optional[_native._GroupMapping],
    rows: int,
    dtype: np.dtype[Any],
    row_shape: Tuple[int, ...],
) -> npt.NDArray[Any]:
    """A read-only array of the first ``rows`` rows of ``mapping`` (a buffer
    of at least those rows), without a copy."""
    shape = (rows,) + row_shape
    if rows == 0 or mapping is None:
        out: npt.NDArray[Any] = np.empty((0,) + row_shape, dtype=dtype)
        out.flags.writeable = False
        return out
    count = rows * math.prod(row_shape)
    return np.frombuffer(memoryview(mapping), dtype=dtype, count=count).reshape(shape)


def _reopen(root: str, read_from: str, pinned: List[Tuple[str, int]]) -> DatasetReader:
    return DatasetReader(root, read_from=read_from, _pinned=pinned)


class DatasetReader:
    """Every shard's committed rows as one array per column, with global row
    numbers: shard after shard in the manifest's order once the dataset is
    finalized; during a build, every shard found so far, each up to its last
    commit, in the dataset's order. Never shows a row that was not
    committed; takes no lock.

    ::

        ds = DatasetReader("data/train")
        len(ds)                 # rows
        ds[7]                   # {"id": ..., "emb": ...}: one row, no copy
        ds[100:200]             # a slice: inside one shard a view, else a copy
        ds[np.array([5, 3, 9])] # a gather (copied)
        for batch in ds.iter_batches(4096): ...
        ds.refresh()            # new commits, new shards, a new manifest

    read_from: ``"auto"`` (the manifest when finalized, else the shards
    found), ``"manifest"`` (an error when not finalized) or ``"shards"``
    (every shard found, manifest or not).

    It is a map-style dataset (``__len__``, ``__getitem__``) for PyTorch's
    ``DataLoader``, and pickles as its root and the rows it shows: a worker
    process reopens the mappings and sees exactly the same rows. Views taken
    from it stay valid after :meth:`refresh` and after the reader is gone.
    """

    def __init__(
        self,
        root: StrPath,
        *,
        read_from: str = "auto",
        _pinned: Optional[List[Tuple[str, int]]] = None,
    ) -> None:
        self._native = _native._DatasetReader(os.fspath(root), read_from, _pinned)
        self._load()

    def _load(self) -> None:
        n = self._native
        cols = n.columns
        self._names = tuple(c[0] for c in cols)
        self._dtypes = tuple(dtype_from_descr(c[1]) for c in cols)
        self._shapes = tuple(tuple(c[2]) for c in cols)
        self._shards = tuple(ShardInfo(*s) for s in n.shards)
        self._starts = list(n.starts)
        self._len = self._starts[-1] if self._starts else 0
        self._views: Dict[Tuple[int, int], npt.NDArray[Any]] = {}

    # --- what it shows

    @property
    def root(self) -> pathlib.Path:
        """The dataset's root directory."""
        return self._native.root

    @property
    def read_from(self) -> str:
        """``"auto"``, ``"manifest"`` or ``"shards"``."""
        return self._native.read_from

    @property
    def from_manifest(self) -> bool:
        """Whether the rows shown are the manifest's (the dataset is
        finalized), rather than the shards found during a build."""
        return self._native.from_manifest

    @property
    def columns(self) -> Dict[str, Tuple[np.dtype[Any], Tuple[int, ...]]]:
        """``{name: (numpy dtype, row_shape)}``, in the dataset's order."""
        return {
            name: (dtype, shape)
            for name, dtype, shape in zip(self._names, self._dtypes, self._shapes)
        }

    @property
    def shards(self) -> List[ShardInfo]:
        """The shards shown, in row order: :class:`ShardInfo` (name, rows,
        complete) each."""
        return list(self._shards)

    def __len__(self) -> int:
        return self._len

    def refresh(self) -> bool:
        """Reads the dataset again (new commits, new shards, a new
        manifest); returns whether the rows shown changed. Arrays taken
        before stay valid and unchanged."""
        changed = self._native.refresh()
        self._load()
        return changed

    def wait_for_rows(self, rows: int, timeout: float) -> bool:
        """Waits (without holding the GIL) until at least ``rows`` rows are
        shown, refreshing as :meth:`refresh` does; returns whether they are.
        Returns False when ``timeout`` seconds pass first, and at once when
        the reader shows a finalized dataset with fewer rows; raises
        :class:`WriterDiedError` when no shard's writer is active and a
        shard's writer stopped without closing."""
        try:
            return self._native.wait_for_rows(rows, float(timeout))
        finally:
            self._load()

    def writer_state(self) -> WriterState:
        """The writers' state for the dataset as a whole, read now:
        ``"finished"`` once the reader shows the finalized dataset (its
        manifest); else ``"active"`` when a shard's writer is active,
        ``"died"`` when a shard's writer stopped without closing, and
        ``"active"`` otherwise (no writer runs now, but the dataset is not
        finalized: more rows may come). Per shard: :meth:`shard_states`."""
        return _state(self._native.writer_state())

    def shard_states(self) -> List[WriterState]:
        """Each shown shard's writer state (as
        :meth:`GroupReader.writer_state`), in row order."""
        return [_state(s) for s in self._native.shard_states()]

    # --- rows

    def _view(self, k: int, c: int) -> npt.NDArray[Any]:
        """Column ``c`` of shard ``k``: the rows shown, memory-mapped."""
        key = (k, c)
        view = self._views.get(key)
        if view is None:
            view = _row_view(
                self._native.mapping(k, c),
                self._shards[k].rows,
                self._dtypes[c],
                self._shapes[c],
            )
            self._views[key] = view
        return view

    def _locate(self, i: int) -> Tuple[int, int]:
        k = bisect.bisect_right(self._starts, i) - 1
        return k, i - self._starts[k]

    def _index(self, i: int) -> int:
        n = self._len
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} of a dataset of {n} rows")
        return i

    def row(self, i: int) -> Dict[str, Any]:
        """Row ``i`` of every column (negative counts from the end):
        ``{name: value}``, views of the mapped files."""
        k, r = self._locate(self._index(operator.index(i)))
        return {name: self._view(k, c)[r] for c, name in enumerate(self._names)}

    def slice_rows(self, start: Optional[int], stop: Optional[int]) -> Batch:
        """Rows ``start:stop`` of every column: inside one shard views of
        the mapped files, across shards copies."""
        lo, hi, _ = slice(start, stop).indices(self._len)
        return self._slice(lo, max(lo, hi))

    def _slice(self, start: int, stop: int) -> Batch:
        if start == stop:
            return {
                name: _row_view(None, 0, dtype, shape)
                for name, dtype, shape in zip(self._names, self._dtypes, self._shapes)
            }
        k0, r0 = self._locate(start)
        k1, _ = self._locate(stop - 1)
        if k0 == k1:
            return {
                name: self._view(k0, c)[r0 : r0 + (stop - start)]
                for c, name in enumerate(self._names)
            }
        out: Batch = {}
        for c, name in enumerate(self._names):
            parts: List[npt.NDArray[Any]] = []
            for k in range(k0, k1 + 1):
                lo = max(start, self._starts[k]) - self._starts[k]
                hi = min(stop, self._starts[k + 1]) - self._starts[k]
                if hi > lo:
                    parts.append(self._view(k, c)[lo:hi])
            out[name] = np.concatenate(parts)
        return out

    def gather(self, indices: npt.ArrayLike) -> Batch:
        """The rows ``indices`` (an array of integers, any order, repeats
        allowed, negative counting from the end) of every column, copied:
        ``{name: array}``."""
        idx = np.asarray(indices)
        if idx.dtype != np.int64:
            if idx.dtype.kind == "u" and idx.size and int(idx.max()) >= self._len:
                raise IndexError(f"row {int(idx.max())} of a dataset of {self._len} rows")
            if idx.dtype.kind not in "iu" and idx.size:
                raise TypeError(f"row indices must be integers, not {idx.dtype}")
            idx = idx.astype(np.int64)
        shape = idx.shape
        raws = self._native.gather(np.ascontiguousarray(idx.reshape(-1)))
        out: Batch = {}
        for raw, name, dtype, row_shape in zip(raws, self._names, self._dtypes, self._shapes):
            out[name] = raw.view(dtype).reshape(shape + row_shape)
        return out

    def __getitem__(self, key: Union[int, slice, npt.ArrayLike]) -> Dict[str, Any]:
        """``ds[i]``: one row; ``ds[a:b]``: a slice (a step other than 1 is
        a gather); ``ds[indices]``: a gather. Each a dict ``{column:
        array}``."""
        if isinstance(key, slice):
            if key.step in (None, 1):
                return self.slice_rows(key.start, key.stop)
            return self.gather(np.arange(*key.indices(self._len)))
        if isinstance(key, (int, np.integer)):
            return self.row(int(key))
        if isinstance(key, str):
            raise TypeError(
                f"a DatasetReader is indexed by rows; the columns are {', '.join(self._names)}"
            )
        return self.gather(key)

    def __getitems__(self, indices: Sequence[int]) -> List[Dict[str, Any]]:
        """Rows ``indices`` as a list of ``{column: value}`` (what PyTorch's
        ``DataLoader`` asks a map-style dataset for, one batch at a time);
        one gather."""
        cols = self.gather(np.asarray(indices, dtype=np.int64))
        return [
            {name: cols[name][j] for name in self._names} for j in range(len(indices))
        ]

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for i in range(self._len):
            yield self.row(i)

    def iter_batches(self, batch_size: int, *, drop_last: bool = False) -> Iterator[Batch]:
        """Yields the rows in order, ``batch_size`` at a time, as
        ``{column: array}``; a batch inside one shard is a view of the mapped
        files, across shards a copy. The last batch may be shorter unless
        ``drop_last``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        end = self._len - (self._len % batch_size if drop_last else 0)
        for start in range(0, end, batch_size):
            yield self._slice(start, min(start + batch_size, end))

    def __reduce__(
        self,
    ) -> Tuple[Callable[[str, str, List[Tuple[str, int]]], DatasetReader], Tuple[str, str, List[Tuple[str, int]]]]:
        # The root and the rows shown: a worker reopens the mappings.
        return (_reopen, (os.fspath(self.root), self.read_from, self._native.pinned))

    def __repr__(self) -> str:
        source = "manifest" if self.from_manifest else "shards found"
        return (
            f"<npy_append.dataset.DatasetReader {os.fspath(self.root)!r}: "
            f"{self._len} rows in {len(self._shards)} shards ({source}), "
            f"columns {', '.join(self._names)}>"
        )


# --- running partitions through an executor


class PartitionReport(NamedTuple):
    """What :func:`run_partitions` did: ``ran`` the partitions whose work
    ran in this call, of which ``resumed`` continued a shard an earlier run
    left unfinished; ``skipped`` the partitions whose shards were complete
    already (their work did not run). ``rows`` maps each shard to its rows."""

    ran: List[Any]
    resumed: List[Any]
    skipped: List[Any]
    rows: Dict[str, int]


class PartitionsFailed(NpyAppendError):
    """Some partitions failed; the others finished. ``.report`` is the
    :class:`PartitionReport` of those that finished, ``.failures`` a list
    of ``(partition, exception)``. Run again: complete shards are skipped,
    the failed ones resume."""

    def __init__(self, report: PartitionReport, failures: List[Tuple[Any, BaseException]]) -> None:
        self.report = report
        self.failures = failures
        names = ", ".join(repr(p) for p, _ in failures[:10])
        more = f" and {len(failures) - 10} more" if len(failures) > 10 else ""
        first = failures[0][1] if failures else None
        super().__init__(
            f"{len(failures)} partitions failed: {names}{more}; first error: {first!r}"
        )


class _Future(Protocol):
    def result(self) -> Any: ...


class Executor(Protocol):
    """What :func:`run_partitions` needs of an executor: ``submit(fn,
    *args)`` returning a future with ``result()``."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> _Future: ...


#: ``work(partition, shard)``: writes one partition's rows into its shard.
Work = Callable[[Any, _native.ShardWriter], object]


def _run_partition(
    root: str,
    shard: str,
    partition: Any,
    work: Work,
    columns: Optional[Columns],
    durability: str,
    lock_timeout: Optional[float],
) -> Tuple[str, bool, int, bool]:
    """Runs one partition in a worker: opens its shard, calls
    ``work(partition, shard)`` and finishes the shard."""
    w = open_shard(root, shard, columns, durability, lock_timeout=lock_timeout)
    try:
        if w.complete:
            # Finished by another run since the driver looked.
            rows = w.finish()
            return shard, True, rows, False
        resumed = w.resumed
        work(partition, w)
        if w.closed:
            if not w.complete:
                raise NpyAppendError(
                    f"shard {shard}: the work closed its shard without finishing it"
                )
            status = shard_status(root, shard)
            rows = status.rows if status is not None else 0
        else:
            rows = w.finish()
        return shard, resumed, rows, True
    except BaseException:
        w.abandon()
        raise


def run_partitions(
    executor: Executor,
    root: StrPath,
    partitions: Sequence[Any],
    work: Work,
    *,
    columns: Optional[Columns] = None,
    shard_name: Callable[[Any], str] = str,
    durability: str = "fsync",
    lock_timeout: Optional[float] = None,
) -> PartitionReport:
    """Runs ``work(partition, shard)`` for every partition whose shard is not
    complete, through ``executor`` (anything with a ``concurrent.futures``
    style ``submit(fn, *args)`` whose futures have ``result()``: a
    ``ProcessPoolExecutor``, :class:`npy_append.ray.RayExecutor`, a Dask
    ``Client``), and returns a :class:`PartitionReport`.

    Each partition writes its own shard, named ``shard_name(partition)``
    (default ``str``). In the worker, ``work`` gets the open
    :class:`ShardWriter`: it writes rows from ``len(shard)`` or
    ``shard.cursor`` on (``append_at`` makes a replay harmless) and commits
    as often as it likes; when it returns, the shard is finished (marked
    complete). Partitions whose shards are complete are skipped without
    running ``work``; a partition whose earlier run died is resumed.

    ``columns``, ``durability`` and ``lock_timeout`` open each shard as
    :func:`open_shard` does (``durability="process"``: commits that do not
    wait for the disk, kept when a worker is killed).

    ``work``, the partitions and ``columns`` must be picklable for a process
    pool. When partitions fail, the others still finish and
    :class:`PartitionsFailed` is raised after all are done (a partition the
    executor refuses to take, as a process pool broken by a killed worker
    does, counts as failed); running again resumes exactly the unfinished
    ones. Nothing is finalized: call
    :func:`finalize` when every partition is done.
    """
    path = os.fspath(root)
    todo = list(partitions)
    names = [shard_name(p) for p in todo]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup = None
        for n in names:
            if n in seen:
                dup = n
                break
            seen.add(n)
        raise ValueError(f"two partitions map to the shard {dup!r}")
    if columns is not None:
        create(path, columns)
    skipped: List[Any] = []
    submitted: List[Tuple[Any, _Future]] = []
    failures: List[Tuple[Any, BaseException]] = []
    for p, name in zip(todo, names):
        status = shard_status(path, name)
        if status is not None and status.complete:
            skipped.append(p)
            continue
        try:
            future = executor.submit(
                _run_partition, path, name, p, work, columns, durability, lock_timeout
            )
        except Exception as e:  # noqa: BLE001 - reported with the partition
            # The executor refused it: a process pool broken by a worker
            # that died meanwhile refuses every later submission.
            failures.append((p, e))
            continue
        submitted.append((p, future))
    ran: List[Any] = []
    resumed: List[Any] = []
    rows: Dict[str, int] = {}
    for p, future in submitted:
        try:
            shard, was_resumed, n, did_run = future.result()
        except BaseException as e:  # noqa: BLE001 - reported with the partition
            if isinstance(e, KeyboardInterrupt):
                raise
            failures.append((p, e))
            continue
        rows[shard] = n
        if did_run:
            ran.append(p)
            if was_resumed:
                resumed.append(p)
        else:
            skipped.append(p)
    report = PartitionReport(ran=ran, resumed=resumed, skipped=skipped, rows=rows)
    if failures:
        raise PartitionsFailed(report, failures)
    return report
