"""Sharded datasets from Python: shards written exactly once and finished,
finalize and its manifest, the reader over all shards (slices, gathers,
batches, refresh, pickling), and numpy reading every column file."""

import multiprocessing
import os
import pickle

import numpy as np
import pytest

import npy_append
from npy_append import dataset as ds

COLUMNS = {"id": ("<i8", ()), "feature": ("<f4", (3,))}


def rows(shard, start, stop):
    """Rows start..stop of shard number `shard`: ids and features computed
    from them."""
    ids = np.arange(start, stop, dtype="<i8") + shard * 1_000_000
    feats = (ids[:, None] * 3 + np.arange(3)).astype("<f4")
    return {"id": ids, "feature": feats}


def build(root, name, shard, n, finish=True, per_commit=7):
    with ds.open_shard(root, name, COLUMNS) as w:
        for start in range(len(w), n, per_commit):
            w.append_at(start, rows(shard, start, min(n, start + per_commit)))
            w.commit()
        if finish:
            w.finish()


def test_a_shard_is_written_exactly_once(tmp_path):
    root = tmp_path / "ds"
    w = ds.open_shard(root, "part-0", COLUMNS)
    assert (len(w), w.complete, w.resumed, w.name) == (0, False, False, "part-0")
    assert w.path == root / "part-0"
    assert list(w.columns) == ["id", "feature"]
    assert w.columns["feature"] == (np.dtype("<f4"), (3,))
    assert w.append_at(0, rows(0, 0, 10)) == 10
    assert w.commit(cursor=b"line 10") == 10
    w.append(rows(0, 10, 12))  # pending: lost with the writer
    w.abandon()

    w = ds.open_shard(root, "part-0")  # columns may be omitted now
    assert (len(w), w.cursor, w.resumed) == (10, b"line 10", True)
    # A retry replays from an older point: compared, skipped, the rest appended.
    assert w.append_at(4, rows(0, 4, 15)) == 5
    assert w.commit() == 15
    # A retry that produces other rows is an error naming the shard's file.
    bad = rows(0, 12, 16)
    bad["feature"][1, 2] += 1
    with pytest.raises(npy_append.DataDiffersError, match=r"part-0/feature\.npy: row 13"):
        w.append_at(12, bad)
    with pytest.raises(npy_append.GapError):
        w.append_at(16, rows(0, 16, 17))
    assert w.pending_rows == 0
    assert w.finish() == 15
    assert w.complete and w.closed

    # A complete shard opens, says so, and takes no rows.
    with ds.open_shard(root, "part-0") as w:
        assert w.complete and len(w) == 15 and w.cursor == b"line 10"
        with pytest.raises(npy_append.InvalidArgumentError, match="is complete"):
            w.append(rows(0, 15, 16))
    assert ds.shard_status(root, "part-0") == ds.ShardStatus(15, True, b"line 10")
    assert ds.shard_status(root, "part-1") is None
    assert ds.shard_status(tmp_path / "none", "part-0") is None


def test_batches_are_checked(tmp_path):
    w = ds.open_shard(tmp_path, "s", COLUMNS)
    good = rows(0, 0, 2)
    cases = [
        ({"id": good["id"]}, npy_append.InvalidArgumentError, "no column 'feature'|no column \"feature\""),
        ({**good, "x": good["id"]}, npy_append.InvalidArgumentError, "not in the dataset"),
        ({"id": good["id"], "feature": good["feature"].astype("<f8")}, npy_append.DtypeMismatchError, "ever cast"),
        ({"id": good["id"].astype("<i4"), "feature": good["feature"]}, npy_append.DtypeMismatchError, "int32|<i4"),
        ({"id": good["id"], "feature": good["feature"][:, :2]}, npy_append.ShapeMismatchError, r"\(3,\)"),
        ({"id": good["id"][:1], "feature": good["feature"]}, npy_append.ShapeMismatchError, "as many rows"),
        ({"id": [0, 1], "feature": good["feature"]}, npy_append.DtypeMismatchError, "numpy array"),
    ]
    for batch, error, message in cases:
        with pytest.raises(error, match=message):
            w.append(batch)
    with pytest.raises(TypeError, match="dict"):
        w.append([good["id"], good["feature"]])
    assert w.pending_rows == 0
    # A non-contiguous array is copied, not refused.
    w.append({"id": good["id"][::-1][::-1], "feature": np.asfortranarray(good["feature"])})
    assert w.commit() == 2
    w.close()
    assert w.closed
    with pytest.raises(npy_append.ClosedError):
        w.append(good)


def test_the_schema_is_recorded_once_and_enforced(tmp_path):
    root = tmp_path / "ds"
    with pytest.raises(npy_append.InvalidArgumentError, match="no dataset there"):
        ds.open_shard(root, "a")
    assert ds.read_schema(root) is None
    assert ds.create(root, COLUMNS) == {
        "id": (np.dtype("<i8"), ()),
        "feature": (np.dtype("<f4"), (3,)),
    }
    assert ds.read_schema(root) == ds.create(root, COLUMNS)
    with pytest.raises(npy_append.DtypeMismatchError, match="schema.json"):
        ds.open_shard(root, "a", {"id": ("<i8", ()), "feature": ("<f8", (3,))})
    with pytest.raises(npy_append.ShapeMismatchError):
        ds.open_shard(root, "a", {"id": "<i8"})
    with pytest.raises(npy_append.InvalidArgumentError, match="shard name"):
        ds.open_shard(root, "../a")
    with pytest.raises(npy_append.InvalidArgumentError, match="durability"):
        ds.open_shard(root, "a", durability="power")
    with pytest.raises(npy_append.InvalidArgumentError):
        ds.create(tmp_path / "x", {"a/b": "<i8"})
    assert not (root / "a").exists()


def test_finalize_publishes_complete_shards(tmp_path):
    root = tmp_path / "ds"
    build(root, "rank-10", 10, 4)
    build(root, "rank-2", 2, 5, finish=False)
    build(root, "rank-1", 1, 3)
    with pytest.raises(npy_append.IncompleteError, match="rank-2") as e:
        ds.finalize(root)
    assert e.value.shards == ["rank-2"]
    assert not (root / "manifest.json").exists()
    assert ds.read_manifest(root) is None
    build(root, "rank-2", 2, 5)
    m = ds.finalize(root)
    assert m["format"] == "npy-append-dataset-manifest" and m["version"] == 1
    assert m["rows"] == 12
    assert m["shards"] == [
        {"name": "rank-1", "rows": 3},
        {"name": "rank-2", "rows": 5},
        {"name": "rank-10", "rows": 4},
    ]
    assert m["columns"] == [
        {"name": "id", "dtype": "<i8", "shape": []},
        {"name": "feature", "dtype": "<f4", "shape": [3]},
    ]
    assert ds.read_manifest(root) == m
    stat = os.stat(root / "manifest.json")
    assert ds.finalize(root) == m  # idempotent: nothing rewritten
    assert os.stat(root / "manifest.json").st_ino == stat.st_ino
    sub = ds.finalize(root, ["rank-10", "rank-1"])
    assert [s["name"] for s in sub["shards"]] == ["rank-1", "rank-10"]
    with pytest.raises(npy_append.InvalidArgumentError):
        ds.finalize(root, ["rank-3"])
    assert ds.list_shards(root) == ["rank-1", "rank-2", "rank-10"]


def test_numpy_loads_every_column_file(tmp_path):
    build(tmp_path, "0", 0, 20)
    build(tmp_path, "1", 1, 9, finish=False)
    m = ds.finalize(tmp_path, ["0"])
    for s in m["shards"]:
        for c in m["columns"]:
            a = np.load(tmp_path / s["name"] / f"{c['name']}.npy", mmap_mode="r")
            assert a.dtype == np.dtype(c["dtype"]) and a.shape == (s["rows"], *c["shape"])
    np.testing.assert_array_equal(np.load(tmp_path / "1" / "id.npy"), rows(1, 0, 9)["id"])


def make_reader_dataset(root):
    """Shards of 4, 0, 5 and 3 rows; the third not complete."""
    build(root, "a", 1, 4)
    build(root, "b", 2, 0)
    build(root, "c", 3, 5, finish=False)
    build(root, "d", 4, 3)
    expected = {
        k: np.concatenate([rows(1, 0, 4)[k], rows(3, 0, 5)[k], rows(4, 0, 3)[k]])
        for k in ("id", "feature")
    }
    return expected


def test_the_reader_numbers_rows_across_shards(tmp_path):
    want = make_reader_dataset(tmp_path)
    r = ds.DatasetReader(tmp_path)
    assert len(r) == 12 and not r.from_manifest and r.read_from == "auto"
    assert r.shards == [
        ds.ShardInfo("a", 4, True),
        ds.ShardInfo("b", 0, True),
        ds.ShardInfo("c", 5, False),
        ds.ShardInfo("d", 3, True),
    ]
    assert r.columns == {"id": (np.dtype("<i8"), ()), "feature": (np.dtype("<f4"), (3,))}
    for i in range(12):
        row = r[i]
        assert row["id"] == want["id"][i]
        np.testing.assert_array_equal(row["feature"], want["feature"][i])
    assert r[-1]["id"] == want["id"][-1]
    with pytest.raises(IndexError):
        r[12]
    with pytest.raises(IndexError):
        r[-13]
    # A slice inside one shard is a view of the mapped file; across, a copy.
    inside = r[5:8]
    assert not inside["feature"].flags.owndata and not inside["feature"].flags.writeable
    across = r[2:10]
    assert across["feature"].flags.owndata
    for k in want:
        np.testing.assert_array_equal(inside[k], want[k][5:8])
        np.testing.assert_array_equal(across[k], want[k][2:10])
        np.testing.assert_array_equal(r[:][k], want[k])
        np.testing.assert_array_equal(r[::3][k], want[k][::3])
        np.testing.assert_array_equal(r[-4:][k], want[k][-4:])
    assert len(r[8:3]["id"]) == 0 and r[8:3]["feature"].shape == (0, 3)
    # Gathers: any order, repeats, negative indices, any integer array.
    idx = np.array([11, 0, 4, 4, -1, 7, 3])
    g = r[idx]
    for k in want:
        np.testing.assert_array_equal(g[k], want[k][idx])
    np.testing.assert_array_equal(r[[2, 1]]["id"], want["id"][[2, 1]])
    np.testing.assert_array_equal(r[np.array([[1, 2], [3, 4]], np.uint32)]["id"], want["id"][[[1, 2], [3, 4]]])
    assert r[np.array([], np.int64)]["feature"].shape == (0, 3)
    with pytest.raises(IndexError):
        r[[0, 12]]
    with pytest.raises(TypeError):
        r[np.array([0.5])]
    with pytest.raises(TypeError, match="indexed by rows"):
        r["id"]
    # Batches.
    batches = list(r.iter_batches(5))
    assert [len(b["id"]) for b in batches] == [5, 5, 2]
    np.testing.assert_array_equal(np.concatenate([b["id"] for b in batches]), want["id"])
    assert [len(b["id"]) for b in r.iter_batches(5, drop_last=True)] == [5, 5]
    assert [row["id"] for row in r] == list(want["id"])
    items = r.__getitems__([3, 9])
    assert [it["id"] for it in items] == [want["id"][3], want["id"][9]]


def test_refresh_and_the_manifest(tmp_path):
    build(tmp_path, "a", 1, 2, finish=False)
    r = ds.DatasetReader(tmp_path)
    assert len(r) == 2 and r.refresh() is False
    w = ds.open_shard(tmp_path, "a")
    w.append_at(2, rows(1, 2, 5))
    assert r.refresh() is False and len(r) == 2  # pending rows are never shown
    view = r[0:2]["id"]
    w.commit()
    assert r.refresh() is True and len(r) == 5
    np.testing.assert_array_equal(view, rows(1, 0, 2)["id"])  # views stay valid
    w.finish()
    build(tmp_path, "b", 2, 3)
    assert r.refresh() and len(r) == 8
    ds.finalize(tmp_path, ["b"])
    assert r.refresh() and r.from_manifest and len(r) == 3
    live = ds.DatasetReader(tmp_path, read_from="shards")
    assert len(live) == 8 and not live.from_manifest
    assert len(ds.DatasetReader(tmp_path, read_from="manifest")) == 3
    with pytest.raises(npy_append.InvalidArgumentError, match="read_from"):
        ds.DatasetReader(tmp_path, read_from="bogus")
    with pytest.raises(npy_append.InvalidArgumentError, match="not finalized"):
        build(tmp_path / "other", "a", 1, 1)
        ds.DatasetReader(tmp_path / "other", read_from="manifest")


def read_rows(args):
    reader, indices = args
    batch = reader[np.array(indices)]
    return os.getpid(), len(reader), batch["id"].tolist()


def test_a_pickled_reader_shows_the_same_rows_in_another_process(tmp_path):
    want = make_reader_dataset(tmp_path)
    r = ds.DatasetReader(tmp_path)
    data = pickle.dumps(r)
    assert len(data) < 1000  # the root and the rows shown, not the rows
    # Rows committed after the reader was made are not shown by its copy.
    w = ds.open_shard(tmp_path, "c")
    w.append_at(5, rows(3, 5, 9))
    w.commit()
    copy = pickle.loads(data)
    assert len(copy) == 12 and copy.shards == r.shards
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        got = pool.map(read_rows, [(r, [i, 11 - i]) for i in range(12)])
    assert {pid for pid, _, _ in got} - {os.getpid()}
    for i, (_, n, ids) in enumerate(got):
        assert n == 12
        assert ids == [want["id"][i], want["id"][11 - i]]
    assert copy.refresh() and len(copy) == 16  # then it follows the dataset
    w.close()


def test_torch_dataloader(tmp_path):
    try:
        import torch
        from torch.utils.data import DataLoader
    except ImportError:
        print("SKIP test_torch_dataloader: torch is not installed")
        return
    want = make_reader_dataset(tmp_path)
    loader = DataLoader(ds.DatasetReader(tmp_path), batch_size=5, num_workers=2, multiprocessing_context="spawn")
    ids = []
    for batch in loader:
        assert isinstance(batch["id"], torch.Tensor) and batch["feature"].shape[1:] == (3,)
        ids.append(batch["id"].numpy())
    np.testing.assert_array_equal(np.concatenate(ids), want["id"])
