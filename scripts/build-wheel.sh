#!/usr/bin/env bash
# Builds the Python package (python/) as one binary wheel that installs
# without a Rust toolchain on every CPython >= 3.11 (the stable ABI, abi3)
# and on every Linux with glibc >= 2.17 (manylinux2014: RHEL/CentOS 7 and
# later, Debian 8+, Ubuntu 14.04+), for this machine's architecture:
#
#   bash scripts/build-wheel.sh
#
# No container is needed: maturin links with zig (the `ziglang` package
# from PyPI) against glibc 2.17's symbols. The build environment is a
# virtualenv of its own, target/wheel-build, with pinned maturin and
# ziglang (and auditwheel and abi3audit for the checks below), made or
# brought up to date on each run; building needs cargo and python3.
#
# The wheel is written to target/wheels/ (older npy_append wheels there are
# removed first) and its path is the last line on stdout. The build fails
# unless the wheel is what it claims: auditwheel must find nothing that
# needs more than manylinux_2_17 (no library outside the manylinux set, no
# newer glibc symbol), and abi3audit must find only symbols of CPython
# 3.11's stable ABI.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/venv.sh
source "$root/scripts/venv.sh"

# Tested together; raise them together, deliberately (a new zig has broken
# maturin's linker wrapper before).
build_reqs=(maturin==1.16.0 ziglang==0.17.1 auditwheel==6.8.2 abi3audit==0.0.26)
# manylinux2014 is manylinux_2_17; maturin writes both tags.
policy="manylinux_2_17"

env_dir="$root/target/wheel-build"
py="$env_dir/bin/python"
out="$root/target/wheels"

if ! command -v cargo >/dev/null; then
    echo "build-wheel.sh: cargo not found; building the wheel needs a Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi
if [[ ! -x "$py" ]] || ! "$py" -c "import sys" >/dev/null 2>&1; then
    echo "build-wheel.sh: creating the build environment $env_dir" >&2
    make_venv "$env_dir"
fi
# Already satisfied pins cost no download.
"$py" -m pip install --quiet --disable-pip-version-check --no-input "${build_reqs[@]}" >&2

mkdir -p "$out"
rm -f "$out"/npy_append-*.whl
# maturin finds zig as `python -m ziglang` of the python first on PATH.
PATH="$env_dir/bin:$PATH" "$env_dir/bin/maturin" build --release --zig \
    --compatibility manylinux2014 --features abi3 \
    -m "$root/python/Cargo.toml" --out "$out" >&2

shopt -s nullglob
wheels=("$out"/npy_append-*.whl)
if [[ ${#wheels[@]} -ne 1 ]]; then
    echo "build-wheel.sh: expected one wheel in $out, found ${#wheels[@]}" >&2
    exit 1
fi
wheel="${wheels[0]}"

# The platform tag the wheel's binary actually allows.
tag="$("$env_dir/bin/auditwheel" show --json "$wheel" \
    | "$py" -c "import json, sys; print(json.load(sys.stdin)['overall_tag'])")"
if [[ "$tag" != "${policy}_$(uname -m)" ]]; then
    echo "build-wheel.sh: auditwheel says $wheel needs $tag, not ${policy}_$(uname -m):" >&2
    "$env_dir/bin/auditwheel" show "$wheel" >&2 || true
    exit 1
fi
# Every CPython symbol the extension imports is in the stable ABI of the
# version its tag names (cp311).
if ! "$env_dir/bin/abi3audit" --strict --verbose "$wheel" >"$env_dir/abi3audit.log" 2>&1; then
    cat "$env_dir/abi3audit.log" >&2
    echo "build-wheel.sh: abi3audit found symbols outside the stable ABI of CPython 3.11 in $wheel" >&2
    exit 1
fi
echo "build-wheel.sh: $(basename "$wheel"): auditwheel: $tag; abi3audit: stable ABI of CPython 3.11" >&2
echo "$wheel"
