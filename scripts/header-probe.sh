#!/usr/bin/env bash
# What readers that use numpy see while `npy-append append` commits: the
# measurement behind "Readers during a commit" in docs/design.md.
#
#   bash scripts/header-probe.sh [SECONDS] [START_ROWS ...]
#
# For each START_ROWS (default: 9990 99990 999990 9999990, so that the row
# count gains a digit early in each run), a file of START_ROWS rows of
# 16 x <f4 is made, then for SECONDS seconds (default 60):
#
# - a feeder writes 100 rows every 2 ms into
#   `npy-append append FILE --commit-every 50 --durability process`
#   (pinned to CPU 0); row r holds the value r mod 2**24 sixteen times
#   (exact in float32);
# - one loop runs `np.load(FILE, mmap_mode="r")` and one `np.load(FILE)`,
#   each checking the dtype, the row shape and that the last row holds its
#   own index (a header that misdescribes the data fails that);
# - the probe, `header_probe watch` (examples/header_probe.rs), pinned to
#   CPU 1, loops pread(fd, 4096, 0) + fstat and counts headers that do not
#   parse, that describe other rows, that claim more rows than the file
#   holds, and counts that went down.
#
# Every count is printed per run, as `key=value` lines. numpy comes from
# the virtualenv scripts/test.sh sets up (target/pyenv), created here the
# same way when missing. HEADER_PROBE_CLI names another `npy-append`
# binary to measure (an older build, say) instead of this tree's.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

secs="${1:-60}"
shift || true
starts=("$@")
if [[ ${#starts[@]} -eq 0 ]]; then
    starts=(9990 99990 999990 9999990)
fi

py="$root/target/pyenv/bin/python"
if ! "$py" -c "import numpy" >/dev/null 2>&1; then
    echo "header-probe.sh: creating $root/target/pyenv with numpy" >&2
    mkdir -p "$root/target"
    python3 -m venv "$root/target/pyenv"
    "$py" -m pip install --quiet --disable-pip-version-check --no-input "numpy>=1.24"
fi
for tool in taskset; do
    command -v "$tool" >/dev/null || { echo "header-probe.sh: needs $tool" >&2; exit 1; }
done

cargo build --release --quiet --bin npy-append --example header_probe
cli="${HEADER_PROBE_CLI:-$root/target/release/npy-append}"
probe="$root/target/release/examples/header_probe"

work="$(mktemp -d "${TMPDIR:-/tmp}/header-probe.XXXXXX")"
pids=()
cleanup() {
    touch "$work/stop" 2>/dev/null || true
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Rows first..first+count of the pattern (row r holds r mod 2**24), as raw
# bytes.
rows_py='
import sys, numpy as np
first, count = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
for at in range(first, first + count, 1 << 20):
    n = min(1 << 20, first + count - at)
    r = np.arange(at, at + n, dtype=np.int64) % (1 << 24)
    out.write(np.repeat(r.astype("<f4"), 16).tobytes())
'

# 100 rows every 2 ms from row FIRST on, until the file STOP exists.
feed_py='
import os, sys, time, numpy as np
first, stop = int(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer
r = first
next_at = time.monotonic()
while not os.path.exists(stop):
    rows = np.arange(r, r + 100, dtype=np.int64) % (1 << 24)
    out.write(np.repeat(rows.astype("<f4"), 16).tobytes())
    out.flush()
    r += 100
    next_at += 0.002
    time.sleep(max(0.0, next_at - time.monotonic()))
print(f"fed_rows={r - first}", file=sys.stderr)
'

# np.load in a loop until STOP exists; checks every array it gets.
load_py='
import collections, os, sys, numpy as np
path, mode, stop = sys.argv[1:4]
loads = bad_layout = bad_values = went_down = prev = 0
errors = collections.Counter()
examples = {}
while not os.path.exists(stop):
    try:
        a = np.load(path, mmap_mode="r") if mode == "mmap" else np.load(path)
    except Exception as e:
        key = type(e).__name__
        errors[key] += 1
        examples.setdefault(key, str(e)[:160])
        continue
    loads += 1
    n = a.shape[0] if a.ndim else -1
    if a.dtype != np.dtype("<f4") or a.shape[1:] != (16,):
        bad_layout += 1
        examples.setdefault("layout", f"dtype {a.dtype} shape {a.shape}")
        continue
    if n > 0 and not (np.asarray(a[-1]) == np.float32((n - 1) % (1 << 24))).all():
        bad_values += 1
        examples.setdefault("values", f"shape {a.shape}: last row {np.asarray(a[-1])[:4]}")
    if n < prev:
        went_down += 1
    prev = n
    del a
p = f"numpy_{mode}_"
print(f"{p}loads={loads}")
print(f"{p}errors={sum(errors.values())}")
for k, v in sorted(errors.items()):
    print(f"{p}error_{k}={v}")
print(f"{p}wrong_layout={bad_layout}")
print(f"{p}wrong_values={bad_values}")
print(f"{p}went_down={went_down}")
for k, v in sorted(examples.items()):
    print(f"{p}example_{k}={v!r}")
'

for start in "${starts[@]}"; do
    f="$work/probe.npy"
    rm -f "$f" "$f.journal" "$work/stop"
    "$py" -c "$rows_py" 0 "$start" \
        | "$cli" append "$f" --dtype '<f4' --row-shape 16 --durability process >/dev/null
    echo "run start_rows=$start seconds=$secs cli=$cli"
    pids=()
    "$py" -c "$feed_py" "$start" "$work/stop" 2>"$work/feed.out" \
        | taskset -c 0 "$cli" append "$f" --commit-every 50 --durability process >"$work/cli.out" &
    pids+=($!)
    # Let the writer open the file (and take it over) before anyone reads.
    while [[ ! -e "$f.journal" ]]; do sleep 0.01; done
    "$py" -c "$load_py" "$f" mmap "$work/stop" >"$work/mmap.out" &
    pids+=($!)
    "$py" -c "$load_py" "$f" plain "$work/stop" >"$work/plain.out" &
    pids+=($!)
    taskset -c 1 "$probe" watch "$f" "$secs" | sed 's/^/probe_/'
    touch "$work/stop"
    wait
    pids=()
    cat "$work/mmap.out" "$work/plain.out" "$work/feed.out"
    echo "committed_rows=$(tail -n 1 "$work/cli.out" | sed 's/^committed //')"
done
