//! What crosses a process boundary, both ends of it.
//!
//! **Timing processes.** The run sends a [`TimingPlan`] as JSON on the
//! child's stdin; the child (`heaplab timing-process`) writes one line per
//! cell it warms up or repeats (`tick<TAB>what`), then one with what it
//! measured (`times<TAB>[CellTimes…]` as JSON); errors go to the shared
//! stderr.
//!
//! **Turns** (`heaplab run --against`). The other build, run as `run --from
//! META --take-turns`, writes `ready` on stdout before each timed step and
//! takes the step when it reads `go` on stdin; the end of its input means
//! Ctrl-C.

use serde::{Deserialize, Serialize};

use heaplab_results::RunSettings;

use super::RunError;

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
    /// replay: about [`super::passes::MIN_REP_SECONDS`] of the trace's
    /// start when a replay takes longer (the arena is fresh for every
    /// repetition anyway; the warm-up is for code, predictors and clocks).
    /// `None`: whole replays.
    #[serde(default)]
    pub warmup_steps: Option<Vec<usize>>,
    /// Rounds this process runs.
    pub reps: usize,
    /// Repetitions the processes before this one ran: each repetition puts
    /// the slot table at its own place, and odd rounds run the matrix in
    /// reverse.
    pub first_rep: usize,
}

impl TimingPlan {
    /// Does the plan fit a matrix of `cells` cells?
    pub fn fits(&self, cells: usize) -> Result<(), RunError> {
        if self.prefault.len() != cells
            || self.passes.as_ref().is_some_and(|p| p.len() != cells)
            || self.warmup_steps.as_ref().is_some_and(|w| w.len() != cells)
        {
            let planned = self.prefault.len();
            return Err(RunError::Plan(format!(
                "a timing plan for {planned} cells does not fit this matrix of {cells}"
            )));
        }
        Ok(())
    }
}

/// What one timing process measured of one cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellTimes {
    /// Replays per repetition.
    pub passes: usize,
    /// Seconds per replay, one per repetition.
    pub seconds: Vec<f64>,
}

/// The first word of a timing process's progress lines.
pub const TICK: &str = "tick\t";
/// The first word of a timing process's answer.
pub const TIMES: &str = "times\t";
/// What the other build of `--against` says before each timed step.
pub const READY: &str = "ready";
/// What it is told to take the step.
pub const GO: &str = "go";

/// A line a timing process wrote, read by the run.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessLine {
    /// A cell was warmed up or repeated.
    Tick(String),
    /// What the process measured.
    Times(Vec<CellTimes>),
    /// Anything else (ignored).
    Other,
}

impl ProcessLine {
    /// Read one line; only the times can be malformed.
    pub fn parse(line: &str) -> Result<ProcessLine, serde_json::Error> {
        if let Some(what) = line.strip_prefix(TICK) {
            Ok(ProcessLine::Tick(what.to_string()))
        } else if let Some(json) = line.strip_prefix(TIMES) {
            serde_json::from_str(json).map(ProcessLine::Times)
        } else {
            Ok(ProcessLine::Other)
        }
    }

    /// The line for a tick.
    pub fn tick(what: &str) -> String {
        format!("{TICK}{what}")
    }

    /// The line for the answer.
    pub fn times(times: &[CellTimes]) -> String {
        format!("{TIMES}{}", serde_json::to_string(times).expect("times serialise"))
    }
}

/// How many timing processes a run uses, and how many rounds each runs:
/// the repetitions spread as evenly as they go.
pub fn rounds_per_process(settings: &RunSettings) -> Vec<usize> {
    let processes = settings.processes.clamp(1, settings.reps.max(1));
    (0..processes).map(|p| settings.reps / processes + usize::from(p < settings.reps % processes)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let times = vec![CellTimes { passes: 2, seconds: vec![0.5, 0.25] }];
        assert_eq!(ProcessLine::parse(&ProcessLine::times(&times)).unwrap(), ProcessLine::Times(times));
        assert_eq!(ProcessLine::parse(&ProcessLine::tick("round 1")).unwrap(), ProcessLine::Tick("round 1".into()));
        assert_eq!(ProcessLine::parse("hello").unwrap(), ProcessLine::Other);
        assert!(ProcessLine::parse("times\t[oops").is_err());
    }
}
