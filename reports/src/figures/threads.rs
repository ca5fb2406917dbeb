//! Runs on several thread counts: per workload, throughput against threads
//! (ideal scaling dashed) and the blowup chart (bytes held in thread caches
//! and the footprint against threads), with a table of the scaling.

use heaplab_results::{Results, SummaryRow};

use crate::charts::Lines;
use crate::{Labels, ReportError, Section, Writer, slug};

const MIB: f64 = 1048576.0;

/// Thread counts on the x axis: whole numbers only.
fn whole_threads(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { String::new() }
}

/// One section per (workload, seed) of a run on two or more thread counts.
pub(crate) fn scaling_sections(
    results: &Results,
    labels: &Labels<'_>,
    writer: &mut Writer<'_>,
) -> Result<Vec<Section>, ReportError> {
    let counts = results.thread_counts();
    if counts.len() < 2 {
        return Ok(Vec::new());
    }
    let mut groups: Vec<(String, Option<u64>)> = Vec::new();
    for row in &results.summary {
        if !groups.contains(&(row.workload.clone(), row.seed)) {
            groups.push((row.workload.clone(), row.seed));
        }
    }
    let allocators = results.allocators();
    let mut sections = Vec::new();
    for (index, (workload, seed)) in groups.into_iter().enumerate() {
        let rows: Vec<&SummaryRow> =
            results.summary.iter().filter(|r| r.workload == workload && r.seed == seed).collect();
        let of = |allocator: &str, threads: u32| rows.iter().find(|r| r.allocator == allocator && r.threads == threads);
        let label = (labels.workload)(&workload);
        let heading = match seed {
            Some(seed) => format!("{label} (seed {seed}) on {} to {} threads", counts[0], counts[counts.len() - 1]),
            None => format!("{label} on {} to {} threads", counts[0], counts[counts.len() - 1]),
        };
        let stem = format!("scaling-{:02}-{}", index + 1, slug(&label));
        let mut table = Vec::new();
        let (mut throughput, mut thin) = (Vec::new(), Vec::new());
        let (mut blowup, mut blowup_thin) = (Vec::new(), Vec::new());
        for allocator in &allocators {
            let name = (labels.allocator)(allocator);
            let base = of(allocator, counts[0]).and_then(|r| r.ops_per_sec).map(|v| v / counts[0] as f64);
            let mut line = Vec::new();
            let (mut footprint, mut cached) = (Vec::new(), Vec::new());
            for &threads in &counts {
                let Some(row) = of(allocator, threads) else { continue };
                let mops = row.ops_per_sec.map(|v| v / 1e6);
                if let Some(mops) = mops {
                    line.push((threads as f64, mops));
                }
                if let Some(bytes) = row.peak_footprint_bytes {
                    footprint.push((threads as f64, bytes as f64 / MIB));
                }
                if let Some(bytes) = row.peak_cached_bytes {
                    cached.push((threads as f64, bytes as f64 / MIB));
                }
                let scaling = match (row.ops_per_sec, base) {
                    (Some(v), Some(b)) if b > 0.0 => format!("{:.2}×", v / (b * counts[0] as f64)),
                    _ => "-".into(),
                };
                table.push(vec![
                    name.clone(),
                    threads.to_string(),
                    mops.map_or("-".into(), |v| format!("{v:.1}")),
                    scaling,
                    row.remote_free_pct.map_or("-".into(), |v| format!("{v:.1}")),
                    row.peak_cached_bytes.map_or("-".into(), |v| format!("{:.2}", v as f64 / MIB)),
                    row.cache_bound_bytes.map_or("-".into(), |v| format!("{:.2}", v as f64 / MIB)),
                    row.peak_footprint_bytes.map_or("-".into(), |v| format!("{:.2}", v as f64 / MIB)),
                ]);
            }
            if let Some(b) = base.filter(|_| !line.is_empty()) {
                throughput.push((name.clone(), line));
                thin.push(false);
                throughput
                    .push((format!("{name}, ideal"), counts.iter().map(|&t| (t as f64, b * t as f64 / 1e6)).collect()));
                thin.push(true);
            }
            if !footprint.is_empty() {
                blowup.push((format!("{name}, footprint"), footprint));
                blowup_thin.push(false);
            }
            if !cached.is_empty() {
                blowup.push((format!("{name}, in caches"), cached));
                blowup_thin.push(true);
            }
        }
        let mut figures = Vec::new();
        if !throughput.is_empty() {
            let chart = Lines {
                title: "Throughput against threads".into(),
                x_label: "threads".into(),
                y_label: "million ops per second".into(),
                series: throughput,
                log_y: false,
                thin,
                x_ticks: Some(whole_threads),
                y_max: None,
                pixels: (900, 520),
            };
            figures.push(writer.figure(
                &format!("{stem}-throughput"),
                "Throughput against threads",
                "Median ops per second of the timed repetitions at each thread count, all threads together; the thin line of each allocator is ideal scaling from its first thread count.",
                &chart,
                false,
            )?);
        }
        if !blowup.is_empty() {
            let chart = Lines {
                title: "Footprint and cached bytes against threads".into(),
                x_label: "threads".into(),
                y_label: "MiB".into(),
                series: blowup,
                log_y: false,
                thin: blowup_thin,
                x_ticks: Some(whole_threads),
                y_max: None,
                pixels: (900, 520),
            };
            figures.push(writer.figure(
                &format!("{stem}-blowup"),
                "Blowup: footprint and bytes in caches against threads",
                "Peak footprint (the arena's high-water mark) and, for a caching layer, the most bytes its thread caches, depot and remote lists held at once (size-class bytes), from the deterministic pass, which replays one order of the threads' ops on one thread (a seeded interleaving, or a recorded trace's own).",
                &chart,
                false,
            )?);
        }
        sections.push(Section {
            heading,
            note: format!(
                "{workload}. Scaling: throughput over that at the first thread count. Remote frees: frees of a block another thread allocated."
            ),
            header: ["allocator", "threads", "Mops/s", "scaling", "remote frees %", "peak cached MiB", "cache bound MiB", "footprint MiB"]
                .map(String::from)
                .to_vec(),
            rows: table,
            caveats: Vec::new(),
            figures,
        });
    }
    Ok(sections)
}
