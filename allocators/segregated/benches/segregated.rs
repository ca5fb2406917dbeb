//! Micro-benchmarks of the segregated variants, `cargo bench -p
//! heaplab-segregated`: the shared random sequence (throughput per
//! operation, so ns per alloc+free pair is twice the time per element), and
//! alloc+free pairs of fixed sizes on a heap with holes.

use heaplab_segregated::Config;

heaplab_core::criterion_benches!("segregated", Config::listed());
