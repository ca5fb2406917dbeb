//! Heap statistics: the cheap counters every allocator keeps current on every
//! operation, and the free-space shape that needs a walk.

/// Counters an allocator keeps up to date on every operation, in O(1).
///
/// Byte figures follow the notation of the design notes: `requested_bytes`
/// is R, `granted_bytes` is G, `metadata_bytes` is M, `footprint_bytes` is H,
/// `free_bytes` is F. The accounting identity
/// `granted_bytes + metadata_bytes + free_bytes <= arena_bytes` always holds;
/// allocators that account for every byte (most do) make it an equality, and
/// any difference is space neither granted, free nor metadata (for example
/// bytes a bump allocator cannot reuse until it resets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Size of the arena the allocator manages.
    pub arena_bytes: usize,
    /// Blocks allocated and not yet freed.
    pub live_blocks: usize,
    /// Sum of `layout.size()` over live blocks (R).
    pub requested_bytes: usize,
    /// Sum of `granted()` over live blocks (G): payload plus the headers,
    /// footers, alignment padding and size-class rounding each one carries.
    pub granted_bytes: usize,
    /// Allocator metadata in the arena outside granted blocks (M): sentinels,
    /// slab descriptors, bitmaps kept in the arena.
    pub metadata_bytes: usize,
    /// Bytes in free blocks (F), counted whole, tags included: what a
    /// coalescing allocator could hand out again.
    pub free_bytes: usize,
    /// Number of free blocks.
    pub free_blocks: usize,
    /// Metadata the allocator keeps outside the arena (free bitmaps, slab
    /// descriptors: what a kernel keeps in `struct page`). Not part of the
    /// accounting identity; reported so that comparisons can include it.
    pub side_metadata_bytes: usize,
    /// High-water mark of the arena offsets ever occupied by a granted block
    /// or by metadata that grows with use (H): a brk-style footprint, monotone.
    pub footprint_bytes: usize,
    /// Bytes in blocks a thread-caching layer holds for reuse (size-class
    /// bytes): neither live nor free in the allocator beneath, so outside
    /// `granted + metadata + free`. Zero without such a layer.
    pub cached_bytes: usize,
    /// The most `cached_bytes` can be, from the layer's parameters; zero
    /// without a caching layer.
    pub cache_bound_bytes: usize,
    /// Counters that explain an allocator's speed, where it keeps them.
    pub counters: Counters,
}

impl HeapStats {
    /// The accounting identity held as an equality, for allocators that
    /// account for every byte of their arena: `granted + metadata + free ==
    /// arena`. For `check()`.
    pub fn balanced(&self) -> Result<(), crate::InvariantViolation> {
        crate::ensure!(
            self.granted_bytes + self.metadata_bytes + self.free_bytes == self.arena_bytes,
            "granted {} + metadata {} + free {} != arena {}",
            self.granted_bytes,
            self.metadata_bytes,
            self.free_bytes,
            self.arena_bytes
        );
        Ok(())
    }
}

/// Optional counters that explain speed. `None` means the allocator does not
/// keep that counter, which is different from zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Free blocks examined by placement searches.
    pub blocks_inspected: Option<u64>,
    /// Blocks split in two to serve a request.
    pub splits: Option<u64>,
    /// Merges of a freed block with a free neighbour (or buddy).
    pub coalesces: Option<u64>,
}

/// Internal fragmentation of one block, split in two (Johnstone & Wilson 1998).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waste {
    /// Bytes from rounding the request up: to a size class, a power of two,
    /// a minimum block, or an unsplittable remainder.
    pub rounding: usize,
    /// Bytes of headers, footers and alignment padding.
    pub overhead: usize,
}

/// What an allocator can report. heaplab's own allocators report
/// everything; adapters to third-party allocators report what those expose,
/// and the harness leaves the rest as "not available" rather than invent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reports {
    /// Blocks lie inside the arena (false for allocators with their own
    /// memory, like the system allocator).
    pub in_arena: bool,
    /// `granted()` and `waste()` are the real cost of a block, and
    /// `stats().granted_bytes` their sum (the sum only when `counts`).
    pub granted: bool,
    /// `stats().free_bytes` is known (so a refused request can be told
    /// apart as fragmentation or lack of memory).
    pub free_bytes: bool,
    /// The free space can be walked (`for_each_free`, `free_shape`, and
    /// free blocks in `stats()`, those only when `counts`): the largest
    /// free block, external fragmentation.
    pub free_space: bool,
    /// `stats().footprint_bytes` and `metadata_bytes` are meaningful.
    pub footprint: bool,
    /// `stats()` counts live blocks and requested bytes (and, with the
    /// fields above, granted bytes, free bytes and the footprint). False
    /// for a timed build, which keeps no ledger (see [`crate::ledger`]).
    pub counts: bool,
}

impl Reports {
    /// Everything.
    pub const ALL: Reports =
        Reports { in_arena: true, granted: true, free_bytes: true, free_space: true, footprint: true, counts: true };

    /// What a timed build of an allocator that reports `self` can still
    /// tell: `granted()` of a block and the free-space walk
    /// (`for_each_free`, `free_shape`), but no counter in `stats()`:
    /// neither granted nor free bytes and blocks, nor the footprint
    /// (`counts: false` says so for all of them; the metadata sizes stay).
    pub const fn uncounted(self) -> Reports {
        Reports { free_bytes: false, footprint: false, counts: false, ..self }
    }
}

/// One figure of an allocator-specific table: `table` names it
/// (`buddyinfo`, `slabinfo`), `row` and `column` place it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// Which table.
    pub table: &'static str,
    /// Row label (`order 3`, `kmalloc-96`).
    pub row: String,
    /// Column name, with its unit (`nr_free`, `efficiency_pct`).
    pub column: &'static str,
    /// The value.
    pub value: f64,
}

/// The binary buddy system under an allocator, seen from outside: what a
/// picture of its tree of splits needs (`heaplab step`).
///
/// The buddy hands blocks to its caller without remembering them (a free
/// names its order, as `free_pages(addr, order)` does), so the blocks a
/// caller holds are not listed here: a block the harness handed out, at
/// its offset with `granted()` bytes, is one. Only blocks a layer above
/// keeps for itself (a slab cache's slabs) are listed, as `held`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuddyLevel {
    /// Bytes of an order-0 block.
    pub min_block: usize,
    /// The largest order.
    pub max_order: u32,
    /// Bytes tiled with blocks, from offset 0.
    pub managed_bytes: usize,
    /// Free blocks as `(offset, order)`, each order's list in list order,
    /// lower orders first.
    pub free: Vec<(usize, u32)>,
    /// Blocks a layer above holds, `(offset, order, holder)`: an index into
    /// `holders`.
    pub held: Vec<(usize, u32, u16)>,
    /// What holds them (`kmalloc-64`).
    pub holders: Vec<String>,
    /// The bytes of the objects each holder carves its blocks into, from
    /// the block's start (a slab cache's object size), per holder.
    pub holder_object_bytes: Vec<usize>,
}

/// The free lists as an allocator keeps them, for pictures of their order
/// (`heaplab step`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FreeListView {
    /// Each list's name (`the free list, LIFO order`, `class 3: from 64 B`,
    /// `fl 6, sl 2: from 1.25 KiB`).
    pub names: Vec<String>,
    /// Every free block as `(list, offset)`, each list's blocks in list
    /// order, at the offsets `for_each_free` gives them.
    pub blocks: Vec<(usize, usize)>,
    /// The free block a next-fit search starts from; `None` without a rover
    /// or with it at the head.
    pub rover: Option<usize>,
    /// For two-level segregated fit: lists per first level (list `k` is
    /// first level `k / second_level`, second level `k % second_level`),
    /// whose non-empty lists are the bits of its two bitmaps.
    pub second_level: Option<usize>,
}

/// The shape of the free space, from a walk of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreeShape {
    /// Total bytes in free blocks (F).
    pub free_bytes: usize,
    /// Number of free blocks.
    pub free_blocks: usize,
    /// Size of the largest free block (L).
    pub largest_free_block: usize,
}

impl FreeShape {
    /// Add one free extent of `len` bytes.
    #[inline]
    pub fn add(&mut self, len: usize) {
        self.free_bytes += len;
        self.free_blocks += 1;
        self.largest_free_block = self.largest_free_block.max(len);
    }

    /// External fragmentation in the largest-block form, `1 − L / F`; zero
    /// when there is no free space (nothing to fragment).
    pub fn external_fragmentation(&self) -> f64 {
        if self.free_bytes == 0 { 0.0 } else { 1.0 - self.largest_free_block as f64 / self.free_bytes as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_accumulates_and_measures_external_fragmentation() {
        let mut shape = FreeShape::default();
        assert_eq!(shape.external_fragmentation(), 0.0);
        for len in [64, 192, 0, 256] {
            shape.add(len);
        }
        assert_eq!(shape, FreeShape { free_bytes: 512, free_blocks: 4, largest_free_block: 256 });
        assert_eq!(shape.external_fragmentation(), 0.5);
    }
}
