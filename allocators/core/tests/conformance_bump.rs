//! The bump allocator passes the conformance suite: the suite accepts a
//! correct allocator, even one that reuses memory only when the heap empties.

use heaplab_core::bump::BumpConfig;

heaplab_core::conformance_suite!(bump, config: BumpConfig);
