//! Trace files: the malloc-lab `.rep` format, glibc `mtrace` logs and
//! heaplab's native binary format, read and written; zstd-compressed files
//! (`.zst`) read and written transparently.
//!
//! Reading detects the format from the content (the native magic, zstd's
//! magic) and else from the extension (`.rep`, `.mtrace`/`.mtr`, `.hlt`),
//! and else by sniffing the first line. Writing picks the format from the
//! extension, writes to a temporary file beside the target and renames it
//! into place only when everything was written: an error leaves no partial
//! file.

pub mod mtrace;
pub mod native;
pub mod pointers;
pub mod raw;
pub mod rep;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::TraceError;
use crate::op::{Op, ThreadOp};

use self::mtrace::MtraceReader;
pub use self::native::Fields;
use self::native::NativeReader;
use self::rep::RepReader;

/// zstd's frame magic.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Read buffer: large, so that parsing is not syscall-bound.
const BUFFER_BYTES: usize = 1 << 20;

/// A trace format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// CS:APP malloc-lab `.rep`.
    Rep,
    /// glibc mtrace log.
    Mtrace,
    /// heaplab native binary `.hlt`.
    Native,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Format::Rep, Format::Mtrace, Format::Native];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Rep => "rep",
            Format::Mtrace => "mtrace",
            Format::Native => "native",
        }
    }

    /// By name (`rep`, `mtrace`, `native`).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }

    /// The format an extension names, ignoring a final `.zst`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?;
        let name = name.strip_suffix(".zst").unwrap_or(name);
        match name.rsplit_once('.')?.1.to_ascii_lowercase().as_str() {
            "rep" => Some(Format::Rep),
            "mtrace" | "mtr" => Some(Format::Mtrace),
            "hlt" | "hltrace" => Some(Format::Native),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Is the path's last extension `.zst`?
pub fn is_compressed_name(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "zst")
}

type Input = Box<dyn BufRead + Send>;

/// How a trace is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// `.rep`: an alloc or realloc line without a size takes the previous
    /// op's size, as mdriver does (see [`rep`]).
    pub lenient: bool,
}

/// A trace being read: an iterator of ops, whatever the format.
pub struct TraceReader {
    inner: Inner,
    format: Format,
    path: String,
}

enum Inner {
    Rep(RepReader<Input>),
    Mtrace(MtraceReader<Input>),
    Native(NativeReader<Input>),
}

impl fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader").field("path", &self.path).field("format", &self.format).finish_non_exhaustive()
    }
}

impl TraceReader {
    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The path, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What the trace says about its origin (native traces only).
    pub fn meta(&self) -> Option<&str> {
        match &self.inner {
            Inner::Native(reader) => Some(reader.meta()),
            _ => None,
        }
    }

    /// Do the ops carry the thread that made them (a native trace of a
    /// multithreaded program)?
    pub fn has_threads(&self) -> bool {
        matches!(&self.inner, Inner::Native(reader) if reader.has_threads())
    }

    /// Do the allocations carry their level (a native trace written with
    /// them)? Other formats hold user memory only.
    pub fn has_levels(&self) -> bool {
        matches!(&self.inner, Inner::Native(reader) if reader.has_levels())
    }

    /// The thread of the op returned last: 0 in a trace without threads.
    #[inline]
    pub fn thread(&self) -> u16 {
        match &self.inner {
            Inner::Native(reader) => reader.thread(),
            _ => 0,
        }
    }

    /// The next op with its thread.
    #[inline]
    pub fn next_step(&mut self) -> Option<Result<ThreadOp, TraceError>> {
        let op = self.next()?;
        Some(op.map(|op| ThreadOp { thread: self.thread(), op }))
    }

    /// The ops with their threads.
    pub fn steps(mut self) -> impl Iterator<Item = Result<ThreadOp, TraceError>> + Send {
        std::iter::from_fn(move || self.next_step())
    }

    /// Read with `options` (what does not apply to the format is ignored).
    pub fn with_options(mut self, options: ReadOptions) -> TraceReader {
        if let Inner::Rep(reader) = self.inner {
            self.inner = Inner::Rep(reader.lenient(options.lenient));
        }
        self
    }

    /// Ops a lenient read gave the previous op's size (`.rep` only).
    pub fn sizes_reused(&self) -> u64 {
        match &self.inner {
            Inner::Rep(reader) => reader.sizes_reused(),
            _ => 0,
        }
    }

    /// Op lines after a `.rep` header's count, left unread as mdriver
    /// leaves them (known at the end of the trace).
    pub fn lines_past_count(&self) -> u64 {
        match &self.inner {
            Inner::Rep(reader) => reader.lines_past_count(),
            _ => 0,
        }
    }

    /// What reading changed or left out, for a warning: lines past the
    /// header's count, sizes reused (known at the end of the trace).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.lines_past_count() > 0 {
            notes.push(format!(
                "{}: {} op lines after the header's count were not read, as mdriver does not read them",
                self.path,
                self.lines_past_count()
            ));
        }
        if self.sizes_reused() > 0 {
            notes.push(format!(
                "{}: {} allocs or reallocs without a size took the previous op's size (--lenient, as mdriver)",
                self.path,
                self.sizes_reused()
            ));
        }
        notes
    }

    /// Input lines skipped as harmless (mtrace: frees of untraced pointers).
    pub fn skipped(&self) -> u64 {
        match &self.inner {
            Inner::Mtrace(reader) => reader.skipped(),
            _ => 0,
        }
    }

    /// Read a trace from `input`, in `format` or detected.
    pub fn from_reader(
        input: impl Read + Send + 'static,
        path: &str,
        format: Option<Format>,
    ) -> Result<TraceReader, TraceError> {
        let io_error = |error| TraceError::Io { path: path.to_string(), error };
        let mut buffered: Input = Box::new(BufReader::with_capacity(BUFFER_BYTES, input));
        if buffered.fill_buf().map_err(io_error)?.starts_with(&ZSTD_MAGIC) {
            let decoder = zstd::stream::read::Decoder::with_buffer(buffered).map_err(io_error)?;
            buffered = Box::new(BufReader::with_capacity(BUFFER_BYTES, Zstd(decoder)));
        }
        let head = buffered.fill_buf().map_err(io_error)?;
        let format = if head.starts_with(&native::MAGIC) {
            Format::Native
        } else if let Some(format) = format.or_else(|| Format::from_path(Path::new(path))) {
            format
        } else {
            let first = head.iter().find(|b| !b.is_ascii_whitespace());
            match first {
                Some(b'=' | b'@') => Format::Mtrace,
                Some(b'0'..=b'9') => Format::Rep,
                _ => {
                    return Err(TraceError::syntax(
                        path,
                        1,
                        "a trace: heaplab native, malloc-lab .rep or glibc mtrace (name it .hlt, .rep or .mtrace)",
                        &head[..head.len().min(40)],
                    ));
                }
            }
        };
        let inner = match format {
            Format::Rep => Inner::Rep(RepReader::new(buffered, path)),
            Format::Mtrace => Inner::Mtrace(MtraceReader::new(buffered, path)),
            Format::Native => Inner::Native(NativeReader::new(buffered, path)?),
        };
        Ok(TraceReader { inner, format, path: path.to_string() })
    }
}

impl Iterator for TraceReader {
    type Item = Result<Op, TraceError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Rep(reader) => reader.next(),
            Inner::Mtrace(reader) => reader.next(),
            Inner::Native(reader) => reader.next(),
        }
    }
}

/// A zstd decoder whose errors say that they are the compression's.
struct Zstd<R>(R);

impl<R: Read> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|error| io::Error::new(error.kind(), format!("decompressing zstd: {error}")))
    }
}

/// Open a trace file (`-` for standard input), read with `options`.
pub fn open_with(path: &Path, options: ReadOptions) -> Result<TraceReader, TraceError> {
    Ok(open(path)?.with_options(options))
}

/// Open a trace file (`-` for standard input).
pub fn open(path: &Path) -> Result<TraceReader, TraceError> {
    let name = path.display().to_string();
    if name == "-" {
        return TraceReader::from_reader(io::stdin(), "<stdin>", None);
    }
    let file = File::open(path).map_err(|error| TraceError::io(path, error))?;
    TraceReader::from_reader(file, &name, None)
}

/// Read a whole trace into memory.
pub fn read_all(path: &Path) -> Result<Vec<Op>, TraceError> {
    open(path)?.collect()
}

/// Write ops to `path` (`-` for standard output) in `format` (or the one its
/// extension names), compressed with zstd if the name ends in `.zst`.
/// Atomic: on any error, from the ops or the disk, nothing is left behind.
/// `meta` goes into native traces' headers. Returns the number of ops.
pub fn write(
    path: &Path,
    format: Option<Format>,
    ops: impl IntoIterator<Item = Result<Op, TraceError>>,
    meta: &str,
) -> Result<u64, TraceError> {
    write_steps(path, format, ops.into_iter().map(|op| op.map(ThreadOp::single)), meta, Fields::default())
}

/// [`write`] ops with the optional `fields`: with `threads`, a native trace
/// keeps each op's thread (a `.rep` or mtrace file cannot: it gets the ops
/// in their order, on one thread, and the caller says so); with `levels`,
/// each allocation's level (a `.rep` or mtrace file cannot hold one: a
/// request at another level than user memory is an error there, not
/// silently moved).
pub fn write_steps(
    path: &Path,
    format: Option<Format>,
    ops: impl IntoIterator<Item = Result<ThreadOp, TraceError>>,
    meta: &str,
    fields: Fields,
) -> Result<u64, TraceError> {
    let format = format.or_else(|| Format::from_path(path)).ok_or_else(|| TraceError::Workload {
        workload: path.display().to_string(),
        message:
            "cannot tell the output format from the name: use .hlt, .rep or .mtrace (optionally + .zst), or --format"
                .into(),
    })?;
    let io_error = |error| TraceError::io(path, error);
    if path.as_os_str() == "-" {
        let stdout = io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        let count = encode(&mut out, format, ops, meta, fields, path)?;
        out.flush().map_err(io_error)?;
        return Ok(count);
    }
    let (target, direct) = output_target(path).map_err(io_error)?;
    if direct {
        // A device or a FIFO: written to as it is (never replaced by a
        // file), its errors reported.
        let file = std::fs::OpenOptions::new().write(true).open(&target).map_err(io_error)?;
        return encode_file(file, format, ops, meta, fields, path);
    }
    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temporary =
        tempfile::Builder::new().prefix(".heaplab-").suffix(".tmp").tempfile_in(&directory).map_err(io_error)?;
    let count = encode_file(temporary.as_file(), format, ops, meta, fields, path)?;
    // Temporary files are private; traces are for sharing.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io_error)?;
    }
    temporary.persist(&target).map_err(|error| io_error(error.error))?;
    Ok(count)
}

/// Encode `ops` into `file`, zstd-compressed if `path` ends in `.zst`.
fn encode_file(
    file: impl Write,
    format: Format,
    ops: impl IntoIterator<Item = Result<ThreadOp, TraceError>>,
    meta: &str,
    fields: Fields,
    path: &Path,
) -> Result<u64, TraceError> {
    let io_error = |error| TraceError::io(path, error);
    let mut out = BufWriter::with_capacity(BUFFER_BYTES, file);
    let count = if is_compressed_name(path) {
        let mut encoder = zstd::stream::write::Encoder::new(&mut out, 9).map_err(io_error)?;
        let count = encode(&mut encoder, format, ops, meta, fields, path)?;
        encoder.finish().map_err(io_error)?;
        count
    } else {
        encode(&mut out, format, ops, meta, fields, path)?
    };
    out.flush().map_err(io_error)?;
    Ok(count)
}

/// Write `bytes` to `path` as the trace writers write a file: `-` is
/// standard output; a device or a FIFO (also through a symbolic link) is
/// written as it is; a regular file is replaced only once the new bytes are
/// whole, through a temporary file in its directory, so that a failed write
/// leaves the old file as it was.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = io::stdout().lock();
        out.write_all(bytes)?;
        return out.flush();
    }
    let (target, direct) = output_target(path)?;
    if direct {
        let mut file = std::fs::OpenOptions::new().write(true).open(&target)?;
        file.write_all(bytes)?;
        return file.flush();
    }
    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temporary = tempfile::Builder::new().prefix(".heaplab-").suffix(".tmp").tempfile_in(&directory)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_data()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    temporary.persist(&target).map_err(|error| error.error)?;
    Ok(())
}

/// Where writing `path` goes: through a symbolic link to its target (the
/// link stays), and whether that is something other than a regular file
/// (a device, a FIFO), to be written directly rather than replaced.
fn output_target(path: &Path) -> io::Result<(PathBuf, bool)> {
    let mut target = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&target)?;
                target = match target.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            Ok(meta) => return Ok((target, !meta.is_file())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((target, false)),
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

fn encode(
    out: &mut dyn Write,
    format: Format,
    steps: impl IntoIterator<Item = Result<ThreadOp, TraceError>>,
    meta: &str,
    fields: Fields,
    path: &Path,
) -> Result<u64, TraceError> {
    let io_error = |error| TraceError::io(path, error);
    let mut index = 0u64;
    let steps = steps.into_iter().map(|step| {
        let step = step?;
        if let Op::Alloc { level, space, .. } = step.op
            && (level != crate::op::Level::User || space != 0)
            && format != Format::Native
        {
            return Err(TraceError::Workload {
                workload: path.display().to_string(),
                message: format!(
                    "op {index} is a {} request of address space {space}, and a {format} file holds one process's user memory only: write a native trace (.hlt), which keeps levels and spaces",
                    level.name()
                ),
            });
        }
        index += 1;
        Ok(step)
    });
    match format {
        Format::Native => {
            let mut writer = native::NativeWriter::with_fields(out, meta, fields).map_err(io_error)?;
            for step in steps {
                let step = step?;
                writer.push_on(if fields.threads { step.thread } else { 0 }, &step.op).map_err(io_error)?;
            }
            Ok(writer.finish().map_err(io_error)?.1)
        }
        Format::Rep => {
            // The header counts ops and ids: the whole trace is held first.
            let ops: Vec<Op> = steps.map(|step| step.map(|step| step.op)).collect::<Result<_, _>>()?;
            rep::write_rep(out, &ops).map_err(io_error)?;
            Ok(ops.len() as u64)
        }
        Format::Mtrace => {
            let mut error = None;
            let mut count = 0;
            let stream = steps.map_while(|step| match step {
                Ok(step) => {
                    count += 1;
                    Some(step.op)
                }
                Err(e) => {
                    error = Some(e);
                    None
                }
            });
            mtrace::write_mtrace(out, stream).map_err(io_error)?;
            match error {
                Some(error) => Err(error),
                None => Ok(count),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_zstd_file_says_zstd() {
        let mut bytes = ZSTD_MAGIC.to_vec();
        bytes.extend_from_slice(&[0xff; 64]);
        let error = TraceReader::from_reader(std::io::Cursor::new(bytes), "t.rep.zst", None)
            .and_then(|reader| reader.collect::<Result<Vec<_>, _>>())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("t.rep.zst: decompressing zstd: "), "{error}");
    }
    use crate::op::Align;

    fn sample() -> Vec<Op> {
        (0..50u32)
            .flat_map(|id| {
                let alloc = Op::alloc(id, u64::from(id) * 7 + 1, Align::UNSPECIFIED);
                let more = if id % 3 == 0 { vec![Op::Realloc { id, size: 3 }] } else { vec![] };
                std::iter::once(alloc).chain(more).chain((id >= 2).then(|| Op::Free { id: id - 2 }))
            })
            .collect()
    }

    #[test]
    fn every_format_round_trips_plain_and_compressed() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["t.hlt", "t.rep", "t.mtrace", "t.hlt.zst", "t.rep.zst", "t.mtrace.zst"] {
            let path = dir.path().join(name);
            let written = write(&path, None, sample().into_iter().map(Ok), "meta").unwrap();
            assert_eq!(written, sample().len() as u64);
            let reader = open(&path).unwrap();
            assert_eq!(reader.format(), Format::from_path(&path).unwrap(), "{name}");
            assert_eq!(reader.collect::<Result<Vec<_>, _>>().unwrap(), sample(), "{name}");
        }
    }

    #[test]
    fn native_files_keep_threads_and_rep_files_drop_them() {
        let dir = tempfile::tempdir().unwrap();
        let steps: Vec<ThreadOp> =
            sample().into_iter().enumerate().map(|(i, op)| ThreadOp { thread: (i % 3) as u16, op }).collect();
        for (name, kept) in [("t.hlt.zst", true), ("t.rep", false)] {
            let path = dir.path().join(name);
            write_steps(&path, None, steps.iter().copied().map(Ok), "", Fields { threads: true, levels: false })
                .unwrap();
            let reader = open(&path).unwrap();
            assert_eq!(reader.has_threads(), kept, "{name}");
            let read: Vec<ThreadOp> = reader.steps().collect::<Result<_, _>>().unwrap();
            let expected: Vec<ThreadOp> =
                steps.iter().map(|s| if kept { *s } else { ThreadOp::single(s.op) }).collect();
            assert_eq!(read, expected, "{name}");
        }
    }

    #[test]
    fn content_decides_over_a_misleading_name() {
        let dir = tempfile::tempdir().unwrap();
        let native = dir.path().join("t.hlt");
        write(&native, None, sample().into_iter().map(Ok), "").unwrap();
        let renamed = dir.path().join("t.rep");
        std::fs::rename(&native, &renamed).unwrap();
        assert_eq!(open(&renamed).unwrap().format(), Format::Native);
        let unnamed = dir.path().join("trace.txt");
        std::fs::write(&unnamed, "= Start\n@ x + 0x10 0x8\n").unwrap();
        assert_eq!(open(&unnamed).unwrap().format(), Format::Mtrace);
    }

    #[test]
    fn a_failing_source_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["t.hlt", "t.rep", "t.mtrace.zst"] {
            let path = dir.path().join(name);
            let ops = sample().into_iter().map(Ok).chain(std::iter::once(Err(TraceError::Invalid {
                path: "src".into(),
                index: 9,
                what: crate::Misuse::DoubleFree(9),
            })));
            assert!(write(&path, None, ops, "").is_err());
            assert!(!path.exists(), "{name}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no temporary file left");
    }

    #[test]
    fn unknown_content_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        std::fs::write(&path, [0xffu8, 0, 1]).unwrap();
        let message = open(&path).unwrap_err().to_string();
        assert!(message.contains("x.bin:1: expected a trace"), "{message}");
    }
}
