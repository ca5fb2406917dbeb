//! Why a run stopped.

use heaplab_core::{ArenaError, BuildError, SpecError};
use heaplab_workloads::TraceError;

use crate::metrics::VerifyError;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An allocator spec is not one this build knows.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A workload could not be prepared.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// An allocator could not be set up.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The arena could not be created.
    #[error("cannot create a {bytes}-byte arena: {error}")]
    Arena {
        /// Requested size.
        bytes: u64,
        /// Why not.
        error: ArenaError,
    },
    /// `--verify` found a broken invariant.
    #[error("{allocator} on {workload}: {error}")]
    Verify {
        /// The allocator.
        allocator: String,
        /// The workload.
        workload: String,
        /// What check() said, and where.
        error: VerifyError,
    },
    /// Ctrl-C: the run stopped between cells (what finished stands).
    #[error("interrupted")]
    Interrupted,
    /// A timing process did not do what the protocol says.
    #[error("timing process {process}: {what}")]
    Protocol {
        /// Which process.
        process: usize,
        /// What went wrong.
        what: String,
    },
    /// Settings, or a timing plan, that cannot be run.
    #[error("{0}")]
    Plan(String),
    /// The other build of `--against` failed or does not take turns.
    #[error("{0}")]
    OtherBuild(String),
    /// The journal cannot be read, or is not this run's.
    #[error(transparent)]
    Journal(#[from] super::JournalError),
    /// Writing results, or talking to a child process, failed.
    #[error("writing results: {0}")]
    Io(#[from] std::io::Error),
}
