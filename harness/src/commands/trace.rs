//! `heaplab trace`: generate, inspect, convert and validate traces.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use heaplab::units;
use heaplab_workloads::formats::ReadOptions;
use heaplab_workloads::info::{self, TraceInfo};
use heaplab_workloads::synth::{PRESETS, SyntheticSpec};
use heaplab_workloads::{Format, OpKind, TraceError, Workload, formats};

/// Trace commands.
#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Generate a synthetic workload into a trace file.
    ///
    /// WORKLOAD is a preset or distribution with optional parameters, e.g.
    /// `ramp`, `lognormal:median=64,sigma=1.5`, `fragmenter:small=32`. The
    /// output format follows the file name: `.hlt` (native binary), `.rep`
    /// (malloc-lab), `.mtrace` (glibc), each optionally + `.zst`.
    #[command(after_help = presets_help())]
    Gen(GenArgs),
    /// Summarise a trace: ops by kind, peak live bytes, sizes, lifetimes.
    Info(InfoArgs),
    /// Convert a trace between formats (from the names, or --from/--to).
    Convert(ConvertArgs),
    /// Check that every op of a trace is legal (no double free, …).
    Validate(ValidateArgs),
}

fn presets_help() -> String {
    let mut text = String::from("Workloads:\n");
    for (name, summary) in PRESETS {
        text.push_str(&format!("  {name:<14} {summary}\n"));
    }
    text
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// The workload: NAME[:key=value,…].
    workload: String,
    /// Number of ops (sets the workload's `ops` parameter).
    #[arg(long)]
    ops: Option<u64>,
    /// RNG seed: the same workload and seed give the same ops, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file; `-` for standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Output format, if the file name does not say.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Trace files, or synthetic workloads (generated with --seed).
    #[arg(required = true, value_name = "TRACE|WORKLOAD")]
    traces: Vec<String>,
    /// Seed for synthetic workloads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Read `.rep` allocs and reallocs without a size as mdriver does: with
    /// the previous op's size (counted, and said).
    #[arg(long)]
    lenient: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input trace.
    input: PathBuf,
    /// Output trace (format from its name unless --to).
    output: PathBuf,
    /// Input format, if content and name do not say.
    #[arg(long, value_parser = parse_format)]
    from: Option<Format>,
    /// Output format.
    #[arg(long, value_parser = parse_format)]
    to: Option<Format>,
    /// Read `.rep` allocs and reallocs without a size as mdriver does: with
    /// the previous op's size (counted, and said).
    #[arg(long)]
    lenient: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Trace files.
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Read `.rep` allocs and reallocs without a size as mdriver does: with
    /// the previous op's size (counted, and said).
    #[arg(long)]
    lenient: bool,
}

fn parse_format(text: &str) -> Result<Format, String> {
    Format::from_name(text).ok_or_else(|| format!("expected one of rep, mtrace, native, found `{text}`"))
}

/// Run a trace command.
pub fn run(command: &TraceCommand) -> anyhow::Result<()> {
    match command {
        TraceCommand::Gen(args) => generate(args),
        TraceCommand::Info(args) => inform(args),
        TraceCommand::Convert(args) => convert(args),
        TraceCommand::Validate(args) => validate(args),
    }
}

fn generate(args: &GenArgs) -> anyhow::Result<()> {
    let text = match args.ops {
        Some(ops) if args.workload.contains("ops=") => {
            bail!("the op count is given twice: in `{}` and as --ops {ops}", args.workload)
        }
        Some(ops) if args.workload.contains(':') => format!("{},ops={ops}", args.workload),
        Some(ops) => format!("{}:ops={ops}", args.workload),
        None => args.workload.clone(),
    };
    let spec = SyntheticSpec::parse(&text)?;
    let output = match &args.output {
        Some(path) => path.clone(),
        None if io::stdout().is_terminal() => {
            bail!(
                "say where the trace goes: -o FILE (.hlt, .rep or .mtrace, optionally + .zst), or -o - for standard output"
            )
        }
        None => PathBuf::from("-"),
    };
    let format = args.format.or_else(|| Format::from_path(&output)).unwrap_or(Format::Native);
    let meta = format!("heaplab {} trace gen {} --seed {}", env!("CARGO_PKG_VERSION"), spec.spec(), args.seed);
    let steps = spec.generate(args.seed)?.map(|op| Ok(heaplab_workloads::ThreadOp::single(op)));
    let fields = formats::Fields { threads: false, levels: spec.has_levels() };
    let written = formats::write_steps(&output, Some(format), steps, &meta, fields)?;
    if output.as_os_str() != "-" {
        let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "wrote {} ops of {} (seed {}) to {} ({}, {:.2} bytes per op)",
            units::count(written),
            spec.spec(),
            args.seed,
            output.display(),
            units::bytes(size),
            size as f64 / written.max(1) as f64
        );
    }
    Ok(())
}

fn inform(args: &InfoArgs) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    for (index, text) in args.traces.iter().enumerate() {
        // `-` is standard input, as `trace gen -o -` writes standard output.
        let options = ReadOptions { lenient: args.lenient };
        let workload = if text == "-" { Workload::File(PathBuf::from("-"), options) } else { Workload::parse(text)? };
        let workload = workload.with_options(options);
        let (info, skipped, meta) = match workload.trace()? {
            Some(mut reader) => {
                let name = reader.path().to_string();
                let info = info::analyze_steps(std::iter::from_fn(|| reader.next_step()), &name)?;
                for note in reader.notes() {
                    eprintln!("note: {note}");
                }
                (info, reader.skipped(), reader.meta().map(str::to_string))
            }
            None => (info::analyze(workload.ops(args.seed)?, &workload.name())?, 0, None),
        };
        if index > 0 {
            writeln!(out)?;
        }
        let title =
            if workload.is_seeded() { format!("{} (seed {})", workload.name(), args.seed) } else { workload.name() };
        print_info(&mut out, &title, &info, skipped, meta.as_deref())?;
    }
    Ok(())
}

fn print_info(out: &mut dyn Write, title: &str, info: &TraceInfo, skipped: u64, meta: Option<&str>) -> io::Result<()> {
    let row = |out: &mut dyn Write, label: &str, value: String| writeln!(out, "{label:<12} {value}");
    row(out, "trace", title.to_string())?;
    if let Some(meta) = meta.filter(|m| !m.is_empty()) {
        row(out, "origin", meta.to_string())?;
    }
    row(
        out,
        "ops",
        format!(
            "{}: {} alloc, {} free, {} realloc",
            units::count(info.ops()),
            units::count(info.count(OpKind::Alloc)),
            units::count(info.count(OpKind::Free)),
            units::count(info.count(OpKind::Realloc))
        ),
    )?;
    if skipped > 0 {
        row(
            out,
            "skipped",
            format!("{} input lines (frees of untraced pointers, failed calls)", units::count(skipped)),
        )?;
    }
    row(
        out,
        "blocks",
        format!(
            "{} allocated, {} live at most, {} never freed ({} live at the end)",
            units::count(info.blocks),
            units::count(info.peak_live_blocks),
            units::count(info.final_live_blocks),
            units::bytes(info.final_live_bytes)
        ),
    )?;
    let peak_at = info.peak_op.map_or("-".to_string(), |op| format!("after op {}", units::count(op)));
    row(
        out,
        "peak live",
        format!("{} requested ({} bytes), {peak_at}", units::bytes(info.peak_live_bytes), info.peak_live_bytes),
    )?;
    if info.threads.len() > 1 {
        print_threads(out, info)?;
    }
    if !info.sizes.is_empty() {
        let size = |q: f64| units::bytes(info.sizes.value_at_quantile(q));
        row(
            out,
            "sizes",
            format!(
                "p50 {}, p90 {}, p99 {}, max {} (min {})",
                size(0.5),
                size(0.9),
                size(0.99),
                units::bytes(info.sizes.max()),
                units::bytes(info.sizes.min())
            ),
        )?;
    }
    if !info.lifetimes.is_empty() {
        let ops = |q: f64| units::count(info.lifetimes.value_at_quantile(q));
        row(
            out,
            "lifetimes",
            format!(
                "p50 {}, p90 {}, p99 {}, max {} ops",
                ops(0.5),
                ops(0.9),
                ops(0.99),
                units::count(info.lifetimes.max())
            ),
        )?;
    }
    let allocs = info.count(OpKind::Alloc).max(1) as f64;
    let aligns: Vec<String> = info
        .aligns
        .iter()
        .map(|(align, n)| {
            let name = align.map_or("unspecified".to_string(), |a| a.to_string());
            format!("{name} {:.1}%", 100.0 * *n as f64 / allocs)
        })
        .collect();
    row(out, "alignment", if aligns.is_empty() { "-".into() } else { aligns.join(", ") })?;
    let total: u64 = info.size_buckets.iter().sum();
    if total > 0 {
        writeln!(out, "size histogram (alloc and realloc requests)")?;
        let first = info.size_buckets.iter().position(|&n| n > 0).unwrap_or(0);
        let last = info.size_buckets.iter().rposition(|&n| n > 0).unwrap_or(0);
        let widest = *info.size_buckets.iter().max().unwrap_or(&1);
        for bucket in first..=last {
            let n = info.size_buckets[bucket];
            let range = if bucket == 0 {
                "0".to_string()
            } else {
                format!(
                    "[{}, {})",
                    units::bytes(1 << (bucket - 1)),
                    units::bytes(1u64.checked_shl(bucket as u32).unwrap_or(u64::MAX))
                )
            };
            let bar = "#".repeat(((n as f64 / widest as f64) * 40.0).round() as usize);
            writeln!(out, "  {range:<22} {:>12} {:>6.2}%  {bar}", units::count(n), 100.0 * n as f64 / total as f64)?;
        }
    }
    Ok(())
}

/// A recorded multithreaded trace's threads: ops and peak live bytes per
/// thread (the first 16, then totals of the rest), and its cross-thread
/// frees, counted as `heaplab run --threads` counts them.
fn print_threads(out: &mut dyn Write, info: &TraceInfo) -> io::Result<()> {
    const SHOWN: usize = 16;
    let row = |out: &mut dyn Write, label: &str, value: String| writeln!(out, "{label:<12} {value}");
    let ops = info.ops().max(1) as f64;
    let mut each: Vec<String> = info
        .threads
        .iter()
        .enumerate()
        .take(SHOWN)
        .map(|(id, t)| {
            format!(
                "{id}: {} ops ({:.1}%), peak {}",
                units::count(t.ops),
                100.0 * t.ops as f64 / ops,
                units::bytes(t.peak_live_bytes)
            )
        })
        .collect();
    if info.threads.len() > SHOWN {
        let rest: u64 = info.threads[SHOWN..].iter().map(|t| t.ops).sum();
        each.push(format!("{} more: {} ops", info.threads.len() - SHOWN, units::count(rest)));
    }
    row(out, "threads", format!("{} (ops and peak live bytes owned, per thread)", info.threads.len()))?;
    for line in each {
        row(out, "", line)?;
    }
    row(
        out,
        "remote",
        format!(
            "{} of {} frees ({:.2}%) free a block another thread allocated or reallocated last; {} reallocs take one over",
            units::count(info.remote_frees),
            units::count(info.count(OpKind::Free)),
            info.remote_free_pct(),
            units::count(info.remote_reallocs)
        ),
    )
}

fn convert(args: &ConvertArgs) -> anyhow::Result<()> {
    let file = std::fs::File::open(&args.input).map_err(|e| TraceError::io(&args.input, e))?;
    let mut reader = formats::TraceReader::from_reader(file, &args.input.display().to_string(), args.from)?
        .with_options(ReadOptions { lenient: args.lenient });
    let from = reader.format();
    let meta = reader
        .meta()
        .map(str::to_string)
        .unwrap_or_else(|| format!("converted from {} ({from})", args.input.display()));
    let to = args.to.or_else(|| Format::from_path(&args.output)).with_context(|| {
        format!(
            "cannot tell the output format from `{}`: name it .hlt, .rep or .mtrace, or give --to",
            args.output.display()
        )
    })?;
    let mut aligned = 0u64;
    let fields = formats::Fields { threads: reader.has_threads(), levels: reader.has_levels() };
    let mut threads = std::collections::BTreeSet::new();
    let steps = std::iter::from_fn(|| reader.next_step()).inspect(|step| {
        if let Ok(step) = step {
            threads.insert(step.thread);
            if let heaplab_workloads::Op::Alloc { align, .. } = step.op
                && !align.is_unspecified()
            {
                aligned += 1;
            }
        }
    });
    let written = formats::write_steps(&args.output, Some(to), steps, &meta, fields)?;
    eprintln!("converted {} ops from {from} to {to}: {}", units::count(written), args.output.display());
    for note in reader.notes() {
        eprintln!("note: {note}");
    }
    if aligned > 0 && to != Format::Native {
        eprintln!("note: {to} has no alignment field; {} allocs lost theirs", units::count(aligned));
    }
    if threads.len() > 1 && to != Format::Native {
        eprintln!(
            "note: {to} has no thread field; the {} threads' ops are written in their recorded order, as one thread",
            threads.len()
        );
    }
    Ok(())
}

fn validate(args: &ValidateArgs) -> anyhow::Result<()> {
    for path in &args.traces {
        let mut reader = formats::open_with(path, ReadOptions { lenient: args.lenient })?;
        let info = info::analyze(reader.by_ref(), &path.display().to_string())?;
        for note in reader.notes() {
            eprintln!("note: {note}");
        }
        println!(
            "{}: ok ({}), {} ops: {} alloc, {} free, {} realloc; {} blocks live at the end",
            path.display(),
            reader.format(),
            units::count(info.ops()),
            units::count(info.count(OpKind::Alloc)),
            units::count(info.count(OpKind::Free)),
            units::count(info.count(OpKind::Realloc)),
            units::count(info.final_live_blocks)
        );
    }
    Ok(())
}
