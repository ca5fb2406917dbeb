//! The files of a heaplab run, in one place: each file's row type is
//! defined once, here, and both sides use it — the harness writes the rows
//! ([`ResultsDir`]), the reports and `heaplab compare` read them
//! ([`Results`], [`read_rows`]). A column added to a row type is added to its
//! file, its reader and its header at once.
//!
//! `results/<run>/`:
//!
//! | file | row type | what |
//! |---|---|---|
//! | `summary.csv` | [`SummaryRow`] | one row per (allocator, workload, seed); column names carry their unit (`_bytes`, `_pct`, `_ns`, `ops_per_sec`) |
//! | `timeseries.csv` | [`SeriesRow`] | long format: one row per sample and metric |
//! | `latency.csv` | [`LatencyRow`] | the latency percentile spectrum per op kind |
//! | `throughput.csv` | [`ThroughputRow`] | every timed repetition, with its timing process |
//! | `exec.csv` | [`ExecRow`] | `heaplab exec` only: every run of the program, with its resource use |
//! | `replay.csv` | [`ReplayRow`] | `heaplab exec --replay` only: each allocator on each bundled program, for real and replayed |
//! | `details.csv` | [`DetailRow`] | allocator-specific tables (buddyinfo, slabinfo) and the free-block histogram |
//! | `heapmap.csv` | [`HeapMapRow`] | heap-map frames, one string of block states per frame |
//! | `meta.json` | [`Meta`] | what produced the results and how to repeat them ([`RunSettings`]) |
//!
//! [`SCHEMA_VERSION`] travels in `meta.json` and changes when a column
//! changes meaning or disappears; [`SETTINGS_VERSION`] when the settings a
//! run can be repeated from change, so that a build refuses settings it
//! does not know instead of quietly measuring something else.

mod meta;
mod read;
mod rows;
mod write;

pub use meta::{
    BuildFacts, ExecSettings, InputDigest, MergedShard, Meta, ProgramVersion, Resumed, RunSettings, RunStatus,
    SETTINGS_VERSION, SettingsError, Shard, SystemFacts, TimerInfo, Touch,
};
pub use read::{ReadError, Results, read_rows};
pub use rows::{
    DETERMINISTIC, DetailRow, ExecRow, HeapMapRow, KEY, LatencyRow, ReplayRow, SeriesRow, SummaryRow, ThroughputRow,
};
pub use write::{CellRows, CellText, ResultsDir, write_atomic};

/// The results schema; bumped when a column changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// Percentiles written to `latency.csv`.
pub const SPECTRUM: [f64; 12] = [0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0];
