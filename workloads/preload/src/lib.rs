//! The preload library behind `heaplab exec`.
//!
//! Loaded with `LD_PRELOAD`, it serves a real program's `malloc`, `calloc`,
//! `realloc`, `free`, `memalign`, `aligned_alloc`, `posix_memalign`,
//! `valloc`, `pvalloc` and `malloc_usable_size` from one heaplab allocator
//! per process, on one arena reserved with `mmap(MAP_NORESERVE)`. The C
//! interface itself is `heaplab-interpose`'s, shared with the recorder.
//!
//! # Set-up
//!
//! `heaplab exec` names the allocator in the environment: `HEAPLAB_EXEC_SPEC`
//! (a canonical spec of the freelist, segregated, buddy or slab family),
//! `HEAPLAB_EXEC_ARENA` (bytes; 1 GiB if unset), `HEAPLAB_EXEC_METRICS`
//! (`1`: the allocator with its ledger, whose figures the report gives;
//! otherwise the timed build, which keeps no counters) and
//! `HEAPLAB_EXEC_REPORT` (a path prefix: each process appends one line to
//! `PREFIX.PID.stats` when it exits). The first call builds the allocator;
//! a missing or bad setting ends the process with status 127 and a message,
//! never a silent fall-back to glibc.
//!
//! # Rules it keeps
//!
//! - **It never allocates through itself.** Everything the library's own
//!   code allocates (the arena, the allocator's tables, the size table, the
//!   report's text) is asked for while this thread holds the lock, and the
//!   lock knows its owner, so such a call is served by glibc (`__libc_*`),
//!   or for a megabyte or more by an `mmap(MAP_NORESERVE)` of its own.
//! - **One lock** around the allocator: threads work, serialised, as a
//!   bounded allocator is used in practice. `pthread_atfork` holds it
//!   across `fork`, so a child gets a consistent copy of the heap; its
//!   figures count from the fork. After `exec` the new program builds its
//!   own allocator from the same environment.
//! - **C's failure contract.** An exhausted arena, or a block of 2 GiB or
//!   more, gives NULL with `errno = ENOMEM`; the call is counted.
//! - **A foreign pointer aborts.** `free`, `realloc` or
//!   `malloc_usable_size` of a pointer the allocator did not hand out, or
//!   no longer holds, prints the pointer and aborts the process: the heap is
//!   never corrupted silently.
//!
//! # What a block's layout is
//!
//! heaplab's allocators take the block's layout on `free`, as Rust's
//! `GlobalAlloc` does; C's `free` gives only the pointer. A table beside the
//! arena keeps, per 16-byte granule, the requested size of the block that
//! starts there (4 bytes), and a second table keeps the alignment of the
//! few blocks aligned beyond 16 bytes (1 byte). Both are reserved with the
//! arena and only the pages in use are touched; the report gives their
//! resident bytes (`table_resident_bytes`), which are part of the
//! process's peak RSS.

#![allow(clippy::missing_safety_doc)] // The exported functions have C's contracts.

use std::alloc::Layout;
use std::ffi::c_void;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, Ordering};

use heaplab_core::{Allocator, AllocatorConfig, Arena, Spec, Visitor};
use heaplab_interpose::glibc::{__libc_calloc, __libc_free, __libc_malloc, __libc_memalign, __libc_realloc};
use heaplab_interpose::{Interposer, OwnedLock, StackLine, write_all};

use heaplab_interpose::exec_env::{
    ARENA as ARENA_VARIABLE, FAMILIES, METRICS as METRICS_VARIABLE, REPORT as REPORT_VARIABLE, SPEC as SPEC_VARIABLE,
};

/// The arena when `HEAPLAB_EXEC_ARENA` is unset: 1 GiB.
pub const DEFAULT_ARENA: usize = 1 << 30;
/// The alignment of every `malloc` block (`alignof(max_align_t)`).
pub const MALLOC_ALIGN: usize = 16;
/// The largest block served: the size table holds `size + 1` in 31 bits.
pub const MAX_BLOCK: usize = (1 << 31) - 2;

// ---- the library's own memory ---------------------------------------------

/// The library's own allocations of at least this size are mapped.
const OWN_MAPPED: usize = 1 << 20;

#[derive(Clone, Copy)]
struct Mapping {
    start: usize,
    len: usize,
}

/// The library's own mappings (the arena, the tables). Touched only by the
/// thread that holds `LOCK`: every own allocation is made under it.
static mut MAPPINGS: [Mapping; 32] = [Mapping { start: 0, len: 0 }; 32];

/// Memory for the library's own code, which runs with `LOCK` held.
///
/// # Safety
/// This thread holds `LOCK`.
unsafe fn own_alloc(size: usize, align: usize, zeroed: bool) -> *mut c_void {
    if size >= OWN_MAPPED && align <= 4096 {
        let mappings = &raw mut MAPPINGS;
        // SAFETY: the caller holds LOCK, so this thread alone touches MAPPINGS.
        let mappings = unsafe { &mut *mappings };
        if let Some(slot) = mappings.iter_mut().find(|m| m.len == 0) {
            // SAFETY: an anonymous private mapping; no pointer is involved.
            let start = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if start == libc::MAP_FAILED {
                return ptr::null_mut();
            }
            *slot = Mapping { start: start as usize, len: size };
            return start;
        }
    }
    // SAFETY: glibc's own allocator, with its contract.
    unsafe {
        match (align <= MALLOC_ALIGN, zeroed) {
            (true, true) => __libc_calloc(1, size),
            (true, false) => __libc_malloc(size),
            (false, zeroed) => {
                let pointer = __libc_memalign(align, size);
                if zeroed && !pointer.is_null() {
                    ptr::write_bytes(pointer.cast::<u8>(), 0, size);
                }
                pointer
            }
        }
    }
}

/// Give back memory from [`own_alloc`].
///
/// # Safety
/// This thread holds `LOCK`; `pointer` is null or from [`own_alloc`].
unsafe fn own_free(pointer: *mut c_void) {
    let mappings = &raw mut MAPPINGS;
    // SAFETY: the caller holds LOCK.
    let mappings = unsafe { &mut *mappings };
    if let Some(slot) = mappings.iter_mut().find(|m| m.len != 0 && m.start == pointer as usize) {
        // SAFETY: the mapping is the library's own, made whole by own_alloc.
        unsafe { libc::munmap(pointer, slot.len) };
        slot.len = 0;
        return;
    }
    // SAFETY: not a mapping, so glibc's.
    unsafe { __libc_free(pointer) }
}

/// Resize memory from [`own_alloc`].
///
/// # Safety
/// This thread holds `LOCK`; `pointer` is null or from [`own_alloc`].
unsafe fn own_realloc(pointer: *mut c_void, size: usize) -> *mut c_void {
    let mappings = &raw const MAPPINGS;
    // SAFETY: the caller holds LOCK.
    let mappings = unsafe { &*mappings };
    let mapped = mappings.iter().find(|m| m.len != 0 && m.start == pointer as usize).map(|m| m.len);
    match mapped {
        Some(old) => {
            // SAFETY: forwarded; the old mapping holds `old` bytes.
            unsafe {
                let new = own_alloc(size, MALLOC_ALIGN, false);
                if !new.is_null() {
                    ptr::copy_nonoverlapping(pointer.cast::<u8>(), new.cast::<u8>(), old.min(size));
                    own_free(pointer);
                }
                new
            }
        }
        // SAFETY: glibc's (or null).
        None => unsafe { __libc_realloc(pointer, size) },
    }
}

// ---- the server ------------------------------------------------------------

/// A process's figures, as its report line gives them: kept by the metrics
/// run only (all zero in a timed run's report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// `malloc` calls (and `calloc`, and the aligned functions).
    pub allocs: u64,
    /// `free` calls of a block (`free(NULL)` is not counted).
    pub frees: u64,
    /// `realloc` calls of a block (`realloc(NULL, n)` is an alloc,
    /// `realloc(p, 0)` a free).
    pub reallocs: u64,
    /// Calls that returned NULL with ENOMEM.
    pub failed: u64,
    /// Requested bytes of live blocks now.
    pub requested_bytes: u64,
    /// The most requested bytes live at once.
    pub peak_requested_bytes: u64,
    /// Granted bytes when the requested bytes peaked (metrics build only).
    pub granted_at_peak_bytes: u64,
    /// Footprint when the requested bytes peaked (metrics build only).
    pub footprint_at_peak_bytes: u64,
    /// The most granted bytes at once (metrics build only).
    pub peak_granted_bytes: u64,
    /// The footprint's high-water mark (metrics build only).
    pub peak_footprint_bytes: u64,
}

/// One allocator serving C calls, with the table of block layouts. `M`:
/// the metrics run, which keeps [`Figures`]; the timed runs keep none, as
/// the timed passes of `heaplab run` keep no ledger.
struct Server<A, const M: bool> {
    allocator: A,
    base: usize,
    len: usize,
    /// Per 16-byte granule: 0, or the live block's `size + 1`, with
    /// [`ALIGNED`] set when its alignment is above 16.
    sizes: Vec<u32>,
    /// Per granule: log2 of the alignment of a block with [`ALIGNED`].
    aligns: Vec<u8>,
    figures: Figures,
}

const ALIGNED: u32 = 1 << 31;

/// Why a pointer is not one of the allocator's live blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Foreign {
    OutsideArena,
    NotLive,
}

impl<A: Allocator, const M: bool> Server<A, M> {
    fn new(allocator: A) -> Server<A, M> {
        let (base, len) = (allocator.arena().base().as_ptr() as usize, allocator.arena().len());
        let granules = len.div_ceil(MALLOC_ALIGN);
        // Zeroed and a megabyte or more: mapped, so untouched pages cost nothing.
        Server {
            allocator,
            base,
            len,
            sizes: vec![0; granules],
            aligns: vec![0; granules],
            figures: Figures::default(),
        }
    }

    /// The granule and layout of the live block at `pointer`.
    fn lookup(&self, pointer: *mut c_void) -> Result<(usize, Layout), Foreign> {
        let offset = (pointer as usize).wrapping_sub(self.base);
        if offset >= self.len {
            return Err(Foreign::OutsideArena);
        }
        if !offset.is_multiple_of(MALLOC_ALIGN) {
            return Err(Foreign::NotLive);
        }
        let granule = offset / MALLOC_ALIGN;
        let entry = self.sizes[granule];
        if entry == 0 {
            return Err(Foreign::NotLive);
        }
        let size = ((entry & !ALIGNED) - 1) as usize;
        let align = if entry & ALIGNED != 0 { 1 << self.aligns[granule] } else { MALLOC_ALIGN };
        // The layout was valid when the block was allocated.
        Ok((granule, Layout::from_size_align(size, align).map_err(|_| Foreign::NotLive)?))
    }

    fn remember(&mut self, pointer: NonNull<u8>, layout: Layout) {
        let granule = (pointer.as_ptr() as usize - self.base) / MALLOC_ALIGN;
        let mut entry = layout.size() as u32 + 1;
        if layout.align() > MALLOC_ALIGN {
            entry |= ALIGNED;
            self.aligns[granule] = layout.align().trailing_zeros() as u8;
        }
        self.sizes[granule] = entry;
    }

    /// After a change: the peaks, from the ledger's O(1) counters.
    #[inline]
    fn changed(&mut self) {
        if !M {
            return;
        }
        let figures = &mut self.figures;
        let stats = self.allocator.stats();
        if figures.requested_bytes > figures.peak_requested_bytes {
            figures.peak_requested_bytes = figures.requested_bytes;
            figures.granted_at_peak_bytes = stats.granted_bytes as u64;
            figures.footprint_at_peak_bytes = stats.footprint_bytes as u64;
        }
        figures.peak_granted_bytes = figures.peak_granted_bytes.max(stats.granted_bytes as u64);
        figures.peak_footprint_bytes = figures.peak_footprint_bytes.max(stats.footprint_bytes as u64);
    }

    fn alloc(&mut self, size: usize, align: usize) -> *mut c_void {
        if M {
            self.figures.allocs += 1;
        }
        let layout = match Layout::from_size_align(size, align.max(MALLOC_ALIGN)) {
            Ok(layout) if size <= MAX_BLOCK => layout,
            _ => return self.failed(),
        };
        match self.allocator.alloc(layout) {
            Ok(pointer) => {
                self.remember(pointer, layout);
                if M {
                    self.figures.requested_bytes += size as u64;
                    self.changed();
                }
                pointer.as_ptr().cast()
            }
            Err(_) => self.failed(),
        }
    }

    fn failed(&mut self) -> *mut c_void {
        if M {
            self.figures.failed += 1;
        }
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = libc::ENOMEM };
        ptr::null_mut()
    }

    /// # Safety
    /// The allocator's blocks are used as C's contract says.
    unsafe fn free(&mut self, pointer: *mut c_void) {
        let (granule, layout) = self.lookup(pointer).unwrap_or_else(|why| foreign("free", pointer, why));
        self.sizes[granule] = 0;
        // SAFETY: the table holds exactly the live blocks and their layouts.
        unsafe { self.allocator.free(NonNull::new_unchecked(pointer.cast()), layout) };
        if M {
            self.figures.frees += 1;
            self.figures.requested_bytes -= layout.size() as u64;
            self.changed();
        }
    }

    /// # Safety
    /// As for [`Server::free`].
    unsafe fn realloc(&mut self, pointer: *mut c_void, size: usize) -> *mut c_void {
        let (granule, old) = self.lookup(pointer).unwrap_or_else(|why| foreign("realloc", pointer, why));
        if M {
            self.figures.reallocs += 1;
        }
        if size > MAX_BLOCK {
            return self.failed();
        }
        // SAFETY: the table holds exactly the live blocks and their layouts.
        let moved = unsafe { self.allocator.realloc(NonNull::new_unchecked(pointer.cast()), old, size) };
        match moved {
            Ok(new) => {
                self.sizes[granule] = 0;
                let layout = Layout::from_size_align(size, old.align()).expect("the old alignment is valid");
                self.remember(new, layout);
                if M {
                    self.figures.requested_bytes = self.figures.requested_bytes - old.size() as u64 + size as u64;
                    self.changed();
                }
                new.as_ptr().cast()
            }
            // The old block is untouched and still live.
            Err(_) => self.failed(),
        }
    }

    fn usable(&self, pointer: *mut c_void) -> usize {
        let (_, layout) = self.lookup(pointer).unwrap_or_else(|why| foreign("malloc_usable_size", pointer, why));
        layout.size()
    }

    /// Resident bytes of the two tables.
    fn table_resident_bytes(&self) -> u64 {
        resident_bytes(self.sizes.as_ptr().cast(), self.sizes.len() * 4)
            + resident_bytes(self.aligns.as_ptr().cast(), self.aligns.len())
    }
}

/// Resident bytes of a mapped range, by `mincore`.
fn resident_bytes(start: *const u8, len: usize) -> u64 {
    let page = heaplab_interpose::page_size();
    let first = start as usize & !(page - 1);
    let end = start as usize + len;
    let pages = (end - first).div_ceil(page);
    let mut resident = 0u64;
    let mut vector = [0u8; 4096];
    let mut done = 0;
    while done < pages {
        let chunk = (pages - done).min(vector.len());
        // SAFETY: the range is inside one live allocation (rounded down to
        // its page), and `vector` holds `chunk` entries.
        let status = unsafe { libc::mincore((first + done * page) as *mut c_void, chunk * page, vector.as_mut_ptr()) };
        if status != 0 {
            return 0;
        }
        resident += vector[..chunk].iter().filter(|&&v| v & 1 != 0).count() as u64;
        done += chunk;
    }
    resident * page as u64
}

/// Print why `pointer` is foreign to the allocator and abort.
#[cold]
fn foreign(call: &str, pointer: *mut c_void, why: Foreign) -> ! {
    let mut line = StackLine::<512>::default();
    line.text(b"heaplab exec: ")
        .text(call.as_bytes())
        .text(b"(")
        .hex(pointer as u64)
        .text(b"): ")
        .text(match why {
            Foreign::OutsideArena => b"not a block heaplab's allocator handed out (outside its arena)".as_slice(),
            Foreign::NotLive => b"not a live block of heaplab's allocator (freed already, or not a block's start)",
        })
        .text(b"; process ")
        // SAFETY: getpid has no preconditions.
        .decimal(unsafe { libc::getpid() } as u64)
        .text(b" aborts\n");
    write_all(2, line.as_bytes());
    // SAFETY: ends the process.
    unsafe { libc::abort() }
}

/// A server with its type erased, as the exported functions call it.
#[derive(Clone, Copy)]
struct Erased {
    data: *mut (),
    alloc: unsafe fn(*mut (), usize, usize) -> *mut c_void,
    free: unsafe fn(*mut (), *mut c_void),
    realloc: unsafe fn(*mut (), *mut c_void, usize) -> *mut c_void,
    // Read by `malloc_usable_size`, which this crate's unit tests leave out.
    #[cfg_attr(test, allow(dead_code))]
    usable: unsafe fn(*mut (), *mut c_void) -> usize,
    figures: unsafe fn(*mut ()) -> Figures,
    table_resident_bytes: unsafe fn(*mut ()) -> u64,
    forked: unsafe fn(*mut ()),
    arena_bytes: usize,
}

fn erase<A: Allocator, const M: bool>(server: Server<A, M>) -> Erased {
    // Each takes `data` from `Box::into_raw` below, of this `Server<A, M>`.
    unsafe fn alloc<A: Allocator, const M: bool>(data: *mut (), size: usize, align: usize) -> *mut c_void {
        // SAFETY: `data` is the boxed server, used under LOCK only.
        unsafe { (*data.cast::<Server<A, M>>()).alloc(size, align) }
    }
    unsafe fn free<A: Allocator, const M: bool>(data: *mut (), pointer: *mut c_void) {
        // SAFETY: as above; the pointer's contract is C's.
        unsafe { (*data.cast::<Server<A, M>>()).free(pointer) }
    }
    unsafe fn realloc<A: Allocator, const M: bool>(data: *mut (), pointer: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: as above; the pointer's contract is C's.
        unsafe { (*data.cast::<Server<A, M>>()).realloc(pointer, size) }
    }
    unsafe fn usable<A: Allocator, const M: bool>(data: *mut (), pointer: *mut c_void) -> usize {
        // SAFETY: as above.
        unsafe { (*data.cast::<Server<A, M>>()).usable(pointer) }
    }
    unsafe fn figures<A: Allocator, const M: bool>(data: *mut ()) -> Figures {
        // SAFETY: as above.
        unsafe { (*data.cast::<Server<A, M>>()).figures }
    }
    unsafe fn table_resident_bytes<A: Allocator, const M: bool>(data: *mut ()) -> u64 {
        // SAFETY: as above.
        unsafe { (*data.cast::<Server<A, M>>()).table_resident_bytes() }
    }
    unsafe fn forked<A: Allocator, const M: bool>(data: *mut ()) {
        // SAFETY: as above.
        let server = unsafe { &mut *data.cast::<Server<A, M>>() };
        // A child's figures count from the fork; its heap is the copy.
        let live = server.figures.requested_bytes;
        server.figures = Figures { requested_bytes: live, peak_requested_bytes: live, ..Figures::default() };
        server.changed();
    }
    let arena_bytes = server.len;
    Erased {
        data: Box::into_raw(Box::new(server)).cast(),
        alloc: alloc::<A, M>,
        free: free::<A, M>,
        realloc: realloc::<A, M>,
        usable: usable::<A, M>,
        figures: figures::<A, M>,
        table_resident_bytes: table_resident_bytes::<A, M>,
        forked: forked::<A, M>,
        arena_bytes,
    }
}

/// Builds the server of a configuration: the visitor the families accept.
struct Build {
    arena: Arena,
    metrics: bool,
}

impl Visitor for Build {
    type Output = Result<Erased, String>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output {
        if self.metrics {
            let allocator = config.build(self.arena).map_err(|e| e.to_string())?;
            Ok(erase(Server::<_, true>::new(allocator)))
        } else {
            let allocator = config.build_timed(self.arena).map_err(|e| e.to_string())?;
            Ok(erase(Server::<_, false>::new(allocator)))
        }
    }
}

/// Build the server `spec` names on a fresh arena of `arena_bytes`.
fn build(spec: &str, arena_bytes: usize, metrics: bool) -> Result<Erased, String> {
    let parsed: Spec = spec.parse().map_err(|e: heaplab_core::SpecError| e.to_string())?;
    let arena = Arena::natural(arena_bytes).map_err(|e| format!("an arena of {arena_bytes} bytes: {e}"))?;
    let visitor = Build { arena, metrics };
    let spec_error = |e: heaplab_core::SpecError| e.to_string();
    match parsed.family() {
        "freelist" => heaplab_freelist::Config::from_spec(&parsed).map_err(spec_error)?.accept(visitor),
        "segregated" => heaplab_segregated::Config::from_spec(&parsed).map_err(spec_error)?.accept(visitor),
        "buddy" => heaplab_buddy::Config::from_spec(&parsed).map_err(spec_error)?.accept(visitor),
        "slab" => heaplab_slab::Config::from_spec(&parsed).map_err(spec_error)?.accept(visitor),
        other => Err(format!("the {other} family cannot serve a program; these can: {}", FAMILIES.join(", "))),
    }
}

// ---- the process's state ---------------------------------------------------

static LOCK: OwnedLock = OwnedLock::new();
/// The server, built by the first call; touched only under LOCK.
static mut SERVER: Option<Erased> = None;
static FORK_HANDLERS: AtomicBool = AtomicBool::new(false);
/// Has this process written its report?
static REPORTED: AtomicBool = AtomicBool::new(false);

/// End the process before the program runs on, with a message.
fn fail(message: &str) -> ! {
    let mut line = StackLine::<512>::default();
    line.text(b"heaplab exec: ").text(message.as_bytes()).text(b"\n");
    write_all(2, line.as_bytes());
    // SAFETY: exit_group ends the process (not `_exit`, which would report).
    unsafe { libc::syscall(libc::SYS_exit_group, 127) };
    unreachable!("exit_group returned")
}

/// The server, built on first use.
///
/// # Safety
/// This thread holds LOCK.
unsafe fn server() -> Erased {
    let slot = &raw mut SERVER;
    // SAFETY: the caller holds LOCK, so this thread alone touches SERVER.
    let slot = unsafe { &mut *slot };
    if let Some(server) = *slot {
        return server;
    }
    let spec = std::env::var(SPEC_VARIABLE).unwrap_or_else(|_| {
        fail("HEAPLAB_EXEC_SPEC is not set: run programs on heaplab's allocators with `heaplab exec`")
    });
    let arena_bytes = match std::env::var(ARENA_VARIABLE) {
        Ok(text) => text.parse().unwrap_or_else(|_| fail("HEAPLAB_EXEC_ARENA is not a number of bytes")),
        Err(_) => DEFAULT_ARENA,
    };
    let metrics = std::env::var(METRICS_VARIABLE).is_ok_and(|v| v == "1");
    let server = build(&spec, arena_bytes, metrics).unwrap_or_else(|message| fail(&format!("{spec}: {message}")));
    *slot = Some(server);
    server
}

/// Run `call` on the server under LOCK. Calls the library's own code makes
/// while it holds LOCK go to `own` instead.
#[inline]
fn served<T>(call: impl FnOnce(Erased) -> T, own: impl FnOnce() -> T) -> T {
    if !LOCK.lock() {
        return own();
    }
    // SAFETY: LOCK is held.
    let result = call(unsafe { server() });
    LOCK.unlock();
    if !FORK_HANDLERS.load(Ordering::Relaxed) {
        register_fork_handlers();
    }
    result
}

#[cold]
fn register_fork_handlers() {
    if !FORK_HANDLERS.swap(true, Ordering::Relaxed) {
        // SAFETY: registering plain functions; outside LOCK, since
        // pthread_atfork may allocate (served by the allocator, now built).
        unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork_parent), Some(after_fork_child)) };
    }
}

extern "C" fn before_fork() {
    LOCK.lock();
}

extern "C" fn after_fork_parent() {
    LOCK.unlock();
}

extern "C" fn after_fork_child() {
    let slot = &raw const SERVER;
    // SAFETY: LOCK is held (taken in before_fork); the child has one thread.
    if let Some(server) = unsafe { *slot } {
        // SAFETY: the server is this library's, under LOCK.
        unsafe { (server.forked)(server.data) };
    }
    REPORTED.store(false, Ordering::Relaxed);
    LOCK.unlock();
}

/// Append this process's line to `PREFIX.PID.stats`, once.
fn report() {
    if REPORTED.swap(true, Ordering::Relaxed) {
        return;
    }
    if !LOCK.lock() {
        return;
    }
    let slot = &raw const SERVER;
    // SAFETY: LOCK is held.
    if let Some(server) = unsafe { *slot } {
        write_report(server);
    }
    LOCK.unlock();
}

/// The report line: `key=value` pairs, one process per line.
fn report_line(pid: i32, figures: &Figures, arena_bytes: usize, table_bytes: u64, metrics: bool, rss: u64) -> String {
    let Figures {
        allocs,
        frees,
        reallocs,
        failed,
        requested_bytes,
        peak_requested_bytes,
        granted_at_peak_bytes,
        footprint_at_peak_bytes,
        peak_granted_bytes,
        peak_footprint_bytes,
    } = *figures;
    format!(
        "pid={pid} metrics={} allocs={allocs} frees={frees} reallocs={reallocs} failed={failed} \
         requested_at_exit_bytes={requested_bytes} peak_requested_bytes={peak_requested_bytes} \
         granted_at_peak_bytes={granted_at_peak_bytes} footprint_at_peak_bytes={footprint_at_peak_bytes} \
         peak_granted_bytes={peak_granted_bytes} peak_footprint_bytes={peak_footprint_bytes} \
         arena_bytes={arena_bytes} table_resident_bytes={table_bytes} max_rss_bytes={rss}\n",
        u8::from(metrics)
    )
}

/// # Panics
/// Never: errors writing the report lose the report, not the program.
fn write_report(server: Erased) {
    let Some(prefix) = std::env::var_os(REPORT_VARIABLE) else { return };
    let metrics = std::env::var(METRICS_VARIABLE).is_ok_and(|v| v == "1");
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    // SAFETY: the server is this library's; LOCK is held.
    let (figures, table_bytes) = unsafe { ((server.figures)(server.data), (server.table_resident_bytes)(server.data)) };
    // SAFETY: `usage` is written by getrusage.
    let rss = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage.ru_maxrss as u64 * 1024
    };
    let line = report_line(pid, &figures, server.arena_bytes, table_bytes, metrics, rss);
    let mut path = prefix.into_encoded_bytes();
    path.extend_from_slice(format!(".{pid}.stats\0").as_bytes());
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe {
        libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC, 0o644)
    };
    if fd >= 0 {
        write_all(fd, line.as_bytes());
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd) };
    }
}

extern "C" fn report_at_exit() {
    report();
}

/// Report when the library is unloaded: after the atexit handlers, which
/// may still allocate and free.
#[used]
#[unsafe(link_section = ".fini_array")]
static FINAL_REPORT: extern "C" fn() = report_at_exit;

/// A marker other programs can find with `nm`: the heaplab binary must not
/// contain it (this library is never linked in, only preloaded).
#[unsafe(no_mangle)]
pub extern "C" fn heaplab_preload_version() -> u32 {
    1
}

/// The C calls, served.
#[derive(Debug)]
pub struct Served;

impl Interposer for Served {
    unsafe fn malloc(size: usize) -> *mut c_void {
        served(
            // SAFETY: the server is this library's, under LOCK.
            |server| unsafe { (server.alloc)(server.data, size, MALLOC_ALIGN) },
            // SAFETY: this thread holds LOCK.
            || unsafe { own_alloc(size, MALLOC_ALIGN, false) },
        )
    }

    unsafe fn calloc(nmemb: usize, size: usize) -> *mut c_void {
        let Some(bytes) = nmemb.checked_mul(size) else {
            // SAFETY: errno is this thread's.
            unsafe { *libc::__errno_location() = libc::ENOMEM };
            return ptr::null_mut();
        };
        served(
            |server| {
                // SAFETY: the server is this library's, under LOCK; a block
                // it returns holds `bytes` bytes.
                unsafe {
                    let pointer = (server.alloc)(server.data, bytes, MALLOC_ALIGN);
                    if !pointer.is_null() {
                        ptr::write_bytes(pointer.cast::<u8>(), 0, bytes);
                    }
                    pointer
                }
            },
            // SAFETY: this thread holds LOCK.
            || unsafe { own_alloc(bytes, MALLOC_ALIGN, true) },
        )
    }

    unsafe fn realloc(pointer: *mut c_void, size: usize) -> *mut c_void {
        if pointer.is_null() {
            // SAFETY: realloc(NULL, n) is malloc(n).
            return unsafe { Self::malloc(size) };
        }
        if size == 0 {
            // realloc(p, 0) frees p and returns NULL, as glibc does.
            // SAFETY: C's contract, forwarded.
            unsafe { Self::free(pointer) };
            return ptr::null_mut();
        }
        served(
            // SAFETY: the server is this library's, under LOCK; the pointer's contract is C's.
            |server| unsafe { (server.realloc)(server.data, pointer, size) },
            // SAFETY: this thread holds LOCK; its own pointers are its own.
            || unsafe { own_realloc(pointer, size) },
        )
    }

    unsafe fn free(pointer: *mut c_void) {
        if pointer.is_null() {
            return;
        }
        served(
            // SAFETY: the server is this library's, under LOCK; the pointer's contract is C's.
            |server| unsafe { (server.free)(server.data, pointer) },
            // SAFETY: this thread holds LOCK; its own pointers are its own.
            || unsafe { own_free(pointer) },
        )
    }

    unsafe fn aligned(align: usize, size: usize) -> *mut c_void {
        served(
            // SAFETY: the server is this library's, under LOCK.
            |server| unsafe { (server.alloc)(server.data, size, align) },
            // SAFETY: this thread holds LOCK.
            || unsafe { own_alloc(size, align, false) },
        )
    }

    fn before_exit() {
        report();
    }
}

// Not in this crate's own unit tests, which run on glibc's malloc.
#[cfg(not(test))]
heaplab_interpose::interpose!(Served);

/// `malloc_usable_size`: the bytes asked for, all of which the block holds.
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(pointer: *mut c_void) -> usize {
    if pointer.is_null() {
        return 0;
    }
    served(
        // SAFETY: the server is this library's, under LOCK.
        |server| unsafe { (server.usable)(server.data, pointer) },
        // The library's own code never asks.
        || 0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_line_names_every_figure() {
        let figures = Figures { allocs: 3, frees: 2, peak_requested_bytes: 100, ..Figures::default() };
        let line = report_line(42, &figures, 1 << 20, 4096, true, 8192);
        assert!(line.starts_with("pid=42 metrics=1 allocs=3 frees=2 reallocs=0 failed=0 "), "{line}");
        assert!(line.contains(" peak_requested_bytes=100 "), "{line}");
        assert!(line.ends_with(" table_resident_bytes=4096 max_rss_bytes=8192\n"), "{line}");
    }

    #[test]
    fn a_server_keeps_layouts_and_peaks() {
        let config = heaplab_segregated::Config::from_spec(&"segregated:kind=tlsf".parse().unwrap()).unwrap();
        let allocator = config.build(Arena::natural(1 << 20).unwrap()).unwrap();
        let mut server = Server::<_, true>::new(allocator);
        let a = server.alloc(100, MALLOC_ALIGN);
        let b = server.alloc(40, 256);
        assert!(!a.is_null() && !b.is_null());
        assert_eq!(b as usize % 256, 0);
        assert_eq!(server.usable(b), 40);
        // SAFETY: live blocks of this server.
        let a = unsafe { server.realloc(a, 300) };
        assert_eq!(server.usable(a), 300);
        assert_eq!(server.figures.peak_requested_bytes, 340);
        assert!(server.figures.granted_at_peak_bytes >= 340);
        assert_eq!(server.lookup(a.wrapping_add(16)), Err(Foreign::NotLive));
        assert_eq!(server.lookup(ptr::null_mut()), Err(Foreign::OutsideArena));
        // SAFETY: live blocks of this server.
        unsafe {
            server.free(a);
            server.free(b);
        }
        assert_eq!(server.figures.requested_bytes, 0);
        assert!(server.lookup(b).is_err());
        // An exhausted arena fails with ENOMEM, counted.
        assert!(server.alloc(2 << 20, MALLOC_ALIGN).is_null());
        assert_eq!(server.figures.failed, 1);
        assert!(server.alloc(MAX_BLOCK + 1, MALLOC_ALIGN).is_null());
        server.allocator.check().unwrap();
    }

    #[test]
    fn only_the_families_that_can_serve_a_program_build() {
        assert!(build("segregated:kind=tlsf", 1 << 20, false).is_ok());
        assert!(build("buddy", 1 << 20, true).is_ok());
        let error = build("bump", 1 << 20, false).err().unwrap();
        assert!(error.contains("cannot serve a program"), "{error}");
        assert!(build("buddy:min=17", 1 << 20, false).is_err());
    }
}
