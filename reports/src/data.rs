//! Reading a results directory: only what `heaplab run`'s exporters wrote.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ReportError;

/// The summary columns the report uses (the file has more).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct SummaryRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    pub ops: u64,
    pub failed_allocs: u64,
    pub fragmentation_failures: Option<u64>,
    pub peak_requested_bytes: u64,
    pub peak_footprint_bytes: Option<u64>,
    pub internal_frag_at_peak_pct: Option<f64>,
    pub rounding_at_peak_bytes: Option<u64>,
    pub overhead_at_peak_bytes: Option<u64>,
    pub external_frag_mean_pct: Option<f64>,
    pub holes_at_peak_pct: Option<f64>,
    pub jw4_pct: Option<f64>,
    pub utilization_pct: Option<f64>,
    pub ops_per_sec: Option<f64>,
    pub ops_per_sec_min: Option<f64>,
    pub ops_per_sec_max: Option<f64>,
    pub alloc_p99_ns: Option<u64>,
    pub free_p99_ns: Option<u64>,
}

/// A row of `timeseries.csv`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct SeriesRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    pub op: u64,
    pub metric: String,
    pub value: f64,
}

/// A row of `latency.csv`, as `heaplab run` writes it and the report reads it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencyRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    pub kind: String,
    pub percentile: f64,
    pub latency_ns: u64,
    pub samples: u64,
}

/// A row of `details.csv`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DetailRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    pub op: Option<u64>,
    pub table: String,
    pub row: String,
    pub column: String,
    pub value: f64,
}

/// A row of `heapmap.csv`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct HeapMapRow {
    pub allocator: String,
    pub workload: String,
    pub seed: Option<u64>,
    pub frame: usize,
    pub op: u64,
    pub footprint_bytes: u64,
    pub span_bytes: u64,
    pub states: String,
}

/// Everything a results directory holds.
#[derive(Debug, Clone)]
pub struct Results {
    /// The directory.
    pub dir: PathBuf,
    /// `meta.json`, as JSON.
    pub meta: serde_json::Value,
    /// `summary.csv`.
    pub summary: Vec<SummaryRow>,
    /// `timeseries.csv`.
    pub series: Vec<SeriesRow>,
    /// `latency.csv`.
    pub latency: Vec<LatencyRow>,
    /// `details.csv` (may be absent).
    pub details: Vec<DetailRow>,
    /// `heapmap.csv` (may be absent).
    pub heapmap: Vec<HeapMapRow>,
}

fn read_csv<T: DeserializeOwned>(path: &Path, required: bool) -> Result<Vec<T>, ReportError> {
    if !path.is_file() {
        return if required {
            Err(ReportError::Input(format!("{}: missing; expected a heaplab results directory", path.display())))
        } else {
            Ok(Vec::new())
        };
    }
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| ReportError::Input(format!("{}: {e}", path.display())))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(index, row)| {
            row.map_err(|e| {
                let line = e.position().map_or(index as u64 + 2, |p| p.line());
                ReportError::Input(format!("{}:{line}: {e}", path.display()))
            })
        })
        .collect()
}

impl Results {
    /// Read `dir`.
    pub fn read(dir: &Path) -> Result<Results, ReportError> {
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| {
            ReportError::Input(format!("{}: {e}; expected a heaplab results directory", meta_path.display()))
        })?;
        let meta = serde_json::from_str(&text).map_err(|e| {
            ReportError::Input(format!(
                "{}:{}: expected meta.json as heaplab writes it: {e}",
                meta_path.display(),
                e.line()
            ))
        })?;
        Ok(Results {
            dir: dir.to_path_buf(),
            meta,
            summary: read_csv(&dir.join("summary.csv"), true)?,
            series: read_csv(&dir.join("timeseries.csv"), false)?,
            latency: read_csv(&dir.join("latency.csv"), false)?,
            details: read_csv(&dir.join("details.csv"), false)?,
            heapmap: read_csv(&dir.join("heapmap.csv"), false)?,
        })
    }

    /// The (workload, seed) groups, in the order they first appear.
    pub fn groups(&self) -> Vec<(String, Option<u64>)> {
        let mut groups: Vec<(String, Option<u64>)> = Vec::new();
        for row in &self.summary {
            let key = (row.workload.clone(), row.seed);
            if !groups.contains(&key) {
                groups.push(key);
            }
        }
        groups
    }

    /// The allocators, in the order they first appear.
    pub fn allocators(&self) -> Vec<String> {
        let mut allocators: Vec<String> = Vec::new();
        for row in &self.summary {
            if !allocators.contains(&row.allocator) {
                allocators.push(row.allocator.clone());
            }
        }
        allocators
    }

    /// Summary rows of one group.
    pub fn rows(&self, workload: &str, seed: Option<u64>) -> Vec<&SummaryRow> {
        self.summary.iter().filter(|r| r.workload == workload && r.seed == seed).collect()
    }
}
