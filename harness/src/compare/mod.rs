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
//! - **Verdicts** follow the interval of the ratio new/base against the
//!   threshold t. *Regression*: entirely below `1 − t` (slower beyond the
//!   threshold, and not by chance). *Improvement*: entirely above `1 + t`.
//!   *Unchanged*: entirely within `[1 − t, 1 + t]`. *Inconclusive*: any
//!   other interval (it crosses a bound: the data cannot tell). *Too few*:
//!   not enough samples for an interval. When both sides have timed rows
//!   and not one of them could be judged, the comparison is *undecided*
//!   ([`Comparison::undecided`]) and `heaplab compare` exits 3 (unless
//!   `--allow-inconclusive`): a gate on runs too short to tell must not
//!   pass silently.
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
//!
//! Reading is [`read`], the statistics [`stats`], the text [`render`]; the
//! two allocators of one run are compared by [`pairwise`].

pub mod pairwise;
mod read;
mod render;
pub mod stats;

pub use read::{CompareError, Key, Repetitions, ResultSet};
pub use render::{Sides, Style, render};
use stats::{ratio_interval, sample_units};

use std::collections::BTreeMap;

use crate::timing::median;
use crate::units;
pub use crate::units::significant;

/// Family-wise error of the intervals: all the intervals of a comparison
/// hold together with at least 95 % probability.
const ALPHA: f64 = 0.05;
/// Timing processes per side below which the headline warns.
pub const MIN_PROCESSES: usize = 3;
/// Throughput rows needed before machine drift is estimated.
pub const MIN_ROWS_FOR_DRIFT: usize = 5;

/// A verdict on one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Slower beyond the threshold, with confidence.
    Regression,
    /// A deterministic figure differs.
    Changed,
    /// The row is missing from NEW.
    Missing,
    /// Faster beyond the threshold, with confidence.
    Improvement,
    /// The interval crosses `1 − t` or `1 + t`: it cannot tell.
    Inconclusive,
    /// Too few samples for a 95 % interval.
    TooFew,
    /// Timed on different machines (rows of merged shards): not judged
    /// unless asked (`--across-hosts`).
    OtherHost,
    /// Within the threshold, with confidence.
    Unchanged,
    /// Only in NEW.
    Added,
}

impl Verdict {
    /// Does it fail the gate?
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Regression | Verdict::Changed | Verdict::Missing)
    }

    /// The word the comparison prints.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Changed => "CHANGED",
            Verdict::Missing => "MISSING",
            Verdict::Improvement => "improvement",
            Verdict::Inconclusive => "inconclusive",
            Verdict::TooFew => "too few",
            Verdict::OtherHost => "other host",
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
    /// With rows timed on several pairs of machines, the drift divided out
    /// of each pair's rows: (BASE's host, NEW's host, drift).
    pub host_drifts: Vec<(String, String, f64)>,
}

impl Comparison {
    /// Both sides had timed rows and not one could be judged (every one
    /// inconclusive, with too few samples, or timed on other machines): a
    /// gate that passed now would pass whatever changed.
    pub fn undecided(&self) -> bool {
        let timed: Vec<Verdict> =
            self.findings.iter().filter(|f| f.metric == "ops_per_sec").map(|f| f.verdict).collect();
        !timed.is_empty()
            && timed.iter().all(|v| matches!(v, Verdict::Inconclusive | Verdict::TooFew | Verdict::OtherHost))
    }
}

/// Two differing deterministic values as text: four significant digits,
/// or as many more as it takes for them to read differently; values that
/// are not numbers as they are.
fn distinct_digits(old: &str, now: &str) -> (String, String) {
    let (Ok(a), Ok(b)) = (old.parse::<f64>(), now.parse::<f64>()) else { return (old.to_string(), now.to_string()) };
    if a.fract() == 0.0 && b.fract() == 0.0 && a.abs() < 1e15 && b.abs() < 1e15 {
        return (format!("{a}"), format!("{b}"));
    }
    for digits in 4..=17 {
        let (x, y) = (units::with_digits(a, digits), units::with_digits(b, digits));
        if x != y {
            return (x, y);
        }
    }
    (old.to_string(), now.to_string())
}

/// How a comparison judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judging {
    /// Smallest relative slowdown that counts.
    pub threshold: f64,
    /// Divide the median throughput ratio out of every ratio (per pair of
    /// machines).
    pub correct_drift: bool,
    /// Judge throughput rows timed on different machines too.
    pub across_hosts: bool,
}

/// Compare two result sets.
///
/// A throughput row whose two sides were timed on different machines (as
/// the rows of runs merged from shards can be) is not judged unless
/// `across_hosts`: a machine's speed would pass for the allocator's. Machine
/// drift is estimated and divided out within each pair of machines, never
/// across them.
pub fn compare(base: &ResultSet, new: &ResultSet, judging: Judging) -> Comparison {
    let Judging { threshold, correct_drift, across_hosts } = judging;
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
        for ((name, old), (_, now)) in base_row.deterministic().into_iter().zip(new_row.deterministic()) {
            let same = old == now || matches!((old.parse::<f64>(), now.parse::<f64>()), (Ok(a), Ok(b)) if a == b);
            if !same {
                let change = match (old.parse::<f64>(), now.parse::<f64>()) {
                    (Ok(a), Ok(b)) if a != 0.0 => Some(b / a - 1.0),
                    _ => None,
                };
                let (old, now) = distinct_digits(&old, &now);
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
        let has_timings = |set: &ResultSet| set.samples.get(k).is_some_and(|s| !s.is_empty());
        if has_timings(base) && !has_timings(new) {
            // BASE was timed and NEW not: a lost measurement, not a pass.
            findings.push(Finding {
                key: k.clone(),
                metric: "ops_per_sec".into(),
                base: "timed".into(),
                new: "no repetitions (throughput.csv missing or without this row)".into(),
                change: None,
                interval: None,
                verdict: Verdict::Missing,
            });
        }
        if let (Some(b), Some(n)) = (base.samples.get(k), new.samples.get(k))
            && !b.is_empty()
            && !n.is_empty()
        {
            let pooled = |groups: &Vec<Vec<f64>>| median(&mut groups.concat());
            let hosts = (base.hosts.get(k).cloned().unwrap_or_default(), new.hosts.get(k).cloned().unwrap_or_default());
            if !across_hosts && !hosts.0.is_empty() && !hosts.1.is_empty() && hosts.0 != hosts.1 {
                findings.push(Finding {
                    key: k.clone(),
                    metric: "ops_per_sec".into(),
                    base: format!("{} on {}", significant(pooled(b)), hosts.0),
                    new: format!("{} on {}", significant(pooled(n)), hosts.1),
                    change: None,
                    interval: None,
                    verdict: Verdict::OtherHost,
                });
                continue;
            }
            processes[0] = processes[0].min(b.len());
            processes[1] = processes[1].min(n.len());
            timed.push((k.clone(), hosts, pooled(b), pooled(n), sample_units(b), sample_units(n)));
        }
    }
    // Simultaneous intervals (Bonferroni): each row at 1 − ALPHA / rows.
    let alpha = ALPHA / timed.len().max(1) as f64;
    let timed: Vec<_> = timed
        .into_iter()
        .map(|(k, hosts, base_median, new_median, base_units, new_units)| {
            let (ratio, interval) = ratio_interval(&base_units, &new_units, alpha);
            (k, hosts, base_median, new_median, ratio, interval)
        })
        .collect();
    // The drift of each pair of machines, from its own rows.
    let mut pairs: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for (_, hosts, _, _, ratio, _) in &timed {
        pairs.entry(hosts.clone()).or_default().push(*ratio);
    }
    let drifts: BTreeMap<(String, String), f64> = pairs
        .into_iter()
        .map(|(hosts, mut ratios)| {
            let drift = if correct_drift && ratios.len() >= MIN_ROWS_FOR_DRIFT { median(&mut ratios) } else { 1.0 };
            (hosts, drift)
        })
        .collect();
    let (drift, host_drifts) = match drifts.len() {
        0 => (1.0, Vec::new()),
        1 => (*drifts.values().next().expect("one pair"), Vec::new()),
        _ => (1.0, drifts.iter().map(|((b, n), d)| (b.clone(), n.clone(), *d)).collect()),
    };
    let timed_rows = timed.len();
    for (k, hosts, base_median, new_median, ratio, interval) in timed {
        let drift = drifts[&hosts];
        let ratio = ratio / drift;
        let interval = interval.map(|(low, high)| (low / drift, high / drift));
        let verdict = match interval {
            None => Verdict::TooFew,
            Some((_, high)) if high < 1.0 - threshold => Verdict::Regression,
            Some((low, _)) if low > 1.0 + threshold => Verdict::Improvement,
            Some((low, high)) if low >= 1.0 - threshold && high <= 1.0 + threshold => Verdict::Unchanged,
            Some(_) => Verdict::Inconclusive,
        };
        findings.push(Finding {
            key: k,
            metric: "ops_per_sec".into(),
            base: significant(base_median),
            new: significant(new_median),
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
    Comparison { findings, drift, processes, timed_rows, host_drifts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_figures_get_the_digits_that_tell_them_apart() {
        assert_eq!(distinct_digits("0.1234561", "0.1234569"), ("0.123456".into(), "0.123457".into()));
        assert_eq!(distinct_digits("0.25", "0.5"), ("0.2500".into(), "0.5000".into()));
        assert_eq!(distinct_digits("1048576", "1048577"), ("1048576".into(), "1048577".into()));
        assert_eq!(distinct_digits("fits", "tlsf"), ("fits".into(), "tlsf".into()));
    }
}
