//! The shared conformance suite: byte-level and page-level order 0, both halves.

use heaplab_buddy::{Config, Split};
use heaplab_core::conformance::factory;

heaplab_core::conformance_suite!(bytes_lower, factory(Config { min_block: 16, max_order: None, split: Split::Lower }));
heaplab_core::conformance_suite!(bytes_upper, factory(Config { min_block: 16, max_order: None, split: Split::Upper }));
heaplab_core::conformance_suite!(
    pages_lower,
    factory(Config { min_block: 4096, max_order: None, split: Split::Lower })
);
heaplab_core::conformance_suite!(
    pages_upper,
    factory(Config { min_block: 4096, max_order: None, split: Split::Upper })
);
// Largest block 128 KiB: the random sequences ask for more, which must be refused cleanly.
heaplab_core::conformance_suite!(
    capped_orders,
    factory(Config { min_block: 64, max_order: Some(11), split: Split::Lower })
);
