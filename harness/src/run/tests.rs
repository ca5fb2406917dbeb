//! The whole pipeline, matrix → passes → rows, driven through a mock
//! executor with fake timings; and the protocol's ends with real pipes and
//! processes.

use std::io::BufReader;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use heaplab_results::{CellRows, RunSettings, SETTINGS_VERSION, Touch};

use super::executor::mock::{Mock, Script};
use super::protocol::ProcessLine;
use super::*;

struct Silent;

impl Progress for Silent {
    fn update(&self, _done: usize, _total: usize, _what: &str) {}
}

fn settings(reps: usize, processes: usize) -> RunSettings {
    RunSettings {
        settings_version: SETTINGS_VERSION,
        allocators: vec!["bump".into(), "buddy".into()],
        workloads: vec!["larson:ops=400".into()],
        seeds: vec![1, 2],
        reps,
        warmup: 1,
        arena_bytes: Some(1 << 20),
        align: 16,
        touch: Touch::None,
        latency: false,
        metrics_only: false,
        verify: false,
        points: 10,
        frames: 0,
        jobs: 1,
        processes,
        shard: None,
        threads: Vec::new(),
        lenient: false,
        exec: None,
    }
}

fn matrix(settings: RunSettings) -> Matrix {
    RunPlan::new(settings).unwrap().prepare().unwrap()
}

/// Run `matrix` through `executor`; the rows of every cell that has any.
fn run(matrix: &Matrix, stop: &AtomicBool, executor: &mut dyn Executor) -> (Result<Outcome, RunError>, Vec<CellRows>) {
    let context = RunContext { matrix, calibration: None, stop, progress: &Silent, journal: None };
    let mut done = Done::new(matrix.cells.len());
    let outcome = context.run(executor, &mut done);
    (outcome, done.results().iter().map(|cell| cell.rows()).collect())
}

fn outcome(interrupted: bool, metrics: usize, reps: (usize, usize)) -> Outcome {
    Outcome { interrupted, metrics: (metrics, 4), reps, latency: (0, 0) }
}

fn mock<'a>(side: &'static str, log: &'a Mutex<Vec<String>>, stop: &'a AtomicBool, script: Script) -> Mock<'a> {
    Mock { side, log, stop, script, plans: Vec::new() }
}

#[test]
fn the_pipeline_turns_fake_timings_into_rows_in_matrix_order() {
    let matrix = matrix(settings(5, 2));
    assert_eq!(matrix.cells.len(), 4, "2 allocators × 1 workload × 2 seeds");
    let (stop, log) = (AtomicBool::new(false), Mutex::new(Vec::new()));
    let mut executor = mock("A", &log, &stop, Script::default());
    let (outcome, rows) = run(&matrix, &stop, &mut executor);
    assert_eq!(outcome.unwrap(), self::outcome(false, 4, (20, 20)));
    assert_eq!(*log.lock().unwrap(), ["A0", "A1"], "5 repetitions over 2 processes");
    // The first process chooses the replays per repetition; the second is
    // told them, and where its repetitions start.
    let plans = &executor.plans;
    assert_eq!((plans[0].reps, plans[0].first_rep, plans[0].passes.clone()), (3, 0, None));
    assert_eq!((plans[1].reps, plans[1].first_rep, plans[1].passes.clone()), (2, 3, Some(vec![1, 2, 3, 4])));
    let order: Vec<(String, Option<u64>)> =
        rows.iter().map(|r| (r.summary.allocator.clone(), r.summary.seed)).collect();
    let expected = [("bump", 1), ("buddy:min=16,max_order=auto,split=lower", 1), ("bump", 2)];
    for ((allocator, seed), (want, want_seed)) in order.iter().zip(expected) {
        assert_eq!((allocator.as_str(), *seed), (want, Some(want_seed)));
    }
    for (cell, rows) in rows.iter().enumerate() {
        let seconds: Vec<f64> = rows.throughput.iter().map(|t| t.seconds).collect();
        let want: Vec<f64> = (0..5).map(|rep| Mock::seconds(cell, rep)).collect();
        assert_eq!(seconds, want, "cell {cell}: the mock's times, in repetition order");
        let processes: Vec<u64> = rows.throughput.iter().map(|t| t.process).collect();
        assert_eq!(processes, [0, 0, 0, 1, 1]);
        let summary = &rows.summary;
        assert_eq!((summary.reps, summary.passes_per_rep), (Some(5), Some(cell as u64 + 1)));
        // The median of five rates is the third fastest: repetition 2.
        let ops = summary.ops as f64;
        assert_eq!(summary.ops_per_sec, Some(ops / Mock::seconds(cell, 2)));
        assert!(rows.latency.is_empty(), "no latency pass asked for");
    }
}

#[test]
fn the_deterministic_columns_do_not_depend_on_the_executor() {
    let timed = matrix(settings(2, 2));
    let (stop, log) = (AtomicBool::new(false), Mutex::new(Vec::new()));
    let (_, timed_rows) = run(&timed, &stop, &mut mock("A", &log, &stop, Script::default()));
    let untimed = matrix(RunSettings { metrics_only: true, ..settings(2, 2) });
    let (_, untimed_rows) = run(&untimed, &stop, &mut mock("A", &log, &stop, Script::default()));
    assert_eq!(*log.lock().unwrap(), ["A0", "A1"], "a metrics-only run calls no executor");
    assert_eq!(timed_rows.len(), untimed_rows.len());
    for (timed, untimed) in timed_rows.iter().zip(&untimed_rows) {
        assert_eq!(timed.summary.deterministic(), untimed.summary.deterministic());
        assert!(untimed.throughput.is_empty() && untimed.summary.ops_per_sec.is_none());
    }
}

#[test]
fn an_interrupted_run_hands_over_the_repetitions_done_and_starts_no_process() {
    let matrix = matrix(settings(6, 3));
    let (stop, log) = (AtomicBool::new(false), Mutex::new(Vec::new()));
    let script = Script { interrupt_at: Some(1), ..Script::default() };
    let (outcome, rows) = run(&matrix, &stop, &mut mock("A", &log, &stop, script));
    assert_eq!(outcome.unwrap(), self::outcome(true, 4, (12, 24)));
    assert_eq!(*log.lock().unwrap(), ["A0", "A1"], "no third process after Ctrl-C");
    for rows in &rows {
        assert_eq!(rows.summary.reps, Some(3), "process 0's two rounds and process 1's first");
        assert_eq!(rows.throughput.iter().map(|t| t.process).collect::<Vec<_>>(), [0, 0, 1]);
    }
    // Interrupted before anything ran: nothing to hand over.
    let (stop, log) = (AtomicBool::new(false), Mutex::new(Vec::new()));
    let mut executor = mock("A", &log, &stop, Script::default());
    stop.store(true, Ordering::SeqCst);
    let (outcome, rows) = run(&matrix, &stop, &mut executor);
    assert_eq!(outcome.unwrap(), self::outcome(true, 0, (0, 24)));
    assert!(rows.is_empty() && log.lock().unwrap().is_empty());
}

#[test]
fn a_failing_timing_process_fails_the_run_and_what_finished_stands() {
    let matrix = matrix(settings(4, 2));
    let (stop, log) = (AtomicBool::new(false), Mutex::new(Vec::new()));
    let script = Script { fail_at: Some(1), ..Script::default() };
    let (outcome, rows) = run(&matrix, &stop, &mut mock("A", &log, &stop, script));
    let error = outcome.unwrap_err();
    assert!(matches!(error, RunError::Protocol { process: 1, .. }), "{error}");
    assert!(error.to_string().starts_with("timing process 1: exited with"), "{error}");
    for rows in &rows {
        assert_eq!(rows.summary.reps, Some(2), "process 0's repetitions stand");
    }
    assert_eq!(rows.len(), 4, "every metrics pass stands");
}

#[test]
fn a_timing_process_that_answers_for_another_matrix_is_refused() {
    struct Short;
    impl Executor for Short {
        fn execute(&mut self, _: &TimingPlan, _: usize, _: Tick) -> Result<Vec<CellTimes>, RunError> {
            Ok(vec![CellTimes::default()])
        }
    }
    let matrix = matrix(settings(2, 1));
    let stop = AtomicBool::new(false);
    let (outcome, _) = run(&matrix, &stop, &mut Short);
    assert_eq!(outcome.unwrap_err().to_string(), "timing process 0: returned 1 cells of 4");
}

/// `--against`: the two builds take turns, ABBA, and the other build ends
/// (latency pass and results) before this one's latency pass.
#[test]
fn against_another_build_the_turns_go_abba_and_the_other_build_finishes_first() {
    let matrix = matrix(settings(4, 4));
    let log = Mutex::new(Vec::new());
    let (ours_stop, theirs_stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let (from_child, child_out) = std::io::pipe().unwrap();
    let (child_in, to_child) = std::io::pipe().unwrap();
    std::thread::scope(|scope| {
        let (log, matrix, theirs_stop) = (&log, &matrix, &theirs_stop);
        scope.spawn(move || {
            let mut inner = mock("B", log, theirs_stop, Script::default());
            let mut turns = TakingTurns::new(&mut inner, theirs_stop, BufReader::new(child_in), child_out);
            let context = RunContext { matrix, calibration: None, stop: theirs_stop, progress: &Silent, journal: None };
            let outcome = context.run(&mut turns, &mut Done::new(matrix.cells.len()));
            log.lock().unwrap().push("B done".into());
            assert!(outcome.unwrap().complete());
        });
        let mut inner = mock("A", log, &ours_stop, Script::default());
        let mut interleaved = Interleaved::over(BufReader::new(from_child), to_child, "B", &mut inner, &ours_stop);
        let context = RunContext { matrix, calibration: None, stop: &ours_stop, progress: &Silent, journal: None };
        let outcome = context.run(&mut interleaved, &mut Done::new(matrix.cells.len()));
        log.lock().unwrap().push("A done".into());
        assert!(outcome.unwrap().complete());
        interleaved.finish(false).unwrap();
    });
    let mut want: Vec<String> = ["B0", "A0", "A1", "B1", "B2", "A2", "A3", "B3"].map(String::from).to_vec();
    want.extend(["B done".to_string(), "A done".to_string()]);
    assert_eq!(*log.lock().unwrap(), want);
}

/// A build that does not take turns is named in the error, not waited for.
#[test]
fn against_a_build_that_does_not_take_turns_the_run_fails() {
    let matrix = matrix(settings(2, 2));
    let (stop, log) = (AtomicBool::new(false), Mutex::new(Vec::new()));
    let mut inner = mock("A", &log, &stop, Script::default());
    let mut interleaved = Interleaved::over(&b"hello\n"[..], Vec::new(), "old-heaplab", &mut inner, &stop);
    let (outcome, rows) = run(&matrix, &stop, &mut interleaved);
    let error = outcome.unwrap_err().to_string();
    assert!(error.contains("old-heaplab does not take turns (it said `hello`)"), "{error}");
    assert!(log.lock().unwrap().is_empty(), "nothing was timed");
    assert!(rows.iter().all(|r| r.summary.reps.is_none()), "only the metrics passes stand");
}

/// The parent's end of the protocol against real processes: one that
/// answers, and one that exits without answering.
#[test]
fn spawned_timing_processes_are_read_and_their_failures_named() {
    let plan = TimingPlan {
        settings: settings(1, 1),
        prefault: vec![0],
        passes: None,
        warmup_steps: None,
        reps: 1,
        first_rep: 0,
    };
    let stop = AtomicBool::new(false);
    let shell = |script: &'static str| {
        move || {
            let mut command = std::process::Command::new("sh");
            command.args(["-c", script]);
            Ok(command)
        }
    };
    let ticks = Mutex::new(Vec::new());
    let tick = |what: &str| ticks.lock().unwrap().push(what.to_string());
    let answers =
        "cat >/dev/null; printf 'tick\\tround 1 of 1: x\\nnoise\\ntimes\\t[{\"passes\":2,\"seconds\":[0.5]}]\\n'";
    let times = Spawning::command(&stop, shell(answers)).execute(&plan, 0, &tick).unwrap();
    assert_eq!(times, [CellTimes { passes: 2, seconds: vec![0.5] }]);
    assert_eq!(*ticks.lock().unwrap(), ["round 1 of 1: x"]);
    let error = Spawning::command(&stop, shell("cat >/dev/null; exit 3")).execute(&plan, 4, &tick).unwrap_err();
    assert_eq!(error.to_string(), "timing process 4: exited with exit status: 3 before reporting its times");
    let error = Spawning::command(&stop, shell("cat >/dev/null; printf 'times\\t[oops\\n'"))
        .execute(&plan, 1, &tick)
        .unwrap_err();
    assert!(error.to_string().starts_with("timing process 1: unreadable times"), "{error}");
}

/// The child's end: a plan in, ticks and times out, for the same matrix.
#[test]
fn a_timing_process_serves_a_plan_for_the_matrix_it_prepares() {
    let settings = RunSettings { allocators: vec!["bump".into()], seeds: vec![1], ..settings(2, 1) };
    let plan =
        TimingPlan { settings, prefault: vec![0], passes: Some(vec![1]), warmup_steps: None, reps: 2, first_rep: 0 };
    let mut output = Vec::new();
    serve_timing_plan(&serde_json::to_vec(&plan).unwrap()[..], &mut output, &AtomicBool::new(false)).unwrap();
    let lines: Vec<ProcessLine> = String::from_utf8(output).unwrap().lines().map(parse).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let tick = |line: &ProcessLine| match line {
        ProcessLine::Tick(what) => what.clone(),
        other => panic!("{other:?}"),
    };
    assert!(tick(&lines[0]).starts_with("warm-up: bump on larson"), "{lines:?}");
    assert!(tick(&lines[2]).starts_with("round 2 of 2: bump on larson"), "{lines:?}");
    let ProcessLine::Times(times) = &lines[3] else { panic!("{lines:?}") };
    assert_eq!((times.len(), times[0].passes, times[0].seconds.len()), (1, 1, 2));
    // A plan for another matrix is refused.
    let wrong = TimingPlan { prefault: vec![0, 0], ..plan };
    let error =
        serve_timing_plan(&serde_json::to_vec(&wrong).unwrap()[..], Vec::new(), &AtomicBool::new(false)).unwrap_err();
    assert!(error.to_string().contains("does not fit this matrix of 1"), "{error}");
}

fn parse(line: &str) -> ProcessLine {
    ProcessLine::parse(line).unwrap()
}
