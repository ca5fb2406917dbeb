//! The preload library behind `heaplab record`.
//!
//! Loaded with `LD_PRELOAD`, it defines `malloc`, `calloc`, `realloc`,
//! `free`, `memalign`, `posix_memalign`, `aligned_alloc`, `valloc` and
//! `pvalloc`; each forwards to glibc's own implementation (`__libc_malloc`
//! and friends, so no `dlsym` bootstrap is needed) and appends a fixed-size
//! binary record of the call to a buffer, written out in large blocks.
//! `heaplab record` turns the records into a native trace afterwards: this
//! library does no formatting and keeps no pointer table.
//!
//! # Rules it keeps
//!
//! - **It never allocates.** The buffer is static; the path is built on the
//!   stack; only `open`, `write` and `getpid` are called. Calls made while the
//!   recorder itself is running on this thread (for example by `atexit`
//!   registering its handler) are forwarded unrecorded.
//! - **One order for all threads.** A spin lock is held across the real call
//!   and the record, so the log's order is an order the allocator could have
//!   seen: a free is always logged before the allocation that reuses its
//!   pointer.
//! - **Threads get small ids in creation order**: the process's main
//!   thread is 0, and the library's own `pthread_create` numbers each new
//!   thread 1, 2, … as it is created, before it runs (a thread started
//!   some other way is numbered at its first call). A forked child numbers
//!   its threads afresh: the thread that forked is its 0.
//! - **One file per process**, named `PREFIX.PID.raw` from the environment
//!   variable `HEAPLAB_RECORD_PREFIX`. After `fork` the child drops the
//!   parent's unwritten records and opens its own file; `pthread_atfork`
//!   keeps the lock free across the fork and writes the parent's buffer out
//!   first. Records still buffered when a process calls `exec` are lost (the
//!   new program, same pid, starts the file afresh); at exit they are
//!   written by an `atexit` handler, by the library's destructor, and by
//!   its `_exit` and `_Exit`, which skip both.
//!
//! # Record format
//!
//! A 16-byte header, `HLRAW\0\0\x02` then the pid (u32) and 4 zero bytes;
//! then 32-byte records, little-endian: `kind: u16`, `thread: u16` (the
//! id above; 65535 stands for that id or any later one), `align: u32`,
//! `pointer: u64` (the argument of `free`/`realloc`), `result: u64`,
//! `size: u64` (`nmemb × size` for calloc). Version 1 (`\x01`) had
//! `kind: u32` and no thread; heaplab still reads it.

#![allow(clippy::missing_safety_doc)] // The exported functions have C's contracts.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use heaplab_interpose::glibc::{__libc_calloc, __libc_free, __libc_malloc, __libc_memalign, __libc_realloc};
use heaplab_interpose::{Interposer, OwnedLock, StackLine, write_all};

/// Record kinds.
pub mod kind {
    /// `malloc`.
    pub const MALLOC: u32 = 1;
    /// `calloc`.
    pub const CALLOC: u32 = 2;
    /// `realloc`.
    pub const REALLOC: u32 = 3;
    /// `free`.
    pub const FREE: u32 = 4;
    /// `memalign`, `posix_memalign`, `aligned_alloc`, `valloc`, `pvalloc`.
    pub const ALIGNED: u32 = 5;
}

/// The header's magic.
pub const MAGIC: [u8; 8] = *b"HLRAW\0\0\x02";
/// Bytes per record.
pub const RECORD_BYTES: usize = 32;
/// The environment variable naming the output prefix.
pub const PREFIX_VARIABLE: &str = "HEAPLAB_RECORD_PREFIX";

const BUFFER_BYTES: usize = 1 << 20;

/// The shared state, all behind `LOCK`.
struct State {
    buffer: [u8; BUFFER_BYTES],
    used: usize,
    /// The process the file belongs to (set when it is opened).
    pid: i32,
    /// The output file, or -1 (not yet opened, or no prefix: not recording).
    fd: i32,
    registered: bool,
    /// The id the next thread gets.
    next_thread: u32,
}

static LOCK: OwnedLock = OwnedLock::new();
static mut STATE: State =
    State { buffer: [0; BUFFER_BYTES], used: 0, pid: 0, fd: -1, registered: false, next_thread: 1 };

/// A thread's id not yet given.
const UNNUMBERED: u32 = u32::MAX;

thread_local! {
    /// This thread's id. A const-initialised thread-local without a
    /// destructor: reading it never allocates.
    static THREAD: Cell<u32> = const { Cell::new(UNNUMBERED) };
}

/// This thread's id, numbering it now if it has none (a thread not
/// started through [`pthread_create`] below, or the main thread).
///
/// # Safety
/// LOCK is held and `state` is `&raw mut STATE`.
unsafe fn thread_id(state: *mut State) -> u32 {
    let id = THREAD.get();
    if id != UNNUMBERED {
        return id;
    }
    // SAFETY: getpid and gettid have no preconditions.
    let main = unsafe { libc::syscall(libc::SYS_gettid) == i64::from(libc::getpid()) };
    let id = if main {
        0
    } else {
        // SAFETY: the caller holds LOCK.
        let state = unsafe { &mut *state };
        state.next_thread += 1;
        state.next_thread - 1
    };
    THREAD.set(id);
    id
}
/// Set when a process has no prefix: forward everything, record nothing.
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Run `call` and log what it did, unless this thread is already inside
/// the recorder (its own calls, as `atexit` registering the handler).
#[inline]
fn recorded<T>(call: impl FnOnce() -> T, record: impl FnOnce(&T) -> [u64; 4]) -> T {
    if DISABLED.load(Ordering::Relaxed) || !LOCK.lock() {
        return call();
    }
    let result = call();
    let fields = record(&result);
    // SAFETY: LOCK is held, so this thread alone touches STATE.
    unsafe { append(&raw mut STATE, fields) };
    LOCK.unlock();
    result
}

/// Open this process's file, once; returns false if not recording.
///
/// # Safety
/// LOCK is held and `state` is `&raw mut STATE`.
unsafe fn open_output(state: *mut State) -> bool {
    // SAFETY: the caller holds LOCK.
    let state = unsafe { &mut *state };
    // The common case costs one comparison: a fork's child is reset by the
    // atfork handler, so no getpid (a system call) is needed here.
    if state.fd >= 0 {
        return true;
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    state.pid = pid;
    state.used = 0;
    // SAFETY: the name is a NUL-terminated C string.
    let prefix = unsafe { libc::getenv(c"HEAPLAB_RECORD_PREFIX".as_ptr()) };
    if prefix.is_null() {
        DISABLED.store(true, Ordering::Relaxed);
        return false;
    }
    // PREFIX.PID.raw, built on the stack.
    // SAFETY: getenv returned a NUL-terminated string.
    let prefix = unsafe { std::ffi::CStr::from_ptr(prefix) }.to_bytes();
    let mut path = StackLine::<4096>::default();
    path.text(prefix).text(b".").decimal(pid as u64).text(b".raw\0");
    if path.is_cut() {
        DISABLED.store(true, Ordering::Relaxed);
        return false;
    }
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe {
        libc::open(
            path.as_bytes().as_ptr().cast(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        DISABLED.store(true, Ordering::Relaxed);
        return false;
    }
    let mut header = [0u8; 16];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&(pid as u32).to_le_bytes());
    write_all(fd, &header);
    state.fd = fd;
    if !state.registered {
        state.registered = true;
        // SAFETY: registering plain functions. atexit may allocate: this
        // thread holds LOCK, so that allocation is forwarded unrecorded.
        unsafe {
            libc::atexit(flush_at_exit);
            libc::pthread_atfork(Some(before_fork), Some(after_fork_parent), Some(after_fork_child));
        }
    }
    true
}

/// Append one record, writing the buffer out when full.
///
/// # Safety
/// LOCK is held and `state` is `&raw mut STATE`.
unsafe fn append(state: *mut State, [kind_and_align, pointer, result, size]: [u64; 4]) {
    // SAFETY: forwarded.
    if !unsafe { open_output(state) } {
        return;
    }
    // SAFETY: forwarded.
    let thread = u64::from(unsafe { thread_id(state) }.min(u32::from(u16::MAX)));
    let kind_and_align = kind_and_align | thread << 16;
    // SAFETY: the caller holds LOCK.
    let state = unsafe { &mut *state };
    if state.used + RECORD_BYTES > BUFFER_BYTES {
        write_all(state.fd, &state.buffer[..state.used]);
        state.used = 0;
    }
    let record = &mut state.buffer[state.used..state.used + RECORD_BYTES];
    record[..8].copy_from_slice(&kind_and_align.to_le_bytes());
    record[8..16].copy_from_slice(&pointer.to_le_bytes());
    record[16..24].copy_from_slice(&result.to_le_bytes());
    record[24..].copy_from_slice(&size.to_le_bytes());
    state.used += RECORD_BYTES;
}

/// Write out what is buffered; LOCK must be held.
fn flush_locked() {
    let state = &raw mut STATE;
    // SAFETY: the caller holds LOCK, so this is the only reference.
    let state = unsafe { &mut *state };
    if state.fd >= 0 && state.used > 0 {
        write_all(state.fd, &state.buffer[..state.used]);
        state.used = 0;
    }
}

/// Write out what is buffered.
fn flush() {
    let taken = LOCK.lock();
    flush_locked();
    if taken {
        LOCK.unlock();
    }
}

extern "C" fn flush_at_exit() {
    flush();
}

extern "C" fn before_fork() {
    LOCK.lock();
    // The parent may end with _exit after the fork: what it logged so far
    // is safe on disk first.
    flush_locked();
}

extern "C" fn after_fork_parent() {
    LOCK.unlock();
}

extern "C" fn after_fork_child() {
    // The buffered records and the file are the parent's: the child records
    // to its own file from its next call (see open_output).
    let state = &raw mut STATE;
    // SAFETY: LOCK is held (taken in before_fork); the child has one thread.
    let state = unsafe { &mut *state };
    if state.fd >= 0 {
        // SAFETY: closing the child's copy of the descriptor.
        unsafe { libc::close(state.fd) };
    }
    state.fd = -1;
    state.used = 0;
    // The thread that forked is the child's first; its threads count anew.
    state.next_thread = 1;
    THREAD.set(0);
    LOCK.unlock();
}

/// Flush once more when the library is unloaded (after the atexit handlers,
/// which may still allocate and free).
#[used]
#[unsafe(link_section = ".fini_array")]
static FINAL_FLUSH: extern "C" fn() = flush_at_exit;

#[inline]
fn word(kind: u32, align: usize) -> u64 {
    u64::from(kind) | ((align as u64) << 32)
}

// ---- thread ids in creation order ----------------------------------------

/// What a new thread runs first: its id, then the program's start routine.
struct Start {
    routine: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
    id: u32,
}

type PthreadCreate = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    extern "C" fn(*mut c_void) -> *mut c_void,
    *mut c_void,
) -> c_int;

/// The next `pthread_create` (libc's), found once.
static REAL_PTHREAD_CREATE: AtomicUsize = AtomicUsize::new(0);

fn real_pthread_create() -> Option<PthreadCreate> {
    let mut found = REAL_PTHREAD_CREATE.load(Ordering::Acquire);
    if found == 0 {
        // SAFETY: looking up a symbol by a NUL-terminated name.
        found = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_create".as_ptr()) } as usize;
        REAL_PTHREAD_CREATE.store(found, Ordering::Release);
    }
    // SAFETY: the symbol is libc's pthread_create, which has this type.
    (found != 0).then(|| unsafe { std::mem::transmute::<usize, PthreadCreate>(found) })
}

extern "C" fn start_numbered(start: *mut c_void) -> *mut c_void {
    // SAFETY: `start` is the Start that pthread_create below made for this
    // thread, and nothing else holds it.
    let Start { routine, arg, id } = unsafe { start.cast::<Start>().read() };
    // SAFETY: it came from __libc_malloc.
    unsafe { __libc_free(start) };
    THREAD.set(id);
    routine(arg)
}

/// `pthread_create`, numbering the new thread in creation order before it
/// runs.
///
/// # Safety
/// C's contract for `pthread_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    routine: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> c_int {
    let Some(real) = real_pthread_create() else { return libc::EAGAIN };
    // SAFETY: glibc's own allocator, not recorded: this is the library's
    // memory, freed by the new thread.
    let start = unsafe { __libc_malloc(std::mem::size_of::<Start>()) }.cast::<Start>();
    if DISABLED.load(Ordering::Relaxed) || start.is_null() || !LOCK.lock() {
        if !start.is_null() {
            // SAFETY: from __libc_malloc just above.
            unsafe { __libc_free(start.cast()) };
        }
        // SAFETY: forwarded with the caller's arguments.
        return unsafe { real(thread, attr, routine, arg) };
    }
    let state = &raw mut STATE;
    // SAFETY: LOCK is held. (A failed create leaves a gap in the ids;
    // `heaplab record` numbers the threads that appear densely.)
    let id = unsafe {
        (*state).next_thread += 1;
        (*state).next_thread - 1
    };
    LOCK.unlock();
    // SAFETY: `start` is a fresh allocation of a Start's size and alignment
    // (malloc aligns to 16).
    unsafe { start.write(Start { routine, arg, id }) };
    // SAFETY: forwarded; the new thread takes `start`.
    let result = unsafe { real(thread, attr, start_numbered, start.cast()) };
    if result != 0 {
        // SAFETY: no thread was made, so nobody else holds `start`.
        unsafe { __libc_free(start.cast()) };
    }
    result
}

/// A marker other programs can find with `nm`: the heaplab binary must not
/// contain it (this library is never linked in, only preloaded).
#[unsafe(no_mangle)]
pub extern "C" fn heaplab_recorder_version() -> u32 {
    1
}

/// The recorder's calls: glibc's own, logged.
#[derive(Debug)]
pub struct Recorder;

impl Interposer for Recorder {
    unsafe fn malloc(size: usize) -> *mut c_void {
        // SAFETY: C's contract, forwarded.
        recorded(|| unsafe { __libc_malloc(size) }, |&p| [word(kind::MALLOC, 0), 0, p as u64, size as u64])
    }

    /// Recorded with size `nmemb × size` (saturating; an overflow fails in
    /// glibc and is logged as a failed call).
    unsafe fn calloc(nmemb: usize, size: usize) -> *mut c_void {
        // SAFETY: C's contract, forwarded.
        recorded(
            || unsafe { __libc_calloc(nmemb, size) },
            |&p| [word(kind::CALLOC, 0), 0, p as u64, nmemb.saturating_mul(size) as u64],
        )
    }

    unsafe fn realloc(pointer: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: C's contract, forwarded.
        recorded(
            || unsafe { __libc_realloc(pointer, size) },
            |&p| [word(kind::REALLOC, 0), pointer as u64, p as u64, size as u64],
        )
    }

    unsafe fn free(pointer: *mut c_void) {
        // SAFETY: C's contract, forwarded.
        recorded(|| unsafe { __libc_free(pointer) }, |_| [word(kind::FREE, 0), pointer as u64, 0, 0])
    }

    unsafe fn aligned(align: usize, size: usize) -> *mut c_void {
        // SAFETY: C's contract, forwarded.
        recorded(
            || unsafe { __libc_memalign(align, size) },
            |&p| [word(kind::ALIGNED, align), 0, p as u64, size as u64],
        )
    }

    fn before_exit() {
        flush();
    }
}

heaplab_interpose::interpose!(Recorder);
