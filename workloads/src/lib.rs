//! heaplab's workloads: what the allocators are fed.
//!
//! - [`Op`]: the one operation type (alloc, free, realloc of dense ids) that
//!   every generator and trace reader produces and every replay consumes;
//!   [`Validator`] says what is wrong with an illegal one.
//! - [`synth`]: seeded synthetic workloads: size distributions, lifetime
//!   models, the phase shapes of Wilson et al., and named presets.
//! - [`formats`]: the CS:APP malloc-lab `.rep` format, glibc `mtrace` logs
//!   and heaplab's native binary format, each read (streaming) and written,
//!   zstd-compressed or not.
//! - [`info`]: a one-pass summary of a trace (`heaplab trace info`).
//! - [`Workload`]: a workload as the command line names it.
//!
//! Reproducibility: generators use ChaCha8 with an explicit seed and draw
//! sizes through rand_distr, whose floating-point sampling calls the
//! platform's `ln`/`exp`: streams are identical across runs and x86-64 Linux
//! machines (a test pins a hash); another platform's libm could differ in
//! the last bit of a sample and so, rarely, in a rounded size.

pub mod bundled;
mod error;
pub mod formats;
mod idmap;
pub mod info;
mod op;
pub mod synth;
pub mod threaded;
mod validate;
mod workload;

pub use error::TraceError;
pub use formats::Format;
pub use idmap::IdMap;
pub use op::{Align, Level, Op, OpKind, ThreadOp};
pub use validate::{Misuse, Validator};
pub use workload::Workload;
