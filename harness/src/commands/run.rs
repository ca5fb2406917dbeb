//! `heaplab run`: put allocators side by side on workloads.

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use heaplab::registry::{self, AllocatorSpec};
use heaplab::replay::Touch;
use heaplab::results::{Meta, ResultsDir, RunSettings, SCHEMA_VERSION, TimerInfo};
use heaplab::run::{self, CellTimes, Executor, Progress, RunError, TimingPlan};
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
    #[arg(long, value_name = "META_JSON", conflicts_with_all = ["allocators", "workloads", "seeds", "reps", "warmup", "arena", "align", "touch", "no_latency", "metrics_only", "verify", "quick", "points", "frames", "jobs", "processes"])]
    from: Option<PathBuf>,

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
        processes: args.processes as usize,
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
    if let Some(exe) = &args.against {
        if settings.metrics_only {
            bail!("--against compares timings, and a metrics-only run has none");
        }
        check_heaplab(exe)?;
    }
    let allocators: Vec<AllocatorSpec> =
        settings.allocators.iter().map(|s| AllocatorSpec::parse(s)).collect::<Result<_, _>>()?;
    let workloads: Vec<Workload> = settings.workloads.iter().map(|w| Workload::parse(w)).collect::<Result<_, _>>()?;
    if settings.seeds.is_empty() {
        bail!("give at least one seed");
    }
    let terminal = io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        None,
        if terminal && !args.take_turns { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
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
    let other_dir = args.out.join(format!("{name}-base"));
    if args.against.is_some() && (other_dir.join("summary.csv").exists() || other_dir.join("meta.json").exists()) {
        bail!("{} already holds results; choose another --name or remove it", other_dir.display());
    }
    let mut results = ResultsDir::create(&dir, &meta).with_context(|| format!("creating {}", dir.display()))?;

    let stop = run::interrupt_flag();
    stop_on_ctrl_c(&stop);
    let progress = Bar(bar.clone());
    let mut in_process = run::InProcess { cells: &cells, workloads: &prepared, stop: &stop };
    let mut spawning = Spawning { stop: &stop };
    let inner: &mut dyn Executor = if settings.processes > 1 { &mut spawning } else { &mut in_process };
    let mut turns = None;
    let mut interleaved = None;
    let executor: &mut dyn Executor = if args.take_turns {
        turns.insert(TakingTurns { inner, stop: &stop })
    } else if let Some(exe) = &args.against {
        interleaved.insert(Interleaved::start(
            exe,
            &dir.join("meta.json"),
            &format!("{name}-base"),
            &args.out,
            inner,
            &stop,
        )?)
    } else {
        inner
    };
    let finished =
        run::run_cells(&cells, &prepared, &settings, calibration, &stop, &progress, executor, &mut |cell| {
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
    let other = interleaved.map(|other| other.finish(interrupted)).transpose()?;
    if !args.quiet {
        print!("{}", table::render(results.summary()));
    }
    report_location(results.dir(), finished, cells.len(), meta.elapsed_seconds, calibration);
    if let Some(other) = other {
        eprintln!(
            "the other build's results, timed in turns with these: {}\ncompare them: heaplab compare {} {}",
            other.display(),
            other.display(),
            results.dir().display()
        );
    }
    if interrupted {
        std::process::exit(130);
    }
    Ok(())
}

/// Ctrl-C sets `stop`; a second one kills as usual.
fn stop_on_ctrl_c(stop: &std::sync::Arc<AtomicBool>) {
    let stop = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
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

/// The first word of a timing process's progress lines and of its result.
const TICK: &str = "tick\t";
const TIMES: &str = "times\t";

/// Runs each timing plan in a fresh `heaplab timing-process`: the plan goes
/// in on stdin as JSON; progress lines and the measured times come back on
/// stdout; errors go straight to the terminal on the shared stderr.
struct Spawning<'a> {
    /// Set by Ctrl-C, which the child receives too: it stops after its
    /// current cell and returns what it measured.
    stop: &'a AtomicBool,
}

impl Executor for Spawning<'_> {
    fn execute(
        &mut self,
        plan: &TimingPlan,
        process: usize,
        tick: &(dyn Fn(&str) + Sync),
    ) -> Result<Vec<CellTimes>, RunError> {
        // Interrupted between processes: a new one would not have seen Ctrl-C.
        if self.stop.load(Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        let failed = |what: String| RunError::Io(io::Error::other(format!("timing process {process}: {what}")));
        let exe = std::env::current_exe().map_err(|e| failed(format!("cannot find heaplab's own executable: {e}")))?;
        let mut child = Command::new(exe)
            .arg("timing-process")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| failed(format!("cannot start: {e}")))?;
        let times: Result<Option<Vec<CellTimes>>, RunError> = (|| {
            let plan_json = serde_json::to_vec(plan).map_err(|e| failed(e.to_string()))?;
            let mut stdin = child.stdin.take().expect("stdin is piped");
            stdin.write_all(&plan_json).map_err(|e| failed(format!("sending the plan: {e}")))?;
            drop(stdin);
            let stdout = child.stdout.take().expect("stdout is piped");
            let mut times = None;
            for line in BufReader::new(stdout).lines() {
                let line = line.map_err(|e| failed(format!("reading its output: {e}")))?;
                if let Some(what) = line.strip_prefix(TICK) {
                    tick(what);
                } else if let Some(json) = line.strip_prefix(TIMES) {
                    times = Some(serde_json::from_str(json).map_err(|e| failed(format!("unreadable times: {e}")))?);
                }
            }
            Ok(times)
        })();
        if times.is_err() {
            // Nothing will read its answer: do not leave it running.
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| failed(e.to_string()))?;
        match times? {
            Some(times) if status.success() => Ok(times),
            // Interrupted before it could answer: nothing measured.
            _ if self.stop.load(Ordering::SeqCst) => Ok(Vec::new()),
            _ => Err(failed(format!("exited with {status} before reporting its times"))),
        }
    }
}

/// `heaplab timing-process`: run one timing plan read from stdin (see
/// [`Spawning`]).
pub fn timing_process() -> anyhow::Result<()> {
    let mut text = String::new();
    io::stdin().read_to_string(&mut text).context("reading the timing plan")?;
    let plan: TimingPlan =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("stdin:{}: expected a timing plan: {e}", e.line()))?;
    let settings = &plan.settings;
    let allocators: Vec<AllocatorSpec> =
        settings.allocators.iter().map(|s| AllocatorSpec::parse(s)).collect::<Result<_, _>>()?;
    let workloads: Vec<Workload> = settings.workloads.iter().map(|w| Workload::parse(w)).collect::<Result<_, _>>()?;
    let prepared = run::prepare_workloads(&workloads, &settings.seeds, settings.align)?;
    let cells = run::cells(&allocators, &prepared, settings.arena_bytes);
    let stop = run::interrupt_flag();
    stop_on_ctrl_c(&stop);
    let stdout = io::stdout();
    let tick = |what: &str| {
        let mut out = stdout.lock();
        // A parent that went away has nobody to tell; the times would be lost
        // as well, so there is nothing better to do than carry on.
        let _ = writeln!(out, "{TICK}{what}");
        let _ = out.flush();
    };
    let times = run::time_cells(&cells, &prepared, &plan, &stop, &tick)?;
    let mut out = stdout.lock();
    writeln!(out, "{TIMES}{}", serde_json::to_string(&times)?)?;
    out.flush()?;
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

/// The other side of `--against`: asks for a turn before each timed step
/// (`ready` on stdout) and takes it when told (`go` on stdin). The parent
/// gone (end of input) counts as Ctrl-C.
struct TakingTurns<'a> {
    inner: &'a mut dyn Executor,
    stop: &'a AtomicBool,
}

impl TakingTurns<'_> {
    /// Whether the turn came; not when interrupted, or when the parent
    /// went away (which then counts as Ctrl-C).
    fn wait_for_turn(&mut self) -> bool {
        if self.stop.load(Ordering::SeqCst) {
            return false;
        }
        let asked = {
            let mut out = io::stdout().lock();
            writeln!(out, "ready").and_then(|()| out.flush())
        };
        let mut line = String::new();
        let answered = asked.and_then(|()| io::stdin().lock().read_line(&mut line));
        if !matches!(answered, Ok(n) if n > 0) || line.trim() != "go" {
            self.stop.store(true, Ordering::SeqCst);
        }
        !self.stop.load(Ordering::SeqCst)
    }
}

impl Executor for TakingTurns<'_> {
    fn execute(
        &mut self,
        plan: &TimingPlan,
        process: usize,
        tick: &(dyn Fn(&str) + Sync),
    ) -> Result<Vec<CellTimes>, RunError> {
        if !self.wait_for_turn() {
            return Ok(Vec::new());
        }
        self.inner.execute(plan, process, tick)
    }

    fn after_timing(&mut self) -> Result<(), RunError> {
        self.wait_for_turn();
        Ok(())
    }
}

/// `--against`: the other build runs the same settings (`run --from` this
/// run's meta.json) as a child, and the two take turns at every timed step,
/// in ABBA order (the other build first in even pairs), so that a drift of
/// the machine over the run falls on both alike. After the repetitions the
/// child takes one more turn for its latency pass and its results, and
/// ends, before this run goes on to its own.
struct Interleaved<'a> {
    inner: &'a mut dyn Executor,
    stop: &'a AtomicBool,
    exe: PathBuf,
    /// `None` once waited for.
    child: Option<std::process::Child>,
    /// `None` once closed, which the child takes as Ctrl-C.
    to_child: Option<std::process::ChildStdin>,
    from_child: BufReader<std::process::ChildStdout>,
    /// Where the other build writes.
    dir: PathBuf,
    /// The child is waiting for `go`.
    idle: bool,
    /// The child's output ended: it has finished or failed.
    ended: bool,
    /// Turns the child has taken.
    turns: usize,
}

impl<'a> Interleaved<'a> {
    fn start(
        exe: &Path,
        meta: &Path,
        name: &str,
        out: &Path,
        inner: &'a mut dyn Executor,
        stop: &'a AtomicBool,
    ) -> anyhow::Result<Interleaved<'a>> {
        let mut child = Command::new(exe)
            .arg("run")
            .arg("--from")
            .arg(meta)
            .args(["--name", name, "--quiet", "--take-turns", "--out"])
            .arg(out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the other build, {}", exe.display()))?;
        let to_child = child.stdin.take().expect("stdin is piped");
        let from_child = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(Interleaved {
            inner,
            stop,
            exe: exe.to_path_buf(),
            child: Some(child),
            to_child: Some(to_child),
            from_child,
            dir: out.join(name),
            idle: false,
            ended: false,
            turns: 0,
        })
    }

    /// Wait until the child asks for a turn or ends.
    fn wait_idle(&mut self) -> io::Result<()> {
        if self.idle || self.ended {
            return Ok(());
        }
        let mut line = String::new();
        if self.from_child.read_line(&mut line)? == 0 {
            self.ended = true;
        } else if line.trim() == "ready" {
            self.idle = true;
        } else {
            return Err(io::Error::other(format!(
                "{} does not take turns (it said `{}`); it must be a heaplab that knows --against",
                self.exe.display(),
                line.trim()
            )));
        }
        Ok(())
    }

    /// Let the child run its next timed step (unless interrupted).
    fn child_turn(&mut self) -> io::Result<()> {
        self.wait_idle()?;
        if self.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if self.ended && self.turns == 0 {
            return Err(io::Error::other(format!(
                "the other build ({}) stopped before its first timed step; its message is above",
                self.exe.display()
            )));
        }
        if let (false, Some(to_child)) = (self.ended, self.to_child.as_mut()) {
            writeln!(to_child, "go")?;
            to_child.flush()?;
            self.idle = false;
            self.turns += 1;
        }
        Ok(())
    }

    /// Wait for the child to end; returns where it wrote. Interrupted, the
    /// child is told so (its input closes) and stops as this run did.
    fn finish(mut self, interrupted: bool) -> anyhow::Result<PathBuf> {
        if !interrupted {
            while !self.ended && !self.stop.load(Ordering::SeqCst) {
                self.child_turn()?;
                self.wait_idle()?;
            }
        }
        self.to_child = None;
        let status = self.child.take().expect("waited for once").wait()?;
        if !status.success() && !interrupted {
            bail!("the other build ({}) failed: {status}; its message is above", self.exe.display());
        }
        Ok(self.dir.clone())
    }
}

impl Drop for Interleaved<'_> {
    /// On an error path: the child is not waited for by `finish`.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Executor for Interleaved<'_> {
    fn execute(
        &mut self,
        plan: &TimingPlan,
        process: usize,
        tick: &(dyn Fn(&str) + Sync),
    ) -> Result<Vec<CellTimes>, RunError> {
        // ABBA: B A, A B, B A, ...
        let child_first = process.is_multiple_of(2);
        if child_first {
            self.child_turn()?;
        }
        self.wait_idle()?;
        if self.stop.load(Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        let times = self.inner.execute(plan, process, tick)?;
        if !child_first {
            self.child_turn()?;
        }
        Ok(times)
    }

    fn after_timing(&mut self) -> Result<(), RunError> {
        // The child's last turn: its latency pass and results. It ends.
        self.child_turn()?;
        while !self.ended && !self.stop.load(Ordering::SeqCst) {
            self.wait_idle()?;
            if self.idle {
                self.child_turn()?;
            }
        }
        Ok(())
    }
}
