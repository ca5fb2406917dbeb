//! The arena: one owned, aligned block of real memory that an allocator manages.
//!
//! The harness creates an [`Arena`] of the size a run asks for and hands it to
//! an allocator, which owns it from then on. Everything an allocator reports is
//! an offset into its arena, never an address, so results do not depend on
//! where the operating system happened to map the block (ASLR).
//!
//! The memory is zero-initialised and obtained with `calloc`-style allocation,
//! so an arena of several GiB costs nothing until its pages are touched.
//!
//! Allocators keep their metadata inside the arena (boundary tags, free-list
//! links, slab headers). They read and write it through the word accessors
//! here: the arena owns the memory, every byte of it is initialised, and no
//! Rust reference into the arena is ever created, so raw-pointer writes by
//! the allocator's user and by the allocator cannot alias a reference.
//!
//! The accessors come in two kinds. The safe ones ([`Arena::load_word`] and
//! friends) check bounds on every access; `check()` walks and tests use them.
//! The unchecked ones ([`Arena::load_word_unchecked`] and friends) are for an
//! allocator's fast path, where the offset is a block's own tag or link word
//! and the allocator's invariants (which its `check()` verifies and the
//! conformance suite exercises) put it inside the arena: a bound proven once
//! per block, not once per word, as a C allocator trusts its headers. They
//! still check in debug builds.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;

/// Why an arena could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArenaError {
    /// A zero-byte arena manages nothing.
    #[error("an arena must hold at least one byte")]
    Empty,
    /// The alignment is not a power of two.
    #[error("arena alignment {0} is not a power of two")]
    BadAlignment(usize),
    /// The size does not fit a `Layout` on this platform.
    #[error("an arena of {0} bytes is too large for this platform")]
    TooLarge(usize),
    /// The system allocator refused the memory.
    #[error("the system could not provide {0} bytes for the arena")]
    OutOfMemory(usize),
}

/// An owned, aligned, zero-initialised block of memory.
pub struct Arena {
    /// First byte handed to the allocator; `base % align == 0`.
    base: NonNull<u8>,
    /// Bytes available from `base`.
    len: usize,
    /// Alignment of `base`; offsets aligned to any power of two up to this
    /// are equally aligned as addresses.
    align: usize,
    /// Offsets at which an 8-byte word fits: `0..word_starts`. One compare
    /// per word access, the hottest check in every allocator.
    word_starts: usize,
    /// The same for 4-byte words.
    u32_starts: usize,
    /// Who owns the memory, for `Drop`.
    backing: Backing,
}

/// Where an arena's memory comes from.
enum Backing {
    /// The system allocator: what it returned, and its layout.
    System { raw: NonNull<u8>, layout: Layout },
    /// A mapping someone else made (see [`Arena::from_mapping`]), released
    /// when its owner drops.
    Mapping(Box<dyn std::any::Any + Send>),
}

// SAFETY: an `Arena` owns its memory exclusively (like a `Box<[u8]>`); nothing
// in it refers to thread-local state.
unsafe impl Send for Arena {}

impl Arena {
    /// The default alignment of an arena's base: one 4 KiB page, so any
    /// request aligned to at most a page can be served at any offset that is
    /// aligned to it.
    pub const DEFAULT_ALIGN: usize = 4096;

    /// An arena of `len` bytes aligned to [`Arena::DEFAULT_ALIGN`].
    pub fn new(len: usize) -> Result<Arena, ArenaError> {
        Arena::with_align(len, Arena::DEFAULT_ALIGN)
    }

    /// Largest alignment [`Arena::natural`] gives: 1 GiB.
    pub const MAX_NATURAL_ALIGN: usize = 1 << 30;

    /// An arena of `len` bytes aligned to the largest power of two not above
    /// `len` (at least a page, at most [`Arena::MAX_NATURAL_ALIGN`]), as the
    /// harness creates them: an allocator that places buddies by address
    /// rather than by offset (as a kernel's page allocator does with frame
    /// numbers) then sees the arena as whole top-order blocks, the way
    /// heaplab's own buddy sees it. Only the virtual reservation grows: the
    /// extra address space is never touched.
    pub fn natural(len: usize) -> Result<Arena, ArenaError> {
        let align = if len == 0 { Arena::DEFAULT_ALIGN } else { 1 << len.ilog2() };
        Arena::with_align(len, align.clamp(Arena::DEFAULT_ALIGN, Arena::MAX_NATURAL_ALIGN))
    }

    /// An arena of `len` bytes whose base is aligned to `align`.
    pub fn with_align(len: usize, align: usize) -> Result<Arena, ArenaError> {
        if len == 0 {
            return Err(ArenaError::Empty);
        }
        if !align.is_power_of_two() {
            return Err(ArenaError::BadAlignment(align));
        }
        // Over-allocate by `align` with a small alignment, so that the system
        // allocator uses calloc (lazily zeroed pages from mmap for large
        // sizes) instead of an aligned allocation followed by a memset that
        // would touch, and commit, every page of a multi-GiB arena.
        let raw_len = len.checked_add(align).ok_or(ArenaError::TooLarge(len))?;
        let raw_layout = Layout::from_size_align(raw_len, 16).map_err(|_| ArenaError::TooLarge(len))?;
        // SAFETY: `raw_layout` has a non-zero size (len >= 1).
        let raw = unsafe { alloc::alloc_zeroed(raw_layout) };
        let raw = NonNull::new(raw).ok_or(ArenaError::OutOfMemory(len))?;
        let misalignment = raw.as_ptr().addr() & (align - 1);
        let shift = if misalignment == 0 { 0 } else { align - misalignment };
        // SAFETY: shift < align, and the block holds len + align bytes, so
        // base..base+len stays inside it.
        let base = unsafe { raw.add(shift) };
        Ok(Arena {
            base,
            len,
            align,
            word_starts: len.saturating_sub(7),
            u32_starts: len.saturating_sub(3),
            backing: Backing::System { raw, layout: raw_layout },
        })
    }

    /// An arena over memory mapped by someone else (a memfd shared mapping,
    /// as the kernel model's page pool is), which `owner` releases when it
    /// drops, after the arena is done with it.
    ///
    /// # Safety
    /// `base` is aligned to `align` (a power of two) and `len ≥ 1`;
    /// `base..base+len` is reserved for this arena alone until `owner`
    /// drops, and every byte of it that the arena's accessors read or
    /// write, or that is handed out in a block, is mapped readable,
    /// writable and initialised. An owner may keep parts of the range
    /// unmapped (a virtual space that its allocator maps on demand), as
    /// long as nothing touches them while they are.
    pub unsafe fn from_mapping(
        base: NonNull<u8>,
        len: usize,
        align: usize,
        owner: Box<dyn std::any::Any + Send>,
    ) -> Arena {
        debug_assert!(len >= 1 && align.is_power_of_two() && base.as_ptr().addr().is_multiple_of(align));
        Arena {
            base,
            len,
            align,
            word_starts: len.saturating_sub(7),
            u32_starts: len.saturating_sub(3),
            backing: Backing::Mapping(owner),
        }
    }

    /// The owner of a mapped arena, if it is one of type `T`.
    pub fn owner<T: std::any::Any>(&self) -> Option<&T> {
        match &self.backing {
            Backing::Mapping(owner) => owner.downcast_ref(),
            Backing::System { .. } => None,
        }
    }

    /// Bytes in the arena.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: an arena holds at least one byte.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Alignment of the arena's base address.
    #[inline]
    pub fn align(&self) -> usize {
        self.align
    }

    /// Address of offset 0.
    #[inline]
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Pointer to `offset`, which may be one past the end.
    ///
    /// # Panics
    /// If `offset > len`.
    #[inline]
    pub fn ptr_at(&self, offset: usize) -> NonNull<u8> {
        assert!(offset <= self.len, "offset {offset} outside an arena of {} bytes", self.len);
        // SAFETY: offset <= len, so the result is inside the block or one past it.
        unsafe { self.base.add(offset) }
    }

    /// Offset of `ptr` from the base, or `None` if `ptr` lies outside
    /// `base..=base+len`.
    #[inline]
    pub fn offset_of(&self, ptr: NonNull<u8>) -> Option<usize> {
        let offset = ptr.as_ptr().addr().wrapping_sub(self.base.as_ptr().addr());
        (offset <= self.len).then_some(offset)
    }

    /// Offset of a pointer the allocator itself handed out.
    ///
    /// # Panics
    /// If `ptr` is outside the arena: that is a broken caller contract.
    #[inline]
    pub fn offset_of_owned(&self, ptr: NonNull<u8>) -> usize {
        match self.offset_of(ptr) {
            Some(offset) => offset,
            None => panic!("pointer {ptr:p} does not belong to this arena"),
        }
    }

    /// Does `offset..offset+len` lie inside the arena?
    #[inline]
    pub fn contains(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// The 8-byte word at `offset` (any alignment).
    ///
    /// # Panics
    /// If the word does not lie inside the arena.
    #[inline]
    pub fn load_word(&self, offset: usize) -> u64 {
        if offset >= self.word_starts {
            self.word_outside(offset);
        }
        // SAFETY: offset < len − 7 (checked above), so the 8 bytes are
        // inside the arena, which owns them and keeps
        // them initialised; read_unaligned has no alignment requirement.
        unsafe { self.base.add(offset).cast::<u64>().read_unaligned() }
    }

    /// Store an 8-byte word at `offset` (any alignment).
    ///
    /// # Panics
    /// If the word does not lie inside the arena.
    #[inline]
    pub fn store_word(&mut self, offset: usize, value: u64) {
        if offset >= self.word_starts {
            self.word_outside(offset);
        }
        // SAFETY: as in load_word; `&mut self` means no other access through
        // this arena runs at the same time.
        unsafe { self.base.add(offset).cast::<u64>().write_unaligned(value) }
    }

    /// The panic of a word access outside the arena, kept out of line so
    /// that the check in the accessors is one compare and a jump.
    #[cold]
    #[inline(never)]
    fn word_outside(&self, offset: usize) -> ! {
        panic!("word at {offset} outside an arena of {} bytes", self.len)
    }

    /// The 4-byte word at `offset` (any alignment).
    ///
    /// # Panics
    /// If the word does not lie inside the arena.
    #[inline]
    pub fn load_u32(&self, offset: usize) -> u32 {
        if offset >= self.u32_starts {
            self.word_outside(offset);
        }
        // SAFETY: offset < len − 3 (checked above): as in load_word.
        unsafe { self.base.add(offset).cast::<u32>().read_unaligned() }
    }

    /// Store a 4-byte word at `offset` (any alignment).
    ///
    /// # Panics
    /// If the word does not lie inside the arena.
    #[inline]
    pub fn store_u32(&mut self, offset: usize, value: u32) {
        if offset >= self.u32_starts {
            self.word_outside(offset);
        }
        // SAFETY: as in store_word.
        unsafe { self.base.add(offset).cast::<u32>().write_unaligned(value) }
    }

    /// The 8-byte word at `offset`, without a bounds check in release builds.
    ///
    /// # Safety
    /// `offset + 8 <= self.len()`.
    #[inline(always)]
    pub unsafe fn load_word_unchecked(&self, offset: usize) -> u64 {
        debug_assert!(offset < self.word_starts, "word at {offset} outside an arena of {} bytes", self.len);
        // SAFETY: the caller guarantees the 8 bytes lie inside the arena,
        // which owns them and keeps them initialised.
        unsafe { self.base.add(offset).cast::<u64>().read_unaligned() }
    }

    /// Store an 8-byte word at `offset`, without a bounds check in release
    /// builds.
    ///
    /// # Safety
    /// `offset + 8 <= self.len()`.
    #[inline(always)]
    pub unsafe fn store_word_unchecked(&mut self, offset: usize, value: u64) {
        debug_assert!(offset < self.word_starts, "word at {offset} outside an arena of {} bytes", self.len);
        // SAFETY: as in load_word_unchecked; `&mut self` excludes other accesses.
        unsafe { self.base.add(offset).cast::<u64>().write_unaligned(value) }
    }

    /// The 4-byte word at `offset`, without a bounds check in release builds.
    ///
    /// # Safety
    /// `offset + 4 <= self.len()`.
    #[inline(always)]
    pub unsafe fn load_u32_unchecked(&self, offset: usize) -> u32 {
        debug_assert!(offset < self.u32_starts, "word at {offset} outside an arena of {} bytes", self.len);
        // SAFETY: as in load_word_unchecked.
        unsafe { self.base.add(offset).cast::<u32>().read_unaligned() }
    }

    /// Store a 4-byte word at `offset`, without a bounds check in release
    /// builds.
    ///
    /// # Safety
    /// `offset + 4 <= self.len()`.
    #[inline(always)]
    pub unsafe fn store_u32_unchecked(&mut self, offset: usize, value: u32) {
        debug_assert!(offset < self.u32_starts, "word at {offset} outside an arena of {} bytes", self.len);
        // SAFETY: as in store_word_unchecked.
        unsafe { self.base.add(offset).cast::<u32>().write_unaligned(value) }
    }

    /// Pointer to `offset`, without a bounds check in release builds.
    ///
    /// # Safety
    /// `offset <= self.len()`.
    #[inline(always)]
    pub unsafe fn ptr_at_unchecked(&self, offset: usize) -> NonNull<u8> {
        debug_assert!(offset <= self.len, "offset {offset} outside an arena of {} bytes", self.len);
        // SAFETY: the caller guarantees offset <= len: inside the block or
        // one past it.
        unsafe { self.base.add(offset) }
    }

    /// Offset of a pointer the allocator itself handed out, checked only in
    /// debug builds: for pointers the caller's contract says are the
    /// allocator's own (the argument of `free`). The answer is meaningless
    /// for any other pointer; using it for an unchecked access is what the
    /// contract of that access rules out.
    #[inline(always)]
    pub fn offset_of_unchecked(&self, ptr: NonNull<u8>) -> usize {
        let offset = ptr.as_ptr().addr().wrapping_sub(self.base.as_ptr().addr());
        debug_assert!(offset <= self.len, "pointer {ptr:p} does not belong to this arena");
        offset
    }

    /// Touch one byte in every 4 KiB page of the first `len` bytes (writing
    /// the zero that is there), so that their page faults happen now and
    /// not in a measurement.
    pub fn prefault(&mut self, len: usize) {
        for offset in (0..len.min(self.len)).step_by(4096) {
            // SAFETY: offset < len, inside the arena, which owns the byte;
            // writing a zero over a zero changes nothing but the mapping.
            unsafe { self.base.add(offset).as_ptr().write_volatile(0) };
        }
    }

    /// Copy `len` bytes from `from` to `to` inside the arena; the ranges may
    /// overlap.
    ///
    /// # Panics
    /// If either range leaves the arena.
    pub fn copy_within(&mut self, from: usize, to: usize, len: usize) {
        assert!(self.contains(from, len) && self.contains(to, len), "copy outside the arena");
        // SAFETY: both ranges are inside the arena; `copy` allows overlap.
        unsafe { std::ptr::copy(self.base.add(from).as_ptr(), self.base.add(to).as_ptr(), len) }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        if let Backing::System { raw, layout } = self.backing {
            // SAFETY: `raw` came from alloc_zeroed with exactly `layout`.
            unsafe { alloc::dealloc(raw.as_ptr(), layout) }
        }
        // A mapping's owner drops with the field, after this.
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena").field("len", &self.len).field("align", &self.align).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_is_aligned_and_memory_zeroed() {
        for align in [1, 16, 4096, 1 << 16] {
            let arena = Arena::with_align(10_000, align).unwrap();
            assert_eq!(arena.base().as_ptr().addr() % align, 0);
            assert!((0..10_000 - 8).step_by(8).all(|offset| arena.load_word(offset) == 0));
        }
    }

    #[test]
    fn words_round_trip_and_offsets_map_back() {
        let mut arena = Arena::new(64).unwrap();
        arena.store_word(3, 0xdead_beef_0123_4567);
        assert_eq!(arena.load_word(3), 0xdead_beef_0123_4567);
        arena.store_u32(60, 7);
        assert_eq!(arena.load_u32(60), 7);
        let ptr = arena.ptr_at(40);
        assert_eq!(arena.offset_of(ptr), Some(40));
        assert_eq!(arena.offset_of(arena.ptr_at(64)), Some(64));
    }

    #[test]
    #[should_panic(expected = "outside an arena")]
    fn word_past_the_end_panics_instead_of_corrupting() {
        Arena::new(64).unwrap().load_word(57);
    }

    #[test]
    fn every_word_access_is_checked_at_both_edges() {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        for len in [1, 3, 4, 7, 8, 9, 64] {
            let mut arena = Arena::new(len).unwrap();
            for offset in [0, len.saturating_sub(8), len.saturating_sub(4), len - 1, len, usize::MAX] {
                let fits = |width: usize| offset.checked_add(width).is_some_and(|end| end <= len);
                let mut access = |width: usize| {
                    catch_unwind(AssertUnwindSafe(|| {
                        if width == 8 {
                            arena.store_word(offset, 1);
                            arena.load_word(offset);
                        } else {
                            arena.store_u32(offset, 1);
                            arena.load_u32(offset);
                        }
                    }))
                    .is_ok()
                };
                assert_eq!(access(8), fits(8), "8 bytes at {offset} of {len}");
                assert_eq!(access(4), fits(4), "4 bytes at {offset} of {len}");
            }
        }
    }

    #[test]
    fn bad_requests_are_errors() {
        assert_eq!(Arena::new(0).unwrap_err(), ArenaError::Empty);
        assert_eq!(Arena::with_align(8, 3).unwrap_err(), ArenaError::BadAlignment(3));
        assert!(matches!(Arena::new(usize::MAX - 8), Err(ArenaError::TooLarge(_))));
    }

    #[test]
    fn pointers_outside_are_not_ours() {
        let a = Arena::new(64).unwrap();
        let b = Arena::new(64).unwrap();
        // b's block is a separate allocation, so it cannot start inside a.
        assert_eq!(a.offset_of(b.ptr_at(0)), None);
    }
}
