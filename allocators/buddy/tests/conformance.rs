//! The shared conformance suite: byte-level and page-level order 0, both halves.

use heaplab_buddy::{Config, Split};

heaplab_core::conformance_suite!(bytes_lower, config: Config { min_block: 16, max_order: None, split: Split::Lower });
heaplab_core::conformance_suite!(bytes_upper, config: Config { min_block: 16, max_order: None, split: Split::Upper });
heaplab_core::conformance_suite!(
    pages_lower,
    config: Config { min_block: 4096, max_order: None, split: Split::Lower }
);
heaplab_core::conformance_suite!(
    pages_upper,
    config: Config { min_block: 4096, max_order: None, split: Split::Upper }
);
// Largest block 128 KiB: the random sequences ask for more, which must be refused cleanly.
heaplab_core::conformance_suite!(
    capped_orders,
    config: Config { min_block: 64, max_order: Some(11), split: Split::Lower }
);

// The fixed-shift builds the harness runs for the listed minimum blocks.
heaplab_core::conformance_suite!(
    fixed_bytes,
    heaplab_core::conformance::factory(heaplab_buddy::Fixed::<4>::from(Config::default())),
    twin: heaplab_buddy::Fixed::<4>::from(Config::default())
);
heaplab_core::conformance_suite!(
    fixed_pages,
    heaplab_core::conformance::factory(heaplab_buddy::Fixed::<12>::from(Config::pages())),
    twin: heaplab_buddy::Fixed::<12>::from(Config::pages())
);

// The concurrent part: the layers over the byte-level buddy system.
heaplab_core::concurrent_suite!(
    layers_bytes,
    config: Config { min_block: 16, max_order: None, split: Split::Lower }
);
