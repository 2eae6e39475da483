"""Partitions of a dataset on Ray tasks, resumable.

    python python/examples/ray_partitions.py [ROOT] [--partitions N]

Writes N partitions (default 32) of 20,000 rows each, as token windows and
their ids, one Ray task per partition (on a local cluster of 2 CPUs; set
RAY_ADDRESS to use a cluster whose machines all mount ROOT). Kill it at any
point (Ctrl-C, kill -9 of the whole job) and run it again: complete
partitions are skipped, the others resume after their last commit, and the
report says how many ran, resumed and were skipped. Then the dataset is
finalized and read back.
"""

import argparse
import os
import time

import numpy as np
import ray

from npy_append.dataset import DatasetReader, ShardWriter, finalize
from npy_append.ray import run_partitions

ROWS = 20_000
STEP = 2_000
COLUMNS = {"id": ("<i8", ()), "tokens": ("<u2", (64,))}


def tokenize(part: int, shard: ShardWriter) -> None:
    """Partition `part`: rows of 64 tokens computed from their ids, from the
    rows the shard holds on (a replay of committed rows is compared and
    skipped)."""
    for start in range(len(shard), ROWS, STEP):
        ids = np.arange(start, start + STEP, dtype=np.int64) + part * ROWS
        tokens = (ids[:, None] * 31 + np.arange(64)) % 50_257
        shard.append_at(start, {"id": ids, "tokens": tokens.astype(np.uint16)})
        shard.commit(cursor=str(start + STEP).encode())
        time.sleep(0.05)  # stands for the real work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="tokens-dataset")
    parser.add_argument("--partitions", type=int, default=32)
    args = parser.parse_args()
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        ray.init(num_cpus=2, include_dashboard=False)
    report = run_partitions(
        args.root,
        range(args.partitions),
        tokenize,
        columns=COLUMNS,
        shard_name=lambda p: f"part-{p:05d}",
        num_cpus=1,
    )
    print(f"ran {len(report.ran)} partitions ({len(report.resumed)} resumed), "
          f"skipped {len(report.skipped)} complete ones")
    manifest = finalize(args.root)
    ds = DatasetReader(args.root)
    assert len(ds) == manifest["rows"] == args.partitions * ROWS
    assert (ds[:]["id"] == np.arange(len(ds))).all()  # every row once, in order
    print(f"{args.root}: {len(ds)} rows in {len(manifest['shards'])} shards, "
          f"columns {', '.join(ds.columns)}")


if __name__ == "__main__":
    main()
