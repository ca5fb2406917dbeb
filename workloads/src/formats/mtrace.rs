//! glibc `mtrace` logs, as `MALLOC_TRACE=file` writes them.
//!
//! ```text
//! = Start
//! @ ./prog:[0x4005b4] + 0x1b2f460 0x10      malloc(16) returned 0x1b2f460
//! @ ./prog:[0x4005c2] < 0x1b2f460           realloc(0x1b2f460, …) …
//! @ ./prog:[0x4005c2] > 0x1b2f4a0 0x20      … returned 0x1b2f4a0, 32 bytes
//! @ ./prog:[0x4005d0] - 0x1b2f4a0           free(0x1b2f4a0)
//! = End
//! ```
//!
//! Pointers become dense ids in order of allocation; a realloc keeps its id.
//! Real logs start tracing late and so free pointers they never saw
//! allocated: such frees are skipped and counted ([`MtraceReader::skipped`]),
//! as glibc's `mtrace` script reports them rather than failing; a realloc of
//! such a pointer is read as an allocation. A pointer allocated again while
//! live (its free was not traced) first frees the stale block. `(nil)`
//! results (failed allocations) and `!` lines (failed reallocs) change
//! nothing. The format carries no alignment.

use std::io::{self, BufRead, Write};

use super::pointers::PointerIds;
use crate::error::TraceError;
use crate::op::{Align, Op};

/// A streaming mtrace reader.
#[derive(Debug)]
pub struct MtraceReader<R> {
    input: R,
    path: String,
    line: u64,
    buffer: Vec<u8>,
    pointers: PointerIds,
    /// The old pointer of a realloc whose `<` line was read.
    realloc_from: Option<u64>,
    finished: bool,
}

impl<R: BufRead> MtraceReader<R> {
    /// Read an mtrace log from `input`; `path` names it in errors.
    pub fn new(input: R, path: &str) -> MtraceReader<R> {
        MtraceReader {
            input,
            path: path.to_string(),
            line: 0,
            buffer: Vec::with_capacity(96),
            pointers: PointerIds::new(),
            realloc_from: None,
            finished: false,
        }
    }

    /// Lines skipped so far: frees of untraced pointers and the like.
    pub fn skipped(&self) -> u64 {
        self.pointers.skipped()
    }

    fn error(&self, expected: &str) -> TraceError {
        TraceError::syntax(&self.path, self.line, expected, &self.buffer)
    }

    /// Parse the current line: `Some(op)`, or `None` for a line that changes nothing.
    fn parse(&mut self) -> Result<Option<Op>, TraceError> {
        const EXPECTED: &str = "an mtrace line (`@ CALLER + PTR SIZE`, `- PTR`, `< PTR`, `> PTR SIZE`, `= Start`)";
        let text = std::str::from_utf8(&self.buffer).map_err(|_| self.error("UTF-8 text"))?;
        let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
        match tokens.first() {
            None => return Ok(None),
            Some(&"=") => return Ok(None),
            Some(&"@") | Some(&"+") | Some(&"-") | Some(&"<") | Some(&">") | Some(&"!") => {}
            Some(_) => return Err(self.error(EXPECTED)),
        }
        // The op is the last `+ PTR SIZE`, `- PTR`, `< PTR`, `> PTR SIZE` or
        // `! PTR SIZE` on the line; everything before it is caller text.
        let n = tokens.len();
        let (op, pointer, size) = if n >= 3 && matches!(tokens[n - 3], "+" | ">" | "!") {
            (tokens[n - 3], tokens[n - 2], Some(tokens[n - 1]))
        } else if n >= 2 && matches!(tokens[n - 2], "-" | "<") {
            (tokens[n - 2], tokens[n - 1], None)
        } else {
            return Err(self.error(EXPECTED));
        };
        if op != ">" && self.realloc_from.is_some() {
            return Err(self.error("the `> PTR SIZE` line that completes a realloc"));
        }
        let pointer = parse_pointer(pointer).ok_or_else(|| self.error("a pointer such as 0x1b2f460 or (nil)"))?;
        let size = match size {
            Some(text) => Some(parse_hex(text).ok_or_else(|| self.error("a size such as 0x10"))?),
            None => None,
        };
        Ok(match (op, pointer, size) {
            ("!", _, _) | (_, None, _) if op != ">" => {
                self.pointers.skip();
                None
            }
            ("+", Some(pointer), Some(size)) => Some(self.pointers.alloc(pointer, size, Align::UNSPECIFIED)),
            ("-", Some(pointer), None) => self.pointers.free(pointer),
            ("<", Some(pointer), None) => {
                self.realloc_from = Some(pointer);
                None
            }
            (">", new, Some(size)) => {
                let Some(old) = self.realloc_from.take() else {
                    return Err(self.error("a `< PTR` line before `> PTR SIZE`"));
                };
                match new {
                    Some(new) => Some(self.pointers.realloc(old, new, size)),
                    None => {
                        self.pointers.skip();
                        None
                    }
                }
            }
            _ => return Err(self.error(EXPECTED)),
        })
    }
}

impl<R: BufRead> Iterator for MtraceReader<R> {
    type Item = Result<Op, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(op) = self.pointers.take_pending() {
            return Some(Ok(op));
        }
        if self.finished {
            return None;
        }
        loop {
            self.buffer.clear();
            // A line is read at most MAX_LINE bytes far: a huge one is an
            // error, not a gigabyte in memory.
            match std::io::Read::take(&mut self.input, super::rep::MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut self.buffer)
            {
                Err(error) => {
                    self.finished = true;
                    return Some(Err(TraceError::Io { path: self.path.clone(), error }));
                }
                Ok(0) => {
                    self.finished = true;
                    if self.realloc_from.is_some() {
                        return Some(Err(self.error("the `> PTR SIZE` line that completes a realloc")));
                    }
                    return None;
                }
                Ok(_) => self.line += 1,
            }
            if self.buffer.len() > super::rep::MAX_LINE {
                self.finished = true;
                return Some(Err(TraceError::Syntax {
                    path: self.path.clone(),
                    line: self.line,
                    expected: format!(
                        "a line of at most {} bytes (an mtrace line is a few fields)",
                        super::rep::MAX_LINE
                    ),
                    found: "a longer line".to_string(),
                }));
            }
            match self.parse() {
                Ok(Some(op)) => return Some(Ok(op)),
                Ok(None) => continue,
                Err(error) => {
                    self.finished = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// `0x…` (or bare hex) → `Some(Some(value))`; `(nil)` → `Some(None)`.
fn parse_pointer(text: &str) -> Option<Option<u64>> {
    if text == "(nil)" {
        return Some(None);
    }
    let value = parse_hex(text)?;
    Some((value != 0).then_some(value))
}

fn parse_hex(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// The address a written log gives block `id`: distinct for distinct ids.
fn pointer_of(id: u32) -> u64 {
    0x1_0000 + u64::from(id) * 0x10
}

/// Write `ops` as an mtrace log. Pointers are synthesised from ids (so a
/// log written from ops whose ids are numbered in allocation order reads
/// back to the same ops); a realloc keeps its pointer.
pub fn write_mtrace(out: &mut dyn Write, ops: impl IntoIterator<Item = Op>) -> io::Result<()> {
    writeln!(out, "= Start")?;
    for op in ops {
        match op {
            Op::Alloc { id, size, .. } => writeln!(out, "@ heaplab:[0x0] + {:#x} {size:#x}", pointer_of(id))?,
            Op::Free { id } => writeln!(out, "@ heaplab:[0x0] - {:#x}", pointer_of(id))?,
            Op::Realloc { id, size } => {
                let pointer = pointer_of(id);
                writeln!(out, "@ heaplab:[0x0] < {pointer:#x}\n@ heaplab:[0x0] > {pointer:#x} {size:#x}")?
            }
        }
    }
    writeln!(out, "= End")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Result<Vec<Op>, TraceError>, u64) {
        let mut reader = MtraceReader::new(text.as_bytes(), "m.log");
        let ops = reader.by_ref().collect();
        (ops, reader.skipped())
    }

    fn alloc(id: u32, size: u64) -> Op {
        Op::alloc(id, size, Align::UNSPECIFIED)
    }

    #[test]
    fn a_glibc_log_becomes_ops_with_dense_ids() {
        let text = "= Start\n\
            @ ./prog:[0x4005b4] + 0x1b2f460 0x10\n\
            @ ./prog:[0x4005be] + 0x1b2f480 0x64\n\
            @ /lib/libc.so.6:(__libc_start_main+0xf0)[0x7f] < 0x1b2f460\n\
            @ /lib/libc.so.6:(__libc_start_main+0xf0)[0x7f] > 0x1b2f4f0 0x20\n\
            @ ./prog:[0x4005d0] - 0x1b2f4f0\n\
            @ ./prog:[0x4005d0] - 0x7777\n\
            @ ./prog:[0x4005d8] + (nil) 0x100000000\n\
            @ ./prog:[0x4005e0] ! 0x1b2f480 0x200\n\
            @ ./prog:[0x4005e8] - 0x1b2f480\n\
            = End\n";
        let (ops, skipped) = read(text);
        assert_eq!(
            ops.unwrap(),
            [alloc(0, 16), alloc(1, 100), Op::Realloc { id: 0, size: 32 }, Op::Free { id: 0 }, Op::Free { id: 1 }]
        );
        assert_eq!(skipped, 3, "the untraced free, the failed malloc, the failed realloc");
    }

    #[test]
    fn a_pointer_reused_while_live_frees_the_stale_block() {
        let (ops, _) = read("@ a + 0x10 0x8\n@ a + 0x10 0x20\n@ a - 0x10\n");
        assert_eq!(ops.unwrap(), [alloc(0, 8), Op::Free { id: 0 }, alloc(1, 32), Op::Free { id: 1 }]);
    }

    #[test]
    fn malformed_lines_name_the_line() {
        for (text, line, expected) in [
            ("= Start\n@ a + 0x10\n", 2, "expected an mtrace line"),
            ("= Start\nhello\n", 2, "expected an mtrace line"),
            ("@ a + 0xZZ 0x10\n", 1, "expected a pointer"),
            ("@ a + 0x10 ten\n", 1, "expected a size"),
            ("@ a < 0x10\n@ a + 0x20 0x1\n", 2, "expected the `> PTR SIZE` line"),
            ("@ a > 0x10 0x8\n", 1, "expected a `< PTR` line"),
            ("@ a + 0x10 0x8\n@ a < 0x10\n", 2, "expected the `> PTR SIZE` line"),
        ] {
            let error = read(text).0.unwrap_err();
            let message = error.to_string();
            assert!(message.starts_with(&format!("m.log:{line}: {expected}")), "{text:?}: {message}");
        }
    }

    #[test]
    fn written_logs_read_back() {
        let ops =
            vec![alloc(0, 16), alloc(1, 100), Op::Realloc { id: 0, size: 32 }, Op::Free { id: 0 }, Op::Free { id: 1 }];
        let mut text = Vec::new();
        write_mtrace(&mut text, ops.iter().copied()).unwrap();
        let (read_back, skipped) = read(std::str::from_utf8(&text).unwrap());
        assert_eq!((read_back.unwrap(), skipped), (ops, 0));
    }

    #[test]
    fn a_huge_line_is_an_error_read_no_further() {
        let text = format!("= Start\n{}\n", "@".repeat(10 << 20));
        let message = MtraceReader::new(text.as_bytes(), "t.mtrace").collect::<Result<Vec<_>, _>>().unwrap_err();
        assert!(message.to_string().starts_with("t.mtrace:2: expected a line of at most 4096 bytes"), "{message}");
    }
}
