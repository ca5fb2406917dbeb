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
//!   requests ask for `align − 16` extra bytes to stay O(1).
//! - Simple segregated storage rounds every request up to its class (the
//!   most internal fragmentation of the three) and never lets one class use
//!   another's free memory (external fragmentation across classes).

pub mod classes;
pub mod fits;
pub mod heap;
pub mod simple;
pub mod tlsf;

use std::alloc::Layout;
use std::marker::PhantomData;
use std::ptr::NonNull;

use heaplab_core::spec::{choice_name, format_size};
use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, FreeShape, HeapStats, InvariantViolation, Reports,
    SetupError, Spec, SpecError, Visitor, Waste,
};

pub use classes::Scheme;
use fits::{Dl, FitsIndex, Pow2, Pow2Mid, SchemeOf};
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
enum KindName {
    Fits,
    Tlsf,
    Simple,
}

const KINDS: [(&str, KindName); 3] = [("fits", KindName::Fits), ("tlsf", KindName::Tlsf), ("simple", KindName::Simple)];

impl Default for Config {
    /// Segregated fits with dlmalloc-like classes.
    fn default() -> Self {
        Config::Fits { classes: Scheme::Dlmalloc }
    }
}

impl AllocatorConfig for Config {
    type Allocator = Segregated;
    type Timed = Segregated<false>;
    const FAMILY: &'static str = "segregated";
    const SUMMARY: &'static str =
        "segregated free lists: segregated fits, two-level segregated fit (TLSF), simple segregated storage";

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let mut reader = spec.reader();
        let kind = reader.choice("kind", &KINDS, KindName::Fits)?;
        let config = match kind {
            KindName::Fits => Config::Fits { classes: reader.choice("classes", &SCHEMES, Scheme::Dlmalloc)? },
            KindName::Tlsf => {
                let sl_bits: u32 = reader.parse("sl", "a number of bits from 1 to 5", 4)?;
                if !(1..=5).contains(&sl_bits) {
                    return Err(spec.error(format!("`sl` must be from 1 to 5, found {sl_bits}")));
                }
                Config::Tlsf { sl_bits }
            }
            KindName::Simple => {
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
        self.build_either(arena)
    }

    fn build_timed(&self, arena: Arena) -> Result<Segregated<false>, BuildError> {
        self.build_either(arena)
    }

    /// Each variant (and each TLSF second level) is visited as its own
    /// type, so that the harness compiles the replay loop for it alone:
    /// no dispatch on the variant in the measured calls, and TLSF's
    /// second-level shifts are constants.
    fn accept<V: Visitor>(&self, visitor: V) -> V::Output {
        match *self {
            Config::Fits { classes: Scheme::PowersOfTwo } => visitor.visit(&Variant::<FitsKind<Pow2>>::new(*self, ())),
            Config::Fits { classes: Scheme::WithMidpoints } => {
                visitor.visit(&Variant::<FitsKind<Pow2Mid>>::new(*self, ()))
            }
            Config::Fits { classes: Scheme::Dlmalloc } => visitor.visit(&Variant::<FitsKind<Dl>>::new(*self, ())),
            Config::Tlsf { sl_bits: 1 } => visitor.visit(&Variant::<TlsfKind<1>>::new(*self, ())),
            Config::Tlsf { sl_bits: 2 } => visitor.visit(&Variant::<TlsfKind<2>>::new(*self, ())),
            Config::Tlsf { sl_bits: 3 } => visitor.visit(&Variant::<TlsfKind<3>>::new(*self, ())),
            Config::Tlsf { sl_bits: 4 } => visitor.visit(&Variant::<TlsfKind<4>>::new(*self, ())),
            Config::Tlsf { sl_bits: 5 } => visitor.visit(&Variant::<TlsfKind<5>>::new(*self, ())),
            // No variant: the enum's build refuses it.
            Config::Tlsf { .. } => visitor.visit(self),
            Config::Simple { classes, page } => visitor.visit(&Variant::<SimpleKind>::new(*self, (classes, page))),
        }
    }

    fn as_send<V: heaplab_core::concurrent::SendVisitor>(&self, visitor: V) -> Option<V::Output> {
        Some(visitor.visit(self))
    }
}

impl Config {
    fn build_either<const C: bool>(&self, arena: Arena) -> Result<Segregated<C>, BuildError> {
        let built = match *self {
            Config::Fits { classes: Scheme::PowersOfTwo } => {
                SegregatedHeap::new(arena, FitsIndex::new()).map(Segregated::FitsPow2)
            }
            Config::Fits { classes: Scheme::WithMidpoints } => {
                SegregatedHeap::new(arena, FitsIndex::new()).map(Segregated::FitsPow2Mid)
            }
            Config::Fits { classes: Scheme::Dlmalloc } => {
                SegregatedHeap::new(arena, FitsIndex::new()).map(Segregated::FitsDl)
            }
            Config::Tlsf { sl_bits: 1 } => SegregatedHeap::new(arena, TlsfIndex::new()).map(Segregated::Tlsf1),
            Config::Tlsf { sl_bits: 2 } => SegregatedHeap::new(arena, TlsfIndex::new()).map(Segregated::Tlsf2),
            Config::Tlsf { sl_bits: 3 } => SegregatedHeap::new(arena, TlsfIndex::new()).map(Segregated::Tlsf3),
            Config::Tlsf { sl_bits: 4 } => SegregatedHeap::new(arena, TlsfIndex::new()).map(Segregated::Tlsf4),
            Config::Tlsf { sl_bits: 5 } => SegregatedHeap::new(arena, TlsfIndex::new()).map(Segregated::Tlsf5),
            Config::Tlsf { sl_bits } => Err(SetupError::parameter("sl", "be from 1 to 5", sl_bits)),
            Config::Simple { classes, page } => Simple::new(arena, classes, page).map(Segregated::Simple),
        };
        built.map_err(|reason| self.build_error(reason))
    }
}

/// One kind of segregated allocator as a type of its own.
pub trait Kind: 'static {
    /// What the kind's allocator is built from.
    type Params: Copy + std::fmt::Debug + Send + Sync + 'static;
    /// The allocator, with or without its ledger.
    type Allocator<const C: bool>: Allocator + Send;
    /// Build it.
    fn build<const C: bool>(params: Self::Params, arena: Arena) -> Result<Self::Allocator<C>, SetupError>;
}

/// Segregated fits over the classes of `S`.
#[derive(Debug)]
pub struct FitsKind<S: SchemeOf>(PhantomData<S>);

impl<S: SchemeOf> Kind for FitsKind<S> {
    type Params = ();
    type Allocator<const C: bool> = SegregatedHeap<FitsIndex<S>, C>;
    fn build<const C: bool>((): (), arena: Arena) -> Result<Self::Allocator<C>, SetupError> {
        SegregatedHeap::new(arena, FitsIndex::new())
    }
}

/// Two-level segregated fit with `2^SL` second-level lists.
#[derive(Debug)]
pub struct TlsfKind<const SL: u32>;

impl<const SL: u32> Kind for TlsfKind<SL> {
    type Params = ();
    type Allocator<const C: bool> = SegregatedHeap<TlsfIndex<SL>, C>;
    fn build<const C: bool>((): (), arena: Arena) -> Result<Self::Allocator<C>, SetupError> {
        SegregatedHeap::new(arena, TlsfIndex::new())
    }
}

/// Simple segregated storage.
#[derive(Debug)]
pub struct SimpleKind;

impl Kind for SimpleKind {
    type Params = (Scheme, usize);
    type Allocator<const C: bool> = Simple<C>;
    fn build<const C: bool>((classes, page): (Scheme, usize), arena: Arena) -> Result<Simple<C>, SetupError> {
        Simple::new(arena, classes, page)
    }
}

/// A configuration of one [`Kind`]: what the harness visits, so that it
/// runs the kind's own allocator type. Its spec, description and listing
/// are those of the [`Config`] it came from.
pub struct Variant<K: Kind> {
    config: Config,
    params: K::Params,
}

impl<K: Kind> Variant<K> {
    fn new(config: Config, params: K::Params) -> Variant<K> {
        Variant { config, params }
    }
}

impl<K: Kind> Clone for Variant<K> {
    fn clone(&self) -> Self {
        Variant { config: self.config, params: self.params }
    }
}

impl<K: Kind> std::fmt::Debug for Variant<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Variant").field(&self.config).finish()
    }
}

impl<K: Kind> AllocatorConfig for Variant<K> {
    type Allocator = K::Allocator<true>;
    type Timed = K::Allocator<false>;
    const FAMILY: &'static str = Config::FAMILY;
    const SUMMARY: &'static str = Config::SUMMARY;

    /// Only the parent [`Config`] parses specs; a variant is made by visiting it.
    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        Err(spec.error("a segregated variant is configured through `Config`"))
    }

    fn spec(&self) -> String {
        self.config.spec()
    }

    fn describe(&self) -> String {
        self.config.describe()
    }

    fn listed() -> Vec<Self> {
        Vec::new()
    }

    fn build(&self, arena: Arena) -> Result<Self::Allocator, BuildError> {
        K::build(self.params, arena).map_err(|reason| self.build_error(reason))
    }

    fn build_timed(&self, arena: Arena) -> Result<Self::Timed, BuildError> {
        K::build(self.params, arena).map_err(|reason| self.build_error(reason))
    }

    fn as_send<V: heaplab_core::concurrent::SendVisitor>(&self, visitor: V) -> Option<V::Output> {
        Some(visitor.visit(self))
    }
}

/// Any variant, chosen at run time: [`Config`]'s allocator, for code that
/// wants one type (the harness visits each variant's own type instead).
/// `C`: whether it keeps the ledger.
// The variants differ in size, but there is one allocator per arena and
// boxing would add a pointer chase to every call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Segregated<const C: bool = true> {
    /// Segregated fits, power-of-two classes.
    FitsPow2(SegregatedHeap<FitsIndex<Pow2>, C>),
    /// Segregated fits, power-of-two and midpoint classes.
    FitsPow2Mid(SegregatedHeap<FitsIndex<Pow2Mid>, C>),
    /// Segregated fits, dlmalloc-like classes.
    FitsDl(SegregatedHeap<FitsIndex<Dl>, C>),
    /// Two-level segregated fit, 2 lists per power of two.
    Tlsf1(SegregatedHeap<TlsfIndex<1>, C>),
    /// 4 lists per power of two.
    Tlsf2(SegregatedHeap<TlsfIndex<2>, C>),
    /// 8 lists per power of two.
    Tlsf3(SegregatedHeap<TlsfIndex<3>, C>),
    /// 16 lists per power of two.
    Tlsf4(SegregatedHeap<TlsfIndex<4>, C>),
    /// 32 lists per power of two.
    Tlsf5(SegregatedHeap<TlsfIndex<5>, C>),
    /// Simple segregated storage.
    Simple(Simple<C>),
}

/// Forward a call to the variant.
macro_rules! each {
    ($self:expr, $allocator:ident => $call:expr) => {
        match $self {
            Segregated::FitsPow2($allocator) => $call,
            Segregated::FitsPow2Mid($allocator) => $call,
            Segregated::FitsDl($allocator) => $call,
            Segregated::Tlsf1($allocator) => $call,
            Segregated::Tlsf2($allocator) => $call,
            Segregated::Tlsf3($allocator) => $call,
            Segregated::Tlsf4($allocator) => $call,
            Segregated::Tlsf5($allocator) => $call,
            Segregated::Simple($allocator) => $call,
        }
    };
}

impl<const C: bool> Allocator for Segregated<C> {
    fn arena(&self) -> &Arena {
        each!(self, allocator => allocator.arena())
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        each!(self, allocator => allocator.alloc(layout))
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        each!(self, allocator => unsafe { allocator.free(ptr, layout) })
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller.
        each!(self, allocator => unsafe { allocator.realloc(ptr, old, new_size) })
    }

    fn granted(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        each!(self, allocator => allocator.granted(ptr, layout))
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        each!(self, allocator => allocator.waste(ptr, layout))
    }

    fn stats(&self) -> HeapStats {
        each!(self, allocator => allocator.stats())
    }

    fn reports(&self) -> Reports {
        each!(self, allocator => allocator.reports())
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        each!(self, allocator => allocator.for_each_free(visit))
    }

    fn free_lists(&self) -> Option<heaplab_core::FreeListView> {
        each!(self, allocator => allocator.free_lists())
    }

    fn free_shape(&self) -> FreeShape {
        each!(self, allocator => allocator.free_shape())
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        each!(self, allocator => allocator.check())
    }

    fn into_arena(self) -> Arena {
        each!(self, allocator => allocator.into_arena())
    }

    fn trim(&mut self) {
        each!(self, allocator => allocator.trim())
    }
}

#[cfg(test)]
mod tests;
