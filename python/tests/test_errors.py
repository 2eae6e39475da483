"""Errors as Python users catch them: operating-system errors as the
built-in OSError subclasses (keeping the library's message and the
NpyAppendError base), and messages that name Python arguments."""

import errno
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import npy_append
from npy_append import Appender, NpyAppendArray

from conftest import import_upstream

upstream = import_upstream("test_errors comparisons with npy-append-array")


def test_a_missing_directory_is_file_not_found(tmp_path):
    path = tmp_path / "missing-dir" / "x.npy"
    with pytest.raises(FileNotFoundError) as info:
        Appender.open_or_recover(path, dtype="<f4")
    e = info.value
    assert isinstance(e, npy_append.NpyAppendIOError) and isinstance(e, npy_append.NpyAppendError)
    assert isinstance(e, npy_append.NpyAppendFileNotFoundError)
    assert e.errno == errno.ENOENT
    assert str(path) in str(e) and "No such file or directory" in str(e)
    assert not (tmp_path / "missing-dir").exists()


def test_a_directory_is_is_a_directory_error(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        Appender.open_or_recover(tmp_path, dtype="<f4")
    assert isinstance(info.value, npy_append.NpyAppendIOError)
    assert info.value.errno == errno.EISDIR
    assert str(tmp_path) in str(info.value)


PERMISSION_CHILD = """
import sys
import npy_append
try:
    npy_append.Appender.open_or_recover(sys.argv[1], dtype="<f4")
except PermissionError as e:
    ok = isinstance(e, npy_append.NpyAppendIOError) and e.errno in (1, 13)
    print("PermissionError" if ok else "wrong class", e)
except BaseException as e:
    print("unexpected", type(e).__mro__, e)
else:
    print("no error")
"""


def drop_file_permission_override():
    """In a child before exec: as root, drop the capabilities that let root
    ignore file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
    CAP_FOWNER) from the bounding set, so the new program is refused like
    any user."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for cap in (1, 2, 3):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_a_read_only_directory_is_permission_error(tmp_path):
    locked = tmp_path / "read-only"
    locked.mkdir()
    locked.chmod(0o555)
    path = locked / "x.npy"
    run = lambda **kw: subprocess.run(  # noqa: E731
        [sys.executable, "-c", textwrap.dedent(PERMISSION_CHILD), str(path)],
        capture_output=True,
        text=True,
        **kw,
    )
    if os.geteuid() == 0:
        try:
            done = run(preexec_fn=drop_file_permission_override)
        except subprocess.SubprocessError as e:
            print(f"SKIP test_a_read_only_directory_is_permission_error: root cannot drop CAP_DAC_OVERRIDE ({e})")
            if os.environ.get("CI") == "true":
                raise
            return
    else:
        done = run()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("PermissionError"), done.stdout
    assert str(path) in done.stdout
    assert os.listdir(locked) == []


def test_recover_of_a_missing_file_raises_file_not_found_and_creates_nothing(tmp_path):
    typo = tmp_path / "typo.npy"
    with pytest.raises(FileNotFoundError) as info:
        npy_append.recover(typo)
    assert isinstance(info.value, npy_append.NpyAppendError)
    assert info.value.errno == errno.ENOENT and str(typo) in str(info.value)
    assert os.listdir(tmp_path) == []
    if upstream is not None:
        with pytest.raises(FileNotFoundError):
            upstream.recover(str(typo))
        assert os.listdir(tmp_path) == []


def test_the_trailing_bytes_message_names_python_arguments(npy):
    np.save(npy, np.arange(3, dtype="<i8"))
    with open(npy, "ab") as f:
        f.write(b"\x01" * 12)  # one whole row and 4 bytes
    for opener in (lambda: Appender.open_or_recover(npy), lambda: NpyAppendArray(npy)):
        with pytest.raises(npy_append.TrailingBytesError) as info:
            opener()
        message = str(info.value)
        assert "::" not in message, message
        assert 'tail_policy="cut"' in message and 'tail_policy="adopt"' in message, message
        assert "recover(" in message, message
    Appender.open_or_recover(npy, tail_policy="adopt").close()
    np.testing.assert_array_equal(np.load(npy)[:3], np.arange(3))


def test_a_cursor_before_the_dtype_names_python_arguments(npy):
    w = Appender.open_or_recover(npy)
    with pytest.raises(npy_append.InvalidArgumentError) as info:
        w.commit(cursor=b"x")
    message = str(info.value)
    assert "::" not in message and "dtype=" in message, message
    w.close()
    assert not os.path.exists(npy)
