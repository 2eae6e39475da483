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
