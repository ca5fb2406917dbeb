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
//!   minimum block is 16 bytes. Allocated blocks carry no header: `granted` is
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
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, Counters, Detail, FreeShape, HeapStats,
    InvariantViolation, Spec, SpecError, Waste, ensure,
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
        Buddy::new(arena, *self).map_err(|message| self.build_error(message))
    }
}

/// The binary buddy allocator. See the crate documentation.
#[derive(Debug)]
pub struct Buddy {
    arena: Arena,
    config: Config,
    /// log2 of the minimum block.
    min_shift: u32,
    /// Largest order a block can have.
    max_order: u32,
    /// Bytes tiled with blocks: the arena rounded down to a minimum block.
    managed_bytes: usize,
    /// `free_area[order]`: first free block (unit index) or `NIL`.
    heads: Vec<u32>,
    /// `free_area[order].nr_free`.
    nr_free: Vec<usize>,
    /// Bit `k` set iff list `k` is non-empty.
    nonempty: u64,
    /// One bit per unit, set iff the unit starts a free block.
    free_bits: Vec<u64>,
    live_blocks: usize,
    requested_bytes: usize,
    granted_bytes: usize,
    free_bytes: usize,
    free_blocks: usize,
    footprint_bytes: usize,
    splits: u64,
    coalesces: u64,
}

impl Buddy {
    /// Tile `arena` with free blocks.
    pub fn new(arena: Arena, config: Config) -> Result<Buddy, String> {
        let min = config.min_block;
        if !min.is_power_of_two() || min < SMALLEST_MIN_BLOCK {
            return Err(format!("the minimum block must be a power of two of at least {SMALLEST_MIN_BLOCK} bytes"));
        }
        if arena.len() < min {
            return Err(format!("the arena ({} bytes) cannot hold one {min}-byte block", arena.len()));
        }
        let units = arena.len() / min;
        if units > NIL as usize {
            return Err(format!("the arena holds more than {} minimum blocks; raise `min`", NIL));
        }
        let min_shift = min.trailing_zeros();
        let fitting = (usize::BITS - 1 - units.leading_zeros()).min(ORDER_LIMIT);
        let max_order = config.max_order.unwrap_or(fitting).min(ORDER_LIMIT);
        let orders = max_order as usize + 1;
        let mut buddy = Buddy {
            managed_bytes: units * min,
            arena,
            config,
            min_shift,
            max_order,
            heads: vec![NIL; orders],
            nr_free: vec![0; orders],
            nonempty: 0,
            free_bits: vec![0; units.div_ceil(64)],
            live_blocks: 0,
            requested_bytes: 0,
            granted_bytes: 0,
            free_bytes: 0,
            free_blocks: 0,
            footprint_bytes: 0,
            splits: 0,
            coalesces: 0,
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
            buddy.push(offset, order);
        }
        Ok(buddy)
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Bytes in an order-0 block.
    pub fn min_block(&self) -> usize {
        self.config.min_block
    }

    /// The largest order.
    pub fn max_order(&self) -> u32 {
        self.max_order
    }

    /// `free_area[order].nr_free` for orders `0..=max_order`.
    pub fn nr_free(&self) -> &[usize] {
        &self.nr_free
    }

    /// The arena with write access, for a layer built on top (the slab
    /// allocator writes its object free lists into the blocks it owns).
    pub fn arena_mut(&mut self) -> &mut Arena {
        &mut self.arena
    }

    /// Does a free block start at `offset`? (For layers that check their own
    /// blocks are not on the free lists.)
    pub fn is_free_at(&self, offset: usize) -> bool {
        offset < self.managed_bytes && offset.is_multiple_of(self.config.min_block) && self.free_bit(offset)
    }

    /// One `/proc/buddyinfo` line for this zone, e.g.
    /// `Node 0, zone   Normal      1      0      2 `.
    pub fn buddyinfo(&self, zone: &str) -> String {
        let mut line = format!("Node 0, zone {zone:>8} ");
        for count in &self.nr_free {
            let _ = write!(line, "{count:6} ");
        }
        line
    }

    /// The order a request needs, or `None` above the largest block.
    #[inline]
    pub fn order_for(&self, layout: Layout) -> Option<u32> {
        let bytes = layout.size().max(layout.align()).max(self.config.min_block);
        let shift = bytes.checked_next_power_of_two()?.trailing_zeros();
        let order = shift - self.min_shift;
        (order <= self.max_order).then_some(order)
    }

    /// Allocate a block of exactly `order`, as `alloc_pages(order)` does.
    pub fn alloc_order(&mut self, order: u32) -> Result<usize, AllocError> {
        if order > self.max_order {
            return Err(AllocError::Unsupported("order above the largest block"));
        }
        let candidates = self.nonempty >> order << order;
        if candidates == 0 {
            return Err(AllocError::OutOfMemory);
        }
        let mut current = candidates.trailing_zeros();
        let mut block = self.unit_offset(self.heads[current as usize]);
        self.unlink(block, current);
        while current > order {
            current -= 1;
            let half = self.config.min_block << current;
            match self.config.split {
                Split::Lower => self.push(block + half, current),
                Split::Upper => {
                    self.push(block, current);
                    block += half;
                }
            }
            self.splits += 1;
        }
        let size = self.config.min_block << order;
        self.granted_bytes += size;
        self.footprint_bytes = self.footprint_bytes.max(block + size);
        Ok(block)
    }

    /// Free a block of `order` at `block`, merging with free buddies, as
    /// `free_pages(addr, order)` does.
    ///
    /// # Panics
    /// If `block` is not aligned to its order (a broken caller).
    pub fn free_order(&mut self, mut block: usize, mut order: u32) {
        let size = self.config.min_block << order;
        assert!(block.is_multiple_of(size), "block {block} is not aligned to its order {order}");
        self.granted_bytes -= size;
        while order < self.max_order {
            let buddy = block ^ (self.config.min_block << order);
            if buddy + (self.config.min_block << order) > self.managed_bytes || !self.is_free_block(buddy, order) {
                break;
            }
            self.unlink(buddy, order);
            block = block.min(buddy);
            order += 1;
            self.coalesces += 1;
        }
        self.push(block, order);
    }

    // ---- free lists (links in the free blocks, as unit indices) ----------

    #[inline]
    fn unit(&self, offset: usize) -> u32 {
        (offset >> self.min_shift) as u32
    }

    #[inline]
    fn unit_offset(&self, unit: u32) -> usize {
        (unit as usize) << self.min_shift
    }

    #[inline]
    fn free_bit(&self, offset: usize) -> bool {
        let unit = offset >> self.min_shift;
        self.free_bits[unit / 64] & (1 << (unit % 64)) != 0
    }

    #[inline]
    fn set_free_bit(&mut self, offset: usize, free: bool) {
        let unit = offset >> self.min_shift;
        let bit = 1 << (unit % 64);
        if free {
            self.free_bits[unit / 64] |= bit;
        } else {
            self.free_bits[unit / 64] &= !bit;
        }
    }

    /// The order stored in a free block (Knuth's KVAL).
    #[inline]
    fn stored_order(&self, block: usize) -> u32 {
        self.arena.load_u32(block + 8)
    }

    #[inline]
    fn is_free_block(&self, block: usize, order: u32) -> bool {
        self.free_bit(block) && self.stored_order(block) == order
    }

    #[inline]
    fn next(&self, block: usize) -> u32 {
        self.arena.load_u32(block)
    }

    #[inline]
    fn prev(&self, block: usize) -> u32 {
        self.arena.load_u32(block + 4)
    }

    /// Put a block at the front of list `order` and mark it free.
    fn push(&mut self, block: usize, order: u32) {
        let head = self.heads[order as usize];
        let unit = self.unit(block);
        self.arena.store_u32(block, head);
        self.arena.store_u32(block + 4, NIL);
        self.arena.store_u32(block + 8, order);
        if head != NIL {
            let head_offset = self.unit_offset(head);
            self.arena.store_u32(head_offset + 4, unit);
        }
        self.heads[order as usize] = unit;
        self.nr_free[order as usize] += 1;
        self.nonempty |= 1 << order;
        self.set_free_bit(block, true);
        self.free_bytes += self.config.min_block << order;
        self.free_blocks += 1;
    }

    /// Take a block off list `order` and mark it not free.
    fn unlink(&mut self, block: usize, order: u32) {
        let (next, prev) = (self.next(block), self.prev(block));
        if prev == NIL {
            self.heads[order as usize] = next;
        } else {
            let prev_offset = self.unit_offset(prev);
            self.arena.store_u32(prev_offset, next);
        }
        if next != NIL {
            let next_offset = self.unit_offset(next);
            self.arena.store_u32(next_offset + 4, prev);
        }
        self.nr_free[order as usize] -= 1;
        if self.nr_free[order as usize] == 0 {
            self.nonempty &= !(1 << order);
        }
        self.set_free_bit(block, false);
        self.free_bytes -= self.config.min_block << order;
        self.free_blocks -= 1;
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

impl Allocator for Buddy {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() > self.arena.align() {
            return Err(AllocError::Unsupported("alignment above the arena's"));
        }
        let order = self.order_for(layout).ok_or(AllocError::Unsupported("size above the largest block"))?;
        let block = self.alloc_order(order)?;
        self.live_blocks += 1;
        self.requested_bytes += layout.size();
        Ok(self.arena.ptr_at(block))
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let order = self.order_for(layout).expect("a live block has a valid order");
        let block = self.arena.offset_of_owned(ptr);
        self.live_blocks -= 1;
        self.requested_bytes -= layout.size();
        self.free_order(block, order);
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
            let block = self.arena.offset_of_owned(ptr);
            for order in new_order..old_order {
                let half = self.config.min_block << order;
                self.granted_bytes -= half;
                self.push(block + half, order);
                self.splits += 1;
            }
            self.requested_bytes = self.requested_bytes - old.size() + new_size;
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { heaplab_core::realloc_by_moving(self, ptr, old, new_size) }
    }

    fn granted(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        self.order_for(layout).map_or(0, |order| self.config.min_block << order)
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
        buddy_details(&self.nr_free, self.config.min_block)
    }

    fn stats(&self) -> HeapStats {
        HeapStats {
            arena_bytes: self.arena.len(),
            live_blocks: self.live_blocks,
            requested_bytes: self.requested_bytes,
            granted_bytes: self.granted_bytes,
            metadata_bytes: self.arena.len() - self.managed_bytes,
            side_metadata_bytes: self.free_bits.len() * 8 + self.heads.len() * 4 + self.nr_free.len() * 8,
            free_bytes: self.free_bytes,
            free_blocks: self.free_blocks,
            footprint_bytes: self.footprint_bytes,
            counters: Counters { blocks_inspected: None, splits: Some(self.splits), coalesces: Some(self.coalesces) },
        }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        for (order, &head) in self.heads.iter().enumerate() {
            let mut unit = head;
            while unit != NIL {
                let block = self.unit_offset(unit);
                visit(block, self.config.min_block << order);
                unit = self.next(block);
            }
        }
    }

    fn free_shape(&self) -> FreeShape {
        let largest =
            if self.nonempty == 0 { 0 } else { self.config.min_block << (63 - self.nonempty.leading_zeros()) };
        FreeShape { free_bytes: self.free_bytes, free_blocks: self.free_blocks, largest_free_block: largest }
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        let min = self.config.min_block;
        let mut listed_units = 0usize;
        let (mut free_bytes, mut free_blocks) = (0, 0);
        for (order, &head) in self.heads.iter().enumerate() {
            let size = min << order;
            let mut count = 0;
            let (mut prev, mut unit) = (NIL, head);
            while unit != NIL {
                let block = self.unit_offset(unit);
                ensure!(count < self.free_bits.len() * 64, "free list {order} does not end (a cycle?)");
                ensure!(block + size <= self.managed_bytes, @block, "free block of order {order} runs past the managed {} bytes", self.managed_bytes);
                ensure!(block.is_multiple_of(size), @block, "free block of order {order} is not aligned to {size}");
                ensure!(self.free_bit(block), @block, "listed block of order {order} is not tagged free");
                ensure!(self.stored_order(block) == order as u32, @block, "listed on order {order}, stores order {}", self.stored_order(block));
                ensure!(self.prev(block) == prev, @block, "back link {} should be {prev}", self.prev(block));
                if (order as u32) < self.max_order {
                    let buddy = block ^ size;
                    ensure!(
                        buddy + size > self.managed_bytes || !self.is_free_block(buddy, order as u32),
                        @block,
                        "free buddies of order {order} at {block} and {buddy} were not merged"
                    );
                }
                count += 1;
                free_bytes += size;
                prev = unit;
                unit = self.next(block);
            }
            ensure!(
                count == self.nr_free[order],
                "nr_free[{order}] is {} but the list holds {count}",
                self.nr_free[order]
            );
            ensure!((self.nonempty >> order) & 1 == u64::from(count > 0), "non-empty mask disagrees with list {order}");
            listed_units += count;
            free_blocks += count;
        }
        let tagged: usize = self.free_bits.iter().map(|word| word.count_ones() as usize).sum();
        ensure!(tagged == listed_units, "{tagged} units are tagged free but {listed_units} blocks are listed");
        ensure!(self.nonempty >> self.heads.len() == 0, "non-empty mask has bits above the largest order");
        ensure!(self.free_bytes == free_bytes, "free bytes counter {} but {free_bytes} listed", self.free_bytes);
        ensure!(self.free_blocks == free_blocks, "free block counter {} but {free_blocks} listed", self.free_blocks);
        ensure!(
            self.granted_bytes + self.free_bytes == self.managed_bytes,
            "granted {} + free {} != managed {}",
            self.granted_bytes,
            self.free_bytes,
            self.managed_bytes
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
