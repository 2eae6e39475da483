"""is_appendable answers npy-append-array's question with its rule: the
header numpy >= 1.24 would write for the file's dtype, order and shape
(growth padding included) fits in the present header's length."""

import io
import os
import struct

import numpy as np
import pytest

import npy_append
from npy_append import Appender

from conftest import import_upstream

upstream = import_upstream("test_is_appendable comparisons with npy-append-array")


def numpy_header(arr, version=None):
    """The header np.save writes for `arr` (in `version`, else its choice)."""
    d = np.lib.format.header_data_from_array_1_0(arr)
    out = io.BytesIO()
    if version == (2, 0):
        np.lib.format.write_array_header_2_0(out, d)
    else:
        np.lib.format.write_array_header_1_0(out, d)
    return out.getvalue()


def write_with_header_text(path, arr, text, version=(1, 0)):
    """`arr`'s data after a header of exactly `text` (its padding included)
    and a newline, in `version`."""
    body = (text + "\n").encode("latin1")
    fmt = "<H" if version == (1, 0) else "<I"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(body)) + body)
        f.write(arr.tobytes(order="F" if np.isfortran(arr) else "C"))


def dict_text(arr):
    d = np.lib.format.header_data_from_array_1_0(arr)
    return "{" + "".join("'%s': %r, " % (k, d[k]) for k in sorted(d)) + "}"


def aligned(text, prefix, align, extra=0):
    """`text` padded with spaces so that prefix + text + newline is a
    multiple of `align` bytes (no more), plus `extra` spaces."""
    return text + " " * ((-(prefix + len(text) + 1)) % align + extra)


def one_short_of_numpy():
    """A 1-D array whose numpy header is 192 bytes because its text, growth
    padding and newline end exactly at 128 (numpy then adds 64 spaces), and
    a 128-byte header for it with one growth space fewer: room for the
    20 digits of any row count, but shorter than numpy's own."""
    arr = np.zeros(3, dtype=[("a" * 32, "<f4")])
    text = dict_text(arr)
    growth = 21 - len(str(arr.shape[0]))
    assert 10 + len(text) + growth + 1 == 128 and len(numpy_header(arr)) == 192
    return arr, text + " " * (growth - 1) + " "


def cases(tmp_path):
    """{name: (path, expected answer)}: files npy-append-array's rule tells
    apart."""
    out = {}

    def add(name, expected):
        path = str(tmp_path / f"{name}.npy")
        out[name] = (path, expected)
        return path

    c = np.arange(6, dtype="<f8").reshape(3, 2)
    f = np.asfortranarray(np.arange(24, dtype="<i4").reshape(2, 3, 4))
    np.save(add("c-order", True), c)
    np.save(add("fortran-order", True), f)
    np.save(add("0-d", True), np.float64(1.5))
    np.save(add("1-d-empty", True), np.zeros(0, "<u2"))
    np.save(add("object", True), np.array([1, "a"], dtype=object), allow_pickle=True)
    path = add("needs-recovery", True)
    np.save(path, c)
    with open(path, "ab") as fp:
        fp.write(b"\0" * 12)
    # Headers as numpy < 1.24 wrote them: aligned to 16 bytes, no growth room.
    write_with_header_text(add("no-room-c", False), c, aligned(dict_text(c), 10, 16))
    write_with_header_text(add("no-room-fortran", False), f, aligned(dict_text(f), 10, 16))
    # Aligned to 64 bytes without growth padding, where numpy's growth
    # padding crosses into another 64 bytes.
    wide = np.zeros(3, dtype=[("a" * 40, "<f4")])
    assert len(numpy_header(wide)) == 192
    write_with_header_text(add("aligned-64-no-growth", False), wide, aligned(dict_text(wide), 10, 64))
    # numpy's text with one growth space fewer, still 128 bytes: numpy's own
    # header is 192.
    arr, text = one_short_of_numpy()
    write_with_header_text(add("one-short-of-numpy", False), arr, text)
    # Version 2.0 and 3.0 headers.
    with open(add("v2-numpy", True), "wb") as fp:
        np.lib.format.write_array(fp, c, version=(2, 0))
    write_with_header_text(add("v2-no-room", False), c, aligned(dict_text(c), 12, 16), version=(2, 0))
    with open(add("v3-numpy", True), "wb") as fp:
        np.lib.format.write_array(fp, np.zeros(3, dtype=[("\u03b1", "<i4")]), version=(3, 0))
    # Written by this library.
    with Appender.open_or_recover(add("appender", True), dtype="<f4", row_shape=(5,)) as w:
        w.append(np.zeros((7, 5), "<f4"))
    return out


def test_is_appendable_is_npy_append_arrays_answer(tmp_path):
    for name, (path, expected) in cases(tmp_path).items():
        before = open(path, "rb").read()
        assert npy_append.is_appendable(path) is expected, name
        if upstream is not None:
            assert upstream.is_appendable(path) is expected, name
        assert open(path, "rb").read() == before, name
        assert not os.path.exists(path + ".journal"), name


def test_a_header_one_short_of_numpy_is_appendable_for_the_library_alone(tmp_path):
    arr, text = one_short_of_numpy()
    path = str(tmp_path / "short.npy")
    write_with_header_text(path, arr, text)
    assert npy_append.is_appendable(path) is False
    # The library appends to it in place all the same: its header has room
    # for any row count.
    state, problem, room = npy_append._native.file_state(path)
    assert (state, room) == ("clean", True)
    with npy_append.NpyAppendArray(path) as out:
        out.append(np.ones(2, arr.dtype))
    got = np.load(path)
    assert got.shape == (5,) and os.path.getsize(path) == 128 + 5 * 4


def test_a_large_version_2_header(tmp_path):
    """A header over npy-append-array's 10000-byte reading limit (numpy
    writes version 2.0 past 65535 bytes): answered all the same."""
    dtype = np.dtype([(f"field_{i:05d}_" + "x" * 40, "<u1") for i in range(1500)])
    path = str(tmp_path / "wide.npy")
    np.save(path, np.zeros(2, dtype))
    with open(path, "rb") as fp:
        assert np.lib.format.read_magic(fp) == (2, 0)
    assert npy_append.is_appendable(path) is True
    if upstream is not None:
        with pytest.raises(ValueError, match="large"):
            upstream.is_appendable(path)


def test_a_missing_file(tmp_path):
    missing = str(tmp_path / "missing.npy")
    with pytest.raises(FileNotFoundError):
        npy_append.is_appendable(missing)
    if upstream is not None:
        with pytest.raises(FileNotFoundError):
            upstream.is_appendable(missing)
    assert os.listdir(tmp_path) == []
