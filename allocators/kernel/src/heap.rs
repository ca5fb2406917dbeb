//! User memory on pages: a malloc heap per simulated process, any heaplab
//! family, growing through the pool's frames as a brk heap grows through
//! page faults.
//!
//! With `kernel:user=malloc`, a user-memory request of address space `s`
//! (a simulated process, see [`heaplab_core::Allocator::alloc_in`]) goes
//! to process `s`'s heap: an allocator of the family `malloc=` names, built
//! on its own stretch of the model's address space (`heap=` bytes, past the
//! vmalloc space). That stretch starts as private anonymous memory, which
//! stands for address space no page backs yet. When the allocator's
//! footprint (its brk, [`heaplab_core::HeapStats::footprint_bytes`]) passes
//! a page, the model takes an order-0 frame from the pool, copies the page
//! into it and maps the frame there (`mmap(MAP_FIXED | MAP_SHARED)`), as a
//! page fault on a grown brk heap does. Every byte of a live malloc block
//! is in a pool frame; allocator metadata above the footprint (a boundary
//! tag at the end of the arena, a buddy header in a free block that was
//! never used) stays in the anonymous memory and is not counted, which
//! favours allocators that write such metadata.
//!
//! A request of at least `mmap=` bytes (128 KiB, glibc's default
//! `M_MMAP_THRESHOLD`) gets a mapping of its own: single frames mapped
//! contiguously, as a vmalloc area is, counted at the malloc level.
//!
//! A heap whose last block is freed gives all its frames back and is
//! rebuilt on the process's next request: what exit and execve do, and what
//! glibc's trimming of the top chunk nearly does. A pool with no frame left
//! refuses the request that needed one; the heap keeps the block only if
//! its bytes are already backed.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::{Allocator, AllocatorConfig, Arena, BuildError, Spec, SpecError};

/// The families a heap can be: heaplab's user-level allocators.
pub const FAMILIES: [&str; 4] = ["freelist", "segregated", "buddy", "slab"];

/// A heap's allocator: a heaplab family's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Malloc {
    /// The family's canonical spec (`segregated:kind=fits,…`).
    pub spec: String,
    /// Bytes of address space each heap has.
    pub heap_bytes: usize,
    /// Requests of at least this many bytes get a mapping of their own.
    pub mmap_threshold: usize,
}

impl Malloc {
    /// The default heap: dlmalloc's strategy, 4 MiB of address space, glibc's
    /// mmap threshold.
    pub fn new(spec: &str) -> Result<Malloc, String> {
        let spec = canonical(spec)?;
        Ok(Malloc { spec, heap_bytes: 4 << 20, mmap_threshold: 128 << 10 })
    }

    /// The spec written inside a kernel spec, where `=` and `,` are taken:
    /// `family/key:value/…`.
    pub fn nested(&self) -> String {
        nest(&self.spec)
    }

    /// Build a heap's allocator on `arena`. Heaps always keep their ledger:
    /// the model grows them by their footprint.
    pub fn build(&self, arena: Arena) -> Result<Box<dyn Allocator + Send>, BuildError> {
        fn boxed<C: AllocatorConfig>(spec: &Spec, arena: Arena) -> Result<Box<dyn Allocator + Send>, BuildError>
        where
            C::Allocator: Send + 'static,
        {
            let config = C::from_spec(spec).expect("a heap spec checked when the kernel spec was parsed");
            Ok(Box::new(config.build(arena)?))
        }
        let spec: Spec = self.spec.parse().expect("a canonical spec parses");
        match spec.family() {
            "freelist" => boxed::<heaplab_freelist::Config>(&spec, arena),
            "segregated" => boxed::<heaplab_segregated::Config>(&spec, arena),
            "buddy" => boxed::<heaplab_buddy::Config>(&spec, arena),
            "slab" => boxed::<heaplab_slab::Config>(&spec, arena),
            other => unreachable!("a checked family, found {other}"),
        }
    }
}

/// `family/key:value/…` → `family:key=value,…`.
fn unnest(text: &str) -> String {
    let mut parts = text.split('/');
    let family = parts.next().unwrap_or_default();
    let params: Vec<String> = parts.map(|part| part.replacen(':', "=", 1)).collect();
    if params.is_empty() { family.to_string() } else { format!("{family}:{}", params.join(",")) }
}

/// `family:key=value,…` → `family/key:value/…`.
fn nest(spec: &str) -> String {
    match spec.split_once(':') {
        None => spec.to_string(),
        Some((family, params)) => {
            let params: Vec<String> = params.split(',').map(|part| part.replacen('=', ":", 1)).collect();
            format!("{family}/{}", params.join("/"))
        }
    }
}

/// The canonical spec of the nested `text`, checked: a family of
/// [`FAMILIES`] with parameters it accepts.
fn canonical(text: &str) -> Result<String, String> {
    let plain = unnest(text);
    let spec: Spec = plain.parse().map_err(|error: SpecError| error.message)?;
    let check = |message: String| format!("`malloc={text}`: {message}");
    let canonical = match spec.family() {
        "freelist" => heaplab_freelist::Config::from_spec(&spec).map(|c| c.spec()),
        "segregated" => heaplab_segregated::Config::from_spec(&spec).map(|c| c.spec()),
        "buddy" => heaplab_buddy::Config::from_spec(&spec).map(|c| c.spec()),
        "slab" => heaplab_slab::Config::from_spec(&spec).map(|c| c.spec()),
        other => {
            return Err(check(format!(
                "a heap is one of the families {}, found `{other}` (write parameters as family/key:value/…)",
                FAMILIES.join(", ")
            )));
        }
    };
    canonical.map_err(|error| check(error.message))
}

/// One process's heap.
pub struct Heap {
    /// Its allocator, on the heap's stretch of address space.
    pub allocator: Box<dyn Allocator + Send>,
    /// The address space (process) it serves.
    pub space: u8,
    /// The arena offset of its first byte.
    pub base: usize,
    /// The pool frames (page indices) backing its pages from the first:
    /// page `i` of the heap is frame `frames[i]`.
    pub frames: Vec<u32>,
    /// Its live blocks, counted by the model (so that a free need not ask
    /// the allocator for its stats; `check()` compares them).
    pub live: usize,
}

impl std::fmt::Debug for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heap")
            .field("space", &self.space)
            .field("base", &self.base)
            .field("frames", &self.frames.len())
            .field("stats", &self.allocator.stats())
            .finish()
    }
}

impl Heap {
    /// Bytes backed by frames, from the heap's start.
    pub fn backed_bytes(&self) -> usize {
        self.frames.len() * crate::pool::PAGE
    }

    /// Does the block at `ptr` of `layout` lie in backed pages? Yes when
    /// frames back the whole footprint (every block lies below it), or when
    /// its granted bytes counted from `ptr` (past its end, as headers
    /// precede the payload) are backed.
    pub fn is_backed(&self, ptr: NonNull<u8>, layout: Layout) -> bool {
        if self.frames.len() >= self.footprint_pages() {
            return true;
        }
        let offset = ptr.as_ptr().addr() - self.allocator.arena().base().as_ptr().addr();
        offset + self.allocator.granted(ptr, layout).max(layout.size()) <= self.backed_bytes()
    }

    /// Pages its footprint reaches.
    pub fn footprint_pages(&self) -> usize {
        self.allocator.stats().footprint_bytes.div_ceil(crate::pool::PAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_specs_round_trip_and_other_families_are_refused() {
        let malloc = Malloc::new("segregated/kind:tlsf/sl:5").unwrap();
        assert!(malloc.spec.starts_with("segregated:kind=tlsf"), "{}", malloc.spec);
        assert_eq!(Malloc::new(&malloc.nested()).unwrap(), malloc);
        assert_eq!(
            Malloc::new("freelist").unwrap().spec,
            Malloc::new(&Malloc::new("freelist").unwrap().nested()).unwrap().spec
        );
        let error = Malloc::new("peer/talc").unwrap_err();
        assert!(error.contains("one of the families freelist, segregated, buddy, slab"), "{error}");
        assert!(Malloc::new("buddy/min:3").is_err());
    }
}
