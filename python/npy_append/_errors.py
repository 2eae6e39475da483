"""Exception classes of npy_append.

Every error the library reports is an :class:`NpyAppendError` carrying the
library's message. Subclasses also derive from the matching built-in
exception, so code that catches ``TypeError``/``ValueError``/``OSError`` keeps
working::

    NpyAppendError(Exception)
    +-- LockedError                 another writer holds the file's lock
    +-- CorruptError                file or journal invalid, checksum mismatch,
    |   |                           committed data missing
    |   +-- TrailingBytesError(ValueError) bytes past the header's rows and no journal
    +-- DtypeMismatchError(TypeError)    dtype differs from the file's (no cast)
    +-- ShapeMismatchError(ValueError)   row shape differs from the file's
    +-- InvalidArgumentError(ValueError) an argument that cannot be used
    |   +-- GapError                append_at() past the rows the file holds
    +-- DataDiffersError(ValueError)     replayed rows differ from the file's
    +-- UnsupportedError            a valid file or dtype this library cannot
    |                               append to (0-d arrays, object dtype...)
    +-- PoisonedError               an earlier write failed; reopen
    +-- GroupMemberError            the file belongs to an append group
    +-- IncompleteError             finalize found shards not complete (.shards)
    +-- WriterDiedError             wait_for_rows(): the writer stopped without
    |                               closing before the rows were committed
    +-- NpyAppendIOError(OSError)   the operating system reported an error (.errno is set)
    |   +-- NpyAppendFileNotFoundError(FileNotFoundError)   ENOENT
    |   +-- NpyAppendPermissionError(PermissionError)       EACCES, EPERM
    |   +-- NpyAppendFileExistsError(FileExistsError)       EEXIST
    |   +-- NpyAppendIsADirectoryError(IsADirectoryError)   EISDIR
    |   +-- NpyAppendNotADirectoryError(NotADirectoryError) ENOTDIR
    |   +-- NpyAppendInterruptedError(InterruptedError)     EINTR
    |   +-- NpyAppendBlockingIOError(BlockingIOError)       EAGAIN
    |   +-- NpyAppendTimeoutError(TimeoutError)             ETIMEDOUT
    |   +-- NpyAppendBrokenPipeError(BrokenPipeError)       EPIPE
    +-- ClosedError(ValueError)     use of a closed appender

An operating-system error is raised as the class of its errno, as Python's
own ``open()`` would raise it: ``except FileNotFoundError`` and
``except PermissionError`` catch them, and so do ``except NpyAppendIOError``
and ``except OSError``. Its message is the library's (what failed, on which
file); ``.errno`` is set.
"""

__all__ = [
    "NpyAppendError",
    "LockedError",
    "CorruptError",
    "TrailingBytesError",
    "DtypeMismatchError",
    "ShapeMismatchError",
    "InvalidArgumentError",
    "GapError",
    "DataDiffersError",
    "UnsupportedError",
    "PoisonedError",
    "GroupMemberError",
    "IncompleteError",
    "WriterDiedError",
    "JournalDisagreesError",
    "ForeignJournalError",
    "FileReplacedError",
    "NpyAppendIOError",
    "NpyAppendFileNotFoundError",
    "NpyAppendPermissionError",
    "NpyAppendFileExistsError",
    "NpyAppendIsADirectoryError",
    "NpyAppendNotADirectoryError",
    "NpyAppendInterruptedError",
    "NpyAppendBlockingIOError",
    "NpyAppendTimeoutError",
    "NpyAppendBrokenPipeError",
    "ClosedError",
]


class NpyAppendError(Exception):
    """Base class of every error npy_append raises."""


class LockedError(NpyAppendError):
    """Another writer has the file open (its lock is held)."""


class CorruptError(NpyAppendError):
    """The file or its journal is not valid; nothing was changed."""


class TrailingBytesError(CorruptError, ValueError):
    """Bytes past the rows the header describes and no journal (another
    tool's writer crashed); open with tail_policy="cut" or "adopt"."""


class DtypeMismatchError(NpyAppendError, TypeError):
    """The data's dtype differs from the file's; no value is ever cast."""


class ShapeMismatchError(NpyAppendError, ValueError):
    """The data's row shape differs from the file's."""


class InvalidArgumentError(NpyAppendError, ValueError):
    """An argument that cannot be used."""


class GapError(InvalidArgumentError):
    """append_at() starts past the rows the file holds."""


class DataDiffersError(NpyAppendError, ValueError):
    """Replayed rows differ from the rows already in the file."""


class UnsupportedError(NpyAppendError):
    """Valid input this library does not handle."""


class PoisonedError(NpyAppendError):
    """An earlier write or sync failed; reopen with open_or_recover."""


class IncompleteError(NpyAppendError):
    """Finalizing a dataset found shards that are not complete (or that a
    writer has open); no manifest was written. ``.shards`` lists them."""

    shards = ()


class WriterDiedError(NpyAppendError):
    """A reader's ``wait_for_rows()`` waited for rows that cannot arrive: the
    writer stopped without closing (killed, crashed, or dropped without
    ``close()``) before committing them. A new writer opening the file
    recovers it to its last commit and may then append them."""


class JournalDisagreesError(CorruptError):
    """The file and its journal disagree in a way npy_append's own writes
    cannot produce: another program rewrote or replaced the file after its
    writer died (or, after a power loss under durability="process", the
    two cannot be told apart). Nothing was changed. Move the journal away if
    the file is right, restore the file if the journal is, or reopen with
    ``accept_loss=True`` to recover to the journal's last commit, cutting
    what it does not commit."""


class ForeignJournalError(NpyAppendError):
    """A file where the journal would be that npy_append did not write (nor
    one it was creating when it died). It was left where it is and nothing
    was changed; reopen with ``move_aside_foreign_journal=True`` to rename it
    to ``<journal>.foreign`` and go on."""


class FileReplacedError(NpyAppendError):
    """Another program removed the file (or its journal), or moved or saved
    another file over it, while this writer had it open. The writer stopped
    (its commit was not acknowledged) and changed nothing at the path; the
    message says what is kept and what to do."""


class GroupMemberError(NpyAppendError):
    """The file is a member of an append group; open the group."""


class NpyAppendIOError(NpyAppendError, OSError):
    """The operating system reported an I/O error; ``.errno`` is set."""


class NpyAppendFileNotFoundError(NpyAppendIOError, FileNotFoundError):
    """A file or directory does not exist (ENOENT)."""


class NpyAppendPermissionError(NpyAppendIOError, PermissionError):
    """The operating system refused the access (EACCES, EPERM)."""


class NpyAppendFileExistsError(NpyAppendIOError, FileExistsError):
    """A file that was to be created exists already (EEXIST)."""


class NpyAppendIsADirectoryError(NpyAppendIOError, IsADirectoryError):
    """A path names a directory where a file was expected (EISDIR)."""


class NpyAppendNotADirectoryError(NpyAppendIOError, NotADirectoryError):
    """A path component is not a directory (ENOTDIR)."""


class NpyAppendInterruptedError(NpyAppendIOError, InterruptedError):
    """A system call was interrupted by a signal (EINTR)."""


class NpyAppendBlockingIOError(NpyAppendIOError, BlockingIOError):
    """An operation would block (EAGAIN)."""


class NpyAppendTimeoutError(NpyAppendIOError, TimeoutError):
    """An operation timed out (ETIMEDOUT)."""


class NpyAppendBrokenPipeError(NpyAppendIOError, BrokenPipeError):
    """A pipe or socket was closed at the other end (EPIPE)."""


class ClosedError(NpyAppendError, ValueError):
    """The appender (or drop-in array) was closed."""
