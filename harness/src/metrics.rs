//! The metrics pass: every fragmentation figure of the design notes (§4),
//! computed incrementally while replaying, deterministic.
//!
//! Notation, over the op index t: R(t) requested bytes of live blocks, G(t)
//! granted bytes, M(t) metadata in the arena, H(t) footprint (a high-water
//! mark), F(t) free bytes, L(t) the largest free block. R, G, M, H and F come
//! from the allocator's O(1) counters after every op; L needs a walk of the
//! free space and is sampled at a fixed number of points.
//!
//! | figure | definition |
//! |---|---|
//! | internal fragmentation | (G − R)/G at the op where R peaks, and its mean over ops with G > 0 (Wilson et al. 1995) |
//! | internal split | G − R at R's peak as rounding (size class, power of two, minimum block) and overhead (headers, alignment) (Johnstone & Wilson 1998) |
//! | external fragmentation | 1 − L/F at each sample with F > 0: mean and maximum |
//! | unusable free share at s | (F − Σ len(b) over free blocks b with len(b) ≥ s)/F at each sample with F > 0, mean; s = the workload's p50 and p99 request size (design notes §10: Linux's unusable free index, mm/vmstat.c, with s in bytes instead of 2^order pages) |
//! | footprint-relative external fragmentation | 1 − L_H/F_H at each sample with F_H > 0, mean, where F_H and L_H count only free bytes below the footprint H (design notes §10) |
//! | vmstat indices over time | a buddy level's unusable free and fragmentation indices per order (mm/vmstat.c) at every sample |
//! | holes in footprint | (H − G − M)/H at R's peak |
//! | J&W #1..#4 | #1 mean over ops of H/R − 1 (R > 0); #2 H/R − 1 at R's peak; #3 H/R − 1 where H first reaches its maximum; #4 max H / max R − 1 |
//! | utilization | max R / max H (the malloc-lab figure) |
//! | fragmentation failures | refused requests of size ≤ F; the rest are out-of-memory failures |

use std::alloc::Layout;
use std::ptr::NonNull;

use heaplab_core::{Allocator, Detail, FreeShape, HeapStats, InvariantViolation, Reports};
use heaplab_workloads::OpKind;

use crate::heapmap::{HeapMap, HeapMapRecorder};
use crate::replay::Probe;

/// One sample of the time series.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Ops done (the sample is taken after op `op − 1`).
    pub op: u64,
    /// R.
    pub requested_bytes: u64,
    /// G.
    pub granted_bytes: u64,
    /// H.
    pub footprint_bytes: u64,
    /// F.
    pub free_bytes: u64,
    /// L.
    pub largest_free_bytes: u64,
    /// M.
    pub metadata_bytes: u64,
    /// (G − R)/G, percent.
    pub internal_frag_pct: f64,
    /// 1 − L/F, percent.
    pub external_frag_pct: f64,
    /// Bytes held in thread caches (a caching layer's; 0 otherwise).
    pub cached_bytes: u64,
    /// Unusable free share at the p50 and p99 request size, percent
    /// (`None` when nothing is free or the free space cannot be walked).
    pub unusable_pct: Option<[f64; 2]>,
    /// 1 − L_H/F_H below the footprint, percent (`None` when nothing is
    /// free below it, or the allocator has no footprint in its arena).
    pub external_frag_footprint_pct: Option<f64>,
}

/// The request sizes the unusable free share is taken at: the p50 and p99
/// (nearest rank) of the sizes of every allocation the workload asks for,
/// reallocs' new sizes included, by count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestSizes {
    /// p50 and p99, bytes.
    pub bytes: [u64; 2],
}

impl RequestSizes {
    /// The percentiles of the requests among `steps`; `None` without any.
    pub fn of(steps: &[crate::prepare::Step]) -> Option<RequestSizes> {
        use crate::prepare::Step;
        let mut sizes: Vec<u64> = steps
            .iter()
            .filter_map(|step| match *step {
                Step::Alloc { size, .. } | Step::AllocImpossible { size, .. } | Step::Realloc { size, .. } => {
                    Some(size)
                }
                Step::Free { .. } => None,
            })
            .collect();
        if sizes.is_empty() {
            return None;
        }
        sizes.sort_unstable();
        // Nearest rank: the smallest size with at least p % of requests at or below it.
        let rank = |p: u64| sizes[((p * sizes.len() as u64).div_ceil(100) as usize).clamp(1, sizes.len()) - 1];
        Some(RequestSizes { bytes: [rank(50), rank(99)] })
    }
}

/// A buddy level's vmstat indices at one sample, one order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderSample {
    /// Ops done.
    pub op: u64,
    /// The order.
    pub order: u32,
    /// Unusable free index, 0 to 1.
    pub unusable_free_index: f64,
    /// Fragmentation index (−1: a free block of the order exists).
    pub fragmentation_index: f64,
}

/// One figure of a model with levels at one sample (the kernel model's
/// `levels`, `pool` and `vmallocinfo` tables), as a time series names it:
/// `level_alloc_pages_refused`, `pool_page_tables_bytes`,
/// `vmalloc_mapped_bytes`.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelSample {
    /// Ops done.
    pub op: u64,
    /// The series' name.
    pub metric: String,
    /// The value.
    pub value: f64,
}

/// The figures of one metrics pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Ops replayed.
    pub ops: u64,
    /// Allocations refused while F ≥ the request (at an alignment the arena
    /// can have).
    pub fragmentation_failures: u64,
    /// Allocations refused while F < the request, or at an alignment larger
    /// than the arena (unsupported, however much is free).
    pub out_of_memory_failures: u64,
    /// Allocations refused by an allocator that does not report F.
    pub unclassified_failures: u64,
    /// Reallocs refused.
    pub failed_reallocs: u64,
    /// Frees and reallocs skipped because their allocation had failed.
    pub skipped_ops: u64,
    /// max R.
    pub peak_requested_bytes: u64,
    /// First op after which R is at its maximum, counted from 1 (op N is
    /// the state after the N-th op, as `timeseries.csv` and `heapmap --at`
    /// count).
    pub peak_requested_op: Option<u64>,
    /// G, H, M at R's peak.
    pub granted_at_peak_bytes: u64,
    /// H at R's peak.
    pub footprint_at_peak_bytes: u64,
    /// M at R's peak.
    pub metadata_at_peak_bytes: u64,
    /// Rounding part of G − R at R's peak.
    pub rounding_at_peak_bytes: u64,
    /// Overhead part of G − R at R's peak.
    pub overhead_at_peak_bytes: u64,
    /// max G.
    pub peak_granted_bytes: u64,
    /// max H.
    pub peak_footprint_bytes: u64,
    /// R when H first reached its maximum.
    pub requested_at_peak_footprint_bytes: u64,
    /// (G − R)/G at R's peak, percent.
    pub internal_frag_at_peak_pct: f64,
    /// Mean of (G − R)/G over ops with G > 0, percent.
    pub internal_frag_mean_pct: f64,
    /// Mean of 1 − L/F over samples with F > 0, percent.
    pub external_frag_mean_pct: f64,
    /// Maximum of 1 − L/F over samples, percent.
    pub external_frag_max_pct: f64,
    /// The sizes the unusable free share is taken at.
    pub request_sizes: Option<RequestSizes>,
    /// Mean unusable free share at the p50 and p99 request size over
    /// samples with F > 0, percent.
    pub unusable_mean_pct: Option<[f64; 2]>,
    /// Mean of 1 − L_H/F_H over samples with F_H > 0, percent.
    pub external_frag_footprint_mean_pct: Option<f64>,
    /// (H − G − M)/H at R's peak, percent.
    pub holes_at_peak_pct: f64,
    /// J&W #1, percent.
    pub jw1_pct: f64,
    /// J&W #2, percent.
    pub jw2_pct: f64,
    /// J&W #3, percent.
    pub jw3_pct: f64,
    /// J&W #4, percent.
    pub jw4_pct: f64,
    /// max R / max H, percent.
    pub utilization_pct: f64,
    /// Most bytes in a caching layer's caches after any op.
    pub peak_cached_bytes: u64,
    /// The bound its parameters put on them; `None` without such a layer.
    pub cache_bound_bytes: Option<u64>,
    /// The allocator's counters at the end, and its side metadata.
    pub final_stats: HeapStats,
    /// The time series.
    pub samples: Vec<Sample>,
    /// A buddy level's vmstat indices at every sample, by order.
    pub order_samples: Vec<OrderSample>,
    /// A model's per-level figures at every sample.
    pub level_samples: Vec<LevelSample>,
    /// Allocator-specific tables (buddyinfo, slabinfo) and the free-block
    /// size histogram, taken at the sample where R was largest.
    pub details: Vec<Detail>,
    /// The op after which `details` were taken.
    pub details_op: Option<u64>,
    /// Heap-map frames, if recorded.
    pub heapmap: Option<HeapMap>,
    /// What the allocator could report; the rest of these figures are
    /// placeholders that the exporters leave empty.
    pub reports: Reports,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            ops: 0,
            fragmentation_failures: 0,
            out_of_memory_failures: 0,
            unclassified_failures: 0,
            failed_reallocs: 0,
            skipped_ops: 0,
            peak_requested_bytes: 0,
            peak_requested_op: None,
            granted_at_peak_bytes: 0,
            footprint_at_peak_bytes: 0,
            metadata_at_peak_bytes: 0,
            rounding_at_peak_bytes: 0,
            overhead_at_peak_bytes: 0,
            peak_granted_bytes: 0,
            peak_footprint_bytes: 0,
            requested_at_peak_footprint_bytes: 0,
            internal_frag_at_peak_pct: 0.0,
            internal_frag_mean_pct: 0.0,
            external_frag_mean_pct: 0.0,
            external_frag_max_pct: 0.0,
            request_sizes: None,
            unusable_mean_pct: None,
            external_frag_footprint_mean_pct: None,
            holes_at_peak_pct: 0.0,
            jw1_pct: 0.0,
            jw2_pct: 0.0,
            jw3_pct: 0.0,
            jw4_pct: 0.0,
            utilization_pct: 0.0,
            peak_cached_bytes: 0,
            cache_bound_bytes: None,
            final_stats: HeapStats::default(),
            samples: Vec::new(),
            order_samples: Vec::new(),
            level_samples: Vec::new(),
            details: Vec::new(),
            details_op: None,
            heapmap: None,
            reports: Reports::ALL,
        }
    }
}

/// Columns of a recorded heap map.
pub const HEAPMAP_COLUMNS: usize = 256;

/// The free space as a histogram of block sizes by power of two: the
/// `/proc/buddyinfo` picture for any allocator.
pub fn free_histogram<A: Allocator>(allocator: &A) -> Vec<Detail> {
    let mut buckets: std::collections::BTreeMap<u32, (u64, u64)> = std::collections::BTreeMap::new();
    allocator.for_each_free(&mut |_, len| {
        if len > 0 {
            let entry = buckets.entry(len.ilog2()).or_default();
            entry.0 += 1;
            entry.1 += len as u64;
        }
    });
    let mut details = Vec::new();
    for (log, (count, bytes)) in buckets {
        let row = format!("2^{log}");
        details.push(Detail {
            table: "free_blocks",
            row: row.clone(),
            column: "from_bytes",
            value: (1u64 << log) as f64,
        });
        details.push(Detail { table: "free_blocks", row: row.clone(), column: "count", value: count as f64 });
        details.push(Detail { table: "free_blocks", row, column: "bytes", value: bytes as f64 });
    }
    details
}

/// A check failure found with `--verify`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the allocator's check() failed after op {}: {violation}", .index + 1)]
pub struct VerifyError {
    /// 0-based op index.
    pub index: usize,
    /// What `check()` said.
    pub violation: InvariantViolation,
}

/// The probe of the metrics pass.
#[derive(Debug)]
pub struct MetricsProbe {
    metrics: Metrics,
    verify: bool,
    /// Sample after ops whose index + 1 is a multiple of this, and after the last.
    sample_every: usize,
    last_index: usize,
    rounding_live: u64,
    overhead_live: u64,
    /// R and G, kept from the blocks the probe sees (equal to the
    /// allocator's counters: the conformance suite checks them).
    requested: u64,
    granted: u64,
    /// H and M as of the last allocation (frees change neither H nor the
    /// peaks, so the counters are read only after allocations).
    footprint: u64,
    metadata: u64,
    /// Did this step allocate?
    allocated_now: bool,
    /// R at the sample where details were last taken.
    details_requested: Option<u64>,
    heapmap: Option<HeapMapRecorder>,
    /// The thread of each step, in an interleaved replay.
    threads: Option<Vec<u16>>,
    internal_sum: f64,
    internal_count: u64,
    jw1_sum: f64,
    jw1_count: u64,
    external_sum: f64,
    external_count: u64,
    unusable_sum: [f64; 2],
    unusable_count: u64,
    footprint_external_sum: f64,
    footprint_external_count: u64,
}

impl MetricsProbe {
    /// A probe for `steps` steps taking about `points` samples, checking
    /// invariants after every step if `verify`.
    pub fn new(steps: usize, points: usize, verify: bool) -> MetricsProbe {
        MetricsProbe::with_heapmap(steps, points, verify, None)
    }

    /// The same, also recording heap-map frames.
    pub fn with_heapmap(steps: usize, points: usize, verify: bool, heapmap: Option<HeapMapRecorder>) -> MetricsProbe {
        MetricsProbe {
            metrics: Metrics { ops: steps as u64, ..Metrics::default() },
            verify,
            sample_every: steps.div_ceil(points.max(1)).max(1),
            last_index: steps.saturating_sub(1),
            rounding_live: 0,
            overhead_live: 0,
            requested: 0,
            granted: 0,
            footprint: 0,
            metadata: 0,
            allocated_now: false,
            details_requested: None,
            heapmap,
            threads: None,
            internal_sum: 0.0,
            internal_count: 0,
            jw1_sum: 0.0,
            jw1_count: 0,
            external_sum: 0.0,
            external_count: 0,
            unusable_sum: [0.0; 2],
            unusable_count: 0,
            footprint_external_sum: 0.0,
            footprint_external_count: 0,
        }
    }

    /// Take the unusable free share at these request sizes (see
    /// [`RequestSizes::of`]).
    pub fn set_request_sizes(&mut self, sizes: Option<RequestSizes>) {
        self.metrics.request_sizes = sizes;
    }

    /// Record what the allocator can report: the probe asks for nothing else.
    pub fn set_reports(&mut self, reports: Reports) {
        self.metrics.reports = reports;
    }

    /// Step `i` runs as thread `threads[i]` (an interleaved multithreaded
    /// replay).
    pub fn set_threads(&mut self, threads: Vec<u16>) {
        self.threads = Some(threads);
    }

    /// The allocator caches blocks per thread, within `bound` bytes: read
    /// its cached bytes after every op.
    pub fn set_cache_bound(&mut self, bound: u64) {
        self.metrics.cache_bound_bytes = Some(bound);
    }

    /// The figures, once the replay is done; `final_stats` are the
    /// allocator's counters then, `skipped` the replay's skipped ops.
    pub fn finish(mut self, final_stats: HeapStats, failed_reallocs: u64, skipped: u64) -> Metrics {
        if let Some(recorder) = self.heapmap.take() {
            self.metrics.heapmap = Some(recorder.finish(self.metrics.peak_footprint_bytes, HEAPMAP_COLUMNS));
        }
        let m = &mut self.metrics;
        m.final_stats = final_stats;
        m.failed_reallocs = failed_reallocs;
        m.skipped_ops = skipped;
        m.internal_frag_mean_pct = mean(self.internal_sum, self.internal_count);
        m.jw1_pct = mean(self.jw1_sum, self.jw1_count);
        m.external_frag_mean_pct = mean(self.external_sum, self.external_count);
        if m.reports.free_space && m.request_sizes.is_some() {
            m.unusable_mean_pct = Some(self.unusable_sum.map(|sum| mean(sum, self.unusable_count)));
        }
        if footprint_shape_reported(m.reports) {
            m.external_frag_footprint_mean_pct = Some(mean(self.footprint_external_sum, self.footprint_external_count));
        }
        m.jw4_pct = percent_over(m.peak_footprint_bytes, m.peak_requested_bytes);
        m.jw3_pct = percent_over(m.peak_footprint_bytes, m.requested_at_peak_footprint_bytes);
        m.utilization_pct = if m.peak_footprint_bytes == 0 {
            0.0
        } else {
            100.0 * m.peak_requested_bytes as f64 / m.peak_footprint_bytes as f64
        };
        self.metrics
    }
}

/// Can the free space be placed against the footprint: offsets in the
/// arena, a walk, and H?
fn footprint_shape_reported(reports: Reports) -> bool {
    reports.in_arena && reports.free_space && reports.footprint
}

/// One walk of the free space: its [`FreeShape`], the bytes in blocks of
/// at least each request size, and the shape of the part below the
/// footprint.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct FreeWalk {
    all: FreeShape,
    usable_bytes: [u64; 2],
    below_footprint: FreeShape,
}

impl FreeWalk {
    fn of<A: Allocator>(allocator: &A, sizes: [u64; 2], footprint: u64) -> FreeWalk {
        let mut walk = FreeWalk::default();
        allocator.for_each_free(&mut |offset, len| {
            walk.all.add(len);
            let len = len as u64;
            for (usable, &size) in walk.usable_bytes.iter_mut().zip(&sizes) {
                if len >= size {
                    *usable += len;
                }
            }
            // The part of the block below H.
            let below = (offset as u64 + len).min(footprint).saturating_sub(offset as u64);
            if below > 0 {
                walk.below_footprint.add(below as usize);
            }
        });
        walk
    }

    /// The unusable free share at each size, percent; `None` when nothing is free.
    fn unusable_pct(&self) -> Option<[f64; 2]> {
        let free = self.all.free_bytes as u64;
        (free > 0).then(|| self.usable_bytes.map(|usable| fraction_pct(free - usable, free)))
    }

    /// 1 − L_H/F_H, percent; `None` when nothing below H is free.
    fn footprint_external_pct(&self) -> Option<f64> {
        (self.below_footprint.free_bytes > 0).then(|| 100.0 * self.below_footprint.external_fragmentation())
    }
}

fn mean(sum: f64, count: u64) -> f64 {
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// `100·(a/b − 1)`, or 0 when `b` is 0.
fn percent_over(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { 100.0 * (a as f64 / b as f64 - 1.0) }
}

fn fraction_pct(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 }
}

impl<A: Allocator> Probe<A> for MetricsProbe {
    type Error = VerifyError;

    fn thread(&mut self, index: usize) -> Option<u16> {
        self.threads.as_ref().map(|threads| threads[index])
    }

    fn allocated(&mut self, allocator: &A, ptr: NonNull<u8>, layout: Layout) {
        let waste = allocator.waste(ptr, layout);
        self.rounding_live += waste.rounding as u64;
        self.overhead_live += waste.overhead as u64;
        self.requested += layout.size() as u64;
        self.granted += (layout.size() + waste.rounding + waste.overhead) as u64;
        self.allocated_now = true;
        if let Some(recorder) = &mut self.heapmap {
            recorder.allocated(allocator.arena().offset_of_owned(ptr), layout.size());
        }
    }

    fn freeing(&mut self, allocator: &A, ptr: NonNull<u8>, layout: Layout) {
        let waste = allocator.waste(ptr, layout);
        self.rounding_live -= waste.rounding as u64;
        self.overhead_live -= waste.overhead as u64;
        self.requested -= layout.size() as u64;
        self.granted -= (layout.size() + waste.rounding + waste.overhead) as u64;
        if let Some(recorder) = &mut self.heapmap {
            recorder.freeing(allocator.arena().offset_of_owned(ptr));
        }
    }

    fn refused(&mut self, allocator: &A, kind: OpKind, size: u64, align: u64) {
        let reports = self.metrics.reports;
        if kind == OpKind::Alloc && align > allocator.stats().arena_bytes as u64 {
            // An alignment no place in the arena can have: unsupported, not
            // fragmentation, however much is free.
            self.metrics.out_of_memory_failures += 1;
            return;
        }
        if kind == OpKind::Alloc {
            let free_bytes = if reports.free_bytes {
                allocator.stats().free_bytes
            } else if reports.free_space {
                allocator.free_shape().free_bytes
            } else {
                // Neither kind can be told; the total still counts it.
                self.metrics.unclassified_failures += 1;
                return;
            };
            if free_bytes as u64 >= size {
                self.metrics.fragmentation_failures += 1;
            } else {
                self.metrics.out_of_memory_failures += 1;
            }
        }
    }

    fn stepped(&mut self, allocator: &A, index: usize) -> Result<(), VerifyError> {
        let sample = (index + 1).is_multiple_of(self.sample_every) || index == self.last_index;
        // A caching layer's cached bytes change on frees too: read after every op.
        let caching = self.metrics.cache_bound_bytes.is_some();
        let counted = std::mem::take(&mut self.allocated_now) || sample;
        let stats = (counted || caching).then(|| allocator.stats());
        if let Some(stats) = stats.filter(|_| counted) {
            debug_assert_eq!(
                (stats.requested_bytes as u64, stats.granted_bytes as u64),
                (self.requested, self.granted)
            );
            self.footprint = stats.footprint_bytes as u64;
            self.metadata = stats.metadata_bytes as u64;
        }
        let (r, g, h) = (self.requested, self.granted, self.footprint);
        let cached = stats.map_or(0, |s| s.cached_bytes as u64);
        let m = &mut self.metrics;
        m.peak_cached_bytes = m.peak_cached_bytes.max(cached);
        if r > m.peak_requested_bytes {
            m.peak_requested_bytes = r;
            m.peak_requested_op = Some(index as u64 + 1);
            m.granted_at_peak_bytes = g;
            m.footprint_at_peak_bytes = h;
            m.metadata_at_peak_bytes = self.metadata;
            m.rounding_at_peak_bytes = self.rounding_live;
            m.overhead_at_peak_bytes = self.overhead_live;
            m.internal_frag_at_peak_pct = fraction_pct(g - r, g);
            m.jw2_pct = percent_over(h, r);
            m.holes_at_peak_pct = fraction_pct(h.saturating_sub(g + self.metadata), h);
        }
        if h > m.peak_footprint_bytes {
            m.peak_footprint_bytes = h;
            m.requested_at_peak_footprint_bytes = r;
        }
        m.peak_granted_bytes = m.peak_granted_bytes.max(g);
        if g > 0 {
            self.internal_sum += fraction_pct(g - r, g);
            self.internal_count += 1;
        }
        if r > 0 {
            self.jw1_sum += percent_over(h, r);
            self.jw1_count += 1;
        }
        if let Some(recorder) = &mut self.heapmap {
            recorder.step(allocator, index, h);
        }
        if sample {
            let op = index as u64 + 1;
            let details = allocator.details();
            m.order_samples.extend(order_samples(op, &details));
            m.level_samples.extend(level_samples(op, &details));
            if self.details_requested.is_none_or(|best| r > best) {
                self.details_requested = Some(r);
                m.details = details;
                if m.reports.free_space {
                    m.details.extend(free_histogram(allocator));
                }
                m.details_op = Some(op);
            }
            // One walk of the free space gives F, L and the figures beyond them.
            let walk =
                m.reports.free_space.then(|| FreeWalk::of(allocator, m.request_sizes.unwrap_or_default().bytes, h));
            let shape = walk.map_or(FreeShape::default(), |w| w.all);
            let external = 100.0 * shape.external_fragmentation();
            if shape.free_bytes > 0 {
                self.external_sum += external;
                self.external_count += 1;
                m.external_frag_max_pct = m.external_frag_max_pct.max(external);
            }
            let unusable = walk.filter(|_| m.request_sizes.is_some()).and_then(|w| w.unusable_pct());
            if let Some(unusable) = unusable {
                for (sum, value) in self.unusable_sum.iter_mut().zip(unusable) {
                    *sum += value;
                }
                self.unusable_count += 1;
            }
            let footprint_external =
                walk.filter(|_| footprint_shape_reported(m.reports)).and_then(|w| w.footprint_external_pct());
            if let Some(value) = footprint_external {
                self.footprint_external_sum += value;
                self.footprint_external_count += 1;
            }
            m.samples.push(Sample {
                op,
                requested_bytes: r,
                granted_bytes: g,
                footprint_bytes: h,
                free_bytes: shape.free_bytes as u64,
                largest_free_bytes: shape.largest_free_block as u64,
                metadata_bytes: self.metadata,
                internal_frag_pct: fraction_pct(g - r, g),
                external_frag_pct: external,
                cached_bytes: cached,
                unusable_pct: unusable,
                external_frag_footprint_pct: footprint_external,
            });
        }
        if self.verify
            && let Err(violation) = allocator.check()
        {
            return Err(VerifyError { index, violation });
        }
        Ok(())
    }
}

/// The per-level figures of a model with levels, as series.
fn level_samples(op: u64, details: &[Detail]) -> impl Iterator<Item = LevelSample> + '_ {
    let name = |text: &str| text.replace(' ', "_");
    details.iter().filter_map(move |d| {
        let metric = match (d.table, d.column) {
            ("levels", "requested_bytes" | "granted_bytes" | "held_bytes" | "served" | "refused") => {
                format!("level_{}_{}", name(&d.row), d.column)
            }
            ("pool", "bytes") => format!("pool_{}_bytes", name(&d.row)),
            ("vmallocinfo", "mapped_bytes" | "virtual_bytes" | "largest_free_virtual_bytes") => {
                format!("vmalloc_{}", d.column)
            }
            _ => return None,
        };
        Some(LevelSample { op, metric, value: d.value })
    })
}

/// The vmstat indices of a `buddyinfo` table, one sample per order.
fn order_samples(op: u64, details: &[Detail]) -> Vec<OrderSample> {
    let mut orders: Vec<OrderSample> = Vec::new();
    for detail in details.iter().filter(|d| d.table == "buddyinfo") {
        let Some(order) = detail.row.strip_prefix("order ").and_then(|o| o.parse::<u32>().ok()) else { continue };
        let sample = match orders.iter_mut().find(|s| s.order == order) {
            Some(sample) => sample,
            None => {
                orders.push(OrderSample { op, order, unusable_free_index: 0.0, fragmentation_index: 0.0 });
                orders.last_mut().expect("just pushed")
            }
        };
        match detail.column {
            "unusable_free_index" => sample.unusable_free_index = detail.value,
            "fragmentation_index" => sample.fragmentation_index = detail.value,
            _ => {}
        }
    }
    orders
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::Step;
    use crate::replay::{Slots, Touch, replay};
    use heaplab_core::{AllocatorConfig, Arena};

    fn run<C: AllocatorConfig>(config: C, arena: usize, steps: &[Step], slots: usize) -> Metrics {
        let mut allocator = config.build(Arena::new(arena).unwrap()).unwrap();
        let mut probe = MetricsProbe::new(steps.len(), 10, true);
        let mut slots = Slots::new(slots);
        let outcome = replay(&mut allocator, steps, &mut slots, Touch::None, &mut probe).unwrap();
        probe.finish(allocator.stats(), outcome.failed_reallocs, outcome.skipped)
    }

    fn alloc(slot: u32, size: u64) -> Step {
        Step::Alloc { slot, align_log2: 4, size, level: heaplab_core::Level::User, space: 0 }
    }

    #[test]
    fn a_buddy_run_has_exactly_the_rounding_worked_on_paper() {
        // Three blocks of 100, 200 and 300 bytes in 16-byte-order buddy:
        // granted 128 + 256 + 512 = 896 for R = 600. At R's peak (after op
        // 2) internal fragmentation is 296/896; all of it rounding.
        let steps = [
            alloc(0, 100),
            alloc(1, 200),
            alloc(2, 300),
            Step::Free { slot: 1 },
            Step::Free { slot: 0 },
            Step::Free { slot: 2 },
        ];
        let m = run(heaplab_buddy::Config::default(), 1 << 16, &steps, 3);
        assert_eq!((m.peak_requested_bytes, m.peak_requested_op, m.granted_at_peak_bytes), (600, Some(3), 896));
        assert!((m.internal_frag_at_peak_pct - 100.0 * 296.0 / 896.0).abs() < 1e-9);
        assert_eq!((m.rounding_at_peak_bytes, m.overhead_at_peak_bytes), (296, 0));
        // Lower halves first: 128 at 0, 256 at 256 (split of 0..512), 512 at 512: H = 1024.
        assert_eq!(m.peak_footprint_bytes, 1024);
        assert!((m.utilization_pct - 100.0 * 600.0 / 1024.0).abs() < 1e-9);
        assert!((m.jw4_pct - 100.0 * (1024.0 / 600.0 - 1.0)).abs() < 1e-9);
        assert!((m.jw2_pct - m.jw4_pct).abs() < 1e-9, "H peaks with R here");
        // (H − G − M)/H at the peak: the hole 128..256.
        assert!((m.holes_at_peak_pct - 100.0 * 128.0 / 1024.0).abs() < 1e-9);
    }

    #[test]
    fn a_fragmenter_run_has_the_largest_free_block_worked_on_paper() {
        // Buddy with 64-byte order 0 on a 1 KiB arena: sixteen 64-byte
        // blocks fill it; freeing every other one leaves 512 free bytes in
        // 64-byte holes: 1 − L/F = 1 − 64/512 = 87.5 %. Then a 128-byte
        // request fails although F = 512 ≥ 128: a fragmentation failure.
        let mut steps: Vec<Step> = (0..16).map(|slot| alloc(slot, 64)).collect();
        steps.extend((0..16).step_by(2).map(|slot| Step::Free { slot }));
        steps.push(alloc(16, 128));
        steps.extend((1..16).step_by(2).map(|slot| Step::Free { slot }));
        let config = heaplab_buddy::Config { min_block: 64, max_order: None, split: heaplab_buddy::Split::Lower };
        let mut allocator = config.build(Arena::new(1024).unwrap()).unwrap();
        let mut probe = MetricsProbe::new(steps.len(), steps.len(), false);
        let mut slots = Slots::new(17);
        let outcome = replay(&mut allocator, &steps, &mut slots, Touch::None, &mut probe).unwrap();
        let m = probe.finish(allocator.stats(), outcome.failed_reallocs, outcome.skipped);
        let after_holes = m.samples[23];
        assert_eq!((after_holes.op, after_holes.free_bytes, after_holes.largest_free_bytes), (24, 512, 64));
        assert_eq!(after_holes.external_frag_pct, 87.5);
        assert_eq!((m.fragmentation_failures, m.out_of_memory_failures), (1, 0));
        assert_eq!(m.external_frag_max_pct, 87.5);
    }

    #[test]
    fn the_unusable_share_and_the_footprint_relative_figure_are_worked_on_paper() {
        // Buddy with 64-byte order 0 on a 1 KiB arena, lower halves first:
        // four 64-byte blocks fill 0..256 (H = 256) and leave 256 free at
        // 256 and 512 at 512. Freeing the block at 64 adds a 64-byte hole.
        // F = 832 and L = 512: 1 − L/F = 38.5 %, but below H only the hole
        // is free: 1 − 64/64 = 0. A 1 KiB request then fails.
        let mut steps: Vec<Step> = (0..4).map(|slot| alloc(slot, 64)).collect();
        steps.push(Step::Free { slot: 1 });
        steps.push(alloc(4, 1024));
        let sizes = RequestSizes::of(&steps).unwrap();
        // Sizes 64, 64, 64, 64, 1024: p50 is 64, p99 the largest.
        assert_eq!(sizes.bytes, [64, 1024]);
        let config = heaplab_buddy::Config { min_block: 64, max_order: None, split: heaplab_buddy::Split::Lower };
        let mut allocator = config.build(Arena::new(1024).unwrap()).unwrap();
        let mut probe = MetricsProbe::new(steps.len(), steps.len(), false);
        probe.set_request_sizes(Some(sizes));
        let mut slots = Slots::new(5);
        let outcome = replay(&mut allocator, &steps, &mut slots, Touch::None, &mut probe).unwrap();
        let m = probe.finish(allocator.stats(), outcome.failed_reallocs, outcome.skipped);
        let last = m.samples[5];
        assert_eq!((last.footprint_bytes, last.free_bytes, last.largest_free_bytes), (256, 832, 512));
        assert!((last.external_frag_pct - 100.0 * (1.0 - 512.0 / 832.0)).abs() < 1e-9);
        assert_eq!(last.external_frag_footprint_pct, Some(0.0));
        // Every free block serves 64 bytes; none serves 1 KiB.
        assert_eq!(last.unusable_pct, Some([0.0, 100.0]));
        // After op 4 nothing below H = 256 is free: no footprint figure.
        assert_eq!(m.samples[3].external_frag_footprint_pct, None);
        // The means are over the samples that have the figure.
        let footprint: Vec<f64> = m.samples.iter().filter_map(|s| s.external_frag_footprint_pct).collect();
        assert_eq!(m.external_frag_footprint_mean_pct, Some(footprint.iter().sum::<f64>() / footprint.len() as f64));
        assert_eq!(m.unusable_mean_pct.map(|u| u[1]), Some(100.0));
        // The buddyinfo at the end: order 0 has the hole, order 4 (1 KiB) nothing;
        // the unusable free index of order 4 is 1, that of order 0 is 0.
        let at = |order: u32| m.order_samples.iter().rev().find(|s| s.order == order).copied().unwrap();
        assert_eq!((at(0).op, at(0).unusable_free_index), (6, 0.0));
        assert_eq!(at(4).unusable_free_index, 1.0);
        // Order 4 has no free block and F = 832 = 13 pages of 64 in 3 blocks:
        // 1000 − (1000 + 13000/16)/3 = 1000 − 604 = 396 (integer division).
        assert_eq!(at(4).fragmentation_index, 0.396);
    }

    #[test]
    fn a_freelist_splits_waste_into_header_and_rounding() {
        // 1 byte takes a 32-byte block: header and padding to the 16-byte
        // granule are 15 bytes of overhead, the rest of the 32-byte minimum
        // block 16 bytes of rounding.
        let m = run(heaplab_freelist::Config::default(), 4096, &[alloc(0, 1), Step::Free { slot: 0 }], 1);
        assert_eq!((m.granted_at_peak_bytes, m.overhead_at_peak_bytes, m.rounding_at_peak_bytes), (32, 15, 16));
    }
}
