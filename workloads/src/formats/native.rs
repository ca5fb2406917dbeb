//! heaplab's native binary trace format (`.hlt`): compact, checksummed,
//! streamed in constant memory, for traces of hundreds of millions of ops.
//!
//! # Layout (all integers little-endian)
//!
//! ```text
//! header   "HLTRACE\0"  u16 version  u16 flags  u32 meta_len  meta (UTF-8)  u32 crc32(header so far)
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
//! # Versions and optional fields
//!
//! Version 1 has no optional fields: its flags are 0. Version 2 adds them,
//! each named by a bit of `flags` and carried by an extended op (below):
//!
//! | flag bit | field | extended sub-kind |
//! |---|---|---|
//! | 0 | the thread that makes each op (dense ids from 0, in creation order) | 2: set the current thread |
//! | 1 | the level of the memory system each allocation goes to (0 user, 1 kmalloc, 2 vmalloc, 3 page), and its address space (the simulated process, 0 unless set) | 3: set the current level; 4: set the current address space |
//!
//! Later fields take the next bits and sub-kinds. A reader refuses a flag it does not know, naming it, rather
//! than misread the ops. The writer writes version 1 when no optional field
//! is used, so such a trace reads in every heaplab; version 1 files read as
//! version 2 files without flags (one thread, every request user memory).
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
//! | 3 | extended: 0 = alloc with an explicit id, 1 = set the current alignment, 2 = set the current thread, 3 = set the current level, 4 = set the current address space | sub-kind | alloc: varint zigzag(`id − next_id`), varint size; alignment: one byte, log2 or 255 for unspecified; thread: varint id; level: one byte; space: varint id |
//!
//! `next_id` starts at 0 and becomes `id + 1` after every alloc; `last_id`
//! is `next_id − 1`. Generated and recorded traces number blocks in
//! allocation order, so most allocs are one or two bytes and frees of young
//! blocks one or two bytes too. The current thread starts at 0, the current
//! level at user, the current space at 0; each is set only when it changes (a set is not an op and
//! is not counted).

use std::io::{self, Read, Write};

use crate::error::TraceError;
use crate::op::{Align, Level, Op};
use crate::validate::Validator;

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"HLTRACE\0";
/// The newest format version this code reads (and writes, when an
/// optional field is used).
pub const VERSION: u16 = 2;
/// Flag bit 0: ops carry their thread.
pub const FLAG_THREADS: u16 = 1;
/// Flag bit 1: allocations carry their level.
pub const FLAG_LEVELS: u16 = 2;
/// The flags this code knows.
const KNOWN_FLAGS: u16 = FLAG_THREADS | FLAG_LEVELS;
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
const EXTENDED_THREAD: u64 = 2;
const EXTENDED_LEVEL: u64 = 3;
const EXTENDED_SPACE: u64 = 4;

/// The optional fields a trace carries (each a flag of the header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fields {
    /// Each op's thread.
    pub threads: bool,
    /// Each allocation's level.
    pub levels: bool,
}

impl Fields {
    fn flags(self) -> u16 {
        (if self.threads { FLAG_THREADS } else { 0 }) | if self.levels { FLAG_LEVELS } else { 0 }
    }
}

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
    thread: u16,
    level: Level,
    space: u8,
}

impl State {
    const START: State = State { next_id: 0, align: Align::UNSPECIFIED, thread: 0, level: Level::User, space: 0 };

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
    flags: u16,
}

impl<W: Write> NativeWriter<W> {
    /// Write the header (version 1: ops without threads), with `meta`
    /// saying where the trace came from.
    pub fn new(out: W, meta: &str) -> io::Result<NativeWriter<W>> {
        NativeWriter::with_flags(out, meta, 0)
    }

    /// Write the header of a trace whose ops carry their thread (version
    /// 2); push ops with [`NativeWriter::push_on`].
    pub fn with_threads(out: W, meta: &str) -> io::Result<NativeWriter<W>> {
        NativeWriter::with_flags(out, meta, FLAG_THREADS)
    }

    /// Write the header of a trace with the optional `fields` (version 1
    /// when there are none).
    pub fn with_fields(out: W, meta: &str, fields: Fields) -> io::Result<NativeWriter<W>> {
        NativeWriter::with_flags(out, meta, fields.flags())
    }

    fn with_flags(mut out: W, meta: &str, flags: u16) -> io::Result<NativeWriter<W>> {
        let meta = meta.as_bytes();
        let meta_len = u32::try_from(meta.len())
            .ok()
            .filter(|&len| len <= MAX_META)
            .ok_or_else(|| io::Error::other("trace meta text too long"))?;
        let mut header = Vec::with_capacity(20 + meta.len());
        header.extend_from_slice(&MAGIC);
        let version: u16 = if flags == 0 { 1 } else { VERSION };
        header.extend_from_slice(&version.to_le_bytes());
        header.extend_from_slice(&flags.to_le_bytes());
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
            flags,
        })
    }

    /// Append one op (of thread 0).
    pub fn push(&mut self, op: &Op) -> io::Result<()> {
        self.push_on(0, op)
    }

    /// Append one op made by `thread`; a writer without threads takes only
    /// thread 0.
    pub fn push_on(&mut self, thread: u16, op: &Op) -> io::Result<()> {
        let payload = &mut self.payload;
        if thread != self.state.thread {
            if self.flags & FLAG_THREADS == 0 {
                return Err(io::Error::other(format!("an op of thread {thread} in a trace written without threads")));
            }
            put_varint(payload, EXTENDED_THREAD << 2 | KIND_EXTENDED);
            put_varint(payload, u64::from(thread));
            self.state.thread = thread;
        }
        match *op {
            Op::Alloc { id, size, align, level, space } => {
                if space != self.state.space {
                    if self.flags & FLAG_LEVELS == 0 {
                        return Err(io::Error::other(format!(
                            "a request of address space {space} in a trace written without levels"
                        )));
                    }
                    put_varint(payload, EXTENDED_SPACE << 2 | KIND_EXTENDED);
                    put_varint(payload, u64::from(space));
                    self.state.space = space;
                }
                if level != self.state.level {
                    if self.flags & FLAG_LEVELS == 0 {
                        return Err(io::Error::other(format!(
                            "a {} request in a trace written without levels",
                            level.name()
                        )));
                    }
                    put_varint(payload, EXTENDED_LEVEL << 2 | KIND_EXTENDED);
                    payload.push(level as u8);
                    self.state.level = level;
                }
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
    /// The thread of each of `ops`, when the trace has threads.
    threads: Vec<u16>,
    flags: u16,
    position: usize,
    state: State,
    total_ops: u64,
    finished: bool,
    /// Every op checked as it is decoded, so that a misuse (a double free,
    /// …) is named with its byte offset.
    validator: Validator,
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
            threads: Vec::new(),
            flags: 0,
            position: 0,
            state: State::START,
            total_ops: 0,
            finished: false,
            validator: Validator::new(),
        };
        let mut fixed = [0u8; 16];
        reader.read_exact(&mut fixed, "the header")?;
        if fixed[..8] != MAGIC {
            return Err(reader.corrupt(0, "not a heaplab native trace (bad magic)"));
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if !(1..=VERSION).contains(&version) {
            return Err(
                reader.corrupt(8, format!("format version {version}; this heaplab reads versions 1 to {VERSION}"))
            );
        }
        let flags = u16::from_le_bytes([fixed[10], fixed[11]]);
        let unknown = if version == 1 { flags } else { flags & !KNOWN_FLAGS };
        if unknown != 0 {
            return Err(reader.corrupt(
                10,
                format!(
                    "version {version} trace with optional fields this heaplab does not know (flags {unknown:#06x}): a newer heaplab wrote it"
                ),
            ));
        }
        reader.flags = flags;
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

    /// Do the ops carry their thread?
    pub fn has_threads(&self) -> bool {
        self.flags & FLAG_THREADS != 0
    }

    /// Do the allocations carry their level?
    pub fn has_levels(&self) -> bool {
        self.flags & FLAG_LEVELS != 0
    }

    /// The thread of the op returned last (0 in a trace without threads).
    #[inline]
    pub fn thread(&self) -> u16 {
        match self.position.checked_sub(1) {
            Some(index) => self.threads.get(index).copied().unwrap_or(0),
            None => 0,
        }
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
        self.threads.clear();
        self.position = 0;
        let levels = self.has_levels();
        let threads = self.has_threads().then_some(&mut self.threads);
        let before = self.state;
        if let Err(position) = decode(&self.payload, count, &mut self.state, &mut self.ops, threads, levels) {
            return Err(self.corrupt(start + 8 + position as u64, "undecodable op"));
        }
        for (index, op) in self.ops.iter().enumerate() {
            if let Err(what) = self.validator.check(op) {
                // Rare: decode the block again to the op, for its offset.
                let mut state = before;
                let at =
                    decode_prefix(&self.payload, index as u32, &mut state, &mut Vec::new(), None, levels).unwrap_or(0);
                return Err(TraceError::InvalidAt {
                    path: self.path.clone(),
                    offset: start + 8 + at as u64,
                    index: self.total_ops + index as u64,
                    what,
                });
            }
        }
        self.total_ops += u64::from(count);
        Ok(true)
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

/// Decode `count` ops from `payload`, and with `threads` (a trace with
/// threads) the thread of each; `levels`: the trace's allocations carry
/// their level. On failure, the payload position.
fn decode(
    payload: &[u8],
    count: u32,
    state: &mut State,
    ops: &mut Vec<Op>,
    threads: Option<&mut Vec<u16>>,
    levels: bool,
) -> Result<(), usize> {
    let position = decode_prefix(payload, count, state, ops, threads, levels)?;
    if position != payload.len() { Err(position) } else { Ok(()) }
}

/// Decode the first `count` ops of `payload` (see [`decode`]); the
/// position after them.
#[inline(always)]
fn decode_prefix(
    payload: &[u8],
    count: u32,
    state: &mut State,
    ops: &mut Vec<Op>,
    mut threads: Option<&mut Vec<u16>>,
    levels: bool,
) -> Result<usize, usize> {
    ops.reserve(count as usize);
    let mut position = 0;
    let varint = |position: &mut usize| read_varint(payload, position);
    let id_from_last = |state: &State, delta: u64, at: usize| -> Result<u32, usize> {
        state.last_id().checked_sub(unzigzag(delta)).and_then(|id| u32::try_from(id).ok()).ok_or(at)
    };
    while ops.len() < count as usize {
        let at = position;
        let key = varint(&mut position)?;
        let value = key >> 2;
        let op = match key & 3 {
            KIND_ALLOC => {
                let id = state.next_id;
                state.next_id = id.wrapping_add(1);
                Op::Alloc { id, size: value, align: state.align, level: state.level, space: state.space }
            }
            KIND_FREE => Op::Free { id: id_from_last(state, value, at)? },
            KIND_REALLOC => {
                let id = id_from_last(state, value, at)?;
                Op::Realloc { id, size: varint(&mut position)? }
            }
            _ => match value {
                EXTENDED_ALLOC => {
                    // A delta of any 64 bits: added checked, never wrapped.
                    let delta = unzigzag(varint(&mut position)?);
                    let id =
                        i64::from(state.next_id).checked_add(delta).and_then(|id| u32::try_from(id).ok()).ok_or(at)?;
                    let size = varint(&mut position)?;
                    state.next_id = id.wrapping_add(1);
                    Op::Alloc { id, size, align: state.align, level: state.level, space: state.space }
                }
                EXTENDED_ALIGN => {
                    let byte = *payload.get(position).ok_or(position)?;
                    position += 1;
                    state.align =
                        if byte == u8::MAX { Align::UNSPECIFIED } else { Align::from_log2(byte).ok_or(at)? };
                    continue;
                }
                EXTENDED_THREAD if threads.is_some() => {
                    state.thread = u16::try_from(varint(&mut position)?).map_err(|_| at)?;
                    continue;
                }
                EXTENDED_LEVEL if levels => {
                    let byte = *payload.get(position).ok_or(position)?;
                    position += 1;
                    state.level = Level::from_index(byte).ok_or(at)?;
                    continue;
                }
                EXTENDED_SPACE if levels => {
                    state.space = u8::try_from(varint(&mut position)?).map_err(|_| at)?;
                    continue;
                }
                _ => return Err(at),
            },
        };
        ops.push(op);
        if let Some(threads) = threads.as_deref_mut() {
            threads.push(state.thread);
        }
    }
    Ok(position)
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

    /// Ids come from 64-bit deltas: one that would leave the id range (or
    /// overflow the sum) is an undecodable op, never a wrapped id.
    #[test]
    fn an_id_delta_out_of_range_is_undecodable_not_wrapped() {
        let payload = |values: &[u64]| {
            let mut out = Vec::new();
            for &value in values {
                put_varint(&mut out, value);
            }
            out
        };
        // An extended alloc whose delta overflows next_id + delta.
        let far = payload(&[(EXTENDED_ALLOC << 2) | KIND_EXTENDED, zigzag(i64::MAX), 5]);
        let mut state = State { next_id: 7, ..State::START };
        assert_eq!(decode(&far, 1, &mut state, &mut Vec::new(), None, false), Err(0));
        // A free of an id below 0.
        let below = payload(&[(((1u64 << 40) << 1) << 2) | KIND_FREE]);
        let mut start = State::START;
        assert_eq!(decode(&below, 1, &mut start, &mut Vec::new(), None, false), Err(0));
    }

    /// A misuse is named with its byte offset: where the op's encoding
    /// begins, after the ops before it in its block.
    #[test]
    fn a_misuse_names_its_byte_offset_and_op() {
        let ops = [Op::alloc(0, 24, Align::UNSPECIFIED), Op::Free { id: 0 }, Op::Free { id: 0 }];
        let bytes = encode(&ops);
        let error = decode_all(&bytes).unwrap_err();
        let TraceError::InvalidAt { offset, index, .. } = error else { panic!("{error}") };
        assert_eq!(index, 2);
        // The two ops before it take a byte each (a key, with the alloc's
        // size and the free's id delta in it); the block header is 8 bytes.
        let header = 16 + "test".len() as u64 + 4;
        assert_eq!(offset, header + 8 + 2, "{error}");
        assert!(error.to_string().starts_with(&format!("t.hlt: byte {offset}: op 3: double free of id 0")), "{error}");
    }

    fn sample() -> Vec<Op> {
        let a = Align::new(16).unwrap();
        vec![
            Op::alloc(0, 24, a),
            Op::alloc(1, 100_000, a),
            Op::Free { id: 0 },
            Op::alloc(7, 3, Align::UNSPECIFIED),
            Op::Realloc { id: 1, size: 5 },
            Op::alloc(2, u64::MAX, Align::new(4096).unwrap()),
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
            ops.push(Op::alloc(id, 16 + u64::from(id % 100), Align::UNSPECIFIED));
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
    fn threads_round_trip_and_cost_a_record_only_when_they_change() {
        let ops = sample();
        let threads: Vec<u16> = (0..ops.len()).map(|i| [0, 0, 1, 1, 1, 300, 0, 2, 2][i]).collect();
        let mut writer = NativeWriter::with_threads(Vec::new(), "test").unwrap();
        for (op, &thread) in ops.iter().zip(&threads) {
            writer.push_on(thread, op).unwrap();
        }
        let bytes = writer.finish().unwrap().0;
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2, "version 2");
        let mut reader = NativeReader::new(bytes.as_slice(), "t").unwrap();
        assert!(reader.has_threads());
        let mut read = Vec::new();
        while let Some(op) = reader.next() {
            read.push((reader.thread(), op.unwrap()));
        }
        assert_eq!(read, threads.iter().copied().zip(ops.iter().copied()).collect::<Vec<_>>());
        // Four changes of thread: two bytes each, 300's three.
        assert_eq!(bytes.len(), encode(&sample()).len() + 9);
        // A writer without threads refuses one.
        let mut plain = NativeWriter::new(Vec::new(), "").unwrap();
        assert!(plain.push_on(1, &ops[0]).is_err());
    }

    #[test]
    fn version_1_traces_read_as_one_thread_and_unknown_fields_are_refused() {
        // What heaplab wrote before threads existed: version 1, flags 0.
        let bytes = encode(&sample());
        assert_eq!(&bytes[8..12], &[1, 0, 0, 0]);
        let mut reader = NativeReader::new(bytes.as_slice(), "old.hlt").unwrap();
        assert!(!reader.has_threads());
        assert!(reader.by_ref().all(|op| op.is_ok()));
        assert_eq!(reader.thread(), 0);
        // A flag from the future, header checksum fixed up.
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&[2, 0, 4, 0]);
        let meta_end = 16 + 4;
        let crc = crc32fast::hash(&newer[..meta_end]);
        newer[meta_end..meta_end + 4].copy_from_slice(&crc.to_le_bytes());
        let error = decode_all(&newer).unwrap_err().to_string();
        assert!(error.contains("optional fields this heaplab does not know (flags 0x0004)"), "{error}");
        // A thread record in a trace without the flag is corrupt.
        let mut writer = NativeWriter::with_threads(Vec::new(), "test").unwrap();
        writer.push_on(1, &sample()[0]).unwrap();
        let mut bytes = writer.finish().unwrap().0;
        bytes[10] = 0;
        let crc = crc32fast::hash(&bytes[..meta_end]);
        bytes[meta_end..meta_end + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(decode_all(&bytes).unwrap_err().to_string().contains("undecodable op"));
    }

    #[test]
    fn levels_round_trip_and_a_trace_without_them_refuses_one() {
        let a = Align::new(4096).unwrap();
        let ops = vec![
            Op::Alloc { id: 0, size: 4096, align: a, level: Level::Page, space: 0 },
            Op::Alloc { id: 1, size: 100, align: a, level: Level::Kmalloc, space: 0 },
            Op::Alloc { id: 2, size: 65536, align: a, level: Level::Vmalloc, space: 0 },
            Op::Alloc { id: 3, size: 24, align: a, level: Level::User, space: 0 },
            Op::Free { id: 2 },
            Op::Alloc { id: 4, size: 4096, align: a, level: Level::Page, space: 0 },
            Op::Alloc { id: 5, size: 40, align: a, level: Level::User, space: 7 },
            Op::Alloc { id: 6, size: 8, align: a, level: Level::Kmalloc, space: 0 },
        ];
        let fields = Fields { threads: false, levels: true };
        let mut writer = NativeWriter::with_fields(Vec::new(), "levels", fields).unwrap();
        for op in &ops {
            writer.push(op).unwrap();
        }
        let (bytes, _) = writer.finish().unwrap();
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2, "version 2");
        assert_eq!(u16::from_le_bytes([bytes[10], bytes[11]]), FLAG_LEVELS);
        let reader = NativeReader::new(bytes.as_slice(), "t.hlt").unwrap();
        assert!(reader.has_levels() && !reader.has_threads());
        assert_eq!(reader.collect::<Result<Vec<_>, _>>().unwrap(), ops);
        // A writer without levels refuses a request at another level
        // rather than drop it; user memory needs no field.
        let mut plain = NativeWriter::new(Vec::new(), "").unwrap();
        plain.push(&ops[3]).unwrap();
        assert!(plain.push(&ops[0]).unwrap_err().to_string().contains("page request"));
        assert!(plain.push(&ops[6]).unwrap_err().to_string().contains("address space 7"));
        // A level record in a trace whose header has no levels is undecodable.
        let mut forged = NativeWriter::with_fields(Vec::new(), "", fields).unwrap();
        forged.push(&ops[0]).unwrap();
        let (mut bytes, _) = forged.finish().unwrap();
        bytes[10] = 0;
        let crc = crc32fast::hash(&bytes[..16]);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
        let error = NativeReader::new(bytes.as_slice(), "f.hlt").unwrap().collect::<Result<Vec<_>, _>>().unwrap_err();
        assert!(error.to_string().contains("undecodable"), "{error}");
    }

    #[test]
    fn an_empty_trace_is_valid() {
        assert_eq!(decode_all(&encode(&[])).unwrap(), []);
    }
}
