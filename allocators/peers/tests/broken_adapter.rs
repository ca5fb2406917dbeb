//! A broken adapter must be caught: the checks that apply to a peer that
//! reports little (no arena, no granted size, no free space) still fail when
//! the adapter gets alignment, payloads or counts wrong.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::conformance::{self, Check, RandomOps};
use heaplab_core::{AllocError, Allocator, Arena, HeapStats, InvariantViolation, Reports};
use heaplab_peers::Adapter;
use heaplab_peers::unbounded::Glibc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Nothing,
    /// Sends every request to plain malloc, whatever its alignment.
    IgnoresAlignment,
    /// Reallocates without copying the contents.
    ReallocForgetsContents,
    /// Forgets to count frees.
    MiscountsFrees,
}

#[derive(Debug)]
struct Broken {
    inner: Glibc<true>,
    fault: Fault,
    frees: usize,
}

impl Allocator for Broken {
    fn arena(&self) -> &Arena {
        self.inner.arena()
    }

    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if self.fault == Fault::IgnoresAlignment {
            let small = Layout::from_size_align(layout.size(), 1).expect("valid");
            return self.inner.alloc(small);
        }
        self.inner.alloc(layout)
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.frees += 1;
        let layout = if self.fault == Fault::IgnoresAlignment {
            Layout::from_size_align(layout.size(), 1).expect("valid")
        } else {
            layout
        };
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.free(ptr, layout) }
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        if self.fault == Fault::ReallocForgetsContents {
            let new = self.alloc(Layout::from_size_align(new_size, old.align()).expect("valid"))?;
            // SAFETY: forwarded from the caller.
            unsafe { self.free(ptr, old) };
            return Ok(new);
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.realloc(ptr, old, new_size) }
    }

    fn granted(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        self.inner.granted(ptr, layout)
    }

    fn stats(&self) -> HeapStats {
        let mut stats = self.inner.stats();
        if self.fault == Fault::MiscountsFrees && self.frees > 100 {
            stats.live_blocks += 1;
        }
        stats
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        self.inner.for_each_free(visit)
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        self.inner.check()
    }

    fn reports(&self) -> Reports {
        self.inner.reports()
    }

    fn into_arena(self) -> Arena {
        self.inner.into_arena()
    }
}

fn broken(fault: Fault) -> impl Fn(Arena) -> Broken {
    move |arena| Broken { inner: Glibc::<true>::build(arena).expect("glibc builds"), fault, frees: 0 }
}

fn first_failure(fault: Fault) -> Option<Check> {
    let runs = [
        conformance::random_ops(broken(fault), &RandomOps::thorough()),
        conformance::alignment_sweep(broken(fault)).map(|_| Default::default()),
        conformance::realloc_chains(broken(fault)).map(|_| Default::default()),
    ];
    runs.into_iter().find_map(|outcome| outcome.err()).map(|failure| failure.check)
}

#[test]
fn the_control_passes() {
    assert_eq!(first_failure(Fault::Nothing), None);
}

#[test]
fn ignoring_alignment_is_caught() {
    assert_eq!(first_failure(Fault::IgnoresAlignment), Some(Check::Alignment));
}

#[test]
fn losing_contents_in_realloc_is_caught() {
    assert_eq!(first_failure(Fault::ReallocForgetsContents), Some(Check::Payload));
}

#[test]
fn miscounting_is_caught() {
    assert_eq!(first_failure(Fault::MiscountsFrees), Some(Check::Stats));
}
