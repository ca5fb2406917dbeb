//! The shared conformance suite: kmalloc classes, powers of two, a custom
//! list, and a cache that keeps no empty slab.

use heaplab_slab::{Classes, Config};

heaplab_core::conformance_suite!(kmalloc, config: Config::default());
heaplab_core::conformance_suite!(powers_of_two, config: Config { classes: Classes::PowersOfTwo, ..Config::default() });
heaplab_core::conformance_suite!(
    custom_classes,
    config: Config { classes: Classes::List(vec![24, 40, 72, 136, 264, 1000, 3000]), ..Config::default() }
);
heaplab_core::conformance_suite!(keep_none, config: Config { keep: Some(0), min_objects: 4, ..Config::default() });

// The concurrent part: the layers over buddy+slab.
heaplab_core::concurrent_suite!(layers_kmalloc, config: Config::default());
