//! The ledger: the counters behind [`HeapStats`], kept in one place for every
//! allocator, and compiled away where nobody reads them.
//!
//! A real allocator of any of heaplab's designs keeps almost none of these
//! counters (rlsf keeps none, dlmalloc a footprint): they exist for the
//! metrics pass and the conformance suite. Paying for them in a timed replay
//! would measure heaplab's bookkeeping instead of the strategy, so the ledger
//! takes a compile-time switch. [`Ledger<true>`] ([`Counted`]) keeps every
//! counter; [`Ledger<false>`] ([`Uncounted`]) keeps none, and each of its
//! methods is an empty inline function that the optimiser removes, so an
//! allocator generic over the switch has a timed build with no bookkeeping
//! instruction left in it. [`AllocatorConfig::build_timed`](crate::AllocatorConfig::build_timed)
//! builds that variant; its [`Allocator::reports`](crate::Allocator::reports)
//! says `counts: false`, and the harness never asks it for figures.
//!
//! # The accounting identity
//!
//! For an allocator that accounts for every byte of its arena,
//! `granted + metadata + free == arena` ([`Ledger::identity`]), where granted
//! bytes are everything live blocks cost (headers, padding, rounding) and
//! free bytes are what could be handed out again.

use crate::{Counters, HeapStats};

/// The counters, kept (`ON = true`) or not (`ON = false`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ledger<const ON: bool> {
    /// Blocks allocated and not yet freed.
    live_blocks: usize,
    /// Sum of `layout.size()` over live blocks (R).
    requested_bytes: usize,
    /// Sum of `granted()` over live blocks (G).
    granted_bytes: usize,
    /// Bytes in free blocks (F).
    free_bytes: usize,
    /// Number of free blocks.
    free_blocks: usize,
    /// High-water mark of occupied arena offsets (H); never decreases.
    footprint_bytes: usize,
    /// Free blocks examined by placement searches.
    blocks_inspected: u64,
    /// Blocks split to serve a request.
    splits: u64,
    /// Merges with a free neighbour or buddy.
    coalesces: u64,
}

/// The ledger of a measured build: every counter kept.
pub type Counted = Ledger<true>;
/// The ledger of a timed build: nothing kept.
pub type Uncounted = Ledger<false>;

/// Which optional [`Counters`] an allocator keeps in its ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kept {
    /// Its searches count the blocks they inspect.
    pub blocks_inspected: bool,
    /// It splits blocks.
    pub splits: bool,
    /// It coalesces blocks.
    pub coalesces: bool,
}

impl Kept {
    /// Splits and coalesces, no search counter: allocators whose search
    /// looks at one block (TLSF, a buddy system).
    pub const SPLITS_AND_COALESCES: Kept = Kept { blocks_inspected: false, splits: true, coalesces: true };
    /// All three.
    pub const ALL: Kept = Kept { blocks_inspected: true, splits: true, coalesces: true };
}

impl<const ON: bool> Ledger<ON> {
    /// Does this ledger keep its counters?
    pub const COUNTING: bool = ON;

    /// A ledger for a heap with `free_bytes` in `free_blocks` blocks and a
    /// footprint of `footprint_bytes` (metadata at the start of the arena).
    pub fn new(free_bytes: usize, free_blocks: usize, footprint_bytes: usize) -> Ledger<ON> {
        let mut ledger = Ledger::default();
        if ON {
            ledger.free_bytes = free_bytes;
            ledger.free_blocks = free_blocks;
            ledger.footprint_bytes = footprint_bytes;
        }
        ledger
    }

    /// A block of `requested` bytes costing `granted` was handed out.
    #[inline(always)]
    pub fn allocated(&mut self, requested: usize, granted: usize) {
        if ON {
            self.live_blocks += 1;
            self.requested_bytes += requested;
            self.granted_bytes += granted;
        }
    }

    /// A block of `requested` bytes costing `granted` was freed.
    #[inline(always)]
    pub fn freed(&mut self, requested: usize, granted: usize) {
        if ON {
            self.live_blocks -= 1;
            self.requested_bytes -= requested;
            self.granted_bytes -= granted;
        }
    }

    /// A live block now holds `new` requested bytes instead of `old`.
    #[inline(always)]
    pub fn resized(&mut self, old: usize, new: usize) {
        if ON {
            self.requested_bytes = self.requested_bytes - old + new;
        }
    }

    /// Live blocks cost `bytes` more (a block grown in place).
    #[inline(always)]
    pub fn granted_more(&mut self, bytes: usize) {
        if ON {
            self.granted_bytes += bytes;
        }
    }

    /// Live blocks cost `bytes` less (a block shrunk in place).
    #[inline(always)]
    pub fn granted_less(&mut self, bytes: usize) {
        if ON {
            self.granted_bytes -= bytes;
        }
    }

    /// Something now occupies the arena up to offset `end`.
    #[inline(always)]
    pub fn reached(&mut self, end: usize) {
        if ON {
            self.footprint_bytes = self.footprint_bytes.max(end);
        }
    }

    /// A free block of `bytes` appeared.
    #[inline(always)]
    pub fn free_added(&mut self, bytes: usize) {
        if ON {
            self.free_bytes += bytes;
            self.free_blocks += 1;
        }
    }

    /// A free block of `bytes` went (allocated, or merged into another).
    #[inline(always)]
    pub fn free_removed(&mut self, bytes: usize) {
        if ON {
            self.free_bytes -= bytes;
            self.free_blocks -= 1;
        }
    }

    /// A search inspected `blocks` free blocks.
    #[inline(always)]
    pub fn inspected(&mut self, blocks: u64) {
        if ON {
            self.blocks_inspected += blocks;
        }
    }

    /// A block was split in two.
    #[inline(always)]
    pub fn split(&mut self) {
        if ON {
            self.splits += 1;
        }
    }

    /// A freed block merged with a free neighbour or buddy.
    #[inline(always)]
    pub fn coalesced(&mut self) {
        if ON {
            self.coalesces += 1;
        }
    }

    /// Live blocks (0 when not counting).
    pub fn live_blocks(&self) -> usize {
        self.live_blocks
    }

    /// Requested bytes (0 when not counting).
    pub fn requested_bytes(&self) -> usize {
        self.requested_bytes
    }

    /// The footprint (0 when not counting).
    pub fn footprint_bytes(&self) -> usize {
        self.footprint_bytes
    }

    /// Granted bytes (0 when not counting).
    pub fn granted_bytes(&self) -> usize {
        self.granted_bytes
    }

    /// Free bytes (0 when not counting).
    pub fn free_bytes(&self) -> usize {
        self.free_bytes
    }

    /// Free blocks (0 when not counting).
    pub fn free_blocks(&self) -> usize {
        self.free_blocks
    }

    /// The counters as [`HeapStats`], with what only the allocator knows:
    /// the arena size, metadata in and outside the arena, and which optional
    /// counters it keeps. When not counting, only those three are real.
    pub fn stats(
        &self,
        arena_bytes: usize,
        metadata_bytes: usize,
        side_metadata_bytes: usize,
        kept: Kept,
    ) -> HeapStats {
        let counter = |kept: bool, value: u64| (ON && kept).then_some(value);
        HeapStats {
            arena_bytes,
            live_blocks: self.live_blocks,
            requested_bytes: self.requested_bytes,
            granted_bytes: self.granted_bytes,
            metadata_bytes,
            free_bytes: self.free_bytes,
            free_blocks: self.free_blocks,
            side_metadata_bytes,
            footprint_bytes: self.footprint_bytes,
            cached_bytes: 0,
            cache_bound_bytes: 0,
            counters: Counters {
                blocks_inspected: counter(kept.blocks_inspected, self.blocks_inspected),
                splits: counter(kept.splits, self.splits),
                coalesces: counter(kept.coalesces, self.coalesces),
            },
        }
    }

    /// Hold the counters to what a walk of the heap found: granted bytes in
    /// allocated blocks, free bytes and blocks, and the accounting identity
    /// `granted + metadata + free == arena`. Nothing to check when not
    /// counting. For `check()`.
    pub fn identity(
        &self,
        walked_granted: usize,
        walked_free: usize,
        walked_free_blocks: usize,
        metadata_bytes: usize,
        arena_bytes: usize,
    ) -> Result<(), crate::InvariantViolation> {
        if !ON {
            return Ok(());
        }
        crate::ensure!(
            self.granted_bytes == walked_granted,
            "granted bytes counter {} but {walked_granted} in allocated blocks",
            self.granted_bytes
        );
        crate::ensure!(
            self.free_bytes == walked_free,
            "free bytes counter {} but {walked_free} in free blocks",
            self.free_bytes
        );
        crate::ensure!(
            self.free_blocks == walked_free_blocks,
            "free block counter {} but {walked_free_blocks} free blocks",
            self.free_blocks
        );
        crate::ensure!(
            walked_granted + walked_free + metadata_bytes == arena_bytes,
            "granted {walked_granted} + free {walked_free} + metadata {metadata_bytes} != arena {arena_bytes}"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_ledger_keeps_the_books() {
        let mut ledger = Counted::new(1000, 1, 8);
        ledger.free_removed(1000);
        ledger.allocated(90, 96);
        ledger.free_added(904);
        ledger.reached(8 + 96);
        ledger.split();
        let stats = ledger.stats(1008, 8, 0, Kept::SPLITS_AND_COALESCES);
        assert_eq!(
            (stats.live_blocks, stats.requested_bytes, stats.granted_bytes, stats.free_bytes, stats.footprint_bytes),
            (1, 90, 96, 904, 104)
        );
        assert_eq!(stats.counters, Counters { blocks_inspected: None, splits: Some(1), coalesces: Some(0) });
        assert!(ledger.identity(96, 904, 1, 8, 1008).is_ok());
        assert!(ledger.identity(96, 904, 1, 8, 1016).is_err());
        assert!(ledger.identity(80, 904, 1, 8, 992).is_err());
    }

    #[test]
    fn an_uncounted_ledger_keeps_nothing_and_checks_nothing() {
        let mut ledger = Uncounted::new(1000, 1, 8);
        ledger.allocated(90, 96);
        ledger.reached(104);
        ledger.coalesced();
        assert_eq!(ledger, Uncounted::default());
        let stats = ledger.stats(1008, 8, 16, Kept::ALL);
        assert_eq!((stats.arena_bytes, stats.metadata_bytes, stats.side_metadata_bytes), (1008, 8, 16));
        assert_eq!(stats.counters, Counters::default());
        assert!(ledger.identity(1, 2, 3, 4, 5).is_ok());
    }
}
