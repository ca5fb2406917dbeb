//! Two-level segregated fit (TLSF, Masmano et al. 2004): a first level by
//! power of two, a second level splitting each power of two into `2^sl`
//! equal ranges, two bitmaps, and a good-fit search in O(1).
//!
//! Sizes are counted in 16-byte granules `u`. Below `2^sl` granules every
//! size has its own list (first level 0). Above, with `l = ⌊log2 u⌋`:
//! `fl = l − sl + 1`, `second = (u >> (l − sl)) − 2^sl`.
//!
//! **Search** (`mapping_search`): round the request up to the next list
//! boundary, so that *any* block of the list found fits, then find the first
//! non-empty list at or above it: one bit scan in the second-level bitmap of
//! that first level, else one in the first-level bitmap and one in the
//! second level it names. Constant time, no list is walked. An alignment
//! above 16 bytes asks for `size + align − 16`, room for the padding
//! wherever a block starts (it stays in the block, as rlsf's does). The
//! price is *good* fit rather than best fit: a block just above the request
//! in the request's own list is passed over.
//!
//! The second-level bits are a type parameter (1 to 5), so that every shift
//! of the mapping is a constant; `segregated:kind=tlsf,sl=N` picks the
//! instance.

use heaplab_core::Kept;
use heaplab_freelist::tags::{GRANULE, Mem, fit, max_padding, padding};

use crate::heap::{Found, Index, InlineHeads};

/// The two-level index with `2^SL` second-level lists per power of two
/// (`SL` from 1 to 5: a constant, so every shift below is one instruction).
#[derive(Debug, Clone)]
pub struct TlsfIndex<const SL: u32> {
    /// First levels the arena needs; every class is below `first_levels << SL`.
    first_levels: usize,
    /// Bit `fl` set iff some list of first level `fl` is non-empty.
    first: u64,
    /// Per first level: bit `second` set iff that list is non-empty.
    /// `first_levels <= 64`, since sizes are below 2^64.
    second: [u64; 64],
}

impl<const SL: u32> Default for TlsfIndex<SL> {
    fn default() -> Self {
        TlsfIndex::new()
    }
}

impl<const SL: u32> TlsfIndex<SL> {
    const SUBDIVISIONS_MASK: usize = (1 << SL) - 1;

    /// An empty index (sized by [`Index::prepare`]).
    pub const fn new() -> TlsfIndex<SL> {
        assert!(SL >= 1 && SL <= 5, "second-level bits must be 1 to 5");
        TlsfIndex { first_levels: 0, first: 0, second: [0; 64] }
    }

    /// The second-level bits.
    pub fn sl_bits(&self) -> u32 {
        SL
    }

    /// `(fl, second)` of a size in granules (at least 1).
    #[inline]
    pub fn mapping(&self, granules: usize) -> (usize, usize) {
        let class = Self::flat_of(granules);
        (class >> SL, class & Self::SUBDIVISIONS_MASK)
    }

    /// The flat list number of a size in granules (at least 1): below
    /// `2^SL` granules one list per size; above, with `l = ⌊log2 u⌋` and
    /// `shift = l − SL`, `(shift << SL) + (u >> shift)`, which is
    /// `(fl << SL) + second` for `fl = l − SL + 1` and `second = (u >> shift)
    /// − 2^SL`. Branch-free: the shift is 0 for the small sizes.
    #[inline(always)]
    fn flat_of(granules: usize) -> usize {
        let shift = granules.ilog2().saturating_sub(SL);
        ((shift as usize) << SL) + (granules >> shift)
    }

    #[cfg(test)]
    fn flat(&self, (fl, second): (usize, usize)) -> usize {
        (fl << SL) + second
    }

    /// The list to search for a request of `size` bytes: its size rounded
    /// up to the next list boundary, mapped.
    #[inline]
    pub fn mapping_search(&self, size: usize) -> Option<(usize, usize)> {
        let class = Self::search_class(size.div_ceil(GRANULE))?;
        Some((class >> SL, class & Self::SUBDIVISIONS_MASK))
    }

    /// The flat list of [`TlsfIndex::mapping_search`], for a size in
    /// granules (at least 1): the size's own list, or the next one when the
    /// size is not that list's smallest (the bits below the shift are not
    /// all zero). Lists are numbered without gaps across first levels, so
    /// "the next one" is one more.
    #[inline(always)]
    fn search_class(granules: usize) -> Option<usize> {
        // Most requests are below 2^SL granules, where a size is its own
        // list: a branch, predicted taken, keeps the bit scans and shifts
        // off the path from the request to its list's bitmap.
        if granules < 1 << SL {
            return Some(granules);
        }
        let shift = granules.ilog2().saturating_sub(SL);
        let own = ((shift as usize) << SL) + (granules >> shift);
        Some(own + usize::from(granules & ((1 << shift) - 1) != 0))
    }
}

// SAFETY: `prepare` sizes the lists for the arena's largest block, so
// `class_of` of any block size is below the count; `search` returns the head
// of a non-empty list, a listed block, with `fit`'s gap.
unsafe impl<const SL: u32> Index for TlsfIndex<SL> {
    /// TLSF inspects exactly one list head per request: no search counter.
    const KEPT: Kept = Kept::SPLITS_AND_COALESCES;
    /// At most 64 first levels of `2^SL <= 32` lists: inside the allocator.
    type Heads = InlineHeads;

    fn heads(lists: usize) -> InlineHeads {
        InlineHeads::new(lists)
    }

    fn prepare(&mut self, arena_bytes: usize) -> usize {
        let (fl, _) = self.mapping((arena_bytes / GRANULE).max(1));
        self.first_levels = fl + 1;
        self.first = 0;
        self.second = [0; 64];
        self.first_levels << SL
    }

    #[inline(always)]
    fn class_of(&self, size: usize) -> usize {
        Self::flat_of(size / GRANULE)
    }

    #[inline(always)]
    fn mark(&mut self, class: usize, nonempty: bool) {
        // `& 63` keeps the index in the array without a bounds check; first
        // levels never reach 64.
        let (fl, second) = ((class >> SL) & 63, class & Self::SUBDIVISIONS_MASK);
        if nonempty {
            let before = self.second[fl];
            self.second[fl] = before | 1 << second;
            if before == 0 {
                self.first |= 1 << fl;
            }
        } else {
            self.second[fl] &= !(1 << second);
            if self.second[fl] == 0 {
                self.first &= !(1 << fl);
            }
        }
    }

    fn is_marked(&self, class: usize) -> bool {
        let (fl, second) = ((class >> SL) & 63, class & Self::SUBDIVISIONS_MASK);
        self.second[fl] & (1 << second) != 0
    }

    fn list_name(&self, list: usize) -> String {
        // The inverse of `flat_of`: list k holds sizes from m << shift
        // granules, m = k − (shift << SL), shift = max(k >> SL, 1) − 1.
        let shift = (list >> SL).max(1) - 1;
        let from = (list - (shift << SL)) << shift;
        format!("fl {}, sl {}: from {} B", list >> SL, list & Self::SUBDIVISIONS_MASK, from * GRANULE)
    }

    fn second_level(&self) -> Option<usize> {
        Some(1 << SL)
    }

    #[inline(always)]
    unsafe fn search(&self, mem: Mem, heads: &[usize], needed: usize, align: usize) -> (Option<Found>, u64) {
        // Block sizes, alignments above the granule and MIN_BLOCK are all
        // multiples of the granule, so the request is a whole number of them.
        let want = if align <= GRANULE { Some(needed) } else { needed.checked_add(max_padding(align)) };
        let Some(class) = want.and_then(|want| Self::search_class(want / GRANULE)) else { return (None, 0) };
        // No test against `first_levels`: a first level past the arena's
        // has no bit in either bitmap (marks come from block sizes), so
        // the scans below find nothing there. `fl + 1 < 64`, since a size
        // below 2^64 bytes has fewer than 2^60 granules.
        let fl = class >> SL;
        let here = self.second[fl & 63] & (!0u64 << (class & Self::SUBDIVISIONS_MASK));
        let found = if here != 0 {
            (fl << SL) + here.trailing_zeros() as usize
        } else {
            // fl + 1 < 64: first levels never reach 64.
            let above = self.first & (!0u64 << ((fl + 1) & 63));
            if above == 0 {
                return (None, 0);
            }
            let fl = above.trailing_zeros() as usize;
            (fl << SL) + self.second[fl & 63].trailing_zeros() as usize
        };
        debug_assert!(found < heads.len());
        // SAFETY: a marked class is one of `heads` (the caller's guarantee).
        let block = unsafe { *heads.get_unchecked(found) };
        if align <= GRANULE {
            // Every block of the list is at least the rounded request.
            return (Some(Found { block, gap: 0, class: found, head: true }), 1);
        }
        // Every block of the list holds the request and its largest padding.
        // SAFETY: `block` heads a non-empty list: a listed free block.
        debug_assert!(fit(block, unsafe { mem.size_of(block) }, needed, align).is_some());
        (Some(Found { block, gap: padding(block, align), class: found, head: true }), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_pins_its_edges() {
        let index = TlsfIndex::<4>::new();
        // Below 16 granules (256 bytes): one list per size.
        assert_eq!(index.mapping(2), (0, 2));
        assert_eq!(index.mapping(15), (0, 15));
        // 16..32 granules: first level 1, one list per granule.
        assert_eq!(index.mapping(16), (1, 0));
        assert_eq!(index.mapping(31), (1, 15));
        // 32..64 granules: first level 2, lists two granules wide.
        assert_eq!(index.mapping(32), (2, 0));
        assert_eq!(index.mapping(33), (2, 0));
        assert_eq!(index.mapping(34), (2, 1));
        assert_eq!(index.mapping(63), (2, 15));
        assert_eq!(index.mapping(64), (3, 0));
        // 2^20 granules (16 MiB): first level 17, lists 2^16 granules wide.
        assert_eq!(index.mapping(1 << 20), (17, 0));
        assert_eq!(index.mapping((1 << 20) + (1 << 16)), (17, 1));
    }

    #[test]
    fn the_search_rounds_up_so_that_any_block_of_the_list_fits() {
        let index = TlsfIndex::<4>::new();
        // 33 granules lives in (2, 0) with 32; a search for it must start at (2, 1).
        assert_eq!(index.mapping_search(33 * GRANULE), Some((2, 1)));
        assert_eq!(index.mapping_search(32 * GRANULE), Some((2, 0)));
        assert_eq!(index.mapping_search(5 * GRANULE), Some((0, 5)));
        for size in (32..100_000).step_by(16) {
            let (fl, second) = index.mapping_search(size).unwrap();
            // The smallest size mapped to that list is at least the request.
            let floor = (2usize..).map(|g| g * GRANULE).find(|&s| index.mapping(s / GRANULE) == (fl, second)).unwrap();
            assert!(floor >= size, "{size} searched from a list starting at {floor}");
        }
    }

    #[test]
    fn marks_keep_both_bitmaps_in_step() {
        let mut index = TlsfIndex::<4>::new();
        index.prepare(1 << 20);
        let class = index.flat((3, 5));
        index.mark(class, true);
        assert_eq!((index.first, index.second[3]), (1 << 3, 1 << 5));
        assert!(index.is_marked(class));
        index.mark(class, false);
        assert_eq!((index.first, index.second[3]), (0, 0));
    }
}
