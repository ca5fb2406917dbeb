//! One row type per results file.

use heaplab_core::OpKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One row of `summary.csv`: a cell, (allocator, workload, seed).
///
/// A figure an allocator cannot report is `None`, an empty cell, never
/// estimated. The columns [`KEY`] identify the row; the columns named in
/// [`DETERMINISTIC`] do not depend on timing (equal for equal inputs on any
/// machine: `heaplab compare` holds them equal exactly); the rest are
/// timings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    /// Threads the cell ran on (1 in results from before threads).
    #[serde(default = "one_thread")]
    pub threads: u32,
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
    /// The workload's p50 and p99 request size, and the mean unusable free
    /// share at each (design notes §10).
    #[serde(default)]
    pub request_p50_bytes: Option<u64>,
    #[serde(default)]
    pub request_p99_bytes: Option<u64>,
    #[serde(default)]
    pub unusable_at_p50_mean_pct: Option<f64>,
    #[serde(default)]
    pub unusable_at_p99_mean_pct: Option<f64>,
    /// Mean 1 − L/F counting only free space below the footprint.
    #[serde(default)]
    pub external_frag_footprint_mean_pct: Option<f64>,
    pub holes_at_peak_pct: Option<f64>,
    pub jw1_pct: Option<f64>,
    pub jw2_pct: Option<f64>,
    pub jw3_pct: Option<f64>,
    pub jw4_pct: Option<f64>,
    pub utilization_pct: Option<f64>,
    pub blocks_inspected: Option<u64>,
    pub splits: Option<u64>,
    pub coalesces: Option<u64>,
    /// Frees of a block another thread allocated, percent of frees (a
    /// property of the workload's threads, the same for every allocator).
    #[serde(default)]
    pub remote_free_pct: Option<f64>,
    /// Most bytes a thread-caching layer held in its caches at once, and
    /// the bound its parameters put on them (size-class bytes).
    #[serde(default)]
    pub peak_cached_bytes: Option<u64>,
    #[serde(default)]
    pub cache_bound_bytes: Option<u64>,
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
    /// The smallest step the latency clock shows (see `TimerInfo`).
    #[serde(default)]
    pub timer_granularity_ns: Option<f64>,
    /// The machine that measured the row, in a run merged from shards
    /// (`heaplab merge`); empty otherwise (meta.json names the machine).
    #[serde(default)]
    pub host: Option<String>,
    /// `heaplab exec` rows only (empty otherwise): medians over the
    /// repetitions of the program's wall, user and system time, peak
    /// resident set and page faults, as `wait4` reports them for the
    /// command and the descendants it waited for.
    #[serde(default)]
    pub wall_seconds: Option<f64>,
    #[serde(default)]
    pub user_seconds: Option<f64>,
    #[serde(default)]
    pub sys_seconds: Option<f64>,
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
    #[serde(default)]
    pub minor_faults: Option<u64>,
    #[serde(default)]
    pub major_faults: Option<u64>,
    /// `heaplab exec` rows only: processes other than the command's own
    /// that allocated through heaplab, and their figures summed.
    #[serde(default)]
    pub child_processes: Option<u64>,
    #[serde(default)]
    pub children_peak_requested_bytes: Option<u64>,
    #[serde(default)]
    pub children_peak_footprint_bytes: Option<u64>,
}

/// The columns that identify a summary row.
pub const KEY: [&str; 4] = ["allocator", "workload", "seed", "threads"];

/// The summary columns that do not depend on timing, by name: every
/// fragmentation figure and count. Pinned against the header by a test.
pub const DETERMINISTIC: [&str; 41] = [
    "arena_bytes",
    "ops",
    "allocs",
    "frees",
    "reallocs",
    "failed_allocs",
    "fragmentation_failures",
    "out_of_memory_failures",
    "failed_reallocs",
    "skipped_ops",
    "peak_requested_bytes",
    "peak_requested_op",
    "granted_at_peak_bytes",
    "footprint_at_peak_bytes",
    "metadata_at_peak_bytes",
    "rounding_at_peak_bytes",
    "overhead_at_peak_bytes",
    "peak_granted_bytes",
    "peak_footprint_bytes",
    "side_metadata_bytes",
    "internal_frag_at_peak_pct",
    "internal_frag_mean_pct",
    "external_frag_mean_pct",
    "external_frag_max_pct",
    "request_p50_bytes",
    "request_p99_bytes",
    "unusable_at_p50_mean_pct",
    "unusable_at_p99_mean_pct",
    "external_frag_footprint_mean_pct",
    "holes_at_peak_pct",
    "jw1_pct",
    "jw2_pct",
    "jw3_pct",
    "jw4_pct",
    "utilization_pct",
    "blocks_inspected",
    "splits",
    "coalesces",
    "remote_free_pct",
    "peak_cached_bytes",
    "cache_bound_bytes",
];

fn one_thread() -> u32 {
    1
}

impl SummaryRow {
    /// Every column as `(name, text)`, as `summary.csv` writes it.
    pub fn columns(&self) -> Vec<(String, String)> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(self).expect("a summary row serialises");
        let bytes = writer.into_inner().expect("writing to memory");
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let names = reader.headers().expect("the header just written").clone();
        let record = reader.records().next().and_then(Result::ok).unwrap_or_default();
        names.iter().zip(record.iter()).map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    /// The [`DETERMINISTIC`] columns as `(name, text)`.
    pub fn deterministic(&self) -> Vec<(String, String)> {
        self.columns().into_iter().filter(|(name, _)| DETERMINISTIC.contains(&name.as_str())).collect()
    }
}

/// One row of `timeseries.csv`: one metric of one sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    /// Threads the cell ran on (1 in results from before threads).
    #[serde(default = "one_thread")]
    pub threads: u32,
    /// Ops done when the sample was taken.
    pub op: u64,
    pub metric: String,
    pub value: f64,
}

/// One row of `latency.csv`: one percentile of one op kind's spectrum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    /// Threads the cell ran on (1 in results from before threads).
    #[serde(default = "one_thread")]
    pub threads: u32,
    /// `alloc`, `free` or `realloc` in the file.
    #[serde(with = "op_kind")]
    pub kind: OpKind,
    pub percentile: f64,
    pub latency_ns: u64,
    pub samples: u64,
}

/// One row of `throughput.csv`: one timed repetition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThroughputRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    /// Threads the cell ran on (1 in results from before threads).
    #[serde(default = "one_thread")]
    pub threads: u32,
    /// The repetition's number, which is also the round it ran in.
    pub rep: u64,
    /// The timing process that ran the repetition (0 in results from
    /// before timing processes).
    #[serde(default)]
    pub process: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    /// The machine that timed the repetition, in a run merged from shards;
    /// empty otherwise.
    #[serde(default)]
    pub host: Option<String>,
}

/// One row of `exec.csv` (`heaplab exec` only): one run of the program.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecRow {
    pub allocator: String,
    pub workload: String,
    /// The repetition, which is also the round it ran in; the metrics run
    /// (the allocator with its ledger, untimed for comparison) is `metrics`
    /// in `pass`.
    pub rep: u64,
    /// `timed` or `metrics`.
    pub pass: String,
    pub wall_seconds: f64,
    pub user_seconds: f64,
    pub sys_seconds: f64,
    pub max_rss_bytes: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
    /// The exit code, or 128 + the signal that ended it.
    pub status: i32,
}

/// One row of `replay.csv` (`heaplab exec --replay` only): one allocator
/// on one bundled program, run for real and replayed from its trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayRow {
    /// The program (`python`, …): workload `exec:NAME` here, `trace:NAME`
    /// in the replay run.
    pub program: String,
    pub allocator: String,
    /// The program's median wall time on the allocator.
    pub exec_wall_seconds: Option<f64>,
    /// The median time per op of the trace's timed replay.
    pub replay_ns_per_op: Option<f64>,
    /// The program's median peak RSS on the allocator.
    pub exec_peak_rss_bytes: Option<u64>,
    /// The replay's footprint high-water mark (heaplab's families only).
    pub replay_peak_footprint_bytes: Option<u64>,
    /// The replay's utilization (max R / max H).
    pub replay_utilization_pct: Option<f64>,
}

/// One row of `details.csv`: one figure of an allocator-specific table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetailRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    /// Threads the cell ran on (1 in results from before threads).
    #[serde(default = "one_thread")]
    pub threads: u32,
    /// The op after which the table was taken.
    pub op: Option<u64>,
    pub table: String,
    pub row: String,
    pub column: String,
    pub value: f64,
}

/// One row of `heapmap.csv`: one frame, one character per column of the
/// arena span (see the harness's heap-map recorder for the states).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeapMapRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    /// Threads the cell ran on (1 in results from before threads).
    #[serde(default = "one_thread")]
    pub threads: u32,
    pub frame: usize,
    pub op: u64,
    pub footprint_bytes: u64,
    pub span_bytes: u64,
    pub states: String,
}

/// An [`OpKind`] as its name.
mod op_kind {
    use super::*;

    pub fn serialize<S: Serializer>(kind: &OpKind, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(kind.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OpKind, D::Error> {
        let name = String::deserialize(deserializer)?;
        OpKind::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("expected alloc, free or realloc, found `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn example() -> SummaryRow {
        let text = "allocator,workload,seed,arena_bytes,ops,allocs,frees,reallocs,failed_allocs,fragmentation_failures,out_of_memory_failures,failed_reallocs,skipped_ops,peak_requested_bytes,peak_requested_op,granted_at_peak_bytes,footprint_at_peak_bytes,metadata_at_peak_bytes,rounding_at_peak_bytes,overhead_at_peak_bytes,peak_granted_bytes,peak_footprint_bytes,side_metadata_bytes,internal_frag_at_peak_pct,internal_frag_mean_pct,external_frag_mean_pct,external_frag_max_pct,holes_at_peak_pct,jw1_pct,jw2_pct,jw3_pct,jw4_pct,utilization_pct,blocks_inspected,splits,coalesces,reps,passes_per_rep,replay_seconds,metrics_pass_seconds,ops_per_sec,ops_per_sec_ci_low,ops_per_sec_ci_high,ops_per_sec_ci_level_pct,ops_per_sec_min,ops_per_sec_max,alloc_p50_ns,alloc_p90_ns,alloc_p99_ns,alloc_p999_ns,alloc_max_ns,free_p50_ns,free_p90_ns,free_p99_ns,free_p999_ns,free_max_ns,realloc_p50_ns,realloc_p90_ns,realloc_p99_ns,realloc_p999_ns,realloc_max_ns,timer_overhead_ns\nbuddy,ramp,1,1024,10,5,5,0,0,0,0,0,0,100,3,128,256,0,28,0,128,256,16,21.8,20.1,0,0,10,1,2,3,4,39,,4,4,7,1,0.1,0.2,100,90,110,95,80,120,10,20,30,40,50,11,21,31,41,51,,,,,,5.5\n";
        csv::Reader::from_reader(text.as_bytes()).deserialize().next().unwrap().unwrap()
    }

    #[test]
    fn the_deterministic_columns_are_the_ones_before_the_timings() {
        let columns: Vec<String> = example().columns().into_iter().map(|(name, _)| name).collect();
        // The header starts with the key, then exactly the deterministic
        // columns, in order; everything after them is a timing.
        assert_eq!(&columns[..4], &KEY);
        assert_eq!(&columns[4..4 + DETERMINISTIC.len()], &DETERMINISTIC);
        assert_eq!(columns[4 + DETERMINISTIC.len()], "reps");
        assert!(columns[4 + DETERMINISTIC.len()..].iter().all(|c| !DETERMINISTIC.contains(&c.as_str())));
    }

    #[test]
    fn deterministic_figures_are_taken_by_name() {
        let row = example();
        let figures = row.deterministic();
        assert_eq!(figures.len(), DETERMINISTIC.len());
        assert!(figures.contains(&("utilization_pct".to_string(), "39.0".to_string())));
        assert!(figures.contains(&("blocks_inspected".to_string(), String::new())));
        assert!(!figures.iter().any(|(name, _)| name == "ops_per_sec"));
    }
}
