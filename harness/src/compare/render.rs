//! The comparison as text: aligned for a terminal, or a Markdown table.

use std::fmt::Write as _;

use super::stats::samples_needed;
use super::{ALPHA, Comparison, Finding, MIN_PROCESSES, Verdict, significant};

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned text for a terminal.
    Terminal,
    /// A GitHub-flavoured Markdown table, for a pull-request comment.
    Markdown,
}

/// What the text says about the two sides.
#[derive(Debug, Clone, Default)]
pub struct Sides {
    /// BASE in a few words (run, revision, date).
    pub base: String,
    /// NEW in a few words.
    pub new: String,
    /// Settings that differ, `name: base → new`.
    pub settings_differing: Vec<String>,
}

/// Verdicts shown in the main table; the others (rows judged unchanged,
/// or not judged) only with `all` in a terminal, and folded away
/// (`<details>`) in Markdown.
fn stands_out(verdict: Verdict) -> bool {
    !matches!(verdict, Verdict::Unchanged | Verdict::TooFew | Verdict::Inconclusive)
}

/// Render the findings, failures first.
pub fn render(comparison: &Comparison, threshold: f64, style: Style, all: bool, sides: &Sides) -> String {
    let findings = &comparison.findings;
    let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
    let mut notes: Vec<String> = Vec::new();
    let headline = format!(
        "{} regressions, {} changed deterministic figures, {} missing rows, {} improvements, {} unchanged, {} inconclusive{} (threshold {:.1}%; exact rank intervals, simultaneous 95% over {} throughput rows)",
        count(Verdict::Regression),
        count(Verdict::Changed),
        count(Verdict::Missing),
        count(Verdict::Improvement),
        count(Verdict::Unchanged),
        count(Verdict::Inconclusive),
        match count(Verdict::TooFew) {
            0 => String::new(),
            n => format!(", {n} with too few samples to judge"),
        },
        100.0 * threshold,
        comparison.timed_rows
    );
    if !comparison.host_drifts.is_empty() {
        let drifts: Vec<String> = comparison
            .host_drifts
            .iter()
            .map(|(base, new, drift)| format!("{base} → {new} {:+.1}%", 100.0 * (drift - 1.0)))
            .collect();
        notes.push(format!("machine drift divided out per pair of machines: {}", drifts.join(", ")));
    } else if comparison.drift != 1.0 {
        notes.push(format!(
            "machine drift {:+.1}% (the median ratio over all rows) divided out of every throughput ratio",
            100.0 * (comparison.drift - 1.0)
        ));
    }
    if comparison.undecided() {
        notes.push(
            "UNDECIDED: no timed row could be judged (each inconclusive, with too few samples, or timed elsewhere); \
             heaplab compare exits 3 unless --allow-inconclusive"
                .to_string(),
        );
    }
    if count(Verdict::OtherHost) > 0 {
        notes.push(format!(
            "{} throughput rows were timed on different machines in BASE and NEW and are not judged \
             (a machine's speed would pass for the allocator's); --across-hosts judges them",
            count(Verdict::OtherHost)
        ));
    }
    if let Some((base, new)) = comparison.processes
        && base.min(new) < MIN_PROCESSES
    {
        notes.push(format!(
            "some timings come from {} timing process{} (BASE) and {} (NEW); a process can differ from \
             another by more than its repetitions vary, so the intervals may be too narrow: run with --processes {MIN_PROCESSES} or more",
            base,
            if base == 1 { "" } else { "es" },
            new
        ));
    }
    if count(Verdict::TooFew) > 0 {
        notes.push(format!(
            "intervals that hold together over {} rows need {} timing processes a side (heaplab run --reps N --processes N)",
            comparison.timed_rows,
            samples_needed(ALPHA / comparison.timed_rows.max(1) as f64)
        ));
    }
    if !sides.settings_differing.is_empty() {
        notes.push(format!(
            "the two runs' settings differ ({}): a change may be the settings', not the code's",
            sides.settings_differing.join("; ")
        ));
    }
    let drift_corrected = comparison.drift != 1.0 || comparison.host_drifts.iter().any(|(_, _, d)| *d != 1.0);
    let change = if drift_corrected { "change (HL, drift-corrected)" } else { "change (HL)" };
    let header = [
        "allocator",
        "workload",
        "seed",
        "threads",
        "metric",
        "base",
        "new",
        change,
        "interval of new/base",
        "verdict",
    ];
    let line = |f: &&Finding| -> [String; 10] {
        [
            crate::table::short_allocator(&f.key.0),
            crate::table::short_workload(&f.key.1),
            f.key.2.map_or("-".into(), |s| s.to_string()),
            f.key.3.to_string(),
            f.metric.clone(),
            f.base.clone(),
            f.new.clone(),
            f.change.map_or("-".into(), |c| format!("{:+.1}%", 100.0 * c)),
            f.interval.map_or("-".into(), |(l, h)| format!("[{}, {}]", significant(l), significant(h))),
            f.verdict.word().to_string(),
        ]
    };
    let (main, rest): (Vec<&Finding>, Vec<&Finding>) = findings.iter().partition(|f| stands_out(f.verdict));
    let main: Vec<[String; 10]> = main.iter().map(line).collect();
    let rest: Vec<[String; 10]> = rest.iter().map(line).collect();
    let footnote = "change (HL): for throughput, new/base − 1 as the Hodges–Lehmann estimate (the median of all \
                    pairwise ratios)"
        .to_string()
        + if drift_corrected { ", the machine drift divided out" } else { "" }
        + "; for deterministic figures, new/base − 1.";
    let sides_line = format!("BASE {} → NEW {}", sides.base, sides.new);
    let mut text = String::new();
    match style {
        Style::Markdown => {
            let _ = writeln!(text, "**heaplab compare**: {headline}\n");
            let _ = writeln!(text, "{sides_line}\n");
            for note in &notes {
                let _ = writeln!(text, "> {note}\n");
            }
            if !main.is_empty() {
                text.push_str(&table(&header, &main, style));
                text.push('\n');
            }
            if !rest.is_empty() {
                let _ = writeln!(
                    text,
                    "<details><summary>{} more rows: unchanged, inconclusive, too few samples</summary>\n",
                    rest.len()
                );
                text.push_str(&table(&header, &rest, style));
                text.push_str("\n</details>\n\n");
            }
            let _ = writeln!(text, "<sub>{footnote}</sub>");
        }
        Style::Terminal => {
            let shown: Vec<[String; 10]> = main.into_iter().chain(if all { rest } else { Vec::new() }).collect();
            if !shown.is_empty() {
                text.push_str(&table(&header, &shown, style));
                let _ = writeln!(text, "{footnote}\n");
            }
            let _ = writeln!(text, "{sides_line}");
            let _ = writeln!(text, "{headline}");
            for note in &notes {
                let _ = writeln!(text, "note: {note}");
            }
        }
    }
    text
}

/// The colour of a verdict word on a terminal: failures red, improvements
/// green, what could not be judged yellow.
fn verdict_style(word: &str) -> Option<anstyle::Style> {
    use anstyle::{AnsiColor, Style};
    match word {
        "REGRESSION" | "CHANGED" | "MISSING" => Some(Style::new().bold().fg_color(Some(AnsiColor::Red.into()))),
        "improvement" => Some(Style::new().fg_color(Some(AnsiColor::Green.into()))),
        "inconclusive" | "too few" => Some(Style::new().fg_color(Some(AnsiColor::Yellow.into()))),
        _ => None,
    }
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
            // A verdict is coloured (anstream strips it where colour is
            // not wanted: a pipe, a file, NO_COLOR).
            let verdict_column = header.iter().position(|h| *h == "verdict");
            let row = |cells: Vec<&str>, body: bool| {
                cells
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(i, (c, w))| match verdict_style(c).filter(|_| body && Some(i) == verdict_column) {
                        Some(style) => {
                            format!("{style}{c}{style:#}{:pad$}", "", pad = w.saturating_sub(c.chars().count()))
                        }
                        None => format!("{c:<w$}"),
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            let _ = writeln!(text, "{}", row(header.clone(), false));
            for line in &lines {
                let _ = writeln!(text, "{}", row(line.iter().map(String::as_str).collect(), true));
            }
        }
    }
    text
}
