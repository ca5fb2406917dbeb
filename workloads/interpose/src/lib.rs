//! The C allocation interface, once, for heaplab's preload libraries.
//!
//! `heaplab record` and `heaplab exec` each load a library with
//! `LD_PRELOAD` that defines the malloc family. What the functions do
//! differs (forward and log; serve from a heaplab allocator), but what C
//! asks of them does not: `posix_memalign`'s argument checks, `valloc`'s and
//! `pvalloc`'s page rounding, `_exit` running a last flush. [`interpose!`]
//! defines the exported symbols over an [`Interposer`], and the pieces
//! both need without allocating are here: a lock that knows its owner
//! ([`OwnedLock`]), and writing to a descriptor from the stack.
//!
//! Nothing here allocates: it runs inside `malloc`.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What `heaplab exec` and its preload library agree on: the environment
/// that names the allocator. Here, not in the preload crate, because the
/// harness must never link that crate (its `malloc` would become the
/// harness's own).
pub mod exec_env {
    /// The allocator's canonical spec.
    pub const SPEC: &str = "HEAPLAB_EXEC_SPEC";
    /// The arena's bytes (1 GiB if unset).
    pub const ARENA: &str = "HEAPLAB_EXEC_ARENA";
    /// `1`: the allocator with its ledger, for the metrics run.
    pub const METRICS: &str = "HEAPLAB_EXEC_METRICS";
    /// The report prefix: each process appends a line to `PREFIX.PID.stats`.
    pub const REPORT: &str = "HEAPLAB_EXEC_REPORT";
    /// The families the library can build.
    pub const FAMILIES: [&str; 4] = ["freelist", "segregated", "buddy", "slab"];
}

/// What a preload library does for each call of the malloc family. The
/// functions are associated (no `self`): the state is the library's
/// statics.
pub trait Interposer {
    /// `malloc(size)`.
    ///
    /// # Safety
    /// C's contract for `malloc`.
    unsafe fn malloc(size: usize) -> *mut c_void;
    /// `calloc(nmemb, size)`.
    ///
    /// # Safety
    /// C's contract for `calloc`.
    unsafe fn calloc(nmemb: usize, size: usize) -> *mut c_void;
    /// `realloc(pointer, size)`.
    ///
    /// # Safety
    /// C's contract for `realloc`: `pointer` is null or live.
    unsafe fn realloc(pointer: *mut c_void, size: usize) -> *mut c_void;
    /// `free(pointer)`.
    ///
    /// # Safety
    /// C's contract for `free`: `pointer` is null or live.
    unsafe fn free(pointer: *mut c_void);
    /// `memalign(align, size)` with `align` a power of two of at least a
    /// pointer's size: every aligned function ends here.
    ///
    /// # Safety
    /// C's contract for `memalign`.
    unsafe fn aligned(align: usize, size: usize) -> *mut c_void;
    /// Called by `_exit` and `_Exit`, which skip atexit handlers and
    /// destructors, before the process ends.
    fn before_exit();
}

/// glibc's own allocator, under the names it keeps for those who replace
/// `malloc` (no `dlsym` bootstrap needed).
pub mod glibc {
    use std::ffi::c_void;

    unsafe extern "C" {
        /// glibc's `malloc`.
        pub fn __libc_malloc(size: usize) -> *mut c_void;
        /// glibc's `calloc`.
        pub fn __libc_calloc(nmemb: usize, size: usize) -> *mut c_void;
        /// glibc's `realloc`.
        pub fn __libc_realloc(pointer: *mut c_void, size: usize) -> *mut c_void;
        /// glibc's `free`.
        pub fn __libc_free(pointer: *mut c_void);
        /// glibc's `memalign`.
        pub fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    }
}

/// The alignment `memalign` and `aligned_alloc` give for `align`: glibc
/// rounds a non-power of two up, and gives at least a pointer's alignment.
pub fn memalign_alignment(align: usize) -> Option<usize> {
    align.max(std::mem::size_of::<*mut c_void>()).checked_next_power_of_two()
}

/// Is `align` valid for `posix_memalign`: a power of two and a multiple
/// of a pointer's size?
pub fn posix_memalign_valid(align: usize) -> bool {
    align.is_power_of_two() && align.is_multiple_of(std::mem::size_of::<*mut c_void>())
}

/// The page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as usize } else { 4096 }
}

/// Write `bytes` to `fd` whole, retrying short writes; gives up on an error.
pub fn write_all(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid slice for its length.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written <= 0 {
            return;
        }
        bytes = &bytes[written as usize..];
    }
}

/// A line of at most `N` bytes built on the stack, for messages and paths
/// made inside `malloc`.
#[derive(Debug)]
pub struct StackLine<const N: usize = 512> {
    bytes: [u8; N],
    len: usize,
    cut: bool,
}

impl<const N: usize> Default for StackLine<N> {
    fn default() -> Self {
        StackLine { bytes: [0; N], len: 0, cut: false }
    }
}

impl<const N: usize> StackLine<N> {
    /// Append text (cut at the buffer's end).
    pub fn text(&mut self, text: &[u8]) -> &mut Self {
        for &byte in text {
            if self.len < N {
                self.bytes[self.len] = byte;
                self.len += 1;
            } else {
                self.cut = true;
            }
        }
        self
    }

    /// Was text cut off at the end?
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// Append `value` in decimal.
    pub fn decimal(&mut self, mut value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut count = 0;
        loop {
            digits[count] = b'0' + (value % 10) as u8;
            count += 1;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        digits[..count].reverse();
        self.text(&digits[..count])
    }

    /// Append `value` as `0x…` hexadecimal.
    pub fn hex(&mut self, value: u64) -> &mut Self {
        let mut digits = [0u8; 16];
        let mut count = 0;
        let mut rest = value;
        loop {
            digits[count] = b"0123456789abcdef"[(rest & 15) as usize];
            count += 1;
            rest >>= 4;
            if rest == 0 {
                break;
            }
        }
        digits[..count].reverse();
        self.text(b"0x").text(&digits[..count])
    }

    /// The bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A spin lock that knows which thread holds it, so that a call made by
/// the library's own code while it holds the lock (a table growing inside
/// the allocator, `std` formatting a report) is seen as such instead of
/// deadlocking. Waiters spin briefly, then yield the CPU: a program may
/// run more threads than there are cores.
#[derive(Debug)]
pub struct OwnedLock {
    held: AtomicBool,
    /// `pthread_self()` of the holder, 0 when free.
    owner: AtomicUsize,
}

impl Default for OwnedLock {
    fn default() -> Self {
        Self::new()
    }
}

impl OwnedLock {
    /// A free lock.
    pub const fn new() -> OwnedLock {
        OwnedLock { held: AtomicBool::new(false), owner: AtomicUsize::new(0) }
    }

    fn me() -> usize {
        // SAFETY: pthread_self has no preconditions and does not allocate.
        unsafe { libc::pthread_self() as usize }
    }

    /// Take the lock; `false` (and nothing taken) if this thread holds it
    /// already.
    #[inline]
    pub fn lock(&self) -> bool {
        if self.held.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.owner.store(Self::me(), Ordering::Relaxed);
            return true;
        }
        self.lock_slow()
    }

    #[cold]
    fn lock_slow(&self) -> bool {
        let me = Self::me();
        // Only this thread stores its own id, so reading it back means this
        // thread holds the lock.
        if self.owner.load(Ordering::Relaxed) == me {
            return false;
        }
        let mut spins = 0u32;
        loop {
            if !self.held.load(Ordering::Relaxed)
                && self.held.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                self.owner.store(me, Ordering::Relaxed);
                return true;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }

    /// Release the lock, which this thread holds.
    #[inline]
    pub fn unlock(&self) {
        self.owner.store(0, Ordering::Relaxed);
        self.held.store(false, Ordering::Release);
    }
}

/// Define `malloc`, `calloc`, `realloc`, `free`, `memalign`,
/// `aligned_alloc`, `posix_memalign`, `valloc`, `pvalloc`, `_exit` and
/// `_Exit` over the [`Interposer`] `$t`, as exported C symbols. Invoke it
/// once, in the preload library's crate.
#[macro_export]
macro_rules! interpose {
    ($t:ty) => {
        /// `malloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn malloc(size: usize) -> *mut ::std::ffi::c_void {
            // SAFETY: C's contract, forwarded.
            unsafe { <$t as $crate::Interposer>::malloc(size) }
        }

        /// `calloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn calloc(nmemb: usize, size: usize) -> *mut ::std::ffi::c_void {
            // SAFETY: C's contract, forwarded.
            unsafe { <$t as $crate::Interposer>::calloc(nmemb, size) }
        }

        /// `realloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn realloc(pointer: *mut ::std::ffi::c_void, size: usize) -> *mut ::std::ffi::c_void {
            // SAFETY: C's contract, forwarded.
            unsafe { <$t as $crate::Interposer>::realloc(pointer, size) }
        }

        /// `free`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn free(pointer: *mut ::std::ffi::c_void) {
            // SAFETY: C's contract, forwarded.
            unsafe { <$t as $crate::Interposer>::free(pointer) }
        }

        /// `memalign`: glibc rounds the alignment up to a power of two.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut ::std::ffi::c_void {
            match $crate::memalign_alignment(align) {
                // SAFETY: C's contract, forwarded, with a valid alignment.
                Some(align) => unsafe { <$t as $crate::Interposer>::aligned(align, size) },
                None => {
                    // SAFETY: errno is this thread's.
                    unsafe { *::libc::__errno_location() = ::libc::EINVAL };
                    ::std::ptr::null_mut()
                }
            }
        }

        /// `aligned_alloc`, as glibc's: the same as `memalign`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut ::std::ffi::c_void {
            // SAFETY: forwarded.
            unsafe { memalign(align, size) }
        }

        /// `posix_memalign`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn posix_memalign(out: *mut *mut ::std::ffi::c_void, align: usize, size: usize) -> i32 {
            if !$crate::posix_memalign_valid(align) {
                return ::libc::EINVAL;
            }
            // SAFETY: C's contract, forwarded, with a valid alignment.
            let pointer = unsafe { <$t as $crate::Interposer>::aligned(align, size) };
            if pointer.is_null() {
                return ::libc::ENOMEM;
            }
            // SAFETY: C's contract: `out` is writable.
            unsafe { *out = pointer };
            0
        }

        /// `valloc`: page-aligned.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn valloc(size: usize) -> *mut ::std::ffi::c_void {
            // SAFETY: C's contract, forwarded, with a page's alignment.
            unsafe { <$t as $crate::Interposer>::aligned($crate::page_size(), size) }
        }

        /// `pvalloc`: page-aligned, the size rounded up to whole pages.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn pvalloc(size: usize) -> *mut ::std::ffi::c_void {
            let page = $crate::page_size();
            match size.checked_next_multiple_of(page) {
                // SAFETY: C's contract, forwarded, with a page's alignment.
                Some(rounded) => unsafe { <$t as $crate::Interposer>::aligned(page, rounded.max(page)) },
                None => {
                    // SAFETY: errno is this thread's.
                    unsafe { *::libc::__errno_location() = ::libc::ENOMEM };
                    ::std::ptr::null_mut()
                }
            }
        }

        /// `_exit`, which skips atexit handlers and destructors: the
        /// library's last words first.
        #[unsafe(no_mangle)]
        pub extern "C" fn _exit(status: i32) -> ! {
            <$t as $crate::Interposer>::before_exit();
            // SAFETY: exit_group ends the process; it takes the status.
            unsafe { ::libc::syscall(::libc::SYS_exit_group, status) };
            loop {
                ::std::hint::spin_loop();
            }
        }

        /// `_Exit`, the same as `_exit`.
        #[unsafe(no_mangle)]
        pub extern "C" fn _Exit(status: i32) -> ! {
            _exit(status)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignments_follow_glibc() {
        assert_eq!(memalign_alignment(1), Some(8));
        assert_eq!(memalign_alignment(24), Some(32));
        assert_eq!(memalign_alignment(4096), Some(4096));
        assert_eq!(memalign_alignment(usize::MAX), None);
        assert!(posix_memalign_valid(16));
        assert!(!posix_memalign_valid(4));
        assert!(!posix_memalign_valid(24));
    }

    #[test]
    fn stack_lines_format_numbers() {
        let mut line = StackLine::<512>::default();
        line.text(b"free(").hex(0xdead_beef).text(b") in ").decimal(1234).text(b" and ").decimal(0);
        assert_eq!(line.as_bytes(), b"free(0xdeadbeef) in 1234 and 0");
        let mut long = StackLine::<512>::default();
        for _ in 0..100 {
            long.text(b"0123456789");
        }
        assert_eq!(long.as_bytes().len(), 512);
        assert!(long.is_cut() && !line.is_cut());
    }

    #[test]
    fn the_lock_knows_its_holder() {
        let lock = OwnedLock::new();
        assert!(lock.lock());
        assert!(!lock.lock(), "a second lock by the holder is reported, not a deadlock");
        lock.unlock();
        assert!(lock.lock(), "free again after the unlock");
        lock.unlock();
        let shared = std::sync::Arc::new((OwnedLock::new(), AtomicUsize::new(0)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        assert!(shared.0.lock());
                        // Not an atomic increment: the lock is what keeps it exact.
                        let value = shared.1.load(Ordering::Relaxed);
                        shared.1.store(value + 1, Ordering::Relaxed);
                        shared.0.unlock();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(shared.1.load(Ordering::Relaxed), 40_000);
    }
}
