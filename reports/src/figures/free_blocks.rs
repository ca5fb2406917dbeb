//! Free blocks by power-of-two size when requested bytes peaked: the
//! `/proc/buddyinfo` picture, for any allocator.

use super::Group;
use crate::charts::{Bars, Grid};
use crate::{Figure, ReportError, Writer};

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let charts: Vec<Bars> = group
        .allocators()
        .filter_map(|(a, l)| {
            let rows = group.details(a, "free_blocks");
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
    if charts.is_empty() {
        return Ok(None);
    }
    writer
        .figure(
            &group.file("free-blocks"),
            "Free blocks by size when requested bytes peaked",
            "Free blocks in each power-of-two size class (at least the size shown, at most twice it), counted at the sample where R was largest: for a buddy system this is /proc/buddyinfo's nr_free per order; for any allocator, how the free space is cut up.",
            &Grid { charts, columns: 3, cell: (450, 300) },
            false,
        )
        .map(Some)
}

/// A block size as a tick, in binary units as every byte figure of the
/// report (`512`, `4 KiB`, `16 MiB`); counts on other axes use `k` and `M`
/// for thousands and millions.
fn size_label(bytes: f64) -> String {
    let bytes = bytes as u64;
    if bytes >= 1 << 30 {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}
