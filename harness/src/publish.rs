//! A results directory's summary as a table for somewhere else: JSON for
//! scripts, CSV for spreadsheets, Markdown for a pull request or a wiki,
//! LaTeX (booktabs) for a paper. Columns are `summary.csv`'s, by name, so
//! that a column the schema gains can be exported without a change here.
//!
//! Besides the rows as measured, a run with several seeds of a workload has
//! a **cross-seed aggregate**: one row per (allocator, workload, threads),
//! each figure's arithmetic mean over the seeds with its sample standard
//! deviation (and, in JSON and CSV, its minimum and maximum).

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use heaplab_results::{Results, SummaryRow};
use serde_json::{Value, json};

use crate::table::{short_allocator, short_workload};
use crate::units;

/// Version of the JSON document's layout (`schema_version`).
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The formats `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One document: the source run, the columns with their units, the
    /// rows and the cross-seed aggregate.
    Json,
    /// The rows (or, with --aggregate, the aggregate), raw values.
    Csv,
    /// A GitHub table, figures in the units its header names, specs
    /// without their default parameters.
    Markdown,
    /// A booktabs `tabular`, as the Markdown table.
    Latex,
}

impl Format {
    /// The format a file name asks for, by its extension.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "md" | "markdown" => Some(Format::Markdown),
            "tex" | "latex" => Some(Format::Latex),
            _ => None,
        }
    }
}

/// The columns exported when none are named (those with no value in any
/// row are left out, as are `seed` and `threads` when they say nothing).
pub const DEFAULT_COLUMNS: [&str; 14] = [
    "allocator",
    "workload",
    "seed",
    "threads",
    "ops_per_sec",
    "ops_per_sec_ci_low",
    "ops_per_sec_ci_high",
    "alloc_p99_ns",
    "free_p99_ns",
    "internal_frag_at_peak_pct",
    "external_frag_mean_pct",
    "utilization_pct",
    "peak_footprint_bytes",
    "failed_allocs",
];

/// The columns that identify a row and are never averaged.
const KEYS: [&str; 4] = ["allocator", "workload", "seed", "threads"];

/// What a column measures, read from its name: the unit of its raw values
/// and how a table shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Text,
    Count,
    Bytes,
    Percent,
    Nanoseconds,
    Seconds,
    OpsPerSecond,
}

impl Unit {
    fn of(column: &str) -> Unit {
        match column {
            "allocator" | "workload" | "host" => Unit::Text,
            "ops_per_sec_ci_level_pct" => Unit::Percent,
            c if c.starts_with("ops_per_sec") => Unit::OpsPerSecond,
            c if c.ends_with("_bytes") => Unit::Bytes,
            c if c.ends_with("_pct") => Unit::Percent,
            c if c.ends_with("_ns") => Unit::Nanoseconds,
            c if c.ends_with("_seconds") => Unit::Seconds,
            _ => Unit::Count,
        }
    }

    /// The unit of the raw values (JSON and CSV).
    fn raw(self) -> Option<&'static str> {
        match self {
            Unit::Text | Unit::Count => None,
            Unit::Bytes => Some("B"),
            Unit::Percent => Some("%"),
            Unit::Nanoseconds => Some("ns"),
            Unit::Seconds => Some("s"),
            Unit::OpsPerSecond => Some("ops/s"),
        }
    }
}

/// A column's title in a table, its unit left to [`Shown`].
fn title(column: &str) -> String {
    let known = match column {
        "ops_per_sec" => Some("throughput"),
        "ops_per_sec_ci_low" => Some("CI low"),
        "ops_per_sec_ci_high" => Some("CI high"),
        "ops_per_sec_min" => Some("min throughput"),
        "ops_per_sec_max" => Some("max throughput"),
        "alloc_p99_ns" => Some("alloc p99"),
        "free_p99_ns" => Some("free p99"),
        "internal_frag_at_peak_pct" => Some("int. frag."),
        "internal_frag_mean_pct" => Some("mean int. frag."),
        "external_frag_mean_pct" => Some("ext. frag."),
        "external_frag_max_pct" => Some("max ext. frag."),
        "utilization_pct" => Some("util."),
        "peak_footprint_bytes" => Some("footprint"),
        "failed_allocs" => Some("failed"),
        "jw4_pct" => Some("J&W #4"),
        _ => None,
    };
    if let Some(known) = known {
        return known.to_string();
    }
    let mut name = column;
    for suffix in ["_bytes", "_pct", "_ns", "_seconds"] {
        name = name.strip_suffix(suffix).unwrap_or(name);
    }
    name.replace('_', " ")
}

/// How a table shows one column: the scale its values are divided by and
/// the unit its header names.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    scale: f64,
    unit: Option<&'static str>,
}

impl Shown {
    /// Byte columns take the binary unit that keeps the column's largest
    /// value between 1 and 1024.
    fn of(unit: Unit, values: impl Iterator<Item = f64>) -> Shown {
        match unit {
            Unit::Text | Unit::Count => Shown { scale: 1.0, unit: None },
            Unit::Percent => Shown { scale: 1.0, unit: Some("%") },
            Unit::Nanoseconds => Shown { scale: 1.0, unit: Some("ns") },
            Unit::Seconds => Shown { scale: 1.0, unit: Some("s") },
            Unit::OpsPerSecond => Shown { scale: 1e6, unit: Some("Mops/s") },
            Unit::Bytes => {
                let largest = values.fold(0.0, f64::max);
                let units = [("B", 1.0), ("KiB", 1024.0), ("MiB", 1024.0 * 1024.0), ("GiB", 1024.0 * 1024.0 * 1024.0)];
                let (unit, scale) =
                    units.iter().rev().find(|(_, scale)| largest >= *scale).copied().unwrap_or(units[0]);
                Shown { scale, unit: Some(unit) }
            }
        }
    }
}

/// A figure with four significant digits, never in exponent form: `35.28`,
/// `912.4`, `0.1235`, `123457`; integers stay whole.
pub fn figure(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    units::unscaled(value, 4)
}

/// A standard deviation with two significant digits: `0.0082`, `1.9`, `15`.
pub fn deviation(value: f64) -> String {
    units::unscaled(value, 2)
}

/// One cell of the summary: a number, a text, or nothing measured.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Empty,
    Number(f64),
    Text(String),
}

impl Cell {
    fn parse(column: &str, text: &str) -> Cell {
        if text.is_empty() {
            return Cell::Empty;
        }
        if Unit::of(column) == Unit::Text {
            return Cell::Text(text.to_string());
        }
        text.parse::<f64>().map_or_else(|_| Cell::Text(text.to_string()), Cell::Number)
    }

    fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(value) => Some(*value),
            _ => None,
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Empty => Value::Null,
            Cell::Text(text) => Value::String(text.clone()),
            Cell::Number(value) => number_json(*value),
        }
    }

    fn raw(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Number(value) => value.to_string(),
        }
    }
}

/// A number as JSON: whole numbers as integers, non-finite as null.
fn number_json(value: f64) -> Value {
    if value == value.trunc() && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

/// A figure over the seeds of one (allocator, workload, threads).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread {
    mean: f64,
    /// Sample standard deviation; `None` for one value.
    sd: Option<f64>,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd =
            (values.len() > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Spread { mean, sd, min, max })
    }
}

/// One aggregate row: its key and, per exported figure column, the spread.
#[derive(Debug, Clone)]
struct AggregateRow {
    allocator: String,
    workload: String,
    threads: u32,
    seeds: usize,
    figures: Vec<Option<Spread>>,
}

/// What `export` writes, and from what.
#[derive(Debug)]
pub struct Export<'a> {
    results: &'a Results,
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl<'a> Export<'a> {
    /// The table of `results` with `columns` (`None`: the defaults, less
    /// those with nothing to say). A column `summary.csv` lacks is an error
    /// that names the nearest one.
    pub fn new(results: &'a Results, columns: Option<&[String]>) -> anyhow::Result<Export<'a>> {
        let all: Vec<String> = SummaryRow::default().columns().into_iter().map(|(name, _)| name).collect();
        let texts: Vec<Vec<(String, String)>> = results.summary.iter().map(SummaryRow::columns).collect();
        let value = |row: &[(String, String)], column: &str| {
            row.iter().find(|(name, _)| name == column).map_or(Cell::Empty, |(_, text)| Cell::parse(column, text))
        };
        let columns: Vec<String> = match columns {
            Some(named) if named.iter().any(|c| c == "all") => all.clone(),
            Some(named) => {
                for column in named {
                    if !all.contains(column) {
                        let nearest = all
                            .iter()
                            .map(|name| (strsim::damerau_levenshtein(column, name), name))
                            .min()
                            .filter(|(distance, _)| *distance <= (column.chars().count() / 3).max(1))
                            .map(|(_, name)| name);
                        match nearest {
                            Some(name) => {
                                bail!("--columns: summary.csv has no column `{column}`; did you mean `{name}`?")
                            }
                            None => bail!(
                                "--columns: summary.csv has no column `{column}` (its columns: {}; or `all`)",
                                all.join(", ")
                            ),
                        }
                    }
                }
                named.to_vec()
            }
            None => {
                let says = |column: &str| match column {
                    "allocator" | "workload" => true,
                    "seed" => results.summary.iter().any(|r| r.seed.is_some()),
                    "threads" => results.summary.iter().any(|r| r.threads != 1),
                    _ => texts.iter().any(|row| value(row, column) != Cell::Empty),
                };
                DEFAULT_COLUMNS.iter().filter(|c| says(c)).map(|c| c.to_string()).collect()
            }
        };
        let rows = texts.iter().map(|row| columns.iter().map(|column| value(row, column)).collect()).collect();
        Ok(Export { results, columns, rows })
    }

    /// The exported columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Does some (allocator, workload, threads) have more than one seed?
    pub fn has_aggregate(&self) -> bool {
        self.aggregate().iter().any(|row| row.seeds > 1)
    }

    /// The figure columns (not keys), with their indices.
    fn figure_columns(&self) -> impl Iterator<Item = (usize, &String)> {
        self.columns.iter().enumerate().filter(|(_, c)| !KEYS.contains(&c.as_str()) && Unit::of(c) != Unit::Text)
    }

    fn aggregate(&self) -> Vec<AggregateRow> {
        let mut groups: Vec<((String, String, u32), Vec<usize>)> = Vec::new();
        for (index, row) in self.results.summary.iter().enumerate() {
            let key = (row.allocator.clone(), row.workload.clone(), row.threads);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(index),
                None => groups.push((key, vec![index])),
            }
        }
        groups
            .into_iter()
            .map(|((allocator, workload, threads), members)| AggregateRow {
                allocator,
                workload,
                threads,
                seeds: members.len(),
                figures: self
                    .figure_columns()
                    .map(|(column, _)| {
                        let values: Vec<f64> = members.iter().filter_map(|&m| self.rows[m][column].number()).collect();
                        Spread::of(&values)
                    })
                    .collect(),
            })
            .collect()
    }

    /// Where the figures come from, in one line.
    fn source(&self) -> String {
        let meta = &self.results.meta;
        format!(
            "heaplab export of {} (run {}, heaplab {}, revision {}, {})",
            self.results.dir.display(),
            meta.run_name,
            meta.heaplab_version,
            meta.git_revision,
            meta.date_utc
        )
    }

    /// The document in `format`; `aggregate`: the cross-seed aggregate
    /// rather than the rows (JSON always holds both).
    pub fn render(&self, format: Format, aggregate: bool) -> anyhow::Result<String> {
        if aggregate && format != Format::Json && !self.has_aggregate() {
            bail!(
                "--aggregate: no workload of {} ran with more than one seed, so the aggregate would repeat the rows",
                self.results.dir.display()
            );
        }
        Ok(match format {
            Format::Json => self.json(),
            Format::Csv => self.csv(aggregate).context("writing CSV")?,
            Format::Markdown => self.markdown(aggregate),
            Format::Latex => self.latex(aggregate),
        })
    }

    fn json(&self) -> String {
        let meta = &self.results.meta;
        let columns: Vec<Value> =
            self.columns.iter().map(|c| json!({ "name": c, "unit": Unit::of(c).raw() })).collect();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                Value::Object(self.columns.iter().zip(row).map(|(name, cell)| (name.clone(), cell.json())).collect())
            })
            .collect();
        let aggregate: Vec<Value> = self
            .aggregate()
            .iter()
            .map(|row| {
                let figures: serde_json::Map<String, Value> = self
                    .figure_columns()
                    .zip(&row.figures)
                    .map(|((_, name), spread)| {
                        let value = spread.map_or(Value::Null, |s| {
                            json!({
                                "mean": number_json(s.mean),
                                "sd": s.sd.map_or(Value::Null, number_json),
                                "min": number_json(s.min),
                                "max": number_json(s.max),
                            })
                        });
                        (name.clone(), value)
                    })
                    .collect();
                json!({
                    "allocator": row.allocator,
                    "workload": row.workload,
                    "threads": row.threads,
                    "seeds": row.seeds,
                    "figures": figures,
                })
            })
            .collect();
        let document = json!({
            "schema": "heaplab-export",
            "schema_version": JSON_SCHEMA_VERSION,
            "source": {
                "dir": self.results.dir.display().to_string(),
                "run_name": meta.run_name,
                "heaplab_version": meta.heaplab_version,
                "git_revision": meta.git_revision,
                "date_utc": meta.date_utc,
                "command_line": meta.command_line,
            },
            "columns": columns,
            "rows": rows,
            "aggregate": {
                "method": "per (allocator, workload, threads): the arithmetic mean of each figure over the seeds, \
                           its sample standard deviation (null for one seed), minimum and maximum",
                "rows": aggregate,
            },
        });
        let mut text = serde_json::to_string_pretty(&document).expect("a JSON value serialises");
        text.push('\n');
        text
    }

    fn csv(&self, aggregate: bool) -> Result<String, csv::Error> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        if aggregate {
            let mut header = vec!["allocator".to_string(), "workload".into(), "threads".into(), "seeds".into()];
            for (_, name) in self.figure_columns() {
                header.extend(["mean", "sd", "min", "max"].map(|what| format!("{name}_{what}")));
            }
            writer.write_record(&header)?;
            for row in self.aggregate() {
                let mut record = vec![row.allocator, row.workload, row.threads.to_string(), row.seeds.to_string()];
                for spread in &row.figures {
                    match spread {
                        Some(s) => record.extend([
                            s.mean.to_string(),
                            s.sd.map_or(String::new(), |sd| sd.to_string()),
                            s.min.to_string(),
                            s.max.to_string(),
                        ]),
                        None => record.extend([String::new(), String::new(), String::new(), String::new()]),
                    }
                }
                writer.write_record(&record)?;
            }
        } else {
            writer.write_record(&self.columns)?;
            for row in &self.rows {
                writer.write_record(row.iter().map(Cell::raw))?;
            }
        }
        let bytes = writer.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8"))
    }

    /// The table as header titles (with units), alignments (numbers to the
    /// right) and cell texts, in the units of the header.
    fn table(&self, aggregate: bool, plus_minus: &str) -> (Vec<String>, Vec<bool>, Vec<Vec<String>>) {
        let shown = |index: usize, name: &str, spreads: Option<&[AggregateRow]>| {
            let values: Vec<f64> = match spreads {
                Some(rows) => rows.iter().filter_map(|r| r.figures[index].map(|s| s.max)).collect(),
                None => self.rows.iter().filter_map(|row| row[index].number()).collect(),
            };
            Shown::of(Unit::of(name), values.into_iter())
        };
        let header_of = |name: &str, shown: &Shown| match shown.unit {
            Some(unit) => format!("{} ({unit})", title(name)),
            None => title(name),
        };
        let show = |value: f64, shown: &Shown| figure(value / shown.scale);
        if aggregate {
            let rows = self.aggregate();
            let figures: Vec<(usize, String)> = self.figure_columns().map(|(i, n)| (i, n.clone())).collect();
            let shows: Vec<Shown> =
                figures.iter().enumerate().map(|(k, (_, name))| shown(k, name, Some(&rows))).collect();
            let mut header = vec!["allocator".to_string(), "workload".into()];
            let threaded = rows.iter().any(|r| r.threads != 1);
            if threaded {
                header.push("threads".into());
            }
            header.push("seeds".into());
            header.extend(figures.iter().zip(&shows).map(|((_, name), shown)| header_of(name, shown)));
            let right = (0..header.len()).map(|i| i >= 2).collect();
            let cells = rows
                .iter()
                .map(|row| {
                    let mut line = vec![short_allocator(&row.allocator), short_workload(&row.workload)];
                    if threaded {
                        line.push(row.threads.to_string());
                    }
                    line.push(row.seeds.to_string());
                    for (spread, shown) in row.figures.iter().zip(&shows) {
                        line.push(match spread {
                            Some(Spread { mean, sd: Some(sd), .. }) => {
                                format!("{}{plus_minus}{}", show(*mean, shown), deviation(*sd / shown.scale))
                            }
                            Some(Spread { mean, sd: None, .. }) => show(*mean, shown),
                            None => "–".to_string(),
                        });
                    }
                    line
                })
                .collect();
            (header, right, cells)
        } else {
            let shows: Vec<Shown> = self.columns.iter().enumerate().map(|(i, name)| shown(i, name, None)).collect();
            let header = self.columns.iter().zip(&shows).map(|(name, shown)| header_of(name, shown)).collect();
            let right = self.columns.iter().map(|c| Unit::of(c) != Unit::Text).collect();
            let cells = self
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&shows)
                        .zip(&self.columns)
                        .map(|((cell, shown), column)| match cell {
                            Cell::Empty => "–".to_string(),
                            Cell::Text(text) if column == "allocator" => short_allocator(text),
                            Cell::Text(text) if column == "workload" => short_workload(text),
                            Cell::Text(text) => text.clone(),
                            Cell::Number(value) => show(*value, shown),
                        })
                        .collect()
                })
                .collect();
            (header, right, cells)
        }
    }

    fn markdown(&self, aggregate: bool) -> String {
        let escape = |text: &str| text.replace('\\', "\\\\").replace('|', "\\|");
        let (header, right, cells) = self.table(aggregate, " ± ");
        let mut text = String::new();
        let _ = writeln!(text, "| {} |", header.iter().map(|h| escape(h)).collect::<Vec<_>>().join(" | "));
        let _ = writeln!(
            text,
            "|{}|",
            right.iter().map(|&r| if r { "---:" } else { ":---" }).collect::<Vec<_>>().join("|")
        );
        for line in &cells {
            // Nothing measured is `-`, as in heaplab's other tables.
            let cells: Vec<String> = line.iter().map(|c| if c == "–" { "-".to_string() } else { escape(c) }).collect();
            let _ = writeln!(text, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(text);
        let what = if aggregate { "; mean ± sample standard deviation over the seeds" } else { "" };
        let _ = writeln!(text, "<sub>{}{what}.</sub>", escape(&self.source()));
        text
    }

    fn latex(&self, aggregate: bool) -> String {
        let (header, right, cells) = self.table(aggregate, "\u{0}");
        let cell = |text: &str| latex_escape(text).replace('\u{0}', " $\\pm$ ");
        let mut text = String::new();
        // Comments are the one place a path needs no escaping, only one line.
        let _ = writeln!(text, "% {}", self.source().replace(['\n', '\r'], " "));
        if aggregate {
            let _ = writeln!(text, "% figures: mean $\\pm$ sample standard deviation over the seeds");
        }
        let _ = writeln!(text, "% needs \\usepackage{{booktabs}}");
        let spec: String = right.iter().map(|&r| if r { 'r' } else { 'l' }).collect();
        let _ = writeln!(text, "\\begin{{tabular}}{{{spec}}}");
        let _ = writeln!(text, "\\toprule");
        let _ = writeln!(text, "{} \\\\", header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" & "));
        let _ = writeln!(text, "\\midrule");
        for line in &cells {
            let _ = writeln!(text, "{} \\\\", line.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" & "));
        }
        let _ = writeln!(text, "\\bottomrule");
        let _ = writeln!(text, "\\end{{tabular}}");
        text
    }
}

/// `text` safe in a LaTeX table cell: the ten special characters escaped,
/// the en dash of an empty cell as `--`.
pub fn latex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '–' => out.push_str("--"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_four_significant_digits_without_exponents() {
        assert_eq!(figure(35.2834), "35.28");
        assert_eq!(figure(912.44), "912.4");
        assert_eq!(figure(0.123456), "0.1235");
        assert_eq!(figure(123457.0), "123457");
        assert_eq!(figure(12345.67), "12346");
        assert_eq!(figure(0.0), "0");
        assert_eq!(
            (deviation(0.008155), deviation(1.852), deviation(15.28), deviation(0.0)),
            ("0.0082".into(), "1.9".into(), "15".into(), "0".into())
        );
    }

    #[test]
    fn latex_escapes_every_special_character() {
        assert_eq!(
            latex_escape(r"a_b & 5% $x# {y} ~ ^ \ –"),
            r"a\_b \& 5\% \$x\# \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} --"
        );
    }

    #[test]
    fn units_come_from_the_column_names() {
        assert_eq!(Unit::of("ops_per_sec_ci_low"), Unit::OpsPerSecond);
        assert_eq!(Unit::of("ops_per_sec_ci_level_pct"), Unit::Percent);
        assert_eq!(Unit::of("peak_footprint_bytes"), Unit::Bytes);
        assert_eq!(Unit::of("alloc_p99_ns"), Unit::Nanoseconds);
        assert_eq!(Unit::of("splits"), Unit::Count);
        let shown = Shown::of(Unit::Bytes, [3.0 * 1024.0 * 1024.0, 512.0].into_iter());
        assert_eq!(shown, Shown { scale: 1024.0 * 1024.0, unit: Some("MiB") });
    }

    #[test]
    fn the_spread_is_the_sample_standard_deviation() {
        let s = Spread::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((s.mean, s.min, s.max), (5.0, 2.0, 9.0));
        assert!((s.sd.unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(Spread::of(&[3.0]).unwrap().sd, None);
        assert_eq!(Spread::of(&[]), None);
    }
}
