//! The run matrix: every workload prepared for every seed it needs, and one
//! cell per (allocator, prepared workload); the default suite.

use heaplab_core::Arena;
use heaplab_results::RunSettings;
use heaplab_workloads::{TraceError, Workload};
use rayon::prelude::*;

use super::{RunError, shard};
use crate::prepare::{Prepared, prepare, prepare_threaded};
use crate::registry::AllocatorSpec;

/// A run's settings, validated: every allocator spec and workload parsed,
/// nothing generated or read yet.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The settings (what `meta.json` keeps).
    pub settings: RunSettings,
    /// The allocators, parsed.
    pub allocators: Vec<AllocatorSpec>,
    /// The workloads, parsed.
    pub workloads: Vec<Workload>,
}

impl RunPlan {
    /// Parse and check the settings.
    pub fn new(settings: RunSettings) -> Result<RunPlan, RunError> {
        let allocators = settings.allocators.iter().map(|s| AllocatorSpec::parse(s)).collect::<Result<_, _>>()?;
        let options = heaplab_workloads::formats::ReadOptions { lenient: settings.lenient };
        let workloads = settings
            .workloads
            .iter()
            .map(|w| Workload::parse(w).map(|w| w.with_options(options)))
            .collect::<Result<_, _>>()?;
        if settings.seeds.is_empty() {
            return Err(RunError::Plan("give at least one seed".to_string()));
        }
        let plan = RunPlan { settings, allocators, workloads };
        if plan.thread_counts().iter().any(|&t| t > 1) {
            let unsafe_ones: Vec<String> =
                plan.allocators.iter().filter(|a| !a.is_thread_safe()).map(|a| a.spec()).collect();
            if !unsafe_ones.is_empty() {
                return Err(RunError::Plan(format!(
                    "{} {} not thread-safe, and --threads asks for more than one thread; put a layer over {}: `locked/SPEC` (one lock) or `cached/SPEC` (thread caches), or use peer:glibc, peer:mimalloc, peer:jemalloc",
                    unsafe_ones.join(", "),
                    if unsafe_ones.len() == 1 { "is" } else { "are" },
                    if unsafe_ones.len() == 1 { "it" } else { "them" },
                )));
            }
        }
        Ok(plan)
    }

    /// The thread counts cells run on: `--threads`, or one.
    pub fn thread_counts(&self) -> Vec<u32> {
        if self.settings.threads.is_empty() { vec![1] } else { self.settings.threads.clone() }
    }

    /// The (workload, seed) groups of the whole run (every shard), in
    /// matrix order, with the shard of each when split into `count`.
    pub fn groups(&self, count: usize) -> Vec<((String, Option<u64>), usize)> {
        let groups = shard::groups(&self.workloads, &self.settings.seeds);
        let shards = shard::assign(&groups, count);
        groups.into_iter().zip(shards).collect()
    }

    /// Generate, read and validate every workload (of this shard), and lay
    /// out the cells.
    pub fn prepare(self) -> Result<Matrix, RunError> {
        let count = self.settings.shard.map_or(1, |s| s.count);
        let shards: Vec<usize> = self.groups(count).into_iter().map(|(_, shard)| shard).collect();
        let mine = |group: usize| self.settings.shard.is_none_or(|s| shards[group] == s.index);
        let threads = (!self.settings.threads.is_empty()).then(|| self.thread_counts());
        let workloads =
            prepare_workloads(&self.workloads, &self.settings.seeds, threads.as_deref(), self.settings.align, mine)?;
        let cells = cells(&self.allocators, &workloads, self.settings.arena_bytes);
        Ok(Matrix { settings: self.settings, workloads, cells })
    }
}

/// A run ready to go: its workloads prepared and its cells laid out.
#[derive(Debug)]
pub struct Matrix {
    /// The settings.
    pub settings: RunSettings,
    /// Every workload for every seed it needs.
    pub workloads: Vec<PreparedWorkload>,
    /// The cells, in matrix order.
    pub cells: Vec<Cell>,
}

impl Matrix {
    /// Can every allocator be built on its cells' arenas? Asked before a run
    /// writes anything, so that an arena the system cannot give or an
    /// allocator that cannot fit in it stops the run before its directory
    /// exists.
    pub fn check_builds(&self) -> Result<(), RunError> {
        let mut checked: Vec<(String, u64)> = Vec::new();
        for cell in &self.cells {
            let key = (cell.allocator.spec(), cell.arena_bytes);
            if !checked.contains(&key) {
                cell.allocator.visit(super::passes::BuildCheck { arena_bytes: cell.arena_bytes })?;
                checked.push(key);
            }
        }
        Ok(())
    }

    /// The prepared workload of `cell`.
    pub fn workload(&self, cell: &Cell) -> &PreparedWorkload {
        &self.workloads[cell.workload]
    }
}

/// Arena size when neither the command line nor the workload says.
pub const DEFAULT_ARENA_BYTES: u64 = 64 << 20;

/// A workload with its ops prepared for one seed.
#[derive(Debug)]
pub struct PreparedWorkload {
    /// The workload.
    pub workload: Workload,
    /// Canonical name.
    pub name: String,
    /// The seed (synthetic workloads).
    pub seed: Option<u64>,
    /// Threads it runs on.
    pub threads: u32,
    /// The steps.
    pub prepared: Prepared,
}

/// One cell of the matrix.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The allocator.
    pub allocator: AllocatorSpec,
    /// Index into the prepared workloads.
    pub workload: usize,
    /// Arena bytes for this cell.
    pub arena_bytes: u64,
}

/// Generate, read and validate every workload for every seed it needs, of
/// the groups (numbered in matrix order) that `keep`; with `threads`, once
/// per thread count on the threads pipeline (a multithreaded workload is
/// on it even without: on one thread).
pub fn prepare_workloads(
    workloads: &[Workload],
    seeds: &[u64],
    threads: Option<&[u32]>,
    align: u64,
    keep: impl Fn(usize) -> bool,
) -> Result<Vec<PreparedWorkload>, TraceError> {
    let mut jobs = Vec::new();
    for workload in workloads {
        if workload.is_seeded() {
            jobs.extend(seeds.iter().map(|&seed| (workload, Some(seed))));
        } else {
            jobs.push((workload, None));
        }
    }
    let jobs: Vec<_> = jobs
        .into_iter()
        .enumerate()
        .filter(|(group, _)| keep(*group))
        .flat_map(|(_, (workload, seed))| {
            let counts: Vec<Option<u32>> = match threads {
                Some(counts) => counts.iter().map(|&t| Some(t)).collect(),
                None if workload.is_threaded() => vec![Some(1)],
                None => vec![None],
            };
            counts.into_iter().map(move |threads| (workload, seed, threads))
        })
        .collect();
    jobs.into_par_iter()
        .map(|(workload, seed, threads)| {
            let name = workload.name();
            let prepared = match threads {
                Some(threads) => prepare_threaded(workload, seed.unwrap_or(0), threads, align)?,
                None => prepare(workload.ops(seed.unwrap_or(0))?, &name, align)?,
            };
            Ok(PreparedWorkload { workload: workload.clone(), name, seed, threads: threads.unwrap_or(1), prepared })
        })
        .collect()
}

/// The cells: allocators × prepared workloads, in matrix order (workload
/// by workload, each with every allocator).
pub fn cells(allocators: &[AllocatorSpec], workloads: &[PreparedWorkload], arena_bytes: Option<u64>) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (index, workload) in workloads.iter().enumerate() {
        let arena = arena_bytes.or(workload.workload.suggested_arena()).unwrap_or(DEFAULT_ARENA_BYTES);
        for allocator in allocators {
            cells.push(Cell { allocator: allocator.clone(), workload: index, arena_bytes: arena });
        }
    }
    cells
}

/// A cell's arena, naturally aligned (see [`Arena::natural`]).
pub fn arena(bytes: u64) -> Result<Arena, RunError> {
    usize::try_from(bytes)
        .map_err(|_| heaplab_core::ArenaError::TooLarge(usize::MAX))
        .and_then(Arena::natural)
        .map_err(|error| RunError::Arena { bytes, error })
}

/// The default suite's allocators: one representative configuration (or
/// two) per family.
pub fn default_allocators() -> Vec<&'static str> {
    vec![
        "freelist:fit=first,order=address",
        "freelist:fit=best,order=address",
        "segregated:kind=fits",
        "segregated:kind=tlsf",
        "buddy",
        "slab",
        "kernel",
    ]
}

/// The default suite's workloads: every preset and every bundled trace of
/// a single-threaded program.
pub fn default_workloads(ops: Option<u64>) -> Vec<String> {
    let presets = ["small-objects", "mixed-sizes", "ramp", "peak", "plateau", "larson", "kernel-pages", "kmalloc-mix"];
    let mut workloads: Vec<String> = presets
        .iter()
        .map(|name| match ops {
            Some(ops) => format!("{name}:ops={ops}"),
            None => name.to_string(),
        })
        .collect();
    workloads.push("fragmenter".to_string());
    workloads.push("vmalloc-vs-contiguous".to_string());
    // The multithreaded recordings are for `--threads`.
    workloads.extend(
        heaplab_workloads::bundled::BUNDLED
            .iter()
            .filter(|(.., threads)| *threads == 1)
            .map(|(name, ..)| format!("trace:{name}")),
    );
    workloads
}
