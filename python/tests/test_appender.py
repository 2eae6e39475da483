"""The full API: Appender and Reader in one process."""

import gc
import os

import numpy as np
import pytest

import npy_append
from npy_append import Appender, Reader


def test_append_commit_close(npy):
    w = Appender.open_or_recover(npy, dtype="<f4", row_shape=(2,))
    assert w.report["found"] == "no file"
    w.append(np.zeros((3, 2), "<f4"))
    assert len(w) == 0 and w.pending_rows == 3
    assert w.commit() == 3
    assert len(w) == 3 and w.pending_rows == 0
    assert w.close() == 3
    assert w.closed
    with pytest.raises(npy_append.ClosedError):
        len(w)
    assert np.load(npy).shape == (3, 2)


def test_dtype_and_row_shape_from_first_append(npy):
    w = Appender.open_or_recover(npy)
    assert w.dtype is None
    w.append(np.ones((2, 4, 5), ">i2"))
    assert w.dtype == np.dtype(">i2")
    assert w.row_shape == (4, 5)
    w.close()
    assert np.load(npy).dtype == np.dtype(">i2")


def test_given_dtype_is_checked_on_first_append(npy):
    w = Appender.open_or_recover(npy, dtype="<u2")
    with pytest.raises(npy_append.DtypeMismatchError):
        w.append(np.ones(3, "<i2"))
    w.append(np.ones(3, "<u2"))
    w.close()


def test_no_cast_and_no_guess(npy):
    with Appender.open_or_recover(npy, dtype="<f8") as w:
        with pytest.raises(TypeError, match="no value is ever cast"):
            w.append(np.ones(2, "<f4"))
        with pytest.raises(npy_append.DtypeMismatchError, match="numpy array"):
            w.append([1.0, 2.0])
        with pytest.raises(npy_append.ShapeMismatchError):
            w.append(np.array(1.0))
        w.append(np.ones(2, "<f8"))
    np.testing.assert_array_equal(np.load(npy), [1.0, 1.0])


def test_mismatch_does_not_poison(npy):
    with Appender.open_or_recover(npy, dtype="<i4", row_shape=(3,)) as w:
        with pytest.raises(npy_append.ShapeMismatchError):
            w.append(np.ones((1, 4), "<i4"))
        w.append(np.ones((1, 3), "<i4"))
    assert np.load(npy).shape == (1, 3)


def test_abandon_keeps_last_commit_and_cursor(npy):
    w = Appender.open_or_recover(npy, durability="process")
    w.append(np.arange(5, dtype="<i8"))
    w.commit(cursor=b"line 5")
    w.append(np.arange(5, 8, dtype="<i8"))
    w.abandon()  # as a crash: the last three rows were never committed
    w = Appender.open_or_recover(npy)
    assert w.report["found"] == "journal"
    assert len(w) == 5
    assert w.cursor == b"line 5"
    w.close()
    np.testing.assert_array_equal(np.load(npy), np.arange(5))


def test_context_manager_exception_drops_pending(npy):
    with pytest.raises(RuntimeError):
        with Appender.open_or_recover(npy) as w:
            w.append(np.arange(3, dtype="<i4"))
            w.commit()
            w.append(np.arange(3, dtype="<i4"))
            raise RuntimeError("job failed")
    assert w.closed
    with Appender.open_or_recover(npy) as w:
        assert len(w) == 3


def test_commit_every(npy):
    with Appender.open_or_recover(npy, dtype="<u1", commit_every=4) as w:
        for i in range(10):
            w.append(np.array([i], "<u1"))
        assert len(w) == 8 and w.pending_rows == 2
    with pytest.raises(npy_append.InvalidArgumentError):
        Appender.open_or_recover(npy, commit_every=0)


def test_append_at_is_exactly_once(npy):
    data = np.arange(10, dtype="<i4")
    with Appender.open_or_recover(npy) as w:
        assert w.append_at(0, data[:6]) == 6
        assert w.append_at(4, data[4:10]) == 4  # rows 4, 5 are skipped
        with pytest.raises(npy_append.GapError):
            w.append_at(12, data[:1])
        assert w.append_at(10, data[:0]) == 0
    np.testing.assert_array_equal(np.load(npy), data)


def test_bad_options(npy):
    with pytest.raises(npy_append.InvalidArgumentError, match="durability"):
        Appender.open_or_recover(npy, durability="sometimes")
    with pytest.raises(npy_append.UnsupportedError, match="object"):
        Appender.open_or_recover(npy, dtype=object)


def test_trailing_bytes_policy(npy):
    np.save(npy, np.arange(4, dtype="<i4"))
    with open(npy, "ab") as f:
        f.write(b"\x01\x00\x00\x00\x02\x00")
    with pytest.raises(npy_append.TrailingBytesError):
        Appender.open_or_recover(npy)
    w = Appender.open_or_recover(npy, tail_policy="adopt")
    assert len(w) == 5 and w.report["adopted_rows"] == 1
    w.close()
    np.testing.assert_array_equal(np.load(npy), [0, 1, 2, 3, 1])


def test_locked_in_one_process(npy):
    w = Appender.open_or_recover(npy, dtype="<i4")
    w.append(np.ones(1, "<i4"))
    with pytest.raises(npy_append.LockedError, match="lock is held"):
        Appender.open_or_recover(npy)
    w.close()


def test_lock_timeout_waits_then_fails(npy):
    import time

    w = Appender.open_or_recover(npy, dtype="<i4")
    w.append(np.ones(1, "<i4"))
    start = time.monotonic()
    with pytest.raises(npy_append.LockedError):
        Appender.open_or_recover(npy, lock_timeout=0.3)
    assert time.monotonic() - start >= 0.25
    w.close()
    Appender.open_or_recover(npy, lock_timeout=0.3).close()


def test_reader_views(npy):
    w = Appender.open_or_recover(npy, dtype="<f8", row_shape=(3,), durability="process")
    w.append(np.ones((2, 3)))
    w.commit()
    r = Reader(npy)
    assert len(r) == 2 and r.shape == (2, 3) and r.dtype == np.dtype("<f8")
    a = r.array()
    assert not a.flags.writeable
    assert np.shares_memory(a, r.array())  # a view of one mapping, no copy
    w.append(np.full((1, 3), 2.0))
    assert not r.refresh()  # not committed yet
    w.commit()
    assert r.refresh()
    b = r.array()
    assert b.shape == (3, 3)
    np.testing.assert_array_equal(b[2], [2, 2, 2])
    assert a.shape == (2, 3)  # the old view is unchanged and valid
    del r
    gc.collect()
    np.testing.assert_array_equal(a, np.ones((2, 3)))
    np.testing.assert_array_equal(b[:2], a)
    w.close()


def test_reader_of_empty_and_structured(npy):
    dt = np.dtype([("a", "<i4"), ("b", "<f8", (3,))])
    w = Appender.open_or_recover(npy, dtype=dt)
    w.commit()
    r = Reader(npy)
    assert r.array().shape == (0,) and r.array().dtype == dt
    x = np.zeros(4, dt)
    x["a"] = [1, 2, 3, 4]
    w.append(x)
    w.commit()
    assert r.wait_for_rows(4, timeout=1.0)
    np.testing.assert_array_equal(r.array()["a"], [1, 2, 3, 4])
    assert not r.wait_for_rows(5, timeout=0.05)
    w.close()


def test_help_is_useful():
    import pydoc

    text = pydoc.render_doc(Appender, renderer=pydoc.plaintext)
    for word in ("open_or_recover", "durability", "commit_every", "append_at", "cursor", "exception"):
        assert word in text, word
    text = pydoc.render_doc(Reader, renderer=pydoc.plaintext)
    assert "zero-copy" in text and "wait_for_rows" in text
    assert "LockedError" in npy_append._errors.__doc__


@pytest.mark.parametrize("given", [{}, {"row_shape": (384,)}, {"dtype": "<f4", "row_shape": (384,)}], ids=["inferred", "row-shape", "given"])
def test_arrays_are_appended_as_their_logical_rows_whatever_their_memory_order(npy, given):
    """A transposed view (Fortran-contiguous) first, then a C array: a new
    file is C order unless fortran_order=True, and each array's rows are
    appended as numpy indexes them (copied when not C-contiguous)."""
    rng = np.random.default_rng(7)
    first = rng.random((384, 1000)).astype(np.float32).T  # 1000 rows of 384, F-contiguous
    assert first.flags.f_contiguous and not first.flags.c_contiguous
    second = np.ones((1000, 384), np.float32)
    third = rng.random((384, 5)).astype(np.float32)[:, ::2].T  # neither contiguous
    w = Appender.open_or_recover(npy, **given)
    assert w.fortran_order is False
    w.append(first)
    assert w.fortran_order is False and w.row_shape == (384,)
    w.append(second)
    w.append(third)
    w.close()
    got = np.load(npy)
    assert got.shape == (2003, 384) and not np.isfortran(got)
    np.testing.assert_array_equal(got, np.concatenate([first, second, third]))


def test_row_shape_may_be_one_int_as_numpy_shapes_may(npy):
    w = Appender.open_or_recover(npy, dtype="<f4", row_shape=384)
    assert w.row_shape == (384,)
    w.append(np.zeros((2, 384), "<f4"))
    w.close()
    assert np.load(npy).shape == (2, 384)
    with pytest.raises(npy_append.InvalidArgumentError, match="row shape"):
        Appender.open_or_recover(npy, row_shape="384")


@pytest.mark.parametrize(
    "cursor",
    [b"line 3", bytearray(b"line 3"), memoryview(b"xline 3")[1:], np.frombuffer(b"line 3", np.uint8)],
    ids=["bytes", "bytearray", "memoryview", "numpy"],
)
def test_a_cursor_may_be_any_bytes_like_object(tmp_path, cursor):
    w = Appender.open_or_recover(tmp_path / "a.npy", dtype="<i4")
    w.append(np.arange(3, dtype="<i4"))
    assert w.commit(cursor=cursor) == 3
    assert w.cursor == b"line 3"
    w.abandon()
    assert Appender.open_or_recover(tmp_path / "a.npy").cursor == b"line 3"
    g = npy_append.AppendGroup.open_or_recover(tmp_path / "g.group", members={"m.npy": "<i4"})
    assert g.commit(cursor=cursor) == {"m.npy": 0} and g.cursor == b"line 3"
    g.close()
    r = npy_append.RaggedAppender.open_or_recover(tmp_path / "r.group", dtype="<i4")
    assert r.commit(cursor=cursor) == 0 and r.cursor == b"line 3"
    r.close()


def test_a_str_cursor_says_to_encode_it(tmp_path):
    w = Appender.open_or_recover(tmp_path / "a.npy", dtype="<i4")
    g = npy_append.AppendGroup.open_or_recover(tmp_path / "g.group", members={"m.npy": "<i4"})
    r = npy_append.RaggedAppender.open_or_recover(tmp_path / "r.group", dtype="<i4")
    for writer in (w, g, r):
        with pytest.raises(TypeError, match=r"encode\(\)"):
            writer.commit(cursor="3")
        with pytest.raises(TypeError, match="bytes-like"):
            writer.commit(cursor=3)
        assert writer.cursor == b""
        writer.close()
