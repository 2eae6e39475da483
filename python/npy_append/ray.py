"""Sharded datasets on Ray: a Ray Data sink, and partitions on Ray tasks.

Ray is an optional dependency (``pip install "npy-append[ray]"``);
``import npy_append`` works without it, this module needs it.

**Ray Data.** ``ds.write_datasink(NpyDatasink(root))`` writes a Ray
Dataset as a sharded dataset: each write task writes its blocks to its own
shard (named by the write and the task's index) and commits after every
block; when Ray retries a task whose worker died, the retry reopens the same
shard, and ``append_at`` compares and skips the rows already committed, so
no row is lost or written twice. When every task is done the manifest is
written with exactly this write's shards; a failed write publishes none::

    import ray
    from npy_append.ray import NpyDatasink

    ds = ray.data.range(1_000_000).map_batches(embed)   # {"id": ..., "emb": ...}
    ds.write_datasink(NpyDatasink("/shared/embeddings"))

Numeric, boolean and fixed-shape tensor columns become the dataset's
columns (a tensor column of shape ``(n, 768)`` becomes rows of ``(768,)``);
a column of variable-length values (strings, lists, ragged tensors: numpy
object arrays) raises :class:`UnsupportedError` naming it.

**Partitions on Ray tasks.** :class:`RayExecutor` gives
:func:`npy_append.dataset.run_partitions` a ``submit`` that runs each
partition as a Ray task (retried by Ray when its worker dies); see
:func:`run_partitions`.

Every worker writes to the same root, so on a cluster of several machines
the root must be on a file system they all mount (NFS, Lustre, a cloud
file share); see the README's "Many workers, many machines".
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import Future
from typing import Any, Callable, Dict, Iterable, Optional, Sequence

import numpy as np
import numpy.typing as npt

# The ignores keep mypy --strict quiet where Ray is not installed.
try:
    import ray  # type: ignore[import-not-found, unused-ignore]
    from ray.data.block import (  # type: ignore[import-not-found, unused-ignore]
        Block,
        BlockAccessor,
    )
    from ray.data.datasource import Datasink  # type: ignore[import-not-found, unused-ignore]
except ImportError as _e:  # pragma: no cover - exercised without Ray
    raise ImportError(
        "npy_append.ray needs Ray Data: pip install 'ray[data]' (or npy-append[ray])"
    ) from _e

from . import dataset
from ._errors import InvalidArgumentError, UnsupportedError
from .dataset import Columns, PartitionReport, StrPath, Work

__all__ = ["NpyDatasink", "RayExecutor", "run_partitions"]


def _block_columns(block: Block, names: Optional[Sequence[str]]) -> Dict[str, npt.NDArray[Any]]:
    """The columns of a Ray block as numpy arrays (in ``names``' order when
    given), refusing object (variable-length) columns."""
    accessor = BlockAccessor.for_block(block)
    arrays = accessor.to_numpy()
    if not isinstance(arrays, dict):
        # A block of one unnamed column.
        arrays = {"data": arrays}
    if names is not None:
        missing = [n for n in names if n not in arrays]
        extra = [n for n in arrays if n not in names]
        if missing or extra:
            raise UnsupportedError(
                f"the Ray dataset's columns {list(arrays)} are not the dataset's {list(names)}; "
                "select or rename the columns (Dataset.select_columns) to match"
            )
        arrays = {n: arrays[n] for n in names}
    out: Dict[str, npt.NDArray[Any]] = {}
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype.hasobject:
            raise UnsupportedError(
                f"column {name!r} holds values of different lengths or types (an object "
                "column: strings, lists or ragged tensors); only numeric, boolean and "
                "fixed-shape tensor columns can be stored. Encode it into fixed-size "
                "arrays first, or drop it"
            )
        out[name] = np.ascontiguousarray(arr)
    return out


class NpyDatasink(Datasink[Optional[Dict[str, Any]]]):  # type: ignore[misc, unused-ignore]
    """A Ray Data sink that writes a sharded npy-append dataset at ``root``
    (``Dataset.write_datasink(NpyDatasink(root))``).

    root: the dataset's directory, on a file system every worker mounts.
    columns: ``{name: (dtype, row_shape)}``: the dataset's columns, which
      every block must have exactly (no value is cast). By default they come
      from the first block of each write task (and must agree with the
      dataset's schema when it exists).
    lock_timeout: seconds a write task waits for another writer of its
      shard (default: fail at once).
    durability: ``"fsync"`` (default): each block's commit is synced, and
      the dataset survives a power loss. ``"process"``: nothing but the
      manifest is synced, so no task waits for the disk (the durability of
      Ray's own ``write_numpy``, which syncs nothing): commits survive
      killed workers and a retried task resumes after its last commit, but
      a power loss can take rows back, which a reader of the published
      dataset then detects (it refuses the manifest).

    Each write task writes its own shard, ``<write id>-<task index>``, and
    commits after every block, with the rows written so far as the cursor;
    a retried task reopens the same shard and ``append_at`` compares and
    skips what its earlier attempt committed. ``on_write_complete`` writes
    ``manifest.json`` with exactly the shards of this write (an earlier
    write's shards under the same root are left out); a failed write
    writes no manifest. After a write, :attr:`manifest` is the manifest
    written (as :func:`npy_append.dataset.finalize` returns it).
    """

    def __init__(
        self,
        root: StrPath,
        columns: Optional[Columns] = None,
        *,
        lock_timeout: Optional[float] = None,
        durability: str = "fsync",
    ) -> None:
        if durability not in ("fsync", "process"):
            # Checked here, in the driver, rather than in every write task.
            raise InvalidArgumentError(
                f'durability must be "fsync" or "process", not {durability!r}'
            )
        self.root = os.fspath(root)
        self.columns = columns
        self.lock_timeout = lock_timeout
        self.durability = durability
        self.manifest: Optional[Dict[str, Any]] = None
        # Names the shards of a write when Ray does not pass its write id.
        self._fallback_id = uuid.uuid4().hex

    def get_name(self) -> str:
        return "NpyAppend"

    def on_write_start(self, schema: Any = None) -> None:
        """Creates the dataset with the given columns (or checks them against
        it) before any task runs."""
        self.manifest = None
        if self.columns is not None:
            dataset.create(self.root, self.columns)

    def write(self, blocks: Iterable[Block], ctx: Any) -> Optional[Dict[str, Any]]:
        """Writes one task's blocks to its shard, committing after each
        block; returns ``{"shard": name, "rows": rows}`` (None when the task
        had no rows)."""
        write_id = ctx.kwargs.get("write_uuid") or self._fallback_id
        name = f"{write_id}-{ctx.task_idx:06d}"
        names = None if self.columns is None else list(self.columns)
        shard: Optional[dataset.ShardWriter] = None
        at = 0
        try:
            for block in blocks:
                if BlockAccessor.for_block(block).num_rows() == 0:
                    continue
                batch = _block_columns(block, names)
                if shard is None:
                    columns = self.columns
                    if columns is None:
                        columns = {n: (a.dtype, a.shape[1:]) for n, a in batch.items()}
                    shard = dataset.open_shard(
                        self.root,
                        name,
                        columns,
                        self.durability,
                        lock_timeout=self.lock_timeout,
                    )
                    if shard.complete:
                        # An earlier attempt finished this task's shard.
                        rows = shard.finish()
                        return {"shard": name, "rows": rows}
                n = len(next(iter(batch.values())))
                shard.append_at(at, batch)
                at += n
                shard.commit(cursor=str(at).encode())
            if shard is None:
                return None
            rows = shard.finish()
            return {"shard": name, "rows": rows}
        except BaseException:
            if shard is not None:
                shard.abandon()
            raise

    def on_write_complete(self, write_result: Any) -> None:
        """Writes the manifest with exactly this write's shards."""
        # Recent Ray versions pass a WriteResult, earlier 2.x versions the
        # list of what the tasks returned.
        returns = getattr(write_result, "write_returns", write_result)
        shards = [r["shard"] for r in returns if r]
        if not shards and dataset.read_schema(self.root) is None:
            raise UnsupportedError(
                f"{self.root}: the Ray dataset has no rows and no columns were given; "
                "nothing to write (pass columns= to write an empty dataset)"
            )
        self.manifest = dataset.finalize(self.root, shards)

    def on_write_failed(self, error: Exception) -> None:
        """Publishes nothing: the manifest is written only after a write
        whose every task succeeded."""
        self.manifest = None


class RayExecutor:
    """A ``concurrent.futures``-style executor running each call as a Ray
    task, for :func:`npy_append.dataset.run_partitions`.

    ``remote_options`` go to ``ray.remote`` (``num_cpus``, ``max_retries``:
    Ray retries a task whose worker died that many times, default 3, ...).
    """

    def __init__(self, **remote_options: Any) -> None:
        self.remote_options = remote_options

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Runs ``fn(*args)`` as a Ray task; returns its future."""
        task = ray.remote(fn)
        if self.remote_options:
            task = task.options(**self.remote_options)
        future: Future[Any] = task.remote(*args).future()
        return future


def run_partitions(
    root: StrPath,
    partitions: Sequence[Any],
    work: Work,
    *,
    columns: Optional[Columns] = None,
    shard_name: Callable[[Any], str] = str,
    **remote_options: Any,
) -> PartitionReport:
    """:func:`npy_append.dataset.run_partitions` on Ray tasks: runs
    ``work(partition, shard)`` for every partition whose shard is not
    complete, one Ray task each (``remote_options`` as for
    :class:`RayExecutor`), and returns the report (ran, resumed, skipped).
    A rerun after the driver died skips the complete shards and resumes the
    others::

        ray.init()
        report = run_partitions("/shared/tokens", range(512), tokenize_part,
                                columns={"tokens": ("<u2", (2048,))})
        finalize("/shared/tokens")
    """
    return dataset.run_partitions(
        RayExecutor(**remote_options),
        root,
        partitions,
        work,
        columns=columns,
        shard_name=shard_name,
    )
