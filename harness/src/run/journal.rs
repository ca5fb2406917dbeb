//! The run's journal: every finished metrics pass, timing process and
//! latency pass, appended as it finishes, so that a killed run loses only
//! the work in flight and `heaplab run --resume` completes it exactly.
//!
//! `OUT/NAME/journal.hlj` holds one record per line: the CRC-32 of the
//! record in eight hex digits, a space, and the record as JSON. Each line is
//! written with one `write` and synced before the run goes on. A last line
//! that is cut short or fails its checksum is a write torn by a kill: it is
//! dropped (and `--resume` cuts the file back to the records before it). A
//! bad line anywhere else is damage, and reading refuses it.
//!
//! What is journaled, and when (never while a repetition is timed):
//! - a **metrics** record as each cell's metrics pass ends: the cell's
//!   deterministic rows, as the CSV text the files hold, so that the files
//!   rebuilt from the journal are the files of an uninterrupted run, byte
//!   for byte;
//! - a **timing** record when a timing process has answered: its
//!   repetitions of every cell. A process is the unit: one killed before it
//!   answered is run again whole by `--resume`, and so is one Ctrl-C
//!   stopped part-way (its repetitions count in the interrupted run's files,
//!   marked `complete: false` here);
//! - a **latency** record after each cell's latency pass.
//!
//! The run holds an exclusive lock on the journal while it runs: a second
//! `--resume`, or `heaplab report`, can tell a run still going from one
//! that was killed. Once a run is complete and its files are written, the
//! journal is removed: the files then hold all it held.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use heaplab_core::PerKind;
use heaplab_results::{CellText, DetailRow, HeapMapRow, ResultsDir, SeriesRow, SummaryRow};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::matrix::Matrix;
use super::protocol::CellTimes;
use crate::export::{CellResult, Latency, MetricsRows, Throughput};

/// The journal's file name in a run's directory.
pub const FILE: &str = "journal.hlj";

/// For tests: after this many records, the run sends itself SIGKILL, so
/// that a test can kill it at a known point between two records.
pub const KILL_AFTER_ENV: &str = "HEAPLAB_TEST_KILL_AFTER_RECORDS";

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "lowercase")]
pub enum Record {
    /// A cell's metrics pass ended.
    Metrics {
        /// The cell, in matrix order.
        cell: usize,
        /// Bytes its timed arenas pre-fault (its measured footprint).
        prefault_bytes: usize,
        /// Steps of its workload.
        steps: usize,
        /// Its rows, as CSV with a header line per file.
        rows: RowsText,
    },
    /// A timing process answered.
    Timing {
        /// The process, numbered from 0.
        process: usize,
        /// It ran every round of its plan (false: Ctrl-C stopped it).
        complete: bool,
        /// What it measured, per cell in matrix order.
        cells: Vec<CellTimes>,
    },
    /// A cell's latency pass ended.
    Latency {
        /// The cell, in matrix order.
        cell: usize,
        /// Per op kind (alloc, free, realloc): samples and `(percentile, ns)`.
        kinds: Vec<(u64, Vec<(f64, u64)>)>,
        /// The timer's own cost, subtracted from each sample.
        timer_overhead_ns: f64,
        /// The smallest step the timer shows (0 in older journals).
        #[serde(default)]
        timer_granularity_ns: f64,
    },
}

/// Records with the line (from 1) and the byte offset each was read from;
/// a metrics record's time series, details and heap maps are left in the
/// file (read again with [`metrics_text_at`] when the files are written), so
/// that a journal of any length is read in bounded memory.
pub type Records = Vec<(usize, u64, Record)>;

/// A cell's metrics rows as CSV text, exactly as the results files hold
/// them (floats round-trip through their shortest decimal form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowsText {
    /// The summary row.
    pub summary: String,
    /// The time series.
    pub series: String,
    /// The details.
    pub details: String,
    /// The heap-map frames.
    pub heapmap: String,
}

/// Why a journal cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Unreadable or unwritable.
    #[error("{path}: {source}")]
    Io {
        /// The journal.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A line before the last is not a record: not a torn write but damage.
    #[error("{path}:{line}: {what}; the journal is damaged before its last record, so it cannot be resumed")]
    Damaged {
        /// The journal.
        path: String,
        /// The line, from 1.
        line: usize,
        /// What was wrong.
        what: String,
    },
    /// A record that does not fit the run's matrix.
    #[error("{path}:{line}: {what}; the journal is not this run's")]
    Mismatch {
        /// The journal.
        path: String,
        /// The line, from 1.
        line: usize,
        /// What does not fit.
        what: String,
    },
    /// Another heaplab holds the lock: the run is still going.
    #[error("{path} is locked: the run is still going (or another heaplab is resuming it)")]
    Busy {
        /// The journal.
        path: String,
    },
}

fn csv_text<T: Serialize>(rows: &[T]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).expect("rows serialise to memory");
    }
    String::from_utf8(writer.into_inner().expect("writing to memory")).expect("CSV of strings is UTF-8")
}

fn csv_rows<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, csv::Error> {
    csv::Reader::from_reader(text.as_bytes()).deserialize().collect()
}

impl RowsText {
    /// The text of `rows`.
    pub fn new(rows: &MetricsRows) -> RowsText {
        RowsText {
            summary: csv_text(std::slice::from_ref(&rows.summary)),
            series: csv_text(&rows.series),
            details: csv_text(&rows.details),
            heapmap: csv_text(&rows.heapmap),
        }
    }

    /// Drop the time series, details and heap maps (they stay in the file).
    fn leave_out_the_heavy_text(&mut self) {
        (self.series, self.details, self.heapmap) = (String::new(), String::new(), String::new());
    }

    /// The rows again.
    pub fn rows(&self) -> Result<MetricsRows, String> {
        let bad = |file: &str, e: csv::Error| format!("its {file} rows do not read: {e}");
        let mut summary: Vec<SummaryRow> = csv_rows(&self.summary).map_err(|e| bad("summary", e))?;
        let series: Vec<SeriesRow> = csv_rows(&self.series).map_err(|e| bad("time-series", e))?;
        let details: Vec<DetailRow> = csv_rows(&self.details).map_err(|e| bad("details", e))?;
        let heapmap: Vec<HeapMapRow> = csv_rows(&self.heapmap).map_err(|e| bad("heap-map", e))?;
        match (summary.pop(), summary.is_empty()) {
            (Some(summary), true) => Ok(MetricsRows { summary, series, details, heapmap }),
            _ => Err("expected one summary row".into()),
        }
    }
}

impl Record {
    /// The latency record of `cell`.
    pub fn latency(cell: usize, latency: &Latency) -> Record {
        Record::Latency {
            cell,
            kinds: latency.kinds.iter().map(|(_, kind)| kind.clone()).collect(),
            timer_overhead_ns: latency.timer_overhead_ns,
            timer_granularity_ns: latency.timer_granularity_ns,
        }
    }
}

/// The journal of a run in progress: appended from any thread.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    written: AtomicUsize,
    kill_after: Option<usize>,
}

impl Journal {
    /// Start the journal of a new run in `dir`, and lock it.
    pub fn create(dir: &Path) -> Result<Journal, JournalError> {
        let path = dir.join(FILE);
        let io = |source| JournalError::Io { path: path.display().to_string(), source };
        let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path).map_err(io)?;
        Journal::locked(path, file)
    }

    /// Open the journal of the run in `dir` to go on with it: lock it, read
    /// its records, and cut off a torn last record.
    pub fn resume(dir: &Path) -> Result<(Journal, Records), JournalError> {
        let path = dir.join(FILE);
        let io = |source| JournalError::Io { path: path.display().to_string(), source };
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io)?;
        let journal = Journal::locked(path.clone(), file)?;
        let records = {
            let mut file = journal.file.lock().expect("the journal's lock is not poisoned");
            let (records, valid) = read_records(&path, &mut file)?;
            file.set_len(valid).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
            records
        };
        Ok((journal, records))
    }

    fn locked(path: PathBuf, file: File) -> Result<Journal, JournalError> {
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Busy { path: path.display().to_string() });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(JournalError::Io { path: path.display().to_string(), source });
            }
        }
        let kill_after = std::env::var(KILL_AFTER_ENV).ok().and_then(|n| n.parse().ok());
        Ok(Journal { path, file: Mutex::new(file), written: AtomicUsize::new(0), kill_after })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `record`, synced: once this returns, the record survives a
    /// kill.
    pub fn append(&self, record: &Record) -> io::Result<u64> {
        let json = serde_json::to_string(record).map_err(io::Error::other)?;
        let line = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
        let offset = {
            let mut file = self.file.lock().expect("the journal's lock is not poisoned");
            let offset = file.seek(SeekFrom::End(0))?;
            file.write_all(line.as_bytes())?;
            file.sync_data()?;
            offset
        };
        let written = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        if self.kill_after == Some(written) {
            kill_self();
        }
        Ok(offset)
    }
}

/// SIGKILL this process (the test hook of [`KILL_AFTER_ENV`]).
fn kill_self() -> ! {
    let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The journal of a run that is not going (not locked by anyone): its
/// records, a torn last record dropped. `None` when the run has no journal.
pub fn read_idle(dir: &Path) -> Result<Option<Records>, JournalError> {
    let path = dir.join(FILE);
    let io = |source| JournalError::Io { path: path.display().to_string(), source };
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io(error)),
    };
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(JournalError::Busy { path: path.display().to_string() }),
        Err(std::fs::TryLockError::Error(error)) => return Err(io(error)),
    }
    Ok(Some(read_records(&path, &mut file)?.0))
}

/// Every whole record with its line number and offset (the heavy text of
/// metrics records left out: see [`Records`]), and the length of the file
/// they fill (a torn last record left out). Read a line at a time.
fn read_records(path: &Path, file: &mut File) -> Result<(Records, u64), JournalError> {
    let shown = path.display().to_string();
    let io = |source| JournalError::Io { path: shown.clone(), source };
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut valid = 0;
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            break;
        }
        match parse_line(&line) {
            Ok(mut record) => {
                if let Record::Metrics { rows, .. } = &mut record {
                    rows.leave_out_the_heavy_text();
                }
                records.push((number, valid, record));
                valid += line.len() as u64;
            }
            // A kill tears only the last write.
            Err(_) if reader.fill_buf().map_err(io)?.is_empty() => break,
            Err(what) => return Err(JournalError::Damaged { path: shown, line: number, what }),
        }
    }
    Ok((records, valid))
}

/// The rows text of the metrics record at `offset` of the journal `file`.
pub fn metrics_text_at(file: &mut BufReader<File>, offset: u64) -> io::Result<RowsText> {
    file.seek(SeekFrom::Start(offset))?;
    let mut line = Vec::new();
    file.read_until(b'\n', &mut line)?;
    match parse_line(&line) {
        Ok(Record::Metrics { rows, .. }) => Ok(rows),
        Ok(_) => Err(io::Error::other(format!("byte {offset} of the journal is not a metrics record"))),
        Err(what) => Err(io::Error::other(format!("byte {offset} of the journal: {what}"))),
    }
}

fn parse_line(line: &[u8]) -> Result<Record, String> {
    let Some(line) = line.strip_suffix(b"\n") else {
        return Err("the record has no end of line".into());
    };
    let text = std::str::from_utf8(line).map_err(|_| "expected UTF-8 text".to_string())?;
    let (sum, json) = text.split_once(' ').ok_or("expected a checksum, a space and a JSON record")?;
    let sum = u32::from_str_radix(sum, 16).map_err(|_| format!("expected eight hex digits, found `{sum}`"))?;
    if crc32fast::hash(json.as_bytes()) != sum {
        return Err("the record does not match its checksum".into());
    }
    serde_json::from_str(json).map_err(|e| format!("expected a journal record: {e}"))
}

/// What a cell's metrics pass left.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsDone {
    /// Its rows; with `journal_at`, only its summary row (the rest is in
    /// the journal).
    pub rows: MetricsRows,
    /// Where its record starts in the journal, when its time series,
    /// details and heap maps were left there.
    pub journal_at: Option<u64>,
    /// Bytes its timed arenas pre-fault.
    pub prefault_bytes: usize,
    /// Steps of its workload.
    pub steps: usize,
}

/// What a timing process left.
#[derive(Debug, Clone, PartialEq)]
pub struct TimingDone {
    /// It ran every round of its plan.
    pub complete: bool,
    /// Per cell, in matrix order.
    pub cells: Vec<CellTimes>,
}

/// The finished work of a run: what the journal holds, or what this run
/// has done so far. The results files are made from it, whether the run
/// went straight through, was resumed, or is repaired after a kill.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Done {
    /// Per cell, in matrix order.
    pub metrics: Vec<Option<MetricsDone>>,
    /// Per timing process, in order.
    pub timing: Vec<TimingDone>,
    /// Per cell, in matrix order.
    pub latency: Vec<Option<Latency>>,
}

impl Done {
    /// Nothing done yet, of `cells` cells.
    pub fn new(cells: usize) -> Done {
        Done { metrics: vec![None; cells], timing: Vec::new(), latency: vec![None; cells] }
    }

    /// The work `records` say is finished, for `cells` cells: only timing
    /// processes that ran their whole plan, in order, are kept. When a
    /// matrix is given, each metrics record must name its cell.
    pub fn from_records(
        path: &Path,
        records: Records,
        cells: usize,
        matrix: Option<&Matrix>,
    ) -> Result<Done, JournalError> {
        let mismatch =
            |line: usize, what: String| JournalError::Mismatch { path: path.display().to_string(), line, what };
        let mut done = Done::new(cells);
        for (line, offset, record) in records {
            match record {
                Record::Metrics { cell, prefault_bytes, steps, rows } => {
                    let rows = rows.rows().map_err(|what| mismatch(line, what))?;
                    let slot = done
                        .metrics
                        .get_mut(cell)
                        .ok_or_else(|| mismatch(line, format!("cell {cell} of a matrix of {cells}")))?;
                    if let Some(matrix) = matrix {
                        let expected = &matrix.cells[cell];
                        let workload = matrix.workload(expected);
                        let row = &rows.summary;
                        if row.allocator != expected.allocator.spec()
                            || row.workload != workload.name
                            || row.seed != workload.seed
                        {
                            return Err(mismatch(
                                line,
                                format!(
                                    "cell {cell} is {} on {}, but this run's is {} on {}",
                                    row.allocator,
                                    row.workload,
                                    expected.allocator.spec(),
                                    workload.name
                                ),
                            ));
                        }
                    }
                    *slot = Some(MetricsDone { rows, journal_at: Some(offset), prefault_bytes, steps });
                }
                Record::Timing { process, complete, cells: times } => {
                    if times.len() != cells {
                        return Err(mismatch(line, format!("timing of {} cells in a matrix of {cells}", times.len())));
                    }
                    // Incomplete processes, and whatever a later process
                    // would build on them, are run again.
                    if complete && process == done.timing.len() {
                        done.timing.push(TimingDone { complete, cells: times });
                    }
                }
                Record::Latency { cell, kinds, timer_overhead_ns, timer_granularity_ns } => {
                    let slot = done
                        .latency
                        .get_mut(cell)
                        .ok_or_else(|| mismatch(line, format!("cell {cell} of a matrix of {cells}")))?;
                    let mut kinds = kinds.into_iter();
                    let mut next = || kinds.next().ok_or_else(|| mismatch(line, "expected three op kinds".into()));
                    let (alloc, free, realloc) = (next()?, next()?, next()?);
                    *slot = Some(Latency {
                        kinds: PerKind { alloc, free, realloc },
                        timer_overhead_ns,
                        timer_granularity_ns,
                    });
                }
            }
        }
        Ok(done)
    }

    /// Timed repetitions done, of every cell.
    pub fn reps(&self) -> usize {
        self.timing.iter().flat_map(|t| &t.cells).map(|c| c.seconds.len()).sum()
    }

    /// Timing processes that ran their whole plan.
    pub fn complete_processes(&self) -> usize {
        self.timing.iter().take_while(|t| t.complete).count()
    }

    /// Every cell whose metrics pass finished, in matrix order, with what
    /// its timed passes measured.
    ///
    /// A cell whose time series, details and heap maps were left in the
    /// journal has them empty here; [`Done::write`] reads them back.
    pub fn results(&self) -> Vec<CellResult> {
        (0..self.metrics.len()).filter_map(|index| self.result(index)).collect()
    }

    fn result(&self, index: usize) -> Option<CellResult> {
        let metrics = self.metrics[index].as_ref()?;
        let (mut seconds, mut processes, mut passes) = (Vec::new(), Vec::new(), 0);
        for (process, timing) in self.timing.iter().enumerate() {
            let times = &timing.cells[index];
            passes = times.passes;
            processes.extend(std::iter::repeat_n(process, times.seconds.len()));
            seconds.extend(&times.seconds);
        }
        let throughput = (!seconds.is_empty()).then(|| Throughput::new(passes, seconds, processes, metrics.steps));
        Some(CellResult { metrics: metrics.rows.clone(), throughput, latency: self.latency[index].clone() })
    }

    /// Write the results files of every cell whose metrics pass finished,
    /// one cell at a time: what was left in the journal (at `journal`) is
    /// read back from it, so that the files of a run of any size are
    /// written in the memory of one cell. The cells written.
    pub fn write(&self, results: &ResultsDir, journal: Option<&Path>) -> io::Result<usize> {
        let spilled = self.metrics.iter().flatten().any(|m| m.journal_at.is_some());
        let mut reader = match (journal, spilled) {
            (Some(path), true) => Some(BufReader::new(File::open(path)?)),
            (None, true) => return Err(io::Error::other("rows left in a journal, and no journal to read them from")),
            _ => None,
        };
        let mut count = 0;
        let cells = (0..self.metrics.len()).filter_map(|index| {
            let metrics = self.metrics[index].as_ref()?;
            let cell = self.result(index)?;
            count += 1;
            Some((metrics.journal_at, cell))
        });
        results.write_cells(cells.map(|(journal_at, cell)| {
            let mut text = CellText::of(&cell.rows())?;
            if let (Some(offset), Some(reader)) = (journal_at, reader.as_mut()) {
                let stored = metrics_text_at(reader, offset)?;
                (text.series, text.details, text.heapmap) =
                    (body(&stored.series), body(&stored.details), body(&stored.heapmap));
            }
            Ok(text)
        }))?;
        Ok(count)
    }
}

/// CSV text without its header line.
fn body(text: &str) -> String {
    text.split_once('\n').map_or(String::new(), |(_, rows)| rows.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(process: usize) -> Record {
        Record::Timing { process, complete: true, cells: vec![CellTimes { passes: 2, seconds: vec![0.1 + 0.2, 1e-9] }] }
    }

    #[test]
    fn records_survive_a_torn_last_write_and_refuse_damage() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::create(dir.path()).unwrap();
        journal.append(&timing(0)).unwrap();
        journal.append(&timing(1)).unwrap();
        drop(journal);
        let path = dir.path().join(FILE);
        let whole = std::fs::read(&path).unwrap();
        // A write torn by a kill: the start of a third record.
        let mut torn = whole.clone();
        torn.extend_from_slice(&whole[..20]);
        std::fs::write(&path, &torn).unwrap();
        let (journal, records) = Journal::resume(dir.path()).unwrap();
        assert_eq!(records.into_iter().map(|(_, _, r)| r).collect::<Vec<_>>(), [timing(0), timing(1)]);
        drop(journal);
        assert_eq!(std::fs::read(&path).unwrap(), whole, "the torn record is cut off");
        // A whole last line with a wrong checksum is torn too (its bytes
        // reached the disk out of order); before the last, it is damage.
        let mut flipped = whole.clone();
        let at = flipped.len() - 3;
        flipped[at] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(read_idle(dir.path()).unwrap().unwrap().len(), 1);
        flipped.extend_from_slice(&whole);
        std::fs::write(&path, &flipped).unwrap();
        let error = read_idle(dir.path()).unwrap_err().to_string();
        assert!(error.contains(":2: the record does not match its checksum"), "{error}");
    }

    #[test]
    fn a_locked_journal_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let _journal = Journal::create(dir.path()).unwrap();
        assert!(matches!(Journal::resume(dir.path()), Err(JournalError::Busy { .. })));
        assert!(matches!(read_idle(dir.path()), Err(JournalError::Busy { .. })));
    }

    #[test]
    fn only_whole_timing_processes_in_order_are_kept() {
        let partial = Record::Timing { process: 1, complete: false, cells: vec![CellTimes::default()] };
        let records = vec![(1, 0, timing(0)), (2, 0, partial), (3, 0, timing(2)), (4, 0, timing(1))];
        let done = Done::from_records(Path::new("j"), records, 1, None).unwrap();
        assert_eq!(done.timing.len(), 2);
        assert_eq!(done.reps(), 4);
    }
}
