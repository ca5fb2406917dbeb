//! `heaplab exec --alloc SPEC… -- COMMAND`: run a real program on each
//! allocator, and measure it.
//!
//! Each allocator runs the program `--reps` times, in rounds (every
//! allocator once per round, so that drift of the machine falls on all
//! alike), after `--warmup` untimed rounds. For heaplab's families one more
//! run, before the timed ones, uses the allocator with its ledger (the
//! metrics run): its figures are the allocator's own (peak requested and
//! granted bytes, footprint, internal fragmentation), as the metrics pass of
//! `heaplab run` keeps them apart from the timing.
//!
//! Results go to `OUT/NAME/` as for `heaplab run`: `summary.csv` (one row
//! per allocator and program, workload `exec:NAME`), `throughput.csv` (one
//! row per timed run: an op of an exec workload is one run of the program,
//! so `compare` pairs wall times), `exec.csv` (every run with its resource
//! use) and `meta.json`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::Args;
use heaplab::exec::{self, Launch, PROGRAMS, ProcessReport, Provider, Usage};
use heaplab::registry;
use heaplab::{timing, units};
use heaplab_results::{
    CellRows, ExecRow, ExecSettings, ProgramVersion, ReplayRow, ResultsDir, RunSettings, RunStatus, SETTINGS_VERSION,
    SummaryRow, ThroughputRow, Touch,
};

use super::run::{default_name, new_meta, parse_arena};

/// The preload library's file name.
const LIBRARY: &str = "libheaplab_preload.so";

/// Arguments of `heaplab exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Allocator to run the program on (repeatable): a spec of the
    /// freelist, segregated, buddy or slab family, or peer:glibc,
    /// peer:mimalloc or peer:jemalloc; a pattern (`segregated:*`) picks the
    /// listed ones it matches.
    #[arg(short, long = "alloc", value_name = "SPEC", required = true)]
    allocs: Vec<String>,
    /// Run a bundled program, the command that recorded `trace:NAME`
    /// (python, sqlite, gcc, jq, perl, or all); repeatable. Instead of a
    /// command after `--`.
    #[arg(long, value_name = "NAME")]
    program: Vec<String>,
    /// The workload name of a command given after `--` (default: the
    /// program's file name): results say `exec:LABEL`.
    #[arg(long)]
    label: Option<String>,
    /// A file each run reads as its standard input (default: heaplab's own
    /// standard input when the program runs once, else none).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// The arena each process of the program gets (reserved, not touched).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_arena)]
    arena: u64,
    /// Timed runs per allocator and program.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// Untimed rounds first.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Also replay each bundled program's trace (`trace:NAME`) on the same
    /// allocators with `heaplab run` (results in NAME-replay beside these),
    /// and set replay beside reality: `replay.csv`, and Kendall's τ per
    /// program between the two rankings. Needs --program.
    #[arg(long, requires = "program")]
    replay: bool,
    /// Skip the metrics run (the allocator with its ledger).
    #[arg(long)]
    no_metrics: bool,
    /// Go on when the program fails (by default the first failing run
    /// stops heaplab, which exits with the program's status).
    #[arg(long)]
    ignore_failure: bool,
    /// Name of the results directory (default: run-YYYYMMDD-HHMMSS).
    #[arg(long)]
    name: Option<String>,
    /// Where results directories go.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// The preload library (default: $HEAPLAB_PRELOAD, or beside this
    /// executable, where `cargo build -p heaplab` puts it).
    #[arg(long)]
    library: Option<PathBuf>,
    /// No progress lines.
    #[arg(short, long)]
    quiet: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Where the `heaplab-spawn` helper is: beside this executable.
fn find_helper() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding heaplab's own executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let helper = dir.join("heaplab-spawn");
    if helper.is_file() {
        return Ok(helper);
    }
    bail!("cannot find heaplab-spawn beside {} (`cargo build --release -p heaplab` builds both)", exe.display())
}

/// One program to run: its workload name, command and input.
struct Job {
    /// The bundled program, if it is one.
    program: Option<&'static str>,
    workload: String,
    command: Vec<OsString>,
    input: Option<PathBuf>,
}

/// One allocator: its canonical spec and provider.
struct Server {
    spec: String,
    provider: Provider,
}

/// What the runs of one (allocator, program) gave.
#[derive(Default)]
struct Cell {
    timed: Vec<Usage>,
    metrics: Option<(Usage, Option<ProcessReport>, Vec<ProcessReport>)>,
}

/// Run; returns heaplab's exit code (the program's, if a run failed).
pub fn exec(args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let mut servers: Vec<Server> = Vec::new();
    for selection in &args.allocs {
        for spec in registry::select(selection)? {
            let provider = exec::provider(&spec)?;
            let spec = spec.spec();
            if !servers.iter().any(|s| s.spec == spec) {
                servers.push(Server { spec, provider });
            }
        }
    }
    let library = if servers.iter().any(|s| matches!(s.provider, Provider::Heaplab(_))) {
        super::record::find_preload(LIBRARY, "HEAPLAB_PRELOAD", args.library.as_deref())?
    } else {
        PathBuf::new()
    };
    let helper = find_helper()?;
    let scratch = tempfile::Builder::new().prefix("heaplab-exec-").tempdir().context("creating a scratch directory")?;
    let mut versions: Vec<ProgramVersion> = Vec::new();
    let jobs = jobs(args, scratch.path(), &mut versions)?;
    for server in &servers {
        if let Some(version) = exec::provider_version(&server.provider) {
            versions.push(ProgramVersion { name: server.spec.clone(), version, recorded: None });
        }
    }
    for version in &versions {
        if let Some(recorded) = &version.recorded
            && !exec::same_version(&version.version, recorded)
        {
            eprintln!(
                "heaplab exec: warning: {} is {}, but its bundled trace was recorded with {recorded}: replay and this run measure different programs",
                version.name, version.version
            );
        }
    }

    let now = SystemTime::now();
    let name = args.name.clone().unwrap_or_else(|| default_name(now));
    let settings = RunSettings {
        settings_version: SETTINGS_VERSION,
        allocators: servers.iter().map(|s| s.spec.clone()).collect(),
        workloads: jobs.iter().map(|j| j.workload.clone()).collect(),
        seeds: Vec::new(),
        reps: args.reps as usize,
        warmup: args.warmup as usize,
        arena_bytes: Some(args.arena),
        align: 16,
        touch: Touch::None,
        latency: false,
        metrics_only: false,
        verify: false,
        points: 0,
        frames: 0,
        jobs: 1,
        processes: args.reps as usize,
        shard: None,
        threads: Vec::new(),
        lenient: false,
        exec: Some(ExecSettings {
            commands: jobs
                .iter()
                .map(|j| j.command.iter().map(|a| a.to_string_lossy().into_owned()).collect())
                .collect(),
            input: args.input.as_ref().map(|p| p.display().to_string()),
            versions,
            replay_run: args.replay.then(|| format!("{name}-replay")),
        }),
    };
    let cells_total = servers.len() * jobs.len();
    let mut meta = new_meta(name.clone(), settings, now, cells_total);
    meta.reps_total = cells_total * args.reps as usize;
    let dir = args.out.join(&name);
    let results = ResultsDir::create(&dir, &meta).with_context(|| format!("creating {}", dir.display()))?;

    let runs_each = args.reps + args.warmup + u64::from(!args.no_metrics);
    let inherit_stdin = args.input.is_none() && servers.len() == 1 && jobs.len() == 1 && runs_each == 1;
    let mut cells: Vec<Vec<Cell>> = jobs.iter().map(|_| servers.iter().map(|_| Cell::default()).collect()).collect();
    let mut exec_rows: Vec<ExecRow> = Vec::new();
    let mut failure: Option<(String, Usage)> = None;
    let mut warned_silent = vec![false; jobs.len()];
    let started = std::time::Instant::now();
    let mut measure = || -> anyhow::Result<()> {
        for (j, job) in jobs.iter().enumerate() {
            let prefix = scratch.path().join(format!("report-{j}"));
            let report_name = format!("report-{j}.");
            // The metrics runs first, then the rounds.
            let mut plan: Vec<(usize, Option<u64>)> = Vec::new();
            if !args.no_metrics {
                plan.extend(
                    servers
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| matches!(s.provider, Provider::Heaplab(_)))
                        .map(|(s, _)| (s, None)),
                );
            }
            for round in 0..args.warmup + args.reps {
                plan.extend((0..servers.len()).map(|s| (s, Some(round))));
            }
            for (s, round) in plan {
                let server = &servers[s];
                let usage = exec::run_once(
                    &Launch {
                        command: &job.command,
                        provider: &server.provider,
                        library: &library,
                        arena_bytes: args.arena,
                        metrics: round.is_none(),
                        report_prefix: &prefix,
                        input: job.input.as_deref().or(args.input.as_deref()),
                        inherit_stdin,
                    },
                    &helper,
                )?;
                let (own, others) = exec::read_reports(scratch.path(), &report_name, usage.pid)?;
                let pass = match round {
                    None => "metrics",
                    Some(r) if r < args.warmup => "warmup",
                    Some(_) => "timed",
                };
                if !args.quiet {
                    eprintln!(
                        "{:<14} {:<40} {:<7} {:>8.3} s  {:>10} peak RSS{}",
                        job.workload,
                        server.spec,
                        match round {
                            Some(r) if r >= args.warmup => format!("{}/{}", r - args.warmup + 1, args.reps),
                            _ => pass.to_string(),
                        },
                        usage.wall_seconds,
                        units::bytes(usage.max_rss_bytes),
                        if usage.status == 0 { String::new() } else { format!("  exit status {}", usage.status) }
                    );
                }
                exec_rows.push(ExecRow {
                    allocator: server.spec.clone(),
                    workload: job.workload.clone(),
                    rep: round.map_or(0, |r| r.saturating_sub(args.warmup)),
                    pass: pass.to_string(),
                    wall_seconds: usage.wall_seconds,
                    user_seconds: usage.user_seconds,
                    sys_seconds: usage.sys_seconds,
                    max_rss_bytes: usage.max_rss_bytes,
                    minor_faults: usage.minor_faults,
                    major_faults: usage.major_faults,
                    status: usage.status,
                });
                if matches!(server.provider, Provider::Heaplab(_)) && own.is_none() && !warned_silent[j] {
                    warned_silent[j] = true;
                    eprintln!(
                        "heaplab exec: warning: `{}` made no allocation through heaplab's preload library (statically linked, \
                     setuid, or allocation-free?): its allocator figures stay empty",
                        job.command[0].to_string_lossy()
                    );
                }
                let cell = &mut cells[j][s];
                match round {
                    None => cell.metrics = Some((usage, own, others)),
                    Some(r) if r >= args.warmup => cell.timed.push(usage),
                    Some(_) => {}
                }
                if usage.status != 0 && !args.ignore_failure {
                    failure = Some((format!("{} on {}", job.workload, server.spec), usage));
                    return Ok(());
                }
            }
        }
        Ok(())
    };
    let outcome = measure();

    let mut rows: Vec<CellRows> = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        for (s, server) in servers.iter().enumerate() {
            let cell = &cells[j][s];
            if cell.timed.is_empty() && cell.metrics.is_none() {
                continue;
            }
            rows.push(cell_rows(&server.spec, &job.workload, cell, args.arena));
        }
    }
    meta.cells_finished = rows.iter().filter(|r| r.summary.reps == Some(args.reps)).count();
    meta.reps_finished = rows.iter().map(|r| r.throughput.len()).sum();
    meta.elapsed_seconds = started.elapsed().as_secs_f64();
    meta.status = if failure.is_some() || outcome.is_err() { RunStatus::Failed } else { RunStatus::Complete };
    results.write(&rows).with_context(|| format!("writing results into {}", dir.display()))?;
    results.write_exec(&exec_rows).context("writing exec.csv")?;
    results.write_meta(&meta)?;
    // What finished is written; the error that stopped the rest is said.
    outcome?;
    if !args.quiet {
        print!("{}", table(&rows));
    }
    eprintln!("{} runs in {:.1} s; results in {}", exec_rows.len(), meta.elapsed_seconds, dir.display());
    if args.replay && failure.is_none() {
        let replay = replay(args, &name, &servers, &jobs, &rows)?;
        results.write_replay(&replay).context("writing replay.csv")?;
        for line in heaplab_reports::replay::verdicts(&replay) {
            println!("{line}");
        }
    }
    if let Some((what, usage)) = failure {
        eprintln!(
            "heaplab exec: the program failed ({what}: {}); the runs before it are in the results (--ignore-failure goes on)",
            match usage.signal {
                Some(signal) => format!("killed by signal {signal}"),
                None => format!("exit status {}", usage.status),
            }
        );
        return Ok(ExitCode::from(usage.status.clamp(1, 255) as u8));
    }
    Ok(ExitCode::SUCCESS)
}

/// Replay the bundled programs' traces on the same allocators with
/// `heaplab run` (this executable), and pair its rows with the exec rows.
fn replay(
    args: &ExecArgs,
    name: &str,
    servers: &[Server],
    jobs: &[Job],
    rows: &[CellRows],
) -> anyhow::Result<Vec<ReplayRow>> {
    let replay_name = format!("{name}-replay");
    let exe = std::env::current_exe().context("finding heaplab's own executable")?;
    let mut command = std::process::Command::new(exe);
    command.arg("run");
    for server in servers {
        command.args(["--alloc", &server.spec]);
    }
    let programs: Vec<&str> = jobs.iter().filter_map(|j| j.program).collect();
    for program in &programs {
        command.args(["--workload", &format!("trace:{program}")]);
    }
    let reps = args.reps.max(2).to_string();
    command.args(["--reps", &reps, "--processes", &reps, "--no-latency", "--quiet", "--name", &replay_name]);
    command.arg("--out").arg(&args.out);
    if !args.quiet {
        eprintln!("heaplab exec: replaying the traces of {} with heaplab run ({replay_name})", programs.join(", "));
    }
    if servers.iter().any(|s| matches!(s.provider, Provider::Library { .. })) {
        eprintln!(
            "heaplab exec: note: the replay's peer:mimalloc and peer:jemalloc are the versions linked into heaplab, \
             the program's are Debian's libraries (meta.json names both)"
        );
    }
    let status = command.status().context("running heaplab run for the replay")?;
    if !status.success() {
        bail!("the replay run failed ({status}); the exec results stand");
    }
    let replayed: Vec<SummaryRow> = heaplab_results::read_rows(&args.out.join(&replay_name).join("summary.csv"), true)?;
    let mut paired = Vec::new();
    for program in programs {
        for server in servers {
            let real = rows
                .iter()
                .map(|r| &r.summary)
                .find(|r| r.allocator == server.spec && r.workload == format!("exec:{program}"));
            let replay =
                replayed.iter().find(|r| r.allocator == server.spec && r.workload == format!("trace:{program}"));
            paired.push(ReplayRow {
                program: program.to_string(),
                allocator: server.spec.clone(),
                exec_wall_seconds: real.and_then(|r| r.wall_seconds),
                replay_ns_per_op: replay.and_then(|r| r.ops_per_sec).map(|v| 1e9 / v),
                exec_peak_rss_bytes: real.and_then(|r| r.peak_rss_bytes),
                replay_peak_footprint_bytes: replay.and_then(|r| r.peak_footprint_bytes),
                replay_utilization_pct: replay.and_then(|r| r.utilization_pct),
            });
        }
    }
    Ok(paired)
}

/// The programs to run, from `--program` or the command.
fn jobs(args: &ExecArgs, scratch: &Path, versions: &mut Vec<ProgramVersion>) -> anyhow::Result<Vec<Job>> {
    if args.program.is_empty() == args.command.is_empty() {
        bail!("give a command after `--` or --program NAME (python, sqlite, gcc, jq, perl, all), not both");
    }
    if !args.command.is_empty() {
        let label = args.label.clone().unwrap_or_else(|| {
            Path::new(&args.command[0])
                .file_name()
                .map_or_else(|| "command".into(), |n| n.to_string_lossy().into_owned())
        });
        return Ok(vec![Job {
            program: None,
            workload: format!("exec:{label}"),
            command: args.command.clone(),
            input: None,
        }]);
    }
    if args.label.is_some() {
        bail!("--label names a command given after `--`; a bundled program is named after its trace");
    }
    let mut picked: Vec<&exec::Program> = Vec::new();
    for name in &args.program {
        if name == "all" {
            picked.extend(PROGRAMS.iter());
            continue;
        }
        let Some(program) = PROGRAMS.iter().find(|p| p.name == name) else {
            let names: Vec<&str> = PROGRAMS.iter().map(|p| p.name).collect();
            bail!(
                "no bundled program `{name}`{}; they are {}, or all",
                heaplab_core::spec::did_you_mean(name, &names),
                names.join(", ")
            );
        };
        picked.push(program);
    }
    let mut jobs = Vec::new();
    for program in picked {
        if jobs.iter().any(|j: &Job| j.workload == format!("exec:{}", program.name)) {
            continue;
        }
        let dir = scratch.join(program.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (command, input) = exec::program_command(program, &dir)?;
        versions.push(ProgramVersion {
            name: program.name.to_string(),
            version: exec::program_version(program).unwrap_or_else(|| "unknown".to_string()),
            recorded: Some(program.recorded_version.to_string()),
        });
        jobs.push(Job { program: Some(program.name), workload: format!("exec:{}", program.name), command, input });
    }
    Ok(jobs)
}

/// The summary and throughput rows of one (allocator, program).
fn cell_rows(spec: &str, workload: &str, cell: &Cell, arena: u64) -> CellRows {
    let median = |f: fn(&Usage) -> f64| -> Option<f64> {
        (!cell.timed.is_empty()).then(|| timing::median(&mut cell.timed.iter().map(f).collect::<Vec<_>>()))
    };
    let rates: Vec<f64> = cell.timed.iter().map(|u| 1.0 / u.wall_seconds).collect();
    let (low, high, level) = timing::median_interval(&rates, 0.95);
    let mut summary = SummaryRow {
        allocator: spec.to_string(),
        workload: workload.to_string(),
        seed: None,
        threads: 1,
        arena_bytes: arena,
        ops: 1,
        reps: Some(cell.timed.len() as u64),
        passes_per_rep: Some(1),
        replay_seconds: median(|u| u.wall_seconds),
        ops_per_sec: (!rates.is_empty()).then(|| timing::median(&mut rates.clone())),
        ops_per_sec_ci_low: (rates.len() > 1).then_some(low),
        ops_per_sec_ci_high: (rates.len() > 1).then_some(high),
        ops_per_sec_ci_level_pct: (rates.len() > 1).then_some(level * 100.0),
        ops_per_sec_min: rates.iter().copied().reduce(f64::min),
        ops_per_sec_max: rates.iter().copied().reduce(f64::max),
        wall_seconds: median(|u| u.wall_seconds),
        user_seconds: median(|u| u.user_seconds),
        sys_seconds: median(|u| u.sys_seconds),
        peak_rss_bytes: median(|u| u.max_rss_bytes as f64).map(|v| v as u64),
        minor_faults: median(|u| u.minor_faults as f64).map(|v| v as u64),
        major_faults: median(|u| u.major_faults as f64).map(|v| v as u64),
        ..SummaryRow::default()
    };
    if let Some((_, own, others)) = &cell.metrics {
        if let Some(own) = own {
            let get = |key: &str| own.get(key).unwrap_or(0);
            let (requested, granted, footprint) =
                (get("peak_requested_bytes"), get("granted_at_peak_bytes"), get("footprint_at_peak_bytes"));
            summary.allocs = get("allocs");
            summary.frees = get("frees");
            summary.reallocs = get("reallocs");
            summary.failed_allocs = get("failed");
            summary.out_of_memory_failures = Some(get("failed"));
            summary.peak_requested_bytes = requested;
            summary.granted_at_peak_bytes = Some(granted);
            summary.footprint_at_peak_bytes = Some(footprint);
            summary.peak_granted_bytes = own.get("peak_granted_bytes");
            summary.peak_footprint_bytes = own.get("peak_footprint_bytes");
            summary.side_metadata_bytes = get("table_resident_bytes");
            if granted > 0 {
                summary.internal_frag_at_peak_pct =
                    Some((granted - requested.min(granted)) as f64 / granted as f64 * 100.0);
            }
            let peak_footprint = get("peak_footprint_bytes");
            if peak_footprint > 0 && requested > 0 {
                summary.utilization_pct = Some(requested as f64 / peak_footprint as f64 * 100.0);
                summary.jw4_pct = Some((peak_footprint as f64 / requested as f64 - 1.0) * 100.0);
            }
        }
        summary.child_processes = Some(others.len() as u64);
        summary.children_peak_requested_bytes =
            Some(others.iter().map(|r| r.get("peak_requested_bytes").unwrap_or(0)).sum());
        summary.children_peak_footprint_bytes =
            Some(others.iter().map(|r| r.get("peak_footprint_bytes").unwrap_or(0)).sum());
    }
    let throughput = cell
        .timed
        .iter()
        .enumerate()
        .map(|(rep, usage)| ThroughputRow {
            allocator: spec.to_string(),
            workload: workload.to_string(),
            seed: None,
            threads: 1,
            rep: rep as u64,
            process: rep as u64,
            seconds: usage.wall_seconds,
            ops_per_sec: 1.0 / usage.wall_seconds,
            host: None,
        })
        .collect();
    CellRows { summary, series: Vec::new(), details: Vec::new(), heapmap: Vec::new(), latency: Vec::new(), throughput }
}

/// One table per program: wall time, CPU, peak RSS, and the allocator's
/// figures.
fn table(rows: &[CellRows]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut workloads: Vec<&str> = rows.iter().map(|r| r.summary.workload.as_str()).collect();
    workloads.dedup();
    for workload in workloads {
        let _ = writeln!(
            out,
            "\n{workload}\n{:<40} {:>9} {:>17} {:>8} {:>8} {:>10} {:>9} {:>7}",
            "allocator", "wall s", "interval", "user s", "sys s", "peak RSS", "int frag", "util"
        );
        for row in rows.iter().filter(|r| r.summary.workload == workload) {
            let s = &row.summary;
            let interval = match (s.ops_per_sec_ci_low, s.ops_per_sec_ci_high) {
                (Some(low), Some(high)) => format!("[{:.3}, {:.3}]", 1.0 / high, 1.0 / low),
                _ => "-".to_string(),
            };
            let seconds = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
            let pct = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}%"));
            let _ = writeln!(
                out,
                "{:<40} {:>9} {:>17} {:>8} {:>8} {:>10} {:>9} {:>7}",
                s.allocator,
                seconds(s.wall_seconds),
                interval,
                seconds(s.user_seconds),
                seconds(s.sys_seconds),
                s.peak_rss_bytes.map_or_else(|| "-".to_string(), units::bytes),
                pct(s.internal_frag_at_peak_pct),
                pct(s.utilization_pct)
            );
        }
    }
    out.push_str(
        "\nmedians over the timed runs; the median's interval from order statistics (95 % where there are 6 runs or more, \
         else the range); peak RSS as wait4 reports it (at least the helper's, about 2 MiB); \
         fragmentation and utilization from the metrics run of heaplab's families (peers: -)\n",
    );
    out
}
