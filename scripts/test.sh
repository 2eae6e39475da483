#!/usr/bin/env bash
# The one test command: sets up numpy in a private virtualenv (target/pyenv),
# then runs every test (unit, integration, examples, benches as tests,
# doctests) in release mode, so the kill tests run fast, then builds the
# Python binding (python/) into the same virtualenv and runs its pytest suite,
# then builds the wheel and tests it installed without a Rust toolchain
# (scripts/test-wheel.sh).
#
#   bash scripts/test.sh [extra cargo test args...]
#
# Extra arguments go to both cargo test runs, e.g.
# `bash scripts/test.sh -- --nocapture` or `bash scripts/test.sh numpy`.
# The numpy tests find the interpreter through NPY_APPEND_PYTHON.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/target/pyenv"
py="$venv/bin/python"
numpy_req="numpy>=1.24"

# shellcheck source=scripts/venv.sh
source "$root/scripts/venv.sh"

pip_install() {
    "$py" -m pip install --quiet --disable-pip-version-check --no-input "$numpy_req"
}

if [[ ! -x "$py" ]] || ! "$py" -c "import sys" >/dev/null 2>&1; then
    echo "test.sh: creating virtualenv $venv" >&2
    make_venv "$venv"
fi
if ! "$py" -c "import numpy" >/dev/null 2>&1; then
    echo "test.sh: installing $numpy_req into $venv" >&2
    if ! pip_install; then
        echo "test.sh: pip failed; recreating $venv and retrying" >&2
        make_venv "$venv"
        pip_install
    fi
fi
"$py" -c "import numpy, sys; print(f'test.sh: python {sys.version.split()[0]}, numpy {numpy.__version__}')" >&2

export NPY_APPEND_PYTHON="$py"

# tests/fs_power_cut.rs makes XFS file systems on loop devices (as root).
if [[ "$(id -u)" == 0 ]] && ! PATH="$PATH:/usr/sbin:/sbin" command -v mkfs.xfs >/dev/null \
    && command -v apt-get >/dev/null; then
    echo "test.sh: installing xfsprogs (mkfs.xfs) for the power-cut tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xfsprogs >/dev/null \
        || echo "test.sh: installing xfsprogs failed; the XFS power-cut test will say so" >&2
fi

cargo test --release --all-targets "$@"
cargo test --doc --release "$@"

# The Python binding (python/): built into the same virtualenv, then its
# pytest suite, which compares the drop-in with npy-append-array and runs
# the dataset tests on a local Ray cluster (Ray Data for the sink).
"$py" -m pip install --quiet --disable-pip-version-check --no-input \
    "maturin>=1.5,<2" pytest npy-append-array mypy "ray[data]>=2.9,<3"
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --release --quiet \
    -m "$root/python/Cargo.toml"
NPY_APPEND_RAY_REQUIRED=1 "$py" -m pytest -q -p no:cacheprovider "$root/python/tests"

# Types: mypy --strict over the package and over the READMEs' Python
# examples (written out as modules by python/tests/readme_examples.py).
"$py" -m mypy --strict --cache-dir "$root/target/mypy-cache" "$root/python/npy_append"
"$py" "$root/python/tests/readme_examples.py" --write "$root/target/readme-examples"
(cd "$root/target/readme-examples" \
    && "$py" -m mypy --config-file mypy.ini --cache-dir "$root/target/mypy-cache" .)

# The wheel users install (scripts/build-wheel.sh), installed and tested in
# new virtualenvs without a Rust toolchain; also `pip install ./python`.
bash "$root/scripts/test-wheel.sh"
