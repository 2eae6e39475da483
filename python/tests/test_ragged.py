"""Ragged arrays: sequences appended one at a time, several at a time or
as a batch, committed together in values and offsets, read back without a
copy, recovered together after a kill, and loaded by numpy."""

import os
import random
import time

import numpy as np
import pytest

import npy_append
from npy_append import RaggedAppender, RaggedReader

from conftest import spawn
from test_processes import kill


def seq(i):
    """Sequence i: i % 7 tokens."""
    return (i * 10 + np.arange(i % 7)).astype("<u2")


def load_sequences(directory, values="values.npy", offsets="offsets.npy"):
    """The sequences as numpy reads them from the two files."""
    v = np.load(os.path.join(directory, values))
    o = np.load(os.path.join(directory, offsets))
    assert o.dtype == np.int64 and o[0] == 0 and o[-1] == len(v)
    assert np.all(np.diff(o) >= 0)
    return [v[o[i] : o[i + 1]] for i in range(len(o) - 1)]


@pytest.fixture
def ragged(tmp_path):
    """A path for a new ragged array's group journal."""
    return str(tmp_path / "tokens.group")


def test_round_trip_against_numpy(ragged, tmp_path):
    w = RaggedAppender.open_or_recover(ragged, dtype=np.uint16)
    assert len(w) == 0 and w.dtype == np.dtype("<u2") and w.row_shape == ()
    for i in range(10):
        w.append(seq(i))
    assert w.pending_sequences == 10 and len(w) == 0
    assert w.commit() == 10
    w.extend(seq(i) for i in range(10, 15))
    # A batch: every row one after another, and the rows of each sequence.
    batch = [seq(i) for i in range(15, 30)]
    w.append_batch(np.concatenate(batch), [len(s) for s in batch])
    assert w.commit(cursor=b"doc 30") == 30
    assert w.values_rows == sum(len(seq(i)) for i in range(30))
    assert w.close() == 30
    assert w.closed and w.close() is None
    got = load_sequences(tmp_path)
    assert len(got) == 30
    for i, s in enumerate(got):
        assert s.dtype == np.dtype("<u2")
        np.testing.assert_array_equal(s, seq(i), err_msg=str(i))

    r = RaggedReader(ragged)
    assert len(r) == 30 and r.cursor == b"doc 30"
    assert r.dtype == np.dtype("<u2") and r.row_shape == ()
    for i in range(30):
        np.testing.assert_array_equal(r[i], seq(i))
    np.testing.assert_array_equal(r[-1], seq(29))
    np.testing.assert_array_equal(r[np.int64(3)], seq(3))
    assert [s.tolist() for s in r[27:]] == [seq(i).tolist() for i in range(27, 30)]
    assert [s.tolist() for s in r[::-10]] == [seq(i).tolist() for i in (29, 19, 9)]
    assert [len(s) for s in r] == [len(seq(i)) for i in range(30)]
    np.testing.assert_array_equal(r.offsets(), np.load(tmp_path / "offsets.npy"))
    assert r.bounds(8) == (sum(len(seq(i)) for i in range(8)), sum(len(seq(i)) for i in range(9)))
    with pytest.raises(IndexError):
        r[30]
    with pytest.raises(IndexError):
        r[-31]
    # Zero-copy: sequences are read-only views of one mapping, adjacent.
    a, b = r[1], r[2]
    assert not a.flags.writeable
    assert np.shares_memory(a, r.values()) and np.shares_memory(b, r.values())
    assert a.__array_interface__["data"][0] + a.nbytes == b.__array_interface__["data"][0]


def test_rows_of_several_values_and_other_names(ragged, tmp_path):
    names = ("emb.npy", "emb_offsets.npy")
    with RaggedAppender.open_or_recover(ragged, dtype="<f4", row_shape=(3,), names=names) as w:
        w.append(np.arange(6, dtype="<f4").reshape(2, 3))
        w.append(np.zeros((0, 3), "<f4"))  # an empty sequence
        w.append(np.full((1, 3), 7, "<f4"))
        assert w.values_path == tmp_path / "emb.npy"
        assert w.offsets_path == tmp_path / "emb_offsets.npy"
    got = load_sequences(tmp_path, *names)
    assert [s.shape for s in got] == [(2, 3), (0, 3), (1, 3)]
    r = RaggedReader(ragged, names=names)
    np.testing.assert_array_equal(r[0], np.arange(6).reshape(2, 3))
    assert r[1].shape == (0, 3)
    np.testing.assert_array_equal(r[2], [[7, 7, 7]])
    with pytest.raises(npy_append.InvalidArgumentError):
        RaggedReader(ragged)  # no member values.npy


def test_mismatch_raises_and_appends_nothing(ragged, tmp_path):
    w = RaggedAppender.open_or_recover(ragged, dtype="<i4")
    w.append(np.array([1, 2], "<i4"))
    with pytest.raises(npy_append.DtypeMismatchError, match="no value is ever cast"):
        w.append(np.array([1, 2], "<i8"))
    with pytest.raises(npy_append.DtypeMismatchError):
        w.append([1, 2])
    with pytest.raises(npy_append.ShapeMismatchError):
        w.append(np.zeros((2, 2), "<i4"))
    with pytest.raises(npy_append.ShapeMismatchError):
        w.append(np.array(3, "<i4"))  # 0-d
    # One bad sequence among good ones: none is appended.
    with pytest.raises(npy_append.DtypeMismatchError):
        w.extend([np.array([3], "<i4"), np.array([4], "<u4"), np.array([5], "<i4")])
    # Lengths that do not add up to the rows given.
    with pytest.raises(npy_append.ShapeMismatchError, match=r"the 5 rows given.* adding up to 4"):
        w.append_batch(np.arange(5, dtype="<i4"), [2, 2])
    with pytest.raises(npy_append.ShapeMismatchError, match="2 lengths adding up to 2..64 or more"):
        w.append_batch(np.arange(2, dtype="<i4"), [2**63, 2**63 + 2])
    assert w.pending_sequences == 1
    # Not poisoned.
    w.append(np.array([3], "<i4"))
    assert w.close() == 2
    got = load_sequences(tmp_path)
    assert [s.tolist() for s in got] == [[1, 2], [3]]


def test_values_in_place_or_copied(ragged, tmp_path):
    with RaggedAppender.open_or_recover(ragged, dtype="<u4") as w:
        buf = np.arange(9, dtype="<u4").tobytes()
        unaligned = np.frombuffer(b"\0" + buf, dtype="<u4", offset=1)
        assert not unaligned.flags.aligned
        w.append(unaligned)  # read as bytes in place
        w.append(np.arange(10, dtype="<u4")[::3])  # not contiguous: copied
    assert [s.tolist() for s in load_sequences(tmp_path)] == [list(range(9)), [0, 3, 6, 9]]


def test_bools_must_be_zero_or_one(ragged, tmp_path):
    with RaggedAppender.open_or_recover(ragged, dtype="?") as w:
        with pytest.raises(npy_append.InvalidArgumentError, match="bool"):
            w.append(np.frombuffer(b"\x00\x02", dtype="?"))
        w.append(np.array([True, False]))
    assert [s.tolist() for s in load_sequences(tmp_path)] == [[True, False]]


REC = np.dtype([("t", "<f2"), ("tag", "S3"), ("n", ">u4")])

# Value dtypes without a native Rust element type, each with a row shape.
ANY_DTYPES = [("<f2", ()), (">i4", ()), (REC, ()), ("U3", ()), (">c8", (2,))]


def values_of(dtype, row_shape, i):
    """Sequence i of values of `dtype`: i % 5 rows of `row_shape`, every
    byte of each value in use where the dtype allows."""
    dtype = np.dtype(dtype)
    n = i % 5
    k = np.arange(n * int(np.prod(row_shape, dtype=np.int64))).reshape((n,) + row_shape) + 10 * i
    if dtype.names:
        out = np.zeros(k.shape, dtype)
        out["t"], out["tag"], out["n"] = k / 8, [b"s%02d" % (v % 100) for v in k.ravel()], k * 70001 + 3
        return out
    if dtype.kind == "U":
        return np.array(["\u00e9%d" % (v % 100) for v in k.ravel()], dtype).reshape(k.shape)
    if dtype.kind == "c":
        return (k * 1.5 - 1j * k).astype(dtype)
    if dtype.kind == "f":
        return (k / 8 - 3).astype(dtype)
    return (k * 70001 - 123456).astype(dtype)


def unaligned(arr):
    """A copy of `arr` at an odd address (not aligned for its values)."""
    raw = np.frombuffer(b"\0" + arr.tobytes(), dtype=np.uint8, offset=1)
    out = raw.view(arr.dtype).reshape(arr.shape)
    assert out.ctypes.data % 2 == 1
    return out


@pytest.mark.parametrize("dtype,row_shape", ANY_DTYPES, ids=lambda v: str(v))
def test_values_of_any_dtype_round_trip(ragged, tmp_path, dtype, row_shape):
    dtype = np.dtype(dtype)
    seqs = [values_of(dtype, row_shape, i) for i in range(12)]
    with RaggedAppender.open_or_recover(ragged, dtype=dtype, row_shape=row_shape) as w:
        assert w.dtype == dtype and w.row_shape == row_shape
        w.append(seqs[0])
        w.append(unaligned(seqs[1]))  # read as bytes, wherever they are
        w.extend(seqs[2:5])
        w.commit()
        # np.concatenate gives the native byte order unless told the dtype.
        batch = np.concatenate(seqs[5:9], dtype=dtype)
        assert batch.dtype == dtype
        w.append_batch(batch, [len(s) for s in seqs[5:9]])
    # Reopened without a dtype: the array's own, not a native stand-in.
    with RaggedAppender.open_or_recover(ragged) as w:
        assert w.dtype == dtype and w.row_shape == row_shape and len(w) == 9
        w.extend(seqs[9:])
    values = np.load(tmp_path / "values.npy")
    offsets = np.load(tmp_path / "offsets.npy")
    assert values.dtype == dtype
    np.testing.assert_array_equal(values, np.concatenate(seqs))
    np.testing.assert_array_equal(offsets, np.cumsum([0] + [len(s) for s in seqs]))
    assert values.tobytes() == b"".join(s.tobytes() for s in seqs)

    r = RaggedReader(ragged)
    assert r.dtype == dtype and r.row_shape == row_shape and len(r) == len(seqs)
    assert r.values().dtype == dtype
    assert r.values().tobytes() == values.tobytes()
    np.testing.assert_array_equal(r.offsets(), offsets)
    for i, s in enumerate(seqs):
        assert r[i].dtype == dtype and r[i].shape == s.shape, i
        np.testing.assert_array_equal(r[i], s, err_msg=str(i))
    assert np.shares_memory(r[3], r.values())


def test_dtype_mismatch_raises_and_appends_nothing(ragged, tmp_path):
    w = RaggedAppender.open_or_recover(ragged, dtype="<f2")
    w.append(np.array([1.5, 2], "<f2"))
    for wrong in [np.array([1.5], "<f4"), np.array([1.5], ">f2"), np.array([1], "<i2")]:
        with pytest.raises(npy_append.DtypeMismatchError, match="no value is ever cast"):
            w.append(wrong)
    with pytest.raises(npy_append.DtypeMismatchError):
        w.append_batch(np.ones(3, "<f4"), [3])
    assert w.pending_sequences == 1
    w.close()
    other = str(tmp_path / "be" / "tokens.group")
    os.mkdir(os.path.dirname(other))
    with RaggedAppender.open_or_recover(other, dtype=">i4") as w:
        with pytest.raises(npy_append.DtypeMismatchError):
            w.append(np.array([7, 8], "<i4"))  # same values, other byte order
        with pytest.raises(npy_append.DtypeMismatchError):
            w.extend([np.array([7], ">i4"), np.array([8], "<i4")])
        with pytest.raises(npy_append.DtypeMismatchError):
            w.append(np.array(["ab"], "U3"))
        assert w.pending_sequences == 0
    with pytest.raises(npy_append.DtypeMismatchError):
        RaggedAppender.open_or_recover(other, dtype="<i4")
    assert [s.tolist() for s in load_sequences(tmp_path)] == [[1.5, 2.0]]
    assert load_sequences(os.path.dirname(other)) == []
    assert np.load(os.path.join(os.path.dirname(other), "values.npy")).dtype == np.dtype(">i4")

    # A structured or string file refuses another layout of the same fields.
    strings = str(tmp_path / "s" / "tokens.group")
    os.mkdir(os.path.dirname(strings))
    with RaggedAppender.open_or_recover(strings, dtype=REC) as w:
        swapped = np.dtype([("t", "<f2"), ("tag", "S3"), ("n", "<u4")])
        with pytest.raises(npy_append.DtypeMismatchError):
            w.append(np.zeros(2, swapped))
        w.append(np.zeros(2, REC))
    assert np.load(os.path.join(os.path.dirname(strings), "values.npy")).dtype == REC


def test_dtypes_a_file_cannot_hold_create_nothing(ragged, tmp_path):
    with pytest.raises(npy_append.UnsupportedError, match="object"):
        RaggedAppender.open_or_recover(ragged, dtype=object)
    with pytest.raises(npy_append.UnsupportedError, match="zero bytes"):
        RaggedAppender.open_or_recover(ragged, dtype="<i4", row_shape=(0,))
    assert os.listdir(tmp_path) == []


def test_reopen_without_dtype_and_checked_dtype(ragged, tmp_path):
    with pytest.raises(npy_append.InvalidArgumentError, match="give the dtype"):
        RaggedAppender.open_or_recover(ragged)
    with RaggedAppender.open_or_recover(ragged, dtype="<f8", row_shape=2) as w:
        w.append(np.ones((3, 2)))
    with RaggedAppender.open_or_recover(ragged) as w:
        assert w.dtype == np.dtype("<f8") and w.row_shape == (2,) and len(w) == 1
        w.append(np.zeros((1, 2)))
    with RaggedAppender.open_or_recover(ragged, dtype="<f8") as w:
        assert w.row_shape == (2,)
    with pytest.raises(npy_append.DtypeMismatchError):
        RaggedAppender.open_or_recover(ragged, dtype="<f4", row_shape=(2,))
    with pytest.raises(npy_append.DtypeMismatchError):
        RaggedAppender.open_or_recover(ragged, dtype="<i8")
    with pytest.raises(npy_append.ShapeMismatchError):
        RaggedAppender.open_or_recover(ragged, dtype="<f8", row_shape=(3,))
    assert [s.shape for s in load_sequences(tmp_path)] == [(3, 2), (1, 2)]


def test_context_manager_exception_keeps_the_last_commit(ragged, tmp_path):
    with pytest.raises(RuntimeError):
        with RaggedAppender.open_or_recover(ragged, dtype="<u2") as w:
            w.append(seq(3))
            w.commit(cursor=b"1")
            w.append(seq(4))
            raise RuntimeError("job failed")
    assert w.closed
    with RaggedAppender.open_or_recover(ragged, dtype="<u2") as w:
        assert len(w) == 1 and w.cursor == b"1" and w.pending_sequences == 0
    assert [s.tolist() for s in load_sequences(tmp_path)] == [seq(3).tolist()]


HOLDER_CHILD = """
import sys, time
import numpy as np
from npy_append import RaggedAppender
w = RaggedAppender.open_or_recover(sys.argv[1], dtype="<u2")
w.append(np.array([5, 6], "<u2"))
w.commit()
print("ready", flush=True)
time.sleep(60)
"""


def test_second_writer_raises_locked(ragged):
    child = spawn(HOLDER_CHILD, ragged)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        with pytest.raises(npy_append.LockedError):
            RaggedAppender.open_or_recover(ragged, dtype="<u2")
        with pytest.raises(npy_append.GroupMemberError):
            npy_append.Appender.open_or_recover(os.path.join(os.path.dirname(ragged), "values.npy"))
        np.testing.assert_array_equal(RaggedReader(ragged)[0], [5, 6])
    finally:
        kill(child)
    with RaggedAppender.open_or_recover(ragged, dtype="<u2", lock_timeout=10.0) as w:
        assert len(w) == 1


# Commits batches of 3 sequences with the cursor = sequences committed;
# after each commit returns, prints "acked n".
KILLED_CHILD = """
import os, sys
import numpy as np
from npy_append import RaggedAppender
w = RaggedAppender.open_or_recover(sys.argv[1], dtype="<u2")
i = len(w)
assert w.cursor == (str(i).encode() if i else b"")
while True:
    w.extend([(k * 10 + np.arange(k % 7)).astype("<u2") for k in range(i, i + 3)])
    i += 3
    w.commit(cursor=str(i).encode())
    # One write per line: a kill never leaves half a line.
    os.write(1, f"acked {i}\\n".encode())
"""


def test_killed_writer_keeps_values_and_offsets_in_step(ragged, tmp_path):
    rng = random.Random(7)
    for round_ in range(5):
        child = spawn(KILLED_CHILD, ragged)
        acked = 0
        for _ in range(30 + 20 * round_):
            line = child.stdout.readline()
            assert line.startswith("acked"), child.stderr.read()
            acked = int(line.split()[1])
        # At a random point of a later commit, not just after an acknowledgement.
        time.sleep(rng.uniform(0, 0.02))
        kill(child)
        for line in child.stdout.read().splitlines():
            acked = int(line.split()[1])
        w = RaggedAppender.open_or_recover(ragged, dtype="<u2")
        n = len(w)
        assert n in (acked, acked + 3), (n, acked)
        assert w.cursor == str(n).encode()
        assert w.values_rows == sum(len(seq(i)) for i in range(n))
        w.close()
        got = load_sequences(tmp_path)
        assert len(got) == n
        for i, s in enumerate(got):
            np.testing.assert_array_equal(s, seq(i), err_msg=str(i))


WRITER_CHILD = """
import sys
import numpy as np
from npy_append import RaggedAppender
n = int(sys.argv[2])
with RaggedAppender.open_or_recover(sys.argv[1], dtype="<u2") as w:
    print("open", flush=True)
    for i in range(0, n, 4):
        w.extend([(k * 10 + np.arange(k % 7)).astype("<u2") for k in range(i, i + 4)])
        w.commit()
"""


def test_reader_during_writes_sees_whole_commits(ragged):
    total = 2000
    child = spawn(WRITER_CHILD, ragged, total)
    assert child.stdout.readline().strip() == "open", child.stderr.read()
    r = RaggedReader(ragged)
    seen, views = [], []
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, child.stderr.read() if child.poll() is not None else "too slow"
        n = len(r)
        assert n % 4 == 0  # whole commits only
        assert len(r.offsets()) == n + 1
        for i in range(max(0, n - 8), n):
            np.testing.assert_array_equal(r[i], seq(i))
        seen.append(n)
        if n:
            views.append((n - 1, r[n - 1]))
        if n == total:
            break
        r.refresh()
    assert child.wait(timeout=60) == 0, child.stderr.read()
    assert seen == sorted(seen)
    assert len(set(seen)) > 2, seen
    for i, v in views:  # every view is still valid and unchanged
        np.testing.assert_array_equal(v, seq(i))
    assert [s.tolist() for s in RaggedReader(ragged)] == [seq(i).tolist() for i in range(total)]
