//! The CS:APP malloc-lab trace format (`.rep`).
//!
//! ```text
//! 20000      suggested heap size
//! 2          number of ids
//! 5          number of op lines
//! 1          weight
//! a 0 512    allocate id 0, 512 bytes
//! a 1 128
//! r 0 640    reallocate id 0 to 640 bytes
//! f 1        free id 1
//! f 0
//! ```
//!
//! Variants found in the wild, all read: the four header integers on one line
//! or several, and in the classic order or with the weight first (detected:
//! the weight is 0 or 1, and the op count must match the body); CRLF line
//! endings; `f -1`, a free of NULL, skipped; a realloc of an id never
//! allocated, read as an alloc (what `realloc(NULL, n)` does); blank lines and
//! `#` comments. The format carries no alignment.
//!
//! As the CMU `mdriver` does, reading stops at the header's op count: op
//! lines after it are counted ([`RepReader::lines_past_count`]) and left
//! unread, so that a trace whose header says 200 and that holds 201 lines
//! replays the 200 mdriver replays. An alloc or realloc without a size
//! (`a 7`) is an error, unless the reader is **lenient**
//! ([`RepReader::lenient`]): then it takes the previous op's size, as
//! mdriver's `sscanf` into the same variable does, and counts it
//! ([`RepReader::sizes_reused`]).

use std::io::{self, BufRead, Write};

use crate::error::TraceError;
use crate::idmap::IdMap;
use crate::op::{Align, Op};
use crate::validate::Validator;

/// The header's four integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepHeader {
    /// Suggested heap size, bytes.
    pub heap_size: u64,
    /// Number of distinct ids.
    pub ids: u64,
    /// Number of op lines.
    pub ops: u64,
    /// Weight in the driver's score.
    pub weight: u64,
    /// Was the weight first rather than last?
    pub weight_first: bool,
}

impl RepHeader {
    fn from_integers(h: [u64; 4], weight_first: bool) -> RepHeader {
        if weight_first {
            RepHeader { weight: h[0], heap_size: h[1], ids: h[2], ops: h[3], weight_first }
        } else {
            RepHeader { heap_size: h[0], ids: h[1], ops: h[2], weight: h[3], weight_first }
        }
    }
}

/// The longest line a `.rep` reader takes.
pub const MAX_LINE: usize = 4096;

/// A streaming `.rep` reader.
#[derive(Debug)]
pub struct RepReader<R> {
    input: R,
    path: String,
    line: u64,
    buffer: Vec<u8>,
    integers: Option<[u64; 4]>,
    header_line: u64,
    op_lines: u64,
    allocated: IdMap<bool>,
    validator: Validator,
    ops: u64,
    finished: bool,
    /// Read `a ID` and `r ID` without a size as mdriver does.
    lenient: bool,
    /// The size of the last alloc or realloc line, for a lenient read.
    previous_size: Option<u64>,
    sizes_reused: u64,
    /// Op lines after the header's count, left unread.
    past_count: u64,
    /// The header's op count, read once with the header: where reading stops.
    counted_ops: u64,
}

impl<R: BufRead> RepReader<R> {
    /// Read `.rep` text from `input`; `path` names it in errors.
    pub fn new(input: R, path: &str) -> RepReader<R> {
        RepReader {
            input,
            path: path.to_string(),
            line: 0,
            buffer: Vec::with_capacity(64),
            integers: None,
            header_line: 0,
            op_lines: 0,
            allocated: IdMap::new(),
            validator: Validator::new(),
            ops: 0,
            finished: false,
            lenient: false,
            previous_size: None,
            sizes_reused: 0,
            past_count: 0,
            counted_ops: 0,
        }
    }

    /// Read an alloc or realloc without a size with the previous op's size,
    /// as mdriver does (see the module docs).
    pub fn lenient(mut self, lenient: bool) -> RepReader<R> {
        self.lenient = lenient;
        self
    }

    /// Ops read with the previous op's size (lenient reads only).
    pub fn sizes_reused(&self) -> u64 {
        self.sizes_reused
    }

    /// Op lines after the header's op count, which mdriver does not read
    /// either (known once the trace has been read to its end).
    pub fn lines_past_count(&self) -> u64 {
        self.past_count
    }

    /// The header, once the first op has been read (or the trace ended).
    pub fn header(&self) -> Option<RepHeader> {
        let h = self.integers?;
        let classic = RepHeader::from_integers(h, false);
        let weight_first = RepHeader::from_integers(h, true);
        // The op count decides once the body is read; before, the weight's
        // usual values (0 or 1) do.
        Some(if self.finished {
            if classic.ops == self.op_lines || weight_first.ops != self.op_lines { classic } else { weight_first }
        } else if classic.weight > 1 && weight_first.weight <= 1 {
            weight_first
        } else {
            classic
        })
    }

    /// Read the next line into the buffer; false at the end. A line longer
    /// than [`MAX_LINE`] is an error, read no further than that.
    fn next_line(&mut self) -> Result<bool, TraceError> {
        self.buffer.clear();
        let read = io::Read::take(&mut self.input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.buffer)
            .map_err(|error| TraceError::Io { path: self.path.clone(), error })?;
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.buffer.len() > MAX_LINE {
            return Err(TraceError::Syntax {
                path: self.path.clone(),
                line: self.line,
                expected: format!("a line of at most {MAX_LINE} bytes (an op is a few tokens)"),
                found: "a longer line".to_string(),
            });
        }
        if self.line == 1 && self.buffer.starts_with(b"\xEF\xBB\xBF") {
            // A UTF-8 byte-order mark, as some editors write.
            self.buffer.drain(..3);
        }
        let body = self.buffer.strip_suffix(b"\n").unwrap_or(&self.buffer);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.contains(&b'\r') {
            return Err(TraceError::Syntax {
                path: self.path.clone(),
                line: self.line,
                expected: "lines ending in \\n or \\r\\n".to_string(),
                found: "a carriage return inside the line (CR-only line endings?); convert them to \\n".to_string(),
            });
        }
        Ok(true)
    }

    fn read_header(&mut self) -> Result<(), TraceError> {
        let mut integers = [0u64; 4];
        let mut count = 0;
        while count < 4 {
            if !self.next_line()? {
                return Err(TraceError::syntax(
                    &self.path,
                    self.line,
                    "the header's four integers (heap size, ids, ops, weight)",
                    b"end of file",
                ));
            }
            if count == 0 {
                self.header_line = self.line;
            }
            for token in tokens(&self.buffer) {
                if token.starts_with(b"#") {
                    break;
                }
                if count == 4 {
                    return Err(TraceError::syntax(
                        &self.path,
                        self.line,
                        "four header integers and then op lines",
                        &self.buffer,
                    ));
                }
                integers[count] = parse_u64(token).ok_or_else(|| {
                    TraceError::syntax(
                        &self.path,
                        self.line,
                        "the header's four integers (heap size, ids, ops, weight)",
                        &self.buffer,
                    )
                })?;
                count += 1;
            }
        }
        self.integers = Some(integers);
        self.counted_ops = self.header().expect("the integers were just read").ops;
        Ok(())
    }

    fn check_count(&mut self) -> Result<(), TraceError> {
        let header = self.header().expect("header read");
        if header.ops != self.op_lines {
            return Err(TraceError::Syntax {
                path: self.path.clone(),
                line: self.header_line,
                expected: format!("{} op lines, as the header says", header.ops),
                found: format!("{} op lines", self.op_lines),
            });
        }
        Ok(())
    }

    fn parse(&mut self) -> Result<Option<Op>, TraceError> {
        const EXPECTED: &str = "an op line (`a ID SIZE`, `f ID` or `r ID SIZE`)";
        let mut tokens = tokens(&self.buffer);
        let Some(kind) = tokens.next() else { return Ok(None) };
        if kind.starts_with(b"#") {
            return Ok(None);
        }
        let id_token = tokens.next();
        let size_token = tokens.next().filter(|t| !t.starts_with(b"#"));
        let extra = tokens.next().is_some_and(|t| !t.starts_with(b"#"));
        let bad = |reader: &Self| TraceError::syntax(&reader.path, reader.line, EXPECTED, &reader.buffer);
        if self.op_lines == self.counted_ops {
            // mdriver stops at the header's count; count what it leaves.
            self.past_count += 1;
            return Ok(None);
        }
        self.op_lines += 1;
        // `a ID` or `r ID` without a size: mdriver's sscanf leaves the size
        // of the line before in its variable.
        let mut reused = None;
        if matches!(kind, b"a" | b"r") && id_token.is_some() && size_token.is_none() && !extra {
            match (self.previous_size, self.lenient) {
                (Some(size), true) => {
                    self.sizes_reused += 1;
                    reused = Some(size);
                }
                (Some(size), false) => {
                    return Err(TraceError::Syntax {
                        path: self.path.clone(),
                        line: self.line,
                        expected: format!(
                            "{EXPECTED}: this line has no size; mdriver would reuse the previous op's size ({size} \
                             bytes), and --lenient reads it so"
                        ),
                        found: String::from_utf8_lossy(self.buffer.trim_ascii()).into_owned(),
                    });
                }
                (None, _) => return Err(bad(self)),
            }
        }
        // The size token, or the size a lenient read reused for a line without one.
        let size_of = |reader: &Self, token: Option<&[u8]>| match token {
            Some(token) => parse_u64(token).ok_or_else(|| bad(reader)),
            None => reused.ok_or_else(|| bad(reader)),
        };
        let op = match (kind, id_token, size_token, extra) {
            (b"a", Some(id), size, false) => {
                let id = parse_u32(id).ok_or_else(|| bad(self))?;
                let size = size_of(self, size)?;
                self.previous_size = Some(size);
                self.allocated.set(id, true);
                Op::alloc(id, size, Align::UNSPECIFIED)
            }
            (b"f", Some(b"-1"), None, false) => return Ok(None),
            (b"f", Some(id), None, false) => Op::Free { id: parse_u32(id).ok_or_else(|| bad(self))? },
            (b"r", Some(id), size, false) => {
                let id = parse_u32(id).ok_or_else(|| bad(self))?;
                let size = size_of(self, size)?;
                self.previous_size = Some(size);
                if size == 0 && self.allocated.get(id) {
                    // `realloc(p, 0)` frees the block, as the malloc-lab
                    // handout and glibc have it.
                    self.allocated.set(id, false);
                    Op::Free { id }
                } else if self.allocated.get(id) {
                    Op::Realloc { id, size }
                } else {
                    self.allocated.set(id, true);
                    Op::alloc(id, size, Align::UNSPECIFIED)
                }
            }
            _ => return Err(bad(self)),
        };
        // A misuse (double free, free of an unknown id, …) is named with its
        // line here, where the line is known.
        let index = self.ops;
        self.ops += 1;
        self.validator.check(&op).map_err(|what| TraceError::InvalidLine {
            path: self.path.clone(),
            line: self.line,
            index,
            what,
        })?;
        Ok(Some(op))
    }
}

impl<R: BufRead> Iterator for RepReader<R> {
    type Item = Result<Op, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.integers.is_none()
            && let Err(error) = self.read_header()
        {
            self.finished = true;
            return Some(Err(error));
        }
        loop {
            match self.next_line() {
                Err(error) => {
                    self.finished = true;
                    return Some(Err(error));
                }
                Ok(false) => {
                    self.finished = true;
                    return self.check_count().err().map(Err);
                }
                Ok(true) => match self.parse() {
                    Ok(Some(op)) => return Some(Ok(op)),
                    Ok(None) => continue,
                    Err(error) => {
                        self.finished = true;
                        return Some(Err(error));
                    }
                },
            }
        }
    }
}

fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace()).filter(|token| !token.is_empty())
}

/// A decimal `u64`, digits only.
#[inline]
pub(crate) fn parse_u64(token: &[u8]) -> Option<u64> {
    if token.is_empty() || token.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in token {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(value)
}

fn parse_u32(token: &[u8]) -> Option<u32> {
    parse_u64(token).and_then(|value| u32::try_from(value).ok())
}

/// Write `ops` as a `.rep` trace: the header (suggested heap size = peak live
/// requested bytes, ids = largest id + 1, the op count, weight 1), then one
/// line per op. Alignments are not representable and are dropped. A resize
/// to 0 bytes is refused: mdriver reads `r ID 0` as a free, so it has no
/// spelling that reads back as a live block.
pub fn write_rep(out: &mut dyn Write, ops: &[Op]) -> io::Result<()> {
    let (mut live, mut peak, mut ids) = (0u64, 0u64, 0u64);
    let mut sizes: IdMap<u64> = IdMap::new();
    for (index, op) in ops.iter().enumerate() {
        if let Op::Realloc { id, size: 0 } = *op {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "op {}: a realloc of id {id} to 0 bytes keeps the block live, but .rep reads `r {id} 0` \
                     as a free; write native or mtrace instead",
                    index + 1
                ),
            ));
        }
        ids = ids.max(u64::from(op.id()) + 1);
        match *op {
            Op::Alloc { id, size, .. } => {
                live += size;
                sizes.set(id, size);
            }
            Op::Free { id } => live = live.saturating_sub(sizes.get(id)),
            Op::Realloc { id, size } => {
                live = live.saturating_sub(sizes.get(id)) + size;
                sizes.set(id, size);
            }
        }
        peak = peak.max(live);
    }
    writeln!(out, "{peak}\n{ids}\n{}\n1", ops.len())?;
    for op in ops {
        match *op {
            Op::Alloc { id, size, .. } => writeln!(out, "a {id} {size}")?,
            Op::Free { id } => writeln!(out, "f {id}")?,
            Op::Realloc { id, size } => writeln!(out, "r {id} {size}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Op>, TraceError> {
        RepReader::new(text.as_bytes(), "t.rep").collect()
    }

    fn alloc(id: u32, size: u64) -> Op {
        Op::alloc(id, size, Align::UNSPECIFIED)
    }

    #[test]
    fn the_classic_format_reads() {
        let ops = read("20000\n2\n5\n1\na 0 512\na 1 128\nr 0 640\nf 1\nf 0\n").unwrap();
        assert_eq!(
            ops,
            [alloc(0, 512), alloc(1, 128), Op::Realloc { id: 0, size: 640 }, Op::Free { id: 1 }, Op::Free { id: 0 }]
        );
    }

    #[test]
    fn variants_in_the_wild_read_too() {
        // CRLF, header on one line with the weight first, f -1, realloc of a
        // fresh id, comments and blank lines.
        let text = "1 4096 2 4\r\n# comment\r\na 0 8\r\n\r\nf -1\r\nr 1 16\r\nf 0   \r\n";
        let mut reader = RepReader::new(text.as_bytes(), "t.rep");
        let ops: Vec<Op> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(ops, [alloc(0, 8), alloc(1, 16), Op::Free { id: 0 }]);
        let header = reader.header().unwrap();
        assert_eq!(
            (header.weight, header.heap_size, header.ids, header.ops, header.weight_first),
            (1, 4096, 2, 4, true)
        );
    }

    #[test]
    fn malformed_lines_name_the_line() {
        for (text, line, expected) in [
            ("20000\n1\n1\n1\nx 0 5\n", 5, "expected an op line"),
            ("20000\n1\n1\n1\na 0\n", 5, "expected an op line"),
            ("20000\n1\n1\n1\na 0 5 7\n", 5, "expected an op line"),
            ("20000\n1\n1\n1\na -2 5\n", 5, "expected an op line"),
            ("20000\n1\n1\n1\na 0 99999999999999999999999\n", 5, "expected an op line"),
            ("20000\nx\n", 2, "expected the header's four integers"),
            ("20000\n1\n", 2, "expected the header's four integers"),
            ("20000\n1\n3\n0\na 0 5\n", 1, "expected 3 op lines, as the header says"),
        ] {
            match read(text).unwrap_err() {
                TraceError::Syntax { path, line: found, expected: message, .. } => {
                    assert_eq!((path.as_str(), found), ("t.rep", line), "{text:?}");
                    assert!(format!("expected {message}").starts_with(expected), "{text:?}: {message}");
                }
                other => panic!("{text:?}: {other}"),
            }
        }
        let message = read("20000\n1\n1\n1\nx 0 5\n").unwrap_err().to_string();
        assert_eq!(message, "t.rep:5: expected an op line (`a ID SIZE`, `f ID` or `r ID SIZE`), found `x 0 5`");
    }

    #[test]
    fn hostile_lines_are_refused_where_they_are_and_mdriver_s_realloc_to_zero_frees() {
        // A 10 MB line is not read whole.
        let long = format!("20000\n1\n1\n1\n{}\n", " ".repeat(10 << 20));
        let message = read(&long).unwrap_err().to_string();
        assert!(message.starts_with("t.rep:5: expected a line of at most 4096 bytes"), "{message}");
        // CR-only line endings glue the lines: said, not misread.
        let message = read("20000\r1\r1\r1\ra 0 5\r").unwrap_err().to_string();
        assert!(message.contains("CR-only line endings"), "{message}");
        // A byte-order mark before the header is not a bad integer.
        assert_eq!(read("\u{feff}20000\n1\n1\n1\na 0 5\n").unwrap(), [alloc(0, 5)]);
        // `r ID 0` frees a live block; the id can then be allocated again.
        let ops = read("20000\n1\n3\n1\na 0 5\nr 0 0\na 0 7\n").unwrap();
        assert_eq!(ops, [alloc(0, 5), Op::Free { id: 0 }, alloc(0, 7)]);
    }

    #[test]
    fn reading_stops_at_the_header_count_as_mdriver_does_and_lenient_reuses_the_previous_size() {
        // Four public traces say 200 and hold 201 op lines: mdriver reads 200.
        let mut reader = RepReader::new("20000\n2\n2\n1\na 0 5\nf 0\n# c\na 1 9\nf 1\n".as_bytes(), "t.rep");
        let ops: Vec<Op> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(ops, [alloc(0, 5), Op::Free { id: 0 }]);
        assert_eq!(reader.lines_past_count(), 2);
        // `a 1` without a size: an error that says what mdriver would do...
        let text = "20000\n2\n3\n1\na 0 24\na 1\nf 0\n";
        let message = read(text).unwrap_err().to_string();
        assert!(message.starts_with("t.rep:6: expected"), "{message}");
        assert!(message.contains("mdriver would reuse the previous op's size (24 bytes)"), "{message}");
        assert!(message.contains("--lenient"), "{message}");
        // ... and what a lenient read does, counted.
        let mut reader = RepReader::new(text.as_bytes(), "t.rep").lenient(true);
        let ops: Vec<Op> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(ops, [alloc(0, 24), alloc(1, 24), Op::Free { id: 0 }]);
        assert_eq!((reader.sizes_reused(), reader.lines_past_count()), (1, 0));
        // With no size before it, there is nothing to reuse.
        let lenient = RepReader::new("20000\n1\n1\n1\na 0\n".as_bytes(), "t.rep").lenient(true);
        assert!(lenient.collect::<Result<Vec<Op>, _>>().is_err());
    }

    #[test]
    fn a_misuse_names_its_line_and_op() {
        let message = read("20000\n1\n3\n1\n# a comment\na 0 5\nf 0\nf 0\n").unwrap_err().to_string();
        assert!(message.starts_with("t.rep:8: op 3: "), "{message}");
        assert!(message.contains("free"), "{message}");
        let message = read("20000\n1\n1\n1\nf 3\n").unwrap_err().to_string();
        assert!(message.starts_with("t.rep:5: op 1: "), "{message}");
    }

    #[test]
    fn writing_puts_the_counts_in_the_header() {
        let ops =
            [alloc(0, 100), alloc(1, 50), Op::Realloc { id: 0, size: 300 }, Op::Free { id: 1 }, Op::Free { id: 0 }];
        let mut text = Vec::new();
        write_rep(&mut text, &ops).unwrap();
        assert_eq!(String::from_utf8(text.clone()).unwrap(), "350\n2\n5\n1\na 0 100\na 1 50\nr 0 300\nf 1\nf 0\n");
        assert_eq!(read(std::str::from_utf8(&text).unwrap()).unwrap(), ops);
    }

    #[test]
    fn a_resize_to_zero_bytes_is_refused_not_written_as_a_free() {
        let ops = [alloc(0, 100), Op::Realloc { id: 0, size: 0 }, Op::Free { id: 0 }];
        let error = write_rep(&mut Vec::new(), &ops).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().starts_with("op 2: "), "{error}");
    }
}
