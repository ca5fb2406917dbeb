//! Micro-benchmarks of buddy+slab, `cargo bench -p heaplab-slab`: the shared
//! random sequence (throughput per operation, so ns per alloc+free pair is
//! twice the time per element), and alloc+free pairs of fixed sizes on a heap
//! with holes.

use heaplab_slab::Config;

heaplab_core::criterion_benches!("slab", Config::listed());
