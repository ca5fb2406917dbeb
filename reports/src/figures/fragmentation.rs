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
    let charts =
        vec![over_time("internal_frag_pct", "internal (G−R)/G"), over_time("external_frag_pct", "external 1−L/F")];
    writer
        .figure(
            &group.file("fragmentation"),
            "Internal and external fragmentation over time",
            "Internal fragmentation (G − R)/G: bytes granted beyond the requests (Wilson et al. 1995). External fragmentation 1 − L/F: the share of free bytes outside the largest free block, over the whole arena.",
            &Grid { charts, columns: 2, cell: (560, 380) },
            false,
        )
        .map(Some)
}
