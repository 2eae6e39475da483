"""Readers across a process boundary: Reader, GroupReader and RaggedReader
pickle as their path and options and reopen their mappings in the
receiving process (a spawn-context pool, as a PyTorch DataLoader with
multiprocessing_context="spawn" uses, and torch itself when installed)."""

import multiprocessing
import os
import pickle

import numpy as np
import pytest

from npy_append import AppendGroup, Appender, GroupReader, RaggedAppender, RaggedReader, Reader


def make_file(path, rows):
    with Appender.open_or_recover(path, dtype="<f4", row_shape=(4,)) as w:
        w.append(np.arange(rows * 4, dtype="<f4").reshape(rows, 4))


def make_group(path, rows):
    members = {"feats.npy": ("<f4", (4,)), "labels.npy": ("<i8", ())}
    g = AppendGroup.open_or_recover(path, members=members)
    g.append("feats.npy", np.arange(rows * 4, dtype="<f4").reshape(rows, 4))
    g.append("labels.npy", np.arange(rows, dtype="<i8") * 10)
    g.commit(cursor=b"first")
    return g


def make_ragged(path, lengths):
    w = RaggedAppender.open_or_recover(path, dtype="<u2", names=("tok.npy", "off.npy"))
    for n in lengths:
        w.append(np.full(n, n, "<u2"))
    w.commit()
    return w


def test_readers_pickle_as_their_path_and_reopen(tmp_path):
    make_file(tmp_path / "a.npy", 5)
    g = make_group(tmp_path / "g.group", 3)
    w = make_ragged(tmp_path / "r.group", [2, 0, 3])
    readers = [
        Reader(tmp_path / "a.npy"),
        GroupReader(tmp_path / "g.group"),
        RaggedReader(tmp_path / "r.group", names=("tok.npy", "off.npy")),
    ]
    for r in readers:
        data = pickle.dumps(r)
        assert len(data) < 1000  # a path and options, not the rows
        copy = pickle.loads(data)
        assert type(copy) is type(r) and copy.path == r.path
    a, gr, rr = (pickle.loads(pickle.dumps(r)) for r in readers)
    np.testing.assert_array_equal(a.array(), readers[0].array())
    assert gr.cursor == b"first" and gr.rows == {"feats.npy": 3, "labels.npy": 3}
    np.testing.assert_array_equal(gr["labels.npy"], [0, 10, 20])
    assert len(rr) == 3 and list(rr[2]) == [3, 3, 3]
    # The copy opens the newest commit; the original keeps its snapshot.
    g.append("labels.npy", np.array([30], "<i8"))
    g.commit()
    later = pickle.loads(pickle.dumps(readers[1]))
    assert later.rows["labels.npy"] == 4 and readers[1].rows["labels.npy"] == 3
    g.close()
    w.close()


def test_writers_do_not_pickle(tmp_path):
    with Appender.open_or_recover(tmp_path / "a.npy", dtype="<f4") as w:
        with pytest.raises(TypeError):
            pickle.dumps(w)


class Rows:
    """A map-style dataset over a group reader, as a PyTorch Dataset is."""

    def __init__(self, path):
        self.reader = GroupReader(path)

    def __len__(self):
        return self.reader.rows["labels.npy"]

    def __getitem__(self, i):
        feats = self.reader.array("feats.npy")[i]
        label = int(self.reader.array("labels.npy")[i])
        return feats.copy(), label


def read_item(args):
    """In a spawned worker: the item, and the pid that read it."""
    dataset, i = args
    feats, label = dataset[i]
    return os.getpid(), feats.tolist(), label


def read_ragged(args):
    reader, i = args
    return reader[i].tolist()


def test_a_spawn_pool_reads_through_pickled_readers(tmp_path):
    g = make_group(tmp_path / "g.group", 50)
    dataset = Rows(tmp_path / "g.group")
    w = make_ragged(tmp_path / "r.group", [1, 4, 0, 2])
    ragged = RaggedReader(tmp_path / "r.group", names=("tok.npy", "off.npy"))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        got = pool.map(read_item, [(dataset, i) for i in range(len(dataset))], chunksize=5)
        seqs = pool.map(read_ragged, [(ragged, i) for i in range(len(ragged))])
    assert {pid for pid, _, _ in got} - {os.getpid()}  # read in other processes
    for i, (_, feats, label) in enumerate(got):
        assert feats == list(np.arange(i * 4, i * 4 + 4, dtype="<f4"))
        assert label == 10 * i
    assert seqs == [[1], [4, 4, 4, 4], [], [2, 2]]
    g.close()
    w.close()


def test_torch_dataloader_with_spawn_workers(tmp_path):
    try:
        import torch
        from torch.utils.data import DataLoader
    except ImportError:
        print("SKIP test_torch_dataloader_with_spawn_workers: torch is not installed")
        return
    g = make_group(tmp_path / "g.group", 64)
    g.close()
    loader = DataLoader(
        Rows(tmp_path / "g.group"),
        batch_size=16,
        num_workers=2,
        multiprocessing_context="spawn",
    )
    feats = []
    labels = []
    for f, label in loader:
        assert isinstance(f, torch.Tensor)
        feats.append(f.numpy())
        labels.append(label.numpy())
    np.testing.assert_array_equal(np.concatenate(feats), np.arange(64 * 4, dtype="<f4").reshape(64, 4))
    np.testing.assert_array_equal(np.concatenate(labels), np.arange(64) * 10)
