//! Every peer through the shared conformance suite, held to the checks that
//! apply to what it reports (see `Allocator::reports`).

use heaplab_core::conformance::factory;
use heaplab_peers::Only;
use heaplab_peers::bounded::{BuddySlab, BuddySystem, Dlmalloc, LinkedList, Rlsf, Talc};
use heaplab_peers::unbounded::Glibc;

heaplab_core::conformance_suite!(talc, factory(Only::<Talc>::new()));
heaplab_core::conformance_suite!(rlsf, factory(Only::<Rlsf>::new()));
heaplab_core::conformance_suite!(buddy_system, factory(Only::<BuddySystem>::new()));
heaplab_core::conformance_suite!(linked_list, factory(Only::<LinkedList>::new()));
heaplab_core::conformance_suite!(dlmalloc, factory(Only::<Dlmalloc>::new()));
heaplab_core::conformance_suite!(buddy_slab, factory(Only::<BuddySlab>::new()));
heaplab_core::conformance_suite!(glibc, factory(Only::<Glibc>::new()));

#[cfg(feature = "c-refs")]
mod c_refs {
    use super::*;
    use heaplab_peers::unbounded::{Jemalloc, Mimalloc};

    heaplab_core::conformance_suite!(mimalloc, factory(Only::<Mimalloc>::new()));
    heaplab_core::conformance_suite!(jemalloc, factory(Only::<Jemalloc>::new()));
}
