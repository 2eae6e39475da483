"""The npy-append-array drop-in against numpy (and npy-append-array itself
when it is installed)."""

import os
import struct

import numpy as np
import pytest

import npy_append
from npy_append import NpyAppendArray

from conftest import import_upstream

upstream = import_upstream("test_same_result_as_npy_append_array and the README example")

DTYPES = [
    "?", "i1", "u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", ">i4", ">u8",
    "<f2", "<f4", "<f8", ">f8", "<c8", "<c16", "U5", "S3", "V4",
    "<M8[ns]", "<m8[s]",
    [("a", "<i4"), ("b", "<f8", (3,))],
    [("x", "u1"), ("name", "U4")],
]
ROW_SHAPES = [(), (3,), (2, 3)]


def sample(dtype, rows, row_shape, seed):
    """Deterministic data of any dtype: random bytes, made valid."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    n = rows * int(np.prod(row_shape, dtype=np.int64))
    raw = rng.integers(0, 256, size=n * dtype.itemsize, dtype=np.uint8)
    arr = raw.view(dtype) if n else np.empty(0, dtype)
    if dtype.kind == "b":
        arr = raw.view(np.uint8)[: n].astype(bool) if n else arr
    elif dtype.kind in "fc":
        arr = rng.standard_normal(n * (2 if dtype.kind == "c" else 1)).astype(
            np.dtype(dtype.str[:1] + dtype.kind.replace("c", "f") + str(dtype.itemsize // (2 if dtype.kind == "c" else 1)))
        ).view(dtype)
    elif dtype.kind == "U":
        arr = np.array(["".join(chr(0x61 + (i * 7 + j) % 26) for j in range(i % 6)) for i in range(n)], dtype)
    elif dtype.names:
        arr = np.zeros(n, dtype)
        for name in dtype.names:
            sub = dtype.fields[name][0]
            if sub.kind == "U":
                arr[name] = [f"r{i % 99}" for i in range(n)]
            else:
                arr[name] = rng.integers(0, 100, size=arr[name].shape)
    return np.ascontiguousarray(arr.reshape((rows, *row_shape)))


@pytest.mark.parametrize("row_shape", ROW_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_numpy(npy, dtype, row_shape):
    chunks = [sample(dtype, rows, row_shape, seed) for seed, rows in enumerate([1, 5, 0, 17])]
    with NpyAppendArray(npy) as out:
        for chunk in chunks:
            out.append(chunk)
        assert out.shape == (23, *row_shape)
        assert out.dtype == np.dtype(dtype)
        assert out.fortran_order is False
        assert out.filename == npy
    got = np.load(npy)
    assert got.dtype == np.dtype(dtype)  # also the byte order
    assert got.shape == (23, *row_shape)
    # numpy.concatenate would change the byte order: compare the bytes.
    assert got.tobytes() == b"".join(c.tobytes() for c in chunks)
    np.testing.assert_array_equal(got, np.concatenate(chunks))
    assert not os.path.exists(npy + ".journal")


@pytest.mark.skipif(upstream is None, reason="npy-append-array is not installed")
@pytest.mark.parametrize("row_shape", [(), (4,)], ids=str)
@pytest.mark.parametrize("dtype", ["<i4", "<f8", ">f4", "U3", [("a", "<i4"), ("b", "<f8", (3,))]], ids=str)
def test_same_result_as_npy_append_array(tmp_path, dtype, row_shape):
    chunks = [sample(dtype, rows, row_shape, seed) for seed, rows in enumerate([3, 1, 8])]
    ours, theirs = str(tmp_path / "ours.npy"), str(tmp_path / "theirs.npy")
    with NpyAppendArray(ours) as a, upstream.NpyAppendArray(theirs) as b:
        for chunk in chunks:
            a.append(chunk)
            b.append(chunk)
        assert a.shape == b.shape
        assert a.dtype == b.dtype
    x, y = np.load(ours), np.load(theirs)
    assert x.dtype == y.dtype and x.shape == y.shape
    assert x.tobytes() == y.tobytes()


def test_reopen_continues(npy):
    with NpyAppendArray(npy) as out:
        out.append(np.arange(4, dtype="<i8"))
    with NpyAppendArray(npy) as out:
        assert out.shape == (4,)
        out.append(np.arange(4, 7, dtype="<i8"))
    np.testing.assert_array_equal(np.load(npy), np.arange(7))


def test_appends_to_np_save_output(npy):
    np.save(npy, np.arange(6, dtype="<f4").reshape(3, 2))
    with NpyAppendArray(npy) as out:
        assert out.shape == (3, 2)
        out.append(np.ones((1, 2), "<f4"))
    np.testing.assert_array_equal(np.load(npy)[-1], [1, 1])
    assert np.load(npy).shape == (4, 2)


def test_delete_if_exists(npy):
    np.save(npy, np.arange(3, dtype="<i2"))
    with NpyAppendArray(npy, delete_if_exists=True) as out:
        assert out.shape is None
        out.append(np.arange(2, dtype="<f8"))
    np.testing.assert_array_equal(np.load(npy), [0.0, 1.0])


def test_no_cast(npy):
    with NpyAppendArray(npy) as out:
        out.append(np.arange(3, dtype="<f4"))
        with pytest.raises(TypeError, match="no value is ever cast"):
            out.append(np.arange(3, dtype="<f8"))
        with pytest.raises(npy_append.DtypeMismatchError):
            out.append(np.arange(3, dtype=">f4"))
        with pytest.raises(npy_append.DtypeMismatchError):
            out.append([1.0, 2.0])
    np.testing.assert_array_equal(np.load(npy), [0, 1, 2])


def test_shape_mismatch(npy):
    with NpyAppendArray(npy) as out:
        out.append(np.zeros((2, 3), "<i4"))
        with pytest.raises(ValueError, match="shape mismatch"):
            out.append(np.zeros((2, 4), "<i4"))
        with pytest.raises(npy_append.ShapeMismatchError):
            out.append(np.zeros(3, "<i4"))
    assert np.load(npy).shape == (2, 3)


def test_append_after_close_raises_and_keeps_file(npy):
    out = NpyAppendArray(npy)
    out.append(np.arange(5, dtype="<i4"))
    out.close()
    out.close()  # idempotent
    assert out.shape == (5,)
    with pytest.raises(npy_append.ClosedError):
        out.append(np.arange(2, dtype="<i4"))
    np.testing.assert_array_equal(np.load(npy), np.arange(5))


def test_non_contiguous_input(npy):
    base = np.arange(24, dtype="<i4").reshape(4, 6)
    with NpyAppendArray(npy) as out:
        out.append(base[:, ::2])
        out.append(np.asfortranarray(base[:, :3]))
    np.testing.assert_array_equal(np.load(npy), np.concatenate([base[:, ::2], base[:, :3]]))


def test_each_append_is_visible_to_numpy(npy):
    out = NpyAppendArray(npy)
    for i in range(3):
        out.append(np.full((1, 2), i, "<u2"))
        assert np.load(npy, mmap_mode="r").shape == (i + 1, 2)
    out.update_header()
    out.close()


def test_update_header_and_rewrite_flag(npy):
    with NpyAppendArray(npy, rewrite_header_on_append=False) as out:
        out.append(np.arange(3, dtype="<i4"))
        out.update_header()
        assert np.load(npy).shape == (3,)


def write_old_header(path, arr):
    """A .npy with a header padded only to 64 bytes (numpy < 1.24)."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (arr.dtype.str, arr.shape)
    total = 10 + len(text) + 1
    pad = (-total) % 64
    header = (text + " " * pad + "\n").encode("latin1")
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + arr.tobytes())


def test_ensure_appendable(npy):
    arr = np.arange(3, dtype="<f4")
    write_old_header(npy, arr)
    np.testing.assert_array_equal(np.load(npy), arr)
    assert npy_append.ensure_appendable(npy) is True
    assert npy_append.is_appendable(npy) is True
    with NpyAppendArray(npy) as out:
        out.append(np.array([9], "<f4"))
    np.testing.assert_array_equal(np.load(npy), [0, 1, 2, 9])


def crashed_upstream_file(path, rows, extra_bytes):
    """What a killed npy-append-array writer leaves: header for `rows` rows
    of (2,) <i4, then more data bytes."""
    np.save(path, np.arange(rows * 2, dtype="<i4").reshape(rows, 2))
    with open(path, "ab") as f:
        f.write(np.arange(100, 100 + 8, dtype="<i4").tobytes()[:extra_bytes])


def test_recover_adopts_whole_rows(npy):
    crashed_upstream_file(npy, 3, 8 * 2 + 4)  # two whole rows and half a row
    with pytest.raises(ValueError, match="bytes past"):
        NpyAppendArray(npy)
    assert npy_append.recover(npy) is True
    got = np.load(npy)
    assert got.shape == (5, 2)
    np.testing.assert_array_equal(got[3:], [[100, 101], [102, 103]])


def test_recover_zerofill(npy):
    crashed_upstream_file(npy, 3, 8 * 2 + 4)
    assert npy_append.recover(npy, zerofill_incomplete=True) is True
    got = np.load(npy)
    assert got.shape == (6, 2)
    np.testing.assert_array_equal(got[5], [104, 0])


def test_recover_clean_file_changes_nothing(npy):
    np.save(npy, np.arange(4, dtype="<i4"))
    before = open(npy, "rb").read()
    assert npy_append.recover(npy) is True
    assert open(npy, "rb").read() == before


def test_help_is_useful():
    import pydoc

    text = pydoc.render_doc(NpyAppendArray, renderer=pydoc.plaintext)
    assert "kill" in text and "DtypeMismatchError" in text and "append" in text
    for f in (npy_append.recover, npy_append.is_appendable, npy_append.ensure_appendable):
        assert len(f.__doc__) > 40


def test_recover_zerofill_version_3_header(npy):
    """A file with a version 3.0 (UTF-8) header, a field name outside
    latin-1, left with a torn row: the row is completed with zeros."""
    dtype = np.dtype([("\u03b1", "<i4"), ("b", "<i4")])
    rows = np.array([(1, 2), (3, 4), (5, 6)], dtype)
    with open(npy, "wb") as f:
        np.lib.format.write_array(f, rows, version=(3, 0))
    with open(npy, "ab") as f:
        f.write(np.int32(7).tobytes())  # half of a fourth row
    assert npy_append.recover(npy, zerofill_incomplete=True) is True
    got = np.load(npy)
    assert got.dtype == dtype and got.shape == (4,)
    np.testing.assert_array_equal(got[:3], rows)
    assert tuple(got[3]) == (7, 0)


def test_io_errors_carry_errno_and_the_message(tmp_path):
    """A library I/O error is an OSError with the operating system's errno and
    the library's message (what, where)."""
    import errno

    path = tmp_path / "missing-dir" / "x.npy"
    with pytest.raises(npy_append.NpyAppendIOError) as info:
        npy_append.Appender.open_or_recover(path, dtype="<f4")
    assert isinstance(info.value, OSError)
    assert info.value.errno == errno.ENOENT
    assert str(path) in str(info.value)
    assert not (tmp_path / "missing-dir").exists()


# npy-append-array's README example, verbatim but for the import line and
# the file name; the two commented lines (np.save of a long-descriptor dtype
# first) are the variant its README says provokes an error.
README_EXAMPLE = """
import sys
import numpy as np
from {module} import NpyAppendArray

dtype = {dtype}

arr1 = np.array([[1,2],[3,4]], dtype=dtype)
arr2 = np.array([[1,2],[3,4],[5,6]], dtype=dtype)

filename = sys.argv[1]

{save}

with NpyAppendArray(filename) as npaa:
    npaa.append(arr1)
    npaa.append(arr2)
    npaa.append(arr2)

data = np.load(filename, mmap_mode="r")

print(data)
"""
LONG_DESCR = "[('____a_not_uncommonly_long_descriptor_la_la_la_la', int)]"


def run_example(tmp_path, module, dtype="int", save=""):
    import subprocess
    import sys

    path = tmp_path / f"{module}.npy"
    code = README_EXAMPLE.format(module=module, dtype=dtype, save=save)
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    return done, path


@pytest.mark.skipif(upstream is None, reason="npy-append-array is not installed")
@pytest.mark.parametrize(
    "dtype, save",
    [("int", ""), (LONG_DESCR, "np.save(filename, arr1)")],
    ids=["as-written", "np.save-first-long-descriptor"],
)
def test_npy_append_array_readme_example_runs_unchanged(tmp_path, dtype, save):
    """The job of npy-append-array's README, with only the import changed,
    prints the same and writes the same file; also its variant that starts
    from np.save with a long descriptor (an error with numpy < 1.24 headers,
    appendable with today's)."""
    theirs, their_path = run_example(tmp_path, "npy_append_array", dtype, save)
    ours, our_path = run_example(tmp_path, "npy_append", dtype, save)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert our_path.read_bytes() == their_path.read_bytes()
    assert not os.path.exists(str(our_path) + ".journal")
