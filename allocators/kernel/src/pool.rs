//! The page pool's memory: a memfd whose pages are the pool's frames,
//! mapped shared at the start of one reservation whose second half is the
//! vmalloc space, where a range's scattered frames are mapped again,
//! contiguously, with `mmap(MAP_FIXED | MAP_SHARED)` at their file offsets.
//!
//! A byte written through a vmalloc range therefore lands in the frame of
//! the pool that backs it, exactly as a kernel's page tables make a
//! vmalloc'd page and its frame in the direct map the same memory.

use std::io;
use std::ptr::NonNull;

use heaplab_core::Arena;

/// The page size of the mappings: the model's frames are 4 KiB pages, and
/// the system's page must divide them.
pub const PAGE: usize = 4096;

/// The memfd and the reservation behind a kernel model's arena. Owned by
/// the arena (see [`Arena::from_mapping`]): dropping the arena unmaps the
/// reservation and closes the file.
#[derive(Debug)]
pub struct PoolMapping {
    /// The memfd whose `pool_bytes` are the frames.
    fd: libc::c_int,
    /// Start of the whole reservation (for `munmap`), and its length.
    reservation: usize,
    reservation_len: usize,
    /// Address of pool offset 0 (aligned to `align`).
    base: usize,
    align: usize,
    /// Bytes of frames; the vmalloc space follows, `virtual_bytes` long.
    pool_bytes: usize,
    virtual_bytes: usize,
}

impl PoolMapping {
    /// A pool of `pool_bytes` (a multiple of [`PAGE`]) followed by a
    /// virtual space of `virtual_bytes` (likewise), the pool aligned as the
    /// harness aligns arenas ([`Arena::natural`]), as an arena over both.
    pub fn arena(pool_bytes: usize, virtual_bytes: usize) -> io::Result<Arena> {
        let mapping = PoolMapping::new(pool_bytes, virtual_bytes)?;
        let (base, len, align) = (mapping.base, pool_bytes + virtual_bytes, mapping.align);
        let base = NonNull::new(base as *mut u8).ok_or_else(|| io::Error::other("mmap returned null"))?;
        // SAFETY: the reservation holds base..base+len for this arena alone
        // until the mapping drops with it; the pool part is mapped shared,
        // readable and writable, zero-filled by the memfd; the virtual part
        // stays PROT_NONE except where the kernel model maps frames into it
        // for a live vmalloc block, which is all that touches it.
        Ok(unsafe { Arena::from_mapping(base, len, align, Box::new(mapping)) })
    }

    fn new(pool_bytes: usize, virtual_bytes: usize) -> io::Result<PoolMapping> {
        assert!(pool_bytes > 0 && pool_bytes.is_multiple_of(PAGE) && virtual_bytes.is_multiple_of(PAGE));
        // SAFETY: sysconf has no memory-safety preconditions.
        let system_page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if system_page <= 0 || !PAGE.is_multiple_of(system_page as usize) {
            return Err(io::Error::other(format!("the system page ({system_page} bytes) does not divide 4 KiB")));
        }
        // SAFETY: the name is a NUL-terminated string; the flags are valid.
        let fd = unsafe { libc::memfd_create(c"heaplab-page-pool".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let close = |error: io::Error| {
            // SAFETY: `fd` is ours and not used after this.
            unsafe { libc::close(fd) };
            error
        };
        // SAFETY: `fd` is an open memfd.
        if unsafe { libc::ftruncate(fd, pool_bytes as libc::off_t) } != 0 {
            return Err(close(io::Error::last_os_error()));
        }
        let align = (1usize << pool_bytes.ilog2()).clamp(Arena::DEFAULT_ALIGN, Arena::MAX_NATURAL_ALIGN);
        let reservation_len = pool_bytes + virtual_bytes + align;
        // SAFETY: a fresh anonymous reservation; no existing memory is affected.
        let reservation = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reservation_len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if reservation == libc::MAP_FAILED {
            return Err(close(io::Error::last_os_error()));
        }
        let reservation = reservation as usize;
        let base = reservation.next_multiple_of(align);
        let mapping = PoolMapping { fd, reservation, reservation_len, base, align, pool_bytes, virtual_bytes };
        // SAFETY: base..base+pool_bytes lies inside the reservation, which
        // is ours; MAP_FIXED replaces only those reserved pages.
        let pool = unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                pool_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd,
                0,
            )
        };
        if pool == libc::MAP_FAILED {
            return Err(io::Error::last_os_error()); // `mapping` drops: unmapped and closed
        }
        Ok(mapping)
    }

    /// Bytes of frames.
    pub fn pool_bytes(&self) -> usize {
        self.pool_bytes
    }

    /// Bytes of vmalloc space after the pool.
    pub fn virtual_bytes(&self) -> usize {
        self.virtual_bytes
    }

    /// The handles a kernel model keeps to map frames (the arena owns the
    /// mapping, so these stay valid while the model holds its arena).
    pub fn mapper(&self) -> Mapper {
        Mapper { fd: self.fd, base: self.base, pool_bytes: self.pool_bytes, virtual_bytes: self.virtual_bytes }
    }
}

impl Drop for PoolMapping {
    fn drop(&mut self) {
        // SAFETY: the reservation is ours and nothing uses it after the
        // arena that owns this mapping is gone; the fd is ours.
        unsafe {
            libc::munmap(self.reservation as *mut libc::c_void, self.reservation_len);
            libc::close(self.fd);
        }
    }
}

/// Maps frames of the pool into the vmalloc space and takes them out again.
/// Offsets are the arena's: frames below `pool_bytes`, virtual pages above.
#[derive(Debug, Clone, Copy)]
pub struct Mapper {
    fd: libc::c_int,
    base: usize,
    pool_bytes: usize,
    virtual_bytes: usize,
}

impl Mapper {
    /// Map `pages` frames starting at pool offset `frame` at virtual
    /// offset `at` (both page-aligned, `at` in the vmalloc space).
    ///
    /// # Safety
    /// `at..at + pages·PAGE` is vmalloc space that no live block uses, and
    /// `frame..` are frames the caller holds (lent by the buddy): the
    /// mapping makes them reachable from a second address.
    pub unsafe fn map(&self, at: usize, frame: usize, pages: usize) -> io::Result<()> {
        let len = pages * PAGE;
        debug_assert!(at >= self.pool_bytes && at + len <= self.pool_bytes + self.virtual_bytes);
        debug_assert!(frame + len <= self.pool_bytes);
        // SAFETY: the target lies in our reservation's vmalloc space, unused
        // (the caller's contract), so MAP_FIXED replaces nothing anyone holds.
        let mapped = unsafe {
            libc::mmap(
                (self.base + at) as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.fd,
                frame as libc::off_t,
            )
        };
        if mapped == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    /// Map `pages` virtual pages at `at` to private anonymous memory,
    /// readable and writable: a user heap's address space before its pages
    /// are faulted in from the pool (see [`crate::heap`]).
    ///
    /// # Safety
    /// `at..at + pages·PAGE` is virtual space past the pool that no live
    /// block uses.
    pub unsafe fn map_anonymous(&self, at: usize, pages: usize) -> io::Result<()> {
        // SAFETY: forwarded: the caller's contract.
        unsafe { self.anonymous(at, pages, libc::PROT_READ | libc::PROT_WRITE) }
    }

    /// Put `pages` virtual pages at `at` back to reserved, inaccessible
    /// space (what a guard page is all along).
    ///
    /// # Safety
    /// `at..at + pages·PAGE` is virtual space of a block being freed: no
    /// one touches it any more.
    pub unsafe fn unmap(&self, at: usize, pages: usize) -> io::Result<()> {
        // SAFETY: forwarded: the caller's contract.
        unsafe { self.anonymous(at, pages, libc::PROT_NONE) }
    }

    /// Replace `pages` virtual pages at `at` with fresh private anonymous
    /// memory of protection `prot`.
    ///
    /// # Safety
    /// `at..at + pages·PAGE` is virtual space past the pool that nothing
    /// uses.
    unsafe fn anonymous(&self, at: usize, pages: usize, prot: libc::c_int) -> io::Result<()> {
        let len = pages * PAGE;
        debug_assert!(at >= self.pool_bytes && at + len <= self.pool_bytes + self.virtual_bytes);
        // SAFETY: the range is our reservation's, and unused (the caller's contract).
        let mapped = unsafe {
            libc::mmap(
                (self.base + at) as *mut libc::c_void,
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(()) }
    }
}
