"""Fortran-order files (grown along their last axis, as npy-append-array
grows them) and headers without room to grow (rewritten by the library's
atomic rewrite): against numpy and npy-append-array itself."""

import fcntl
import os
import signal
import struct
import time

import numpy as np
import pytest

import npy_append
from npy_append import Appender, NpyAppendArray, Reader

from conftest import import_upstream, spawn

upstream = import_upstream("test_fortran comparisons with npy-append-array")

needs_upstream = pytest.mark.skipif(upstream is None, reason="npy-append-array is not installed")


def slices(start, stop, lead=(2, 3), dtype="<i8"):
    """A Fortran-contiguous array of shape lead + (stop - start,) whose
    value at [..., k] tells k and its position within the slice."""
    k = np.arange(start, stop)
    index = np.indices(lead).reshape(len(lead), -1)
    within = np.ravel_multi_index(index, lead).reshape(lead)
    a = within[..., None] + 1000 * k
    return np.asfortranarray(a.astype(dtype))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def header_of(path):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        return np.lib.format.read_array_header_2_0(f)


def save_without_room(path, arr):
    """``np.save`` as numpy < 1.14 wrote it: a format 1.0 header whose text
    is padded only to a multiple of 16 bytes, so it has no room to grow the
    row count to 20 digits; the data in the array's order (Fortran for a
    Fortran-contiguous, not C-contiguous array, as np.save decides)."""
    d = np.lib.format.header_data_from_array_1_0(arr)
    text = "{" + "".join("'%s': %r, " % (key, d[key]) for key in sorted(d)) + "}"
    pad = -(10 + len(text) + 1) % 16
    header = (text + " " * pad + "\n").encode("latin1")
    order = "F" if d["fortran_order"] else "C"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
        f.write(arr.tobytes(order=order))
    np.testing.assert_array_equal(np.load(path), arr)  # a file numpy reads


# Appends after the first array: Fortran-contiguous, C-contiguous, a
# non-contiguous view, one slice, and an empty one; all with the leading
# axes of the first.
def later_arrays(lead, dtype):
    c = np.ascontiguousarray(slices(5, 9, lead, dtype))
    wide = slices(9, 15, lead, dtype)
    return [
        slices(2, 5, lead, dtype),
        c,
        wide[..., ::2],
        slices(15, 16, lead, dtype),
        slices(16, 16, lead, dtype),
    ]


@needs_upstream
@pytest.mark.parametrize("lead", [(2,), (3,), (2, 3), (4, 1, 2)], ids=str)
@pytest.mark.parametrize("dtype", ["<f8", ">i4", "u1", "U3", [("a", "<i4"), ("b", "<f8", (2,))]], ids=str)
def test_same_bytes_as_npy_append_array(tmp_path, lead, dtype):
    first = slices(0, 2, lead, "<i8").astype(dtype, order="F")
    rest = [a.astype(dtype, order="K") for a in later_arrays(lead, "<i8")]
    assert first.flags.f_contiguous and not first.flags.c_contiguous
    theirs, ours = str(tmp_path / "theirs.npy"), str(tmp_path / "ours.npy")
    with upstream.NpyAppendArray(theirs) as t, NpyAppendArray(ours) as o:
        for arr in [first, *rest]:
            t.append(arr)
            o.append(arr)
            assert o.shape == t.shape
            assert o.fortran_order is t.fortran_order is True
            assert o.dtype == t.dtype
    assert read(ours) == read(theirs)
    expected = np.concatenate([first, *rest], axis=-1)
    got = np.load(ours)
    assert got.shape == lead + (13,)
    assert got.flags.f_contiguous
    np.testing.assert_array_equal(got, expected)
    assert not os.path.exists(ours + ".journal")


@needs_upstream
@pytest.mark.parametrize("lead", [(3,), (2, 3)], ids=str)
def test_existing_numpy_file_same_as_npy_append_array(tmp_path, lead):
    theirs, ours = str(tmp_path / "theirs.npy"), str(tmp_path / "ours.npy")
    np.save(theirs, slices(0, 4, lead))
    np.save(ours, slices(0, 4, lead))
    t, o = upstream.NpyAppendArray(theirs), NpyAppendArray(ours)
    assert o.fortran_order is t.fortran_order is True
    assert o.shape == t.shape == lead + (4,)
    for arr in later_arrays(lead, "<i8"):
        t.append(arr)
        o.append(arr)
        # Each append is visible to numpy at once (a commit).
        assert np.load(ours, mmap_mode="r").shape == o.shape == t.shape
    t.close()
    o.close()
    assert read(ours) == read(theirs)
    expected = np.concatenate([slices(0, 4, lead), *later_arrays(lead, "<i8")], axis=-1)
    np.testing.assert_array_equal(np.load(ours), expected)


@needs_upstream
@pytest.mark.parametrize(
    "make",
    [
        lambda: slices(0, 3),  # Fortran-contiguous, not C: Fortran order
        lambda: np.ascontiguousarray(slices(0, 3)),  # C order
        lambda: np.arange(4.0),  # 1-D: both, C order
        lambda: np.asfortranarray(np.ones((3, 1))),  # both contiguous: C order
        lambda: np.ones((4, 6))[:, ::2],  # neither: C order
        lambda: np.asfortranarray(np.ones((4, 6)))[::2, :],  # neither: C order
    ],
    ids=["fortran", "c", "1d", "column", "strided-c", "strided-f"],
)
def test_new_file_order_follows_the_first_array(tmp_path, make):
    arr = make()
    theirs, ours, saved = (str(tmp_path / n) for n in ("theirs.npy", "ours.npy", "saved.npy"))
    with upstream.NpyAppendArray(theirs) as t:
        t.append(arr)
        order = t.fortran_order
    with NpyAppendArray(ours) as o:
        o.append(arr)
        assert o.fortran_order is order
    np.save(saved, arr)
    assert header_of(ours)[1] is header_of(saved)[1] is order
    assert read(ours) == read(theirs)
    np.testing.assert_array_equal(np.load(ours), arr)


def test_wrong_leading_axes_are_refused_and_nothing_appended(npy):
    np.save(npy, slices(0, 4))
    with NpyAppendArray(npy) as out:
        for bad in (slices(0, 2, (3, 2)), slices(0, 2, (2,)), slices(0, 2, (2, 3, 1)), np.zeros(6, "<i8")):
            with pytest.raises(npy_append.ShapeMismatchError, match="last axis"):
                out.append(bad)
        with pytest.raises(npy_append.DtypeMismatchError):
            out.append(slices(0, 1).astype("<f8"))
        assert out.shape == (2, 3, 4)
        out.append(slices(4, 5))
    np.testing.assert_array_equal(np.load(npy), slices(0, 5))
    if upstream is not None:  # npy-append-array refuses the same shapes
        with upstream.NpyAppendArray(npy) as t:
            with pytest.raises(ValueError, match="append axis"):
                t.append(slices(0, 2, (3, 2)))


def test_appender_on_a_fortran_file(npy):
    np.save(npy, slices(0, 3))
    w = Appender.open_or_recover(npy, durability="process")
    assert w.fortran_order is True
    assert w.row_shape == (2, 3) and len(w) == 3
    w.append(slices(3, 5))
    assert w.commit(cursor=b"five") == 5
    assert np.load(npy, mmap_mode="r").shape == (2, 3, 5)
    # Exactly-once: slices 3..5 are there already, 5..7 are new.
    assert w.append_at(3, slices(3, 7)) == 2
    with pytest.raises(npy_append.GapError):
        w.append_at(9, slices(9, 10))
    assert w.close() == 7
    np.testing.assert_array_equal(np.load(npy), slices(0, 7))


def test_appender_creates_fortran_files(tmp_path):
    by_option = str(tmp_path / "option.npy")
    w = Appender.open_or_recover(by_option, dtype="<i8", row_shape=(2, 3), fortran_order=True)
    assert w.fortran_order is True
    w.append(np.ascontiguousarray(slices(0, 2)))  # copied into Fortran order
    w.close()
    assert header_of(by_option)[1] is True
    np.testing.assert_array_equal(np.load(by_option), slices(0, 2))

    # Without fortran_order=True a new file is in C order, even when its
    # first array is Fortran-contiguous: its rows are the array's axis 0.
    inferred = str(tmp_path / "inferred.npy")
    w = Appender.open_or_recover(inferred)
    w.append(slices(0, 2))
    assert w.fortran_order is False and w.row_shape == (3, 2)
    w.close()
    assert header_of(inferred)[1] is False
    np.testing.assert_array_equal(np.load(inferred), slices(0, 2))

    # With a row shape given, the order is C unless asked for.
    c_order = str(tmp_path / "c.npy")
    w = Appender.open_or_recover(c_order, row_shape=(3,))
    w.append(slices(0, 2)[:, :, 0])
    assert w.fortran_order is False
    w.close()
    assert header_of(c_order)[1] is False


def test_a_given_dtype_creates_the_file_at_once(npy):
    # With a dtype and no row shape the file exists at once, 1-D: a first
    # array of more axes is a plain shape mismatch, and the file stays.
    w = Appender.open_or_recover(npy, dtype="<i8")
    assert np.load(npy).shape == (0,)
    with pytest.raises(npy_append.ShapeMismatchError, match=r"expected rows of shape \(\), found rows of shape \(3,\)"):
        w.append(np.ascontiguousarray(slices(0, 2)[0].T))
    with pytest.raises(npy_append.ShapeMismatchError):
        w.append(slices(0, 2))
    assert w.fortran_order is False
    w.append(np.arange(4, dtype="<i8"))
    w.close()
    np.testing.assert_array_equal(np.load(npy), np.arange(4))


def test_an_order_that_disagrees_with_the_file_is_refused_unchanged(npy):
    np.save(npy, slices(0, 3))
    before = read(npy)
    with pytest.raises(npy_append.ShapeMismatchError, match="Fortran order"):
        Appender.open_or_recover(npy, fortran_order=False)
    assert read(npy) == before
    assert not os.path.exists(npy + ".journal")
    Appender.open_or_recover(npy, fortran_order=True).close()
    assert read(npy) == before


def test_reader_views_fortran_files_as_numpy_does(npy):
    w = Appender.open_or_recover(npy, dtype="<i8", row_shape=(2, 3), fortran_order=True)
    w.commit()
    r = Reader(npy)
    assert r.fortran_order is True
    empty = r.array()
    assert empty.shape == (2, 3, 0) and r.shape == (2, 3, 0)
    w.append(slices(0, 4))
    w.commit()
    w.append(slices(4, 5))  # pending: not visible
    assert r.wait_for_rows(4, timeout=1.0)
    a = r.array()
    assert a.shape == r.shape == (2, 3, 4)
    assert a.flags.f_contiguous and not a.flags.writeable and not a.flags.owndata
    np.testing.assert_array_equal(a, slices(0, 4))
    w.close()
    r.refresh()
    b = r.array()
    np.testing.assert_array_equal(b, np.load(npy))
    np.testing.assert_array_equal(a, slices(0, 4))  # the old view stays valid
    # A numpy-written Fortran file of three axes.
    other = npy + ".3d.npy"
    arr = slices(0, 5, (2, 2, 3))
    np.save(other, arr)
    np.testing.assert_array_equal(Reader(other).array(), np.load(other))
    assert Reader(other).shape == (2, 2, 3, 5)


DROPIN_CHILD = """
import sys
import numpy as np
from npy_append import NpyAppendArray
from test_fortran import slices
out = NpyAppendArray(sys.argv[1])
i = 0 if out.shape is None else out.shape[-1]
while True:
    out.append(slices(i, i + 3))
    i += 3
"""

APPENDER_CHILD = """
import sys
import numpy as np
from npy_append import Appender
from test_fortran import slices
w = Appender.open_or_recover(sys.argv[1], dtype="<i8", row_shape=(2, 3), fortran_order=True,
                             durability="process")
i = len(w)
while True:
    w.append(slices(i, i + 1))
    w.commit(cursor=str(i + 1).encode())
    i += 1
"""


def run_until_killed(code, path, slices_at_least):
    env_dir = os.path.dirname(os.path.abspath(__file__))
    child = spawn("import sys; sys.path.insert(0, %r)\n" % env_dir + code.lstrip(), path)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(path):
            assert child.poll() is None, child.stderr.read()
            assert time.monotonic() < deadline, "the child did not create the file"
            time.sleep(0.01)
        while True:
            try:
                ok = Reader(path).wait_for_rows(slices_at_least, timeout=20.0)
                break
            except npy_append.WriterDiedError:
                # The killed writer of the previous round, until the child
                # (still starting) takes the file over.
                assert child.poll() is None, child.stderr.read()
                assert time.monotonic() < deadline, "the child did not take the file over"
                time.sleep(0.01)
        assert ok, child.stderr.read() if child.poll() is not None else "too slow"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("round_", range(2))
def test_killed_dropin_writer_of_a_fortran_file_resumes(npy, round_):
    run_until_killed(DROPIN_CHILD, npy, 100)
    if round_:
        run_until_killed(DROPIN_CHILD, npy, 300)  # resumes, killed again
    with NpyAppendArray(npy) as out:
        assert out.fortran_order is True
        n = out.shape[-1]
        assert n >= 100 and n % 3 == 0  # whole appends only
        out.append(slices(n, n + 2))
    np.testing.assert_array_equal(np.load(npy), slices(0, n + 2))


def test_killed_appender_of_a_fortran_file_resumes_at_its_cursor(npy):
    run_until_killed(APPENDER_CHILD, npy, 200)
    r = Reader(npy)
    seen = r.array()
    np.testing.assert_array_equal(seen, slices(0, seen.shape[-1]))  # committed slices only
    w = Appender.open_or_recover(npy)
    n = len(w)
    assert w.report["found"] == "journal"
    assert w.fortran_order is True and n >= seen.shape[-1]
    assert w.cursor == str(n).encode()
    w.append(slices(n, n + 1))
    w.close()
    np.testing.assert_array_equal(np.load(npy), slices(0, n + 1))


@needs_upstream
def test_recover_a_crashed_npy_append_array_fortran_file(tmp_path):
    """A killed npy-append-array writer leaves the header of the slices it
    had finished and the bytes of one more whole slice and a partial one:
    recover() keeps what npy-append-array's recover() keeps."""
    for zerofill in (False, True):
        files = [str(tmp_path / f"{name}-{zerofill}.npy") for name in ("theirs", "ours")]
        for path in files:
            np.save(path, slices(0, 3))
            with open(path, "ab") as f:
                f.write(slices(3, 4).tobytes(order="F"))
                f.write(slices(4, 5).tobytes(order="F")[:20])
        upstream.recover(files[0], zerofill_incomplete=zerofill)
        assert npy_append.recover(files[1], zerofill_incomplete=zerofill) is True
        assert read(files[1]) == read(files[0])
        got = np.load(files[1])
        assert got.shape == (2, 3, 5 if zerofill else 4)
        np.testing.assert_array_equal(got[..., :4], slices(0, 4))


@needs_upstream
def test_recover_a_fortran_file_shorter_than_its_header(tmp_path):
    """A Fortran-order file cut 20 bytes into its last slice: recover()
    keeps the two whole slices, or with zerofill_incomplete the third
    completed with zeros, as npy-append-array's recover() does."""
    for zerofill in (False, True):
        files = [str(tmp_path / f"{name}-{zerofill}.npy") for name in ("theirs", "ours")]
        for path in files:
            np.save(path, slices(0, 3))
            os.truncate(path, os.path.getsize(path) - 20)
        upstream.recover(files[0], zerofill_incomplete=zerofill)
        assert npy_append.recover(files[1], zerofill_incomplete=zerofill) is True
        assert read(files[1]) == read(files[0])
        got = np.load(files[1])
        assert got.shape == (2, 3, 3 if zerofill else 2)
        np.testing.assert_array_equal(got[..., :2], slices(0, 2))


# Headers without room to grow.

NO_ROOM_ARRAYS = {
    "c-1d": lambda: np.arange(5, dtype="<f4"),
    "c-2d": lambda: np.ascontiguousarray(slices(0, 3)).reshape(-1, 3),
    "fortran-3d": lambda: slices(0, 4),
}


@pytest.mark.parametrize("name", sorted(NO_ROOM_ARRAYS))
def test_ensure_appendable_rewrites_a_header_without_room(tmp_path, name):
    arr = NO_ROOM_ARRAYS[name]()
    path = str(tmp_path / "old.npy")
    save_without_room(path, arr)
    if upstream is not None:  # npy-append-array agrees the header has no room
        assert upstream.is_appendable(path) is False
    assert npy_append.is_appendable(path) is False
    assert npy_append.ensure_appendable(path, inplace=True) is True
    assert npy_append.is_appendable(path) is True
    if upstream is not None:
        assert upstream.is_appendable(path) is True
    # The same file np.save writes today: numpy's header, the same data.
    saved = str(tmp_path / "saved.npy")
    np.save(saved, arr)
    assert read(path) == read(saved)
    assert sorted(os.listdir(tmp_path)) == ["old.npy", "saved.npy"]  # no journal, no .rewrite
    assert npy_append.ensure_appendable(path) is True  # has room: untouched
    assert read(path) == read(saved)


def test_the_dropin_opens_a_header_without_room(npy):
    save_without_room(npy, slices(0, 3))
    with NpyAppendArray(npy) as out:
        assert out.shape == (2, 3, 3) and out.fortran_order is True
        out.append(slices(3, 4))
    np.testing.assert_array_equal(np.load(npy), slices(0, 4))
    assert npy_append.is_appendable(npy) is True


def test_a_refused_rewrite_leaves_the_file_unchanged(tmp_path):
    # Bytes past the header's data (a crashed writer of another tool): the
    # default policy refuses before any rewrite.
    tail = str(tmp_path / "tail.npy")
    save_without_room(tail, slices(0, 3))
    with open(tail, "ab") as f:
        f.write(b"\x01" * 30)
    before = read(tail)
    with pytest.raises(npy_append.TrailingBytesError):
        npy_append.ensure_appendable(tail)
    assert read(tail) == before
    # Another writer holds the lock.
    locked = str(tmp_path / "locked.npy")
    save_without_room(locked, slices(0, 3))
    before_locked = read(locked)
    with open(locked, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        with pytest.raises(npy_append.LockedError):
            npy_append.ensure_appendable(locked)
    assert read(locked) == before_locked
    # A 0-d array: its header is numpy's, so npy-append-array's rule calls
    # it appendable and ensure_appendable leaves it alone; appending to it
    # is refused when it is opened.
    scalar = str(tmp_path / "scalar.npy")
    np.save(scalar, np.float64(1.5))
    before_scalar = read(scalar)
    assert npy_append.is_appendable(scalar) is True
    if upstream is not None:
        assert upstream.is_appendable(scalar) is True
    assert npy_append.ensure_appendable(scalar) is True
    with pytest.raises(npy_append.UnsupportedError, match="0-d"):
        NpyAppendArray(scalar)
    assert read(scalar) == before_scalar
    assert sorted(os.listdir(tmp_path)) == ["locked.npy", "scalar.npy", "tail.npy"]
    # recover() handles both the tail and the header.
    assert npy_append.recover(tail) is True
    np.testing.assert_array_equal(np.load(tail), slices(0, 3))
    assert npy_append.is_appendable(tail) is True


def test_is_appendable_agrees_with_npy_append_array(tmp_path):
    cases = {}
    cases["c"] = str(tmp_path / "c.npy")
    np.save(cases["c"], np.ones((3, 2)))
    cases["fortran"] = str(tmp_path / "f.npy")
    np.save(cases["fortran"], slices(0, 2))
    cases["needs-recovery"] = str(tmp_path / "r.npy")
    np.save(cases["needs-recovery"], np.ones((3, 2)))
    with open(cases["needs-recovery"], "ab") as f:
        f.write(b"\0" * 12)
    cases["no-room"] = str(tmp_path / "old.npy")
    save_without_room(cases["no-room"], slices(0, 2))
    expected = {"c": True, "fortran": True, "needs-recovery": True, "no-room": False}
    for name, path in cases.items():
        assert npy_append.is_appendable(path) is expected[name], name
        if upstream is not None:
            assert upstream.is_appendable(path) is expected[name], name
    # A file open in a writer (its journal beside it) is appendable too.
    w = Appender.open_or_recover(cases["c"])
    assert npy_append.is_appendable(cases["c"]) is True
    w.close()
    missing = str(tmp_path / "missing.npy")
    with pytest.raises(FileNotFoundError):
        npy_append.is_appendable(missing)
    with pytest.raises(FileNotFoundError):
        npy_append.ensure_appendable(missing)
    if upstream is not None:
        with pytest.raises(FileNotFoundError):
            upstream.is_appendable(missing)
    assert not os.path.exists(missing)
