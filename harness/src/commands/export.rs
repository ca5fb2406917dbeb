//! `heaplab export`: a results directory's summary as JSON, CSV, Markdown
//! or LaTeX.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use heaplab::publish::{Export, Format};
use heaplab_results::Results;

/// Arguments of `heaplab export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A results directory written by `heaplab run` (or `merge`, `exec`).
    results: PathBuf,
    /// The format (default: from the -o file's extension: .json, .csv,
    /// .md, .tex; else Markdown).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The summary.csv columns to export, comma-separated, or `all`
    /// (default: allocator, workload, seed and threads where they vary,
    /// throughput with its interval, alloc and free p99, internal and
    /// external fragmentation, utilization, footprint, failed allocations).
    #[arg(long, value_delimiter = ',', value_name = "COLUMN,…")]
    columns: Option<Vec<String>>,
    /// Export the cross-seed aggregate instead of the rows: per allocator,
    /// workload and thread count, each figure's mean over the seeds with
    /// its sample standard deviation. JSON always holds both.
    #[arg(long)]
    aggregate: bool,
    /// Write here instead of standard output (a file is replaced only
    /// once it is written whole).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Export a results directory.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let format = args.format.or_else(|| args.output.as_deref().and_then(Format::from_path));
    let format = match (format, &args.output) {
        (Some(format), _) => format,
        (None, Some(path)) if path.as_os_str() != "-" => bail!(
            "cannot tell the format from {}: name it with --format json|csv|markdown|latex, \
             or end the file name in .json, .csv, .md or .tex",
            path.display()
        ),
        (None, _) => Format::Markdown,
    };
    write(&args.results, format, args.columns.as_deref(), args.aggregate, args.output.as_deref())
}

/// Export `results` in `format` to `output` (standard output when `None`
/// or `-`); shared with `run --export`.
pub fn write(
    results: &Path,
    format: Format,
    columns: Option<&[String]>,
    aggregate: bool,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let read = Results::read(results)?;
    let text = Export::new(&read, columns)?.render(format, aggregate)?;
    let path = output.unwrap_or(Path::new("-"));
    heaplab_workloads::formats::write_bytes(path, text.as_bytes()).with_context(|| {
        if path.as_os_str() == "-" {
            "writing standard output".to_string()
        } else {
            format!("writing {}", path.display())
        }
    })
}
