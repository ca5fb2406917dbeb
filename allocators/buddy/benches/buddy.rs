//! Micro-benchmarks of the buddy allocator, `cargo bench -p heaplab-buddy`:
//! the shared random sequence (throughput per operation, so ns per
//! alloc+free pair is twice the time per element), and alloc+free pairs of
//! fixed sizes on a heap with holes.

use heaplab_buddy::Config;

heaplab_core::criterion_benches!("buddy", Config::listed());
