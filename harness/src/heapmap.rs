//! Heap maps: pictures of the arena at chosen ops — which bytes hold live
//! payload, which are free, which are neither (headers, padding, rounding,
//! metadata) — recorded during the metrics pass.
//!
//! Each frame paints the footprint `[0, H)` at a fixed resolution (a bucket
//! of `bucket_bytes`) with the majority state of each bucket, or "holes"
//! where free and used bytes interleave too finely to draw; at the end the
//! frames are resampled to a fixed number of columns over `[0, max H)`, so
//! that stacked in time they make the address × time picture of holes
//! forming and closing. One frame may also be kept exactly, block by block,
//! for a labelled map at one op.

use std::collections::HashMap;

use heaplab_core::Allocator;

/// A byte's state in a map.
pub const PAYLOAD: u8 = b'A';
/// Free (in the allocator's free space).
pub const FREE: u8 = b'F';
/// Neither: headers, padding, rounding, metadata.
pub const OTHER: u8 = b'O';
/// Beyond the footprint at that time.
pub const UNTOUCHED: u8 = b'.';
/// Holes: free space and used space interleaved finer than the map's
/// resolution (neither is three quarters of the bucket).
pub const HOLES: u8 = b'H';

/// Finest resolution: no bucket smaller than this.
const MIN_BUCKET: usize = 64;
/// Most buckets across an arena (the resolution of large arenas).
const MAX_BUCKETS: usize = 1 << 16;

/// One extent of an exact map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Extent {
    /// Arena offset.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
    /// [`PAYLOAD`] or [`FREE`]; the gaps between extents are [`OTHER`].
    pub state: char,
}

/// One frame, resampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Ops done when it was taken.
    pub op: u64,
    /// H then.
    pub footprint_bytes: u64,
    /// One state character per column.
    pub states: String,
}

/// The frames of one replay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeapMap {
    /// The bytes the columns span: max H.
    pub span_bytes: u64,
    /// Columns per frame.
    pub columns: usize,
    /// The frames, in time order.
    pub frames: Vec<Frame>,
    /// The exact map at one op, if asked for: (op, extents in address order).
    pub exact: Option<(u64, Vec<Extent>)>,
}

struct RawFrame {
    op: u64,
    footprint: u64,
    /// Majority state per bucket over `[0, footprint)`.
    buckets: Vec<u8>,
}

/// Records frames during a replay.
pub struct HeapMapRecorder {
    bucket: usize,
    /// Step indices after which to take a frame, ascending.
    schedule: Vec<usize>,
    next: usize,
    exact_at: Option<usize>,
    /// Live payloads: offset → size.
    live: HashMap<usize, usize>,
    frames: Vec<RawFrame>,
    exact: Option<(u64, Vec<Extent>)>,
}

impl std::fmt::Debug for HeapMapRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapMapRecorder")
            .field("bucket", &self.bucket)
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

impl HeapMapRecorder {
    /// Take `frames` frames evenly over `steps` steps (the last after the
    /// last step), plus one exact map after step `exact_at` if given.
    pub fn new(arena_bytes: usize, steps: usize, frames: usize, exact_at: Option<usize>) -> HeapMapRecorder {
        let mut schedule: Vec<usize> = (1..=frames).map(|k| (steps * k / frames.max(1)).saturating_sub(1)).collect();
        schedule.extend(exact_at);
        schedule.sort_unstable();
        schedule.dedup();
        HeapMapRecorder {
            bucket: arena_bytes.div_ceil(MAX_BUCKETS).max(MIN_BUCKET),
            schedule,
            next: 0,
            exact_at,
            live: HashMap::new(),
            frames: Vec::new(),
            exact: None,
        }
    }

    /// A block's payload became live.
    #[inline]
    pub fn allocated(&mut self, offset: usize, size: usize) {
        self.live.insert(offset, size);
    }

    /// A block's payload is about to stop being live.
    #[inline]
    pub fn freeing(&mut self, offset: usize) {
        self.live.remove(&offset);
    }

    /// Take the frames due after step `index`.
    #[inline]
    pub fn step<A: Allocator>(&mut self, allocator: &A, index: usize, footprint: u64) {
        while self.next < self.schedule.len() && self.schedule[self.next] == index {
            self.next += 1;
            self.capture(allocator, index, footprint);
        }
    }

    fn capture<A: Allocator>(&mut self, allocator: &A, index: usize, footprint: u64) {
        let op = index as u64 + 1;
        let mut free: Vec<(usize, usize)> = Vec::new();
        allocator.for_each_free(&mut |offset, len| free.push((offset, len)));
        if self.exact_at == Some(index) {
            let mut extents: Vec<Extent> = free
                .iter()
                .map(|&(offset, len)| Extent { offset: offset as u64, len: len as u64, state: FREE as char })
                .collect();
            extents.extend(self.live.iter().map(|(&offset, &len)| Extent {
                offset: offset as u64,
                len: len as u64,
                state: PAYLOAD as char,
            }));
            extents.sort_unstable_by_key(|e| e.offset);
            self.exact = Some((op, extents));
        }
        let buckets = (footprint as usize).div_ceil(self.bucket);
        let mut free_bytes = vec![0u32; buckets];
        let mut payload_bytes = vec![0u32; buckets];
        let paint = |counts: &mut Vec<u32>, offset: usize, len: usize| {
            let end = (offset + len).min(buckets * self.bucket);
            let mut at = offset;
            while at < end {
                let bucket = at / self.bucket;
                let bucket_end = ((bucket + 1) * self.bucket).min(end);
                counts[bucket] += (bucket_end - at) as u32;
                at = bucket_end;
            }
        };
        for &(offset, len) in &free {
            paint(&mut free_bytes, offset, len);
        }
        for (&offset, &len) in &self.live {
            paint(&mut payload_bytes, offset, len);
        }
        let states = (0..buckets)
            .map(|b| {
                let free = free_bytes[b] as usize;
                let payload = payload_bytes[b] as usize;
                let other = self.bucket.saturating_sub(free + payload);
                if 4 * free > self.bucket && 4 * free < 3 * self.bucket {
                    HOLES
                } else if payload >= free && payload >= other {
                    PAYLOAD
                } else if free >= other {
                    FREE
                } else {
                    OTHER
                }
            })
            .collect();
        self.frames.push(RawFrame { op, footprint, buckets: states });
    }

    /// Resample the frames to `columns` columns over `[0, span)`.
    pub fn finish(self, span: u64, columns: usize) -> HeapMap {
        let span = span.max(1);
        let bucket = self.bucket as u64;
        let frames = self
            .frames
            .into_iter()
            .map(|frame| {
                let states: String = (0..columns)
                    .map(|column| {
                        let (start, end) =
                            (span * column as u64 / columns as u64, span * (column as u64 + 1) / columns as u64);
                        if start >= frame.footprint {
                            return UNTOUCHED as char;
                        }
                        // The most frequent state of the buckets under the column.
                        let mut counts = [0u64; 4];
                        let (first, last) = (start / bucket, end.max(start + 1).div_ceil(bucket));
                        for b in first..last.min(frame.buckets.len() as u64) {
                            let index = match frame.buckets[b as usize] {
                                PAYLOAD => 0,
                                FREE => 1,
                                HOLES => 2,
                                _ => 3,
                            };
                            counts[index] += 1;
                        }
                        // Free and used buckets interleaved under one column
                        // are holes too, though each bucket is one or the other.
                        let total = counts.iter().sum::<u64>().max(1);
                        if 4 * counts[1] > total && 4 * counts[1] < 3 * total {
                            return HOLES as char;
                        }
                        let best = (0..4).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(3);
                        [PAYLOAD, FREE, HOLES, OTHER][best] as char
                    })
                    .collect();
                Frame { op: frame.op, footprint_bytes: frame.footprint, states }
            })
            .collect();
        HeapMap { span_bytes: span, columns, frames, exact: self.exact }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::Step;
    use crate::replay::{Nothing, Slots, Touch, replay};
    use heaplab_core::{AllocatorConfig, Arena};

    #[test]
    fn a_buddy_map_shows_the_holes_left_by_freeing_every_other_block() {
        // 64-byte order 0 on 1 KiB: 16 blocks fill it, every other one is freed.
        let config = heaplab_buddy::Config { min_block: 64, max_order: None, split: heaplab_buddy::Split::Lower };
        let mut allocator = config.build(Arena::new(1024).unwrap()).unwrap();
        let mut steps: Vec<Step> = (0..16)
            .map(|slot| Step::Alloc { slot, align_log2: 4, size: 64, level: heaplab_core::Level::User, space: 0 })
            .collect();
        steps.extend((0..16).step_by(2).map(|slot| Step::Free { slot }));
        let mut slots = Slots::new(16);
        let mut recorder = HeapMapRecorder::new(1024, steps.len(), 2, Some(23));
        // Drive the recorder by hand around a plain replay of each step.
        for (index, step) in steps.iter().enumerate() {
            if let Step::Free { slot } = step {
                recorder.freeing(*slot as usize * 64);
            }
            replay(&mut allocator, std::slice::from_ref(step), &mut slots, Touch::None, &mut Nothing).unwrap();
            if let Step::Alloc { slot, .. } = step {
                recorder.allocated(*slot as usize * 64, 64);
            }
            recorder.step(&allocator, index, 1024);
        }
        let map = recorder.finish(1024, 16);
        assert_eq!(map.frames.len(), 2);
        assert_eq!(map.frames[0].states, "AAAAAAAAAAAAFFFF", "twelve blocks in (op 12)");
        assert_eq!(map.frames[1].states, "FAFAFAFAFAFAFAFA");
        let (op, extents) = map.exact.unwrap();
        assert_eq!(op, 24);
        assert_eq!(extents.len(), 16);
        assert_eq!(extents[0], Extent { offset: 0, len: 64, state: 'F' });
        assert_eq!(extents[1], Extent { offset: 64, len: 64, state: 'A' });
    }
}
