//! Behaviour pinned on small, hand-drawn heaps.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::{Allocator, AllocatorConfig, Arena, Spec};

use super::*;
use crate::tags::WORD;

fn heap(fit: Fit, order: Order) -> FreeList {
    FreeList::new(Arena::new(4096).unwrap(), Config { fit, order }).unwrap()
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn offset(heap: &FreeList, ptr: NonNull<u8>) -> usize {
    heap.arena().offset_of(ptr).unwrap()
}

fn free_list(heap: &FreeList) -> Vec<(usize, usize)> {
    let mut extents = Vec::new();
    heap.for_each_free(&mut |offset, len| extents.push((offset, len)));
    extents
}

/// Six blocks A..F, then A, C and E freed in that order: holes of 112, 320
/// and 80 bytes at known offsets, and the rest of the arena behind F.
fn holes(fit: Fit, order: Order) -> (FreeList, [usize; 3]) {
    let mut heap = heap(fit, order);
    let sizes = [100, 24, 300, 24, 60, 24];
    let ptrs: Vec<_> = sizes.iter().map(|&size| heap.alloc(layout(size)).unwrap()).collect();
    let holes = [0, 2, 4].map(|i| offset(&heap, ptrs[i]) - WORD);
    for i in [0, 2, 4] {
        // SAFETY: allocated just above with this layout, freed once.
        unsafe { heap.free(ptrs[i], layout(sizes[i])) };
    }
    heap.check().unwrap();
    (heap, holes)
}

#[test]
fn a_fresh_heap_is_one_free_block_between_pad_and_epilogue() {
    let heap = heap(Fit::First, Order::Address);
    assert_eq!(free_list(&heap), vec![(8, 4096 - 16)]);
    let stats = heap.stats();
    assert_eq!((stats.free_bytes, stats.metadata_bytes, stats.footprint_bytes), (4080, 16, 8));
}

#[test]
fn requests_round_to_granules_with_a_header_and_a_minimum() {
    for (size, block) in [(0, 32), (1, 32), (24, 32), (25, 48), (100, 112), (4000, 4016)] {
        assert_eq!(tags::block_size_for(size), Some(block), "{size}");
    }
    assert_eq!(tags::block_size_for(usize::MAX - 3), None);
}

#[test]
fn the_first_block_goes_at_the_bottom_and_the_rest_stays_free() {
    let mut heap = heap(Fit::First, Order::Address);
    let ptr = heap.alloc(layout(1)).unwrap();
    assert_eq!(offset(&heap, ptr), 16);
    assert_eq!(heap.granted(ptr, layout(1)), 32);
    assert_eq!(free_list(&heap), vec![(40, 4096 - 16 - 32)]);
    assert_eq!(heap.stats().footprint_bytes, 40);
}

#[test]
fn each_placement_policy_picks_its_hole() {
    // A request of 50 bytes needs a 64-byte block.
    let cases = [
        (Fit::First, Order::Address, Some(0)), // the lowest hole, A
        (Fit::First, Order::Lifo, Some(2)),    // the last freed, E
        (Fit::First, Order::Fifo, None),       // the tail block was listed before the holes
        (Fit::Best, Order::Lifo, Some(2)),     // E (80) is the tightest
        (Fit::Best, Order::Address, Some(2)),
        (Fit::Worst, Order::Address, None), // the big block behind F
        (Fit::Worst, Order::Lifo, None),
    ];
    for (fit, order, expected_hole) in cases {
        let (mut heap, holes) = holes(fit, order);
        let ptr = heap.alloc(layout(50)).unwrap();
        let block = offset(&heap, ptr) - WORD;
        match expected_hole {
            Some(hole) => assert_eq!(block, holes[hole], "{fit:?}/{order:?}"),
            None => assert!(block > holes[2], "{fit:?}/{order:?} took {block}"),
        }
        heap.check().unwrap();
    }
}

#[test]
fn next_fit_resumes_where_the_last_search_ended() {
    let (mut heap, holes) = holes(Fit::Next, Order::Address);
    // The rover sits on the tail remainder after the six allocations; the
    // search wraps to the head only when nothing after the rover fits.
    let first = heap.alloc(layout(50)).unwrap();
    assert!(offset(&heap, first) - WORD > holes[2]);
    // A request larger than the remaining tail wraps around to hole C.
    let big = heap.free_shape().largest_free_block;
    let wrapped = heap.alloc(layout(big)).unwrap_err();
    assert_eq!(wrapped, AllocError::OutOfMemory);
    let tail = free_list(&heap).into_iter().map(|(_, len)| len).max().unwrap();
    let _filler = heap.alloc(layout(tail - WORD)).unwrap();
    let ptr = heap.alloc(layout(200)).unwrap();
    assert_eq!(offset(&heap, ptr) - WORD, holes[1]);
    heap.check().unwrap();
}

#[test]
fn freeing_between_two_holes_merges_all_three() {
    let mut heap = heap(Fit::First, Order::Address);
    let sizes = [100, 24, 300, 24];
    let ptrs: Vec<_> = sizes.iter().map(|&size| heap.alloc(layout(size)).unwrap()).collect();
    // SAFETY: allocated above with this layout, freed once.
    unsafe { heap.free(ptrs[0], layout(100)) };
    // SAFETY: as above.
    unsafe { heap.free(ptrs[2], layout(300)) };
    assert_eq!(heap.stats().free_blocks, 3);
    let coalesces = heap.stats().counters.coalesces.unwrap();
    // SAFETY: as above.
    unsafe { heap.free(ptrs[1], layout(24)) };
    let stats = heap.stats();
    assert_eq!(stats.free_blocks, 2, "A, B and C became one block");
    assert_eq!(stats.counters.coalesces, Some(coalesces + 2));
    assert_eq!(free_list(&heap)[0], (8, 112 + 32 + 320));
    heap.check().unwrap();
}

#[test]
fn lifo_puts_the_merged_block_at_the_front_and_fifo_at_the_back() {
    for (order, front) in [(Order::Lifo, true), (Order::Fifo, false)] {
        let mut heap = heap(Fit::First, order);
        let a = heap.alloc(layout(100)).unwrap();
        let _b = heap.alloc(layout(24)).unwrap();
        // SAFETY: allocated above, freed once.
        unsafe { heap.free(a, layout(100)) };
        let list = free_list(&heap);
        assert_eq!(list.len(), 2);
        assert_eq!(list[if front { 0 } else { 1 }], (8, 112), "{order:?}");
        heap.check().unwrap();
    }
}

#[test]
fn large_alignments_keep_the_padding_in_the_block() {
    let mut heap = heap(Fit::First, Order::Address);
    let aligned = Layout::from_size_align(100, 1024).unwrap();
    let ptr = heap.alloc(aligned).unwrap();
    let payload = offset(&heap, ptr);
    assert_eq!(payload, 1024);
    // The block starts where the free block did: 1008 bytes of padding,
    // then the 112-byte block the request needs, all granted.
    assert_eq!(heap.granted(ptr, aligned), 1024 - 8 - 8 + 112);
    let waste = heap.waste(ptr, aligned);
    assert_eq!((waste.overhead, waste.rounding), (1024 - 16 + 12, 0));
    assert_eq!(free_list(&heap), vec![(8 + 1120, 4096 - 16 - 1120)]);
    heap.check().unwrap();
    // Freed, the padding comes back with the block.
    // SAFETY: allocated above with `aligned`, freed once.
    unsafe { heap.free(ptr, aligned) };
    assert_eq!(free_list(&heap), vec![(8, 4096 - 16)]);
    heap.check().unwrap();
}

#[test]
fn realloc_grows_into_a_free_successor_and_shrinks_in_place() {
    let mut heap = heap(Fit::First, Order::Address);
    let ptr = heap.alloc(layout(100)).unwrap();
    // SAFETY: `ptr` is live with layout(100), then with layout(1000).
    let grown = unsafe { heap.realloc(ptr, layout(100), 1000) }.unwrap();
    assert_eq!(grown, ptr, "the successor was free: grow in place");
    assert_eq!(heap.granted(grown, layout(1000)), 1008 + 16 - 8 - 8);
    // SAFETY: live with layout(1000).
    let shrunk = unsafe { heap.realloc(grown, layout(1000), 10) }.unwrap();
    assert_eq!(shrunk, ptr);
    assert_eq!(heap.granted(shrunk, layout(10)), 32);
    assert_eq!(heap.stats().free_blocks, 1, "the freed tail merged with the free rest");
    heap.check().unwrap();
}

#[test]
fn realloc_moves_when_the_successor_is_taken() {
    let mut heap = heap(Fit::First, Order::Address);
    let a = heap.alloc(layout(100)).unwrap();
    let _b = heap.alloc(layout(100)).unwrap();
    // SAFETY: `a` is live with layout(100).
    let moved = unsafe { heap.realloc(a, layout(100), 200) }.unwrap();
    assert_ne!(moved, a);
    assert_eq!(free_list(&heap)[0], (8, 112), "the old block is free again");
    heap.check().unwrap();
}

#[test]
fn check_catches_a_corrupted_tag() {
    let mut heap = heap(Fit::First, Order::Address);
    let a = heap.alloc(layout(100)).unwrap();
    let block = offset(&heap, a) - WORD;
    heap.heap.arena_mut().store_word(block, tags::tag(96, true, true));
    let violation = heap.check().unwrap_err();
    assert_eq!(violation.offset, Some(block + 96), "{violation}");
}

#[test]
fn too_small_an_arena_is_refused() {
    let error = Config::default().build(Arena::new(40).unwrap()).unwrap_err();
    assert!(error.to_string().contains("at least 48 bytes"), "{error}");
}

#[test]
fn specs_round_trip_for_all_twelve_configurations() {
    let listed = Config::listed();
    assert_eq!(listed.len(), 12);
    for config in listed {
        let spec: Spec = config.spec().parse().unwrap();
        assert_eq!(Config::from_spec(&spec).unwrap(), config);
    }
    let bare: Spec = "freelist".parse().unwrap();
    assert_eq!(Config::from_spec(&bare).unwrap().spec(), "freelist:fit=first,order=address");
    let bad: Spec = "freelist:fit=good".parse().unwrap();
    assert_eq!(
        Config::from_spec(&bad).unwrap_err().message,
        "`fit` must be one of first, next, best, worst, found `good`"
    );
}

#[test]
fn the_address_index_places_every_block_where_the_plain_walk_does() {
    use heaplab_core::conformance::{SequenceOp, random_sequence};
    for fit in [Fit::First, Fit::Best, Fit::Next, Fit::Worst] {
        let config = Config { fit, order: Order::Address };
        let mut indexed: FreeList = FreeList::new(Arena::new(4 << 20).unwrap(), config).unwrap();
        let mut plain: FreeList = FreeList::without_index(Arena::new(4 << 20).unwrap(), config).unwrap();
        let ops = random_sequence(11, 20_000, 400);
        let mut slots = vec![None; ops.len()];
        for (step, op) in ops.iter().enumerate() {
            match *op {
                SequenceOp::Alloc { slot, layout } => {
                    // Every fourth request page-aligned, as kernel-pages asks.
                    let layout =
                        if slot % 4 == 0 { Layout::from_size_align(layout.size(), 4096).unwrap() } else { layout };
                    let a = indexed.alloc(layout).ok();
                    let b = plain.alloc(layout).ok();
                    assert_eq!(a.map(|p| offset(&indexed, p)), b.map(|p| offset(&plain, p)), "{fit:?} op {step}");
                    slots[slot] = a.zip(b).map(|(a, b)| (a, b, layout));
                }
                SequenceOp::Free { slot, .. } => {
                    if let Some((a, b, layout)) = slots[slot].take() {
                        // SAFETY: allocated above with `layout`, freed once (taken).
                        unsafe {
                            indexed.free(a, layout);
                            plain.free(b, layout);
                        }
                    }
                }
            }
            if step % 5000 == 0 {
                indexed.check().unwrap();
            }
        }
        assert_eq!(free_list(&indexed), free_list(&plain), "{fit:?}");
        indexed.check().unwrap();
        assert!(
            indexed.stats().counters.blocks_inspected <= plain.stats().counters.blocks_inspected,
            "{fit:?}: the index never looks at more blocks"
        );
    }
}
