"""Several processes: a writer killed with SIGKILL, two writers, a reader
beside a writer."""

import os
import signal
import time

import numpy as np
import pytest

import npy_append
from npy_append import Appender, NpyAppendArray, Reader

from conftest import spawn

ROW = 16  # values per row; row i holds i everywhere

APPENDER_CHILD = """
import sys
import numpy as np
from npy_append import Appender
w = Appender.open_or_recover(sys.argv[1], dtype="<i8", row_shape=(16,), durability="process")
i = len(w)
while True:
    w.append(np.full((1, 16), i, "<i8"))
    w.commit(cursor=str(i + 1).encode())
    i += 1
"""

DROPIN_CHILD = """
import sys
import numpy as np
from npy_append import NpyAppendArray
out = NpyAppendArray(sys.argv[1])
i = 0 if out.shape is None else out.shape[0]
while True:
    out.append(np.full((3, 16), i, "<i8") + np.arange(3, dtype="<i8")[:, None])
    i += 3
"""


def wait_rows(path, rows, child):
    """Waits until `path` has at least `rows` committed rows."""
    for _ in range(200):
        if os.path.exists(path):
            break
        assert child.poll() is None, child.stderr.read()
        time.sleep(0.01)
    r = Reader(path)
    for _ in range(2000):
        try:
            ok = r.wait_for_rows(rows, timeout=20.0)
            break
        except npy_append.WriterDiedError:
            # A killed writer's file, until `child` (a rerun, still
            # starting) takes it over.
            assert child.poll() is None, child.stderr.read()
            time.sleep(0.01)
    assert ok, child.stderr.read() if child.poll() is not None else "too slow"
    return r


def kill(child):
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL


def rows_are_indices(arr):
    np.testing.assert_array_equal(arr, np.repeat(np.arange(len(arr)), ROW).reshape(-1, ROW))


@pytest.mark.parametrize("round_", range(3))
def test_appender_killed_resumes_at_last_commit(npy, round_):
    child = spawn(APPENDER_CHILD, npy)
    wait_rows(npy, 200 + 100 * round_, child)
    kill(child)
    w = Appender.open_or_recover(npy)
    rows = len(w)
    assert rows >= 200 + 100 * round_
    assert w.report["found"] == "journal"
    assert w.cursor == str(rows).encode()  # the cursor of exactly the commit kept
    w.append(np.full((1, ROW), rows, "<i8"))
    w.close()
    data = np.load(npy)
    assert data.shape == (rows + 1, ROW)
    rows_are_indices(data)


def test_dropin_killed_then_rerun(npy):
    child = spawn(DROPIN_CHILD, npy)
    wait_rows(npy, 300, child)
    kill(child)
    # The same job, started again, continues where the killed one stopped.
    child = spawn(DROPIN_CHILD, npy)
    r = Reader(npy)
    before = len(r)
    assert before % 3 == 0  # each append() of 3 rows is atomic
    wait_rows(npy, before + 300, child)
    kill(child)
    with NpyAppendArray(npy) as out:
        rows = out.shape[0]
        assert rows % 3 == 0
    data = np.load(npy)
    assert data.shape == (rows, ROW)
    rows_are_indices(data)


HOLDER_CHILD = """
import sys, time
import numpy as np
from npy_append import Appender
w = Appender.open_or_recover(sys.argv[1], dtype="<i8")
w.append(np.arange(3, dtype="<i8"))
w.commit()
print("ready", flush=True)
sys.stdin = None
time.sleep(60)
"""


def test_two_processes_one_file(npy):
    child = spawn(HOLDER_CHILD, npy)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        with pytest.raises(npy_append.LockedError, match="another writer"):
            Appender.open_or_recover(npy)
        with pytest.raises(npy_append.LockedError):
            NpyAppendArray(npy)
        # The reader takes no lock and sees the committed rows.
        np.testing.assert_array_equal(Reader(npy).array(), [0, 1, 2])
    finally:
        kill(child)
    with NpyAppendArray(npy) as out:
        out.append(np.array([3], "<i8"))
    np.testing.assert_array_equal(np.load(npy), [0, 1, 2, 3])


WRITER_CHILD = """
import sys
import numpy as np
from npy_append import Appender
n = int(sys.argv[2])
with Appender.open_or_recover(sys.argv[1], dtype="<i8", row_shape=(16,), durability="process") as w:
    for i in range(0, n, 7):
        k = min(7, n - i)
        w.append(np.repeat(np.arange(i, i + k, dtype="<i8"), 16).reshape(k, 16))
        w.commit()
"""


def test_reader_during_writes(npy):
    total = 5000
    child = spawn(WRITER_CHILD, npy, total)
    r = wait_rows(npy, 1, child)
    seen = [len(r)]
    views = []
    while len(r) < total:
        r.wait_for_rows(len(r) + 1, timeout=20.0)
        a = r.array()
        assert len(a) % 7 == 0 or len(a) == total  # whole commits only
        rows_are_indices(a)
        seen.append(len(a))
        views.append(a)
    assert child.wait(timeout=60) == 0, child.stderr.read()
    assert seen == sorted(seen)
    for a in views:  # every view is still valid and unchanged
        rows_are_indices(a)
    rows_are_indices(np.load(npy))
    assert np.load(npy).shape == (total, ROW)
