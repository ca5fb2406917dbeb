//! `meta.json`: what produced a run and how to repeat it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SCHEMA_VERSION;

/// The version of the settings a run can be repeated from (`heaplab run
/// --from`), bumped when a setting changes meaning, so that an older build
/// refuses the settings of a newer one instead of quietly measuring
/// something else. A setting added is written only when it is not its
/// default (as `shard`): a build that does not know it then refuses it by
/// name where it is used, and still repeats every run that does not use it
/// (so `run --against` an older build keeps working).
pub const SETTINGS_VERSION: u32 = 1;

/// What to write into each block the allocator returns, so that memory
/// traffic is realistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Touch {
    /// Nothing.
    #[default]
    None,
    /// The first byte.
    First,
    /// One byte in every 64-byte cache line.
    Lines,
}

impl Touch {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Touch::None => "none",
            Touch::First => "first",
            Touch::Lines => "lines",
        }
    }
}

/// How a run was configured: everything needed to repeat it.
///
/// Reading results ignores settings it does not know; repeating them
/// ([`Meta::read_settings`]) refuses them, since they are settings of a
/// newer heaplab, which this build would otherwise ignore and so measure
/// something else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// [`SETTINGS_VERSION`] of the build that wrote them (1 before it was written).
    #[serde(default = "one_u32")]
    pub settings_version: u32,
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
    #[serde(default = "one_usize")]
    pub processes: usize,
    /// The one shard of the run these settings measure (`None`: all of it).
    /// Written only when set, so that a build that does not know shards
    /// still repeats every unsharded run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Thread counts each cell runs on (`run --threads`); empty: the
    /// single-threaded pipeline. Written only when set, so that a build
    /// that does not know threads refuses to repeat such a run instead of
    /// measuring it on one thread.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<u32>,
    /// `.rep` allocs and reallocs without a size were read with the
    /// previous op's size, as mdriver reads them (`--lenient`). Written
    /// only when set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lenient: bool,
    /// Set by `heaplab exec`, whose results these are: the command. `run
    /// --from` refuses them. Written only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecSettings>,
}

impl RunSettings {
    /// A setting in `written` (the settings as some heaplab wrote them)
    /// that these settings, read from it, do not have: a setting of a
    /// newer build, which this one would ignore and so measure something
    /// else.
    pub fn unknown_in(&self, written: &serde_json::Value) -> Option<String> {
        let known = serde_json::to_value(self).expect("settings serialise");
        let (written, known) = (written.as_object()?, known.as_object()?);
        written.keys().find(|key| !known.contains_key(*key)).cloned()
    }
}

/// What `heaplab exec` ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSettings {
    /// Each workload's command line, in workload order.
    pub commands: Vec<Vec<String>>,
    /// The file each run read as its standard input, if any.
    pub input: Option<String>,
    /// The versions of the programs and preloaded libraries, as they
    /// reported them.
    pub versions: Vec<ProgramVersion>,
    /// With `--replay`: the name of the `heaplab run` beside these results
    /// that replayed the programs' traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_run: Option<String>,
}

/// A program or library and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramVersion {
    /// What: `python3`, `peer:mimalloc`, …
    pub name: String,
    /// Its version, as it says it.
    pub version: String,
    /// The version the bundled trace of the same program was recorded
    /// with, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
}

/// Shard `index` of `count` (from 1, as `heaplab run --shard K/N` counts):
/// the (workload, seed) groups whose rank in name order is `index − 1`
/// modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which, from 1.
    pub index: usize,
    /// Of how many.
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where a merged run's shards came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedShard {
    /// The shard.
    pub shard: Shard,
    /// Its results directory, as `heaplab merge` was given it.
    pub dir: String,
    /// The machine that ran it.
    pub hostname: String,
    /// Its CPU.
    pub cpu_model: String,
    /// Its cores.
    pub cores: usize,
    /// When it started.
    pub date_utc: String,
    /// Its wall time, seconds.
    pub elapsed_seconds: f64,
}

fn one_u32() -> u32 {
    1
}

fn one_usize() -> usize {
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
    /// The smallest step the clock shows, in ticks and in nanoseconds (0
    /// in results from before it was measured): no latency is resolved
    /// more finely.
    #[serde(default)]
    pub granularity_ticks: u64,
    #[serde(default)]
    pub granularity_ns: f64,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Cells are still being measured (or the run was killed).
    Running,
    /// Every cell finished.
    Complete,
    /// Stopped by Ctrl-C, or killed (and repaired): what finished stands.
    Interrupted,
    /// Stopped by an error: what finished stands.
    Failed,
}

impl RunStatus {
    /// `running`, `complete` or `interrupted`.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }
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
    /// The machine's name (empty in results from before it was written).
    #[serde(default)]
    pub hostname: String,
    pub date_utc: String,
    pub command_line: Vec<String>,
    pub run_name: String,
    pub settings: RunSettings,
    pub timer: Option<TimerInfo>,
    pub status: RunStatus,
    pub cells_total: usize,
    /// Cells whose metrics pass finished.
    pub cells_finished: usize,
    /// Timed repetitions asked (cells × reps), and done.
    #[serde(default)]
    pub reps_total: usize,
    #[serde(default)]
    pub reps_finished: usize,
    /// Latency passes asked, and done.
    #[serde(default)]
    pub latency_total: usize,
    #[serde(default)]
    pub latency_finished: usize,
    pub elapsed_seconds: f64,
    /// Each `heaplab run --resume` that went on with the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<Resumed>,
    /// The shards `heaplab merge` joined into this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<MergedShard>,
    /// The content of every input read from a file (traces, bundled
    /// traces), so that `--from` repeats the run on the same bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputDigest>,
    /// The machine's settings that move figures (empty in older results).
    #[serde(default)]
    pub system: SystemFacts,
    /// What the binary was built from (empty in older results).
    #[serde(default)]
    pub build: BuildFacts,
}

/// One input of a run and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDigest {
    /// The workload as the settings name it.
    pub workload: String,
    /// Hex SHA-256 of the file's bytes (of the bundled bytes for `trace:NAME`).
    pub sha256: String,
    /// Ops a lenient read gave the previous op's size (`--lenient`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sizes_reused: u64,
    /// `.rep` op lines after the header's count, not read (as mdriver).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lines_past_count: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Settings of the machine a run ran on that move its figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemFacts {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Transparent huge pages (`/sys/kernel/mm/transparent_hugepage/enabled`).
    pub transparent_hugepages: String,
    /// CPU frequency governor of CPU 0, where the machine exposes one.
    pub cpu_governor: String,
    /// The CPU's feature flags (`/proc/cpuinfo`).
    pub cpu_flags: String,
}

/// What built the binary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildFacts {
    /// Hex SHA-256 of the Cargo.lock it was built with.
    pub cargo_lock_sha256: String,
    /// Built from a working tree with uncommitted changes.
    pub dirty: bool,
}

/// One `heaplab run --resume` of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumed {
    /// When it started.
    pub date_utc: String,
    /// Its command line.
    pub command_line: Vec<String>,
}

/// Why the settings of a `meta.json` cannot be repeated.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a meta.json this build knows, or settings it does not know.
    #[error("{path}:{line}: expected a heaplab meta.json: {message}")]
    Format {
        /// The file.
        path: String,
        /// The line.
        line: usize,
        /// What serde said.
        message: String,
    },
    /// Written by a heaplab with another results schema.
    #[error("{path}: results schema {found} cannot be repeated by this heaplab (schema {SCHEMA_VERSION})")]
    Schema {
        /// The file.
        path: String,
        /// Its schema.
        found: u32,
    },
    /// A setting this build does not know.
    #[error(
        "{path}: setting `{setting}` is not one this heaplab knows: it would measure something else; use the heaplab that wrote it"
    )]
    Unknown {
        /// The file.
        path: String,
        /// The setting.
        setting: String,
    },
    /// Written by a newer heaplab, with settings this build does not know.
    #[error(
        "{path}: settings version {found} is newer than this heaplab's ({SETTINGS_VERSION}): it would measure something else; use the heaplab that wrote it"
    )]
    Newer {
        /// The file.
        path: String,
        /// Its settings version.
        found: u32,
    },
}

impl Meta {
    /// Read a `meta.json` whose settings this build can repeat.
    pub fn read_settings(path: &Path) -> Result<Meta, SettingsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Io { path: shown.clone(), source })?;
        let meta: Meta = serde_json::from_str(&text).map_err(|e| SettingsError::Format {
            path: shown.clone(),
            line: e.line(),
            message: e.to_string(),
        })?;
        if meta.schema_version != SCHEMA_VERSION {
            return Err(SettingsError::Schema { path: shown, found: meta.schema_version });
        }
        if meta.settings.settings_version > SETTINGS_VERSION {
            return Err(SettingsError::Newer { path: shown, found: meta.settings.settings_version });
        }
        let written: serde_json::Value = serde_json::from_str(&text).expect("parsed once already");
        if let Some(setting) = meta.settings.unknown_in(&written["settings"]) {
            return Err(SettingsError::Unknown { path: shown, setting });
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_json(extra_setting: &str, settings_version: u32) -> String {
        format!(
            r#"{{"schema_version":1,"heaplab_version":"0.1.0","git_revision":"x","rustc":"r","cpu_model":"c","cores":2,
            "date_utc":"d","command_line":["heaplab"],"run_name":"r",
            "settings":{{"settings_version":{settings_version},"allocators":["bump"],"workloads":["ramp"],"seeds":[1],"reps":1,"warmup":1,
            "arena_bytes":null,"align":16,"touch":"none","latency":false,"metrics_only":true,"verify":false,
            "points":10,"frames":0,"jobs":1,"processes":1{extra_setting}}},
            "timer":null,"status":"complete","cells_total":1,"cells_finished":1,"elapsed_seconds":0.5}}"#
        )
    }

    #[test]
    fn settings_round_trip_and_refuse_what_they_do_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        std::fs::write(&path, meta_json("", 1)).unwrap();
        let meta = Meta::read_settings(&path).unwrap();
        assert_eq!((meta.status, meta.settings.settings_version), (RunStatus::Complete, 1));
        std::fs::write(&path, meta_json(r#","numa_nodes":4"#, 1)).unwrap();
        let error = Meta::read_settings(&path).unwrap_err().to_string();
        assert!(error.contains("setting `numa_nodes` is not one this heaplab knows"), "{error}");
        // Reading results is not repeating them: an unknown setting is ignored.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(serde_json::from_str::<Meta>(&text).unwrap().settings.allocators, ["bump"]);
        std::fs::write(&path, meta_json("", SETTINGS_VERSION + 1)).unwrap();
        let error = Meta::read_settings(&path).unwrap_err().to_string();
        assert!(error.contains("is newer than this heaplab's"), "{error}");
    }

    #[test]
    fn settings_written_before_the_version_read_as_version_one() {
        let text = meta_json("", 1).replace(r#""settings_version":1,"#, "");
        let meta: Meta = serde_json::from_str(&text).unwrap();
        assert_eq!(meta.settings.settings_version, 1);
    }
}
