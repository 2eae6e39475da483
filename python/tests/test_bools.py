"""One rule for bool bytes other than 0 and 1, for every writer: refused at
append with InvalidArgumentError naming the dtype, nothing appended; numpy
views of a file holding such bytes (written by another program) show them
as they are."""

import os

import numpy as np
import pytest

import npy_append
from npy_append import (
    Appender,
    AppendGroup,
    GroupReader,
    NpyAppendArray,
    RaggedAppender,
    RaggedReader,
    Reader,
)
from npy_append import dataset

# A bool array holding the bytes 1, 2, 0: numpy shows the 2 as True.
BAD = np.frombuffer(b"\x01\x02\x00", dtype="?")


def refuses(call, *args):
    with pytest.raises(npy_append.InvalidArgumentError, match=r"byte 0x02, but a \|b1 \(bool\) value must be 0.*nothing was appended"):
        call(*args)


def test_appender(tmp_path):
    path = tmp_path / "b.npy"
    with Appender.open_or_recover(path, dtype="?") as w:
        refuses(w.append, BAD)
        refuses(w.append_commit, BAD)
        refuses(w.append_at, 0, BAD)
        assert w.pending_rows == 0
        w.append(np.array([True, False]))
    np.testing.assert_array_equal(np.load(path), [True, False])
    # A first append that infers the dtype: refused too.
    other = tmp_path / "c.npy"
    with Appender.open_or_recover(other) as w:
        refuses(w.append, BAD)
        w.append(np.array([False]))
    np.testing.assert_array_equal(np.load(other), [False])


def test_group(tmp_path):
    group = tmp_path / "g.group"
    members = {"a.npy": ("<u4", ()), "ok.npy": ("?", (3,))}
    with AppendGroup.open_or_recover(group, members=members) as g:
        g.append("a.npy", np.arange(1, dtype="<u4"))
        refuses(g.append, "ok.npy", BAD.reshape(1, 3))
        refuses(g.append_at, "ok.npy", 0, BAD.reshape(1, 3))
        assert g.pending_rows == {"a.npy": 1, "ok.npy": 0}
        g.append("ok.npy", np.array([[True, False, True]]))
    np.testing.assert_array_equal(GroupReader(group)["ok.npy"], [[True, False, True]])


def test_ragged(tmp_path):
    path = tmp_path / "r.group"
    with RaggedAppender.open_or_recover(path, dtype="?") as w:
        w.append(np.array([True]))
        refuses(w.append, BAD)
        refuses(w.append_batch, BAD, [1, 2])
        # extend checks every sequence before appending any.
        refuses(w.extend, [np.array([True, True]), BAD])
        w.append(np.array([False, True]))
    assert [s.tolist() for s in RaggedReader(path)] == [[True], [False, True]]


def test_shard(tmp_path):
    root = tmp_path / "ds"
    with dataset.open_shard(root, "s0", {"id": "<i8", "ok": "?"}) as w:
        refuses(w.append, {"id": np.arange(3, dtype="<i8"), "ok": BAD})
        refuses(w.append_at, 0, {"id": np.arange(3, dtype="<i8"), "ok": BAD})
        assert w.pending_rows == 0
        w.append({"id": np.arange(2, dtype="<i8"), "ok": np.array([True, False])})
    r = dataset.DatasetReader(root)
    assert len(r) == 2
    np.testing.assert_array_equal(r[0:2]["ok"], [True, False])


def test_dropin(tmp_path):
    path = tmp_path / "d.npy"
    with NpyAppendArray(path) as a:
        a.append(np.array([True, False]))
        refuses(a.append, BAD)
    np.testing.assert_array_equal(np.load(path), [True, False])


def test_readers_show_foreign_bytes_as_they_are(tmp_path):
    path = tmp_path / "foreign.npy"
    np.save(path, BAD)  # another program's file
    view = Reader(path).array()
    assert view.view(np.uint8).tolist() == [1, 2, 0]
    np.testing.assert_array_equal(np.load(path, mmap_mode="r").view(np.uint8), [1, 2, 0])
    # Appending to it takes 0 and 1 only and leaves its bytes as they are.
    with Appender.open_or_recover(path) as w:
        refuses(w.append, BAD)
        w.append(np.array([True]))
    assert np.load(path).view(np.uint8).tolist() == [1, 2, 0, 1]
    assert os.path.getsize(path) == 128 + 4
