//! heaplab's reports: charts, an HTML report and a Markdown report, made
//! only from what `heaplab run` wrote to a results directory. Reports never
//! run anything.
//!
//! It opens with the run's facts, a workloads table and a summary across
//! workloads (geometric means of ratios to a baseline allocator). Per
//! workload (and seed) it shows a summary table, caveats, and:
//! - **throughput**: the median of the timed repetitions per allocator, with
//!   the min–max spread as an error bar;
//! - **latency**: the percentile spectrum of alloc and free latencies (log
//!   scale, x in "nines": p90, p99, p99.9);
//! - **memory over time**: requested R, granted G and footprint H per allocator;
//! - **fragmentation over time**: internal (G − R)/G and external 1 − L/F
//!   over the arena and below the footprint, and the unusable free share at
//!   the p99 request;
//! - **heap maps**: the arena over time (address across, time down): live
//!   payload, free holes, overhead;
//! - **free blocks at peak**: free bytes by block size (powers of two), the
//!   `/proc/buddyinfo` picture for any allocator, taken when R peaked;
//! - **buddy levels**: `/proc/buddyinfo` per order, every order, and the
//!   vmstat unusable-free and fragmentation indices per order, at the peak
//!   and over time;
//! - **slab caches**: each cache's efficiency (`%Ef` of tools/mm/slabinfo.c)
//!   for buddy+slab allocators.
//!
//! Each figure is a module of `figures` (in report order); each kind of
//! chart a module of [`charts`].

pub mod charts;
mod figures;
pub mod replay;
pub mod seeds;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use charts::{Chart, ExactMap, HeapMapChart};
use heaplab_results::{Meta, Results, RunStatus};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A results file is missing or malformed.
    #[error("{0}")]
    Input(String),
    /// Drawing failed.
    #[error("drawing a chart: {0}")]
    Chart(String),
    /// `--baseline-alloc` names no allocator of the run.
    #[error("--baseline-alloc {wanted}: the run has no such allocator; it has {}", .known.join(", "))]
    UnknownBaseline {
        /// What was asked for.
        wanted: String,
        /// The run's allocators.
        known: Vec<String>,
    },
    /// Writing failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        error: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |error| ReportError::Io { path: path.display().to_string(), error }
}

/// How to show names: canonical specs are long, labels drop defaults.
pub struct Labels<'a> {
    /// Allocator spec → label.
    pub allocator: &'a dyn Fn(&str) -> String,
    /// Workload name → label.
    pub workload: &'a dyn Fn(&str) -> String,
}

impl std::fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Labels")
    }
}

/// What a report wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// `index.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// Chart files (SVG and PNG).
    pub charts: Vec<PathBuf>,
}

/// A file-name fragment from a label.
fn slug(text: &str) -> String {
    let mut slug: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    slug.trim_matches('-').chars().take(60).collect()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A table as HTML, in a box that scrolls rather than push the page wider.
fn html_table<H: AsRef<str>>(header: &[H], rows: &[Vec<String>]) -> String {
    let mut html = String::from("<div class=\"wide\"><table><tr>");
    for h in header {
        let _ = write!(html, "<th>{}</th>", html_escape(h.as_ref()));
    }
    html.push_str("</tr>\n");
    for row in rows {
        html.push_str("<tr>");
        for (column, cell) in row.iter().enumerate() {
            // A long spec wraps after its separators, not inside a word.
            let text = if column == 0 { breakable(cell) } else { html_escape(cell) };
            let _ = write!(html, "<td>{text}</td>");
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table></div>\n");
    html
}

/// `text` escaped, with a line-break opportunity after each `:` and `,`.
fn breakable(text: &str) -> String {
    html_escape(text).replace(':', ":<wbr>").replace(',', ",<wbr>")
}

/// One section of the report: a heading, a line under it, a table and
/// figures.
pub(crate) struct Section {
    heading: String,
    note: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Figures of the table that are not comparable as they stand, and why.
    caveats: Vec<String>,
    figures: Vec<Figure>,
}

/// Per-seed sections shown per workload; past them, the figures across
/// seeds stand for the rest.
const MAX_SEED_SECTIONS: usize = 8;

/// One chart of the report: where it went and what it says.
pub(crate) struct Figure {
    title: String,
    caption: String,
    svg_file: String,
    png_file: String,
    /// The HTML report's markup for it: an `<img>` of its SVG or PNG file.
    inline: String,
    /// The figures as a table too, under the picture.
    table: Option<Table>,
}

/// Writes the charts of a report and remembers them.
pub(crate) struct Writer<'a> {
    dir: PathBuf,
    written: Vec<PathBuf>,
    labels: &'a Labels<'a>,
}

impl Writer<'_> {
    /// Render `chart` to SVG and PNG files named after `stem`; the page
    /// shows the SVG, or the PNG for dense pictures (`as_png`).
    pub(crate) fn figure<C: Chart>(
        &mut self,
        stem: &str,
        title: &str,
        caption: &str,
        chart: &C,
        as_png: bool,
    ) -> Result<Figure, ReportError> {
        let svg = charts::svg(chart)?;
        let (svg_file, png_file) = (format!("charts/{stem}.svg"), format!("charts/{stem}.png"));
        let svg_path = self.dir.join(&svg_file);
        std::fs::write(&svg_path, &svg).map_err(io_error(&svg_path))?;
        let png_path = self.dir.join(&png_file);
        charts::png(chart, &png_path)?;
        self.written.extend([svg_path, png_path.clone()]);
        // The page links its charts, which are files beside it anyway: an
        // inlined chart would weigh the page down by its every point
        // (6 MiB for 95 cells), a link costs a line.
        let inline =
            format!("<img alt=\"{}\" src=\"{}\">", html_escape(title), if as_png { &png_file } else { &svg_file });
        Ok(Figure { title: title.to_string(), caption: caption.to_string(), svg_file, png_file, inline, table: None })
    }
}

/// Make the report of `results` in `out`: `index.html` (self-contained),
/// `report.md` and `charts/`.
pub fn write_report(results: &Results, out: &Path, labels: &Labels<'_>) -> Result<Written, ReportError> {
    write_report_with(results, out, labels, &Options::default())
}

/// How a report is made beyond its labels.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The allocator the cross-workload summary divides by (default: the
    /// run's first allocator).
    pub baseline: Option<String>,
}

/// [`write_report`] with [`Options`]; an unknown baseline allocator is an error.
pub fn write_report_with(
    results: &Results,
    out: &Path,
    labels: &Labels<'_>,
    options: &Options,
) -> Result<Written, ReportError> {
    let allocators = results.allocators();
    let baseline = match &options.baseline {
        Some(wanted) => allocators
            .iter()
            .find(|a| *a == wanted || (labels.allocator)(a) == *wanted)
            .cloned()
            .ok_or_else(|| ReportError::UnknownBaseline { wanted: wanted.clone(), known: allocators.clone() })?,
        None => allocators.first().cloned().unwrap_or_default(),
    };
    std::fs::create_dir_all(out.join("charts")).map_err(io_error(out))?;
    let mut writer = Writer { dir: out.to_path_buf(), written: Vec::new(), labels };
    let thread_counts = results.thread_counts();
    let mut sections: Vec<Section> = summary_section(results, labels, &baseline).into_iter().collect();
    sections.extend(figures::threads::scaling_sections(results, labels, &mut writer)?);
    for &threads in &thread_counts {
        // One thread count at a time: its sections read as a run of their own.
        let at = if thread_counts.len() > 1 { results.at_threads(threads) } else { results.clone() };
        let suffix = if thread_counts.len() > 1 || threads != 1 {
            format!("{threads} thread{}", if threads == 1 { "" } else { "s" })
        } else {
            String::new()
        };
        sections.extend(across_seeds(&at, labels, &mut writer)?);
        let mut shown: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (index, (workload, seed)) in at.groups().into_iter().enumerate() {
            let count = shown.entry(workload.clone()).or_default();
            *count += 1;
            if *count > MAX_SEED_SECTIONS {
                continue;
            }
            let label = (labels.workload)(&workload);
            let notes: Vec<String> = seed
                .map(|seed| format!("seed {seed}"))
                .into_iter()
                .chain((!suffix.is_empty()).then(|| suffix.clone()))
                .collect();
            let heading = if notes.is_empty() { label.clone() } else { format!("{label} ({})", notes.join(", ")) };
            let stem = if suffix.is_empty() {
                format!("{:02}-{}", index + 1, slug(&heading))
            } else {
                format!("t{threads}-{:02}-{}", index + 1, slug(&heading))
            };
            let figures = figures::group_figures(&at, &workload, seed, &stem, &mut writer)?;
            let (header, rows) = table_rows(&at, &workload, seed, labels);
            let caveats = caveats(at.rows(&workload, seed).iter().map(|r| r.allocator.as_str()), labels);
            sections.push(Section {
                heading,
                // The full spec under the heading, unless the label is it already.
                note: if label == workload { String::new() } else { workload },
                header: header.into_iter().map(String::from).collect(),
                rows,
                caveats,
                figures,
            });
        }
    }
    if !results.replay.is_empty() {
        sections.push(replay_section(results, labels));
    }
    let html = out.join("index.html");
    let workloads = workload_rows(results, labels);
    std::fs::write(&html, render_html(results, &sections, &workloads)).map_err(io_error(&html))?;
    let markdown = out.join("report.md");
    std::fs::write(&markdown, render_markdown(results, &sections, &workloads)).map_err(io_error(&markdown))?;
    Ok(Written { html, markdown, charts: writer.written })
}

/// `heaplab exec --replay`: each program run for real beside its trace
/// replayed, and whether replay ranks the allocators as reality does.
fn replay_section(results: &Results, labels: &Labels<'_>) -> Section {
    let mut note = String::from(
        "Kendall's τ-b between the rankings of the allocators, per program (1: replay orders them as the program \
         does; 0: replay says nothing of the order; −1: reversed). Only heaplab's families have a replay footprint. ",
    );
    note.push_str(&replay::verdicts(&results.replay).join(". "));
    note.push('.');
    let rows = results
        .replay
        .iter()
        .map(|r| {
            vec![
                r.program.clone(),
                (labels.allocator)(&r.allocator),
                r.exec_wall_seconds.map_or(NOT_AVAILABLE.into(), |v| format!("{v:.3}")),
                one(r.replay_ns_per_op),
                r.exec_peak_rss_bytes.map_or(NOT_AVAILABLE.into(), |v| format!("{:.1}", v as f64 / 1048576.0)),
                r.replay_peak_footprint_bytes.map_or(NOT_AVAILABLE.into(), |v| format!("{:.1}", v as f64 / 1048576.0)),
                one(r.replay_utilization_pct),
            ]
        })
        .collect();
    Section {
        heading: "Replay versus reality".to_string(),
        note,
        header: [
            "program",
            "allocator",
            "exec wall s",
            "replay ns/op",
            "exec peak RSS MiB",
            "replay footprint MiB",
            "replay util %",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        caveats: Vec::new(),
        figures: Vec::new(),
    }
}

/// What a table shows for a figure the allocator cannot report (as the
/// terminal tables do).
const NOT_AVAILABLE: &str = "-";

fn one(value: Option<f64>) -> String {
    value.map_or(NOT_AVAILABLE.into(), |v| format!("{v:.1}"))
}

/// A section per workload run with several seeds: each deterministic
/// figure over its seeds, per allocator ([`seeds`]), and the utilization
/// and internal fragmentation as bars with their 95 % intervals.
fn across_seeds(results: &Results, labels: &Labels<'_>, writer: &mut Writer<'_>) -> Result<Vec<Section>, ReportError> {
    let mut workloads: Vec<(String, Vec<u64>)> = Vec::new();
    for (workload, seed) in results.groups() {
        let Some(seed) = seed else { continue };
        match workloads.iter_mut().find(|(w, _)| *w == workload) {
            Some((_, seeds)) => seeds.push(seed),
            None => workloads.push((workload, vec![seed])),
        }
    }
    let allocators = results.allocators();
    let mut sections = Vec::new();
    for (index, (workload, seeds)) in workloads.into_iter().filter(|(_, seeds)| seeds.len() >= 2).enumerate() {
        let label = (labels.workload)(&workload);
        let rows_of = |allocator: &str| -> Vec<&heaplab_results::SummaryRow> {
            results.summary.iter().filter(|r| r.allocator == allocator && r.workload == workload).collect()
        };
        let mut header = vec!["allocator".to_string(), "seeds".to_string()];
        header.extend(seeds::FIGURES.iter().map(|(name, _)| name.to_string()));
        let mut rows = Vec::new();
        let mut bars: [Vec<charts::Bar>; 2] = [Vec::new(), Vec::new()];
        for allocator in &allocators {
            let cells = rows_of(allocator);
            if cells.is_empty() {
                continue;
            }
            let mut row = vec![(labels.allocator)(allocator), cells.len().to_string()];
            for (name, get) in &seeds::FIGURES {
                let values: Vec<f64> = cells.iter().filter_map(|r| get(r)).filter(|v| v.is_finite()).collect();
                row.push(match seeds::spread(&values) {
                    Some(s) => format!("{:.2} ± {:.2} [{:.2}, {:.2}]", s.mean, s.sd, s.low, s.high),
                    None => NOT_AVAILABLE.to_string(),
                });
                let chart = match *name {
                    "util %" => Some(0),
                    "int frag at peak %" => Some(1),
                    _ => None,
                };
                if let (Some(chart), Some(s)) = (chart, seeds::spread(&values)) {
                    bars[chart].push(((labels.allocator)(allocator), s.mean, Some((s.low, s.high))));
                }
            }
            rows.push(row);
        }
        let heading = format!("{label} across {} seeds", seeds.len());
        let stem = format!("seeds-{:02}-{}", index + 1, slug(&label));
        let mut figures = Vec::new();
        for (bars, (name, y_label, file)) in bars.into_iter().zip([
            ("utilization across seeds", "max R / max H (%)", "utilization"),
            ("internal fragmentation at peak across seeds", "(G − R)/G at peak R (%)", "internal-frag"),
        ]) {
            if bars.is_empty() {
                continue;
            }
            let chart = charts::Bars {
                title: format!("{label}: {name}"),
                y_label: y_label.to_string(),
                bars,
                ..Default::default()
            };
            let caption = format!(
                "{name}, per allocator: the mean over {} seeds with its 95 % confidence interval as the error bar (the method is under the section's heading), from summary.csv.",
                seeds.len()
            );
            figures.push(writer.figure(&format!("{stem}-{file}"), name, &caption, &chart, false)?);
        }
        let shown = if seeds.len() > MAX_SEED_SECTIONS {
            format!("; per-seed sections below for the first {MAX_SEED_SECTIONS} seeds")
        } else {
            String::new()
        };
        sections.push(Section {
            heading,
            note: format!("{workload}. Each cell: {}{shown}.", seeds::METHOD),
            header,
            rows,
            caveats: caveats(allocators.iter().map(String::as_str), labels),
            figures,
        });
    }
    Ok(sections)
}

/// A latency in ns, marked `~` when it lies within 3× of the clock's step
/// (`granularity_ns`), which no latency resolves more finely.
fn latency(ns: Option<u64>, granularity_ns: Option<f64>) -> String {
    match (ns, granularity_ns) {
        (Some(v), Some(g)) if g > 0.0 && v as f64 <= 3.0 * g => format!("~{v}"),
        (Some(v), _) => v.to_string(),
        (None, _) => "-".into(),
    }
}

/// The summary table columns: (title, value).
fn table_rows(
    results: &Results,
    workload: &str,
    seed: Option<u64>,
    labels: &Labels<'_>,
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    if results.rows(workload, seed).iter().any(|r| r.wall_seconds.is_some()) {
        return exec_table_rows(results, workload, labels);
    }
    let header = vec![
        "allocator",
        "Mops/s ± CI",
        "alloc p99 ns",
        "free p99 ns",
        "int frag %",
        "rounding / overhead at peak",
        "ext frag %",
        "ext frag below H %",
        "unusable at p99 %",
        "holes %",
        "J&W #4 %",
        "util %",
        "failed (frag)",
    ];
    let rows = results
        .rows(workload, seed)
        .into_iter()
        .map(|r| {
            vec![
                (labels.allocator)(&r.allocator),
                mops_with_interval(r),
                latency(r.alloc_p99_ns, r.timer_granularity_ns),
                latency(r.free_p99_ns, r.timer_granularity_ns),
                one(r.internal_frag_at_peak_pct),
                match (r.rounding_at_peak_bytes, r.overhead_at_peak_bytes) {
                    (Some(a), Some(b)) => format!("{a} / {b}"),
                    _ => NOT_AVAILABLE.into(),
                },
                one(r.external_frag_mean_pct),
                one(r.external_frag_footprint_mean_pct),
                one(r.unusable_at_p99_mean_pct),
                one(r.holes_at_peak_pct),
                one(r.jw4_pct),
                one(r.utilization_pct),
                format!(
                    "{} ({})",
                    r.failed_allocs,
                    r.fragmentation_failures.map_or(NOT_AVAILABLE.into(), |f| f.to_string())
                ),
            ]
        })
        .collect();
    (header, rows)
}

/// Across workloads: per allocator, the geometric mean over workloads of
/// its median throughput and its utilization each divided by the
/// baseline's, with the smallest and largest ratio (at the run's first
/// thread count, each workload's rows averaged over its seeds). `None`
/// for a run of one workload.
fn summary_section(results: &Results, labels: &Labels<'_>, baseline: &str) -> Option<Section> {
    let threads = results.thread_counts().first().copied().unwrap_or(1);
    let workloads: Vec<String> = results
        .workloads()
        .into_iter()
        .filter(|w| results.summary.iter().any(|r| r.workload == *w && r.threads == threads))
        .collect();
    if workloads.len() < 2 {
        return None;
    }
    let mean_of = |allocator: &str, workload: &str, get: fn(&heaplab_results::SummaryRow) -> Option<f64>| {
        let values: Vec<f64> = results
            .summary
            .iter()
            .filter(|r| r.allocator == allocator && r.workload == workload && r.threads == threads)
            .filter_map(get)
            .filter(|v| v.is_finite())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let ratios = |allocator: &str, get: fn(&heaplab_results::SummaryRow) -> Option<f64>| -> String {
        let ratios: Vec<f64> = workloads
            .iter()
            .filter_map(|w| Some(mean_of(allocator, w, get)? / mean_of(baseline, w, get).filter(|b| *b > 0.0)?))
            .filter(|r| *r > 0.0)
            .collect();
        if ratios.is_empty() {
            return NOT_AVAILABLE.into();
        }
        let geomean = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
        let (low, high) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
        format!("{geomean:.2} [{low:.2}, {high:.2}] over {}", ratios.len())
    };
    let rows = results
        .allocators()
        .iter()
        .map(|allocator| {
            vec![
                (labels.allocator)(allocator),
                ratios(allocator, |r| r.ops_per_sec),
                ratios(allocator, |r| r.utilization_pct),
            ]
        })
        .collect();
    Some(Section {
        heading: "Across workloads".into(),
        note: format!(
            "Each cell: the geometric mean over workloads of the allocator's figure divided by {}'s, \
             [the smallest ratio, the largest], over how many workloads both have it (each workload's seeds averaged{}). \
             Above 1: more throughput, or more utilization, than the baseline. `heaplab report --baseline-alloc SPEC` picks another baseline.",
            (labels.allocator)(baseline),
            if threads == 1 { String::new() } else { format!("; at {threads} threads") }
        ),
        header: ["allocator", "throughput ÷ baseline", "utilization ÷ baseline"].map(String::from).to_vec(),
        rows,
        caveats: Vec::new(),
        figures: Vec::new(),
    })
}

/// The workloads table: one row per workload, with what every allocator
/// saw of it (ops, allocations, the peak of live bytes, the request sizes
/// the unusable share is taken at) and the SHA-256 of a trace's bytes.
fn workload_rows(results: &Results, labels: &Labels<'_>) -> Table {
    let header = vec![
        "workload",
        "as given",
        "seeds",
        "ops",
        "allocs",
        "peak live bytes",
        "request p50 B",
        "request p99 B",
        "SHA-256",
    ];
    let rows = results
        .workloads()
        .iter()
        .map(|workload| {
            let workload = workload.as_str();
            let rows: Vec<&heaplab_results::SummaryRow> =
                results.summary.iter().filter(|r| r.workload == workload).collect();
            let mut seeds: Vec<Option<u64>> = rows.iter().map(|r| r.seed).collect();
            seeds.sort_unstable();
            seeds.dedup();
            let first = rows[0];
            let digest = results.meta.inputs.iter().find(|i| i.workload == workload).map(|i| i.sha256.clone());
            vec![
                (labels.workload)(workload),
                workload.to_string(),
                seeds.len().to_string(),
                first.ops.to_string(),
                first.allocs.to_string(),
                // An allocator that refused requests peaks lower: the workload's own peak is the largest.
                rows.iter().map(|r| r.peak_requested_bytes).max().unwrap_or(0).to_string(),
                first.request_p50_bytes.map_or(NOT_AVAILABLE.into(), |b| b.to_string()),
                first.request_p99_bytes.map_or(NOT_AVAILABLE.into(), |b| b.to_string()),
                digest.unwrap_or_else(|| NOT_AVAILABLE.into()),
            ]
        })
        .collect();
    (header, rows)
}

/// What makes an allocator's figures not comparable as they stand: one
/// sentence per allocator family present, from the allocators' own READMEs.
const CAVEATS: [(&str, &str); 3] = [
    (
        "peer:buddy-slab",
        "its buddy hands out pages from the top of its region, so its address footprint H is the whole arena on most workloads \
         (allocators/peers/README.md): its holes, J&W and utilization figures measure that placement, not the memory its blocks need.",
    ),
    (
        "buddy",
        "a buddy level starts as a few top-order blocks, and 1 − L/F over the whole arena counts the untouched ones: \
         about 50 % from the first op. Read the figure below the footprint or the unusable share at p99 for it.",
    ),
    (
        "peer:glibc",
        "the unbounded references (glibc, mimalloc, jemalloc) keep their own memory outside the arena: \
         they have no fragmentation figures here, and their own statistics cover the whole process (allocators/peers/README.md).",
    ),
];

/// The caveats that apply to a table of `allocators`, each naming them.
fn caveats<'a>(allocators: impl Iterator<Item = &'a str>, labels: &Labels<'_>) -> Vec<String> {
    let allocators: Vec<&str> = allocators.collect();
    let family = |spec: &str| -> Option<&'static str> {
        let name = spec.split(':').take(2).collect::<Vec<_>>();
        match name.as_slice() {
            ["peer", "buddy-slab", ..] => Some("peer:buddy-slab"),
            ["buddy", ..] | ["slab", ..] => Some("buddy"),
            ["peer", "glibc" | "mimalloc" | "jemalloc", ..] => Some("peer:glibc"),
            _ => None,
        }
    };
    CAVEATS
        .iter()
        .filter_map(|(key, text)| {
            let named: Vec<String> =
                allocators.iter().filter(|a| family(a) == Some(*key)).map(|a| (labels.allocator)(a)).collect();
            (!named.is_empty()).then(|| format!("{}: {text}", named.join(", ")))
        })
        .collect()
}

/// Median Mops/s with half the width of its confidence interval (the
/// interval's level is in the definitions), or `-` without a timing.
fn mops_with_interval(r: &heaplab_results::SummaryRow) -> String {
    match (r.ops_per_sec, r.ops_per_sec_ci_low, r.ops_per_sec_ci_high) {
        (Some(v), Some(low), Some(high)) => format!("{:.1} ± {:.1}", v / 1e6, (high - low) / 2e6),
        (Some(v), _, _) => format!("{:.1}", v / 1e6),
        _ => "-".into(),
    }
}

/// The summary table of a `heaplab exec` program.
fn exec_table_rows(results: &Results, workload: &str, labels: &Labels<'_>) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "allocator",
        "wall s",
        "user s",
        "sys s",
        "peak RSS MiB",
        "minor faults",
        "allocs",
        "int frag %",
        "util %",
        "child processes",
        "failed",
    ];
    let seconds = |v: Option<f64>| v.map_or(NOT_AVAILABLE.into(), |v| format!("{v:.3}"));
    let count = |v: Option<u64>| v.map_or(NOT_AVAILABLE.into(), |v| v.to_string());
    let rows = results
        .rows(workload, None)
        .into_iter()
        .map(|r| {
            // Peers report no figures of their own: no metrics run.
            let measured = r.granted_at_peak_bytes.is_some();
            vec![
                (labels.allocator)(&r.allocator),
                seconds(r.wall_seconds),
                seconds(r.user_seconds),
                seconds(r.sys_seconds),
                r.peak_rss_bytes.map_or(NOT_AVAILABLE.into(), |v| format!("{:.1}", v as f64 / 1048576.0)),
                count(r.minor_faults),
                count(measured.then_some(r.allocs)),
                one(r.internal_frag_at_peak_pct),
                one(r.utilization_pct),
                count(r.child_processes),
                count(measured.then_some(r.failed_allocs)),
            ]
        })
        .collect();
    (header, rows)
}

const DEFINITIONS: &str = "R: requested bytes of live blocks; G: granted bytes; H: footprint (high-water mark); F: free bytes; L: largest free block. \
int frag: (G − R)/G at the op where R peaks (Wilson et al. 1995), split into rounding (size classes, powers of two) and overhead (headers, alignment) in bytes (Johnstone & Wilson 1998). \
ext frag: mean over samples of 1 − L/F over the whole arena; below H: the same counting only free bytes below the footprint; \
unusable at p99: mean share of free bytes in blocks smaller than the workload's p99 request (Linux's unusable free index, mm/vmstat.c, in bytes; design notes §10). holes: (H − G − M)/H at R's peak. J&W #4: max H / max R − 1 (Johnstone & Wilson 1998). \
util: max R / max H (the CS:APP malloc-lab figure). failed: refused allocations, in brackets those refused while F sufficed. \
Mops/s: the median over timed repetitions ± half the width of its confidence interval (at the level in summary.csv's ops_per_sec_ci_level_pct). \
~: a latency within 3× of the clock's step (the timer in the run's facts), which no latency resolves more finely.";

/// The run's facts the report shows, by name.
fn meta_str(meta: &Meta, key: &str) -> String {
    match key {
        "run_name" => meta.run_name.clone(),
        "heaplab_version" => meta.heaplab_version.clone(),
        "git_revision" => meta.git_revision.clone(),
        "rustc" => meta.rustc.clone(),
        "cpu_model" => meta.cpu_model.clone(),
        "date_utc" => meta.date_utc.clone(),
        "status" => meta.status.name().to_string(),
        _ => "?".to_string(),
    }
}

/// The machine's and the build's facts that move figures, and the inputs'
/// digests, as (name, value) rows; "not recorded" for results from before
/// heaplab wrote them.
fn system_rows(meta: &Meta) -> Vec<(String, String)> {
    let or_unknown = |value: &str| if value.is_empty() { "not recorded".to_string() } else { value.to_string() };
    let mut rows = vec![
        ("kernel".to_string(), or_unknown(&meta.system.kernel)),
        ("transparent huge pages".to_string(), or_unknown(&meta.system.transparent_hugepages)),
        ("CPU governor".to_string(), or_unknown(&meta.system.cpu_governor)),
        ("cores".to_string(), meta.cores.to_string()),
    ];
    let flags: Vec<&str> = meta.system.cpu_flags.split_whitespace().collect();
    rows.push((
        "CPU flags".to_string(),
        if flags.is_empty() {
            "not recorded".to_string()
        } else {
            format!("{} flags: {}", flags.len(), flags.join(" "))
        },
    ));
    rows.push(("Cargo.lock SHA-256".to_string(), or_unknown(&meta.build.cargo_lock_sha256)));
    if !meta.build.cargo_lock_sha256.is_empty() {
        let tree = if meta.build.dirty { "uncommitted changes (dirty)" } else { "clean" };
        rows.push(("working tree".to_string(), tree.to_string()));
    }
    rows.push((
        "timer".to_string(),
        match &meta.timer {
            Some(timer) if timer.granularity_ticks > 0 => format!(
                "{}: {:.1} ns per read pair subtracted from every sample; steps of {:.1} ns ({} ticks), so a latency within 3× of that is not resolved",
                timer.clock, timer.overhead_ns, timer.granularity_ns, timer.granularity_ticks
            ),
            Some(timer) => format!("{}: {:.1} ns per read pair subtracted from every sample", timer.clock, timer.overhead_ns),
            None => "no latency pass".to_string(),
        },
    ));
    for input in &meta.inputs {
        rows.push((format!("input {}", input.workload), format!("SHA-256 {}", input.sha256)));
    }
    rows
}

/// What an unfinished run lacks, and how to finish it; `None` when complete.
fn incomplete(results: &Results) -> Option<String> {
    let meta = &results.meta;
    if meta.status == RunStatus::Complete {
        return None;
    }
    let mut counts = vec![format!("{} of {} metrics passes", meta.cells_finished, meta.cells_total)];
    if meta.reps_total > 0 {
        counts.push(format!("{} of {} timed repetitions", meta.reps_finished, meta.reps_total));
    }
    if meta.latency_total > 0 {
        counts.push(format!("{} of {} latency passes", meta.latency_finished, meta.latency_total));
    }
    let out = results.dir.parent().map_or(".".to_string(), |p| p.display().to_string());
    Some(format!(
        "This run is incomplete ({}: {}): the figures show only what finished. To complete it: heaplab run --resume {} --out {}",
        meta.status.name(),
        counts.join(", "),
        results.dir.file_name().map_or(meta.run_name.clone(), |n| n.to_string_lossy().into_owned()),
        if out.is_empty() { "." } else { &out }
    ))
}

fn reproduce_command(results: &Results) -> String {
    // `run --from` does not repeat an exec run: its command line does.
    if results.meta.settings.exec.is_some() {
        return results.meta.command_line.join(" ");
    }
    format!("heaplab run --from {}/meta.json", results.dir.display())
}

type Table = (Vec<&'static str>, Vec<Vec<String>>);

/// Once the page has loaded, it measures itself and writes what it found
/// into a hidden `#layout-check` element, for a headless browser's
/// `--dump-dom` to read: the viewport width, the elements reaching past it,
/// the table boxes whose contents need scrolling, and the images and how
/// many of them failed to load.
const LAYOUT_CHECK: &str = r#"<script>
addEventListener('load', () => {
  const width = document.documentElement.clientWidth;
  const past = [...document.body.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest('.wide'));
  const scrolling = [...document.querySelectorAll('.wide')].filter(box => box.scrollWidth > box.clientWidth + 1);
  const images = [...document.images];
  const check = document.createElement('div');
  check.id = 'layout-check';
  check.hidden = true;
  check.dataset.width = width;
  check.dataset.overflowing = past.length + scrolling.length;
  check.dataset.first = [...past, ...scrolling].slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + e.textContent.slice(0, 40)).join(' | ');
  check.dataset.images = images.length;
  check.dataset.broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.appendChild(check);
});
</script>
"#;

fn render_html(results: &Results, sections: &[Section], workloads: &Table) -> String {
    let mut html = String::new();
    let run = meta_str(&results.meta, "run_name");
    let run = run.as_str();
    let command = results.meta.command_line.join(" ");
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>heaplab report: {run}</title>\n<style>\
body{{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.25em .45em;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}th{{background:#f2f2f2}}figure{{margin:1.5em 0}}\
figcaption{{color:#555;max-width:70em}}code{{background:#f4f4f4;padding:.1em .3em}}nav a{{margin-right:1em}}\
svg,img{{max-width:100%;height:auto}}\
.wide{{overflow-x:auto;max-width:100%}}td.text{{text-align:left}}table{{font-size:.92em}}th{{vertical-align:bottom}}\
td:first-child{{overflow-wrap:break-word;max-width:16em}}.workloads code{{word-break:break-all}}.workloads td.text{{max-width:30em}}\
.caveat{{background:#fff8e1;border-left:3px solid #e0a800;padding:.4em .7em;max-width:70em}}\
@media print{{@page{{size:A4 landscape;margin:1cm}}body{{max-width:none;margin:0;padding:0;font-size:9pt}}nav{{display:none}}\
.wide{{overflow:visible}}table{{width:100%;font-size:7.5pt}}td,th{{padding:.1em .25em;overflow-wrap:anywhere}}\
tr,figure{{break-inside:avoid}}h2,h3{{break-after:avoid}}}}</style></head><body>\n<h1>heaplab report: {run}</h1>\n",
        run = html_escape(run)
    );
    let _ = writeln!(
        html,
        "<p>How each allocator fared on each workload: speed, latency, and where the memory went. Every figure below comes from the files of <code>{}</code>.</p>",
        html_escape(&results.dir.display().to_string())
    );
    if let Some(note) = incomplete(results) {
        let _ =
            writeln!(html, "<p style=\"background:#fff3cd;padding:.6em\"><strong>{}</strong></p>", html_escape(&note));
    }
    let _ = writeln!(html, "<h2>Run</h2><table>");
    for (name, key) in [
        ("heaplab", "heaplab_version"),
        ("git revision", "git_revision"),
        ("rustc", "rustc"),
        ("CPU", "cpu_model"),
        ("date (UTC)", "date_utc"),
        ("status", "status"),
    ] {
        let _ = writeln!(
            html,
            "<tr><th>{name}</th><td style=\"text-align:left\">{}</td></tr>",
            html_escape(&meta_str(&results.meta, key))
        );
    }
    for (name, value) in system_rows(&results.meta) {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td style=\"text-align:left;word-break:break-all\">{}</td></tr>",
            html_escape(&name),
            html_escape(&value)
        );
    }
    let _ = writeln!(
        html,
        "<tr><th>command</th><td style=\"text-align:left\"><code>{}</code></td></tr>",
        html_escape(&command)
    );
    let _ = writeln!(
        html,
        "<tr><th>to reproduce</th><td style=\"text-align:left\"><code>{}</code></td></tr></table>",
        html_escape(&reproduce_command(results))
    );
    let _ = writeln!(html, "<p><small>{}</small></p>", html_escape(DEFINITIONS));
    let _ = writeln!(html, "<h2>Workloads</h2><div class=\"wide\"><table class=\"workloads\"><tr>");
    for h in &workloads.0 {
        let _ = write!(html, "<th>{}</th>", html_escape(h));
    }
    let _ = writeln!(html, "</tr>");
    for row in &workloads.1 {
        let _ = write!(html, "<tr>");
        for (column, cell) in row.iter().enumerate() {
            match column {
                1 => {
                    let _ = write!(html, "<td class=\"text\"><code>{}</code></td>", html_escape(cell));
                }
                8 if cell.len() > 16 => {
                    let _ = write!(
                        html,
                        "<td class=\"text\"><code title=\"{}\">{}…</code></td>",
                        html_escape(cell),
                        html_escape(&cell[..16])
                    );
                }
                _ => {
                    let _ = write!(html, "<td>{}</td>", html_escape(cell));
                }
            }
        }
        let _ = writeln!(html, "</tr>");
    }
    let _ = writeln!(html, "</table></div>");
    let _ = writeln!(html, "<nav>");
    for (index, section) in sections.iter().enumerate() {
        let _ = write!(html, "<a href=\"#w{index}\">{}</a>", html_escape(&section.heading));
    }
    let _ = writeln!(html, "</nav>");
    for (index, section) in sections.iter().enumerate() {
        let Section { heading, note, header, rows, caveats, figures } = section;
        let _ = writeln!(html, "<h2 id=\"w{index}\">{}</h2>", html_escape(heading));
        if !note.is_empty() {
            let _ = writeln!(html, "<p><small>{}</small></p>", html_escape(note));
        }
        html.push_str(&html_table(header, rows));
        for caveat in caveats {
            let _ = writeln!(html, "<p class=\"caveat\"><strong>Caveat:</strong> {}</p>", html_escape(caveat));
        }
        for figure in figures {
            let table = figure.table.as_ref().map_or(String::new(), |(header, rows)| html_table(header, rows));
            let _ = writeln!(
                html,
                "<figure><h3>{}</h3>\n{}\n{table}<figcaption>{} <a href=\"{}\">SVG</a> · <a href=\"{}\">PNG</a></figcaption></figure>",
                html_escape(&figure.title),
                figure.inline,
                html_escape(&figure.caption),
                figure.svg_file,
                figure.png_file
            );
        }
    }
    html.push_str(LAYOUT_CHECK);
    html.push_str("</body></html>\n");
    html
}

fn render_markdown(results: &Results, sections: &[Section], workloads: &Table) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# heaplab report: {}\n", meta_str(&results.meta, "run_name"));
    let _ = writeln!(
        md,
        "heaplab {} ({}), {}, {}, {}.\n\nReproduce: `{}`\n\n{DEFINITIONS}\n",
        meta_str(&results.meta, "heaplab_version"),
        meta_str(&results.meta, "git_revision"),
        meta_str(&results.meta, "rustc"),
        meta_str(&results.meta, "cpu_model"),
        meta_str(&results.meta, "date_utc"),
        reproduce_command(results)
    );
    for (name, value) in system_rows(&results.meta) {
        let _ = writeln!(md, "- {name}: {}", value.replace('|', "\\|"));
    }
    md.push('\n');
    if let Some(note) = incomplete(results) {
        let _ = writeln!(md, "> **{note}**\n");
    }
    let _ = writeln!(md, "## Workloads\n\n| {} |\n|{}", workloads.0.join(" | "), "---|".repeat(workloads.0.len()));
    for row in &workloads.1 {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    md.push('\n');
    for Section { heading, note, header, rows, caveats, figures } in sections {
        let _ = writeln!(md, "## {heading}\n");
        if !note.is_empty() {
            let _ = writeln!(md, "`{note}`\n");
        }
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
        for row in rows {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md.push('\n');
        for caveat in caveats {
            let _ = writeln!(md, "> **Caveat:** {caveat}\n");
        }
        for figure in figures {
            let _ = writeln!(
                md,
                "### {}\n\n![{}]({})\n\n{}\n",
                figure.title, figure.title, figure.svg_file, figure.caption
            );
            if let Some((header, rows)) = &figure.table {
                let _ = writeln!(md, "| {} |\n|{}", header.join(" | "), "---|".repeat(header.len()));
                for row in rows {
                    let _ = writeln!(md, "| {} |", row.join(" | "));
                }
                md.push('\n');
            }
        }
    }
    md
}

/// Render the exact heap map of one op (for `heaplab heapmap`) to `path`,
/// SVG or PNG by extension, wrapped into `rows` rows.
pub fn write_exact_map(
    path: &Path,
    rows: u64,
    title: &str,
    span_bytes: u64,
    footprint_bytes: u64,
    note: Option<String>,
    extents: Vec<(u64, u64, char)>,
) -> Result<(), ReportError> {
    let chart = ExactMap { title: title.to_string(), span_bytes, footprint_bytes, note, extents, rows };
    write_chart(path, &chart)
}

/// Render a heap map over time to `path`, SVG or PNG by extension.
pub fn write_map_over_time(
    path: &Path,
    title: &str,
    span_bytes: u64,
    frames: Vec<(u64, String)>,
) -> Result<(), ReportError> {
    let chart = charts::WithLegend {
        chart: HeapMapChart { title: title.to_string(), span_bytes, frames, pixels: (1000, 700) },
        entries: charts::HEAPMAP_ENTRIES.to_vec(),
    };
    write_chart(path, &chart)
}

fn write_chart<C: Chart>(path: &Path, chart: &C) -> Result<(), ReportError> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        charts::png(chart, path)
    } else {
        std::fs::write(path, charts::svg(chart)?).map_err(io_error(path))
    }
}
