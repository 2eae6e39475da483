"""One-row appends from Python: npy_append against npy-append-array.

    python python/bench/one_row.py [--rows N] [--width W] [--repeat R]

Appends N rows of W float32 values one row per call, to a new file in a
temporary directory (on the same file system as the working directory
unless TMPDIR says otherwise), and prints rows per second (the best of R
runs) for:

- npy-append-array (if installed): NpyAppendArray.append per row;
- npy_append drop-in: NpyAppendArray.append per row (a commit at process
  durability per append), and with fsync=True (a synced commit per append);
- npy_append Appender, durability="process", commit() after every row;
- npy_append Appender, append() per row, commit every 1000 rows.

Then large appends (4096 rows per append, 256 MiB per run): the Appender
(process durability, a commit per append; the final close, which syncs,
is not timed) against an unbuffered write of the same bytes from Python,
in MiB/s.
"""

import argparse
import os
import tempfile
import time

import numpy as np

import npy_append

try:
    import npy_append_array as upstream
except ImportError:
    upstream = None


def run(name, fn, rows, row, repeat, directory):
    best = None
    for i in range(repeat):
        path = os.path.join(directory, f"{name.replace(' ', '_')}-{i}.npy")
        start = time.perf_counter()
        fn(path, rows, row)
        elapsed = time.perf_counter() - start
        assert np.load(path, mmap_mode="r").shape == (rows, row.shape[1])
        os.unlink(path)
        best = elapsed if best is None else min(best, elapsed)
    rate = rows / best
    print(f"{name:<46} {rate:>12,.0f} rows/s  ({best * 1e6 / rows:8.2f} us/row)", flush=True)
    return rate


def upstream_rows(path, rows, row):
    with upstream.NpyAppendArray(path) as out:
        for _ in range(rows):
            out.append(row)


def dropin_rows(path, rows, row, fsync=False):
    with npy_append.NpyAppendArray(path, fsync=fsync) as out:
        for _ in range(rows):
            out.append(row)


def appender_commit_each(path, rows, row):
    with npy_append.Appender.open_or_recover(path, durability="process") as w:
        for _ in range(rows):
            w.append(row)
            w.commit()


def appender_batched(path, rows, row):
    with npy_append.Appender.open_or_recover(path, durability="process", commit_every=1000) as w:
        for _ in range(rows):
            w.append(row)


def large(args, directory):
    """Large appends: Appender (process durability, a commit per append)
    against a raw unbuffered write of the same bytes from Python."""
    rows = args.large_rows
    batch = np.arange(rows * args.width, dtype="<f4").reshape(rows, args.width)
    appends = max(1, (args.large_mib << 20) // batch.nbytes)
    mib = appends * batch.nbytes / (1 << 20)
    best = {}
    for i in range(args.repeat):
        path = os.path.join(directory, f"raw-{i}.bin")
        start = time.perf_counter()
        with open(path, "wb", buffering=0) as f:
            for _ in range(appends):
                f.write(batch)
        best["raw"] = min(best.get("raw", 1e9), time.perf_counter() - start)
        os.unlink(path)
        path = os.path.join(directory, f"large-{i}.npy")
        start = time.perf_counter()
        w = npy_append.Appender.open_or_recover(path, durability="process")
        for _ in range(appends):
            w.append(batch)
            w.commit()
        best["appender"] = min(best.get("appender", 1e9), time.perf_counter() - start)
        w.close()
        assert np.load(path, mmap_mode="r").shape == (appends * rows, args.width)
        os.unlink(path)
    for key, name in (("raw", "raw f.write (no header, no journal)"), ("appender", "npy_append Appender append+commit (process)")):
        print(f"{name:<46} {mib / best[key]:>12,.0f} MiB/s  ({rows}-row appends, {mib:.0f} MiB)")
    print(f"appender       / raw write:         {best['raw'] / best['appender']:7.2f} x")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--fsync-rows", type=int, default=500, help="rows for the fsync-per-append run")
    p.add_argument("--large-rows", type=int, default=4096, help="rows per large append")
    p.add_argument("--large-mib", type=int, default=256, help="MiB written per large-append run")
    args = p.parse_args()
    row = np.arange(args.width, dtype="<f4").reshape(1, args.width)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", ".")) as d:
        rates = {}
        if upstream is not None:
            rates["upstream"] = run("npy-append-array NpyAppendArray.append", upstream_rows, args.rows, row, args.repeat, d)
        else:
            print("npy-append-array is not installed: pip install npy-append-array")
        rates["dropin"] = run("npy_append NpyAppendArray.append", dropin_rows, args.rows, row, args.repeat, d)
        rates["dropin_fsync"] = run(
            "npy_append NpyAppendArray(fsync=True).append",
            lambda path, rows, r: dropin_rows(path, rows, r, fsync=True),
            args.fsync_rows, row, args.repeat, d,
        )
        rates["commit_each"] = run("npy_append Appender append+commit (process)", appender_commit_each, args.rows, row, args.repeat, d)
        rates["batched"] = run("npy_append Appender append, commit_every=1000", appender_batched, args.rows, row, args.repeat, d)
        if "upstream" in rates:
            for key in ("dropin", "dropin_fsync", "commit_each", "batched"):
                print(f"{key:<14} / npy-append-array: {rates[key] / rates['upstream']:7.2f} x")
        large(args, d)


if __name__ == "__main__":
    main()
