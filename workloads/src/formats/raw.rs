//! The raw call logs `heaplab record`'s preload library writes (one per
//! process), read as ops. The layout is documented in the
//! `heaplab-recorder` crate: a 16-byte header (`HLRAW\0\0\x02`, the pid),
//! then 32-byte records `kind, thread, align, pointer, result, size`.
//! Version 1 logs (`\x01`, no thread) read as one thread.
//!
//! Calls become ops as glibc defines them: `malloc`, `calloc` and the
//! aligned allocators allocate (a NULL result is a failed call, skipped);
//! `free(NULL)` does nothing; `realloc(NULL, n)` allocates; `realloc(p, 0)`
//! frees `p` (and returns NULL); a realloc that returns NULL for `n > 0`
//! failed and leaves `p` alone. Pointers become ids as
//! [`PointerIds`](super::pointers::PointerIds) describes; frees of blocks a
//! forked child inherited from its parent are skipped and counted.

use std::io::Read;

use super::pointers::PointerIds;
use crate::error::TraceError;
use crate::op::{Align, Op};

/// The header's magic (version 2, with thread ids).
pub const MAGIC: [u8; 8] = *b"HLRAW\0\0\x02";
/// Version 1's magic: no thread ids.
pub const MAGIC_V1: [u8; 8] = *b"HLRAW\0\0\x01";
const RECORD_BYTES: usize = 32;

const MALLOC: u32 = 1;
const CALLOC: u32 = 2;
const REALLOC: u32 = 3;
const FREE: u32 = 4;
const ALIGNED: u32 = 5;

/// A streaming reader of a raw log.
#[derive(Debug)]
pub struct RawReader<R> {
    input: R,
    path: String,
    pid: u32,
    pointers: PointerIds,
    records: u64,
    finished: bool,
    /// Version 2: records carry the thread.
    threaded: bool,
    /// The thread of the record read last.
    thread: u16,
}

impl<R: Read> RawReader<R> {
    /// Read the header.
    pub fn new(mut input: R, path: &str) -> Result<RawReader<R>, TraceError> {
        let mut header = [0u8; 16];
        input.read_exact(&mut header).map_err(|_| TraceError::Corrupt {
            path: path.to_string(),
            offset: 0,
            what: "too short for a heaplab record log header".into(),
        })?;
        let threaded = match header[..8].try_into().expect("8 bytes") {
            MAGIC => true,
            MAGIC_V1 => false,
            _ => {
                return Err(TraceError::Corrupt {
                    path: path.to_string(),
                    offset: 0,
                    what: "not a heaplab record log (bad magic)".into(),
                });
            }
        };
        let pid = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        Ok(RawReader {
            input,
            path: path.to_string(),
            pid,
            pointers: PointerIds::new(),
            records: 0,
            finished: false,
            threaded,
            thread: 0,
        })
    }

    /// The recorder's thread id of the op returned last (0 in a version 1
    /// log).
    pub fn thread(&self) -> u16 {
        self.thread
    }

    /// The process the log came from.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Calls read so far.
    pub fn calls(&self) -> u64 {
        self.records
    }

    /// Calls that changed nothing: failed calls, `free(NULL)`, frees of
    /// inherited blocks.
    pub fn skipped(&self) -> u64 {
        self.pointers.skipped()
    }

    /// The op of one call, if it makes one.
    fn op(&mut self, record: &[u8; RECORD_BYTES]) -> Result<Option<Op>, TraceError> {
        let field = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("8 bytes"));
        let (kind, align) = if self.threaded {
            self.thread = (field(0) >> 16) as u16;
            (field(0) as u16 as u32, (field(0) >> 32) as u32)
        } else {
            (field(0) as u32, (field(0) >> 32) as u32)
        };
        let (pointer, result, size) = (field(8), field(16), field(24));
        let p = &mut self.pointers;
        Ok(match kind {
            MALLOC | CALLOC | ALIGNED if result == 0 => {
                p.skip();
                None
            }
            MALLOC | CALLOC => Some(p.alloc(result, size, Align::UNSPECIFIED)),
            ALIGNED => Some(p.alloc(result, size, Align::new(u64::from(align)).unwrap_or(Align::UNSPECIFIED))),
            FREE if pointer == 0 => {
                p.skip();
                None
            }
            FREE => p.free(pointer),
            REALLOC if pointer == 0 && result == 0 => {
                p.skip();
                None
            }
            REALLOC if pointer == 0 => Some(p.alloc(result, size, Align::UNSPECIFIED)),
            REALLOC if size == 0 => p.free(pointer),
            REALLOC if result == 0 => {
                p.skip();
                None
            }
            REALLOC => Some(p.realloc(pointer, result, size)),
            _ => {
                return Err(TraceError::Corrupt {
                    path: self.path.clone(),
                    offset: 16 + (self.records - 1) * RECORD_BYTES as u64,
                    what: format!("unknown call kind {kind}"),
                });
            }
        })
    }
}

impl<R: Read> Iterator for RawReader<R> {
    type Item = Result<Op, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(op) = self.pointers.take_pending() {
            return Some(Ok(op));
        }
        while !self.finished {
            let mut record = [0u8; RECORD_BYTES];
            // A process killed in the middle of writing leaves a partial
            // last record: the log ends at the last whole one.
            let mut filled = 0;
            while filled < RECORD_BYTES {
                match self.input.read(&mut record[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        self.finished = true;
                        return Some(Err(TraceError::Io { path: self.path.clone(), error }));
                    }
                }
            }
            if filled < RECORD_BYTES {
                self.finished = true;
                return None;
            }
            self.records += 1;
            match self.op(&record) {
                Ok(Some(op)) => return Some(Ok(op)),
                Ok(None) => {}
                Err(error) => {
                    self.finished = true;
                    return Some(Err(error));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(records: &[(u32, u32, u64, u64, u64)]) -> Vec<u8> {
        log_on(records.iter().map(|&(kind, align, pointer, result, size)| (0, kind, align, pointer, result, size)))
    }

    fn log_on(records: impl IntoIterator<Item = (u16, u32, u32, u64, u64, u64)>) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&42u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        for (thread, kind, align, pointer, result, size) in records {
            bytes.extend_from_slice(
                &(u64::from(kind) | u64::from(thread) << 16 | (u64::from(align) << 32)).to_le_bytes(),
            );
            for value in [pointer, result, size] {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
        }
        bytes
    }

    #[test]
    fn calls_become_ops_as_glibc_defines_them() {
        let bytes = log(&[
            (MALLOC, 0, 0, 0x100, 24),
            (CALLOC, 0, 0, 0x200, 40),
            (ALIGNED, 64, 0, 0x400, 100),
            (REALLOC, 0, 0x100, 0x500, 48),
            (REALLOC, 0, 0, 0x600, 8),
            (MALLOC, 0, 0, 0, 1 << 60),
            (FREE, 0, 0, 0, 0),
            (FREE, 0, 0x9999, 0, 0),
            (REALLOC, 0, 0x600, 0, 0),
            (FREE, 0, 0x500, 0, 0),
            (FREE, 0, 0x200, 0, 0),
            (FREE, 0, 0x400, 0, 0),
        ]);
        let mut reader = RawReader::new(bytes.as_slice(), "t.raw").unwrap();
        let ops: Vec<Op> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        let u = Align::UNSPECIFIED;
        assert_eq!(
            ops,
            [
                Op::alloc(0, 24, u),
                Op::alloc(1, 40, u),
                Op::alloc(2, 100, Align::new(64).unwrap()),
                Op::Realloc { id: 0, size: 48 },
                Op::alloc(3, 8, u),
                Op::Free { id: 3 },
                Op::Free { id: 0 },
                Op::Free { id: 1 },
                Op::Free { id: 2 },
            ]
        );
        assert_eq!((reader.pid(), reader.calls(), reader.skipped()), (42, 12, 3));
    }

    #[test]
    fn each_op_has_its_thread_and_version_1_logs_are_one_thread() {
        let bytes = log_on([(0, MALLOC, 0, 0, 0x100, 24), (3, FREE, 0, 0x100, 0, 0), (1, MALLOC, 0, 0, 0x100, 8)]);
        let mut reader = RawReader::new(bytes.as_slice(), "t.raw").unwrap();
        let mut threads = Vec::new();
        while let Some(op) = reader.next() {
            op.unwrap();
            threads.push(reader.thread());
        }
        assert_eq!(threads, [0, 3, 1]);
        // Version 1: `kind` was a u32 and there was no thread.
        let mut old = bytes.clone();
        old[..8].copy_from_slice(&MAGIC_V1);
        old[16 + 32..16 + 40].copy_from_slice(&u64::from(FREE).to_le_bytes());
        let mut reader = RawReader::new(old.as_slice(), "t.raw").unwrap();
        assert_eq!(reader.by_ref().count(), 3);
        assert_eq!(reader.thread(), 0);
    }

    #[test]
    fn a_partial_last_record_ends_the_log_and_garbage_is_refused() {
        let mut bytes = log(&[(MALLOC, 0, 0, 0x100, 24)]);
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(RawReader::new(bytes.as_slice(), "t").unwrap().count(), 1);
        assert!(RawReader::new(&b"nonsense"[..], "t").unwrap_err().to_string().contains("too short"));
        let bad = log(&[(77, 0, 0, 0x100, 24)]);
        assert!(
            RawReader::new(bad.as_slice(), "t")
                .unwrap()
                .next()
                .unwrap()
                .unwrap_err()
                .to_string()
                .contains("unknown call kind 77")
        );
    }
}
