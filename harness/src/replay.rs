//! The replay engine: drive prepared steps through an allocator.
//!
//! One loop serves the three passes; what differs is a [`Probe`], whose
//! methods are no-ops for the throughput pass (they compile away, as the
//! loop is instantiated per allocator and probe), time each call for the
//! latency pass, and keep the books for the metrics pass.
//!
//! An allocation that fails is recorded and its slot stays empty; later
//! frees and reallocs of that slot are skipped and counted. Replay never
//! formats anything.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::Allocator;
use heaplab_workloads::OpKind;

use crate::prepare::Step;

pub use heaplab_results::Touch;

/// Write into the block just returned as `touch` says, so that memory
/// traffic is realistic.
#[inline(always)]
pub(crate) fn apply(touch: Touch, ptr: NonNull<u8>, size: usize) {
    match touch {
        Touch::None => {}
        Touch::First => {
            if size > 0 {
                // SAFETY: the allocator just returned `ptr` for `size`
                // bytes; the first of them is ours to write.
                unsafe { ptr.as_ptr().write_volatile(1) };
            }
        }
        Touch::Lines => {
            for offset in (0..size).step_by(64) {
                // SAFETY: `offset < size`, inside the block just returned.
                unsafe { ptr.as_ptr().add(offset).write_volatile(1) };
            }
        }
    }
}

/// A live block in a slot: null when the slot is empty.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    ptr: *mut u8,
    layout: Layout,
}

impl Slot {
    const EMPTY: Slot = Slot { ptr: std::ptr::null_mut(), layout: Layout::new::<u8>() };
}

/// The slots of a replay, reused across the passes of a repetition.
///
/// The table can start at any slot of its storage ([`Slots::placed`]), so
/// that each timed repetition puts it at another offset within a page:
/// where the table lies relative to the arena's blocks (4 KiB aliasing,
/// cache sets) changes speed by several percent, and moving it per
/// repetition shows that variation in a cell's spread instead of hiding it
/// as a difference between runs.
#[derive(Debug)]
pub struct Slots {
    storage: Vec<Slot>,
    start: usize,
}

// SAFETY: the pointers point into an arena owned by whoever owns these
// slots (a cell's timed state holds both); they are only dereferenced by the
// thread that owns them, and moving them to another thread moves no data.
unsafe impl Send for Slots {}

impl Slots {
    /// `count` empty slots.
    pub fn new(count: usize) -> Slots {
        Slots::placed(count, 0)
    }

    /// `count` empty slots, the table starting `skip` slots into its storage.
    pub fn placed(count: usize, skip: usize) -> Slots {
        Slots { storage: vec![Slot::EMPTY; count + skip], start: skip }
    }

    fn table(&mut self) -> &mut [Slot] {
        &mut self.storage[self.start..]
    }

    /// Free every live block (untimed, after a replay) and empty the slots.
    pub fn release_all<A: Allocator>(&mut self, allocator: &mut A) {
        for slot in self.table() {
            if let Some(ptr) = NonNull::new(slot.ptr) {
                // SAFETY: the slot holds a live block of this allocator with
                // this layout; it is emptied so it is freed once.
                unsafe { allocator.free(ptr, slot.layout) };
                *slot = Slot::EMPTY;
            }
        }
    }

    /// Live blocks.
    pub fn live(&self) -> usize {
        self.storage[self.start..].iter().filter(|slot| !slot.ptr.is_null()).count()
    }
}

/// Hooks into the replay loop. Every method has an empty default.
pub trait Probe<A: Allocator> {
    /// Error a probe can stop the replay with.
    type Error;

    /// The thread step `index` runs as, in an interleaved multithreaded
    /// replay (the metrics pass of a cell on threads); `None`: no change.
    #[inline(always)]
    fn thread(&mut self, _index: usize) -> Option<u16> {
        None
    }
    /// Read the clock before an allocator call (latency pass).
    #[inline(always)]
    fn start(&mut self) -> u64 {
        0
    }
    /// The allocator call of `kind` that started at `start` has returned.
    #[inline(always)]
    fn stop(&mut self, _kind: OpKind, _start: u64) {}
    /// A block was allocated (or a realloc produced one).
    #[inline(always)]
    fn allocated(&mut self, _allocator: &A, _ptr: NonNull<u8>, _layout: Layout) {}
    /// A block is about to be freed (or reallocated).
    #[inline(always)]
    fn freeing(&mut self, _allocator: &A, _ptr: NonNull<u8>, _layout: Layout) {}
    /// An allocation or realloc of `size` bytes at alignment `align` was
    /// refused (`align` is `u64::MAX` for a request no layout can express).
    #[inline(always)]
    fn refused(&mut self, _allocator: &A, _kind: OpKind, _size: u64, _align: u64) {}
    /// Step `index` is done.
    #[inline(always)]
    fn stepped(&mut self, _allocator: &A, _index: usize) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The probe of the throughput pass: nothing.
#[derive(Debug, Default)]
pub struct Nothing;

impl<A: Allocator> Probe<A> for Nothing {
    type Error = std::convert::Infallible;
}

/// What happened in a replay, allocator-independent counts aside.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Allocations refused.
    pub failed_allocs: u64,
    /// Reallocs refused (the block stayed as it was).
    pub failed_reallocs: u64,
    /// Frees and reallocs skipped because their allocation had failed.
    pub skipped: u64,
}

/// Replay `steps` through `allocator` with `probe` watching.
#[inline(never)]
pub fn replay<A: Allocator, P: Probe<A>>(
    allocator: &mut A,
    steps: &[Step],
    slots: &mut Slots,
    touch: Touch,
    probe: &mut P,
) -> Result<Outcome, P::Error> {
    let mut outcome = Outcome::default();
    let slots = slots.table();
    for (index, step) in steps.iter().enumerate() {
        if let Some(thread) = probe.thread(index) {
            allocator.set_thread(thread as usize);
        }
        match *step {
            Step::Alloc { slot, align_log2, size, level, space } => {
                // SAFETY: preparation checked that this size and alignment
                // make a valid Layout.
                let layout = unsafe { Layout::from_size_align_unchecked(size as usize, 1 << align_log2) };
                let start = probe.start();
                let result = allocator.alloc_in(space, level, layout);
                probe.stop(OpKind::Alloc, start);
                match result {
                    Ok(ptr) => {
                        apply(touch, ptr, layout.size());
                        slots[slot as usize] = Slot { ptr: ptr.as_ptr(), layout };
                        probe.allocated(allocator, ptr, layout);
                    }
                    Err(_) => {
                        outcome.failed_allocs += 1;
                        probe.refused(allocator, OpKind::Alloc, size, layout.align() as u64);
                    }
                }
            }
            Step::AllocImpossible { size, .. } => {
                outcome.failed_allocs += 1;
                probe.refused(allocator, OpKind::Alloc, size, u64::MAX);
            }
            Step::Free { slot } => {
                let Slot { ptr, layout } = std::mem::replace(&mut slots[slot as usize], Slot::EMPTY);
                match NonNull::new(ptr) {
                    Some(ptr) => {
                        probe.freeing(allocator, ptr, layout);
                        let start = probe.start();
                        // SAFETY: the slot held a live block of this
                        // allocator with this layout, and is now empty.
                        unsafe { allocator.free(ptr, layout) };
                        probe.stop(OpKind::Free, start);
                    }
                    None => outcome.skipped += 1,
                }
            }
            Step::Realloc { slot, size } => {
                let Slot { ptr, layout } = slots[slot as usize];
                let (Some(ptr), Ok(new_size)) = (NonNull::new(ptr), usize::try_from(size)) else {
                    if ptr.is_null() {
                        outcome.skipped += 1;
                    } else {
                        outcome.failed_reallocs += 1;
                        probe.refused(allocator, OpKind::Realloc, size, layout.align() as u64);
                    }
                    probe.stepped(allocator, index)?;
                    continue;
                };
                probe.freeing(allocator, ptr, layout);
                let start = probe.start();
                // SAFETY: the slot holds a live block of this allocator with
                // this layout; on success it is replaced by the result.
                let result = unsafe { allocator.realloc(ptr, layout, new_size) };
                probe.stop(OpKind::Realloc, start);
                match result {
                    Ok(new_ptr) => {
                        let new_layout = Layout::from_size_align(new_size, layout.align())
                            .expect("realloc succeeded, so the layout is valid");
                        apply(touch, new_ptr, new_size);
                        slots[slot as usize] = Slot { ptr: new_ptr.as_ptr(), layout: new_layout };
                        probe.allocated(allocator, new_ptr, new_layout);
                    }
                    Err(_) => {
                        outcome.failed_reallocs += 1;
                        probe.allocated(allocator, ptr, layout);
                        probe.refused(allocator, OpKind::Realloc, size, layout.align() as u64);
                    }
                }
            }
        }
        probe.stepped(allocator, index)?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heaplab_core::bump::Bump;
    use heaplab_core::{Arena, HeapStats};

    #[test]
    fn failures_are_counted_and_their_frees_skipped() {
        // 256 bytes of arena: the second 200-byte block does not fit.
        let mut bump: Bump = Bump::new(Arena::new(256).unwrap());
        let steps = [
            Step::Alloc { slot: 0, align_log2: 4, size: 200, level: heaplab_core::Level::User, space: 0 },
            Step::Alloc { slot: 1, align_log2: 4, size: 200, level: heaplab_core::Level::User, space: 0 },
            Step::Realloc { slot: 1, size: 10 },
            Step::Free { slot: 1 },
            Step::AllocImpossible { slot: 2, size: u64::MAX },
            Step::Free { slot: 0 },
        ];
        let mut slots = Slots::new(3);
        let outcome = replay(&mut bump, &steps, &mut slots, Touch::Lines, &mut Nothing).unwrap();
        assert_eq!(outcome, Outcome { failed_allocs: 2, failed_reallocs: 0, skipped: 2 });
        assert_eq!(slots.live(), 0);
        assert_eq!(
            bump.stats(),
            HeapStats { arena_bytes: 256, free_bytes: 256, free_blocks: 1, footprint_bytes: 208, ..Default::default() }
        );
    }

    #[test]
    fn leftover_blocks_are_released() {
        let mut bump: Bump = Bump::new(Arena::new(4096).unwrap());
        let steps = [
            Step::Alloc { slot: 0, align_log2: 3, size: 24, level: heaplab_core::Level::User, space: 0 },
            Step::Alloc { slot: 1, align_log2: 3, size: 8, level: heaplab_core::Level::User, space: 0 },
        ];
        let mut slots = Slots::new(2);
        replay(&mut bump, &steps, &mut slots, Touch::First, &mut Nothing).unwrap();
        assert_eq!(slots.live(), 2);
        slots.release_all(&mut bump);
        assert_eq!((slots.live(), bump.stats().live_blocks), (0, 0));
    }
}
