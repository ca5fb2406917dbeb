//! heaplab's native binary trace format (`.hlt`): compact, checksummed,
//! streamed in constant memory, for traces of hundreds of millions of ops.
//!
//! # Layout (version 1, all integers little-endian)
//!
//! ```text
//! header   "HLTRACE\0"  u16 version  u16 flags(0)  u32 meta_len  meta (UTF-8)  u32 crc32(header so far)
//! block    u32 payload_len (≥ 1)  u32 op_count  payload  u32 crc32(payload_len, op_count, payload)
//! …
//! end      u32 0  u32 0  u64 total_ops  u32 crc32(those 16 bytes)
//! ```
//!
//! `meta` is free text saying where the trace came from (generator spec and
//! seed, or the recorded command). Blocks hold about 64 KiB of payload; a
//! reader needs one block in memory. A missing end record means the file
//! was truncated; a checksum mismatch, that it was corrupted.
//!
//! # Op encoding
//!
//! Each op starts with a LEB128 varint `key = value << 2 | kind`:
//!
//! | kind | op | value | then |
//! |---|---|---|---|
//! | 0 | alloc of the next new id, with the current alignment | size | — |
//! | 1 | free | zigzag(`last_id − id`) | — |
//! | 2 | realloc | zigzag(`last_id − id`) | varint size |
//! | 3 | extended: 0 = alloc with an explicit id, 1 = set the current alignment | sub-kind | alloc: varint zigzag(`id − next_id`), varint size; set: one byte, log2 or 255 for unspecified |
//!
//! `next_id` starts at 0 and becomes `id + 1` after every alloc; `last_id`
//! is `next_id − 1`. Generated and recorded traces number blocks in
//! allocation order, so most allocs are one or two bytes and frees of young
//! blocks one or two bytes too.

use std::io::{self, Read, Write};

use crate::error::TraceError;
use crate::op::{Align, Op};

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"HLTRACE\0";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// Payload bytes after which the writer closes a block.
const BLOCK_TARGET: usize = 64 << 10;
/// Largest payload a reader accepts (a corrupted length must not make it
/// allocate gigabytes).
const MAX_PAYLOAD: u32 = 16 << 20;
/// Largest meta text a reader accepts.
const MAX_META: u32 = 1 << 20;

const KIND_ALLOC: u64 = 0;
const KIND_FREE: u64 = 1;
const KIND_REALLOC: u64 = 2;
const KIND_EXTENDED: u64 = 3;
const EXTENDED_ALLOC: u64 = 0;
const EXTENDED_ALIGN: u64 = 1;

#[inline]
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[inline]
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

#[inline]
fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

fn align_byte(align: Align) -> u8 {
    align.log2().unwrap_or(u8::MAX)
}

/// Encoder state shared by writer and reader.
#[derive(Debug, Clone, Copy)]
struct State {
    next_id: u32,
    align: Align,
}

impl State {
    const START: State = State { next_id: 0, align: Align::UNSPECIFIED };

    fn last_id(&self) -> i64 {
        i64::from(self.next_id) - 1
    }
}

/// Writes ops in the native format.
#[derive(Debug)]
pub struct NativeWriter<W: Write> {
    out: W,
    payload: Vec<u8>,
    block_ops: u32,
    total_ops: u64,
    state: State,
}

impl<W: Write> NativeWriter<W> {
    /// Write the header, with `meta` saying where the trace came from.
    pub fn new(mut out: W, meta: &str) -> io::Result<NativeWriter<W>> {
        let meta = meta.as_bytes();
        let meta_len = u32::try_from(meta.len())
            .ok()
            .filter(|&len| len <= MAX_META)
            .ok_or_else(|| io::Error::other("trace meta text too long"))?;
        let mut header = Vec::with_capacity(20 + meta.len());
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes());
        header.extend_from_slice(&meta_len.to_le_bytes());
        header.extend_from_slice(meta);
        let crc = crc32fast::hash(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        out.write_all(&header)?;
        Ok(NativeWriter {
            out,
            payload: Vec::with_capacity(BLOCK_TARGET + 64),
            block_ops: 0,
            total_ops: 0,
            state: State::START,
        })
    }

    /// Append one op.
    pub fn push(&mut self, op: &Op) -> io::Result<()> {
        let payload = &mut self.payload;
        match *op {
            Op::Alloc { id, size, align } => {
                if align != self.state.align {
                    put_varint(payload, EXTENDED_ALIGN << 2 | KIND_EXTENDED);
                    payload.push(align_byte(align));
                    self.state.align = align;
                }
                if id == self.state.next_id && size < 1 << 62 {
                    put_varint(payload, size << 2 | KIND_ALLOC);
                } else {
                    put_varint(payload, EXTENDED_ALLOC << 2 | KIND_EXTENDED);
                    put_varint(payload, zigzag(i64::from(id) - i64::from(self.state.next_id)));
                    put_varint(payload, size);
                }
                self.state.next_id = id.wrapping_add(1);
            }
            Op::Free { id } => put_varint(payload, zigzag(self.state.last_id() - i64::from(id)) << 2 | KIND_FREE),
            Op::Realloc { id, size } => {
                put_varint(payload, zigzag(self.state.last_id() - i64::from(id)) << 2 | KIND_REALLOC);
                put_varint(payload, size);
            }
        }
        self.block_ops += 1;
        self.total_ops += 1;
        if self.payload.len() >= BLOCK_TARGET {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.block_ops == 0 {
            return Ok(());
        }
        let mut crc = crc32fast::Hasher::new();
        let len = (self.payload.len() as u32).to_le_bytes();
        let count = self.block_ops.to_le_bytes();
        crc.update(&len);
        crc.update(&count);
        crc.update(&self.payload);
        self.out.write_all(&len)?;
        self.out.write_all(&count)?;
        self.out.write_all(&self.payload)?;
        self.out.write_all(&crc.finalize().to_le_bytes())?;
        self.payload.clear();
        self.block_ops = 0;
        Ok(())
    }

    /// Write the last block and the end record; returns the output and the
    /// number of ops written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.flush_block()?;
        let mut end = [0u8; 16];
        end[8..].copy_from_slice(&self.total_ops.to_le_bytes());
        self.out.write_all(&end)?;
        self.out.write_all(&crc32fast::hash(&end).to_le_bytes())?;
        self.out.flush()?;
        Ok((self.out, self.total_ops))
    }
}

/// Reads a native trace block by block.
#[derive(Debug)]
pub struct NativeReader<R: Read> {
    input: R,
    path: String,
    meta: String,
    /// Bytes consumed so far.
    offset: u64,
    payload: Vec<u8>,
    ops: Vec<Op>,
    position: usize,
    state: State,
    total_ops: u64,
    finished: bool,
}

impl<R: Read> NativeReader<R> {
    /// Read and check the header.
    pub fn new(input: R, path: &str) -> Result<NativeReader<R>, TraceError> {
        let mut reader = NativeReader {
            input,
            path: path.to_string(),
            meta: String::new(),
            offset: 0,
            payload: Vec::new(),
            ops: Vec::new(),
            position: 0,
            state: State::START,
            total_ops: 0,
            finished: false,
        };
        let mut fixed = [0u8; 16];
        reader.read_exact(&mut fixed, "the header")?;
        if fixed[..8] != MAGIC {
            return Err(reader.corrupt(0, "not a heaplab native trace (bad magic)"));
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if version != VERSION {
            return Err(reader.corrupt(8, format!("format version {version}; this heaplab reads version {VERSION}")));
        }
        let meta_len = u32::from_le_bytes(fixed[12..16].try_into().expect("4 bytes"));
        if meta_len > MAX_META {
            return Err(reader.corrupt(12, format!("meta length {meta_len} is implausible")));
        }
        let mut meta = vec![0u8; meta_len as usize];
        reader.read_exact(&mut meta, "the header's meta text")?;
        let mut crc = [0u8; 4];
        reader.read_exact(&mut crc, "the header checksum")?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&fixed);
        hasher.update(&meta);
        if hasher.finalize() != u32::from_le_bytes(crc) {
            return Err(reader.corrupt(0, "header checksum mismatch"));
        }
        reader.meta = String::from_utf8(meta).map_err(|_| reader.corrupt(16, "meta text is not UTF-8"))?;
        Ok(reader)
    }

    /// Where the trace came from, as its writer said.
    pub fn meta(&self) -> &str {
        &self.meta
    }

    fn corrupt(&self, offset: u64, what: impl Into<String>) -> TraceError {
        TraceError::Corrupt { path: self.path.clone(), offset, what: what.into() }
    }

    fn read_exact(&mut self, buffer: &mut [u8], what: &str) -> Result<(), TraceError> {
        match self.input.read_exact(buffer) {
            Ok(()) => {
                self.offset += buffer.len() as u64;
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Err(self.corrupt(
                self.offset,
                format!("truncated: the file ends inside {what} (after {} ops)", self.total_ops),
            )),
            Err(error) => Err(TraceError::Io { path: self.path.clone(), error }),
        }
    }

    /// Read, check and decode the next block; false after the end record.
    fn next_block(&mut self) -> Result<bool, TraceError> {
        let start = self.offset;
        let mut head = [0u8; 8];
        self.read_exact(&mut head, "a block header (the end record is missing)")?;
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let count = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        if len == 0 {
            let mut tail = [0u8; 12];
            self.read_exact(&mut tail, "the end record")?;
            let total = u64::from_le_bytes(tail[..8].try_into().expect("8 bytes"));
            let mut end = [0u8; 16];
            end[..8].copy_from_slice(&head);
            end[8..].copy_from_slice(&tail[..8]);
            if count != 0 || crc32fast::hash(&end) != u32::from_le_bytes(tail[8..].try_into().expect("4 bytes")) {
                return Err(self.corrupt(start, "end record checksum mismatch"));
            }
            if total != self.total_ops {
                return Err(self
                    .corrupt(start, format!("the end record counts {total} ops, the blocks held {}", self.total_ops)));
            }
            let mut extra = [0u8; 1];
            if matches!(self.input.read(&mut extra), Ok(n) if n > 0) {
                return Err(self.corrupt(self.offset, "bytes after the end record"));
            }
            return Ok(false);
        }
        if len > MAX_PAYLOAD || count == 0 || u64::from(count) > u64::from(len) {
            return Err(self.corrupt(start, format!("implausible block: {len} bytes for {count} ops")));
        }
        let mut payload = std::mem::take(&mut self.payload);
        payload.resize(len as usize, 0);
        let read = self.read_exact(&mut payload, "a block");
        self.payload = payload;
        read?;
        let mut crc = [0u8; 4];
        self.read_exact(&mut crc, "a block checksum")?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(&self.payload);
        if hasher.finalize() != u32::from_le_bytes(crc) {
            return Err(self.corrupt(start, "block checksum mismatch"));
        }
        self.ops.clear();
        self.position = 0;
        match decode(&self.payload, count, &mut self.state, &mut self.ops) {
            Ok(()) => {
                self.total_ops += u64::from(count);
                Ok(true)
            }
            Err(position) => Err(self.corrupt(start + 8 + position as u64, "undecodable op")),
        }
    }
}

/// A LEB128 varint at `*position`; on failure, the position reached.
#[inline(always)]
fn read_varint(payload: &[u8], position: &mut usize) -> Result<u64, usize> {
    // Most keys and sizes fit one byte.
    match payload.get(*position) {
        Some(&byte) if byte < 0x80 => {
            *position += 1;
            return Ok(u64::from(byte));
        }
        None => return Err(*position),
        _ => {}
    }
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = *payload.get(*position).ok_or(*position)?;
        *position += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
        shift += 7;
        if shift > 63 {
            return Err(*position);
        }
    }
}

/// Decode `count` ops from `payload`; on failure, the payload position.
fn decode(payload: &[u8], count: u32, state: &mut State, ops: &mut Vec<Op>) -> Result<(), usize> {
    ops.reserve(count as usize);
    let mut position = 0;
    let varint = |position: &mut usize| read_varint(payload, position);
    let id_from_last = |state: &State, delta: u64, at: usize| -> Result<u32, usize> {
        u32::try_from(state.last_id() - unzigzag(delta)).map_err(|_| at)
    };
    while ops.len() < count as usize {
        let at = position;
        let key = varint(&mut position)?;
        let value = key >> 2;
        let op = match key & 3 {
            KIND_ALLOC => {
                let id = state.next_id;
                state.next_id = id.wrapping_add(1);
                Op::Alloc { id, size: value, align: state.align }
            }
            KIND_FREE => Op::Free { id: id_from_last(state, value, at)? },
            KIND_REALLOC => {
                let id = id_from_last(state, value, at)?;
                Op::Realloc { id, size: varint(&mut position)? }
            }
            _ => match value {
                EXTENDED_ALLOC => {
                    let delta = unzigzag(varint(&mut position)?);
                    let id = u32::try_from(i64::from(state.next_id) + delta).map_err(|_| at)?;
                    let size = varint(&mut position)?;
                    state.next_id = id.wrapping_add(1);
                    Op::Alloc { id, size, align: state.align }
                }
                EXTENDED_ALIGN => {
                    let byte = *payload.get(position).ok_or(position)?;
                    position += 1;
                    state.align =
                        if byte == u8::MAX { Align::UNSPECIFIED } else { Align::from_log2(byte).ok_or(at)? };
                    continue;
                }
                _ => return Err(at),
            },
        };
        ops.push(op);
    }
    if position != payload.len() { Err(position) } else { Ok(()) }
}

impl<R: Read> Iterator for NativeReader<R> {
    type Item = Result<Op, TraceError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(&op) = self.ops.get(self.position) {
            self.position += 1;
            return Some(Ok(op));
        }
        if self.finished {
            return None;
        }
        match self.next_block() {
            Ok(true) => {
                self.position = 1;
                Some(Ok(self.ops[0]))
            }
            Ok(false) => {
                self.finished = true;
                None
            }
            Err(error) => {
                self.finished = true;
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(ops: &[Op]) -> Vec<u8> {
        let mut writer = NativeWriter::new(Vec::new(), "test").unwrap();
        for op in ops {
            writer.push(op).unwrap();
        }
        writer.finish().unwrap().0
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Op>, TraceError> {
        NativeReader::new(bytes, "t.hlt")?.collect()
    }

    fn sample() -> Vec<Op> {
        let a = Align::new(16).unwrap();
        vec![
            Op::Alloc { id: 0, size: 24, align: a },
            Op::Alloc { id: 1, size: 100_000, align: a },
            Op::Free { id: 0 },
            Op::Alloc { id: 7, size: 3, align: Align::UNSPECIFIED },
            Op::Realloc { id: 1, size: 5 },
            Op::Alloc { id: 2, size: u64::MAX, align: Align::new(4096).unwrap() },
            Op::Free { id: 1 },
            Op::Free { id: 7 },
            Op::Free { id: 2 },
        ]
    }

    #[test]
    fn ops_round_trip_with_their_meta() {
        let bytes = encode(&sample());
        assert_eq!(decode_all(&bytes).unwrap(), sample());
        assert_eq!(NativeReader::new(bytes.as_slice(), "t").unwrap().meta(), "test");
    }

    #[test]
    fn typical_ops_take_one_or_two_bytes() {
        let mut ops = Vec::new();
        for id in 0..1000u32 {
            ops.push(Op::Alloc { id, size: 16 + u64::from(id % 100), align: Align::UNSPECIFIED });
            if id >= 3 {
                ops.push(Op::Free { id: id - 3 });
            }
        }
        let bytes = encode(&ops);
        let per_op = bytes.len() as f64 / ops.len() as f64;
        assert!(per_op < 1.7, "{per_op} bytes per op");
    }

    #[test]
    fn truncation_and_corruption_are_detected_not_read_as_garbage() {
        let bytes = encode(&sample());
        for cut in [0, 5, 20, bytes.len() - 30, bytes.len() - 1] {
            let error = decode_all(&bytes[..cut]).unwrap_err().to_string();
            assert!(error.contains("truncated") || error.contains("bad magic"), "cut at {cut}: {error}");
        }
        for flip in [2, 14, 30, bytes.len() - 25, bytes.len() - 6] {
            let mut corrupted = bytes.clone();
            corrupted[flip] ^= 0x20;
            let error = decode_all(&corrupted).unwrap_err().to_string();
            assert!(error.contains("corrupt native trace"), "flip at {flip}: {error}");
        }
        let mut extended = bytes.clone();
        extended.push(0);
        assert!(decode_all(&extended).unwrap_err().to_string().contains("bytes after the end record"));
    }

    #[test]
    fn an_empty_trace_is_valid() {
        assert_eq!(decode_all(&encode(&[])).unwrap(), []);
    }
}
