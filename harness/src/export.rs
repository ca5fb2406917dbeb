//! What a cell measured, and the rows it becomes: measurement produces
//! [`CellResult`]s, this module turns them into the rows of the results
//! files ([`heaplab_results::CellRows`]), which `heaplab_results` writes.

use heaplab_core::{OpKind, PerKind};
use heaplab_results::{CellRows, DetailRow, HeapMapRow, LatencyRow, SeriesRow, SummaryRow, ThroughputRow};

use crate::metrics::Metrics;

/// What one cell measured.
#[derive(Debug, Clone)]
pub struct CellResult {
    /// Canonical allocator spec.
    pub allocator: String,
    /// Canonical workload name.
    pub workload: String,
    /// The seed, for synthetic workloads.
    pub seed: Option<u64>,
    /// Arena size.
    pub arena_bytes: u64,
    /// Ops by kind in the workload.
    pub counts: PerKind<u64>,
    /// The metrics pass.
    pub metrics: Metrics,
    /// Wall time of the metrics pass.
    pub metrics_seconds: f64,
    /// The throughput pass, unless skipped.
    pub throughput: Option<Throughput>,
    /// The latency pass, unless skipped.
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

/// Per-kind latency spectra.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// Per kind: samples, and `(percentile, ns)` for [`heaplab_results::SPECTRUM`].
    pub kinds: PerKind<(u64, Vec<(f64, u64)>)>,
    /// The timer's own cost, subtracted from each sample.
    pub timer_overhead_ns: f64,
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

impl CellResult {
    /// The cell's `summary.csv` row.
    pub fn summary(&self) -> SummaryRow {
        let cell = self;
        let m = &cell.metrics;
        let t = cell.throughput.as_ref();
        let l = cell.latency.as_ref();
        let p = |kind: OpKind, percentile: f64| l.and_then(|l| l.at(kind, percentile));
        let counters = m.final_stats.counters;
        // Figures an allocator cannot report are left empty, not invented.
        let (granted, free, footprint) = (m.reports.granted, m.reports.free_space, m.reports.footprint);
        let classified = m.reports.free_bytes || free;
        SummaryRow {
            allocator: cell.allocator.clone(),
            workload: cell.workload.clone(),
            seed: cell.seed,
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
            holes_at_peak_pct: (granted && footprint).then_some(m.holes_at_peak_pct),
            jw1_pct: footprint.then_some(m.jw1_pct),
            jw2_pct: footprint.then_some(m.jw2_pct),
            jw3_pct: footprint.then_some(m.jw3_pct),
            jw4_pct: footprint.then_some(m.jw4_pct),
            utilization_pct: footprint.then_some(m.utilization_pct),
            blocks_inspected: counters.blocks_inspected,
            splits: counters.splits,
            coalesces: counters.coalesces,
            reps: t.map(|t| t.seconds.len() as u64),
            passes_per_rep: t.map(|t| t.passes as u64),
            replay_seconds: t.map(|t| m.ops as f64 / t.median),
            metrics_pass_seconds: cell.metrics_seconds,
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
        }
    }

    /// Every row the cell adds to the results files.
    pub fn rows(&self) -> CellRows {
        let (allocator, workload, seed) = (&self.allocator, &self.workload, self.seed);
        let metrics = &self.metrics;
        // Series the allocator cannot report are left out.
        let r = metrics.reports;
        let series = metrics
            .samples
            .iter()
            .flat_map(|sample| {
                [
                    ("requested_bytes", sample.requested_bytes as f64, true),
                    ("granted_bytes", sample.granted_bytes as f64, r.granted),
                    ("footprint_bytes", sample.footprint_bytes as f64, r.footprint),
                    ("free_bytes", sample.free_bytes as f64, r.free_space),
                    ("largest_free_bytes", sample.largest_free_bytes as f64, r.free_space),
                    ("metadata_bytes", sample.metadata_bytes as f64, r.footprint),
                    ("internal_frag_pct", sample.internal_frag_pct, r.granted),
                    ("external_frag_pct", sample.external_frag_pct, r.free_space),
                ]
                .into_iter()
                .filter(|(_, _, reported)| *reported)
                .map(move |(metric, value, _)| SeriesRow {
                    allocator: allocator.clone(),
                    workload: workload.clone(),
                    seed,
                    op: sample.op,
                    metric: metric.to_string(),
                    value,
                })
            })
            .collect();
        let details = metrics
            .details
            .iter()
            .map(|d| DetailRow {
                allocator: allocator.clone(),
                workload: workload.clone(),
                seed,
                op: metrics.details_op,
                table: d.table.to_string(),
                row: d.row.clone(),
                column: d.column.to_string(),
                value: d.value,
            })
            .collect();
        let heapmap = metrics.heapmap.iter().flat_map(|map| {
            map.frames.iter().enumerate().map(|(frame, f)| HeapMapRow {
                allocator: allocator.clone(),
                workload: workload.clone(),
                seed,
                frame,
                op: f.op,
                footprint_bytes: f.footprint_bytes,
                span_bytes: map.span_bytes,
                states: f.states.clone(),
            })
        });
        let latency = self.latency.iter().flat_map(|latency| {
            latency.kinds.iter().flat_map(move |(kind, (samples, spectrum))| {
                spectrum.iter().map(move |&(percentile, latency_ns)| LatencyRow {
                    allocator: allocator.clone(),
                    workload: workload.clone(),
                    seed,
                    kind,
                    percentile,
                    latency_ns,
                    samples: *samples,
                })
            })
        });
        let ops = metrics.ops as f64;
        let throughput = self.throughput.iter().flat_map(|throughput| {
            throughput.seconds.iter().enumerate().map(move |(rep, &seconds)| ThroughputRow {
                allocator: allocator.clone(),
                workload: workload.clone(),
                seed,
                rep: rep as u64,
                process: throughput.processes.get(rep).copied().unwrap_or(0) as u64,
                seconds,
                ops_per_sec: ops / seconds,
            })
        });
        CellRows {
            summary: self.summary(),
            series,
            details,
            heapmap: heapmap.collect(),
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
        let cell = CellResult {
            allocator: "bump".into(),
            workload: "ramp".into(),
            seed: Some(1),
            arena_bytes: 4096,
            counts: PerKind { alloc: 3, free: 3, realloc: 0 },
            metrics: Metrics::default(),
            metrics_seconds: 0.0,
            throughput: None,
            latency: None,
        };
        let rows = cell.rows();
        assert_eq!((rows.summary.allocs, rows.summary.frees, rows.summary.ops_per_sec), (3, 3, None));
        assert!(rows.series.is_empty() && rows.latency.is_empty() && rows.throughput.is_empty());
    }
}
