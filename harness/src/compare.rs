//! `heaplab compare BASE NEW`: what changed between two result sets, with
//! statistical care for timings and exactly for everything deterministic.
//!
//! Rows pair by (allocator, workload, seed).
//!
//! - **Throughput**: from the timed repetitions of each side
//!   (`throughput.csv`), the change `new / base` as the Hodges–Lehmann
//!   estimate (the median of all pairwise ratios between the two sides) with
//!   its exact distribution-free confidence interval from the Mann–Whitney
//!   rank test (Hollander & Wolfe, *Nonparametric Statistical Methods*,
//!   §4.3): exact coverage, however few the samples, whatever their
//!   distribution, when the two sides differ by a shift of log throughput
//!   (and so when they do not differ at all, the false-alarm case), where a
//!   bootstrap of five values undercovers. Beyond 2,500 sample pairs the
//!   normal approximation stands in for the exact distribution. No random
//!   numbers: the verdict is reproducible.
//! - **The sample unit is the timing process**: a process is a draw of
//!   everything fixed for its lifetime, and a cell can differ by 20 % from
//!   one process to the next while its repetitions within each agree to
//!   2 %. When a side's repetitions come from several processes, each
//!   process contributes one value (the median of its repetitions);
//!   repetitions of a single process are used as they are, and the headline
//!   warns that they understate the uncertainty (Kalibera & Jones,
//!   *Rigorous Benchmarking in Reasonable Time*, 2013).
//! - **Simultaneous intervals**: a comparison asks one question per row,
//!   and a gate fails if any answer is "slower". Each row's interval is
//!   therefore at level `1 − 0.05 / rows` (Bonferroni), so that all of a
//!   comparison's intervals hold together with at least 95 % probability:
//!   (before the drift, estimated from the same rows, is divided out), so
//!   a noisy row (a cell whose working set lives in a last-level cache
//!   shared with other tenants moves by ±15 %) then alarms by chance
//!   rarely enough for a gate. Over the default suite's 84 rows that needs
//!   7 processes a side (`2 / C(14, 7)` ≤ 0.05 / 84); with fewer, a row gets
//!   the verdict `too few`, which does not fail, and the headline says how
//!   many processes are needed.
//! - A *regression* is an interval entirely below `1 − threshold`: slower
//!   beyond the threshold, and not by chance. An *improvement* is an
//!   interval entirely above `1 + threshold`. Anything else is within noise
//!   or threshold.
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

use crate::results::{SummaryRow, ThroughputRow, read_summary};
use crate::timing::median;

/// Family-wise error of the intervals: all the intervals of a comparison
/// hold together with at least 95 % probability.
const ALPHA: f64 = 0.05;
/// Timing processes per side below which the headline warns.
pub const MIN_PROCESSES: usize = 3;
/// Throughput rows needed before machine drift is estimated.
pub const MIN_ROWS_FOR_DRIFT: usize = 5;

/// A row's identity.
pub type Key = (String, String, Option<u64>);

/// The repetitions of one row by repetition number (the round it ran in):
/// the timing process that ran it, and its ops/s.
pub type Repetitions = BTreeMap<u64, (u64, f64)>;

/// One result set: its summary rows and its timed repetitions.
#[derive(Debug, Clone)]
pub struct ResultSet {
    /// Where it came from.
    pub path: PathBuf,
    /// Summary rows by key.
    pub rows: BTreeMap<Key, SummaryRow>,
    /// Ops/s of every repetition, by key, grouped by timing process.
    pub samples: BTreeMap<Key, Vec<Vec<f64>>>,
    /// Every repetition by key and repetition number (the round it ran
    /// in): its timing process and ops/s.
    pub repetitions: BTreeMap<Key, Repetitions>,
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
        let mut grouped: BTreeMap<Key, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
        let mut repetitions: BTreeMap<Key, Repetitions> = BTreeMap::new();
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
                let k = key(&row.allocator, &row.workload, row.seed);
                repetitions.entry(k.clone()).or_default().insert(row.rep, (row.process, row.ops_per_sec));
                grouped.entry(k).or_default().entry(row.process).or_default().push(row.ops_per_sec);
            }
        }
        let samples = grouped.into_iter().map(|(k, by_process)| (k, by_process.into_values().collect())).collect();
        Ok(ResultSet { path: dir, rows, samples, repetitions })
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
    /// Too few samples for a 95 % interval.
    TooFew,
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
            Verdict::TooFew => "too few",
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

/// The values a side contributes: one per timing process (the median of
/// its repetitions) when there are several, else the repetitions.
pub fn sample_units(groups: &[Vec<f64>]) -> Vec<f64> {
    if groups.len() >= 2 { groups.iter().map(|group| median(&mut group.clone())).collect() } else { groups.concat() }
}

/// `P(U ≤ u)` for `u` in `0..=n·m`, the exact null distribution of the
/// Mann–Whitney statistic for samples of `n` and `m`: the number of
/// arrangements with `u` inversions, by the recurrence
/// `N(i, j, u) = N(i − 1, j, u − j) + N(i, j − 1, u)`, over `C(n + m, n)`.
fn mann_whitney_cdf(n: usize, m: usize) -> Vec<f64> {
    let top = n * m;
    if top > EXACT_PAIRS {
        return normal_mann_whitney_cdf(n, m);
    }
    // row[j][u] = N(i, j, u) for the current i.
    let mut row = vec![vec![0.0f64; top + 1]; m + 1];
    for counts in &mut row {
        counts[0] = 1.0;
    }
    for _ in 1..=n {
        let mut next = vec![vec![0.0f64; top + 1]; m + 1];
        next[0][0] = 1.0;
        for j in 1..=m {
            for u in 0..=top {
                let from_i = if u >= j { row[j][u - j] } else { 0.0 };
                next[j][u] = from_i + next[j - 1][u];
            }
        }
        row = next;
    }
    let counts = &row[m];
    let total: f64 = counts.iter().sum();
    let mut cumulative = 0.0;
    counts
        .iter()
        .map(|c| {
            cumulative += c;
            cumulative / total
        })
        .collect()
}

/// Sample sizes up to `n · m` of this many get the exact distribution (the
/// recurrence costs `n · m · nm`); larger ones the normal approximation.
const EXACT_PAIRS: usize = 2500;

/// `P(U ≤ u)` by the normal approximation with continuity correction: mean
/// `nm/2`, variance `nm(n + m + 1)/12` (Hollander & Wolfe §4.1).
fn normal_mann_whitney_cdf(n: usize, m: usize) -> Vec<f64> {
    let top = n * m;
    let mean = top as f64 / 2.0;
    let sd = (top as f64 * (n + m + 1) as f64 / 12.0).sqrt();
    (0..=top).map(|u| standard_normal_cdf((u as f64 + 0.5 - mean) / sd)).collect()
}

/// Φ(x), from erfc by Abramowitz & Stegun 7.1.26 (absolute error below
/// 1.5·10⁻⁷).
pub fn standard_normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-z * z).exp();
    if x >= 0.0 { 1.0 - erfc / 2.0 } else { erfc / 2.0 }
}

/// The ratio `new / base` as the Hodges–Lehmann estimate on log
/// throughput, with its exact Mann–Whitney interval of coverage at least
/// `1 − alpha`: `(ratio, Some((low, high)))`, or `(ratio, None)` when the
/// samples are too few for that coverage.
pub fn ratio_interval(base: &[f64], new: &[f64], alpha: f64) -> (f64, Option<(f64, f64)>) {
    let mut differences: Vec<f64> = new.iter().flat_map(|n| base.iter().map(move |b| n.ln() - b.ln())).collect();
    differences.sort_by(f64::total_cmp);
    let point = median(&mut differences.clone()).exp();
    let (n, m) = (base.len(), new.len());
    // The interval [D(c), D(nm + 1 − c)] covers with 1 − 2 P(U ≤ c − 1);
    // the largest c that keeps that at 1 − alpha or more.
    let cdf = mann_whitney_cdf(n, m);
    let Some(c) = (1..=differences.len().div_ceil(2)).take_while(|&c| 2.0 * cdf[c - 1] <= alpha).last() else {
        return (point, None);
    };
    (point, Some((differences[c - 1].exp(), differences[differences.len() - c].exp())))
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
    /// The fewest timing processes behind a timed row of BASE and of NEW
    /// (`None` without timed rows).
    pub processes: Option<(usize, usize)>,
    /// Throughput rows compared: the family the intervals hold over together.
    pub timed_rows: usize,
}

/// Samples a side needs (with as many on the other) for an interval of
/// coverage `1 − alpha`: the smallest `n` with `2 / C(2n, n) ≤ alpha`.
pub fn samples_needed(alpha: f64) -> usize {
    let mut ways = 2.0; // C(2, 1)
    let mut n = 1;
    while 2.0 / ways > alpha && n < 64 {
        // C(2n + 2, n + 1) = C(2n, n) · (2n + 1)(2n + 2) / (n + 1)²
        ways *= ((2 * n + 1) * (2 * n + 2)) as f64 / ((n + 1) * (n + 1)) as f64;
        n += 1;
    }
    n
}

/// Compare two result sets; `correct_drift` divides the median throughput
/// ratio out of every ratio.
pub fn compare(base: &ResultSet, new: &ResultSet, threshold: f64, correct_drift: bool) -> Comparison {
    let mut findings = Vec::new();
    let mut timed = Vec::new();
    // The fewest timing processes behind any timed row, per side.
    let mut processes = [usize::MAX; 2];
    for (k, base_row) in &base.rows {
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
            let pooled = |groups: &Vec<Vec<f64>>| median(&mut groups.concat());
            processes[0] = processes[0].min(b.len());
            processes[1] = processes[1].min(n.len());
            timed.push((k.clone(), pooled(b), pooled(n), sample_units(b), sample_units(n)));
        }
    }
    // Simultaneous intervals (Bonferroni): each row at 1 − ALPHA / rows.
    let alpha = ALPHA / timed.len().max(1) as f64;
    let timed: Vec<_> = timed
        .into_iter()
        .map(|(k, base_median, new_median, base_units, new_units)| {
            let (ratio, interval) = ratio_interval(&base_units, &new_units, alpha);
            (k, base_median, new_median, ratio, interval)
        })
        .collect();
    let drift = if correct_drift && timed.len() >= MIN_ROWS_FOR_DRIFT {
        median(&mut timed.iter().map(|t| t.3).collect::<Vec<_>>())
    } else {
        1.0
    };
    let timed_rows = timed.len();
    for (k, base_median, new_median, ratio, interval) in timed {
        let ratio = ratio / drift;
        let interval = interval.map(|(low, high)| (low / drift, high / drift));
        let verdict = match interval {
            None => Verdict::TooFew,
            Some((_, high)) if high < 1.0 - threshold => Verdict::Regression,
            Some((low, _)) if low > 1.0 + threshold => Verdict::Improvement,
            Some(_) => Verdict::Unchanged,
        };
        findings.push(Finding {
            key: k,
            metric: "ops_per_sec".into(),
            base: format!("{base_median:.3e}"),
            new: format!("{new_median:.3e}"),
            change: Some(ratio - 1.0),
            interval,
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
    let processes = (processes[0] != usize::MAX).then_some((processes[0], processes[1]));
    Comparison { findings, drift, processes, timed_rows }
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
    let shown: Vec<&Finding> =
        findings.iter().filter(|f| all || !matches!(f.verdict, Verdict::Unchanged | Verdict::TooFew)).collect();
    let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
    let headline = format!(
        "{} regressions, {} changed deterministic figures, {} missing rows, {} improvements, {} unchanged{} (threshold {:.1}%; exact rank intervals, simultaneous 95% over {} throughput rows)",
        count(Verdict::Regression),
        count(Verdict::Changed),
        count(Verdict::Missing),
        count(Verdict::Improvement),
        count(Verdict::Unchanged),
        match count(Verdict::TooFew) {
            0 => String::new(),
            n => format!(", {n} with too few samples to judge"),
        },
        100.0 * threshold,
        comparison.timed_rows
    );
    let headline = if comparison.drift == 1.0 {
        headline
    } else {
        format!(
            "{headline}; machine drift {:+.1}% (median ratio of all rows) divided out",
            100.0 * (comparison.drift - 1.0)
        )
    };
    let headline = match comparison.processes {
        Some((base, new)) if base.min(new) < MIN_PROCESSES => format!(
            "{headline}\nnote: some timings come from {} timing process{} (BASE) and {} (NEW); a process can differ from \
             another by more than its repetitions vary, so the intervals may be too narrow: run with --processes {MIN_PROCESSES} or more",
            base,
            if base == 1 { "" } else { "es" },
            new
        ),
        _ => headline,
    };
    let headline = match count(Verdict::TooFew) {
        0 => headline,
        _ => format!(
            "{headline}\nnote: intervals that hold together over {} rows need {} timing processes a side (heaplab run --reps N --processes N)",
            comparison.timed_rows,
            samples_needed(ALPHA / comparison.timed_rows.max(1) as f64)
        ),
    };
    let header =
        ["allocator", "workload", "seed", "metric", "base", "new", "change", "interval of new/base", "verdict"];
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
        let (ratio, interval) = ratio_interval(&base, &slower, 0.05);
        let (low, high) = interval.unwrap();
        assert!((ratio - 0.8).abs() < 1e-12);
        assert!(low <= 0.8 && (0.8..0.95).contains(&high), "[{low}, {high}]");
        let (ratio, interval) = ratio_interval(&base, &base, 0.05);
        let (low, high) = interval.unwrap();
        assert!((ratio - 1.0).abs() < 1e-12);
        assert!(low < 1.0 && high > 1.0 && low > 0.9 && high < 1.1, "[{low}, {high}]");
    }

    /// The exact null distribution against values worked out by hand.
    #[test]
    fn the_mann_whitney_distribution_is_exact() {
        // n = m = 2: U = 0, 1, 2, 2, 3, 4 over the C(4, 2) = 6 arrangements.
        let cdf = mann_whitney_cdf(2, 2);
        let expected = [1.0, 2.0, 4.0, 5.0, 6.0].map(|c| c / 6.0);
        assert!(cdf.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12), "{cdf:?}");
        // n = m = 5: P(U ≤ 2) = 4/252, so [D(3), D(23)] covers 96.8 %.
        let cdf = mann_whitney_cdf(5, 5);
        assert!((cdf[2] - 4.0 / 252.0).abs() < 1e-12);
        assert!((cdf[25] - 1.0).abs() < 1e-12);
        // Symmetric: P(U ≤ u) = P(U ≥ nm − u).
        let cdf = mann_whitney_cdf(3, 7);
        for u in 0..21 {
            assert!((cdf[u] - (1.0 - cdf[20 - u])).abs() < 1e-12);
        }
    }

    /// Five values a side: the interval is the 3rd and 23rd of the 25
    /// pairwise ratios; three a side cannot reach 95 %.
    #[test]
    fn the_interval_uses_the_right_order_statistics() {
        let base = [1.0, 1.0, 1.0, 1.0, 1.0];
        let new = [1.0, 2.0, 3.0, 4.0, 5.0];
        // Pairwise ratios: each of 1..=5 five times.
        let (ratio, interval) = ratio_interval(&base, &new, 0.05);
        assert_eq!(ratio, 3.0_f64.ln().exp());
        let (low, high) = interval.unwrap();
        assert!((low - 1.0).abs() < 1e-12 && (high - 5.0).abs() < 1e-12, "[{low}, {high}]");
        assert_eq!(ratio_interval(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 0.05).1, None);
        assert!(ratio_interval(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, 4.0], 0.05).1.is_some());
        // At 1 − 0.05/84 five a side are too few: all 25 ratios below
        // would happen by chance with probability 1/252 = 0.004.
        assert_eq!(ratio_interval(&base, &new, 0.05 / 84.0).1, None);
    }

    /// Past the exact range the normal approximation takes over, close to
    /// the exact tail where both apply, and fast on big samples.
    #[test]
    fn large_samples_use_the_normal_approximation() {
        let exact = mann_whitney_cdf(50, 50);
        let normal = normal_mann_whitney_cdf(50, 50);
        for u in [900, 1000, 1250] {
            assert!((exact[u] - normal[u]).abs() < 0.002, "u {u}: {} vs {}", exact[u], normal[u]);
        }
        assert!((standard_normal_cdf(-1.959_964) - 0.025).abs() < 1e-6);
        let base: Vec<f64> = (0..400).map(|i| 100.0 + (i % 7) as f64).collect();
        let new: Vec<f64> = base.iter().map(|v| v * 0.8).collect();
        let (ratio, interval) = ratio_interval(&base, &new, 0.05 / 84.0);
        let (low, high) = interval.unwrap();
        assert!((ratio - 0.8).abs() < 1e-9 && low <= 0.8 && (0.8..0.82).contains(&high), "[{low}, {high}]");
    }

    #[test]
    fn samples_needed_follow_the_binomial_coefficients() {
        // 2/C(2n, n): n = 4: 2/70 = 0.029; n = 5: 2/252 = 0.0079; n = 7: 2/3432 = 0.00058.
        assert_eq!(samples_needed(0.05), 4);
        assert_eq!(samples_needed(0.01), 5);
        assert_eq!(samples_needed(0.05 / 84.0), 7);
        assert_eq!(samples_needed(0.05 / 210.0), 8);
    }

    /// Four of five processes 10 % slower, repetitions that agree within
    /// each process: taking the 55 repetitions as independent calls it a
    /// sure regression; one value per process sees that one process in five
    /// disagrees, which five values cannot rule out.
    #[test]
    fn the_unit_is_the_timing_process() {
        let process = |level: f64| (0..11).map(|i| level + 0.01 * i as f64).collect::<Vec<f64>>();
        let base: Vec<Vec<f64>> = (0..5).map(|_| process(100.0)).collect();
        let new = vec![process(90.0), process(90.0), process(90.0), process(90.0), process(100.0)];
        let (_, interval) = ratio_interval(&sample_units(&base), &sample_units(&new), 0.05);
        let (low, high) = interval.unwrap();
        assert!(low < 0.91 && high > 0.99, "five processes: [{low}, {high}]");
        let (_, interval) = ratio_interval(&base.concat(), &new.concat(), 0.05);
        let (_, high) = interval.unwrap();
        assert!(high < 0.95, "55 pooled repetitions: high {high}");
    }
}
