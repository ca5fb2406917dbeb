//! What an adapter counts itself: the live blocks as the harness sees them.

use heaplab_core::{AllocError, Arena, HeapStats};
use std::ptr::NonNull;

/// Live blocks, requested and granted bytes, and the footprint measured from
/// the addresses returned.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub live: usize,
    pub requested: usize,
    pub granted: usize,
    /// Highest arena offset a block has ever ended at.
    pub footprint: usize,
}

impl Tally {
    /// A block of `size` bytes costing `granted` was handed out at `ptr`;
    /// `extent` bytes from `ptr` count towards the footprint.
    #[inline]
    pub fn add(&mut self, arena: &Arena, ptr: NonNull<u8>, size: usize, granted: usize, extent: usize) {
        self.live += 1;
        self.requested += size;
        self.granted += granted;
        let end = ptr.as_ptr().addr().wrapping_sub(arena.base().as_ptr().addr()).wrapping_add(extent);
        if end <= arena.len() {
            self.footprint = self.footprint.max(end);
        }
    }

    /// The same for a block outside any arena (no footprint).
    #[inline]
    pub fn add_unbounded(&mut self, size: usize, granted: usize) {
        self.live += 1;
        self.requested += size;
        self.granted += granted;
    }

    #[inline]
    pub fn remove(&mut self, size: usize, granted: usize) {
        self.live -= 1;
        self.requested -= size;
        self.granted -= granted;
    }

    /// Account for a resize that returned `moved` (null: refused, the old
    /// block untouched) for a block of `old` bytes now `new_size`, costing
    /// what it asks; `arena` is where the block lives, if anywhere.
    #[inline]
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

    /// The counters as `HeapStats`; the caller fills in what its crate knows.
    pub fn stats(&self, arena: &Arena) -> HeapStats {
        HeapStats {
            arena_bytes: arena.len(),
            live_blocks: self.live,
            requested_bytes: self.requested,
            granted_bytes: self.granted,
            footprint_bytes: self.footprint,
            ..HeapStats::default()
        }
    }
}
