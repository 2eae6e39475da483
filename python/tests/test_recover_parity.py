"""``npy_append.recover`` against npy-append-array's ``recover`` on files
without a journal whose data does not match their header: cut short (a copy
that stopped early, a header written before its data) or with bytes past
the header's rows (a killed writer). Both must leave the same bytes, with
and without ``zerofill_incomplete``, for C- and Fortran-order files of
several dtypes."""

import os
import shutil

import numpy as np
import pytest

import npy_append

from conftest import import_upstream

upstream = import_upstream("test_recover_parity (the reference's recover)")
needs_upstream = pytest.mark.skipif(upstream is None, reason="npy-append-array is not installed")

DTYPES = ["u1", "<i4", "<f8", ">f4", "U3", "?", [("a", "<i4"), ("b", "<f8", (3,))]]
# (row shape, order): a Fortran-order file grows along its last axis.
LAYOUTS = [((), "C"), ((3,), "C"), ((2, 3), "C"), ((3,), "F"), ((2, 3), "F")]
ROWS = 7


def saved(path, dtype, row_shape, order):
    """A file numpy saved: ROWS rows of ``row_shape``, in ``order``."""
    dtype = np.dtype(dtype)
    n = ROWS * int(np.prod(row_shape, dtype=np.int64))
    raw = (np.arange(n * dtype.itemsize, dtype=np.uint64) * 37 + 11).astype(np.uint8)
    if dtype.kind == "b":
        arr = (raw[:n] % 2).astype(bool)
    elif dtype.kind == "U":
        arr = np.array([chr(0x61 + i % 26) * (i % 4) for i in range(n)], dtype)
    else:
        arr = raw.view(dtype)
    if order == "F":
        arr = np.asfortranarray(arr.reshape((*row_shape, ROWS), order="F"))
        assert arr.flags.f_contiguous and not arr.flags.c_contiguous
    else:
        arr = arr.reshape((ROWS, *row_shape))
    np.save(path, arr)
    with open(path, "rb") as f:
        head = f.read(header_len(path))
    assert (b"'fortran_order': True" in head) == (order == "F")
    return arr.dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))


def header_len(path):
    """Bytes before the data: magic, version, length field, header text."""
    with open(path, "rb") as f:
        prefix = f.read(12)
    if prefix[6] == 1:
        return 10 + int.from_bytes(prefix[8:10], "little")
    return 12 + int.from_bytes(prefix[8:12], "little")


def damaged_pair(tmp_path, dtype, row_shape, order, change):
    """The same damaged file twice (ours, theirs): saved, then ``change``
    (a byte count: negative cuts the end, positive appends data bytes)."""
    ours, theirs = str(tmp_path / "ours.npy"), str(tmp_path / "theirs.npy")
    row_bytes = saved(ours, dtype, row_shape, order)
    size = os.path.getsize(ours)
    if change < 0:
        os.truncate(ours, max(header_len(ours), size + change))
    else:
        with open(ours, "ab") as f:
            f.write(bytes((i * 53 + 7) % 256 for i in range(change)))
    shutil.copyfile(ours, theirs)
    return ours, theirs, row_bytes


def changes(row_bytes):
    """Byte counts that cut or extend a file of ROWS rows of ``row_bytes``:
    cut into the last row, cut whole rows, cut in the middle, cut every
    row, and the same past the end."""
    return sorted(
        {
            -1,
            -(row_bytes // 2 or 1),
            -row_bytes,
            -2 * row_bytes - 1,
            -(ROWS // 2) * row_bytes - row_bytes // 3,
            -(ROWS - 1) * row_bytes - 1,
            -ROWS * row_bytes,
            row_bytes + 1,
            2 * row_bytes,
            3 * row_bytes - 1,
        }
    )


def row_bytes_of(dtype, row_shape):
    return np.dtype(dtype).itemsize * int(np.prod(row_shape, dtype=np.int64))


@needs_upstream
@pytest.mark.parametrize("zerofill", [False, True], ids=["cut", "zerofill"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: f"{l[1]}{l[0]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_same_bytes_as_npy_append_array(tmp_path, dtype, layout, zerofill):
    row_shape, order = layout
    compared = 0
    for change in changes(row_bytes_of(dtype, row_shape)):
        case = tmp_path / f"change{change}"
        case.mkdir()
        ours, theirs, row_bytes = damaged_pair(case, dtype, row_shape, order, change)
        assert npy_append.recover(ours, zerofill_incomplete=zerofill) is True
        assert upstream.recover(theirs, zerofill_incomplete=zerofill) is True
        mine, ref = open(ours, "rb").read(), open(theirs, "rb").read()
        assert mine == ref, f"change {change:+} bytes (rows of {row_bytes} bytes): files differ"
        assert not os.path.exists(ours + ".journal")
        got = np.load(ours)
        assert got.dtype == np.dtype(dtype)
        compared += 1
    assert compared >= 4  # rows of one byte make fewer distinct changes


@needs_upstream
@pytest.mark.filterwarnings("ignore:Stored array in format 3.0")
def test_version_3_header_cut_short(tmp_path):
    """A version 3.0 (UTF-8) header, a field name outside latin-1, cut in
    its third row: both keep two rows, or three with the last zero-filled."""
    dtype = np.dtype([("\u03b1", "<i4"), ("b", "<i4")])
    rows = np.array([(1, 2), (3, 4), (5, 6), (7, 8)], dtype)
    for zerofill in (False, True):
        paths = [str(tmp_path / f"{who}{zerofill}.npy") for who in ("ours", "theirs")]
        for p in paths:
            with open(p, "wb") as f:
                np.lib.format.write_array(f, rows, version=(3, 0))
            os.truncate(p, os.path.getsize(p) - 12)
        npy_append.recover(paths[0], zerofill_incomplete=zerofill)
        upstream.recover(paths[1], zerofill_incomplete=zerofill)
        assert open(paths[0], "rb").read() == open(paths[1], "rb").read()
        got = np.load(paths[0])
        assert got.shape == ((3,) if zerofill else (2,))
        np.testing.assert_array_equal(got[:2], rows[:2])
        if zerofill:
            assert tuple(got[2]) == (5, 0)


def test_short_file_refused_when_opened_names_recover(npy):
    """Opening (not recovering) a file cut short changes nothing and says
    how to salvage it, without mentioning a journal it does not have."""
    np.save(npy, np.arange(12, dtype="<i4").reshape(4, 3))
    os.truncate(npy, os.path.getsize(npy) - 5)
    before = open(npy, "rb").read()
    for opener in (lambda: npy_append.NpyAppendArray(npy), lambda: npy_append.Appender.open_or_recover(npy)):
        with pytest.raises(npy_append.CorruptError) as info:
            opener()
        message = str(info.value)
        assert "npy_append.recover(path)" in message, message
        assert "zerofill_incomplete=True" in message, message
        assert "journal" not in message, message
        assert open(npy, "rb").read() == before


def test_short_file_policy_of_the_full_api(npy):
    np.save(npy, np.arange(12, dtype="<i4").reshape(4, 3))
    os.truncate(npy, os.path.getsize(npy) - 5)  # 3 rows and 7 bytes of the fourth
    with npy_append.Appender.open_or_recover(npy, short_file_policy="zero-fill") as w:
        assert len(w) == 4
    got = np.load(npy)
    np.testing.assert_array_equal(got[:3], np.arange(9).reshape(3, 3))
    assert got[3, 0] == 9 and got[3, 2] == 0
    with pytest.raises(npy_append.InvalidArgumentError, match="short_file_policy"):
        npy_append.Appender.open_or_recover(npy, short_file_policy="guess")


def test_journal_that_commits_missing_rows_is_not_overruled(npy):
    """With a journal whose commit the file no longer holds, recover()
    refuses and changes nothing, whatever zerofill_incomplete says."""
    w = npy_append.Appender.open_or_recover(npy, dtype="<f4", row_shape=(3,))
    w.append(np.ones((4, 3), "<f4"))
    w.commit()
    w.abandon()
    os.truncate(npy, os.path.getsize(npy) - 13)
    before = (open(npy, "rb").read(), open(npy + ".journal", "rb").read())
    for zerofill in (False, True):
        with pytest.raises(npy_append.CorruptError, match="committed data is missing"):
            npy_append.recover(npy, zerofill_incomplete=zerofill)
        assert (open(npy, "rb").read(), open(npy + ".journal", "rb").read()) == before
