#!/bin/sh
# The lecture pictures of `heaplab step`, made again from the commands that
# made them: pictures (SVG, PNG, GIF) by heaplab itself, and screenshots of
# the player page by a headless Chromium.
#   benchmarks/pictures/make.sh [path/to/heaplab]
set -eu
heaplab=${1:-target/release/heaplab}
out=$(dirname "$0")
chromium=${HEAPLAB_CHROMIUM:-chromium}
fits="--alloc freelist:fit=first --alloc freelist:fit=next --alloc freelist:fit=best --alloc freelist:fit=worst"
fits_workload="uniform:ops=400,live=12K,min=16,max=1K,phase=steady --arena 16K"

# The four fits after the same 200 ops, as a picture.
$heaplab step $fits --workload $fits_workload --at 200 --view arena -o "$out/fits-op200.png"
# Buddy: the refused 4 KiB request, and splitting and coalescing as a GIF.
$heaplab step --alloc buddy --workload fragmenter:live=8K --at 193 -o "$out/buddy-op193.png"
$heaplab step --alloc buddy --workload fragmenter:live=8K --ops 180..=210 --fps 2 -o "$out/buddy-ops180-210.gif"
# A slab's caches filling (op 400) and emptied (op 3000), in the player page.
page=$(mktemp -d)/slab.html
$heaplab step --alloc slab --workload kmalloc-mix:ops=3000 --arena 4M -o "$page"
for op in 400 3000; do
  "$chromium" --headless --no-sandbox --disable-gpu --virtual-time-budget=3000 \
    --screenshot="$out/slab-page-op$op.png" --window-size=1200,2400 "file://$page#op=$op" 2>/dev/null
done
