//! Requested R, granted G, footprint H and, for a caching layer, cached C
//! over time, per allocator.

use super::Group;
use crate::charts::{Grid, Lines};
use crate::{Figure, ReportError, Writer};

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    if group.results.series.is_empty() {
        return Ok(None);
    }
    let mib = |points: Vec<(f64, f64)>| points.into_iter().map(|(x, y)| (x, y / 1048576.0)).collect::<Vec<_>>();
    let mut memory: Vec<Lines> = group
        .allocators()
        .map(|(a, l)| Lines {
            title: l.clone(),
            x_label: "op".into(),
            y_label: "MiB".into(),
            series: vec![
                ("requested R".into(), mib(group.series(a, "requested_bytes"))),
                ("granted G".into(), mib(group.series(a, "granted_bytes"))),
                ("footprint H".into(), mib(group.series(a, "footprint_bytes"))),
                // A caching layer's blocks held for reuse (empty otherwise: no line).
                ("in caches C".into(), mib(group.series(a, "cached_bytes"))),
            ],
            log_y: false,
            thin: Vec::new(),
            x_ticks: None,
            y_max: None,
            pixels: (450, 300),
        })
        .collect();
    // One scale for every panel, so that their heights compare.
    let top =
        memory.iter().flat_map(|c| c.series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y))).fold(0.0, f64::max);
    for chart in &mut memory {
        chart.y_max = Some(top);
    }
    writer
        .figure(
            &group.file("memory"),
            "Requested, granted and footprint over time",
            "R: bytes requested by live blocks; G: bytes granted to them (payload, headers, padding, rounding); H: footprint, the highest arena offset used so far. G − R is internal fragmentation; H − G − metadata is the holes the footprint carries. C (caching layers only): bytes held in thread caches, the depot and remote-free lists, neither live nor free.",
            &Grid { charts: memory, columns: 3, cell: (450, 300) },
            false,
        )
        .map(Some)
}
