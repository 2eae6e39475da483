"""The ragged reader: each sequence of a ragged array as a zero-copy numpy
view."""

from __future__ import annotations

import operator
import os
import pathlib
from typing import Any, Iterator, List, Optional, SupportsIndex, Tuple, Type, Union, overload

import numpy as np
import numpy.typing as npt

from . import _native
from ._dtypes import dtype_from_descr
from ._groups import StrPath, _view
from ._reader import WriterState, _state


class RaggedReader:
    """Read-only snapshot of a ragged array (a values/offsets pair written
    by :class:`RaggedAppender`): sequence ``i`` is rows
    ``offsets[i]:offsets[i + 1]`` of the values::

        r = RaggedReader("tokens.group")
        len(r)          # committed sequences
        r[3]            # sequence 3: a read-only view, no copy
        for seq in r:   # every sequence
            ...

    Values and offsets come from one commit, so they always agree. Takes no
    lock and never writes; :meth:`refresh` picks up newer commits, and views
    taken before stay valid.

    A reader pickles as its path and file names: the copy (in a worker
    process, for example) opens the array again and shows its newest
    commit, which holds at least the sequences the original showed.
    """

    def __init__(self, path: StrPath, names: Tuple[str, str] = ("values.npy", "offsets.npy")) -> None:
        values, offsets = names
        self._names = (values, offsets)
        self._native = _native._RaggedReader(os.fspath(path), values, offsets)
        self._dtype = dtype_from_descr(self._native.descr)
        self._row_shape: Tuple[int, ...] = tuple(self._native.row_shape)
        self._values: Optional[npt.NDArray[Any]] = None

    def __reduce__(self) -> Tuple[Type[RaggedReader], Tuple[pathlib.Path, Tuple[str, str]]]:
        return (type(self), (self.path, self._names))

    @property
    def path(self) -> pathlib.Path:
        """The group journal's path."""
        return self._native.path

    @property
    def values_path(self) -> pathlib.Path:
        """The values file's path."""
        return self._native.values_path

    @property
    def offsets_path(self) -> pathlib.Path:
        """The offsets file's path."""
        return self._native.offsets_path

    @property
    def dtype(self) -> np.dtype[Any]:
        """The values' numpy dtype."""
        return self._dtype

    @property
    def row_shape(self) -> Tuple[int, ...]:
        """The shape of one row of the values (``()`` for 1-D values)."""
        return self._row_shape

    @property
    def cursor(self) -> bytes:
        """The cursor of the commit this snapshot shows (bytes)."""
        return self._native.cursor

    @property
    def sequence(self) -> int:
        """The sequence number of the group commit this snapshot shows."""
        return self._native.sequence

    def __len__(self) -> int:
        """Sequences in this snapshot."""
        return len(self._native)

    def refresh(self) -> bool:
        """Reads the newest commit; returns whether it changed."""
        changed = self._native.refresh()
        self._values = None
        return changed

    def wait_for_rows(self, sequences: int, timeout: float) -> bool:
        """Waits (without holding the GIL) until at least ``sequences``
        sequences are committed (``len()`` counts them); returns whether
        they are, the snapshot then showing the newest commit. Returns False
        when ``timeout`` seconds pass first, and at once when the writer
        closed the array without committing them or no writer has it open;
        raises :class:`WriterDiedError` when the writer stopped without
        closing before committing them."""
        waited = self._native.wait_for_rows(sequences, float(timeout))
        self._values = None
        return waited

    def writer_state(self) -> WriterState:
        """Whether a writer is at work on the array, read now: ``"active"`` (a writer has it open), ``"finished"`` (the last writer
        closed it cleanly, or none of this library ever opened it) or
        ``"died"`` (the last writer stopped without closing: killed, crashed
        or dropped; the next writer recovers it to its last commit)."""
        return _state(self._native.writer_state())

    def values(self) -> npt.NDArray[Any]:
        """Every committed row of the values: a read-only view, no copy."""
        if self._values is None:
            self._values = _view(
                self._native.values_mapping(), self._native.values_rows, self._dtype, self._row_shape
            )
        return self._values

    def offsets(self) -> npt.NDArray[np.int64]:
        """The committed offsets (int64, ``len(self) + 1`` values starting
        with 0): a read-only view, no copy."""
        return _view(self._native.offsets_mapping(), self._native.offsets_rows, np.dtype(np.int64), ())

    def bounds(self, i: SupportsIndex) -> Tuple[int, int]:
        """``(start, end)``: the rows of the values holding sequence ``i``."""
        return self._native.range(self._index(i))

    def _index(self, i: SupportsIndex) -> int:
        n = len(self._native)
        i = operator.index(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sequence index out of range ({n} sequences)")
        return i

    @overload
    def __getitem__(self, i: SupportsIndex) -> npt.NDArray[Any]: ...
    @overload
    def __getitem__(self, i: slice) -> List[npt.NDArray[Any]]: ...
    def __getitem__(self, i: Union[SupportsIndex, slice]) -> Union[npt.NDArray[Any], List[npt.NDArray[Any]]]:
        """Sequence ``i`` (negative indices count from the end): a read-only
        view of its rows, no copy. A slice gives a list of such views."""
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        start, end = self._native.range(self._index(i))
        return self.values()[start:end]

    def __iter__(self) -> Iterator[npt.NDArray[Any]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"<npy_append.RaggedReader {os.fspath(self.path)!r}: {len(self)} sequences>"
