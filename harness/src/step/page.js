"use strict";
// heaplab step's player. The page holds one recording per allocator (see
// harness/src/step/mod.rs), all of the same workload: keyframes and per-op
// deltas of three maps keyed by arena offset (free extents [offset, len],
// live blocks [offset, requested, granted] and buddy tree leaves [offset,
// order, state]). Any op is rebuilt from the nearest keyframe at or before
// it. One player steps every panel to the same op. The state shown is in
// data- attributes of each .panel, and of #player for the first panel,
// which the browser test reads.
(function () {
  const DATA = JSON.parse(document.getElementById("recording").textContent);
  const player = document.getElementById("player");
  const $ = (id) => document.getElementById(id);
  const TREE_FREE = 0, TREE_TAKEN = 1, TREE_HELD = 2;
  const MAPS = ["free", "live", "tree", "links", "heads"];
  const colours = {
    payload: "#0072b2", free: "#8fd3b6", freeEdge: "#009e73", other: "#d9d9d9",
    held: "#cc79a7", taken: "#56b4e9", split: "#f2f2f2", touched: "#d55e00",
  };

  // ---- numbers for people --------------------------------------------------
  function bytes(n) {
    if (n < 1024) return n + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let v = n / 1024, u = 0;
    while (v >= 1024 && u + 1 < units.length) { v /= 1024; u++; }
    const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
    return v.toFixed(digits) + " " + units[u];
  }
  // A label short enough for a block: 64, 1.5K, 2M.
  function shortBytes(n) {
    if (n < 1024) return String(n);
    const units = ["K", "M", "G", "T"];
    let v = n / 1024, u = 0;
    while (v >= 1024 && u + 1 < units.length) { v /= 1024; u++; }
    return (Number.isInteger(v) ? String(v) : v.toFixed(1)) + units[u];
  }
  const hex = (n) => "0x" + n.toString(16);
  const count = (n) => n.toLocaleString("en-US");

  // The entry of a list sorted by offset whose extent holds `offset`.
  function containing(entries, offset, lengthOf) {
    let lo = 0, hi = entries.length - 1, found = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (entries[mid][0] <= offset) { found = entries[mid]; lo = mid + 1; } else hi = mid - 1;
    }
    return found && offset < found[0] + lengthOf(found) ? found : null;
  }

  function fraction(n, d) { return n === null || d === null || d === 0 ? null : n / d; }

  // ---- canvases ------------------------------------------------------------
  function setup(canvas, height) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(300, canvas.clientWidth || 1200);
    canvas.style.height = height + "px";
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    return { ctx, width, height };
  }

  function label(ctx, text, x, y, w, colour) {
    if (ctx.measureText(text).width + 4 > w) return;
    ctx.fillStyle = colour;
    ctx.textAlign = "center";
    ctx.fillText(text, x + w / 2, y);
  }

  // ---- one allocator's panel -----------------------------------------------
  function Panel(R, index) {
    const root = $("panel-template").content.firstElementChild.cloneNode(true);
    const el = (name) => root.querySelector("." + name);
    const state = { op: -1, maps: {}, gone: null, footprint: null };
    for (const name of MAPS) state.maps[name] = new Map();
    const noneGone = () => Object.fromEntries(MAPS.map((name) => [name, []]));
    const treeMin = R.tree ? R.tree.min_block : 0;
    const leafBytes = (leaf) => treeMin * Math.pow(2, leaf[1]);
    const record = (op) => R.ops[op - R.first];
    const wordsOf = (op) => `op ${op}: ${record(op).words}`;

    root.dataset.allocator = R.allocator;
    root.dataset.views = ["arena", "tree"].filter((v) => R.views[v]).join(" ");
    el("panel-title").textContent = R.allocator;
    el("arena-view").hidden = !R.views.arena;
    el("tree-view").hidden = !R.views.tree;
    if (R.views.lacking.length) {
      el("lacking").hidden = false;
      for (const why of R.views.lacking) {
        const item = document.createElement("li");
        item.textContent = why;
        el("lacking-list").appendChild(item);
      }
    }

    function keyframeAtOrBefore(op) {
      let lo = 0, hi = R.keyframes.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (R.keyframes[mid].op <= op) lo = mid; else hi = mid - 1;
      }
      return R.keyframes[lo];
    }

    // Apply one op's deltas; with `keep`, remember the entries it removed
    // or replaced (drawn dashed: what the op took away).
    function apply(rec, keep) {
      const gone = keep ? noneGone() : null;
      if (rec.footprint !== undefined) state.footprint = rec.footprint;
      for (const name of MAPS) {
        const delta = rec[name];
        if (!delta) continue;
        const map = state.maps[name];
        for (const offset of delta.del) {
          if (gone && map.has(offset)) gone[name].push(map.get(offset));
          map.delete(offset);
        }
        for (const entry of delta.put) {
          if (gone && map.has(entry[0])) gone[name].push(map.get(entry[0]));
          map.set(entry[0], entry);
        }
      }
      return gone;
    }

    function load(op) {
      if (op === state.op + 1 && state.op >= R.first) {
        state.gone = apply(record(op), true);
      } else {
        // From a keyframe before the op (not at it), so that what the op
        // itself changed is known and outlined however the op was reached.
        const key = keyframeAtOrBefore(op > R.first ? op - 1 : op);
        for (const name of MAPS) state.maps[name] = new Map(key[name].map((e) => [e[0], e]));
        state.footprint = key.footprint;
        state.gone = noneGone();
        for (let o = key.op + 1; o <= op; o++) {
          const gone = apply(record(o), o === op);
          if (gone) state.gone = gone;
        }
      }
      state.op = op;
      state.sorted = {};
      for (const name of MAPS) state.sorted[name] = [...state.maps[name].values()].sort((a, b) => a[0] - b[0]);
    }

    // What lies at `offset`: machine-readable (kind, offset, length) and words.
    function blockAt(offset) {
      const live = containing(state.sorted.live, offset, (e) => e[1]);
      if (live) return { kind: "payload", at: live[0], len: live[1],
        words: `live block at ${hex(live[0])}: ${bytes(live[1])} requested, ${bytes(live[2])} granted` };
      const free = containing(state.sorted.free, offset, (e) => e[1]);
      if (free) return { kind: "free", at: free[0], len: free[1], words: `free block at ${hex(free[0])}: ${bytes(free[1])}` };
      return { kind: "other", at: offset, len: 0,
        words: offset < R.arena_bytes ? `${hex(offset)}: neither free nor payload (a header, padding, rounding, metadata, or never used)` : `${hex(offset)}: outside the arena` };
    }

    function nrFree() {
      if (!R.tree) return [];
      const counts = new Array(R.tree.max_order + 1).fill(0);
      for (const leaf of state.sorted.tree) if (leaf[2] === TREE_FREE) counts[leaf[1]]++;
      return counts;
    }

    // ---- the words and gauges ----------------------------------------------
    // R, G, F, free blocks, L, H: from the maps with the arena line (the
    // allocator's free extents and the replay's live blocks), else recorded.
    function figures(rec) {
      if (rec.figures) return rec.figures;
      let r = 0, g = 0, f = 0, l = 0;
      for (const [, requested, granted] of state.sorted.live) { r += requested; g += granted; }
      for (const [, len] of state.sorted.free) { f += len; l = Math.max(l, len); }
      return [r, R.granted ? g : null, f, state.sorted.free.length, l, state.footprint];
    }

    function gauge(name, value, undefinedWhy) {
      const box = el(name);
      const fill = box.querySelector(".gauge-fill");
      const text = box.querySelector(".gauge-value");
      if (value === null) {
        fill.style.width = "0";
        text.textContent = "— " + undefinedWhy;
      } else {
        fill.style.width = (100 * Math.max(0, Math.min(1, value))).toFixed(2) + "%";
        text.textContent = (100 * value).toFixed(1) + " %";
      }
      return value === null ? "" : (100 * value).toFixed(3);
    }

    function renderWords(rec) {
      el("words").textContent = wordsOf(state.op);
      const [r, g, f, , l, h] = figures(rec);
      const internal = g === null ? null : fraction(g - r, g);
      const external = f === null || l === null ? null : fraction(f - l, f);
      const utilization = h === null ? null : fraction(r, h);
      root.dataset.internalPct = gauge("g-internal", internal, g === null ? "granted bytes not reported" : "no live blocks");
      root.dataset.externalPct = gauge("g-external", external, f === null || l === null ? "free space not reported" : "nothing free");
      root.dataset.utilizationPct = gauge("g-utilization", utilization, h === null ? "footprint not reported" : "nothing used yet");
    }

    // ---- the arena line ----------------------------------------------------
    // The arena wraps into rows of a power of two bytes (so buddy blocks up
    // to a row never wrap), at most 8 rows; the scale is fixed for the page.
    const arenaRows = (() => {
      const span = R.arena_bytes;
      let perRow = 1;
      while (perRow * 8 < span) perRow *= 2;
      while (perRow < span && perRow < 4096 && perRow * 2 <= span) perRow *= 2;
      return { perRow: Math.max(perRow, 1), rows: Math.max(1, Math.ceil(span / perRow)) };
    })();
    const ROW_H = 34, BAND_H = 8, ROW_GAP = 16;

    function arenaPieces(offset, len, fn) {
      // Split [offset, offset + len) at row boundaries.
      let at = offset;
      const end = offset + len;
      while (at < end) {
        const row = Math.floor(at / arenaRows.perRow);
        const rowEnd = Math.min(end, (row + 1) * arenaRows.perRow);
        fn(row, at - row * arenaRows.perRow, rowEnd - at);
        at = rowEnd;
      }
    }

    // The row holding the widest piece of a block that wraps: its size is
    // written there only, once.
    function widestPiece(offset, len) {
      let best = -1, bestLen = -1;
      arenaPieces(offset, len, (row, x, l) => { if (l > bestLen) { best = row; bestLen = l; } });
      return best;
    }

    function drawArena() {
      const canvas = el("arena");
      const height = arenaRows.rows * (ROW_H + BAND_H + ROW_GAP) + 4;
      const { ctx, width } = setup(canvas, height);
      const scale = (width - 2) / arenaRows.perRow;
      const top = (row) => 2 + row * (ROW_H + BAND_H + ROW_GAP) + BAND_H;
      const rect = (row, x, len) => [1 + x * scale, top(row), Math.max(len * scale, 0.6), ROW_H];
      // Rows: everything "other" until painted.
      for (let row = 0; row < arenaRows.rows; row++) {
        const len = Math.min(arenaRows.perRow, R.arena_bytes - row * arenaRows.perRow);
        ctx.fillStyle = colours.other;
        ctx.fillRect(...rect(row, 0, len));
        ctx.fillStyle = "#555";
        ctx.textAlign = "left";
        ctx.fillText(hex(row * arenaRows.perRow), 2, top(row) + ROW_H + 7);
      }
      // Slab pages, as a band above the line.
      if (R.tree) {
        for (const leaf of state.sorted.tree) {
          if (leaf[2] < TREE_HELD) continue;
          arenaPieces(leaf[0], leafBytes(leaf), (row, x, len) => {
            const [rx, ry, rw] = rect(row, x, len);
            ctx.fillStyle = colours.held;
            ctx.fillRect(rx, ry - BAND_H, Math.max(rw - 1, 0.6), BAND_H - 1);
          });
        }
      }
      for (const [offset, len] of state.sorted.free) {
        arenaPieces(offset, len, (row, x, l) => {
          const [rx, ry, rw, rh] = rect(row, x, l);
          ctx.fillStyle = colours.free;
          ctx.fillRect(rx, ry, rw, rh);
          ctx.fillStyle = colours.freeEdge;
          ctx.fillRect(rx, ry, Math.min(1, rw), rh);
          if (widestPiece(offset, len) === row) label(ctx, shortBytes(len), rx, ry + rh / 2, rw, "#0b3d2c");
        });
      }
      for (const [offset, requested] of state.sorted.live) {
        arenaPieces(offset, Math.max(requested, 1), (row, x, l) => {
          const [rx, ry, rw, rh] = rect(row, x, l);
          ctx.fillStyle = colours.payload;
          ctx.fillRect(rx, ry, rw, rh);
          ctx.fillStyle = "#fff";
          ctx.fillRect(rx, ry, Math.min(1, rw), rh);
          if (widestPiece(offset, Math.max(requested, 1)) === row) label(ctx, shortBytes(requested), rx, ry + rh / 2, rw, "#fff");
        });
      }
      // What this op changed: outlines; dashed where a block went away.
      const outline = (offset, len, dashed) => arenaPieces(offset, len, (row, x, l) => {
        const [rx, ry, rw, rh] = rect(row, x, l);
        ctx.save();
        ctx.strokeStyle = colours.touched;
        ctx.lineWidth = 2;
        if (dashed) ctx.setLineDash([4, 3]);
        ctx.strokeRect(rx + 1, ry + (dashed ? 4 : 1), Math.max(rw - 2, 1), rh - (dashed ? 8 : 2));
        ctx.restore();
      });
      const rec = record(state.op);
      if (state.op > R.first && rec) {
        for (const [offset, len] of state.gone.free) outline(offset, len, true);
        for (const [offset, requested] of state.gone.live) outline(offset, Math.max(requested, 1), true);
        for (const entry of (rec.free ? rec.free.put : [])) outline(entry[0], entry[1], false);
        for (const entry of (rec.live ? rec.live.put : [])) outline(entry[0], Math.max(entry[1], 1), false);
      }
      // The footprint.
      const h = state.footprint;
      if (h !== null && h !== undefined && h < R.arena_bytes) {
        const row = Math.floor(h / arenaRows.perRow);
        const [rx, ry, , rh] = rect(row, h - row * arenaRows.perRow, 0);
        ctx.save();
        ctx.strokeStyle = "#000";
        ctx.lineWidth = 2;
        ctx.setLineDash([3, 2]);
        ctx.beginPath();
        ctx.moveTo(rx, ry - BAND_H);
        ctx.lineTo(rx, ry + rh + 2);
        ctx.stroke();
        ctx.restore();
      }
      el("arena-scale").textContent = `${bytes(R.arena_bytes)} in ${arenaRows.rows} ${arenaRows.rows === 1 ? "row" : "rows"} of ${bytes(arenaRows.perRow)}, ${(arenaRows.perRow / (width - 2)).toFixed(arenaRows.perRow / (width - 2) >= 10 ? 0 : 2)} bytes a pixel`;
      canvas.onmousemove = (event) => {
        const box = canvas.getBoundingClientRect();
        const x = event.clientX - box.left - 1, y = event.clientY - box.top - 2;
        const row = Math.floor(y / (ROW_H + BAND_H + ROW_GAP));
        const offset = Math.floor(row * arenaRows.perRow + x / scale);
        if (row < 0 || row >= arenaRows.rows || x < 0) return;
        el("arena-hover").textContent = blockAt(offset).words;
      };
    }

    // ---- the buddy tree ----------------------------------------------------
    // One row per order, the largest at the top; each leaf (free, allocated
    // or held) spans its bytes, each split block above its two halves.
    function drawTree() {
      const geometry = R.tree;
      const orders = geometry.max_order - geometry.lowest_order + 1;
      const LEVEL_H = 30;
      const canvas = el("tree");
      const { ctx, width } = setup(canvas, orders * LEVEL_H + 6);
      const scale = (width - 2) / geometry.managed_bytes;
      const box = (offset, order) => [1 + offset * scale, 3 + (geometry.max_order - order) * LEVEL_H,
        Math.max(treeMin * Math.pow(2, order) * scale, 0.6), LEVEL_H - 8];
      const parentOf = (offset, order) => {
        if (order >= geometry.max_order) return null;
        const size = treeMin * Math.pow(2, order + 1);
        const start = Math.floor(offset / size) * size;
        return start + size <= geometry.managed_bytes ? [start, order + 1] : null;
      };
      const splits = new Map();
      for (const leaf of state.sorted.tree) {
        let node = parentOf(leaf[0], leaf[1]);
        while (node && !splits.has(node[0] + ":" + node[1])) {
          splits.set(node[0] + ":" + node[1], node);
          node = parentOf(node[0], node[1]);
        }
      }
      ctx.lineWidth = 1;
      for (const [offset, order] of splits.values()) {
        const [x, y, w, h] = box(offset, order);
        ctx.fillStyle = colours.split;
        ctx.fillRect(x, y, w, h);
        ctx.strokeStyle = "#9a9a9a";
        ctx.strokeRect(x + 0.5, y + 0.5, Math.max(w - 1, 0.5), h - 1);
        if (w >= 16) {
          // The buddies: lines from the split block to its two halves.
          ctx.beginPath();
          ctx.moveTo(x + w / 2, y + h);
          ctx.lineTo(x + w / 4, y + LEVEL_H);
          ctx.moveTo(x + w / 2, y + h);
          ctx.lineTo(x + 3 * w / 4, y + LEVEL_H);
          ctx.stroke();
        }
        label(ctx, shortBytes(treeMin * Math.pow(2, order)), x, y + h / 2, w, "#666");
      }
      for (const leaf of state.sorted.tree) {
        const [x, y, w, h] = box(leaf[0], leaf[1]);
        const held = leaf[2] >= TREE_HELD;
        ctx.fillStyle = leaf[2] === TREE_FREE ? colours.free : held ? colours.held : colours.taken;
        ctx.fillRect(x, y, w, h);
        ctx.strokeStyle = leaf[2] === TREE_FREE ? colours.freeEdge : "#333";
        ctx.strokeRect(x + 0.5, y + 0.5, Math.max(w - 1, 0.5), h - 1);
        const name = held ? geometry.holders[leaf[2] - TREE_HELD] : shortBytes(leafBytes(leaf));
        label(ctx, name, x, y + h / 2, w, held ? "#fff" : "#0b2530");
      }
      const rec = record(state.op);
      const outline = (offset, order, dashed) => {
        const [x, y, w, h] = box(offset, order);
        ctx.save();
        ctx.strokeStyle = colours.touched;
        ctx.lineWidth = 2.5;
        if (dashed) ctx.setLineDash([4, 3]);
        ctx.strokeRect(x + 1, y + 1, Math.max(w - 2, 1), h - 2);
        ctx.restore();
      };
      if (state.op > R.first && rec) {
        for (const leaf of state.gone.tree) outline(leaf[0], leaf[1], true);
        for (const leaf of (rec.tree ? rec.tree.put : [])) outline(leaf[0], leaf[1], false);
      }
      el("tree-scale").textContent = `orders ${geometry.max_order} (top) to ${geometry.lowest_order}, order 0 = ${bytes(treeMin)}; ${bytes(geometry.managed_bytes)} managed`;
      canvas.onmousemove = (event) => {
        const b = canvas.getBoundingClientRect();
        const x = event.clientX - b.left - 1, y = event.clientY - b.top - 3;
        const order = geometry.max_order - Math.floor(y / LEVEL_H);
        const offset = Math.floor(x / scale);
        const leaf = containing(state.sorted.tree, offset, leafBytes);
        if (!leaf) return;
        if (leaf[1] < order) {
          el("tree-hover").textContent = `a split block of order ${order} (${bytes(treeMin * Math.pow(2, order))})`;
          return;
        }
        const size = leafBytes(leaf);
        const buddyAt = leaf[0] ^ size;
        const buddy = state.maps.tree.get(buddyAt);
        const buddyWords = leaf[1] >= geometry.max_order || buddyAt + size > geometry.managed_bytes ? "it has no buddy (a top block)"
          : buddy && buddy[1] === leaf[1] ? `its buddy at ${hex(buddyAt)} is ${describeLeaf(buddy)}`
          : `its buddy at ${hex(buddyAt)} is split`;
        el("tree-hover").textContent = `order ${leaf[1]} block at ${hex(leaf[0])} (${bytes(size)}): ${describeLeaf(leaf)}; ${buddyWords}`;
      };
    }

    function describeLeaf(leaf) {
      if (leaf[2] === TREE_FREE) return "free";
      if (leaf[2] === TREE_TAKEN) return "allocated";
      return "a slab of " + R.tree.holders[leaf[2] - TREE_HELD];
    }

    function renderBuddyinfo() {
      const counts = nrFree();
      root.dataset.buddyinfo = counts.join(" ");
      el("buddyinfo").textContent = "Node 0, zone  heaplab " + counts.map((c) => String(c).padStart(6)).join(" ");
      const before = state.op > R.first && state.gone ? previousCounts(counts) : counts;
      const table = el("orders");
      table.innerHTML = "";
      const head = table.insertRow();
      const sizes = table.insertRow();
      const frees = table.insertRow();
      head.innerHTML = "<th>order</th>";
      sizes.innerHTML = "<th>block</th>";
      frees.innerHTML = "<th>nr_free</th>";
      counts.forEach((c, order) => {
        head.insertCell().textContent = order;
        sizes.insertCell().textContent = bytes(treeMin * Math.pow(2, order));
        const cell = frees.insertCell();
        cell.textContent = c;
        if (before[order] !== c) cell.className = "changed";
      });
    }

    // nr_free before this op: the counts with this op's tree changes undone.
    function previousCounts(counts) {
      const before = counts.slice();
      const rec = record(state.op);
      if (!rec || !rec.tree) return before;
      for (const leaf of rec.tree.put) if (leaf[2] === TREE_FREE) before[leaf[1]]--;
      for (const leaf of state.gone.tree) if (leaf[2] === TREE_FREE) before[leaf[1]]++;
      return before;
    }

    // ---- slab caches -------------------------------------------------------
    // Each held leaf is a slab of a cache: objects of the cache's size from
    // the slab's start, in use where a live block starts. A slab with every
    // object in use is on the full list, with none on the empty list, else
    // on the partial list (the lists check() holds the slab allocator to).
    const MAX_SLABS_DRAWN = 24;
    const objectBytes = R.tree ? R.tree.holder_object_bytes : [];
    const showsSlabs = R.views.tree && objectBytes.length > 0;
    if (showsSlabs) el("slab-view").hidden = false;

    function slabs() {
      const caches = new Map();
      const live = state.sorted.live;
      const touched = new Set();
      const rec = record(state.op);
      if (state.op > R.first && rec && rec.live) {
        for (const entry of rec.live.put) touched.add(entry[0]);
        for (const offset of rec.live.del) touched.add(offset);
      }
      for (const leaf of state.sorted.tree) {
        if (leaf[2] < TREE_HELD) continue;
        const holder = leaf[2] - TREE_HELD;
        const size = objectBytes[holder];
        const bytes = leafBytes(leaf);
        const objects = Math.floor(bytes / size);
        const used = new Uint8Array(objects);
        let lo = 0, hi = live.length;
        while (lo < hi) { const mid = (lo + hi) >> 1; if (live[mid][0] < leaf[0]) lo = mid + 1; else hi = mid; }
        let inUse = 0;
        for (let i = lo; i < live.length && live[i][0] < leaf[0] + objects * size; i++) {
          used[(live[i][0] - leaf[0]) / size] = 1;
          inUse++;
        }
        const marks = [];
        for (const offset of touched) {
          if (offset >= leaf[0] && offset < leaf[0] + objects * size) marks.push((offset - leaf[0]) / size);
        }
        if (!caches.has(holder)) caches.set(holder, { holder, size, objects, order: leaf[1], slabs: [] });
        const list = inUse === objects ? "full" : inUse === 0 ? "empty" : "partial";
        caches.get(holder).slabs.push({ base: leaf[0], used, inUse, list, marks });
      }
      return [...caches.values()].sort((a, b) => a.size - b.size);
    }

    function drawSlabs() {
      const caches = slabs();
      const lines = ["# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : slabdata <active_slabs> <num_slabs>"];
      const box = el("caches");
      box.innerHTML = "";
      const summary = [];
      for (const cache of caches) {
        const name = R.tree.holders[cache.holder];
        const active = cache.slabs.reduce((n, s) => n + s.inUse, 0);
        const total = cache.slabs.length * cache.objects;
        const pages = Math.pow(2, cache.order);
        lines.push(`${name.padEnd(17)} ${String(active).padStart(6)} ${String(total).padStart(6)} ${String(cache.size).padStart(6)} ${String(cache.objects).padStart(4)} ${String(pages).padStart(4)} : slabdata ${String(cache.slabs.length).padStart(6)} ${String(cache.slabs.length).padStart(6)}`);
        const count = (list) => cache.slabs.filter((s) => s.list === list).length;
        summary.push(`${name} ${active} ${total} ${cache.slabs.length} ${count("partial")} ${count("empty")}`);
        const section = document.createElement("div");
        section.className = "cache";
        const title = document.createElement("div");
        title.className = "cache-name";
        title.textContent = `${name}: ${cache.objects} objects of ${bytes(cache.size)} in a ${bytes(leafBytes([0, cache.order]))} slab; ` +
          `${cache.slabs.length} ${cache.slabs.length === 1 ? "slab" : "slabs"}: ${count("partial")} partial, ${count("full")} full, ${count("empty")} empty; ${active} of ${total} objects in use`;
        section.appendChild(title);
        const order = { partial: 0, full: 1, empty: 2 };
        const drawn = cache.slabs.slice().sort((a, b) => order[a.list] - order[b.list] || a.base - b.base).slice(0, MAX_SLABS_DRAWN);
        const canvas = document.createElement("canvas");
        section.appendChild(canvas);
        box.appendChild(section);
        const perRow = Math.min(cache.objects, 128);
        const rowsPerSlab = Math.ceil(cache.objects / perRow);
        const cell = 8, gap = 6, labelW = 150;
        const height = drawn.length * (rowsPerSlab * cell + gap) + 4;
        const { ctx, width } = setup(canvas, height);
        const cellW = Math.max(2, Math.min(cell, (width - labelW - 4) / perRow));
        drawn.forEach((slab, k) => {
          const y0 = 2 + k * (rowsPerSlab * cell + gap);
          ctx.fillStyle = "#444";
          ctx.textAlign = "left";
          ctx.fillText(`${slab.list} ${hex(slab.base)}`, 2, y0 + (rowsPerSlab * cell) / 2);
          for (let i = 0; i < cache.objects; i++) {
            const x = labelW + (i % perRow) * cellW, y = y0 + Math.floor(i / perRow) * cell;
            ctx.fillStyle = slab.used[i] ? colours.payload : colours.free;
            ctx.fillRect(x, y, Math.max(cellW - 1, 1), cell - 1);
          }
          if (cache.objects * cache.size < leafBytes([0, cache.order])) {
            // The tail, right after the last slot.
            const i = cache.objects - 1;
            const x = labelW + ((i % perRow) + 1) * cellW, y = y0 + Math.floor(i / perRow) * cell;
            ctx.fillStyle = colours.other;
            ctx.fillRect(x, y, Math.max(cellW * 2, 4), cell - 1);
          }
          for (const i of slab.marks) {
            const x = labelW + (i % perRow) * cellW, y = y0 + Math.floor(i / perRow) * cell;
            ctx.strokeStyle = colours.touched;
            ctx.lineWidth = 2;
            ctx.strokeRect(x - 1, y - 1, Math.max(cellW, 3) + 1, cell + 1);
          }
        });
        if (cache.slabs.length > drawn.length) {
          const more = document.createElement("div");
          more.className = "cache-name";
          more.textContent = `… and ${cache.slabs.length - drawn.length} more slabs`;
          section.appendChild(more);
        }
      }
      el("slabinfo").textContent = lines.join("\n");
      root.dataset.slabinfo = summary.join("; ");
    }

    // ---- free lists in list order ------------------------------------------
    const MAX_LISTED = 48;
    if (R.views.lists) el("lists-view").hidden = false;

    // Each non-empty list as its blocks in list order, from the links.
    function lists() {
      const names = R.lists.names;
      const out = [];
      for (const [list, head] of state.sorted.heads) {
        if (list >= names.length) continue;
        const blocks = [head];
        let at = head;
        for (let guard = 0; guard < state.sorted.links.length; guard++) {
          const link = state.maps.links.get(at);
          if (!link || link[1] === at) break;
          at = link[1];
          blocks.push(at);
        }
        out.push({ list, blocks });
      }
      return out;
    }

    function drawLists() {
      const all = lists();
      const rover = state.maps.heads.get(R.lists.names.length);
      root.dataset.lists = all.map((l) => l.list + ":" + l.blocks.join(",")).join(";");
      root.dataset.rover = rover ? rover[1] : "";
      const rec = record(state.op);
      const touched = new Set();
      if (state.op > R.first && rec && rec.links) for (const entry of rec.links.put) touched.add(entry[0]);
      const box = el("lists");
      box.innerHTML = "";
      for (const { list, blocks } of all) {
        const row = document.createElement("div");
        row.className = "list";
        const name = document.createElement("span");
        name.className = "list-name";
        name.textContent = `${R.lists.names[list]} (${blocks.length})`;
        row.appendChild(name);
        for (const block of blocks.slice(0, MAX_LISTED)) {
          const chip = document.createElement("span");
          chip.className = "chip" + (touched.has(block) ? " touched" : "") + (rover && rover[1] === block ? " rover" : "");
          const free = state.maps.free.get(block);
          chip.textContent = `${hex(block)} ${free ? bytes(free[1]) : ""}` + (rover && rover[1] === block ? " ← rover" : "");
          row.appendChild(chip);
        }
        if (blocks.length > MAX_LISTED) {
          const more = document.createElement("span");
          more.className = "list-name";
          more.textContent = `… ${blocks.length - MAX_LISTED} more`;
          row.appendChild(more);
        }
        box.appendChild(row);
      }
      if (!all.length) box.textContent = "every list is empty";
      const bitmaps = el("bitmaps");
      bitmaps.innerHTML = "";
      const per = R.lists.second_level;
      if (per) {
        // TLSF's bitmaps: a first-level bit per row with any list, a
        // second-level bit per non-empty list.
        const nonEmpty = new Set(all.map((l) => l.list));
        const rows = Math.ceil(R.lists.names.length / per);
        const table = document.createElement("table");
        table.className = "bitmap";
        const head = table.insertRow();
        head.insertCell().textContent = "fl";
        head.insertCell().textContent = "FL bit";
        for (let sl = 0; sl < per; sl++) head.insertCell().textContent = sl;
        for (let fl = 0; fl < rows; fl++) {
          const row = table.insertRow();
          row.insertCell().textContent = fl;
          let any = false;
          const cells = [];
          for (let sl = 0; sl < per; sl++) {
            const list = fl * per + sl;
            const cell = document.createElement("td");
            const on = nonEmpty.has(list);
            any = any || on;
            cell.className = on ? "on" : "";
            cell.title = list < R.lists.names.length ? R.lists.names[list] : "";
            cell.textContent = on ? "1" : "0";
            cells.push(cell);
          }
          const flCell = row.insertCell();
          flCell.className = any ? "on" : "";
          flCell.textContent = any ? "1" : "0";
          for (const cell of cells) row.appendChild(cell);
        }
        bitmaps.appendChild(table);
      }
    }

    function show(op, probeOffset) {
      if (op !== state.op) load(op);
      const rec = record(op);
      renderWords(rec);
      if (R.views.arena) drawArena();
      if (R.views.tree) renderBuddyinfo(), drawTree();
      if (showsSlabs) drawSlabs();
      if (R.views.lists) drawLists();
      root.dataset.op = op;
      root.dataset.words = wordsOf(op);
      root.dataset.freeBlocks = state.sorted.free.length;
      // Entries this op removed or replaced, over every map (drawn dashed).
      root.dataset.gone = MAPS.reduce((n, name) => n + (state.gone ? state.gone[name].length : 0), 0);
      if (probeOffset !== null && R.views.arena) {
        const block = blockAt(probeOffset);
        root.dataset.blockAt = `${block.kind} ${block.at} ${block.len}`;
        el("arena-hover").textContent = block.words;
      }
    }

    return { R, root, index, show, wordsAt: (op) => record(op).words };
  }

  // ---- the player ----------------------------------------------------------
  const panels = DATA.recordings.map((R, index) => Panel(R, index));
  const first = Math.max(...panels.map((p) => p.R.first));
  const last = Math.min(...panels.map((p) => p.R.last));
  let op = -1;
  let probeOffset = null;
  let timer = null;

  function render() {
    for (const panel of panels) panel.show(op, probeOffset);
    $("slider").value = op;
    $("opnumber").value = op;
    // The first panel's state, on #player too.
    for (const [key, value] of Object.entries(panels[0].root.dataset)) player.dataset[key] = value;
    player.dataset.op = op;
    player.dataset.panels = panels.length;
    player.dataset.ready = "true";
  }

  function go(to, fromHash) {
    op = Math.max(first, Math.min(last, Math.round(to)));
    render();
    if (!fromHash) {
      const extra = probeOffset === null ? "" : "&offset=" + probeOffset;
      history.replaceState(null, "", "#op=" + op + extra);
    }
  }

  function readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const offset = params.get("offset");
    probeOffset = offset === null || offset === "" ? null : Number(offset);
    const asked = params.get("op");
    const wanted = asked === null ? first : Number(asked);
    // Its own note, so that the cap's stays.
    const note = $("outside");
    note.hidden = !(asked !== null && (!Number.isFinite(wanted) || wanted < first || wanted > last));
    if (!note.hidden) {
      note.textContent = `Op ${asked} is not in this page, which holds ops ${count(first)} to ${count(last)}; showing the nearest.`;
    }
    go(Number.isFinite(wanted) ? wanted : first, true);
  }

  function play() {
    if (timer) { clearInterval(timer); timer = null; $("play").textContent = "play"; return; }
    if (op >= last) go(first);
    $("play").textContent = "pause";
    const speed = Number($("speed").value);
    const every = Math.max(1000 / speed, 16);
    const per = Math.max(1, Math.round(speed * every / 1000));
    timer = setInterval(() => {
      if (op >= last) { play(); return; }
      go(op + per);
    }, every);
  }

  // What each jump looks for in an op's words: the op split or merged
  // (not a buddy said to be split), or its request was refused.
  const EVENTS = { split: /; split (once|\d+ times)/, merged: /merged (once|\d+ times)/, refused: /→ refused/ };

  // The next op at which any panel's words tell of `word`.
  function jump(word) {
    for (let at = op + 1; at <= last; at++) {
      if (panels.some((panel) => EVENTS[word].test(panel.wordsAt(at)))) { go(at); return; }
    }
    const none = word === "refused" ? "is refused" : "is a " + word;
    $("jump-note").textContent = `(no later op ${none})`;
    setTimeout(() => { $("jump-note").textContent = ""; }, 3000);
  }

  function start() {
    const slider = $("slider");
    slider.min = first;
    slider.max = last;
    $("opnumber").min = first;
    $("opnumber").max = last;
    for (const panel of panels) $("panels").appendChild(panel.root);
    // One legend per view: the first panel that shows it keeps its own.
    for (const view of ["arena-view", "tree-view"]) {
      const showing = panels.filter((p) => !p.root.querySelector("." + view).hidden);
      showing.slice(1).forEach((p) => p.root.querySelector("." + view + " .legend").remove());
    }
    const capped = panels.find((p) => p.R.capped !== null && p.R.capped !== undefined);
    if (capped) {
      const note = $("cap");
      note.hidden = false;
      note.textContent = `This page shows ops ${count(first)} to ${count(last)} of ${count(capped.R.total_ops)}: unless --ops asks for a range, heaplab step shows at most ${count(DATA.cap_ops)} ops, and fewer when the page would pass ${bytes(DATA.budget_bytes)}.`;
    }
    player.dataset.first = first;
    player.dataset.last = last;
    $("first").onclick = () => go(first);
    $("last").onclick = () => go(last);
    $("back").onclick = () => go(op - 1);
    $("forward").onclick = () => go(op + 1);
    $("play").onclick = play;
    $("speed").onchange = () => { if (timer) { play(); play(); } };
    slider.oninput = () => go(Number(slider.value));
    $("opnumber").onchange = () => go(Number($("opnumber").value));
    for (const button of document.querySelectorAll("[data-jump]")) button.onclick = () => jump(button.dataset.jump);
    document.addEventListener("keydown", (event) => {
      if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
      const step = event.shiftKey ? 10 : 1;
      const keys = {
        ArrowRight: () => go(op + step), ArrowLeft: () => go(op - step),
        PageDown: () => go(op + 100), PageUp: () => go(op - 100),
        Home: () => go(first), End: () => go(last), " ": play,
        s: () => jump("split"), m: () => jump("merged"), r: () => jump("refused"),
      };
      const action = keys[event.key];
      if (action) { event.preventDefault(); action(); }
    });
    window.addEventListener("hashchange", readHash);
    window.addEventListener("resize", () => render());
    readHash();
  }

  start();
})();
