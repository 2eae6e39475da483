"""Sharded datasets: measured rates, each against its baseline in the same
run (ratios of medians).

    python python/bench/dataset.py [write] [read] [ray] [--repeat R]

1. write: N processes (N = 1, 2, 4) each write the rows of one shard
   (an int64 id and a (128,) float32 feature: 520 bytes a row) in 16
   batches of 32768 rows (17 MB), committing every batch, then finish it
   (273 MB a shard), against N processes writing the
   same bytes in the same batches to two raw files each with a write() and
   an fdatasync of both files per batch (the same durability), and against
   the same raw writes synced once at the end (page cache only). Aggregate
   MB/s from the start of the first process to the end of the last,
   opening and finishing the shard included. Also the latency of opening
   a new shard, of a one-row commit and of finishing a shard.
2. read: a dataset of 8 shards (500,000 rows in all, as above) against one
   np.memmap per column holding all the rows: random batches of 256 row
   indices (the same index arrays for both) gathered into arrays, and a
   sequential scan in batches of 4096 rows copied into a buffer. Rows/s,
   page cache warm.
3. ray: a materialized Ray Dataset of 1,000,000 rows written with
   NpyDatasink (durability "fsync", every block's commit synced, and
   "process", commits unsynced and every shard synced when the manifest
   is published) against Ray's own write_numpy of the same dataset (one
   call per column: write_numpy writes one column), on a local Ray
   cluster (num_cpus=2); and against write_numpy followed by an fsync of
   every file and directory it wrote (the durability of the published
   dataset either way).

Each measurement repeats R times (default 5), alternating ours and the
baseline, in a temporary directory under the working directory (TMPDIR
overrides it); the median is printed with the min and max.
"""

import argparse
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time

import numpy as np

from npy_append import dataset as ds

D = 128
ROW_BYTES = 8 + 4 * D
BATCH = 32768  # rows per commit: 17 MB
BATCHES = 16  # per process: 273 MB
COLUMNS = {"id": ("<i8", ()), "feature": ("<f4", (D,))}


def batch_of(worker, b):
    ids = np.arange(b * BATCH, (b + 1) * BATCH, dtype="<i8") + worker * 10**9
    feats = np.empty((BATCH, D), "<f4")
    feats[:] = (ids % 1000)[:, None]
    return {"id": ids, "feature": feats}


def shard_writer(root, worker, start, done):
    batches = [batch_of(worker, b) for b in range(BATCHES)]
    start.wait()
    t0 = time.perf_counter()
    with ds.open_shard(root, f"w{worker}", COLUMNS) as w:
        for b in batches:
            w.append(b)
            w.commit()
        w.finish()
    done.put((t0, time.perf_counter()))


def raw_writer(root, worker, start, done, sync_each):
    batches = [batch_of(worker, b) for b in range(BATCHES)]
    start.wait()
    t0 = time.perf_counter()
    d = os.path.join(root, f"w{worker}")
    os.makedirs(d)
    fds = [os.open(os.path.join(d, f"{c}.raw"), os.O_WRONLY | os.O_CREAT, 0o644) for c in COLUMNS]
    for b in batches:
        for fd, c in zip(fds, COLUMNS):
            os.write(fd, memoryview(b[c]).cast("B"))
        if sync_each:
            for fd in fds:
                os.fdatasync(fd)
    for fd in fds:
        if not sync_each:
            os.fdatasync(fd)
        os.close(fd)
    done.put((t0, time.perf_counter()))


def run_writers(kind, n, base):
    root = tempfile.mkdtemp(dir=base)
    try:
        ctx = multiprocessing.get_context("fork")
        start = ctx.Barrier(n)
        done = ctx.Queue()
        if kind == "shards":
            ds.create(root, COLUMNS)
            procs = [ctx.Process(target=shard_writer, args=(root, i, start, done)) for i in range(n)]
        else:
            procs = [
                ctx.Process(target=raw_writer, args=(root, i, start, done, kind == "raw, synced per batch"))
                for i in range(n)
            ]
        for p in procs:
            p.start()
        times = [done.get() for _ in procs]
        for p in procs:
            p.join()
            assert p.exitcode == 0
        wall = max(t1 for _, t1 in times) - min(t0 for t0, _ in times)
        return n * BATCHES * BATCH * ROW_BYTES / wall / 1e6
    finally:
        shutil.rmtree(root)


def stats(values):
    return statistics.median(values), min(values), max(values)


def bench_write(repeat, base):
    print("## write: aggregate MB/s of N writer processes (median of %d, min-max)" % repeat)
    print()
    print("| N | shards | raw, synced per batch | ratio | raw, synced at the end | ratio |")
    print("|---|---|---|---|---|---|")
    for n in (1, 2, 4):
        rates = {"shards": [], "raw, synced per batch": [], "raw, synced at the end": []}
        kinds = list(rates)
        for r in range(repeat):
            for kind in kinds[r % 3 :] + kinds[: r % 3]:
                rates[kind].append(run_writers(kind, n, base))
        s, r, e = (stats(rates[k]) for k in rates)
        print(
            f"| {n} | {s[0]:.0f} ({s[1]:.0f}-{s[2]:.0f}) | {r[0]:.0f} ({r[1]:.0f}-{r[2]:.0f}) "
            f"| {s[0] / r[0]:.2f} | {e[0]:.0f} ({e[1]:.0f}-{e[2]:.0f}) | {s[0] / e[0]:.2f} |"
        )
    print()
    opens, commits, finishes = [], [], []
    root = tempfile.mkdtemp(dir=base)
    ds.create(root, COLUMNS)
    one = {"id": np.zeros(1, "<i8"), "feature": np.zeros((1, D), "<f4")}
    for i in range(20):
        t0 = time.perf_counter()
        w = ds.open_shard(root, f"s{i}")
        t1 = time.perf_counter()
        w.append(one)
        w.commit()
        t2 = time.perf_counter()
        w.finish()
        t3 = time.perf_counter()
        opens.append(t1 - t0)
        commits.append(t2 - t1)
        finishes.append(t3 - t2)
    shutil.rmtree(root)
    print(
        "Latency (median of 20): opening a new shard %.1f ms, a one-row commit %.1f ms, "
        "finishing %.1f ms."
        % tuple(1000 * statistics.median(x) for x in (opens, commits, finishes))
    )
    print()


READ_ROWS = 500_000
SHARDS = 8
GATHER = 256
SCAN = 4096


def build_read_dataset(base):
    root = os.path.join(base, "read-ds")
    rng = np.random.default_rng(0)
    ids = np.arange(READ_ROWS, dtype="<i8")
    feats = rng.random((READ_ROWS, D), dtype=np.float32)
    per = READ_ROWS // SHARDS
    for k in range(SHARDS):
        with ds.open_shard(root, f"part-{k}", COLUMNS) as w:
            for s in range(k * per, (k + 1) * per, 50_000):
                e = min(s + 50_000, (k + 1) * per)
                w.append({"id": ids[s:e], "feature": feats[s:e]})
                w.commit()
            w.finish()
    ds.finalize(root)
    np.save(os.path.join(base, "id.npy"), ids)
    np.save(os.path.join(base, "feature.npy"), feats)
    return root


def bench_read(repeat, base):
    root = build_read_dataset(base)
    reader = ds.DatasetReader(root)
    mm = {c: np.load(os.path.join(base, f"{c}.npy"), mmap_mode="r") for c in COLUMNS}
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, READ_ROWS, GATHER) for _ in range(2000)]

    def gather_ours():
        t0 = time.perf_counter()
        for idx in batches:
            reader[idx]
        return len(batches) * GATHER / (time.perf_counter() - t0)

    def gather_memmap():
        t0 = time.perf_counter()
        for idx in batches:
            {c: m[idx] for c, m in mm.items()}
        return len(batches) * GATHER / (time.perf_counter() - t0)

    bufs = {c: np.empty((SCAN,) + m.shape[1:], m.dtype) for c, m in mm.items()}

    def scan_ours():
        t0 = time.perf_counter()
        for b in reader.iter_batches(SCAN):
            for c, a in b.items():
                np.copyto(bufs[c][: len(a)], a)
        return READ_ROWS / (time.perf_counter() - t0)

    def scan_memmap():
        t0 = time.perf_counter()
        for s in range(0, READ_ROWS, SCAN):
            for c, m in mm.items():
                a = m[s : s + SCAN]
                np.copyto(bufs[c][: len(a)], a)
        return READ_ROWS / (time.perf_counter() - t0)

    # Warm the page cache for both.
    scan_ours()
    scan_memmap()
    print("## read: rows/s, %d rows in %d shards against one np.memmap per column (median of %d, min-max)"
          % (READ_ROWS, SHARDS, repeat))
    print()
    print("| read | DatasetReader | np.memmap | ratio |")
    print("|---|---|---|---|")
    for name, ours, theirs in (
        (f"random batches of {GATHER}", gather_ours, gather_memmap),
        (f"sequential scan, batches of {SCAN}", scan_ours, scan_memmap),
    ):
        a, b = [], []
        for _ in range(repeat):
            a.append(ours())
            b.append(theirs())
        sa, sb = stats(a), stats(b)
        print(
            f"| {name} | {sa[0] / 1e6:.2f} M ({sa[1] / 1e6:.2f}-{sa[2] / 1e6:.2f}) "
            f"| {sb[0] / 1e6:.2f} M ({sb[1] / 1e6:.2f}-{sb[2] / 1e6:.2f}) | {sa[0] / sb[0]:.2f} |"
        )
    print()


RAY_ROWS = 1_000_000


def sync_tree(root):
    """fsync every file under root, then every directory (what the sink's
    commits and manifest give: files that survive a power loss)."""
    for d, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(d, f), os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    for d, _, _ in os.walk(root):
        fd = os.open(d, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


def bench_ray(repeat, base):
    import ray

    from npy_append.ray import NpyDatasink

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False

    def featurize(batch):
        ids = batch["id"]
        feats = np.empty((len(ids), D), "<f4")
        feats[:] = (ids % 1000)[:, None]
        return {"id": ids, "feature": feats}

    data = ray.data.range(RAY_ROWS, override_num_blocks=8).map_batches(featurize).materialize()
    one = data.select_columns(["feature"]).materialize()
    print("## ray: seconds to write a materialized dataset of %d rows (median of %d, min-max)"
          % (RAY_ROWS, repeat))
    print()
    print("| columns | NpyDatasink, fsync | NpyDatasink, process | write_numpy "
          "| ratio (time of write_numpy / ours), fsync | process "
          "| write_numpy, then its files synced | ratio, fsync | process |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, dataset, cols in (("feature", one, ["feature"]), ("id, feature", data, ["id", "feature"])):
        ours, process, theirs, synced = [], [], [], []
        for _ in range(repeat):
            d = tempfile.mkdtemp(dir=base)
            t0 = time.perf_counter()
            dataset.write_datasink(NpyDatasink(os.path.join(d, "ours")))
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            dataset.write_datasink(NpyDatasink(os.path.join(d, "process"), durability="process"))
            process.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for c in cols:
                dataset.write_numpy(os.path.join(d, "theirs", c), column=c)
            theirs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for c in cols:
                dataset.write_numpy(os.path.join(d, "synced", c), column=c)
            sync_tree(os.path.join(d, "synced"))
            synced.append(time.perf_counter() - t0)
            shutil.rmtree(d)
        so, sp, st, ss = stats(ours), stats(process), stats(theirs), stats(synced)
        print(
            f"| {label} | {so[0]:.2f} ({so[1]:.2f}-{so[2]:.2f}) | {sp[0]:.2f} ({sp[1]:.2f}-{sp[2]:.2f}) "
            f"| {st[0]:.2f} ({st[1]:.2f}-{st[2]:.2f}) | {st[0] / so[0]:.2f} | {st[0] / sp[0]:.2f} "
            f"| {ss[0]:.2f} ({ss[1]:.2f}-{ss[2]:.2f}) | {ss[0] / so[0]:.2f} | {ss[0] / sp[0]:.2f} |"
        )
    print()
    ray.shutdown()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("parts", nargs="*", default=["write", "read", "ray"])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", ".")) as base:
        if "write" in args.parts:
            bench_write(args.repeat, base)
        if "read" in args.parts:
            bench_read(args.repeat, base)
        if "ray" in args.parts:
            bench_ray(args.repeat, base)


if __name__ == "__main__":
    main()
