//! `heaplab step`'s data: a replay with a recording probe (design notes §13).
//!
//! **Op numbering.** Op N is the state after the N-th op, counted from 1 as
//! `heapmap --at` and every message of heaplab count them; op 0 is the heap
//! before the first op. A recording shows ops `first..=last`: the state at
//! `first` in full (a keyframe), then for each later op what changed.
//!
//! **What is recorded.** Three maps keyed by arena offset, each changed by
//! deltas (offsets removed, entries put):
//! - `free`: the free extents the allocator walks (`for_each_free`), as
//!   `[offset, len]`;
//! - `live`: the live blocks the replay holds, `[offset, requested, granted]`;
//! - `tree`, for an allocator over a buddy system: the leaves of its tree of
//!   splits, `[offset, order, state]` with state 0 free, 1 taken by a caller,
//!   2 + h held by holder h (a slab cache);
//! - for an allocator with free lists to show, their order as two more:
//!   `links`, `[offset, next, list]` for each listed block (`next` is the
//!   block itself at the end of its list), and `heads`, `[list, first]` for
//!   each non-empty list, with the next-fit rover as `[lists, block]` (one
//!   past the last list).
//!
//! A keyframe repeats a map in full whenever the deltas since the last one
//! outgrow it, so that the page rebuilds any op from the nearest keyframe in
//! time proportional to the state, however long the recording.
//!
//! With each op come its words ("op 193: alloc 4096 B → refused: …") and
//! the figures of its gauges: R, G, F, free blocks, L and H (design notes §4).

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::{Allocator, BuddyLevel, Counters, Reports};
use heaplab_workloads::OpKind;
use serde::Serialize;

use crate::prepare::Step;
use crate::replay::Probe;
use crate::units;

/// Ops a recording shows unless asked for more.
pub const DEFAULT_CAP: u64 = 20_000;

/// A leaf of a buddy tree held by no one: free.
pub const TREE_FREE: u64 = 0;
/// A leaf handed to a caller.
pub const TREE_TAKEN: u64 = 1;
/// A leaf held by holder `h` is `TREE_HELD + h`.
pub const TREE_HELD: u64 = 2;

/// An entry of a map: its offset first.
pub type Entry<const N: usize> = [u64; N];

/// Changes to one map at one op: offsets removed, then entries put.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delta<T> {
    /// Offsets whose entries are gone.
    pub del: Vec<u64>,
    /// Entries added or changed, offset first.
    pub put: Vec<T>,
}

impl<T: Copy + PartialEq + AsRef<[u64]>> Delta<T> {
    fn is_empty(&self) -> bool {
        self.del.is_empty() && self.put.is_empty()
    }

    fn len(&self) -> usize {
        self.del.len() + self.put.len()
    }

    /// What turns `old` into `new`, both sorted by offset with one entry
    /// per offset.
    fn between(old: &[T], new: &[T]) -> Delta<T> {
        let mut delta = Delta { del: Vec::new(), put: Vec::new() };
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let key = |entry: &T| entry.as_ref()[0];
            match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) if key(a) == key(b) => {
                    if a != b {
                        delta.put.push(*b);
                    }
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if key(a) < key(b) => {
                    delta.del.push(key(a));
                    i += 1;
                }
                (Some(a), None) => {
                    delta.del.push(key(a));
                    i += 1;
                }
                (_, Some(b)) => {
                    delta.put.push(*b);
                    j += 1;
                }
                (None, None) => unreachable!("the loop runs while either has entries"),
            }
        }
        delta
    }
}

/// The whole state at one op.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Keyframe {
    /// The op it is the state after.
    pub op: u64,
    /// Free extents, `[offset, len]`, by offset.
    pub free: Vec<[u64; 2]>,
    /// Live blocks, `[offset, requested, granted]`, by offset.
    pub live: Vec<[u64; 3]>,
    /// Buddy-tree leaves, `[offset, order, state]`, by offset.
    pub tree: Vec<[u64; 3]>,
    /// Free-list links, `[offset, next, list]`, by offset.
    pub links: Vec<[u64; 3]>,
    /// Free-list heads and the rover, `[list, block]`, by list.
    pub heads: Vec<[u64; 2]>,
    /// H then, where the allocator reports it.
    pub footprint: Option<u64>,
}

/// One op of a recording (the k-th is op `first + k`).
///
/// Its gauges' figures are R, G, F, free blocks, L and H after it. With
/// the arena line, all but H follow from the maps (the page sums them), and
/// H comes only when it changed; without, they come as `figures`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OpRecord {
    /// What it did, in words, after "op N: ".
    pub words: String,
    /// R, G, F, free blocks, L, H (`null` where the allocator cannot
    /// tell), for an allocator without the arena line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<[Option<u64>; 6]>,
    /// H, when it changed at this op.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footprint: Option<u64>,
    /// Changes to `free`.
    #[serde(skip_serializing_if = "Delta::is_empty")]
    pub free: Delta<Entry<2>>,
    /// Changes to `live`.
    #[serde(skip_serializing_if = "Delta::is_empty")]
    pub live: Delta<Entry<3>>,
    /// Changes to `tree`.
    #[serde(skip_serializing_if = "Delta::is_empty")]
    pub tree: Delta<Entry<3>>,
    /// Changes to `links`.
    #[serde(skip_serializing_if = "Delta::is_empty")]
    pub links: Delta<Entry<3>>,
    /// Changes to `heads`.
    #[serde(skip_serializing_if = "Delta::is_empty")]
    pub heads: Delta<Entry<2>>,
}

/// The buddy system a tree view draws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeGeometry {
    /// Bytes of an order-0 block.
    pub min_block: u64,
    /// The largest order.
    pub max_order: u32,
    /// Bytes tiled with blocks.
    pub managed_bytes: u64,
    /// The lowest order any leaf of the recording has (the tree is drawn
    /// down to it).
    pub lowest_order: u32,
    /// What holds held leaves (`kmalloc-64`).
    pub holders: Vec<String>,
    /// The object size each holder carves its leaves into.
    pub holder_object_bytes: Vec<u64>,
}

/// The free lists a lists view draws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListGeometry {
    /// Each list's name.
    pub names: Vec<String>,
    /// For two-level segregated fit: lists per first level.
    pub second_level: Option<u64>,
}

/// The views an allocator can show, and why not the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Views {
    /// The arena as an address line.
    pub arena: bool,
    /// The buddy tree.
    pub tree: bool,
    /// The free lists in list order.
    pub lists: bool,
    /// One sentence per view it cannot show.
    pub lacking: Vec<String>,
}

impl Views {
    /// What an allocator that reports `reports` (and has a buddy level or
    /// not) can show.
    pub fn of(spec: &str, reports: Reports, buddy: bool, lists: bool) -> Views {
        let arena = reports.in_arena && reports.free_space;
        let mut lacking = Vec::new();
        if !arena {
            lacking.push(format!("the arena line: {spec} does not report its free space inside an arena heaplab owns"));
        }
        if !buddy {
            lacking.push(format!("the buddy tree: {spec} is not built on a binary buddy system"));
        }
        if !lists {
            lacking.push(format!("the free lists in list order: {spec} does not expose its free lists"));
        }
        Views { arena, tree: buddy && arena, lists: lists && arena, lacking }
    }
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recording {
    /// The allocator spec, canonical.
    pub allocator: String,
    /// The workload, as named.
    pub workload: String,
    /// Arena bytes.
    pub arena_bytes: u64,
    /// Ops in the workload.
    pub total_ops: u64,
    /// First op shown.
    pub first: u64,
    /// Last op shown.
    pub last: u64,
    /// Set when the default cap cut the recording short: the cap.
    pub capped: Option<u64>,
    /// What can be shown.
    pub views: Views,
    /// Are granted bytes known (`granted()` is the block's real cost)?
    pub granted: bool,
    /// The buddy system, when the tree can be shown.
    pub tree: Option<TreeGeometry>,
    /// The free lists, when they can be shown.
    pub lists: Option<ListGeometry>,
    /// Full states; the first is at `first`.
    pub keyframes: Vec<Keyframe>,
    /// Ops `first..=last`, in order.
    pub ops: Vec<OpRecord>,
}

impl Recording {
    /// Keep ops up to `last` only (a page that would be too large): the
    /// recording says it was capped there.
    pub fn truncate(&mut self, last: u64) {
        if last >= self.last {
            return;
        }
        self.ops.truncate((last - self.first + 1) as usize);
        self.keyframes.retain(|keyframe| keyframe.op <= last);
        self.last = last;
        self.capped = Some(last - self.first);
    }
}

impl Recording {
    /// The state after every op shown, in order, with the op's record:
    /// the first keyframe, then each op's deltas applied to it (as the
    /// page rebuilds an op).
    pub fn states(&self) -> impl Iterator<Item = (Keyframe, &OpRecord)> + '_ {
        let mut state = self.keyframes.first().cloned().unwrap_or_default();
        self.ops.iter().enumerate().map(move |(k, record)| {
            if k > 0 {
                state.op += 1;
                apply(&mut state.free, &record.free);
                apply(&mut state.live, &record.live);
                apply(&mut state.tree, &record.tree);
                apply(&mut state.links, &record.links);
                apply(&mut state.heads, &record.heads);
                if record.footprint.is_some() {
                    state.footprint = record.footprint;
                }
            }
            (state.clone(), record)
        })
    }
}

/// Apply `delta` to a map sorted by offset (its `del` is sorted too).
fn apply<const N: usize>(map: &mut Vec<[u64; N]>, delta: &Delta<[u64; N]>) {
    if !delta.del.is_empty() {
        map.retain(|entry| delta.del.binary_search(&entry[0]).is_err());
    }
    for &entry in &delta.put {
        match map.binary_search_by_key(&entry[0], |e| e[0]) {
            Ok(at) => map[at] = entry,
            Err(at) => map.insert(at, entry),
        }
    }
}

/// The probe of `heaplab step`: records ops `first..=last` (see the module
/// documentation).
pub struct StepRecorder<'s> {
    steps: &'s [Step],
    first: u64,
    last: u64,
    views: Views,
    reports: Reports,
    /// The live blocks, `[offset, requested, granted]`, by offset.
    live: std::collections::BTreeMap<u64, [u64; 3]>,
    requested: u64,
    granted: u64,
    /// The state at the previous op recorded.
    previous: Keyframe,
    /// Delta entries since the last keyframe.
    since_keyframe: usize,
    /// What the op now running did.
    current: Current,
    counters: Counters,
    lowest_order: u32,
    holders: Vec<String>,
    holder_object_bytes: Vec<u64>,
    geometry: Option<BuddyLevel>,
    list_names: Vec<String>,
    second_level: Option<usize>,
    keyframes: Vec<Keyframe>,
    ops: Vec<OpRecord>,
}

/// The facts of the op now running, from the probe's calls.
#[derive(Debug, Default, Clone, Copy)]
struct Current {
    /// The block the op allocated: offset, requested, granted.
    allocated: Option<[u64; 3]>,
    /// The block it freed or resized: offset, requested, granted.
    freeing: Option<[u64; 3]>,
    /// It was refused: the size asked for.
    refused: Option<u64>,
}

impl std::fmt::Debug for StepRecorder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepRecorder")
            .field("first", &self.first)
            .field("last", &self.last)
            .field("ops", &self.ops.len())
            .finish_non_exhaustive()
    }
}

impl<'s> StepRecorder<'s> {
    /// Record ops `first..=last` of `steps` replayed through `allocator`
    /// (which has not run any yet).
    pub fn new<A: Allocator>(allocator: &A, spec: &str, steps: &'s [Step], first: u64, last: u64) -> StepRecorder<'s> {
        let reports = allocator.reports();
        let geometry = allocator.buddy_level();
        let lists = allocator.free_lists();
        let views = Views::of(spec, reports, geometry.is_some(), lists.is_some());
        let mut recorder = StepRecorder {
            steps,
            first,
            last,
            views,
            reports,
            live: Default::default(),
            requested: 0,
            granted: 0,
            previous: Keyframe::default(),
            since_keyframe: 0,
            current: Current::default(),
            counters: allocator.stats().counters,
            lowest_order: geometry.as_ref().map_or(0, |g| g.max_order),
            holders: Vec::new(),
            holder_object_bytes: Vec::new(),
            geometry,
            list_names: lists.as_ref().map(|l| l.names.clone()).unwrap_or_default(),
            second_level: lists.and_then(|l| l.second_level),
            keyframes: Vec::new(),
            ops: Vec::new(),
        };
        if first == 0 {
            recorder.record(allocator, 0);
        }
        recorder
    }

    /// The recording, after the replay.
    pub fn finish(self, allocator: String, workload: String, arena_bytes: u64, capped: Option<u64>) -> Recording {
        let tree = self.views.tree.then(|| {
            let level = self.geometry.as_ref().expect("a tree view has a buddy level");
            TreeGeometry {
                min_block: level.min_block as u64,
                max_order: level.max_order,
                managed_bytes: level.managed_bytes as u64,
                lowest_order: self.lowest_order,
                holders: self.holders.clone(),
                holder_object_bytes: self.holder_object_bytes.clone(),
            }
        });
        let lists = self.views.lists.then(|| ListGeometry {
            names: self.list_names.clone(),
            second_level: self.second_level.map(|n| n as u64),
        });
        Recording {
            allocator,
            workload,
            arena_bytes,
            total_ops: self.steps.len() as u64,
            first: self.first,
            last: self.last,
            capped,
            granted: self.reports.granted,
            views: self.views,
            tree,
            lists,
            keyframes: self.keyframes,
            ops: self.ops,
        }
    }

    /// The state now.
    fn state<A: Allocator>(&mut self, allocator: &A, op: u64) -> Keyframe {
        let mut state = Keyframe { op, ..Keyframe::default() };
        if !self.views.arena {
            return state;
        }
        allocator.for_each_free(&mut |offset, len| state.free.push([offset as u64, len as u64]));
        state.free.sort_unstable();
        state.live = self.live.values().copied().collect();
        if self.views.tree
            && let Some(level) = allocator.buddy_level()
        {
            let min = level.min_block as u64;
            let mut tree: Vec<[u64; 3]> =
                level.free.iter().map(|&(offset, order)| [offset as u64, u64::from(order), TREE_FREE]).collect();
            tree.extend(
                level
                    .held
                    .iter()
                    .map(|&(offset, order, holder)| [offset as u64, u64::from(order), TREE_HELD + u64::from(holder)]),
            );
            let held: Vec<(u64, u64)> =
                level.held.iter().map(|&(offset, order, _)| (offset as u64, min << order)).collect();
            let inside_held = |offset: u64| {
                let at = held.partition_point(|&(start, _)| start <= offset);
                at > 0 && offset < held[at - 1].0 + held[at - 1].1
            };
            for &[offset, _, granted] in self.live.values() {
                // A block the caller holds is a leaf when it is a whole
                // buddy block (a slab's objects lie inside held slabs).
                if granted >= min && granted.is_power_of_two() && offset.is_multiple_of(granted) && !inside_held(offset)
                {
                    tree.push([offset, u64::from((granted / min).trailing_zeros()), TREE_TAKEN]);
                }
            }
            tree.sort_unstable();
            if let Some(lowest) = tree.iter().map(|leaf| leaf[1] as u32).min() {
                self.lowest_order = self.lowest_order.min(lowest);
            }
            if level.holders.len() > self.holders.len() {
                self.holders = level.holders;
                self.holder_object_bytes = level.holder_object_bytes.iter().map(|&b| b as u64).collect();
            }
            state.tree = tree;
        }
        if self.views.lists
            && let Some(lists) = allocator.free_lists()
        {
            let mut blocks = lists.blocks.iter().peekable();
            while let Some(&(list, block)) = blocks.next() {
                let next = match blocks.peek() {
                    Some(&&(next_list, next)) if next_list == list => next,
                    _ => block,
                };
                if state.heads.last().is_none_or(|head| head[0] != list as u64) {
                    state.heads.push([list as u64, block as u64]);
                }
                state.links.push([block as u64, next as u64, list as u64]);
            }
            if let Some(rover) = lists.rover {
                state.heads.push([self.list_names.len() as u64, rover as u64]);
            }
            state.links.sort_unstable();
        }
        state
    }

    /// Record the state after op `op`, with its words.
    fn record<A: Allocator>(&mut self, allocator: &A, op: u64) {
        let state = self.state(allocator, op);
        let figures = self.figures(allocator, &state);
        let words = self.words(op, &state, &figures, allocator.stats().counters);
        let mut record = OpRecord { words, ..OpRecord::default() };
        if !self.views.arena {
            record.figures = Some(figures);
        }
        let mut state = state;
        state.footprint = figures[5];
        if self.keyframes.is_empty() {
            self.keyframes.push(state.clone());
        } else {
            if state.footprint != self.previous.footprint {
                record.footprint = state.footprint;
            }
            record.free = Delta::between(&self.previous.free, &state.free);
            record.live = Delta::between(&self.previous.live, &state.live);
            record.tree = Delta::between(&self.previous.tree, &state.tree);
            record.links = Delta::between(&self.previous.links, &state.links);
            record.heads = Delta::between(&self.previous.heads, &state.heads);
            self.since_keyframe +=
                record.free.len() + record.live.len() + record.tree.len() + record.links.len() + record.heads.len();
            let size = state.free.len() + state.live.len() + state.tree.len() + state.links.len();
            // A keyframe once the deltas since the last outweigh the state
            // four times: keyframes stay a fraction of the page, and a
            // jump replays at most four states' worth of changes.
            if self.since_keyframe > 4 * size.max(512) {
                self.keyframes.push(state.clone());
                self.since_keyframe = 0;
            }
        }
        self.ops.push(record);
        self.previous = state;
    }

    /// R, G, F, free blocks, L, H.
    fn figures<A: Allocator>(&self, allocator: &A, state: &Keyframe) -> [Option<u64>; 6] {
        let reports = self.reports;
        let stats = allocator.stats();
        let (free, blocks, largest) = if self.views.arena {
            let free: u64 = state.free.iter().map(|e| e[1]).sum();
            let largest = state.free.iter().map(|e| e[1]).max().unwrap_or(0);
            (Some(free), Some(state.free.len() as u64), Some(largest))
        } else if reports.free_space {
            let shape = allocator.free_shape();
            (Some(shape.free_bytes as u64), Some(shape.free_blocks as u64), Some(shape.largest_free_block as u64))
        } else {
            (reports.free_bytes.then_some(stats.free_bytes as u64), None, None)
        };
        [
            Some(self.requested),
            reports.granted.then_some(self.granted),
            free,
            blocks,
            largest,
            (reports.footprint && reports.counts).then_some(stats.footprint_bytes as u64),
        ]
    }

    /// The op's words.
    fn words(&mut self, op: u64, state: &Keyframe, figures: &[Option<u64>; 6], counters: Counters) -> String {
        let current = std::mem::take(&mut self.current);
        let before = std::mem::replace(&mut self.counters, counters);
        let changed = |now: Option<u64>, then: Option<u64>| match (now, then) {
            (Some(now), Some(then)) => now.saturating_sub(then),
            _ => 0,
        };
        let (splits, merges) = (changed(counters.splits, before.splits), changed(counters.coalesces, before.coalesces));
        let free_words = || match (figures[2], figures[3], figures[4]) {
            (Some(free), Some(blocks), Some(largest)) => format!(
                "{} free in {} {}, the largest {}",
                units::bytes(free),
                units::count(blocks),
                if blocks == 1 { "hole" } else { "holes" },
                units::bytes(largest)
            ),
            (Some(free), _, _) => format!("{} free", units::bytes(free)),
            _ => "its free space is not reported".to_string(),
        };
        if op == 0 {
            return format!("the empty heap: {}", free_words());
        }
        let step = self.steps[op as usize - 1];
        let times = |n: u64, what: &str| match n {
            0 => String::new(),
            1 => format!("; {what} once"),
            n => format!("; {what} {n} times"),
        };
        let at = |offset: u64| if self.views.arena { format!(" at {offset:#x}") } else { String::new() };
        let free_block_at =
            |offset: u64| state.free.iter().find(|e| e[0] <= offset && offset < e[0] + e[1]).map(|e| (e[0], e[1]));
        let request = |size: u64| units::bytes(size);
        match step {
            Step::Alloc { size, .. } | Step::AllocImpossible { size, .. } => match (current.allocated, current.refused)
            {
                (Some([offset, _, granted]), _) => format!(
                    "alloc {} → {}{}{}",
                    request(size),
                    if self.reports.granted { format!("a {} block", units::bytes(granted)) } else { "a block".into() },
                    at(offset),
                    times(splits, "split")
                ),
                (None, _) if matches!(step, Step::AllocImpossible { .. }) => {
                    format!("alloc {} → refused: no layout can describe it", request(size))
                }
                _ => {
                    let kind = match figures[2] {
                        Some(free) if free >= size => " (enough bytes free, but no block holds it)",
                        Some(_) => " (not enough free memory)",
                        None => "",
                    };
                    format!("alloc {} → refused: {}{kind}", request(size), free_words())
                }
            },
            Step::Free { .. } => match current.freeing {
                Some([offset, requested, granted]) => {
                    let outcome = match free_block_at(offset) {
                        Some((start, len)) if merges > 0 => {
                            format!(
                                " → merged {} into a free {} block at {start:#x}",
                                plural(merges, "time"),
                                units::bytes(len)
                            )
                        }
                        Some((start, len)) if start == offset && len == granted => {
                            format!(" → a free {} block{}", units::bytes(len), self.buddy_words(state, offset))
                        }
                        Some((start, len)) => format!(" → part of a free {} block at {start:#x}", units::bytes(len)),
                        None => times(merges, "merged"),
                    };
                    format!("free {}{}{outcome}", request(requested), at(offset))
                }
                None => "free → skipped: its allocation was refused".to_string(),
            },
            Step::Realloc { size, .. } => match (current.freeing, current.allocated, current.refused) {
                (None, _, _) => "realloc → skipped: its allocation was refused".to_string(),
                (Some([old, requested, _]), _, Some(_)) => {
                    format!(
                        "realloc {}{} to {} → refused, the block stays: {}",
                        request(requested),
                        at(old),
                        request(size),
                        free_words()
                    )
                }
                (Some([old, requested, _]), Some([new, _, granted]), None) => {
                    format!(
                        "realloc {}{} to {} → {}{}{}",
                        request(requested),
                        at(old),
                        request(size),
                        if new == old { "in place, ".to_string() } else { "moved, ".to_string() },
                        if self.reports.granted {
                            format!("a {} block", units::bytes(granted))
                        } else {
                            "a block".into()
                        },
                        at(new)
                    ) + &times(splits, "split")
                        + &times(merges, "merged")
                }
                (Some(_), None, None) => "realloc".to_string(),
            },
        }
    }
}

impl StepRecorder<'_> {
    /// Why the free block at `offset` did not merge: its buddy's state.
    fn buddy_words(&self, state: &Keyframe, offset: u64) -> String {
        let Some(level) = self.geometry.as_ref().filter(|_| self.views.tree) else { return String::new() };
        let find = |at: u64| state.tree.binary_search_by_key(&at, |leaf| leaf[0]).ok().map(|i| state.tree[i]);
        // Only a block of the buddy system itself has a buddy: an object
        // freed at the start of its slab is not one.
        let Some([_, order, TREE_FREE]) = find(offset) else { return String::new() };
        let size = (level.min_block as u64) << order;
        let buddy = offset ^ size;
        if order >= u64::from(level.max_order) || buddy + size > level.managed_bytes as u64 {
            return "; it has no buddy to merge with".to_string();
        }
        let what = match find(buddy) {
            Some([_, buddy_order, kind]) if buddy_order == order => match kind {
                TREE_FREE => "free".to_string(),
                TREE_TAKEN => "allocated".to_string(),
                holder => {
                    format!("a slab of {}", self.holders.get((holder - TREE_HELD) as usize).map_or("a cache", |h| h))
                }
            },
            _ => "split".to_string(),
        };
        format!("; its buddy at {buddy:#x} is {what}, so no merge")
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 { "once".to_string() } else { format!("{n} {what}s") }
}

impl<A: Allocator> Probe<A> for StepRecorder<'_> {
    type Error = std::convert::Infallible;

    fn allocated(&mut self, allocator: &A, ptr: NonNull<u8>, layout: Layout) {
        let offset = self.offset(allocator, ptr);
        let granted = if self.reports.granted { allocator.granted(ptr, layout) as u64 } else { layout.size() as u64 };
        let block = [offset, layout.size() as u64, granted];
        self.requested += block[1];
        self.granted += granted;
        self.live.insert(offset, block);
        self.current.allocated = Some(block);
    }

    fn freeing(&mut self, allocator: &A, ptr: NonNull<u8>, _layout: Layout) {
        let offset = self.offset(allocator, ptr);
        if let Some(block) = self.live.remove(&offset) {
            self.requested -= block[1];
            self.granted -= block[2];
            // A realloc refused puts the block back through `allocated`:
            // keep the first block seen, the one the op started from.
            self.current.freeing.get_or_insert(block);
        }
    }

    fn refused(&mut self, _allocator: &A, _kind: OpKind, size: u64, _align: u64) {
        self.current.refused = Some(size);
    }

    fn stepped(&mut self, allocator: &A, index: usize) -> Result<(), Self::Error> {
        let op = index as u64 + 1;
        if (self.first.max(1)..=self.last).contains(&op) {
            self.record(allocator, op);
        } else {
            // Not shown: forget what it did, keep the counters current so
            // that the first op shown counts only its own splits and merges.
            self.current = Current::default();
            self.counters = allocator.stats().counters;
        }
        Ok(())
    }
}

impl StepRecorder<'_> {
    /// A block's arena offset, or its address for an allocator with memory
    /// of its own (its offsets are never drawn).
    fn offset<A: Allocator>(&self, allocator: &A, ptr: NonNull<u8>) -> u64 {
        if self.reports.in_arena { allocator.arena().offset_of_owned(ptr) as u64 } else { ptr.as_ptr() as usize as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_removes_changes_and_adds_by_offset() {
        let old = [[0, 16], [32, 16], [64, 64]];
        let new = [[0, 48], [64, 64], [256, 16]];
        let delta = Delta::between(&old, &new);
        assert_eq!(delta.del, vec![32]);
        assert_eq!(delta.put, vec![[0, 48], [256, 16]]);
        assert!(Delta::<Entry<2>>::between(&new, &new).is_empty());
        let gone = Delta::between(&new, &[]);
        assert_eq!(gone.del, vec![0, 64, 256]);
    }

    #[test]
    fn a_truncated_recording_ends_at_its_new_last_op_and_says_it_was_capped() {
        let keyframe = |op| Keyframe { op, ..Keyframe::default() };
        let mut recording = Recording {
            allocator: "buddy".into(),
            workload: "w".into(),
            arena_bytes: 1024,
            total_ops: 100,
            first: 10,
            last: 100,
            capped: None,
            views: Views::default(),
            granted: true,
            tree: None,
            lists: None,
            keyframes: vec![keyframe(10), keyframe(40), keyframe(90)],
            ops: vec![OpRecord::default(); 91],
        };
        recording.truncate(50);
        assert_eq!((recording.last, recording.capped, recording.ops.len()), (50, Some(40), 41));
        assert_eq!(recording.keyframes.iter().map(|k| k.op).collect::<Vec<_>>(), [10, 40]);
        recording.truncate(70);
        assert_eq!(recording.last, 50, "truncating never lengthens");
    }

    /// Record `spec` on `workload` over ops `first..=last`.
    fn recording(spec: &str, workload: &str, arena: usize, first: u64, last: u64) -> Recording {
        struct Go<'a>(&'a crate::prepare::Prepared, usize, u64, u64);
        impl crate::registry::Visitor for Go<'_> {
            type Output = Recording;
            fn visit<C: heaplab_core::AllocatorConfig>(self, config: &C) -> Recording {
                let Go(prepared, arena, first, last) = self;
                let mut allocator = config.build(heaplab_core::Arena::natural(arena).unwrap()).unwrap();
                let mut probe = StepRecorder::new(&allocator, &config.spec(), &prepared.steps, first, last);
                let mut slots = crate::replay::Slots::new(prepared.slots);
                let steps = &prepared.steps[..last as usize];
                let Ok(_) =
                    crate::replay::replay(&mut allocator, steps, &mut slots, crate::replay::Touch::None, &mut probe);
                slots.release_all(&mut allocator);
                probe.finish(config.spec(), String::new(), arena as u64, None)
            }
        }
        let workload = heaplab_workloads::Workload::parse(workload).unwrap();
        let prepared = crate::prepare::prepare(workload.ops(1).unwrap(), &workload.name(), 16).unwrap();
        crate::registry::AllocatorSpec::parse(spec).unwrap().visit(Go(&prepared, arena, first, last))
    }

    #[test]
    fn the_states_rebuilt_from_deltas_are_the_states_recorded_at_each_op() {
        // A slab (tree with held leaves, slab objects) and a next fit (links,
        // heads and the rover), long enough for keyframes past the first.
        for (spec, workload, arena) in [
            ("slab", "kmalloc-mix:ops=1500", 1 << 20),
            ("freelist:fit=next", "uniform:ops=1500,live=12K,min=16,max=1K,phase=steady", 16 << 10),
        ] {
            let whole = recording(spec, workload, arena, 0, 1500);
            assert!(whole.keyframes.len() > 1, "{spec}: only one keyframe, the test would not reach past it");
            let states: Vec<Keyframe> = whole.states().map(|(state, _)| state).collect();
            assert_eq!(states.len(), 1501);
            for op in [0, 1, 2, 377, 998, 1500] {
                let alone = recording(spec, workload, arena, op, op);
                assert_eq!(states[op as usize], alone.keyframes[0], "{spec}, op {op}");
            }
            // And every keyframe the recording kept is the state rebuilt there.
            for keyframe in &whole.keyframes {
                assert_eq!(&states[keyframe.op as usize], keyframe, "{spec}, keyframe at op {}", keyframe.op);
            }
        }
    }

    #[test]
    fn a_peer_without_an_arena_lacks_both_views_and_says_why() {
        let none = Reports { in_arena: false, ..Reports::ALL };
        let views = Views::of("peer:glibc", none, false, false);
        assert!(!views.arena && !views.tree && !views.lists);
        assert_eq!(views.lacking.len(), 3);
        assert!(views.lacking[0].starts_with("the arena line: peer:glibc"));
        let buddy = Views::of("buddy", Reports::ALL, true, false);
        assert!(buddy.arena && buddy.tree && !buddy.lists && buddy.lacking.len() == 1);
    }
}
