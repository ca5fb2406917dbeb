//! `heaplab exec` rows: the program's wall time and peak RSS per allocator.

use super::Group;
use crate::charts::Bars;
use crate::{Figure, ReportError, Writer};

/// Wall time per run: the median, with the fastest and the slowest run.
pub(crate) fn wall(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    if !group.rows.iter().any(|r| r.wall_seconds.is_some()) {
        return Ok(None);
    }
    let bars = Bars {
        title: "Wall time".into(),
        y_label: "seconds per run".into(),
        bars: group
            .rows
            .iter()
            .zip(&group.labels)
            .filter_map(|(r, l)| {
                // Runs per second, fastest and slowest, as seconds.
                let range = r.ops_per_sec_max.zip(r.ops_per_sec_min).map(|(fast, slow)| (1.0 / fast, 1.0 / slow));
                Some((l.clone(), r.wall_seconds?, range))
            })
            .collect(),
        ..Bars::default()
    };
    let caption = "The program's wall time per run, lower is better: the median of the timed runs; the bar spans the \
                   fastest and the slowest run.";
    writer.figure(&group.file("wall"), "Wall time", caption, &bars, false).map(Some)
}

/// Peak RSS: the median over the timed runs.
pub(crate) fn rss(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    if !group.rows.iter().any(|r| r.peak_rss_bytes.is_some()) {
        return Ok(None);
    }
    let bars = Bars {
        title: "Peak resident set".into(),
        y_label: "MiB".into(),
        bars: group
            .rows
            .iter()
            .zip(&group.labels)
            .filter_map(|(r, l)| Some((l.clone(), r.peak_rss_bytes? as f64 / 1048576.0, None)))
            .collect(),
        ..Bars::default()
    };
    let caption = "The program's peak resident set as wait4 reports it, median of the timed runs: its code and data \
                   with the allocator's heap, tables and metadata (a floor of about 2 MiB is heaplab-spawn's).";
    writer.figure(&group.file("rss"), "Peak resident set", caption, &bars, false).map(Some)
}
