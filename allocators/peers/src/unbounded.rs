//! Unbounded references: allocators with memory of their own, called
//! directly (never installed as the global allocator).
//!
//! They take the harness's arena only to give it back: their blocks are
//! elsewhere, so arena-based figures (footprint, granted bytes, the free
//! space) are not reported. What each says of its own memory goes to the
//! details table under a name that says whose figures they are; those
//! figures cover the whole process (for glibc, the harness's own
//! allocations too), and other cells running at the same time share them.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::{
    AllocError, Allocator, Arena, Detail, HeapStats, InvariantViolation, Reports, SetupError, realloc_by_moving,
};

use crate::tally::Tally;
use crate::{Adapter, detail, nothing_to_walk};

/// Nothing but counts and timings.
const UNBOUNDED: Reports =
    Reports { in_arena: false, granted: false, free_bytes: false, free_space: false, footprint: false, counts: true };

/// The methods of an unbounded reference that only counts: no granted size,
/// nothing to walk, nothing to check beyond the counts.
macro_rules! counts_only {
    () => {
        nothing_to_walk!();

        fn stats(&self) -> HeapStats {
            self.tally.stats(self.arena())
        }

        fn check(&self) -> Result<(), InvariantViolation> {
            Ok(())
        }

        fn reports(&self) -> Reports {
            if C { UNBOUNDED } else { UNBOUNDED.uncounted() }
        }
    };
}

/// The alignment malloc guarantees on x86-64 and aarch64 Linux.
const MALLOC_ALIGN: usize = 16;

/// The system allocator (glibc malloc), through `malloc`, `posix_memalign`,
/// `realloc` and `free`.
///
/// Alignments up to 16 go to `malloc`, which guarantees 16; larger ones to
/// `posix_memalign`. `realloc` keeps alignments up to 16 and moves the block
/// (allocate, copy, free) for larger ones, since glibc has no aligned
/// realloc. `realloc` to 0 bytes asks for 1 (glibc would free the block).
#[derive(Debug)]
pub struct Glibc<const C: bool = true> {
    arena: Arena,
    tally: Tally<C>,
}

impl<const C: bool> Adapter for Glibc<C> {
    fn visit_shared<V: heaplab_core::concurrent::SharedVisitor>(visitor: V) -> Option<V::Output> {
        Some(visitor.visit(&shared::Build { library: shared::Library::Glibc, spec: "peer:glibc" }))
    }

    type Timed = Glibc<false>;
    const NAME: &'static str = "glibc";
    const ABOUT: &'static str = "the system allocator (glibc malloc), unbounded: throughput and latency only";

    fn build(arena: Arena) -> Result<Glibc<C>, SetupError> {
        Ok(Glibc { arena, tally: Tally::default() })
    }
}

impl<const C: bool> Allocator for Glibc<C> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let ptr = if layout.align() <= MALLOC_ALIGN {
            // SAFETY: any size may be asked for; null means no memory.
            unsafe { libc::malloc(layout.size()) }
        } else {
            let mut ptr = std::ptr::null_mut();
            // SAFETY: the alignment is a power of two and a multiple of the
            // pointer size, as posix_memalign requires.
            match unsafe { libc::posix_memalign(&mut ptr, layout.align(), layout.size()) } {
                0 => ptr,
                _ => std::ptr::null_mut(),
            }
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(AllocError::OutOfMemory)?;
        self.tally.add_unbounded(layout.size(), layout.size());
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is live, from malloc or
        // posix_memalign, both of which `free` releases.
        unsafe { libc::free(ptr.as_ptr().cast()) };
        self.tally.remove(layout.size(), layout.size());
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        if old.align() > MALLOC_ALIGN {
            // SAFETY: forwarded from the caller.
            return unsafe { realloc_by_moving(self, ptr, old, new_size) };
        }
        // SAFETY: `ptr` is live (the caller's guarantee); a nonzero size
        // keeps glibc from freeing it; on null the old block is untouched.
        let moved = unsafe { libc::realloc(ptr.as_ptr().cast(), new_size.max(1)) };
        self.tally.resized(None, moved.cast(), old.size(), new_size)
    }

    counts_only!();

    fn details(&self) -> Vec<Detail> {
        // SAFETY: mallinfo2 only reads glibc's counters.
        let info = unsafe { libc::mallinfo2() };
        let row = "whole process";
        vec![
            detail("glibc_mallinfo2", row, "arena", info.arena as f64),
            detail("glibc_mallinfo2", row, "uordblks", info.uordblks as f64),
            detail("glibc_mallinfo2", row, "fordblks", info.fordblks as f64),
            detail("glibc_mallinfo2", row, "hblkhd", info.hblkhd as f64),
            detail("glibc_mallinfo2", row, "keepcost", info.keepcost as f64),
        ]
    }

    fn into_arena(self) -> Arena {
        self.arena
    }
}

/// Time-based purging is turned off in the unbounded references. The
/// harness pauses between repetitions (it interleaves every cell of the
/// matrix, and pre-faults each bounded allocator's arena so that page faults
/// are never measured); memory purged during those pauses would be faulted
/// back in the next timed repetition, a cost no real program pays for the
/// harness's pauses. Within a replay, reuse is as by default.
#[cfg(feature = "c-refs")]
static NO_TIMED_PURGE: std::sync::Once = std::sync::Once::new();

/// `mi_option_purge_delay` in the bundled mimalloc v3's `mi_option_t`
/// (libmimalloc-sys names only the v2 options).
#[cfg(feature = "c-refs")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc (libmimalloc-sys, the bundled v3), on a heap of its own
/// (`mi_heap_new`), destroyed with everything in it when the adapter goes.
///
/// Every request passes its alignment (`mi_heap_malloc_aligned`), and
/// `realloc` keeps it (`mi_heap_realloc_aligned`). Purging is off
/// (`mi_option_purge_delay` = −1; see [`NO_TIMED_PURGE`]).
#[cfg(feature = "c-refs")]
#[derive(Debug)]
pub struct Mimalloc<const C: bool = true> {
    heap: NonNull<libmimalloc_sys::mi_heap_t>,
    arena: Option<Arena>,
    tally: Tally<C>,
}

#[cfg(feature = "c-refs")]
impl<const C: bool> Adapter for Mimalloc<C> {
    fn visit_shared<V: heaplab_core::concurrent::SharedVisitor>(visitor: V) -> Option<V::Output> {
        Some(visitor.visit(&shared::Build { library: shared::Library::Mimalloc, spec: "peer:mimalloc" }))
    }

    type Timed = Mimalloc<false>;
    const NAME: &'static str = "mimalloc";
    const ABOUT: &'static str = "mimalloc 3 on a private heap, unbounded: throughput and latency only";

    fn build(arena: Arena) -> Result<Mimalloc<C>, SetupError> {
        set_no_timed_purge()?;
        // SAFETY: creating a heap has no precondition.
        let heap = NonNull::new(unsafe { libmimalloc_sys::mi_heap_new() })
            .ok_or_else(|| SetupError::Peer("mimalloc could not create a heap".into()))?;
        Ok(Mimalloc { heap, arena: Some(arena), tally: Tally::default() })
    }
}

#[cfg(feature = "c-refs")]
impl<const C: bool> Drop for Mimalloc<C> {
    fn drop(&mut self) {
        // SAFETY: the heap is this adapter's; no block of it is used after
        // (the harness frees or forgets every block before the allocator).
        unsafe { libmimalloc_sys::mi_heap_destroy(self.heap.as_ptr()) };
    }
}

#[cfg(feature = "c-refs")]
impl<const C: bool> Allocator for Mimalloc<C> {
    fn arena(&self) -> &Arena {
        self.arena.as_ref().expect("the arena is given back only when the allocator goes")
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: the heap is live; any size and power-of-two alignment.
        let ptr = unsafe { libmimalloc_sys::mi_heap_malloc_aligned(self.heap.as_ptr(), layout.size(), layout.align()) };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(AllocError::OutOfMemory)?;
        self.tally.add_unbounded(layout.size(), layout.size());
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is live, from this heap.
        unsafe { libmimalloc_sys::mi_free(ptr.as_ptr().cast()) };
        self.tally.remove(layout.size(), layout.size());
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: `ptr` is live in this heap (the caller's guarantee); the
        // alignment is kept; on null the old block is untouched.
        let moved = unsafe {
            libmimalloc_sys::mi_heap_realloc_aligned(self.heap.as_ptr(), ptr.as_ptr().cast(), new_size, old.align())
        };
        self.tally.resized(None, moved.cast(), old.size(), new_size)
    }

    counts_only!();

    fn details(&self) -> Vec<Detail> {
        let mut figures = [0usize; 4];
        let [current_rss, peak_rss, current_commit, peak_commit] = &mut figures;
        // SAFETY: every pointer is to a live usize or null, as allowed.
        unsafe {
            libmimalloc_sys::mi_process_info(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                current_rss,
                peak_rss,
                current_commit,
                peak_commit,
                std::ptr::null_mut(),
            );
        }
        let row = "whole process";
        ["current_rss", "peak_rss", "current_commit", "peak_commit"]
            .into_iter()
            .zip(figures)
            .map(|(column, value)| detail("mimalloc_process_info", row, column, value as f64))
            .collect()
    }

    fn into_arena(mut self) -> Arena {
        self.arena.take().expect("the arena is given back once")
    }
}

/// jemalloc 5.3 (tikv-jemalloc-sys, built with statistics, its symbols
/// prefixed so that it replaces nothing), through `mallocx`, `rallocx` and
/// `sdallocx` with `MALLOCX_ALIGN` on every call.
///
/// Size-0 requests ask for 1 byte (jemalloc's `mallocx` forbids 0). The
/// default arena and thread cache are used, as a program linked with
/// jemalloc would; blocks left live at the end are freed by the harness.
/// Dirty and muzzy decay are off (−1; see [`NO_TIMED_PURGE`]).
#[cfg(feature = "c-refs")]
#[derive(Debug)]
pub struct Jemalloc<const C: bool = true> {
    arena: Arena,
    tally: Tally<C>,
}

#[cfg(feature = "c-refs")]
impl<const C: bool> Jemalloc<C> {
    #[inline]
    fn flags(layout: Layout) -> libc::c_int {
        tikv_jemalloc_sys::MALLOCX_ALIGN(layout.align())
    }
}

#[cfg(feature = "c-refs")]
impl<const C: bool> Adapter for Jemalloc<C> {
    fn visit_shared<V: heaplab_core::concurrent::SharedVisitor>(visitor: V) -> Option<V::Output> {
        Some(visitor.visit(&shared::Build { library: shared::Library::Jemalloc, spec: "peer:jemalloc" }))
    }

    type Timed = Jemalloc<false>;
    const NAME: &'static str = "jemalloc";
    const ABOUT: &'static str = "jemalloc 5.3 with its thread cache, unbounded: throughput and latency only";

    fn build(arena: Arena) -> Result<Jemalloc<C>, SetupError> {
        set_no_timed_purge()?;
        Ok(Jemalloc { arena, tally: Tally::default() })
    }
}

#[cfg(feature = "c-refs")]
impl<const C: bool> Allocator for Jemalloc<C> {
    fn arena(&self) -> &Arena {
        &self.arena
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: the size is nonzero, as mallocx requires; the flags carry
        // a power-of-two alignment.
        let ptr = unsafe { tikv_jemalloc_sys::mallocx(layout.size().max(1), Self::flags(layout)) };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(AllocError::OutOfMemory)?;
        self.tally.add_unbounded(layout.size(), layout.size());
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is live; size and flags are
        // those it was allocated with, as sdallocx requires.
        unsafe { tikv_jemalloc_sys::sdallocx(ptr.as_ptr().cast(), layout.size().max(1), Self::flags(layout)) };
        self.tally.remove(layout.size(), layout.size());
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: `ptr` is live (the caller's guarantee), the size nonzero,
        // the alignment kept; on null the old block is untouched.
        let moved = unsafe { tikv_jemalloc_sys::rallocx(ptr.as_ptr().cast(), new_size.max(1), Self::flags(old)) };
        self.tally.resized(None, moved.cast(), old.size(), new_size)
    }

    counts_only!();

    fn details(&self) -> Vec<Detail> {
        use tikv_jemalloc_ctl::{epoch, stats};
        let row = "whole process";
        // Statistics are a snapshot taken at each epoch.
        if epoch::advance().is_err() {
            return Vec::new();
        }
        let mut details = Vec::new();
        for (column, value) in [
            ("allocated", stats::allocated::read()),
            ("active", stats::active::read()),
            ("resident", stats::resident::read()),
            ("metadata", stats::metadata::read()),
            ("mapped", stats::mapped::read()),
        ] {
            if let Ok(value) = value {
                details.push(detail("jemalloc_stats", row, column, value as f64));
            }
        }
        details
    }

    fn into_arena(self) -> Arena {
        self.arena
    }
}

/// Turn time-based purging off in mimalloc and jemalloc, once per process.
#[cfg(feature = "c-refs")]
fn set_no_timed_purge() -> Result<(), SetupError> {
    NO_TIMED_PURGE.call_once(|| {
        // SAFETY: setting an option is allowed at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
        // 4096 is MALLCTL_ARENAS_ALL: every arena, existing and future.
        for name in [
            &b"arena.4096.dirty_decay_ms\0"[..],
            b"arena.4096.muzzy_decay_ms\0",
            b"arenas.dirty_decay_ms\0",
            b"arenas.muzzy_decay_ms\0",
        ] {
            // SAFETY: these settings are `ssize_t` and writable.
            let _ = unsafe { tikv_jemalloc_ctl::raw::write(name, -1isize) };
        }
    });
    // SAFETY: reading an option has no precondition.
    let purge_delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
    if purge_delay != -1 {
        return Err(SetupError::Peer(format!("mimalloc's purge delay is {purge_delay} ms after setting it to -1")));
    }
    // SAFETY: `arenas.dirty_decay_ms` is an `ssize_t`.
    match unsafe { tikv_jemalloc_ctl::raw::read::<isize>(b"arenas.dirty_decay_ms\0") } {
        Ok(-1) => Ok(()),
        other => Err(SetupError::Peer(format!("jemalloc's dirty decay is {other:?} after setting it to -1"))),
    }
}

/// The unbounded references on their own thread-safe paths, for replays on
/// several threads: glibc's `malloc` (per-thread arenas and tcache),
/// mimalloc's default heaps (`mi_malloc_aligned`, one heap per thread, not
/// the private heap of the single-threaded adapter), and jemalloc's
/// `mallocx` (thread caches and arenas). Each thread's state is the
/// library's own thread-local storage, so `Local` is `()`.
pub mod shared {
    use std::alloc::Layout;
    use std::ptr::NonNull;

    use heaplab_core::concurrent::{SharedAllocator, SharedBuild};
    use heaplab_core::{AllocError, Arena, BuildError, SetupError};

    use super::MALLOC_ALIGN;

    /// Which library.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Library {
        /// glibc malloc.
        Glibc,
        /// mimalloc's default heaps.
        #[cfg(feature = "c-refs")]
        Mimalloc,
        /// jemalloc.
        #[cfg(feature = "c-refs")]
        Jemalloc,
    }

    /// A thread-safe build of one library.
    #[derive(Debug, Clone, Copy)]
    pub struct Build {
        /// The library.
        pub library: Library,
        /// Its spec, `peer:NAME`.
        pub spec: &'static str,
    }

    /// One type for the three libraries, chosen when built.
    #[derive(Debug)]
    pub struct SharedLibrary {
        library: Library,
        arena: Arena,
    }

    // SAFETY: the arena is only held to be given back; the libraries are
    // thread-safe.
    unsafe impl Sync for SharedLibrary {}

    impl SharedBuild for Build {
        type Shared = SharedLibrary;

        fn shared_spec(&self) -> String {
            self.spec.to_string()
        }

        fn build_shared(&self, arena: Arena, _threads: usize) -> Result<SharedLibrary, BuildError> {
            #[cfg(feature = "c-refs")]
            if self.library != Library::Glibc {
                super::set_no_timed_purge()
                    .map_err(|reason: SetupError| BuildError { spec: self.spec.to_string(), reason })?;
            }
            Ok(SharedLibrary { library: self.library, arena })
        }
    }

    impl SharedAllocator for SharedLibrary {
        type Local = ();

        fn local(&self, _thread: usize) {}

        #[inline]
        fn alloc(&self, _local: &mut (), layout: Layout) -> Result<NonNull<u8>, AllocError> {
            let ptr = match self.library {
                Library::Glibc if layout.align() <= MALLOC_ALIGN => {
                    // SAFETY: any size may be asked for; null means no memory.
                    unsafe { libc::malloc(layout.size()) }
                }
                Library::Glibc => {
                    let mut ptr = std::ptr::null_mut();
                    // SAFETY: a power-of-two alignment, at least the pointer size.
                    match unsafe { libc::posix_memalign(&mut ptr, layout.align(), layout.size()) } {
                        0 => ptr,
                        _ => std::ptr::null_mut(),
                    }
                }
                #[cfg(feature = "c-refs")]
                Library::Mimalloc => {
                    // SAFETY: any size and power-of-two alignment may be asked for.
                    unsafe { libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()) }
                }
                #[cfg(feature = "c-refs")]
                Library::Jemalloc => {
                    // SAFETY: a nonzero size and a power-of-two alignment flag.
                    unsafe {
                        tikv_jemalloc_sys::mallocx(
                            layout.size().max(1),
                            tikv_jemalloc_sys::MALLOCX_ALIGN(layout.align()),
                        )
                    }
                }
            };
            NonNull::new(ptr.cast::<u8>()).ok_or(AllocError::OutOfMemory)
        }

        #[inline]
        unsafe fn free(&self, _local: &mut (), ptr: NonNull<u8>, layout: Layout) {
            match self.library {
                // SAFETY: the caller guarantees `ptr` is live, from malloc or
                // posix_memalign.
                Library::Glibc => unsafe { libc::free(ptr.as_ptr().cast()) },
                // SAFETY: live, from mi_malloc_aligned with this alignment.
                #[cfg(feature = "c-refs")]
                Library::Mimalloc => unsafe { libmimalloc_sys::mi_free(ptr.as_ptr().cast()) },
                // SAFETY: live, with the size and flags it was allocated with.
                #[cfg(feature = "c-refs")]
                Library::Jemalloc => unsafe {
                    tikv_jemalloc_sys::sdallocx(
                        ptr.as_ptr().cast(),
                        layout.size().max(1),
                        tikv_jemalloc_sys::MALLOCX_ALIGN(layout.align()),
                    )
                },
            }
            let _ = layout;
        }

        fn retire(&self, _local: ()) {}

        fn into_arena(self) -> Arena {
            self.arena
        }
    }
}
