//! Reading a results directory: only what `heaplab run` wrote, each file
//! with its own row type, every error naming the file and the line.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::{DetailRow, HeapMapRow, LatencyRow, Meta, ReplayRow, SeriesRow, SummaryRow, ThroughputRow};

/// A results file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A file the directory must hold is not there.
    #[error("{path}: missing; expected a heaplab results directory")]
    Missing {
        /// The file.
        path: String,
    },
    /// The file could not be opened or read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A line is not a row of the file's type.
    #[error("{path}:{line}: {message}")]
    Row {
        /// The file.
        path: String,
        /// The line (1 is the header).
        line: u64,
        /// What was expected and found.
        message: String,
    },
}

/// Every row of the CSV file `path`, as `T`; a missing file is an error when
/// `required`, no rows otherwise.
pub fn read_rows<T: DeserializeOwned>(path: &Path, required: bool) -> Result<Vec<T>, ReadError> {
    let shown = || path.display().to_string();
    if !path.is_file() {
        return if required { Err(ReadError::Missing { path: shown() }) } else { Ok(Vec::new()) };
    }
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| ReadError::Io { path: shown(), message: e.to_string() })?;
    reader
        .deserialize()
        .enumerate()
        .map(|(index, row)| {
            row.map_err(|e| {
                let line = e.position().map_or(index as u64 + 2, |p| p.line());
                ReadError::Row { path: shown(), line, message: e.to_string() }
            })
        })
        .collect()
}

/// Everything a results directory holds.
#[derive(Debug, Clone)]
pub struct Results {
    /// The directory.
    pub dir: PathBuf,
    /// `meta.json`.
    pub meta: Meta,
    /// `summary.csv`.
    pub summary: Vec<SummaryRow>,
    /// `timeseries.csv` (may be absent).
    pub series: Vec<SeriesRow>,
    /// `latency.csv` (may be absent).
    pub latency: Vec<LatencyRow>,
    /// `throughput.csv` (may be absent).
    pub throughput: Vec<ThroughputRow>,
    /// `details.csv` (may be absent).
    pub details: Vec<DetailRow>,
    /// `heapmap.csv` (may be absent).
    pub heapmap: Vec<HeapMapRow>,
    /// `replay.csv` (`heaplab exec --replay` only).
    pub replay: Vec<ReplayRow>,
}

impl Results {
    /// Read `meta.json` of `dir`.
    pub fn read_meta(dir: &Path) -> Result<Meta, ReadError> {
        let path = dir.join("meta.json");
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| ReadError::Io {
            path: shown.clone(),
            message: format!("{e}; expected a heaplab results directory"),
        })?;
        serde_json::from_str(&text).map_err(|e| ReadError::Row {
            path: shown,
            line: e.line() as u64,
            message: format!("expected meta.json as heaplab writes it: {e}"),
        })
    }

    /// Read `dir`.
    pub fn read(dir: &Path) -> Result<Results, ReadError> {
        Ok(Results {
            dir: dir.to_path_buf(),
            meta: Results::read_meta(dir)?,
            summary: read_rows(&dir.join("summary.csv"), true)?,
            series: read_rows(&dir.join("timeseries.csv"), false)?,
            latency: read_rows(&dir.join("latency.csv"), false)?,
            throughput: read_rows(&dir.join("throughput.csv"), false)?,
            details: read_rows(&dir.join("details.csv"), false)?,
            heapmap: read_rows(&dir.join("heapmap.csv"), false)?,
            replay: read_rows(&dir.join("replay.csv"), false)?,
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

    /// The thread counts of the rows, ascending.
    pub fn thread_counts(&self) -> Vec<u32> {
        let mut counts: Vec<u32> = self.summary.iter().map(|r| r.threads).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// The same results with only the rows of `threads` threads.
    pub fn at_threads(&self, threads: u32) -> Results {
        Results {
            dir: self.dir.clone(),
            meta: self.meta.clone(),
            summary: self.summary.iter().filter(|r| r.threads == threads).cloned().collect(),
            series: self.series.iter().filter(|r| r.threads == threads).cloned().collect(),
            latency: self.latency.iter().filter(|r| r.threads == threads).cloned().collect(),
            throughput: self.throughput.iter().filter(|r| r.threads == threads).cloned().collect(),
            details: self.details.iter().filter(|r| r.threads == threads).cloned().collect(),
            heapmap: self.heapmap.iter().filter(|r| r.threads == threads).cloned().collect(),
            replay: self.replay.clone(),
        }
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

    /// The workloads, in the order they first appear.
    pub fn workloads(&self) -> Vec<String> {
        let mut workloads: Vec<String> = Vec::new();
        for row in &self.summary {
            if !workloads.contains(&row.workload) {
                workloads.push(row.workload.clone());
            }
        }
        workloads
    }

    /// Summary rows of one group.
    pub fn rows(&self, workload: &str, seed: Option<u64>) -> Vec<&SummaryRow> {
        self.summary.iter().filter(|r| r.workload == workload && r.seed == seed).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CellRows, ResultsDir, RunSettings, RunStatus, Touch};
    use heaplab_core::OpKind;
    use proptest::prelude::*;

    fn meta() -> Meta {
        Meta {
            schema_version: crate::SCHEMA_VERSION,
            heaplab_version: "0".into(),
            git_revision: "x".into(),
            rustc: "r".into(),
            cpu_model: "c".into(),
            cores: 1,
            hostname: "h".into(),
            date_utc: "d".into(),
            command_line: vec!["heaplab".into()],
            run_name: "r".into(),
            settings: RunSettings {
                settings_version: crate::SETTINGS_VERSION,
                allocators: vec!["bump".into()],
                workloads: vec!["ramp".into()],
                seeds: vec![1],
                reps: 1,
                warmup: 1,
                arena_bytes: None,
                align: 16,
                touch: Touch::None,
                latency: true,
                metrics_only: false,
                verify: false,
                points: 2,
                frames: 0,
                jobs: 1,
                processes: 1,
                shard: None,
                threads: Vec::new(),
                lenient: false,
                exec: None,
            },
            timer: None,
            status: RunStatus::Running,
            cells_total: 1,
            cells_finished: 0,
            reps_total: 1,
            reps_finished: 0,
            latency_total: 1,
            latency_finished: 0,
            elapsed_seconds: 0.0,
            resumed: Vec::new(),
            merged: Vec::new(),
            inputs: Vec::new(),
            system: Default::default(),
            build: Default::default(),
        }
    }

    /// One cell with a row in each file.
    fn one_cell() -> CellRows {
        let summary = SummaryRow {
            allocator: "bump".into(),
            workload: "ramp".into(),
            seed: Some(1),
            utilization_pct: Some(50.0),
            ..Default::default()
        };
        CellRows {
            summary,
            series: vec![SeriesRow {
                allocator: "bump".into(),
                metric: "requested_bytes".into(),
                value: 3.0,
                ..Default::default()
            }],
            details: Vec::new(),
            heapmap: Vec::new(),
            latency: vec![LatencyRow { kind: OpKind::Realloc, percentile: 99.0, latency_ns: 7, ..Default::default() }],
            throughput: vec![ThroughputRow {
                rep: 0,
                process: 0,
                seconds: 0.5,
                ops_per_sec: 2.0,
                ..Default::default()
            }],
        }
    }

    #[test]
    fn what_the_writer_writes_the_reader_reads() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let results = ResultsDir::create(&run, &meta()).unwrap();
        results.write(&[]).unwrap();
        let empty = Results::read(&run).unwrap();
        assert!(empty.summary.is_empty() && empty.series.is_empty() && empty.latency.is_empty());
        let cell = one_cell();
        results.write(std::slice::from_ref(&cell)).unwrap();
        let read = Results::read(&run).unwrap();
        assert_eq!(read.summary, vec![cell.summary]);
        assert_eq!(read.series, cell.series);
        assert_eq!(read.latency, cell.latency);
        assert_eq!(read.throughput, cell.throughput);
        assert_eq!(read.meta, meta());
        assert!(ResultsDir::create(&run, &meta()).is_err(), "a directory with results is never reused");
    }

    #[test]
    fn a_bad_row_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.csv");
        std::fs::write(&path, "allocator,workload,seed,kind,percentile,latency_ns,samples\nbump,ramp,,alloc,50,3,1\nbump,ramp,,malloc,50,3,1\n").unwrap();
        let error = read_rows::<LatencyRow>(&path, true).unwrap_err().to_string();
        assert!(
            error.contains("latency.csv:3:") && error.contains("expected alloc, free or realloc, found `malloc`"),
            "{error}"
        );
        let missing = read_rows::<LatencyRow>(&dir.path().join("nothing.csv"), true).unwrap_err();
        assert!(matches!(missing, ReadError::Missing { .. }));
    }

    /// One edit of a results file, as damage or a hand edit makes it.
    #[derive(Debug, Clone)]
    enum Edit {
        Flip(prop::sample::Index, u8),
        Delete(prop::sample::Index, usize),
        Insert(prop::sample::Index, Vec<u8>),
        DuplicateLine(prop::sample::Index),
        Truncate(prop::sample::Index),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let special = prop::sample::select(vec![
            b",".to_vec(),
            b"\"".to_vec(),
            b"\n".to_vec(),
            b"inf".to_vec(),
            b"-1".to_vec(),
            b"{".to_vec(),
            b"\xff".to_vec(),
        ]);
        prop_oneof![
            (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(at, bits)| Edit::Flip(at, bits)),
            (any::<prop::sample::Index>(), 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
            (any::<prop::sample::Index>(), special).prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
            any::<prop::sample::Index>().prop_map(Edit::DuplicateLine),
            any::<prop::sample::Index>().prop_map(Edit::Truncate),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
        if bytes.is_empty() {
            return;
        }
        match edit {
            Edit::Flip(at, bits) => {
                let at = at.index(bytes.len());
                bytes[at] ^= bits;
            }
            Edit::Delete(at, n) => {
                let at = at.index(bytes.len());
                bytes.drain(at..(at + n).min(bytes.len()));
            }
            Edit::Insert(at, inserted) => {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Edit::DuplicateLine(at) => {
                let lines: Vec<Vec<u8>> = bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                let at = at.index(lines.len());
                let mut out = Vec::new();
                for (index, line) in lines.iter().enumerate() {
                    out.extend_from_slice(line);
                    if index == at {
                        out.extend_from_slice(line);
                    }
                }
                *bytes = out;
            }
            Edit::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        }
    }

    /// A results directory with one cell, its files as the writer wrote them.
    fn valid_run(dir: &Path) -> PathBuf {
        let run = dir.join("run");
        ResultsDir::create(&run, &meta()).unwrap().write(&[one_cell()]).unwrap();
        run
    }

    const FILES: [&str; 5] = ["summary.csv", "meta.json", "throughput.csv", "latency.csv", "timeseries.csv"];

    /// Damage one file of a valid run: reading never panics, and an error
    /// names the damaged file (with its line for the CSV files and meta.json).
    fn read_damaged(file: usize, edits: &[Edit]) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let run = valid_run(dir.path());
        let path = run.join(FILES[file]);
        let mut bytes = std::fs::read(&path).unwrap();
        for edit in edits {
            apply(&mut bytes, edit);
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Err(error) = Results::read(&run) {
            let message = error.to_string();
            prop_assert!(message.contains(FILES[file]), "the error does not name {}: {message}", FILES[file]);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// A few hundred damaged results directories in every test run.
        #[test]
        fn damaged_results_files_never_panic_and_their_errors_name_the_file(
            file in 0..FILES.len(),
            edits in prop::collection::vec(edit(), 1..5),
        ) {
            read_damaged(file, &edits)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        /// The long run: `cargo test -p heaplab-results -- --ignored`.
        #[test]
        #[ignore = "20,000 damaged results directories; run with --ignored"]
        fn many_damaged_results_files_never_panic(
            file in 0..FILES.len(),
            edits in prop::collection::vec(edit(), 1..10),
        ) {
            read_damaged(file, &edits)?;
        }
    }
}
