//! Replay versus reality: does the timed replay of a program's trace rank
//! allocators as running the program does (`heaplab exec --replay`)?
//!
//! Per program, Kendall's τ-b between two rankings of the same allocators:
//! replay time per op against the program's wall time, and the replay's
//! footprint against the program's peak RSS. τ = 1: the same order, −1:
//! reversed, about 0: replay says nothing about the order. Ties count as
//! τ-b counts them (Kendall 1945).

use heaplab_results::ReplayRow;

/// Kendall's τ-b between two scorings of the same items; `None` with fewer
/// than two items or no pair untied in both.
pub fn kendall_tau(a: &[f64], b: &[f64]) -> Option<f64> {
    assert_eq!(a.len(), b.len());
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            // Not f64::signum, which calls 0 positive.
            let (x, y) = (a[i].total_cmp(&a[j]), b[i].total_cmp(&b[j]));
            match (x.is_eq(), y.is_eq()) {
                (true, true) => {}
                (true, false) => ties_a += 1,
                (false, true) => ties_b += 1,
                (false, false) if x == y => concordant += 1,
                (false, false) => discordant += 1,
            }
        }
    }
    let denominator =
        (((concordant + discordant + ties_a) as f64) * ((concordant + discordant + ties_b) as f64)).sqrt();
    (denominator > 0.0).then(|| (concordant - discordant) as f64 / denominator)
}

/// τ of one program over the allocators that have both figures, and how
/// many they are.
pub fn tau_of(
    rows: &[&ReplayRow],
    real: fn(&ReplayRow) -> Option<f64>,
    replay: fn(&ReplayRow) -> Option<f64>,
) -> (Option<f64>, usize) {
    let pairs: Vec<(f64, f64)> = rows.iter().filter_map(|r| Some((real(r)?, replay(r)?))).collect();
    let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    (kendall_tau(&a, &b), pairs.len())
}

/// The program's wall time.
pub fn wall(row: &ReplayRow) -> Option<f64> {
    row.exec_wall_seconds
}

/// The replay's time per op.
pub fn ns_per_op(row: &ReplayRow) -> Option<f64> {
    row.replay_ns_per_op
}

/// The program's peak RSS.
pub fn rss(row: &ReplayRow) -> Option<f64> {
    row.exec_peak_rss_bytes.map(|v| v as f64)
}

/// The replay's footprint.
pub fn footprint(row: &ReplayRow) -> Option<f64> {
    row.replay_peak_footprint_bytes.map(|v| v as f64)
}

/// The programs, in the order they first appear.
pub fn programs(rows: &[ReplayRow]) -> Vec<&str> {
    let mut programs: Vec<&str> = Vec::new();
    for row in rows {
        if !programs.contains(&row.program.as_str()) {
            programs.push(&row.program);
        }
    }
    programs
}

/// One line per program: both τ with their counts.
pub fn verdicts(rows: &[ReplayRow]) -> Vec<String> {
    let show = |(tau, n): (Option<f64>, usize)| match tau {
        Some(tau) => format!("{tau:+.2} over {n}"),
        None => format!("- ({n} with both figures)"),
    };
    programs(rows)
        .into_iter()
        .map(|program| {
            let of: Vec<&ReplayRow> = rows.iter().filter(|r| r.program == program).collect();
            format!(
                "{program}: τ time (replay ns/op vs wall) {}; τ memory (replay footprint vs peak RSS) {}",
                show(tau_of(&of, wall, ns_per_op)),
                show(tau_of(&of, rss, footprint))
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kendall_tau_of_known_rankings() {
        assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[30.0, 20.0, 10.0]), Some(-1.0));
        // One swapped pair of three: (2 − 1) / 3.
        let tau = kendall_tau(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap();
        assert!((tau - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(kendall_tau(&[1.0], &[1.0]), None);
        assert_eq!(kendall_tau(&[1.0, 1.0], &[2.0, 3.0]), None);
    }

    #[test]
    fn verdicts_use_only_allocators_with_both_figures() {
        let row = |allocator: &str, wall: f64, ns: f64, rss: u64, footprint: Option<u64>| ReplayRow {
            program: "jq".into(),
            allocator: allocator.into(),
            exec_wall_seconds: Some(wall),
            replay_ns_per_op: Some(ns),
            exec_peak_rss_bytes: Some(rss),
            replay_peak_footprint_bytes: footprint,
            replay_utilization_pct: None,
        };
        let rows =
            [row("a", 1.0, 10.0, 100, Some(5)), row("b", 2.0, 20.0, 200, Some(9)), row("peer", 3.0, 5.0, 50, None)];
        // Time: a and b agree, the peer is slowest for real and fastest in
        // replay, so two of three pairs disagree: (1 − 2) / 3.
        let lines = verdicts(&rows);
        assert_eq!(
            lines,
            ["jq: τ time (replay ns/op vs wall) -0.33 over 3; τ memory (replay footprint vs peak RSS) +1.00 over 2"]
        );
    }
}
