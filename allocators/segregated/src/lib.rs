//! Segregated free lists: what real allocators use (dlmalloc's bins, TLSF,
//! the size classes of every modern malloc), in three variants under the
//! spec family `segregated`:
//!
//! | spec | variant |
//! |---|---|
//! | `segregated:kind=fits,classes=pow2\|pow2mid\|dl` | **segregated fits** ([`fits`]): boundary tags, one list per size class, a bitmap of non-empty classes; first fit in the request's class, else the next non-empty class by bit scan; split and coalesce |
//! | `segregated:kind=tlsf,sl=1..5` | **two-level segregated fit** ([`tlsf`]): lists by power of two and `2^sl` linear subdivisions, two bitmaps, O(1) good fit |
//! | `segregated:kind=simple,classes=pow2\|pow2mid,page=SIZE` | **simple segregated storage** ([`simple`]): each class owns whole pages of one block size, no splitting or coalescing; large requests to a buddy page level |
//!
//! The first two share the boundary-tag heap of `heaplab-freelist` ([`heap`]):
//! same block layout, same split and coalesce rules, so that the comparison
//! with the naive list isolates the list organisation. Their metadata lives in
//! the arena (tags and links); list heads and bitmaps, like an allocator's
//! static data, live outside it.
//!
//! # Drawbacks
//!
//! - Segregated fits scan the request's own class, whose blocks may be too
//!   small (classes are ranges); with coarse classes (`pow2`) that scan can
//!   be long. Exact small classes (`dl`) avoid it.
//! - TLSF's good fit skips blocks in the request's own list that would
//!   fit, so it can leave a little more fragmentation than best fit; aligned
//!   requests ask for `align + 32` extra bytes to stay O(1).
//! - Simple segregated storage rounds every request up to its class (the
//!   most internal fragmentation of the three) and never lets one class use
//!   another's free memory (external fragmentation across classes).

pub mod classes;
pub mod fits;
pub mod heap;
pub mod simple;
pub mod tlsf;

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::spec::{choice_name, format_size};
use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, FreeShape, HeapStats, InvariantViolation, Spec,
    SpecError, Waste,
};

pub use classes::Scheme;
use fits::FitsIndex;
use heap::SegregatedHeap;
pub use simple::Simple;
use tlsf::TlsfIndex;

const SCHEMES: [(&str, Scheme); 3] =
    [("pow2", Scheme::PowersOfTwo), ("pow2mid", Scheme::WithMidpoints), ("dl", Scheme::Dlmalloc)];

/// Which variant, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Config {
    /// Segregated fits over a class scheme.
    Fits {
        /// The classes.
        classes: Scheme,
    },
    /// Two-level segregated fit.
    Tlsf {
        /// log2 of the second-level subdivisions, 1 to 5.
        sl_bits: u32,
    },
    /// Simple segregated storage.
    Simple {
        /// The classes (powers of two, or with midpoints).
        classes: Scheme,
        /// Page size.
        page: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fits,
    Tlsf,
    Simple,
}

const KINDS: [(&str, Kind); 3] = [("fits", Kind::Fits), ("tlsf", Kind::Tlsf), ("simple", Kind::Simple)];

impl Default for Config {
    /// Segregated fits with dlmalloc-like classes.
    fn default() -> Self {
        Config::Fits { classes: Scheme::Dlmalloc }
    }
}

impl AllocatorConfig for Config {
    type Allocator = Segregated;
    const FAMILY: &'static str = "segregated";
    const SUMMARY: &'static str =
        "segregated free lists: segregated fits, two-level segregated fit (TLSF), simple segregated storage";

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let mut reader = spec.reader();
        let kind = reader.choice("kind", &KINDS, Kind::Fits)?;
        let config = match kind {
            Kind::Fits => Config::Fits { classes: reader.choice("classes", &SCHEMES, Scheme::Dlmalloc)? },
            Kind::Tlsf => {
                let sl_bits: u32 = reader.parse("sl", "a number of bits from 1 to 5", 4)?;
                if !(1..=5).contains(&sl_bits) {
                    return Err(spec.error(format!("`sl` must be from 1 to 5, found {sl_bits}")));
                }
                Config::Tlsf { sl_bits }
            }
            Kind::Simple => {
                let classes = reader.choice("classes", &SCHEMES[..2], Scheme::PowersOfTwo)?;
                let page = reader.size("page", 4096)?;
                if !page.is_power_of_two() || page < 256 {
                    return Err(
                        spec.error(format!("`page` must be a power of two of at least 256 bytes, found {page}"))
                    );
                }
                Config::Simple { classes, page }
            }
        };
        reader.finish()?;
        Ok(config)
    }

    fn spec(&self) -> String {
        match *self {
            Config::Fits { classes } => format!("segregated:kind=fits,classes={}", choice_name(&SCHEMES, classes)),
            Config::Tlsf { sl_bits } => format!("segregated:kind=tlsf,sl={sl_bits}"),
            Config::Simple { classes, page } => {
                format!("segregated:kind=simple,classes={},page={}", choice_name(&SCHEMES, classes), format_size(page))
            }
        }
    }

    fn describe(&self) -> String {
        let scheme = |s: Scheme| match s {
            Scheme::PowersOfTwo => "power-of-two classes",
            Scheme::WithMidpoints => "power-of-two and midpoint classes",
            Scheme::Dlmalloc => "exact 16-byte classes to 512 B, then 4 per power of two",
        };
        match *self {
            Config::Fits { classes } => format!("segregated fits, {}, bitmap search, boundary tags", scheme(classes)),
            Config::Tlsf { sl_bits } => {
                format!("two-level segregated fit, {} lists per power of two, O(1) good fit", 1 << sl_bits)
            }
            Config::Simple { classes, page } => {
                format!("simple segregated storage, {} on {page}-byte pages, no coalescing", scheme(classes))
            }
        }
    }

    fn listed() -> Vec<Self> {
        vec![
            Config::Fits { classes: Scheme::Dlmalloc },
            Config::Fits { classes: Scheme::PowersOfTwo },
            Config::Fits { classes: Scheme::WithMidpoints },
            Config::Tlsf { sl_bits: 4 },
            Config::Tlsf { sl_bits: 5 },
            Config::Simple { classes: Scheme::PowersOfTwo, page: 4096 },
            Config::Simple { classes: Scheme::WithMidpoints, page: 4096 },
        ]
    }

    fn build(&self, arena: Arena) -> Result<Segregated, BuildError> {
        let built = match *self {
            Config::Fits { classes } => SegregatedHeap::new(arena, FitsIndex::new(classes)).map(Segregated::Fits),
            Config::Tlsf { sl_bits } => SegregatedHeap::new(arena, TlsfIndex::new(sl_bits)).map(Segregated::Tlsf),
            Config::Simple { classes, page } => Simple::new(arena, classes, page).map(Segregated::Simple),
        };
        built.map_err(|message| self.build_error(message))
    }
}

/// One of the three variants.
// The variants differ in size, but there is one allocator per arena and
// boxing would add a pointer chase to every call being measured.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Segregated {
    /// Segregated fits.
    Fits(SegregatedHeap<FitsIndex>),
    /// Two-level segregated fit.
    Tlsf(SegregatedHeap<TlsfIndex>),
    /// Simple segregated storage.
    Simple(Simple),
}

/// Forward a call to the variant: the boundary-tag heaps share one
/// implementation, simple storage has its own.
macro_rules! each {
    ($self:expr, $heap:ident => $tagged:expr, $simple:ident => $other:expr) => {
        match $self {
            Segregated::Fits($heap) => $tagged,
            Segregated::Tlsf($heap) => $tagged,
            Segregated::Simple($simple) => $other,
        }
    };
}

impl Allocator for Segregated {
    fn arena(&self) -> &Arena {
        each!(self, heap => heap.arena(), simple => simple.arena())
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        each!(self, heap => heap.alloc(layout), simple => simple.alloc(layout))
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        match self {
            Segregated::Fits(heap) => heap.free(ptr, layout),
            Segregated::Tlsf(heap) => heap.free(ptr, layout),
            // SAFETY: forwarded from the caller.
            Segregated::Simple(simple) => unsafe { simple.free(ptr, layout) },
        }
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let in_place = match self {
            Segregated::Fits(heap) => heap.realloc_in_place(ptr, old, new_size)?,
            Segregated::Tlsf(heap) => heap.realloc_in_place(ptr, old, new_size)?,
            // SAFETY: forwarded from the caller.
            Segregated::Simple(simple) => return unsafe { simple.realloc(ptr, old, new_size) },
        };
        if in_place {
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { heaplab_core::realloc_by_moving(self, ptr, old, new_size) }
    }

    fn granted(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        each!(self, heap => heap.granted(ptr), simple => simple.granted(ptr, layout))
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        each!(self, heap => heap.waste(ptr, layout), simple => simple.waste(ptr, layout))
    }

    fn stats(&self) -> HeapStats {
        match self {
            Segregated::Fits(heap) => heap.stats(true),
            // TLSF inspects exactly one list head per request: no counter needed.
            Segregated::Tlsf(heap) => heap.stats(false),
            Segregated::Simple(simple) => simple.stats(),
        }
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        each!(self, heap => heap.for_each_free(visit), simple => simple.for_each_free(visit))
    }

    fn free_shape(&self) -> FreeShape {
        each!(self, heap => heap.free_shape(), simple => simple.free_shape())
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        each!(self, heap => heap.check(), simple => simple.check())
    }

    fn into_arena(self) -> Arena {
        each!(self, heap => heap.into_arena(), simple => simple.into_arena())
    }

    fn trim(&mut self) {
        if let Segregated::Simple(simple) = self {
            simple.trim();
        }
    }
}

#[cfg(test)]
mod tests;
