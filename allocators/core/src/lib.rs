//! The allocator contract of heaplab.
//!
//! heaplab puts allocator strategies side by side: a naive free list, segregated
//! lists, a binary buddy system, buddy plus slab. They differ in everything but
//! this crate, which holds what they share — the [`Allocator`] trait, the
//! [`Arena`] they manage, the [`HeapStats`] they keep, the spec strings that
//! name their configurations — and the conformance suite every one of them
//! must pass (feature `conformance`).
//!
//! # Why the interface has this shape
//!
//! **One arena, owned.** An allocator is built on an [`Arena`], a real block of
//! memory the harness creates and hands over. It keeps its metadata (boundary
//! tags, free-list links, slab headers) inside that arena, as a real allocator
//! of its design would, so that timings include the memory traffic the design
//! causes. Ownership makes the hand-over safe: nobody else can touch the
//! memory while the allocator lives.
//!
//! **Offsets, not addresses.** Everything an allocator reports — the free
//! space walk, footprints, invariant violations — is an offset from the arena's
//! base. Results then do not depend on where the operating system mapped the
//! arena, and two runs with the same seed agree to the byte.
//!
//! **`free` takes the layout**, as Rust's `GlobalAlloc::dealloc` does. An
//! allocator may rely on it: the layout passed to `free` (and as `old` to
//! `realloc`) is exactly the one the block was allocated with, or the one its
//! last `realloc` produced (same alignment, the new size). A design that a C
//! programmer would write with a size header (boundary tags, malloc-lab style)
//! keeps the header anyway and says so; a design that would not (a slab, a
//! buddy system with out-of-band free bits) may use the layout instead. Which
//! one it is changes the internal fragmentation it reports, so each allocator
//! documents it.
//!
//! **`granted` counts everything a block costs.** [`Allocator::granted`] is the
//! number of arena bytes a live block makes unavailable to others: the
//! payload, its header and footer, padding before or after it for alignment,
//! and the rounding up to a size class or power of two. The gap between
//! `granted` and the request is internal fragmentation, so an allocator that
//! under-reports it looks better than it is: the conformance suite checks that
//! `granted ≥ size` and that the sum over live blocks equals
//! [`HeapStats::granted_bytes`].
//!
//! **Stats are cheap, shape is walked.** [`Allocator::stats`] returns counters
//! kept current on every operation in O(1). The shape of the free space (the
//! largest free block, for external fragmentation) may need a walk:
//! [`Allocator::for_each_free`] visits it and [`Allocator::free_shape`]
//! summarises it; the harness samples it every so many operations, never on
//! every one.
//!
//! **Counters are for measuring, not for timing.** The counters behind
//! `stats()` live in one [`Ledger`] type that every allocator uses, with a
//! compile-time switch: [`AllocatorConfig::build`] makes the measured build
//! (every counter kept, for the metrics pass and the tests),
//! [`AllocatorConfig::build_timed`] the timed build, whose ledger is empty
//! and compiles away, so that a timed replay runs the strategy's own work
//! and nothing else, as a peer's does. The conformance suite holds each
//! timed build to its measured twin, block for block (`conformance::timed_twin`).
//!
//! # What callers guarantee and what allocators guarantee
//!
//! - Requests may be of any size including zero and any power-of-two alignment
//!   up to the arena's alignment ([`Arena::DEFAULT_ALIGN`], one page). A
//!   zero-size request gets a real, distinct block.
//! - Failure is a value: when no block can hold a request, `alloc` and
//!   `realloc` return [`AllocError`] and leave the heap as it was. They never
//!   panic for lack of memory. A failed `realloc` leaves the old block live and
//!   intact, as C's `realloc` does.
//! - Every returned block is aligned, lies inside the arena and overlaps no
//!   other live block; its bytes are the caller's until it is freed.
//! - [`Allocator::check`] verifies every invariant the allocator relies on, by
//!   walking the whole heap. It is for tests and `--verify`, not for speed.
//! - After everything is freed and [`Allocator::trim`] is called, the free
//!   space is the same as when the allocator was built.

mod arena;
pub mod bump;
pub mod concurrent;
mod error;
pub mod ledger;
pub mod spec;
mod stats;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::alloc::Layout;
use std::ptr::NonNull;

pub use arena::{Arena, ArenaError};
pub use error::{AllocError, BuildError, InvariantViolation, SetupError, SpecError};
pub use ledger::{Counted, Kept, Ledger, Uncounted};
pub use spec::{AllocatorConfig, Spec, Visitor};
pub use stats::{BuddyLevel, Counters, Detail, FreeListView, FreeShape, HeapStats, Reports, Waste};

/// The kind of an allocator call, as workloads, replay and results files
/// name them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// [`Allocator::alloc`].
    #[default]
    Alloc,
    /// [`Allocator::free`].
    Free,
    /// [`Allocator::realloc`].
    Realloc,
}

impl OpKind {
    /// All kinds, in a fixed order.
    pub const ALL: [OpKind; 3] = [OpKind::Alloc, OpKind::Free, OpKind::Realloc];

    /// `alloc`, `free` or `realloc`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Alloc => "alloc",
            OpKind::Free => "free",
            OpKind::Realloc => "realloc",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// The level of the memory system a request goes to, in the lecture's
/// picture of kernel memory: pages from the buddy system, byte-sized
/// objects from the slab caches, virtually contiguous ranges, or a user
/// program's heap. An allocator with one level serves them all alike (the
/// default [`Allocator::alloc_at`]); the kernel model routes each to its
/// level over one pool of page frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// User memory (`malloc`): what recorded programs ask for.
    #[default]
    User = 0,
    /// `kmalloc`: physically contiguous bytes from the slab caches.
    Kmalloc = 1,
    /// `vmalloc`: virtually contiguous, built from single pages.
    Vmalloc = 2,
    /// `alloc_pages`: `2^order` physically contiguous page frames.
    Page = 3,
}

impl Level {
    /// All levels, in a fixed order.
    pub const ALL: [Level; 4] = [Level::User, Level::Kmalloc, Level::Vmalloc, Level::Page];

    /// `user`, `kmalloc`, `vmalloc` or `page`.
    pub fn name(self) -> &'static str {
        match self {
            Level::User => "user",
            Level::Kmalloc => "kmalloc",
            Level::Vmalloc => "vmalloc",
            Level::Page => "page",
        }
    }

    /// The level called `name`.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.name() == name)
    }

    /// The level numbered `index` (its `as u8`).
    pub fn from_index(index: u8) -> Option<Level> {
        Level::ALL.get(usize::from(index)).copied()
    }
}

/// One figure per op kind, indexed by [`OpKind`] instead of a number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PerKind<T> {
    /// For allocations.
    pub alloc: T,
    /// For frees.
    pub free: T,
    /// For reallocations.
    pub realloc: T,
}

impl<T> PerKind<T> {
    /// A figure for each kind, from `f`.
    pub fn from_fn(mut f: impl FnMut(OpKind) -> T) -> PerKind<T> {
        PerKind { alloc: f(OpKind::Alloc), free: f(OpKind::Free), realloc: f(OpKind::Realloc) }
    }

    /// The figures with their kinds, in [`OpKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (OpKind, &T)> {
        OpKind::ALL.into_iter().zip([&self.alloc, &self.free, &self.realloc])
    }
}

impl<T> std::ops::Index<OpKind> for PerKind<T> {
    type Output = T;
    fn index(&self, kind: OpKind) -> &T {
        match kind {
            OpKind::Alloc => &self.alloc,
            OpKind::Free => &self.free,
            OpKind::Realloc => &self.realloc,
        }
    }
}

impl<T> std::ops::IndexMut<OpKind> for PerKind<T> {
    fn index_mut(&mut self, kind: OpKind) -> &mut T {
        match kind {
            OpKind::Alloc => &mut self.alloc,
            OpKind::Free => &mut self.free,
            OpKind::Realloc => &mut self.realloc,
        }
    }
}

/// A memory allocator that manages one [`Arena`].
///
/// See the crate documentation for the contract.
pub trait Allocator {
    /// The arena this allocator manages.
    fn arena(&self) -> &Arena;

    /// Allocate `layout.size()` bytes aligned to `layout.align()`.
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError>;

    /// Allocate at a level of the memory system (see [`Level`]). An
    /// allocator with one level ignores it, as the default does; the free
    /// and realloc of the block need no level (the block's address tells a
    /// model with levels where it lives, as `kfree` and `vfree` find theirs).
    #[inline(always)]
    fn alloc_at(&mut self, level: Level, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let _ = level;
        self.alloc(layout)
    }

    /// Allocate at a level for address space `space` (a simulated
    /// process; 0 for every recorded trace). An allocator with one heap
    /// ignores the space, as the default does; the kernel model serves each
    /// space's user memory from that process's own heap.
    #[inline(always)]
    fn alloc_in(&mut self, space: u8, level: Level, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let _ = space;
        self.alloc_at(level, layout)
    }

    /// Return a block to the free space.
    ///
    /// # Safety
    /// `ptr` was returned by this allocator's `alloc` or `realloc` with this
    /// exact `layout` (for `realloc`: the old alignment and the new size), and
    /// has not been freed or reallocated since.
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout);

    /// Resize a block to `new_size` bytes, keeping its alignment and the first
    /// `min(old.size(), new_size)` bytes of its contents.
    ///
    /// The default allocates a new block, copies and frees the old one;
    /// allocators that can grow or shrink in place override it. On error the
    /// old block is untouched and still live.
    ///
    /// # Safety
    /// As for [`Allocator::free`]: `ptr` is live and `old` is its layout.
    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { realloc_by_moving(self, ptr, old, new_size) }
    }

    /// Arena bytes the live block at `ptr` occupies: payload, headers and
    /// footers, alignment padding and size-class rounding. At least
    /// `layout.size()`. `ptr` and `layout` must describe a live block; for
    /// anything else the answer is meaningless (but memory-safe).
    fn granted(&self, ptr: NonNull<u8>, layout: Layout) -> usize;

    /// What the live block at `ptr` is granted beyond its request, split the
    /// way Johnstone & Wilson (1998) separate internal fragmentation:
    /// rounding to a size class, power of two or minimum block, versus
    /// headers, footers and alignment padding. The two add up to
    /// `granted(ptr, layout) − layout.size()`. The default calls it all
    /// rounding.
    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        Waste { rounding: self.granted(ptr, layout) - layout.size(), overhead: 0 }
    }

    /// The counters, kept current on every operation; O(1). A timed build
    /// keeps none (see [`ledger`]): its stats give the arena and metadata
    /// sizes only, and its [`Allocator::reports`] says `counts: false`.
    fn stats(&self) -> HeapStats;

    /// Visit every free extent as `(offset, len)`, in no particular order.
    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize));

    /// Free bytes, free blocks and the largest free block. The default walks
    /// the free space; allocators that know the answer cheaply override it.
    fn free_shape(&self) -> FreeShape {
        let mut shape = FreeShape::default();
        self.for_each_free(&mut |_, len| shape.add(len));
        shape
    }

    /// Walk the whole heap and verify every invariant.
    fn check(&self) -> Result<(), InvariantViolation>;

    /// What this allocator can report; the default is everything.
    fn reports(&self) -> Reports {
        Reports::ALL
    }

    /// Allocator-specific figures worth a table or a chart: a buddy system's
    /// `/proc/buddyinfo`, a slab layer's `/proc/slabinfo`. The harness takes
    /// them when requested bytes peak. The default has none.
    fn details(&self) -> Vec<Detail> {
        Vec::new()
    }

    /// The binary buddy system this allocator is or is built on, for
    /// pictures of its tree (see [`BuddyLevel`]); `None`, the default, for
    /// allocators without one. Walks the free lists: not for timed code.
    fn buddy_level(&self) -> Option<BuddyLevel> {
        None
    }

    /// The free lists in list order, for pictures (see [`FreeListView`]);
    /// `None`, the default, for allocators that keep no lists to show.
    /// Walks the lists: not for timed code.
    fn free_lists(&self) -> Option<FreeListView> {
        None
    }

    /// Take the arena back, to build another allocator on it (timed
    /// repetitions reuse one arena so that page faults are not measured).
    /// Allocators must not assume a fresh arena is zeroed.
    fn into_arena(self) -> Arena
    where
        Self: Sized;

    /// Give back memory held for reuse (cached empty slabs and the like), as
    /// `kmem_cache_shrink` does. The default has nothing to give back.
    fn trim(&mut self) {}

    /// The calls that follow run as thread `thread` of an interleaved
    /// multithreaded replay (see [`concurrent::Interleaved`]). Allocators
    /// without per-thread state ignore it, as the default does.
    fn set_thread(&mut self, _thread: usize) {}
}

/// A table an allocator keeps outside its arena (bitmaps, list heads, page
/// maps: what a kernel keeps in `struct page`), `len` copies of `value`,
/// with every page of it written now.
///
/// A table of zeros straight from the system allocator is untouched memory
/// whose pages fault in on first use. The harness builds an allocator anew
/// for every timed replay (on the same pre-faulted arena), so those faults
/// would land in every replay timed, a cost of the harness, not of the
/// strategy, and one no peer without such a table pays. Built with this,
/// the table is faulted in when the allocator is set up.
pub fn side_table<T: Copy>(value: T, len: usize) -> Vec<T> {
    let mut table = vec![value; len];
    let per_page = (4096 / size_of::<T>().max(1)).max(1);
    // Every 4 KiB, and the last entry: a table that does not start on a
    // page boundary ends in a page the stride may skip.
    for index in (0..len).step_by(per_page).chain(len.checked_sub(1)) {
        // SAFETY: `index < len`; a volatile write of the value already there
        // changes nothing but cannot be elided, so the page is touched.
        unsafe { table.as_mut_ptr().add(index).write_volatile(value) };
    }
    table
}

/// An empty side table with room for `capacity` entries, every page of the
/// room written now (see [`side_table`]): for tables that fill as the heap
/// grows (slab descriptors), which then neither reallocate nor fault in a
/// timed replay.
pub fn side_vec<T>(capacity: usize) -> Vec<T> {
    let mut table = Vec::with_capacity(capacity);
    let bytes = table.capacity() * size_of::<T>();
    let room = table.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    for offset in (0..bytes).step_by(4096).chain(bytes.checked_sub(1)) {
        // SAFETY: `offset < bytes`, inside the reserved room, which is
        // uninitialised memory this vector owns; a byte written there makes
        // no entry (the length stays 0) and a volatile write is not elided.
        unsafe { room.add(offset).write_volatile(0) };
    }
    table
}

/// Reallocate by allocating a new block (same alignment, `new_size` bytes),
/// copying `min(old.size(), new_size)` bytes and freeing the old block: the
/// default `realloc`, and the fallback of allocators that resize in place
/// when they can.
///
/// # Safety
/// As for [`Allocator::realloc`]: `ptr` is live in `allocator` with layout `old`.
pub unsafe fn realloc_by_moving<A: Allocator + ?Sized>(
    allocator: &mut A,
    ptr: NonNull<u8>,
    old: Layout,
    new_size: usize,
) -> Result<NonNull<u8>, AllocError> {
    let new =
        Layout::from_size_align(new_size, old.align()).map_err(|_| AllocError::Unsupported("size overflows isize"))?;
    let new_ptr = allocator.alloc(new)?;
    // SAFETY: both blocks are live and distinct (the old one is not freed
    // yet), each at least `min(old, new)` bytes long.
    unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), new_ptr.as_ptr(), old.size().min(new_size)) };
    // SAFETY: the caller guarantees `ptr` is live with layout `old`.
    unsafe { allocator.free(ptr, old) };
    Ok(new_ptr)
}

/// [`Allocator::waste`] for allocators whose granted size follows from the
/// layout alone (size classes, powers of two): rounding is what the size
/// alone costs, `granted(size, align 1) − size`; any larger block the
/// alignment forces is overhead.
pub fn waste_by_class<A: Allocator + ?Sized>(allocator: &A, ptr: NonNull<u8>, layout: Layout) -> Waste {
    let granted = allocator.granted(ptr, layout);
    let unaligned = Layout::from_size_align(layout.size(), 1).expect("a smaller alignment is valid");
    let by_size = allocator.granted(ptr, unaligned).min(granted);
    Waste { rounding: by_size - layout.size(), overhead: granted - by_size }
}
