//! Simple segregated storage: each size class owns whole pages of
//! same-size blocks; no splitting, no coalescing (Johnstone & Wilson's
//! "2^N" and "2^N & 3·2^N" allocators).
//!
//! - **Classes**: powers of two from 16 bytes, or powers of two and their
//!   midpoints, up to half a page. A request takes the smallest class that
//!   holds it and whose blocks are aligned enough (a class of size `c` is
//!   aligned to the largest power of two dividing `c`).
//! - **Allocation**: pop the class's free list (singly linked through the
//!   free blocks, LIFO). When it is empty, take one page from the page
//!   level and cut it into blocks of the class, all pushed on the list. O(1),
//!   O(blocks per page) when a page is cut.
//! - **Free**: push the block on its class's list. O(1). Pages stay with
//!   their class: memory freed in one class never serves another (the
//!   scheme's defining weakness), until [`heaplab_core::Allocator::trim`]
//!   returns every page whose blocks are all free.
//! - **Page level** (for class pages and for requests above the largest
//!   class or aligned beyond a page): a binary buddy system with page-sized
//!   order 0, so large requests are rounded to a power of two of pages.
//! - **Metadata**: the free list links live in free blocks; per page, the
//!   class and the count of live blocks live outside the arena (side
//!   metadata); the tail of a page that does not hold a whole block is
//!   metadata. `free` uses the layout to find the class.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_buddy::{Buddy, Split};
use heaplab_core::{
    AllocError, Allocator, Arena, Counters, FreeShape, HeapStats, InvariantViolation, Kept, Ledger, Reports,
    SetupError, Waste, ensure,
};

use crate::classes::Scheme;

/// No class, or the end of a free list.
const NONE: usize = usize::MAX;
/// Smallest class: big enough for the free-list link.
const SMALLEST: usize = 16;

/// The class sizes of `scheme` up to half of `page`.
pub fn class_sizes(scheme: Scheme, page: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut size = SMALLEST;
    while size <= page / 2 {
        sizes.push(size);
        if scheme == Scheme::WithMidpoints && size >= 32 && size + size / 2 <= page / 2 {
            sizes.push(size + size / 2);
        }
        size *= 2;
    }
    sizes
}

/// Simple segregated storage over buddy pages; `C`: whether it keeps the ledger.
#[derive(Debug)]
pub struct Simple<const C: bool = true> {
    buddy: Buddy<C>,
    page: usize,
    /// log2 of `page`: block to page index by a shift.
    page_shift: u32,
    /// Class sizes, increasing.
    sizes: Vec<usize>,
    /// Per class: the first free block (offset) or `NONE`.
    free_lists: Vec<usize>,
    /// Per class: free blocks on the list.
    free_counts: Vec<usize>,
    /// Per page: the class owning it, or `NONE`.
    page_class: Vec<usize>,
    /// Per page: blocks allocated from it (what `trim` needs).
    page_live: Vec<u32>,
    /// Live blocks, requested bytes, and granted bytes: class sizes of
    /// small blocks, page blocks of large ones.
    ledger: Ledger<C>,
    /// Bytes in free blocks of owned pages (counted only with the ledger).
    free_block_bytes: usize,
    /// Page tails too small for a block, over owned pages (likewise).
    tail_bytes: usize,
}

impl<const C: bool> Simple<C> {
    /// Classes of `scheme` over pages of `page` bytes in `arena`.
    pub fn new(arena: Arena, scheme: Scheme, page: usize) -> Result<Simple<C>, SetupError> {
        if !page.is_power_of_two() || page < 256 {
            return Err(SetupError::parameter("page", "be a power of two of at least 256 bytes", page));
        }
        let pages = arena.len() / page;
        let buddy = Buddy::new(arena, heaplab_buddy::Config { min_block: page, max_order: None, split: Split::Lower })?;
        let sizes = class_sizes(scheme, page);
        let classes = sizes.len();
        Ok(Simple {
            buddy,
            page,
            page_shift: page.trailing_zeros(),
            sizes,
            free_lists: heaplab_core::side_table(NONE, classes),
            free_counts: heaplab_core::side_table(0, classes),
            page_class: heaplab_core::side_table(NONE, pages),
            page_live: heaplab_core::side_table(0, pages),
            ledger: Ledger::new(0, 0, 0),
            free_block_bytes: 0,
            tail_bytes: 0,
        })
    }

    /// The class sizes.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The class for `layout`, or `None` for the page level.
    #[inline]
    fn class_for(&self, layout: Layout) -> Option<usize> {
        let size = layout.size().max(1);
        let first = self.sizes.partition_point(|&c| c < size);
        (first..self.sizes.len()).find(|&c| 1 << self.sizes[c].trailing_zeros() >= layout.align())
    }

    /// # Safety
    /// `block` is a block of `class` in a page the class owns, not listed.
    #[inline(always)]
    unsafe fn push(&mut self, class: usize, block: usize) {
        let head = self.free_lists[class];
        // SAFETY: the block is inside an owned page, at least 16 bytes long.
        unsafe { self.buddy.arena_mut().store_word_unchecked(block, head as u64) };
        self.free_lists[class] = block;
        if C {
            self.free_counts[class] += 1;
            self.free_block_bytes += self.sizes[class];
        }
    }

    #[inline(always)]
    fn pop(&mut self, class: usize) -> Option<usize> {
        let block = self.free_lists[class];
        if block == NONE {
            return None;
        }
        // SAFETY: a listed block lies in a page its class owns.
        self.free_lists[class] = unsafe { self.buddy.arena().load_word_unchecked(block) } as usize;
        if C {
            self.free_counts[class] -= 1;
            self.free_block_bytes -= self.sizes[class];
        }
        Some(block)
    }

    /// Give `class` a fresh page, cut into blocks.
    fn grow(&mut self, class: usize) -> Result<(), AllocError> {
        let page = self.buddy.alloc_order(0)?;
        let size = self.sizes[class];
        let count = self.page / size;
        self.page_class[page / self.page] = class;
        if C {
            self.tail_bytes += self.page - count * size;
        }
        // Pushed from the top so that the list hands them out bottom up.
        for index in (0..count).rev() {
            // SAFETY: the page is the class's now; its blocks are unlisted.
            unsafe { self.push(class, page + index * size) };
        }
        Ok(())
    }
}

impl<const C: bool> Allocator for Simple<C> {
    fn arena(&self) -> &Arena {
        self.buddy.arena()
    }

    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() > self.buddy.arena().align() {
            return Err(AllocError::Unsupported("alignment above the arena's"));
        }
        let offset = match self.class_for(layout) {
            Some(class) => {
                if self.free_lists[class] == NONE {
                    self.grow(class)?;
                }
                let Some(block) = self.pop(class) else { unreachable!("a grown class has free blocks") };
                self.page_live[block >> self.page_shift] += 1;
                self.ledger.allocated(layout.size(), self.sizes[class]);
                block
            }
            None => {
                let order =
                    self.buddy.order_for(layout).ok_or(AllocError::Unsupported("size above the largest block"))?;
                let block = self.buddy.alloc_order(order)?;
                self.ledger.allocated(layout.size(), self.page << order);
                block
            }
        };
        // SAFETY: the block lies inside the arena.
        Ok(unsafe { self.buddy.arena().ptr_at_unchecked(offset) })
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let offset = self.buddy.arena().offset_of_unchecked(ptr);
        match self.class_for(layout) {
            Some(class) => {
                debug_assert_eq!(
                    self.page_class[offset >> self.page_shift],
                    class,
                    "block freed with another class's layout"
                );
                self.page_live[offset >> self.page_shift] -= 1;
                self.ledger.freed(layout.size(), self.sizes[class]);
                // SAFETY: the caller guarantees a live block of this layout,
                // so of this class in one of its pages.
                unsafe { self.push(class, offset) };
            }
            None => {
                let Some(order) = self.buddy.order_for(layout) else { unreachable!("a live large block has an order") };
                self.ledger.freed(layout.size(), self.page << order);
                // SAFETY: the caller guarantees a live page block of this order.
                unsafe { self.buddy.free_block(offset, order) };
            }
        }
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let new = Layout::from_size_align(new_size, old.align())
            .map_err(|_| AllocError::Unsupported("size overflows isize"))?;
        if self.class_for(old).is_some() && self.class_for(old) == self.class_for(new) {
            self.ledger.resized(old.size(), new_size);
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { heaplab_core::realloc_by_moving(self, ptr, old, new_size) }
    }

    fn granted(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        match self.class_for(layout) {
            Some(class) => self.sizes[class],
            None => self.buddy.order_for(layout).map_or(0, |order| self.page << order),
        }
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        // Rounding to the class (power of two, page block) the size alone
        // picks; a larger one that an alignment forces is overhead.
        heaplab_core::waste_by_class(self, ptr, layout)
    }

    fn into_arena(self) -> Arena {
        self.buddy.into_arena()
    }

    fn stats(&self) -> HeapStats {
        let buddy = self.buddy.stats();
        let own = self.ledger.stats(buddy.arena_bytes, 0, 0, Kept::default());
        HeapStats {
            metadata_bytes: buddy.metadata_bytes + self.tail_bytes,
            side_metadata_bytes: buddy.side_metadata_bytes + self.page_class.len() * (std::mem::size_of::<usize>() + 4),
            free_bytes: buddy.free_bytes + self.free_block_bytes,
            free_blocks: buddy.free_blocks + self.free_counts.iter().sum::<usize>(),
            footprint_bytes: buddy.footprint_bytes,
            counters: Counters::default(),
            ..own
        }
    }

    fn reports(&self) -> Reports {
        if C { Reports::ALL } else { Reports::ALL.uncounted() }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        self.buddy.for_each_free(visit);
        for (class, &head) in self.free_lists.iter().enumerate() {
            let mut block = head;
            while block != NONE {
                visit(block, self.sizes[class]);
                block = self.buddy.arena().load_word(block) as usize;
            }
        }
    }

    fn free_shape(&self) -> FreeShape {
        if !C {
            let mut shape = FreeShape::default();
            self.for_each_free(&mut |_, len| shape.add(len));
            return shape;
        }
        let mut shape = self.buddy.free_shape();
        for (class, &count) in self.free_counts.iter().enumerate() {
            shape.free_bytes += count * self.sizes[class];
            shape.free_blocks += count;
            if count > 0 {
                shape.largest_free_block = shape.largest_free_block.max(self.sizes[class]);
            }
        }
        shape
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        self.buddy.check()?;
        let arena = self.buddy.arena();
        let mut free_per_page = vec![0u32; self.page_class.len()];
        let mut free_bytes = 0;
        for (class, &head) in self.free_lists.iter().enumerate() {
            let size = self.sizes[class];
            let (mut block, mut count) = (head, 0);
            while block != NONE {
                ensure!(count < arena.len() / SMALLEST, "free list of class {size} does not end (a cycle?)");
                let page = block / self.page;
                ensure!(page < self.page_class.len() && self.page_class[page] == class, @block, "a free {size}-byte block is in a page its class does not own");
                ensure!((block % self.page).is_multiple_of(size) && block % self.page + size <= self.page, @block, "a free block is not on a {size}-byte boundary of its page");
                free_per_page[page] += 1;
                count += 1;
                block = arena.load_word(block) as usize;
            }
            ensure!(
                !C || count == self.free_counts[class],
                "class {size} counts {} free blocks, its list holds {count}",
                self.free_counts[class]
            );
            free_bytes += count * size;
        }
        let mut tails = 0;
        for (page, &class) in self.page_class.iter().enumerate() {
            if class == NONE {
                ensure!(free_per_page[page] == 0 && self.page_live[page] == 0, @page * self.page, "a page no class owns holds blocks");
                continue;
            }
            let per_page = (self.page / self.sizes[class]) as u32;
            ensure!(!self.buddy.is_free_at(page * self.page), @page * self.page, "a class page is on the buddy's free lists");
            ensure!(
                free_per_page[page] + self.page_live[page] == per_page,
                @page * self.page,
                "{} free + {} live blocks in a page of {per_page}",
                free_per_page[page],
                self.page_live[page]
            );
            tails += self.page % self.sizes[class];
        }
        if !C {
            return Ok(());
        }
        ensure!(
            free_bytes == self.free_block_bytes,
            "free block bytes counter {} but lists hold {free_bytes}",
            self.free_block_bytes
        );
        ensure!(tails == self.tail_bytes, "tail bytes counter {} but pages have {tails}", self.tail_bytes);
        self.stats().balanced()?;
        Ok(())
    }

    fn trim(&mut self) {
        let empty: Vec<usize> = (0..self.page_class.len())
            .filter(|&page| self.page_class[page] != NONE && self.page_live[page] == 0)
            .collect();
        if empty.is_empty() {
            return;
        }
        // Rebuild each class's list without the blocks of empty pages, in
        // the same order.
        for class in 0..self.sizes.len() {
            let mut kept = Vec::new();
            while let Some(block) = self.pop(class) {
                if self.page_live[block / self.page] != 0 || self.page_class[block / self.page] != class {
                    kept.push(block);
                }
            }
            for &block in kept.iter().rev() {
                // SAFETY: popped from this class's list just above.
                unsafe { self.push(class, block) };
            }
        }
        for page in empty {
            let class = self.page_class[page];
            if C {
                self.tail_bytes -= self.page % self.sizes[class];
            }
            self.page_class[page] = NONE;
            self.buddy.free_order(page * self.page, 0);
        }
    }
}
