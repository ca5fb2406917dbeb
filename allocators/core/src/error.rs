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
#[error("cannot build `{spec}`: {reason}")]
pub struct BuildError {
    /// The canonical spec of the configuration.
    pub spec: String,
    /// Why.
    pub reason: SetupError,
}

/// Why an allocator cannot be set up: what its configuration asks of the
/// arena, or a parameter outside what it supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The arena cannot hold what the configuration needs.
    #[error("the arena ({arena} bytes) is too small: {needs}")]
    ArenaTooSmall {
        /// Its size.
        arena: usize,
        /// What it would need to hold.
        needs: String,
    },
    /// The arena is larger than the configuration can manage.
    #[error("the arena ({arena} bytes) is too large: {limit}")]
    ArenaTooLarge {
        /// Its size.
        arena: usize,
        /// The limit, and what to change.
        limit: String,
    },
    /// The arena is not aligned enough.
    #[error("the arena must be aligned to {align} bytes")]
    Misaligned {
        /// The alignment needed.
        align: usize,
    },
    /// A parameter outside what the allocator supports.
    #[error("`{name}` must {rule}, found {found}")]
    Parameter {
        /// The parameter, as specs name it.
        name: &'static str,
        /// What it must do or be (`be at most 10`).
        rule: String,
        /// What it is.
        found: String,
    },
    /// A third-party allocator refused the arena or its settings.
    #[error("{0}")]
    Peer(String),
}

impl SetupError {
    /// A parameter outside what is supported.
    pub fn parameter(name: &'static str, rule: impl Into<String>, found: impl std::fmt::Display) -> SetupError {
        SetupError::Parameter { name, rule: rule.into(), found: found.to_string() }
    }
}
