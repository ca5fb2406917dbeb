//! Turning a workload's ops into replay steps: validated, ids remapped to
//! dense slots (one per allocation), alignments resolved, sizes checked,
//! before anything is measured.

use heaplab_core::{Level, PerKind};
use heaplab_workloads::{IdMap, Op, OpKind, TraceError, Validator};

/// One replay step. Sixteen bytes, so that traces of hundreds of millions of
/// ops fit in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Allocate `size` bytes aligned to `1 << align_log2` into `slot`.
    Alloc {
        /// Slot index.
        slot: u32,
        /// log2 of the alignment.
        align_log2: u8,
        /// The level of the memory system it goes to.
        level: Level,
        /// The address space (the simulated process) it belongs to.
        space: u8,
        /// Bytes requested (a valid `Layout` with the alignment: checked).
        size: u64,
    },
    /// A request no `Layout` can express (larger than `isize::MAX`): it
    /// always fails, as it would in a real allocator.
    AllocImpossible {
        /// Slot index.
        slot: u32,
        /// Bytes requested.
        size: u64,
    },
    /// Free the block in `slot`.
    Free {
        /// Slot index.
        slot: u32,
    },
    /// Resize the block in `slot` to `size` bytes.
    Realloc {
        /// Slot index.
        slot: u32,
        /// New size in bytes.
        size: u64,
    },
}

impl Step {
    /// The op kind, for per-kind statistics.
    #[inline]
    pub fn kind(&self) -> OpKind {
        match self {
            Step::Alloc { .. } | Step::AllocImpossible { .. } => OpKind::Alloc,
            Step::Free { .. } => OpKind::Free,
            Step::Realloc { .. } => OpKind::Realloc,
        }
    }
}

/// A workload ready to replay.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Slots needed (allocations in the trace).
    pub slots: usize,
    /// Ops by kind.
    pub counts: PerKind<u64>,
    /// Peak requested bytes if every allocation succeeds (what `heaplab
    /// trace info` reports).
    pub peak_requested_bytes: u64,
    /// For a cell on threads: which thread runs each step, and each
    /// thread's own steps.
    pub threaded: Option<Threaded>,
}

/// The threads of a prepared workload: `steps` is one order of all their
/// steps (a seeded interleaving, or a recorded trace's own order), which
/// the deterministic pass replays; each thread's steps keep their order in
/// it, with the same slots.
#[derive(Debug, Clone)]
pub struct Threaded {
    /// Threads.
    pub threads: u32,
    /// The thread of each of the interleaving's steps.
    pub thread_of: Vec<u16>,
    /// Each thread's steps, in its order.
    pub programs: Vec<Vec<Step>>,
    /// Per thread, the steps (by index in its program) that must wait for
    /// another thread's realloc of their block, with the number of reallocs
    /// the block must have had: `(step, reallocs)`, in step order. A step
    /// whose block was last allocated elsewhere waits for that allocation
    /// anyway (its slot is empty until then).
    pub waits: Vec<Vec<(u32, u32)>>,
    /// Frees of a block another thread allocated (or last reallocated).
    pub remote_frees: u64,
    /// Frees in all.
    pub frees: u64,
    /// Times each byte of a new block is written by its thread (the cache
    /// benchmarks' work loop).
    pub writes_per_alloc: u32,
}

impl Threaded {
    /// Remote frees, percent of frees.
    pub fn remote_free_pct(&self) -> f64 {
        if self.frees == 0 { 0.0 } else { 100.0 * self.remote_frees as f64 / self.frees as f64 }
    }
}

/// Prepare a workload on `threads` threads: its programs (a multithreaded
/// workload's, a recorded trace's threads, or one copy per thread of any
/// other), one order of them (the recorded one, or an interleaving for
/// `seed`), and each thread's steps with the waits its cross-thread
/// reallocs need.
pub fn prepare_threaded(
    workload: &heaplab_workloads::Workload,
    seed: u64,
    threads: u32,
    default_align: u64,
) -> Result<Prepared, TraceError> {
    let name = workload.name();
    let programs = workload.programs(seed, threads as usize)?;
    let order = match programs.order {
        Some(order) => order,
        None => heaplab_workloads::threaded::interleave(&programs.threads, seed)
            .map_err(|message| TraceError::Workload { workload: name.clone(), message })?,
    };
    let mut prepared = prepare(order.iter().map(|s| Ok(s.op)), &name, default_align)?;
    let thread_of: Vec<u16> = order.iter().map(|s| s.thread).collect();
    let count = threads.max(1) as usize;
    // Per slot: the thread that owns the block (allocated or last
    // reallocated it) and its reallocs so far.
    let mut owner: Vec<u16> = vec![0; prepared.slots];
    let mut reallocs: Vec<u32> = vec![0; prepared.slots];
    let mut split: Vec<Vec<Step>> = vec![Vec::new(); count];
    let mut waits: Vec<Vec<(u32, u32)>> = vec![Vec::new(); count];
    let (mut remote_frees, mut frees) = (0, 0);
    for (step, &thread) in prepared.steps.iter().zip(&thread_of) {
        let mine = &mut split[thread as usize];
        if let Step::Free { slot } | Step::Realloc { slot, .. } = *step {
            let slot = slot as usize;
            if owner[slot] != thread && reallocs[slot] > 0 {
                waits[thread as usize].push((mine.len() as u32, reallocs[slot]));
            }
        }
        match *step {
            Step::Alloc { slot, .. } | Step::AllocImpossible { slot, .. } => owner[slot as usize] = thread,
            Step::Free { slot } => {
                frees += 1;
                remote_frees += u64::from(owner[slot as usize] != thread);
            }
            // A realloc makes the block this thread's.
            Step::Realloc { slot, .. } => {
                owner[slot as usize] = thread;
                reallocs[slot as usize] += 1;
            }
        }
        mine.push(*step);
    }
    prepared.threaded = Some(Threaded {
        threads,
        thread_of,
        programs: split,
        waits,
        remote_frees,
        frees,
        writes_per_alloc: programs.writes_per_alloc,
    });
    Ok(prepared)
}

/// Validate and convert `ops`; `default_align` stands in for unspecified
/// alignments (recorded traces carry none). Fails on the first illegal op.
pub fn prepare(
    ops: impl IntoIterator<Item = Result<Op, TraceError>>,
    name: &str,
    default_align: u64,
) -> Result<Prepared, TraceError> {
    debug_assert!(default_align.is_power_of_two());
    let mut validator = Validator::new();
    let mut slot_of: IdMap<u32> = IdMap::new();
    let mut sizes: Vec<u64> = Vec::new();
    let mut steps = Vec::new();
    let mut counts = PerKind::<u64>::default();
    let (mut live, mut peak) = (0u64, 0u64);
    for (index, op) in ops.into_iter().enumerate() {
        let op = op?;
        validator.check(&op).map_err(|what| TraceError::Invalid {
            path: name.to_string(),
            index: index as u64,
            what,
        })?;
        counts[op.kind()] += 1;
        let overflow = || TraceError::LiveBytesOverflow { path: name.to_string(), index: index as u64 };
        let step = match op {
            Op::Alloc { id, size, align, level, space } => {
                let slot = u32::try_from(sizes.len()).map_err(|_| TraceError::TooManyAllocations {
                    path: name.to_string(),
                    index: index as u64,
                    limit: u32::MAX.into(),
                })?;
                slot_of.set(id, slot);
                sizes.push(size);
                live = live.checked_add(size).ok_or_else(overflow)?;
                let align = align.bytes_or(default_align);
                let fits = usize::try_from(size)
                    .is_ok_and(|size| std::alloc::Layout::from_size_align(size, align as usize).is_ok());
                if fits {
                    Step::Alloc { slot, align_log2: align.trailing_zeros() as u8, level, space, size }
                } else {
                    Step::AllocImpossible { slot, size }
                }
            }
            Op::Free { id } => {
                let slot = slot_of.get(id);
                live -= sizes[slot as usize];
                Step::Free { slot }
            }
            Op::Realloc { id, size } => {
                let slot = slot_of.get(id);
                live = (live - sizes[slot as usize]).checked_add(size).ok_or_else(overflow)?;
                sizes[slot as usize] = size;
                Step::Realloc { slot, size }
            }
        };
        peak = peak.max(live);
        steps.push(step);
    }
    Ok(Prepared { steps, slots: sizes.len(), counts, peak_requested_bytes: peak, threaded: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use heaplab_workloads::Align;

    #[test]
    fn ids_become_one_slot_per_allocation() {
        let a = |id, size| Ok(Op::alloc(id, size, Align::UNSPECIFIED));
        let ops = vec![
            a(7, 10),
            Ok(Op::Free { id: 7 }),
            a(7, 20),
            Ok(Op::Realloc { id: 7, size: 40 }),
            Ok(Op::Free { id: 7 }),
        ];
        let prepared = prepare(ops, "t", 16).unwrap();
        assert_eq!(
            prepared.steps,
            [
                Step::Alloc { slot: 0, align_log2: 4, size: 10, level: Level::User, space: 0 },
                Step::Free { slot: 0 },
                Step::Alloc { slot: 1, align_log2: 4, size: 20, level: Level::User, space: 0 },
                Step::Realloc { slot: 1, size: 40 },
                Step::Free { slot: 1 },
            ]
        );
        assert_eq!(
            (prepared.slots, prepared.counts, prepared.peak_requested_bytes),
            (2, PerKind { alloc: 2, free: 2, realloc: 1 }, 40)
        );
    }

    #[test]
    fn a_step_fits_in_sixteen_bytes() {
        // The timed replay walks the steps: their size is its cache footprint.
        assert_eq!(std::mem::size_of::<Step>(), 16);
    }

    #[test]
    fn a_block_reallocated_on_another_thread_is_waited_for() {
        use heaplab_workloads::{ThreadOp, formats};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mt.hlt");
        let a = |id, size| Op::alloc(id, size, Align::UNSPECIFIED);
        let steps = [
            (0, a(0, 10)),
            (1, Op::Realloc { id: 0, size: 20 }), // waits for thread 0's alloc (an empty slot)
            (0, Op::Realloc { id: 0, size: 30 }), // waits for thread 1's realloc
            (0, a(1, 5)),
            (1, Op::Free { id: 0 }), // waits for thread 0's realloc, the block's second
            (1, Op::Free { id: 1 }), // waits for the alloc only
        ]
        .map(|(thread, op)| Ok(ThreadOp { thread, op }));
        formats::write_steps(
            &path,
            None,
            steps,
            "",
            heaplab_workloads::formats::Fields { threads: true, levels: false },
        )
        .unwrap();
        let workload = heaplab_workloads::Workload::parse(path.to_str().unwrap()).unwrap();
        let prepared = prepare_threaded(&workload, 0, 2, 16).unwrap();
        let threaded = prepared.threaded.as_ref().unwrap();
        assert_eq!(threaded.thread_of, [0, 1, 0, 0, 1, 1], "the recorded order");
        assert_eq!(threaded.waits, [vec![(1, 1)], vec![(1, 2)]]);
        assert_eq!((threaded.remote_frees, threaded.frees), (2, 2));
        // As a conformance script: each op after those on its block before it.
        use heaplab_core::conformance::ScriptOp;
        let script = script(&prepared).unwrap();
        assert_eq!(
            script.threads[1],
            [
                ScriptOp::Realloc { slot: 0, size: 20, after: 1 },
                ScriptOp::Free { slot: 0, after: 3 },
                ScriptOp::Free { slot: 1, after: 1 }
            ]
        );
    }

    /// A prepared cell on threads as a conformance `Script`: each
    /// thread's steps, each free and realloc after the ops on its block
    /// that come before it in the order. `None` for a cell not on threads.
    fn script(prepared: &Prepared) -> Option<heaplab_core::conformance::Script> {
        use heaplab_core::conformance::{Script, ScriptOp};
        let threaded = prepared.threaded.as_ref()?;
        let mut done = vec![0u32; prepared.slots];
        let mut threads = vec![Vec::new(); threaded.programs.len()];
        for (step, &thread) in prepared.steps.iter().zip(&threaded.thread_of) {
            let op = match *step {
                Step::Alloc { slot, align_log2, size, .. } => {
                    ScriptOp::Alloc { slot, size: size as usize, align: 1 << align_log2 }
                }
                Step::AllocImpossible { slot, .. } => ScriptOp::Alloc { slot, size: usize::MAX, align: 1 },
                Step::Free { slot } => ScriptOp::Free { slot, after: done[slot as usize] },
                Step::Realloc { slot, size } => ScriptOp::Realloc {
                    slot,
                    size: usize::try_from(size).unwrap_or(usize::MAX),
                    after: done[slot as usize],
                },
            };
            let slot = match op {
                ScriptOp::Alloc { slot, .. } | ScriptOp::Free { slot, .. } | ScriptOp::Realloc { slot, .. } => slot,
            };
            done[slot as usize] += 1;
            threads[thread as usize].push(op);
        }
        Some(Script { threads, slots: prepared.slots })
    }

    /// The conformance script of a cell on threads, run on a thread-safe
    /// layer over a family (the allocator beneath then held to recovery).
    struct OnLayers<'a> {
        script: &'a heaplab_core::conformance::Script,
        kinds: &'a [heaplab_core::concurrent::LayerKind],
    }

    impl heaplab_core::concurrent::SendVisitor for OnLayers<'_> {
        type Output = Result<(), String>;
        fn visit<C: heaplab_core::AllocatorConfig>(self, config: &C) -> Self::Output
        where
            C::Allocator: Send,
            C::Timed: Send,
        {
            use heaplab_core::conformance as suite;
            for &kind in self.kinds {
                let factory = suite::layer_factory(kind, config.clone());
                suite::concurrent_script_layer(factory, self.script, 64 << 20)
                    .map_err(|failure| format!("{}/{}: {failure}", kind.spec(), config.spec()))?;
            }
            Ok(())
        }
    }

    /// The script on a thread-safe build as it is (a peer's own thread
    /// caches; its blocks are not in the arena).
    struct AsItIs<'a>(&'a heaplab_core::conformance::Script);

    impl heaplab_core::concurrent::SharedVisitor for AsItIs<'_> {
        type Output = Result<(), String>;
        fn visit<B: heaplab_core::concurrent::SharedBuild>(self, build: &B) -> Self::Output {
            let arena = heaplab_core::Arena::new(1 << 20).unwrap();
            let shared = build.build_shared(arena, self.0.threads.len()).map_err(|e| e.to_string())?;
            heaplab_core::conformance::concurrent_script(&shared, self.0, None)
                .map(|_| ())
                .map_err(|failure| format!("{}: {failure}", build.shared_spec()))
        }
    }

    #[test]
    fn the_bundled_multithreaded_trace_passes_the_concurrent_checks_on_every_thread_safe_allocator() {
        use crate::registry::AllocatorSpec;
        use heaplab_core::concurrent::{CacheParams, LayerKind};
        let workload = heaplab_workloads::Workload::parse("trace:python-threads").unwrap();
        let prepared = prepare_threaded(&workload, 0, 2, 16).unwrap();
        let threaded = prepared.threaded.as_ref().unwrap();
        // Cross-thread frees as trace info counts them.
        let info = heaplab_workloads::info::analyze_steps(workload.steps(0).unwrap(), "t").unwrap();
        assert_eq!((threaded.remote_frees, threaded.frees), (info.remote_frees, info.count(OpKind::Free)));
        assert!(threaded.remote_frees > 0);
        let script = script(&prepared).unwrap();
        let kinds = [
            LayerKind::Locked,
            LayerKind::Cached(CacheParams::default()),
            LayerKind::Cached(CacheParams { magazine: 3, depot: 1, max_size: 256 }),
        ];
        for spec in
            ["segregated:kind=tlsf,sl=5", "segregated:kind=fits", "buddy", "slab", "freelist:fit=first,order=address"]
        {
            let spec = AllocatorSpec::parse(spec).unwrap();
            spec.visit_send(OnLayers { script: &script, kinds: &kinds }).expect("layerable").unwrap();
        }
        for peer in ["peer:glibc", "peer:mimalloc", "peer:jemalloc"] {
            AllocatorSpec::parse(peer).unwrap().visit_shared(AsItIs(&script)).expect("thread-safe").unwrap();
        }
    }

    #[test]
    fn impossible_sizes_are_kept_as_steps_that_fail() {
        let ops = vec![Ok(Op::alloc(0, u64::MAX, Align::new(8).unwrap())), Ok(Op::Free { id: 0 })];
        let prepared = prepare(ops, "t", 16).unwrap();
        assert_eq!(prepared.steps[0], Step::AllocImpossible { slot: 0, size: u64::MAX });
    }

    #[test]
    fn illegal_ops_stop_preparation_with_their_index() {
        let ops = vec![Ok(Op::Free { id: 3 })];
        assert_eq!(
            prepare(ops, "t.rep", 16).unwrap_err().to_string(),
            "t.rep: op 1: free of id 3, which was never allocated"
        );
    }
}
