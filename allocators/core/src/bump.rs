//! A bump allocator: the simplest thing that satisfies the contract.
//!
//! It exists to measure the harness itself (the cost of replay with an
//! allocator that does almost nothing) and as the base of the deliberately
//! broken allocators that prove the conformance suite catches what it claims.
//!
//! **Policy.** A request takes the next free bytes above the bump pointer,
//! rounded up to a 16-byte granule and aligned as asked. `free` only counts:
//! the space comes back when the last live block is freed, and the pointer
//! returns to the start. Both are O(1). Metadata: none in the arena.
//!
//! **Drawbacks.** Freed space is dead until the heap empties, so any workload
//! with long-lived blocks runs out of memory; bytes skipped for alignment and
//! freed blocks are neither granted nor free (the accounting identity is an
//! inequality here).

use std::alloc::Layout;
use std::ptr::NonNull;

use crate::{
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, HeapStats, InvariantViolation, Kept, Ledger, Reports,
    Spec, SpecError, Waste, ensure,
};

/// Granule: every block is a multiple of this, and at least one granule.
const GRANULE: usize = 16;

/// A bump allocator on one arena; `C`: whether it keeps the ledger.
#[derive(Debug)]
pub struct Bump<const C: bool = true> {
    arena: Arena,
    /// Next free offset; `top <= arena.len()`, and `top == 0` when nothing is live.
    top: usize,
    /// Blocks live: the policy needs it, to reset when the heap empties.
    live: usize,
    /// Requested and granted bytes (granule-rounded sizes, `<= top`), footprint.
    ledger: Ledger<C>,
}

impl<const C: bool> Bump<C> {
    /// A bump allocator owning `arena`.
    pub fn new(arena: Arena) -> Bump<C> {
        let ledger = Ledger::new(arena.len(), 1, 0);
        Bump { arena, top: 0, live: 0, ledger }
    }

    #[inline]
    fn rounded(size: usize) -> usize {
        size.max(1).next_multiple_of(GRANULE)
    }
}

impl<const C: bool> Allocator for Bump<C> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() > self.arena.align() {
            return Err(AllocError::Unsupported("alignment above the arena's"));
        }
        let granted = Self::rounded(layout.size());
        // Alignments are powers of two: a mask, not a division.
        let align = layout.align().max(GRANULE);
        let start = (self.top + align - 1) & !(align - 1);
        let end = start.checked_add(granted).filter(|&end| end <= self.arena.len()).ok_or(AllocError::OutOfMemory)?;
        self.top = end;
        self.live += 1;
        self.ledger.reached(end);
        self.ledger.allocated(layout.size(), granted);
        // SAFETY: start < end <= arena.len().
        Ok(unsafe { self.arena.ptr_at_unchecked(start) })
    }

    #[inline]
    unsafe fn free(&mut self, _ptr: NonNull<u8>, layout: Layout) {
        self.live -= 1;
        self.ledger.freed(layout.size(), Self::rounded(layout.size()));
        if self.live == 0 {
            self.top = 0;
        }
    }

    fn granted(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        Self::rounded(layout.size())
    }

    fn waste(&self, _ptr: NonNull<u8>, layout: Layout) -> Waste {
        // Rounding to the 16-byte granule is alignment padding.
        Waste { rounding: 0, overhead: Self::rounded(layout.size()) - layout.size() }
    }

    fn into_arena(self) -> Arena {
        self.arena
    }

    fn stats(&self) -> HeapStats {
        let free_bytes = self.arena.len() - self.top;
        HeapStats {
            free_bytes,
            free_blocks: usize::from(free_bytes > 0),
            counters: Default::default(),
            ..self.ledger.stats(self.arena.len(), 0, 0, Kept::default())
        }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        if self.top < self.arena.len() {
            visit(self.top, self.arena.len() - self.top);
        }
    }

    fn reports(&self) -> Reports {
        if C { Reports::ALL } else { Reports::ALL.uncounted() }
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        ensure!(
            self.top <= self.arena.len(),
            "bump pointer {} beyond the arena ({} bytes)",
            self.top,
            self.arena.len()
        );
        ensure!(self.live > 0 || self.top == 0, "empty heap but the bump pointer is at {}", self.top);
        if C {
            let stats = self.stats();
            ensure!(
                stats.granted_bytes <= self.top,
                "granted bytes {} exceed the bump pointer {}",
                stats.granted_bytes,
                self.top
            );
            ensure!(
                stats.live_blocks == self.live,
                "{} live blocks counted, {} in the ledger",
                self.live,
                stats.live_blocks
            );
            ensure!(
                stats.footprint_bytes >= self.top,
                "footprint {} below the bump pointer {}",
                stats.footprint_bytes,
                self.top
            );
        }
        Ok(())
    }
}

/// The bump allocator has nothing to configure: its spec is `bump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BumpConfig;

impl AllocatorConfig for BumpConfig {
    type Allocator = Bump;
    type Timed = Bump<false>;
    const FAMILY: &'static str = "bump";
    const SUMMARY: &'static str = "bump pointer, reset when the heap empties (measures the harness itself)";

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        spec.reader().finish()?;
        Ok(BumpConfig)
    }

    fn spec(&self) -> String {
        "bump".to_string()
    }

    fn describe(&self) -> String {
        "bump pointer; frees only count, space returns when the heap is empty".to_string()
    }

    fn listed() -> Vec<Self> {
        vec![BumpConfig]
    }

    fn build(&self, arena: Arena) -> Result<Bump, BuildError> {
        Ok(Bump::new(arena))
    }

    fn build_timed(&self, arena: Arena) -> Result<Bump<false>, BuildError> {
        Ok(Bump::new(arena))
    }

    fn as_send<V: crate::concurrent::SendVisitor>(&self, visitor: V) -> Option<V::Output> {
        Some(visitor.visit(self))
    }
}
