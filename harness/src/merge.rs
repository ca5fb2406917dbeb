//! `heaplab merge`: the shards of one run (`heaplab run --shard K/N`)
//! joined into the results directory the unsharded run would have written.
//!
//! Everything is checked before anything is written: the shards must be
//! complete, of one build and one set of settings, of the same N, each
//! shard present once, and each must hold exactly the cells the shard
//! assignment gives it. The rows are then put in the unsharded run's
//! matrix order, so that the merged deterministic files are the unsharded
//! run's, byte for byte.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use heaplab_results::{CellRows, MergedShard, Meta, Results, RunSettings, RunStatus};

use crate::run::RunPlan;

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A directory cannot be read.
    #[error("{0}")]
    Read(String),
    /// A directory is not a shard.
    #[error("{dir}: not a shard (its run has no --shard); merge joins the results of `heaplab run --shard K/N`")]
    NotAShard {
        /// The directory.
        dir: String,
    },
    /// A shard did not finish.
    #[error(
        "{dir}: shard {shard} is {status}, not complete; complete it first: heaplab run --resume {name} --out {out}"
    )]
    Incomplete {
        /// The directory.
        dir: String,
        /// Its shard.
        shard: String,
        /// Its status.
        status: &'static str,
        /// Its run's name.
        name: String,
        /// Where it lives.
        out: String,
    },
    /// Shards of different runs or builds.
    #[error("{dir} and {first} are not shards of one run: {what}")]
    Mismatch {
        /// The directory.
        dir: String,
        /// The first directory.
        first: String,
        /// What differs.
        what: String,
    },
    /// The same shard twice.
    #[error("{a} and {b} are both shard {shard}")]
    Twice {
        /// One directory.
        a: String,
        /// The other.
        b: String,
        /// The shard.
        shard: String,
    },
    /// Shards not given.
    #[error("{} missing: give every shard's directory", missing_text(.missing, *.count))]
    Missing {
        /// The missing shards.
        missing: Vec<usize>,
        /// Of how many.
        count: usize,
    },
    /// A shard holds other cells than its own.
    #[error("{dir} (shard {shard}): {what}")]
    Cells {
        /// The directory.
        dir: String,
        /// Its shard.
        shard: String,
        /// What is wrong.
        what: String,
    },
}

/// The merged run: its meta.json (to be completed with the command line
/// and name) and its cells in matrix order.
#[derive(Debug)]
pub struct Merged {
    /// Settings of the whole run, status complete, the shards named.
    pub meta: Meta,
    /// Every cell, in the unsharded run's order.
    pub cells: Vec<CellRows>,
}

type Key = (String, String, Option<u64>, u32);

/// The settings as JSON without the shard, for comparing.
fn unsharded(settings: &RunSettings) -> serde_json::Value {
    let mut value = serde_json::to_value(RunSettings { shard: None, ..settings.clone() }).expect("settings serialise");
    if let Some(map) = value.as_object_mut() {
        map.remove("settings_version");
    }
    value
}

fn differing_keys(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return vec!["settings".into()];
    };
    let mut keys: Vec<String> = a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).cloned().collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Check and join the shards in `dirs`.
pub fn merge(dirs: &[PathBuf]) -> Result<Merged, MergeError> {
    let shown = |dir: &Path| dir.display().to_string();
    let mut shards: Vec<(PathBuf, Results, heaplab_results::Shard)> = Vec::new();
    for dir in dirs {
        let meta = Meta::read_settings(&dir.join("meta.json")).map_err(|e| MergeError::Read(e.to_string()))?;
        let shard = meta.settings.shard.ok_or_else(|| MergeError::NotAShard { dir: shown(dir) })?;
        if meta.status != RunStatus::Complete {
            let out = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            return Err(MergeError::Incomplete {
                dir: shown(dir),
                shard: shard.to_string(),
                status: meta.status.name(),
                name: dir.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
                out: shown(out),
            });
        }
        let results = Results::read(dir).map_err(|e| MergeError::Read(e.to_string()))?;
        shards.push((dir.clone(), results, shard));
    }
    let Some((first_dir, first, first_shard)) = shards.first() else {
        return Err(MergeError::Read("give the directories of the shards to merge".into()));
    };
    let count = first_shard.count;
    let settings = unsharded(&first.meta.settings);
    let mut by_index: HashMap<usize, &PathBuf> = HashMap::new();
    for (dir, results, shard) in &shards {
        let mismatch = |what: String| MergeError::Mismatch { dir: shown(dir), first: shown(first_dir), what };
        let (meta, base) = (&results.meta, &first.meta);
        if (&meta.heaplab_version, &meta.git_revision) != (&base.heaplab_version, &base.git_revision) {
            return Err(mismatch(format!(
                "made by heaplab {} ({}), and {} by {} ({})",
                meta.heaplab_version,
                meta.git_revision,
                shown(first_dir),
                base.heaplab_version,
                base.git_revision
            )));
        }
        if shard.count != count {
            return Err(mismatch(format!(
                "shard {shard} of {} shards, and shard {first_shard} of {count}",
                shard.count
            )));
        }
        let theirs = unsharded(&meta.settings);
        if theirs != settings {
            return Err(mismatch(format!(
                "their settings differ in {}",
                differing_keys(&theirs, &settings).join(", ")
            )));
        }
        if let Some(other) = by_index.insert(shard.index, dir) {
            return Err(MergeError::Twice { a: shown(other), b: shown(dir), shard: shard.to_string() });
        }
    }
    let missing: Vec<usize> = (1..=count).filter(|k| !by_index.contains_key(k)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }

    let meta = merged_meta(&shards);
    // The cells each shard must hold, in the whole run's order.
    let whole = meta.settings.clone();
    let plan = RunPlan::new(whole.clone()).map_err(|e| MergeError::Read(format!("{}: {e}", shown(first_dir))))?;
    let allocators = &whole.allocators;
    let groups = plan.groups(count);
    let thread_counts = plan.thread_counts();
    let keys_of = |workload: &String, seed: Option<u64>| -> Vec<Key> {
        thread_counts
            .iter()
            .flat_map(|&threads| allocators.iter().map(move |a| (a.clone(), workload.clone(), seed, threads)))
            .collect()
    };
    let mut rows: HashMap<Key, CellRows> = HashMap::new();
    for (dir, results, shard) in shards {
        let cells_error = |what: String| MergeError::Cells { dir: shown(&dir), shard: shard.to_string(), what };
        let mut expected: Vec<Key> = Vec::new();
        for ((workload, seed), _) in groups.iter().filter(|(_, k)| *k == shard.index) {
            expected.extend(keys_of(workload, *seed));
        }
        let host = results.meta.hostname.clone();
        let mut held = cell_rows(results);
        // Each row names the machine that measured it.
        for cell in held.values_mut() {
            cell.summary.host = Some(host.clone());
            for row in &mut cell.throughput {
                row.host = Some(host.clone());
            }
        }
        for key in &expected {
            let cell = held.remove(key).ok_or_else(|| {
                cells_error(format!("lacks the cell {} on {} (seed {})", key.0, key.1, seed_text(key.2)))
            })?;
            rows.insert(key.clone(), cell);
        }
        if let Some((key, _)) = held.into_iter().next() {
            return Err(cells_error(format!(
                "holds the cell {} on {} (seed {}), which is not this shard's",
                key.0,
                key.1,
                seed_text(key.2)
            )));
        }
    }
    let cells: Vec<CellRows> = groups
        .iter()
        .flat_map(|((workload, seed), _)| keys_of(workload, *seed))
        .map(|key| rows.remove(&key).expect("every cell was checked to be in one shard"))
        .collect();

    Ok(Merged { meta, cells })
}

fn missing_text(missing: &[usize], count: usize) -> String {
    let names: Vec<String> = missing.iter().map(|k| format!("{k}/{count}")).collect();
    match names.len() {
        1 => format!("shard {} is", names[0]),
        _ => format!("shards {} are", names.join(", ")),
    }
}

fn seed_text(seed: Option<u64>) -> String {
    seed.map_or("-".into(), |s| s.to_string())
}

/// The rows of `results`, cell by cell.
fn cell_rows(results: Results) -> HashMap<Key, CellRows> {
    let mut cells: HashMap<Key, CellRows> = HashMap::new();
    for summary in results.summary {
        let key = (summary.allocator.clone(), summary.workload.clone(), summary.seed, summary.threads);
        cells.insert(
            key,
            CellRows {
                summary,
                series: Vec::new(),
                details: Vec::new(),
                heapmap: Vec::new(),
                latency: Vec::new(),
                throughput: Vec::new(),
            },
        );
    }
    macro_rules! distribute {
        ($rows:expr, $field:ident) => {
            for row in $rows {
                if let Some(cell) = cells.get_mut(&(row.allocator.clone(), row.workload.clone(), row.seed, row.threads))
                {
                    cell.$field.push(row);
                }
            }
        };
    }
    distribute!(results.series, series);
    distribute!(results.details, details);
    distribute!(results.heapmap, heapmap);
    distribute!(results.latency, latency);
    distribute!(results.throughput, throughput);
    cells
}

/// The merged run's meta.json: the whole run's settings and counts, the
/// shards' machines; the caller sets the name, the date and the command.
fn merged_meta(shards: &[(PathBuf, Results, heaplab_results::Shard)]) -> Meta {
    let first = &shards[0].1.meta;
    let metas: Vec<&Meta> = shards.iter().map(|(_, results, _)| &results.meta).collect();
    let one_or_mixed = |value: &dyn Fn(&Meta) -> String| {
        let mut values: Vec<String> = metas.iter().map(|m| value(m)).collect();
        values.sort();
        values.dedup();
        values.join("; ")
    };
    let sum = |value: &dyn Fn(&Meta) -> usize| metas.iter().map(|m| value(m)).sum::<usize>();
    let mut merged: Vec<MergedShard> =
        shards.iter().filter_map(|(dir, results, _)| shard_facts(dir, &results.meta)).collect();
    merged.sort_by_key(|m| m.shard.index);
    Meta {
        settings: RunSettings { shard: None, ..first.settings.clone() },
        cpu_model: one_or_mixed(&|m| m.cpu_model.clone()),
        hostname: one_or_mixed(&|m| m.hostname.clone()),
        cores: metas.iter().map(|m| m.cores).min().unwrap_or(1),
        status: RunStatus::Complete,
        cells_total: sum(&|m| m.cells_total),
        cells_finished: sum(&|m| m.cells_finished),
        reps_total: sum(&|m| m.reps_total),
        reps_finished: sum(&|m| m.reps_finished),
        latency_total: sum(&|m| m.latency_total),
        latency_finished: sum(&|m| m.latency_finished),
        elapsed_seconds: metas.iter().map(|m| m.elapsed_seconds).sum(),
        resumed: Vec::new(),
        merged,
        ..first.clone()
    }
}

/// Facts of one shard for the merged meta.json.
pub fn shard_facts(dir: &Path, meta: &Meta) -> Option<MergedShard> {
    Some(MergedShard {
        shard: meta.settings.shard?,
        dir: dir.display().to_string(),
        hostname: meta.hostname.clone(),
        cpu_model: meta.cpu_model.clone(),
        cores: meta.cores,
        date_utc: meta.date_utc.clone(),
        elapsed_seconds: meta.elapsed_seconds,
    })
}
