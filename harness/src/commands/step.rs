//! `heaplab step`: an op-by-op player of up to four allocators on one
//! workload, as one self-contained HTML page; or one op as a picture, or
//! the ops as a GIF, for slides.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use heaplab::prepare::Prepared;
use heaplab::registry::Visitor;
use heaplab::replay::{Slots, Touch, replay};
use heaplab::step::{DEFAULT_CAP, Keyframe, OpRecord, Recording, StepRecorder, TREE_FREE, TREE_HELD, TREE_TAKEN};
use heaplab::units;
use heaplab_core::spec::int_bounds;
use heaplab_core::{AllocatorConfig, Arena};
use heaplab_reports::charts::{self, ArenaLine, BuddyTree, Leaf, PanelView, StepFrame, StepPanel};

use super::report::{OneReplay, OneReplayArgs};

/// The page: its markup, style and script, with the recording put in.
const PAGE: &str = include_str!("../step/page.html");
const STYLE: &str = include_str!("../step/page.css");
const SCRIPT: &str = include_str!("../step/page.js");

/// The most allocators one page shows side by side.
const MAX_PANELS: usize = 4;

/// The most bytes a page gets unless `--ops` asks for a range.
const PAGE_BUDGET_BYTES: usize = 4_800_000;

/// Arguments of `heaplab step`.
#[derive(Debug, Args)]
pub struct StepArgs {
    #[command(flatten)]
    replay: OneReplayArgs,
    /// The ops to show, as --seeds writes ranges: `0..=400` (400 included),
    /// `100..200` (200 excluded). Op N is the state after the N-th op; op 0
    /// is the empty heap. Default: from 0 to the end, at most 20,000 ops
    /// (a GIF: at most 300).
    #[arg(long, value_name = "RANGE")]
    ops: Option<String>,
    /// For one picture (`-o FILE.svg` or `.png`): the op to draw.
    #[arg(long, value_name = "OP")]
    at: Option<u64>,
    /// What a picture or a GIF draws: the arena line or the buddy tree
    /// (default: the tree when every allocator has one).
    #[arg(long, value_enum)]
    view: Option<View>,
    /// Frames per second of a GIF (one op a frame).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=50))]
    fps: u32,
    /// The output: the player page (.html), one op as a picture (.svg,
    /// .png, with --at) or the ops as an animation (.gif).
    #[arg(short, long, default_value = "step.html")]
    output: PathBuf,
}

/// What a picture draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// The arena as an address line.
    Arena,
    /// The buddy tree.
    Tree,
}

/// What `-o` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Page,
    Svg,
    Png,
    Gif,
}

/// Ops a GIF shows unless `--ops` asks for others.
const GIF_DEFAULT_OPS: u64 = 300;

/// The most frames a GIF gets.
const GIF_MAX_FRAMES: u64 = 3_000;

/// Write the player page, a picture of one op, or a GIF of many.
pub fn step(args: &StepArgs) -> anyhow::Result<()> {
    let mut output = None;
    let OneReplay { specs, workload, prepared, arena_bytes } = args.replay.prepare(|| {
        let panels = args.replay.allocators.len();
        if panels > MAX_PANELS {
            bail!("--alloc: at most {MAX_PANELS} allocators side by side, found {panels}");
        }
        output = Some(check_output(&args.output)?);
        check_options(args, output.expect("just set"))
    })?;
    let output = output.expect("checked before the replay");
    let total = prepared.steps.len() as u64;
    let (first, last, capped) = match (&args.ops, args.at) {
        (_, Some(at)) => {
            if at > total {
                bail!(
                    "--at {at}: the workload has {} ops, so op {at} does not exist (op 0 is the empty heap, op {total} the state after the last op)",
                    units::count(total)
                );
            }
            // From the op before, so that the picture outlines what op `at` changed.
            (at.saturating_sub(1), at, None)
        }
        (None, None) => {
            let cap = if output == Output::Gif { GIF_DEFAULT_OPS } else { DEFAULT_CAP };
            if total > cap { (0, cap, Some(cap)) } else { (0, total, None) }
        }
        (Some(text), None) => {
            let (first, last) = int_bounds(text).with_context(|| {
                let empty = text.split_once("..").is_some_and(|(a, b)| {
                    let (a, b) = (a.trim().parse::<u64>(), b.trim().trim_start_matches('=').trim().parse::<u64>());
                    matches!((a, b), (Ok(a), Ok(b)) if b <= a)
                });
                if empty {
                    format!("--ops {text}: the range holds no op; expected a start below its end, such as 0..=400")
                } else {
                    format!(
                        "--ops: expected a range such as 0..=400 (400 included) or 100..200 (200 excluded), found `{text}`"
                    )
                }
            })?;
            if last > total {
                bail!(
                    "--ops {text}: the workload has {} ops, so op {last} does not exist (op 0 is the empty heap, op {total} the state after the last op)",
                    units::count(total)
                );
            }
            if output == Output::Gif && last - first + 1 > GIF_MAX_FRAMES {
                bail!(
                    "--ops {text}: a GIF of {} frames; at most {}: narrow the range",
                    units::count(last - first + 1),
                    units::count(GIF_MAX_FRAMES)
                );
            }
            (first, last, None)
        }
    };
    let mut recordings = specs
        .iter()
        .map(|spec| {
            spec.visit(Record {
                spec: spec.spec(),
                workload: workload.name(),
                arena_bytes,
                prepared: &prepared,
                first,
                last,
                capped,
            })
        })
        .collect::<anyhow::Result<Vec<Recording>>>()?;
    if output != Output::Page {
        return picture(args, output, &recordings, total);
    }
    let mut page = page(&recordings)?;
    // Unless asked for a range, fewer ops rather than a page past the
    // budget: cut every recording in proportion, and check.
    while args.ops.is_none() && page.len() > PAGE_BUDGET_BYTES && recordings[0].ops.len() > 1 {
        let shown = recordings[0].ops.len() as u64;
        let keep = (shown * PAGE_BUDGET_BYTES as u64 / page.len() as u64) * 98 / 100;
        for recording in &mut recordings {
            recording.truncate(recording.first + keep.max(1) - 1);
        }
        page = self::page(&recordings)?;
    }
    heaplab_results::write_atomic(&args.output, page.as_bytes())
        .with_context(|| format!("writing {}", args.output.display()))?;
    let (last, capped) = (recordings[0].last, recordings[0].capped);
    println!(
        "wrote {} ({}): ops {} to {} of {}{}",
        args.output.display(),
        units::bytes(page.len() as u64),
        units::count(first),
        units::count(last),
        units::count(total),
        if capped.is_some() { " (capped; --ops shows others)" } else { "" },
    );
    for recording in &recordings {
        let slab = recording.tree.as_ref().is_some_and(|tree| !tree.holders.is_empty());
        let views: Vec<&str> = [
            (recording.views.arena, "the arena line"),
            (recording.views.tree, "the buddy tree"),
            (recording.views.lists, "the free lists"),
            (slab, "the slab caches"),
        ]
        .into_iter()
        .filter_map(|(shown, name)| shown.then_some(name))
        .collect();
        println!(
            "  {}: {}",
            recording.allocator,
            if views.is_empty() { "the words and gauges only".to_string() } else { list(&views) }
        );
        for lacking in &recording.views.lacking {
            println!("    not shown: {lacking}");
        }
    }
    Ok(())
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Refuse an output the command cannot write before replaying anything.
fn check_output(path: &Path) -> anyhow::Result<Output> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let output = match extension.as_deref() {
        Some("html" | "htm") => Output::Page,
        Some("svg") => Output::Svg,
        Some("png") => Output::Png,
        Some("gif") => Output::Gif,
        _ => bail!(
            "{}: expected .html (the player page), .svg or .png (one op, with --at) or .gif (an animation of --ops)",
            path.display()
        ),
    };
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !directory.is_dir() {
        bail!("{}: the directory {} does not exist", path.display(), directory.display());
    }
    if path.is_dir() {
        bail!("{}: is a directory; expected a file name", path.display());
    }
    Ok(output)
}

/// The options that go with each output.
fn check_options(args: &StepArgs, output: Output) -> anyhow::Result<()> {
    let name = args.output.display();
    match output {
        Output::Page if args.at.is_some() => {
            bail!("--at draws one op as a picture (-o FILE.svg or .png); the page opens at an op with {name}#op=N")
        }
        Output::Page if args.view.is_some() => {
            bail!("--view chooses what a picture or a GIF draws; the page {name} shows every view")
        }
        Output::Svg | Output::Png if args.at.is_none() => {
            bail!("{name}: one picture is one op: say which with --at N (a GIF, -o FILE.gif, animates --ops)")
        }
        Output::Svg | Output::Png if args.ops.is_some() => {
            bail!("{name}: one picture is one op, --at; --ops is for the page and for a GIF")
        }
        Output::Gif if args.at.is_some() => bail!("{name}: a GIF animates --ops; --at is for one picture (.svg, .png)"),
        _ => Ok(()),
    }
}

/// Draw the recordings: one op, or a GIF of them all.
fn picture(args: &StepArgs, output: Output, recordings: &[Recording], total: u64) -> anyhow::Result<()> {
    let view = match args.view {
        Some(view) => view,
        None if recordings.iter().all(|r| r.views.tree) => View::Tree,
        None => View::Arena,
    };
    for recording in recordings {
        let (shown, what) = match view {
            View::Arena => (recording.views.arena, "the arena line"),
            View::Tree => (recording.views.tree, "the buddy tree"),
        };
        if !shown {
            let why = recording.views.lacking.iter().find(|l| l.starts_with(what));
            bail!(
                "{} cannot be drawn as {what}{}",
                recording.allocator,
                why.map_or(String::new(), |why| format!(": {}", &why[what.len() + 2..]))
            );
        }
    }
    let frames = || {
        let mut states: Vec<_> = recordings.iter().map(|r| r.states()).collect();
        std::iter::from_fn(move || {
            let panels = states
                .iter_mut()
                .zip(recordings)
                .map(|(states, recording)| {
                    let (state, record) = states.next()?;
                    Some(panel(recording, &state, record, view))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(StepFrame { panels })
        })
    };
    let what = match view {
        View::Arena => "the arena line",
        View::Tree => "the buddy tree",
    };
    let (first, last) = (recordings[0].first, recordings[0].last);
    match output {
        Output::Svg | Output::Png => {
            let frame = frames().last().context("the recording holds no op")?;
            write_through_temporary(&args.output, |path| match output {
                Output::Svg => std::fs::write(path, charts::svg(&frame)?).map_err(anyhow::Error::from),
                _ => charts::png(&frame, path).map_err(anyhow::Error::from),
            })?;
            println!("wrote {}: {what} after op {}", args.output.display(), units::count(last));
            for panel in &frame.panels {
                println!("  {}", panel.words);
            }
        }
        Output::Gif => {
            let delay = 1000 / args.fps;
            let mut count = 0;
            write_through_temporary(&args.output, |path| {
                count = charts::write_gif(path, delay, frames())?;
                Ok(())
            })?;
            let size = std::fs::metadata(&args.output).map(|m| m.len()).unwrap_or(0);
            println!(
                "wrote {} ({}): {what}, {} frames, ops {} to {} of {} at {} a second{}",
                args.output.display(),
                units::bytes(size),
                units::count(count as u64),
                units::count(first),
                units::count(last),
                units::count(total),
                args.fps,
                if recordings[0].capped.is_some() { " (capped; --ops shows others)" } else { "" }
            );
        }
        Output::Page => unreachable!("the page is written by step"),
    }
    Ok(())
}

/// Render into a temporary file beside `path`, then put it in place: a
/// failure leaves `path` as it was.
fn write_through_temporary(path: &Path, render: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // The suffix names the format for the bitmap backend.
    let suffix = format!(".{}", path.extension().and_then(|e| e.to_str()).unwrap_or("tmp").to_ascii_lowercase());
    let temporary = tempfile::Builder::new()
        .prefix(".heaplab-")
        .suffix(&suffix)
        .tempfile_in(directory)
        .with_context(|| format!("writing {}", path.display()))?;
    render(temporary.path()).with_context(|| format!("drawing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temporary.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    temporary.persist(path).map_err(|e| e.error).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One allocator's panel at one op.
fn panel(recording: &Recording, state: &Keyframe, record: &OpRecord, view: View) -> StepPanel {
    let requested: u64 = state.live.iter().map(|b| b[1]).sum();
    let granted: u64 = state.live.iter().map(|b| b[2]).sum();
    let free: u64 = state.free.iter().map(|e| e[1]).sum();
    let largest = state.free.iter().map(|e| e[1]).max().unwrap_or(0);
    let pct = |part: f64, whole: u64| {
        if whole == 0 { "n/a".to_string() } else { format!("{:.1}%", 100.0 * part / whole as f64) }
    };
    let internal = if recording.granted { pct((granted - requested) as f64, granted) } else { "not reported".into() };
    let utilization = state.footprint.map_or("not reported".into(), |h| pct(requested as f64, h));
    let gauges = format!(
        "internal (G-R)/G {internal} · external 1-L/F {} · utilization R/H {utilization} · {} free in {} holes, the largest {}",
        pct((free - largest) as f64, free),
        units::bytes(free),
        units::count(state.free.len() as u64),
        units::bytes(largest),
    );
    // Nothing is outlined at the first op shown: the picture starts there.
    let fresh = state.op > recording.first;
    let view = match view {
        View::Arena => {
            let min_block = recording.tree.as_ref().map_or(0, |t| t.min_block);
            let mut changed: Vec<(u64, u64)> = Vec::new();
            if fresh {
                changed.extend(record.free.put.iter().map(|e| (e[0], e[1])));
                changed.extend(record.live.put.iter().map(|e| (e[0], e[1].max(1))));
            }
            PanelView::Arena(ArenaLine {
                arena_bytes: recording.arena_bytes,
                footprint: state.footprint,
                free: state.free.iter().map(|e| (e[0], e[1])).collect(),
                live: state.live.iter().map(|b| (b[0], b[1])).collect(),
                slabs: state.tree.iter().filter(|l| l[2] >= TREE_HELD).map(|l| (l[0], min_block << l[1])).collect(),
                changed,
            })
        }
        View::Tree => {
            let geometry = recording.tree.as_ref().expect("checked: every recording has its tree");
            PanelView::Tree(BuddyTree {
                min_block: geometry.min_block,
                max_order: geometry.max_order,
                lowest_order: geometry.lowest_order,
                managed_bytes: geometry.managed_bytes,
                leaves: state
                    .tree
                    .iter()
                    .map(|l| {
                        let leaf = match l[2] {
                            TREE_FREE => Leaf::Free,
                            TREE_TAKEN => Leaf::Taken,
                            held => Leaf::Held((held - TREE_HELD) as usize),
                        };
                        (l[0], l[1] as u32, leaf)
                    })
                    .collect(),
                holders: geometry.holders.clone(),
                changed: if fresh { record.tree.put.iter().map(|l| (l[0], l[1] as u32)).collect() } else { Vec::new() },
            })
        }
    };
    StepPanel {
        title: format!(
            "{} on {}",
            heaplab::table::short_allocator(&recording.allocator),
            heaplab::table::short_workload(&recording.workload)
        ),
        words: format!("op {}: {}", state.op, record.words),
        gauges,
        view,
    }
}

struct Record<'a> {
    spec: String,
    workload: String,
    arena_bytes: usize,
    prepared: &'a Prepared,
    first: u64,
    last: u64,
    capped: Option<u64>,
}

impl Visitor for Record<'_> {
    type Output = anyhow::Result<Recording>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output {
        let arena = Arena::natural(self.arena_bytes).context("creating the arena")?;
        let mut allocator = config.build(arena)?;
        let steps = &self.prepared.steps[..self.last as usize];
        let mut probe = StepRecorder::new(&allocator, &self.spec, &self.prepared.steps, self.first, self.last);
        let mut slots = Slots::new(self.prepared.slots);
        let Ok(_) = replay(&mut allocator, steps, &mut slots, Touch::None, &mut probe);
        slots.release_all(&mut allocator);
        Ok(probe.finish(self.spec, self.workload, self.arena_bytes as u64, self.capped))
    }
}

/// The page with the recordings in it. The JSON goes inside a `<script>`
/// element, so `<` is escaped (a workload named `</script>` stays text).
fn page(recordings: &[Recording]) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        recordings: &'a [Recording],
        /// The default cap and the page budget, for the page's note.
        cap_ops: u64,
        budget_bytes: usize,
    }
    let data = serde_json::to_string(&Data { recordings, cap_ops: DEFAULT_CAP, budget_bytes: PAGE_BUDGET_BYTES })?
        .replace('<', "\\u003c");
    let allocators: Vec<&str> = recordings.iter().map(|r| r.allocator.as_str()).collect();
    let title = format!("{} on {}", allocators.join(" · "), recordings[0].workload)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    // Our own text first, then what came from outside, the recording last:
    // nothing put in can be taken for a placeholder.
    let title = title.replace('{', "&#123;");
    Ok(PAGE
        .replacen("/*{{style}}*/", STYLE, 1)
        .replacen("/*{{script}}*/", SCRIPT, 1)
        .replace("{{title}}", &title)
        .replacen("{{data}}", &data, 1))
}
