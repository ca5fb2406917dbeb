//! Slab cache efficiency when requested bytes peaked, per kmalloc cache.

use super::Group;
use crate::charts::{Bars, Chart, Grid};
use crate::{Figure, ReportError, Writer};

pub(crate) fn figure(group: &Group<'_>, writer: &mut Writer<'_>) -> Result<Option<Figure>, ReportError> {
    let charts: Vec<Bars> = group
        .allocators()
        .filter_map(|(a, l)| {
            let rows = group.details(a, "slabinfo");
            // Each cache named with its object size and what it holds: a
            // chart alone says how big a cache is behind its %Ef.
            let get = |c: &std::collections::BTreeMap<String, f64>, key: &str| c.get(key).copied().unwrap_or(0.0);
            let mut bars: Vec<(f64, String, f64)> = rows
                .iter()
                .filter(|(_, c)| get(c, "slabs") > 0.0)
                .map(|(name, c)| {
                    let slabs = get(c, "slabs") as u64;
                    let label = format!(
                        "{name}: {} of {} objects, {slabs} {} of {} {}",
                        get(c, "active_objects") as u64,
                        get(c, "total_objects") as u64,
                        if slabs == 1 { "slab" } else { "slabs" },
                        get(c, "pages_per_slab") as u64,
                        if get(c, "pages_per_slab") as u64 == 1 { "page" } else { "pages" },
                    );
                    (get(c, "object_size"), label, get(c, "efficiency_pct"))
                })
                .collect();
            if bars.is_empty() {
                return None;
            }
            bars.sort_by(|x, y| x.0.total_cmp(&y.0));
            Some(Bars {
                title: format!("{l}: cache efficiency"),
                y_label: "%Ef (live object bytes / slab bytes, %)".into(),
                x_label: Some("kmalloc cache".into()),
                y_max: Some(100.0),
                color: Some(crate::charts::PALETTE[3]),
                bars: bars.into_iter().map(|(_, n, v)| (n, v, None)).collect(),
            })
        })
        .collect();
    if charts.is_empty() {
        return Ok(None);
    }
    let columns = 1;
    writer
        .figure(
            &group.file("slab"),
            "Slab cache efficiency when requested bytes peaked",
            "%Ef = objects in use × object size / (slabs × PAGE << order), per kmalloc cache, as tools/mm/slabinfo.c computes it: what the slab pages hold of live objects; the rest is free objects and slab tails.",
            &Grid { cell: (900, charts.iter().map(|c| c.size().1).max().unwrap_or(360)), charts, columns },
            false,
        )
        .map(Some)
}
