//! Deterministic figures across seeds: each seed of a synthetic workload is
//! an independent draw of it, so a paper reports a figure over seeds as a
//! mean with its spread and a confidence interval, not one seed's value.

use heaplab_results::SummaryRow;

/// How the figures across seeds are computed, as the report states it.
pub const METHOD: &str = "mean over seeds ± the sample standard deviation (n − 1); the 95 % confidence interval of the mean is \
mean ± t(0.975, n − 1) · sd / √n (Student's t), each seed taken as an independent draw of the workload";

/// A figure over `n` seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Seeds with the figure.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation.
    pub sd: f64,
    /// The 95 % confidence interval of the mean.
    pub low: f64,
    /// The 95 % confidence interval of the mean.
    pub high: f64,
}

/// Student's t quantile at 0.975 for `df` degrees of freedom: the table to
/// 30, then the Cornish–Fisher expansion around the normal quantile (within
/// 0.001 of the exact value from 30 on).
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    if (1..=30).contains(&df) {
        return TABLE[df - 1];
    }
    let (z, v): (f64, f64) = (1.959_963_985, df.max(1) as f64);
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / (384.0 * v.powi(3))
}

/// The spread of `values` (at least two).
pub fn spread(values: &[f64]) -> Option<Spread> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let half = t975(n - 1) * sd / (n as f64).sqrt();
    Some(Spread { n, mean, sd, low: mean - half, high: mean + half })
}

/// A deterministic figure shown across seeds: its column title and how to
/// read it from a row.
pub type Figure = (&'static str, fn(&SummaryRow) -> Option<f64>);

/// The figures the across-seeds table shows.
pub const FIGURES: [Figure; 7] = [
    ("int frag at peak %", |r| r.internal_frag_at_peak_pct),
    ("ext frag mean %", |r| r.external_frag_mean_pct),
    ("holes at peak %", |r| r.holes_at_peak_pct),
    ("J&W #4 %", |r| r.jw4_pct),
    ("util %", |r| r.utilization_pct),
    ("footprint at peak KiB", |r| r.footprint_at_peak_bytes.map(|b| b as f64 / 1024.0)),
    ("failed allocs", |r| Some(r.failed_allocs as f64)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_t_quantiles_join_the_table_smoothly() {
        assert_eq!(t975(1), 12.706);
        assert!((t975(31) - 2.040).abs() < 0.001, "{}", t975(31));
        assert!((t975(60) - 2.000).abs() < 0.001, "{}", t975(60));
        assert!((t975(120) - 1.980).abs() < 0.001, "{}", t975(120));
        assert!((t975(100_000) - 1.960).abs() < 0.001);
    }

    #[test]
    fn the_spread_is_the_textbook_one() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample sd √(32/7).
        let spread = spread(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((spread.n, spread.mean), (8, 5.0));
        assert!((spread.sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        let half = 2.365 * spread.sd / 8f64.sqrt();
        assert!((spread.high - 5.0 - half).abs() < 1e-12 && (5.0 - spread.low - half).abs() < 1e-12);
        assert_eq!(super::spread(&[3.0]), None);
    }
}
