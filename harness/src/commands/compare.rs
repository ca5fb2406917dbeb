//! `heaplab compare BASE NEW`: the regression gate.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use heaplab::compare::{self, ResultSet, Style};

/// Arguments of `heaplab compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The reference results: a results directory or its summary.csv.
    base: PathBuf,
    /// The results to judge.
    new: PathBuf,
    /// Smallest slowdown that counts as a regression, e.g. `5%` or `0.05`.
    #[arg(long, default_value = "5%", value_parser = parse_threshold)]
    threshold: f64,
    /// Output: an aligned table, or Markdown for a pull-request comment.
    #[arg(long, value_enum, default_value_t = Format::Terminal)]
    format: Format,
    /// Also list the comparisons that found no change.
    #[arg(long)]
    all: bool,
    /// Judge raw throughput ratios, without dividing out the machine drift
    /// (the median ratio over all rows).
    #[arg(long)]
    no_drift_correction: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Terminal,
    Markdown,
}

fn parse_threshold(text: &str) -> Result<f64, String> {
    let value = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    match value {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a threshold such as 5% or 0.05 (below 100%), found `{text}`")),
    }
}

/// Compare; `Ok(true)` if the gate fails.
pub fn run(args: &CompareArgs) -> anyhow::Result<bool> {
    let base = ResultSet::read(&args.base)?;
    let new = ResultSet::read(&args.new)?;
    let comparison = compare::compare(&base, &new, args.threshold, !args.no_drift_correction);
    let style = match args.format {
        Format::Terminal => Style::Terminal,
        Format::Markdown => Style::Markdown,
    };
    print!("{}", compare::render(&comparison, args.threshold, style, args.all));
    Ok(comparison.findings.iter().any(|f| f.verdict.fails()))
}
