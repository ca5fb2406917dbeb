//! Peers handed the harness's arena, as heaplab's own allocators are.

use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::NonNull;

use heaplab_core::{
    AllocError, Allocator, Arena, Detail, HeapStats, InvariantViolation, Reports, SetupError, ensure, realloc_by_moving,
};

use crate::tally::Tally;
use crate::{Adapter, at_least_one_byte, detail, nothing_to_walk};

/// In the arena, footprint from addresses; no granted size, no free space.
const ADDRESSES_ONLY: Reports =
    Reports { in_arena: true, granted: false, free_bytes: false, free_space: false, footprint: true, counts: true };

/// What an adapter reports, measured (`C`) or timed.
const fn reported<const C: bool>(reports: Reports) -> Reports {
    if C { reports } else { reports.uncounted() }
}

// ---------------------------------------------------------------------------
// talc

type TalcCore = talc::base::Talc<talc::source::Manual, talc::DefaultBinning>;

/// talc 5 (`talc::base::Talc` with a manual source: it never grows beyond
/// the arena), with its counters.
///
/// talc keeps its bins at the start of the arena (counted as metadata) and
/// rounds every chunk to 32 bytes with an 8-byte tag; that rounding is not
/// public, so granted bytes are not reported. Free bytes come from talc's
/// `available_bytes` counter; the free space cannot be walked.
#[derive(Debug)]
pub struct Talc<const C: bool = true> {
    talc: TalcCore,
    arena: Arena,
    tally: Tally<C>,
    /// Bytes talc took for itself when it claimed the arena.
    metadata: usize,
    /// Sum of the sizes passed to talc (size-0 requests pass 1; counted
    /// only when `C`).
    passed_bytes: usize,
}

impl<const C: bool> Adapter for Talc<C> {
    crate::layerable!();

    type Timed = Talc<false>;
    const NAME: &'static str = "talc";
    const ABOUT: &'static str = "talc 5.1: binned free lists with a bitmap, boundary tags, 32-byte chunks";

    fn build(arena: Arena) -> Result<Talc<C>, SetupError> {
        let mut talc = TalcCore::new(talc::source::Manual);
        let (base, len) = (arena.base().as_ptr(), arena.len());
        // SAFETY: the arena is owned by this adapter for as long as talc is
        // used, and nothing else touches its memory.
        let claimed = unsafe { talc.claim(base, len) };
        claimed.ok_or_else(|| SetupError::ArenaTooSmall { arena: len, needs: "talc's bins do not fit".into() })?;
        let metadata = len - talc.counters().available_bytes;
        Ok(Talc { talc, arena, tally: Tally::default(), metadata, passed_bytes: 0 })
    }
}

impl<const C: bool> Allocator for Talc<C> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let passed = at_least_one_byte(layout);
        // SAFETY: `passed` has a nonzero size, as talc requires.
        let ptr = unsafe { self.talc.allocate(passed) }.ok_or(AllocError::OutOfMemory)?;
        self.tally.add(&self.arena, ptr, layout.size(), layout.size(), layout.size());
        if C {
            self.passed_bytes += passed.size();
        }
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let passed = at_least_one_byte(layout);
        // SAFETY: the caller guarantees `ptr` is live with `layout`; talc was
        // given the same size at allocation.
        unsafe { self.talc.deallocate(ptr.as_ptr(), passed) };
        self.tally.remove(layout.size(), layout.size());
        if C {
            self.passed_bytes -= passed.size();
        }
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let passed = at_least_one_byte(old);
        // SAFETY: `ptr` is live with `passed` (the caller's guarantee), and
        // the new size is nonzero.
        if unsafe { self.talc.try_realloc_in_place(ptr.as_ptr(), passed, new_size.max(1)) } {
            if C {
                self.passed_bytes = self.passed_bytes - passed.size() + new_size.max(1);
            }
            return self.tally.resized(Some(&self.arena), ptr.as_ptr(), old.size(), new_size);
        }
        // SAFETY: forwarded from the caller.
        unsafe { realloc_by_moving(self, ptr, old, new_size) }
    }

    nothing_to_walk!();

    fn stats(&self) -> HeapStats {
        let counters = self.talc.counters();
        HeapStats {
            metadata_bytes: self.metadata,
            free_bytes: counters.available_bytes,
            free_blocks: counters.fragment_count,
            ..self.tally.stats(&self.arena)
        }
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        let counters = self.talc.counters();
        ensure!(
            !C || counters.allocation_count == self.tally.live(),
            "talc counts {} allocations, the adapter {}",
            counters.allocation_count,
            self.tally.live()
        );
        ensure!(
            !C || counters.allocated_bytes == self.passed_bytes,
            "talc counts {} allocated bytes, the adapter passed {}",
            counters.allocated_bytes,
            self.passed_bytes
        );
        ensure!(
            counters.available_bytes + self.passed_bytes <= self.arena.len(),
            "talc has {} bytes available and {} allocated in a {}-byte arena",
            counters.available_bytes,
            self.passed_bytes,
            self.arena.len()
        );
        Ok(())
    }

    fn reports(&self) -> Reports {
        reported::<C>(Reports { free_bytes: true, ..ADDRESSES_ONLY })
    }

    fn details(&self) -> Vec<Detail> {
        let counters = self.talc.counters();
        vec![
            detail("talc_counters", "talc", "available_bytes", counters.available_bytes as f64),
            detail("talc_counters", "talc", "fragment_count", counters.fragment_count as f64),
            detail("talc_counters", "talc", "allocated_bytes", counters.allocated_bytes as f64),
            detail("talc_counters", "talc", "overhead_bytes", counters.overhead_bytes() as f64),
            detail("talc_counters", "talc", "claimed_bytes", counters.claimed_bytes as f64),
        ]
    }

    fn into_arena(self) -> Arena {
        self.arena
    }
}

// ---------------------------------------------------------------------------
// rlsf

/// First level up to 2^28 granules of 32 bytes: pools up to 8 GiB.
const RLSF_FLLEN: usize = 28;
type RlsfCore = rlsf::Tlsf<'static, u32, u32, RLSF_FLLEN, 32>;

/// rlsf 0.2 (TLSF: 28 first-level classes, 32 second-level subdivisions),
/// with its `unstable` block walk.
///
/// rlsf's 16-byte header and 32-byte granules make each block's cost, but
/// for alignments of 32 and more the padding before the payload is not
/// visible from outside, so granted bytes are not reported. The free space
/// is walked with `iter_blocks`, so the largest free block and external
/// fragmentation are. The `Tlsf` struct (its list heads, about 3.6 KB) lives
/// outside the arena. Size-0 requests ask for 1 byte: rlsf would place a
/// zero-byte payload of an over-aligned block at the very end of its block,
/// where the next block's header starts.
#[derive(Debug)]
pub struct Rlsf<const C: bool = true> {
    tlsf: Box<RlsfCore>,
    arena: Arena,
    /// The pool as rlsf took it: the arena's start, the length it used.
    pool_len: usize,
    tally: Tally<C>,
}

impl<const C: bool> Adapter for Rlsf<C> {
    crate::layerable!();

    type Timed = Rlsf<false>;
    const NAME: &'static str = "rlsf";
    const ABOUT: &'static str = "rlsf 0.2: two-level segregated fit (TLSF), O(1) good fit, boundary tags";

    fn build(arena: Arena) -> Result<Rlsf<C>, SetupError> {
        let limit = (32usize << RLSF_FLLEN) - 32;
        if arena.len() > limit {
            let limit = format!("rlsf is configured for one pool of at most {limit} bytes");
            return Err(SetupError::ArenaTooLarge { arena: arena.len(), limit });
        }
        let mut tlsf = Box::new(RlsfCore::new());
        let pool = NonNull::slice_from_raw_parts(arena.base(), arena.len());
        // SAFETY: the arena is owned by this adapter and outlives `tlsf`
        // (both are dropped together, `tlsf` unused after); nothing else
        // touches it.
        let used = unsafe { tlsf.insert_free_block_ptr(pool) }.ok_or_else(|| SetupError::ArenaTooSmall {
            arena: arena.len(),
            needs: "rlsf cannot make a pool of it".into(),
        })?;
        Ok(Rlsf { tlsf, arena, pool_len: used.get(), tally: Tally::default() })
    }
}

impl<const C: bool> Rlsf<C> {
    fn blocks(&self, visit: &mut dyn FnMut(usize, usize, bool)) {
        let pool = NonNull::slice_from_raw_parts(self.arena.base(), self.pool_len);
        let base = self.arena.base().as_ptr().addr();
        // SAFETY: `pool` is the region given to `insert_free_block_ptr`, with
        // the length it returned.
        for block in unsafe { self.tlsf.iter_blocks(pool) } {
            visit(block.as_ptr().cast::<u8>().as_ptr().addr() - base, block.size(), block.is_occupied());
        }
    }
}

impl<const C: bool> Allocator for Rlsf<C> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let ptr = self.tlsf.allocate(at_least_one_byte(layout)).ok_or(AllocError::OutOfMemory)?;
        self.tally.add(&self.arena, ptr, layout.size(), layout.size(), layout.size());
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is live; rlsf needs the
        // alignment it was allocated with, which `layout` carries.
        unsafe { self.tlsf.deallocate(ptr, layout.align()) };
        self.tally.remove(layout.size(), layout.size());
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let new = Layout::from_size_align(new_size.max(1), old.align())
            .map_err(|_| AllocError::Unsupported("size overflows isize"))?;
        // SAFETY: `ptr` is live and `new` has its alignment (the caller's
        // guarantee); on `None` the old block is untouched.
        let moved = unsafe { self.tlsf.reallocate(ptr, new) };
        self.tally.resized(Some(&self.arena), moved.map_or(std::ptr::null_mut(), NonNull::as_ptr), old.size(), new_size)
    }

    fn granted(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        layout.size()
    }

    fn stats(&self) -> HeapStats {
        // rlsf's 32-byte sentinel block closes the pool.
        HeapStats { metadata_bytes: 32, side_metadata_bytes: size_of::<RlsfCore>(), ..self.tally.stats(&self.arena) }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        self.blocks(&mut |offset, len, occupied| {
            if !occupied {
                visit(offset, len);
            }
        });
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        let (mut end, mut occupied_blocks, mut previous_free) = (0, 0, false);
        let mut problem = None;
        self.blocks(&mut |offset, len, occupied| {
            if problem.is_some() {
                return;
            }
            if offset != end {
                problem = Some(format!("block at {offset} does not follow the one ending at {end}"));
            } else if !occupied && previous_free {
                problem = Some(format!("free block at {offset} follows a free block: not coalesced"));
            }
            end = offset + len;
            occupied_blocks += usize::from(occupied);
            previous_free = !occupied;
        });
        if let Some(problem) = problem {
            return Err(InvariantViolation::global(problem));
        }
        ensure!(
            !C || occupied_blocks == self.tally.live(),
            "rlsf has {occupied_blocks} blocks in use, the adapter {} live",
            self.tally.live()
        );
        ensure!(end + 32 <= self.arena.len(), "rlsf's blocks end at {end}, past the arena");
        Ok(())
    }

    fn reports(&self) -> Reports {
        reported::<C>(Reports { free_space: true, ..ADDRESSES_ONLY })
    }

    fn into_arena(self) -> Arena {
        self.arena
    }
}

// ---------------------------------------------------------------------------
// buddy_system_allocator

/// Orders up to 2^47 bytes: no arena comes near.
const BUDDY_ORDERS: usize = 48;

/// buddy_system_allocator 0.13 (`Heap`, without its spin lock).
///
/// A block is the request rounded up to a power of two, at least the
/// alignment and 8 bytes: exactly what the crate's `stats_alloc_actual`
/// sums, which `check()` holds the adapter to. Free lists are intrusive
/// singly linked lists, so finding a buddy on free scans its order's list;
/// the lists are private, so the free space cannot be walked. The list
/// heads live outside the arena.
#[derive(Debug)]
pub struct BuddySystem<const C: bool = true> {
    heap: buddy_system_allocator::Heap<BUDDY_ORDERS>,
    arena: Arena,
    tally: Tally<C>,
}

impl<const C: bool> BuddySystem<C> {
    #[inline]
    fn block(layout: Layout) -> usize {
        layout.size().next_power_of_two().max(layout.align()).max(size_of::<usize>())
    }
}

impl<const C: bool> Adapter for BuddySystem<C> {
    crate::layerable!();

    type Timed = BuddySystem<false>;
    const NAME: &'static str = "buddy-system";
    const ABOUT: &'static str = "buddy_system_allocator 0.13: binary buddy, linked free lists per order";

    fn build(arena: Arena) -> Result<BuddySystem<C>, SetupError> {
        let mut heap = buddy_system_allocator::Heap::<BUDDY_ORDERS>::new();
        // SAFETY: the arena is owned by this adapter for as long as `heap`
        // is used, and nothing else touches it.
        unsafe { heap.init(arena.base().as_ptr().addr(), arena.len()) };
        Ok(BuddySystem { heap, arena, tally: Tally::default() })
    }
}

impl<const C: bool> Allocator for BuddySystem<C> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let ptr = self.heap.alloc(layout).map_err(|()| AllocError::OutOfMemory)?;
        let block = Self::block(layout);
        self.tally.add(&self.arena, ptr, layout.size(), block, block);
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is live with `layout`.
        unsafe { self.heap.dealloc(ptr, layout) };
        self.tally.remove(layout.size(), Self::block(layout));
    }

    fn granted(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        Self::block(layout)
    }

    fn stats(&self) -> HeapStats {
        HeapStats {
            free_bytes: self.heap.stats_total_bytes() - self.heap.stats_alloc_actual(),
            side_metadata_bytes: size_of::<buddy_system_allocator::Heap<BUDDY_ORDERS>>(),
            ..self.tally.stats(&self.arena)
        }
    }

    fn for_each_free(&self, _visit: &mut dyn FnMut(usize, usize)) {}

    fn check(&self) -> Result<(), InvariantViolation> {
        ensure!(
            !C || self.heap.stats_alloc_actual() == self.tally.granted(),
            "the crate counts {} bytes in blocks, the adapter {}",
            self.heap.stats_alloc_actual(),
            self.tally.granted()
        );
        ensure!(
            !C || self.heap.stats_alloc_user() == self.tally.requested(),
            "the crate counts {} requested bytes, the adapter {}",
            self.heap.stats_alloc_user(),
            self.tally.requested()
        );
        ensure!(self.heap.stats_total_bytes() <= self.arena.len(), "the crate manages more than the arena");
        Ok(())
    }

    fn reports(&self) -> Reports {
        reported::<C>(Reports { granted: true, free_bytes: true, ..ADDRESSES_ONLY })
    }

    fn into_arena(self) -> Arena {
        self.arena
    }
}

// ---------------------------------------------------------------------------
// linked_list_allocator

/// linked_list_allocator 0.10 (`Heap`, without its spin lock).
///
/// First fit over an address-ordered list of holes, coalescing on free. A
/// block is the request rounded up to 16 bytes at least and a multiple of 8:
/// what the crate counts in `used()`, which `check()` holds the adapter to.
/// Alignment padding stays a hole when it is big enough for one and is lost
/// otherwise; the holes are private, so the free space cannot be walked.
pub struct LinkedList<const C: bool = true> {
    heap: linked_list_allocator::Heap,
    arena: Arena,
    tally: Tally<C>,
}

impl<const C: bool> LinkedList<C> {
    #[inline]
    fn block(layout: Layout) -> usize {
        linked_list_allocator::hole::HoleList::align_layout(layout).map_or(layout.size(), |aligned| aligned.size())
    }
}

impl<const C: bool> Adapter for LinkedList<C> {
    crate::layerable!();

    type Timed = LinkedList<false>;
    const NAME: &'static str = "linked-list";
    const ABOUT: &'static str = "linked_list_allocator 0.10: first fit, address-ordered holes, coalescing";

    fn build(arena: Arena) -> Result<LinkedList<C>, SetupError> {
        // SAFETY: the arena is owned by this adapter for as long as `heap`
        // is used, and nothing else touches it.
        let heap = unsafe { linked_list_allocator::Heap::new(arena.base().as_ptr(), arena.len()) };
        Ok(LinkedList { heap, arena, tally: Tally::default() })
    }
}

impl<const C: bool> Allocator for LinkedList<C> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let ptr = self.heap.allocate_first_fit(layout).map_err(|()| AllocError::OutOfMemory)?;
        let block = Self::block(layout);
        self.tally.add(&self.arena, ptr, layout.size(), block, block);
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is live with `layout`.
        unsafe { self.heap.deallocate(ptr, layout) };
        self.tally.remove(layout.size(), Self::block(layout));
    }

    fn granted(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        Self::block(layout)
    }

    fn stats(&self) -> HeapStats {
        HeapStats { free_bytes: self.heap.free(), ..self.tally.stats(&self.arena) }
    }

    fn for_each_free(&self, _visit: &mut dyn FnMut(usize, usize)) {}

    fn check(&self) -> Result<(), InvariantViolation> {
        ensure!(
            !C || self.heap.used() == self.tally.granted(),
            "the crate counts {} bytes used, the adapter {}",
            self.heap.used(),
            self.tally.granted()
        );
        ensure!(self.heap.size() <= self.arena.len(), "the crate manages more than the arena");
        Ok(())
    }

    fn reports(&self) -> Reports {
        reported::<C>(Reports { granted: true, free_bytes: true, ..ADDRESSES_ONLY })
    }

    fn into_arena(self) -> Arena {
        self.arena
    }
}

// ---------------------------------------------------------------------------
// dlmalloc

/// The arena as dlmalloc's "system": one segment, handed out once.
struct ArenaSegment {
    base: *mut u8,
    len: usize,
    given: Cell<bool>,
}

// SAFETY: the segment is only a description of the arena; the adapter that
// owns both moves them together, and dlmalloc calls it from one thread at a
// time (it takes `&mut self`).
unsafe impl Send for ArenaSegment {}

// SAFETY: `alloc` hands out the arena once, whole, and then fails; the arena
// stays valid while dlmalloc uses it (the adapter owns it). Nothing is ever
// released, remapped or assumed zeroed.
unsafe impl dlmalloc::Allocator for ArenaSegment {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        if self.given.get() || size > self.len {
            return (std::ptr::null_mut(), 0, 0);
        }
        self.given.set(true);
        (self.base, self.len, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        std::ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        false
    }

    fn page_size(&self) -> usize {
        4096
    }
}

/// dlmalloc 0.2 (the Rust port of Doug Lea's malloc 2.8), given the arena as
/// its one segment.
///
/// Small bins of exact sizes, tree bins for large ones, a designated victim
/// and a top chunk; the state (`malloc_state`) lives outside the arena,
/// boxed because it points into itself. The segment is claimed when the
/// adapter is built, by allocating and freeing one byte. dlmalloc keeps no
/// public statistics, so only the footprint (from addresses) is reported.
pub struct Dlmalloc<const C: bool = true> {
    dl: Box<dlmalloc::Dlmalloc<ArenaSegment>>,
    arena: Arena,
    tally: Tally<C>,
}

/// `Debug` for adapters whose crate's type has none: the arena and the tally.
macro_rules! debug_without_core {
    ($($adapter:ident),*) => {$(
        impl<const C: bool> std::fmt::Debug for $adapter<C> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($adapter))
                    .field("arena", &self.arena)
                    .field("tally", &self.tally)
                    .finish_non_exhaustive()
            }
        }
    )*};
}

debug_without_core!(LinkedList, Dlmalloc, BuddySlab);

impl<const C: bool> Adapter for Dlmalloc<C> {
    crate::layerable!();

    type Timed = Dlmalloc<false>;
    const NAME: &'static str = "dlmalloc";
    const ABOUT: &'static str = "dlmalloc 0.2 (Doug Lea's malloc 2.8): exact small bins, tree bins, boundary tags";

    fn build(arena: Arena) -> Result<Dlmalloc<C>, SetupError> {
        let segment = ArenaSegment { base: arena.base().as_ptr(), len: arena.len(), given: Cell::new(false) };
        let mut dl = Box::new(dlmalloc::Dlmalloc::new_with_allocator(segment));
        dl.set_granularity(4096);
        // SAFETY: claim the segment: a one-byte block, freed at once with
        // the layout it was allocated with.
        let claimed = unsafe {
            let ptr = dl.malloc(1, 1);
            if !ptr.is_null() {
                dl.free(ptr, 1, 1);
            }
            !ptr.is_null()
        };
        if !claimed {
            return Err(SetupError::ArenaTooSmall { arena: arena.len(), needs: "dlmalloc cannot claim it".into() });
        }
        Ok(Dlmalloc { dl, arena, tally: Tally::default() })
    }
}

impl<const C: bool> Allocator for Dlmalloc<C> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: any size and power-of-two alignment may be asked for.
        let ptr =
            NonNull::new(unsafe { self.dl.malloc(layout.size(), layout.align()) }).ok_or(AllocError::OutOfMemory)?;
        self.tally.add(&self.arena, ptr, layout.size(), layout.size(), layout.size());
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is live with `layout`.
        unsafe { self.dl.free(ptr.as_ptr(), layout.size(), layout.align()) };
        self.tally.remove(layout.size(), layout.size());
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: `ptr` is live with `old` (the caller's guarantee). dlmalloc
        // keeps alignments above 16 itself and guarantees 16 otherwise; on
        // null the old block is untouched.
        let moved = unsafe { self.dl.realloc(ptr.as_ptr(), old.size(), old.align(), new_size) };
        self.tally.resized(Some(&self.arena), moved, old.size(), new_size)
    }

    nothing_to_walk!();

    fn stats(&self) -> HeapStats {
        self.tally.stats(&self.arena)
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        ensure!(self.dl.allocator().given.get(), "dlmalloc never claimed the arena");
        ensure!(self.tally.footprint() <= self.arena.len(), "a block ends past the arena");
        Ok(())
    }

    fn reports(&self) -> Reports {
        reported::<C>(ADDRESSES_ONLY)
    }

    fn into_arena(self) -> Arena {
        self.arena
    }
}

// ---------------------------------------------------------------------------
// buddy-slab-allocator

const PAGE: usize = 4096;
/// The largest slab: 4 pages.
const SLAB_ALIGN: usize = 4 * PAGE;
type SlabCore = buddy_slab_allocator::SlabAllocator<PAGE>;
type PageBuddy = buddy_slab_allocator::BuddyAllocator<PAGE>;

/// buddy-slab-allocator 0.6 (ArceOS): a page buddy allocator with slab
/// caches for 8 to 2048 bytes, composed as its own `GlobalAllocator` does
/// but without its locks and per-CPU pools.
///
/// A request of at most 2048 bytes (size and alignment) takes an object of
/// the smallest class that holds `max(size, align)`; slabs are 1, 2 or 4
/// pages from the buddy, handed back when empty. Larger requests take a
/// buddy block of pages, rounded up to a power of two. Granted bytes follow
/// from those rules (the class through the crate's public `SizeClass`). Page
/// metadata (12 bytes a page) sits at the start of the arena, and the region
/// starts up to 12 KiB into it, so that the buddy's pages are aligned to the
/// largest slab (which its slab lookup assumes).
pub struct BuddySlab<const C: bool = true> {
    buddy: PageBuddy,
    slab: SlabCore,
    arena: Arena,
    tally: Tally<C>,
    /// Bytes of granted large (buddy) blocks (counted only when `C`).
    large_bytes: usize,
}

// SAFETY: the allocators point only into the arena, which moves with them.
unsafe impl<const C: bool> Send for BuddySlab<C> {}

impl<const C: bool> BuddySlab<C> {
    #[inline]
    fn class(layout: Layout) -> Option<buddy_slab_allocator::SizeClass> {
        buddy_slab_allocator::SizeClass::from_layout(layout)
    }

    #[inline]
    fn pages(size: usize) -> usize {
        size.div_ceil(PAGE).max(1)
    }

    #[inline]
    fn block(layout: Layout) -> usize {
        match Self::class(layout) {
            Some(class) => class.size(),
            None => Self::pages(layout.size()).next_power_of_two() * PAGE,
        }
    }

    fn slab_object(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        use buddy_slab_allocator::SlabAllocResult;
        for _ in 0..2 {
            match self.slab.alloc(layout).map_err(|_| AllocError::Unsupported("the slab rejects this layout"))? {
                SlabAllocResult::Allocated(ptr) => return Ok(ptr),
                SlabAllocResult::NeedsSlab { size_class, pages } => {
                    let bytes = pages * PAGE;
                    let base = self.buddy.alloc_pages(pages, bytes).map_err(|_| AllocError::OutOfMemory)?;
                    // SAFETY: `base` is the block the buddy just handed out.
                    unsafe { self.buddy.set_page_flags(base, buddy_slab_allocator::buddy::PageFlags::Slab) }
                        .map_err(|_| AllocError::OutOfMemory)?;
                    self.slab.add_slab(size_class, base, bytes, 0);
                }
            }
        }
        Err(AllocError::OutOfMemory)
    }
}

impl<const C: bool> Adapter for BuddySlab<C> {
    crate::layerable!();

    type Timed = BuddySlab<false>;
    const NAME: &'static str = "buddy-slab";
    const ABOUT: &'static str = "buddy-slab-allocator 0.6: page buddy with slab caches of 8 B to 2 KiB (ArceOS)";

    fn build(arena: Arena) -> Result<BuddySlab<C>, SetupError> {
        let mut buddy = PageBuddy::new();
        // The slab finds an object's slab by aligning its address down to
        // the slab's size (up to 4 pages), and the buddy aligns blocks to
        // its heap's start: that start must be 4-page aligned. Skip into
        // the arena until it is.
        let mut skip = 0;
        loop {
            let Some(len) = arena.len().checked_sub(skip) else {
                let needs = "buddy-slab-allocator needs a 4-page aligned start inside it".into();
                return Err(SetupError::ArenaTooSmall { arena: arena.len(), needs });
            };
            // SAFETY: the arena is owned by this adapter for as long as the
            // buddy is used, and nothing else touches it; the slice only
            // tells the buddy where its region is.
            let region = unsafe { std::slice::from_raw_parts_mut(arena.base().as_ptr().add(skip), len) };
            // SAFETY: as above: the region stays valid and unshared.
            unsafe { buddy.init(region) }
                .map_err(|error| SetupError::Peer(format!("buddy-slab-allocator refused the arena: {error:?}")))?;
            let start = buddy.section(0).map_or(0, |section| section.start);
            let misaligned = start % SLAB_ALIGN;
            if misaligned == 0 {
                break;
            }
            skip += SLAB_ALIGN - misaligned;
        }
        Ok(BuddySlab { buddy, slab: SlabCore::new(), arena, tally: Tally::default(), large_bytes: 0 })
    }
}

impl<const C: bool> Allocator for BuddySlab<C> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // The class is found once per call: it decides the path and the
        // granted size.
        let (ptr, block) = match Self::class(layout) {
            Some(class) => (self.slab_object(layout)?, class.size()),
            None => {
                let pages = Self::pages(layout.size());
                let addr =
                    self.buddy.alloc_pages(pages, layout.align().max(PAGE)).map_err(|_| AllocError::OutOfMemory)?;
                let block = pages.next_power_of_two() * PAGE;
                if C {
                    self.large_bytes += block;
                }
                (NonNull::new(addr as *mut u8).ok_or(AllocError::OutOfMemory)?, block)
            }
        };
        self.tally.add(&self.arena, ptr, layout.size(), block, block);
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        use buddy_slab_allocator::SlabDeallocResult;
        let block = match Self::class(layout) {
            Some(class) => {
                if let SlabDeallocResult::FreeSlab { base, pages } = self.slab.dealloc(ptr, layout) {
                    self.buddy.dealloc_pages(base, pages);
                }
                class.size()
            }
            None => {
                let pages = Self::pages(layout.size());
                self.buddy.dealloc_pages(ptr.as_ptr().addr(), pages);
                let block = pages.next_power_of_two() * PAGE;
                if C {
                    self.large_bytes -= block;
                }
                block
            }
        };
        self.tally.remove(layout.size(), block);
    }

    fn granted(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        Self::block(layout)
    }

    fn stats(&self) -> HeapStats {
        HeapStats { metadata_bytes: self.arena.len() - self.buddy.managed_bytes(), ..self.tally.stats(&self.arena) }
    }

    fn for_each_free(&self, _visit: &mut dyn FnMut(usize, usize)) {}

    fn check(&self) -> Result<(), InvariantViolation> {
        let (managed, allocated) = (self.buddy.managed_bytes(), self.buddy.allocated_bytes());
        ensure!(managed <= self.arena.len(), "the buddy manages {managed} bytes of a {}-byte arena", self.arena.len());
        ensure!(
            self.buddy.free_pages() * PAGE + allocated == managed,
            "free pages and allocated bytes do not add up to the managed bytes"
        );
        ensure!(
            allocated >= self.large_bytes,
            "the buddy has {allocated} bytes allocated, fewer than the {} in large blocks",
            self.large_bytes
        );
        ensure!(
            allocated >= self.tally.granted(),
            "the buddy has {allocated} bytes allocated, fewer than the {} granted",
            self.tally.granted()
        );
        Ok(())
    }

    fn reports(&self) -> Reports {
        reported::<C>(Reports { granted: true, ..ADDRESSES_ONLY })
    }

    fn details(&self) -> Vec<Detail> {
        vec![
            detail("buddy_slab", "pages", "free", self.buddy.free_pages() as f64),
            detail("buddy_slab", "pages", "total", self.buddy.total_pages() as f64),
            detail("buddy_slab", "bytes", "allocated", self.buddy.allocated_bytes() as f64),
            detail("buddy_slab", "bytes", "large", self.large_bytes as f64),
        ]
    }

    fn into_arena(self) -> Arena {
        self.arena
    }
}
