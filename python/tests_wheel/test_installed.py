"""What was installed, and how: run by scripts/test-wheel.sh in a new
virtualenv, which says in NPY_APPEND_INSTALLED what it installed there:

- ``wheel:<path>``: the wheel of scripts/build-wheel.sh, installed by pip
  with ``--only-binary :all:`` (pip may build nothing) from a PATH without
  a Rust toolchain;
- ``source:<path>``: ``pip install <path>`` of the python/ directory, a
  build for the running interpreter.
"""

import importlib.machinery
import importlib.metadata
import json
import os
import platform
import shutil
import sys
import sysconfig
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import npy_append
from npy_append import _native


def installed():
    how = os.environ.get("NPY_APPEND_INSTALLED", "")
    kind, _, path = how.partition(":")
    if kind not in ("wheel", "source") or not path:
        message = "NPY_APPEND_INSTALLED is not wheel:<path> or source:<path>; scripts/test-wheel.sh sets it"
        print(f"SKIP installed package checks: {message}")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return kind, Path(path).resolve()


def direct_url():
    """What pip recorded about where the package came from (PEP 610)."""
    text = importlib.metadata.distribution("npy-append").read_text("direct_url.json")
    assert text is not None, "pip recorded no direct_url.json"
    return json.loads(text)


def test_imported_from_this_environment():
    """The package and its extension are the installed ones, not the
    source tree's."""
    installed()
    site = Path(sysconfig.get_paths()["platlib"]).resolve()
    for module in (npy_append, _native):
        assert Path(module.__file__).resolve().is_relative_to(site), module.__file__


def test_installed_as_announced():
    kind, path = installed()
    if kind == "wheel":
        check_wheel_install(path)
    else:
        check_source_install(path)


def check_wheel_install(wheel):
    """From the wheel file, with no Rust toolchain to be found."""
    assert shutil.which("cargo") is None and shutil.which("rustc") is None, os.environ["PATH"]
    url = direct_url()
    assert "archive_info" in url, url
    assert Path(unquote(urlparse(url["url"]).path)) == wheel
    # One module for every CPython >= 3.11: the stable ABI's file name.
    assert Path(_native.__file__).name == "_native.abi3.so"
    wheel_file = importlib.metadata.distribution("npy-append").read_text("WHEEL")
    tags = {line.split(":", 1)[1].strip() for line in wheel_file.splitlines() if line.startswith("Tag:")}
    arch = platform.machine()
    assert tags == {f"cp311-abi3-manylinux2014_{arch}", f"cp311-abi3-manylinux_2_17_{arch}"}
    version = importlib.metadata.version("npy-append")
    assert wheel.name == f"npy_append-{version}-cp311-abi3-manylinux2014_{arch}.manylinux_2_17_{arch}.whl"
    assert sys.version_info >= (3, 11)


def check_source_install(source):
    """Built by pip from the python/ directory, for this interpreter only."""
    url = direct_url()
    assert "dir_info" in url, url
    assert Path(unquote(urlparse(url["url"]).path)) == source
    assert Path(_native.__file__).name == "_native" + importlib.machinery.EXTENSION_SUFFIXES[0]
