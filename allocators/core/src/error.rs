//! The error types of the allocator contract.

/// An allocation that could not be served. The allocator is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// No free block can hold the request. Whether that is a lack of memory
    /// or fragmentation is the harness's call (it compares with free bytes).
    #[error("out of memory")]
    OutOfMemory,
    /// The allocator cannot serve this kind of request at all, whatever its
    /// state: an alignment above the arena's, a size above its largest block.
    #[error("unsupported request: {0}")]
    Unsupported(&'static str),
}

/// A broken invariant found by [`crate::Allocator::check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}{}", .offset.map(|o| format!(" (at arena offset {o})")).unwrap_or_default())]
pub struct InvariantViolation {
    /// What is wrong, in words.
    pub what: String,
    /// Where, if one place is to blame.
    pub offset: Option<usize>,
}

impl InvariantViolation {
    /// A violation at one arena offset.
    pub fn at(offset: usize, what: impl Into<String>) -> Self {
        InvariantViolation { what: what.into(), offset: Some(offset) }
    }

    /// A violation of a whole-heap property.
    pub fn global(what: impl Into<String>) -> Self {
        InvariantViolation { what: what.into(), offset: None }
    }
}

/// Return `Err(InvariantViolation)` from the enclosing `check()` unless a
/// condition holds.
///
/// `ensure!(cond, offset, "format", args…)` names the arena offset at fault;
/// `ensure!(cond, "format", args…)` is for whole-heap properties.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, @$offset:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::InvariantViolation::at($offset, format!($($fmt)+)));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::InvariantViolation::global(format!($($fmt)+)));
        }
    };
}

/// A spec string that names no allocator, or configures one wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad allocator spec `{spec}`: {message}")]
pub struct SpecError {
    /// The spec as the user wrote it.
    pub spec: String,
    /// What was expected, and what was found.
    pub message: String,
}

/// An allocator that could not be set up on the arena it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build `{spec}`: {message}")]
pub struct BuildError {
    /// The canonical spec of the configuration.
    pub spec: String,
    /// Why (typically: the arena is too small or badly aligned for it).
    pub message: String,
}
