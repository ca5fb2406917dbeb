//! Third-party allocators in heaplab's harness: the reference points every
//! comparison needs.
//!
//! Each peer is an adapter that implements heaplab's [`Allocator`] trait by
//! calling a published allocator's own unlocked core type, so that it runs
//! through the same traces, the same replay loop and the same metrics as
//! heaplab's allocators. Specs are `peer:NAME`.
//!
//! **Bounded peers** are handed the harness's arena, as heaplab's own
//! allocators are: [`bounded::Talc`] (talc 5), [`bounded::Rlsf`] (rlsf, a
//! TLSF), [`bounded::BuddySystem`] (buddy_system_allocator),
//! [`bounded::LinkedList`] (linked_list_allocator), [`bounded::Dlmalloc`]
//! (the Rust port of dlmalloc, given the arena as its one segment) and
//! [`bounded::BuddySlab`] (buddy-slab-allocator: a page buddy with slab
//! caches, as in a kernel).
//!
//! **Unbounded references** keep their own memory: [`unbounded::Glibc`]
//! (the system's malloc) and, with the `c-refs` feature (on by default),
//! [`unbounded::Mimalloc`] and [`unbounded::Jemalloc`], called directly, never
//! installed as the global allocator. They are there for throughput and
//! latency; what they say of their memory is reported in the details table
//! under its own name, not passed off as heaplab's metrics.
//!
//! # What a peer can report
//!
//! [`Allocator::reports`] says which figures are real. A peer whose crate
//! exposes no granted size or free-space walk leaves those columns empty
//! ("n/a" in tables), and the conformance suite holds it only to what
//! applies. The footprint of a bounded peer is measured from the addresses
//! it returns: the highest arena offset ever reached by the end of a block
//! (its granted end where the crate tells the granted size, its requested
//! end otherwise), metadata at the start of the arena included.
//!
//! # Fairness rules
//!
//! The same for every peer and for heaplab's own allocators, enforced here:
//!
//! - every request is passed with the alignment the harness asks for (16
//!   bytes for recorded traces unless `--align` says otherwise), including to
//!   allocators whose natural alignment is larger or smaller;
//! - bounded peers get the same arena (same size, page-aligned, pre-faulted
//!   for timed passes) and nothing else;
//! - `realloc` keeps the alignment and the first `min(old, new)` bytes, and a
//!   failed `realloc` leaves the old block live: the crate's own resize is
//!   used when it has those semantics, otherwise allocate-copy-free;
//! - a zero-size request gets a real block: crates that reject size 0 are
//!   asked for one byte (and freed with the same size);
//! - no lock and no global state in the timed path: each adapter owns its
//!   allocator's core type (talc's `Talc`, not `Talck`).
//!
//! Peer-specific adaptations are listed in the crate's README.

pub mod bounded;
mod tally;
pub mod unbounded;

use std::alloc::Layout;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;

use heaplab_core::concurrent::{SendVisitor, SharedVisitor};
use heaplab_core::{
    AllocError, Allocator, AllocatorConfig, Arena, BuildError, Detail, FreeShape, HeapStats, InvariantViolation,
    Reports, SetupError, Spec, SpecError, Visitor, Waste,
};

/// A third-party allocator behind heaplab's trait.
pub trait Adapter: Allocator + Sized + 'static {
    /// The name in `peer:NAME`.
    const NAME: &'static str;
    /// One line for `heaplab list`: the crate, its version, what it is.
    const ABOUT: &'static str;
    /// The same adapter without its tally, for the timed passes.
    type Timed: Adapter;
    /// Set the allocator up on `arena`.
    fn build(arena: Arena) -> Result<Self, SetupError>;

    /// Visit [`Only<Self>`] as a configuration a layer can go over; `None`
    /// (the default) for adapters bound to a thread or with memory of their
    /// own. Bounded peers in the arena override it.
    fn as_send<V: SendVisitor>(_visitor: V) -> Option<V::Output> {
        None
    }

    /// Visit the peer's own thread-safe path; `None` (the default) for
    /// peers without one (the bounded peers: layer them, `locked/peer:talc`).
    fn visit_shared<V: SharedVisitor>(_visitor: V) -> Option<V::Output> {
        None
    }
}

/// The [`Adapter::as_send`] of a bounded peer.
macro_rules! layerable {
    () => {
        fn as_send<V: heaplab_core::concurrent::SendVisitor>(visitor: V) -> Option<V::Output> {
            Some(visitor.visit(&crate::Only::<Self>::new()))
        }
    };
}
pub(crate) use layerable;

/// The configuration of one peer as its own type, so that the harness
/// compiles its replay loop for that peer alone.
pub struct Only<P>(PhantomData<fn() -> P>);

impl<P> Only<P> {
    /// The configuration.
    pub const fn new() -> Only<P> {
        Only(PhantomData)
    }
}

impl<P> Default for Only<P> {
    fn default() -> Only<P> {
        Only::new()
    }
}

impl<P> Clone for Only<P> {
    fn clone(&self) -> Only<P> {
        Only::new()
    }
}

impl<P: Adapter> fmt::Debug for Only<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Only<{}>", P::NAME)
    }
}

impl<P: Adapter> AllocatorConfig for Only<P> {
    type Allocator = P;
    type Timed = P::Timed;
    const FAMILY: &'static str = "peer";
    const SUMMARY: &'static str = SUMMARY;

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let mut reader = spec.reader();
        match reader.name() {
            Some(name) if name == P::NAME => {}
            _ => return Err(spec.error(format!("expected `peer:{}`", P::NAME))),
        }
        reader.finish()?;
        Ok(Only::new())
    }

    fn spec(&self) -> String {
        format!("peer:{}", P::NAME)
    }

    fn describe(&self) -> String {
        P::ABOUT.to_string()
    }

    fn listed() -> Vec<Self> {
        vec![Only::new()]
    }

    fn build(&self, arena: Arena) -> Result<P, BuildError> {
        P::build(arena).map_err(|reason| self.build_error(reason))
    }

    fn build_timed(&self, arena: Arena) -> Result<P::Timed, BuildError> {
        P::Timed::build(arena).map_err(|reason| self.build_error(reason))
    }

    fn as_send<V: SendVisitor>(&self, visitor: V) -> Option<V::Output> {
        P::as_send(visitor)
    }

    fn visit_shared<V: SharedVisitor>(&self, visitor: V) -> Option<V::Output> {
        P::visit_shared(visitor)
    }
}

const SUMMARY: &str = "third-party allocators on the same arena (talc, rlsf, …) and unbounded references (glibc malloc, mimalloc, jemalloc)";

/// Declares the peers: the [`Config`] enum, its dispatch to each peer's own
/// type, and [`Peer`], an allocator that can be any of them.
macro_rules! peers {
    ($($(#[$cfg:meta])* $variant:ident => $adapter:ty),* $(,)?) => {
        /// A peer, by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Config {
            $($(#[$cfg])* #[doc = concat!("`", stringify!($adapter), "`.")] $variant,)*
        }

        impl Config {
            /// Every peer in this build.
            pub const ALL: &[Config] = &[$($(#[$cfg])* Config::$variant,)*];

            /// The name in `peer:NAME`.
            pub fn name(self) -> &'static str {
                match self {
                    $($(#[$cfg])* Config::$variant => <$adapter as Adapter>::NAME,)*
                }
            }

            fn about(self) -> &'static str {
                match self {
                    $($(#[$cfg])* Config::$variant => <$adapter as Adapter>::ABOUT,)*
                }
            }

            fn build_peer(self, arena: Arena) -> Result<Peer, SetupError> {
                match self {
                    $($(#[$cfg])* Config::$variant => Ok(Peer::$variant(Box::new(<$adapter as Adapter>::build(arena)?))),)*
                }
            }

            fn dispatch<V: Visitor>(self, visitor: V) -> V::Output {
                match self {
                    $($(#[$cfg])* Config::$variant => visitor.visit(&Only::<$adapter>::new()),)*
                }
            }
        }

        /// Any peer, chosen at run time. The harness does not use it (it
        /// visits each peer's own type); it is for code that wants one type.
        #[derive(Debug)]
        pub enum Peer {
            $($(#[$cfg])* #[doc = concat!("`", stringify!($adapter), "`.")] $variant(Box<$adapter>),)*
        }

        macro_rules! each {
            ($self:expr, $peer:ident => $body:expr) => {
                match $self {
                    $($(#[$cfg])* Peer::$variant($peer) => $body,)*
                }
            };
        }
    };
}

peers! {
    Talc => bounded::Talc,
    Rlsf => bounded::Rlsf,
    BuddySystem => bounded::BuddySystem,
    LinkedList => bounded::LinkedList,
    Dlmalloc => bounded::Dlmalloc,
    BuddySlab => bounded::BuddySlab,
    Glibc => unbounded::Glibc,
    #[cfg(feature = "c-refs")]
    Mimalloc => unbounded::Mimalloc,
    #[cfg(feature = "c-refs")]
    Jemalloc => unbounded::Jemalloc,
}

impl AllocatorConfig for Config {
    type Allocator = Peer;
    type Timed = Peer;
    const FAMILY: &'static str = "peer";
    const SUMMARY: &'static str = SUMMARY;

    fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let mut reader = spec.reader();
        let names: Vec<&str> = Config::ALL.iter().map(|peer| peer.name()).collect();
        let Some(name) = reader.name() else {
            return Err(spec.error(format!("expected `peer:NAME`, NAME one of {}", names.join(", "))));
        };
        let Some(&config) = Config::ALL.iter().find(|peer| peer.name() == name) else {
            let hint = if cfg!(feature = "c-refs") { "" } else { " (this build has no C-based references)" };
            return Err(spec.error(format!("unknown peer `{name}`; the peers are {}{hint}", names.join(", "))));
        };
        reader.finish()?;
        Ok(config)
    }

    fn spec(&self) -> String {
        format!("peer:{}", self.name())
    }

    fn describe(&self) -> String {
        self.about().to_string()
    }

    fn listed() -> Vec<Self> {
        Config::ALL.to_vec()
    }

    fn build(&self, arena: Arena) -> Result<Peer, BuildError> {
        self.build_peer(arena).map_err(|reason| self.build_error(reason))
    }

    /// `Peer` is for code that wants one type; the harness times each
    /// peer's own timed build through [`AllocatorConfig::accept`].
    fn build_timed(&self, arena: Arena) -> Result<Peer, BuildError> {
        self.build(arena)
    }

    fn accept<V: Visitor>(&self, visitor: V) -> V::Output {
        self.dispatch(visitor)
    }
}

impl Allocator for Peer {
    fn arena(&self) -> &Arena {
        each!(self, peer => peer.arena())
    }

    fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        each!(self, peer => peer.alloc(layout))
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        each!(self, peer => unsafe { peer.free(ptr, layout) })
    }

    unsafe fn realloc(&mut self, ptr: NonNull<u8>, old: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller.
        each!(self, peer => unsafe { peer.realloc(ptr, old, new_size) })
    }

    fn granted(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        each!(self, peer => peer.granted(ptr, layout))
    }

    fn waste(&self, ptr: NonNull<u8>, layout: Layout) -> Waste {
        each!(self, peer => peer.waste(ptr, layout))
    }

    fn stats(&self) -> HeapStats {
        each!(self, peer => peer.stats())
    }

    fn for_each_free(&self, visit: &mut dyn FnMut(usize, usize)) {
        each!(self, peer => peer.for_each_free(visit))
    }

    fn free_shape(&self) -> FreeShape {
        each!(self, peer => peer.free_shape())
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        each!(self, peer => peer.check())
    }

    fn reports(&self) -> Reports {
        each!(self, peer => peer.reports())
    }

    fn details(&self) -> Vec<Detail> {
        each!(self, peer => peer.details())
    }

    fn into_arena(self) -> Arena {
        each!(self, peer => peer.into_arena())
    }

    fn trim(&mut self) {
        each!(self, peer => peer.trim())
    }
}

/// The `Allocator` methods of an adapter whose crate tells neither the
/// granted size of a block nor its free space (`reports()` says so): granted
/// is the request, and there is nothing to walk.
macro_rules! nothing_to_walk {
    () => {
        fn granted(&self, _ptr: std::ptr::NonNull<u8>, layout: std::alloc::Layout) -> usize {
            layout.size()
        }

        fn for_each_free(&self, _visit: &mut dyn FnMut(usize, usize)) {}
    };
}
pub(crate) use nothing_to_walk;

/// A zero-size request as one byte, for crates that reject size 0.
fn at_least_one_byte(layout: Layout) -> Layout {
    if layout.size() == 0 {
        Layout::from_size_align(1, layout.align()).expect("one byte at a valid alignment is a valid layout")
    } else {
        layout
    }
}

/// One figure of a peer's own statistics for the details table.
fn detail(table: &'static str, row: &str, column: &'static str, value: f64) -> Detail {
    Detail { table, row: row.to_string(), column, value }
}
