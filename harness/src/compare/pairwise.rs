//! `heaplab compare RUN --ours A --peer B`: two allocators of one run side
//! by side, as the time one takes per op over the other's.
//!
//! Both allocators ran in the same run, so their repetitions are *paired*:
//! repetition `k` of each ran in the same round of the same timing process,
//! a few milliseconds apart, and a slow spell of the machine falls on both.
//! The ratio is therefore taken within each round: `d = ln(time_A / time_B)`
//! per repetition, the median of those per timing process (the process is
//! the unit, as in [`crate::compare`]: everything fixed for a process's
//! lifetime, where its memory landed, may favour one allocator), and over
//! the processes the Hodges–Lehmann estimate (the median of the Walsh
//! averages) with its exact distribution-free interval from the Wilcoxon
//! signed-rank test (Hollander & Wolfe, *Nonparametric Statistical
//! Methods*, §3.2), at 95 % for each cell on its own. Below 1, A is faster.
//! Five processes cannot give a 95 % interval (`2/2⁵` exceeds 5 %); six can.

use std::collections::BTreeMap;

use super::{CompareError, Key, Repetitions, ResultSet, Style};
use crate::timing::median;

/// Coverage of each cell's interval.
const LEVEL: f64 = 0.95;
/// Processes above which the signed-rank distribution is approximated.
const EXACT_PROCESSES: usize = 60;

/// One cell: a pair on one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// `A ÷ B` in time per op.
    pub ratio: f64,
    /// Its interval, when the samples allow one at [`LEVEL`].
    pub interval: Option<(f64, f64)>,
    /// Timing processes in which both ran.
    pub processes: usize,
}

/// A row: workload, seed, threads, one cell per pair.
pub type Row = (String, Option<u64>, u32, Vec<Option<Cell>>);

/// The table: workloads down, pairs across.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairwise {
    /// The pairs, `(A, B)`, as canonical specs.
    pub pairs: Vec<(String, String)>,
    /// Rows: the workload, its seed, its threads, and one cell per pair
    /// (`None` where the two have no repetition in common on it).
    pub rows: Vec<Row>,
}

/// `P(T ≤ t)` for `t` in `0..=n(n+1)/2`: the exact null distribution of the
/// Wilcoxon signed-rank statistic for `n` pairs, the number of subsets of
/// `1..=n` with sum `t` over `2^n`; the normal approximation above
/// [`EXACT_PROCESSES`].
fn signed_rank_cdf(n: usize) -> Vec<f64> {
    let top = n * (n + 1) / 2;
    if n > EXACT_PROCESSES {
        let mean = top as f64 / 2.0;
        let sd = (n as f64 * (n + 1) as f64 * (2 * n + 1) as f64 / 24.0).sqrt();
        return (0..=top).map(|t| super::stats::standard_normal_cdf((t as f64 + 0.5 - mean) / sd)).collect();
    }
    let mut counts = vec![0.0f64; top + 1];
    counts[0] = 1.0;
    for rank in 1..=n {
        for t in (rank..=top).rev() {
            counts[t] += counts[t - rank];
        }
    }
    super::stats::cumulative(&counts, 2f64.powi(n as i32))
}

/// The Hodges–Lehmann estimate of the centre of `d` (the median of the
/// Walsh averages `(dᵢ + dⱼ)/2`, `i ≤ j`) and its exact signed-rank
/// interval of coverage at least `1 − alpha`, when `d` is long enough.
pub fn one_sample_interval(d: &[f64], alpha: f64) -> (f64, Option<(f64, f64)>) {
    let mut walsh: Vec<f64> = (0..d.len()).flat_map(|i| (i..d.len()).map(move |j| (d[i] + d[j]) / 2.0)).collect();
    walsh.sort_by(f64::total_cmp);
    let point = median(&mut walsh.clone());
    // [W(c), W(M + 1 − c)] covers with 1 − 2 P(T ≤ c − 1); the largest c
    // that keeps that at 1 − alpha or more.
    let cdf = signed_rank_cdf(d.len());
    let Some(c) = (1..=walsh.len().div_ceil(2)).take_while(|&c| 2.0 * cdf[c - 1] <= alpha).last() else {
        return (point, None);
    };
    (point, Some((walsh[c - 1], walsh[walsh.len() - c])))
}

/// The per-process log ratios of A's time over B's on one workload: for
/// each repetition both ran, `ln(ops_B / ops_A)`, and their median per
/// timing process.
fn paired(ours: &Repetitions, peer: &Repetitions) -> Vec<f64> {
    let mut by_process: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for (rep, &(process, ours_ops)) in ours {
        if let Some(&(_, peer_ops)) = peer.get(rep) {
            by_process.entry(process).or_default().push(peer_ops.ln() - ours_ops.ln());
        }
    }
    by_process.into_values().map(|mut d| median(&mut d)).collect()
}

/// Pair the allocators of one result set on every workload.
pub fn pairwise(set: &ResultSet, pairs: &[(String, String)]) -> Result<Pairwise, CompareError> {
    let keys = || set.rows.keys().chain(set.repetitions.keys());
    for (ours, peer) in pairs {
        for spec in [ours, peer] {
            if !keys().any(|(allocator, ..)| allocator == spec) {
                let known: std::collections::BTreeSet<&str> =
                    keys().map(|(allocator, ..)| allocator.as_str()).collect();
                return Err(CompareError::NoSuchAllocator {
                    path: set.path.display().to_string(),
                    allocator: spec.clone(),
                    known: known.into_iter().collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    let mut workloads: Vec<(String, Option<u64>, u32)> = Vec::new();
    for (_, workload, seed, threads) in keys() {
        if !workloads.contains(&(workload.clone(), *seed, *threads)) {
            workloads.push((workload.clone(), *seed, *threads));
        }
    }
    let repetitions = |allocator: &str, workload: &str, seed: Option<u64>, threads: u32| {
        let key: Key = (allocator.to_string(), workload.to_string(), seed, threads);
        set.repetitions.get(&key)
    };
    let rows = workloads
        .into_iter()
        .map(|(workload, seed, threads)| {
            let cells = pairs
                .iter()
                .map(|(ours, peer)| {
                    let d = paired(
                        repetitions(ours, &workload, seed, threads)?,
                        repetitions(peer, &workload, seed, threads)?,
                    );
                    if d.is_empty() {
                        return None;
                    }
                    let (point, interval) = one_sample_interval(&d, 1.0 - LEVEL);
                    Some(Cell {
                        ratio: point.exp(),
                        interval: interval.map(|(low, high)| (low.exp(), high.exp())),
                        processes: d.len(),
                    })
                })
                .collect();
            (workload, seed, threads, cells)
        })
        .collect();
    Ok(Pairwise { pairs: pairs.to_vec(), rows })
}

/// The table as text: one column per pair, `0.97× [0.93, 1.01]`.
pub fn render(table: &Pairwise, style: Style) -> String {
    let cell_text = |cell: &Option<Cell>| match cell {
        None => "-".to_string(),
        Some(Cell { ratio, interval: Some((low, high)), .. }) => format!("{ratio:.2}× [{low:.2}, {high:.2}]"),
        Some(Cell { ratio, interval: None, .. }) => format!("{ratio:.2}× [too few]"),
    };
    let mut header = vec!["workload".to_string()];
    header.extend(table.pairs.iter().map(|(ours, peer)| format!("{ours} ÷ {peer}")));
    let lines: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|(workload, seed, threads, cells)| {
            let mut notes: Vec<String> = seed.iter().map(|seed| format!("seed {seed}")).collect();
            if *threads != 1 {
                notes.push(format!("{threads} threads"));
            }
            let name = if notes.is_empty() {
                crate::table::short_workload(workload)
            } else {
                format!("{} ({})", crate::table::short_workload(workload), notes.join(", "))
            };
            std::iter::once(name).chain(cells.iter().map(cell_text)).collect()
        })
        .collect();
    let fewest = table.rows.iter().flat_map(|(_, _, _, cells)| cells.iter().flatten().map(|cell| cell.processes)).min();
    let note = format!(
        "time per op of the first over the second (below 1: the first is faster): paired by round, one value per \
         timing process, Hodges–Lehmann estimate with its exact {:.0}% signed-rank interval, each cell on its own{}",
        100.0 * LEVEL,
        match fewest {
            Some(n) if n < 6 => format!(
                "; {n} timing process{} give no such interval: run with --reps 6 --processes 6 or more",
                if n == 1 { "" } else { "es" }
            ),
            _ => String::new(),
        }
    );
    format!("{}\n{note}\n", super::render::table(&header, &lines, style))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Repetitions `0..n`, one per process, of the given ops/s.
    fn reps(ops: impl IntoIterator<Item = f64>) -> Repetitions {
        ops.into_iter().enumerate().map(|(rep, ops)| (rep as u64, (rep as u64, ops))).collect()
    }

    fn set(entries: Vec<(&str, &str, Repetitions)>) -> ResultSet {
        let repetitions = entries
            .into_iter()
            .map(|(allocator, workload, reps)| ((allocator.to_string(), workload.to_string(), None, 1), reps))
            .collect();
        ResultSet {
            path: "run".into(),
            rows: BTreeMap::new(),
            samples: BTreeMap::new(),
            repetitions,
            hosts: BTreeMap::new(),
            meta: None,
        }
    }

    #[test]
    fn the_signed_rank_distribution_is_exact() {
        // n = 3: sums 0,1,2,3,3,4,5,6 over 8 sign patterns.
        let cdf = signed_rank_cdf(3);
        let expected = [1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 8.0].map(|c| c / 8.0);
        assert!(cdf.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12), "{cdf:?}");
        // n = 7: P(T ≤ 2) = 3/128, so [W(3), W(26)] covers 95.3 %.
        assert!((signed_rank_cdf(7)[2] - 3.0 / 128.0).abs() < 1e-12);
        let normal = signed_rank_cdf(61);
        assert!((normal[normal.len() / 2] - 0.5).abs() < 0.02);
    }

    #[test]
    fn five_processes_are_too_few_and_six_enough() {
        assert_eq!(one_sample_interval(&[0.1, 0.2, 0.3, 0.4, 0.5], 0.05).1, None);
        let (point, interval) = one_sample_interval(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 0.05);
        assert!((point - 0.35).abs() < 1e-12);
        let (low, high) = interval.unwrap();
        assert!((low - 0.1).abs() < 1e-12 && (high - 0.6).abs() < 1e-12, "[{low}, {high}]");
    }

    #[test]
    fn pairing_cancels_what_both_rounds_share() {
        // The machine's speed swings by 2× from round to round; A is always
        // 1.25× slower than B within a round. Unpaired, the swing would
        // swamp it; paired, the ratio is exact.
        let machine = [1.0, 2.0, 0.5, 1.5, 1.0, 0.7, 1.9];
        let b: Vec<f64> = machine.iter().map(|m| 100.0 * m).collect();
        let a: Vec<f64> = b.iter().map(|ops| ops / 1.25).collect();
        let run = set(vec![("a", "w", reps(a)), ("b", "w", reps(b)), ("b", "v", reps([1.0]))]);
        let table = pairwise(&run, &[("a".into(), "b".into())]).unwrap();
        let cell_of = |workload: &str| table.rows.iter().find(|(w, ..)| w == workload).unwrap().3[0].clone();
        let cell = cell_of("w").unwrap();
        assert!((cell.ratio - 1.25).abs() < 1e-9, "{cell:?}");
        let (low, high) = cell.interval.unwrap();
        assert!((low - 1.25).abs() < 1e-9 && (high - 1.25).abs() < 1e-9, "[{low}, {high}]");
        assert_eq!(cell.processes, 7);
        assert_eq!(cell_of("v"), None, "a did not run v");
        let text = render(&table, Style::Terminal);
        assert!(text.contains("a ÷ b") && text.contains("1.25× [1.25, 1.25]"), "{text}");
    }

    #[test]
    fn an_allocator_not_in_the_run_is_named() {
        let run = set(vec![("a", "w", reps([1.0]))]);
        let error = pairwise(&run, &[("a".into(), "peer:rlsf".into())]).unwrap_err();
        assert!(error.to_string().contains("no allocator `peer:rlsf` in this run; it has a"), "{error}");
    }
}
