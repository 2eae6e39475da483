"""Sharded datasets across processes: partitions run through a process pool
whose workers are SIGKILLed at random points and rerun until done (every row
exactly once, complete partitions skipped), and readers in other processes
during a build (never an uncommitted row, counts never go down, pickled
readers in worker processes)."""

import os
import signal
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from npy_append import dataset as ds

from conftest import spawn

COLUMNS = {"id": ("<i8", ()), "feature": ("<f4", (4,))}
PARTS = 12
ROWS = 1500
BATCH = 125


def rows(part, start, stop):
    ids = np.arange(start, stop, dtype="<i8") + part * ROWS
    return {"id": ids, "feature": (ids[:, None] * 4 + np.arange(4)).astype("<f4")}


def shard_name(part):
    return f"part-{part[0]:03d}"


def work(part, shard):
    """Writes partition `part` from its committed rows on, replaying the
    last batch (compared and skipped); kills its own process at chosen
    points, once each (a marker file remembers)."""
    index, kill_dir = part
    start = max(0, len(shard) - BATCH)
    for b in range(start, ROWS, BATCH):
        shard.append_at(b, rows(index, b, b + BATCH))
        point = zlib.crc32(f"{index}:{b}".encode()) % 7
        if point in (0, 1):
            marker = os.path.join(kill_dir, f"{index}-{b}")
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                if point == 1:
                    shard.commit(cursor=str(b + BATCH).encode())
                os.kill(os.getpid(), signal.SIGKILL)
        shard.commit(cursor=str(b + BATCH).encode())


@pytest.mark.parametrize("durability", ["fsync", "process"])
def test_process_pool_with_killed_workers(tmp_path, durability):
    root = tmp_path / "ds"
    kill_dir = tmp_path / "kills"
    kill_dir.mkdir()
    parts = [(i, str(kill_dir)) for i in range(PARTS)]
    reports = []
    for run in range(200):
        complete_before = {
            p for p in parts if (s := ds.shard_status(root, shard_name(p))) and s.complete
        }
        existing_before = {p for p in parts if ds.shard_status(root, shard_name(p))}
        try:
            with ProcessPoolExecutor(2) as pool:
                report = ds.run_partitions(
                    pool, root, parts, work, columns=COLUMNS, shard_name=shard_name, durability=durability
                )
            failed = []
        except ds.PartitionsFailed as e:
            report, failed = e.report, [p for p, _ in e.failures]
        # Each run skips exactly the partitions complete before it and runs
        # (or fails) every other one; resumed ones had a shard already.
        assert set(report.skipped) == complete_before
        assert set(report.ran) | set(failed) == set(parts) - complete_before
        assert set(report.resumed) <= set(report.ran) & existing_before
        reports.append(report)
        if not failed:
            break
    else:
        pytest.fail("the partitions never finished")
    kills = len(os.listdir(kill_dir))
    print(f"process pool ({durability}): {kills} workers killed, {len(reports)} runs, "
          f"skipped per run {[len(r.skipped) for r in reports]}, "
          f"resumed per run {[len(r.resumed) for r in reports]}")
    assert kills >= 10
    assert any(r.skipped for r in reports) and any(r.resumed for r in reports)
    # A final run skips everything.
    with ProcessPoolExecutor(2) as pool:
        again = ds.run_partitions(pool, root, parts, work, shard_name=shard_name)
    assert (again.ran, len(again.skipped)) == ([], PARTS)
    m = ds.finalize(root)
    assert m["rows"] == PARTS * ROWS
    r = ds.DatasetReader(root)
    everything = r[:]
    np.testing.assert_array_equal(everything["id"], np.arange(PARTS * ROWS))  # each once, in order
    np.testing.assert_array_equal(everything["feature"], rows(0, 0, PARTS * ROWS)["feature"])
    for s in m["shards"]:
        assert np.load(root / s["name"] / "id.npy").shape == (s["rows"],)


WRITER = """
import os, sys, time
import numpy as np
from npy_append import dataset as ds
root, name, number, total, allowed_dir = sys.argv[1:6]
number, total = int(number), int(total)
columns = {"id": ("<i8", ()), "feature": ("<f4", (4,))}
w = ds.open_shard(root, name, columns, buffer_bytes=1)   # rows reach the file at once
allowed = os.path.join(allowed_dir, name)
step = 97
for start in range(0, total, step):
    stop = min(total, start + step)
    ids = np.arange(start, stop, dtype="<i8") + number * 1_000_000
    w.append_at(start, {"id": ids, "feature": (ids[:, None] * 4 + np.arange(4)).astype("<f4")})
    time.sleep(0.002)                     # appended, in the file, not committed
    with open(allowed + ".tmp", "w") as f:
        f.write(str(stop))
    os.replace(allowed + ".tmp", allowed)  # may be committed from now on
    w.commit()
w.finish()
"""

READER = """
import os, pickle, sys, time
import numpy as np
root, pickled, allowed_dir, total = sys.argv[1:5]
total = int(total)
with open(pickled, "rb") as f:
    r = pickle.load(f)                    # reopens its mappings here
last = {}
checks = 0
deadline = time.time() + 60
while time.time() < deadline:
    r.refresh()
    shown = {s.name: s.rows for s in r.shards}
    allowed = {}
    for name in shown:
        try:
            with open(os.path.join(allowed_dir, name)) as f:
                allowed[name] = int(f.read())
        except FileNotFoundError:
            allowed[name] = 0
    for name, n in shown.items():
        assert n >= last.get(name, 0), f"{name}: {n} rows after {last[name]}"
        assert n <= allowed[name], f"{name}: {n} rows shown, only {allowed[name]} committed"
    last = shown
    if len(r):
        # The rows shown are those written.
        idx = np.unique(np.linspace(0, len(r) - 1, 50).astype(np.int64))
        got = r[idx]
        np.testing.assert_array_equal(got["feature"], (got["id"][:, None] * 4 + np.arange(4)).astype("<f4"))
    checks += 1
    if len(r) == total and all(s.complete for s in r.shards):
        break
assert len(r) == total, (len(r), total)
print("ok", checks, os.getpid())
"""


def test_readers_in_other_processes_during_a_build(tmp_path):
    root = tmp_path / "ds"
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    ds.create(root, COLUMNS)
    per_writer = 3000
    # A reader made before any row, pickled for the reader processes.
    pickled = tmp_path / "reader.pickle"
    import pickle

    pickled.write_bytes(pickle.dumps(ds.DatasetReader(root)))
    readers = [spawn(READER, root, pickled, allowed, 2 * per_writer) for _ in range(2)]
    writers = [spawn(WRITER, root, f"w{i}", i, per_writer, allowed) for i in range(2)]
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    for r in readers:
        out, err = r.communicate(timeout=120)
        assert r.returncode == 0, err
        word, checks, pid = out.split()
        assert word == "ok" and int(pid) != os.getpid()
        assert int(checks) > 5, checks  # they looked during the build
