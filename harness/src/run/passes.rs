//! The passes over one cell: the metrics pass (untimed), the timed
//! repetitions of a timing process, and the latency pass.
//!
//! Each pass is a [`Visitor`] of the cell's allocator spec, so that it runs
//! on the allocator's concrete type: the metrics pass on the counted build,
//! the timed passes on the timed build (no ledger; see
//! [`heaplab_core::ledger`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use heaplab_core::{Allocator, AllocatorConfig, Arena, OpKind, PerKind};
use heaplab_results::{RunSettings, SPECTRUM};
use rayon::prelude::*;

use super::matrix::{Cell, Matrix, arena};
use super::protocol::{CellTimes, TimingPlan};
use super::threads::{SharedReplay, SharedSlots, ThreadsRun, run_plain};
use super::{RunError, Tick};
use crate::export::Latency;
use crate::heapmap::HeapMapRecorder;
use crate::metrics::{Metrics, MetricsProbe, RequestSizes};
use crate::prepare::{Prepared, Step, Threaded};
use crate::registry::Visitor;
use crate::replay::{Nothing, Probe, Slot, Slots, Touch, replay};
use crate::timing::{self, Calibration};

/// A timed repetition lasts at least this long (it replays the trace
/// several times if one replay is shorter).
pub const MIN_REP_SECONDS: f64 = 0.02;
/// Bound on the replays per repetition.
const MAX_PASSES: usize = 10_000;
/// Lines (of 64 bytes) the slot table moves by from one repetition to the
/// next: odd, so that 64 repetitions visit every line of a page.
const PLACEMENT_STRIDE: usize = 37;

/// The metrics pass of one cell: one replay on a fresh arena, every
/// fragmentation figure.
#[derive(Debug)]
pub struct MetricsPass<'a> {
    /// The cell's steps.
    pub prepared: &'a Prepared,
    /// Its arena.
    pub arena_bytes: u64,
    /// Sampling, heap-map frames, `--verify`, touch.
    pub settings: &'a RunSettings,
}

impl Visitor for MetricsPass<'_> {
    type Output = Result<Metrics, RunError>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output {
        let threaded = self.prepared.threaded.as_ref();
        let mut allocator = match threaded {
            Some(threaded) => config.build_threads(arena(self.arena_bytes)?, threaded.threads as usize)?,
            None => config.build(arena(self.arena_bytes)?)?,
        };
        let steps = &self.prepared.steps;
        // Heap maps draw blocks and free space by arena offset: only for
        // allocators inside the arena whose free space can be walked.
        let reports = allocator.reports();
        let recorder = (self.settings.frames > 0 && reports.in_arena && reports.free_space)
            .then(|| HeapMapRecorder::new(self.arena_bytes as usize, steps.len(), self.settings.frames, None));
        let mut probe = MetricsProbe::with_heapmap(steps.len(), self.settings.points, self.settings.verify, recorder);
        probe.set_reports(reports);
        probe.set_request_sizes(RequestSizes::of(steps));
        if let Some(threaded) = threaded {
            probe.set_threads(threaded.thread_of.clone());
        }
        let bound = allocator.stats().cache_bound_bytes;
        if bound > 0 {
            probe.set_cache_bound(bound as u64);
        }
        let mut slots = Slots::new(self.prepared.slots);
        let outcome = replay(&mut allocator, steps, &mut slots, self.settings.touch, &mut probe)
            .map_err(|error| RunError::Verify { allocator: config.spec(), workload: String::new(), error })?;
        let metrics = probe.finish(allocator.stats(), outcome.failed_reallocs, outcome.skipped);
        // Allocators with memory of their own would keep the leftovers.
        slots.release_all(&mut allocator);
        Ok(metrics)
    }
}

/// Build the allocator once on a fresh arena and drop it: what a run checks
/// for every (allocator, arena) before it creates its directory.
#[derive(Debug)]
pub struct BuildCheck {
    /// The arena's size.
    pub arena_bytes: u64,
}

impl Visitor for BuildCheck {
    type Output = Result<(), RunError>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output {
        config.build(arena(self.arena_bytes)?)?;
        Ok(())
    }
}

/// The latency probe: time every allocator call, one histogram per kind.
struct LatencyProbe {
    calibration: Calibration,
    histograms: PerKind<Histogram<u64>>,
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
        self.histograms[kind].record(ns).expect("an auto-resizing histogram takes any u64");
    }
}

/// The state of one cell's timed passes between rounds.
#[derive(Debug)]
pub struct TimedCell {
    arena: Option<Arena>,
    /// Arena size, and bytes to pre-fault.
    arena_bytes: u64,
    pub(super) prefault_bytes: usize,
    slots: Slots,
    /// The shared slots of a cell on threads.
    shared_slots: Option<SharedSlots>,
    /// Slots the workload needs.
    slot_count: usize,
    /// Replays per repetition; 0 until chosen.
    pub(super) passes: usize,
    /// Steps of a warm-up replay; 0: all.
    warmup_steps: usize,
    /// Repetitions of this cell run by earlier timing processes.
    first_rep: usize,
    /// Seconds per replay, one per repetition.
    pub(super) seconds: Vec<f64>,
    /// The timing process of each of `seconds`.
    pub(super) processes: Vec<usize>,
    /// Set by the latency pass.
    pub(super) latency: Option<Latency>,
}

impl TimedCell {
    /// A cell before its first repetition.
    pub fn new(cell: &Cell, prepared: &Prepared, prefault_bytes: usize) -> TimedCell {
        TimedCell {
            arena: None,
            arena_bytes: cell.arena_bytes,
            prefault_bytes,
            slots: Slots::new(0),
            shared_slots: None,
            slot_count: prepared.slots,
            passes: 0,
            warmup_steps: 0,
            first_rep: 0,
            seconds: Vec::new(),
            processes: Vec::new(),
            latency: None,
        }
    }

    /// Steps of the warm-up later timing processes run: about
    /// [`MIN_REP_SECONDS`] of the trace's start when a measured replay took
    /// longer, else all of them.
    pub fn warmup_steps_after(&self, steps: usize) -> usize {
        match self.seconds.iter().copied().reduce(f64::min) {
            Some(replay) if replay > MIN_REP_SECONDS => {
                ((steps as f64 * MIN_REP_SECONDS / replay).ceil() as usize).clamp(1, steps)
            }
            _ => steps,
        }
    }
}

/// One timed replay on a fresh allocator over the reused arena; building,
/// releasing leftovers and trimming are not timed. Never inlined, so that
/// `benchmarks/callgrind-per-op.sh` can count inside it by its name (one
/// call per replay: the call costs nothing measurable).
#[inline(never)]
fn timed_replay<C: AllocatorConfig>(
    config: &C,
    state: &mut TimedCell,
    steps: &[Step],
    touch: Touch,
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

/// One timed replay of a cell on threads: on the configuration's
/// thread-safe build, or, for a single-threaded allocator on one thread, on
/// its timed build; building and freeing leftovers are not timed.
fn timed_replay_threaded<C: AllocatorConfig>(
    config: &C,
    state: &mut TimedCell,
    threaded: &Threaded,
    touch: Touch,
    calibration: Option<Calibration>,
) -> Result<ThreadsRun, RunError> {
    let count = state.slot_count;
    let slots = state.shared_slots.get_or_insert_with(|| SharedSlots::new(count));
    let visitor = SharedReplay { threaded, arena: &mut state.arena, slots, touch, calibration };
    if let Some(run) = config.visit_shared(visitor) {
        return Ok(run?);
    }
    let mut allocator = config.build_timed(state.arena.take().expect("the arena is back between replays"))?;
    let slots = state.shared_slots.as_mut().expect("made above");
    let run = run_plain(&mut allocator, threaded, slots, touch, calibration);
    allocator.trim();
    state.arena = Some(allocator.into_arena());
    Ok(run)
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
    state.slots = Slots::placed(state.slot_count, line * 64 / size_of::<Slot>());
    Ok(())
}

/// One stage of a cell's timed passes.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Warm up and, unless already chosen, choose the replays per repetition.
    WarmUp,
    /// One timed repetition.
    Repetition,
    /// The latency pass.
    Latency {
        /// The timer.
        calibration: Calibration,
    },
}

/// One stage of one cell's timed passes, run on the allocator's type.
#[derive(Debug)]
pub struct TimedStage<'a> {
    /// The cell's steps.
    pub prepared: &'a Prepared,
    /// Warm-up count and touch.
    pub settings: &'a RunSettings,
    /// The cell's state between stages.
    pub state: &'a mut TimedCell,
    /// Which stage.
    pub stage: Stage,
}

impl Visitor for TimedStage<'_> {
    type Output = Result<(), RunError>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output {
        let steps = &self.prepared.steps;
        let touch = self.settings.touch;
        let state = self.state;
        let threaded = self.prepared.threaded.as_ref();
        // One timed replay of `steps`, or, for a cell on threads, of every
        // thread's program at once (a warm-up prefix applies to one thread).
        let once = |state: &mut TimedCell, steps: &[Step]| match threaded {
            Some(threaded) => timed_replay_threaded(config, state, threaded, touch, None).map(|run| run.seconds),
            None => timed_replay(config, state, steps, touch),
        };
        match self.stage {
            Stage::WarmUp => {
                fresh_arena(state)?;
                let warm_steps = match state.warmup_steps {
                    0 => &steps[..],
                    prefix => &steps[..prefix.min(steps.len())],
                };
                let mut warm = f64::INFINITY;
                for _ in 0..self.settings.warmup.max(1) {
                    warm = once(state, warm_steps)?;
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
                    total += once(state, steps)?;
                }
                state.seconds.push((total / state.passes as f64).max(1e-9));
                state.arena = None;
            }
            Stage::Latency { calibration } => {
                state.latency = Some(match threaded {
                    Some(threaded) => {
                        fresh_arena(state)?;
                        let run = timed_replay_threaded(config, state, threaded, touch, Some(calibration))?;
                        latency_of(&run.histograms.expect("a latency replay keeps its histograms"), calibration)
                    }
                    None => latency_pass(config, state, steps, touch, calibration)?,
                });
                state.arena = None;
                state.slots = Slots::new(0);
                state.shared_slots = None;
            }
        }
        Ok(())
    }
}

/// The latency pass: one more replay on a fresh arena, every call timed.
fn latency_pass<C: AllocatorConfig>(
    config: &C,
    state: &mut TimedCell,
    steps: &[Step],
    touch: Touch,
    calibration: Calibration,
) -> Result<Latency, RunError> {
    fresh_arena(state)?;
    let mut allocator = config.build_timed(state.arena.take().expect("a fresh arena"))?;
    let histogram = |_| Histogram::new(3).expect("3 significant figures are valid");
    let mut probe = LatencyProbe { calibration, histograms: PerKind::from_fn(histogram) };
    let Ok(_) = replay(&mut allocator, steps, &mut state.slots, touch, &mut probe);
    state.slots.release_all(&mut allocator);
    Ok(latency_of(&probe.histograms, calibration))
}

/// The latency spectrum of per-kind histograms.
fn latency_of(histograms: &PerKind<Histogram<u64>>, calibration: Calibration) -> Latency {
    let kinds = PerKind::from_fn(|kind| {
        let h = &histograms[kind];
        let spectrum = SPECTRUM.iter().map(|&p| (p, if h.is_empty() { 0 } else { h.value_at_percentile(p) })).collect();
        (h.len(), spectrum)
    });
    Latency { kinds, timer_overhead_ns: calibration.overhead_ns(), timer_granularity_ns: calibration.granularity_ns() }
}

/// The timed passes of one timing process: a warm-up of every cell, then
/// `plan.reps` rounds in which every cell runs one repetition. A slow spell
/// of a shared machine thus lands on every cell's spread rather than on the
/// one cell being timed. Stopped (`stop`), it returns the repetitions done.
pub fn time_cells(
    matrix: &Matrix,
    plan: &TimingPlan,
    stop: &AtomicBool,
    tick: Tick,
) -> Result<Vec<CellTimes>, RunError> {
    let cells = &matrix.cells;
    plan.fits(cells.len())?;
    let settings = &plan.settings;
    let mut states: Vec<TimedCell> = cells
        .iter()
        .enumerate()
        .map(|(index, cell)| {
            let mut state = TimedCell::new(cell, &matrix.workload(cell).prepared, plan.prefault[index]);
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
            let workload = matrix.workload(cell);
            tick(&format!(
                "{what}: {} on {}",
                crate::table::short_allocator(&cell.allocator.spec()),
                crate::table::short_workload(&workload.name)
            ));
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
        let outcome = pool.install(|| {
            cells.par_iter().zip(states.par_iter_mut()).try_for_each(|(cell, state)| {
                if stop.load(Ordering::Relaxed) {
                    return Err(RunError::Interrupted);
                }
                run_one(cell, state)
            })
        });
        match outcome {
            Ok(()) => Ok(true),
            Err(RunError::Interrupted) => Ok(false),
            Err(error) => Err(error),
        }
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
