//! `heaplab compare BASE NEW`: what changed between two result sets, with
//! statistical care for timings and exactly for everything deterministic.
//!
//! Rows pair by (allocator, workload, seed).
//!
//! - **Throughput**: from the timed repetitions of each side
//!   (`throughput.csv`), the ratio of medians `new / base` with a 95 %
//!   bootstrap confidence interval (10,000 resamples of each side, a fixed
//!   seed, so the verdict is reproducible). A *regression* is an interval
//!   entirely below `1 − threshold`: slower beyond the threshold, and not
//!   by chance. An *improvement* is an interval entirely above `1 +
//!   threshold`. Anything else is within noise or threshold.
//! - **Machine drift**: two runs on a shared machine differ as a whole (a
//!   busier neighbour, another clock speed) by more than their repetitions
//!   vary. With at least [`MIN_ROWS_FOR_DRIFT`] throughput rows, the median
//!   ratio over all rows is taken as the drift and divided out of every
//!   ratio and interval before judging (reported in the headline; turn it
//!   off with `--no-drift-correction`). A change that slows *every* row
//!   alike is then not a regression: it cannot be told from a slower
//!   machine. One allocator or workload getting slower still is.
//! - **Deterministic columns** (every fragmentation and count column of
//!   `summary.csv`): compared exactly; any difference is a change that must
//!   be explained, and fails the gate like a regression.
//! - A row present in BASE and missing from NEW fails the gate too (a
//!   measurement was lost); rows only in NEW are listed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::results::{SummaryRow, ThroughputRow, read_summary};
use crate::timing::median;

/// Bootstrap resamples per comparison.
const RESAMPLES: usize = 10_000;
/// Throughput rows needed before machine drift is estimated.
pub const MIN_ROWS_FOR_DRIFT: usize = 5;

/// A row's identity.
pub type Key = (String, String, Option<u64>);

/// One result set: its summary rows and its timed repetitions.
#[derive(Debug, Clone)]
pub struct ResultSet {
    /// Where it came from.
    pub path: PathBuf,
    /// Summary rows by key.
    pub rows: BTreeMap<Key, SummaryRow>,
    /// Ops/s of every repetition, by key.
    pub samples: BTreeMap<Key, Vec<f64>>,
}

/// Something wrong with an input.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CompareError(pub String);

fn key(allocator: &str, workload: &str, seed: Option<u64>) -> Key {
    (allocator.to_string(), workload.to_string(), seed)
}

impl ResultSet {
    /// Read a results directory (or its `summary.csv`).
    pub fn read(path: &Path) -> Result<ResultSet, CompareError> {
        let dir =
            if path.is_dir() { path.to_path_buf() } else { path.parent().unwrap_or(Path::new(".")).to_path_buf() };
        let summary = if path.is_dir() { path.join("summary.csv") } else { path.to_path_buf() };
        if !summary.is_file() {
            return Err(CompareError(format!(
                "{}: no summary.csv here; expected a heaplab results directory",
                path.display()
            )));
        }
        let mut rows = BTreeMap::new();
        for row in read_summary(&summary).map_err(CompareError)? {
            let k = key(&row.allocator, &row.workload, row.seed);
            if rows.insert(k.clone(), row).is_some() {
                return Err(CompareError(format!(
                    "{}: the row for {} on {} appears twice",
                    summary.display(),
                    k.0,
                    k.1
                )));
            }
        }
        let mut samples: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
        let throughput = dir.join("throughput.csv");
        if throughput.is_file() {
            let mut reader = csv::Reader::from_path(&throughput)
                .map_err(|e| CompareError(format!("{}: {e}", throughput.display())))?;
            for (index, row) in reader.deserialize::<ThroughputRow>().enumerate() {
                let row = row.map_err(|e| {
                    let line = e.position().map_or(index as u64 + 2, |p| p.line());
                    CompareError(format!("{}:{line}: expected a throughput row: {e}", throughput.display()))
                })?;
                if !row.ops_per_sec.is_finite() || row.ops_per_sec <= 0.0 {
                    return Err(CompareError(format!(
                        "{}: a repetition of {} has ops_per_sec {}",
                        throughput.display(),
                        row.allocator,
                        row.ops_per_sec
                    )));
                }
                samples.entry(key(&row.allocator, &row.workload, row.seed)).or_default().push(row.ops_per_sec);
            }
        }
        Ok(ResultSet { path: dir, rows, samples })
    }
}

/// A verdict on one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Slower beyond the threshold, with confidence.
    Regression,
    /// A deterministic figure differs.
    Changed,
    /// The row is missing from NEW.
    Missing,
    /// Faster beyond the threshold, with confidence.
    Improvement,
    /// Within noise or the threshold.
    Unchanged,
    /// Only in NEW.
    Added,
}

impl Verdict {
    /// Does it fail the gate?
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Regression | Verdict::Changed | Verdict::Missing)
    }

    fn word(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Changed => "CHANGED",
            Verdict::Missing => "MISSING",
            Verdict::Improvement => "improvement",
            Verdict::Unchanged => "unchanged",
            Verdict::Added => "added",
        }
    }
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Which row.
    pub key: Key,
    /// Which metric.
    pub metric: String,
    /// BASE's value, as text.
    pub base: String,
    /// NEW's value, as text.
    pub new: String,
    /// Relative change, new/base − 1.
    pub change: Option<f64>,
    /// Confidence interval of the ratio new/base.
    pub interval: Option<(f64, f64)>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Bootstrap 95 % interval of `median(new) / median(base)`.
pub fn ratio_interval(base: &[f64], new: &[f64], seed: u64) -> (f64, f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let resample = |values: &[f64], rng: &mut ChaCha8Rng| {
        let mut drawn: Vec<f64> = (0..values.len()).map(|_| values[rng.random_range(0..values.len())]).collect();
        median(&mut drawn)
    };
    let mut ratios: Vec<f64> = (0..RESAMPLES).map(|_| resample(new, &mut rng) / resample(base, &mut rng)).collect();
    ratios.sort_by(f64::total_cmp);
    let point = median(&mut new.to_vec()) / median(&mut base.to_vec());
    (point, ratios[RESAMPLES * 25 / 1000], ratios[RESAMPLES * 975 / 1000 - 1])
}

/// The deterministic columns of a summary row, as (name, text).
fn deterministic(row: &SummaryRow) -> Vec<(String, String)> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.serialize(row).expect("serialising to memory");
    let text = String::from_utf8(writer.into_inner().expect("in memory")).expect("UTF-8");
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).from_reader(lines.next().unwrap_or_default().as_bytes());
    let record = reader.records().next().and_then(Result::ok).unwrap_or_default();
    names
        .iter()
        .zip(record.iter())
        .take(crate::results::DETERMINISTIC_COLUMNS)
        .skip(3)
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// What was found, failures first.
    pub findings: Vec<Finding>,
    /// The machine drift divided out of throughput ratios (1 when not corrected).
    pub drift: f64,
}

/// Compare two result sets; `correct_drift` divides the median throughput
/// ratio out of every ratio.
pub fn compare(base: &ResultSet, new: &ResultSet, threshold: f64, correct_drift: bool) -> Comparison {
    let mut findings = Vec::new();
    let mut timed = Vec::new();
    for (index, (k, base_row)) in base.rows.iter().enumerate() {
        let Some(new_row) = new.rows.get(k) else {
            findings.push(Finding {
                key: k.clone(),
                metric: "row".into(),
                base: "present".into(),
                new: "missing".into(),
                change: None,
                interval: None,
                verdict: Verdict::Missing,
            });
            continue;
        };
        for ((name, old), (_, now)) in deterministic(base_row).into_iter().zip(deterministic(new_row)) {
            let same = old == now || matches!((old.parse::<f64>(), now.parse::<f64>()), (Ok(a), Ok(b)) if a == b);
            if !same {
                let change = match (old.parse::<f64>(), now.parse::<f64>()) {
                    (Ok(a), Ok(b)) if a != 0.0 => Some(b / a - 1.0),
                    _ => None,
                };
                findings.push(Finding {
                    key: k.clone(),
                    metric: name,
                    base: old,
                    new: now,
                    change,
                    interval: None,
                    verdict: Verdict::Changed,
                });
            }
        }
        if let (Some(b), Some(n)) = (base.samples.get(k), new.samples.get(k))
            && !b.is_empty()
            && !n.is_empty()
        {
            let (ratio, low, high) = ratio_interval(b, n, index as u64);
            timed.push((k.clone(), median(&mut b.clone()), median(&mut n.clone()), ratio, low, high));
        }
    }
    let drift = if correct_drift && timed.len() >= MIN_ROWS_FOR_DRIFT {
        median(&mut timed.iter().map(|t| t.3).collect::<Vec<_>>())
    } else {
        1.0
    };
    for (k, base_median, new_median, ratio, low, high) in timed {
        let (ratio, low, high) = (ratio / drift, low / drift, high / drift);
        let verdict = if high < 1.0 - threshold {
            Verdict::Regression
        } else if low > 1.0 + threshold {
            Verdict::Improvement
        } else {
            Verdict::Unchanged
        };
        findings.push(Finding {
            key: k,
            metric: "ops_per_sec".into(),
            base: format!("{base_median:.3e}"),
            new: format!("{new_median:.3e}"),
            change: Some(ratio - 1.0),
            interval: Some((low, high)),
            verdict,
        });
    }
    for k in new.rows.keys().filter(|k| !base.rows.contains_key(*k)) {
        findings.push(Finding {
            key: k.clone(),
            metric: "row".into(),
            base: "absent".into(),
            new: "present".into(),
            change: None,
            interval: None,
            verdict: Verdict::Added,
        });
    }
    findings.sort_by(|a, b| {
        a.verdict.cmp(&b.verdict).then_with(|| a.key.cmp(&b.key)).then_with(|| a.metric.cmp(&b.metric))
    });
    Comparison { findings, drift }
}

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned text for a terminal.
    Terminal,
    /// A GitHub-flavoured Markdown table, for a pull-request comment.
    Markdown,
}

/// Render the findings; unchanged throughput rows only with `all`.
pub fn render(comparison: &Comparison, threshold: f64, style: Style, all: bool) -> String {
    let findings = &comparison.findings;
    let shown: Vec<&Finding> = findings.iter().filter(|f| all || f.verdict != Verdict::Unchanged).collect();
    let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
    let headline = format!(
        "{} regressions, {} changed deterministic figures, {} missing rows, {} improvements, {} unchanged (threshold {:.1}%, 95% bootstrap intervals)",
        count(Verdict::Regression),
        count(Verdict::Changed),
        count(Verdict::Missing),
        count(Verdict::Improvement),
        count(Verdict::Unchanged),
        100.0 * threshold
    );
    let headline = if comparison.drift == 1.0 {
        headline
    } else {
        format!(
            "{headline}; machine drift {:+.1}% (median ratio of all rows) divided out",
            100.0 * (comparison.drift - 1.0)
        )
    };
    let header = ["allocator", "workload", "seed", "metric", "base", "new", "change", "95% CI of new/base", "verdict"];
    let lines: Vec<[String; 9]> = shown
        .iter()
        .map(|f| {
            [
                crate::table::short_allocator(&f.key.0),
                crate::table::short_workload(&f.key.1),
                f.key.2.map_or("-".into(), |s| s.to_string()),
                f.metric.clone(),
                f.base.clone(),
                f.new.clone(),
                f.change.map_or("-".into(), |c| format!("{:+.1}%", 100.0 * c)),
                f.interval.map_or("-".into(), |(l, h)| format!("[{l:.3}, {h:.3}]")),
                f.verdict.word().to_string(),
            ]
        })
        .collect();
    let mut text = String::new();
    match style {
        Style::Markdown => {
            let _ = writeln!(text, "**heaplab compare**: {headline}\n");
            if !lines.is_empty() {
                let _ = writeln!(text, "| {} |", header.join(" | "));
                let _ = writeln!(text, "|{}", "---|".repeat(header.len()));
                for line in &lines {
                    let cells: Vec<String> = line.iter().map(|c| c.replace('|', "\\|")).collect();
                    let _ = writeln!(text, "| {} |", cells.join(" | "));
                }
            }
        }
        Style::Terminal => {
            if !lines.is_empty() {
                let widths: Vec<usize> = (0..header.len())
                    .map(|i| lines.iter().map(|l| l[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
                    .collect();
                let row = |cells: Vec<&str>| {
                    cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                };
                let _ = writeln!(text, "{}", row(header.to_vec()));
                for line in &lines {
                    let _ = writeln!(text, "{}", row(line.iter().map(String::as_str).collect()));
                }
                text.push('\n');
            }
            let _ = writeln!(text, "{headline}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_brackets_the_true_ratio() {
        let base = [100.0, 102.0, 98.0, 101.0, 99.0];
        let slower: Vec<f64> = base.iter().map(|v| v * 0.8).collect();
        let (ratio, low, high) = ratio_interval(&base, &slower, 1);
        assert!((ratio - 0.8).abs() < 1e-12);
        assert!(low <= 0.8 && (0.8..0.95).contains(&high), "[{low}, {high}]");
        let (_, low, high) = ratio_interval(&base, &base, 1);
        assert!(low < 1.0 && high > 1.0 && low > 0.9 && high < 1.1, "[{low}, {high}]");
    }

    #[test]
    fn the_interval_is_reproducible() {
        let (a, b) = ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0]);
        assert_eq!(ratio_interval(&a, &b, 7), ratio_interval(&a, &b, 7));
    }
}
