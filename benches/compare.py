#!/usr/bin/env python3
"""Side-by-side comparison of npy-append with a raw write, npy-append-array,
h5py and its own Python binding, and the performance targets measured as
ratios in one run.

    python3 benches/compare.py [--reps 7] [--mib 256] [--dir DIR] [--quick]
    python3 benches/compare.py --only large [--reps 15]

Creates a virtualenv at target/benchenv (numpy, npy-append-array, h5py,
matplotlib, maturin from PyPI) on first use, builds the `bench_append`
example and the `npy-append` tool in release mode and the Python binding
(`maturin develop --release`, into that virtualenv), then for every repetition
runs every tool at every batch size (1, 16, 256, 4096, 65536 rows of 512
bytes) with and without sync, and the one-row Python modes (the drop-in, the
Appender with a commit per row or every 1000 rows), in a shuffled order, each
run in its own process. It prints a table of median throughputs and ratios,
the targets with their median ratios (each ratio taken between runs of the
same repetition), writes the table to target/compare/results.md and the plot
to docs/benchmarks.png (`--quick`: target/compare/benchmarks.png).

`--only large` measures target 1 alone, and quickly: npy-append (Process
durability, one commit at the end) against a raw `write_all` of the same
bytes at 4096 and 65536 rows per append, without sync, the two tools
alternating in a shuffled order, timed over the whole run and over the
appends alone (after the file exists); it needs neither the virtualenv nor
the Python binding, and writes target/compare/large.md.

Sync modes: "none" writes into the page cache (npy-append and its Python
Appender: Process durability, one commit at the end, the clock stops after
it); "group" syncs every 64 MiB and at the end (npy-append and its Python
Appender: Fsync durability with a 64 MiB group commit, close timed; raw and
the other Python tools: fdatasync/fsync every 64 MiB).
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "benchenv"
PY = VENV / "bin" / "python"
PACKAGES = ["numpy", "npy-append-array", "h5py", "matplotlib", "maturin>=1.5,<2"]
BATCHES = [1, 16, 256, 4096, 65536]
ROW_VALUES = 128
ROW_BYTES = ROW_VALUES * 4
MIB = 1 << 20
GROUP_BYTES = 64 * MIB
# For every process started here: numpy's idle BLAS threads otherwise spin
# and take a core from the measured work on a small machine.
THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
# One-row appends from Python, next to npy-append-array's: the drop-in
# (process durability, and fsync=True), the Appender with a commit per row
# (append() + commit(), and append_commit()), and with commit_every=1000.
ONE_ROW = ["dropin", "dropinfsync", "pycommit", "pyappcommit", "pyevery"]
# The tools that run after the Rust ones in each repetition.
AFTER_RUST = {"npaa", "h5py", *ONE_ROW}
ONE_ROW_LABELS = {
    "npaa": "npy-append-array `NpyAppendArray.append`",
    "dropin": "drop-in `npy_append.NpyAppendArray.append` (a commit per append, process durability)",
    "dropinfsync": "drop-in, `fsync=True` (a synced commit per append)",
    "pycommit": "`Appender`, process durability, `append()` + `commit()` per row",
    "pyappcommit": "`Appender`, process durability, `append_commit()` per row",
    "pyevery": "`Appender`, process durability, `commit_every=1000`",
    "py": "`Appender`, process durability, one commit at the end",
    "lib": "the Rust library, process durability, one commit at the end",
}


# ---------------------------------------------------------------- setup


def in_venv():
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv():
    if not PY.exists():
        print(f"compare: creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = "import numpy, npy_append_array, h5py, matplotlib"
    if (subprocess.run([str(PY), "-c", probe], capture_output=True).returncode != 0
            or not (VENV / "bin" / "maturin").exists()):
        print(f"compare: installing {' '.join(PACKAGES)}", file=sys.stderr)
        subprocess.run(
            [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-input", *PACKAGES],
            check=True,
        )


def target_dir():
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"])
    return ROOT / "target"


def build():
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--example", "bench_append",
         "--bin", "npy-append"],
        cwd=ROOT, check=True,
    )
    release = target_dir() / "release"
    return release / "examples" / "bench_append", release / "npy-append"


def build_python():
    """Builds the Python binding (python/) in release mode into the venv."""
    env = dict(os.environ, VIRTUAL_ENV=str(VENV), PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(
        [str(VENV / "bin" / "maturin"), "develop", "--release", "--quiet", "-m",
         "python/Cargo.toml"],
        cwd=ROOT, env=env, check=True, stdout=sys.stderr,
    )


def revision():
    """The commit measured, and whether the library or binding differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "python",
                                "examples", "Cargo.toml"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes" if dirty.strip() else "")


# ---------------------------------------------------------------- workers
# Each Python measurement runs in its own process: `compare.py --worker ...`.


def batches(np, rows_per_append, mib):
    """Views of a 4 MiB pattern making up `mib` MiB, `rows_per_append` rows each."""
    pattern = np.arange(4 * MIB // 4, dtype="<f4").reshape(-1, ROW_VALUES)
    total_rows = mib * MIB // ROW_BYTES
    done = 0
    at = 0
    while done < total_rows:
        want = min(rows_per_append, total_rows - done)
        while want > 0:
            if at == len(pattern):
                at = 0
            n = min(want, len(pattern) - at)
            yield pattern[at:at + n]
            at += n
            want -= n
            done += n


def worker(tool, rows_per_append, mib, sync, directory):
    import numpy as np

    path = Path(directory) / f"{tool}.out"
    for p in (path, Path(str(path) + ".journal")):
        if p.exists():
            p.unlink()
    group = sync == "group"
    # The views are made before the clock starts: the loops time the tools,
    # not the slicing (about 0.6 us per view, twice a one-row append).
    data = list(batches(np, rows_per_append, mib))
    if tool == "npaa":
        from npy_append_array import NpyAppendArray

        start = time.perf_counter()
        a = NpyAppendArray(str(path))
        since = 0
        for b in data:
            a.append(b)
            since += b.nbytes
            if group and since >= GROUP_BYTES:
                a.fp.flush()
                os.fsync(a.fp.fileno())
                since = 0
        if group:
            a.fp.flush()
            os.fsync(a.fp.fileno())
        a.close()
        secs = time.perf_counter() - start
    elif tool == "h5py":
        import h5py

        start = time.perf_counter()
        f = h5py.File(str(path), "w")
        d = f.create_dataset("x", shape=(0, ROW_VALUES), maxshape=(None, ROW_VALUES),
                             dtype="<f4", chunks=True)
        n = 0
        since = 0
        for b in data:
            d.resize(n + len(b), axis=0)
            d[n:n + len(b)] = b
            n += len(b)
            since += b.nbytes
            if group and since >= GROUP_BYTES:
                f.flush()
                os.fsync(f.id.get_vfd_handle())
                since = 0
        if group:
            f.flush()
            os.fsync(f.id.get_vfd_handle())
        f.close()
        secs = time.perf_counter() - start
    elif tool in ("py", "pycommit", "pyappcommit", "pyevery"):
        # The binding's full API. "py" mirrors the Rust tool: no sync =
        # process durability and one commit at the end (the clock stops
        # after it; the close, which syncs, is not timed); group = fsync
        # durability with a commit every 64 MiB, the close timed.
        # "pycommit": process durability, commit() after every append;
        # "pyappcommit": the same in one call, append_commit();
        # "pyevery": process durability, commit_every=1000 rows.
        import npy_append

        total_rows = mib * MIB // ROW_BYTES
        if group and tool != "py":
            raise SystemExit(f"{tool} runs without sync only")
        options = {"durability": "fsync" if group else "process"}
        if group:
            options["commit_every"] = GROUP_BYTES // ROW_BYTES
        elif tool == "pyevery":
            options["commit_every"] = 1000
        start = time.perf_counter()
        w = npy_append.Appender.open_or_recover(str(path), dtype="<f4",
                                                 row_shape=(ROW_VALUES,), **options)
        if tool == "pycommit":
            for b in data:
                w.append(b)
                w.commit()
        elif tool == "pyappcommit":
            for b in data:
                w.append_commit(b)
        else:
            for b in data:
                w.append(b)
        if group:
            rows = w.close()
            secs = time.perf_counter() - start
        elif tool in ("pycommit", "pyappcommit"):
            secs = time.perf_counter() - start
            rows = len(w)
            w.close()
        else:
            rows = w.commit()
            secs = time.perf_counter() - start
            w.close()
        if rows != total_rows:
            raise SystemExit(f"{tool}: {rows} rows committed, {total_rows} appended")
    elif tool in ("dropin", "dropinfsync"):
        # The drop-in: every append() is a commit (process durability, or
        # fsync with fsync=True). The clock stops after the last append;
        # the close, which syncs, is not timed.
        import npy_append

        if group:
            raise SystemExit(f"{tool} runs without sync only")
        start = time.perf_counter()
        a = npy_append.NpyAppendArray(str(path), fsync=tool == "dropinfsync")
        for b in data:
            a.append(b)
        secs = time.perf_counter() - start
        a.close()
        if a.shape != (mib * MIB // ROW_BYTES, ROW_VALUES):
            raise SystemExit(f"{tool}: shape {a.shape} after the appends")
    else:
        raise SystemExit(f"unknown worker tool {tool}")
    path.unlink()
    print(json.dumps({"seconds": secs}))


# ---------------------------------------------------------------- runs


def parse_kv(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = float(v)
    return out


# MiB per run of the Python tools where not the --mib of the Rust ones: they
# are slow at small batches (fewer bytes, same rate), but each run should
# last long enough that creating the file (1-2 ms, synced) does not count.
PYTHON_MIB = {
    ("npaa", 1): 8, ("npaa", 16): 32, ("h5py", 1): 8, ("h5py", 16): 32,
    ("py", 1): 128, ("pyevery", 1): 128, ("pycommit", 1): 32, ("pyappcommit", 1): 32,
    ("dropin", 1): 32,
    ("dropinfsync", 1): 1,  # an fsync per append: 2,048 of them
}


def python_mib(tool, rows_per_append, mib):
    return min(mib, PYTHON_MIB.get((tool, rows_per_append), mib))


def run_one(tool, batch, sync, mib, directory, bench, cli, cli_input):
    """Returns (bytes, seconds) of one run."""
    if tool in ("lib", "raw"):
        out = subprocess.run(
            [str(bench), "throughput", tool, str(batch), str(mib), sync, str(directory)],
            check=True, capture_output=True, text=True,
        ).stdout
        return mib * MIB, parse_kv(out)["seconds"]
    if tool in ("cli", "rawstdin"):
        # Whole processes reading the same file on stdin, timed from outside.
        path = Path(directory) / "cli.npy"
        for p in (path, Path(str(path) + ".journal")):
            if p.exists():
                p.unlink()
        if tool == "cli":
            cmd = [str(cli), "append", str(path), "--dtype", "<f4", "--row-shape",
                   str(ROW_VALUES)]
            if sync == "group":
                cmd += ["--durability", "fsync", "--commit-every", str(GROUP_BYTES // ROW_BYTES)]
            else:
                cmd += ["--durability", "process"]
        else:
            cmd = [str(bench), "throughput", "rawstdin", "0", "0", sync, str(directory)]
        with open(cli_input, "rb") as stdin:
            start = time.perf_counter()
            subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, check=True)
            secs = time.perf_counter() - start
        if path.exists():
            path.unlink()
        return os.path.getsize(cli_input), secs
    m = python_mib(tool, batch, mib)
    out = subprocess.run(
        [str(PY), str(Path(__file__).resolve()), "--worker", tool, str(batch), str(m), sync,
         str(directory)],
        check=True, capture_output=True, text=True,
    ).stdout
    return m * MIB, json.loads(out)["seconds"]


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // (1024 * 1024)} GiB RAM"
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {mem}, {platform.system()} {platform.release()}"


def filesystem(directory):
    try:
        out = subprocess.run(["df", "-T", str(directory)], capture_output=True, text=True).stdout
        fields = out.splitlines()[1].split()
        return f"{fields[1]} on {fields[0]}"
    except (OSError, IndexError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--mib", type=int, default=256, help="MiB per run for the Rust tools and the CLI")
    ap.add_argument("--dir", default=str(ROOT / "target" / "compare" / "files"))
    ap.add_argument("--quick", action="store_true",
                    help="2 repetitions of 64 MiB, plot into target/compare")
    ap.add_argument("--plot", help="where the plot goes (default docs/benchmarks.png)")
    ap.add_argument("--only", choices=["large"],
                    help="only target 1: large appends against raw write_all, no sync")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        tool, batch, mib, sync, directory = args.worker
        worker(tool, int(batch), int(mib), sync, directory)
        return
    if args.only == "large":
        large_only(args)
        return
    os.environ.update(THREADS)
    if not in_venv():
        ensure_venv()
        os.execv(str(PY), [str(PY), str(Path(__file__).resolve()), *sys.argv[1:]])
    if args.quick:
        args.reps, args.mib = 2, 64
    if args.plot is None:
        args.plot = str(ROOT / ("target/compare" if args.quick else "docs") / "benchmarks.png")

    bench, cli = build()
    build_python()
    measured = revision()
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    outdir = ROOT / "target" / "compare"
    cli_input = outdir / "rows.bin"
    import numpy as np

    np.tile(np.arange(4 * MIB // 4, dtype="<f4"), args.mib // 4).tofile(cli_input)

    tools = ["lib", "raw", "npaa", "h5py", "py"]
    configs = [(t, b, s) for t in tools for b in BATCHES for s in ("none", "group")]
    configs += [(t, 1, "none") for t in ONE_ROW]
    configs += [("cli", 0, s) for s in ("none", "group")]
    configs += [("rawstdin", 0, s) for s in ("none", "end", "group")]
    rates = {c: [] for c in configs}  # MB/s per repetition
    other = {"load": [os.getloadavg()[0]]}  # 1-minute load average, then after each repetition
    print(f"compare: {machine()}; files on {filesystem(directory)}; load {os.getloadavg()[0]:.2f}; "
          f"measuring {measured}", file=sys.stderr)
    for rep in range(args.reps):
        order = list(configs)
        random.Random(rep).shuffle(order)
        # Shuffled, then grouped by batch and sync so that the tools of one
        # configuration run next to each other, in a different order each
        # time. The Python tools run after all the Rust runs of the
        # repetition: on the reference machine a write right after a Python
        # tool's process ran up to 5 times slower (raw and npy-append alike,
        # raw more often), which would decide the ratios by the order.
        # The binding's throughput runs ("py") are compared with the Rust
        # library: they run next to it. (With numpy's BLAS on one thread, a
        # Rust run right after one of them was not measurably slower.)
        order.sort(key=lambda c: (c[0] in AFTER_RUST, c[1], c[2]))
        for c in order:
            os.sync()  # every run starts without dirty pages of the one before
            nbytes, secs = run_one(c[0], c[1], c[2], args.mib, directory, bench, cli, cli_input)
            rates[c].append(nbytes / secs / 1e6)
        # Commit latency twice: in rounds of 20 operations of each kind, and
        # in runs of 1,000 (sustained commits cost more on the reference disk).
        for prefix, mode, args_ in (("", "latency", ["100", str(directory), "20"]),
                                    ("sustained_", "latency", ["2", str(directory), "1000"]),
                                    ("", "recovery", ["4096", str(directory)]),
                                    ("", "refresh", ["20000", str(directory)])):
            out = subprocess.run([str(bench), mode, *args_], check=True,
                                 capture_output=True, text=True).stdout
            for k, v in parse_kv(out).items():
                other.setdefault(prefix + k, []).append(v)
        other["load"].append(os.getloadavg()[0])
        print(f"compare: repetition {rep + 1}/{args.reps} done; load {other['load'][-1]:.2f}",
              file=sys.stderr)
    cli_input.unlink()
    report(rates, other, args, directory, measured)


LARGE = [4096, 65536]


def large_only(args):
    """Target 1 alone: the library against raw write_all at 4096 and 65536
    rows per append, no sync, alternating; medians and per-repetition ratios,
    of the whole run and of its appends alone (the clock started once the
    file exists: the library's creation syncs the new file, its journal and
    their directory, which costs far more on a busy disk than the raw
    writer's unsynced create)."""
    os.environ.update(THREADS)
    bench, _ = build()
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    configs = [(t, b) for t in ("lib", "raw") for b in LARGE]
    whole = {c: [] for c in configs}  # MB/s, whole run
    appends = {c: [] for c in configs}  # MB/s, after the file was created
    opens = {c: [] for c in configs}  # seconds creating the file
    load = [os.getloadavg()[0]]
    print(f"compare: {machine()}; files on {filesystem(directory)}; load {load[0]:.2f}; "
          f"measuring {revision()}", file=sys.stderr)
    for rep in range(args.reps):
        order = list(configs)
        random.Random(rep).shuffle(order)
        order.sort(key=lambda c: c[1])  # the two tools of a batch size next to each other
        for c in order:
            os.sync()
            out = subprocess.run(
                [str(bench), "throughput", c[0], str(c[1]), str(args.mib), "none",
                 str(directory)],
                check=True, capture_output=True, text=True,
            ).stdout
            kv = parse_kv(out)
            nbytes = args.mib * MIB
            whole[c].append(nbytes / kv["seconds"] / 1e6)
            appends[c].append(nbytes / (kv["seconds"] - kv["open_seconds"]) / 1e6)
            opens[c].append(kv["open_seconds"])
        load.append(os.getloadavg()[0])
        print(f"compare: repetition {rep + 1}/{args.reps} done; load {load[-1]:.2f}",
              file=sys.stderr)

    def cells(rates, b):
        lib, raw = rates[("lib", b)], rates[("raw", b)]
        ratios = [x / y for x, y in zip(lib, raw)]
        return (f"{med(lib):,.0f} ({min(lib):,.0f}-{max(lib):,.0f}) | "
                f"{med(raw):,.0f} ({min(raw):,.0f}-{max(raw):,.0f}) | "
                f"{med(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")

    lines = [
        f"Machine: {machine()}; files on {filesystem(directory)}; measured: {revision()}; "
        f"load average {min(load):.2f}-{max(load):.2f} during the run.",
        f"{args.reps} repetitions, {args.mib} MiB per run, no sync; medians (min-max); "
        "ratios per repetition.",
        "",
        "| rows per append | | npy-append MB/s | raw write_all MB/s | npy-append / raw |",
        "|---:|---|---:|---:|---:|",
    ]
    for b in LARGE:
        lines.append(f"| {b} | whole run | {cells(whole, b)} |")
        lines.append(f"| {b} | appends only | {cells(appends, b)} |")
    lib_open = [x * 1e3 for b in LARGE for x in opens[("lib", b)]]
    raw_open = [x * 1e3 for b in LARGE for x in opens[("raw", b)]]
    lines.append("")
    lines.append(f"Creating the file: npy-append {med(lib_open):.2f} ms "
                 f"({min(lib_open):.2f}-{max(lib_open):.2f}), raw {med(raw_open):.2f} ms "
                 f"({min(raw_open):.2f}-{max(raw_open):.2f}).")
    text = "\n".join(lines)
    print(text)
    outdir = ROOT / "target" / "compare"
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "large.md").write_text(text + "\n")


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def ratio(rates, a, b):
    """Median over repetitions of rate(a) / rate(b), same repetition."""
    return med([x / y for x, y in zip(rates[a], rates[b])])


def report(rates, other, args, directory, measured):
    lines = []
    lines.append(f"Machine: {machine()}; files on {filesystem(directory)}; measured: {measured}; "
                 f"load average {min(other['load']):.2f}-{max(other['load']):.2f} during the run.")
    fewer = ", ".join(f"{t} {b}: {python_mib(t, b, args.mib)}" for t, b in PYTHON_MIB)
    lines.append(f"{args.reps} repetitions, {args.mib} MiB per run (Python tools, MiB at tool "
                 f"and rows per append: {fewer}); medians.")
    lines.append("")
    names = {"lib": "npy-append", "raw": "raw write_all", "npaa": "npy-append-array",
             "h5py": "h5py"}
    for sync in ("none", "group"):
        title = "no sync (page cache)" if sync == "none" else "sync every 64 MiB"
        lines.append(f"Throughput, MB/s, {title}:")
        lines.append("")
        lines.append("| rows per append | " + " | ".join(names.values())
                     + " | npy-append / raw | npy-append / npy-append-array | npy-append / h5py |")
        lines.append("|---:|" + "---:|" * (len(names) + 3))
        for b in BATCHES:
            cells = [f"{med(rates[(t, b, sync)]):,.0f}" for t in names]
            cells += [f"{ratio(rates, ('lib', b, sync), (t, b, sync)):.2f}"
                      for t in ("raw", "npaa", "h5py")]
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("The Python binding's Appender against the Rust library, MB/s (no sync: process "
                 "durability, one commit at the end; sync: fsync durability, commit_every 64 MiB):")
    lines.append("")
    lines.append("| rows per append | Python, no sync | Rust, no sync | Python / Rust | "
                 "Python, sync | Rust, sync | Python / Rust |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|")
    for b in BATCHES:
        cells = []
        for sync in ("none", "group"):
            cells += [f"{med(rates[('py', b, sync)]):,.0f}", f"{med(rates[('lib', b, sync)]):,.0f}",
                      f"{ratio(rates, ('py', b, sync), ('lib', b, sync)):.2f}"]
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("One row (512 bytes) per append from Python, in the same repetitions:")
    lines.append("")
    lines.append("| | rows/s | us per row | / npy-append-array |")
    lines.append("|---|---:|---:|---:|")
    base = ("npaa", 1, "none")
    for tool, label in ONE_ROW_LABELS.items():
        c = (tool, 1, "none")
        rows_per_s = med(rates[c]) * 1e6 / ROW_BYTES
        lines.append(f"| {label} | {rows_per_s:,.0f} | {1e6 / rows_per_s:.2f} | "
                     f"{ratio(rates, c, base):.2f} |")
    lines.append("")
    lines.append("Command-line tool, a file on stdin, MB/s (whole processes, timed from outside):")
    lines.append("")
    lines.append("| | MB/s |")
    lines.append("|---|---:|")
    for (t, sync), label in {
        ("cli", "none"): "`npy-append append --durability process` (close syncs once)",
        ("cli", "group"): "`npy-append append --durability fsync --commit-every 131072` (64 MiB)",
        ("rawstdin", "none"): "raw copy stdin -> file, no sync",
        ("rawstdin", "end"): "raw copy stdin -> file, one fdatasync at the end",
        ("rawstdin", "group"): "raw copy stdin -> file, fdatasync every 64 MiB",
    }.items():
        lines.append(f"| {label} | {med(rates[(t, 0, sync)]):,.0f} |")
    lines.append("")
    o = {k: med(v) for k, v in other.items()}
    def lat_ratio(prefix):
        return med([c / r for c, r in zip(other[prefix + "lib_fsync_commit_1row_us"],
                                          other[prefix + "raw_append_4k_fdatasync_us"])])

    rec_ratio = med([b / s for b, s in zip(other["recover_big_us"], other["recover_4mib_us"])])
    big = ("lib", 4096, "none"), ("lib", 65536, "none")
    targets = [
        ("1. large appends / raw write_all (4096 rows)",
         ratio(rates, big[0], ("raw", 4096, "none")), ">= 0.9"),
        ("1. large appends / raw write_all (65536 rows)",
         ratio(rates, big[1], ("raw", 65536, "none")), ">= 0.9"),
        ("2. one-row appends / 4096-row appends", ratio(rates, ("lib", 1, "none"), big[0]),
         ">= 0.8"),
        ("2. one-row appends / npy-append-array one-row",
         ratio(rates, ("lib", 1, "none"), ("npaa", 1, "none")), "> 50"),
        ("3. fsync, group commit 64 MiB / raw + fdatasync per 64 MiB (4096 rows)",
         ratio(rates, ("lib", 4096, "group"), ("raw", 4096, "group")), ">= 0.9"),
        ("3. same, 65536 rows", ratio(rates, ("lib", 65536, "group"), ("raw", 65536, "group")),
         ">= 0.9"),
        (f"4. fsync commit of 1 row ({o['lib_fsync_commit_1row_us']:.0f} us) / pwrite 4 KiB + "
         f"fdatasync ({o['raw_append_4k_fdatasync_us']:.0f} us), rounds of 20",
         lat_ratio(""), "<= 1.3"),
        (f"4. same, runs of 1,000 ({o['sustained_lib_fsync_commit_1row_us']:.0f} us / "
         f"{o['sustained_raw_append_4k_fdatasync_us']:.0f} us)", lat_ratio("sustained_"),
         "<= 1.3"),
        (f"5. recovery 4 GiB ({o['recover_big_us']:.0f} us) / 4 MiB "
         f"({o['recover_4mib_us']:.0f} us)", rec_ratio, "<= 2"),
        (f"6. refresh after a commit: {o['refresh_after_commit_us']:.1f} us, unchanged: "
         f"{o['refresh_unchanged_us']:.1f} us", o["refresh_after_commit_us"], "a few us"),
        ("7. CLI, Process durability / raw write_all (65536 rows, no sync)",
         ratio(rates, ("cli", 0, "none"), ("raw", 65536, "none")), ">= 0.9"),
        ("7. CLI, Process durability / raw stdin copy + one fdatasync",
         ratio(rates, ("cli", 0, "none"), ("rawstdin", 0, "end")), ">= 0.9"),
        ("7. CLI, fsync every 64 MiB / raw write_all + fdatasync per 64 MiB (65536 rows)",
         ratio(rates, ("cli", 0, "group"), ("raw", 65536, "group")), ">= 0.9"),
        ("7. CLI, fsync every 64 MiB / raw stdin copy + fdatasync per 64 MiB",
         ratio(rates, ("cli", 0, "group"), ("rawstdin", 0, "group")), ">= 0.9"),
        ("Python: one-row appends, Appender, process durability, append_commit() per row / "
         "npy-append-array", ratio(rates, ("pyappcommit", 1, "none"), base), ">= 10"),
        ("Python: same, append() + commit() per row", ratio(rates, ("pycommit", 1, "none"), base),
         ">= 10"),
        ("Python: same, commit_every=1000", ratio(rates, ("pyevery", 1, "none"), base), ">= 10"),
        ("Python: large appends / Rust library (4096 rows, no sync)",
         ratio(rates, ("py", 4096, "none"), big[0]), ">= 0.9"),
        ("Python: same, 65536 rows", ratio(rates, ("py", 65536, "none"), big[1]), ">= 0.9"),
        ("Python: same, sync every 64 MiB, 4096 rows",
         ratio(rates, ("py", 4096, "group"), ("lib", 4096, "group")), ">= 0.9"),
        ("Python: same, sync every 64 MiB, 65536 rows",
         ratio(rates, ("py", 65536, "group"), ("lib", 65536, "group")), ">= 0.9"),
    ]
    lines.append("| target | measured | wanted |")
    lines.append("|---|---:|---|")
    for name, value, wanted in targets:
        lines.append(f"| {name} | {value:.2f} | {wanted} |")
    lines.append("")
    for prefix, title in (("", "rounds of 20"), ("sustained_", "runs of 1,000")):
        lines.append(f"Sync latency, {title}, medians (means) in us: " + ", ".join(
            f"{k} {o[prefix + k + '_us']:.0f} ({o[prefix + k + '_mean_us']:.0f})" for k in (
                "raw_append_4k_fdatasync", "raw_inplace_4k_fdatasync",
                "lib_fsync_commit_1row", "two_files_sequential_syncs",
                "two_files_concurrent_syncs")) + ".")
    text = "\n".join(lines)
    print(text)
    outdir = ROOT / "target" / "compare"
    (outdir / "results.md").write_text(text + "\n")
    (outdir / "results.json").write_text(json.dumps(
        {"rates": {"/".join(map(str, k)): v for k, v in rates.items()}, "other": other},
        indent=1))
    plot(rates, {**names, "py": "npy_append from Python"}, Path(args.plot))


def plot(rates, names, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, sync, title in ((axes[0], "none", "no sync (page cache)"),
                            (axes[1], "group", "sync every 64 MiB")):
        for t, label in names.items():
            ax.plot(BATCHES, [med(rates[(t, b, sync)]) for b in BATCHES], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(BATCHES, [str(b) for b in BATCHES])
        ax.set_xlabel("rows (512 B) per append")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("MB/s (median)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"compare: plot written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
