//! The variants' placement, pinned on small heaps.

use std::alloc::Layout;

use heaplab_core::{Allocator, AllocatorConfig, Arena, Spec};

use super::*;

fn build(config: Config) -> Segregated {
    config.build(Arena::new(1 << 20).unwrap()).unwrap()
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).unwrap()
}

fn inspected(allocator: &Segregated) -> u64 {
    allocator.stats().counters.blocks_inspected.unwrap()
}

/// Leave free blocks of `sizes` (as requests) separated by live blocks.
fn holes(allocator: &mut Segregated, sizes: &[usize]) {
    let mut doomed = Vec::new();
    for &size in sizes {
        doomed.push((allocator.alloc(layout(size)).unwrap(), size));
        allocator.alloc(layout(16)).unwrap();
    }
    for (ptr, size) in doomed {
        // SAFETY: allocated above with this layout, freed once.
        unsafe { allocator.free(ptr, layout(size)) };
    }
}

#[test]
fn segregated_fits_takes_the_next_non_empty_class_by_one_bit_scan() {
    let mut allocator = build(Config::Fits { classes: Scheme::Dlmalloc });
    // Free blocks of 1000 and 2000 bytes; the rest of the arena is one big block.
    holes(&mut allocator, &[1000, 2000]);
    let before = inspected(&allocator);
    // 40 bytes: its exact class and the 60 between are empty; the first
    // non-empty one holds the 1000-byte hole, taken without scanning.
    let ptr = allocator.alloc(layout(40)).unwrap();
    assert_eq!(inspected(&allocator) - before, 1);
    let hole = allocator.arena().offset_of(ptr).unwrap();
    assert!(hole < 4096, "the small hole near the start was used, not the big block at the end");
    allocator.check().unwrap();
}

#[test]
fn segregated_fits_scans_the_requests_own_class_first() {
    let mut allocator = build(Config::Fits { classes: Scheme::PowersOfTwo });
    // 600 and 900 bytes share the [512, 1024) class; a 700-byte request
    // looks at the class's blocks and takes the one that fits.
    holes(&mut allocator, &[600, 900]);
    let before = inspected(&allocator);
    let ptr = allocator.alloc(layout(700)).unwrap();
    assert!(inspected(&allocator) - before <= 2);
    // Holes: 600 → a 608-byte block at 8, 900 → 912 bytes at 8 + 608 + 32.
    assert_eq!(allocator.arena().offset_of(ptr).unwrap(), 8 + 608 + 32 + 8, "the 900-byte hole, split");
    assert_eq!(allocator.granted(ptr, layout(700)), 720);
    allocator.check().unwrap();
}

#[test]
fn tlsf_finds_a_good_fit_without_walking_a_list() {
    let mut allocator = build(Config::Tlsf { sl_bits: 4 });
    holes(&mut allocator, &[200, 3000, 5000, 70_000]);
    for size in [10, 150, 2000, 4000, 60_000] {
        allocator.alloc(layout(size)).unwrap();
    }
    assert_eq!(
        allocator.stats().counters.blocks_inspected,
        None,
        "TLSF keeps no search counter: every search looks at one head"
    );
    allocator.check().unwrap();
}

#[test]
fn simple_storage_never_lends_one_classes_memory_to_another() {
    let mut allocator = build(Config::Simple { classes: Scheme::PowersOfTwo, page: 4096 });
    let small: Vec<_> = (0..256).map(|_| allocator.alloc(layout(16)).unwrap()).collect();
    for ptr in &small {
        // SAFETY: allocated above, freed once.
        unsafe { allocator.free(*ptr, layout(16)) };
    }
    // A full page of free 16-byte blocks, yet a 32-byte request needs a new page.
    let footprint = allocator.stats().footprint_bytes;
    allocator.alloc(layout(32)).unwrap();
    assert_eq!(allocator.stats().footprint_bytes, footprint + 4096);
    let shape = allocator.free_shape();
    assert!(shape.free_bytes > 4096);
    allocator.check().unwrap();
    allocator.trim();
    allocator.check().unwrap();
}

#[test]
fn simple_storage_classes_and_alignment() {
    assert_eq!(simple::class_sizes(Scheme::PowersOfTwo, 4096), [16, 32, 64, 128, 256, 512, 1024, 2048]);
    assert_eq!(
        simple::class_sizes(Scheme::WithMidpoints, 4096),
        [16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048]
    );
    let mut allocator = build(Config::Simple { classes: Scheme::WithMidpoints, page: 4096 });
    let aligned = Layout::from_size_align(40, 32).unwrap();
    let ptr = allocator.alloc(aligned).unwrap();
    assert_eq!(allocator.granted(ptr, aligned), 64, "48-byte blocks are only 16-byte aligned");
    let large = allocator.alloc(layout(5000)).unwrap();
    assert_eq!(allocator.granted(large, layout(5000)), 8192, "above the classes: two pages from the buddy");
    allocator.check().unwrap();
}

#[test]
fn specs_name_only_the_parameters_of_their_kind() {
    for config in Config::listed() {
        assert_eq!(Config::from_spec(&config.spec().parse().unwrap()).unwrap(), config);
    }
    let bare: Spec = "segregated".parse().unwrap();
    assert_eq!(Config::from_spec(&bare).unwrap().spec(), "segregated:kind=fits,classes=dl");
    assert_eq!(
        Config::from_spec(&"segregated:kind=tlsf".parse().unwrap()).unwrap().spec(),
        "segregated:kind=tlsf,sl=4"
    );
    for (text, message) in [
        ("segregated:kind=tlsf,classes=pow2", "unknown parameter `classes`"),
        ("segregated:kind=fits,sl=4", "unknown parameter `sl`"),
        ("segregated:kind=tlsf,sl=9", "from 1 to 5"),
        ("segregated:kind=simple,classes=dl", "must be one of pow2, pow2mid"),
        ("segregated:kind=heap", "must be one of fits, tlsf, simple"),
    ] {
        let error = Config::from_spec(&text.parse().unwrap()).unwrap_err();
        assert!(error.message.contains(message), "{text}: {error}");
    }
}

#[test]
fn a_config_with_an_unsupported_second_level_is_refused_at_build() {
    // `from_spec` refuses it first; a config made in code meets the build.
    for sl_bits in [0, 6] {
        let error = Config::Tlsf { sl_bits }.build(Arena::new(1 << 16).unwrap()).unwrap_err();
        assert!(error.to_string().contains("from 1 to 5"), "sl={sl_bits}: {error}");
    }
}
