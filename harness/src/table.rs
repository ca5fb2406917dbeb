//! The summary printed after a run: one table per workload, one row per
//! allocator, the best value in each column marked with `*`.

use std::fmt::Write as _;

use crate::units;
use heaplab_results::SummaryRow;

/// Which way is better for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

struct Column {
    title: &'static str,
    better: Better,
    value: fn(&SummaryRow) -> Option<f64>,
    format: fn(f64) -> String,
    /// A latency, which the clock's granularity bounds.
    timed: bool,
}

fn columns() -> Vec<Column> {
    let pct = |v: f64| format!("{v:.1}");
    let ns = |v: f64| format!("{v:.0}");
    vec![
        Column {
            title: "Mops/s",
            better: Better::Higher,
            value: |r| r.ops_per_sec.map(|v| v / 1e6),
            format: |v| format!("{v:.1}"),
            timed: false,
        },
        Column { title: "±%", better: Better::Lower, value: spread_pct, format: |v| format!("{v:.1}"), timed: false },
        Column {
            title: "alloc p99 ns",
            better: Better::Lower,
            value: |r| r.alloc_p99_ns.map(|v| v as f64),
            format: ns,
            timed: true,
        },
        Column {
            title: "free p99 ns",
            better: Better::Lower,
            value: |r| r.free_p99_ns.map(|v| v as f64),
            format: ns,
            timed: true,
        },
        Column {
            title: "int frag %",
            better: Better::Lower,
            value: |r| r.internal_frag_at_peak_pct,
            format: pct,
            timed: false,
        },
        Column {
            title: "ext frag %",
            better: Better::Lower,
            value: |r| r.external_frag_mean_pct,
            format: pct,
            timed: false,
        },
        Column { title: "util %", better: Better::Higher, value: |r| r.utilization_pct, format: pct, timed: false },
        Column {
            title: "footprint",
            better: Better::Lower,
            value: |r| r.peak_footprint_bytes.map(|v| v as f64),
            format: |v| units::bytes(v as u64),
            timed: false,
        },
        Column {
            title: "cached",
            better: Better::Lower,
            value: |r| r.peak_cached_bytes.map(|v| v as f64),
            format: |v| units::bytes(v as u64),
            timed: false,
        },
        Column {
            title: "failed",
            better: Better::Lower,
            value: |r| Some(r.failed_allocs as f64),
            format: |v| units::count(v as u64),
            timed: false,
        },
    ]
}

/// A canonical spec without the parameters that have their default value:
/// `slab:classes=kmalloc,page=4K,…` → `slab`, `freelist:fit=best,order=address`
/// → `freelist:fit=best`. `default` is the canonical spec of the bare name.
pub fn short_spec(canonical: &str, default: &str) -> String {
    let Some((name, params)) = canonical.split_once(':') else { return canonical.to_string() };
    let defaults: Vec<&str> = default.split_once(':').map_or(Vec::new(), |(_, p)| p.split(',').collect());
    let kept: Vec<&str> = params.split(',').filter(|param| !defaults.contains(param)).collect();
    if kept.is_empty() { name.to_string() } else { format!("{name}:{}", kept.join(",")) }
}

/// An allocator spec without its default parameters.
pub fn short_allocator(canonical: &str) -> String {
    let family = canonical.split(':').next().unwrap_or(canonical);
    match crate::registry::AllocatorSpec::parse(family) {
        Ok(default) => short_spec(canonical, &default.spec()),
        Err(_) => canonical.to_string(),
    }
}

/// A workload spec without its default parameters.
pub fn short_workload(canonical: &str) -> String {
    let name = canonical.split(':').next().unwrap_or(canonical);
    match heaplab_workloads::synth::SyntheticSpec::parse(name) {
        Ok(default) => short_spec(canonical, default.spec()),
        Err(_) => canonical.to_string(),
    }
}

/// A workload as a report labels it: [`short_workload`], and a trace file
/// by its file stem (the report's workloads table keeps the full path).
pub fn workload_label(canonical: &str) -> String {
    let name = canonical.split(':').next().unwrap_or(canonical);
    if heaplab_workloads::synth::SyntheticSpec::parse(name).is_ok() || canonical.starts_with("trace:") {
        return short_workload(canonical);
    }
    let path = std::path::Path::new(canonical);
    let is_file = canonical.contains(std::path::MAIN_SEPARATOR) || path.extension().is_some();
    match path.file_stem().and_then(|stem| stem.to_str()).filter(|_| is_file) {
        Some(stem) if !stem.is_empty() => stem.to_string(),
        _ => short_workload(canonical),
    }
}

/// Half the confidence interval's width, as a percentage of the median.
fn spread_pct(row: &SummaryRow) -> Option<f64> {
    let (median, low, high) = (row.ops_per_sec?, row.ops_per_sec_ci_low?, row.ops_per_sec_ci_high?);
    (median > 0.0).then(|| 50.0 * (high - low) / median)
}

/// Columns of the terminal standard output is, if it is one (else the
/// `COLUMNS` the shell exported, else no limit).
pub fn output_width() -> usize {
    use std::io::IsTerminal as _;
    if std::io::stdout().is_terminal()
        && let Some((terminal_size::Width(width), _)) = terminal_size::terminal_size()
    {
        return usize::from(width);
    }
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|&c| c >= 40).unwrap_or(usize::MAX)
}

/// How a cell is shown: plain, or as the best of its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Plain,
    Best,
}

/// The tables, as text, as wide as they need.
pub fn render(rows: &[SummaryRow]) -> String {
    render_within(rows, usize::MAX, false)
}

/// The tables within `width` columns: a table wider than that goes on in
/// a second block of columns (the allocator column repeated), footnotes
/// wrap. `colour`: ANSI styles for the best values and the headers (strip
/// them with `anstream` where colour is not wanted).
pub fn render_within(rows: &[SummaryRow], width: usize, colour: bool) -> String {
    let columns: Vec<Column> = columns().into_iter().filter(|c| rows.iter().any(|r| (c.value)(r).is_some())).collect();
    let granularity = rows.iter().filter_map(|r| r.timer_granularity_ns).fold(0.0, f64::max);
    let mut coarse_shown = false;
    let mut text = String::new();
    let mut groups: Vec<(&str, Option<u64>, u32)> = Vec::new();
    for row in rows {
        let key = (row.workload.as_str(), row.seed, row.threads);
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    let threaded = rows.iter().any(|r| r.threads != 1);
    let best_style = anstyle::Style::new().bold().fg_color(Some(anstyle::AnsiColor::Green.into()));
    let header_style = anstyle::Style::new().bold();
    for (workload, seed, threads) in groups {
        let members: Vec<&SummaryRow> =
            rows.iter().filter(|r| r.workload == workload && r.seed == seed && r.threads == threads).collect();
        let mut notes: Vec<String> = seed.map(|s| format!("seed {s}")).into_iter().collect();
        if threaded {
            notes.push(format!("{threads} thread{}", if threads == 1 { "" } else { "s" }));
        }
        let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
        let heading = format!("{}{notes}", short_workload(workload));
        if colour {
            let _ = writeln!(text, "{header_style}{heading}{header_style:#}");
        } else {
            let _ = writeln!(text, "{heading}");
        }
        let mut cells: Vec<Vec<(String, Mark)>> = Vec::new();
        let mut header = vec![("allocator".to_string(), Mark::Plain)];
        header.extend(columns.iter().map(|c| (c.title.to_string(), Mark::Plain)));
        cells.push(header);
        for row in &members {
            let mut line = vec![(short_allocator(&row.allocator), Mark::Plain)];
            for column in &columns {
                let value = (column.value)(row);
                let values = members.iter().filter_map(|r| (column.value)(r));
                let best = match column.better {
                    Better::Higher => values.fold(f64::NEG_INFINITY, f64::max),
                    Better::Lower => values.fold(f64::INFINITY, f64::min),
                };
                line.push(match value {
                    Some(v) => {
                        let is_best = members.len() > 1 && (column.format)(v) == (column.format)(best);
                        let coarse = column.timed && granularity > 0.0 && v <= 3.0 * granularity;
                        coarse_shown |= coarse;
                        let shown = format!(
                            "{}{}{}",
                            if coarse { "~" } else { "" },
                            (column.format)(v),
                            if is_best { "*" } else { " " }
                        );
                        (shown, if is_best { Mark::Best } else { Mark::Plain })
                    }
                    None => ("- ".to_string(), Mark::Plain),
                });
            }
            cells.push(line);
        }
        let widths: Vec<usize> = (0..cells[0].len())
            .map(|i| cells.iter().map(|line| line[i].0.chars().count()).max().unwrap_or(0))
            .collect();
        // Blocks of columns that fit the width, each led by the allocators.
        let mut blocks: Vec<Vec<usize>> = vec![Vec::new()];
        let mut used = 2 + widths[0];
        for (index, &w) in widths.iter().enumerate().skip(1) {
            let last = blocks.last_mut().expect("one block at least");
            if !last.is_empty() && used + 2 + w > width {
                blocks.push(Vec::new());
                used = 2 + widths[0];
            }
            blocks.last_mut().expect("one block at least").push(index);
            used += 2 + w;
        }
        for (number, block) in blocks.iter().enumerate() {
            if number > 0 {
                let _ = writeln!(text);
            }
            for (line_number, line) in cells.iter().enumerate() {
                let mut out = format!("  {:<width$}", line[0].0, width = widths[0]);
                for &index in block {
                    let (cell, mark) = &line[index];
                    let padded = format!("{cell:>width$}", width = widths[index]);
                    let styled = match (colour, line_number == 0, mark) {
                        (true, true, _) => format!("{header_style}{padded}{header_style:#}"),
                        (true, false, Mark::Best) => format!("{best_style}{padded}{best_style:#}"),
                        _ => padded,
                    };
                    let _ = write!(out, "  {styled}");
                }
                let _ = writeln!(text, "{}", out.trim_end());
            }
        }
        let _ = writeln!(text);
    }
    // The footnote explains the columns shown, and only those (a
    // metrics-only run has no Mops/s or p99).
    let shown = |title: &str| columns.iter().any(|c| c.title == title);
    let explained = [
        ("Mops/s", "Mops/s: median of the timed repetitions (±: half the median's confidence interval)"),
        ("alloc p99 ns", "p99: per-op latency"),
        ("int frag %", "int frag: (G−R)/G at peak requested bytes"),
        ("ext frag %", "ext frag: mean 1−L/F"),
        ("util %", "util: max requested / max footprint"),
        ("footprint", "footprint: the arena's high-water mark"),
        ("failed", "failed: refused allocations"),
        ("cached", "cached: most bytes a caching layer's thread caches, depot and remote lists held at once"),
    ];
    let mut notes: Vec<String> = explained
        .iter()
        .filter(|(title, _)| shown(title))
        .map(|(title, t)| match *title {
            "alloc p99 ns" if granularity > 0.0 => format!("{t} (the clock moves in steps of {granularity:.1} ns)"),
            _ => t.to_string(),
        })
        .collect();
    if coarse_shown {
        notes.push(format!("~: within 3x the clock's step of {granularity:.1} ns, which no latency resolves finer"));
    }
    let wrap = width.min(100);
    text.push_str(&wrap_words(&format!("* best in column. {}.", notes.join("; ")), wrap));
    if threaded {
        text.push_str(&wrap_words(
            "On threads, Mops/s counts every thread's ops over the wall time; the fragmentation figures come from one \
             order of the threads' ops (a seeded interleaving, or a recorded trace's own) replayed on one thread.",
            wrap,
        ));
    }
    text
}

/// `text` broken between words into lines of at most `width` columns
/// (a longer word gets a line of its own), each ended by a newline.
pub fn wrap_words(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_labels_a_trace_file_by_its_stem_and_the_rest_as_the_terminal_does() {
        assert_eq!(workload_label("/tmp/traces/binary2-bal.rep"), "binary2-bal");
        assert_eq!(workload_label("traces/gcc.hlt"), "gcc");
        assert_eq!(workload_label("trace:gcc"), short_workload("trace:gcc"));
        let synthetic = "ramp:ops=500000";
        assert_eq!(workload_label(synthetic), short_workload(synthetic));
    }

    fn row(allocator: &str, ops_per_sec: f64, frag: f64) -> SummaryRow {
        SummaryRow {
            allocator: allocator.into(),
            workload: "w".into(),
            seed: Some(1),
            threads: 1,
            reps: Some(1),
            ops_per_sec: Some(ops_per_sec),
            ops_per_sec_ci_low: Some(ops_per_sec),
            ops_per_sec_ci_high: Some(ops_per_sec),
            internal_frag_at_peak_pct: Some(frag),
            utilization_pct: Some(50.0),
            ..SummaryRow::default()
        }
    }

    #[test]
    fn specs_shorten_to_what_differs_from_the_defaults() {
        assert_eq!(short_allocator("slab:classes=kmalloc,page=4K,min_objects=16,max_order=3,keep=auto"), "slab");
        assert_eq!(short_allocator("freelist:fit=best,order=address"), "freelist:fit=best");
        assert_eq!(short_allocator("buddy:min=4K,max_order=10,split=lower"), "buddy:min=4K,max_order=10");
        assert_eq!(
            short_workload(
                "ramp:ops=20000,median=128,sigma=1.2,live=8M,min=1,max=1M,lifetime=exp,phase=ramp,align=unspecified,realloc=0"
            ),
            "ramp:ops=20000"
        );
        assert_eq!(short_workload("traces/x.rep"), "traces/x.rep");
    }

    #[test]
    fn the_best_value_in_each_column_is_marked() {
        let text = render(&[row("a", 2e6, 10.0), row("bb", 3e6, 20.0)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "w (seed 1)");
        assert!(lines[1].starts_with("  allocator  Mops/s"), "{text}");
        assert!(lines[2].starts_with("  a   ") && lines[2].contains("2.0 ") && lines[2].contains("10.0*"), "{text}");
        assert!(lines[3].contains("3.0*") && lines[3].contains("20.0 "), "{text}");
        assert!(!text.contains("alloc p99"), "columns without values are left out");
    }
    #[test]
    fn a_narrow_terminal_gets_blocks_of_columns_and_coarse_latencies_are_marked() {
        let mut fast = row("segregated:kind=tlsf,sl=5", 2e6, 10.0);
        fast.alloc_p99_ns = Some(20);
        fast.free_p99_ns = Some(400);
        fast.timer_granularity_ns = Some(10.0);
        fast.peak_footprint_bytes = Some(1 << 20);
        let mut slow = row("freelist:fit=best", 1e6, 5.0);
        slow.alloc_p99_ns = Some(300);
        slow.free_p99_ns = Some(500);
        slow.timer_granularity_ns = Some(10.0);
        slow.peak_footprint_bytes = Some(1 << 21);
        let text = render_within(&[fast.clone(), slow.clone()], 60, false);
        for line in text.lines() {
            assert!(line.chars().count() <= 60, "{} columns: {line}\n{text}", line.chars().count());
        }
        assert!(text.matches("  allocator").count() >= 2, "blocks, each led by the allocators:\n{text}");
        assert!(text.contains("~20*"), "20 ns is within 3x of a 10 ns step:\n{text}");
        assert!(!text.contains("~300") && !text.contains("~400"), "{text}");
        assert!(text.contains("~: within 3x the clock's step of"), "{text}");
        let wide = render(&[fast, slow]);
        assert_eq!(wide.matches("  allocator").count(), 1, "no limit, one block:\n{wide}");
        assert!(!wide.contains('\u{1b}'), "no colour unless asked");
    }
}
