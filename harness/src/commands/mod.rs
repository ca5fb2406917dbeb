//! The subcommands' command lines: each module holds the clap arguments
//! (doc comments as help) of one subcommand, or of a few that share their
//! work (`report` also holds `heapmap`; `run` also holds the hidden
//! `timing-process`), and turns them into calls of the library. The work
//! itself is in the `heaplab` library; the exit codes are in `main`.

pub mod compare;
pub mod exec;
pub mod export;
pub mod list;
pub mod merge;
pub mod record;
pub mod report;
pub mod run;
pub mod step;
pub mod trace;
