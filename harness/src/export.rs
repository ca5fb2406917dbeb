//! What a cell measured, and the rows it becomes: measurement produces
//! [`CellResult`]s, this module turns them into the rows of the results
//! files ([`heaplab_results::CellRows`]), which `heaplab_results` writes.

use heaplab_core::{OpKind, PerKind};
use heaplab_results::{CellRows, DetailRow, HeapMapRow, LatencyRow, SeriesRow, SummaryRow, ThroughputRow};

use crate::metrics::Metrics;
use crate::timing::{median, median_interval};

/// Coverage asked of the throughput interval.
const INTERVAL_LEVEL: f64 = 0.95;

/// What the metrics pass of one cell measured, as the rows it becomes: the
/// deterministic part of its results. It is complete as soon as the pass
/// ends, and is journaled then (see [`crate::run::journal`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRows {
    /// The `summary.csv` row, its timing columns empty.
    pub summary: SummaryRow,
    /// Its `timeseries.csv` rows.
    pub series: Vec<SeriesRow>,
    /// Its `details.csv` rows.
    pub details: Vec<DetailRow>,
    /// Its `heapmap.csv` rows.
    pub heapmap: Vec<HeapMapRow>,
}

/// Which cell, for the rows it becomes.
#[derive(Debug, Clone, Copy)]
pub struct CellName<'a> {
    /// Canonical allocator spec.
    pub allocator: &'a str,
    /// Canonical workload name.
    pub workload: &'a str,
    /// The seed, for synthetic workloads.
    pub seed: Option<u64>,
    /// Threads the cell runs on.
    pub threads: u32,
    /// Frees of another thread's block, percent of frees (cells on the
    /// threads pipeline).
    pub remote_free_pct: Option<f64>,
    /// Arena size.
    pub arena_bytes: u64,
    /// Ops by kind in the workload.
    pub counts: PerKind<u64>,
}

/// What one cell measured.
#[derive(Debug, Clone, PartialEq)]
pub struct CellResult {
    /// The metrics pass.
    pub metrics: MetricsRows,
    /// The throughput pass, unless skipped (or not reached).
    pub throughput: Option<Throughput>,
    /// The latency pass, unless skipped (or not reached).
    pub latency: Option<Latency>,
}

/// Timed repetitions of the whole replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// Replays per repetition (short traces are replayed several times).
    pub passes: usize,
    /// Seconds per replay, one per repetition, in order.
    pub seconds: Vec<f64>,
    /// The timing process of each repetition (numbered from 0).
    pub processes: Vec<usize>,
    /// Median ops/s.
    pub median: f64,
    /// Confidence interval for the median, ops/s.
    pub low: f64,
    /// Confidence interval for the median, ops/s.
    pub high: f64,
    /// The interval's coverage, percent.
    pub level_pct: f64,
    /// Slowest repetition, ops/s.
    pub min: f64,
    /// Fastest repetition, ops/s.
    pub max: f64,
}

impl Throughput {
    /// The throughput of `seconds` (one per repetition of `passes` replays of
    /// `ops` ops, from timing process `processes[i]`): the median rate with
    /// its interval.
    pub fn new(passes: usize, seconds: Vec<f64>, processes: Vec<usize>, ops: usize) -> Throughput {
        let mut rates: Vec<f64> = seconds.iter().map(|s| ops as f64 / s).collect();
        let (low, high, coverage) = median_interval(&rates, INTERVAL_LEVEL);
        Throughput {
            passes,
            median: median(&mut rates),
            low,
            high,
            level_pct: 100.0 * coverage,
            min: rates.first().copied().unwrap_or(f64::NAN),
            max: rates.last().copied().unwrap_or(f64::NAN),
            seconds,
            processes,
        }
    }
}

/// Per-kind latency spectra.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// Per kind: samples, and `(percentile, ns)` for [`heaplab_results::SPECTRUM`].
    pub kinds: PerKind<(u64, Vec<(f64, u64)>)>,
    /// The timer's own cost, subtracted from each sample.
    pub timer_overhead_ns: f64,
    /// The smallest step the timer shows.
    pub timer_granularity_ns: f64,
}

impl Latency {
    /// The value at `percentile` for `kind`, if that kind was timed.
    pub fn at(&self, kind: OpKind, percentile: f64) -> Option<u64> {
        let (count, spectrum) = &self.kinds[kind];
        if *count == 0 {
            return None;
        }
        spectrum.iter().find(|(p, _)| *p == percentile).map(|(_, ns)| *ns)
    }
}

impl MetricsRows {
    /// The rows of a cell's metrics pass, which took `metrics_seconds`.
    pub fn new(cell: CellName, m: &Metrics, metrics_seconds: f64) -> MetricsRows {
        let counters = m.final_stats.counters;
        // Figures an allocator cannot report are left empty, not invented.
        let (granted, free, footprint) = (m.reports.granted, m.reports.free_space, m.reports.footprint);
        let classified = m.reports.free_bytes || free;
        let summary = SummaryRow {
            allocator: cell.allocator.to_string(),
            workload: cell.workload.to_string(),
            seed: cell.seed,
            threads: cell.threads,
            arena_bytes: cell.arena_bytes,
            ops: m.ops,
            allocs: cell.counts.alloc,
            frees: cell.counts.free,
            reallocs: cell.counts.realloc,
            failed_allocs: m.fragmentation_failures + m.out_of_memory_failures + m.unclassified_failures,
            fragmentation_failures: classified.then_some(m.fragmentation_failures),
            out_of_memory_failures: classified.then_some(m.out_of_memory_failures),
            failed_reallocs: m.failed_reallocs,
            skipped_ops: m.skipped_ops,
            peak_requested_bytes: m.peak_requested_bytes,
            peak_requested_op: m.peak_requested_op,
            granted_at_peak_bytes: granted.then_some(m.granted_at_peak_bytes),
            footprint_at_peak_bytes: footprint.then_some(m.footprint_at_peak_bytes),
            metadata_at_peak_bytes: footprint.then_some(m.metadata_at_peak_bytes),
            rounding_at_peak_bytes: granted.then_some(m.rounding_at_peak_bytes),
            overhead_at_peak_bytes: granted.then_some(m.overhead_at_peak_bytes),
            peak_granted_bytes: granted.then_some(m.peak_granted_bytes),
            peak_footprint_bytes: footprint.then_some(m.peak_footprint_bytes),
            side_metadata_bytes: m.final_stats.side_metadata_bytes as u64,
            internal_frag_at_peak_pct: granted.then_some(m.internal_frag_at_peak_pct),
            internal_frag_mean_pct: granted.then_some(m.internal_frag_mean_pct),
            external_frag_mean_pct: free.then_some(m.external_frag_mean_pct),
            external_frag_max_pct: free.then_some(m.external_frag_max_pct),
            request_p50_bytes: m.request_sizes.map(|s| s.bytes[0]),
            request_p99_bytes: m.request_sizes.map(|s| s.bytes[1]),
            unusable_at_p50_mean_pct: m.unusable_mean_pct.map(|u| u[0]),
            unusable_at_p99_mean_pct: m.unusable_mean_pct.map(|u| u[1]),
            external_frag_footprint_mean_pct: m.external_frag_footprint_mean_pct,
            holes_at_peak_pct: (granted && footprint).then_some(m.holes_at_peak_pct),
            jw1_pct: footprint.then_some(m.jw1_pct),
            jw2_pct: footprint.then_some(m.jw2_pct),
            jw3_pct: footprint.then_some(m.jw3_pct),
            jw4_pct: footprint.then_some(m.jw4_pct),
            utilization_pct: footprint.then_some(m.utilization_pct),
            blocks_inspected: counters.blocks_inspected,
            splits: counters.splits,
            coalesces: counters.coalesces,
            remote_free_pct: cell.remote_free_pct,
            peak_cached_bytes: m.cache_bound_bytes.map(|_| m.peak_cached_bytes),
            cache_bound_bytes: m.cache_bound_bytes,
            metrics_pass_seconds: metrics_seconds,
            ..SummaryRow::default()
        };
        let (allocator, workload, seed, threads) = (cell.allocator, cell.workload, cell.seed, cell.threads);
        // Series the allocator cannot report are left out.
        let r = m.reports;
        let row = move |op: u64, metric: String, value: f64| SeriesRow {
            allocator: allocator.to_string(),
            workload: workload.to_string(),
            seed,
            threads,
            op,
            metric,
            value,
        };
        let optional = |value: Option<f64>| value.map_or((0.0, false), |v| (v, true));
        let mut series: Vec<SeriesRow> = m
            .samples
            .iter()
            .flat_map(|sample| {
                let (unusable_p50, unusable_p50_reported) = optional(sample.unusable_pct.map(|u| u[0]));
                let (unusable_p99, unusable_p99_reported) = optional(sample.unusable_pct.map(|u| u[1]));
                let (footprint_external, footprint_external_reported) = optional(sample.external_frag_footprint_pct);
                [
                    ("requested_bytes", sample.requested_bytes as f64, true),
                    ("granted_bytes", sample.granted_bytes as f64, r.granted),
                    ("footprint_bytes", sample.footprint_bytes as f64, r.footprint),
                    ("free_bytes", sample.free_bytes as f64, r.free_space),
                    ("largest_free_bytes", sample.largest_free_bytes as f64, r.free_space),
                    ("metadata_bytes", sample.metadata_bytes as f64, r.footprint),
                    ("internal_frag_pct", sample.internal_frag_pct, r.granted),
                    ("external_frag_pct", sample.external_frag_pct, r.free_space),
                    ("cached_bytes", sample.cached_bytes as f64, m.cache_bound_bytes.is_some()),
                    ("unusable_at_p50_pct", unusable_p50, unusable_p50_reported),
                    ("unusable_at_p99_pct", unusable_p99, unusable_p99_reported),
                    ("external_frag_footprint_pct", footprint_external, footprint_external_reported),
                ]
                .into_iter()
                .filter(|(_, _, reported)| *reported)
                .map(move |(metric, value, _)| row(sample.op, metric.to_string(), value))
            })
            .collect();
        // A buddy level's vmstat indices per order; the fragmentation
        // index only where it has a value (the kernel's −1 is "a block of
        // this order is free": no index).
        for s in &m.order_samples {
            series.push(row(s.op, format!("unusable_free_index_order_{}", s.order), s.unusable_free_index));
            if s.fragmentation_index >= 0.0 {
                series.push(row(s.op, format!("fragmentation_index_order_{}", s.order), s.fragmentation_index));
            }
        }
        series.extend(m.level_samples.iter().map(|s| row(s.op, s.metric.clone(), s.value)));
        let details = m
            .details
            .iter()
            .map(|d| DetailRow {
                allocator: allocator.to_string(),
                workload: workload.to_string(),
                seed,
                threads,
                op: m.details_op,
                table: d.table.to_string(),
                row: d.row.clone(),
                column: d.column.to_string(),
                value: d.value,
            })
            .collect();
        let heapmap = m
            .heapmap
            .iter()
            .flat_map(|map| {
                map.frames.iter().enumerate().map(|(frame, f)| HeapMapRow {
                    allocator: allocator.to_string(),
                    workload: workload.to_string(),
                    seed,
                    threads,
                    frame,
                    op: f.op,
                    footprint_bytes: f.footprint_bytes,
                    span_bytes: map.span_bytes,
                    states: f.states.clone(),
                })
            })
            .collect();
        MetricsRows { summary, series, details, heapmap }
    }
}

impl CellResult {
    /// The cell's `summary.csv` row: the metrics pass's, with the timing
    /// columns filled in.
    pub fn summary(&self) -> SummaryRow {
        let t = self.throughput.as_ref();
        let l = self.latency.as_ref();
        let p = |kind: OpKind, percentile: f64| l.and_then(|l| l.at(kind, percentile));
        let ops = self.metrics.summary.ops;
        SummaryRow {
            reps: t.map(|t| t.seconds.len() as u64),
            passes_per_rep: t.map(|t| t.passes as u64),
            replay_seconds: t.map(|t| ops as f64 / t.median),
            ops_per_sec: t.map(|t| t.median),
            ops_per_sec_ci_low: t.map(|t| t.low),
            ops_per_sec_ci_high: t.map(|t| t.high),
            ops_per_sec_ci_level_pct: t.map(|t| t.level_pct),
            ops_per_sec_min: t.map(|t| t.min),
            ops_per_sec_max: t.map(|t| t.max),
            alloc_p50_ns: p(OpKind::Alloc, 50.0),
            alloc_p90_ns: p(OpKind::Alloc, 90.0),
            alloc_p99_ns: p(OpKind::Alloc, 99.0),
            alloc_p999_ns: p(OpKind::Alloc, 99.9),
            alloc_max_ns: p(OpKind::Alloc, 100.0),
            free_p50_ns: p(OpKind::Free, 50.0),
            free_p90_ns: p(OpKind::Free, 90.0),
            free_p99_ns: p(OpKind::Free, 99.0),
            free_p999_ns: p(OpKind::Free, 99.9),
            free_max_ns: p(OpKind::Free, 100.0),
            realloc_p50_ns: p(OpKind::Realloc, 50.0),
            realloc_p90_ns: p(OpKind::Realloc, 90.0),
            realloc_p99_ns: p(OpKind::Realloc, 99.0),
            realloc_p999_ns: p(OpKind::Realloc, 99.9),
            realloc_max_ns: p(OpKind::Realloc, 100.0),
            timer_overhead_ns: l.map(|l| l.timer_overhead_ns),
            timer_granularity_ns: l.map(|l| l.timer_granularity_ns),
            ..self.metrics.summary.clone()
        }
    }

    /// Every row the cell adds to the results files.
    pub fn rows(&self) -> CellRows {
        let metrics = &self.metrics;
        let row = &metrics.summary;
        let (allocator, workload, seed, threads) = (&row.allocator, &row.workload, row.seed, row.threads);
        let latency = self.latency.iter().flat_map(|latency| {
            latency.kinds.iter().flat_map(move |(kind, (samples, spectrum))| {
                spectrum.iter().map(move |&(percentile, latency_ns)| LatencyRow {
                    allocator: allocator.clone(),
                    workload: workload.clone(),
                    seed,
                    threads,
                    kind,
                    percentile,
                    latency_ns,
                    samples: *samples,
                })
            })
        });
        let ops = row.ops as f64;
        let throughput = self.throughput.iter().flat_map(|throughput| {
            throughput.seconds.iter().enumerate().map(move |(rep, &seconds)| ThroughputRow {
                allocator: allocator.clone(),
                workload: workload.clone(),
                seed,
                threads,
                rep: rep as u64,
                process: throughput.processes.get(rep).copied().unwrap_or(0) as u64,
                seconds,
                ops_per_sec: ops / seconds,
                host: None,
            })
        });
        CellRows {
            summary: self.summary(),
            series: metrics.series.clone(),
            details: metrics.details.clone(),
            heapmap: metrics.heapmap.clone(),
            latency: latency.collect(),
            throughput: throughput.collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_cell_has_a_summary_row_and_nothing_else() {
        let name = CellName {
            allocator: "bump",
            workload: "ramp",
            seed: Some(1),
            threads: 1,
            remote_free_pct: None,
            arena_bytes: 4096,
            counts: PerKind { alloc: 3, free: 3, realloc: 0 },
        };
        let cell =
            CellResult { metrics: MetricsRows::new(name, &Metrics::default(), 0.0), throughput: None, latency: None };
        let rows = cell.rows();
        assert_eq!((rows.summary.allocs, rows.summary.frees, rows.summary.ops_per_sec), (3, 3, None));
        assert!(rows.series.is_empty() && rows.latency.is_empty() && rows.throughput.is_empty());
    }
}
