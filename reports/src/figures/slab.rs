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
    let mut figure = writer.figure(
        &group.file("slab"),
        "Slab cache efficiency when requested bytes peaked",
        "%Ef = objects in use × object size / (slabs × PAGE << order), per kmalloc cache, as tools/mm/slabinfo.c computes it: what the slab pages hold of live objects; the rest is free objects and slab tails. The table is /proc/slabinfo's, with slabinfo's loss split into per-object padding and the slab tails.",
        &Grid { cell: (900, charts.iter().map(|c| c.size().1).max().unwrap_or(360)), charts, columns },
        false,
    )?;
    figure.table = Some(slabinfo_table(group));
    Ok(Some(figure))
}

/// `/proc/slabinfo` at the peak, one row per cache with slabs, per allocator.
fn slabinfo_table(group: &Group<'_>) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "allocator",
        "cache",
        "objsize B",
        "active objs",
        "num objs",
        "objs/slab",
        "order",
        "slabs",
        "loss B",
        "padding B",
        "tails B",
        "%Ef",
    ];
    let mut rows = Vec::new();
    for (allocator, label) in group.allocators() {
        let mut caches: Vec<(String, std::collections::BTreeMap<String, f64>)> =
            group.details(allocator, "slabinfo").into_iter().collect();
        let get = |c: &std::collections::BTreeMap<String, f64>, key: &str| c.get(key).copied().unwrap_or(0.0);
        caches.retain(|(_, c)| get(c, "slabs") > 0.0);
        caches.sort_by(|x, y| get(&x.1, "object_size").total_cmp(&get(&y.1, "object_size")));
        for (name, c) in caches {
            let whole = |key: &str| format!("{}", get(&c, key) as u64);
            rows.push(vec![
                label.clone(),
                name,
                whole("object_size"),
                whole("active_objects"),
                whole("total_objects"),
                whole("objects_per_slab"),
                (get(&c, "pages_per_slab") as u64).max(1).ilog2().to_string(),
                whole("slabs"),
                whole("loss_bytes"),
                whole("object_padding_bytes"),
                whole("slab_padding_bytes"),
                format!("{:.1}", get(&c, "efficiency_pct")),
            ]);
        }
    }
    (header, rows)
}
