#!/usr/bin/env bash
# Re-record the bundled real-program traces with `heaplab record` (see
# workloads/README.md for the programs' versions). Run from the repository
# root after `cargo build --release -p heaplab`; needs python3, sqlite3, gcc
# 12 (cc1), jq and perl from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/../.."
heaplab=./target/release/heaplab
inputs=workloads/traces/inputs
out=workloads/traces

"$heaplab" record -o "$out/python.hlt.zst" -- env PYTHONMALLOC=malloc /usr/bin/python3 -S "$inputs/python_workload.py"
"$heaplab" record -o "$out/sqlite.hlt.zst" -- sqlite3 :memory: < "$inputs/sqlite_workload.sql"
"$heaplab" record -o "$out/gcc.hlt.zst" -- /usr/lib/gcc/x86_64-linux-gnu/12/cc1 -quiet -O1 "$inputs/compile_me.c" -o /dev/null
"$heaplab" record -o "$out/jq.hlt.zst" -- jq -n '[range(10000) | {k: ., v: (. * 7 | tostring)}] | group_by(.k % 100) | map({k: .[0].k, n: length}) | length'
"$heaplab" record -o "$out/perl.hlt.zst" -- perl -e 'my %h; for my $i (1..150000) { my $w = "w" . ($i * 7919 % 20000); $h{$w} .= "x" } my @k = sort { length($h{$b}) <=> length($h{$a}) or $a cmp $b } keys %h; print scalar(@k), "\n"'
# Two threads (a producer and the main thread consuming); needs --threads 2.
"$heaplab" record -o "$out/python-threads.hlt.zst" -- env PYTHONMALLOC=malloc /usr/bin/python3 -S "$inputs/python_threads_workload.py"
