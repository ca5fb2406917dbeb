//! heaplab's reports: charts, an HTML report and a Markdown report, made
//! only from what `heaplab run` wrote to a results directory. Reports never
//! run anything.
//!
//! Per workload (and seed) the report shows a summary table and:
//! - **throughput**: the median of the timed repetitions per allocator, with
//!   the min–max spread as an error bar;
//! - **latency**: the percentile spectrum of alloc and free latencies (log
//!   scale, x in "nines": p90, p99, p99.9);
//! - **memory over time**: requested R, granted G and footprint H per allocator;
//! - **fragmentation over time**: internal (G − R)/G and external 1 − L/F;
//! - **heap maps**: the arena over time (address across, time down): live
//!   payload, free holes, overhead;
//! - **free blocks at peak**: free bytes by block size (powers of two), the
//!   `/proc/buddyinfo` picture for any allocator, taken when R peaked;
//! - **slab caches**: each cache's efficiency (`%Ef` of tools/mm/slabinfo.c)
//!   for buddy+slab allocators.

pub mod charts;
pub mod data;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use charts::{Bars, Chart, ExactMap, Grid, HEAPMAP_LEGEND, HeapMapChart, Lines};
use data::Results;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A results file is missing or malformed.
    #[error("{0}")]
    Input(String),
    /// Drawing failed.
    #[error("drawing a chart: {0}")]
    Chart(String),
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

/// The percentiles a latency spectrum shows, one tick each.
const SPECTRUM_SHOWN: [f64; 9] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0];

/// The tick of spectrum position `x`.
fn spectrum_label(x: f64) -> String {
    let index = x.round();
    if (x - index).abs() > 0.01 || index < 0.0 {
        return String::new();
    }
    match SPECTRUM_SHOWN.get(index as usize) {
        Some(100.0) => "max".into(),
        Some(p) => format!("p{p}"),
        None => String::new(),
    }
}

/// One chart of the report: where it went and what it says.
struct Figure {
    title: String,
    caption: String,
    svg_file: String,
    png_file: String,
    /// Inline markup for the HTML report (SVG text, or an <img> with a data URI).
    inline: String,
}

struct Writer<'a> {
    dir: PathBuf,
    written: Vec<PathBuf>,
    labels: &'a Labels<'a>,
}

impl Writer<'_> {
    /// Render `chart` to SVG and PNG files named after `stem`; inline the
    /// SVG, or the PNG for dense pictures.
    fn figure<C: Chart>(
        &mut self,
        stem: &str,
        title: &str,
        caption: &str,
        chart: &C,
        inline_png: bool,
    ) -> Result<Figure, ReportError> {
        let svg = charts::svg(chart)?;
        let (svg_file, png_file) = (format!("charts/{stem}.svg"), format!("charts/{stem}.png"));
        let svg_path = self.dir.join(&svg_file);
        std::fs::write(&svg_path, &svg).map_err(io_error(&svg_path))?;
        let png_path = self.dir.join(&png_file);
        charts::png(chart, &png_path)?;
        self.written.extend([svg_path, png_path.clone()]);
        let inline = if inline_png {
            let bytes = std::fs::read(&png_path).map_err(io_error(&png_path))?;
            format!(
                "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
                html_escape(title),
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )
        } else {
            // Drop the XML prologue, if any, to inline the element.
            svg.trim_start_matches(|c| c != '<').to_string()
        };
        Ok(Figure { title: title.to_string(), caption: caption.to_string(), svg_file, png_file, inline })
    }
}

/// Make the report of `results` in `out`: `index.html` (self-contained),
/// `report.md` and `charts/`.
pub fn write_report(results: &Results, out: &Path, labels: &Labels<'_>) -> Result<Written, ReportError> {
    std::fs::create_dir_all(out.join("charts")).map_err(io_error(out))?;
    let mut writer = Writer { dir: out.to_path_buf(), written: Vec::new(), labels };
    let mut sections = Vec::new();
    for (index, (workload, seed)) in results.groups().into_iter().enumerate() {
        let label = (labels.workload)(&workload);
        let heading = match seed {
            Some(seed) => format!("{label} (seed {seed})"),
            None => label.clone(),
        };
        let stem = format!("{:02}-{}", index + 1, slug(&heading));
        let figures = group_figures(results, &workload, seed, &stem, &mut writer)?;
        sections.push((heading, workload, seed, figures));
    }
    let html = out.join("index.html");
    std::fs::write(&html, render_html(results, &sections, labels)).map_err(io_error(&html))?;
    let markdown = out.join("report.md");
    std::fs::write(&markdown, render_markdown(results, &sections, labels)).map_err(io_error(&markdown))?;
    Ok(Written { html, markdown, charts: writer.written })
}

fn series_of(results: &Results, allocator: &str, workload: &str, seed: Option<u64>, metric: &str) -> Vec<(f64, f64)> {
    results
        .series
        .iter()
        .filter(|r| r.allocator == allocator && r.workload == workload && r.seed == seed && r.metric == metric)
        .map(|r| (r.op as f64, r.value))
        .collect()
}

fn group_figures(
    results: &Results,
    workload: &str,
    seed: Option<u64>,
    stem: &str,
    writer: &mut Writer<'_>,
) -> Result<Vec<Figure>, ReportError> {
    let rows = results.rows(workload, seed);
    let allocators: Vec<String> = rows.iter().map(|r| r.allocator.clone()).collect();
    let label = |a: &str| (writer.labels.allocator)(a);
    let labels: Vec<String> = allocators.iter().map(|a| label(a)).collect();
    let mut figures = Vec::new();

    // Throughput.
    if rows.iter().any(|r| r.ops_per_sec.is_some()) {
        let bars = Bars {
            title: "Throughput".into(),
            y_label: "million ops per second".into(),
            bars: rows
                .iter()
                .zip(&labels)
                .filter_map(|(r, l)| {
                    let median = r.ops_per_sec? / 1e6;
                    let range = r.ops_per_sec_min.zip(r.ops_per_sec_max).map(|(a, b)| (a / 1e6, b / 1e6));
                    Some((l.clone(), median, range))
                })
                .collect(),
        };
        figures.push(writer.figure(
            &format!("{stem}-throughput"),
            "Throughput",
            "Ops replayed per second: the median of the timed repetitions of the whole replay; the bar spans the slowest and the fastest repetition.",
            &bars,
            false,
        )?);
    }

    // Latency spectra.
    let mut spectra = Vec::new();
    for kind in ["alloc", "free"] {
        let series: Vec<(String, Vec<(f64, f64)>)> = allocators
            .iter()
            .zip(&labels)
            .map(|(a, l)| {
                let points = results
                    .latency
                    .iter()
                    .filter(|r| {
                        &r.allocator == a && r.workload == workload && r.seed == seed && r.kind == kind && r.samples > 0
                    })
                    .filter_map(|r| {
                        let position = SPECTRUM_SHOWN.iter().position(|&p| p == r.percentile)?;
                        Some((position as f64, r.latency_ns.max(1) as f64))
                    })
                    .collect();
                (l.clone(), points)
            })
            .filter(|(_, p): &(String, Vec<(f64, f64)>)| !p.is_empty())
            .collect();
        if !series.is_empty() {
            spectra.push(Lines {
                title: format!("{kind} latency"),
                x_label: "percentile".into(),
                y_label: "ns (log)".into(),
                series,
                log_y: true,
                thin: Vec::new(),
                x_ticks: Some(spectrum_label),
                pixels: (560, 400),
            });
        }
    }
    if !spectra.is_empty() {
        let columns = spectra.len();
        figures.push(writer.figure(
            &format!("{stem}-latency"),
            "Latency percentiles",
            "Per-call latency at each percentile from the median to the maximum, from the fenced cycle counter with the timer's own cost subtracted; log scale.",
            &Grid { charts: spectra, columns, cell: (560, 400) },
            false,
        )?);
    }

    // Memory and fragmentation over time.
    if !results.series.is_empty() {
        let mib = |points: Vec<(f64, f64)>| points.into_iter().map(|(x, y)| (x, y / 1048576.0)).collect::<Vec<_>>();
        let memory: Vec<Lines> = allocators
            .iter()
            .zip(&labels)
            .map(|(a, l)| Lines {
                title: l.clone(),
                x_label: "op".into(),
                y_label: "MiB".into(),
                series: vec![
                    ("requested R".into(), mib(series_of(results, a, workload, seed, "requested_bytes"))),
                    ("granted G".into(), mib(series_of(results, a, workload, seed, "granted_bytes"))),
                    ("footprint H".into(), mib(series_of(results, a, workload, seed, "footprint_bytes"))),
                ],
                log_y: false,
                thin: Vec::new(),
                x_ticks: None,
                pixels: (450, 300),
            })
            .collect();
        figures.push(writer.figure(
            &format!("{stem}-memory"),
            "Requested, granted and footprint over time",
            "R: bytes requested by live blocks; G: bytes granted to them (payload, headers, padding, rounding); H: footprint, the highest arena offset used so far. G − R is internal fragmentation; H − G − metadata is the holes the footprint carries.",
            &Grid { charts: memory, columns: 3, cell: (450, 300) },
            false,
        )?);
        let over_time = |metric: &str, title: &str| Lines {
            title: title.into(),
            x_label: "op".into(),
            y_label: "%".into(),
            series: allocators
                .iter()
                .zip(&labels)
                .map(|(a, l)| (l.clone(), series_of(results, a, workload, seed, metric)))
                .collect(),
            log_y: false,
            thin: Vec::new(),
            x_ticks: None,
            pixels: (560, 380),
        };
        figures.push(writer.figure(
            &format!("{stem}-fragmentation"),
            "Internal and external fragmentation over time",
            "Internal fragmentation (G − R)/G: bytes granted beyond the requests (Wilson et al. 1995). External fragmentation 1 − L/F: the share of free bytes outside the largest free block, over the whole arena.",
            &Grid { charts: vec![over_time("internal_frag_pct", "internal (G−R)/G"), over_time("external_frag_pct", "external 1−L/F")], columns: 2, cell: (560, 380) },
            false,
        )?);
    }

    // Heap maps.
    let maps: Vec<HeapMapChart> = allocators
        .iter()
        .zip(&labels)
        .filter_map(|(a, l)| {
            let frames: Vec<&data::HeapMapRow> = results
                .heapmap
                .iter()
                .filter(|r| &r.allocator == a && r.workload == workload && r.seed == seed)
                .collect();
            let span = frames.first()?.span_bytes;
            Some(HeapMapChart {
                title: l.clone(),
                span_bytes: span,
                frames: frames.iter().map(|f| (f.op, f.states.clone())).collect(),
                pixels: (450, 320),
            })
        })
        .collect();
    if !maps.is_empty() {
        figures.push(writer.figure(
            &format!("{stem}-heapmap"),
            "Heap maps over time",
            &format!("The arena from offset 0 to the largest footprint (across), frame by frame through the run (down). {HEAPMAP_LEGEND}."),
            &Grid { charts: maps, columns: 3, cell: (450, 320) },
            true,
        )?);
    }

    // Free blocks at the peak, and slab caches.
    let details = |a: &str, table: &str| -> BTreeMap<String, BTreeMap<String, f64>> {
        let mut rows: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for d in results
            .details
            .iter()
            .filter(|d| d.allocator == a && d.workload == workload && d.seed == seed && d.table == table)
        {
            rows.entry(d.row.clone()).or_default().insert(d.column.clone(), d.value);
        }
        rows
    };
    let free_charts: Vec<Bars> = allocators
        .iter()
        .zip(&labels)
        .filter_map(|(a, l)| {
            let rows = details(a, "free_blocks");
            if rows.is_empty() {
                return None;
            }
            let mut bars: Vec<(f64, String, f64)> = rows
                .values()
                .map(|c| {
                    let from = c.get("from_bytes").copied().unwrap_or(0.0);
                    (from, size_label(from), c.get("count").copied().unwrap_or(0.0))
                })
                .collect();
            bars.sort_by(|x, y| x.0.total_cmp(&y.0));
            Some(Bars {
                title: l.clone(),
                y_label: "free blocks".into(),
                bars: bars.into_iter().map(|(_, label, v)| (label, v, None)).collect(),
            })
        })
        .collect();
    if !free_charts.is_empty() {
        figures.push(writer.figure(
            &format!("{stem}-free-blocks"),
            "Free blocks by size when requested bytes peaked",
            "Free blocks in each power-of-two size class (at least the size shown, at most twice it), counted at the sample where R was largest: for a buddy system this is /proc/buddyinfo's nr_free per order; for any allocator, how the free space is cut up.",
            &Grid { charts: free_charts, columns: 3, cell: (450, 300) },
            false,
        )?);
    }
    let slab_charts: Vec<Bars> = allocators
        .iter()
        .zip(&labels)
        .filter_map(|(a, l)| {
            let rows = details(a, "slabinfo");
            let mut bars: Vec<(f64, String, f64)> = rows
                .iter()
                .filter(|(_, c)| c.get("slabs").copied().unwrap_or(0.0) > 0.0)
                .map(|(name, c)| {
                    (
                        c.get("object_size").copied().unwrap_or(0.0),
                        name.trim_start_matches("kmalloc-").to_string(),
                        c.get("efficiency_pct").copied().unwrap_or(0.0),
                    )
                })
                .collect();
            if bars.is_empty() {
                return None;
            }
            bars.sort_by(|x, y| x.0.total_cmp(&y.0));
            Some(Bars {
                title: format!("{l}: cache efficiency"),
                y_label: "%Ef".into(),
                bars: bars.into_iter().map(|(_, n, v)| (n, v, None)).collect(),
            })
        })
        .collect();
    if !slab_charts.is_empty() {
        let columns = slab_charts.len().min(2);
        figures.push(writer.figure(
            &format!("{stem}-slab"),
            "Slab cache efficiency when requested bytes peaked",
            "%Ef = objects in use × object size / (slabs × PAGE << order), per kmalloc cache, as tools/mm/slabinfo.c computes it: what the slab pages hold of live objects; the rest is free objects and slab tails.",
            &Grid { charts: slab_charts, columns, cell: (700, 360) },
            false,
        )?);
    }
    Ok(figures)
}

fn size_label(bytes: f64) -> String {
    let bytes = bytes as u64;
    if bytes >= 1 << 20 {
        format!("{}M", bytes >> 20)
    } else if bytes >= 1 << 10 {
        format!("{}K", bytes >> 10)
    } else {
        format!("{bytes}")
    }
}

/// What a table shows for a figure the allocator cannot report.
const NOT_AVAILABLE: &str = "n/a";

fn one(value: Option<f64>) -> String {
    value.map_or(NOT_AVAILABLE.into(), |v| format!("{v:.1}"))
}

/// The summary table columns: (title, value).
fn table_rows(
    results: &Results,
    workload: &str,
    seed: Option<u64>,
    labels: &Labels<'_>,
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "allocator",
        "Mops/s",
        "alloc p99 ns",
        "free p99 ns",
        "int frag %",
        "rounding / overhead at peak",
        "ext frag %",
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
                r.ops_per_sec.map_or("-".into(), |v| format!("{:.1}", v / 1e6)),
                r.alloc_p99_ns.map_or("-".into(), |v| v.to_string()),
                r.free_p99_ns.map_or("-".into(), |v| v.to_string()),
                one(r.internal_frag_at_peak_pct),
                match (r.rounding_at_peak_bytes, r.overhead_at_peak_bytes) {
                    (Some(a), Some(b)) => format!("{a} / {b}"),
                    _ => NOT_AVAILABLE.into(),
                },
                one(r.external_frag_mean_pct),
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

const DEFINITIONS: &str = "R: requested bytes of live blocks; G: granted bytes; H: footprint (high-water mark); F: free bytes; L: largest free block. \
int frag: (G − R)/G at the op where R peaks (Wilson et al. 1995), split into rounding (size classes, powers of two) and overhead (headers, alignment) in bytes (Johnstone & Wilson 1998). \
ext frag: mean over samples of 1 − L/F. holes: (H − G − M)/H at R's peak. J&W #4: max H / max R − 1 (Johnstone & Wilson 1998). \
util: max R / max H (the CS:APP malloc-lab figure). failed: refused allocations, in brackets those refused while F sufficed.";

fn meta_str<'a>(results: &'a Results, key: &str) -> &'a str {
    results.meta.get(key).and_then(|v| v.as_str()).unwrap_or("?")
}

fn reproduce_command(results: &Results) -> String {
    format!("heaplab run --from {}/meta.json", results.dir.display())
}

fn render_html(
    results: &Results,
    sections: &[(String, String, Option<u64>, Vec<Figure>)],
    labels: &Labels<'_>,
) -> String {
    let mut html = String::new();
    let run = meta_str(results, "run_name");
    let command = results
        .meta
        .get("command_line")
        .and_then(|v| v.as_array())
        .map_or(String::new(), |a| a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(" "));
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>heaplab report: {run}</title>\n<style>\
body{{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}th{{background:#f2f2f2}}figure{{margin:1.5em 0}}\
figcaption{{color:#555;max-width:70em}}code{{background:#f4f4f4;padding:.1em .3em}}nav a{{margin-right:1em}}\
svg,img{{max-width:100%;height:auto}}</style></head><body>\n<h1>heaplab report: {run}</h1>\n",
        run = html_escape(run)
    );
    let _ = writeln!(
        html,
        "<p>How each allocator fared on each workload: speed, latency, and where the memory went. Every figure below comes from the files of <code>{}</code>.</p>",
        html_escape(&results.dir.display().to_string())
    );
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
            html_escape(meta_str(results, key))
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
    let _ = writeln!(html, "<nav>");
    for (index, (heading, ..)) in sections.iter().enumerate() {
        let _ = write!(html, "<a href=\"#w{index}\">{}</a>", html_escape(heading));
    }
    let _ = writeln!(html, "</nav>");
    for (index, (heading, workload, seed, figures)) in sections.iter().enumerate() {
        let _ = writeln!(html, "<h2 id=\"w{index}\">{}</h2>", html_escape(heading));
        let _ = writeln!(html, "<p><small>{}</small></p>", html_escape(workload));
        let (header, rows) = table_rows(results, workload, *seed, labels);
        let _ = write!(html, "<table><tr>");
        for h in &header {
            let _ = write!(html, "<th>{}</th>", html_escape(h));
        }
        let _ = writeln!(html, "</tr>");
        for row in rows {
            let _ = write!(html, "<tr>");
            for cell in row {
                let _ = write!(html, "<td>{}</td>", html_escape(&cell));
            }
            let _ = writeln!(html, "</tr>");
        }
        let _ = writeln!(html, "</table>");
        for figure in figures {
            let _ = writeln!(
                html,
                "<figure><h3>{}</h3>\n{}\n<figcaption>{} <a href=\"{}\">SVG</a> · <a href=\"{}\">PNG</a></figcaption></figure>",
                html_escape(&figure.title),
                figure.inline,
                html_escape(&figure.caption),
                figure.svg_file,
                figure.png_file
            );
        }
    }
    html.push_str("</body></html>\n");
    html
}

fn render_markdown(
    results: &Results,
    sections: &[(String, String, Option<u64>, Vec<Figure>)],
    labels: &Labels<'_>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# heaplab report: {}\n", meta_str(results, "run_name"));
    let _ = writeln!(
        md,
        "heaplab {} ({}), {}, {}, {}.\n\nReproduce: `{}`\n\n{DEFINITIONS}\n",
        meta_str(results, "heaplab_version"),
        meta_str(results, "git_revision"),
        meta_str(results, "rustc"),
        meta_str(results, "cpu_model"),
        meta_str(results, "date_utc"),
        reproduce_command(results)
    );
    for (heading, workload, seed, figures) in sections {
        let _ = writeln!(md, "## {heading}\n\n`{workload}`\n");
        let (header, rows) = table_rows(results, workload, *seed, labels);
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
        for row in rows {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md.push('\n');
        for figure in figures {
            let _ = writeln!(
                md,
                "### {}\n\n![{}]({})\n\n{}\n",
                figure.title, figure.title, figure.svg_file, figure.caption
            );
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
    extents: Vec<(u64, u64, char)>,
) -> Result<(), ReportError> {
    let chart = ExactMap { title: title.to_string(), span_bytes, extents, rows };
    write_chart(path, &chart)
}

/// Render a heap map over time to `path`, SVG or PNG by extension.
pub fn write_map_over_time(
    path: &Path,
    title: &str,
    span_bytes: u64,
    frames: Vec<(u64, String)>,
) -> Result<(), ReportError> {
    let chart = HeapMapChart { title: title.to_string(), span_bytes, frames, pixels: (1000, 700) };
    write_chart(path, &chart)
}

fn write_chart<C: Chart>(path: &Path, chart: &C) -> Result<(), ReportError> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        charts::png(chart, path)
    } else {
        std::fs::write(path, charts::svg(chart)?).map_err(io_error(path))
    }
}
