//! `heaplab step`: an op-by-op player of one allocator on one workload, as
//! one self-contained HTML page.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use heaplab::prepare::Prepared;
use heaplab::registry::Visitor;
use heaplab::replay::{Slots, Touch, replay};
use heaplab::step::{DEFAULT_CAP, Recording, StepRecorder};
use heaplab::units;
use heaplab_core::spec::int_bounds;
use heaplab_core::{AllocatorConfig, Arena};

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
    /// is the empty heap. Default: from 0 to the end, at most 20,000 ops.
    #[arg(long, value_name = "RANGE")]
    ops: Option<String>,
    /// The page to write (.html).
    #[arg(short, long, default_value = "step.html")]
    output: PathBuf,
}

/// Write the player page.
pub fn step(args: &StepArgs) -> anyhow::Result<()> {
    let OneReplay { specs, workload, prepared, arena_bytes } = args.replay.prepare(|| {
        let panels = args.replay.allocators.len();
        if panels > MAX_PANELS {
            bail!("--alloc: at most {MAX_PANELS} allocators side by side, found {panels}");
        }
        check_output(&args.output)
    })?;
    let total = prepared.steps.len() as u64;
    let (first, last, capped) = match &args.ops {
        None if total > DEFAULT_CAP => (0, DEFAULT_CAP, Some(DEFAULT_CAP)),
        None => (0, total, None),
        Some(text) => {
            let (first, last) = int_bounds(text).with_context(|| {
                format!(
                    "--ops: expected a range such as 0..=400 (400 included) or 100..200 (200 excluded), found `{text}`"
                )
            })?;
            if last > total {
                bail!(
                    "--ops {text}: the workload has {} ops, so op {last} does not exist (op 0 is the empty heap, op {total} the state after the last op)",
                    units::count(total)
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
        let views: Vec<&str> = [(recording.views.arena, "the arena line"), (recording.views.tree, "the buddy tree")]
            .into_iter()
            .filter_map(|(shown, name)| shown.then_some(name))
            .collect();
        println!(
            "  {}: {}",
            recording.allocator,
            if views.is_empty() { "the words and gauges only".to_string() } else { views.join(" and ") }
        );
        for lacking in &recording.views.lacking {
            println!("    not shown: {lacking}");
        }
    }
    Ok(())
}

/// Refuse an output the page cannot go to before replaying anything.
fn check_output(path: &Path) -> anyhow::Result<()> {
    if path.extension().and_then(|e| e.to_str()) != Some("html") {
        bail!("{}: expected an .html file for the player page", path.display());
    }
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !directory.is_dir() {
        bail!("{}: the directory {} does not exist", path.display(), directory.display());
    }
    if path.is_dir() {
        bail!("{}: is a directory; expected a file name ending in .html", path.display());
    }
    Ok(())
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
    }
    let data = serde_json::to_string(&Data { recordings })?.replace('<', "\\u003c");
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
