//! Writing a results directory: `meta.json` as the run goes, the CSV files
//! whole when it ends. What a run has finished before then is in its
//! journal (the harness's `run::journal`), from which the files are made.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{DetailRow, ExecRow, HeapMapRow, LatencyRow, Meta, ReplayRow, SeriesRow, SummaryRow, ThroughputRow};

/// Everything one finished cell adds to the files.
#[derive(Debug, Clone, PartialEq)]
pub struct CellRows {
    /// Its `summary.csv` row.
    pub summary: SummaryRow,
    /// Its `timeseries.csv` rows.
    pub series: Vec<SeriesRow>,
    /// Its `details.csv` rows.
    pub details: Vec<DetailRow>,
    /// Its `heapmap.csv` rows.
    pub heapmap: Vec<HeapMapRow>,
    /// Its `latency.csv` rows.
    pub latency: Vec<LatencyRow>,
    /// Its `throughput.csv` rows.
    pub throughput: Vec<ThroughputRow>,
}

/// One cell's rows as the files take them: the small files' rows, and the
/// time series, details and heap maps as CSV text without a header line
/// (as a run's journal keeps them).
#[derive(Debug, Clone, PartialEq)]
pub struct CellText {
    /// Its `summary.csv` row.
    pub summary: SummaryRow,
    /// Its `latency.csv` rows.
    pub latency: Vec<LatencyRow>,
    /// Its `throughput.csv` rows.
    pub throughput: Vec<ThroughputRow>,
    /// Its `timeseries.csv` lines.
    pub series: String,
    /// Its `details.csv` lines.
    pub details: String,
    /// Its `heapmap.csv` lines.
    pub heapmap: String,
}

impl CellText {
    /// The text of `cell`.
    pub fn of(cell: &CellRows) -> io::Result<CellText> {
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(io::Error::other);
        Ok(CellText {
            summary: cell.summary.clone(),
            latency: cell.latency.clone(),
            throughput: cell.throughput.clone(),
            series: text(csv_bytes(&cell.series, false)?)?,
            details: text(csv_bytes(&cell.details, false)?)?,
            heapmap: text(csv_bytes(&cell.heapmap, false)?)?,
        })
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory,
/// synced before it is renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new().prefix(".heaplab-").suffix(".tmp").tempfile_in(directory)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_data()?;
    // Temporary files are private; results are for reading.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary.as_file().set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    temporary.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `rows` as CSV, with the header line only when `header`.
fn csv_bytes<T: Serialize>(rows: &[T], header: bool) -> io::Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new().has_headers(header).from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(io::Error::other)?;
    }
    writer.into_inner().map_err(|e| io::Error::other(e.to_string()))
}

/// The header line of `T`'s file, from the field names serde knows (so an
/// empty file still names its columns).
fn header_of<T: Serialize + Default>() -> String {
    let bytes = csv_bytes(&[T::default()], true).expect("serialising to memory");
    String::from_utf8(bytes).expect("CSV is UTF-8").lines().next().unwrap_or_default().to_string()
}

/// The files of one run. `meta.json` is written when the run starts and
/// whenever its status changes; the CSV files are written whole, each
/// through a temporary file renamed into place, when the run ends (or is
/// repaired), so that none is ever half-written.
#[derive(Debug)]
pub struct ResultsDir {
    dir: PathBuf,
}

impl ResultsDir {
    /// Create `dir` (which must not hold a run already) and its `meta.json`.
    pub fn create(dir: &Path, meta: &Meta) -> io::Result<ResultsDir> {
        if dir.join("summary.csv").exists() || dir.join("meta.json").exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already holds results; choose another --name or remove it", dir.display()),
            ));
        }
        fs::create_dir_all(dir)?;
        let results = ResultsDir { dir: dir.to_path_buf() };
        results.write_meta(meta)?;
        Ok(results)
    }

    /// The run in `dir`, to resume or repair.
    pub fn open(dir: &Path) -> ResultsDir {
        ResultsDir { dir: dir.to_path_buf() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write every CSV file from `cells`, in their order.
    pub fn write(&self, cells: &[CellRows]) -> io::Result<()> {
        self.write_cells(cells.iter().map(CellText::of))
    }

    /// Write every CSV file from `cells`, in their order, one cell at a
    /// time: a run of any size is written in the memory of one cell. Each
    /// file goes to a temporary file renamed into place once all are
    /// written, so that no file is ever half-written.
    pub fn write_cells(&self, cells: impl IntoIterator<Item = io::Result<CellText>>) -> io::Result<()> {
        let names = ["summary.csv", "latency.csv", "throughput.csv", "timeseries.csv", "details.csv", "heapmap.csv"];
        let headers = [
            header_of::<SummaryRow>(),
            header_of::<LatencyRow>(),
            header_of::<ThroughputRow>(),
            header_of::<SeriesRow>(),
            header_of::<DetailRow>(),
            header_of::<HeapMapRow>(),
        ];
        let mut files = Vec::new();
        for header in &headers {
            let temporary = tempfile::Builder::new().prefix(".heaplab-").suffix(".tmp").tempfile_in(&self.dir)?;
            let mut writer = io::BufWriter::new(temporary);
            writer.write_all(header.as_bytes())?;
            writer.write_all(b"\n")?;
            files.push(writer);
        }
        for cell in cells {
            let cell = cell?;
            files[0].write_all(&csv_bytes(std::slice::from_ref(&cell.summary), false)?)?;
            files[1].write_all(&csv_bytes(&cell.latency, false)?)?;
            files[2].write_all(&csv_bytes(&cell.throughput, false)?)?;
            files[3].write_all(cell.series.as_bytes())?;
            files[4].write_all(cell.details.as_bytes())?;
            files[5].write_all(cell.heapmap.as_bytes())?;
        }
        let mut finished = Vec::new();
        for writer in files {
            let temporary = writer.into_inner().map_err(|e| e.into_error())?;
            temporary.as_file().sync_data()?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                temporary.as_file().set_permissions(fs::Permissions::from_mode(0o644))?;
            }
            finished.push(temporary);
        }
        for (temporary, name) in finished.into_iter().zip(names) {
            temporary.persist(self.dir.join(name)).map_err(|e| e.error)?;
        }
        Ok(())
    }

    /// Write `exec.csv` (`heaplab exec`'s runs), through a temporary file.
    pub fn write_exec(&self, rows: &[ExecRow]) -> io::Result<()> {
        self.write_whole("exec.csv", rows)
    }

    /// Write `replay.csv` (`heaplab exec --replay`), through a temporary file.
    pub fn write_replay(&self, rows: &[ReplayRow]) -> io::Result<()> {
        self.write_whole("replay.csv", rows)
    }

    fn write_whole<T: Serialize + Default>(&self, name: &str, rows: &[T]) -> io::Result<()> {
        let mut bytes = header_of::<T>().into_bytes();
        bytes.push(b'\n');
        bytes.extend(csv_bytes(rows, false)?);
        write_atomic(&self.dir.join(name), &bytes)
    }

    /// Rewrite `meta.json`.
    pub fn write_meta(&self, meta: &Meta) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        json.push(b'\n');
        write_atomic(&self.dir.join("meta.json"), &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_exec_csv_still_names_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        ResultsDir::open(dir.path()).write_exec(&[]).unwrap();
        let text = fs::read_to_string(dir.path().join("exec.csv")).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("allocator,workload,rep,pass,wall_seconds,"), "{text}");
    }
}
