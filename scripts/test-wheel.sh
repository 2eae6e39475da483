#!/usr/bin/env bash
# The Python package as users install it (run by scripts/test.sh):
#
#   bash scripts/test-wheel.sh
#
# 1. Builds the wheel with scripts/build-wheel.sh (a failure is a failure).
# 2. Installs it into a new virtualenv from a PATH without cargo, rustc or
#    rustup, with `pip install --only-binary :all:` (pip may build nothing,
#    so nothing is compiled), and runs there python/tests_wheel (what was
#    installed, from where) and the package's whole pytest suite
#    (python/tests: the drop-in's tests, which compare it with
#    npy-append-array, and test_readme.py, every ```python example of
#    README.md and python/README.md).
# 3. python/tests_wheel and the README examples with the same wheel and the
#    oldest numpy the package allows (1.24), and with each other CPython
#    >= 3.11 found on this machine (python3.N on PATH or under pyenv; a
#    SKIP line names each one missing).
# 4. An older CPython (3.10), when there is one, must refuse the wheel.
# 5. `pip install ./python` (a source build; cargo reuses the release build
#    of `maturin develop`) into a new virtualenv, and the same tests there.
#
# The virtualenvs are under target/wheel-test/; pip takes numpy, pytest and
# npy-append-array from PyPI as wheels.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/venv.sh
source "$root/scripts/venv.sh"

envs="$root/target/wheel-test"
pip_flags=(--quiet --disable-pip-version-check --no-input)

wheel="$(bash "$root/scripts/build-wheel.sh" | tail -n 1)"
echo "test-wheel.sh: built in ${SECONDS} s; testing $(basename "$wheel")" >&2

# PATH without the directories that hold a Rust toolchain.
no_rust_path=""
IFS=: read -r -a path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
    if [[ -z "$dir" || -e "$dir/cargo" || -e "$dir/rustc" || -e "$dir/rustup" ]]; then
        continue
    fi
    no_rust_path="${no_rust_path:+$no_rust_path:}$dir"
done
if PATH="$no_rust_path" command -v cargo >/dev/null || PATH="$no_rust_path" command -v rustc >/dev/null; then
    echo "test-wheel.sh: cargo or rustc still found on $no_rust_path" >&2
    exit 1
fi

# The interpreter for CPython 3.N: python3.N on PATH, else pyenv's newest
# 3.N; nothing when neither runs.
find_python() {
    local minor="$1" candidate
    local candidates=("$(command -v "python3.$minor" || true)")
    candidates+=("$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/3.$minor".*/bin/python3 2>/dev/null | sort -V | tail -n 1)")
    for candidate in "${candidates[@]}"; do
        if [[ -n "$candidate" ]] && "$candidate" -c \
            "import sys; assert sys.version_info[:2] == (3, $minor)" >/dev/null 2>&1; then
            echo "$candidate"
            return
        fi
    done
}

# install_and_test NAME PYTHON NUMPY_REQUIREMENT TESTS...: a new virtualenv
# NAME, the wheel installed there without a Rust toolchain, then pytest on
# the TESTS (paths in python/).
install_and_test() {
    local name="$1" python="$2" numpy_req="$3" venv="$envs/$1"
    shift 3
    local tests=("${@/#/$root/python/}") reqs=(pytest)
    # What the whole suite needs besides (as scripts/test.sh installs it):
    # the drop-in's tests compare it with npy-append-array, and
    # test_typing.py runs mypy over the installed package.
    [[ " $* " == *" tests "* ]] && reqs+=(npy-append-array mypy)
    make_venv "$venv" "$python"
    local run=(env PATH="$venv/bin:$no_rust_path" VIRTUAL_ENV="$venv"
        CARGO_HOME=/nonexistent RUSTUP_HOME=/nonexistent
        NPY_APPEND_INSTALLED="wheel:$wheel")
    "${run[@]}" "$venv/bin/python" -m pip install "${pip_flags[@]}" --only-binary :all: \
        "$wheel" "$numpy_req" "${reqs[@]}"
    "${run[@]}" "$venv/bin/python" -c \
        "import sys, numpy; print(f'test-wheel.sh: $name: python {sys.version.split()[0]}, numpy {numpy.__version__}')" >&2
    # From an empty directory, so that only the installed package can be
    # imported (and mypy sees no site-packages below it).
    mkdir -p "$venv.cwd"
    (cd "$venv.cwd" && "${run[@]}" "$venv/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}")
    echo "test-wheel.sh: $name done at ${SECONDS} s" >&2
}

# The interpreter of the main run: python3, or the first CPython >= 3.11
# found when python3 is older.
main_python="$(command -v python3)"
if ! "$main_python" -c "import sys; assert sys.version_info >= (3, 11)" 2>/dev/null; then
    main_python=""
    for minor in 11 12 13 14; do
        main_python="$(find_python "$minor")"
        [[ -n "$main_python" ]] && break
    done
fi
if [[ -z "$main_python" ]]; then
    echo "SKIP wheel: no CPython >= 3.11 on this machine to install it into"
    [[ "${CI:-}" == "true" ]] && exit 1
    exit 0
fi
install_and_test wheel "$main_python" "numpy>=1.24" tests_wheel tests
install_and_test wheel-numpy1.24 "$main_python" "numpy>=1.24,<1.25" tests_wheel tests/test_readme.py

main_minor="$("$main_python" -c 'import sys; print(sys.version_info[1])')"
for minor in 11 12 13 14; do
    [[ "$minor" == "$main_minor" ]] && continue
    python="$(find_python "$minor")"
    if [[ -z "$python" ]]; then
        echo "SKIP wheel on CPython 3.$minor: no python3.$minor on this machine"
        continue
    fi
    install_and_test "wheel-py3.$minor" "$python" "numpy>=1.24" tests_wheel tests/test_readme.py
done

# Below the floor pip must refuse the wheel (its tags), before any download.
python="$(find_python 10)"
if [[ -z "$python" ]]; then
    echo "SKIP wheel refused by CPython 3.10: no python3.10 on this machine"
else
    venv="$envs/wheel-py3.10"
    make_venv "$venv" "$python"
    if "$venv/bin/python" -m pip install "${pip_flags[@]}" --no-deps --only-binary :all: \
        "$wheel" 2>"$venv/pip.log"; then
        echo "test-wheel.sh: CPython 3.10 installed $(basename "$wheel")" >&2
        exit 1
    fi
    grep -q "is not a supported wheel on this platform" "$venv/pip.log" || {
        cat "$venv/pip.log" >&2
        exit 1
    }
    echo "test-wheel.sh: CPython 3.10 refuses the wheel (not a supported wheel on this platform)" >&2
fi

# A source install with the build backend of python/pyproject.toml.
venv="$envs/source"
make_venv "$venv" "$main_python"
"$venv/bin/python" -m pip install "${pip_flags[@]}" "$root/python" pytest
mkdir -p "$venv.cwd"
(cd "$venv.cwd" && NPY_APPEND_INSTALLED="source:$root/python" "$venv/bin/python" -m pytest -q \
    -p no:cacheprovider "$root/python/tests_wheel" "$root/python/tests/test_readme.py")
echo "test-wheel.sh: pip install ./python done at ${SECONDS} s" >&2
