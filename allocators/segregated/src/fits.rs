//! Segregated fits: one list per size class of a [`Scheme`], a bitmap of
//! non-empty classes.
//!
//! **Search**: first fit within the request's own class (its blocks may be
//! smaller than the request, since a class is a range of sizes), then the
//! head of the next non-empty class found by a bit scan: every block there
//! is at least the class's floor, above the request, so it fits without a
//! look (an alignment above 16 bytes makes the search look at the blocks).
//! O(blocks in the request's class) + O(1).

use heaplab_freelist::tags::{GRANULE, ListEnds, NIL, TagHeap};

use crate::classes::{Bitmap, Scheme};
use crate::heap::Index;

/// The index of segregated fits.
#[derive(Debug, Clone)]
pub struct FitsIndex {
    scheme: Scheme,
    nonempty: Bitmap,
}

impl FitsIndex {
    /// Classes of `scheme`.
    pub fn new(scheme: Scheme) -> FitsIndex {
        FitsIndex { scheme, nonempty: Bitmap::new(1) }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
}

impl Index for FitsIndex {
    fn prepare(&mut self, arena_bytes: usize) -> usize {
        let lists = self.scheme.class_of(arena_bytes.max(64)) + 1;
        self.nonempty = Bitmap::new(lists);
        lists
    }

    fn class_of(&self, size: usize) -> usize {
        self.scheme.class_of(size)
    }

    fn mark(&mut self, class: usize, nonempty: bool) {
        self.nonempty.set(class, nonempty);
    }

    fn is_marked(&self, class: usize) -> bool {
        self.nonempty.get(class)
    }

    fn search(&self, heap: &TagHeap, lists: &[ListEnds], needed: usize, align: usize) -> (Option<(usize, usize)>, u64) {
        let own = self.scheme.class_of(needed);
        let mut inspected = 0;
        let mut class = own;
        while let Some(found) = self.nonempty.first_at_or_after(class) {
            let head = lists[found].head;
            if found != own && align <= GRANULE && self.scheme.all_fit(found, needed) {
                return (Some((head, 0)), inspected + 1);
            }
            let mut block = head;
            while block != NIL {
                inspected += 1;
                if let Some(gap) = TagHeap::fit(block, heap.size(block), needed, align) {
                    return (Some((block, gap)), inspected);
                }
                block = heap.next(block);
            }
            class = found + 1;
        }
        (None, inspected)
    }
}
