//! Latency: the percentile spectrum of alloc and free calls, log scale.

use heaplab_core::OpKind;

use super::Group;
use crate::charts::{Grid, Lines};
use crate::{Figure, ReportError, Writer};

/// The percentiles a latency spectrum shows, one tick each.
const SPECTRUM_SHOWN: [f64; 9] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0];

/// The tick of spectrum position `x`.
fn spectrum_label(x: f64) -> String {
    let index = x.round();
    if (x - index).abs() > 0.01 || index < 0.0 {
        return String::new();
    }
    match SPECTRUM_SHOWN.get(index as usize) {
        Some(100.0) => "max".into(),
        Some(p) => format!("p{p}"),
        None => String::new(),
    }
}

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let mut spectra = Vec::new();
    for kind in [OpKind::Alloc, OpKind::Free] {
        let series: Vec<(String, Vec<(f64, f64)>)> = group
            .allocators()
            .map(|(a, l)| {
                let points = group
                    .results
                    .latency
                    .iter()
                    .filter(|r| {
                        r.allocator == a
                            && r.workload == group.workload
                            && r.seed == group.seed
                            && r.kind == kind
                            && r.samples > 0
                    })
                    .filter_map(|r| {
                        let position = SPECTRUM_SHOWN.iter().position(|&p| p == r.percentile)?;
                        Some((position as f64, r.latency_ns.max(1) as f64))
                    })
                    .collect();
                (l.clone(), points)
            })
            .filter(|(_, p): &(String, Vec<(f64, f64)>)| !p.is_empty())
            .collect();
        if !series.is_empty() {
            spectra.push(Lines {
                title: format!("{} latency", kind.name()),
                x_label: "percentile".into(),
                y_label: "ns (log)".into(),
                series,
                log_y: true,
                thin: Vec::new(),
                x_ticks: Some(spectrum_label),
                y_max: None,
                pixels: (560, 400),
            });
        }
    }
    if spectra.is_empty() {
        return Ok(None);
    }
    let columns = spectra.len();
    writer
        .figure(
            &group.file("latency"),
            "Latency percentiles",
            "Per-call latency at each percentile from the median to the maximum, from the fenced cycle counter with the timer's own cost subtracted; log scale.",
            &Grid { charts: spectra, columns, cell: (560, 400) },
            false,
        )
        .map(Some)
}
