//! An index over an address-ordered free list, so that address-ordered
//! first fit (and best fit) find the block a plain walk would find without
//! walking past every block that cannot serve the request.
//!
//! The arena is cut into at most [`MAX_REGIONS`] regions of a power-of-two
//! size. For each region the index keeps the first listed block that starts
//! in it, and an upper bound on the sizes of the listed blocks that start
//! in it; the bounds sit at the leaves of a max-tree. A search asks the tree
//! for the leftmost region at or after a point whose bound admits the
//! request (O(log regions)), walks that region's blocks in list order, and
//! when none fits, lowers the region's bound to the largest size it saw.
//! Bounds only rise when a block is listed or grows, so they stay upper
//! bounds: a region is skipped only when none of its blocks can fit, and the
//! block found is the one the walk from the head would have found, with the
//! same tie-breaking (the lowest address).
//!
//! The first block of each region also finds a freed block's place in the
//! list: the walk is confined to the block's own region.
//!
//! **Invariants** (checked by [`AddressIndex::check`]):
//! - `first[r]` is the lowest listed block starting in region `r`, or `NIL`;
//!   bit `r` of `occupied` is set iff `first[r] != NIL`;
//! - `tree[leaves + r]` is at least the size of every listed block starting
//!   in region `r` (0 for the unused leaves), and every inner node is the
//!   maximum of its two children.
//!
//! The index lives outside the arena, like an allocator's static data, and
//! counts as side metadata.

use heaplab_core::{InvariantViolation, ensure};

use crate::tags::NIL;

/// Most regions an arena is cut into.
pub const MAX_REGIONS: usize = 4096;
/// Smallest region, bytes.
const MIN_REGION: usize = 4096;

/// The regions' first blocks and size bounds.
#[derive(Debug, Clone)]
pub struct AddressIndex {
    /// `region(offset) = offset >> shift`.
    shift: u32,
    /// Leaves of the tree: a power of two, at least the number of regions.
    leaves: usize,
    /// The max-tree: `tree[1]` the root, `tree[leaves + r]` region `r`'s bound.
    tree: Vec<usize>,
    /// Per region, the lowest listed block starting in it, or `NIL`.
    first: Vec<usize>,
    /// Bit `r`: region `r` has a listed block.
    occupied: Vec<u64>,
    /// Bit `w`: `occupied[w] != 0`.
    occupied_words: u64,
}

impl AddressIndex {
    /// An index for an arena of `arena_bytes`, with no block listed.
    pub fn new(arena_bytes: usize) -> AddressIndex {
        let region = arena_bytes.div_ceil(MAX_REGIONS).next_power_of_two().max(MIN_REGION);
        let regions = arena_bytes.div_ceil(region).max(1);
        let leaves = regions.next_power_of_two();
        AddressIndex {
            shift: region.trailing_zeros(),
            leaves,
            tree: heaplab_core::side_table(0, 2 * leaves),
            first: heaplab_core::side_table(NIL, regions),
            occupied: heaplab_core::side_table(0, regions.div_ceil(64)),
            occupied_words: 0,
        }
    }

    /// Bytes the index takes outside the arena.
    pub fn side_bytes(&self) -> usize {
        (self.tree.len() + self.first.len() + self.occupied.len()) * size_of::<usize>()
    }

    /// The region `offset` lies in.
    #[inline(always)]
    pub fn region(&self, offset: usize) -> usize {
        offset >> self.shift
    }

    /// The lowest listed block of region `r`, or `NIL`.
    #[inline(always)]
    pub fn first(&self, region: usize) -> usize {
        self.first[region]
    }

    /// The first listed block after region `r`'s: the lowest block of the
    /// next occupied region, or `NIL`.
    #[inline]
    pub fn first_after(&self, region: usize) -> usize {
        let next = region + 1;
        let word = next / 64;
        if word < self.occupied.len() {
            let bits = self.occupied[word] & (!0u64).checked_shl((next % 64) as u32).unwrap_or(0);
            if bits != 0 {
                return self.first[word * 64 + bits.trailing_zeros() as usize];
            }
            let later = self.occupied_words & (!0u64).checked_shl(word as u32 + 1).unwrap_or(0);
            if later != 0 {
                let word = later.trailing_zeros() as usize;
                return self.first[word * 64 + self.occupied[word].trailing_zeros() as usize];
            }
        }
        NIL
    }

    fn set_first(&mut self, region: usize, block: usize) {
        self.first[region] = block;
        let (word, bit) = (region / 64, 1u64 << (region % 64));
        if block == NIL {
            self.occupied[word] &= !bit;
            if self.occupied[word] == 0 {
                self.occupied_words &= !(1 << word);
            }
        } else {
            self.occupied[word] |= bit;
            self.occupied_words |= 1 << word;
        }
    }

    /// `block` of `size` bytes is now listed (in its place in address order).
    #[inline]
    pub fn listed(&mut self, block: usize, size: usize) {
        let region = self.region(block);
        let first = self.first[region];
        if first == NIL || block < first {
            self.set_first(region, block);
        }
        self.raise(region, size);
    }

    /// `block`, whose list successor is `next`, leaves the list.
    #[inline]
    pub fn unlisted(&mut self, block: usize, next: usize) {
        let region = self.region(block);
        if self.first[region] == block {
            let successor = if next != NIL && self.region(next) == region { next } else { NIL };
            self.set_first(region, successor);
        }
    }

    /// Raise region `r`'s bound to at least `size`.
    #[inline]
    fn raise(&mut self, region: usize, size: usize) {
        let mut node = self.leaves + region;
        while node >= 1 && self.tree[node] < size {
            self.tree[node] = size;
            node >>= 1;
        }
    }

    /// Set region `r`'s bound to `bound`, the largest listed block seen in
    /// it (a walk of the whole region).
    pub fn tighten(&mut self, region: usize, bound: usize) {
        let mut node = self.leaves + region;
        if self.tree[node] == bound {
            return;
        }
        self.tree[node] = bound;
        node >>= 1;
        while node >= 1 {
            let max = self.tree[2 * node].max(self.tree[2 * node + 1]);
            if self.tree[node] == max {
                break;
            }
            self.tree[node] = max;
            node >>= 1;
        }
    }

    /// The leftmost region at or after `from` whose bound is at least
    /// `size`.
    #[inline]
    pub fn candidate(&self, from: usize, size: usize) -> Option<usize> {
        if from >= self.first.len() {
            return None;
        }
        let mut node = self.leaves + from;
        if self.tree[node] < size {
            // Climb until a right sibling may hold it.
            loop {
                if node == 1 {
                    return None;
                }
                if node & 1 == 0 && self.tree[node + 1] >= size {
                    node += 1;
                    break;
                }
                node >>= 1;
            }
            // Then take the leftmost path that may.
            while node < self.leaves {
                node = if self.tree[2 * node] >= size { 2 * node } else { 2 * node + 1 };
            }
        }
        let region = node - self.leaves;
        (region < self.first.len()).then_some(region)
    }

    /// Hold the index to the list: `members` in address order with their
    /// sizes.
    pub fn check(&self, members: &[(usize, usize)]) -> Result<(), InvariantViolation> {
        let mut expected_first = vec![NIL; self.first.len()];
        let mut largest = vec![0; self.first.len()];
        for &(block, size) in members {
            let region = self.region(block);
            ensure!(region < self.first.len(), @block, "a listed block lies beyond the index's regions");
            if expected_first[region] == NIL {
                expected_first[region] = block;
            }
            largest[region] = largest[region].max(size);
        }
        for region in 0..self.first.len() {
            ensure!(
                self.first[region] == expected_first[region],
                "region {region}'s first block is {}, the list says {}",
                self.first[region],
                expected_first[region]
            );
            let occupied = self.occupied[region / 64] >> (region % 64) & 1 == 1;
            ensure!(occupied == (expected_first[region] != NIL), "region {region}'s occupied bit is wrong");
            ensure!(
                self.tree[self.leaves + region] >= largest[region],
                "region {region}'s bound {} is below its block of {}",
                self.tree[self.leaves + region],
                largest[region]
            );
        }
        for (word, &bits) in self.occupied.iter().enumerate() {
            ensure!((self.occupied_words >> word & 1 == 1) == (bits != 0), "occupied summary bit {word} is wrong");
        }
        for node in 1..self.leaves {
            ensure!(
                self.tree[node] == self.tree[2 * node].max(self.tree[2 * node + 1]),
                "index node {node} is not the maximum of its children"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_cover_the_arena_in_at_most_the_maximum() {
        for arena in [100, 4096, 1 << 20, 64 << 20, (1 << 30) + 5] {
            let index = AddressIndex::new(arena);
            assert!(index.first.len() <= MAX_REGIONS);
            assert!(index.region(arena - 1) < index.first.len(), "{arena}");
        }
    }

    #[test]
    fn the_tree_finds_the_leftmost_region_that_may_fit() {
        let mut index = AddressIndex::new(64 * 4096);
        index.listed(3 * 4096 + 8, 100);
        index.listed(9 * 4096 + 8, 5000);
        index.listed(20 * 4096 + 8, 300);
        assert_eq!(index.candidate(0, 50), Some(3));
        assert_eq!(index.candidate(0, 200), Some(9));
        assert_eq!(index.candidate(10, 200), Some(20));
        assert_eq!(index.candidate(0, 6000), None);
        assert_eq!(index.candidate(21, 1), None);
        index.tighten(9, 64);
        assert_eq!(index.candidate(0, 200), Some(20));
        assert_eq!(index.first_after(3), 9 * 4096 + 8);
        assert_eq!(index.first_after(20), NIL);
        index.unlisted(9 * 4096 + 8, 20 * 4096 + 8);
        assert_eq!(index.first_after(3), 20 * 4096 + 8);
        index.check(&[(3 * 4096 + 8, 100), (20 * 4096 + 8, 300)]).unwrap();
        assert!(index.check(&[(3 * 4096 + 8, 100)]).is_err(), "region 20 is not listed");
    }
}
