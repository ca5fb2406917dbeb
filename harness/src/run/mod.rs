//! `heaplab run`: the pipeline from validated settings to result rows.
//!
//! ```text
//! RunSettings ──RunPlan::new──▶ RunPlan ──prepare──▶ Matrix
//!   (matrix.rs: specs parsed; then every workload generated or read, and
//!    one Cell per allocator × prepared workload)
//!
//! Matrix ──RunContext::run──▶ CellResult per cell ──export──▶ rows
//!   1. metrics pass    (passes.rs, here, cells in parallel, untimed)
//!   2. timed passes    (passes.rs, through an Executor: executor.rs;
//!                       one TimingPlan per timing process: protocol.rs)
//!   3. latency pass    (passes.rs, here)
//! ```
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
//! current cell, starts no further timing process, and hands over every
//! cell with at least one timed repetition (the `reps` column says how
//! many). All workloads are prepared (generated, read, validated) before
//! anything runs, so a bad trace stops the run before any result file
//! exists.

mod error;
pub mod executor;
pub mod matrix;
pub mod passes;
pub mod protocol;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

pub use error::RunError;
pub use executor::{Executor, InProcess, Interleaved, Spawning, TakingTurns, serve_timing_plan};
pub use matrix::{Cell, DEFAULT_ARENA_BYTES, Matrix, PreparedWorkload, RunPlan, default_allocators, default_workloads};
pub use protocol::{CellTimes, TimingPlan, rounds_per_process};
use rayon::prelude::*;

use crate::export::CellResult;
use crate::metrics::Metrics;
use crate::timing::Calibration;
use passes::{MetricsPass, Stage, TimedCell, TimedStage};

/// Called once per step a timed pass finishes, with what it was.
pub type Tick<'a> = &'a (dyn Fn(&str) + Sync);

/// Progress reports from a run, for a progress bar.
pub trait Progress: Sync {
    /// `done` of `total` steps are finished; `what` is being worked on.
    fn update(&self, done: usize, total: usize, what: &str);
}

/// Shared flag set by Ctrl-C.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Cells handed over.
    pub finished: usize,
    /// Ctrl-C stopped it.
    pub interrupted: bool,
}

/// What a run needs besides the executor: the matrix, the timer for the
/// latency pass, Ctrl-C, and somewhere to report progress.
pub struct RunContext<'a> {
    /// The matrix.
    pub matrix: &'a Matrix,
    /// The timer, when the latency pass runs.
    pub calibration: Option<Calibration>,
    /// Polled between cells.
    pub stop: &'a AtomicBool,
    /// Told of every step.
    pub progress: &'a dyn Progress,
}

impl std::fmt::Debug for RunContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("cells", &self.matrix.cells.len())
            .field("calibration", &self.calibration)
            .finish_non_exhaustive()
    }
}

impl RunContext<'_> {
    fn interrupted(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Run the matrix: the metrics pass here, the timed repetitions through
    /// `executor` (one plan per timing process), the latency pass here.
    /// `finished` receives every cell as its passes complete, in matrix
    /// order.
    pub fn run(
        &self,
        executor: &mut dyn Executor,
        finished: &mut dyn FnMut(CellResult) -> Result<(), RunError>,
    ) -> Result<Outcome, RunError> {
        let settings = &self.matrix.settings;
        let cells = &self.matrix.cells;
        let timed = !settings.metrics_only;
        let rounds = rounds_per_process(settings);
        let total = cells.len() * if timed { 2 + rounds.len() + settings.reps } else { 1 };
        let done = AtomicUsize::new(0);
        let tick = |what: &str| {
            let count = done.fetch_add(1, Ordering::Relaxed) + 1;
            self.progress.update(count, total, what);
        };
        let Some(metrics) = self.metrics_pass(&tick)? else {
            return Ok(Outcome { finished: 0, interrupted: true });
        };
        let mut states: Vec<TimedCell> = cells
            .iter()
            .zip(&metrics)
            .map(|(cell, (metrics, _))| {
                TimedCell::new(cell, &self.matrix.workload(cell).prepared, metrics.peak_footprint_bytes as usize)
            })
            .collect();
        if timed {
            self.timed_passes(executor, &rounds, &mut states, &tick)?;
            // Interrupted: the repetitions done so far stand (their count is
            // in the `reps` column); no latency pass.
            executor.after_timing()?;
            let calibration = if settings.latency && !self.interrupted() { self.calibration } else { None };
            self.latency_pass(calibration, &mut states, &tick)?;
        }
        let mut count = 0;
        for ((cell, (metrics, metrics_seconds)), state) in cells.iter().zip(metrics).zip(states) {
            if timed && state.result.is_none() {
                continue;
            }
            let workload = self.matrix.workload(cell);
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
            count += 1;
        }
        Ok(Outcome { finished: count, interrupted: self.interrupted() })
    }

    /// 1. The metrics pass of every cell, in parallel, with its wall time;
    ///    `None` when interrupted.
    fn metrics_pass(&self, tick: Tick) -> Result<Option<Vec<(Metrics, f64)>>, RunError> {
        let settings = &self.matrix.settings;
        let metrics: Result<Vec<(Metrics, f64)>, RunError> = self
            .matrix
            .cells
            .par_iter()
            .map(|cell| {
                if self.interrupted() {
                    return Err(RunError::Interrupted);
                }
                let workload = self.matrix.workload(cell);
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
        match metrics {
            Ok(metrics) => Ok(Some(metrics)),
            Err(_) if self.interrupted() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// 2. The repetitions, process by process; the first fixes the replays
    ///    per repetition and the warm-up of each cell for the others.
    fn timed_passes(
        &self,
        executor: &mut dyn Executor,
        rounds: &[usize],
        states: &mut [TimedCell],
        tick: Tick,
    ) -> Result<(), RunError> {
        let cells = &self.matrix.cells;
        let mut plan = TimingPlan {
            settings: self.matrix.settings.clone(),
            prefault: states.iter().map(|s| s.prefault_bytes).collect(),
            passes: None,
            warmup_steps: None,
            reps: 0,
            first_rep: 0,
        };
        for (process, &reps) in rounds.iter().enumerate() {
            if self.interrupted() {
                break;
            }
            plan.reps = reps;
            let times = executor.execute(&plan, process, tick)?;
            if times.is_empty() && self.interrupted() {
                break;
            }
            if times.len() != cells.len() {
                return Err(RunError::Protocol {
                    process,
                    what: format!("returned {} cells of {}", times.len(), cells.len()),
                });
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
                        .zip(states.iter())
                        .map(|(cell, state)| state.warmup_steps_after(self.matrix.workload(cell).prepared.steps.len()))
                        .collect(),
                );
            }
            plan.first_rep += reps;
        }
        Ok(())
    }

    /// 3. The latency pass (when calibrated) and the throughput summary of
    ///    every cell with at least one repetition.
    fn latency_pass(
        &self,
        calibration: Option<Calibration>,
        states: &mut [TimedCell],
        tick: Tick,
    ) -> Result<(), RunError> {
        let settings = &self.matrix.settings;
        for (cell, state) in self.matrix.cells.iter().zip(states.iter_mut()) {
            if !state.seconds.is_empty() {
                let workload = self.matrix.workload(cell);
                let stage = Stage::Finish { calibration };
                cell.allocator.visit(TimedStage { prepared: &workload.prepared, settings, state, stage })?;
                tick(&format!("latency: {} on {}", cell.allocator.spec(), workload.name));
            }
        }
        Ok(())
    }
}
