//! The one operation type every workload produces and every replay consumes.

use std::fmt;

/// An alignment: a power of two from 1 to 2^62, or unspecified (recorded
/// traces carry none; the replay supplies its default, 16 bytes like malloc's).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Align(u8);

impl Align {
    /// No alignment recorded.
    pub const UNSPECIFIED: Align = Align(u8::MAX);

    /// The alignment of `bytes`, if it is a power of two.
    pub fn new(bytes: u64) -> Option<Align> {
        (bytes.is_power_of_two() && bytes <= 1 << 62).then(|| Align(bytes.trailing_zeros() as u8))
    }

    /// From a log2; `None` above 62.
    pub fn from_log2(log2: u8) -> Option<Align> {
        (log2 <= 62).then_some(Align(log2))
    }

    /// The log2, or `None` when unspecified.
    pub fn log2(self) -> Option<u8> {
        (self != Align::UNSPECIFIED).then_some(self.0)
    }

    /// Bytes, or `None` when unspecified.
    pub fn bytes(self) -> Option<u64> {
        self.log2().map(|log2| 1 << log2)
    }

    /// Bytes, with `default` standing in for an unspecified alignment.
    #[inline]
    pub fn bytes_or(self, default: u64) -> u64 {
        if self == Align::UNSPECIFIED { default } else { 1 << self.0 }
    }

    /// Is it unspecified?
    pub fn is_unspecified(self) -> bool {
        self == Align::UNSPECIFIED
    }
}

impl fmt::Debug for Align {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bytes() {
            Some(bytes) => write!(f, "Align({bytes})"),
            None => f.write_str("Align(unspecified)"),
        }
    }
}

/// One allocator operation. Ids are dense `u32`s naming a block from its
/// allocation to its free; an id may be used again after its block is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Allocate `size` bytes aligned to `align` as block `id`.
    Alloc {
        /// The block's id.
        id: u32,
        /// Bytes requested.
        size: u64,
        /// Alignment requested.
        align: Align,
        /// The level of the memory system it goes to (user memory unless
        /// the workload says otherwise; see [`Level`]).
        level: Level,
        /// The address space it belongs to: the simulated process whose
        /// memory it is (0 for every recorded trace and for the kernel's own
        /// requests). An allocator with one heap ignores it; the kernel
        /// model keeps one user heap per space (see [`Level`]).
        space: u8,
    },
    /// Free block `id`.
    Free {
        /// The block's id.
        id: u32,
    },
    /// Resize block `id` to `size` bytes, keeping its alignment.
    Realloc {
        /// The block's id.
        id: u32,
        /// New size in bytes.
        size: u64,
    },
}

impl Op {
    /// An allocation of user memory (what every recorded trace holds).
    #[inline]
    pub fn alloc(id: u32, size: u64, align: Align) -> Op {
        Op::Alloc { id, size, align, level: Level::User, space: 0 }
    }

    /// The block this operation concerns.
    #[inline]
    pub fn id(&self) -> u32 {
        match *self {
            Op::Alloc { id, .. } | Op::Free { id } | Op::Realloc { id, .. } => id,
        }
    }

    /// The same operation on block `id`.
    #[inline]
    pub fn with_id(self, id: u32) -> Op {
        match self {
            Op::Alloc { size, align, level, space, .. } => Op::Alloc { id, size, align, level, space },
            Op::Free { .. } => Op::Free { id },
            Op::Realloc { size, .. } => Op::Realloc { id, size },
        }
    }

    /// The kind, for counting.
    #[inline]
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Alloc { .. } => OpKind::Alloc,
            Op::Free { .. } => OpKind::Free,
            Op::Realloc { .. } => OpKind::Realloc,
        }
    }
}

/// One op and the thread that makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadOp {
    /// The thread, `0..threads`.
    pub thread: u16,
    /// The op.
    pub op: Op,
}

impl ThreadOp {
    /// `op` on thread 0.
    #[inline]
    pub fn single(op: Op) -> ThreadOp {
        ThreadOp { thread: 0, op }
    }
}

/// The kind of an operation: the allocator call it is (defined with the
/// allocator contract, in heaplab-core, since results files name it too).
pub use heaplab_core::OpKind;

/// The level of the memory system a request goes to (defined with the
/// allocator contract, in heaplab-core, since allocators route by it).
pub use heaplab_core::Level;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_fits_in_sixteen_bytes() {
        // Traces of hundreds of millions of ops are held in memory for replay.
        assert_eq!(std::mem::size_of::<Op>(), 16);
    }

    #[test]
    fn alignments_are_powers_of_two_or_unspecified() {
        assert_eq!(Align::new(16).unwrap().bytes(), Some(16));
        assert_eq!(Align::new(1).unwrap().log2(), Some(0));
        assert_eq!(Align::new(24), None);
        assert_eq!(Align::new(0), None);
        assert_eq!(Align::UNSPECIFIED.bytes(), None);
        assert_eq!(Align::UNSPECIFIED.bytes_or(16), 16);
        assert_eq!(Align::new(64).unwrap().bytes_or(16), 64);
        assert_eq!(Align::from_log2(63), None);
    }
}
