//! Segregated fits: one list per size class of a [`Scheme`], a bitmap of
//! non-empty classes.
//!
//! **Search**: first fit within the request's own class (its blocks may be
//! smaller than the request, since a class is a range of sizes; an exact
//! class's head fits at once), then the head of the next non-empty class
//! found by a bit scan: every block there is at least the class's floor,
//! above the request, so it fits without a look. O(blocks in the request's
//! class) + O(1). An alignment above 16 bytes asks for `size + align − 16`,
//! room for its padding wherever a block starts, as dlmalloc's memalign
//! does, so that it too takes a head without a scan.
//!
//! The class scheme is a type parameter ([`SchemeOf`]), so that the class
//! arithmetic is compiled for each scheme alone.

use std::fmt::Debug;
use std::marker::PhantomData;

use heaplab_core::Kept;
use heaplab_freelist::tags::{GRANULE, Mem, NIL, fit, max_padding, padding};

use crate::classes::{Bitmap, Scheme};
use crate::heap::{Found, Index};

/// A class scheme as a type, so that the index's class arithmetic is
/// compiled for it alone.
pub trait SchemeOf: Debug + Send + Sync + 'static {
    /// The scheme.
    const SCHEME: Scheme;
}

/// [`Scheme::PowersOfTwo`].
#[derive(Debug)]
pub struct Pow2;
/// [`Scheme::WithMidpoints`].
#[derive(Debug)]
pub struct Pow2Mid;
/// [`Scheme::Dlmalloc`].
#[derive(Debug)]
pub struct Dl;

impl SchemeOf for Pow2 {
    const SCHEME: Scheme = Scheme::PowersOfTwo;
}
impl SchemeOf for Pow2Mid {
    const SCHEME: Scheme = Scheme::WithMidpoints;
}
impl SchemeOf for Dl {
    const SCHEME: Scheme = Scheme::Dlmalloc;
}

/// The index of segregated fits over the classes of `S`.
#[derive(Debug)]
pub struct FitsIndex<S: SchemeOf> {
    nonempty: Bitmap,
    scheme: PhantomData<S>,
}

impl<S: SchemeOf> Default for FitsIndex<S> {
    fn default() -> Self {
        FitsIndex::new()
    }
}

impl<S: SchemeOf> FitsIndex<S> {
    /// An empty index (sized by [`Index::prepare`]).
    pub fn new() -> FitsIndex<S> {
        FitsIndex { nonempty: Bitmap::new(1), scheme: PhantomData }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        S::SCHEME
    }
}

// SAFETY: `prepare` makes a list for every class up to the arena's size;
// `search` returns listed blocks (list heads, or members it walked to) with
// their class and `fit`'s gap.
unsafe impl<S: SchemeOf> Index for FitsIndex<S> {
    const KEPT: Kept = Kept::ALL;
    type Heads = Vec<usize>;

    fn heads(lists: usize) -> Vec<usize> {
        heaplab_core::side_table(NIL, lists)
    }

    fn prepare(&mut self, arena_bytes: usize) -> usize {
        let lists = S::SCHEME.class_of(arena_bytes.max(64)) + 1;
        self.nonempty = Bitmap::new(lists);
        lists
    }

    #[inline(always)]
    fn class_of(&self, size: usize) -> usize {
        S::SCHEME.class_of(size)
    }

    #[inline(always)]
    fn mark(&mut self, class: usize, nonempty: bool) {
        self.nonempty.set(class, nonempty);
    }

    fn is_marked(&self, class: usize) -> bool {
        self.nonempty.get(class)
    }

    fn list_name(&self, list: usize) -> String {
        format!("class {list}: from {} B", S::SCHEME.class_floor(list))
    }

    #[inline(always)]
    unsafe fn search(&self, mem: Mem, heads: &[usize], needed: usize, align: usize) -> (Option<Found>, u64) {
        // An over-aligned request asks for room for its padding wherever a
        // block starts, as dlmalloc's memalign does: then, like any other,
        // it is served by the first block of a class above its own.
        let want = if align <= GRANULE {
            needed
        } else {
            match needed.checked_add(max_padding(align)) {
                Some(want) => want,
                None => return (None, 0),
            }
        };
        let own = S::SCHEME.class_of(want);
        let mut inspected = 0;
        let mut class = own;
        while let Some(found) = self.nonempty.first_at_or_after(class) {
            debug_assert!(found < heads.len());
            // SAFETY: a marked class is one of `heads` (the caller's guarantee).
            let head = unsafe { *heads.get_unchecked(found) };
            // Classes are ranges of sizes: a class above the request's own
            // holds only blocks that fit, and so does the request's own when
            // its smallest size is the request (an exact class).
            if found != own || S::SCHEME.own_class_fits(want) {
                // The block holds the request and its largest padding.
                // SAFETY: `head` heads a non-empty list: a listed free block.
                debug_assert!(fit(head, unsafe { mem.size_of(head) }, needed, align).is_some());
                let gap = if align <= GRANULE { 0 } else { padding(head, align) };
                return (Some(Found { block: head, gap, class: found, head: true }), inspected + 1);
            }
            let mut block = head;
            while block != NIL {
                inspected += 1;
                // SAFETY: `block` is a member of a list: a free block.
                if let Some(gap) = fit(block, unsafe { mem.size_of(block) }, needed, align) {
                    return (Some(Found { block, gap, class: found, head: block == head }), inspected);
                }
                // SAFETY: as above.
                block = unsafe { mem.next(block) };
            }
            class = found + 1;
        }
        (None, inspected)
    }
}
