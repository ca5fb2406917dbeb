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
//! `free` reads the block size from the header, as a C `free` would (and
//! finds the header through the back word before an over-aligned payload):
//! the layout it is given is used only for the requested-bytes counter.
//!
//! # Policies
//!
//! A request of `n` bytes needs a block of `max(32, round16(n + 8))` bytes.
//! Alignments above 16 are served by an aligned payload inside a free block:
//! the bytes skipped before it (a multiple of 16, below the alignment) stay
//! part of the granted block, as alignment padding, with a back word before
//! the payload that finds the header (rlsf places over-aligned blocks so).
//! A page-aligned page, whose 8-byte header pushes the next aligned payload
//! a page further on, thus costs two pages as granted bytes rather than a
//! page and a 4080-byte hole that no page request could use.
//!
//! **Placement** (`fit=`), which free block a request takes:
//! - `first`: the first block in list order that fits. O(free blocks) worst
//!   case; under address order O(log regions + blocks in the regions that
//!   may hold a fit), through the address index ([`index`]).
//! - `next`: like first fit, but the search starts where the last one ended (a
//!   roving pointer, Knuth's modification) and wraps around. O(free blocks).
//! - `best`: the smallest block that fits (an exact fit ends the search early;
//!   ties go to the first in list order). O(free blocks); under address
//!   order the index skips the regions no block of which fits.
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
//!   fit. The place is found from the first free block of the freed block's
//!   region (a walk within the region, see [`index`]), unless a free
//!   neighbour's place is taken over. The index changes no decision: every
//!   block lands where a walk of the whole list would put it, which a test
//!   holds it to.
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
//!   shape. Best and worst fit always scan the whole list (under address
//!   order the index spares first and best fit most of it).
//! - Next fit spreads allocations over the whole heap and, with LIFO or FIFO
//!   orders, interleaves blocks of different lifetimes: it fragments more than
//!   first fit on real traces (Wilson et al. 1995; Johnstone & Wilson 1998).
//! - Worst fit carves up the large blocks first and is the worst of the four
//!   at keeping room for large requests.
//! - Address-ordered insertion costs a walk of the freed block's region
//!   unless a neighbour is free.
//! - Every block carries an 8-byte header and a 32-byte minimum, so small
//!   requests waste a large fraction (1-byte requests use 32 bytes).

pub mod index;
pub mod tags;

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::spec::choice_name;
use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, FreeListView, HeapStats, InvariantViolation, Kept,
    Reports, SetupError, Spec, SpecError, Waste, ensure,
};

use index::AddressIndex;
pub use tags::MIN_BLOCK;
use tags::{FIRST_BLOCK, FreeLists, GRANULE, ListEnds, Mem, NIL, TagHeap, block_size_for, fit};

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
    type Timed = FreeList<false>;
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
        FreeList::new(arena, *self).map_err(|reason| self.build_error(reason))
    }

    fn build_timed(&self, arena: Arena) -> Result<FreeList<false>, BuildError> {
        FreeList::new(arena, *self).map_err(|reason| self.build_error(reason))
    }

    fn as_send<V: heaplab_core::concurrent::SendVisitor>(&self, visitor: V) -> Option<V::Output> {
        Some(visitor.visit(self))
    }
}

/// The one free list, with its order and the next-fit rover: the part of
/// the allocator the boundary-tag engine asks about every change.
#[derive(Debug)]
struct OneList {
    config: Config,
    list: ListEnds,
    /// Next fit: the free block the next search starts from, or `NIL` for the
    /// head. Always `NIL` or a member of the list.
    rover: usize,
    /// For the address order: the regions' first blocks and size bounds,
    /// kept in step with the list (see [`index`]).
    index: Option<AddressIndex>,
}

impl OneList {
    fn new(config: Config, arena_bytes: usize) -> OneList {
        let index = (config.order == Order::Address).then(|| AddressIndex::new(arena_bytes));
        OneList { config, list: ListEnds::EMPTY, rover: NIL, index }
    }

    /// Take `block` out, keeping the rover and the index on the list.
    ///
    /// # Safety
    /// `block` is a member of the list.
    #[inline(always)]
    unsafe fn unlink(&mut self, mem: Mem, block: usize) -> usize {
        // SAFETY: the caller's guarantee; members are free blocks.
        let next = unsafe { mem.unlink_ends(&mut self.list, block) };
        if let Some(index) = &mut self.index {
            index.unlisted(block, next);
        }
        if self.rover == block {
            self.rover = next;
        }
        next
    }

    /// Put `new` of `new_size` bytes where the member `old` was, the rover
    /// and the index following.
    ///
    /// # Safety
    /// `old` is a member; `new` a free block not in the list, whose place
    /// in address order (for that order) is `old`'s.
    #[inline(always)]
    unsafe fn replace(&mut self, mem: Mem, old: usize, new: usize, new_size: usize) {
        if old != new {
            // SAFETY: the caller's guarantee.
            unsafe {
                if let Some(index) = &mut self.index {
                    index.unlisted(old, mem.next(old));
                }
                mem.replace_ends(&mut self.list, old, new);
            }
            if self.rover == old {
                self.rover = new;
            }
        }
        if let Some(index) = &mut self.index {
            index.listed(new, new_size);
        }
    }

    /// Insert a block that has just become free, by the order's rule.
    ///
    /// # Safety
    /// `block` is a free block not in the list.
    #[inline(always)]
    unsafe fn insert_by_order(&mut self, mem: Mem, block: usize, size: usize) {
        // SAFETY: the caller's guarantee; every block followed is a member.
        unsafe {
            match self.config.order {
                Order::Lifo => {
                    let head = self.list.head;
                    mem.link_between(&mut self.list, block, NIL, head);
                }
                Order::Fifo => {
                    let tail = self.list.tail;
                    mem.link_between(&mut self.list, block, tail, NIL);
                }
                Order::Address => {
                    let (prev, next) = self.address_place(mem, block);
                    mem.link_between(&mut self.list, block, prev, next);
                    if let Some(index) = &mut self.index {
                        index.listed(block, size);
                    }
                }
            }
        }
    }

    /// The neighbours a block not in the address-ordered list goes between:
    /// found from the first block of its region (a walk within the region),
    /// else from the first block after it.
    ///
    /// # Safety
    /// `block` is a free block not in the list.
    #[inline(always)]
    unsafe fn address_place(&self, mem: Mem, block: usize) -> (usize, usize) {
        let Some(index) = &self.index else {
            // Without an index (the tests' reference): the walk from the head.
            // SAFETY: every block followed is a member of the list.
            unsafe {
                let mut next = self.list.head;
                while next != NIL && next < block {
                    next = mem.next(next);
                }
                let prev = if next == NIL { self.list.tail } else { mem.prev(next) };
                return (prev, next);
            }
        };
        let region = index.region(block);
        let first = index.first(region);
        // SAFETY: every block followed is a member of the list.
        unsafe {
            if first != NIL && first < block {
                let mut prev = first;
                loop {
                    let next = mem.next(prev);
                    if next == NIL || next > block {
                        return (prev, next);
                    }
                    prev = next;
                }
            }
            let next = if first != NIL { first } else { index.first_after(region) };
            let prev = if next == NIL { self.list.tail } else { mem.prev(next) };
            (prev, next)
        }
    }

    /// Find a free block for `needed` bytes aligned to `align`: `(block,
    /// gap)`, and the blocks inspected.
    #[inline(always)]
    fn find(&mut self, mem: Mem, needed: usize, align: usize) -> (Option<(usize, usize)>, u64) {
        // SAFETY: the blocks followed are members of the list, free blocks
        // of the tiling.
        let size = |block: usize| unsafe { mem.size_of(block) };
        // SAFETY: as for `size`.
        let next = |block: usize| unsafe { mem.next(block) };
        let fits = |block: usize| fit(block, size(block), needed, align);
        let mut inspected = 0u64;
        if self.index.is_some() && matches!(self.config.fit, Fit::First | Fit::Best) {
            return self.find_indexed(mem, needed, align);
        }
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
                    block = next(block);
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
                    block = next(block);
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
                    let block_size = size(block);
                    if let Some(gap) = fits(block) {
                        let better = match chosen {
                            None => true,
                            Some((_, _, chosen_size)) => {
                                if best {
                                    block_size < chosen_size
                                } else {
                                    block_size > chosen_size
                                }
                            }
                        };
                        if better {
                            chosen = Some((block, gap, block_size));
                            if best && block_size == gap + needed {
                                break;
                            }
                        }
                    }
                    block = next(block);
                }
                chosen.map(|(block, gap, _)| (block, gap))
            }
        };
        (found, inspected)
    }
}

impl OneList {
    /// Address-ordered first fit and best fit through the index: the
    /// regions are visited in address order, skipping those whose bound
    /// rules a fit out, and each visited region's blocks in list order. A
    /// region walked to its end tightens its bound to the largest block
    /// seen. Returns what the plain walk would (see [`index`]).
    #[inline(always)]
    fn find_indexed(&mut self, mem: Mem, needed: usize, align: usize) -> (Option<(usize, usize)>, u64) {
        let best = self.config.fit == Fit::Best;
        let Some(index) = &mut self.index else { unreachable!("called with an index") };
        let mut inspected = 0u64;
        let mut chosen: Option<(usize, usize, usize)> = None;
        let mut from = 0;
        while let Some(region) = index.candidate(from, needed) {
            let mut block = index.first(region);
            let mut largest = 0;
            while block != NIL && index.region(block) == region {
                inspected += 1;
                // SAFETY: `block` is a member of the list: a free block.
                let size = unsafe { mem.size_of(block) };
                if let Some(gap) = fit(block, size, needed, align) {
                    if !best {
                        return (Some((block, gap)), inspected);
                    }
                    if chosen.is_none_or(|(_, _, chosen_size)| size < chosen_size) {
                        chosen = Some((block, gap, size));
                        if size == gap + needed {
                            return (Some((block, gap)), inspected);
                        }
                    }
                }
                largest = largest.max(size);
                // SAFETY: as above.
                block = unsafe { mem.next(block) };
            }
            index.tighten(region, largest);
            from = region + 1;
        }
        (chosen.map(|(block, gap, _)| (block, gap)), inspected)
    }
}

// SAFETY: every method links and unlinks only the blocks it is given and
// members of the list; `find` returns members.
unsafe impl FreeLists for OneList {
    #[inline(always)]
    fn insert(&mut self, mem: Mem, block: usize, size: usize) {
        // SAFETY: the engine gives a free block not in the list.
        unsafe { self.insert_by_order(mem, block, size) }
    }

    #[inline(always)]
    fn remove(&mut self, mem: Mem, block: usize, _size: usize) {
        // SAFETY: the engine gives a member.
        unsafe { self.unlink(mem, block) };
    }

    /// A neighbour grew into the front of `old`: the rest keeps its place.
    #[inline(always)]
    fn moved(&mut self, mem: Mem, old: usize, _: usize, new: usize, new_size: usize) {
        // SAFETY: `old` is a member, `new` the free rest of it.
        unsafe { self.replace(mem, old, new, new_size) }
    }

    #[inline(always)]
    fn taken(&mut self, mem: Mem, block: usize, _size: usize) {
        // SAFETY: the engine gives a member.
        let successor = unsafe { self.unlink(mem, block) };
        if self.config.fit == Fit::Next {
            self.rover = successor;
        }
    }

    /// The remainder of a split keeps the block's place, whatever the order.
    #[inline(always)]
    fn split(&mut self, mem: Mem, block: usize, _: usize, rest: usize, rest_size: usize) {
        // SAFETY: `block` is a member, `rest` the free rest of it.
        unsafe { self.replace(mem, block, rest, rest_size) };
        if self.config.fit == Fit::Next {
            self.rover = rest;
        }
    }

    /// Under address order the merged block keeps its neighbour's place;
    /// otherwise it is re-inserted by the order's rule.
    #[inline(always)]
    fn merged(&mut self, mem: Mem, old: usize, _: usize, start: usize, size: usize) {
        // SAFETY: `old` is a member; `start` the merged free block, which
        // takes its place in address order (no free block lies between).
        unsafe {
            if self.config.order == Order::Address {
                self.replace(mem, old, start, size);
            } else {
                self.unlink(mem, old);
                self.insert_by_order(mem, start, size);
            }
        }
    }
}

/// The naive free-list allocator. See the crate documentation for its policy.
/// `C`: whether it keeps the ledger of counters (see [`heaplab_core::ledger`]).
#[derive(Debug)]
pub struct FreeList<const C: bool = true> {
    heap: TagHeap<C>,
    lists: OneList,
}

impl<const C: bool> FreeList<C> {
    /// Lay out an empty heap over `arena`: one free block between the pad
    /// word and the epilogue.
    pub fn new(arena: Arena, config: Config) -> Result<FreeList<C>, SetupError> {
        let arena_bytes = arena.len();
        let (heap, size) = TagHeap::new(arena)?;
        let mut lists = OneList::new(config, arena_bytes);
        lists.insert(heap.mem(), FIRST_BLOCK, size);
        Ok(FreeList { heap, lists })
    }

    /// Allocate `size` bytes aligned to `align` (at most the arena's).
    #[inline(always)]
    fn alloc_aligned(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let needed = block_size_for(size).ok_or(AllocError::OutOfMemory)?;
        let (found, inspected) = self.lists.find(self.heap.mem(), needed, align);
        self.heap.ledger.inspected(inspected);
        let (block, gap) = found.ok_or(AllocError::OutOfMemory)?;
        // SAFETY: `find` returns a listed free block and its fit's gap.
        let (payload, granted) = unsafe { self.heap.take(&mut self.lists, block, gap, needed) };
        self.heap.ledger.allocated(size, granted);
        Ok(payload)
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.lists.config
    }

    /// The same allocator without the address index: the plain walks, the
    /// reference the index is tested against.
    #[cfg(test)]
    fn without_index(arena: Arena, config: Config) -> Result<FreeList<C>, SetupError> {
        let mut this = FreeList::new(arena, config)?;
        this.lists.index = None;
        Ok(this)
    }
}

impl<const C: bool> Allocator for FreeList<C> {
    fn arena(&self) -> &Arena {
        self.heap.arena()
    }

    // Inlined into the replay loop: a call here would cost a third of the
    // allocator's own instructions in register saves and restores. (rlsf's
    // allocate and deallocate are calls; the harness times the whole op
    // either way.)
    #[inline(always)]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // The common alignment is its own path, compiled with the alignment
        // a constant: no padding to look for.
        if layout.align() <= GRANULE {
            self.alloc_aligned(layout.size(), GRANULE)
        } else if layout.align() <= self.heap.arena().align() {
            self.alloc_aligned(layout.size(), layout.align())
        } else {
            Err(AllocError::Unsupported("alignment above the arena's"))
        }
    }

    #[inline(always)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.heap.free_payload(&mut self.lists, ptr, layout) }
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller (twice: in place, else by moving).
        unsafe {
            if self.heap.realloc_in_place(&mut self.lists, ptr, old, new_size) {
                return Ok(ptr);
            }
            heaplab_core::realloc_by_moving(self, ptr, old, new_size)
        }
    }

    fn granted(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        self.heap.size(self.heap.block_of(ptr, layout.align()))
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        self.heap.waste(ptr, layout)
    }

    fn into_arena(self) -> Arena {
        self.heap.into_arena()
    }

    fn stats(&self) -> HeapStats {
        let side = self.lists.index.as_ref().map_or(0, AddressIndex::side_bytes);
        self.heap.ledger.stats(self.heap.arena().len(), self.heap.metadata_bytes(), side, Kept::ALL)
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        self.heap.for_each_in(self.lists.list.head, visit);
    }

    fn free_lists(&self) -> Option<FreeListView> {
        let config = self.lists.config;
        let mut blocks = Vec::new();
        self.heap.for_each_in(self.lists.list.head, &mut |block, _| blocks.push((0, block)));
        let order = match config.order {
            Order::Lifo => "LIFO order: a freed block goes to the front",
            Order::Fifo => "FIFO order: a freed block goes to the back",
            Order::Address => "address order",
        };
        Some(FreeListView {
            names: vec![format!("the free list, {order}")],
            blocks,
            rover: (config.fit == Fit::Next && self.lists.rover != NIL).then_some(self.lists.rover),
            second_level: None,
        })
    }

    fn reports(&self) -> Reports {
        if C { Reports::ALL } else { Reports::ALL.uncounted() }
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        let walk = self.heap.walk()?;
        let members = self.heap.list_members_ends(&self.lists.list, &walk)?;
        ensure!(
            members.len() == walk.free_blocks.len(),
            "{} blocks listed, {} free in the heap",
            members.len(),
            walk.free_blocks.len()
        );
        if self.lists.config.order == Order::Address {
            ensure!(members.windows(2).all(|pair| pair[0] < pair[1]), "the address-ordered list is out of order");
        }
        let rover = self.lists.rover;
        ensure!(rover == NIL || members.contains(&rover), @rover, "the roving pointer is not in the free list");
        if let Some(index) = &self.lists.index {
            let sized: Vec<(usize, usize)> = members.iter().map(|&block| (block, self.heap.size(block))).collect();
            index.check(&sized)?;
        }
        self.heap.ledger.identity(
            walk.granted_bytes,
            walk.free_bytes,
            walk.free_blocks.len(),
            self.heap.metadata_bytes(),
            self.heap.arena().len(),
        )
    }
}

#[cfg(test)]
mod tests;
