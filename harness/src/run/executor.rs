//! Where the timed repetitions run: every [`Executor`], both ends of the
//! timing-process protocol, and the turn-taking of `--against`.
//!
//! - [`InProcess`]: in this process (`--processes 1`).
//! - [`Spawning`]: each plan in a fresh `heaplab timing-process`, whose
//!   end of the protocol is [`serve_timing_plan`].
//! - [`TakingTurns`]: the other build's side of `--against`, around one of
//!   the above: it asks for each timed step and waits to be let.
//! - [`Interleaved`]: this build's side of `--against`: it lets the other
//!   build take its steps in ABBA order between its own.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::matrix::{Matrix, RunPlan};
use super::passes::time_cells;
use super::protocol::{CellTimes, GO, ProcessLine, READY, TimingPlan};
use super::{RunError, Tick};

/// Runs a [`TimingPlan`] somewhere: in this process ([`InProcess`]) or in a
/// fresh one ([`Spawning`]), possibly in turns with another build.
pub trait Executor {
    /// Run `plan` as timing process number `process`, calling `tick` once
    /// per cell warmed up or repeated. An interrupted plan returns what it
    /// measured so far (possibly nothing).
    fn execute(&mut self, plan: &TimingPlan, process: usize, tick: Tick) -> Result<Vec<CellTimes>, RunError>;

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
    pub matrix: &'a Matrix,
    /// Polled between cells.
    pub stop: &'a AtomicBool,
}

impl Executor for InProcess<'_> {
    fn execute(&mut self, plan: &TimingPlan, _process: usize, tick: Tick) -> Result<Vec<CellTimes>, RunError> {
        time_cells(self.matrix, plan, self.stop, tick)
    }
}

/// Runs each timing plan in a fresh process: the plan goes in on stdin as
/// JSON; progress lines and the measured times come back on stdout (see
/// [`super::protocol`]); errors go straight to the terminal on the shared
/// stderr.
pub struct Spawning<'a> {
    /// Set by Ctrl-C, which the child receives too: it stops after its
    /// current cell and returns what it measured.
    stop: &'a AtomicBool,
    /// The command that serves one plan.
    command: Box<dyn Fn() -> io::Result<Command> + 'a>,
}

impl fmt::Debug for Spawning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawning").field("stop", &self.stop).finish_non_exhaustive()
    }
}

impl<'a> Spawning<'a> {
    /// Timing processes that are this heaplab (`heaplab timing-process`).
    pub fn heaplab(stop: &'a AtomicBool) -> Spawning<'a> {
        Spawning::command(stop, || {
            let exe = std::env::current_exe()
                .map_err(|e| io::Error::other(format!("cannot find heaplab's own executable: {e}")))?;
            let mut command = Command::new(exe);
            command.arg("timing-process");
            Ok(command)
        })
    }

    /// Timing processes started by `command`.
    pub fn command(stop: &'a AtomicBool, command: impl Fn() -> io::Result<Command> + 'a) -> Spawning<'a> {
        Spawning { stop, command: Box::new(command) }
    }
}

impl Executor for Spawning<'_> {
    fn execute(&mut self, plan: &TimingPlan, process: usize, tick: Tick) -> Result<Vec<CellTimes>, RunError> {
        // Interrupted between processes: a new one would not have seen Ctrl-C.
        if self.stop.load(Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        let failed = |what: String| RunError::Protocol { process, what };
        let mut child = (self.command)()
            .and_then(|mut command| {
                command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()
            })
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
                match ProcessLine::parse(&line).map_err(|e| failed(format!("unreadable times: {e}")))? {
                    ProcessLine::Tick(what) => tick(&what),
                    ProcessLine::Times(measured) => times = Some(measured),
                    ProcessLine::Other => {}
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

/// The timing process's end of the protocol (`heaplab timing-process`):
/// read one plan from `input`, prepare the same matrix, run the plan, and
/// write progress and the times to `output`.
pub fn serve_timing_plan(mut input: impl Read, output: impl Write + Send, stop: &AtomicBool) -> Result<(), RunError> {
    let mut text = String::new();
    input.read_to_string(&mut text)?;
    let plan: TimingPlan = serde_json::from_str(&text)
        .map_err(|e| RunError::Plan(format!("stdin:{}: expected a timing plan: {e}", e.line())))?;
    // A plan from a newer heaplab (`--against` it) with a setting this
    // build does not know would be timed as something else.
    let written: serde_json::Value = serde_json::from_str(&text).expect("parsed once already");
    if let Some(setting) = plan.settings.unknown_in(&written["settings"]) {
        return Err(RunError::Plan(format!(
            "the timing plan has the setting `{setting}`, which this heaplab does not know; time it with a build that does"
        )));
    }
    let matrix = RunPlan::new(plan.settings.clone())?.prepare()?;
    let output = Mutex::new(output);
    let tick = |what: &str| {
        let mut out = output.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A parent that went away has nobody to tell; the times would be lost
        // as well, so there is nothing better to do than carry on.
        let _ = writeln!(out, "{}", ProcessLine::tick(what));
        let _ = out.flush();
    };
    let times = time_cells(&matrix, &plan, stop, &tick)?;
    let mut out = output.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    writeln!(out, "{}", ProcessLine::times(&times))?;
    out.flush()?;
    Ok(())
}

/// The other side of `--against`: asks for a turn before each timed step
/// ([`READY`] on `output`) and takes it when told ([`GO`] on `input`). The
/// parent gone (end of input) counts as Ctrl-C.
pub struct TakingTurns<'a, R, W> {
    inner: &'a mut dyn Executor,
    stop: &'a AtomicBool,
    input: R,
    output: W,
}

impl<R, W> fmt::Debug for TakingTurns<'_, R, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TakingTurns").field("stop", &self.stop).finish_non_exhaustive()
    }
}

impl<'a, R: BufRead, W: Write> TakingTurns<'a, R, W> {
    /// Take turns around `inner`, told by `input`, asking on `output`.
    pub fn new(inner: &'a mut dyn Executor, stop: &'a AtomicBool, input: R, output: W) -> TakingTurns<'a, R, W> {
        TakingTurns { inner, stop, input, output }
    }

    /// Whether the turn came; not when interrupted, or when the parent
    /// went away (which then counts as Ctrl-C).
    fn wait_for_turn(&mut self) -> bool {
        if self.stop.load(Ordering::SeqCst) {
            return false;
        }
        let asked = writeln!(self.output, "{READY}").and_then(|()| self.output.flush());
        let mut line = String::new();
        let answered = asked.and_then(|()| self.input.read_line(&mut line));
        if !matches!(answered, Ok(n) if n > 0) || line.trim() != GO {
            self.stop.store(true, Ordering::SeqCst);
        }
        !self.stop.load(Ordering::SeqCst)
    }
}

impl<R: BufRead, W: Write> Executor for TakingTurns<'_, R, W> {
    fn execute(&mut self, plan: &TimingPlan, process: usize, tick: Tick) -> Result<Vec<CellTimes>, RunError> {
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
pub struct Interleaved<'a, R, W> {
    inner: &'a mut dyn Executor,
    stop: &'a AtomicBool,
    /// The other build, as messages name it.
    other: String,
    /// The child process, if it is one; `None` once waited for.
    child: Option<Child>,
    /// `None` once closed, which the child takes as Ctrl-C.
    to_child: Option<W>,
    from_child: R,
    /// The child is waiting for `go`.
    idle: bool,
    /// The child's output ended: it has finished or failed.
    ended: bool,
    /// Turns the child has taken.
    turns: usize,
}

impl<R, W> fmt::Debug for Interleaved<'_, R, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interleaved")
            .field("other", &self.other)
            .field("idle", &self.idle)
            .field("ended", &self.ended)
            .field("turns", &self.turns)
            .finish_non_exhaustive()
    }
}

impl<'a> Interleaved<'a, BufReader<ChildStdout>, ChildStdin> {
    /// Start `exe run --from META --take-turns`, writing OUT/NAME.
    pub fn spawn(
        exe: &Path,
        meta: &Path,
        name: &str,
        out: &Path,
        inner: &'a mut dyn Executor,
        stop: &'a AtomicBool,
    ) -> Result<Self, RunError> {
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
            .map_err(|e| RunError::OtherBuild(format!("starting the other build, {}: {e}", exe.display())))?;
        let to_child = child.stdin.take().expect("stdin is piped");
        let from_child = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut interleaved = Interleaved::over(from_child, to_child, &exe.display().to_string(), inner, stop);
        interleaved.child = Some(child);
        Ok(interleaved)
    }
}

impl<'a, R: BufRead, W: Write> Interleaved<'a, R, W> {
    /// Take turns with another build that reads `to_child` and writes
    /// `from_child`.
    pub fn over(
        from_child: R,
        to_child: W,
        other: &str,
        inner: &'a mut dyn Executor,
        stop: &'a AtomicBool,
    ) -> Interleaved<'a, R, W> {
        Interleaved {
            inner,
            stop,
            other: other.to_string(),
            child: None,
            to_child: Some(to_child),
            from_child,
            idle: false,
            ended: false,
            turns: 0,
        }
    }

    fn broken(&self, error: io::Error) -> RunError {
        RunError::OtherBuild(format!("taking turns with the other build ({}): {error}", self.other))
    }

    /// Wait until the child asks for a turn or ends.
    fn wait_idle(&mut self) -> Result<(), RunError> {
        if self.idle || self.ended {
            return Ok(());
        }
        let mut line = String::new();
        match self.from_child.read_line(&mut line) {
            Ok(0) => self.ended = true,
            Ok(_) if line.trim() == READY => self.idle = true,
            Ok(_) => {
                return Err(RunError::OtherBuild(format!(
                    "{} does not take turns (it said `{}`); it must be a heaplab that knows --against",
                    self.other,
                    line.trim()
                )));
            }
            Err(error) => return Err(self.broken(error)),
        }
        Ok(())
    }

    /// Let the child run its next timed step (unless interrupted).
    fn child_turn(&mut self) -> Result<(), RunError> {
        self.wait_idle()?;
        if self.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if self.ended && self.turns == 0 {
            return Err(RunError::OtherBuild(format!(
                "the other build ({}) stopped before its first timed step; its message is above",
                self.other
            )));
        }
        if let (false, Some(to_child)) = (self.ended, self.to_child.as_mut()) {
            let sent = writeln!(to_child, "{GO}").and_then(|()| to_child.flush());
            sent.map_err(|error| self.broken(error))?;
            self.idle = false;
            self.turns += 1;
        }
        Ok(())
    }

    /// Wait for the child to end. Interrupted, the child is told so (its
    /// input closes) and stops as this run did.
    pub fn finish(mut self, interrupted: bool) -> Result<(), RunError> {
        if !interrupted {
            while !self.ended && !self.stop.load(Ordering::SeqCst) {
                self.child_turn()?;
                self.wait_idle()?;
            }
        }
        self.to_child = None;
        if let Some(mut child) = self.child.take() {
            let status = child.wait()?;
            if !status.success() && !interrupted {
                return Err(RunError::OtherBuild(format!(
                    "the other build ({}) failed: {status}; its message is above",
                    self.other
                )));
            }
        }
        Ok(())
    }
}

impl<R, W> Drop for Interleaved<'_, R, W> {
    /// On an error path: the child is not waited for by `finish`.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl<R: BufRead, W: Write> Executor for Interleaved<'_, R, W> {
    fn execute(&mut self, plan: &TimingPlan, process: usize, tick: Tick) -> Result<Vec<CellTimes>, RunError> {
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

/// A stand-in for timing processes, for tests of the pipeline: fake,
/// deterministic times, every call written to a shared log.
#[cfg(test)]
pub mod mock {
    use super::*;

    /// What a [`Mock`] does besides answering.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Script {
        /// This process fails (as a timing process that exits without
        /// reporting its times).
        pub fail_at: Option<usize>,
        /// Ctrl-C arrives during this process, after its first round.
        pub interrupt_at: Option<usize>,
    }

    /// An executor that measures nothing: cell `i` of process `p`, round
    /// `r` "takes" [`Mock::seconds`]`(i, first_rep + r)`.
    #[derive(Debug)]
    pub struct Mock<'a> {
        /// Its name in the log (`A`, `B`).
        pub side: &'static str,
        /// `A0`, `B3`: every plan executed, in order, across threads.
        pub log: &'a Mutex<Vec<String>>,
        /// Set when the script interrupts.
        pub stop: &'a AtomicBool,
        /// What else happens.
        pub script: Script,
        /// Every plan it was given.
        pub plans: Vec<TimingPlan>,
    }

    impl Mock<'_> {
        /// The fake seconds per replay of cell `cell` in repetition `rep`.
        pub fn seconds(cell: usize, rep: usize) -> f64 {
            0.001 * (cell + 1) as f64 * (1.0 + rep as f64 / 64.0)
        }
    }

    impl Executor for Mock<'_> {
        fn execute(&mut self, plan: &TimingPlan, process: usize, tick: Tick) -> Result<Vec<CellTimes>, RunError> {
            self.log.lock().unwrap().push(format!("{}{process}", self.side));
            self.plans.push(plan.clone());
            if self.script.fail_at == Some(process) {
                return Err(RunError::Protocol {
                    process,
                    what: "exited with exit status: 3 before reporting its times".to_string(),
                });
            }
            let rounds = if self.script.interrupt_at == Some(process) {
                self.stop.store(true, Ordering::SeqCst);
                plan.reps.min(1)
            } else {
                plan.reps
            };
            let cells = plan.prefault.len();
            (0..cells).for_each(|cell| tick(&format!("warm-up: cell {cell}")));
            for round in 0..rounds {
                (0..cells).for_each(|cell| tick(&format!("round {}: cell {cell}", round + 1)));
            }
            Ok((0..cells)
                .map(|cell| CellTimes {
                    passes: plan.passes.as_ref().map_or(cell + 1, |passes| passes[cell]),
                    seconds: (0..rounds).map(|round| Mock::seconds(cell, plan.first_rep + round)).collect(),
                })
                .collect())
        }
    }
}
