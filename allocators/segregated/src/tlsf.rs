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
//! above 16 bytes asks for `size + align + 32` so that a front gap always
//! fits. The price is *good* fit rather than best fit: a block just above
//! the request in the request's own list is passed over.

use heaplab_freelist::tags::{GRANULE, ListEnds, MIN_BLOCK, TagHeap};

use crate::heap::Index;

/// The two-level index.
#[derive(Debug, Clone)]
pub struct TlsfIndex {
    /// log2 of the second-level subdivisions.
    sl_bits: u32,
    /// Bit `fl` set iff some list of first level `fl` is non-empty.
    first: u64,
    /// Per first level: bit `second` set iff that list is non-empty.
    second: Vec<u64>,
}

impl TlsfIndex {
    /// `2^sl_bits` second-level lists per power of two (1 to 5 bits).
    pub fn new(sl_bits: u32) -> TlsfIndex {
        assert!((1..=5).contains(&sl_bits), "second-level bits must be 1 to 5");
        TlsfIndex { sl_bits, first: 0, second: Vec::new() }
    }

    /// The second-level bits.
    pub fn sl_bits(&self) -> u32 {
        self.sl_bits
    }

    /// `(fl, second)` of a size in granules.
    #[inline]
    pub fn mapping(&self, granules: usize) -> (usize, usize) {
        let subdivisions = 1usize << self.sl_bits;
        if granules < subdivisions {
            (0, granules)
        } else {
            let log = granules.ilog2();
            ((log - self.sl_bits + 1) as usize, (granules >> (log - self.sl_bits)) - subdivisions)
        }
    }

    #[inline]
    fn flat(&self, (fl, second): (usize, usize)) -> usize {
        (fl << self.sl_bits) + second
    }

    /// The list to search for a request of `size` bytes: its size rounded
    /// up to the next list boundary, mapped.
    #[inline]
    pub fn mapping_search(&self, size: usize) -> Option<(usize, usize)> {
        let granules = size.div_ceil(GRANULE);
        let rounded = if granules < (1 << self.sl_bits) {
            granules
        } else {
            granules.checked_add((1usize << (granules.ilog2() - self.sl_bits)) - 1)?
        };
        Some(self.mapping(rounded))
    }
}

impl Index for TlsfIndex {
    fn prepare(&mut self, arena_bytes: usize) -> usize {
        let (fl, _) = self.mapping((arena_bytes / GRANULE).max(1));
        self.second = vec![0; fl + 1];
        (fl + 1) << self.sl_bits
    }

    #[inline]
    fn class_of(&self, size: usize) -> usize {
        self.flat(self.mapping(size / GRANULE))
    }

    #[inline]
    fn mark(&mut self, class: usize, nonempty: bool) {
        let (fl, second) = (class >> self.sl_bits, class & ((1 << self.sl_bits) - 1));
        if nonempty {
            self.second[fl] |= 1 << second;
            self.first |= 1 << fl;
        } else {
            self.second[fl] &= !(1 << second);
            if self.second[fl] == 0 {
                self.first &= !(1 << fl);
            }
        }
    }

    fn is_marked(&self, class: usize) -> bool {
        let (fl, second) = (class >> self.sl_bits, class & ((1 << self.sl_bits) - 1));
        self.second[fl] & (1 << second) != 0
    }

    #[inline]
    fn search(&self, heap: &TagHeap, lists: &[ListEnds], needed: usize, align: usize) -> (Option<(usize, usize)>, u64) {
        let want = if align <= GRANULE { Some(needed) } else { needed.checked_add(align + MIN_BLOCK) };
        let Some((fl, second)) = want.and_then(|w| self.mapping_search(w)) else { return (None, 0) };
        if fl >= self.second.len() {
            return (None, 0);
        }
        let here = self.second[fl] & (!0u64 << second);
        let (fl, second) = if here != 0 {
            (fl, here.trailing_zeros() as usize)
        } else {
            let above = self.first & (!0u64).checked_shl(fl as u32 + 1).unwrap_or(0);
            if above == 0 {
                return (None, 0);
            }
            let fl = above.trailing_zeros() as usize;
            (fl, self.second[fl].trailing_zeros() as usize)
        };
        let block = lists[self.flat((fl, second))].head;
        let gap = TagHeap::fit(block, heap.size(block), needed, align);
        debug_assert!(gap.is_some(), "a good-fit list holds blocks that fit");
        (gap.map(|gap| (block, gap)), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_pins_its_edges() {
        let index = TlsfIndex::new(4);
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
        let index = TlsfIndex::new(4);
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
        let mut index = TlsfIndex::new(4);
        index.prepare(1 << 20);
        let class = index.flat((3, 5));
        index.mark(class, true);
        assert_eq!((index.first, index.second[3]), (1 << 3, 1 << 5));
        assert!(index.is_marked(class));
        index.mark(class, false);
        assert_eq!((index.first, index.second[3]), (0, 0));
    }
}
