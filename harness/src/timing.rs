//! Clocks and the statistics of repeated measurements.
//!
//! Per-operation latency is read with the time-stamp counter on x86-64
//! (`rdtsc` between `lfence`s, so that the operation cannot move across the
//! reads) and with [`Instant`] elsewhere. The counter's rate is calibrated
//! against `Instant`, and the cost of reading it twice back to back is
//! measured and subtracted from every sample.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Read the cycle counter (x86-64) or a monotonic nanosecond clock.
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_lfence, _rdtsc};
        // SAFETY: lfence and rdtsc are available on every x86-64 CPU; they
        // read a counter and order instructions, touching no memory.
        unsafe {
            _mm_lfence();
            let t = _rdtsc();
            _mm_lfence();
            t
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// The name of the clock [`ticks`] reads.
pub const CLOCK_NAME: &str = if cfg!(target_arch = "x86_64") { "rdtsc (lfence-fenced)" } else { "Instant" };

/// How to turn ticks into nanoseconds, and what reading the clock costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Nanoseconds per tick.
    pub ns_per_tick: f64,
    /// Ticks between two back-to-back reads (the median of many), to
    /// subtract from every sample.
    pub overhead_ticks: u64,
    /// The smallest step the clock shows, in ticks: the least difference
    /// between two lengths back-to-back reads measure (each seen in at
    /// least one pair in a thousand). A virtual machine's counter may
    /// advance in steps of many ticks, and nothing finer can be measured.
    pub granularity_ticks: u64,
}

impl Calibration {
    /// Measure the tick rate over about 50 ms and the read overhead over
    /// 100,000 pairs.
    pub fn measure() -> Calibration {
        let mut rates = Vec::new();
        for _ in 0..5 {
            let (start_ticks, start) = (ticks(), Instant::now());
            while start.elapsed() < Duration::from_millis(10) {
                black_box(());
            }
            let (end_ticks, elapsed) = (ticks(), start.elapsed());
            rates.push(elapsed.as_nanos() as f64 / (end_ticks - start_ticks).max(1) as f64);
        }
        rates.sort_by(f64::total_cmp);
        let mut pairs: Vec<u64> = (0..100_000)
            .map(|_| {
                let a = ticks();
                let b = ticks();
                b.saturating_sub(a)
            })
            .collect();
        pairs.sort_unstable();
        Calibration {
            ns_per_tick: rates[rates.len() / 2],
            overhead_ticks: pairs[pairs.len() / 2],
            granularity_ticks: granularity(&pairs),
        }
    }

    /// The smallest step the clock shows, in nanoseconds.
    pub fn granularity_ns(&self) -> f64 {
        self.granularity_ticks as f64 * self.ns_per_tick
    }

    /// The timer's own cost, in nanoseconds.
    pub fn overhead_ns(&self) -> f64 {
        self.overhead_ticks as f64 * self.ns_per_tick
    }

    /// A measured interval in nanoseconds, the read overhead removed.
    #[inline]
    pub fn ns(&self, ticks: u64) -> u64 {
        (ticks.saturating_sub(self.overhead_ticks) as f64 * self.ns_per_tick).round() as u64
    }
}

/// The clock's step from the sorted lengths of back-to-back read pairs: the
/// least difference between two lengths that each occur in at least one
/// pair in a thousand (a rare length, from an interrupt or a migration, is
/// not a step of the clock). With one common length only, that length: no
/// finer difference was seen.
pub fn granularity(sorted_pairs: &[u64]) -> u64 {
    let floor = (sorted_pairs.len() / 1000).max(1);
    let mut common: Vec<u64> = Vec::new();
    for run in sorted_pairs.chunk_by(|a, b| a == b) {
        if run.len() >= floor {
            common.push(run[0]);
        }
    }
    let step = common.windows(2).map(|pair| pair[1] - pair[0]).min();
    step.or(common.first().copied()).unwrap_or(1).max(1)
}

/// The median of `values` (which it sorts).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// A distribution-free confidence interval for the median from order
/// statistics: `[x_(k), x_(n+1−k)]` with the largest `k` whose coverage,
/// `1 − 2·P(Binomial(n, ½) < k)`, is at least `level`; with too few samples
/// for that, the full range. Returns `(low, high, coverage)`.
pub fn median_interval(values: &[f64], level: f64) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, 0.0);
    }
    // cumulative[k] = P(B < k) for B ~ Binomial(n, 1/2).
    let mut cumulative = vec![0.0; n + 1];
    let mut probability = 0.5f64.powi(n as i32);
    for k in 0..n {
        cumulative[k + 1] = cumulative[k] + probability;
        probability *= (n - k) as f64 / (k + 1) as f64;
    }
    let best = (1..=n.div_ceil(2)).filter(|&k| 1.0 - 2.0 * cumulative[k] >= level).max().unwrap_or(1);
    let coverage = 1.0 - 2.0 * cumulative[best];
    (sorted[best - 1], sorted[n - best], coverage)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock against wall time is not tested here: that is a timing,
    /// for a benchmark, and would break on a loaded machine. What is tested
    /// is the conversion: the read overhead comes off exactly, nothing
    /// wraps, and more ticks never make fewer nanoseconds.
    /// A counter that advances by 26 ticks (as this project's cloud VMs'
    /// does) shows lengths 78, 104, 130: its step is 26, not the 1 of a
    /// stray 79.
    #[test]
    fn the_granularity_is_the_step_between_common_lengths() {
        let mut pairs: Vec<u64> = [78; 6000].into_iter().chain([104; 3000]).chain([130; 999]).chain([79]).collect();
        pairs.sort_unstable();
        assert_eq!(granularity(&pairs), 26);
        assert_eq!(granularity(&[36; 1000]), 36, "one length: no finer step was seen");
        let fine: Vec<u64> = (0..1000).map(|i| 30 + i % 4).collect::<Vec<_>>();
        let mut fine = fine;
        fine.sort_unstable();
        assert_eq!(granularity(&fine), 1);
        assert_eq!(granularity(&[]), 1);
    }

    #[test]
    fn the_calibration_subtracts_its_own_cost_and_keeps_order() {
        let calibration = Calibration::measure();
        assert!(calibration.ns_per_tick > 0.0 && calibration.ns_per_tick.is_finite());
        assert_eq!(calibration.ns(calibration.overhead_ticks), 0);
        assert_eq!(calibration.ns(0), 0, "below the overhead is zero, not a wrap");
        let ticks = [0, 1, calibration.overhead_ticks + 1, 1_000, 1_000_000, u64::MAX / 2];
        let ns: Vec<u64> = ticks.iter().map(|&t| calibration.ns(t)).collect();
        assert!(ns.is_sorted(), "{ns:?}");
        assert!(calibration.granularity_ticks >= 1);
        let c = Calibration { ns_per_tick: 0.5, overhead_ticks: 10, granularity_ticks: 1 };
        assert_eq!((c.ns(10), c.ns(30), c.ns(1_010)), (0, 10, 500));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn median_intervals_have_the_binomial_coverage() {
        // Five samples cannot reach 95 %: the range covers 1 − 2/32 = 93.75 %.
        let (low, high, coverage) = median_interval(&[5.0, 1.0, 4.0, 2.0, 3.0], 0.95);
        assert_eq!((low, high), (1.0, 5.0));
        assert!((coverage - 0.9375).abs() < 1e-12);
        // Ten samples: [x(2), x(9)] covers 1 − 2·(1 + 10)/1024 = 97.85 %;
        // [x(3), x(8)] only 89 %.
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        let (low, high, coverage) = median_interval(&values, 0.95);
        assert_eq!((low, high), (2.0, 9.0));
        assert!((coverage - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
    }
}
