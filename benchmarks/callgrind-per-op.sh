#!/usr/bin/env bash
# Instructions per op of the timed replays, counted by callgrind: a figure
# that, unlike a time, does not depend on what else the machine is doing.
#
#   benchmarks/callgrind-per-op.sh [HEAPLAB] -- ALLOC... -- WORKLOAD...
#
# For each allocator and workload, runs `heaplab run` with one timing process,
# a warm-up and one repetition under callgrind, counting only inside the timed
# replays (heaplab::run::passes::timed_replay), and divides by the ops replayed. The
# harness's own loop is included: `bump` measures it alone.
set -euo pipefail
heaplab=${1:-target/release/heaplab}
shift || true
[ "${1:-}" = "--" ] && shift
allocs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do allocs+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
workloads=("$@")
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
printf '%-44s %-14s %12s\n' allocator workload instr/op
for workload in "${workloads[@]}"; do
  for alloc in "${allocs[@]}"; do
    out=$(mktemp -d)
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" --collect-atstart=no \
      --toggle-collect='*::timed_replay*' \
      "$heaplab" run --alloc "$alloc" --workload "$workload" --reps 1 --processes 1 --warmup 1 \
      --no-latency --quiet --frames 0 --out "$out" --name r >/dev/null 2>"$out/stderr" \
      || { cat "$out/stderr" >&2; exit 1; }
    python3 - "$out" "$alloc" "$workload" <<'PY'
import csv, re, sys
out, alloc, workload = sys.argv[1:]
row = next(csv.DictReader(open(out + "/r/summary.csv")))
replays = int(row["passes_per_rep"]) + 1  # the warm-up replays the whole trace once
instructions = int(re.search(r"^(?:summary|totals):\s+(\d+)", open(out + "/cg.out").read(), re.M).group(1))
print(f"{alloc:44s} {workload:14s} {instructions / (int(row['ops']) * replays):12.1f}")
PY
    rm -rf "$out"
  done
done
