//! vmalloc's virtual address space: which ranges are free, which areas are
//! live, and the page-table pages their mappings need.
//!
//! Linux keeps vmap areas in two red-black trees, the busy areas by address
//! and the free space augmented with subtree maxima, and takes the lowest
//! free range that fits (`__alloc_vmap_area`). Here the free ranges are a
//! `BTreeMap` from start to length, searched from the lowest address (first
//! fit, the same choice; O(free ranges) rather than Linux's O(log n)), and
//! the busy areas a `BTreeMap` from start to the area. Offsets are in pages
//! from the start of the space.

use std::collections::BTreeMap;

/// Pages one page-table page maps: 512 entries of 8 bytes (x86-64, 4 KiB
/// pages), 2 MiB of virtual space.
pub const PTES_PER_PAGE: usize = 512;

/// A live vmalloc area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    /// Bytes requested.
    pub requested: usize,
    /// The pool frames mapped, in virtual order (pool page indices); the
    /// guard page after them is mapped to nothing.
    pub frames: Vec<u32>,
    /// `mmap` calls the mapping took: runs of consecutive frames.
    pub runs: usize,
    /// For a user mapping (a malloc request above the mmap threshold, see
    /// [`crate::heap`]), the address space it belongs to; `None` for a
    /// vmalloc area.
    pub user: Option<u8>,
}

impl Area {
    /// Mapped pages.
    pub fn pages(&self) -> usize {
        self.frames.len()
    }
}

/// The free and busy ranges of a virtual space of `pages` pages.
#[derive(Debug, Clone)]
pub struct Space {
    pages: usize,
    /// Free ranges, start → length; disjoint, not adjacent (coalesced).
    free: BTreeMap<usize, usize>,
    /// Live areas by start; each occupies its pages plus one guard page.
    busy: BTreeMap<usize, Area>,
}

impl Space {
    /// A space of `pages` free pages.
    pub fn new(pages: usize) -> Space {
        let mut free = BTreeMap::new();
        if pages > 0 {
            free.insert(0, pages);
        }
        Space { pages, free, busy: BTreeMap::new() }
    }

    /// Take the lowest range of `pages` pages whose start is a multiple of
    /// `align` pages; `None` if no free range holds one.
    pub fn take(&mut self, pages: usize, align: usize) -> Option<usize> {
        let (start, len, at) = self.free.iter().find_map(|(&start, &len)| {
            let at = start.next_multiple_of(align);
            (at + pages <= start + len).then_some((start, len, at))
        })?;
        self.free.remove(&start);
        if at > start {
            self.free.insert(start, at - start);
        }
        if at + pages < start + len {
            self.free.insert(at + pages, start + len - at - pages);
        }
        Some(at)
    }

    /// Give back `pages` pages at `start`, merging with free neighbours.
    pub fn give(&mut self, start: usize, pages: usize) {
        let (mut start, mut pages) = (start, pages);
        if let Some((&before, &len)) = self.free.range(..start).next_back()
            && before + len == start
        {
            self.free.remove(&before);
            start = before;
            pages += len;
        }
        if let Some(len) = self.free.remove(&(start + pages)) {
            pages += len;
        }
        self.free.insert(start, pages);
    }

    /// Record a live area at `start`.
    pub fn insert(&mut self, start: usize, area: Area) {
        self.busy.insert(start, area);
    }

    /// The live area at `start`.
    pub fn area(&self, start: usize) -> Option<&Area> {
        self.busy.get(&start)
    }

    /// The live area at `start`, to change its request.
    pub fn area_mut(&mut self, start: usize) -> Option<&mut Area> {
        self.busy.get_mut(&start)
    }

    /// Forget the live area at `start`.
    pub fn remove(&mut self, start: usize) -> Option<Area> {
        self.busy.remove(&start)
    }

    /// Live areas in address order.
    pub fn areas(&self) -> impl Iterator<Item = (usize, &Area)> {
        self.busy.iter().map(|(&start, area)| (start, area))
    }

    /// Free ranges in address order.
    pub fn free_ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.free.iter().map(|(&start, &len)| (start, len))
    }

    /// Pages in the space.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The longest free range, pages.
    pub fn largest_free(&self) -> usize {
        self.free.values().copied().max().unwrap_or(0)
    }

    /// Every invariant of the ranges: free ranges inside the space,
    /// disjoint and coalesced; areas (with their guard page) inside the
    /// space, disjoint from each other and from the free ranges; and
    /// together all of it.
    pub fn check(&self) -> Result<(), String> {
        let mut spans: Vec<(usize, usize, bool)> = self.free.iter().map(|(&s, &l)| (s, s + l, true)).collect();
        spans.extend(self.busy.iter().map(|(&s, area)| (s, s + area.pages() + 1, false)));
        spans.sort_unstable();
        let mut end = 0;
        for (index, &(start, stop, free)) in spans.iter().enumerate() {
            if stop <= start {
                return Err(format!("an empty range at virtual page {start}"));
            }
            if start != end {
                return Err(format!("virtual pages {end}..{start} are neither free nor in an area"));
            }
            if free && index > 0 && spans[index - 1].2 {
                return Err(format!("free virtual ranges meet at page {start} and are not merged"));
            }
            end = stop;
        }
        if end != self.pages {
            return Err(format!("the ranges end at virtual page {end}, the space at {}", self.pages));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(pages: usize) -> Area {
        Area { requested: pages * 4096, frames: (0..pages as u32).collect(), runs: 1, user: None }
    }

    #[test]
    fn the_lowest_fitting_range_is_taken_and_freed_ranges_merge() {
        let mut space = Space::new(64);
        let a = space.take(4, 1).unwrap();
        let b = space.take(4, 1).unwrap();
        let c = space.take(8, 8).unwrap();
        assert_eq!((a, b, c), (0, 4, 8));
        space.insert(a, area(3));
        space.insert(b, area(3));
        space.insert(c, area(7));
        space.check().unwrap();
        assert_eq!(space.free_ranges().collect::<Vec<_>>(), vec![(16, 48)]);
        space.give(b, 4);
        space.remove(b);
        // The hole at 4 takes the next small request, the first fit.
        assert_eq!(space.take(2, 1), Some(4));
        space.give(4, 2);
        space.give(a, 4);
        space.remove(a);
        space.check().unwrap();
        assert_eq!(space.free_ranges().collect::<Vec<_>>(), vec![(0, 8), (16, 48)]);
        space.give(c, 8);
        space.remove(c);
        assert_eq!(space.free_ranges().collect::<Vec<_>>(), vec![(0, 64)]);
        assert_eq!(space.take(65, 1), None);
        assert_eq!(space.largest_free(), 64);
    }

    #[test]
    fn a_broken_space_is_caught() {
        let mut space = Space::new(16);
        space.take(4, 1).unwrap();
        assert!(space.check().unwrap_err().contains("neither free nor in an area"));
        space.insert(0, area(3));
        space.check().unwrap();
        space.give(4, 2); // overlapping the free range at 4
        assert!(space.check().is_err());
    }
}
