//! `heaplab record -- COMMAND`: record a real program's allocations.
//!
//! The command runs with the `heaplab-recorder` preload library, which logs
//! every malloc-family call of every process that inherits it to a raw file
//! per process in a temporary directory. When the command has exited, each
//! log becomes a native trace: the command's own process goes to `-o FILE`,
//! every other process to `FILE`'s stem + `.PID` + its extension. A
//! process that allocated on more than one thread gets a native trace with
//! threads (ids dense from 0 in creation order; a `.rep` or mtrace output
//! keeps only the order, and says so). The command's output is untouched
//! and its exit status is heaplab's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::Args;
use heaplab::units;
use heaplab_workloads::ThreadOp;
use heaplab_workloads::formats::{self, Format, raw::RawReader};

/// The preload library's file name.
const LIBRARY: &str = "libheaplab_recorder.so";

/// Arguments of `heaplab record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Trace of the command's own process (native format; `.rep`, `.mtrace`
    /// and `.zst` work too). Child processes get `STEM.PID.EXT` beside it.
    #[arg(short, long, default_value = "heaplab.hlt")]
    output: PathBuf,
    /// The preload library (default: $HEAPLAB_RECORDER, or beside this
    /// executable, where `cargo build -p heaplab` puts it).
    #[arg(long)]
    library: Option<PathBuf>,
    /// The command to record, and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Where the preload library is.
fn find_library(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    find_preload(LIBRARY, "HEAPLAB_RECORDER", given)
}

/// Where a preload library named `file` is: `given`, else the file the
/// environment variable `variable` names, else beside this executable
/// (where `cargo build -p heaplab` puts it) or in its `deps/` (where `cargo
/// test` does), the newer of the two.
pub fn find_preload(file: &str, variable: &str, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given.map(Path::to_path_buf).or_else(|| std::env::var_os(variable).map(PathBuf::from)) {
        if path.is_file() {
            return Ok(std::fs::canonicalize(&path).unwrap_or(path));
        }
        bail!("{}: no such preload library", path.display());
    }
    let exe = std::env::current_exe().context("finding heaplab's own executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    // `cargo build` puts the library beside the executable and `cargo test`
    // only in deps/: when both are there, the newer is this build's.
    let newest = [dir.join(file), dir.join("deps").join(file)]
        .into_iter()
        .filter_map(|candidate| {
            let meta = std::fs::metadata(&candidate).ok().filter(|m| m.is_file())?;
            Some((meta.modified().ok()?, candidate))
        })
        .max_by_key(|(modified, _)| *modified);
    if let Some((_, candidate)) = newest {
        return Ok(candidate);
    }
    bail!(
        "cannot find {file} beside {} (build it with `cargo build --release -p heaplab`, or name it with --library or {variable})",
        exe.display()
    )
}

/// `dir/stem.PID.ext` for a child process's trace.
fn child_output(output: &Path, pid: u32) -> PathBuf {
    let name = output.file_name().and_then(|n| n.to_str()).unwrap_or("heaplab.hlt");
    let (stem, extension) = match name.split_once('.') {
        Some((stem, extension)) => (stem, format!(".{extension}")),
        None => (name, String::new()),
    };
    output.with_file_name(format!("{stem}.{pid}{extension}"))
}

/// Record; returns the command's exit status.
pub fn record(args: &RecordArgs) -> anyhow::Result<ExitCode> {
    let library = find_library(args.library.as_deref())?;
    let format = Format::from_path(&args.output).unwrap_or(Format::Native);
    let logs = tempfile::Builder::new()
        .prefix("heaplab-record-")
        .tempdir()
        .context("creating a directory for the call logs")?;
    let prefix = logs.path().join("calls");
    let mut preload = library.as_os_str().to_os_string();
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(":");
        preload.push(existing);
    }
    let program = &args.command[0];
    let mut child = Command::new(program)
        .args(&args.command[1..])
        .env("LD_PRELOAD", &preload)
        .env("HEAPLAB_RECORD_PREFIX", &prefix)
        .spawn()
        .with_context(|| format!("cannot run `{}`", program.to_string_lossy()))?;
    let root = child.id();
    let status = child.wait().context("waiting for the command")?;

    let mut logs_found: Vec<(u32, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(logs.path()).context("reading the call logs")? {
        let path = entry?.path();
        let pid = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("calls."))
            .and_then(|n| n.strip_suffix(".raw"))
            .and_then(|n| n.parse().ok());
        if let Some(pid) = pid {
            logs_found.push((pid, path));
        }
    }
    // The command's own process first, then the others by pid.
    logs_found.sort_by_key(|&(pid, _)| (pid != root, pid));
    if logs_found.is_empty() {
        eprintln!(
            "heaplab record: no allocation was recorded: `{}` may be statically linked, setuid, or not use the C allocator",
            program.to_string_lossy()
        );
    }
    let command_line: Vec<String> = args.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    for (pid, log) in logs_found {
        let output = if pid == root { args.output.clone() } else { child_output(&args.output, pid) };
        let open = || -> anyhow::Result<RawReader<std::io::BufReader<std::fs::File>>> {
            let file = std::fs::File::open(&log).with_context(|| format!("opening {}", log.display()))?;
            Ok(RawReader::new(std::io::BufReader::with_capacity(1 << 20, file), &log.display().to_string())?)
        };
        // A first pass finds the threads that made ops, numbered densely in
        // creation order in the trace.
        let mut threads = std::collections::BTreeSet::new();
        let mut scan = open()?;
        while let Some(op) = scan.next() {
            op?;
            threads.insert(scan.thread());
        }
        let threads: Vec<u16> = threads.into_iter().collect();
        let threaded = threads.len() > 1;
        let mut reader = open()?;
        let meta = format!(
            "heaplab {} record: `{}`, process {pid}{}{}, {}",
            env!("CARGO_PKG_VERSION"),
            command_line.join(" "),
            if pid == root { "" } else { " (a child)" },
            if threaded { format!(", {} threads", threads.len()) } else { String::new() },
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        );
        let steps = std::iter::from_fn(|| {
            let op = reader.next()?;
            let thread = threads.binary_search(&reader.thread()).unwrap_or(0) as u16;
            Some(op.map(|op| ThreadOp { thread, op }))
        });
        let written = formats::write_steps(
            &output,
            Some(format),
            steps,
            &meta,
            formats::Fields { threads: threaded, levels: false },
        )?;
        let on = if threaded { format!(" on {} threads", threads.len()) } else { String::new() };
        eprintln!(
            "heaplab record: process {pid}: {} calls, {} ops{on} ({} skipped: failed calls, free(NULL), blocks allocated before) -> {}",
            units::count(reader.calls()),
            units::count(written),
            units::count(reader.skipped()),
            output.display()
        );
        if threaded && format != Format::Native {
            eprintln!(
                "heaplab record: {} keeps no threads: {} has the {} threads' ops in their recorded order, as one thread (record to .hlt to keep them)",
                format,
                output.display(),
                threads.len()
            );
        }
    }
    Ok(match status.code() {
        Some(code) => ExitCode::from(code as u8),
        None => {
            use std::os::unix::process::ExitStatusExt;
            ExitCode::from(128 + status.signal().unwrap_or(0) as u8)
        }
    })
}
