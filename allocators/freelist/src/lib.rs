//! The naive free-list allocator: one list of free blocks, searched on every
//! request, with boundary tags for coalescing — the allocator of K&R, of the
//! CS:APP malloc lab, and of the "sequential fits" family in Wilson et al.'s
//! survey (1995).
//!
//! # Layout in the arena
//!
//! Boundary tags, as the [`tags`] module describes: an 8-byte header on every
//! block, a footer and the list links in free blocks, 16-byte granules, a
//! 32-byte minimum block, an epilogue at the end of the arena.
//!
//! `free` reads the block size from the header, as a C `free` would: the
//! layout it is given is used only for the requested-bytes counter.
//!
//! # Policies
//!
//! A request of `n` bytes needs a block of `max(32, round16(n + 8))` bytes.
//! Alignments above 16 are served by skipping to an aligned payload inside a
//! free block; the bytes skipped stay a free block of their own (so a gap
//! must be 0 or at least 32 bytes), never padding inside the granted block.
//!
//! **Placement** (`fit=`), which free block a request takes:
//! - `first`: the first block in list order that fits. O(free blocks) worst case.
//! - `next`: like first fit, but the search starts where the last one ended (a
//!   roving pointer, Knuth's modification) and wraps around. O(free blocks).
//! - `best`: the smallest block that fits (an exact fit ends the search early;
//!   ties go to the first in list order). Always O(free blocks).
//! - `worst`: the largest block. Always O(free blocks).
//!
//! If the chosen block is larger than needed by at least 32 bytes it is
//! **split**: the request takes the front, and the remainder stays in the list
//! at the position the block had.
//!
//! **Free-list order** (`order=`), where a freed block goes:
//! - `lifo`: to the front. O(1).
//! - `fifo`: to the back. O(1).
//! - `address`: in address order, so first fit becomes address-ordered first
//!   fit. O(free blocks) to find the place, unless a free neighbour's place is
//!   taken over.
//!
//! A freed block is **coalesced immediately** with a free predecessor and a
//! free successor (both found in O(1) through the boundary tags); under
//! `lifo`/`fifo` the merged block is then inserted by the order's rule, under
//! `address` it keeps the place of the neighbour it absorbed.
//!
//! **Realloc** shrinks in place (freeing a tail of at least 32 bytes), grows in
//! place into a free successor when that is enough, and otherwise moves.
//!
//! # Drawbacks
//!
//! - Every search is linear in the number of free blocks, which grows with
//!   fragmentation: the allocator slows down exactly when the heap is in bad
//!   shape. Best and worst fit always scan the whole list.
//! - Next fit spreads allocations over the whole heap and, with LIFO or FIFO
//!   orders, interleaves blocks of different lifetimes: it fragments more than
//!   first fit on real traces (Wilson et al. 1995; Johnstone & Wilson 1998).
//! - Worst fit carves up the large blocks first and is the worst of the four
//!   at keeping room for large requests.
//! - Address-ordered insertion costs a list walk per free unless a neighbour
//!   is free.
//! - Every block carries an 8-byte header and a 32-byte minimum, so small
//!   requests waste a large fraction (1-byte requests use 32 bytes).

pub mod tags;

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::spec::choice_name;
use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, Counters, HeapStats, InvariantViolation, Spec,
    SpecError, Waste, ensure,
};

pub use tags::MIN_BLOCK;
use tags::{FIRST_BLOCK, ListEnds, NIL, TagHeap};

const FITS: [(&str, Fit); 4] = [("first", Fit::First), ("next", Fit::Next), ("best", Fit::Best), ("worst", Fit::Worst)];
const ORDERS: [(&str, Order); 3] = [("lifo", Order::Lifo), ("fifo", Order::Fifo), ("address", Order::Address)];

/// Which free block a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fit {
    /// The first that fits, in list order.
    First,
    /// The first that fits after where the last search ended.
    Next,
    /// The smallest that fits.
    Best,
    /// The largest.
    Worst,
}

/// Where a freed block goes in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// The front.
    Lifo,
    /// The back.
    Fifo,
    /// Its place by address.
    Address,
}

/// A free-list configuration: spec `freelist:fit=first|next|best|worst,order=lifo|fifo|address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    /// Placement policy.
    pub fit: Fit,
    /// Free-list order.
    pub order: Order,
}

impl Default for Config {
    /// Address-ordered first fit: the policy the literature finds among the best.
    fn default() -> Self {
        Config { fit: Fit::First, order: Order::Address }
    }
}

impl AllocatorConfig for Config {
    type Allocator = FreeList;
    const FAMILY: &'static str = "freelist";
    const SUMMARY: &'static str =
        "one free list with boundary tags: first/next/best/worst fit, LIFO/FIFO/address order";

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let mut reader = spec.reader();
        let default = Config::default();
        let fit = reader.choice("fit", &FITS, default.fit)?;
        let order = reader.choice("order", &ORDERS, default.order)?;
        reader.finish()?;
        Ok(Config { fit, order })
    }

    fn spec(&self) -> String {
        format!("freelist:fit={},order={}", choice_name(&FITS, self.fit), choice_name(&ORDERS, self.order))
    }

    fn describe(&self) -> String {
        let fit = match self.fit {
            Fit::First => "first fit",
            Fit::Next => "next fit (roving pointer)",
            Fit::Best => "best fit",
            Fit::Worst => "worst fit",
        };
        let order = match self.order {
            Order::Lifo => "LIFO list",
            Order::Fifo => "FIFO list",
            Order::Address => "address-ordered list",
        };
        format!("{fit}, {order}, boundary tags, immediate coalescing")
    }

    fn listed() -> Vec<Self> {
        FITS.iter().flat_map(|&(_, fit)| ORDERS.iter().map(move |&(_, order)| Config { fit, order })).collect()
    }

    fn build(&self, arena: Arena) -> Result<FreeList, BuildError> {
        FreeList::new(arena, *self).map_err(|message| self.build_error(message))
    }
}

/// The naive free-list allocator. See the crate documentation for its policy.
#[derive(Debug)]
pub struct FreeList {
    heap: TagHeap,
    config: Config,
    /// The one free list.
    list: ListEnds,
    /// Next fit: the free block the next search starts from, or `NIL` for the
    /// head. Always `NIL` or a member of the list.
    rover: usize,
    live_blocks: usize,
    requested_bytes: usize,
    /// Sum of the sizes of allocated blocks.
    granted_bytes: usize,
    /// Sum of the sizes of free blocks; `granted + free + metadata == arena.len()`.
    free_bytes: usize,
    /// Number of blocks in the list.
    free_blocks: usize,
    /// Highest block end ever allocated.
    footprint_bytes: usize,
    blocks_inspected: u64,
    splits: u64,
    coalesces: u64,
}

impl FreeList {
    /// Lay out an empty heap over `arena`: one free block between the pad
    /// word and the epilogue.
    pub fn new(arena: Arena, config: Config) -> Result<FreeList, String> {
        let (mut heap, size) = TagHeap::new(arena)?;
        let mut list = ListEnds::EMPTY;
        heap.push_back(&mut list, FIRST_BLOCK);
        Ok(FreeList {
            heap,
            config,
            list,
            rover: NIL,
            live_blocks: 0,
            requested_bytes: 0,
            granted_bytes: 0,
            free_bytes: size,
            free_blocks: 1,
            footprint_bytes: FIRST_BLOCK,
            blocks_inspected: 0,
            splits: 0,
            coalesces: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    // ---- the list, with the roving pointer kept valid --------------------

    fn unlink(&mut self, block: usize) {
        let next = self.heap.unlink(&mut self.list, block);
        if self.rover == block {
            self.rover = next;
        }
    }

    fn replace(&mut self, old: usize, new: usize) {
        self.heap.replace(&mut self.list, old, new);
        if self.rover == old {
            self.rover = new;
        }
    }

    /// Insert in address order: O(free blocks).
    fn insert_sorted(&mut self, block: usize) {
        let mut next = self.list.head;
        while next != NIL && next < block {
            next = self.heap.next(next);
        }
        let prev = if next == NIL { self.list.tail } else { self.heap.prev(next) };
        self.heap.link_between(&mut self.list, block, prev, next);
    }

    /// Insert a block that has just become free, by the order's rule.
    fn insert_freed(&mut self, block: usize) {
        match self.config.order {
            Order::Lifo => self.heap.push_front(&mut self.list, block),
            Order::Fifo => self.heap.push_back(&mut self.list, block),
            Order::Address => self.insert_sorted(block),
        }
    }

    // ---- placement -------------------------------------------------------

    /// Find a free block for `needed` bytes aligned to `align`: `(block, gap)`.
    fn find(&mut self, needed: usize, align: usize) -> Option<(usize, usize)> {
        let heap = &self.heap;
        let fits = |block: usize| TagHeap::fit(block, heap.size(block), needed, align);
        let mut inspected = 0u64;
        let found = match self.config.fit {
            Fit::First => {
                let mut block = self.list.head;
                loop {
                    if block == NIL {
                        break None;
                    }
                    inspected += 1;
                    if let Some(gap) = fits(block) {
                        break Some((block, gap));
                    }
                    block = heap.next(block);
                }
            }
            Fit::Next => {
                let start = if self.rover == NIL { self.list.head } else { self.rover };
                let mut block = start;
                loop {
                    if block == NIL {
                        break None;
                    }
                    inspected += 1;
                    if let Some(gap) = fits(block) {
                        break Some((block, gap));
                    }
                    block = heap.next(block);
                    if block == NIL {
                        block = self.list.head;
                    }
                    if block == start {
                        break None;
                    }
                }
            }
            Fit::Best | Fit::Worst => {
                let best = self.config.fit == Fit::Best;
                let mut chosen: Option<(usize, usize, usize)> = None;
                let mut block = self.list.head;
                while block != NIL {
                    inspected += 1;
                    let size = heap.size(block);
                    if let Some(gap) = fits(block) {
                        let better = match chosen {
                            None => true,
                            Some((_, _, chosen_size)) => {
                                if best {
                                    size < chosen_size
                                } else {
                                    size > chosen_size
                                }
                            }
                        };
                        if better {
                            chosen = Some((block, gap, size));
                            if best && size == gap + needed {
                                break;
                            }
                        }
                    }
                    block = heap.next(block);
                }
                chosen.map(|(block, gap, _)| (block, gap))
            }
        };
        self.blocks_inspected += inspected;
        found
    }

    /// Allocate `needed` bytes from free block `block`, `gap` bytes in.
    /// Returns the allocated block's offset.
    fn take(&mut self, block: usize, gap: usize, needed: usize) -> usize {
        let block_size = self.heap.size(block);
        let successor = self.heap.next(block);
        let (start, available, prev_allocated) = if gap > 0 {
            // The skipped front stays a free block, in place in the list.
            let prev_allocated = self.heap.prev_allocated(block);
            self.heap.put_free(block, gap, prev_allocated);
            self.splits += 1;
            (block + gap, block_size - gap, false)
        } else {
            (block, block_size, self.heap.prev_allocated(block))
        };
        self.free_bytes -= available;
        let remainder = available - needed;
        let granted = if remainder >= MIN_BLOCK {
            // List first, tags second, so that no link is read after a tag
            // may have overwritten it. The block after `rest` followed a
            // free block and still does.
            let rest = start + needed;
            if gap > 0 {
                self.heap.insert_after(&mut self.list, block, rest);
                self.free_blocks += 1;
            } else {
                self.replace(block, rest);
            }
            self.heap.put_allocated(start, needed, prev_allocated);
            self.heap.put_free(rest, remainder, true);
            self.free_bytes += remainder;
            self.splits += 1;
            if self.config.fit == Fit::Next {
                self.rover = rest;
            }
            needed
        } else {
            if gap == 0 {
                self.unlink(block);
                self.free_blocks -= 1;
            }
            self.heap.put_allocated(start, available, prev_allocated);
            self.heap.set_prev_allocated(start + available, true);
            if self.config.fit == Fit::Next {
                self.rover = successor;
            }
            available
        };
        self.granted_bytes += granted;
        self.footprint_bytes = self.footprint_bytes.max(start + granted);
        start
    }

    /// Make `block..block+size`, currently allocated or just carved off, free:
    /// coalesce with free neighbours and put the result in the list.
    fn release(&mut self, block: usize, size: usize) {
        let next_block = block + size;
        let next_free = !self.heap.is_allocated(next_block);
        let prev_free = self.heap.free_predecessor(block);
        let (mut start, mut merged) = (block, size);
        self.free_bytes += size;
        self.free_blocks += 1;
        let address_order = self.config.order == Order::Address;
        // Under address order the merged block keeps the place of a free
        // neighbour; otherwise it is inserted by the order's rule.
        let mut placed = false;
        if next_free {
            merged += self.heap.size(next_block);
            if address_order {
                self.replace(next_block, block);
                placed = true;
            } else {
                self.unlink(next_block);
            }
            self.free_blocks -= 1;
            self.coalesces += 1;
        }
        if let Some(prev) = prev_free {
            merged += block - prev;
            start = prev;
            if placed {
                self.unlink(block);
            }
            if address_order {
                placed = true;
            } else {
                self.unlink(start);
            }
            self.free_blocks -= 1;
            self.coalesces += 1;
        }
        let prev_allocated = self.heap.prev_allocated(start);
        self.heap.put_free(start, merged, prev_allocated);
        // The successor is allocated (a free one was merged above).
        self.heap.set_prev_allocated(start + merged, false);
        if !placed {
            self.insert_freed(start);
        }
    }

    /// Grow or shrink the block at `block` in place to `needed` bytes, if the
    /// heap allows it. Returns whether it did.
    fn resize_in_place(&mut self, block: usize, needed: usize) -> bool {
        let size = self.heap.size(block);
        let prev_allocated = self.heap.prev_allocated(block);
        if needed <= size {
            let remainder = size - needed;
            if remainder >= MIN_BLOCK {
                self.heap.put_allocated(block, needed, prev_allocated);
                // The tail is briefly an allocated block, then released.
                self.heap.put_allocated(block + needed, remainder, true);
                self.granted_bytes -= remainder;
                self.splits += 1;
                self.release(block + needed, remainder);
            }
            return true;
        }
        let next_block = block + size;
        if self.heap.is_allocated(next_block) {
            return false;
        }
        let next_size = self.heap.size(next_block);
        let available = size + next_size;
        if available < needed {
            return false;
        }
        self.free_bytes -= next_size;
        let remainder = available - needed;
        let granted = if remainder >= MIN_BLOCK {
            // `rest` may start inside the successor's link words: move the
            // list node before writing any tag. The block after `rest`
            // followed a free block and still does.
            let rest = block + needed;
            self.replace(next_block, rest);
            self.heap.put_allocated(block, needed, prev_allocated);
            self.heap.put_free(rest, remainder, true);
            self.free_bytes += remainder;
            self.splits += 1;
            needed
        } else {
            self.unlink(next_block);
            self.free_blocks -= 1;
            self.heap.put_allocated(block, available, prev_allocated);
            self.heap.set_prev_allocated(block + available, true);
            available
        };
        self.granted_bytes += granted - size;
        self.footprint_bytes = self.footprint_bytes.max(block + granted);
        true
    }
}

impl Allocator for FreeList {
    fn arena(&self) -> &Arena {
        self.heap.arena()
    }

    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() > self.heap.arena().align() {
            return Err(AllocError::Unsupported("alignment above the arena's"));
        }
        let needed = TagHeap::block_size_for(layout.size()).ok_or(AllocError::OutOfMemory)?;
        let (block, gap) = self.find(needed, layout.align()).ok_or(AllocError::OutOfMemory)?;
        let start = self.take(block, gap, needed);
        self.live_blocks += 1;
        self.requested_bytes += layout.size();
        Ok(self.heap.payload(start))
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let block = self.heap.block_of(ptr);
        debug_assert!(self.heap.is_allocated(block), "free of a block that is not allocated, at {block}");
        let size = self.heap.size(block);
        self.live_blocks -= 1;
        self.requested_bytes -= layout.size();
        self.granted_bytes -= size;
        self.release(block, size);
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let needed = TagHeap::block_size_for(new_size).ok_or(AllocError::OutOfMemory)?;
        let block = self.heap.block_of(ptr);
        if self.resize_in_place(block, needed) {
            self.requested_bytes = self.requested_bytes - old.size() + new_size;
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { heaplab_core::realloc_by_moving(self, ptr, old, new_size) }
    }

    fn granted(&self, ptr: NonNull<u8>, _layout: Layout) -> usize {
        self.heap.size(self.heap.block_of(ptr))
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        self.heap.waste(ptr, layout)
    }

    fn into_arena(self) -> Arena {
        self.heap.into_arena()
    }

    fn stats(&self) -> HeapStats {
        HeapStats {
            arena_bytes: self.heap.arena().len(),
            live_blocks: self.live_blocks,
            requested_bytes: self.requested_bytes,
            granted_bytes: self.granted_bytes,
            metadata_bytes: self.heap.metadata_bytes(),
            side_metadata_bytes: 0,
            free_bytes: self.free_bytes,
            free_blocks: self.free_blocks,
            footprint_bytes: self.footprint_bytes,
            counters: Counters {
                blocks_inspected: Some(self.blocks_inspected),
                splits: Some(self.splits),
                coalesces: Some(self.coalesces),
            },
        }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        let mut block = self.list.head;
        while block != NIL {
            visit(block, self.heap.size(block));
            block = self.heap.next(block);
        }
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        let walk = self.heap.walk()?;
        let members = self.heap.list_members(&self.list, &walk)?;
        ensure!(
            members.len() == walk.free_blocks.len(),
            "{} blocks listed, {} free in the heap",
            members.len(),
            walk.free_blocks.len()
        );
        if self.config.order == Order::Address {
            ensure!(members.windows(2).all(|pair| pair[0] < pair[1]), "the address-ordered list is out of order");
        }
        ensure!(self.rover == NIL || members.contains(&self.rover), @self.rover, "the roving pointer is not in the free list");
        ensure!(
            self.free_blocks == members.len(),
            "free block counter {} but {} blocks",
            self.free_blocks,
            members.len()
        );
        ensure!(
            self.free_bytes == walk.free_bytes,
            "free bytes counter {} but {} in free blocks",
            self.free_bytes,
            walk.free_bytes
        );
        ensure!(
            self.granted_bytes == walk.granted_bytes,
            "granted bytes counter {} but {} in allocated blocks",
            self.granted_bytes,
            walk.granted_bytes
        );
        ensure!(
            walk.granted_bytes + walk.free_bytes + self.heap.metadata_bytes() == self.heap.arena().len(),
            "granted {} + free {} + metadata {} != arena {}",
            walk.granted_bytes,
            walk.free_bytes,
            self.heap.metadata_bytes(),
            self.heap.arena().len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
