//! Errors of trace reading, writing and generation: each names the file, and
//! the line, byte or op where it went wrong.

use std::io;
use std::path::Path;

/// Something wrong with a trace or a workload spec.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Reading or writing failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        error: io::Error,
    },
    /// A text trace line that does not parse.
    #[error("{path}:{line}: expected {expected}, found `{found}`")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What should have been there.
        expected: String,
        /// What was there (abbreviated).
        found: String,
    },
    /// A native trace that fails its checksum, its length or its encoding.
    #[error("{path}: corrupt native trace at byte {offset}: {what}")]
    Corrupt {
        /// The file.
        path: String,
        /// Byte offset in the (decompressed) stream.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A well-formed op that makes no sense where it is (double free, …).
    #[error("{path}: op {}: {what}", .index + 1)]
    Invalid {
        /// The file, or the workload's name.
        path: String,
        /// 0-based op index (messages number ops from 1).
        index: u64,
        /// What is wrong.
        what: crate::validate::Misuse,
    },
    /// A well-formed op that makes no sense where it is, at a known line.
    #[error("{path}:{line}: op {}: {what}", .index + 1)]
    InvalidLine {
        /// The file.
        path: String,
        /// The line, from 1.
        line: u64,
        /// 0-based op index (messages number ops from 1).
        index: u64,
        /// What is wrong.
        what: crate::validate::Misuse,
    },
    /// A well-formed op that makes no sense where it is, at a known byte
    /// offset of a native trace.
    #[error("{path}: byte {offset}: op {}: {what}", .index + 1)]
    InvalidAt {
        /// The file.
        path: String,
        /// Byte offset in the (decompressed) stream where the op's
        /// encoding begins.
        offset: u64,
        /// 0-based op index (messages number ops from 1).
        index: u64,
        /// What is wrong.
        what: crate::validate::Misuse,
    },
    /// More allocations than a replay can number.
    #[error("{path}: op {}: more than {limit} allocations; a replay numbers at most that many", .index + 1)]
    TooManyAllocations {
        /// The file, or the workload's name.
        path: String,
        /// 0-based op index (messages number ops from 1).
        index: u64,
        /// The most there can be.
        limit: u64,
    },
    /// Live bytes past what 64 bits count: no heap holds them.
    #[error("{path}: op {}: the live blocks' sizes add up past 2^64 bytes; expected sizes a heap can hold", .index + 1)]
    LiveBytesOverflow {
        /// The file, or the workload's name.
        path: String,
        /// 0-based op index (messages number ops from 1).
        index: u64,
    },
    /// A workload spec or generator parameter that is wrong.
    #[error("bad workload `{workload}`: {message}")]
    Workload {
        /// The workload as written.
        workload: String,
        /// What was expected.
        message: String,
    },
}

impl TraceError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, error: io::Error) -> TraceError {
        TraceError::Io { path: path.display().to_string(), error }
    }

    /// A syntax error, with the offending text shortened for the message.
    pub fn syntax(path: &str, line: u64, expected: impl Into<String>, found: &[u8]) -> TraceError {
        let text = String::from_utf8_lossy(found);
        let text = text.trim_end_matches(['\r', '\n']);
        let found = if text.chars().count() > 60 {
            format!("{}…", text.chars().take(60).collect::<String>())
        } else {
            text.to_string()
        };
        TraceError::Syntax { path: path.to_string(), line, expected: expected.into(), found }
    }
}
