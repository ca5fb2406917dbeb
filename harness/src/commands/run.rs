//! `heaplab run`: the command line of the run pipeline ([`heaplab::run`]):
//! its options, the settings they make (or `--from` reads), the executor
//! they choose, and what is printed.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use heaplab::publish::Format;
use heaplab::run::journal::{self, Records};
use heaplab::run::shard::{self, ShardArg};
use heaplab::run::{
    self, Done, Executor, InProcess, Interleaved, Journal, JournalError, Outcome, Progress, RunContext, RunPlan,
    Spawning, TakingTurns,
};
use heaplab::table;
use heaplab::timing::{CLOCK_NAME, Calibration};
use heaplab::{inputs, registry};
use heaplab_core::spec::{self, parse_size};
use heaplab_results::{
    BuildFacts, Meta, ResultsDir, Resumed, RunSettings, RunStatus, SCHEMA_VERSION, SETTINGS_VERSION, SummaryRow,
    TimerInfo, Touch,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Arguments of `heaplab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// What is measured: everything `--from` takes from a meta.json instead.
    #[command(flatten)]
    measure: MeasureArgs,

    /// Where runs go: OUT/NAME/.
    #[arg(long, default_value = "results")]
    out: PathBuf,

    /// The run's name (default: run-DATE-TIME).
    #[arg(long)]
    name: Option<String>,

    /// Also export the summary once the run completes, in the format the
    /// file's extension names: .json, .csv, .md or .tex (as `heaplab
    /// export` writes them). Repeatable.
    #[arg(long, value_name = "FILE", value_parser = export_target)]
    export: Vec<(PathBuf, Format)>,

    /// Repeat a run exactly: its settings from a meta.json (other options that
    /// change what is measured are refused).
    #[arg(long, value_name = "META_JSON", conflicts_with = MEASURE)]
    from: Option<PathBuf>,

    /// Go on with the interrupted, killed or failed run OUT/NAME: run only
    /// what its journal does not hold, then write its files again. Needs the
    /// heaplab build that started it.
    #[arg(long, value_name = "NAME", conflicts_with_all = [MEASURE, "from", "name", "against", "take_turns"])]
    resume: Option<String>,

    /// Time this build against another heaplab executable (say, the main
    /// branch's build), taking turns: the other build's timing processes
    /// alternate with this one's (ABBA), so that both see the same machine
    /// and a neighbour's slow spell cannot pass for a regression. Writes
    /// OUT/NAME/ (this build) and OUT/NAME-base/ (the other); then run
    /// `heaplab compare OUT/NAME-base OUT/NAME`.
    #[arg(long, value_name = "HEAPLAB_EXE", conflicts_with = "metrics_only")]
    against: Option<PathBuf>,

    /// Internal (the other side of --against): before each timed step,
    /// write `ready` on stdout and wait for `go` on stdin.
    #[arg(long, hide = true)]
    take_turns: bool,

    /// Do not print the summary table.
    #[arg(long)]
    quiet: bool,

    /// Print the matrix the options expand to (allocators, workloads, seeds,
    /// cells, and the shard of each group with --shard) and stop.
    #[arg(long)]
    plan: bool,

    /// Refuse a run of more cells than this (a sweep that expanded further
    /// than meant).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_cells: usize,
}

/// The group of every option that changes what a run measures.
const MEASURE: &str = "MeasureArgs";

/// The options that become the run's [`RunSettings`]; a setting added to
/// the run is an option here, and so conflicts with `--from` by itself.
#[derive(Debug, Args)]
#[group(id = MEASURE, multiple = true)]
struct MeasureArgs {
    /// Allocator spec, pattern (`freelist:*`) or sweep (`buddy:min=16|64`,
    /// `segregated:kind=tlsf,sl=1..=5`: every combination; a sweep expands
    /// first, and what it gives may be a pattern), repeatable. Default: a
    /// representative configuration of every family.
    #[arg(long = "alloc", value_name = "SPEC|PATTERN")]
    allocators: Vec<String>,

    /// Read `.rep` allocs and reallocs without a size as mdriver does: with
    /// the previous op's size (counted in meta.json, repeated by --from).
    #[arg(long)]
    lenient: bool,

    /// Workload: a synthetic spec (`ramp`, `lognormal:median=64`), a sweep
    /// of one (`ramp:live=1M|8M|64M`) or a trace file, repeatable. Default:
    /// the default suite's presets and bundled traces.
    #[arg(long = "workload", value_name = "NAME|FILE")]
    workloads: Vec<String>,

    /// Seeds for synthetic workloads: `1`, `1,2,3`, `1..=5` (5 included) or
    /// `1..5` (5 excluded); at most 10,001.
    #[arg(long, default_value = "1", value_parser = parse_seeds)]
    seeds: Seeds,

    /// Thread counts to run every cell on: `1,2,4`, `1..=8`. Each thread
    /// replays its own ops on a shared allocator at once (the allocators
    /// must be thread-safe: a layer such as `locked/SPEC` or `cached/SPEC`,
    /// or `peer:glibc`, `peer:mimalloc`, `peer:jemalloc`); the metrics pass
    /// replays one order of the threads' ops on one thread (a seeded
    /// interleaving, or a recorded trace's own).
    /// Multithreaded workloads (larson-mt, threadtest, xmalloc,
    /// cache-scratch, cache-thrash) take their threads from it; a trace
    /// recorded on T threads runs on them at T (on one: its recorded order;
    /// at a multiple of T: copies); any other workload runs as one copy per
    /// thread. Without it: one thread.
    #[arg(long, value_name = "N,…", value_parser = parse_threads)]
    threads: Option<Threads>,

    /// Timed repetitions of each replay (after the warm-up).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,

    /// Untimed warm-up replays before the timed ones (in each timing process).
    #[arg(long, default_value_t = 1)]
    warmup: u64,

    /// Timing processes to spread the repetitions over (at most one per
    /// repetition). Each is a fresh process with its own memory placement,
    /// so that differences between processes land in each cell's spread,
    /// where `heaplab compare` sees them; 1 times in this process.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    processes: u64,

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

    /// Time-series samples per (allocator, workload, seed), 1 to 100,000.
    #[arg(long, default_value_t = 200, value_parser = bounded::<1, 100_000>)]
    points: usize,

    /// Heap-map frames recorded per (allocator, workload, seed), for the
    /// report's address × time pictures (0: none; at most 10,000).
    #[arg(long, default_value_t = 64, value_parser = bounded::<0, 10_000>)]
    frames: usize,

    /// Timed cells to run at once (they disturb each other; 1 is the honest default).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    jobs: u64,

    /// Run one shard of the run: K/N (from 1), or auto/N to take K from a
    /// Slurm job array (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX). Every allocator of a (workload, seed) group
    /// lands in the same shard; `heaplab merge` joins the shards.
    #[arg(long, value_name = "K/N|auto/N", value_parser = shard::parse_shard)]
    shard: Option<ShardArg>,
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
    let expected = || {
        format!(
            "expected seeds such as 1, 1,2,3, 1..=5 (5 included) or 1..5 (5 excluded), at most {MAX_SEEDS}, found `{text}`"
        )
    };
    let mut seeds = Vec::new();
    for part in text.split(',') {
        seeds.extend(spec::int_range(part).ok_or_else(expected)?);
        if seeds.len() > MAX_SEEDS {
            return Err(expected());
        }
    }
    seeds.dedup();
    Ok(Seeds(seeds))
}

#[derive(Debug, Clone)]
struct Threads(Vec<u32>);

fn parse_threads(text: &str) -> Result<Threads, String> {
    let max = heaplab_core::concurrent::MAX_THREADS as u64;
    let expected = || format!("expected thread counts such as 1,2,4 or 1..=8, each from 1 to {max}, found `{text}`");
    let mut threads: Vec<u32> = Vec::new();
    for part in text.split(',') {
        for count in spec::int_range(part).ok_or_else(expected)? {
            if !(1..=max).contains(&count) || threads.len() >= 64 {
                return Err(expected());
            }
            if !threads.contains(&(count as u32)) {
                threads.push(count as u32);
            }
        }
    }
    Ok(Threads(threads))
}

/// The most seeds a run takes.
const MAX_SEEDS: usize = 10_001;

/// A count from `MIN` to `MAX`: memory grows with it, so it has a cap.
fn bounded<const MIN: usize, const MAX: usize>(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(value) if (MIN..=MAX).contains(&value) => Ok(value),
        _ => Err(format!("expected a whole number from {MIN} to {MAX}, found `{text}`")),
    }
}

/// An arena size of at least 4 KiB.
pub fn parse_arena(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text).map_err(|e| e.to_string())?;
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
    match &args.from {
        Some(path) => repeated(path),
        None => measured(&args.measure),
    }
}

/// The settings of the run `meta.json` at `path` describes, its traces
/// found as given or beside the meta.json, each checked against the digest
/// the run recorded: a trace that changed since is refused.
fn repeated(path: &Path) -> anyhow::Result<RunSettings> {
    let meta = Meta::read_settings(path)?;
    if meta.settings.exec.is_some() {
        bail!(
            "{}: these are results of heaplab exec, which `run --from` does not repeat; repeat them with their command line: {}",
            path.display(),
            meta.command_line.join(" ")
        );
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut settings = meta.settings;
    for workload in &mut settings.workloads {
        let resolved = inputs::resolve(workload, dir);
        if let Some(recorded) = meta.inputs.iter().find(|input| input.workload == *workload) {
            let parsed = heaplab_workloads::Workload::parse(&resolved)?;
            let now = inputs::digest(&parsed).with_context(|| format!("reading {resolved}"))?;
            if now.as_deref() != Some(recorded.sha256.as_str()) {
                bail!(
                    "{}: the workload `{workload}` ({resolved}) is not the one the run read: its SHA-256 was {} and is now {}; \
                     repeating the run would measure something else",
                    path.display(),
                    recorded.sha256,
                    now.as_deref().unwrap_or("none")
                );
            }
        }
        *workload = resolved;
    }
    Ok(settings)
}

/// The settings the measurement options say.
fn measured(args: &MeasureArgs) -> anyhow::Result<RunSettings> {
    let mut allocators = Vec::new();
    let selections: Vec<String> = if args.allocators.is_empty() {
        run::default_allocators().into_iter().map(String::from).collect()
    } else {
        args.allocators.clone()
    };
    for selection in &selections {
        for expanded in spec::expand(selection)? {
            for spec in registry::select(&expanded)? {
                let spec = spec.spec();
                if !allocators.contains(&spec) {
                    allocators.push(spec);
                }
            }
        }
    }
    let workloads = if args.workloads.is_empty() {
        run::default_workloads(args.quick.then_some(20_000))
    } else {
        let mut workloads = Vec::new();
        for workload in &args.workloads {
            for expanded in spec::expand(workload)? {
                if !workloads.contains(&expanded) {
                    workloads.push(expanded);
                }
            }
        }
        workloads
    };
    let (reps, warmup, points) =
        if args.quick { (3, 1, 100) } else { (args.reps as usize, args.warmup as usize, args.points) };
    Ok(RunSettings {
        settings_version: SETTINGS_VERSION,
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
        processes: args.processes as usize,
        shard: match args.shard {
            Some(arg) => Some(shard::resolve(arg, |name| std::env::var(name).ok()).map_err(anyhow::Error::msg)?),
            None => None,
        },
        threads: args.threads.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
        lenient: args.lenient,
        exec: None,
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

/// The CPU's model name, for `meta.json`.
pub fn cpu_model() -> String {
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

/// This machine's name, for `meta.json` (and a merged run's rows).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The `meta.json` of a run starting `now`: this build and machine, the
/// command line, `settings`, and nothing done yet.
pub fn new_meta(name: String, settings: RunSettings, now: SystemTime, cells_total: usize) -> Meta {
    Meta {
        schema_version: SCHEMA_VERSION,
        heaplab_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: env!("HEAPLAB_GIT_REVISION").to_string(),
        rustc: env!("HEAPLAB_RUSTC").to_string(),
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        hostname: hostname(),
        date_utc: humantime::format_rfc3339_seconds(now).to_string(),
        command_line: std::env::args().collect(),
        run_name: name,
        settings,
        timer: None,
        status: RunStatus::Running,
        cells_total,
        cells_finished: 0,
        reps_total: 0,
        reps_finished: 0,
        latency_total: 0,
        latency_finished: 0,
        elapsed_seconds: 0.0,
        resumed: Vec::new(),
        merged: Vec::new(),
        inputs: Vec::new(),
        system: inputs::system_facts(),
        build: BuildFacts {
            cargo_lock_sha256: env!("HEAPLAB_CARGO_LOCK_SHA256").to_string(),
            dirty: env!("HEAPLAB_DIRTY") == "true",
        },
    }
}

/// `run-YYYYMMDD-HHMMSS`, the name of a run not given one.
pub fn default_name(now: SystemTime) -> String {
    // 2026-11-27T00:31:02Z → run-20261127-003102
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
    format!("run-{}-{}", &digits[..8], &digits[8..14])
}

/// How `heaplab run` ended, for its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every cell finished.
    Complete,
    /// Ctrl-C: the cells finished stand.
    Interrupted,
}

/// Run the matrix and write the results.
pub fn run(args: &RunArgs) -> anyhow::Result<Ended> {
    let started = Instant::now();
    let now = SystemTime::now();
    let resumed = match &args.resume {
        Some(name) => match resumable(&args.out.join(name))? {
            Some(resumed) => Some(resumed),
            None => return Ok(Ended::Complete),
        },
        None => None,
    };
    let settings = match &resumed {
        Some((meta, ..)) => meta.settings.clone(),
        None => settings(args)?,
    };
    if let Some(exe) = &args.against {
        if settings.metrics_only {
            bail!("--against compares timings, and a metrics-only run has none");
        }
        check_heaplab(exe)?;
    }
    let plan = RunPlan::new(settings)?;
    let groups = plan.groups(plan.settings.shard.map_or(1, |s| s.count));
    let cells = plan.allocators.len() * groups.len();
    if args.plan {
        print_plan(&plan, &groups);
        return Ok(Ended::Complete);
    }
    if cells > args.max_cells && args.resume.is_none() {
        bail!(
            "this run has {cells} cells ({} allocators × {} (workload, seed) groups), more than --max-cells {}; \
             check the sweep with --plan, or raise --max-cells",
            plan.allocators.len(),
            groups.len(),
            args.max_cells
        );
    }
    let terminal = io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        None,
        if terminal && !args.take_turns { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        // Short enough that an 80-column terminal keeps 40 columns for the
        // cell's name (`wide_msg` takes what is left, and cuts only there).
        ProgressStyle::with_template("[{elapsed}] {bar:16} {pos}/{len} {eta} left  {wide_msg}")
            .expect("a valid template"),
    );
    bar.set_message("preparing workloads");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));

    let plan_groups = groups.len();
    let input_workloads = plan.workloads.clone();
    let matrix = plan.prepare()?;
    if args.resume.is_none() {
        matrix.check_builds()?;
    }
    let settings = &matrix.settings;
    let calibration = settings.latency.then(Calibration::measure);
    let timer = calibration.map(|c| TimerInfo {
        clock: CLOCK_NAME.to_string(),
        ns_per_tick: c.ns_per_tick,
        overhead_ns: c.overhead_ns(),
        granularity_ticks: c.granularity_ticks,
        granularity_ns: c.granularity_ns(),
    });
    let (mut meta, results, journal, mut done) = match resumed {
        Some((mut meta, journal, records)) => {
            let done = Done::from_records(journal.path(), records, matrix.cells.len(), Some(&matrix))?;
            eprintln!(
                "resuming {}: its journal holds {}",
                journal.path().parent().unwrap_or(Path::new(".")).display(),
                Outcome::of(&done, settings, false).counts()
            );
            meta.resumed.push(Resumed {
                date_utc: humantime::format_rfc3339_seconds(now).to_string(),
                command_line: std::env::args().collect(),
            });
            meta.timer = meta.timer.or(timer);
            let results = ResultsDir::open(&args.out.join(args.resume.as_deref().unwrap_or_default()));
            (meta, results, journal, done)
        }
        None => {
            let name = args.name.clone().unwrap_or_else(|| match settings.shard {
                Some(shard) => format!("{}-shard-{}-of-{}", default_name(now), shard.index, shard.count),
                None => default_name(now),
            });
            let mut meta = new_meta(name.clone(), settings.clone(), now, matrix.cells.len());
            meta.timer = timer;
            let (inputs, notes) = inputs::digests(&input_workloads, &settings.workloads)
                .context("reading the traces for their digests")?;
            for note in notes {
                bar.suspend(|| eprintln!("note: {note}"));
            }
            meta.inputs = inputs;
            let dir = args.out.join(&name);
            let other_dir = args.out.join(format!("{name}-base"));
            if args.against.is_some()
                && (other_dir.join("summary.csv").exists() || other_dir.join("meta.json").exists())
            {
                bail!("{} already holds results; choose another --name or remove it", other_dir.display());
            }
            let results = ResultsDir::create(&dir, &meta).with_context(|| format!("creating {}", dir.display()))?;
            let journal = Journal::create(&dir)?;
            (meta, results, journal, Done::new(matrix.cells.len()))
        }
    };
    let name = args.resume.clone().unwrap_or_else(|| meta.run_name.clone());
    let earlier_seconds = meta.elapsed_seconds;
    meta.status = RunStatus::Running;
    results.write_meta(&meta)?;

    let stop = run::interrupt_flag();
    stop_on_ctrl_c(&stop);
    let mut in_process = InProcess { matrix: &matrix, stop: &stop };
    let mut spawning = Spawning::heaplab(&stop);
    let inner: &mut dyn Executor = if settings.processes > 1 { &mut spawning } else { &mut in_process };
    let mut turns = None;
    let mut interleaved = None;
    let executor: &mut dyn Executor = if args.take_turns {
        turns.insert(TakingTurns::new(inner, &stop, io::stdin().lock(), io::stdout()))
    } else if let Some(exe) = &args.against {
        let other = format!("{name}-base");
        let meta_path = results.dir().join("meta.json");
        interleaved.insert(Interleaved::spawn(exe, &meta_path, &other, &args.out, inner, &stop)?)
    } else {
        inner
    };
    let context =
        RunContext { matrix: &matrix, calibration, stop: &stop, progress: &Bar(bar.clone()), journal: Some(&journal) };
    let outcome = context.run(executor, &mut done);
    bar.finish_and_clear();
    // Whatever happened, the files hold what finished.
    let interrupted = stop.load(Ordering::SeqCst);
    let counted = Outcome::of(&done, settings, interrupted);
    meta.status = match &outcome {
        Err(_) => RunStatus::Failed,
        Ok(outcome) if outcome.complete() => RunStatus::Complete,
        Ok(_) => RunStatus::Interrupted,
    };
    meta.elapsed_seconds = earlier_seconds + started.elapsed().as_secs_f64();
    write_results(&results, &mut meta, &counted, &done, journal.path())?;
    if outcome.is_err() {
        eprintln!(
            "note: what finished is in {} (marked failed); go on with it with heaplab run --resume {name} --out {}, \
             or remove the directory to use the name again",
            results.dir().display(),
            args.out.display()
        );
    }
    if meta.status == RunStatus::Complete {
        // The files hold everything now; the journal would only double them.
        std::fs::remove_file(journal.path()).with_context(|| {
            format!("removing {}, which the finished run no longer needs", journal.path().display())
        })?;
    }
    let outcome = outcome?;
    if let Some(other) = interleaved {
        other.finish(interrupted)?;
    }
    if !args.quiet {
        let summary: Vec<SummaryRow> = done.results().iter().map(|cell| cell.summary()).collect();
        // Colour only where it shows: anstream strips it off a pipe, a
        // file, or under NO_COLOR.
        anstream::print!("{}", table::render_within(&summary, table::output_width(), true));
    }
    if let Some(calibration) = calibration {
        eprint!(
            "{}",
            table::wrap_words(
                &format!(
                    "timer: {CLOCK_NAME}, {:.1} ns per read pair subtracted from every sample; it moves in steps of \
                     {:.1} ns ({} ticks), and a latency within 3x of that is marked ~.",
                    calibration.overhead_ns(),
                    calibration.granularity_ns(),
                    calibration.granularity_ticks
                ),
                table::output_width().min(100)
            )
        );
    }
    let dir = results.dir();
    if meta.status == RunStatus::Complete {
        for (path, format) in &args.export {
            super::export::write(dir, *format, None, false, Some(path))?;
            eprintln!("exported the summary to {}", path.display());
        }
    }
    if let (Some(shard), true) = (settings.shard, matrix.cells.is_empty()) {
        eprintln!(
            "shard {shard} holds no cells (the run has {} (workload, seed) groups for {} shards); results in {}",
            plan_groups,
            shard.count,
            dir.display()
        );
    } else if meta.status == RunStatus::Complete {
        eprintln!("{} cells in {:.1} s; results in {}", matrix.cells.len(), meta.elapsed_seconds, dir.display());
    } else {
        eprintln!(
            "interrupted after {:.1} s: {}; results so far in {}\nto complete it: heaplab run --resume {name} --out {}",
            meta.elapsed_seconds,
            outcome.counts(),
            dir.display(),
            args.out.display()
        );
    }
    if args.against.is_some() {
        let other_dir = args.out.join(format!("{name}-base"));
        eprintln!(
            "the other build's results, timed in turns with these: {}\ncompare them: heaplab compare {} {}",
            other_dir.display(),
            other_dir.display(),
            dir.display()
        );
    }
    Ok(if meta.status == RunStatus::Complete { Ended::Complete } else { Ended::Interrupted })
}

/// A `--export` file and the format its extension names.
fn export_target(text: &str) -> Result<(PathBuf, Format), String> {
    let path = PathBuf::from(text);
    let format = Format::from_path(&path)
        .ok_or_else(|| format!("cannot tell the format from `{text}`: end it in .json, .csv, .md or .tex"))?;
    Ok((path, format))
}

/// `--plan`: the matrix, without running it.
fn print_plan(plan: &RunPlan, groups: &[((String, Option<u64>), usize)]) {
    let settings = &plan.settings;
    println!("{} allocators:", settings.allocators.len());
    for allocator in &settings.allocators {
        println!("  {allocator}");
    }
    println!("{} workloads, seeds {:?}:", settings.workloads.len(), settings.seeds);
    for workload in &plan.workloads {
        println!("  {}", workload.name());
    }
    let mine = |shard: usize| settings.shard.is_none_or(|s| s.index == shard);
    let kept = groups.iter().filter(|(_, shard)| mine(*shard)).count();
    match settings.shard {
        Some(shard) => {
            println!("{} (workload, seed) groups, {kept} of them in shard {shard}:", groups.len());
            for ((workload, seed), index) in groups {
                let seed = seed.map_or("-".to_string(), |s| s.to_string());
                println!("  shard {index}/{}  seed {seed:>5}  {workload}", shard.count);
            }
        }
        None => println!("{} (workload, seed) groups", groups.len()),
    }
    let threads = plan.thread_counts();
    if !settings.threads.is_empty() {
        println!("threads {threads:?}: every group on each");
    }
    println!(
        "{} cells",
        kept * settings.allocators.len() * if settings.threads.is_empty() { 1 } else { threads.len() }
    );
}

/// Write the CSV files of `done`, then `meta.json` with the counts of
/// `outcome`.
fn write_results(
    results: &ResultsDir,
    meta: &mut Meta,
    outcome: &Outcome,
    done: &Done,
    journal: &Path,
) -> anyhow::Result<()> {
    done.write(results, Some(journal)).with_context(|| format!("writing results in {}", results.dir().display()))?;
    (meta.cells_finished, meta.reps_finished, meta.latency_finished) =
        (outcome.metrics.0, outcome.reps.0, outcome.latency.0);
    (meta.reps_total, meta.latency_total) = (outcome.reps.1, outcome.latency.1);
    results.write_meta(meta).with_context(|| format!("writing {}", results.dir().join("meta.json").display()))
}

/// The run in `dir`, ready to go on with: its meta.json, its journal
/// (locked) and the records it holds; `None` when it is already complete.
fn resumable(dir: &Path) -> anyhow::Result<Option<(Meta, Journal, Records)>> {
    let meta_path = dir.join("meta.json");
    if !meta_path.exists() {
        bail!("{}: no run to resume (expected a meta.json written by heaplab run)", dir.display());
    }
    let meta = Meta::read_settings(&meta_path)?;
    let (version, revision) = (env!("CARGO_PKG_VERSION"), env!("HEAPLAB_GIT_REVISION"));
    if meta.heaplab_version != version || meta.git_revision != revision {
        bail!(
            "{}: made by heaplab {} ({}), and this is heaplab {version} ({revision}): a resumed run must be measured by \
             the build that started it; resume it with that build, or start a new run with --from",
            meta_path.display(),
            meta.heaplab_version,
            meta.git_revision
        );
    }
    if meta.status == RunStatus::Complete {
        eprintln!("{} is complete: nothing to resume", dir.display());
        return Ok(None);
    }
    let (journal, records) = Journal::resume(dir)?;
    Ok(Some((meta, journal, records)))
}

/// A run whose process is gone while its meta.json still says `running`
/// (killed, or its machine lost): write its files from the journal and
/// mark it interrupted. Said on stderr; nothing happens to a run that is
/// still going, finished, or has no journal.
pub fn repair_if_killed(dir: &Path) -> anyhow::Result<()> {
    let meta_path = dir.join("meta.json");
    let Ok(text) = std::fs::read_to_string(&meta_path) else {
        return Ok(());
    };
    let Ok(mut meta) = serde_json::from_str::<Meta>(&text) else {
        return Ok(());
    };
    if meta.status != RunStatus::Running {
        return Ok(());
    }
    let records = match journal::read_idle(dir) {
        Ok(Some(records)) => records,
        Ok(None) => return Ok(()),
        Err(JournalError::Busy { .. }) => {
            eprintln!("note: {} is still running: this shows what its files hold so far", dir.display());
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    let path = dir.join(journal::FILE);
    let done = Done::from_records(&path, records, meta.cells_total, None)?;
    let outcome = Outcome::of(&done, &meta.settings, true);
    meta.status = RunStatus::Interrupted;
    write_results(&ResultsDir::open(dir), &mut meta, &outcome, &done, &path)?;
    let out = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    eprintln!(
        "note: {} was stopped before it finished and its process is gone: its files were written from its \
         journal and it is marked interrupted ({}); to complete it: heaplab run --resume {} --out {}",
        dir.display(),
        outcome.counts(),
        meta.run_name,
        out.display()
    );
    Ok(())
}

/// Ctrl-C sets `stop`; a second one kills as usual.
fn stop_on_ctrl_c(stop: &std::sync::Arc<AtomicBool>) {
    let stop = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            std::process::exit(crate::EXIT_INTERRUPTED.into());
        }
    });
}

/// `heaplab timing-process`: run one timing plan read from stdin (see
/// [`Spawning`]).
pub fn timing_process() -> anyhow::Result<()> {
    let stop = run::interrupt_flag();
    stop_on_ctrl_c(&stop);
    run::serve_timing_plan(io::stdin().lock(), io::stdout(), &stop)?;
    Ok(())
}

/// Is `exe` a heaplab? Asked before anything is written.
fn check_heaplab(exe: &Path) -> anyhow::Result<()> {
    let output = Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("--against {}: cannot run it", exe.display()))?;
    let version = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !version.starts_with("heaplab ") {
        bail!("--against {}: expected a heaplab executable, but `--version` did not say heaplab", exe.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::{Args, Command};

    use super::*;

    /// Every option that changes what is measured conflicts with `--from`,
    /// because it is in the group, not because a list names it.
    #[test]
    fn every_measurement_option_conflicts_with_from() {
        let command = RunArgs::augment_args(Command::new("run"));
        let measure = MeasureArgs::augment_args(Command::new("measure"));
        let options: Vec<&clap::Arg> = measure.get_arguments().collect();
        assert_eq!(options.len(), 19, "every measurement option");
        for option in options {
            let long = format!("--{}", option.get_long().expect("measurement options are long"));
            let value = match option.get_default_values().first() {
                Some(default) => default.to_str().map(str::to_string),
                None if option.get_action().takes_values() => Some(
                    match option.get_id().as_str() {
                        "allocators" => "bump",
                        "workloads" => "ramp",
                        "arena" => "64K",
                        "shard" => "1/2",
                        "threads" => "1,2",
                        other => panic!("give --{other} a value here"),
                    }
                    .to_string(),
                ),
                None => None,
            };
            let mut argv = vec!["run".to_string(), long.clone()];
            argv.extend(value);
            command.clone().try_get_matches_from(&argv).unwrap_or_else(|e| panic!("{argv:?} alone: {e}"));
            argv.extend(["--from".to_string(), "meta.json".to_string()]);
            let error = command.clone().try_get_matches_from(&argv).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ArgumentConflict, "{argv:?}: {error}");
        }
        // Where runs go and what is printed do not change what is measured.
        command.try_get_matches_from(["run", "--from", "m.json", "--out", "x", "--name", "n", "--quiet"]).unwrap();
    }
}
