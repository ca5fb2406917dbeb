//! Micro-benchmarks of the free-list allocator, `cargo bench -p heaplab-freelist`:
//! the shared random sequence over all twelve configurations (throughput per
//! operation, so ns per alloc+free pair is twice the time per element), and
//! alloc+free pairs of fixed sizes on a heap with holes.

use heaplab_freelist::Config;

heaplab_core::criterion_benches!("freelist", Config::listed());
