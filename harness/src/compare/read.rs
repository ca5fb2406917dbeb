//! Reading a result set for a comparison: its summary rows and its timed
//! repetitions, keyed by row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heaplab_results::{ReadError, SummaryRow, ThroughputRow, read_rows};

/// A row's identity.
/// (allocator, workload, seed, threads).
pub type Key = (String, String, Option<u64>, u32);

/// The repetitions of one row by repetition number (the round it ran in):
/// the timing process that ran it, and its ops/s.
pub type Repetitions = BTreeMap<u64, (u64, f64)>;

/// One result set: its summary rows and its timed repetitions.
#[derive(Debug, Clone)]
pub struct ResultSet {
    /// Where it came from.
    pub path: PathBuf,
    /// Summary rows by key.
    pub rows: BTreeMap<Key, SummaryRow>,
    /// Ops/s of every repetition, by key, grouped by timing process.
    pub samples: BTreeMap<Key, Vec<Vec<f64>>>,
    /// Every repetition by key and repetition number (the round it ran
    /// in): its timing process and ops/s.
    pub repetitions: BTreeMap<Key, Repetitions>,
    /// The machine that measured each row, where known: the row's own
    /// `host` (a merged run), else the one of meta.json.
    pub hosts: BTreeMap<Key, String>,
    /// Its meta.json, when it has a readable one.
    pub meta: Option<heaplab_results::Meta>,
}

/// Something wrong with an input.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Not a results directory.
    #[error("{path}: no summary.csv here; expected a heaplab results directory")]
    NotResults {
        /// What was given.
        path: String,
    },
    /// A summary.csv without rows: nothing to compare, which must not pass.
    #[error("{path}: no rows (an empty or header-only summary.csv); there is nothing to compare")]
    Empty {
        /// The file.
        path: String,
    },
    /// A results file that cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Two summary rows for one cell.
    #[error("{path}: the row for {allocator} on {workload} appears twice")]
    Duplicate {
        /// The file.
        path: String,
        /// The row's allocator.
        allocator: String,
        /// The row's workload.
        workload: String,
    },
    /// A repetition with a rate that is not one.
    #[error("{path}: a repetition of {allocator} has ops_per_sec {ops_per_sec}")]
    BadRepetition {
        /// The file.
        path: String,
        /// The row's allocator.
        allocator: String,
        /// The rate.
        ops_per_sec: f64,
    },
    /// `--ours`/`--peer` name an allocator the run does not have.
    #[error("{path}: no allocator `{allocator}` in this run; it has {known}")]
    NoSuchAllocator {
        /// The run.
        path: String,
        /// The allocator asked for.
        allocator: String,
        /// Those it has, comma-separated.
        known: String,
    },
}

fn key(allocator: &str, workload: &str, seed: Option<u64>, threads: u32) -> Key {
    (allocator.to_string(), workload.to_string(), seed, threads)
}

impl ResultSet {
    /// The set in a few words: its run's name, revision and date, from
    /// meta.json (or that it has none).
    pub fn describe(&self) -> String {
        let name = self.path.display();
        match &self.meta {
            Some(meta) => {
                let revision: String = meta.git_revision.chars().take(12).collect();
                let revision = if revision.is_empty() { "revision unknown".to_string() } else { revision };
                let date = meta.date_utc.split('T').next().unwrap_or(&meta.date_utc);
                format!("{name} (run {}, {revision}, {date})", meta.run_name)
            }
            None => format!("{name} (no meta.json: run, revision and date unknown)"),
        }
    }

    /// The settings that move per-row figures and differ between `self`
    /// and `other`, as `name: ours → theirs`.
    pub fn settings_differing(&self, other: &ResultSet) -> Vec<String> {
        let (Some(a), Some(b)) = (&self.meta, &other.meta) else { return Vec::new() };
        let (a, b) = (
            serde_json::to_value(&a.settings).expect("settings serialise"),
            serde_json::to_value(&b.settings).expect("settings serialise"),
        );
        ["arena_bytes", "align", "touch", "warmup", "reps", "processes", "jobs", "verify"]
            .iter()
            .filter_map(|&name| {
                let (x, y) = (&a[name], &b[name]);
                (x != y).then(|| format!("{name}: {x} → {y}"))
            })
            .collect()
    }

    /// Read a results directory (or its `summary.csv`).
    pub fn read(path: &Path) -> Result<ResultSet, CompareError> {
        let dir =
            if path.is_dir() { path.to_path_buf() } else { path.parent().unwrap_or(Path::new(".")).to_path_buf() };
        let summary = if path.is_dir() { path.join("summary.csv") } else { path.to_path_buf() };
        if !summary.is_file() {
            return Err(CompareError::NotResults { path: path.display().to_string() });
        }
        let mut rows = BTreeMap::new();
        for row in read_rows::<SummaryRow>(&summary, true)? {
            let k = key(&row.allocator, &row.workload, row.seed, row.threads);
            if rows.insert(k.clone(), row).is_some() {
                let (allocator, workload, ..) = k;
                return Err(CompareError::Duplicate { path: summary.display().to_string(), allocator, workload });
            }
        }
        if rows.is_empty() {
            return Err(CompareError::Empty { path: summary.display().to_string() });
        }
        let mut grouped: BTreeMap<Key, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
        let mut repetitions: BTreeMap<Key, Repetitions> = BTreeMap::new();
        let throughput = dir.join("throughput.csv");
        for row in read_rows::<ThroughputRow>(&throughput, false)? {
            if !row.ops_per_sec.is_finite() || row.ops_per_sec <= 0.0 {
                return Err(CompareError::BadRepetition {
                    path: throughput.display().to_string(),
                    allocator: row.allocator,
                    ops_per_sec: row.ops_per_sec,
                });
            }
            let k = key(&row.allocator, &row.workload, row.seed, row.threads);
            repetitions.entry(k.clone()).or_default().insert(row.rep, (row.process, row.ops_per_sec));
            grouped.entry(k).or_default().entry(row.process).or_default().push(row.ops_per_sec);
        }
        let samples = grouped.into_iter().map(|(k, by_process)| (k, by_process.into_values().collect())).collect();
        let meta = heaplab_results::Results::read_meta(&dir).ok();
        let machine = meta.as_ref().map(|meta| meta.hostname.clone()).unwrap_or_default();
        let hosts = rows
            .iter()
            .filter_map(|(k, row)| {
                let host = row.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| machine.clone());
                (!host.is_empty()).then(|| (k.clone(), host))
            })
            .collect();
        Ok(ResultSet { path: dir, rows, samples, repetitions, hosts, meta })
    }
}
