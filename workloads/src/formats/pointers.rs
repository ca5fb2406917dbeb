//! Turning a log of pointers (mtrace, `heaplab record`) into ops on dense
//! ids, shared by the readers of such logs.
//!
//! Blocks get ids in order of allocation; a realloc keeps its block's id.
//! Real logs start late or miss calls, so: a free of a pointer never seen
//! allocated is skipped and counted; a realloc of such a pointer is an
//! allocation; a pointer allocated again while still live (its free was not
//! logged) first frees the stale block.

use std::collections::HashMap;

use crate::op::{Align, Op};

/// The pointer → id table of a log being read.
#[derive(Debug, Default)]
pub struct PointerIds {
    ids: HashMap<u64, u32>,
    next_id: u32,
    /// An op to emit after the one just returned (a stale block's free comes first).
    pending: Option<Op>,
    skipped: u64,
}

impl PointerIds {
    /// An empty table.
    pub fn new() -> PointerIds {
        PointerIds::default()
    }

    /// Calls skipped so far: frees of unknown pointers, failed calls.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Count a call that changes nothing (a failed allocation, free(NULL)).
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// The op queued behind the last one, if any.
    pub fn take_pending(&mut self) -> Option<Op> {
        self.pending.take()
    }

    /// A block of `size` bytes now lives at `pointer`.
    pub fn alloc(&mut self, pointer: u64, size: u64, align: Align) -> Op {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let alloc = Op::alloc(id, size, align);
        match self.ids.insert(pointer, id) {
            Some(stale) => {
                self.pending = Some(alloc);
                Op::Free { id: stale }
            }
            None => alloc,
        }
    }

    /// The block at `pointer` was freed.
    pub fn free(&mut self, pointer: u64) -> Option<Op> {
        match self.ids.remove(&pointer) {
            Some(id) => Some(Op::Free { id }),
            None => {
                self.skipped += 1;
                None
            }
        }
    }

    /// The block at `old` now has `size` bytes at `new`.
    pub fn realloc(&mut self, old: u64, new: u64, size: u64) -> Op {
        match self.ids.remove(&old) {
            Some(id) => match self.ids.insert(new, id) {
                Some(stale) => {
                    self.pending = Some(Op::Realloc { id, size });
                    Op::Free { id: stale }
                }
                None => Op::Realloc { id, size },
            },
            None => {
                self.skipped += 1;
                self.alloc(new, size, Align::UNSPECIFIED)
            }
        }
    }
}
