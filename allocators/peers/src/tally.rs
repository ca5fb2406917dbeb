//! What an adapter counts itself: the live blocks as the harness sees them,
//! in heaplab's one [`Ledger`] type, so that a timed build (`C = false`)
//! counts nothing, as heaplab's own timed builds count nothing.

use heaplab_core::{AllocError, Arena, HeapStats, Kept, Ledger};
use std::ptr::NonNull;

/// Live blocks, requested and granted bytes, and the footprint measured from
/// the addresses returned; all of it only when `C`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally<const C: bool> {
    ledger: Ledger<C>,
}

impl<const C: bool> Tally<C> {
    /// A block of `size` bytes costing `granted` was handed out at `ptr`;
    /// `extent` bytes from `ptr` count towards the footprint.
    #[inline(always)]
    pub fn add(&mut self, arena: &Arena, ptr: NonNull<u8>, size: usize, granted: usize, extent: usize) {
        if C {
            self.ledger.allocated(size, granted);
            let end = arena.offset_of_unchecked(ptr).wrapping_add(extent);
            if end <= arena.len() {
                self.ledger.reached(end);
            }
        }
    }

    /// The same for a block outside any arena (no footprint).
    #[inline(always)]
    pub fn add_unbounded(&mut self, size: usize, granted: usize) {
        self.ledger.allocated(size, granted);
    }

    #[inline(always)]
    pub fn remove(&mut self, size: usize, granted: usize) {
        self.ledger.freed(size, granted);
    }

    /// Account for a resize that returned `moved` (null: refused, the old
    /// block untouched) for a block of `old` bytes now `new_size`, costing
    /// what it asks; `arena` is where the block lives, if anywhere.
    #[inline(always)]
    pub fn resized(
        &mut self,
        arena: Option<&Arena>,
        moved: *mut u8,
        old: usize,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let moved = NonNull::new(moved).ok_or(AllocError::OutOfMemory)?;
        self.remove(old, old);
        match arena {
            Some(arena) => self.add(arena, moved, new_size, new_size, new_size),
            None => self.add_unbounded(new_size, new_size),
        }
        Ok(moved)
    }

    /// Live blocks (0 when not counting).
    pub fn live(&self) -> usize {
        self.ledger.live_blocks()
    }

    /// Granted bytes (0 when not counting).
    pub fn granted(&self) -> usize {
        self.ledger.granted_bytes()
    }

    /// Requested bytes (0 when not counting).
    pub fn requested(&self) -> usize {
        self.ledger.requested_bytes()
    }

    /// The footprint (0 when not counting).
    pub fn footprint(&self) -> usize {
        self.ledger.footprint_bytes()
    }

    /// The counters as `HeapStats`; the caller fills in what its crate knows.
    pub fn stats(&self, arena: &Arena) -> HeapStats {
        self.ledger.stats(arena.len(), 0, 0, Kept::default())
    }
}
