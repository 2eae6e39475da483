"""Every reader tells an active writer from one that finished cleanly and
from one that died (here: a killed process), and wait_for_rows returns early
(finished) or raises WriterDiedError (died) when the rows cannot arrive."""

import signal
import time

import numpy as np
import pytest

from conftest import spawn
from npy_append import (
    Appender,
    AppendGroup,
    GroupReader,
    RaggedAppender,
    RaggedReader,
    Reader,
    WriterDiedError,
)
from npy_append import dataset

LONG = 60.0

# Opens the writer the argument names, commits 2 rows, says "ready", waits.
CHILD = """
import sys, time
import numpy as np
from npy_append import Appender, AppendGroup, RaggedAppender
kind, path = sys.argv[1], sys.argv[2]
if kind == "file":
    w = Appender.open_or_recover(path, dtype="<i8")
    w.append(np.arange(2, dtype="<i8"))
elif kind == "group":
    w = AppendGroup.open_or_recover(path, members={"a.npy": ("<i8", ())})
    w.append("a.npy", np.arange(2, dtype="<i8"))
else:
    w = RaggedAppender.open_or_recover(path, dtype="<i8")
    w.extend([np.arange(1, dtype="<i8"), np.arange(2, dtype="<i8")])
w.commit()
print("ready", flush=True)
time.sleep(120)
"""


def kill(child):
    child.send_signal(signal.SIGKILL)
    child.wait()


def quickly(call):
    start = time.monotonic()
    out = call()
    assert time.monotonic() - start < 10, "the wait did not return early"
    return out


@pytest.mark.parametrize("kind", ["file", "group", "ragged"])
def test_a_killed_writer_is_died_and_a_closed_one_finished(tmp_path, kind):
    path = tmp_path / ("f.npy" if kind == "file" else "g.group")
    child = spawn(CHILD, kind, path)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        if kind == "file":
            r = Reader(path)
            wait = lambda n: r.wait_for_rows(n, timeout=LONG)  # noqa: E731
        elif kind == "group":
            r = GroupReader(path)
            wait = lambda n: r.wait_for_rows("a.npy", n, timeout=LONG)  # noqa: E731
        else:
            r = RaggedReader(path)
            wait = lambda n: r.wait_for_rows(n, timeout=LONG)  # noqa: E731
        assert r.writer_state() == "active"
        assert wait(2)
        assert not r.wait_for_rows(*(("a.npy",) if kind == "group" else ()), 3, timeout=0.05)
    finally:
        kill(child)
    assert r.writer_state() == "died"
    with pytest.raises(WriterDiedError, match="stopped without closing"):
        quickly(lambda: wait(3))
    # The next writer recovers it; closed, it is finished.
    if kind == "file":
        Appender.open_or_recover(path).close()
    elif kind == "group":
        AppendGroup.open_or_recover(path).close()
    else:
        RaggedAppender.open_or_recover(path).close()
    assert r.writer_state() == "finished"
    assert not quickly(lambda: wait(3))
    assert wait(2)


def test_a_dataset_is_finished_once_finalized(tmp_path):
    root = tmp_path / "ds"
    with dataset.open_shard(root, "s0", {"id": "<i8"}) as w:
        w.append({"id": np.arange(2, dtype="<i8")})
        r = dataset.DatasetReader(root)
        assert r.writer_state() == "active"
        assert r.shard_states() == ["active"]
        w.finish()
    r.refresh()
    assert r.shard_states() == ["finished"]
    assert r.writer_state() == "active"  # not finalized: more may come
    assert not r.wait_for_rows(3, timeout=0.05)
    dataset.finalize(root)
    assert not quickly(lambda: r.wait_for_rows(3, timeout=LONG))
    assert r.writer_state() == "finished" and len(r) == 2
