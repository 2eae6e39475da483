"""Append groups: members committed together, recovered together after a
kill, read as one snapshot, locked as one, and each loaded by numpy."""

import json
import os
import random
import time

import numpy as np
import pytest

import npy_append
from npy_append import AppendGroup, Appender, GroupReader

from conftest import spawn
from test_processes import kill

MEMBERS = {"x.npy": ("<f4", (4,)), "y.npy": ("<i8", ()), "ids.npy": ("<u8", ())}


def x(rows):
    """Rows `rows` of member x: row r holds 4r, 4r+1, 4r+2, 4r+3."""
    r = np.arange(rows.start, rows.stop, dtype="<f4")
    return (r[:, None] * 4 + np.arange(4, dtype="<f4")).astype("<f4")


def y(rows):
    return -np.arange(rows.start, rows.stop, dtype="<i8")


def ids(rows):
    return np.arange(rows.start, rows.stop, dtype="<u8") * 1000 + 7


CONTENT = {"x.npy": x, "y.npy": y, "ids.npy": ids}


def check_members(directory, rows):
    """np.load of every member gives exactly `rows[name]` rows of its content."""
    for name, n in rows.items():
        data = np.load(os.path.join(directory, name))
        expected = CONTENT[name](range(0, n))
        assert data.dtype == expected.dtype, name
        np.testing.assert_array_equal(data, expected, err_msg=name)


@pytest.fixture
def group(tmp_path):
    """A path for a new group journal."""
    return str(tmp_path / "data.group")


def test_round_trip_against_numpy(group, tmp_path):
    g = AppendGroup.open_or_recover(group, members=MEMBERS)
    assert g.names == ("x.npy", "y.npy", "ids.npy")
    assert g.members == {
        "x.npy": (np.dtype("<f4"), (4,)),
        "y.npy": (np.dtype("<i8"), ()),
        "ids.npy": (np.dtype("<u8"), ()),
    }
    assert g.rows == {"x.npy": 0, "y.npy": 0, "ids.npy": 0}
    for name, f in CONTENT.items():
        g.append(name, f(range(0, 5)))
    assert g.pending_rows == {"x.npy": 5, "y.npy": 5, "ids.npy": 5}
    assert g.commit(cursor=b"batch 0") == {"x.npy": 5, "y.npy": 5, "ids.npy": 5}
    # Members may grow by different amounts per commit; a commit without a
    # cursor keeps the last one.
    g.append("y.npy", y(range(5, 8)))
    assert g.commit() == {"x.npy": 5, "y.npy": 8, "ids.npy": 5}
    assert g.cursor == b"batch 0"
    # A large append goes straight to the file (past the 256 KiB buffer).
    g.append("x.npy", x(range(5, 20005)))
    assert g.close() == {"x.npy": 20005, "y.npy": 8, "ids.npy": 5}
    assert g.closed and g.close() is None
    with pytest.raises(npy_append.ClosedError):
        g.rows
    check_members(tmp_path, {"x.npy": 20005, "y.npy": 8, "ids.npy": 5})
    assert g.member_path("y.npy") == tmp_path / "y.npy"
    # The journal stays (it names the members); reopening needs no members.
    g = AppendGroup.open_or_recover(group)
    assert g.rows == {"x.npy": 20005, "y.npy": 8, "ids.npy": 5}
    assert g.cursor == b"batch 0"
    assert g.members["x.npy"] == (np.dtype("<f4"), (4,))
    g.close()


def test_members_as_tuples_and_checked_on_reopen(group):
    members = [("a.npy", "<i2", (2, 3)), ("b.npy", np.float64), ("c.npy", "|S3", 2)]
    with AppendGroup.open_or_recover(group, members=members) as g:
        assert g.members == {
            "a.npy": (np.dtype("<i2"), (2, 3)),
            "b.npy": (np.dtype("<f8"), ()),
            "c.npy": (np.dtype("S3"), (2,)),
        }
        g.append("c.npy", np.array([[b"ab", b"cde"]], "S3"))
    # The same members, in any accepted form, open it again.
    AppendGroup.open_or_recover(group, members={"a.npy": ("<i2", (2, 3)), "b.npy": "<f8", "c.npy": ("S3", (2,))}).close()
    with pytest.raises(npy_append.DtypeMismatchError):
        AppendGroup.open_or_recover(group, members={"a.npy": ("<i4", (2, 3)), "b.npy": "<f8", "c.npy": ("S3", (2,))})
    with pytest.raises(npy_append.ShapeMismatchError):
        AppendGroup.open_or_recover(group, members={"a.npy": ("<i2", (3, 2)), "b.npy": "<f8", "c.npy": ("S3", (2,))})
    with pytest.raises(npy_append.ShapeMismatchError):
        AppendGroup.open_or_recover(group, members={"a.npy": ("<i2", (2, 3))})
    with pytest.raises(npy_append.InvalidArgumentError):
        AppendGroup.open_or_recover(group + "2", members={"a.npy": ("<i2", (2, 3), "extra")})
    with pytest.raises(npy_append.InvalidArgumentError, match="give the members"):
        AppendGroup.open_or_recover(group + "3")
    np.testing.assert_array_equal(np.load(os.path.join(os.path.dirname(group), "c.npy")), [[b"ab", b"cde"]])


def test_mismatch_raises_and_appends_nothing(group, tmp_path):
    g = AppendGroup.open_or_recover(group, members=MEMBERS)
    g.append("x.npy", x(range(0, 2)))
    with pytest.raises(npy_append.DtypeMismatchError, match="no value is ever cast"):
        g.append("x.npy", x(range(2, 3)).astype("<f8"))
    with pytest.raises(npy_append.DtypeMismatchError):
        g.append("y.npy", y(range(0, 3)).astype(">i8"))  # same values, other byte order
    with pytest.raises(npy_append.ShapeMismatchError):
        g.append("x.npy", np.zeros((1, 5), "<f4"))
    with pytest.raises(npy_append.ShapeMismatchError):
        g.append("y.npy", np.zeros((3, 1), "<i8"))
    with pytest.raises(npy_append.DtypeMismatchError, match="numpy array"):
        g.append("y.npy", [1, 2, 3])
    with pytest.raises(npy_append.InvalidArgumentError, match="no member"):
        g.append("z.npy", y(range(0, 3)))
    assert g.pending_rows == {"x.npy": 2, "y.npy": 0, "ids.npy": 0}
    # Not poisoned: appends go on.
    g.append("y.npy", y(range(0, 1)))
    g.append("x.npy", x(range(2, 4)))
    assert g.close() == {"x.npy": 4, "y.npy": 1, "ids.npy": 0}
    check_members(tmp_path, {"x.npy": 4, "y.npy": 1, "ids.npy": 0})


def test_non_contiguous_arrays_are_appended_in_row_order(group, tmp_path):
    with AppendGroup.open_or_recover(group, members=MEMBERS) as g:
        g.append("x.npy", np.asfortranarray(x(range(0, 3))))
        g.append("y.npy", y(range(0, 6))[::-1][::-1][::2].copy())
        g.append("y.npy", y(range(0, 8))[1::2])
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x(range(0, 3)))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), [0, -2, -4, -1, -3, -5, -7])


def test_append_at_is_exactly_once(group, tmp_path):
    with AppendGroup.open_or_recover(group, members=MEMBERS) as g:
        assert g.append_at("y.npy", 0, y(range(0, 4))) == 4
        g.commit()
        # A replay from an older checkpoint: rows 2..4 are held, 4..6 new.
        assert g.append_at("y.npy", 2, y(range(2, 6))) == 2
        assert g.append_at("y.npy", 0, y(range(0, 3))) == 0  # pending rows count too
        with pytest.raises(npy_append.GapError):
            g.append_at("y.npy", 7, y(range(7, 9)))
        with pytest.raises(npy_append.DtypeMismatchError):
            g.append_at("y.npy", 6, y(range(6, 8)).astype("<i4"))
        assert g.pending_rows["y.npy"] == 2
        assert g.append_at("x.npy", 0, x(range(0, 1))) == 1
    check_members(tmp_path, {"x.npy": 1, "y.npy": 6, "ids.npy": 0})


REC = np.dtype([("t", "<f2"), ("tag", "S3"), ("n", ">u4")])


def test_append_at_skips_whole_rows_of_any_dtype(group, tmp_path):
    """append_at skips the rows held by whole rows of the member's own size
    (12-byte rows of big-endian int32 triples, 9-byte structured rows),
    whatever the dtype, and learns each member's dtype and row shape from
    the group on reopen."""

    def h(rows):
        return (np.arange(rows.start * 3, rows.stop * 3).reshape(-1, 3) - 1000).astype(">i4")

    def rec(rows):
        r = np.arange(rows.start, rows.stop)
        out = np.zeros(len(r), REC)
        out["t"], out["tag"], out["n"] = r / 4, [b"r%d" % i for i in r], r * 70000
        return out

    members = {"h.npy": (">i4", (3,)), "r.npy": REC}
    with AppendGroup.open_or_recover(group, members=members) as g:
        assert g.append_at("h.npy", 0, h(range(0, 3))) == 3
        assert g.append_at("r.npy", 0, rec(range(0, 2))) == 2
        g.commit()
    with AppendGroup.open_or_recover(group) as g:
        assert g.members == {"h.npy": (np.dtype(">i4"), (3,)), "r.npy": (REC, ())}
        # Rows 1 and 2 are held (committed): only rows 3 and 4 are new.
        assert g.append_at("h.npy", 1, h(range(1, 5))) == 2
        assert g.append_at("h.npy", 5, h(range(5, 5))) == 0  # no rows at the end
        assert g.append_at("r.npy", 0, rec(range(0, 3))) == 1
        # Pending rows count as held.
        assert g.append_at("r.npy", 2, rec(range(2, 4))) == 1
        with pytest.raises(npy_append.GapError, match=r"h\.npy: rows from 6 .* holds only 5 rows"):
            g.append_at("h.npy", 6, h(range(6, 7)))
        with pytest.raises(npy_append.GapError):
            g.append_at("r.npy", 5, rec(range(5, 5)))  # a gap even with no rows
        # Same values, other byte order: refused before anything else.
        with pytest.raises(npy_append.DtypeMismatchError):
            g.append_at("h.npy", 5, h(range(5, 6)).astype("<i4"))
        with pytest.raises(npy_append.ShapeMismatchError):
            g.append_at("h.npy", 5, np.zeros((1, 4), ">i4"))
        assert g.pending_rows == {"h.npy": 2, "r.npy": 2}
    h_file, r_file = np.load(tmp_path / "h.npy"), np.load(tmp_path / "r.npy")
    assert h_file.dtype == np.dtype(">i4") and r_file.dtype == REC
    np.testing.assert_array_equal(h_file, h(range(0, 5)))
    np.testing.assert_array_equal(r_file, rec(range(0, 4)))


def test_context_manager_exception_commits_nothing_pending(group, tmp_path):
    with pytest.raises(RuntimeError):
        with AppendGroup.open_or_recover(group, members=MEMBERS, buffer_bytes=64) as g:
            g.append("y.npy", y(range(0, 3)))
            g.commit(cursor=b"3")
            g.append("y.npy", y(range(3, 50)))  # written past the commit (small buffer)
            g.append("ids.npy", ids(range(0, 50)))
            raise RuntimeError("job failed")
    assert g.closed
    # Every member's header shows the commit only, before any recovery.
    check_members(tmp_path, {"x.npy": 0, "y.npy": 3, "ids.npy": 0})
    g = AppendGroup.open_or_recover(group)
    assert g.rows == {"x.npy": 0, "y.npy": 3, "ids.npy": 0}
    assert g.cursor == b"3"
    assert g.bytes_cut > 0
    g.abandon()
    assert g.closed


def test_a_member_is_refused_alone(group, tmp_path):
    AppendGroup.open_or_recover(group, members=MEMBERS).close()
    with pytest.raises(npy_append.GroupMemberError, match="open the group"):
        Appender.open_or_recover(tmp_path / "y.npy")
    with pytest.raises(npy_append.GroupMemberError):
        npy_append.NpyAppendArray(str(tmp_path / "y.npy"))
    # Readers of a member alone need nothing.
    assert len(npy_append.Reader(tmp_path / "y.npy")) == 0


def test_a_member_named_like_the_journal_is_refused_in_a_subdirectory(tmp_path):
    with pytest.raises(npy_append.InvalidArgumentError, match="the group journal itself"):
        AppendGroup.open_or_recover(tmp_path / "d.group", members={"d.group": "<f4"})
    assert os.listdir(tmp_path) == []


def test_a_member_named_like_the_journal_is_refused_in_the_working_directory(tmp_path, monkeypatch):
    """A bare relative journal path: the member's path is "./d.group", the
    journal's "d.group"; the two are compared by name, so this is refused."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(npy_append.InvalidArgumentError, match="the group journal itself"):
        AppendGroup.open_or_recover("d.group", members={"d.group": "<f4"})
    assert os.listdir(tmp_path) == []


def test_cursor_too_long_commits_nothing(group):
    with AppendGroup.open_or_recover(group, members=MEMBERS) as g:
        g.append("y.npy", y(range(0, 2)))
        with pytest.raises(npy_append.InvalidArgumentError, match="cursor"):
            g.commit(cursor=b"x" * 100_000)
        assert g.rows["y.npy"] == 0 and g.pending_rows["y.npy"] == 2
        assert g.commit(cursor=b"x" * 4096)["y.npy"] == 2


def test_reader_views_outlive_refresh_and_reader(group):
    g = AppendGroup.open_or_recover(group, members=MEMBERS)
    r = GroupReader(group)
    assert r.names == g.names
    assert r.rows == {"x.npy": 0, "y.npy": 0, "ids.npy": 0}
    assert r["x.npy"].shape == (0, 4) and r["x.npy"].dtype == np.dtype("<f4")
    g.append("x.npy", x(range(0, 3)))
    g.append("ids.npy", ids(range(0, 2)))
    g.commit(cursor=b"one")
    assert not r.rows["x.npy"]  # a snapshot until refresh
    assert r.refresh() is True
    assert r.refresh() is False
    first = r.arrays()
    assert r.cursor == b"one"
    np.testing.assert_array_equal(first["x.npy"], x(range(0, 3)))
    np.testing.assert_array_equal(first["ids.npy"], ids(range(0, 2)))
    assert not first["x.npy"].flags.writeable
    # Zero-copy: two views of one snapshot share the mapped bytes.
    assert np.shares_memory(r.array("x.npy"), r["x.npy"])
    g.append("x.npy", x(range(3, 10)))
    g.close()
    assert r.refresh()
    np.testing.assert_array_equal(r["x.npy"], x(range(0, 10)))
    del r
    np.testing.assert_array_equal(first["x.npy"], x(range(0, 3)))
    r = GroupReader(group)
    assert "x.npy" in r and "z.npy" not in r
    with pytest.raises(KeyError):
        r["z.npy"]
    with pytest.raises(npy_append.InvalidArgumentError):
        r.array("z.npy")
    assert r.dtype("ids.npy") == np.dtype("<u8") and r.row_shape("x.npy") == (4,)
    assert r.member_path("x.npy") == g.member_path("x.npy")


HOLDER_CHILD = """
import sys, time
import numpy as np
from npy_append import AppendGroup
g = AppendGroup.open_or_recover(sys.argv[1], members={"x.npy": ("<f4", (4,)), "y.npy": ("<i8", ()), "ids.npy": ("<u8", ())})
g.append("y.npy", np.arange(3, dtype="<i8"))
g.commit()
print("ready", flush=True)
time.sleep(60)
"""


def test_second_writer_raises_locked(group, tmp_path):
    child = spawn(HOLDER_CHILD, group)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        with pytest.raises(npy_append.LockedError):
            AppendGroup.open_or_recover(group)
        with pytest.raises(npy_append.LockedError):
            AppendGroup.open_or_recover(group, members=MEMBERS, lock_timeout=0.05)
        # A reader takes no lock.
        np.testing.assert_array_equal(GroupReader(group)["y.npy"], [0, 1, 2])
    finally:
        kill(child)
    with AppendGroup.open_or_recover(group, lock_timeout=10.0) as g:
        assert g.rows["y.npy"] == 3


# Commit k appends k % 3 + 1 rows to x and ids, k % 2 + 1 rows to y, with
# the cursor {"k": k, "rows": [...]}; after it returns, prints "acked k".
KILLED_CHILD = """
import json, os, sys
import numpy as np
from npy_append import AppendGroup
members = {"x.npy": ("<f4", (4,)), "y.npy": ("<i8", ()), "ids.npy": ("<u8", ())}
g = AppendGroup.open_or_recover(sys.argv[1], members=members, durability=sys.argv[2])
k = json.loads(g.cursor)["k"] + 1 if g.cursor else 0
rows = g.rows
while True:
    nx, ny = k % 3 + 1, k % 2 + 1
    r = np.arange(rows["x.npy"], rows["x.npy"] + nx, dtype="<f4")
    g.append("x.npy", (r[:, None] * 4 + np.arange(4, dtype="<f4")).astype("<f4"))
    g.append("ids.npy", np.arange(rows["ids.npy"], rows["ids.npy"] + nx, dtype="<u8") * 1000 + 7)
    g.append("y.npy", -np.arange(rows["y.npy"], rows["y.npy"] + ny, dtype="<i8"))
    rows = g.commit(cursor=json.dumps({"k": k, "rows": [rows["x.npy"] + nx, rows["y.npy"] + ny, rows["ids.npy"] + nx]}).encode())
    # One write per line: a kill never leaves half a line.
    os.write(1, f"acked {k}\\n".encode())
    k += 1
"""


def expected_rows(k):
    """Every member's rows after commit k (commits 0..=k)."""
    nx = sum(i % 3 + 1 for i in range(k + 1))
    ny = sum(i % 2 + 1 for i in range(k + 1))
    return {"x.npy": nx, "y.npy": ny, "ids.npy": nx}


def wait_commits(group, child, commits):
    """Reads the child's acknowledgements until `commits` more arrived;
    returns the last one."""
    last = None
    for _ in range(commits):
        line = child.stdout.readline()
        assert line.startswith("acked"), child.stderr.read()
        last = int(line.split()[1])
    return last


@pytest.mark.parametrize("durability", ["fsync", "process"])
def test_killed_group_writer_recovers_every_member_to_one_commit(group, tmp_path, durability):
    rng = random.Random(7)
    for round_ in range(5):
        child = spawn(KILLED_CHILD, group, durability)
        acked = wait_commits(group, child, 40 + 30 * round_)
        # At a random point of a later commit, not just after an acknowledgement.
        time.sleep(rng.uniform(0, 0.02))
        kill(child)
        # Acknowledgements printed before the kill (the pipe keeps them).
        for line in child.stdout.read().splitlines():
            acked = int(line.split()[1])
        g = AppendGroup.open_or_recover(group, members=MEMBERS)
        cursor = json.loads(g.cursor)
        k = cursor["k"]
        # A kill keeps what the kernel took, synced or not: the last
        # acknowledged commit survives; the one in flight may have completed.
        assert k in (acked, acked + 1), (k, acked)
        assert g.dropped_rows == [("x.npy", 0), ("y.npy", 0), ("ids.npy", 0)]
        assert g.rows == expected_rows(k)
        assert list(g.rows.values()) == cursor["rows"]
        assert g.pending_rows == {"x.npy": 0, "y.npy": 0, "ids.npy": 0}
        r = GroupReader(group)
        assert r.rows == g.rows and r.cursor == g.cursor
        g.close()
        check_members(tmp_path, expected_rows(k))


# Every commit appends 5 rows to x and 3 to y with the cursor k + 1.
WRITER_CHILD = """
import sys
import numpy as np
from npy_append import AppendGroup
n = int(sys.argv[2])
members = {"x.npy": ("<f4", (4,)), "y.npy": ("<i8", ()), "ids.npy": ("<u8", ())}
with AppendGroup.open_or_recover(sys.argv[1], members=members) as g:
    print("open", flush=True)
    for k in range(n):
        r = np.arange(5 * k, 5 * k + 5, dtype="<f4")
        g.append("x.npy", (r[:, None] * 4 + np.arange(4, dtype="<f4")).astype("<f4"))
        g.append("y.npy", -np.arange(3 * k, 3 * k + 3, dtype="<i8"))
        g.commit(cursor=str(k + 1).encode())
"""


def test_reader_during_writes_sees_whole_group_commits(group):
    total = 400
    child = spawn(WRITER_CHILD, group, total)
    assert child.stdout.readline().strip() == "open", child.stderr.read()
    r = GroupReader(group)
    seen, views = [], {}
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, child.stderr.read() if child.poll() is not None else "too slow"
        rows = r.rows
        k = int(r.cursor or b"0")
        # One commit: both members and the cursor agree.
        assert rows == {"x.npy": 5 * k, "y.npy": 3 * k, "ids.npy": 0}
        a = r.arrays()
        np.testing.assert_array_equal(a["x.npy"], x(range(0, 5 * k)))
        np.testing.assert_array_equal(a["y.npy"], y(range(0, 3 * k)))
        seen.append(k)
        # One view kept per commit seen (at most total + 1): every pass maps
        # the members again, and keeping every pass's views would hold tens
        # of thousands of mappings, past the kernel's limit per process.
        views.setdefault(k, a)
        if k == total:
            break
        r.refresh()
    assert child.wait(timeout=60) == 0, child.stderr.read()
    assert seen == sorted(seen)
    assert len(set(seen)) > 2, seen  # the reader saw the group grow
    for k, a in views.items():  # every view is still valid and unchanged
        np.testing.assert_array_equal(a["x.npy"], x(range(0, 5 * k)))
        np.testing.assert_array_equal(a["y.npy"], y(range(0, 3 * k)))
