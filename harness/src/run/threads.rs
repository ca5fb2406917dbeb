//! The timed passes of a cell on threads: each thread replays its own
//! steps at once on one shared allocator.
//!
//! The slots are shared: a thread publishes each block it allocates with a
//! release store, and a thread that frees a block another thread allocated
//! waits (spinning, then yielding) until that store is visible: the
//! happens-before edge of the free, and the cheapest correct one, since a
//! free of one's own block finds its slot filled and pays one load. A
//! realloc publishes again and counts itself in the slot's realloc count
//! (release); a step on a block another thread reallocated last waits for
//! that count (acquire), the few such steps listed by preparation. Every
//! wait ends, since one order of all the steps exists (the deterministic
//! pass replays it).

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::Barrier;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use heaplab_core::concurrent::{SharedAllocator, SharedBuild, SharedVisitor};
use heaplab_core::{AllocError, Allocator, Arena, OpKind, PerKind};

use crate::prepare::{Step, Threaded};
use crate::replay::{Touch, apply};
use crate::timing::{self, Calibration};

/// A slot no allocation has filled yet.
const EMPTY: *mut u8 = std::ptr::null_mut();

/// A slot whose allocation failed (its free is skipped), or whose block
/// was freed. Never dereferenced.
fn failed() -> *mut u8 {
    std::ptr::dangling_mut::<u8>()
}

/// One block's slot, shared by the threads.
struct SharedSlot {
    ptr: AtomicPtr<u8>,
    /// Reallocs of the block so far, stored (release) after the pointer.
    reallocs: AtomicU32,
    /// Written before `ptr` is published, read after it is seen.
    layout: UnsafeCell<Layout>,
}

/// The slot table of a replay on threads.
pub struct SharedSlots {
    slots: Vec<SharedSlot>,
}

impl std::fmt::Debug for SharedSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSlots").field("slots", &self.slots.len()).finish()
    }
}

// SAFETY: each slot's layout is written only by the thread that holds the
// slot's block (it allocated it, or reallocates it after an acquire load
// of the earlier holder's stores), before the release store of its
// pointer, and read only after an acquire load sees that pointer; the
// blocks are only touched by the thread that holds them (its program's
// steps).
unsafe impl Sync for SharedSlots {}
// SAFETY: as above; moving the table moves no block.
unsafe impl Send for SharedSlots {}

impl SharedSlots {
    /// `count` empty slots.
    pub fn new(count: usize) -> SharedSlots {
        SharedSlots {
            slots: (0..count)
                .map(|_| SharedSlot {
                    ptr: AtomicPtr::new(EMPTY),
                    reallocs: AtomicU32::new(0),
                    layout: UnsafeCell::new(Layout::new::<u8>()),
                })
                .collect(),
        }
    }

    #[inline(always)]
    fn publish(&self, slot: u32, ptr: *mut u8, layout: Layout) {
        let slot = &self.slots[slot as usize];
        // SAFETY: only the thread holding this slot's block writes its
        // layout, and nobody reads it before the release store below.
        unsafe { *slot.layout.get() = layout };
        slot.ptr.store(ptr, Ordering::Release);
    }

    /// A realloc of the block in `slot` is done (it may have failed, or
    /// the slot may hold no block): count it, after publishing any new
    /// pointer. Only the thread that holds the block calls it.
    #[inline(always)]
    fn reallocated(&self, slot: u32) {
        let slot = &self.slots[slot as usize];
        slot.reallocs.store(slot.reallocs.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Wait until the block in `slot` has had `reallocs` reallocs (made by
    /// another thread).
    #[cold]
    fn wait_for_reallocs(&self, slot: u32, reallocs: u32) {
        let slot = &self.slots[slot as usize];
        let mut spins = 0u32;
        while slot.reallocs.load(Ordering::Acquire) < reallocs {
            backoff(&mut spins);
        }
    }

    /// The block in `slot`, waiting for another thread to allocate it.
    #[inline(always)]
    fn take(&self, slot: u32) -> Option<(NonNull<u8>, Layout)> {
        let slot = &self.slots[slot as usize];
        let mut ptr = slot.ptr.load(Ordering::Acquire);
        let mut spins = 0u32;
        while ptr == EMPTY {
            backoff(&mut spins);
            ptr = slot.ptr.load(Ordering::Acquire);
        }
        if ptr == failed() {
            return None;
        }
        // SAFETY: the acquire load saw the pointer the writer published
        // after writing the layout.
        let layout = unsafe { *slot.layout.get() };
        Some((NonNull::new(ptr).expect("published pointers are not null"), layout))
    }

    /// The block in `slot` is gone: nothing for [`SharedSlots::drain`] to
    /// free. (No thread waits on a slot after its free.)
    #[inline(always)]
    fn clear(&self, slot: u32) {
        self.slots[slot as usize].ptr.store(failed(), Ordering::Relaxed);
    }

    /// The live blocks left, emptying every slot.
    fn drain(&mut self) -> Vec<(NonNull<u8>, Layout)> {
        let mut live = Vec::new();
        for slot in &mut self.slots {
            *slot.reallocs.get_mut() = 0;
            let ptr = std::mem::replace(slot.ptr.get_mut(), EMPTY);
            if ptr != EMPTY && ptr != failed() {
                live.push((NonNull::new(ptr).expect("not null"), *slot.layout.get_mut()));
            }
        }
        live
    }
}

/// Wait a little: spin at first, then give the core away (there may be
/// more threads than cores).
#[inline(always)]
fn backoff(spins: &mut u32) {
    if *spins < 64 {
        std::hint::spin_loop();
        *spins += 1;
    } else {
        std::thread::yield_now();
    }
}

/// What a thread calls: a shared allocator with its state, or (on one
/// thread) a single-threaded allocator.
trait Heap {
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError>;
    /// # Safety
    /// `ptr` is live in this heap with `layout`.
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout);
    /// # Safety
    /// As for `free`.
    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError>;
}

struct OnShared<'a, S: SharedAllocator> {
    shared: &'a S,
    local: &'a mut S::Local,
}

impl<S: SharedAllocator> Heap for OnShared<'_, S> {
    #[inline(always)]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.shared.alloc(self.local, layout)
    }
    #[inline(always)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.shared.free(self.local, ptr, layout) }
    }
    #[inline(always)]
    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.shared.realloc(self.local, ptr, old, new_size) }
    }
}

struct Plain<'a, A: Allocator>(&'a mut A);

impl<A: Allocator> Heap for Plain<'_, A> {
    #[inline(always)]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.0.alloc(layout)
    }
    #[inline(always)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.free(ptr, layout) }
    }
    #[inline(always)]
    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.realloc(ptr, old, new_size) }
    }
}

/// Write into a new block: `touch`, then `writes` passes over every byte
/// (the cache benchmarks' work loop).
#[inline(always)]
fn work(touch: Touch, writes: u32, ptr: NonNull<u8>, size: usize) {
    apply(touch, ptr, size);
    for pass in 0..writes {
        for offset in 0..size {
            // SAFETY: `offset < size`, inside the block this thread holds.
            unsafe { ptr.as_ptr().add(offset).write_volatile(pass as u8) };
        }
    }
}

/// Per-kind latency histograms.
type Histograms = PerKind<Histogram<u64>>;

/// Per-kind latency histograms of one thread.
struct Clock {
    calibration: Calibration,
    histograms: PerKind<Histogram<u64>>,
}

impl Clock {
    fn new(calibration: Calibration) -> Clock {
        Clock { calibration, histograms: PerKind::from_fn(|_| Histogram::new(3).expect("3 significant figures")) }
    }

    #[inline(always)]
    fn record(&mut self, kind: OpKind, start: u64) {
        let ns = self.calibration.ns(timing::ticks().wrapping_sub(start));
        self.histograms[kind].record(ns).expect("an auto-resizing histogram takes any u64");
    }
}

/// Replay one thread's steps; `waits` lists those that wait for another
/// thread's realloc (see [`Threaded::waits`]). With a clock, time every call.
#[inline(never)]
fn replay_thread<H: Heap>(
    heap: &mut H,
    steps: &[Step],
    waits: &[(u32, u32)],
    slots: &SharedSlots,
    touch: Touch,
    writes: u32,
    mut clock: Option<&mut Clock>,
) {
    let timed = clock.is_some();
    let start = || if timed { timing::ticks() } else { 0 };
    let mut waits = waits.iter().peekable();
    for (index, step) in steps.iter().enumerate() {
        if let Some(&&(at, reallocs)) = waits.peek()
            && at as usize == index
        {
            waits.next();
            if let Step::Free { slot } | Step::Realloc { slot, .. } = *step {
                slots.wait_for_reallocs(slot, reallocs);
            }
        }
        match *step {
            Step::Alloc { slot, align_log2, size, .. } => {
                // SAFETY: preparation checked that this makes a valid Layout.
                let layout = unsafe { Layout::from_size_align_unchecked(size as usize, 1 << align_log2) };
                let t = start();
                let result = heap.alloc(layout);
                if let Some(clock) = clock.as_deref_mut() {
                    clock.record(OpKind::Alloc, t);
                }
                match result {
                    Ok(ptr) => {
                        work(touch, writes, ptr, layout.size());
                        slots.publish(slot, ptr.as_ptr(), layout);
                    }
                    Err(_) => slots.publish(slot, failed(), layout),
                }
            }
            Step::AllocImpossible { slot, .. } => slots.publish(slot, failed(), Layout::new::<u8>()),
            Step::Free { slot } => {
                if let Some((ptr, layout)) = slots.take(slot) {
                    slots.clear(slot);
                    let t = start();
                    // SAFETY: the slot held a live block of this allocator
                    // with this layout; each slot is freed once.
                    unsafe { heap.free(ptr, layout) };
                    if let Some(clock) = clock.as_deref_mut() {
                        clock.record(OpKind::Free, t);
                    }
                }
            }
            Step::Realloc { slot, size } => {
                let Some((ptr, layout)) = slots.take(slot) else {
                    slots.reallocated(slot);
                    continue;
                };
                let t = start();
                // SAFETY: as for free; on success the slot gets the result.
                let result = unsafe { heap.realloc(ptr, layout, size as usize) };
                if let Some(clock) = clock.as_deref_mut() {
                    clock.record(OpKind::Realloc, t);
                }
                if let Ok(new_ptr) = result {
                    let new = Layout::from_size_align(size as usize, layout.align()).expect("the realloc succeeded");
                    work(touch, 0, new_ptr, new.size());
                    slots.publish(slot, new_ptr.as_ptr(), new);
                }
                slots.reallocated(slot);
            }
        }
    }
}

/// One replay on threads: seconds from the first thread's start to the
/// last thread's end, and the merged latencies if timed per call.
#[derive(Debug)]
pub struct ThreadsRun {
    /// Wall seconds.
    pub seconds: f64,
    /// Latency histograms, with a clock.
    pub histograms: Option<PerKind<Histogram<u64>>>,
}

fn merge(into: &mut Option<PerKind<Histogram<u64>>>, from: PerKind<Histogram<u64>>) {
    match into {
        None => *into = Some(from),
        Some(into) => {
            for kind in OpKind::ALL {
                into[kind].add(&from[kind]).expect("histograms of the same precision add");
            }
        }
    }
}

/// Replay `threaded` on `shared`, one thread per program; leftovers are
/// freed afterwards, untimed.
pub fn run_shared<S: SharedAllocator>(
    shared: &S,
    threaded: &Threaded,
    slots: &mut SharedSlots,
    touch: Touch,
    calibration: Option<Calibration>,
) -> ThreadsRun {
    let count = threaded.programs.len();
    let barrier = Barrier::new(count + 1);
    let shared_slots = &*slots;
    let results: Vec<(Instant, Instant, Option<Histograms>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = threaded
            .programs
            .iter()
            .enumerate()
            .zip(&threaded.waits)
            .map(|((thread, steps), waits)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut local = shared.local(thread);
                    let mut clock = calibration.map(Clock::new);
                    barrier.wait();
                    // Each thread reads the clock itself: the spawning thread
                    // may not run again before the others are done.
                    let start = Instant::now();
                    let mut heap = OnShared { shared, local: &mut local };
                    replay_thread(
                        &mut heap,
                        steps,
                        waits,
                        shared_slots,
                        touch,
                        threaded.writes_per_alloc,
                        clock.as_mut(),
                    );
                    let end = Instant::now();
                    shared.retire(local);
                    (start, end, clock.map(|c| c.histograms))
                })
            })
            .collect();
        barrier.wait();
        handles.into_iter().map(|h| h.join().expect("a replay thread panicked")).collect()
    });
    let mut histograms = None;
    let start = results.iter().map(|r| r.0).min().expect("at least one thread");
    let end = results.iter().map(|r| r.1).max().expect("at least one thread");
    for (_, _, clock) in results {
        if let Some(clock) = clock {
            merge(&mut histograms, clock);
        }
    }
    let mut local = shared.local(0);
    for (ptr, layout) in slots.drain() {
        // SAFETY: a live block of this allocator with this layout, held by
        // nobody now that the threads are done.
        unsafe { shared.free(&mut local, ptr, layout) };
    }
    shared.retire(local);
    ThreadsRun { seconds: end.duration_since(start).as_secs_f64(), histograms }
}

/// Replay the one thread of `threaded` on a single-threaded allocator.
pub fn run_plain<A: Allocator>(
    allocator: &mut A,
    threaded: &Threaded,
    slots: &mut SharedSlots,
    touch: Touch,
    calibration: Option<Calibration>,
) -> ThreadsRun {
    debug_assert_eq!(threaded.programs.len(), 1, "a single-threaded allocator runs one thread");
    let mut clock = calibration.map(Clock::new);
    let start = Instant::now();
    replay_thread(
        &mut Plain(allocator),
        &threaded.programs[0],
        &threaded.waits[0],
        slots,
        touch,
        threaded.writes_per_alloc,
        clock.as_mut(),
    );
    let seconds = start.elapsed().as_secs_f64();
    for (ptr, layout) in slots.drain() {
        // SAFETY: a live block of this allocator with this layout.
        unsafe { allocator.free(ptr, layout) };
    }
    ThreadsRun { seconds, histograms: clock.map(|c| c.histograms) }
}

/// Build a thread-safe allocator on the arena, run one replay on threads,
/// give the arena back: the [`SharedVisitor`] of a timed pass.
#[derive(Debug)]
pub struct SharedReplay<'a> {
    /// The cell's threads.
    pub threaded: &'a Threaded,
    /// The arena, taken and given back.
    pub arena: &'a mut Option<Arena>,
    /// The slots.
    pub slots: &'a mut SharedSlots,
    /// Touch mode.
    pub touch: Touch,
    /// Time every call?
    pub calibration: Option<Calibration>,
}

impl SharedVisitor for SharedReplay<'_> {
    type Output = Result<ThreadsRun, heaplab_core::BuildError>;

    fn visit<B: SharedBuild>(self, build: &B) -> Self::Output {
        let arena = self.arena.take().expect("the arena is back between replays");
        let shared = build.build_shared(arena, self.threaded.threads as usize)?;
        let run = run_shared(&shared, self.threaded, self.slots, self.touch, self.calibration);
        *self.arena = Some(shared.into_arena());
        Ok(run)
    }
}
