//! The statistics of a comparison: the Hodges–Lehmann ratio of two
//! samples with its exact Mann–Whitney interval, and the sample sizes an
//! interval needs.

use crate::timing::median;

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
    cumulative(counts, counts.iter().sum())
}

/// The running sums of `counts` over `total`: a distribution function
/// from the counts of each value.
pub(super) fn cumulative(counts: &[f64], total: f64) -> Vec<f64> {
    let mut sum = 0.0;
    counts
        .iter()
        .map(|c| {
            sum += c;
            sum / total
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
    if base.len() * new.len() > EXACT_PAIRS {
        return large_ratio_interval(base, new, alpha);
    }
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

/// [`ratio_interval`] for large samples, in O((n + m) log(n + m)) time and
/// O(n + m) memory: the order statistics of the `n · m` differences are
/// selected without being written out (bisection over the doubles, each
/// step counting the differences below it with two pointers), and the
/// interval's rank comes from the normal approximation.
fn large_ratio_interval(base: &[f64], new: &[f64], alpha: f64) -> (f64, Option<(f64, f64)>) {
    let mut a: Vec<f64> = new.iter().map(|v| v.ln()).collect();
    let mut b: Vec<f64> = base.iter().map(|v| v.ln()).collect();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (b.len(), a.len());
    let top = n * m;
    let point = if top % 2 == 1 {
        kth_difference(&a, &b, top.div_ceil(2))
    } else {
        (kth_difference(&a, &b, top / 2) + kth_difference(&a, &b, top / 2 + 1)) / 2.0
    }
    .exp();
    // The largest c with 2 P(U ≤ c − 1) ≤ alpha, P by the normal
    // approximation with continuity correction; P grows with c.
    let mean = top as f64 / 2.0;
    let sd = (top as f64 * (n + m + 1) as f64 / 12.0).sqrt();
    let p = |c: usize| standard_normal_cdf(((c - 1) as f64 + 0.5 - mean) / sd);
    let (mut low, mut high) = (0usize, top.div_ceil(2));
    while low < high {
        let middle = (low + high).div_ceil(2);
        if 2.0 * p(middle) <= alpha { low = middle } else { high = middle - 1 }
    }
    if low == 0 {
        return (point, None);
    }
    (point, Some((kth_difference(&a, &b, low).exp(), kth_difference(&a, &b, top + 1 - low).exp())))
}

/// The `k`-th smallest (from 1) of the differences `a[i] − b[j]`, both
/// sorted, as `a[i] - b[j]` computes them.
fn kth_difference(a: &[f64], b: &[f64], k: usize) -> f64 {
    // Differences at most `t`: for each a[i], the b[j] ≥ a[i] − t, found
    // by one pointer that only moves one way as a[i] grows.
    let at_most = |t: f64| {
        let mut count = 0;
        let mut j = 0;
        for &x in a {
            while j < b.len() && x - b[j] > t {
                j += 1;
            }
            count += b.len() - j;
        }
        count
    };
    // Bisect over the doubles in their total order (as integers), from the
    // smallest difference to the largest.
    let key = |x: f64| {
        let bits = x.to_bits() as i64;
        bits ^ (((bits >> 63) as u64) >> 1) as i64
    };
    let value = |k: i64| f64::from_bits((k ^ (((k >> 63) as u64) >> 1) as i64) as u64);
    let (mut low, mut high) = (key(a[0] - b[b.len() - 1]), key(a[a.len() - 1] - b[0]));
    while low < high {
        let middle = low + (high - low) / 2;
        if at_most(value(middle)) >= k { high = middle } else { low = middle + 1 }
    }
    value(low)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The selection path agrees with writing every difference out.
    #[test]
    fn large_samples_select_the_same_order_statistics_without_writing_them_out() {
        let base: Vec<f64> = (0..61).map(|i| 100.0 + ((i * 37) % 61) as f64 * 0.7).collect();
        let new: Vec<f64> = (0..73).map(|i| 98.0 + ((i * 29) % 73) as f64 * 0.6).collect();
        let mut all: Vec<f64> = new.iter().flat_map(|n| base.iter().map(move |b| n.ln() - b.ln())).collect();
        all.sort_by(f64::total_cmp);
        let (mut a, mut b): (Vec<f64>, Vec<f64>) =
            (new.iter().map(|v| v.ln()).collect(), base.iter().map(|v| v.ln()).collect());
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        for k in [1, 2, 100, all.len() / 2, all.len() - 1, all.len()] {
            assert_eq!(kth_difference(&a, &b, k), all[k - 1], "k = {k}");
        }
        let (ratio, interval) = ratio_interval(&base, &new, 0.05);
        assert_eq!(ratio, median(&mut all.clone()).exp());
        let (low, high) = interval.unwrap();
        assert!(low <= ratio && ratio <= high);
        assert!(all.iter().any(|d| d.exp() == low) && all.iter().any(|d| d.exp() == high));
        // 20,000 a side: 400 million differences, never held.
        let big: Vec<f64> = (0..20_000).map(|i| 1e6 + (i % 997) as f64).collect();
        let (ratio, interval) = ratio_interval(&big, &big, 0.05);
        assert_eq!(ratio, 1.0);
        let (low, high) = interval.unwrap();
        assert!(low < 1.0 && high > 1.0 && high / low < 1.01, "{low} {high}");
    }

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
