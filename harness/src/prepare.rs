//! Turning a workload's ops into replay steps: validated, ids remapped to
//! dense slots (one per allocation), alignments resolved, sizes checked,
//! before anything is measured.

use heaplab_core::PerKind;
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

/// The threads of a prepared workload: `steps` is their seeded
/// interleaving (the deterministic pass replays it), and each thread's
/// steps keep their order in it, with the same slots.
#[derive(Debug, Clone)]
pub struct Threaded {
    /// Threads.
    pub threads: u32,
    /// The thread of each of the interleaving's steps.
    pub thread_of: Vec<u16>,
    /// Each thread's steps, in its order.
    pub programs: Vec<Vec<Step>>,
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
/// workload's, or one copy per thread of any other), their interleaving for
/// `seed`, and each thread's steps.
pub fn prepare_threaded(
    workload: &heaplab_workloads::Workload,
    seed: u64,
    threads: u32,
    default_align: u64,
) -> Result<Prepared, TraceError> {
    let name = workload.name();
    let programs = workload.programs(seed, threads as usize)?;
    let order = heaplab_workloads::threaded::interleave(&programs.threads, seed)
        .map_err(|message| TraceError::Workload { workload: name.clone(), message })?;
    let mut prepared = prepare(order.iter().map(|s| Ok(s.op)), &name, default_align)?;
    let thread_of: Vec<u16> = order.iter().map(|s| s.thread).collect();
    let mut owner: Vec<u16> = vec![0; prepared.slots];
    let mut split: Vec<Vec<Step>> = vec![Vec::new(); threads.max(1) as usize];
    let (mut remote_frees, mut frees) = (0, 0);
    let mut reallocated = vec![false; prepared.slots];
    for (index, (step, &thread)) in prepared.steps.iter().zip(&thread_of).enumerate() {
        if let Step::Free { slot } | Step::Realloc { slot, .. } = *step
            && owner[slot as usize] != thread
            && (reallocated[slot as usize] || matches!(step, Step::Realloc { .. }))
        {
            return Err(TraceError::Workload {
                workload: name,
                message: format!(
                    "op {index}: a block reallocated on one thread is freed or reallocated on another; replay on threads keeps a reallocated block on its thread"
                ),
            });
        }
        if let Step::Realloc { slot, .. } = *step {
            reallocated[slot as usize] = true;
        }
        match *step {
            Step::Alloc { slot, .. } | Step::AllocImpossible { slot, .. } => owner[slot as usize] = thread,
            Step::Free { slot } => {
                frees += 1;
                remote_frees += u64::from(owner[slot as usize] != thread);
            }
            // A realloc makes the block this thread's.
            Step::Realloc { slot, .. } => owner[slot as usize] = thread,
        }
        split[thread as usize].push(*step);
    }
    prepared.threaded = Some(Threaded {
        threads,
        thread_of,
        programs: split,
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
            Op::Alloc { id, size, align } => {
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
                    Step::Alloc { slot, align_log2: align.trailing_zeros() as u8, size }
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
        let a = |id, size| Ok(Op::Alloc { id, size, align: Align::UNSPECIFIED });
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
                Step::Alloc { slot: 0, align_log2: 4, size: 10 },
                Step::Free { slot: 0 },
                Step::Alloc { slot: 1, align_log2: 4, size: 20 },
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
    fn impossible_sizes_are_kept_as_steps_that_fail() {
        let ops = vec![Ok(Op::Alloc { id: 0, size: u64::MAX, align: Align::new(8).unwrap() }), Ok(Op::Free { id: 0 })];
        let prepared = prepare(ops, "t", 16).unwrap();
        assert_eq!(prepared.steps[0], Step::AllocImpossible { slot: 0, size: u64::MAX });
    }

    #[test]
    fn illegal_ops_stop_preparation_with_their_index() {
        let ops = vec![Ok(Op::Free { id: 3 })];
        assert_eq!(
            prepare(ops, "t.rep", 16).unwrap_err().to_string(),
            "t.rep: op 0: free of id 3, which was never allocated"
        );
    }
}
