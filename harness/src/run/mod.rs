//! `heaplab run`: the pipeline from validated settings to result rows.
//!
//! ```text
//! RunSettings ──RunPlan::new──▶ RunPlan ──prepare──▶ Matrix
//!   (matrix.rs: specs parsed; then every workload generated or read, and
//!    one Cell per allocator × prepared workload)
//!
//! Matrix ──RunContext::run──▶ Done ──Done::results──▶ CellResult ──export──▶ rows
//!   1. metrics pass    (passes.rs, here, cells in parallel, untimed)
//!   2. timed passes    (passes.rs, through an Executor: executor.rs;
//!                       one TimingPlan per timing process: protocol.rs)
//!   3. latency pass    (passes.rs, here)
//!   each pass, as it finishes, into Done and the journal (journal.rs),
//!   from which `--resume` goes on and a killed run is repaired
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
//! current cell and starts no further timing process; every finished pass
//! stands (the `reps` column says how many repetitions a cell has). All workloads are prepared (generated, read, validated) before
//! anything runs, so a bad trace stops the run before any result file
//! exists.

mod error;
pub mod executor;
pub mod journal;
pub mod matrix;
pub mod passes;
pub mod protocol;
pub mod shard;
#[cfg(test)]
mod tests;
pub mod threads;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

pub use error::RunError;
pub use executor::{Executor, InProcess, Interleaved, Spawning, TakingTurns, serve_timing_plan};
pub use matrix::{Cell, DEFAULT_ARENA_BYTES, Matrix, PreparedWorkload, RunPlan, default_allocators, default_workloads};
pub use protocol::{CellTimes, TimingPlan, rounds_per_process};
use rayon::prelude::*;

use heaplab_results::RunSettings;
pub use journal::{Done, Journal, JournalError};
use journal::{MetricsDone, Record, RowsText, TimingDone};

use crate::export::{CellName, MetricsRows};
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

/// How a run ended: what is finished, of what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Ctrl-C stopped it.
    pub interrupted: bool,
    /// Cells whose metrics pass finished, and cells.
    pub metrics: (usize, usize),
    /// Timed repetitions done, and asked (cells × reps).
    pub reps: (usize, usize),
    /// Latency passes done, and asked.
    pub latency: (usize, usize),
}

impl Outcome {
    /// What `done` holds of the run `settings` ask for.
    pub fn of(done: &Done, settings: &RunSettings, interrupted: bool) -> Outcome {
        let cells = done.metrics.len();
        let timed = !settings.metrics_only;
        Outcome {
            interrupted,
            metrics: (done.metrics.iter().flatten().count(), cells),
            reps: (done.reps(), if timed { cells * settings.reps } else { 0 }),
            latency: (done.latency.iter().flatten().count(), if settings.latency { cells } else { 0 }),
        }
    }

    /// Is everything asked for done?
    pub fn complete(&self) -> bool {
        !self.interrupted && [self.metrics, self.reps, self.latency].iter().all(|(done, asked)| done >= asked)
    }

    /// `84 of 84 metrics passes, 120 of 588 timed repetitions, …`.
    pub fn counts(&self) -> String {
        let mut parts = vec![format!("{} of {} metrics passes", self.metrics.0, self.metrics.1)];
        if self.reps.1 > 0 {
            parts.push(format!("{} of {} timed repetitions", self.reps.0, self.reps.1));
        }
        if self.latency.1 > 0 {
            parts.push(format!("{} of {} latency passes", self.latency.0, self.latency.1));
        }
        parts.join(", ")
    }
}

/// What a run needs besides the executor: the matrix, the timer for the
/// latency pass, Ctrl-C, somewhere to report progress, and the journal.
pub struct RunContext<'a> {
    /// The matrix.
    pub matrix: &'a Matrix,
    /// The timer, when the latency pass runs.
    pub calibration: Option<Calibration>,
    /// Polled between cells.
    pub stop: &'a AtomicBool,
    /// Told of every step.
    pub progress: &'a dyn Progress,
    /// Where each finished pass is recorded as it finishes (`None`: kept
    /// in memory only).
    pub journal: Option<&'a Journal>,
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

    /// Journal `record`; where it starts in the journal, if there is one.
    fn journal(&self, record: Record) -> Result<Option<u64>, RunError> {
        match self.journal {
            Some(journal) => journal.append(&record).map(Some).map_err(RunError::Io),
            None => Ok(None),
        }
    }

    /// Run what `done` does not hold yet: the metrics passes here, the
    /// timed repetitions through `executor` (one plan per timing process),
    /// the latency passes here. Each finished pass goes into `done` (and
    /// the journal) as it finishes; the results files are made from `done`
    /// ([`Done::results`]).
    pub fn run(&self, executor: &mut dyn Executor, done: &mut Done) -> Result<Outcome, RunError> {
        let settings = &self.matrix.settings;
        let cells = &self.matrix.cells;
        if cells.is_empty() {
            // An empty shard: nothing to measure, and no process to start.
            return Ok(Outcome::of(done, settings, false));
        }
        let timed = !settings.metrics_only;
        let rounds = rounds_per_process(settings);
        let processes_left = rounds.len().saturating_sub(done.complete_processes());
        let reps_left: usize = rounds.iter().skip(done.complete_processes()).sum();
        let latency_left = if settings.latency { done.latency.iter().filter(|l| l.is_none()).count() } else { 0 };
        let total = done.metrics.iter().filter(|m| m.is_none()).count()
            + if timed { cells.len() * (processes_left + reps_left) + latency_left } else { 0 };
        let finished = AtomicUsize::new(0);
        let tick = |what: &str| {
            let count = finished.fetch_add(1, Ordering::Relaxed) + 1;
            self.progress.update(count, total, what);
        };
        self.metrics_pass(done, &tick)?;
        if timed && !self.interrupted() {
            let mut states: Vec<TimedCell> = cells
                .iter()
                .zip(&done.metrics)
                .map(|(cell, metrics)| {
                    let prefault = metrics.as_ref().expect("every metrics pass finished").prefault_bytes;
                    TimedCell::new(cell, &self.matrix.workload(cell).prepared, prefault)
                })
                .collect();
            self.timed_passes(executor, &rounds, &mut states, done, &tick)?;
            // Interrupted: the repetitions done so far stand (their count is
            // in the `reps` column); no latency pass.
            executor.after_timing()?;
            if let Some(calibration) = self.calibration.filter(|_| settings.latency && !self.interrupted()) {
                self.latency_pass(calibration, &mut states, done, &tick)?;
            }
        }
        Ok(Outcome::of(done, settings, self.interrupted()))
    }

    /// 1. The metrics pass of every cell not yet done, in parallel, each
    ///    journaled as it ends.
    fn metrics_pass(&self, done: &mut Done, tick: Tick) -> Result<(), RunError> {
        let settings = &self.matrix.settings;
        let todo: Vec<usize> = (0..self.matrix.cells.len()).filter(|&i| done.metrics[i].is_none()).collect();
        let finished: Vec<Result<Option<(usize, MetricsDone)>, RunError>> = todo
            .par_iter()
            .map(|&index| {
                if self.interrupted() {
                    return Ok(None);
                }
                let cell = &self.matrix.cells[index];
                let workload = self.matrix.workload(cell);
                let started = Instant::now();
                let metrics = cell
                    .allocator
                    .visit(MetricsPass { prepared: &workload.prepared, arena_bytes: cell.arena_bytes, settings })
                    .map_err(|error| match error {
                        RunError::Verify { allocator, error, .. } => {
                            RunError::Verify { allocator, workload: workload.name.clone(), error }
                        }
                        other => other,
                    })?;
                let spec = cell.allocator.spec();
                let name = CellName {
                    allocator: &spec,
                    workload: &workload.name,
                    seed: workload.seed,
                    threads: workload.threads,
                    remote_free_pct: workload.prepared.threaded.as_ref().map(|t| t.remote_free_pct()),
                    arena_bytes: cell.arena_bytes,
                    counts: workload.prepared.counts,
                };
                let mut metrics_done = MetricsDone {
                    rows: MetricsRows::new(name, &metrics, started.elapsed().as_secs_f64()),
                    journal_at: None,
                    prefault_bytes: metrics.peak_footprint_bytes as usize,
                    steps: workload.prepared.steps.len(),
                };
                drop(metrics);
                metrics_done.journal_at = self.journal(Record::Metrics {
                    cell: index,
                    prefault_bytes: metrics_done.prefault_bytes,
                    steps: metrics_done.steps,
                    rows: RowsText::new(&metrics_done.rows),
                })?;
                if metrics_done.journal_at.is_some() {
                    // The journal holds them now: a sweep of any size keeps
                    // only its summary rows in memory.
                    let rows = &mut metrics_done.rows;
                    (rows.series, rows.details, rows.heapmap) = (Vec::new(), Vec::new(), Vec::new());
                }
                tick(&format!(
                    "metrics: {} on {}",
                    crate::table::short_allocator(&spec),
                    crate::table::short_workload(&workload.name)
                ));
                Ok(Some((index, metrics_done)))
            })
            .collect();
        // What finished stands, even when another cell failed.
        let mut failure = None;
        for result in finished {
            match result {
                Ok(Some((index, metrics))) => done.metrics[index] = Some(metrics),
                Ok(None) => {}
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// 2. The repetitions, process by process; the first fixes the replays
    ///    per repetition and the warm-up of each cell for the others.
    ///    Processes `done` holds are not run again.
    fn timed_passes(
        &self,
        executor: &mut dyn Executor,
        rounds: &[usize],
        states: &mut [TimedCell],
        done: &mut Done,
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
            let times = match done.timing.get(process) {
                Some(finished) => finished.cells.clone(),
                None => {
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
                    let complete = times.iter().all(|t| t.seconds.len() == reps);
                    self.journal(Record::Timing { process, complete, cells: times.clone() })?;
                    done.timing.push(TimingDone { complete, cells: times.clone() });
                    times
                }
            };
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

    /// 3. The latency pass of every cell with a repetition and no latency
    ///    pass yet, each journaled as it ends.
    fn latency_pass(
        &self,
        calibration: Calibration,
        states: &mut [TimedCell],
        done: &mut Done,
        tick: Tick,
    ) -> Result<(), RunError> {
        let settings = &self.matrix.settings;
        for (index, (cell, state)) in self.matrix.cells.iter().zip(states.iter_mut()).enumerate() {
            if state.seconds.is_empty() || done.latency[index].is_some() {
                continue;
            }
            if self.interrupted() {
                break;
            }
            let workload = self.matrix.workload(cell);
            let stage = Stage::Latency { calibration };
            cell.allocator.visit(TimedStage { prepared: &workload.prepared, settings, state, stage })?;
            let latency = state.latency.take().expect("the latency pass sets it");
            self.journal(Record::latency(index, &latency))?;
            done.latency[index] = Some(latency);
            tick(&format!(
                "latency: {} on {}",
                crate::table::short_allocator(&cell.allocator.spec()),
                crate::table::short_workload(&workload.name)
            ));
        }
        Ok(())
    }
}
