//! Internal and external fragmentation over time, all allocators together.

use super::Group;
use crate::charts::{Grid, Lines};
use crate::{Figure, ReportError, Writer};

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    if group.results.series.is_empty() {
        return Ok(None);
    }
    let over_time = |metric: &str, title: &str| Lines {
        title: title.into(),
        x_label: "op".into(),
        y_label: "%".into(),
        series: group.allocators().map(|(a, l)| (l.clone(), group.series(a, metric))).collect(),
        log_y: false,
        thin: Vec::new(),
        x_ticks: None,
        y_max: None,
        pixels: (560, 380),
    };
    let sizes = request_sizes(group);
    let mut charts = vec![
        over_time("internal_frag_pct", "internal (G−R)/G"),
        over_time("external_frag_pct", "external 1−L/F, whole arena"),
    ];
    let footprint = over_time("external_frag_footprint_pct", "external 1−L/F below the footprint H");
    let unusable = over_time(
        "unusable_at_p99_pct",
        &match sizes {
            Some((_, p99)) => format!("unusable free share at the p99 request, {p99} B"),
            None => "unusable free share at the p99 request".into(),
        },
    );
    charts.extend([footprint, unusable].into_iter().filter(|chart| chart.series.iter().any(|(_, s)| !s.is_empty())));
    writer
        .figure(
            &group.file("fragmentation"),
            "Internal and external fragmentation over time",
            "Internal fragmentation (G − R)/G: bytes granted beyond the requests (Wilson et al. 1995). \
             External fragmentation 1 − L/F: the share of free bytes outside the largest free block, over the whole arena. \
             That figure counts blocks no request has touched: a buddy or slab arena starts as a few large blocks and keeps its untouched top ones, \
             so buddy and slab read about 50 % from the first op, and for them the unusable free share is the one to read: \
             the share of free bytes in blocks smaller than the workload's p99 request, which that request cannot use (Linux's unusable free index, mm/vmstat.c, in bytes). \
             A free list grows from the bottom and its one block above the footprint is the largest: for it read 1 − L/F below the footprint H, the holes its heap carries.",
            &Grid { charts, columns: 2, cell: (560, 380) },
            false,
        )
        .map(Some)
}

/// The workload's p50 and p99 request sizes, from its summary rows.
fn request_sizes(group: &Group<'_>) -> Option<(u64, u64)> {
    group.rows.iter().find_map(|r| r.request_p50_bytes.zip(r.request_p99_bytes))
}
