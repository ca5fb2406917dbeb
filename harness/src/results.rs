//! The results of a run, as files: the exporter. Measurement produces
//! [`CellResult`]s; this module turns them into rows and writes them.
//!
//! `results/<run>/`:
//! - `summary.csv`: one row per (allocator, workload, seed); column names
//!   carry their unit (`_bytes`, `_pct`, `_ns`, `ops_per_sec`).
//! - `timeseries.csv`: long format, `allocator,workload,seed,op,metric,value`.
//! - `latency.csv`: the percentile spectrum per op kind.
//! - `throughput.csv`: every timed repetition, with the timing process
//!   that ran it.
//! - `details.csv`: allocator-specific tables (buddyinfo, slabinfo) and the
//!   free-block size histogram, at the sample where requested bytes peaked.
//! - `heapmap.csv`: heap-map frames, one string of states per frame.
//! - `meta.json`: what produced the results and how to repeat them.
//!
//! Every file but the time series is rewritten whole after each finished
//! cell, through a temporary file renamed into place; the time series is
//! appended with one `write` per cell. An interrupted run therefore leaves
//! complete files holding the cells finished so far.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::replay::Touch;

/// The results schema; bumped when a column changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// Percentiles written to `latency.csv`.
pub const SPECTRUM: [f64; 12] = [0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0];

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
    pub counts: [u64; 3],
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
    /// For alloc, free, realloc: samples and `(percentile, ns)` for [`SPECTRUM`].
    pub kinds: [(u64, Vec<(f64, u64)>); 3],
    /// The timer's own cost, subtracted from each sample.
    pub timer_overhead_ns: f64,
}

impl Latency {
    /// The value at `percentile` for kind index `kind`, if that kind was timed.
    pub fn at(&self, kind: usize, percentile: f64) -> Option<u64> {
        let (count, spectrum) = &self.kinds[kind];
        if *count == 0 {
            return None;
        }
        spectrum.iter().find(|(p, _)| *p == percentile).map(|(_, ns)| *ns)
    }
}

/// One row of `summary.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    pub arena_bytes: u64,
    pub ops: u64,
    pub allocs: u64,
    pub frees: u64,
    pub reallocs: u64,
    pub failed_allocs: u64,
    pub fragmentation_failures: Option<u64>,
    pub out_of_memory_failures: Option<u64>,
    pub failed_reallocs: u64,
    pub skipped_ops: u64,
    pub peak_requested_bytes: u64,
    pub peak_requested_op: Option<u64>,
    pub granted_at_peak_bytes: Option<u64>,
    pub footprint_at_peak_bytes: Option<u64>,
    pub metadata_at_peak_bytes: Option<u64>,
    pub rounding_at_peak_bytes: Option<u64>,
    pub overhead_at_peak_bytes: Option<u64>,
    pub peak_granted_bytes: Option<u64>,
    pub peak_footprint_bytes: Option<u64>,
    pub side_metadata_bytes: u64,
    pub internal_frag_at_peak_pct: Option<f64>,
    pub internal_frag_mean_pct: Option<f64>,
    pub external_frag_mean_pct: Option<f64>,
    pub external_frag_max_pct: Option<f64>,
    pub holes_at_peak_pct: Option<f64>,
    pub jw1_pct: Option<f64>,
    pub jw2_pct: Option<f64>,
    pub jw3_pct: Option<f64>,
    pub jw4_pct: Option<f64>,
    pub utilization_pct: Option<f64>,
    pub blocks_inspected: Option<u64>,
    pub splits: Option<u64>,
    pub coalesces: Option<u64>,
    pub reps: Option<u64>,
    pub passes_per_rep: Option<u64>,
    pub replay_seconds: Option<f64>,
    pub metrics_pass_seconds: f64,
    pub ops_per_sec: Option<f64>,
    pub ops_per_sec_ci_low: Option<f64>,
    pub ops_per_sec_ci_high: Option<f64>,
    pub ops_per_sec_ci_level_pct: Option<f64>,
    pub ops_per_sec_min: Option<f64>,
    pub ops_per_sec_max: Option<f64>,
    pub alloc_p50_ns: Option<u64>,
    pub alloc_p90_ns: Option<u64>,
    pub alloc_p99_ns: Option<u64>,
    pub alloc_p999_ns: Option<u64>,
    pub alloc_max_ns: Option<u64>,
    pub free_p50_ns: Option<u64>,
    pub free_p90_ns: Option<u64>,
    pub free_p99_ns: Option<u64>,
    pub free_p999_ns: Option<u64>,
    pub free_max_ns: Option<u64>,
    pub realloc_p50_ns: Option<u64>,
    pub realloc_p90_ns: Option<u64>,
    pub realloc_p99_ns: Option<u64>,
    pub realloc_p999_ns: Option<u64>,
    pub realloc_max_ns: Option<u64>,
    pub timer_overhead_ns: Option<f64>,
}

/// The columns that do not depend on timing: equal for equal inputs on any
/// machine.
pub const DETERMINISTIC_COLUMNS: usize = 36;

impl SummaryRow {
    /// The row of a cell.
    pub fn from_cell(cell: &CellResult) -> SummaryRow {
        let m = &cell.metrics;
        let t = cell.throughput.as_ref();
        let l = cell.latency.as_ref();
        let p = |kind: usize, percentile: f64| l.and_then(|l| l.at(kind, percentile));
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
            allocs: cell.counts[0],
            frees: cell.counts[1],
            reallocs: cell.counts[2],
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
            alloc_p50_ns: p(0, 50.0),
            alloc_p90_ns: p(0, 90.0),
            alloc_p99_ns: p(0, 99.0),
            alloc_p999_ns: p(0, 99.9),
            alloc_max_ns: p(0, 100.0),
            free_p50_ns: p(1, 50.0),
            free_p90_ns: p(1, 90.0),
            free_p99_ns: p(1, 99.0),
            free_p999_ns: p(1, 99.9),
            free_max_ns: p(1, 100.0),
            realloc_p50_ns: p(2, 50.0),
            realloc_p90_ns: p(2, 90.0),
            realloc_p99_ns: p(2, 99.0),
            realloc_p999_ns: p(2, 99.9),
            realloc_max_ns: p(2, 100.0),
            timer_overhead_ns: l.map(|l| l.timer_overhead_ns),
        }
    }
}

/// One row of `timeseries.csv`.
#[derive(Debug, Serialize)]
struct SeriesRow<'a> {
    allocator: &'a str,
    workload: &'a str,
    seed: Option<u64>,
    op: u64,
    metric: &'static str,
    value: f64,
}

/// One row of `details.csv`.
#[derive(Debug, Serialize)]
struct DetailRow<'a> {
    allocator: &'a str,
    workload: &'a str,
    seed: Option<u64>,
    op: Option<u64>,
    table: &'a str,
    row: &'a str,
    column: &'a str,
    value: f64,
}

/// One row of `heapmap.csv`.
#[derive(Debug, Serialize)]
struct HeapMapRow<'a> {
    allocator: &'a str,
    workload: &'a str,
    seed: Option<u64>,
    frame: usize,
    op: u64,
    footprint_bytes: u64,
    span_bytes: u64,
    states: &'a str,
}

/// One row of `latency.csv`: the reports crate reads the same type.
pub use heaplab_reports::data::LatencyRow;

/// One row of `throughput.csv`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    pub rep: u64,
    /// The timing process that ran the repetition (0 in results from
    /// before timing processes).
    #[serde(default)]
    pub process: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
}

/// How a run was configured: everything needed to repeat it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Canonical allocator specs.
    pub allocators: Vec<String>,
    /// Canonical workload specs or trace paths.
    pub workloads: Vec<String>,
    /// Seeds for synthetic workloads.
    pub seeds: Vec<u64>,
    /// Timed repetitions.
    pub reps: usize,
    /// Untimed warm-up repetitions.
    pub warmup: usize,
    /// Arena size; `None`: 64 MiB, or what a workload suggests.
    pub arena_bytes: Option<u64>,
    /// Alignment for requests that specify none.
    pub align: u64,
    /// Touch mode.
    pub touch: Touch,
    /// Time every op?
    pub latency: bool,
    /// Skip the timed passes?
    pub metrics_only: bool,
    /// Check invariants after every op?
    pub verify: bool,
    /// Time-series samples per cell.
    pub points: usize,
    /// Heap-map frames per cell (0: none).
    #[serde(default)]
    pub frames: usize,
    /// Timed cells run at once.
    pub jobs: usize,
    /// Timing processes the repetitions are spread over (1 in results from
    /// before there were several).
    #[serde(default = "one")]
    pub processes: usize,
}

fn one() -> usize {
    1
}

/// The timer a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerInfo {
    /// Which clock.
    pub clock: String,
    /// Nanoseconds per tick.
    pub ns_per_tick: f64,
    /// Cost of one timed interval, subtracted from samples.
    pub overhead_ns: f64,
}

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub schema_version: u32,
    pub heaplab_version: String,
    pub git_revision: String,
    pub rustc: String,
    pub cpu_model: String,
    pub cores: usize,
    pub date_utc: String,
    pub command_line: Vec<String>,
    pub run_name: String,
    pub settings: RunSettings,
    pub timer: Option<TimerInfo>,
    /// `running`, `complete` or `interrupted`.
    pub status: String,
    pub cells_total: usize,
    pub cells_finished: usize,
    pub elapsed_seconds: f64,
}

/// Write `bytes` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new().prefix(".heaplab-").suffix(".tmp").tempfile_in(directory)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_data()?;
    // Temporary files are private; results are for reading.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary.as_file().set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    temporary.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn csv_bytes<T: Serialize>(rows: &[T]) -> io::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(io::Error::other)?;
    }
    writer.into_inner().map_err(|e| io::Error::other(e.to_string()))
}

/// The files of one run, written as cells finish.
#[derive(Debug)]
pub struct ResultsDir {
    dir: PathBuf,
    summary: Vec<SummaryRow>,
    latency: Vec<LatencyRow>,
    throughput: Vec<ThroughputRow>,
    timeseries: File,
    details: File,
    heapmap: File,
}

impl ResultsDir {
    /// Create `dir` (which must not hold results already) and its files.
    pub fn create(dir: &Path, meta: &Meta) -> io::Result<ResultsDir> {
        if dir.join("summary.csv").exists() || dir.join("meta.json").exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already holds results; choose another --name or remove it", dir.display()),
            ));
        }
        fs::create_dir_all(dir)?;
        let mut timeseries =
            OpenOptions::new().create(true).truncate(true).write(true).open(dir.join("timeseries.csv"))?;
        timeseries.write_all(b"allocator,workload,seed,op,metric,value\n")?;
        let mut details = OpenOptions::new().create(true).truncate(true).write(true).open(dir.join("details.csv"))?;
        details.write_all(b"allocator,workload,seed,op,table,row,column,value\n")?;
        let mut heapmap = OpenOptions::new().create(true).truncate(true).write(true).open(dir.join("heapmap.csv"))?;
        heapmap.write_all(b"allocator,workload,seed,frame,op,footprint_bytes,span_bytes,states\n")?;
        let results = ResultsDir {
            dir: dir.to_path_buf(),
            summary: Vec::new(),
            latency: Vec::new(),
            throughput: Vec::new(),
            timeseries,
            details,
            heapmap,
        };
        results.write_meta(meta)?;
        results.rewrite()?;
        Ok(results)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The summary rows so far.
    pub fn summary(&self) -> &[SummaryRow] {
        &self.summary
    }

    /// Record a finished cell in every file.
    pub fn add(&mut self, cell: &CellResult) -> io::Result<()> {
        let mut series = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        for sample in &cell.metrics.samples {
            // Series the allocator cannot report are left out.
            let r = cell.metrics.reports;
            for (metric, value, reported) in [
                ("requested_bytes", sample.requested_bytes as f64, true),
                ("granted_bytes", sample.granted_bytes as f64, r.granted),
                ("footprint_bytes", sample.footprint_bytes as f64, r.footprint),
                ("free_bytes", sample.free_bytes as f64, r.free_space),
                ("largest_free_bytes", sample.largest_free_bytes as f64, r.free_space),
                ("metadata_bytes", sample.metadata_bytes as f64, r.footprint),
                ("internal_frag_pct", sample.internal_frag_pct, r.granted),
                ("external_frag_pct", sample.external_frag_pct, r.free_space),
            ] {
                if !reported {
                    continue;
                }
                series
                    .serialize(SeriesRow {
                        allocator: &cell.allocator,
                        workload: &cell.workload,
                        seed: cell.seed,
                        op: sample.op,
                        metric,
                        value,
                    })
                    .map_err(io::Error::other)?;
            }
        }
        let series = series.into_inner().map_err(|e| io::Error::other(e.to_string()))?;
        // One write per cell and file: a row is never half-written.
        self.timeseries.write_all(&series)?;
        self.timeseries.sync_data()?;
        let mut details = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        for d in &cell.metrics.details {
            details
                .serialize(DetailRow {
                    allocator: &cell.allocator,
                    workload: &cell.workload,
                    seed: cell.seed,
                    op: cell.metrics.details_op,
                    table: d.table,
                    row: &d.row,
                    column: d.column,
                    value: d.value,
                })
                .map_err(io::Error::other)?;
        }
        self.details.write_all(&details.into_inner().map_err(|e| io::Error::other(e.to_string()))?)?;
        if let Some(map) = &cell.metrics.heapmap {
            let mut rows = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
            for (frame, f) in map.frames.iter().enumerate() {
                rows.serialize(HeapMapRow {
                    allocator: &cell.allocator,
                    workload: &cell.workload,
                    seed: cell.seed,
                    frame,
                    op: f.op,
                    footprint_bytes: f.footprint_bytes,
                    span_bytes: map.span_bytes,
                    states: &f.states,
                })
                .map_err(io::Error::other)?;
            }
            self.heapmap.write_all(&rows.into_inner().map_err(|e| io::Error::other(e.to_string()))?)?;
        }
        if let Some(latency) = &cell.latency {
            for (kind, (samples, spectrum)) in ["alloc", "free", "realloc"].into_iter().zip(&latency.kinds) {
                for &(percentile, latency_ns) in spectrum {
                    self.latency.push(LatencyRow {
                        allocator: cell.allocator.clone(),
                        workload: cell.workload.clone(),
                        seed: cell.seed,
                        kind: kind.to_string(),
                        percentile,
                        latency_ns,
                        samples: *samples,
                    });
                }
            }
        }
        if let Some(throughput) = &cell.throughput {
            let ops = cell.metrics.ops as f64;
            for (rep, &seconds) in throughput.seconds.iter().enumerate() {
                self.throughput.push(ThroughputRow {
                    allocator: cell.allocator.clone(),
                    workload: cell.workload.clone(),
                    seed: cell.seed,
                    rep: rep as u64,
                    process: throughput.processes.get(rep).copied().unwrap_or(0) as u64,
                    seconds,
                    ops_per_sec: ops / seconds,
                });
            }
        }
        self.summary.push(SummaryRow::from_cell(cell));
        self.rewrite()
    }

    fn rewrite(&self) -> io::Result<()> {
        write_atomic(&self.dir.join("summary.csv"), &csv_or_header::<SummaryRow>(&self.summary)?)?;
        write_atomic(&self.dir.join("latency.csv"), &csv_or_header::<LatencyRow>(&self.latency)?)?;
        write_atomic(&self.dir.join("throughput.csv"), &csv_or_header::<ThroughputRow>(&self.throughput)?)
    }

    /// Rewrite `meta.json`.
    pub fn write_meta(&self, meta: &Meta) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        json.push(b'\n');
        write_atomic(&self.dir.join("meta.json"), &json)
    }
}

/// CSV text of `rows`, or just the header line when there are none (so a
/// reader always finds the columns).
fn csv_or_header<T: Serialize + HeaderOnly>(rows: &[T]) -> io::Result<Vec<u8>> {
    if rows.is_empty() { Ok(format!("{}\n", T::header()).into_bytes()) } else { csv_bytes(rows) }
}

/// The header line of a row type, for empty files.
trait HeaderOnly {
    fn header() -> String;
}

macro_rules! header_only {
    ($type:ty, $example:expr) => {
        impl HeaderOnly for $type {
            fn header() -> String {
                let bytes = csv_bytes(&[$example]).expect("serialising to memory");
                String::from_utf8(bytes).expect("CSV is UTF-8").lines().next().unwrap_or_default().to_string()
            }
        }
    };
}

header_only!(
    SummaryRow,
    SummaryRow::from_cell(&CellResult {
        allocator: String::new(),
        workload: String::new(),
        seed: None,
        arena_bytes: 0,
        counts: [0; 3],
        metrics: Metrics::default(),
        metrics_seconds: 0.0,
        throughput: None,
        latency: None,
    })
);
header_only!(
    LatencyRow,
    LatencyRow {
        allocator: String::new(),
        workload: String::new(),
        seed: None,
        kind: String::new(),
        percentile: 0.0,
        latency_ns: 0,
        samples: 0
    }
);
header_only!(
    ThroughputRow,
    ThroughputRow {
        allocator: String::new(),
        workload: String::new(),
        seed: None,
        rep: 0,
        process: 0,
        seconds: 0.0,
        ops_per_sec: 0.0
    }
);

/// Read a `summary.csv`.
pub fn read_summary(path: &Path) -> Result<Vec<SummaryRow>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(index, row)| {
            row.map_err(|e| {
                let line = e.position().map_or(index as u64 + 2, |p| p.line());
                format!("{}:{line}: expected a summary row of schema {SCHEMA_VERSION}: {e}", path.display())
            })
        })
        .collect()
}
