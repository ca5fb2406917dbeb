//! `heaplab report` and `heaplab heapmap`: pictures of results and of heaps.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use heaplab::heapmap::HeapMapRecorder;
use heaplab::metrics::{HEAPMAP_COLUMNS, MetricsProbe};
use heaplab::prepare::prepare;
use heaplab::registry::{self, Visitor};
use heaplab::replay::{Slots, Touch, replay};
use heaplab::run::DEFAULT_ARENA_BYTES;
use heaplab::step::StepRecorder;
use heaplab::{table, units};
use heaplab_core::spec::parse_size;
use heaplab_core::{Allocator, AllocatorConfig, Arena};
use heaplab_reports::{Labels, Options, write_exact_map, write_map_over_time, write_report_with};
use heaplab_results::Results;
use heaplab_workloads::Workload;

/// Arguments of `heaplab report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results directory written by `heaplab run`.
    results: PathBuf,
    /// Where the report goes (default: reports/<run name>).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// The allocator the cross-workload summary divides by (a spec or its
    /// short label; default: the run's first allocator).
    #[arg(long = "baseline-alloc", value_name = "SPEC")]
    baseline_alloc: Option<String>,
}

/// Write the report of a results directory.
pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    super::run::repair_if_killed(&args.results)?;
    let results = Results::read(&args.results)?;
    let name = results.meta.run_name.clone();
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("reports").join(name));
    let labels = Labels { allocator: &table::short_allocator, workload: &table::workload_label };
    let options = Options { baseline: args.baseline_alloc.clone() };
    let written = write_report_with(&results, &out, &labels, &options)?;
    eprintln!(
        "wrote {} and {} with {} chart files",
        written.html.display(),
        written.markdown.display(),
        written.charts.len()
    );
    Ok(())
}

/// One allocator replaying one workload: the arguments `heaplab heapmap`
/// and `heaplab step` share.
#[derive(Debug, Args)]
pub struct OneReplayArgs {
    /// The allocator spec (`heaplab step` takes up to four: repeat it).
    #[arg(long = "alloc", required = true)]
    pub allocators: Vec<String>,
    /// The workload: a synthetic spec or a trace file.
    #[arg(long)]
    workload: String,
    /// Seed for a synthetic workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Arena size (default 64 MiB, or what the workload needs).
    #[arg(long, value_parser = parse_size)]
    arena: Option<usize>,
    /// Alignment for requests that carry none.
    #[arg(long, default_value_t = 16)]
    align: u64,
}

/// What [`OneReplayArgs`] name, checked and prepared.
pub struct OneReplay {
    /// The allocators, in the order given.
    pub specs: Vec<registry::AllocatorSpec>,
    /// The workload.
    pub workload: Workload,
    /// Its ops, ready to replay.
    pub prepared: heaplab::prepare::Prepared,
    /// The arena: as asked, or what the workload needs, or the default.
    pub arena_bytes: usize,
}

impl OneReplayArgs {
    /// Parse the spec, then read or generate the workload (a bad spec is
    /// refused before any trace is read).
    pub fn prepare(&self, check_first: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<OneReplay> {
        let specs =
            self.allocators.iter().map(|spec| registry::AllocatorSpec::parse(spec)).collect::<Result<_, _>>()?;
        if !self.align.is_power_of_two() {
            bail!("--align must be a power of two, found {}", self.align);
        }
        check_first()?;
        let workload = Workload::parse(&self.workload)?;
        let prepared = prepare(workload.ops(self.seed)?, &workload.name(), self.align)?;
        let arena_bytes =
            self.arena.or(workload.suggested_arena().map(|b| b as usize)).unwrap_or(DEFAULT_ARENA_BYTES as usize);
        Ok(OneReplay { specs, workload, prepared, arena_bytes })
    }
}

/// Arguments of `heaplab heapmap`.
#[derive(Debug, Args)]
pub struct HeapMapArgs {
    #[command(flatten)]
    replay: OneReplayArgs,
    /// Draw the heap after this many ops (1 to the trace's length).
    #[arg(long)]
    at: u64,
    /// The map at `--at`, block by block (.svg or .png).
    #[arg(short, long, default_value = "heapmap.svg")]
    output: PathBuf,
    /// Rows the map at `--at` wraps into (more rows, more detail).
    #[arg(long, default_value_t = 16)]
    rows: u64,
    /// Draw only up to the footprint at `--at` (default: the whole arena,
    /// at the same scale for every op, the footprint marked).
    #[arg(long)]
    footprint: bool,
    /// Also draw the map over the whole run, address × time (.svg or .png).
    #[arg(long, value_name = "FILE")]
    over_time: Option<PathBuf>,
}

struct Draw<'a> {
    args: &'a HeapMapArgs,
    arena_bytes: usize,
    prepared: &'a heaplab::prepare::Prepared,
    title: String,
}

impl Visitor for Draw<'_> {
    type Output = anyhow::Result<()>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output {
        let steps = &self.prepared.steps;
        let at = self.args.at as usize;
        let arena = Arena::natural(self.arena_bytes).context("creating the arena")?;
        let mut allocator = config.build(arena)?;
        let reports = allocator.reports();
        if !(reports.in_arena && reports.free_space) {
            anyhow::bail!("{} cannot draw a heap map: it does not report its free space in the arena", config.spec());
        }
        let recorder = HeapMapRecorder::new(self.arena_bytes, steps.len(), 128, Some(at - 1));
        let mut probe = MetricsProbe::with_heapmap(steps.len(), 200, false, Some(recorder));
        let mut slots = Slots::new(self.prepared.slots);
        let outcome = replay(&mut allocator, steps, &mut slots, Touch::None, &mut probe)?;
        let metrics = probe.finish(allocator.stats(), outcome.failed_reallocs, outcome.skipped);
        let map = metrics.heapmap.expect("a recorder was given");
        let (op, extents) = map.exact.clone().expect("the exact frame was scheduled");
        let footprint = map.frames.iter().find(|f| f.op == op).map_or(map.span_bytes, |f| f.footprint_bytes);
        let live = extents.iter().filter(|e| e.state == 'A').count();
        let free: Vec<u64> = extents.iter().filter(|e| e.state == 'F' && e.offset < footprint).map(|e| e.len).collect();
        // What op `at` did, in `heaplab step`'s words, from a replay of
        // its own up to it.
        let words = {
            let mut allocator = config.build(Arena::natural(self.arena_bytes).context("creating the arena")?)?;
            let mut recorder = StepRecorder::new(&allocator, &config.spec(), steps, at as u64, at as u64);
            let mut slots = Slots::new(self.prepared.slots);
            let Ok(_) = replay(&mut allocator, &steps[..at], &mut slots, Touch::None, &mut recorder);
            slots.release_all(&mut allocator);
            let recording = recorder.finish(String::new(), String::new(), 0, None);
            format!("op {op}: {}", recording.ops[0].words)
        };
        let span = if self.args.footprint { footprint } else { self.arena_bytes as u64 };
        write_exact_map(
            &self.args.output,
            self.args.rows,
            &format!("{} after op {op}", self.title),
            span,
            footprint,
            Some(words.clone()),
            extents.iter().map(|e| (e.offset, e.len, e.state)).collect(),
        )?;
        println!("{words}");
        println!(
            "after op {op}: {live} live blocks, {} free blocks below the footprint (largest {}), footprint {}; drawn to {}",
            free.len(),
            units::bytes(free.iter().copied().max().unwrap_or(0)),
            units::bytes(footprint),
            self.args.output.display()
        );
        if let Some(path) = &self.args.over_time {
            let frames = map.frames.iter().map(|f| (f.op, f.states.clone())).collect();
            write_map_over_time(path, &format!("{} over {} ops", self.title, steps.len()), map.span_bytes, frames)?;
            println!("the run, address × time in {HEAPMAP_COLUMNS} columns: {}", path.display());
        }
        Ok(())
    }
}

/// Draw a heap map.
pub fn heapmap(args: &HeapMapArgs) -> anyhow::Result<()> {
    if args.replay.allocators.len() > 1 {
        bail!(
            "heapmap draws one allocator, found --alloc {} times (heaplab step shows up to four side by side)",
            args.replay.allocators.len()
        );
    }
    let OneReplay { mut specs, workload, prepared, arena_bytes } = args.replay.prepare(|| Ok(()))?;
    let spec = specs.remove(0);
    if args.at == 0 || args.at as usize > prepared.steps.len() {
        bail!("--at must be from 1 to {} (the workload's ops), found {}", prepared.steps.len(), args.at);
    }
    let title = format!("{} on {}", table::short_allocator(&spec.spec()), table::short_workload(&workload.name()));
    spec.visit(Draw { args, arena_bytes, prepared: &prepared, title })
}
