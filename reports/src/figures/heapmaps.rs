//! Heap maps over time: the arena across, the run down, per allocator.

use heaplab_results::HeapMapRow;

use super::Group;
use crate::charts::{Grid, HEAPMAP_ENTRIES, HEAPMAP_LEGEND, HeapMapChart, WithLegend};
use crate::{Figure, ReportError, Writer};

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let maps: Vec<HeapMapChart> = group
        .allocators()
        .filter_map(|(a, l)| {
            let frames: Vec<&HeapMapRow> = group
                .results
                .heapmap
                .iter()
                .filter(|r| r.allocator == a && r.workload == group.workload && r.seed == group.seed)
                .collect();
            let span = frames.first()?.span_bytes;
            Some(HeapMapChart {
                title: l.clone(),
                span_bytes: span,
                frames: frames.iter().map(|f| (f.op, f.states.clone())).collect(),
                pixels: (450, 320),
            })
        })
        .collect();
    if maps.is_empty() {
        return Ok(None);
    }
    writer
        .figure(
            &group.file("heapmap"),
            "Heap maps over time",
            &format!("The arena from offset 0 to the largest footprint (across), frame by frame through the run (down). {HEAPMAP_LEGEND}."),
            &WithLegend { chart: Grid { charts: maps, columns: 3, cell: (450, 320) }, entries: HEAPMAP_ENTRIES.to_vec() },
            true,
        )
        .map(Some)
}
