import os
import subprocess
import sys
import textwrap

import pytest


@pytest.fixture
def npy(tmp_path):
    """A path for a new .npy file."""
    return str(tmp_path / "data.npy")


def spawn(code, *args):
    """Starts a Python child running ``code`` with ``args`` in sys.argv[1:]."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def import_upstream(what):
    """npy-append-array, or None after a SKIP line naming `what` (the tests
    that compare with it); under CI=true its absence is an error."""
    try:
        import npy_append_array
    except ImportError:  # optional outside CI; the test command installs it
        print(f"SKIP {what}: npy-append-array is not installed")
        if os.environ.get("CI") == "true":
            raise
        return None
    return npy_append_array
