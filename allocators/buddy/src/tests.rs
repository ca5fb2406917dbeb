//! The buddy system's behaviour, drawn on the whiteboard and checked.

use std::alloc::Layout;

use heaplab_core::{Allocator, AllocatorConfig, Arena, SetupError, Spec};

use super::*;

const PAGE: usize = 4096;

fn pages(arena_bytes: usize, split: Split) -> Buddy {
    Buddy::<true>::new(Arena::new(arena_bytes).unwrap(), Config { min_block: PAGE, max_order: None, split }).unwrap()
}

fn free_blocks(buddy: &Buddy) -> Vec<(usize, usize)> {
    let mut blocks = Vec::new();
    buddy.for_each_free(&mut |offset, len| blocks.push((offset / PAGE, len / PAGE)));
    blocks.sort_unstable();
    blocks
}

#[test]
fn splitting_and_coalescing_follow_the_whiteboard() {
    // 16 pages: one block of order 4.
    let mut buddy = pages(16 * PAGE, Split::Lower);
    assert_eq!(buddy.nr_free(), [0, 0, 0, 0, 1]);
    assert_eq!(buddy.buddyinfo("Normal"), "Node 0, zone   Normal      0      0      0      0      1 ");

    // One page: split 16 → 8+8 → 4+4 → 2+2 → 1+1, keeping the lower halves.
    let a = buddy.alloc_order(0).unwrap();
    assert_eq!(a, 0);
    assert_eq!(buddy.nr_free(), [1, 1, 1, 1, 0]);
    assert_eq!(free_blocks(&buddy), [(1, 1), (2, 2), (4, 4), (8, 8)]);
    assert_eq!(buddy.stats().counters.splits, Some(4));

    // Two pages come from the order-1 list without a split; one page from order 0.
    let b = buddy.alloc_order(1).unwrap();
    assert_eq!(b, 2 * PAGE);
    let c = buddy.alloc_order(0).unwrap();
    assert_eq!(c, PAGE);
    assert_eq!(buddy.nr_free(), [0, 0, 1, 1, 0]);

    // Freeing A: its buddy C is in use, no merge.
    buddy.free_order(a, 0);
    assert_eq!(buddy.nr_free(), [1, 0, 1, 1, 0]);
    // Freeing C: merges with A into pages 0-1; their buddy B is in use.
    buddy.free_order(c, 0);
    assert_eq!(buddy.nr_free(), [0, 1, 1, 1, 0]);
    assert_eq!(buddy.buddyinfo("Normal"), "Node 0, zone   Normal      0      1      1      1      0 ");
    // Freeing B: merges 2 → 4 → 8 → 16 pages.
    buddy.free_order(b, 1);
    assert_eq!(buddy.nr_free(), [0, 0, 0, 0, 1]);
    assert_eq!(buddy.stats().counters.coalesces, Some(4));
    buddy.check().unwrap();
}

#[test]
fn an_upper_split_hands_out_the_top_of_the_block() {
    let mut buddy = pages(16 * PAGE, Split::Upper);
    let a = buddy.alloc_order(0).unwrap();
    assert_eq!(a, 15 * PAGE);
    assert_eq!(free_blocks(&buddy), [(0, 8), (8, 4), (12, 2), (14, 1)]);
    let b = buddy.alloc_order(1).unwrap();
    assert_eq!(b, 12 * PAGE);
    buddy.free_order(a, 0);
    buddy.free_order(b, 1);
    assert_eq!(free_blocks(&buddy), [(0, 16)]);
    buddy.check().unwrap();
}

#[test]
fn an_arena_that_is_not_a_power_of_two_is_tiled_with_aligned_blocks() {
    // Three blocks of 16 pages, then 3 pages: 2 + 1.
    let buddy = Buddy::<true>::new(
        Arena::new(51 * PAGE + 100).unwrap(),
        Config { min_block: PAGE, max_order: Some(4), split: Split::Lower },
    )
    .unwrap();
    assert_eq!(buddy.nr_free(), [1, 1, 0, 0, 3]);
    assert_eq!(free_blocks(&buddy), [(0, 16), (16, 16), (32, 16), (48, 2), (50, 1)]);
    assert_eq!(buddy.stats().metadata_bytes, 100, "the tail below one page is unused");
    buddy.check().unwrap();
}

#[test]
fn buddies_beyond_the_arena_never_merge() {
    let mut buddy =
        Buddy::<true>::new(Arena::new(3 * PAGE).unwrap(), Config { min_block: PAGE, ..Config::default() }).unwrap();
    assert_eq!(free_blocks(&buddy), [(0, 2), (2, 1)]);
    let last = buddy.alloc_order(0).unwrap();
    assert_eq!(last, 2 * PAGE);
    buddy.free_order(last, 0);
    assert_eq!(free_blocks(&buddy), [(0, 2), (2, 1)]);
    buddy.check().unwrap();
}

#[test]
fn granted_is_the_power_of_two_block() {
    let mut buddy = Buddy::<true>::new(Arena::new(1 << 20).unwrap(), Config::default()).unwrap();
    for (size, align, granted) in
        [(0, 1, 16), (1, 1, 16), (17, 8, 32), (100, 16, 128), (4097, 16, 8192), (16, 4096, 4096)]
    {
        let layout = Layout::from_size_align(size, align).unwrap();
        let ptr = buddy.alloc(layout).unwrap();
        assert_eq!(buddy.granted(ptr, layout), granted, "{size} bytes aligned to {align}");
        assert!(buddy.arena().offset_of(ptr).unwrap().is_multiple_of(granted));
    }
    buddy.check().unwrap();
}

#[test]
fn requests_above_the_largest_block_are_unsupported() {
    let mut buddy =
        Buddy::<true>::new(Arena::new(1 << 20).unwrap(), Config { max_order: Some(4), ..Config::default() }).unwrap();
    assert_eq!(
        buddy.alloc(Layout::from_size_align(257, 1).unwrap()),
        Err(AllocError::Unsupported("size above the largest block"))
    );
    assert!(buddy.alloc(Layout::from_size_align(256, 1).unwrap()).is_ok());
}

#[test]
fn rounding_waste_matches_the_textbook_limits() {
    let buddy =
        Buddy::<true>::new(Arena::new(1 << 21).unwrap(), Config { min_block: 16, ..Config::default() }).unwrap();
    let granted =
        |size: usize| buddy.order_for(Layout::from_size_align(size, 1).unwrap()).map(|o| 16usize << o).unwrap();
    // Sizes uniform on [1, 2^20]: total granted over total requested → 4/3.
    let n = 1usize << 20;
    let (requested, total): (f64, f64) =
        (1..=n).map(|s| (s as f64, granted(s) as f64)).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!((total / requested - 4.0 / 3.0).abs() < 1e-3, "{}", total / requested);
    // Sizes log-uniform on [2^4, 2^20]: the mean of granted/requested per
    // request → 1/ln 2. A fine deterministic grid on the exponent stands in
    // for the distribution.
    let steps = 1_000_000;
    let mean = (0..steps)
        .map(|i| {
            let size = 2f64.powf(4.0 + 16.0 * (i as f64 + 0.5) / steps as f64);
            granted(size.ceil() as usize) as f64 / size
        })
        .sum::<f64>()
        / steps as f64;
    assert!((mean - 1.0 / std::f64::consts::LN_2).abs() < 2e-3, "{mean}");
}

#[test]
fn fragmentation_indices_read_the_live_free_lists() {
    // Free every other page of a 16-page zone: 8 free pages, all order 0.
    let mut buddy = pages(16 * PAGE, Split::Lower);
    let all: Vec<usize> = (0..16).map(|_| buddy.alloc_order(0).unwrap()).collect();
    for page in all.iter().step_by(2) {
        buddy.free_order(*page, 0);
    }
    assert_eq!(buddy.nr_free(), [8, 0, 0, 0, 0]);
    // Order 1: F = 8, B = 8, no suitable block: 1000 − (1000 + 8000/2)/8 = 375.
    assert_eq!(fragmentation_index(&buddy.nr_free(), 1), 375);
    assert_eq!(unusable_free_index(&buddy.nr_free(), 1), 1000);
    assert_eq!(unusable_free_index(&buddy.nr_free(), 0), 0);
    assert_eq!(buddy.free_shape().largest_free_block, PAGE);
}

#[test]
fn realloc_shrinks_in_place_and_frees_the_upper_halves() {
    let mut buddy = pages(16 * PAGE, Split::Lower);
    let layout = Layout::from_size_align(8 * PAGE, 16).unwrap();
    let ptr = buddy.alloc(layout).unwrap();
    // SAFETY: `ptr` is live with `layout`.
    let shrunk = unsafe { buddy.realloc(ptr, layout, PAGE) }.unwrap();
    assert_eq!(shrunk, ptr);
    assert_eq!(free_blocks(&buddy), [(1, 1), (2, 2), (4, 4), (8, 8)]);
    buddy.check().unwrap();
}

#[test]
fn a_head_with_a_stale_back_link_is_unlinked_as_the_head() {
    // Sixteen single pages, then pages 0, 2 and 4 freed: list 0 is 4, 2, 0.
    let mut buddy = pages(16 * PAGE, Split::Lower);
    let all: Vec<usize> = (0..16).map(|_| buddy.alloc_order(0).unwrap()).collect();
    assert_eq!(all, (0..16).map(|page| page * PAGE).collect::<Vec<_>>());
    for page in [0, 2, 4] {
        buddy.free_order(page * PAGE, 0);
    }
    // Taking page 4 leaves page 2 at the head, its back link still naming page 4.
    assert_eq!(buddy.alloc_order(0).unwrap(), 4 * PAGE);
    // Freeing page 3 merges with page 2, which must leave the list as its head.
    buddy.free_order(3 * PAGE, 0);
    assert_eq!(free_blocks(&buddy), [(0, 1), (2, 2)]);
    assert_eq!(buddy.nr_free()[..2], [1, 1]);
    buddy.check().unwrap();
    // And the list still works: page 0 is its only block.
    assert_eq!(buddy.alloc_order(0).unwrap(), 0);
    assert_eq!(buddy.nr_free()[0], 0);
    buddy.check().unwrap();
}

#[test]
fn check_finds_unmerged_buddies() {
    let mut buddy = pages(16 * PAGE, Split::Lower);
    let a = buddy.alloc_order(0).unwrap();
    // Push the page back without merging, as a broken free would.
    buddy.ledger.granted_less(PAGE);
    // SAFETY: `a` is an aligned page inside the arena, not listed.
    unsafe { buddy.push(a, 0) };
    let violation = buddy.check().unwrap_err();
    assert!(violation.what.contains("were not merged"), "{violation}");
}

#[test]
fn specs_parse_validate_and_print_canonically() {
    let spec: Spec = "buddy:min=4K,max_order=10".parse().unwrap();
    let config = Config::from_spec(&spec).unwrap();
    assert_eq!(config, Config::pages());
    assert_eq!(config.spec(), "buddy:min=4K,max_order=10,split=lower");
    for config in Config::listed() {
        assert_eq!(Config::from_spec(&config.spec().parse().unwrap()).unwrap(), config);
    }
    for (text, message) in [
        ("buddy:min=24", "power of two of at least 16"),
        ("buddy:min=8", "power of two of at least 16"),
        ("buddy:max_order=x", "`max_order` must be `auto` or a number"),
        ("buddy:split=middle", "`split` must be one of lower, upper"),
    ] {
        let error = Config::from_spec(&text.parse().unwrap()).unwrap_err();
        assert!(error.message.contains(message), "{text}: {error}");
    }
    let error = Config::pages().build(Arena::new(100).unwrap()).unwrap_err();
    assert!(matches!(error.reason, SetupError::ArenaTooSmall { arena: 100, .. }), "{error}");
    assert!(error.to_string().contains("cannot hold one 4096-byte block"), "{error}");
}
