//! The comparison as text: aligned for a terminal, or a Markdown table.

use std::fmt::Write as _;

use super::stats::samples_needed;
use super::{ALPHA, Comparison, Finding, MIN_PROCESSES, Verdict};

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned text for a terminal.
    Terminal,
    /// A GitHub-flavoured Markdown table, for a pull-request comment.
    Markdown,
}

/// Render the findings; unchanged throughput rows only with `all`.
pub fn render(comparison: &Comparison, threshold: f64, style: Style, all: bool) -> String {
    let findings = &comparison.findings;
    let shown: Vec<&Finding> =
        findings.iter().filter(|f| all || !matches!(f.verdict, Verdict::Unchanged | Verdict::TooFew)).collect();
    let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
    let headline = format!(
        "{} regressions, {} changed deterministic figures, {} missing rows, {} improvements, {} unchanged{} (threshold {:.1}%; exact rank intervals, simultaneous 95% over {} throughput rows)",
        count(Verdict::Regression),
        count(Verdict::Changed),
        count(Verdict::Missing),
        count(Verdict::Improvement),
        count(Verdict::Unchanged),
        match count(Verdict::TooFew) {
            0 => String::new(),
            n => format!(", {n} with too few samples to judge"),
        },
        100.0 * threshold,
        comparison.timed_rows
    );
    let headline = match count(Verdict::OtherHost) {
        0 => headline,
        n => format!(
            "{headline}\nnote: {n} throughput rows were timed on different machines in BASE and NEW and are not judged \
             (a machine's speed would pass for the allocator's); --across-hosts judges them"
        ),
    };
    let headline = if !comparison.host_drifts.is_empty() {
        let drifts: Vec<String> = comparison
            .host_drifts
            .iter()
            .map(|(base, new, drift)| format!("{base} → {new} {:+.1}%", 100.0 * (drift - 1.0)))
            .collect();
        format!("{headline}; machine drift divided out per pair of machines: {}", drifts.join(", "))
    } else if comparison.drift == 1.0 {
        headline
    } else {
        format!(
            "{headline}; machine drift {:+.1}% (median ratio of all rows) divided out",
            100.0 * (comparison.drift - 1.0)
        )
    };
    let headline = match comparison.processes {
        Some((base, new)) if base.min(new) < MIN_PROCESSES => format!(
            "{headline}\nnote: some timings come from {} timing process{} (BASE) and {} (NEW); a process can differ from \
             another by more than its repetitions vary, so the intervals may be too narrow: run with --processes {MIN_PROCESSES} or more",
            base,
            if base == 1 { "" } else { "es" },
            new
        ),
        _ => headline,
    };
    let headline = match count(Verdict::TooFew) {
        0 => headline,
        _ => format!(
            "{headline}\nnote: intervals that hold together over {} rows need {} timing processes a side (heaplab run --reps N --processes N)",
            comparison.timed_rows,
            samples_needed(ALPHA / comparison.timed_rows.max(1) as f64)
        ),
    };
    let header =
        ["allocator", "workload", "seed", "metric", "base", "new", "change", "interval of new/base", "verdict"];
    let lines: Vec<[String; 9]> = shown
        .iter()
        .map(|f| {
            [
                crate::table::short_allocator(&f.key.0),
                crate::table::short_workload(&f.key.1),
                f.key.2.map_or("-".into(), |s| s.to_string()),
                f.metric.clone(),
                f.base.clone(),
                f.new.clone(),
                f.change.map_or("-".into(), |c| format!("{:+.1}%", 100.0 * c)),
                f.interval.map_or("-".into(), |(l, h)| format!("[{l:.3}, {h:.3}]")),
                f.verdict.word().to_string(),
            ]
        })
        .collect();
    let mut text = String::new();
    if style == Style::Markdown {
        let _ = writeln!(text, "**heaplab compare**: {headline}\n");
    }
    if !lines.is_empty() {
        text.push_str(&table(&header, &lines, style));
        if style == Style::Terminal {
            text.push('\n');
        }
    }
    if style == Style::Terminal {
        let _ = writeln!(text, "{headline}");
    }
    text
}

/// A table: aligned columns for a terminal, or Markdown with its `|` escaped.
/// Every line has as many cells as `header`.
pub(super) fn table<H: AsRef<str>, L: AsRef<[String]>>(header: &[H], lines: &[L], style: Style) -> String {
    let header: Vec<&str> = header.iter().map(AsRef::as_ref).collect();
    let lines: Vec<&[String]> = lines.iter().map(AsRef::as_ref).collect();
    let mut text = String::new();
    match style {
        Style::Markdown => {
            let _ = writeln!(text, "| {} |", header.join(" | "));
            let _ = writeln!(text, "|{}", "---|".repeat(header.len()));
            for line in &lines {
                let cells: Vec<String> = line.iter().map(|c| c.replace('|', "\\|")).collect();
                let _ = writeln!(text, "| {} |", cells.join(" | "));
            }
        }
        Style::Terminal => {
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    lines.iter().map(|l| l[i].chars().count()).chain([header[i].chars().count()]).max().unwrap_or(0)
                })
                .collect();
            let row = |cells: Vec<&str>| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            let _ = writeln!(text, "{}", row(header.clone()));
            for line in &lines {
                let _ = writeln!(text, "{}", row(line.iter().map(String::as_str).collect()));
            }
        }
    }
    text
}
