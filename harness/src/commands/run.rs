//! `heaplab run`: put allocators side by side on workloads.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use heaplab::registry::{self, AllocatorSpec};
use heaplab::replay::Touch;
use heaplab::results::{Meta, ResultsDir, RunSettings, SCHEMA_VERSION, TimerInfo};
use heaplab::run::{self, Progress};
use heaplab::table;
use heaplab::timing::{CLOCK_NAME, Calibration};
use heaplab_core::spec::parse_size;
use heaplab_workloads::Workload;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Arguments of `heaplab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Allocator spec or pattern (`freelist:*`), repeatable. Default: a
    /// representative configuration of every family.
    #[arg(long = "alloc", value_name = "SPEC|PATTERN")]
    allocators: Vec<String>,

    /// Workload: a synthetic spec (`ramp`, `lognormal:median=64`) or a trace
    /// file, repeatable. Default: every preset.
    #[arg(long = "workload", value_name = "NAME|FILE")]
    workloads: Vec<String>,

    /// Seeds for synthetic workloads: `1`, `1,2,3` or `1..=5`.
    #[arg(long, default_value = "1", value_parser = parse_seeds)]
    seeds: Seeds,

    /// Timed repetitions of each replay (after the warm-up).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,

    /// Untimed warm-up replays before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: u64,

    /// Arena size (e.g. 64M); default 64 MiB, or what a workload needs.
    #[arg(long, value_name = "SIZE", value_parser = parse_arena)]
    arena: Option<u64>,

    /// Alignment for requests that carry none (recorded traces), bytes.
    #[arg(long, default_value_t = 16, value_parser = parse_align)]
    align: u64,

    /// Write into every block returned: nothing, the first byte, or every cache line.
    #[arg(long, value_enum, default_value_t = TouchArg::None)]
    touch: TouchArg,

    /// Skip the per-op latency pass.
    #[arg(long)]
    no_latency: bool,

    /// Only the deterministic metrics pass: no timing at all.
    #[arg(long)]
    metrics_only: bool,

    /// Run the allocator's check() after every op of the metrics pass (slow).
    #[arg(long)]
    verify: bool,

    /// Fewer repetitions (3) and, for the default workloads, 20,000 ops.
    #[arg(long)]
    quick: bool,

    /// Time-series samples per (allocator, workload, seed).
    #[arg(long, default_value_t = 200)]
    points: usize,

    /// Heap-map frames recorded per (allocator, workload, seed), for the
    /// report's address × time pictures (0: none).
    #[arg(long, default_value_t = 64)]
    frames: usize,

    /// Timed cells to run at once (they disturb each other; 1 is the honest default).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    jobs: u64,

    /// Where runs go: OUT/NAME/.
    #[arg(long, default_value = "results")]
    out: PathBuf,

    /// The run's name (default: run-DATE-TIME).
    #[arg(long)]
    name: Option<String>,

    /// Repeat a run exactly: its settings from a meta.json (other options that
    /// change what is measured are refused).
    #[arg(long, value_name = "META_JSON", conflicts_with_all = ["allocators", "workloads", "seeds", "reps", "warmup", "arena", "align", "touch", "no_latency", "metrics_only", "verify", "quick", "points", "frames", "jobs"])]
    from: Option<PathBuf>,

    /// Do not print the summary table.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TouchArg {
    None,
    First,
    Lines,
}

#[derive(Debug, Clone)]
struct Seeds(Vec<u64>);

fn parse_seeds(text: &str) -> Result<Seeds, String> {
    let expected = || format!("expected seeds such as 1, 1,2,3 or 1..=5, found `{text}`");
    let mut seeds = Vec::new();
    for part in text.split(',') {
        if let Some((start, end)) = part.split_once("..=") {
            let (start, end): (u64, u64) =
                (start.parse().map_err(|_| expected())?, end.parse().map_err(|_| expected())?);
            if start > end || end - start > 10_000 {
                return Err(expected());
            }
            seeds.extend(start..=end);
        } else {
            seeds.push(part.trim().parse().map_err(|_| expected())?);
        }
    }
    seeds.dedup();
    Ok(Seeds(seeds))
}

fn parse_arena(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if bytes < 4096 {
        return Err(format!("an arena of {bytes} bytes is too small to run anything (at least 4K)"));
    }
    Ok(bytes as u64)
}

fn parse_align(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(align) if align.is_power_of_two() && align <= 4096 => Ok(align),
        _ => Err(format!("expected a power of two from 1 to 4096, found `{text}`")),
    }
}

/// The run's settings from the arguments (or the meta.json they point to).
fn settings(args: &RunArgs) -> anyhow::Result<RunSettings> {
    if let Some(path) = &args.from {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let meta: Meta = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}:{}: expected a heaplab meta.json: {e}", path.display(), e.line()))?;
        if meta.schema_version != SCHEMA_VERSION {
            bail!(
                "{}: results schema {} cannot be repeated by this heaplab (schema {SCHEMA_VERSION})",
                path.display(),
                meta.schema_version
            );
        }
        return Ok(meta.settings);
    }
    let mut allocators = Vec::new();
    let selections: Vec<String> = if args.allocators.is_empty() {
        run::default_allocators().into_iter().map(String::from).collect()
    } else {
        args.allocators.clone()
    };
    for selection in &selections {
        for spec in registry::select(selection)? {
            let spec = spec.spec();
            if !allocators.contains(&spec) {
                allocators.push(spec);
            }
        }
    }
    let workloads = if args.workloads.is_empty() {
        run::default_workloads(args.quick.then_some(20_000))
    } else {
        args.workloads.clone()
    };
    let (reps, warmup, points) =
        if args.quick { (3, 1, 100) } else { (args.reps as usize, args.warmup as usize, args.points) };
    Ok(RunSettings {
        allocators,
        workloads,
        seeds: args.seeds.0.clone(),
        reps,
        warmup,
        arena_bytes: args.arena,
        align: args.align,
        touch: match args.touch {
            TouchArg::None => Touch::None,
            TouchArg::First => Touch::First,
            TouchArg::Lines => Touch::Lines,
        },
        latency: !args.no_latency && !args.metrics_only,
        metrics_only: args.metrics_only,
        verify: args.verify,
        points: points.max(1),
        frames: args.frames,
        jobs: args.jobs as usize,
    })
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn update(&self, done: usize, total: usize, what: &str) {
        self.0.set_length(total as u64);
        self.0.set_position(done as u64);
        self.0.set_message(what.to_string());
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn default_name(now: SystemTime) -> String {
    // 2026-11-27T00:31:02Z → run-20261127-003102
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
    format!("run-{}-{}", &digits[..8], &digits[8..14])
}

/// Run the matrix and write the results.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let now = SystemTime::now();
    let settings = settings(args)?;
    let allocators: Vec<AllocatorSpec> =
        settings.allocators.iter().map(|s| AllocatorSpec::parse(s)).collect::<Result<_, _>>()?;
    let workloads: Vec<Workload> = settings.workloads.iter().map(|w| Workload::parse(w)).collect::<Result<_, _>>()?;
    if settings.seeds.is_empty() {
        bail!("give at least one seed");
    }
    let terminal = io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        None,
        if terminal { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} ETA {eta} {wide_msg}")
            .expect("a valid template"),
    );
    bar.set_message("preparing workloads");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));

    let prepared = run::prepare_workloads(&workloads, &settings.seeds, settings.align)?;
    let cells = run::cells(&allocators, &prepared, settings.arena_bytes);
    let calibration = settings.latency.then(Calibration::measure);
    let name = args.name.clone().unwrap_or_else(|| default_name(now));
    let mut meta = Meta {
        schema_version: SCHEMA_VERSION,
        heaplab_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: env!("HEAPLAB_GIT_REVISION").to_string(),
        rustc: env!("HEAPLAB_RUSTC").to_string(),
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        date_utc: humantime::format_rfc3339_seconds(now).to_string(),
        command_line: std::env::args().collect(),
        run_name: name.clone(),
        settings: settings.clone(),
        timer: calibration.map(|c| TimerInfo {
            clock: CLOCK_NAME.to_string(),
            ns_per_tick: c.ns_per_tick,
            overhead_ns: c.overhead_ns(),
        }),
        status: "running".to_string(),
        cells_total: cells.len(),
        cells_finished: 0,
        elapsed_seconds: 0.0,
    };
    let dir = args.out.join(&name);
    let mut results = ResultsDir::create(&dir, &meta).with_context(|| format!("creating {}", dir.display()))?;

    let stop = run::interrupt_flag();
    {
        let stop = stop.clone();
        // A second Ctrl-C kills as usual: the handler only asks once.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    let progress = Bar(bar.clone());
    let finished = run::run_cells(&cells, &prepared, &settings, calibration, &stop, &progress, &mut |cell| {
        results.add(&cell)?;
        meta.cells_finished += 1;
        meta.elapsed_seconds = started.elapsed().as_secs_f64();
        results.write_meta(&meta)?;
        Ok(())
    })?;
    bar.finish_and_clear();
    let interrupted = stop.load(Ordering::SeqCst);
    meta.status = if interrupted { "interrupted" } else { "complete" }.to_string();
    meta.cells_finished = finished;
    meta.elapsed_seconds = started.elapsed().as_secs_f64();
    results.write_meta(&meta)?;
    if !args.quiet {
        print!("{}", table::render(results.summary()));
    }
    report_location(results.dir(), finished, cells.len(), meta.elapsed_seconds, calibration);
    if interrupted {
        std::process::exit(130);
    }
    Ok(())
}

fn report_location(dir: &Path, finished: usize, total: usize, seconds: f64, calibration: Option<Calibration>) {
    if let Some(calibration) = calibration {
        eprintln!(
            "timer: {CLOCK_NAME}, {:.1} ns per read pair subtracted from every sample",
            calibration.overhead_ns()
        );
    }
    let state = if finished < total {
        format!("interrupted after {finished} of {total} cells")
    } else {
        format!("{total} cells")
    };
    eprintln!("{state} in {seconds:.1} s; results in {}", dir.display());
}
