//! The lecture's levels of kernel memory over one pool of page frames:
//! `alloc_pages`, `kmalloc` and `vmalloc` sharing, and fragmenting, the same
//! buddy system.
//!
//! # Levels
//!
//! - **The pool**: a binary buddy system of 4 KiB frames over the first
//!   third of the arena, whose memory is a memfd mapped shared (see [`pool`]).
//!   The pool is as large as the arena the harness asks for; the model's
//!   arena is three times that, the rest being address space only.
//! - **kmalloc** ([`Level::Kmalloc`]): the slab caches of
//!   [`heaplab_slab`] (SLUB's orders, the kmalloc classes 8 B to 8 KiB),
//!   taking their slabs from the pool; a request above the largest class is
//!   a block of `get_order(size)` frames, as `kmalloc_large` does.
//! - **alloc_pages** ([`Level::Page`]): a block of `2^order` physically
//!   contiguous frames, `order = get_order(max(size, align))`.
//! - **vmalloc** ([`Level::Vmalloc`]): `ceil(size / 4 KiB)` single frames
//!   (order-0 blocks, wherever the pool has them) mapped contiguously into
//!   the vmalloc space, the last two thirds of the arena (twice the pool, so
//!   that guard pages never keep a frame from being mapped), with
//!   `mmap(MAP_FIXED | MAP_SHARED)` at the frames' offsets in the memfd.
//!   The space has its own allocator ([`vmalloc::Space`]: lowest-address
//!   first fit, as Linux's vmap areas), every area is followed by an
//!   unmapped guard page, and each 2 MiB of the space that holds a mapping
//!   needs a page-table page, an order-0 frame of the pool counted as
//!   metadata. Bytes written through a vmalloc block land in the pool's
//!   frames: the mapping is real.
//! - **User memory** ([`Level::User`], every recorded trace): served at the
//!   level `user=` names (`kmalloc` by default), so that every workload runs;
//!   or, with `user=malloc`, by a malloc heap per address space, any heaplab
//!   family, whose pages are the pool's frames faulted in as its footprint
//!   grows (see [`heap`]): `kernel:user=malloc,malloc=segregated/kind:fits/classes:dl,heap=4M,mmap=128K`.
//!
//! `free` and `realloc` need no level: the address says where a block lives,
//! as `kfree` finds a slab from the page and `vfree` finds its area. A
//! realloc keeps the block's level (`krealloc` in place within a class; a
//! page block in place within its order; a vmalloc area in place within
//! its pages; otherwise a new block at the same level, copied).
//!
//! # Accounting
//!
//! Offsets below the pool's size are frames; offsets above are virtual.
//! `granted()` of a vmalloc block is its frames (physical memory, what it
//! takes from the pool), so the accounting identity holds over the pool:
//! granted + metadata + free = pool bytes, metadata being slab tails and
//! page-table pages. The footprint is the pool buddy's high-water mark.
//! [`Allocator::details`] adds per-level tables (`levels`: requested,
//! granted and held bytes, blocks, refusals; `pool`: who holds the frames;
//! `vmallocinfo`: virtual against physical use) to the slab's `slabinfo`
//! and the pool's `buddyinfo`.
//!
//! # Drawbacks, as a model
//!
//! - One zone, no migrate types, no per-CPU page lists, no reclaim or
//!   compaction: a refused order-k request stays refused.
//! - The vmalloc space is twice the pool (Linux's is terabytes), so a
//!   fragmented space, or one of widely aligned areas, can refuse an area
//!   the pool could back.
//! - Page tables: one PTE page per 2 MiB of vmalloc space in use, kept
//!   until [`Allocator::trim`] (Linux keeps kernel page tables for good);
//!   the upper levels (PMD, PUD) are not counted.
//! - A vmalloc costs `mmap` calls (one per run of consecutive frames), as
//!   Linux's costs page-table writes and TLB flushes: timings of vmalloc
//!   requests are system calls, and say so.

pub mod heap;
pub mod pool;
pub mod vmalloc;

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuddyLevel, BuildError, Detail, FreeShape, HeapStats,
    InvariantViolation, Ledger, Level, Reports, SetupError, Spec, SpecError, Waste, ensure,
};
use heaplab_slab::Slab;

use self::heap::{Heap, Malloc};
use self::pool::{Mapper, PAGE, PoolMapping};
use self::vmalloc::{Area, PTES_PER_PAGE, Space};

/// No page-table page.
const NO_FRAME: u32 = u32::MAX;

/// No heap for an address space.
const NO_SLOT: u16 = u16::MAX;

/// The rows of the per-level tables: the levels of the model (the last
/// only with user heaps).
const ROWS: [&str; 4] = ["kmalloc", "vmalloc", "alloc_pages", "malloc"];
const KMALLOC: usize = 0;
const VMALLOC: usize = 1;
const PAGES: usize = 2;
const MALLOC: usize = 3;

/// Heaps at most alive at once with `user=malloc`: address spaces beyond
/// this many are refused.
pub const HEAP_SLOTS: usize = 256;

/// The default heap family: dlmalloc's strategy.
pub const DEFAULT_MALLOC: &str = "segregated/kind:fits/classes:dl";

/// A kernel-model configuration:
/// `kernel:user=kmalloc|vmalloc|page|malloc[,malloc=FAMILY/key:value/…,heap=SIZE,mmap=SIZE]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Config {
    /// The level user-memory requests are served at (ignored with heaps).
    pub user: Level,
    /// User memory from a malloc heap per address space on pool pages.
    pub malloc: Option<Malloc>,
}

impl Default for Config {
    fn default() -> Self {
        Config { user: Level::Kmalloc, malloc: None }
    }
}

impl AllocatorConfig for Config {
    type Allocator = Kernel;
    type Timed = Kernel<false>;
    const FAMILY: &'static str = "kernel";
    const SUMMARY: &'static str = "the kernel's levels over one buddy pool of frames: alloc_pages, kmalloc (slab) and vmalloc mapped from a memfd";

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let mut reader = spec.reader();
        let (user, heaps) = match reader.raw("user") {
            None | Some("kmalloc") => (Level::Kmalloc, false),
            Some("vmalloc") => (Level::Vmalloc, false),
            Some("page") => (Level::Page, false),
            Some("malloc") => (Level::User, true),
            Some(other) => {
                return Err(spec.error(format!("`user` must be kmalloc, vmalloc, page or malloc, found `{other}`")));
            }
        };
        let malloc = if heaps {
            let text = reader.raw("malloc").unwrap_or(DEFAULT_MALLOC).to_string();
            let mut malloc = Malloc::new(&text).map_err(|message| spec.error(message))?;
            malloc.heap_bytes = reader.size("heap", malloc.heap_bytes)?;
            malloc.mmap_threshold = reader.size("mmap", malloc.mmap_threshold)?;
            if malloc.heap_bytes < 16 * PAGE || malloc.heap_bytes > 1 << 30 || !malloc.heap_bytes.is_multiple_of(PAGE) {
                return Err(spec.error(format!(
                    "`heap` must be a whole number of 4 KiB pages from 64K to 1G, found {}",
                    heaplab_core::spec::format_size(malloc.heap_bytes)
                )));
            }
            if malloc.mmap_threshold == 0 {
                return Err(spec.error("`mmap` must be at least one byte"));
            }
            Some(malloc)
        } else {
            for key in ["malloc", "heap", "mmap"] {
                if reader.raw(key).is_some() {
                    return Err(spec.error(format!("`{key}` is a parameter of user=malloc")));
                }
            }
            None
        };
        reader.finish()?;
        Ok(Config { user, malloc })
    }

    fn spec(&self) -> String {
        match &self.malloc {
            None => format!("kernel:user={}", self.user.name()),
            Some(malloc) => format!(
                "kernel:user=malloc,malloc={},heap={},mmap={}",
                malloc.nested(),
                heaplab_core::spec::format_size(malloc.heap_bytes),
                heaplab_core::spec::format_size(malloc.mmap_threshold)
            ),
        }
    }

    fn describe(&self) -> String {
        match &self.malloc {
            None => format!(
                "alloc_pages, kmalloc caches and vmalloc over one buddy pool of 4 KiB frames; user memory at {}",
                self.user.name()
            ),
            Some(malloc) => format!(
                "alloc_pages, kmalloc caches and vmalloc over one buddy pool of 4 KiB frames; user memory from a {} heap per process on pool pages",
                malloc.spec
            ),
        }
    }

    fn listed() -> Vec<Self> {
        vec![Config::default(), Config { user: Level::Vmalloc, malloc: None }]
    }

    fn build(&self, arena: Arena) -> Result<Kernel, BuildError> {
        Kernel::new(arena, self.clone()).map_err(|reason| self.build_error(reason))
    }

    fn build_timed(&self, arena: Arena) -> Result<Kernel<false>, BuildError> {
        Kernel::new(arena, self.clone()).map_err(|reason| self.build_error(reason))
    }
}

/// Per-level figures, kept with the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    requested: usize,
    granted: usize,
    live: usize,
    served: u64,
    refused: u64,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// A slab cache's object.
    Object,
    /// A block of `2^order` frames, for the row.
    Frames(u32, usize),
    /// A vmalloc area, or a user mapping.
    Virtual,
    /// A block of the user heap in this slot.
    Heap(usize),
}

/// The kernel memory model. See the crate documentation. `C`: whether it
/// keeps the ledger of counters.
#[derive(Debug)]
pub struct Kernel<const C: bool = true> {
    /// The user heaps by slot (declared before `slab`, so that they drop
    /// before the arena their address space is part of).
    heaps: Vec<Option<Heap>>,
    /// The slot of each address space's heap (`NO_SLOT`: none), indexed
    /// by the space.
    slot_of: Vec<u16>,
    /// Slots without a heap, the lowest last.
    free_slots: Vec<usize>,
    /// The arena offset of the first heap slot.
    heaps_base: usize,
    /// Frames the heaps hold.
    heap_frames: usize,
    /// The slab caches over the pool's buddy system, which owns the arena.
    slab: Slab<C>,
    config: Config,
    mapper: Mapper,
    /// Bytes of frames; virtual offsets start here.
    pool_bytes: usize,
    /// The vmalloc space, in pages from `pool_bytes`.
    space: Space,
    /// Per 2 MiB of the space: its page-table page (a pool page index) or
    /// `NO_FRAME`, and the pages mapped through it.
    pte_frames: Vec<u32>,
    pte_users: Vec<u32>,
    /// Page-table pages held.
    pte_pages: usize,
    /// Per pool page, for the first page of a block of frames: the row
    /// (kmalloc or alloc_pages) it was asked for at, so that a free and a
    /// realloc know its level. Kept in every build: realloc needs it.
    frame_row: Vec<u8>,
    /// Blocks of frames and vmalloc areas (objects are the slab's).
    ledger: Ledger<C>,
    /// Per row of [`ROWS`], kept only with the ledger.
    tallies: [Tally; 4],
}

impl<const C: bool> Kernel<C> {
    /// The model over `arena`'s bytes: a pool of as many frames, and twice
    /// as much vmalloc space. An arena the model made before (handed back by
    /// [`Allocator::into_arena`]) is used again as it is; any other is
    /// replaced by a memfd-backed one of its size.
    pub fn new(arena: Arena, config: Config) -> Result<Kernel<C>, SetupError> {
        let heap_bytes = config.malloc.as_ref().map_or(0, |malloc| malloc.heap_bytes);
        let wanted = |pool: usize| 2 * pool + HEAP_SLOTS * heap_bytes;
        let arena = match arena.owner::<PoolMapping>() {
            Some(mapping) if mapping.virtual_bytes() == wanted(mapping.pool_bytes()) => arena,
            _ => {
                let pool = arena.owner::<PoolMapping>().map_or(arena.len(), PoolMapping::pool_bytes) / PAGE * PAGE;
                if pool < 4 * PAGE {
                    return Err(SetupError::ArenaTooSmall {
                        arena: arena.len(),
                        needs: "the kernel model needs at least four 4 KiB frames".into(),
                    });
                }
                drop(arena);
                PoolMapping::arena(pool, wanted(pool))
                    .map_err(|error| SetupError::Peer(format!("cannot map the page pool from a memfd: {error}")))?
            }
        };
        let mapping = arena.owner::<PoolMapping>().expect("a pool mapping");
        let (mapper, pool_bytes, virtual_bytes) = (mapping.mapper(), mapping.pool_bytes(), mapping.virtual_bytes());
        let slab_config = heaplab_slab::Config::default();
        let slab = Slab::with_pool(arena, slab_config, pool_bytes)?;
        let virtual_pages = (virtual_bytes - HEAP_SLOTS * heap_bytes) / PAGE;
        let windows = virtual_pages.div_ceil(PTES_PER_PAGE);
        let slots = if heap_bytes > 0 { HEAP_SLOTS } else { 0 };
        Ok(Kernel {
            heaps: (0..slots).map(|_| None).collect(),
            slot_of: heaplab_core::side_table(NO_SLOT, if slots > 0 { 256 } else { 0 }),
            free_slots: (0..slots).rev().collect(),
            heaps_base: pool_bytes + virtual_pages * PAGE,
            heap_frames: 0,
            slab,
            config,
            mapper,
            pool_bytes,
            space: Space::new(virtual_pages),
            pte_frames: heaplab_core::side_table(NO_FRAME, windows),
            pte_users: heaplab_core::side_table(0, windows),
            pte_pages: 0,
            frame_row: heaplab_core::side_table(0, pool_bytes / PAGE),
            ledger: Ledger::new(0, 0, 0),
            tallies: [Tally::default(); 4],
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The slab caches and, beneath them, the pool.
    pub fn slab(&self) -> &Slab<C> {
        &self.slab
    }

    /// Bytes of frames in the pool.
    pub fn pool_bytes(&self) -> usize {
        self.pool_bytes
    }

    /// The vmalloc space.
    pub fn space(&self) -> &Space {
        &self.space
    }

    #[inline]
    fn route(&self, level: Level, layout: Layout) -> Result<Route, AllocError> {
        let level = if level == Level::User { self.config.user } else { level };
        let frames = |row| {
            let order = heaplab_slab::get_order(layout.size().max(layout.align()), PAGE);
            if order > self.slab.buddy().max_order() {
                return Err(AllocError::Unsupported("size above the pool's largest block"));
            }
            Ok(Route::Frames(order, row))
        };
        match level {
            Level::Kmalloc | Level::User if self.slab.has_class(layout) => Ok(Route::Object),
            Level::Kmalloc | Level::User => frames(KMALLOC),
            Level::Page => frames(PAGES),
            Level::Vmalloc => Ok(Route::Virtual),
        }
    }

    /// Where the live block at `offset` lives.
    #[inline]
    fn placed(&self, offset: usize, layout: Layout) -> Route {
        if offset >= self.heaps_base {
            Route::Heap((offset - self.heaps_base) / self.heap_bytes())
        } else if offset >= self.pool_bytes {
            Route::Virtual
        } else if self.slab.is_object(offset, layout) {
            Route::Object
        } else {
            let order = heaplab_slab::get_order(layout.size().max(layout.align()), PAGE);
            Route::Frames(order, usize::from(self.frame_row[offset / PAGE]))
        }
    }

    fn tally_served(&mut self, row: usize, requested: usize, granted: usize) {
        if C {
            let tally = &mut self.tallies[row];
            tally.requested += requested;
            tally.granted += granted;
            tally.live += 1;
            tally.served += 1;
        }
    }

    fn tally_freed(&mut self, row: usize, requested: usize, granted: usize) {
        if C {
            let tally = &mut self.tallies[row];
            tally.requested -= requested;
            tally.granted -= granted;
            tally.live -= 1;
        }
    }

    fn tally_refused(&mut self, row: usize) {
        if C {
            self.tallies[row].refused += 1;
        }
    }

    // ---- vmalloc ------------------------------------------------------------

    /// The page-table pages for virtual pages `start..start + pages`.
    fn map_tables(&mut self, start: usize, pages: usize) -> Result<(), AllocError> {
        let windows = start / PTES_PER_PAGE..=(start + pages - 1) / PTES_PER_PAGE;
        for window in windows.clone() {
            if self.pte_frames[window] == NO_FRAME {
                let frame = self.slab.alloc_pages(0)?;
                self.pte_frames[window] = (frame / PAGE) as u32;
                self.pte_pages += 1;
            }
        }
        for page in start..start + pages {
            self.pte_users[page / PTES_PER_PAGE] += 1;
        }
        Ok(())
    }

    fn unmap_tables(&mut self, start: usize, pages: usize) {
        for page in start..start + pages {
            self.pte_users[page / PTES_PER_PAGE] -= 1;
        }
    }

    /// Give back frames taken for an area.
    fn free_frames(&mut self, frames: &[u32]) {
        for &frame in frames {
            // SAFETY: each frame is an order-0 block this model took with
            // `alloc_pages(0)` and no longer maps.
            unsafe { self.slab.free_pages(frame as usize * PAGE, 0) };
        }
    }

    fn vmalloc(&mut self, layout: Layout, user: Option<u8>) -> Result<usize, AllocError> {
        let pages = layout.size().div_ceil(PAGE).max(1);
        let align = (layout.align() / PAGE).max(1);
        // One guard page after the area, as without VM_NO_GUARD.
        let start = self.space.take(pages + 1, align).ok_or(AllocError::OutOfMemory)?;
        let mut frames = Vec::with_capacity(pages);
        let mut failed = false;
        for _ in 0..pages {
            match self.slab.alloc_pages(0) {
                Ok(frame) => frames.push((frame / PAGE) as u32),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        // A page-table page taken before a refusal stays, as page tables do
        // (no page is counted on it; `trim` gives it back).
        if failed || self.map_tables(start, pages).is_err() {
            self.free_frames(&frames);
            self.space.give(start, pages + 1);
            return Err(AllocError::OutOfMemory);
        }
        let mut runs = 0;
        let mut index = 0;
        while index < frames.len() {
            let mut end = index + 1;
            while end < frames.len() && frames[end] == frames[end - 1] + 1 {
                end += 1;
            }
            let at = self.pool_bytes + (start + index) * PAGE;
            // SAFETY: the virtual pages were just taken from the space (no
            // live block uses them) and the frames were just lent to us.
            let mapped = unsafe { self.mapper.map(at, frames[index] as usize * PAGE, end - index) };
            if mapped.is_err() {
                // Out of mappings (vm.max_map_count): undo and refuse.
                // SAFETY: the pages mapped so far belong to this failed area.
                let _ = unsafe { self.mapper.unmap(self.pool_bytes + start * PAGE, index) };
                self.unmap_tables(start, pages);
                self.free_frames(&frames);
                self.space.give(start, pages + 1);
                return Err(AllocError::OutOfMemory);
            }
            runs += 1;
            index = end;
        }
        self.space.insert(start, Area { requested: layout.size(), frames, runs, user });
        Ok(self.pool_bytes + start * PAGE)
    }

    fn vfree(&mut self, offset: usize) -> Area {
        let start = (offset - self.pool_bytes) / PAGE;
        let Some(area) = self.space.remove(start) else { unreachable!("a live vmalloc block has an area") };
        // SAFETY: the area is being freed; nothing touches its pages again.
        let unmapped = unsafe { self.mapper.unmap(offset, area.pages()) };
        // munmap-style replacement of our own reservation cannot fail for
        // lack of memory in a way that leaves the frames reachable: mapping
        // PROT_NONE over them either happens or leaves the old mapping, and
        // in the second case the frames must not be reused.
        assert!(unmapped.is_ok(), "cannot unmap a vmalloc area: {unmapped:?}");
        self.unmap_tables(start, area.pages());
        self.free_frames(&area.frames);
        self.space.give(start, area.pages() + 1);
        area
    }

    /// Give back page-table pages that map nothing.
    fn trim_tables(&mut self) {
        for window in 0..self.pte_frames.len() {
            if self.pte_frames[window] != NO_FRAME && self.pte_users[window] == 0 {
                // SAFETY: the page-table page is an order-0 block we took.
                unsafe { self.slab.free_pages(self.pte_frames[window] as usize * PAGE, 0) };
                self.pte_frames[window] = NO_FRAME;
                self.pte_pages -= 1;
            }
        }
    }

    // ---- user heaps -----------------------------------------------------------

    /// Bytes of address space per heap (0 without heaps).
    fn heap_bytes(&self) -> usize {
        self.config.malloc.as_ref().map_or(0, |malloc| malloc.heap_bytes)
    }

    /// The heaps alive.
    pub fn heaps(&self) -> impl Iterator<Item = &Heap> {
        self.heaps.iter().flatten()
    }

    /// The heap of address space `space`, built if it has none.
    fn heap_slot(&mut self, space: u8) -> Result<usize, AllocError> {
        let slot = self.slot_of[usize::from(space)];
        if slot != NO_SLOT {
            return Ok(usize::from(slot));
        }
        let malloc = self.config.malloc.clone().expect("heaps only with user=malloc");
        let slot = self.free_slots.pop().ok_or(AllocError::OutOfMemory)?;
        let base = self.heaps_base + slot * malloc.heap_bytes;
        let pages = malloc.heap_bytes / PAGE;
        // SAFETY: the slot was free: no live block uses its address space.
        if unsafe { self.mapper.map_anonymous(base, pages) }.is_err() {
            self.free_slots.push(slot);
            return Err(AllocError::OutOfMemory);
        }
        let ptr = self.arena().ptr_at(base);
        // SAFETY: base..base + heap_bytes is this slot's address space, page
        // aligned, mapped readable and writable just now; it stays mapped
        // (anonymous memory, or frames mapped over it) until `drop_heap`
        // drops the allocator, and before the arena it lies in (the
        // `heaps` field drops before `slab`). The owner is nothing: the
        // model's pool mapping releases the memory.
        let arena = unsafe { Arena::from_mapping(ptr, malloc.heap_bytes, PAGE, Box::new(())) };
        let allocator = match malloc.build(arena) {
            Ok(allocator) => allocator,
            Err(_) => {
                // SAFETY: the slot's address space, which nothing uses.
                let _ = unsafe { self.mapper.unmap(base, pages) };
                self.free_slots.push(slot);
                return Err(AllocError::Unsupported("the heap family cannot be built on `heap` bytes"));
            }
        };
        self.heaps[slot] = Some(Heap { allocator, space, base, frames: Vec::new(), live: 0 });
        self.slot_of[usize::from(space)] = slot as u16;
        Ok(slot)
    }

    /// Give a heap's frames back to the pool and its address space up.
    fn drop_heap(&mut self, slot: usize) {
        let Some(heap) = self.heaps[slot].take() else { return };
        let Heap { allocator, space, base, frames, .. } = heap;
        drop(allocator);
        // SAFETY: the heap's allocator is gone; nothing touches its pages.
        let unmapped = unsafe { self.mapper.unmap(base, self.heap_bytes() / PAGE) };
        assert!(unmapped.is_ok(), "cannot unmap a heap: {unmapped:?}");
        self.heap_frames -= frames.len();
        self.free_frames(&frames);
        self.slot_of[usize::from(space)] = NO_SLOT;
        self.free_slots.push(slot);
    }

    /// Fault frames in under the heap in `slot` up to its footprint, as far
    /// as the pool has them.
    fn grow(&mut self, slot: usize) -> Result<(), AllocError> {
        let heap = self.heaps[slot].as_ref().expect("a live heap");
        let (need, have, base) = (heap.footprint_pages(), heap.frames.len(), heap.base);
        for page in have..need {
            let frame = self.slab.alloc_pages(0)?;
            let at = base + page * PAGE;
            let arena = self.slab.arena();
            // SAFETY: `at` is a page of the heap's anonymous memory and
            // `frame` a frame just lent to us: disjoint pages, both mapped.
            unsafe {
                std::ptr::copy_nonoverlapping(arena.ptr_at(at).as_ptr(), arena.ptr_at(frame).as_ptr(), PAGE);
            }
            // SAFETY: the page is the heap's; its bytes are in the frame now.
            let mapped = unsafe { self.mapper.map(at, frame, 1) };
            if mapped.is_err() {
                // SAFETY: the frame is ours and mapped nowhere else.
                unsafe { self.slab.free_pages(frame, 0) };
                return Err(AllocError::OutOfMemory);
            }
            self.heaps[slot].as_mut().expect("a live heap").frames.push((frame / PAGE) as u32);
            self.heap_frames += 1;
        }
        Ok(())
    }

    /// A user request of address space `space`: its own mapping above the
    /// mmap threshold, else a block of the process's heap.
    fn malloc(&mut self, space: u8, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let threshold = self.config.malloc.as_ref().map_or(usize::MAX, |malloc| malloc.mmap_threshold);
        if layout.size() >= threshold {
            return match self.vmalloc(layout, Some(space)) {
                Ok(offset) => {
                    let granted = layout.size().div_ceil(PAGE).max(1) * PAGE;
                    self.ledger.allocated(layout.size(), granted);
                    self.tally_served(MALLOC, layout.size(), granted);
                    // SAFETY: a mapping lies inside the arena.
                    Ok(unsafe { self.arena().ptr_at_unchecked(offset) })
                }
                Err(error) => {
                    self.tally_refused(MALLOC);
                    Err(error)
                }
            };
        }
        let slot = match self.heap_slot(space) {
            Ok(slot) => slot,
            Err(error) => {
                self.tally_refused(MALLOC);
                return Err(error);
            }
        };
        let result = self.heaps[slot].as_mut().expect("a live heap").allocator.alloc(layout);
        let result = match result {
            Ok(ptr) => {
                let grown = self.grow(slot);
                let heap = self.heaps[slot].as_mut().expect("a live heap");
                if grown.is_err() && !heap.is_backed(ptr, layout) {
                    // SAFETY: the block was just served with this layout.
                    unsafe { heap.allocator.free(ptr, layout) };
                    Err(AllocError::OutOfMemory)
                } else {
                    Ok(ptr)
                }
            }
            Err(error) => Err(error),
        };
        let heap = self.heaps[slot].as_mut().expect("a live heap");
        match result {
            Ok(ptr) => {
                heap.live += 1;
                let granted = if C { heap.allocator.granted(ptr, layout) } else { 0 };
                self.tally_served(MALLOC, layout.size(), granted);
            }
            Err(_) => {
                let empty = heap.live == 0;
                self.tally_refused(MALLOC);
                if empty {
                    self.drop_heap(slot);
                }
            }
        }
        result
    }

    /// The heap in `slot`, which a live block lies in.
    fn heap_of(&self, slot: usize) -> &Heap {
        self.heaps[slot].as_ref().expect("a live heap block's heap")
    }

    /// Resize a user block of address space `space`: in place when the
    /// heap block shrinks (the heap's own realloc, which needs no new page)
    /// or a mapping keeps its pages; otherwise a new block of the process,
    /// copied, and the old one freed, so that a pool out of frames refuses
    /// the realloc and leaves the block as it was.
    ///
    /// # Safety
    /// `ptr` is a live user block at `placed` with layout `old`.
    unsafe fn realloc_user(
        &mut self,
        space: u8,
        placed: Route,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let threshold = self.config.malloc.as_ref().map_or(usize::MAX, |malloc| malloc.mmap_threshold);
        match placed {
            Route::Heap(slot) if new.size() <= old.size() && new.size() < threshold => {
                let heap = self.heaps[slot].as_mut().expect("a live heap block's heap");
                let before = heap.allocator.granted(ptr, old);
                // SAFETY: the caller's contract: a live block of this heap.
                let moved = unsafe { heap.allocator.realloc(ptr, old, new.size()) }?;
                let after = heap.allocator.granted(moved, new);
                // A block that moved may have raised the footprint.
                let _ = self.grow(slot);
                let heap = self.heaps[slot].as_ref().expect("a live heap block's heap");
                debug_assert!(heap.is_backed(moved, new), "a shrinking realloc stays in backed pages");
                if C {
                    let tally = &mut self.tallies[MALLOC];
                    tally.requested = tally.requested - old.size() + new.size();
                    tally.granted = tally.granted - before + after;
                }
                return Ok(moved);
            }
            Route::Virtual if new.size() >= threshold && old.size().div_ceil(PAGE) == new.size().div_ceil(PAGE) => {
                let offset = self.arena().offset_of_unchecked(ptr);
                self.ledger.resized(old.size(), new.size());
                if let Some(area) = self.space.area_mut((offset - self.pool_bytes) / PAGE) {
                    area.requested = new.size();
                }
                if C {
                    self.tallies[MALLOC].requested = self.tallies[MALLOC].requested - old.size() + new.size();
                }
                return Ok(ptr);
            }
            _ => {}
        }
        let moved = self.malloc(space, new)?;
        // SAFETY: both blocks are live and distinct; the copy is within both.
        unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), moved.as_ptr(), old.size().min(new.size())) };
        // SAFETY: the caller's contract: `ptr` is live with `old`.
        unsafe { self.free(ptr, old) };
        Ok(moved)
    }

    // ---- per-level figures -------------------------------------------------

    /// Bytes of frames each holder has, and free: (holder, bytes).
    fn holders(&self) -> Vec<(&'static str, usize)> {
        let slab = self.slab.slab_bytes();
        let mapped = |user: bool| -> usize {
            self.space
                .areas()
                .filter(|(_, area)| area.user.is_some() == user)
                .map(|(_, area)| area.pages() * PAGE)
                .sum()
        };
        let (vmalloc, user_mapped) = (mapped(false), mapped(true));
        let tables = self.pte_pages * PAGE;
        let heaps = self.heap_frames * PAGE;
        let frames = self.slab.lent_bytes() - vmalloc - user_mapped - tables - heaps;
        let (large, pages) = if C {
            (self.tallies[KMALLOC].granted - self.slab.stats().granted_bytes, self.tallies[PAGES].granted)
        } else {
            (0, frames)
        };
        let mut holders = vec![
            ("slab caches", slab),
            ("kmalloc large", large),
            ("alloc_pages", pages),
            ("vmalloc", vmalloc),
            ("page tables", tables),
            ("free", self.slab.buddy().stats().free_bytes),
        ];
        if self.config.malloc.is_some() {
            holders.push(("malloc heaps", heaps));
            holders.push(("malloc mmap", user_mapped));
        }
        holders
    }
}

impl<const C: bool> Allocator for Kernel<C> {
    fn arena(&self) -> &Arena {
        self.slab.arena()
    }

    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.alloc_at(Level::User, layout)
    }

    fn alloc_in(&mut self, space: u8, level: Level, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if level == Level::User && self.config.malloc.is_some() {
            if layout.align() > PAGE {
                return Err(AllocError::Unsupported("alignment above a page"));
            }
            return self.malloc(space, layout);
        }
        self.alloc_at(level, layout)
    }

    fn alloc_at(&mut self, level: Level, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if level == Level::User && self.config.malloc.is_some() {
            return self.alloc_in(0, level, layout);
        }
        if layout.align() > self.arena().align() {
            return Err(AllocError::Unsupported("alignment above the arena's"));
        }
        let route = self.route(level, layout)?;
        let result = match route {
            Route::Object => {
                let result = self.slab.alloc(layout);
                match result {
                    Ok(ptr) => {
                        let granted = self.slab.granted(ptr, layout);
                        self.tally_served(KMALLOC, layout.size(), granted);
                    }
                    Err(_) => self.tally_refused(KMALLOC),
                }
                return result;
            }
            Route::Frames(order, row) => match self.slab.alloc_pages(order) {
                Ok(block) => {
                    self.frame_row[block / PAGE] = row as u8;
                    self.ledger.allocated(layout.size(), PAGE << order);
                    self.tally_served(row, layout.size(), PAGE << order);
                    Ok(block)
                }
                Err(error) => {
                    self.tally_refused(row);
                    Err(error)
                }
            },
            Route::Heap(_) => unreachable!("user memory reaches a heap through alloc_in"),
            Route::Virtual => match self.vmalloc(layout, None) {
                Ok(offset) => {
                    let granted = layout.size().div_ceil(PAGE).max(1) * PAGE;
                    self.ledger.allocated(layout.size(), granted);
                    self.tally_served(VMALLOC, layout.size(), granted);
                    Ok(offset)
                }
                Err(error) => {
                    self.tally_refused(VMALLOC);
                    Err(error)
                }
            },
        };
        // SAFETY: a block of frames or a vmalloc area lies inside the arena.
        result.map(|offset| unsafe { self.arena().ptr_at_unchecked(offset) })
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let offset = self.arena().offset_of_unchecked(ptr);
        match self.placed(offset, layout) {
            Route::Object => {
                let granted = self.slab.granted(ptr, layout);
                self.tally_freed(KMALLOC, layout.size(), granted);
                // SAFETY: the caller's contract: a live object with this layout.
                unsafe { self.slab.free(ptr, layout) };
            }
            Route::Frames(order, row) => {
                self.ledger.freed(layout.size(), PAGE << order);
                self.tally_freed(row, layout.size(), PAGE << order);
                // SAFETY: the caller's contract: a live block of this order.
                unsafe { self.slab.free_pages(offset, order) };
            }
            Route::Virtual => {
                let area = self.vfree(offset);
                self.ledger.freed(layout.size(), area.pages() * PAGE);
                let row = if area.user.is_some() { MALLOC } else { VMALLOC };
                self.tally_freed(row, layout.size(), area.pages() * PAGE);
            }
            Route::Heap(slot) => {
                let heap = self.heaps[slot].as_mut().expect("a live heap block's heap");
                let granted = if C { heap.allocator.granted(ptr, layout) } else { 0 };
                // SAFETY: the caller's contract: a live block of this heap.
                unsafe { heap.allocator.free(ptr, layout) };
                heap.live -= 1;
                let empty = heap.live == 0;
                self.tally_freed(MALLOC, layout.size(), granted);
                if empty {
                    self.drop_heap(slot);
                }
            }
        }
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let new = Layout::from_size_align(new_size, old.align())
            .map_err(|_| AllocError::Unsupported("size overflows isize"))?;
        let offset = self.arena().offset_of_unchecked(ptr);
        let placed = self.placed(offset, old);
        let user = match placed {
            Route::Heap(slot) => Some(self.heap_of(slot).space),
            Route::Virtual => self.space.area((offset - self.pool_bytes) / PAGE).and_then(|area| area.user),
            _ => None,
        };
        if let Some(space) = user {
            // SAFETY: forwarded: the caller's contract.
            return unsafe { self.realloc_user(space, placed, ptr, old, new) };
        }
        let level = match placed {
            Route::Object => Level::Kmalloc,
            Route::Frames(_, row) => [Level::Kmalloc, Level::Vmalloc, Level::Page][row],
            Route::Virtual => Level::Vmalloc,
            Route::Heap(_) => unreachable!("handled above"),
        };
        let route = self.route(level, new)?;
        let in_place = match (placed, route) {
            (Route::Object, Route::Object) => self.slab.granted(ptr, old) == self.slab.granted(ptr, new),
            (Route::Frames(a, _), Route::Frames(b, _)) => a == b,
            (Route::Virtual, Route::Virtual) => old.size().div_ceil(PAGE).max(1) == new_size.div_ceil(PAGE).max(1),
            _ => false,
        };
        if in_place {
            let row = match placed {
                Route::Object => {
                    // SAFETY: forwarded: a live object whose class holds the new size.
                    let moved = unsafe { self.slab.realloc(ptr, old, new_size) }?;
                    debug_assert_eq!(moved, ptr, "krealloc within a class stays in place");
                    KMALLOC
                }
                Route::Frames(_, row) => {
                    self.ledger.resized(old.size(), new_size);
                    row
                }
                Route::Virtual => {
                    self.ledger.resized(old.size(), new_size);
                    let start = (offset - self.pool_bytes) / PAGE;
                    if let Some(area) = self.space.area_mut(start) {
                        area.requested = new_size;
                    }
                    VMALLOC
                }
                Route::Heap(_) => unreachable!("handled above"),
            };
            if C {
                self.tallies[row].requested = self.tallies[row].requested - old.size() + new_size;
            }
            return Ok(ptr);
        }
        let moved = self.alloc_at(level, new)?;
        // SAFETY: both blocks are live and distinct; the copy is within both.
        unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), moved.as_ptr(), old.size().min(new_size)) };
        // SAFETY: the caller's contract: `ptr` is live with `old`.
        unsafe { self.free(ptr, old) };
        Ok(moved)
    }

    fn granted(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        let offset = self.arena().offset_of_unchecked(ptr);
        match self.placed(offset, layout) {
            Route::Object => self.slab.granted(ptr, layout),
            Route::Frames(order, _) => PAGE << order,
            Route::Virtual => self.space.area((offset - self.pool_bytes) / PAGE).map_or(0, |area| area.pages() * PAGE),
            Route::Heap(slot) => self.heap_of(slot).allocator.granted(ptr, layout),
        }
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        Waste { rounding: self.granted(ptr, layout) - layout.size(), overhead: 0 }
    }

    fn stats(&self) -> HeapStats {
        let slab = self.slab.stats();
        let (mut live, mut requested, mut granted, mut side) = (0, 0, 0, 0);
        for heap in self.heaps() {
            let stats = heap.allocator.stats();
            live += stats.live_blocks;
            requested += stats.requested_bytes;
            granted += stats.granted_bytes;
            side += stats.side_metadata_bytes + heap.frames.len() * 4;
        }
        HeapStats {
            arena_bytes: self.pool_bytes,
            live_blocks: slab.live_blocks + self.ledger.live_blocks() + live,
            requested_bytes: slab.requested_bytes + self.ledger.requested_bytes() + requested,
            granted_bytes: slab.granted_bytes + self.ledger.granted_bytes() + granted,
            // Frames the heaps hold beyond their blocks: malloc's free
            // chunks and tags, held for reuse above the pool.
            cached_bytes: self.heap_frames * PAGE - granted,
            metadata_bytes: slab.metadata_bytes + self.pte_pages * PAGE,
            side_metadata_bytes: slab.side_metadata_bytes
                + self.frame_row.len()
                + (self.pte_frames.len() + self.pte_users.len()) * 4
                + self.space.areas().map(|(_, area)| area.frames.len() * 4 + 64).sum::<usize>()
                + side,
            ..slab
        }
    }

    fn reports(&self) -> Reports {
        if C { Reports::ALL } else { Reports::ALL.uncounted() }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        self.slab.for_each_free(visit);
    }

    fn free_shape(&self) -> FreeShape {
        self.slab.free_shape()
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        self.slab.check()?;
        self.space
            .check()
            .map_err(|what| InvariantViolation { what: format!("vmalloc space: {what}"), offset: None })?;
        let buddy = self.slab.buddy();
        let mut frames_seen = std::collections::HashSet::new();
        let mut users = vec![0u32; self.pte_users.len()];
        let mut vmalloc_bytes = 0;
        for (start, area) in self.space.areas() {
            let at = self.pool_bytes + start * PAGE;
            ensure!(area.pages() == area.requested.div_ceil(PAGE).max(1), @at, "vmalloc area of {} pages for {} bytes", area.pages(), area.requested);
            for &frame in &area.frames {
                let offset = frame as usize * PAGE;
                ensure!(offset < self.pool_bytes && !buddy.is_free_at(offset), @at, "vmalloc area maps frame {offset}, which is free");
                ensure!(frames_seen.insert(frame), @at, "frame {offset} is mapped twice");
            }
            for page in start..start + area.pages() {
                users[page / PTES_PER_PAGE] += 1;
            }
            vmalloc_bytes += area.pages() * PAGE;
        }
        ensure!(users == self.pte_users, "page-table users disagree with the areas");
        let mut tables = 0;
        for (window, &frame) in self.pte_frames.iter().enumerate() {
            if frame == NO_FRAME {
                ensure!(users[window] == 0, "virtual pages mapped without a page-table page");
                continue;
            }
            let offset = frame as usize * PAGE;
            ensure!(!buddy.is_free_at(offset) && frames_seen.insert(frame), @offset, "page-table page {offset} is free or shared");
            tables += 1;
        }
        ensure!(tables == self.pte_pages, "{} page-table pages counted, {tables} held", self.pte_pages);
        let (mut heap_frames, mut heaps_granted) = (0, 0);
        for (slot, heap) in self.heaps.iter().enumerate() {
            let Some(heap) = heap else {
                ensure!(!self.slot_of.contains(&(slot as u16)), "address space of heap slot {slot}, which has no heap");
                continue;
            };
            heap.allocator.check().map_err(|violation| InvariantViolation {
                what: format!("the heap of address space {}: {}", heap.space, violation.what),
                offset: violation.offset.map(|offset| offset + heap.base),
            })?;
            let stats = heap.allocator.stats();
            ensure!(usize::from(self.slot_of[usize::from(heap.space)]) == slot, @heap.base, "heap slot {slot} is not its space's");
            ensure!(heap.live == stats.live_blocks, @heap.base, "the model counts {} blocks in a heap of {}", heap.live, stats.live_blocks);
            ensure!(heap.base == self.heaps_base + slot * self.heap_bytes(), @heap.base, "heap slot {slot} at the wrong place");
            ensure!(stats.live_blocks > 0, @heap.base, "an empty heap kept its frames");
            ensure!(heap.frames.len() <= heap.footprint_pages(), @heap.base, "{} frames under a footprint of {} bytes", heap.frames.len(), stats.footprint_bytes);
            ensure!(stats.granted_bytes <= heap.backed_bytes(), @heap.base, "{} bytes granted in {} backed", stats.granted_bytes, heap.backed_bytes());
            for &frame in &heap.frames {
                let offset = frame as usize * PAGE;
                ensure!(offset < self.pool_bytes && !buddy.is_free_at(offset) && frames_seen.insert(frame), @heap.base, "heap frame {offset} is free or shared");
            }
            heap_frames += heap.frames.len();
            heaps_granted += stats.granted_bytes;
        }
        ensure!(heap_frames == self.heap_frames, "{} heap frames counted, {heap_frames} held", self.heap_frames);
        let spaces = self.slot_of.iter().filter(|&&slot| slot != NO_SLOT).count();
        ensure!(spaces + self.free_slots.len() == self.heaps.len(), "heap slots lost");
        if !C {
            return Ok(());
        }
        let frames = self.slab.lent_bytes() - vmalloc_bytes - tables * PAGE - heap_frames * PAGE;
        ensure!(
            self.ledger.granted_bytes() == frames + vmalloc_bytes,
            "the model counts {} bytes granted in frames and areas, the pool lent {}",
            self.ledger.granted_bytes(),
            frames + vmalloc_bytes
        );
        let tallied: usize = self.tallies.iter().map(|t| t.granted).sum();
        let slab_granted = self.slab.stats().granted_bytes;
        ensure!(
            tallied == slab_granted + self.ledger.granted_bytes() + heaps_granted,
            "the levels count {tallied} bytes granted, the slab, the frames and the heaps {}",
            slab_granted + self.ledger.granted_bytes() + heaps_granted
        );
        let stats = self.stats();
        ensure!(
            stats.granted_bytes + stats.metadata_bytes + stats.free_bytes + stats.cached_bytes == stats.arena_bytes,
            "granted {} + metadata {} + free {} + held by heaps {} != pool {}",
            stats.granted_bytes,
            stats.metadata_bytes,
            stats.free_bytes,
            stats.cached_bytes,
            stats.arena_bytes
        );
        Ok(())
    }

    fn details(&self) -> Vec<Detail> {
        let mut details = self.slab.details();
        if C {
            let holders = self.holders();
            let mut held = vec![holders[0].1 + holders[1].1, holders[3].1 + holders[4].1, holders[2].1];
            if self.config.malloc.is_some() {
                held.push(holders[6].1 + holders[7].1);
            }
            for (row, (tally, held)) in self.tallies.iter().zip(held).enumerate() {
                for (column, value) in [
                    ("requested_bytes", tally.requested as f64),
                    ("granted_bytes", tally.granted as f64),
                    ("held_bytes", held as f64),
                    ("live_blocks", tally.live as f64),
                    ("served", tally.served as f64),
                    ("refused", tally.refused as f64),
                ] {
                    details.push(Detail { table: "levels", row: ROWS[row].to_string(), column, value });
                }
            }
            for (holder, bytes) in holders {
                details.push(Detail { table: "pool", row: holder.to_string(), column: "bytes", value: bytes as f64 });
            }
        }
        let areas: Vec<&Area> = self.space.areas().map(|(_, area)| area).filter(|area| area.user.is_none()).collect();
        let mapped: usize = areas.iter().map(|area| area.pages() * PAGE).sum();
        for (column, value) in [
            ("areas", areas.len() as f64),
            ("requested_bytes", areas.iter().map(|area| area.requested).sum::<usize>() as f64),
            ("mapped_bytes", mapped as f64),
            ("guard_bytes", (areas.len() * PAGE) as f64),
            ("virtual_bytes", (mapped + areas.len() * PAGE) as f64),
            ("mappings", areas.iter().map(|area| area.runs).sum::<usize>() as f64),
            ("page_table_bytes", (self.pte_pages * PAGE) as f64),
            ("space_bytes", (self.space.pages() * PAGE) as f64),
            ("largest_free_virtual_bytes", (self.space.largest_free() * PAGE) as f64),
        ] {
            details.push(Detail { table: "vmallocinfo", row: "vmalloc".to_string(), column, value });
        }
        details
    }

    fn buddy_level(&self) -> Option<BuddyLevel> {
        let mut level = self.slab.buddy_level()?;
        let vmalloc = level.holders.len() as u16;
        level.holders.push("vmalloc".into());
        level.holders.push("page tables".into());
        level.holder_object_bytes.extend([PAGE, PAGE]);
        let malloc = vmalloc + 2;
        if self.config.malloc.is_some() {
            level.holders.push("malloc".into());
            level.holder_object_bytes.push(PAGE);
        }
        for (_, area) in self.space.areas() {
            let holder = if area.user.is_some() { malloc } else { vmalloc };
            level.held.extend(area.frames.iter().map(|&frame| (frame as usize * PAGE, 0, holder)));
        }
        for &frame in self.pte_frames.iter().filter(|&&frame| frame != NO_FRAME) {
            level.held.push((frame as usize * PAGE, 0, vmalloc + 1));
        }
        for heap in self.heaps() {
            level.held.extend(heap.frames.iter().map(|&frame| (frame as usize * PAGE, 0, malloc)));
        }
        level.held.sort_unstable();
        Some(level)
    }

    fn into_arena(self) -> Arena {
        let mut kernel = self;
        for slot in 0..kernel.heaps.len() {
            kernel.drop_heap(slot);
        }
        // Areas still mapped would alias frames the next model hands out.
        let live: Vec<usize> = kernel.space.areas().map(|(start, _)| start).collect();
        for start in live {
            kernel.vfree(kernel.pool_bytes + start * PAGE);
        }
        kernel.slab.into_arena()
    }

    fn trim(&mut self) {
        self.slab.trim();
        self.trim_tables();
    }
}

#[cfg(test)]
mod tests;
