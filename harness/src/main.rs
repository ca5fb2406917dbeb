//! The `heaplab` command line: parse, validate, dispatch; turn errors into a
//! message and outcomes into an exit code, all of them here:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | `compare` found a regression |
//! | 2 | bad input, or any other error |
//! | 3 | `compare` could judge no timed row (`--allow-inconclusive` passes) |
//! | 130 | `run` interrupted by Ctrl-C (the cells finished stand) |
//!
//! `record` passes the recorded program's own exit status through.

mod commands;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use heaplab::registry;
use heaplab::run::RunError;
use heaplab_core::SpecError;

/// `compare` found a regression.
const EXIT_REGRESSION: u8 = 1;
/// Bad input, or any other error.
const EXIT_ERROR: u8 = 2;
/// `compare` had timed rows on both sides and could judge none of them.
const EXIT_UNDECIDED: u8 = 3;
/// Ctrl-C (what was finished is written). A second Ctrl-C exits with it at once.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Put memory allocator strategies side by side: naive free lists, segregated
/// lists, the buddy system and buddy+slab, driven through the same traces,
/// measured for speed and fragmentation.
#[derive(Debug, Parser)]
#[command(name = "heaplab", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Put allocators side by side on workloads: the main job.
    ///
    /// With no options, runs the default suite: a representative
    /// configuration of every allocator family on every built-in
    /// single-threaded workload, measuring fragmentation (deterministic),
    /// throughput (median of repetitions) and per-op latency, into
    /// results/<run>/ (summary.csv, timeseries.csv, latency.csv,
    /// throughput.csv, details.csv, heapmap.csv, meta.json), and prints a
    /// summary table.
    Run(Box<commands::run::RunArgs>),
    /// Compare two result sets: exit 1 on a regression, 0 otherwise, 2 on bad input.
    ///
    /// Rows pair by allocator, workload and seed. Throughput is judged by the
    /// Hodges–Lehmann ratio new/base with its exact Mann–Whitney interval,
    /// one sample per timing process, all rows' intervals holding together
    /// at 95%: a regression is an interval entirely below 1 − threshold. On a shared machine, time both builds
    /// in turns (`heaplab run --against OTHER_HEAPLAB`).
    /// Deterministic figures (fragmentation, counts) must match exactly; a
    /// difference fails too, as does a row missing from NEW.
    ///
    /// With `--ours A --peer B` (repeatable) and one run: the time per op of
    /// A over B on every workload of the run, with its interval.
    Compare(commands::compare::CompareArgs),
    /// Join the shards of one run (`heaplab run --shard K/N`) into one results directory.
    ///
    /// Checks everything before it writes: every shard present once and
    /// complete, one build, one set of settings, one N, and each shard
    /// holding exactly its own cells. The merged deterministic files are
    /// those of the unsharded run; `compare` and `report` take it.
    Merge(commands::merge::MergeArgs),
    /// Record a real program's allocations into a trace.
    ///
    /// Runs the command with heaplab's preload library, which logs every
    /// malloc, calloc, realloc, free, memalign, posix_memalign, aligned_alloc,
    /// valloc and pvalloc of every process; then writes one trace per
    /// process. The command's output and exit status are passed through.
    Record(commands::record::RecordArgs),
    /// Run a real program on heaplab's allocators, and measure it.
    ///
    /// Serves the program's malloc, calloc, realloc, free, memalign,
    /// posix_memalign, aligned_alloc, valloc, pvalloc and malloc_usable_size
    /// from each allocator through heaplab's preload library (or glibc,
    /// mimalloc, jemalloc as the peers), runs it --reps times, and records
    /// wall, user and system time, peak RSS, page faults, and the
    /// allocator's own figures. `--program NAME` runs the command that
    /// recorded `trace:NAME`. The program's output passes through.
    Exec(commands::exec::ExecArgs),
    /// Write the charts and the HTML and Markdown reports of a results directory.
    ///
    /// Reads only the files `heaplab run` wrote; writes reports/<run>/index.html
    /// (self-contained), report.md and charts/ (SVG and PNG).
    Report(commands::report::ReportArgs),
    /// Export a results directory's summary as JSON, CSV, Markdown or LaTeX.
    ///
    /// The rows as measured, or with --aggregate the cross-seed aggregate
    /// (each figure's mean and sample standard deviation over the seeds).
    /// Markdown and LaTeX (a booktabs tabular) show figures with four
    /// significant digits in the units their header names; JSON (with a
    /// schema version) and CSV keep the raw values.
    Export(commands::export::ExportArgs),
    /// Draw the heap of one allocator on one workload after a given op.
    ///
    /// Replays the workload and draws the arena block by block (live
    /// payloads with their sizes, free blocks, overhead), and optionally the
    /// whole run as an address × time picture.
    Heapmap(commands::report::HeapMapArgs),
    /// Step through one allocator on one workload, op by op, in a browser.
    ///
    /// Replays the workload with a recording probe and writes one
    /// self-contained HTML page (no network; it works from file://): a
    /// player with the op in words, gauges of internal and external
    /// fragmentation and utilization, the arena as an address line, and
    /// for a buddy system (or the slab's pages) the tree of splits with
    /// /proc/buddyinfo. Open it at an op with `#op=N`.
    Step(commands::step::StepArgs),
    /// List the allocator configurations this build knows, or validate specs.
    ///
    /// With no arguments, every family and its listed configurations, with a
    /// line each saying what it does. A spec (`freelist:fit=best`) is
    /// validated and printed in canonical form; a pattern (`freelist:*`,
    /// `*fit=best*`) filters the list.
    List(commands::list::ListArgs),
    /// Generate, inspect, convert and validate allocation traces.
    #[command(subcommand)]
    Trace(commands::trace::TraceCommand),
    /// Print a shell completion script: `heaplab completions bash > /etc/bash_completion.d/heaplab`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `heaplab man | man -l -`.
    Man,
    /// Internal: run one timing plan for `heaplab run` (read from stdin).
    #[command(hide = true)]
    TimingProcess,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let result = match &cli.command {
        Command::Run(args) => commands::run::run(args).map(|ended| match ended {
            commands::run::Ended::Complete => ExitCode::SUCCESS,
            commands::run::Ended::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
        }),
        Command::Compare(args) => commands::compare::run(args).map(|outcome| match outcome {
            commands::compare::Outcome::Pass => ExitCode::SUCCESS,
            commands::compare::Outcome::Fail => ExitCode::from(EXIT_REGRESSION),
            commands::compare::Outcome::Undecided => ExitCode::from(EXIT_UNDECIDED),
        }),
        Command::Merge(args) => commands::merge::merge(args).map(|()| ExitCode::SUCCESS),
        Command::Record(args) => commands::record::record(args),
        Command::Exec(args) => commands::exec::exec(args),
        Command::Report(args) => commands::report::report(args).map(|()| ExitCode::SUCCESS),
        Command::Export(args) => commands::export::export(args).map(|()| ExitCode::SUCCESS),
        Command::Heapmap(args) => commands::report::heapmap(args).map(|()| ExitCode::SUCCESS),
        Command::Step(args) => commands::step::step(args).map(|()| ExitCode::SUCCESS),
        Command::List(args) => commands::list::run(args).map(|()| ExitCode::SUCCESS),
        Command::Trace(command) => commands::trace::run(command).map(|()| ExitCode::SUCCESS),
        Command::TimingProcess => commands::run::timing_process().map(|()| ExitCode::SUCCESS),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "heaplab", &mut io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut io::stdout())
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`heaplab list | head`): nothing more to say.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A command line clap refused (or `--help`, `--version`): clap's message
/// with heaplab's one error prefix, and for an unknown subcommand the
/// nearest one (clap's own suggestion misses short slips such as `rn`).
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        let _ = error.print();
        return ExitCode::from(if error.use_stderr() { EXIT_ERROR } else { 0 });
    }
    let rendered = error.render().to_string();
    let mut text = rendered.strip_prefix("error: ").unwrap_or(&rendered).to_string();
    if error.kind() == ErrorKind::InvalidSubcommand
        && let Some(ContextValue::String(given)) = error.get(ContextKind::InvalidSubcommand)
        && error.get(ContextKind::SuggestedSubcommand).is_none()
        && let Some(nearest) = nearest_subcommand(given)
    {
        let first_line = text.lines().next().unwrap_or_default().to_string();
        text = text.replacen(&first_line, &format!("{first_line}; did you mean `{nearest}`?"), 1);
    }
    let _ = write!(io::stderr().lock(), "heaplab: error: {text}");
    ExitCode::from(EXIT_ERROR)
}

/// The visible subcommand at the smallest edit distance from `given`, if
/// it is a slip (at most one edit per three letters, and at least one).
fn nearest_subcommand(given: &str) -> Option<String> {
    let command = Cli::command();
    let (distance, name) = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| (strsim::damerau_levenshtein(given, c.get_name()), c.get_name().to_string()))
        .min()?;
    (distance <= (given.chars().count() / 3).max(1)).then_some(name)
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}

/// Print an error chain; a bad spec also gets one line of hint: where its
/// family's configurations are listed.
fn report(error: &anyhow::Error) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "heaplab: error: {error:#}");
    let spec = error.downcast_ref::<SpecError>().or(match error.downcast_ref::<RunError>() {
        Some(RunError::Spec(spec)) => Some(spec),
        _ => None,
    });
    if let Some(spec) = spec {
        let family = spec.spec.split(':').next().unwrap_or_default();
        if registry::families().iter().any(|f| f.name == family) {
            let _ = writeln!(stderr, "hint: `heaplab list '{family}:*'` shows its configurations");
        }
    }
}
