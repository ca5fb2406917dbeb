//! `heaplab trace info`: what a trace contains.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::error::TraceError;
use crate::idmap::IdMap;
use crate::op::{Op, OpKind, ThreadOp};
use crate::validate::Validator;

/// A trace's contents, summarised in one pass.
#[derive(Debug, Clone)]
pub struct TraceInfo {
    /// Ops by kind: alloc, free, realloc.
    pub counts: [u64; 3],
    /// Distinct ids allocated (an id reused after its free counts again).
    pub blocks: u64,
    /// Most requested bytes live at once (R's peak).
    pub peak_live_bytes: u64,
    /// The first op after which R reaches its peak, counted from 1 (op N
    /// is the state after the N-th op).
    pub peak_op: Option<u64>,
    /// Most blocks live at once.
    pub peak_live_blocks: u64,
    /// Requested bytes live at the end.
    pub final_live_bytes: u64,
    /// Blocks never freed.
    pub final_live_blocks: u64,
    /// Requested sizes of allocs and reallocs (3 significant digits).
    pub sizes: Histogram<u64>,
    /// Requests by size bucket: index 0 counts size 0, index k counts sizes
    /// in `[2^(k−1), 2^k)`.
    pub size_buckets: Vec<u64>,
    /// Lifetimes in ops (free index − alloc index) of freed blocks.
    pub lifetimes: Histogram<u64>,
    /// Allocs by alignment in bytes (`None`: unspecified).
    pub aligns: BTreeMap<Option<u64>, u64>,
    /// Per thread (indexed by thread id; one entry for a trace without
    /// threads): ops made, and the peak of the requested bytes live in
    /// blocks it owns (it allocated them, or reallocated them last).
    pub threads: Vec<ThreadInfo>,
    /// Frees of a block another thread owns: cross-thread (remote) frees,
    /// counted as `heaplab run --threads` counts them.
    pub remote_frees: u64,
    /// Reallocs of a block another thread owns (it changes owner).
    pub remote_reallocs: u64,
}

/// One thread of a trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Ops the thread made.
    pub ops: u64,
    /// Most requested bytes live at once in blocks the thread owns.
    pub peak_live_bytes: u64,
    /// Requested bytes live now in blocks it owns (during the pass).
    live_bytes: u64,
}

impl TraceInfo {
    /// Total ops.
    pub fn ops(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Ops of one kind.
    pub fn count(&self, kind: OpKind) -> u64 {
        self.counts[kind as usize]
    }

    /// Cross-thread frees, percent of frees.
    pub fn remote_free_pct(&self) -> f64 {
        let frees = self.count(OpKind::Free);
        if frees == 0 { 0.0 } else { 100.0 * self.remote_frees as f64 / frees as f64 }
    }
}

/// Summarise a trace; fails on the first illegal op (with its index) or
/// reading error.
pub fn analyze(ops: impl IntoIterator<Item = Result<Op, TraceError>>, name: &str) -> Result<TraceInfo, TraceError> {
    analyze_steps(ops.into_iter().map(|op| op.map(ThreadOp::single)), name)
}

/// [`analyze`] ops with their threads.
pub fn analyze_steps(
    steps: impl IntoIterator<Item = Result<ThreadOp, TraceError>>,
    name: &str,
) -> Result<TraceInfo, TraceError> {
    let mut info = TraceInfo {
        counts: [0; 3],
        blocks: 0,
        peak_live_bytes: 0,
        peak_op: None,
        peak_live_blocks: 0,
        final_live_bytes: 0,
        final_live_blocks: 0,
        sizes: Histogram::new(3).expect("3 significant figures are valid"),
        size_buckets: vec![0; 65],
        lifetimes: Histogram::new(3).expect("3 significant figures are valid"),
        aligns: BTreeMap::new(),
        threads: vec![ThreadInfo::default()],
        remote_frees: 0,
        remote_reallocs: 0,
    };
    let mut validator = Validator::new();
    // Per live id: requested size, the index of its allocation, its owner.
    let mut live: IdMap<(u64, u64, u16)> = IdMap::new();
    let (mut live_bytes, mut live_blocks) = (0u64, 0u64);
    for (index, step) in steps.into_iter().enumerate() {
        let ThreadOp { thread, op } = step?;
        let index = index as u64;
        validator.check(&op).map_err(|what| TraceError::Invalid { path: name.to_string(), index, what })?;
        info.counts[op.kind() as usize] += 1;
        if info.threads.len() <= usize::from(thread) {
            info.threads.resize(usize::from(thread) + 1, ThreadInfo::default());
        }
        info.threads[usize::from(thread)].ops += 1;
        let overflow = || TraceError::LiveBytesOverflow { path: name.to_string(), index };
        match op {
            Op::Alloc { id, size, align, .. } => {
                live.set(id, (size, index, thread));
                live_bytes = live_bytes.checked_add(size).ok_or_else(overflow)?;
                info.threads[usize::from(thread)].gain(size);
                live_blocks += 1;
                info.blocks += 1;
                record_size(&mut info, size);
                *info.aligns.entry(align.bytes()).or_default() += 1;
            }
            Op::Free { id } => {
                let (size, birth, owner) = live.get(id);
                live_bytes -= size;
                info.threads[usize::from(owner)].live_bytes -= size;
                info.remote_frees += u64::from(owner != thread);
                live_blocks -= 1;
                info.lifetimes.record(index - birth).expect("an auto-resizing histogram takes any u64");
            }
            Op::Realloc { id, size } => {
                let (old, birth, owner) = live.get(id);
                live.set(id, (size, birth, thread));
                live_bytes = (live_bytes - old).checked_add(size).ok_or_else(overflow)?;
                info.threads[usize::from(owner)].live_bytes -= old;
                info.threads[usize::from(thread)].gain(size);
                info.remote_reallocs += u64::from(owner != thread);
                record_size(&mut info, size);
            }
        }
        if live_bytes > info.peak_live_bytes {
            info.peak_live_bytes = live_bytes;
            info.peak_op = Some(index + 1);
        }
        info.peak_live_blocks = info.peak_live_blocks.max(live_blocks);
    }
    info.final_live_bytes = live_bytes;
    info.final_live_blocks = live_blocks;
    Ok(info)
}

impl ThreadInfo {
    /// The thread now owns `size` more bytes (no overflow: the sum over
    /// threads, the trace's live bytes, was checked).
    fn gain(&mut self, size: u64) {
        self.live_bytes += size;
        self.peak_live_bytes = self.peak_live_bytes.max(self.live_bytes);
    }
}

fn record_size(info: &mut TraceInfo, size: u64) {
    info.sizes.record(size).expect("an auto-resizing histogram takes any u64");
    let bucket = if size == 0 { 0 } else { 64 - size.leading_zeros() as usize };
    info.size_buckets[bucket] += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Align;

    fn alloc(id: u32, size: u64) -> Result<Op, TraceError> {
        Ok(Op::alloc(id, size, Align::UNSPECIFIED))
    }

    #[test]
    fn counts_and_peaks_match_a_trace_worked_on_paper() {
        // op 1: +100 → 100; 2: +50 → 150; 3: realloc 0 to 300 → 350 (peak);
        // 4: free 1 → 300; 5: +10 → 310; 6: free 0 → 10; 7: free 2 → 0.
        let ops = vec![
            alloc(0, 100),
            alloc(1, 50),
            Ok(Op::Realloc { id: 0, size: 300 }),
            Ok(Op::Free { id: 1 }),
            alloc(2, 10),
            Ok(Op::Free { id: 0 }),
            Ok(Op::Free { id: 2 }),
        ];
        let info = analyze(ops, "t").unwrap();
        assert_eq!(info.counts, [3, 3, 1]);
        assert_eq!((info.peak_live_bytes, info.peak_op, info.peak_live_blocks), (350, Some(3), 2));
        assert_eq!((info.final_live_bytes, info.final_live_blocks, info.blocks), (0, 0, 3));
        // Lifetimes 3 - 1 = 2, 5 - 0 = 5, 6 - 4 = 2.
        assert_eq!((info.lifetimes.len(), info.lifetimes.min(), info.lifetimes.max()), (3, 2, 5));
        // Sizes 100, 50, 300, 10: buckets [64,128), [32,64), [256,512), [8,16).
        assert_eq!(
            (info.size_buckets[7], info.size_buckets[6], info.size_buckets[9], info.size_buckets[4]),
            (1, 1, 1, 1)
        );
        assert_eq!(info.aligns.get(&None), Some(&3));
        assert_eq!((info.sizes.min(), info.sizes.max(), info.sizes.len()), (10, 300, 4));
    }

    #[test]
    fn threads_own_what_they_allocate_or_reallocate_last() {
        let on = |thread, op| Ok(ThreadOp { thread, op });
        let a = |id, size| Op::alloc(id, size, Align::UNSPECIFIED);
        let steps = vec![
            on(0, a(0, 100)),
            on(1, a(1, 10)),
            on(1, Op::Free { id: 0 }), // remote: thread 0's
            on(0, a(2, 50)),
            on(1, Op::Realloc { id: 2, size: 70 }), // remote: now thread 1's
            on(0, Op::Free { id: 2 }),              // remote: thread 1's
            on(1, Op::Free { id: 1 }),
        ];
        let info = analyze_steps(steps, "t").unwrap();
        assert_eq!(info.threads.iter().map(|t| t.ops).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(info.threads.iter().map(|t| t.peak_live_bytes).collect::<Vec<_>>(), [100, 80]);
        assert_eq!((info.remote_frees, info.remote_reallocs), (2, 1));
        assert!((info.remote_free_pct() - 200.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn an_illegal_op_is_reported_with_its_index() {
        let ops = vec![alloc(0, 1), Ok(Op::Free { id: 0 }), Ok(Op::Free { id: 0 })];
        assert_eq!(analyze(ops, "t.rep").unwrap_err().to_string(), "t.rep: op 3: double free of id 0");
    }
}
