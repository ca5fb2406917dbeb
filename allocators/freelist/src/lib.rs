//! The naive free-list allocator: one list of free blocks, searched on every
//! request, with boundary tags for coalescing — the allocator of K&R, of the
//! CS:APP malloc lab, and of the "sequential fits" family in Wilson et al.'s
//! survey (1995).
//!
//! # Layout in the arena
//!
//! ```text
//! offset 0      8                                              len-8   len
//!        | pad  | block | block | block | …                   | epilogue |
//!
//! allocated block:  [header | payload …                          ]
//! free block:       [header | next | prev | …            | footer]
//! ```
//!
//! - Every block starts at an offset ≡ 8 (mod 16), so its payload (8 bytes
//!   in) is 16-byte aligned, and its size is a multiple of 16, at least
//!   [`MIN_BLOCK`] = 32 bytes (header, two links, footer).
//! - The **header** word holds the block size with two flag bits: bit 0, this
//!   block is allocated; bit 1, the block before it is allocated. Free blocks
//!   repeat the header in a **footer** (their last word), so a freed block can
//!   find a free predecessor in O(1); allocated blocks need no footer because
//!   their successor's bit 1 says they are in use (the CS:APP optimisation).
//! - Free blocks hold the list links (arena offsets of the next and previous
//!   free block, 0 for none) in their first payload words.
//! - An **epilogue** header (size 0, allocated) ends the heap so that the last
//!   block's successor always exists. The pad word and the epilogue are the
//!   metadata `M`; headers of allocated blocks count in their `granted` size.
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

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::spec::choice_name;
use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, Counters, HeapStats, InvariantViolation, Spec,
    SpecError, Waste, ensure,
};

/// Bytes in a tag word.
const WORD: usize = 8;
/// Block sizes are multiples of this, and payloads are aligned to it.
const GRANULE: usize = 16;
/// Smallest block: header, next and prev links, footer.
pub const MIN_BLOCK: usize = 32;
/// Offset of the first block: one pad word puts payloads on 16-byte boundaries.
const FIRST_BLOCK: usize = 8;
/// Header bit: this block is allocated.
const ALLOCATED: u64 = 1;
/// Header bit: the block before this one is allocated.
const PREV_ALLOCATED: u64 = 2;
/// The size part of a header.
const SIZE_MASK: u64 = !(GRANULE as u64 - 1);
/// The null link: no block starts at offset 0.
const NIL: usize = 0;

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

const FITS: [(&str, Fit); 4] = [("first", Fit::First), ("next", Fit::Next), ("best", Fit::Best), ("worst", Fit::Worst)];
const ORDERS: [(&str, Order); 3] = [("lifo", Order::Lifo), ("fifo", Order::Fifo), ("address", Order::Address)];

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
    arena: Arena,
    config: Config,
    /// Offset of the epilogue header; blocks tile `FIRST_BLOCK..epilogue`
    /// exactly, and `epilogue + 8 <= arena.len()`.
    epilogue: usize,
    /// First free block in list order, or `NIL`; `NIL` iff `tail` is.
    head: usize,
    /// Last free block in list order, or `NIL`.
    tail: usize,
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
    /// Pad word, epilogue, and the arena's bytes beyond the last granule.
    metadata_bytes: usize,
    /// Highest block end ever allocated.
    footprint_bytes: usize,
    blocks_inspected: u64,
    splits: u64,
    coalesces: u64,
}

impl FreeList {
    /// Lay out an empty heap over `arena`: one free block between the pad
    /// word and the epilogue.
    pub fn new(mut arena: Arena, config: Config) -> Result<FreeList, String> {
        let usable = arena.len() & !(GRANULE - 1);
        if usable < FIRST_BLOCK + MIN_BLOCK + WORD {
            return Err(format!("the arena must hold at least {} bytes", FIRST_BLOCK + MIN_BLOCK + WORD));
        }
        if arena.align() < GRANULE {
            return Err(format!("the arena must be aligned to {GRANULE} bytes"));
        }
        let epilogue = usable - WORD;
        let size = epilogue - FIRST_BLOCK;
        arena.store_word(epilogue, ALLOCATED);
        let mut heap = FreeList {
            metadata_bytes: arena.len() - size,
            arena,
            config,
            epilogue,
            head: NIL,
            tail: NIL,
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
        };
        heap.put_free(FIRST_BLOCK, size, true);
        heap.push_back(FIRST_BLOCK);
        Ok(heap)
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    // ---- boundary tags -------------------------------------------------

    #[inline]
    fn header(&self, block: usize) -> u64 {
        self.arena.load_word(block)
    }

    #[inline]
    fn size(&self, block: usize) -> usize {
        (self.header(block) & SIZE_MASK) as usize
    }

    #[inline]
    fn is_allocated(&self, block: usize) -> bool {
        self.header(block) & ALLOCATED != 0
    }

    #[inline]
    fn prev_allocated(&self, block: usize) -> bool {
        self.header(block) & PREV_ALLOCATED != 0
    }

    #[inline]
    fn tag(size: usize, allocated: bool, prev_allocated: bool) -> u64 {
        debug_assert_eq!(size % GRANULE, 0);
        size as u64 | if allocated { ALLOCATED } else { 0 } | if prev_allocated { PREV_ALLOCATED } else { 0 }
    }

    /// Write the header of an allocated block. Its successor's
    /// prev-allocated bit is the caller's business.
    #[inline]
    fn put_allocated(&mut self, block: usize, size: usize, prev_allocated: bool) {
        self.arena.store_word(block, FreeList::tag(size, true, prev_allocated));
    }

    /// Write the header and footer of a free block. Its successor's
    /// prev-allocated bit is the caller's business.
    #[inline]
    fn put_free(&mut self, block: usize, size: usize, prev_allocated: bool) {
        let tag = FreeList::tag(size, false, prev_allocated);
        self.arena.store_word(block, tag);
        self.arena.store_word(block + size - WORD, tag);
    }

    /// Update the prev-allocated bit of a block whose header is valid.
    #[inline]
    fn set_prev_allocated(&mut self, block: usize, prev_allocated: bool) {
        let header = self.header(block);
        let header = if prev_allocated { header | PREV_ALLOCATED } else { header & !PREV_ALLOCATED };
        self.arena.store_word(block, header);
        // A free block's footer mirrors its header.
        if header & ALLOCATED == 0 {
            let size = (header & SIZE_MASK) as usize;
            self.arena.store_word(block + size - WORD, header);
        }
    }

    // ---- the free list ---------------------------------------------------

    #[inline]
    fn next(&self, block: usize) -> usize {
        self.arena.load_word(block + WORD) as usize
    }

    #[inline]
    fn prev(&self, block: usize) -> usize {
        self.arena.load_word(block + 2 * WORD) as usize
    }

    #[inline]
    fn set_next(&mut self, block: usize, next: usize) {
        self.arena.store_word(block + WORD, next as u64);
    }

    #[inline]
    fn set_prev(&mut self, block: usize, prev: usize) {
        self.arena.store_word(block + 2 * WORD, prev as u64);
    }

    /// Link `block` between `prev` and `next` (either may be `NIL`).
    fn link_between(&mut self, block: usize, prev: usize, next: usize) {
        self.set_prev(block, prev);
        self.set_next(block, next);
        if prev == NIL {
            self.head = block;
        } else {
            self.set_next(prev, block);
        }
        if next == NIL {
            self.tail = block;
        } else {
            self.set_prev(next, block);
        }
    }

    fn push_front(&mut self, block: usize) {
        self.link_between(block, NIL, self.head);
    }

    fn push_back(&mut self, block: usize) {
        self.link_between(block, self.tail, NIL);
    }

    fn insert_after(&mut self, anchor: usize, block: usize) {
        let next = self.next(anchor);
        self.link_between(block, anchor, next);
    }

    /// Insert in address order: O(free blocks).
    fn insert_sorted(&mut self, block: usize) {
        let mut next = self.head;
        while next != NIL && next < block {
            next = self.next(next);
        }
        let prev = if next == NIL { self.tail } else { self.prev(next) };
        self.link_between(block, prev, next);
    }

    fn unlink(&mut self, block: usize) {
        let (prev, next) = (self.prev(block), self.next(block));
        if prev == NIL {
            self.head = next;
        } else {
            self.set_next(prev, next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.set_prev(next, prev);
        }
        if self.rover == block {
            self.rover = next;
        }
    }

    /// Put `new` in the list where `old` was.
    fn replace(&mut self, old: usize, new: usize) {
        let (prev, next) = (self.prev(old), self.next(old));
        self.link_between(new, prev, next);
        if self.rover == old {
            self.rover = new;
        }
    }

    /// Insert a block that has just become free, by the order's rule.
    fn insert_freed(&mut self, block: usize) {
        match self.config.order {
            Order::Lifo => self.push_front(block),
            Order::Fifo => self.push_back(block),
            Order::Address => self.insert_sorted(block),
        }
    }

    // ---- placement -------------------------------------------------------

    /// Block size for a request of `size` bytes, or `None` if it overflows.
    #[inline]
    fn block_size_for(size: usize) -> Option<usize> {
        let needed = size.checked_add(WORD + GRANULE - 1)? & !(GRANULE - 1);
        Some(needed.max(MIN_BLOCK))
    }

    /// Bytes to skip at the front of a free block so that the payload is
    /// aligned; the skipped bytes must form a block of their own (0 or at
    /// least `MIN_BLOCK`). `None` if the request does not fit.
    #[inline]
    fn fit(block: usize, block_size: usize, needed: usize, align: usize) -> Option<usize> {
        if align <= GRANULE {
            return (block_size >= needed).then_some(0);
        }
        let payload = block + WORD;
        let mut gap = payload.next_multiple_of(align) - payload;
        if gap != 0 && gap < MIN_BLOCK {
            // align >= 32 = MIN_BLOCK, so one more step makes the gap a block.
            gap += align;
        }
        (gap + needed <= block_size).then_some(gap)
    }

    /// Find a free block for `needed` bytes aligned to `align`: `(block, gap)`.
    fn find(&mut self, needed: usize, align: usize) -> Option<(usize, usize)> {
        let mut inspected = 0u64;
        let found = match self.config.fit {
            Fit::First => {
                let mut block = self.head;
                loop {
                    if block == NIL {
                        break None;
                    }
                    inspected += 1;
                    if let Some(gap) = FreeList::fit(block, self.size(block), needed, align) {
                        break Some((block, gap));
                    }
                    block = self.next(block);
                }
            }
            Fit::Next => {
                let start = if self.rover == NIL { self.head } else { self.rover };
                let mut block = start;
                loop {
                    if block == NIL {
                        break None;
                    }
                    inspected += 1;
                    if let Some(gap) = FreeList::fit(block, self.size(block), needed, align) {
                        break Some((block, gap));
                    }
                    block = self.next(block);
                    if block == NIL {
                        block = self.head;
                    }
                    if block == start {
                        break None;
                    }
                }
            }
            Fit::Best | Fit::Worst => {
                let best = self.config.fit == Fit::Best;
                let mut chosen: Option<(usize, usize, usize)> = None;
                let mut block = self.head;
                while block != NIL {
                    inspected += 1;
                    let size = self.size(block);
                    if let Some(gap) = FreeList::fit(block, size, needed, align) {
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
                    block = self.next(block);
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
        let block_size = self.size(block);
        let successor = self.next(block);
        let (start, available, prev_allocated) = if gap > 0 {
            // The skipped front stays a free block, in place in the list.
            let prev_allocated = self.prev_allocated(block);
            self.put_free(block, gap, prev_allocated);
            self.splits += 1;
            (block + gap, block_size - gap, false)
        } else {
            (block, block_size, self.prev_allocated(block))
        };
        self.free_bytes -= available;
        let remainder = available - needed;
        let granted = if remainder >= MIN_BLOCK {
            // List first, tags second, so that no link is read after a tag
            // may have overwritten it. The block after `rest` followed a
            // free block and still does.
            let rest = start + needed;
            if gap > 0 {
                self.insert_after(block, rest);
                self.free_blocks += 1;
            } else {
                self.replace(block, rest);
            }
            self.put_allocated(start, needed, prev_allocated);
            self.put_free(rest, remainder, true);
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
            self.put_allocated(start, available, prev_allocated);
            self.set_prev_allocated(start + available, true);
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
        let next_free = !self.is_allocated(next_block);
        let prev_free = !self.prev_allocated(block);
        let (mut start, mut merged) = (block, size);
        self.free_bytes += size;
        self.free_blocks += 1;
        let address_order = self.config.order == Order::Address;
        // Under address order the merged block keeps the place of a free
        // neighbour; otherwise it is inserted by the order's rule.
        let mut placed = false;
        if next_free {
            merged += self.size(next_block);
            if address_order {
                self.replace(next_block, block);
                placed = true;
            } else {
                self.unlink(next_block);
            }
            self.free_blocks -= 1;
            self.coalesces += 1;
        }
        if prev_free {
            let prev_size = (self.arena.load_word(block - WORD) & SIZE_MASK) as usize;
            start = block - prev_size;
            merged += prev_size;
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
        let prev_allocated = self.prev_allocated(start);
        self.put_free(start, merged, prev_allocated);
        // The successor is allocated (a free one was merged above).
        self.set_prev_allocated(start + merged, false);
        if !placed {
            self.insert_freed(start);
        }
    }

    /// Grow or shrink the block at `block` in place to `needed` bytes, if the
    /// heap allows it. Returns whether it did.
    fn resize_in_place(&mut self, block: usize, needed: usize) -> bool {
        let size = self.size(block);
        let prev_allocated = self.prev_allocated(block);
        if needed <= size {
            let remainder = size - needed;
            if remainder >= MIN_BLOCK {
                self.put_allocated(block, needed, prev_allocated);
                // The tail is briefly an allocated block, then released.
                self.put_allocated(block + needed, remainder, true);
                self.granted_bytes -= remainder;
                self.splits += 1;
                self.release(block + needed, remainder);
            }
            return true;
        }
        let next_block = block + size;
        if self.is_allocated(next_block) {
            return false;
        }
        let next_size = self.size(next_block);
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
            self.put_allocated(block, needed, prev_allocated);
            self.put_free(rest, remainder, true);
            self.free_bytes += remainder;
            self.splits += 1;
            needed
        } else {
            self.unlink(next_block);
            self.free_blocks -= 1;
            self.put_allocated(block, available, prev_allocated);
            self.set_prev_allocated(block + available, true);
            available
        };
        self.granted_bytes += granted - size;
        self.footprint_bytes = self.footprint_bytes.max(block + granted);
        true
    }

    /// The block whose payload is at `ptr`.
    #[inline]
    fn block_of(&self, ptr: NonNull<u8>) -> usize {
        self.arena.offset_of_owned(ptr) - WORD
    }
}

impl Allocator for FreeList {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() > self.arena.align() {
            return Err(AllocError::Unsupported("alignment above the arena's"));
        }
        let needed = FreeList::block_size_for(layout.size()).ok_or(AllocError::OutOfMemory)?;
        let (block, gap) = self.find(needed, layout.align()).ok_or(AllocError::OutOfMemory)?;
        let start = self.take(block, gap, needed);
        self.live_blocks += 1;
        self.requested_bytes += layout.size();
        Ok(self.arena.ptr_at(start + WORD))
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let block = self.block_of(ptr);
        debug_assert!(self.is_allocated(block), "free of a block that is not allocated, at {block}");
        let size = self.size(block);
        self.live_blocks -= 1;
        self.requested_bytes -= layout.size();
        self.granted_bytes -= size;
        self.release(block, size);
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let needed = FreeList::block_size_for(new_size).ok_or(AllocError::OutOfMemory)?;
        let block = self.block_of(ptr);
        if self.resize_in_place(block, needed) {
            self.requested_bytes = self.requested_bytes - old.size() + new_size;
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { heaplab_core::realloc_by_moving(self, ptr, old, new_size) }
    }

    fn granted(&self, ptr: NonNull<u8>, _layout: Layout) -> usize {
        self.size(self.block_of(ptr))
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        // The header and the padding to the granule are overhead; the
        // minimum block and an unsplittable remainder are rounding.
        let padded = (layout.size() + WORD).next_multiple_of(GRANULE);
        let overhead = padded - layout.size();
        Waste { rounding: self.granted(ptr, layout) - padded, overhead }
    }

    fn into_arena(self) -> Arena {
        self.arena
    }

    fn stats(&self) -> HeapStats {
        HeapStats {
            arena_bytes: self.arena.len(),
            live_blocks: self.live_blocks,
            requested_bytes: self.requested_bytes,
            granted_bytes: self.granted_bytes,
            metadata_bytes: self.metadata_bytes,
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
        let mut block = self.head;
        while block != NIL {
            visit(block, self.size(block));
            block = self.next(block);
        }
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        // Walk the blocks in address order.
        let mut free_in_heap = Vec::new();
        let (mut granted, mut free) = (0, 0);
        let mut block = FIRST_BLOCK;
        let mut previous_allocated = true;
        let mut previous_free = false;
        while block < self.epilogue {
            let header = self.header(block);
            let size = (header & SIZE_MASK) as usize;
            ensure!(size >= MIN_BLOCK, @block, "block size {size} below the minimum {MIN_BLOCK}");
            ensure!(block + size <= self.epilogue, @block, "block of {size} bytes runs past the epilogue at {}", self.epilogue);
            ensure!(
                (header & PREV_ALLOCATED != 0) == previous_allocated,
                @block,
                "prev-allocated bit says {}, the previous block is {}",
                header & PREV_ALLOCATED != 0,
                if previous_allocated { "allocated" } else { "free" }
            );
            let allocated = header & ALLOCATED != 0;
            if allocated {
                granted += size;
            } else {
                ensure!(!previous_free, @block, "two adjacent free blocks were not coalesced");
                let footer = self.arena.load_word(block + size - WORD);
                ensure!(footer == header, @block, "footer {footer:#x} differs from header {header:#x}");
                free += size;
                free_in_heap.push(block);
            }
            previous_allocated = allocated;
            previous_free = !allocated;
            block += size;
        }
        ensure!(block == self.epilogue, @block, "blocks end at {block}, not at the epilogue {}", self.epilogue);
        let epilogue = self.header(self.epilogue);
        ensure!(epilogue & SIZE_MASK == 0 && epilogue & ALLOCATED != 0, @self.epilogue, "epilogue header is {epilogue:#x}");
        ensure!((epilogue & PREV_ALLOCATED != 0) == previous_allocated, @self.epilogue, "epilogue's prev-allocated bit is wrong");

        // Walk the list: every member a free block of the heap, links
        // consistent both ways, every free block listed exactly once.
        let mut listed = 0;
        let mut prev = NIL;
        let mut block = self.head;
        let mut rover_found = self.rover == NIL;
        while block != NIL {
            ensure!(
                listed < free_in_heap.len(),
                "the free list is longer than the {} free blocks (a cycle?)",
                free_in_heap.len()
            );
            ensure!(free_in_heap.binary_search(&block).is_ok(), @block, "listed block is not a free block of the heap");
            ensure!(self.prev(block) == prev, @block, "prev link {} should be {prev}", self.prev(block));
            if self.config.order == Order::Address {
                ensure!(prev == NIL || prev < block, @block, "address-ordered list out of order after {prev}");
            }
            rover_found |= block == self.rover;
            listed += 1;
            prev = block;
            block = self.next(block);
        }
        ensure!(self.tail == prev, "tail is {}, the list ends at {prev}", self.tail);
        ensure!(listed == free_in_heap.len(), "{listed} blocks listed, {} free in the heap", free_in_heap.len());
        ensure!(rover_found, @self.rover, "the roving pointer is not in the free list");
        ensure!(self.free_blocks == listed, "free block counter {} but {listed} blocks", self.free_blocks);
        ensure!(self.free_bytes == free, "free bytes counter {} but {free} in free blocks", self.free_bytes);
        ensure!(
            self.granted_bytes == granted,
            "granted bytes counter {} but {granted} in allocated blocks",
            self.granted_bytes
        );
        ensure!(
            granted + free + self.metadata_bytes == self.arena.len(),
            "granted {granted} + free {free} + metadata {} != arena {}",
            self.metadata_bytes,
            self.arena.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
