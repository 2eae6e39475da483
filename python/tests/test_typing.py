"""Types for typed-Python users: every stub entry has a docstring, every
public function and method of the pure-Python modules is annotated, the
version is there, and mypy --strict accepts the package and sees the
classes' types (not Any)."""

import ast
import importlib.metadata
import inspect
import os
import pathlib
import subprocess
import sys

import pytest

import npy_append

PACKAGE = pathlib.Path(npy_append.__file__).parent


def test_version_is_the_distributions():
    assert npy_append.__version__ == importlib.metadata.version("npy-append")


def test_all_lists_every_error_class():
    from npy_append import _errors

    assert set(_errors.__all__) <= set(npy_append.__all__)
    for name in npy_append.__all__:
        assert getattr(npy_append, name).__doc__, name


def test_every_stub_entry_has_a_docstring():
    tree = ast.parse((PACKAGE / "_native.pyi").read_text())
    missing = []

    def visit(node, prefix=""):
        for child in node.body:
            if isinstance(child, (ast.ClassDef, ast.FunctionDef)):
                name = prefix + child.name
                if ast.get_docstring(child) is None:
                    missing.append(name)
                if isinstance(child, ast.ClassDef):
                    visit(child, name + ".")

    visit(tree)
    assert missing == []


def public_callables():
    for module in ("_dropin", "_reader", "_groups", "_ragged", "_dtypes"):
        mod = getattr(npy_append, module, None) or __import__(f"npy_append.{module}", fromlist=["x"])
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{module}.{name}", obj
            elif inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr not in ("__init__", "__getitem__", "__len__", "__iter__"):
                        continue
                    func = member.fget if isinstance(member, property) else member
                    if inspect.isfunction(func):
                        yield f"{module}.{name}.{attr}", func


def test_every_public_function_and_method_is_annotated():
    unannotated = []
    for name, func in public_callables():
        sig = inspect.signature(func)
        params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
        if sig.return_annotation is inspect.Signature.empty or any(
            p.annotation is inspect.Parameter.empty for p in params
        ):
            unannotated.append(name)
    assert unannotated == []


def mypy_or_skip():
    try:
        import mypy  # noqa: F401
    except ImportError:
        print("SKIP test_mypy_strict: mypy is not installed")
        if os.environ.get("CI") == "true":
            raise
        return False
    return True


REVEAL = """
from npy_append import GroupReader, NpyAppendArray, RaggedReader, Reader, is_appendable
r = GroupReader("g.group")
reveal_type(r)
reveal_type(r.array("x.npy"))
reveal_type(Reader("a.npy").shape)
reveal_type(RaggedReader("r.group")[0])
reveal_type(NpyAppendArray("a.npy").shape)
reveal_type(is_appendable("a.npy"))
"""


def test_mypy_strict(tmp_path):
    if not mypy_or_skip():
        return
    # The package as this interpreter imports it (a path inside
    # site-packages would make mypy treat site-packages as sources).
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "-p", "npy_append"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "reveal.py").write_text(REVEAL)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "reveal.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    revealed = [line.split("Revealed type is ", 1)[1] for line in done.stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == 6 and not any(t.strip('"') == "Any" for t in revealed), revealed
    assert "npy_append._groups.GroupReader" in revealed[0]
    assert "bool" in revealed[5]
