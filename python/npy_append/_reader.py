"""The reader: zero-copy numpy views of the committed rows."""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any, Literal, Tuple, Type, Union

import numpy as np
import numpy.typing as npt

from . import _native
from ._dtypes import dtype_from_descr

StrPath = Union[str, "os.PathLike[str]"]

#: What a reader's ``writer_state()`` returns.
WriterState = Literal["active", "finished", "died"]


def _state(state: str) -> WriterState:
    if state == "active":
        return "active"
    if state == "finished":
        return "finished"
    if state == "died":
        return "died"
    raise ValueError(f"unknown writer state {state!r}")  # pragma: no cover


class Reader:
    """Read-only view of the committed rows of a ``.npy`` file.

    Takes no lock and never writes, so it runs beside a writer (in this or
    another process) and shows exactly the committed rows::

        r = Reader("feats.npy")
        a = r.array()            # zero-copy, read-only view of the committed rows
        r.wait_for_rows(1000, timeout=5.0)
        a = r.array()            # a new view including the new rows

    A view returned by :meth:`array` stays valid after :meth:`refresh` and
    after the reader itself is gone: it keeps its memory mapping alive.

    A reader pickles as its path: the copy (in a worker process, for
    example) opens the file again and shows the newest commit, which holds
    at least the rows the original showed.
    """

    def __init__(self, path: StrPath) -> None:
        self._native = _native._Reader(os.fspath(path))
        self._dtype = dtype_from_descr(self._native.descr)
        self._row_shape: Tuple[int, ...] = tuple(self._native.row_shape)
        self._fortran = self._native.fortran_order

    def __reduce__(self) -> Tuple[Type[Reader], Tuple[pathlib.Path]]:
        return (type(self), (self.path,))

    @property
    def path(self) -> pathlib.Path:
        """The ``.npy`` file's path."""
        return self._native.path

    @property
    def dtype(self) -> np.dtype[Any]:
        """The file's numpy dtype."""
        return self._dtype

    @property
    def row_shape(self) -> Tuple[int, ...]:
        """The shape of one row (the array's shape without axis 0, or
        without its last axis in a Fortran-order file)."""
        return self._row_shape

    @property
    def fortran_order(self) -> bool:
        """Whether the file is in Fortran order (of at least two axes): rows
        are then slices along the last axis."""
        return self._fortran

    @property
    def shape(self) -> Tuple[int, ...]:
        """The shape of the committed array: ``(len(self),) + row_shape``,
        or ``row_shape + (len(self),)`` in Fortran order."""
        if self._fortran:
            return self._row_shape + (len(self),)
        return (len(self),) + self._row_shape

    def __len__(self) -> int:
        """Committed rows as of the last refresh."""
        return len(self._native)

    def refresh(self) -> bool:
        """Re-reads the committed row count; returns whether it changed."""
        return self._native.refresh()

    def wait_for_rows(self, rows: int, timeout: float) -> bool:
        """Waits (without holding the GIL) until at least ``rows`` rows are
        committed; returns whether they are. Returns False when ``timeout``
        seconds pass first, and at once when the writer finished (closed
        the file) without committing them or no writer has it open; raises
        :class:`WriterDiedError` when the writer stopped without closing
        (killed, crashed, dropped) before committing them."""
        return self._native.wait_for_rows(rows, float(timeout))

    def writer_state(self) -> WriterState:
        """Whether a writer is at work on the file, read now: ``"active"`` (a writer has it open), ``"finished"`` (the last writer
        closed it cleanly, or none of this library ever opened it) or
        ``"died"`` (the last writer stopped without closing: killed, crashed
        or dropped; the next writer recovers it to its last commit).
        The answer holds at the moment it is read (a new writer may start
        at any time)."""
        return _state(self._native.writer_state())

    def array(self) -> npt.NDArray[Any]:
        """A read-only numpy array of the committed rows, without a copy
        (a view of the memory-mapped file; Fortran-ordered for a
        Fortran-order file, as ``np.load`` returns it)."""
        rows = len(self._native)
        order: Literal["C", "F"] = "F" if self._fortran else "C"
        shape = self._row_shape + (rows,) if self._fortran else (rows,) + self._row_shape
        if rows == 0:
            out: npt.NDArray[Any] = np.empty(shape, dtype=self._dtype, order=order)
            out.flags.writeable = False
            return out
        count = rows * math.prod(self._row_shape)
        flat = np.frombuffer(memoryview(self._native.mapping()), dtype=self._dtype, count=count)
        return flat.reshape(shape, order=order)

    def __repr__(self) -> str:
        return f"<npy_append.Reader {os.fspath(self.path)!r}: {len(self)} committed rows>"
