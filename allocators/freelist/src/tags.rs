//! The boundary-tag engine shared by the allocators that keep free blocks in
//! doubly linked lists inside the arena: this crate's naive list, and the
//! segregated fits and two-level segregated fit of `heaplab-segregated`.
//!
//! ```text
//! offset 0      8                                              len-8   len
//!        | lead | block | block | block | …                   | epilogue |
//!
//! allocated block:  [header | payload …                          ]
//! over-aligned:     [header | padding … | back word | payload …  ]
//! free block:       [header | next | prev | …            | footer]
//! ```
//!
//! - Every block starts at an offset ≡ 8 (mod 16), so a payload right after
//!   the header is 16-byte aligned, and its size is a multiple of 16, at least
//!   [`MIN_BLOCK`] = 32 bytes (header, two links, footer).
//! - The **header** word holds the block size with two flag bits: bit 0, this
//!   block is allocated; bit 1, the block before it is allocated. Free blocks
//!   repeat the header in a **footer** (their last word), so a freed block
//!   finds a free predecessor in O(1); allocated blocks need no footer since
//!   their successor's bit 1 says they are in use (the CS:APP optimisation).
//! - Free blocks hold list links (arena offsets of the next and previous
//!   free block in their list, [`NIL`] for none) in their first payload words.
//! - An **epilogue** header (size 0, allocated) ends the heap, so the last
//!   block's successor always exists. The lead word at offset 0 (it puts
//!   the first block at offset 8) and the epilogue are the metadata M;
//!   headers of allocated blocks count in their granted size.
//! - A payload aligned beyond 16 bytes starts where the alignment falls,
//!   a multiple of 16 bytes into its block ([`padding`]). The padding is
//!   absorbed into the allocated block, and the word just before the
//!   payload, the **back word**, holds the block's offset with the `PAD`
//!   bit (never set in a header), so `free` finds the header from the
//!   payload in O(1).
//!
//! # One engine, many list organisations
//!
//! [`TagHeap`] owns everything the allocators share: splitting a free block
//! for a request ([`TagHeap::take`]), freeing with immediate coalescing
//! ([`TagHeap::release`]), resizing in place ([`TagHeap::resize_in_place`]),
//! and the [`Ledger`] of counters. What differs between them is how free
//! blocks are organised and searched: that is a [`FreeLists`], told of each
//! change by event (a block inserted, removed, split, merged, moved), so that
//! a list can keep a block's place (address order, the remainder of a split)
//! or re-file it by size (segregated lists) as its policy says.
//!
//! # Memory through one base pointer
//!
//! Tags and links are read and written through a [`Mem`], a copy of the
//! arena's base pointer that a call takes once and keeps in a register:
//! reading the base from the arena after every store (which the compiler
//! must, as a store through a raw pointer might have changed it) would add
//! a load to every tag access.
//!
//! # Bounds, proven once
//!
//! The fast path reads and writes tags without a bounds check per word. The
//! **tiling invariant** makes that sound: the blocks tile
//! `FIRST_BLOCK..epilogue` exactly, each header gives its block's true size,
//! a free block's footer equals its header, and `epilogue + 8 <= arena.len()`
//! ([`TagHeap::walk`] checks all of it, and `check()` calls it). A block
//! offset reached from a list or from a live block's payload therefore has
//! its header, links and footer inside the arena. The entry points name
//! where their block offsets come from in `# Safety`; debug builds check
//! every access anyway.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::{Arena, InvariantViolation, Ledger, SetupError, Waste, ensure};

/// Bytes in a tag word.
pub const WORD: usize = 8;
/// Block sizes are multiples of this, and payloads are aligned to it.
pub const GRANULE: usize = 16;
/// Smallest block: header, next and prev links, footer.
pub const MIN_BLOCK: usize = 32;
/// Offset of the first block: the lead word before it puts payloads on
/// 16-byte boundaries.
pub const FIRST_BLOCK: usize = 8;
/// The null link: no block starts at offset 0.
pub const NIL: usize = 0;
/// Header bit: this block is allocated.
const ALLOCATED: u64 = 1;
/// Header bit: the block before this one is allocated.
const PREV_ALLOCATED: u64 = 2;
/// The word before an over-aligned payload, when the block starts further
/// back, holds the block's offset with this bit set (never set in a header).
const PAD: u64 = 4;
/// The size part of a header.
const SIZE_MASK: u64 = !(GRANULE as u64 - 1);

/// The two ends of one doubly linked free list; `NIL` for an empty list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListEnds {
    /// First block, or `NIL`; `NIL` iff `tail` is.
    pub head: usize,
    /// Last block, or `NIL`.
    pub tail: usize,
}

impl ListEnds {
    /// An empty list.
    pub const EMPTY: ListEnds = ListEnds { head: NIL, tail: NIL };

    /// Is the list empty?
    pub fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// How an allocator organises its free blocks: told of every change the
/// engine makes, by event, so that each organisation can keep or change a
/// block's place as its policy says. Every method gets the block's size,
/// since its tags may not be written yet (the engine moves list nodes
/// before it writes tags that could overlap their links).
///
/// The defaults re-file by size: remove the old block, insert the new one.
///
/// # Safety
/// The engine trusts the lists with unchecked memory accesses: an
/// implementation links and unlinks only the blocks it is given (free
/// blocks of the heap) and the blocks already in its lists, and a search
/// that feeds [`TagHeap::take`] returns only listed blocks.
pub unsafe trait FreeLists {
    /// `block` of `size` bytes became free and merged with nothing.
    fn insert(&mut self, mem: Mem, block: usize, size: usize);

    /// The listed `block` of `size` bytes leaves the lists (merged into a
    /// freed neighbour, or taken by a block growing in place).
    fn remove(&mut self, mem: Mem, block: usize, size: usize);

    /// The listed `old` now starts at `new` with `new_size` bytes: a
    /// neighbour grew into its front.
    #[inline(always)]
    fn moved(&mut self, mem: Mem, old: usize, old_size: usize, new: usize, new_size: usize) {
        self.remove(mem, old, old_size);
        self.insert(mem, new, new_size);
    }

    /// The listed `block`, found by a search, was allocated whole.
    #[inline(always)]
    fn taken(&mut self, mem: Mem, block: usize, size: usize) {
        self.remove(mem, block, size);
    }

    /// The listed `block`, found by a search, was split: its front was
    /// allocated and `rest` of `rest_size` bytes is what stays free.
    #[inline(always)]
    fn split(&mut self, mem: Mem, block: usize, size: usize, rest: usize, rest_size: usize) {
        self.moved(mem, block, size, rest, rest_size);
    }

    /// A block being freed merged with the listed free neighbour `old` into
    /// one free block `start..start + size`.
    #[inline(always)]
    fn merged(&mut self, mem: Mem, old: usize, old_size: usize, start: usize, size: usize) {
        self.moved(mem, old, old_size, start, size);
    }
}

/// The arena's memory as the fast path sees it: its base pointer, copied
/// once per call (see the module docs). Every access is unchecked in
/// release builds; the `# Safety` of each method says which words it may
/// touch, all of them inside the tiled range by the tiling invariant.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    base: NonNull<u8>,
    /// The arena's length, for the debug checks.
    #[cfg(debug_assertions)]
    len: usize,
}

impl Mem {
    #[inline(always)]
    fn of(arena: &Arena) -> Mem {
        Mem {
            base: arena.base(),
            #[cfg(debug_assertions)]
            len: arena.len(),
        }
    }

    /// The word at `offset`.
    ///
    /// # Safety
    /// `offset` is a header, link, footer or back word of a block of the
    /// tiling (or the epilogue).
    #[inline(always)]
    pub unsafe fn word(self, offset: usize) -> u64 {
        #[cfg(debug_assertions)]
        assert!(offset + WORD <= self.len, "word at {offset} outside an arena of {} bytes", self.len);
        // SAFETY: the caller's guarantee puts the word inside the arena,
        // which owns it and keeps it initialised.
        unsafe { self.base.add(offset).cast::<u64>().read_unaligned() }
    }

    /// Store the word at `offset`.
    ///
    /// # Safety
    /// As for [`Mem::word`]; no reference into the arena is live.
    #[inline(always)]
    pub unsafe fn set_word(self, offset: usize, value: u64) {
        #[cfg(debug_assertions)]
        assert!(offset + WORD <= self.len, "word at {offset} outside an arena of {} bytes", self.len);
        // SAFETY: as in `word`; the heap's `&mut` access to its arena
        // excludes every other access while a call runs.
        unsafe { self.base.add(offset).cast::<u64>().write_unaligned(value) }
    }

    /// The pointer to `offset`.
    ///
    /// # Safety
    /// `offset` is inside a block of the tiling.
    #[inline(always)]
    unsafe fn ptr(self, offset: usize) -> NonNull<u8> {
        // SAFETY: inside the tiled range, inside the arena.
        unsafe { self.base.add(offset) }
    }

    /// Size of a block of the tiling.
    ///
    /// # Safety
    /// `block` is a block of the tiling (a listed free block, or the block
    /// of a live payload).
    #[inline(always)]
    pub unsafe fn size_of(self, block: usize) -> usize {
        // SAFETY: the caller's guarantee.
        (unsafe { self.word(block) } & SIZE_MASK) as usize
    }

    /// Next block in a free block's list.
    ///
    /// # Safety
    /// `block` is a free block of the tiling.
    #[inline(always)]
    pub unsafe fn next(self, block: usize) -> usize {
        // SAFETY: a free block is at least MIN_BLOCK long, so its link words
        // are inside it.
        unsafe { self.word(block + WORD) as usize }
    }

    /// Previous block in a free block's list.
    ///
    /// # Safety
    /// `block` is a free block of the tiling.
    #[inline(always)]
    pub unsafe fn prev(self, block: usize) -> usize {
        // SAFETY: as in `next`.
        unsafe { self.word(block + 2 * WORD) as usize }
    }

    /// Set a free block's next link.
    ///
    /// # Safety
    /// `block` is a free block of the tiling (its tags may not be written yet).
    #[inline(always)]
    pub unsafe fn set_next(self, block: usize, next: usize) {
        // SAFETY: as in `next`.
        unsafe { self.set_word(block + WORD, next as u64) }
    }

    /// Set a free block's previous link.
    ///
    /// # Safety
    /// As for [`Mem::set_next`].
    #[inline(always)]
    pub unsafe fn set_prev(self, block: usize, prev: usize) {
        // SAFETY: as in `next`.
        unsafe { self.set_word(block + 2 * WORD, prev as u64) }
    }

    /// Put `block` first in the list starting at `head` (a list with no tail).
    ///
    /// # Safety
    /// `block` and the list's members are free blocks of the tiling.
    #[inline(always)]
    pub unsafe fn push(self, head: &mut usize, block: usize) {
        let first = *head;
        // SAFETY: the caller's guarantee.
        unsafe {
            self.set_next(block, first);
            self.set_prev(block, NIL);
            if first != NIL {
                self.set_prev(first, block);
            }
        }
        *head = block;
    }

    /// Link `block` into `list` between `prev` and `next` (either may be `NIL`).
    ///
    /// # Safety
    /// `block` and the list's members are free blocks of the tiling, and
    /// `prev`, `next` are adjacent members (or `NIL` at an end).
    #[inline(always)]
    pub unsafe fn link_between(self, list: &mut ListEnds, block: usize, prev: usize, next: usize) {
        // SAFETY: the caller's guarantee.
        unsafe {
            self.set_prev(block, prev);
            self.set_next(block, next);
            if prev == NIL {
                list.head = block;
            } else {
                self.set_next(prev, block);
            }
            if next == NIL {
                list.tail = block;
            } else {
                self.set_prev(next, block);
            }
        }
    }

    /// Take `block` out of `list`; returns its successor.
    ///
    /// # Safety
    /// `block` is a member of `list`, whose members are free blocks of the tiling.
    #[inline(always)]
    pub unsafe fn unlink_ends(self, list: &mut ListEnds, block: usize) -> usize {
        // SAFETY: the caller's guarantee.
        unsafe {
            let (prev, next) = (self.prev(block), self.next(block));
            if prev == NIL {
                list.head = next;
            } else {
                self.set_next(prev, next);
            }
            if next == NIL {
                list.tail = prev;
            } else {
                self.set_prev(next, prev);
            }
            next
        }
    }

    /// Put `new` in `list` where the member `old` was.
    ///
    /// # Safety
    /// As for [`Mem::unlink_ends`], and `new` is a free block of the tiling.
    #[inline(always)]
    pub unsafe fn replace_ends(self, list: &mut ListEnds, old: usize, new: usize) {
        // SAFETY: the caller's guarantee.
        unsafe {
            let (prev, next) = (self.prev(old), self.next(old));
            self.link_between(list, new, prev, next);
        }
    }

    /// Write the header and footer of a free block.
    ///
    /// # Safety
    /// `block..block + size` lies inside the tiled range.
    #[inline(always)]
    unsafe fn put_free(self, block: usize, size: usize, prev_allocated: bool) {
        let tag = tag(size, false, prev_allocated);
        // SAFETY: header and footer of a block inside the tiled range.
        unsafe {
            self.set_word(block, tag);
            self.set_word(block + size - WORD, tag);
        }
    }

    /// Write the header of an allocated block.
    ///
    /// # Safety
    /// `block..block + size` lies inside the tiled range.
    #[inline(always)]
    unsafe fn put_allocated(self, block: usize, size: usize, prev_allocated: bool) {
        // SAFETY: the header of a block inside the tiled range.
        unsafe { self.set_word(block, tag(size, true, prev_allocated)) }
    }

    /// Set or clear the prev-allocated bit of an *allocated* block (or the
    /// epilogue): the successor of a block whose state changed. Free blocks
    /// never need it, since no two free blocks are adjacent.
    ///
    /// # Safety
    /// `block` is an allocated block of the tiling or the epilogue.
    #[inline(always)]
    unsafe fn mark_prev(self, block: usize, prev_allocated: bool) {
        // SAFETY: the caller's guarantee.
        unsafe {
            let header = self.word(block);
            debug_assert!(header & ALLOCATED != 0, "mark_prev on a free block at {block}");
            let header = if prev_allocated { header | PREV_ALLOCATED } else { header & !PREV_ALLOCATED };
            self.set_word(block, header);
        }
    }
}

/// The block a back word names, and its header: the path of over-aligned
/// payloads, kept out of line so that the common free stays short.
///
/// # Safety
/// `word` is the back word of a live over-aligned payload of the heap `mem`
/// is the memory of.
#[cold]
#[inline(never)]
unsafe fn padded_block(mem: Mem, word: u64) -> (usize, u64) {
    let block = (word & !(GRANULE as u64 - 1)) as usize | WORD;
    // SAFETY: the caller's guarantee: a block of the tiling.
    (block, unsafe { mem.word(block) })
}

/// A header word.
#[inline(always)]
pub fn tag(size: usize, allocated: bool, prev_allocated: bool) -> u64 {
    debug_assert_eq!(size % GRANULE, 0);
    size as u64 | if allocated { ALLOCATED } else { 0 } | if prev_allocated { PREV_ALLOCATED } else { 0 }
}

/// Block size for a request of `size` bytes, or `None` if it overflows.
#[inline(always)]
pub fn block_size_for(size: usize) -> Option<usize> {
    let needed = size.checked_add(WORD + GRANULE - 1)? & !(GRANULE - 1);
    Some(needed.max(MIN_BLOCK))
}

/// Bytes of padding between a free block's header and the payload of a
/// request aligned to `align`, if the block holds the padding and `needed`
/// bytes after it; `None` if it does not. The padding is a multiple of the
/// granule below `align` and stays part of the allocated block.
#[inline(always)]
pub fn fit(block: usize, block_size: usize, needed: usize, align: usize) -> Option<usize> {
    if align <= GRANULE {
        return (block_size >= needed).then_some(0);
    }
    let gap = padding(block, align);
    (gap + needed <= block_size).then_some(gap)
}

/// The padding [`fit`] would give `block` at `align` (a power of two
/// above the granule), for a block known to hold the request and its
/// largest padding (see [`max_padding`]): a mask, not a division.
#[inline(always)]
pub fn padding(block: usize, align: usize) -> usize {
    (block + WORD).wrapping_neg() & (align - 1)
}

/// The most padding [`fit`] can ask for at `align`: a block of at least
/// `needed + max_padding(align)` bytes fits the request wherever it starts.
#[inline(always)]
pub fn max_padding(align: usize) -> usize {
    align.saturating_sub(GRANULE)
}

/// A boundary-tagged heap over an arena, with the ledger of its counters
/// (kept when `C`, see [`heaplab_core::ledger`]).
#[derive(Debug)]
pub struct TagHeap<const C: bool = true> {
    arena: Arena,
    /// Offset of the epilogue header; blocks tile `FIRST_BLOCK..epilogue`
    /// exactly, and `epilogue + 8 <= arena.len()`.
    epilogue: usize,
    /// Live blocks, requested, granted and free bytes, footprint, splits,
    /// coalesces.
    pub ledger: Ledger<C>,
}

/// Whether the block a take carves is still in the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    Yes,
    No,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_a_granule_multiple_below_the_alignment() {
        for block in (8..8 + 4096).step_by(16) {
            for align in [32, 64, 4096] {
                let gap = fit(block, 1 << 20, 64, align).unwrap();
                assert!(gap.is_multiple_of(GRANULE) && gap <= max_padding(align), "{block} {align}: {gap}");
                assert_eq!((block + WORD + gap) % align, 0);
            }
        }
        assert_eq!(fit(8, 100, 64, 16), Some(0));
        assert_eq!(fit(8, 60, 64, 16), None);
    }
}

/// What a walk of all blocks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// Offsets of free blocks, in address order.
    pub free_blocks: Vec<usize>,
    /// Bytes in free blocks.
    pub free_bytes: usize,
    /// Bytes in allocated blocks.
    pub granted_bytes: usize,
}

impl<const C: bool> TagHeap<C> {
    /// Lay out an empty heap over `arena`: one free block (tagged, not yet
    /// in any list) from [`FIRST_BLOCK`] to the epilogue. Returns the heap
    /// and the free block's size.
    pub fn new(mut arena: Arena) -> Result<(TagHeap<C>, usize), SetupError> {
        let usable = arena.len() & !(GRANULE - 1);
        if usable < FIRST_BLOCK + MIN_BLOCK + WORD {
            let needs = format!("it must hold at least {} bytes", FIRST_BLOCK + MIN_BLOCK + WORD);
            return Err(SetupError::ArenaTooSmall { arena: arena.len(), needs });
        }
        if arena.align() < GRANULE {
            return Err(SetupError::Misaligned { align: GRANULE });
        }
        let epilogue = usable - WORD;
        let size = epilogue - FIRST_BLOCK;
        arena.store_word(epilogue, ALLOCATED);
        arena.store_word(FIRST_BLOCK, tag(size, false, true));
        arena.store_word(epilogue - WORD, tag(size, false, true));
        let ledger = Ledger::new(size, 1, FIRST_BLOCK);
        Ok((TagHeap { arena, epilogue, ledger }, size))
    }

    /// The arena.
    #[inline]
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The arena, with write access (tests that corrupt a tag on purpose).
    pub fn arena_mut(&mut self) -> &mut Arena {
        &mut self.arena
    }

    /// Give the arena back.
    pub fn into_arena(self) -> Arena {
        self.arena
    }

    /// Offset of the epilogue header.
    pub fn epilogue(&self) -> usize {
        self.epilogue
    }

    /// Arena bytes that are neither blocks nor free: the lead word, the
    /// epilogue and the bytes beyond the last granule.
    pub fn metadata_bytes(&self) -> usize {
        self.arena.len() - (self.epilogue - FIRST_BLOCK)
    }

    /// The arena's memory for the fast path (see [`Mem`]).
    #[inline(always)]
    pub fn mem(&self) -> Mem {
        Mem::of(&self.arena)
    }

    /// Size of the block at `block` (header included), checked.
    #[inline]
    pub fn size(&self, block: usize) -> usize {
        (self.arena.load_word(block) & SIZE_MASK) as usize
    }

    /// Is the block allocated? Checked.
    #[inline]
    pub fn is_allocated(&self, block: usize) -> bool {
        self.arena.load_word(block) & ALLOCATED != 0
    }

    /// Is the block before it allocated? Checked.
    #[inline]
    pub fn prev_allocated(&self, block: usize) -> bool {
        self.arena.load_word(block) & PREV_ALLOCATED != 0
    }

    /// The block whose payload is at `ptr`, aligned to `align`, checked:
    /// the pointer must lie in the arena. The word before the payload is
    /// the block's header, or (over-aligned payloads only) the block's
    /// offset with the [`PAD`] bit.
    #[inline]
    pub fn block_of(&self, ptr: NonNull<u8>, align: usize) -> usize {
        let before = self.arena.offset_of_owned(ptr) - WORD;
        let word = self.arena.load_word(before);
        if align > GRANULE && word & PAD != 0 { (word & !(GRANULE as u64 - 1)) as usize | WORD } else { before }
    }

    /// [`TagHeap::block_of`] for a live payload of this heap (the caller's
    /// contract in `free` and `realloc`), checked in debug builds only. The
    /// word before the payload says which it is, whatever alignment the
    /// caller names, so that a wrong one cannot turn a back word into a size.
    ///
    /// # Safety
    /// `ptr` is a live payload of this heap.
    #[inline(always)]
    pub unsafe fn block_of_live(&self, ptr: NonNull<u8>, _align: usize) -> usize {
        // SAFETY: the caller's guarantee.
        unsafe { self.live_block(ptr).0 }
    }

    /// The block of a live payload and its header word. The word before the
    /// payload is read once: when it is the header (every payload not
    /// aligned beyond the granule) it is used as such, so that a free's
    /// chain of dependent loads is the slot, the header and the successor's
    /// header, as in an allocator whose payloads all follow their headers.
    /// A back word is a branch taken, not a select that would make every
    /// free wait for it.
    ///
    /// # Safety
    /// `ptr` is a live payload of this heap.
    #[inline(always)]
    unsafe fn live_block(&self, ptr: NonNull<u8>) -> (usize, u64) {
        let mem = self.mem();
        let before = self.arena.offset_of_unchecked(ptr) - WORD;
        // SAFETY: the word before a live payload is its header or its back
        // word, inside the block.
        let word = unsafe { mem.word(before) };
        if word & PAD == 0 {
            return (before, word);
        }
        // SAFETY: a back word holds its block's offset, a block of the tiling.
        unsafe { padded_block(mem, word) }
    }

    /// Internal fragmentation of the allocated block at `ptr`: the header,
    /// padding to the granule and the alignment padding before the payload
    /// are overhead; the minimum block and an unsplittable remainder are
    /// rounding.
    pub fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        let block = self.block_of(ptr, layout.align());
        let alignment = self.arena.offset_of_owned(ptr) - WORD - block;
        let padded = (layout.size() + WORD).next_multiple_of(GRANULE);
        Waste { rounding: self.size(block) - alignment - padded, overhead: alignment + padded - layout.size() }
    }

    // ---- the engine --------------------------------------------------------

    /// Allocate `needed` bytes after `gap` bytes of alignment padding from
    /// the free `block` (found by a search of `lists`): split off a
    /// remainder of at least [`MIN_BLOCK`], keep the padding inside the
    /// allocated block (with a back word before the payload that finds the
    /// header). The lists hear of it as [`FreeLists::taken`] or
    /// [`FreeLists::split`]. Returns the payload and the granted size.
    ///
    /// # Safety
    /// `block` is a free block listed in `lists`, `needed` is
    /// [`block_size_for`] of a request, and `gap` is what [`fit`] said for
    /// the block, `needed` and the request's alignment.
    #[inline(always)]
    pub unsafe fn take<L: FreeLists>(
        &mut self,
        lists: &mut L,
        block: usize,
        gap: usize,
        needed: usize,
    ) -> (NonNull<u8>, usize) {
        // SAFETY: the caller's guarantee.
        unsafe { self.carve(lists, block, gap, needed, Listed::Yes) }
    }

    /// [`TagHeap::take`] for a block the lists have already let go of (a
    /// segregated list pops the head it found): a remainder is inserted
    /// afresh, with [`FreeLists::insert`].
    ///
    /// # Safety
    /// `block` is a free block of the tiling that was listed until the
    /// caller removed it; `needed` and `gap` as for [`TagHeap::take`].
    #[inline(always)]
    pub unsafe fn take_detached<L: FreeLists>(
        &mut self,
        lists: &mut L,
        block: usize,
        gap: usize,
        needed: usize,
    ) -> (NonNull<u8>, usize) {
        // SAFETY: the caller's guarantee.
        unsafe { self.carve(lists, block, gap, needed, Listed::No) }
    }

    /// The work of [`TagHeap::take`] and [`TagHeap::take_detached`].
    ///
    /// # Safety
    /// As for those.
    #[inline(always)]
    unsafe fn carve<L: FreeLists>(
        &mut self,
        lists: &mut L,
        block: usize,
        gap: usize,
        needed: usize,
        listed: Listed,
    ) -> (NonNull<u8>, usize) {
        let listed = listed == Listed::Yes;
        let mem = self.mem();
        // SAFETY: `block` is a block of the tiling (a free block found by a
        // search), and so is every offset below: `block .. block + size`
        // is split, the back word lies inside the allocated part.
        unsafe {
            let header = mem.word(block);
            let size = (header & SIZE_MASK) as usize;
            let taken = gap + needed;
            debug_assert!(header & ALLOCATED == 0 && taken <= size, "take of an unfit block at {block}");
            let prev_allocated = header & PREV_ALLOCATED != 0;
            self.ledger.free_removed(size);
            let remainder = size - taken;
            let granted = if remainder >= MIN_BLOCK {
                // List first, tags second: the remainder's tags must not
                // land on links the lists still read.
                let rest = block + taken;
                if listed {
                    lists.split(mem, block, size, rest, remainder);
                } else {
                    lists.insert(mem, rest, remainder);
                }
                mem.put_allocated(block, taken, prev_allocated);
                // The block after `rest` followed a free block and still does.
                mem.put_free(rest, remainder, true);
                self.ledger.free_added(remainder);
                self.ledger.split();
                taken
            } else {
                if listed {
                    lists.taken(mem, block, size);
                }
                mem.put_allocated(block, size, prev_allocated);
                mem.mark_prev(block + size, true);
                size
            };
            if gap != 0 {
                mem.set_word(block + gap, block as u64 | PAD);
            }
            self.ledger.reached(block + granted);
            (mem.ptr(block + gap + WORD), granted)
        }
    }

    /// Make the allocated `block` of `size` bytes free, coalescing with free
    /// neighbours, and tell `lists`.
    ///
    /// # Safety
    /// `block` is an allocated block of the tiling and `size` its size.
    #[inline(always)]
    pub unsafe fn release<L: FreeLists>(&mut self, lists: &mut L, block: usize, size: usize) {
        // SAFETY: the caller's guarantee; the header is the block's own.
        unsafe {
            let header = self.mem().word(block);
            debug_assert!((header & SIZE_MASK) as usize == size);
            self.release_tagged(lists, block, header);
        }
    }

    /// [`TagHeap::release`] given the block's header word, already read.
    ///
    /// # Safety
    /// `block` is an allocated block of the tiling and `header` its header.
    #[inline(always)]
    unsafe fn release_tagged<L: FreeLists>(&mut self, lists: &mut L, block: usize, header: u64) {
        let mem = self.mem();
        let size = (header & SIZE_MASK) as usize;
        // SAFETY: `block` is a block of the tiling, so are its successor
        // (`block + size`, at most the epilogue) and, when the header says
        // it is free, its predecessor, whose footer ends just before `block`.
        unsafe {
            debug_assert!(header & ALLOCATED != 0 && mem.word(block) == header);
            let next = block + size;
            let next_header = mem.word(next);
            let next_free = next_header & ALLOCATED == 0;
            let (start, merged, start_prev_allocated) = if header & PREV_ALLOCATED != 0 {
                if next_free {
                    let next_size = (next_header & SIZE_MASK) as usize;
                    lists.merged(mem, next, next_size, block, size + next_size);
                    self.ledger.coalesced();
                    self.ledger.free_removed(next_size);
                    (block, size + next_size, true)
                } else {
                    lists.insert(mem, block, size);
                    mem.mark_prev(next, false);
                    (block, size, true)
                }
            } else {
                let prev_footer = mem.word(block - WORD);
                let prev_size = (prev_footer & SIZE_MASK) as usize;
                let prev = block - prev_size;
                let mut merged = prev_size + size;
                if next_free {
                    let next_size = (next_header & SIZE_MASK) as usize;
                    lists.remove(mem, next, next_size);
                    self.ledger.coalesced();
                    self.ledger.free_removed(next_size);
                    merged += next_size;
                } else {
                    mem.mark_prev(next, false);
                }
                lists.merged(mem, prev, prev_size, prev, merged);
                self.ledger.coalesced();
                self.ledger.free_removed(prev_size);
                (prev, merged, prev_footer & PREV_ALLOCATED != 0)
            };
            mem.put_free(start, merged, start_prev_allocated);
            self.ledger.free_added(merged);
        }
    }

    /// Free the live payload at `ptr` allocated with `layout`: the ledger
    /// and [`TagHeap::release`]. What `free` is for every allocator on this
    /// engine.
    ///
    /// # Safety
    /// `ptr` is a live payload of this heap, allocated with `layout`.
    #[inline(always)]
    pub unsafe fn free_payload<L: FreeLists>(&mut self, lists: &mut L, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's guarantee makes `block` an allocated block
        // of the tiling.
        unsafe {
            let (block, header) = self.live_block(ptr);
            let size = (header & SIZE_MASK) as usize;
            self.ledger.freed(layout.size(), size);
            self.release_tagged(lists, block, header);
        }
    }

    /// Resize the live payload at `ptr` (of layout `old`) to `new_size`
    /// bytes in place, with the ledger; whether it could (else the caller
    /// moves it). What `realloc` tries first for every allocator on this
    /// engine.
    ///
    /// # Safety
    /// `ptr` is a live payload of this heap, allocated with `old`.
    pub unsafe fn realloc_in_place<L: FreeLists>(
        &mut self,
        lists: &mut L,
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> bool {
        // SAFETY: the caller's guarantee.
        let resized = unsafe { self.resize_payload(lists, ptr, old.align(), new_size) }.is_some();
        if resized {
            self.ledger.resized(old.size(), new_size);
        }
        resized
    }

    /// Grow or shrink the live payload at `ptr` (aligned to `align`) in
    /// place to `new_size` bytes, if the heap allows: see
    /// [`TagHeap::resize_in_place`]. `None` if it must move.
    ///
    /// # Safety
    /// `ptr` is a live payload of this heap, allocated aligned to `align`.
    pub unsafe fn resize_payload<L: FreeLists>(
        &mut self,
        lists: &mut L,
        ptr: NonNull<u8>,
        align: usize,
        new_size: usize,
    ) -> Option<usize> {
        // SAFETY: the caller's guarantee: `block` is the live payload's block.
        unsafe {
            let (block, header) = self.live_block(ptr);
            debug_assert!(align > GRANULE || block + WORD == self.arena.offset_of_unchecked(ptr));
            let padding = self.arena.offset_of_unchecked(ptr) - WORD - block;
            let needed = block_size_for(new_size)?.checked_add(padding)?;
            self.resize_tagged(lists, block, header, needed)
        }
    }

    /// Grow or shrink the allocated `block` in place to `needed` bytes if
    /// the heap allows: shrink by freeing a tail of at least [`MIN_BLOCK`],
    /// grow into a free successor. Returns the new granted size, or `None`
    /// if the block must move.
    ///
    /// # Safety
    /// `block` is an allocated block of the tiling, and `needed` is
    /// [`block_size_for`] of the new size plus the block's alignment
    /// padding (so that the payload and its back word stay inside).
    pub unsafe fn resize_in_place<L: FreeLists>(
        &mut self,
        lists: &mut L,
        block: usize,
        needed: usize,
    ) -> Option<usize> {
        // SAFETY: the caller's guarantee; the header is the block's own.
        unsafe {
            let header = self.mem().word(block);
            self.resize_tagged(lists, block, header, needed)
        }
    }

    /// [`TagHeap::resize_in_place`] given the block's header word, already read.
    ///
    /// # Safety
    /// As for [`TagHeap::resize_in_place`], and `header` is the block's header.
    #[inline(always)]
    unsafe fn resize_tagged<L: FreeLists>(
        &mut self,
        lists: &mut L,
        block: usize,
        header: u64,
        needed: usize,
    ) -> Option<usize> {
        let mem = self.mem();
        // SAFETY: `block` is a block of the tiling; its successor and the
        // pieces cut from either lie inside the tiled range.
        unsafe {
            debug_assert!(mem.word(block) == header);
            let size = (header & SIZE_MASK) as usize;
            let prev_allocated = header & PREV_ALLOCATED != 0;
            if needed <= size {
                let remainder = size - needed;
                if remainder >= MIN_BLOCK {
                    mem.put_allocated(block, needed, prev_allocated);
                    // The tail is briefly an allocated block, then released.
                    mem.put_allocated(block + needed, remainder, true);
                    self.ledger.granted_less(remainder);
                    self.ledger.split();
                    self.release_tagged(lists, block + needed, tag(remainder, true, true));
                    return Some(needed);
                }
                return Some(size);
            }
            let next = block + size;
            let next_header = mem.word(next);
            let next_size = (next_header & SIZE_MASK) as usize;
            if next_header & ALLOCATED != 0 || size + next_size < needed {
                return None;
            }
            let available = size + next_size;
            let remainder = available - needed;
            self.ledger.free_removed(next_size);
            let granted = if remainder >= MIN_BLOCK {
                // `rest` may start inside the successor's link words: move
                // the list node before writing any tag. The block after
                // `rest` followed a free block and still does.
                let rest = block + needed;
                lists.moved(mem, next, next_size, rest, remainder);
                mem.put_allocated(block, needed, prev_allocated);
                mem.put_free(rest, remainder, true);
                self.ledger.free_added(remainder);
                self.ledger.split();
                needed
            } else {
                lists.remove(mem, next, next_size);
                mem.put_allocated(block, available, prev_allocated);
                mem.mark_prev(block + available, true);
                available
            };
            self.ledger.granted_more(granted - size);
            self.ledger.reached(block + granted);
            Some(granted)
        }
    }

    // ---- lists, checked ----------------------------------------------------

    /// Next block in a free block's list, checked (for walks and `check()`).
    pub fn next_checked(&self, block: usize) -> usize {
        self.arena.load_word(block + WORD) as usize
    }

    /// Previous block in a free block's list, checked.
    pub fn prev_checked(&self, block: usize) -> usize {
        self.arena.load_word(block + 2 * WORD) as usize
    }

    // ---- checking ----------------------------------------------------------

    /// Walk every block in address order and check the tiling invariant:
    /// sizes, flags, footers, no two adjacent free blocks, the epilogue.
    /// Every access is bounds-checked.
    pub fn walk(&self) -> Result<Walk, InvariantViolation> {
        let mut walk = Walk::default();
        let mut block = FIRST_BLOCK;
        let mut previous_allocated = true;
        ensure!(self.epilogue + WORD <= self.arena.len(), "the epilogue at {} leaves the arena", self.epilogue);
        while block < self.epilogue {
            let header = self.arena.load_word(block);
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
                walk.granted_bytes += size;
            } else {
                ensure!(previous_allocated, @block, "two adjacent free blocks were not coalesced");
                let footer = self.arena.load_word(block + size - WORD);
                ensure!(footer == header, @block, "footer {footer:#x} differs from header {header:#x}");
                walk.free_bytes += size;
                walk.free_blocks.push(block);
            }
            previous_allocated = allocated;
            block += size;
        }
        ensure!(block == self.epilogue, @block, "blocks end at {block}, not at the epilogue {}", self.epilogue);
        let epilogue = self.arena.load_word(self.epilogue);
        ensure!(epilogue & SIZE_MASK == 0 && epilogue & ALLOCATED != 0, @self.epilogue, "epilogue header is {epilogue:#x}");
        ensure!((epilogue & PREV_ALLOCATED != 0) == previous_allocated, @self.epilogue, "epilogue's prev-allocated bit is wrong");
        Ok(walk)
    }

    /// Follow the list from `head` checking its links against the walk:
    /// every member a free block, back links consistent, no cycle. Returns
    /// the members in list order. Every access is bounds-checked.
    pub fn list_members(&self, head: usize, walk: &Walk) -> Result<Vec<usize>, InvariantViolation> {
        let mut members = Vec::new();
        let (mut prev, mut block) = (NIL, head);
        while block != NIL {
            ensure!(
                members.len() < walk.free_blocks.len(),
                "a free list is longer than the {} free blocks (a cycle?)",
                walk.free_blocks.len()
            );
            ensure!(walk.free_blocks.binary_search(&block).is_ok(), @block, "listed block is not a free block of the heap");
            ensure!(self.prev_checked(block) == prev, @block, "prev link {} should be {prev}", self.prev_checked(block));
            members.push(block);
            prev = block;
            block = self.next_checked(block);
        }
        Ok(members)
    }

    /// The same for a list with a tail, which must be its last member.
    pub fn list_members_ends(&self, list: &ListEnds, walk: &Walk) -> Result<Vec<usize>, InvariantViolation> {
        let members = self.list_members(list.head, walk)?;
        let last = members.last().copied().unwrap_or(NIL);
        ensure!(list.tail == last, "list tail is {}, the list ends at {last}", list.tail);
        Ok(members)
    }

    /// Visit the members of the list from `head` as `(offset, size)`,
    /// checked (for `for_each_free`).
    pub fn for_each_in(&self, head: usize, visit: &mut dyn FnMut(usize, usize)) {
        let mut block = head;
        while block != NIL {
            visit(block, self.size(block));
            block = self.next_checked(block);
        }
    }
}
