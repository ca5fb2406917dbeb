//! Slab cache efficiency when requested bytes peaked, per kmalloc cache.

use super::Group;
use crate::charts::{Bars, Grid};
use crate::{Figure, ReportError, Writer};

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let charts: Vec<Bars> = group
        .allocators()
        .filter_map(|(a, l)| {
            let rows = group.details(a, "slabinfo");
            let mut bars: Vec<(f64, String, f64)> = rows
                .iter()
                .filter(|(_, c)| c.get("slabs").copied().unwrap_or(0.0) > 0.0)
                .map(|(name, c)| {
                    (
                        c.get("object_size").copied().unwrap_or(0.0),
                        name.trim_start_matches("kmalloc-").to_string(),
                        c.get("efficiency_pct").copied().unwrap_or(0.0),
                    )
                })
                .collect();
            if bars.is_empty() {
                return None;
            }
            bars.sort_by(|x, y| x.0.total_cmp(&y.0));
            Some(Bars {
                title: format!("{l}: cache efficiency"),
                y_label: "%Ef".into(),
                bars: bars.into_iter().map(|(_, n, v)| (n, v, None)).collect(),
            })
        })
        .collect();
    if charts.is_empty() {
        return Ok(None);
    }
    let columns = charts.len().min(2);
    writer
        .figure(
            &group.file("slab"),
            "Slab cache efficiency when requested bytes peaked",
            "%Ef = objects in use × object size / (slabs × PAGE << order), per kmalloc cache, as tools/mm/slabinfo.c computes it: what the slab pages hold of live objects; the rest is free objects and slab tails.",
            &Grid { charts, columns, cell: (700, 360) },
            false,
        )
        .map(Some)
}
