//! The figures of one (workload, seed) group of a report, one module each,
//! in the order the report shows them. Each makes its figure from the
//! results, or none when the results hold nothing for it (a metrics-only
//! run has no throughput; only slab allocators have slab caches).
//!
//! Adding a figure: a module here with a `figure` function of the type
//! [`MakeFigure`], and its place in [`FIGURES`].

mod buddyinfo;
mod exec;
mod fragmentation;
mod free_blocks;
mod heapmaps;
mod latency;
mod levels;
mod memory;
mod slab;
pub(crate) mod threads;
mod throughput;

use std::collections::BTreeMap;

use heaplab_results::{Results, SummaryRow};

use crate::{Figure, ReportError, Writer};

/// What a figure is made from: one group of a results directory.
pub(crate) struct Group<'a> {
    /// The results.
    pub results: &'a Results,
    /// The group's workload.
    pub workload: &'a str,
    /// And seed.
    pub seed: Option<u64>,
    /// File names of the group's charts start with it.
    pub stem: &'a str,
    /// The group's summary rows, one per allocator.
    pub rows: Vec<&'a SummaryRow>,
    /// The allocators, in row order.
    pub allocators: Vec<String>,
    /// Their labels in charts.
    pub labels: Vec<String>,
}

impl Group<'_> {
    /// The chart file stem of the figure called `name`.
    fn file(&self, name: &str) -> String {
        format!("{}-{name}", self.stem)
    }

    /// The allocators with their labels.
    fn allocators(&self) -> impl Iterator<Item = (&str, &String)> {
        self.allocators.iter().map(String::as_str).zip(&self.labels)
    }

    /// One time series of `allocator`: `(op, value)`.
    fn series(&self, allocator: &str, metric: &str) -> Vec<(f64, f64)> {
        self.results
            .series
            .iter()
            .filter(|r| {
                r.allocator == allocator && r.workload == self.workload && r.seed == self.seed && r.metric == metric
            })
            .map(|r| (r.op as f64, r.value))
            .collect()
    }

    /// One detail table of `allocator`: row → column → value.
    fn details(&self, allocator: &str, table: &str) -> BTreeMap<String, BTreeMap<String, f64>> {
        let mut rows: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for d in self.results.details.iter().filter(|d| {
            d.allocator == allocator && d.workload == self.workload && d.seed == self.seed && d.table == table
        }) {
            rows.entry(d.row.clone()).or_default().insert(d.column.clone(), d.value);
        }
        rows
    }
}

/// Make one figure of a group, if the results hold what it shows.
pub(crate) type MakeFigure = fn(&Group<'_>, &mut Writer<'_>) -> Result<Option<Figure>, ReportError>;

/// Every figure, in report order.
pub(crate) const FIGURES: [MakeFigure; 14] = [
    throughput::figure,
    exec::wall,
    exec::rss,
    latency::figure,
    memory::figure,
    fragmentation::figure,
    heapmaps::figure,
    free_blocks::figure,
    buddyinfo::figure,
    buddyinfo::indices,
    buddyinfo::indices_over_time,
    slab::figure,
    levels::figure,
    levels::over_time,
];

/// The figures of the group `(workload, seed)`, their files named after `stem`.
pub(crate) fn group_figures(
    results: &Results,
    workload: &str,
    seed: Option<u64>,
    stem: &str,
    writer: &mut Writer<'_>,
) -> Result<Vec<Figure>, ReportError> {
    let rows = results.rows(workload, seed);
    let allocators: Vec<String> = rows.iter().map(|r| r.allocator.clone()).collect();
    let labels = allocators.iter().map(|a| (writer.labels.allocator)(a)).collect();
    let group = Group { results, workload, seed, stem, rows, allocators, labels };
    let mut figures = Vec::new();
    for make in FIGURES {
        figures.extend(make(&group, writer)?);
    }
    Ok(figures)
}
