//! `heaplab step`: the player page, opened in a real headless Chromium
//! (Debian's `chromium`, which `.ci/run` installs), checked against a
//! replay made here by hand, without heaplab's harness.

use std::alloc::Layout;
use std::collections::HashMap;
use std::path::Path;
use std::ptr::NonNull;

use assert_cmd::Command;
use heaplab_core::{Allocator, Arena};
use heaplab_workloads::{Op, Workload};
use predicates::prelude::*;

mod browser;

fn heaplab() -> Command {
    Command::cargo_bin("heaplab").unwrap()
}

/// The `data-` attributes of the page's `#player` (the first allocator's
/// state) after its scripts ran, opened at `fragment`.
fn player_state(page: &Path, fragment: &str) -> HashMap<String, String> {
    let dom = dump_dom(page, fragment);
    let start = dom.find("<main id=\"player\"").unwrap_or_else(|| panic!("no #player in the DOM at {fragment}"));
    let attributes = attributes(&dom[start..start + dom[start..].find('>').unwrap()]);
    assert_eq!(attributes.get("ready").map(String::as_str), Some("true"), "the page did not finish at {fragment}");
    attributes
}

fn dump_dom(page: &Path, fragment: &str) -> String {
    browser::dump_dom(page, fragment, &[])
}

/// An element's `data-` attributes, from its start tag.
fn attributes(tag: &str) -> HashMap<String, String> {
    let mut attributes = HashMap::new();
    let mut rest = tag;
    while let Some(at) = rest.find(" data-") {
        rest = &rest[at + 6..];
        let (name, after) = rest.split_once("=\"").unwrap();
        let (value, after) = after.split_once('"').unwrap();
        let value = value.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
        attributes.insert(name.to_string(), value);
        rest = after;
    }
    attributes
}

/// The workload replayed by hand through `allocator` for its first `ops`
/// ops: the live blocks by id, as offsets and sizes.
fn replay_by_hand<A: Allocator>(allocator: &mut A, ops: &[Op], count: usize) -> HashMap<u32, (usize, Layout)> {
    let mut live: HashMap<u32, (NonNull<u8>, Layout)> = HashMap::new();
    for op in &ops[..count] {
        match *op {
            Op::Alloc { id, size, align, .. } => {
                let layout = Layout::from_size_align(size as usize, align.bytes_or(16) as usize).unwrap();
                if let Ok(ptr) = allocator.alloc(layout) {
                    live.insert(id, (ptr, layout));
                }
            }
            Op::Free { id } => {
                if let Some((ptr, layout)) = live.remove(&id) {
                    // SAFETY: a live block of this allocator with its layout.
                    unsafe { allocator.free(ptr, layout) };
                }
            }
            Op::Realloc { id, size } => {
                if let Some((ptr, layout)) = live.get(&id).copied() {
                    // SAFETY: a live block of this allocator with its layout.
                    if let Ok(new) = unsafe { allocator.realloc(ptr, layout, size as usize) } {
                        live.insert(id, (new, Layout::from_size_align(size as usize, layout.align()).unwrap()));
                    }
                }
            }
        }
    }
    live.into_iter().map(|(id, (ptr, layout))| (id, (allocator.arena().offset_of_owned(ptr), layout))).collect()
}

/// What lies at `offset`, as the page writes it: `payload AT LEN`,
/// `free AT LEN` or `other AT 0`.
fn block_at<A: Allocator>(allocator: &A, live: &HashMap<u32, (usize, Layout)>, offset: usize) -> String {
    if let Some((at, layout)) = live.values().find(|(at, layout)| *at <= offset && offset < at + layout.size()) {
        return format!("payload {at} {}", layout.size());
    }
    let mut found = None;
    allocator.for_each_free(&mut |at, len| {
        if at <= offset && offset < at + len {
            found = Some(format!("free {at} {len}"));
        }
    });
    found.unwrap_or(format!("other {offset} 0"))
}

fn ops_of(workload: &str) -> Vec<Op> {
    Workload::parse(workload).unwrap().ops(1).unwrap().map(Result::unwrap).collect()
}

#[test]
fn a_buddy_system_steps_from_the_first_split_to_the_refused_request_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("buddy.html");
    heaplab()
        .args(["step", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "-o"])
        .arg(&page)
        .assert()
        .success()
        .stdout(predicate::str::contains("ops 0 to 258 of 258"))
        .stdout(predicate::str::contains(
            "buddy:min=16,max_order=auto,split=lower: the arena line, the buddy tree and the free lists",
        ));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 5 << 20, "the page is {} bytes", html.len());
    for outside in ["src=\"http", "href=\"http", "src=\"//", "@import"] {
        assert!(!html.contains(outside), "the page loads something from outside: {outside}");
    }
    // The suggested arena of fragmenter:live=8K: 8 KiB and a quarter.
    let ops = ops_of("fragmenter:live=8K");
    let words = [
        (1, "op 1: alloc 64 B → a 64 B block at 0x2000; split 5 times"),
        (
            193,
            "op 193: alloc 4.00 KiB → refused: 6.00 KiB free in 65 holes, the largest 2.00 KiB (enough bytes free, but no block holds it)",
        ),
        (194, "op 194: free 64 B at 0x2040 → merged once into a free 128 B block at 0x2000"),
    ];
    for (op, offset) in
        [(0, 0), (1, 0x2000), (2, 0x2010), (64, 0x2800), (129, 0x2000), (193, 0x2004), (194, 0x2070), (258, 0)]
    {
        let state = player_state(&page, &format!("op={op}&offset={offset}"));
        let mut buddy = heaplab_buddy::Buddy::<true>::new(Arena::natural(10240).unwrap(), Default::default()).unwrap();
        let live = replay_by_hand(&mut buddy, &ops, op);
        buddy.check().unwrap();
        let nr_free: Vec<String> = buddy.nr_free().iter().map(usize::to_string).collect();
        assert_eq!(state["op"], op.to_string());
        assert_eq!(state["buddyinfo"], nr_free.join(" "), "free blocks per order at op {op}");
        assert_eq!(state["block-at"], block_at(&buddy, &live, offset), "the block under {offset:#x} at op {op}");
        let mut free_blocks = 0;
        buddy.for_each_free(&mut |_, _| free_blocks += 1);
        assert_eq!(state["free-blocks"], free_blocks.to_string(), "free blocks at op {op}");
        if let Some((_, expected)) = words.iter().find(|(at, _)| *at == op) {
            assert_eq!(state["words"], *expected);
        }
        assert!(state["words"].starts_with(&format!("op {op}: ")), "{}", state["words"]);
    }
}

#[test]
fn the_slab_pages_are_a_buddy_tree_with_the_caches_slabs_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("slab.html");
    let workload = "kmalloc-mix:ops=3000";
    heaplab()
        .args(["step", "--alloc", "slab", "--workload", workload, "--arena", "4M", "--ops", "0..=3000", "-o"])
        .arg(&page)
        .assert()
        .success();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("kmalloc-64"), "the tree names the caches holding slabs");
    let ops = ops_of(workload);
    let mut probed = 0;
    for op in [1, 1500, 3000] {
        let state = player_state(&page, &format!("op={op}"));
        let mut slab = heaplab_slab::Slab::<true>::new(Arena::natural(4 << 20).unwrap(), Default::default()).unwrap();
        let live = replay_by_hand(&mut slab, &ops, op);
        slab.check().unwrap();
        let nr_free: Vec<String> = slab.buddy().nr_free().iter().map(usize::to_string).collect();
        assert_eq!(state["buddyinfo"], nr_free.join(" "), "free pages per order at op {op}");
        // Each cache with slabs: objects in use, objects, slabs, partial
        // and empty slabs, as /proc/slabinfo and the slab lists have them.
        let slabinfo: Vec<String> = slab
            .caches()
            .iter()
            .filter(|cache| cache.slabs > 0)
            .map(|c| {
                format!(
                    "{} {} {} {} {} {}",
                    c.name, c.active_objects, c.total_objects, c.slabs, c.partial_slabs, c.empty_slabs
                )
            })
            .collect();
        assert!(!slabinfo.is_empty() || op == 3000);
        assert_eq!(state["slabinfo"], slabinfo.join("; "), "the caches' slabs at op {op}");
        // The block under the lowest-numbered live block's first byte.
        if let Some((_, &(offset, layout))) = live.iter().min_by_key(|(id, _)| **id) {
            let probe = player_state(&page, &format!("op={op}&offset={offset}"));
            assert_eq!(probe["block-at"], format!("payload {offset} {}", layout.size()));
            probed += 1;
        }
    }
    assert!(probed >= 2, "only {probed} ops had live blocks to point at");
}

/// The `data-` attributes of every allocator's panel, in page order.
fn panel_states(page: &Path, fragment: &str) -> Vec<HashMap<String, String>> {
    let dom = dump_dom(page, fragment);
    dom.match_indices("<section class=\"panel\" data-")
        .map(|(start, _)| attributes(&dom[start..start + dom[start..].find('>').unwrap()]))
        .collect()
}

/// What `spec` holds free after `count` ops of `ops`, replayed by hand on
/// an arena of `arena` bytes: its free blocks, its free lists as the page
/// writes them (`list:offset,offset;…`) and its rover.
struct FreeAfter<'a> {
    ops: &'a [Op],
    count: usize,
    arena: usize,
}

impl heaplab_core::Visitor for FreeAfter<'_> {
    type Output = (usize, String, String);

    fn visit<C: heaplab_core::AllocatorConfig>(self, config: &C) -> Self::Output {
        let mut allocator = config.build(Arena::natural(self.arena).unwrap()).unwrap();
        replay_by_hand(&mut allocator, self.ops, self.count);
        allocator.check().unwrap();
        let mut blocks = 0;
        allocator.for_each_free(&mut |_, _| blocks += 1);
        let view = allocator.free_lists().expect("these allocators show their lists");
        let mut lists: Vec<(usize, Vec<String>)> = Vec::new();
        for (list, block) in view.blocks {
            match lists.last_mut() {
                Some((last, members)) if *last == list => members.push(block.to_string()),
                _ => lists.push((list, vec![block.to_string()])),
            }
        }
        let lists = lists.iter().map(|(list, members)| format!("{list}:{}", members.join(","))).collect::<Vec<_>>();
        (blocks, lists.join(";"), view.rover.map_or(String::new(), |rover| rover.to_string()))
    }
}

/// `heaplab step` with `specs` side by side on `workload` in a 16 KiB arena.
fn step_side_by_side(specs: &[&str], workload: &str, page: &Path) {
    let mut command = heaplab();
    command.arg("step");
    for spec in specs {
        command.args(["--alloc", spec]);
    }
    command.args(["--workload", workload, "--arena", "16K", "-o"]).arg(page).assert().success();
}

#[test]
fn the_four_fits_side_by_side_step_together() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("fits.html");
    let workload = "uniform:ops=400,live=12K,min=16,max=1K,phase=steady";
    let fits = ["freelist:fit=first", "freelist:fit=next", "freelist:fit=best", "freelist:fit=worst"];
    step_side_by_side(&fits, workload, &page);
    let ops = ops_of(workload);
    for op in [0, 120, 200, 333] {
        let panels = panel_states(&page, &format!("op={op}"));
        assert_eq!(panels.len(), 4, "one panel per allocator");
        for (fit, panel) in fits.iter().zip(&panels) {
            assert!(panel["allocator"].starts_with(fit), "{} for {fit}", panel["allocator"]);
            assert_eq!(panel["op"], op.to_string(), "every panel at the same op");
            let spec = heaplab::registry::AllocatorSpec::parse(fit).unwrap();
            let (free_blocks, lists, rover) = spec.visit(FreeAfter { ops: &ops, count: op, arena: 16 << 10 });
            assert_eq!(panel["free-blocks"], free_blocks.to_string(), "{fit}'s free blocks at op {op}");
            assert_eq!(panel["lists"], lists, "{fit}'s free list in list order at op {op}");
            assert_eq!(panel["rover"], rover, "{fit}'s rover at op {op}");
            if fit.ends_with("next") && op > 0 {
                assert!(!rover.is_empty(), "next fit's rover has moved off the head by op {op}");
            }
        }
    }
    heaplab()
        .args(["step", "--workload", workload, "-o"])
        .arg(&page)
        .args(["--alloc", "buddy", "--alloc", "buddy", "--alloc", "buddy", "--alloc", "buddy", "--alloc", "buddy"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("at most 4 allocators side by side, found 5"));
}

#[test]
fn lifo_fifo_and_tlsf_lists_are_shown_in_their_order_with_the_bitmaps() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("lists.html");
    let workload = "uniform:ops=300,live=8K,min=16,max=600,phase=steady";
    let specs =
        ["freelist:fit=first,order=lifo", "freelist:fit=first,order=fifo", "segregated:kind=tlsf,sl=2", "buddy"];
    step_side_by_side(&specs, workload, &page);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("fl 3, sl 1: from 320 B"), "TLSF lists are named by their levels and sizes");
    assert!(html.contains("free_area[2], 64 blocks"), "a buddy's lists are its free_area");
    let ops = ops_of(workload);
    for op in [57, 150, 299] {
        let panels = panel_states(&page, &format!("op={op}"));
        for (spec, panel) in specs.iter().zip(&panels) {
            let (_, lists, _) = heaplab::registry::AllocatorSpec::parse(spec).unwrap().visit(FreeAfter {
                ops: &ops,
                count: op,
                arena: 16 << 10,
            });
            assert_eq!(panel["lists"], lists, "{spec}'s lists at op {op}");
        }
    }
}

#[test]
fn a_peer_says_which_views_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("glibc.html");
    heaplab()
        .args(["step", "--alloc", "peer:glibc", "--workload", "fragmenter:live=8K", "-o"])
        .arg(&page)
        .assert()
        .success()
        .stdout(predicate::str::contains("peer:glibc: the words and gauges only"))
        .stdout(predicate::str::contains("not shown: the arena line"));
    let state = player_state(&page, "op=193");
    assert_eq!(state["views"], "");
    assert!(state["words"].starts_with("op 193: alloc 4.00 KiB → a block"), "{}", state["words"]);
}

#[test]
fn bad_requests_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("kept.html");
    std::fs::write(&page, "kept").unwrap();
    heaplab()
        .args(["step", "--alloc", "buddyy", "--workload", "fragmenter", "-o"])
        .arg(&page)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("buddyy"));
    heaplab()
        .args(["step", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "--ops", "0..=259", "-o"])
        .arg(&page)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the workload has 258 ops, so op 259 does not exist"));
    heaplab()
        .args(["step", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "--ops", "9..3", "-o"])
        .arg(&page)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--ops 9..3: the range holds no op"));
    heaplab()
        .args(["step", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "-o"])
        .arg(dir.path().join("missing/page.html"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
    assert_eq!(std::fs::read_to_string(&page).unwrap(), "kept");
}

#[test]
fn a_long_workload_is_capped_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("ramp.html");
    heaplab()
        .args(["step", "--alloc", "freelist:fit=first", "--workload", "ramp:ops=25000", "-o"])
        .arg(&page)
        .assert()
        .success()
        .stdout(predicate::str::contains(" of 25,000 (capped; --ops shows others)"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 5_000_000, "the page is {} bytes", html.len());
    // At most the default 20,000 ops, fewer if the page would pass 5 MB.
    let at = html.find("\"capped\":").expect("the recording says it was capped") + 9;
    let capped: u64 = html[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
    assert!((10_000..=20_000).contains(&capped), "capped at {capped} ops");
    let dom = dump_dom(&page, "op=0");
    assert!(
        dom.contains("unless --ops asks for a range, heaplab step shows at most 20,000 ops, and fewer when the page would pass 4.58 MiB"),
        "the page's note on the cap"
    );
    // Asked for an op past the page, it says so and keeps the cap's note.
    let dom = dump_dom(&page, "op=24000");
    assert!(dom.contains("Op 24000 is not in this page, which holds ops 0 to "), "the note on an op outside");
    assert!(dom.contains("heaplab step shows at most 20,000 ops"), "the cap's note stays");
    // Opened right at a keyframe, the page still knows what that op took
    // away (it rebuilds from the keyframe before).
    let marker = "id=\"recording\">";
    let start = html.find(marker).unwrap() + marker.len();
    let data: serde_json::Value =
        serde_json::from_str(&html[start..start + html[start..].find("</script>").unwrap()]).unwrap();
    let recording = &data["recordings"][0];
    let keyframes = recording["keyframes"].as_array().unwrap();
    assert!(keyframes.len() > 1, "a long recording has keyframes past its first");
    let (op, removed) = keyframes[1..]
        .iter()
        .map(|k| k["op"].as_u64().unwrap())
        .map(|op| {
            let record = &recording["ops"][op as usize];
            let dels: usize = ["free", "live", "tree", "links", "heads"]
                .iter()
                .map(|map| record[map]["del"].as_array().map_or(0, Vec::len))
                .sum();
            (op, dels)
        })
        .find(|&(_, dels)| dels > 0)
        .expect("a keyframe op that removes something");
    let state = player_state(&page, &format!("op={op}"));
    let gone: usize = state["gone"].parse().unwrap();
    assert!(gone >= removed, "at keyframe op {op}: {gone} entries shown gone, the op removed {removed}");
}

/// The frames of a GIF as RGB pixels, and its size.
fn gif_frames(path: &Path) -> (Vec<Vec<u8>>, (u16, u16)) {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(std::fs::File::open(path).unwrap()).unwrap();
    let size = (decoder.width(), decoder.height());
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        assert_eq!((frame.left, frame.top, frame.width, frame.height), (0, 0, size.0, size.1), "a partial frame");
        frames.push(frame.buffer.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect());
    }
    (frames, size)
}

/// A PNG's RGB pixels and size.
fn png_pixels(path: &Path) -> (Vec<u8>, (u32, u32)) {
    let mut decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    let pixels = buffer[..info.buffer_size()].chunks(channels).flat_map(|p| [p[0], p[1], p[2]]).collect();
    (pixels, (info.width, info.height))
}

/// The text of an SVG's `<text>` elements, in order.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim().to_string())
        .collect()
}

#[test]
fn a_gif_of_the_buddy_tree_has_one_frame_per_op_each_the_picture_of_that_op() {
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("buddy.gif");
    heaplab()
        .args(["step", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "--ops", "0..=40", "--fps", "5", "-o"])
        .arg(&gif)
        .assert()
        .success()
        .stdout(predicate::str::contains("the buddy tree, 41 frames, ops 0 to 40 of 258 at 5 a second"));
    let (frames, size) = gif_frames(&gif);
    assert_eq!(frames.len(), 41);
    assert_eq!(size.0, 1000);
    // Every op of the first 40 allocates and splits: each frame differs from the one before.
    for (k, pair) in frames.windows(2).enumerate() {
        assert_ne!(pair[0], pair[1], "frames {k} and {} are the same picture", k + 1);
    }
    // Frame k is the picture of op k: the PNG `--at k` draws, up to the
    // GIF's 256 colours.
    for op in [1u64, 17, 40] {
        let png = dir.path().join(format!("at-{op}.png"));
        heaplab()
            .args(["step", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "--at", &op.to_string(), "-o"])
            .arg(&png)
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("the buddy tree after op {op}")));
        let (pixels, png_size) = png_pixels(&png);
        assert_eq!(png_size, (u32::from(size.0), u32::from(size.1)));
        let frame = &frames[op as usize];
        let far = pixels.iter().zip(frame).filter(|(a, b)| a.abs_diff(**b) > 40).count();
        assert!(far * 200 < pixels.len(), "op {op}: {far} of {} channel values differ", pixels.len());
        let other = &frames[op as usize - 1];
        let far_from_before = pixels.iter().zip(other).filter(|(a, b)| a.abs_diff(**b) > 40).count();
        assert!(far_from_before > far, "op {op}: the frame before is as close as the frame itself");
    }
}

#[test]
fn a_picture_of_one_op_writes_its_words_and_the_free_blocks_of_each_order() {
    let dir = tempfile::tempdir().unwrap();
    let ops = ops_of("fragmenter:live=8K");
    for op in [0usize, 64, 193, 194] {
        let svg = dir.path().join(format!("tree-{op}.svg"));
        heaplab()
            .args(["step", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "--at", &op.to_string(), "-o"])
            .arg(&svg)
            .assert()
            .success();
        let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
        // The words are the page's for that op (its arrows in letters the font has).
        let page = dir.path().join(format!("op-{op}.html"));
        heaplab()
            .args(["step", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "--ops", &format!("{op}..={op}")])
            .arg("-o")
            .arg(&page)
            .assert()
            .success();
        let state = player_state(&page, &format!("op={op}"));
        let words = state["words"].replace('→', "-&gt;");
        assert!(texts.contains(&words), "op {op}: no text `{words}` in {texts:?}");
        // Each order drawn says its free blocks, as a replay by hand counts
        // them; every order holding one is drawn, up to the top.
        let mut buddy = heaplab_buddy::Buddy::<true>::new(Arena::natural(10240).unwrap(), Default::default()).unwrap();
        replay_by_hand(&mut buddy, &ops, op);
        let nr_free = buddy.nr_free();
        let mut shown = Vec::new();
        for pair in texts.windows(2) {
            if let (Some(order), Some(count)) = (pair[0].strip_prefix("order "), pair[1].strip_suffix(" free")) {
                let order: usize = order.split(':').next().unwrap().parse().unwrap();
                assert_eq!(count, nr_free[order].to_string(), "op {op}: free blocks of order {order}");
                shown.push(order);
            }
        }
        assert_eq!(shown.last(), Some(&(nr_free.len() - 1)), "op {op}: the top order is drawn");
        for (order, &count) in nr_free.iter().enumerate() {
            assert!(count == 0 || shown.contains(&order), "op {op}: order {order} has {count} free, not drawn");
        }
    }
    // The arena line of a first fit, as a PNG: a real picture of the size the rows make.
    let png = dir.path().join("FIRST.PNG");
    heaplab()
        .args([
            "step",
            "--alloc",
            "freelist:fit=first",
            "--workload",
            "uniform:ops=400,live=12K,min=16,max=1K,phase=steady",
        ])
        .args(["--arena", "16K", "--at", "200", "-o"])
        .arg(&png)
        .assert()
        .success()
        .stdout(predicate::str::contains("the arena line after op 200"));
    let (pixels, (width, height)) = png_pixels(&png);
    assert_eq!(width, 1000);
    assert!(height > 200 && pixels.len() == (width * height * 3) as usize);
}

#[test]
fn pictures_refuse_what_they_cannot_draw_and_keep_the_file_there() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.png");
    std::fs::write(&kept, "kept").unwrap();
    let refused = |args: &[&str], path: &Path, message: &str| {
        heaplab()
            .args(["step", "--workload", "fragmenter:live=8K"])
            .args(args)
            .arg("-o")
            .arg(path)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message));
    };
    refused(&["--alloc", "buddy"], &kept, "one picture is one op: say which with --at N");
    refused(&["--alloc", "buddy", "--at", "3", "--ops", "0..=5"], &kept, "--ops is for the page and for a GIF");
    refused(&["--alloc", "buddy", "--at", "259"], &kept, "so op 259 does not exist");
    refused(&["--alloc", "peer:glibc", "--at", "3"], &kept, "peer:glibc cannot be drawn as the arena line");
    refused(&["--alloc", "freelist", "--at", "3", "--view", "tree"], &kept, "cannot be drawn as the buddy tree");
    refused(&["--alloc", "buddy", "--at", "3"], &dir.path().join("x.jpeg"), "expected .html (the player page), .svg");
    let page = dir.path().join("page.html");
    refused(&["--alloc", "buddy", "--at", "3"], &page, "the page opens at an op with");
    refused(&["--alloc", "buddy", "--view", "tree"], &page, "the page");
    let gif = dir.path().join("a.gif");
    refused(&["--alloc", "buddy", "--at", "3"], &gif, "a GIF animates --ops");
    heaplab()
        .args(["step", "--alloc", "buddy", "--workload", "ramp:ops=5000", "--ops", "0..=4000", "-o"])
        .arg(&gif)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a GIF of 4,001 frames; at most 3,000"));
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "kept");
    assert!(!gif.exists() && !page.exists());
    // An upper-case extension is the same page.
    let upper = dir.path().join("PAGE.HTML");
    heaplab()
        .args(["step", "--alloc", "buddy", "--workload", "fragmenter:live=8K", "-o"])
        .arg(&upper)
        .assert()
        .success();
    assert!(std::fs::read_to_string(&upper).unwrap().contains("id=\"recording\""));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|name| !name.to_string_lossy().starts_with(".heaplab-")), "temporary files left: {left:?}");
}
