//! The boundary-tag heap with one free list per size class, shared by
//! segregated fits and the two-level segregated fit: they differ only in
//! how sizes map to lists and how a request finds its list ([`Index`]).
//!
//! - A free block always sits, LIFO, in the list of its own size's class.
//! - **Allocation**: the index names a block; if it is larger than needed by
//!   at least 32 bytes it is split, and the remainder goes to the list of
//!   its class. An alignment above 16 is served by padding inside the block
//!   (see [`heaplab_freelist::tags`]).
//! - **Free**: immediate coalescing with both neighbours through the
//!   boundary tags (O(1)); the merged block goes to its class's list.
//! - **Realloc**: shrinks in place, grows into a free successor, or moves.

use std::alloc::Layout;
use std::fmt::Debug;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use heaplab_core::{
    AllocError, Allocator, Arena, FreeListView, FreeShape, HeapStats, InvariantViolation, Kept, Reports, SetupError,
    Waste, ensure,
};
use heaplab_freelist::tags::{FIRST_BLOCK, FreeLists, GRANULE, Mem, NIL, TagHeap};

/// How free-block sizes map to lists, and how a request finds a list.
///
/// # Safety
/// The boundary-tag engine trusts an index with unchecked accesses:
/// `class_of` of any block size up to the arena's is below the number of
/// lists `prepare` returned, and `search` returns only blocks listed in
/// `heads`, with `class` the list holding the block, `head` true exactly
/// when the block is `heads[class]`, and the gap
/// [`heaplab_freelist::tags::fit`] gives it.
pub unsafe trait Index: Debug {
    /// The optional counters its allocator keeps.
    const KEPT: Kept;
    /// Where the list heads live: a [`Vec`], or storage inside the
    /// allocator for an index that knows its largest number of lists
    /// ([`InlineHeads`]), so that reaching a head costs no load of a table
    /// pointer (which a store into the arena forces the compiler to reload,
    /// once per op).
    type Heads: Debug + DerefMut<Target = [usize]>;
    /// Storage for `lists` empty list heads (`NIL`).
    fn heads(lists: usize) -> Self::Heads;
    /// Size the index for an arena of `arena_bytes`; returns the number of lists.
    fn prepare(&mut self, arena_bytes: usize) -> usize;
    /// The list a free block of `size` bytes belongs to.
    fn class_of(&self, size: usize) -> usize;
    /// Record that list `class` became non-empty or empty.
    fn mark(&mut self, class: usize, nonempty: bool);
    /// Is list `class` marked non-empty?
    fn is_marked(&self, class: usize) -> bool;
    /// Find a free block for `needed` bytes aligned to `align`: the block,
    /// its gap and its class, and the number of blocks inspected.
    ///
    /// # Safety
    /// `heads` are this index's list heads (one per list `prepare` made),
    /// kept in step with its marks, and their members are free blocks of the
    /// heap `mem` is the memory of.
    unsafe fn search(&self, mem: Mem, heads: &[usize], needed: usize, align: usize) -> (Option<Found>, u64);
    /// List `list`'s name, for pictures.
    fn list_name(&self, list: usize) -> String {
        format!("list {list}")
    }
    /// For a two-level index: lists per first level.
    fn second_level(&self) -> Option<usize> {
        None
    }
}

/// A block a search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The block.
    pub block: usize,
    /// Bytes to skip for the alignment (see [`heaplab_freelist::tags::fit`]).
    pub gap: usize,
    /// The list it is on.
    pub class: usize,
    /// Is it the head of that list?
    pub head: bool,
}

/// One LIFO list per class (heads only: nothing needs a tail), and the index.
#[derive(Debug)]
pub struct ClassLists<I: Index> {
    index: I,
    /// `heads[class]`: the first free block of the class, or `NIL`. A block
    /// is in the list of `class_of(its size)`.
    heads: I::Heads,
}

/// Up to [`InlineHeads::CAPACITY`] list heads inside the allocator; only
/// the first `len` are lists (the rest stay `NIL`, never read).
#[derive(Debug)]
pub struct InlineHeads {
    len: usize,
    heads: [usize; InlineHeads::CAPACITY],
}

impl InlineHeads {
    /// The most lists: 64 first levels of 32 second-level lists, TLSF's
    /// largest index.
    pub const CAPACITY: usize = 64 * 32;

    /// `len` empty heads (at most [`InlineHeads::CAPACITY`]).
    pub fn new(len: usize) -> InlineHeads {
        assert!(len <= InlineHeads::CAPACITY, "{len} lists, at most {} inline", InlineHeads::CAPACITY);
        InlineHeads { len, heads: [NIL; InlineHeads::CAPACITY] }
    }
}

impl Deref for InlineHeads {
    type Target = [usize];

    #[inline(always)]
    fn deref(&self) -> &[usize] {
        // SAFETY: `len <= CAPACITY`, checked when it was made.
        unsafe { self.heads.get_unchecked(..self.len) }
    }
}

impl DerefMut for InlineHeads {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [usize] {
        // SAFETY: as in `deref`.
        unsafe { self.heads.get_unchecked_mut(..self.len) }
    }
}

impl<I: Index> ClassLists<I> {
    /// The list head of `class`.
    #[inline(always)]
    fn head(&mut self, class: usize) -> &mut usize {
        debug_assert!(class < self.heads.len(), "class {class} of {}", self.heads.len());
        // SAFETY: `class` came from `class_of` of a block size, below the
        // number of lists (the `Index` contract).
        unsafe { self.heads.get_unchecked_mut(class) }
    }

    /// Take the head `block` of list `class` off it.
    ///
    /// # Safety
    /// `block` heads list `class`.
    #[inline(always)]
    unsafe fn pop(&mut self, mem: Mem, class: usize, block: usize) {
        // SAFETY: the caller's guarantee; the next member is a listed free block.
        unsafe {
            debug_assert!(*self.head(class) == block && mem.prev(block) == NIL);
            let next = mem.next(block);
            *self.head(class) = next;
            if next == NIL {
                self.index.mark(class, false);
            } else {
                mem.set_prev(next, NIL);
            }
        }
    }

    /// Take `block` off its list; `class` is found only if it was the
    /// head (a middle block's neighbours need no list head).
    ///
    /// # Safety
    /// `block` is listed, on the list of `class()`.
    #[inline(always)]
    unsafe fn unlink(&mut self, mem: Mem, block: usize, class: impl FnOnce(&I) -> usize) {
        // SAFETY: the caller's guarantee; the block's list neighbours are
        // listed free blocks.
        unsafe {
            let (next, prev) = (mem.next(block), mem.prev(block));
            if prev != NIL {
                mem.set_next(prev, next);
            } else {
                let class = class(&self.index);
                *self.head(class) = next;
                if next == NIL {
                    self.index.mark(class, false);
                }
            }
            if next != NIL {
                mem.set_prev(next, prev);
            }
        }
    }
}

// SAFETY: insert and remove link only the block they are given, in the list
// of its class, whose members are free blocks.
unsafe impl<I: Index> FreeLists for ClassLists<I> {
    #[inline(always)]
    fn insert(&mut self, mem: Mem, block: usize, size: usize) {
        let class = self.index.class_of(size);
        let head = self.head(class);
        let was_empty = *head == NIL;
        // SAFETY: the engine gives a free block; the list's members are free blocks.
        unsafe { mem.push(head, block) };
        // A list that had blocks is marked already.
        if was_empty {
            self.index.mark(class, true);
        }
    }

    #[inline(always)]
    fn remove(&mut self, mem: Mem, block: usize, size: usize) {
        // SAFETY: the engine gives a listed block, in the list of its size's class.
        unsafe { self.unlink(mem, block, |index| index.class_of(size)) };
    }
}

/// The lists while the head of list `class`, found by a search, is taken:
/// taken whole it is popped; split, its remainder replaces it at the head
/// when the remainder's size maps to the same list (a large block carved
/// from the front, request after request), else it is popped and the
/// remainder inserted afresh. Either way the lists end as a pop followed
/// by an insert at the head would leave them: the same order, so the same
/// placements, with no list marked empty and marked again.
struct HeadTaken<'a, I: Index> {
    lists: &'a mut ClassLists<I>,
    class: usize,
}

// SAFETY: as for `ClassLists`: only the given blocks and listed ones are
// linked; `taken` and `split` get the head of `class` (the only calls the
// engine's `take` makes for it), `insert` and `remove` pass through.
unsafe impl<I: Index> FreeLists for HeadTaken<'_, I> {
    #[inline(always)]
    fn insert(&mut self, mem: Mem, block: usize, size: usize) {
        self.lists.insert(mem, block, size);
    }

    #[inline(always)]
    fn remove(&mut self, mem: Mem, block: usize, size: usize) {
        self.lists.remove(mem, block, size);
    }

    #[inline(always)]
    fn taken(&mut self, mem: Mem, block: usize, _size: usize) {
        // SAFETY: `block` heads list `class` (how this was made).
        unsafe { self.lists.pop(mem, self.class, block) };
    }

    #[inline(always)]
    fn split(&mut self, mem: Mem, block: usize, _size: usize, rest: usize, rest_size: usize) {
        if self.lists.index.class_of(rest_size) == self.class {
            // SAFETY: `block` heads list `class`; `rest` is free space past
            // the allocated front, its link words apart from `block`'s.
            unsafe {
                debug_assert!(*self.lists.head(self.class) == block && mem.prev(block) == NIL);
                let next = mem.next(block);
                mem.set_next(rest, next);
                mem.set_prev(rest, NIL);
                if next != NIL {
                    mem.set_prev(next, rest);
                }
                *self.lists.head(self.class) = rest;
            }
        } else {
            // SAFETY: as in `taken`.
            unsafe { self.lists.pop(mem, self.class, block) };
            self.lists.insert(mem, rest, rest_size);
        }
    }
}

/// A segregated boundary-tag heap; `C`: whether it keeps the ledger.
#[derive(Debug)]
pub struct SegregatedHeap<I: Index, const C: bool = true> {
    heap: TagHeap<C>,
    lists: ClassLists<I>,
}

impl<I: Index, const C: bool> SegregatedHeap<I, C> {
    /// An empty heap over `arena`.
    pub fn new(arena: Arena, mut index: I) -> Result<SegregatedHeap<I, C>, SetupError> {
        let lists = index.prepare(arena.len());
        let (heap, size) = TagHeap::new(arena)?;
        let mut lists = ClassLists { index, heads: I::heads(lists) };
        lists.insert(heap.mem(), FIRST_BLOCK, size);
        Ok(SegregatedHeap { heap, lists })
    }

    /// Allocate `size` bytes aligned to `align` (at most the arena's).
    #[inline(always)]
    fn alloc_aligned(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let needed = heaplab_freelist::tags::block_size_for(size).ok_or(AllocError::OutOfMemory)?;
        // SAFETY: the heads are the index's own lists, of this heap's free blocks.
        let (found, inspected) = unsafe { self.lists.index.search(self.heap.mem(), &self.lists.heads, needed, align) };
        self.heap.ledger.inspected(inspected);
        let Found { block, gap, class, head } = found.ok_or(AllocError::OutOfMemory)?;
        // SAFETY: the index returns a listed free block, its class, whether
        // it heads the list, and its fit's gap; once unlinked, the block is
        // detached.
        let (payload, granted) = unsafe {
            if head {
                // The engine tells the head's fate: a remainder that stays
                // in the head's own list takes its place (no mark changes).
                self.heap.take(&mut HeadTaken { lists: &mut self.lists, class }, block, gap, needed)
            } else {
                self.lists.unlink(self.heap.mem(), block, |_| class);
                self.heap.take_detached(&mut self.lists, block, gap, needed)
            }
        };
        self.heap.ledger.allocated(size, granted);
        Ok(payload)
    }

    /// The index.
    pub fn index(&self) -> &I {
        &self.lists.index
    }
}

impl<I: Index, const C: bool> Allocator for SegregatedHeap<I, C> {
    fn arena(&self) -> &Arena {
        self.heap.arena()
    }

    // Inlined into the replay loop: a call here would cost a third of the
    // allocator's own instructions in register saves and restores. (rlsf's
    // allocate and deallocate are calls; the harness times the whole op
    // either way.) The common alignment is its own path, compiled
    // with the alignment a constant: no padding to look for.
    #[inline(always)]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
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
        let side = self.lists.heads.len() * std::mem::size_of::<usize>();
        self.heap.ledger.stats(self.heap.arena().len(), self.heap.metadata_bytes(), side, I::KEPT)
    }

    fn reports(&self) -> Reports {
        if C { Reports::ALL } else { Reports::ALL.uncounted() }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        for &head in self.lists.heads.iter() {
            self.heap.for_each_in(head, visit);
        }
    }

    fn free_lists(&self) -> Option<FreeListView> {
        let mut blocks = Vec::new();
        for (list, &head) in self.lists.heads.iter().enumerate() {
            self.heap.for_each_in(head, &mut |block, _| blocks.push((list, block)));
        }
        Some(FreeListView {
            names: (0..self.lists.heads.len()).map(|list| self.lists.index.list_name(list)).collect(),
            blocks,
            rover: None,
            second_level: self.lists.index.second_level(),
        })
    }

    /// The largest free block is in the first non-empty list from the top;
    /// free bytes and blocks are counted (walked, without a ledger).
    fn free_shape(&self) -> FreeShape {
        if !C {
            let mut shape = FreeShape::default();
            self.for_each_free(&mut |_, len| shape.add(len));
            return shape;
        }
        let mut largest = 0;
        if let Some(&head) = self.lists.heads.iter().rev().find(|&&head| head != NIL) {
            self.heap.for_each_in(head, &mut |_, len| largest = largest.max(len));
        }
        FreeShape {
            free_bytes: self.heap.ledger.free_bytes(),
            free_blocks: self.heap.ledger.free_blocks(),
            largest_free_block: largest,
        }
    }

    /// See [`heaplab_core::Allocator::check`]: the tags, every block on the
    /// list of its class, the marks agreeing with the lists, the counters.
    fn check(&self) -> Result<(), InvariantViolation> {
        let walk = self.heap.walk()?;
        let mut listed = 0;
        let index = &self.lists.index;
        for (class, &head) in self.lists.heads.iter().enumerate() {
            let members = self.heap.list_members(head, &walk)?;
            ensure!(
                index.is_marked(class) != members.is_empty(),
                "class {class}'s bit says {}, its list holds {}",
                index.is_marked(class),
                members.len()
            );
            for &block in &members {
                let size = self.heap.size(block);
                ensure!(index.class_of(size) == class, @block, "a {size}-byte block is on the list of class {class}, not {}", index.class_of(size));
            }
            listed += members.len();
        }
        ensure!(
            listed == walk.free_blocks.len(),
            "{listed} blocks listed, {} free in the heap",
            walk.free_blocks.len()
        );
        self.heap.ledger.identity(
            walk.granted_bytes,
            walk.free_bytes,
            walk.free_blocks.len(),
            self.heap.metadata_bytes(),
            self.heap.arena().len(),
        )
    }
}
