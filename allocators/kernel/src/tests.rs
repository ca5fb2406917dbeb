//! The kernel model: the levels share one pool, vmalloc's mapping is real,
//! and the lesson of the levels shows in numbers.

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::conformance as suite;
use heaplab_core::{Allocator, AllocatorConfig, Arena, Level, Spec};

use super::*;

fn kernel(pool: usize) -> Kernel {
    Kernel::<true>::new(Arena::new(pool).unwrap(), Config::default()).unwrap()
}

fn pages(n: usize) -> Layout {
    Layout::from_size_align(n * PAGE, PAGE).unwrap()
}

fn detail(kernel: &Kernel, table: &str, row: &str, column: &str) -> f64 {
    kernel
        .details()
        .into_iter()
        .find(|d| d.table == table && d.row == row && d.column == column)
        .unwrap_or_else(|| panic!("no {table}/{row}/{column}"))
        .value
}

heaplab_core::conformance_suite!(conformance_user_at_kmalloc, config: Config::default());
heaplab_core::conformance_suite!(conformance_user_at_vmalloc, config: Config { user: Level::Vmalloc, malloc: None });
heaplab_core::conformance_suite!(conformance_user_at_page, config: Config { user: Level::Page, malloc: None });
heaplab_core::conformance_suite!(conformance_user_in_fits_heaps, config: malloc_config(DEFAULT_MALLOC));
heaplab_core::conformance_suite!(conformance_user_in_buddy_heaps, config: malloc_config("buddy/min:16"));

fn malloc_config(family: &str) -> Config {
    let spec = format!("kernel:user=malloc,malloc={family}");
    Config::from_spec(&spec.parse::<Spec>().unwrap()).unwrap()
}

fn malloc_kernel(pool: usize, family: &str) -> Kernel {
    Kernel::<true>::new(Arena::new(pool).unwrap(), malloc_config(family)).unwrap()
}

fn bytes(n: usize) -> Layout {
    Layout::from_size_align(n, 8).unwrap()
}

#[test]
fn random_ops_at_every_level() {
    for plan in [suite::RandomOps::long(), suite::RandomOps::thorough(), suite::RandomOps::cramped()] {
        let plan = suite::RandomOps { levels: true, ..plan };
        let summary = suite::expect(suite::random_ops(suite::factory(Config::default()), &plan));
        assert!(summary.allocs > plan.ops / 10, "too few allocations succeeded: {summary:?}");
    }
    let plan = suite::RandomOps { levels: true, ops: 20_000, ..suite::RandomOps::long() };
    suite::expect(suite::timed_twin(Config::default(), &plan));
}

#[test]
fn specs_round_trip_and_bad_ones_are_refused() {
    for text in [
        "kernel",
        "kernel:user=vmalloc",
        "kernel:user=page",
        "kernel:user=malloc",
        "kernel:user=malloc,malloc=freelist/fit:best,heap=1M,mmap=64K",
    ] {
        let config = Config::from_spec(&text.parse::<Spec>().unwrap()).unwrap();
        assert_eq!(Config::from_spec(&config.spec().parse::<Spec>().unwrap()).unwrap(), config);
    }
    let error = Config::from_spec(&"kernel:user=heap".parse::<Spec>().unwrap()).unwrap_err();
    assert!(error.to_string().contains("`user` must be kmalloc, vmalloc, page or malloc"), "{error}");
    let error = Config::from_spec(&"kernel:user=page,heap=1M".parse::<Spec>().unwrap()).unwrap_err();
    assert!(error.to_string().contains("`heap` is a parameter of user=malloc"), "{error}");
    let error = Config::from_spec(&"kernel:user=malloc,malloc=kernel".parse::<Spec>().unwrap()).unwrap_err();
    assert!(error.to_string().contains("a heap is one of the families"), "{error}");
    let error = Config::from_spec(&"kernel:user=malloc,heap=10K".parse::<Spec>().unwrap()).unwrap_err();
    assert!(error.to_string().contains("from 64K to 1G"), "{error}");
}

#[test]
fn a_vmalloc_block_is_the_pools_frames_mapped_again() {
    let mut kernel = kernel(1 << 20);
    // Scatter the free frames: take eight single pages, give back 1, 3, 5.
    let singles: Vec<_> = (0..8).map(|_| kernel.alloc_at(Level::Page, pages(1)).unwrap()).collect();
    for index in [1, 3, 5] {
        // SAFETY: a live page block with this layout, freed once.
        unsafe { kernel.free(singles[index], pages(1)) };
    }
    let block = kernel.alloc_at(Level::Vmalloc, pages(3)).unwrap();
    let offset = kernel.arena().offset_of(block).unwrap();
    assert!(offset >= kernel.pool_bytes(), "a vmalloc block lies in the vmalloc space");
    let area = kernel.space().area((offset - kernel.pool_bytes()) / PAGE).unwrap().clone();
    // Order-0 frames come off the free list last freed first (LIFO, as
    // Linux's hot pages), wherever they are.
    assert_eq!(area.frames, vec![5, 3, 1]);
    assert_eq!(area.runs, 3, "three mappings: no two frames are neighbours");
    for page in 0..3 {
        // SAFETY: the block is live and three pages long.
        unsafe { block.as_ptr().add(page * PAGE + 10).write(0xA0 + page as u8) };
    }
    // The bytes are in the frames, read through the pool.
    for (page, &frame) in area.frames.iter().enumerate() {
        assert_eq!(kernel.arena().load_word(frame as usize * PAGE + 8).to_le_bytes()[2], 0xA0 + page as u8);
    }
    assert_eq!(kernel.granted(block, pages(3)), 3 * PAGE);
    assert_eq!(detail(&kernel, "vmallocinfo", "vmalloc", "guard_bytes"), PAGE as f64);
    assert_eq!(detail(&kernel, "vmallocinfo", "vmalloc", "page_table_bytes"), PAGE as f64);
    assert_eq!(kernel.stats().metadata_bytes, PAGE, "the page-table page is metadata");
    kernel.check().unwrap();
    // SAFETY: live, freed once.
    unsafe { kernel.free(block, pages(3)) };
    kernel.check().unwrap();
}

#[test]
fn areas_are_separated_by_guard_pages_and_the_space_is_reused() {
    let mut kernel = kernel(1 << 20);
    let a = kernel.alloc_at(Level::Vmalloc, pages(2)).unwrap();
    let b = kernel.alloc_at(Level::Vmalloc, Layout::from_size_align(1, 8).unwrap()).unwrap();
    let gap = b.as_ptr().addr() - a.as_ptr().addr();
    assert_eq!(gap, 3 * PAGE, "two pages and a guard page");
    // SAFETY: live, freed once.
    unsafe { kernel.free(a, pages(2)) };
    let c = kernel.alloc_at(Level::Vmalloc, pages(1)).unwrap();
    assert_eq!(c, a, "the lowest free range fits");
    kernel.check().unwrap();
}

#[test]
fn a_fragmented_pool_refuses_order_4_and_vmalloc_serves_the_same_bytes() {
    let pool = 1 << 20;
    let mut kernel = kernel(pool);
    let frames = pool / PAGE;
    let singles: Vec<_> = (0..frames).map(|_| kernel.alloc_at(Level::Page, pages(1)).unwrap()).collect();
    for block in singles.iter().step_by(2) {
        // SAFETY: live page blocks, each freed once.
        unsafe { kernel.free(*block, pages(1)) };
    }
    let free = kernel.stats().free_bytes;
    assert_eq!(free, pool / 2);
    assert_eq!(kernel.alloc_at(Level::Page, pages(16)).unwrap_err(), AllocError::OutOfMemory);
    let virtually = kernel.alloc_at(Level::Vmalloc, pages(16)).unwrap();
    assert_eq!(detail(&kernel, "levels", "alloc_pages", "refused"), 1.0);
    assert_eq!(detail(&kernel, "levels", "vmalloc", "served"), 1.0);
    assert_eq!(detail(&kernel, "levels", "vmalloc", "held_bytes"), (17 * PAGE) as f64, "16 frames and a page table");
    assert_eq!(detail(&kernel, "buddyinfo", "order 0", "nr_free"), (frames / 2 - 17) as f64);
    kernel.check().unwrap();
    // SAFETY: live, freed once.
    unsafe { kernel.free(virtually, pages(16)) };
    for block in singles.iter().skip(1).step_by(2) {
        // SAFETY: the other half, each freed once.
        unsafe { kernel.free(*block, pages(1)) };
    }
    kernel.trim();
    assert_eq!(kernel.stats().free_bytes, pool, "everything back, page tables included");
    kernel.check().unwrap();
}

#[test]
fn the_levels_share_the_pool_and_are_counted_apart() {
    let mut kernel = kernel(1 << 20);
    let small = Layout::from_size_align(100, 8).unwrap();
    let object = kernel.alloc_at(Level::Kmalloc, small).unwrap();
    let large = kernel.alloc_at(Level::Kmalloc, Layout::from_size_align(20_000, 8).unwrap()).unwrap();
    let frames = kernel.alloc_at(Level::Page, Layout::from_size_align(5000, 8).unwrap()).unwrap();
    let _user = kernel.alloc(small).unwrap();
    assert!(kernel.arena().offset_of(object).unwrap() < kernel.pool_bytes());
    assert_eq!(kernel.granted(object, small), 128);
    assert_eq!(kernel.granted(large, Layout::from_size_align(20_000, 8).unwrap()), 8 * PAGE);
    assert_eq!(kernel.granted(frames, Layout::from_size_align(5000, 8).unwrap()), 2 * PAGE);
    assert_eq!(detail(&kernel, "levels", "kmalloc", "requested_bytes"), 20_200.0);
    assert_eq!(detail(&kernel, "levels", "kmalloc", "granted_bytes"), (128 + 128 + 8 * PAGE) as f64);
    assert_eq!(detail(&kernel, "levels", "alloc_pages", "granted_bytes"), (2 * PAGE) as f64);
    assert_eq!(detail(&kernel, "pool", "kmalloc large", "bytes"), (8 * PAGE) as f64);
    assert_eq!(detail(&kernel, "pool", "slab caches", "bytes"), PAGE as f64);
    // A realloc keeps the level: the page block grows into a larger block of frames.
    // SAFETY: live with this layout.
    let grown = unsafe { kernel.realloc(frames, Layout::from_size_align(5000, 8).unwrap(), 9000) }.unwrap();
    assert_eq!(kernel.granted(grown, Layout::from_size_align(9000, 8).unwrap()), 4 * PAGE);
    assert_eq!(detail(&kernel, "levels", "alloc_pages", "granted_bytes"), (4 * PAGE) as f64);
    kernel.check().unwrap();
}

#[test]
fn each_space_has_its_own_heap_whose_pages_are_pool_frames() {
    let pool = 1 << 20;
    let mut kernel = malloc_kernel(pool, DEFAULT_MALLOC);
    let a = kernel.alloc_in(1, Level::User, bytes(100)).unwrap();
    let b = kernel.alloc_in(2, Level::User, bytes(100)).unwrap();
    assert_eq!(kernel.heaps().count(), 2, "two processes, two heaps");
    let distance = b.as_ptr().addr().abs_diff(a.as_ptr().addr());
    assert!(distance >= 4 << 20, "the heaps are apart by their address space: {distance}");
    // SAFETY: a live block of 100 bytes.
    unsafe { a.as_ptr().add(40).write_bytes(0x5A, 8) };
    // The bytes are in the heap's frame, read through the pool.
    let heap = kernel.heaps().find(|heap| heap.space == 1).unwrap();
    let in_heap = a.as_ptr().addr() - kernel.arena().base().as_ptr().addr() - heap.base;
    let frame = heap.frames[in_heap / PAGE] as usize;
    assert_eq!(kernel.arena().load_word(frame * PAGE + in_heap % PAGE + 40), u64::from_le_bytes([0x5A; 8]));
    assert!(detail(&kernel, "pool", "malloc heaps", "bytes") >= (2 * PAGE) as f64);
    assert_eq!(detail(&kernel, "levels", "malloc", "served"), 2.0);
    kernel.check().unwrap();
    // Space 1 grows its heap page by page as its footprint passes them.
    let before = kernel.heaps().find(|heap| heap.space == 1).unwrap().frames.len();
    let more: Vec<_> = (0..100).map(|_| kernel.alloc_in(1, Level::User, bytes(1000)).unwrap()).collect();
    let heap = kernel.heaps().find(|heap| heap.space == 1).unwrap();
    assert!(heap.frames.len() >= before + 100_000 / PAGE, "{} frames", heap.frames.len());
    assert_eq!(heap.frames.len(), heap.footprint_pages());
    kernel.check().unwrap();
    // Freeing every block of space 1 gives its frames back.
    for block in more {
        // SAFETY: live, freed once.
        unsafe { kernel.free(block, bytes(1000)) };
    }
    // SAFETY: live, freed once.
    unsafe { kernel.free(a, bytes(100)) };
    assert_eq!(kernel.heaps().count(), 1);
    kernel.check().unwrap();
    // SAFETY: live, freed once.
    unsafe { kernel.free(b, bytes(100)) };
    assert_eq!(kernel.heaps().count(), 0);
    assert_eq!(kernel.stats().free_bytes, pool, "every frame back");
    assert_eq!(kernel.stats().cached_bytes, 0);
    kernel.check().unwrap();
}

#[test]
fn large_requests_get_a_mapping_and_reallocs_stay_in_the_process() {
    let mut kernel = malloc_kernel(1 << 20, "freelist/fit:first");
    let big = kernel.alloc_in(3, Level::User, bytes(200_000)).unwrap();
    assert_eq!(kernel.heaps().count(), 0, "above the mmap threshold: no heap");
    assert_eq!(detail(&kernel, "pool", "malloc mmap", "bytes"), (49 * PAGE) as f64);
    assert_eq!(detail(&kernel, "vmallocinfo", "vmalloc", "areas"), 0.0, "not a vmalloc area");
    // SAFETY: live with this layout; shrinks below the threshold, so it
    // moves into the process's heap.
    let small = unsafe { kernel.realloc(big, bytes(200_000), 5000) }.unwrap();
    assert_eq!(kernel.heaps().map(|heap| heap.space).collect::<Vec<_>>(), vec![3]);
    assert_eq!(detail(&kernel, "pool", "malloc mmap", "bytes"), 0.0);
    // SAFETY: live with this layout; grows within the heap.
    let grown = unsafe { kernel.realloc(small, bytes(5000), 9000) }.unwrap();
    assert_eq!(detail(&kernel, "levels", "malloc", "requested_bytes"), 9000.0);
    kernel.check().unwrap();
    // SAFETY: live, freed once.
    unsafe { kernel.free(grown, bytes(9000)) };
    assert_eq!(kernel.heaps().count(), 0);
    kernel.trim();
    assert_eq!(kernel.stats().free_bytes, 1 << 20, "every frame back, the mapping's page table after trim");
    kernel.check().unwrap();
}

#[test]
fn a_pool_without_frames_refuses_malloc_and_the_heap_keeps_its_blocks() {
    let pool = 256 << 10;
    let mut kernel = malloc_kernel(pool, DEFAULT_MALLOC);
    let mut blocks = Vec::new();
    while let Ok(block) = kernel.alloc_in(1, Level::User, bytes(3000)) {
        blocks.push(block);
        assert!(blocks.len() < 1000, "a 256 KiB pool cannot serve this much");
    }
    assert!(detail(&kernel, "levels", "malloc", "refused") >= 1.0);
    assert!(blocks.len() >= 60, "most of the pool serves the heap: {}", blocks.len());
    kernel.check().unwrap();
    for block in blocks {
        // SAFETY: live, freed once.
        unsafe { kernel.free(block, bytes(3000)) };
    }
    assert_eq!(kernel.stats().free_bytes, pool);
    kernel.check().unwrap();
}

#[test]
fn random_ops_over_many_processes_keep_every_invariant() {
    use rand::{Rng, SeedableRng};
    for family in [DEFAULT_MALLOC, "buddy/min:16", "slab"] {
        let pool = 2 << 20;
        let mut kernel = malloc_kernel(pool, family);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut live: Vec<(NonNull<u8>, Layout, u8)> = Vec::new();
        for step in 0..6000u32 {
            if live.is_empty() || rng.random_bool(0.55) {
                let size =
                    if rng.random_bool(0.02) { rng.random_range(100_000..300_000) } else { rng.random_range(1..3000) };
                let layout = bytes(size);
                let space = rng.random_range(0..8u8);
                if let Ok(ptr) = kernel.alloc_in(space, Level::User, layout) {
                    let tag = step as u8;
                    // SAFETY: a live block of `size` bytes.
                    unsafe { ptr.as_ptr().write_bytes(tag, size) };
                    live.push((ptr, layout, tag));
                }
            } else {
                let (ptr, layout, tag) = live.swap_remove(rng.random_range(0..live.len()));
                // SAFETY: live with this layout.
                let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), layout.size()) };
                assert!(bytes.iter().all(|&b| b == tag), "{family}: a block's payload changed");
                // SAFETY: live, freed once.
                unsafe { kernel.free(ptr, layout) };
            }
            if step % 500 == 0 {
                kernel.check().unwrap_or_else(|v| panic!("{family}, step {step}: {v:?}"));
            }
        }
        for (ptr, layout, _) in live {
            // SAFETY: live, freed once.
            unsafe { kernel.free(ptr, layout) };
        }
        kernel.check().unwrap();
        assert_eq!(kernel.heaps().count(), 0);
        kernel.trim();
        assert_eq!(kernel.stats().free_bytes, pool, "{family}: every frame back");
    }
}
