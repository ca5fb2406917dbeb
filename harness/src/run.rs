//! `heaplab run`: the run matrix, its three passes per cell, and the
//! bookkeeping around them.
//!
//! A *cell* is one (allocator, workload, seed). For each cell:
//! 1. the **metrics pass** replays once on a fresh arena and computes every
//!    fragmentation figure; cells run in parallel (rayon), since nothing is
//!    timed;
//! 2. the **throughput pass** replays `warmup + reps` times, timing each
//!    whole replay; the arena is reused between repetitions (a new allocator
//!    on it each time), so page faults are paid in the warm-up, not measured;
//! 3. the **latency pass** replays once more, timing every allocator call.
//!
//! Timed passes run one cell at a time unless `jobs` says otherwise. All
//! workloads are prepared (generated, read, validated) before anything runs,
//! so a bad trace stops the run before any result file exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use heaplab_core::{Allocator, AllocatorConfig, Arena, BuildError};
use heaplab_workloads::{OpKind, TraceError, Workload};
use rayon::prelude::*;

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
        .and_then(Arena::new)
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
        let mut probe = MetricsProbe::new(steps.len(), self.settings.points, self.settings.verify);
        let mut slots = Slots::new(self.prepared.slots);
        let outcome = replay(&mut allocator, steps, &mut slots, self.settings.touch, &mut probe)
            .map_err(|error| RunError::Verify { allocator: config.spec(), workload: String::new(), error })?;
        Ok(probe.finish(allocator.stats(), outcome.failed_reallocs, outcome.skipped))
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

/// The timed passes of one cell.
struct TimedPasses<'a> {
    prepared: &'a Prepared,
    arena_bytes: u64,
    settings: &'a RunSettings,
    calibration: Option<Calibration>,
}

impl Visitor for TimedPasses<'_> {
    type Output = Result<Timed, RunError>;

    fn visit<C: AllocatorConfig>(self, config: &C) -> Self::Output {
        let steps = &self.prepared.steps;
        let mut slots = Slots::new(self.prepared.slots);
        let mut arena = arena(self.arena_bytes)?;
        // One timed replay on a fresh allocator over the reused arena;
        // building, releasing leftovers and trimming are not timed.
        let mut timed_replay = |arena: Arena| -> Result<(f64, Arena), RunError> {
            let mut allocator = config.build(arena)?;
            let start = Instant::now();
            let Ok(_) = replay(&mut allocator, steps, &mut slots, self.settings.touch, &mut Nothing);
            let elapsed = start.elapsed().as_secs_f64();
            slots.release_all(&mut allocator);
            allocator.trim();
            Ok((elapsed, allocator.into_arena()))
        };
        let mut warm = f64::INFINITY;
        for _ in 0..self.settings.warmup.max(1) {
            let (elapsed, back) = timed_replay(arena)?;
            arena = back;
            warm = elapsed;
        }
        // Short replays are noise-dominated: a repetition replays the trace
        // `passes` times back to back so that it lasts at least MIN_REP_SECONDS.
        let passes = ((MIN_REP_SECONDS / warm.max(1e-9)).ceil() as usize).clamp(1, MAX_PASSES);
        let mut seconds = Vec::with_capacity(self.settings.reps);
        for _ in 0..self.settings.reps {
            let mut total = 0.0;
            for _ in 0..passes {
                let (elapsed, back) = timed_replay(arena)?;
                arena = back;
                total += elapsed;
            }
            seconds.push((total / passes as f64).max(1e-9));
        }
        let ops = steps.len() as f64;
        let mut rates: Vec<f64> = seconds.iter().map(|s| ops / s).collect();
        let (low, high, coverage) = median_interval(&rates, INTERVAL_LEVEL);
        let throughput = Throughput {
            passes,
            median: median(&mut rates),
            low,
            high,
            level_pct: 100.0 * coverage,
            min: rates.first().copied().unwrap_or(f64::NAN),
            max: rates.last().copied().unwrap_or(f64::NAN),
            seconds,
        };
        let latency = match self.calibration {
            Some(calibration) => {
                let mut allocator = config.build(arena)?;
                let histogram = || Histogram::new(3).expect("3 significant figures are valid");
                let mut probe = LatencyProbe { calibration, histograms: [histogram(), histogram(), histogram()] };
                let Ok(_) = replay(&mut allocator, steps, &mut slots, self.settings.touch, &mut probe);
                slots.release_all(&mut allocator);
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
        Ok((throughput, latency))
    }
}

/// Progress reports from a run, for a progress bar.
pub trait Progress: Sync {
    /// `done` of `total` steps are finished; `what` is being worked on.
    fn update(&self, done: usize, total: usize, what: &str);
}

/// Run the matrix. `finished` receives every cell as its passes complete, in
/// matrix order; `stop` is polled between cells (Ctrl-C). Returns the number
/// of cells finished.
pub fn run_cells(
    cells: &[Cell],
    workloads: &[PreparedWorkload],
    settings: &RunSettings,
    calibration: Option<Calibration>,
    stop: &AtomicBool,
    progress: &dyn Progress,
    finished: &mut dyn FnMut(CellResult) -> Result<(), RunError>,
) -> Result<usize, RunError> {
    let timed = !settings.metrics_only;
    let total = cells.len() * if timed { 2 } else { 1 };
    let done = std::sync::atomic::AtomicUsize::new(0);
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
            let count = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress.update(count, total, &format!("metrics: {} on {}", cell.allocator.spec(), workload.name));
            result.map(|metrics| (metrics, started.elapsed().as_secs_f64()))
        })
        .collect();
    // 2. and 3. Timed passes, `jobs` cells at a time, in matrix order.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.jobs.max(1))
        .build()
        .map_err(|e| RunError::Io(std::io::Error::other(e)))?;
    let mut finished_count = 0;
    let mut metrics = metrics.into_iter();
    for chunk in cells.chunks(settings.jobs.max(1)) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let chunk_metrics: Vec<Result<(Metrics, f64), RunError>> = metrics.by_ref().take(chunk.len()).collect();
        let timings: Vec<Result<Option<Timed>, RunError>> = pool.install(|| {
            chunk
                .par_iter()
                .map(|cell| {
                    if !timed {
                        return Ok(None);
                    }
                    let workload = &workloads[cell.workload];
                    progress.update(
                        done.load(Ordering::Relaxed),
                        total,
                        &format!("timing: {} on {}", cell.allocator.spec(), workload.name),
                    );
                    let result = cell.allocator.visit(TimedPasses {
                        prepared: &workload.prepared,
                        arena_bytes: cell.arena_bytes,
                        settings,
                        calibration: if settings.latency { calibration } else { None },
                    });
                    done.fetch_add(1, Ordering::Relaxed);
                    result.map(Some)
                })
                .collect()
        });
        for ((cell, metrics), timing) in chunk.iter().zip(chunk_metrics).zip(timings) {
            let (metrics, metrics_seconds) = metrics?;
            let timing = timing?;
            let workload = &workloads[cell.workload];
            let (throughput, latency) = match timing {
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

/// The default suite's workloads: every preset.
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
    workloads
}

/// Shared flag set by Ctrl-C.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}
