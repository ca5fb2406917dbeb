//! The concurrent side of the contract: allocators many threads call at once.
//!
//! The single-threaded [`Allocator`] stays as it is (`&mut self`). A
//! [`SharedAllocator`] is called through `&self` from many threads; each
//! thread brings its own [`SharedAllocator::Local`] state (a thread cache,
//! or nothing), which is what a real allocator keeps in thread-local
//! storage. Making that state explicit keeps it out of hidden globals, so
//! that one process can hold many allocators and the harness can replay a
//! fixed interleaving of the threads on one thread (the deterministic pass).
//!
//! Two layers make a thread-safe allocator of any heaplab allocator on the
//! shared arena:
//!
//! - [`Locked`]: one lock around the allocator, the naive baseline and how
//!   bounded allocators such as talc and rlsf are used in practice.
//! - [`Cached`]: per-thread magazines of free blocks per size class over a
//!   depot of full magazines (Bonwick & Adams 2001), with frees of another
//!   thread's block returned to the thread that owns it, as SLUB's per-CPU
//!   slabs and mimalloc's thread-free lists do. Its cached blocks are
//!   bounded; see [`CacheParams::bound_bytes`].
//!
//! [`Interleaved`] turns a layer back into an [`Allocator`]: the thread each
//! call runs as is set by [`Allocator::set_thread`], so the same code runs
//! the metrics pass, the conformance suite and single-threaded replays.

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, Detail, FreeShape, HeapStats, InvariantViolation,
    Reports, SetupError, Spec, SpecError, Visitor, Waste,
};

/// The most threads a layer serves: block owners are kept in 16 bits.
pub const MAX_THREADS: usize = 4096;

/// An allocator that many threads call at once.
pub trait SharedAllocator: Send + Sync + Sized {
    /// What each thread keeps of its own (its cache); `()` for none.
    type Local: Send;

    /// The state of thread `thread` (`0..threads` of the build), made once
    /// per thread before it allocates.
    fn local(&self, thread: usize) -> Self::Local;

    /// Allocate on behalf of the thread whose state is `local`.
    fn alloc(&self, local: &mut Self::Local, layout: Layout) -> Result<NonNull<u8>, AllocError>;

    /// Free a block, which any thread may have allocated.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator with this `layout`, and no
    /// thread uses it any more.
    unsafe fn free(&self, local: &mut Self::Local, ptr: NonNull<u8>, layout: Layout);

    /// Resize a block; the default moves it (allocate, copy, free).
    ///
    /// # Safety
    /// As for [`SharedAllocator::free`].
    unsafe fn realloc(
        &self,
        local: &mut Self::Local,
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let new = Layout::from_size_align(new_size, old.align())
            .map_err(|_| AllocError::Unsupported("size overflows isize"))?;
        let new_ptr = self.alloc(local, new)?;
        // SAFETY: both blocks are live and distinct, each at least
        // `min(old, new)` bytes long.
        unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), new_ptr.as_ptr(), old.size().min(new_size)) };
        // SAFETY: forwarded from the caller.
        unsafe { self.free(local, ptr, old) };
        Ok(new_ptr)
    }

    /// A thread is done: give back what its state holds.
    fn retire(&self, local: Self::Local);

    /// What the thread caches and the depot hold for reuse, and the bound
    /// on it; zero for an allocator without caches.
    ///
    /// # Safety
    /// No thread calls into the allocator meanwhile (the figures walk lists
    /// other threads would change).
    unsafe fn cache_figures(&self, _locals: &[Self::Local]) -> CacheFigures {
        CacheFigures::default()
    }

    /// Take the arena back, every thread retired.
    fn into_arena(self) -> Arena;
}

/// Bytes held in caches: neither live nor free in the allocator beneath.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheFigures {
    /// Size-class bytes of the blocks in thread magazines, the depot and
    /// the remote-free lists.
    pub cached_bytes: usize,
    /// The most they can be, from the layer's parameters.
    pub bound_bytes: usize,
}

/// A thread-safe build of a configuration, for the timed passes on threads.
pub trait SharedBuild {
    /// The thread-safe allocator.
    type Shared: SharedAllocator;
    /// The canonical spec.
    fn shared_spec(&self) -> String;
    /// Build it on `arena` for `threads` threads, without counters (the
    /// timed build).
    fn build_shared(&self, arena: Arena, threads: usize) -> Result<Self::Shared, BuildError>;
}

/// Something to run with a thread-safe build's concrete type.
pub trait SharedVisitor {
    /// What the visit produces.
    type Output;
    /// Run with `build`.
    fn visit<B: SharedBuild>(self, build: &B) -> Self::Output;
}

/// Something to run with a configuration whose allocators may move to
/// another thread (what a layer needs of the allocator beneath it).
pub trait SendVisitor {
    /// What the visit produces.
    type Output;
    /// Run with `config`.
    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output
    where
        C::Allocator: Send,
        C::Timed: Send;
}

/// The [`Visitor`] behind [`AllocatorConfig::accept_send`]: it reaches the
/// configuration `accept` dispatches to and asks it [`AllocatorConfig::as_send`].
#[derive(Debug)]
pub struct SendBridge<V>(pub V);

impl<V: SendVisitor> Visitor for SendBridge<V> {
    type Output = Option<V::Output>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Option<V::Output> {
        config.as_send(self.0)
    }
}

/// A [`Visitor`] that reaches the configuration `accept` dispatches to and
/// asks it for its thread-safe build ([`AllocatorConfig::visit_shared`]).
#[derive(Debug)]
pub struct SharedBridge<V>(pub V);

impl<V: SharedVisitor> Visitor for SharedBridge<V> {
    type Output = Option<V::Output>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Option<V::Output> {
        config.visit_shared(self.0)
    }
}

/// A value behind a lock, readable without it by whoever owns the whole.
///
/// `std::sync::Mutex` hands out its value only through a guard; the
/// [`Interleaved`] adapter must also lend `&Arena` for as long as it is
/// borrowed, which it can do soundly because it is the only user of the
/// layer (it owns it and is not `Sync`).
struct Guarded<A> {
    lock: Mutex<()>,
    value: UnsafeCell<A>,
}

// SAFETY: the value is only reached under the lock (`with`), through `&mut
// self` (`get_mut`), or by a caller that guarantees no other access
// (`get_unshared`); it moves between threads only as `A: Send` allows.
unsafe impl<A: Send> Sync for Guarded<A> {}

impl<A> Guarded<A> {
    fn new(value: A) -> Guarded<A> {
        Guarded { lock: Mutex::new(()), value: UnsafeCell::new(value) }
    }

    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut A) -> R) -> R {
        let _held: MutexGuard<'_, ()> = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: the lock is held, so no other reference to the value exists.
        f(unsafe { &mut *self.value.get() })
    }

    fn get_mut(&mut self) -> &mut A {
        self.value.get_mut()
    }

    /// # Safety
    /// No thread calls [`Guarded::with`] while the reference lives.
    unsafe fn get_unshared(&self) -> &A {
        // SAFETY: the caller guarantees that nobody mutates the value meanwhile.
        unsafe { &*self.value.get() }
    }

    fn into_inner(self) -> A {
        self.value.into_inner()
    }
}

/// A layer over an allocator: what [`Interleaved`] needs to report for it.
pub trait Layer: SharedAllocator {
    /// The allocator beneath.
    type Inner: Allocator;
    /// The layout the allocator beneath saw for a block of `layout`.
    fn inner_layout(&self, layout: Layout) -> Layout;
    /// The allocator beneath.
    fn inner_mut(&mut self) -> &mut Self::Inner;
    /// The allocator beneath, read without the lock.
    ///
    /// # Safety
    /// No thread calls into the layer while the reference lives.
    unsafe fn inner_unshared(&self) -> &Self::Inner;
    /// Give every cached block back to the allocator beneath (`trim`).
    fn flush(&mut self, locals: &mut [Self::Local]);
    /// Verify the layer's own invariants.
    fn check_layer(&self, _locals: &[Self::Local]) -> Result<(), InvariantViolation> {
        Ok(())
    }
    /// The allocator beneath, every thread retired.
    fn into_inner(self) -> Self::Inner;
}

// ---------------------------------------------------------------------------
// Locked

/// One lock around an allocator: every call takes it.
pub struct Locked<A> {
    inner: Guarded<A>,
}

impl<A: Allocator> std::fmt::Debug for Locked<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locked").finish_non_exhaustive()
    }
}

impl<A: Allocator + Send> Locked<A> {
    /// The lock around `inner`.
    pub fn new(inner: A) -> Locked<A> {
        Locked { inner: Guarded::new(inner) }
    }
}

impl<A: Allocator + Send> SharedAllocator for Locked<A> {
    type Local = ();

    fn local(&self, _thread: usize) {}

    #[inline]
    fn alloc(&self, _local: &mut (), layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.inner.with(|a| a.alloc(layout))
    }

    #[inline]
    unsafe fn free(&self, _local: &mut (), ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        self.inner.with(|a| unsafe { a.free(ptr, layout) })
    }

    #[inline]
    unsafe fn realloc(
        &self,
        _local: &mut (),
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller.
        self.inner.with(|a| unsafe { a.realloc(ptr, old, new_size) })
    }

    fn retire(&self, _local: ()) {}

    fn into_arena(self) -> Arena {
        self.inner.into_inner().into_arena()
    }
}

impl<A: Allocator + Send> Layer for Locked<A> {
    type Inner = A;

    fn inner_layout(&self, layout: Layout) -> Layout {
        layout
    }

    fn inner_mut(&mut self) -> &mut A {
        self.inner.get_mut()
    }

    unsafe fn inner_unshared(&self) -> &A {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.get_unshared() }
    }

    fn flush(&mut self, _locals: &mut [()]) {}

    fn into_inner(self) -> A {
        self.inner.into_inner()
    }
}

// ---------------------------------------------------------------------------
// Cached

/// The thread-caching layer's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheParams {
    /// Blocks per magazine (Bonwick & Adams's M).
    pub magazine: usize,
    /// Full magazines the depot keeps per size class.
    pub depot: usize,
    /// The largest request the layer caches; larger ones, and alignments
    /// above 16, go to the allocator beneath under its lock.
    pub max_size: usize,
}

impl Default for CacheParams {
    fn default() -> CacheParams {
        CacheParams { magazine: 64, depot: 4, max_size: 1024 }
    }
}

/// Alignment of every cached block.
const CACHE_ALIGN: usize = 16;

impl CacheParams {
    /// The size classes: 16-byte steps to 128, then four per power of two
    /// up to `max_size` (as jemalloc's and mimalloc's small classes space
    /// them: at most 25% rounding above 128 bytes).
    pub fn classes(&self) -> Vec<usize> {
        let mut classes: Vec<usize> = (1..=8).map(|k| k * 16).filter(|&c| c <= self.max_size).collect();
        let mut base = 128;
        while base < self.max_size {
            for step in 1..=4 {
                let class = base + step * base / 4;
                if class <= self.max_size {
                    classes.push(class);
                }
            }
            base *= 2;
        }
        classes
    }

    /// The most bytes the caches can hold with `threads` threads, in size-
    /// class bytes: per thread and class two magazines (loaded and
    /// previous), per class `depot` full magazines, and per thread a
    /// remote-free list of at most one magazine of the largest class.
    pub fn bound_bytes(&self, threads: usize) -> usize {
        let classes = self.classes();
        let per_class: usize = classes.iter().sum::<usize>() * self.magazine;
        per_class * (2 * threads + self.depot) + threads * self.magazine * self.max_size
    }

    fn validate(&self) -> Result<(), SetupError> {
        if !(1..=4096).contains(&self.magazine) {
            return Err(SetupError::parameter("mag", "be between 1 and 4096", self.magazine));
        }
        if self.depot > 1 << 16 {
            return Err(SetupError::parameter("depot", "be at most 65536", self.depot));
        }
        if !self.max_size.is_power_of_two() || !(128..=65536).contains(&self.max_size) {
            return Err(SetupError::parameter("max", "be a power of two from 128 to 64K", self.max_size));
        }
        Ok(())
    }
}

/// A free block on a remote-free list, written into the block itself.
#[repr(C)]
struct Node {
    next: *mut Node,
    class: usize,
}

/// One thread's list of blocks other threads freed, on its own cache lines.
#[repr(align(128))]
struct Remote {
    head: AtomicPtr<Node>,
    count: AtomicUsize,
}

/// One class's two magazines in a thread (Bonwick & Adams's loaded and
/// previous rounds).
#[derive(Debug, Default)]
struct Rounds {
    loaded: Vec<NonNull<u8>>,
    previous: Vec<NonNull<u8>>,
}

/// A thread's state in [`Cached`].
#[derive(Debug)]
pub struct ThreadCache {
    thread: u16,
    rounds: Vec<Rounds>,
}

// SAFETY: the pointers are free blocks of the layer's arena that this
// thread's cache owns; moving the cache moves that ownership, nothing else.
unsafe impl Send for ThreadCache {}

/// Full and empty magazines of one class.
#[derive(Debug, Default)]
struct Depot {
    full: Vec<Vec<NonNull<u8>>>,
    empty: Vec<Vec<NonNull<u8>>>,
}

// SAFETY: as for `ThreadCache`: free blocks the depot owns.
unsafe impl Send for Depot {}

/// Per-thread magazines of free blocks per size class over a depot, and
/// remote frees returned to the block's owner.
///
/// - **alloc**: pop the class's loaded magazine; else swap in the previous
///   one if full; else take back the blocks other threads freed; else a full
///   magazine from the depot; else a batch of half a magazine from the
///   allocator beneath, under its lock. If that fails, the thread's caches
///   and the depot are flushed and the request tried once more, so cached
///   memory never makes a request fail that the heap could serve.
/// - **free** of an own block: push onto the loaded magazine; if full, swap
///   with the previous if empty; else the previous (full) goes to the depot
///   and an empty one comes back; a depot already holding `depot` full
///   magazines gets none, and that magazine is freed to the heap beneath.
/// - **free** of another thread's block: pushed onto its owner's remote
///   list (lock-free), which the owner takes back on its next miss. When
///   the list already holds a magazine's worth, the freeing thread adopts
///   the block into its own magazines instead.
///
/// Block owners live in a table beside the arena (two bytes per 16), as
/// mimalloc keeps them in its page headers. Magazines are vectors outside
/// the arena, as the kernel's are kmem-allocated.
pub struct Cached<A> {
    inner: Guarded<A>,
    params: CacheParams,
    threads: usize,
    classes: Vec<usize>,
    /// Class index of each size, per 16 bytes: `class_of[(size - 1) / 16]`.
    class_of: Vec<u8>,
    depot: Vec<Mutex<Depot>>,
    remote: Box<[Remote]>,
    owner: Box<[AtomicU16]>,
    base: usize,
    len: usize,
}

impl<A> std::fmt::Debug for Cached<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached").field("params", &self.params).field("threads", &self.threads).finish_non_exhaustive()
    }
}

impl<A: Allocator + Send> Cached<A> {
    /// The layer over `inner` for `threads` threads.
    pub fn new(inner: A, params: CacheParams, threads: usize) -> Result<Cached<A>, SetupError> {
        params.validate()?;
        if !(1..=MAX_THREADS).contains(&threads) {
            return Err(SetupError::parameter("threads", format!("be between 1 and {MAX_THREADS}"), threads));
        }
        if !inner.reports().in_arena {
            return Err(SetupError::Peer(
                "the cached layer keeps block owners by arena offset; this allocator's blocks are not in the arena"
                    .into(),
            ));
        }
        let classes = params.classes();
        let class_of = (0..params.max_size / 16)
            .map(|granule| {
                let size = granule * 16 + 1;
                classes.iter().position(|&class| class >= size).expect("max_size is a class") as u8
            })
            .collect();
        let (base, len) = (inner.arena().base().as_ptr() as usize, inner.arena().len());
        let remote = (0..threads).map(|_| Remote { head: AtomicPtr::default(), count: AtomicUsize::new(0) }).collect();
        // A zeroed allocation is lazily mapped: pages of the table fault in
        // as blocks are cached there, not all at once (0: no owner yet).
        let zeroed: Box<[u16]> = vec![0u16; len / 16].into_boxed_slice();
        // SAFETY: `AtomicU16` has the size, alignment and bit validity of
        // `u16`, so a boxed slice of one is a boxed slice of the other.
        let owner: Box<[AtomicU16]> = unsafe { Box::from_raw(Box::into_raw(zeroed) as *mut [AtomicU16]) };
        Ok(Cached {
            inner: Guarded::new(inner),
            params,
            threads,
            depot: classes.iter().map(|_| Mutex::default()).collect(),
            classes,
            class_of,
            remote,
            owner,
            base,
            len,
        })
    }

    /// The class of `layout`, if the layer caches it.
    #[inline(always)]
    fn class(&self, layout: Layout) -> Option<usize> {
        if layout.size() > self.params.max_size || layout.align() > CACHE_ALIGN {
            return None;
        }
        Some(self.class_of[layout.size().saturating_sub(1) / 16] as usize)
    }

    #[inline(always)]
    fn class_layout(&self, class: usize) -> Layout {
        // SAFETY: classes are multiples of 16 far below isize::MAX.
        unsafe { Layout::from_size_align_unchecked(self.classes[class], CACHE_ALIGN) }
    }

    /// The owner of a cached-class block, as stored: thread + 1.
    #[inline(always)]
    fn owner_slot(&self, ptr: NonNull<u8>) -> &AtomicU16 {
        let offset = ptr.as_ptr() as usize - self.base;
        debug_assert!(offset < self.len);
        &self.owner[offset / 16]
    }

    #[inline(always)]
    fn own(&self, ptr: NonNull<u8>, thread: u16) {
        // Relaxed: the block reaches another thread only through the
        // caller's own synchronisation (a release store of the pointer),
        // which orders this write before that thread reads the owner.
        self.owner_slot(ptr).store(thread + 1, Ordering::Relaxed);
    }

    fn lock_depot(&self, class: usize) -> MutexGuard<'_, Depot> {
        self.depot[class].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Return `blocks` of `class` to the heap beneath, under one lock.
    fn release(&self, class: usize, blocks: &mut Vec<NonNull<u8>>) {
        if blocks.is_empty() {
            return;
        }
        let layout = self.class_layout(class);
        self.inner.with(|a| {
            for ptr in blocks.drain(..) {
                // SAFETY: a cached block is a live block of the heap beneath
                // with its class layout, and nobody else holds it.
                unsafe { a.free(ptr, layout) };
            }
        });
    }

    /// Take back the blocks other threads freed to `cache`'s thread.
    fn drain_remote(&self, cache: &mut ThreadCache) {
        let remote = &self.remote[cache.thread as usize];
        if remote.head.load(Ordering::Relaxed).is_null() {
            return;
        }
        // Acquire: every pusher wrote its node before its release CAS.
        let mut node = remote.head.swap(std::ptr::null_mut(), Ordering::Acquire);
        let mut taken = 0;
        while let Some(current) = NonNull::new(node) {
            // SAFETY: each node is a free block of ours that a remote free
            // wrote a `Node` into before publishing it; nobody else reads it.
            let Node { next, class } = unsafe { current.as_ptr().read() };
            node = next;
            taken += 1;
            self.put_own(cache, class, current.cast());
        }
        remote.count.fetch_sub(taken, Ordering::Relaxed);
    }

    /// A free block of this thread's own into its magazines.
    #[inline(always)]
    fn put_own(&self, cache: &mut ThreadCache, class: usize, ptr: NonNull<u8>) {
        let magazine = self.params.magazine;
        let rounds = &mut cache.rounds[class];
        if rounds.loaded.len() < magazine {
            rounds.loaded.push(ptr);
            return;
        }
        if rounds.previous.is_empty() {
            std::mem::swap(&mut rounds.loaded, &mut rounds.previous);
            rounds.loaded.push(ptr);
            return;
        }
        self.put_slow(cache, class, ptr);
    }

    #[cold]
    fn put_slow(&self, cache: &mut ThreadCache, class: usize, ptr: NonNull<u8>) {
        let rounds = &mut cache.rounds[class];
        let mut depot = self.lock_depot(class);
        if depot.full.len() < self.params.depot {
            let empty = depot.empty.pop().unwrap_or_else(|| Vec::with_capacity(self.params.magazine));
            let full = std::mem::replace(&mut rounds.previous, empty);
            depot.full.push(full);
            drop(depot);
        } else {
            drop(depot);
            self.release(class, &mut rounds.previous);
        }
        std::mem::swap(&mut rounds.loaded, &mut rounds.previous);
        rounds.loaded.push(ptr);
    }

    #[cold]
    fn refill(&self, cache: &mut ThreadCache, class: usize) -> Result<NonNull<u8>, AllocError> {
        self.drain_remote(cache);
        if let Some(ptr) = pop(&mut cache.rounds[class]) {
            return Ok(ptr);
        }
        let full = {
            let mut depot = self.lock_depot(class);
            let full = depot.full.pop();
            if full.is_some() && depot.empty.len() < self.params.depot {
                let empty = std::mem::take(&mut cache.rounds[class].loaded);
                depot.empty.push(empty);
            }
            full
        };
        if let Some(full) = full {
            for &ptr in &full {
                self.own(ptr, cache.thread);
            }
            let rounds = &mut cache.rounds[class];
            rounds.loaded = full;
            return Ok(rounds.loaded.pop().expect("a full magazine"));
        }
        let layout = self.class_layout(class);
        let batch = (self.params.magazine / 2).max(1);
        let rounds = &mut cache.rounds[class];
        let first = self.inner.with(|a| {
            let first = a.alloc(layout)?;
            for _ in 1..batch {
                match a.alloc(layout) {
                    Ok(ptr) => rounds.loaded.push(ptr),
                    Err(_) => break,
                }
            }
            Ok(first)
        });
        match first {
            Ok(first) => {
                self.own(first, cache.thread);
                for &ptr in &rounds.loaded {
                    self.own(ptr, cache.thread);
                }
                Ok(first)
            }
            Err(error) => {
                // Cached memory must not make a request fail that the heap
                // could serve: give it all back and try once more.
                self.flush_thread(cache);
                self.flush_depot();
                let ptr = self.inner.with(|a| a.alloc(layout)).map_err(|_| error)?;
                self.own(ptr, cache.thread);
                Ok(ptr)
            }
        }
    }

    fn flush_thread(&self, cache: &mut ThreadCache) {
        self.drain_remote(cache);
        for class in 0..self.classes.len() {
            let rounds = &mut cache.rounds[class];
            let (mut loaded, mut previous) = (std::mem::take(&mut rounds.loaded), std::mem::take(&mut rounds.previous));
            self.release(class, &mut loaded);
            self.release(class, &mut previous);
            // Keep the vectors' room for the next round of caching.
            (rounds.loaded, rounds.previous) = (loaded, previous);
        }
    }

    /// Give the depot's magazines and every thread's remote-free list back
    /// to the heap beneath. Safe at any time: a list is taken by one atomic
    /// swap, so its owner then finds it empty.
    fn flush_depot(&self) {
        for remote in self.remote.iter() {
            let mut node = remote.head.swap(std::ptr::null_mut(), Ordering::Acquire);
            let mut taken = 0;
            while let Some(current) = NonNull::new(node) {
                // SAFETY: as in `drain_remote`: a published free block
                // holding a `Node`, now ours alone.
                let Node { next, class } = unsafe { current.as_ptr().read() };
                node = next;
                taken += 1;
                let layout = self.class_layout(class);
                // SAFETY: a cached block is live in the heap beneath with its
                // class layout.
                self.inner.with(|a| unsafe { a.free(current.cast(), layout) });
            }
            remote.count.fetch_sub(taken, Ordering::Relaxed);
        }
        for class in 0..self.classes.len() {
            let full = std::mem::take(&mut self.lock_depot(class).full);
            for mut magazine in full {
                self.release(class, &mut magazine);
            }
        }
    }
}

#[inline(always)]
fn pop(rounds: &mut Rounds) -> Option<NonNull<u8>> {
    if let Some(ptr) = rounds.loaded.pop() {
        return Some(ptr);
    }
    if !rounds.previous.is_empty() {
        std::mem::swap(&mut rounds.loaded, &mut rounds.previous);
        return rounds.loaded.pop();
    }
    None
}

impl<A: Allocator + Send> SharedAllocator for Cached<A> {
    type Local = ThreadCache;

    fn local(&self, thread: usize) -> ThreadCache {
        assert!(thread < self.threads, "thread {thread} of a layer built for {}", self.threads);
        let magazine = self.params.magazine;
        let rounds = self
            .classes
            .iter()
            .map(|_| Rounds { loaded: Vec::with_capacity(magazine), previous: Vec::with_capacity(magazine) })
            .collect();
        ThreadCache { thread: thread as u16, rounds }
    }

    #[inline]
    fn alloc(&self, cache: &mut ThreadCache, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let Some(class) = self.class(layout) else {
            return self.inner.with(|a| a.alloc(layout));
        };
        if let Some(ptr) = pop(&mut cache.rounds[class]) {
            return Ok(ptr);
        }
        self.refill(cache, class)
    }

    #[inline]
    unsafe fn free(&self, cache: &mut ThreadCache, ptr: NonNull<u8>, layout: Layout) {
        let Some(class) = self.class(layout) else {
            // SAFETY: forwarded from the caller; uncached blocks are the
            // heap beneath's with this layout.
            return self.inner.with(|a| unsafe { a.free(ptr, layout) });
        };
        let owner = self.owner_slot(ptr).load(Ordering::Relaxed).wrapping_sub(1);
        debug_assert!((owner as usize) < self.threads, "a cached-class block without an owner");
        if owner == cache.thread {
            self.put_own(cache, class, ptr);
            return;
        }
        let remote = &self.remote[owner as usize];
        if remote.count.fetch_add(1, Ordering::Relaxed) >= self.params.magazine {
            // The owner's list is full: this thread adopts the block, as
            // Bonwick's magazines take any free on the freeing CPU.
            remote.count.fetch_sub(1, Ordering::Relaxed);
            self.own(ptr, cache.thread);
            self.put_own(cache, class, ptr);
            return;
        }
        let node = ptr.cast::<Node>();
        let mut head = remote.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the block is at least 16 bytes, 16-aligned, and ours
            // until the CAS below publishes it.
            unsafe { node.as_ptr().write(Node { next: head, class }) };
            match remote.head.compare_exchange_weak(head, node.as_ptr(), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    unsafe fn realloc(
        &self,
        cache: &mut ThreadCache,
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let new = Layout::from_size_align(new_size, old.align())
            .map_err(|_| AllocError::Unsupported("size overflows isize"))?;
        match (self.class(old), self.class(new)) {
            // The same class: the block already holds the new size.
            (Some(a), Some(b)) if a == b => Ok(ptr),
            // SAFETY: forwarded from the caller; both uncached.
            (None, None) => self.inner.with(|a| unsafe { a.realloc(ptr, old, new_size) }),
            _ => {
                let new_ptr = self.alloc(cache, new)?;
                // SAFETY: distinct live blocks, each at least min(old, new) long.
                unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), new_ptr.as_ptr(), old.size().min(new_size)) };
                // SAFETY: forwarded from the caller.
                unsafe { self.free(cache, ptr, old) };
                Ok(new_ptr)
            }
        }
    }

    fn retire(&self, mut cache: ThreadCache) {
        self.flush_thread(&mut cache);
    }

    unsafe fn cache_figures(&self, locals: &[ThreadCache]) -> CacheFigures {
        // SAFETY: forwarded from the caller.
        unsafe { self.figures(locals.iter()) }
    }

    fn into_arena(mut self) -> Arena {
        self.flush_depot();
        self.inner.get_mut().trim();
        self.inner.into_inner().into_arena()
    }
}

impl<A: Allocator + Send> Layer for Cached<A> {
    type Inner = A;

    fn inner_layout(&self, layout: Layout) -> Layout {
        match self.class(layout) {
            Some(class) => self.class_layout(class),
            None => layout,
        }
    }

    fn inner_mut(&mut self) -> &mut A {
        self.inner.get_mut()
    }

    unsafe fn inner_unshared(&self) -> &A {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.get_unshared() }
    }

    fn flush(&mut self, locals: &mut [ThreadCache]) {
        for cache in locals {
            self.flush_thread(cache);
        }
        self.flush_depot();
    }

    fn check_layer(&self, locals: &[ThreadCache]) -> Result<(), InvariantViolation> {
        self.check_caches(locals.iter())
    }

    fn into_inner(self) -> A {
        self.flush_depot();
        self.inner.into_inner()
    }
}

impl<A: Allocator + Send> Cached<A> {
    fn check_caches<'a>(&self, locals: impl Iterator<Item = &'a ThreadCache>) -> Result<(), InvariantViolation> {
        let fail = |offset: usize, what: String| Err(InvariantViolation { offset: Some(offset), what });
        let mut seen = std::collections::HashSet::new();
        for cache in locals {
            for (class, rounds) in cache.rounds.iter().enumerate() {
                for (which, magazine) in [("loaded", &rounds.loaded), ("previous", &rounds.previous)] {
                    if magazine.len() > self.params.magazine {
                        return fail(0, format!("thread {}'s {which} magazine holds {}", cache.thread, magazine.len()));
                    }
                    for &ptr in magazine {
                        let offset = ptr.as_ptr() as usize - self.base;
                        let owner = self.owner_slot(ptr).load(Ordering::Relaxed).wrapping_sub(1);
                        if owner != cache.thread {
                            return fail(
                                offset,
                                format!("a class-{class} block in thread {}'s cache is owned by {owner}", cache.thread),
                            );
                        }
                        if !seen.insert(offset) {
                            return fail(offset, "a block is cached twice".into());
                        }
                    }
                }
            }
        }
        for (class, depot) in self.depot.iter().enumerate() {
            let depot = depot.lock().unwrap_or_else(PoisonError::into_inner);
            if depot.full.len() > self.params.depot {
                return fail(0, format!("the class-{class} depot holds {} full magazines", depot.full.len()));
            }
            for &ptr in depot.full.iter().flatten() {
                if !seen.insert(ptr.as_ptr() as usize - self.base) {
                    return fail(ptr.as_ptr() as usize - self.base, "a block is cached twice".into());
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Interleaved

/// A layer driven as an [`Allocator`]: each call runs as the thread
/// [`Allocator::set_thread`] last named, with that thread's state. It
/// replays a fixed interleaving of the threads' ops on one thread, so that
/// every fragmentation figure of a layered allocator is exact.
///
/// Its stats are what the threads see: live blocks, requested bytes and
/// granted bytes (what the heap beneath grants for each block's class) of
/// the blocks the threads hold; blocks in caches are `cached_bytes`.
pub struct Interleaved<L: Layer, const C: bool = true> {
    layer: L,
    locals: Vec<L::Local>,
    current: usize,
    live_blocks: usize,
    requested_bytes: usize,
    granted_bytes: usize,
    /// Not `Sync`: `&self` methods read the layer without its lock.
    _single: PhantomData<std::cell::Cell<()>>,
}

impl<L: Layer, const C: bool> std::fmt::Debug for Interleaved<L, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interleaved").field("threads", &self.locals.len()).finish_non_exhaustive()
    }
}

impl<L: Layer, const C: bool> Interleaved<L, C> {
    /// Drive `layer` as `threads` threads.
    pub fn new(layer: L, threads: usize) -> Interleaved<L, C> {
        let locals = (0..threads.max(1)).map(|thread| layer.local(thread)).collect();
        Interleaved {
            layer,
            locals,
            current: 0,
            live_blocks: 0,
            requested_bytes: 0,
            granted_bytes: 0,
            _single: PhantomData,
        }
    }

    fn inner(&self) -> &L::Inner {
        // SAFETY: this adapter owns the layer and is not `Sync`: while
        // `&self` lives nobody can call into the layer (that takes `&mut
        // self` here) and no other thread can reach it.
        unsafe { self.layer.inner_unshared() }
    }

    /// The cache figures now.
    pub fn cache_figures(&self) -> CacheFigures {
        // SAFETY: as in `inner`: nobody else calls into the layer.
        unsafe { self.layer.cache_figures(&self.locals) }
    }

    fn granted_of(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        self.inner().granted(ptr, self.layer.inner_layout(layout))
    }

    fn count_in(&mut self, ptr: NonNull<u8>, layout: Layout) {
        if C {
            self.live_blocks += 1;
            self.requested_bytes += layout.size();
            self.granted_bytes += self.granted_of(ptr, layout);
        }
    }

    fn count_out(&mut self, ptr: NonNull<u8>, layout: Layout) {
        if C {
            self.live_blocks -= 1;
            self.requested_bytes -= layout.size();
            self.granted_bytes -= self.granted_of(ptr, layout);
        }
    }
}

impl<L: Layer, const C: bool> Allocator for Interleaved<L, C> {
    fn arena(&self) -> &Arena {
        self.inner().arena()
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let ptr = self.layer.alloc(&mut self.locals[self.current], layout)?;
        self.count_in(ptr, layout);
        Ok(ptr)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.count_out(ptr, layout);
        // SAFETY: forwarded from the caller.
        unsafe { self.layer.free(&mut self.locals[self.current], ptr, layout) }
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let before = if C { self.granted_of(ptr, old) } else { 0 };
        // SAFETY: forwarded from the caller.
        let new_ptr = unsafe { self.layer.realloc(&mut self.locals[self.current], ptr, old, new_size)? };
        if C {
            let new = Layout::from_size_align(new_size, old.align()).expect("the realloc succeeded");
            self.requested_bytes = self.requested_bytes - old.size() + new_size;
            self.granted_bytes = self.granted_bytes - before + self.granted_of(new_ptr, new);
        }
        Ok(new_ptr)
    }

    fn granted(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        self.granted_of(ptr, layout)
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        let inner = self.layer.inner_layout(layout);
        let waste = self.inner().waste(ptr, inner);
        // The layer's own rounding to its class, then the heap's; an
        // alignment the class raised counts as overhead, as the heap's does.
        let class_rounding = inner.size() - layout.size();
        Waste { rounding: waste.rounding + class_rounding, overhead: waste.overhead }
    }

    fn stats(&self) -> HeapStats {
        let mut stats = self.inner().stats();
        if C {
            stats.live_blocks = self.live_blocks;
            stats.requested_bytes = self.requested_bytes;
            stats.granted_bytes = self.granted_bytes;
            let figures = self.cache_figures();
            stats.cached_bytes = figures.cached_bytes;
            stats.cache_bound_bytes = figures.bound_bytes;
        }
        stats
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        self.inner().for_each_free(visit)
    }

    fn free_shape(&self) -> FreeShape {
        self.inner().free_shape()
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        self.inner().check()?;
        self.layer.check_layer(&self.locals)
    }

    fn reports(&self) -> Reports {
        let reports = self.inner().reports();
        if C { reports } else { reports.uncounted() }
    }

    fn details(&self) -> Vec<Detail> {
        self.inner().details()
    }

    fn into_arena(self) -> Arena {
        let Interleaved { layer, locals, .. } = self;
        for local in locals {
            layer.retire(local);
        }
        layer.into_arena()
    }

    fn trim(&mut self) {
        self.layer.flush(&mut self.locals);
        self.layer.inner_mut().trim();
    }

    fn set_thread(&mut self, thread: usize) {
        debug_assert!(thread < self.locals.len(), "thread {thread} of {}", self.locals.len());
        self.current = thread.min(self.locals.len() - 1);
    }
}

// ---------------------------------------------------------------------------
// Configurations

/// Which layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerKind {
    /// [`Locked`].
    Locked,
    /// [`Cached`].
    Cached(CacheParams),
}

impl LayerKind {
    /// The layer families, as specs name them.
    pub const FAMILIES: [&'static str; 2] = ["locked", "cached"];

    /// Read a layer's spec (`locked`, `cached:mag=64,depot=4,max=1K`).
    pub fn from_spec(spec: &Spec) -> Result<LayerKind, SpecError> {
        let mut reader = spec.reader();
        let kind = match spec.family() {
            "locked" => LayerKind::Locked,
            "cached" => {
                let defaults = CacheParams::default();
                let params = CacheParams {
                    magazine: reader.parse("mag", "a count of blocks", defaults.magazine)?,
                    depot: reader.parse("depot", "a count of magazines", defaults.depot)?,
                    max_size: reader.size("max", defaults.max_size)?,
                };
                params.validate().map_err(|reason| spec.error(reason.to_string()))?;
                LayerKind::Cached(params)
            }
            other => return Err(spec.error(format!("unknown layer `{other}`; the layers are locked and cached"))),
        };
        reader.finish()?;
        Ok(kind)
    }

    /// The canonical spec of the layer, without what it is over.
    pub fn spec(&self) -> String {
        match self {
            LayerKind::Locked => "locked".into(),
            LayerKind::Cached(p) => {
                format!("cached:mag={},depot={},max={}", p.magazine, p.depot, crate::spec::format_size(p.max_size))
            }
        }
    }

    /// One line about the layer.
    pub fn describe(&self) -> String {
        match self {
            LayerKind::Locked => "one lock around the allocator beneath".into(),
            LayerKind::Cached(p) => format!(
                "per-thread magazines of {} blocks per size class (16 B to {}), a depot of {} full magazines per class, remote frees returned to their owner",
                p.magazine,
                crate::spec::format_size(p.max_size),
                p.depot
            ),
        }
    }
}

/// A layer over a configuration `C`: itself a configuration, whose
/// single-threaded build is the layer [`Interleaved`] on one thread (or as
/// many as the metrics pass replays), and whose thread-safe build is the
/// layer itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layered<C> {
    /// The layer.
    pub kind: LayerKind,
    /// The configuration beneath.
    pub inner: C,
}

/// The layers as one type, so that a layered configuration has one
/// allocator type whichever layer it is.
pub enum AnyLayer<A> {
    /// [`Locked`].
    Locked(Locked<A>),
    /// [`Cached`].
    Cached(Cached<A>),
}

impl<A: Allocator + Send> std::fmt::Debug for AnyLayer<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyLayer::Locked(l) => l.fmt(f),
            AnyLayer::Cached(c) => c.fmt(f),
        }
    }
}

/// A thread's state in [`AnyLayer`].
#[derive(Debug)]
pub enum AnyLocal {
    /// Of [`Locked`].
    Locked,
    /// Of [`Cached`].
    Cached(ThreadCache),
}

macro_rules! each_layer {
    ($self:expr, $layer:ident => $body:expr) => {
        match $self {
            AnyLayer::Locked($layer) => $body,
            AnyLayer::Cached($layer) => $body,
        }
    };
}

impl AnyLocal {
    #[inline(always)]
    fn cache(&mut self) -> &mut ThreadCache {
        match self {
            AnyLocal::Cached(cache) => cache,
            AnyLocal::Locked => unreachable!("a locked layer's state has no cache"),
        }
    }
}

impl<A: Allocator + Send> SharedAllocator for AnyLayer<A> {
    type Local = AnyLocal;

    fn local(&self, thread: usize) -> AnyLocal {
        match self {
            AnyLayer::Locked(_) => AnyLocal::Locked,
            AnyLayer::Cached(c) => AnyLocal::Cached(c.local(thread)),
        }
    }

    #[inline]
    fn alloc(&self, local: &mut AnyLocal, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        match self {
            AnyLayer::Locked(l) => l.alloc(&mut (), layout),
            AnyLayer::Cached(c) => c.alloc(local.cache(), layout),
        }
    }

    #[inline]
    unsafe fn free(&self, local: &mut AnyLocal, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                AnyLayer::Locked(l) => l.free(&mut (), ptr, layout),
                AnyLayer::Cached(c) => c.free(local.cache(), ptr, layout),
            }
        }
    }

    unsafe fn realloc(
        &self,
        local: &mut AnyLocal,
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                AnyLayer::Locked(l) => l.realloc(&mut (), ptr, old, new_size),
                AnyLayer::Cached(c) => c.realloc(local.cache(), ptr, old, new_size),
            }
        }
    }

    fn retire(&self, local: AnyLocal) {
        if let (AnyLayer::Cached(c), AnyLocal::Cached(cache)) = (self, local) {
            c.retire(cache);
        }
    }

    unsafe fn cache_figures(&self, locals: &[AnyLocal]) -> CacheFigures {
        let caches = locals.iter().filter_map(|l| if let AnyLocal::Cached(c) = l { Some(c) } else { None });
        match self {
            AnyLayer::Locked(_) => CacheFigures::default(),
            // SAFETY: forwarded from the caller.
            AnyLayer::Cached(c) => unsafe { c.figures(caches) },
        }
    }

    fn into_arena(self) -> Arena {
        each_layer!(self, layer => layer.into_arena())
    }
}

impl<A: Allocator + Send> Cached<A> {
    /// What `caches`, the depot and the remote lists hold.
    ///
    /// # Safety
    /// As for [`SharedAllocator::cache_figures`].
    unsafe fn figures<'a>(&self, caches: impl Iterator<Item = &'a ThreadCache>) -> CacheFigures {
        let mut blocks = vec![0usize; self.classes.len()];
        for cache in caches {
            for (class, rounds) in cache.rounds.iter().enumerate() {
                blocks[class] += rounds.loaded.len() + rounds.previous.len();
            }
        }
        for (class, depot) in self.depot.iter().enumerate() {
            let depot = depot.lock().unwrap_or_else(PoisonError::into_inner);
            blocks[class] += depot.full.iter().map(Vec::len).sum::<usize>();
        }
        let mut cached: usize = blocks.iter().zip(&self.classes).map(|(n, size)| n * size).sum();
        for remote in self.remote.iter() {
            let mut node = remote.head.load(Ordering::Acquire);
            while let Some(current) = NonNull::new(node) {
                // SAFETY: nodes on a remote list are free blocks holding a
                // `Node`, published by a release CAS; the figures are read
                // between ops, when no thread takes the list.
                let Node { next, class } = unsafe { current.as_ptr().read() };
                cached += self.classes[class];
                node = next;
            }
        }
        CacheFigures { cached_bytes: cached, bound_bytes: self.params.bound_bytes(self.threads) }
    }
}

impl<A: Allocator + Send> Layer for AnyLayer<A> {
    type Inner = A;

    fn inner_layout(&self, layout: Layout) -> Layout {
        each_layer!(self, layer => layer.inner_layout(layout))
    }

    fn inner_mut(&mut self) -> &mut A {
        each_layer!(self, layer => layer.inner_mut())
    }

    unsafe fn inner_unshared(&self) -> &A {
        // SAFETY: forwarded from the caller.
        each_layer!(self, layer => unsafe { layer.inner_unshared() })
    }

    fn flush(&mut self, locals: &mut [AnyLocal]) {
        if let AnyLayer::Cached(c) = self {
            for local in locals {
                c.flush_thread(local.cache());
            }
            c.flush_depot();
        }
    }

    fn check_layer(&self, locals: &[AnyLocal]) -> Result<(), InvariantViolation> {
        match self {
            AnyLayer::Locked(_) => Ok(()),
            AnyLayer::Cached(c) => c.check_caches(locals.iter().filter_map(|l| match l {
                AnyLocal::Cached(cache) => Some(cache),
                AnyLocal::Locked => None,
            })),
        }
    }

    fn into_inner(self) -> A {
        each_layer!(self, layer => layer.into_inner())
    }
}

impl LayerKind {
    /// Build the layer over `inner` for `threads` threads.
    pub fn build<A: Allocator + Send>(&self, inner: A, threads: usize) -> Result<AnyLayer<A>, SetupError> {
        if !(1..=MAX_THREADS).contains(&threads) {
            return Err(SetupError::parameter("threads", format!("be between 1 and {MAX_THREADS}"), threads));
        }
        Ok(match self {
            LayerKind::Locked => AnyLayer::Locked(Locked::new(inner)),
            LayerKind::Cached(params) => AnyLayer::Cached(Cached::new(inner, *params, threads)?),
        })
    }
}

impl<C: AllocatorConfig> AllocatorConfig for Layered<C>
where
    C::Allocator: Send,
    C::Timed: Send,
{
    type Allocator = Interleaved<AnyLayer<C::Allocator>, true>;
    type Timed = Interleaved<AnyLayer<C::Timed>, false>;
    const FAMILY: &'static str = "layered";
    const SUMMARY: &'static str = "a thread-safe layer over any allocator in the arena: LAYER/SPEC";

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        Err(spec.error("a layered spec is LAYER/SPEC, read by the registry"))
    }

    fn spec(&self) -> String {
        format!("{}/{}", self.kind.spec(), self.inner.spec())
    }

    fn describe(&self) -> String {
        format!("{} over {}", self.kind.describe(), self.inner.spec())
    }

    fn listed() -> Vec<Self> {
        Vec::new()
    }

    fn build(&self, arena: Arena) -> Result<Self::Allocator, BuildError> {
        self.build_threads(arena, 1)
    }

    fn build_timed(&self, arena: Arena) -> Result<Self::Timed, BuildError> {
        let layer = self.kind.build(self.inner.build_timed(arena)?, 1).map_err(|e| self.build_error(e))?;
        Ok(Interleaved::new(layer, 1))
    }

    fn build_threads(&self, arena: Arena, threads: usize) -> Result<Self::Allocator, BuildError> {
        let layer = self.kind.build(self.inner.build(arena)?, threads).map_err(|e| self.build_error(e))?;
        Ok(Interleaved::new(layer, threads))
    }

    fn visit_shared<V: SharedVisitor>(&self, visitor: V) -> Option<V::Output> {
        Some(visitor.visit(self))
    }
}

impl<C: AllocatorConfig> SharedBuild for Layered<C>
where
    C::Allocator: Send,
    C::Timed: Send,
{
    type Shared = AnyLayer<C::Timed>;

    fn shared_spec(&self) -> String {
        self.spec()
    }

    fn build_shared(&self, arena: Arena, threads: usize) -> Result<Self::Shared, BuildError> {
        self.kind.build(self.inner.build_timed(arena)?, threads).map_err(|e| self.build_error(e))
    }
}

/// Visit `config` layered by `kind`, with the visitor for plain
/// configurations: what the registry's layered specs do.
#[derive(Debug)]
pub struct LayerAs<V> {
    /// The layer.
    pub kind: LayerKind,
    /// The visitor.
    pub visitor: V,
}

impl<V: Visitor> SendVisitor for LayerAs<V> {
    type Output = V::Output;

    fn visit<C: AllocatorConfig>(self, config: &C) -> V::Output
    where
        C::Allocator: Send,
        C::Timed: Send,
    {
        self.visitor.visit(&Layered { kind: self.kind, inner: config.clone() })
    }
}

/// As [`LayerAs`], for the thread-safe build.
#[derive(Debug)]
pub struct LayerShared<V> {
    /// The layer.
    pub kind: LayerKind,
    /// The visitor.
    pub visitor: V,
}

impl<V: SharedVisitor> SendVisitor for LayerShared<V> {
    type Output = V::Output;

    fn visit<C: AllocatorConfig>(self, config: &C) -> V::Output
    where
        C::Allocator: Send,
        C::Timed: Send,
    {
        self.visitor.visit(&Layered { kind: self.kind, inner: config.clone() })
    }
}
