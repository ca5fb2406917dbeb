//! The conformance suite every allocator must pass.
//!
//! A [`Tester`] drives an allocator and a *shadow oracle* side by side: the
//! oracle knows every live block (where it is, its layout, what it was told
//! `granted()` is, the byte pattern written into it) and, after each
//! operation, holds the allocator to it:
//!
//! | check | what fails it |
//! |---|---|
//! | [`Check::Alignment`] | a block not aligned as requested |
//! | [`Check::Bounds`] | a block that is not entirely inside the arena |
//! | [`Check::Overlap`] | a block that overlaps a live block |
//! | [`Check::Payload`] | a live block's bytes changed behind its owner's back, or not carried over by `realloc` |
//! | [`Check::Stats`] | `stats()` disagreeing with the oracle: live blocks and requested bytes exact, granted bytes the sum of `granted()`, `granted ≥ size`, the accounting identity, a monotone footprint above every live block |
//! | [`Check::FreeSpace`] | a free-space walk that leaves the arena, overlaps itself or a live block, or disagrees with `stats()` and `free_shape()` |
//! | [`Check::Invariant`] | the allocator's own `check()` failing |
//! | [`Check::Recovery`] | free space after freeing everything (and `trim()`) that differs from the start |
//! | [`Check::Panic`] | a panic inside the allocator, for example on running out of memory |
//! | [`Check::Twin`] | the timed build ([`AllocatorConfig::build_timed`]) placing a block elsewhere than the measured build, on the same operations ([`timed_twin`]) |
//!
//! An allocator that reports less (an adapter to a third-party allocator,
//! see [`Allocator::reports`]) is held to the checks that apply: bounds only
//! for blocks in the arena, granted bytes only where reported, the free
//! space only where it can be walked.
//!
//! The scenarios ([`random_ops`], [`alignment_sweep`], [`exhaustion`],
//! [`realloc_chains`], [`zero_size`], [`free_orders`]) each build a fresh
//! allocator with the factory they are given and return the first failure.
//! [`conformance_suite!`](crate::conformance_suite) instantiates all of them
//! as `#[test]`s for one configuration with one line. The operation sequences
//! come from a ChaCha RNG with a fixed seed, so a failure replays exactly.

use std::alloc::Layout;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Allocator, AllocatorConfig, Arena, HeapStats, Level, Reports};

/// The property a failure broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Block not aligned as requested.
    Alignment,
    /// Block not inside the arena.
    Bounds,
    /// Block overlapping a live block.
    Overlap,
    /// Payload bytes changed or lost.
    Payload,
    /// `stats()` or `granted()` inconsistent with the oracle.
    Stats,
    /// Free-space walk inconsistent.
    FreeSpace,
    /// The allocator's own `check()` failed.
    Invariant,
    /// The empty heap differs from the fresh one.
    Recovery,
    /// The allocator panicked.
    Panic,
    /// The timed build placed a block elsewhere than the measured build.
    Twin,
}

/// The first property an allocator broke, and where.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What broke.
    pub check: Check,
    /// Index of the operation after which it was found.
    pub op_index: usize,
    /// Details.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} check failed after op {}: {}", self.check, self.op_index, self.message)
    }
}

impl std::error::Error for Failure {}

/// What a scenario did, so tests can see it exercised what it should.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Operations issued.
    pub ops: usize,
    /// Allocations that succeeded.
    pub allocs: usize,
    /// Allocations refused.
    pub failed_allocs: usize,
    /// Frees.
    pub frees: usize,
    /// Reallocations that succeeded.
    pub reallocs: usize,
    /// Reallocations refused (old block kept).
    pub failed_reallocs: usize,
    /// Most blocks live at once.
    pub peak_live_blocks: usize,
    /// Were the blocks in the arena (so running out of it applies)?
    pub bounded: bool,
}

impl Summary {
    /// Add one thread's counts (the peak: the larger).
    fn add(&mut self, thread: &Summary) {
        self.ops += thread.ops;
        self.allocs += thread.allocs;
        self.failed_allocs += thread.failed_allocs;
        self.frees += thread.frees;
        self.reallocs += thread.reallocs;
        self.failed_reallocs += thread.failed_reallocs;
        self.peak_live_blocks = self.peak_live_blocks.max(thread.peak_live_blocks);
    }
}

type Outcome<T = ()> = Result<T, Failure>;

/// One live block as the oracle knows it.
#[derive(Debug, Clone, Copy)]
struct Block {
    ptr: NonNull<u8>,
    offset: usize,
    layout: Layout,
    granted: usize,
    /// Seed of the byte pattern written into the payload.
    tag: u64,
}

impl Block {
    /// End of the span the block occupies for overlap purposes; a zero-size
    /// block still occupies its first byte, so that two of them are distinct.
    fn span_end(&self) -> usize {
        self.offset + self.layout.size().max(1)
    }
}

#[inline]
fn pattern_byte(tag: u64, index: usize) -> u8 {
    (tag.wrapping_add(index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

/// An allocator under test, with its shadow oracle.
#[derive(Debug)]
pub struct Tester<A: Allocator> {
    allocator: A,
    /// Live blocks by handle; a freed handle is `None`.
    blocks: Vec<Option<Block>>,
    /// Handles of live blocks, for picking one at random.
    live: Vec<usize>,
    /// Live spans by start offset: start -> (span end, handle).
    spans: BTreeMap<usize, (usize, usize)>,
    requested_bytes: usize,
    granted_bytes: usize,
    last_footprint: usize,
    next_tag: u64,
    op_index: usize,
    summary: Summary,
    initial_stats: HeapStats,
    initial_free: Vec<(usize, usize)>,
    reports: Reports,
}

impl<A: Allocator> Tester<A> {
    /// Start testing a freshly built allocator; its free space is recorded
    /// as the state to recover.
    pub fn new(allocator: A) -> Outcome<Tester<A>> {
        let initial_stats = allocator.stats();
        let reports = allocator.reports();
        let mut tester = Tester {
            allocator,
            blocks: Vec::new(),
            live: Vec::new(),
            spans: BTreeMap::new(),
            requested_bytes: 0,
            granted_bytes: 0,
            last_footprint: initial_stats.footprint_bytes,
            next_tag: 1,
            op_index: 0,
            summary: Summary::default(),
            initial_stats,
            initial_free: Vec::new(),
            reports,
        };
        tester.check_stats()?;
        tester.initial_free = tester.check_free_space()?;
        tester.check_invariants()?;
        Ok(tester)
    }

    /// The allocator under test.
    pub fn allocator(&self) -> &A {
        &self.allocator
    }

    /// Handles of the live blocks.
    pub fn live_handles(&self) -> &[usize] {
        &self.live
    }

    /// What happened so far.
    pub fn summary(&self) -> Summary {
        Summary { ops: self.op_index, bounded: self.reports.in_arena, ..self.summary }
    }

    fn fail<T>(&self, check: Check, message: impl Into<String>) -> Outcome<T> {
        Err(Failure { check, op_index: self.op_index, message: message.into() })
    }

    fn guarded<T>(&mut self, what: &str, call: impl FnOnce(&mut A) -> T) -> Outcome<T> {
        match catch_unwind(AssertUnwindSafe(|| call(&mut self.allocator))) {
            Ok(value) => Ok(value),
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                self.fail(Check::Panic, format!("{what} panicked: {text}"))
            }
        }
    }

    /// Check a block the allocator just returned, before anything is written
    /// to it: inside the arena, aligned, and overlapping no live block except
    /// `replacing` (the block a realloc may have kept in place).
    fn vet_new_block(&self, ptr: NonNull<u8>, layout: Layout, replacing: Option<usize>) -> Outcome<usize> {
        let arena = self.allocator.arena();
        let span = layout.size().max(1);
        // Blocks outside the arena are placed by address.
        let position = if self.reports.in_arena { arena.offset_of(ptr) } else { Some(ptr.as_ptr().addr()) };
        let Some(offset) = position.filter(|&offset| !self.reports.in_arena || arena.contains(offset, span)) else {
            return self.fail(
                Check::Bounds,
                format!(
                    "block {ptr:p} of {} bytes is not inside the arena ({} bytes at {:p})",
                    layout.size(),
                    arena.len(),
                    arena.base()
                ),
            );
        };
        if !ptr.as_ptr().addr().is_multiple_of(layout.align()) {
            return self
                .fail(Check::Alignment, format!("block at offset {offset} is not aligned to {}", layout.align()));
        }
        let end = offset + span;
        // Spans are disjoint, so the live span starting closest below `end`
        // (skipping the block being replaced) is the only one to examine: if
        // it ends at or before `offset`, every span below it does too.
        if let Some((&start, &(span_end, handle))) =
            self.spans.range(..end).rev().find(|(_, (_, h))| Some(*h) != replacing)
            && span_end > offset
        {
            return self.fail(
                Check::Overlap,
                format!("block {offset}..{end} overlaps live block {start}..{span_end} (handle {handle})"),
            );
        }
        if !self.reports.granted {
            return Ok(offset);
        }
        let granted = self.allocator.granted(ptr, layout);
        if granted < layout.size() {
            return self.fail(
                Check::Stats,
                format!("granted({offset}) = {granted} is less than the {} bytes requested", layout.size()),
            );
        }
        let waste = self.allocator.waste(ptr, layout);
        if waste.rounding + waste.overhead != granted - layout.size() {
            return self.fail(
                Check::Stats,
                format!(
                    "waste({offset}) = {waste:?} does not add up to granted {granted} − requested {}",
                    layout.size()
                ),
            );
        }
        Ok(offset)
    }

    fn fill(block: &Block) {
        if block.layout.size() == 0 {
            return;
        }
        // SAFETY: the block was vetted to lie inside the arena with this size,
        // it is live, and nothing else references it during this call.
        let bytes = unsafe { std::slice::from_raw_parts_mut(block.ptr.as_ptr(), block.layout.size()) };
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = pattern_byte(block.tag, index);
        }
    }

    /// Verify the first `len` bytes of a block still carry its pattern.
    fn verify(&self, block: &Block, len: usize, context: &str) -> Outcome {
        if len == 0 {
            return Ok(());
        }
        // SAFETY: as in `fill`; `len <= layout.size()` and the block is
        // still inside the arena (vetted when it was returned).
        let bytes = unsafe { std::slice::from_raw_parts(block.ptr.as_ptr(), len) };
        if let Some(index) = bytes.iter().enumerate().position(|(index, &byte)| byte != pattern_byte(block.tag, index))
        {
            return self.fail(
                Check::Payload,
                format!(
                    "{context}: byte {index} of the {}-byte block at offset {} was changed (found {:#04x}, wrote {:#04x})",
                    block.layout.size(),
                    block.offset,
                    bytes[index],
                    pattern_byte(block.tag, index)
                ),
            );
        }
        Ok(())
    }

    /// Make `block` live under `handle`, with a fresh pattern written into it.
    fn place(&mut self, handle: usize, mut block: Block) {
        block.tag = self.next_tag;
        self.next_tag += 1;
        Tester::<A>::fill(&block);
        self.blocks[handle] = Some(block);
        self.live.push(handle);
        self.spans.insert(block.offset, (block.span_end(), handle));
        self.requested_bytes += block.layout.size();
        self.granted_bytes += block.granted;
        self.summary.peak_live_blocks = self.summary.peak_live_blocks.max(self.live.len());
    }

    fn remove(&mut self, handle: usize) -> Block {
        let block = self.blocks[handle].take().expect("handle is live");
        let position = self.live.iter().position(|&h| h == handle).expect("handle is live");
        self.live.swap_remove(position);
        self.spans.remove(&block.offset);
        self.requested_bytes -= block.layout.size();
        self.granted_bytes -= block.granted;
        block
    }

    /// Allocate; `Ok(None)` when the allocator refused (a legal answer).
    pub fn alloc(&mut self, layout: Layout) -> Outcome<Option<usize>> {
        self.alloc_at(Level::User, layout)
    }

    /// Allocate at `level` (see [`Allocator::alloc_at`]); `Ok(None)` when
    /// the allocator refused.
    pub fn alloc_at(&mut self, level: Level, layout: Layout) -> Outcome<Option<usize>> {
        self.op_index += 1;
        let result = self.guarded("alloc", |a| a.alloc_at(level, layout))?;
        let handle = match result {
            Ok(ptr) => {
                let offset = self.vet_new_block(ptr, layout, None)?;
                let granted = self.allocator.granted(ptr, layout);
                self.summary.allocs += 1;
                let handle = self.blocks.len();
                self.blocks.push(None);
                self.place(handle, Block { ptr, offset, layout, granted, tag: 0 });
                Some(handle)
            }
            Err(_) => {
                self.summary.failed_allocs += 1;
                None
            }
        };
        self.check_stats()?;
        Ok(handle)
    }

    /// Free a live block, after verifying its payload.
    pub fn free(&mut self, handle: usize) -> Outcome {
        self.op_index += 1;
        let block = self.blocks[handle].expect("free of a live handle");
        self.verify(&block, block.layout.size(), "before free")?;
        let granted_now = self.allocator.granted(block.ptr, block.layout);
        if granted_now != block.granted {
            return self.fail(
                Check::Stats,
                format!(
                    "granted() of the block at {} changed while it was live: {} then {granted_now}",
                    block.offset, block.granted
                ),
            );
        }
        self.remove(handle);
        // SAFETY: the oracle only frees blocks this allocator returned, with
        // the layout they were allocated with, once.
        self.guarded("free", |a| unsafe { a.free(block.ptr, block.layout) })?;
        self.summary.frees += 1;
        self.check_stats()
    }

    /// Reallocate a live block; returns whether the allocator agreed.
    pub fn realloc(&mut self, handle: usize, new_size: usize) -> Outcome<bool> {
        self.op_index += 1;
        let old = self.blocks[handle].expect("realloc of a live handle");
        self.verify(&old, old.layout.size(), "before realloc")?;
        // SAFETY: `old` is live in this allocator with exactly this layout.
        let result = self.guarded("realloc", |a| unsafe { a.realloc(old.ptr, old.layout, new_size) })?;
        let agreed = match result {
            Ok(ptr) => {
                let layout = Layout::from_size_align(new_size, old.layout.align()).expect("valid layout");
                let offset = self.vet_new_block(ptr, layout, Some(handle))?;
                let moved = Block { ptr, offset, layout, granted: 0, tag: old.tag };
                self.verify(&moved, old.layout.size().min(new_size), "after realloc")?;
                self.remove(handle);
                let granted = self.allocator.granted(ptr, layout);
                self.place(handle, Block { granted, ..moved });
                self.summary.reallocs += 1;
                true
            }
            Err(_) => {
                self.verify(&old, old.layout.size(), "after a failed realloc")?;
                self.summary.failed_reallocs += 1;
                false
            }
        };
        self.check_stats()?;
        Ok(agreed)
    }

    /// Hold `stats()` to the oracle. Cheap: run after every operation.
    pub fn check_stats(&mut self) -> Outcome {
        let stats = self.allocator.stats();
        let expect = |ok: bool, what: String| if ok { Ok(()) } else { self.fail(Check::Stats, what) };
        // The memory is the arena, or a prefix of it with virtual space
        // behind (the kernel model maps its vmalloc blocks there).
        let arena_len = self.allocator.arena().len();
        expect(
            stats.arena_bytes == arena_len || (stats.arena_bytes < arena_len && self.reports.in_arena),
            format!("stats says the arena has {} bytes, it has {arena_len}", stats.arena_bytes),
        )?;
        if !self.reports.counts {
            // A timed build keeps no ledger: nothing more to hold it to.
            return Ok(());
        }
        expect(
            stats.live_blocks == self.live.len(),
            format!("stats says {} live blocks, the oracle {}", stats.live_blocks, self.live.len()),
        )?;
        expect(
            stats.requested_bytes == self.requested_bytes,
            format!("stats says {} requested bytes, the oracle {}", stats.requested_bytes, self.requested_bytes),
        )?;
        let reports = self.reports;
        expect(
            !reports.granted || stats.granted_bytes == self.granted_bytes,
            format!("stats says {} granted bytes, the sum of granted() is {}", stats.granted_bytes, self.granted_bytes),
        )?;
        if reports != Reports::ALL {
            return Ok(());
        }
        expect(
            stats.granted_bytes + stats.metadata_bytes + stats.free_bytes <= stats.arena_bytes,
            format!(
                "granted {} + metadata {} + free {} exceed the arena's {} bytes",
                stats.granted_bytes, stats.metadata_bytes, stats.free_bytes, stats.arena_bytes
            ),
        )?;
        expect(
            stats.footprint_bytes >= self.last_footprint,
            format!("footprint fell from {} to {}", self.last_footprint, stats.footprint_bytes),
        )?;
        // Spans are disjoint, so the one starting last ends last. Blocks in
        // virtual space (past `arena_bytes`) take memory the footprint
        // already counts where it lies.
        let highest_end = self.spans.range(..stats.arena_bytes).next_back().map_or(0, |(_, &(end, _))| end);
        expect(
            stats.footprint_bytes >= highest_end,
            format!("footprint {} is below a live block ending at {highest_end}", stats.footprint_bytes),
        )?;
        self.last_footprint = stats.footprint_bytes;
        Ok(())
    }

    /// Walk the free space and hold it to `stats()`, `free_shape()` and the
    /// live blocks. Returns the extents, sorted.
    pub fn check_free_space(&self) -> Outcome<Vec<(usize, usize)>> {
        if !self.reports.free_space {
            return Ok(Vec::new());
        }
        let mut extents = Vec::new();
        self.allocator.for_each_free(&mut |offset, len| extents.push((offset, len)));
        extents.sort_unstable();
        let arena = self.allocator.arena();
        let mut shape = crate::FreeShape::default();
        let mut previous_end = 0;
        for &(offset, len) in &extents {
            if !arena.contains(offset, len) {
                return self.fail(
                    Check::FreeSpace,
                    format!("free extent {offset}+{len} leaves the {}-byte arena", arena.len()),
                );
            }
            if offset < previous_end {
                return self.fail(
                    Check::FreeSpace,
                    format!("free extent at {offset} overlaps the one ending at {previous_end}"),
                );
            }
            if let Some((&start, &(end, handle))) = self.spans.range(..offset + len).next_back()
                && end > offset
                && len > 0
            {
                return self.fail(
                    Check::FreeSpace,
                    format!("free extent {offset}+{len} overlaps live block {start}..{end} (handle {handle})"),
                );
            }
            previous_end = offset + len;
            shape.add(len);
        }
        let stats = self.allocator.stats();
        if self.reports.free_bytes && (stats.free_bytes, stats.free_blocks) != (shape.free_bytes, shape.free_blocks) {
            return self.fail(
                Check::FreeSpace,
                format!(
                    "stats says {} free bytes in {} blocks, the walk finds {} in {}",
                    stats.free_bytes, stats.free_blocks, shape.free_bytes, shape.free_blocks
                ),
            );
        }
        let reported = self.allocator.free_shape();
        if reported != shape {
            return self.fail(Check::FreeSpace, format!("free_shape() says {reported:?}, the walk finds {shape:?}"));
        }
        self.check_buddy_level(&extents)?;
        self.check_free_lists(&extents)?;
        Ok(extents)
    }

    /// Hold [`Allocator::free_lists`], where there are lists to show, to the
    /// free space walked: the lists hold every free block once, each in a
    /// named list, and the rover is one of them.
    fn check_free_lists(&self, extents: &[(usize, usize)]) -> Outcome {
        let Some(view) = self.allocator.free_lists() else { return Ok(()) };
        let fail = |what: String| self.fail(Check::FreeSpace, format!("free_lists(): {what}"));
        if let Some(&(list, block)) = view.blocks.iter().find(|&&(list, _)| list >= view.names.len()) {
            return fail(format!("block {block} is on list {list} of {} named", view.names.len()));
        }
        let mut listed: Vec<usize> = view.blocks.iter().map(|&(_, block)| block).collect();
        listed.sort_unstable();
        let walked: Vec<usize> = extents.iter().map(|&(offset, _)| offset).collect();
        if listed != walked {
            return fail(format!(
                "the lists hold {} blocks, the free space walked {}, and they differ",
                listed.len(),
                walked.len()
            ));
        }
        if let Some(rover) = view.rover
            && listed.binary_search(&rover).is_err()
        {
            return fail(format!("the rover {rover} is not a listed free block"));
        }
        Ok(())
    }

    /// Hold [`Allocator::buddy_level`], where there is one, to the free
    /// space walked (`extents`, sorted): its free blocks are aligned blocks
    /// of the managed bytes that the walk finds, its held blocks are
    /// aligned too, and none of them overlap.
    fn check_buddy_level(&self, extents: &[(usize, usize)]) -> Outcome {
        let Some(level) = self.allocator.buddy_level() else { return Ok(()) };
        let fail = |what: String| self.fail(Check::FreeSpace, format!("buddy_level(): {what}"));
        if level.managed_bytes > self.allocator.arena().len() || !level.min_block.is_power_of_two() {
            return fail(format!("{} managed bytes in {}-byte minimum blocks", level.managed_bytes, level.min_block));
        }
        let mut blocks = Vec::new();
        for &(offset, order) in &level.free {
            blocks.push((offset, order, "free"));
            if extents.binary_search(&(offset, level.min_block << order.min(63))).is_err() {
                return fail(format!("the free block of order {order} at {offset} is not in the free space walked"));
            }
        }
        for &(offset, order, holder) in &level.held {
            blocks.push((offset, order, "held"));
            if usize::from(holder) >= level.holders.len().min(level.holder_object_bytes.len()) {
                return fail(format!("the block at {offset} is held by holder {holder} of {}", level.holders.len()));
            }
        }
        blocks.sort_unstable();
        let mut previous_end = 0;
        for (offset, order, what) in blocks {
            let size = level.min_block.checked_shl(order).filter(|_| order <= level.max_order);
            let Some(size) = size.filter(|&size| offset.is_multiple_of(size) && offset + size <= level.managed_bytes)
            else {
                return fail(format!("the {what} block of order {order} at {offset} is not a block of the system"));
            };
            if offset < previous_end {
                return fail(format!("the {what} block at {offset} overlaps the block ending at {previous_end}"));
            }
            previous_end = offset + size;
        }
        Ok(())
    }

    /// Run the allocator's own `check()`.
    pub fn check_invariants(&mut self) -> Outcome {
        match self.guarded("check", |a| a.check())? {
            Ok(()) => Ok(()),
            Err(violation) => self.fail(Check::Invariant, violation.to_string()),
        }
    }

    /// Verify every live block's payload.
    pub fn verify_all(&self) -> Outcome {
        for &handle in &self.live {
            let block = self.blocks[handle].expect("live");
            self.verify(&block, block.layout.size(), "sweep of live blocks")?;
        }
        Ok(())
    }

    /// Every heavy check at once: invariants, free space, payloads.
    pub fn check_all(&mut self) -> Outcome {
        self.check_invariants()?;
        self.check_free_space()?;
        self.verify_all()
    }

    /// Free every live block in the order `order` puts the handles, trim, and
    /// require the fresh heap's free space back.
    pub fn free_all_and_recover(&mut self, order: impl FnOnce(&mut Vec<usize>)) -> Outcome {
        let mut handles = self.live.clone();
        order(&mut handles);
        for handle in handles {
            self.free(handle)?;
        }
        self.guarded("trim", |a| a.trim())?;
        self.check_all()?;
        let stats = self.allocator.stats();
        let initial = self.initial_stats;
        let full = self.reports == Reports::ALL;
        let counts = self.reports.counts;
        let same = |a: &HeapStats, b: &HeapStats| {
            if !counts {
                return true;
            }
            if !full {
                return (a.live_blocks, a.requested_bytes) == (b.live_blocks, b.requested_bytes);
            }
            (a.live_blocks, a.requested_bytes, a.granted_bytes, a.metadata_bytes, a.free_bytes, a.free_blocks)
                == (b.live_blocks, b.requested_bytes, b.granted_bytes, b.metadata_bytes, b.free_bytes, b.free_blocks)
        };
        if !same(&stats, &initial) {
            return self
                .fail(Check::Recovery, format!("empty heap has stats {stats:?}, the fresh one had {initial:?}"));
        }
        let extents = self.check_free_space()?;
        if extents != self.initial_free {
            return self.fail(
                Check::Recovery,
                format!(
                    "empty heap's free space is {:?}, the fresh one's was {:?}",
                    abbreviate(&extents),
                    abbreviate(&self.initial_free)
                ),
            );
        }
        Ok(())
    }
}

fn abbreviate(extents: &[(usize, usize)]) -> String {
    let shown: Vec<String> = extents.iter().take(6).map(|(o, l)| format!("{o}+{l}")).collect();
    let more = extents.len().saturating_sub(6);
    if more > 0 { format!("[{} … {more} more]", shown.join(", ")) } else { format!("[{}]", shown.join(", ")) }
}

/// A random operation sequence: how long, how big, how aligned.
#[derive(Debug, Clone, Copy)]
pub struct RandomOps {
    /// Arena size.
    pub arena_bytes: usize,
    /// Operations to issue before freeing everything.
    pub ops: usize,
    /// RNG seed.
    pub seed: u64,
    /// Largest request, bytes.
    pub max_size: usize,
    /// Largest alignment (a power of two).
    pub max_align: usize,
    /// Live blocks the sequence hovers around.
    pub target_live: usize,
    /// Run the heavy checks every this many operations.
    pub check_every: usize,
    /// Send each allocation to a random [`Level`] (for allocators with
    /// levels; without, every request is user memory and the seeded
    /// sequence is what it always was).
    pub levels: bool,
}

impl RandomOps {
    /// 100,000 operations in 4 MiB with sizes to 256 KiB; heavy checks every 500.
    pub fn long() -> RandomOps {
        RandomOps {
            arena_bytes: 4 << 20,
            ops: 100_000,
            seed: 0x4845_4150,
            max_size: 256 << 10,
            max_align: 4096,
            target_live: 400,
            check_every: 500,
            levels: false,
        }
    }

    /// 4,000 operations with every check after every one.
    pub fn thorough() -> RandomOps {
        RandomOps {
            arena_bytes: 1 << 20,
            ops: 4_000,
            seed: 7,
            max_size: 64 << 10,
            max_align: 4096,
            target_live: 120,
            check_every: 1,
            levels: false,
        }
    }

    /// A small arena that runs out of memory often: the failure paths.
    pub fn cramped() -> RandomOps {
        RandomOps {
            arena_bytes: 64 << 10,
            ops: 20_000,
            seed: 99,
            max_size: 16 << 10,
            max_align: 4096,
            target_live: 200,
            check_every: 50,
            levels: false,
        }
    }
}

fn random_size(rng: &mut ChaCha8Rng, max_size: usize) -> usize {
    let size = match rng.random_range(0..100) {
        0..60 => rng.random_range(0..=64),
        60..85 => rng.random_range(65..=1024),
        85..98 => rng.random_range(1025..=16 << 10),
        _ => rng.random_range(0..=max_size.max(1 << 14)),
    };
    size.min(max_size)
}

fn random_align(rng: &mut ChaCha8Rng, max_align: usize) -> usize {
    let shift = if rng.random_bool(0.7) { rng.random_range(0..=4) } else { rng.random_range(5..=12) };
    (1usize << shift).min(max_align)
}

/// One step of a seeded random sequence: what [`random_ops`] and
/// [`timed_twin`] ask of the allocator.
#[derive(Debug, Clone, Copy)]
enum RandomStep {
    Alloc(Layout, Level),
    /// Free the live block with this handle.
    Free(usize),
    /// Resize the live block with this handle to this many bytes.
    Realloc(usize, usize),
}

/// The next step: allocate more often while fewer than `target_live`
/// blocks are live, else free or (one time in nine) resize a random one.
fn random_step(rng: &mut ChaCha8Rng, plan: &RandomOps, live: &[usize]) -> RandomStep {
    let roll = rng.random_range(0..100);
    let alloc_share = if live.len() < plan.target_live { 60 } else { 30 };
    if live.is_empty() || roll < alloc_share {
        let size = random_size(rng, plan.max_size);
        let align = random_align(rng, plan.max_align);
        let level = if plan.levels { Level::ALL[rng.random_range(0..Level::ALL.len())] } else { Level::User };
        RandomStep::Alloc(Layout::from_size_align(size, align).expect("valid layout"), level)
    } else {
        let handle = live[rng.random_range(0..live.len())];
        if roll < 90 { RandomStep::Free(handle) } else { RandomStep::Realloc(handle, random_size(rng, plan.max_size)) }
    }
}

/// The end of a random sequence: every check, then everything freed in a
/// seeded order and the fresh heap required back.
fn finish_random<A: Allocator>(mut tester: Tester<A>, plan: &RandomOps) -> Outcome<Summary> {
    tester.check_all()?;
    let mut rng_order = ChaCha8Rng::seed_from_u64(plan.seed ^ 1);
    tester.free_all_and_recover(|handles| shuffle(handles, &mut rng_order))?;
    Ok(tester.summary())
}

/// Seeded random allocs, frees and reallocs, checked at every step, then
/// everything freed and the fresh heap required back.
pub fn random_ops<A: Allocator>(make: impl Fn(Arena) -> A, plan: &RandomOps) -> Outcome<Summary> {
    let mut tester = Tester::new(make(Arena::new(plan.arena_bytes).expect("arena")))?;
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    for step in 1..=plan.ops {
        match random_step(&mut rng, plan, &tester.live) {
            RandomStep::Alloc(layout, level) => {
                tester.alloc_at(level, layout)?;
            }
            RandomStep::Free(handle) => tester.free(handle)?,
            RandomStep::Realloc(handle, new_size) => {
                tester.realloc(handle, new_size)?;
            }
        }
        if step % plan.check_every == 0 {
            tester.check_all()?;
        }
    }
    finish_random(tester, plan)
}

fn shuffle(handles: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..handles.len()).rev() {
        handles.swap(i, rng.random_range(0..=i));
    }
}

/// Every power-of-two alignment from 1 to 4096 with awkward sizes.
pub fn alignment_sweep<A: Allocator>(make: impl Fn(Arena) -> A) -> Outcome<Summary> {
    let mut tester = Tester::new(make(Arena::new(1 << 20).expect("arena")))?;
    for shift in 0..=12 {
        for size in [0, 1, 3, 8, 15, 16, 17, 24, 100, 1000, 4095, 4096, 4097, 5000] {
            let handle = tester.alloc(Layout::from_size_align(size, 1 << shift).expect("valid layout"))?;
            // Free every third block at once so later requests meet holes.
            if let Some(handle) = handle
                && tester.summary.allocs % 3 == 0
            {
                tester.free(handle)?;
            }
        }
        tester.check_all()?;
    }
    tester.free_all_and_recover(|_| {})?;
    Ok(tester.summary())
}

/// Fill a small arena until the allocator refuses, for several sizes; a
/// request larger than the arena; an alignment above the arena's. Every
/// refusal must be an error value, and the heap must stay consistent.
pub fn exhaustion<A: Allocator>(make: impl Fn(Arena) -> A) -> Outcome<Summary> {
    let mut total = Summary::default();
    if !make(Arena::new(64 << 10).expect("arena")).reports().in_arena {
        // An allocator with memory of its own does not run out of the arena.
        return Ok(total);
    }
    for size in [1, 16, 100, 1000, 5000] {
        let mut tester = Tester::new(make(Arena::new(64 << 10).expect("arena")))?;
        let mut refusals = 0;
        // Bounded, so an allocator that never refuses fails the test instead of hanging.
        for _ in 0..100_000 {
            if tester.alloc(Layout::from_size_align(size, 8).expect("valid layout"))?.is_none() {
                refusals += 1;
                if refusals == 3 {
                    break;
                }
            }
        }
        if refusals == 0 {
            return tester.fail(Check::Stats, format!("100000 blocks of {size} bytes fit in a 64 KiB arena"));
        }
        tester.check_all()?;
        let huge = Layout::from_size_align(1 << 20, 16).expect("valid layout");
        if tester.alloc(huge)?.is_some() {
            return tester.fail(Check::Bounds, "a 1 MiB block was granted in a 64 KiB arena");
        }
        // Above the arena's alignment: refusing is right, serving it aligned is too.
        tester.alloc(Layout::from_size_align(64, 2 * Arena::DEFAULT_ALIGN).expect("valid layout"))?;
        tester.free_all_and_recover(|handles| handles.reverse())?;
        let summary = tester.summary();
        total.ops += summary.ops;
        total.allocs += summary.allocs;
        total.failed_allocs += summary.failed_allocs;
        total.frees += summary.frees;
    }
    Ok(total)
}

/// Grow one block step by step to 64 KiB and shrink it back, with other
/// blocks allocated and freed around it; the contents must travel with it.
pub fn realloc_chains<A: Allocator>(make: impl Fn(Arena) -> A) -> Outcome<Summary> {
    let mut total = Summary::default();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for align in [1, 16, 64, 4096] {
        let mut tester = Tester::new(make(Arena::new(1 << 20).expect("arena")))?;
        let handle = tester.alloc(Layout::from_size_align(1, align).expect("valid layout"))?.expect("one byte fits");
        let mut size = 1;
        while size < 64 << 10 {
            size = size * 3 / 2 + 1;
            if !tester.realloc(handle, size)? {
                return tester
                    .fail(Check::Stats, format!("realloc to {size} bytes refused in a nearly empty 1 MiB arena"));
            }
            let neighbour =
                tester.alloc(Layout::from_size_align(random_size(&mut rng, 4096), 16).expect("valid layout"))?;
            if let Some(neighbour) = neighbour
                && rng.random_bool(0.5)
            {
                tester.free(neighbour)?;
            }
        }
        while size > 0 {
            size /= 3;
            tester.realloc(handle, size)?;
        }
        tester.check_all()?;
        tester.free_all_and_recover(|_| {})?;
        total.reallocs += tester.summary().reallocs;
    }
    Ok(total)
}

/// Zero-size requests get distinct blocks (200 of them fit a 1 MiB arena
/// even for a page allocator).
pub fn zero_size<A: Allocator>(make: impl Fn(Arena) -> A) -> Outcome<Summary> {
    let mut tester = Tester::new(make(Arena::new(1 << 20).expect("arena")))?;
    for index in 0..200 {
        let align = 1 << (index % 13);
        if tester.alloc(Layout::from_size_align(0, align).expect("valid layout"))?.is_none() {
            return tester.fail(Check::Stats, "a zero-size request was refused in a nearly empty 1 MiB arena");
        }
    }
    tester.check_all()?;
    tester.free_all_and_recover(|handles| handles.sort_by_key(|h| h % 7))?;
    Ok(tester.summary())
}

/// Fill, then free in allocation order, reverse order, and interleaved
/// (every other block, then the rest): the orders that stress coalescing.
pub fn free_orders<A: Allocator>(make: impl Fn(Arena) -> A) -> Outcome<Summary> {
    let orders: [fn(&mut Vec<usize>); 3] =
        [|_| {}, |handles| handles.reverse(), |handles| handles.sort_by_key(|&h| (h % 2, h))];
    let mut total = Summary::default();
    for order in orders {
        let mut tester = Tester::new(make(Arena::new(256 << 10).expect("arena")))?;
        for index in 0..2000usize {
            let size = [24, 40, 100, 333, 1024, 3000][index % 6];
            if tester.alloc(Layout::from_size_align(size, 16).expect("valid layout"))?.is_none() {
                break;
            }
        }
        tester.check_all()?;
        tester.free_all_and_recover(order)?;
        total.allocs += tester.summary().allocs;
        total.frees += tester.summary().frees;
    }
    Ok(total)
}

/// A factory for the scenarios from an [`AllocatorConfig`].
pub fn factory<C: AllocatorConfig>(config: C) -> impl Fn(Arena) -> C::Allocator {
    move |arena| match config.build(arena) {
        Ok(allocator) => allocator,
        Err(error) => panic!("{error}"),
    }
}

/// A factory for the scenarios from an [`AllocatorConfig`]'s timed build.
pub fn factory_timed<C: AllocatorConfig>(config: C) -> impl Fn(Arena) -> C::Timed {
    move |arena| match config.build_timed(arena) {
        Ok(allocator) => allocator,
        Err(error) => panic!("{error}"),
    }
}

/// The timed build against the measured one: the same seeded random
/// operations on both, the timed build under every check that applies to it
/// (all but the counters it does not keep), and every block it returns at
/// the same arena offset as the measured build's, op for op. So what the
/// timed passes time is the allocator the metrics pass measured.
pub fn timed_twin<C: AllocatorConfig>(config: C, plan: &RandomOps) -> Outcome<Summary> {
    // Naturally aligned arenas, as the harness makes them: an allocator
    // that places buddies by address then places by offset alike in both.
    let make = || Arena::natural(plan.arena_bytes).expect("arena");
    let mut twin = config.build(make()).expect("the measured build");
    let mut tester = Tester::new(factory_timed(config)(make()))?;
    // The twin's blocks, by the tester's handles.
    let mut twin_blocks: Vec<Option<(NonNull<u8>, Layout)>> = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let placed =
        |tester: &Tester<C::Timed>, twin: &C::Allocator, ours: Option<NonNull<u8>>, theirs: Option<NonNull<u8>>| {
            let ours = ours.map(|p| tester.allocator.arena().offset_of(p));
            let theirs = theirs.map(|p| twin.arena().offset_of(p));
            if ours == theirs {
                Ok(())
            } else {
                tester.fail(
                    Check::Twin,
                    format!("the timed build placed a block at {ours:?}, the measured one at {theirs:?}"),
                )
            }
        };
    for step in 1..=plan.ops {
        match random_step(&mut rng, plan, &tester.live) {
            RandomStep::Alloc(layout, level) => {
                let handle = tester.alloc_at(level, layout)?;
                let theirs = twin.alloc_at(level, layout).ok();
                let ours = handle.map(|h| tester.blocks[h].expect("live").ptr);
                placed(&tester, &twin, ours, theirs)?;
                if let Some(handle) = handle {
                    twin_blocks.resize(handle + 1, None);
                    twin_blocks[handle] = theirs.map(|p| (p, layout));
                }
            }
            RandomStep::Free(handle) => {
                let (ptr, layout) = twin_blocks[handle].take().expect("the twin holds every live block");
                tester.free(handle)?;
                // SAFETY: `ptr` is live in the twin with `layout`, freed once (taken).
                unsafe { twin.free(ptr, layout) };
            }
            RandomStep::Realloc(handle, new_size) => {
                let (ptr, layout) = twin_blocks[handle].take().expect("the twin holds every live block");
                let agreed = tester.realloc(handle, new_size)?;
                // SAFETY: `ptr` is live in the twin with `layout`; on success
                // the result replaces it.
                let theirs = unsafe { twin.realloc(ptr, layout, new_size) };
                let ours = agreed.then(|| tester.blocks[handle].expect("live").ptr);
                placed(&tester, &twin, ours, theirs.ok())?;
                let new_layout = Layout::from_size_align(new_size, layout.align()).expect("valid layout");
                twin_blocks[handle] = Some(match theirs {
                    Ok(p) => (p, new_layout),
                    Err(_) => (ptr, layout),
                });
            }
        }
        if step % plan.check_every == 0 {
            tester.check_all()?;
        }
    }
    finish_random(tester, plan)
}

/// One operation of a benchmark sequence.
#[derive(Debug, Clone, Copy)]
pub enum SequenceOp {
    /// Allocate into `slot`.
    Alloc {
        /// Slot index; each alloc has its own.
        slot: usize,
        /// What to ask for.
        layout: Layout,
    },
    /// Free the block in `slot`, allocated with `layout`.
    Free {
        /// Slot index.
        slot: usize,
        /// The layout it was allocated with.
        layout: Layout,
    },
}

/// The random alloc/free sequence every allocator crate benchmarks, so their
/// figures compare: `pairs` allocations of the suite's size mix capped at
/// 4 KiB, 16-byte aligned as malloc's are, each freed at a random later
/// point while about `target_live` blocks are live; ends with the heap empty.
pub fn random_sequence(seed: u64, pairs: usize, target_live: usize) -> Vec<SequenceOp> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ops = Vec::with_capacity(2 * pairs);
    let mut live: Vec<(usize, Layout)> = Vec::new();
    let mut next_slot = 0;
    while next_slot < pairs || !live.is_empty() {
        let alloc_share = if live.len() < target_live { 0.6 } else { 0.4 };
        if next_slot < pairs && (live.is_empty() || rng.random_bool(alloc_share)) {
            let layout = Layout::from_size_align(random_size(&mut rng, 4096), 16).expect("valid layout");
            ops.push(SequenceOp::Alloc { slot: next_slot, layout });
            live.push((next_slot, layout));
            next_slot += 1;
        } else {
            let (slot, layout) = live.swap_remove(rng.random_range(0..live.len()));
            ops.push(SequenceOp::Free { slot, layout });
        }
    }
    ops
}

/// Run a sequence from [`random_sequence`]; `slots` must have room for every
/// slot. Returns the number of refused allocations (their frees are skipped).
pub fn replay_sequence<A: Allocator>(
    allocator: &mut A,
    ops: &[SequenceOp],
    slots: &mut [Option<NonNull<u8>>],
) -> usize {
    let mut refused = 0;
    for op in ops {
        match *op {
            SequenceOp::Alloc { slot, layout } => match allocator.alloc(layout) {
                Ok(ptr) => slots[slot] = Some(ptr),
                Err(_) => refused += 1,
            },
            SequenceOp::Free { slot, layout } => {
                if let Some(ptr) = slots[slot].take() {
                    // SAFETY: `ptr` was allocated by this allocator with
                    // `layout` in this replay and is freed once (taken).
                    unsafe { allocator.free(ptr, layout) };
                }
            }
        }
    }
    refused
}

/// Leave `allocator` with 1000 live 48-byte blocks and a hole between each
/// two, so that a benchmark does not run on a pristine heap.
pub fn make_holes<A: Allocator>(allocator: &mut A) {
    let layout = Layout::from_size_align(48, 16).expect("valid layout");
    let blocks: Vec<_> = (0..2000).map(|_| allocator.alloc(layout).expect("2000 small blocks fit")).collect();
    for block in blocks.iter().step_by(2) {
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { allocator.free(*block, layout) };
    }
}

/// Define the criterion benchmarks every allocator crate runs, over the
/// configurations an expression yields (any `IntoIterator` of an
/// [`AllocatorConfig`]): `random`, the shared [`random_sequence`]
/// (throughput per operation), and `pairs`, alloc+free pairs of fixed sizes
/// on a heap with holes. The calling crate needs `criterion` as a
/// dev-dependency; the macro expands to `benches` and `main`.
#[macro_export]
macro_rules! criterion_benches {
    ($group:literal, $configs:expr) => {
        fn random(c: &mut criterion::Criterion) {
            use heaplab_core::AllocatorConfig as _;
            let ops = heaplab_core::conformance::random_sequence(42, 100_000, 1000);
            let mut group = c.benchmark_group(concat!($group, "/random"));
            group.throughput(criterion::Throughput::Elements(ops.len() as u64));
            group
                .sample_size(10)
                .measurement_time(std::time::Duration::from_secs(3))
                .warm_up_time(std::time::Duration::from_secs(1));
            for config in $configs {
                // One allocator for all iterations: the sequence ends with an
                // empty heap, and reusing the arena keeps first-touch page
                // faults out of the measurement.
                let mut allocator = config.build(heaplab_core::Arena::new(16 << 20).unwrap()).unwrap();
                let mut slots = vec![None; ops.len()];
                assert_eq!(
                    heaplab_core::conformance::replay_sequence(&mut allocator, &ops, &mut slots),
                    0,
                    "the sequence must fit"
                );
                group.bench_function(config.spec(), |b| {
                    b.iter(|| {
                        heaplab_core::conformance::replay_sequence(
                            &mut allocator,
                            std::hint::black_box(&ops),
                            &mut slots,
                        )
                    })
                });
            }
            group.finish();
        }

        fn pairs(c: &mut criterion::Criterion) {
            use heaplab_core::{Allocator as _, AllocatorConfig as _};
            let mut group = c.benchmark_group(concat!($group, "/pair"));
            group.throughput(criterion::Throughput::Elements(2));
            for config in $configs {
                let mut allocator = config.build(heaplab_core::Arena::new(16 << 20).unwrap()).unwrap();
                heaplab_core::conformance::make_holes(&mut allocator);
                for size in [16, 64, 256, 4096] {
                    let layout = std::alloc::Layout::from_size_align(size, 16).unwrap();
                    group.bench_function(format!("{}/{size}", config.spec()), |b| {
                        b.iter(|| {
                            let ptr = allocator.alloc(std::hint::black_box(layout)).unwrap();
                            // SAFETY: just allocated with `layout`, freed once.
                            unsafe { allocator.free(ptr, layout) };
                        })
                    });
                }
            }
            group.finish();
        }

        criterion::criterion_group!(benches, random, pairs);
        criterion::criterion_main!(benches);
    };
}

/// Panic with the failure, for `#[test]` functions.
#[track_caller]
pub fn expect(outcome: Outcome<Summary>) -> Summary {
    match outcome {
        Ok(summary) => summary,
        Err(failure) => panic!("{failure}"),
    }
}

// ---------------------------------------------------------------------------
// The concurrent part

/// A plan for [`concurrent_ops`].
#[derive(Debug, Clone, Copy)]
pub struct ConcurrentOps {
    /// Threads calling at once.
    pub threads: usize,
    /// Operations per thread.
    pub ops_per_thread: usize,
    /// Arena size.
    pub arena_bytes: usize,
    /// Largest request.
    pub max_size: usize,
    /// Percent of a thread's frees that go to the exchange, to be freed by
    /// another thread.
    pub handoff_pct: u32,
    /// Seed.
    pub seed: u64,
}

impl ConcurrentOps {
    /// Four threads, 20,000 ops each, a third of frees handed to another
    /// thread, sizes mostly small (the cached classes) with some large.
    pub fn standard() -> ConcurrentOps {
        ConcurrentOps {
            threads: 4,
            ops_per_thread: 20_000,
            arena_bytes: 16 << 20,
            max_size: 8 << 10,
            handoff_pct: 35,
            seed: 0x5448_5245,
        }
    }
}

/// A block handed between threads, with its pattern's tag.
#[derive(Debug, Clone, Copy)]
struct Handed {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u64,
}

// SAFETY: a handed block belongs to whoever holds the record; the pointer
// is only dereferenced by that thread.
unsafe impl Send for Handed {}

struct Shadow {
    /// Live spans: start offset -> (end, tag).
    spans: std::sync::Mutex<BTreeMap<usize, (usize, u64)>>,
    /// Blocks waiting for another thread to free them.
    exchange: std::sync::Mutex<Vec<Handed>>,
    base: usize,
    len: usize,
    failure: std::sync::Mutex<Option<Failure>>,
}

impl Shadow {
    fn fail(&self, check: Check, op_index: usize, message: String) -> Outcome {
        let failure = Failure { check, op_index, message };
        self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(failure.clone());
        Err(failure)
    }

    fn admit(&self, ptr: NonNull<u8>, layout: Layout, tag: u64, op: usize) -> Outcome {
        let address = ptr.as_ptr() as usize;
        if !address.is_multiple_of(layout.align()) {
            return self.fail(Check::Alignment, op, format!("{layout:?} got {address:#x}"));
        }
        let Some(offset) = address.checked_sub(self.base).filter(|o| o + layout.size() <= self.len) else {
            return self.fail(Check::Bounds, op, format!("{layout:?} got {address:#x}, outside the arena"));
        };
        let end = offset + layout.size().max(1);
        let mut spans = self.spans.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((&start, &(other_end, _))) = spans.range(..end).next_back()
            && other_end > offset
        {
            drop(spans);
            return self.fail(
                Check::Overlap,
                op,
                format!("{offset}..{end} overlaps live block {start}..{other_end}, maybe another thread's"),
            );
        }
        spans.insert(offset, (end, tag));
        drop(spans);
        for i in 0..layout.size() {
            // SAFETY: the block is ours, `layout.size()` bytes long.
            unsafe { ptr.as_ptr().add(i).write(pattern_byte(tag, i)) };
        }
        Ok(())
    }

    fn release(&self, block: Handed, op: usize) -> Outcome {
        for i in 0..block.layout.size() {
            // SAFETY: the block is live and ours.
            let byte = unsafe { block.ptr.as_ptr().add(i).read() };
            if byte != pattern_byte(block.tag, i) {
                return self.fail(Check::Payload, op, format!("byte {i} of a {:?} block changed", block.layout));
            }
        }
        let offset = block.ptr.as_ptr() as usize - self.base;
        self.spans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&offset);
        Ok(())
    }
}

/// Many threads at once on a layer: random allocs and frees, a share of the
/// frees made by another thread than the one that allocated (through an
/// exchange), every block checked for alignment, bounds, overlap with any
/// thread's live block and payload integrity against a shadow oracle.
/// Afterwards every block is freed, every thread retired, the caches
/// flushed, and the allocator beneath must be back as it was built: a lost
/// remote free, a block cached twice or a leak fails here.
pub fn concurrent_ops<L: crate::concurrent::Layer>(
    make: impl Fn(Arena, usize) -> L,
    plan: &ConcurrentOps,
) -> Outcome<Summary>
where
    L::Inner: Allocator,
{
    let mut layer = make(Arena::new(plan.arena_bytes).expect("arena"), plan.threads);
    let (initial_stats, initial_free) = fresh_state(&mut layer);
    let (base, len) = {
        let arena = layer.inner_mut().arena();
        (arena.base().as_ptr() as usize, arena.len())
    };
    let shadow =
        Shadow { spans: Default::default(), exchange: Default::default(), base, len, failure: Default::default() };
    let totals = std::sync::Mutex::new(Summary { bounded: true, ..Summary::default() });
    std::thread::scope(|scope| {
        for thread in 0..plan.threads {
            let (layer, shadow, totals) = (&layer, &shadow, &totals);
            scope.spawn(move || -> Outcome {
                let mut local = layer.local(thread);
                let mut rng = ChaCha8Rng::seed_from_u64(plan.seed ^ (thread as u64 * 0x9e37));
                let mut mine: Vec<Handed> = Vec::new();
                let mut summary = Summary::default();
                let mut tag = (thread as u64) << 40;
                let result = (|| -> Outcome {
                    for op in 0..plan.ops_per_thread {
                        if shadow.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some() {
                            return Ok(());
                        }
                        summary.ops += 1;
                        let roll = rng.random_range(0..100);
                        if mine.is_empty() || roll < 50 {
                            let size = random_size(&mut rng, plan.max_size);
                            let align = if rng.random_bool(0.9) { 16 } else { 1 << rng.random_range(0..=8) };
                            let layout = Layout::from_size_align(size, align).expect("valid");
                            match layer.alloc(&mut local, layout) {
                                Ok(ptr) => {
                                    tag += 1;
                                    shadow.admit(ptr, layout, tag, op)?;
                                    mine.push(Handed { ptr, layout, tag });
                                    summary.allocs += 1;
                                }
                                Err(_) => summary.failed_allocs += 1,
                            }
                        } else if roll < 50 + plan.handoff_pct {
                            let index = rng.random_range(0..mine.len());
                            let block = mine.swap_remove(index);
                            shadow.exchange.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(block);
                        } else {
                            // Free a block of another thread's if one waits, else one of ours.
                            let handed =
                                shadow.exchange.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
                            let block = match handed {
                                Some(block) => block,
                                None => mine.swap_remove(rng.random_range(0..mine.len())),
                            };
                            shadow.release(block, op)?;
                            // SAFETY: the block is live in this layer with this
                            // layout and was removed from every list.
                            unsafe { layer.free(&mut local, block.ptr, block.layout) };
                            summary.frees += 1;
                        }
                        summary.peak_live_blocks = summary.peak_live_blocks.max(mine.len());
                    }
                    for block in mine.drain(..) {
                        shadow.release(block, plan.ops_per_thread)?;
                        // SAFETY: as above.
                        unsafe { layer.free(&mut local, block.ptr, block.layout) };
                        summary.frees += 1;
                    }
                    Ok(())
                })();
                layer.retire(local);
                totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(&summary);
                result
            });
        }
    });
    if let Some(failure) = shadow.failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(failure);
    }
    let mut summary = totals.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    // What the exchange still holds, freed by a fresh thread 0.
    let left = shadow.exchange.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut local = layer.local(0);
    for block in left {
        let offset = block.ptr.as_ptr() as usize - base;
        shadow.spans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&offset);
        // SAFETY: live, this layout, held by nobody else.
        unsafe { layer.free(&mut local, block.ptr, block.layout) };
        summary.frees += 1;
    }
    layer.retire(local);
    layer_recovered(&mut layer, &initial_stats, &initial_free, summary.ops)?;
    if summary.allocs < plan.threads * plan.ops_per_thread / 4 {
        return Err(Failure {
            check: Check::Stats,
            op_index: summary.ops,
            message: format!("too few allocations succeeded to test anything: {summary:?}"),
        });
    }
    Ok(summary)
}

/// The stats and sorted free extents of a layer's fresh allocator.
fn fresh_state<L: crate::concurrent::Layer>(layer: &mut L) -> (HeapStats, Vec<(usize, usize)>) {
    let inner = layer.inner_mut();
    let mut extents = Vec::new();
    inner.for_each_free(&mut |o, l| extents.push((o, l)));
    extents.sort_unstable();
    (inner.stats(), extents)
}

/// After every block was freed and every thread retired: flush the caches,
/// trim, and hold the allocator beneath to its own `check()` and to the
/// fresh heap's free space (a lost remote free, a block cached twice or a
/// leak fails here).
fn layer_recovered<L: crate::concurrent::Layer>(
    layer: &mut L,
    initial_stats: &HeapStats,
    initial_free: &[(usize, usize)],
    ops: usize,
) -> Outcome {
    let fail = |check, message: String| Err(Failure { check, op_index: ops, message });
    layer.flush(&mut []);
    let inner = layer.inner_mut();
    inner.trim();
    if let Err(violation) = inner.check() {
        return fail(Check::Invariant, violation.to_string());
    }
    let stats = inner.stats();
    if (stats.live_blocks, stats.free_bytes, stats.free_blocks)
        != (initial_stats.live_blocks, initial_stats.free_bytes, initial_stats.free_blocks)
    {
        return fail(
            Check::Recovery,
            format!(
                "after every thread freed everything the heap beneath has {} live blocks and {} free bytes in {} blocks; built, it had {}, {} in {}",
                stats.live_blocks,
                stats.free_bytes,
                stats.free_blocks,
                initial_stats.live_blocks,
                initial_stats.free_bytes,
                initial_stats.free_blocks
            ),
        );
    }
    let mut extents = Vec::new();
    inner.for_each_free(&mut |o, l| extents.push((o, l)));
    extents.sort_unstable();
    if extents != initial_free {
        return fail(
            Check::Recovery,
            format!("free space {} differs from the fresh heap's {}", abbreviate(&extents), abbreviate(initial_free)),
        );
    }
    Ok(())
}

/// One op of a thread of a [`Script`]. Slots name blocks across threads;
/// `after` is how many ops on the slot (its alloc, then its reallocs) must
/// have happened, on any thread, before this one runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOp {
    /// Allocate into `slot`.
    Alloc {
        /// The block's slot.
        slot: u32,
        /// Bytes.
        size: usize,
        /// Alignment, a power of two.
        align: usize,
    },
    /// Free the block in `slot`.
    Free {
        /// The block's slot.
        slot: u32,
        /// Ops on the slot before this one.
        after: u32,
    },
    /// Resize the block in `slot`.
    Realloc {
        /// The block's slot.
        slot: u32,
        /// New size in bytes.
        size: usize,
        /// Ops on the slot before this one.
        after: u32,
    },
}

/// Given programs for threads that run at once (a recorded multithreaded
/// trace, say), in which a block may be freed or reallocated by another
/// thread than the one that allocated it.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Each thread's ops, in its order.
    pub threads: Vec<Vec<ScriptOp>>,
    /// Slots used (one more than the largest).
    pub slots: usize,
}

/// A slot of a running script: ops done on it, and its block.
#[derive(Default)]
struct ScriptSlot {
    done: u32,
    block: Option<Handed>,
}

/// How long a thread waits for another's op on a slot before the script
/// is declared stuck (a script whose threads cannot all proceed).
const SCRIPT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Run `script` on `shared`, each program on its own thread at once, every
/// block checked for alignment, bounds (when `arena` gives `(base, len)`),
/// overlap with any thread's live block and payload integrity (realloc's
/// carried-over bytes included); a free or realloc waits until the ops it
/// comes after have happened. The blocks left live at the end are freed.
pub fn concurrent_script<S: crate::concurrent::SharedAllocator>(
    shared: &S,
    script: &Script,
    arena: Option<(usize, usize)>,
) -> Outcome<Summary> {
    let (base, len) = arena.unwrap_or((0, usize::MAX / 2));
    let shadow =
        Shadow { spans: Default::default(), exchange: Default::default(), base, len, failure: Default::default() };
    let slots: Vec<std::sync::Mutex<ScriptSlot>> = (0..script.slots).map(|_| Default::default()).collect();
    let lock = |slot: u32| slots[slot as usize].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let totals = std::sync::Mutex::new(Summary { bounded: arena.is_some(), ..Summary::default() });
    std::thread::scope(|scope| {
        for (thread, program) in script.threads.iter().enumerate() {
            let (shadow, totals, lock) = (&shadow, &totals, &lock);
            scope.spawn(move || {
                let mut local = shared.local(thread);
                let mut summary = Summary::default();
                let mut tag = (thread as u64 + 1) << 40;
                // The slot once `after` ops on it have happened.
                let ready = |slot: u32, after: u32, op: usize| {
                    let started = std::time::Instant::now();
                    loop {
                        let guard = lock(slot);
                        if guard.done >= after {
                            return Ok(guard);
                        }
                        drop(guard);
                        if shadow.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some() {
                            return Err(None);
                        }
                        if started.elapsed() > SCRIPT_PATIENCE {
                            return Err(Some(shadow.fail(
                                Check::Stats,
                                op,
                                format!("thread {thread} waited {SCRIPT_PATIENCE:?} for op {after} on slot {slot}: the script cannot proceed"),
                            )));
                        }
                        std::thread::yield_now();
                    }
                };
                let result = (|| -> Outcome {
                    for (op, step) in program.iter().enumerate() {
                        summary.ops += 1;
                        match *step {
                            ScriptOp::Alloc { slot, size, align } => {
                                // A size no layout can express fails, as in a real allocator.
                                let attempt = Layout::from_size_align(size, align)
                                    .map_err(|_| crate::AllocError::Unsupported("no layout has this size"))
                                    .and_then(|layout| shared.alloc(&mut local, layout).map(|ptr| (ptr, layout)));
                                let block = match attempt {
                                    Ok((ptr, layout)) => {
                                        tag += 1;
                                        shadow.admit(ptr, layout, tag, op)?;
                                        summary.allocs += 1;
                                        Some(Handed { ptr, layout, tag })
                                    }
                                    Err(_) => {
                                        summary.failed_allocs += 1;
                                        None
                                    }
                                };
                                let mut guard = lock(slot);
                                guard.block = block;
                                guard.done += 1;
                            }
                            ScriptOp::Free { slot, after } => {
                                let mut guard = match ready(slot, after, op) {
                                    Ok(guard) => guard,
                                    Err(failure) => return failure.unwrap_or(Ok(())),
                                };
                                if let Some(block) = guard.block.take() {
                                    shadow.release(block, op)?;
                                    // SAFETY: the slot's block is live in this
                                    // allocator with this layout, taken out of the
                                    // slot under its lock.
                                    unsafe { shared.free(&mut local, block.ptr, block.layout) };
                                    summary.frees += 1;
                                }
                                guard.done += 1;
                            }
                            ScriptOp::Realloc { slot, size, after } => {
                                let mut guard = match ready(slot, after, op) {
                                    Ok(guard) => guard,
                                    Err(failure) => return failure.unwrap_or(Ok(())),
                                };
                                if let Some(old) = guard.block.take() {
                                    shadow.release(old, op)?;
                                    // SAFETY: as for free; the slot gets the result.
                                    let result = unsafe { shared.realloc(&mut local, old.ptr, old.layout, size) };
                                    guard.block = Some(match result {
                                        Ok(ptr) => {
                                            let kept = old.layout.size().min(size);
                                            for i in 0..kept {
                                                // SAFETY: the new block has at least `kept` bytes.
                                                if unsafe { ptr.as_ptr().add(i).read() } != pattern_byte(old.tag, i) {
                                                    return shadow.fail(
                                                        Check::Payload,
                                                        op,
                                                        format!("realloc of a {:?} block to {size} bytes lost byte {i}", old.layout),
                                                    );
                                                }
                                            }
                                            let layout = Layout::from_size_align(size, old.layout.align()).expect("valid");
                                            tag += 1;
                                            shadow.admit(ptr, layout, tag, op)?;
                                            summary.reallocs += 1;
                                            Handed { ptr, layout, tag }
                                        }
                                        Err(_) => {
                                            shadow.admit(old.ptr, old.layout, old.tag, op)?;
                                            summary.failed_reallocs += 1;
                                            old
                                        }
                                    });
                                }
                                guard.done += 1;
                            }
                        }
                    }
                    Ok(())
                })();
                shared.retire(local);
                totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(&summary);
                result
            });
        }
    });
    if let Some(failure) = shadow.failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(failure);
    }
    let mut summary = totals.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut local = shared.local(0);
    for slot in slots {
        if let Some(block) = slot.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).block {
            // SAFETY: live in this allocator with this layout; the threads are done.
            unsafe { shared.free(&mut local, block.ptr, block.layout) };
            summary.frees += 1;
        }
    }
    shared.retire(local);
    Ok(summary)
}

/// [`concurrent_script`] on a layer over an allocator in an arena of
/// `arena_bytes`, then the allocator beneath held to its own `check()` and
/// to the fresh heap's free space.
pub fn concurrent_script_layer<L: crate::concurrent::Layer>(
    make: impl Fn(Arena, usize) -> L,
    script: &Script,
    arena_bytes: usize,
) -> Outcome<Summary>
where
    L::Inner: Allocator,
{
    let mut layer = make(Arena::new(arena_bytes).expect("arena"), script.threads.len());
    let (initial_stats, initial_free) = fresh_state(&mut layer);
    let bounds = {
        let arena = layer.inner_mut().arena();
        (arena.base().as_ptr() as usize, arena.len())
    };
    let summary = concurrent_script(&layer, script, Some(bounds))?;
    layer_recovered(&mut layer, &initial_stats, &initial_free, summary.ops)?;
    Ok(summary)
}

/// Instantiate the whole conformance suite for one allocator configuration.
///
/// ```
/// use heaplab_core::bump::BumpConfig;
/// heaplab_core::conformance_suite!(bump, heaplab_core::conformance::factory(BumpConfig));
/// ```
///
/// The second argument is an expression of a type `Fn(Arena) -> impl Allocator`;
/// it is evaluated once per test. With `config: CONFIG` instead (an
/// [`AllocatorConfig`] value), the suite runs on the measured build and adds
/// `timed_twin`, which holds the timed build to the measured one
/// ([`timed_twin`]); `FACTORY, twin: CONFIG` does the same with another
/// factory.
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, config: $config:expr) => {
        $crate::conformance_suite!($name, $crate::conformance::factory($config), twin: $config);
    };
    ($name:ident, $factory:expr $(, twin: $config:expr)?) => {
        #[cfg(test)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::conformance as suite;

            $(
                #[test]
                fn timed_twin() {
                    suite::expect(suite::timed_twin($config, &suite::RandomOps::long()));
                }
            )?

            #[test]
            fn random_ops_long() {
                let summary = suite::expect(suite::random_ops($factory, &suite::RandomOps::long()));
                assert!(summary.allocs > 10_000, "too few allocations succeeded to test anything: {summary:?}");
            }

            #[test]
            fn random_ops_thorough() {
                suite::expect(suite::random_ops($factory, &suite::RandomOps::thorough()));
            }

            #[test]
            fn random_ops_cramped() {
                let summary = suite::expect(suite::random_ops($factory, &suite::RandomOps::cramped()));
                assert!(!summary.bounded || summary.failed_allocs > 0, "a cramped arena never ran out: {summary:?}");
            }

            #[test]
            fn alignment_sweep() {
                suite::expect(suite::alignment_sweep($factory));
            }

            #[test]
            fn exhaustion() {
                suite::expect(suite::exhaustion($factory));
            }

            #[test]
            fn realloc_chains() {
                suite::expect(suite::realloc_chains($factory));
            }

            #[test]
            fn zero_size() {
                suite::expect(suite::zero_size($factory));
            }

            #[test]
            fn free_orders() {
                suite::expect(suite::free_orders($factory));
            }
        }
    };
}

/// Build `kind` over `config`'s measured allocator: a factory for
/// [`concurrent_ops`].
pub fn layer_factory<C: AllocatorConfig>(
    kind: crate::concurrent::LayerKind,
    config: C,
) -> impl Fn(Arena, usize) -> crate::concurrent::AnyLayer<C::Allocator>
where
    C::Allocator: Send,
{
    move |arena, threads| {
        kind.build(config.build(arena).expect("the configuration builds"), threads).expect("the layer builds")
    }
}

/// The concurrent part of the suite for one configuration: each layer
/// (`locked`, `cached` with default and with tiny magazines, so that the
/// depot and the bounds are exercised) over it, on 2 and 4 threads, and the
/// single-threaded suite on each layered configuration.
#[macro_export]
macro_rules! concurrent_suite {
    ($name:ident, config: $config:expr) => {
        #[cfg(test)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::concurrent::{CacheParams, LayerKind, Layered};
            use $crate::conformance as suite;

            fn layers() -> [LayerKind; 3] {
                [
                    LayerKind::Locked,
                    LayerKind::Cached(CacheParams::default()),
                    LayerKind::Cached(CacheParams { magazine: 3, depot: 1, max_size: 256 }),
                ]
            }

            #[test]
            fn many_threads() {
                for kind in layers() {
                    for threads in [2, 4] {
                        let plan = suite::ConcurrentOps { threads, ..suite::ConcurrentOps::standard() };
                        let result = suite::concurrent_ops(suite::layer_factory(kind, $config), &plan);
                        if let Err(failure) = result {
                            panic!("{} on {threads} threads: {failure}", kind.spec());
                        }
                    }
                }
            }

            #[test]
            fn each_layer_single_threaded() {
                for kind in layers() {
                    let config = Layered { kind, inner: $config };
                    let plan = suite::RandomOps { ops: 20_000, ..suite::RandomOps::long() };
                    for result in [
                        suite::random_ops(suite::factory(config.clone()), &plan),
                        suite::random_ops(suite::factory(config.clone()), &suite::RandomOps::cramped()),
                        suite::exhaustion(suite::factory(config.clone())),
                        suite::realloc_chains(suite::factory(config.clone())),
                        suite::timed_twin(config.clone(), &plan),
                    ] {
                        if let Err(failure) = result {
                            panic!("{}: {failure}", $crate::AllocatorConfig::spec(&config));
                        }
                    }
                }
            }
        }
    };
}
