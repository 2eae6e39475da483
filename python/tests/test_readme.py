"""The README's Python examples run as written (with the prelude of
readme_examples.py for the names they leave to the reader)."""

import subprocess
import sys

import pytest

from readme_examples import READMES, examples, ray_installed, torch_installed


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_the_examples_run_in_order(tmp_path, readme):
    found = examples(readme)
    assert found, f"no python examples in {readme}"
    for e in found:
        if e.needs_torch and not torch_installed():
            print(f"SKIP {readme.name} line {e.line}: torch is not installed")
            continue
        if e.needs_ray and not ray_installed():
            # Ray is optional; the test command's own virtualenv has it.
            print(f"SKIP {readme.name} line {e.line}: ray is not installed")
            continue
        # Run as a script file, as a user runs it: spawned worker processes
        # (the PyTorch example's DataLoader) import the main module again
        # from its file, which `python -c` would not have.
        script = tmp_path / f"{e.module}.py"
        script.write_text(e.program(), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{readme.name} line {e.line}:\n{done.stderr}"
