//! Buddy + slab, as in the Linux kernel: `kmalloc` caches of fixed-size
//! objects carved from slabs of pages that a buddy allocator hands out
//! (Bonwick 1994; Linux SLUB).
//!
//! # Layers
//!
//! - **Pages**: a [`heaplab_buddy::Buddy`] with page-sized order 0 (`page=`,
//!   4 KiB by default) owns the arena.
//! - **Caches**: one per size class (`classes=`: the kmalloc set 8, 16, 32, 64,
//!   96, 128, 192, 256, 512, 1k, 2k, 4k, 8k; or powers of two; or a list). A
//!   cache's slabs are buddy blocks of one order, chosen as SLUB's
//!   `calculate_order` does: start from the order that holds `min_objects`
//!   objects (16, what SLUB uses on a machine with 4 to 7 CPUs), and take the
//!   smallest order up to `max_order` (3, `slub_max_order`) whose tail waste
//!   is at most 1/16 of the slab, else 1/8, 1/4, 1/2.
//! - **Large requests** above the largest class go straight to the buddy as a
//!   block of `get_order(size)` pages, as `kmalloc_large` does.
//!
//! # Policy
//!
//! - **Allocation**: the request takes the smallest class that holds it and
//!   whose objects are aligned enough (objects sit at multiples of the class
//!   size from a slab aligned to its size, so a class of size `c` aligns to
//!   the largest power of two dividing `c`). The cache takes the first object
//!   of its first partial slab; with no partial slab, an empty slab it kept;
//!   with none, a new slab from the buddy, its objects threaded into a free
//!   list. A slab that fills moves to the full list. O(1), O(objects per
//!   slab) when a slab is created.
//! - **Free**: the object's slab is found from its address (slabs are buddy
//!   blocks aligned to their size), the object pushed on the slab's free list;
//!   a full slab moves to the partial list, an empty one to the empty list.
//!   An empty slab is returned to the buddy when the cache already holds
//!   `keep` non-full slabs (`keep=auto`: SLUB's `min_partial`,
//!   `clamp(log2(size)/2, 5, 10)`). O(1). [`Allocator::trim`] returns every
//!   empty slab, as `kmem_cache_shrink` does.
//!
//! # Metadata
//!
//! - In the arena: each free object holds the next free object's offset in its
//!   first word (SLUB's free pointer); the unusable tail of each slab is
//!   metadata (slabinfo's per-slab padding).
//! - Outside the arena, like SLUB's `struct slab` in `struct page`: a
//!   descriptor per slab (cache, base, objects in use, free list head, list
//!   links) and a page → slab map. Reported as side metadata.
//! - `free` uses the layout to find the class, as `kfree` uses the page's
//!   slab pointer.
//!
//! # Reports
//!
//! [`Slab::slabinfo`] prints `/proc/slabinfo` (version 2.1); [`Slab::caches`]
//! gives each cache's figures with tools/mm/slabinfo.c's Loss, per-object
//! padding (Lalig), per-slab tail padding (Lpadd) and efficiency (%Ef).
//!
//! # Drawbacks
//!
//! - Requests round up to a class: the kmalloc set wastes up to half an object
//!   for sizes just above a power of two (65 bytes take 96, 257 take 512).
//! - Memory held in partial slabs of one class cannot serve another class,
//!   and empty slabs kept for reuse are free memory no other cache can use.
//! - Large requests inherit the buddy's power-of-two rounding.

use std::alloc::Layout;
use std::fmt::Write as _;
use std::ptr::NonNull;

use heaplab_buddy::{Buddy, Split};
use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuddyLevel, BuildError, Counters, Detail, FreeShape, HeapStats,
    InvariantViolation, Kept, Ledger, Reports, SetupError, Spec, SpecError, Waste, ensure,
};

/// Null object or slab link.
const NIL: usize = usize::MAX;
/// Null slab id.
const NO_SLAB: u32 = u32::MAX;
/// SLUB's bound on objects in one slab.
const MAX_OBJS_PER_PAGE: usize = 32767;
/// Smallest object: it must hold the free pointer.
const MIN_OBJECT: usize = 8;

/// The kmalloc size classes.
pub const KMALLOC_CLASSES: [usize; 13] = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];

/// Which size classes the caches serve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Classes {
    /// The kmalloc set: 8 to 8192 with 96 and 192.
    Kmalloc,
    /// Powers of two from 8 to 8192.
    PowersOfTwo,
    /// A list of sizes, increasing multiples of 8.
    List(Vec<usize>),
}

impl Classes {
    /// The sizes, increasing.
    pub fn sizes(&self) -> Vec<usize> {
        match self {
            Classes::Kmalloc => KMALLOC_CLASSES.to_vec(),
            Classes::PowersOfTwo => (3..=13).map(|shift| 1 << shift).collect(),
            Classes::List(sizes) => sizes.clone(),
        }
    }

    fn spec(&self) -> String {
        match self {
            Classes::Kmalloc => "kmalloc".to_string(),
            Classes::PowersOfTwo => "pow2".to_string(),
            Classes::List(sizes) => sizes.iter().map(|size| size.to_string()).collect::<Vec<_>>().join("/"),
        }
    }
}

/// A buddy+slab configuration:
/// `slab:classes=kmalloc|pow2|S/S/…,page=SIZE,min_objects=N,max_order=N,keep=auto|N`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Config {
    /// The size classes.
    pub classes: Classes,
    /// Page size: the buddy's order 0.
    pub page: usize,
    /// Objects a slab should hold at least (SLUB's `min_objects`).
    pub min_objects: usize,
    /// Largest slab order (SLUB's `slub_max_order`).
    pub max_order: u32,
    /// Non-full slabs a cache keeps before returning an empty one; `None` for
    /// SLUB's `min_partial`.
    pub keep: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config { classes: Classes::Kmalloc, page: 4096, min_objects: 16, max_order: 3, keep: None }
    }
}

impl AllocatorConfig for Config {
    type Allocator = Slab;
    type Timed = Slab<false>;
    const FAMILY: &'static str = "slab";
    const SUMMARY: &'static str = "buddy + slab as in the Linux kernel: kmalloc caches on buddy pages (SLUB orders)";

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let mut reader = spec.reader();
        let default = Config::default();
        let classes = match reader.raw("classes") {
            None | Some("kmalloc") => Classes::Kmalloc,
            Some("pow2") => Classes::PowersOfTwo,
            Some(list) => {
                let sizes: Result<Vec<usize>, _> = list.split('/').map(heaplab_core::spec::parse_size).collect();
                let sizes = sizes.map_err(|message| spec.error(format!("`classes`: {message}")))?;
                Classes::List(sizes)
            }
        };
        let page = reader.size("page", default.page)?;
        let min_objects = reader.parse("min_objects", "a whole number", default.min_objects)?;
        let max_order = reader.parse("max_order", "a whole number from 0 to 10", default.max_order)?;
        let keep = match reader.raw("keep") {
            None | Some("auto") => None,
            Some(text) => Some(
                text.parse()
                    .map_err(|_| spec.error(format!("`keep` must be `auto` or a whole number, found `{text}`")))?,
            ),
        };
        reader.finish()?;
        let config = Config { classes, page, min_objects, max_order, keep };
        config.validate().map_err(|reason| spec.error(reason.to_string()))?;
        Ok(config)
    }

    fn spec(&self) -> String {
        format!(
            "slab:classes={},page={},min_objects={},max_order={},keep={}",
            self.classes.spec(),
            heaplab_core::spec::format_size(self.page),
            self.min_objects,
            self.max_order,
            self.keep.map_or("auto".to_string(), |keep| keep.to_string())
        )
    }

    fn describe(&self) -> String {
        let classes = match &self.classes {
            Classes::Kmalloc => "kmalloc classes 8..8k".to_string(),
            Classes::PowersOfTwo => "power-of-two classes 8..8k".to_string(),
            Classes::List(sizes) => format!("{} classes {}..{}", sizes.len(), sizes[0], sizes[sizes.len() - 1]),
        };
        format!("{classes} on {}-byte buddy pages, larger requests to the buddy", self.page)
    }

    fn listed() -> Vec<Self> {
        vec![Config::default(), Config { classes: Classes::PowersOfTwo, ..Config::default() }]
    }

    fn build(&self, arena: Arena) -> Result<Slab, BuildError> {
        Slab::new(arena, self.clone()).map_err(|reason| self.build_error(reason))
    }

    fn build_timed(&self, arena: Arena) -> Result<Slab<false>, BuildError> {
        Slab::new(arena, self.clone()).map_err(|reason| self.build_error(reason))
    }

    fn as_send<V: heaplab_core::concurrent::SendVisitor>(&self, visitor: V) -> Option<V::Output> {
        Some(visitor.visit(self))
    }
}

impl Config {
    fn validate(&self) -> Result<(), SetupError> {
        if !self.page.is_power_of_two() || self.page < 256 {
            return Err(SetupError::parameter("page", "be a power of two of at least 256 bytes", self.page));
        }
        if self.max_order > 10 {
            return Err(SetupError::parameter("max_order", "be at most 10", self.max_order));
        }
        if self.min_objects == 0 {
            return Err(SetupError::parameter("min_objects", "be at least 1", self.min_objects));
        }
        let sizes = self.classes.sizes();
        if sizes.is_empty() || sizes.len() > 64 {
            return Err(SetupError::parameter("classes", "list between 1 and 64 sizes", sizes.len()));
        }
        for pair in sizes.windows(2) {
            if pair[0] >= pair[1] {
                return Err(SetupError::parameter("classes", "increase", format!("{} then {}", pair[0], pair[1])));
            }
        }
        for &size in &sizes {
            if size < MIN_OBJECT || !size.is_multiple_of(MIN_OBJECT) {
                return Err(SetupError::parameter("classes", format!("be multiples of {MIN_OBJECT} bytes"), size));
            }
            if size > self.page << self.max_order {
                let rule = format!("fit a slab of order {} ({} bytes)", self.max_order, self.page << self.max_order);
                return Err(SetupError::parameter("classes", rule, size));
            }
        }
        Ok(())
    }
}

/// `get_order(size)`: the order of the smallest block of pages holding `size` bytes.
pub fn get_order(size: usize, page: usize) -> u32 {
    size.div_ceil(page).max(1).next_power_of_two().trailing_zeros()
}

/// SLUB's `calculate_order`: the slab order for objects of `size` bytes.
pub fn slab_order(size: usize, page: usize, min_objects: usize, max_order: u32) -> u32 {
    let order_objects = |order: u32| (page << order) / size;
    let max_objects = order_objects(max_order).max(1);
    let min_objects = min_objects.min(max_objects);
    let min_order = get_order(min_objects * size, page);
    if order_objects(min_order) > MAX_OBJS_PER_PAGE {
        return get_order(size * MAX_OBJS_PER_PAGE, page) - 1;
    }
    for fraction in [16, 8, 4, 2] {
        // calc_slab_order: the smallest order from min_order whose leftover
        // is at most 1/fraction of the slab.
        let mut order = min_order;
        while order <= max_order {
            let slab_bytes = page << order;
            if slab_bytes % size <= slab_bytes / fraction {
                break;
            }
            order += 1;
        }
        if order <= max_order {
            return order;
        }
    }
    get_order(size, page)
}

/// Which list a slab is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Partial,
    Full,
    Empty,
}

/// A slab descriptor (kept outside the arena, like SLUB's `struct slab`).
#[derive(Debug, Clone, Copy)]
struct SlabInfo {
    /// Index of the cache; `u16::MAX` for a recycled descriptor.
    cache: u16,
    /// Arena offset of the slab's first page.
    base: usize,
    /// Objects allocated from this slab.
    inuse: usize,
    /// First free object, or `NIL`; the chain has `objects − inuse` members.
    freelist: usize,
    list: ListKind,
    prev: u32,
    next: u32,
}

/// A doubly linked list of slab descriptors.
#[derive(Debug, Clone, Copy)]
struct SlabList {
    head: u32,
    len: usize,
}

impl SlabList {
    const EMPTY: SlabList = SlabList { head: NO_SLAB, len: 0 };
}

/// One size class.
#[derive(Debug, Clone)]
struct Cache {
    object_size: usize,
    order: u32,
    slab_bytes: usize,
    objects_per_slab: usize,
    /// Alignment every object has: the largest power of two dividing the size.
    align: usize,
    min_partial: usize,
    partial: SlabList,
    full: SlabList,
    empty: SlabList,
    /// Objects in use (counted only with the ledger; slabinfo's figure).
    active_objects: usize,
}

impl Cache {
    fn slabs(&self) -> usize {
        self.partial.len + self.full.len + self.empty.len
    }

    fn list(&mut self, kind: ListKind) -> &mut SlabList {
        match kind {
            ListKind::Partial => &mut self.partial,
            ListKind::Full => &mut self.full,
            ListKind::Empty => &mut self.empty,
        }
    }
}

/// One cache's figures, as /proc/slabinfo and tools/mm/slabinfo.c give them.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheReport {
    /// `kmalloc-96`, `kmalloc-1k`, …
    pub name: String,
    /// Objects in use.
    pub active_objects: usize,
    /// Objects in all slabs.
    pub total_objects: usize,
    /// Object size, bytes.
    pub object_size: usize,
    /// Objects per slab.
    pub objects_per_slab: usize,
    /// Slab order (pages per slab is `1 << order`).
    pub order: u32,
    /// Slabs.
    pub slabs: usize,
    /// Partial (not full, not empty) slabs.
    pub partial_slabs: usize,
    /// Empty slabs kept.
    pub empty_slabs: usize,
    /// `slabs·(PAGE << order) − objects·object_size`, with objects in use.
    pub loss_bytes: usize,
    /// Per-object padding, `(slot − object_size)·objects`: zero here, the free
    /// pointer lives inside free objects.
    pub object_padding_bytes: usize,
    /// Per-slab tail padding, `(PAGE << order − objects_per_slab·slot)·slabs`.
    pub slab_padding_bytes: usize,
    /// `%Ef`: `objects·object_size / (slabs·(PAGE << order))`, in percent
    /// (100 with no slabs, as slabinfo prints it).
    pub efficiency_pct: f64,
}

/// The buddy+slab allocator. See the crate documentation. `C`: whether it
/// keeps the ledger of counters.
#[derive(Debug)]
pub struct Slab<const C: bool = true> {
    buddy: Buddy<C>,
    config: Config,
    caches: Vec<Cache>,
    /// Class index for each size in 8-byte steps up to the largest class
    /// (`kmalloc_size_index`): `size_index[(size + 7) / 8]`.
    size_index: Vec<u8>,
    slabs: Vec<SlabInfo>,
    /// Recycled descriptor ids.
    spare_ids: Vec<u32>,
    /// Page index → slab id for each slab's first page (`NO_SLAB` otherwise).
    slab_of_page: Vec<u32>,
    /// log2 of the page: offset to page index by a shift.
    page_shift: u32,
    /// Live objects and large blocks, requested bytes, granted bytes (class
    /// sizes of objects, buddy blocks of large requests).
    ledger: Ledger<C>,
    /// Free object slots over all slabs, and their bytes (counted only with
    /// the ledger, like the next).
    free_slots: usize,
    free_slot_bytes: usize,
    /// Tails of all slabs.
    tail_bytes: usize,
    /// Bytes of the buddy blocks lent to a layer beside the caches through
    /// [`Slab::alloc_pages`] (the kernel model's alloc_pages and vmalloc):
    /// allocated in the buddy, in no cache and not in this ledger. Always
    /// kept (one add per lent block), so that `check()` can account for them.
    lent_bytes: usize,
}

impl<const C: bool> Slab<C> {
    /// Caches over a page-level buddy that owns `arena`.
    pub fn new(arena: Arena, config: Config) -> Result<Slab<C>, SetupError> {
        let pool = arena.len();
        Slab::with_pool(arena, config, pool)
    }

    /// Caches over a page-level buddy whose pool is the first `pool_bytes`
    /// of `arena` (see [`Buddy::with_pool`]).
    pub fn with_pool(arena: Arena, config: Config, pool_bytes: usize) -> Result<Slab<C>, SetupError> {
        config.validate()?;
        let pages = pool_bytes.min(arena.len()) / config.page;
        let buddy_config = heaplab_buddy::Config { min_block: config.page, max_order: None, split: Split::Lower };
        let buddy = Buddy::with_pool(arena, buddy_config, pool_bytes)?;
        let caches: Vec<Cache> = config
            .classes
            .sizes()
            .into_iter()
            .map(|object_size| {
                let order = slab_order(object_size, config.page, config.min_objects, config.max_order);
                let slab_bytes = config.page << order;
                Cache {
                    object_size,
                    order,
                    slab_bytes,
                    objects_per_slab: slab_bytes / object_size,
                    align: 1 << object_size.trailing_zeros(),
                    min_partial: config.keep.unwrap_or_else(|| (object_size.ilog2() as usize / 2).clamp(5, 10)),
                    partial: SlabList::EMPTY,
                    full: SlabList::EMPTY,
                    empty: SlabList::EMPTY,
                    active_objects: 0,
                }
            })
            .collect();
        let largest = caches.last().map_or(0, |cache| cache.object_size);
        let mut size_index = vec![0u8; largest / 8 + 1];
        let mut class = 0;
        for (step, index) in size_index.iter_mut().enumerate() {
            while caches[class].object_size < step * 8 {
                class += 1;
            }
            *index = class as u8;
        }
        Ok(Slab {
            page_shift: config.page.trailing_zeros(),
            buddy,
            config,
            caches,
            size_index,
            // At most one slab a page: room for all, so that neither table
            // reallocates while the heap grows.
            slabs: heaplab_core::side_vec(pages),
            spare_ids: heaplab_core::side_vec(pages),
            slab_of_page: heaplab_core::side_table(NO_SLAB, pages),
            ledger: Ledger::new(0, 0, 0),
            free_slots: 0,
            free_slot_bytes: 0,
            tail_bytes: 0,
            lent_bytes: 0,
        })
    }

    /// A block of `2^order` pages straight from the buddy, for a layer
    /// beside the caches (`alloc_pages`); in no cache and not in this
    /// allocator's requested or granted bytes.
    #[inline]
    pub fn alloc_pages(&mut self, order: u32) -> Result<usize, AllocError> {
        let block = self.buddy.alloc_order(order)?;
        self.lent_bytes += self.config.page << order;
        Ok(block)
    }

    /// Give back a block of [`Slab::alloc_pages`].
    ///
    /// # Safety
    /// `block` came from `alloc_pages(order)` and was not given back since.
    #[inline]
    pub unsafe fn free_pages(&mut self, block: usize, order: u32) {
        self.lent_bytes -= self.config.page << order;
        // SAFETY: the caller's contract: a live block of this order.
        unsafe { self.buddy.free_block(block, order) };
    }

    /// Bytes lent through [`Slab::alloc_pages`].
    pub fn lent_bytes(&self) -> usize {
        self.lent_bytes
    }

    /// Is the live block at `offset` with `layout` an object of a cache
    /// (rather than a block of pages)? Found from the page, as `kfree`
    /// finds a slab from `struct page`.
    #[inline]
    pub fn is_object(&self, offset: usize, layout: Layout) -> bool {
        let Some(cache) = self.class_for(layout) else { return false };
        let base = offset & !(self.caches[cache].slab_bytes - 1);
        self.slab_of_page
            .get(base >> self.page_shift)
            .is_some_and(|&id| id != NO_SLAB && self.slabs[id as usize].cache as usize == cache)
    }

    /// Does a request of `layout` go to a cache (rather than to pages)?
    #[inline]
    pub fn has_class(&self, layout: Layout) -> bool {
        self.class_for(layout).is_some()
    }

    /// Bytes held in slabs, per cache and over all: the pages the caches
    /// took from the buddy.
    pub fn slab_bytes(&self) -> usize {
        self.caches.iter().map(|c| c.slabs() * c.slab_bytes).sum()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The page allocator underneath.
    pub fn buddy(&self) -> &Buddy<C> {
        &self.buddy
    }

    /// The cache serving `layout`, or `None` for the large path.
    #[inline]
    fn class_for(&self, layout: Layout) -> Option<usize> {
        let size = layout.size().max(1);
        let mut class = *self.size_index.get(size.div_ceil(8))? as usize;
        while self.caches[class].align < layout.align() {
            class += 1;
            if class == self.caches.len() {
                return None;
            }
        }
        Some(class)
    }

    /// The page order a large request takes.
    fn large_order(&self, layout: Layout) -> Option<u32> {
        self.buddy.order_for(layout)
    }

    // ---- slab lists ------------------------------------------------------

    fn list_push(&mut self, cache: usize, id: u32, kind: ListKind) {
        let head = self.caches[cache].list(kind).head;
        {
            let slab = &mut self.slabs[id as usize];
            slab.list = kind;
            slab.prev = NO_SLAB;
            slab.next = head;
        }
        if head != NO_SLAB {
            self.slabs[head as usize].prev = id;
        }
        let list = self.caches[cache].list(kind);
        list.head = id;
        list.len += 1;
    }

    fn list_remove(&mut self, cache: usize, id: u32) {
        let SlabInfo { prev, next, list: kind, .. } = self.slabs[id as usize];
        if prev == NO_SLAB {
            self.caches[cache].list(kind).head = next;
        } else {
            self.slabs[prev as usize].next = next;
        }
        if next != NO_SLAB {
            self.slabs[next as usize].prev = prev;
        }
        self.caches[cache].list(kind).len -= 1;
    }

    fn list_move(&mut self, cache: usize, id: u32, kind: ListKind) {
        self.list_remove(cache, id);
        self.list_push(cache, id, kind);
    }

    // ---- slabs -------------------------------------------------------------

    /// A new slab for `cache` from the buddy, its objects threaded into a
    /// free list in address order; it goes on the partial list.
    fn grow(&mut self, cache: usize) -> Result<u32, AllocError> {
        let (order, size, count, slab_bytes) = {
            let c = &self.caches[cache];
            (c.order, c.object_size, c.objects_per_slab, c.slab_bytes)
        };
        let base = self.buddy.alloc_order(order)?;
        let arena = self.buddy.arena_mut();
        for index in 0..count {
            let object = base + index * size;
            let next = if index + 1 < count { object + size } else { NIL };
            // SAFETY: the object lies in the slab just allocated, inside the
            // arena, and holds at least a word.
            unsafe { arena.store_word_unchecked(object, next as u64) };
        }
        let slab = SlabInfo {
            cache: cache as u16,
            base,
            inuse: 0,
            freelist: base,
            list: ListKind::Partial,
            prev: NO_SLAB,
            next: NO_SLAB,
        };
        let id = match self.spare_ids.pop() {
            Some(id) => {
                self.slabs[id as usize] = slab;
                id
            }
            None => {
                self.slabs.push(slab);
                (self.slabs.len() - 1) as u32
            }
        };
        self.slab_of_page[base / self.config.page] = id;
        self.list_push(cache, id, ListKind::Partial);
        if C {
            self.free_slots += count;
            self.free_slot_bytes += count * size;
            self.tail_bytes += slab_bytes - count * size;
        }
        Ok(id)
    }

    /// Return an empty slab to the buddy.
    fn discard(&mut self, cache: usize, id: u32) {
        self.list_remove(cache, id);
        let c = &self.caches[cache];
        let (order, size, count, slab_bytes) = (c.order, c.object_size, c.objects_per_slab, c.slab_bytes);
        let base = self.slabs[id as usize].base;
        self.slabs[id as usize].cache = u16::MAX;
        self.slab_of_page[base / self.config.page] = NO_SLAB;
        self.spare_ids.push(id);
        if C {
            self.free_slots -= count;
            self.free_slot_bytes -= count * size;
            self.tail_bytes -= slab_bytes - count * size;
        }
        // SAFETY: the slab is a block of `order` this cache took from the buddy.
        unsafe { self.buddy.free_block(base, order) };
    }

    fn alloc_object(&mut self, cache: usize) -> Result<usize, AllocError> {
        let (partial, empty) = (self.caches[cache].partial.head, self.caches[cache].empty.head);
        let id = if partial != NO_SLAB {
            partial
        } else if empty != NO_SLAB {
            self.list_move(cache, empty, ListKind::Partial);
            empty
        } else {
            self.grow(cache)?
        };
        let object = self.slabs[id as usize].freelist;
        debug_assert_ne!(object, NIL, "a partial slab has a free object");
        // SAFETY: a free object of a slab, inside the arena.
        let next = unsafe { self.buddy.arena().load_word_unchecked(object) } as usize;
        let slab = &mut self.slabs[id as usize];
        slab.freelist = next;
        slab.inuse += 1;
        let full = slab.inuse == self.caches[cache].objects_per_slab;
        if full {
            self.list_move(cache, id, ListKind::Full);
        }
        if C {
            let size = self.caches[cache].object_size;
            self.caches[cache].active_objects += 1;
            self.free_slots -= 1;
            self.free_slot_bytes -= size;
        }
        Ok(object)
    }

    fn free_object(&mut self, cache: usize, object: usize) {
        let slab_bytes = self.caches[cache].slab_bytes;
        let base = object & !(slab_bytes - 1);
        let id = self.slab_of_page[base >> self.page_shift];
        debug_assert!(
            id != NO_SLAB && self.slabs[id as usize].cache as usize == cache,
            "object {object} is in no slab of its cache"
        );
        let freelist = self.slabs[id as usize].freelist;
        // SAFETY: `object` is a live object of a slab of this cache (the
        // caller's contract), inside the arena.
        unsafe { self.buddy.arena_mut().store_word_unchecked(object, freelist as u64) };
        let slab = &mut self.slabs[id as usize];
        slab.freelist = object;
        let was_full = slab.list == ListKind::Full;
        slab.inuse -= 1;
        let now_empty = slab.inuse == 0;
        if C {
            let size = self.caches[cache].object_size;
            self.caches[cache].active_objects -= 1;
            self.free_slots += 1;
            self.free_slot_bytes += size;
        }
        if now_empty {
            // SLUB: keep the empty slab only while the cache holds fewer
            // than min_partial non-full slabs besides it.
            let c = &self.caches[cache];
            let others = c.partial.len + c.empty.len - usize::from(!was_full);
            if others >= c.min_partial {
                self.discard(cache, id);
            } else {
                self.list_move(cache, id, ListKind::Empty);
            }
        } else if was_full {
            self.list_move(cache, id, ListKind::Partial);
        }
    }

    /// Objects in use per cache: counted, or summed over the slabs.
    fn active_objects(&self) -> Vec<usize> {
        if C {
            return self.caches.iter().map(|c| c.active_objects).collect();
        }
        let mut active = vec![0; self.caches.len()];
        for slab in self.slabs.iter().filter(|slab| slab.cache != u16::MAX) {
            active[slab.cache as usize] += slab.inuse;
        }
        active
    }

    /// Each cache's figures.
    pub fn caches(&self) -> Vec<CacheReport> {
        self.caches
            .iter()
            .zip(self.active_objects())
            .map(|(c, active_objects)| {
                let slabs = c.slabs();
                let slab_total = slabs * c.slab_bytes;
                let used = active_objects * c.object_size;
                CacheReport {
                    name: cache_name(c.object_size),
                    active_objects,
                    total_objects: slabs * c.objects_per_slab,
                    object_size: c.object_size,
                    objects_per_slab: c.objects_per_slab,
                    order: c.order,
                    slabs,
                    partial_slabs: c.partial.len,
                    empty_slabs: c.empty.len,
                    loss_bytes: slab_total - used,
                    object_padding_bytes: 0,
                    slab_padding_bytes: (c.slab_bytes - c.objects_per_slab * c.object_size) * slabs,
                    efficiency_pct: if slabs == 0 { 100.0 } else { 100.0 * used as f64 / slab_total as f64 },
                }
            })
            .collect()
    }

    /// `/proc/slabinfo`, version 2.1, one line per cache (largest first, as
    /// the kernel lists kmalloc caches).
    pub fn slabinfo(&self) -> String {
        let mut text = String::from(
            "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n",
        );
        for cache in self.caches().iter().rev() {
            let _ = writeln!(
                text,
                "{:<17} {:6} {:6} {:6} {:4} {:4} : tunables {:4} {:4} {:4} : slabdata {:6} {:6} {:6}",
                cache.name,
                cache.active_objects,
                cache.total_objects,
                cache.object_size,
                cache.objects_per_slab,
                1 << cache.order,
                0,
                0,
                0,
                cache.slabs,
                cache.slabs,
                0
            );
        }
        text
    }
}

/// The kernel's cache name for a size: `kmalloc-96`, `kmalloc-1k`.
pub fn cache_name(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("kmalloc-{}k", size / 1024)
    } else {
        format!("kmalloc-{size}")
    }
}

impl<const C: bool> Allocator for Slab<C> {
    fn arena(&self) -> &Arena {
        self.buddy.arena()
    }

    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() > self.buddy.arena().align() {
            return Err(AllocError::Unsupported("alignment above the arena's"));
        }
        let offset = match self.class_for(layout) {
            Some(cache) => {
                let object = self.alloc_object(cache)?;
                self.ledger.allocated(layout.size(), self.caches[cache].object_size);
                object
            }
            None => {
                let order = self.large_order(layout).ok_or(AllocError::Unsupported("size above the largest block"))?;
                let block = self.buddy.alloc_order(order)?;
                self.ledger.allocated(layout.size(), self.config.page << order);
                block
            }
        };
        // SAFETY: the object or block lies inside the arena.
        Ok(unsafe { self.buddy.arena().ptr_at_unchecked(offset) })
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let offset = self.buddy.arena().offset_of_unchecked(ptr);
        match self.class_for(layout) {
            Some(cache) => {
                self.ledger.freed(layout.size(), self.caches[cache].object_size);
                self.free_object(cache, offset);
            }
            None => {
                let Some(order) = self.large_order(layout) else { unreachable!("a live large block has an order") };
                self.ledger.freed(layout.size(), self.config.page << order);
                // SAFETY: the caller guarantees a live large block of this order.
                unsafe { self.buddy.free_block(offset, order) };
            }
        }
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let new = Layout::from_size_align(new_size, old.align())
            .map_err(|_| AllocError::Unsupported("size overflows isize"))?;
        // krealloc keeps the object when the new size fits the same class.
        let same = match (self.class_for(old), self.class_for(new)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.large_order(old) == self.large_order(new),
            _ => false,
        };
        if same {
            self.ledger.resized(old.size(), new_size);
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { heaplab_core::realloc_by_moving(self, ptr, old, new_size) }
    }

    fn granted(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        match self.class_for(layout) {
            Some(cache) => self.caches[cache].object_size,
            None => self.large_order(layout).map_or(0, |order| self.config.page << order),
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

    fn details(&self) -> Vec<Detail> {
        let mut details = Vec::new();
        for cache in self.caches() {
            for (column, value) in [
                ("object_size", cache.object_size as f64),
                ("active_objects", cache.active_objects as f64),
                ("total_objects", cache.total_objects as f64),
                ("objects_per_slab", cache.objects_per_slab as f64),
                ("pages_per_slab", (1u64 << cache.order) as f64),
                ("slabs", cache.slabs as f64),
                ("loss_bytes", cache.loss_bytes as f64),
                ("object_padding_bytes", cache.object_padding_bytes as f64),
                ("slab_padding_bytes", cache.slab_padding_bytes as f64),
                ("efficiency_pct", cache.efficiency_pct),
            ] {
                details.push(Detail { table: "slabinfo", row: cache.name.clone(), column, value });
            }
        }
        details.extend(heaplab_buddy::buddy_details(&self.buddy.nr_free(), self.config.page));
        details
    }

    fn buddy_level(&self) -> Option<BuddyLevel> {
        let mut level = self.buddy.buddy_level()?;
        level.holders = self.caches.iter().map(|c| cache_name(c.object_size)).collect();
        level.holder_object_bytes = self.caches.iter().map(|c| c.object_size).collect();
        level.held = self
            .slabs
            .iter()
            .filter(|slab| slab.cache != u16::MAX)
            .map(|slab| (slab.base, self.caches[slab.cache as usize].order, slab.cache))
            .collect();
        level.held.sort_unstable();
        Some(level)
    }

    fn stats(&self) -> HeapStats {
        let buddy = self.buddy.stats();
        let own = self.ledger.stats(buddy.arena_bytes, 0, 0, Kept::default());
        HeapStats {
            metadata_bytes: buddy.metadata_bytes + self.tail_bytes,
            side_metadata_bytes: buddy.side_metadata_bytes
                + self.slabs.len() * std::mem::size_of::<SlabInfo>()
                + self.slab_of_page.len() * std::mem::size_of::<u32>(),
            free_bytes: buddy.free_bytes + self.free_slot_bytes,
            free_blocks: buddy.free_blocks + self.free_slots,
            footprint_bytes: buddy.footprint_bytes,
            counters: Counters { blocks_inspected: None, ..buddy.counters },
            ..own
        }
    }

    fn reports(&self) -> Reports {
        if C { Reports::ALL } else { Reports::ALL.uncounted() }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        self.buddy.for_each_free(visit);
        for slab in &self.slabs {
            if slab.cache == u16::MAX {
                continue;
            }
            let size = self.caches[slab.cache as usize].object_size;
            let mut object = slab.freelist;
            while object != NIL {
                visit(object, size);
                object = self.buddy.arena().load_word(object) as usize;
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
        shape.free_bytes += self.free_slot_bytes;
        shape.free_blocks += self.free_slots;
        for cache in &self.caches {
            if cache.active_objects < cache.slabs() * cache.objects_per_slab {
                shape.largest_free_block = shape.largest_free_block.max(cache.object_size);
            }
        }
        shape
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        self.buddy.check()?;
        let arena = self.buddy.arena();
        let (mut free_slots, mut free_slot_bytes, mut tail_bytes, mut object_bytes) = (0, 0, 0, 0);
        let mut slabs_listed = 0;
        for (index, cache) in self.caches.iter().enumerate() {
            let mut active = 0;
            for (kind, list) in
                [(ListKind::Partial, cache.partial), (ListKind::Full, cache.full), (ListKind::Empty, cache.empty)]
            {
                let (mut prev, mut id, mut count) = (NO_SLAB, list.head, 0);
                while id != NO_SLAB {
                    ensure!(count < self.slabs.len(), "a slab list of {} does not end", cache_name(cache.object_size));
                    let slab = self.slabs[id as usize];
                    let base = slab.base;
                    ensure!(slab.cache as usize == index, @base, "slab {id} on the lists of cache {index} belongs to {}", slab.cache);
                    ensure!(slab.list == kind && slab.prev == prev, @base, "slab {id} has wrong list links");
                    ensure!(base.is_multiple_of(cache.slab_bytes), @base, "slab is not aligned to its {} bytes", cache.slab_bytes);
                    ensure!(!self.buddy.is_free_at(base), @base, "slab's pages are on the buddy's free lists");
                    ensure!(self.slab_of_page[base / self.config.page] == id, @base, "page map does not point at slab {id}");
                    let expected = match kind {
                        ListKind::Full => slab.inuse == cache.objects_per_slab,
                        ListKind::Empty => slab.inuse == 0,
                        ListKind::Partial => slab.inuse < cache.objects_per_slab,
                    };
                    ensure!(expected, @base, "slab with {} of {} objects in use is on the {kind:?} list", slab.inuse, cache.objects_per_slab);
                    // Walk the object free list.
                    let mut free = 0;
                    let mut object = slab.freelist;
                    while object != NIL {
                        ensure!(free < cache.objects_per_slab, @base, "object free list longer than the slab (a cycle?)");
                        let inside = object >= base && object < base + cache.objects_per_slab * cache.object_size;
                        ensure!(inside && (object - base).is_multiple_of(cache.object_size), @object, "free object is not an object of slab {id}");
                        free += 1;
                        object = arena.load_word(object) as usize;
                    }
                    ensure!(free + slab.inuse == cache.objects_per_slab, @base, "{free} free + {} in use != {} objects", slab.inuse, cache.objects_per_slab);
                    active += slab.inuse;
                    free_slots += free;
                    free_slot_bytes += free * cache.object_size;
                    tail_bytes += cache.slab_bytes - cache.objects_per_slab * cache.object_size;
                    prev = id;
                    id = slab.next;
                    count += 1;
                }
                ensure!(
                    count == list.len,
                    "{} {kind:?} list holds {count} slabs, its count says {}",
                    cache_name(cache.object_size),
                    list.len
                );
                slabs_listed += count;
            }
            ensure!(
                !C || active == cache.active_objects,
                "{} counts {} active objects, its slabs {active}",
                cache_name(cache.object_size),
                cache.active_objects
            );
            object_bytes += active * cache.object_size;
        }
        ensure!(
            slabs_listed + self.spare_ids.len() == self.slabs.len(),
            "{} slabs listed, {} spare, {} descriptors",
            slabs_listed,
            self.spare_ids.len(),
            self.slabs.len()
        );
        if !C {
            return Ok(());
        }
        ensure!(
            free_slots == self.free_slots && free_slot_bytes == self.free_slot_bytes,
            "free slot counters disagree with the slabs"
        );
        ensure!(tail_bytes == self.tail_bytes, "tail bytes counter {} but slabs have {tail_bytes}", self.tail_bytes);
        let stats = self.stats();
        // Large blocks are the buddy's allocated blocks that are not slabs.
        let large_bytes = self.buddy.stats().granted_bytes - self.slab_bytes() - self.lent_bytes;
        ensure!(
            object_bytes + large_bytes == stats.granted_bytes,
            "granted bytes counter {} but slabs hold {object_bytes} in objects and large blocks {large_bytes}",
            stats.granted_bytes
        );
        ensure!(
            stats.granted_bytes + stats.free_bytes + stats.metadata_bytes + self.lent_bytes == stats.arena_bytes,
            "granted {} + free {} + metadata {} + lent {} != arena {}",
            stats.granted_bytes,
            stats.free_bytes,
            stats.metadata_bytes,
            self.lent_bytes,
            stats.arena_bytes
        );
        Ok(())
    }

    fn trim(&mut self) {
        for cache in 0..self.caches.len() {
            while self.caches[cache].empty.head != NO_SLAB {
                let id = self.caches[cache].empty.head;
                self.discard(cache, id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
