//! The binary buddy system: Knuth's algorithms R and S (TAOCP vol. 1 §2.5)
//! with the Linux page allocator's `free_area` semantics.
//!
//! # Blocks and orders
//!
//! A block of order `k` is `min << k` bytes and starts at an arena offset that
//! is a multiple of its size. Its *buddy* is the block of the same order it
//! was split from or can merge into: the one at `offset ^ (min << k)`. Order
//! 0 is the minimum block (`min=`, e.g. 16 bytes for byte-level use, 4 KiB for
//! a page allocator); orders go up to `max_order=`.
//!
//! # Policy
//!
//! - **Allocation** (algorithm R, Linux `__rmqueue_smallest` + `expand`): a
//!   request of `n` bytes aligned to `a` needs order
//!   `k = ceil(log2(max(n, a, min))) − log2(min)`. Take the first block of
//!   the smallest non-empty free list of order `j ≥ k` (found with one
//!   bit scan over a mask of non-empty orders), and while `j > k` split it:
//!   one half goes to the front of list `j − 1`, the search continues with
//!   the other. `split=lower` (Knuth, Linux) keeps the lower half and frees
//!   the upper; `split=upper` (as some textbooks draw it) the reverse. O(orders).
//! - **Free** (algorithm S, Linux `__free_one_page`): while the buddy is free
//!   and of the same order (and inside the arena, and the order is below the
//!   maximum), unlink it and merge; put the result at the front of its list.
//!   O(orders).
//! - **Realloc** keeps the block if the new size rounds to the same order,
//!   shrinks in place by freeing the upper halves, and moves to grow.
//! - **Arenas that are not a power of two** are tiled greedily from offset 0
//!   with the largest aligned blocks that fit (several top-order blocks, then
//!   smaller ones at the end); bytes at the end smaller than one minimum block
//!   are unused metadata.
//!
//! # Metadata
//!
//! - In the arena, inside free blocks only: the list links and the block's
//!   order (Knuth's `LINKF`, `LINKB`, `KVAL`), as 32-bit unit indices, so the
//!   minimum block is 16 bytes. A list's head keeps no back link: unlinking
//!   tells the head by the list's head, so an allocation, which takes a
//!   head, does not write to the block after it. Allocated blocks carry no header: `granted` is
//!   the power-of-two block, and all internal fragmentation is rounding.
//! - Outside the arena, like the kernel's `struct page`: one bit per minimum
//!   block, set on the first unit of each free block (Knuth's `TAG`), so the
//!   buddy test is O(1) with no list scan; and the list heads and counts of
//!   `free_area[order]`. Reported as side metadata.
//! - `free` uses the layout to know the block's order, as the kernel's
//!   `free_pages(addr, order)` does.
//!
//! # Reports
//!
//! [`Buddy::nr_free`] is `free_area[order].nr_free`; [`Buddy::buddyinfo`]
//! prints it as `/proc/buddyinfo` does; [`fragmentation_index`] and
//! [`unusable_free_index`] compute mm/vmstat.c's per-order indices.
//!
//! # Drawbacks
//!
//! - Rounding to a power of two wastes on average a quarter of a block for
//!   sizes uniform between powers of two (granted/requested → 4/3) and more
//!   for log-uniform sizes (→ 1/ln 2 ≈ 1.44): the most internal fragmentation
//!   of the classic designs (Wilson et al. 1995; Knuth).
//! - Two free neighbours that are not buddies never merge, so free space can
//!   be plentiful yet unusable for a large request (external fragmentation,
//!   which the Linux indices measure).
//! - Alignment is paid in size: an aligned request takes a block at least as
//!   large as its alignment.

mod linux;

use std::alloc::Layout;
use std::fmt::Write as _;
use std::ptr::NonNull;

use heaplab_core::spec::{choice_name, format_size};
use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuddyLevel, BuildError, Detail, FreeListView, FreeShape, HeapStats,
    InvariantViolation, Kept, Ledger, Reports, SetupError, Spec, SpecError, Visitor, Waste, ensure,
};

pub use linux::{fragmentation_index, unusable_free_index};

/// Null link in a free list.
const NIL: u32 = u32::MAX;
/// Smallest minimum block: two 32-bit links and the order byte must fit.
pub const SMALLEST_MIN_BLOCK: usize = 16;
/// Orders are tracked in a 64-bit mask.
const ORDER_LIMIT: u32 = 63;

/// Which half of a split block the request keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The lower half, as Knuth and Linux do; the upper half is freed.
    Lower,
    /// The upper half; the lower half is freed.
    Upper,
}

const SPLITS: [(&str, Split); 2] = [("lower", Split::Lower), ("upper", Split::Upper)];

/// A buddy configuration: spec `buddy:min=SIZE,max_order=N|auto,split=lower|upper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    /// Size of an order-0 block: a power of two, at least 16.
    pub min_block: usize,
    /// Largest order, or `None` for the largest the arena holds.
    pub max_order: Option<u32>,
    /// Which half a split keeps.
    pub split: Split,
}

impl Default for Config {
    /// 16-byte minimum blocks, orders up to the arena, lower halves.
    fn default() -> Self {
        Config { min_block: 16, max_order: None, split: Split::Lower }
    }
}

impl Config {
    /// A page allocator: 4 KiB order-0 blocks and Linux's 11 orders (0 to 10).
    pub fn pages() -> Config {
        Config { min_block: 4096, max_order: Some(10), split: Split::Lower }
    }
}

impl AllocatorConfig for Config {
    type Allocator = Buddy;
    type Timed = Buddy<false>;
    const FAMILY: &'static str = "buddy";
    const SUMMARY: &'static str = "binary buddy system (Knuth R/S, Linux free_area): power-of-two blocks, XOR buddies";

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let mut reader = spec.reader();
        let default = Config::default();
        let min_block = reader.size("min", default.min_block)?;
        let max_order = match reader.raw("max_order") {
            None | Some("auto") => None,
            Some(text) => match text.parse::<u32>() {
                Ok(order) if order <= ORDER_LIMIT => Some(order),
                _ => {
                    return Err(spec.error(format!(
                        "`max_order` must be `auto` or a number from 0 to {ORDER_LIMIT}, found `{text}`"
                    )));
                }
            },
        };
        let split = reader.choice("split", &SPLITS, default.split)?;
        reader.finish()?;
        if !min_block.is_power_of_two() || min_block < SMALLEST_MIN_BLOCK {
            return Err(spec.error(format!(
                "`min` must be a power of two of at least {SMALLEST_MIN_BLOCK} bytes, found {min_block}"
            )));
        }
        Ok(Config { min_block, max_order, split })
    }

    fn spec(&self) -> String {
        let max_order = self.max_order.map_or("auto".to_string(), |order| order.to_string());
        let split = choice_name(&SPLITS, self.split);
        format!("buddy:min={},max_order={max_order},split={split}", format_size(self.min_block))
    }

    fn describe(&self) -> String {
        let orders = self.max_order.map_or("orders up to the arena".to_string(), |order| format!("orders 0..={order}"));
        let half = match self.split {
            Split::Lower => "keeps the lower half",
            Split::Upper => "keeps the upper half",
        };
        format!("{}-byte order 0, {orders}; a split {half}", self.min_block)
    }

    fn listed() -> Vec<Self> {
        vec![
            Config::default(),
            Config { split: Split::Upper, ..Config::default() },
            Config::pages(),
            Config { split: Split::Upper, ..Config::pages() },
        ]
    }

    fn build(&self, arena: Arena) -> Result<Buddy, BuildError> {
        Buddy::new(arena, *self).map_err(|reason| self.build_error(reason))
    }

    fn build_timed(&self, arena: Arena) -> Result<Buddy<false>, BuildError> {
        Buddy::new(arena, *self).map_err(|reason| self.build_error(reason))
    }

    /// The listed minimum blocks (16 bytes, a 4 KiB page) are visited as
    /// [`Fixed`] configurations, whose unit conversions are constant shifts.
    fn accept<V: Visitor>(&self, visitor: V) -> V::Output {
        match self.min_block {
            16 => visitor.visit(&Fixed::<4>(*self)),
            4096 => visitor.visit(&Fixed::<12>(*self)),
            _ => visitor.visit(self),
        }
    }

    fn as_send<V: heaplab_core::concurrent::SendVisitor>(&self, visitor: V) -> Option<V::Output> {
        Some(visitor.visit(self))
    }
}

/// A configuration whose minimum block is `1 << SHIFT` bytes, known when
/// compiling: what [`Config`] hands the harness for the listed sizes. Its
/// spec, description and listing are its [`Config`]'s.
#[derive(Debug, Clone, Copy)]
pub struct Fixed<const SHIFT: u32>(Config);

impl<const SHIFT: u32> From<Config> for Fixed<SHIFT> {
    /// # Panics
    /// If the configuration's minimum block is not `1 << SHIFT`.
    fn from(config: Config) -> Self {
        assert_eq!(config.min_block, 1 << SHIFT, "a fixed configuration for another minimum block");
        Fixed(config)
    }
}

impl<const SHIFT: u32> AllocatorConfig for Fixed<SHIFT> {
    type Allocator = Buddy<true, SHIFT>;
    type Timed = Buddy<false, SHIFT>;
    const FAMILY: &'static str = Config::FAMILY;
    const SUMMARY: &'static str = Config::SUMMARY;

    /// Only [`Config`] parses specs; a fixed configuration is made by visiting it.
    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        Err(spec.error("a fixed buddy configuration is made through `Config`"))
    }

    fn spec(&self) -> String {
        self.0.spec()
    }

    fn describe(&self) -> String {
        self.0.describe()
    }

    fn listed() -> Vec<Self> {
        Vec::new()
    }

    fn build(&self, arena: Arena) -> Result<Self::Allocator, BuildError> {
        Buddy::new(arena, self.0).map_err(|reason| self.build_error(reason))
    }

    fn build_timed(&self, arena: Arena) -> Result<Self::Timed, BuildError> {
        Buddy::new(arena, self.0).map_err(|reason| self.build_error(reason))
    }

    fn as_send<V: heaplab_core::concurrent::SendVisitor>(&self, visitor: V) -> Option<V::Output> {
        Some(visitor.visit(self))
    }
}

/// The binary buddy allocator. See the crate documentation. `C`: whether
/// it keeps the ledger of counters (see [`heaplab_core::ledger`]); `SHIFT`:
/// log2 of the minimum block when it is known when compiling (the listed
/// configurations), so that every offset-to-unit conversion is a constant
/// shift; 0 for one read from the configuration.
#[derive(Debug)]
pub struct Buddy<const C: bool = true, const SHIFT: u32 = 0> {
    arena: Arena,
    config: Config,
    /// log2 of the minimum block.
    min_shift: u32,
    /// Largest order a block can have; at most [`ORDER_LIMIT`].
    max_order: u32,
    /// Bytes tiled with blocks: the pool rounded down to a minimum block.
    managed_bytes: usize,
    /// The arena's first bytes that this buddy system is the pool of: the
    /// whole arena, or (for a model that keeps a virtual space behind its
    /// page frames, as the kernel model does) a prefix of it.
    pool_bytes: usize,
    /// `free_area[order]`: first free block (unit index) or `NIL`, for
    /// orders `0..=max_order`; `NIL` above.
    heads: [u32; 64],
    /// Bit `k` set iff list `k` is non-empty.
    nonempty: u64,
    /// One bit per unit, set iff the unit starts a free block;
    /// `free_bits.len() * 64 >= managed_bytes >> min_shift`.
    free_bits: Vec<u64>,
    /// `free_area[order].nr_free`, kept when counting (walked otherwise).
    nr_free: [usize; 64],
    /// Requested, granted and free bytes, footprint, splits, coalesces.
    ledger: Ledger<C>,
}

impl<const C: bool, const SHIFT: u32> Buddy<C, SHIFT> {
    /// Tile `arena` with free blocks.
    pub fn new(arena: Arena, config: Config) -> Result<Buddy<C, SHIFT>, SetupError> {
        let pool = arena.len();
        Buddy::with_pool(arena, config, pool)
    }

    /// Tile the first `pool_bytes` of `arena` with free blocks; the rest of
    /// the arena is not this buddy system's (nor counted in its stats).
    pub fn with_pool(arena: Arena, config: Config, pool_bytes: usize) -> Result<Buddy<C, SHIFT>, SetupError> {
        let min = config.min_block;
        let pool_bytes = pool_bytes.min(arena.len());
        if !min.is_power_of_two() || min < SMALLEST_MIN_BLOCK {
            return Err(SetupError::parameter(
                "min",
                format!("be a power of two of at least {SMALLEST_MIN_BLOCK} bytes"),
                min,
            ));
        }
        if pool_bytes < min {
            return Err(SetupError::ArenaTooSmall {
                arena: pool_bytes,
                needs: format!("it cannot hold one {min}-byte block"),
            });
        }
        let units = pool_bytes / min;
        if units > NIL as usize {
            return Err(SetupError::ArenaTooLarge {
                arena: pool_bytes,
                limit: format!("it holds more than {NIL} minimum blocks; raise `min`"),
            });
        }
        let min_shift = min.trailing_zeros();
        if SHIFT != 0 && SHIFT != min_shift {
            return Err(SetupError::parameter(
                "min",
                format!("be {} bytes in this build of the buddy system", 1usize << SHIFT),
                min,
            ));
        }
        let fitting = (usize::BITS - 1 - units.leading_zeros()).min(ORDER_LIMIT);
        let max_order = config.max_order.unwrap_or(fitting).min(ORDER_LIMIT);
        let mut buddy = Buddy {
            managed_bytes: units * min,
            pool_bytes,
            arena,
            config,
            min_shift,
            max_order,
            heads: [NIL; 64],
            nonempty: 0,
            free_bits: heaplab_core::side_table(0, units.div_ceil(64)),
            nr_free: [0; 64],
            ledger: Ledger::new(0, 0, 0),
        };
        // Greedy tiling, collected first and pushed from the top down so
        // that each list starts with its lowest block.
        let mut tiles = Vec::new();
        let mut offset = 0;
        while offset < buddy.managed_bytes {
            let aligned = if offset == 0 { max_order } else { (offset.trailing_zeros() - min_shift).min(max_order) };
            let mut order = aligned;
            while offset + (min << order) > buddy.managed_bytes {
                order -= 1;
            }
            tiles.push((offset, order));
            offset += min << order;
        }
        for &(offset, order) in tiles.iter().rev() {
            // SAFETY: the tiles are aligned blocks inside the managed bytes.
            unsafe { buddy.push(offset, order) };
        }
        Ok(buddy)
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    /// log2 of the minimum block: the constant, or the configured one.
    #[inline(always)]
    fn shift(&self) -> u32 {
        if SHIFT != 0 { SHIFT } else { self.min_shift }
    }

    /// The minimum block.
    #[inline(always)]
    fn min(&self) -> usize {
        1 << self.shift()
    }

    /// Bytes in an order-0 block.
    pub fn min_block(&self) -> usize {
        self.min()
    }

    /// The largest order.
    pub fn max_order(&self) -> u32 {
        self.max_order
    }

    /// `free_area[order].nr_free` for orders `0..=max_order` (counted, or
    /// walked when the ledger is off).
    pub fn nr_free(&self) -> Vec<usize> {
        let orders = self.max_order as usize + 1;
        if C {
            return self.nr_free[..orders].to_vec();
        }
        let mut counts = vec![0; orders];
        self.for_each_free(&mut |_, len| counts[(len.trailing_zeros() - self.shift()) as usize] += 1);
        counts
    }

    /// The arena with write access, for a layer built on top (the slab
    /// allocator writes its object free lists into the blocks it owns).
    pub fn arena_mut(&mut self) -> &mut Arena {
        &mut self.arena
    }

    /// Does a free block start at `offset`? (For layers that check their own
    /// blocks are not on the free lists.)
    pub fn is_free_at(&self, offset: usize) -> bool {
        offset < self.managed_bytes && offset.is_multiple_of(self.min()) && self.free_bit_checked(offset)
    }

    /// One `/proc/buddyinfo` line for this zone, e.g.
    /// `Node 0, zone   Normal      1      0      2 `.
    pub fn buddyinfo(&self, zone: &str) -> String {
        let mut line = format!("Node 0, zone {zone:>8} ");
        for count in self.nr_free() {
            let _ = write!(line, "{count:6} ");
        }
        line
    }

    /// The order a request needs, or `None` above the largest block.
    #[inline(always)]
    pub fn order_for(&self, layout: Layout) -> Option<u32> {
        let order = self.order_of(layout);
        (order <= self.max_order).then_some(order)
    }

    /// The order a request needs, which may be above the largest; at most
    /// 59, since a layout's size and alignment are at most 2^63 and the
    /// minimum block at least 16 bytes.
    #[inline(always)]
    fn order_of(&self, layout: Layout) -> u32 {
        let bytes = layout.size().max(layout.align()).max(self.min());
        // bytes >= 16 and at most 2^63 (a Layout's size is at most
        // isize::MAX, its alignment at most 2^63), so the power of two at or
        // above it exists: its log is the bit length of bytes − 1.
        let shift = usize::BITS - (bytes - 1).leading_zeros();
        shift - self.shift()
    }

    /// Allocate a block of exactly `order`, as `alloc_pages(order)` does.
    #[inline(always)]
    pub fn alloc_order(&mut self, order: u32) -> Result<usize, AllocError> {
        if order > self.max_order {
            return Err(AllocError::Unsupported("order above the largest block"));
        }
        self.take(order)
    }

    /// Allocate a block of `order` (below 64): an order above the largest
    /// finds no list, as no bit of `nonempty` is set above it.
    #[inline(always)]
    fn take(&mut self, order: u32) -> Result<usize, AllocError> {
        debug_assert!(order < 64);
        let candidates = self.nonempty >> order << order;
        if candidates == 0 {
            return Err(self.none_free(order));
        }
        let mut current = candidates.trailing_zeros();
        // SAFETY: `current` is a non-empty order, so its head is a free
        // block of the lists; the halves split off are aligned blocks of
        // the block taken.
        unsafe {
            let mut block = self.pop(current);
            while current > order {
                current -= 1;
                let half = self.min() << current;
                match self.config.split {
                    Split::Lower => self.push(block + half, current),
                    Split::Upper => {
                        self.push(block, current);
                        block += half;
                    }
                }
                self.ledger.split();
            }
            let size = self.min() << order;
            self.ledger.granted_more(size);
            self.ledger.reached(block + size);
            Ok(block)
        }
    }

    /// Why no list of `order` or above has a block.
    #[cold]
    fn none_free(&self, order: u32) -> AllocError {
        if order > self.max_order {
            AllocError::Unsupported("size above the largest block")
        } else {
            AllocError::OutOfMemory
        }
    }

    /// Free a block of `order` at `block`, merging with free buddies, as
    /// `free_pages(addr, order)` does.
    ///
    /// # Panics
    /// If `block` is not a block of the managed bytes aligned to its order
    /// (a broken caller).
    pub fn free_order(&mut self, block: usize, order: u32) {
        let size = self.min() << order;
        assert!(
            order <= self.max_order && block.is_multiple_of(size) && block + size <= self.managed_bytes,
            "block {block} of order {order} is not a block of this buddy system"
        );
        // SAFETY: checked just above.
        unsafe { self.free_block(block, order) }
    }

    /// [`Buddy::free_order`] without its check.
    ///
    /// # Safety
    /// `block` is an allocated block of `order` of this buddy system.
    #[inline(always)]
    pub unsafe fn free_block(&mut self, block: usize, order: u32) {
        let size = self.min() << order;
        debug_assert!(order <= self.max_order && block.is_multiple_of(size) && block + size <= self.managed_bytes);
        self.ledger.granted_less(size);
        // SAFETY: the caller's guarantee: an aligned block of the managed
        // bytes, not listed.
        unsafe {
            // Most frees find their buddy in use: that test and the push
            // stay in the caller, the merging loop is out of line.
            if self.merges(block, order) {
                self.merge_up(block, order);
            } else {
                self.push(block, order);
            }
        }
    }

    /// Is the buddy of `block` a free block of `order` that it merges with?
    ///
    /// # Safety
    /// `block` is an aligned block of `order` inside the managed bytes.
    #[inline(always)]
    unsafe fn merges(&self, block: usize, order: u32) -> bool {
        let size = self.min() << order;
        let buddy = block ^ size;
        // SAFETY: the buddy is checked to lie inside the managed bytes
        // before its bit and order are read.
        order < self.max_order && buddy + size <= self.managed_bytes && unsafe { self.is_free_block(buddy, order) }
    }

    /// Merge `block` with its free buddy, and the result with its own,
    /// while they are free, and list the merged block (algorithm S).
    ///
    /// # Safety
    /// `block` is an aligned block of `order` inside the managed bytes,
    /// not listed, whose buddy is free of the same `order`.
    #[inline(never)]
    unsafe fn merge_up(&mut self, mut block: usize, mut order: u32) {
        loop {
            let buddy = block ^ (self.min() << order);
            // SAFETY: the caller's guarantee, then `merges`: the buddy is
            // a free block of `order`, so it is listed; the merged block
            // is an aligned block of the managed bytes.
            unsafe { self.unlink(buddy, order) };
            block = block.min(buddy);
            order += 1;
            self.ledger.coalesced();
            // SAFETY: as above.
            if !unsafe { self.merges(block, order) } {
                break;
            }
        }
        // SAFETY: the merged block is an aligned block of the managed bytes.
        unsafe { self.push(block, order) };
    }

    // ---- free lists (links in the free blocks, as unit indices) ----------
    //
    // Every `unsafe fn` below takes an aligned block offset inside the
    // managed bytes: its unit's bit is in `free_bits`, and its first 12
    // bytes (two links and the order) are inside the arena, since a block
    // is at least 16 bytes.

    #[inline(always)]
    fn unit(&self, offset: usize) -> u32 {
        (offset >> self.shift()) as u32
    }

    #[inline(always)]
    fn unit_offset(&self, unit: u32) -> usize {
        (unit as usize) << self.shift()
    }

    fn free_bit_checked(&self, offset: usize) -> bool {
        let unit = offset >> self.shift();
        self.free_bits[unit / 64] & (1 << (unit % 64)) != 0
    }

    /// # Safety
    /// `offset` is a block inside the managed bytes.
    #[inline(always)]
    unsafe fn free_word(&mut self, offset: usize) -> &mut u64 {
        let unit = offset >> self.shift();
        debug_assert!(unit / 64 < self.free_bits.len());
        // SAFETY: units inside the managed bytes have their bit in free_bits.
        unsafe { self.free_bits.get_unchecked_mut(unit / 64) }
    }

    /// # Safety
    /// `offset` is a block inside the managed bytes.
    #[inline(always)]
    unsafe fn set_free_bit(&mut self, offset: usize, free: bool) {
        let bit = 1 << ((offset >> self.shift()) % 64);
        // SAFETY: the caller's guarantee.
        let word = unsafe { self.free_word(offset) };
        if free {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Is `block` a free block of `order`? Its bit, then the order it
    /// stores (Knuth's TAG and KVAL).
    ///
    /// # Safety
    /// `block` is a block inside the managed bytes.
    #[inline(always)]
    unsafe fn is_free_block(&self, block: usize, order: u32) -> bool {
        let unit = block >> self.shift();
        debug_assert!(unit / 64 < self.free_bits.len());
        // SAFETY: the caller's guarantee: the bit is in free_bits and a free
        // block's order word is inside the arena.
        unsafe {
            *self.free_bits.get_unchecked(unit / 64) & (1 << (unit % 64)) != 0
                && self.arena.load_u32_unchecked(block + 8) == order
        }
    }

    /// The order stored in a free block (Knuth's KVAL), checked.
    fn stored_order(&self, block: usize) -> u32 {
        self.arena.load_u32(block + 8)
    }

    fn next_checked(&self, block: usize) -> u32 {
        self.arena.load_u32(block)
    }

    fn prev_checked(&self, block: usize) -> u32 {
        self.arena.load_u32(block + 4)
    }

    /// Put a block at the front of list `order` and mark it free.
    ///
    /// # Safety
    /// `block` is an aligned block of `order` inside the managed bytes, not listed.
    #[inline(always)]
    unsafe fn push(&mut self, block: usize, order: u32) {
        let slot = (order & 63) as usize;
        let head = self.heads[slot];
        let unit = self.unit(block);
        // SAFETY: the caller's guarantee; the old head is a listed block.
        // The new head's back link is left as it is: a head's is never
        // relied on (see `unlink`).
        unsafe {
            self.arena.store_u32_unchecked(block, head);
            self.arena.store_u32_unchecked(block + 8, order);
            if head != NIL {
                let head_offset = self.unit_offset(head);
                self.arena.store_u32_unchecked(head_offset + 4, unit);
            } else {
                // Only a list that was empty changes the mask.
                self.nonempty |= 1 << order;
            }
            self.set_free_bit(block, true);
        }
        self.heads[slot] = unit;
        if C {
            self.nr_free[slot] += 1;
        }
        self.ledger.free_added(self.min() << order);
    }

    /// Take the first block off the non-empty list `order`.
    ///
    /// # Safety
    /// List `order` is non-empty.
    #[inline(always)]
    unsafe fn pop(&mut self, order: u32) -> usize {
        let slot = (order & 63) as usize;
        let block = self.unit_offset(self.heads[slot]);
        // SAFETY: the head of a non-empty list is a listed block. Its
        // successor becomes the head, whose back link is not relied on, so
        // it is not written (up to one cache line fewer per allocation).
        unsafe {
            let next = self.arena.load_u32_unchecked(block);
            self.heads[slot] = next;
            if next == NIL {
                self.nonempty &= !(1 << order);
            }
            self.set_free_bit(block, false);
        }
        self.taken_off(slot, order);
        block
    }

    /// Take a listed block off list `order` and mark it not free.
    ///
    /// # Safety
    /// `block` is listed on list `order`.
    #[inline(always)]
    unsafe fn unlink(&mut self, block: usize, order: u32) {
        let slot = (order & 63) as usize;
        // SAFETY: the caller's guarantee; its neighbours in the list are
        // listed blocks. A head's back link is stale, so the head is told
        // by the list's head, not by the link; its successor's new back
        // link is then stale too, which is right for a head.
        unsafe {
            let next = self.arena.load_u32_unchecked(block);
            let prev = self.arena.load_u32_unchecked(block + 4);
            if self.heads[slot] == self.unit(block) {
                self.heads[slot] = next;
                if next == NIL {
                    self.nonempty &= !(1 << order);
                }
            } else {
                let prev_offset = self.unit_offset(prev);
                self.arena.store_u32_unchecked(prev_offset, next);
            }
            if next != NIL {
                let next_offset = self.unit_offset(next);
                self.arena.store_u32_unchecked(next_offset + 4, prev);
            }
            self.set_free_bit(block, false);
        }
        self.taken_off(slot, order);
    }

    #[inline(always)]
    fn taken_off(&mut self, slot: usize, order: u32) {
        if C {
            self.nr_free[slot] -= 1;
        }
        self.ledger.free_removed(self.min() << order);
    }
}

/// `/proc/buddyinfo` with the vmstat indices, one row per order.
pub fn buddy_details(nr_free: &[usize], min_block: usize) -> Vec<Detail> {
    let mut details = Vec::new();
    for (order, &count) in nr_free.iter().enumerate() {
        let row = format!("order {order}");
        let order = order as u32;
        for (column, value) in [
            ("block_bytes", (min_block << order) as f64),
            ("nr_free", count as f64),
            ("fragmentation_index", fragmentation_index(nr_free, order) as f64 / 1000.0),
            ("unusable_free_index", unusable_free_index(nr_free, order) as f64 / 1000.0),
        ] {
            details.push(Detail { table: "buddyinfo", row: row.clone(), column, value });
        }
    }
    details
}

impl<const C: bool, const SHIFT: u32> Allocator for Buddy<C, SHIFT> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    // Inlined into the replay loop: a call here would cost a third of the
    // allocator's own instructions in register saves and restores. (rlsf's
    // allocate and deallocate are calls; the harness times the whole op
    // either way.)
    #[inline(always)]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() > self.arena.align() {
            return Err(AllocError::Unsupported("alignment above the arena's"));
        }
        // An order above the largest finds no block (see `take`).
        let block = self.take(self.order_of(layout))?;
        self.ledger.allocated(layout.size(), 0);
        // SAFETY: the block lies inside the managed bytes.
        Ok(unsafe { self.arena.ptr_at_unchecked(block) })
    }

    #[inline(always)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // A live block's layout gives its order (the caller's contract).
        let order = self.order_of(layout);
        let block = self.arena.offset_of_unchecked(ptr);
        self.ledger.freed(layout.size(), 0);
        // SAFETY: the caller guarantees `ptr` is live with `layout`: an
        // allocated block of that order.
        unsafe { self.free_block(block, order) };
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let new = Layout::from_size_align(new_size, old.align())
            .map_err(|_| AllocError::Unsupported("size overflows isize"))?;
        let old_order = self.order_for(old).expect("a live block has a valid order");
        let Some(new_order) = self.order_for(new) else {
            return Err(AllocError::Unsupported("size above the largest block"));
        };
        if new_order <= old_order {
            // Shrink in place: free the upper halves, largest last. Each
            // freed half's buddy is the part still allocated, so none merges.
            let block = self.arena.offset_of_unchecked(ptr);
            for order in new_order..old_order {
                let half = self.min() << order;
                self.ledger.granted_less(half);
                // SAFETY: the upper half of a live block, aligned to its order.
                unsafe { self.push(block + half, order) };
                self.ledger.split();
            }
            self.ledger.resized(old.size(), new_size);
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { heaplab_core::realloc_by_moving(self, ptr, old, new_size) }
    }

    fn granted(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        self.order_for(layout).map_or(0, |order| self.min() << order)
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        // Rounding to the class (power of two, page block) the size alone
        // picks; a larger one that an alignment forces is overhead.
        heaplab_core::waste_by_class(self, ptr, layout)
    }

    fn into_arena(self) -> Arena {
        self.arena
    }

    fn details(&self) -> Vec<Detail> {
        buddy_details(&self.nr_free(), self.min())
    }

    fn free_lists(&self) -> Option<FreeListView> {
        let orders = self.max_order as usize + 1;
        let mut blocks = Vec::new();
        for (order, &head) in self.heads.iter().enumerate().take(orders) {
            let mut unit = head;
            while unit != NIL {
                let block = self.unit_offset(unit);
                blocks.push((order, block));
                unit = self.next_checked(block);
            }
        }
        Some(FreeListView {
            names: (0..orders)
                .map(|order| format!("free_area[{order}], {} blocks", format_size(self.min() << order)))
                .collect(),
            blocks,
            rover: None,
            second_level: None,
        })
    }

    fn buddy_level(&self) -> Option<BuddyLevel> {
        let mut free = Vec::new();
        self.for_each_free(&mut |offset, len| free.push((offset, len.trailing_zeros() - self.shift())));
        Some(BuddyLevel {
            min_block: self.min(),
            max_order: self.max_order,
            managed_bytes: self.managed_bytes,
            free,
            held: Vec::new(),
            holders: Vec::new(),
            holder_object_bytes: Vec::new(),
        })
    }

    fn stats(&self) -> HeapStats {
        let side = self.free_bits.len() * 8 + size_of_val(&self.heads) + size_of_val(&self.nr_free);
        self.ledger.stats(self.pool_bytes, self.pool_bytes - self.managed_bytes, side, Kept::SPLITS_AND_COALESCES)
    }

    fn reports(&self) -> Reports {
        if C { Reports::ALL } else { Reports::ALL.uncounted() }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        for (order, &head) in self.heads.iter().enumerate().take(self.max_order as usize + 1) {
            let mut unit = head;
            while unit != NIL {
                let block = self.unit_offset(unit);
                visit(block, self.min() << order);
                unit = self.next_checked(block);
            }
        }
    }

    fn free_shape(&self) -> FreeShape {
        let largest = if self.nonempty == 0 { 0 } else { self.min() << (63 - self.nonempty.leading_zeros()) };
        if C {
            FreeShape {
                free_bytes: self.ledger.free_bytes(),
                free_blocks: self.ledger.free_blocks(),
                largest_free_block: largest,
            }
        } else {
            let mut shape = FreeShape::default();
            self.for_each_free(&mut |_, len| shape.add(len));
            shape
        }
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        let min = self.min();
        let mut listed_units = 0usize;
        let (mut free_bytes, mut free_blocks) = (0, 0);
        for (order, &head) in self.heads.iter().enumerate() {
            if order > self.max_order as usize {
                ensure!(head == NIL, "a free list above the largest order {} is not empty", self.max_order);
                continue;
            }
            let size = min << order;
            let mut count = 0;
            let (mut prev, mut unit) = (None, head);
            while unit != NIL {
                let block = self.unit_offset(unit);
                ensure!(count < self.free_bits.len() * 64, "free list {order} does not end (a cycle?)");
                ensure!(block + size <= self.managed_bytes, @block, "free block of order {order} runs past the managed {} bytes", self.managed_bytes);
                ensure!(block.is_multiple_of(size), @block, "free block of order {order} is not aligned to {size}");
                ensure!(self.free_bit_checked(block), @block, "listed block of order {order} is not tagged free");
                ensure!(self.stored_order(block) == order as u32, @block, "listed on order {order}, stores order {}", self.stored_order(block));
                // A head's back link is not kept (see `push`).
                if let Some(prev) = prev {
                    ensure!(self.prev_checked(block) == prev, @block, "back link {} should be {prev}", self.prev_checked(block));
                }
                if (order as u32) < self.max_order {
                    let buddy = block ^ size;
                    ensure!(
                        buddy + size > self.managed_bytes || !(self.free_bit_checked(buddy) && self.stored_order(buddy) == order as u32),
                        @block,
                        "free buddies of order {order} at {block} and {buddy} were not merged"
                    );
                }
                count += 1;
                free_bytes += size;
                prev = Some(unit);
                unit = self.next_checked(block);
            }
            if C {
                ensure!(
                    count == self.nr_free[order],
                    "nr_free[{order}] is {} but the list holds {count}",
                    self.nr_free[order]
                );
            }
            ensure!((self.nonempty >> order) & 1 == u64::from(count > 0), "non-empty mask disagrees with list {order}");
            listed_units += count;
            free_blocks += count;
        }
        let tagged: usize = self.free_bits.iter().map(|word| word.count_ones() as usize).sum();
        ensure!(tagged == listed_units, "{tagged} units are tagged free but {listed_units} blocks are listed");
        let metadata = self.pool_bytes - self.managed_bytes;
        let granted = self.managed_bytes - free_bytes;
        self.ledger.identity(granted, free_bytes, free_blocks, metadata, self.pool_bytes)
    }
}

#[cfg(test)]
mod tests;
