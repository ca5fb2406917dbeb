//! Throughput: the median of the timed repetitions, with their range.

use super::Group;
use crate::charts::Bars;
use crate::{Figure, ReportError, Writer};

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    // An exec row's op is a run of the program: its wall time is drawn instead.
    if !group.rows.iter().any(|r| r.ops_per_sec.is_some() && r.wall_seconds.is_none()) {
        return Ok(None);
    }
    let bars = Bars {
        title: "Throughput".into(),
        y_label: "million ops per second".into(),
        bars: group
            .rows
            .iter()
            .zip(&group.labels)
            .filter_map(|(r, l)| {
                let median = r.ops_per_sec? / 1e6;
                let range = r.ops_per_sec_min.zip(r.ops_per_sec_max).map(|(a, b)| (a / 1e6, b / 1e6));
                Some((l.clone(), median, range))
            })
            .collect(),
        ..Bars::default()
    };
    writer
        .figure(
            &group.file("throughput"),
            "Throughput",
            "Ops replayed per second: the median of the timed repetitions of the whole replay; the bar spans the slowest and the fastest repetition.",
            &bars,
            false,
        )
        .map(Some)
}
