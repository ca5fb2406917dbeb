//! Micro-benchmarks of the free-list allocator: alloc+free pairs of fixed
//! sizes on a heap with live blocks, and the shared random sequence.
//!
//! `cargo bench -p heaplab-freelist`. Throughput is reported per operation
//! (an alloc or a free), so ns per alloc+free pair is twice the time per element.

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heaplab_core::conformance::{random_sequence, replay_sequence};
use heaplab_core::{Allocator, AllocatorConfig, Arena};
use heaplab_freelist::Config;

const ARENA_BYTES: usize = 8 << 20;

fn random(c: &mut Criterion) {
    let ops = random_sequence(42, 100_000, 1000);
    let mut group = c.benchmark_group("freelist/random");
    group.throughput(Throughput::Elements(ops.len() as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    for config in Config::listed() {
        // One allocator for all iterations: the sequence ends with an empty
        // heap, and reusing the arena keeps first-touch page faults out of
        // the measurement.
        let mut allocator = config.build(Arena::new(ARENA_BYTES).unwrap()).unwrap();
        let mut slots: Vec<Option<NonNull<u8>>> = vec![None; ops.len()];
        assert_eq!(replay_sequence(&mut allocator, &ops, &mut slots), 0, "the sequence must fit the arena");
        group
            .bench_function(config.spec(), |b| b.iter(|| replay_sequence(&mut allocator, black_box(&ops), &mut slots)));
    }
    group.finish();
}

fn pairs(c: &mut Criterion) {
    let mut group = c.benchmark_group("freelist/pair");
    group.throughput(Throughput::Elements(2));
    for config in [Config::default(), Config { fit: heaplab_freelist::Fit::Best, ..Config::default() }] {
        let mut allocator = config.build(Arena::new(ARENA_BYTES).unwrap()).unwrap();
        // A heap with 1000 live blocks and holes between them, so the pair
        // does not run on a pristine heap.
        let layout = Layout::from_size_align(48, 16).unwrap();
        let blocks: Vec<_> = (0..2000).map(|_| allocator.alloc(layout).unwrap()).collect();
        for block in blocks.iter().step_by(2) {
            // SAFETY: allocated above with `layout`, freed once.
            unsafe { allocator.free(*block, layout) };
        }
        for size in [16, 64, 256, 4096] {
            let layout = Layout::from_size_align(size, 16).unwrap();
            group.bench_function(format!("{}/{size}", config.spec()), |b| {
                b.iter(|| {
                    let ptr = allocator.alloc(black_box(layout)).unwrap();
                    // SAFETY: just allocated with `layout`.
                    unsafe { allocator.free(ptr, layout) };
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, random, pairs);
criterion_main!(benches);
