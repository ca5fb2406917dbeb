//! The boundary-tag heap with one free list per size class, shared by
//! segregated fits and the two-level segregated fit: they differ only in
//! how sizes map to lists and how a request finds its list ([`Index`]).
//!
//! - A free block always sits, LIFO, in the list of its own size's class.
//! - **Allocation**: the index names a block; if it is larger than needed by
//!   at least 32 bytes it is split, and the remainder goes to the list of
//!   its class. Alignments above 16 are served by a front gap that becomes a
//!   free block of its own.
//! - **Free**: immediate coalescing with both neighbours through the
//!   boundary tags (O(1)); the merged block goes to its class's list.
//! - **Realloc**: shrinks in place, grows into a free successor, or moves.

use std::alloc::Layout;
use std::fmt::Debug;
use std::ptr::NonNull;

use heaplab_core::{AllocError, Arena, Counters, FreeShape, HeapStats, InvariantViolation, Waste, ensure};
use heaplab_freelist::tags::{FIRST_BLOCK, ListEnds, MIN_BLOCK, NIL, TagHeap};

/// How free-block sizes map to lists, and how a request finds a list.
pub trait Index: Debug {
    /// Size the index for an arena of `arena_bytes`; returns the number of lists.
    fn prepare(&mut self, arena_bytes: usize) -> usize;
    /// The list a free block of `size` bytes belongs to.
    fn class_of(&self, size: usize) -> usize;
    /// Record that list `class` became non-empty or empty.
    fn mark(&mut self, class: usize, nonempty: bool);
    /// Is list `class` marked non-empty?
    fn is_marked(&self, class: usize) -> bool;
    /// Find a free block for `needed` bytes aligned to `align`: `(block,
    /// gap)`, and the number of blocks inspected.
    fn search(&self, heap: &TagHeap, lists: &[ListEnds], needed: usize, align: usize) -> (Option<(usize, usize)>, u64);
}

/// A segregated boundary-tag heap.
#[derive(Debug)]
pub struct SegregatedHeap<I: Index> {
    heap: TagHeap,
    index: I,
    /// One list per class; a block is in the list of `class_of(size)`.
    lists: Vec<ListEnds>,
    live_blocks: usize,
    requested_bytes: usize,
    granted_bytes: usize,
    /// Bytes and count of the blocks in all lists.
    free_bytes: usize,
    free_blocks: usize,
    footprint_bytes: usize,
    blocks_inspected: u64,
    splits: u64,
    coalesces: u64,
}

impl<I: Index> SegregatedHeap<I> {
    /// An empty heap over `arena`.
    pub fn new(arena: Arena, mut index: I) -> Result<SegregatedHeap<I>, String> {
        let lists = index.prepare(arena.len());
        let (heap, _) = TagHeap::new(arena)?;
        let mut this = SegregatedHeap {
            heap,
            index,
            lists: vec![ListEnds::EMPTY; lists],
            live_blocks: 0,
            requested_bytes: 0,
            granted_bytes: 0,
            free_bytes: 0,
            free_blocks: 0,
            footprint_bytes: FIRST_BLOCK,
            blocks_inspected: 0,
            splits: 0,
            coalesces: 0,
        };
        this.insert(FIRST_BLOCK);
        Ok(this)
    }

    /// The index.
    pub fn index(&self) -> &I {
        &self.index
    }

    /// Put a tagged free block in its class's list.
    fn insert(&mut self, block: usize) {
        let size = self.heap.size(block);
        let class = self.index.class_of(size);
        self.heap.push_front(&mut self.lists[class], block);
        self.index.mark(class, true);
        self.free_bytes += size;
        self.free_blocks += 1;
    }

    /// Take a free block out of its class's list (its tags still say its size).
    fn remove(&mut self, block: usize) {
        let size = self.heap.size(block);
        let class = self.index.class_of(size);
        self.heap.unlink(&mut self.lists[class], block);
        if self.lists[class].is_empty() {
            self.index.mark(class, false);
        }
        self.free_bytes -= size;
        self.free_blocks -= 1;
    }

    /// Allocate `needed` bytes from free block `block`, `gap` bytes in.
    fn take(&mut self, block: usize, gap: usize, needed: usize) -> usize {
        let size = self.heap.size(block);
        self.remove(block);
        let (start, available, prev_allocated) = if gap > 0 {
            let prev_allocated = self.heap.prev_allocated(block);
            self.heap.put_free(block, gap, prev_allocated);
            self.insert(block);
            self.splits += 1;
            (block + gap, size - gap, false)
        } else {
            (block, size, self.heap.prev_allocated(block))
        };
        let remainder = available - needed;
        let granted = if remainder >= MIN_BLOCK {
            // The block after `rest` followed a free block and still does.
            let rest = start + needed;
            self.heap.put_allocated(start, needed, prev_allocated);
            self.heap.put_free(rest, remainder, true);
            self.insert(rest);
            self.splits += 1;
            needed
        } else {
            self.heap.put_allocated(start, available, prev_allocated);
            self.heap.set_prev_allocated(start + available, true);
            available
        };
        self.granted_bytes += granted;
        self.footprint_bytes = self.footprint_bytes.max(start + granted);
        start
    }

    /// Make `block..block+size` free, coalescing with free neighbours.
    fn release(&mut self, block: usize, size: usize) {
        let (mut start, mut merged) = (block, size);
        let next = block + size;
        if !self.heap.is_allocated(next) {
            merged += self.heap.size(next);
            self.remove(next);
            self.coalesces += 1;
        }
        if let Some(prev) = self.heap.free_predecessor(block) {
            merged += block - prev;
            start = prev;
            self.remove(prev);
            self.coalesces += 1;
        }
        let prev_allocated = self.heap.prev_allocated(start);
        self.heap.put_free(start, merged, prev_allocated);
        self.heap.set_prev_allocated(start + merged, false);
        self.insert(start);
    }

    /// Resize in place if the heap allows; whether it did.
    fn resize_in_place(&mut self, block: usize, needed: usize) -> bool {
        let size = self.heap.size(block);
        let prev_allocated = self.heap.prev_allocated(block);
        if needed <= size {
            let remainder = size - needed;
            if remainder >= MIN_BLOCK {
                self.heap.put_allocated(block, needed, prev_allocated);
                self.heap.put_allocated(block + needed, remainder, true);
                self.granted_bytes -= remainder;
                self.splits += 1;
                self.release(block + needed, remainder);
            }
            return true;
        }
        let next = block + size;
        if self.heap.is_allocated(next) || size + self.heap.size(next) < needed {
            return false;
        }
        let available = size + self.heap.size(next);
        self.remove(next);
        let remainder = available - needed;
        let granted = if remainder >= MIN_BLOCK {
            let rest = block + needed;
            self.heap.put_allocated(block, needed, prev_allocated);
            self.heap.put_free(rest, remainder, true);
            self.insert(rest);
            self.splits += 1;
            needed
        } else {
            self.heap.put_allocated(block, available, prev_allocated);
            self.heap.set_prev_allocated(block + available, true);
            available
        };
        self.granted_bytes += granted - size;
        self.footprint_bytes = self.footprint_bytes.max(block + granted);
        true
    }

    // ---- the allocator contract, forwarded by the variants ---------------

    /// See [`heaplab_core::Allocator::arena`].
    pub fn arena(&self) -> &Arena {
        self.heap.arena()
    }

    /// See [`heaplab_core::Allocator::alloc`].
    pub fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() > self.heap.arena().align() {
            return Err(AllocError::Unsupported("alignment above the arena's"));
        }
        let needed = TagHeap::block_size_for(layout.size()).ok_or(AllocError::OutOfMemory)?;
        let (found, inspected) = self.index.search(&self.heap, &self.lists, needed, layout.align());
        self.blocks_inspected += inspected;
        let (block, gap) = found.ok_or(AllocError::OutOfMemory)?;
        let start = self.take(block, gap, needed);
        self.live_blocks += 1;
        self.requested_bytes += layout.size();
        Ok(self.heap.payload(start))
    }

    /// See [`heaplab_core::Allocator::free`].
    pub fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let block = self.heap.block_of(ptr);
        debug_assert!(self.heap.is_allocated(block), "free of a block that is not allocated, at {block}");
        let size = self.heap.size(block);
        self.live_blocks -= 1;
        self.requested_bytes -= layout.size();
        self.granted_bytes -= size;
        self.release(block, size);
    }

    /// Resize in place; `false` if the block must move.
    pub fn realloc_in_place(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<bool, AllocError> {
        let needed = TagHeap::block_size_for(new_size).ok_or(AllocError::OutOfMemory)?;
        let moved = !self.resize_in_place(self.heap.block_of(ptr), needed);
        if !moved {
            self.requested_bytes = self.requested_bytes - old.size() + new_size;
        }
        Ok(!moved)
    }

    /// See [`heaplab_core::Allocator::granted`].
    pub fn granted(&self, ptr: NonNull<u8>) -> usize {
        self.heap.size(self.heap.block_of(ptr))
    }

    /// See [`heaplab_core::Allocator::waste`].
    pub fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        self.heap.waste(ptr, layout)
    }

    /// See [`heaplab_core::Allocator::into_arena`].
    pub fn into_arena(self) -> Arena {
        self.heap.into_arena()
    }

    /// See [`heaplab_core::Allocator::stats`].
    pub fn stats(&self, with_inspected: bool) -> HeapStats {
        HeapStats {
            arena_bytes: self.heap.arena().len(),
            live_blocks: self.live_blocks,
            requested_bytes: self.requested_bytes,
            granted_bytes: self.granted_bytes,
            metadata_bytes: self.heap.metadata_bytes(),
            side_metadata_bytes: self.lists.len() * std::mem::size_of::<ListEnds>(),
            free_bytes: self.free_bytes,
            free_blocks: self.free_blocks,
            footprint_bytes: self.footprint_bytes,
            counters: Counters {
                blocks_inspected: with_inspected.then_some(self.blocks_inspected),
                splits: Some(self.splits),
                coalesces: Some(self.coalesces),
            },
        }
    }

    /// See [`heaplab_core::Allocator::for_each_free`].
    pub fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        for list in &self.lists {
            let mut block = list.head;
            while block != NIL {
                visit(block, self.heap.size(block));
                block = self.heap.next(block);
            }
        }
    }

    /// The largest free block: the first non-empty list from the top.
    pub fn free_shape(&self) -> FreeShape {
        let largest = self.lists.iter().rev().find(|list| !list.is_empty()).map_or(0, |list| {
            let mut largest = 0;
            let mut block = list.head;
            while block != NIL {
                largest = largest.max(self.heap.size(block));
                block = self.heap.next(block);
            }
            largest
        });
        FreeShape { free_bytes: self.free_bytes, free_blocks: self.free_blocks, largest_free_block: largest }
    }

    /// See [`heaplab_core::Allocator::check`]: the tags, every block on the
    /// list of its class, the marks agreeing with the lists, the counters.
    pub fn check(&self) -> Result<(), InvariantViolation> {
        let walk = self.heap.walk()?;
        let mut listed = 0;
        for (class, list) in self.lists.iter().enumerate() {
            let members = self.heap.list_members(list, &walk)?;
            ensure!(
                self.index.is_marked(class) != members.is_empty(),
                "class {class}'s bit says {}, its list holds {}",
                self.index.is_marked(class),
                members.len()
            );
            for &block in &members {
                let size = self.heap.size(block);
                ensure!(self.index.class_of(size) == class, @block, "a {size}-byte block is on the list of class {class}, not {}", self.index.class_of(size));
            }
            listed += members.len();
        }
        ensure!(
            listed == walk.free_blocks.len(),
            "{listed} blocks listed, {} free in the heap",
            walk.free_blocks.len()
        );
        ensure!(self.free_blocks == listed, "free block counter {} but {listed} blocks", self.free_blocks);
        ensure!(
            self.free_bytes == walk.free_bytes,
            "free bytes counter {} but {} in free blocks",
            self.free_bytes,
            walk.free_bytes
        );
        ensure!(
            self.granted_bytes == walk.granted_bytes,
            "granted counter {} but {} allocated",
            self.granted_bytes,
            walk.granted_bytes
        );
        Ok(())
    }
}
