//! Writing a results directory as cells finish.
//!
//! Every file but the time series, the details and the heap maps is
//! rewritten whole after each finished cell, through a temporary file
//! renamed into place; those three are appended with one `write` per cell
//! and file. An interrupted run therefore leaves complete files holding the
//! cells finished so far.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{DetailRow, HeapMapRow, LatencyRow, Meta, SeriesRow, SummaryRow, ThroughputRow};

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

/// The files of one run, written as cells finish.
#[derive(Debug)]
pub struct ResultsDir {
    dir: PathBuf,
    summary: Vec<SummaryRow>,
    latency: Vec<LatencyRow>,
    throughput: Vec<ThroughputRow>,
    timeseries: File,
    details: File,
    heapmap: File,
}

impl ResultsDir {
    /// Create `dir` (which must not hold results already) and its files.
    pub fn create(dir: &Path, meta: &Meta) -> io::Result<ResultsDir> {
        if dir.join("summary.csv").exists() || dir.join("meta.json").exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already holds results; choose another --name or remove it", dir.display()),
            ));
        }
        fs::create_dir_all(dir)?;
        let appended = |name: &str, header: String| -> io::Result<File> {
            let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(dir.join(name))?;
            file.write_all(header.as_bytes())?;
            file.write_all(b"\n")?;
            Ok(file)
        };
        let results = ResultsDir {
            dir: dir.to_path_buf(),
            summary: Vec::new(),
            latency: Vec::new(),
            throughput: Vec::new(),
            timeseries: appended("timeseries.csv", header_of::<SeriesRow>())?,
            details: appended("details.csv", header_of::<DetailRow>())?,
            heapmap: appended("heapmap.csv", header_of::<HeapMapRow>())?,
        };
        results.write_meta(meta)?;
        results.rewrite()?;
        Ok(results)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The summary rows so far.
    pub fn summary(&self) -> &[SummaryRow] {
        &self.summary
    }

    /// Record a finished cell in every file.
    pub fn add(&mut self, cell: CellRows) -> io::Result<()> {
        // One write per cell and file: a row is never half-written.
        self.timeseries.write_all(&csv_bytes(&cell.series, false)?)?;
        self.timeseries.sync_data()?;
        self.details.write_all(&csv_bytes(&cell.details, false)?)?;
        self.heapmap.write_all(&csv_bytes(&cell.heapmap, false)?)?;
        self.latency.extend(cell.latency);
        self.throughput.extend(cell.throughput);
        self.summary.push(cell.summary);
        self.rewrite()
    }

    fn rewrite(&self) -> io::Result<()> {
        let whole =
            |rows: Vec<u8>, header: String| if rows.is_empty() { format!("{header}\n").into_bytes() } else { rows };
        write_atomic(
            &self.dir.join("summary.csv"),
            &whole(csv_bytes(&self.summary, true)?, header_of::<SummaryRow>()),
        )?;
        write_atomic(
            &self.dir.join("latency.csv"),
            &whole(csv_bytes(&self.latency, true)?, header_of::<LatencyRow>()),
        )?;
        write_atomic(
            &self.dir.join("throughput.csv"),
            &whole(csv_bytes(&self.throughput, true)?, header_of::<ThroughputRow>()),
        )
    }

    /// Rewrite `meta.json`.
    pub fn write_meta(&self, meta: &Meta) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        json.push(b'\n');
        write_atomic(&self.dir.join("meta.json"), &json)
    }
}
