"""Crash-safe appends to NumPy ``.npy`` files.

The APIs:

- :class:`NpyAppendArray`, :func:`recover`, :func:`is_appendable`,
  :func:`ensure_appendable`: a drop-in for npy-append-array; change
  ``from npy_append_array import NpyAppendArray`` to
  ``from npy_append import NpyAppendArray`` and a killed job resumes at its
  last ``append()``.
- :class:`Appender` (explicit commits, durability, cursors, exactly-once
  ``append_at``) and :class:`Reader` (zero-copy views of committed rows).
- :class:`AppendGroup` and :class:`GroupReader`: several ``.npy`` files
  committed together (they never disagree after a crash);
  :class:`RaggedAppender` and :class:`RaggedReader`: sequences of different
  lengths in a values/offsets pair.
- :mod:`npy_append.dataset`: one dataset from many workers and machines
  (shards, a manifest, one reader over all of them, partitions run through
  any executor); :mod:`npy_append.ray`: the same on Ray (a Ray Data sink),
  when Ray is installed.

Errors are :class:`NpyAppendError` subclasses (see ``npy_append._errors``).
Every public name is annotated (the package ships ``py.typed``).
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import _native
from ._dropin import NpyAppendArray, ensure_appendable, is_appendable, recover
from ._errors import (
    ClosedError,
    CorruptError,
    DataDiffersError,
    DtypeMismatchError,
    FileReplacedError,
    ForeignJournalError,
    GapError,
    GroupMemberError,
    IncompleteError,
    InvalidArgumentError,
    JournalDisagreesError,
    LockedError,
    NpyAppendBlockingIOError,
    NpyAppendBrokenPipeError,
    NpyAppendError,
    NpyAppendFileExistsError,
    NpyAppendFileNotFoundError,
    NpyAppendInterruptedError,
    NpyAppendIOError,
    NpyAppendIsADirectoryError,
    NpyAppendNotADirectoryError,
    NpyAppendPermissionError,
    NpyAppendTimeoutError,
    PoisonedError,
    ShapeMismatchError,
    TrailingBytesError,
    UnsupportedError,
    WriterDiedError,
)
from ._groups import GroupReader
from ._ragged import RaggedReader
from ._reader import Reader

try:
    __version__: str = _version("npy-append")
    """The installed distribution's version."""
except _PackageNotFoundError:  # pragma: no cover - imported from a source tree
    __version__ = "0+unknown"

Appender = _native.Appender
AppendGroup = _native.AppendGroup
RaggedAppender = _native.RaggedAppender

__all__ = [
    "Appender",
    "Reader",
    "AppendGroup",
    "GroupReader",
    "RaggedAppender",
    "RaggedReader",
    "NpyAppendArray",
    "recover",
    "is_appendable",
    "ensure_appendable",
    "ClosedError",
    "CorruptError",
    "DataDiffersError",
    "DtypeMismatchError",
    "FileReplacedError",
    "ForeignJournalError",
    "GapError",
    "GroupMemberError",
    "IncompleteError",
    "InvalidArgumentError",
    "JournalDisagreesError",
    "LockedError",
    "NpyAppendBlockingIOError",
    "NpyAppendBrokenPipeError",
    "NpyAppendError",
    "NpyAppendFileExistsError",
    "NpyAppendFileNotFoundError",
    "NpyAppendInterruptedError",
    "NpyAppendIOError",
    "NpyAppendIsADirectoryError",
    "NpyAppendNotADirectoryError",
    "NpyAppendPermissionError",
    "NpyAppendTimeoutError",
    "PoisonedError",
    "ShapeMismatchError",
    "TrailingBytesError",
    "UnsupportedError",
    "WriterDiedError",
]
