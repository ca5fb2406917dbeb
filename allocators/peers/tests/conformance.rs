//! Every peer through the shared conformance suite, held to the checks that
//! apply to what it reports (see `Allocator::reports`).

use heaplab_peers::Only;
use heaplab_peers::bounded::{BuddySlab, BuddySystem, Dlmalloc, LinkedList, Rlsf, Talc};
use heaplab_peers::unbounded::Glibc;

heaplab_core::conformance_suite!(talc, config: Only::<Talc>::new());
heaplab_core::conformance_suite!(rlsf, config: Only::<Rlsf>::new());
heaplab_core::conformance_suite!(buddy_system, config: Only::<BuddySystem>::new());
heaplab_core::conformance_suite!(linked_list, config: Only::<LinkedList>::new());
heaplab_core::conformance_suite!(dlmalloc, config: Only::<Dlmalloc>::new());
heaplab_core::conformance_suite!(buddy_slab, config: Only::<BuddySlab>::new());
heaplab_core::conformance_suite!(glibc, config: Only::<Glibc>::new());

// The concurrent part: bounded peers as they are used on threads, behind a
// lock (and the caching layer over them).
heaplab_core::concurrent_suite!(layers_rlsf, config: Only::<Rlsf>::new());
heaplab_core::concurrent_suite!(layers_talc, config: Only::<Talc>::new());

#[cfg(feature = "c-refs")]
mod c_refs {
    use super::*;
    use heaplab_peers::unbounded::{Jemalloc, Mimalloc};

    heaplab_core::conformance_suite!(mimalloc, config: Only::<Mimalloc>::new());
    heaplab_core::conformance_suite!(jemalloc, config: Only::<Jemalloc>::new());
}
