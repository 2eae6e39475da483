"""The group reader: a consistent snapshot of every member of an append
group, as zero-copy numpy views."""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any, Dict, Tuple, Type, Union

import numpy as np
import numpy.typing as npt

from . import _native
from ._dtypes import dtype_from_descr
from ._reader import WriterState, _state

StrPath = Union[str, "os.PathLike[str]"]


def _view(
    mapping: _native._GroupMapping, rows: int, dtype: np.dtype[Any], row_shape: Tuple[int, ...]
) -> npt.NDArray[Any]:
    """A read-only numpy array of ``rows`` rows over ``mapping`` (a buffer
    of exactly those rows), without a copy."""
    shape = (rows,) + row_shape
    if rows == 0:
        out: npt.NDArray[Any] = np.empty(shape, dtype=dtype)
        out.flags.writeable = False
        return out
    count = rows * math.prod(row_shape)
    return np.frombuffer(memoryview(mapping), dtype=dtype, count=count).reshape(shape)


class GroupReader:
    """Read-only snapshot of an append group: every member's rows as of
    one group commit, so the members never disagree::

        r = GroupReader("data/train.group")
        feats, labels = r["feats.npy"], r["labels.npy"]   # zero-copy views
        r.cursor                                          # that commit's cursor
        r.refresh()                                       # newer commits

    Takes no lock and never writes, so it runs beside the group's writer
    (in this or another process). A view returned by :meth:`array` stays
    valid after :meth:`refresh` and after the reader is gone: it keeps its
    memory mapping alive.

    A reader pickles as its path: the copy (in a worker process, for
    example) opens the group again and shows its newest commit, which holds
    at least the rows the original showed.
    """

    def __init__(self, path: StrPath) -> None:
        self._native = _native._GroupReader(os.fspath(path))
        self._load()

    def _load(self) -> None:
        n = self._native
        self._names = tuple(n.names)
        self._dtypes = {name: dtype_from_descr(n.descr(name)) for name in self._names}
        self._row_shapes = {name: tuple(n.row_shape(name)) for name in self._names}

    def __reduce__(self) -> Tuple[Type[GroupReader], Tuple[pathlib.Path]]:
        return (type(self), (self.path,))

    @property
    def path(self) -> pathlib.Path:
        """The group journal's path."""
        return self._native.path

    @property
    def names(self) -> Tuple[str, ...]:
        """The member file names, in the group's order."""
        return self._names

    @property
    def sequence(self) -> int:
        """The sequence number of the group commit this snapshot shows."""
        return self._native.sequence

    @property
    def cursor(self) -> bytes:
        """The cursor of the commit this snapshot shows (bytes)."""
        return self._native.cursor

    @property
    def rows(self) -> Dict[str, int]:
        """``{name: committed rows}`` in this snapshot."""
        return {name: self._native.rows(name) for name in self._names}

    def dtype(self, name: str) -> np.dtype[Any]:
        """Member ``name``'s numpy dtype."""
        self._check(name)
        return self._dtypes[name]

    def row_shape(self, name: str) -> Tuple[int, ...]:
        """The shape of one row of member ``name``."""
        self._check(name)
        return self._row_shapes[name]

    def member_path(self, name: str) -> pathlib.Path:
        """The path of member ``name``'s ``.npy`` file."""
        return self._native.member_path(name)

    def _check(self, name: str) -> None:
        if name not in self._dtypes:
            # Raises InvalidArgumentError naming the group.
            self._native.rows(name)

    def refresh(self) -> bool:
        """Reads the newest group commit; returns whether it changed.
        Views taken before stay valid (and unchanged)."""
        return self._native.refresh()

    def wait_for_rows(self, name: str, rows: int, timeout: float) -> bool:
        """Waits (without holding the GIL) until member ``name`` has at
        least ``rows`` committed rows; returns whether it has, the snapshot
        then showing the newest commit. Returns False when ``timeout``
        seconds pass first, and at once when the writer closed the group
        without committing them or no writer has it open; raises
        :class:`WriterDiedError` when the writer stopped without closing
        (killed, crashed, dropped) before committing them."""
        return self._native.wait_for_rows(name, rows, float(timeout))

    def writer_state(self) -> WriterState:
        """Whether a writer is at work on the group, read now: ``"active"`` (a writer has it open), ``"finished"`` (the last writer
        closed it cleanly, or none of this library ever opened it) or
        ``"died"`` (the last writer stopped without closing: killed, crashed
        or dropped; the next writer recovers it to its last commit).
        A group closed by npy-append before this was recorded reads as
        ``"died"`` until a writer opens and closes it again."""
        return _state(self._native.writer_state())

    def array(self, name: str) -> npt.NDArray[Any]:
        """Member ``name``'s committed rows in this snapshot: a read-only
        numpy array, without a copy (a view of the memory-mapped file)."""
        self._check(name)
        return _view(
            self._native.mapping(name),
            self._native.rows(name),
            self._dtypes[name],
            self._row_shapes[name],
        )

    def arrays(self) -> Dict[str, npt.NDArray[Any]]:
        """``{name: array(name)}`` for every member: one consistent
        snapshot."""
        return {name: self.array(name) for name in self._names}

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        """``array(name)``; KeyError for a name that is not a member."""
        if name not in self._dtypes:
            raise KeyError(name)
        return self.array(name)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a member."""
        return name in self._dtypes

    def __repr__(self) -> str:
        rows = ", ".join(f"{k}: {v}" for k, v in self.rows.items())
        return f"<npy_append.GroupReader {os.fspath(self.path)!r}: commit {self.sequence}, rows {{{rows}}}>"
