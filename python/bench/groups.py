"""Append groups and ragged arrays from Python: measured rates.

    python python/bench/groups.py [--repeat R]

Each measurement runs R times (default 3) on new files in a temporary
directory under the working directory (TMPDIR overrides it) and prints the
best run:

1. large appends: 256 MiB of (4096, 128) float32 blocks to a one-member
   AppendGroup, a (synced) group commit per 2 MiB append, against an
   Appender with durability="fsync" and a commit per append;
2. one-row appends to three members (f4 (128,), i8, u8), a group commit
   every 1000 rows;
3. synced group commits of one row per member with a cursor;
4. a RaggedAppender of 100,000 uint16 sequences of 0..255 tokens, a commit
   every 1000 sequences, with append() per sequence and with extend() of
   1000 sequences.

Closes are timed.
"""

import argparse
import os
import tempfile
import time

import numpy as np

from npy_append import AppendGroup, Appender, RaggedAppender


def best(f, repeat):
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", ".")) as d:
            times.append(f(d))
    return min(times)


MEMBERS = {"x.npy": ("<f4", (128,)), "y.npy": "<i8", "z.npy": "<u8"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    repeat = p.parse_args().repeat

    block = np.random.default_rng(0).random((4096, 128), dtype=np.float32)
    blocks = 128

    def group_large(d):
        g = AppendGroup.open_or_recover(os.path.join(d, "g.group"), members={"x.npy": ("<f4", (128,))})
        t = time.perf_counter()
        for _ in range(blocks):
            g.append("x.npy", block)
            g.commit()
        g.close()
        return time.perf_counter() - t

    def appender_large(d):
        w = Appender.open_or_recover(os.path.join(d, "x.npy"), dtype="<f4", row_shape=(128,))
        t = time.perf_counter()
        for _ in range(blocks):
            w.append(block)
            w.commit()
        w.close()
        return time.perf_counter() - t

    mib = blocks * block.nbytes / 2**20
    tg, ta = best(group_large, repeat), best(appender_large, repeat)
    print(
        f"large appends, {mib:.0f} MiB, a synced commit per 2 MiB append: "
        f"AppendGroup {mib / tg:,.0f} MiB/s, Appender(fsync) {mib / ta:,.0f} MiB/s"
    )

    x, y, z = np.ones((1, 128), "<f4"), np.ones(1, "<i8"), np.ones(1, "<u8")
    rows = 20_000

    def group_rows(d):
        g = AppendGroup.open_or_recover(os.path.join(d, "g.group"), members=MEMBERS)
        t = time.perf_counter()
        for i in range(rows):
            g.append("x.npy", x)
            g.append("y.npy", y)
            g.append("z.npy", z)
            if i % 1000 == 999:
                g.commit()
        g.close()
        return time.perf_counter() - t

    t = best(group_rows, repeat)
    print(f"one-row appends to 3 members, a commit every 1000 rows: {rows / t:,.0f} rows/s ({3 * rows / t:,.0f} append calls/s)")

    commits = 200

    def group_commits(d):
        g = AppendGroup.open_or_recover(os.path.join(d, "g.group"), members=MEMBERS)
        t = time.perf_counter()
        for i in range(commits):
            g.append("x.npy", x)
            g.append("y.npy", y)
            g.append("z.npy", z)
            g.commit(cursor=str(i).encode())
        g.close()
        return time.perf_counter() - t

    t = best(group_commits, repeat)
    print(f"synced group commits (3 members, 1 row each, a cursor): {commits / t:,.0f} commits/s ({1e3 * t / commits:.2f} ms each)")

    rng = np.random.default_rng(1)
    seqs = [rng.integers(0, 50_000, rng.integers(0, 256), dtype=np.uint16) for _ in range(100_000)]
    tokens = sum(len(s) for s in seqs)

    def ragged_append(d):
        w = RaggedAppender.open_or_recover(os.path.join(d, "t.group"), dtype=np.uint16)
        t = time.perf_counter()
        for i, s in enumerate(seqs):
            w.append(s)
            if i % 1000 == 999:
                w.commit()
        w.close()
        return time.perf_counter() - t

    def ragged_extend(d):
        w = RaggedAppender.open_or_recover(os.path.join(d, "t.group"), dtype=np.uint16)
        t = time.perf_counter()
        for i in range(0, len(seqs), 1000):
            w.extend(seqs[i : i + 1000])
            w.commit()
        w.close()
        return time.perf_counter() - t

    t1, t2 = best(ragged_append, repeat), best(ragged_extend, repeat)
    print(
        f"ragged, {len(seqs):,} sequences ({tokens:,} uint16 tokens), a commit per 1000: "
        f"append() {len(seqs) / t1:,.0f} sequences/s, extend(1000) {len(seqs) / t2:,.0f} sequences/s"
    )


if __name__ == "__main__":
    main()
