#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each (default 45) with
# libFuzzer's resource limits, seeded with the committed corpus, and prints
# the executions per target and in total.
#
#   bash fuzz/run.sh [SECONDS]
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# New inputs go to a scratch directory, so the committed corpus
# (fuzz/corpus/<target>, replayed on stable by tests/fuzz_corpus.rs) is
# never changed; a crash leaves its input in fuzz/artifacts/<target>/ and
# fails the run. Limits: no input may take 10 s (-timeout), the process may
# not exceed 2 GiB (-rss_limit_mb), and no single allocation may reach
# 256 MiB (-malloc_limit_mb): reads are bounded by the real file lengths, so
# a header or journal claiming 4 GiB or 2^60 rows must not allocate for it.
set -euo pipefail

secs="${1:-45}"
cd "$(dirname "${BASH_SOURCE[0]}")"

targets=(header journal open_pair group_journal cursor_file open_group)
cargo +nightly fuzz build

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
total=0
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    if ! cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
        -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz/run.sh: target $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
    if [[ -z "$execs" ]]; then
        tail -n 20 "$log" >&2
        echo "fuzz/run.sh: no execution count for $target" >&2
        exit 1
    fi
    total=$((total + execs))
    echo "fuzz $target: $execs executions in ${secs} s, no crash"
done
echo "fuzz total: $total executions over ${#targets[@]} targets"
