//! `heaplab run`: the run matrix, its three passes per cell, and the
//! bookkeeping around them.
//!
//! A *cell* is one (allocator, workload, seed). For each cell:
//! 1. the **metrics pass** replays once on a fresh arena and computes every
//!    fragmentation figure; cells run in parallel (rayon), since nothing is
//!    timed;
//! 2. the **throughput pass** warms up in each timing process (`warmup`
//!    replays; after the first process, about 20 ms of the trace), then
//!    times `reps` replays in all, each whole replay timed (several back to
//!    back when one is shorter than 20 ms).
//!    Each repetition gets a fresh arena, pre-faulted before the clock
//!    starts, and a slot table at another place in its page. The
//!    repetitions are interleaved across the matrix, in rounds, and spread
//!    over several *timing processes* (an [`Executor`]): a process is a
//!    draw of everything fixed for its lifetime (the physical pages it
//!    recycles, where its heap and code land), and one process per side
//!    would hide that variation from the confidence interval (Kalibera and
//!    Jones, *Rigorous benchmarking in reasonable time*, 2013);
//! 3. the **latency pass** replays once more, timing every allocator call.
//!
//! Timed passes run one cell at a time unless `jobs` says otherwise. On
//! Ctrl-C (which reaches the timing processes too) the run stops after the
//! current cell, starts no further timing process, and writes every cell
//! with at least one timed repetition (the `reps` column says how many). All
//! workloads are prepared (generated, read, validated) before anything runs,
//! so a bad trace stops the run before any result file exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use heaplab_core::{Allocator, AllocatorConfig, Arena, BuildError};
use heaplab_workloads::{OpKind, TraceError, Workload};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::heapmap::HeapMapRecorder;
use crate::metrics::{Metrics, MetricsProbe, VerifyError};
use crate::prepare::{Prepared, prepare};
use crate::registry::{AllocatorSpec, Visitor};
use crate::replay::{Nothing, Probe, Slots, replay};
use crate::results::{CellResult, Latency, RunSettings, SPECTRUM, Throughput};
use crate::timing::{self, Calibration, median, median_interval};

/// Arena size when neither the command line nor the workload says.
pub const DEFAULT_ARENA_BYTES: u64 = 64 << 20;
/// Coverage asked of the throughput interval.
const INTERVAL_LEVEL: f64 = 0.95;
/// A timed repetition lasts at least this long (it replays the trace
/// several times if one replay is shorter).
const MIN_REP_SECONDS: f64 = 0.02;
/// Bound on the replays per repetition.
const MAX_PASSES: usize = 10_000;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A workload could not be prepared.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// An allocator could not be set up.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The arena could not be created.
    #[error("cannot create a {bytes}-byte arena: {error}")]
    Arena {
        /// Requested size.
        bytes: u64,
        /// Why not.
        error: heaplab_core::ArenaError,
    },
    /// `--verify` found a broken invariant.
    #[error("{allocator} on {workload}: {error}")]
    Verify {
        /// The allocator.
        allocator: String,
        /// The workload.
        workload: String,
        /// What check() said, and where.
        error: VerifyError,
    },
    /// Writing results failed.
    #[error("writing results: {0}")]
    Io(#[from] std::io::Error),
}

/// A workload with its ops prepared for one seed.
#[derive(Debug)]
pub struct PreparedWorkload {
    /// The workload.
    pub workload: Workload,
    /// Canonical name.
    pub name: String,
    /// The seed (synthetic workloads).
    pub seed: Option<u64>,
    /// The steps.
    pub prepared: Prepared,
}

/// One cell of the matrix.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The allocator.
    pub allocator: AllocatorSpec,
    /// Index into the prepared workloads.
    pub workload: usize,
    /// Arena bytes for this cell.
    pub arena_bytes: u64,
}

/// Generate, read and validate every workload for every seed it needs.
pub fn prepare_workloads(
    workloads: &[Workload],
    seeds: &[u64],
    align: u64,
) -> Result<Vec<PreparedWorkload>, TraceError> {
    let mut jobs = Vec::new();
    for workload in workloads {
        if workload.is_seeded() {
            jobs.extend(seeds.iter().map(|&seed| (workload, Some(seed))));
        } else {
            jobs.push((workload, None));
        }
    }
    jobs.into_par_iter()
        .map(|(workload, seed)| {
            let name = workload.name();
            let prepared = prepare(workload.ops(seed.unwrap_or(0))?, &name, align)?;
            Ok(PreparedWorkload { workload: workload.clone(), name, seed, prepared })
        })
        .collect()
}

/// The cells: allocators × prepared workloads, in matrix order.
pub fn cells(allocators: &[AllocatorSpec], workloads: &[PreparedWorkload], arena_bytes: Option<u64>) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (index, workload) in workloads.iter().enumerate() {
        let arena = arena_bytes.or(workload.workload.suggested_arena()).unwrap_or(DEFAULT_ARENA_BYTES);
        for allocator in allocators {
            cells.push(Cell { allocator: allocator.clone(), workload: index, arena_bytes: arena });
        }
    }
    cells
}

fn arena(bytes: u64) -> Result<Arena, RunError> {
    usize::try_from(bytes)
        .map_err(|_| heaplab_core::ArenaError::TooLarge(usize::MAX))
        .and_then(Arena::natural)
        .map_err(|error| RunError::Arena { bytes, error })
}

/// The metrics pass of one cell.
struct MetricsPass<'a> {
    prepared: &'a Prepared,
    arena_bytes: u64,
    settings: &'a RunSettings,
}

impl Visitor for MetricsPass<'_> {
    type Output = Result<Metrics, RunError>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output {
        let mut allocator = config.build(arena(self.arena_bytes)?)?;
        let steps = &self.prepared.steps;
        // Heap maps draw blocks and free space by arena offset: only for
        // allocators inside the arena whose free space can be walked.
        let reports = allocator.reports();
        let recorder = (self.settings.frames > 0 && reports.in_arena && reports.free_space)
            .then(|| HeapMapRecorder::new(self.arena_bytes as usize, steps.len(), self.settings.frames, None));
        let mut probe = MetricsProbe::with_heapmap(steps.len(), self.settings.points, self.settings.verify, recorder);
        probe.set_reports(reports);
        let mut slots = Slots::new(self.prepared.slots);
        let outcome = replay(&mut allocator, steps, &mut slots, self.settings.touch, &mut probe)
            .map_err(|error| RunError::Verify { allocator: config.spec(), workload: String::new(), error })?;
        let metrics = probe.finish(allocator.stats(), outcome.failed_reallocs, outcome.skipped);
        // Allocators with memory of their own would keep the leftovers.
        slots.release_all(&mut allocator);
        Ok(metrics)
    }
}

/// The latency probe: time every allocator call.
struct LatencyProbe {
    calibration: Calibration,
    histograms: [Histogram<u64>; 3],
}

impl<A: Allocator> Probe<A> for LatencyProbe {
    type Error = std::convert::Infallible;

    #[inline(always)]
    fn start(&mut self) -> u64 {
        timing::ticks()
    }

    #[inline(always)]
    fn stop(&mut self, kind: OpKind, start: u64) {
        let end = timing::ticks();
        let ns = self.calibration.ns(end.wrapping_sub(start));
        self.histograms[kind as usize].record(ns).expect("an auto-resizing histogram takes any u64");
    }
}

/// What the timed passes of one cell measured.
type Timed = (Throughput, Option<Latency>);

/// One timing process's share of the timed passes: warm up every cell, then
/// run `reps` rounds over the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingPlan {
    /// The run (the process prepares the same cells from it).
    pub settings: RunSettings,
    /// Bytes to pre-fault in each cell's arena: the footprint its metrics
    /// pass measured. In cell order.
    pub prefault: Vec<usize>,
    /// Replays per repetition of each cell, fixed by the first process so
    /// that every repetition of a cell is the same measurement; `None`: the
    /// warm-up chooses.
    pub passes: Option<Vec<usize>>,
    /// Steps of each cell's warm-up, once the first process has measured a
    /// replay: about [`MIN_REP_SECONDS`] of the trace's start when a replay
    /// takes longer (the arena is fresh for every repetition anyway; the
    /// warm-up is for code, predictors and clocks). `None`: whole replays.
    #[serde(default)]
    pub warmup_steps: Option<Vec<usize>>,
    /// Rounds this process runs.
    pub reps: usize,
    /// Repetitions the processes before this one ran: each repetition puts
    /// the slot table at its own place.
    pub first_rep: usize,
}

/// What one timing process measured of one cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellTimes {
    /// Replays per repetition.
    pub passes: usize,
    /// Seconds per replay, one per repetition.
    pub seconds: Vec<f64>,
}

/// Runs a [`TimingPlan`] somewhere: in this process ([`InProcess`]) or in a
/// fresh one (the command line's executor).
pub trait Executor {
    /// Run `plan` as timing process number `process`, calling `tick` once
    /// per cell warmed up or repeated. An interrupted plan returns what it
    /// measured so far.
    fn execute(
        &mut self,
        plan: &TimingPlan,
        process: usize,
        tick: &(dyn Fn(&str) + Sync),
    ) -> Result<Vec<CellTimes>, RunError>;

    /// Called once the repetitions are done, before the latency pass
    /// (which times too) and the writing of results.
    fn after_timing(&mut self) -> Result<(), RunError> {
        Ok(())
    }
}

/// Timing in the calling process.
#[derive(Debug)]
pub struct InProcess<'a> {
    /// The matrix.
    pub cells: &'a [Cell],
    /// Its workloads.
    pub workloads: &'a [PreparedWorkload],
    /// Polled between cells.
    pub stop: &'a AtomicBool,
}

impl Executor for InProcess<'_> {
    fn execute(
        &mut self,
        plan: &TimingPlan,
        _process: usize,
        tick: &(dyn Fn(&str) + Sync),
    ) -> Result<Vec<CellTimes>, RunError> {
        time_cells(self.cells, self.workloads, plan, self.stop, tick)
    }
}

/// The state of one cell's timed passes between rounds.
#[derive(Debug)]
struct TimedCell {
    arena: Option<Arena>,
    /// Arena size, and bytes to pre-fault.
    arena_bytes: u64,
    prefault_bytes: usize,
    slots: Slots,
    /// Slots the workload needs.
    slot_count: usize,
    /// Replays per repetition; 0 until chosen.
    passes: usize,
    /// Steps of a warm-up replay; 0: all.
    warmup_steps: usize,
    /// Repetitions of this cell run by earlier timing processes.
    first_rep: usize,
    seconds: Vec<f64>,
    /// The timing process of each of `seconds`.
    processes: Vec<usize>,
    /// Set by the last stage.
    result: Option<Timed>,
}

impl TimedCell {
    fn new(cell: &Cell, workload: &PreparedWorkload, prefault_bytes: usize) -> TimedCell {
        TimedCell {
            arena: None,
            arena_bytes: cell.arena_bytes,
            prefault_bytes,
            slots: Slots::new(0),
            slot_count: workload.prepared.slots,
            passes: 0,
            warmup_steps: 0,
            first_rep: 0,
            seconds: Vec::new(),
            processes: Vec::new(),
            result: None,
        }
    }
}

/// One timed replay on a fresh allocator over the reused arena; building,
/// releasing leftovers and trimming are not timed.
fn timed_replay<C: AllocatorConfig>(
    config: &C,
    state: &mut TimedCell,
    steps: &[crate::prepare::Step],
    touch: crate::replay::Touch,
) -> Result<f64, RunError> {
    let mut allocator = config.build_timed(state.arena.take().expect("the arena is back between replays"))?;
    let start = Instant::now();
    let Ok(_) = replay(&mut allocator, steps, &mut state.slots, touch, &mut Nothing);
    let elapsed = start.elapsed().as_secs_f64();
    state.slots.release_all(&mut allocator);
    allocator.trim();
    state.arena = Some(allocator.into_arena());
    Ok(elapsed)
}

/// A fresh, pre-faulted arena for a repetition, and the slot table at a
/// new place within a page (see [`Slots`]). Where memory lands changes
/// cache behaviour; a new place per repetition puts that variation into
/// each cell's spread, where the confidence interval sees it.
fn fresh_arena(state: &mut TimedCell) -> Result<(), RunError> {
    state.arena = None;
    let mut fresh = arena(state.arena_bytes)?;
    fresh.prefault(state.prefault_bytes);
    state.arena = Some(fresh);
    // Any of the page's cache lines; the sequence only needs to vary.
    let line = (state.first_rep + state.seconds.len()).wrapping_mul(PLACEMENT_STRIDE) % (4096 / 64);
    state.slots = Slots::placed(state.slot_count, line * 64 / size_of::<crate::replay::Slot>());
    Ok(())
}

/// Lines (of 64 bytes) the slot table moves by from one repetition to the
/// next: odd, so that 64 repetitions visit every line of a page.
const PLACEMENT_STRIDE: usize = 37;

/// One stage of a cell's timed passes.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Warm up and, unless already chosen, choose the replays per repetition.
    WarmUp,
    /// One timed repetition.
    Repetition,
    /// The latency pass (if calibrated) and the throughput summary.
    Finish { calibration: Option<Calibration> },
}

struct TimedStage<'a> {
    prepared: &'a Prepared,
    settings: &'a RunSettings,
    state: &'a mut TimedCell,
    stage: Stage,
}

impl Visitor for TimedStage<'_> {
    type Output = Result<(), RunError>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output {
        let steps = &self.prepared.steps;
        let touch = self.settings.touch;
        let state = self.state;
        match self.stage {
            Stage::WarmUp => {
                fresh_arena(state)?;
                let warm_steps = match state.warmup_steps {
                    0 => &steps[..],
                    prefix => &steps[..prefix.min(steps.len())],
                };
                let mut warm = f64::INFINITY;
                for _ in 0..self.settings.warmup.max(1) {
                    warm = timed_replay(config, state, warm_steps, touch)?;
                }
                // Short replays are noise-dominated: a repetition replays the
                // trace `passes` times so that it lasts at least MIN_REP_SECONDS.
                if state.passes == 0 {
                    state.passes = ((MIN_REP_SECONDS / warm.max(1e-9)).ceil() as usize).clamp(1, MAX_PASSES);
                }
                state.arena = None;
            }
            Stage::Repetition => {
                fresh_arena(state)?;
                let mut total = 0.0;
                for _ in 0..state.passes {
                    total += timed_replay(config, state, steps, touch)?;
                }
                state.seconds.push((total / state.passes as f64).max(1e-9));
                state.arena = None;
            }
            Stage::Finish { calibration } => {
                let ops = steps.len() as f64;
                let mut rates: Vec<f64> = state.seconds.iter().map(|s| ops / s).collect();
                let (low, high, coverage) = median_interval(&rates, INTERVAL_LEVEL);
                let throughput = Throughput {
                    passes: state.passes,
                    median: median(&mut rates),
                    low,
                    high,
                    level_pct: 100.0 * coverage,
                    min: rates.first().copied().unwrap_or(f64::NAN),
                    max: rates.last().copied().unwrap_or(f64::NAN),
                    seconds: std::mem::take(&mut state.seconds),
                    processes: std::mem::take(&mut state.processes),
                };
                let latency = match calibration {
                    Some(calibration) => {
                        fresh_arena(state)?;
                        let mut allocator = config.build_timed(state.arena.take().expect("a fresh arena"))?;
                        let histogram = || Histogram::new(3).expect("3 significant figures are valid");
                        let mut probe =
                            LatencyProbe { calibration, histograms: [histogram(), histogram(), histogram()] };
                        let Ok(_) = replay(&mut allocator, steps, &mut state.slots, touch, &mut probe);
                        state.slots.release_all(&mut allocator);
                        let kinds = probe.histograms.map(|h| {
                            let spectrum = SPECTRUM
                                .iter()
                                .map(|&p| (p, if h.is_empty() { 0 } else { h.value_at_percentile(p) }))
                                .collect();
                            (h.len(), spectrum)
                        });
                        Some(Latency { kinds, timer_overhead_ns: calibration.overhead_ns() })
                    }
                    None => None,
                };
                state.arena = None;
                state.slots = Slots::new(0);
                state.result = Some((throughput, latency));
            }
        }
        Ok(())
    }
}

/// The timed passes of one timing process: a warm-up of every cell, then
/// `plan.reps` rounds in which every cell runs one repetition. A slow spell
/// of a shared machine thus lands on every cell's spread rather than on the
/// one cell being timed. Stopped (`stop`), it returns the repetitions done.
pub fn time_cells(
    cells: &[Cell],
    workloads: &[PreparedWorkload],
    plan: &TimingPlan,
    stop: &AtomicBool,
    tick: &(dyn Fn(&str) + Sync),
) -> Result<Vec<CellTimes>, RunError> {
    if plan.prefault.len() != cells.len()
        || plan.passes.as_ref().is_some_and(|p| p.len() != cells.len())
        || plan.warmup_steps.as_ref().is_some_and(|w| w.len() != cells.len())
    {
        return Err(RunError::Io(std::io::Error::other(format!(
            "a timing plan for {} cells does not fit this matrix of {}",
            plan.prefault.len(),
            cells.len()
        ))));
    }
    let settings = &plan.settings;
    let mut states: Vec<TimedCell> = cells
        .iter()
        .enumerate()
        .map(|(index, cell)| {
            let mut state = TimedCell::new(cell, &workloads[cell.workload], plan.prefault[index]);
            state.passes = plan.passes.as_ref().map_or(0, |p| p[index]);
            state.warmup_steps = plan.warmup_steps.as_ref().map_or(0, |w| w[index]);
            state.first_rep = plan.first_rep;
            state
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.jobs.max(1))
        .build()
        .map_err(|e| RunError::Io(std::io::Error::other(e)))?;
    // One cell after another (`jobs` 1, the default), in matrix order or,
    // every other round, in reverse: a cell's place in the round (what ran
    // just before it, how long ago the last cell of its own ended) then
    // falls on each allocator alike over the rounds, instead of always
    // favouring the same neighbour in a pair.
    let run_stage = |states: &mut Vec<TimedCell>, what: &str, stage: Stage, reversed: bool| -> Result<bool, RunError> {
        let run_one = |cell: &Cell, state: &mut TimedCell| {
            let workload = &workloads[cell.workload];
            tick(&format!("{what}: {} on {}", cell.allocator.spec(), workload.name));
            cell.allocator.visit(TimedStage { prepared: &workload.prepared, settings, state, stage })
        };
        if settings.jobs <= 1 {
            let order: Vec<usize> =
                if reversed { (0..cells.len()).rev().collect() } else { (0..cells.len()).collect() };
            for index in order {
                if stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                run_one(&cells[index], &mut states[index])?;
            }
            return Ok(true);
        }
        pool.install(|| {
            cells.par_iter().zip(states.par_iter_mut()).try_for_each(|(cell, state)| {
                if stop.load(Ordering::Relaxed) {
                    return Err(None);
                }
                run_one(cell, state).map_err(Some)
            })
        })
        .map_or_else(
            |error| match error {
                Some(error) => Err(error),
                None => Ok(false),
            },
            |()| Ok(true),
        )
    };
    let mut going = run_stage(&mut states, "warm-up", Stage::WarmUp, false)?;
    for round in 0..plan.reps {
        if !going {
            break;
        }
        let reversed = (plan.first_rep + round) % 2 == 1;
        going = run_stage(&mut states, &format!("round {} of {}", round + 1, plan.reps), Stage::Repetition, reversed)?;
    }
    Ok(states.into_iter().map(|state| CellTimes { passes: state.passes, seconds: state.seconds }).collect())
}

/// How many timing processes a run uses, and how many rounds each runs:
/// the repetitions spread as evenly as they go.
pub fn rounds_per_process(settings: &RunSettings) -> Vec<usize> {
    let processes = settings.processes.clamp(1, settings.reps.max(1));
    (0..processes).map(|p| settings.reps / processes + usize::from(p < settings.reps % processes)).collect()
}

/// Progress reports from a run, for a progress bar.
pub trait Progress: Sync {
    /// `done` of `total` steps are finished; `what` is being worked on.
    fn update(&self, done: usize, total: usize, what: &str);
}

/// Run the matrix: the metrics pass here, the timed repetitions through
/// `executor` (one plan per timing process), the latency pass here.
/// `finished` receives every cell as its passes complete, in matrix order;
/// `stop` is polled between cells (Ctrl-C). Returns the number of cells
/// finished.
#[allow(clippy::too_many_arguments)]
pub fn run_cells(
    cells: &[Cell],
    workloads: &[PreparedWorkload],
    settings: &RunSettings,
    calibration: Option<Calibration>,
    stop: &AtomicBool,
    progress: &dyn Progress,
    executor: &mut dyn Executor,
    finished: &mut dyn FnMut(CellResult) -> Result<(), RunError>,
) -> Result<usize, RunError> {
    let timed = !settings.metrics_only;
    let rounds = rounds_per_process(settings);
    let total = cells.len() * if timed { 2 + rounds.len() + settings.reps } else { 1 };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let tick = |what: &str| {
        let count = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress.update(count, total, what);
    };
    // 1. Metrics, in parallel.
    let metrics: Vec<Result<(Metrics, f64), RunError>> = cells
        .par_iter()
        .map(|cell| {
            if stop.load(Ordering::Relaxed) {
                return Err(RunError::Io(std::io::Error::other("interrupted")));
            }
            let workload = &workloads[cell.workload];
            let started = Instant::now();
            let result = cell
                .allocator
                .visit(MetricsPass { prepared: &workload.prepared, arena_bytes: cell.arena_bytes, settings })
                .map_err(|error| match error {
                    RunError::Verify { allocator, error, .. } => {
                        RunError::Verify { allocator, workload: workload.name.clone(), error }
                    }
                    other => other,
                });
            tick(&format!("metrics: {} on {}", cell.allocator.spec(), workload.name));
            result.map(|metrics| (metrics, started.elapsed().as_secs_f64()))
        })
        .collect();
    let metrics: Vec<(Metrics, f64)> = metrics
        .into_iter()
        .collect::<Result<_, _>>()
        .or_else(|error| if stop.load(Ordering::Relaxed) { Ok(Vec::new()) } else { Err(error) })?;
    if metrics.is_empty() && !cells.is_empty() {
        return Ok(0);
    }
    let mut states: Vec<TimedCell> = cells
        .iter()
        .zip(&metrics)
        .map(|(cell, (metrics, _))| {
            TimedCell::new(cell, &workloads[cell.workload], metrics.peak_footprint_bytes as usize)
        })
        .collect();
    if timed {
        // 2. Repetitions, process by process; the first fixes the replays
        // per repetition of each cell for the others.
        let mut plan = TimingPlan {
            settings: settings.clone(),
            prefault: states.iter().map(|s| s.prefault_bytes).collect(),
            passes: None,
            warmup_steps: None,
            reps: 0,
            first_rep: 0,
        };
        for (process, &reps) in rounds.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            plan.reps = reps;
            let times = executor.execute(&plan, process, &tick)?;
            if times.is_empty() && stop.load(Ordering::Relaxed) {
                break;
            }
            if times.len() != cells.len() {
                return Err(RunError::Io(std::io::Error::other(format!(
                    "timing process {process} returned {} cells of {}",
                    times.len(),
                    cells.len()
                ))));
            }
            for (state, measured) in states.iter_mut().zip(times) {
                state.passes = measured.passes;
                state.processes.extend(std::iter::repeat_n(process, measured.seconds.len()));
                state.seconds.extend(measured.seconds);
            }
            if plan.passes.is_none() {
                plan.passes = Some(states.iter().map(|s| s.passes).collect());
                plan.warmup_steps = Some(
                    cells
                        .iter()
                        .zip(&states)
                        .map(|(cell, state)| {
                            let steps = workloads[cell.workload].prepared.steps.len();
                            match state.seconds.iter().copied().reduce(f64::min) {
                                Some(replay) if replay > MIN_REP_SECONDS => {
                                    ((steps as f64 * MIN_REP_SECONDS / replay).ceil() as usize).clamp(1, steps)
                                }
                                _ => steps,
                            }
                        })
                        .collect(),
                );
            }
            plan.first_rep += reps;
        }
        // 3. Latency. Interrupted: the repetitions done so far stand (their
        // count is in the `reps` column); no latency pass.
        executor.after_timing()?;
        let interrupted = stop.load(Ordering::Relaxed);
        let calibration = if settings.latency && !interrupted { calibration } else { None };
        for (cell, state) in cells.iter().zip(states.iter_mut()) {
            if !state.seconds.is_empty() {
                let workload = &workloads[cell.workload];
                cell.allocator.visit(TimedStage {
                    prepared: &workload.prepared,
                    settings,
                    state,
                    stage: Stage::Finish { calibration },
                })?;
                tick(&format!("latency: {} on {}", cell.allocator.spec(), workload.name));
            }
        }
    }
    let mut finished_count = 0;
    for ((cell, (metrics, metrics_seconds)), state) in cells.iter().zip(metrics).zip(states) {
        if timed && state.result.is_none() {
            continue;
        }
        let workload = &workloads[cell.workload];
        let (throughput, latency) = match state.result {
            Some((throughput, latency)) => (Some(throughput), latency),
            None => (None, None),
        };
        finished(CellResult {
            allocator: cell.allocator.spec(),
            workload: workload.name.clone(),
            seed: workload.seed,
            arena_bytes: cell.arena_bytes,
            counts: workload.prepared.counts,
            metrics,
            metrics_seconds,
            throughput,
            latency,
        })?;
        finished_count += 1;
    }
    Ok(finished_count)
}

/// The default suite's allocators: one representative configuration (or
/// two) per family.
pub fn default_allocators() -> Vec<&'static str> {
    vec![
        "freelist:fit=first,order=address",
        "freelist:fit=best,order=address",
        "segregated:kind=fits",
        "segregated:kind=tlsf",
        "buddy",
        "slab",
    ]
}

/// The default suite's workloads: every preset and every bundled trace.
pub fn default_workloads(ops: Option<u64>) -> Vec<String> {
    let presets = ["small-objects", "mixed-sizes", "ramp", "peak", "plateau", "larson", "kernel-pages", "kmalloc-mix"];
    let mut workloads: Vec<String> = presets
        .iter()
        .map(|name| match ops {
            Some(ops) => format!("{name}:ops={ops}"),
            None => name.to_string(),
        })
        .collect();
    workloads.push("fragmenter".to_string());
    workloads.extend(heaplab_workloads::bundled::BUNDLED.iter().map(|(name, _, _)| format!("trace:{name}")));
    workloads
}

/// Shared flag set by Ctrl-C.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}
