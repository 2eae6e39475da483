"""Files other programs wrote, replaced or removed, and paths through
symbolic links, as a Python user meets them: recovery never cuts rows it
cannot show are its own (JournalDisagreesError, nothing changed, until
accept_loss=True), a writer whose file is removed or replaced stops with
FileReplacedError, and a symlink shares its file's journal. The same for
np.save over a member of a group whose Process writer died."""

import os

import numpy as np
import pytest

import npy_append
from npy_append import Appender, NpyAppendArray


def rows(start, stop):
    return np.arange(start * 8, stop * 8, dtype="<u8").reshape(-1, 8)


def killed_writer(path, durability, commits=3):
    """A writer that committed `commits` x 1000 rows and died (dropped
    without close: a kill -9)."""
    w = Appender.open_or_recover(path, dtype="<u8", row_shape=8, durability=durability)
    for c in range(commits):
        w.append(rows(c * 1000, (c + 1) * 1000))
        w.commit()
    del w
    assert os.path.exists(f"{path}.journal")


def snapshot(path):
    out = []
    for p in (path, f"{path}.journal"):
        try:
            with open(p, "rb") as f:
                out.append(f.read())
        except FileNotFoundError:
            out.append(None)
    return out


@pytest.mark.parametrize("durability", ["process", "fsync"])
@pytest.mark.parametrize("saved", [500, 5000])
def test_a_file_saved_over_a_crashed_writers_file_is_left_alone(tmp_path, durability, saved):
    path = tmp_path / "f.npy"
    killed_writer(path, durability)
    np.save(path, np.full((saved, 8), 42, "<u8"))
    before = snapshot(path)
    for reopen in (
        lambda: Appender.open_or_recover(path),
        lambda: NpyAppendArray(path),
        lambda: npy_append.recover(path),
    ):
        with pytest.raises(npy_append.JournalDisagreesError) as info:
            reopen()
        assert isinstance(info.value, npy_append.CorruptError)
        assert "accept_loss=True" in str(info.value), str(info.value)
        assert snapshot(path) == before
    np.testing.assert_array_equal(np.load(path), np.full((saved, 8), 42, "<u8"))
    # The way out: the loss accepted, the journal's last commit.
    w = Appender.open_or_recover(path, accept_loss=True)
    assert len(w) <= 3000
    w.close()


def test_a_file_saved_before_the_first_fsync_commit_is_left_alone(tmp_path):
    path = tmp_path / "f.npy"
    w = Appender.open_or_recover(path, dtype="<u8", row_shape=8)
    w.append(rows(0, 10))
    del w  # died before its first commit
    np.save(path, np.full((5000, 8), 42, "<u8"))
    before = snapshot(path)
    with pytest.raises(npy_append.JournalDisagreesError):
        Appender.open_or_recover(path)
    assert snapshot(path) == before


def test_a_symlink_shares_the_files_journal(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "links").mkdir()
    target, link = tmp_path / "data" / "t.npy", tmp_path / "links" / "l.npy"
    link.symlink_to(target)  # dangling for now
    w = Appender.open_or_recover(link, dtype="<u8", row_shape=8, durability="process")
    assert w.path == target
    w.append(rows(0, 3010))
    w.commit()
    del w  # killed
    assert not os.path.exists(f"{link}.journal")
    w = Appender.open_or_recover(target, durability="process")
    w.append(rows(3010, 5010))
    w.commit()
    del w
    with NpyAppendArray(link) as arr:  # reopened through the link: nothing cut
        arr.append(rows(5010, 5011))
    np.testing.assert_array_equal(np.load(target), rows(0, 5011))


def test_a_writer_stops_when_its_file_is_removed_or_replaced(tmp_path):
    path = tmp_path / "f.npy"
    w = Appender.open_or_recover(path, dtype="<u8", row_shape=8)
    w.append(rows(0, 1000))
    w.commit()
    os.remove(path)
    w.append(rows(1000, 2000))
    with pytest.raises(npy_append.FileReplacedError) as info:
        w.commit()
    assert "removed by another program" in str(info.value)
    assert not path.exists()
    assert not os.path.exists(f"{path}.journal")
    del w

    w = Appender.open_or_recover(path, dtype="<u8", row_shape=8)
    w.append(rows(0, 1000))
    w.commit()
    np.save(tmp_path / "other.npy", np.full((500, 8), 42, "<u8"))
    os.replace(tmp_path / "other.npy", path)
    with pytest.raises(npy_append.FileReplacedError) as info:
        w.close()
    assert "moved or saved over the file" in str(info.value)
    np.testing.assert_array_equal(np.load(path), np.full((500, 8), 42, "<u8"))
    del w
    with NpyAppendArray(path) as arr:  # the file there now, as it is
        arr.append(np.full((1, 8), 43, "<u8"))
    assert np.load(path).shape == (501, 8)


def test_a_journal_removed_under_a_live_writer_is_named(tmp_path):
    path = tmp_path / "f.npy"
    w = Appender.open_or_recover(path, dtype="<u8", row_shape=8)
    w.append(rows(0, 1000))
    w.commit()
    os.remove(f"{path}.journal")
    with pytest.raises(npy_append.FileReplacedError) as info:
        w.close()
    message = str(info.value)
    assert "its journal was removed" in message and "closed all the same" in message, message
    np.testing.assert_array_equal(np.load(path), rows(0, 1000))


def test_a_name_too_long_for_its_journal(tmp_path):
    path = tmp_path / ("x" * 246 + ".npy")
    np.save(path, np.zeros((3, 8), "<u8"))
    with pytest.raises(npy_append.UnsupportedError) as info:
        Appender.open_or_recover(path)
    assert "too long for its sidecar files" in str(info.value)
    assert len(npy_append.Reader(path)) == 3


def group_snapshot(directory):
    return {name: open(os.path.join(directory, name), "rb").read() for name in sorted(os.listdir(directory))}


@pytest.mark.parametrize("saved_rows", [4000, 500])
def test_np_save_over_a_process_group_member_is_refused_unchanged(tmp_path, saved_rows):
    """numpy saves over a member of a group whose Process writer died, with
    more rows than the group committed or fewer: recovery refuses
    (JournalDisagreesError), changing no file, since those rows may be
    numpy's; accept_loss=True then recovers every member to one commit."""
    from npy_append import AppendGroup

    group = str(tmp_path / "data.group")
    members = {"a.npy": ("<u8", (8,)), "b.npy": ("<u8", (8,))}
    g = AppendGroup.open_or_recover(group, members=members, durability="process")
    for c in range(3):
        for name in members:
            g.append(name, rows(c * 1000, (c + 1) * 1000))
        g.commit()
    g.abandon()  # the writer dies
    np.save(tmp_path / "a.npy", rows(0, saved_rows))
    before = group_snapshot(tmp_path)
    with pytest.raises(npy_append.JournalDisagreesError, match="a.npy"):
        AppendGroup.open_or_recover(group, durability="process")
    with pytest.raises(npy_append.JournalDisagreesError):
        AppendGroup.open_or_recover(group)
    assert group_snapshot(tmp_path) == before
    g = AppendGroup.open_or_recover(group, accept_loss=True)
    kept = g.rows
    assert kept["a.npy"] == kept["b.npy"]
    g.close()
    for name in members:
        np.testing.assert_array_equal(np.load(tmp_path / name), rows(0, kept[name]))
