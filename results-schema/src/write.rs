//! Writing a results directory: `meta.json` as the run goes, the CSV files
//! whole when it ends. What a run has finished before then is in its
//! journal (the harness's `run::journal`), from which the files are made.

use std::fs;
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
        fn file<T: Serialize + Default>(dir: &Path, name: &str, rows: Vec<&T>) -> io::Result<()> {
            let mut bytes = format!("{}\n", header_of::<T>()).into_bytes();
            bytes.extend(csv_bytes(&rows, false)?);
            write_atomic(&dir.join(name), &bytes)
        }
        let dir = &self.dir;
        file(dir, "summary.csv", cells.iter().map(|c| &c.summary).collect())?;
        file(dir, "latency.csv", cells.iter().flat_map(|c| &c.latency).collect())?;
        file(dir, "throughput.csv", cells.iter().flat_map(|c| &c.throughput).collect())?;
        file(dir, "timeseries.csv", cells.iter().flat_map(|c| &c.series).collect())?;
        file(dir, "details.csv", cells.iter().flat_map(|c| &c.details).collect())?;
        file(dir, "heapmap.csv", cells.iter().flat_map(|c| &c.heapmap).collect())
    }

    /// Rewrite `meta.json`.
    pub fn write_meta(&self, meta: &Meta) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        json.push(b'\n');
        write_atomic(&self.dir.join("meta.json"), &json)
    }
}
