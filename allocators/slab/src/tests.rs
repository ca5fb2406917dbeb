//! The slab layer's behaviour, pinned against SLUB and /proc/slabinfo.

use std::alloc::Layout;

use heaplab_core::{Allocator, AllocatorConfig, Arena, Spec};

use super::*;

fn slab(config: Config) -> Slab {
    Slab::<true>::new(Arena::new(4 << 20).unwrap(), config).unwrap()
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn report(slab: &Slab, size: usize) -> CacheReport {
    slab.caches().into_iter().find(|cache| cache.object_size == size).unwrap()
}

#[test]
fn slab_orders_match_slub_for_4k_pages() {
    // (object size, objects per slab, order), as SLUB picks them with
    // min_objects = 16; the first three are the known answers.
    for (size, objects, order) in [
        (96, 42, 0),
        (192, 21, 0),
        (2048, 16, 3),
        (8, 512, 0),
        (256, 16, 0),
        (512, 16, 1),
        (1024, 16, 2),
        (4096, 8, 3),
        (8192, 4, 3),
    ] {
        let chosen = slab_order(size, 4096, 16, 3);
        assert_eq!((4096 << chosen) / size, objects, "{size}");
        assert_eq!(chosen, order, "{size}");
    }
    // Awkward sizes back off to larger waste fractions: 3000 bytes waste
    // 1096 of 4096 at order 0 (> 1/16) but 2768 of 32768 at order 3 (≤ 1/8).
    assert_eq!(slab_order(3000, 4096, 16, 3), 3);
    assert_eq!(get_order(1, 4096), 0);
    assert_eq!(get_order(4097, 4096), 1);
    assert_eq!(get_order(3 * 4096, 4096), 2);
}

#[test]
fn a_cache_fills_a_slab_then_grows_and_reports_its_loss() {
    let mut slab = slab(Config::default());
    let objects: Vec<_> = (0..43).map(|_| slab.alloc(layout(90)).unwrap()).collect();
    let cache = report(&slab, 96);
    assert_eq!((cache.active_objects, cache.total_objects, cache.slabs, cache.partial_slabs), (43, 84, 2, 1));
    assert_eq!(cache.loss_bytes, 2 * 4096 - 43 * 96);
    assert_eq!(cache.slab_padding_bytes, 2 * (4096 - 42 * 96));
    assert!((cache.efficiency_pct - 100.0 * 4128.0 / 8192.0).abs() < 1e-9);
    assert_eq!(slab.granted(objects[0], layout(90)), 96);
    // Objects of one slab are consecutive.
    let first = slab.arena().offset_of(objects[0]).unwrap();
    assert_eq!(slab.arena().offset_of(objects[1]).unwrap(), first + 96);

    let line = slab.slabinfo().lines().find(|line| line.starts_with("kmalloc-96 ")).unwrap().to_string();
    assert_eq!(
        line,
        "kmalloc-96            43     84     96   42    1 : tunables    0    0    0 : slabdata      2      2      0"
    );
    assert!(slab.slabinfo().starts_with("slabinfo - version: 2.1\n# name            <active_objs>"));

    for object in objects {
        // SAFETY: allocated above with this layout, freed once.
        unsafe { slab.free(object, layout(90)) };
    }
    let cache = report(&slab, 96);
    assert_eq!((cache.active_objects, cache.slabs, cache.empty_slabs), (0, 2, 2), "min_partial 5 keeps both");
    slab.trim();
    assert_eq!(report(&slab, 96).slabs, 0);
    slab.check().unwrap();
}

#[test]
fn empty_slabs_beyond_keep_go_back_to_the_buddy() {
    let mut slab = slab(Config { keep: Some(1), ..Config::default() });
    let objects: Vec<_> = (0..3 * 512).map(|_| slab.alloc(layout(8)).unwrap()).collect();
    assert_eq!(report(&slab, 8).slabs, 3);
    for object in objects {
        // SAFETY: allocated above with this layout, freed once.
        unsafe { slab.free(object, layout(8)) };
    }
    assert_eq!(report(&slab, 8).slabs, 1, "keep=1 holds one empty slab");
    slab.check().unwrap();
}

#[test]
fn large_requests_go_to_the_buddy_as_page_blocks() {
    let mut slab = slab(Config::default());
    let big = slab.alloc(layout(10_000)).unwrap();
    assert_eq!(slab.granted(big, layout(10_000)), 16384);
    assert!(slab.arena().offset_of(big).unwrap().is_multiple_of(16384));
    assert!(slab.caches().iter().all(|cache| cache.slabs == 0));
    assert_eq!(slab.buddy().stats().granted_bytes, 16384);
    // SAFETY: allocated above with this layout.
    unsafe { slab.free(big, layout(10_000)) };
    slab.check().unwrap();
}

#[test]
fn alignment_picks_a_class_whose_objects_are_aligned() {
    let mut slab = slab(Config::default());
    // 96-byte objects are only 32-byte aligned: a 64-aligned 70-byte request takes 128.
    let aligned = Layout::from_size_align(70, 64).unwrap();
    let ptr = slab.alloc(aligned).unwrap();
    assert_eq!(slab.granted(ptr, aligned), 128);
    assert_eq!(slab.granted(ptr, Layout::from_size_align(70, 32).unwrap()), 96);
    let page_aligned = Layout::from_size_align(10, 4096).unwrap();
    assert_eq!(slab.granted(ptr, page_aligned), 4096);
}

#[test]
fn realloc_keeps_the_object_within_its_class() {
    let mut slab = slab(Config::default());
    let ptr = slab.alloc(layout(65)).unwrap();
    // SAFETY: live with layout(65), then layout(96).
    let same = unsafe { slab.realloc(ptr, layout(65), 96) }.unwrap();
    assert_eq!(same, ptr);
    // SAFETY: live with layout(96).
    let moved = unsafe { slab.realloc(same, layout(96), 97) }.unwrap();
    assert_ne!(moved, ptr);
    assert_eq!(slab.granted(moved, layout(97)), 128);
    slab.check().unwrap();
}

#[test]
fn kmalloc_cache_names_follow_the_kernel() {
    assert_eq!(cache_name(96), "kmalloc-96");
    assert_eq!(cache_name(1024), "kmalloc-1k");
    assert_eq!(cache_name(8192), "kmalloc-8k");
    assert_eq!(cache_name(1000), "kmalloc-1000");
}

#[test]
fn specs_parse_validate_and_print_canonically() {
    let spec: Spec = "slab:classes=24/40/72,keep=2".parse().unwrap();
    let config = Config::from_spec(&spec).unwrap();
    assert_eq!(config.classes, Classes::List(vec![24, 40, 72]));
    assert_eq!(config.spec(), "slab:classes=24/40/72,page=4K,min_objects=16,max_order=3,keep=2");
    for config in Config::listed() {
        assert_eq!(Config::from_spec(&config.spec().parse().unwrap()).unwrap(), config);
    }
    for (text, message) in [
        ("slab:classes=24/16", "`classes` must increase"),
        ("slab:classes=12", "multiples of 8"),
        ("slab:classes=8/x", "expected a size"),
        ("slab:classes=65536", "must fit a slab of order 3 (32768 bytes), found 65536"),
        ("slab:page=1000", "`page` must be a power of two"),
        ("slab:keep=many", "`keep` must be `auto`"),
        ("slab:max_order=11", "at most 10"),
    ] {
        let error = Config::from_spec(&text.parse().unwrap()).unwrap_err();
        assert!(error.message.contains(message), "{text}: {error}");
    }
}
