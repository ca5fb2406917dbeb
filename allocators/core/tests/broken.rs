//! Deliberately broken allocators prove that each check of the conformance
//! suite can fail: a suite that passes everything proves nothing.
//!
//! Each one is the (correct) bump allocator with one fault injected after a
//! few hundred operations, so the fault hides among ordinary traffic.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::bump::Bump;
use heaplab_core::conformance::{self, Check, RandomOps};
use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, HeapStats, InvariantViolation, Spec, SpecError,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// No fault: the control, which must pass.
    Nothing,
    /// Returns a block one byte past an aligned address.
    Misaligned,
    /// Returns a block that runs off the end of the arena.
    OutOfBounds,
    /// Returns the previous block again.
    Overlapping,
    /// Scribbles on the previous block when allocating the next.
    CorruptsPayload,
    /// Counts one requested byte too many.
    MiscountsRequested,
    /// Reports a `granted()` smaller than the request.
    UnderReportsGranted,
    /// Reports free space over a live block.
    ReportsLiveAsFree,
    /// Its own `check()` fails.
    FailsOwnCheck,
    /// Never gives memory back: the empty heap differs from the fresh one.
    Leaks,
    /// Panics instead of returning an error when out of memory.
    PanicsWhenFull,
    /// A realloc that loses the old contents.
    ReallocForgetsContents,
    /// Skips 16 bytes before a block: fine alone, but not the placement of
    /// the fault-free wrapper (a timed build that differs from its twin).
    PlacesElsewhere,
}

/// Operations before the fault shows.
const FAULT_AFTER: usize = 300;

#[derive(Debug)]
struct Broken {
    inner: Bump,
    fault: Fault,
    allocs: usize,
    /// The last block returned and its size, while it is live.
    last: Option<(NonNull<u8>, usize)>,
    /// For `Leaks`: a block the wrapper holds so the bump pointer never resets.
    hidden: Option<Layout>,
}

impl Broken {
    fn new(arena: Arena, fault: Fault) -> Broken {
        let mut inner = Bump::new(arena);
        let hidden = (fault == Fault::Leaks).then(|| {
            let layout = Layout::from_size_align(16, 16).unwrap();
            inner.alloc(layout).unwrap();
            layout
        });
        Broken { inner, fault, allocs: 0, last: None, hidden }
    }

    fn active(&self, fault: Fault) -> bool {
        self.fault == fault && self.allocs > FAULT_AFTER
    }
}

impl Allocator for Broken {
    fn arena(&self) -> &Arena {
        self.inner.arena()
    }

    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.allocs += 1;
        if self.active(Fault::OutOfBounds) {
            let arena = self.inner.arena();
            return Ok(arena.ptr_at(arena.len() - layout.size().min(arena.len()) / 2));
        }
        let asked = if self.active(Fault::PlacesElsewhere) {
            // A stricter alignment than asked: valid, but placed differently.
            Layout::from_size_align(layout.size(), layout.align().max(32)).unwrap()
        } else {
            layout
        };
        let result = self.inner.alloc(asked);
        if result.is_err() && self.fault == Fault::PanicsWhenFull {
            panic!("heap full");
        }
        let mut ptr = result?;
        if self.active(Fault::Misaligned) && layout.align() > 1 {
            // SAFETY: the bump block is at least 16 bytes; one byte in is still inside it.
            ptr = unsafe { ptr.add(1) };
        }
        if self.active(Fault::Overlapping)
            && let Some((previous, size)) = self.last
            && size >= layout.size()
        {
            ptr = previous;
        }
        if self.active(Fault::CorruptsPayload)
            && let Some((previous, size)) = self.last
            && size > 0
        {
            // SAFETY: `previous` is a live block of `size > 0` bytes in the arena.
            unsafe { previous.as_ptr().write(!previous.as_ptr().read()) };
        }
        self.last = Some((ptr, layout.size()));
        Ok(ptr)
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        if self.last.is_some_and(|(last, _)| last == ptr) {
            self.last = None;
        }
        // SAFETY: forwarded contract.
        unsafe { self.inner.free(ptr, layout) }
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        if self.active(Fault::ReallocForgetsContents) && old.size() > 0 && new_size > 0 {
            let new = self.alloc(Layout::from_size_align(new_size, old.align()).unwrap())?;
            // SAFETY: forwarded contract.
            unsafe { self.free(ptr, old) };
            return Ok(new);
        }
        // SAFETY: forwarded contract.
        unsafe { self.inner.realloc(ptr, old, new_size) }
    }

    fn granted(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        let granted = self.inner.granted(ptr, layout);
        if self.active(Fault::UnderReportsGranted) { layout.size().saturating_sub(1).min(granted) } else { granted }
    }

    fn into_arena(self) -> Arena {
        self.inner.into_arena()
    }

    fn stats(&self) -> HeapStats {
        let mut stats = self.inner.stats();
        if self.active(Fault::MiscountsRequested) {
            stats.requested_bytes += 1;
        }
        if let Some(hidden) = self.hidden {
            stats.live_blocks -= 1;
            stats.requested_bytes -= hidden.size();
            stats.granted_bytes -= self.inner.granted(self.inner.arena().base(), hidden);
        }
        stats
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        if self.active(Fault::ReportsLiveAsFree) && self.inner.stats().live_blocks > 0 {
            visit(0, self.inner.stats().free_bytes);
        } else {
            self.inner.for_each_free(visit);
        }
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        if self.active(Fault::FailsOwnCheck) {
            return Err(InvariantViolation::global("injected fault"));
        }
        self.inner.check()
    }
}

fn caught(fault: Fault) -> Check {
    let factory = |arena| Broken::new(arena, fault);
    let outcome = if fault == Fault::PanicsWhenFull {
        conformance::exhaustion(factory)
    } else {
        conformance::random_ops(factory, &RandomOps::thorough())
    };
    match outcome {
        Ok(summary) => panic!("{fault:?} went unnoticed: {summary:?}"),
        Err(failure) => {
            eprintln!("{fault:?}: {failure}");
            failure.check
        }
    }
}

#[test]
fn misalignment_is_caught() {
    assert_eq!(caught(Fault::Misaligned), Check::Alignment);
}

#[test]
fn blocks_outside_the_arena_are_caught() {
    assert_eq!(caught(Fault::OutOfBounds), Check::Bounds);
}

#[test]
fn overlap_is_caught() {
    assert_eq!(caught(Fault::Overlapping), Check::Overlap);
}

#[test]
fn corrupted_payloads_are_caught() {
    assert_eq!(caught(Fault::CorruptsPayload), Check::Payload);
}

#[test]
fn lost_realloc_contents_are_caught() {
    assert_eq!(caught(Fault::ReallocForgetsContents), Check::Payload);
}

#[test]
fn wrong_requested_bytes_are_caught() {
    assert_eq!(caught(Fault::MiscountsRequested), Check::Stats);
}

#[test]
fn under_reported_granted_bytes_are_caught() {
    assert_eq!(caught(Fault::UnderReportsGranted), Check::Stats);
}

#[test]
fn free_space_over_live_blocks_is_caught() {
    assert_eq!(caught(Fault::ReportsLiveAsFree), Check::FreeSpace);
}

#[test]
fn a_failing_own_check_is_caught() {
    assert_eq!(caught(Fault::FailsOwnCheck), Check::Invariant);
}

#[test]
fn leaks_are_caught_as_failed_recovery() {
    assert_eq!(caught(Fault::Leaks), Check::Recovery);
}

#[test]
fn a_panic_when_full_is_caught() {
    assert_eq!(caught(Fault::PanicsWhenFull), Check::Panic);
}

#[test]
fn the_wrapper_without_a_fault_passes() {
    // The control: every failure above comes from its fault, not the wrapper.
    conformance::expect(conformance::random_ops(|arena| Broken::new(arena, Fault::Nothing), &RandomOps::thorough()));
    conformance::expect(conformance::exhaustion(|arena| Broken::new(arena, Fault::Nothing)));
}

/// A configuration whose timed build is the wrapper with `PlacesElsewhere`.
#[derive(Debug, Clone)]
struct DriftingTwin;

impl AllocatorConfig for DriftingTwin {
    type Allocator = Broken;
    type Timed = Broken;
    const FAMILY: &'static str = "drifting";
    const SUMMARY: &'static str = "a timed build that drifts from its twin";

    fn from_spec(_: &Spec) -> Result<Self, SpecError> {
        Ok(DriftingTwin)
    }
    fn spec(&self) -> String {
        "drifting".into()
    }
    fn describe(&self) -> String {
        Self::SUMMARY.into()
    }
    fn listed() -> Vec<Self> {
        vec![DriftingTwin]
    }
    fn build(&self, arena: Arena) -> Result<Broken, BuildError> {
        Ok(Broken::new(arena, Fault::Nothing))
    }
    fn build_timed(&self, arena: Arena) -> Result<Broken, BuildError> {
        Ok(Broken::new(arena, Fault::PlacesElsewhere))
    }
}

#[test]
fn a_timed_build_that_places_differently_is_caught() {
    let failure = conformance::timed_twin(DriftingTwin, &RandomOps::thorough()).unwrap_err();
    assert_eq!(failure.check, Check::Twin, "{failure}");
    // The drift alone breaks nothing else: only the comparison sees it.
    conformance::expect(conformance::random_ops(
        |arena| Broken::new(arena, Fault::PlacesElsewhere),
        &RandomOps::thorough(),
    ));
}
