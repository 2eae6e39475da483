"""Sharded datasets on Ray (a local cluster of 2 CPUs): the Ray Data sink
with worker processes SIGKILLed mid-write, failed writes that publish no
manifest, and the partition helper on Ray tasks with the driver's process
group SIGKILLed and rerun.

Ray is optional for the package. The test command installs it and sets
NPY_APPEND_RAY_REQUIRED=1, under which its absence is a failure; elsewhere
(the wheel's virtualenvs, a developer's) these tests print a SKIP line."""

import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import npy_append
from npy_append import dataset as ds

try:
    import ray
except ImportError:  # the test command installs it
    if os.environ.get("NPY_APPEND_RAY_REQUIRED") == "1":
        raise
    print("SKIP test_ray.py: ray is not installed")
    pytest.skip("ray is not installed", allow_module_level=True)

from npy_append.ray import NpyDatasink  # noqa: E402

N = 1_000_000
READ_BLOCKS = 8
BATCH = 25_000
PER_BLOCK = N // READ_BLOCKS


@pytest.fixture(scope="module")
def cluster():
    # Ray's workers cannot import this test module: its functions travel by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    # Blocks of about one batch (Ray's default coalesces up to 128 MiB), so
    # that a write task commits several blocks and a kill lands mid-write.
    ctx.target_max_block_size = 512 * 1024
    yield
    ray.shutdown()


def features(ids):
    """The feature column: computed from the id, 4 values per row."""
    return np.stack([ids * 0.5, ids % 7, -ids, ids // 3], axis=1).astype("<f4")


def make_featurize(kill_dir, root, kill_blocks, replace=None):
    """The map function: features from ids. On the first attempt of the
    third batch of each read block in `kill_blocks`, it writes down the rows
    the dataset's incomplete shards hold and SIGKILLs its own worker. After
    that kill, `replace(ids, feats)` changes what the retry computes for the
    block's first batch (rows the killed attempt committed)."""

    def featurize(batch):
        ids = batch["id"]
        block, position = divmod(int(ids[0]), PER_BLOCK)
        feats = features(ids)
        if block not in kill_blocks:
            return {"id": ids, "feature": feats}
        marker = os.path.join(kill_dir, str(block))
        if position == 2 * BATCH and not os.path.exists(marker):
            held = 0
            for name in ds.list_shards(root):
                status = ds.shard_status(root, name)
                if status is not None and not status.complete:
                    held += status.rows
            with open(marker + ".tmp", "w") as f:
                f.write(str(held))
            os.rename(marker + ".tmp", marker)
            os.kill(os.getpid(), signal.SIGKILL)
        if position == 0 and replace is not None and os.path.exists(marker):
            feats = replace(ids, feats)
        return {"id": ids, "feature": feats}

    return featurize


@pytest.mark.parametrize("durability", ["fsync", "process"])
def test_ray_data_sink_with_killed_workers(cluster, tmp_path, durability):
    root = str(tmp_path / "ds")
    kill_dir = tmp_path / "kills"
    kill_dir.mkdir()
    featurize = make_featurize(str(kill_dir), root, kill_blocks={1, 4, 6})
    data = ray.data.range(N, override_num_blocks=READ_BLOCKS).map_batches(featurize, batch_size=BATCH)
    sink = NpyDatasink(root, durability=durability)
    start = time.time()
    data.write_datasink(sink)
    elapsed = time.time() - start
    kills = {int(os.path.basename(p)): int(open(p).read()) for p in glob.glob(str(kill_dir / "[0-9]*"))}
    print(f"ray data sink ({durability}): {N} rows, {len(kills)} workers killed mid-write "
          f"(rows committed by then: {sorted(kills.values())}), {elapsed:.1f} s")
    assert len(kills) == 3
    # Killed after blocks of their own task were committed: a retry resumed.
    assert max(kills.values()) > 0

    m = sink.manifest
    assert m == ds.read_manifest(root) and m["rows"] == N
    r = ds.DatasetReader(root)
    assert r.from_manifest and len(r) == N and all(s.complete for s in r.shards)
    everything = r[:]
    order = np.argsort(everything["id"], kind="stable")
    np.testing.assert_array_equal(everything["id"][order], np.arange(N))  # each id once
    np.testing.assert_array_equal(everything["feature"], features(everything["id"]))  # row by row
    # The manifest matches the files, which numpy and Ray read on their own.
    id_files, feature_files = [], []
    for s in m["shards"]:
        ids = np.load(os.path.join(root, s["name"], "id.npy"), mmap_mode="r")
        feats = np.load(os.path.join(root, s["name"], "feature.npy"), mmap_mode="r")
        assert ids.shape == (s["rows"],) and feats.shape == (s["rows"], 4)
        id_files.append(os.path.join(root, s["name"], "id.npy"))
        feature_files.append(os.path.join(root, s["name"], "feature.npy"))
    assert sum(s["rows"] for s in m["shards"]) == N
    assert ray.data.read_numpy(id_files).count() == N
    sample = ray.data.read_numpy(feature_files[:1]).take(3)
    np.testing.assert_array_equal(np.stack([row["data"] for row in sample]), np.asarray(np.load(feature_files[0])[:3]))


def test_a_retry_that_computes_other_rows_publishes_nothing(cluster, tmp_path):
    root = str(tmp_path / "ds")
    kill_dir = tmp_path / "kills"
    kill_dir.mkdir()

    def other(ids, feats):
        feats = feats.copy()
        feats[0, 0] += 1
        return feats

    # The killed task's retry computes other features for rows its first
    # attempt committed: the sink refuses them (DataDiffersError).
    featurize = make_featurize(str(kill_dir), root, kill_blocks={0}, replace=other)
    data = ray.data.range(4 * BATCH, override_num_blocks=1).map_batches(featurize, batch_size=BATCH)
    sink = NpyDatasink(root)
    with pytest.raises(Exception) as e:
        data.write_datasink(sink)
    assert "differs" in str(e.value), str(e.value)[-2000:]
    assert int(open(kill_dir / "0").read()) > 0  # the attempt killed had committed rows
    assert sink.manifest is None and not os.path.exists(os.path.join(root, "manifest.json"))


def test_object_columns_are_refused(cluster, tmp_path):
    root = str(tmp_path / "ds")
    items = ray.data.from_items([{"id": i, "text": "x" * i} for i in range(10)])
    with pytest.raises(Exception) as e:
        items.write_datasink(NpyDatasink(root))
    assert "column 'text'" in str(e.value) and "fixed-shape" in str(e.value)
    assert not os.path.exists(os.path.join(root, "manifest.json"))
    # Given columns are enforced (no cast); matching ones are written.
    ok = ray.data.from_items([{"id": i, "x": np.full(3, i, "<f4")} for i in range(10)])
    sink = NpyDatasink(root + "2", columns={"id": ("<i8", ()), "x": ("<f4", (3,))})
    ok.write_datasink(sink)
    assert sink.manifest["rows"] == 10
    r = ds.DatasetReader(root + "2")
    np.testing.assert_array_equal(np.sort(r[:]["id"]), np.arange(10))
    bad = NpyDatasink(root + "3", columns={"id": ("<i4", ()), "x": ("<f4", (3,))})
    with pytest.raises(Exception) as e:
        ok.write_datasink(bad)
    assert "dtype mismatch" in str(e.value)
    # A durability that does not exist is refused in the driver.
    with pytest.raises(npy_append.InvalidArgumentError, match="durability"):
        NpyDatasink(root + "4", durability="power")


DRIVER = """
import os, sys, time
import numpy as np
import ray
from npy_append import dataset as ds
from npy_append.ray import run_partitions

root, log_dir = sys.argv[1], sys.argv[2]
run = len(os.listdir(log_dir))
os.makedirs(os.path.join(log_dir, str(run)))
PARTS, ROWS, STEP = 16, 400, 100

def work(part, shard):
    open(os.path.join(log_dir, str(run), str(part)), "w").close()   # this run ran it
    for start in range(len(shard), ROWS, STEP):
        ids = np.arange(start, start + STEP, dtype="<i8") + part * ROWS
        shard.append_at(start, {"id": ids, "sq": ids * ids})
        shard.commit()
        time.sleep(0.05)

ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
before = sum(1 for p in range(PARTS) if (s := ds.shard_status(root, str(p))) and s.complete)
report = run_partitions(root, list(range(PARTS)), work,
                        columns={"id": ("<i8", ()), "sq": ("<i8", ())}, num_cpus=1)
print("report", before, len(report.ran), len(report.resumed), len(report.skipped), flush=True)
"""


def session_members(sid):
    """The live (not zombie) processes of session `sid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The fields after the command (in parentheses): state, ppid, pgrp, session.
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def kill_job(driver):
    """SIGKILLs the driver's process group, then every process of its
    session that outlives it (Ray's workers run in process groups of their
    own), as when the machine running the job goes away."""
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 30
    while (left := session_members(driver.pid)) and time.time() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    assert not session_members(driver.pid)


def test_partitions_on_ray_with_the_driver_killed(tmp_path):
    root = tmp_path / "ds"
    log_dir = tmp_path / "runs"
    log_dir.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    complete_before = []
    kills = 0
    for run in range(12):
        complete_before.append(
            {p for p in range(16) if (s := ds.shard_status(root, str(p))) and s.complete}
        )
        driver = subprocess.Popen(
            [sys.executable, str(script), str(root), str(log_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        if kills < 3:
            # Kill the driver's whole process group once new shards completed.
            deadline = time.time() + 120
            while time.time() < deadline:
                done = {p for p in range(16) if (s := ds.shard_status(root, str(p))) and s.complete}
                if len(done) >= len(complete_before[-1]) + 2 or driver.poll() is not None:
                    break
                time.sleep(0.1)
            if driver.poll() is None:
                kill_job(driver)
                kills += 1
                continue
        out, err = driver.communicate(timeout=180)
        assert driver.returncode == 0, err[-3000:]
        line = [l for l in out.splitlines() if l.startswith("report")][-1]
        _, before, ran, resumed, skipped = line.split()
        assert int(skipped) == int(before) == len(complete_before[-1])
        assert int(ran) == 16 - int(skipped)
        break
    assert kills == 3
    # No run ran the work of a partition complete before it.
    for run, before in enumerate(complete_before):
        ran = {int(p) for p in os.listdir(log_dir / str(run))} if (log_dir / str(run)).exists() else set()
        assert not ran & before, (run, ran & before)
    print(f"ray partitions: driver killed {kills} times; complete before each run: "
          f"{[len(b) for b in complete_before]}")
    m = ds.finalize(root)
    assert m["rows"] == 16 * 400
    r = ds.DatasetReader(root)
    everything = r[:]
    np.testing.assert_array_equal(everything["id"], np.arange(16 * 400))
    np.testing.assert_array_equal(everything["sq"], everything["id"] ** 2)


def test_the_partitions_example_runs(tmp_path):
    # (Its resuming is what test_partitions_on_ray_with_the_driver_killed checks.)
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "ray_partitions.py")
    done = subprocess.run(
        [sys.executable, example, str(tmp_path / "tokens"), "--partitions", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ran 3 partitions (0 resumed), skipped 0" in done.stdout, done.stdout
    assert "60000 rows in 3 shards" in done.stdout
