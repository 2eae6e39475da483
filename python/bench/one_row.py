"""One-row appends from Python: npy_append against npy-append-array.

    python python/bench/one_row.py [--rows N] [--width W] [--repeat R]

Appends N rows of W float32 values, one row per call, to a new file in a
temporary directory (on the same file system as the working directory
unless TMPDIR says otherwise), with each of these writers:

- npy-append-array (if installed): ``NpyAppendArray.append`` per row;
- the npy_append drop-in: ``NpyAppendArray.append`` per row (a commit at
  process durability per append), and with ``fsync=True`` (a synced commit
  per append; fewer rows, ``--fsync-rows``);
- the full API at process durability: ``Appender.append_commit`` per row
  (append and commit in one call); ``Appender.append`` per row with
  ``commit_every=1000``; and with one commit at the end (the close);

then large appends (``--large-rows`` rows per append, ``--large-mib`` MiB
per run): ``Appender`` at process durability, a commit per append, against
an unbuffered ``f.write`` of the same bytes from Python.

Every repetition runs every writer once, in a shuffled order, so that the
writers share the machine's slow and fast moments; the rates printed are
medians over the repetitions, and the ratios are medians of the
per-repetition ratios. The one-row rates are given twice: of the appends
alone, and of the whole job with the open and the close (npy_append's close
syncs the file; npy-append-array's does not). For the large appends the
close is not timed (a raw write has no close to compare it with).

numpy's BLAS threads are limited to one (they are idle here, and spin on a
small machine otherwise).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import npy_append  # noqa: E402

try:
    import npy_append_array as upstream
except ImportError:
    upstream = None


def loop(append, rows, row):
    """Seconds that `rows` calls of append(row) take."""
    start = time.perf_counter()
    for _ in range(rows):
        append(row)
    return time.perf_counter() - start


def upstream_rows(path, rows, row):
    with upstream.NpyAppendArray(path) as out:
        return loop(out.append, rows, row)


def dropin_rows(path, rows, row):
    with npy_append.NpyAppendArray(path) as out:
        return loop(out.append, rows, row)


def dropin_fsync_rows(path, rows, row):
    with npy_append.NpyAppendArray(path, fsync=True) as out:
        return loop(out.append, rows, row)


def appender_commit_each(path, rows, row):
    with npy_append.Appender.open_or_recover(path, durability="process") as w:
        return loop(w.append_commit, rows, row)


def appender_batched(path, rows, row):
    with npy_append.Appender.open_or_recover(path, durability="process", commit_every=1000) as w:
        return loop(w.append, rows, row)


def appender_at_close(path, rows, row):
    with npy_append.Appender.open_or_recover(path, durability="process") as w:
        return loop(w.append, rows, row)


# (key, label, function, uses --fsync-rows)
WRITERS = [
    ("upstream", "npy-append-array NpyAppendArray.append", upstream_rows, False),
    ("dropin", "drop-in NpyAppendArray.append (commit each)", dropin_rows, False),
    ("dropin_fsync", "drop-in NpyAppendArray(fsync=True).append", dropin_fsync_rows, True),
    ("commit_each", "Appender append_commit (process)", appender_commit_each, False),
    ("batched", "Appender append, commit_every=1000 (process)", appender_batched, False),
    ("at_close", "Appender append, commit at close (process)", appender_at_close, False),
]


def timed(fn, path, rows, row):
    """Rows per second of the appends, and of the whole job (open, appends
    and close: ours syncs the file at close, npy-append-array's does not)."""
    start = time.perf_counter()
    appends = fn(path, rows, row)
    whole = time.perf_counter() - start
    got = np.load(path, mmap_mode="r")
    assert got.shape == (rows, row.shape[1]), got.shape
    assert np.array_equal(got[-1], row[0])
    os.unlink(path)
    return rows / appends, rows / whole


def one_row(args, row, directory):
    writers = [w for w in WRITERS if w[0] != "upstream" or upstream is not None]
    if upstream is None:
        print("npy-append-array is not installed (pip install npy-append-array): no ratios")
    rates = {key: [] for key, *_ in writers}
    for rep in range(args.repeat):
        order = list(writers)
        random.shuffle(order)
        for key, _label, fn, few in order:
            rows = args.fsync_rows if few else args.rows
            rates[key].append(timed(fn, os.path.join(directory, f"{key}-{rep}.npy"), rows, row))
    print(f"one-row appends, {args.width} float32 per row, {args.rows} rows "
          f"({args.fsync_rows} with fsync), medians of {args.repeat} repetitions")
    print(f"  {'':<46} {'appends':>12}       {'':>16} {'with open+close':>16}")
    for key, label, *_ in writers:
        rate = statistics.median(r[0] for r in rates[key])
        whole = statistics.median(r[1] for r in rates[key])
        print(f"  {label:<46} {rate:>12,.0f} rows/s  ({1e6 / rate:6.2f} us/row)  {whole:>12,.0f} rows/s")
    if upstream is not None:
        print("  ratios to npy-append-array (median of the per-repetition ratios): appends, with open+close")
        for key, label, *_ in writers:
            if key == "upstream":
                continue
            ratios = [
                statistics.median(a[i] / b[i] for a, b in zip(rates[key], rates["upstream"]))
                for i in (0, 1)
            ]
            print(f"  {label:<46} {ratios[0]:8.2f} x {ratios[1]:8.2f} x")


def large(args, directory):
    rows = args.large_rows
    batch = np.arange(rows * args.width, dtype="<f4").reshape(rows, args.width)
    appends = max(1, (args.large_mib << 20) // batch.nbytes)
    mib = appends * batch.nbytes / (1 << 20)
    rates = {"raw": [], "appender": []}
    for rep in range(args.repeat):
        for key in random.sample(list(rates), 2):
            if key == "raw":
                path = os.path.join(directory, f"raw-{rep}.bin")
                start = time.perf_counter()
                with open(path, "wb", buffering=0) as f:
                    for _ in range(appends):
                        f.write(batch)
                rates[key].append(mib / (time.perf_counter() - start))
            else:
                path = os.path.join(directory, f"large-{rep}.npy")
                start = time.perf_counter()
                w = npy_append.Appender.open_or_recover(path, durability="process")
                for _ in range(appends):
                    w.append(batch)
                    w.commit()
                rates[key].append(mib / (time.perf_counter() - start))
                w.close()
                assert np.load(path, mmap_mode="r").shape == (appends * rows, args.width)
            os.unlink(path)
    print(f"large appends, {rows} rows per append, {mib:.0f} MiB per run, medians of {args.repeat}")
    print(f"  {'raw f.write (no header, no journal)':<46} {statistics.median(rates['raw']):>12,.0f} MiB/s")
    print(f"  {'Appender append + commit() (process)':<46} {statistics.median(rates['appender']):>12,.0f} MiB/s")
    ratio = statistics.median(a / b for a, b in zip(rates["appender"], rates["raw"]))
    print(f"  {'Appender / raw write':<46} {ratio:8.2f} x")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100000)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--fsync-rows", type=int, default=500, help="rows for the fsync-per-append run")
    p.add_argument("--large-rows", type=int, default=4096, help="rows per large append")
    p.add_argument("--large-mib", type=int, default=256, help="MiB written per large-append run")
    args = p.parse_args()
    row = np.arange(args.width, dtype="<f4").reshape(1, args.width)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", ".")) as d:
        one_row(args, row, d)
        large(args, d)


if __name__ == "__main__":
    main()
