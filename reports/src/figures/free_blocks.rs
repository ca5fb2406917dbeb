//! Free blocks by power-of-two size when requested bytes peaked: the
//! `/proc/buddyinfo` picture, for any allocator.

use super::Group;
use crate::charts::{Bars, Grid};
use crate::{Figure, ReportError, Writer};

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    // Every power of two from the smallest class any allocator has a free
    // block in to the largest, empty ones included, on one count scale:
    // the panels compare at a glance, and a gap reads as a gap.
    let counts: Vec<(String, Vec<(u64, f64)>)> = group
        .allocators()
        .filter_map(|(a, l)| {
            let rows = group.details(a, "free_blocks");
            let classes: Vec<(u64, f64)> = rows
                .values()
                .map(|c| (c.get("from_bytes").copied().unwrap_or(0.0) as u64, c.get("count").copied().unwrap_or(0.0)))
                .filter(|&(from, _)| from > 0)
                .collect();
            (!classes.is_empty()).then(|| (l.clone(), classes))
        })
        .collect();
    let all = counts.iter().flat_map(|(_, classes)| classes.iter().map(|&(from, _)| from));
    let (Some(lowest), Some(highest)) = (all.clone().min(), all.max()) else { return Ok(None) };
    let classes: Vec<u64> = (lowest.ilog2()..=highest.ilog2()).map(|k| 1u64 << k).collect();
    let y_max = counts.iter().flat_map(|(_, c)| c.iter().map(|&(_, n)| n)).fold(0.0f64, f64::max);
    let charts: Vec<Bars> = counts
        .into_iter()
        .map(|(label, found)| Bars {
            title: label,
            y_label: "free blocks".into(),
            x_label: Some("block size, at least (bytes; K, M, G: binary)".into()),
            y_max: Some(y_max),
            color: Some(crate::charts::PALETTE[0]),
            bars: classes
                .iter()
                .map(|&from| {
                    let count = found.iter().filter(|&&(f, _)| f.ilog2() == from.ilog2()).map(|&(_, n)| n).sum();
                    (short_size(from), count, None)
                })
                .collect(),
        })
        .collect();
    if charts.is_empty() {
        return Ok(None);
    }
    writer
        .figure(
            &group.file("free-blocks"),
            "Free blocks by size when requested bytes peaked",
            "Free blocks in each power-of-two size class (at least the size shown, at most twice it), counted at the sample where R was largest: for a buddy system this is /proc/buddyinfo's nr_free per order; for any allocator, how the free space is cut up.",
            &Grid { columns: charts.len().min(2), charts, cell: (900, 300) },
            false,
        )
        .map(Some)
}

/// A block size as a short tick in binary units (`512 B`, `4 KiB`,
/// `16 MiB`): the same spelling in every chart.
pub(crate) fn short_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}
