//! The boundary-tag heap shared by the allocators that keep free blocks in
//! doubly linked lists inside the arena: this crate's naive list, and the
//! segregated fits and two-level segregated fit of `heaplab-segregated`.
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
//!   repeat the header in a **footer** (their last word), so a freed block
//!   finds a free predecessor in O(1); allocated blocks need no footer since
//!   their successor's bit 1 says they are in use (the CS:APP optimisation).
//! - Free blocks hold list links (arena offsets of the next and previous
//!   free block in their list, [`NIL`] for none) in their first payload words.
//! - An **epilogue** header (size 0, allocated) ends the heap, so the last
//!   block's successor always exists. The pad word and the epilogue are the
//!   metadata M; headers of allocated blocks count in their granted size.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::{Arena, InvariantViolation, Waste, ensure};

/// Bytes in a tag word.
pub const WORD: usize = 8;
/// Block sizes are multiples of this, and payloads are aligned to it.
pub const GRANULE: usize = 16;
/// Smallest block: header, next and prev links, footer.
pub const MIN_BLOCK: usize = 32;
/// Offset of the first block: one pad word puts payloads on 16-byte boundaries.
pub const FIRST_BLOCK: usize = 8;
/// The null link: no block starts at offset 0.
pub const NIL: usize = 0;
/// Header bit: this block is allocated.
const ALLOCATED: u64 = 1;
/// Header bit: the block before this one is allocated.
const PREV_ALLOCATED: u64 = 2;
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

/// A boundary-tagged heap over an arena.
#[derive(Debug)]
pub struct TagHeap {
    arena: Arena,
    /// Offset of the epilogue header; blocks tile `FIRST_BLOCK..epilogue`
    /// exactly, and `epilogue + 8 <= arena.len()`.
    epilogue: usize,
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

impl TagHeap {
    /// Lay out an empty heap over `arena`: one free block (tagged, not yet
    /// in any list) from [`FIRST_BLOCK`] to the epilogue. Returns the heap
    /// and the free block's size.
    pub fn new(mut arena: Arena) -> Result<(TagHeap, usize), String> {
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
        let mut heap = TagHeap { arena, epilogue };
        heap.put_free(FIRST_BLOCK, size, true);
        Ok((heap, size))
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

    /// Arena bytes that are neither blocks nor free: the pad word, the
    /// epilogue and the bytes beyond the last granule.
    pub fn metadata_bytes(&self) -> usize {
        self.arena.len() - (self.epilogue - FIRST_BLOCK)
    }

    // ---- tags --------------------------------------------------------------

    #[inline]
    fn header(&self, block: usize) -> u64 {
        self.arena.load_word(block)
    }

    /// Size of the block at `block` (header included).
    #[inline]
    pub fn size(&self, block: usize) -> usize {
        (self.header(block) & SIZE_MASK) as usize
    }

    /// Is the block allocated?
    #[inline]
    pub fn is_allocated(&self, block: usize) -> bool {
        self.header(block) & ALLOCATED != 0
    }

    /// Is the block before it allocated?
    #[inline]
    pub fn prev_allocated(&self, block: usize) -> bool {
        self.header(block) & PREV_ALLOCATED != 0
    }

    /// A header word.
    #[inline]
    pub fn tag(size: usize, allocated: bool, prev_allocated: bool) -> u64 {
        debug_assert_eq!(size % GRANULE, 0);
        size as u64 | if allocated { ALLOCATED } else { 0 } | if prev_allocated { PREV_ALLOCATED } else { 0 }
    }

    /// Write the header of an allocated block. Its successor's
    /// prev-allocated bit is the caller's business.
    #[inline]
    pub fn put_allocated(&mut self, block: usize, size: usize, prev_allocated: bool) {
        self.arena.store_word(block, TagHeap::tag(size, true, prev_allocated));
    }

    /// Write the header and footer of a free block. Its successor's
    /// prev-allocated bit is the caller's business.
    #[inline]
    pub fn put_free(&mut self, block: usize, size: usize, prev_allocated: bool) {
        let tag = TagHeap::tag(size, false, prev_allocated);
        self.arena.store_word(block, tag);
        self.arena.store_word(block + size - WORD, tag);
    }

    /// Update the prev-allocated bit of a block whose header is valid.
    #[inline]
    pub fn set_prev_allocated(&mut self, block: usize, prev_allocated: bool) {
        let header = self.header(block);
        let header = if prev_allocated { header | PREV_ALLOCATED } else { header & !PREV_ALLOCATED };
        self.arena.store_word(block, header);
        // A free block's footer mirrors its header.
        if header & ALLOCATED == 0 {
            let size = (header & SIZE_MASK) as usize;
            self.arena.store_word(block + size - WORD, header);
        }
    }

    /// The free block just before `block`, if the tags say there is one.
    #[inline]
    pub fn free_predecessor(&self, block: usize) -> Option<usize> {
        (!self.prev_allocated(block)).then(|| block - (self.arena.load_word(block - WORD) & SIZE_MASK) as usize)
    }

    /// The block whose payload is at `ptr`.
    #[inline]
    pub fn block_of(&self, ptr: NonNull<u8>) -> usize {
        self.arena.offset_of_owned(ptr) - WORD
    }

    /// The payload of `block`.
    #[inline]
    pub fn payload(&self, block: usize) -> NonNull<u8> {
        self.arena.ptr_at(block + WORD)
    }

    // ---- placement ---------------------------------------------------------

    /// Block size for a request of `size` bytes, or `None` if it overflows.
    #[inline]
    pub fn block_size_for(size: usize) -> Option<usize> {
        let needed = size.checked_add(WORD + GRANULE - 1)? & !(GRANULE - 1);
        Some(needed.max(MIN_BLOCK))
    }

    /// Bytes to skip at the front of a free block so that the payload is
    /// aligned; the skipped bytes must form a block of their own (0 or at
    /// least `MIN_BLOCK`). `None` if the request does not fit.
    #[inline]
    pub fn fit(block: usize, block_size: usize, needed: usize, align: usize) -> Option<usize> {
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

    /// Internal fragmentation of the allocated block at `ptr`: header and
    /// padding to the granule are overhead; the minimum block and an
    /// unsplittable remainder are rounding.
    pub fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        let padded = (layout.size() + WORD).next_multiple_of(GRANULE);
        Waste { rounding: self.size(self.block_of(ptr)) - padded, overhead: padded - layout.size() }
    }

    // ---- lists -------------------------------------------------------------

    /// Next block in the block's list.
    #[inline]
    pub fn next(&self, block: usize) -> usize {
        self.arena.load_word(block + WORD) as usize
    }

    /// Previous block in the block's list.
    #[inline]
    pub fn prev(&self, block: usize) -> usize {
        self.arena.load_word(block + 2 * WORD) as usize
    }

    /// Link `block` into `list` between `prev` and `next` (either may be `NIL`).
    pub fn link_between(&mut self, list: &mut ListEnds, block: usize, prev: usize, next: usize) {
        self.arena.store_word(block + 2 * WORD, prev as u64);
        self.arena.store_word(block + WORD, next as u64);
        if prev == NIL {
            list.head = block;
        } else {
            self.arena.store_word(prev + WORD, block as u64);
        }
        if next == NIL {
            list.tail = block;
        } else {
            self.arena.store_word(next + 2 * WORD, block as u64);
        }
    }

    /// Put `block` first in `list`.
    pub fn push_front(&mut self, list: &mut ListEnds, block: usize) {
        let head = list.head;
        self.link_between(list, block, NIL, head);
    }

    /// Put `block` last in `list`.
    pub fn push_back(&mut self, list: &mut ListEnds, block: usize) {
        let tail = list.tail;
        self.link_between(list, block, tail, NIL);
    }

    /// Put `block` after `anchor` in `list`.
    pub fn insert_after(&mut self, list: &mut ListEnds, anchor: usize, block: usize) {
        let next = self.next(anchor);
        self.link_between(list, block, anchor, next);
    }

    /// Take `block` out of `list`; returns its successor.
    pub fn unlink(&mut self, list: &mut ListEnds, block: usize) -> usize {
        let (prev, next) = (self.prev(block), self.next(block));
        if prev == NIL {
            list.head = next;
        } else {
            self.arena.store_word(prev + WORD, next as u64);
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.arena.store_word(next + 2 * WORD, prev as u64);
        }
        next
    }

    /// Put `new` in `list` where `old` was.
    pub fn replace(&mut self, list: &mut ListEnds, old: usize, new: usize) {
        let (prev, next) = (self.prev(old), self.next(old));
        self.link_between(list, new, prev, next);
    }

    // ---- checking ----------------------------------------------------------

    /// Walk every block in address order and check the tags: sizes, flags,
    /// footers, no two adjacent free blocks, the epilogue.
    pub fn walk(&self) -> Result<Walk, InvariantViolation> {
        let mut walk = Walk::default();
        let mut block = FIRST_BLOCK;
        let mut previous_allocated = true;
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
        let epilogue = self.header(self.epilogue);
        ensure!(epilogue & SIZE_MASK == 0 && epilogue & ALLOCATED != 0, @self.epilogue, "epilogue header is {epilogue:#x}");
        ensure!((epilogue & PREV_ALLOCATED != 0) == previous_allocated, @self.epilogue, "epilogue's prev-allocated bit is wrong");
        Ok(walk)
    }

    /// Follow `list` checking its links against the walk: every member a
    /// free block, back links consistent, the tail right, no cycle. Returns
    /// the members in list order.
    pub fn list_members(&self, list: &ListEnds, walk: &Walk) -> Result<Vec<usize>, InvariantViolation> {
        let mut members = Vec::new();
        let (mut prev, mut block) = (NIL, list.head);
        while block != NIL {
            ensure!(
                members.len() < walk.free_blocks.len(),
                "a free list is longer than the {} free blocks (a cycle?)",
                walk.free_blocks.len()
            );
            ensure!(walk.free_blocks.binary_search(&block).is_ok(), @block, "listed block is not a free block of the heap");
            ensure!(self.prev(block) == prev, @block, "prev link {} should be {prev}", self.prev(block));
            members.push(block);
            prev = block;
            block = self.next(block);
        }
        ensure!(list.tail == prev, "list tail is {}, the list ends at {prev}", list.tail);
        Ok(members)
    }
}
