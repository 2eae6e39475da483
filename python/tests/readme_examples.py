"""The Python examples of README.md and python/README.md, as programs.

Each ```python block becomes a module: a typed prelude that defines what
the examples leave to the reader (``batches()``, ``labelled_batches()``,
``batch``, ``all_rows``) and makes the ``data`` directory, then the block.
The examples of one README run in order in one directory (the PyTorch
example reads the group the group example wrote).

    python readme_examples.py --write DIR   # the modules and a mypy.ini
    cd DIR && mypy --config-file mypy.ini .  # mypy --strict over them

test_readme.py runs them.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import re
import textwrap
from typing import List, NamedTuple

ROOT = pathlib.Path(__file__).resolve().parents[2]
READMES = (ROOT / "README.md", ROOT / "python" / "README.md")

PRELUDE = textwrap.dedent(
    '''\
    # The names the README examples leave to the reader.
    import os as _os
    from typing import Iterator as _Iterator
    from typing import Tuple as _Tuple

    import numpy as _np
    import numpy.typing as _npt

    _os.makedirs("data", exist_ok=True)


    def batches() -> _Iterator[_npt.NDArray[_np.float32]]:
        """Input batches: three of 4 rows of 16 float32."""
        for i in range(3):
            yield _np.full((4, 16), i, _np.float32)


    def labelled_batches(
        start: int = 0,
    ) -> _Iterator[_Tuple[_npt.NDArray[_np.float32], _npt.NDArray[_np.int64]]]:
        """Input records from ``start`` on: features (4 rows of 768) and labels."""
        for i in range(start, 3):
            yield _np.full((4, 768), i, _np.float32), _np.full(4, i, _np.int64)


    batch = _np.ones((4, 16), _np.float32)
    all_rows = _np.zeros((1000, 512), _np.uint32)
    # The example.
    '''
)


class Example(NamedTuple):
    """One ```python block of a README."""

    readme: pathlib.Path
    line: int
    module: str
    code: str

    @property
    def needs_torch(self) -> bool:
        """Whether the example imports torch."""
        return re.search(r"^\s*(import|from) torch\b", self.code, re.M) is not None

    @property
    def needs_ray(self) -> bool:
        """Whether the example imports Ray (or npy_append.ray)."""
        return re.search(r"^\s*(import|from) (npy_append\.)?ray\b", self.code, re.M) is not None

    def program(self) -> str:
        """The prelude and the example."""
        return PRELUDE + self.code


def examples(readme: pathlib.Path) -> List[Example]:
    """The ```python blocks of `readme`, in order."""
    found = []
    lines = readme.read_text(encoding="utf-8").splitlines()
    start = None
    for i, line in enumerate(lines):
        if start is None and line.strip() == "```python":
            start = i + 1
        elif start is not None and line.strip() == "```":
            code = "\n".join(lines[start:i]) + "\n"
            stem = "python_readme" if readme.parent.name == "python" else "readme"
            n = len(found) + 1
            module = f"example_{stem}_{n}"
            found.append(Example(readme, start + 1, module, code))
            start = None
    return found


def all_examples() -> List[Example]:
    """Every README's examples."""
    return [e for readme in READMES for e in examples(readme)]


def torch_installed() -> bool:
    """Whether torch can be imported."""
    return importlib.util.find_spec("torch") is not None


def ray_installed() -> bool:
    """Whether Ray can be imported (an optional dependency)."""
    return importlib.util.find_spec("ray") is not None


def write(out: pathlib.Path) -> None:
    """Writes every example as a module of `out`, and a mypy.ini that runs
    mypy --strict over them. Without torch installed, torch is an untyped
    import there, so the torch example may subclass its (unknown) Dataset."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("example_*.py"):
        old.unlink()
    config = ["[mypy]", "strict = True", ""]
    for e in all_examples():
        (out / f"{e.module}.py").write_text(e.program(), encoding="utf-8")
        if e.needs_torch and not torch_installed():
            config += [f"[mypy-{e.module}]", "disallow_subclassing_any = False", ""]
    if not torch_installed():
        config += ["[mypy-torch.*]", "ignore_missing_imports = True", ""]
    if not ray_installed():
        config += ["[mypy-ray.*]", "ignore_missing_imports = True", ""]
    (out / "mypy.ini").write_text("\n".join(config), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=pathlib.Path, required=True, metavar="DIR")
    write(parser.parse_args().write)
