#!/usr/bin/env bash
# The one test command: sets up numpy in a private virtualenv, then runs every
# test (unit, integration, examples, doctests) in release mode.
#
#   bash scripts/test.sh [extra cargo test args...]
#
# Extra arguments go to both cargo test runs, e.g. `bash scripts/test.sh -- --nocapture`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/target/pyenv"
py="$venv/bin/python"

if [[ ! -x "$py" ]]; then
    echo "test.sh: creating virtualenv $venv" >&2
    mkdir -p "$root/target"
    python3 -m venv "$venv"
fi
if ! "$py" -c "import numpy" >/dev/null 2>&1; then
    echo "test.sh: installing numpy into $venv" >&2
    "$py" -m pip install --quiet --disable-pip-version-check --no-input numpy
fi
"$py" -c "import numpy, sys; print(f'test.sh: python {sys.version.split()[0]}, numpy {numpy.__version__}')" >&2

export NPY_APPEND_PYTHON="$py"

cargo test --release --all-targets "$@"
cargo test --doc --release "$@"
