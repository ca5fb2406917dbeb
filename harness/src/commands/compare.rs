//! `heaplab compare BASE NEW`: the regression gate; `heaplab compare RUN
//! --ours A --peer B`: two allocators of one run side by side.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, ValueEnum};
use heaplab::compare::{self, ResultSet, Style};
use heaplab::registry::AllocatorSpec;

/// Arguments of `heaplab compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The reference results: a results directory or its summary.csv (with
    /// `--ours`/`--peer`: the one run whose allocators are paired).
    base: PathBuf,
    /// The results to judge.
    #[arg(required_unless_present = "ours")]
    new: Option<PathBuf>,
    /// Pair allocators of one run instead: this allocator's time per op
    /// over `--peer`'s, per workload, with its interval. Repeatable; the
    /// n-th `--ours` pairs with the n-th `--peer`.
    #[arg(long, value_name = "SPEC", requires = "peer", conflicts_with = "new")]
    ours: Vec<String>,
    /// The allocator each `--ours` is held against.
    #[arg(long, value_name = "SPEC", requires = "ours")]
    peer: Vec<String>,
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
    /// Judge throughput rows timed on different machines too (rows of runs
    /// merged from shards name their machine); by default they are listed
    /// as `other host` and not judged.
    #[arg(long)]
    across_hosts: bool,
    /// Exit 0 although no timed row could be judged (every interval
    /// inconclusive, or too few samples); without it that exits 3.
    #[arg(long)]
    allow_inconclusive: bool,
}

/// What a comparison decided, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing failed (exit 0).
    Pass,
    /// A regression, a changed deterministic figure or a missing row (exit 1).
    Fail,
    /// Both sides timed, not one timed row judged (exit 3).
    Undecided,
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

/// Compare, and say what it decided.
pub fn run(args: &CompareArgs) -> anyhow::Result<Outcome> {
    let style = match args.format {
        Format::Terminal => Style::Terminal,
        Format::Markdown => Style::Markdown,
    };
    let Some(new_path) = &args.new else {
        if args.ours.len() != args.peer.len() {
            bail!("{} --ours but {} --peer: give them in pairs", args.ours.len(), args.peer.len());
        }
        let canonical = |text: &String| AllocatorSpec::parse(text).map(|spec| spec.spec());
        let pairs = args
            .ours
            .iter()
            .zip(&args.peer)
            .map(|(ours, peer)| Ok((canonical(ours)?, canonical(peer)?)))
            .collect::<Result<Vec<_>, heaplab_core::SpecError>>()?;
        let set = ResultSet::read(&args.base)?;
        anstream::print!("{}", compare::pairwise::render(&compare::pairwise::pairwise(&set, &pairs)?, style));
        return Ok(Outcome::Pass);
    };
    let base = ResultSet::read(&args.base)?;
    let new = ResultSet::read(new_path)?;
    let judging = compare::Judging {
        threshold: args.threshold,
        correct_drift: !args.no_drift_correction,
        across_hosts: args.across_hosts,
    };
    let comparison = compare::compare(&base, &new, judging);
    let sides = compare::Sides {
        base: base.describe(),
        new: new.describe(),
        settings_differing: base.settings_differing(&new),
    };
    anstream::print!("{}", compare::render(&comparison, args.threshold, style, args.all, &sides));
    Ok(if comparison.findings.iter().any(|f| f.verdict.fails()) {
        Outcome::Fail
    } else if comparison.undecided() && !args.allow_inconclusive {
        Outcome::Undecided
    } else {
        Outcome::Pass
    })
}
